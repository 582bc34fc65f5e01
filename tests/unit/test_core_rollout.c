/* Unit tests of the rollout state machine: every transition of cn_tick and cn_command, driven by a small simulator
 * of cumulative counters (no I/O). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "canary/judge.h"
#include "canary/rollout.h"

#define assert_contains(hay, needle)                                                                        \
	do {                                                                                                \
		if (!strstr((hay), (needle)))                                                               \
			fail_msg("'%s' does not contain '%s'", (hay), (needle));                            \
	} while (0)

#define T0 1700000000000LL /* ms since the epoch */
#define SEC 1000LL

/* ---- a tiny simulator of two variants' cumulative counters ---- */

#define NB 7
static const double SIM_LE[NB] = {0.1, 0.25, 0.5, 1, 2, 4, INFINITY};
/* observations per bucket per 100 requests: healthy p99 = 2s; slow: 5% above 4s (p99 beyond the last bucket) */
static const int HEALTHY[NB] = {10, 30, 40, 15, 4, 1, 0};
static const int SLOW[NB] = {0, 5, 20, 40, 20, 10, 5};

struct sim {
	struct cn_observation obs;
};

static void hist_init(struct cn_histogram *h)
{
	h->nbuckets = NB;
	for (int i = 0; i < NB; i++) {
		h->le[i] = SIM_LE[i];
		h->count[i] = 0;
	}
	h->sum = 0;
}

static void sample_init(struct cn_sample *s)
{
	memset(s, 0, sizeof *s);
	s->ok = true;
	s->requests = 0;
	s->errors = 0;
	hist_init(&s->latency);
	hist_init(&s->ttft);
	hist_init(&s->itl);
}

/* `hundreds` x 100 requests, errs per 100 failing, latencies shaped `shape` */
static void feed(struct cn_sample *s, double hundreds, double errs, const int *shape)
{
	s->requests += 100 * hundreds;
	s->errors += errs * hundreds;
	struct cn_histogram *hs[] = {&s->latency, &s->ttft, &s->itl};
	for (int k = 0; k < 3; k++) {
		double cum = 0;
		for (int i = 0; i < NB; i++) {
			cum += shape[i] * hundreds;
			hs[k]->count[i] += cum;
		}
	}
}

static struct sim *sim_new(void)
{
	struct sim *s = calloc(1, sizeof *s);
	assert_non_null(s);
	sample_init(&s->obs.baseline);
	sample_init(&s->obs.candidate);
	feed(&s->obs.baseline, 50, 1, HEALTHY); /* the baseline has served a while */
	return s;
}

/* One interval of traffic: baseline 10,000 healthy requests with 1% errors (enough for the threshold judge's bound
 * on the baseline's p99 from the first tick); candidate as given. */
static const struct cn_observation *traffic(struct sim *s, int64_t now, double cand_hundreds, double cand_errs,
					    const int *cand_shape)
{
	feed(&s->obs.baseline, 100, 1, HEALTHY);
	feed(&s->obs.candidate, cand_hundreds, cand_errs, cand_shape);
	s->obs.at_ms = now;
	return &s->obs;
}

static const struct cn_observation *healthy(struct sim *s, int64_t now)
{
	return traffic(s, now, 1, 1, HEALTHY);
}

/* ---- policy and ticking ---- */

static struct cn_slo mkslo(const char *name, enum cn_slo_metric m, double q, double max, double max_increase)
{
	struct cn_slo s;
	memset(&s, 0, sizeof s);
	snprintf(s.name, sizeof s.name, "%s", name);
	s.metric = m;
	s.quantile = q;
	s.max = max;
	s.max_increase = max_increase;
	s.tolerance = NAN;
	return s;
}

static struct cn_policy policy(void)
{
	struct cn_policy p;
	memset(&p, 0, sizeof p);
	snprintf(p.name, sizeof p.name, "test");
	static const double w[] = {1, 5, 100};
	for (int i = 0; i < 3; i++) {
		p.steps[i].weight = w[i];
		p.steps[i].hold_ms = 60 * SEC;
		p.steps[i].approval = false;
	}
	p.nsteps = 3;
	p.analysis.interval_ms = 10 * SEC;
	p.analysis.min_requests = 100;
	p.analysis.failing_ticks = 3;
	p.analysis.inconclusive_timeout_ms = 120 * SEC;
	p.analysis.on_inconclusive = CN_FALLBACK_PAUSE;
	p.analysis.judge = CN_JUDGE_THRESHOLD;
	p.slos[0] = mkslo("errors", CN_METRIC_ERROR_RATE, NAN, 0.05, 2);
	p.slos[1] = mkslo("p99-latency", CN_METRIC_LATENCY, 0.99, NAN, 1.5);
	p.slos[2] = mkslo("p95-ttft", CN_METRIC_TTFT, 0.95, 10, NAN);
	p.slos[3] = mkslo("p99-itl", CN_METRIC_ITL, 0.99, NAN, 1.5);
	p.nslos = 4;
	p.on_failure = CN_FALLBACK_ROLLBACK;
	p.approval_timeout_ms = 0;
	p.on_approval_timeout = CN_FALLBACK_WAIT;
	return p;
}

/* Per-test heap state: the structs are large. */
struct fx {
	struct cn_policy p;
	struct cn_rollout_state st;
	struct cn_tick_result r;
	struct sim *sim;
	int64_t now;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	f->p = policy();
	cn_rollout_init(&f->st);
	f->sim = sim_new();
	f->now = T0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	free(f->sim);
	free(f);
	return 0;
}

static enum cn_decision tick(struct fx *f, const struct cn_observation *obs)
{
	cn_tick(&f->p, &f->st, obs, f->now, &f->r);
	f->st = f->r.next;
	return f->r.decision;
}

/* Advances the clock by 10s, feeds traffic and ticks. */
static enum cn_decision tick_healthy(struct fx *f)
{
	f->now += 10 * SEC;
	return tick(f, healthy(f->sim, f->now));
}

static enum cn_decision tick_with(struct fx *f, double hundreds, double errs, const int *shape)
{
	f->now += 10 * SEC;
	return tick(f, traffic(f->sim, f->now, hundreds, errs, shape));
}

