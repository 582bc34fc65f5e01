/* Unit tests for word packing (controller/util/zpack.c): round trips of empty, all-zero, dense and sparse buffers of
 * every length 0..40 and a rollout state's size, of random mixtures of zero runs, repeats and noise, the packed size
 * of a sparse buffer and of a state's histograms (whose repeats are copied, not stored again), and blobs that are not
 * a packing of the length asked for (truncated, runs past the end, a partial word with bytes past the end, copies
 * from before the start, unknown tokens). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "canary/rollout-t.h"
#include "canary/zpack.h"

static void round_trip(const unsigned char *src, size_t n)
{
	unsigned char *blob = NULL;
	size_t len = 0;
	assert_int_equal(cn_zpack(src, n, &blob, &len), 0);
	assert_non_null(blob);
	unsigned char *back = malloc(n + 1);
	assert_non_null(back);
	memset(back, 0xa5, n + 1); /* every byte must be written, none past n */
	assert_int_equal(cn_zunpack(blob, len, back, n), 0);
	assert_memory_equal(back, src, n);
	assert_int_equal(back[n], 0xa5);
	free(back);
	free(blob);
}

static void test_every_length(void **state)
{
	(void)state;
	unsigned char buf[41];
	for (size_t n = 0; n <= 40; n++) {
		memset(buf, 0, sizeof buf);
		round_trip(buf, n); /* all zero */
		for (size_t i = 0; i < n; i++)
			buf[i] = (unsigned char)(i * 37 + 1);
		round_trip(buf, n); /* dense, no zero byte */
		memset(buf, 0, sizeof buf);
		if (n > 0)
			buf[n - 1] = 7; /* only the last byte, which may sit in a partial word */
		round_trip(buf, n);
	}
}

static void test_sparse_state_size(void **state)
{
	(void)state;
	enum { N = 30824 };
	unsigned char *buf = calloc(1, N);
	assert_non_null(buf);
	srand(13);
	for (int k = 0; k < 200; k++) /* 200 scattered doubles */
		buf[(size_t)rand() % N] = (unsigned char)(1 + rand() % 255);
	round_trip(buf, N);
	unsigned char *blob = NULL;
	size_t len = 0;
	assert_int_equal(cn_zpack(buf, N, &blob, &len), 0);
	/* at most 200 literal words and 201 run headers */
	assert_true(len <= 200 * 8 + 201 * 8);
	assert_true(len < N / 8);
	free(blob);
	memset(buf, 0, N);
	assert_int_equal(cn_zpack(buf, N, &blob, &len), 0);
	assert_true(len <= 3); /* one run of zeros: a token */
	free(blob);
	free(buf);
}

