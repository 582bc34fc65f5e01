/* Unit tests for the capped growable buffer (controller/util/dynbuf.c): growth across many adds, the cap exactly
 * and one byte over, addf longer than its stack buffer and over the cap, zero-length adds, the sticky error, reset,
 * take and free. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "canary/dynbuf.h"
#include "canary/err.h"

static void test_empty(void **state)
{
	(void)state;
	struct cn_dynbuf b;
	cn_dynbuf_init(&b, 10);
	assert_string_equal(cn_dynbuf_ptr(&b), "");
	assert_int_equal(cn_dynbuf_len(&b), 0);
	assert_int_equal(cn_dynbuf_error(&b), 0);
	assert_int_equal(cn_dynbuf_add(&b, "", 0), 0); /* zero length: nothing, success */
	assert_int_equal(cn_dynbuf_adds(&b, ""), 0);
	assert_int_equal(cn_dynbuf_addf(&b, "%s", ""), 0);
	assert_int_equal(cn_dynbuf_len(&b), 0);
	assert_string_equal(cn_dynbuf_ptr(&b), "");
	size_t len = 99;
	char *s = cn_dynbuf_take(&b, &len); /* an empty buffer hands over a new "" */
	assert_non_null(s);
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	free(s);
	cn_dynbuf_free(&b);
	cn_dynbuf_free(&b); /* twice is fine */
}

static void test_growth(void **state)
{
	(void)state;
	struct cn_dynbuf b;
	cn_dynbuf_init(&b, 1u << 20);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(cn_dynbuf_addf(&b, "%04d,", i % 10000), 0);
	assert_int_equal(cn_dynbuf_len(&b), 50000);
	assert_int_equal(strlen(cn_dynbuf_ptr(&b)), 50000);
	assert_memory_equal(cn_dynbuf_ptr(&b), "0000,0001,", 10);
	assert_memory_equal(cn_dynbuf_ptr(&b) + 49995, "9999,", 5);
	assert_true(b.alloc >= 50001 && b.alloc <= 2 * 50001); /* doubling, not one allocation per add */
	/* binary bytes, a NUL among them, are kept; the text stays NUL-terminated */
	cn_dynbuf_reset(&b);
	assert_int_equal(cn_dynbuf_add(&b, "a\0b", 3), 0);
	assert_int_equal(cn_dynbuf_len(&b), 3);
	assert_memory_equal(cn_dynbuf_ptr(&b), "a\0b", 4);
	cn_dynbuf_free(&b);
}

static void test_cap(void **state)
{
	(void)state;
	struct cn_dynbuf b;
	cn_dynbuf_init(&b, 8);
	assert_int_equal(cn_dynbuf_adds(&b, "12345"), 0);
	assert_int_equal(cn_dynbuf_adds(&b, "678"), 0); /* exactly the cap */
	assert_int_equal(cn_dynbuf_len(&b), 8);
	assert_true(b.alloc <= 9);                      /* never more than the cap and the NUL */
	assert_int_equal(cn_dynbuf_add(&b, "9", 1), -CN_EINPUT);
	assert_string_equal(cn_dynbuf_ptr(&b), "12345678"); /* unchanged */
	/* sticky: even what would fit fails, until a reset */
	assert_int_equal(cn_dynbuf_add(&b, "", 0), -CN_EINPUT);
	assert_int_equal(cn_dynbuf_error(&b), -CN_EINPUT);
	cn_dynbuf_reset(&b);
	assert_int_equal(cn_dynbuf_error(&b), 0);
	assert_int_equal(cn_dynbuf_len(&b), 0);
	assert_string_equal(cn_dynbuf_ptr(&b), "");
	assert_int_equal(cn_dynbuf_adds(&b, "abcdefgh"), 0);
	assert_int_equal(cn_dynbuf_adds(&b, "abcdefghi" + 8), -CN_EINPUT);
	cn_dynbuf_free(&b);

	/* one add larger than the cap on an empty buffer */
	cn_dynbuf_init(&b, 4);
	assert_int_equal(cn_dynbuf_adds(&b, "hello"), -CN_EINPUT);
	assert_null(b.p);
	cn_dynbuf_free(&b);

	/* a length so large that len + extra would wrap */
	cn_dynbuf_init(&b, 16);
	assert_int_equal(cn_dynbuf_adds(&b, "x"), 0);
	assert_int_equal(cn_dynbuf_add(&b, "y", SIZE_MAX), -CN_EINPUT);
	cn_dynbuf_free(&b);
}

static void test_addf(void **state)
{
	(void)state;
	struct cn_dynbuf b;
	char big[3000];
	memset(big, 'z', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	cn_dynbuf_init(&b, 10000);
	assert_int_equal(cn_dynbuf_addf(&b, "[%d]", 7), 0);
	assert_int_equal(cn_dynbuf_addf(&b, "<%s>", big), 0); /* longer than the stack buffer */
	assert_int_equal(cn_dynbuf_len(&b), 3 + 2 + sizeof big - 1);
	assert_memory_equal(cn_dynbuf_ptr(&b), "[7]<zzz", 7);
	assert_string_equal(cn_dynbuf_ptr(&b) + cn_dynbuf_len(&b) - 2, "z>");
	cn_dynbuf_free(&b);

	/* over the cap: short text and long text, both refused whole */
	cn_dynbuf_init(&b, 2000);
	assert_int_equal(cn_dynbuf_addf(&b, "%s", big + 1100), 0); /* 1899 bytes */
	assert_int_equal(cn_dynbuf_addf(&b, "%0200d", 1), -CN_EINPUT);
	assert_int_equal(cn_dynbuf_len(&b), 1899);
	cn_dynbuf_reset(&b);
	assert_int_equal(cn_dynbuf_addf(&b, "%s!", big), -CN_EINPUT);
	assert_int_equal(cn_dynbuf_len(&b), 0);
	assert_string_equal(cn_dynbuf_ptr(&b), "");
	cn_dynbuf_free(&b);
}

static void test_take(void **state)
{
	(void)state;
	struct cn_dynbuf b;
	cn_dynbuf_init(&b, 100);
	assert_int_equal(cn_dynbuf_adds(&b, "page"), 0);
	size_t len = 0;
	char *s = cn_dynbuf_take(&b, &len);
	assert_string_equal(s, "page");
	assert_int_equal(len, 4);
	free(s);
	/* b is empty and usable again, with the same cap */
	assert_int_equal(cn_dynbuf_len(&b), 0);
	assert_int_equal(b.max, 100);
	assert_int_equal(cn_dynbuf_adds(&b, "again"), 0);
	s = cn_dynbuf_take(&b, NULL);
	assert_string_equal(s, "again");
	free(s);
	cn_dynbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty), cmocka_unit_test(test_growth), cmocka_unit_test(test_cap),
		cmocka_unit_test(test_addf),  cmocka_unit_test(test_take),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
