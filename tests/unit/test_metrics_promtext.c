/* Unit tests of the Prometheus text-format parser and the series selectors: table-driven pages, hostile input
 * with the expected reasons, chunked feeding, and a million-series page in bounded memory. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cmocka.h>

#include "canary/judge.h"
#include "canary/promtext.h"
#include "canary/service.h"

#define ORIGIN "http://127.0.0.1:8001/metrics"

static bool same(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b);
	if (isinf(a) || isinf(b))
		return a == b;
	return fabs(a - b) <= 1e-9 * (1 + fabs(b));
}

static void names_set(struct cn_metric_names *n, const char *req, const char *errs, const char *lat)
{
	memset(n, 0, sizeof *n);
	snprintf(n->requests, sizeof n->requests, "%s", req);
	snprintf(n->errors, sizeof n->errors, "%s", errs);
	snprintf(n->latency, sizeof n->latency, "%s", lat);
}

/* Parses page with the names; chunk > 0 feeds it that many bytes at a time. */
static void parse(const struct cn_metric_names *n, const struct cn_promtext_limits *lim, const char *page,
		  size_t chunk, struct cn_sample *out)
{
	struct cn_err err = { 0 };
	struct cn_promtext *p = cn_promtext_new(n, lim, &err);
	size_t len = strlen(page);

	assert_non_null(p);
	if (chunk == 0) {
		cn_promtext_parse(p, ORIGIN, page, len, out);
	} else {
		cn_promtext_begin(p, ORIGIN);
		for (size_t i = 0; i < len; i += chunk)
			cn_promtext_feed(p, page + i, len - i < chunk ? len - i : chunk);
		cn_promtext_end(p, out);
	}
	cn_promtext_free(p);
}

#define VLLM_PAGE \
	"# HELP vllm:e2e_request_latency_seconds Histogram of end to end request latency in seconds.\n" \
	"# TYPE vllm:e2e_request_latency_seconds histogram\n" \
	"vllm:e2e_request_latency_seconds_bucket{le=\"0.3\",model_name=\"m\"} 2.0\n" \
	"vllm:e2e_request_latency_seconds_bucket{le=\"0.5\",model_name=\"m\"} 5.0\n" \
	"vllm:e2e_request_latency_seconds_bucket{le=\"1.0\",model_name=\"m\"} 9.0\n" \
	"vllm:e2e_request_latency_seconds_bucket{le=\"+Inf\",model_name=\"m\"} 10.0\n" \
	"vllm:e2e_request_latency_seconds_count{model_name=\"m\"} 10.0\n" \
	"vllm:e2e_request_latency_seconds_sum{model_name=\"m\"} 4.25\n" \
	"vllm:e2e_request_latency_seconds_bucket{le=\"0.3\",model_name=\"n\"} 1\n" \
	"vllm:e2e_request_latency_seconds_bucket{le=\"0.5\",model_name=\"n\"} 1\n" \
	"vllm:e2e_request_latency_seconds_bucket{le=\"1.0\",model_name=\"n\"} 3\n" \
	"vllm:e2e_request_latency_seconds_bucket{le=\"+Inf\",model_name=\"n\"} 4\n" \
	"vllm:e2e_request_latency_seconds_count{model_name=\"n\"} 4\n" \
	"vllm:e2e_request_latency_seconds_sum{model_name=\"n\"} 1.75\n" \
	"# HELP vllm:request_success_total Count of successfully processed requests.\n" \
	"# TYPE vllm:request_success_total counter\n" \
	"vllm:request_success_total{finished_reason=\"stop\",model_name=\"m\"} 11.0\n" \
	"vllm:request_success_total{finished_reason=\"length\",model_name=\"m\"} 3.0\n" \
	"vllm:num_requests_running{model_name=\"m\"} 7.0\n" \
	"http_requests_total{handler=\"/v1/completions\",method=\"POST\",status=\"2xx\"} 100\n" \
	"http_requests_total{handler=\"/v1/completions\",method=\"POST\",status=\"5xx\"} 4\n" \
	"http_requests_total{handler=\"/metrics\",method=\"GET\",status=\"2xx\"} 50\n"

struct page_case {
	const char *name;
	const char *requests, *errors, *latency;
	const char *page;
	bool ok;
	const char *why;          /* expected reason, exactly, when !ok */
	double requests_v, errors_v;
	int nbuckets;
	double last_le, first_count, inf_count, sum;
};

