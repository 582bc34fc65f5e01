/* Unit tests for the nginx and command gateways' pure parts: shares -> weights with nginx's limit (and the share
 * error it states), the include file rendered and read back, the command gateway's JSON shares and its percent
 * text. Table-driven, no I/O. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "canary/gateway.h"

static const char *const slot[2] = { "blue", "green" };
static const char *const addr[2] = { "127.0.0.1:8001", "unix:/run/green.sock" };

/* nginx: a total of at most 1000; the worst share error is 100/(4*999) points, and no share above 0 (or below
 * 100) maps to a weight 0 (nginx's `down`) on either side. */
static void test_nginx_weights_error_bound(void **state)
{
	(void)state;
	double worst = 0;
	for (int k = 0; k <= 100000; k++) {
		double p = k / 1000.0;
		int w[2];
		struct cn_err err = { 0 };
		assert_int_equal(cn_weights_from_pct(p, CN_NGINX_WEIGHT_MAX, w, &err), 0);
		assert_true(w[0] >= 0 && w[1] >= 0 && w[0] + w[1] <= CN_NGINX_WEIGHT_MAX && w[0] + w[1] > 0);
		if (p > 0)
			assert_true(w[0] > 0);
		if (p < 100)
			assert_true(w[1] > 0);
		double got = 100.0 * w[0] / (w[0] + w[1]);
		if (p >= 0.1 && p <= 99.9 && fabs(got - p) > worst)
			worst = fabs(got - p);
	}
	print_message("nginx: worst share error %.4f points for shares in [0.1, 99.9]\n", worst);
	assert_true(worst <= 100.0 / (4 * 999) + 1e-9);
	int w[2];
	struct cn_err err = { 0 };
	assert_int_equal(cn_weights_from_pct(5.0, CN_NGINX_WEIGHT_MAX, w, &err), 0);
	assert_true(w[0] == 1 && w[1] == 19);
	assert_int_equal(cn_weights_from_pct(NAN, CN_NGINX_WEIGHT_MAX, w, &err), -CN_EINPUT);
	assert_int_equal(cn_weights_from_pct(50, 1, w, &err), -CN_EINPUT);
}

static void test_nginx_render_and_parse(void **state)
{
	(void)state;
	static const int cases[][2] = { { 99, 1 }, { 1, 0 }, { 0, 1 }, { 667, 333 }, { 1, 1 } };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char buf[1024];
		int len = cn_nginx_render("chat", slot, addr, cases[i], buf, sizeof buf);
		assert_true(len > 0 && (size_t)len == strlen(buf));
		assert_non_null(strstr(buf, "# Written by canary for service 'chat'"));
		assert_null(strstr(buf, "weight=0")); /* nginx refuses weight=0 */
		char line[128];
		snprintf(line, sizeof line, cases[i][1] ? "server unix:/run/green.sock weight=%d;\n"
							 : "server unix:/run/green.sock down;\n", cases[i][1]);
		assert_non_null(strstr(buf, line));
		int w[2] = { -1, -1 };
		struct cn_err err = { 0 };
		assert_int_equal(cn_nginx_parse(buf, addr, w, &err), 0);
		assert_int_equal(w[0], cases[i][0]);
		assert_int_equal(w[1], cases[i][1]);
		/* the same inputs, the same bytes (set compares them to skip a reload) */
		char again[1024];
		assert_int_equal(cn_nginx_render("chat", slot, addr, cases[i], again, sizeof again), len);
		assert_string_equal(buf, again);
	}
	char small[40];
	const int w[2] = { 1, 1 };
	assert_int_equal(cn_nginx_render("chat", slot, addr, w, small, sizeof small), -1);
}