static void test_not_a_packing(void **state)
{
	(void)state;
	unsigned char src[20], dst[32];
	for (int i = 0; i < 20; i++)
		src[i] = (unsigned char)(i + 1);
	unsigned char *blob = NULL;
	size_t len = 0;
	assert_int_equal(cn_zpack(src, 20, &blob, &len), 0);
	assert_int_equal(cn_zunpack(blob, len, dst, 20), 0);
	assert_int_equal(cn_zunpack(blob, len - 1, dst, 20), -1); /* truncated literal */
	assert_int_equal(cn_zunpack(blob, 4, dst, 20), -1);       /* truncated header */
	assert_int_equal(cn_zunpack(blob, len, dst, 16), -1);     /* more words than 16 bytes hold */
	assert_int_equal(cn_zunpack(blob, len, dst, 32), -1);     /* fewer words than 32 bytes need */
	assert_int_equal(cn_zunpack(blob, len, dst, 17), -1);     /* the last word has bytes past byte 17 */
	free(blob);
	const unsigned char big[] = {0xff, 0xff, 0xff, 0xff, 0x0f};  /* a zero run far past the end */
	assert_int_equal(cn_zunpack(big, sizeof big, dst, 32), -1);
	const unsigned char lit1[] = {1 << 2 | 1, 2, 1, 2, 3, 4, 5, 6, 7, 8}; /* one literal word */
	assert_int_equal(cn_zunpack(lit1, sizeof lit1, dst, 8), 0);
	const unsigned char copy0[] = {1 << 2 | 1, 2, 1, 2, 3, 4, 5, 6, 7, 8, 1 << 2 | 2, 0}; /* copy from distance 0 */
	assert_int_equal(cn_zunpack(copy0, sizeof copy0, dst, 16), -1);
	const unsigned char copy2[] = {1 << 2 | 1, 2, 1, 2, 3, 4, 5, 6, 7, 8, 1 << 2 | 2, 2}; /* from before the start */
	assert_int_equal(cn_zunpack(copy2, sizeof copy2, dst, 16), -1);
	const unsigned char copy1[] = {1 << 2 | 1, 2, 1, 2, 3, 4, 5, 6, 7, 8, 3 << 2 | 2, 1}; /* overlapping: fine */
	assert_int_equal(cn_zunpack(copy1, sizeof copy1, dst, 32), 0);
	for (int w = 1; w < 4; w++)
		assert_memory_equal(dst + 8 * w, lit1 + 2, 8);
	/* a literal's other forms: a whole double (3.0), a small integer (300); u = 3 and u = 6 are no form */
	const unsigned char forms[] = {2 << 2 | 1, 3 << 2, 0xb1, 0x09};
	assert_int_equal(cn_zunpack(forms, sizeof forms, dst, 16), 0);
	double three;
	uint64_t i300;
	memcpy(&three, dst, 8);
	memcpy(&i300, dst + 8, 8);
	assert_true(three == 3.0);
	assert_true(i300 == 300);
	const unsigned char form3[] = {1 << 2 | 1, 3}, form6[] = {1 << 2 | 1, 6, 1, 2, 3, 4, 5, 6, 7, 8};
	assert_int_equal(cn_zunpack(form3, sizeof form3, dst, 8), -1);
	assert_int_equal(cn_zunpack(form6, sizeof form6, dst, 8), -1);
	const unsigned char copy_nodist[] = {1 << 2 | 1, 2, 1, 2, 3, 4, 5, 6, 7, 8, 1 << 2 | 2}; /* distance missing */
	assert_int_equal(cn_zunpack(copy_nodist, sizeof copy_nodist, dst, 16), -1);
	const unsigned char kind3[] = {1 << 2 | 3, 0};             /* no such token */
	assert_int_equal(cn_zunpack(kind3, sizeof kind3, dst, 8), -1);
	unsigned char overlong[11];                                /* a varint longer than 64 bits */
	memset(overlong, 0x80, sizeof overlong);
	assert_int_equal(cn_zunpack(overlong, sizeof overlong, dst, 8), -1);
	assert_int_equal(cn_zunpack(NULL, 0, dst, 8), -1);         /* nothing for one word */
	/* an empty token after the last word of a 12-byte struct: refused (it cleared bytes far past the 12) */
	unsigned char guard[32];
	memset(guard, 0xab, sizeof guard);
	const unsigned char empty_zero[] = {2 << 2 | 0, 0 << 2 | 0};
	assert_int_equal(cn_zunpack(empty_zero, sizeof empty_zero, guard, 12), -1);
	for (size_t k = 12; k < sizeof guard; k++)
		assert_int_equal(guard[k], 0xab);
	const unsigned char empty_lit[] = {0 << 2 | 1}, empty_copy[] = {1 << 2 | 0, 0 << 2 | 2, 1};
	assert_int_equal(cn_zunpack(empty_lit, sizeof empty_lit, dst, 8), -1);
	assert_int_equal(cn_zunpack(empty_copy, sizeof empty_copy, dst, 8), -1);
	assert_int_equal(cn_zunpack(NULL, 0, dst, 0), 0);
}

/* A rollout state as canaryd holds it: a few histograms with the same bounds, cumulative counts that level off at the
 * total, a few counters. Zero runs alone keep every bound and count (about 2.6 kB here); copies keep the first
 * histogram's bounds and one word of each plateau. */
