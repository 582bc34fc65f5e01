/* canaryd internals: configuration, per-rollout caches, the tick of one rollout, the HTTP endpoint, logging. */
#ifndef CANARY_DAEMON_INT_H
#define CANARY_DAEMON_INT_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "canary/clock.h"
#include "canary/err.h"
#include "canary/metrics-t.h"
#include "canary/policy-t.h"
#include "canary/rollout-t.h"
#include "canary/service-t.h"

struct cn_store;
struct cn_gateway;
struct cn_metrics;
struct cn_metrics_group;
struct cn_rollout_row;
struct cn_record;
struct daemon_drills; /* drill.c */
struct daemon_preflights; /* preflight.c */
struct cn_tick_result;
struct cn_observation;

struct daemon_config {
	const char *db;          /* conninfo; NULL: DATABASE_URL / PG* */
	const char *listen;      /* "127.0.0.1:PORT" for /healthz and /metrics; NULL: none */
	char owner[128];         /* lease owner id: host:pid unless --id */
	int64_t lease_ms;        /* how long a claim lasts without renewal */
	int64_t poll_ms;         /* longest sleep between claims when nothing is notified */
	int max_claim;           /* rollouts claimed per round */
	bool once;               /* one round, then exit (tests) */
	bool notify;             /* deliver webhook notifications (a thread of its own; --no-notify: not this one) */
	int64_t notify_retry_max_ms; /* longest back-off between two attempts at one notification */
	bool sla;                /* record the SLA ledger (a thread of its own; --no-sla: not this one) */
	int64_t sla_minute_ms;   /* the ledger's minute: 60000 (CANARY_TEST_SLA_MINUTE_MS shortens it in tests) */
	int sla_retention_days;  /* the SLA observer prunes ledger minutes older than this (hourly); 0: never */
	int64_t gc_older_than_ms;    /* retention (--gc-older-than): 0 off, else collect hourly */
};

/* A parsed policy version, shared by the contexts of the rollouts that pin it (a stored version never changes). */
struct policy_ref {
	struct policy_ref *next;
	int64_t policy_id;
	int refs;
	struct cn_policy policy;
};

/* What the daemon caches per rollout it owns: its pinned policy (shared), open adapters, the service's slot costs.
 * About 200 bytes here and a few kB in the adapters: the parsed service (43 kB) is kept only while a pre-flight may
 * still need it, so 10,000 rollouts do not cost 10,000 parsed services. */
struct rollout_ctx {
	int64_t id;
	int64_t policy_id;
	struct policy_ref *pref;
	const struct cn_policy *policy;    /* &pref->policy */
	struct cn_service *service;        /* owned; only while pending with a pre-flight, else NULL */
	struct cn_cost cost[2];            /* each slot's cost from the service file (cn_service_slot_cost) */
	struct cn_gateway *gw;
	struct cn_metrics *metrics;        /* a read may be in flight in the daemon's group */
	/* The row as of the last turn, for the tick when the read finishes: packed (cn_zpack, about 2 kB instead of
	 * 32), without its sources; NULL when none. A daemon that is behind holds DAEMON_READS_MAX of these. */
	unsigned char *row_z;
	size_t row_z_len;
	int64_t last_seen_ms;              /* monotonic */
	int64_t read_started_ms;           /* monotonic */
	int64_t commands_checked_ms;       /* monotonic: when its pending commands were last read; 0: never */
	int recording;                     /* its judged tick is with the recorder (recorder.c): leave it alone */
	int64_t recorded_ms;               /* monotonic: when its last tick was recorded; one recorded after the
					    * round's claim makes that claim's `due` stale (no second tick) */
	int64_t gw_down_since_ms;          /* database clock; 0 while the gateway answers */
	int64_t gw_warned_ms;              /* monotonic: when gateway.error was last logged; 0: not in this run */
	int64_t gw_failures, gw_unlogged;  /* failed gateway calls in this run; those not logged since the last line */
	/* The stored state at version held_seq (cn_zpack of a struct cn_rollout_state), kept from the tick it recorded
	 * (or NULL): the round's read leaves the state out while the row's state_seq is still held_seq. */
	unsigned char *held;
	size_t held_len, held_cap;         /* held_cap: its allocation; the next state is copied in when it fits */
	int64_t held_seq;
};

