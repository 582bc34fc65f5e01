/* Unit tests for jansson's per-thread arena (controller/store/json_arena.c): values made in a stretch come from it
 * and dump the same as from the heap, the dump's copy outlives the stretch, a second stretch reuses the blocks, an
 * allocation bigger than a block gets its own, values made outside a stretch are the heap's (freed inside or
 * outside one), and release gives everything back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "canary/json_arena.h"

static char *sample_doc(int n)
{
	json_t *a = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:i, s:f, s:s}", "i", i, "x", i * 0.5, "name", "gr\u00fc\u00dfe"));
	char *text = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return text;
}

static void test_same_bytes_and_reuse(void **state)
{
	(void)state;
	char *heap = sample_doc(5000); /* before install: the heap's */
	assert_non_null(heap);
	cn_json_arena_install();
	json_t *outside = json_string("made outside a stretch");

	cn_json_arena_begin();
	char *copy = cn_json_arena_strdup(sample_doc(5000));
	json_decref(outside); /* a heap value freed inside a stretch goes back to the heap (ASan would see otherwise) */
	cn_json_arena_end();
	assert_non_null(copy);
	assert_string_equal(copy, heap);
	size_t held = cn_json_arena_held();
	assert_true(held >= ((size_t)1 << 20)); /* 5,000 objects took at least one block */

	cn_json_arena_begin(); /* the same again: the blocks are reused, none added */
	char *again = cn_json_arena_strdup(sample_doc(5000));
	cn_json_arena_end();
	assert_string_equal(again, heap);
	assert_int_equal(cn_json_arena_held(), held);

	cn_json_arena_begin(); /* a string longer than a block */
	char *big = malloc(3u << 20);
	assert_non_null(big);
	memset(big, 'x', (3u << 20) - 1);
	big[(3u << 20) - 1] = '\0';
	json_t *s = json_string(big);
	assert_non_null(s);
	assert_int_equal(json_string_length(s), (3u << 20) - 1);
	json_decref(s);
	cn_json_arena_end();
	assert_true(cn_json_arena_held() >= held);
	assert_true(cn_json_arena_held() <= ((size_t)1 << 20)); /* what is kept between stretches is capped */

	json_t *after = json_pack("{s:s}", "k", "outside again"); /* after the stretch: the heap's */
	char *t = json_dumps(after, 0);
	assert_string_equal(t, "{\"k\": \"outside again\"}");
	free(t);
	json_decref(after);

	cn_json_arena_release();
	assert_int_equal(cn_json_arena_held(), 0);
	free(big);
	free(heap);
	free(copy);
	free(again);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_bytes_and_reuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
