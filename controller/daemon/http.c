/* canaryd's HTTP endpoint: /healthz for liveness probes and /metrics in Prometheus text format. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/addr.h"
#include "canary/clock.h"
#include "daemon_int.h"

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	(void)version;
	(void)upload;
	(void)upload_size;
	(void)con_cls;
	struct daemon *d = cls;
	char body[4096];
	unsigned status = MHD_HTTP_OK;
	const char *ctype = "text/plain; version=0.0.4";
	if (strcmp(method, "GET") != 0) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		snprintf(body, sizeof body, "method not allowed\n");
	} else if (strcmp(url, "/healthz") == 0) {
		bool ok = atomic_load(&d->stats.healthy);
		status = ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
		snprintf(body, sizeof body, ok ? "ok\n" : "database unavailable\n");
	} else if (strcmp(url, "/metrics") == 0) {
		snprintf(body, sizeof body,
			 "# HELP canaryd_ticks_total Rollout ticks judged.\n# TYPE canaryd_ticks_total counter\n"
			 "canaryd_ticks_total %llu\n"
			 "# HELP canaryd_tick_errors_total Rollout ticks that failed.\n"
			 "# TYPE canaryd_tick_errors_total counter\ncanaryd_tick_errors_total %llu\n"
			 "# HELP canaryd_commands_total Operator commands handled.\n"
			 "# TYPE canaryd_commands_total counter\ncanaryd_commands_total %llu\n"
			 "# HELP canaryd_gateway_errors_total Gateway calls that failed.\n"
			 "# TYPE canaryd_gateway_errors_total counter\ncanaryd_gateway_errors_total %llu\n"
			 "# HELP canaryd_metrics_errors_total Metric reads that failed.\n"
			 "# TYPE canaryd_metrics_errors_total counter\ncanaryd_metrics_errors_total %llu\n"
			 "# HELP canaryd_claims_total Rollouts claimed.\n"
			 "# TYPE canaryd_claims_total counter\ncanaryd_claims_total %llu\n"
			 "# HELP canaryd_rollouts_owned Rollouts this daemon holds a context for.\n"
			 "# TYPE canaryd_rollouts_owned gauge\ncanaryd_rollouts_owned %llu\n"
			 "# HELP canaryd_up 1 while the database answers.\n# TYPE canaryd_up gauge\ncanaryd_up %d\n"
			 "# HELP canaryd_notify_delivered_total Webhook notifications this daemon delivered.\n"
			 "# TYPE canaryd_notify_delivered_total counter\ncanaryd_notify_delivered_total %llu\n"
			 "# HELP canaryd_notify_failed_attempts_total Webhook delivery attempts that failed (retried later).\n"
			 "# TYPE canaryd_notify_failed_attempts_total counter\ncanaryd_notify_failed_attempts_total %llu\n"
			 "# HELP canaryd_notify_backlog Notifications not delivered yet (the whole outbox, every daemon's).\n"
			 "# TYPE canaryd_notify_backlog gauge\ncanaryd_notify_backlog %llu\n"
			 "# HELP canaryd_notify_oldest_undelivered_seconds Age of the oldest undelivered notification.\n"
			 "# TYPE canaryd_notify_oldest_undelivered_seconds gauge\n"
			 "canaryd_notify_oldest_undelivered_seconds %.3f\n"
			 "# HELP canaryd_sla_minutes_total SLA ledger minutes this daemon recorded, by whether they had numbers.\n"
			 "# TYPE canaryd_sla_minutes_total counter\ncanaryd_sla_minutes_total{data=\"yes\"} %llu\n"
			 "canaryd_sla_minutes_total{data=\"no\"} %llu\n"
			 "# HELP canaryd_sla_errors_total SLA ledger minutes that could not be written.\n"
			 "# TYPE canaryd_sla_errors_total counter\ncanaryd_sla_errors_total %llu\n"
			 "# HELP canaryd_sla_pruned_total SLA ledger minutes this daemon deleted (--sla-retention).\n"
			 "# TYPE canaryd_sla_pruned_total counter\ncanaryd_sla_pruned_total %llu\n",
			 (unsigned long long)atomic_load(&d->stats.ticks),
			 (unsigned long long)atomic_load(&d->stats.tick_errors),
			 (unsigned long long)atomic_load(&d->stats.commands),
			 (unsigned long long)atomic_load(&d->stats.gateway_errors),
			 (unsigned long long)atomic_load(&d->stats.metrics_errors),
			 (unsigned long long)atomic_load(&d->stats.claims),
			 (unsigned long long)atomic_load(&d->stats.rollouts_owned), atomic_load(&d->stats.healthy),
			 (unsigned long long)atomic_load(&d->stats.notify_delivered),
			 (unsigned long long)atomic_load(&d->stats.notify_failed),
			 (unsigned long long)atomic_load(&d->stats.notify_backlog),
			 (double)atomic_load(&d->stats.notify_oldest_ms) / 1000.0,
			 (unsigned long long)atomic_load(&d->stats.sla_recorded),
			 (unsigned long long)atomic_load(&d->stats.sla_nodata),
			 (unsigned long long)atomic_load(&d->stats.sla_errors),
			 (unsigned long long)atomic_load(&d->stats.sla_pruned));
	} else {
		status = MHD_HTTP_NOT_FOUND;
		snprintf(body, sizeof body, "not found; try /healthz or /metrics\n");
	}
	struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", ctype);
	enum MHD_Result r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

/* libmicrohttpd's own errors, at most one line per 10 s with how many were left out: out of descriptors, MHD would
 * otherwise write one line per failed accept (about a million lines in 35 s under ulimit -n 1024). */
