/* Store: the PostgreSQL adapter. Connection and error mapping, notifications, migrations, versioned policies and
 * services. Reads return typed read models (plain structs, one free function each); libpq and jansson stay inside
 * controller/store/ (store_int.h). */
#ifndef CANARY_STORE_H
#define CANARY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canary/err.h"
#include "canary/policy-t.h"
#include "canary/service-t.h"

struct cn_store;
struct cn_read; /* what a read model borrows its strings and arrays from (private to the store) */

/* A timestamp in a read model: microseconds since 1970-01-01 UTC; CN_TIME_NONE for SQL NULL. */
#define CN_TIME_NONE INT64_MIN

/* ---- connection (store.c) ---- */

/* Connects to conninfo (a URL or key=value string); NULL or "" means DATABASE_URL, else libpq's PG* variables.
 * Returns a new store (the caller closes it with cn_store_close), or NULL with err = CN_EUNAVAIL. */
struct cn_store *cn_store_connect(const char *conninfo, struct cn_err *err);

/* Closes the connection and frees the store. Accepts NULL. */
void cn_store_close(struct cn_store *s);

/* The database role this store is connected as (session_user). Owned by the store. */
const char *cn_store_user(const struct cn_store *s);

/* Runs one parameterised statement whose result is not needed (text parameters, NULL = SQL NULL); `what` says what
 * it does for error messages ("apply policies"). Returns 0 or -code (the SQLSTATE mapped as cn_store_fail_result in
 * controller/store/store_int.h says). */
int cn_store_run(struct cn_store *s, const char *what, const char *sql, int nparams, const char *const *params,
		 struct cn_err *err);

/* Transactions. begin/commit return 0 or -code; rollback never fails (errors are ignored: the connection is then
 * broken and the server rolls back on its own). */
int cn_store_begin(struct cn_store *s, struct cn_err *err);
int cn_store_commit(struct cn_store *s, struct cn_err *err);
void cn_store_rollback(struct cn_store *s);

/* SQLSTATEs the write functions in schema canary raise on purpose, with a message meant for people: a request that
 * does not fit (exit 65), a daemon whose lease or intent changed under it (69, retried), and a tick judged on a row
 * that was written since it was read (69: the next turn judges the stored row; migrations/0024). */
#define CN_SQLSTATE_REFUSED "CNIN0"
#define CN_SQLSTATE_LEASE "CNUN0"
#define CN_SQLSTATE_STALE "CNST0"

/* Listens on a NOTIFY channel ("canary": commands were queued). Returns 0 or -code. */
int cn_store_listen(struct cn_store *s, const char *channel, struct cn_err *err);

/* The connection's socket, for a caller's poll loop that waits for notifications next to other work; -1 when the
 * connection is gone. Readable means: call cn_store_wait_notify(s, 0). */
int cn_store_socket(const struct cn_store *s);

/* Statements this connection has sent to the server so far (each PREPARE included); 0 for NULL. */
unsigned long long cn_store_round_trips(const struct cn_store *s);

/* Reads what arrived on the connection and consumes the notifications it carries, waiting up to timeout_ms for
 * the first one (0: only what has arrived; -1: no limit; a signal ends the wait early). Returns how many were
 * consumed (0: none), or -code with err: CN_EUNAVAIL when the connection failed. */
int cn_store_wait_notify(struct cn_store *s, int timeout_ms, struct cn_err *err);

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

/* Stores p (with its YAML source) as a new immutable version unless the latest version has the same source
 * sha256; writes the version and whether it was created; records audit event policy.applied when created.
 * One transaction, serialised per name. Returns 0 or -code. */
int cn_store_policy_apply(struct cn_store *s, const struct cn_policy *p, const char *source, int *version_out,
			  bool *created_out, struct cn_err *err);

/* The latest version of one policy, as `policy list` shows it. */
struct cn_policy_info {
	const char *name;
	int version;
	int versions;              /* versions stored */
	const char *content_sha256;
	int64_t created_us;        /* when this version was applied */
	const char *created_by;
	int steps, slos;
};

