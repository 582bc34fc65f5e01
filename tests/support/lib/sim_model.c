/* The model-server simulator's pure parts: config table and admin body parsing, random draws, vLLM histograms. */
#include "sim_model.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* vLLM's bucket bounds (vllm/v1/metrics/loggers.py): e2e request latency, time to first token, time per token. */
const double sim_vllm_e2e_buckets[] = {
	0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
	120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
};
const int sim_vllm_e2e_nbuckets = (int)(sizeof sim_vllm_e2e_buckets / sizeof sim_vllm_e2e_buckets[0]);
const double sim_vllm_ttft_buckets[] = {
	0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
	20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
};
const int sim_vllm_ttft_nbuckets = (int)(sizeof sim_vllm_ttft_buckets / sizeof sim_vllm_ttft_buckets[0]);
const double sim_vllm_tpot_buckets[] = {
	0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
	20.0, 40.0, 80.0,
};
const int sim_vllm_tpot_nbuckets = (int)(sizeof sim_vllm_tpot_buckets / sizeof sim_vllm_tpot_buckets[0]);

enum key_type { KEY_DOUBLE, KEY_LONG, KEY_NAME };

/* The settable keys, their types and ranges: one table for the command line and /admin. */
static const struct {
	const char *key;
	enum key_type type;
	size_t off;
	double min, max;
} keys[] = {
	{ "name", KEY_NAME, offsetof(struct sim_config, name), 0, 0 },
	{ "latency_median", KEY_DOUBLE, offsetof(struct sim_config, latency_median), 1e-6, 3600 },
	{ "latency_sigma", KEY_DOUBLE, offsetof(struct sim_config, latency_sigma), 0, 5 },
	{ "ttft_median", KEY_DOUBLE, offsetof(struct sim_config, ttft_median), 1e-6, 3600 },
	{ "ttft_sigma", KEY_DOUBLE, offsetof(struct sim_config, ttft_sigma), 0, 5 },
	{ "error_rate", KEY_DOUBLE, offsetof(struct sim_config, error_rate), 0, 1 },
	{ "tokens", KEY_LONG, offsetof(struct sim_config, tokens), 1, 100000 },
	{ "sleep", KEY_LONG, offsetof(struct sim_config, sleep), 0, 1 },
	{ "metrics_garbage", KEY_LONG, offsetof(struct sim_config, metrics_garbage), 0, 1 },
	{ "prefill_per_token", KEY_DOUBLE, offsetof(struct sim_config, prefill_per_token), 0, 1 },
	{ "long_prompt_tokens", KEY_LONG, offsetof(struct sim_config, long_prompt_tokens), 0, 10000000 },
	{ "long_prompt_factor", KEY_DOUBLE, offsetof(struct sim_config, long_prompt_factor), 1, 1000 },
	{ "tool_call_malformed", KEY_DOUBLE, offsetof(struct sim_config, tool_call_malformed), 0, 1 },
	{ "tool_call_invalid", KEY_DOUBLE, offsetof(struct sim_config, tool_call_invalid), 0, 1 },
	{ "stream_cut", KEY_DOUBLE, offsetof(struct sim_config, stream_cut), 0, 1 },
	{ "generation_factor", KEY_DOUBLE, offsetof(struct sim_config, generation_factor), 0.1, 100 },
	{ "features", KEY_LONG, offsetof(struct sim_config, features), 0, SIM_FEATURES },
};

const char *const sim_feature_names[SIM_FEATURES] = { "search", "chat", "summarize", "code" };

void sim_config_defaults(struct sim_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	snprintf(cfg->name, sizeof cfg->name, "%s", "blue");
	cfg->latency_median = 0.2;
	cfg->latency_sigma = 0.3;
	cfg->ttft_median = 0.05;
	cfg->ttft_sigma = 0.3;
	cfg->error_rate = 0.005;
	cfg->tokens = 32;
	cfg->sleep = 0;
	cfg->long_prompt_factor = 1;
	cfg->generation_factor = 1;
}

void sim_prompt_latency(const struct sim_config *cfg, double prompt_tokens, double *latency, double *ttft)
{
	double extra = cfg->prefill_per_token * prompt_tokens;
	double lat = *latency + extra, first = *ttft + extra;
	if (cfg->long_prompt_tokens > 0 && prompt_tokens > (double)cfg->long_prompt_tokens) {
		lat *= cfg->long_prompt_factor;
		first *= cfg->long_prompt_factor;
	}
	if (first > 0.9 * lat)
		first = 0.9 * lat;
	lat = first + (lat - first) * cfg->generation_factor;
	*latency = lat;
	*ttft = first;
}

/* Compares a key with '-' and '_' taken as equal. */
static int key_eq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char x = *a == '-' ? '_' : *a, y = *b == '-' ? '_' : *b;
		if (x != y)
			return 0;
	}
	return *a == *b;
}