static void http_log(void *cls, const char *fmt, va_list ap)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static int64_t last_ms;
	static long suppressed;
	char msg[256];
	(void)cls;
	vsnprintf(msg, sizeof msg, fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	pthread_mutex_lock(&lock);
	int64_t now = cn_mono_ms();
	if (last_ms != 0 && now - last_ms < 10000) {
		suppressed++;
		pthread_mutex_unlock(&lock);
		return;
	}
	long left_out = suppressed;
	suppressed = 0;
	last_ms = now;
	pthread_mutex_unlock(&lock);
	bool fds = strstr(msg, "descriptor") || strstr(msg, "Too many open files");
	dlog("error", "http.error", dstr("error", msg), dint("suppressed", left_out),
	     dstr("hint", fds ? "out of file descriptors: raise the limit (ulimit -n, LimitNOFILE=) or run fewer rollouts "
			       "per canaryd" : NULL));
}

void *daemon_http_start(struct daemon *d, struct cn_err *err)
{
	const char *listen = d->cfg.listen;
	struct cn_addr a;
	struct cn_err e = { 0 };
	if (cn_addr_parse(listen, "--listen", CN_ADDR_PORT_ZERO, &a, &e) < 0) {
		cn_fail(err, CN_EUSAGE, "%s", e.msg);
		return NULL;
	}
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(a.port_num);
	if (inet_pton(AF_INET, a.host, &sa.sin_addr) != 1) {
		cn_fail(err, CN_EUSAGE, "--listen '%s': '%s' is not an IPv4 address", listen, a.host);
		return NULL;
	}
	/* epoll (MHD's "auto" on Linux), never select(): canaryd may hold more than FD_SETSIZE descriptors, and a
	 * select() server then stops answering /healthz, so a liveness probe would restart a healthy daemon */
	struct MHD_Daemon *h = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
						answer, d, MHD_OPTION_EXTERNAL_LOGGER, http_log, NULL,
						MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
	if (!h)
		cn_fail(err, CN_EUNAVAIL, "cannot listen on '%s' for /healthz and /metrics; is the port in use?", listen);
	return h;
}

void daemon_http_stop(void *h)
{
	if (h)
		MHD_stop_daemon(h);
}
