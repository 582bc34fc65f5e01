/* Unit tests of the failover drill's state machine (controller/core/drill.c): every phase and outcome, driven by
 * simulated cumulative counters and an injected clock (no I/O). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "canary/drill.h"
#include "canary/judge.h"

#define T0 1700000000000LL
#define SEC 1000LL

#define assert_contains(hay, needle)                                                                        \
	do {                                                                                                \
		if (!strstr((hay), (needle)))                                                               \
			fail_msg("'%s' does not contain '%s'", (hay), (needle));                            \
	} while (0)

#define NB 6
static const double LE[NB] = {0.1, 0.25, 0.5, 1, 2, INFINITY};
static const int FAST[NB] = {20, 50, 25, 5, 0, 0}; /* per 100 requests: p99 under 1s */

static void sample_init(struct cn_sample *s)
{
	memset(s, 0, sizeof *s);
	s->ok = true;
	s->latency.nbuckets = NB;
	for (int i = 0; i < NB; i++)
		s->latency.le[i] = LE[i];
}

/* n x 100 requests with errs per 100 failing */
static void feed(struct cn_sample *s, double n, double errs)
{
	s->requests += 100 * n;
	s->errors += errs * n;
	double cum = 0;
	for (int i = 0; i < NB; i++) {
		cum += FAST[i] * n;
		s->latency.count[i] += cum;
	}
}

static struct cn_policy policy(void)
{
	struct cn_policy p;
	memset(&p, 0, sizeof p);
	snprintf(p.name, sizeof p.name, "drill-test");
	p.analysis.interval_ms = SEC;
	p.analysis.min_requests = 50;
	p.analysis.failing_ticks = 3;
	p.analysis.false_rollback_budget = 0.01;
	p.nslos = 1;
	snprintf(p.slos[0].name, sizeof p.slos[0].name, "error-rate");
	p.slos[0].metric = CN_METRIC_ERROR_RATE;
	p.slos[0].quantile = NAN;
	p.slos[0].max = 0.02;
	p.slos[0].max_increase = NAN;
	p.slos[0].tolerance = NAN;
	return p;
}

struct world {
	struct cn_policy p;
	struct cn_drill_config cfg;
	struct cn_drill_state s;
	struct cn_sample pri, sec;
	int64_t now;
};

static void world_init(struct world *w)
{
	w->p = policy();
	w->cfg = (struct cn_drill_config){.hold_ms = 10 * SEC, .baseline_ms = 3 * SEC, .shift_timeout_ms = 10 * SEC,
					  .policy = &w->p};
	cn_drill_init(&w->s);
	sample_init(&w->pri);
	sample_init(&w->sec);
	w->now = T0;
}

/* One tick a second later; traffic goes to the slot the intent names (pri_errs / sec_errs per 100). */
static bool tick(struct world *w, double sec_errs)
{
	struct cn_drill_state next;
	bool set;
	w->now += SEC;
	if (w->s.weight == 100)
		feed(&w->sec, 2, sec_errs);
	else
		feed(&w->pri, 2, 0.5);
	cn_drill_tick(&w->cfg, &w->s, &w->pri, &w->sec, w->now, &next, &set);
	w->s = next;
	return set;
}

static void confirm(struct world *w, double weight, int64_t after_ms)
{
	struct cn_drill_state next;
	w->now += after_ms;
	cn_drill_confirmed(&w->s, weight, w->now, &next);
	w->s = next;
}

/* Runs the drill to the shift and its confirmation 40 ms later; returns at the start of the hold. */
static void to_hold(struct world *w)
{
	assert_false(tick(w, 0)); /* pending -> baseline (first reading) */
	assert_int_equal(w->s.phase, CN_DRILL_BASELINE);
	assert_false(tick(w, 0));
	assert_false(tick(w, 0));
	assert_int_equal(w->s.phase, CN_DRILL_BASELINE);
	assert_true(tick(w, 0)); /* 3 s of baseline: shift */
	assert_int_equal(w->s.phase, CN_DRILL_SHIFTING);
	assert_true(w->s.weight == 100);
	assert_true(w->s.primary_ref.requests == 600);
	confirm(w, 100, 40);
	assert_int_equal(w->s.phase, CN_DRILL_HOLDING);
	assert_true(w->s.window_open);
	assert_false(tick(w, 0)); /* closes the shift's window */
	assert_false(w->s.window_open);
	assert_true(w->s.shift.requests == 200);
}

static void restore(struct world *w, enum cn_drill_phase outcome)
{
	assert_int_equal(w->s.phase, CN_DRILL_RESTORING);
	assert_int_equal(w->s.outcome, outcome);
	assert_true(w->s.weight == 0);
	confirm(w, 0, 25);
	assert_int_equal(w->s.phase, CN_DRILL_RESTORING); /* the next tick closes the window */
	tick(w, 0);
	assert_int_equal(w->s.phase, outcome);
	assert_true(cn_drill_ended(w->s.phase));
	struct cn_drill_figures f;
	cn_drill_figures(&w->s, &f);
	assert_true(isnan(f.shift_s) || fabs(f.shift_s - 0.040) < 1e-9);
	assert_true(fabs(f.restore_s - 0.025) < 1e-9);
}