static void start(struct fx *f)
{
	assert_int_equal(tick(f, healthy(f->sim, f->now)), CN_DECIDE_START);
	assert_int_equal(f->st.phase, CN_PHASE_PROGRESSING);
}


static void expect(struct fx *f, enum cn_decision d, enum cn_phase ph, double weight)
{
	if (f->r.decision != d || f->st.phase != ph || f->st.weight != weight)
		fail_msg("got %s/%s/%g, want %s/%s/%g: %s", cn_decision_name(f->r.decision),
			 cn_phase_name(f->st.phase), f->st.weight, cn_decision_name(d), cn_phase_name(ph), weight,
			 f->r.reason);
}

/* ---- tests ---- */

static void test_init(void **state)
{
	struct fx *f = *state;
	assert_int_equal(f->st.phase, CN_PHASE_PENDING);
	assert_int_equal(f->st.step, -1);
	assert_true(f->st.weight == 0);
	assert_false(f->st.have_last);
	assert_int_equal(f->st.last_tick_ms, 0);
}

static void test_first_tick_starts(void **state)
{
	struct fx *f = *state;
	tick(f, healthy(f->sim, f->now));
	expect(f, CN_DECIDE_START, CN_PHASE_PROGRESSING, 1);
	assert_true(f->r.set_weight);
	assert_true(f->r.weight == 1);
	assert_int_equal(f->st.step, 0);
	assert_int_equal(f->st.step_started_ms, T0);
	assert_int_equal(f->st.last_tick_ms, T0);
	assert_true(f->st.have_last);
	assert_contains(f->r.reason, "step 1 of 3 (1%) applied");
}

static void test_pending_waits_for_metrics(void **state)
{
	struct fx *f = *state;
	tick(f, NULL);
	expect(f, CN_DECIDE_HOLD, CN_PHASE_PENDING, 0);
	assert_false(f->r.set_weight);
	assert_int_equal(f->st.inconclusive_since_ms, T0);
	assert_contains(f->r.reason, "waiting for usable metrics");
	/* after the inconclusive timeout the policy's fallback applies even before the first step */
	f->now += 120 * SEC;
	tick(f, NULL);
	expect(f, CN_DECIDE_PAUSE, CN_PHASE_PAUSED, 0);
	assert_int_equal(f->st.paused_from, CN_PHASE_PENDING);
}

/* A tick in which the candidate has all 1,100 requests of the interval (the 100% step). */
static void full_share(struct fx *f, const int *shape)
{
	f->now += 10 * SEC;
	feed(&f->sim->obs.candidate, 11, 1, shape); /* all of the 1,100 requests of the interval */
	f->sim->obs.at_ms = f->now;
	tick(f, &f->sim->obs);
}

static void test_healthy_run_promotes(void **state)
{
	struct fx *f = *state;
	static const struct {
		enum cn_decision d;
		double weight;
	} want[] = {
		{CN_DECIDE_START, 1},
		{CN_DECIDE_HOLD, 1}, {CN_DECIDE_HOLD, 1}, {CN_DECIDE_HOLD, 1},
		{CN_DECIDE_HOLD, 1}, {CN_DECIDE_HOLD, 1}, {CN_DECIDE_ADVANCE, 5},
		{CN_DECIDE_HOLD, 5}, {CN_DECIDE_HOLD, 5}, {CN_DECIDE_HOLD, 5},
		{CN_DECIDE_HOLD, 5}, {CN_DECIDE_HOLD, 5}, {CN_DECIDE_ADVANCE, 100},
		{CN_DECIDE_HOLD, 100}, {CN_DECIDE_HOLD, 100}, {CN_DECIDE_HOLD, 100},
		{CN_DECIDE_HOLD, 100}, {CN_DECIDE_HOLD, 100}, {CN_DECIDE_HOLD, 100},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		double before = f->st.weight;
		enum cn_decision d = i == 0 ? tick(f, healthy(f->sim, f->now)) : tick_healthy(f);
		if (d != want[i].d || f->st.weight != want[i].weight)
			fail_msg("tick %zu: %s at %g, want %s at %g: %s", i, cn_decision_name(d), f->st.weight,
				 cn_decision_name(want[i].d), want[i].weight, f->r.reason);
		/* the gateway is told exactly when the weight changes (and on promotion) */
		assert_int_equal(f->r.set_weight, before != f->st.weight || d == CN_DECIDE_PROMOTE);
		if (i > 0 && d != CN_DECIDE_HOLD && f->st.phase != CN_PHASE_PROMOTED) {
			/* a new step starts with fresh evidence */
			assert_true(f->st.acc_candidate.requests == 0);
			assert_int_equal(f->st.step_started_ms, f->now);
		}
		if (i > 0)
			assert_int_equal(f->r.nslos, 4);
	}
	/* the last hold has elapsed, but 600 requests with 1% errors do not prove the candidate within its 2x limit
	 * (promotion wants the proof, a step only "not proven worse"): it holds until more traffic proves it */
	assert_contains(f->r.reason, "1m00s held, 600 candidate requests, all 4 slos pass, but slo 'errors' is not yet "
			"proven within its limit");
	assert_contains(f->r.reason, "at most 4.63%");
	int more = 0;
	while (f->st.phase != CN_PHASE_PROMOTED && more++ < 30) {
		full_share(f, HEALTHY);
		assert_true(f->r.decision == CN_DECIDE_HOLD || f->r.decision == CN_DECIDE_PROMOTE);
	}
	assert_int_equal(f->st.phase, CN_PHASE_PROMOTED);
	assert_true(f->r.set_weight);
	assert_in_range(more, 2, 10);
	tick_healthy(f);
	assert_int_equal(f->r.nslos, 0);
	assert_contains(f->r.reason, "nothing to do");
}

/* At 100% the baseline gets no traffic: relative limits are judged against the baseline frozen from the earlier
 * steps. A healthy candidate is promoted (an SLO with only max_increase used to sit inconclusive and pause), and a
 * latency regression that starts in the final hold is rolled back (its relative limit used to vanish). */

