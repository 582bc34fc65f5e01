/* Benchmark support: an OpenAI-style completion server with a known, fixed latency, to measure the load generator's
 * client-side timing overhead (issue 12's figures). A request's clock starts when its last body byte is read; a
 * plain answer is written whole at +latency; a streamed one ("stream": true) has its headers and first token event
 * written at +ttft, the other tokens evenly spaced up to +latency, the last one together with the usage chunk and
 * [DONE]. One thread, epoll and one timerfd (timer slack 1 ns), keep-alive HTTP/1.1, no pipelining.
 * The server measures its own lateness (each due write: written minus due) and GET /stats answers
 * {"requests":N,"late_first_us":{p50,p99,max},"late_last_us":{...}}, so a reader can tell the server's share of the
 * overhead from the client's. Loopback only. Not part of the pass/fail suite.
 * Usage: bench_fixed_server [--port 0] [--latency 0.020] [--ttft 0.005] [--tokens 8]   (prints "listening on
 * 127.0.0.1:PORT") */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 8192
#define IN_MAX (256 * 1024)    /* one request (headers and body) */
#define OUT_MAX (64 * 1024)    /* what waits to be written on one connection */
#define SAMPLES_MAX 2000000

struct conn {
	int fd;
	char *in;
	size_t in_len;
	char out[OUT_MAX];
	size_t out_len;
	bool busy;          /* a request is being answered */
	bool stream, chat;
	long token;         /* the next token event to write (stream) */
	int64_t t_req;      /* ns: the request was read */
	int64_t due;        /* ns: the next write; 0 none */
	int heap_pos;       /* -1: not in the heap */
	uint64_t id;
};

static struct {
	double latency, ttft;
	long tokens;
	int tfd, ep;
	struct conn *conns[MAX_CONNS];
	struct conn *heap[MAX_CONNS];
	int nheap;
	uint64_t next_id, requests;
	double *late_first, *late_last; /* us */
	size_t nfirst, nlast;
} g;

static volatile sig_atomic_t stopping;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the timer heap (earliest due first) ---- */

static void heap_swap(int a, int b)
{
	struct conn *t = g.heap[a];
	g.heap[a] = g.heap[b];
	g.heap[b] = t;
	g.heap[a]->heap_pos = a;
	g.heap[b]->heap_pos = b;
}

static void heap_fix(int i)
{
	while (i > 0 && g.heap[(i - 1) / 2]->due > g.heap[i]->due) {
		heap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;
		if (l < g.nheap && g.heap[l]->due < g.heap[m]->due)
			m = l;
		if (r < g.nheap && g.heap[r]->due < g.heap[m]->due)
			m = r;
		if (m == i)
			break;
		heap_swap(i, m);
		i = m;
	}
}

static void heap_remove(struct conn *c)
{
	int i = c->heap_pos;
	if (i < 0)
		return;
	g.nheap--;
	if (i != g.nheap) {
		g.heap[i] = g.heap[g.nheap];
		g.heap[i]->heap_pos = i;
		heap_fix(i);
	}
	c->heap_pos = -1;
}

static void arm_timer(void)
{
	struct itimerspec its = { 0 };
	if (g.nheap > 0) {
		int64_t d = g.heap[0]->due;
		its.it_value.tv_sec = d / 1000000000;
		its.it_value.tv_nsec = d % 1000000000;
		if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
			its.it_value.tv_nsec = 1;
	}
	timerfd_settime(g.tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void schedule(struct conn *c, int64_t due)
{
	c->due = due;
	if (c->heap_pos < 0) {
		c->heap_pos = g.nheap;
		g.heap[g.nheap++] = c;
	}
	heap_fix(c->heap_pos);
}

/* ---- connections ---- */

static void conn_close(struct conn *c)
{
	heap_remove(c);
	epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	g.conns[c->fd] = NULL;
	free(c->in);
	free(c);
}

/* Writes what is pending; returns -1 when the connection broke. */
static int flush_out(struct conn *c)
{
	while (c->out_len > 0) {
		ssize_t n = write(c->fd, c->out, c->out_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.fd = c->fd };
			epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &ev);
			return 0;
		}
		if (n <= 0)
			return -1;
		memmove(c->out, c->out + n, c->out_len - (size_t)n);
		c->out_len -= (size_t)n;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = c->fd };
	epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &ev);
	return 0;
}

