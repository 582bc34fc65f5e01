/* The policy loader: every kind of bad input gives one line "ORIGIN:LINE:COL: message" at the offending node,
 * good files load with the right values and defaults, and the examples in policies/ load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/policy.h"
#include "canary/schema.h"

/* A valid policy; the bad cases below are small edits of it (line numbers refer to their own text). */
#define NAME "name: p\n"
#define STEPS "steps:\n  - weight: 1%\n    hold: 5m\n  - weight: 100%\n    hold: 1m\n"
#define SLOS "slos:\n  - name: e\n    metric: error_rate\n    max: 1%\n"

struct bad_case {
	const char *what;
	const char *text;
	size_t len; /* 0: strlen(text) */
	int line, col;
	const char *part; /* a key part of the message */
};

static const struct bad_case bad_cases[] = {
	{ "unknown key with suggestion", NAME "steps:\n  - weight: 1%\n    hodl: 5m\n" SLOS, 0, 4, 5,
	  "unknown key 'hodl' (did you mean 'hold'?)" },
	{ "unknown top-level key with suggestion", NAME STEPS SLOS "on_falure: pause\n", 0, 11, 1,
	  "unknown key 'on_falure' (did you mean 'on_failure'?)" },
	{ "unknown key without suggestion", NAME "colour: red\n" STEPS SLOS, 0, 2, 1, "unknown key 'colour' in policy" },
	{ "unknown analysis key", NAME STEPS SLOS "analysis:\n  intervall: 5s\n", 0, 12, 3,
	  "unknown key 'intervall' (did you mean 'interval'?)" },
	{ "list where a mapping is expected", NAME STEPS SLOS "analysis:\n  - interval: 10s\n", 0, 12, 3,
	  "'analysis' must be a mapping" },
	{ "mapping where a list is expected", NAME "steps:\n  weight: 1%\n" SLOS, 0, 3, 3, "'steps' must be a list" },
	{ "text where a number is expected", NAME STEPS SLOS "analysis:\n  min_requests: lots\n", 0, 12, 17,
	  "min_requests: expected a whole number, got 'lots'" },
	{ "mapping where a duration is expected", NAME "steps:\n  - weight: 1%\n    hold: {a: 1}\n" SLOS, 0, 4, 11,
	  "'hold' must be a duration such as '30s', got a mapping" },
	{ "list item that is not a mapping", NAME "steps:\n  - 1%\n" SLOS, 0, 3, 5, "steps entry 1 must be a mapping" },
	{ "top level is a list", "- name: p\n", 0, 1, 1, "policy must be a mapping" },
	{ "weights not increasing", NAME "steps:\n  - weight: 5%\n    hold: 5m\n  - weight: 5%\n    hold: 1m\n"
	  "  - weight: 100%\n    hold: 1m\n" SLOS, 0, 5, 13, "step 2 weight '5%' is not above step 1's 5%" },
	{ "weights decreasing", NAME "steps:\n  - weight: 50%\n    hold: 5m\n  - weight: 10%\n    hold: 1m\n" SLOS,
	  0, 5, 13, "weights must increase strictly" },
	{ "weight over 100%", NAME "steps:\n  - weight: 150%\n    hold: 5m\n" SLOS, 0, 3, 13, "'150%' is over 100%" },
	{ "weight zero", NAME "steps:\n  - weight: 0%\n    hold: 5m\n  - weight: 100%\n    hold: 1m\n" SLOS, 0, 3, 13,
	  "weight '0%' must be greater than 0%" },
	{ "weight negative", NAME "steps:\n  - weight: -1%\n    hold: 5m\n" SLOS, 0, 3, 13, "must not be negative" },
	{ "weight without %", NAME "steps:\n  - weight: 5\n    hold: 5m\n" SLOS, 0, 3, 13, "lacks the '%' sign" },
	{ "last weight not 100%", NAME "steps:\n  - weight: 1%\n    hold: 5m\n  - weight: 50%\n    hold: 1m\n" SLOS,
	  0, 5, 13, "it must be 100%" },
	{ "relative limit with no step that measures the baseline", NAME "steps:\n  - weight: 100%\n    hold: 5m\n"
	  "slos:\n  - name: l\n    metric: latency\n    quantile: 0.99\n    max: 2s\n    max_increase: 1.5x\n", 0, 10, 19,
	  "slo 'l': max_increase compares with the baseline, but step 1 already sends 100% of traffic" },
	{ "sequential judge with no step that measures the baseline", NAME "steps:\n  - weight: 100%\n    hold: 5m\n"
	  SLOS "analysis:\n  judge: sequential\n", 0, 3, 13,
	  "the sequential judge (which compares the two) could never roll back" },
	{ "quantile above 1", NAME STEPS "slos:\n  - name: l\n    metric: latency\n    quantile: 1.5\n    max: 2s\n",
	  0, 10, 15, "quantile '1.5' must be less than 1" },
	{ "quantile zero", NAME STEPS "slos:\n  - name: l\n    metric: latency\n    quantile: 0\n    max: 2s\n", 0,
	  10, 15, "quantile '0' must be greater than 0" },
	{ "quantile not a number", NAME STEPS "slos:\n  - name: l\n    metric: latency\n    quantile: p99\n", 0, 10,
	  15, "expected a number, got 'p99'" },
	{ "zero hold", NAME "steps:\n  - weight: 100%\n    hold: 0s\n" SLOS, 0, 4, 11,
	  "hold: duration '0s' must be greater than zero" },
	{ "negative hold", NAME "steps:\n  - weight: 100%\n    hold: -5m\n" SLOS, 0, 4, 11, "must not be negative" },
	{ "hold without unit", NAME "steps:\n  - weight: 100%\n    hold: 5\n" SLOS, 0, 4, 11, "no unit after '5'" },
	{ "hold with no value", NAME "steps:\n  - weight: 100%\n    hold:\n" SLOS, 0, 4, 10, "'hold' has no value" },
	{ "zero interval", NAME STEPS SLOS "analysis:\n  interval: 0s\n", 0, 12, 13, "must be greater than zero" },
	{ "interval too short", NAME STEPS SLOS "analysis:\n  interval: 50ms\n", 0, 12, 13,
	  "interval '50ms' must be at least 100ms" },
	{ "failing ticks zero", NAME STEPS SLOS "analysis:\n  failing_ticks: 0\n", 0, 12, 18,
	  "failing_ticks '0' must be at least 1" },
	{ "false rollback budget too big", NAME STEPS SLOS "analysis:\n  false_rollback_budget: 60%\n", 0, 12, 26,
	  "must be less than 50%" },
	{ "bad enum", NAME STEPS SLOS "on_failure: explode\n", 0, 11, 13, "expected one of rollback, pause, got 'explode'" },
	{ "bad approval word", NAME "steps:\n  - weight: 100%\n    hold: 1m\n    approval: yes\n" SLOS, 0, 5, 15,
	  "expected one of none, required" },
	{ "max_increase below 1x", NAME STEPS "slos:\n  - name: e\n    metric: error_rate\n    max_increase: 0.5x\n", 0,
	  10, 19, "max_increase '0.5x' must be at least 1x" },
	{ "tab indentation", NAME "steps:\n\t- weight: 1%\n", 0, 3, 1, "tab character used for indentation; use spaces" },
	{ "tab after spaces", NAME "steps:\n  - weight: 100%\n  \thold: 1m\n" SLOS, 0, 4, 3,
	  "tab character used for indentation" },
	{ "duplicate top-level key", NAME "name: q\n" STEPS SLOS, 0, 2, 1,
	  "duplicate key 'name' (first at line 1, column 1)" },
	{ "duplicate nested key", NAME "steps:\n  - weight: 100%\n    hold: 1m\n    hold: 2m\n" SLOS, 0, 5, 5,
	  "duplicate key 'hold' (first at line 4, column 5)" },
	{ "empty file", "", 0, 1, 1, "empty file" },
	{ "only comments", "# nothing here\n\n", 0, 1, 1, "empty file" },
	{ "invalid utf-8", NAME "description: caf\xc3\n" STEPS SLOS, 0, 2, 17, "invalid utf-8 byte 0xc3" },
	{ "overlong utf-8", NAME "description: \"\xc0\xaf\"\n", 0, 2, 15, "invalid utf-8 byte 0xc0" },
	{ "utf-8 columns count characters", NAME "description: \"\xc3\xa9\xc3\xa9\xff\"\n", 0, 2, 17,
	  "invalid utf-8 byte 0xff" },
	{ "yaml syntax error", NAME "  bad: x\n", 0, 2, 6, "yaml syntax error: mapping values are not allowed" },
	{ "unclosed flow sequence", NAME "steps: [1%, 5%\n", 0, 3, 1, "yaml syntax error: did not find expected ','" },
	{ "missing name", STEPS SLOS, 0, 1, 1, "missing required key 'name' in policy" },
	{ "missing steps", NAME SLOS, 0, 1, 1, "missing required key 'steps'" },
	{ "missing slos", NAME STEPS, 0, 1, 1, "missing required key 'slos'" },
	{ "step without hold", NAME "steps:\n  - weight: 100%\n" SLOS, 0, 3, 5,
	  "missing required key 'hold' in steps entry 1" },
	{ "slo without metric", NAME STEPS "slos:\n  - name: e\n    max: 1%\n", 0, 8, 5, "missing required key 'metric'" },
	{ "empty steps", NAME "steps: []\n" SLOS, 0, 2, 8, "'steps' must have at least one entry" },
	{ "slo without objective", NAME STEPS "slos:\n  - name: e\n    metric: error_rate\n", 0, 8, 5,
	  "slo 'e' needs 'max', 'max_increase' or both" },
	{ "latency without quantile", NAME STEPS "slos:\n  - name: l\n    metric: latency\n    max: 2s\n", 0, 8, 5,
	  "needs a quantile" },
	{ "quantile on error rate", NAME STEPS "slos:\n  - name: e\n    metric: error_rate\n    quantile: 0.9\n"
	  "    max: 1%\n", 0, 10, 15, "quantile applies only to latency" },
	{ "duration max on error rate", NAME STEPS "slos:\n  - name: e\n    metric: error_rate\n    max: 2s\n", 0, 10,
	  10, "max for error_rate must be a percentage" },
	{ "percent max on latency", NAME STEPS "slos:\n  - name: l\n    metric: ttft\n    quantile: 0.9\n    max: 5%\n",
	  0, 11, 10, "max for ttft must be a duration" },
	/* unit economics */
	{ "throughput without min_ratio", NAME STEPS "slos:\n  - name: t\n    metric: tokens_per_second\n", 0, 8, 5,
	  "tokens_per_second needs 'min_ratio'" },
	{ "throughput with max_increase", NAME STEPS "slos:\n  - name: t\n    metric: tokens_per_second\n"
	  "    max_increase: 1.1x\n", 0, 10, 19, "give 'min_ratio' (e.g. 'min_ratio: 0.9x'), not max_increase" },
	{ "min_ratio above 1x", NAME STEPS "slos:\n  - name: t\n    metric: tokens_per_second\n    min_ratio: 1.2x\n",
	  0, 10, 16, "min_ratio '1.2x'" },
	{ "min_ratio on error rate", NAME STEPS "slos:\n  - name: e\n    metric: error_rate\n    max: 1%\n"
	  "    min_ratio: 0.9x\n", 0, 11, 16, "min_ratio applies only to tokens_per_second" },
	{ "duration max on cost", NAME STEPS "slos:\n  - name: c\n    metric: cost_per_1k_tokens\n    max: 2s\n", 0, 10,
	  10, "max for cost_per_1k_tokens must be a price" },
	{ "cost without objective", NAME STEPS "slos:\n  - name: c\n    metric: cost_per_1k_tokens\n", 0, 8, 5,
	  "needs 'max_increase' (e.g. 1.1x), 'max' or both" },
	{ "quantile on cost", NAME STEPS "slos:\n  - name: c\n    metric: cost_per_1k_tokens\n    quantile: 0.9\n"
	  "    max_increase: 1.1x\n", 0, 10, 15, "quantile applies only to latency" },
	{ "bare number max on latency", NAME STEPS "slos:\n  - name: l\n    metric: latency\n    quantile: 0.9\n"
	  "    max: 2\n", 0, 11, 10, "max for latency must be a duration" },
	{ "duplicate slo names", NAME STEPS SLOS "  - name: e\n    metric: error_rate\n    max: 2%\n", 0, 11, 11,
	  "slo name 'e' is used twice" },
	{ "anchor", "name: &n p\n" STEPS SLOS, 0, 1, 7, "anchors ('&n') are not supported" },
	{ "alias", NAME "description: &d x\n" STEPS SLOS "x: *d\n", 0, 2, 14, "anchors ('&d') are not supported" },
	{ "two documents", NAME STEPS SLOS "---\nname: q\n", 0, 11, 1, "more than one yaml document" },
	{ "bad name", "name: \"a b\"\n" STEPS SLOS, 0, 1, 7, "invalid name 'a b'" },
	{ "name too long", "name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" STEPS SLOS, 0, 1, 7,
	  "too long" },
	{ "too many steps", NAME "steps: [{weight: 1%, hold: 1s}, {weight: 2%, hold: 1s}, {weight: 3%, hold: 1s}, "
	  "{weight: 4%, hold: 1s}, {weight: 5%, hold: 1s}, {weight: 6%, hold: 1s}, {weight: 7%, hold: 1s}, "
	  "{weight: 8%, hold: 1s}, {weight: 9%, hold: 1s}, {weight: 10%, hold: 1s}, {weight: 11%, hold: 1s}, "
	  "{weight: 12%, hold: 1s}, {weight: 13%, hold: 1s}, {weight: 14%, hold: 1s}, {weight: 15%, hold: 1s}, "
	  "{weight: 16%, hold: 1s}, {weight: 100%, hold: 1s}]\n" SLOS, 0, 2, 400, "too many entries in 'steps' (17; at most 16)" },
	{ "nul byte inside a quoted value", NAME "description: \"a\\0b\"\n" STEPS SLOS, 0, 2, 14, "nul character" },
};

