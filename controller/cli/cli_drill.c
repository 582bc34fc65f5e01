/* canaryctl drill: failover drills. `drill failover` starts one (canaryd drives it: shift all traffic to the warm
 * secondary, hold while its SLOs are judged, shift back) and waits for its outcome like `rollout start --wait`;
 * `drill wait`, `drill abort`, `drill status`, `drill report --html`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "canary/clock.h"
#include "canary/drill.h"
#include "canary/parse.h"
#include "canary/report_drill.h"
#include "canary/store.h"
#include "canary/store_drills.h"
#include "cli_drill_int.h"
#include "cli_int.h"

/* Exit codes of `drill failover` and `drill wait` (DESIGN.md "Contracts", as for rollouts). */
#define EXIT_PASSED 0
#define EXIT_CUT_SHORT 1
#define EXIT_ABORTED 2
#define EXIT_TIMEOUT 3
#define POLL_MS 200
#define ABORT_WAIT_MS 10000 /* how long `drill abort` waits for the primary to be confirmed */
#define LIST_MAX 20

static const char USAGE[] =
	"usage: canaryctl drill failover --service S [--to SLOT_OR_SERVER] [--hold 5m] [--baseline 30s]\n"
	"                                [--policy P] [--profile FILE --url http://HOST:PORT] [--reason TEXT]\n"
	"                                [--timeout D] [--no-wait]\n"
	"       canaryctl drill wait ID [--timeout D]\n"
	"       canaryctl drill abort ID [--reason TEXT]\n"
	"       canaryctl drill status [ID] [--service S]\n"
	"       canaryctl drill report ID --html FILE\n"
	"failover shifts all of the service's traffic to its warm secondary (the idle slot, or --to), holds it there\n"
	"for --hold while the policy's SLOs judge the secondary (absolute max, and relative to the primary measured\n"
	"for --baseline just before the shift), then shifts back; a breached SLO ends it at once. canaryd drives it,\n"
	"so a canaryctl that dies strands nothing. --profile adds synthetic load (a workload profile) aimed at --url\n"
	"(e.g. the gateway's frontend) while canaryctl waits, for at most the baseline and the hold.\n"
	"exit codes of failover and wait: 0 passed, 1 cut short (an SLO breached; primary restored), 2 aborted by an\n"
	"operator, 3 timed out waiting (the drill goes on), 64 usage, 65 invalid input (unknown service, policy or\n"
	"slot; a rollout or drill of the service is active), 69 unavailable, 70 failed (it could not go on; primary\n"
	"restored) or internal error, 77 permission denied.\n";

int cli_drill_exit(enum cn_drill_phase phase)
{
	switch (phase) {
	case CN_DRILL_PASSED: return EXIT_PASSED;
	case CN_DRILL_CUT_SHORT: return EXIT_CUT_SHORT;
	case CN_DRILL_ABORTED: return EXIT_ABORTED;
	default: return CN_EINTERNAL;
	}
}

static int parse_duration(const char *opt, const char *s, int64_t def, int64_t *ms)
{
	struct cn_err err = {0};
	if (!s) {
		*ms = def;
		return 0;
	}
	if (cn_parse_duration_ms(s, 0, ms, &err) < 0)
		return cli_usage_error(USAGE, "--%s: %s", opt, err.msg);
	return 0;
}

/* Waits for drill id to end, printing each change of phase (text) or the final document (json). */
static int wait_drill(struct cli *cli, struct cn_store *st, int64_t id, int64_t timeout_ms)
{
	struct cn_err err = {0};
	int64_t start = cn_mono_ms();
	char last[512] = "";
	struct cn_drill_row *d = NULL;
	int code;
	for (;;) {
		cn_drill_row_free(d);
		d = NULL;
		if (cn_store_drill_get(st, id, &d, &err) < 0)
			return cli_error(&err);
		char line[512];
		snprintf(line, sizeof line, "%s|%s", cn_drill_phase_name(d->phase), d->reason);
		bool changed = strcmp(line, last) != 0;
		if (changed && cli->output == CLI_TEXT && !cn_drill_ended(d->phase) &&
		    strncmp(line, last, strlen(cn_drill_phase_name(d->phase)) + 1) != 0) {
			cn_report_drill_print(stdout, d, false);
			fflush(stdout);
		}
		if (changed)
			snprintf(last, sizeof last, "%s", line);
		if (cn_drill_ended(d->phase)) {
			code = cli_drill_exit(d->phase);
			break;
		}
		if (timeout_ms > 0 && cn_mono_ms() - start >= timeout_ms) {
			fprintf(stderr, "canaryctl: timed out after %llds waiting for drill %lld (%s)%s; it goes on "
					"('canaryctl drill wait %lld' to wait again)\n",
				(long long)(timeout_ms / 1000), (long long)id, cn_drill_phase_name(d->phase),
				d->phase == CN_DRILL_PENDING ? ": no canaryd has picked it up (is canaryd running and "
							       "connected to this database?)" : "",
				(long long)id);
			code = d->phase == CN_DRILL_PENDING ? CN_EUNAVAIL : EXIT_TIMEOUT;
			break;
		}
		usleep(POLL_MS * 1000);
	}
	if (cli->output == CLI_JSON)
		cli_print_json(cli_json_drill(d, code));
	else
		cn_report_drill_print(stdout, d, true);
	cn_drill_row_free(d);
	return code;
}

