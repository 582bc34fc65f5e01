/* Zero-run packing (include/canary/zpack.h). The blob is a series of runs, each a header of two uint32 (zero words,
 * then literal words) followed by the literal words; the last word may be partial (n not a multiple of 8), and
 * reads and writes it as its n % 8 bytes. */
#include "canary/zpack.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WORD 8

/* word i of src (n bytes) as 8 bytes, zero-padded past n */
static uint64_t word_at(const unsigned char *src, size_t n, size_t i)
{
	uint64_t w = 0;
	size_t off = i * WORD, len = n - off < WORD ? n - off : WORD;
	memcpy(&w, src + off, len);
	return w;
}

/* Writes the runs of src into out (NULL: only measures them); returns the packed size. */
static size_t runs(const unsigned char *s, size_t n, unsigned char *out)
{
	size_t words = (n + WORD - 1) / WORD, i = 0, len = 0;
	while (i < words) {
		size_t z = i;
		while (z < words && word_at(s, n, z) == 0)
			z++;
		size_t l = z;
		while (l < words && word_at(s, n, l) != 0)
			l++;
		if (out) {
			uint32_t hdr[2] = {(uint32_t)(z - i), (uint32_t)(l - z)};
			memcpy(out + len, hdr, sizeof hdr);
			for (size_t k = z; k < l; k++) {
				uint64_t w = word_at(s, n, k);
				memcpy(out + len + sizeof hdr + (k - z) * WORD, &w, WORD);
			}
		}
		len += 2 * sizeof(uint32_t) + (l - z) * WORD;
		i = l;
	}
	return len;
}

int cn_zpack(const void *src, size_t n, unsigned char **out, size_t *out_len)
{
	/* measured first, so the blob is allocated once at its size (it is kept for long) */
	size_t len = runs(src, n, NULL);
	unsigned char *b = malloc(len ? len : 1);
	*out = b;
	*out_len = 0;
	if (!b)
		return -1;
	runs(src, n, b);
	*out_len = len;
	return 0;
}

int cn_zunpack(const unsigned char *blob, size_t len, void *dst, size_t n)
{
	unsigned char *d = dst;
	size_t words = (n + WORD - 1) / WORD, i = 0, at = 0;
	while (at < len) {
		uint32_t hdr[2];
		if (len - at < sizeof hdr)
			return -1;
		memcpy(hdr, blob + at, sizeof hdr);
		at += sizeof hdr;
		if (hdr[0] > words - i || hdr[1] > words - i - hdr[0] || (size_t)hdr[1] * WORD > len - at)
			return -1;
		size_t zoff = i * WORD, zlen = (size_t)hdr[0] * WORD;
		if (zoff + zlen > n)
			zlen = n - zoff;
		memset(d + zoff, 0, zlen);
		i += hdr[0];
		for (uint32_t k = 0; k < hdr[1]; k++, i++, at += WORD) {
			size_t off = i * WORD, wl = n - off < WORD ? n - off : WORD;
			uint64_t w;
			memcpy(&w, blob + at, WORD);
			if (wl < WORD && (w >> (wl * 8)) != 0)
				return -1; /* bytes past the end */
			memcpy(d + off, &w, wl);
		}
	}
	return i == words ? 0 : -1;
}