static void test_bad_inputs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad_case *c = &bad_cases[i];
		struct cn_policy p;
		memset(&p, 0x5a, sizeof p);
		struct cn_err err = { 0 };
		size_t len = c->len ? c->len : strlen(c->text);
		int rc = cn_policy_parse(c->text, len, "policies/x.yaml", &p, &err);
		if (rc != -CN_EINPUT)
			fail_msg("%s: expected -CN_EINPUT, got %d (%s)", c->what, rc, err.msg);
		assert_int_equal(err.code, CN_EINPUT);
		char prefix[64];
		snprintf(prefix, sizeof prefix, "policies/x.yaml:%d:%d: ", c->line, c->col);
		if (strncmp(err.msg, prefix, strlen(prefix)) != 0)
			fail_msg("%s: expected position '%s', got '%s'", c->what, prefix, err.msg);
		if (!strstr(err.msg, c->part))
			fail_msg("%s: message '%s' lacks '%s'", c->what, err.msg, c->part);
		if (strchr(err.msg, '\n'))
			fail_msg("%s: message is not one line", c->what);
		/* output parameters are written only on success */
		assert_int_equal(((unsigned char *)&p)[0], 0x5a);
		assert_int_equal(p.nsteps, 0x5a5a5a5a);
	}
}

