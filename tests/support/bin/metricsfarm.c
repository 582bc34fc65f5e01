/* metricsfarm: one process that serves the /metrics pages of many simulated model servers, for the scale
 * benchmark (bench/scale.sh) and the replica e2e: GET /metrics/<service>/<slot> answers a vLLM-style page whose
 * counters advance with time (requests at --rate per second since the farm started, --error-rate of them 500s,
 * latency and time-to-first-token histograms on vLLM's buckets from log-normal shares). Pages are computed, not
 * stored, so any number of services costs nothing until asked. --page-bytes pads every page with comment lines to
 * that size (a hostile 1 MB page). Not a test: a program the tests and the bench run.
 *   metricsfarm [--port P] [--rate R] [--error-rate E] [--page-bytes N]   prints "listening on 127.0.0.1:PORT" */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim_model.h"

#define PAGE_MAX (64u << 20)

struct farm {
	double rate, error_rate;
	size_t page_bytes;
	struct timespec t0;
	unsigned long long served;
};

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double since_start(const struct farm *f)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)(ts.tv_sec - f->t0.tv_sec) + (double)(ts.tv_nsec - f->t0.tv_nsec) / 1e9;
}

/* Share of a log-normal(median, sigma) at or below x. */
static double lognormal_cdf(double x, double median, double sigma)
{
	return 0.5 * erfc(-log(x / median) / (sigma * sqrt(2.0)));
}

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

/* A histogram whose cumulative bucket counts are floor(n * cdf(le)): monotone across buckets and over time. */
static int hist(char *buf, size_t size, size_t *off, const char *name, const char *labels, const double *le, int nle,
		uint64_t n, double median, double sigma)
{
	int rc = put(buf, size, off, "# TYPE %s histogram\n", name);
	for (int i = 0; i < nle && rc == 0; i++)
		rc = put(buf, size, off, "%s_bucket{%s,le=\"%g\"} %" PRIu64 "\n", name, labels, le[i],
			 (uint64_t)floor((double)n * lognormal_cdf(le[i], median, sigma)));
	if (rc == 0)
		rc = put(buf, size, off, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n%s_count{%s} %" PRIu64 "\n"
			 "%s_sum{%s} %.3f\n", name, labels, n, name, labels, n, name, labels, (double)n * median);
	return rc;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	(void)version; (void)upload; (void)upload_size; (void)con_cls;
	struct farm *f = cls;
	char svc[128], slot[64];
	int status = 200;
	size_t size = f->page_bytes > 16384 ? f->page_bytes + 4096 : 16384, off = 0;
	char *buf = malloc(size);
	if (!buf)
		return MHD_NO;
	if (strcmp(method, "GET") != 0 || sscanf(url, "/metrics/%127[A-Za-z0-9._-]/%63[A-Za-z0-9._-]", svc, slot) != 2) {
		status = 404;
		put(buf, size, &off, "not found: GET /metrics/SERVICE/SLOT\n");
	} else {
		double t = since_start(f);
		uint64_t req = (uint64_t)(f->rate * (t + 1000.0)); /* a server that has been up a while */
		uint64_t err = (uint64_t)floor((double)req * f->error_rate);
		char labels[256];
		snprintf(labels, sizeof labels, "model_name=\"%s-%s\"", svc, slot);
		int rc = hist(buf, size, &off, "vllm:e2e_request_latency_seconds", labels, sim_vllm_e2e_buckets,
			      sim_vllm_e2e_nbuckets, req - err, 0.2, 0.3);
		rc |= hist(buf, size, &off, "vllm:time_to_first_token_seconds", labels, sim_vllm_ttft_buckets,
			   sim_vllm_ttft_nbuckets, req - err, 0.05, 0.3);
		rc |= put(buf, size, &off, "# TYPE http_requests_total counter\nhttp_requests_total{status=\"200\"} %"
			  PRIu64 "\nhttp_requests_total{status=\"500\"} %" PRIu64 "\n", req - err, err);
		while (rc == 0 && off + 80 < f->page_bytes)
			rc = put(buf, size, &off, "# padding: a large page of series nobody asked for %020zu\n", off);
		if (rc) {
			status = 500;
			off = 0;
			put(buf, size, &off, "page too large\n");
		}
	}
	__atomic_add_fetch(&f->served, 1, __ATOMIC_RELAXED);
	struct MHD_Response *r = MHD_create_response_from_buffer(off, buf, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(buf);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static double num_arg(const char *opt, const char *s, double min, double max)
{
	char *end = NULL;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || !end || *end || !(v >= min && v <= max)) {
		fprintf(stderr, "metricsfarm: %s '%s' is not a number in %g..%g\n", opt, s, min, max);
		exit(64);
	}
	return v;
}

int main(int argc, char **argv)
{
	struct farm f = {.rate = 100, .error_rate = 0.005};
	unsigned port = 0;
	static const struct option opts[] = {
		{"port", required_argument, NULL, 'p'},       {"rate", required_argument, NULL, 'r'},
		{"error-rate", required_argument, NULL, 'e'}, {"page-bytes", required_argument, NULL, 'b'},
		{NULL, 0, NULL, 0},
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'p': port = (unsigned)num_arg("--port", optarg, 0, 65535); break;
		case 'r': f.rate = num_arg("--rate", optarg, 0, 1e7); break;
		case 'e': f.error_rate = num_arg("--error-rate", optarg, 0, 1); break;
		case 'b': f.page_bytes = (size_t)num_arg("--page-bytes", optarg, 0, PAGE_MAX); break;
		default:
			fprintf(stderr, "usage: metricsfarm [--port P] [--rate R] [--error-rate E] [--page-bytes N]\n");
			return 64;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &f.t0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
						0, NULL, NULL, answer, &f, MHD_OPTION_SOCK_ADDR, &addr,
						MHD_OPTION_THREAD_POOL_SIZE, 2u, MHD_OPTION_CONNECTION_LIMIT, 16000u,
						MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
						MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "metricsfarm: cannot listen on 127.0.0.1:%u\n", port);
		return 69;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("listening on 127.0.0.1:%u\n", info ? info->port : port);
	fflush(stdout);
	while (!stop)
		usleep(100 * 1000);
	MHD_stop_daemon(d);
	fprintf(stderr, "metricsfarm: %llu pages served\n", f.served);
	return 0;
}
