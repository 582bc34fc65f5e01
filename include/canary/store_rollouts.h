/* Rollouts in PostgreSQL: create, claim with leases, load, record ticks and commands, confirm gateway weights. */
#ifndef CANARY_STORE_ROLLOUTS_H
#define CANARY_STORE_ROLLOUTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canary/err.h"
#include "canary/rollout-t.h"

struct cn_store;
struct cn_read;

#define CN_VERSION_MAX 128
#define CN_ACTOR_MAX 64
#define CN_REASON_MAX 500

/* One rollout as the daemon needs it. */
struct cn_rollout_row {
	int64_t id;
	char service[CN_NAME_MAX];
	char candidate[CN_VERSION_MAX];
	char baseline[CN_VERSION_MAX];  /* "" when unknown */
	int candidate_slot;
	enum cn_phase phase;
	int step;
	double weight;                  /* intended candidate share, percent */
	double applied_weight;          /* last share the gateway confirmed; NAN if never */
	int64_t policy_id;
	char policy_name[CN_NAME_MAX];
	int policy_version;
	char *policy_source;            /* owned by the row */
	char *service_source;           /* owned by the row */
	bool has_state;                 /* false before the first tick */
	bool state_elided;              /* state left out: it is the one the caller said it holds (state_seq) */
	struct cn_rollout_state state;
	int64_t state_seq;              /* the stored state's version: one more with every write of it */
	char created_by[CN_ACTOR_MAX];
	char lease_owner[128];
	char reason[256];
	bool commands_pending;          /* operators' commands wait for it (as read with the row) */
	int64_t next_tick_ms;           /* when its next tick is due, milliseconds since the epoch (database clock) */
};

/* A command an operator queued for a rollout. */
struct cn_command_row {
	int64_t id;
	int64_t queued_ms; /* when it was queued: ms since the epoch, the database's clock */
	enum cn_command_kind kind;
	char actor[CN_ACTOR_MAX];
	char reason[CN_REASON_MAX + 1];
};

/* Starts a rollout of `candidate` on `service` with the latest version of `policy`: the candidate goes to the idle
 * slot. Writes *id_out. -CN_EINPUT for an unknown service or policy or when the service has an active rollout. */
int cn_store_rollout_create(struct cn_store *st, const char *service, const char *candidate, const char *policy,
			    const char *reason, int64_t *id_out, struct cn_err *err);

/* Claims up to max due rollouts for `owner` (lease of lease_ms): active ones whose tick is due or that have pending
 * commands, and ended ones whose gateway weight is not yet confirmed. Fills ids and due (the tick is due by the
 * database's clock, so daemons with skewed clocks agree), writes *n and, when db_now_ms is not NULL, the
 * database's clock_timestamp() in milliseconds since the epoch (the clock the core runs on). */
int cn_store_claim(struct cn_store *st, const char *owner, int64_t lease_ms, int64_t *ids, bool *due, int max,
		   int *n, int64_t *db_now_ms, struct cn_err *err);

/* What a claim returned: the caller passes ids and due arrays of at least max entries. */
struct cn_claim {
	int64_t *ids;
	bool *due;
	int n;
	int64_t db_now_ms;   /* the database's clock_timestamp(), milliseconds since the epoch */
	int64_t next_due_ms; /* the earliest next_tick_at of an active rollout not yet due (any owner's); 0: none */
};

/* cn_store_claim with the next due time too, in one round trip. */
int cn_store_claim_batch(struct cn_store *st, const char *owner, int64_t lease_ms, int max, struct cn_claim *c,
			 struct cn_err *err);

/* Leases the active rollouts with a command waiting that are free or owner's (canary.claim_commands: however many
 * ticks are due, an operator's command is answered first); fills c as cn_store_claim_batch (next_due_ms 0). */
int cn_store_claim_commands(struct cn_store *st, const char *owner, int64_t lease_ms, int max, struct cn_claim *c,
			    struct cn_err *err);

/* Extends owner's lease on rollout id by lease_ms and reads the recorded intent (candidate percent) into *weight;
 * -CN_EUNAVAIL if owner no longer holds the lease. Called right before every gateway change. */
int cn_store_lease_renew(struct cn_store *st, int64_t id, const char *owner, int64_t lease_ms, double *weight,
			 struct cn_err *err);

/* Releases owner's leases (on shutdown), so another daemon can take over at once. */
int cn_store_release(struct cn_store *st, const char *owner, struct cn_err *err);

