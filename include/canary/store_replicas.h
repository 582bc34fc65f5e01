/* Replicas in PostgreSQL: a daemon's heartbeat in the registry that canary.claim shares the work by
 * (migrations/0015_replicas.sql). */
#ifndef CANARY_STORE_REPLICAS_H
#define CANARY_STORE_REPLICAS_H

#include <stdint.h>

#include "canary/err.h"

struct cn_store;

/* Marks owner live for lease_ms more, between claims (a claim does it too). Returns 0 or a negative error. */
int cn_store_heartbeat(struct cn_store *st, const char *owner, int64_t lease_ms, struct cn_err *err);

#endif