#define NO NAN
static const struct page_case page_cases[] = {
	{ "vllm page, sums across label sets", "vllm:request_success_total", "http_requests_total{status=\"5xx\"}",
	  "vllm:e2e_request_latency_seconds", VLLM_PAGE, true, NULL, 14, 4, 4, INFINITY, 3, 14, 6.0 },
	{ "label selector narrows the histogram", "http_requests_total{handler=\"/v1/completions\"}", "",
	  "vllm:e2e_request_latency_seconds{model_name=\"n\"}", VLLM_PAGE, true, NULL, 104, NO, 4, INFINITY, 1, 4,
	  1.75 },
	{ "regex is anchored", "", "http_requests_total{status=~\"5..\"}", "",
	  "http_requests_total{status=\"500\"} 1\nhttp_requests_total{status=\"503\"} 2\n"
	  "http_requests_total{status=\"5000\"} 40\nhttp_requests_total{status=\"200\"} 80\n"
	  "http_requests_total{status=\"x500\"} 160\n",
	  true, NULL, NO, 3, 0, 0, 0, 0, NO },
	{ "negative matchers, absent label matches empty", "req_total{status!=\"200\"}",
	  "req_total{status!~\"2..|4..\",code=\"\"}", "",
	  "req_total{status=\"200\"} 1\nreq_total{status=\"404\"} 2\nreq_total{status=\"500\"} 4\n"
	  "req_total{status=\"502\",code=\"x\"} 8\nreq_total 16\n",
	  true, NULL, 30, 20, 0, 0, 0, 0, NO },
	{ "escaped quotes, backslashes, newlines, braces in values", "req_total{path=\"a\\\"b\\\\c\\nd\"}",
	  "req_total{path=\"{x,y}\"}", "",
	  "req_total{path=\"a\\\"b\\\\c\\nd\"} 5\nreq_total{path=\"a\\\"b\"} 100\nreq_total{path=\"{x,y}\",z=\"}\"} 7\n",
	  true, NULL, 5, 7, 0, 0, 0, 0, NO },
	{ "exponents, NaN, +Inf, timestamps, spaces, CRLF", "a_total", "b_total", "h",
	  "a_total 1.5e3 1700000000000\r\nb_total{x=\"1\"} NaN\r\n  h_bucket{le=\"1e-1\"}\t2E0\r\n"
	  "h_bucket{le=\"+Inf\"} 3 -5\r\nh_sum -2.5e-1\r\nh_count 3\r\n",
	  true, NULL, 1500, NO, 2, INFINITY, 2, 3, -0.25 },
	{ "counter +Inf value", "a_total", "", "", "a_total +Inf\n", true, NULL, INFINITY, NO, 0, 0, 0, 0, NO },
	{ "missing series are NAN and empty, not errors", "nope_total", "nope2_total", "nope_seconds",
	  "other_total 3\n# nope_total 5\n", true, NULL, NO, NO, 0, 0, 0, 0, NO },
	{ "no error series while requests exist means no errors yet", "a_total", "a_total{status=~\"5..\"}", "",
	  "a_total{status=\"200\"} 10\n", true, NULL, 10, 0, 0, 0, 0, 0, NO },
	{ "requests fall back to the latency count", "nope_total", "", "h",
	  "h_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 9\nh_count 9\nh_sum 3\n", true, NULL, 9, NO, 2, INFINITY,
	  2, 9, 3 },
	{ "fallback uses +Inf bucket without _count", "", "", "h", "h_bucket{le=\"+Inf\"} 6\n", true, NULL, 6, NO,
	  1, INFINITY, 6, 6, NO },
	{ "names that only share a prefix are not summed", "a_total", "", "h",
	  "a_total_x 1\na_totally 2\na_total 3\nh_bucketx{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 1\nhh_sum 4\n",
	  true, NULL, 3, NO, 1, INFINITY, 1, 1, NO },
	{ "unrelated bad lines are ignored", "a_total", "", "",
	  "other_total abc\n{{{ garbage\n\x01\x02\na_total 2\n", true, NULL, 2, NO, 0, 0, 0, 0, NO },
	/* hostile or broken pages */
	{ "bad number", "a_total", "", "", "# x\n\n\n\n\n\na_total abc\n", false,
	  "metrics page " ORIGIN " line 7: bad number 'abc'", 0, 0, 0, 0, 0, 0, 0 },
	{ "bad number, trailing junk", "a_total", "", "", "a_total 1.5x\n", false,
	  "metrics page " ORIGIN " line 1: bad number '1.5x'", 0, 0, 0, 0, 0, 0, 0 },
	{ "no value", "a_total", "", "", "a_total\n", false, "metrics page " ORIGIN " line 1: 'a_total' has no value", 0, 0, 0, 0, 0, 0, 0 },
	{ "bad timestamp", "a_total", "", "", "a_total 1 12:00\n", false,
	  "metrics page " ORIGIN " line 1: bad timestamp '12:00'", 0, 0, 0, 0, 0, 0, 0 },
	{ "text after timestamp", "a_total", "", "", "a_total 1 2 3\n", false,
	  "metrics page " ORIGIN " line 1: unexpected '3' after the timestamp", 0, 0, 0, 0, 0, 0, 0 },
	{ "unterminated label value", "a_total", "", "", "a_total{x=\"1} 2\n", false,
	  "metrics page " ORIGIN " line 1: unterminated value of label 'x'", 0, 0, 0, 0, 0, 0, 0 },
	{ "bad label syntax", "a_total", "", "", "a_total{x=1} 2\n", false,
	  "metrics page " ORIGIN " line 1: expected '\"' after label 'x='", 0, 0, 0, 0, 0, 0, 0 },
	{ "bucket without le", "", "", "h", "h_bucket{x=\"1\"} 2\n", false,
	  "metrics page " ORIGIN " line 1: 'h_bucket' has no 'le' label", 0, 0, 0, 0, 0, 0, 0 },
	{ "bad le", "", "", "h", "h_bucket{le=\"fast\"} 2\n", false, "metrics page " ORIGIN " line 1: bad le 'fast'", 0, 0, 0, 0, 0, 0, 0 },
	{ "series not cumulative", "", "", "h",
	  "h_bucket{le=\"0.1\"} 5\nh_bucket{le=\"0.2\"} 4\nh_bucket{le=\"+Inf\"} 6\n", false,
	  "metrics page " ORIGIN " line 2: histogram 'h' is not cumulative: le=0.2 has 4, le=0.1 has 5", 0, 0, 0, 0, 0, 0, 0 },
	{ "sum not cumulative (unordered lines)", "", "", "h",
	  "h_bucket{le=\"+Inf\"} 6\nh_bucket{le=\"0.2\"} 4\nh_bucket{le=\"0.1\"} 5\n", false,
	  "metrics page " ORIGIN ": histogram 'h' is not cumulative: le=0.2 has 4, le=0.1 has 5", 0, 0, 0, 0, 0, 0, 0 },
	{ "no +Inf bucket", "", "", "h", "h_bucket{le=\"0.1\"} 5\n", false,
	  "metrics page " ORIGIN ": histogram 'h' has no le=\"+Inf\" bucket", 0, 0, 0, 0, 0, 0, 0 },
	{ "truncated last line", "a_total", "", "", "a_total 1\na_total 2", false,
	  "metrics page " ORIGIN " line 2: ends without a newline (truncated page?)", 0, 0, 0, 0, 0, 0, 0 },
	{ "empty page", "a_total", "", "", "", false, "metrics page " ORIGIN " is empty", 0, 0, 0, 0, 0, 0, 0 },
	/* a page that is not Prometheus text at all says so, not "requests counter missing" */
	{ "an HTML error page", "a_total", "", "", "<!DOCTYPE html>\n<html><body>502 Bad Gateway</body></html>\n", false,
	  "metrics page " ORIGIN " is not Prometheus text: line 1 starts '<!DOCTYPE html>' (HTML?); check the metrics URL",
	  0, 0, 0, 0, 0, 0, 0 },
	{ "a JSON answer after a comment", "a_total", "", "", "# hello\n{\"status\":\"error\"}\n", false,
	  "metrics page " ORIGIN " is not Prometheus text: line 2 starts '{\"status\":\"error\"}' (JSON?); check the "
	  "metrics URL", 0, 0, 0, 0, 0, 0, 0 },
	{ "a number first", "a_total", "", "", "42\n", false,
	  "metrics page " ORIGIN " is not Prometheus text: line 1 starts '42'; check the metrics URL", 0, 0, 0, 0, 0, 0, 0 },
};

