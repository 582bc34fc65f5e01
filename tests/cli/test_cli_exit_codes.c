/* CLI: the canaryctl binary's exit codes and output (64 usage, 65 bad input, 69 no database, 77 denied,
 * one-line errors, --output json) against a real Postgres (DATABASE_URL). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl_run.h"
#include "pg_fixture.h"

#define NO_DB "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=3"


static const char *path_in(const char *env, const char *rel)
{
	static char buf[4][1024];
	static int k;
	const char *base = getenv(env);
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/%s", base ? base : ".", rel);
	return buf[k];
}

/* Runs canaryctl with args (NULL-terminated) and DATABASE_URL set to db (NULL: unset); waits at most 60 s. */
static void run(struct run *r, const char *db, const char *const *args)
{
	ctl_run(r, db, args);
}

/* The exit code is want; else the failure shows stderr. */
static void expect_status(const struct run *r, int want)
{
	if (r->status != want)
		fail_msg("canaryctl exited %d, not %d; stderr: %s", r->status, want, r->err);
}

/* stderr is exactly one line starting with "canaryctl: " and containing want. */
static void assert_one_line_error(const struct run *r, const char *want)
{
	if (strncmp(r->err, "canaryctl: ", 11) != 0 || !strstr(r->err, want))
		fail_msg("stderr does not say '%s': %s", want, r->err);
	const char *nl = strchr(r->err, '\n');
	assert_non_null(nl);
	assert_string_equal(nl + 1, "");
}

static const char bad_policy[] = "name: bad\n"
				 "steps:\n"
				 "  - weight: 1%\n"
				 "    hodl: 5m\n";

static void write_bad(char *path)
{
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(pg_fixture_write_file(path, bad_policy), 0);
}