int sim_config_set(struct sim_config *cfg, const char *key, const char *value, struct cn_err *err)
{
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		if (!key_eq(key, keys[i].key))
			continue;
		char *p = (char *)cfg + keys[i].off;
		if (keys[i].type == KEY_NAME) {
			size_t n = strlen(value);
			if (n == 0 || n >= SIM_NAME_MAX)
				return cn_fail(err, CN_EINPUT, "name '%s': must be 1 to %d characters", value,
					       SIM_NAME_MAX - 1);
			for (size_t j = 0; j < n; j++)
				if (!isalnum((unsigned char)value[j]) && !strchr("-_.", value[j]))
					return cn_fail(err, CN_EINPUT,
						       "name '%s': use letters, digits, '-', '_' or '.'", value);
			memcpy(p, value, n + 1);
			return 0;
		}
		char *end = NULL;
		errno = 0;
		double v = strtod(value, &end);
		if (errno || end == value || *end != '\0' || !isfinite(v))
			return cn_fail(err, CN_EINPUT, "%s '%s': not a number", keys[i].key, value);
		if (v < keys[i].min || v > keys[i].max)
			return cn_fail(err, CN_EINPUT, "%s '%s': out of range [%g, %g]", keys[i].key, value,
				       keys[i].min, keys[i].max);
		if (keys[i].type == KEY_LONG) {
			if (v != floor(v))
				return cn_fail(err, CN_EINPUT, "%s '%s': must be a whole number", keys[i].key, value);
			long l = (long)v;
			memcpy(p, &l, sizeof l);
		} else {
			memcpy(p, &v, sizeof v);
		}
		return 0;
	}
	return cn_fail(err, CN_EINPUT,
		       "unknown key '%s' (use latency_median, latency_sigma, ttft_median, ttft_sigma, error_rate, "
		       "tokens, sleep, metrics_garbage, prefill_per_token, long_prompt_tokens, long_prompt_factor, "
		       "tool_call_malformed, tool_call_invalid, stream_cut, generation_factor, features)", key);
}

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && isspace((unsigned char)*p))
		p++;
	return p;
}

/* Copies a token [p, q) into dst (bounded); returns -1 if it does not fit. */
static int copy_tok(char *dst, size_t size, const char *p, const char *q)
{
	if ((size_t)(q - p) >= size)
		return -1;
	memcpy(dst, p, (size_t)(q - p));
	dst[q - p] = '\0';
	return 0;
}

static int apply_json(struct sim_config *cfg, const char *p, const char *end, struct cn_err *err)
{
	char key[64], val[128];
	p = skip_ws(p, end);
	if (p == end || *p != '{')
		return cn_fail(err, CN_EINPUT, "admin body: expected a json object");
	p = skip_ws(p + 1, end);
	if (p < end && *p == '}')
		goto tail;
	for (;;) {
		if (p == end || *p != '"')
			return cn_fail(err, CN_EINPUT, "admin body: expected a quoted key");
		const char *k = ++p;
		while (p < end && *p != '"' && *p != '\\')
			p++;
		if (p == end || *p != '"' || copy_tok(key, sizeof key, k, p) < 0)
			return cn_fail(err, CN_EINPUT, "admin body: bad or too long key");
		p = skip_ws(p + 1, end);
		if (p == end || *p != ':')
			return cn_fail(err, CN_EINPUT, "admin body: expected ':' after key '%s'", key);
		p = skip_ws(p + 1, end);
		const char *v = p, *ve;
		if (p < end && *p == '"') {
			v = ++p;
			while (p < end && *p != '"' && *p != '\\')
				p++;
			if (p == end || *p != '"')
				return cn_fail(err, CN_EINPUT, "admin body: unterminated string for key '%s'", key);
			ve = p++;
		} else {
			while (p < end && *p != ',' && *p != '}' && !isspace((unsigned char)*p))
				p++;
			ve = p;
		}
		if (copy_tok(val, sizeof val, v, ve) < 0)
			return cn_fail(err, CN_EINPUT, "admin body: value of key '%s' too long", key);
		if (sim_config_set(cfg, key, val, err) < 0)
			return -CN_EINPUT;
		p = skip_ws(p, end);
		if (p < end && *p == ',') {
			p = skip_ws(p + 1, end);
			continue;
		}
		if (p < end && *p == '}')
			break;
		return cn_fail(err, CN_EINPUT, "admin body: expected ',' or '}' after key '%s'", key);
	}
tail:
	p = skip_ws(p + 1, end);
	if (p != end)
		return cn_fail(err, CN_EINPUT, "admin body: trailing data after the json object");
	return 0;
}

static int apply_form(struct sim_config *cfg, const char *p, const char *end, struct cn_err *err)
{
	char key[64], val[128];
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pe = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(pe - p));
		while (pe > p && isspace((unsigned char)pe[-1]))
			pe--;
		if (pe > p) {
			if (!eq || copy_tok(key, sizeof key, p, eq) < 0 || copy_tok(val, sizeof val, eq + 1, pe) < 0)
				return cn_fail(err, CN_EINPUT, "admin body: expected key=value pairs separated by '&'");
			if (sim_config_set(cfg, key, val, err) < 0)
				return -CN_EINPUT;
		}
		p = amp ? amp + 1 : end;
	}
	return 0;
}

