/* The judge: histogram arithmetic (deltas, quantiles as Prometheus computes them), turning one tick's cumulative
 * readings into evidence accumulated since the step began, and a per-SLO verdict with its numbers.
 * Pure functions: no I/O, no clock, no allocation. */
#ifndef CANARY_JUDGE_H
#define CANARY_JUDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canary/metrics-t.h"
#include "canary/policy-t.h"
#include "canary/rollout-t.h"

/* The smallest sample for any verdict (the threshold judge's pass, the sequential judge's absolute-max check and
 * latency threshold): min(this, min_requests). A failing threshold verdict needs all of min_requests. */
#define CN_JUDGE_MIN_SAMPLE 50

/* What a delta found. */
enum cn_delta {
	CN_DELTA_OK,      /* out = cur - prev */
	CN_DELTA_RESET,   /* the counter went down or the bucket bounds changed: out = cur (as Prometheus' rate()) */
	CN_DELTA_MISSING, /* cur is missing or unusable, or prev is missing (cur can only be a base): out is empty */
};

/* The series of one variant, as bits of struct cn_series_status. */
enum cn_series_bit {
	CN_SERIES_REQUESTS = 1u << 0,
	CN_SERIES_ERRORS = 1u << 1,
	CN_SERIES_LATENCY = 1u << 2,
	CN_SERIES_TTFT = 1u << 3,
	CN_SERIES_ITL = 1u << 4,
	CN_SERIES_GEN_TOKENS = 1u << 5,    /* generation tokens counter (unit economics) */
	CN_SERIES_PROMPT_TOKENS = 1u << 6, /* prompt tokens counter (shown only) */
	CN_SERIES_LAST = CN_SERIES_PROMPT_TOKENS,
};

/* What ingesting one variant's reading found at this tick. */
struct cn_series_status {
	unsigned missing;  /* bits: no delta this tick (series absent, unusable, or only now appeared) */
	unsigned reset;    /* bits: the counter went down (server restart); the new value was counted */
	const char *note;  /* not NULL: the whole reading was unusable, and why (points into the sample or a literal) */
};

/* True if h is a usable histogram: 2..CN_MAX_BUCKETS buckets, bounds strictly ascending ending in +Inf, counts
 * finite, >= 0 and non-decreasing. */
bool cn_histogram_sane(const struct cn_histogram *h);

/* True if a and b have the same number of buckets and the same bounds. */
bool cn_histogram_same_bounds(const struct cn_histogram *a, const struct cn_histogram *b);

/* Delta of a cumulative counter: *out = cur - prev; after a reset (cur < prev) *out = cur; NAN when missing. */
enum cn_delta cn_counter_delta(double cur, double prev, double *out);

/* Delta of two cumulative histograms into *out (out may not alias cur or prev). Different bounds or any bucket
 * going down count as a reset (out = cur). A missing or unsane cur, or a missing prev, gives CN_DELTA_MISSING and an
 * empty out (nbuckets 0). */
enum cn_delta cn_histogram_delta(const struct cn_histogram *cur, const struct cn_histogram *prev,
				 struct cn_histogram *out);

/* Adds a delta histogram to acc. An empty acc takes the delta as is. Returns false if the bounds differed, in which
 * case the old evidence cannot be merged and acc is replaced by the delta. An empty delta changes nothing. */
bool cn_histogram_accumulate(struct cn_histogram *acc, const struct cn_histogram *delta);

/* The q-quantile of the observations in h, exactly as Prometheus' histogram_quantile(): linear interpolation within
 * the bucket, lower bound 0 for the first bucket (if its upper bound is > 0), the last finite bound if the rank
 * falls in the +Inf bucket. NAN if h is empty or not sane or q is NAN; -Inf for q < 0, +Inf for q > 1. */
double cn_histogram_quantile(double q, const struct cn_histogram *h);

/* Number of observations in h above `threshold`, interpolated linearly within the bucket that holds it (first
 * bucket from 0). Observations in the +Inf bucket count as above any threshold at or beyond the last finite bound
 * (their values are unknown; this errs against the variant). NAN if h is empty or not sane or threshold is NAN. */
double cn_histogram_count_above(const struct cn_histogram *h, double threshold);

/* cn_histogram_count_above() divided by the number of observations; NAN when there are none. */
double cn_histogram_fraction_above(const struct cn_histogram *h, double threshold);

