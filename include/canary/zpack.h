/* Word packing of a plain-data struct held for a long time: runs of zero 8-byte words are counted, words that repeat
 * earlier ones are copied, the rest kept. canaryd keeps each rollout's judged state this way between ticks (31 kB in
 * memory, mostly empty histogram and SLO slots; about 1.4 kB packed). Lossless for any bytes; the packed form is
 * private to one process. */
#ifndef CANARY_ZPACK_H
#define CANARY_ZPACK_H
#include <stddef.h>
#include <stdint.h>

/* Packs n bytes at src into a new buffer (*out, *out_len; the caller frees *out). Returns 0, or -1 when out of
 * memory (*out is then NULL). */
int cn_zpack(const void *src, size_t n, unsigned char **out, size_t *out_len);

/* Unpacks what cn_zpack made of n bytes into dst (n bytes). Returns 0, or -1 when blob is not a packing of n bytes
 * (dst is then unspecified). */
int cn_zunpack(const unsigned char *blob, size_t len, void *dst, size_t n);

/* LEB128: v in 7-bit groups, low first, the high bit set on all but the last byte (at most 10). put writes at
 * out + at and returns the position after it; get reads at *at (advancing it) and returns 0, or -1 when the varint
 * runs past len or past 64 bits. */
size_t cn_varint_put(unsigned char *out, size_t at, uint64_t v);
int cn_varint_get(const unsigned char *b, size_t len, size_t *at, uint64_t *v);

/* A number as varints hold it: v - base, when that is a whole number in [0, 2^52] and base plus it gives v back, as a
 * varint of twice it (counters, and the cumulative counts of a histogram's buckets each against the one before,
 * take a byte or three); any other v (a fraction, a fall, NaN) as the byte 1 and v's 8 bytes. put writes at most
 * CN_ZNUM_MAX bytes at out + at and returns the position after them; get reads at *at (advancing it) and returns 0,
 * or -1 when the bytes are not such a number. Exact for every double. */
#define CN_ZNUM_MAX 10
size_t cn_znum_put(unsigned char *out, size_t at, double base, double v);
int cn_znum_get(const unsigned char *b, size_t len, size_t *at, double base, double *v);
#endif
