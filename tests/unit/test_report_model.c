/* Unit tests for the report's view model (controller/report/report.c) and the audit's events in words
 * (controller/report/report_audit.c): each kind of event in words from its stored data, unknown kinds and missing or
 * broken data, the cut to the buffer's size, and a view model that keeps the rows and adds the words. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "canary/report.h"

static void test_describe_table(void **state)
{
	(void)state;
	static const struct {
		const char *kind, *data, *words;
	} cases[] = {
		{"rollout.started", "{\"candidate\":\"v2\",\"candidate_slot\":1,\"baseline\":\"v1\",\"policy\":\"p\"}",
		 "candidate v2 in slot 1, baseline v1, policy p"},
		{"rollout.started", "{\"candidate\":\"v2\",\"candidate_slot\":0,\"baseline\":null,\"policy\":\"p\"}",
		 "candidate v2 in slot 0, baseline unknown, policy p"},
		{"tick", "{\"decision\":\"advance\",\"step\":1,\"weight\":5,\"slos\":[{\"slo\":\"errors\",\"verdict\":"
			 "\"pass\",\"candidate\":0.004,\"baseline\":null,\"objective\":0.02,\"n_candidate\":812}]}",
		 "advance at step 2, weight 5%: errors pass (candidate 0.004, baseline n/a, objective 0.02, n=812)"},
		{"tick", "{\"decision\":\"hold\",\"step\":0,\"weight\":1,\"slos\":[{\"slo\":\"a\",\"verdict\":\"pass\"},"
			 "{\"slo\":\"b\",\"verdict\":\"inconclusive\"}]}",
		 "hold at step 1, weight 1%: a pass (candidate n/a, baseline n/a, objective n/a, n=n/a); b inconclusive "
		 "(candidate n/a, baseline n/a, objective n/a, n=n/a)"},
		{"weight.intended", "{\"from\":1,\"to\":5}", "weight 1% -> 5%"},
		{"weight.confirmed", "{\"weight\":1}", "gateway confirmed weight 1%"},
		{"weight.reconciled", "{\"weight\":0,\"found\":5}", "gateway reset to weight 0% (it had 5%)"},
		{"weight.reconciled", "{\"weight\":0,\"found\":null}", "gateway reset to weight 0% (it had n/a%)"},
		{"state.changed", "{\"from\":\"progressing\",\"to\":\"paused\"}", "progressing -> paused"},
		{"command.accepted", "{\"command\":\"approve\"}", "approve accepted"},
		{"command.refused", "{\"command\":\"resume\",\"error\":\"not paused\"}", "resume refused: not paused"},
		{"service.live_changed", "{\"live_slot\":1,\"live_version\":\"v2\"}", "slot 1 is live with v2"},
		{"policy.applied", "{\"version\":3,\"name\":\"p\"}", "{\"name\":\"p\",\"version\":3}"}, /* sorted keys */
		{"policy.applied", "{}", ""},
		{"policy.applied", NULL, ""},
		{"tick", "not json", " at step 1, weight nan%"},
		{NULL, NULL, ""},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char buf[512];
		cn_audit_describe(cases[i].kind, cases[i].data, buf, sizeof buf);
		if (strcmp(buf, cases[i].words) != 0)
			fail_msg("case %zu (%s): got '%s', want '%s'", i, cases[i].kind ? cases[i].kind : "NULL", buf,
				 cases[i].words);
	}
}

static void test_describe_cut(void **state)
{
	(void)state;
	char buf[12];
	memset(buf, 'x', sizeof buf);
	cn_audit_describe("state.changed", "{\"from\":\"progressing\",\"to\":\"awaiting_approval\"}", buf, sizeof buf);
	assert_int_equal(strlen(buf), sizeof buf - 1);
	assert_memory_equal(buf, "progressing", 11);
}

static void test_build(void **state)
{
	(void)state;
	static const struct cn_report_weight w[] = {{1000, 1}, {2000, 5}};
	static const struct cn_report_marker m[] = {{2000, "advance", "canaryd", "all pass"}};
	static const struct cn_report_audit_row ev[] = {
		{1, 1000, "alice", "rollout.started", "why", "{\"candidate\":\"v2\",\"candidate_slot\":1,"
							     "\"baseline\":\"v1\",\"policy\":\"p\"}", "aa"},
		{2, 2000, "canaryd", "weight.confirmed", NULL, "{\"weight\":5}", "bb"},
		{3, 2500, "canaryd", "lease.taken", NULL, NULL, "cc"},
	};
	struct cn_report_rows rows = {.rollout = {.id = 7, .service = "chat", .phase = "progressing"},
				      .weights = w, .nweights = 2, .markers = m, .nmarkers = 1,
				      .events = ev, .nevents = 3, .events_total = 9};
	struct cn_err err = {0};
	struct cn_report *r = cn_report_build(&rows, &err);
	assert_non_null(r);
	assert_int_equal(r->rollout.id, 7);
	assert_string_equal(r->rollout.service, "chat");
	assert_ptr_equal(r->weights, w);
	assert_int_equal(r->nweights, 2);
	assert_ptr_equal(r->markers, m);
	assert_int_equal(r->nslos, 0);
	assert_int_equal(r->nevents, 3);
	assert_int_equal(r->events_total, 9);
	assert_string_equal(r->events[0].what, "candidate v2 in slot 1, baseline v1, policy p");
	assert_string_equal(r->events[0].reason, "why");
	assert_string_equal(r->events[0].hash, "aa");
	assert_string_equal(r->events[1].what, "gateway confirmed weight 5%");
	assert_int_equal(r->events[1].at_ms, 2000);
	assert_string_equal(r->events[2].what, "");
	assert_string_equal(r->events[2].kind, "lease.taken");
	cn_report_free(r);

	struct cn_report_rows none = {.rollout = {.id = 8}};
	r = cn_report_build(&none, &err);
	assert_non_null(r);
	assert_int_equal(r->nevents, 0);
	cn_report_free(r);
	cn_report_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_describe_table),
		cmocka_unit_test(test_describe_cut),
		cmocka_unit_test(test_build),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
