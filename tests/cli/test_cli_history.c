/* CLI: `canaryctl history` against a real Postgres: one row per rollout with outcome, step, duration,
 * starter and approvers; the --service, --since and --state filters; table, json and csv; bad input is one line and
 * exit 64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>

#include "canary/store_history.h"
#include "canary/store_rollouts.h"
#include "store_audit_support.h"

static struct pg_fixture db;
static int64_t ids[4]; /* promoted (demo), rolled back 40 days ago (demo), aborted (other), active (demo) */

static void start(struct cn_store *st, const char *service, const char *candidate, int64_t *id)
{
	struct cn_err err = {0};
	if (cn_store_rollout_create(st, service, candidate, "default", NULL, id, &err) < 0)
		fail_msg("%s", err.msg);
}

static int setup(void **state)
{
	(void)state;
	struct cn_err err = {0};
	char sql[2048];
	setup_db(&db);
	sql_ok(db.conninfo, "INSERT INTO services (name, live_slot, live_version) VALUES ('other', 0, 'o0');"
			    "INSERT INTO service_versions (service, version, content_sha256, source, spec) "
			    "SELECT 'other', 1, content_sha256, source, spec FROM service_versions WHERE service = 'demo'");
	struct cn_store *st = cn_store_connect(db.conninfo, &err);
	assert_non_null(st);
	start(st, "demo", "v2", &ids[0]);
	snprintf(sql, sizeof sql,
		 "UPDATE rollouts SET phase = 'promoted', step = 2, weight = 100, "
		 "created_at = now() - interval '2 days', finished_at = now() - interval '2 days' + interval '1 hour' "
		 "WHERE id = %lld;"
		 "INSERT INTO commands (rollout_id, kind, actor, reason, handled_at, result) VALUES "
		 "(%lld, 'approve', 'alice', 'looks good', now(), 'accepted'),"
		 "(%lld, 'approve', 'eve', NULL, now(), 'refused: the approver started the rollout'),"
		 "(%lld, 'approve', 'mallory', NULL, NULL, NULL),"
		 "(%lld, 'approve', 'bob', 'ship', now(), 'accepted')",
		 (long long)ids[0], (long long)ids[0], (long long)ids[0], (long long)ids[0], (long long)ids[0]);
	sql_ok(db.conninfo, sql);
	start(st, "demo", "v3", &ids[1]);
	snprintf(sql, sizeof sql,
		 "UPDATE rollouts SET phase = 'rolled_back', step = 1, created_at = now() - interval '40 days', "
		 "finished_at = now() - interval '40 days' + interval '90 seconds' WHERE id = %lld",
		 (long long)ids[1]);
	sql_ok(db.conninfo, sql);
	start(st, "other", "o1", &ids[2]);
	snprintf(sql, sizeof sql,
		 "UPDATE rollouts SET phase = 'aborted', step = 0, finished_at = now() WHERE id = %lld;"
		 "INSERT INTO commands (rollout_id, kind, actor, reason, handled_at, result) VALUES "
		 "(%lld, 'abort', 'carol', 'wrong build', now(), 'accepted')",
		 (long long)ids[2], (long long)ids[2]);
	sql_ok(db.conninfo, sql);
	start(st, "demo", "v4", &ids[3]);
	snprintf(sql, sizeof sql, "UPDATE rollouts SET phase = 'progressing', step = 0, weight = 1 WHERE id = %lld",
		 (long long)ids[3]);
	sql_ok(db.conninfo, sql);
	cn_store_close(st);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pg_fixture_drop(&db);
	return 0;
}

static json_t *history_json(const char *const *args)
{
	static struct run r;
	const char *argv[12] = {"--output", "json", "history"};
	int n = 3;
	for (int i = 0; args[i] && n < 11; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	ctl(&r, db.conninfo, argv);
	expect_exit(&r, 0, "history --output json");
	json_t *j = json_loads(r.out, 0, NULL);
	if (!json_is_array(j))
		fail_msg("history json is not an array: %s", r.out);
	return j;
}

static json_t *by_id(json_t *rows, int64_t id)
{
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r) if (json_integer_value(json_object_get(r, "id")) == id) return r;
	fail_msg("rollout %lld is not in the history", (long long)id);
	return NULL;
}

static void test_rows(void **state)
{
	(void)state;
	json_t *rows = history_json((const char *[]){NULL});
	assert_int_equal(json_array_size(rows), 4);
	/* newest first */
	assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "id")), ids[3]);
	json_t *p = by_id(rows, ids[0]);
	assert_string_equal(json_string_value(json_object_get(p, "outcome")), "promoted");
	assert_string_equal(json_string_value(json_object_get(p, "candidate")), "v2");
	assert_string_equal(json_string_value(json_object_get(p, "policy")), "default");
	assert_int_equal(json_integer_value(json_object_get(p, "policy_version")), 1);
	assert_int_equal(json_integer_value(json_object_get(p, "step")), 2);
	assert_int_equal(json_integer_value(json_object_get(p, "steps")), 3);
	assert_int_equal(json_integer_value(json_object_get(p, "duration_ms")), 3600000);
	assert_string_equal(json_string_value(json_object_get(p, "started_by")), "postgres");
	/* only accepted approvals, in order */
	json_t *ap = json_object_get(p, "approved_by");
	assert_int_equal(json_array_size(ap), 2);
	assert_string_equal(json_string_value(json_array_get(ap, 0)), "alice");
	assert_string_equal(json_string_value(json_array_get(ap, 1)), "bob");
	assert_true(json_is_null(json_object_get(p, "aborted_by")));
	json_t *rb = by_id(rows, ids[1]);
	assert_string_equal(json_string_value(json_object_get(rb, "outcome")), "rolled_back");
	assert_int_equal(json_integer_value(json_object_get(rb, "step")), 1);
	assert_int_equal(json_integer_value(json_object_get(rb, "duration_ms")), 90000);
	assert_int_equal(json_array_size(json_object_get(rb, "approved_by")), 0);
	json_t *ab = by_id(rows, ids[2]);
	assert_string_equal(json_string_value(json_object_get(ab, "aborted_by")), "carol");
	assert_string_equal(json_string_value(json_object_get(ab, "baseline")), "o0");
	json_t *act = by_id(rows, ids[3]);
	assert_true(json_is_null(json_object_get(act, "finished_at")));
	assert_true(json_integer_value(json_object_get(act, "duration_ms")) >= 0);
	json_decref(rows);
}

