/* The model-server simulator's pure parts: its run-time config (and the admin body that changes it), a small
 * random source with log-normal draws, and Prometheus histograms with vLLM's bucket bounds. Used by modelsim and
 * by the tests that check it. */
#ifndef CANARY_SIM_MODEL_H
#define CANARY_SIM_MODEL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "canary/err.h"
#include "canary/load.h"

#define SIM_NAME_MAX 64
#define SIM_HIST_MAX 32

/* What a simulated model server does; every field can be changed at run time through /admin. */
struct sim_config {
	char name[SIM_NAME_MAX];  /* model name and X-Served-By value */
	double latency_median;    /* seconds, end to end */
	double latency_sigma;     /* log-normal shape */
	double ttft_median;       /* seconds, time to first token */
	double ttft_sigma;
	double error_rate;        /* probability of a 500 answer, 0..1 */
	long tokens;              /* output tokens per answer */
	long sleep;               /* 1: really wait the simulated latency before answering */
	long metrics_garbage;     /* 1: /metrics answers a page that is not Prometheus text (fault injection) */
	double prefill_per_token; /* seconds added to TTFT and latency per prompt token (latency grows with prompts) */
	long long_prompt_tokens;  /* prompts over this many tokens are slowed by long_prompt_factor (0: off) */
	double long_prompt_factor;/* TTFT and latency multiplier for long prompts (1: none) */
	double tool_call_malformed; /* probability that a tool call's arguments are not valid JSON, 0..1 */
	double tool_call_invalid; /* probability that a tool call's arguments are JSON that breaks the tool's schema
				   * (its first required property left out), 0..1 */
	double stream_cut;        /* probability that a streamed answer is cut (connection reset) after its first
				   * token, 0..1 */
	double generation_factor; /* time after the first token times this (1.3: 30% more time per generated token) */
	long features;            /* 0: no feature label; 1..SIM_FEATURES: answers take turns among the first N of
				   * search, chat, summarize, code, and the latency histogram and token counters
				   * carry feature="..." */
};

#define SIM_FEATURES 4
extern const char *const sim_feature_names[SIM_FEATURES];

/* Fills cfg with the defaults (name "blue", median 0.2 s, sigma 0.3, ttft 0.05 s, errors 0.5%, 32 tokens; no
 * prefill cost, no long-prompt slowdown, well-formed tool calls). */
void sim_config_defaults(struct sim_config *cfg);

/* Sets one key ("latency_median", "latency-median", "error_rate", ...) from its text value, range-checked;
 * returns 0 or -CN_EINPUT with err set, cfg unchanged on failure. */
int sim_config_set(struct sim_config *cfg, const char *key, const char *value, struct cn_err *err);

/* Applies an admin body: a flat JSON object of numbers ({"error_rate":0.05}) or a form (error_rate=0.05&...);
 * all or nothing: cfg is changed only if every key is valid. Returns 0 or -CN_EINPUT. */
int sim_config_apply(struct sim_config *cfg, const char *body, size_t len, struct cn_err *err);

/* Writes cfg as one JSON object into buf; returns the length, or -1 if buf is too small. */
int sim_config_json(const struct sim_config *cfg, char *buf, size_t size);

/* The simulated latency and TTFT of one answer to a prompt of prompt_tokens (>= 0): the drawn values plus the
 * prefill cost, both times long_prompt_factor for a long prompt; TTFT at most 0.9 of the latency; then the time
 * after the first token times generation_factor. */
void sim_prompt_latency(const struct sim_config *cfg, double prompt_tokens, double *latency, double *ttft);

/* A small, fast random source (xoshiro256**); not for cryptography. */
struct sim_rng {
	struct cn_rng r;
};

/* Seeds rng from seed (any value, 0 included). */
void sim_rng_seed(struct sim_rng *rng, uint64_t seed);

/* Returns a uniform double in [0, 1). */
double sim_rng_uniform(struct sim_rng *rng);

/* Returns a log-normal draw with the given median (> 0) and sigma (>= 0): median * exp(sigma * N(0,1)). */
double sim_rng_lognormal(struct sim_rng *rng, double median, double sigma);

/* Bucket bounds of vLLM's histograms (seconds, without +Inf), as vLLM's Prometheus logger declares them. */
extern const double sim_vllm_e2e_buckets[];
extern const int sim_vllm_e2e_nbuckets;
extern const double sim_vllm_ttft_buckets[];
extern const int sim_vllm_ttft_nbuckets;
extern const double sim_vllm_tpot_buckets[];
extern const int sim_vllm_tpot_nbuckets;

/* A thread-safe Prometheus histogram: per-bucket (not cumulative) atomic counts, the last one for +Inf. */
struct sim_hist {
	const double *le;
	int n;                                   /* finite bounds */
	_Atomic uint64_t count[SIM_HIST_MAX + 1];
	_Atomic uint64_t sum_ns;                 /* sum of observations, nanoseconds */
};

/* Sets h up with bounds le[0..n-1] (n <= SIM_HIST_MAX, ascending; le must outlive h) and zero counts. */
void sim_hist_init(struct sim_hist *h, const double *le, int n);

/* Records one observation in seconds (negative values count as 0). */
void sim_hist_observe(struct sim_hist *h, double seconds);

/* Zeroes the counts (a server restart). */
void sim_hist_reset(struct sim_hist *h);

/* Appends the histogram in the text exposition format (HELP, TYPE, cumulative _bucket lines, _sum, _count) to
 * buf at *off; labels is e.g. "model_name=\"blue\"" or "". Returns 0, or -1 if buf is full (*off then unchanged). */
int sim_hist_render(const struct sim_hist *h, const char *name, const char *help, const char *labels,
		    char *buf, size_t size, size_t *off);

#endif
