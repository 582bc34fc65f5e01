/* The SLA contract file: its key table (objectives, price, the credit table, how minutes without data count), the
 * checks that need several keys, and the loader. Same engine and messages as policy files. */
#include "policy_int.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/sla_contract.h"
#include "canary/parse.h"

#define KEYS(a) (a), (sizeof(a) / sizeof((a)[0]))
#define F(type, field) .offset = offsetof(type, field), .size = sizeof(((type *)0)->field)

static const struct cn_enum_val metric_words[] = {
	{ "latency", CN_SLA_LATENCY }, { "ttft", CN_SLA_TTFT }, { "availability", CN_SLA_AVAILABILITY }, { NULL, 0 } };
static const struct cn_enum_val nodata_words[] = {
	{ "miss", CN_SLA_NODATA_MISS }, { "exclude", CN_SLA_NODATA_EXCLUDE }, { NULL, 0 } };

static int check_objective(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals);
/* A lower attainment never earns less: catches a table written upside down. */
static int check_credits(struct cn_load *ld, const struct cn_sla_credit *t, int n, const struct cn_ynode *list)
{
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
			if (t[i].below < t[j].below && t[i].credit < t[j].credit)
				return cn_ld_fail(ld, cn_ynode_get(list->kids[i], "credit"),
						  "credit %g%% below %g%% is smaller than %g%% below %g%%: a lower "
						  "attainment cannot earn a smaller credit", t[i].credit * 100,
						  t[i].below * 100, t[j].credit * 100, t[j].below * 100);
	return 0;
}

static int check_contract(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals);

static const struct cn_key credit_keys[] = {
	{ .name = "below", .type = CN_KT_FRACTION, .flags = CN_KEY_REQUIRED, F(struct cn_sla_credit, below), .min = 0,
	  .max = 1, .range = CN_RANGE_MIN_EXCL, .doc = "an objective's attainment below this ..." },
	{ .name = "credit", .type = CN_KT_FRACTION, .flags = CN_KEY_REQUIRED, F(struct cn_sla_credit, credit),
	  .min = 0, .max = 1, .range = CN_RANGE_MIN_EXCL, .doc = "... earns this share of the month's price" },
};
/* the contract's table, and an objective's own (the element count sits in each's struct) */
static const struct cn_schema credit_schema = {
	.name = "credit", .keys = KEYS(credit_keys), .item_size = sizeof(struct cn_sla_credit),
	.max_items = CN_SLA_MAX_CREDITS, .count_offset = offsetof(struct cn_sla_contract, ncredits),
};

static const struct cn_schema objective_credit_schema = {
	.name = "credit", .keys = KEYS(credit_keys), .item_size = sizeof(struct cn_sla_credit),
	.max_items = CN_SLA_MAX_CREDITS, .count_offset = offsetof(struct cn_sla_objective, ncredits),
};

static const struct cn_key objective_keys[] = {
	{ .name = "name", .type = CN_KT_NAME, .flags = CN_KEY_REQUIRED, F(struct cn_sla_objective, name), .min = NAN,
	  .max = NAN, .doc = "unique within the contract, e.g. p99-latency" },
	{ .name = "metric", .type = CN_KT_ENUM, .flags = CN_KEY_REQUIRED, F(struct cn_sla_objective, metric),
	  .min = NAN, .max = NAN, .enums = metric_words,
	  .doc = "latency (end to end) | ttft (time to first token) | availability (requests that did not fail)" },
	{ .name = "quantile", .type = CN_KT_NUMBER, F(struct cn_sla_objective, quantile), .min = 0, .max = 1,
	  .range = CN_RANGE_MIN_EXCL | CN_RANGE_MAX_EXCL, .doc = "latency and ttft: the quantile, e.g. 0.99; in (0, 1)" },
	{ .name = "max", .type = CN_KT_DURATION, F(struct cn_sla_objective, max_ms), .min = NAN, .max = NAN,
	  .doc = "latency and ttft: the quantile's limit, e.g. 800ms" },
	{ .name = "min", .type = CN_KT_FRACTION, F(struct cn_sla_objective, min), .min = 0, .max = 1,
	  .range = CN_RANGE_MIN_EXCL, .doc = "availability: the lowest share of requests that did not fail, e.g. 99.9%" },
	{ .name = "window", .type = CN_KT_STRING, F(struct cn_sla_objective, window), .def = "month", .min = NAN,
	  .max = NAN, .doc = "month (the UTC calendar month as one window) or a duration of whole minutes that divides "
			     "a day, e.g. 5m (windows aligned to midnight UTC)" },
	{ .name = "target", .type = CN_KT_FRACTION, F(struct cn_sla_objective, target), .min = 0, .max = 1,
	  .range = CN_RANGE_MIN_EXCL, .doc = "windows shorter than the month: the share of windows that must meet the "
					     "objective (required there; not allowed with window: month)" },
	{ .name = "credits", .type = CN_KT_LIST, .offset = offsetof(struct cn_sla_objective, credits), .min = NAN,
	  .max = NAN, .sub = &objective_credit_schema,
	  .doc = "this objective's own credit table (below, credit), instead of the contract's" },
};
static const struct cn_schema objective_schema = {
	.name = "objective", .keys = KEYS(objective_keys), .item_size = sizeof(struct cn_sla_objective),
	.max_items = CN_SLA_MAX_OBJECTIVES, .count_offset = offsetof(struct cn_sla_contract, nobjectives),
	.check = check_objective,
};

