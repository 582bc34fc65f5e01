/* Integration: the tamper-evident audit (migrations/0004) against a real Postgres. The hash the trigger computes is
 * recomputed in C; an edited row, a deleted row and a deleted chain head are caught by `canaryctl audit verify`;
 * concurrent writers keep a chain linear and different chains do not wait for each other; `canaryctl audit ID`
 * prints one rollout's timeline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canary/store_audit.h"
#include "canary/store_rollouts.h"
#include "store_audit_support.h"

/* Two rollouts (1 and 2, the first ended so the second may start) with a handful of events each, plus events that
 * stress the encoding: NULL fields, non-ASCII text, a newline, numbers in jsonb. */
static void populate(const struct pg_fixture *db, int64_t *r1, int64_t *r2)
{
	struct cn_err err = {0};
	struct cn_store *st = cn_store_connect(db->conninfo, &err);
	assert_non_null(st);
	if (cn_store_rollout_create(st, "demo", "v2", "default", "first try", r1, &err) < 0)
		fail_msg("%s", err.msg);
	sql_ok(db->conninfo, "UPDATE rollouts SET phase = 'aborted', finished_at = now()");
	if (cn_store_rollout_create(st, "demo", "v3", "default", NULL, r2, &err) < 0)
		fail_msg("%s", err.msg);
	cn_store_close(st);
	char sql[2048];
	snprintf(sql, sizeof sql,
		 "INSERT INTO audit_events (rollout_id, service, kind, reason, data) VALUES "
		 "(%lld, 'demo', 'tick', 'hold: p99 0.25 s ≤ 0.5 s', '{\"slos\": [{\"slo\": \"p99\", \"candidate\": 0.25,"
		 " \"baseline\": 1e-3}], \"decision\": \"hold\", \"step\": 0, \"weight\": 1.0}'),"
		 "(%lld, 'demo', 'tick', E'two\\nlines', '{\"b\": 1.50, \"a\": [true, null, \"ü\"]}'),"
		 "(%lld, NULL, 'note', NULL, '{}'),"
		 "(%lld, 'demo', 'tick', 'ok', '{\"decision\": \"advance\"}'),"
		 "(%lld, 'demo', 'weight.intended', 'advance', '{\"from\": 1, \"to\": 5}'),"
		 "(NULL, NULL, 'note', 'global', '{\"k\": \"v\"}')",
		 (long long)*r1, (long long)*r1, (long long)*r1, (long long)*r2, (long long)*r2);
	sql_ok(db->conninfo, sql);
}

static void verify(const struct pg_fixture *db, int64_t id, struct cn_audit_report *rep)
{
	struct cn_err err = {0};
	struct cn_store *st = cn_store_connect(db->conninfo, &err);
	assert_non_null(st);
	if (cn_store_audit_verify(st, id, rep, &err) < 0)
		fail_msg("verify: %s", err.msg);
	cn_store_close(st);
}

