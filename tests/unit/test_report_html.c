/* Unit tests for the HTML rollout report (controller/report/report_html.c): escaping of every text, the page's
 * structure (one weight chart, one chart per SLO, markers, audit rows), empty data, a rollout with 0 ticks, NaN
 * values, and the size bound. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "canary/report_html.h"

#define T0 1714564800000LL /* 2024-05-01 12:00:00 UTC */

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static struct cn_report base_report(void)
{
	struct cn_report r = {0};
	r.rollout = (struct cn_report_rollout){.id = 7, .service = "chat", .candidate = "v2", .baseline = "v1",
					       .policy = "demo-fast", .policy_version = 3, .phase = "promoted",
					       .step = 2, .steps = 3, .weight = 100, .created_by = "alice",
					       .approved_by = "bob", .reason = "all steps passed",
					       .started_ms = T0, .finished_ms = T0 + 30000, .now_ms = T0 + 40000};
	return r;
}

static char *render(const struct cn_report *r)
{
	struct cn_err err = {0};
	size_t len = 0;
	char *html = cn_report_html(r, 0, &len, &err);
	assert_non_null(html);
	assert_int_equal(err.code, 0);
	assert_int_equal(len, strlen(html));
	return html;
}

static void test_escape_table(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"plain", "plain"},
		{"<script>", "&lt;script&gt;"},
		{"a&b", "a&amp;b"},
		{"\"q\" 'x'", "&quot;q&quot; &#39;x&#39;"},
		{"line\nbreak\ttab", "line break tab"},
		{"", ""},
		{NULL, ""},
		{"caf\xc3\xa9 \xe2\x86\x92", "caf\xc3\xa9 \xe2\x86\x92"}, /* UTF-8 passes through */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[64];
		cn_html_escape(cases[i].in, out, sizeof out);
		assert_string_equal(out, cases[i].out);
	}
	char small[6];
	cn_html_escape("<<<<", small, sizeof small); /* truncated, still NUL-terminated */
	assert_int_equal(strlen(small), 5);
}

/* No text from the data reaches the page unescaped: in titles, table cells, attributes, SVG titles. */
static void test_every_text_escaped(void **state)
{
	(void)state;
	const char *evil = "<img src=x onerror=alert(1)>\"'&";
	struct cn_report r = base_report();
	r.rollout.service = evil;
	r.rollout.candidate = evil;
	r.rollout.baseline = evil;
	r.rollout.policy = evil;
	r.rollout.phase = evil;
	r.rollout.created_by = evil;
	r.rollout.approved_by = evil;
	r.rollout.reason = evil;
	struct cn_report_weight w[] = {{T0 + 1000, 1}};
	struct cn_report_slo_point pts[] = {{T0 + 1000, 0.1, 0.1, 0.2, evil}};
	struct cn_report_slo slos[] = {{evil, evil, pts, 1}};
	struct cn_report_marker mk[] = {{T0 + 1000, evil, evil, evil}};
	struct cn_report_event ev[] = {{1, T0, evil, evil, evil, evil, evil}};
	r.weights = w, r.nweights = 1, r.slos = slos, r.nslos = 1, r.markers = mk, r.nmarkers = 1;
	r.events = ev, r.nevents = 1, r.events_total = 1;
	char *html = render(&r);
	assert_null(strstr(html, "<img"));
	assert_null(strstr(html, "<IMG"));
	assert_null(strstr(html, "\"'&\""));
	assert_non_null(strstr(html, "&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;"));
	assert_null(strstr(html, "<script"));
	free(html);
}

