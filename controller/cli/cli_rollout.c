/* canaryctl rollout: start a rollout, watch it, wait for its outcome (the pipeline's exit code), steer it. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "canary/clock.h"
#include "canary/parse.h"
#include "canary/policy.h"
#include "canary/report_term.h"
#include "canary/rollout.h"
#include "canary/service.h"
#include "canary/store.h"
#include "canary/store_audit.h"
#include "canary/store_rollouts.h"
#include "cli_int.h"

/* Exit codes of `rollout start --wait` and `rollout wait` (DESIGN.md "Contracts"). */
enum {
	EXIT_PROMOTED = 0,
	EXIT_ROLLED_BACK = 1,
	EXIT_ABORTED = 2,
	EXIT_TIMEOUT = 3,
	EXIT_PAUSED = 4,
};

#define POLL_MS 200
#define SETTLE_MS 30000 /* how long an ended rollout's final weight may stay unconfirmed before wait returns */
#define COMMAND_WAIT_MS 10000
#define COMMAND_POLL_MS 10
#define ABORT_CONFIRM_MS 5000 /* how long an accepted abort waits for the gateway to confirm weight 0 */
#define WATCH_MS 1000
#define RECONNECT_MIN_MS 200   /* first pause before reconnecting after a lost connection; doubles */
#define RECONNECT_MAX_MS 2000  /* longest pause between reconnection attempts */
#define RECONNECT_NOTE_MS 10000 /* how often a long outage is mentioned again */

static const char USAGE[] =
	"usage: canaryctl rollout start --service S --candidate VERSION [--policy P] [--reason TEXT]\n"
	"                               [--wait] [--timeout D] [--exit-on-pause] [--no-gateway-check]\n"
	"       canaryctl rollout status [ID] [--watch [--count N]]\n"
	"       canaryctl rollout wait ID [--timeout D] [--exit-on-pause]\n"
	"       canaryctl rollout approve|pause|resume|abort ID [--reason TEXT]\n"
	"       canaryctl rollout promote ID --full [--reason TEXT]\n"
	"       canaryctl rollout audit ID\n"
	"on a terminal, --wait, wait and status --watch redraw a live view; otherwise they print one line per event.\n"
	"exit codes of --wait and wait: 0 promoted, 1 rolled back, 2 aborted, 3 timed out (the rollout goes on),\n"
	"4 paused or awaiting approval (with --exit-on-pause); 64 usage, 65 invalid input, 69 unavailable,\n"
	"70 internal, 77 permission denied. A database lost while waiting (a restart, a failover) is reconnected\n"
	"to until --timeout; 69 only when it cannot be reached at the start or is still away at the timeout\n";

static int parse_timeout(const char *s, int64_t *ms)
{
	struct cn_err err = {0};
	if (!s) {
		*ms = 0;
		return 0;
	}
	if (cn_parse_duration_ms(s, 0, ms, &err) < 0)
		return cli_usage_error(USAGE, "--timeout: %s", err.msg);
	return 0;
}

/* A string for the text views: "" where the database has none. */
static const char *E(const char *s)
{
	return s ? s : "";
}

/* A rollout's stored row and its pinned policy, parsed: what the live views need beyond the status document. */
struct live {
	struct cn_rollout_row *row;
	struct cn_policy *policy; /* NULL if the stored policy does not parse (then the view says less) */
	int64_t policy_id;
};

static void live_clear(struct live *lv)
{
	cn_rollout_row_free(lv->row);
	free(lv->policy);
	memset(lv, 0, sizeof *lv);
}

/* Loads (or reloads) the rollout's row; parses its policy only when the pinned version changed. */
static int live_load(struct cn_store *st, int64_t id, struct live *lv, struct cn_err *err)
{
	struct cn_rollout_row *row = NULL;
	int rc = cn_store_rollout_get(st, id, &row, err);
	if (rc < 0)
		return rc;
	cn_rollout_row_free(lv->row);
	lv->row = row;
	if (lv->policy && lv->policy_id == row->policy_id)
		return 0;
	free(lv->policy);
	lv->policy = calloc(1, sizeof *lv->policy);
	struct cn_err perr = {0};
	if (lv->policy && cn_policy_parse(row->policy_source, strlen(row->policy_source), "stored policy", lv->policy,
					  &perr) < 0) {
		free(lv->policy);
		lv->policy = NULL;
	}
	lv->policy_id = row->policy_id;
	return 0;
}

