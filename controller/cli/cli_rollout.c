/* canaryctl rollout: start a rollout, watch it, wait for its outcome (the pipeline's exit code), steer it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "canary/parse.h"
#include "canary/rollout.h"
#include "canary/store.h"
#include "canary/store_rollouts.h"
#include "cli.h"

/* Exit codes of `rollout start --wait` and `rollout wait` (DESIGN.md "Contracts"). */
enum {
	EXIT_PROMOTED = 0,
	EXIT_ROLLED_BACK = 1,
	EXIT_ABORTED = 2,
	EXIT_TIMEOUT = 3,
	EXIT_PAUSED = 4,
};

#define POLL_MS 200
#define COMMAND_WAIT_MS 10000

static const char USAGE[] =
	"usage: canaryctl rollout start --service S --candidate VERSION [--policy P] [--reason TEXT]\n"
	"                               [--wait] [--timeout D] [--exit-on-pause]\n"
	"       canaryctl rollout status [ID]\n"
	"       canaryctl rollout wait ID [--timeout D] [--exit-on-pause]\n"
	"       canaryctl rollout approve|pause|resume|abort ID [--reason TEXT]\n"
	"       canaryctl rollout promote ID --full [--reason TEXT]\n"
	"       canaryctl rollout audit ID\n"
	"exit codes of --wait and wait: 0 promoted, 1 rolled back, 2 aborted, 3 timed out (the rollout goes on),\n"
	"4 paused or awaiting approval (with --exit-on-pause); 64 usage, 65 invalid input, 69 unavailable,\n"
	"70 internal, 77 permission denied\n";