/* The C encoding reproduces the trigger's hash for every row (fields read back as the verifier reads them). */
static void test_c_hash_matches_trigger(void **state)
{
	(void)state;
	struct pg_fixture db;
	int64_t r1, r2;
	setup_db(&db);
	populate(&db, &r1, &r2);

	PGconn *c = PQconnectdb(db.conninfo);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PGresult *r = PQexec(c, "SELECT id, (extract(epoch FROM at) * 1000000)::bigint, recorded_by, actor, rollout_id,"
				" service, kind, reason, data::text, prev_hash, hash FROM audit_events ORDER BY id");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_true(PQntuples(r) >= 9);
	bool saw_null_service = false, saw_newline = false;
	for (int i = 0; i < PQntuples(r); i++) {
#define V(k) (PQgetisnull(r, i, k) ? NULL : PQgetvalue(r, i, k))
		struct cn_audit_event ev = {
			.id = strtoll(PQgetvalue(r, i, 0), NULL, 10), .at_us = strtoll(PQgetvalue(r, i, 1), NULL, 10), .recorded_by = V(2),
			.actor = V(3), .has_rollout = V(4) != NULL, .rollout_id = strtoll(PQgetvalue(r, i, 4), NULL, 10),
			.service = V(5), .kind = V(6), .reason = V(7), .data = V(8),
		};
		char hex[CN_SHA256_HEX_LEN];
		assert_string_equal(cn_audit_hash(V(9), &ev, hex), V(10));
		/* and a changed field changes the hash */
		ev.at_us++;
		assert_string_not_equal(cn_audit_hash(V(9), &ev, hex), V(10));
		saw_null_service |= ev.service == NULL;
		saw_newline |= ev.reason && strchr(ev.reason, '\n');
#undef V
	}
	assert_true(saw_null_service && saw_newline);
	PQclear(r);
	/* chains: each first event starts from the genesis hash, then links */
	r = PQexec(c, "SELECT count(*) FROM audit_events e WHERE prev_hash = repeat('0', 64)");
	assert_string_equal(PQgetvalue(r, 0, 0), "3"); /* rollout 1, rollout 2, the global chain */
	PQclear(r);
	r = PQexec(c, "SELECT count(*) FROM audit_events e WHERE prev_hash <> repeat('0', 64) AND NOT EXISTS "
		      "(SELECT 1 FROM audit_events p WHERE p.hash = e.prev_hash AND p.id < e.id "
		      " AND p.rollout_id IS NOT DISTINCT FROM e.rollout_id)");
	assert_string_equal(PQgetvalue(r, 0, 0), "0");
	PQclear(r);
	PQfinish(c);

	struct cn_audit_report rep;
	verify(&db, 0, &rep);
	assert_int_equal(rep.problem, CN_AUDIT_INTACT);
	assert_int_equal(rep.chains, 3);
	assert_int_equal(rep.events, count(&db, "SELECT count(*) FROM audit_events"));
	verify(&db, r2, &rep);
	assert_int_equal(rep.problem, CN_AUDIT_INTACT);
	assert_int_equal(rep.chains, 1);
	assert_int_equal(rep.events, 3);
	pg_fixture_drop(&db);
}

/* The id, time and hashes are the trigger's, whatever the writer passed. */
static void test_trigger_owns_chain_columns(void **state)
{
	(void)state;
	struct pg_fixture db;
	setup_db(&db);
	sql_ok(db.conninfo, "INSERT INTO audit_events (id, at, rollout_id, kind, prev_hash, hash) VALUES "
			    "(1000000, '2001-01-01', 77, 'forged', 'x', 'y')");
	assert_int_equal(count(&db, "SELECT count(*) FROM audit_events WHERE id = 1000000 OR at < '2020-01-01' "
				    "OR hash = 'y' OR prev_hash = 'x'"), 0);
	assert_int_equal(count(&db, "SELECT count(*) FROM audit_events WHERE kind = 'forged' AND "
				    "prev_hash = repeat('0', 64) AND length(hash) = 64"), 1);
	pg_fixture_drop(&db);
}

