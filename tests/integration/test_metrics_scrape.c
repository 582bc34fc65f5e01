/* Integration tests of the scrape source against real HTTP servers on 127.0.0.1: good pages, error statuses,
 * refused connections, slow servers, truncated and oversized bodies, keep-alive, no descriptor left. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "canary/metrics.h"
#include "httpd_fixture.h"

#define PAGE_BLUE \
	"# TYPE vllm:e2e_request_latency_seconds histogram\n" \
	"vllm:e2e_request_latency_seconds_bucket{le=\"0.5\",model_name=\"m\"} 5\n" \
	"vllm:e2e_request_latency_seconds_bucket{le=\"1.0\",model_name=\"m\"} 9\n" \
	"vllm:e2e_request_latency_seconds_bucket{le=\"+Inf\",model_name=\"m\"} 10\n" \
	"vllm:e2e_request_latency_seconds_count{model_name=\"m\"} 10\n" \
	"vllm:e2e_request_latency_seconds_sum{model_name=\"m\"} 4.5\n" \
	"vllm:time_to_first_token_seconds_bucket{le=\"0.1\",model_name=\"m\"} 7\n" \
	"vllm:time_to_first_token_seconds_bucket{le=\"+Inf\",model_name=\"m\"} 10\n" \
	"vllm:time_to_first_token_seconds_sum{model_name=\"m\"} 0.9\n" \
	"http_requests_total{status=\"200\"} 12\n" \
	"http_requests_total{status=\"500\"} 2\n" \
	"http_requests_total{status=\"503\"} 1\n"

#define PAGE_GREEN "http_requests_total{status=\"200\"} 100\nhttp_requests_total{status=\"502\"} 9\n"

struct env {
	struct httpd_fixture *blue, *green;
	struct cn_service svc;
};

static void service_for(struct cn_service *svc, const char *blue_url, const char *green_url, int64_t timeout_ms)
{
	memset(svc, 0, sizeof *svc);
	snprintf(svc->name, sizeof svc->name, "chat");
	snprintf(svc->slots[0].name, sizeof svc->slots[0].name, "blue");
	snprintf(svc->slots[1].name, sizeof svc->slots[1].name, "green");
	snprintf(svc->slots[0].metrics_url, sizeof svc->slots[0].metrics_url, "%s", blue_url);
	snprintf(svc->slots[1].metrics_url, sizeof svc->slots[1].metrics_url, "%s", green_url);
	svc->metrics.source = CN_SOURCE_SCRAPE;
	svc->metrics.timeout_ms = timeout_ms;
	snprintf(svc->metrics.names.requests, CN_SELECTOR_MAX, "http_requests_total");
	snprintf(svc->metrics.names.errors, CN_SELECTOR_MAX, "http_requests_total{status=~\"5..\"}");
	snprintf(svc->metrics.names.latency, CN_SELECTOR_MAX, "vllm:e2e_request_latency_seconds");
	snprintf(svc->metrics.names.ttft, CN_SELECTOR_MAX, "vllm:time_to_first_token_seconds");
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	struct cn_err err = { 0 };
	char b[128], g[128];
	struct httpd_reply rb = { .body = PAGE_BLUE }, rg = { .body = PAGE_GREEN };

	if (!e)
		return -1;
	e->blue = httpd_fixture_start(&err);
	e->green = httpd_fixture_start(&err);
	if (!e->blue || !e->green) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	httpd_fixture_set_reply(e->blue, &rb);
	httpd_fixture_set_reply(e->green, &rg);
	snprintf(b, sizeof b, "%s/metrics", httpd_fixture_url(e->blue));
	snprintf(g, sizeof g, "%s/metrics", httpd_fixture_url(e->green));
	service_for(&e->svc, b, g, 2000);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	httpd_fixture_stop(e->blue);
	httpd_fixture_stop(e->green);
	free(e);
	return 0;
}

static struct cn_metrics *open_ok(const struct cn_service *svc, const struct cn_metrics_limits *lim)
{
	struct cn_err err = { 0 };
	struct cn_metrics *m = cn_metrics_open_limits(svc, lim, &err);
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

static void test_good_pages_and_keepalive(void **state)
{
	struct env *e = *state;
	struct cn_metrics *m = open_ok(&e->svc, NULL);
	struct cn_sample s;

	for (int i = 0; i < 3; i++) {
		assert_int_equal(cn_metrics_sample(m, 0, &s), 0);
		assert_true(s.ok);
		assert_true(s.requests == 15);
		assert_true(s.errors == 3);
		assert_int_equal(s.latency.nbuckets, 3);
		assert_true(s.latency.le[0] == 0.5 && isinf(s.latency.le[2]));
		assert_true(s.latency.count[1] == 9 && s.latency.count[2] == 10);
		assert_true(s.latency.sum == 4.5);
		assert_int_equal(s.ttft.nbuckets, 2);
		assert_true(s.ttft.count[0] == 7);
		assert_int_equal(s.itl.nbuckets, 0);
		assert_true(isnan(s.itl.sum));
	}
	/* one connection for three scrapes: the handle keeps it alive */
	assert_int_equal(httpd_fixture_requests(e->blue), 3);
	assert_int_equal(httpd_fixture_connections(e->blue), 1);

	assert_int_equal(cn_metrics_sample(m, 1, &s), 0);
	assert_true(s.ok);
	assert_true(s.requests == 109);
	assert_int_equal(s.latency.nbuckets, 0);   /* missing: not an error */
	assert_int_equal(cn_metrics_sample(m, 2, &s), -CN_EINTERNAL);
	cn_metrics_close(m);
}

