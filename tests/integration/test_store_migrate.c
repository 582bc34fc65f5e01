/* Integration: migrations against a real Postgres (DATABASE_URL): fresh, twice, edited file, broken file,
 * two runs at once. Each test gets its own fresh database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "canary/policy.h"
#include "canary/store.h"
#include "pg_fixture.h"

struct ctx {
	struct pg_fixture db;
	char tmp[256]; /* a private copy of migrations/, when a test needs one */
};

static const char *source_migrations(void)
{
	static char buf[1024];
	const char *src = getenv("CANARY_SOURCE_DIR");
	snprintf(buf, sizeof buf, "%s/migrations", src ? src : ".");
	return buf;
}

static int setup(void **state)
{
	char msg[512];
	struct ctx *c = calloc(1, sizeof *c);
	if (!c)
		return -1;
	if (pg_fixture_create(&c->db, msg, sizeof msg) != 0) {
		fprintf(stderr, "integration test needs Postgres: %s\n", msg);
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	pg_fixture_drop(&c->db);
	if (c->tmp[0]) {
		char cmd[600];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", c->tmp);
	}
	free(c);
	return 0;
}

/* Copies migrations/ into a fresh temp dir (c->tmp). */
static void copy_migrations(struct ctx *c)
{
	char cmd[1400];
	snprintf(c->tmp, sizeof c->tmp, "/tmp/canary-mig.XXXXXX");
	assert_non_null(mkdtemp(c->tmp));
	snprintf(cmd, sizeof cmd, "cp '%s'/*.sql '%s'/", source_migrations(), c->tmp);
	assert_int_equal(system(cmd), 0);
}

static long long scalar(struct ctx *c, const char *sql)
{
	char msg[512] = "";
	long long v = pg_fixture_scalar(c->db.conninfo, sql, msg, sizeof msg);
	if (v < 0)
		fail_msg("%s", msg);
	return v;
}

static int count_sql_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (len > 4 && strcmp(de->d_name + len - 4, ".sql") == 0)
			n++;
	}
	closedir(d);
	return n;
}

static struct cn_store *connect_ok(struct ctx *c)
{
	struct cn_err err = {0};
	struct cn_store *s = cn_store_connect(c->db.conninfo, &err);
	if (!s)
		fail_msg("connect: %s", err.msg);
	return s;
}

/* Counts the schema_migrations rows whose sha256 equals the server's sha256() of the file's bytes. */
static int checksums_match_server(struct ctx *c, const char *dir)
{
	PGconn *conn = PQconnectdb(c->db.conninfo);
	PGresult *rows = NULL;
	int ok = 0;
	assert_int_equal(PQstatus(conn), CONNECTION_OK);
	rows = PQexec(conn, "SELECT name, sha256 FROM schema_migrations");
	assert_int_equal(PQresultStatus(rows), PGRES_TUPLES_OK);
	for (int i = 0; i < PQntuples(rows); i++) {
		char path[1024], buf[1 << 16];
		snprintf(path, sizeof path, "%s/%s", dir, PQgetvalue(rows, i, 0));
		FILE *f = fopen(path, "rb");
		assert_non_null(f);
		size_t n = fread(buf, 1, sizeof buf, f);
		fclose(f);
		assert_true(n < sizeof buf);
		const char *vals[1] = {buf};
		int lens[1] = {(int)n}, fmts[1] = {1};
		PGresult *r = PQexecParams(conn, "SELECT encode(sha256($1::bytea), 'hex')", 1, NULL, vals, lens, fmts, 0);
		assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
		if (strcmp(PQgetvalue(r, 0, 0), PQgetvalue(rows, i, 1)) == 0)
			ok++;
		PQclear(r);
	}
	PQclear(rows);
	PQfinish(conn);
	return ok;
}

static const char *user_tables =
	"SELECT count(*) FROM pg_tables WHERE schemaname = 'public'";

