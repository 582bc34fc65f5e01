/* Rollout history for release managers: one row per rollout, filtered by service, age and outcome. */
#ifndef CANARY_STORE_HISTORY_H
#define CANARY_STORE_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "canary/err.h"
#include "canary/rollout-t.h"

struct cn_store;
struct cn_read;

/* Which rollouts to list. Zero / NULL fields do not filter. */
struct cn_history_filter {
	const char *service; /* only this service */
	int64_t since_ms;    /* only rollouts started at most this long ago */
	const char *phase;   /* only rollouts in this phase ("rolled_back", "promoted", ...) */
	int64_t limit;       /* at most this many, newest first */
};

/* One rollout in the history. Strings are NULL where the database has none. */
struct cn_history_row {
	int64_t id;
	const char *service, *candidate;
	const char *baseline;            /* NULL: unknown */
	const char *policy;
	int policy_version;
	enum cn_phase outcome;           /* the phase it is in (ended or not) */
	int step;                        /* 0-based; -1: never started */
	int steps;
	double weight;
	const char *started_by;
	const char *const *approved_by;  /* roles of the accepted approvals, in order */
	size_t napproved;
	const char *aborted_by;          /* NULL unless an accepted abort */
	int64_t created_us;              /* microseconds since 1970-01-01 UTC */
	int64_t finished_us;             /* CN_TIME_NONE while active */
	int64_t duration_ms;             /* until now while active */
	const char *reason;
};

/* The rows that matched, newest first. */
struct cn_history {
	struct cn_history_row *rows;
	size_t n;
	struct cn_read *rd;
};

/* Reads the rollouts that match f, newest first, in one snapshot. Writes a new history to *out (cn_history_free
 * frees it). Returns 0 or -code. */
int cn_store_history(struct cn_store *st, const struct cn_history_filter *f, struct cn_history **out,
		     struct cn_err *err);
void cn_history_free(struct cn_history *h);

#endif
