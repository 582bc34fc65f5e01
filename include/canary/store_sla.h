/* Store: the SLA ledger (migrations/0008_sla_ledger.sql). canaryd records one row per service and minute through
 * canary.sla_record (idempotent per service and minute); reports read a service's minutes of a period back as the
 * core's ledger (canary/sla-t.h). */
#ifndef CANARY_STORE_SLA_H
#define CANARY_STORE_SLA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canary/err.h"
#include "canary/metrics-t.h"
#include "canary/sla-t.h"
#include "canary/store.h"

/* One minute to record. data false: no numbers (note says why). A histogram (NULL: none) is the minute's own, in
 * cumulative form as the core's deltas are (canary/judge.h); it is stored per bucket. */
struct cn_sla_record {
	bool data;
	double requests, errors;
	const struct cn_histogram *latency, *ttft;
	const char *note;
};

/* Records service's minute starting at minute_us (canary.sla_record). Returns 1 if recorded, 0 if that minute was
 * already recorded (another daemon, or before a restart), or -code. */
int cn_store_sla_record(struct cn_store *s, const char *service, int64_t minute_us, const struct cn_sla_record *rec,
			struct cn_err *err);

/* Minutes of many services recorded in one statement (the SLA observer records every service's minute at each
 * boundary: one round trip and one transaction per 256, not per service). Each element is canary.sla_record's
 * call as cn_store_sla_record makes it; a refusal costs that element only. */
struct cn_sla_batch;
struct cn_sla_batch *cn_sla_batch_new(void); /* NULL when out of memory */
void cn_sla_batch_free(struct cn_sla_batch *b);
size_t cn_sla_batch_len(const struct cn_sla_batch *b);
/* Appends one minute (its arguments are copied: rec may go). Returns 0 or -CN_EINTERNAL (out of memory). */
int cn_sla_batch_add(struct cn_sla_batch *b, const char *service, int64_t minute_us, const struct cn_sla_record *rec,
		     struct cn_err *err);
/* Records the batch and empties it: rc[i] is 1 (recorded), 0 (already recorded) or -code with errs[i] set, for the
 * i-th minute added. Returns 0, or -code when the database is gone (then every rc[i] is that). */
int cn_store_sla_record_batch(struct cn_store *s, struct cn_sla_batch *b, int *rc, struct cn_err *errs);

/* A service the observer watches: its name, live slot and latest version's id, and its source (the YAML) once
 * cn_store_sla_sources read it (else NULL). Strings belong to the list. */
struct cn_sla_target {
	const char *name;
	int live_slot;
	int64_t version_id;
	const char *source;
};

struct cn_sla_targets {
	struct cn_sla_target *items;
	size_t n;
	int64_t now_us;            /* the database's clock when read */
	const char **observers;    /* the live SLA observers (cn_store_sla_observers), in one order for all; or NULL */
	size_t nobservers;
	struct cn_read *rd;
};

/* Every service with its latest version, and the database's clock; no sources. Writes a new list to *out (free it
 * with cn_sla_targets_free); returns 0 or -code. */
int cn_store_sla_targets(struct cn_store *s, struct cn_sla_targets **out, struct cn_err *err);
/* Reads the source of every item i with need[i] (n entries: t->n) in one query: the observer asks only for versions
 * it has not parsed, not for 10,000 sources every minute. Returns 0 or -code (sources stay NULL). */
int cn_store_sla_sources(struct cn_store *s, struct cn_sla_targets *t, const bool *need, struct cn_err *err);
void cn_sla_targets_free(struct cn_sla_targets *t);
/* Registers owner as a live SLA observer for ttl_ms more (0: it leaves now) and lists the live ones into t
 * (canary.sla_observers). Returns 0 or -code (t's list unchanged). */
int cn_store_sla_observers(struct cn_store *s, const char *owner, int64_t ttl_ms, struct cn_sla_targets *t,
			   struct cn_err *err);
/* owner stops observing: the others take its share at their next minute. Returns 0 or -code. */
int cn_store_sla_observer_leave(struct cn_store *s, const char *owner, struct cn_err *err);

/* A service's recorded minutes in [from_us, to_us), by time, with the bounds they use, and the database's clock. */
struct cn_sla_data {
	struct cn_sla_ledger ledger;
	int64_t now_us;
	struct cn_read *rd;
};

/* Reads them; writes a new model to *out (cn_sla_data_free frees it). Returns 0 or -code. */
int cn_store_sla_read(struct cn_store *s, const char *service, int64_t from_us, int64_t to_us,
		      struct cn_sla_data **out, struct cn_err *err);
void cn_sla_data_free(struct cn_sla_data *d);

/* Deletes every service's minutes before before_us (canary.sla_gc, audited with reason). Writes how many went to
 * *rows; returns 0 or -code. */
int cn_store_sla_gc(struct cn_store *s, int64_t before_us, const char *reason, int64_t *rows, struct cn_err *err);

/* Records that a window of service missed an objective of its contract (canary.sla_window_missed; miss_json: the
 * function's document). Returns 1 when it is new (audited, the service's webhooks notified), 0 when it was recorded
 * already, or -code. Call it in the transaction that recorded the window's last minute. */
int cn_store_sla_window_missed(struct cn_store *s, const char *service, const char *miss_json, struct cn_err *err);

/* Deletes at most max_rows ledger minutes older than keep_days (never of the current month), audited
 * (canary.sla_retain). Writes how many went to *rows; returns 0 or -code. */
int cn_store_sla_retain(struct cn_store *s, int keep_days, int max_rows, int64_t *rows, struct cn_err *err);

#endif
