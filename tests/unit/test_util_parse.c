/* Table-driven tests of the value parsers: durations, percentages, ratios, numbers, booleans, edit distance. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "canary/parse.h"

struct dur_case {
	const char *in;
	unsigned flags;
	int64_t ms;          /* expected value when ok */
	const char *errpart; /* NULL: must succeed; else a part of the message */
};

static const struct dur_case dur_cases[] = {
	{ "800ms", 0, 800, NULL },
	{ "30s", 0, 30000, NULL },
	{ "5m", 0, 300000, NULL },
	{ "1h", 0, 3600000, NULL },
	{ "1h30m", 0, 5400000, NULL },
	{ "1h0m5s", 0, 3605000, NULL },
	{ "2d", 0, 172800000, NULL },
	{ "1s500ms", 0, 1500, NULL },
	{ "0", CN_DURATION_ALLOW_ZERO, 0, NULL },
	{ "0s", CN_DURATION_ALLOW_ZERO, 0, NULL },
	{ "0s", 0, 0, "must be greater than zero" },
	{ "0ms", 0, 0, "must be greater than zero" },
	{ "0", 0, 0, "no unit" },
	{ "-5s", 0, 0, "must not be negative" },
	{ "5", 0, 0, "no unit after '5'" },
	{ "", 0, 0, "empty" },
	{ "5x", 0, 0, "unknown unit 'x'" },
	{ "5 s", 0, 0, "unexpected ' '" },
	{ "1.5s", 0, 0, "whole numbers" },
	{ "30m1h", 0, 0, "largest to smallest" },
	{ "1m1m", 0, 0, "largest to smallest" },
	{ "s", 0, 0, "expected a number" },
	{ "9223372036854775808ms", 0, 0, "too large" },
	{ "106751991167301d", 0, 0, "too large" },
	{ "9223372036854775807ms", 0, INT64_MAX, NULL },
	{ "abc", 0, 0, "expected a number" },
};

static void test_durations(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof dur_cases / sizeof dur_cases[0]; i++) {
		const struct dur_case *c = &dur_cases[i];
		struct cn_err err = { 0 };
		int64_t out = -12345;
		int rc = cn_parse_duration_ms(c->in, c->flags, &out, &err);
		if (!c->errpart) {
			if (rc != 0)
				fail_msg("'%s': unexpected error: %s", c->in, err.msg);
			assert_int_equal(out, c->ms);
		} else {
			if (rc != -CN_EINPUT)
				fail_msg("'%s': expected an error containing '%s', got rc %d", c->in, c->errpart, rc);
			assert_int_equal(out, -12345); /* output untouched on failure */
			assert_int_equal(err.code, CN_EINPUT);
			if (!strstr(err.msg, c->errpart))
				fail_msg("'%s': message '%s' lacks '%s'", c->in, err.msg, c->errpart);
		}
	}
}

enum kind { PERCENT, RATIO, NUMBER };

struct num_case {
	enum kind kind;
	const char *in;
	double want;
	const char *errpart;
};

static const struct num_case num_cases[] = {
	{ PERCENT, "1%", 1.0, NULL },
	{ PERCENT, "0.5%", 0.5, NULL },
	{ PERCENT, "100%", 100.0, NULL },
	{ PERCENT, "0%", 0.0, NULL },
	{ PERCENT, ".5%", 0.5, NULL },
	{ PERCENT, "5", 0, "lacks the '%' sign" },
	{ PERCENT, "101%", 0, "over 100%" },
	{ PERCENT, "-1%", 0, "must not be negative" },
	{ PERCENT, "abc%", 0, "expected a percentage" },
	{ PERCENT, "%", 0, "expected a percentage" },
	{ PERCENT, "1e1%", 0, "expected a percentage" },
	{ PERCENT, "nan%", 0, "expected a percentage" },
	{ PERCENT, "", 0, "empty" },
	{ RATIO, "1.2x", 1.2, NULL },
	{ RATIO, "2x", 2.0, NULL },
	{ RATIO, "1.2", 0, "lacks the 'x' suffix" },
	{ RATIO, "0x", 0, "greater than 0" },
	{ RATIO, "-1x", 0, "greater than 0" },
	{ RATIO, "x", 0, "expected a ratio" },
	{ RATIO, "inf" "x", 0, "expected a ratio" },
	{ NUMBER, "0.99", 0.99, NULL },
	{ NUMBER, "-3", -3.0, NULL },
	{ NUMBER, "12.", 12.0, NULL },
	{ NUMBER, "0x10", 0, "expected a number" },
	{ NUMBER, "1e3", 0, "expected a number" },
	{ NUMBER, "nan", 0, "expected a number" },
	{ NUMBER, " 1", 0, "expected a number" },
	{ NUMBER, "lots", 0, "expected a number, got 'lots'" },
};

