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

/* A small deterministic generator for the coverage tests: xorshift64* and Poisson by inversion (small means). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double unif(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (double)((rng_state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static double poisson(double mu)
{
	double l = exp(-mu), p = 1;
	int k = 0;
	do {
		k++;
		p *= unif();
	} while (p > l);
	return k - 1;
}

/* The anytime bounds, against values computed independently (Python, the same mixture solved by 200 bisection
 * steps), and the property they exist for: looked at every tick, they exclude the true rate in at most alpha of
 * the runs. */
static void test_rate_bounds(void **state)
{
	(void)state;
	const struct {
		double x, n, d, want_upper;
	} up[] = { {25, 5000, 1, 0.010239296818475678}, {25, 5000, 2, 0.013645450609260229},
		   {0, 200, 1, 0.08454827801977996}, {1, 200, 1, 0.09144412689803774},
		   {10, 5000, 1, 0.0061360208835447815} };
	for (size_t i = 0; i < sizeof up / sizeof up[0]; i++) {
		double got = cn_rate_upper(up[i].x, up[i].n, 0.001, up[i].d);
		if (!(fabs(got - up[i].want_upper) < 1e-9))
			fail_msg("upper(%g, %g, d %g) = %.12g, want %.12g", up[i].x, up[i].n, up[i].d, got,
				 up[i].want_upper);
	}
	assert_double_equal(cn_rate_lower(40, 1000, 0.001, 1), 0.019218735596802795, 1e-9);
	assert_double_equal(cn_rate_lower(5, 100, 0.001, 1), 0.0033249660425833417, 1e-9);
	assert_double_equal(cn_rate_lower(0, 100, 0.001, 1), 0, 0);
	assert_double_equal(cn_rate_count_below(5000, 0.01, 0.001, 1), 24.120229049178064, 1e-6);
	assert_double_equal(cn_rate_count_below(20000, 0.01, 0.001, 1), 144.99750930129403, 1e-6);
	assert_double_equal(cn_rate_count_below(1000, 0.01, 0.001, 1), -1, 0); /* too few for any bound */
	/* bad input */
	assert_true(isnan(cn_rate_upper(1, 0, 0.01, 1)));
	assert_true(isnan(cn_rate_lower(-1, 10, 0.01, 1)));
	assert_true(isnan(cn_rate_lower(1, 10, 0.01, 0.5))); /* a dispersion below 1 would break the bound */
	assert_true(isnan(cn_rate_evidence_above(1, 10, 0, 1)));
	/* more events never lower a bound; a larger dispersion widens both */
	for (int x = 1; x <= 60; x++) {
		assert_true(cn_rate_lower(x, 1000, 0.01, 1) >= cn_rate_lower(x - 1, 1000, 0.01, 1));
		assert_true(cn_rate_upper(x, 1000, 0.01, 1) >= cn_rate_upper(x - 1, 1000, 0.01, 1));
		assert_true(cn_rate_lower(x, 1000, 0.01, 3) <= cn_rate_lower(x, 1000, 0.01, 1));
		assert_true(cn_rate_upper(x, 1000, 0.01, 3) >= cn_rate_upper(x, 1000, 0.01, 1));
		assert_true(cn_rate_lower(x, 1000, 0.01, 1) <= x / 1000.0);
		assert_true(cn_rate_upper(x, 1000, 0.01, 1) >= x / 1000.0);
	}
	/* Coverage, looked at every tick: 2000 runs of 300 ticks, 200 trials a tick at a rate of 0.5%, alpha 5%.
	 * A 95% interval looked at every tick excludes the rate in about a third of such runs. */
	const double rate = 0.005, alpha = 0.05;
	int low_miss = 0, high_miss = 0;
	for (int run = 0; run < 2000; run++) {
		double x = 0, n = 0;
		bool lo_missed = false, hi_missed = false;
		for (int k = 0; k < 300 && !(lo_missed && hi_missed); k++) {
			x += poisson(200 * rate);
			n += 200;
			lo_missed = lo_missed || cn_rate_lower(x, n, alpha, 1) > rate;
			hi_missed = hi_missed || cn_rate_upper(x, n, alpha, 1) < rate;
		}
		low_miss += lo_missed;
		high_miss += hi_missed;
	}
	if (!(low_miss <= 2000 * alpha && high_miss <= 2000 * alpha))
		fail_msg("anytime bounds missed the rate in %d (lower) and %d (upper) of 2000 runs, want <= %g",
			 low_miss, high_miss, 2000 * alpha);
}

static const struct cn_judge_ctx CTX = { .min_requests = 50, .alpha = 0.001, .disp = 1, .warm = true };

