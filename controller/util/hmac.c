/* HMAC-SHA256 through libcrypto's one-shot HMAC() (canary/hmac.h). */
#include "canary/hmac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/bug.h"

char *cn_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t len, char hex[CN_SHA256_HEX_LEN])
{
	static const char digits[] = "0123456789abcdef";
	static const unsigned char empty[1];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	CN_BUG_ON(!key && keylen > 0);
	CN_BUG_ON(!data && len > 0);
	CN_BUG_ON(keylen > INT32_MAX);
	if (!HMAC(EVP_sha256(), keylen ? key : empty, (int)keylen, len ? data : empty, len, md, &n) ||
	    n != CN_SHA256_LEN) {
		fprintf(stderr, "canary: libcrypto: HMAC(sha256) failed\n");
		abort();
	}
	for (unsigned i = 0; i < n; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[2 * n] = '\0';
	return hex;
}

int cn_consttime_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la != lb)
		return 0;
	return CRYPTO_memcmp(a, b, la) == 0;
}
