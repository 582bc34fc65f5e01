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

/* What a slot costs, from the service file (configuration, not measured); handed to the core with each reading.
 * Exactly one of per_hour and per_1k_tokens is set when the slot has a cost; both NAN when it has none. */
struct cn_cost {
	double per_hour;      /* price of one replica-hour; NAN: none */
	double replicas;      /* replicas serving the slot (>= 1 with per_hour) */
	double per_1k_tokens; /* a fixed price of 1,000 generation tokens; NAN: none */
};

#define CN_MAX_FEATURES 8 /* features broken down per variant; more are summed as "other" */
#define CN_FEATURE_MAX 32 /* a feature label's value, at most 31 bytes shown */

/* The token and latency counters of one feature (series with a feature="..." label), cumulative. */
struct cn_feature {
	char name[CN_FEATURE_MAX]; /* "" for an unused entry */
	double gen_tokens;         /* NAN if this feature has no token series */
	double requests;           /* the latency histogram's _count for this feature; NAN if none */
	double latency_sum;        /* its _sum, seconds; NAN if none */
};

/* One variant's cumulative counters, summed over its servers, as read at one moment. */
struct cn_sample {
	bool ok;                  /* false: the read failed or the page was unusable; why says so */
	char why[CN_WHY_MAX];
	double requests;          /* NAN if the series is missing */
	double errors;            /* NAN if the series is missing */
	struct cn_histogram latency, ttft, itl;
	double gen_tokens;        /* generation tokens counter; NAN if the series is missing */
	double prompt_tokens;     /* prompt tokens counter; NAN if missing (shown, not judged) */
	struct cn_cost cost;      /* the slot's cost (the daemon fills it from the service); NAN fields: none */
	int nfeatures;            /* per-feature breakdown, 0 when the series carry no feature label */
	int features_dropped;     /* distinct features beyond CN_MAX_FEATURES - 1, summed into "other" */
	struct cn_feature features[CN_MAX_FEATURES];
};

/* What the daemon read at one tick: both variants. */
struct cn_observation {
	int64_t at_ms;            /* wall clock of the read, milliseconds since the epoch */
	struct cn_sample baseline, candidate;
};

#endif
