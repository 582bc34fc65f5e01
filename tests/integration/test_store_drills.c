/* Integration: failover drills in a real Postgres (DATABASE_URL). A drill and a rollout of one service exclude each
 * other in SQL, also when they start concurrently (each start locks the service's row; the loser waits, then is
 * refused); one drill per service; the lease guards every daemon write; a drill ends only once the primary is
 * confirmed; roles may call only their functions; every step is in the hash-chained audit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "canary/store.h"
#include "canary/store_drills.h"
#include "canary/store_rollouts.h"
#include "store_fixture.h"

static const char SETUP[] =
	"SELECT canary.apply_policy('default', 'src', '{\"name\": \"default\", \"steps\": [{\"weight\": 100, "
	"\"hold_ms\": 1000}]}');"
	"SELECT canary.apply_service('svc', 'src', '{\"name\": \"svc\", \"slots\": [{\"name\": \"blue\", \"server\": "
	"\"b1\"}, {\"name\": \"green\", \"server\": \"g1\"}]}', 0::smallint);";

static int setup(void **state)
{
	if (store_ctx_setup(state) < 0)
		return -1;
	struct store_ctx *c = *state;
	char msg[256];
	if (pg_fixture_exec(c->db.conninfo, SETUP, msg, sizeof msg) < 0) {
		fprintf(stderr, "setup: %s\n", msg);
		return -1;
	}
	return 0;
}

static PGconn *conn(struct store_ctx *c)
{
	PGconn *pg = PQconnectdb(c->db.conninfo);
	if (PQstatus(pg) != CONNECTION_OK)
		fail_msg("connect: %s", PQerrorMessage(pg));
	return pg;
}

static void ok(PGconn *pg, const char *sql)
{
	PGresult *r = PQexec(pg, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(pg));
	PQclear(r);
}

/* Runs sql, which must fail with sqlstate; returns nothing. */
static void refused(PGconn *pg, const char *sql, const char *sqlstate, const char *words)
{
	PGresult *r = PQexec(pg, sql);
	const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (PQresultStatus(r) != PGRES_FATAL_ERROR || !st || strcmp(st, sqlstate) != 0)
		fail_msg("%s: expected %s, got %s (%s)", sql, sqlstate, st ? st : "success", PQerrorMessage(pg));
	if (words && !strstr(PQerrorMessage(pg), words))
		fail_msg("%s: '%s' lacks '%s'", sql, PQerrorMessage(pg), words);
	PQclear(r);
	ok(pg, "ROLLBACK");
}

#define START_DRILL "SELECT canary.start_drill('svc', NULL, 'default', 10000, 3000, 'test')"
#define START_ROLLOUT "SELECT canary.start_rollout('svc', 'v2', 'default', NULL)"

/* first runs in an open transaction; second is sent on another connection and must wait for first's lock, then be
 * refused with words once first commits. */
static void race(struct store_ctx *c, const char *first, const char *second, const char *words)
{
	PGconn *a = conn(c), *b = conn(c);
	ok(a, "BEGIN");
	ok(a, first);
	assert_int_equal(PQsendQuery(b, second), 1);
	usleep(300 * 1000);
	assert_int_equal(PQconsumeInput(b), 1);
	assert_int_equal(PQisBusy(b), 1); /* waits on the service's row */
	ok(a, "COMMIT");
	PGresult *r = PQgetResult(b);
	const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (!st || strcmp(st, "CNIN0") != 0 || !strstr(PQresultErrorMessage(r), words))
		fail_msg("%s after %s: expected CNIN0 '%s', got %s: %s", second, first, words, st ? st : "success",
			 PQresultErrorMessage(r));
	PQclear(r);
	while ((r = PQgetResult(b)))
		PQclear(r);
	PQfinish(a);
	PQfinish(b);
}

static void test_concurrent_drill_then_rollout(void **state)
{
	struct store_ctx *c = *state;
	race(c, START_DRILL, START_ROLLOUT, "has a failover drill running");
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM rollouts"), 0);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM drills WHERE phase = 'pending'"), 1);
}

static void test_concurrent_rollout_then_drill(void **state)
{
	struct store_ctx *c = *state;
	race(c, START_ROLLOUT, START_DRILL, "a drill never runs during a rollout");
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM drills"), 0);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM rollouts"), 1);
}

static void test_concurrent_drills(void **state)
{
	struct store_ctx *c = *state;
	race(c, START_DRILL, START_DRILL, "already has a drill running");
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM drills"), 1);
}

