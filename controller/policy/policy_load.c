/* The policy file: its key tables (the one place that says which keys exist, their types, defaults and ranges),
 * the cross-key checks, and the public loader. */
#include "policy_int.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "canary/policy.h"
#include "canary/schema.h"

#define KEYS(a) (a), (sizeof(a) / sizeof((a)[0]))
#define NOLIM NAN, NAN

static const struct cn_enum_val approval_words[] = { { "none", 0 }, { "required", 1 }, { NULL, 0 } };
static const struct cn_enum_val metric_words[] = {
	{ "error_rate", CN_METRIC_ERROR_RATE }, { "latency", CN_METRIC_LATENCY },
	{ "ttft", CN_METRIC_TTFT },             { "itl", CN_METRIC_ITL },
	{ "tokens_per_second", CN_METRIC_TOKENS_PER_SECOND }, { "cost_per_1k_tokens", CN_METRIC_COST_PER_1K },
	{ NULL, 0 },
};
static const struct cn_enum_val judge_words[] = {
	{ "threshold", CN_JUDGE_THRESHOLD }, { "sequential", CN_JUDGE_SEQUENTIAL }, { NULL, 0 } };
static const struct cn_enum_val inconclusive_words[] = {
	{ "pause", CN_FALLBACK_PAUSE }, { "rollback", CN_FALLBACK_ROLLBACK }, { NULL, 0 } };
static const struct cn_enum_val failure_words[] = {
	{ "rollback", CN_FALLBACK_ROLLBACK }, { "pause", CN_FALLBACK_PAUSE }, { NULL, 0 } };
static const struct cn_enum_val timeout_words[] = {
	{ "rollback", CN_FALLBACK_ROLLBACK }, { "wait", CN_FALLBACK_WAIT }, { NULL, 0 } };

#define F(type, field) .offset = offsetof(type, field), .size = sizeof(((type *)0)->field)

static const struct cn_key step_keys[] = {
	{ .name = "weight", .type = CN_KT_PERCENT, .flags = CN_KEY_REQUIRED, F(struct cn_step, weight),
	  .min = 0, .max = 100, .range = CN_RANGE_MIN_EXCL,
	  .doc = "candidate share of traffic at this step, (0%, 100%]; strictly increasing; the last step is 100%" },
	{ .name = "hold", .type = CN_KT_DURATION, .flags = CN_KEY_REQUIRED, F(struct cn_step, hold_ms), .min = NAN,
	  .max = NAN, .doc = "minimum time at this step before it may advance (or, at the last step, promote)" },
	{ .name = "approval", .type = CN_KT_ENUM, F(struct cn_step, approval), .def = "none", .min = NAN, .max = NAN,
	  .enums = approval_words, .doc = "required: a person must approve before this step's weight is applied" },
};

static const struct cn_schema step_schema = {
	.name = "step", .keys = KEYS(step_keys),
	.item_size = sizeof(struct cn_step), .max_items = CN_MAX_STEPS, .count_offset = offsetof(struct cn_policy, nsteps),
};

