/* Unit: SHA-256 against the FIPS 180-4 / NIST test vectors, and piecewise hashing equal to one-shot hashing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "canary/sha256.h"

static void test_vectors(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		const char *hex;
	} cases[] = {
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
		{"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
		 "mnopqrstnopqrstu",
		 "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
	};
	char hex[CN_SHA256_HEX_LEN];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		assert_string_equal(cn_sha256_hex(cases[i].in, strlen(cases[i].in), hex), cases[i].hex);
}

static void test_million_a(void **state)
{
	(void)state;
	size_t n = 1000000;
	char *a = malloc(n);
	char hex[CN_SHA256_HEX_LEN];
	assert_non_null(a);
	memset(a, 'a', n);
	assert_string_equal(cn_sha256_hex(a, n, hex), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(a);
}

/* Any split of the input into update() calls gives the one-shot digest (block and padding boundaries). */
static void test_piecewise(void **state)
{
	(void)state;
	uint8_t data[200], one[CN_SHA256_LEN], two[CN_SHA256_LEN];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	for (size_t len = 0; len <= sizeof data; len++) {
		struct cn_sha256 c;
		cn_sha256_init(&c);
		cn_sha256_update(&c, data, len);
		cn_sha256_final(&c, one);
		for (size_t cut = 0; cut <= len; cut += 13) {
			cn_sha256_init(&c);
			cn_sha256_update(&c, data, cut);
			cn_sha256_update(&c, data + cut, len - cut);
			cn_sha256_final(&c, two);
			assert_memory_equal(one, two, sizeof one);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_million_a),
		cmocka_unit_test(test_piecewise),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
