/* Integration: identity cannot be forged. Logged in as operator alice (or as the controller), plain SQL tries every
 * forgery an attacker would: a rollout created already promoted by "bob", an audit event saying bob approved, a
 * command in bob's name, a policy version by bob, the controller's own functions, the private audit helper, a
 * temporary table that shadows ours. Each is refused with SQLSTATE 42501 and the row counts (and the audit's hashes)
 * do not move. Through the functions, the actor is always the login: alice starts, bob approves, and the policy's
 * distinct approver holds against alice's hand-made approval. The notification outbox likewise: nobody writes,
 * changes or deletes its rows by hand, and every audited change writes its own in the same transaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "canary/store_rollouts.h"
#include "store_audit_support.h"

static struct pg_fixture db;
static char alice[64], bob[64], ctrl[64];
static char as_alice[2300], as_bob[2300], as_ctrl[2300];
static int64_t rollout_id; /* service "demo", policy "chat" (distinct approver), started by alice */

static const char COUNTS[] =
	"SELECT md5(string_agg(t, ',')) FROM ("
	" SELECT 'r' || count(*) || coalesce(max(phase), '') || coalesce(sum(weight), 0) AS t FROM rollouts"
	" UNION ALL SELECT 'c' || count(*) || count(handled_at) FROM commands"
	" UNION ALL SELECT 'p' || count(*) FROM policies UNION ALL SELECT 'ps' || count(*) FROM policy_steps"
	" UNION ALL SELECT 'pl' || count(*) FROM policy_slos UNION ALL SELECT 's' || count(*) || max(live_slot) FROM services"
	" UNION ALL SELECT 'sv' || count(*) FROM service_versions UNION ALL SELECT 'm' || count(*) FROM measurements"
	" UNION ALL SELECT 'd' || count(*) FROM decisions UNION ALL SELECT 'v' || count(*) FROM slo_verdicts"
	" UNION ALL SELECT 'a' || count(*) || coalesce(max(hash), '') FROM audit_events"
	" UNION ALL SELECT 'o' || count(*) || count(delivered_at) || coalesce(sum(attempts), 0) ||"
	"  coalesce(md5(string_agg(payload::text || url || event, ',' ORDER BY id)), '') FROM outbox) x";

/* The one text value a superuser query returns, into out. */
static void scalar_text(const char *sql, char *out, size_t len)
{
	PGconn *c = PQconnectdb(db.conninfo);
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
}

/* Runs sql as the login of conninfo; returns the SQLSTATE it failed with ("" when it succeeded) in state. */
static void try_sql(const char *conninfo, const char *sql, char *state, size_t len)
{
	PGconn *c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect: %s", PQerrorMessage(c));
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	snprintf(state, len, "%s", st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? "" : s ? s : "?");
	PQclear(r);
	PQfinish(c);
}

static void expect_refused(const char *who, const char *conninfo, const char *sql)
{
	char before[64], after[64], state[8];
	scalar_text(COUNTS, before, sizeof before);
	try_sql(conninfo, sql, state, sizeof state);
	scalar_text(COUNTS, after, sizeof after);
	if (strcmp(state, "42501") != 0)
		fail_msg("%s may run '%s' (sqlstate '%s', not 42501)", who, sql, state);
	if (strcmp(before, after) != 0)
		fail_msg("%s: '%s' was refused but the tables changed", who, sql);
}

