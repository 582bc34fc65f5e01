/* Replicas: the daemon's heartbeat in the registry canary.claim shares the work by (canary/store_replicas.h). */
#include "canary/store_replicas.h"

#include <stdio.h>

#include "canary/bug.h"
#include "store_int.h"

int cn_store_heartbeat(struct cn_store *st, const char *owner, int64_t lease_ms, struct cn_err *err)
{
	CN_BUG_ON(!owner || lease_ms <= 0);
	char lease[32];
	snprintf(lease, sizeof lease, "%lld", (long long)lease_ms);
	const char *p[] = {owner, lease};
	return cn_store_run(st, "send a heartbeat", "SELECT canary.heartbeat($1, $2)", 2, p, err);
}
