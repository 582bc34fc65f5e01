/* Integration tests of the Prometheus API source against a fake Prometheus on 127.0.0.1 that answers JSON: the
 * exact PromQL it receives (slot selector merged), good answers, status error, garbage and odd result types. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "canary/metrics.h"
#include "httpd_fixture.h"

enum mode { GOOD, STATUS_ERROR, GARBAGE, HTTP_503, MATRIX, EMPTY, BADHIST };

struct fake {
	enum mode mode;
	int unknown;              /* queries that matched no canned answer */
	char unknown_text[512];
};

struct canned {
	const char *query;
	const char *result;       /* the JSON array under data.result */
};

#define V(x) "{\"metric\":{},\"value\":[1700000000.123,\"" x "\"]}"
#define B(le, x) "{\"metric\":{\"le\":\"" le "\"},\"value\":[1700000000.123,\"" x "\"]}"

static const struct canned answers[] = {
	{ "sum(http_requests_total{slot=\"blue\"})", "[" V("120") "]" },
	{ "sum(http_requests_total{status=~\"5..\",slot=\"blue\"})", "[" V("6") "]" },
	{ "sum by (le) (lat_seconds_bucket{model=\"m\",slot=\"blue\"})",
	  "[" B("+Inf", "120") "," B("0.5", "80") "," B("0.25", "40") "," B("1", "110") "]" },
	{ "sum(lat_seconds_sum{model=\"m\",slot=\"blue\"})", "[" V("33.5") "]" },
	{ "sum(http_requests_total{slot=\"green\"})", "[]" },
	{ "sum(http_requests_total{status=~\"5..\",slot=\"green\"})", "[" V("NaN") "]" },
	{ "sum by (le) (lat_seconds_bucket{model=\"m\",slot=\"green\"})", "[" B("+Inf", "7") "," B("1.0", "5") "]" },
	{ "sum(lat_seconds_sum{model=\"m\",slot=\"green\"})", "[" V("+Inf") "]" },
};

static void handle(void *arg, const struct httpd_request *req, struct httpd_reply *reply)
{
	static __thread char body[2048];
	struct fake *f = arg;
	const char *q = httpd_request_arg(req, "query");

	reply->content_type = "application/json";
	if (strcmp(req->url, "/prom/api/v1/query") != 0 || !q) {
		reply->status = 404;
		reply->body = "404 page not found\n";
		return;
	}
	switch (f->mode) {
	case STATUS_ERROR:
		reply->status = 400;
		reply->body = "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"invalid parameter "
			      "\\\"query\\\": 1:5: parse error\"}";
		return;
	case GARBAGE:
		reply->body = "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[";
		return;
	case HTTP_503:
		reply->status = 503;
		reply->content_type = "text/plain";
		reply->body = "Service Unavailable";
		return;
	case MATRIX:
		reply->body = "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[]}}";
		return;
	case EMPTY:
		reply->body = "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}";
		return;
	case BADHIST:   /* every query: buckets that are not cumulative */
		reply->body = "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
			      B("+Inf", "3") "," B("1", "5") "]}}";
		return;
	case GOOD:
		break;
	}
	for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++) {
		if (strcmp(q, answers[i].query) == 0) {
			snprintf(body, sizeof body, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
				 "\"result\":%s}}", answers[i].result);
			reply->body = body;
			return;
		}
	}
	f->unknown++;
	snprintf(f->unknown_text, sizeof f->unknown_text, "%s", q);
	reply->status = 422;
	reply->body = "{\"status\":\"error\",\"errorType\":\"execution\",\"error\":\"unexpected query\"}";
}

struct env {
	struct httpd_fixture *srv;
	struct fake fake;
	struct cn_service svc;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	struct cn_err err = { 0 };
	struct cn_service *svc;

