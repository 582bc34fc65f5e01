/* Unit tests of the unit-economics judge (econ.c): the per-arm estimates, the confidence sequence's width, verdicts
 * table by table, and whole rollouts through cn_tick for both judges: a candidate 30% costlier per 1k tokens is
 * rolled back, a healthy one promoted, one that turns costly only at 100% is caught against the frozen baseline,
 * missing token counters never pass, and identical candidates are rolled back no more often than the budget. */
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

#define SEC 1000LL
#define T0 1700000000000LL

/* ---- estimates ---- */

/* Evidence of `ticks` identical ticks of g tokens and b busy seconds each. */
static struct cn_counters steady(double ticks, double g, double b, double per_hour, double per_1k)
{
	struct cn_counters c;
	memset(&c, 0, sizeof c);
	cn_counters_reset(&c);
	c.requests = ticks * 10;
	c.econ.ticks = ticks;
	c.econ.g = ticks * g;
	c.econ.b = ticks * b;
	c.econ.gg = ticks * g * g;
	c.econ.bb = ticks * b * b;
	c.econ.gb = ticks * g * b;
	c.cost.per_hour = per_hour;
	c.cost.replicas = isnan(per_hour) ? NAN : 1;
	c.cost.per_1k_tokens = per_1k;
	return c;
}