static int setup(void **state)
{
	(void)state;
	struct cn_err err = {0};
	setup_db(&db);
	make_login(&db, "t_alice", "canary_operator", alice, sizeof alice, as_alice, sizeof as_alice);
	make_login(&db, "t_bob", "canary_operator", bob, sizeof bob, as_bob, sizeof as_bob);
	make_login(&db, "t_ctrl", "canary_controller", ctrl, sizeof ctrl, as_ctrl, sizeof as_ctrl);
	static struct run r;
	ctl(&r, as_alice, (const char *[]){"policy", "apply", src_path("policies/chat.yaml"), NULL});
	expect_exit(&r, 0, "alice applies chat.yaml");
	struct cn_store *st = cn_store_connect(as_alice, &err);
	if (!st || cn_store_rollout_create(st, "demo", "v2", "chat", "release 2", &rollout_id, &err) < 0)
		fail_msg("alice starts a rollout: %s", err.msg);
	cn_store_close(st);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pg_fixture_drop(&db);
	drop_login(&db, alice);
	drop_login(&db, bob);
	drop_login(&db, ctrl);
	return 0;
}

/* The attacks and their neighbours, as an operator. */
static void test_operator_forgeries(void **state)
{
	(void)state;
	char sql[40][512];
	int n = 0;
#define ADD(...) snprintf(sql[n++], sizeof sql[0], __VA_ARGS__)
	ADD("INSERT INTO rollouts (service, service_version_id, policy_id, candidate, candidate_slot, phase, step, "
	    "weight, created_by) SELECT 'demo', (SELECT max(id) FROM service_versions), (SELECT max(id) FROM policies), "
	    "'v3', 1, 'promoted', 2, 100, '%s'", bob);
	ADD("INSERT INTO audit_events (rollout_id, service, actor, kind, reason) VALUES (%lld, 'demo', '%s', "
	    "'rollout.approved', 'lgtm')", (long long)rollout_id, bob);
	ADD("INSERT INTO commands (rollout_id, kind, actor) VALUES (%lld, 'approve', '%s')", (long long)rollout_id,
	    bob);
	ADD("INSERT INTO policies (name, version, content_sha256, source, spec, created_by) VALUES ('chat', 99, 'x', "
	    "'x', '{}', '%s')", bob);
	ADD("INSERT INTO policy_steps (policy_id, idx, weight_pct, hold_ms) SELECT max(id), 9, 100, 1 FROM policies");
	ADD("INSERT INTO policy_slos (policy_id, idx, name, metric) SELECT max(id), 9, 'x', 'latency' FROM policies");
	ADD("INSERT INTO services (name, live_slot) VALUES ('evil', 0)");
	ADD("INSERT INTO service_versions (service, version, content_sha256, source, spec, created_by) VALUES "
	    "('demo', 99, 'x', 'x', '{}', '%s')", bob);
	ADD("UPDATE rollouts SET phase = 'promoted', weight = 100 WHERE id = %lld", (long long)rollout_id);
	ADD("UPDATE rollouts SET created_by = '%s'", bob);
	ADD("UPDATE commands SET actor = '%s'", bob);
	ADD("UPDATE services SET live_slot = 1 - live_slot");
	ADD("DELETE FROM commands");
	ADD("INSERT INTO measurements (rollout_id, at, step, weight, baseline, candidate) VALUES (%lld, now(), 0, 1, "
	    "'{}', '{}')", (long long)rollout_id);
	ADD("INSERT INTO decisions (rollout_id, step, weight, decision, phase_before, phase_after, reason) VALUES "
	    "(%lld, 2, 100, 'promote', 'progressing', 'promoted', 'x')", (long long)rollout_id);
	/* the controller's functions are not the operator's */
	ADD("SELECT * FROM canary.claim('alice-daemon', 60000, 10)");
	ADD("SELECT canary.record(%lld, 'alice-daemon', '{\"phase\":\"promoted\",\"step\":2,\"weight\":100}')",
	    (long long)rollout_id);
	ADD("SELECT * FROM canary.record_batch('alice-daemon', ARRAY[%lld]::bigint[], "
	    "'[{\"phase\":\"promoted\",\"step\":2,\"weight\":100}]')", (long long)rollout_id);
	ADD("SELECT canary.confirm_weight(%lld, 'alice-daemon', 0, false, NULL)", (long long)rollout_id);
	ADD("SELECT canary.hold(%lld, 'alice-daemon', 'x', 1000)", (long long)rollout_id);
	ADD("SELECT canary.release_leases('x')");
	/* nor is the private audit helper */
	ADD("SELECT canary.audit(%lld, 'demo', '%s', 'rollout.approved', NULL, NULL)", (long long)rollout_id, bob);
	ADD("SELECT canary.leased(%lld, 'x')", (long long)rollout_id);
	/* the distinct approver: alice started it, so alice's approval is refused even by hand */
	ADD("SELECT canary.queue_command(%lld, 'approve', 'mine')", (long long)rollout_id);
#undef ADD
	for (int i = 0; i < n; i++)
		expect_refused(alice, as_alice, sql[i]);
}

