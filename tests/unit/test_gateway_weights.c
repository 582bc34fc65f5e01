/* Unit tests for the HAProxy gateway's pure parts: shares -> weights (0..256), weights -> shares, and the order
 * of the two weight writes. Table-driven, no I/O. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "canary/gateway.h"

static const struct {
	double pct0;
	int w0, w1;
} map_cases[] = {
	{ 0.0, 0, 1 },      /* slot 0 off */
	{ 100.0, 1, 0 },    /* slot 1 off */
	{ 1.0, 1, 99 },     /* exact */
	{ 99.0, 99, 1 },    /* mirrored */
	{ 0.5, 1, 199 },    /* exact */
	{ 5.0, 1, 19 },     /* exact, smallest total */
	{ 95.0, 19, 1 },
	{ 10.0, 1, 9 },
	{ 12.5, 1, 7 },
	{ 25.0, 1, 3 },
	{ 50.0, 1, 1 },
	{ 33.3, 1, 2 },     /* 33.33 %: nearest within 256 */
	{ 7.0, 7, 93 },     /* exact, no smaller total does better */
	{ 0.1, 1, 255 },    /* non-zero never becomes 0: smallest share HAProxy can give */
	{ 1e-9, 1, 255 },
	{ 99.9, 255, 1 },
	{ 0.4, 1, 249 },    /* 0.4016 % */
};

static void test_map_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof map_cases / sizeof map_cases[0]; i++) {
		int w[2] = { -1, -1 };
		struct cn_err err = { 0 };
		assert_int_equal(cn_haproxy_weights_from_pct(map_cases[i].pct0, w, &err), 0);
		if (w[0] != map_cases[i].w0 || w[1] != map_cases[i].w1)
			fail_msg("pct %g: got %d/%d, want %d/%d", map_cases[i].pct0, w[0], w[1], map_cases[i].w0,
				 map_cases[i].w1);
	}
}

static void test_map_rejects(void **state)
{
	(void)state;
	const double bad[] = { NAN, -0.001, 100.001, INFINITY, -INFINITY };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int w[2] = { 7, 7 };
		struct cn_err err = { 0 };
		assert_int_equal(cn_haproxy_weights_from_pct(bad[i], w, &err), -CN_EINPUT);
		assert_int_equal(err.code, CN_EINPUT);
		assert_int_equal(w[0], 7); /* output untouched on failure */
		assert_int_equal(w[1], 7);
	}
}

/* Sweeps 0..100 in 0.01 steps: bounds, non-zero preservation, mirror symmetry and the documented worst-case error. */
static void test_map_sweep_error_bound(void **state)
{
	(void)state;
	const double bound = 100.0 / 1020 + 1e-9, edge = 100.0 / 256;
	double worst = 0;
	for (int i = 0; i <= 10000; i++) {
		double p = i / 100.0;
		int w[2], m[2];
		struct cn_err err = { 0 };
		assert_int_equal(cn_haproxy_weights_from_pct(p, w, &err), 0);
		assert_true(w[0] >= 0 && w[1] >= 0);
		assert_true(w[0] + w[1] >= 1 && w[0] + w[1] <= CN_HAPROXY_WEIGHT_MAX);
		if (p > 0)
			assert_true(w[0] >= 1);
		if (p < 100)
			assert_true(w[1] >= 1);
		assert_int_equal(cn_haproxy_weights_from_pct((10000 - i) / 100.0, m, &err), 0);
		if (m[0] != w[1] || m[1] != w[0])
			fail_msg("pct %g -> %d/%d but %g -> %d/%d (not mirrored)", p, w[0], w[1], 100 - p, m[0], m[1]);
		double pct[2];
		cn_haproxy_pct_from_weights(w, pct);
		double e = fabs(pct[0] - p);
		if (p >= edge && p <= 100 - edge) {
			if (e > bound)
				fail_msg("pct %g -> %d/%d = %g: error %g above %g", p, w[0], w[1], pct[0], e, bound);
			if (e > worst)
				worst = e;
		} else {
			assert_true(e <= edge + 1e-9); /* at most the smallest non-zero share */
		}
	}
	assert_true(worst > 0.09); /* the bound is nearly reached, so it is the real worst case, not a loose one */
}

