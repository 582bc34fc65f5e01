/* Integration tests of the nginx gateway adapter against a real nginx on 127.0.0.1 (tests/support nginx fixture):
 * shares written into the include, checked by nginx -t and reloaded (a new worker generation each time, none when
 * nothing changes), the share of real HTTP traffic two libmicrohttpd backends serve, a config nginx refuses (old
 * include kept, nginx's own words), nginx stopped or a stale pid file (unavailable), an include written but never
 * loaded (unknown until the next set reloads), and an nginx -t that hangs (killed at the timeout). */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <microhttpd.h>

#include "canary/gateway.h"
#include "nginx_fixture.h"

#define UPSTREAM "chat"

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

struct env {
	struct backend be[2];
	struct ngx ngx;
};

static int start_ngx(struct env *e)
{
	struct ngx_opts o = { .upstream = UPSTREAM, .addr = { e->be[0].addr, e->be[1].addr }, .weight = { 1, 0 } };
	if (ngx_start(&e->ngx, &o) < 0) {
		fprintf(stderr, "cannot start nginx: %s\n", e->ngx.err);
		return -1;
	}
	return 0;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	if (!e || backend_start(&e->be[0], "blue") < 0 || backend_start(&e->be[1], "green") < 0) {
		fprintf(stderr, "cannot start the http backends\n");
		return -1;
	}
	*state = e;
	if (start_ngx(e) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	if (!e)
		return 0;
	ngx_stop(&e->ngx);
	for (int i = 0; i < 2; i++)
		if (e->be[i].d)
			MHD_stop_daemon(e->be[i].d);
	free(e);
	return 0;
}

static void make_svc(struct cn_service *svc, const struct env *e, const char *a0, const char *a1, int64_t timeout_ms)
{
	memset(svc, 0, sizeof *svc);
	snprintf(svc->name, sizeof svc->name, "chat");
	svc->gateway.kind = CN_GATEWAY_NGINX;
	snprintf(svc->gateway.include, sizeof svc->gateway.include, "%s", e->ngx.include);
	snprintf(svc->gateway.config, sizeof svc->gateway.config, "%s", e->ngx.conf);
	snprintf(svc->gateway.pid_file, sizeof svc->gateway.pid_file, "%s", e->ngx.pid_file);
	snprintf(svc->gateway.nginx, sizeof svc->gateway.nginx, "%s", e->ngx.bin);
	snprintf(svc->gateway.prefix, sizeof svc->gateway.prefix, "%s", e->ngx.dir);
	snprintf(svc->gateway.error_log, sizeof svc->gateway.error_log, "%s", e->ngx.error_log);
	svc->gateway.timeout_ms = timeout_ms;
	snprintf(svc->slots[0].name, sizeof svc->slots[0].name, "blue");
	snprintf(svc->slots[0].server, sizeof svc->slots[0].server, "%s", a0 ? a0 : e->be[0].addr);
	snprintf(svc->slots[1].name, sizeof svc->slots[1].name, "green");
	snprintf(svc->slots[1].server, sizeof svc->slots[1].server, "%s", a1 ? a1 : e->be[1].addr);
}

static struct cn_gateway *open_gw(const struct env *e, int64_t timeout_ms)
{
	struct cn_service svc;
	struct cn_err err = { 0 };
	make_svc(&svc, e, NULL, NULL, timeout_ms);
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

static void slurp(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, size - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
}

static pid_t worker(const struct env *e)
{
	pid_t k[8];
	int n = ngx_workers(&e->ngx, k, 8);
	return n > 0 ? k[n - 1] : -1;
}

/* One GET through nginx on a new connection; 0 for a 200 answer. */
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

/* ---- set, reload, read back, real traffic ---- */

static const struct {
	double pct1;      /* green's share */
	const char *line0, *line1; /* the include's server lines' tails */
} cases[] = {
	{ 1.0, "weight=99;", "weight=1;" },
	{ 5.0, "weight=19;", "weight=1;" },
	{ 50.0, "weight=1;", "weight=1;" },
	{ 100.0, "down;", "weight=1;" },
	{ 0.0, "weight=1;", "down;" },
	{ 0.5, "weight=199;", "weight=1;" },
	{ 33.3, "weight=667;", "weight=333;" },
};

/* At each share: the include holds the weights, a new worker generation took them, and nginx's smooth weighted
 * round robin (one worker) serves n requests within a request or two of the share: a balancer ignoring the
 * weights, or a reload that did not take, misses by far. The same set again changes nothing, not even the workers. */
static void test_set_reload_traffic(void **state)
{
	struct env *e = *state;
	struct cn_gateway *gw = open_gw(e, 5000);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct cn_err err = { 0 };
		double pct[2] = { 100.0 - cases[i].pct1, cases[i].pct1 }, got[2] = { -1, -1 };
		pid_t before = worker(e);
		long t0 = now_ms();
		if (cn_gateway_set_weights(gw, pct, &err) != 0)
			fail_msg("set %g %%: %s", cases[i].pct1, err.msg);
		long took = now_ms() - t0;
		pid_t after = worker(e);
		assert_true(after > 0 && after != before);
		char text[2048], want[128];
		slurp(e->ngx.include, text, sizeof text);
		snprintf(want, sizeof want, "server %s %s\nserver %s %s\n", e->be[0].addr, cases[i].line0,
			 e->be[1].addr, cases[i].line1);
		if (!strstr(text, want))
			fail_msg("include for %g %%:\n%s\nlacks\n%s", cases[i].pct1, text, want);
		assert_int_equal(cn_gateway_get_weights(gw, got, &err), 0);
		assert_true(fabs(got[1] - cases[i].pct1) <= 0.025 + 1e-9);
		assert_true(fabs(got[0] + got[1] - 100.0) < 1e-9);
		/* idempotent: no new reload */
		assert_int_equal(cn_gateway_set_weights(gw, pct, &err), 0);
		assert_int_equal(worker(e), after);

		int n = 1000, ok = 0;
		atomic_store(&e->be[0].served, 0);
		atomic_store(&e->be[1].served, 0);
		long deadline = now_ms() + 60000;
		for (int k = 0; k < n && now_ms() < deadline; k++)
			ok += http_get(e->ngx.port) == 0;
		long blue = atomic_load(&e->be[0].served), green = atomic_load(&e->be[1].served);
		double want_green = n * got[1] / 100.0;
		print_message("green %g %%: set+reload %ld ms; %d requests: blue %ld, green %ld (want %.1f)\n",
			      cases[i].pct1, took, n, blue, green, want_green);
		assert_int_equal(ok, n);
		assert_int_equal(blue + green, n);
		if (fabs((double)green - want_green) > 2.0)
			fail_msg("green served %ld of %d at %g %%, want %.1f +- 2", green, n, cases[i].pct1, want_green);
	}
	cn_gateway_close(gw);
}

/* A share nginx refuses (a port out of range in the address): nginx -t says so, the old include is back, no
 * reload happened, and get still reads the old shares. */
static void test_refused_config_keeps_old(void **state)
{
	struct env *e = *state;
	struct cn_err err = { 0 };
	double pct[2] = { 95, 5 }, got[2];
	struct cn_gateway *gw = open_gw(e, 5000);
	assert_int_equal(cn_gateway_set_weights(gw, pct, &err), 0);
	cn_gateway_close(gw);
	char before[2048], after[2048];
	slurp(e->ngx.include, before, sizeof before);
	pid_t w = worker(e);

	struct cn_service svc;
	make_svc(&svc, e, "127.0.0.1:99999", NULL, 5000);
	gw = cn_gateway_open(&svc, &err);
	assert_non_null(gw);
	double move[2] = { 90, 10 };
	assert_int_equal(cn_gateway_set_weights(gw, move, &err), -CN_EINTERNAL);
	print_message("refused: %s\n", err.msg);
	assert_non_null(strstr(err.msg, "refused the new weights"));
	assert_non_null(strstr(err.msg, "[emerg]"));
	assert_non_null(strstr(err.msg, "invalid port")); /* nginx's own words */
	assert_null(strchr(err.msg, '\n'));
	cn_gateway_close(gw);
	slurp(e->ngx.include, after, sizeof after);
	assert_string_equal(before, after);
	assert_int_equal(worker(e), w);
	gw = open_gw(e, 5000);
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), 0);
	assert_float_equal(got[1], 5.0, 1e-9);
	cn_gateway_close(gw);
}

