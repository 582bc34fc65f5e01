/* SHA-256 through OpenSSL's EVP interface: the well-kept implementation (and its CPU extensions) rather than one of
 * our own. The digests are the same bytes as before (tests/unit/test_store_audit_hash.c pins the audit chain's). */
#include "canary/sha256.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

#include "canary/bug.h"

static _Noreturn void fail(const char *what)
{
	fprintf(stderr, "canary: libcrypto: %s failed\n", what);
	abort();
}

void cn_sha256_init(struct cn_sha256 *c)
{
	CN_BUG_ON(!c);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx)
		fail("EVP_MD_CTX_new");
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		fail("EVP_DigestInit_ex(sha256)");
	c->ctx = ctx;
}

void cn_sha256_update(struct cn_sha256 *c, const void *data, size_t len)
{
	CN_BUG_ON(!c->ctx);            /* not started, or already finished */
	CN_BUG_ON(!data && len > 0);
	if (len > 0 && EVP_DigestUpdate(c->ctx, data, len) != 1)
		fail("EVP_DigestUpdate");
}

void cn_sha256_final(struct cn_sha256 *c, uint8_t out[CN_SHA256_LEN])
{
	unsigned n = 0;
	CN_BUG_ON(!c->ctx);
	if (EVP_DigestFinal_ex(c->ctx, out, &n) != 1 || n != CN_SHA256_LEN)
		fail("EVP_DigestFinal_ex");
	EVP_MD_CTX_free(c->ctx);
	c->ctx = NULL;
}

char *cn_sha256_hex(const void *data, size_t len, char hex[CN_SHA256_HEX_LEN])
{
	static const char digits[] = "0123456789abcdef";
	uint8_t md[CN_SHA256_LEN];
	unsigned n = 0;
	CN_BUG_ON(!data && len > 0);
	if (EVP_Digest(len > 0 ? data : "", len, md, &n, EVP_sha256(), NULL) != 1 || n != CN_SHA256_LEN)
		fail("EVP_Digest(sha256)");
	for (int i = 0; i < CN_SHA256_LEN; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[2 * CN_SHA256_LEN] = '\0';
	return hex;
}
