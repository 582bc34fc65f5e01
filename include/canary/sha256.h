/* SHA-256 (FIPS 180-4): content hashes of migration files and of applied policy and service sources. */
#ifndef CANARY_SHA256_H
#define CANARY_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define CN_SHA256_LEN 32
#define CN_SHA256_HEX_LEN 65 /* 64 hex digits and the NUL */

struct cn_sha256 {
	uint32_t h[8];
	uint64_t len;      /* bytes hashed so far */
	uint8_t buf[64];
	size_t nbuf;
};

/* Starts a hash. */
void cn_sha256_init(struct cn_sha256 *c);
/* Adds len bytes. */
void cn_sha256_update(struct cn_sha256 *c, const void *data, size_t len);
/* Finishes the hash into out (32 bytes); c must be initialised again before reuse. */
void cn_sha256_final(struct cn_sha256 *c, uint8_t out[CN_SHA256_LEN]);
/* Hashes data in one go and writes 64 lowercase hex digits and a NUL into hex; returns hex. */
char *cn_sha256_hex(const void *data, size_t len, char hex[CN_SHA256_HEX_LEN]);

#endif
