/* canaryd's pre-flights (preflight.c): a thread per running pre-flight, state in the database. */
#ifndef CANARY_DAEMON_PREFLIGHT_INT_H
#define CANARY_DAEMON_PREFLIGHT_INT_H

#include "canary/err.h"
#include "canary/policy-t.h"
#include "canary/service-t.h"

struct daemon;
struct cn_rollout_row;

/* For a pending rollout whose policy has a pre-flight, before step 1: returns 0 when its pre-flight passed (step 1
 * may start), 1 while it runs (this turn started it, or a thread of this daemon is on it; the rollout is looked at
 * again in a second), or -code. */
int daemon_preflight_turn(struct daemon *d, const struct cn_policy *policy, const struct cn_service *service,
			  const struct cn_rollout_row *row, struct cn_err *err);

/* SIGTERM: stops every run (each records itself cancelled; the next daemon starts it again) and frees them. */
void daemon_preflights_stop(struct daemon *d);

#endif