static void test_final_step_judged_against_frozen_baseline(void **state)
{
	struct fx *f = *state;
	for (int regress = 0; regress <= 1; regress++) {
		cn_rollout_init(&f->st);
		free(f->sim);
		f->sim = sim_new();
		start(f);
		for (int i = 0; i < 40 && f->st.weight < 100; i++)
			tick_healthy(f);
		assert_true(f->st.weight == 100);
		assert_true(f->st.ref_baseline.requests > 0);
		for (int i = 0; i < 3; i++) /* healthy for a while into the final hold */
			full_share(f, HEALTHY);
		for (int i = 0; i < 10 && !cn_phase_is_terminal(f->st.phase); i++)
			full_share(f, regress ? SLOW : HEALTHY);
		if (regress) {
			expect(f, CN_DECIDE_ROLLBACK, CN_PHASE_ROLLED_BACK, 0);
			assert_contains(f->r.reason, "p99 latency");
			assert_contains(f->r.reason, "1.5x");
		} else {
			expect(f, CN_DECIDE_PROMOTE, CN_PHASE_PROMOTED, 100);
		}
	}
}

/* Short earlier steps leave fewer than CN_SEQ_MIN_TICKS baseline ticks for the dispersion estimate, and at 100% the
 * baseline gets none: the candidate's own ticks complete it, so the last step is still judged (a daemon killed in a
 * 2-second step once held a healthy candidate at 100% for ever, "not yet proven"), both ways. */
static void test_short_steps_still_judged_at_100(void **state)
{
	struct fx *f = *state;
	for (int regress = 0; regress <= 1; regress++) {
		cn_rollout_init(&f->st);
		free(f->sim);
		f->sim = sim_new();
		f->p.steps[0].hold_ms = f->p.steps[1].hold_ms = 20 * SEC;
		f->p.analysis.min_requests = 100;
		start(f);
		for (int i = 0; i < 10 && f->st.weight < 100; i++)
			tick_healthy(f);
		assert_true(f->st.weight == 100);
		assert_in_range(f->st.seq.slo[0].disp_ticks, 1, CN_SEQ_MIN_TICKS - 1);
		for (int i = 0; i < 20 && !cn_phase_is_terminal(f->st.phase); i++)
			full_share(f, regress ? SLOW : HEALTHY);
		if (regress)
			expect(f, CN_DECIDE_ROLLBACK, CN_PHASE_ROLLED_BACK, 0);
		else
			expect(f, CN_DECIDE_PROMOTE, CN_PHASE_PROMOTED, 100);
	}
}

static void test_hold_and_min_requests(void **state)
{
	struct fx *f = *state;
	start(f);
	tick_healthy(f);
	expect(f, CN_DECIDE_HOLD, CN_PHASE_PROGRESSING, 1);
	assert_contains(f->r.reason, "10s of 1m00s hold, 100 of 100 candidate requests, all 4 slos pass");
	for (int i = 0; i < 4; i++)
		assert_int_equal(f->r.slos[i].verdict, CN_VERDICT_PASS);

	/* the hold elapses before the step has its minimum requests: it waits for them */
	f->p.analysis.min_requests = 1000;
	for (int i = 0; i < 5; i++)
		tick_healthy(f);
	expect(f, CN_DECIDE_HOLD, CN_PHASE_PROGRESSING, 1);
	assert_contains(f->r.reason, "1m00s of 1m00s hold, 600 of 1000 candidate requests");
	for (int i = 0; i < 4; i++)
		tick_healthy(f);
	expect(f, CN_DECIDE_ADVANCE, CN_PHASE_PROGRESSING, 5);
	assert_contains(f->r.reason, "1000 candidate requests");
}

static void test_latency_regression_rolls_back(void **state)
{
	struct fx *f = *state;
	start(f);
	/* before CN_SEQ_MIN_TICKS ticks show how bursty bad events are, a candidate that looks worse is held */
	for (int i = 1; i < CN_SEQ_MIN_TICKS; i++) {
		tick_with(f, 1, 1, SLOW);
		expect(f, CN_DECIDE_HOLD, CN_PHASE_PROGRESSING, 1);
		assert_int_equal(f->st.failing_ticks, 0);
		assert_int_not_equal(f->r.slos[1].verdict, CN_VERDICT_FAIL);
	}
	assert_int_equal(f->r.slos[1].verdict, CN_VERDICT_INCONCLUSIVE);
	assert_contains(f->r.reason, "looks worse, judged once 6 ticks show how bursty bad events are");
	tick_with(f, 1, 1, SLOW);
	expect(f, CN_DECIDE_HOLD, CN_PHASE_PROGRESSING, 1);
	assert_int_equal(f->st.failing_ticks, 1);
	assert_int_equal(f->r.slos[1].verdict, CN_VERDICT_FAIL);
	assert_int_equal(f->r.slos[0].verdict, CN_VERDICT_PASS);
	assert_contains(f->r.reason, "slo 'p99-latency' failing (1 of 3 ticks to confirm)");
	tick_with(f, 1, 1, SLOW);
	expect(f, CN_DECIDE_HOLD, CN_PHASE_PROGRESSING, 1);
	assert_int_equal(f->st.failing_ticks, 2);
	tick_with(f, 1, 1, SLOW);
	expect(f, CN_DECIDE_ROLLBACK, CN_PHASE_ROLLED_BACK, 0);
	assert_true(f->r.set_weight);
	assert_true(f->r.weight == 0);
	assert_contains(f->r.reason, "regression confirmed (3 failing ticks) at step 1 of 3 (1%)");
	/* the limit is 1.5x the baseline's p99 bound, inside the 2s..4s bucket */
	assert_contains(f->r.reason, "p99 latency 4.00s vs baseline 2.00s (limit ");
	assert_contains(f->r.reason, "s = 1.5x), 7.66% of requests above it (at least 4.1%, at most 12.8%, allowed 1%)");
	assert_true(f->r.slos[1].objective > 3 && f->r.slos[1].objective < 4);
	/* the terminal state accepts nothing more */
	tick_healthy(f);
	expect(f, CN_DECIDE_HOLD, CN_PHASE_ROLLED_BACK, 0);
	assert_false(f->r.set_weight);
}

