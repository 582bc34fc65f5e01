/* Integration tests of the HAProxy gateway adapter against a real haproxy on 127.0.0.1 (tests/support haproxy
 * fixture): set and read back shares over the unix and TCP runtime API, HAProxy's own error text, an unreachable
 * or silent or babbling runtime API, and the share of real HTTP traffic two libmicrohttpd backends serve. */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <microhttpd.h>

#include "canary/gateway.h"
#include "haproxy_fixture.h"

#define BACKEND "chat"

/* ---- two tiny HTTP backends that count what they serve ---- */

struct backend {
	struct MHD_Daemon *d;
	int port;
	char addr[32];
	const char *body;
	atomic_long served;
};

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	(void)url, (void)method, (void)version, (void)upload, (void)upload_size, (void)con_cls;
	struct backend *b = cls;
	atomic_fetch_add(&b->served, 1);
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(b->body), (void *)b->body,
								 MHD_RESPMEM_PERSISTENT);
	enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return rc;
}

static int backend_start(struct backend *b, const char *body)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	b->body = body;
	atomic_store(&b->served, 0);
	b->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, answer, b,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
	if (!b->d)
		return -1;
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(b->d, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || !info->port)
		return -1;
	b->port = info->port;
	snprintf(b->addr, sizeof b->addr, "127.0.0.1:%d", b->port);
	return 0;
}

/* ---- shared state: one haproxy in front of both backends ---- */

struct env {
	struct backend be[2];
	struct hap hap;
};

static int group_setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	if (!e || backend_start(&e->be[0], "blue") < 0 || backend_start(&e->be[1], "green") < 0) {
		fprintf(stderr, "cannot start the http backends\n");
		return -1;
	}
	if (hap_start(&e->hap, BACKEND, "blue", e->be[0].addr, "green", e->be[1].addr) < 0) {
		fprintf(stderr, "cannot start haproxy: %s\n", e->hap.err);
		hap_stop(&e->hap);
		return -1;
	}
	*state = e;
	return 0;
}

static int group_teardown(void **state)
{
	struct env *e = *state;
	if (!e)
		return 0;
	hap_stop(&e->hap);
	for (int i = 0; i < 2; i++)
		if (e->be[i].d)
			MHD_stop_daemon(e->be[i].d);
	free(e);
	return 0;
}

static void make_svc(struct cn_service *svc, const char *api, const char *backend, const char *s0, const char *s1,
		     int64_t timeout_ms)
{
	memset(svc, 0, sizeof *svc);
	snprintf(svc->name, sizeof svc->name, "chat");
	svc->gateway.kind = CN_GATEWAY_HAPROXY;
	snprintf(svc->gateway.runtime_api, sizeof svc->gateway.runtime_api, "%s", api);
	snprintf(svc->gateway.backend, sizeof svc->gateway.backend, "%s", backend);
	svc->gateway.timeout_ms = timeout_ms;
	snprintf(svc->slots[0].name, sizeof svc->slots[0].name, "blue");
	snprintf(svc->slots[0].server, sizeof svc->slots[0].server, "%s", s0);
	snprintf(svc->slots[1].name, sizeof svc->slots[1].name, "green");
	snprintf(svc->slots[1].server, sizeof svc->slots[1].server, "%s", s1);
}

static struct cn_gateway *open_gw(const char *api, const char *backend, const char *s0, const char *s1,
				  int64_t timeout_ms)
{
	struct cn_service svc;
	struct cn_err err = { 0 };
	make_svc(&svc, api, backend, s0, s1, timeout_ms);
	struct cn_gateway *gw = cn_gateway_open(&svc, &err);
	if (!gw)
		fail_msg("cn_gateway_open: %s", err.msg);
	return gw;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ---- set and read back ---- */

static const struct {
	double pct0;
	int w0, w1; /* what haproxy must hold afterwards */
} set_cases[] = {
	{ 99.0, 99, 1 }, /* slot 1 at 1 % */
	{ 95.0, 19, 1 }, /* 5 % */
	{ 0.0, 0, 1 },   /* slot 1 at 100 % */
	{ 100.0, 1, 0 }, /* slot 1 at 0 % */
	{ 1.0, 1, 99 },
	{ 66.7, 2, 1 },
	{ 0.5, 1, 199 },
	{ 50.0, 1, 1 },
};

static void check_set(struct hap *hap, struct cn_gateway *gw, double pct0, int w0, int w1)
{
	struct cn_err err = { 0 };
	double pct[2] = { pct0, 100.0 - pct0 }, got[2] = { -1, -1 };
	int rc = cn_gateway_set_weights(gw, pct, &err);
	if (rc != 0)
		fail_msg("set %g %%: rc %d: %s", pct0, rc, err.msg);
	/* haproxy itself holds the weights, not only our read-back */
	assert_int_equal(hap_get_weight(hap, "blue"), w0);
	assert_int_equal(hap_get_weight(hap, "green"), w1);
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), 0);
	assert_float_equal(got[0], 100.0 * w0 / (w0 + w1), 1e-9);
	assert_float_equal(got[1], 100.0 * w1 / (w0 + w1), 1e-9);
	assert_true(fabs(got[0] - pct0) <= 100.0 / 256);
}