static void test_fresh_then_twice(void **state)
{
	struct ctx *c = *state;
	struct cn_err err = {0};
	struct cn_migrate_report rep;
	int files = count_sql_files(source_migrations());
	struct cn_store *s = connect_ok(c);

	assert_int_equal(cn_store_migrate(s, source_migrations(), &rep, &err), 0);
	assert_int_equal(rep.found, files);
	assert_int_equal(rep.applied, files);
	assert_string_equal(rep.names[0], "0001_roles.sql");
	assert_int_equal(scalar(c, "SELECT count(*) FROM schema_migrations"), files);
	/* the schema the later code needs is there, with its SLO table */
	assert_int_equal(scalar(c, "SELECT count(*) FROM pg_tables WHERE tablename IN ('policies', 'policy_slos',"
				   " 'services', 'service_versions', 'audit_events')"),
			 5);
	/* 0022: no function of schema canary compiles its statements with JIT (a claim on a table of 460,000
	 * rollouts took 700-940 ms with it, 7-10 ms without); a function added later must say SET jit = off too */
	assert_true(scalar(c, "SELECT count(*) FROM pg_proc WHERE pronamespace = 'canary'::regnamespace") > 20);
	assert_int_equal(scalar(c, "SELECT count(*) FROM pg_proc WHERE pronamespace = 'canary'::regnamespace"
				   " AND NOT coalesce('jit=off' = ANY (proconfig), false)"),
			 0);
	long long tables = scalar(c, user_tables);
	long long stamp = scalar(c, "SELECT (extract(epoch FROM max(applied_at)) * 1000000)::bigint FROM schema_migrations");
	/* each recorded checksum is the sha256 of the file, as the server's own sha256() computes it */
	assert_int_equal(checksums_match_server(c, source_migrations()), files);

	/* twice: nothing changes */
	memset(&rep, 0xff, sizeof rep);
	assert_int_equal(cn_store_migrate(s, source_migrations(), &rep, &err), 0);
	assert_int_equal(rep.applied, 0);
	assert_int_equal(rep.found, files);
	assert_int_equal(scalar(c, "SELECT count(*) FROM schema_migrations"), files);
	assert_int_equal(scalar(c, user_tables), tables);
	assert_int_equal(scalar(c, "SELECT (extract(epoch FROM max(applied_at)) * 1000000)::bigint FROM schema_migrations"),
			 stamp);
	cn_store_close(s);
}

static void test_edited_file_refused(void **state)
{
	struct ctx *c = *state;
	struct cn_err err = {0};
	struct cn_migrate_report rep;
	char path[512];
	copy_migrations(c);
	struct cn_store *s = connect_ok(c);
	assert_int_equal(cn_store_migrate(s, c->tmp, &rep, &err), 0);

	/* edit a landed migration, and add a new one that must not be applied either */
	snprintf(path, sizeof path, "%s/0002_policies_services.sql", c->tmp);
	FILE *f = fopen(path, "a");
	assert_non_null(f);
	fputs("\n-- an afterthought\n", f);
	fclose(f);
	snprintf(path, sizeof path, "%s/9999_new.sql", c->tmp);
	assert_int_equal(pg_fixture_write_file(path, "CREATE TABLE should_not_exist (x int);\n"), 0);

	assert_int_equal(cn_store_migrate(s, c->tmp, &rep, &err), -CN_EINPUT);
	assert_int_equal(err.code, CN_EINPUT);
	assert_non_null(strstr(err.msg, "migration '0002_policies_services.sql' was edited after it was applied"));
	assert_non_null(strstr(err.msg, "add a new migration instead"));
	assert_null(strchr(err.msg, '\n'));
	assert_int_equal(scalar(c, "SELECT count(*) FROM pg_tables WHERE tablename = 'should_not_exist'"), 0);
	cn_store_close(s);
}

