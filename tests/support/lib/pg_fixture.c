/* A fresh database per test: create it on the DATABASE_URL server, hand out its conninfo, drop it afterwards. */
#include "pg_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

static int counter;

static void set_msg(char *msg, size_t len, const char *what, const char *detail)
{
	if (!msg || !len)
		return;
	snprintf(msg, len, "%s: %s", what, detail ? detail : "");
	msg[strcspn(msg, "\n")] = '\0';
}

/* Builds a key='value' conninfo from url with dbname replaced (when dbname is not NULL). */
static int build_conninfo(const char *url, const char *dbname, char *out, size_t len, char *msg, size_t mlen)
{
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &perr);
	size_t used = 0;
	if (!opts) {
		set_msg(msg, mlen, "DATABASE_URL does not parse", perr);
		PQfreemem(perr);
		return -1;
	}
	out[0] = '\0';
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		const char *v = o->val;
		if (strcmp(o->keyword, "dbname") == 0 && dbname)
			v = dbname;
		if (!v)
			continue;
		int w = snprintf(out + used, len - used, "%s%s='", used ? " " : "", o->keyword);
		if (w < 0 || (size_t)w >= len - used)
			goto toolong;
		used += (size_t)w;
		for (const char *p = v; *p; p++) {
			if (used + 3 >= len)
				goto toolong;
			if (*p == '\'' || *p == '\\')
				out[used++] = '\\';
			out[used++] = *p;
		}
		if (used + 2 >= len)
			goto toolong;
		out[used++] = '\'';
		out[used] = '\0';
	}
	PQconninfoFree(opts);
	return 0;
toolong:
	PQconninfoFree(opts);
	set_msg(msg, mlen, "DATABASE_URL is too long", url);
	return -1;
}

static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

int pg_fixture_exec(const char *conninfo, const char *sql, char *msg, size_t len)
{
	PGconn *c = PQconnectdb(conninfo);
	int rc = -1;
	if (PQstatus(c) != CONNECTION_OK) {
		set_msg(msg, len, "cannot connect", PQerrorMessage(c));
		goto out;
	}
	PQsetNoticeProcessor(c, quiet, NULL);
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)
		rc = 0;
	else
		set_msg(msg, len, sql, PQerrorMessage(c));
	PQclear(r);
out:
	PQfinish(c);
	return rc;
}

long long pg_fixture_scalar(const char *conninfo, const char *sql, char *msg, size_t len)
{
	PGconn *c = PQconnectdb(conninfo);
	long long v = -1;
	if (PQstatus(c) != CONNECTION_OK) {
		set_msg(msg, len, "cannot connect", PQerrorMessage(c));
		goto out;
	}
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) >= 1 && !PQgetisnull(r, 0, 0)) {
		char *end;
		v = strtoll(PQgetvalue(r, 0, 0), &end, 10);
		if (*end != '\0')
			v = -1;
	} else {
		set_msg(msg, len, sql, PQerrorMessage(c));
	}
	PQclear(r);
out:
	PQfinish(c);
	return v;
}

int pg_fixture_create(struct pg_fixture *f, char *msg, size_t len)
{
	const char *url = getenv("DATABASE_URL");
	char sql[256];
	memset(f, 0, sizeof *f);
	if (!url || !*url) {
		set_msg(msg, len, "DATABASE_URL is not set",
			"start a throwaway server with 'export DATABASE_URL=$(scripts/pgtmp start)' (scripts/test does this)");
		return -1;
	}
	snprintf(f->dbname, sizeof f->dbname, "canary_test_%ld_%d", (long)getpid(), ++counter);
	if (build_conninfo(url, NULL, f->admin, sizeof f->admin, msg, len) ||
	    build_conninfo(url, f->dbname, f->conninfo, sizeof f->conninfo, msg, len))
		return -1;
	/* The name is ours (letters, digits, '_'), so it needs no quoting. */
	snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->dbname);
	if (pg_fixture_exec(f->admin, sql, msg, len))
		return -1;
	snprintf(sql, sizeof sql, "CREATE DATABASE %s TEMPLATE template0", f->dbname);
	if (pg_fixture_exec(f->admin, sql, msg, len)) {
		f->dbname[0] = '\0';
		return -1;
	}
	return 0;
}

void pg_fixture_drop(struct pg_fixture *f)
{
	char sql[256];
	if (!f->dbname[0])
		return;
	snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->dbname);
	pg_fixture_exec(f->admin, sql, NULL, 0);
	f->dbname[0] = '\0';
}

int pg_fixture_write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	if (!fp)
		return -1;
	size_t n = strlen(text);
	int rc = fwrite(text, 1, n, fp) == n ? 0 : -1;
	if (fclose(fp) != 0)
		rc = -1;
	return rc;
}