static const struct cn_key analysis_keys[] = {
	{ .name = "interval", .type = CN_KT_DURATION, F(struct cn_analysis, interval_ms), .def = "10s",
	  .min = 100, .max = 3600000, .doc = "time between two ticks (judgements), 100ms .. 1h" },
	{ .name = "min_requests", .type = CN_KT_INT, F(struct cn_analysis, min_requests), .def = "100", .min = 1,
	  .max = 1e12, .doc = "candidate requests needed in a step before it may advance" },
	{ .name = "failing_ticks", .type = CN_KT_INT, F(struct cn_analysis, failing_ticks), .def = "3", .min = 1,
	  .max = 1000, .doc = "consecutive failing ticks that confirm a regression" },
	{ .name = "inconclusive_timeout", .type = CN_KT_DURATION, F(struct cn_analysis, inconclusive_timeout_ms),
	  .def = "5m", .min = NAN, .max = NAN, .doc = "how long verdicts may stay inconclusive before on_inconclusive" },
	{ .name = "on_inconclusive", .type = CN_KT_ENUM, F(struct cn_analysis, on_inconclusive), .def = "pause",
	  .min = NAN, .max = NAN, .enums = inconclusive_words, .doc = "pause | rollback" },
	{ .name = "judge", .type = CN_KT_ENUM, F(struct cn_analysis, judge), .def = "threshold", .min = NAN, .max = NAN,
	  .enums = judge_words, .doc = "threshold | sequential" },
	{ .name = "false_rollback_budget", .type = CN_KT_FRACTION, F(struct cn_analysis, false_rollback_budget),
	  .def = "1%", .min = 0, .max = 0.5, .range = CN_RANGE_MIN_EXCL | CN_RANGE_MAX_EXCL,
	  .doc = "both judges: accepted chance of rolling back a healthy candidate, (0%, 50%)" },
};

static const struct cn_schema analysis_schema = { .name = "analysis", .keys = KEYS(analysis_keys) };

static int check_slo(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals);

static const struct cn_key slo_keys[] = {
	{ .name = "name", .type = CN_KT_NAME, .flags = CN_KEY_REQUIRED, F(struct cn_slo, name), .min = NAN, .max = NAN,
	  .doc = "unique within the policy, e.g. p99-latency" },
	{ .name = "metric", .type = CN_KT_ENUM, .flags = CN_KEY_REQUIRED, F(struct cn_slo, metric), .min = NAN,
	  .max = NAN, .enums = metric_words, .doc = "error_rate | latency | ttft | itl | tokens_per_second | "
	  "cost_per_1k_tokens (the last two need token counters; cost_per_1k_tokens also a cost for each slot)" },
	{ .name = "quantile", .type = CN_KT_NUMBER, F(struct cn_slo, quantile), .min = 0, .max = 1,
	  .range = CN_RANGE_MIN_EXCL | CN_RANGE_MAX_EXCL, .doc = "required for latency, ttft and itl; in (0, 1)" },
	{ .name = "max", .type = CN_KT_LIMIT, F(struct cn_slo, max), .min = 0, .max = NAN,
	  .doc = "absolute maximum: a percentage for error_rate, a duration for latencies, a price (a number, in the "
		 "service's cost unit) for cost_per_1k_tokens" },
	{ .name = "max_increase", .type = CN_KT_RATIO, F(struct cn_slo, max_increase), .min = 1, .max = NAN,
	  .doc = "maximum candidate/baseline ratio, at least 1x" },
	{ .name = "min_ratio", .type = CN_KT_RATIO, F(struct cn_slo, min_ratio), .min = 0, .max = 1,
	  .range = CN_RANGE_MIN_EXCL, .doc = "tokens_per_second, required: minimum candidate/baseline ratio, "
	  "(0x, 1x], e.g. 0.9x" },
	{ .name = "tolerance", .type = CN_KT_RATIO, F(struct cn_slo, tolerance), .min = 1, .max = NAN,
	  .doc = "sequential judge: acceptable ratio of bad-event rates; default max_increase" },
};

static const struct cn_schema slo_schema = {
	.name = "slo", .keys = KEYS(slo_keys), .item_size = sizeof(struct cn_slo), .max_items = CN_MAX_SLOS,
	.count_offset = offsetof(struct cn_policy, nslos), .check = check_slo,
};

static const struct cn_key approval_keys[] = {
	{ .name = "timeout", .type = CN_KT_DURATION0, F(struct cn_policy, approval_timeout_ms), .def = "0",
	  .min = NAN, .max = NAN, .doc = "how long to wait for an approval; 0 or absent: for ever" },
	{ .name = "on_timeout", .type = CN_KT_ENUM, F(struct cn_policy, on_approval_timeout), .def = "rollback",
	  .min = NAN, .max = NAN, .enums = timeout_words, .doc = "rollback | wait" },
	{ .name = "distinct_approver", .type = CN_KT_BOOL, F(struct cn_policy, approver_must_differ), .def = "false",
	  .min = NAN, .max = NAN, .doc = "the approver may not be who started the rollout" },
};