static void test_set_get_unix(void **state)
{
	struct env *e = *state;
	struct cn_gateway *gw = open_gw(e->hap.runtime_api, BACKEND, "blue", "green", 2000);
	for (size_t i = 0; i < sizeof set_cases / sizeof set_cases[0]; i++) {
		check_set(&e->hap, gw, set_cases[i].pct0, set_cases[i].w0, set_cases[i].w1);
		/* idempotent: the same call again succeeds and changes nothing */
		check_set(&e->hap, gw, set_cases[i].pct0, set_cases[i].w0, set_cases[i].w1);
	}
	cn_gateway_close(gw);
}

static void test_set_get_plain_path_and_tcp(void **state)
{
	struct env *e = *state;
	const char *apis[] = { e->hap.sock_path, e->hap.runtime_api_tcp };
	for (size_t i = 0; i < 2; i++) {
		struct cn_gateway *gw = open_gw(apis[i], BACKEND, "blue", "green", 2000);
		check_set(&e->hap, gw, 95.0, 19, 1);
		check_set(&e->hap, gw, 100.0, 1, 0);
		cn_gateway_close(gw);
	}
}

/* Shared checks (canaryd): get_weights answers from one snapshot of every backend, at most the given age and begun
 * after the gateway's own last write; a backend the snapshot lacks is read on its own, with its own error. */
static void test_shared_checks(void **state)
{
	struct env *e = *state;
	char ans[4096];
	struct cn_err err = { 0 };
	double got[2];
	struct cn_gateway *gw = open_gw(e->hap.runtime_api, BACKEND, "blue", "green", 2000);
	struct cn_gateway *other = open_gw(e->hap.runtime_api, BACKEND, "blue", "green", 2000);
	cn_gateway_haproxy_share_checks(600);
	check_set(&e->hap, gw, 50.0, 1, 1); /* its check after the write takes a new snapshot: 50/50 */
	/* a change behind canary's back: within the age, checks of both gateways still see the snapshot */
	assert_int_equal(hap_cmd(&e->hap, "set server " BACKEND "/green weight 3", ans, sizeof ans), 0);
	assert_int_equal(hap_get_weight(&e->hap, "green"), 3);
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), 0);
	assert_float_equal(got[1], 50.0, 1e-9);
	assert_int_equal(cn_gateway_get_weights(other, got, &err), 0);
	assert_float_equal(got[1], 50.0, 1e-9);
	/* older than the age: a new snapshot sees it (1 blue / 3 green) */
	usleep(700 * 1000);
	assert_int_equal(cn_gateway_get_weights(other, got, &err), 0);
	assert_float_equal(got[1], 75.0, 1e-9);
	/* a write of its own makes the gateway's next check read anew, whatever the age */
	check_set(&e->hap, gw, 95.0, 19, 1);
	/* ... and the other gateway answers from the snapshot that check took */
	assert_int_equal(cn_gateway_get_weights(other, got, &err), 0);
	assert_float_equal(got[0], 95.0, 1e-9);
	/* a backend the snapshot lacks: read on its own, with HAProxy's own words */
	struct cn_gateway *none = open_gw(e->hap.runtime_api, "nosuchbackend", "blue", "green", 2000);
	assert_int_equal(cn_gateway_get_weights(none, got, &err), -CN_EINTERNAL);
	assert_non_null(strstr(err.msg, "nosuchbackend"));
	cn_gateway_haproxy_share_checks(0);
	/* off again: every check reads */
	assert_int_equal(hap_cmd(&e->hap, "set server " BACKEND "/green weight 19", ans, sizeof ans), 0);
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), 0);
	assert_float_equal(got[1], 50.0, 1e-9);
	cn_gateway_close(none);
	cn_gateway_close(other);
	cn_gateway_close(gw);
}