/* Loads a rollout. Returns a new row (cn_rollout_row_free frees it) in *out; -CN_EINPUT if there is no such id. */
int cn_store_rollout_get(struct cn_store *st, int64_t id, struct cn_rollout_row **out, struct cn_err *err);
void cn_rollout_row_free(struct cn_rollout_row *row);

/* Loads the rollouts ids[0..n) in one round trip: rows[i] is a new row (or NULL when there is no such id), with
 * policy_source and service_source only when `sources` (else NULL). With held_seqs (NULL: none), a row whose
 * state_seq equals held_seqs[i] comes without its state (state_elided, has_state false): the caller holds that state
 * already. Returns 0 or -code (then every rows[i] NULL). */
int cn_store_rollouts_get(struct cn_store *st, const int64_t *ids, const int64_t *held_seqs, int n, bool sources,
			  struct cn_rollout_row **rows, struct cn_err *err);
/* The same, each row handed to each(row, i, arg) as it is parsed (each takes it over), so that the caller need not
 * hold a round's rows whole at once (32 kB each, most of it a state). Returns 0 or -code; rows handed over before a
 * failure stay the caller's. */
int cn_store_rollouts_each(struct cn_store *st, const int64_t *ids, const int64_t *held_seqs, int n, bool sources,
			   void (*each)(struct cn_rollout_row *row, int at, void *arg), void *arg, struct cn_err *err);

/* Reads the rollout's pending commands, oldest first (at most max). */
int cn_store_commands_pending(struct cn_store *st, int64_t id, struct cn_command_row *cmds, int max, int *n,
			      struct cn_err *err);

/* What one tick or command did, to record in one transaction. */
struct cn_record {
	const struct cn_rollout_row *row;      /* the rollout as loaded */
	const struct cn_policy *policy;
	const struct cn_tick_result *res;
	const struct cn_observation *obs;      /* NULL: nothing was measured (a command) */
	const struct cn_command_row *command;  /* NULL: a tick */
	const char *command_error;             /* a command that was refused: why (res is then unused) */
	int64_t next_tick_ms;                  /* when the next tick is due, from now */
	const char *owner;                     /* the lease that must still be held */
	/* Optional (ticks): called while the record is encoded, with the state as the database will give it back once
	 * recorded (decoded from the very document sent, so what a later read returns, into as_stored_scratch, which
	 * the caller provides) and as_stored_arg; not called when the state does not decode. */
	void (*as_stored)(const struct cn_rollout_state *state, void *arg);
	void *as_stored_arg;
	struct cn_rollout_state *as_stored_scratch;
};

/* Records a tick or a command: state, intended weight, measurement, decision, verdicts and audit events, in one
 * transaction, if owner still holds the lease (-CN_EUNAVAIL if not). On promotion the candidate's slot becomes live. */
int cn_store_record(struct cn_store *st, const struct cn_record *rec, struct cn_err *err);

/* Records n ticks (no commands) of one owner in one round trip, each in a transaction of its own inside it: rcs[i]
 * is 0 when recs[i] was recorded, else -code with msgs[i] (a lost lease: -CN_EUNAVAIL, as cn_store_record). Returns
 * 0 when the database answered (whatever each element's outcome), else -code with err and nothing recorded. */
int cn_store_record_batch(struct cn_store *st, const struct cn_record *recs, int n, int *rcs,
			  char (*msgs)[CN_ERR_MSG_MAX], struct cn_err *err);

/* The same in two halves, so that one thread encodes (it needs the policies) and another, with a connection of its
 * own, sends: cn_store_record_batch_encode writes n (1..CN_RECORD_BATCH_MAX) records into *out (free with
 * cn_record_batch_free); cn_store_record_batch_send records them as cn_store_record_batch does. */
#define CN_RECORD_BATCH_MAX 64
#define CN_RECORD_BATCH_TEXT_MAX ((size_t)64 << 20) /* a batch's documents (about 12 kB a record at N=10,000) */
struct cn_record_batch {
	int n;
	int64_t ids[CN_RECORD_BATCH_MAX];
	char owner[128];
	char *id_array; /* "{1,2,...}" */
	char *docs;     /* a JSON array of canary.record documents */
};
int cn_store_record_batch_encode(const struct cn_record *recs, int n, struct cn_record_batch *out, struct cn_err *err);
int cn_store_record_batch_send(struct cn_store *st, const struct cn_record_batch *b, int *rcs,
			       char (*msgs)[CN_ERR_MSG_MAX], struct cn_err *err);
void cn_record_batch_free(struct cn_record_batch *b);