/* Its keys' offsets are relative to struct cn_policy, so the section is stored at offset 0. */
static const struct cn_schema approval_schema = { .name = "approval", .keys = KEYS(approval_keys) };

static int check_policy(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals);

static const struct cn_schema notify_schema = {
	.name = "notify", .keys = cn_notify_hook_keys, .nkeys = CN_NOTIFY_HOOK_NKEYS, .check = cn_notify_hook_check_policy,
	.item_size = sizeof(struct cn_notify_hook), .max_items = CN_NOTIFY_MAX_HOOKS,
	.count_offset = offsetof(struct cn_policy, notify.nhooks),
};

static const struct cn_key policy_keys[] = {
	{ .name = "name", .type = CN_KT_NAME, .flags = CN_KEY_REQUIRED, F(struct cn_policy, name), .min = NAN,
	  .max = NAN, .doc = "the policy's name; rollouts refer to it" },
	{ .name = "description", .type = CN_KT_STRING, F(struct cn_policy, description), .min = NAN, .max = NAN,
	  .doc = "one line for people" },
	{ .name = "steps", .type = CN_KT_LIST, .flags = CN_KEY_REQUIRED, .offset = offsetof(struct cn_policy, steps),
	  .min = NAN, .max = NAN, .sub = &step_schema, .doc = "the ramp: weight, hold, approval" },
	{ .name = "analysis", .type = CN_KT_MAP, .offset = offsetof(struct cn_policy, analysis), .min = NAN,
	  .max = NAN, .sub = &analysis_schema, .doc = "how the candidate is judged" },
	{ .name = "slos", .type = CN_KT_LIST, .flags = CN_KEY_REQUIRED, .offset = offsetof(struct cn_policy, slos),
	  .min = NAN, .max = NAN, .sub = &slo_schema, .doc = "objectives the candidate must meet" },
	{ .name = "on_failure", .type = CN_KT_ENUM, F(struct cn_policy, on_failure), .def = "rollback", .min = NAN,
	  .max = NAN, .enums = failure_words, .doc = "rollback | pause" },
	{ .name = "approval", .type = CN_KT_MAP, .offset = 0, .min = NAN, .max = NAN, .sub = &approval_schema,
	  .doc = "how approvals behave" },
	{ .name = "notify", .type = CN_KT_LIST, .offset = offsetof(struct cn_policy, notify.hooks), .min = NAN,
	  .max = NAN, .sub = &notify_schema, .doc = "webhooks for this policy's rollouts (see Notifications)" },
	{ .name = "preflight", .type = CN_KT_MAP, .offset = offsetof(struct cn_policy, preflight), .min = NAN,
	  .max = NAN, .sub = &cn_preflight_schema,
	  .doc = "before step 1, drive the candidate's slot directly with a workload and judge it (see Pre-flight)" },
};

static const struct cn_schema policy_schema = {
	.name = "policy", .keys = KEYS(policy_keys), .check = check_policy,
};

const struct cn_schema *cn_policy_schema(void)
{
	return &policy_schema;
}

