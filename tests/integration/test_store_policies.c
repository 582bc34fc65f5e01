/* Integration: versioned policies in a real Postgres (DATABASE_URL): same content -> same version, changed ->
 * new version, SLO rows queryable, failures write nothing, permissions map to CN_EPERM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "canary/policy.h"
#include "canary/store.h"
#include "canary/store_history.h"
#include "store_fixture.h"

/* Loads a policy from text written to a temp file; returns the source (the caller frees it). */
static char *load_text(const char *text, struct cn_policy *p)
{
	struct cn_err err = {0};
	char *source = NULL;
	const char *path = store_ctx_temp_file("canary-policy", text);
	if (cn_policy_load_file(path, p, &source, &err) != 0)
		fail_msg("load: %s", err.msg);
	unlink(path);
	return source;
}

static const char policy_v1[] = "name: shop\n"
				"steps:\n"
				"  - weight: 1%\n"
				"    hold: 5m\n"
				"  - weight: 100%\n"
				"    hold: 1m\n"
				"    approval: required\n"
				"slos:\n"
				"  - name: errors\n"
				"    metric: error_rate\n"
				"    max: 1%\n"
				"  - name: p99\n"
				"    metric: latency\n"
				"    quantile: 0.99\n"
				"    max_increase: 1.2x\n";

static void test_apply_versions(void **state)
{
	struct store_ctx *c = *state;
	struct cn_policy p;
	struct cn_err err = {0};
	int version = -1;
	bool created = false;
	char *src = load_text(policy_v1, &p);

	assert_int_equal(cn_store_policy_apply(c->s, &p, src, &version, &created, &err), 0);
	assert_int_equal(version, 1);
	assert_true(created);
	/* the same content again: the same version, nothing new */
	assert_int_equal(cn_store_policy_apply(c->s, &p, src, &version, &created, &err), 0);
	assert_int_equal(version, 1);
	assert_false(created);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM policies"), 1);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM audit_events WHERE kind = 'policy.applied'"), 1);
	free(src);

	/* changed content: version 2; version 1 stays as it was */
	char v2[sizeof policy_v1 + 64];
	snprintf(v2, sizeof v2, "%s", policy_v1);
	char *hold = strstr(v2, "hold: 5m");
	assert_non_null(hold);
	hold[6] = '7';
	src = load_text(v2, &p);
	assert_int_equal(cn_store_policy_apply(c->s, &p, src, &version, &created, &err), 0);
	assert_int_equal(version, 2);
	assert_true(created);
	free(src);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM policies WHERE name = 'shop'"), 2);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM audit_events WHERE kind = 'policy.applied'"), 2);
	assert_int_equal(store_ctx_scalar(c, "SELECT s.hold_ms FROM policy_steps s JOIN policies p ON p.id = s.policy_id"
				   " WHERE p.version = 1 AND s.idx = 0"),
			 300000);
	assert_int_equal(store_ctx_scalar(c, "SELECT s.hold_ms FROM policy_steps s JOIN policies p ON p.id = s.policy_id"
				   " WHERE p.version = 2 AND s.idx = 0"),
			 420000);
	/* the SLOs are rows anyone can query with SQL */
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM policy_slos s JOIN policies p ON p.id = s.policy_id"
				   " WHERE p.name = 'shop' AND p.version = 2"),
			 2);
	assert_int_equal(store_ctx_scalar(c, "SELECT round(s.max_value * 10000) FROM policy_slos s JOIN policies p"
				   " ON p.id = s.policy_id WHERE p.version = 2 AND s.name = 'errors'"
				   " AND s.metric = 'error_rate' AND s.quantile IS NULL AND s.max_increase IS NULL"),
			 100);
	assert_int_equal(store_ctx_scalar(c, "SELECT round(s.max_increase * 100) + round(s.quantile * 100) * 1000"
				   " FROM policy_slos s JOIN policies p ON p.id = s.policy_id WHERE p.version = 2"
				   " AND s.name = 'p99' AND s.metric = 'latency' AND s.max_value IS NULL"),
			 99120);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM policy_steps WHERE approval AND idx = 1"), 2);
	/* the spec is the normalised policy, defaults filled in, NaN as null */
	assert_int_equal(store_ctx_scalar(c, "SELECT (spec->'analysis'->>'failing_ticks')::int FROM policies WHERE version = 2"),
			 p.analysis.failing_ticks);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM policies WHERE version = 2"
				   " AND jsonb_typeof(spec->'slos'->0->'quantile') = 'null'"),
			 1);
}

static void test_list_and_show(void **state)
{
	struct store_ctx *c = *state;
	struct cn_policy p;
	struct cn_err err = {0};
	int version;
	bool created;
	char *src = load_text(policy_v1, &p);
	assert_int_equal(cn_store_policy_apply(c->s, &p, src, &version, &created, &err), 0);
	free(src);

	struct cn_policy_list *list = NULL;
	assert_int_equal(cn_store_policy_list(c->s, &list, &err), 0);
	assert_int_equal(list->n, 1);
	assert_string_equal(list->items[0].name, "shop");
	assert_int_equal(list->items[0].version, 1);
	assert_int_equal(list->items[0].slos, 2);
	cn_policy_list_free(list);

	struct cn_policy_version *doc = NULL;
	assert_int_equal(cn_store_policy_show(c->s, "shop", 0, &doc, &err), 0);
	assert_int_equal(doc->version, 1);
	assert_string_equal(doc->source, policy_v1);
	assert_int_equal(doc->nsteps, 2);
	assert_true(doc->steps[1].approval);
	assert_string_equal(doc->slos[1].name, "p99");
	cn_policy_version_free(doc);

	doc = NULL;
	assert_int_equal(cn_store_policy_show(c->s, "shop", 3, &doc, &err), -CN_EINPUT);
	assert_null(doc);
	assert_int_equal(err.code, CN_EINPUT);
	assert_non_null(strstr(err.msg, "policy 'shop' has no version 3"));
	assert_int_equal(cn_store_policy_show(c->s, "nope", 0, &doc, &err), -CN_EINPUT);
	assert_null(doc);
	assert_int_equal(err.code, CN_EINPUT);
	assert_non_null(strstr(err.msg, "no policy 'nope'"));
}