static void check_case(const struct page_case *c, const struct cn_sample *s)
{
	print_message("case: %s\n", c->name);
	if (!c->ok) {
		assert_false(s->ok);
		assert_string_equal(s->why, c->why);
		return;
	}
	if (!s->ok)
		print_message("unexpected failure: %s\n", s->why);
	assert_true(s->ok);
	assert_true(same(s->requests, c->requests_v));
	assert_true(same(s->errors, c->errors_v));
	assert_int_equal(s->latency.nbuckets, c->nbuckets);
	assert_true(same(s->latency.sum, c->sum));
	if (c->nbuckets > 0) {
		assert_true(same(s->latency.le[c->nbuckets - 1], c->last_le));
		assert_true(same(s->latency.count[0], c->first_count));
		assert_true(same(s->latency.count[c->nbuckets - 1], c->inf_count));
		for (int i = 1; i < c->nbuckets; i++)
			assert_true(s->latency.le[i] > s->latency.le[i - 1]);
	}
	assert_int_equal(s->ttft.nbuckets, 0);
}

static void test_pages(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof page_cases / sizeof page_cases[0]; i++) {
		const struct page_case *c = &page_cases[i];
		struct cn_metric_names n;
		struct cn_sample whole, bytewise, sevens;

		names_set(&n, c->requests, c->errors, c->latency);
		parse(&n, NULL, c->page, 0, &whole);
		check_case(c, &whole);
		/* streaming must not depend on where the chunks split */
		parse(&n, NULL, c->page, 1, &bytewise);
		check_case(c, &bytewise);
		parse(&n, NULL, c->page, 7, &sevens);
		check_case(c, &sevens);
	}
}

