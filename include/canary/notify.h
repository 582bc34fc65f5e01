/* Notify: webhook delivery for canaryd. The body of one event (the event document, or a Slack message), its
 * signature, and a set of POSTs in flight on libcurl's multi interface, so that a slow receiver holds up none of the
 * others and never the caller's loop. What to deliver and when comes from the store's outbox
 * (canary/store_outbox.h); this module knows nothing of the database. */
#ifndef CANARY_NOTIFY_H
#define CANARY_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canary/err.h"
#include "canary/notify-t.h"

#define CN_NOTIFY_BODY_MAX (64 * 1024) /* a body above this is refused (the payload is a few hundred bytes) */

/* The body to POST for one event: fmt json is the event document (payload_json, from the outbox) with "id": key
 * added; fmt slack is {"text", "blocks"} in words, with the key in the context line. Returns a new string (the
 * caller frees it) or NULL with err (a payload that is not a JSON object: CN_EINPUT). */
char *cn_notify_body(enum cn_notify_format fmt, const char *key, const char *payload_json, struct cn_err *err);

/* One POST to make. Strings are copied. */
struct cn_notify_request {
	int64_t tag;            /* the caller's id for it (the outbox row) */
	const char *url;
	const char *body;
	const char *key;        /* Idempotency-Key */
	const char *event;      /* X-Canary-Event */
	const char *secret;     /* HMAC-SHA256 key for X-Canary-Signature; NULL or "": unsigned */
	size_t secret_len;
	int64_t timeout_ms;     /* the whole attempt, connection included */
};

/* How one POST ended. */
struct cn_notify_result {
	int64_t tag;
	bool delivered;         /* the receiver answered 2xx */
	int status;             /* its HTTP status; 0 when it gave none */
	char error[256];        /* why not delivered, for the log and the outbox row; "" when delivered */
	int64_t elapsed_ms;
};

struct cn_notify_group;

/* A new, empty set (cn_notify_group_free frees it), or NULL with err. */
struct cn_notify_group *cn_notify_group_new(struct cn_err *err);
/* Frees the set, abandoning what is in flight. Accepts NULL. */
void cn_notify_group_free(struct cn_notify_group *g);

/* Starts one POST. Returns 0 or -code (out of memory, or a URL libcurl refuses: CN_EINPUT). */
int cn_notify_group_add(struct cn_notify_group *g, const struct cn_notify_request *req, struct cn_err *err);

/* Moves the POSTs on, waiting up to timeout_ms for progress or for fd (>= 0: another socket the caller waits on)
 * to become readable (*fd_ready). Returns 0 or -code. */
int cn_notify_group_wait(struct cn_notify_group *g, int fd, int timeout_ms, bool *fd_ready, struct cn_err *err);

/* Writes the next finished POST to *out and returns 1, or returns 0 when none has finished. */
int cn_notify_group_next(struct cn_notify_group *g, struct cn_notify_result *out);

/* POSTs in flight. */
size_t cn_notify_group_inflight(const struct cn_notify_group *g);

#endif
