/* canaryctl audit: the timeline of one rollout (`audit ID`) and the tamper check of the hash chains
 * (`audit verify [ID]`). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/store.h"
#include "canary/line.h"
#include "canary/report.h"
#include "canary/store_audit.h"
#include "cli_int.h"

/* Exit code of `audit verify` when a chain does not check out. */
#define EXIT_TAMPERED 1

static const char USAGE[] =
	"usage: canaryctl audit ID            the timeline of rollout ID: every step, weight change, measurement,\n"
	"                                     verdict and command, with actor and reason (one line per event)\n"
	"       canaryctl audit verify [ID]   recompute the hash chains (one rollout's, or all) and name the first\n"
	"                                     event that does not match\n"
	"exit codes: 0 ok (verify: every chain intact), 1 verify found a changed or missing event, 64 usage,\n"
	"65 unknown rollout, 69 database unavailable, 77 permission denied\n";

static int audit_timeline(struct cli *cli, int64_t id)
{
	struct cn_store *st;
	struct cn_err err = {0};
	struct cn_timeline *t = NULL;
	int rc;
	if ((rc = cli_store(cli, &st)) != 0)
		return rc;
	if (cn_store_audit_timeline(st, id, &t, &err) < 0)
		return cli_error(&err);
	if (cli->output == CLI_JSON) {
		rc = cli_print_json(cli_json_timeline(t));
		cn_timeline_free(t);
		return rc;
	}
	for (size_t i = 0; i < t->nevents; i++) {
		const struct cn_timeline_event *e = &t->events[i];
		char what[1024], line[1400] = "", at[48], num[24];
		cn_audit_describe(e->kind, e->data_json, what, sizeof what);
		snprintf(num, sizeof num, "#%lld", (long long)e->id);
		cn_line_appendf(line, sizeof line, "%s  %-7s %-16s %-18s %s", cli_time(e->at_us, CLI_TIME_MS, at, sizeof at),
				num, e->actor ? e->actor : "", e->kind ? e->kind : "", what);
		if (e->reason && e->reason[0])
			cn_line_appendf(line, sizeof line, "%sreason: %s", what[0] ? " — " : "", e->reason);
		puts(line);
	}
	cn_timeline_free(t);
	return 0;
}

/* "rollout 7, tick at 2024-05-01T12:00:00.000Z" or "no rollout, policy.applied at ...". */
static void where(const struct cn_audit_report *rep, char *buf, size_t len)
{
	if (rep->bad_has_rollout)
		snprintf(buf, len, "rollout %" PRId64 ", %s at %s", rep->bad_rollout_id, rep->bad_kind, rep->bad_at);
	else
		snprintf(buf, len, "no rollout, %s at %s", rep->bad_kind, rep->bad_at);
}

static int audit_verify(struct cli *cli, int64_t id)
{
	struct cn_store *st;
	struct cn_err err = {0};
	struct cn_audit_report rep;
	char msg[512], loc[160];
	int rc;
	if ((rc = cli_store(cli, &st)) != 0)
		return rc;
	if (cn_store_audit_verify(st, id, &rep, &err) < 0)
		return cli_error(&err);
	where(&rep, loc, sizeof loc);
	if (rep.problem == CN_AUDIT_CHANGED)
		snprintf(msg, sizeof msg, "audit event %" PRId64 " (%s) does not match its hash: the row was changed "
			 "after it was written", rep.bad_id, loc);
	else if (rep.problem == CN_AUDIT_BROKEN && rep.bad_prev_id > 0)
		snprintf(msg, sizeof msg, "audit event %" PRId64 " (%s) does not follow event %" PRId64 " in its "
			 "chain: an event between them was deleted, or the chain was rewritten", rep.bad_id, loc,
			 rep.bad_prev_id);
	else if (rep.problem == CN_AUDIT_BROKEN)
		snprintf(msg, sizeof msg, "audit event %" PRId64 " (%s) is the first of its chain but follows another "
			 "event: the events before it were deleted", rep.bad_id, loc);
	else if (id > 0)
		snprintf(msg, sizeof msg, "audit of rollout %" PRId64 " intact: %" PRId64 " events checked", id,
			 rep.events);
	else
		snprintf(msg, sizeof msg, "audit intact: %" PRId64 " events in %" PRId64 " chains checked", rep.events,
			 rep.chains);
	int code = rep.problem == CN_AUDIT_INTACT ? 0 : EXIT_TAMPERED;
	if (cli->output == CLI_JSON) {
		rc = cli_print_json(cli_json_audit_verify(&rep, id, msg));
		return rc ? rc : code;
	}
	puts(msg);
	return code;
}

int cmd_audit(struct cli *cli, int argc, char **argv)
{
	const struct cli_opt opts[] = {{NULL, NULL, NULL}};
	char *pos[2];
	int npos = 0, rc;
	int64_t id = 0;
	if ((rc = cli_parse(argc, argv, opts, pos, 2, &npos, USAGE)) != 0)
		return rc == 1 ? 0 : rc;
	if (npos >= 1 && strcmp(pos[0], "verify") == 0) {
		if (npos == 2 && (rc = cli_parse_id(pos[1], &id, USAGE)) != 0)
			return rc;
		return audit_verify(cli, id);
	}
	if (npos == 0)
		return cli_usage_error(USAGE, "audit needs a rollout ID or 'verify'");
	if (npos > 1)
		return cli_usage_error(USAGE, "unexpected argument '%s'", pos[1]);
	if ((rc = cli_parse_id(pos[0], &id, USAGE)) != 0)
		return rc;
	return audit_timeline(cli, id);
}