/* Clears accumulated evidence: zero requests and errors, no histograms. */
void cn_counters_reset(struct cn_counters *c);

/* analysis.min_requests, at least 1: the candidate requests a step needs to advance, and the threshold judge's
 * sample for a failing verdict (any verdict needs min(min_requests, CN_JUDGE_MIN_SAMPLE)). */
int64_t cn_judge_min_sample(const struct cn_policy *p);

/* Ingests one variant's reading. prev is the last usable reading (NULL if none), cur this tick's (NULL or
 * cur->ok == false if unusable). Adds the deltas to acc (if not NULL), writes the reading to use as the next base to
 * *base_out (per series: cur where present, else prev's), and fills *st. base_out may not alias prev or cur. */
void cn_ingest_sample(const struct cn_sample *prev, const struct cn_sample *cur, struct cn_counters *acc,
		      struct cn_sample *base_out, struct cn_series_status *st);

/* ---- anytime-valid bounds on a rate (bounds.c): they hold at every tick at once ----
 * x events in n trials (cumulative), d >= 1 the dispersion index that every log-likelihood ratio is divided by. */

/* ln of the mixture likelihood ratio "the rate is above rho" (resp. "below rho"); NAN on bad input. */
double cn_rate_evidence_above(double x, double n, double rho, double d);
double cn_rate_evidence_below(double x, double n, double rho, double d);

/* Lower / upper confidence bound on the rate, valid at every tick at once with probability >= 1 - alpha. */
double cn_rate_lower(double x, double n, double alpha, double d);
double cn_rate_upper(double x, double n, double alpha, double d);

/* The largest count x of n such that "the rate is p or more" is rejected at alpha (so a share of at least p lies
 * above the value that x of n exceed); -1 when n is too small for any, NAN on bad input. A quantile's upper bound. */
double cn_rate_count_below(double n, double p, double alpha, double d);

/* What the threshold judge needs besides the evidence. */
struct cn_judge_ctx {
	int64_t min_requests; /* cn_judge_min_sample(): a failing verdict needs this many candidate requests */
	double alpha;         /* false-alarm chance of each side's bound (the candidate's, the baseline's) */
	double disp;          /* dispersion index of bad events, >= 1 (1: independent) */
	bool warm;            /* enough ticks to estimate disp: a verdict may fail */
	/* Late onsets (optional): the step's average hides a regression that starts late in a long step. With `late`
	 * set, this tick's candidate deltas `tick` enter a rollout-long test of "bad events above the limit" (the
	 * sequential judge's restarted e-processes, one-arm against the limit), failing at alpha_late. */
	struct cn_seq_stat *late;
	const struct cn_counters *tick;
	double alpha_late;
};

/* The threshold judge. Judges one SLO on the evidence accumulated in the step (cand, base) and this tick's status
 * of each variant. The limit is min(max, max_increase x the baseline's upper bound); the candidate fails when its
 * lower bound is above it: for an error rate the bound on its rate, for a quantile q the bound on its share of
 * requests slower than the limit (fails when that share is above 1 - q). Both bounds are anytime-valid at
 * ctx->alpha. An SLO with a relative part never passes without it (inconclusive until the baseline's bound
 * exists). Fills *out: the verdict, both values, the effective objective, the counts and a why; promotable when it
 * passes with the candidate's upper bound within the limit (what promotion needs). */
void cn_judge_slo(const struct cn_slo *slo, const struct cn_judge_ctx *ctx, const struct cn_counters *cand,
		  const struct cn_counters *base, const struct cn_series_status *cst,
		  const struct cn_series_status *bst, struct cn_slo_result *out);

/* ---- the sequential judge (seqtest.c; README "Sequential judge") ----
 * Per tick k, with n_C, n_B requests and x_C, x_B bad events of candidate and baseline, pi_k = n_C / (n_C + n_B):
 * if the candidate's bad-event rate is r times the baseline's, a bad event is the candidate's with probability
 * pi_k(r) = r pi_k / (r pi_k + 1 - pi_k). ln Lambda(r) = sum_k x_C ln(pi_k(r)/pi_k) + x_B ln((1-pi_k(r))/(1-pi_k)).
 * Rollback: ln of the equal-weight mixture of Lambda(r) over r in {1.5, 1.75, 2, 2.5, 3}, summed with weights over the
 * process from the start and processes restarted later (late onset, cn_seq_statistic), reaches ln(1/alpha). An
 * error-rate SLO's max is a test of its own (cn_seq_max_statistic) with a share of alpha. Upper bound: the
 * smallest grid ratio r0 (or the tolerance) from which on every H0 "ratio >= r0" is rejected at alpha by a mixture
 * over r' in {0.5, 0.8, 1} below r0. Every ln Lambda is divided by the dispersion index before mixing. */

