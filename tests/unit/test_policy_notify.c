/* The `notify:` list of policy and service files: bad webhooks give "ORIGIN:LINE:COL: message" at the offending
 * node; good ones load with their defaults (all events, json, 5s, unsigned) and the events named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/policy.h"
#include "canary/service.h"

/* a policy whose notify list starts on line 8 (its first hook's first key on line 9, column 5) */
#define POLICY "name: p\nsteps:\n  - weight: 100%\n    hold: 1m\nslos:\n  - name: e\n    metric: error_rate\n" \
	       "    max: 1%\nnotify:\n"
#define SERVICE "name: s\ngateway: { runtime_api: /run/h.sock, backend: b }\nslots:\n" \
		"  blue:  { server: blue,  metrics_url: http://127.0.0.1:8001/metrics }\n" \
		"  green: { server: green, metrics_url: http://127.0.0.1:8002/metrics }\nlive: blue\nnotify:\n"

struct bad_case {
	const char *what;
	const char *text;
	int line, col;
	const char *part;
};

static const struct bad_case bad_cases[] = {
	{ "ftp url", POLICY "  - url: ftp://example.com/hook\n", 10, 10, "must start with http:// or https://" },
	{ "no host", POLICY "  - url: http:///hook\n", 10, 10, "has no host" },
	{ "no url", POLICY "  - events: [promoted]\n", 10, 5, "missing required key 'url'" },
	{ "unknown event", POLICY "  - url: http://h/x\n    events: [promoted, rolledback]\n", 11, 24,
	  "unknown event 'rolledback'; one of started, step_advanced" },
	{ "event twice", POLICY "  - url: http://h/x\n    events: [paused, paused]\n", 11, 22, "listed twice" },
	{ "events empty", POLICY "  - url: http://h/x\n    events: []\n", 11, 13, "'events' is empty" },
	{ "events as text", POLICY "  - url: http://h/x\n    events: promoted\n", 11, 13, "must be a list of event names" },
	{ "empty secret", POLICY "  - url: http://h/x\n    secret: \"\"\n", 11, 13, "secret is empty" },
	{ "no secret value", POLICY "  - url: http://h/x\n    secret:\n", 11, 12, "'secret' has no value" },
	{ "both secrets", POLICY "  - url: http://h/x\n    secret: k\n    secret_env: K\n", 12, 17,
	  "either secret or secret_env, not both" },
	{ "bad env name", POLICY "  - url: http://h/x\n    secret_env: 1K\n", 11, 17, "not an environment variable name" },
	{ "bad format", POLICY "  - url: http://h/x\n    format: teams\n", 11, 13, "expected one of json, slack" },
	{ "long timeout", POLICY "  - url: http://h/x\n    timeout: 1m\n", 11, 14, "must be at most 30s" },
	{ "unknown key", POLICY "  - url: http://h/x\n    secrt: k\n", 11, 5, "unknown key 'secrt' (did you mean 'secret'?)" },
	{ "too many", POLICY "  - url: http://h/1\n  - url: http://h/2\n  - url: http://h/3\n  - url: http://h/4\n"
	  "  - url: http://h/5\n", 14, 5, "too many entries in 'notify'" },
	{ "service: bad event", SERVICE "  - url: http://h/x\n    events: [sla]\n", 9, 14, "unknown event 'sla'" },
	{ "service: empty secret", SERVICE "  - url: http://h/x\n    secret: ''\n", 9, 13, "secret is empty" },
	{ "policy: a drill event", POLICY "  - url: http://h/x\n    events: [promoted, drill_passed]\n", 11, 24,
	  "event 'drill_passed' is a service's, not a rollout's" },
	{ "policy: an SLA event", POLICY "  - url: http://h/x\n    events: [sla_window_missed]\n", 11, 14,
	  "name the webhook in the service file's notify: instead" },
	{ "service: sla bad key", SERVICE "  - url: http://h/x\nsla:\n  name: c\n  objectivs: []\n", 11, 3,
	  "unknown key 'objectivs' (did you mean 'objectives'?)" },
	{ "service: sla for another", SERVICE "  - url: http://h/x\nsla:\n  name: c\n  service: other\n"
	  "  objectives:\n    - { name: a, metric: availability, min: 99% }\n", 11, 12,
	  "the contract names service 'other', but this is service 's'" },
	{ "service: sla window", SERVICE "  - url: http://h/x\nsla:\n  name: c\n  objectives:\n"
	  "    - { name: a, metric: latency, quantile: 0.99, max: 1s, window: 7m, target: 99% }\n", 12, 68,
	  "window '7m' cannot be computed from the ledger's minutes" },
	{ "service: sla not computable", SERVICE "  - url: http://h/x\nsla:\n  name: c\n  objectives:\n"
	  "    - { name: t, metric: ttft, quantile: 0.9, max: 1s, window: 5m, target: 99% }\nmetrics: { preset: tgi }\n",
	  12, 26, "objective 't' cannot be computed: service 's' has no time-to-first-token histogram" },
};