static void test_edit_is_caught(void **state)
{
	(void)state;
	struct pg_fixture db;
	struct run r;
	int64_t r1, r2;
	char sql[256], want[160];
	setup_db(&db);
	populate(&db, &r1, &r2);
	ctl(&r, db.conninfo, (const char *[]){"audit", "verify", NULL});
	expect_exit(&r, 0, "verify before tampering");
	assert_non_null(strstr(r.out, "audit intact: "));
	assert_non_null(strstr(r.out, "in 3 chains checked"));

	/* even the superuser cannot update while the trigger is on */
	assert_int_not_equal(pg_fixture_exec(db.conninfo, "UPDATE audit_events SET reason = 'x'", NULL, 0), 0);

	long long victim = count(&db, "SELECT min(id) FROM audit_events WHERE kind = 'tick' AND reason = 'ok'");
	snprintf(sql, sizeof sql,
		 "SET session_replication_role = replica; UPDATE audit_events SET reason = 'all good' WHERE id = %lld",
		 victim);
	sql_ok(db.conninfo, sql);

	ctl(&r, db.conninfo, (const char *[]){"audit", "verify", NULL});
	expect_exit(&r, 1, "verify after an edit");
	snprintf(want, sizeof want, "audit event %lld (rollout %lld, tick at ", victim, (long long)r2);
	if (!strstr(r.out, want) || !strstr(r.out, "does not match its hash: the row was changed after it was written"))
		fail_msg("verify does not name event %lld: %s", victim, r.out);
	/* that rollout alone: caught; the other rollout: intact */
	char id2[32], id1[32];
	snprintf(id2, sizeof id2, "%lld", (long long)r2);
	snprintf(id1, sizeof id1, "%lld", (long long)r1);
	ctl(&r, db.conninfo, (const char *[]){"audit", "verify", id2, NULL});
	expect_exit(&r, 1, "verify the edited rollout");
	ctl(&r, db.conninfo, (const char *[]){"--output", "json", "audit", "verify", id1, NULL});
	expect_exit(&r, 0, "verify the untouched rollout");
	json_t *j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_true(json_object_get(j, "intact")));
	assert_int_equal(json_integer_value(json_object_get(j, "events")), 4);
	json_decref(j);
	/* json names the bad event */
	ctl(&r, db.conninfo, (const char *[]){"--output", "json", "audit", "verify", NULL});
	expect_exit(&r, 1, "verify --output json");
	j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	json_t *bad = json_object_get(j, "first_bad");
	assert_int_equal(json_integer_value(json_object_get(bad, "id")), victim);
	assert_string_equal(json_string_value(json_object_get(bad, "problem")), "changed");
	json_decref(j);

	/* an edit of the jsonb data or of the time is caught too (fresh chain state: restore, then edit another) */
	snprintf(sql, sizeof sql,
		 "SET session_replication_role = replica; UPDATE audit_events SET reason = 'ok' WHERE id = %lld",
		 victim);
	sql_ok(db.conninfo, sql);
	ctl(&r, db.conninfo, (const char *[]){"audit", "verify", NULL});
	expect_exit(&r, 0, "verify after restoring the row");
	static const char *const edits[] = {
		"UPDATE audit_events SET data = jsonb_set(data, '{weight}', '100') WHERE kind = 'tick' AND "
		"data ? 'weight'",
		"UPDATE audit_events SET at = at - interval '1 microsecond' WHERE kind = 'weight.intended'",
		"UPDATE audit_events SET actor = 'someone_else' WHERE kind = 'rollout.started' AND rollout_id = 1",
	};
	for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
		struct pg_fixture db2;
		int64_t a, b;
		char s2[512];
		setup_db(&db2);
		populate(&db2, &a, &b);
		snprintf(s2, sizeof s2, "SET session_replication_role = replica; %s", edits[i]);
		sql_ok(db2.conninfo, s2);
		ctl(&r, db2.conninfo, (const char *[]){"audit", "verify", NULL});
		if (r.status != 1 || !strstr(r.out, "does not match its hash"))
			fail_msg("edit %zu not caught: exit %d, %s", i, r.status, r.out);
		pg_fixture_drop(&db2);
	}
	pg_fixture_drop(&db);
}

