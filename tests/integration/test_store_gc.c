/* Integration: retention (canary.gc, canaryctl gc). The per-tick rows of a rollout that ended more than the age ago
 * go; those of a rollout that ended recently and of an active one stay; the audit trail is untouched and every chain
 * still verifies; gc is itself audited; an age under a day is refused; nobody else may delete those rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "canary/store_audit.h"
#include "canary/store_gc.h"
#include "canary/store_rollouts.h"
#include "store_audit_support.h"

static struct pg_fixture db;

/* Five ticks' rows (measurement, decision, one verdict each) and their audit events for rollout id. */
static void ticks(int64_t id)
{
	char sql[2048];
	snprintf(sql, sizeof sql,
		 "INSERT INTO measurements (rollout_id, at, step, weight, baseline, candidate) "
		 "  SELECT %lld, now(), 0, 1, '{\"requests\": 1}', '{\"requests\": 2}' FROM generate_series(1, 5);"
		 "WITH d AS (INSERT INTO decisions (rollout_id, step, weight, decision, phase_before, phase_after, reason) "
		 "  SELECT %lld, 0, 1, 'hold', 'progressing', 'progressing', 'holding' FROM generate_series(1, 5) "
		 "  RETURNING id) "
		 "INSERT INTO slo_verdicts (decision_id, slo, verdict, why) SELECT id, 'errors', 'pass', 'ok' FROM d;"
		 "SELECT canary.audit(%lld, 'demo', NULL, 'tick', 'holding', NULL) FROM generate_series(1, 5);",
		 (long long)id, (long long)id, (long long)id);
	sql_ok(db.conninfo, sql);
}

static long long rows_of(int64_t id)
{
	char sql[512];
	snprintf(sql, sizeof sql,
		 "SELECT (SELECT count(*) FROM measurements WHERE rollout_id = %lld) + "
		 "(SELECT count(*) FROM decisions WHERE rollout_id = %lld) + "
		 "(SELECT count(*) FROM slo_verdicts v JOIN decisions d ON d.id = v.decision_id WHERE d.rollout_id = %lld)",
		 (long long)id, (long long)id, (long long)id);
	return count(&db, sql);
}

static void test_gc(void **state)
{
	(void)state;
	struct cn_err err = {0};
	int64_t old_id = 0, recent_id = 0, active_id = 0;
	setup_db(&db);
	/* three services, one rollout each: ended 100 days ago, ended an hour ago, still running */
	sql_ok(db.conninfo, "INSERT INTO services (name, live_slot, live_version) VALUES ('s2', 0, 'a'), ('s3', 0, 'a');"
			    "INSERT INTO service_versions (service, version, content_sha256, source, spec) "
			    "SELECT s, 1, content_sha256, source, spec FROM service_versions, unnest(ARRAY['s2', 's3']) s "
			    "WHERE service = 'demo'");
	struct cn_store *st = cn_store_connect(db.conninfo, &err);
	if (!st)
		fail_msg("%s", err.msg);
	if (cn_store_rollout_create(st, "demo", "v1", "default", NULL, &old_id, &err) < 0 ||
	    cn_store_rollout_create(st, "s2", "v1", "default", NULL, &recent_id, &err) < 0 ||
	    cn_store_rollout_create(st, "s3", "v1", "default", NULL, &active_id, &err) < 0)
		fail_msg("%s", err.msg);
	ticks(old_id);
	ticks(recent_id);
	ticks(active_id);
	char sql[512];
	snprintf(sql, sizeof sql,
		 "UPDATE rollouts SET phase = 'aborted', finished_at = now() - interval '100 days' WHERE id = %lld;"
		 "UPDATE rollouts SET phase = 'aborted', finished_at = now() - interval '1 hour' WHERE id = %lld",
		 (long long)old_id, (long long)recent_id);
	sql_ok(db.conninfo, sql);
	long long audit_before = count(&db, "SELECT count(*) FROM audit_events");

	/* the rows stay append-only outside gc, even for the tables' owner */
	char msg[512];
	assert_int_not_equal(pg_fixture_exec(db.conninfo, "DELETE FROM measurements", msg, sizeof msg), 0);
	assert_non_null(strstr(msg, "not allowed"));

	/* less than a day is refused, nothing deleted */
	struct cn_gc_result r = {0};
	assert_int_equal(cn_store_gc(st, 3600 * 1000LL, 1000, &r, &err), -CN_EINPUT);
	assert_non_null(strstr(err.msg, "shorter than a day"));
	assert_int_equal(rows_of(old_id), 15);
	static struct run run;
	const char *short_age[] = {"gc", "--older-than", "1h", NULL};
	ctl(&run, db.conninfo, short_age);
	expect_exit(&run, 65, "gc --older-than 1h");
	expect_one_line_error(&run, "shorter than a day");
	assert_int_equal(rows_of(old_id), 15);

	/* canaryctl gc --older-than 90d: the old rollout's 15 rows go, the others' stay */
	const char *args[] = {"gc", "--older-than", "90d", NULL};
	ctl(&run, db.conninfo, args);
	expect_exit(&run, 0, "gc --older-than 90d");
	assert_non_null(strstr(run.out, "deleted 5 measurements, 5 decisions and 5 verdicts of 1 rollouts"));
	assert_int_equal(rows_of(old_id), 0);
	assert_int_equal(rows_of(recent_id), 15);
	assert_int_equal(rows_of(active_id), 15);

	/* the audit: nothing deleted, one gc event added, every chain intact */
	assert_int_equal(count(&db, "SELECT count(*) FROM audit_events"), audit_before + 1);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM audit_events WHERE kind = 'gc' AND rollout_id IS NULL "
				  "AND (data->'ids'->>0)::bigint = %lld AND (data->>'measurements')::int = 5", (long long)old_id);
	assert_int_equal(count(&db, sql), 1);
	struct cn_audit_report rep = {0};
	if (cn_store_audit_verify(st, 0, &rep, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(rep.problem, CN_AUDIT_INTACT);
	assert_true(rep.chains >= 4);
	/* canaryctl audit verify says so too, and the old rollout's timeline still reads */
	const char *verify[] = {"audit", "verify", NULL};
	ctl(&run, db.conninfo, verify);
	expect_exit(&run, 0, "audit verify after gc");
	char ids[32];
	snprintf(ids, sizeof ids, "%lld", (long long)old_id);
	const char *timeline[] = {"audit", ids, NULL};
	ctl(&run, db.conninfo, timeline);
	expect_exit(&run, 0, "audit of a collected rollout");

	/* a second run finds nothing more */
	assert_int_equal(cn_store_gc(st, 90LL * 86400 * 1000, 1000, &r, &err), 0);
	assert_int_equal(r.rollouts, 0);
	assert_int_equal(count(&db, "SELECT count(*) FROM audit_events"), audit_before + 1);

	/* a viewer may not collect */
	char viewer[64], as_viewer[2300];
	make_login(&db, "t_gcview", "canary_viewer", viewer, sizeof viewer, as_viewer, sizeof as_viewer);
	const char *gc90[] = {"gc", "--older-than", "1d", NULL};
	ctl(&run, as_viewer, gc90);
	expect_exit(&run, 77, "gc as a viewer");
	assert_int_equal(rows_of(recent_id), 15);
	drop_login(&db, viewer);
	cn_store_close(st);
}

int main(void)
{
	check_env();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gc),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	pg_fixture_drop(&db);
	return rc;
}
