/* Histogram and counter arithmetic for the judge: deltas of cumulative readings, accumulation over a step, and
 * quantiles / exceedances interpolated as Prometheus' histogram_quantile() does. */
#include "canary/judge.h"

#include <math.h>
#include <string.h>

#include "canary/bug.h"

bool cn_histogram_sane(const struct cn_histogram *h)
{
	if (!h || h->nbuckets < 2 || h->nbuckets > CN_MAX_BUCKETS)
		return false;
	if (!(isinf(h->le[h->nbuckets - 1]) && h->le[h->nbuckets - 1] > 0))
		return false;
	for (int i = 0; i < h->nbuckets; i++) {
		if (isnan(h->le[i]) || !isfinite(h->count[i]) || h->count[i] < 0)
			return false;
		if (i > 0 && (h->le[i] <= h->le[i - 1] || h->count[i] < h->count[i - 1]))
			return false;
	}
	return true;
}

bool cn_histogram_same_bounds(const struct cn_histogram *a, const struct cn_histogram *b)
{
	CN_BUG_ON(a->nbuckets < 0 || a->nbuckets > CN_MAX_BUCKETS);
	if (a->nbuckets != b->nbuckets)
		return false;
	for (int i = 0; i < a->nbuckets; i++)
		if (a->le[i] != b->le[i])
			return false;
	return true;
}

enum cn_delta cn_counter_delta(double cur, double prev, double *out)
{
	if (!isfinite(cur) || cur < 0 || !isfinite(prev)) {
		*out = NAN;
		return CN_DELTA_MISSING;
	}
	if (cur < prev) {
		*out = cur;
		return CN_DELTA_RESET;
	}
	*out = cur - prev;
	return CN_DELTA_OK;
}

static void histogram_clear(struct cn_histogram *h)
{
	h->nbuckets = 0;
	h->sum = NAN;
}

static void histogram_copy(struct cn_histogram *dst, const struct cn_histogram *src)
{
	int n = src->nbuckets;
	dst->nbuckets = n;
	memcpy(dst->le, src->le, (size_t)n * sizeof dst->le[0]);
	memcpy(dst->count, src->count, (size_t)n * sizeof dst->count[0]);
	dst->sum = src->sum;
}

enum cn_delta cn_histogram_delta(const struct cn_histogram *cur, const struct cn_histogram *prev,
				 struct cn_histogram *out)
{
	CN_BUG_ON(!out);
	if (!cn_histogram_sane(cur) || !cn_histogram_sane(prev)) {
		histogram_clear(out);
		return CN_DELTA_MISSING;
	}
	if (!cn_histogram_same_bounds(cur, prev)) {
		histogram_copy(out, cur);
		return CN_DELTA_RESET;
	}
	int n = cur->nbuckets;
	for (int i = 0; i < n; i++) {
		if (cur->count[i] < prev->count[i]) {
			histogram_copy(out, cur);
			return CN_DELTA_RESET;
		}
	}
	out->nbuckets = n;
	memcpy(out->le, cur->le, (size_t)n * sizeof out->le[0]);
	for (int i = 0; i < n; i++)
		out->count[i] = cur->count[i] - prev->count[i];
	/* a non-atomic scrape can make the difference non-monotonic by a little; Prometheus clamps the same way */
	for (int i = 1; i < n; i++)
		if (out->count[i] < out->count[i - 1])
			out->count[i] = out->count[i - 1];
	out->sum = cur->sum - prev->sum; /* NAN propagates when the sum is not exposed */
	return CN_DELTA_OK;
}

bool cn_histogram_accumulate(struct cn_histogram *acc, const struct cn_histogram *delta)
{
	if (delta->nbuckets == 0)
		return true;
	if (acc->nbuckets == 0) {
		histogram_copy(acc, delta);
		return true;
	}
	if (!cn_histogram_same_bounds(acc, delta)) {
		histogram_copy(acc, delta);
		return false;
	}
	for (int i = 0; i < acc->nbuckets; i++)
		acc->count[i] += delta->count[i];
	acc->sum += delta->sum;
	return true;
}

double cn_histogram_quantile(double q, const struct cn_histogram *h)
{
	if (isnan(q))
		return NAN;
	if (q < 0)
		return -INFINITY;
	if (q > 1)
		return INFINITY;
	if (!cn_histogram_sane(h))
		return NAN;
	int n = h->nbuckets;
	double observations = h->count[n - 1];
	if (observations == 0)
		return NAN;
	double rank = q * observations;
	int b = 0;
	while (b < n - 1 && h->count[b] < rank)
		b++;
	if (b == n - 1)
		return h->le[n - 2];
	if (b == 0 && h->le[0] <= 0)
		return h->le[0];
	double start = 0, end = h->le[b], count = h->count[b];
	if (b > 0) {
		start = h->le[b - 1];
		count -= h->count[b - 1];
		rank -= h->count[b - 1];
	}
	return start + (end - start) * (rank / count);
}

double cn_histogram_count_above(const struct cn_histogram *h, double threshold)
{
	if (isnan(threshold) || !cn_histogram_sane(h))
		return NAN;
	int n = h->nbuckets;
	double total = h->count[n - 1];
	double below;
	if (threshold >= h->le[n - 2]) {
		below = h->count[n - 2];
	} else {
		int b = 0;
		while (h->le[b] < threshold)
			b++; /* stops at n - 2 at the latest: threshold < le[n - 2] */
		double lower = b > 0 ? h->le[b - 1] : 0;
		double prevc = b > 0 ? h->count[b - 1] : 0;
		if (b == 0 && (h->le[0] <= 0 || threshold <= 0))
			below = threshold == h->le[0] ? h->count[0] : 0; /* nothing known below: err against the variant */
		else
			below = prevc + (h->count[b] - prevc) * (threshold - lower) / (h->le[b] - lower);
	}
	return total - below;
}

double cn_histogram_fraction_above(const struct cn_histogram *h, double threshold)
{
	double above = cn_histogram_count_above(h, threshold);
	if (isnan(above) || h->count[h->nbuckets - 1] == 0)
		return NAN;
	return above / h->count[h->nbuckets - 1];
}

void cn_counters_reset(struct cn_counters *c)
{
	c->requests = 0;
	c->errors = 0;
	histogram_clear(&c->latency);
	histogram_clear(&c->ttft);
	histogram_clear(&c->itl);
	memset(&c->econ, 0, sizeof c->econ);
	c->cost.per_hour = c->cost.replicas = c->cost.per_1k_tokens = NAN;
	c->nfeatures = 0;
	memset(c->features, 0, sizeof c->features);
}
