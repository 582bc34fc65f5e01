/* Integration: replicas share the work through canary.claim (migration 0015). 30 due rollouts, claimed as the
 * controller login by daemons "a", "b" and "c" (leases of a minute; time moves by rewriting next_tick_at, the
 * leases and the registry as the superuser): one daemon alone takes all 30; three registered daemons take 10 each and
 * keep the same 10 round after round; a daemon that held all 30 when two others joined gives back 20, but none whose
 * read it may have in flight (claimed since they fell due); a daemon that died (its registry row and leases lapsed)
 * leaves its rollouts to the others, 15 each, while one whose row is still live (it claims, late) keeps them however
 * late; free rollouts a lease past due go to anyone past its share; SIGTERM's release_leases hands them over at
 * once; a live lease is never taken. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "canary/store_replicas.h"
#include "canary/store_rollouts.h"
#include "store_audit_support.h"

#define N 30
#define LEASE_MS 60000

static struct pg_fixture db;
static char controller[64], as_controller[2300];

static int setup(void **state)
{
	(void)state;
	setup_db(&db);
	/* 30 services copied from "demo" (as bench/scale.sh does), no rollouts yet */
	sql_ok(db.conninfo, "SELECT count(canary.apply_service('s' || i, v.source, jsonb_set(v.spec, '{name}', "
			    "to_jsonb('s' || i)), 0::smallint)) FROM service_versions v, generate_series(1, 30) i "
			    "WHERE v.service = 'demo'");
	make_login(&db, "t_replicas", "canary_controller", controller, sizeof controller, as_controller,
		   sizeof as_controller);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pg_fixture_drop(&db);
	drop_login(&db, controller);
	return 0;
}

/* Before each test: no rollouts, no daemons. */
static int reset(void **state)
{
	(void)state;
	sql_ok(db.conninfo, "UPDATE rollouts SET phase = 'aborted', applied_weight = weight, lease_owner = NULL, "
			    "lease_until = NULL "
			    "WHERE phase <> 'aborted'; DELETE FROM daemons");
	return 0;
}

static void start_rollouts(void)
{
	sql_ok(db.conninfo, "SELECT count(canary.start_rollout('s' || i, 'v2', 'default', 'replicas')) "
			    "FROM generate_series(1, 30) i");
}

/* Every active rollout ticked and fell due again (not in flight: claimed before it fell due). */
static void all_due_again(void)
{
	sql_ok(db.conninfo, "UPDATE rollouts SET next_tick_at = now() WHERE phase = 'pending'");
}

/* One claim by owner as the controller login, as canaryd makes it; returns how many it got, ids into out. */
static int claim(const char *owner, int64_t *out)
{
	struct cn_err err = {0};
	int64_t ids[256];
	bool due[256];
	int n = -1;
	struct cn_store *st = cn_store_connect(as_controller, &err);
	if (!st || cn_store_claim(st, owner, LEASE_MS, ids, due, 256, &n, NULL, &err) < 0)
		fail_msg("claim by %s: %s", owner, err.msg);
	cn_store_close(st);
	for (int i = 0; out && i < n; i++)
		out[i] = ids[i];
	return n;
}

static long long held(const char *owner)
{
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM rollouts WHERE phase = 'pending' AND lease_owner = '%s'", owner);
	return count(&db, sql);
}

/* A fingerprint of who holds which rollout. */
static long long owners_digest(void)
{
	return count(&db, "SELECT ('x' || substr(md5(string_agg(id || ':' || coalesce(lease_owner, '-'), ',' "
			  "ORDER BY id)), 1, 15))::bit(60)::bigint FROM rollouts WHERE phase = 'pending'");
}

static void register_daemons(void)
{
	assert_int_equal(claim("a", NULL), 0);
	assert_int_equal(claim("b", NULL), 0);
	assert_int_equal(claim("c", NULL), 0);
	assert_int_equal(count(&db, "SELECT count(*) FROM daemons WHERE expires_at > now()"), 3);
}

static void test_alone_takes_all(void **state)
{
	(void)state;
	start_rollouts();
	assert_int_equal(claim("a", NULL), N);
	all_due_again();
	assert_int_equal(claim("a", NULL), N);
	assert_int_equal(held("a"), N);
}

