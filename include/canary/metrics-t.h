/* Types of observations: cumulative counters and histogram buckets of one variant at one moment. */
#ifndef CANARY_METRICS_T_H
#define CANARY_METRICS_T_H

#include <stdbool.h>
#include <stdint.h>

#define CN_MAX_BUCKETS 64
#define CN_WHY_MAX 160

/* A Prometheus histogram as exposed: cumulative bucket counts. nbuckets == 0 means the series is missing. */
struct cn_histogram {
	int nbuckets;
	double le[CN_MAX_BUCKETS];    /* upper bounds, strictly ascending; the last one is +Inf */
	double count[CN_MAX_BUCKETS]; /* cumulative counts, non-decreasing */
	double sum;                   /* sum of observed values (NAN if not exposed) */
};

/* One variant's cumulative counters, summed over its servers, as read at one moment. */
struct cn_sample {
	bool ok;                  /* false: the read failed or the page was unusable; why says so */
	char why[CN_WHY_MAX];
	double requests;          /* NAN if the series is missing */
	double errors;            /* NAN if the series is missing */
	struct cn_histogram latency, ttft, itl;
};

/* What the daemon read at one tick: both variants. */
struct cn_observation {
	int64_t at_ms;            /* wall clock of the read, milliseconds since the epoch */
	struct cn_sample baseline, candidate;
};

#endif
