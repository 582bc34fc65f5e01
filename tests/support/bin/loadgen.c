/* loadgen: a bounded HTTP load generator for tests and demos. Sends requests to one loopback URL at a target rate
 * (open loop: request k is due at start + k/rate, whatever the answers do, as long as fewer than --concurrency are in
 * flight), with keep-alive connections through libcurl's multi interface; stops at --duration or --max-requests,
 * whichever comes first, and prints one JSON summary line: counts per status code, per server (the X-Served-By
 * header), the achieved rate and client-side latency quantiles. Refuses any host that is not loopback. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DURATION_MAX 600.0       /* seconds */
#define RATE_MAX 100000.0        /* requests per second */
#define REQUESTS_MAX 10000000L
#define CONC_MAX 1024L
#define SERVERS_MAX 16
#define SERVER_NAME_MAX 64
#define LAT_BUCKETS 420          /* log buckets of 5%, from 1 us to about 15 minutes */
#define GRACE_S 5.0              /* after the end, in-flight requests get this long before they are aborted */

struct opts {
	const char *url;
	const char *body;        /* POST this JSON if set, else GET */
	double rate, duration, report_every, timeout;
	long concurrency, max_requests;
};

struct slot {
	CURL *easy;
	double t0;
	char served[SERVER_NAME_MAX];
	struct slot *next_free;
};

struct stats {
	long sent, completed, transport_errors, aborted;
	long status[600];        /* by HTTP status; 0 unused */
	int nservers;
	char server[SERVERS_MAX][SERVER_NAME_MAX];
	long served[SERVERS_MAX + 1]; /* the last one: other servers beyond SERVERS_MAX */
	long no_server;
	long lat[LAT_BUCKETS];
	double lat_max;
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: loadgen --url http://127.0.0.1:PORT/PATH --rate R --duration D [--concurrency C]\n"
		   "               [--max-requests N] [--report-every S] [--body JSON] [--timeout S]\n"
		   "  stops at D seconds (<= %g) or N requests (<= %ld), whichever comes first;\n"
		   "  only loopback hosts (127.0.0.0/8, ::1, localhost) are allowed.\n",
		DURATION_MAX, REQUESTS_MAX);
}

