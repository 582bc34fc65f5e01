/* The rollout state machine: one tick (state, policy, observation, now) -> (new state, weight, verdicts, reason),
 * and operators' commands. Pure: no I/O, no clock, no logging, no allocation. Times are milliseconds since the
 * epoch, read by the caller. The result's `next` is the state to persist; `cur` is never modified and must not
 * alias `out`. */
#ifndef CANARY_ROLLOUT_H
#define CANARY_ROLLOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "canary/err.h"
#include "canary/metrics-t.h"
#include "canary/policy-t.h"
#include "canary/rollout-t.h"

/* Initialises a new rollout's state: pending, step -1, weight 0, no evidence. */
void cn_rollout_init(struct cn_rollout_state *st);

/* Runs one tick. obs may be NULL (metrics unavailable) or carry samples with ok == false: the verdicts are then
 * inconclusive and the weight is held. Fills *out completely: the next state, the decision, whether and where the
 * gateway must be set, the per-SLO verdicts of this tick and the reason. */
void cn_tick(const struct cn_policy *p, const struct cn_rollout_state *cur, const struct cn_observation *obs,
	     int64_t now_ms, struct cn_tick_result *out);

/* Applies an operator's command. Returns 0 and fills *out, or -CN_EINPUT (out untouched, err says why) when the
 * command makes no sense in the current phase; terminal phases accept no command. Approve does not move the
 * weight itself: it lets the next tick advance if every SLO still passes. */
int cn_command(const struct cn_policy *p, const struct cn_rollout_state *cur, enum cn_command_kind cmd,
	       int64_t now_ms, struct cn_tick_result *out, struct cn_err *err);

/* True for promoted, rolled_back, aborted and failed. */
bool cn_phase_is_terminal(enum cn_phase ph);

/* Lowercase snake names ("awaiting_approval", "rolled_back", "await_approval", "inconclusive", "promote_full"):
 * static strings, "unknown" for a value out of range. */
const char *cn_phase_name(enum cn_phase ph);
const char *cn_decision_name(enum cn_decision d);
const char *cn_verdict_name(enum cn_verdict v);
const char *cn_command_name(enum cn_command_kind c);

/* Parses a name as written by the functions above. Returns 0 and sets *out, or -CN_EINPUT for an unknown name. */
int cn_phase_from_name(const char *name, enum cn_phase *out);
int cn_command_from_name(const char *name, enum cn_command_kind *out);

#endif