/* The rollback test's alternatives: grid ratios in [CN_SEQ_ROLLBACK_MIN, CN_SEQ_ROLLBACK_MAX]. */
#define CN_SEQ_ROLLBACK_MIN 1.5
#define CN_SEQ_ROLLBACK_MAX 3.0
/* The sample-ratio check's alternatives above the margin: grid ratios in [1.5, CN_SRM_MAX]. */
#define CN_SRM_MAX 10.0
/* The sample-ratio check flags a candidate share outside [1/CN_SRM_MARGIN, CN_SRM_MARGIN] x the configured one. */
#define CN_SRM_MARGIN 1.25

/* The ratios r the test keeps ln Lambda(r) for: 0.2 0.5 0.8 1.1 1.25 1.5 1.75 2 2.5 3 5 10 (r = 1 is 0 by
 * definition). */
extern const double cn_seq_grid[CN_SEQ_NGRID];

/* Clears a test; tol is the ratio to keep an extra ln Lambda for (NAN: none). */
void cn_seq_init(struct cn_seq_stat *s, double tol);

/* Adds one tick: under the null a bad event is the candidate's with probability pi. Adds nothing when pi is not
 * in (0, 1), a count is negative or not finite, or there are no bad events. Does not touch the totals. */
void cn_seq_add(struct cn_seq_stat *s, double pi, double x_c, double x_b);

/* Adds one tick in which the baseline had no traffic (the 100% step): the candidate's x_c bad events against mu, the
 * number expected at the baseline's frozen rate (Poisson: ln Lambda(r) = x_c ln r - mu (r - 1)). Adds nothing when
 * mu is not positive and finite or x_c is negative or not finite. Does not touch the totals. */
void cn_seq_add_one_arm(struct cn_seq_stat *s, double mu, double x_c);

/* The frozen baseline rate of bad events the 100% step is judged against: the one-sided 97.5% upper bound of
 * x_b / n_b (Poisson), so that noise in the frozen estimate does not count as a regression. NAN when n_b is 0. */
double cn_seq_frozen_rate(double x_b, double n_b);

/* Adds one tick of the baseline (x_b bad events in n_b requests) to the dispersion estimate. */
void cn_seq_add_dispersion(struct cn_seq_stat *s, double x_b, double n_b);

/* Adds one tick of the candidate (x_c bad events in n_c requests) to the dispersion estimate: its tick-to-tick
 * differences, so that a regression that starts mid-way counts once, not as dispersion. */
void cn_seq_add_dispersion_cand(struct cn_seq_stat *s, double x_c, double n_c);

/* The dispersion index of bad events per tick to divide ln Lambda by. Pooled over both arms: the baseline's Pearson
 * chi-square against its pooled rate and the candidate's successive differences, over their degrees of freedom.
 * 1 unless that index is significantly above 1 (more than 1 + 3 sqrt(2/df)); then the index widened by
 * 1 + 2/sqrt(ticks) for its own uncertainty. Always >= 1 (see seqtest.c on why that keeps the bound). */
double cn_seq_dispersion(const struct cn_seq_stat *s);

/* The same with the candidate's largest successive difference left out (a level shift is one term): the threshold
 * judge's index. */
double cn_seq_dispersion_shift(const struct cn_seq_stat *s);

/* Ticks of data the dispersion estimate needs before the test may roll back or bound the ratio: the baseline's, or
 * the candidate's tick-to-tick differences (all there is at 100%). */
#define CN_SEQ_MIN_TICKS 6

/* True once the dispersion estimate rests on CN_SEQ_MIN_TICKS ticks: before, a burst could pass for a regression. */
bool cn_seq_ready(const struct cn_seq_stat *s);