/* A server an operator put in maintenance counts as share 0, and set_weights makes it ready again. */
static void test_maint_server_made_ready(void **state)
{
	struct env *e = *state;
	char ans[4096];
	struct cn_err err = { 0 };
	double got[2];
	struct cn_gateway *gw = open_gw(e->hap.runtime_api, BACKEND, "blue", "green", 2000);
	check_set(&e->hap, gw, 50.0, 1, 1);
	assert_int_equal(hap_cmd(&e->hap, "set server " BACKEND "/green state maint", ans, sizeof ans), 0);
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), 0);
	assert_float_equal(got[0], 100.0, 1e-9);
	assert_float_equal(got[1], 0.0, 1e-9);
	check_set(&e->hap, gw, 50.0, 1, 1); /* weights already right: only the state changes */
	assert_int_equal(hap_cmd(&e->hap, "show servers state " BACKEND, ans, sizeof ans), 0);
	assert_non_null(strstr(ans, "green 127.0.0.1 2 0 ")); /* srv_op_state 2 (running), srv_admin_state 0 */
	/* weight 0 keeps the server ready (not maint): it can take traffic again by weight alone */
	check_set(&e->hap, gw, 100.0, 1, 0);
	assert_int_equal(hap_cmd(&e->hap, "show servers state " BACKEND, ans, sizeof ans), 0);
	assert_non_null(strstr(ans, "green 127.0.0.1 2 0 0 "));
	cn_gateway_close(gw);
}

static void test_unknown_backend_and_server(void **state)
{
	struct env *e = *state;
	struct cn_err err = { 0 };
	double pct[2] = { 99, 1 }, got[2];

	struct cn_gateway *gw = open_gw(e->hap.runtime_api, "nope", "blue", "green", 2000);
	assert_int_equal(cn_gateway_set_weights(gw, pct, &err), -CN_EINTERNAL);
	assert_non_null(strstr(err.msg, "Can't find backend.")); /* haproxy's own words */
	assert_non_null(strstr(err.msg, "'show servers state nope'"));
	assert_null(strchr(err.msg, '\n'));
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), -CN_EINTERNAL);
	cn_gateway_close(gw);

	gw = open_gw(e->hap.runtime_api, BACKEND, "blue", "nope", 2000);
	assert_int_equal(cn_gateway_set_weights(gw, pct, &err), -CN_EINTERNAL);
	assert_non_null(strstr(err.msg, "has no server 'nope'"));
	assert_non_null(strstr(err.msg, "slots[1].server"));
	cn_gateway_close(gw);
	/* nothing was changed by the failed calls */
	assert_true(hap_get_weight(&e->hap, "blue") >= 0);
}

static void test_invalid_input(void **state)
{
	struct env *e = *state;
	struct cn_err err = { 0 };
	struct cn_gateway *gw = open_gw(e->hap.runtime_api, BACKEND, "blue", "green", 2000);
	const double bad[][2] = { { 10, 10 }, { NAN, 100 }, { -1, 101 }, { 101, -1 }, { INFINITY, 0 } };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(cn_gateway_set_weights(gw, bad[i], &err), -CN_EINPUT);
	cn_gateway_close(gw);

	struct cn_service svc;
	const char *apis[] = { "", "nocolon", "host:0", "host:99999", "unix:relative", "[::1]5000" };
	for (size_t i = 0; i < sizeof apis / sizeof apis[0]; i++) {
		make_svc(&svc, apis[i], BACKEND, "blue", "green", 2000);
		assert_null(cn_gateway_open(&svc, &err));
		assert_int_equal(err.code, CN_EINPUT);
	}
	const char *names[][3] = { { "a b", "blue", "green" }, { BACKEND, "bl;ue", "green" }, { BACKEND, "x", "x" },
				   { "", "blue", "green" }, { BACKEND, "blue", "" } };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		make_svc(&svc, e->hap.runtime_api, names[i][0], names[i][1], names[i][2], 2000);
		assert_null(cn_gateway_open(&svc, &err));
		assert_int_equal(err.code, CN_EINPUT);
	}
}

/* ---- an unreachable, silent or babbling runtime API ---- */

