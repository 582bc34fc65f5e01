/* Private to the store: the libpq connection and results, the JSON the store keeps inside (the documents it writes,
 * the stored status it parses), and the owner of what read models borrow. Nothing outside controller/store/
 * includes this header: the public headers (include/canary/store*.h) carry neither libpq nor jansson types. */
#ifndef CANARY_STORE_INT_H
#define CANARY_STORE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "canary/err.h"
#include "canary/store.h"

/* The libpq connection, for the store's own statements. Owned by the store. */
PGconn *cn_store_conn(struct cn_store *s);

/* Runs one parameterised statement (text parameters, NULL = SQL NULL). `what` says what the statement does for
 * error messages ("apply policies"). Returns the result (the caller PQclear()s it) when it is COMMAND_OK or
 * TUPLES_OK; else NULL with err set from the SQLSTATE (see cn_store_fail_result). */
PGresult *cn_store_exec(struct cn_store *s, const char *what, const char *sql, int nparams,
			const char *const *params, struct cn_err *err);

/* Maps a failed result (or NULL: the connection's error) to err and returns -code:
 * connection lost (08xxx, 57P0x) -> CN_EUNAVAIL; 42501 -> CN_EPERM "permission denied: role 'x' may not WHAT"
 * (or the function's own "permission denied: ..." as it is); CNIN0 -> CN_EINPUT, CNUN0 and CNST0 -> CN_EUNAVAIL
 * as worded; 42P01/42883 (no schema) -> CN_EUNAVAIL with a hint to migrate; 22xxx/23xxx -> CN_EINPUT; else
 * CN_EINTERNAL. */
int cn_store_fail_result(struct cn_store *s, const PGresult *res, const char *what, struct cn_err *err);

/* Applies a versioned document (a policy or a service) through its canary.apply_* function: `sql` takes $1 name,
 * $2 source (the YAML as applied), $3 spec (the normalised document, jsonb) and, when extra is not NULL, $4; it returns
 * one row (version, created). A new immutable version is stored only when the source changed. Takes ownership of
 * spec. Writes *version_out and *created_out on success; returns 0 or -code. */
int cn_store_apply_version(struct cn_store *s, const char *what, const char *sql, const char *name,
			   const char *source, json_t *spec, const char *extra, int *version_out, bool *created_out,
			   struct cn_err *err);

/* Runs a claim function's statement `sql` ($1 owner, $2 lease_ms, $3 max; rows now_ms, id, flag[, next_due]: one row
 * at least, id NULL when nothing was due) and reads up to max ids and their flags; writes *n and, when not NULL,
 * *db_now_ms (the database's clock, ms since the epoch) and *next_due_ms (the 4th column of the first row, 0 when
 * absent or NULL). Returns 0 or -code. (store_rollouts.c) */
int cn_store_claim_rows(struct cn_store *st, const char *what, const char *sql, const char *owner, int64_t lease_ms,
			int max, int64_t *ids, bool *flags, int *n, int64_t *db_now_ms, int64_t *next_due_ms,
			struct cn_err *err);

/* ---- read models (store_read.c) ---- */

#define CN_READ_MAX 8

/* What a read model's strings and arrays point into: query results, parsed documents and arrays, all freed by
 * cn_read_free. A model's public struct holds one of these as an opaque pointer. */
struct cn_read {
	PGresult *res[CN_READ_MAX];
	int nres;
	json_t *docs[CN_READ_MAX];
	int ndocs;
	void *mem[CN_READ_MAX];
	int nmem;
};

/* A new, empty owner (NULL: out of memory). */
struct cn_read *cn_read_new(void);
/* Frees rd and everything it holds. Accepts NULL. */
void cn_read_free(struct cn_read *rd);
/* Runs a query (as cn_store_exec) whose result rd keeps. Returns the result (borrowed from rd) or NULL with err. */
PGresult *cn_read_query(struct cn_read *rd, struct cn_store *s, const char *what, const char *sql, int nparams,
			const char *const *params, struct cn_err *err);
/* A zeroed array of n elements of size bytes (at least one element) that rd keeps; NULL with err when out of
 * memory or when rd holds too many. */
void *cn_read_alloc(struct cn_read *rd, size_t n, size_t size, struct cn_err *err);
/* Keeps a parsed document (takes the reference). Returns 0, or -CN_EINTERNAL with err (doc is then released). */
int cn_read_keep_doc(struct cn_read *rd, json_t *doc, struct cn_err *err);

/* One column of one row. SQL NULL is NULL / 0 / NAN / false / CN_TIME_NONE. */
const char *cn_col_str(const PGresult *r, int row, int col);
int64_t cn_col_int(const PGresult *r, int row, int col);
double cn_col_real(const PGresult *r, int row, int col);
bool cn_col_bool(const PGresult *r, int row, int col);
/* A bigint column of microseconds since 1970-01-01 UTC (select it with CN_SQL_US(col)). */
int64_t cn_col_time(const PGresult *r, int row, int col);

/* A timestamptz column as microseconds since 1970-01-01 UTC, exact (extract returns numeric since PostgreSQL 14). */
#define CN_SQL_US(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

#endif