static int exit_for_phase(enum cn_phase phase, bool exit_on_pause, bool *done)
{
	*done = true;
	switch (phase) {
	case CN_PHASE_PROMOTED:
		return EXIT_PROMOTED;
	case CN_PHASE_ROLLED_BACK:
		return EXIT_ROLLED_BACK;
	case CN_PHASE_FAILED:
		return CN_EINTERNAL; /* not a regression: the rollout could not go on (its state or policy did not fit) */
	case CN_PHASE_ABORTED:
		return EXIT_ABORTED;
	case CN_PHASE_PAUSED:
	case CN_PHASE_AWAITING_APPROVAL:
		if (exit_on_pause)
			return EXIT_PAUSED;
		break;
	case CN_PHASE_PENDING:
	case CN_PHASE_PROGRESSING:
		break;
	}
	*done = false;
	return 0;
}

/* The connection was lost while waiting (a database restart or failover): the rollout goes on without us, so
 * reconnect with back-off until the wait's own timeout (counted from start; 0: no limit) instead of failing the
 * pipeline. Says so on stderr when the outage begins, every RECONNECT_NOTE_MS while it lasts, and when it ends.
 * Returns 0 with *st (and cli->store) replaced by the new connection, or the exit code after printing why:
 * CN_EUNAVAIL when the timeout passed with the database still away (the outcome is unknown, so not EXIT_TIMEOUT). */
static int reconnect(struct cli *cli, struct cn_store **st, int64_t id, int64_t start, int64_t timeout_ms,
		     struct cn_err *err)
{
	int64_t began = cn_mono_ms(), noted = began, backoff = RECONNECT_MIN_MS;
	fprintf(stderr, "canaryctl: lost the database while waiting for rollout %lld: %s; reconnecting%s\n",
		(long long)id, err->msg, timeout_ms > 0 ? " until the --timeout" : "");
	for (;;) {
		int64_t pause = backoff;
		if (timeout_ms > 0) {
			int64_t left = timeout_ms - (cn_mono_ms() - start);
			if (left <= 0) {
				fprintf(stderr, "canaryctl: the database is still unavailable after %llds (--timeout %llds): "
						"%s; rollout %lld goes on without us: 'canaryctl rollout wait %lld' to wait "
						"again\n",
					(long long)((cn_mono_ms() - began) / 1000), (long long)(timeout_ms / 1000),
					err->msg, (long long)id, (long long)id);
				return CN_EUNAVAIL;
			}
			if (pause > left)
				pause = left;
		}
		usleep((useconds_t)pause * 1000);
		struct cn_store *n = cn_store_connect(cli->db, err);
		if (n) {
			cn_store_close(cli->store);
			cli->store = *st = n;
			fprintf(stderr, "canaryctl: reconnected to the database after %.1fs; waiting for rollout %lld "
					"again\n",
				(double)(cn_mono_ms() - began) / 1000.0, (long long)id);
			return 0;
		}
		if (err->code != CN_EUNAVAIL)
			return cli_error(err);
		if (cn_mono_ms() - noted >= RECONNECT_NOTE_MS) {
			noted = cn_mono_ms();
			fprintf(stderr, "canaryctl: still reconnecting after %llds: %s\n",
				(long long)((noted - began) / 1000), err->msg);
		}
		backoff = backoff * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : backoff * 2;
	}
}

/* Polls the rollout until it ends (and the gateway confirmed its final weight), pauses (with exit_on_pause), or
 * timeout_ms passes (0: no limit). Text output on a terminal: a live line redrawn at every poll (a new line at every
 * change of phase or step); otherwise one plain line whenever something changes. JSON: only the final document. */