static void test_vllm_buckets(void **state)
{
	struct cn_metric_names n;
	struct cn_sample s;
	static const double le[] = { 0.3, 0.5, 1.0, INFINITY }, cnt[] = { 3, 6, 12, 14 };

	(void)state;
	names_set(&n, "", "", "vllm:e2e_request_latency_seconds");
	snprintf(n.ttft, sizeof n.ttft, "vllm:e2e_request_latency_seconds{model_name=\"m\"}");
	parse(&n, NULL, VLLM_PAGE, 0, &s);
	assert_true(s.ok);
	assert_int_equal(s.latency.nbuckets, 4);
	for (int i = 0; i < 4; i++) {
		assert_true(same(s.latency.le[i], le[i]));
		assert_true(same(s.latency.count[i], cnt[i]));
	}
	assert_true(same(s.requests, 14));   /* from _count: no requests selector */
	assert_int_equal(s.ttft.nbuckets, 4);
	assert_true(same(s.ttft.count[3], 10));
	assert_true(same(s.ttft.sum, 4.25));
}

/* Triton's time to first response is a histogram in milliseconds (nv_inference_first_response_histogram_ms, its
 * default buckets 100, 500, 2000, 5000 ms): read with the triton preset, the core gets seconds, so a ttft limit of
 * 300ms judges 0.1 s .. 0.5 s buckets, not 100 s .. 500 s ones. */
static void test_triton_milliseconds(void **state)
{
	static const char page[] =
		"# HELP nv_inference_count Number of inferences performed\n"
		"# TYPE nv_inference_count counter\n"
		"nv_inference_count{model=\"llm\",version=\"1\"} 40\n"
		"nv_inference_request_failure{model=\"llm\",version=\"1\"} 2\n"
		"nv_inference_request_duration_us{model=\"llm\",version=\"1\"} 9000000\n"
		"# TYPE nv_inference_first_response_histogram_ms histogram\n"
		"nv_inference_first_response_histogram_ms_bucket{model=\"llm\",version=\"1\",le=\"100\"} 10\n"
		"nv_inference_first_response_histogram_ms_bucket{model=\"llm\",version=\"1\",le=\"500\"} 30\n"
		"nv_inference_first_response_histogram_ms_bucket{model=\"llm\",version=\"1\",le=\"2000\"} 38\n"
		"nv_inference_first_response_histogram_ms_bucket{model=\"llm\",version=\"1\",le=\"5000\"} 40\n"
		"nv_inference_first_response_histogram_ms_bucket{model=\"llm\",version=\"1\",le=\"+Inf\"} 40\n"
		"nv_inference_first_response_histogram_ms_sum{model=\"llm\",version=\"1\"} 16000\n"
		"nv_inference_first_response_histogram_ms_count{model=\"llm\",version=\"1\"} 40\n";
	static const double le[] = { 0.1, 0.5, 2.0, 5.0, INFINITY }, cnt[] = { 10, 30, 38, 40, 40 };
	struct cn_metric_names n;
	struct cn_sample s;

	(void)state;
	cn_metric_names_preset(CN_PRESET_TRITON, &n);
	parse(&n, NULL, page, 7, &s);
	assert_true(s.ok);
	assert_true(same(s.requests, 40));
	assert_true(same(s.errors, 2));
	assert_int_equal(s.ttft.nbuckets, 5);
	for (int i = 0; i < 5; i++) {
		assert_true(same(s.ttft.le[i], le[i]));
		assert_true(same(s.ttft.count[i], cnt[i]));
	}
	assert_true(same(s.ttft.sum, 16.0)); /* 16,000 ms */
	double p90 = cn_histogram_quantile(0.9, &s.ttft);
	assert_true(p90 > 0.5 && p90 <= 2.0);
	/* the request duration is a counter of microseconds, not a histogram: no latency buckets, never a guess */
	assert_int_equal(s.latency.nbuckets, 0);
	/* the unit from the name's end */
	assert_true(same(cn_promtext_unit_seconds("nv_inference_first_response_histogram_ms"), 1e-3));
	assert_true(same(cn_promtext_unit_seconds("x_request_duration_us"), 1e-6));
	assert_true(same(cn_promtext_unit_seconds("vllm:time_to_first_token_seconds"), 1));
	assert_true(same(cn_promtext_unit_seconds("ms"), 1));
}