/* ln Lambda(r) as accumulated: r = 1 gives 0, a grid ratio or the test's tolerance its sum, anything else NAN. */
double cn_seq_llr(const struct cn_seq_stat *s, double r);

/* ln of the equal-weight mean of (Lambda(r')/Lambda(r0))^(1/disp) over the grid ratios r' in [lo, hi] (and r' = 1
 * if in range), r' != r0. NAN if r0 is not kept, no r' is in range, or disp < 1. */
double cn_seq_mixture(const struct cn_seq_stat *s, double r0, double lo, double hi, double disp);

/* The weight of the process started at the beginning in the rollback statistic; the rest, 1 - CN_SEQ_W0, is spread
 * over the restarted processes, (1 - CN_SEQ_W0) / (m (m + 1)) for the m-th. */
#define CN_SEQ_W0 0.5
/* A new process starts every this many candidate bad events expected under the null (and at every step start), so
 * that a regression that starts late does not have to climb back from the evidence of a long healthy stretch. */
#define CN_SEQ_RESTART_EVENTS 10.0
/* ... but not before this many ticks entered the test: a short restarted process is the most exposed to bursts of
 * errors while the dispersion estimate is young, and the process from the start covers an early onset. */
#define CN_SEQ_RESTART_AFTER 30

/* The rollback statistic: ln of CN_SEQ_W0 x the mixture from the start (cn_seq_mixture(s, 1, CN_SEQ_ROLLBACK_MIN,
 * CN_SEQ_ROLLBACK_MAX, disp)) plus each kept restarted process's weight x its mixture, plus the weight of the
 * restarts not yet started (their value is 1 until they start). 0 before any evidence; NAN if disp < 1. */
double cn_seq_statistic(const struct cn_seq_stat *s, double disp);

/* Starts a new rollback process from the next tick (at a step start, and by cn_seq_add every CN_SEQ_RESTART_EVENTS).
 * Nothing if no tick entered since the last (re)start. Keeps at most CN_SEQ_NRESTART, dropping the weakest. */
void cn_seq_restart(struct cn_seq_stat *s);

/* The absolute-max test of an error-rate SLO ("the candidate's rate is above max"): ratios c of the rate to max. */
extern const double cn_seq_max_grid[CN_SEQ_NMAX];
/* The absolute-max test's share of an SLO's alpha; the comparison with the baseline gets the rest. */
#define CN_SEQ_MAX_SHARE 0.1

/* Adds the candidate's x_c bad events in n_c requests to the absolute-max test (against s->max; nothing when it is
 * NAN or the counts are unusable): ln Lambda(c) += x_c ln c - n_c max (c - 1), a supermartingale whenever the
 * candidate's rate is at most max. */
void cn_seq_add_max(struct cn_seq_stat *s, double x_c, double n_c);

/* ln of the equal-weight mean of Lambda(c)^(1/disp) over cn_seq_max_grid; NAN without a max or with disp < 1. */
double cn_seq_max_statistic(const struct cn_seq_stat *s, double disp);

/* True if "the ratio is r0 or more" is rejected at level alpha (r0 must be a grid ratio or the tolerance). */
bool cn_seq_rejects_above(const struct cn_seq_stat *s, double r0, double disp, double alpha);

/* The time-uniform upper bound on the ratio: the smallest of the grid ratios above 1 and the tolerance such that it
 * and every larger one are rejected; +Inf when even 10 is not. */
double cn_seq_upper(const struct cn_seq_stat *s, double disp, double alpha);

/* The plain estimate of the ratio from the totals, (x_c/n_c)/(x_b/n_b); NAN without data or baseline events. */
double cn_seq_ratio(const struct cn_seq_stat *s);

/* The tolerance of an SLO for the sequential judge: tolerance, else max_increase, else NAN. */
double cn_slo_tolerance(const struct cn_slo *slo);

/* Judges one SLO with the sequential test s (carried across ticks and steps, updated in place). dcand and dbase are
 * this tick's deltas (their series count only when cst and bst say they are clean), acc_base the baseline's step
 * evidence (latency SLOs choose their threshold from it once), alpha this SLO's share of the false-rollback budget.
 * Fills *out: fail when the statistic reached ln(1/alpha), inconclusive on unusable metrics or while no latency
 * threshold is chosen, else pass, with promotable telling whether the evidence allows a step to advance. */
