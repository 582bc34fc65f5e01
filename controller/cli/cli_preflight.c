/* canaryctl profile lint FILE: check workload profiles (no database). canaryctl preflight run: drive one slot of a
 * service directly with a profile (and, to compare, the other slot with the same prompts, interleaved), check the
 * answers against the service's contract, judge them with a policy's pre-flight SLOs, and print the per
 * prompt-length band table: the hand-run form of what canaryd does before step 1 (issue 12, items 3 and 4). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "canary/load.h"
#include "canary/policy.h"
#include "canary/preflight.h"
#include "canary/profile.h"
#include "canary/report_preflight.h"
#include "canary/service.h"
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
	"usage: canaryctl preflight run (--service S --slot SLOT | --url http://HOST:PORT) [--profile FILE]\n"
	"                              [--policy FILE] [--baseline-slot SLOT | --baseline-url URL] [--seed N]\n"
	"  drives the slot's server directly (its metrics_url without the path, or --url) with the profile, checks\n"
	"  every answer against the service's contract, and prints requests, errors, contract violations, latency,\n"
	"  TTFT and inter-token latency per prompt-length band. --policy FILE judges it with the file's preflight:\n"
	"  (its profile unless --profile, its SLOs; with compare: baseline the service's other slot gets the same\n"
	"  prompts, interleaved) and exits 1 when a verdict fails, as canaryd would end the rollout\n";

static void progress(const struct cn_load_progress *p, void *arg)
{
	(void)arg;
	fprintf(stderr, "\r%5.1fs/%.0fs  sent %ld  done %ld  errors %ld  in flight %ld  late %ld   ", p->elapsed_s,
		p->duration_s, p->sent, p->done, p->errors, p->in_flight, p->late);
	fflush(stderr);
}

/* The stored service, parsed from its source. Returns 0 or an exit code (printed). */
static int stored_service(struct cli *cli, const char *name, struct cn_service *svc)
{
	struct cn_store *st = NULL;
	struct cn_service_list *l = NULL;
	struct cn_err err = { 0 };
	int rc;
	if ((rc = cli_store(cli, &st)) != 0)
		return rc;
	if (cn_store_service_show(st, name, &l, &err) < 0)
		return cli_error(&err);
	const char *src = l->n > 0 ? l->items[0].source : NULL;
	rc = src ? cn_service_parse(src, strlen(src), "stored service", svc, &err) : cn_fail(&err, CN_EINPUT,
		"service '%s' has no stored source", name);
	cn_service_list_free(l);
	return rc < 0 ? cli_error(&err) : 0;
}

static int slot_url(const struct cn_service *svc, const char *slot, char *buf, size_t size, int *index)
{
	struct cn_err err = { 0 };
	for (int i = 0; i < 2; i++)
		if (strcmp(svc->slots[i].name, slot) == 0) {
			if (cn_slot_base_url(svc->slots[i].metrics_url, buf, size) < 0)
				break;
			*index = i;
			return 0;
		}
	cn_fail(&err, CN_EINPUT, "service '%s' has no slot '%s' with a metrics_url to drive; give --url", svc->name,
		slot);
	return cli_error(&err);
}