/* Written but never loaded (canaryd died between the rename and the reload): get cannot say what nginx serves
 * (NaN), and a set of the very shares on disk reloads anyway. */
static void test_unloaded_include_is_unknown(void **state)
{
	struct env *e = *state;
	struct cn_err err = { 0 };
	double pct[2] = { 99, 1 }, got[2];
	struct cn_gateway *gw = open_gw(e, 5000);
	assert_int_equal(cn_gateway_set_weights(gw, pct, &err), 0);
	char text[2048];
	slurp(e->ngx.include, text, sizeof text);
	/* what set would write for 50/50, put in place without a reload */
	const char *slot[2] = { "blue", "green" }, *addr[2] = { e->be[0].addr, e->be[1].addr };
	int w[2] = { 1, 1 };
	char half[1024];
	int len = cn_nginx_render("chat", slot, addr, w, half, sizeof half);
	assert_true(len > 0);
	FILE *f = fopen(e->ngx.include, "w");
	assert_non_null(f);
	fputs(half, f);
	fclose(f);
	got[0] = got[1] = 0;
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), 0);
	assert_true(isnan(got[0]) && isnan(got[1]));
	pid_t before = worker(e);
	double even[2] = { 50, 50 };
	assert_int_equal(cn_gateway_set_weights(gw, even, &err), 0);
	assert_true(worker(e) != before);
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), 0);
	assert_float_equal(got[0], 50.0, 1e-9);
	cn_gateway_close(gw);
}