static int drill_failover(struct cli *cli, int argc, char **argv)
{
	const char *service = NULL, *to = NULL, *hold = NULL, *baseline = NULL, *policy = NULL, *profile = NULL,
		   *url = NULL, *reason = NULL, *timeout = NULL;
	bool no_wait = false;
	const struct cli_opt opts[] = {
		{"service", &service, NULL}, {"to", &to, NULL},         {"hold", &hold, NULL},
		{"baseline", &baseline, NULL}, {"policy", &policy, NULL}, {"profile", &profile, NULL},
		{"url", &url, NULL},         {"reason", &reason, NULL}, {"timeout", &timeout, NULL},
		{"no-wait", NULL, &no_wait}, {NULL, NULL, NULL},
	};
	int npos = 0, rc = cli_parse(argc, argv, opts, NULL, 0, &npos, USAGE);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (!service)
		return cli_usage_error(USAGE, "drill failover needs --service");
	if (!url != !profile)
		return cli_usage_error(USAGE, "--profile and --url go together: the load goes to --url (e.g. the "
				       "gateway's frontend)");
	if (profile && no_wait)
		return cli_usage_error(USAGE, "--profile runs its load while canaryctl waits; drop --no-wait");
	int64_t hold_ms, baseline_ms, timeout_ms;
	if ((rc = parse_duration("hold", hold, 5 * 60 * 1000, &hold_ms)) || (rc = parse_duration("baseline", baseline,
											30 * 1000, &baseline_ms)) ||
	    (rc = parse_duration("timeout", timeout, 0, &timeout_ms)))
		return rc;
	struct cli_drill_load *load = NULL;
	struct cn_err err = {0};
	if (profile && cli_drill_load_prepare(profile, &load, &err) < 0)
		return cli_error(&err);
	struct cn_store *st;
	if ((rc = cli_store(cli, &st)) != 0)
		goto out;
	int64_t id;
	if (cn_store_drill_start(st, service, to, policy ? policy : "default", hold_ms, baseline_ms, reason, &id,
				 &err) < 0) {
		rc = cli_error(&err);
		goto out;
	}
	if (no_wait) {
		if (cli->output == CLI_JSON)
			rc = cli_print_json(json_pack("{s:I, s:s}", "id", (json_int_t)id, "service", service));
		else
			printf("drill %lld started on service %s ('canaryctl drill wait %lld' to wait)\n", (long long)id,
			       service, (long long)id);
		goto out;
	}
	if (load && cli_drill_load_start(load, url, baseline_ms + hold_ms, &err) < 0)
		fprintf(stderr, "canaryctl: warning: no synthetic load: %s; the drill goes on with real traffic\n",
			err.msg);
	rc = wait_drill(cli, st, id, timeout_ms);
out:
	cli_drill_load_finish(load, cli->output == CLI_TEXT ? stdout : NULL);
	return rc;
}

static int need_id(int argc, char **argv, const struct cli_opt *opts, int64_t *id, const char *what)
{
	char *pos[1];
	int npos = 0, rc = cli_parse(argc, argv, opts, pos, 1, &npos, USAGE);
	if (rc)
		return rc == 1 ? -1 : rc;
	if (npos < 1)
		return cli_usage_error(USAGE, "drill %s needs a drill ID", what);
	return cli_parse_id(pos[0], id, USAGE);
}

static int drill_wait(struct cli *cli, int argc, char **argv)
{
	const char *timeout = NULL;
	const struct cli_opt opts[] = {{"timeout", &timeout, NULL}, {NULL, NULL, NULL}};
	int64_t id, timeout_ms;
	int rc = need_id(argc, argv, opts, &id, "wait");
	if (rc)
		return rc < 0 ? 0 : rc;
	if ((rc = parse_duration("timeout", timeout, 0, &timeout_ms)))
		return rc;
	struct cn_store *st;
	if ((rc = cli_store(cli, &st)) != 0)
		return rc;
	return wait_drill(cli, st, id, timeout_ms);
}