/* A Prometheus histogram of seconds with fixed bounds (DAEMON_HIST_BOUNDS), updated by the loop, read by /metrics. */
#define DAEMON_HIST_N 9
extern const double daemon_hist_bounds[DAEMON_HIST_N]; /* seconds; the last is +Inf */
struct daemon_hist {
	atomic_ullong count[DAEMON_HIST_N]; /* per bucket, not cumulative */
	atomic_ullong sum_us;
};
void daemon_hist_observe(struct daemon_hist *h, double seconds);

/* Why a metrics read failed, for canaryd_scrape_errors_total{cause}. */
enum scrape_cause { SCRAPE_TIMEOUT, SCRAPE_CONNECT, SCRAPE_STATUS, SCRAPE_PAGE, SCRAPE_NCAUSES };

/* Counters exported on /metrics. */
struct daemon_stats {
	atomic_ullong db_round_trips;        /* statements sent on the loop's connections, reconnects included */
	atomic_ullong scrape_errors[SCRAPE_NCAUSES];
	atomic_ullong state_held, state_read; /* rollout states a round used: held (recorded by us), or read whole */
	atomic_ullong reads_deferred;         /* due ticks left for a later claim: DAEMON_READS_MAX reads pending */
	struct daemon_hist lateness;         /* tick recorded - tick due (database clock) */
	struct daemon_hist round;            /* one claim round: claim, rows, every turn */
	struct daemon_hist command;          /* an operator's command: queued (database clock) -> recorded, gateway moved */
	atomic_ullong ticks, tick_errors, commands, gateway_errors, metrics_errors, claims, rounds;
	atomic_ullong rollouts_owned;
	atomic_int healthy;      /* 1 while the database answers */
	atomic_ullong notify_delivered, notify_failed; /* notifications delivered; attempts that failed */
	atomic_ullong notify_backlog, notify_oldest_ms; /* undelivered notifications, the oldest's age (all daemons') */
	atomic_ullong sla_pruned;  /* ledger minutes deleted by --sla-retention */
	atomic_ullong sla_recorded, sla_nodata, sla_errors; /* ledger minutes recorded with and without numbers; failures */
	atomic_ullong heap_trims, heap_trim_us; /* malloc_trim calls (trim_heap) and the time they took */
	atomic_ullong sla_watched; /* services this daemon's SLA observer reads (its share among the live observers) */
};

/* Metric reads a daemon has started and not yet ticked on (in flight, queued, finished); more wait in the database,
 * due, and are claimed again. Without the cap a loop that is behind queued a read (and its 32 kB row) for every
 * rollout due: bench/scale.sh at N=10,000 recorded 495 ticks a second with it, 732 with the cap. */
#define DAEMON_READS_MAX 1024

/* A tick judged and waiting to be recorded with the others of its pass (daemon_flush_ticks). */
#define DAEMON_BATCH_MAX 64
/* What a tick's follow-ups need once it is encoded (the log line, the gateway move): 400 bytes, where the row, the
 * result and the observation it was judged from are 75 kB. */
struct tick_brief {
	int64_t id, state_seq;
	int candidate_slot, next_step;
	enum cn_phase next_phase;
	enum cn_decision decision;
	bool set_weight;
	double weight, next_weight;
	char service[CN_NAME_MAX];
	char reason[256];
};

struct pending_tick {
	int64_t id;
	struct cn_rollout_row *row;       /* owned; NULL once briefed */
	struct cn_tick_result *res;       /* owned; NULL once briefed */
	struct cn_observation *obs;       /* owned; NULL once briefed */
	unsigned char *stored;            /* owned: the new state as the database gives it back, packed (cn_zpack) */
	size_t stored_len;
	char *doc;                        /* owned: its record's document (cn_store_record_doc); NULL once in a batch */
	size_t doc_len;
	bool briefed;                     /* brief holds what is left of row and res, and they are freed */
	struct tick_brief brief;
};
void daemon_pending_free(struct pending_tick *p);
/* Keeps only p's brief once its record is encoded: up to five batches of 64 ticks wait for the database at a time,
 * and their rows and results were 24 MB of a loaded daemon's heap. */
void daemon_pending_brief(struct pending_tick *p);

struct daemon_recorder; /* recorder.c */

