/* A policy's preflight: section: bad input is FILE:LINE:COL and 65 (a bad key in the inline profile or the SLOs, an
 * impossible distribution, a zero rate, contract_violations with a relative limit, ttft without streaming,
 * max_increase without a baseline); the example policy loads with its pre-flight, and a policy without one keeps the
 * whole false-rollback budget for the live judges. */
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
#include "canary/preflight.h"

#define HEAD "name: p\nsteps:\n  - { weight: 1%, hold: 5s }\n  - { weight: 100%, hold: 5s }\n" \
	     "slos:\n  - { name: e, metric: error_rate, max: 1% }\n"
/* HEAD is 6 lines; preflight: is line 7 */
#define PROFILE "  profile: { rate: 10, duration: 10s, stream: true }\n"

struct bad_case {
	const char *what;
	const char *text;
	int line, col;
	const char *part;
};

static const struct bad_case bad_cases[] = {
	{ "bad key", HEAD "preflight:\n" PROFILE "  slos: [{ name: a, metric: error_rate, max: 1% }]\n  comapre: none\n",
	  10, 3, "unknown key 'comapre' (did you mean 'compare'?)" },
	{ "bad profile key", HEAD "preflight:\n  profile: { rate: 10, duration: 10s, straem: true }\n"
				 "  slos: [{ name: a, metric: error_rate, max: 1% }]\n", 8, 39, "did you mean 'stream'" },
	{ "zero rate", HEAD "preflight:\n  profile: { rate: 0, duration: 10s }\n"
			   "  slos: [{ name: a, metric: error_rate, max: 1% }]\n", 8, 20, "rate" },
	{ "p99 below median", HEAD "preflight:\n  profile: { rate: 5, duration: 10s, prompt_tokens: { median: 500, p99: 10 } }\n"
				  "  slos: [{ name: a, metric: error_rate, max: 1% }]\n", 8, 73, "below the median" },
	{ "no profile", HEAD "preflight:\n  slos: [{ name: a, metric: error_rate, max: 1% }]\n", 8, 3,
	  "missing required key 'profile'" },
	{ "contract relative", HEAD "preflight:\n" PROFILE
				   "  slos: [{ name: c, metric: contract_violations, max: 1%, max_increase: 2x }]\n", 9, 73,
	  "absolute max only" },
	{ "contract without max", HEAD "preflight:\n" PROFILE "  slos: [{ name: c, metric: contract_violations }]\n",
	  9, 10, "needs a max" },
	{ "ttft without streaming", HEAD "preflight:\n  profile: { rate: 10, duration: 10s }\n"
				       "  slos: [{ name: t, metric: ttft, quantile: 0.9, max: 1s }]\n", 9, 29,
	  "streamed answers only" },
	{ "relative without baseline", HEAD "preflight:\n" PROFILE "  compare: none\n"
					   "  slos: [{ name: l, metric: latency, quantile: 0.9, max_increase: 2x }]\n", 10,
	  67, "'compare: none'" },
	{ "latency max as a percentage", HEAD "preflight:\n" PROFILE
					     "  slos: [{ name: l, metric: latency, quantile: 0.9, max: 5% }]\n", 9, 58,
	  "must be a duration" },
	{ "bad metric", HEAD "preflight:\n" PROFILE "  slos: [{ name: x, metric: tokens, max: 1% }]\n", 9, 29,
	  "contract_violations" },
	{ "relative prompts file", HEAD "preflight:\n  profile: { rate: 5, duration: 10s, prompts_file: p.jsonl }\n"
				       "  slos: [{ name: a, metric: error_rate, max: 1% }]\n", 8, 52, "absolute path" },
};

static void test_bad_inputs(void **state)
{
	(void)state;
	struct cn_policy *p = calloc(1, sizeof *p);
	int bad = 0;
	assert_non_null(p);
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad_case *c = &bad_cases[i];
		struct cn_err err = { 0 };
		char where[64];
		int rc = cn_policy_parse(c->text, strlen(c->text), "p.yaml", p, &err);
		snprintf(where, sizeof where, "p.yaml:%d:%d: ", c->line, c->col);
		if (rc != -CN_EINPUT || strncmp(err.msg, where, strlen(where)) != 0 || !strstr(err.msg, c->part)) {
			print_error("%s: rc %d, message '%s'; wanted '%s...%s'\n", c->what, rc, err.msg, where, c->part);
			bad++;
		}
	}
	free(p);
	assert_int_equal(bad, 0);
}

static void test_example_and_budget(void **state)
{
	(void)state;
	const char *dir = getenv("CANARY_SOURCE_DIR");
	char path[1024];
	struct cn_policy *p = calloc(1, sizeof *p);
	struct cn_err err = { 0 };
	assert_non_null(p);
	assert_non_null(dir);
	snprintf(path, sizeof path, "%s/policies/demo-preflight.yaml", dir);
	if (cn_policy_load_file(path, p, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	assert_true(p->preflight.enabled);
	assert_int_equal(p->preflight.nslos, 4);
	assert_int_equal(p->preflight.slos[3].metric, CN_PF_CONTRACT_VIOLATIONS);
	assert_true(p->preflight.profile.stream);
	assert_true(fabs(cn_policy_live_budget(p) + cn_policy_preflight_budget(p) - 0.01) < 1e-12);
	assert_true(fabs(cn_policy_preflight_budget(p) - 0.002) < 1e-12);
	snprintf(path, sizeof path, "%s/policies/demo-fast.yaml", dir);
	if (cn_policy_load_file(path, p, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	assert_false(p->preflight.enabled);
	assert_true(fabs(cn_policy_live_budget(p) - 0.01) < 1e-12); /* no pre-flight: the live judges keep it all */
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_example_and_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