/* Every policy, by name. */
struct cn_policy_list {
	struct cn_policy_info *items;
	size_t n;
	struct cn_read *rd;
};

/* Reads every policy's latest version. Writes a new list to *out (cn_policy_list_free frees it); returns 0 or -code. */
int cn_store_policy_list(struct cn_store *s, struct cn_policy_list **out, struct cn_err *err);
void cn_policy_list_free(struct cn_policy_list *l);

/* One stored step (policy_steps). */
struct cn_policy_step_row {
	int idx;
	double weight_pct;
	int64_t hold_ms;
	bool approval;
};

/* One stored SLO (policy_slos); NAN where the column is NULL. */
struct cn_policy_slo_row {
	int idx;
	const char *name, *metric;
	double quantile, max_value, max_increase, tolerance;
};

/* One policy version, as `policy show` shows it. Strings are NULL where the database has none. */
struct cn_policy_version {
	const char *name;
	int version, latest_version;
	const char *content_sha256;
	int64_t created_us;
	const char *created_by;
	const char *source;        /* the YAML as applied */
	const char *spec_json;     /* the normalised document as stored (jsonb's text), shown as it is */
	struct cn_policy_step_row *steps;
	size_t nsteps;
	struct cn_policy_slo_row *slos;
	size_t nslos;
	/* From the stored spec: what the text view says besides steps and SLOs. */
	const char *description, *on_failure;
	bool has_analysis;
	int64_t interval_ms, min_requests, failing_ticks, inconclusive_timeout_ms;
	const char *judge, *on_inconclusive;
	struct cn_read *rd;
};

/* Reads one policy version (0: the latest). Writes a new version to *out (cn_policy_version_free frees it);
 * -CN_EINPUT when there is no such policy or version. */
int cn_store_policy_show(struct cn_store *s, const char *name, int version, struct cn_policy_version **out,
			 struct cn_err *err);
void cn_policy_version_free(struct cn_policy_version *v);

/* ---- services (store_services.c) ---- */

/* Stores a service: creates the services row on first apply (live slot = initial_live; later applies keep the
 * live slot), and a new service_versions row unless the latest has the same source sha256; audit event
 * service.applied when a version is created. One transaction, serialised per name. Returns 0 or -code. */
int cn_store_service_apply(struct cn_store *s, const struct cn_service *sv, const char *source, int *version_out,
			   bool *created_out, struct cn_err *err);

/* One slot of a service, from its latest version's spec. */
struct cn_slot_info {
	int index;                 /* 0 or 1 */
	const char *name, *server, *selector, *metrics_url;
};

/* A service with its latest version, as `service list` and `service show` show it. Strings are NULL where the
 * database has none; the fields marked "show" are filled by cn_store_service_show only. */
struct cn_service_info {
	const char *name;
	int version;
	const char *content_sha256;
	int live_slot;
	const char *live_version;  /* the model version serving in the live slot; NULL when unknown */
	int64_t created_us, updated_us;
	struct cn_slot_info live, idle;
	/* show: */
	const char *created_by;    /* who applied the latest version */
	const char *spec_json;     /* the normalised document as stored (jsonb's text), shown as it is */
	const char *source;        /* the YAML as applied */
	const char *gateway_kind, *gateway_runtime_api, *gateway_backend, *metrics_source, *metrics_preset;
};

/* Every service, by name. */
struct cn_service_list {
	struct cn_service_info *items;
	size_t n;
	struct cn_read *rd;
};

/* Reads every service (list: no show fields), or one (name not NULL: with the show fields; -CN_EINPUT when there
 * is no such service). Writes a new list to *out (cn_service_list_free frees it); returns 0 or -code. */
int cn_store_service_list(struct cn_store *s, struct cn_service_list **out, struct cn_err *err);
int cn_store_service_show(struct cn_store *s, const char *name, struct cn_service_list **out, struct cn_err *err);
void cn_service_list_free(struct cn_service_list *l);

#endif
