/* The workload profile file: its key table (rate, duration, bursts, prompt and output lengths, streaming, endpoint,
 * model), the checks that need several keys, and the loader. Same engine and messages as policy files. */
#include "policy_int.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "canary/profile.h"

#define KEYS(a) (a), (sizeof(a) / sizeof((a)[0]))
#define F(type, field) .offset = offsetof(type, field), .size = sizeof(((type *)0)->field)

static const struct cn_enum_val endpoint_words[] = {
	{ "completions", CN_ENDPOINT_COMPLETIONS }, { "chat", CN_ENDPOINT_CHAT }, { NULL, 0 } };

static int check_dist(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals);
static int check_bursts(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals);
static int check_profile(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals);

static const struct cn_key prompt_keys[] = {
	{ .name = "median", .type = CN_KT_NUMBER, F(struct cn_token_dist, median), .def = "200", .min = 1, .max = 1e7,
	  .doc = "median prompt length in tokens" },
	{ .name = "p99", .type = CN_KT_NUMBER, F(struct cn_token_dist, p99), .def = "4000", .min = 1, .max = 1e7,
	  .doc = "99th percentile of the prompt length in tokens (log-normal tail; not below the median)" },
};
static const struct cn_schema prompt_schema = { .name = "prompt_tokens", .keys = KEYS(prompt_keys),
						.check = check_dist };

static const struct cn_key output_keys[] = {
	{ .name = "median", .type = CN_KT_NUMBER, F(struct cn_token_dist, median), .def = "100", .min = 1, .max = 1e6,
	  .doc = "median output length in tokens (the request's max_tokens)" },
	{ .name = "p99", .type = CN_KT_NUMBER, F(struct cn_token_dist, p99), .def = "500", .min = 1, .max = 1e6,
	  .doc = "99th percentile of the output length in tokens (not below the median)" },
};
static const struct cn_schema output_schema = { .name = "output_tokens", .keys = KEYS(output_keys),
						.check = check_dist };

static const struct cn_key burst_keys[] = {
	{ .name = "factor", .type = CN_KT_RATIO, F(struct cn_bursts, factor), .def = "1x", .min = 1, .max = 100,
	  .doc = "the rate is multiplied by this during a burst, 1x .. 100x" },
	{ .name = "period", .type = CN_KT_DURATION, F(struct cn_bursts, period_ms), .def = "1m", .min = 100,
	  .max = 86400000, .doc = "a burst starts every period (the first one at the start)" },
	{ .name = "length", .type = CN_KT_DURATION0, F(struct cn_bursts, length_ms), .def = "0", .min = 0,
	  .max = 86400000, .doc = "how long a burst lasts, shorter than the period; 0: no bursts" },
};
static const struct cn_schema burst_schema = { .name = "bursts", .keys = KEYS(burst_keys), .check = check_bursts };