static int drill_abort(struct cli *cli, int argc, char **argv)
{
	const char *reason = NULL;
	const struct cli_opt opts[] = {{"reason", &reason, NULL}, {NULL, NULL, NULL}};
	int64_t id;
	struct cn_err err = {0};
	int rc = need_id(argc, argv, opts, &id, "abort");
	if (rc)
		return rc < 0 ? 0 : rc;
	struct cn_store *st;
	if ((rc = cli_store(cli, &st)) != 0)
		return rc;
	if (cn_store_drill_abort(st, id, reason, &err) < 0)
		return cli_error(&err);
	/* canaryd restores the primary at once (NOTIFY); say when the gateway confirmed it */
	struct cn_drill_row *d = NULL;
	int64_t start = cn_mono_ms();
	while (cn_store_drill_get(st, id, &d, &err) == 0 && !cn_drill_ended(d->phase) &&
	       cn_mono_ms() - start < ABORT_WAIT_MS) {
		cn_drill_row_free(d);
		d = NULL;
		usleep(50 * 1000);
	}
	if (!d)
		return cli_error(&err);
	bool ended = cn_drill_ended(d->phase);
	if (cli->output == CLI_JSON) {
		rc = cli_print_json(cli_json_drill(d, 0));
	} else if (ended) {
		printf("drill %lld: %s; %s carries all traffic again\n", (long long)id, cn_drill_phase_name(d->phase),
		       d->primary);
	} else {
		printf("drill %lld: abort recorded\n", (long long)id);
		fprintf(stderr, "canaryctl: warning: drill %lld has not confirmed the primary after %ds (%s); canaryd "
				"keeps restoring it\n", (long long)id, ABORT_WAIT_MS / 1000, d->reason);
	}
	cn_drill_row_free(d);
	return rc;
}

static int drill_status(struct cli *cli, int argc, char **argv)
{
	const char *service = NULL;
	const struct cli_opt opts[] = {{"service", &service, NULL}, {NULL, NULL, NULL}};
	char *pos[1];
	int npos = 0, rc = cli_parse(argc, argv, opts, pos, 1, &npos, USAGE);
	if (rc)
		return rc == 1 ? 0 : rc;
	int64_t ids[LIST_MAX];
	int n = 0;
	struct cn_err err = {0};
	struct cn_store *st;
	if (npos == 1 && (rc = cli_parse_id(pos[0], &ids[0], USAGE)))
		return rc;
	if ((rc = cli_store(cli, &st)) != 0)
		return rc;
	if (npos == 1)
		n = 1;
	else if (cn_store_drill_ids(st, service, false, ids, LIST_MAX, &n, &err) < 0)
		return cli_error(&err);
	json_t *arr = cli->output == CLI_JSON ? json_array() : NULL;
	for (int i = 0; i < n; i++) {
		struct cn_drill_row *d = NULL;
		if (cn_store_drill_get(st, ids[i], &d, &err) < 0) {
			json_decref(arr);
			return cli_error(&err);
		}
		if (arr)
			json_array_append_new(arr, cli_json_drill(d, -1));
		else
			cn_report_drill_print(stdout, d, npos == 1);
		cn_drill_row_free(d);
	}
	if (arr) {
		json_t *doc = npos == 1 ? json_incref(json_array_get(arr, 0)) : json_incref(arr);
		json_decref(arr);
		return cli_print_json(doc);
	}
	if (n == 0)
		printf("no drills\n");
	return 0;
}

int cmd_drill(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error(USAGE, "drill needs a subcommand");
	const char *sub = argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		fputs(USAGE, stdout);
		return 0;
	}
	if (strcmp(sub, "failover") == 0)
		return drill_failover(cli, argc - 1, argv + 1);
	if (strcmp(sub, "wait") == 0)
		return drill_wait(cli, argc - 1, argv + 1);
	if (strcmp(sub, "abort") == 0)
		return drill_abort(cli, argc - 1, argv + 1);
	if (strcmp(sub, "status") == 0)
		return drill_status(cli, argc - 1, argv + 1);
	if (strcmp(sub, "report") == 0)
		return cli_drill_report(cli, argc - 1, argv + 1);
	return cli_usage_error(USAGE, "unknown drill subcommand '%s'", sub);
}
