/* Rollout history for release managers: one row per rollout, filtered by service, age and outcome. */
#ifndef CANARY_STORE_HISTORY_H
#define CANARY_STORE_HISTORY_H

#include <stdint.h>

#include <jansson.h>

#include "canary/err.h"

struct cn_store;

/* Which rollouts to list. Zero / NULL fields do not filter. */
struct cn_history_filter {
	const char *service; /* only this service */
	int64_t since_ms;    /* only rollouts started at most this long ago */
	const char *phase;   /* only rollouts in this phase ("rolled_back", "promoted", ...) */
	int64_t limit;       /* at most this many, newest first */
};

/* The rollouts that match f, newest first, as a JSON array of {id, service, candidate, baseline, policy,
 * policy_version, outcome, step (0-based, -1: never started), steps, weight, started_by, approved_by: [roles of
 * accepted approvals, in order], aborted_by (null unless an accepted abort), created_at, finished_at (null while
 * active; ISO 8601 UTC), duration_ms (until now while active), reason}.
 * Writes a new reference to *out (the caller decrefs). Returns 0 or -code. */
int cn_store_history(struct cn_store *st, const struct cn_history_filter *f, json_t **out, struct cn_err *err);

#endif