static void test_estimate_table(void **state)
{
	(void)state;
	static const struct {
		enum cn_slo_metric m;
		double ticks, g, b, per_hour, per_1k;
		bool ok;
		double value;
		const char *why;
	} cases[] = {
		/* 3600 per hour = 1 per second; 1000 tokens in 2 busy seconds: 2 per 1k tokens */
		{ CN_METRIC_COST_PER_1K, 10, 1000, 2, 3600, NAN, true, 2, NULL },
		{ CN_METRIC_COST_PER_1K, 10, 1000, 2.6, 3600, NAN, true, 2.6, NULL },
		{ CN_METRIC_COST_PER_1K, 10, 1000, 2, 12.4, NAN, true, 12.4 / 3600 * 2, NULL },
		{ CN_METRIC_COST_PER_1K, 0, 0, 0, NAN, 0.02, true, 0.02, NULL }, /* a fixed price needs no traffic */
		{ CN_METRIC_COST_PER_1K, 10, 1000, 2, NAN, NAN, false, NAN, "no cost configured" },
		{ CN_METRIC_COST_PER_1K, 5, 1000, 2, 3600, NAN, false, NAN, "5 ticks with tokens in this step, need 6" },
		{ CN_METRIC_TOKENS_PER_SECOND, 10, 1000, 2, NAN, NAN, true, 500, NULL },
		{ CN_METRIC_TOKENS_PER_SECOND, 10, 0, 0, NAN, NAN, false, NAN, "no generation tokens" },
		{ CN_METRIC_TOKENS_PER_SECOND, 10, 1000, 0, NAN, NAN, false, NAN, "no busy time" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct cn_counters c = steady(cases[i].ticks, cases[i].g, cases[i].b, cases[i].per_hour, cases[i].per_1k);
		struct cn_econ_est e;
		cn_econ_estimate(cases[i].m, &c, &e);
		if (e.ok != cases[i].ok)
			fail_msg("case %zu: ok %d, want %d (%s)", i, e.ok, cases[i].ok, e.why);
		if (cases[i].ok) {
			if (!(fabs(e.value - cases[i].value) <= 1e-9 * cases[i].value))
				fail_msg("case %zu: value %.17g, want %.17g", i, e.value, cases[i].value);
			assert_true(e.var_ln < 1e-12); /* steady ticks (or a fixed price): no noise */
		} else {
			assert_contains(e.why, cases[i].why);
		}
	}
}

static void test_halfwidth(void **state)
{
	(void)state;
	/* the boundary's shape: grows with the level, shrinks (relative to the variance) as ticks accumulate */
	double a = cn_econ_halfwidth(0.01, 10, 0.01);
	assert_true(fabs(a - sqrt(0.01 * 2 * (log(2) + 2 * log(100)))) < 1e-12);
	assert_true(cn_econ_halfwidth(0.01, 10, 0.001) > a);
	assert_true(cn_econ_halfwidth(0.01, 100, 0.01) / sqrt(0.01) < a / sqrt(0.01) * 2);
	assert_true(cn_econ_halfwidth(0, 10, 0.01) == 0);
	assert_true(isnan(cn_econ_halfwidth(-1, 10, 0.01)));
	assert_true(isnan(cn_econ_halfwidth(0.01, 0, 0.01)));
	assert_true(isnan(cn_econ_halfwidth(0.01, 10, 0)));
}

/* ---- verdicts ---- */

static struct cn_slo econ_slo(enum cn_slo_metric m, double max, double max_increase, double min_ratio)
{
	struct cn_slo s;
	memset(&s, 0, sizeof s);
	snprintf(s.name, sizeof s.name, "econ");
	s.metric = m;
	s.quantile = NAN;
	s.max = max;
	s.max_increase = max_increase;
	s.tolerance = NAN;
	s.min_ratio = min_ratio;
	return s;
}

/* An arm with noise: ticks whose busy seconds per token alternate +-dev around b/g. */
static struct cn_counters noisy(double ticks, double g, double b, double dev, double per_hour)
{
	struct cn_counters c = steady(0, 0, 0, per_hour, NAN);
	for (int k = 0; k < (int)ticks; k++) {
		double bk = b * (1 + (k % 2 ? dev : -dev));
		c.econ.ticks += 1;
		c.econ.g += g, c.econ.b += bk;
		c.econ.gg += g * g, c.econ.bb += bk * bk, c.econ.gb += g * bk;
	}
	c.requests = ticks * 10;
	return c;
}

static void test_verdict_table(void **state)
{
	(void)state;
	static const struct {
		const char *what;
		enum cn_slo_metric m;
		double max, max_increase, min_ratio;
		double b_cand, dev, price_c, price_b;
		unsigned cand_missing;
		enum cn_verdict want;
		bool promotable;
		const char *why;
	} cases[] = {
		{ "cost 1.3x vs 1.1x", CN_METRIC_COST_PER_1K, NAN, 1.1, NAN, 2.6, 0.02, 10, 10, 0, CN_VERDICT_FAIL, false,
		  "costlier than baseline" },
		{ "cost 1.0x", CN_METRIC_COST_PER_1K, NAN, 1.1, NAN, 2, 0.02, 10, 10, 0, CN_VERDICT_PASS, true, "within" },
		{ "cost 1.05x, noisy: not proven", CN_METRIC_COST_PER_1K, NAN, 1.1, NAN, 2.1, 0.3, 10, 10, 0,
		  CN_VERDICT_PASS, false, "within" },
		{ "same speed, dearer replicas", CN_METRIC_COST_PER_1K, NAN, 1.1, NAN, 2, 0.02, 13, 10, 0,
		  CN_VERDICT_FAIL, false, "1.3x" },
		{ "absolute max", CN_METRIC_COST_PER_1K, 0.005, NAN, NAN, 2, 0.02, 10, 10, 0, CN_VERDICT_FAIL, false,
		  "over the max" },
		{ "absolute max kept", CN_METRIC_COST_PER_1K, 0.01, NAN, NAN, 2, 0.02, 10, 10, 0, CN_VERDICT_PASS, true,
		  "within" },
		{ "tokens/s 0.77x vs 0.9x", CN_METRIC_TOKENS_PER_SECOND, NAN, NAN, 0.9, 2.6, 0.02, NAN, NAN, 0,
		  CN_VERDICT_FAIL, false, "slower than baseline" },
		{ "tokens/s 1.0x", CN_METRIC_TOKENS_PER_SECOND, NAN, NAN, 0.9, 2, 0.02, NAN, NAN, 0, CN_VERDICT_PASS, true,
		  "within" },
		{ "no token counter", CN_METRIC_COST_PER_1K, NAN, 1.1, NAN, 2, 0.02, 10, 10, CN_SERIES_GEN_TOKENS,
		  CN_VERDICT_INCONCLUSIVE, false, "candidate generation tokens counter missing" },
		{ "no cost", CN_METRIC_COST_PER_1K, NAN, 1.1, NAN, 2, 0.02, NAN, NAN, 0, CN_VERDICT_INCONCLUSIVE, false,
		  "no cost configured" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct cn_slo s = econ_slo(cases[i].m, cases[i].max, cases[i].max_increase, cases[i].min_ratio);
		struct cn_counters cand = noisy(20, 1000, cases[i].b_cand, cases[i].dev, cases[i].price_c);
		struct cn_counters base = noisy(20, 1000, 2, cases[i].dev, cases[i].price_b);
		struct cn_series_status cst = { .missing = cases[i].cand_missing }, bst = { 0 };
		struct cn_slo_result r;
		cn_judge_slo_econ(&s, 0.001, &cand, &base, &cst, &bst, &r);
		if (r.verdict != cases[i].want || (r.verdict == CN_VERDICT_PASS && r.promotable != cases[i].promotable))
			fail_msg("%s: verdict %d promotable %d, want %d %d: %s", cases[i].what, r.verdict, r.promotable,
				 cases[i].want, cases[i].promotable, r.why);
		assert_contains(r.why, cases[i].why);
	}
}

/* The per-feature breakdown: cost and mean latency per feature, candidate against baseline, on one line; a feature
 * only one arm has shows n/a for the other; the features summed as "other" are counted. */
static void test_features_line(void **state)
{
	(void)state;
	struct cn_counters c = steady(10, 1000, 2, 3600, NAN), b = steady(10, 1000, 2, 3600, NAN);
	c.nfeatures = 2;
	c.features[0] = (struct cn_feature){ "search", 6000, 60, 15.6 }; /* 2.6 per 1k tokens, 0.26 s each */
	c.features[1] = (struct cn_feature){ "chat", 4000, 40, 8 };
	b.nfeatures = 2;
	b.features[0] = (struct cn_feature){ "search", 6000, 60, 12 };  /* 2 per 1k tokens, 0.2 s each */
	b.features[1] = (struct cn_feature){ "code", 1000, 10, 1 };
	struct cn_econ_view v = { .have = true };
	cn_econ_view_fill(&c, &b, 3, &v);
	assert_true(v.have);
	assert_int_equal(v.nfeatures, 3);
	assert_true(fabs(v.cost_1k[0] - 2) < 1e-9 && fabs(v.tps[1] - 500) < 1e-9);
	assert_true(fabs(v.slot_cost_per_hour[0] - 3600) < 1e-9);
	char line[CN_MAX_FEATURES * 160];
	cn_econ_features_line(&v, line, sizeof line);
	assert_contains(line, "search: cost/1k 2.6 vs 2 (1.30x), latency 0.26s vs 0.2s, 6000 tokens");
	assert_contains(line, "; chat: cost/1k 2 vs n/a, latency 0.2s vs n/a, 4000 tokens");
	assert_contains(line, "; code: cost/1k n/a vs 1, latency n/a vs 0.1s, 0 tokens");
	assert_contains(line, "; 3 more features in 'other' (at most 7 shown)");
	/* a small buffer is cut, never overrun */
	char small[40];
	cn_econ_features_line(&v, small, sizeof small);
	assert_true(strlen(small) < sizeof small);
}

/* ---- whole rollouts ---- */

static uint64_t rng_state;

static double uniform(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}

static double gauss(void)
{
	return sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());
}

/* One arm's cumulative counters: requests, a latency histogram whose _sum is the busy time, generation tokens. */
static void arm_init(struct cn_sample *s, double per_hour)
{
	memset(s, 0, sizeof *s);
	s->ok = true;
	s->errors = 0;
	s->latency.nbuckets = 2;
	s->latency.le[0] = 1;
	s->latency.le[1] = INFINITY;
	s->latency.sum = 0;
	s->ttft = s->itl = s->latency;
	s->prompt_tokens = 0;
	s->cost.per_hour = per_hour;
	s->cost.replicas = 1;
	s->cost.per_1k_tokens = NAN;
}

/* n requests of 100 tokens each, time per token tpt with per-request noise of 30% */
static void arm_feed(struct cn_sample *s, double n, double tpt, bool tokens)
{
	n = floor(n + 0.5);
	s->requests += n;
	s->latency.count[0] += n;
	s->latency.count[1] += n;
	double g = 100 * n;
	double b = n > 0 ? g * tpt * (1 + 0.3 / sqrt(n) * gauss()) : 0;
	s->latency.sum += b > 0 ? b : 0;
	s->gen_tokens = tokens ? (isnan(s->gen_tokens) ? 0 : s->gen_tokens) + g : NAN;
	s->prompt_tokens += 20 * n;
}

static struct cn_policy econ_policy(enum cn_judge_kind judge)
{
	struct cn_policy p;
	memset(&p, 0, sizeof p);
	snprintf(p.name, sizeof p.name, "econ");
	static const double w[] = { 1, 5, 100 };
	for (int i = 0; i < 3; i++) {
		p.steps[i].weight = w[i];
		p.steps[i].hold_ms = 120 * SEC;
	}
	p.nsteps = 3;
	p.analysis.interval_ms = 10 * SEC;
	p.analysis.min_requests = 100;
	p.analysis.failing_ticks = 3;
	p.analysis.inconclusive_timeout_ms = 0; /* wait: a missing counter holds for ever */
	p.analysis.on_inconclusive = CN_FALLBACK_WAIT;
	p.analysis.judge = judge;
	p.analysis.false_rollback_budget = 0.01;
	p.slos[0] = econ_slo(CN_METRIC_COST_PER_1K, NAN, 1.1, NAN);
	snprintf(p.slos[0].name, sizeof p.slos[0].name, "cost");
	p.slos[1] = econ_slo(CN_METRIC_TOKENS_PER_SECOND, NAN, NAN, 0.8);
	snprintf(p.slos[1].name, sizeof p.slos[1].name, "throughput");
	p.nslos = 2;
	p.on_failure = CN_FALLBACK_ROLLBACK;
	p.on_approval_timeout = CN_FALLBACK_WAIT;
	return p;
}

struct run {
	enum cn_phase phase;
	int step;        /* where it ended */
	int ticks;
	char reason[256];
};

/* Drives a rollout at `rps` requests/s: the candidate's time per token is tpt_c (the baseline's 0.01 s), from the
 * step `from_step` on (earlier: as the baseline); until it ends or 200 ticks. */
static struct run rollout(enum cn_judge_kind judge, double rps, double tpt_c, int from_step, bool tokens)
{
	struct cn_policy p = econ_policy(judge);
	struct cn_rollout_state *st = calloc(1, sizeof *st);
	struct cn_tick_result *r = calloc(1, sizeof *r);
	struct cn_observation *obs = calloc(1, sizeof *obs);
	assert_true(st && r && obs);
	cn_rollout_init(st);
	arm_init(&obs->baseline, 10);
	arm_init(&obs->candidate, 10);
	obs->baseline.gen_tokens = obs->candidate.gen_tokens = tokens ? 0 : NAN;
	int64_t now = T0;
	struct run out = { 0 };
	for (out.ticks = 0; out.ticks < 200 && !cn_phase_is_terminal(st->phase); out.ticks++) {
		double w = st->weight / 100;
		double swing = 1 + 0.5 * sin(out.ticks / 7.0); /* traffic over the day */
		arm_feed(&obs->baseline, rps * 10 * swing * (1 - w), 0.01, tokens);
		arm_feed(&obs->candidate, rps * 10 * swing * w, st->step >= from_step ? tpt_c : 0.01, tokens);
		obs->at_ms = now;
		cn_tick(&p, st, obs, now, r);
		*st = r->next;
		snprintf(out.reason, sizeof out.reason, "%s", r->reason);
		now += 10 * SEC;
	}
	out.phase = st->phase;
	out.step = st->step;
	free(st);
	free(r);
	free(obs);
	return out;
}

static void test_rollouts(void **state)
{
	(void)state;
	static const struct {
		const char *what;
		enum cn_judge_kind judge;
		double tpt_c;
		int from_step;
		enum cn_phase want;
		const char *why;
	} cases[] = {
		{ "healthy, threshold", CN_JUDGE_THRESHOLD, 0.01, 0, CN_PHASE_PROMOTED, "promoted" },
		{ "healthy, sequential", CN_JUDGE_SEQUENTIAL, 0.01, 0, CN_PHASE_PROMOTED, "promoted" },
		{ "30% more time per token, threshold", CN_JUDGE_THRESHOLD, 0.013, 0, CN_PHASE_ROLLED_BACK, "slo 'cost'" },
		{ "30% more time per token, sequential", CN_JUDGE_SEQUENTIAL, 0.013, 0, CN_PHASE_ROLLED_BACK,
		  "slo 'cost'" },
		/* the 100% step: the baseline has no traffic; judged against its evidence frozen from step 2 */
		{ "costly only at 100%, threshold", CN_JUDGE_THRESHOLD, 0.013, 2, CN_PHASE_ROLLED_BACK, "slo 'cost'" },
		{ "costly only at 100%, sequential", CN_JUDGE_SEQUENTIAL, 0.013, 2, CN_PHASE_ROLLED_BACK, "slo 'cost'" },
		/* half the throughput: both SLOs are over; the first failing one is named */
		{ "twice the time per token", CN_JUDGE_THRESHOLD, 0.02, 0, CN_PHASE_ROLLED_BACK, "costlier" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		rng_state = 42 + i;
		struct run r = rollout(cases[i].judge, 1000, cases[i].tpt_c, cases[i].from_step, true);
		if (r.phase != cases[i].want)
			fail_msg("%s: ended %s at step %d after %d ticks, want %s: %s", cases[i].what, cn_phase_name(r.phase),
				 r.step + 1, r.ticks, cn_phase_name(cases[i].want), r.reason);
		assert_contains(r.reason, cases[i].why);
		if (cases[i].from_step == 2)
			assert_int_equal(r.step, 2);
	}
}

static void test_no_token_counters(void **state)
{
	(void)state;
	/* a page without token counters: the economics SLOs stay inconclusive, say why, and never pass */
	rng_state = 7;
	for (int judge = 0; judge < 2; judge++) {
		struct run r = rollout(judge ? CN_JUDGE_SEQUENTIAL : CN_JUDGE_THRESHOLD, 1000, 0.01, 0, false);
		assert_int_equal(r.phase, CN_PHASE_PROGRESSING);
		assert_int_equal(r.step, 0);
		assert_contains(r.reason, "generation tokens counter missing");
	}
}

/* Identical candidates: the share rolled back stays within the budget (1%). */
static void test_aa_false_rollbacks(void **state)
{
	(void)state;
	const int n = 300;
	for (int judge = 0; judge < 2; judge++) {
		int rolled = 0, promoted = 0;
		for (int i = 0; i < n; i++) {
			rng_state = 1000 + (uint64_t)i;
			struct run r = rollout(judge ? CN_JUDGE_SEQUENTIAL : CN_JUDGE_THRESHOLD, 200, 0.01, 0, true);
			rolled += r.phase == CN_PHASE_ROLLED_BACK;
			promoted += r.phase == CN_PHASE_PROMOTED;
		}
		print_message("A/A %s: %d of %d rolled back, %d promoted\n", judge ? "sequential" : "threshold", rolled, n,
			      promoted);
		/* the budget is 1%: 3 of 300; at most 3 keeps the test honest with some room for the plug-in variance */
		assert_true(rolled <= 3);
		assert_true(promoted >= n * 9 / 10);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_estimate_table),   cmocka_unit_test(test_halfwidth),
		cmocka_unit_test(test_verdict_table),    cmocka_unit_test(test_features_line),
		cmocka_unit_test(test_rollouts),
		cmocka_unit_test(test_no_token_counters), cmocka_unit_test(test_aa_false_rollbacks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