static void test_error_regression_rolls_back(void **state)
{
	struct fx *f = *state;
	start(f);
	for (int i = 0; i < CN_SEQ_MIN_TICKS + 2; i++)
		tick_with(f, 1, 10, HEALTHY);
	expect(f, CN_DECIDE_ROLLBACK, CN_PHASE_ROLLED_BACK, 0);
	assert_contains(f->r.reason, "slo 'errors'");
	/* the limit is 2x the baseline's anytime upper bound on 800 errors in 80,000 requests, at the policy's
	 * budget (1%) over 4 slos, then 3 ways (baseline, candidate, late onsets), then over 3 steps */
	double limit = 2 * cn_rate_upper(800, 80000, 0.01 / 4 / (3.0 * 3), 1);
	assert_true(fabs(f->r.slos[0].objective - limit) < 1e-12);
	assert_true(limit > 2 * 0.01 && limit < 2 * 0.012);
	assert_contains(f->r.reason, "error rate 10% vs baseline 1% (limit 2.34% = 2x)");
	assert_true(fabs(f->r.slos[0].candidate - 0.10) < 1e-12);
}

/* A regression that starts late in a long step: the step's average stays under the limit for a long time (about
 * 120 ticks here), the threshold judge's late-onset test finds it within a few dozen ticks, and a healthy candidate
 * in the same long step is never failed by it. */
static void test_late_onset_in_a_long_step(void **state)
{
	struct fx *f = *state;
	for (int regress = 0; regress <= 1; regress++) {
		cn_rollout_init(&f->st);
		free(f->sim);
		f->sim = sim_new();
		f->p.steps[0].hold_ms = 3600 * SEC;
		start(f);
		for (int i = 0; i < 200; i++)
			tick_healthy(f);
		expect(f, CN_DECIDE_HOLD, CN_PHASE_PROGRESSING, 1);
		int k = 0;
		for (; k < 150 && !cn_phase_is_terminal(f->st.phase); k++)
			tick_with(f, 1, regress ? 4 : 1, HEALTHY);
		if (!regress) {
			expect(f, CN_DECIDE_HOLD, CN_PHASE_PROGRESSING, 1);
			continue;
		}
		expect(f, CN_DECIDE_ROLLBACK, CN_PHASE_ROLLED_BACK, 0);
		if (k > 60)
			fail_msg("errors x4 found %d ticks after the onset: %s", k, f->r.reason);
		/* found before the step's average is over the limit */
		assert_true(f->r.slos[0].candidate < f->r.slos[0].objective);
		assert_contains(f->r.reason, "slo 'errors': error rate");
		assert_contains(f->r.reason, "in the step vs limit");
		assert_contains(f->r.reason, "but the latest ticks are over it: evidence");
	}
}

static void test_on_failure_pause(void **state)
{
	struct fx *f = *state;
	f->p.on_failure = CN_FALLBACK_PAUSE;
	f->p.analysis.failing_ticks = 1;
	start(f);
	for (int i = 0; i < CN_SEQ_MIN_TICKS; i++)
		tick_with(f, 1, 10, HEALTHY);
	expect(f, CN_DECIDE_PAUSE, CN_PHASE_PAUSED, 1);
	assert_int_equal(f->st.paused_from, CN_PHASE_PROGRESSING);
	assert_false(f->r.set_weight);
	assert_contains(f->r.reason, "paused for a person");
}

static void test_failing_ticks_reset_only_on_all_pass(void **state)
{
	struct fx *f = *state;
	f->p.steps[0].hold_ms = 600 * SEC; /* nothing advances in this test */
	/* absolute limits: the jump from slow to healthy raises the dispersion estimate, which would leave a
	 * relative limit without a bound on the baseline (inconclusive, not the all-pass this test needs) */
	f->p.slos[1] = mkslo("p99-latency", CN_METRIC_LATENCY, 0.99, 3, NAN);
	f->p.slos[3] = mkslo("p99-itl", CN_METRIC_ITL, 0.99, 3, NAN);
	start(f);
	for (int i = 1; i < CN_SEQ_MIN_TICKS; i++)
		tick_healthy(f);
	tick_with(f, 10, 1, SLOW);
	tick_with(f, 10, 1, SLOW);
	assert_int_equal(f->st.failing_ticks, 2);
	/* an inconclusive tick (no reading) neither confirms nor clears */
	f->now += 10 * SEC;
	tick(f, NULL);
	expect(f, CN_DECIDE_HOLD, CN_PHASE_PROGRESSING, 1);
	assert_int_equal(f->st.failing_ticks, 2);
	for (int i = 0; i < 4; i++)
		assert_int_equal(f->r.slos[i].verdict, CN_VERDICT_INCONCLUSIVE);
	/* plenty of healthy evidence dilutes the slow requests: an all-pass tick clears the count */
	tick_with(f, 500, 1, HEALTHY);
	expect(f, CN_DECIDE_HOLD, CN_PHASE_PROGRESSING, 1);
	assert_int_equal(f->st.failing_ticks, 0);
	assert_int_equal(f->st.inconclusive_since_ms, 0);
	/* failures must be consecutive again from zero */
	tick_with(f, 3000, 1, SLOW);
	assert_int_equal(f->st.failing_ticks, 1);
	expect(f, CN_DECIDE_HOLD, CN_PHASE_PROGRESSING, 1);
}

static void test_counter_reset(void **state)
{
	struct fx *f = *state;
	start(f);
	tick_healthy(f);
	tick_healthy(f);
	double before = f->st.acc_candidate.requests;
	assert_true(before == 200);
	/* the candidate server restarts: its counters start again from zero */
	sample_init(&f->sim->obs.candidate);
	tick_with(f, 1, 1, HEALTHY);
	expect(f, CN_DECIDE_HOLD, CN_PHASE_PROGRESSING, 1);
	for (int i = 0; i < 4; i++)
		assert_int_equal(f->r.slos[i].verdict, CN_VERDICT_INCONCLUSIVE);
	assert_contains(f->r.reason, "went down (server restart?)");
	/* like rate(): after a reset the delta is the new value */
	assert_true(f->st.acc_candidate.requests == before + 100);
	assert_true(f->st.last.candidate.requests == 100);
	assert_int_equal(f->st.failing_ticks, 0);
	/* the next tick is judged normally */
	tick_healthy(f);
	for (int i = 0; i < 4; i++)
		assert_int_equal(f->r.slos[i].verdict, CN_VERDICT_PASS);
	assert_true(f->st.acc_candidate.requests == before + 200);
}