static void test_long_line(void **state)
{
	struct cn_metric_names n;
	struct cn_sample s;
	struct cn_promtext_limits lim = { .max_line = 1024 };
	size_t len = 4096;
	char *page = malloc(len + 64);

	(void)state;
	assert_non_null(page);
	names_set(&n, "a_total", "", "");
	snprintf(page, 64, "a_total 1\n# fine\nx{v=\"");
	memset(page + strlen(page), 'y', len);
	page[len] = '\0';
	parse(&n, &lim, page, 0, &s);
	assert_false(s.ok);
	assert_string_equal(s.why, "metrics page " ORIGIN " line 3: longer than 1024 bytes");
	parse(&n, &lim, page, 100, &s);
	assert_false(s.ok);
	assert_string_equal(s.why, "metrics page " ORIGIN " line 3: longer than 1024 bytes");

	/* the default limit is 64 KiB: a 100 KiB line fails, a 60 KiB one is fine */
	free(page);
	len = 100 * 1024;
	page = malloc(len + 64);
	assert_non_null(page);
	memcpy(page, "a_total{x=\"", 11);
	memset(page + 11, 'y', len);
	memcpy(page + 11 + len, "\"} 1\n", 6);
	parse(&n, NULL, page, 0, &s);
	assert_false(s.ok);
	assert_string_equal(s.why, "metrics page " ORIGIN " line 1: longer than 65536 bytes");
	memcpy(page + 11 + 60 * 1024, "\"} 1\n", 6);
	parse(&n, NULL, page, 0, &s);
	assert_true(s.ok);
	assert_true(same(s.requests, 1));
	free(page);
}

static void test_too_many_buckets(void **state)
{
	struct cn_metric_names n;
	struct cn_sample s;
	char *page = malloc(64 * 1024);
	size_t len = 0;

	(void)state;
	assert_non_null(page);
	names_set(&n, "", "", "h");
	for (int i = 1; i <= CN_MAX_BUCKETS; i++)
		len += (size_t)snprintf(page + len, 64 * 1024 - len, "h_bucket{le=\"%d\"} %d\n", i, i);
	snprintf(page + len, 64 * 1024 - len, "h_bucket{le=\"+Inf\"} 100\n");
	parse(&n, NULL, page, 0, &s);
	assert_false(s.ok);
	assert_string_equal(s.why, "metrics page " ORIGIN " line 65: histogram 'h' has more than 64 distinct le bounds");

	/* exactly CN_MAX_BUCKETS with +Inf is fine, and le="1" and le="1.0" are one bound */
	len = 0;
	for (int i = 1; i < CN_MAX_BUCKETS; i++)
		len += (size_t)snprintf(page + len, 64 * 1024 - len, "h_bucket{le=\"%d\",a=\"x\"} %d\n", i, i);
	for (int i = 1; i < CN_MAX_BUCKETS; i++)
		len += (size_t)snprintf(page + len, 64 * 1024 - len, "h_bucket{le=\"%d.0\",a=\"y\"} %d\n", i, i);
	snprintf(page + len, 64 * 1024 - len, "h_bucket{le=\"+Inf\"} 200\n");
	parse(&n, NULL, page, 0, &s);
	assert_true(s.ok);
	assert_int_equal(s.latency.nbuckets, CN_MAX_BUCKETS);
	assert_true(same(s.latency.count[0], 2));
	assert_true(same(s.latency.count[CN_MAX_BUCKETS - 2], 2 * (CN_MAX_BUCKETS - 1)));
	assert_true(same(s.requests, 200));
	free(page);
}

static void test_page_cap(void **state)
{
	struct cn_err err = { 0 };
	struct cn_metric_names n;
	struct cn_promtext_limits lim = { .max_page = 1000 };
	struct cn_promtext *p;
	struct cn_sample s;
	char chunk[100];

	(void)state;
	names_set(&n, "a_total", "", "");
	p = cn_promtext_new(&n, &lim, &err);
	assert_non_null(p);
	memset(chunk, '#', sizeof chunk);
	chunk[sizeof chunk - 1] = '\n';
	cn_promtext_begin(p, ORIGIN);
	for (int i = 0; i < 10; i++)
		assert_int_equal(cn_promtext_feed(p, chunk, sizeof chunk), 0);
	assert_false(cn_promtext_failed(p));
	assert_int_equal(cn_promtext_feed(p, "a_total 1\n", 10), -1);
	assert_true(cn_promtext_failed(p));
	cn_promtext_end(p, &s);
	assert_false(s.ok);
	assert_string_equal(s.why, "metrics page " ORIGIN " is larger than 1000 bytes (raise the page limit or "
			    "expose fewer series)");
	/* the next page starts afresh */
	cn_promtext_parse(p, ORIGIN, "a_total 1\n", 10, &s);
	assert_true(s.ok);
	assert_true(same(s.requests, 1));
	cn_promtext_free(p);
}

static long max_rss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* A million series nobody asked for, fed in 64 KiB chunks: the parser allocates nothing while it runs, so the
 * process's peak memory grows by far less than the ~80 MB page. */
