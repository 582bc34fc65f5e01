/* The tamper-evident audit: recompute the hash chains of audit_events (migrations/0004_audit_chain.sql) in C,
 * and read one rollout's timeline. */
#ifndef CANARY_STORE_AUDIT_H
#define CANARY_STORE_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "canary/err.h"
#include "canary/sha256.h"

struct cn_store;

/* One audit event's hashed fields. Strings are borrowed; NULL stands for SQL NULL. */
struct cn_audit_event {
	int64_t id;
	int64_t at_us;           /* microseconds since 1970-01-01 UTC */
	const char *recorded_by; /* the role that inserted the row */
	const char *actor;
	bool has_rollout;        /* false: the global chain (rollout_id NULL) */
	int64_t rollout_id;
	const char *service;
	const char *kind;
	const char *reason;
	const char *data;        /* jsonb's text form */
};

/* The prev_hash of the first event of a chain: 64 '0'. A static string. */
extern const char CN_AUDIT_GENESIS[CN_SHA256_HEX_LEN];

/* Hashes ev after prev_hash (64 hex digits) with canonical encoding v1; writes 64 lowercase hex digits and a NUL
 * into hex and returns hex. */
char *cn_audit_hash(const char *prev_hash, const struct cn_audit_event *ev, char hex[CN_SHA256_HEX_LEN]);

enum cn_audit_problem {
	CN_AUDIT_INTACT = 0,
	CN_AUDIT_CHANGED,   /* the row's hash does not match its fields: the row was changed */
	CN_AUDIT_BROKEN,    /* prev_hash is not the previous event's hash: an event before it was deleted or changed */
};

/* What cn_store_audit_verify found. */
struct cn_audit_report {
	int64_t events;                /* events checked (up to and including a bad one) */
	int64_t chains;                /* chains seen */
	enum cn_audit_problem problem; /* CN_AUDIT_INTACT: every chain checked out */
	/* The first bad event (problem != CN_AUDIT_INTACT): */
	int64_t bad_id;
	bool bad_has_rollout;
	int64_t bad_rollout_id;
	int64_t bad_prev_id;           /* the event before it in its chain; 0 when it is the first one */
	char bad_kind[64];
	char bad_at[40];               /* ISO 8601, UTC */
};

/* Recomputes the hash chain of one rollout (rollout_id > 0) or of every chain (0), in id order, and stops at the
 * first event that does not match. Returns 0 with *rep filled (rep->problem says whether the chains are intact),
 * -CN_EINPUT for an unknown rollout, or another -code. A deleted last event of a chain is not detectable here. */
int cn_store_audit_verify(struct cn_store *st, int64_t rollout_id, struct cn_audit_report *rep, struct cn_err *err);

/* The timeline of one rollout: {"rollout": {id, service, candidate, baseline, policy, policy_version, phase, step,
 * steps, weight, created_by, created_at, finished_at, reason}, "events": [{id, at, actor, recorded_by, kind,
 * reason, data, hash}, ...]} oldest first, times in ISO 8601 UTC. Writes a new reference to *out (the caller
 * decrefs); -CN_EINPUT for an unknown rollout. */
int cn_store_audit_timeline(struct cn_store *st, int64_t rollout_id, json_t **out, struct cn_err *err);

/* What an audit event (a JSON object with kind and data, as the timeline gives it) says in words, on one line:
 * "gateway confirmed weight 1%", "advance at step 2, weight 5%: errors pass (candidate 0.004, ...)". Writes buf. */
void cn_audit_describe(const json_t *event, char *buf, size_t size);

#endif