static void test_passes_after_the_hold(void **st)
{
	(void)st;
	struct world w;
	world_init(&w);
	to_hold(&w);
	for (int i = 0; i < 8; i++) { /* the hold counts from the confirmation, 40 ms after the shift's tick */
		bool set = tick(&w, 0.5);
		if (set)
			fail_msg("tick %d: %s", i, w.s.reason);
		assert_int_equal(w.s.phase, CN_DRILL_HOLDING);
	}
	assert_true(tick(&w, 0.5)); /* 10 s of hold */
	assert_contains(w.s.reason, "every slo passing");
	restore(&w, CN_DRILL_PASSED);
	struct cn_drill_figures f;
	cn_drill_figures(&w.s, &f);
	assert_true(f.hold.requests == 1800);
	assert_true(fabs(f.hold.error_rate - 0.005) < 1e-12);
	assert_true(f.hold_s >= 10);
	assert_true(f.baseline.requests == 600);
}

static void test_breach_cuts_short_at_once(void **st)
{
	(void)st;
	struct world w;
	world_init(&w);
	to_hold(&w);
	int ticks = 0;
	while (w.s.phase == CN_DRILL_HOLDING && ticks < 10) {
		tick(&w, 20); /* 20% errors against a 2% max */
		ticks++;
	}
	assert_int_equal(w.s.phase, CN_DRILL_RESTORING);
	assert_true(ticks <= 2);
	assert_contains(w.s.reason, "slo 'error-rate' breached on the secondary");
	assert_int_equal(w.s.slos[0].verdict, CN_VERDICT_FAIL);
	restore(&w, CN_DRILL_CUT_SHORT);
	assert_contains(w.s.reason, "cut_short: slo 'error-rate' breached on the secondary");
	assert_contains(w.s.reason, "; primary restored in 0.025s (during the restore: ");
}

static void test_relative_limit_from_the_primary(void **st)
{
	(void)st;
	struct world w;
	world_init(&w);
	w.p.slos[0].max = NAN;
	w.p.slos[0].max_increase = 1.5; /* primary 0.5%: the secondary may have up to about 0.75% */
	w.cfg.baseline_ms = 30 * SEC;   /* enough primary requests for a bound */
	tick(&w, 0);
	for (int i = 0; i < 30; i++)
		tick(&w, 0);
	assert_int_equal(w.s.phase, CN_DRILL_SHIFTING);
	confirm(&w, 100, 10);
	tick(&w, 0);
	int ticks = 0;
	while (w.s.phase == CN_DRILL_HOLDING && ticks < 10) {
		tick(&w, 10); /* 10% errors: 20x the primary */
		ticks++;
	}
	assert_int_equal(w.s.outcome, CN_DRILL_CUT_SHORT);
	assert_true(isfinite(w.s.slos[0].baseline));
}

static void test_no_verdict_fails_the_drill(void **st)
{
	(void)st;
	struct world w;
	world_init(&w);
	/* a p99 relative to the primary's needs ~2000 primary requests for a bound; the baseline has 600 */
	w.p.slos[0].metric = CN_METRIC_LATENCY;
	w.p.slos[0].quantile = 0.99;
	w.p.slos[0].max = NAN;
	w.p.slos[0].max_increase = 1.5;
	to_hold(&w);
	for (int i = 0; i < 10; i++)
		tick(&w, 0.5);
	assert_int_equal(w.s.phase, CN_DRILL_RESTORING);
	assert_int_equal(w.s.outcome, CN_DRILL_FAILED);
	assert_contains(w.s.reason, "without a verdict");
}

static void test_abort_in_each_phase(void **st)
{
	(void)st;
	struct cn_drill_state next;
	bool set;
	for (int when = 0; when < 3; when++) {
		struct world w;
		world_init(&w);
		if (when == 1)
			tick(&w, 0); /* baseline */
		if (when == 2)
			to_hold(&w);
		cn_drill_stop(&w.s, CN_DRILL_ABORTED, "aborted by alice: test", w.now, &next, &set);
		w.s = next;
		assert_int_equal(set, when == 2); /* only a moved share must be moved back */
		assert_contains(w.s.reason, "aborted by alice");
		restore(&w, CN_DRILL_ABORTED);
	}
}

static void test_abort_keeps_an_outcome_already_decided(void **st)
{
	(void)st;
	struct cn_drill_state next;
	bool set;
	struct world w;
	world_init(&w);
	to_hold(&w);
	tick(&w, 30);
	tick(&w, 30);
	assert_int_equal(w.s.outcome, CN_DRILL_CUT_SHORT);
	cn_drill_stop(&w.s, CN_DRILL_ABORTED, "late abort", w.now, &next, &set);
	assert_false(set);
	assert_int_equal(next.outcome, CN_DRILL_CUT_SHORT);
}

