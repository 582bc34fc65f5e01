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
 * ln(6) of evidence); c < 1 down to 0.5 with a point at 0.95, so that a bound on a large baseline is within about
 * 3% of its estimate (the width at c is at least 1/c - 1 relative... ln(1/c)/(1 - c) - 1 = 2.6% at 0.95).
 * Pure arithmetic: no I/O, no allocation. */
#include "canary/judge.h"

#include <math.h>

static const double grid_up[] = { 1.25, 1.5, 2, 3, 5, 10 };
static const double grid_down[] = { 0.5, 0.67, 0.8, 0.9, 0.95 };
#define NUP (int)(sizeof grid_up / sizeof grid_up[0])
#define NDOWN (int)(sizeof grid_down / sizeof grid_down[0])

/* ln of the mean over the grid of exp((x ln c - n rho (c - 1)) / d) */
static double mixture(const double *grid, int k, double x, double n, double rho, double d)
{
	double v[8], m = -INFINITY, sum = 0;
	for (int i = 0; i < k; i++) {
		v[i] = (x * log(grid[i]) - n * rho * (grid[i] - 1)) / d;
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

double cn_rate_lower(double x, double n, double alpha, double d)
{
	if (!counts_ok(x, n, d) || !(alpha > 0 && alpha < 1))
		return NAN;
	if (x == 0)
		return 0;
	/* evidence_above falls as rho grows: the bound is where it meets ln(1/alpha); below x/n/20 no grid point
	 * can reject (c <= 10), so that is a floor */
	double b = log(1 / alpha), lo = 0, hi = x / n;
	if (!(mixture(grid_up, NUP, x, n, hi * 1e-9, d) >= b))
		return 0;
	if (mixture(grid_up, NUP, x, n, hi, d) >= b)
		return hi; /* cannot happen (at the estimate every term is <= 0), kept for rounding */
	for (int i = 0; i < 60 && hi - lo > 1e-12 * hi; i++) {
		double mid = (lo + hi) / 2;
		if (mixture(grid_up, NUP, x, n, mid, d) >= b)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

double cn_rate_upper(double x, double n, double alpha, double d)
{
	if (!counts_ok(x, n, d) || !(alpha > 0 && alpha < 1))
		return NAN;
	/* evidence_below grows with rho; at c = 0.5 it reaches ln(1/alpha) + ln(NDOWN) by rho_hi below */
	double b = log(1 / alpha);
	double lo = x / n, hi = 2 * (x * log(2) + d * (b + log(NDOWN))) / n + lo;
	for (int i = 0; i < 60 && hi - lo > 1e-12 * hi; i++) {
		double mid = (lo + hi) / 2;
		if (mixture(grid_down, NDOWN, x, n, mid, d) >= b)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

double cn_rate_count_below(double n, double p, double alpha, double d)
{
	if (!counts_ok(0, n, d) || !(p > 0 && p < 1) || !(alpha > 0 && alpha < 1))
		return NAN;
	/* evidence_below(x, n, p) falls as x grows */
	double b = log(1 / alpha), lo = 0, hi = n * p;
	if (!(mixture(grid_down, NDOWN, 0, n, p, d) >= b))
		return -1;
	for (int i = 0; i < 60 && hi - lo > 1e-9; i++) {
		double mid = (lo + hi) / 2;
		if (mixture(grid_down, NDOWN, mid, n, p, d) >= b)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}