static void test_numbers(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof num_cases / sizeof num_cases[0]; i++) {
		const struct num_case *c = &num_cases[i];
		struct cn_err err = { 0 };
		double out = -777;
		int rc = c->kind == PERCENT ? cn_parse_percent(c->in, &out, &err)
			 : c->kind == RATIO ? cn_parse_ratio(c->in, &out, &err)
					    : cn_parse_number(c->in, &out, &err);
		if (!c->errpart) {
			if (rc != 0)
				fail_msg("'%s': unexpected error: %s", c->in, err.msg);
			assert_true(fabs(out - c->want) <= 1e-12);
		} else {
			if (rc != -CN_EINPUT)
				fail_msg("'%s': expected an error containing '%s'", c->in, c->errpart);
			assert_true(out == -777);
			if (!strstr(err.msg, c->errpart))
				fail_msg("'%s': message '%s' lacks '%s'", c->in, err.msg, c->errpart);
		}
	}
}

static void test_int64(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int64_t want;
		const char *errpart;
	} cases[] = {
		{ "200", 200, NULL },
		{ "-1", -1, NULL },
		{ "9223372036854775807", INT64_MAX, NULL },
		{ "9223372036854775808", 0, "out of range" },
		{ "1.5", 0, "whole number, got '1.5'" },
		{ "lots", 0, "whole number, got 'lots'" },
		{ "-", 0, "whole number" },
		{ "", 0, "empty" },
		{ "12abc", 0, "whole number" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct cn_err err = { 0 };
		int64_t out = 42;
		int rc = cn_parse_int64(cases[i].in, &out, &err);
		if (!cases[i].errpart) {
			if (rc != 0)
				fail_msg("'%s': %s", cases[i].in, err.msg);
			assert_true(out == cases[i].want);
		} else {
			assert_int_equal(rc, -CN_EINPUT);
			assert_true(out == 42);
			if (!strstr(err.msg, cases[i].errpart))
				fail_msg("'%s': message '%s' lacks '%s'", cases[i].in, err.msg, cases[i].errpart);
		}
	}
}

static void test_bool(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int want; /* 0, 1, or -1 for an error */
	} cases[] = {
		{ "true", 1 }, { "yes", 1 }, { "on", 1 }, { "false", 0 }, { "no", 0 },
		{ "off", 0 },  { "True", -1 }, { "1", -1 }, { "maybe", -1 }, { "", -1 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct cn_err err = { 0 };
		bool out = false;
		int rc = cn_parse_bool(cases[i].in, &out, &err);
		if (cases[i].want < 0) {
			assert_int_equal(rc, -CN_EINPUT);
			assert_non_null(strstr(err.msg, "expected true or false"));
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(out, cases[i].want);
		}
	}
}

static void test_format_duration_round_trip(void **state)
{
	(void)state;
	static const struct {
		int64_t ms;
		const char *text;
	} cases[] = {
		{ 0, "0s" }, { 800, "800ms" }, { 30000, "30s" }, { 5400000, "1h30m" }, { 90061001, "1d1h1m1s1ms" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char buf[64];
		assert_string_equal(cn_format_duration(cases[i].ms, buf, sizeof buf), cases[i].text);
		int64_t back = -1;
		assert_int_equal(cn_parse_duration_ms(buf, CN_DURATION_ALLOW_ZERO, &back, NULL), 0);
		assert_true(back == cases[i].ms);
	}
}

static void test_edit_distance(void **state)
{
	(void)state;
	assert_int_equal(cn_edit_distance("hodl", "hold"), 1); /* a transposition is one edit */
	assert_int_equal(cn_edit_distance("hold", "hold"), 0);
	assert_int_equal(cn_edit_distance("", "abc"), 3);
	assert_int_equal(cn_edit_distance("weigth", "weight"), 1);
	assert_int_equal(cn_edit_distance("intervall", "interval"), 1);
	assert_int_equal(cn_edit_distance("kitten", "sitting"), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_int64),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_format_duration_round_trip),
		cmocka_unit_test(test_edit_distance),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