static void test_no_traffic_times_out(void **state)
{
	static const struct {
		enum cn_fallback on_inconclusive;
		enum cn_decision d;
		enum cn_phase ph;
		double weight;
	} cases[] = {
		{CN_FALLBACK_PAUSE, CN_DECIDE_PAUSE, CN_PHASE_PAUSED, 1},
		{CN_FALLBACK_ROLLBACK, CN_DECIDE_ROLLBACK, CN_PHASE_ROLLED_BACK, 0},
		{CN_FALLBACK_WAIT, CN_DECIDE_HOLD, CN_PHASE_PROGRESSING, 1},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		teardown(state);
		setup(state);
		struct fx *f = *state;
		f->p.analysis.on_inconclusive = cases[c].on_inconclusive;
		start(f);
		tick_with(f, 0, 0, HEALTHY);
		expect(f, CN_DECIDE_HOLD, CN_PHASE_PROGRESSING, 1);
		assert_int_equal(f->st.inconclusive_since_ms, f->now);
		assert_contains(f->r.reason, "only 0 candidate requests in this step, need 50");
		int64_t since = f->now;
		for (int i = 0; i < 11; i++) /* 110s of 120s */
			tick_with(f, 0, 0, HEALTHY);
		expect(f, CN_DECIDE_HOLD, CN_PHASE_PROGRESSING, 1);
		assert_int_equal(f->st.inconclusive_since_ms, since);
		tick_with(f, 0, 0, HEALTHY);
		expect(f, cases[c].d, cases[c].ph, cases[c].weight);
		if (cases[c].on_inconclusive != CN_FALLBACK_WAIT)
			assert_contains(f->r.reason, "inconclusive for 2m00s (limit 2m00s)");
	}
}

static void test_nan_series(void **state)
{
	struct fx *f = *state;
	start(f);
	f->sim->obs.candidate.requests = NAN;
	f->now += 10 * SEC;
	tick(f, &f->sim->obs);
	expect(f, CN_DECIDE_HOLD, CN_PHASE_PROGRESSING, 1);
	for (int i = 0; i < 4; i++)
		assert_int_equal(f->r.slos[i].verdict, CN_VERDICT_INCONCLUSIVE);
	assert_contains(f->r.reason, "candidate requests counter missing or unusable");
	/* the base is kept, so the counter coming back is a normal delta */
	assert_true(f->st.last.candidate.requests == 100);
	f->sim->obs.candidate.requests = 300;
	tick_healthy(f);
	assert_true(f->st.acc_candidate.requests == 300);
	for (int i = 0; i < 4; i++)
		assert_int_equal(f->r.slos[i].verdict, CN_VERDICT_PASS);
}

static void test_clock_backwards(void **state)
{
	struct fx *f = *state;
	start(f);
	tick_healthy(f);
	struct cn_rollout_state before = f->st;
	f->now -= 5 * SEC;
	tick(f, healthy(f->sim, f->now));
	expect(f, CN_DECIDE_HOLD, CN_PHASE_PROGRESSING, 1);
	assert_false(f->r.set_weight);
	assert_contains(f->r.reason, "clock went backwards: now is 5s before the last tick");
	assert_int_equal(f->st.last_tick_ms, before.last_tick_ms);
	assert_true(f->st.acc_candidate.requests == before.acc_candidate.requests);
	assert_true(f->st.last.candidate.requests == before.last.candidate.requests);
	assert_int_equal(f->st.failing_ticks, before.failing_ticks);
	assert_int_equal(f->st.inconclusive_since_ms, before.inconclusive_since_ms);
	assert_int_equal(f->r.nslos, 0);
}

static void test_missing_reading_never_advances(void **state)
{
	struct fx *f = *state;
	start(f);
	for (int i = 0; i < 5; i++)
		tick_healthy(f);
	/* the step is due now, but there is no reading */
	f->now += 10 * SEC;
	tick(f, NULL);
	expect(f, CN_DECIDE_HOLD, CN_PHASE_PROGRESSING, 1);
	assert_contains(f->r.reason, "candidate metrics unusable: no reading");
	/* a failed candidate read with a reason */
	f->now += 10 * SEC;
	f->sim->obs.candidate.ok = false;
	snprintf(f->sim->obs.candidate.why, sizeof f->sim->obs.candidate.why, "http 503 from 127.0.0.1:8001");
	tick(f, &f->sim->obs);
	expect(f, CN_DECIDE_HOLD, CN_PHASE_PROGRESSING, 1);
	assert_contains(f->r.reason, "http 503 from 127.0.0.1:8001");
	/* said first, as the reason for every slo, not as the first slo's symptom */
	assert_contains(f->r.reason, "holding at step 1 of 3 (1%): candidate metrics unusable: http 503 from "
				     "127.0.0.1:8001; all slos inconclusive");
	/* only the baseline unusable: the absolute SLOs judge, but the step still does not advance */
	f->sim->obs.candidate.ok = true;
	f->sim->obs.candidate.why[0] = '\0';
	f->sim->obs.baseline.ok = false;
	snprintf(f->sim->obs.baseline.why, sizeof f->sim->obs.baseline.why, "timeout");
	f->now += 10 * SEC;
	tick(f, traffic(f->sim, f->now, 1, 1, HEALTHY));
	expect(f, CN_DECIDE_HOLD, CN_PHASE_PROGRESSING, 1);
	assert_int_equal(f->r.slos[2].verdict, CN_VERDICT_PASS); /* p95-ttft has an absolute max */
	assert_int_equal(f->r.slos[1].verdict, CN_VERDICT_INCONCLUSIVE);
	/* usable again: it advances */
	f->sim->obs.baseline.ok = true;
	tick_healthy(f);
	expect(f, CN_DECIDE_ADVANCE, CN_PHASE_PROGRESSING, 5);
}

