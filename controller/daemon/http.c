/* canaryd's HTTP endpoint: /healthz for liveness probes and /metrics in Prometheus text format. */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "canary/addr.h"
#include "canary/clock.h"
#include "daemon_fd_int.h"
#include "daemon_int.h"

static int put(char *buf, size_t size, size_t *off, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int put(char *buf, size_t size, size_t *off, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf + *off, size - *off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size - *off)
		return -1;
	*off += (size_t)n;
	return 0;
}

static int hist(char *buf, size_t size, size_t *off, const char *name, const char *help, const struct daemon_hist *h)
{
	int rc = put(buf, size, off, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	unsigned long long cum = 0;
	for (int i = 0; i < DAEMON_HIST_N && rc == 0; i++) {
		cum += atomic_load(&h->count[i]);
		if (i == DAEMON_HIST_N - 1)
			rc = put(buf, size, off, "%s_bucket{le=\"+Inf\"} %llu\n", name, cum);
		else
			rc = put(buf, size, off, "%s_bucket{le=\"%g\"} %llu\n", name, daemon_hist_bounds[i], cum);
	}
	if (rc == 0)
		rc = put(buf, size, off, "%s_sum %.6f\n%s_count %llu\n", name,
			 (double)atomic_load(&h->sum_us) / 1e6, name, cum);
	return rc;
}

/* What an operator needs at scale (issue 13): database round trips, tick lateness, round duration, scrape errors by
 * cause. Appended to the page; returns 0 or -1 when it does not fit. */
static int scale_metrics(struct daemon *d, char *buf, size_t size)
{
	static const char *const causes[SCRAPE_NCAUSES] = {"timeout", "connect", "http_status", "page"};
	size_t off = 0;
	int rc = put(buf, size, &off, "# HELP canaryd_db_round_trips_total Statements sent to the database by the "
		     "control loop.\n# TYPE canaryd_db_round_trips_total counter\ncanaryd_db_round_trips_total %llu\n"
		     "# HELP canaryd_scrape_errors_total Metric pages that could not be used, by cause.\n"
		     "# TYPE canaryd_scrape_errors_total counter\n",
		     (unsigned long long)atomic_load(&d->stats.db_round_trips));
	for (int i = 0; i < SCRAPE_NCAUSES && rc == 0; i++)
		rc = put(buf, size, &off, "canaryd_scrape_errors_total{cause=\"%s\"} %llu\n", causes[i],
			 (unsigned long long)atomic_load(&d->stats.scrape_errors[i]));
	if (rc == 0)
		rc = put(buf, size, &off, "# HELP canaryd_state_reads_total Rollout states a round needed, by where they "
			 "came from: held since the daemon recorded them, or read from the database.\n"
			 "# TYPE canaryd_state_reads_total counter\ncanaryd_state_reads_total{source=\"held\"} %llu\n"
			 "canaryd_state_reads_total{source=\"database\"} %llu\n",
			 (unsigned long long)atomic_load(&d->stats.state_held),
			 (unsigned long long)atomic_load(&d->stats.state_read));
	if (rc == 0)
		rc = put(buf, size, &off, "# HELP canaryd_ticks_deferred_total Due ticks left for a later claim because "
			 "1024 metric reads were already pending (the daemon is behind: add replicas).\n"
			 "# TYPE canaryd_ticks_deferred_total counter\ncanaryd_ticks_deferred_total %llu\n",
			 (unsigned long long)atomic_load(&d->stats.reads_deferred));
	if (rc == 0)
		rc = hist(buf, size, &off, "canaryd_tick_lateness_seconds",
			  "Time from a tick falling due (database clock) to the daemon judging it.", &d->stats.lateness);
	if (rc == 0)
		rc = hist(buf, size, &off, "canaryd_round_duration_seconds",
			  "One claim round: the claim, the rows and every claimed rollout's turn.", &d->stats.round);
	if (rc == 0)
		rc = hist(buf, size, &off, "canaryd_command_seconds",
			  "An operator's command from queued (database clock) to recorded and the gateway moved.",
			  &d->stats.command);
	return rc;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	(void)version;
	(void)upload;
	(void)upload_size;
	(void)con_cls;
	struct daemon *d = cls;
	char body[16384];
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
			 "# TYPE canaryd_sla_pruned_total counter\ncanaryd_sla_pruned_total %llu\n"
			 "# HELP canaryd_sla_services_observed Services whose pages this daemon's SLA observer reads (two "
			 "live observers read each one).\n"
			 "# TYPE canaryd_sla_services_observed gauge\ncanaryd_sla_services_observed %llu\n",
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
			 (unsigned long long)atomic_load(&d->stats.sla_pruned),
			 (unsigned long long)atomic_load(&d->stats.sla_watched));
		size_t off = strlen(body);
		snprintf(body + off, sizeof body - off,
			 "# HELP canaryd_fd_limit The file descriptor limit canaryd runs under (LimitNOFILE, ulimit -n).\n"
			 "# TYPE canaryd_fd_limit gauge\ncanaryd_fd_limit %ld\n"
			 "# HELP canaryd_fd_exhausted_total Calls that failed for want of a file descriptor.\n"
			 "# TYPE canaryd_fd_exhausted_total counter\ncanaryd_fd_exhausted_total %llu\n",
			 daemon_fd_limit(), daemon_fd_exhausted_total());
		/* the heap, every malloc arena together: what is in use, and what is free but still held (RSS beyond
		 * in use is fragmentation or free memory not yet given back; canaryd trims once a minute) */
		struct mallinfo2 mi = mallinfo2();
		off = strlen(body);
		snprintf(body + off, sizeof body - off,
			 "# HELP canaryd_heap_in_use_bytes Bytes of heap canaryd's allocations hold (mmapped ones too).\n"
			 "# TYPE canaryd_heap_in_use_bytes gauge\ncanaryd_heap_in_use_bytes %zu\n"
			 "# HELP canaryd_heap_free_bytes Bytes the heap holds free between allocations (not given back).\n"
			 "# TYPE canaryd_heap_free_bytes gauge\ncanaryd_heap_free_bytes %zu\n"
			 "# HELP canaryd_heap_trims_total Times canaryd gave the heap's free pages back (malloc_trim).\n"
			 "# TYPE canaryd_heap_trims_total counter\ncanaryd_heap_trims_total %llu\n"
			 "# HELP canaryd_heap_trim_seconds_total Time those took, on the control loop.\n"
			 "# TYPE canaryd_heap_trim_seconds_total counter\ncanaryd_heap_trim_seconds_total %.6f\n",
			 mi.uordblks + mi.hblkhd, mi.fordblks, (unsigned long long)atomic_load(&d->stats.heap_trims),
			 (double)atomic_load(&d->stats.heap_trim_us) / 1e6);
		off = strlen(body);
		if (scale_metrics(d, body + off, sizeof body - off) < 0) {
			status = MHD_HTTP_INTERNAL_SERVER_ERROR;
			snprintf(body, sizeof body, "metrics page too long\n");
		}
	} else if (strcmp(url, "/debug/heap") == 0) {
		/* glibc's own report of every malloc arena (malloc_info): sizes of the free chunks each holds, for an
		 * operator who sees RSS well above canaryd_heap_in_use_bytes */
		char *xml = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&xml, &len);
		bool ok = f && malloc_info(0, f) == 0;
		if (f && fclose(f) != 0)
			ok = false;
		if (ok) {
			struct MHD_Response *resp = MHD_create_response_from_buffer(len, xml, MHD_RESPMEM_MUST_FREE);
			if (!resp) {
				free(xml);
				return MHD_NO;
			}
			MHD_add_response_header(resp, "Content-Type", "application/xml");
			enum MHD_Result r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
			MHD_destroy_response(resp);
			return r;
		}
		free(xml);
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		snprintf(body, sizeof body, "cannot write the heap's report (out of memory)\n");
	} else {
		status = MHD_HTTP_NOT_FOUND;
		snprintf(body, sizeof body, "not found; try /healthz, /metrics or /debug/heap\n");
	}
	struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", ctype);
	enum MHD_Result r = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