static void test_pct_from_weights(void **state)
{
	(void)state;
	static const struct {
		int w0, w1;
		double p0, p1;
	} cases[] = {
		{ 0, 1, 0, 100 }, { 1, 0, 100, 0 }, { 1, 99, 1, 99 }, { 1, 19, 5, 95 }, { 0, 0, 0, 0 }, { 256, 256, 50, 50 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int w[2] = { cases[i].w0, cases[i].w1 };
		double pct[2];
		cn_haproxy_pct_from_weights(w, pct);
		assert_float_equal(pct[0], cases[i].p0, 1e-9);
		assert_float_equal(pct[1], cases[i].p1, 1e-9);
	}
}

/* Share of slot 0 in the state between the two writes, when `first` is written first. */
static double mid_share0(const int cur[2], const int next[2], int first)
{
	int x0 = first == 0 ? next[0] : cur[0];
	int x1 = first == 0 ? cur[1] : next[1];
	return x0 + x1 > 0 ? (double)x0 / (x0 + x1) : -1;
}

static void test_first_write_table(void **state)
{
	(void)state;
	static const struct {
		const char *what;
		int c0, c1, n0, n1;
		int first;
	} cases[] = {
		{ "start ramp 0 -> 1 %: baseline first, via 0/99", 0, 1, 1, 99, 1 },
		{ "rollback 1 % -> 0: candidate first, via 0/99", 1, 99, 0, 1, 0 },
		{ "rollback 5 % -> 0: candidate first, via 0/19", 1, 19, 0, 1, 0 },
		{ "rollback 100 % -> 0: never 0/0, via 1/1", 1, 0, 0, 1, 1 },
		{ "promote 0 -> 100 %: never 0/0, via 1/1", 0, 1, 1, 0, 0 },
		{ "5 % -> 33 %, candidate weight drops: candidate first", 5, 95, 1, 2, 0 },
		{ "slot 1 as candidate, start ramp", 1, 0, 99, 1, 0 },
		{ "slot 1 as candidate, rollback", 99, 1, 1, 0, 1 },
		{ "both down 7 % -> 12 %: candidate gets less", 7, 93, 3, 22, 0 },
		{ "from 0/0: the state closest to the target", 0, 0, 1, 99, 1 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int cur[2] = { cases[i].c0, cases[i].c1 }, next[2] = { cases[i].n0, cases[i].n1 };
		int got = cn_haproxy_first_write(cur, next);
		if (got != cases[i].first)
			fail_msg("%s: first write slot %d, want %d", cases[i].what, got, cases[i].first);
	}
}

/* For every pair of the mapping's weights for whole percents: never 0/0 between the writes, and when one weight
 * rises and the other falls (or only one changes), the in-between share stays between the old and the new. */
static void test_first_write_sweep(void **state)
{
	(void)state;
	for (int a = 0; a <= 100; a++) {
		for (int b = 0; b <= 100; b++) {
			int cur[2], next[2];
			assert_int_equal(cn_haproxy_weights_from_pct(a, cur, NULL), 0);
			assert_int_equal(cn_haproxy_weights_from_pct(b, next, NULL), 0);
			int first = cn_haproxy_first_write(cur, next);
			double mid = mid_share0(cur, next, first);
			assert_true(mid >= 0); /* never both zero */
			int d0 = next[0] - cur[0], d1 = next[1] - cur[1];
			if ((long)d0 * d1 <= 0) {
				double lo = fmin(a, b) / 100.0, hi = fmax(a, b) / 100.0;
				double slack = 100.0 / 256 / 100; /* the mapping's own rounding */
				if (mid < lo - slack || mid > hi + slack)
					fail_msg("%d %% -> %d %% (%d/%d -> %d/%d): between-state %g outside", a, b, cur[0],
						 cur[1], next[0], next[1], mid);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_table),
		cmocka_unit_test(test_map_rejects),
		cmocka_unit_test(test_map_sweep_error_bound),
		cmocka_unit_test(test_pct_from_weights),
		cmocka_unit_test(test_first_write_table),
		cmocka_unit_test(test_first_write_sweep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