static void test_approval_gates_next_step(void **state)
{
	struct fx *f = *state;
	struct cn_err err = {0};
	f->p.steps[1].approval = true;
	start(f);
	for (int i = 0; i < 5; i++)
		tick_healthy(f);
	tick_healthy(f);
	expect(f, CN_DECIDE_AWAIT_APPROVAL, CN_PHASE_AWAITING_APPROVAL, 1);
	assert_false(f->r.set_weight);
	assert_int_equal(f->st.waiting_since_ms, f->now);
	assert_contains(f->r.reason, "step 2 of 3 (5%) requires approval");
	/* waiting: holds and keeps judging */
	tick_healthy(f);
	expect(f, CN_DECIDE_HOLD, CN_PHASE_AWAITING_APPROVAL, 1);
	assert_int_equal(f->r.nslos, 4);
	assert_contains(f->r.reason, "waiting for approval of step 2 of 3 (5%) for 10s");
	/* approve: applied at the next tick */
	assert_int_equal(cn_command(&f->p, &f->st, CN_CMD_APPROVE, f->now, &f->r, &err), 0);
	f->st = f->r.next;
	assert_int_equal(f->st.phase, CN_PHASE_PROGRESSING);
	assert_true(f->st.approved);
	assert_false(f->r.set_weight);
	tick_healthy(f);
	expect(f, CN_DECIDE_ADVANCE, CN_PHASE_PROGRESSING, 5);
	assert_false(f->st.approved);
	assert_int_equal(f->st.step, 1);
}

static void test_approval_before_first_step(void **state)
{
	struct fx *f = *state;
	struct cn_err err = {0};
	f->p.steps[0].approval = true;
	tick(f, healthy(f->sim, f->now));
	expect(f, CN_DECIDE_AWAIT_APPROVAL, CN_PHASE_AWAITING_APPROVAL, 0);
	assert_false(f->r.set_weight);
	/* no candidate traffic before the first step is not "inconclusive": nothing is judged */
	for (int i = 0; i < 20; i++)
		tick_with(f, 0, 0, HEALTHY);
	expect(f, CN_DECIDE_HOLD, CN_PHASE_AWAITING_APPROVAL, 0);
	assert_int_equal(f->st.inconclusive_since_ms, 0);
	assert_int_equal(f->r.nslos, 0);
	assert_int_equal(cn_command(&f->p, &f->st, CN_CMD_APPROVE, f->now, &f->r, &err), 0);
	f->st = f->r.next;
	assert_int_equal(f->st.phase, CN_PHASE_PENDING);
	tick_healthy(f);
	expect(f, CN_DECIDE_START, CN_PHASE_PROGRESSING, 1);
	assert_true(f->r.set_weight);
}

static void test_approval_timeout(void **state)
{
	static const struct {
		enum cn_fallback on_timeout;
		enum cn_decision d;
		enum cn_phase ph;
		double weight;
		const char *why;
	} cases[] = {
		{CN_FALLBACK_ROLLBACK, CN_DECIDE_ROLLBACK, CN_PHASE_ROLLED_BACK, 0, "no approval of step 2 of 3 (5%) within 5m00s"},
		{CN_FALLBACK_PAUSE, CN_DECIDE_PAUSE, CN_PHASE_PAUSED, 1, "paused at 1%"},
		{CN_FALLBACK_WAIT, CN_DECIDE_HOLD, CN_PHASE_AWAITING_APPROVAL, 1, "overdue (waited 5m00s, timeout 5m00s"},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		teardown(state);
		setup(state);
		struct fx *f = *state;
		f->p.steps[1].approval = true;
		f->p.approval_timeout_ms = 300 * SEC;
		f->p.on_approval_timeout = cases[c].on_timeout;
		start(f);
		for (int i = 0; i < 6; i++)
			tick_healthy(f);
		expect(f, CN_DECIDE_AWAIT_APPROVAL, CN_PHASE_AWAITING_APPROVAL, 1);
		for (int i = 0; i < 29; i++)
			tick_healthy(f);
		expect(f, CN_DECIDE_HOLD, CN_PHASE_AWAITING_APPROVAL, 1);
		tick_healthy(f);
		expect(f, cases[c].d, cases[c].ph, cases[c].weight);
		assert_contains(f->r.reason, cases[c].why);
	}
}

static void test_regression_while_awaiting_approval(void **state)
{
	struct fx *f = *state;
	f->p.steps[1].approval = true;
	start(f);
	for (int i = 0; i < 6; i++)
		tick_healthy(f);
	expect(f, CN_DECIDE_AWAIT_APPROVAL, CN_PHASE_AWAITING_APPROVAL, 1);
	for (int i = 0; i < 3; i++)
		tick_with(f, 30, 10, HEALTHY);
	expect(f, CN_DECIDE_ROLLBACK, CN_PHASE_ROLLED_BACK, 0);
	assert_contains(f->r.reason, "at step 1 of 3 (1%)");
}

static void test_paused_holds(void **state)
{
	struct fx *f = *state;
	struct cn_err err = {0};
	start(f);
	for (int i = 1; i < CN_SEQ_MIN_TICKS; i++)
		tick_healthy(f);
	assert_int_equal(cn_command(&f->p, &f->st, CN_CMD_PAUSE, f->now, &f->r, &err), 0);
	f->st = f->r.next;
	struct cn_rollout_state before = f->st;
	/* hold elapses and a regression shows while paused: verdicts are reported, nothing changes */
	for (int i = 0; i < 10; i++)
		tick_with(f, 1, 10, HEALTHY);
	expect(f, CN_DECIDE_HOLD, CN_PHASE_PAUSED, 1);
	assert_false(f->r.set_weight);
	assert_int_equal(f->r.nslos, 4);
	assert_int_equal(f->r.slos[0].verdict, CN_VERDICT_FAIL);
	assert_contains(f->r.reason, "paused (was progressing at step 1 of 3 (1%))");
	assert_contains(f->r.reason, "slo 'errors' failing");
	assert_int_equal(f->st.failing_ticks, 0);
	assert_int_equal(f->st.last_tick_ms, before.last_tick_ms);
	assert_true(f->st.acc_candidate.requests == before.acc_candidate.requests);
	assert_true(f->st.last.candidate.requests == before.last.candidate.requests);
	/* resume: the evidence gathered while paused now counts */
	assert_int_equal(cn_command(&f->p, &f->st, CN_CMD_RESUME, f->now, &f->r, &err), 0);
	f->st = f->r.next;
	assert_int_equal(f->r.decision, CN_DECIDE_RESUME);
	assert_int_equal(f->st.phase, CN_PHASE_PROGRESSING);
	tick_with(f, 1, 10, HEALTHY);
	assert_int_equal(f->st.failing_ticks, 1);
	assert_true(f->st.acc_candidate.requests == 1600);
}