/* The structure the Chromium e2e test and a reader rely on. */
static void test_structure(void **state)
{
	(void)state;
	struct cn_report r = base_report();
	struct cn_report_weight w[] = {{T0 + 1000, 1}, {T0 + 10000, 5}, {T0 + 20000, 100}};
	struct cn_report_slo_point p1[] = {{T0 + 1000, 0.004, 0.005, 0.02, "pass"},
					   {T0 + 2000, 0.03, 0.005, 0.02, "fail"},
					   {T0 + 3000, NAN, NAN, 0.02, "inconclusive"}};
	struct cn_report_slo_point p2[] = {{T0 + 1000, 0.41, 0.40, 2.0, "pass"}};
	struct cn_report_slo slos[] = {{"error-rate", "error_rate", p1, 3}, {"p99-latency", "latency", p2, 1}};
	struct cn_report_marker mk[] = {{T0 + 1000, "start", "canaryd", "step 1"},
					{T0 + 10000, "advance", "canaryd", "step 2"},
					{T0 + 15000, "approve", "bob", "accepted"},
					{T0 + 20000, "promote", "canaryd", "done"}};
	struct cn_report_event ev[] = {{1, T0, "alice", "rollout.started", "candidate v2", "", "ab12"},
				       {2, T0 + 1000, "canaryd", "tick", "start", "", "cd34"},
				       {3, T0 + 20000, "canaryd", "state.changed", "progressing -> promoted", "", "ef"}};
	r.weights = w, r.nweights = 3, r.slos = slos, r.nslos = 2, r.markers = mk, r.nmarkers = 4;
	r.events = ev, r.nevents = 3, r.events_total = 3;
	char *html = render(&r);

	assert_int_equal(strncmp(html, "<!DOCTYPE html>", 15), 0);
	assert_non_null(strstr(html, "</html>"));
	assert_int_equal(count(html, "<svg "), 3);
	assert_int_equal(count(html, "id=\"chart-weight\""), 1);
	assert_int_equal(count(html, "class=\"chart chart-slo\""), 2);
	assert_non_null(strstr(html, "data-slo=\"error-rate\""));
	assert_non_null(strstr(html, "data-slo=\"p99-latency\""));
	/* Markers: labelled on the weight chart, lines on each SLO chart, one table row each. */
	assert_int_equal(count(html, "class=\"marker marker-label\""), 4);
	assert_int_equal(count(html, "class=\"marker marker-line\""), 8);
	assert_int_equal(count(html, "<tr class=\"decision\""), 4);
	assert_int_equal(count(html, "<tr class=\"event "), 3);
	assert_non_null(strstr(html, "class=\"event ev-state-changed\""));
	/* Verdict cells: one per tick, coloured by verdict. */
	assert_int_equal(count(html, "class=\"v-pass\""), 2);
	assert_int_equal(count(html, "class=\"v-fail\""), 1);
	assert_int_equal(count(html, "class=\"v-inconclusive\""), 1);
	/* The header: service, candidate, baseline, policy@version, outcome, duration, time labels. */
	assert_non_null(strstr(html, "demo-fast@3"));
	assert_non_null(strstr(html, ">PROMOTED<"));
	assert_non_null(strstr(html, "30s"));
	assert_non_null(strstr(html, "2024-05-01 12:00:00 UTC"));
	assert_non_null(strstr(html, ">12:00:10<"));
	assert_non_null(strstr(html, "time (UTC)"));
	/* Weight levels written on the chart; error rates as percent, latencies in ms. */
	assert_int_equal(count(html, "<text class=\"level\""), 3);
	assert_non_null(strstr(html, "text-anchor=\"start\">5%</text>"));
	/* The weight line steps up at each change: 0 -> 1 -> 5 -> 100, then runs to the end. */
	assert_int_equal(count(html, "class=\"weight-line\" d=\"M"), 1);
	assert_non_null(strstr(html, "candidate 3%"));
	assert_non_null(strstr(html, "candidate 0.41 s"));
	/* Self-contained: no script, no external reference. */
	assert_null(strstr(html, "<script"));
	assert_null(strstr(html, "src="));
	assert_null(strstr(html, "href="));
	assert_null(strstr(html, "@import"));
	free(html);
}

/* A rollout that never ticked: no weights, SLOs without points, no markers, only the start event. */
static void test_zero_ticks(void **state)
{
	(void)state;
	struct cn_report r = base_report();
	r.rollout.phase = "pending";
	r.rollout.step = -1;
	r.rollout.weight = 0;
	r.rollout.finished_ms = 0;
	r.rollout.now_ms = T0; /* same instant as the start: the axis must still have a width */
	struct cn_report_slo slos[] = {{"error-rate", "error_rate", NULL, 0}};
	struct cn_report_event ev[] = {{1, T0, "alice", "rollout.started", "", NULL, NULL}};
	r.slos = slos, r.nslos = 1, r.events = ev, r.nevents = 1, r.events_total = 1;
	char *html = render(&r);
	assert_int_equal(count(html, "<svg "), 2);
	assert_non_null(strstr(html, "no weight change recorded yet"));
	assert_non_null(strstr(html, "no measurements recorded yet"));
	assert_non_null(strstr(html, "id=\"no-decisions\""));
	assert_non_null(strstr(html, "not started"));
	assert_non_null(strstr(html, "still active"));
	assert_null(strstr(html, "nan"));
	assert_null(strstr(html, "inf"));
	free(html);
}