void cn_judge_slo_seq(const struct cn_slo *slo, double alpha, struct cn_seq_stat *s, const struct cn_counters *dcand,
		      const struct cn_counters *dbase, const struct cn_counters *acc_base,
		      const struct cn_series_status *cst, const struct cn_series_status *bst, struct cn_slo_result *out);

/* Adds the deltas d into the step's evidence acc; a histogram whose bounds changed replaces acc's and sets the
 * series' bit in st->reset (earlier evidence dropped). */
void cn_counters_add(struct cn_counters *acc, const struct cn_counters *d, struct cn_series_status *st);

/* Writes why a variant's evidence (st, named variant: "candidate", "baseline") is unusable for the series in mask
 * into buf: the reading's note, a reset, or a missing series. False (buf untouched) when it is usable. */
bool cn_series_trouble(const struct cn_series_status *st, unsigned mask, const char *variant, char *buf,
		       size_t size);

/* ---- unit economics (econ.c; README "Unit economics") ----
 * tokens_per_second and cost_per_1k_tokens are rates, judged on the ratio of the candidate's to the baseline's:
 * per arm the ratio estimator r = sum(busy seconds) / sum(generation tokens) over the ticks, its variance from the
 * ticks' residuals (delta method), and a confidence sequence on ln(candidate / baseline) from a normal mixture
 * (Robbins; Howard et al. 2021) with the variance plugged in: approximately valid at every tick at once. */

/* Ticks with tokens each arm needs before an economics verdict (the variance is estimated from them). */
#define CN_ECON_MIN_TICKS 6
/* The mixture's scale in ticks: the boundary is tightest around this many ticks of data. */
#define CN_ECON_MIX_TICKS 10.0

/* One arm's estimate: the value (tokens per busy second, or cost per 1k tokens), ln of it and the variance of that
 * ln; ok false (and why says so) when it cannot be computed. */
struct cn_econ_est {
	bool ok;
	double value, ln, var_ln;
	double ticks, tokens, busy;
	char why[96];
};

/* Estimates metric (CN_METRIC_TOKENS_PER_SECOND or CN_METRIC_COST_PER_1K) from one arm's evidence c. */
void cn_econ_estimate(enum cn_slo_metric metric, const struct cn_counters *c, struct cn_econ_est *out);

/* Half-width of the confidence sequence on a ln-ratio with variance var after t ticks, at level alpha (two-sided):
 * sqrt(var (1 + m/t) (ln(1 + t/m) + 2 ln(1/alpha))), m = CN_ECON_MIX_TICKS. NAN on bad input. */
double cn_econ_halfwidth(double var, double t, double alpha);

/* Judges an economics SLO on the step's evidence (cand, base: for the 100% step the baseline frozen from the
 * earlier steps) at level alpha (both sides together). cost_per_1k_tokens fails when the lower bound of the
 * candidate/baseline cost ratio is above max_increase, or the lower bound of the candidate's cost above max;
 * tokens_per_second when the upper bound of the throughput ratio is below min_ratio. promotable says the bounds
 * are within the objective (the sequential judge's gate for most traffic); plausible that the estimate is.
 * Missing token counters, a latency histogram without _sum, no cost or too few ticks are inconclusive. */
void cn_judge_slo_econ(const struct cn_slo *slo, double alpha, const struct cn_counters *cand,
		       const struct cn_counters *base, const struct cn_series_status *cst,
		       const struct cn_series_status *bst, struct cn_slo_result *out);

/* Fills *out with the economics of the step's evidence, cand against base (dropped: features beyond the cap on the
 * candidate's last page). out->have is set by the caller. */
void cn_econ_view_fill(const struct cn_counters *cand, const struct cn_counters *base, int dropped,
		       struct cn_econ_view *out);

/* Writes the per-feature breakdown as one line into buf ("" when there is none): "search: cost/1k 0.0276 vs 0.0227
 * (1.22x), latency 0.31s vs 0.25s, 5210 tokens; chat: ...; 3 more features in 'other'". Returns buf. */
const char *cn_econ_features_line(const struct cn_econ_view *v, char *buf, size_t size);

/* Writes a short label for an SLO's measure ("error rate", "p99 latency", "p95 ttft") into buf; returns buf. */
const char *cn_slo_label(const struct cn_slo *slo, char *buf, size_t size);

#endif