static void test_million_series(void **state)
{
	struct cn_err err = { 0 };
	struct cn_metric_names n;
	struct cn_promtext_limits lim = { .max_page = 512u * 1024 * 1024 };
	struct cn_promtext *p;
	struct cn_sample s;
	enum { CHUNK = 64 * 1024 };
	char *buf = malloc(CHUNK + 512);
	size_t len = 0, total = 0;
	long rss0, rss1;
	struct timespec t0, t1;
	double secs;

	(void)state;
	assert_non_null(buf);
	names_set(&n, "a_total", "b_total{code=~\"5..\"}", "h");
	p = cn_promtext_new(&n, &lim, &err);
	assert_non_null(p);
	rss0 = max_rss_kb();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cn_promtext_begin(p, ORIGIN);
	for (int i = 0; i < 1000000; i++) {
		len += (size_t)snprintf(buf + len, 512, "unrelated_series_total{id=\"%d\",pod=\"pod-%d\",code=\"500\"} %d\n",
					i, i % 97, i);
		if (i % 100000 == 0)
			len += (size_t)snprintf(buf + len, 512, "a_total{id=\"%d\"} 1\nb_total{code=\"503\"} 2\n"
						"h_bucket{le=\"+Inf\",id=\"%d\"} 3\n", i, i);
		if (len >= CHUNK) {
			assert_int_equal(cn_promtext_feed(p, buf, len), 0);
			total += len;
			len = 0;
		}
	}
	assert_int_equal(cn_promtext_feed(p, buf, len), 0);
	total += len;
	cn_promtext_end(p, &s);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	rss1 = max_rss_kb();
	assert_true(s.ok);
	assert_true(same(s.requests, 10));
	assert_true(same(s.errors, 20));
	assert_int_equal(s.latency.nbuckets, 1);
	assert_true(same(s.latency.count[0], 30));
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("1,000,000 series, %.1f MB in %.3f s (%.0f MB/s); peak rss grew %ld KiB\n", (double)total / 1e6,
		      secs, (double)total / 1e6 / secs, rss1 - rss0);
	assert_true(total > 60u * 1000 * 1000);
	assert_true(rss1 - rss0 < 8 * 1024);
	cn_promtext_free(p);
	free(buf);
}

struct sel_case {
	const char *text;
	int rc;
	const char *promql;   /* cn_promsel_format with suffix "_x" and extra {slot="b"}, or the error */
};

static const struct sel_case sel_cases[] = {
	{ "http_requests_total", 0, "http_requests_total_x{slot=\"b\"}" },
	{ "  a:b_c { status =~ \"5..\" , x!=\"y\", } ", 0, "a:b_c_x{status=~\"5..\",x!=\"y\",slot=\"b\"}" },
	{ "q{v='it\\'s', w!~\"a\\\\.b\"}", 0, "q_x{v=\"it's\",w!~\"a\\\\.b\",slot=\"b\"}" },
	{ "q{v=\"say \\\"hi\\\"\"}", 0, "q_x{v=\"say \\\"hi\\\"\",slot=\"b\"}" },
	{ "{slot=\"a\"}", 0, "_x{slot=\"a\",slot=\"b\"}" },
	{ "q{v=\"1\"", -CN_EINPUT, "selector 'q{v=\"1\"' column 8: expected ',' or '}' (write e.g. name{label=\"value\"})" },
	{ "q{v=1}", -CN_EINPUT, "selector 'q{v=1}' column 5: expected a quoted value (write e.g. name{label=\"value\"})" },
	{ "q{v~\"1\"}", -CN_EINPUT,
	  "selector 'q{v~\"1\"}' column 4: expected =, !=, =~ or !~ (write e.g. name{label=\"value\"})" },
	{ "q{v=~\"(\"}", -CN_EINPUT, NULL },
	{ "q x", -CN_EINPUT, "selector 'q x' column 3: unexpected text (write e.g. name{label=\"value\"})" },
	{ "q{1=\"a\"}", -CN_EINPUT, "selector 'q{1=\"a\"}' column 3: expected a label name (write e.g. name{label=\"value\"})" },
};

/* Token counters and the per-feature breakdown: summed over series like every counter, and by the value of the
 * feature label (tokens, the latency's _count and _sum), at most CN_MAX_FEATURES - 1 by name and the rest as
 * "other", counted; a page without token counters leaves them NAN (the economics SLOs are then inconclusive). */