static void test_bad_hooks(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad_case *c = &bad_cases[i];
		struct cn_err err = {0};
		int rc;
		char want[64];
		if (strncmp(c->what, "service:", 8) == 0) {
			struct cn_service *s = calloc(1, sizeof *s);
			rc = cn_service_parse(c->text, strlen(c->text), "f.yaml", s, &err);
			free(s);
		} else {
			struct cn_policy *p = calloc(1, sizeof *p);
			rc = cn_policy_parse(c->text, strlen(c->text), "f.yaml", p, &err);
			free(p);
		}
		snprintf(want, sizeof want, "f.yaml:%d:%d: ", c->line, c->col);
		if (rc != -CN_EINPUT || strncmp(err.msg, want, strlen(want)) != 0 || !strstr(err.msg, c->part))
			fail_msg("%s: want '%s...%s', got rc %d '%s'", c->what, want, c->part, rc, err.msg);
	}
}

static void test_good_hooks(void **state)
{
	(void)state;
	static const char text[] = POLICY "  - url: https://hooks.example.com/T0/B0\n    format: slack\n"
				   "    events: [rolled_back, promoted]\n    secret_env: SLACK_SIGNING\n"
				   "  - url: http://127.0.0.1:9000/canary\n";
	struct cn_policy *p = calloc(1, sizeof *p);
	struct cn_err err = {0};
	assert_non_null(p);
	if (cn_policy_parse(text, strlen(text), "f.yaml", p, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(p->notify.nhooks, 2);
	const struct cn_notify_hook *a = &p->notify.hooks[0], *b = &p->notify.hooks[1];
	assert_string_equal(a->url, "https://hooks.example.com/T0/B0");
	assert_int_equal(a->format, CN_NOTIFY_SLACK);
	assert_int_equal(a->events, CN_EV_ROLLED_BACK | CN_EV_PROMOTED);
	assert_string_equal(a->secret_env, "SLACK_SIGNING");
	assert_string_equal(a->secret, "");
	assert_int_equal(a->timeout_ms, 5000);
	assert_int_equal(b->events, CN_EVENTS_ROLLOUT); /* a policy's hook hears its rollouts */
	assert_int_equal(b->format, CN_NOTIFY_JSON);
	assert_string_equal(b->secret_env, "");
	/* every event bit has a name, and only those */
	for (unsigned bit = 1; bit <= CN_EVENTS_ALL; bit <<= 1)
		assert_non_null(cn_notify_event_name(bit));
	assert_null(cn_notify_event_name(CN_EVENTS_ALL + 1));
	free(p);
}

/* A service's hook hears its drills and SLA windows too; the sla: section is a contract. */
static void test_service_hooks(void **state)
{
	(void)state;
	static const char text[] = SERVICE "  - url: http://h/all\n  - url: http://h/drills\n"
				   "    events: [drill_passed, drill_cut_short, sla_window_missed]\n"
				   "sla:\n  name: gold\n  objectives:\n"
				   "    - { name: p99, metric: latency, quantile: 0.99, max: 800ms, window: 5m, target: 99% }\n";
	struct cn_service *s = calloc(1, sizeof *s);
	struct cn_err err = {0};
	assert_non_null(s);
	if (cn_service_parse(text, strlen(text), "f.yaml", s, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(s->notify.hooks[0].events, CN_EVENTS_ALL);
	assert_int_equal(s->notify.hooks[1].events, CN_EV_DRILL_PASSED | CN_EV_DRILL_CUT_SHORT | CN_EV_SLA_WINDOW_MISSED);
	assert_string_equal(s->sla.name, "gold");
	assert_int_equal(s->sla.nobjectives, 1);
	assert_int_equal(s->sla.objectives[0].window_ms, 300000);
	assert_int_equal(s->sla.objectives[0].max_ms, 800);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_hooks),
		cmocka_unit_test(test_good_hooks),
		cmocka_unit_test(test_service_hooks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