static int check_slo(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals)
{
	struct cn_slo *slo = obj;
	const struct cn_ynode *q = cn_schema_val(&slo_schema, vals, "quantile");
	const struct cn_ynode *mx = cn_schema_val(&slo_schema, vals, "max");
	const struct cn_ynode *mr = cn_schema_val(&slo_schema, vals, "min_ratio");
	bool econ = CN_METRIC_IS_ECON(slo->metric);
	bool hist = slo->metric != CN_METRIC_ERROR_RATE && !econ;

	if (econ) {
		const struct cn_ynode *mi = cn_schema_val(&slo_schema, vals, "max_increase");
		const struct cn_ynode *tol = cn_schema_val(&slo_schema, vals, "tolerance");
		if (q)
			return cn_ld_fail(ld, q, "slo '%s': quantile applies only to latency, ttft and itl; remove it",
					  slo->name);
		if (tol)
			return cn_ld_fail(ld, tol, "slo '%s': tolerance is for bad-event rates; %s is judged on its ratio "
					  "to the baseline (%s)", slo->name, cn_metric_name(slo->metric),
					  slo->metric == CN_METRIC_COST_PER_1K ? "max_increase" : "min_ratio");
		if (slo->metric == CN_METRIC_TOKENS_PER_SECOND) {
			if (mx || mi)
				return cn_ld_fail(ld, mx ? mx : mi, "slo '%s': tokens_per_second is better when higher: give "
						  "'min_ratio' (e.g. 'min_ratio: 0.9x'), not %s", slo->name,
						  mx ? "max" : "max_increase");
			if (!mr)
				return cn_ld_fail(ld, map, "slo '%s': tokens_per_second needs 'min_ratio', the lowest "
						  "candidate/baseline throughput ratio, e.g. 'min_ratio: 0.9x'", slo->name);
			return 0;
		}
		if (mr)
			return cn_ld_fail(ld, mr, "slo '%s': min_ratio applies only to tokens_per_second; for %s use "
					  "max_increase", slo->name, cn_metric_name(slo->metric));
		if (mx && (strchr(mx->text, '%') || !cn_limit_is_number(mx->text)))
			return cn_ld_fail(ld, mx, "slo '%s': max for cost_per_1k_tokens must be a price such as '0.02' (in "
					  "the unit of the service's costs), got '%s'", slo->name, mx->text);
		if (isnan(slo->max) && isnan(slo->max_increase))
			return cn_ld_fail(ld, map, "slo '%s' needs 'max_increase' (e.g. 1.1x), 'max' or both", slo->name);
		return 0;
	}
	if (mr)
		return cn_ld_fail(ld, mr, "slo '%s': min_ratio applies only to tokens_per_second; remove it", slo->name);

	if (hist && !q)
		return cn_ld_fail(ld, map, "slo '%s': metric '%s' needs a quantile, e.g. 'quantile: 0.99'", slo->name,
				  cn_metric_name(slo->metric));
	if (!hist && q)
		return cn_ld_fail(ld, q, "slo '%s': quantile applies only to latency, ttft and itl; remove it",
				  slo->name);
	if (mx) {
		bool pct = strchr(mx->text, '%') != NULL;
		if (!hist && !pct)
			return cn_ld_fail(ld, mx, "slo '%s': max for error_rate must be a percentage such as '1%%', got '%s'",
					  slo->name, mx->text);
		if (hist && (pct || cn_limit_is_number(mx->text)))
			return cn_ld_fail(ld, mx, "slo '%s': max for %s must be a duration such as '2s', got '%s'",
					  slo->name, cn_metric_name(slo->metric), mx->text);
	}
	if (isnan(slo->max) && isnan(slo->max_increase))
		return cn_ld_fail(ld, map, "slo '%s' needs 'max', 'max_increase' or both", slo->name);
	return 0;
}

