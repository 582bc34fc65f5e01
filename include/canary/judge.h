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

/* The smallest number of candidate requests in a step that lets an SLO be judged at all: min(50, min_requests),
 * at least 1. A step still needs analysis.min_requests to advance; this floor only decides when a verdict can be
 * pass or fail instead of inconclusive (so a clear regression is caught before the step's full sample is in). */
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

/* The minimum candidate requests in a step for any verdict: see CN_JUDGE_MIN_SAMPLE. */
int64_t cn_judge_min_sample(const struct cn_policy *p);

/* Ingests one variant's reading. prev is the last usable reading (NULL if none), cur this tick's (NULL or
 * cur->ok == false if unusable). Adds the deltas to acc (if not NULL), writes the reading to use as the next base to
 * *base_out (per series: cur where present, else prev's), and fills *st. base_out may not alias prev or cur. */
void cn_ingest_sample(const struct cn_sample *prev, const struct cn_sample *cur, struct cn_counters *acc,
		      struct cn_sample *base_out, struct cn_series_status *st);

/* Judges one SLO on the evidence accumulated in the step (cand, base) and this tick's status of each variant.
 * min_sample is cn_judge_min_sample(). Fills *out: the verdict, both values, the effective objective
 * (min(max, baseline * max_increase), the relative part only with a baseline value), the counts and a why. */
void cn_judge_slo(const struct cn_slo *slo, int64_t min_sample, const struct cn_counters *cand,
		  const struct cn_counters *base, const struct cn_series_status *cst,
		  const struct cn_series_status *bst, struct cn_slo_result *out);

/* Writes a short label for an SLO's measure ("error rate", "p99 latency", "p95 ttft") into buf; returns buf. */
const char *cn_slo_label(const struct cn_slo *slo, char *buf, size_t size);

#endif