static void test_haproxy_stopped(void **state)
{
	struct env *e = *state;
	struct hap h;
	struct cn_err err = { 0 };
	double pct[2] = { 99, 1 }, got[2];
	assert_int_equal(hap_start(&h, BACKEND, "blue", e->be[0].addr, "green", e->be[1].addr), 0);
	char unix_api[sizeof h.runtime_api], tcp_api[sizeof h.runtime_api_tcp];
	snprintf(unix_api, sizeof unix_api, "%s", h.runtime_api);
	snprintf(tcp_api, sizeof tcp_api, "%s", h.runtime_api_tcp);
	struct cn_gateway *gu = open_gw(unix_api, BACKEND, "blue", "green", 2000);
	struct cn_gateway *gt = open_gw(tcp_api, BACKEND, "blue", "green", 2000);
	assert_int_equal(cn_gateway_set_weights(gu, pct, &err), 0);
	hap_stop(&h);

	struct cn_gateway *gws[] = { gu, gt };
	for (int i = 0; i < 2; i++) {
		long t0 = now_ms();
		assert_int_equal(cn_gateway_set_weights(gws[i], pct, &err), -CN_EUNAVAIL);
		assert_non_null(strstr(err.msg, "cannot connect to haproxy runtime api"));
		assert_int_equal(cn_gateway_get_weights(gws[i], got, &err), -CN_EUNAVAIL);
		assert_true(now_ms() - t0 < 500); /* refused at once, no waiting for the timeout */
		cn_gateway_close(gws[i]);
	}
}

/* A listening socket whose connections are never accepted nor answered (the kernel completes the connect). */
static int silent_unix(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0 || listen(fd, 8) < 0)
		return -1;
	return fd;
}

static int silent_tcp(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sa;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	*port = ntohs(sa.sin_port);
	return fd;
}

static void test_silent_socket_times_out(void **state)
{
	(void)state;
	char dir[] = "/tmp/canary-gw-XXXXXX", path[128], api[160];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/silent.sock", dir);
	int ufd = silent_unix(path), port = 0, tfd = silent_tcp(&port);
	assert_true(ufd >= 0 && tfd >= 0);
	const int64_t timeout = 300;
	for (int i = 0; i < 2; i++) {
		if (i == 0)
			snprintf(api, sizeof api, "unix:%s", path);
		else
			snprintf(api, sizeof api, "127.0.0.1:%d", port);
		struct cn_gateway *gw = open_gw(api, BACKEND, "blue", "green", timeout);
		struct cn_err err = { 0 };
		double pct[2] = { 99, 1 }, got[2];
		long t0 = now_ms();
		assert_int_equal(cn_gateway_get_weights(gw, got, &err), -CN_EUNAVAIL);
		long dt = now_ms() - t0;
		assert_true(dt >= timeout - 20 && dt < timeout + 400);
		assert_non_null(strstr(err.msg, "did not answer 'show servers state chat' within 300 ms"));
		t0 = now_ms();
		assert_int_equal(cn_gateway_set_weights(gw, pct, &err), -CN_EUNAVAIL);
		assert_true(now_ms() - t0 < timeout + 400);
		cn_gateway_close(gw);
	}
	close(ufd);
	close(tfd);
	unlink(path);
	rmdir(dir);
}

struct babbler {
	int fd;
	const char *text;
	size_t repeat;
};

/* Accepts one connection, reads the command, writes text `repeat` times, closes. */
static void *babble(void *arg)
{
	struct babbler *b = arg;
	int c = accept(b->fd, NULL, NULL);
	if (c < 0)
		return NULL;
	char buf[256];
	struct timeval tv = { .tv_sec = 2 };
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	(void)!recv(c, buf, sizeof buf, 0);
	for (size_t i = 0; i < b->repeat; i++)
		if (send(c, b->text, strlen(b->text), MSG_NOSIGNAL) < 0)
			break;
	close(c);
	return NULL;
}