static void test_three_share_and_keep(void **state)
{
	(void)state;
	register_daemons();
	start_rollouts();
	assert_int_equal(claim("b", NULL), N / 3);
	assert_int_equal(claim("a", NULL), N / 3);
	assert_int_equal(claim("c", NULL), N / 3);
	long long before = owners_digest();
	/* round after round, in any order, each keeps its own ten */
	const char *order[][3] = {{"c", "b", "a"}, {"a", "c", "b"}, {"b", "a", "c"}};
	for (int k = 0; k < 3; k++) {
		all_due_again();
		for (int i = 0; i < 3; i++)
			assert_int_equal(claim(order[k][i], NULL), N / 3);
		assert_int_equal(owners_digest(), before);
	}
}

static void test_joiners_get_their_share(void **state)
{
	(void)state;
	assert_int_equal(claim("a", NULL), 0);
	start_rollouts();
	assert_int_equal(claim("a", NULL), N);
	assert_int_equal(claim("b", NULL), 0); /* a's leases are live: nothing for b or c */
	assert_int_equal(claim("c", NULL), 0);
	/* a's reads may be in flight (it claimed them after they fell due): it keeps them all this round */
	assert_int_equal(claim("a", NULL), N);
	assert_int_equal(held("a"), N);
	/* they ticked and fell due again: a gives back the twenty the others have room for, and they take them */
	all_due_again();
	assert_int_equal(claim("a", NULL), N / 3);
	assert_int_equal(count(&db, "SELECT count(*) FROM rollouts WHERE phase = 'pending' AND lease_owner IS NULL"),
			 N - N / 3);
	assert_int_equal(claim("b", NULL), N / 3);
	assert_int_equal(claim("c", NULL), N / 3);
	long long settled = owners_digest();
	all_due_again();
	assert_int_equal(claim("c", NULL), N / 3);
	assert_int_equal(claim("a", NULL), N / 3);
	assert_int_equal(claim("b", NULL), N / 3);
	assert_int_equal(owners_digest(), settled);
}

static void test_dead_daemon_taken_over(void **state)
{
	(void)state;
	register_daemons();
	start_rollouts();
	claim("a", NULL);
	claim("b", NULL);
	int64_t of_c[256];
	assert_int_equal(claim("c", of_c), N / 3);
	/* c is SIGKILLed: its leases lapse, but its registry row (refreshed by claims after its last lease) not yet */
	sql_ok(db.conninfo, "UPDATE rollouts SET lease_until = now() - interval '1 s' WHERE lease_owner = 'c'");
	all_due_again();
	assert_int_equal(claim("a", NULL), N / 3);
	assert_int_equal(claim("b", NULL), N / 3);
	assert_int_equal(held("c"), N / 3);
	/* its row lapses too: a and b now have shares of 15 and take c's ten between them */
	sql_ok(db.conninfo, "UPDATE daemons SET expires_at = now() - interval '1 s' WHERE owner = 'c'");
	assert_int_equal(claim("a", NULL), N / 3 + N / 6);
	assert_int_equal(claim("b", NULL), N / 3 + N / 6);
	assert_int_equal(held("c"), 0);
	assert_int_equal(held("a"), N / 2);
	assert_int_equal(held("b"), N / 2);
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM rollouts WHERE id = %lld AND lease_owner IN ('a', 'b')",
		 (long long)of_c[0]);
	assert_int_equal(count(&db, sql), 1);
}

static void test_late_owner_keeps_its_own(void **state)
{
	(void)state;
	register_daemons();
	start_rollouts();
	claim("a", NULL);
	claim("b", NULL);
	claim("c", NULL);
	/* c runs late (its leases lapsed a minute ago) but claims, so its row is live: its rollouts stay its own */
	sql_ok(db.conninfo, "UPDATE rollouts SET lease_until = now() - interval '61 s', "
			    "next_tick_at = now() - interval '61 s' WHERE lease_owner = 'c'");
	assert_int_equal(claim("a", NULL), N / 3);
	assert_int_equal(claim("b", NULL), N / 3);
	assert_int_equal(held("c"), N / 3);
	assert_int_equal(claim("c", NULL), N / 3);
}

static void test_overdue_past_share(void **state)
{
	(void)state;
	register_daemons();
	start_rollouts();
	/* c registered but takes nothing (its row is live): a and b are at their shares and ten rollouts wait; once
	 * they are a whole lease past due, anyone takes them, past its share */
	assert_int_equal(claim("a", NULL), N / 3);
	assert_int_equal(claim("b", NULL), N / 3);
	assert_int_equal(claim("a", NULL), N / 3);
	sql_ok(db.conninfo, "UPDATE rollouts SET next_tick_at = now() - interval '61 s' WHERE lease_owner IS NULL");
	assert_int_equal(claim("a", NULL), 2 * N / 3);
	assert_int_equal(held("a"), 2 * N / 3);
	assert_int_equal(held("c"), 0);
}