/* libmicrohttpd's own errors, at most one line per 10 s with how many were left out. */
static void http_log(void *cls, const char *fmt, va_list ap)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static int64_t last_ms;
	static long suppressed;
	char msg[256];
	(void)cls;
	vsnprintf(msg, sizeof msg, fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	if (daemon_fd_check("http", msg))
		return;
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
	dlog("error", "http.error", dstr("error", msg), dint("suppressed", left_out));
}

/* The endpoint: libmicrohttpd serves the connections, canaryd accepts them. libmicrohttpd 0.9.75 (Debian 12) retries
 * a failed accept() at once when it has no connection open, so out of descriptors it spun on the listening socket
 * (a core, and a log line per try). Here accept() waits for the socket to be readable, and out of descriptors it
 * frees a reserved one to take the connection (so /healthz still answers) or, with none to free, waits a moment. */
struct http {
	struct MHD_Daemon *mhd;
	int lfd;          /* the listening socket */
	int reserve;      /* /dev/null, kept to be closed when accept() runs out of descriptors; -1: spent */
	atomic_int stop;
	pthread_t thread;
};

#define HTTP_CONNECTIONS_MAX 64 /* probes and scrapes at once; more wait in the backlog */
#define HTTP_FULL_WAIT_MS 100   /* out of descriptors with no reserve left: retry after this long */