static void test_nginx_parse_forms_and_errors(void **state)
{
	(void)state;
	int w[2] = { -1, -1 };
	struct cn_err err = { 0 };
	/* written by hand: no weight is 1, other parameters ignored, comments and blanks skipped */
	assert_int_equal(cn_nginx_parse("# hand-made\n\n  server 127.0.0.1:8001 max_fails=3;\n"
					"server unix:/run/green.sock weight=4 down; # off\n", addr, w, &err), 0);
	assert_true(w[0] == 1 && w[1] == 0);
	static const struct {
		const char *text, *part;
	} bad[] = {
		{ "server 127.0.0.1:8001;\n", "no server line for 'unix:/run/green.sock'" },
		{ "server 127.0.0.1:8001;\nserver 127.0.0.1:8001;\n", "appears twice" },
		{ "server 127.0.0.1:9;\n", "neither slot's address" },
		{ "keepalive 16;\n", "line 1 is not a server line" },
		{ "server 127.0.0.1:8001 weight=0;\nserver unix:/run/green.sock;\n", "bad weight 'weight=0'" },
		{ "server 127.0.0.1:8001 weight=x;\nserver unix:/run/green.sock;\n", "bad weight" },
		{ "", "no server line" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		w[0] = w[1] = -7;
		assert_int_equal(cn_nginx_parse(bad[i].text, addr, w, &err), -CN_EINTERNAL);
		if (!strstr(err.msg, bad[i].part))
			fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i].part);
		assert_true(w[0] == -7 && w[1] == -7);
	}
}

static void test_command_shares(void **state)
{
	(void)state;
	static const struct {
		const char *json;
		double p0, p1;
	} good[] = {
		{ "{\"blue\": 95, \"green\": 5}", 95, 5 },
		{ "{\"green\": 1, \"blue\": 19}\n", 95, 5 },  /* weights are normalised */
		{ "  {\"blue\": 0.5, \"green\": 99.5}  ", 0.5, 99.5 },
		{ "{\"blue\": 0, \"green\": 0}", 0, 0 },
		{ "{\"blue\": 0, \"green\": 256}", 0, 100 },
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		double p[2] = { -1, -1 };
		struct cn_err err = { 0 };
		if (cn_command_parse_shares(good[i].json, strlen(good[i].json), slot, p, &err) != 0)
			fail_msg("'%s': %s", good[i].json, err.msg);
		assert_float_equal(p[0], good[i].p0, 1e-9);
		assert_float_equal(p[1], good[i].p1, 1e-9);
	}
	static const struct {
		const char *json, *part;
	} bad[] = {
		{ "", "not a JSON object" },
		{ "blue=95 green=5\n", "get printed 'blue=95 green=5'" },
		{ "[95, 5]", "not a JSON object" },
		{ "{\"blue\": 95}", "without a share for slot 'green'" },
		{ "{\"blue\": 95, \"green\": 5, \"red\": 0}", "share for 'red', which is neither slot" },
		{ "{\"blue\": \"95\", \"green\": 5}", "not a number >= 0" },
		{ "{\"blue\": -5, \"green\": 105}", "not a number >= 0" },
		{ "{\"blue\": 95, \"blue\": 5, \"green\": 0}", "not a JSON object" },
		{ "{\"blue\": 1e308, \"green\": 1e308}", "too large" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		double p[2] = { -1, -1 };
		struct cn_err err = { 0 };
		assert_int_equal(cn_command_parse_shares(bad[i].json, strlen(bad[i].json), slot, p, &err),
				 -CN_EINTERNAL);
		if (!strstr(err.msg, bad[i].part))
			fail_msg("'%s': message '%s' lacks '%s'", bad[i].json, err.msg, bad[i].part);
		assert_null(strchr(err.msg, '\n'));
		assert_float_equal(p[0], -1, 0);
	}
}

static void test_command_percent_text(void **state)
{
	(void)state;
	static const struct {
		double pct;
		const char *want;
	} cases[] = { { 5, "5" }, { 100, "100" }, { 0, "0" }, { 0.5, "0.5" }, { 33.333333, "33.33" },
		      { 66.666667, "66.67" }, { 99.999, "100" }, { 0.001, "0" }, { 12.10, "12.1" } };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char buf[32];
		cn_command_format_pct(cases[i].pct, buf, sizeof buf);
		assert_string_equal(buf, cases[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nginx_weights_error_bound),
		cmocka_unit_test(test_nginx_render_and_parse),
		cmocka_unit_test(test_nginx_parse_forms_and_errors),
		cmocka_unit_test(test_command_shares),
		cmocka_unit_test(test_command_percent_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