static int check_policy(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals)
{
	struct cn_policy *p = obj;
	const struct cn_ynode *steps = cn_schema_val(&policy_schema, vals, "steps");
	const struct cn_ynode *slos = cn_schema_val(&policy_schema, vals, "slos");
	(void)map;

	for (int i = 1; i < p->nsteps; i++) {
		if (!(p->steps[i].weight > p->steps[i - 1].weight)) {
			const struct cn_ynode *w = cn_ynode_get(steps->kids[i], "weight");
			return cn_ld_fail(ld, w,
					  "step %d weight '%s' is not above step %d's %g%%; weights must increase strictly",
					  i + 1, w->text, i, p->steps[i - 1].weight);
		}
	}
	if (p->steps[p->nsteps - 1].weight != 100) {
		const struct cn_ynode *w = cn_ynode_get(steps->kids[p->nsteps - 1], "weight");
		return cn_ld_fail(ld, w, "the last step's weight is '%s'; it must be 100%% (the candidate then takes all traffic)",
				  w->text);
	}
	/* Objectives that compare with the baseline need a step in which the baseline has traffic: a first step at
	 * 100% never measures it, and a relative limit would silently drop out (the 100% step is judged against the
	 * baseline frozen from the earlier steps). */
	if (p->steps[0].weight >= 100) {
		const struct cn_ynode *w = cn_ynode_get(steps->kids[0], "weight");
		if (p->analysis.judge == CN_JUDGE_SEQUENTIAL)
			return cn_ld_fail(ld, w, "step 1 sends 100%% of traffic to the candidate, so the baseline is never "
					  "measured and the sequential judge (which compares the two) could never roll back; "
					  "add a step below 100%% first, or use 'judge: threshold' with 'max' limits");
		for (int i = 0; i < p->nslos; i++) {
			const struct cn_slo *s = &p->slos[i];
			if (isnan(s->max_increase))
				continue;
			const struct cn_ynode *mi = cn_ynode_get(slos->kids[i], "max_increase");
			return cn_ld_fail(ld, mi ? mi : slos->kids[i],
					  "slo '%s': max_increase compares with the baseline, but step 1 already sends 100%% "
					  "of traffic to the candidate, so the baseline is never measured; add a step below "
					  "100%% first, or judge this slo with 'max' only", s->name);
		}
	}
	for (int i = 0; i < p->nslos; i++)
		for (int j = 0; j < i; j++)
			if (strcmp(p->slos[i].name, p->slos[j].name) == 0)
				return cn_ld_fail(ld, cn_ynode_get(slos->kids[i], "name"),
						  "slo name '%s' is used twice (entries %d and %d); names must be unique",
						  p->slos[i].name, j + 1, i + 1);
	return 0;
}

int cn_policy_parse(const char *text, size_t len, const char *origin, struct cn_policy *out, struct cn_err *err)
{
	struct cn_err scratch;
	if (!err)
		err = &scratch;
	struct cn_load ld = { .origin = origin ? origin : "<input>", .err = err };
	struct cn_policy *p = calloc(1, sizeof *p);
	if (!p)
		return cn_fail(err, CN_EINTERNAL, "out of memory loading %s", ld.origin);
	int rc = cn_schema_parse(&ld, text, len, &policy_schema, "policy",
				 "empty file; expected a policy with name, steps and slos", p);
	if (rc == 0)
		*out = *p;
	free(p);
	return rc;
}

/* cn_policy_parse as a cn_yaml_parse_fn. */
static int parse_policy(const char *text, size_t len, const char *origin, void *out, struct cn_err *err)
{
	return cn_policy_parse(text, len, origin, out, err);
}

int cn_policy_load_file(const char *path, struct cn_policy *out, char **source_out, struct cn_err *err)
{
	return cn_yaml_load_file(path, parse_policy, out, source_out, err);
}

static const char *word_of(const struct cn_enum_val *words, int v)
{
	for (const struct cn_enum_val *e = words; e->name; e++)
		if (e->value == v)
			return e->name;
	return "unknown";
}

const char *cn_metric_name(enum cn_slo_metric m)
{
	return word_of(metric_words, (int)m);
}

const char *cn_judge_name(enum cn_judge_kind j)
{
	return word_of(judge_words, (int)j);
}

const char *cn_fallback_name(enum cn_fallback f)
{
	return f == CN_FALLBACK_WAIT ? "wait" : word_of(failure_words, (int)f);
}
