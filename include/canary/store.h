/* Store: the PostgreSQL adapter. Connection and error mapping, migrations, versioned policies and services. */
#ifndef CANARY_STORE_H
#define CANARY_STORE_H

#include <stdbool.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canary/err.h"
#include "canary/policy-t.h"
#include "canary/service-t.h"

struct cn_store;

/* ---- connection (store.c) ---- */

/* Connects to conninfo (a URL or key=value string); NULL or "" means DATABASE_URL, else libpq's PG* variables.
 * Returns a new store (the caller closes it with cn_store_close), or NULL with err = CN_EUNAVAIL. */
struct cn_store *cn_store_connect(const char *conninfo, struct cn_err *err);

/* Closes the connection and frees the store. Accepts NULL. */
void cn_store_close(struct cn_store *s);

/* The libpq connection, for adapters that issue their own statements. Owned by the store. */
PGconn *cn_store_conn(struct cn_store *s);

/* The database role this store is connected as (session_user). Owned by the store. */
const char *cn_store_user(const struct cn_store *s);

/* Runs one parameterised statement (text parameters, NULL = SQL NULL). `what` says what the statement does for
 * error messages ("apply policies"). Returns the result (the caller PQclear()s it) when it is COMMAND_OK or
 * TUPLES_OK; else NULL with err set from the SQLSTATE (see cn_store_fail_result). */
PGresult *cn_store_exec(struct cn_store *s, const char *what, const char *sql, int nparams,
			const char *const *params, struct cn_err *err);

/* Like cn_store_exec for statements whose result is not needed. Returns 0 or -code. */
int cn_store_run(struct cn_store *s, const char *what, const char *sql, int nparams, const char *const *params,
		 struct cn_err *err);

/* Transactions. begin/commit return 0 or -code; rollback never fails (errors are ignored: the connection is then
 * broken and the server rolls back on its own). */
int cn_store_begin(struct cn_store *s, struct cn_err *err);
int cn_store_commit(struct cn_store *s, struct cn_err *err);
void cn_store_rollback(struct cn_store *s);

/* SQLSTATEs the write functions in schema canary raise on purpose, with a message meant for people: a request that
 * does not fit (exit 65), and a daemon whose lease or intent changed under it (69, retried). */
#define CN_SQLSTATE_REFUSED "CNIN0"
#define CN_SQLSTATE_LEASE "CNUN0"

/* Maps a failed result (or NULL: the connection's error) to err and returns -code:
 * connection lost (08xxx, 57P0x) -> CN_EUNAVAIL; 42501 -> CN_EPERM "permission denied: role 'x' may not WHAT"
 * (or the function's own "permission denied: ..." as it is); CNIN0 -> CN_EINPUT and CNUN0 -> CN_EUNAVAIL as worded;
 * 25006 (read-only: a standby) -> CN_EUNAVAIL;
 * 42P01/42883 (no schema) -> CN_EUNAVAIL with a hint to migrate; 22xxx/23xxx -> CN_EINPUT; else CN_EINTERNAL. */
int cn_store_fail_result(struct cn_store *s, const PGresult *res, const char *what, struct cn_err *err);

/* The rows of a result as a JSON array of objects keyed by column name; int, float, bool and json columns keep
 * their type, others are strings, NULL is null. Returns a new reference (the caller decrefs) or NULL (no memory). */
json_t *cn_store_rows_json(const PGresult *res);

/* Runs a parameterised query (as cn_store_exec) and returns its rows as cn_store_rows_json does.
 * Returns a new reference (the caller decrefs), or NULL with err set. */
json_t *cn_store_query_json(struct cn_store *s, const char *what, const char *sql, int nparams,
			    const char *const *params, struct cn_err *err);