/* latency histograms on LE: 20000 baseline requests with p99 0.995s (bound 0.998s at alpha 0.001), 1000 candidate
 * requests as fast as the baseline, and 1000 twice as slow */
static const double BASE20K[] = {10000, 19900, 20000, 20000};
static const double FAST1K[] = {500, 995, 1000, 1000};
static const double SLOW1K[] = {0, 500, 1000, 1000};
#define BASE_P99 0.994949494949495
#define LIMIT_1_2X 1.197272878224164 /* 1.2 x the baseline's p99 bound, 0.9977274s */

static void test_judge_table(void **state)
{
	(void)state;
	const struct judge_case cases[] = {
		{"latency regression vs baseline", slo(CN_METRIC_LATENCY, 0.99, NAN, 1.2), 1000, 0, SLOW1K, 20000, 0,
		 BASE20K, 0, 0, 0, 0, NULL, CN_VERDICT_FAIL, 1.98, BASE_P99, LIMIT_1_2X,
		 "p99 latency 1.98s vs baseline 0.99s (limit 1.20s = 1.2x), 40.1% of requests above it (at least 32.3%, "
		 "at most 48.9%, allowed 1%)"},
		{"latency same as baseline", slo(CN_METRIC_LATENCY, 0.99, NAN, 1.2), 1000, 0, FAST1K, 20000, 0, BASE20K,
		 0, 0, 0, 0, NULL, CN_VERDICT_PASS, BASE_P99, BASE_P99, LIMIT_1_2X, "limit 1.20s = 1.2x), 0.401% of"},
		{"absolute only", slo(CN_METRIC_LATENCY, 0.99, 1.5, NAN), 1000, 0, SLOW1K, 20000, 0, BASE20K, 0, 0, 0, 0,
		 NULL, CN_VERDICT_FAIL, 1.98, BASE_P99, 1.5, "(limit 1.50s = max), 25% of requests above it"},
		{"absolute tighter than relative", slo(CN_METRIC_LATENCY, 0.99, 1.0, 1.2), 1000, 0, FAST1K, 20000, 0,
		 BASE20K, 0, 0, 0, 0, NULL, CN_VERDICT_PASS, BASE_P99, BASE_P99, 1.0, "= max), 0.5% of requests"},
		{"relative tighter than absolute", slo(CN_METRIC_LATENCY, 0.99, 5, 1.2), 1000, 0, SLOW1K, 20000, 0,
		 BASE20K, 0, 0, 0, 0, NULL, CN_VERDICT_FAIL, 1.98, BASE_P99, LIMIT_1_2X, "= 1.2x)"},
		/* 1000 baseline requests hold 10 above their p99: too few to bound it at alpha 0.001 */
		{"relative only, baseline too small to bound", slo(CN_METRIC_LATENCY, 0.99, NAN, 1.2), 1000, 0, SLOW1K,
		 1000, 0, FAST1K, 0, 0, 0, 0, NULL, CN_VERDICT_INCONCLUSIVE, 1.98, BASE_P99, NAN,
		 "no baseline value to compare with yet (1000 baseline requests are too few to bound it)"},
		{"both, baseline missing: a pass waits for the relative part", slo(CN_METRIC_LATENCY, 0.99, 1.5, 1.2),
		 1000, 0, FAST1K, 20000, 0, BASE20K, 0, 0, CN_SERIES_LATENCY, 0, NULL, CN_VERDICT_INCONCLUSIVE, BASE_P99,
		 NAN, 1.5, "within the max 1.50s, but the 1.2x limit needs a bound on the baseline"},
		{"both, baseline missing: the max still fails", slo(CN_METRIC_LATENCY, 0.99, 1.5, 1.2), 1000, 0, SLOW1K,
		 20000, 0, BASE20K, 0, 0, CN_SERIES_LATENCY, 0, NULL, CN_VERDICT_FAIL, 1.98, NAN, 1.5, "= max)"},
		{"relative only, baseline reset", slo(CN_METRIC_LATENCY, 0.99, NAN, 1.2), 1000, 0, FAST1K, 20000, 0,
		 BASE20K, 0, 0, 0, CN_SERIES_REQUESTS, NULL, CN_VERDICT_INCONCLUSIVE, BASE_P99, NAN, NAN,
		 "no baseline value"},
		{"too few candidate requests", slo(CN_METRIC_LATENCY, 0.99, NAN, 1.2), 10, 0, SLOW, 20000, 0, BASE20K, 0,
		 0, 0, 0, NULL, CN_VERDICT_INCONCLUSIVE, 1.98, BASE_P99, NAN,
		 "only 10 candidate requests in this step, need 50"},
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
		{"another series missing does not matter", slo(CN_METRIC_LATENCY, 0.99, NAN, 1.2), 1000, 0, FAST1K,
		 20000, 0, BASE20K, CN_SERIES_ITL | CN_SERIES_ERRORS, 0, 0, 0, NULL, CN_VERDICT_PASS, BASE_P99, BASE_P99,
		 LIMIT_1_2X, "p99 latency"},
		{"candidate reading unusable", slo(CN_METRIC_LATENCY, 0.99, NAN, 1.2), 100, 0, FAST, 100, 0, FAST,
		 0x1f, 0, 0, 0, "connection refused", CN_VERDICT_INCONCLUSIVE, 0.99, 0.99, NAN,
		 "candidate metrics unusable: connection refused"},
		{"candidate histogram empty in the step", slo(CN_METRIC_LATENCY, 0.99, 2, NAN), 100, 0, NULL, 100, 0,
		 FAST, 0, 0, 0, 0, NULL, CN_VERDICT_INCONCLUSIVE, NAN, 0.99, NAN, "candidate value not computable"},
		/* the relative limit is the ratio times the baseline's anytime upper bound: 1.024% x 1.2 here */
		{"error regression", slo(CN_METRIC_ERROR_RATE, NAN, NAN, 1.2), 1000, 50, NULL, 5000, 25, NULL, 0, 0, 0,
		 0, NULL, CN_VERDICT_FAIL, 0.05, 0.005, 0.012287156182170814,
		 "error rate 5% vs baseline 0.5% (limit 1.23% = 1.2x), at least 2.62% at 99.9% at every tick"},
		{"the same regression over a small baseline is not proven (1 of 200 could be 9%)",
		 slo(CN_METRIC_ERROR_RATE, NAN, NAN, 1.2), 1000, 50, NULL, 200, 1, NULL, 0, 0, 0, 0, NULL,
		 CN_VERDICT_PASS, 0.05, 0.005, 0.10973295227764529, "(limit 11% = 1.2x)"},
		{"error noise at a small count passes (2 of 50 is 4%, but could be 0.5%)",
		 slo(CN_METRIC_ERROR_RATE, NAN, 0.02, NAN), 50, 2, NULL, 5000, 25, NULL, 0, 0, 0, 0, NULL,
		 CN_VERDICT_PASS, 0.04, 0.005, 0.02, "(limit 2% = max), at least 0"},
		{"the same rate over more requests fails (80 of 2000)", slo(CN_METRIC_ERROR_RATE, NAN, 0.02, NAN), 2000,
		 80, NULL, 5000, 25, NULL, 0, 0, 0, 0, NULL, CN_VERDICT_FAIL, 0.04, 0.005, 0.02, "at least 2.41% at 99.9%"},
		{"error rate under an absolute max", slo(CN_METRIC_ERROR_RATE, NAN, 0.1, NAN), 100, 5, NULL, 200, 1, NULL,
		 0, 0, 0, 0, NULL, CN_VERDICT_PASS, 0.05, 0.005, 0.1, "(limit 10% = max)"},
		{"error rate, errors series missing", slo(CN_METRIC_ERROR_RATE, NAN, 0.1, NAN), 100, 0, NULL, 200, 1, NULL,
		 CN_SERIES_ERRORS, 0, 0, 0, NULL, CN_VERDICT_INCONCLUSIVE, 0, 0.005, NAN,
		 "candidate errors counter missing"},
		{"zero-error baseline, zero-error candidate", slo(CN_METRIC_ERROR_RATE, NAN, NAN, 2), 100, 0, NULL, 200, 0,
		 NULL, 0, 0, 0, 0, NULL, CN_VERDICT_PASS, 0, 0, 0.16909655603955992, "error rate 0% vs baseline 0%"},
		/* the false rollback: "error rate 0.549% vs baseline 0% (limit 0% = 3x)" on identical slots */
		{"zero-error baseline, one candidate error is noise", slo(CN_METRIC_ERROR_RATE, NAN, NAN, 2), 100, 1, NULL,
		 200, 0, NULL, 0, 0, 0, 0, NULL, CN_VERDICT_PASS, 0.01, 0, 0.16909655603955992,
		 "error rate 1% vs baseline 0% (limit 16.9% = 2x)"},
		{"both at 0.2%, 3x: passes", slo(CN_METRIC_ERROR_RATE, NAN, NAN, 3), 500, 3, NULL, 500, 1, NULL, 0, 0, 0, 0,
		 NULL, CN_VERDICT_PASS, 0.006, 0.002, 0.10973295227764529, "limit 11% = 3x"},
		{"itl quantile in milliseconds", slo(CN_METRIC_ITL, 0.5, 0.6, NAN), 100, 0, FAST, 100, 0, FAST, 0, 0, 0, 0,
		 NULL, CN_VERDICT_PASS, 0.5, 0.5, 0.6, "p50 itl 0.50s vs baseline 0.50s (limit 0.60s = max), 40% of"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct judge_case *c = &cases[i];
		struct cn_counters cand = counters(c->cand_req, c->cand_err, c->cand_lat);
		struct cn_counters base = counters(c->base_req, c->base_err, c->base_lat);
		struct cn_series_status cst = {c->cand_missing, c->cand_reset, c->cand_note};
		struct cn_series_status bst = {c->base_missing, c->base_reset, NULL};
		struct cn_slo_result r;
		memset(&r, 0x5a, sizeof r);
		cn_judge_slo(&c->slo, &CTX, &cand, &base, &cst, &bst, &r);
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

/* Bursty errors: the same counts with a dispersion index of 8 are not proof (each burst counts as one event), and
 * before the dispersion can be estimated a candidate that looks worse is held, not failed. */
static void test_threshold_dispersion_and_warmup(void **state)
{
	(void)state;
	struct cn_slo s = slo(CN_METRIC_ERROR_RATE, NAN, 0.02, NAN);
	struct cn_counters base = counters(5000, 25, NULL), cand = counters(2000, 80, NULL);
	struct cn_series_status ok = {0, 0, NULL};
	struct cn_slo_result r;
	struct cn_judge_ctx ctx = CTX;
	cn_judge_slo(&s, &ctx, &cand, &base, &ok, &ok, &r);
	assert_int_equal(r.verdict, CN_VERDICT_FAIL);
	ctx.disp = 8;
	cn_judge_slo(&s, &ctx, &cand, &base, &ok, &ok, &r);
	assert_int_equal(r.verdict, CN_VERDICT_PASS);
	assert_double_equal(r.dispersion, 8, 0);
	ctx = CTX;
	ctx.warm = false;
	cn_judge_slo(&s, &ctx, &cand, &base, &ok, &ok, &r);
	assert_int_equal(r.verdict, CN_VERDICT_INCONCLUSIVE);
	assert_contains(r.why, "looks worse, judged once 6 ticks show how bursty bad events are");
	/* a grossly failing candidate is held too, not failed: nothing is known of bursts yet */
	cand = counters(2000, 1000, NULL);
	cn_judge_slo(&s, &ctx, &cand, &base, &ok, &ok, &r);
	assert_int_equal(r.verdict, CN_VERDICT_INCONCLUSIVE);
}

/* A failing verdict waits for the policy's min_requests: below it, a candidate that looks worse is inconclusive
 * (it holds, never advances) and says so; with the sample in, the same numbers fail. */
static void test_fail_waits_for_min_requests(void **state)
{
	(void)state;
	struct cn_slo s = slo(CN_METRIC_LATENCY, 0.99, NAN, 1.2);
	struct cn_counters base = counters(20000, 0, BASE20K);
	struct cn_series_status ok = {0, 0, NULL};
	struct cn_slo_result r;
	struct cn_counters cand = counters(100, 0, SLOW);
	struct cn_judge_ctx ctx = CTX;
	ctx.min_requests = 200;
	cn_judge_slo(&s, &ctx, &cand, &base, &ok, &ok, &r);
	assert_int_equal(r.verdict, CN_VERDICT_INCONCLUSIVE);
	if (!strstr(r.why, "looks worse, judged once the step has 200 candidate requests (100 so far)"))
		fail_msg("why: %s", r.why);
	cand = counters(200, 0, SLOW);
	cn_judge_slo(&s, &ctx, &cand, &base, &ok, &ok, &r);
	assert_int_equal(r.verdict, CN_VERDICT_FAIL);
	/* a passing verdict needs only the floor */
	cand = counters(60, 0, FAST);
	cn_judge_slo(&s, &ctx, &cand, &base, &ok, &ok, &r);
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
	assert_int_equal(st.missing, (CN_SERIES_LAST << 1) - 1); /* every series, token counters included */
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
		cmocka_unit_test(test_rate_bounds),
		cmocka_unit_test(test_threshold_dispersion_and_warmup),
		cmocka_unit_test(test_min_sample),
		cmocka_unit_test(test_fail_waits_for_min_requests),
		cmocka_unit_test(test_labels),
		cmocka_unit_test(test_ingest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
