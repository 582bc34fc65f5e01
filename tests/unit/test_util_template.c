/* Argument templates (canary/template.h): placeholders replaced, {{ and }} literal, and every malformed template
 * refused with the offset of the offending brace. Table-driven, no I/O. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "canary/template.h"

static const struct cn_tmpl_var vars[] = {
	{ "candidate_percent", "5" }, { "baseline_percent", "95" }, { "candidate_slot", "green" },
	{ "service", "chat" },        { "percent:blue", "95" },      { "empty", "" },
};
#define NVARS (sizeof vars / sizeof vars[0])

static void test_expands(void **state)
{
	(void)state;
	static const struct {
		const char *tmpl, *want;
	} cases[] = {
		{ "plain", "plain" },
		{ "", "" },
		{ "{candidate_percent}", "5" },
		{ "--weight={candidate_percent}%", "--weight=5%" },
		{ "{candidate_slot}={candidate_percent},{percent:blue}", "green=5,95" },
		{ "{{\"op\":\"replace\",\"value\":{baseline_percent}}}", "{\"op\":\"replace\",\"value\":95}" },
		{ "{{{service}}}", "{chat}" },
		{ "}}{{", "}{" },
		{ "a{empty}b", "ab" },
		{ "VariantName={candidate_slot},DesiredWeight={candidate_percent}", "VariantName=green,DesiredWeight=5" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[256];
		struct cn_err err = { 0 };
		size_t at = 99;
		if (cn_tmpl_expand(cases[i].tmpl, vars, NVARS, out, sizeof out, &at, &err) != 0)
			fail_msg("'%s': %s", cases[i].tmpl, err.msg);
		assert_string_equal(out, cases[i].want);
	}
}

static void test_refuses(void **state)
{
	(void)state;
	static const struct {
		const char *tmpl;
		size_t at;
		const char *part;
	} cases[] = {
		{ "{candidate_pct}", 0, "unknown placeholder '{candidate_pct}'" },
		{ "x={percent:red}", 2, "unknown placeholder '{percent:red}'" },
		{ "{}", 0, "unknown placeholder '{}'" },
		{ "{service", 0, "unclosed '{' at character 1" },
		{ "ab{serv{ice}", 2, "unclosed '{' at character 3" },
		{ "service}", 7, "lone '}' at character 8" },
		{ "{service}}", 9, "lone '}' at character 10" },
		{ "{\"a\": 1}", 0, "unknown placeholder '{\"a\": 1}'" },
		{ "{{{service", 2, "unclosed '{'" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[256];
		struct cn_err err = { 0 };
		size_t at = 99;
		assert_int_equal(cn_tmpl_expand(cases[i].tmpl, vars, NVARS, out, sizeof out, &at, &err), -CN_EINPUT);
		if (!strstr(err.msg, cases[i].part))
			fail_msg("'%s': message '%s' lacks '%s'", cases[i].tmpl, err.msg, cases[i].part);
		if (at != cases[i].at)
			fail_msg("'%s': at %zu, want %zu", cases[i].tmpl, at, cases[i].at);
	}
	/* the known placeholders are listed */
	char out[64];
	struct cn_err err = { 0 };
	assert_int_equal(cn_tmpl_expand("{x}", vars, NVARS, out, sizeof out, NULL, &err), -CN_EINPUT);
	assert_non_null(strstr(err.msg, "{candidate_percent}, {baseline_percent}"));
	/* too long for out */
	assert_int_equal(cn_tmpl_expand("{service}{service}", vars, NVARS, out, 8, NULL, &err), -CN_EINPUT);
	assert_non_null(strstr(err.msg, "more than 7 bytes"));
	assert_int_equal(cn_tmpl_expand("abc", vars, NVARS, out, 4, NULL, &err), 0);
	assert_string_equal(out, "abc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expands),
		cmocka_unit_test(test_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
