/* Timing histograms (log buckets of 4%, so quantiles are within 4% at any scale) and the prompt-length bands. */
#include <math.h>
#include <string.h>

#include "canary/load.h"

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
