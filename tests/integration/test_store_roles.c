/* Integration: permissions are Postgres GRANTs, tested by logging in as each role. A canary_viewer reads everything
 * and changes nothing (77, "permission denied", row counts unchanged); a canary_operator starts rollouts, applies
 * policies and queues commands; a canary_controller does what canaryd does (claim, record a command and a tick,
 * hold, confirm a weight, release) and nothing an operator does; no application role can change or remove audit
 * events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "canary/rollout.h"
#include "canary/store_audit.h"
#include "canary/store_rollouts.h"
#include "store_audit_support.h"

static struct pg_fixture db;
static char viewer[64], operator[64], controller[64];
static char as_viewer[2300], as_operator[2300], as_controller[2300];
static int64_t active_id; /* an active rollout of service "other", started by the superuser */
static char active[32];

static const char COUNTS[] =
	"SELECT (SELECT count(*) FROM rollouts) * 1000000000 + (SELECT count(*) FROM commands) * 1000000 + "
	"(SELECT count(*) FROM policies) * 1000 + (SELECT count(*) FROM audit_events)";

/* A digest of every event's hash and reason, as a positive number. */
#define DIGEST                                                                                                   \
	"SELECT ('x' || substr(md5(string_agg(hash || coalesce(reason, ''), ',' ORDER BY id)), 1, 15))::bit(60)" \
	"::bigint FROM audit_events"

static struct cn_store *connect_as(const char *conninfo)
{
	struct cn_err err = {0};
	struct cn_store *st = cn_store_connect(conninfo, &err);
	if (!st)
		fail_msg("%s", err.msg);
	return st;
}

static int setup(void **state)
{
	(void)state;
	struct cn_err err = {0};
	setup_db(&db);
	sql_ok(db.conninfo, "INSERT INTO services (name, live_slot, live_version) VALUES ('other', 0, 'o0');"
			    "INSERT INTO service_versions (service, version, content_sha256, source, spec) "
			    "SELECT 'other', 1, content_sha256, source, spec FROM service_versions WHERE service = 'demo'");
	struct cn_store *st = connect_as(db.conninfo);
	if (cn_store_rollout_create(st, "other", "o1", "default", NULL, &active_id, &err) < 0)
		fail_msg("%s", err.msg);
	cn_store_close(st);
	snprintf(active, sizeof active, "%lld", (long long)active_id);
	make_login(&db, "t_viewer", "canary_viewer", viewer, sizeof viewer, as_viewer, sizeof as_viewer);
	make_login(&db, "t_operator", "canary_operator", operator, sizeof operator, as_operator, sizeof as_operator);
	make_login(&db, "t_controller", "canary_controller", controller, sizeof controller, as_controller,
		   sizeof as_controller);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pg_fixture_drop(&db);
	drop_login(&db, viewer);
	drop_login(&db, operator);
	drop_login(&db, controller);
	return 0;
}

static void test_viewer_reads(void **state)
{
	(void)state;
	static struct run r;
	static const char *const reads[][5] = {
		{"rollout", "status", NULL},   {"history", NULL},       {"audit", NULL /* id */, NULL},
		{"audit", "verify", NULL},     {"policy", "list", NULL}, {"service", "show", "demo", NULL},
	};
	for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
		const char *args[5];
		memcpy(args, reads[i], sizeof args);
		if (strcmp(args[0], "audit") == 0 && !args[1])
			args[1] = active;
		ctl(&r, as_viewer, args);
		if (r.status != 0)
			fail_msg("viewer: canaryctl %s %s exited %d: %s", args[0], args[1] ? args[1] : "", r.status, r.err);
	}
	ctl(&r, as_viewer, (const char *[]){"audit", "verify", NULL});
	assert_non_null(strstr(r.out, "audit intact"));
}