static void test_state_histograms(void **state)
{
	(void)state;
	struct cn_rollout_state *st = calloc(1, sizeof *st);
	assert_non_null(st);
	struct cn_histogram *h[] = { &st->last.baseline.latency, &st->last.candidate.latency, &st->last.baseline.ttft,
				     &st->last.candidate.ttft, &st->acc_baseline.latency, &st->acc_candidate.latency };
	size_t nh = sizeof h / sizeof h[0], nonzero = 0;
	for (size_t k = 0; k < nh; k++) {
		h[k]->nbuckets = 20;
		for (int b = 0; b < 20; b++) {
			h[k]->le[b] = b == 19 ? 1e308 : 0.005 * (1 << (b / 2)) * (b % 2 ? 2.5 : 1);
			h[k]->count[b] = b < 12 ? 100.0 * (double)(k + 1) * b : 1200.0 * (double)(k + 1);
		}
		h[k]->sum = 37.5 * (double)(k + 1);
		nonzero += 40;
	}
	st->last.baseline.requests = 1234;
	st->last.candidate.requests = 56;
	st->step = 1;
	st->weight = 5;
	round_trip((const unsigned char *)st, sizeof *st);
	unsigned char *blob = NULL;
	size_t len = 0;
	assert_int_equal(cn_zpack(st, sizeof *st, &blob, &len), 0);
	print_message("state with %zu non-zero words: %zu bytes packed\n", nonzero, len);
	assert_true(len < nonzero * 2); /* whole-number counts take a byte or two, not 8 */
	free(blob);
	free(st);
}

/* Random buffers built from zero runs, copies of earlier stretches (near and far, overlapping their own start) and
 * noise, at lengths that end in a partial word: every one comes back byte for byte. */
static void test_random_mixtures(void **state)
{
	(void)state;
	enum { MAXN = 4099 };
	unsigned char *buf = malloc(MAXN);
	assert_non_null(buf);
	srand(7);
	for (int iter = 0; iter < 2000; iter++) {
		size_t n = (size_t)rand() % MAXN, i = 0;
		while (i < n) {
			size_t run = 1 + (size_t)rand() % 64;
			if (run > n - i)
				run = n - i;
			int kind = rand() % 3;
			for (size_t k = 0; k < run; k++) {
				if (kind == 0)
					buf[i + k] = 0;
				else if (kind == 1 && i >= 8)
					buf[i + k] = buf[i + k - 8 * (1 + (size_t)rand() % (i / 8 < 4 ? i / 8 : 4))];
				else
					buf[i + k] = (unsigned char)rand();
			}
			i += run;
		}
		round_trip(buf, n);
	}
	free(buf);
}

/* Numbers against a base (cn_znum_put): every double comes back bit for bit, whole steps up take a varint (a byte for
 * a step below 64), anything else the byte 1 and 8 bytes; a cut-off number does not read. */
static void test_znum_round_trips(void **state)
{
	(void)state;
	const double cases[][2] = {
		{ 0, 0 }, { 0, 63 }, { 0, 64 }, { 100, 163 }, { 0, 0x1p52 }, { 0, 0x1p52 + 1 }, { 0x1p53, 0x1p53 + 2 },
		{ 0, 12.75 }, { 100, 99 }, { 0, -1 }, { 0, -0.0 }, { 0, NAN }, { 0, INFINITY }, { 1e300, 1e300 },
		{ 0.1, 1.1 }, { 0x1p60, 0x1p60 + 256 }, { 5, 5 }, { 0, 1e-300 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		double base = cases[i][0], v = cases[i][1], back = 0;
		unsigned char buf[CN_ZNUM_MAX + 1];
		size_t len = cn_znum_put(buf, 0, base, v), at = 0;
		assert_true(len <= CN_ZNUM_MAX);
		assert_int_equal(cn_znum_get(buf, len, &at, base, &back), 0);
		assert_int_equal(at, len);
		assert_memory_equal(&back, &v, sizeof v);
		double d = v - base;
		bool step = d >= 0 && d <= 0x1p52 && d == floor(d) && base + d == v && !signbit(v);
		if (step)
			assert_true(len <= 8 && (d >= 64 || len == 1));
		else if (!(v == 0 && base == 0))
			assert_int_equal(len, 9);
		for (size_t cut = 0; cut < len; cut++) {
			at = 0;
			assert_int_equal(cn_znum_get(buf, cut, &at, base, &back), -1);
		}
	}
	/* a varint that is odd but not 1 is not a number */
	unsigned char bad[] = { 3, 0, 0, 0, 0, 0, 0, 0, 0 };
	size_t at = 0;
	double v;
	assert_int_equal(cn_znum_get(bad, sizeof bad, &at, 0, &v), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_length),
		cmocka_unit_test(test_sparse_state_size),
		cmocka_unit_test(test_not_a_packing),
		cmocka_unit_test(test_state_histograms),
		cmocka_unit_test(test_random_mixtures),
		cmocka_unit_test(test_znum_round_trips),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