static void test_broken_migration_rolled_back(void **state)
{
	struct ctx *c = *state;
	struct cn_err err = {0};
	struct cn_migrate_report rep;
	char path[512];
	copy_migrations(c);
	snprintf(path, sizeof path, "%s/9998_broken.sql", c->tmp);
	assert_int_equal(pg_fixture_write_file(path, "CREATE TABLE half_done (x int);\n"
						     "INSERT INTO half_done VALUES (1);\n"
						     "SELEC oops;\n"),
			 0);
	struct cn_store *s = connect_ok(c);
	assert_int_equal(cn_store_migrate(s, c->tmp, &rep, &err), -CN_EINTERNAL);
	/* names the file and the line of the error */
	assert_non_null(strstr(err.msg, "9998_broken.sql:3"));
	assert_non_null(strstr(err.msg, "syntax error"));
	/* the earlier migrations stay applied; the broken one left nothing behind */
	assert_int_equal(scalar(c, "SELECT count(*) FROM schema_migrations WHERE name = '9998_broken.sql'"), 0);
	assert_int_equal(scalar(c, "SELECT count(*) FROM pg_tables WHERE tablename = 'half_done'"), 0);
	assert_int_equal(scalar(c, "SELECT count(*) FROM schema_migrations"), count_sql_files(c->tmp) - 1);
	/* fixed, it applies */
	assert_int_equal(pg_fixture_write_file(path, "CREATE TABLE half_done (x int);\n"), 0);
	assert_int_equal(cn_store_migrate(s, c->tmp, &rep, &err), 0);
	assert_int_equal(rep.applied, 1);
	assert_string_equal(rep.names[0], "9998_broken.sql");
	cn_store_close(s);
}

static void test_bad_directories(void **state)
{
	struct ctx *c = *state;
	struct cn_err err = {0};
	char path[512];
	struct cn_store *s = connect_ok(c);
	assert_int_equal(cn_store_migrate(s, "/nonexistent/migrations", NULL, &err), -CN_EINPUT);
	assert_non_null(strstr(err.msg, "cannot open migrations directory '/nonexistent/migrations'"));

	copy_migrations(c);
	snprintf(path, sizeof path, "%s/0004-bad name.sql", c->tmp);
	assert_int_equal(pg_fixture_write_file(path, "SELECT 1;\n"), 0);
	assert_int_equal(cn_store_migrate(s, c->tmp, NULL, &err), -CN_EINPUT);
	assert_non_null(strstr(err.msg, "NNNN_name.sql"));
	unlink(path);
	snprintf(path, sizeof path, "%s/0001_again.sql", c->tmp);
	assert_int_equal(pg_fixture_write_file(path, "SELECT 1;\n"), 0);
	assert_int_equal(cn_store_migrate(s, c->tmp, NULL, &err), -CN_EINPUT);
	assert_non_null(strstr(err.msg, "share the number 0001"));
	/* nothing was applied by the refused runs */
	assert_int_equal(scalar(c, "SELECT count(*) FROM pg_tables WHERE tablename = 'policies'"), 0);
	cn_store_close(s);
}

struct runner {
	const char *conninfo;
	int rc;
	int applied;
	char msg[CN_ERR_MSG_MAX];
};

static void *run_migrate(void *arg)
{
	struct runner *r = arg;
	struct cn_err err = {0};
	struct cn_migrate_report *rep = calloc(1, sizeof *rep);
	struct cn_store *s = cn_store_connect(r->conninfo, &err);
	r->rc = -1;
	if (s && rep) {
		r->rc = cn_store_migrate(s, source_migrations(), rep, &err);
		r->applied = rep->applied;
	}
	snprintf(r->msg, sizeof r->msg, "%s", err.msg);
	cn_store_close(s);
	free(rep);
	return NULL;
}

static void test_two_at_once(void **state)
{
	struct ctx *c = *state;
	struct runner r[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		memset(&r[i], 0, sizeof r[i]);
		r[i].conninfo = c->db.conninfo;
		assert_int_equal(pthread_create(&t[i], NULL, run_migrate, &r[i]), 0);
	}
	int total = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		if (r[i].rc != 0)
			fail_msg("concurrent migrate %d failed: %s", i, r[i].msg);
		total += r[i].applied;
	}
	/* every migration applied exactly once across the runs */
	int files = count_sql_files(source_migrations());
	assert_int_equal(total, files);
	assert_int_equal(scalar(c, "SELECT count(*) FROM schema_migrations"), files);
}