/* One record's document, as cn_store_record_batch_encode puts it into a batch, made when its tick is judged: a tick
 * waiting for its batch then holds this text (about 12 kB at N=10,000), not its row, result and observation (76 kB).
 * *doc: a new string of *len bytes (the caller frees it). Returns 0, or -CN_EINTERNAL with err. */
int cn_store_record_doc(const struct cn_record *rec, char **doc, size_t *len, struct cn_err *err);
/* A batch of n (1..CN_RECORD_BATCH_MAX) such documents, of rollouts ids, recorded for owner (free with
 * cn_record_batch_free). Returns 0, or -CN_EINTERNAL with err and *out empty. */
int cn_store_record_batch_join(const int64_t *ids, char *const *docs, const size_t *lens, int n, const char *owner,
			       struct cn_record_batch *out, struct cn_err *err);

/* Records that the gateway confirmed `weight` for the rollout's candidate (and, if reconciled, that it had drifted:
 * `found` is what it carried). Only while owner holds the lease and `weight` is still the recorded intent;
 * otherwise -CN_EUNAVAIL and nothing is written. */
int cn_store_weight_confirmed(struct cn_store *st, int64_t id, const char *owner, double weight, bool reconciled,
			      double found, struct cn_err *err);

/* Records why a rollout holds without a tick (gateway or metrics unavailable); audits only a change of reason. */
int cn_store_hold(struct cn_store *st, int64_t id, const char *owner, const char *reason, int64_t next_tick_ms,
		  struct cn_err *err);

/* Queues an operator's command (NOTIFY wakes the daemons). -CN_EINPUT for an unknown or ended rollout.
 * Writes the command id. */
int cn_store_command_add(struct cn_store *st, int64_t id, enum cn_command_kind kind, const char *reason,
			 int64_t *cmd_id, struct cn_err *err);

/* Returns 0 when the connected role may queue commands, else -CN_EPERM with a message naming the role. Lets the CLI
 * say "permission denied" before it judges whether the command fits the rollout's state. */
int cn_store_may_command(struct cn_store *st, struct cn_err *err);

/* Returns 0 when the connected role may execute `function` (a signature such as "canary.start_rollout(text, text,
 * text, text)"), else -CN_EPERM: "permission denied: role 'R' may not WHAT; ...". */
int cn_store_may_call(struct cn_store *st, const char *function, const char *what, struct cn_err *err);

/* Reads a command's result: *done false while unhandled; else *accepted and msg (the refusal's reason). */
int cn_store_command_result(struct cn_store *st, int64_t cmd_id, bool *done, bool *accepted, char *msg,
			    size_t msgsize, struct cn_err *err);

/* One SLO's verdict from the last tick, as `status` shows it. */
struct cn_status_slo {
	const char *slo, *verdict, *why; /* NULL where the stored status has none */
};

/* A rollout as `rollout status` shows it. Strings are NULL where the database has none. */
struct cn_rollout_status {
	int64_t id;
	const char *service, *candidate;
	const char *baseline;           /* NULL: unknown */
	int candidate_slot;
	enum cn_phase phase;
	int step;                       /* -1 before the first step */
	int steps;                      /* steps of the pinned policy */
	double weight;                  /* intended candidate share, percent */
	double applied_weight;          /* last share the gateway confirmed; NAN if never */
	const char *policy;
	int policy_version;
	const char *reason;             /* the controller's: why it is where it is; NULL before canaryd took it up */
	const char *start_reason;       /* the operator's --reason when starting it; NULL if none was given */
	bool has_status;                /* the daemon recorded a tick or command (status_json is an object) */
	const char *status_json;        /* the last tick's status document as stored (jsonb's text), or NULL */
	struct cn_status_slo *slos;     /* its verdicts, in the policy's order */
	size_t nslos;
	const char *features;           /* unit economics per feature, candidate vs baseline, one line; NULL: none */
	int64_t created_us, updated_us; /* microseconds since 1970-01-01 UTC */
	int64_t finished_us;            /* CN_TIME_NONE while active */
	const char *created_by;
	const char *lease_owner;        /* NULL when no daemon holds it */
};

/* Rollouts as `status` reads them. */
struct cn_status_list {
	struct cn_rollout_status *items;
	size_t n;
	struct cn_read *rd;
};

/* Reads one rollout (id > 0: one item, -CN_EINPUT if there is no such id) or every active rollout (id == 0, by id).
 * Writes a new list to *out (cn_status_list_free frees it); returns 0 or -code. */
int cn_store_rollout_status(struct cn_store *st, int64_t id, struct cn_status_list **out, struct cn_err *err);
void cn_status_list_free(struct cn_status_list *l);

#endif
