/* SHA-256 (FIPS 180-4) through OpenSSL's libcrypto: checksums of migration files, and the audit chain's hashes as
 * `audit verify` recomputes them (policy and service content hashes are computed by the database). */
#ifndef CANARY_SHA256_H
#define CANARY_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define CN_SHA256_LEN 32
#define CN_SHA256_HEX_LEN 65 /* 64 hex digits and the NUL */

/* A hash in progress; holds libcrypto's context, which cn_sha256_final frees. */
struct cn_sha256 {
	void *ctx; /* EVP_MD_CTX */
};

/* libcrypto failing to allocate or run SHA-256 is treated like running out of memory: the functions below print
 * "canary: ..." on stderr and abort rather than return a digest that is not one. */

/* Starts a hash; every started hash must be finished with cn_sha256_final. */
void cn_sha256_init(struct cn_sha256 *c);
/* Adds len bytes. */
void cn_sha256_update(struct cn_sha256 *c, const void *data, size_t len);
/* Finishes the hash into out (32 bytes) and frees the context; c must be initialised again before reuse. */
void cn_sha256_final(struct cn_sha256 *c, uint8_t out[CN_SHA256_LEN]);
/* Hashes data in one go and writes 64 lowercase hex digits and a NUL into hex; returns hex. */
char *cn_sha256_hex(const void *data, size_t len, char hex[CN_SHA256_HEX_LEN]);

#endif