static void test_controller_forgeries(void **state)
{
	(void)state;
	char sql[16][512];
	int n = 0;
#define ADD(...) snprintf(sql[n++], sizeof sql[0], __VA_ARGS__)
	ADD("INSERT INTO audit_events (rollout_id, service, actor, kind) VALUES (%lld, 'demo', '%s', 'rollout.approved')",
	    (long long)rollout_id, bob);
	ADD("INSERT INTO commands (rollout_id, kind, actor) VALUES (%lld, 'approve', '%s')", (long long)rollout_id,
	    bob);
	ADD("UPDATE rollouts SET phase = 'promoted', weight = 100 WHERE id = %lld", (long long)rollout_id);
	ADD("UPDATE services SET live_slot = 1 - live_slot");
	ADD("INSERT INTO decisions (rollout_id, step, weight, decision, phase_before, phase_after, reason) VALUES "
	    "(%lld, 2, 100, 'promote', 'progressing', 'promoted', 'x')", (long long)rollout_id);
	ADD("SELECT canary.queue_command(%lld, 'approve', NULL)", (long long)rollout_id);
	ADD("SELECT canary.start_rollout('demo', 'v9', 'default', NULL)");
	ADD("SELECT * FROM canary.apply_policy('evil', 'x', '{\"name\":\"evil\",\"steps\":[{\"weight\":100,"
	    "\"hold_ms\":1}]}')");
	ADD("SELECT canary.audit(%lld, 'demo', '%s', 'rollout.approved', NULL, NULL)", (long long)rollout_id, bob);
	/* a record needs the lease: without a claim the controller cannot write one either (that one is CNUN0) */
#undef ADD
	for (int i = 0; i < n; i++)
		expect_refused(ctrl, as_ctrl, sql[i]);
	char before[64], after[64], st[8], q[256];
	scalar_text(COUNTS, before, sizeof before);
	snprintf(q, sizeof q, "SELECT canary.record(%lld, 'nobody', '{\"phase\":\"promoted\",\"step\":2,\"weight\":100}')",
		 (long long)rollout_id);
	try_sql(as_ctrl, q, st, sizeof st);
	scalar_text(COUNTS, after, sizeof after);
	assert_string_equal(st, CN_SQLSTATE_LEASE);
	assert_string_equal(before, after);
	/* the batched record is the same record: refused for the lease, per element, nothing written */
	PGconn *c = PQconnectdb(as_ctrl);
	snprintf(q, sizeof q, "SELECT ok, err_state FROM canary.record_batch('nobody', ARRAY[%lld]::bigint[], "
		 "'[{\"phase\":\"promoted\",\"step\":2,\"weight\":100}]')", (long long)rollout_id);
	PGresult *r = PQexec(c, q);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail_msg("%s: %s", q, PQerrorMessage(c));
	assert_string_equal(PQgetvalue(r, 0, 0), "f");
	assert_string_equal(PQgetvalue(r, 0, 1), CN_SQLSTATE_LEASE);
	PQclear(r);
	PQfinish(c);
	scalar_text(COUNTS, after, sizeof after);
	assert_string_equal(before, after);
}