static void test_status_500_then_recovers(void **state)
{
	struct env *e = *state;
	struct cn_metrics *m = open_ok(&e->svc, NULL);
	struct httpd_reply r500 = { .status = 500, .body = "internal error\n" }, r200 = { .body = PAGE_BLUE };
	struct cn_sample s;
	char want[256];

	httpd_fixture_set_reply(e->blue, &r500);
	assert_int_equal(cn_metrics_sample(m, 0, &s), 0);
	assert_false(s.ok);
	snprintf(want, sizeof want, "metrics page %s: http status 500, expected 200", e->svc.slots[0].metrics_url);
	assert_string_equal(s.why, want);
	assert_true(isnan(s.requests));
	/* an error page that happens to hold a valid body is still refused */
	r500.status = 404;
	r500.body = PAGE_BLUE;
	httpd_fixture_set_reply(e->blue, &r500);
	assert_int_equal(cn_metrics_sample(m, 0, &s), 0);
	assert_false(s.ok);
	assert_non_null(strstr(s.why, "http status 404"));

	httpd_fixture_set_reply(e->blue, &r200);
	assert_int_equal(cn_metrics_sample(m, 0, &s), 0);
	assert_true(s.ok);
	assert_true(s.requests == 15);
	cn_metrics_close(m);
}

static void test_connection_refused(void **state)
{
	struct env *e = *state;
	struct cn_service svc = e->svc;
	struct cn_metrics *m;
	struct cn_sample s;
	char url[128], prefix[160];
	int port = httpd_free_port();

	assert_true(port > 0);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
	snprintf(svc.slots[1].metrics_url, sizeof svc.slots[1].metrics_url, "%s", url);
	m = open_ok(&svc, NULL);
	assert_int_equal(cn_metrics_sample(m, 1, &s), 0);
	assert_false(s.ok);
	print_message("refused: %s\n", s.why);
	snprintf(prefix, sizeof prefix, "metrics page %s: ", url);
	assert_memory_equal(s.why, prefix, strlen(prefix));
	assert_non_null(strstr(s.why, "onnect"));
	cn_metrics_close(m);
}

/* Out of descriptors, the page's reason says so ("Too many open files", which canaryd holds on) rather than libcurl
 * 7.88's "Couldn't connect to server", which reads as a server that is down; with descriptors back it reads again. */