static int parse_double(const char *s, double min, double max, double *out)
{
	char *end = NULL;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !isfinite(v) || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Returns 0 if url is http:// to a loopback host, else -1 with a message on stderr. For "localhost" it writes a
 * CURLOPT_RESOLVE entry into pin (else pin[0] = 0) so that the name cannot resolve anywhere else. */
static int check_url(const char *url, char *pin, size_t pin_size)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	pin[0] = '\0';
	int rc = -1;
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
		fprintf(stderr, "loadgen: --url '%s': not a valid url\n", url);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || strcmp(scheme, "http") != 0) {
		fprintf(stderr, "loadgen: --url '%s': only http:// is supported\n", url);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		fprintf(stderr, "loadgen: --url '%s': no host\n", url);
		goto out;
	}
	struct in_addr a4;
	struct in6_addr a6;
	char h[128];
	size_t hl = strlen(host);
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof h) {
		memcpy(h, host + 1, hl - 2);
		h[hl - 2] = '\0';
	} else {
		snprintf(h, sizeof h, "%s", host);
	}
	if (strcasecmp(h, "localhost") == 0) {
		if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
			fprintf(stderr, "loadgen: --url '%s': no port\n", url);
			goto out;
		}
		snprintf(pin, pin_size, "%s:%s:127.0.0.1", host, port);
		rc = 0;
	} else if (
	    (inet_pton(AF_INET, h, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127) ||
	    (inet_pton(AF_INET6, h, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6))) {
		rc = 0;
	} else {
		fprintf(stderr, "loadgen: --url host '%s': refused, only loopback hosts (127.0.0.0/8, ::1, localhost) "
				"may be loaded\n", host);
	}
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

static size_t discard(char *ptr, size_t size, size_t n, void *ud)
{
	(void)ptr;
	(void)ud;
	return size * n;
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
	struct slot *s = ud;
	size_t len = size * n;
	static const char key[] = "x-served-by:";
	if (len > sizeof key - 1 && strncasecmp(buf, key, sizeof key - 1) == 0) {
		size_t i = sizeof key - 1;
		while (i < len && (buf[i] == ' ' || buf[i] == '\t'))
			i++;
		size_t j = len;
		while (j > i && (buf[j - 1] == '\r' || buf[j - 1] == '\n' || buf[j - 1] == ' '))
			j--;
		size_t vl = j - i < SERVER_NAME_MAX - 1 ? j - i : SERVER_NAME_MAX - 1;
		memcpy(s->served, buf + i, vl);
		s->served[vl] = '\0';
	}
	return len;
}

static int lat_bucket(double seconds)
{
	double us = seconds * 1e6;
	if (us <= 1)
		return 0;
	int b = (int)ceil(log(us) / log(1.05));
	return b >= LAT_BUCKETS ? LAT_BUCKETS - 1 : b;
}

/* Upper bound of a latency bucket, milliseconds. */
static double lat_bound_ms(int b)
{
	return pow(1.05, b) / 1000.0;
}

static double lat_quantile_ms(const struct stats *st, double q)
{
	long total = 0, seen = 0;
	for (int i = 0; i < LAT_BUCKETS; i++)
		total += st->lat[i];
	if (total == 0)
		return 0;
	long rank = (long)ceil(q * (double)total);
	for (int i = 0; i < LAT_BUCKETS; i++) {
		seen += st->lat[i];
		if (seen >= rank)
			return fmin(lat_bound_ms(i), st->lat_max * 1000.0);
	}
	return st->lat_max * 1000.0;
}

static void count_server(struct stats *st, const char *name)
{
	if (!name[0]) {
		st->no_server++;
		return;
	}
	for (int i = 0; i < st->nservers; i++) {
		if (strcmp(st->server[i], name) == 0) {
			st->served[i]++;
			return;
		}
	}
	if (st->nservers < SERVERS_MAX) {
		snprintf(st->server[st->nservers], SERVER_NAME_MAX, "%s", name);
		st->served[st->nservers++] = 1;
		return;
	}
	st->served[SERVERS_MAX]++;
}

/* Prints a JSON string with quotes and backslashes and control characters dropped (server names are ours). */
static void print_jstr(const char *s)
{
	putchar('"');
	for (; *s; s++)
		if (*s != '"' && *s != '\\' && (unsigned char)*s >= 0x20)
			putchar(*s);
	putchar('"');
}

static void print_status(const struct stats *st)
{
	bool first = true;
	printf("\"status\":{");
	for (int i = 1; i < 600; i++) {
		if (st->status[i]) {
			printf("%s\"%d\":%ld", first ? "" : ",", i, st->status[i]);
			first = false;
		}
	}
	printf("}");
}

/* elapsed: from the first request to the last answer; send_s: the time requests were being sent. */
static void print_summary(const struct opts *o, const struct stats *st, double elapsed, double send_s)
{
	printf("{\"summary\":true,\"url\":");
	print_jstr(o->url);
	printf(",\"target_rate\":%.1f,\"duration_s\":%.3f,\"send_s\":%.3f,\"sent\":%ld,\"completed\":%ld,"
	       "\"transport_errors\":%ld,\"aborted\":%ld,\"send_rate\":%.1f,\"rate\":%.1f,",
	       o->rate, elapsed, send_s, st->sent, st->completed, st->transport_errors, st->aborted,
	       send_s > 0 ? (double)st->sent / send_s : 0.0, elapsed > 0 ? (double)st->completed / elapsed : 0.0);
	print_status(st);
	printf(",\"served_by\":{");
	for (int i = 0; i < st->nservers; i++) {
		if (i)
			putchar(',');
		print_jstr(st->server[i]);
		printf(":%ld", st->served[i]);
	}
	if (st->served[SERVERS_MAX])
		printf("%s\"(other)\":%ld", st->nservers ? "," : "", st->served[SERVERS_MAX]);
	printf("},\"no_served_by\":%ld,\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}}\n",
	       st->no_server, lat_quantile_ms(st, 0.5), lat_quantile_ms(st, 0.9), lat_quantile_ms(st, 0.99),
	       st->lat_max * 1000.0);
	fflush(stdout);
}

static int setup_easy(struct slot *s, const struct opts *o, struct curl_slist *hdrs, struct curl_slist *resolve)
{
	CURL *e = curl_easy_init();
	if (!e)
		return -1;
	s->easy = e;
	curl_easy_setopt(e, CURLOPT_URL, o->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, s);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(e, CURLOPT_PROXY, "");         /* never through a proxy from the environment */
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	if (resolve)
		curl_easy_setopt(e, CURLOPT_RESOLVE, resolve); /* a redirect must not take load elsewhere */
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(o->timeout * 1000));
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
	if (o->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, o->body);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { .concurrency = 16, .max_requests = -1, .timeout = 10 };
	struct stats *st = calloc(1, sizeof *st);
	struct slot *slots = NULL, *free_slots = NULL;
	struct curl_slist *hdrs = NULL, *resolve = NULL;
	CURLM *multi = NULL;
	char pin[256];
	bool have_rate = false, have_duration = false, curl_inited = false;
	long inflight = 0;
	int rc = 64;

	if (!st) {
		fprintf(stderr, "loadgen: out of memory\n");
		return 70;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			rc = 0;
			goto out;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "loadgen: '%s' needs a value (see --help)\n", a);
			goto out;
		}
		const char *v = argv[++i];
		int bad = 0;
		if (strcmp(a, "--url") == 0)
			o.url = v;
		else if (strcmp(a, "--body") == 0)
			o.body = v;
		else if (strcmp(a, "--rate") == 0) {
			bad = parse_double(v, 0.1, RATE_MAX, &o.rate);
			have_rate = true;
		} else if (strcmp(a, "--duration") == 0) {
			bad = parse_double(v, 0.01, DURATION_MAX, &o.duration);
			have_duration = true;
		}
		else if (strcmp(a, "--report-every") == 0)
			bad = parse_double(v, 0, DURATION_MAX, &o.report_every);
		else if (strcmp(a, "--timeout") == 0)
			bad = parse_double(v, 0.01, 60, &o.timeout);
		else if (strcmp(a, "--concurrency") == 0)
			bad = parse_long(v, 1, CONC_MAX, &o.concurrency);
		else if (strcmp(a, "--max-requests") == 0)
			bad = parse_long(v, 1, REQUESTS_MAX, &o.max_requests);
		else {
			fprintf(stderr, "loadgen: unknown option '%s' (see --help)\n", a);
			goto out;
		}
		if (bad) {
			fprintf(stderr, "loadgen: %s '%s': out of range or not a number (see --help)\n", a, v);
			goto out;
		}
	}
	if (!o.url || !have_rate || !have_duration) {
		fprintf(stderr, "loadgen: --url, --rate and --duration are required (see --help)\n");
		goto out;
	}
	if (o.max_requests < 0)
		o.max_requests = REQUESTS_MAX;
	if (check_url(o.url, pin, sizeof pin) < 0)
		goto out;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "loadgen: curl_global_init failed\n");
		rc = 70;
		goto out;
	}
	curl_inited = true;
	rc = 70;
	multi = curl_multi_init();
	slots = calloc((size_t)o.concurrency, sizeof *slots);
	if (o.body)
		hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	if (pin[0])
		resolve = curl_slist_append(NULL, pin);
	if (!multi || !slots || (o.body && !hdrs) || (pin[0] && !resolve)) {
		fprintf(stderr, "loadgen: out of memory\n");
		goto out;
	}
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, o.concurrency);
	curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, o.concurrency);
	for (long i = 0; i < o.concurrency; i++) {
		if (setup_easy(&slots[i], &o, hdrs, resolve) < 0) {
			fprintf(stderr, "loadgen: curl_easy_init failed\n");
			goto out;
		}
		slots[i].next_free = free_slots;
		free_slots = &slots[i];
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);

	double start = now_s(), end_send = start + o.duration, next_report = start + o.report_every;
	long last_completed = 0;
	double send_s = 0;
	bool sending = true;
	for (;;) {
		double t = now_s();
		if (sending && (t >= end_send || st->sent >= o.max_requests || stop_flag)) {
			sending = false;
			send_s = t - start;
		}
		if (sending) {
			double due_d = floor((t - start) * o.rate) + 1;
			long due = due_d > (double)o.max_requests ? o.max_requests : (long)due_d;
			while (st->sent < due && free_slots) {
				struct slot *s = free_slots;
				free_slots = s->next_free;
				s->served[0] = '\0';
				s->t0 = now_s();
				if (curl_multi_add_handle(multi, s->easy) != CURLM_OK) {
					fprintf(stderr, "loadgen: curl_multi_add_handle failed\n");
					goto out;
				}
				st->sent++;
				inflight++;
			}
		}
		if (!sending && inflight == 0)
			break;
		if (!sending && (t > end_send + GRACE_S || stop_flag)) {
			for (long i = 0; i < o.concurrency; i++) {
				if (slots[i].t0 > 0) {
					curl_multi_remove_handle(multi, slots[i].easy);
					slots[i].t0 = 0;
					st->aborted++;
				}
			}
			inflight = 0;
			break;
		}

		int running = 0;
		curl_multi_perform(multi, &running);
		CURLMsg *m;
		int left;
		while ((m = curl_multi_info_read(multi, &left))) {
			if (m->msg != CURLMSG_DONE)
				continue;
			struct slot *s = NULL;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			double lat = now_s() - s->t0;
			long code = 0;
			if (m->data.result == CURLE_OK)
				curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
			curl_multi_remove_handle(multi, m->easy_handle);
			if (m->data.result != CURLE_OK || code <= 0 || code >= 600) {
				st->transport_errors++;
			} else {
				st->completed++;
				st->status[code]++;
				count_server(st, s->served);
				st->lat[lat_bucket(lat)]++;
				if (lat > st->lat_max)
					st->lat_max = lat;
			}
			s->t0 = 0;
			s->next_free = free_slots;
			free_slots = s;
			inflight--;
		}

		t = now_s();
		if (o.report_every > 0 && t >= next_report) {
			printf("{\"t\":%.3f,\"sent\":%ld,\"completed\":%ld,\"interval_rate\":%.1f,", t - start, st->sent,
			       st->completed, (double)(st->completed - last_completed) / o.report_every);
			print_status(st);
			printf("}\n");
			fflush(stdout);
			last_completed = st->completed;
			next_report += o.report_every;
		}
		/* sleep until the next request is due, or an answer comes */
		int wait_ms = 50;
		if (sending && free_slots) {
			double next_due = start + (double)st->sent / o.rate;
			double ms = (next_due - t) * 1000.0;
			wait_ms = ms <= 0 ? 0 : ms > 50 ? 50 : (int)ceil(ms);
		}
		if (sending) {
			double to_end = (end_send - t) * 1000.0;
			if (to_end < wait_ms)
				wait_ms = to_end <= 0 ? 0 : (int)ceil(to_end);
		}
		curl_multi_poll(multi, NULL, 0, wait_ms, NULL);
	}
	print_summary(&o, st, now_s() - start, send_s);
	rc = (st->sent > 0 && st->completed == 0) ? 69 : 0;
	if (rc == 69)
		fprintf(stderr, "loadgen: no request to '%s' got an http answer: is the server running?\n", o.url);
out:
	if (slots) {
		for (long i = 0; i < o.concurrency; i++) {
			if (slots[i].easy) {
				if (multi)
					curl_multi_remove_handle(multi, slots[i].easy);
				curl_easy_cleanup(slots[i].easy);
			}
		}
		free(slots);
	}
	if (multi)
		curl_multi_cleanup(multi);
	curl_slist_free_all(hdrs);
	curl_slist_free_all(resolve);
	if (curl_inited)
		curl_global_cleanup();
	free(st);
	return rc;
}
