/* Unit tests of the state JSON: the sequential judge's state round-trips through cn_state_to_json /
 * cn_state_from_json, a state written before it existed loads with fresh tests, and cn_slo_results_to_json writes
 * the sequential numbers. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "canary/judge.h"
#include "canary/rollout.h"
#include "canary/state_json.h"

static void test_seq_round_trip(void **state)
{
	(void)state;
	static struct cn_rollout_state st, back;
	struct cn_err err = { 0 };
	cn_rollout_init(&st);
	cn_seq_init(&st.seq.slo[1], 1.5);
	cn_seq_add(&st.seq.slo[1], 0.01, 3, 250);
	cn_seq_add_dispersion(&st.seq.slo[1], 250, 99000);
	st.seq.slo[1].threshold = 1.25;
	st.seq.slo[1].x_c = 3, st.seq.slo[1].x_b = 250, st.seq.slo[1].n_c = 1000, st.seq.slo[1].n_b = 99000;
	cn_seq_restart(&st.seq.slo[1]);
	cn_seq_add(&st.seq.slo[1], 0.01, 4, 240);
	cn_seq_restart(&st.seq.slo[1]);
	cn_seq_add(&st.seq.slo[1], 0.01, 1, 230);
	st.seq.slo[1].max = 0.01;
	cn_seq_add_max(&st.seq.slo[1], 4, 1000);
	cn_seq_add(&st.seq.srm, 0.05, 480, 9520);
	json_t *j = cn_state_to_json(&st);
	assert_non_null(j);
	memset(&back, 0x5a, sizeof back);
	assert_int_equal(cn_state_from_json(j, &back, &err), 0);
	json_decref(j);
	for (int i = 0; i < CN_SEQ_NGRID; i++) {
		assert_true(back.seq.slo[1].llr[i] == st.seq.slo[1].llr[i]);
		assert_true(back.seq.srm.llr[i] == st.seq.srm.llr[i]);
	}
	const struct cn_seq_stat *a = &st.seq.slo[1], *b = &back.seq.slo[1];
	assert_true(b->llr_tol == a->llr_tol && b->tol == 1.5 && b->threshold == 1.25);
	assert_true(b->x_c == 3 && b->x_b == 250 && b->n_c == 1000 && b->n_b == 99000);
	assert_true(b->disp_xx_n == a->disp_xx_n && b->disp_x == a->disp_x && b->disp_n == a->disp_n);
	assert_int_equal(b->disp_ticks, 1);
	assert_int_equal(b->ticks, 3);
	assert_int_equal(back.seq.srm.ticks, 1);
	/* restarted processes and the absolute-max test */
	assert_int_equal(b->nrs, a->nrs);
	assert_int_equal(b->restarts, a->restarts);
	assert_int_equal(b->since_ticks, a->since_ticks);
	assert_true(b->since == a->since);
	for (int k = 0; k < a->nrs; k++) {
		assert_int_equal(b->rs[k].index, a->rs[k].index);
		for (int i = 0; i < CN_SEQ_NROLL; i++)
			assert_true(b->rs[k].llr[i] == a->rs[k].llr[i]);
	}
	assert_true(b->max == 0.01);
	for (int i = 0; i < CN_SEQ_NMAX; i++)
		assert_true(b->llr_max[i] == a->llr_max[i] && a->llr_max[i] != 0);
	assert_true(cn_seq_statistic(b, 1) == cn_seq_statistic(a, 1));
	/* untouched tests keep NAN tolerance and threshold (JSON null) */
	assert_true(isnan(back.seq.slo[0].tol) && isnan(back.seq.slo[0].threshold));
	assert_int_equal(back.seq.slo[0].ticks, 0);
}

/* The unit-economics evidence, costs, token counters and per-feature breakdown survive the store (a daemon that
 * takes over a rollout judges on what the last one saw); a state without them loads with none. */
