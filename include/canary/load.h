/* The load generator: open-loop Poisson arrivals with bursts, OpenAI-compatible completions (streaming or not)
 * through libcurl's multi interface, results per prompt-length band. The pure parts (random source, log-normal
 * lengths, the arrival schedule, the server-sent-events parser, the timing histograms) are exposed for tests. */
#ifndef CANARY_LOAD_H
#define CANARY_LOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canary/contract.h"
#include "canary/err.h"
#include "canary/profile-t.h"

/* ---- random source and lengths ---- */

/* xoshiro256**; not for cryptography. */
struct cn_rng {
	uint64_t s[4];
};

/* Seeds rng from any value. */
void cn_rng_seed(struct cn_rng *rng, uint64_t seed);

/* A uniform double in [0, 1). */
double cn_rng_uniform(struct cn_rng *rng);

/* A standard normal draw. */
double cn_rng_normal(struct cn_rng *rng);

/* A log-normal draw with the distribution's median and 99th percentile (p99 >= median > 0). */
double cn_rng_lognormal_p99(struct cn_rng *rng, double median, double p99);

/* The q-quantile (0 < q < 1) of the log-normal with this median and p99. */
double cn_lognormal_quantile(double median, double p99, double q);

/* ---- arrival schedule ---- */

/* Poisson arrivals at `rate` per second, multiplied by bursts.factor during the first bursts.length_ms of every
 * bursts.period_ms (a non-homogeneous Poisson process with a piecewise-constant rate). */
struct cn_sched {
	double rate, factor, period, length; /* per second; seconds */
	double t;                            /* the last arrival, seconds since the start */
	struct cn_rng rng;
};

void cn_sched_init(struct cn_sched *s, double rate, const struct cn_bursts *bursts, uint64_t seed);

/* The rate in force at time t (seconds since the start). */
double cn_sched_rate_at(const struct cn_sched *s, double t);

/* The next arrival time, seconds since the start (strictly increasing). */
double cn_sched_next(struct cn_sched *s);

/* ---- server-sent events ---- */

#define CN_SSE_LINE_MAX (256 * 1024) /* one event line; a longer one is an error */

/* Splits a stream of bytes into lines (LF or CRLF, across any chunking) and counts `data:` events. */
struct cn_sse {
	char *line;       /* the partial line (capped at CN_SSE_LINE_MAX) */
	size_t len, alloc;
	long events;      /* data events seen, [DONE] not counted */
	long tokens;      /* data events that carry text (a non-empty "text", "content" or tool-call delta) */
	bool done;        /* data: [DONE] seen */
	bool error;       /* an over-long line, or an "error" event */
	/* optional: called with every data event's payload but [DONE] (the contract check) */
	void (*on_data)(void *arg, const char *data, size_t len);
	void *on_data_arg;
};

void cn_sse_init(struct cn_sse *p);

/* Feeds len bytes. Returns the number of token events completed by these bytes (>= 0), or -1 once p->error. */
long cn_sse_feed(struct cn_sse *p, const char *buf, size_t len);

void cn_sse_free(struct cn_sse *p);

/* ---- timing histograms and bands ---- */

#define CN_LHIST_BUCKETS 480 /* log buckets of 4% from 1 us: up to about 2 hours */

struct cn_lhist {
	uint64_t n;
	uint64_t count[CN_LHIST_BUCKETS];
	double max;
	double sum; /* seconds: the exact mean, where a quantile is only known within its bucket */
};

void cn_lhist_add(struct cn_lhist *h, double seconds);

/* The q-quantile in seconds (upper bucket bound, so within 4%); NAN when empty. */
double cn_lhist_quantile(const struct cn_lhist *h, double q);

enum cn_band { CN_BAND_SHORT, CN_BAND_MEDIAN, CN_BAND_LONG, CN_NBANDS };

/* "short", "median", "long tail". */
const char *cn_band_name(enum cn_band b);

struct cn_band_stats {
	double lo, hi;               /* prompt tokens: lo < tokens <= hi (lo of short is 0, hi of long tail INFINITY) */
	long requests, errors;       /* errors: transport failures, resets, timeouts, HTTP >= 400, broken streams */
	long contract_checked;       /* answers checked against the contract (successful ones, with a contract) */
	long contract_violations;    /* ... that broke it */
	struct cn_lhist latency, ttft, itl;
};

/* ---- the run ---- */

struct cn_load_progress {
	double elapsed_s, duration_s;
	long sent, done, errors, in_flight, late;
};

struct cn_load_opts {
	const struct cn_profile *profile;
	const char *base_url;        /* http://127.0.0.1:PORT (the path is the endpoint's) */
	uint64_t seed;
	long max_in_flight;          /* 0: 1024; a due arrival waits while this many are in flight (counted as late) */
	int64_t max_requests;        /* 0: the profile's max_requests (and then only the duration) */
	double duration_s;           /* 0: the profile's duration */
	/* called about every progress_every_s seconds (0: never) */
	void (*progress)(const struct cn_load_progress *p, void *arg);
	void *progress_arg;
	double progress_every_s;
	/* optional: every successful answer is checked against the contract, and chat requests carry its tools */
	const struct cn_contract_rt *contract;
	/* optional: the baseline of a pre-flight. Every request is sent to baseline_url too, the same body at the same
	 * moment (the same prompts in the same order, interleaved in time); its figures go to *baseline_out. */
	const char *baseline_url;
	struct cn_load_result *baseline_out;
	/* optional: set by another thread to stop the run (requests in flight are abandoned; the run returns
	 * -CN_EUNAVAIL "cancelled") */
	const atomic_bool *cancel;
};

struct cn_load_result {
	long sent, ok, errors;
	long transport_errors, http_errors, stream_errors, timeouts;
	long late;                   /* arrivals sent after their time because max_in_flight was reached */
	double elapsed_s;            /* from the start to the last answer */
	double send_span_s;          /* from the start to the last request sent */
	double achieved_rate;        /* sent / send_span_s */
	long prompt_tokens_sent, output_tokens_seen;
	struct cn_band_stats bands[CN_NBANDS];
	struct cn_lhist latency;     /* all bands */
	struct cn_lhist send_lag;    /* each request: sent minus its scheduled arrival (the generator's own delay) */
	long contract_checked, contract_violations;
	char contract_example[CN_CONTRACT_WHY_MAX]; /* the first violation, in words ("" : none) */
};

/* Sets the three bands' edges from the profile: short is below the median prompt length, median up to the 90th
 * percentile, long tail above it (for prompts_file, the file's own median and 90th percentile). */
void cn_load_bands(struct cn_load_result *r, double median, double p90);

/* Drives base_url with the profile until its duration or request count is reached, then waits for the requests in
 * flight (each bounded by the profile's timeout). Failures of single requests are counted, never returned.
 * Returns 0, or -CN_EINPUT (bad URL, unreadable prompts file), -CN_EINTERNAL (libcurl could not start),
 * -CN_EUNAVAIL (cancelled). *out (and *o->baseline_out) are written only on success. */
int cn_load_run(const struct cn_load_opts *o, struct cn_load_result *out, struct cn_err *err);

#endif