static void test_minimal_policy_gets_defaults(void **state)
{
	(void)state;
	const char *text = NAME STEPS SLOS;
	struct cn_policy p;
	struct cn_err err = { 0 };
	int rc = cn_policy_parse(text, strlen(text), "t", &p, &err);
	if (rc)
		fail_msg("%s", err.msg);
	assert_string_equal(p.name, "p");
	assert_string_equal(p.description, "");
	assert_int_equal(p.nsteps, 2);
	assert_true(p.steps[0].weight == 1.0 && p.steps[0].hold_ms == 300000 && !p.steps[0].approval);
	assert_true(p.steps[1].weight == 100.0 && p.steps[1].hold_ms == 60000);
	assert_true(p.analysis.interval_ms == 10000);
	assert_true(p.analysis.min_requests == 100);
	assert_int_equal(p.analysis.failing_ticks, 3);
	assert_true(p.analysis.inconclusive_timeout_ms == 300000);
	assert_int_equal(p.analysis.on_inconclusive, CN_FALLBACK_PAUSE);
	assert_int_equal(p.analysis.judge, CN_JUDGE_THRESHOLD);
	assert_true(fabs(p.analysis.false_rollback_budget - 0.01) < 1e-12);
	assert_int_equal(p.on_failure, CN_FALLBACK_ROLLBACK);
	assert_true(p.approval_timeout_ms == 0);
	assert_int_equal(p.on_approval_timeout, CN_FALLBACK_ROLLBACK);
	assert_false(p.approver_must_differ);
	assert_int_equal(p.nslos, 1);
	assert_string_equal(p.slos[0].name, "e");
	assert_int_equal(p.slos[0].metric, CN_METRIC_ERROR_RATE);
	assert_true(fabs(p.slos[0].max - 0.01) < 1e-12); /* error rate max is a fraction */
	assert_true(isnan(p.slos[0].quantile));
	assert_true(isnan(p.slos[0].max_increase));
	assert_true(isnan(p.slos[0].tolerance));
}