static void test_out_of_descriptors(void **state)
{
	struct env *e = *state;
	struct cn_metrics *m = open_ok(&e->svc, NULL);
	struct cn_sample s;
	struct rlimit was;
	int fds[4096], n = 0;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &was), 0);
	struct rlimit low = { .rlim_cur = 256, .rlim_max = was.rlim_max };
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (n < 4096 && (fds[n] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		n++;
	assert_true(n < 4096);
	int rc = cn_metrics_sample(m, 0, &s);
	while (n > 0)
		close(fds[--n]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &was), 0);
	assert_int_equal(rc, 0);
	assert_false(s.ok);
	print_message("out of descriptors: %s\n", s.why);
	assert_non_null(strstr(s.why, "Too many open files"));
	assert_int_equal(cn_metrics_sample(m, 0, &s), 0);
	assert_true(s.ok);
	cn_metrics_close(m);
}

static void test_timeout(void **state)
{
	struct env *e = *state;
	struct cn_service svc = e->svc;
	struct httpd_reply slow = { .body = PAGE_BLUE, .delay_ms = 3000 };
	struct cn_metrics *m;
	struct cn_sample s;
	struct timespec t0;
	double ms;

	svc.metrics.timeout_ms = 300;
	m = open_ok(&svc, NULL);
	httpd_fixture_set_reply(e->blue, &slow);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(cn_metrics_sample(m, 0, &s), 0);
	ms = ms_since(&t0);
	assert_false(s.ok);
	print_message("timeout after %.0f ms: %s\n", ms, s.why);
	assert_non_null(strstr(s.why, "timed out"));
	assert_true(ms >= 250 && ms < 2000);
	cn_metrics_close(m);
}

static void test_truncated_body(void **state)
{
	struct env *e = *state;
	struct cn_metrics *m = open_ok(&e->svc, NULL);
	struct httpd_reply cut = { .body = PAGE_BLUE, .total = 100000, .truncate = true };
	struct cn_sample s;

	httpd_fixture_set_reply(e->blue, &cut);
	assert_int_equal(cn_metrics_sample(m, 0, &s), 0);
	assert_false(s.ok);
	print_message("truncated: %s\n", s.why);
	assert_non_null(strstr(s.why, "metrics page http://127.0.0.1:"));
	assert_true(strstr(s.why, "transfer closed") || strstr(s.why, "artial"));
	cn_metrics_close(m);
}

static void test_huge_body(void **state)
{
	struct env *e = *state;
	static const char filler[] = "# filler comment that nobody reads, repeated until the page is far too big\n";
	struct httpd_reply huge = { .body = filler, .total = 64u * 1024 * 1024 };
	struct cn_metrics_limits lim = { .max_page = 4u * 1024 * 1024 };
	struct cn_metrics *m;
	struct cn_sample s;
	char want[256];

	httpd_fixture_set_reply(e->blue, &huge);
	m = open_ok(&e->svc, &lim);
	assert_int_equal(cn_metrics_sample(m, 0, &s), 0);
	assert_false(s.ok);
	snprintf(want, sizeof want, "metrics page %s is larger than 4194304 bytes (raise the page limit or expose "
		 "fewer series)", e->svc.slots[0].metrics_url);
	assert_string_equal(s.why, want);
	cn_metrics_close(m);

	/* the default cap is 32 MiB */
	m = open_ok(&e->svc, NULL);
	assert_int_equal(cn_metrics_sample(m, 0, &s), 0);
	assert_false(s.ok);
	assert_non_null(strstr(s.why, "is larger than 33554432 bytes"));
	cn_metrics_close(m);
}