/* A temporary table named like ours does not redirect the functions (search_path puts pg_temp last). */
static void test_temp_table_shadow(void **state)
{
	(void)state;
	char sql[1024], st[8];
	snprintf(sql, sizeof sql,
		 "CREATE TEMP TABLE commands (id bigserial, rollout_id bigint, kind text, actor text, reason text);"
		 "CREATE TEMP TABLE rollouts (LIKE public.rollouts);"
		 "SELECT canary.queue_command(%lld, 'pause', 'shadowed?')", (long long)rollout_id);
	try_sql(as_bob, sql, st, sizeof st);
	assert_string_equal(st, "");
	char q[256];
	snprintf(q, sizeof q, "SELECT count(*) FROM commands WHERE rollout_id = %lld AND actor = '%s' AND "
			      "reason = 'shadowed?' AND kind = 'pause'", (long long)rollout_id, bob);
	assert_int_equal(count(&db, q), 1);
}

/* Through the functions, the actor is the login, whatever the caller passes or pretends. */
static void test_actor_is_the_login(void **state)
{
	(void)state;
	char q[512], st[8];
	snprintf(q, sizeof q, "SELECT count(*) FROM rollouts WHERE id = %lld AND created_by = '%s'",
		 (long long)rollout_id, alice);
	assert_int_equal(count(&db, q), 1);
	snprintf(q, sizeof q, "SELECT count(*) FROM audit_events WHERE rollout_id = %lld AND kind = 'rollout.started' "
			      "AND actor = '%s' AND recorded_by = '%s'", (long long)rollout_id, alice, alice);
	assert_int_equal(count(&db, q), 1);
	/* SET ROLE changes current_user, not session_user: bob stays bob */
	snprintf(q, sizeof q, "SET ROLE canary_operator; SELECT canary.queue_command(%lld, 'approve', 'lgtm')",
		 (long long)rollout_id);
	try_sql(as_bob, q, st, sizeof st);
	assert_string_equal(st, "");
	snprintf(q, sizeof q, "SELECT count(*) FROM commands WHERE rollout_id = %lld AND kind = 'approve' AND "
			      "actor = '%s' AND reason = 'lgtm'", (long long)rollout_id, bob);
	assert_int_equal(count(&db, q), 1);
	/* policy versions carry their applier */
	snprintf(q, sizeof q, "SELECT count(*) FROM policies WHERE name = 'chat' AND created_by = '%s'", alice);
	assert_int_equal(count(&db, q), 1);
	/* and the chain that recorded all this verifies */
	static struct run r;
	ctl(&r, as_bob, (const char *[]){"audit", "verify", NULL});
	expect_exit(&r, 0, "audit verify");
}

/* Refusals through canaryctl keep their words and exit codes. */
static void test_refusals_through_the_cli(void **state)
{
	(void)state;
	static struct run r;
	char before[64], after[64];
	scalar_text(COUNTS, before, sizeof before);
	ctl(&r, as_alice, (const char *[]){"rollout", "pause", "999999", NULL});
	expect_exit(&r, 65, "pause of an unknown rollout");
	expect_one_line_error(&r, "no rollout with id 999999");
	ctl(&r, as_alice, (const char *[]){"rollout", "start", "--no-gateway-check", "--service", "demo", "--candidate", "v3", NULL});
	expect_exit(&r, 65, "a second active rollout on one service");
	expect_one_line_error(&r, "already has an active rollout");
	scalar_text(COUNTS, after, sizeof after);
	assert_string_equal(before, after);
}

/* A gateway that stays away after a rollout ended holds its final weight unconfirmed: that is one audit event per
 * distinct reason, not one per interval (an ended rollout's row keeps its final reason). */