/* nginx down (killed: the pid file stays), or a pid file naming some other process: unavailable, the include
 * untouched; back up, the next set works. */
static void test_nginx_down(void **state)
{
	struct env *e = *state;
	struct cn_err err = { 0 };
	double pct[2] = { 95, 5 }, move[2] = { 0, 100 }, got[2];
	struct cn_gateway *gw = open_gw(e, 2000);
	assert_int_equal(cn_gateway_set_weights(gw, pct, &err), 0);
	char before[2048], after[2048];
	slurp(e->ngx.include, before, sizeof before);
	ngx_kill(&e->ngx);
	long t0 = now_ms();
	assert_int_equal(cn_gateway_set_weights(gw, move, &err), -CN_EUNAVAIL);
	assert_non_null(strstr(err.msg, "nginx is not running"));
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), -CN_EUNAVAIL);
	assert_true(now_ms() - t0 < 500);
	slurp(e->ngx.include, after, sizeof after);
	assert_string_equal(before, after);

	/* a pid file naming a live process that is not nginx (this test) */
	FILE *f = fopen(e->ngx.pid_file, "w");
	assert_non_null(f);
	fprintf(f, "%ld\n", (long)getpid());
	fclose(f);
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), -CN_EUNAVAIL);
	assert_non_null(strstr(err.msg, "not an nginx master"));

	assert_int_equal(ngx_restart(&e->ngx), 0);
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), 0);
	assert_float_equal(got[1], 5.0, 1e-9); /* nginx came back with the include it had */
	assert_int_equal(cn_gateway_set_weights(gw, move, &err), 0);
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), 0);
	assert_float_equal(got[1], 100.0, 1e-9);
	cn_gateway_close(gw);
}

/* An nginx -t that never finishes is killed at the timeout, with its children; the include is put back. */
static void test_validation_timeout(void **state)
{
	struct env *e = *state;
	char script[NGX_PATH_MAX + 32], marker[NGX_PATH_MAX + 32], before[2048], after[2048];
	snprintf(script, sizeof script, "%s/slow-nginx", e->ngx.dir);
	snprintf(marker, sizeof marker, "%s/slow-nginx.pid", e->ngx.dir);
	FILE *f = fopen(script, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\nsleep 30 &\necho $! > %s\nwait\n", marker);
	fclose(f);
	chmod(script, 0755);
	slurp(e->ngx.include, before, sizeof before);

	struct cn_service svc;
	struct cn_err err = { 0 };
	make_svc(&svc, e, NULL, NULL, 300);
	snprintf(svc.gateway.nginx, sizeof svc.gateway.nginx, "%s", script);
	struct cn_gateway *gw = cn_gateway_open(&svc, &err);
	assert_non_null(gw);
	double pct[2] = { 10, 90 };
	long t0 = now_ms();
	assert_int_equal(cn_gateway_set_weights(gw, pct, &err), -CN_EUNAVAIL);
	long dt = now_ms() - t0;
	print_message("timeout after %ld ms: %s\n", dt, err.msg);
	assert_true(dt >= 250 && dt < 1500);
	assert_non_null(strstr(err.msg, "did not finish within 300 ms"));
	slurp(e->ngx.include, after, sizeof after);
	assert_string_equal(before, after);
	/* the script's background sleep was killed with its group */
	char pidtext[32];
	slurp(marker, pidtext, sizeof pidtext);
	long bg = strtol(pidtext, NULL, 10);
	assert_true(bg > 1);
	long until = now_ms() + 2000;
	while (kill((pid_t)bg, 0) == 0 && now_ms() < until)
		usleep(10000);
	assert_int_equal(kill((pid_t)bg, 0), -1);
	cn_gateway_close(gw);
}

static void test_invalid_input(void **state)
{
	struct env *e = *state;
	struct cn_err err = { 0 };
	struct cn_gateway *gw = open_gw(e, 2000);
	const double bad[][2] = { { 10, 10 }, { NAN, 100 }, { -1, 101 }, { INFINITY, 0 } };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(cn_gateway_set_weights(gw, bad[i], &err), -CN_EINPUT);
	cn_gateway_close(gw);
	struct cn_service svc;
	make_svc(&svc, e, "a b", NULL, 2000);
	assert_null(cn_gateway_open(&svc, &err));
	make_svc(&svc, e, e->be[1].addr, NULL, 2000);
	assert_null(cn_gateway_open(&svc, &err));
	make_svc(&svc, e, NULL, NULL, 2000);
	snprintf(svc.gateway.include, sizeof svc.gateway.include, "relative.conf");
	assert_null(cn_gateway_open(&svc, &err));
	assert_int_equal(err.code, CN_EINPUT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_reload_traffic),
		cmocka_unit_test(test_refused_config_keeps_old),
		cmocka_unit_test(test_unloaded_include_is_unknown),
		cmocka_unit_test(test_nginx_down),
		cmocka_unit_test(test_validation_timeout),
		cmocka_unit_test(test_invalid_input),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
