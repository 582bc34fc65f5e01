/* canaryd internals: configuration, per-rollout caches, the tick of one rollout, the HTTP endpoint, logging. */
#ifndef CANARY_DAEMON_H
#define CANARY_DAEMON_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "canary/err.h"
#include "canary/policy-t.h"
#include "canary/service-t.h"

struct cn_store;
struct cn_gateway;
struct cn_metrics;

struct daemon_config {
	const char *db;          /* conninfo; NULL: DATABASE_URL / PG* */
	const char *listen;      /* "127.0.0.1:PORT" for /healthz and /metrics; NULL: none */
	char owner[128];         /* lease owner id: host:pid unless --id */
	int64_t lease_ms;        /* how long a claim lasts without renewal */
	int64_t poll_ms;         /* longest sleep between claims when nothing is notified */
	int max_claim;           /* rollouts claimed per round */
	bool once;               /* one round, then exit (tests) */
};

/* What the daemon caches per rollout it owns: parsed pinned policy and service, open adapters. */
struct rollout_ctx {
	int64_t id;
	int64_t policy_id;
	struct cn_policy policy;
	struct cn_service service;
	struct cn_gateway *gw;
	struct cn_metrics *metrics;
	int64_t last_seen_ms;
};

/* Counters exported on /metrics. */
struct daemon_stats {
	atomic_ullong ticks, tick_errors, commands, gateway_errors, metrics_errors, claims, rounds;
	atomic_ullong rollouts_owned;
	atomic_int healthy;      /* 1 while the database answers */
};

struct daemon {
	struct daemon_config cfg;
	struct cn_store *store;
	struct rollout_ctx *ctx;
	int nctx, capctx;
	struct daemon_stats stats;
	volatile sig_atomic_t *stop;
};

/* Processes one claimed rollout: reconcile the gateway to the recorded intent, apply pending commands, tick if due
 * (by the database clock, as the claim said). */
int daemon_process(struct daemon *d, int64_t id, bool due, struct cn_err *err);

/* Drops cached contexts of rollouts not seen for a while; frees all when all is true. */
void daemon_ctx_gc(struct daemon *d, int64_t now_ms, bool all);

/* Starts the /healthz and /metrics endpoint on cfg.listen; returns an opaque handle or NULL with err. */
void *daemon_http_start(struct daemon *d, struct cn_err *err);
void daemon_http_stop(void *h);

/* Writes one JSON log line on stderr: {"ts":..., "level":..., "event":..., fields...}. fmt pairs: key, type, value
 * with types 's' (string), 'I' (int64), 'f' (double); ends with NULL. */
void dlog(const char *level, const char *event, ...);

/* Wall clock in milliseconds since the epoch. */
int64_t now_ms(void);

#endif
