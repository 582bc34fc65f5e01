/* Integration tests of reading many services at once (cn_metrics_group) against real HTTP servers on 127.0.0.1:
 * a hung endpoint holds back only its own reader and ends at its own timeout; the caller's socket wakes the wait
 * while a read hangs; cancel and close mid-read; one read at a time per reader. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "canary/metrics.h"
#include "httpd_fixture.h"

#define PAGE "http_requests_total{status=\"200\"} 100\nhttp_requests_total{status=\"502\"} 9\n"
#define HUNG_TIMEOUT_MS 1000

struct env {
	struct httpd_fixture *good, *hung;
	struct cn_service fast, slow; /* fast: both slots good; slow: blue good, green hangs */
	struct cn_metrics_group *g;
};

static void service_for(struct cn_service *svc, const char *name, const char *blue_url, const char *green_url,
			int64_t timeout_ms)
{
	memset(svc, 0, sizeof *svc);
	snprintf(svc->name, sizeof svc->name, "%s", name);
	snprintf(svc->slots[0].name, sizeof svc->slots[0].name, "blue");
	snprintf(svc->slots[1].name, sizeof svc->slots[1].name, "green");
	snprintf(svc->slots[0].metrics_url, sizeof svc->slots[0].metrics_url, "%s", blue_url);
	snprintf(svc->slots[1].metrics_url, sizeof svc->slots[1].metrics_url, "%s", green_url);
	svc->metrics.source = CN_SOURCE_SCRAPE;
	svc->metrics.timeout_ms = timeout_ms;
	snprintf(svc->metrics.names.requests, CN_SELECTOR_MAX, "http_requests_total");
	snprintf(svc->metrics.names.errors, CN_SELECTOR_MAX, "http_requests_total{status=~\"5..\"}");
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	struct cn_err err = { 0 };
	char good[256], hung[256];
	struct httpd_reply rg = { .body = PAGE }, rh = { .body = PAGE, .delay_ms = 30000 };

	if (!e)
		return -1;
	e->good = httpd_fixture_start(&err);
	e->hung = httpd_fixture_start(&err);
	e->g = cn_metrics_group_new(&err);
	if (!e->good || !e->hung || !e->g) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	httpd_fixture_set_reply(e->good, &rg);
	httpd_fixture_set_reply(e->hung, &rh);
	snprintf(good, sizeof good, "%s/metrics", httpd_fixture_url(e->good));
	snprintf(hung, sizeof hung, "%s/metrics", httpd_fixture_url(e->hung));
	service_for(&e->fast, "fast", good, good, 5000);
	service_for(&e->slow, "slow", good, hung, HUNG_TIMEOUT_MS);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	cn_metrics_group_free(e->g);
	httpd_fixture_stop(e->good);
	httpd_fixture_stop(e->hung);
	free(e);
	return 0;
}

static struct cn_metrics *open_ok(const struct cn_service *svc)
{
	struct cn_err err = { 0 };
	struct cn_metrics *m = cn_metrics_open(svc, &err);
	if (!m)
		print_message("open: %s\n", err.msg);
	assert_non_null(m);
	return m;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Drives g until a reader is ready (at most limit_ms); returns it, or NULL. */
static struct cn_metrics *next_ready(struct cn_metrics_group *g, int limit_ms)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (ms_since(&t0) < limit_ms) {
		struct cn_err err = { 0 };
		bool fd_ready;
		struct cn_metrics *m = cn_metrics_group_next(g);
		if (m)
			return m;
		assert_int_equal(cn_metrics_group_wait(g, -1, 50, &fd_ready, &err), 0);
		assert_false(fd_ready);
	}
	return cn_metrics_group_next(g);
}

/* The fast service's read finishes while the slow one's hangs; the slow one ends at its own timeout, its good slot
 * read and its hung slot failed with the reason. */