static void test_bad_page_and_fallback(void **state)
{
	struct env *e = *state;
	struct cn_metrics *m = open_ok(&e->svc, NULL);
	struct httpd_reply bad = { .body = "http_requests_total{status=\"200\"} 12\nhttp_requests_total 1,5\n" };
	struct httpd_reply nocounter = { .body = "vllm:e2e_request_latency_seconds_bucket{le=\"+Inf\"} 42\n"
					 "vllm:e2e_request_latency_seconds_count 42\n" };
	struct cn_sample s;
	char want[256];

	httpd_fixture_set_reply(e->blue, &bad);
	assert_int_equal(cn_metrics_sample(m, 0, &s), 0);
	assert_false(s.ok);
	snprintf(want, sizeof want, "metrics page %s line 2: bad number '1,5'", e->svc.slots[0].metrics_url);
	assert_string_equal(s.why, want);

	httpd_fixture_set_reply(e->blue, &nocounter);
	assert_int_equal(cn_metrics_sample(m, 0, &s), 0);
	assert_true(s.ok);
	assert_true(s.requests == 42);   /* from the latency histogram's count */
	assert_true(s.errors == 0);       /* no error series yet: nothing failed (series appear at their first increment) */
	cn_metrics_close(m);
}

static void test_open_errors(void **state)
{
	struct env *e = *state;
	struct cn_service svc = e->svc;
	struct cn_err err = { 0 };

	svc.slots[1].metrics_url[0] = '\0';
	assert_null(cn_metrics_open(&svc, &err));
	assert_int_equal(err.code, CN_EINPUT);
	assert_string_equal(err.msg, "service 'chat' slot 'green': no metrics_url to scrape (set it, or use the "
			    "prometheus source)");
	svc = e->svc;
	snprintf(svc.metrics.names.errors, CN_SELECTOR_MAX, "x{a=~\"(\"}");
	assert_null(cn_metrics_open(&svc, &err));
	assert_int_equal(err.code, CN_EINPUT);
	assert_non_null(strstr(err.msg, "service 'chat': metric name 'errors': selector 'x{a=~\"(\"}': bad regex"));
}

/* Readers hold no HTTP handle between reads: 40 readers read at once in a group (80 transfers), and afterwards
 * the process keeps CN_CURL_POOL_IDLE (64) handles, not 80; each reader then reads again with a handle another had. */
static void test_readers_share_pooled_handles(void **state)
{
	struct env *e = *state;
	enum { N = 40 };
	struct cn_metrics *m[N];
	struct cn_err err = { 0 };
	struct cn_metrics_group *g = cn_metrics_group_new(&err);
	struct cn_sample out[2];
	int done = 0;

	assert_non_null(g);
	for (int i = 0; i < N; i++)
		m[i] = open_ok(&e->svc, NULL);
	assert_true(cn_curl_pool_idle() <= CN_CURL_POOL_IDLE);
	for (int i = 0; i < N; i++)
		assert_int_equal(cn_metrics_start(m[i], g, &err), 0);
	for (int rounds = 0; done < N && rounds < 2000; rounds++) {
		bool fd_ready;
		assert_int_equal(cn_metrics_group_wait(g, -1, 50, &fd_ready, &err), 0);
		struct cn_metrics *r;
		while ((r = cn_metrics_group_next(g)) != NULL) {
			assert_int_equal(cn_metrics_collect(r, out), 0);
			if (!out[1].ok || !out[0].ok)
				print_message("%s / %s\n", out[0].why, out[1].why);
			assert_true(out[0].ok && out[0].requests == 15);
			assert_true(out[1].ok && out[1].requests == 109);
			done++;
		}
	}
	assert_int_equal(done, N);
	assert_int_equal(cn_curl_pool_idle(), CN_CURL_POOL_IDLE);
	for (int i = 0; i < N; i++) {
		assert_int_equal(cn_metrics_sample(m[i], i % 2, out), 0);
		assert_true(out[0].ok && out[0].requests == (i % 2 ? 109 : 15));
	}
	cn_metrics_group_free(g);
	for (int i = 0; i < N; i++)
		cn_metrics_close(m[i]);
	assert_int_equal(cn_curl_pool_idle(), CN_CURL_POOL_IDLE);
	cn_curl_pool_drain();
	assert_int_equal(cn_curl_pool_idle(), 0);
}