/* An existing database (0001..0004, with rows written the old way by an operator) upgrades in place: its rows stay,
 * its audit chain still verifies, and from then on the operator writes only through the functions. */
static void test_upgrade_revokes_table_writes(void **state)
{
	struct ctx *c = *state;
	struct cn_err err = {0};
	char cmd[1400], msg[512], sql[1024], role[64], as_role[2300];
	copy_migrations(c);
	/* every migration after 0004 (0005 onwards, whatever later issues add) */
	snprintf(cmd, sizeof cmd, "rm -f '%s'/000[5-9]_*.sql '%s'/00[1-9][0-9]_*.sql '%s'/0[1-9][0-9][0-9]_*.sql", c->tmp,
		 c->tmp, c->tmp);
	assert_int_equal(system(cmd), 0);
	struct cn_store *s = connect_ok(c);
	if (cn_store_migrate(s, c->tmp, NULL, &err) < 0)
		fail_msg("migrate to 0004: %s", err.msg);
	snprintf(role, sizeof role, "t_upgr_%ld", (long)getpid());
	snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN IN ROLE canary_operator", role, role);
	if (pg_fixture_exec(c->db.admin, sql, msg, sizeof msg) != 0)
		fail_msg("%s", msg);
	snprintf(as_role, sizeof as_role, "%s user='%s'", c->db.conninfo, role);
	/* before: the operator could write the tables (the hole 0005 closes) */
	if (pg_fixture_exec(as_role, "INSERT INTO services (name, live_slot) VALUES ('old', 0);"
				     "INSERT INTO audit_events (service, kind) VALUES ('old', 'legacy.event')",
			    msg, sizeof msg) != 0)
		fail_msg("an operator of 0004 could write: %s", msg);
	if (cn_store_migrate(s, source_migrations(), NULL, &err) < 0)
		fail_msg("upgrade: %s", err.msg);
	assert_int_equal(scalar(c, "SELECT count(*) FROM services WHERE name = 'old'"), 1);
	assert_int_equal(scalar(c, "SELECT count(*) FROM audit_events WHERE kind = 'legacy.event'"), 1);
	assert_int_equal(pg_fixture_exec(as_role, "INSERT INTO services (name, live_slot) VALUES ('new', 0)", msg,
					 sizeof msg), -1);
	assert_non_null(strstr(msg, "permission denied"));
	assert_int_equal(pg_fixture_exec(as_role, "INSERT INTO audit_events (kind) VALUES ('forged')", msg, sizeof msg),
			 -1);
	assert_int_equal(scalar(c, "SELECT count(*) FROM audit_events WHERE kind = 'forged'"), 0);
	/* the functions work for it */
	/* 0005..0007's 15, and whatever later migrations add (0008's SLA functions, 0010's drills ...) */
	assert_true(scalar(c, "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
			      "WHERE n.nspname = 'canary' AND p.prosecdef") >= 15);
	cn_store_close(s);
	snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", role);
	pg_fixture_exec(c->db.admin, sql, NULL, 0);
}

/* A database at 0005 with a rollout under way upgrades to the outbox (0006): what happened before is not
 * notified after the fact, and from then on the rollout's audited changes write their notifications. */