static void *http_accept_loop(void *arg)
{
	struct http *h = arg;
	while (!atomic_load(&h->stop)) {
		struct pollfd p = { .fd = h->lfd, .events = POLLIN };
		if (poll(&p, 1, 200) <= 0)
			continue;
		if (h->reserve < 0)
			h->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
		struct sockaddr_storage sa;
		socklen_t len = sizeof sa;
		int fd = accept4(h->lfd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
			daemon_fd_check("accept", strerror(errno));
			if (h->reserve >= 0) {
				close(h->reserve); /* the connection takes its place */
				h->reserve = -1;
				len = sizeof sa;
				fd = accept4(h->lfd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
			}
			if (fd < 0) {
				poll(NULL, 0, HTTP_FULL_WAIT_MS);
				continue;
			}
		}
		if (fd < 0)
			continue; /* EAGAIN, a client gone before accept(), EINTR: the next poll() tells */
		MHD_add_connection(h->mhd, fd, (struct sockaddr *)&sa, len); /* closes fd if it cannot serve it */
	}
	return NULL;
}

static void http_free(struct http *h)
{
	if (!h)
		return;
	if (h->mhd)
		MHD_stop_daemon(h->mhd);
	if (h->lfd >= 0)
		close(h->lfd);
	if (h->reserve >= 0)
		close(h->reserve);
	free(h);
}

void *daemon_http_start(struct daemon *d, struct cn_err *err)
{
	const char *listen_on = d->cfg.listen;
	struct cn_addr a;
	struct cn_err e = { 0 };
	struct http *h = NULL;
	if (cn_addr_parse(listen_on, "--listen", CN_ADDR_PORT_ZERO, &a, &e) < 0) {
		cn_fail(err, CN_EUSAGE, "%s", e.msg);
		return NULL;
	}
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(a.port_num);
	if (inet_pton(AF_INET, a.host, &sa.sin_addr) != 1) {
		cn_fail(err, CN_EUSAGE, "--listen '%s': '%s' is not an IPv4 address", listen_on, a.host);
		return NULL;
	}
	if (!(h = calloc(1, sizeof *h))) {
		cn_fail(err, CN_EINTERNAL, "out of memory");
		return NULL;
	}
	h->lfd = h->reserve = -1;
	int one = 1;
	h->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->lfd < 0 || setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(h->lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(h->lfd, 64) < 0) {
		cn_fail(err, CN_EUNAVAIL, "cannot listen on '%s' for /healthz and /metrics: %s; is the port in use?",
			listen_on, strerror(errno));
		goto fail;
	}
	h->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
	/* epoll, else poll; never select(): canaryd may hold more than FD_SETSIZE descriptors, and a select() server
	 * then stops answering /healthz, so a liveness probe would restart a healthy daemon */
	unsigned flags = MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL_INTERNAL_THREAD
									       : MHD_USE_POLL_INTERNAL_THREAD;
	h->mhd = MHD_start_daemon(flags | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0, NULL, NULL,
				  answer, d, MHD_OPTION_EXTERNAL_LOGGER, http_log, NULL, MHD_OPTION_CONNECTION_LIMIT,
				  (unsigned)HTTP_CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (!h->mhd) {
		cn_fail(err, CN_EINTERNAL, "cannot start the HTTP server for /healthz and /metrics on '%s'", listen_on);
		goto fail;
	}
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old); /* signals go to the main loop */
	int rc = pthread_create(&h->thread, NULL, http_accept_loop, h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		cn_fail(err, CN_EINTERNAL, "cannot start the HTTP accept thread: %s", strerror(rc));
		goto fail;
	}
	return h;
fail:
	http_free(h);
	return NULL;
}

void daemon_http_stop(void *handle)
{
	struct http *h = handle;
	if (!h)
		return;
	atomic_store(&h->stop, 1);
	pthread_join(h->thread, NULL);
	http_free(h);
}