static void test_econ_round_trip(void **state)
{
	(void)state;
	static struct cn_rollout_state st, back;
	struct cn_err err = { 0 };
	cn_rollout_init(&st);
	struct cn_counters *c = &st.acc_candidate;
	c->econ = (struct cn_econ_acc){ .ticks = 7, .g = 7000, .b = 14.5, .gg = 7e6, .bb = 30.1, .gb = 14500,
					.prompt = 1400, .seconds = 70 };
	c->cost = (struct cn_cost){ .per_hour = 12.4, .replicas = 4, .per_1k_tokens = NAN };
	c->nfeatures = 2;
	snprintf(c->features[0].name, sizeof c->features[0].name, "search");
	c->features[0] = (struct cn_feature){ "search", 4000, 40, 8.5 };
	c->features[1] = (struct cn_feature){ "chat", 3000, 30, 6 };
	st.ref_baseline.cost = (struct cn_cost){ .per_hour = NAN, .replicas = NAN, .per_1k_tokens = 0.002 };
	st.have_last = true;
	st.last.candidate.ok = st.last.baseline.ok = true;
	st.last.candidate.gen_tokens = 123456;
	st.last.candidate.prompt_tokens = 7890;
	json_t *j = cn_state_to_json(&st);
	assert_non_null(j);
	memset(&back, 0x5a, sizeof back);
	assert_int_equal(cn_state_from_json(j, &back, &err), 0);
	json_decref(j);
	const struct cn_counters *b = &back.acc_candidate;
	assert_true(memcmp(&b->econ, &c->econ, sizeof b->econ) == 0);
	assert_true(b->cost.per_hour == 12.4 && b->cost.replicas == 4 && isnan(b->cost.per_1k_tokens));
	assert_int_equal(b->nfeatures, 2);
	assert_string_equal(b->features[1].name, "chat");
	assert_true(b->features[1].gen_tokens == 3000 && b->features[1].requests == 30 &&
		    b->features[1].latency_sum == 6);
	assert_true(isnan(back.ref_baseline.cost.per_hour) && back.ref_baseline.cost.per_1k_tokens == 0.002);
	assert_true(back.last.candidate.gen_tokens == 123456 && back.last.candidate.prompt_tokens == 7890);
	/* the baseline had none of it */
	assert_true(back.acc_baseline.econ.ticks == 0 && back.acc_baseline.nfeatures == 0);
	assert_true(isnan(back.acc_baseline.cost.per_hour) && isnan(back.last.baseline.gen_tokens));
}

/* SLO slots past the last one in use are left out of the JSON and load as they were, bit for bit; one in use
 * anywhere keeps every slot before it. */
static void test_unused_slots_left_out(void **state)
{
	(void)state;
	static struct cn_rollout_state st, back;
	struct cn_err err = { 0 };
	static const struct { int used, slots; } cases[] = { { -1, 0 }, { 0, 1 }, { 2, 3 }, { CN_MAX_SLOS - 1, CN_MAX_SLOS } };
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		cn_rollout_init(&st);
		if (cases[c].used >= 0) {
			cn_seq_init(&st.seq.slo[cases[c].used], 1.5); /* a threshold alone makes a slot used */
			if (cases[c].used > 0)
				cn_seq_add(&st.seq.slo[0], 0.01, 3, 250);
		}
		json_t *j = cn_state_to_json(&st);
		assert_int_equal(json_array_size(json_object_get(json_object_get(j, "seq"), "slos")), cases[c].slots);
		memset(&back, 0xa5, sizeof back);
		assert_int_equal(cn_state_from_json(j, &back, &err), 0);
		assert_true(memcmp(&back.seq, &st.seq, sizeof st.seq) == 0);
		json_decref(j);
	}
}