static char *source_path(const char *rel)
{
	const char *dir = getenv("CANARY_SOURCE_DIR");
	if (!dir)
		dir = "."; /* run from the source tree by hand */
	size_t n = strlen(dir) + strlen(rel) + 2;
	char *p = malloc(n);
	assert_non_null(p);
	snprintf(p, n, "%s/%s", dir, rel);
	return p;
}

static void test_default_example(void **state)
{
	(void)state;
	char *path = source_path("policies/default.yaml");
	char *src = NULL;
	struct cn_policy p;
	struct cn_err err = { 0 };
	int rc = cn_policy_load_file(path, &p, &src, &err);
	if (rc)
		fail_msg("%s", err.msg);
	assert_non_null(src);
	assert_non_null(strstr(src, "name: default"));
	assert_string_equal(p.name, "default");
	assert_int_equal(p.nsteps, 3);
	assert_true(p.steps[0].weight == 1 && p.steps[1].weight == 5 && p.steps[2].weight == 100);
	assert_true(p.steps[1].hold_ms == 600000);
	assert_true(p.analysis.min_requests == 200);
	assert_int_equal(p.nslos, 2);
	assert_int_equal(p.slos[1].metric, CN_METRIC_LATENCY);
	assert_true(p.slos[1].quantile == 0.99);
	assert_true(p.slos[1].max == 2.0); /* seconds */
	assert_true(fabs(p.slos[1].max_increase - 1.2) < 1e-12);
	free(src);
	free(path);
}