static void test_refusals(void **state)
{
	struct store_ctx *c = *state;
	PGconn *pg = conn(c);
	ok(pg, "BEGIN");
	refused(pg, "SELECT canary.start_drill('svc', 'blue', 'default', 10000, 3000, NULL)", "CNIN0",
		"is the live slot");
	ok(pg, "BEGIN");
	refused(pg, "SELECT canary.start_drill('svc', 'red', 'default', 10000, 3000, NULL)", "CNIN0",
		"has no slot or server 'red'");
	ok(pg, "BEGIN");
	refused(pg, "SELECT canary.start_drill('nope', NULL, 'default', 10000, 3000, NULL)", "CNIN0",
		"unknown service 'nope'");
	ok(pg, "BEGIN");
	refused(pg, "SELECT canary.start_drill('svc', NULL, 'default', 10, 3000, NULL)", "CNIN0", "1s to 24h");
	ok(pg, "BEGIN");
	refused(pg, "SELECT canary.abort_drill(99, NULL)", "CNIN0", "no drill with id 99");
	/* the server name works as --to as well */
	ok(pg, "SELECT canary.start_drill('svc', 'g1', 'default', 10000, 3000, NULL)");
	assert_int_equal(store_ctx_scalar(c, "SELECT secondary_slot FROM drills"), 1);
	PQfinish(pg);
}

static void test_lease_and_end(void **state)
{
	struct store_ctx *c = *state;
	struct cn_err err = {0};
	int64_t id = 0, ids[4], db_now = 0;
	bool fresh[4];
	int n = 0;
	assert_int_equal(cn_store_drill_start(c->s, "svc", NULL, "default", 10000, 3000, "r", &id, &err), 0);
	assert_int_equal(cn_store_drill_claim(c->s, "d1", 10000, ids, fresh, 4, &n, &db_now, &err), 0);
	assert_int_equal(n, 1);
	assert_true(fresh[0]);
	assert_true(db_now > 0);
	/* another daemon gets nothing while d1 holds the lease, and may not write */
	assert_int_equal(cn_store_drill_claim(c->s, "d2", 10000, ids, fresh, 4, &n, &db_now, &err), 0);
	assert_int_equal(n, 0);
	struct cn_drill_state s;
	struct cn_drill_figures f;
	struct cn_policy p = {0};
	cn_drill_init(&s);
	cn_drill_figures(&s, &f);
	s.phase = CN_DRILL_SHIFTING;
	s.weight = 100;
	assert_int_equal(cn_store_drill_record(c->s, id, "d2", &s, &f, &p, false, 1000, &err), -CN_EUNAVAIL);
	assert_int_equal(cn_store_drill_record(c->s, id, "d1", &s, &f, &p, true, 1000, &err), 0);
	assert_int_equal(cn_store_drill_confirm(c->s, id, "d1", 0, false, &err), -CN_EUNAVAIL); /* not the intent */
	assert_int_equal(cn_store_drill_confirm(c->s, id, "d1", 100, false, &err), 0);
	/* an end while the secondary still has the traffic is refused */
	s.phase = CN_DRILL_PASSED;
	s.outcome = CN_DRILL_PASSED;
	s.weight = 0;
	assert_int_equal(cn_store_drill_record(c->s, id, "d1", &s, &f, &p, false, 1000, &err), -CN_EINPUT);
	s.phase = CN_DRILL_RESTORING;
	assert_int_equal(cn_store_drill_record(c->s, id, "d1", &s, &f, &p, false, 1000, &err), 0);
	assert_int_equal(cn_store_drill_confirm(c->s, id, "d1", 0, false, &err), 0);
	s.phase = CN_DRILL_PASSED;
	assert_int_equal(cn_store_drill_record(c->s, id, "d1", &s, &f, &p, false, 1000, &err), 0);
	assert_int_equal(cn_store_drill_record(c->s, id, "d1", &s, &f, &p, false, 1000, &err), -CN_EINPUT); /* ended */
	struct cn_drill_row *row = NULL;
	assert_int_equal(cn_store_drill_get(c->s, id, &row, &err), 0);
	assert_int_equal(row->phase, CN_DRILL_PASSED);
	assert_string_equal(row->secondary, "green");
	assert_true(row->finished_us != CN_TIME_NONE);
	cn_drill_row_free(row);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM drill_ticks"), 1);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM audit_events WHERE rollout_id IS NULL AND "
					     "kind LIKE 'drill.%'"),
			 9); /* started, phase+weight, confirmed, phase+weight, confirmed, phase, ended */
	/* the service is free again: a rollout may start */
	int64_t rid = 0;
	assert_int_equal(cn_store_rollout_create(c->s, "svc", "v2", "default", NULL, &rid, &err), 0);
	/* and a drill may not while it is active */
	assert_int_equal(cn_store_drill_start(c->s, "svc", NULL, "default", 10000, 3000, NULL, &id, &err), -CN_EINPUT);
}

