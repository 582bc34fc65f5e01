/* Anytime-valid bounds on a rate, for the threshold judge: a bound that holds at every tick at once, so that looking
 * at it every tick does not inflate false alarms the way a 95% interval looked at 60 times does.
 *
 * The construction is a mixture of Poisson likelihood ratios. For x events in n trials (cumulative) and a rate rho,
 *   M(rho) = mean over c of exp(x ln c - n rho (c - 1))
 * is, for every fixed c and a true rate rho, a nonnegative martingale (for binomial counts a supermartingale, since
 * (1 + rho (c - 1))^n <= exp(n rho (c - 1)) for every c >= 0), and so is the mean over a grid of c. By Ville's
 * inequality it ever reaches 1/alpha with probability <= alpha. With c > 1 it is evidence that the rate is above
 * rho, with c < 1 that it is below, and both are monotone in rho, so the set of rates not rejected is an interval
 * that contains the true rate at every tick with probability >= 1 - alpha: a confidence sequence.
 *
 * Bursty events (one client retrying, one slow node) break independence. As in the sequential judge (seqtest.c),
 * every log-likelihood ratio is divided by a dispersion index d >= 1, which keeps the bound for independent events
 * (power-mean inequality) and widens it when the counts vary more from tick to tick than independence allows.
 *
 * Grids: c > 1 from 1.25 to 10 (a rate above a limit is found whether it is 25% or 10x above it; each point costs
 * ln(6) of evidence); c < 1 down to 0.5, with a point at 0.95 so that the upper bound on a large baseline can come
 * within about 2.6% of its estimate (at c the bound is at least ln(1/c) / (1 - c) times the estimate).
 * Pure arithmetic: no I/O, no allocation. */
#include "canary/judge.h"

#include <math.h>
#include <stdbool.h>

static const double grid_up[] = { 1.25, 1.5, 2, 3, 5, 10 };
static const double grid_down[] = { 0.5, 0.67, 0.8, 0.9, 0.95 };
/* their logarithms, ln c (the mixture is evaluated some 100 times a tick per SLO: no log of a constant there) */
static const double ln_up[] = { 0.22314355131420976, 0.4054651081081644, 0.6931471805599453, 1.0986122886681098,
				 1.6094379124341003, 2.302585092994046 };
static const double ln_down[] = { -0.6931471805599453, -0.40047756659712525, -0.2231435513142097,
				   -0.10536051565782628, -0.05129329438755058 };
#define NUP (int)(sizeof grid_up / sizeof grid_up[0])
#define NDOWN (int)(sizeof grid_down / sizeof grid_down[0])

/* ln of the mean over the grid of exp((x ln c - n rho (c - 1)) / d) */
static double mixture(const double *grid, int k, double x, double n, double rho, double d)
{
	const double *ln = grid == grid_up ? ln_up : ln_down;
	double v[8], m = -INFINITY, sum = 0;
	for (int i = 0; i < k; i++) {
		v[i] = (x * ln[i] - n * rho * (grid[i] - 1)) / d;
		if (v[i] > m)
			m = v[i];
	}
	for (int i = 0; i < k; i++)
		sum += exp(v[i] - m);
	return m + log(sum / k);
}

static bool counts_ok(double x, double n, double d)
{
	return n > 0 && x >= 0 && isfinite(x) && isfinite(n) && d >= 1 && isfinite(d);
}

double cn_rate_evidence_above(double x, double n, double rho, double d)
{
	if (!counts_ok(x, n, d) || !(rho > 0) || !isfinite(rho))
		return NAN;
	return mixture(grid_up, NUP, x, n, rho, d);
}

double cn_rate_evidence_below(double x, double n, double rho, double d)
{
	if (!counts_ok(x, n, d) || !(rho > 0) || !isfinite(rho))
		return NAN;
	return mixture(grid_down, NDOWN, x, n, rho, d);
}

/* One equation of the bounds: the mixture over `grid` with either the rate (solve_rate) or the count (solve_count)
 * left free, against the boundary b. */
struct solve {
	const double *grid;
	int k;
	double x, n, rho, d, b;
	bool for_count; /* the free variable is x, else rho */
};

static bool rejects(const struct solve *s, double v)
{
	return s->for_count ? mixture(s->grid, s->k, v, s->n, s->rho, s->d) >= s->b :
			      mixture(s->grid, s->k, s->x, s->n, v, s->d) >= s->b;
}

/* Bisects [lo, hi] (at most 60 halvings, down to a relative width eps) for where `rejects` changes, which it does
 * once: rejecting below the boundary (low_rejects) or above it. Returns the end that still rejects. */
static double bisect(const struct solve *s, double lo, double hi, bool low_rejects, double eps)
{
	for (int i = 0; i < 60 && hi - lo > eps * hi; i++) {
		double mid = (lo + hi) / 2;
		if (rejects(s, mid) == low_rejects)
			lo = mid;
		else
			hi = mid;
	}
	return low_rejects ? lo : hi;
}

double cn_rate_lower(double x, double n, double alpha, double d)
{
	if (!counts_ok(x, n, d) || !(alpha > 0 && alpha < 1))
		return NAN;
	if (x == 0)
		return 0;
	/* evidence_above falls as rho grows: the bound is where it meets ln(1/alpha) */
	struct solve s = { .grid = grid_up, .k = NUP, .x = x, .n = n, .d = d, .b = log(1 / alpha) };
	double hi = x / n;
	if (!rejects(&s, hi * 1e-9))
		return 0;
	if (rejects(&s, hi))
		return hi; /* cannot happen (at the estimate every term is <= 0), kept for rounding */
	return bisect(&s, 0, hi, true, 1e-9);
}

double cn_rate_upper(double x, double n, double alpha, double d)
{
	if (!counts_ok(x, n, d) || !(alpha > 0 && alpha < 1))
		return NAN;
	/* evidence_below grows with rho; at c = 0.5 it reaches ln(1/alpha) + ln(NDOWN) by the bracket's top */
	struct solve s = { .grid = grid_down, .k = NDOWN, .x = x, .n = n, .d = d, .b = log(1 / alpha) };
	double lo = x / n, hi = 2 * (x * log(2) + d * (s.b + log(NDOWN))) / n + lo;
	return bisect(&s, lo, hi, false, 1e-9);
}

double cn_rate_count_below(double n, double p, double alpha, double d)
{
	if (!counts_ok(0, n, d) || !(p > 0 && p < 1) || !(alpha > 0 && alpha < 1))
		return NAN;
	/* evidence_below(x, n, p) falls as x grows */
	struct solve s = { .grid = grid_down, .k = NDOWN, .n = n, .rho = p, .d = d, .b = log(1 / alpha),
			   .for_count = true };
	if (!rejects(&s, 0))
		return -1;
	return bisect(&s, 0, n * p, true, 1e-7 / (n * p));
}