static void test_viewer_changes_nothing(void **state)
{
	(void)state;
	static struct run r;
	const char *chat = src_path("policies/chat.yaml");
	const struct {
		const char *args[8];
		const char *what;
	} writes[] = {
		{{"rollout", "abort", active, "--reason", "stop", NULL}, "rollout abort"},
		{{"rollout", "approve", active, NULL}, "rollout approve"},
		{{"policy", "apply", chat, NULL}, "policy apply"},
		{{"rollout", "start", "--service", "demo", "--candidate", "v9", NULL}, "rollout start"},
		{{"service", "apply", src_path("policies/demo-service.yaml"), NULL}, "service apply"},
	};
	long long before = count(&db, COUNTS);
	for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
		ctl(&r, as_viewer, writes[i].args);
		if (r.status != 77)
			fail_msg("viewer %s: exit %d, not 77; stderr: %s", writes[i].what, r.status, r.err);
		char want[128];
		snprintf(want, sizeof want, "permission denied: role '%s' may not ", viewer);
		expect_one_line_error(&r, want);
		assert_string_equal(r.out, "");
		assert_int_equal(count(&db, COUNTS), before);
	}
}

static void test_operator(void **state)
{
	(void)state;
	static struct run r;
	struct cn_err err = {0};
	char sql[256];
	long long rollouts = count(&db, "SELECT count(*) FROM rollouts");
	ctl(&r, as_operator, (const char *[]){"rollout", "start", "--no-gateway-check", "--service", "demo", "--candidate", "v5", "--reason",
					      "release 5", NULL});
	expect_exit(&r, 0, "operator rollout start");
	assert_int_equal(count(&db, "SELECT count(*) FROM rollouts"), rollouts + 1);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM audit_events WHERE kind = 'rollout.started' AND actor = '%s' "
				  "AND recorded_by = '%s' AND reason = 'release 5'", operator, operator);
	assert_int_equal(count(&db, sql), 1);
	ctl(&r, as_operator, (const char *[]){"policy", "apply", src_path("policies/chat.yaml"), NULL});
	expect_exit(&r, 0, "operator policy apply");

	/* a new service: the services row, its first version and the audit event */
	char svc_path[] = "/tmp/canary-opsvc.XXXXXX", text[16384];
	int fd = mkstemp(svc_path);
	assert_true(fd >= 0);
	close(fd);
	ctl_slurp(src_path("policies/demo-service.yaml"), text, sizeof text);
	char *name = strstr(text, "\nname: demo\n");
	assert_non_null(name);
	memcpy(name, "\nname: opsv", 11); /* same length: "demo\n" -> "opsv" keeps the rest in place */
	name[11] = '\n';
	assert_int_equal(pg_fixture_write_file(svc_path, text), 0);
	ctl(&r, as_operator, (const char *[]){"service", "apply", svc_path, NULL});
	unlink(svc_path);
	expect_exit(&r, 0, "operator service apply");
	assert_int_equal(count(&db, "SELECT count(*) FROM services WHERE name = 'opsv'"), 1);

	/* commands are rows (canaryctl would then wait for a daemon; none runs here) */
	struct cn_store *st = connect_as(as_operator);
	int64_t cmd = 0;
	if (cn_store_command_add(st, active_id, CN_CMD_PAUSE, "look closer", &cmd, &err) < 0)
		fail_msg("operator command: %s", err.msg);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM commands WHERE id = %lld AND actor = '%s'", (long long)cmd,
		 operator);
	assert_int_equal(count(&db, sql), 1);
	/* but it does not do the controller's work */
	int64_t ids[8];
	bool due[8];
	int n = -1;
	assert_int_equal(cn_store_claim(st, "op", 30000, ids, due, 8, &n, NULL, &err), -CN_EPERM);
	assert_int_equal(cn_store_run(st, "edit a rollout", "UPDATE rollouts SET weight = 100", 0, NULL, &err),
			 -CN_EPERM);
	cn_store_close(st);
}