static void test_usage_errors(void **state)
{
	(void)state;
	static struct run r;
	static const struct {
		const char *args[6];
		const char *msg, *usage;
	} cases[] = {
		{{NULL}, "no command given", "usage: canaryctl [--db CONNINFO]"},
		{{"frobnicate", NULL}, "unknown command 'frobnicate'", "usage: canaryctl"},
		{{"--bogus", "policy", "list", NULL}, "unknown option '--bogus'", "usage: canaryctl"},
		{{"--output", "xml", "policy", "list", NULL}, "not 'xml'", "usage: canaryctl"},
		{{"--db", NULL}, "option '--db' needs a value", "usage: canaryctl"},
		{{"policy", NULL}, "policy needs a subcommand", "usage: canaryctl policy"},
		{{"policy", "apply", NULL}, "policy apply needs one FILE", "usage: canaryctl policy"},
		{{"policy", "show", "x", "--version", "zero", NULL}, "needs a whole number", "usage: canaryctl policy"},
		{{"policy", "list", "--frob", NULL}, "unknown option '--frob'", "usage: canaryctl policy"},
		{{"service", "show", NULL}, "service show needs one NAME", "usage: canaryctl service"},
		{{"service", "lint", NULL}, "at least one FILE", "usage: canaryctl service"},
		{{"migrate", "extra", NULL}, "unexpected argument 'extra'", "usage: canaryctl migrate"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		run(&r, NO_DB, cases[i].args);
		if (r.status != 64 || strncmp(r.err, "canaryctl: ", 11) != 0 || !strstr(r.err, cases[i].msg) ||
		    !strstr(r.err, cases[i].usage))
			fail_msg("case %zu: exit %d, stderr: %s", i, r.status, r.err);
		assert_string_equal(r.out, "");
	}
	/* --help and --version succeed on stdout */
	run(&r, NO_DB, (const char *[]){"--help", NULL});
	expect_status(&r, 0);
	assert_non_null(strstr(r.out, "policy"));
	run(&r, NO_DB, (const char *[]){"--version", NULL});
	expect_status(&r, 0);
	assert_non_null(strstr(r.out, "canaryctl "));
}

static void test_bad_input_and_no_database(void **state)
{
	(void)state;
	static struct run r;
	char bad[] = "/tmp/canary-bad.XXXXXX";
	char want[128];
	write_bad(bad);
	snprintf(want, sizeof want, "canaryctl: %s:4:5: ", bad);

	/* the file is checked before the database is needed: 65, not 69 */
	run(&r, NO_DB, (const char *[]){"policy", "apply", bad, NULL});
	expect_status(&r, 65);
	assert_one_line_error(&r, want);
	assert_non_null(strstr(r.err, "hodl"));
	run(&r, NULL, (const char *[]){"policy", "lint", path_in("CANARY_SOURCE_DIR", "policies/default.yaml"), bad,
				       NULL});
	expect_status(&r, 65);
	assert_one_line_error(&r, want);
	assert_non_null(strstr(r.out, "default.yaml: ok"));
	run(&r, NULL, (const char *[]){"policy", "lint", path_in("CANARY_SOURCE_DIR", "policies/default.yaml"), NULL});
	expect_status(&r, 0);
	run(&r, NULL, (const char *[]){"service", "lint", bad, NULL});
	expect_status(&r, 65);
	run(&r, NULL, (const char *[]){"policy", "apply", "/nonexistent/policy.yaml", NULL});
	expect_status(&r, 65);
	assert_one_line_error(&r, "/nonexistent/policy.yaml");

	/* no database: 69 with one line, from --db and from DATABASE_URL */
	run(&r, NULL, (const char *[]){"--db", NO_DB, "policy", "list", NULL});
	expect_status(&r, 69);
	assert_one_line_error(&r, "cannot connect to the database: ");
	run(&r, NO_DB, (const char *[]){"migrate", NULL});
	expect_status(&r, 69);
	assert_one_line_error(&r, "check --db or DATABASE_URL");
	run(&r, NO_DB, (const char *[]){"service", "apply", path_in("CANARY_SOURCE_DIR", "policies/demo-service.yaml"),
					NULL});
	expect_status(&r, 69);
	unlink(bad);
}

static void test_against_database(void **state)
{
	(void)state;
	static struct run r;
	struct pg_fixture db;
	char msg[512], bad[] = "/tmp/canary-bad.XXXXXX";
	if (pg_fixture_create(&db, msg, sizeof msg) != 0)
		fail_msg("%s", msg);
	char def[1024], svc[1024];
	snprintf(def, sizeof def, "%s", path_in("CANARY_SOURCE_DIR", "policies/default.yaml"));
	/* the demo's service, with a gateway socket that cannot exist (the demo's may be running on this host) */
	char text[16384], *sock, away[] = "/tmp/canary-svc.XXXXXX";
	ctl_slurp(path_in("CANARY_SOURCE_DIR", "policies/demo-service.yaml"), text, sizeof text);
	assert_non_null(sock = strstr(text, "unix:/tmp/canary-demo/haproxy.sock"));
	memcpy(sock, "unix:/nonexistent/canary/gw.sock  ", 34); /* same length, trailing blanks */
	int fd = mkstemp(away);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(pg_fixture_write_file(away, text), 0);
	snprintf(svc, sizeof svc, "%s", away);
	write_bad(bad);

	run(&r, NULL, (const char *[]){"--db", db.conninfo, "migrate", "--migrations",
				       path_in("CANARY_SOURCE_DIR", "migrations"), NULL});
	expect_status(&r, 0);
	assert_non_null(strstr(r.out, "applied 0001_roles.sql"));
	/* the default directory (the source tree's) is found without --migrations; nothing left to do */
	run(&r, db.conninfo, (const char *[]){"--output", "json", "migrate", NULL});
	expect_status(&r, 0);
	json_t *j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "applied")), 0);
	assert_true(json_integer_value(json_object_get(j, "found")) >= 3);
	json_decref(j);

	/* bad file: 65 and nothing written */
	run(&r, db.conninfo, (const char *[]){"policy", "apply", bad, NULL});
	expect_status(&r, 65);
	assert_int_equal(pg_fixture_scalar(db.conninfo, "SELECT count(*) FROM policies", NULL, 0), 0);
	assert_int_equal(pg_fixture_scalar(db.conninfo, "SELECT count(*) FROM audit_events", NULL, 0), 0);

	run(&r, db.conninfo, (const char *[]){"policy", "apply", def, NULL});
	expect_status(&r, 0);
	assert_non_null(strstr(r.out, "policy 'default' version 1 stored"));
	run(&r, db.conninfo, (const char *[]){"--output", "json", "policy", "apply", def, NULL});
	expect_status(&r, 0);
	j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
	assert_true(json_is_false(json_object_get(j, "created")));
	json_decref(j);
	run(&r, db.conninfo, (const char *[]){"policy", "show", "default", "--version", "2", NULL});
	expect_status(&r, 65);
	assert_one_line_error(&r, "policy 'default' has no version 2");
	run(&r, db.conninfo, (const char *[]){"policy", "show", "default", NULL});
	expect_status(&r, 0);
	assert_non_null(strstr(r.out, "policy default version 1"));

	/* the demo's HAProxy is not running: the service is stored with a warning that says so */
	run(&r, db.conninfo, (const char *[]){"service", "apply", svc, NULL});
	expect_status(&r, 0);
	assert_one_line_error(&r, "warning: service 'demo' is stored, but its gateway does not answer from this host");
	assert_non_null(strstr(r.err, "/nonexistent/canary/gw.sock"));
	/* and a rollout is not started on it (69, nothing written) unless the check is waived */
	long long events = pg_fixture_scalar(db.conninfo, "SELECT count(*) FROM audit_events", NULL, 0);
	run(&r, db.conninfo, (const char *[]){"rollout", "start", "--service", "demo", "--candidate", "v2", NULL});
	expect_status(&r, 69);
	assert_one_line_error(&r, "cannot start a rollout of 'demo': its gateway does not answer from this host");
	assert_non_null(strstr(r.err, "nothing was started"));
	assert_int_equal(pg_fixture_scalar(db.conninfo, "SELECT count(*) FROM rollouts", NULL, 0), 0);
	assert_int_equal(pg_fixture_scalar(db.conninfo, "SELECT count(*) FROM audit_events", NULL, 0), events);
	run(&r, db.conninfo, (const char *[]){"rollout", "start", "--no-gateway-check", "--service", "demo", "--candidate",
					      "v2", "--reason", "release 1.2 per CAB-17", NULL});
	expect_status(&r, 0);
	assert_int_equal(pg_fixture_scalar(db.conninfo, "SELECT count(*) FROM rollouts", NULL, 0), 1);
	/* no canaryd runs here: a wait that times out on a rollout nobody picked up says so, and exits 69, not 3 */
	run(&r, db.conninfo, (const char *[]){"rollout", "wait", "1", "--timeout", "1s", NULL});
	expect_status(&r, 69);
	assert_non_null(strstr(r.err, "no canaryd has picked it up"));
	/* status, rendered from the store's typed row: keys, types and formats as the SQL-built document had them */
	run(&r, db.conninfo, (const char *[]){"--output", "json", "rollout", "status", "1", NULL});
	expect_status(&r, 0);
	j = json_loads(r.out, JSON_PRESERVE_ORDER, NULL);
	assert_non_null(j);
	{
		static const char *const keys[] = {"id", "service", "candidate", "baseline", "candidate_slot", "phase",
						   "step", "steps", "weight", "applied_weight", "policy",
						   "policy_version", "reason", "start_reason", "status", "created_at",
						   "created_by",
						   "updated_at", "finished_at", "lease_owner"};
		size_t k = 0;
		const char *key;
		json_t *v;
		json_object_foreach(j, key, v) {
			assert_true(k < sizeof keys / sizeof keys[0]);
			assert_string_equal(key, keys[k++]);
		}
		assert_int_equal(k, sizeof keys / sizeof keys[0]);
	}
	assert_string_equal(json_string_value(json_object_get(j, "phase")), "pending");
	assert_int_equal(json_integer_value(json_object_get(j, "step")), -1);
	assert_true(json_is_integer(json_object_get(j, "weight"))); /* 0, as json_build_object printed it */
	assert_true(json_is_null(json_object_get(j, "applied_weight")));
	assert_true(json_is_null(json_object_get(j, "status")));
	assert_true(json_is_null(json_object_get(j, "finished_at")));
	/* the operator's words apart from the controller's, which there are none of yet */
	assert_string_equal(json_string_value(json_object_get(j, "start_reason")), "release 1.2 per CAB-17");
	assert_true(json_is_null(json_object_get(j, "reason")));
	const char *at = json_string_value(json_object_get(j, "created_at"));
	assert_non_null(at);
	assert_int_equal(at[10], 'T');
	assert_string_equal(at + strlen(at) - 6, "+00:00");
	json_decref(j);
	run(&r, db.conninfo, (const char *[]){"rollout", "status", "1", NULL});
	expect_status(&r, 0);
	assert_non_null(strstr(r.out, "rollout 1 demo: pending, not started, candidate v2 at 0% — not yet taken up by "
				      "canaryd (started by "));
	assert_non_null(strstr(r.out, ": \"release 1.2 per CAB-17\")\n"));
	run(&r, db.conninfo, (const char *[]){"--output", "json", "service", "show", "demo", NULL});
	expect_status(&r, 0);
	j = json_loads(r.out, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "live"), "name")), "blue");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "idle"), "name")), "green");
	json_decref(j);
	run(&r, db.conninfo, (const char *[]){"service", "show", "demo", NULL});
	expect_status(&r, 0);
	assert_non_null(strstr(r.out, "idle: green"));
	run(&r, db.conninfo, (const char *[]){"--output", "json", "service", "list", NULL});
	expect_status(&r, 0);
	j = json_loads(r.out, 0, NULL);
	assert_int_equal(json_array_size(j), 1);
	json_decref(j);

	/* a viewer may look but not apply: 77 */
	char sql[256], conninfo[2200], role[64];
	snprintf(role, sizeof role, "canary_test_cli_viewer_%ld", (long)getpid());
	snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN IN ROLE canary_viewer", role, role);
	assert_int_equal(pg_fixture_exec(db.admin, sql, NULL, 0), 0);
	snprintf(conninfo, sizeof conninfo, "%s user='%s'", db.conninfo, role);
	run(&r, conninfo, (const char *[]){"policy", "apply", path_in("CANARY_SOURCE_DIR", "policies/chat.yaml"), NULL});
	int denied = r.status;
	char denied_err[sizeof r.err];
	memcpy(denied_err, r.err, sizeof denied_err);
	run(&r, conninfo, (const char *[]){"policy", "list", NULL});
	int listed = r.status;

	pg_fixture_drop(&db);
	snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", role);
	pg_fixture_exec(db.admin, sql, NULL, 0);
	unlink(bad);
	unlink(away);
	if (denied != 77 || !strstr(denied_err, "permission denied: role"))
		fail_msg("viewer apply: exit %d, stderr: %s", denied, denied_err);
	assert_int_equal(listed, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_bad_input_and_no_database),
		cmocka_unit_test(test_against_database),
	};
	if (!getenv("CANARY_BINARY_DIR")) {
		fprintf(stderr, "CANARY_BINARY_DIR is not set: run this test through ctest\n");
		return 1;
	}
	if (!getenv("DATABASE_URL") || !*getenv("DATABASE_URL")) {
		fprintf(stderr, "DATABASE_URL is not set: these integration tests need a Postgres server; start one with "
				"'export DATABASE_URL=$(scripts/pgtmp start)' or run scripts/test\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
