/* Unit tests for zero-run packing (controller/util/zpack.c): round trips of empty, all-zero, dense and sparse
 * buffers of every length 0..40 and a rollout state's size, the packed size of a sparse buffer, and blobs that are
 * not a packing of the length asked for (truncated, runs past the end, a partial word with bytes past the end). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

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
	assert_int_equal(len, 8); /* one run of zeros */
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
	uint32_t big[2] = {0xffffffffu, 0};                        /* a zero run far past the end */
	assert_int_equal(cn_zunpack((unsigned char *)big, sizeof big, dst, 32), -1);
	assert_int_equal(cn_zunpack(NULL, 0, dst, 8), -1);         /* nothing for one word */
	assert_int_equal(cn_zunpack(NULL, 0, dst, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_length),
		cmocka_unit_test(test_sparse_state_size),
		cmocka_unit_test(test_not_a_packing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
