/* HMAC-SHA256 through libcrypto: RFC 4231's test vectors (short key, "Jefe", a key longer than the block), the
 * empty message, and the constant-time comparison a receiver uses on the signature. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "canary/hmac.h"

static void test_rfc4231(void **state)
{
	(void)state;
	char hex[CN_SHA256_HEX_LEN];
	unsigned char k1[20], k6[131];
	memset(k1, 0x0b, sizeof k1);
	memset(k6, 0xaa, sizeof k6);
	assert_string_equal(cn_hmac_sha256_hex(k1, sizeof k1, "Hi There", 8, hex),
			    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	assert_string_equal(cn_hmac_sha256_hex("Jefe", 4, "what do ya want for nothing?", 28, hex),
			    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
	assert_string_equal(cn_hmac_sha256_hex(k6, sizeof k6, m6, strlen(m6), hex),
			    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
	/* the empty body, as `openssl dgst -sha256 -hmac key` gives it */
	assert_string_equal(cn_hmac_sha256_hex("key", 3, "", 0, hex),
			    "5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0");
}

static void test_consttime_equal(void **state)
{
	(void)state;
	assert_true(cn_consttime_equal("sha256=ab", "sha256=ab"));
	assert_false(cn_consttime_equal("sha256=ab", "sha256=ac"));
	assert_false(cn_consttime_equal("sha256=ab", "sha256=a"));
	assert_true(cn_consttime_equal("", ""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4231),
		cmocka_unit_test(test_consttime_equal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