int sim_config_apply(struct sim_config *cfg, const char *body, size_t len, struct cn_err *err)
{
	struct sim_config tmp = *cfg;
	const char *end = body + len;
	const char *p = skip_ws(body, end);
	int rc = (p < end && *p == '{') ? apply_json(&tmp, p, end, err) : apply_form(&tmp, p, end, err);
	if (rc < 0)
		return rc;
	*cfg = tmp;
	return 0;
}

int sim_config_json(const struct sim_config *cfg, char *buf, size_t size)
{
	int n = snprintf(buf, size,
			 "{\"name\":\"%s\",\"latency_median\":%.9g,\"latency_sigma\":%.9g,\"ttft_median\":%.9g,"
			 "\"ttft_sigma\":%.9g,\"error_rate\":%.9g,\"tokens\":%ld,\"sleep\":%ld,\"metrics_garbage\":%ld,"
			 "\"prefill_per_token\":%.9g,\"long_prompt_tokens\":%ld,\"long_prompt_factor\":%.9g,"
			 "\"tool_call_malformed\":%.9g,\"tool_call_invalid\":%.9g,\"stream_cut\":%.9g,"
			 "\"generation_factor\":%.9g,\"features\":%ld}",
			 cfg->name, cfg->latency_median, cfg->latency_sigma, cfg->ttft_median, cfg->ttft_sigma,
			 cfg->error_rate, cfg->tokens, cfg->sleep, cfg->metrics_garbage, cfg->prefill_per_token,
			 cfg->long_prompt_tokens, cfg->long_prompt_factor, cfg->tool_call_malformed,
			 cfg->tool_call_invalid, cfg->stream_cut, cfg->generation_factor, cfg->features);
	return (n < 0 || (size_t)n >= size) ? -1 : n;
}

/* The simulator draws from the load generator's random source (canary/load.h): one xoshiro256** and one
 * Box-Muller in the tree, the same sequence for a seed as before. */
void sim_rng_seed(struct sim_rng *rng, uint64_t seed)
{
	cn_rng_seed(&rng->r, seed);
}

double sim_rng_uniform(struct sim_rng *rng)
{
	return cn_rng_uniform(&rng->r);
}

double sim_rng_lognormal(struct sim_rng *rng, double median, double sigma)
{
	return median * exp(sigma * cn_rng_normal(&rng->r));
}

void sim_hist_init(struct sim_hist *h, const double *le, int n)
{
	h->le = le;
	h->n = n > SIM_HIST_MAX ? SIM_HIST_MAX : n;
	sim_hist_reset(h);
}

void sim_hist_observe(struct sim_hist *h, double seconds)
{
	if (!(seconds > 0))
		seconds = 0;
	int i = 0;
	while (i < h->n && seconds > h->le[i])
		i++;
	atomic_fetch_add_explicit(&h->count[i], 1, memory_order_relaxed);
	double ns = seconds * 1e9;
	atomic_fetch_add_explicit(&h->sum_ns, ns > 1e18 ? (uint64_t)1e18 : (uint64_t)ns, memory_order_relaxed);
}

void sim_hist_reset(struct sim_hist *h)
{
	for (int i = 0; i <= SIM_HIST_MAX; i++)
		atomic_store(&h->count[i], 0);
	atomic_store(&h->sum_ns, 0);
}

/* Appends a formatted piece; returns -1 (and leaves *off) if it does not fit. */
static int put(char *buf, size_t size, size_t *off, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int put(char *buf, size_t size, size_t *off, const char *fmt, ...)
{
	va_list ap;
	if (*off >= size)
		return -1;
	va_start(ap, fmt);
	int n = vsnprintf(buf + *off, size - *off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size - *off)
		return -1;
	*off += (size_t)n;
	return 0;
}

int sim_hist_render(const struct sim_hist *h, const char *name, const char *help, const char *labels,
		    char *buf, size_t size, size_t *off)
{
	size_t o = *off;
	const char *sep = labels[0] ? "," : "";
	uint64_t cum = 0;
	if (put(buf, size, &o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name) < 0)
		return -1;
	for (int i = 0; i <= h->n; i++) {
		cum += atomic_load_explicit(&h->count[i], memory_order_relaxed);
		char le[32];
		if (i < h->n) {
			/* as Python's client prints bounds: 0.3, 1.0, 2560.0 */
			snprintf(le, sizeof le, "%.15g", h->le[i]);
			if (!strpbrk(le, ".e"))
				snprintf(le + strlen(le), sizeof le - strlen(le), ".0");
		} else {
			snprintf(le, sizeof le, "+Inf");
		}
		if (put(buf, size, &o, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, sep, le,
			(unsigned long long)cum) < 0)
			return -1;
	}
	double sum = (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9;
	if (put(buf, size, &o, "%s_sum{%s} %.9f\n%s_count{%s} %llu\n", name, labels, sum, name, labels,
		(unsigned long long)cum) < 0)
		return -1;
	*off = o;
	return 0;
}