/* Applies a versioned document (a policy or a service) through its canary.apply_* function: `sql` takes $1 name,
 * $2 source (the YAML as applied), $3 spec (the normalised document, jsonb) and, when extra is not NULL, $4; it returns
 * one row (version, created). A new immutable version is stored only when the source changed. Takes ownership of
 * spec. Writes *version_out and *created_out on success; returns 0 or -code. */
int cn_store_apply_version(struct cn_store *s, const char *what, const char *sql, const char *name,
			   const char *source, json_t *spec, const char *extra, int *version_out, bool *created_out,
			   struct cn_err *err);

/* ---- migrations (store_migrate.c) ---- */

#define CN_MIGRATE_MAX 256       /* migration files in one directory, at most */
#define CN_MIGRATION_NAME_MAX 128

struct cn_migrate_report {
	int found;                                      /* migration files in the directory */
	int applied;                                    /* applied by this run (0: the database was up to date) */
	char names[CN_MIGRATE_MAX][CN_MIGRATION_NAME_MAX]; /* the first `applied` are the ones this run applied */
};

/* Applies the migrations in dir (files NNNN_name.sql, in name order) that schema_migrations does not list yet, each
 * in its own transaction, under an advisory lock so concurrent runs serialise. Refuses (CN_EINPUT, nothing applied)
 * when an applied file was edited or removed. Fills *rep (when not NULL) on success; returns 0 or -code. */
int cn_store_migrate(struct cn_store *s, const char *dir, struct cn_migrate_report *rep, struct cn_err *err);

/* ---- policies (store_policies.c) ---- */

/* The normalised policy as JSON: every field, defaults as loaded, durations in ms, NaN as null.
 * Returns a new reference (the caller decrefs) or NULL when out of memory. */
json_t *cn_policy_to_json(const struct cn_policy *p);

/* Stores p (with its YAML source) as a new immutable version unless the latest version has the same source
 * sha256; writes the version and whether it was created; records audit event policy.applied when created.
 * One transaction, serialised per name. Returns 0 or -code. */
int cn_store_policy_apply(struct cn_store *s, const struct cn_policy *p, const char *source, int *version_out,
			  bool *created_out, struct cn_err *err);

/* All policies, latest version each: an array of {name, version, versions, content_sha256, created_at,
 * created_by, steps, slos}. Returns a new reference (the caller decrefs) or NULL with err set. */
json_t *cn_store_policy_list(struct cn_store *s, struct cn_err *err);

/* One policy version (0: the latest): {name, version, latest_version, content_sha256, created_at, created_by,
 * source, spec, steps: [...], slos: [...]} with steps and SLOs as stored in their tables.
 * Returns a new reference (the caller decrefs) or NULL: CN_EINPUT when there is no such policy or version. */
json_t *cn_store_policy_show(struct cn_store *s, const char *name, int version, struct cn_err *err);

/* ---- services (store_services.c) ---- */

/* The normalised service as JSON. Returns a new reference (the caller decrefs) or NULL when out of memory. */
json_t *cn_service_to_json(const struct cn_service *sv);

/* Stores a service: creates the services row on first apply (live slot = initial_live; later applies keep the
 * live slot), and a new service_versions row unless the latest has the same source sha256; audit event
 * service.applied when a version is created. One transaction, serialised per name. Returns 0 or -code. */
int cn_store_service_apply(struct cn_store *s, const struct cn_service *sv, const char *source, int *version_out,
			   bool *created_out, struct cn_err *err);

/* All services: an array of {name, version, live_slot, idle_slot, live_version, updated_at}.
 * Returns a new reference (the caller decrefs) or NULL with err set. */
json_t *cn_store_service_list(struct cn_store *s, struct cn_err *err);

/* One service with its latest version: {name, version, content_sha256, live: {index, name, server, metrics_url,
 * selector}, idle: {...}, live_version, created_at, updated_at, spec, source}.
 * Returns a new reference (the caller decrefs) or NULL: CN_EINPUT when there is no such service. */
json_t *cn_store_service_show(struct cn_store *s, const char *name, struct cn_err *err);

#endif