static void test_delete_is_caught(void **state)
{
	(void)state;
	struct pg_fixture db;
	struct run r;
	int64_t r1, r2;
	char sql[256], want[200];
	setup_db(&db);
	populate(&db, &r1, &r2);
	/* a middle event of rollout 1: the next one no longer follows its predecessor */
	long long ids[4];
	for (int i = 0; i < 4; i++) {
		snprintf(sql, sizeof sql, "SELECT id FROM audit_events WHERE rollout_id = %lld ORDER BY id OFFSET %d LIMIT 1",
			 (long long)r1, i);
		ids[i] = count(&db, sql);
	}
	assert_int_equal(pg_fixture_exec(db.conninfo, "DELETE FROM audit_events", NULL, 0), -1);
	snprintf(sql, sizeof sql, "SET session_replication_role = replica; DELETE FROM audit_events WHERE id = %lld",
		 ids[1]);
	sql_ok(db.conninfo, sql);
	ctl(&r, db.conninfo, (const char *[]){"audit", "verify", NULL});
	expect_exit(&r, 1, "verify after a delete");
	snprintf(want, sizeof want, "audit event %lld (rollout %lld, tick at ", ids[2], (long long)r1);
	if (!strstr(r.out, want))
		fail_msg("verify does not name event %lld: %s", ids[2], r.out);
	snprintf(want, sizeof want, "does not follow event %lld in its chain", ids[0]);
	if (!strstr(r.out, want))
		fail_msg("verify does not name the predecessor %lld: %s", ids[0], r.out);
	/* one line on stdout, nothing on stderr */
	assert_non_null(strchr(r.out, '\n'));
	assert_string_equal(strchr(r.out, '\n') + 1, "");

	/* the head of rollout 2's chain: its successor now claims a predecessor that is gone */
	assert_int_equal(r2, 2);
	long long head = count(&db, "SELECT min(id) FROM audit_events WHERE rollout_id = 2");
	long long next = count(&db, "SELECT min(id) FROM audit_events WHERE rollout_id = 2 AND id > "
				    "(SELECT min(id) FROM audit_events WHERE rollout_id = 2)");
	snprintf(sql, sizeof sql, "SET session_replication_role = replica; DELETE FROM audit_events WHERE id = %lld",
		 head);
	sql_ok(db.conninfo, sql);
	ctl(&r, db.conninfo, (const char *[]){"audit", "verify", "2", NULL});
	expect_exit(&r, 1, "verify after deleting a head");
	snprintf(want, sizeof want, "audit event %lld (rollout 2, ", next);
	if (!strstr(r.out, want) || !strstr(r.out, "is the first of its chain"))
		fail_msg("verify does not name event %lld: %s", next, r.out);

	/* an unknown rollout: 65, one line */
	ctl(&r, db.conninfo, (const char *[]){"audit", "verify", "999", NULL});
	expect_exit(&r, 65, "verify an unknown rollout");
	expect_one_line_error(&r, "no rollout with id 999");
	pg_fixture_drop(&db);
}

/* Waits up to ms for an async query on c to finish; returns true when it did. */
static bool finished_within(PGconn *c, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		if (!PQconsumeInput(c))
			return true;
		if (!PQisBusy(c))
			return true;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return false;
}

static void drain(PGconn *c)
{
	PGresult *r;
	while ((r = PQgetResult(c)) != NULL) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
			fail_msg("async statement failed: %s", PQresultErrorMessage(r));
		PQclear(r);
	}
}

/* A writer of rollout 5's chain waits for another open transaction on the same chain, then links after it; a writer
 * of another chain does not wait. */
static void test_concurrent_writers(void **state)
{
	(void)state;
	struct pg_fixture db;
	setup_db(&db);
	PGconn *a = PQconnectdb(db.conninfo), *b = PQconnectdb(db.conninfo), *c = PQconnectdb(db.conninfo);
	assert_int_equal(PQstatus(a), CONNECTION_OK);
	assert_int_equal(PQstatus(b), CONNECTION_OK);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PQclear(PQexec(a, "INSERT INTO audit_events (rollout_id, kind) VALUES (5, 'first')"));
	PQclear(PQexec(a, "BEGIN"));
	PGresult *r = PQexec(a, "INSERT INTO audit_events (rollout_id, kind) VALUES (5, 'a1'), (5, 'a2')");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	assert_int_equal(PQsendQuery(b, "INSERT INTO audit_events (rollout_id, kind) VALUES (5, 'b')"), 1);
	assert_int_equal(PQsendQuery(c, "INSERT INTO audit_events (rollout_id, kind) VALUES (6, 'c')"), 1);
	assert_true(finished_within(c, 5000)); /* another chain: not blocked */
	drain(c);
	assert_false(finished_within(b, 300)); /* same chain: waits for a */
	PQclear(PQexec(a, "COMMIT"));
	assert_true(finished_within(b, 5000));
	drain(b);
	/* chain order = id order = commit order: first, a1, a2, b */
	assert_int_equal(count(&db, "SELECT count(*) FROM (SELECT kind, row_number() OVER (ORDER BY id) AS n FROM "
				    "audit_events WHERE rollout_id = 5) x WHERE (n, kind) IN ((1, 'first'), (2, 'a1'), "
				    "(3, 'a2'), (4, 'b'))"), 4);
	PQfinish(a);
	PQfinish(b);
	PQfinish(c);
	struct cn_audit_report rep;
	verify(&db, 0, &rep);
	assert_int_equal(rep.problem, CN_AUDIT_INTACT);
	assert_int_equal(rep.events, count(&db, "SELECT count(*) FROM audit_events"));
	pg_fixture_drop(&db);
}

