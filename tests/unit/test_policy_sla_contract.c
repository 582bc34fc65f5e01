/* The SLA contract loader: bad inputs give "ORIGIN:LINE:COL: message" at the offending node (a bad key, a negative
 * price, a window the ledger's minutes cannot make, an objective missing what its metric needs, an upside-down
 * credit table), an objective the service's metrics cannot compute is refused at its metric, and the example
 * contract loads as documented. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/sla_contract.h"

#define HEAD "name: gold\nobjectives:\n"
#define LAT "  - { name: p99, metric: latency, quantile: 0.99, max: 800ms, window: 5m, target: 99% }\n"

struct bad_case {
	const char *what;
	const char *text;
	int line, col;
	const char *part;
};

static const struct bad_case bad_cases[] = {
	{ "unknown key", "name: gold\nprise: 10\nobjectives:\n" LAT, 2, 1, "unknown key 'prise' (did you mean 'price'?)" },
	{ "negative price", "name: gold\nprice: -5\nobjectives:\n" LAT, 2, 8, "price '-5' must be at least 0" },
	{ "unknown objective key", HEAD "  - { name: p99, metric: latency, quantile: 0.99, max: 800ms, windw: 5m }\n", 3,
	  63, "unknown key 'windw' (did you mean 'window'?)" },
	{ "window of 7 minutes", HEAD "  - { name: p99, metric: latency, quantile: 0.99, max: 8s, window: 7m, target: 9% }\n",
	  3, 68, "window '7m' cannot be computed from the ledger's minutes" },
	{ "window of 90 seconds", HEAD "  - { name: p99, metric: latency, quantile: 0.99, max: 8s, window: 90s, target: 9% }\n",
	  3, 68, "cannot be computed" },
	{ "window is words", HEAD "  - { name: p99, metric: latency, quantile: 0.99, max: 8s, window: weekly, target: 9% }\n",
	  3, 68, "neither 'month' nor a duration" },
	{ "latency without max", HEAD "  - { name: p99, metric: latency, quantile: 0.99 }\n", 3, 5,
	  "latency needs quantile and max" },
	{ "availability with a quantile", HEAD "  - { name: a, metric: availability, min: 99%, quantile: 0.9 }\n", 3, 58,
	  "availability takes min" },
	{ "availability without min", HEAD "  - { name: a, metric: availability }\n", 3, 5, "availability needs min" },
	{ "target on a month", HEAD "  - { name: a, metric: availability, min: 99%, target: 99% }\n", 3, 56,
	  "target is for windows shorter than the month" },
	{ "windowed without target", HEAD "  - { name: p99, metric: ttft, quantile: 0.9, max: 1s, window: 1h }\n", 3, 5,
	  "needs target" },
	{ "unknown metric", HEAD "  - { name: a, metric: uptime, min: 99% }\n", 3, 24, "got 'uptime'" },
	{ "min above 100%", HEAD "  - { name: a, metric: availability, min: 101% }\n", 3, 43, "'101%' is over 100%" },
	{ "duplicate objective", HEAD LAT LAT, 4, 13, "objective name 'p99' is used twice" },
	{ "no objectives", "name: gold\nobjectives: []\n", 2, 13, "'objectives' must have at least one entry" },
	{ "credits upside down", "name: gold\nobjectives:\n" LAT "credits:\n  - { below: 99.9%, credit: 50% }\n"
	  "  - { below: 99%, credit: 10% }\n", 6, 27, "a lower attainment cannot earn a smaller credit" },
	{ "an objective's credits upside down", HEAD "  - name: a\n    metric: availability\n    min: 99%\n"
	  "    credits:\n      - { below: 99%, credit: 50% }\n      - { below: 95%, credit: 10% }\n", 8, 31,
	  "a lower attainment cannot earn a smaller credit" },
	{ "negative credit", "name: gold\nobjectives:\n" LAT "credits:\n  - { below: 99.9%, credit: -5% }\n", 5, 29,
	  "must not be negative" },
	{ "no name", "objectives:\n" LAT, 1, 1, "missing required key 'name'" },
};

static void test_bad_inputs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad_case *c = &bad_cases[i];
		struct cn_sla_contract k;
		struct cn_err err = {0};
		char where[64];
		memset(&k, 0x5a, sizeof k);
		int rc = cn_sla_contract_parse(c->text, strlen(c->text), "c.yaml", &k, &err);
		snprintf(where, sizeof where, "c.yaml:%d:%d: ", c->line, c->col);
		if (rc != -CN_EINPUT || strncmp(err.msg, where, strlen(where)) != 0 || !strstr(err.msg, c->part))
			fail_msg("%s: rc %d, message '%s'; wanted '%s...%s'", c->what, rc, err.msg, where, c->part);
		assert_int_equal(err.code, CN_EINPUT);
		assert_int_equal(((unsigned char *)&k)[0], 0x5a); /* output untouched on failure */
	}
}