static void test_release_hands_over(void **state)
{
	(void)state;
	register_daemons();
	start_rollouts();
	claim("a", NULL);
	claim("b", NULL);
	claim("c", NULL);
	struct cn_err err = {0};
	struct cn_store *st = cn_store_connect(as_controller, &err);
	if (!st || cn_store_release(st, "c", &err) < 0)
		fail_msg("release: %s", err.msg);
	cn_store_close(st);
	assert_int_equal(count(&db, "SELECT count(*) FROM daemons WHERE owner = 'c'"), 0);
	/* released rollouts are due again at once for whoever has room: a and b's shares are 15 now */
	assert_int_equal(claim("a", NULL), N / 2);
	assert_int_equal(claim("b", NULL), N / 2);
	assert_int_equal(held("a") + held("b"), N);
}

static void test_live_lease_never_taken(void **state)
{
	(void)state;
	register_daemons();
	start_rollouts();
	assert_int_equal(claim("a", NULL), N / 3);
	/* b and c gone, their rows lapsed: a alone takes the twenty nobody holds */
	sql_ok(db.conninfo, "UPDATE daemons SET expires_at = now() - interval '1 s' WHERE owner IN ('b', 'c')");
	assert_int_equal(claim("a", NULL), N);
	/* another daemon that comes back finds every lease live and takes nothing, due or not */
	all_due_again();
	sql_ok(db.conninfo, "UPDATE rollouts SET lease_until = now() + interval '1 minute' WHERE phase = 'pending'");
	assert_int_equal(claim("b", NULL), 0);
	assert_int_equal(held("a"), N);
}

/* A daemon in a long round says it is alive without claiming: its row is live again, and its late rollouts stay its
 * own; only the controller may say so. */
static void test_heartbeat(void **state)
{
	(void)state;
	register_daemons();
	start_rollouts();
	claim("a", NULL);
	claim("b", NULL);
	claim("c", NULL);
	sql_ok(db.conninfo, "UPDATE daemons SET expires_at = now() - interval '1 s' WHERE owner = 'c';"
			    "UPDATE rollouts SET lease_until = now() - interval '1 s' WHERE lease_owner = 'c'");
	struct cn_err err = {0};
	struct cn_store *st = cn_store_connect(as_controller, &err);
	if (!st || cn_store_heartbeat(st, "c", LEASE_MS, &err) < 0)
		fail_msg("heartbeat: %s", err.msg);
	cn_store_close(st);
	assert_int_equal(count(&db, "SELECT count(*) FROM daemons WHERE owner = 'c' AND expires_at > now()"), 1);
	all_due_again();
	assert_int_equal(claim("a", NULL), N / 3);
	assert_int_equal(held("c"), N / 3);
	char state_[8];
	char op[64], as_op[2300];
	make_login(&db, "t_replicas_op", "canary_operator", op, sizeof op, as_op, sizeof as_op);
	PGconn *c = PQconnectdb(as_op);
	PGresult *r = PQexec(c, "SELECT canary.heartbeat('c', 60000)");
	snprintf(state_, sizeof state_, "%s", PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "");
	PQclear(r);
	PQfinish(c);
	drop_login(&db, op);
	assert_string_equal(state_, "42501");
}

/* canary.claim_commands (migration 0019): after a NOTIFY, the rollouts with a command waiting, however many ticks are
 * due before them (canary.claim takes the most overdue first, up to its max), free or the caller's, never a live
 * replica's; only the controller may call it. */
