/* A policy's preflight: section: the workload profile (the profile file's keys, inline, so the policy version pins
 * it), the comparison, and the SLOs the candidate must hold before any live traffic moves, including the contract
 * violation rate. Checked with the same engine and messages as the rest of the policy. */
#include "policy_int.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "canary/preflight-t.h"

#define KEYS(a) (a), (sizeof(a) / sizeof((a)[0]))
#define F(type, field) .offset = offsetof(type, field), .size = sizeof(((type *)0)->field)

static const struct cn_enum_val pf_metric_words[] = {
	{ "error_rate", CN_PF_ERROR_RATE }, { "latency", CN_PF_LATENCY },
	{ "ttft", CN_PF_TTFT },             { "itl", CN_PF_ITL },
	{ "contract_violations", CN_PF_CONTRACT_VIOLATIONS }, { NULL, 0 },
};
static const struct cn_enum_val compare_words[] = {
	{ "baseline", CN_PF_COMPARE_BASELINE }, { "none", CN_PF_COMPARE_NONE }, { NULL, 0 } };

static int check_pf_slo(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals);
static int check_preflight(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals);

static const struct cn_key pf_slo_keys[] = {
	{ .name = "name", .type = CN_KT_NAME, .flags = CN_KEY_REQUIRED, F(struct cn_pf_slo, name), .min = NAN,
	  .max = NAN, .doc = "unique within the pre-flight, e.g. long-tail-ttft" },
	{ .name = "metric", .type = CN_KT_ENUM, .flags = CN_KEY_REQUIRED, F(struct cn_pf_slo, metric), .min = NAN,
	  .max = NAN, .enums = pf_metric_words,
	  .doc = "error_rate | latency | ttft | itl | contract_violations (answers that break the service's contract)" },
	{ .name = "quantile", .type = CN_KT_NUMBER, F(struct cn_pf_slo, quantile), .min = 0, .max = 1,
	  .range = CN_RANGE_MIN_EXCL | CN_RANGE_MAX_EXCL, .doc = "required for latency, ttft and itl; in (0, 1)" },
	{ .name = "max", .type = CN_KT_LIMIT, F(struct cn_pf_slo, max), .min = 0, .max = NAN,
	  .doc = "absolute maximum in every band: a percentage for the rates, a duration for latencies" },
	{ .name = "max_increase", .type = CN_KT_RATIO, F(struct cn_pf_slo, max_increase), .min = 1, .max = NAN,
	  .doc = "maximum candidate/baseline ratio in every band (compare: baseline), at least 1x" },
};

static const struct cn_schema pf_slo_schema = {
	.name = "slo", .keys = KEYS(pf_slo_keys), .item_size = sizeof(struct cn_pf_slo), .max_items = CN_PF_MAX_SLOS,
	.count_offset = offsetof(struct cn_preflight, nslos), .check = check_pf_slo,
};

static const struct cn_key preflight_keys[] = {
	{ .name = "profile", .type = CN_KT_MAP, .flags = CN_KEY_REQUIRED, .offset = offsetof(struct cn_preflight, profile),
	  .min = NAN, .max = NAN, .sub = &cn_profile_doc_schema,
	  .doc = "the workload, with the keys of a profile file (canaryctl profile lint): rate, duration, bursts, "
		 "prompt and output lengths, stream, endpoint, model, timeout" },
	{ .name = "compare", .type = CN_KT_ENUM, F(struct cn_preflight, compare), .def = "baseline", .min = NAN,
	  .max = NAN, .enums = compare_words,
	  .doc = "baseline: the live slot gets the same prompts in the same order, interleaved in time, for max_increase "
		 "| none: the candidate alone, absolute limits only" },
	{ .name = "min_requests", .type = CN_KT_INT, F(struct cn_preflight, min_requests), .def = "50", .min = 1,
	  .max = 1e9, .doc = "requests a prompt-length band needs before a verdict may fail it" },
	{ .name = "slos", .type = CN_KT_LIST, .flags = CN_KEY_REQUIRED, .offset = offsetof(struct cn_preflight, slos),
	  .min = NAN, .max = NAN, .sub = &pf_slo_schema,
	  .doc = "objectives the candidate must hold in every prompt-length band (short, median, long tail)" },
};