static const struct cn_key profile_keys[] = {
	{ .name = "rate", .type = CN_KT_NUMBER, .flags = CN_KEY_REQUIRED, F(struct cn_profile, rate), .min = 0,
	  .max = 100000, .range = CN_RANGE_MIN_EXCL,
	  .doc = "requests per second at peak outside bursts (open loop, Poisson arrivals), (0, 100000]" },
	{ .name = "duration", .type = CN_KT_DURATION, .flags = CN_KEY_REQUIRED, F(struct cn_profile, duration_ms),
	  .min = 100, .max = 86400000, .doc = "how long the load runs, 100ms .. 24h" },
	{ .name = "max_requests", .type = CN_KT_INT, F(struct cn_profile, max_requests), .def = "0", .min = 0,
	  .max = 1e9, .doc = "stop after this many requests (0: the duration alone bounds the run)" },
	{ .name = "bursts", .type = CN_KT_MAP, F(struct cn_profile, bursts), .min = NAN, .max = NAN,
	  .sub = &burst_schema, .doc = "bursts on top of the rate: factor, period, length (e.g. 3x for 5s every 1m)" },
	{ .name = "prompt_tokens", .type = CN_KT_MAP, F(struct cn_profile, prompt_tokens), .min = NAN, .max = NAN,
	  .sub = &prompt_schema, .doc = "prompt lengths, log-normal: median and p99 in tokens" },
	{ .name = "prompts_file", .type = CN_KT_STRING, F(struct cn_profile, prompts_file), .min = NAN, .max = NAN,
	  .doc = "a JSONL file of real prompts to sample ({\"prompt\": \"...\"} per line), instead of prompt_tokens" },
	{ .name = "output_tokens", .type = CN_KT_MAP, F(struct cn_profile, output_tokens), .min = NAN, .max = NAN,
	  .sub = &output_schema, .doc = "output lengths (max_tokens), log-normal: median and p99 in tokens" },
	{ .name = "stream", .type = CN_KT_BOOL, F(struct cn_profile, stream), .def = "false", .min = NAN, .max = NAN,
	  .doc = "true: \"stream\": true, and TTFT and inter-token latency are measured from the events" },
	{ .name = "endpoint", .type = CN_KT_ENUM, F(struct cn_profile, endpoint), .def = "completions", .min = NAN,
	  .max = NAN, .enums = endpoint_words, .doc = "completions (/v1/completions) | chat (/v1/chat/completions)" },
	{ .name = "model", .type = CN_KT_STRING, F(struct cn_profile, model), .def = "default", .min = NAN,
	  .max = NAN, .doc = "the requests' \"model\"" },
	{ .name = "timeout", .type = CN_KT_DURATION, F(struct cn_profile, timeout_ms), .def = "60s", .min = 10,
	  .max = 3600000, .doc = "time limit for one request; a request over it counts as an error" },
};
const struct cn_schema cn_profile_doc_schema = { .name = "profile", .keys = KEYS(profile_keys),
						 .check = check_profile };

const struct cn_schema *cn_profile_schema(void)
{
	return &cn_profile_doc_schema;
}

const char *cn_profile_endpoint_name(int endpoint)
{
	return endpoint == CN_ENDPOINT_CHAT ? "chat" : "completions";
}

static int check_dist(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals)
{
	struct cn_token_dist *d = obj;
	(void)map;
	if (d->p99 < d->median) {
		const struct cn_ynode *at = vals[1] ? vals[1] : vals[0];
		return cn_ld_fail(ld, at, "p99 %g is below the median %g: a p99 is at least the median", d->p99,
				  d->median);
	}
	return 0;
}

static int check_bursts(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals)
{
	struct cn_bursts *b = obj;
	if (b->length_ms >= b->period_ms)
		return cn_ld_fail(ld, vals[2] ? vals[2] : vals[1] ? vals[1] : map,
				  "burst length must be shorter than its period (a burst that never ends is a higher rate)");
	if (b->length_ms > 0 && vals[0] == NULL)
		return cn_ld_fail(ld, vals[2], "bursts without a factor: give factor (e.g. 3x)");
	return 0;
}

static int check_profile(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals)
{
	struct cn_profile *p = obj;
	const struct cn_ynode *pf = cn_schema_val(&cn_profile_doc_schema, vals, "prompts_file");
	const struct cn_ynode *pt = cn_schema_val(&cn_profile_doc_schema, vals, "prompt_tokens");
	(void)map;
	if (pf && pt)
		return cn_ld_fail(ld, pf, "give either prompt_tokens or prompts_file, not both");
	if (pf && !p->prompts_file[0])
		return cn_ld_fail(ld, pf, "prompts_file is empty; name a JSONL file or leave the key out");
	if (!p->model[0])
		return cn_ld_fail(ld, cn_schema_val(&cn_profile_doc_schema, vals, "model"), "model is empty");
	return 0;
}

int cn_profile_parse(const char *text, size_t len, const char *origin, struct cn_profile *out, struct cn_err *err)
{
	struct cn_load ld = { .origin = origin ? origin : "profile", .err = err };
	struct cn_profile *p = calloc(1, sizeof *p);
	if (!p)
		return cn_fail(err, CN_EINTERNAL, "out of memory loading %s", ld.origin);
	int rc = cn_schema_parse(&ld, text, len, &cn_profile_doc_schema, "profile",
				 "the profile is empty; it needs at least rate and duration", p);
	if (rc == 0)
		*out = *p;
	free(p);
	return rc;
}

int cn_profile_load_file(const char *path, struct cn_profile *out, struct cn_err *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	if ((rc = cn_read_file(path, &text, &len, err)) < 0)
		goto out;
	rc = cn_profile_parse(text, len, path, out, err);
out:
	free(text);
	return rc;
}
