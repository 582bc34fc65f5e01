/* Word packing (include/canary/zpack.h). The buffer is read as 8-byte words (the last one may be partial: n not a
 * multiple of 8; it is read and written as its n % 8 bytes) and written as a series of tokens, each a varint
 * header (count << 2 | kind) and then:
 *   ZERO  count zero words;
 *   LIT   count literal words, each a varint u: u & 3 == 0, a double that is a whole number (u >> 2, up to 2^52);
 *         u & 3 == 1, a word that is a small integer (u >> 2, below 2^62); u == 2, the word's 8 bytes follow;
 *   COPY  a varint distance d >= 1: count words, each equal to the word d words before it (may overlap itself).
 * A rollout's state is mostly empty slots and histograms whose le bounds and cumulative counts repeat from one
 * histogram to the next: of its 3,853 words, 564 are not zero and only 118 of those are distinct. Zero runs alone
 * packed it into 4.5 kB; with copies it takes about 1.4 kB, and canaryd holds one per rollout. Matches are found
 * through a small table of the last position of each pair of words (greedy, one candidate), so packing stays linear. */
#include "canary/zpack.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WORD 8
#define HASH_BITS 10
#define MIN_COPY 2 /* a copy token costs 2-4 bytes: worth it from two words */

enum { T_ZERO, T_LIT, T_COPY };

/* word i of src (n bytes) as 8 bytes, zero-padded past n */
static uint64_t word_at(const unsigned char *src, size_t n, size_t i)
{
	uint64_t w = 0;
	size_t off = i * WORD, len = n - off < WORD ? n - off : WORD;
	memcpy(&w, src + off, len);
	return w;
}