/* Everything empty, NULL strings: still a whole page. */
static void test_empty(void **state)
{
	(void)state;
	struct cn_report r = {0};
	char *html = render(&r);
	assert_int_equal(count(html, "<svg "), 1);
	assert_non_null(strstr(html, "id=\"no-slos\""));
	assert_non_null(strstr(html, "id=\"no-events\""));
	assert_non_null(strstr(html, "</html>"));
	free(html);
}

/* NaN and infinite values never reach SVG coordinates; all-NaN series draw no line. */
static void test_nan_values(void **state)
{
	(void)state;
	struct cn_report r = base_report();
	struct cn_report_weight w[] = {{T0 + 1000, NAN}, {T0 + 2000, 5}};
	struct cn_report_slo_point p[] = {{T0 + 1000, NAN, NAN, NAN, NULL},
					  {T0 + 2000, INFINITY, NAN, NAN, "inconclusive"},
					  {T0 + 3000, NAN, -INFINITY, NAN, "inconclusive"}};
	struct cn_report_slo slos[] = {{"p99", "latency", p, 3}};
	r.weights = w, r.nweights = 2, r.slos = slos, r.nslos = 1;
	char *html = render(&r);
	assert_null(strstr(html, "nan"));
	assert_null(strstr(html, "inf"));
	assert_non_null(strstr(html, "class=\"s-cand\" d=\"\""));
	assert_non_null(strstr(html, "class=\"s-base\" d=\"\""));
	free(html);
}

/* A line breaks at a NaN instead of joining across it. */
static void test_nan_breaks_line(void **state)
{
	(void)state;
	struct cn_report r = base_report();
	struct cn_report_slo_point p[] = {{T0 + 1000, 0.2, 0.2, 1, "pass"},
					  {T0 + 2000, 0.3, 0.2, 1, "pass"},
					  {T0 + 3000, NAN, 0.2, 1, "inconclusive"},
					  {T0 + 4000, 0.25, 0.2, 1, "pass"}};
	struct cn_report_slo slos[] = {{"p99", "latency", p, 4}};
	r.slos = slos, r.nslos = 1;
	char *html = render(&r);
	const char *c = strstr(html, "class=\"s-cand\" d=\"");
	assert_non_null(c);
	const char *end = strchr(c + 18, '"');
	size_t moves = 0;
	for (const char *q = c + 18; q < end; q++)
		moves += *q == 'M';
	assert_int_equal(moves, 2);
	free(html);
}

/* The page is bounded: a cap below its size is an error, not a truncated page. */
static void test_size_bound(void **state)
{
	(void)state;
	struct cn_report r = base_report();
	enum { N = 2000 };
	struct cn_report_event *ev = calloc(N, sizeof *ev);
	assert_non_null(ev);
	for (int i = 0; i < N; i++)
		ev[i] = (struct cn_report_event){i + 1, T0 + i, "canaryd", "tick", "hold at step 1", "", "00"};
	r.events = ev, r.nevents = N, r.events_total = N + 10;
	struct cn_err err = {0};
	size_t len = 0;
	char *html = cn_report_html(&r, 64 * 1024, &len, &err);
	assert_null(html);
	assert_int_equal(err.code, CN_EINPUT);
	assert_non_null(strstr(err.msg, "exceed"));
	html = cn_report_html(&r, 0, &len, &err);
	assert_non_null(html);
	assert_true(len > 64 * 1024);
	assert_int_equal(count(html, "<tr class=\"event "), N);
	assert_non_null(strstr(html, "The first 2000 of 2010 events"));
	free(html);
	free(ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_table),    cmocka_unit_test(test_every_text_escaped),
		cmocka_unit_test(test_structure),       cmocka_unit_test(test_zero_ticks),
		cmocka_unit_test(test_empty),           cmocka_unit_test(test_nan_values),
		cmocka_unit_test(test_nan_breaks_line), cmocka_unit_test(test_size_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