static void test_timeline(void **state)
{
	(void)state;
	struct pg_fixture db;
	struct run r;
	int64_t r1, r2;
	char id[32];
	setup_db(&db);
	populate(&db, &r1, &r2);
	snprintf(id, sizeof id, "%lld", (long long)r1);
	ctl(&r, db.conninfo, (const char *[]){"audit", id, NULL});
	expect_exit(&r, 0, "audit ID");
	/* one line per event, oldest first */
	int lines = 0;
	for (const char *p = r.out; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	assert_int_equal(lines, 4);
	const char *started = strstr(r.out, "rollout.started");
	const char *tick = strstr(r.out, "hold: p99 0.25 s");
	assert_non_null(started);
	assert_non_null(tick);
	assert_true(started < tick);
	assert_non_null(strstr(r.out, "candidate v2 in slot 1"));
	assert_non_null(strstr(r.out, "reason: first try"));
	assert_non_null(strstr(r.out, "objective n/a")); /* a missing number is shown as such, not invented */
	assert_non_null(strstr(r.out, "two lines"));  /* a newline in a reason does not break the line */

	ctl(&r, db.conninfo, (const char *[]){"--output", "json", "audit", id, NULL});
	expect_exit(&r, 0, "audit ID --output json");
	json_t *j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "rollout"), "id")), r1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "rollout"), "phase")), "aborted");
	json_t *ev = json_object_get(j, "events");
	assert_int_equal(json_array_size(ev), 4);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 0), "kind")), "rollout.started");
	assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 0), "actor")), "postgres");
	assert_int_equal(strlen(json_string_value(json_object_get(json_array_get(ev, 0), "hash"))), 64);
	json_decref(j);

	static const struct {
		const char *args[4];
		int code;
		const char *msg;
	} bad[] = {
		{{"audit", "424242", NULL}, 65, "no rollout with id 424242"},
		{{"audit", "x1", NULL}, 64, "'x1' is not a rollout id"},
		{{"audit", NULL}, 64, "audit needs a rollout ID or 'verify'"},
		{{"audit", "verify", "0", NULL}, 64, "'0' is not a rollout id"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ctl(&r, db.conninfo, bad[i].args);
		if (r.status != bad[i].code || strncmp(r.err, "canaryctl: ", 11) != 0 || !strstr(r.err, bad[i].msg))
			fail_msg("case %zu: exit %d, stderr: %s", i, r.status, r.err);
		assert_string_equal(r.out, "");
	}
	ctl(&r, db.conninfo, bad[0].args);
	expect_one_line_error(&r, "no rollout with id 424242");
	pg_fixture_drop(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_c_hash_matches_trigger), cmocka_unit_test(test_trigger_owns_chain_columns),
		cmocka_unit_test(test_edit_is_caught),         cmocka_unit_test(test_delete_is_caught),
		cmocka_unit_test(test_concurrent_writers),     cmocka_unit_test(test_timeline),
	};
	check_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