static int wait_rollout(struct cli *cli, struct cn_store *st, int64_t id, int64_t timeout_ms, bool exit_on_pause)
{
	struct cn_err err = {0};
	int64_t start = cn_mono_ms(), ended_ms = 0;
	char last[1024] = "", last_event[64] = "";
	struct cn_status_list *list = NULL;
	const struct cn_rollout_status *cur = NULL;
	struct live lv = {0};
	bool tty = cli->output == CLI_TEXT && isatty(STDOUT_FILENO);
	bool drawn = false;
	int code = EXIT_TIMEOUT;
	for (;;) {
		cn_status_list_free(list);
		list = NULL;
		cur = NULL;
		if (cn_store_rollout_status(st, id, &list, &err) < 0) {
			if (err.code != CN_EUNAVAIL) {
				code = cli_error(&err);
				goto out;
			}
			if (drawn)
				fputc('\n', stdout); /* the messages go below the live line, not into it */
			drawn = false;
			fflush(stdout);
			if ((code = reconnect(cli, &st, id, start, timeout_ms, &err)) != 0)
				goto out;
			continue;
		}
		cur = &list->items[0];
		if (tty) {
			char live[1024], event[64];
			/* the row only adds the hold's time left and who is awaited: the view goes on without it */
			struct cn_err lerr = {0};
			if (live_load(st, id, &lv, &lerr) < 0)
				live_clear(&lv);
			cn_term_live_line(cur, lv.row, lv.policy, cn_wall_ms(), live, sizeof live);
			snprintf(event, sizeof event, "%s|%d", cn_phase_name(cur->phase), cur->step);
			if (drawn && strcmp(event, last_event) != 0)
				fputc('\n', stdout); /* keep the line of the step that just ended */
			snprintf(last_event, sizeof last_event, "%s", event);
			cn_term_redraw(stdout, live);
			drawn = true;
		} else {
			char line[1024];
			char verdicts[512];
			cn_term_verdicts(cur, verdicts, sizeof verdicts);
			snprintf(line, sizeof line, "%s|%d|%g|%s|%s", cn_phase_name(cur->phase), cur->step, cur->weight,
				 verdicts, E(cur->reason));
			if (strcmp(line, last) != 0) {
				if (cli->output == CLI_TEXT)
					cn_term_print_status(stdout, cur);
				fflush(stdout);
				snprintf(last, sizeof last, "%s", line);
			}
		}
		bool done;
		int c = exit_for_phase(cur->phase, exit_on_pause, &done);
		double w = cur->weight, aw = cur->applied_weight;
		bool settled = !isnan(aw) && fabs(w - aw) < 1e-9;
		/* An ended rollout counts once the gateway carries its final weight; if the gateway does not confirm
		 * within SETTLE_MS the outcome is still the outcome, and canaryd keeps reconciling. */
		if (done && !settled && c != EXIT_PAUSED && ended_ms == 0)
			ended_ms = cn_mono_ms();
		if (done && (settled || c == EXIT_PAUSED || cn_mono_ms() - ended_ms >= SETTLE_MS)) {
			if (!settled && c != EXIT_PAUSED)
				fprintf(stderr, "canaryctl: rollout %lld ended (%s) but the gateway has not confirmed weight "
						"%g%% for the candidate after %ds; canaryd keeps retrying\n",
					(long long)id, cn_phase_name(cur->phase), w, SETTLE_MS / 1000);
			code = c;
			break;
		}
		if (timeout_ms > 0 && cn_mono_ms() - start >= timeout_ms) {
			if (drawn)
				fputc('\n', stdout);
			drawn = false;
			fflush(stdout);
			/* A wait that ends on a dependency that is away is 69, not a plain time-out: the pipeline learns
			 * that nothing moved and why (the gateway, or no canaryd at all). */
			const char *why = E(cur->reason);
			bool dep_away = strncmp(why, "holding: gateway unavailable", 28) == 0 ||
					strncmp(why, "holding: canaryd cannot act", 27) == 0;
			bool never_started = !dep_away && cur->phase == CN_PHASE_PENDING && !cur->has_status;
			if (never_started || dep_away) {
				fprintf(stderr, "canaryctl: timed out after %llds waiting for rollout %lld: %s; it goes on "
						"('canaryctl rollout wait %lld' to wait again)\n",
					(long long)(timeout_ms / 1000), (long long)id,
					never_started ? "no canaryd has picked it up (is canaryd running and connected to "
							"this database?)" : why,
					(long long)id);
				code = CN_EUNAVAIL;
				break;
			}
			fprintf(stderr, "canaryctl: timed out after %llds waiting for rollout %lld; it goes on "
					"('canaryctl rollout wait %lld' to wait again)\n",
				(long long)(timeout_ms / 1000), (long long)id, (long long)id);
			code = EXIT_TIMEOUT;
			break;
		}
		usleep(POLL_MS * 1000);
	}
	if (drawn) {
		/* the final state as a plain line, with the reason, in place of the live one */
		cn_term_clear_line(stdout);
		cn_term_print_status(stdout, cur);
		fflush(stdout);
	}
	if (cli->output == CLI_JSON) {
		cli_print_json(cli_json_waited(cur, code));
	}
out:
	live_clear(&lv);
	cn_status_list_free(list);
	return code;
}