static const struct cn_key contract_keys[] = {
	{ .name = "name", .type = CN_KT_NAME, .flags = CN_KEY_REQUIRED, F(struct cn_sla_contract, name), .min = NAN,
	  .max = NAN, .doc = "the contract's name" },
	{ .name = "description", .type = CN_KT_STRING, F(struct cn_sla_contract, description), .min = NAN, .max = NAN,
	  .doc = "one line for people" },
	{ .name = "service", .type = CN_KT_NAME, F(struct cn_sla_contract, service), .min = NAN, .max = NAN,
	  .doc = "the service it covers; `sla report --service` must name it (absent: any service)" },
	{ .name = "price", .type = CN_KT_NUMBER, F(struct cn_sla_contract, price), .def = "0", .min = 0, .max = 1e15,
	  .doc = "the month's price, at least 0; credits are shares of it" },
	{ .name = "currency", .type = CN_KT_STRING, F(struct cn_sla_contract, currency), .def = "USD", .min = NAN,
	  .max = NAN, .doc = "the price's currency, shown with amounts" },
	{ .name = "no_data", .type = CN_KT_ENUM, F(struct cn_sla_contract, no_data), .def = "miss", .min = NAN, .max = NAN,
	  .enums = nodata_words, .doc = "a minute canaryd has no numbers for: miss (its window is missed; a month-long "
					"objective counts it as all bad) | exclude (left out of the attainment)" },
	{ .name = "objectives", .type = CN_KT_LIST, .flags = CN_KEY_REQUIRED,
	  .offset = offsetof(struct cn_sla_contract, objectives), .min = NAN, .max = NAN, .sub = &objective_schema,
	  .doc = "what the service promises" },
	{ .name = "credits", .type = CN_KT_LIST, .offset = offsetof(struct cn_sla_contract, credits), .min = NAN,
	  .max = NAN, .sub = &credit_schema,
	  .doc = "the credit table: each objective's attainment is looked up; the month's credit is the largest" },
};
const struct cn_schema cn_sla_contract_doc_schema = { .name = "contract", .keys = KEYS(contract_keys),
						      .check = check_contract };

const struct cn_schema *cn_sla_contract_schema(void)
{
	return &cn_sla_contract_doc_schema;
}

static const char *metric_word(int metric)
{
	for (const struct cn_enum_val *e = metric_words; e->name; e++)
		if (e->value == metric)
			return e->name;
	return "?";
}

static int check_objective(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals)
{
	struct cn_sla_objective *o = obj;
	const struct cn_ynode *metric = cn_schema_val(&objective_schema, vals, "metric");
	const struct cn_ynode *q = cn_schema_val(&objective_schema, vals, "quantile");
	const struct cn_ynode *max = cn_schema_val(&objective_schema, vals, "max");
	const struct cn_ynode *min = cn_schema_val(&objective_schema, vals, "min");
	const struct cn_ynode *win = cn_schema_val(&objective_schema, vals, "window");
	const struct cn_ynode *target = cn_schema_val(&objective_schema, vals, "target");
	const struct cn_ynode *credits = cn_schema_val(&objective_schema, vals, "credits");
	const struct cn_ynode *at = metric ? metric : map;
	if (credits && check_credits(ld, o->credits, o->ncredits, credits) < 0)
		return -CN_EINPUT;
	snprintf(o->metric_at, sizeof o->metric_at, "%s:%d:%d", ld->origin, at->line, at->col);
	if (o->metric == CN_SLA_AVAILABILITY) {
		if (q || max)
			return cn_ld_fail(ld, q ? q : max, "objective '%s': availability takes min (e.g. 99.9%%), not %s",
					  o->name, q ? "quantile" : "max");
		if (!min)
			return cn_ld_fail(ld, map, "objective '%s': availability needs min (e.g. min: 99.9%%)", o->name);
	} else {
		if (min)
			return cn_ld_fail(ld, min, "objective '%s': %s takes quantile and max, not min", o->name,
					  metric_word(o->metric));
		if (!q || !max)
			return cn_ld_fail(ld, map, "objective '%s': %s needs quantile and max (e.g. quantile: 0.99, "
					  "max: 800ms)", o->name, metric_word(o->metric));
	}
	if (strcmp(o->window, "month") == 0) {
		o->window_ms = 0;
		if (target)
			return cn_ld_fail(ld, target, "objective '%s': target is for windows shorter than the month; a "
					  "month-long objective's attainment is its share of good requests", o->name);
		o->target = NAN;
		return 0;
	}
	struct cn_err perr = {0};
	int64_t ms = 0;
	if (cn_parse_duration_ms(o->window, 0, &ms, &perr) < 0)
		return cn_ld_fail(ld, win, "objective '%s': window '%s' is neither 'month' nor a duration: %s", o->name,
				  o->window, perr.msg);
	if (ms % CN_SLA_MINUTE_MS != 0 || 86400000 % ms != 0)
		return cn_ld_fail(ld, win, "objective '%s': window '%s' cannot be computed from the ledger's minutes: use "
				  "whole minutes that divide a day (1m, 5m, 10m, 15m, 30m, 1h ... 24h) or 'month'",
				  o->name, o->window);
	o->window_ms = ms;
	if (!target)
		return cn_ld_fail(ld, map, "objective '%s': a %s window needs target, the share of windows that must "
				  "meet it (e.g. target: 99%%)", o->name, o->window);
	return 0;
}

