/* Benchmark: simulates thousands of rollouts and compares the sequential judge (controller/core/seqtest.c, the very
 * code cn_tick runs) with three classic rules on the same simulated traffic: a naive test at every tick, a
 * Flagger-style rule and a Kayenta-style rule. Prints, per scenario and traffic level, the A/A false-rollback rate
 * with a 95% confidence interval or the p10/p50/p90 detection time, next to the Wald limit T = ln(1/alpha)/I.
 *
 * The model: 10-second ticks for one hour; Poisson requests at a total rate that swings +-50% (sine, period 30
 * minutes, random phase); the candidate gets a fixed share (1% or 5%), the baseline (rest of the fleet) the rest;
 * bad events (errors, or requests over a latency threshold) are Poisson thinning of the requests, or, when bursty,
 * Poisson bursts of geometric size (mean 3 or 10) with the same mean rate. All judges see bad-event counts only.
 * Seeded: the same arguments print the same table.
 * Usage: bench_judge_sim [ROLLOUTS_PER_CELL [SEED [SLOS]]]   (default 2000, 1, 2: the sequential judge's alpha is
 * the budget split over SLOS, as in the default policy with its two SLOs) */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canary/judge.h"

#define TICK_S 10.0
#define HORIZON_TICKS 360        /* one hour */
#define SWING_PERIOD_S 1800.0
#define BUDGET 0.01              /* analysis.false_rollback_budget */
#define TOLERANCE 1.5            /* Flagger-style relative limit (the default policy's max_increase) */
#define FLAGGER_EVERY 6          /* ticks: one check a minute */
#define FLAGGER_FAILS 5
#define KAYENTA_EVERY 60         /* ticks: one judgement every 10 minutes ... */
#define KAYENTA_POINTS 10        /* ... on ten 1-minute rates per arm */
#define KAYENTA_Z 2.326          /* one-sided 1% */
#define NAIVE_Z 2.326            /* one-sided 1% at every tick */

static int nslos = 2; /* the sequential test of one SLO gets BUDGET / nslos */

enum judge { J_SEQ, J_SEQ_NODISP, J_NAIVE, J_FLAGGER, J_KAYENTA, NJUDGES };
static const char *const judge_names[NJUDGES] = { "sequential", "seq, no dispersion", "naive every tick",
						  "flagger-style", "kayenta-style" };

struct scenario {
	const char *name;
	double p_base, p_cand; /* bad-event fraction of requests */
	double burst;          /* mean burst size; 1 = independent events */
	bool latency;          /* bad = over the latency threshold (1% of the baseline's requests) */
};

static const struct scenario scenarios[] = {
	{ "A/A errors 0.5%", 0.005, 0.005, 1, false },
	{ "errors x2 (0.5% -> 1%)", 0.005, 0.01, 1, false },
	{ "latency tail (1% -> 2.5% over L)", 0.01, 0.025, 1, true },
	{ "A/A bursty errors, mean burst 3", 0.005, 0.005, 3, false },
	{ "A/A bursty errors, mean burst 10", 0.005, 0.005, 10, false },
	{ "errors x2, bursts of mean 3", 0.005, 0.01, 3, false },
	{ "errors x2, bursts of mean 10", 0.005, 0.01, 10, false },
};
#define NSCEN (int)(sizeof scenarios / sizeof scenarios[0])

static const double shares[] = { 0.01, 0.05 };
static const double rates[] = { 100, 1000, 10000 };

