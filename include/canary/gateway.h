/* Gateway adapter: sets and reads the traffic shares of a service's two slots on its gateway: HAProxy's runtime
 * API, nginx (render an include, nginx -t, reload), or a command template for any other gateway. */
#ifndef CANARY_GATEWAY_H
#define CANARY_GATEWAY_H

#include <stdint.h>

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
 * backend sends no traffic to either slot; {NAN, NAN} when the gateway cannot tell what it serves, e.g. an nginx
 * include that was written but not seen loaded, so a reconcile sets the shares again). Returns 0, -CN_EUNAVAIL or
 * -CN_EINTERNAL. */
int cn_gateway_get_weights(struct cn_gateway *gw, double pct[2], struct cn_err *err);

/* For a process that checks many gateways on the same HAProxy over and over (canaryd): from now on, HAProxy
 * gateways answer get_weights from one shared `show servers state` of all backends per runtime API, at most ttl_ms
 * old and begun after that gateway's own last write (0: every get_weights reads its backend, the default). */
void cn_gateway_haproxy_share_checks(int64_t ttl_ms);

/* Tells gw which slot (0 or 1) holds the candidate of the rollout it serves, for adapters that name it (the
 * command gateway's {candidate_*} and {baseline_*} placeholders). Until then: the slot that was not live when the
 * service was first applied. Other values are ignored. */
void cn_gateway_set_candidate(struct cn_gateway *gw, int slot);

/* Frees gw; accepts NULL. */
void cn_gateway_close(struct cn_gateway *gw);

/* The Kubernetes API server a gateway-api or kserve service reaches from this host, found as its client finds it
 * (gateway.kubeconfig and context, the pod's service account, $KUBECONFIG, ~/.kube/config; reads files, does not
 * connect): writes its URL into server and where the credentials come from into origin ("FILE (context NAME)",
 * "the service account in DIR"). Returns 0, or -CN_EINPUT when none are found or the kubeconfig is refused (err
 * says why); server and origin are written only on success. */
int cn_gateway_k8s_server(const struct cn_service *svc, char *server, size_t server_size, char *origin,
			  size_t origin_size, struct cn_err *err);

/* Maps slot 0's share pct0 (percent, 0..100) onto integer weights with w[0] + w[1] <= max_total (>= 2) whose ratio
 * is closest to it, as cn_haproxy_weights_from_pct does for 256 (which calls it): ties go to the smaller total, a
 * share above 0 never maps to weight 0 nor one below 100 to the other side's 0. Worst-case error about
 * 100 / (4 * max_total) percentage points (0.098 for 256, 0.025 for 1000). Returns 0, or -CN_EINPUT if pct0 is NaN
 * or outside 0..100 or max_total < 2 (w untouched). */
int cn_weights_from_pct(double pct0, int max_total, int w[2], struct cn_err *err);

/* nginx: weights are positive integers (weight=0 is refused; a 0 share is written `down`); canary keeps the two
 * weights' total at most 1000. */
#define CN_NGINX_WEIGHT_MAX 1000

/* Writes the include file's text for servers addr[0] and addr[1] of service `service` at weights w (a weight 0 is
 * written `down`) into buf: a comment naming the service, slots and shares, then one `server ADDR weight=N;` line
 * per slot. The same inputs give the same bytes. Returns the length, or -1 if it does not fit in size. */
int cn_nginx_render(const char *service, const char *const slot[2], const char *const addr[2], const int w[2],
		    char *buf, size_t size);

/* Reads back an include file's text: the weights of the servers addr[0] and addr[1] (`down` is 0; no weight= is 1)
 * into w. Comments and blank lines are skipped; any other line, a server that is neither address, or an address
 * twice or missing is an error (-CN_EINTERNAL, naming the line). w is written only on success. */
int cn_nginx_parse(const char *text, const char *const addr[2], int w[2], struct cn_err *err);

/* The command gateway's `get` output: a JSON object with each slot's share (percent or weight, >= 0) under its
 * name, e.g. {"blue": 95, "green": 5}; normalised so the two sum to 100 ({0, 0} when both are 0). Returns 0 or
 * -CN_EINTERNAL (not JSON, not an object, a slot missing, another key, a value not a number >= 0), the message
 * quoting the output. pct is written only on success. */
int cn_command_parse_shares(const char *json, size_t len, const char *const slot[2], double pct[2],
			    struct cn_err *err);

/* The text a share is passed to the command gateway as: rounded to 0.01, without trailing zeros ("5", "0.5",
 * "33.33"). */
void cn_command_format_pct(double pct, char *buf, size_t size);

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