/* Before a rollout starts: the service's gateway must answer, or the rollout would only hold. An unknown service
 * is left to the start itself (it says so). Returns 0, or the exit code after printing why nothing was started. */
static int check_gateway(struct cn_store *st, const char *service)
{
	struct cn_err err = {0};
	struct cn_service *svc = NULL;
	struct cn_service_list *stored = NULL;
	int rc = 0;
	if (cn_store_service_show(st, service, &stored, &err) < 0)
		return err.code == CN_EINPUT ? 0 : cli_error(&err);
	const char *src = stored->items[0].source;
	if (!src || !(svc = calloc(1, sizeof *svc))) {
		rc = cli_error(&(struct cn_err){CN_EINTERNAL, "the stored service has no source"});
		goto out;
	}
	if (cn_service_parse(src, strlen(src), "stored service", svc, &err) < 0) {
		rc = cli_error(&err);
		goto out;
	}
	if (cli_gateway_probe(svc, &err) < 0) {
		fprintf(stderr, "canaryctl: cannot start a rollout of '%s': %s; nothing was started: bring the gateway "
			"back, or pass --no-gateway-check when only canaryd's host can reach it\n", service, err.msg);
		rc = CN_EUNAVAIL;
	}
out:
	free(svc);
	cn_service_list_free(stored);
	return rc;
}

/* Before a rollout starts: the policy's objectives must be computable from what the service configures (token
 * counters, costs for cost_per_1k_tokens), or they would sit inconclusive. Unknown names are left to the start
 * itself. Returns 0, or the exit code (65) after printing where the policy asks for what the service lacks. */
static int check_objectives(struct cn_store *st, const char *service, const char *policy)
{
	struct cn_err err = {0};
	struct cn_service *svc = NULL;
	struct cn_policy *pol = NULL;
	struct cn_service_list *stored = NULL;
	struct cn_policy_version *pv = NULL;
	char origin[CN_NAME_MAX + 48];
	int rc = 0;
	if (cn_store_service_show(st, service, &stored, &err) < 0)
		return err.code == CN_EINPUT ? 0 : cli_error(&err);
	if (cn_store_policy_show(st, policy, 0, &pv, &err) < 0) {
		rc = err.code == CN_EINPUT ? 0 : cli_error(&err);
		goto out;
	}
	const char *ssrc = stored->items[0].source, *psrc = pv->source;
	svc = calloc(1, sizeof *svc);
	pol = calloc(1, sizeof *pol);
	if (!ssrc || !psrc || !svc || !pol) {
		rc = cli_error(&(struct cn_err){CN_EINTERNAL, "the stored service or policy has no source"});
		goto out;
	}
	snprintf(origin, sizeof origin, "policy '%s' version %d", pv->name ? pv->name : policy, pv->version);
	if (cn_service_parse(ssrc, strlen(ssrc), "stored service", svc, &err) < 0 ||
	    cn_policy_parse(psrc, strlen(psrc), origin, pol, &err) < 0 ||
	    cn_policy_service_check(pol, psrc, origin, svc, &err) < 0) {
		fprintf(stderr, "canaryctl: cannot start a rollout of '%s' with policy '%s': %s; nothing was started\n",
			service, policy, err.msg);
		rc = err.code == CN_EINPUT ? CN_EINPUT : cli_error(&err);
	}
out:
	free(svc);
	free(pol);
	cn_service_list_free(stored);
	cn_policy_version_free(pv);
	return rc;
}