static void test_hold_after_the_end_is_one_event(void **state)
{
	(void)state;
	char q[512];
	struct cn_err err = {0};
	struct cn_store *st = cn_store_connect(db.conninfo, &err);
	assert_non_null(st);
	snprintf(q, sizeof q, "UPDATE rollouts SET lease_owner = 'd1', lease_until = now() + interval '1 minute' "
			      "WHERE id = %lld", (long long)rollout_id);
	sql_ok(db.conninfo, q);
	/* a hold while it was active, then it ends: the same reason after the end is said once more (abort quotes it) */
	assert_int_equal(cn_store_hold(st, rollout_id, "d1", "holding: gateway unavailable: refused", 1000, &err), 0);
	snprintf(q, sizeof q, "UPDATE rollouts SET phase = 'aborted', weight = 0, applied_weight = 5, "
			      "finished_at = clock_timestamp() WHERE id = %lld", (long long)rollout_id);
	sql_ok(db.conninfo, q);
	for (int i = 0; i < 3; i++)
		assert_int_equal(cn_store_hold(st, rollout_id, "d1", "holding: gateway unavailable: refused", 1000, &err), 0);
	assert_int_equal(cn_store_hold(st, rollout_id, "d1", "holding: gateway unavailable: timeout", 1000, &err), 0);
	cn_store_close(st);
	snprintf(q, sizeof q, "SELECT count(*) FROM audit_events WHERE rollout_id = %lld AND kind = 'hold'",
		 (long long)rollout_id);
	assert_int_equal(count(&db, q), 3);
}

/* A policy "hooked" and a service "hooked" (its own HAProxy socket, never reached) with webhooks; both name
 * http://127.0.0.1:9/both, which gets one row per event. */
static void apply_hooked(void)
{
	char dir[] = "/tmp/canary-forgery.XXXXXX", pol[256], svc[256];
	assert_non_null(mkdtemp(dir));
	snprintf(pol, sizeof pol, "%s/hooked.yaml", dir);
	snprintf(svc, sizeof svc, "%s/hooked-service.yaml", dir);
	assert_int_equal(pg_fixture_write_file(pol,
		"name: hooked\nsteps:\n  - weight: 5%\n    hold: 1m\n  - weight: 100%\n    hold: 1m\n"
		"slos:\n  - name: errors\n    metric: error_rate\n    max: 2%\n"
		"notify:\n  - url: http://127.0.0.1:9/policy\n    events: [started, paused]\n"
		"  - url: http://127.0.0.1:9/both\n    secret_env: HOOK_SECRET\n"), 0);
	assert_int_equal(pg_fixture_write_file(svc,
		"name: hooked\ngateway: { kind: haproxy, runtime_api: /nonexistent/hooked.sock, backend: hooked }\n"
		"slots:\n  blue: { server: blue, metrics_url: http://127.0.0.1:9/m }\n"
		"  green: { server: green, metrics_url: http://127.0.0.1:9/m }\nlive: blue\n"
		"notify:\n  - url: http://127.0.0.1:9/both\n  - url: http://127.0.0.1:9/service\n"
		"    events: [rolled_back]\n    format: slack\n"), 0);
	static struct run r;
	ctl(&r, as_alice, (const char *[]){"policy", "apply", pol, NULL});
	expect_exit(&r, 0, "alice applies the hooked policy");
	ctl(&r, as_alice, (const char *[]){"service", "apply", svc, NULL});
	expect_exit(&r, 0, "alice applies the hooked service");
	unlink(pol);
	unlink(svc);
	rmdir(dir);
}

/* Every audited change that is an event writes its outbox rows in its own transaction, through the functions:
 * started (as alice), paused (canaryd records bob's command). A refused change writes none. */