static void test_chat_example(void **state)
{
	(void)state;
	char *path = source_path("policies/chat.yaml");
	struct cn_policy p;
	struct cn_err err = { 0 };
	int rc = cn_policy_load_file(path, &p, NULL, &err);
	if (rc)
		fail_msg("%s", err.msg);
	assert_true(p.steps[p.nsteps - 1].weight == 100 && p.steps[p.nsteps - 1].approval);
	for (int i = 0; i + 1 < p.nsteps; i++)
		assert_false(p.steps[i].approval);
	int ttft = -1, p99 = -1;
	for (int i = 0; i < p.nslos; i++) {
		if (p.slos[i].metric == CN_METRIC_TTFT)
			ttft = i;
		if (p.slos[i].metric == CN_METRIC_LATENCY && p.slos[i].quantile == 0.99)
			p99 = i;
	}
	assert_true(ttft >= 0 && p.slos[ttft].quantile == 0.95);
	assert_true(fabs(p.slos[ttft].max - 0.8) < 1e-12);
	assert_true(p99 >= 0);
	assert_true(p.approver_must_differ);
	assert_true(p.approval_timeout_ms == 4 * 3600000LL);
	free(path);
}

static void test_demo_fast_example(void **state)
{
	(void)state;
	char *path = source_path("policies/demo-fast.yaml");
	struct cn_policy p;
	struct cn_err err = { 0 };
	int rc = cn_policy_load_file(path, &p, NULL, &err);
	if (rc)
		fail_msg("%s", err.msg);
	assert_int_equal(p.nsteps, 3);
	assert_true(p.analysis.interval_ms == 1000);
	assert_true(p.analysis.min_requests == 50);
	for (int i = 0; i < p.nsteps; i++)
		assert_true(p.steps[i].hold_ms <= 10000);
	free(path);
}

