/* Unit tests of the judge: per-SLO verdicts, objectives and their why, and ingesting readings into evidence. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "canary/judge.h"

#define assert_double_equal(a, b, eps)                                                                      \
	do {                                                                                                \
		double a_ = (a), b_ = (b);                                                                  \
		if (!(fabs(a_ - b_) <= (eps)))                                                              \
			fail_msg("%s = %.17g, want %.17g", #a, a_, b_);                                     \
	} while (0)

#define assert_contains(hay, needle)                                                                        \
	do {                                                                                                \
		if (!strstr((hay), (needle)))                                                               \
			fail_msg("'%s' does not contain '%s'", (hay), (needle));                            \
	} while (0)

static const double LE[] = {0.5, 1, 2, INFINITY};

/* 100 requests; latency cumulative counts: fast p99 = 0.99s, slow p99 = 1.98s */
static const double FAST[] = {50, 100, 100, 100};
static const double SLOW[] = {0, 50, 100, 100};

static void set_hist(struct cn_histogram *h, const double *count)
{
	h->nbuckets = 4;
	for (int i = 0; i < 4; i++) {
		h->le[i] = LE[i];
		h->count[i] = count[i];
	}
	h->sum = NAN;
}

static struct cn_counters counters(double requests, double errors, const double *lat)
{
	struct cn_counters c;
	memset(&c, 0, sizeof c);
	cn_counters_reset(&c);
	c.requests = requests;
	c.errors = errors;
	if (lat) {
		set_hist(&c.latency, lat);
		set_hist(&c.ttft, lat);
		set_hist(&c.itl, lat);
	}
	return c;
}

static struct cn_slo slo(enum cn_slo_metric m, double q, double max, double max_increase)
{
	struct cn_slo s;
	memset(&s, 0, sizeof s);
	snprintf(s.name, sizeof s.name, "slo");
	s.metric = m;
	s.quantile = q;
	s.max = max;
	s.max_increase = max_increase;
	s.tolerance = NAN;
	return s;
}

struct judge_case {
	const char *name;
	struct cn_slo slo;
	double cand_req, cand_err;
	const double *cand_lat;
	double base_req, base_err;
	const double *base_lat;
	unsigned cand_missing, cand_reset, base_missing, base_reset;
	const char *cand_note;
	enum cn_verdict want;
	double want_cand, want_base, want_objective; /* NAN: expect NAN */
	const char *want_why;
};

static void check_nan_or(double got, double want, const char *what, const char *name)
{
	if (isnan(want)) {
		if (!isnan(got))
			fail_msg("%s: %s = %g, want NaN", name, what, got);
	} else if (!(fabs(got - want) <= 1e-9)) {
		fail_msg("%s: %s = %.17g, want %.17g", name, what, got, want);
	}
}

/* Wilson score lower bounds, one-sided 95% (z = 1.6449), computed by hand from
 * (p + z^2/2n - z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), evaluated independently (Python, 7 digits). */
static void test_wilson_lower(void **state)
{
	(void)state;
	const struct {
		double x, n, want;
	} cases[] = {
		{0, 100, 0}, {2, 50, 0.0133263}, {40, 1000, 0.0309868}, {50, 100, 0.4188478}, {100, 100, 0.9736573},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		double got = cn_wilson_lower(cases[i].x, cases[i].n);
		if (!(fabs(got - cases[i].want) < 1e-6))
			fail_msg("wilson_lower(%g, %g) = %.7f, want %.7f", cases[i].x, cases[i].n, got, cases[i].want);
	}
	assert_true(isnan(cn_wilson_lower(1, 0)));
	assert_true(isnan(cn_wilson_lower(5, 4)));
	/* more errors in the same requests never lowers the bound */
	for (int x = 1; x <= 100; x++)
		assert_true(cn_wilson_lower(x, 100) >= cn_wilson_lower(x - 1, 100));
}