static int put(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int put(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(c->out + c->out_len, OUT_MAX - c->out_len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= OUT_MAX - c->out_len)
		return -1;
	c->out_len += (size_t)n;
	return 0;
}

/* One chunk of a chunked body: the payload given by fmt. */
static int put_chunk(struct conn *c, const char *payload)
{
	return put(c, "%zx\r\n%s\r\n", strlen(payload), payload);
}

static void sample(double **arr, size_t *n, double us)
{
	if (!*arr)
		*arr = malloc(SAMPLES_MAX * sizeof **arr);
	if (*arr && *n < SAMPLES_MAX)
		(*arr)[(*n)++] = us;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double quantile(double *v, size_t n, double q)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof *v, cmp_double);
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i];
}

/* The due write of c's answer: the whole answer, or the next token event. */
static int due_write(struct conn *c, int64_t now)
{
	double late_us = (double)(now - c->due) / 1e3;
	const char *obj = c->chat ? "chat.completion" : "text_completion";
	char ev[512];
	if (!c->stream) {
		char body[1024];
		int n = c->chat ? snprintf(body, sizeof body,
					   "{\"id\":\"fx-%" PRIu64 "\",\"object\":\"%s\",\"created\":0,\"model\":\"fixed\","
					   "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
					   "\"tok\"},\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":1,"
					   "\"completion_tokens\":%ld,\"total_tokens\":%ld}}", c->id, obj, g.tokens, g.tokens + 1)
				: snprintf(body, sizeof body,
					   "{\"id\":\"fx-%" PRIu64 "\",\"object\":\"%s\",\"created\":0,\"model\":\"fixed\","
					   "\"choices\":[{\"index\":0,\"text\":\"tok\",\"logprobs\":null,\"finish_reason\":"
					   "\"length\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":%ld,"
					   "\"total_tokens\":%ld}}", c->id, obj, g.tokens, g.tokens + 1);
		if (n < 0 || (size_t)n >= sizeof body ||
		    put(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", n,
			body) < 0)
			return -1;
		sample(&g.late_last, &g.nlast, late_us);
		c->busy = false;
		return flush_out(c);
	}
	if (c->token == 0) {
		if (put(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
			   "Transfer-Encoding: chunked\r\n\r\n") < 0)
			return -1;
		sample(&g.late_first, &g.nfirst, late_us);
	}
	snprintf(ev, sizeof ev,
		 c->chat ? "data: {\"id\":\"fx-%" PRIu64 "\",\"object\":\"chat.completion.chunk\",\"created\":0,"
			   "\"model\":\"fixed\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" tok\"},"
			   "\"finish_reason\":null}]}\n\n"
			 : "data: {\"id\":\"fx-%" PRIu64 "\",\"object\":\"text_completion\",\"created\":0,"
			   "\"model\":\"fixed\",\"choices\":[{\"index\":0,\"text\":\" tok\",\"logprobs\":null,"
			   "\"finish_reason\":null}]}\n\n", c->id);
	if (put_chunk(c, ev) < 0)
		return -1;
	c->token++;
	if (c->token < g.tokens) {
		double gap = g.tokens > 1 ? (g.latency - g.ttft) / (double)(g.tokens - 1) : 0;
		schedule(c, c->t_req + (int64_t)((g.ttft + gap * (double)c->token) * 1e9));
		return flush_out(c);
	}
	snprintf(ev, sizeof ev,
		 "data: {\"id\":\"fx-%" PRIu64 "\",\"object\":\"%s\",\"created\":0,\"model\":\"fixed\",\"choices\":"
		 "[{\"index\":0,%s,\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":1,"
		 "\"completion_tokens\":%ld,\"total_tokens\":%ld}}\n\n",
		 c->id, c->chat ? "chat.completion.chunk" : "text_completion",
		 c->chat ? "\"delta\":{}" : "\"text\":\"\"", g.tokens, g.tokens + 1);
	if (put_chunk(c, ev) < 0 || put_chunk(c, "data: [DONE]\n\n") < 0 || put(c, "0\r\n\r\n") < 0)
		return -1;
	if (g.tokens > 1)
		sample(&g.late_last, &g.nlast, late_us);
	c->busy = false;
	return flush_out(c);
}