struct daemon {
	struct pending_tick pend[DAEMON_BATCH_MAX];
	struct daemon_recorder *recorder; /* records batches of ticks on a thread of its own; NULL: the loop does */
	bool reclaim_after_record;        /* a NOTIFY found a rollout with the recorder: claim again once it is back */
	int npend;
	struct daemon_config cfg;
	struct cn_store *store;
	struct rollout_ctx *ctx;
	int nctx, capctx;
	struct policy_ref *policies;    /* parsed policy versions the contexts share */
	struct daemon_stats stats;
	volatile sig_atomic_t *stop;
	struct cn_metrics_group *group; /* every read in flight */
	int64_t db_now_ms;              /* the database's clock at the last claim ... */
	int64_t mono_claim_ms;          /* ... and the monotonic clock then */
	int64_t mono_seen_ms;           /* the monotonic clock at the last claim or heartbeat (canary.heartbeat) */
	bool notified;                  /* a NOTIFY came since the last claim: commands may be waiting */
	/* where an operator's command spends its time (command.applied), monotonic ms: */
	int64_t notify_seen_ms;         /* the loop saw a NOTIFY that no commands claim has followed yet; 0: none */
	int64_t notify_seen_db_ms;      /* ... then, by the database's clock (daemon_now) */
	int64_t notify_gap_ms;          /* ... and how long the loop had not looked for one before */
	int64_t notify_look_ms;         /* the loop last looked for a NOTIFY */
	struct {
		int64_t notified, claim, claimed, rows; /* that NOTIFY, the claim sent, answered, its rows read */
		int64_t notified_db, look_gap;          /* that NOTIFY by the database's clock (0: none), the loop's gap */
	} cmd_round;                    /* the last commands round */
	pthread_t notifier;             /* webhook delivery (notifier.c), when notifier_running */
	bool notifier_running;
	struct daemon_drills *drills;   /* failover drills this daemon drives (daemon_drill_int.h) */
	struct daemon_preflights *preflights; /* pre-flight runs on threads of their own (daemon_preflight_int.h) */
	pthread_t sla;                  /* the SLA ledger's observer (sla_observer.c), when sla_running */
	bool sla_running;
};

/* The first half of a claimed rollout's turn: reconcile the gateway to the recorded intent, apply pending commands
 * (also while the gateway is away), and start reading metrics in d->group if the tick is due (by the database
 * clock, as the claim said). row is the rollout as the round read it (owned by the call; NULL: read it here).
 * Returns 1 if it did something, 0 if there was nothing to do, < 0 on error. */
int daemon_turn(struct daemon *d, int64_t id, bool due, struct cn_rollout_row *row, struct cn_err *err);

/* True when the turn of id has nothing to do (its read is in flight and no NOTIFY came): its row need not be read. */
bool daemon_turn_idle(struct daemon *d, int64_t id);

/* True when the daemon has a context (parsed policy and service) for rollout id. */
bool daemon_has_ctx(const struct daemon *d, int64_t id);

/* Whether the daemon has a context for rollout id, with the state version it holds in *seq (-1: none); and a row
 * read without its state (state_elided) given the held one: 0, or -1 when the daemon no longer holds it (the row
 * then has no state). */
bool daemon_held_seq(const struct daemon *d, int64_t id, int64_t *seq);
int daemon_fill_state(const struct daemon *d, struct cn_rollout_row *row);

/* The second half, for a reader of d->group whose read finished: run the core, record, move the gateway. */
int daemon_tick_ready(struct daemon *d, struct cn_metrics *m, struct cn_err *err);

/* Sends the pending ticks to be recorded in one round trip (then the gateway of those whose weight changed moves).
 * Without force, while the recorder is busy and the batch not full, they wait for the next call. */
void daemon_flush_ticks(struct daemon *d, bool force);

/* Logs a recorded tick and moves the gateway if its weight changed (c: its context, NULL if dropped meanwhile). */
void daemon_tick_recorded(struct daemon *d, struct rollout_ctx *c, struct pending_tick *p);

/* The batch of pend[0..n-1]'s documents (cn_store_record_batch_join), which it takes over (each doc freed);
 * 0, or -code with err and pend untouched. */
struct cn_record_batch;
int daemon_pending_join(struct daemon *d, struct pending_tick *pend, int n, struct cn_record_batch *b,
			struct cn_err *err);

/* The recorder (recorder.c): a thread with its own connection that sends batches of ticks. start: 0 or -code.
 * submit: joins pend[0..n-1]'s documents into a batch and queues it, taking pend over (waits while the queue is
 * full, finishing what is done meanwhile); 0 or -code (nothing queued, pend untouched). collect: finishes the
 * batches answered so far on the loop's side (daemon_tick_recorded); returns how many. busy: batches not yet
 * collected. stop: sends and finishes everything queued, then ends the thread; safe if not started. */
