/* HMAC-SHA256 (RFC 2104) through OpenSSL's libcrypto: the signature canaryd puts on every webhook body
 * (X-Canary-Signature: sha256=HEX), and what a receiver recomputes to check it. */
#ifndef CANARY_HMAC_H
#define CANARY_HMAC_H

#include <stddef.h>

#include "canary/sha256.h"

/* HMAC-SHA256 of data under key, as 64 lowercase hex digits and a NUL in hex; returns hex. Like cn_sha256_hex, a
 * libcrypto failure aborts with a message rather than return a digest that is not one. */
char *cn_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t len, char hex[CN_SHA256_HEX_LEN]);

/* Compares two NUL-terminated strings in time that depends only on their lengths (signatures). 1 if equal. */
int cn_consttime_equal(const char *a, const char *b);

#endif