static void test_outbox_written_with_the_change(void **state)
{
	(void)state;
	char q[768], st[8];
	struct cn_err err = {0};
	int64_t id = 0;
	apply_hooked();
	struct cn_store *s = cn_store_connect(as_alice, &err);
	assert_non_null(s);
	assert_int_equal(cn_store_rollout_create(s, "hooked", "v7", "hooked", "with hooks", &id, &err), 0);
	cn_store_close(s);
	snprintf(q, sizeof q, "SELECT count(*) FROM outbox o JOIN audit_events a ON a.id = o.audit_id WHERE "
			      "o.rollout_id = %lld AND o.event = 'started' AND a.kind = 'rollout.started' AND "
			      "a.actor = '%s' AND o.url IN ('http://127.0.0.1:9/policy', 'http://127.0.0.1:9/both') AND "
			      "o.payload->>'actor' = '%s' AND (o.payload->'rollout'->>'id')::bigint = %lld",
		 (long long)id, alice, alice, (long long)id);
	assert_int_equal(count(&db, q), 2); /* the URL both name is one row, the policy's hook */
	snprintf(q, sizeof q, "SELECT count(*) FROM outbox WHERE url = 'http://127.0.0.1:9/both' AND policy_id IS NOT NULL "
			      "AND rollout_id = %lld", (long long)id);
	assert_int_equal(count(&db, q), 1);
	/* a refused start (one active rollout per service) writes no row */
	long long before = count(&db, "SELECT count(*) FROM outbox");
	try_sql(as_alice, "SELECT canary.start_rollout('hooked', 'v8', 'hooked', NULL)", st, sizeof st);
	assert_string_equal(st, CN_SQLSTATE_REFUSED);
	assert_int_equal(count(&db, "SELECT count(*) FROM outbox"), before);
	/* bob pauses; the controller records the command under its lease: the paused event carries bob */
	snprintf(q, sizeof q, "SELECT canary.queue_command(%lld, 'pause', 'hold on')", (long long)id);
	try_sql(as_bob, q, st, sizeof st);
	assert_string_equal(st, "");
	snprintf(q, sizeof q,
		 "SELECT count(*) FROM canary.claim('d-outbox', 60000, 10);"
		 "SELECT canary.record(%lld, 'd-outbox', jsonb_build_object('phase', 'paused', 'step', -1, 'weight', 0, "
		 "'next_tick_ms', 1000, 'decision', 'pause', 'reason', 'paused by an operator', 'command', "
		 "jsonb_build_object('id', (SELECT max(id) FROM commands WHERE rollout_id = %lld))))",
		 (long long)id, (long long)id);
	try_sql(as_ctrl, q, st, sizeof st);
	assert_string_equal(st, "");
	snprintf(q, sizeof q, "SELECT count(*) FROM outbox WHERE rollout_id = %lld AND event = 'paused' AND "
			      "payload->>'actor' = '%s' AND payload->>'reason' = 'paused by an operator' AND "
			      "payload->'rollout'->>'phase' = 'paused'", (long long)id, bob);
	assert_int_equal(count(&db, q), 2);
	/* events nobody asked for are not written: the service's hook wants rolled_back only */
	assert_int_equal(count(&db, "SELECT count(*) FROM outbox WHERE url = 'http://127.0.0.1:9/service'"), 0);
	/* the spec stores the hooks without a secret */
	assert_int_equal(count(&db, "SELECT count(*) FROM policies WHERE name = 'hooked' AND "
				    "spec->'notify'->1->>'secret_env' = 'HOOK_SECRET' AND "
				    "(spec->'notify'->1->>'signed')::boolean AND NOT (spec->'notify'->1 ? 'secret')"), 1);
}

/* Nobody forges, changes, re-delivers or deletes a notification by hand: not an operator, not the controller (it
 * only leases and reports through its functions), and the rows' content stays fixed even for the table's owner. */