static void test_hung_endpoint_delays_nobody_else(void **state)
{
	struct env *e = *state;
	struct cn_err err = { 0 };
	struct cn_metrics *slow = open_ok(&e->slow), *fast = open_ok(&e->fast);
	struct cn_sample s[2];
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(cn_metrics_start(slow, e->g, &err), 0);
	assert_int_equal(cn_metrics_start(fast, e->g, &err), 0);
	assert_int_equal(cn_metrics_group_inflight(e->g), 2);
	assert_int_equal(cn_metrics_group_pending(e->g), 2);
	assert_true(cn_metrics_busy(slow) && cn_metrics_busy(fast));
	/* the fast read ends; until it is handed out it is no longer in flight, but still pending */
	for (int i = 0; i < 200 && cn_metrics_group_inflight(e->g) == 2; i++) {
		bool fd_ready;
		assert_int_equal(cn_metrics_group_wait(e->g, -1, 20, &fd_ready, &err), 0);
	}
	assert_int_equal(cn_metrics_group_inflight(e->g), 1);
	assert_int_equal(cn_metrics_group_pending(e->g), 2);

	struct cn_metrics *m = next_ready(e->g, 10 * HUNG_TIMEOUT_MS);
	assert_ptr_equal(m, fast); /* first, although it was started second */
	double fast_ms = ms_since(&t0);
	assert_int_equal(cn_metrics_group_inflight(e->g), 1); /* the hung one is still out */
	assert_int_equal(cn_metrics_group_pending(e->g), 1);
	assert_int_equal(cn_metrics_collect(fast, s), 0);
	assert_false(cn_metrics_busy(fast));
	assert_true(s[0].ok && s[1].ok);
	assert_true(s[0].requests == 109 && s[0].errors == 9 && s[1].requests == 109);
	assert_int_equal(cn_metrics_collect(fast, s), -CN_EINTERNAL); /* collected once */

	m = next_ready(e->g, 10 * HUNG_TIMEOUT_MS);
	assert_ptr_equal(m, slow);
	double slow_ms = ms_since(&t0);
	print_message("fast read done after %.0f ms; hung read given up after %.0f ms (timeout %d ms)\n", fast_ms,
		      slow_ms, HUNG_TIMEOUT_MS);
	assert_true(fast_ms < slow_ms);
	assert_true(slow_ms >= HUNG_TIMEOUT_MS * 0.9);
	assert_int_equal(cn_metrics_collect(slow, s), 0);
	assert_true(s[0].ok);
	assert_true(s[0].requests == 109);
	assert_false(s[1].ok);
	assert_non_null(strstr(s[1].why, "/metrics"));
	assert_non_null(strstr(s[1].why, "imed out"));
	assert_int_equal(cn_metrics_group_inflight(e->g), 0);

	/* the readers are reusable: the fast one reads again, also with the synchronous call */
	assert_int_equal(cn_metrics_sample(fast, 0, &s[0]), 0);
	assert_true(s[0].ok && s[0].requests == 109);
	cn_metrics_close(slow);
	cn_metrics_close(fast);
}

/* The caller's socket (the daemon's database connection) wakes the wait at once while a read hangs. */
static void test_fd_wakes_the_wait(void **state)
{
	struct env *e = *state;
	struct cn_err err = { 0 };
	struct cn_metrics *slow = open_ok(&e->slow);
	int fds[2];
	bool fd_ready = false;
	struct timespec t0;

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(cn_metrics_start(slow, e->g, &err), 0);
	assert_int_equal(cn_metrics_group_wait(e->g, fds[0], 100, &fd_ready, &err), 0);
	assert_false(fd_ready);
	assert_int_equal(write(fds[1], "x", 1), 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 100 && !fd_ready; i++)
		assert_int_equal(cn_metrics_group_wait(e->g, fds[0], 5000, &fd_ready, &err), 0);
	assert_true(fd_ready);
	assert_true(ms_since(&t0) < HUNG_TIMEOUT_MS); /* woken by the socket, not by the hung read's end */
	assert_int_equal(cn_metrics_group_inflight(e->g), 1);
	cn_metrics_close(slow); /* closing mid-read cancels it */
	assert_int_equal(cn_metrics_group_inflight(e->g), 0);
	close(fds[0]);
	close(fds[1]);
}

/* One read at a time per reader; cancel makes it idle; a synchronous read is refused while a group read is out. */
static void test_one_read_at_a_time_and_cancel(void **state)
{
	struct env *e = *state;
	struct cn_err err = { 0 };
	struct cn_metrics *slow = open_ok(&e->slow);
	struct cn_sample s[2];

	assert_int_equal(cn_metrics_start(slow, e->g, &err), 0);
	assert_true(cn_metrics_start(slow, e->g, &err) < 0);
	assert_int_equal(cn_metrics_sample(slow, 0, &s[0]), -CN_EINTERNAL);
	assert_int_equal(cn_metrics_collect(slow, s), -CN_EINTERNAL); /* not finished */
	cn_metrics_cancel(slow);
	assert_false(cn_metrics_busy(slow));
	assert_int_equal(cn_metrics_group_inflight(e->g), 0);
	assert_null(cn_metrics_group_next(e->g));
	cn_metrics_cancel(slow); /* idle: nothing to do */
	cn_metrics_cancel(NULL);
	/* started again, and the group freed with it in flight (the reader stays open, idle) */
	struct cn_metrics_group *g2 = cn_metrics_group_new(&err);
	assert_non_null(g2);
	assert_int_equal(cn_metrics_start(slow, g2, &err), 0);
	cn_metrics_group_free(g2);
	assert_false(cn_metrics_busy(slow));
	cn_metrics_close(slow);
}