int daemon_recorder_start(struct daemon *d, struct cn_err *err);
int daemon_recorder_submit(struct daemon *d, struct pending_tick *pend, int n, struct cn_err *err);
int daemon_recorder_collect(struct daemon *d);
bool daemon_recorder_busy(const struct daemon *d);
bool daemon_recorder_saturated(const struct daemon *d); /* every sender has a batch */
void daemon_recorder_stop(struct daemon *d);

/* Forgets the pending ticks (the database went away: they could not be recorded; the rollouts tick again). */
void daemon_drop_ticks(struct daemon *d);

/* Cancels every read in flight (the database went away: their ticks could not be recorded). */
void daemon_cancel_reads(struct daemon *d);

/* Drops cached contexts of rollouts not seen for a while (mono: cn_mono_ms()); frees all when all is true. */
void daemon_ctx_gc(struct daemon *d, int64_t mono, bool all);

/* The time the core runs on: the database's clock at the last claim plus the monotonic time since (milliseconds
 * since the epoch). Never the daemon's wall clock, so daemons whose clocks disagree agree on holds and timeouts. */
int64_t daemon_now(const struct daemon *d);

/* Starts webhook delivery on a thread of its own with its own connection (cfg.db); it runs until *d->stop. Returns
 * 0 or -code. daemon_notifier_join waits for it to finish (it gives back what it had in flight); safe if not
 * started. */
int daemon_notifier_start(struct daemon *d, struct cn_err *err);
void daemon_notifier_join(struct daemon *d);

/* Starts fn(d) on thread *t with every signal blocked (they go to the main loop). Returns 0 or -CN_EINTERNAL with
 * "cannot start the WHAT thread: ...". */
int daemon_spawn(struct daemon *d, pthread_t *t, void *(*fn)(void *), const char *what, struct cn_err *err);

/* Starts the SLA observer on a thread of its own with its own connection (cfg.db): every minute of the database's
 * clock it reads every service's slots and records the minute (canary.sla_record). Runs until *d->stop. Returns 0
 * or -code. daemon_sla_join waits for it; safe if not started. */
int daemon_sla_start(struct daemon *d, struct cn_err *err);
void daemon_sla_join(struct daemon *d);

/* Starts the /healthz and /metrics endpoint on cfg.listen; returns an opaque handle or NULL with err. */
void *daemon_http_start(struct daemon *d, struct cn_err *err);
void daemon_http_stop(void *h);

/* One field of a log line, made by dstr/dint/dnum, whose prototypes let the compiler check each value's type. */
struct dlog_field {
	const char *key; /* NULL ends a list */
	enum { DLOG_STR = 1, DLOG_INT, DLOG_NUM } type;
	const char *s;   /* DLOG_STR; NULL leaves the field out */
	int64_t i;       /* DLOG_INT */
	double f;        /* DLOG_NUM */
};

static inline struct dlog_field dstr(const char *key, const char *v)
{
	return (struct dlog_field){.key = key, .type = DLOG_STR, .s = v};
}
static inline struct dlog_field dint(const char *key, int64_t v)
{
	return (struct dlog_field){.key = key, .type = DLOG_INT, .i = v};
}
static inline struct dlog_field dnum(const char *key, double v)
{
	return (struct dlog_field){.key = key, .type = DLOG_NUM, .f = v};
}

/* Writes one JSON log line on stderr: {"ts":..., "level":..., "event":..., fields in order...}; strings are
 * JSON-escaped (bytes that are not UTF-8 become '?'). fields ends with a NULL key; use dlog() rather than this. */
void dlog_fields(const char *level, const char *event, const struct dlog_field *fields);

/* dlog(level, event, dstr("error", msg), dint("rollout", id), ...): a line with no fields or with the given ones. */
#define dlog(level, event, ...) \
	dlog_fields((level), (event), (const struct dlog_field[]){__VA_ARGS__ __VA_OPT__(, ) {0}})

/* Wall clock in milliseconds since the epoch, shifted by CANARY_TEST_CLOCK_OFFSET_MS (tests: a daemon whose clock is
 * wrong). Only logs use it; the core's time is daemon_now(). */
int64_t now_ms(void);

/* Reads CANARY_TEST_CLOCK_OFFSET_MS (default 0); returns 0, or -1 with a message on stderr when it is malformed. */
int clock_init(void);

#endif
