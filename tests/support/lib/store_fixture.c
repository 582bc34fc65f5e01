/* A migrated throwaway database and a connected store, for the store integration tests. */
#include "store_fixture.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

const char *store_ctx_src_path(const char *rel)
{
	static char buf[1024];
	const char *src = getenv("CANARY_SOURCE_DIR");
	snprintf(buf, sizeof buf, "%s/%s", src ? src : ".", rel);
	return buf;
}

int store_ctx_setup(void **state)
{
	char msg[512];
	struct cn_err err = {0};
	struct cn_migrate_report rep;
	struct store_ctx *c = calloc(1, sizeof *c);
	if (!c)
		return -1;
	if (pg_fixture_create(&c->db, msg, sizeof msg) != 0) {
		fprintf(stderr, "integration test needs Postgres: %s\n", msg);
		free(c);
		return -1;
	}
	c->s = cn_store_connect(c->db.conninfo, &err);
	if (!c->s || cn_store_migrate(c->s, store_ctx_src_path("migrations"), &rep, &err) != 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		cn_store_close(c->s);
		pg_fixture_drop(&c->db);
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

int store_ctx_teardown(void **state)
{
	struct store_ctx *c = *state;
	cn_store_close(c->s);
	pg_fixture_drop(&c->db);
	if (c->role[0]) {
		char sql[128];
		snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", c->role);
		pg_fixture_exec(c->db.admin, sql, NULL, 0);
	}
	free(c);
	return 0;
}

long long store_ctx_scalar(struct store_ctx *c, const char *sql)
{
	char msg[512] = "";
	long long v = pg_fixture_scalar(c->db.conninfo, sql, msg, sizeof msg);
	if (v < 0)
		fail_msg("%s", msg);
	return v;
}

const char *store_ctx_temp_file(const char *prefix, const char *text)
{
	static char path[128];
	snprintf(path, sizeof path, "/tmp/%s.XXXXXX", prefix);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(pg_fixture_write_file(path, text), 0);
	return path;
}
