/* Migrations: apply migrations/NNNN_name.sql in order, once each, recorded with a sha256 in schema_migrations.
 * The checksum is computed here (canary/sha256.h) from the exact bytes read, before anything is sent, so the check
 * does not depend on the server's encoding and works the same for the file and its recorded row. */
#include "canary/file.h"
#include "canary/sha256.h"
#include "canary/store.h"
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The largest migration file read. */
#define CN_MIGRATION_MAX_BYTES (4 * 1024 * 1024)
/* pg_advisory_lock key for migrate: "canarymi" as a bigint; any fixed value works. */
#define MIGRATE_LOCK_KEY "7161132949486954857"

struct migration {
	char name[CN_MIGRATION_NAME_MAX];
	char sha[CN_SHA256_HEX_LEN];
	char *text;
	int applied;
};

/* NNNN_name.sql with a name of [a-z0-9_-]. */
static int valid_name(const char *n)
{
	size_t len = strlen(n);
	if (len < 10 || len >= CN_MIGRATION_NAME_MAX || strcmp(n + len - 4, ".sql") != 0)
		return 0;
	for (int i = 0; i < 4; i++)
		if (n[i] < '0' || n[i] > '9')
			return 0;
	if (n[4] != '_')
		return 0;
	for (size_t i = 5; i < len - 4; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '_' || n[i] == '-'))
			return 0;
	return 1;
}

static int cmp_migration(const void *a, const void *b)
{
	return strcmp(((const struct migration *)a)->name, ((const struct migration *)b)->name);
}

/* Reads a migration file (at most CN_MIGRATION_MAX_BYTES) into a new NUL-terminated string; a NUL byte inside is
 * refused, since the text goes to the server as one C string. */
static int read_migration(const char *path, char **out, size_t *len_out, struct cn_err *err)
{
	char *text = NULL;
	size_t len = 0;
	if (cn_file_read(path, CN_MIGRATION_MAX_BYTES, 0, &text, &len, err) < 0)
		return cn_err_prefix(err, "migration");
	if (memchr(text, '\0', len)) {
		free(text);
		return cn_fail(err, CN_EINPUT, "migration '%s' contains a NUL byte; is it a text file?", path);
	}
	*out = text;
	*len_out = len;
	return 0;
}

/* Lists and reads the migration files of dir, sorted by name. */
static int scan_dir(const char *dir, struct migration **out, int *count, struct cn_err *err)
{
	DIR *d = opendir(dir);
	struct migration *m = NULL;
	int n = 0, rc = 0;
	char path[4096];
	struct dirent *de;

	if (!d)
		return cn_fail(err, CN_EINPUT, "cannot open migrations directory '%s': %s; give one with --migrations "
			       "or CANARY_MIGRATIONS", dir, strerror(errno));
	m = calloc(CN_MIGRATE_MAX, sizeof *m);
	if (!m) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory");
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len < 4 || strcmp(de->d_name + len - 4, ".sql") != 0)
			continue;
		if (!valid_name(de->d_name)) {
			rc = cn_fail(err, CN_EINPUT, "%s/%s: a migration is named NNNN_name.sql (four digits, then "
				     "lowercase letters, digits, '_' or '-'); rename it", dir, de->d_name);
			goto out;
		}
		if (n == CN_MIGRATE_MAX) {
			rc = cn_fail(err, CN_EINPUT, "'%s' holds more than %d migrations", dir, CN_MIGRATE_MAX);
			goto out;
		}
		snprintf(m[n].name, sizeof m[n].name, "%s", de->d_name);
		n++;
	}
	if (n == 0) {
		rc = cn_fail(err, CN_EINPUT, "no migrations (NNNN_name.sql) in '%s'; give the right directory with "
			     "--migrations or CANARY_MIGRATIONS", dir);
		goto out;
	}
	qsort(m, (size_t)n, sizeof *m, cmp_migration);
	for (int i = 0; i < n; i++) {
		size_t len = 0;
		if (i > 0 && strncmp(m[i].name, m[i - 1].name, 4) == 0) {
			rc = cn_fail(err, CN_EINPUT, "migrations '%s' and '%s' in '%s' share the number %.4s; renumber "
				     "the new one", m[i - 1].name, m[i].name, dir, m[i].name);
			goto out;
		}
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, m[i].name) >= sizeof path) {
			rc = cn_fail(err, CN_EINPUT, "migrations directory path '%s' is too long", dir);
			goto out;
		}
		rc = read_migration(path, &m[i].text, &len, err);
		if (rc)
			goto out;
		cn_sha256_hex(m[i].text, len, m[i].sha);
	}
	*out = m;
	*count = n;
	m = NULL;
out:
	if (m)
		for (int i = 0; i < n; i++)
			free(m[i].text);
	free(m);
	closedir(d);
	return rc;
}

/* 1-based line of a 1-based character position (what the server reports) in text. */
static int line_of(const char *text, long pos)
{
	int line = 1;
	long chars = 0;
	for (const unsigned char *p = (const unsigned char *)text; *p && chars < pos - 1; p++) {
		if ((*p & 0xC0) != 0x80)
			chars++;
		if (*p == '\n')
			line++;
	}
	return line;
}