static void test_example(void **state)
{
	(void)state;
	char path[1024];
	const char *top = getenv("CANARY_SOURCE_DIR");
	snprintf(path, sizeof path, "%s/policies/sla-contract.yaml", top ? top : ".");
	struct cn_sla_contract c;
	struct cn_err err = {0};
	char *src = NULL;
	if (cn_sla_contract_load_file(path, &c, &src, &err) != 0)
		fail_msg("%s", err.msg);
	assert_non_null(src);
	free(src);
	assert_string_equal(c.name, "demo-gold");
	assert_string_equal(c.service, "demo");
	assert_true(c.price == 12000);
	assert_string_equal(c.currency, "USD");
	assert_int_equal(c.no_data, CN_SLA_NODATA_MISS);
	assert_int_equal(c.nobjectives, 3);
	assert_int_equal(c.objectives[0].metric, CN_SLA_LATENCY);
	assert_int_equal(c.objectives[0].max_ms, 800);
	assert_int_equal(c.objectives[0].window_ms, 300000);
	assert_true(fabs(c.objectives[0].target - 0.99) < 1e-12);
	assert_int_equal(c.objectives[1].metric, CN_SLA_TTFT);
	assert_int_equal(c.objectives[1].window_ms, 3600000);
	assert_int_equal(c.objectives[2].metric, CN_SLA_AVAILABILITY);
	assert_int_equal(c.objectives[2].window_ms, 0);
	assert_true(fabs(c.objectives[2].min - 0.999) < 1e-12);
	assert_true(isnan(c.objectives[2].target));
	assert_int_equal(c.ncredits, 3);
	assert_int_equal(c.objectives[0].ncredits, 0);
	assert_int_equal(c.objectives[2].ncredits, 2);
	assert_true(fabs(c.objectives[2].credits[1].credit - 0.30) < 1e-12);
	assert_true(fabs(c.credits[2].below - 0.95) < 1e-12 && fabs(c.credits[2].credit - 1.0) < 1e-12);
	/* defaults */
	const char *t = "name: x\nobjectives:\n  - { name: a, metric: availability, min: 99% }\n";
	assert_int_equal(cn_sla_contract_parse(t, strlen(t), "x.yaml", &c, &err), 0);
	assert_true(c.price == 0);
	assert_string_equal(c.currency, "USD");
	assert_string_equal(c.objectives[0].window, "month");
	assert_int_equal(c.ncredits, 0);
}

/* An objective the service's metrics cannot compute: refused at the objective's metric, 65. */
static void test_check_service(void **state)
{
	(void)state;
	const char *t = "name: x\nobjectives:\n" LAT "  - name: ttft\n    metric: ttft\n    quantile: 0.9\n"
			"    max: 1s\n    window: 1h\n    target: 99%\n";
	struct cn_sla_contract c;
	struct cn_err err = {0};
	assert_int_equal(cn_sla_contract_parse(t, strlen(t), "x.yaml", &c, &err), 0);
	struct cn_service *sv = calloc(1, sizeof *sv);
	assert_non_null(sv);
	snprintf(sv->name, sizeof sv->name, "chat");
	snprintf(sv->metrics.names.requests, sizeof sv->metrics.names.requests, "r");
	snprintf(sv->metrics.names.errors, sizeof sv->metrics.names.errors, "e");
	snprintf(sv->metrics.names.latency, sizeof sv->metrics.names.latency, "l");
	assert_int_equal(cn_sla_contract_check_service(&c, sv, &err), -CN_EINPUT);
	assert_int_equal(err.code, CN_EINPUT);
	assert_string_equal(err.msg, "x.yaml:5:13: objective 'ttft' cannot be computed: service 'chat' has no "
				     "time-to-first-token histogram (metrics.ttft); configure it in the service or drop the "
				     "objective");
	snprintf(sv->metrics.names.ttft, sizeof sv->metrics.names.ttft, "t");
	assert_int_equal(cn_sla_contract_check_service(&c, sv, &err), 0);
	free(sv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_check_service),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
