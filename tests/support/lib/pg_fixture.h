/* Test fixture: a fresh database per test on the server DATABASE_URL points at (scripts/pgtmp starts one). */
#ifndef CANARY_PG_FIXTURE_H
#define CANARY_PG_FIXTURE_H

#include <stddef.h>

struct pg_fixture {
	char dbname[64];     /* canary_test_<pid>_<n> */
	char admin[2048];    /* conninfo of DATABASE_URL itself (to create and drop) */
	char conninfo[2048]; /* conninfo of the fresh database: pass it to cn_store_connect */
};

/* Creates a fresh, empty database. Returns 0, or -1 with a one-line reason in msg (e.g. DATABASE_URL unset). */
int pg_fixture_create(struct pg_fixture *f, char *msg, size_t len);

/* Drops the database (forcibly closing leftover connections). Safe to call after a failed create. */
void pg_fixture_drop(struct pg_fixture *f);

/* Runs one SQL statement with no parameters on conninfo and returns the first column of the first row as a
 * number, or -1 on error (reason in msg when msg is not NULL). For counting rows in tests. */
long long pg_fixture_scalar(const char *conninfo, const char *sql, char *msg, size_t len);

/* Runs SQL (one or more statements, no parameters) on conninfo; returns 0 or -1 with the reason in msg. */
int pg_fixture_exec(const char *conninfo, const char *sql, char *msg, size_t len);

/* Writes text to path (created or truncated); returns 0 or -1. */
int pg_fixture_write_file(const char *path, const char *text);

#endif