static void test_outbox_forgeries(void **state)
{
	(void)state;
	char sql[24][512];
	int n = 0;
	assert_true(count(&db, "SELECT count(*) FROM outbox") > 0); /* test_outbox_written_with_the_change ran */
#define ADD(...) snprintf(sql[n++], sizeof sql[0], __VA_ARGS__)
	ADD("INSERT INTO outbox (audit_id, rollout_id, service, event, url, policy_id, hook, payload) SELECT max(id), "
	    "%lld, 'demo', 'promoted', 'http://evil.example/', (SELECT max(id) FROM policies), 0, '{}' FROM "
	    "audit_events", (long long)rollout_id);
	ADD("UPDATE outbox SET payload = jsonb_set(payload, '{actor}', '\"%s\"')", bob);
	ADD("UPDATE outbox SET delivered_at = now()");
	ADD("UPDATE outbox SET url = 'http://evil.example/'");
	ADD("DELETE FROM outbox");
	ADD("TRUNCATE outbox");
	ADD("SELECT canary.notify_outbox(e) FROM audit_events e WHERE e.kind = 'rollout.started'");
	ADD("SELECT * FROM canary.outbox_claim('alice-daemon', 60000, 10)");
	ADD("SELECT canary.outbox_result((SELECT min(id) FROM outbox), 'alice-daemon', true, 200, NULL, 0)");
	ADD("SELECT canary.notify_event('state.changed', '{\"to\": \"promoted\"}', 'promoted')");
	int nop = n;
	ADD("INSERT INTO outbox (audit_id, rollout_id, service, event, url, policy_id, hook, payload) SELECT max(id), "
	    "%lld, 'demo', 'promoted', 'http://evil.example/', (SELECT max(id) FROM policies), 0, '{}' FROM "
	    "audit_events", (long long)rollout_id);
	ADD("UPDATE outbox SET payload = '{}'");
	ADD("UPDATE outbox SET delivered_at = now()");
	ADD("DELETE FROM outbox");
	ADD("TRUNCATE outbox");
	ADD("SELECT canary.notify_outbox(e) FROM audit_events e WHERE e.kind = 'rollout.started'");
#undef ADD
	for (int i = 0; i < n; i++)
		expect_refused(i < nop ? alice : ctrl, i < nop ? as_alice : as_ctrl, sql[i]);
	/* the owner's own hand is held too: content never changes, a delivered row is never undelivered */
	char st[8];
	try_sql(db.conninfo, "UPDATE outbox SET payload = '{}'", st, sizeof st);
	assert_string_equal(st, "42501");
	try_sql(db.conninfo, "DELETE FROM outbox", st, sizeof st);
	assert_string_equal(st, "42501");
	/* through its functions the controller leases the head of each stream and reports; a failure of a lease it
	 * does not hold changes nothing */
	try_sql(as_ctrl, "SELECT canary.outbox_result((SELECT min(id) FROM outbox), 'not-the-owner', false, 500, 'x', "
			 "1000)", st, sizeof st);
	assert_string_equal(st, "");
	assert_int_equal(count(&db, "SELECT count(*) FROM outbox WHERE attempts > 0"), 0);
	assert_int_equal(count(&db, "SELECT count(*) FROM canary.outbox_claim('d1', 60000, 100)"),
			 count(&db, "SELECT count(DISTINCT (rollout_id, url)) FROM outbox"));
	/* a second daemon gets nothing while the leases run */
	assert_int_equal(count(&db, "SELECT count(*) FROM canary.outbox_claim('d2', 60000, 100)"), 0);
	try_sql(as_ctrl, "SELECT canary.outbox_result((SELECT min(id) FROM outbox), 'd1', true, 200, NULL, 0)", st,
		sizeof st);
	assert_string_equal(st, "");
	try_sql(db.conninfo, "UPDATE outbox SET delivered_at = NULL WHERE delivered_at IS NOT NULL", st, sizeof st);
	assert_string_equal(st, "42501");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_operator_forgeries), cmocka_unit_test(test_controller_forgeries),
		cmocka_unit_test(test_temp_table_shadow),  cmocka_unit_test(test_actor_is_the_login),
		cmocka_unit_test(test_refusals_through_the_cli),
		cmocka_unit_test(test_hold_after_the_end_is_one_event),
		cmocka_unit_test(test_outbox_written_with_the_change), cmocka_unit_test(test_outbox_forgeries),
	};
	check_env();
	return cmocka_run_group_tests(tests, setup, teardown);
}