/* Every prefix of a real policy, and every single byte replaced by a hostile one, either loads or fails with
 * one positioned line; never a crash or a leak (this runs under ASan+UBSan). */
static void test_truncated_and_mangled(void **state)
{
	(void)state;
	char *path = source_path("policies/chat.yaml");
	char *src = NULL;
	struct cn_policy p;
	struct cn_err err = { 0 };
	if (cn_policy_load_file(path, &p, &src, &err))
		fail_msg("%s", err.msg);
	size_t len = strlen(src);
	char *copy = malloc(len + 1);
	assert_non_null(copy);
	static const char hostile[] = { '\t', '\xff', ':', '{', '[', '&', '*', '-', '"', '\0' };
	for (size_t cut = 0; cut <= len; cut++) {
		int rc = cn_policy_parse(src, cut, "c.yaml", &p, &err);
		assert_true(rc == 0 || rc == -CN_EINPUT);
		if (rc)
			assert_int_equal(strncmp(err.msg, "c.yaml:", 7), 0);
	}
	for (size_t i = 0; i < len; i += 3) {
		for (size_t h = 0; h < sizeof hostile; h++) {
			memcpy(copy, src, len + 1);
			copy[i] = hostile[h];
			int rc = cn_policy_parse(copy, len, "c.yaml", &p, &err);
			assert_true(rc == 0 || rc == -CN_EINPUT);
			if (rc)
				assert_int_equal(strncmp(err.msg, "c.yaml:", 7), 0);
		}
	}
	free(copy);
	free(src);
	free(path);
}

static void test_missing_file(void **state)
{
	(void)state;
	struct cn_policy p;
	struct cn_err err = { 0 };
	assert_int_equal(cn_policy_load_file("/nonexistent/x.yaml", &p, NULL, &err), -CN_EINPUT);
	assert_non_null(strstr(err.msg, "/nonexistent/x.yaml: cannot open"));
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(cn_metric_name(CN_METRIC_ITL), "itl");
	assert_string_equal(cn_metric_name(CN_METRIC_ERROR_RATE), "error_rate");
	assert_string_equal(cn_judge_name(CN_JUDGE_SEQUENTIAL), "sequential");
	assert_string_equal(cn_fallback_name(CN_FALLBACK_WAIT), "wait");
	assert_string_equal(cn_fallback_name(CN_FALLBACK_PAUSE), "pause");
}

/* The key table is the single source: every key has a doc line, and each documented default parses. */
static void test_schema_is_documented(void **state)
{
	(void)state;
	const struct cn_schema *stack[16];
	int n = 0;
	stack[n++] = cn_policy_schema();
	while (n > 0) {
		const struct cn_schema *sc = stack[--n];
		assert_true(sc->nkeys > 0);
		for (size_t i = 0; i < sc->nkeys; i++) {
			const struct cn_key *k = &sc->keys[i];
			if (!k->doc || !*k->doc)
				fail_msg("key '%s' in %s has no doc", k->name, sc->name);
			if (k->sub) {
				assert_true(n < 16);
				stack[n++] = k->sub;
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_minimal_policy_gets_defaults),
		cmocka_unit_test(test_default_example),
		cmocka_unit_test(test_chat_example),
		cmocka_unit_test(test_demo_fast_example),
		cmocka_unit_test(test_truncated_and_mangled),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_schema_is_documented),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