/* What canaryd does for one rollout, as the controller login: claim, run the pending command, tick, hold, confirm
 * the gateway's weight, release. */
static void test_controller(void **state)
{
	(void)state;
	static struct run r;
	struct cn_err err = {0};
	struct cn_store *st = connect_as(as_controller);
	struct cn_rollout_row *row = NULL;
	struct cn_policy *pol = calloc(1, sizeof *pol);
	struct cn_tick_result *res = calloc(1, sizeof *res);
	struct cn_rollout_state cur;
	struct cn_command_row cmds[4];
	int64_t ids[8];
	bool due[8];
	int n = 0;
	char sql[512];
	assert_non_null(pol);
	assert_non_null(res);

	if (cn_store_claim(st, "t-daemon", 30000, ids, due, 8, &n, NULL, &err) < 0)
		fail_msg("claim: %s", err.msg);
	bool claimed = false;
	for (int i = 0; i < n; i++)
		claimed |= ids[i] == active_id;
	assert_true(claimed);
	if (cn_store_rollout_get(st, active_id, &row, &err) < 0 ||
	    cn_policy_parse(row->policy_source, strlen(row->policy_source), "stored policy", pol, &err) < 0 ||
	    cn_store_commands_pending(st, active_id, cmds, 4, &n, &err) < 0)
		fail_msg("load: %s", err.msg);
	assert_int_equal(n, 1);
	if (row->has_state)
		cur = row->state;
	else
		cn_rollout_init(&cur);

	struct cn_err cerr = {0};
	int crc = cn_command(pol, &cur, cmds[0].kind, 1700000000000, res, &cerr);
	struct cn_record rec = {.row = row, .policy = pol, .res = res, .command = &cmds[0],
				.command_error = crc < 0 ? cerr.msg : NULL, .next_tick_ms = 1000, .owner = "t-daemon"};
	if (cn_store_record(st, &rec, &err) < 0)
		fail_msg("record the command: %s", err.msg);
	/* the operator is the actor, the controller wrote it */
	snprintf(sql, sizeof sql, "SELECT count(*) FROM audit_events WHERE kind LIKE 'command.%%' AND actor = '%s' "
				  "AND recorded_by = '%s'", operator, controller);
	assert_int_equal(count(&db, sql), 1);
	assert_int_equal(count(&db, "SELECT count(*) FROM commands WHERE handled_at IS NULL"), 0);

	cn_rollout_row_free(row);
	row = NULL;
	if (cn_store_rollout_get(st, active_id, &row, &err) < 0)
		fail_msg("reload: %s", err.msg);
	if (row->has_state)
		cur = row->state;
	else
		cn_rollout_init(&cur);
	memset(res, 0, sizeof *res);
	cn_tick(pol, &cur, NULL, 1700000001000, res);
	struct cn_record tick = {.row = row, .policy = pol, .res = res, .next_tick_ms = 1000, .owner = "t-daemon"};
	if (cn_store_record(st, &tick, &err) < 0)
		fail_msg("record a tick: %s", err.msg);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM decisions WHERE rollout_id = %lld", (long long)active_id);
	assert_int_equal(count(&db, sql), 2);
	if (cn_store_hold(st, active_id, "t-daemon", "gateway unavailable (test)", 1000, &err) < 0)
		fail_msg("hold: %s", err.msg);
	double intent = -1;
	if (cn_store_lease_renew(st, active_id, "t-daemon", 30000, &intent, &err) < 0)
		fail_msg("lease renew: %s", err.msg);
	/* a confirmation of anything but the recorded intent, or by another owner, writes nothing */
	assert_int_equal(cn_store_weight_confirmed(st, active_id, "t-daemon", intent + 1, false, 0.0, &err),
			 -CN_EUNAVAIL);
	assert_int_equal(cn_store_weight_confirmed(st, active_id, "other-daemon", intent, false, 0.0, &err),
			 -CN_EUNAVAIL);
	if (cn_store_weight_confirmed(st, active_id, "t-daemon", intent, true, 0.0, &err) < 0)
		fail_msg("weight confirmed: %s", err.msg);
	assert_true(intent == 0);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM rollouts WHERE id = %lld AND applied_weight = 0 AND "
				  "reason = 'gateway unavailable (test)' AND lease_owner = 't-daemon'", (long long)active_id);
	assert_int_equal(count(&db, sql), 1);
	if (cn_store_release(st, "t-daemon", &err) < 0)
		fail_msg("release: %s", err.msg);
	assert_int_equal(count(&db, "SELECT count(*) FROM rollouts WHERE lease_owner IS NOT NULL"), 0);

	/* the controller does not do the operators' work */
	int64_t cmd;
	assert_int_equal(cn_store_command_add(st, active_id, CN_CMD_ABORT, NULL, &cmd, &err), -CN_EPERM);
	cn_store_close(st);
	long long before = count(&db, COUNTS);
	ctl(&r, as_controller, (const char *[]){"rollout", "start", "--service", "demo", "--candidate", "v7", NULL});
	expect_exit(&r, 77, "controller rollout start");
	ctl(&r, as_controller, (const char *[]){"policy", "apply", src_path("policies/default.yaml"), NULL});
	/* the same content as version 1 stores nothing, so it never reaches an INSERT: 0 is right too */
	if (r.status != 0 && r.status != 77)
		fail_msg("controller policy apply: exit %d: %s", r.status, r.err);
	assert_int_equal(count(&db, COUNTS), before);
	cn_rollout_row_free(row);
	free(pol);
	free(res);
}

