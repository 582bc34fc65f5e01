/* Types of a workload profile: the synthetic load a pre-flight or a drill drives (rate, bursts, prompt and output
 * lengths, streaming, endpoint). Filled by the profile loader (canary/profile.h), read by the load generator. */
#ifndef CANARY_PROFILE_T_H
#define CANARY_PROFILE_T_H

#include <stdbool.h>
#include <stdint.h>

#define CN_PROFILE_MODEL_MAX 128
#define CN_PROFILE_PATH_MAX 512

enum cn_profile_endpoint { CN_ENDPOINT_COMPLETIONS = 0, CN_ENDPOINT_CHAT = 1 };

/* A long-tailed length distribution in tokens: log-normal with this median and 99th percentile (p99 >= median). */
struct cn_token_dist {
	double median;
	double p99;
};

/* Bursts: every `period_ms` the rate is multiplied by `factor` for `length_ms` (length 0: no bursts). */
struct cn_bursts {
	double factor;
	int64_t period_ms;
	int64_t length_ms;
};

struct cn_profile {
	double rate;                          /* requests per second outside bursts (> 0) */
	int64_t duration_ms;                  /* how long the load runs */
	int64_t max_requests;                 /* stop after this many (0: only the duration bounds it) */
	struct cn_bursts bursts;
	struct cn_token_dist prompt_tokens;   /* used unless prompts_file is set */
	char prompts_file[CN_PROFILE_PATH_MAX]; /* JSONL of real prompts to sample ("" : none) */
	struct cn_token_dist output_tokens;
	bool stream;                          /* "stream": true; TTFT and ITL measured from the events */
	int endpoint;                         /* enum cn_profile_endpoint */
	char model[CN_PROFILE_MODEL_MAX];     /* the request's "model" */
	int64_t timeout_ms;                   /* one request's time limit */
};

#endif