static int answer_stats(struct conn *c)
{
	char body[512];
	size_t nf = g.nfirst, nl = g.nlast;
	double f50 = quantile(g.late_first, nf, 0.5), f99 = quantile(g.late_first, nf, 0.99),
	       fmax = nf ? g.late_first[nf - 1] : 0;
	double l50 = quantile(g.late_last, nl, 0.5), l99 = quantile(g.late_last, nl, 0.99),
	       lmax = nl ? g.late_last[nl - 1] : 0;
	int n = snprintf(body, sizeof body,
			 "{\"requests\":%" PRIu64 ",\"latency_s\":%g,\"ttft_s\":%g,\"tokens\":%ld,"
			 "\"late_first_us\":{\"n\":%zu,\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},"
			 "\"late_last_us\":{\"n\":%zu,\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}}\n",
			 g.requests, g.latency, g.ttft, g.tokens, nf, f50, f99, fmax, nl, l50, l99, lmax);
	if (n < 0 || (size_t)n >= sizeof body)
		return -1;
	if (put(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", n, body) < 0)
		return -1;
	return flush_out(c);
}

/* A whole request is in c->in (head_len bytes of head, then the body): start its answer. */
static int on_request(struct conn *c, size_t head_len, size_t total)
{
	int64_t now = now_ns();
	const char *in = c->in;
	bool stats = strncmp(in, "GET /stats", 10) == 0;
	bool post = strncmp(in, "POST /v1/", 9) == 0;
	char *body = c->in + head_len;
	char saved = c->in[total];
	c->in[total] = '\0';
	c->stream = post && (strstr(body, "\"stream\":true") || strstr(body, "\"stream\": true"));
	c->chat = post && strncmp(in, "POST /v1/chat/completions", 25) == 0;
	c->in[total] = saved;
	memmove(c->in, c->in + total, c->in_len - total);
	c->in_len -= total;
	if (stats)
		return answer_stats(c);
	if (!post) {
		if (put(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n") < 0)
			return -1;
		return flush_out(c);
	}
	g.requests++;
	c->busy = true;
	c->t_req = now;
	c->token = 0;
	c->id = g.next_id++;
	schedule(c, now + (int64_t)((c->stream ? g.ttft : g.latency) * 1e9));
	return 0;
}

/* Parses as many whole requests as c->in holds (one at a time: the client does not pipeline). */
static int on_input(struct conn *c)
{
	while (!c->busy && c->in_len > 0) {
		c->in[c->in_len] = '\0';
		char *end = strstr(c->in, "\r\n\r\n");
		if (!end)
			return c->in_len >= IN_MAX ? -1 : 0;
		size_t head_len = (size_t)(end - c->in) + 4;
		long clen = 0;
		for (char *p = c->in; p < end;) {
			char *eol = strstr(p, "\r\n");
			if (strncasecmp(p, "Content-Length:", 15) == 0) {
				char *e;
				clen = strtol(p + 15, &e, 10);
				if (e == p + 15 || clen < 0 || clen > IN_MAX)
					return -1;
			}
			p = eol + 2;
		}
		if (head_len + (size_t)clen > IN_MAX)
			return -1;
		if (c->in_len < head_len + (size_t)clen)
			return 0;
		if (on_request(c, head_len, head_len + (size_t)clen) < 0)
			return -1;
	}
	return 0;
}

static void on_readable(struct conn *c)
{
	for (;;) {
		if (c->in_len >= IN_MAX) {
			conn_close(c);
			return;
		}
		ssize_t n = read(c->fd, c->in + c->in_len, IN_MAX - c->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			conn_close(c);
			return;
		}
		c->in_len += (size_t)n;
	}
	if (on_input(c) < 0)
		conn_close(c);
}

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
	char *e;
	errno = 0;
	double v = strtod(s, &e);
	if (errno || e == s || *e || !(v >= lo && v <= hi))
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	double port = 0, tokens = 8;
	g.latency = 0.020;
	g.ttft = 0.005;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int rc = -1;
		if (v && strcmp(a, "--port") == 0)
			rc = parse_double(v, 0, 65535, &port);
		else if (v && strcmp(a, "--latency") == 0)
			rc = parse_double(v, 0, 60, &g.latency);
		else if (v && strcmp(a, "--ttft") == 0)
			rc = parse_double(v, 0, 60, &g.ttft);
		else if (v && strcmp(a, "--tokens") == 0)
			rc = parse_double(v, 1, 10000, &tokens);
		if (rc < 0) {
			fprintf(stderr, "usage: bench_fixed_server [--port 0] [--latency 0.020] [--ttft 0.005] [--tokens 8]\n");
			return 64;
		}
		i++;
	}
	g.tokens = (long)tokens;
	if (g.ttft > g.latency) {
		fprintf(stderr, "bench_fixed_server: --ttft %g is after --latency %g\n", g.ttft, g.latency);
		return 64;
	}
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_stop);
	signal(SIGINT, on_stop);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof sa;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 4096) < 0 ||
	    getsockname(ls, (struct sockaddr *)&sa, &sl) < 0) {
		perror("bench_fixed_server: listen");
		return 69;
	}
	g.ep = epoll_create1(EPOLL_CLOEXEC);
	g.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = ls };
	epoll_ctl(g.ep, EPOLL_CTL_ADD, ls, &ev);
	ev.data.fd = g.tfd;
	epoll_ctl(g.ep, EPOLL_CTL_ADD, g.tfd, &ev);
	printf("bench_fixed_server: latency %gs, ttft %gs, %ld tokens; listening on 127.0.0.1:%d\n", g.latency, g.ttft,
	       g.tokens, ntohs(sa.sin_port));
	fflush(stdout);
	struct epoll_event evs[256];
	while (!stopping) {
		int n = epoll_wait(g.ep, evs, 256, 200);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == ls) {
				int cfd;
				while ((cfd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					struct conn *c = cfd < MAX_CONNS ? calloc(1, sizeof *c) : NULL;
					char *in = c ? malloc(IN_MAX + 1) : NULL;
					if (!in) {
						free(c);
						close(cfd);
						continue;
					}
					c->fd = cfd;
					c->in = in;
					c->heap_pos = -1;
					setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					g.conns[cfd] = c;
					struct epoll_event cev = { .events = EPOLLIN, .data.fd = cfd };
					epoll_ctl(g.ep, EPOLL_CTL_ADD, cfd, &cev);
				}
			} else if (fd == g.tfd) {
				uint64_t x;
				if (read(g.tfd, &x, sizeof x) < 0 && errno != EAGAIN)
					break;
			} else if (fd >= 0 && fd < MAX_CONNS && g.conns[fd]) {
				struct conn *c = g.conns[fd];
				if ((evs[i].events & EPOLLOUT) && flush_out(c) < 0) {
					conn_close(c);
					continue;
				}
				if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					on_readable(c);
			}
		}
		/* every due write, then the timer for the next one */
		int64_t now = now_ns();
		while (g.nheap > 0 && g.heap[0]->due <= now) {
			struct conn *c = g.heap[0];
			heap_remove(c);
			if (due_write(c, now) < 0 || (!c->busy && c->in_len > 0 && on_input(c) < 0))
				conn_close(c);
			now = now_ns();
		}
		arm_timer();
	}
	free(g.late_first);
	free(g.late_last);
	return 0;
}