/* No application role can change or remove an audit event; the owner is stopped by the triggers. */
static void test_audit_append_only(void **state)
{
	(void)state;
	static const char *const changes[] = {
		"UPDATE audit_events SET reason = 'rewritten'",
		"DELETE FROM audit_events",
		"TRUNCATE audit_events",
		"UPDATE audit_events SET hash = prev_hash WHERE id = (SELECT max(id) FROM audit_events)",
	};
	const char *roles[] = {as_viewer, as_operator, as_controller, db.conninfo};
	long long before = count(&db, COUNTS);
	char hashes[CN_SHA256_HEX_LEN * 2];
	snprintf(hashes, sizeof hashes, "%lld", count(&db, DIGEST));
	for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
		struct cn_store *st = connect_as(roles[i]);
		for (size_t k = 0; k < sizeof changes / sizeof changes[0]; k++) {
			struct cn_err err = {0};
			int rc = cn_store_run(st, "change the audit", changes[k], 0, NULL, &err);
			if (rc != -CN_EPERM)
				fail_msg("role %zu may '%s': rc %d (%s)", i, changes[k], rc, err.msg);
		}
		cn_store_close(st);
	}
	/* a viewer may not add events either */
	struct cn_store *st = connect_as(as_viewer);
	struct cn_err err = {0};
	assert_int_equal(cn_store_run(st, "add an event", "INSERT INTO audit_events (kind) VALUES ('forged')", 0, NULL,
				      &err), -CN_EPERM);
	cn_store_close(st);
	assert_int_equal(count(&db, COUNTS), before);
	char after[CN_SHA256_HEX_LEN * 2];
	snprintf(after, sizeof after, "%lld", count(&db, DIGEST));
	assert_string_equal(hashes, after);

	/* everything the three roles wrote is chained and intact */
	static struct run r;
	ctl(&r, as_viewer, (const char *[]){"audit", "verify", NULL});
	expect_exit(&r, 0, "audit verify after the roles' work");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_viewer_reads), cmocka_unit_test(test_viewer_changes_nothing),
		cmocka_unit_test(test_operator),     cmocka_unit_test(test_controller),
		cmocka_unit_test(test_audit_append_only),
	};
	check_env();
	return cmocka_run_group_tests(tests, setup, teardown);
}