static void test_judge_table(void **state)
{
	(void)state;
	const struct judge_case cases[] = {
		{"latency regression vs baseline", slo(CN_METRIC_LATENCY, 0.99, NAN, 1.2), 100, 0, SLOW, 100, 0, FAST,
		 0, 0, 0, 0, NULL, CN_VERDICT_FAIL, 1.98, 0.99, 1.188,
		 "p99 latency 1.98s vs baseline 0.99s (limit 1.19s = 1.2x)"},
		{"latency same as baseline", slo(CN_METRIC_LATENCY, 0.99, NAN, 1.2), 100, 0, FAST, 100, 0, FAST, 0, 0,
		 0, 0, NULL, CN_VERDICT_PASS, 0.99, 0.99, 1.188, "limit 1.19s = 1.2x"},
		{"absolute only", slo(CN_METRIC_LATENCY, 0.99, 1.5, NAN), 100, 0, SLOW, 100, 0, FAST, 0, 0, 0, 0, NULL,
		 CN_VERDICT_FAIL, 1.98, 0.99, 1.5, "(limit 1.50s = max)"},
		{"absolute tighter than relative", slo(CN_METRIC_LATENCY, 0.99, 1.0, 1.2), 100, 0, FAST, 100, 0, FAST, 0,
		 0, 0, 0, NULL, CN_VERDICT_PASS, 0.99, 0.99, 1.0, "= max"},
		{"relative tighter than absolute", slo(CN_METRIC_LATENCY, 0.99, 5, 1.2), 100, 0, SLOW, 100, 0, FAST, 0, 0,
		 0, 0, NULL, CN_VERDICT_FAIL, 1.98, 0.99, 1.188, "= 1.2x"},
		{"relative only, baseline too small", slo(CN_METRIC_LATENCY, 0.99, NAN, 1.2), 100, 0, SLOW, 10, 0, FAST,
		 0, 0, 0, 0, NULL, CN_VERDICT_INCONCLUSIVE, 1.98, NAN, NAN, "no baseline value"},
		{"both, baseline missing: absolute applies", slo(CN_METRIC_LATENCY, 0.99, 1.5, 1.2), 100, 0, FAST, 100, 0,
		 FAST, 0, 0, CN_SERIES_LATENCY, 0, NULL, CN_VERDICT_PASS, 0.99, NAN, 1.5, "baseline n/a"},
		{"relative only, baseline reset", slo(CN_METRIC_LATENCY, 0.99, NAN, 1.2), 100, 0, FAST, 100, 0, FAST, 0,
		 0, 0, CN_SERIES_REQUESTS, NULL, CN_VERDICT_INCONCLUSIVE, 0.99, NAN, NAN, "no baseline value"},
		{"too few candidate requests", slo(CN_METRIC_LATENCY, 0.99, NAN, 1.2), 10, 0, SLOW, 100, 0, FAST, 0, 0,
		 0, 0, NULL, CN_VERDICT_INCONCLUSIVE, 1.98, 0.99, NAN, "only 10 candidate requests in this step, need 50"},
		{"no candidate traffic", slo(CN_METRIC_ERROR_RATE, NAN, 0.01, 1.5), 0, 0, NULL, 100, 0, NULL, 0, 0, 0, 0,
		 NULL, CN_VERDICT_INCONCLUSIVE, NAN, 0, NAN, "only 0 candidate requests"},
		{"candidate histogram went down", slo(CN_METRIC_LATENCY, 0.99, NAN, 1.2), 100, 0, FAST, 100, 0, FAST, 0,
		 CN_SERIES_LATENCY, 0, 0, NULL, CN_VERDICT_INCONCLUSIVE, 0.99, 0.99, NAN,
		 "candidate latency histogram went down"},
		{"candidate requests went down", slo(CN_METRIC_ERROR_RATE, NAN, 0.01, NAN), 100, 0, NULL, 100, 0, NULL, 0,
		 CN_SERIES_REQUESTS, 0, 0, NULL, CN_VERDICT_INCONCLUSIVE, 0, 0, NAN,
		 "candidate requests counter went down (server restart?)"},
		{"candidate histogram missing", slo(CN_METRIC_TTFT, 0.95, 1, NAN), 100, 0, FAST, 100, 0, FAST,
		 CN_SERIES_TTFT, 0, 0, 0, NULL, CN_VERDICT_INCONCLUSIVE, 0.95, 0.95, NAN,
		 "candidate ttft histogram missing"},
		{"another series missing does not matter", slo(CN_METRIC_LATENCY, 0.99, NAN, 1.2), 100, 0, FAST, 100, 0,
		 FAST, CN_SERIES_ITL | CN_SERIES_ERRORS, 0, 0, 0, NULL, CN_VERDICT_PASS, 0.99, 0.99, 1.188, "p99 latency"},
		{"candidate reading unusable", slo(CN_METRIC_LATENCY, 0.99, NAN, 1.2), 100, 0, FAST, 100, 0, FAST,
		 0x1f, 0, 0, 0, "connection refused", CN_VERDICT_INCONCLUSIVE, 0.99, 0.99, NAN,
		 "candidate metrics unusable: connection refused"},
		{"candidate histogram empty in the step", slo(CN_METRIC_LATENCY, 0.99, 2, NAN), 100, 0, NULL, 100, 0,
		 FAST, 0, 0, 0, 0, NULL, CN_VERDICT_INCONCLUSIVE, NAN, 0.99, NAN, "candidate value not computable"},
		/* the relative limit is the ratio times the baseline's 95% upper bound (Wilson): 0.693% x 1.2 here */
		{"error regression", slo(CN_METRIC_ERROR_RATE, NAN, NAN, 1.2), 100, 5, NULL, 5000, 25, NULL, 0, 0, 0, 0,
		 NULL, CN_VERDICT_FAIL, 0.05, 0.005, 0.008315637966395803,
		 "error rate 5% vs baseline 0.5% (limit 0.832% = 1.2x), at least 2.45% at 95% confidence"},
		{"the same regression over a small baseline is not proven (1 of 200 could be 2.2%)",
		 slo(CN_METRIC_ERROR_RATE, NAN, NAN, 1.2), 100, 5, NULL, 200, 1, NULL, 0, 0, 0, 0, NULL, CN_VERDICT_PASS,
		 0.05, 0.005, 0.026516923732442205, "1.2x), at least 2.45% at 95% confidence"},
		{"error noise at a small count passes (2 of 50 is 4%, but could be 0.5%)",
		 slo(CN_METRIC_ERROR_RATE, NAN, 0.02, NAN), 50, 2, NULL, 5000, 25, NULL, 0, 0, 0, 0, NULL,
		 CN_VERDICT_PASS, 0.04, 0.005, 0.02, "at least 1.33% at 95% confidence"},
		{"the same rate over more requests fails (40 of 1000)", slo(CN_METRIC_ERROR_RATE, NAN, 0.02, NAN), 1000,
		 40, NULL, 5000, 25, NULL, 0, 0, 0, 0, NULL, CN_VERDICT_FAIL, 0.04, 0.005, 0.02,
		 "at least 3.1% at 95% confidence"},
		{"error rate under an absolute max", slo(CN_METRIC_ERROR_RATE, NAN, 0.1, NAN), 100, 5, NULL, 200, 1, NULL,
		 0, 0, 0, 0, NULL, CN_VERDICT_PASS, 0.05, 0.005, 0.1, "(limit 10% = max)"},
		{"error rate, errors series missing", slo(CN_METRIC_ERROR_RATE, NAN, 0.1, NAN), 100, 0, NULL, 200, 1, NULL,
		 CN_SERIES_ERRORS, 0, 0, 0, NULL, CN_VERDICT_INCONCLUSIVE, 0, 0.005, NAN,
		 "candidate errors counter missing"},
		{"zero-error baseline, zero-error candidate", slo(CN_METRIC_ERROR_RATE, NAN, NAN, 2), 100, 0, NULL, 200, 0,
		 NULL, 0, 0, 0, 0, NULL, CN_VERDICT_PASS, 0, 0, 0.026694321309551249, "error rate 0% vs baseline 0%"},
		/* the false rollback: "error rate 0.549% vs baseline 0% (limit 0% = 3x)" on identical slots */
		{"zero-error baseline, one candidate error is noise", slo(CN_METRIC_ERROR_RATE, NAN, NAN, 2), 100, 1, NULL,
		 200, 0, NULL, 0, 0, 0, 0, NULL, CN_VERDICT_PASS, 0.01, 0, 0.02669432130955125,
		 "error rate 1% vs baseline 0% (limit 2.67% = 2x)"},
		{"both at 0.2%, 3x: passes", slo(CN_METRIC_ERROR_RATE, NAN, NAN, 3), 500, 3, NULL, 500, 1, NULL, 0, 0, 0, 0,
		 NULL, CN_VERDICT_PASS, 0.006, 0.002, 0.026742377400995172, "limit 2.67% = 3x"},
		{"itl quantile in milliseconds", slo(CN_METRIC_ITL, 0.5, 0.6, NAN), 100, 0, FAST, 100, 0, FAST, 0, 0, 0, 0,
		 NULL, CN_VERDICT_PASS, 0.5, 0.5, 0.6, "p50 itl 0.50s vs baseline 0.50s (limit 0.60s = max)"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct judge_case *c = &cases[i];
		struct cn_counters cand = counters(c->cand_req, c->cand_err, c->cand_lat);
		struct cn_counters base = counters(c->base_req, c->base_err, c->base_lat);
		struct cn_series_status cst = {c->cand_missing, c->cand_reset, c->cand_note};
		struct cn_series_status bst = {c->base_missing, c->base_reset, NULL};
		struct cn_slo_result r;
		memset(&r, 0x5a, sizeof r);
		cn_judge_slo(&c->slo, 50, &cand, &base, &cst, &bst, &r);
		if (r.verdict != c->want)
			fail_msg("%s: verdict %d, want %d (why: %s)", c->name, r.verdict, c->want, r.why);
		check_nan_or(r.candidate, c->want_cand, "candidate", c->name);
		check_nan_or(r.baseline, c->want_base, "baseline", c->name);
		check_nan_or(r.objective, c->want_objective, "objective", c->name);
		assert_double_equal(r.n_candidate, c->cand_req, 0);
		assert_double_equal(r.n_baseline, c->base_req, 0);
		if (!strstr(r.why, c->want_why))
			fail_msg("%s: why '%s' does not contain '%s'", c->name, r.why, c->want_why);
	}
}

/* A failing verdict waits for the policy's min_requests: below it, a candidate that looks worse is inconclusive
 * (it holds, never advances) and says so; with the sample in, the same numbers fail. */
static void test_fail_waits_for_min_requests(void **state)
{
	(void)state;
	struct cn_slo s = slo(CN_METRIC_LATENCY, 0.99, NAN, 1.2);
	struct cn_counters base = counters(1000, 0, FAST);
	struct cn_series_status ok = {0, 0, NULL};
	struct cn_slo_result r;
	struct cn_counters cand = counters(100, 0, SLOW);
	cn_judge_slo(&s, 200, &cand, &base, &ok, &ok, &r);
	assert_int_equal(r.verdict, CN_VERDICT_INCONCLUSIVE);
	if (!strstr(r.why, "looks worse, judged once the step has 200 candidate requests (100 so far)"))
		fail_msg("why: %s", r.why);
	cand = counters(200, 0, SLOW);
	cn_judge_slo(&s, 200, &cand, &base, &ok, &ok, &r);
	assert_int_equal(r.verdict, CN_VERDICT_FAIL);
	/* a passing verdict needs only the floor */
	cand = counters(60, 0, FAST);
	cn_judge_slo(&s, 200, &cand, &base, &ok, &ok, &r);
	assert_int_equal(r.verdict, CN_VERDICT_PASS);
}

static void test_min_sample(void **state)
{
	(void)state;
	struct cn_policy p;
	memset(&p, 0, sizeof p);
	static const struct {
		int64_t min_requests, want;
	} cases[] = {{500, 500}, {50, 50}, {20, 20}, {1, 1}, {0, 1}, {-3, 1}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		p.analysis.min_requests = cases[i].min_requests;
		assert_int_equal(cn_judge_min_sample(&p), cases[i].want);
	}
}

static void test_labels(void **state)
{
	(void)state;
	char b[32];
	struct cn_slo s = slo(CN_METRIC_LATENCY, 0.99, 1, NAN);
	assert_string_equal(cn_slo_label(&s, b, sizeof b), "p99 latency");
	s = slo(CN_METRIC_TTFT, 0.95, 1, NAN);
	assert_string_equal(cn_slo_label(&s, b, sizeof b), "p95 ttft");
	s = slo(CN_METRIC_ITL, 0.999, 1, NAN);
	assert_string_equal(cn_slo_label(&s, b, sizeof b), "p99.9 itl");
	s = slo(CN_METRIC_ERROR_RATE, NAN, 1, NAN);
	assert_string_equal(cn_slo_label(&s, b, sizeof b), "error rate");
}

static struct cn_sample sample(double requests, double errors, const double *lat)
{
	struct cn_sample s;
	memset(&s, 0, sizeof s);
	s.ok = true;
	s.requests = requests;
	s.errors = errors;
	s.latency.sum = s.ttft.sum = s.itl.sum = NAN;
	if (lat)
		set_hist(&s.latency, lat);
	return s;
}

static void test_ingest(void **state)
{
	(void)state;
	struct cn_counters acc = counters(0, 0, NULL);
	static const double MORE[] = {50, 150, 200, 200}; /* FAST, then 100 more observations shaped SLOW */
	struct cn_sample base, prev = sample(100, 2, FAST), cur = sample(250, 5, MORE);
	struct cn_series_status st;

	/* no earlier reading: only a base */
	cn_ingest_sample(NULL, &prev, &acc, &base, &st);
	assert_non_null(st.note);
	assert_double_equal(acc.requests, 0, 0);
	assert_double_equal(base.requests, 100, 0);
	assert_true(base.ok);

	/* a normal delta */
	cn_ingest_sample(&prev, &cur, &acc, &base, &st);
	assert_null(st.note);
	assert_int_equal(st.reset, 0);
	assert_int_equal(st.missing, CN_SERIES_TTFT | CN_SERIES_ITL); /* absent in both readings */
	assert_double_equal(acc.requests, 150, 0);
	assert_double_equal(acc.errors, 3, 0);
	assert_int_equal(acc.latency.nbuckets, 4);
	assert_double_equal(acc.latency.count[0], 0, 0);
	assert_double_equal(acc.latency.count[3], 100, 0);
	assert_double_equal(base.requests, 250, 0);

	/* the server restarted: requests 40 < 250; the new value counts, like rate() */
	struct cn_sample restarted = sample(40, 1, FAST);
	cn_ingest_sample(&base, &restarted, &acc, &prev, &st);
	assert_true(st.reset & CN_SERIES_REQUESTS);
	assert_true(st.reset & CN_SERIES_ERRORS);
	assert_true(st.reset & CN_SERIES_LATENCY);
	assert_double_equal(acc.requests, 190, 0);
	assert_double_equal(acc.errors, 4, 0);
	assert_double_equal(prev.requests, 40, 0);

	/* a series missing now: no delta, the old base is kept for the next tick */
	struct cn_sample gap = sample(NAN, 3, FAST);
	cn_ingest_sample(&prev, &gap, &acc, &base, &st);
	assert_true(st.missing & CN_SERIES_REQUESTS);
	assert_double_equal(acc.requests, 190, 0);
	assert_double_equal(base.requests, 40, 0);
	assert_double_equal(acc.errors, 6, 0);

	/* a series that only now appears is a base, not a delta */
	struct cn_sample appeared = sample(60, 3, FAST);
	appeared.ttft = appeared.latency;
	cn_ingest_sample(&base, &appeared, &acc, &prev, &st);
	assert_true(st.missing & CN_SERIES_TTFT);
	assert_int_equal(acc.ttft.nbuckets, 0);
	assert_int_equal(prev.ttft.nbuckets, 4);
	assert_double_equal(acc.requests, 210, 0);

	/* an unusable reading: everything missing, why kept, the base unchanged */
	struct cn_sample broken = sample(999, 999, NULL);
	broken.ok = false;
	snprintf(broken.why, sizeof broken.why, "http 503");
	cn_ingest_sample(&prev, &broken, &acc, &base, &st);
	assert_string_equal(st.note, "http 503");
	assert_int_equal(st.missing, 0x1f);
	assert_double_equal(base.requests, 60, 0);
	assert_double_equal(acc.requests, 210, 0);

	/* no accumulator (before the first step): bases move, nothing is counted */
	cn_ingest_sample(&prev, &cur, NULL, &base, &st);
	assert_double_equal(base.requests, 250, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_judge_table),
		cmocka_unit_test(test_wilson_lower),
		cmocka_unit_test(test_min_sample),
		cmocka_unit_test(test_fail_waits_for_min_requests),
		cmocka_unit_test(test_labels),
		cmocka_unit_test(test_ingest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