static void test_abort_request(void **state)
{
	struct store_ctx *c = *state;
	struct cn_err err = {0};
	int64_t id = 0;
	assert_int_equal(cn_store_drill_start(c->s, "svc", NULL, "default", 10000, 3000, NULL, &id, &err), 0);
	assert_int_equal(cn_store_drill_abort(c->s, id, "enough", &err), 0);
	assert_int_equal(cn_store_drill_abort(c->s, id, "twice", &err), 0); /* the first request stands */
	struct cn_drill_row *row = NULL;
	assert_int_equal(cn_store_drill_get(c->s, id, &row, &err), 0);
	assert_true(row->abort_requested);
	assert_string_equal(row->abort_reason, "enough");
	cn_drill_row_free(row);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM audit_events WHERE kind = 'drill.abort_requested'"),
			 1);
}

static void test_roles(void **state)
{
	struct store_ctx *c = *state;
	PGconn *pg = conn(c);
	ok(pg, "BEGIN; SET LOCAL ROLE canary_operator");
	refused(pg, "SELECT canary.drill_record(1, 'x', '{}')", "42501", NULL);
	ok(pg, "BEGIN; SET LOCAL ROLE canary_operator");
	refused(pg, "UPDATE drills SET phase = 'passed'", "42501", NULL);
	ok(pg, "BEGIN; SET LOCAL ROLE canary_controller");
	refused(pg, START_DRILL, "42501", NULL);
	ok(pg, "BEGIN; SET LOCAL ROLE canary_controller");
	refused(pg, "SELECT canary.drill_insert('svc', NULL, 'default', 10000, 3000, NULL, true)", "42501", NULL);
	ok(pg, "BEGIN; SET LOCAL ROLE canary_viewer");
	refused(pg, "INSERT INTO drill_ticks (drill_id, phase, weight, data) VALUES (1, 'x', 0, '{}')", "42501", NULL);
	ok(pg, "BEGIN; SET LOCAL ROLE canary_operator");
	ok(pg, START_DRILL);
	ok(pg, "COMMIT");
	PQfinish(pg);
}

static void test_scheduled(void **state)
{
	struct store_ctx *c = *state;
	struct cn_err err = {0};
	char msg[256];
	int n = -1;
	/* svc has no schedule */
	assert_int_equal(cn_store_drill_start_scheduled(c->s, &n, &err), 0);
	assert_int_equal(n, 0);
	if (pg_fixture_exec(c->db.conninfo,
			    "SELECT canary.apply_service('sch', 'src', '{\"name\": \"sch\", \"slots\": [{\"name\": "
			    "\"blue\"}, {\"name\": \"green\"}], \"drill\": {\"every\": \"1h\", \"every_ms\": 3600000, "
			    "\"hold_ms\": 5000, \"baseline_ms\": 2000, \"policy\": \"default\"}}', 1::smallint)",
			    msg, sizeof msg) < 0)
		fail_msg("%s", msg);
	/* a rollout of it is active: not now */
	int64_t rid = 0;
	assert_int_equal(cn_store_rollout_create(c->s, "sch", "v2", "default", NULL, &rid, &err), 0);
	assert_int_equal(cn_store_drill_start_scheduled(c->s, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(pg_fixture_exec(c->db.conninfo, "UPDATE rollouts SET phase = 'promoted'", msg, sizeof msg), 0);
	assert_int_equal(cn_store_drill_start_scheduled(c->s, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM drills WHERE service = 'sch' AND scheduled "
					     "AND hold_ms = 5000 AND baseline_ms = 2000 AND secondary_slot = 0 "
					     "AND reason = 'scheduled: every 1h'"),
			 1);
	/* one at a time, and not again within `every` once it ended */
	assert_int_equal(cn_store_drill_start_scheduled(c->s, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(pg_fixture_exec(c->db.conninfo, "UPDATE drills SET phase = 'passed' WHERE service = 'sch'",
					 msg, sizeof msg), 0);
	assert_int_equal(cn_store_drill_start_scheduled(c->s, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(pg_fixture_exec(c->db.conninfo, "UPDATE drills SET created_at = now() - interval '61 minutes'",
					 msg, sizeof msg), 0);
	assert_int_equal(cn_store_drill_start_scheduled(c->s, &n, &err), 0);
	assert_int_equal(n, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_concurrent_drill_then_rollout, setup, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_rollout_then_drill, setup, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_drills, setup, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_lease_and_end, setup, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_abort_request, setup, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_roles, setup, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_scheduled, setup, store_ctx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