static void test_commands_first(void **state)
{
	(void)state;
	start_rollouts();
	/* 29 long overdue, the one with the command (the highest id) due only now */
	sql_ok(db.conninfo, "UPDATE rollouts SET next_tick_at = now() - interval '1 hour' WHERE phase = 'pending';"
			    "UPDATE rollouts SET next_tick_at = now() WHERE id = (SELECT max(id) FROM rollouts);"
			    "INSERT INTO commands (rollout_id, kind, actor, reason) "
			    "SELECT max(id), 'abort', 'op', 'test' FROM rollouts");
	long long target = count(&db, "SELECT max(id) FROM rollouts");
	struct cn_err err = {0};
	int64_t ids[256];
	bool due[256];
	struct cn_claim c = {.ids = ids, .due = due};
	struct cn_store *st = cn_store_connect(as_controller, &err);
	/* a claim of 5 gets five of the overdue ones, not the one an operator waits on */
	if (!st || cn_store_claim_batch(st, "a", LEASE_MS, 5, &c, &err) < 0)
		fail_msg("claim: %s", err.msg);
	assert_int_equal(c.n, 5);
	for (int i = 0; i < c.n; i++)
		assert_true(ids[i] != target);
	/* a live replica holds it: not taken */
	sql_ok(db.conninfo, "INSERT INTO daemons (owner, expires_at) VALUES ('b', now() + interval '1 minute') "
			    "ON CONFLICT (owner) DO UPDATE SET expires_at = excluded.expires_at;"
			    "UPDATE rollouts SET lease_owner = 'b', lease_until = now() - interval '1 s' "
			    "WHERE id = (SELECT max(id) FROM rollouts)");
	if (cn_store_claim_commands(st, "a", LEASE_MS, 5, &c, &err) < 0)
		fail_msg("claim_commands: %s", err.msg);
	assert_int_equal(c.n, 0);
	/* its owner gone: taken, and only it */
	sql_ok(db.conninfo, "UPDATE daemons SET expires_at = now() - interval '1 s' WHERE owner = 'b'");
	if (cn_store_claim_commands(st, "a", LEASE_MS, 5, &c, &err) < 0)
		fail_msg("claim_commands: %s", err.msg);
	assert_int_equal(c.n, 1);
	assert_int_equal(ids[0], target);
	assert_true(c.db_now_ms > 0);
	cn_store_close(st);
	assert_int_equal(count(&db, "SELECT count(*) FROM rollouts WHERE lease_owner = 'a' AND id = "
				    "(SELECT max(id) FROM rollouts)"), 1);
	/* the operator may not lease rollouts */
	char op[64], as_op[2300], state_[8];
	make_login(&db, "t_replicas_op2", "canary_operator", op, sizeof op, as_op, sizeof as_op);
	PGconn *pc = PQconnectdb(as_op);
	PGresult *r = PQexec(pc, "SELECT * FROM canary.claim_commands('x', 60000, 5)");
	snprintf(state_, sizeof state_, "%s",
		 PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "");
	PQclear(r);
	PQfinish(pc);
	drop_login(&db, op);
	assert_string_equal(state_, "42501");
}

/* Migration 0025: a claim computes its candidate ids once, whatever plan the rollouts table gets. Right after a bulk
 * insert, before autovacuum has analyzed it, the planner scanned rollouts and ran canary_claim_ids() as a filter once
 * per row (40 s a claim with 10,000 due). Index scans are forbidden here to get that plan on purpose. */
static void test_claim_ids_once(void **state)
{
	(void)state;
	start_rollouts();
	/* the last statement's answer is the result; the transaction ends with the connection, rolled back */
	long long calls = count(&db, "BEGIN; SET LOCAL track_functions = 'all'; SET LOCAL enable_indexscan = off; "
				     "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_indexonlyscan = off; "
				     "SELECT count(*) FROM canary_claimable('a'); "
				     "SELECT calls FROM pg_stat_xact_user_functions WHERE funcname = 'canary_claim_ids'");
	assert_int_equal(calls, 1);
	assert_int_equal(count(&db, "SELECT count(*) FROM rollouts WHERE phase = 'pending'"), N);
	/* and the claim still takes every due rollout */
	assert_int_equal(claim("a", NULL), N);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_alone_takes_all, reset),
		cmocka_unit_test_setup(test_three_share_and_keep, reset),
		cmocka_unit_test_setup(test_joiners_get_their_share, reset),
		cmocka_unit_test_setup(test_dead_daemon_taken_over, reset),
		cmocka_unit_test_setup(test_late_owner_keeps_its_own, reset),
		cmocka_unit_test_setup(test_overdue_past_share, reset),
		cmocka_unit_test_setup(test_release_hands_over, reset),
		cmocka_unit_test_setup(test_live_lease_never_taken, reset),
		cmocka_unit_test_setup(test_heartbeat, reset),
		cmocka_unit_test_setup(test_commands_first, reset),
		cmocka_unit_test_setup(test_claim_ids_once, reset),
	};
	check_env();
	return cmocka_run_group_tests(tests, setup, teardown);
}
