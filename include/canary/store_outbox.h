/* Store: the notification outbox (migrations/0006_outbox.sql). canaryd leases the rows that are due and first in
 * their stream (a rollout and a URL), delivers them, and records each attempt; the rows themselves are written only
 * by the database, in the transaction of the change they tell about. */
#ifndef CANARY_STORE_OUTBOX_H
#define CANARY_STORE_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canary/err.h"
#include "canary/store.h"

/* One leased notification. Strings belong to the batch. */
struct cn_outbox_item {
	int64_t id;
	const char *key;          /* the idempotency key (a uuid), the same for every attempt */
	const char *event;        /* "rolled_back" ... */
	const char *url;
	int attempts;             /* attempts before this one */
	int64_t created_us;       /* when the change was written (the database's clock) */
	const char *payload;      /* the event document, JSON text, without the key */
	int hook;                 /* the webhook's index in its source's notify list */
	bool from_service;        /* the webhook is the service version's (else the policy version's) */
	const char *source;       /* that version's YAML, where the webhook (and an inline secret) is read from */
};

struct cn_outbox_batch {
	struct cn_outbox_item *items;
	size_t n;
	struct cn_read *rd;
};

/* Leases up to max due notifications to owner for lease_ms (canary.outbox_claim). Writes a new batch (free it with
 * cn_outbox_batch_free) to *out; returns 0 or -code. */
int cn_store_outbox_claim(struct cn_store *s, const char *owner, int64_t lease_ms, int max,
			  struct cn_outbox_batch **out, struct cn_err *err);
void cn_outbox_batch_free(struct cn_outbox_batch *b);

/* Records one attempt (canary.outbox_result): delivered, or failed with the receiver's HTTP status (0: none) and
 * error, to be tried again in retry_ms. Returns 1 if the row changed, 0 if not (delivered meanwhile, or the lease
 * was taken over), or -code. */
int cn_store_outbox_result(struct cn_store *s, int64_t id, const char *owner, bool delivered, int status,
			   const char *error, int64_t retry_ms, struct cn_err *err);

/* The undelivered notifications: how many, and the age of the oldest in ms by the database's clock (0 if none). */
int cn_store_outbox_backlog(struct cn_store *s, int64_t *count, int64_t *oldest_ms, struct cn_err *err);

#endif