static void test_old_state_loads(void **state)
{
	(void)state;
	static struct cn_rollout_state st, back;
	struct cn_err err = { 0 };
	cn_rollout_init(&st);
	json_t *j = cn_state_to_json(&st);
	json_object_del(j, "seq");
	assert_int_equal(cn_state_from_json(j, &back, &err), 0);
	assert_true(isnan(back.seq.slo[3].threshold));
	assert_int_equal(back.seq.srm.ticks, 0);
	/* a test saved before restarts and the max test existed: none yet, no max (set again by the judge) */
	cn_seq_add(&st.seq.slo[0], 0.01, 3, 250);
	json_decref(j);
	j = cn_state_to_json(&st);
	json_t *t0 = json_array_get(json_object_get(json_object_get(j, "seq"), "slos"), 0);
	static const char *const newer[] = { "restarted", "restarts", "since", "since_ticks", "llr_max", "max" };
	for (size_t i = 0; i < sizeof newer / sizeof newer[0]; i++)
		assert_int_equal(json_object_del(t0, newer[i]), 0);
	assert_int_equal(cn_state_from_json(j, &back, &err), 0);
	assert_int_equal(back.seq.slo[0].ticks, 1);
	assert_int_equal(back.seq.slo[0].nrs, 0);
	assert_int_equal(back.seq.slo[0].restarts, 0);
	assert_true(isnan(back.seq.slo[0].max) && back.seq.slo[0].llr_max[0] == 0);
	assert_true(cn_seq_statistic(&back.seq.slo[0], 1) == cn_seq_statistic(&st.seq.slo[0], 1));
	/* a restarted process with an index beyond the restarts counted is corrupt */
	json_object_set_new(t0, "restarts", json_integer(0));
	json_object_set_new(t0, "restarted", json_pack("[{s:i,s:[f,f,f,f,f]}]", "index", 1, "llr", 0., 0., 0., 0., 0.));
	assert_int_equal(cn_state_from_json(j, &back, &err), -CN_EINTERNAL);
	/* a malformed test is an error, not silently zero */
	json_object_set_new(j, "seq", json_pack("{s:[{s:[i]}]}", "slos", "llr", 1));
	assert_int_equal(cn_state_from_json(j, &back, &err), -CN_EINTERNAL);
	json_decref(j);
}

static void test_results_json(void **state)
{
	(void)state;
	struct cn_policy p;
	struct cn_slo_result r[2];
	memset(&p, 0, sizeof p);
	memset(r, 0, sizeof r);
	p.nslos = 2;
	snprintf(p.slos[0].name, sizeof p.slos[0].name, "error-rate");
	snprintf(p.slos[1].name, sizeof p.slos[1].name, "p99");
	r[0] = (struct cn_slo_result){ .verdict = CN_VERDICT_PASS, .candidate = 0.005, .baseline = 0.005,
				       .objective = 0.0075, .n_candidate = 1000, .n_baseline = 99000, .statistic = -1.5,
				       .boundary = log(200), .ratio = 1, .ratio_upper = INFINITY, .tolerance = 1.5,
				       .threshold = NAN, .dispersion = 1, .promotable = false };
	r[1] = (struct cn_slo_result){ .verdict = CN_VERDICT_FAIL, .candidate = 2, .baseline = 1, .objective = 1.2,
				       .statistic = NAN, .boundary = NAN, .ratio = NAN, .ratio_upper = NAN,
				       .tolerance = NAN, .threshold = NAN, .dispersion = NAN, .promotable = true };
	json_t *a = cn_slo_results_to_json(&p, r, 2);
	json_t *s = json_array_get(a, 0), *t = json_array_get(a, 1);
	assert_true(fabs(json_real_value(json_object_get(s, "boundary")) - log(200)) < 1e-12);
	assert_true(json_real_value(json_object_get(s, "statistic")) == -1.5);
	assert_true(json_is_null(json_object_get(s, "ratio_upper"))); /* no bound yet */
	assert_true(json_real_value(json_object_get(s, "tolerance")) == 1.5);
	assert_true(json_is_false(json_object_get(s, "promotable")));
	assert_null(json_object_get(t, "statistic")); /* threshold judge: no sequential fields */
	json_decref(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seq_round_trip),
		cmocka_unit_test(test_econ_round_trip),
		cmocka_unit_test(test_unused_slots_left_out),
		cmocka_unit_test(test_old_state_loads),
		cmocka_unit_test(test_results_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