static int parse_id(const char *s, int64_t *id)
{
	char *end = NULL;
	long long v = strtoll(s, &end, 10);
	if (!end || *end || v <= 0)
		return cli_usage_error(USAGE, "'%s' is not a rollout id (a positive whole number)", s);
	*id = v;
	return 0;
}

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

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static double jnum(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

/* One line per SLO verdict: "p99-latency pass (...)" joined with "; ". */
static void format_verdicts(const json_t *st, char *buf, size_t size)
{
	const json_t *slos = json_object_get(json_object_get(st, "status"), "slos");
	size_t used = 0;
	buf[0] = '\0';
	size_t i;
	const json_t *s;
	json_array_foreach(slos, i, s)
	{
		int n = snprintf(buf + used, size - used, "%s%s %s", i ? ", " : "", jstr(s, "slo"), jstr(s, "verdict"));
		if (n < 0 || (size_t)n >= size - used)
			break;
		used += (size_t)n;
	}
}

static void print_status_line(FILE *f, const json_t *st)
{
	char verdicts[512];
	format_verdicts(st, verdicts, sizeof verdicts);
	fprintf(f, "rollout %lld %s: %s, step %lld/%lld, candidate %s at %.4g%%%s%s%s — %s\n",
		(long long)json_integer_value(json_object_get(st, "id")), jstr(st, "service"), jstr(st, "phase"),
		(long long)json_integer_value(json_object_get(st, "step")) + 1,
		(long long)json_integer_value(json_object_get(st, "steps")), jstr(st, "candidate"), jnum(st, "weight"),
		verdicts[0] ? " [" : "", verdicts, verdicts[0] ? "]" : "", jstr(st, "reason"));
}

static int exit_for_phase(const char *phase, bool exit_on_pause, bool *done)
{
	*done = true;
	if (strcmp(phase, "promoted") == 0)
		return EXIT_PROMOTED;
	if (strcmp(phase, "rolled_back") == 0 || strcmp(phase, "failed") == 0)
		return EXIT_ROLLED_BACK;
	if (strcmp(phase, "aborted") == 0)
		return EXIT_ABORTED;
	if (exit_on_pause && (strcmp(phase, "paused") == 0 || strcmp(phase, "awaiting_approval") == 0))
		return EXIT_PAUSED;
	*done = false;
	return 0;
}

/* Polls the rollout until it ends (and the gateway confirmed its final weight), pauses (with exit_on_pause), or
 * timeout_ms passes (0: no limit). Prints a line whenever something changes. */
static int wait_rollout(struct cli *cli, struct cn_store *st, int64_t id, int64_t timeout_ms, bool exit_on_pause)
{
	struct cn_err err = {0};
	int64_t start = mono_ms();
	char last[1024] = "";
	json_t *cur = NULL;
	int code = EXIT_TIMEOUT;
	for (;;) {
		json_decref(cur);
		cur = NULL;
		if (cn_store_rollout_status(st, id, &cur, &err) < 0) {
			code = cli_error(&err);
			goto out;
		}
		char line[1024];
		char verdicts[512];
		format_verdicts(cur, verdicts, sizeof verdicts);
		snprintf(line, sizeof line, "%s|%lld|%g|%s|%s", jstr(cur, "phase"),
			 (long long)json_integer_value(json_object_get(cur, "step")), jnum(cur, "weight"), verdicts,
			 jstr(cur, "reason"));
		if (strcmp(line, last) != 0) {
			if (cli->output == CLI_TEXT)
				print_status_line(stdout, cur);
			fflush(stdout);
			snprintf(last, sizeof last, "%s", line);
		}
		bool done;
		int c = exit_for_phase(jstr(cur, "phase"), exit_on_pause, &done);
		double w = jnum(cur, "weight"), aw = jnum(cur, "applied_weight");
		bool settled = !isnan(aw) && fabs(w - aw) < 1e-9;
		/* An ended rollout counts once the gateway carries its final weight. */
		if (done && (settled || c == EXIT_PAUSED)) {
			code = c;
			break;
		}
		if (timeout_ms > 0 && mono_ms() - start >= timeout_ms) {
			fprintf(stderr, "canaryctl: timed out after %llds waiting for rollout %lld; it goes on "
					"('canaryctl rollout wait %lld' to wait again)\n",
				(long long)(timeout_ms / 1000), (long long)id, (long long)id);
			code = EXIT_TIMEOUT;
			break;
		}
		usleep(POLL_MS * 1000);
	}
	if (cli->output == CLI_JSON) {
		json_object_set_new(cur, "exit_code", json_integer(code));
		cli_print_json(json_incref(cur));
	}
out:
	json_decref(cur);
	return code;
}

static int rollout_start(struct cli *cli, int argc, char **argv)
{
	const char *service = NULL, *candidate = NULL, *policy = NULL, *reason = NULL, *timeout = NULL;
	bool wait = false, exit_on_pause = false;
	const struct cli_opt opts[] = {
		{"service", &service, NULL}, {"candidate", &candidate, NULL}, {"policy", &policy, NULL},
		{"reason", &reason, NULL},   {"timeout", &timeout, NULL},     {"wait", NULL, &wait},
		{"exit-on-pause", NULL, &exit_on_pause}, {NULL, NULL, NULL},
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
	if (cn_store_rollout_create(st, service, candidate, policy ? policy : "default", reason, &id, &err) < 0)
		return cli_error(&err);
	if (!wait) {
		if (cli->output == CLI_JSON)
			return cli_print_json(json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id, "service", service,
							"candidate", candidate));
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
	if ((rc = parse_id(pos[0], &id)) != 0 || (rc = parse_timeout(timeout, &timeout_ms)) != 0)
		return rc;
	struct cn_store *st;
	if ((rc = cli_store(cli, &st)) != 0)
		return rc;
	return wait_rollout(cli, st, id, timeout_ms, exit_on_pause);
}

static int rollout_status(struct cli *cli, int argc, char **argv)
{
	const struct cli_opt opts[] = {{NULL, NULL, NULL}};
	char *pos[1];
	int npos = 0, rc;
	int64_t id = 0;
	if ((rc = cli_parse(argc, argv, opts, pos, 1, &npos, USAGE)) != 0)
		return rc == 1 ? 0 : rc;
	if (npos == 1 && (rc = parse_id(pos[0], &id)) != 0)
		return rc;
	struct cn_store *st;
	if ((rc = cli_store(cli, &st)) != 0)
		return rc;
	struct cn_err err = {0};
	json_t *doc = NULL;
	if (cn_store_rollout_status(st, id, &doc, &err) < 0)
		return cli_error(&err);
	if (cli->output == CLI_JSON)
		return cli_print_json(doc);
	if (id > 0) {
		print_status_line(stdout, doc);
		const json_t *slos = json_object_get(json_object_get(doc, "status"), "slos");
		size_t i;
		const json_t *s;
		json_array_foreach(slos, i, s)
			printf("  %-16s %-12s %s\n", jstr(s, "slo"), jstr(s, "verdict"), jstr(s, "why"));
	} else if (json_array_size(doc) == 0) {
		printf("no active rollouts\n");
	} else {
		size_t i;
		const json_t *r;
		json_array_foreach(doc, i, r) print_status_line(stdout, r);
	}
	json_decref(doc);
	return 0;
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
	if ((rc = parse_id(pos[0], &id)) != 0)
		return rc;
	if (kind == CN_CMD_PROMOTE_FULL && !full)
		return cli_usage_error(USAGE, "rollout promote needs --full (skip the remaining steps and analysis)");
	struct cn_store *st;
	if ((rc = cli_store(cli, &st)) != 0)
		return rc;
	struct cn_err err = {0};
	int64_t cmd = 0;
	if (cn_store_command_add(st, id, kind, reason, &cmd, &err) < 0)
		return cli_error(&err);
	int64_t start = mono_ms();
	bool done = false, accepted = false;
	char msg[CN_ERR_MSG_MAX] = "";
	while (mono_ms() - start < COMMAND_WAIT_MS) {
		if (cn_store_command_result(st, cmd, &done, &accepted, msg, sizeof msg, &err) < 0)
			return cli_error(&err);
		if (done)
			break;
		usleep(50 * 1000);
	}
	if (!done) {
		fprintf(stderr, "canaryctl: %s queued for rollout %lld, but no canaryd took it within %ds; it will "
				"apply when a daemon runs\n",
			cn_command_name(kind), (long long)id, COMMAND_WAIT_MS / 1000);
		return CN_EUNAVAIL;
	}
	if (!accepted) {
		fprintf(stderr, "canaryctl: %s refused: %s\n", cn_command_name(kind), msg);
		return CN_EINPUT;
	}
	if (cli->output == CLI_JSON)
		return cli_print_json(json_pack("{s:I, s:s, s:b}", "id", (json_int_t)id, "command",
						cn_command_name(kind), "accepted", 1));
	printf("rollout %lld: %s accepted\n", (long long)id, cn_command_name(kind));
	return 0;
}

static int rollout_audit(struct cli *cli, int argc, char **argv)
{
	const struct cli_opt opts[] = {{NULL, NULL, NULL}};
	char *pos[1];
	int npos = 0, rc;
	int64_t id = 0;
	if ((rc = cli_parse(argc, argv, opts, pos, 1, &npos, USAGE)) != 0)
		return rc == 1 ? 0 : rc;
	if (npos != 1)
		return cli_usage_error(USAGE, "rollout audit needs a rollout ID");
	if ((rc = parse_id(pos[0], &id)) != 0)
		return rc;
	struct cn_store *st;
	if ((rc = cli_store(cli, &st)) != 0)
		return rc;
	struct cn_err err = {0};
	json_t *doc = NULL;
	if (cn_store_rollout_audit(st, id, &doc, &err) < 0)
		return cli_error(&err);
	if (cli->output == CLI_JSON)
		return cli_print_json(doc);
	size_t i;
	const json_t *e;
	json_array_foreach(doc, i, e)
	{
		const char *kind = jstr(e, "kind");
		const json_t *data = json_object_get(e, "data");
		char extra[160] = "";
		if (strncmp(kind, "weight.", 7) == 0)
			snprintf(extra, sizeof extra, " weight %g%%",
				 jnum(data, strcmp(kind, "weight.intended") == 0 ? "to" : "weight"));
		else if (strcmp(kind, "state.changed") == 0)
			snprintf(extra, sizeof extra, " %s -> %s", jstr(data, "from"), jstr(data, "to"));
		else if (strcmp(kind, "tick") == 0)
			snprintf(extra, sizeof extra, " %s", jstr(data, "decision"));
		printf("%.23s  %-14s %-18s%s  %s\n", jstr(e, "at"), jstr(e, "actor"), kind, extra, jstr(e, "reason"));
	}
	json_decref(doc);
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
		return rollout_audit(cli, argc, argv);
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