	if (!e)
		return -1;
	e->srv = httpd_fixture_start(&err);
	if (!e->srv) {
		fprintf(stderr, "%s\n", err.msg);
		free(e);
		return -1;
	}
	httpd_fixture_set_handler(e->srv, handle, &e->fake);
	svc = &e->svc;
	snprintf(svc->name, sizeof svc->name, "chat");
	snprintf(svc->slots[0].name, sizeof svc->slots[0].name, "blue");
	snprintf(svc->slots[1].name, sizeof svc->slots[1].name, "green");
	snprintf(svc->slots[0].selector, sizeof svc->slots[0].selector, "{slot=\"blue\"}");
	snprintf(svc->slots[1].selector, sizeof svc->slots[1].selector, "{ slot = 'green' }");
	svc->metrics.source = CN_SOURCE_PROMETHEUS;
	snprintf(svc->metrics.prometheus_url, sizeof svc->metrics.prometheus_url, "%s/prom/",
		 httpd_fixture_url(e->srv));
	svc->metrics.timeout_ms = 2000;
	snprintf(svc->metrics.names.requests, CN_SELECTOR_MAX, "http_requests_total");
	snprintf(svc->metrics.names.errors, CN_SELECTOR_MAX, "http_requests_total{status=~\"5..\"}");
	snprintf(svc->metrics.names.latency, CN_SELECTOR_MAX, "lat_seconds{model=\"m\"}");
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	httpd_fixture_stop(e->srv);
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

static void test_good(void **state)
{
	struct env *e = *state;
	struct cn_metrics *m = open_ok(&e->svc);
	struct cn_sample s;
	static const double le[] = { 0.25, 0.5, 1, INFINITY }, cnt[] = { 40, 80, 110, 120 };

	assert_int_equal(cn_metrics_sample(m, 0, &s), 0);
	if (!s.ok)
		print_message("%s (unknown query: %s)\n", s.why, e->fake.unknown_text);
	assert_true(s.ok);
	assert_int_equal(e->fake.unknown, 0);
	assert_true(s.requests == 120);
	assert_true(s.errors == 6);
	assert_int_equal(s.latency.nbuckets, 4);
	for (int i = 0; i < 4; i++) {
		assert_true(s.latency.le[i] == le[i]);
		assert_true(s.latency.count[i] == cnt[i]);
	}
	assert_true(s.latency.sum == 33.5);
	assert_int_equal(s.ttft.nbuckets, 0);
	assert_int_equal(httpd_fixture_requests(e->srv), 4);
	assert_int_equal(httpd_fixture_connections(e->srv), 1);

	/* green: no request counter (falls back to the +Inf bucket), NaN errors, +Inf sum */
	assert_int_equal(cn_metrics_sample(m, 1, &s), 0);
	assert_true(s.ok);
	assert_int_equal(e->fake.unknown, 0);
	assert_true(s.requests == 7);
	assert_true(isnan(s.errors));
	assert_int_equal(s.latency.nbuckets, 2);
	assert_true(s.latency.le[0] == 1.0 && s.latency.count[0] == 5);
	assert_true(isinf(s.latency.sum));
	cn_metrics_close(m);
}

struct bad_case {
	enum mode mode;
	const char *why;   /* after "prometheus URL/prom: " */
};

static const struct bad_case bad_cases[] = {
	{ STATUS_ERROR, "the requests query failed: invalid parameter \"query\": 1:5: parse error" },
	{ GARBAGE, "the requests query answered bad json (line 1: ']' expected near end of file)" },
	{ HTTP_503, "http status 503 for the requests query" },
	{ MATRIX, "the requests query answered resultType 'matrix', expected a vector" },
	{ BADHIST, "histogram 'lat_seconds' is not cumulative: le=inf has 3, le=1 has 5" },
};

static void test_bad_answers(void **state)
{
	struct env *e = *state;
	struct cn_metrics *m = open_ok(&e->svc);
	struct cn_sample s;
	char want[CN_WHY_MAX + 64];

	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		e->fake.mode = bad_cases[i].mode;
		assert_int_equal(cn_metrics_sample(m, 0, &s), 0);
		print_message("mode %d: %s\n", bad_cases[i].mode, s.why);
		assert_false(s.ok);
		snprintf(want, sizeof want, "prometheus %s/prom: %s", httpd_fixture_url(e->srv), bad_cases[i].why);
		assert_string_equal(s.why, want);
	}
	/* nothing matches anywhere: missing series, not a failure */
	e->fake.mode = EMPTY;
	assert_int_equal(cn_metrics_sample(m, 0, &s), 0);
	assert_true(s.ok);
	assert_true(isnan(s.requests) && isnan(s.errors));
	assert_int_equal(s.latency.nbuckets, 0);
	cn_metrics_close(m);
}

/* Out of descriptors, the reason says so ("Too many open files"), not libcurl 7.88's "Couldn't connect to server". */
static void test_out_of_descriptors(void **state)
{
	struct env *e = *state;
	struct cn_metrics *m = open_ok(&e->svc);
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

static void test_refused_and_open_errors(void **state)
{
	struct env *e = *state;
	struct cn_service svc = e->svc;
	struct cn_err err = { 0 };
	struct cn_metrics *m;
	struct cn_sample s;

	snprintf(svc.metrics.prometheus_url, sizeof svc.metrics.prometheus_url, "http://127.0.0.1:%d",
		 httpd_free_port());
	m = open_ok(&svc);
	assert_int_equal(cn_metrics_sample(m, 0, &s), 0);
	assert_false(s.ok);
	assert_non_null(strstr(s.why, "Couldn't connect"));
	cn_metrics_close(m);

	svc = e->svc;
	svc.metrics.prometheus_url[0] = '\0';
	assert_null(cn_metrics_open(&svc, &err));
	assert_int_equal(err.code, CN_EINPUT);
	svc = e->svc;
	snprintf(svc.slots[1].selector, sizeof svc.slots[1].selector, "up{slot=\"green\"}");
	assert_null(cn_metrics_open(&svc, &err));
	assert_string_equal(err.msg, "service 'chat' slot 'green': selector 'up{slot=\"green\"}' must be label matchers "
			    "only, e.g. {slot=\"blue\"}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_and_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_descriptors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
