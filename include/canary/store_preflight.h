/* Pre-flight state in the store (migrations/0009_preflight.sql): read a rollout's pre-flight, open an attempt under
 * the rollout's lease, and record the outcome (passed; failed: the rollout rolled back before step 1; error;
 * cancelled) in one transaction with its audit events. */
#ifndef CANARY_STORE_PREFLIGHT_H
#define CANARY_STORE_PREFLIGHT_H

#include <stdint.h>

#include "canary/err.h"

struct cn_store;

enum cn_pf_state { CN_PF_NONE, CN_PF_RUNNING, CN_PF_PASSED, CN_PF_FAILED, CN_PF_CANCELLED };

struct cn_preflight_row {
	enum cn_pf_state state;
	int attempt;            /* 0 with CN_PF_NONE */
	char owner[128];        /* the daemon of the attempt */
	char phase[24];         /* the rollout's phase */
};

/* Reads rollout id's pre-flight (CN_PF_NONE when it has none yet) and the rollout's phase. Returns 0, -CN_EINPUT
 * when there is no such rollout, or -code. */
int cn_store_preflight_get(struct cn_store *st, int64_t id, struct cn_preflight_row *out, struct cn_err *err);

/* Opens the next attempt (canary.preflight_start); *attempt is its number, or 0 when max_attempts were used up and
 * the rollout failed. Returns 0, -CN_EUNAVAIL (lease lost) or -code. */
int cn_store_preflight_start(struct cn_store *st, int64_t id, const char *owner, int max_attempts, int *attempt,
			     struct cn_err *err);

/* Records attempt's outcome; doc_json as canary.preflight_finish takes it. *became (at least 16 bytes) says what
 * became of the rollout: passed, rolled_back, failed or cancelled. Returns 0, -CN_EUNAVAIL (the attempt was
 * replaced) or -code. */
int cn_store_preflight_finish(struct cn_store *st, int64_t id, const char *owner, int attempt, const char *doc_json,
			      char *became, size_t size, struct cn_err *err);

#endif