/* ---- random numbers: xoshiro256** seeded by splitmix64 ---- */
struct rng {
	uint64_t s[4];
};

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t next_u64(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

/* uniform in (0, 1) */
static double uniform(struct rng *r)
{
	return ((double)(next_u64(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Poisson: multiplication for small means, PTRS (Hoermann 1993, as numpy) for the rest. */
static double poisson(struct rng *r, double lam)
{
	if (!(lam > 0))
		return 0;
	if (lam < 10) {
		double l = exp(-lam), p = 1;
		int k = 0;
		do {
			k++;
			p *= uniform(r);
		} while (p > l);
		return k - 1;
	}
	double slam = sqrt(lam), loglam = log(lam);
	double b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
	double invalpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2);
	for (;;) {
		double u = uniform(r) - 0.5, v = uniform(r), us = 0.5 - fabs(u);
		double k = floor((2 * a / us + b) * u + lam + 0.43);
		if (us >= 0.07 && v <= vr)
			return k;
		if (k < 0 || (us < 0.013 && v > us))
			continue;
		if (log(v) + log(invalpha) - log(a / (us * us) + b) <= -lam + k * loglam - lgamma(k + 1))
			return k;
	}
}

/* Bad events among n requests at fraction p, in bursts of mean size `burst` (1 + geometric). */
static double bad_events(struct rng *r, double n, double p, double burst)
{
	if (burst <= 1)
		return poisson(r, n * p);
	double k = poisson(r, n * p / burst), total = k;
	if (k > 64) /* sum of k geometric extras: normal with the same mean and variance */
		return fmax(k, floor(k + k * (burst - 1) + sqrt(k * (burst - 1) * burst) *
						     sqrt(-2 * log(uniform(r))) * cos(2 * M_PI * uniform(r)) + 0.5));
	double lq = log(1 - 1 / burst);
	for (int i = 0; i < (int)k; i++)
		total += floor(log(uniform(r)) / lq);
	return total;
}

/* ---- the classic judges ---- */

/* One-sided z of the candidate's rate above the baseline's (two proportions, pooled). */
static double z_two_prop(double xc, double nc, double xb, double nb)
{
	if (!(nc > 0) || !(nb > 0))
		return 0;
	double p = (xc + xb) / (nc + nb);
	if (!(p > 0))
		return 0;
	double se = sqrt(p * (1 - p) * (1 / nc + 1 / nb));
	return (xc / nc - xb / nb) / se;
}

/* Mann-Whitney U of a (candidate) against b (baseline), normal approximation with tie correction: the z of
 * "candidate values tend to be larger". */
static double mann_whitney_z(const double *a, const double *b, int n)
{
	double all[2 * KAYENTA_POINTS], ranks[2 * KAYENTA_POINTS];
	int m = 2 * n;
	for (int i = 0; i < n; i++) {
		all[i] = a[i];
		all[n + i] = b[i];
	}
	double tie = 0;
	for (int i = 0; i < m; i++) {
		int less = 0, eq = 0;
		for (int j = 0; j < m; j++) {
			less += all[j] < all[i];
			eq += all[j] == all[i];
		}
		ranks[i] = less + (eq + 1) / 2.0;
		tie += (double)eq * eq - 1; /* sum over elements of (t^2 - 1); per group this is t(t^2 - 1) */
	}
	double ra = 0;
	for (int i = 0; i < n; i++)
		ra += ranks[i];
	double u = ra - n * (n + 1) / 2.0, mu = n * n / 2.0;
	double var = n * n / 12.0 * ((m + 1) - tie / (m * (m - 1.0)));
	return var > 0 ? (u - mu) / sqrt(var) : 0;
}

/* ---- one rollout ---- */

struct outcome {
	double at_s[NJUDGES]; /* rollback time, or NAN when the judge never rolled back within the horizon */
};

static void run_rollout(const struct scenario *sc, double share, double rate, struct rng *r, struct outcome *o)
{
	double alpha = BUDGET / nslos, boundary = log(1 / alpha);
	double phase = 2 * M_PI * uniform(r);
	struct cn_seq_stat seq;
	cn_seq_init(&seq, TOLERANCE);
	double cxc = 0, cnc = 0, cxb = 0, cnb = 0;           /* naive: cumulative */
	double fxc = 0, fnc = 0, fxb = 0, fnb = 0;           /* flagger: the current minute */
	int ffails = 0;
	double kc[KAYENTA_POINTS], kb[KAYENTA_POINTS];       /* kayenta: 1-minute rates of the current window */
	double mxc = 0, mnc = 0, mxb = 0, mnb = 0;
	int kpoints = 0;
	int pending = NJUDGES;

	for (int j = 0; j < NJUDGES; j++)
		o->at_s[j] = NAN;
	for (int k = 1; k <= HORIZON_TICKS && pending > 0; k++) {
		double t = k * TICK_S;
		double lam = rate * TICK_S * (1 + 0.5 * sin(2 * M_PI * t / SWING_PERIOD_S + phase));
		double nc = poisson(r, lam * share), nb = poisson(r, lam * (1 - share));
		double xc = bad_events(r, nc, sc->p_cand, sc->burst), xb = bad_events(r, nb, sc->p_base, sc->burst);

		if (nc > 0 && nb > 0) {
			cn_seq_add(&seq, nc / (nc + nb), xc, xb);
			cn_seq_add_dispersion(&seq, xb, nb);
			cn_seq_add_dispersion_cand(&seq, xc, nc);
		}
		if (isnan(o->at_s[J_SEQ]) && cn_seq_ready(&seq) &&
		    cn_seq_statistic(&seq, cn_seq_dispersion(&seq)) >= boundary) {
			o->at_s[J_SEQ] = t;
			pending--;
		}
		if (isnan(o->at_s[J_SEQ_NODISP]) && cn_seq_statistic(&seq, 1) >= boundary) {
			o->at_s[J_SEQ_NODISP] = t;
			pending--;
		}

		cxc += xc, cnc += nc, cxb += xb, cnb += nb;
		if (isnan(o->at_s[J_NAIVE]) && z_two_prop(cxc, cnc, cxb, cnb) > NAIVE_Z) {
			o->at_s[J_NAIVE] = t;
			pending--;
		}

		fxc += xc, fnc += nc, fxb += xb, fnb += nb;
		if (k % FLAGGER_EVERY == 0) {
			double rc = fnc > 0 ? fxc / fnc : 0, rb = fnb > 0 ? fxb / fnb : 0;
			if (rc > rb * TOLERANCE)
				ffails++;
			if (isnan(o->at_s[J_FLAGGER]) && ffails >= FLAGGER_FAILS) {
				o->at_s[J_FLAGGER] = t;
				pending--;
			}
			fxc = fnc = fxb = fnb = 0;
		}

		mxc += xc, mnc += nc, mxb += xb, mnb += nb;
		if (k % (KAYENTA_EVERY / KAYENTA_POINTS) == 0) {
			kc[kpoints] = mnc > 0 ? mxc / mnc : 0;
			kb[kpoints] = mnb > 0 ? mxb / mnb : 0;
			kpoints++;
			mxc = mnc = mxb = mnb = 0;
		}
		if (k % KAYENTA_EVERY == 0) {
			if (isnan(o->at_s[J_KAYENTA]) && mann_whitney_z(kc, kb, KAYENTA_POINTS) > KAYENTA_Z) {
				o->at_s[J_KAYENTA] = t;
				pending--;
			}
			kpoints = 0;
		}
	}
}

/* ---- statistics ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Wilson 95% interval of k successes in n. */
static void wilson(double k, double n, double *lo, double *hi)
{
	double z = 1.96, p = k / n, d = 1 + z * z / n;
	double c = (p + z * z / (2 * n)) / d, h = z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d;
	*lo = fmax(0, c - h);
	*hi = fmin(1, c + h);
}

/* Information per second about r in the conditional-binomial test: (total bad events per second) times the
 * Kullback-Leibler divergence of Bernoulli(pi(r)) from Bernoulli(pi). Bursts divide it by 2b - 1, the dispersion
 * index of bursts of geometric size with mean b. */
static double info_per_s(const struct scenario *sc, double share, double rate)
{
	double mc = rate * share * sc->p_cand, mb = rate * (1 - share) * sc->p_base;
	double q = mc / (mc + mb), p = share; /* the null share of bad events is the request share */
	double kl = q * log(q / p) + (1 - q) * log((1 - q) / (1 - p));
	return (mc + mb) * kl / (sc->burst > 1 ? 2 * sc->burst - 1 : 1);
}

static const char *fmt_t(double s, char *buf, size_t n)
{
	if (isnan(s))
		snprintf(buf, n, ">60m");
	else if (s < 60)
		snprintf(buf, n, "%.0fs", s);
	else
		snprintf(buf, n, "%.1fm", s / 60);
	return buf;
}

static double quantile_censored(const double *sorted, int n, double q)
{
	int i = (int)ceil(q * n) - 1;
	if (i < 0)
		i = 0;
	return sorted[i]; /* NAN sorts last via the comparator below */
}

static int cmp_nan_last(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	if (isnan(x) || isnan(y))
		return isnan(x) - isnan(y);
	return cmp_double(a, b);
}

int main(int argc, char **argv)
{
	long n = 2000, seed = 1;
	for (int i = 1; i < argc && i < 4; i++) {
		char *end;
		errno = 0;
		long v = strtol(argv[i], &end, 10);
		if (errno || *end || v < (i == 2 ? 0 : i == 1 ? 10 : 1) || v > (i == 3 ? CN_MAX_SLOS : 10000000)) {
			fprintf(stderr, "bench_judge_sim: '%s' is not a valid %s; usage: bench_judge_sim [ROLLOUTS [SEED "
				"[SLOS]]]\n", argv[i], i == 1 ? "number of rollouts (>= 10)" : i == 2 ? "seed" :
				"number of slos (1..16)");
			return 64;
		}
		if (i == 1)
			n = v;
		else if (i == 2)
			seed = v;
		else
			nslos = (int)v;
	}
	double *at = malloc(sizeof(double) * (size_t)n * NJUDGES);
	if (!at) {
		fprintf(stderr, "bench_judge_sim: out of memory for %ld rollouts\n", n);
		return 70;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	double alpha = BUDGET / nslos;
	int goals_failed = 0;

	printf("judge simulation: %ld rollouts per cell, seed %ld, 10s ticks, 1h horizon, traffic +-50%% (30m sine)\n",
	       n, seed);
	printf("sequential: alpha %.3g per SLO (budget %g%% over %d SLOs), ratios %g..%g, dispersion-scaled; "
	       "naive: z-test every tick at 1%%;\nflagger-style: a check a minute (candidate's 1m rate > %gx baseline's), "
	       "rollback after %d failed checks; kayenta-style: Mann-Whitney of ten 1m rates every 10m at 1%%\n\n",
	       alpha, BUDGET * 100, nslos, CN_SEQ_ROLLBACK_MIN, CN_SEQ_ROLLBACK_MAX, TOLERANCE, FLAGGER_FAILS);
	printf("%-34s %5s %6s  %-19s %-26s %9s\n", "scenario", "share", "rps", "judge",
	       "A/A false rollback [95% CI] | detected p10/p50/p90", "wald T");

	for (int si = 0; si < NSCEN; si++) {
		const struct scenario *sc = &scenarios[si];
		bool aa = sc->p_cand == sc->p_base;
		for (size_t hi = 0; hi < sizeof shares / sizeof shares[0]; hi++) {
			for (size_t ri = 0; ri < sizeof rates / sizeof rates[0]; ri++) {
				double share = shares[hi], rate = rates[ri];
				for (long i = 0; i < n; i++) {
					struct rng r;
					struct outcome o;
					rng_seed(&r, (uint64_t)seed * 1000003u + (uint64_t)si * 7919u * 1000u +
							     (uint64_t)(hi * 3 + ri) * 104729u + (uint64_t)i * 2654435761u);
					run_rollout(sc, share, rate, &r, &o);
					for (int j = 0; j < NJUDGES; j++)
						at[(size_t)j * (size_t)n + (size_t)i] = o.at_s[j];
				}
				double wald = aa ? NAN : log(1 / alpha) / info_per_s(sc, share, rate);
				for (int j = 0; j < NJUDGES; j++) {
					double *a = &at[(size_t)j * (size_t)n];
					char res[64], w[32], b1[16], b2[16], b3[16];
					w[0] = '\0';
					if (j == J_SEQ_NODISP && sc->burst <= 1)
						continue; /* the same as the sequential judge without bursts */
					if (aa) {
						double k = 0, lo, hiw;
						for (long i = 0; i < n; i++)
							k += !isnan(a[i]);
						wilson(k, (double)n, &lo, &hiw);
						snprintf(res, sizeof res, "%6.2f%% [%.2f, %.2f]", 100 * k / (double)n, 100 * lo,
							 100 * hiw);
						if (j == J_SEQ && k / (double)n > BUDGET) {
							goals_failed++;
							strncat(res, " GOAL!", sizeof res - strlen(res) - 1);
						}
					} else {
						qsort(a, (size_t)n, sizeof a[0], cmp_nan_last);
						double p50 = quantile_censored(a, (int)n, 0.5);
						snprintf(res, sizeof res, "%s / %s / %s",
							 fmt_t(quantile_censored(a, (int)n, 0.1), b1, sizeof b1),
							 fmt_t(p50, b2, sizeof b2),
							 fmt_t(quantile_censored(a, (int)n, 0.9), b3, sizeof b3));
						if (j == J_SEQ) {
							snprintf(w, sizeof w, "%s (x%.2f)", fmt_t(wald, b1, sizeof b1),
								 isnan(p50) ? INFINITY : p50 / wald);
							bool goal_err = si == 1 && share == 0.01 && rate == 1000;
							bool goal_lat = sc->latency;
							if ((goal_err && !(p50 <= 300 && p50 <= 1.5 * wald)) ||
							    (goal_lat && share == 0.01 && rate == 1000 && !(p50 <= 120))) {
								goals_failed++;
								strncat(res, " GOAL!", sizeof res - strlen(res) - 1);
							}
						}
					}
					printf("%-34s %4.0f%% %6.0f  %-19s %-26s %9s\n",
					       hi == 0 && ri == 0 && j == 0 ? sc->name : "", share * 100, rate,
					       judge_names[j], res, w);
				}
			}
		}
		printf("\n");
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("goals (sequential judge): A/A false rollback <= 1%% everywhere; errors x2 at 1%% of 1000 rps: median <= "
	       "5m and <= 1.5x wald; latency tail at 1%% of 1000 rps: median <= 2m: %s\n",
	       goals_failed ? "NOT MET (see GOAL!)" : "met");
	printf("%.1f s\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	free(at);
	return 0;
}