/* Applies one migration in its own transaction. */
static int apply_one(struct cn_store *s, const char *dir, const struct migration *m, struct cn_err *err)
{
	PGconn *c = cn_store_conn(s);
	PGresult *res = NULL;
	int rc = cn_store_begin(s, err);
	if (rc)
		return rc;
	/* Our own file: the one statement sent unparameterised, since it holds many statements. */
	res = PQexec(c, m->text);
	if (!res || (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)) {
		const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
		char where[64] = "";
		if (pos) {
			char *end;
			long p = strtol(pos, &end, 10);
			if (*end == '\0' && p > 0)
				snprintf(where, sizeof where, ":%d", line_of(m->text, p));
		}
		rc = cn_store_fail_result(s, res, "apply a migration", err);
		cn_err_prefix(err, "migration %s/%s%s failed, nothing of it was applied", dir, m->name, where);
		goto out;
	}
	PQclear(res);
	res = NULL;
	const char *params[2] = {m->name, m->sha};
	/* through the migrator's own function (made with the table, below): the row names session_user, whatever
	 * the caller would say */
	rc = cn_store_run(s, "record a migration", "SELECT schema_migration_applied($1, $2)", 2, params, err);
	if (rc)
		goto out;
	rc = cn_store_commit(s, err);
out:
	PQclear(res);
	if (rc)
		cn_store_rollback(s);
	return rc;
}

int cn_store_migrate(struct cn_store *s, const char *dir, struct cn_migrate_report *rep, struct cn_err *err)
{
	struct migration *m = NULL;
	PGresult *res = NULL;
	int n = 0, rc, locked = 0, applied = 0;
	const char *lock[1] = {MIGRATE_LOCK_KEY};

	rc = scan_dir(dir, &m, &n, err);
	if (rc)
		goto out;
	/* Session lock: concurrent runs wait here, then find the work done. */
	rc = cn_store_run(s, "take the migration lock", "SELECT pg_advisory_lock($1::bigint)", 1, lock, err);
	if (rc)
		goto out;
	locked = 1;
	rc = cn_store_run(s, "create the schema_migrations table",
			  "CREATE TABLE IF NOT EXISTS schema_migrations ("
			  " name text PRIMARY KEY,"
			  " sha256 text NOT NULL,"
			  " applied_at timestamptz NOT NULL DEFAULT now(),"
			  " applied_by text NOT NULL DEFAULT session_user)",
			  0, NULL, err);
	/* Migrations run as the database owner, before the write functions of schema canary exist (the first one makes
	 * them): the migrator records each one through this function, which writes who applied it from session_user.
	 * No application role may call it. */
	if (rc == 0)
		rc = cn_store_run(s, "create the migrator's record function",
				  "CREATE OR REPLACE FUNCTION schema_migration_applied(p_name text, p_sha256 text) "
				  "RETURNS void LANGUAGE sql SET search_path = public, pg_temp AS $f$ "
				  "INSERT INTO schema_migrations (name, sha256, applied_by) "
				  "VALUES (p_name, p_sha256, session_user) $f$",
				  0, NULL, err);
	if (rc == 0)
		rc = cn_store_run(s, "create the migrator's record function",
				  "REVOKE ALL ON FUNCTION schema_migration_applied(text, text) FROM PUBLIC", 0, NULL, err);
	if (rc)
		goto out;
	res = cn_store_exec(s, "read schema_migrations", "SELECT name, sha256 FROM schema_migrations ORDER BY name",
			    0, NULL, err);
	if (!res) {
		rc = -err->code;
		goto out;
	}
	/* Check every recorded migration before applying anything. */
	for (int r = 0; r < PQntuples(res); r++) {
		const char *name = PQgetvalue(res, r, 0), *sha = PQgetvalue(res, r, 1);
		struct migration key, *hit;
		snprintf(key.name, sizeof key.name, "%s", name);
		hit = bsearch(&key, m, (size_t)n, sizeof *m, cmp_migration);
		if (!hit) {
			rc = cn_fail(err, CN_EINPUT, "migration '%s' is recorded as applied but is missing from '%s'; is "
				     "this the right directory, or is the program older than the database?", name, dir);
			goto out;
		}
		if (strcmp(hit->sha, sha) != 0) {
			rc = cn_fail(err, CN_EINPUT, "migration '%s' was edited after it was applied (recorded sha256 "
				     "%.12s..., file %.12s...); add a new migration instead", name, sha, hit->sha);
			goto out;
		}
		hit->applied = 1;
	}
	for (int i = 0; i < n; i++) {
		if (m[i].applied)
			continue;
		rc = apply_one(s, dir, &m[i], err);
		if (rc)
			goto out;
		if (rep)
			snprintf(rep->names[applied], sizeof rep->names[applied], "%s", m[i].name);
		applied++;
	}
	if (rep) {
		rep->found = n;
		rep->applied = applied;
	}
out:
	PQclear(res);
	if (locked)
		cn_store_run(s, "release the migration lock", "SELECT pg_advisory_unlock($1::bigint)", 1, lock, NULL);
	if (m)
		for (int i = 0; i < n; i++)
			free(m[i].text);
	free(m);
	return rc;
}
