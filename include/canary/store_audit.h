/* The tamper-evident audit: recompute the hash chains of audit_events (migrations/0004_audit_chain.sql) in C,
 * and read one rollout's timeline. */
#ifndef CANARY_STORE_AUDIT_H
#define CANARY_STORE_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canary/err.h"
#include "canary/rollout-t.h"
#include "canary/sha256.h"

struct cn_store;
struct cn_read;

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

/* One audit event of a timeline. Strings are NULL where the database has none. */
struct cn_timeline_event {
	int64_t id;
	int64_t at_us;           /* microseconds since 1970-01-01 UTC */
	const char *actor, *recorded_by, *kind, *reason;
	const char *data_json;   /* the event's data as stored (jsonb's text) */
	const char *hash;
};

/* The rollout a timeline is about. */
struct cn_timeline_rollout {
	int64_t id;
	const char *service, *candidate;
	const char *baseline;    /* NULL: unknown */
	const char *policy;
	int policy_version;
	enum cn_phase phase;
	int step, steps;
	double weight;
	const char *created_by;
	int64_t created_us;
	int64_t finished_us;     /* CN_TIME_NONE while active */
	const char *reason;
};

/* One rollout's audit timeline, oldest event first. */
struct cn_timeline {
	struct cn_timeline_rollout rollout;
	struct cn_timeline_event *events;
	size_t nevents;
	struct cn_read *rd;
};

/* Reads the timeline of one rollout in one snapshot. Writes a new timeline to *out (cn_timeline_free frees it);
 * -CN_EINPUT for an unknown rollout. */
int cn_store_audit_timeline(struct cn_store *st, int64_t rollout_id, struct cn_timeline **out, struct cn_err *err);
void cn_timeline_free(struct cn_timeline *t);

#endif