/* A handle given back keeps nothing of its last reader: the next one reads its own URL with its own timeout. Reader
 * a (blue, 300 ms) times out; reader b (green, 2 s) then takes the same handle and waits 800 ms for its page. */
static void test_pooled_handle_forgets_its_reader(void **state)
{
	struct env *e = *state;
	struct cn_service sa = e->svc, sb = e->svc;
	struct httpd_reply slow = { .body = PAGE_GREEN, .delay_ms = 800 };
	struct cn_sample s;

	cn_curl_pool_drain();
	sa.metrics.timeout_ms = 300;
	snprintf(sa.slots[1].metrics_url, sizeof sa.slots[1].metrics_url, "%s", e->svc.slots[0].metrics_url);
	snprintf(sb.slots[0].metrics_url, sizeof sb.slots[0].metrics_url, "%s", e->svc.slots[1].metrics_url);
	struct cn_metrics *a = open_ok(&sa, NULL), *b = open_ok(&sb, NULL);
	struct httpd_reply blue_slow = { .body = PAGE_BLUE, .delay_ms = 800 };
	httpd_fixture_set_reply(e->blue, &blue_slow);
	assert_int_equal(cn_metrics_sample(a, 0, &s), 0);
	assert_false(s.ok);
	assert_non_null(strstr(s.why, "timed out"));
	assert_int_equal(cn_curl_pool_idle(), 1);  /* a's handle came back */
	httpd_fixture_set_reply(e->green, &slow);
	assert_int_equal(cn_metrics_sample(b, 0, &s), 0); /* that handle, for green with 2 s */
	if (!s.ok)
		print_message("b: %s\n", s.why);
	assert_true(s.ok);
	assert_true(s.requests == 109);
	assert_int_equal(cn_curl_pool_idle(), 1);
	cn_metrics_close(a);
	cn_metrics_close(b);
}

/* Readers of the same page with the same metric names share its reset tracker (the loop's and the SLA observer's
 * readers of one service): a reader opened after a restart of the page's server still counts from before it. A
 * reader with other names keeps a tracker of its own, and the last reader to close frees the shared one. */
static void test_readers_share_trackers(void **state)
{
	struct env *e = *state;
	struct cn_metrics *m1 = open_ok(&e->svc, NULL);
	struct cn_sample s;

	assert_int_equal(cn_metrics_sample(m1, 1, &s), 0);
	assert_true(s.ok && s.requests == 109);
	struct httpd_reply restarted = { .body = "http_requests_total{status=\"200\"} 5\n" };
	httpd_fixture_set_reply(e->green, &restarted);
	struct cn_metrics *m2 = open_ok(&e->svc, NULL);
	assert_int_equal(cn_metrics_sample(m2, 1, &s), 0);
	assert_true(s.ok);
	assert_true(s.requests == 100 + 5 + 9); /* the 200s restarted from 100, the 502s left with their 9 */

	struct cn_service other = e->svc;
	snprintf(other.metrics.names.requests, CN_SELECTOR_MAX, "http_requests_total{status=\"200\"}");
	struct cn_metrics *m3 = open_ok(&other, NULL);
	assert_int_equal(cn_metrics_sample(m3, 1, &s), 0);
	assert_true(s.ok && s.requests == 5); /* its own tracker: it never saw the 100 */

	cn_metrics_close(m1);
	assert_int_equal(cn_metrics_sample(m2, 1, &s), 0); /* m2 still holds the shared tracker */
	assert_true(s.ok && s.requests == 114);
	cn_metrics_close(m2);
	struct cn_metrics *m4 = open_ok(&e->svc, NULL); /* every sharer closed: a fresh tracker */
	assert_int_equal(cn_metrics_sample(m4, 1, &s), 0);
	assert_true(s.ok && s.requests == 5);
	cn_metrics_close(m4);
	cn_metrics_close(m3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_pages_and_keepalive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_500_then_recovers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_descriptors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_page_and_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readers_share_pooled_handles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pooled_handle_forgets_its_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readers_share_trackers, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