static int rollout_start(struct cli *cli, int argc, char **argv)
{
	const char *service = NULL, *candidate = NULL, *policy = NULL, *reason = NULL, *timeout = NULL;
	bool wait = false, exit_on_pause = false, no_gateway_check = false;
	const struct cli_opt opts[] = {
		{"service", &service, NULL}, {"candidate", &candidate, NULL}, {"policy", &policy, NULL},
		{"reason", &reason, NULL},   {"timeout", &timeout, NULL},     {"wait", NULL, &wait},
		{"exit-on-pause", NULL, &exit_on_pause}, {"no-gateway-check", NULL, &no_gateway_check},
		{NULL, NULL, NULL},
	};
	int npos = 0, rc;
	if ((rc = cli_parse(argc, argv, opts, NULL, 0, &npos, USAGE)) != 0)
		return rc == 1 ? 0 : rc;
	if (!service || !candidate)
		return cli_usage_error(USAGE, "rollout start needs --service and --candidate");
	int64_t timeout_ms;
	if ((rc = parse_timeout(timeout, &timeout_ms)) != 0)
		return rc;
	struct cn_store *st;
	if ((rc = cli_store(cli, &st)) != 0)
		return rc;
	struct cn_err err = {0};
	int64_t id = 0;
	if (cn_store_may_call(st, "canary.start_rollout(text, text, text, text)", "start rollouts", &err) < 0)
		return cli_error(&err);
	if ((rc = check_objectives(st, service, policy ? policy : "default")) != 0)
		return rc;
	if (!no_gateway_check && (rc = check_gateway(st, service)) != 0)
		return rc;
	if (cn_store_rollout_create(st, service, candidate, policy ? policy : "default", reason, &id, &err) < 0)
		return cli_error(&err);
	if (!wait) {
		if (cli->output == CLI_JSON)
			return cli_print_json(cli_json_started(id, service, candidate));
		printf("rollout %lld started: %s -> %s\n", (long long)id, service, candidate);
		return 0;
	}
	if (cli->output == CLI_TEXT)
		printf("rollout %lld started: %s -> %s\n", (long long)id, service, candidate);
	return wait_rollout(cli, st, id, timeout_ms, exit_on_pause);
}

static int rollout_wait(struct cli *cli, int argc, char **argv)
{
	const char *timeout = NULL;
	bool exit_on_pause = false;
	const struct cli_opt opts[] = {
		{"timeout", &timeout, NULL}, {"exit-on-pause", NULL, &exit_on_pause}, {NULL, NULL, NULL}};
	char *pos[1];
	int npos = 0, rc;
	int64_t id = 0, timeout_ms = 0;
	if ((rc = cli_parse(argc, argv, opts, pos, 1, &npos, USAGE)) != 0)
		return rc == 1 ? 0 : rc;
	if (npos != 1)
		return cli_usage_error(USAGE, "rollout wait needs a rollout ID");
	if ((rc = cli_parse_id(pos[0], &id, USAGE)) != 0 || (rc = parse_timeout(timeout, &timeout_ms)) != 0)
		return rc;
	struct cn_store *st;
	if ((rc = cli_store(cli, &st)) != 0)
		return rc;
	return wait_rollout(cli, st, id, timeout_ms, exit_on_pause);
}

static volatile sig_atomic_t watch_stop;

static void on_watch_signal(int sig)
{
	(void)sig;
	watch_stop = 1;
}

/* One frame of `status --watch`: every active rollout with its step, weight, verdicts and what it waits for. */
static int watch_frame(struct cli *cli, struct cn_store *st, bool tty, struct cn_err *err)
{
	struct cn_status_list *list = NULL;
	int rc = cn_store_rollout_status(st, 0, &list, err);
	if (rc < 0)
		return rc;
	int64_t now = cn_wall_ms();
	if (cli->output == CLI_JSON) {
		/* one compact document per frame and line */
		json_t *doc = cli_json_status_list(list);
		char *js = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		json_decref(doc);
		cn_status_list_free(list);
		if (!js)
			return cn_fail(err, CN_EINTERNAL, "out of memory");
		printf("%s\n", js);
		free(js);
		fflush(stdout);
		return 0;
	}
	cn_term_watch_header(stdout, tty, now, list->n, WATCH_MS / 1000);
	for (size_t i = 0; i < list->n; i++) {
		const struct cn_rollout_status *r = &list->items[i];
		struct live lv = {0};
		struct cn_err lerr = {0};
		char line[1024];
		if (live_load(st, r->id, &lv, &lerr) < 0)
			live_clear(&lv); /* it ended between the two reads: show what the list said */
		cn_term_live_line(r, lv.row, lv.policy, now, line, sizeof line);
		cn_term_print_line(stdout, tty, line);
		live_clear(&lv);
	}
	if (!tty)
		putchar('\n');
	fflush(stdout);
	cn_status_list_free(list);
	return 0;
}

