/* The load generator's pure randomness: a seeded random source, log-normal lengths given a median and a p99, and
 * the open-loop arrival schedule (Poisson at a rate, multiplied during bursts). */
#include <math.h>

#include "canary/bug.h"
#include "canary/load.h"

#define Z99 2.3263478740408408  /* the standard normal's 99th percentile */

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void cn_rng_seed(struct cn_rng *rng, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		rng->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

double cn_rng_uniform(struct cn_rng *rng)
{
	uint64_t *s = rng->s;
	uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return (double)(r >> 11) * 0x1.0p-53;
}

double cn_rng_normal(struct cn_rng *rng)
{
	/* Box-Muller; 1 - u keeps the log's argument in (0, 1] */
	double u1 = 1.0 - cn_rng_uniform(rng), u2 = cn_rng_uniform(rng);
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static double sigma_of(double median, double p99)
{
	return p99 > median ? log(p99 / median) / Z99 : 0.0;
}

double cn_rng_lognormal_p99(struct cn_rng *rng, double median, double p99)
{
	return median * exp(sigma_of(median, p99) * cn_rng_normal(rng));
}

/* The standard normal's quantile (Acklam's rational approximation, relative error below 1.2e-9). */
static double normal_quantile(double p)
{
	static const double a[] = { -3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
				    1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00 };
	static const double b[] = { -5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
				    6.680131188771972e+01, -1.328068155288572e+01 };
	static const double c[] = { -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
				    -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00 };
	static const double d[] = { 7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
				    3.754408661907416e+00 };
	double q, r;
	if (p < 0.02425) {
		q = sqrt(-2 * log(p));
		return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
		       ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
	}
	if (p > 1 - 0.02425) {
		q = sqrt(-2 * log(1 - p));
		return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
		       ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
	}
	q = p - 0.5;
	r = q * q;
	return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
	       (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

double cn_lognormal_quantile(double median, double p99, double q)
{
	return median * exp(sigma_of(median, p99) * normal_quantile(q));
}

void cn_sched_init(struct cn_sched *s, double rate, const struct cn_bursts *bursts, uint64_t seed)
{
	CN_BUG_ON(!(rate > 0));
	s->rate = rate;
	s->factor = 1;
	s->period = 0;
	s->length = 0;
	if (bursts && bursts->length_ms > 0 && bursts->period_ms > bursts->length_ms && bursts->factor >= 1) {
		s->factor = bursts->factor;
		s->period = (double)bursts->period_ms / 1000.0;
		s->length = (double)bursts->length_ms / 1000.0;
	}
	s->t = 0;
	cn_rng_seed(&s->rng, seed);
}

double cn_sched_rate_at(const struct cn_sched *s, double t)
{
	if (s->length <= 0)
		return s->rate;
	return fmod(t, s->period) < s->length ? s->rate * s->factor : s->rate;
}

/* The end of the constant-rate piece that holds t. */
static double piece_end(const struct cn_sched *s, double t)
{
	if (s->length <= 0)
		return INFINITY;
	double base = floor(t / s->period) * s->period, in = t - base;
	double end = in < s->length ? base + s->length : base + s->period;
	return end > t ? end : nextafter(t, INFINITY);
}

double cn_sched_next(struct cn_sched *s)
{
	/* an exponential amount of "intensity" to spend, walked through the constant-rate pieces */
	double need = -log(1.0 - cn_rng_uniform(&s->rng)), t = s->t;
	for (;;) {
		double r = cn_sched_rate_at(s, t), end = piece_end(s, t);
		if (need <= r * (end - t)) {
			t += need / r;
			break;
		}
		need -= r * (end - t);
		t = end;
	}
	if (!(t > s->t))
		t = nextafter(s->t, INFINITY);
	s->t = t;
	return t;
}
