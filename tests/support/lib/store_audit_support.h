/* Shared by the audit, forgery and roles integration tests and the history CLI test (header only, static
 * functions): run the canaryctl binary and capture its exit code and output, create a migrated database with a
 * policy and a service, create login roles that are members of canary's roles. Include after <cmocka.h>. */
#ifndef CANARY_TEST_STORE_AUDIT_SUPPORT_H
#define CANARY_TEST_STORE_AUDIT_SUPPORT_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "canary/policy.h"
#include "canary/service.h"
#include "canary/store.h"
#include "ctl_run.h"
#include "pg_fixture.h"


static const char *src_path(const char *rel)
{
	static char buf[4][1024];
	static int k;
	const char *base = getenv("CANARY_SOURCE_DIR");
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/%s", base ? base : ".", rel);
	return buf[k];
}

/* Runs canaryctl against the database conninfo with args (NULL-terminated); waits at most 60 s. */
__attribute__((unused)) static void ctl(struct run *r, const char *conninfo, const char *const *args)
{
	ctl_run(r, conninfo, args);
}

/* The exit code is want; else the failure shows what canaryctl said. */
__attribute__((unused)) static void expect_exit(const struct run *r, int want, const char *what)
{
	if (r->status != want)
		fail_msg("%s: canaryctl exited %d, not %d; stdout: %.300s stderr: %s", what, r->status, want, r->out,
			 r->err);
}

/* stderr is one line "canaryctl: ...want...". */
__attribute__((unused)) static void expect_one_line_error(const struct run *r, const char *want)
{
	const char *nl = strchr(r->err, '\n');
	if (strncmp(r->err, "canaryctl: ", 11) != 0 || !strstr(r->err, want) || !nl || nl[1] != '\0')
		fail_msg("stderr is not one line saying '%s': %s", want, r->err);
}

static long long count(const struct pg_fixture *db, const char *sql)
{
	char msg[512];
	long long n = pg_fixture_scalar(db->conninfo, sql, msg, sizeof msg);
	if (n < 0)
		fail_msg("%s", msg);
	return n;
}

static void sql_ok(const char *conninfo, const char *sql)
{
	char msg[1024];
	if (pg_fixture_exec(conninfo, sql, msg, sizeof msg) != 0)
		fail_msg("%s", msg);
}

/* A fresh database, migrated, with policies/default.yaml and policies/demo-service.yaml applied (service "demo"). */
static void setup_db(struct pg_fixture *db)
{
	char msg[512];
	struct cn_err err = {0};
	struct cn_policy *pol = calloc(1, sizeof *pol);
	struct cn_service *svc = calloc(1, sizeof *svc);
	char *psrc = NULL, *ssrc = NULL;
	int version;
	bool created;
	assert_non_null(pol);
	assert_non_null(svc);
	if (pg_fixture_create(db, msg, sizeof msg) != 0)
		fail_msg("%s", msg);
	struct cn_store *st = cn_store_connect(db->conninfo, &err);
	if (!st)
		fail_msg("%s", err.msg);
	if (cn_store_migrate(st, src_path("migrations"), NULL, &err) < 0 ||
	    cn_policy_load_file(src_path("policies/default.yaml"), pol, &psrc, &err) < 0 ||
	    cn_store_policy_apply(st, pol, psrc, &version, &created, &err) < 0 ||
	    cn_service_load_file(src_path("policies/demo-service.yaml"), svc, &ssrc, &err) < 0 ||
	    cn_store_service_apply(st, svc, ssrc, &version, &created, &err) < 0)
		fail_msg("setting up the database: %s", err.msg);
	cn_store_close(st);
	free(psrc);
	free(ssrc);
	free(pol);
	free(svc);
}

/* A login role NAME_<pid> that is a member of `member_of`; writes its conninfo for db into out. */
__attribute__((unused)) static void make_login(const struct pg_fixture *db, const char *name, const char *member_of, char *role,
		       size_t rlen, char *out, size_t olen)
{
	char sql[512];
	snprintf(role, rlen, "%s_%ld", name, (long)getpid());
	snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN IN ROLE %s", role, role, member_of);
	sql_ok(db->admin, sql);
	snprintf(out, olen, "%s user='%s'", db->conninfo, role);
}

__attribute__((unused)) static void drop_login(const struct pg_fixture *db, const char *role)
{
	char sql[256];
	snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", role);
	pg_fixture_exec(db->admin, sql, NULL, 0);
}

static void check_env(void)
{
	if (!getenv("CANARY_BINARY_DIR") || !getenv("DATABASE_URL") || !*getenv("DATABASE_URL")) {
		fprintf(stderr, "these integration tests need CANARY_BINARY_DIR (run them through ctest) and "
				"DATABASE_URL (export DATABASE_URL=$(scripts/pgtmp start))\n");
		exit(1);
	}
}

#endif