static void test_failure_writes_nothing(void **state)
{
	struct store_ctx *c = *state;
	struct cn_policy p;
	struct cn_err err = {0};
	int version = -7;
	bool created = false;
	char *src = load_text(policy_v1, &p);

	/* A second SLO with the first one's name violates UNIQUE (policy_id, name) after the policy and its
	 * steps were inserted: the transaction must leave no row behind. */
	snprintf(p.slos[1].name, sizeof p.slos[1].name, "%s", p.slos[0].name);
	assert_int_equal(cn_store_policy_apply(c->s, &p, src, &version, &created, &err), -CN_EINPUT);
	assert_int_equal(err.code, CN_EINPUT);
	assert_int_equal(version, -7); /* outputs untouched on failure */
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM policies"), 0);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM policy_steps"), 0);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM policy_slos"), 0);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM audit_events"), 0);
	/* the connection is usable again afterwards */
	snprintf(p.slos[1].name, sizeof p.slos[1].name, "p99");
	assert_int_equal(cn_store_policy_apply(c->s, &p, src, &version, &created, &err), 0);
	assert_int_equal(version, 1);
	free(src);
}

static void test_viewer_may_not_apply(void **state)
{
	struct store_ctx *c = *state;
	struct cn_policy p;
	struct cn_err err = {0};
	char sql[256], conninfo[2200];
	int version;
	bool created;

	snprintf(c->role, sizeof c->role, "canary_test_viewer_%ld", (long)getpid());
	snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN IN ROLE canary_viewer", c->role,
		 c->role);
	assert_int_equal(pg_fixture_exec(c->db.admin, sql, NULL, 0), 0);
	snprintf(conninfo, sizeof conninfo, "%s user='%s'", c->db.conninfo, c->role);
	struct cn_store *viewer = cn_store_connect(conninfo, &err);
	assert_non_null(viewer);
	char *src = load_text(policy_v1, &p);
	assert_int_equal(cn_store_policy_apply(viewer, &p, src, &version, &created, &err), -CN_EPERM);
	assert_int_equal(err.code, CN_EPERM);
	char want[128];
	snprintf(want, sizeof want, "permission denied: role '%s' may not apply policies", c->role);
	assert_non_null(strstr(err.msg, want));
	/* a viewer may read */
	struct cn_policy_list *list = NULL;
	assert_int_equal(cn_store_policy_list(viewer, &list, &err), 0);
	cn_policy_list_free(list);
	free(src);
	cn_store_close(viewer);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM policies"), 0);
}

static void test_unmigrated_database(void **state)
{
	struct store_ctx *c = *state;
	struct pg_fixture empty;
	struct cn_err err = {0};
	char msg[256];
	(void)c;
	assert_int_equal(pg_fixture_create(&empty, msg, sizeof msg), 0);
	struct cn_store *s = cn_store_connect(empty.conninfo, &err);
	assert_non_null(s);
	struct cn_policy_list *list = NULL;
	int rc = cn_store_policy_list(s, &list, &err);
	/* a read inside a transaction (the history's snapshot) says the same, not "current transaction is aborted":
	 * the statement's PREPARE failed first and aborted the transaction, and that failure is what is told */
	struct cn_err herr = {0};
	struct cn_history *h = NULL;
	struct cn_history_filter f = {0};
	int hrc = cn_store_history(s, &f, &h, &herr);
	cn_store_close(s);
	pg_fixture_drop(&empty);
	assert_int_equal(rc, -CN_EUNAVAIL);
	assert_null(list);
	assert_int_equal(err.code, CN_EUNAVAIL);
	assert_non_null(strstr(err.msg, "run 'canaryctl migrate'"));
	print_message("history: %s\n", herr.msg);
	assert_int_equal(hrc, -CN_EUNAVAIL);
	assert_null(h);
	assert_non_null(strstr(herr.msg, "relation \"rollouts\" does not exist"));
	assert_non_null(strstr(herr.msg, "run 'canaryctl migrate'"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_apply_versions, store_ctx_setup, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_list_and_show, store_ctx_setup, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_failure_writes_nothing, store_ctx_setup, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_viewer_may_not_apply, store_ctx_setup, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_unmigrated_database, store_ctx_setup, store_ctx_teardown),
	};
	if (!getenv("DATABASE_URL") || !*getenv("DATABASE_URL")) {
		fprintf(stderr, "DATABASE_URL is not set: these integration tests need a Postgres server; start one with "
				"'export DATABASE_URL=$(scripts/pgtmp start)' or run scripts/test\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
