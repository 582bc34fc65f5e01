/* canaryctl profile lint FILE: check workload profiles (no database). canaryctl preflight run: drive one slot of a
 * service directly with a profile and print the per-prompt-length-band table (issue 12, the hand-run form; no
 * judging yet). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "canary/load.h"
#include "canary/profile.h"
#include "canary/store.h"
#include "cli_int.h"

static const char profile_usage[] =
	"usage: canaryctl profile lint FILE...   validate workload profiles (no database)\n";

int cmd_profile(struct cli *cli, int argc, char **argv)
{
	char *pos[64];
	int npos = 0, rc;
	if (argc < 2 || strcmp(argv[1], "lint") != 0)
		return argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
			       ? (fputs(profile_usage, stdout), 0)
			       : cli_usage_error(profile_usage, "expected 'lint'");
	if ((rc = cli_parse(argc - 1, argv + 1, NULL, pos, 64, &npos, profile_usage)) != 0)
		return rc == 1 ? 0 : rc;
	if (npos == 0)
		return cli_usage_error(profile_usage, "no FILE given");
	int worst = 0;
	for (int i = 0; i < npos; i++) {
		struct cn_profile p;
		struct cn_err err = { 0 };
		if (cn_profile_load_file(pos[i], &p, &err) < 0) {
			int code = cli_error(&err);
			if (code > worst)
				worst = code;
			continue;
		}
		if (cli->output == CLI_TEXT)
			printf("%s: ok (%g/s for %llds, %s%s)\n", pos[i], p.rate, (long long)(p.duration_ms / 1000),
			       cn_profile_endpoint_name(p.endpoint), p.stream ? ", streaming" : "");
	}
	if (cli->output == CLI_JSON && worst == 0)
		return cli_print_json(json_pack("{s:b}", "ok", 1));
	return worst;
}

static const char preflight_usage[] =
	"usage: canaryctl preflight run --profile FILE (--service S --slot SLOT | --url http://HOST:PORT)\n"
	"                              [--seed N]\n"
	"  drives the slot's server directly (its metrics_url without the path, or --url) with the profile and prints\n"
	"  requests, errors, latency, TTFT and inter-token latency per prompt-length band\n";

static void progress(const struct cn_load_progress *p, void *arg)
{
	(void)arg;
	fprintf(stderr, "\r%5.1fs/%.0fs  sent %ld  done %ld  errors %ld  in flight %ld  late %ld   ", p->elapsed_s,
		p->duration_s, p->sent, p->done, p->errors, p->in_flight, p->late);
	fflush(stderr);
}

/* The slot's base URL: scheme://host:port of its metrics_url. */
static int slot_base(const char *metrics_url, char *buf, size_t size)
{
	const char *h = strstr(metrics_url, "://");
	if (!h)
		return -1;
	const char *slash = strchr(h + 3, '/');
	size_t n = slash ? (size_t)(slash - metrics_url) : strlen(metrics_url);
	if (n >= size)
		return -1;
	memcpy(buf, metrics_url, n);
	buf[n] = '\0';
	return 0;
}

static double ms(double s)
{
	return s * 1e3;
}

static json_t *q_json(const struct cn_lhist *h)
{
	if (h->n == 0)
		return json_null();
	return json_pack("{s:f, s:f, s:f}", "p50_ms", ms(cn_lhist_quantile(h, 0.5)), "p95_ms",
			 ms(cn_lhist_quantile(h, 0.95)), "p99_ms", ms(cn_lhist_quantile(h, 0.99)));
}

static void print_q(const struct cn_lhist *h)
{
	if (h->n == 0)
		printf("  %8s %8s %8s", "-", "-", "-");
	else
		printf("  %8.1f %8.1f %8.1f", ms(cn_lhist_quantile(h, 0.5)), ms(cn_lhist_quantile(h, 0.95)),
		       ms(cn_lhist_quantile(h, 0.99)));
}