static void test_filters(void **state)
{
	(void)state;
	static const struct {
		const char *args[7];
		size_t n;
		int first; /* index into ids of the first row, -1: none */
	} cases[] = {
		{{"--service", "other", NULL}, 1, 2},
		{{"--service", "nosuch", NULL}, 0, -1},
		{{"--state", "rolled_back", NULL}, 1, 1},
		{{"--state", "progressing", NULL}, 1, 3},
		{{"--since", "30d", NULL}, 3, 3},
		{{"--since", "30d", "--state", "rolled_back", NULL}, 0, -1},
		{{"--since", "41d", "--state", "rolled_back", NULL}, 1, 1},
		{{"--service", "demo", "--since", "3d", NULL}, 2, 3},
		{{"--service", "demo", "--since=3d", "--state", "promoted", NULL}, 1, 0},
		{{"--limit", "2", NULL}, 2, 3},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *rows = history_json(cases[i].args);
		if (json_array_size(rows) != cases[i].n)
			fail_msg("case %zu: %zu rows, not %zu", i, json_array_size(rows), cases[i].n);
		if (cases[i].first >= 0)
			assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "id")),
					 ids[cases[i].first]);
		json_decref(rows);
	}
}

static void test_formats(void **state)
{
	(void)state;
	static struct run r;
	/* csv: a header and one line per rollout; the global --output json is overridden by the local --output */
	ctl(&r, db.conninfo, (const char *[]){"--output", "json", "history", "--output", "csv", NULL});
	expect_exit(&r, 0, "history --output csv");
	assert_true(strncmp(r.out, "id,service,candidate,baseline,policy,policy_version,outcome,step,steps,duration_ms,"
				   "started_by,approved_by,aborted_by,started_at,finished_at\r\n", 140) == 0);
	int lines = 0;
	for (const char *p = r.out; (p = strstr(p, "\r\n")) != NULL; p += 2)
		lines++;
	assert_int_equal(lines, 5);
	char want[128];
	snprintf(want, sizeof want, "\r\n%lld,demo,v2,,default,1,promoted,3,3,3600000,postgres,alice bob,,",
		 (long long)ids[0]);
	if (!strstr(r.out, want))
		fail_msg("csv lacks '%s': %s", want + 2, r.out);

	/* table (the default): a header, aligned rows, steps counted from 1 */
	ctl(&r, db.conninfo, (const char *[]){"history", "--service", "demo", NULL});
	expect_exit(&r, 0, "history");
	assert_true(strncmp(r.out, "id ", 3) == 0);
	assert_non_null(strstr(r.out, "approved_by"));
	assert_non_null(strstr(r.out, "default@1"));
	assert_non_null(strstr(r.out, "3/3"));
	assert_non_null(strstr(r.out, "alice bob"));
	assert_non_null(strstr(r.out, "1h"));
	assert_null(strstr(r.out, "carol"));
	ctl(&r, db.conninfo, (const char *[]){"history", "--output", "table", "--service", "nosuch", NULL});
	expect_exit(&r, 0, "history with no match");
	assert_string_equal(r.out, "no rollouts match\n");
}

static void test_bad_input(void **state)
{
	(void)state;
	static struct run r;
	static const struct {
		const char *args[5];
		const char *msg;
	} cases[] = {
		{{"history", "--since", "30 days", NULL}, "history --since '30 days' is not a duration"},
		{{"history", "--since", "yesterday", NULL}, "history --since 'yesterday'"},
		{{"history", "--since", "-5d", NULL}, "history --since '-5d'"},
		{{"history", "--state", "rolledback", NULL}, "history --state 'rolledback' is not a rollout state"},
		{{"history", "--output", "xml", NULL}, "history --output is table, json or csv, not 'xml'"},
		{{"history", "--limit", "0", NULL}, "--limit"},
	};
	long long before = count(&db, "SELECT count(*) FROM rollouts");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ctl(&r, db.conninfo, cases[i].args);
		if (r.status != 64)
			fail_msg("case %zu: exit %d, stderr: %s", i, r.status, r.err);
		expect_one_line_error(&r, cases[i].msg);
		assert_string_equal(r.out, "");
	}
	/* usage errors still show the usage */
	ctl(&r, db.conninfo, (const char *[]){"history", "--frob", NULL});
	expect_exit(&r, 64, "history --frob");
	assert_non_null(strstr(r.err, "usage: canaryctl history"));
	assert_int_equal(count(&db, "SELECT count(*) FROM rollouts"), before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_bad_input),
	};
	check_env();
	return cmocka_run_group_tests(tests, setup, teardown);
}
