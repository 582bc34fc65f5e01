/* Failover drills in PostgreSQL: start and abort (operators), claim with leases, record turns and confirm gateway
 * shares (canaryd), read a drill and its ticks (status, report). Every write goes through the SECURITY DEFINER
 * functions of migrations/0010_drills.sql, which audit it in the hash-chained audit. */
#ifndef CANARY_STORE_DRILLS_H
#define CANARY_STORE_DRILLS_H

#include <stdbool.h>
#include <stdint.h>

#include "canary/drill.h"
#include "canary/err.h"
#include "canary/store_rollouts.h"

struct cn_store;

/* One drill as stored. */
struct cn_drill_row {
	int64_t id;
	char service[CN_NAME_MAX];
	int primary_slot, secondary_slot;
	char primary[CN_NAME_MAX], secondary[CN_NAME_MAX]; /* the slots' names */
	int64_t hold_ms, baseline_ms;
	enum cn_drill_phase phase;
	enum cn_drill_phase outcome;    /* CN_DRILL_PENDING while none is decided */
	double weight;                  /* the secondary's intended share */
	double applied_weight;          /* what the gateway last confirmed; NAN if never */
	char reason[512];
	bool scheduled;
	bool abort_requested;
	char abort_by[CN_ACTOR_MAX];
	char abort_reason[CN_REASON_MAX + 1];
	char created_by[CN_ACTOR_MAX];
	int64_t created_us, finished_us; /* CN_TIME_NONE when not */
	int64_t policy_id;
	char policy_name[CN_NAME_MAX];
	int policy_version;
	char *policy_source;            /* owned by the row */
	char *service_source;           /* owned by the row */
	bool has_figures;
	struct cn_drill_figures figures;
	int nslos;                      /* the last verdicts of the hold */
	struct {
		char slo[CN_NAME_MAX];
		char verdict[16];
		char why[CN_WHY_MAX];
	} slos[CN_MAX_SLOS];
};

/* One tick of a drill, for the report. */
struct cn_drill_tick_row {
	int64_t at_us;
	enum cn_drill_phase phase;
	double weight;
	struct cn_drill_numbers primary, secondary; /* this tick's deltas */
};

/* One audit event of a drill (the global chain's events whose data names it). */
struct cn_drill_event {
	int64_t at_us;
	char actor[CN_ACTOR_MAX];
	char kind[48];
	char reason[256];
};

/* Starts a drill of `service` to `to` (a slot or server name; NULL: the idle slot) judged by the latest version of
 * `policy`. Writes *id_out. -CN_EINPUT (worded by the database) for an unknown service, policy or slot, the live
 * slot, or an active rollout or drill of the service; -CN_EPERM for a role that may not. */
int cn_store_drill_start(struct cn_store *st, const char *service, const char *to, const char *policy,
			 int64_t hold_ms, int64_t baseline_ms, const char *reason, int64_t *id_out,
			 struct cn_err *err);

/* Asks the owning daemon to end drill id and restore the primary. -CN_EINPUT if unknown or ended. */
int cn_store_drill_abort(struct cn_store *st, int64_t id, const char *reason, struct cn_err *err);

/* Claims up to max due drills for owner (lease of lease_ms). fresh[i]: the lease was not owner's before (the drill
 * is new to this daemon, or taken over). Writes *n and *db_now_ms (the database's clock, ms since the epoch). */
int cn_store_drill_claim(struct cn_store *st, const char *owner, int64_t lease_ms, int64_t *ids, bool *fresh,
			 int max, int *n, int64_t *db_now_ms, struct cn_err *err);

/* Renews the lease and reads the recorded intent (the secondary's share) into *weight, right before a gateway move.
 * -CN_EUNAVAIL when the lease was lost. */
int cn_store_drill_renew(struct cn_store *st, int64_t id, const char *owner, int64_t lease_ms, double *weight,
			 struct cn_err *err);

/* Gives back every drill lease of owner. */
int cn_store_drill_release(struct cn_store *st, const char *owner, struct cn_err *err);

/* Records a turn of drill id from the core's state s: phase, outcome, intended weight, reason, the figures f
 * (cn_drill_figures of s, merged with an earlier daemon's) and the verdicts (policy names the SLOs); with tick, a
 * drill_ticks row of this tick's numbers. The next turn is due in next_tick_ms. -CN_EUNAVAIL when the lease was
 * lost; -CN_EINPUT for an ended drill. */
int cn_store_drill_record(struct cn_store *st, int64_t id, const char *owner, const struct cn_drill_state *s,
			  const struct cn_drill_figures *f, const struct cn_policy *policy, bool tick,
			  int64_t next_tick_ms, struct cn_err *err);

/* The gateway confirmed `weight` for the secondary (reconciled: it had drifted from a confirmed intent). */
int cn_store_drill_confirm(struct cn_store *st, int64_t id, const char *owner, double weight, bool reconciled,
			   struct cn_err *err);

/* Starts the drills that services schedule (drill.every) and that are due; writes how many to *n (may be NULL). */
int cn_store_drill_start_scheduled(struct cn_store *st, int *n, struct cn_err *err);

/* Reads drill id into a new row (the caller frees it with cn_drill_row_free). -CN_EINPUT if there is none. */
int cn_store_drill_get(struct cn_store *st, int64_t id, struct cn_drill_row **out, struct cn_err *err);
void cn_drill_row_free(struct cn_drill_row *row);

/* The ids of the latest drills (of service, or of all when NULL; only active ones with active_only), newest first,
 * at most max. */
int cn_store_drill_ids(struct cn_store *st, const char *service, bool active_only, int64_t *ids, int max, int *n,
		       struct cn_err *err);

/* Reads drill id's ticks in order into a new array (the caller free()s it; NULL when there are none). */
int cn_store_drill_ticks(struct cn_store *st, int64_t id, struct cn_drill_tick_row **out, int *n,
			 struct cn_err *err);

/* Reads drill id's audit events in order into a new array (the caller free()s it; NULL when there are none). */
int cn_store_drill_events(struct cn_store *st, int64_t id, struct cn_drill_event **out, int *n, struct cn_err *err);

#endif