static void test_tokens_and_features(void **state)
{
	(void)state;
	struct cn_metric_names n;
	struct cn_sample out;
	names_set(&n, "http_requests_total", "", "lat");
	snprintf(n.gen_tokens, sizeof n.gen_tokens, "gen_total");
	snprintf(n.prompt_tokens, sizeof n.prompt_tokens, "prompt_total");
	snprintf(n.feature_label, sizeof n.feature_label, "feature");
	static const char page[] =
		"http_requests_total 30\n"
		"gen_total{feature=\"search\"} 1000\n"
		"gen_total{feature=\"chat\",model=\"m\"} 500\n"
		"gen_total{feature=\"search\",model=\"n\"} 250\n"
		"prompt_total 77\n"
		"lat_bucket{feature=\"search\",le=\"1\"} 10\nlat_bucket{feature=\"search\",le=\"+Inf\"} 20\n"
		"lat_sum{feature=\"search\"} 9.5\nlat_count{feature=\"search\"} 20\n"
		"lat_bucket{feature=\"chat\",le=\"1\"} 5\nlat_bucket{feature=\"chat\",le=\"+Inf\"} 10\n"
		"lat_sum{feature=\"chat\"} 4\nlat_count{feature=\"chat\"} 10\n";
	for (size_t chunk = 0; chunk < 8; chunk += 7) {
		parse(&n, NULL, page, chunk, &out);
		assert_true(out.ok);
		assert_true(same(out.gen_tokens, 1750) && same(out.prompt_tokens, 77));
		assert_true(same(out.latency.sum, 13.5) && same(out.latency.count[1], 30));
		assert_int_equal(out.nfeatures, 2);
		assert_string_equal(out.features[0].name, "search");
		assert_true(same(out.features[0].gen_tokens, 1250) && same(out.features[0].requests, 20) &&
			    same(out.features[0].latency_sum, 9.5));
		assert_string_equal(out.features[1].name, "chat");
		assert_true(same(out.features[1].gen_tokens, 500) && same(out.features[1].latency_sum, 4));
		assert_int_equal(out.features_dropped, 0);
	}

	/* more features than the cap: the first by name, the rest summed as "other" and counted */
	char many[4096];
	size_t off = 0;
	for (int i = 0; i < CN_MAX_FEATURES + 3; i++)
		off += (size_t)snprintf(many + off, sizeof many - off, "gen_total{feature=\"f%d\"} %d\n", i, 10 * (i + 1));
	parse(&n, NULL, many, 0, &out);
	assert_int_equal(out.nfeatures, CN_MAX_FEATURES);
	assert_string_equal(out.features[CN_MAX_FEATURES - 1].name, "other");
	assert_int_equal(out.features_dropped, 4);
	double rest = 0;
	for (int i = CN_MAX_FEATURES - 1; i < CN_MAX_FEATURES + 3; i++)
		rest += 10 * (i + 1);
	assert_true(same(out.features[CN_MAX_FEATURES - 1].gen_tokens, rest));

	/* no token counters on the page */
	parse(&n, NULL, "http_requests_total 30\n", 0, &out);
	assert_true(out.ok && isnan(out.gen_tokens) && isnan(out.prompt_tokens) && out.nfeatures == 0);
	/* the label turned off: no breakdown */
	n.feature_label[0] = '\0';
	parse(&n, NULL, page, 0, &out);
	assert_true(same(out.gen_tokens, 1750) && out.nfeatures == 0);
}

/* One parser after another page: canaryd reuses a few dozen parsers for every page it reads (metrics_scrape.c), and
 * what one page left (histograms, features, a long line's buffer, the samples kept for a tracker) must not show in
 * the next page's sample, nor its long line's buffer stay. */
static void page_with(struct cn_promtext *p, const char *page, struct cn_sample *out)
{
	memset(out, 0xa5, sizeof *out); /* parse must write every byte, padding included (cn_sample_reset) */
	cn_promtext_parse(p, ORIGIN, page, strlen(page), out);
}

