/* Retention: the per-tick rows (measurements, decisions, SLO verdicts) of rollouts that ended long ago. The audit
 * trail is never collected. */
#ifndef CANARY_STORE_GC_H
#define CANARY_STORE_GC_H

#include <stdint.h>

#include "canary/err.h"

struct cn_store;

/* What one collection deleted. */
struct cn_gc_result {
	int rollouts;
	int64_t measurements, decisions, verdicts;
};

/* Deletes the measurements, decisions and verdicts of up to max_rollouts rollouts that finished more than
 * older_than_ms ago (at least a day: -CN_EINPUT below), through canary.gc, which audits it. Writes *out. */
int cn_store_gc(struct cn_store *st, int64_t older_than_ms, int max_rollouts, struct cn_gc_result *out,
		struct cn_err *err);

#endif