/* A source that reads synchronously (prometheus) goes through the same calls: ready at the next wait. */
static void test_synchronous_source(void **state)
{
	struct env *e = *state;
	struct cn_err err = { 0 };
	struct cn_service svc = e->fast;
	struct cn_sample s[2];
	int port = httpd_free_port();

	assert_true(port > 0);
	svc.metrics.source = CN_SOURCE_PROMETHEUS;
	snprintf(svc.metrics.prometheus_url, sizeof svc.metrics.prometheus_url, "http://127.0.0.1:%d", port);
	snprintf(svc.slots[0].selector, sizeof svc.slots[0].selector, "{slot=\"blue\"}");
	snprintf(svc.slots[1].selector, sizeof svc.slots[1].selector, "{slot=\"green\"}");
	struct cn_metrics *m = open_ok(&svc);
	assert_int_equal(cn_metrics_start(m, e->g, &err), 0);
	assert_true(cn_metrics_busy(m));
	assert_int_equal(cn_metrics_group_inflight(e->g), 0);
	assert_ptr_equal(next_ready(e->g, 1000), m);
	assert_int_equal(cn_metrics_collect(m, s), 0);
	assert_false(s[0].ok);
	assert_false(s[1].ok);
	assert_non_null(strstr(s[0].why, "prometheus"));
	assert_false(cn_metrics_busy(m));
	cn_metrics_close(m);
}

/* Beyond the group's cap, reads wait in order and begin as others end: 23 readers (one cancelled while it waited)
 * with at most 4 out, each page taking 100 ms, take six waves, not one; the first four started are the first four
 * done; every read is good. */
static void test_reads_beyond_the_cap_wait_their_turn(void **state)
{
	struct env *e = *state;
	struct cn_err err = { 0 };
	enum { N = 24 };
	struct cn_metrics *m[N];
	struct httpd_reply slowish = { .body = PAGE, .delay_ms = 100 }, rg = { .body = PAGE };
	struct cn_metrics_group *g = cn_metrics_group_new(&err);
	struct cn_sample s[2];
	struct timespec t0;

	assert_non_null(g);
	cn_metrics_group_max_inflight(g, 4);
	httpd_fixture_set_reply(e->good, &slowish);
	for (int i = 0; i < N; i++)
		m[i] = open_ok(&e->fast);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < N; i++)
		assert_int_equal(cn_metrics_start(m[i], g, &err), 0);
	assert_int_equal(cn_metrics_group_inflight(g), N);
	cn_metrics_cancel(m[10]); /* waiting: it leaves the queue */
	assert_false(cn_metrics_busy(m[10]));
	assert_int_equal(cn_metrics_group_inflight(g), N - 1);
	for (int k = 0; k < N - 1; k++) {
		struct cn_metrics *r = next_ready(g, 5000);
		assert_non_null(r);
		if (k < 4)
			assert_true(r == m[0] || r == m[1] || r == m[2] || r == m[3]);
		assert_int_equal(cn_metrics_collect(r, s), 0);
		assert_true(s[0].ok && s[1].ok);
		assert_true(s[0].requests == 109);
	}
	double ms = ms_since(&t0);
	print_message("23 reads, 4 at a time, 100 ms each: %.0f ms\n", ms);
	assert_true(ms >= 550);
	assert_int_equal(cn_metrics_group_inflight(g), 0);
	assert_null(cn_metrics_group_next(g));
	httpd_fixture_set_reply(e->good, &rg);
	/* freed with reads out and waiting: they are cancelled, the readers stay open and idle */
	for (int i = 0; i < 8; i++)
		assert_int_equal(cn_metrics_start(m[i], g, &err), 0);
	cn_metrics_group_free(g);
	for (int i = 0; i < N; i++) {
		assert_false(cn_metrics_busy(m[i]));
		cn_metrics_close(m[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hung_endpoint_delays_nobody_else),
		cmocka_unit_test(test_fd_wakes_the_wait),
		cmocka_unit_test(test_one_read_at_a_time_and_cancel),
		cmocka_unit_test(test_synchronous_source),
		cmocka_unit_test(test_reads_beyond_the_cap_wait_their_turn),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