static void test_reused_parser(void **state)
{
	(void)state;
	struct cn_metric_names n;
	struct cn_promtext_limits lim = { .max_line = 200000, .max_page = 1 << 20 };
	struct cn_err err = { 0 };
	names_set(&n, "http_requests_total", "", "lat");
	snprintf(n.ttft, sizeof n.ttft, "ttft");
	snprintf(n.gen_tokens, sizeof n.gen_tokens, "gen_total");
	snprintf(n.feature_label, sizeof n.feature_label, "feature");
	static const char rich[] =
		"http_requests_total 30\n"
		"gen_total{feature=\"search\"} 1000\ngen_total{feature=\"chat\"} 500\n"
		"lat_bucket{feature=\"search\",le=\"1\"} 10\nlat_bucket{feature=\"search\",le=\"+Inf\"} 20\n"
		"lat_sum{feature=\"search\"} 9.5\nlat_count{feature=\"search\"} 20\n"
		"ttft_bucket{le=\"0.5\"} 3\nttft_bucket{le=\"+Inf\"} 9\nttft_sum 2\nttft_count 9\n";
	static const char plain[] = "http_requests_total 7\n";
	char *longpage = malloc(150000);
	assert_non_null(longpage);
	int off = snprintf(longpage, 150000, "http_requests_total{pad=\"");
	memset(longpage + off, 'x', 120000);
	snprintf(longpage + off + 120000, 150000 - (size_t)off - 120000, "\"} 5\n");

	struct cn_promtext *tmpl = cn_promtext_new(&n, &lim, &err);
	assert_non_null(tmpl);
	struct cn_promtext *p = cn_promtext_clone(tmpl, NULL, &err), *fresh;
	assert_non_null(p);
	static struct cn_sample reused, want;
	const char *pages[] = { rich, plain, rich, longpage, plain, rich };
	for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
		page_with(p, pages[i], &reused);
		assert_non_null(fresh = cn_promtext_clone(tmpl, NULL, &err));
		page_with(fresh, pages[i], &want);
		cn_promtext_free(fresh);
		print_message("page %zu\n", i);
		assert_true(reused.ok);
		assert_memory_equal(&reused, &want, sizeof want);
		/* what an idle parser keeps is bounded, whatever the last page was */
		assert_true(cn_promtext_bytes(p) < 24 * 1024);
	}
	assert_true(same(reused.requests, 30) && reused.nfeatures == 2 && reused.ttft.nbuckets == 2);

	/* a reused parser feeds the tracker it was given last, not the one before */
	struct cn_promtrack *a = cn_promtrack_new(64), *b = cn_promtrack_new(64);
	assert_non_null(a);
	assert_non_null(b);
	size_t a0 = cn_promtrack_bytes(a), b0 = cn_promtrack_bytes(b);
	cn_promtext_retrack(p, a);
	page_with(p, rich, &reused);
	size_t a1 = cn_promtrack_bytes(a);
	assert_true(a1 > a0);
	cn_promtext_retrack(p, b);
	page_with(p, rich, &reused);
	assert_true(cn_promtrack_bytes(b) > b0);
	assert_int_equal(cn_promtrack_bytes(a), a1);
	cn_promtext_retrack(p, NULL);
	cn_promtrack_free(a);
	cn_promtrack_free(b);
	cn_promtext_free(p);
	cn_promtext_free(tmpl);
	free(longpage);
}

static void test_selectors(void **state)
{
	struct cn_promsel extra, sel;
	struct cn_err err = { 0 };
	char buf[512];

	(void)state;
	assert_int_equal(cn_promsel_parse("{slot=\"b\"}", &extra, &err), 0);
	for (size_t i = 0; i < sizeof sel_cases / sizeof sel_cases[0]; i++) {
		const struct sel_case *c = &sel_cases[i];
		int rc = cn_promsel_parse(c->text, &sel, &err);
		print_message("selector: %s\n", c->text);
		assert_int_equal(rc, c->rc);
		if (rc < 0) {
			if (c->promql)
				assert_string_equal(err.msg, c->promql);
			else
				assert_non_null(strstr(err.msg, "bad regex '('"));
			continue;
		}
		assert_int_equal(cn_promsel_format(&sel, "_x", &extra, buf, sizeof buf, &err), 0);
		assert_string_equal(buf, c->promql);
		cn_promsel_free(&sel);
	}
	/* too small a buffer is an error, not a cut */
	assert_int_equal(cn_promsel_parse("abc{d=\"e\"}", &sel, &err), 0);
	assert_int_equal(cn_promsel_format(&sel, "", NULL, buf, 8, &err), -CN_EINPUT);
	assert_int_equal(cn_promsel_format(&sel, "", NULL, buf, 11, &err), 0);
	assert_string_equal(buf, "abc{d=\"e\"}");
	cn_promsel_free(&sel);
	cn_promsel_free(&extra);
}

static void test_bad_names(void **state)
{
	struct cn_err err = { 0 };
	struct cn_metric_names n;

	(void)state;
	names_set(&n, "a_total{x=~\"[\"}", "", "");
	assert_null(cn_promtext_new(&n, NULL, &err));
	assert_int_equal(err.code, CN_EINPUT);
	assert_non_null(strstr(err.msg, "metric name 'requests': selector 'a_total{x=~\"[\"}': bad regex '['"));
	names_set(&n, "", "", "{le=\"1\"}");
	assert_null(cn_promtext_new(&n, NULL, &err));
	assert_string_equal(err.msg, "metric name 'latency': selector '{le=\"1\"}' has no metric name");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pages),
		cmocka_unit_test(test_vllm_buckets),
		cmocka_unit_test(test_triton_milliseconds),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_too_many_buckets),
		cmocka_unit_test(test_page_cap),
		cmocka_unit_test(test_million_series),
		cmocka_unit_test(test_tokens_and_features),
		cmocka_unit_test(test_reused_parser),
		cmocka_unit_test(test_selectors),
		cmocka_unit_test(test_bad_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