size_t cn_varint_put(unsigned char *out, size_t at, uint64_t v)
{
	while (v >= 0x80) {
		out[at++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	out[at++] = (unsigned char)v;
	return at;
}

int cn_varint_get(const unsigned char *b, size_t len, size_t *at, uint64_t *v)
{
	uint64_t r = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (*at >= len)
			return -1;
		unsigned char c = b[(*at)++];
		r |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -1;
}

static uint32_t pair_hash(uint64_t a, uint64_t b)
{
	uint64_t h = (a * 0x9e3779b97f4a7c15ull) ^ (b + 0x632be59bd9b4e019ull + (a << 7));
	h *= 0xff51afd7ed558ccdull;
	return (uint32_t)(h >> (64 - HASH_BITS));
}

/* Ends the literal run of *lit words begun at lit_hdr (if any): room for its widest header (5 bytes) was kept before
 * its words, which move back over what the header did not use. Returns the new length of out. */
static size_t flush_lit(unsigned char *out, size_t len, size_t lit_hdr, size_t *lit)
{
	if (*lit == 0)
		return len;
	size_t hb = cn_varint_put(out, lit_hdr, (uint64_t)*lit << 2 | T_LIT) - lit_hdr;
	memmove(out + lit_hdr + hb, out + lit_hdr + 5, len - (lit_hdr + 5));
	*lit = 0;
	return len - (5 - hb);
}

static size_t varint_len(uint64_t v)
{
	size_t n = 1;
	for (; v >= 0x80; v >>= 7)
		n++;
	return n;
}

/* A literal word at out + len, in the least of its forms (see the top); returns the new length (at most 9 more).
 * A state's counts and whole-number figures are doubles, its ids, times and sizes integers: most take 1-4 bytes. */
static size_t lit_put(unsigned char *out, size_t len, uint64_t w)
{
	uint64_t best = 2;
	size_t best_len = 1 + WORD;
	double d;
	memcpy(&d, &w, sizeof d);
	if (d >= 0 && d <= 0x1p52 && d == (double)(uint64_t)d) {
		double back = (double)(uint64_t)d;
		uint64_t u = (uint64_t)d << 2;
		if (memcmp(&back, &w, sizeof w) == 0 && varint_len(u) < best_len) {
			best = u;
			best_len = varint_len(u);
		}
	}
	if (w < (1ull << 62) && varint_len(w << 2 | 1) < best_len) {
		best = w << 2 | 1;
		best_len = varint_len(best);
	}
	len = cn_varint_put(out, len, best);
	if (best == 2) {
		memcpy(out + len, &w, WORD);
		len += WORD;
	}
	return len;
}

/* Packs into out, which has room for the worst case; returns the packed size. */
static size_t pack(const unsigned char *s, size_t n, unsigned char *out)
{
	size_t words = (n + WORD - 1) / WORD, i = 0, len = 0, lit = 0, lit_hdr = 0;
	uint32_t last[1u << HASH_BITS]; /* 1 + the last position of a pair with this hash; 0: none */

	memset(last, 0, sizeof last);
	while (i < words) {
		uint64_t w = word_at(s, n, i);
		if (w == 0) {
			size_t z = i;
			while (z < words && word_at(s, n, z) == 0)
				z++;
			len = flush_lit(out, len, lit_hdr, &lit);
			len = cn_varint_put(out, len, (uint64_t)(z - i) << 2 | T_ZERO);
			i = z;
			continue;
		}
		size_t best = 0, dist = 0;
		if (i + 1 < words) {
			uint32_t h = pair_hash(w, word_at(s, n, i + 1));
			if (last[h]) {
				size_t c = last[h] - 1, l = 0;
				while (i + l < words && word_at(s, n, c + l) == word_at(s, n, i + l))
					l++;
				best = l;
				dist = i - c;
			}
			last[h] = (uint32_t)(i + 1);
		}
		if (best >= MIN_COPY) {
			len = flush_lit(out, len, lit_hdr, &lit);
			len = cn_varint_put(out, len, (uint64_t)best << 2 | T_COPY);
			len = cn_varint_put(out, len, dist);
			for (size_t k = i + 1; k < i + best && k + 1 < words; k++) /* later matches may start inside */
				last[pair_hash(word_at(s, n, k), word_at(s, n, k + 1))] = (uint32_t)(k + 1);
			i += best;
			continue;
		}
		if (lit == 0) {
			lit_hdr = len;
			len += 5;
		}
		len = lit_put(out, len, w);
		lit++;
		i++;
	}
	len = flush_lit(out, len, lit_hdr, &lit);
	return len;
}

int cn_zpack(const void *src, size_t n, unsigned char **out, size_t *out_len)
{
	size_t words = (n + WORD - 1) / WORD;
	/* worst case: every word a literal (9 bytes and its share of a 5-byte header) or a token of at most 20 */
	unsigned char *tmp = malloc(words * 21 + 16);
	*out = NULL;
	*out_len = 0;
	if (!tmp)
		return -1;
	size_t len = pack(src, n, tmp);
	/* copied into a blob of its exact size: it is kept for long, the scratch is not */
	unsigned char *b = malloc(len ? len : 1);
	if (b)
		memcpy(b, tmp, len);
	free(tmp);
	if (!b)
		return -1;
	*out = b;
	*out_len = len;
	return 0;
}

/* Writes word w at index i of dst (n bytes); -1 when a partial last word has bytes past n. */
static int put_word(unsigned char *d, size_t n, size_t i, uint64_t w)
{
	size_t off = i * WORD, wl = n - off < WORD ? n - off : WORD;
	if (wl < WORD && (w >> (wl * 8)) != 0)
		return -1;
	memcpy(d + off, &w, wl);
	return 0;
}

int cn_zunpack(const unsigned char *blob, size_t len, void *dst, size_t n)
{
	unsigned char *d = dst;
	size_t words = (n + WORD - 1) / WORD, i = 0, at = 0;
	while (at < len) {
		uint64_t hdr, dist = 0;
		if (cn_varint_get(blob, len, &at, &hdr) < 0)
			return -1;
		uint64_t count = hdr >> 2;
		if (count == 0 || count > words - i) /* cn_zpack makes no empty token; one past a partial last word
						       * would have cleared bytes beyond n */
			return -1;
		switch (hdr & 3) {
		case T_ZERO: {
			size_t zoff = i * WORD, zlen = (size_t)count * WORD;
			if (zoff + zlen > n)
				zlen = n - zoff;
			memset(d + zoff, 0, zlen);
			i += count;
			break;
		}
		case T_LIT:
			for (uint64_t k = 0; k < count; k++, i++) {
				uint64_t u, w;
				double v;
				if (cn_varint_get(blob, len, &at, &u) < 0)
					return -1;
				if ((u & 3) == 0) {
					v = (double)(u >> 2);
					memcpy(&w, &v, sizeof w);
				} else if ((u & 3) == 1) {
					w = u >> 2;
				} else if (u == 2 && len - at >= WORD) {
					memcpy(&w, blob + at, WORD);
					at += WORD;
				} else {
					return -1;
				}
				if (put_word(d, n, i, w) < 0)
					return -1;
			}
			break;
		case T_COPY:
			if (cn_varint_get(blob, len, &at, &dist) < 0 || dist == 0 || dist > i)
				return -1;
			for (uint64_t k = 0; k < count; k++, i++)
				if (put_word(d, n, i, word_at(d, n, i - dist)) < 0)
					return -1;
			break;
		default:
			return -1;
		}
	}
	return i == words ? 0 : -1;
}

size_t cn_znum_put(unsigned char *out, size_t at, double base, double v)
{
	double d = v - base, back = base + d;
	/* back compared bit for bit: -0.0 is not 0 + 0 */
	if (d >= 0 && d <= 0x1p52 && d == (double)(uint64_t)d && memcmp(&back, &v, sizeof v) == 0)
		return cn_varint_put(out, at, (uint64_t)d << 1);
	out[at++] = 1;
	memcpy(out + at, &v, sizeof v);
	return at + sizeof v;
}

int cn_znum_get(const unsigned char *b, size_t len, size_t *at, double base, double *v)
{
	uint64_t u;
	if (cn_varint_get(b, len, at, &u) < 0)
		return -1;
	if (!(u & 1)) {
		*v = base + (double)(u >> 1);
		return 0;
	}
	if (u != 1 || len - *at < sizeof *v)
		return -1;
	memcpy(v, b + *at, sizeof *v);
	*at += sizeof *v;
	return 0;
}