static int check_contract(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals)
{
	struct cn_sla_contract *c = obj;
	const struct cn_ynode *objs = cn_schema_val(&cn_sla_contract_doc_schema, vals, "objectives");
	const struct cn_ynode *credits = cn_schema_val(&cn_sla_contract_doc_schema, vals, "credits");
	(void)map;
	for (int i = 0; i < c->nobjectives; i++)
		for (int j = 0; j < i; j++)
			if (strcmp(c->objectives[i].name, c->objectives[j].name) == 0)
				return cn_ld_fail(ld, cn_ynode_get(objs->kids[i], "name"),
						  "objective name '%s' is used twice", c->objectives[i].name);
	int rc = check_credits(ld, c->credits, c->ncredits, credits);
	if (rc < 0)
		return rc;
	const struct cn_ynode *svc = cn_schema_val(&cn_sla_contract_doc_schema, vals, "service");
	if (svc)
		snprintf(c->service_at, sizeof c->service_at, "%s:%d:%d", ld->origin, svc->line, svc->col);
	if (!c->currency[0])
		return cn_ld_fail(ld, cn_schema_val(&cn_sla_contract_doc_schema, vals, "currency"), "currency is empty");
	return 0;
}

int cn_sla_contract_parse(const char *text, size_t len, const char *origin, struct cn_sla_contract *out, struct cn_err *err)
{
	struct cn_load ld = { .origin = origin ? origin : "contract", .err = err };
	struct cn_sla_contract *c = calloc(1, sizeof *c);
	if (!c)
		return cn_fail(err, CN_EINTERNAL, "out of memory loading %s", ld.origin);
	int rc = cn_schema_parse(&ld, text, len, &cn_sla_contract_doc_schema, "contract",
				 "the contract is empty; it needs at least name and objectives", c);
	if (rc == 0)
		*out = *c;
	free(c);
	return rc;
}

static int parse_any(const char *text, size_t len, const char *origin, void *out, struct cn_err *err)
{
	return cn_sla_contract_parse(text, len, origin, out, err);
}

int cn_sla_contract_load_file(const char *path, struct cn_sla_contract *out, char **source_out, struct cn_err *err)
{
	return cn_yaml_load_file(path, parse_any, out, source_out, err);
}

int cn_sla_contract_check_service(const struct cn_sla_contract *c, const struct cn_service *sv, struct cn_err *err)
{
	for (int i = 0; i < c->nobjectives; i++) {
		const struct cn_sla_objective *o = &c->objectives[i];
		const char *missing = NULL, *key = NULL;
		if (o->metric == CN_SLA_TTFT && !sv->metrics.names.ttft[0])
			missing = "time-to-first-token histogram", key = "metrics.ttft";
		else if (o->metric == CN_SLA_LATENCY && !sv->metrics.names.latency[0])
			missing = "latency histogram", key = "metrics.latency";
		else if (o->metric == CN_SLA_AVAILABILITY && (!sv->metrics.names.errors[0] || !sv->metrics.names.requests[0]))
			missing = "request and error counters", key = "metrics.requests and metrics.errors";
		if (missing)
			return cn_fail(err, CN_EINPUT, "%s: objective '%s' cannot be computed: service '%s' has no %s "
				       "(%s); configure it in the service or drop the objective", o->metric_at, o->name, sv->name,
				       missing, key);
	}
	return 0;
}