static void test_upgrade_adds_the_outbox(void **state)
{
	struct ctx *c = *state;
	struct cn_err err = {0};
	char cmd[1400], path[600], msg[512];
	copy_migrations(c);
	/* 0006 and every later migration (0016 replaces 0006's functions: a database at 0005 has never seen it) */
	snprintf(cmd, sizeof cmd, "for f in '%s'/*.sql; do case \"${f##*/}\" in 000[0-5]_*) ;; *) rm -f \"$f\" ;; esac; done",
		 c->tmp);
	assert_int_equal(system(cmd), 0);
	struct cn_store *s = connect_ok(c);
	if (cn_store_migrate(s, c->tmp, NULL, &err) < 0)
		fail_msg("migrate to 0005: %s", err.msg);
	/* a policy whose spec names a webhook, stored before the outbox existed, and a rollout started on it */
	snprintf(path, sizeof path, "%s/hooked.yaml", c->tmp);
	assert_int_equal(pg_fixture_write_file(path,
		"name: hooked\nsteps:\n  - weight: 100%\n    hold: 1m\nanalysis: { judge: threshold }\n"
		"slos:\n  - name: errors\n    metric: error_rate\n    max: 2%\n"
		"notify:\n  - url: http://127.0.0.1:9/hook\n"), 0);
	struct cn_policy *pol = calloc(1, sizeof *pol);
	char *src = NULL;
	int version;
	bool created;
	assert_non_null(pol);
	if (cn_policy_load_file(path, pol, &src, &err) < 0 || cn_store_policy_apply(s, pol, src, &version, &created, &err) < 0)
		fail_msg("apply: %s", err.msg);
	free(src);
	free(pol);
	if (pg_fixture_exec(c->db.conninfo,
			    "SELECT canary.apply_service('svc', 'x', '{\"name\": \"svc\"}', 0::smallint);"
			    "SELECT canary.start_rollout('svc', 'v2', 'hooked', 'before the upgrade')", msg, sizeof msg) != 0)
		fail_msg("%s", msg);
	assert_int_equal(scalar(c, "SELECT count(*) FROM pg_tables WHERE tablename = 'outbox'"), 0);
	if (cn_store_migrate(s, source_migrations(), NULL, &err) < 0)
		fail_msg("upgrade: %s", err.msg);
	assert_int_equal(scalar(c, "SELECT count(*) FROM outbox"), 0);
	/* the rollout is paused by the controller after the upgrade: one notification, in that transaction */
	if (pg_fixture_exec(c->db.conninfo,
			    "SELECT count(*) FROM canary.claim('d-upgrade', 60000, 10);"
			    "SELECT canary.record(1, 'd-upgrade', '{\"phase\": \"paused\", \"step\": -1, \"weight\": 0, "
			    "\"next_tick_ms\": 1000, \"decision\": \"pause\", \"reason\": \"metrics missing\"}')",
			    msg, sizeof msg) != 0)
		fail_msg("%s", msg);
	assert_int_equal(scalar(c, "SELECT count(*) FROM outbox WHERE event = 'paused' AND rollout_id = 1 AND "
				   "url = 'http://127.0.0.1:9/hook' AND payload->>'reason' = 'metrics missing'"), 1);
	assert_int_equal(scalar(c, "SELECT count(*) FROM outbox"), 1);
	cn_store_close(s);
}

/* A read-only server (a standby, or a primary being demoted) is a dependency that is away (69), not a bug (70). */
static void test_read_only_is_unavailable(void **state)
{
	struct ctx *c = *state;
	struct cn_err err = {0};
	struct cn_store *s = connect_ok(c);
	assert_int_equal(cn_store_run(s, "go read-only", "SET default_transaction_read_only = on", 0, NULL, &err), 0);
	assert_int_equal(cn_store_run(s, "write", "CREATE TABLE t (x int)", 0, NULL, &err), -CN_EUNAVAIL);
	assert_non_null(strstr(err.msg, "the database is read-only"));
	assert_non_null(strstr(err.msg, "target_session_attrs=read-write"));
	cn_store_close(s);
}

static void test_unreachable(void **state)
{
	(void)state;
	struct cn_err err = {0};
	struct cn_store *s = cn_store_connect("postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=3", &err);
	assert_null(s);
	assert_int_equal(err.code, CN_EUNAVAIL);
	assert_non_null(strstr(err.msg, "cannot connect to the database: "));
	assert_non_null(strstr(err.msg, "check --db or DATABASE_URL"));
	assert_null(strchr(err.msg, '\n'));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fresh_then_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edited_file_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_migration_rolled_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_directories, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_revokes_table_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_adds_the_outbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only_is_unavailable, setup, teardown),
		cmocka_unit_test(test_unreachable),
	};
	if (!getenv("DATABASE_URL") || !*getenv("DATABASE_URL")) {
		fprintf(stderr, "DATABASE_URL is not set: these integration tests need a Postgres server; start one with "
				"'export DATABASE_URL=$(scripts/pgtmp start)' or run scripts/test\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
