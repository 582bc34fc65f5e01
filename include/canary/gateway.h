/* Gateway adapter: sets and reads the traffic shares of a service's two slots on its gateway (HAProxy first). */
#ifndef CANARY_GATEWAY_H
#define CANARY_GATEWAY_H

#include "canary/err.h"
#include "canary/service-t.h"

struct cn_gateway;

/* Opens a gateway client for svc's binding (svc is copied); returns a new client that cn_gateway_close frees, or
 * NULL with err set (-CN_EINPUT for a runtime_api address that cannot be parsed). Does not connect yet. */
struct cn_gateway *cn_gateway_open(const struct cn_service *svc, struct cn_err *err);

/* Sets the slots' traffic shares (pct[0] for slot 0, pct[1] for slot 1, percent, sum 100), makes both servers
 * ready (not in maintenance), then reads them back to confirm. Idempotent. Returns 0, -CN_EINPUT (bad pct),
 * -CN_EUNAVAIL (cannot reach the gateway in time) or -CN_EINTERNAL (unexpected answer, quoted in err). HAProxy:
 * each runtime API command (one connection) is bounded by gateway.timeout_ms; a call makes at most 6 of them. */
int cn_gateway_set_weights(struct cn_gateway *gw, const double pct[2], struct cn_err *err);

/* Reads the current shares in percent into pct (written only on success; {0, 0} when both weights are 0, i.e. the
 * backend sends no traffic to either slot). Returns 0, -CN_EUNAVAIL or -CN_EINTERNAL. */
int cn_gateway_get_weights(struct cn_gateway *gw, double pct[2], struct cn_err *err);

/* Frees gw; accepts NULL. */
void cn_gateway_close(struct cn_gateway *gw);

/* HAProxy weights are integers 0..256 per server. */
#define CN_HAPROXY_WEIGHT_MAX 256

/* Maps slot 0's share pct0 (percent, 0..100) onto HAProxy weights w[0] + w[1] <= 256 whose ratio is closest to it;
 * ties go to the smaller total. A share above 0 never maps to weight 0 (nor one below 100 to the other side's 0).
 * Worst-case error: 100/1020 = 0.098 percentage points for shares in [100/256, 100 - 100/256] (half the widest
 * gap between fractions with denominators <= 256, next to 1/2); a share below 100/256 = 0.39 % becomes 0.39 %, the
 * smallest non-zero share HAProxy can express. Returns 0, or -CN_EINPUT if pct0 is NaN or
 * outside 0..100 (w untouched). */
int cn_haproxy_weights_from_pct(double pct0, int w[2], struct cn_err *err);

/* Converts weights back to shares in percent; both 0 gives {0, 0}. */
void cn_haproxy_pct_from_weights(const int w[2], double pct[2]);

/* Chooses which slot's weight to write first when going from weights cur to next: the one whose in-between state
 * strays least outside the old..new share range (zero for the mapping's usual steps, e.g. 0/1 -> 1/99 writes slot 1
 * first), never both weights 0; ties give less to the slot with the smaller new share. Returns 0 or 1. */
int cn_haproxy_first_write(const int cur[2], const int next[2]);

#endif