static void test_bad_policy_fails(void **state)
{
	struct fx *f = *state;
	start(f);
	f->p.nsteps = 0;
	tick_healthy(f);
	expect(f, CN_DECIDE_ROLLBACK, CN_PHASE_FAILED, 0);
	assert_true(f->r.set_weight);
}

static void test_commands_table(void **state)
{
	struct fx *f = *state;
	static const struct {
		enum cn_phase phase, paused_from;
		int step;
		double weight;
		enum cn_command_kind cmd;
		int rc;
		enum cn_phase want_phase;
		double want_weight;
		bool want_set;
		enum cn_decision want_decision;
		const char *msg; /* error message or reason substring */
	} cases[] = {
		{CN_PHASE_PENDING, 0, -1, 0, CN_CMD_APPROVE, -CN_EINPUT, 0, 0, 0, 0, "rollout is pending, not awaiting approval"},
		{CN_PHASE_PENDING, 0, -1, 0, CN_CMD_PAUSE, 0, CN_PHASE_PAUSED, 0, false, CN_DECIDE_PAUSE, "paused by an operator before the first step"},
		{CN_PHASE_PENDING, 0, -1, 0, CN_CMD_RESUME, -CN_EINPUT, 0, 0, 0, 0, "rollout is pending, not paused"},
		{CN_PHASE_PENDING, 0, -1, 0, CN_CMD_ABORT, 0, CN_PHASE_ABORTED, 0, true, CN_DECIDE_ABORT, "aborted by an operator"},
		{CN_PHASE_PENDING, 0, -1, 0, CN_CMD_PROMOTE_FULL, 0, CN_PHASE_PROMOTED, 100, true, CN_DECIDE_PROMOTE, "promoted to 100%"},
		{CN_PHASE_PROGRESSING, 0, 1, 5, CN_CMD_APPROVE, -CN_EINPUT, 0, 0, 0, 0, "rollout is progressing, not awaiting approval"},
		{CN_PHASE_PROGRESSING, 0, 1, 5, CN_CMD_PAUSE, 0, CN_PHASE_PAUSED, 5, false, CN_DECIDE_PAUSE, "at step 2 of 3 (5%)"},
		{CN_PHASE_PROGRESSING, 0, 1, 5, CN_CMD_RESUME, -CN_EINPUT, 0, 0, 0, 0, "rollout is progressing, not paused"},
		{CN_PHASE_PROGRESSING, 0, 1, 5, CN_CMD_ABORT, 0, CN_PHASE_ABORTED, 0, true, CN_DECIDE_ABORT, "candidate to 0%"},
		{CN_PHASE_PROGRESSING, 0, 1, 5, CN_CMD_PROMOTE_FULL, 0, CN_PHASE_PROMOTED, 100, true, CN_DECIDE_PROMOTE, "skipping the remaining steps"},
		{CN_PHASE_AWAITING_APPROVAL, 0, 0, 1, CN_CMD_APPROVE, 0, CN_PHASE_PROGRESSING, 1, false, CN_DECIDE_RESUME, "step 2 of 3 (5%) approved"},
		{CN_PHASE_AWAITING_APPROVAL, 0, 0, 1, CN_CMD_PAUSE, 0, CN_PHASE_PAUSED, 1, false, CN_DECIDE_PAUSE, "paused"},
		{CN_PHASE_AWAITING_APPROVAL, 0, 0, 1, CN_CMD_RESUME, -CN_EINPUT, 0, 0, 0, 0, "rollout is awaiting_approval, not paused"},
		{CN_PHASE_AWAITING_APPROVAL, 0, 0, 1, CN_CMD_ABORT, 0, CN_PHASE_ABORTED, 0, true, CN_DECIDE_ABORT, "aborted"},
		{CN_PHASE_AWAITING_APPROVAL, 0, 0, 1, CN_CMD_PROMOTE_FULL, 0, CN_PHASE_PROMOTED, 100, true, CN_DECIDE_PROMOTE, "promoted"},
		{CN_PHASE_PAUSED, CN_PHASE_PROGRESSING, 1, 5, CN_CMD_APPROVE, -CN_EINPUT, 0, 0, 0, 0, "rollout is paused, not awaiting approval"},
		{CN_PHASE_PAUSED, CN_PHASE_PROGRESSING, 1, 5, CN_CMD_PAUSE, -CN_EINPUT, 0, 0, 0, 0, "rollout is already paused"},
		{CN_PHASE_PAUSED, CN_PHASE_PROGRESSING, 1, 5, CN_CMD_RESUME, 0, CN_PHASE_PROGRESSING, 5, false, CN_DECIDE_RESUME, "resumed by an operator: progressing"},
		{CN_PHASE_PAUSED, CN_PHASE_PROGRESSING, 1, 5, CN_CMD_ABORT, 0, CN_PHASE_ABORTED, 0, true, CN_DECIDE_ABORT, "aborted"},
		{CN_PHASE_PAUSED, CN_PHASE_PROGRESSING, 1, 5, CN_CMD_PROMOTE_FULL, 0, CN_PHASE_PROMOTED, 100, true, CN_DECIDE_PROMOTE, "promoted"},
		{CN_PHASE_PAUSED, CN_PHASE_AWAITING_APPROVAL, 0, 1, CN_CMD_APPROVE, -CN_EINPUT, 0, 0, 0, 0, "resume it, then approve"},
		{CN_PHASE_PAUSED, CN_PHASE_AWAITING_APPROVAL, 0, 1, CN_CMD_RESUME, 0, CN_PHASE_AWAITING_APPROVAL, 1, false, CN_DECIDE_RESUME, "awaiting_approval"},
		{CN_PHASE_PAUSED, CN_PHASE_PENDING, -1, 0, CN_CMD_RESUME, 0, CN_PHASE_PENDING, 0, false, CN_DECIDE_RESUME, "pending"},
		{CN_PHASE_PROMOTED, 0, 2, 100, CN_CMD_ABORT, -CN_EINPUT, 0, 0, 0, 0, "rollout is promoted: it accepts no more commands"},
		{CN_PHASE_ROLLED_BACK, 0, 0, 0, CN_CMD_RESUME, -CN_EINPUT, 0, 0, 0, 0, "rollout is rolled_back: it accepts no more commands"},
		{CN_PHASE_ABORTED, 0, 0, 0, CN_CMD_PROMOTE_FULL, -CN_EINPUT, 0, 0, 0, 0, "rollout is aborted: it accepts no more commands"},
		{CN_PHASE_FAILED, 0, 0, 0, CN_CMD_APPROVE, -CN_EINPUT, 0, 0, 0, 0, "rollout is failed: it accepts no more commands"},
		{CN_PHASE_ROLLED_BACK, 0, 0, 0, CN_CMD_PAUSE, -CN_EINPUT, 0, 0, 0, 0, "accepts no more commands"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct cn_err err = {0};
		cn_rollout_init(&f->st);
		f->st.phase = cases[i].phase;
		f->st.paused_from = cases[i].paused_from;
		f->st.step = cases[i].step;
		f->st.weight = cases[i].weight;
		f->st.failing_ticks = 2;
		memset(&f->r, 0x5a, sizeof f->r);
		int rc = cn_command(&f->p, &f->st, cases[i].cmd, T0, &f->r, &err);
		if (rc != cases[i].rc)
			fail_msg("case %zu (%s on %s): rc %d, want %d: %s", i, cn_command_name(cases[i].cmd),
				 cn_phase_name(cases[i].phase), rc, cases[i].rc, err.msg);
		if (rc < 0) {
			assert_int_equal(err.code, CN_EINPUT);
			assert_contains(err.msg, cases[i].msg);
			assert_int_equal((unsigned char)f->r.reason[0], 0x5a); /* out untouched */
			continue;
		}
		if (f->r.next.phase != cases[i].want_phase || f->r.next.weight != cases[i].want_weight ||
		    f->r.set_weight != cases[i].want_set || f->r.decision != cases[i].want_decision)
			fail_msg("case %zu (%s on %s): %s %s %g set=%d: %s", i, cn_command_name(cases[i].cmd),
				 cn_phase_name(cases[i].phase), cn_decision_name(f->r.decision),
				 cn_phase_name(f->r.next.phase), f->r.next.weight, f->r.set_weight, f->r.reason);
		assert_true(f->r.weight == cases[i].want_weight);
		assert_contains(f->r.reason, cases[i].msg);
		if (cases[i].cmd == CN_CMD_PAUSE)
			assert_int_equal(f->r.next.paused_from, cases[i].phase);
		if (cases[i].cmd == CN_CMD_RESUME)
			assert_int_equal(f->r.next.failing_ticks, 0);
		if (cases[i].cmd == CN_CMD_APPROVE)
			assert_true(f->r.next.approved);
	}
}

static void test_names(void **state)
{
	(void)state;
	static const char *const phases[] = {"pending", "progressing", "paused", "awaiting_approval",
					     "promoted", "rolled_back", "aborted", "failed"};
	for (int i = 0; i < 8; i++) {
		enum cn_phase ph;
		assert_string_equal(cn_phase_name((enum cn_phase)i), phases[i]);
		assert_int_equal(cn_phase_from_name(phases[i], &ph), 0);
		assert_int_equal(ph, i);
	}
	enum cn_phase ph = CN_PHASE_PAUSED;
	assert_int_equal(cn_phase_from_name("rolledback", &ph), -CN_EINPUT);
	assert_int_equal(cn_phase_from_name(NULL, &ph), -CN_EINPUT);
	assert_int_equal(ph, CN_PHASE_PAUSED);
	assert_string_equal(cn_phase_name((enum cn_phase)99), "unknown");
	assert_string_equal(cn_decision_name(CN_DECIDE_AWAIT_APPROVAL), "await_approval");
	assert_string_equal(cn_decision_name(CN_DECIDE_ROLLBACK), "rollback");
	assert_string_equal(cn_verdict_name(CN_VERDICT_INCONCLUSIVE), "inconclusive");
	assert_string_equal(cn_verdict_name(CN_VERDICT_PASS), "pass");
	assert_string_equal(cn_command_name(CN_CMD_PROMOTE_FULL), "promote_full");
	enum cn_command_kind k;
	assert_int_equal(cn_command_from_name("approve", &k), 0);
	assert_int_equal(k, CN_CMD_APPROVE);
	assert_int_equal(cn_command_from_name("approved", &k), -CN_EINPUT);
	assert_true(cn_phase_is_terminal(CN_PHASE_FAILED));
	assert_false(cn_phase_is_terminal(CN_PHASE_PAUSED));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_init),
		T(test_first_tick_starts),
		T(test_pending_waits_for_metrics),
		T(test_healthy_run_promotes),
		T(test_short_steps_still_judged_at_100),
		T(test_hold_and_min_requests),
		T(test_final_step_judged_against_frozen_baseline),
		T(test_latency_regression_rolls_back),
		T(test_error_regression_rolls_back),
		T(test_late_onset_in_a_long_step),
		T(test_on_failure_pause),
		T(test_failing_ticks_reset_only_on_all_pass),
		T(test_counter_reset),
		T(test_no_traffic_times_out),
		T(test_nan_series),
		T(test_clock_backwards),
		T(test_missing_reading_never_advances),
		T(test_approval_gates_next_step),
		T(test_approval_before_first_step),
		T(test_approval_timeout),
		T(test_regression_while_awaiting_approval),
		T(test_paused_holds),
		T(test_bad_policy_fails),
		T(test_commands_table),
		T(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