static void test_unconfirmed_shift_times_out(void **st)
{
	(void)st;
	struct world w;
	world_init(&w);
	for (int i = 0; i < 4; i++)
		tick(&w, 0);
	assert_int_equal(w.s.phase, CN_DRILL_SHIFTING);
	bool set = false;
	for (int i = 0; i < 10 && w.s.phase == CN_DRILL_SHIFTING; i++)
		set = tick(&w, 0);
	assert_true(set);
	assert_int_equal(w.s.outcome, CN_DRILL_FAILED);
	assert_contains(w.s.reason, "did not confirm the shift");
	/* a late confirmation of the shift changes nothing now */
	confirm(&w, 100, 1);
	assert_int_equal(w.s.phase, CN_DRILL_RESTORING);
}

static void test_resume_after_a_daemon_died(void **st)
{
	(void)st;
	struct cn_drill_state s;
	cn_drill_resume(CN_DRILL_BASELINE, CN_DRILL_PENDING, 0, T0, "took over", &s);
	assert_int_equal(s.phase, CN_DRILL_PENDING); /* nothing moved: measure again */
	cn_drill_resume(CN_DRILL_HOLDING, CN_DRILL_PENDING, 100, T0, "took over", &s);
	assert_int_equal(s.phase, CN_DRILL_RESTORING);
	assert_int_equal(s.outcome, CN_DRILL_FAILED);
	assert_true(s.weight == 0);
	assert_contains(s.reason, "took over; restoring the primary");
	cn_drill_resume(CN_DRILL_SHIFTING, CN_DRILL_PENDING, 100, T0, NULL, &s);
	assert_int_equal(s.outcome, CN_DRILL_FAILED);
	cn_drill_resume(CN_DRILL_RESTORING, CN_DRILL_CUT_SHORT, 0, T0, "took over", &s);
	assert_int_equal(s.phase, CN_DRILL_RESTORING);
	assert_int_equal(s.outcome, CN_DRILL_CUT_SHORT);
	cn_drill_resume(CN_DRILL_PASSED, CN_DRILL_PASSED, 0, T0, "x", &s);
	assert_int_equal(s.phase, CN_DRILL_PASSED);
}

static void test_figures_merge_keeps_the_earlier_daemons(void **st)
{
	(void)st;
	struct world w;
	world_init(&w);
	to_hold(&w);
	tick(&w, 0.5);
	struct cn_drill_figures earlier, f;
	cn_drill_figures(&w.s, &earlier);
	/* the next daemon resumes with nothing measured, restores, and merges */
	struct cn_drill_state s;
	cn_drill_resume(CN_DRILL_HOLDING, CN_DRILL_PENDING, 100, w.now, "took over", &s);
	s.restore_done_ms = s.restore_started_ms + 30;
	s.restore.requests = 7;
	cn_drill_figures(&s, &f);
	assert_true(isnan(f.shift_s));
	cn_drill_figures_merge(&f, &earlier);
	assert_true(fabs(f.shift_s - 0.040) < 1e-9);
	assert_true(f.baseline.requests == 600);
	assert_true(f.hold.requests == 200);
	assert_true(fabs(f.restore_s - 0.030) < 1e-9); /* its own */
	assert_true(f.restore.requests == 7);
}

static void test_unreadable_metrics_add_no_evidence(void **st)
{
	(void)st;
	struct world w;
	world_init(&w);
	to_hold(&w);
	struct cn_sample bad = {.ok = false};
	snprintf(bad.why, sizeof bad.why, "connection refused");
	struct cn_drill_state next;
	bool set;
	double before = w.s.hold_sec.requests;
	w.now += SEC;
	cn_drill_tick(&w.cfg, &w.s, &bad, &bad, w.now, &next, &set);
	assert_false(set);
	assert_true(next.hold_sec.requests == before);
	assert_int_equal(next.phase, CN_DRILL_HOLDING);
}

static void test_phase_names(void **st)
{
	(void)st;
	enum cn_drill_phase p;
	for (int i = CN_DRILL_PENDING; i <= CN_DRILL_FAILED; i++) {
		assert_int_equal(cn_drill_phase_parse(cn_drill_phase_name((enum cn_drill_phase)i), &p), 0);
		assert_int_equal(p, i);
	}
	assert_string_equal(cn_drill_phase_name(CN_DRILL_CUT_SHORT), "cut_short");
	assert_int_equal(cn_drill_phase_parse("promoted", &p), -1);
	assert_false(cn_drill_ended(CN_DRILL_RESTORING));
	assert_true(cn_drill_ended(CN_DRILL_ABORTED));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_passes_after_the_hold),
		cmocka_unit_test(test_breach_cuts_short_at_once),
		cmocka_unit_test(test_relative_limit_from_the_primary),
		cmocka_unit_test(test_no_verdict_fails_the_drill),
		cmocka_unit_test(test_abort_in_each_phase),
		cmocka_unit_test(test_abort_keeps_an_outcome_already_decided),
		cmocka_unit_test(test_unconfirmed_shift_times_out),
		cmocka_unit_test(test_resume_after_a_daemon_died),
		cmocka_unit_test(test_figures_merge_keeps_the_earlier_daemons),
		cmocka_unit_test(test_unreadable_metrics_add_no_evidence),
		cmocka_unit_test(test_phase_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