static void test_garbage_answers(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		size_t repeat;
		const char *want; /* in the error message */
	} cases[] = {
		{ "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", 1, "answered 'HTTP/1.1 400 Bad Request" },
		{ "", 1, "answered ''" },
		{ "1\n# no useful columns\nrow row\n", 1, "without a header naming" },
		{ "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight\n"
		  "3 chat 1 blue 127.0.0.1 2 0 999\n", 1, "unexpected weight '999'" },
		{ "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
		  1000, "answered more than" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int port = 0;
		struct babbler b = { .fd = silent_tcp(&port), .text = cases[i].text, .repeat = cases[i].repeat };
		assert_true(b.fd >= 0);
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, babble, &b), 0);
		char api[64];
		snprintf(api, sizeof api, "127.0.0.1:%d", port);
		struct cn_gateway *gw = open_gw(api, BACKEND, "blue", "green", 2000);
		struct cn_err err = { 0 };
		double got[2] = { -1, -1 };
		assert_int_equal(cn_gateway_get_weights(gw, got, &err), -CN_EINTERNAL);
		if (!strstr(err.msg, cases[i].want))
			fail_msg("case %zu: message '%s' lacks '%s'", i, err.msg, cases[i].want);
		assert_null(strchr(err.msg, '\n'));
		assert_float_equal(got[0], -1, 0); /* output untouched on failure */
		cn_gateway_close(gw);
		pthread_join(t, NULL);
		close(b.fd);
	}
}

/* ---- real traffic ---- */

/* One GET through haproxy on a new connection; returns 0 for a 200 answer, -1 otherwise. */
static int http_get(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), rc = -1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
	char buf[1024];
	size_t n = 0;
	if (fd < 0)
		return -1;
	struct timeval tv = { .tv_sec = 2 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    send(fd, req, sizeof req - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof req - 1))
		goto out;
	for (;;) {
		ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == sizeof buf - 1)
			break;
	}
	buf[n] = '\0';
	if (strncmp(buf, "HTTP/1.1 200", 12) == 0)
		rc = 0;
out:
	close(fd);
	return rc;
}

/* At share pct1 for green, sends n requests (bounded in count and in time) and checks what each backend served.
 * HAProxy's roundrobin (fwrr) is a deterministic, smooth weighted interleave: with weights w0/w1 each server's
 * count over any run of consecutive requests stays within a request or so of n * w / (w0 + w1) (measured: exact,
 * 200 of 2,000 at 9/1 and 20 of 2,000 at 99/1). The tolerance is 2 + n / 500 requests (6 for 2,000, i.e. 0.3
 * percentage points); a random balancer would miss it often (binomial sd 13 requests at 10 %), and one that
 * ignored the weights, or a mapping off by a step (1/19 instead of 1/9), would miss it by far. */
static void check_traffic(struct env *e, double pct1, int n)
{
	struct cn_err err = { 0 };
	struct cn_gateway *gw = open_gw(e->hap.runtime_api, BACKEND, "blue", "green", 2000);
	double pct[2] = { 100 - pct1, pct1 };
	if (cn_gateway_set_weights(gw, pct, &err) != 0)
		fail_msg("set: %s", err.msg);
	cn_gateway_close(gw);
	int w0 = hap_get_weight(&e->hap, "blue"), w1 = hap_get_weight(&e->hap, "green");
	assert_true(w0 >= 0 && w1 >= 0 && w0 + w1 > 0);

	atomic_store(&e->be[0].served, 0);
	atomic_store(&e->be[1].served, 0);
	long deadline = now_ms() + 60000;
	int ok = 0;
	for (int i = 0; i < n && now_ms() < deadline; i++)
		ok += http_get(e->hap.port) == 0;
	long blue = atomic_load(&e->be[0].served), green = atomic_load(&e->be[1].served);
	double want = (double)n * w1 / (w0 + w1), tol = 2.0 + n / 500.0;
	print_message("share %g %%: weights %d/%d, %d requests: blue %ld, green %ld (want %.1f +- %.0f)\n", pct1, w0,
		      w1, n, blue, green, want, tol);
	assert_int_equal(ok, n);
	assert_int_equal(blue + green, n);
	if (fabs((double)green - want) > tol)
		fail_msg("green served %ld of %d at weights %d/%d, want %.1f +- %.0f", green, n, w0, w1, want, tol);
}

static void test_traffic_share(void **state)
{
	struct env *e = *state;
	check_traffic(e, 10.0, 2000); /* weights 9/1: green 200 +- 6 */
	check_traffic(e, 1.0, 2000);  /* weights 99/1: green 20 +- 6 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_get_unix),
		cmocka_unit_test(test_set_get_plain_path_and_tcp),
		cmocka_unit_test(test_maint_server_made_ready),
		cmocka_unit_test(test_shared_checks),
		cmocka_unit_test(test_unknown_backend_and_server),
		cmocka_unit_test(test_invalid_input),
		cmocka_unit_test(test_haproxy_stopped),
		cmocka_unit_test(test_silent_socket_times_out),
		cmocka_unit_test(test_garbage_answers),
		cmocka_unit_test(test_traffic_share),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