int cmd_preflight(struct cli *cli, int argc, char **argv)
{
	const char *profile_path = NULL, *service = NULL, *slot = NULL, *url = NULL, *seed_s = NULL;
	const char *policy_path = NULL, *bslot = NULL, *burl = NULL;
	const struct cli_opt opts[] = {
		{ "profile", &profile_path, NULL }, { "service", &service, NULL },  { "slot", &slot, NULL },
		{ "url", &url, NULL },              { "seed", &seed_s, NULL },      { "policy", &policy_path, NULL },
		{ "baseline-slot", &bslot, NULL },  { "baseline-url", &burl, NULL }, { NULL, NULL, NULL },
	};
	char *pos[1], base[512], base2[512];
	int npos = 0, rc, seed = 1, ci = -1, bi = -1;
	struct cn_profile prof;
	struct cn_err err = { 0 };
	struct cn_policy *pol = NULL;
	struct cn_service *svc = NULL;
	struct cn_preflight_outcome *out = NULL;
	struct cn_dynbuf text;
	cn_dynbuf_init(&text, 1024 * 1024);

	if (argc < 2 || strcmp(argv[1], "run") != 0)
		return argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
			       ? (fputs(preflight_usage, stdout), 0)
			       : cli_usage_error(preflight_usage, "expected 'run'");
	if ((rc = cli_parse(argc - 1, argv + 1, opts, pos, 0, &npos, preflight_usage)) != 0)
		return rc == 1 ? 0 : rc;
	if (!profile_path && !policy_path)
		return cli_usage_error(preflight_usage, "give --profile, or --policy with a preflight: section");
	if (!url && (!service || !slot))
		return cli_usage_error(preflight_usage, "give --service and --slot, or --url");
	if (bslot && burl)
		return cli_usage_error(preflight_usage, "give --baseline-slot or --baseline-url, not both");
	if (bslot && !service)
		return cli_usage_error(preflight_usage, "--baseline-slot needs --service");
	if (seed_s && (rc = cli_parse_int("seed", seed_s, 0, &seed, preflight_usage)) != 0)
		return rc;
	if (!(pol = calloc(1, sizeof *pol)) || !(svc = calloc(1, sizeof *svc)) || !(out = calloc(1, sizeof *out))) {
		cn_fail(&err, CN_EINTERNAL, "out of memory");
		rc = cli_error(&err);
		goto done;
	}
	if (policy_path) {
		if (cn_policy_load_file(policy_path, pol, NULL, &err) < 0) {
			rc = cli_error(&err);
			goto done;
		}
		if (!pol->preflight.enabled) {
			cn_fail(&err, CN_EINPUT, "%s: the policy has no preflight: section to judge with", policy_path);
			rc = cli_error(&err);
			goto done;
		}
	}
	if (profile_path ? cn_profile_load_file(profile_path, &prof, &err) < 0 : (prof = pol->preflight.profile, 0)) {
		rc = cli_error(&err);
		goto done;
	}
	if (service) {
		if ((rc = stored_service(cli, service, svc)) != 0)
			goto done;
		if (!url) {
			if ((rc = slot_url(svc, slot, base, sizeof base, &ci)) != 0)
				goto done;
			url = base;
		}
		/* the baseline: as asked, or with a policy that compares, the service's other slot */
		if (bslot || (!burl && policy_path && pol->preflight.compare == CN_PF_COMPARE_BASELINE && ci >= 0)) {
			if ((rc = slot_url(svc, bslot ? bslot : svc->slots[1 - ci].name, base2, sizeof base2, &bi)) != 0)
				goto done;
			burl = base2;
		}
	}
	if (policy_path && pol->preflight.compare == CN_PF_COMPARE_BASELINE && !burl) {
		rc = cli_usage_error(preflight_usage, "the policy's pre-flight compares with the baseline: give "
				     "--service and --slot (the other slot is the baseline) or --baseline-url");
		goto done;
	}
	bool tty = isatty(STDERR_FILENO);
	struct cn_preflight_opts o = {
		.profile = &prof, .pf = policy_path ? &pol->preflight : NULL, .budget = cn_policy_preflight_budget(pol),
		.contract = service ? &svc->contract : NULL, .candidate_url = url, .baseline_url = burl,
		.seed = (uint64_t)seed, .progress = tty ? progress : NULL, .progress_every_s = tty ? 0.5 : 0,
	};
	rc = cn_preflight_run(&o, out, &err);
	if (tty)
		fputs("\r\033[K", stderr);
	if (rc < 0) {
		rc = cli_error(&err);
		goto done;
	}
	struct cn_preflight_view v = {
		.candidate_slot = ci >= 0 ? svc->slots[ci].name : NULL, .candidate_url = url,
		.baseline_slot = bi >= 0 ? svc->slots[bi].name : NULL, .baseline_url = burl, .profile = &prof,
		.pf = o.pf, .cand = &out->cand, .base = out->has_base ? &out->base : NULL,
		.res = out->judged ? &out->res : NULL,
	};
	if (cli->output == CLI_JSON) {
		char *doc = cn_report_preflight_json(&v);
		rc = cli_print_json(doc ? json_loads(doc, 0, NULL) : NULL);
		free(doc);
	} else {
		rc = cn_report_preflight_text(&text, &v) < 0 ? 70 : 0;
		fputs(cn_dynbuf_ptr(&text), stdout);
	}
	if (rc == 0 && out->judged && !out->res.passed)
		rc = 1; /* as canaryd: a failing pre-flight ends the rollout (rolled back) */
done:
	cn_dynbuf_free(&text);
	free(pol);
	free(svc);
	free(out);
	return rc;
}