/* `status --watch`: redraws every second until Ctrl-C, or count frames (count > 0). */
static int watch_status(struct cli *cli, struct cn_store *st, int count)
{
	struct sigaction sa, old_int, old_term;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_watch_signal;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	bool tty = cli->output == CLI_TEXT && isatty(STDOUT_FILENO);
	int rc = 0;
	for (int frame = 0; !watch_stop && (count == 0 || frame < count); frame++) {
		struct cn_err err = {0};
		if (frame > 0)
			for (int k = 0; k < WATCH_MS / 50 && !watch_stop; k++)
				usleep(50 * 1000);
		if (watch_stop)
			break;
		if (watch_frame(cli, st, tty, &err) < 0) {
			rc = cli_error(&err);
			break;
		}
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	return rc;
}

static int rollout_status(struct cli *cli, int argc, char **argv)
{
	const char *count_s = NULL;
	bool watch = false;
	const struct cli_opt opts[] = {{"watch", NULL, &watch}, {"count", &count_s, NULL}, {NULL, NULL, NULL}};
	char *pos[1];
	int npos = 0, rc, count = 0;
	int64_t id = 0;
	if ((rc = cli_parse(argc, argv, opts, pos, 1, &npos, USAGE)) != 0)
		return rc == 1 ? 0 : rc;
	if (npos == 1 && (rc = cli_parse_id(pos[0], &id, USAGE)) != 0)
		return rc;
	if (count_s && !watch)
		return cli_usage_error(USAGE, "--count goes with --watch");
	if (count_s && (rc = cli_parse_int("count", count_s, 1, &count, USAGE)) != 0)
		return rc;
	if (watch && id > 0)
		return cli_usage_error(USAGE, "--watch lists every active rollout; use 'rollout wait %lld' for one",
				       (long long)id);
	struct cn_store *st;
	if ((rc = cli_store(cli, &st)) != 0)
		return rc;
	if (watch)
		return watch_status(cli, st, count);
	struct cn_err err = {0};
	struct cn_status_list *list = NULL;
	if (cn_store_rollout_status(st, id, &list, &err) < 0)
		return cli_error(&err);
	if (cli->output == CLI_JSON) {
		rc = cli_print_json(id > 0 ? cli_json_status(&list->items[0]) : cli_json_status_list(list));
		cn_status_list_free(list);
		return rc;
	}
	if (id > 0) {
		/* the row only adds what the rollout waits for: the view goes on without it */
		struct live lv = {0};
		if (live_load(st, id, &lv, &err) < 0)
			live_clear(&lv);
		cn_term_print_rollout(stdout, &list->items[0], lv.row, lv.policy, cn_wall_ms());
		live_clear(&lv);
	} else if (list->n == 0) {
		printf("no active rollouts\n");
	} else {
		for (size_t i = 0; i < list->n; i++)
			cn_term_print_status(stdout, &list->items[i]);
	}
	cn_status_list_free(list);
	return 0;
}

/* Checks a command against the rollout as stored before anything is written: the core's rules for the current
 * phase (cn_command) and the policy's approval.distinct_approver. Returns 0, or the exit code after printing why.
 * The daemon checks again when it handles the command (the rollout may move meanwhile). */
static int precheck_command(struct cn_store *st, int64_t id, enum cn_command_kind kind)
{
	struct cn_err err = {0};
	struct live lv = {0};
	struct cn_tick_result *res = calloc(1, sizeof *res);
	int rc = 0;
	if (!res) {
		rc = cli_error(&(struct cn_err){.code = CN_EINTERNAL, .msg = "out of memory"});
		goto out;
	}
	if (cn_store_may_command(st, &err) < 0 || live_load(st, id, &lv, &err) < 0) {
		rc = cli_error(&err);
		goto out;
	}
	if (!lv.policy) {
		fprintf(stderr, "canaryctl: rollout %lld: its stored policy '%s' version %d does not parse; "
				"this is a bug, please report it\n",
			(long long)id, lv.row->policy_name, lv.row->policy_version);
		rc = CN_EINTERNAL;
		goto out;
	}
	struct cn_rollout_state cur;
	if (lv.row->has_state)
		cur = lv.row->state;
	else
		cn_rollout_init(&cur);
	cur.phase = lv.row->phase; /* the column is what `status` shows */
	if (cn_command(lv.policy, &cur, kind, cn_wall_ms(), res, &err) < 0) {
		fprintf(stderr, "canaryctl: cannot %s rollout %lld: %s; nothing was changed\n", cn_command_name(kind),
			(long long)id, err.msg);
		rc = CN_EINPUT;
		goto out;
	}
	if (kind == CN_CMD_APPROVE && lv.policy->approver_must_differ && strcmp(lv.row->created_by, cn_store_user(st)) == 0) {
		fprintf(stderr, "canaryctl: permission denied: '%s' started rollout %lld and policy '%s' requires a "
				"different approver (approval.distinct_approver); ask another operator to approve\n",
			lv.row->created_by, (long long)id, lv.policy->name);
		rc = CN_EPERM;
		goto out;
	}
out:
	free(res);
	live_clear(&lv);
	return rc;
}

/* Why the gateway has not confirmed a rollout's weight, as canaryd last said: the reason of the rollout's latest
 * "hold" audit event about the gateway after its last accepted command ("holding: gateway unavailable: ..."),
 * written into buf; "" if none. */
static void gateway_hold_reason(struct cn_store *st, int64_t id, char *buf, size_t size)
{
	struct cn_err err = {0};
	struct cn_timeline *t = NULL;
	buf[0] = '\0';
	if (cn_store_audit_timeline(st, id, &t, &err) < 0)
		return;
	for (size_t i = 0; i < t->nevents; i++) {
		const struct cn_timeline_event *ev = &t->events[i];
		const char *kind = E(ev->kind), *reason = E(ev->reason);
		if (strcmp(kind, "command.accepted") == 0)
			buf[0] = '\0'; /* only what was said after the command counts */
		else if (strcmp(kind, "hold") == 0 && strstr(reason, "gateway"))
			snprintf(buf, size, "%s", reason);
	}
	cn_timeline_free(t);
}

/* After an accepted abort: waits up to ABORT_CONFIRM_MS for the gateway to confirm the candidate's weight 0. The
 * abort stands either way (canaryd reconciles the gateway when it answers); if it is not confirmed, says so and why
 * on stderr. Returns whether it was confirmed. */
static bool abort_confirmed(struct cn_store *st, int64_t id)
{
	int64_t start = cn_mono_ms();
	struct cn_err err = {0};
	for (;;) {
		struct cn_rollout_row *row = NULL;
		if (cn_store_rollout_get(st, id, &row, &err) < 0) {
			fprintf(stderr, "canaryctl: warning: rollout %lld is aborted, but its gateway weight could not be "
					"read: %s\n", (long long)id, err.msg);
			return false;
		}
		bool ok = !isnan(row->applied_weight) && fabs(row->applied_weight - row->weight) < 1e-9;
		cn_rollout_row_free(row);
		if (ok)
			return true;
		int64_t waited = cn_mono_ms() - start;
		if (waited >= ABORT_CONFIRM_MS)
			break;
		/* the gateway usually confirms within tens of milliseconds of the accept: look often at first (the
		 * operator, or a pipeline step, waits on this), then every POLL_MS */
		usleep((waited < 1000 ? COMMAND_POLL_MS : POLL_MS) * 1000);
	}
	char why[600];
	gateway_hold_reason(st, id, why, sizeof why);
	fprintf(stderr, "canaryctl: warning: rollout %lld is aborted (candidate intended at 0%%), but the gateway has not "
			"confirmed weight 0 after %ds: %s; canaryd keeps retrying and moves it as soon as the gateway "
			"answers ('canaryctl rollout status %lld' to check)\n",
		(long long)id, ABORT_CONFIRM_MS / 1000,
		why[0] ? why : "canaryd has not reported a gateway error yet (is a canaryd running?)", (long long)id);
	return false;
}

/* Queues a command and waits (bounded) for the owning daemon to accept or refuse it. */
static int rollout_command(struct cli *cli, enum cn_command_kind kind, int argc, char **argv)
{
	const char *reason = NULL;
	bool full = false;
	const struct cli_opt opts[] = {{"reason", &reason, NULL}, {"full", NULL, &full}, {NULL, NULL, NULL}};
	char *pos[1];
	int npos = 0, rc;
	int64_t id = 0;
	if ((rc = cli_parse(argc, argv, opts, pos, 1, &npos, USAGE)) != 0)
		return rc == 1 ? 0 : rc;
	if (npos != 1)
		return cli_usage_error(USAGE, "rollout %s needs a rollout ID", argv[0]);
	if ((rc = cli_parse_id(pos[0], &id, USAGE)) != 0)
		return rc;
	if (kind == CN_CMD_PROMOTE_FULL && !full)
		return cli_usage_error(USAGE, "rollout promote needs --full (skip the remaining steps and analysis)");
	if (full && kind != CN_CMD_PROMOTE_FULL)
		return cli_usage_error(USAGE, "--full goes with 'rollout promote' only");
	if (reason && strlen(reason) > CN_REASON_MAX)
		return cli_usage_error(NULL, "--reason is %zu characters long; the limit is %d: shorten it",
				       strlen(reason), CN_REASON_MAX);
	struct cn_store *st;
	if ((rc = cli_store(cli, &st)) != 0)
		return rc;
	struct cn_err err = {0};
	/* An abort is the on-call's emergency exit: it skips the precheck's reads of the rollout and its policy (the
	 * core refuses an abort only for an ended rollout, which canary.queue_command refuses too, in the same words
	 * a tired engineer needs: which rollout, how it ended). */
	if (kind == CN_CMD_ABORT && cn_store_may_command(st, &err) < 0)
		return cli_error(&err);
	if (kind != CN_CMD_ABORT && (rc = precheck_command(st, id, kind)) != 0)
		return rc;
	int64_t cmd = 0;
	if (cn_store_command_add(st, id, kind, reason, &cmd, &err) < 0)
		return cli_error(&err);
	int64_t start = cn_mono_ms();
	bool done = false, accepted = false;
	char msg[CN_ERR_MSG_MAX] = "";
	while (cn_mono_ms() - start < COMMAND_WAIT_MS) {
		if (cn_store_command_result(st, cmd, &done, &accepted, msg, sizeof msg, &err) < 0)
			return cli_error(&err);
		if (done)
			break;
		usleep(COMMAND_POLL_MS * 1000);
	}
	if (!done) {
		fprintf(stderr, "canaryctl: %s queued for rollout %lld, but no canaryd took it within %ds; it will "
				"apply when a daemon runs\n",
			cn_command_name(kind), (long long)id, COMMAND_WAIT_MS / 1000);
		return CN_EUNAVAIL;
	}
	if (!accepted) {
		fprintf(stderr, "canaryctl: %s refused: %s\n", cn_command_name(kind), msg);
		return strncmp(msg, "permission denied", 17) == 0 ? CN_EPERM : CN_EINPUT;
	}
	/* An abort is recorded now, whatever the gateway does: exit 0; warn if the gateway lags behind. */
	bool confirmed = kind != CN_CMD_ABORT || abort_confirmed(st, id);
	if (cli->output == CLI_JSON)
		return cli_print_json(cli_json_command(id, cn_command_name(kind), kind == CN_CMD_PROMOTE_FULL, confirmed));
	printf("rollout %lld: %s accepted%s%s\n", (long long)id, cn_command_name(kind),
	       kind == CN_CMD_PROMOTE_FULL ? " (emergency: remaining steps and analysis skipped; recorded as such)" : "",
	       confirmed ? "" : " (the gateway has not confirmed it yet)");
	return 0;
}

int cmd_rollout(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error(USAGE, "rollout needs a subcommand");
	const char *sub = argv[1];
	argc--;
	argv++;
	if (strcmp(sub, "start") == 0)
		return rollout_start(cli, argc, argv);
	if (strcmp(sub, "status") == 0)
		return rollout_status(cli, argc, argv);
	if (strcmp(sub, "wait") == 0)
		return rollout_wait(cli, argc, argv);
	if (strcmp(sub, "audit") == 0)
		return cmd_audit(cli, argc, argv); /* the same timeline as `canaryctl audit ID` */
	static const struct {
		const char *name;
		enum cn_command_kind kind;
	} cmds[] = {{"approve", CN_CMD_APPROVE}, {"pause", CN_CMD_PAUSE},
		    {"resume", CN_CMD_RESUME},   {"abort", CN_CMD_ABORT},
		    {"promote", CN_CMD_PROMOTE_FULL}};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (strcmp(sub, cmds[i].name) == 0)
			return rollout_command(cli, cmds[i].kind, argc, argv);
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0) {
		fputs(USAGE, stdout);
		return 0;
	}
	return cli_usage_error(USAGE, "unknown rollout subcommand '%s'", sub);
}
