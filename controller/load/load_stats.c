/* Timing histograms (log buckets of 4%, so quantiles are within 4% at any scale) and the prompt-length bands. */
#include <math.h>
#include <string.h>

#include "canary/load.h"
#include "canary/preflight.h"

#define LH_MIN 1e-6
#define LH_GROWTH 1.04

void cn_lhist_add(struct cn_lhist *h, double s)
{
	int i = 0;
	if (s > LH_MIN)
		i = (int)ceil(log(s / LH_MIN) / log(LH_GROWTH));
	if (i < 0)
		i = 0;
	if (i >= CN_LHIST_BUCKETS)
		i = CN_LHIST_BUCKETS - 1;
	h->count[i]++;
	h->n++;
	h->sum += s;
	if (s > h->max)
		h->max = s;
}

double cn_lhist_quantile(const struct cn_lhist *h, double q)
{
	if (h->n == 0)
		return NAN;
	uint64_t want = (uint64_t)ceil(q * (double)h->n), seen = 0;
	if (want < 1)
		want = 1;
	for (int i = 0; i < CN_LHIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= want) {
			double up = LH_MIN * pow(LH_GROWTH, i);
			return up < h->max ? up : h->max;
		}
	}
	return h->max;
}

const char *cn_band_name(enum cn_band b)
{
	switch (b) {
	case CN_BAND_SHORT: return "short";
	case CN_BAND_MEDIAN: return "median";
	case CN_BAND_LONG: return "long tail";
	default: return "?";
	}
}

void cn_load_bands(struct cn_load_result *r, double median, double p90)
{
	r->bands[CN_BAND_SHORT].lo = 0;
	r->bands[CN_BAND_SHORT].hi = median;
	r->bands[CN_BAND_MEDIAN].lo = median;
	r->bands[CN_BAND_MEDIAN].hi = p90 > median ? p90 : median;
	r->bands[CN_BAND_LONG].lo = r->bands[CN_BAND_MEDIAN].hi;
	r->bands[CN_BAND_LONG].hi = INFINITY;
}

/* The upper bound of bucket i, seconds. */
static double lh_upper(int i)
{
	return LH_MIN * pow(LH_GROWTH, i);
}

static void to_cumulative(const struct cn_lhist *h, const int *last_idx, int nb, struct cn_histogram *out)
{
	memset(out, 0, sizeof *out);
	if (!h || h->n == 0)
		return;
	uint64_t seen = 0;
	int j = 0;
	for (int i = 0; i < CN_LHIST_BUCKETS && j < nb; i++) {
		seen += h->count[i];
		if (i == last_idx[j]) {
			out->le[j] = j == nb - 1 ? INFINITY : lh_upper(i);
			out->count[j] = (double)seen;
			j++;
		}
	}
	out->count[nb - 1] = (double)h->n;
	out->le[nb - 1] = INFINITY;
	out->nbuckets = nb;
	out->sum = NAN;
}

void cn_lhist_to_histograms(const struct cn_lhist *a, const struct cn_lhist *b, struct cn_histogram *outa,
			    struct cn_histogram *outb)
{
	int lo = CN_LHIST_BUCKETS, hi = -1;
	for (int k = 0; k < 2; k++) {
		const struct cn_lhist *h = k ? b : a;
		for (int i = 0; h && i < CN_LHIST_BUCKETS; i++)
			if (h->count[i]) {
				lo = i < lo ? i : lo;
				hi = i > hi ? i : hi;
			}
	}
	int last[CN_MAX_BUCKETS], nb = 0;
	if (hi >= 0) {
		/* an empty bucket below the first value, so interpolation in the first bucket starts where values do */
		if (lo > 0)
			last[nb++] = lo - 1;
		int span = hi - lo + 1, room = CN_MAX_BUCKETS - 1 - nb; /* the last one is +Inf */
		int step = (span + room - 1) / room;
		for (int i = lo; nb < CN_MAX_BUCKETS - 1; i += step) {
			int e = i + step - 1 < hi ? i + step - 1 : hi;
			last[nb++] = e;
			if (e == hi)
				break;
		}
		last[nb++] = CN_LHIST_BUCKETS; /* +Inf: never matched, filled from n */
	}
	if (outa)
		to_cumulative(a, last, nb, outa);
	if (outb)
		to_cumulative(b, last, nb, outb);
}