static int print_result(struct cli *cli, const char *url, const struct cn_profile *pf, const struct cn_load_result *r)
{
	if (cli->output == CLI_JSON) {
		json_t *bands = json_array();
		for (int b = 0; b < CN_NBANDS; b++) {
			const struct cn_band_stats *s = &r->bands[b];
			json_array_append_new(bands, json_pack("{s:s, s:f, s:o, s:I, s:I, s:o, s:o, s:o}", "band",
							       cn_band_name((enum cn_band)b), "prompt_tokens_above", s->lo,
							       "prompt_tokens_up_to", isinf(s->hi) ? json_null() : json_real(s->hi),
							       "requests", (json_int_t)s->requests, "errors",
							       (json_int_t)s->errors, "latency", q_json(&s->latency), "ttft",
							       q_json(&s->ttft), "itl", q_json(&s->itl)));
		}
		return cli_print_json(json_pack("{s:s, s:f, s:f, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:o}",
						"target", url, "rate", pf->rate, "achieved_rate", r->achieved_rate,
						"stream", pf->stream, "sent", (json_int_t)r->sent, "ok", (json_int_t)r->ok,
						"errors", (json_int_t)r->errors, "transport_errors",
						(json_int_t)r->transport_errors, "http_errors", (json_int_t)r->http_errors,
						"stream_errors", (json_int_t)r->stream_errors, "timeouts",
						(json_int_t)r->timeouts, "elapsed_s", r->elapsed_s, "bands", bands));
	}
	printf("target %s: %ld sent at %.1f/s (profile %g/s), %ld ok, %ld errors (%ld transport, %ld http, %ld stream, "
	       "%ld timeouts), %.1fs\n",
	       url, r->sent, r->achieved_rate, pf->rate, r->ok, r->errors, r->transport_errors, r->http_errors,
	       r->stream_errors, r->timeouts, r->elapsed_s);
	printf("%-10s %-14s %8s %7s  %-26s  %-26s  %-26s\n", "band", "prompt tokens", "requests", "errors",
	       "latency ms p50/p95/p99", "ttft ms p50/p95/p99", "itl ms p50/p95/p99");
	for (int b = 0; b < CN_NBANDS; b++) {
		const struct cn_band_stats *s = &r->bands[b];
		char range[32];
		if (isinf(s->hi))
			snprintf(range, sizeof range, "> %.0f", s->lo);
		else
			snprintf(range, sizeof range, "%.0f..%.0f", s->lo, s->hi);
		printf("%-10s %-14s %8ld %7ld", cn_band_name((enum cn_band)b), range, s->requests, s->errors);
		print_q(&s->latency);
		print_q(&s->ttft);
		print_q(&s->itl);
		printf("\n");
	}
	return 0;
}

int cmd_preflight(struct cli *cli, int argc, char **argv)
{
	const char *profile_path = NULL, *service = NULL, *slot = NULL, *url = NULL, *seed_s = NULL;
	const struct cli_opt opts[] = {
		{ "profile", &profile_path, NULL }, { "service", &service, NULL }, { "slot", &slot, NULL },
		{ "url", &url, NULL },              { "seed", &seed_s, NULL },     { NULL, NULL, NULL },
	};
	char *pos[1], base[512];
	int npos = 0, rc, seed = 1;
	struct cn_profile pf;
	struct cn_err err = { 0 };
	struct cn_load_result *res = NULL;

	if (argc < 2 || strcmp(argv[1], "run") != 0)
		return argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
			       ? (fputs(preflight_usage, stdout), 0)
			       : cli_usage_error(preflight_usage, "expected 'run'");
	if ((rc = cli_parse(argc - 1, argv + 1, opts, pos, 0, &npos, preflight_usage)) != 0)
		return rc == 1 ? 0 : rc;
	if (!profile_path)
		return cli_usage_error(preflight_usage, "--profile is required");
	if (!url && (!service || !slot))
		return cli_usage_error(preflight_usage, "give --service and --slot, or --url");
	if (seed_s && (rc = cli_parse_int("seed", seed_s, 0, &seed, preflight_usage)) != 0)
		return rc;
	if (cn_profile_load_file(profile_path, &pf, &err) < 0)
		return cli_error(&err);
	if (!url) {
		struct cn_store *st = NULL;
		struct cn_service_list *l = NULL;
		if ((rc = cli_store(cli, &st)) != 0)
			return rc;
		if (cn_store_service_show(st, service, &l, &err) < 0)
			return cli_error(&err);
		const struct cn_slot_info *si = NULL;
		if (l->n > 0 && l->items[0].live.name && strcmp(l->items[0].live.name, slot) == 0)
			si = &l->items[0].live;
		else if (l->n > 0 && l->items[0].idle.name && strcmp(l->items[0].idle.name, slot) == 0)
			si = &l->items[0].idle;
		if (!si || !si->metrics_url || slot_base(si->metrics_url, base, sizeof base) < 0) {
			cn_service_list_free(l);
			cn_fail(&err, CN_EINPUT, "service '%s' has no slot '%s' with a metrics_url to drive; give --url",
				service, slot);
			return cli_error(&err);
		}
		cn_service_list_free(l);
		url = base;
	}
	if (!(res = calloc(1, sizeof *res))) {
		cn_fail(&err, CN_EINTERNAL, "out of memory");
		return cli_error(&err);
	}
	bool tty = isatty(STDERR_FILENO);
	struct cn_load_opts o = { .profile = &pf, .base_url = url, .seed = (uint64_t)seed,
				  .progress = tty ? progress : NULL, .progress_every_s = tty ? 0.5 : 0 };
	rc = cn_load_run(&o, res, &err);
	if (tty)
		fputs("\r\033[K", stderr);
	if (rc < 0) {
		free(res);
		return cli_error(&err);
	}
	rc = print_result(cli, url, &pf, res);
	free(res);
	return rc;
}