const struct cn_schema cn_preflight_schema = { .name = "preflight", .keys = KEYS(preflight_keys),
					       .check = check_preflight };

static int check_pf_slo(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals)
{
	struct cn_pf_slo *s = obj;
	const struct cn_ynode *q = cn_schema_val(&pf_slo_schema, vals, "quantile");
	const struct cn_ynode *mx = cn_schema_val(&pf_slo_schema, vals, "max");
	const struct cn_ynode *mi = cn_schema_val(&pf_slo_schema, vals, "max_increase");
	bool rate = s->metric == CN_PF_ERROR_RATE || s->metric == CN_PF_CONTRACT_VIOLATIONS;

	if (!rate && !q)
		return cn_ld_fail(ld, map, "slo '%s': a latency needs a quantile, e.g. 'quantile: 0.99'", s->name);
	if (rate && q)
		return cn_ld_fail(ld, q, "slo '%s': quantile applies only to latency, ttft and itl; remove it", s->name);
	if (mx) {
		bool pct = strchr(mx->text, '%') != NULL;
		if (rate && !pct)
			return cn_ld_fail(ld, mx, "slo '%s': max of a rate must be a percentage such as '1%%', got '%s'",
					  s->name, mx->text);
		if (!rate && (pct || cn_limit_is_number(mx->text))) /* a plain number is a price (cost_per_1k_tokens) */
			return cn_ld_fail(ld, mx, "slo '%s': max of a latency must be a duration such as '2s', got '%s'",
					  s->name, mx->text);
	}
	if (s->metric == CN_PF_CONTRACT_VIOLATIONS && mi)
		return cn_ld_fail(ld, mi, "slo '%s': contract_violations takes an absolute max only (a contract is "
				  "kept or broken, whatever the baseline does); remove max_increase", s->name);
	if (s->metric == CN_PF_CONTRACT_VIOLATIONS && !mx)
		return cn_ld_fail(ld, map, "slo '%s': contract_violations needs a max, e.g. 'max: 0.5%%'", s->name);
	if (isnan(s->max) && isnan(s->max_increase))
		return cn_ld_fail(ld, map, "slo '%s' needs 'max', 'max_increase' or both", s->name);
	return 0;
}

static int check_preflight(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals)
{
	struct cn_preflight *pf = obj;
	const struct cn_ynode *slos = cn_schema_val(&cn_preflight_schema, vals, "slos");
	const struct cn_ynode *prof = cn_schema_val(&cn_preflight_schema, vals, "profile");
	(void)map;
	for (int i = 0; i < pf->nslos; i++) {
		const struct cn_pf_slo *s = &pf->slos[i];
		for (int j = 0; j < i; j++)
			if (strcmp(pf->slos[j].name, s->name) == 0)
				return cn_ld_fail(ld, cn_ynode_get(slos->kids[i], "name"),
						  "slo '%s' is named twice in the pre-flight; names must be unique", s->name);
		if (pf->compare == CN_PF_COMPARE_NONE && !isnan(s->max_increase))
			return cn_ld_fail(ld, cn_ynode_get(slos->kids[i], "max_increase"),
					  "slo '%s': max_increase compares with the baseline, but 'compare: none' runs the "
					  "candidate alone; use 'compare: baseline' or an absolute max", s->name);
		if ((s->metric == CN_PF_TTFT || s->metric == CN_PF_ITL) && !pf->profile.stream)
			return cn_ld_fail(ld, cn_ynode_get(slos->kids[i], "metric"),
					  "slo '%s': %s is measured on streamed answers only; set 'stream: true' in the "
					  "pre-flight's profile", s->name, s->metric == CN_PF_TTFT ? "ttft" : "itl");
	}
	if (pf->profile.prompts_file[0] && pf->profile.prompts_file[0] != '/')
		return cn_ld_fail(ld, cn_ynode_get(prof, "prompts_file"),
				  "prompts_file '%s' must be an absolute path in a policy (canaryd reads it, from its own "
				  "working directory)", pf->profile.prompts_file);
	pf->enabled = true;
	return 0;
}
