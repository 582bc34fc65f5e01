/* The workload profile loader: bad inputs give "ORIGIN:LINE:COL: message" at the offending node (unknown keys, a
 * p99 below the median, a zero rate, bursts that never end); the example profile loads as documented. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/profile.h"

struct bad_case {
	const char *what;
	const char *text;
	int line, col;
	const char *part;
};

static const struct bad_case bad_cases[] = {
	{ "unknown key", "rate: 5\nduration: 10s\nstraem: true\n", 3, 1, "unknown key 'straem' (did you mean 'stream'?)" },
	{ "zero rate", "rate: 0\nduration: 10s\n", 1, 7, "rate" },
	{ "negative rate", "duration: 10s\nrate: -3\n", 2, 7, "rate" },
	{ "no rate", "duration: 10s\n", 1, 1, "missing required key 'rate'" },
	{ "p99 below median", "rate: 5\nduration: 10s\nprompt_tokens:\n  median: 500\n  p99: 100\n", 5, 8,
	  "p99 100 is below the median 500" },
	{ "output p99 below median", "rate: 5\nduration: 10s\noutput_tokens: { median: 50, p99: 10 }\n", 3, 35,
	  "below the median" },
	{ "unknown nested key", "rate: 5\nduration: 10s\nbursts:\n  factr: 3x\n", 4, 3,
	  "unknown key 'factr' (did you mean 'factor'?)" },
	{ "burst as long as its period", "rate: 5\nduration: 10s\nbursts: { factor: 3x, period: 10s, length: 10s }\n",
	  3, 44, "shorter than its period" },
	{ "burst factor below 1", "rate: 5\nduration: 10s\nbursts: { factor: 0.5x, period: 10s, length: 1s }\n", 3, 19,
	  "factor" },
	{ "bad endpoint", "rate: 5\nduration: 10s\nendpoint: embeddings\n", 3, 11, "embeddings" },
	{ "both prompt sources", "rate: 5\nduration: 10s\nprompt_tokens: { median: 5, p99: 50 }\nprompts_file: p.jsonl\n",
	  4, 15, "either prompt_tokens or prompts_file" },
	{ "stream not a bool", "rate: 5\nduration: 10s\nstream: maybe\n", 3, 9, "stream" },
	{ "zero duration", "rate: 5\nduration: 0s\n", 2, 11, "duration" },
};

static void test_bad_inputs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad_case *c = &bad_cases[i];
		struct cn_profile p;
		struct cn_err err = { 0 };
		char where[64];
		memset(&p, 0x5a, sizeof p);
		int rc = cn_profile_parse(c->text, strlen(c->text), "p.yaml", &p, &err);
		snprintf(where, sizeof where, "p.yaml:%d:%d: ", c->line, c->col);
		if (rc != -CN_EINPUT || strncmp(err.msg, where, strlen(where)) != 0 || !strstr(err.msg, c->part))
			fail_msg("%s: rc %d, message '%s'; wanted '%s...%s'", c->what, rc, err.msg, where, c->part);
		assert_int_equal(err.code, CN_EINPUT);
		assert_int_equal(((unsigned char *)&p)[0], 0x5a); /* output untouched on failure */
	}
}

static void test_defaults(void **state)
{
	(void)state;
	struct cn_profile p;
	struct cn_err err = { 0 };
	const char *t = "rate: 2.5\nduration: 30s\n";
	assert_int_equal(cn_profile_parse(t, strlen(t), "p.yaml", &p, &err), 0);
	assert_true(p.rate == 2.5);
	assert_int_equal(p.duration_ms, 30000);
	assert_int_equal(p.bursts.length_ms, 0);
	assert_true(p.prompt_tokens.median == 200 && p.prompt_tokens.p99 == 4000);
	assert_true(p.output_tokens.median == 100 && p.output_tokens.p99 == 500);
	assert_false(p.stream);
	assert_int_equal(p.endpoint, CN_ENDPOINT_COMPLETIONS);
	assert_string_equal(p.model, "default");
	assert_int_equal(p.timeout_ms, 60000);
}

static void test_example(void **state)
{
	(void)state;
	char path[1024];
	const char *src = getenv("CANARY_SOURCE_DIR");
	struct cn_profile p;
	struct cn_err err = { 0 };
	snprintf(path, sizeof path, "%s/policies/peak-profile.yaml", src ? src : "..");
	if (cn_profile_load_file(path, &p, &err) != 0)
		fail_msg("%s", err.msg);
	assert_true(p.rate == 20);
	assert_int_equal(p.duration_ms, 120000);
	assert_true(p.bursts.factor == 3);
	assert_int_equal(p.bursts.period_ms, 60000);
	assert_int_equal(p.bursts.length_ms, 5000);
	assert_true(p.prompt_tokens.median == 300 && p.prompt_tokens.p99 == 8000);
	assert_true(p.stream);
	assert_int_equal(p.endpoint, CN_ENDPOINT_CHAT);
	assert_string_equal(p.model, "chat-model");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_example),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
