/* Unit tests of the histogram arithmetic: Prometheus-style quantiles, exceedances, deltas and accumulation. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "canary/judge.h"

/* cmocka 1.1 has no double comparison (assert_float_equal casts to float) */
#define assert_double_equal(a, b, eps)                                                                      \
	do {                                                                                                \
		double a_ = (a), b_ = (b);                                                                  \
		if (!(fabs(a_ - b_) <= (eps)))                                                              \
			fail_msg("%s = %.17g, want %.17g", #a, a_, b_);                                     \
	} while (0)

static struct cn_histogram hist(int n, const double *le, const double *count)
{
	struct cn_histogram h;
	memset(&h, 0, sizeof h);
	h.nbuckets = n;
	for (int i = 0; i < n; i++) {
		h.le[i] = le[i];
		h.count[i] = count[i];
	}
	h.sum = NAN;
	return h;
}

/* le 0.1, 0.5, 1, +Inf with 10, 50, 30, 10 observations per bucket (cumulative 10, 60, 90, 100) */
static const double LE4[] = {0.1, 0.5, 1, INFINITY};
static const double C4[] = {10, 60, 90, 100};

static void test_quantile_table(void **state)
{
	(void)state;
	struct cn_histogram h = hist(4, LE4, C4);
	static const struct {
		double q, want;
	} cases[] = {
		{0.05, 0.05},  /* rank 5 in the first bucket, interpolated from 0 */
		{0.1, 0.1},    /* rank 10: top of the first bucket */
		{0.5, 0.42},   /* rank 50: 0.1 + 0.4 * 40/50 */
		{0.6, 0.5},    /* rank 60: top of the second bucket */
		{0.75, 0.75},  /* rank 75: 0.5 + 0.5 * 15/30 */
		{0.9, 1.0},    /* rank 90: top of the last finite bucket */
		{0.95, 1.0},   /* rank in the +Inf bucket: the last finite bound */
		{1.0, 1.0},
		{0.0, 0.0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		double got = cn_histogram_quantile(cases[i].q, &h);
		if (fabs(got - cases[i].want) > 1e-12)
			fail_msg("q=%g: got %.17g, want %g", cases[i].q, got, cases[i].want);
	}
}

static void test_quantile_edges(void **state)
{
	(void)state;
	struct cn_histogram h = hist(4, LE4, C4);
	assert_true(isnan(cn_histogram_quantile(NAN, &h)));
	assert_true(isinf(cn_histogram_quantile(-0.1, &h)) && cn_histogram_quantile(-0.1, &h) < 0);
	assert_true(isinf(cn_histogram_quantile(1.1, &h)) && cn_histogram_quantile(1.1, &h) > 0);

	static const double zero[] = {0, 0, 0, 0};
	struct cn_histogram empty = hist(4, LE4, zero);
	assert_true(isnan(cn_histogram_quantile(0.5, &empty)));

	struct cn_histogram missing = hist(0, LE4, C4);
	assert_true(isnan(cn_histogram_quantile(0.5, &missing)));

	static const double inf_only[] = {INFINITY};
	static const double c1[] = {5};
	struct cn_histogram one = hist(1, inf_only, c1);
	assert_true(isnan(cn_histogram_quantile(0.5, &one)));

	static const double no_inf[] = {0.1, 0.5, 1, 2};
	struct cn_histogram noinf = hist(4, no_inf, C4);
	assert_true(isnan(cn_histogram_quantile(0.5, &noinf)));

	static const double down[] = {10, 60, 50, 100};
	struct cn_histogram nonmono = hist(4, LE4, down);
	assert_true(isnan(cn_histogram_quantile(0.5, &nonmono)));

	static const double unsorted[] = {0.5, 0.1, 1, INFINITY};
	struct cn_histogram uns = hist(4, unsorted, C4);
	assert_true(isnan(cn_histogram_quantile(0.5, &uns)));

	/* first bucket with a bound <= 0: its bound is the answer */
	static const double neg_le[] = {-1, 0, INFINITY};
	static const double neg_c[] = {5, 10, 10};
	struct cn_histogram neg = hist(3, neg_le, neg_c);
	assert_double_equal(cn_histogram_quantile(0.25, &neg), -1, 1e-12);

	/* empty buckets below: interpolation within the first bucket that reaches the rank */
	static const double gap_le[] = {1, 2, 4, INFINITY};
	static const double gap_c[] = {0, 0, 8, 8};
	struct cn_histogram gap = hist(4, gap_le, gap_c);
	assert_double_equal(cn_histogram_quantile(0.5, &gap), 3, 1e-12);

	/* everything in +Inf: the last finite bound */
	static const double top_c[] = {0, 0, 0, 7};
	struct cn_histogram top = hist(4, gap_le, top_c);
	assert_double_equal(cn_histogram_quantile(0.5, &top), 4, 1e-12);
}

static void test_count_above(void **state)
{
	(void)state;
	struct cn_histogram h = hist(4, LE4, C4);
	static const struct {
		double threshold, above;
	} cases[] = {
		{0.5, 40},   /* 60 at or below 0.5 */
		{0.3, 65},   /* below: 10 + 50 * 0.2/0.4 = 35 */
		{0.05, 95},  /* below: 10 * 0.05/0.1 = 5 */
		{0.75, 25},  /* below: 60 + 30 * 0.5 = 75 */
		{1.0, 10},   /* the +Inf bucket only */
		{2.0, 10},   /* beyond the last finite bound: +Inf bucket counts as above */
		{0.0, 100},
		{-1.0, 100},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		double got = cn_histogram_count_above(&h, cases[i].threshold);
		if (fabs(got - cases[i].above) > 1e-9)
			fail_msg("threshold %g: got %.17g, want %g", cases[i].threshold, got, cases[i].above);
	}
	assert_double_equal(cn_histogram_fraction_above(&h, 0.3), 0.65, 1e-12);
	assert_true(isnan(cn_histogram_count_above(&h, NAN)));
	static const double zero[] = {0, 0, 0, 0};
	struct cn_histogram empty = hist(4, LE4, zero);
	assert_double_equal(cn_histogram_count_above(&empty, 0.3), 0, 0);
	assert_true(isnan(cn_histogram_fraction_above(&empty, 0.3)));
	struct cn_histogram missing = hist(0, LE4, C4);
	assert_true(isnan(cn_histogram_fraction_above(&missing, 0.3)));
}

static void test_counter_delta(void **state)
{
	(void)state;
	static const struct {
		double cur, prev;
		enum cn_delta want;
		double out; /* NAN: expect NAN */
	} cases[] = {
		{150, 100, CN_DELTA_OK, 50},
		{100, 100, CN_DELTA_OK, 0},
		{30, 100, CN_DELTA_RESET, 30}, /* restart: counted from 0, like rate() */
		{NAN, 100, CN_DELTA_MISSING, NAN},
		{100, NAN, CN_DELTA_MISSING, NAN},
		{INFINITY, 100, CN_DELTA_MISSING, NAN},
		{-1, 0, CN_DELTA_MISSING, NAN},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		double out = -7;
		enum cn_delta r = cn_counter_delta(cases[i].cur, cases[i].prev, &out);
		assert_int_equal(r, cases[i].want);
		if (isnan(cases[i].out))
			assert_true(isnan(out));
		else
			assert_double_equal(out, cases[i].out, 0);
	}
}

static void test_histogram_delta(void **state)
{
	(void)state;
	static const double prev_c[] = {5, 20, 30, 40};
	struct cn_histogram prev = hist(4, LE4, prev_c), cur = hist(4, LE4, C4), d;
	prev.sum = 10;
	cur.sum = 25;

	assert_int_equal(cn_histogram_delta(&cur, &prev, &d), CN_DELTA_OK);
	assert_int_equal(d.nbuckets, 4);
	static const double want[] = {5, 40, 60, 60};
	for (int i = 0; i < 4; i++)
		assert_double_equal(d.count[i], want[i], 0);
	assert_double_equal(d.sum, 15, 0);

	/* a bucket went down: reset, the delta is the new reading */
	assert_int_equal(cn_histogram_delta(&prev, &cur, &d), CN_DELTA_RESET);
	for (int i = 0; i < 4; i++)
		assert_double_equal(d.count[i], prev_c[i], 0);

	/* other bounds: treated as a reset */
	static const double le2[] = {0.2, 0.5, 1, INFINITY};
	struct cn_histogram other = hist(4, le2, C4);
	assert_int_equal(cn_histogram_delta(&other, &prev, &d), CN_DELTA_RESET);
	assert_double_equal(d.le[0], 0.2, 0);
	assert_double_equal(d.count[3], 100, 0);

	/* missing current or previous reading: no delta */
	struct cn_histogram none = hist(0, LE4, C4);
	assert_int_equal(cn_histogram_delta(&none, &prev, &d), CN_DELTA_MISSING);
	assert_int_equal(d.nbuckets, 0);
	assert_int_equal(cn_histogram_delta(&cur, &none, &d), CN_DELTA_MISSING);
	static const double bad_c[] = {10, NAN, 90, 100};
	struct cn_histogram bad = hist(4, LE4, bad_c);
	assert_int_equal(cn_histogram_delta(&bad, &prev, &d), CN_DELTA_MISSING);

	/* a non-atomic scrape: buckets individually up but the difference not monotonic is clamped */
	static const double p2[] = {5, 20, 30, 40};
	static const double c2[] = {9, 21, 31, 41};
	struct cn_histogram hp = hist(4, LE4, p2), hc = hist(4, LE4, c2);
	assert_int_equal(cn_histogram_delta(&hc, &hp, &d), CN_DELTA_OK);
	assert_double_equal(d.count[0], 4, 0);
	assert_double_equal(d.count[1], 4, 0);
	assert_true(cn_histogram_sane(&d));
}

static void test_accumulate(void **state)
{
	(void)state;
	static const double a_c[] = {1, 2, 3, 4};
	struct cn_histogram acc, d = hist(4, LE4, a_c);
	memset(&acc, 0, sizeof acc);
	acc.sum = NAN;
	d.sum = 2;

	assert_true(cn_histogram_accumulate(&acc, &d));
	assert_int_equal(acc.nbuckets, 4);
	assert_true(cn_histogram_accumulate(&acc, &d));
	for (int i = 0; i < 4; i++)
		assert_double_equal(acc.count[i], 2 * a_c[i], 0);
	assert_double_equal(acc.sum, 4, 0);

	struct cn_histogram empty = hist(0, LE4, a_c);
	assert_true(cn_histogram_accumulate(&acc, &empty));
	assert_double_equal(acc.count[3], 8, 0);

	static const double le2[] = {0.2, 0.5, 1, INFINITY};
	struct cn_histogram other = hist(4, le2, a_c);
	assert_false(cn_histogram_accumulate(&acc, &other));
	assert_double_equal(acc.le[0], 0.2, 0);
	assert_double_equal(acc.count[3], 4, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quantile_table),
		cmocka_unit_test(test_quantile_edges),
		cmocka_unit_test(test_count_above),
		cmocka_unit_test(test_counter_delta),
		cmocka_unit_test(test_histogram_delta),
		cmocka_unit_test(test_accumulate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
