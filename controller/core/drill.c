/* The failover drill's state machine: baseline on the primary -> shift to the secondary -> hold, judged every tick
 * by the threshold judge against the primary's figures from just before the shift -> restore the primary. Pure:
 * time, readings and the gateway's confirmations come in as arguments. */
#include "canary/drill.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "canary/bug.h"
#include "canary/judge.h"

static const char *const phase_names[] = {
	[CN_DRILL_PENDING] = "pending",     [CN_DRILL_BASELINE] = "baseline",   [CN_DRILL_SHIFTING] = "shifting",
	[CN_DRILL_HOLDING] = "holding",     [CN_DRILL_RESTORING] = "restoring", [CN_DRILL_PASSED] = "passed",
	[CN_DRILL_CUT_SHORT] = "cut_short", [CN_DRILL_ABORTED] = "aborted",     [CN_DRILL_FAILED] = "failed",
};

const char *cn_drill_phase_name(enum cn_drill_phase p)
{
	CN_BUG_ON((unsigned)p > CN_DRILL_FAILED);
	return phase_names[p];
}

int cn_drill_phase_parse(const char *s, enum cn_drill_phase *out)
{
	for (int i = 0; s && i <= CN_DRILL_FAILED; i++)
		if (strcmp(s, phase_names[i]) == 0) {
			*out = (enum cn_drill_phase)i;
			return 0;
		}
	return -1;
}

bool cn_drill_ended(enum cn_drill_phase p)
{
	return p >= CN_DRILL_PASSED;
}

void cn_drill_init(struct cn_drill_state *s)
{
	memset(s, 0, sizeof *s);
	s->phase = CN_DRILL_PENDING;
	s->outcome = CN_DRILL_PENDING;
	cn_counters_reset(&s->primary_ref);
	cn_counters_reset(&s->shift);
	cn_counters_reset(&s->hold_sec);
	cn_counters_reset(&s->hold_pri);
	cn_counters_reset(&s->restore);
	cn_counters_reset(&s->tick_pri);
	cn_counters_reset(&s->tick_sec);
	snprintf(s->reason, sizeof s->reason, "waiting for the first reading");
}

static void enter(struct cn_drill_state *s, enum cn_drill_phase p, int64_t now)
{
	s->phase = p;
	s->phase_started_ms = now;
}

static void begin_restore(struct cn_drill_state *s, enum cn_drill_phase outcome, int64_t now)
{
	enter(s, CN_DRILL_RESTORING, now);
	s->outcome = outcome;
	s->weight = 0;
	s->restore_started_ms = now;
	s->restore_done_ms = 0;
	s->window_open = false;
}

void cn_drill_resume(enum cn_drill_phase phase, enum cn_drill_phase outcome, double weight, int64_t now_ms,
		     const char *why, struct cn_drill_state *out)
{
	cn_drill_init(out);
	switch (phase) {
	case CN_DRILL_PENDING:
	case CN_DRILL_BASELINE:
		if (weight == 0)
			return; /* nothing was moved: measure the primary again */
		/* fall through */
	case CN_DRILL_SHIFTING:
	case CN_DRILL_HOLDING:
		out->weight = weight;
		begin_restore(out, CN_DRILL_FAILED, now_ms);
		snprintf(out->reason, sizeof out->reason, "%s; restoring the primary", why ? why : "interrupted");
		return;
	case CN_DRILL_RESTORING:
		begin_restore(out, cn_drill_ended(outcome) ? outcome : CN_DRILL_FAILED, now_ms);
		snprintf(out->reason, sizeof out->reason, "%s; restoring the primary", why ? why : "interrupted");
		return;
	default:
		out->phase = phase; /* ended: nothing to do */
		out->outcome = outcome;
		return;
	}
}

void cn_drill_numbers(const struct cn_counters *c, struct cn_drill_numbers *out)
{
	out->requests = c->requests;
	out->errors = c->errors;
	out->error_rate = c->requests > 0 ? c->errors / c->requests : NAN;
	out->p99_s = c->latency.nbuckets > 0 ? cn_histogram_quantile(0.99, &c->latency) : NAN;
}

static void keep_span(double *v, double earlier)
{
	if (isnan(*v))
		*v = earlier;
}

static void keep_window(struct cn_drill_numbers *n, const struct cn_drill_numbers *earlier)
{
	if (!(n->requests > 0))
		*n = *earlier;
}

void cn_drill_figures_merge(struct cn_drill_figures *f, const struct cn_drill_figures *earlier)
{
	keep_span(&f->shift_s, earlier->shift_s);
	keep_span(&f->hold_s, earlier->hold_s);
	keep_span(&f->restore_s, earlier->restore_s);
	keep_window(&f->baseline, &earlier->baseline);
	keep_window(&f->shift, &earlier->shift);
	keep_window(&f->hold, &earlier->hold);
	keep_window(&f->hold_primary, &earlier->hold_primary);
	keep_window(&f->restore, &earlier->restore);
}

const char *cn_drill_numbers_text(const struct cn_drill_numbers *n, char *buf, size_t size)
{
	if (!(n->requests > 0))
		snprintf(buf, size, "no requests");
	else if (isnan(n->p99_s))
		snprintf(buf, size, "%.0f requests, %.0f errors (%.2f%%)", n->requests, n->errors, 100 * n->error_rate);
	else
		snprintf(buf, size, "%.0f requests, %.0f errors (%.2f%%), p99 %.3gs", n->requests, n->errors,
			 100 * n->error_rate, n->p99_s);
	return buf;
}

static void describe(const struct cn_counters *c, char *buf, size_t size)
{
	struct cn_drill_numbers n;
	cn_drill_numbers(c, &n);
	cn_drill_numbers_text(&n, buf, size);
}

/* Takes one reading's deltas into tick and adds them to acc (NULL: the tick only). */
static void ingest(struct cn_sample *last, const struct cn_sample *cur, bool have_last, struct cn_counters *tick,
		   struct cn_counters *acc, struct cn_series_status *st)
{
	struct cn_sample base;
	cn_counters_reset(tick);
	cn_ingest_sample(have_last ? last : NULL, cur, tick, &base, st);
	*last = base;
	if (acc)
		cn_counters_add(acc, tick, st);
}

static double span_s(int64_t from, int64_t to)
{
	return from > 0 && to > 0 ? (double)(to - from) / 1000 : NAN;
}

void cn_drill_figures(const struct cn_drill_state *s, struct cn_drill_figures *out)
{
	out->shift_s = span_s(s->shift_started_ms, s->shift_done_ms);
	out->hold_s = span_s(s->hold_started_ms, s->restore_started_ms);
	out->restore_s = span_s(s->restore_started_ms, s->restore_done_ms);
	cn_drill_numbers(&s->primary_ref, &out->baseline);
	cn_drill_numbers(&s->shift, &out->shift);
	cn_drill_numbers(&s->hold_sec, &out->hold);
	cn_drill_numbers(&s->hold_pri, &out->hold_primary);
	cn_drill_numbers(&s->restore, &out->restore);
}

/* Judges every SLO of the policy on the secondary's hold against the primary's baseline. Returns the index of the
 * first failing SLO, or -1; *all_pass tells whether every verdict passed. */
static int judge_hold(const struct cn_drill_config *cfg, struct cn_drill_state *s, const struct cn_series_status *cst,
		      bool *all_pass)
{
	const struct cn_policy *p = cfg->policy;
	struct cn_series_status bst = {0}; /* the baseline is frozen: nothing of it is missing this tick */
	struct cn_judge_ctx ctx = {
		.min_requests = cn_judge_min_sample(p),
		.alpha = p->analysis.false_rollback_budget / (2.0 * (p->nslos > 0 ? p->nslos : 1)),
		.disp = 1,
		.warm = true,
	};
	int failed = -1;
	*all_pass = true;
	s->nslos = p->nslos;
	for (int i = 0; i < p->nslos; i++) {
		cn_judge_slo(&p->slos[i], &ctx, &s->hold_sec, &s->primary_ref, cst, &bst, &s->slos[i]);
		if (s->slos[i].verdict != CN_VERDICT_PASS)
			*all_pass = false;
		if (s->slos[i].verdict == CN_VERDICT_FAIL && failed < 0)
			failed = i;
	}
	return failed;
}

void cn_drill_tick(const struct cn_drill_config *cfg, const struct cn_drill_state *in,
		   const struct cn_sample *primary, const struct cn_sample *secondary, int64_t now_ms,
		   struct cn_drill_state *out, bool *set_weight)
{
	CN_BUG_ON(!cfg || !cfg->policy || !in || !out || out == in || !set_weight);
	struct cn_series_status pst, sst;
	char a[128], b[128], label[48];
	bool had = in->have_last;
	*out = *in;
	*set_weight = false;
	if (cn_drill_ended(in->phase))
		return;
	/* Which window this tick's deltas belong to. */
	struct cn_counters *pacc = NULL, *sacc = NULL;
	switch (in->phase) {
	case CN_DRILL_BASELINE: pacc = &out->primary_ref; break;
	case CN_DRILL_SHIFTING: pacc = sacc = &out->shift; break;
	case CN_DRILL_HOLDING:
		if (in->window_open)
			pacc = sacc = &out->shift;
		else {
			pacc = &out->hold_pri;
			sacc = &out->hold_sec;
		}
		break;
	case CN_DRILL_RESTORING: pacc = sacc = &out->restore; break;
	default: break;
	}
	ingest(&out->last_primary, primary, had, &out->tick_pri, pacc, &pst);
	ingest(&out->last_secondary, secondary, had, &out->tick_sec, sacc, &sst);
	out->have_last = true;

	switch (in->phase) {
	case CN_DRILL_PENDING:
		enter(out, CN_DRILL_BASELINE, now_ms);
		snprintf(out->reason, sizeof out->reason, "measuring the primary for %llds before the shift",
			 (long long)(cfg->baseline_ms / 1000));
		return;
	case CN_DRILL_BASELINE:
		describe(&out->primary_ref, a, sizeof a);
		if (now_ms - in->phase_started_ms < cfg->baseline_ms) {
			snprintf(out->reason, sizeof out->reason, "measuring the primary before the shift: %s", a);
			return;
		}
		enter(out, CN_DRILL_SHIFTING, now_ms);
		out->weight = 100;
		out->shift_started_ms = now_ms;
		*set_weight = true;
		snprintf(out->reason, sizeof out->reason, "shifting all traffic to the secondary (primary before the "
			 "shift: %s)", a);
		return;
	case CN_DRILL_SHIFTING:
		if (now_ms - in->shift_started_ms >= cfg->shift_timeout_ms) {
			begin_restore(out, CN_DRILL_FAILED, now_ms);
			*set_weight = true;
			snprintf(out->reason, sizeof out->reason, "the gateway did not confirm the shift within %llds; "
				 "restoring the primary", (long long)(cfg->shift_timeout_ms / 1000));
		}
		return;
	case CN_DRILL_HOLDING: {
		if (in->window_open) {
			out->window_open = false;
			describe(&out->shift, a, sizeof a);
			snprintf(out->reason, sizeof out->reason, "holding on the secondary; during the shift: %s", a);
			return;
		}
		bool all_pass;
		int f = judge_hold(cfg, out, &sst, &all_pass);
		describe(&out->hold_sec, a, sizeof a);
		if (f >= 0) {
			begin_restore(out, CN_DRILL_CUT_SHORT, now_ms);
			*set_weight = true;
			snprintf(out->reason, sizeof out->reason, "slo '%s' breached on the secondary after %.1fs: %s; "
				 "restoring the primary", cfg->policy->slos[f].name,
				 (double)(now_ms - in->hold_started_ms) / 1000, out->slos[f].why);
			return;
		}
		if (now_ms - in->hold_started_ms < cfg->hold_ms) {
			snprintf(out->reason, sizeof out->reason, "holding on the secondary, %.0fs of %llds: %s",
				 (double)(now_ms - in->hold_started_ms) / 1000, (long long)(cfg->hold_ms / 1000), a);
			return;
		}
		if (all_pass) {
			begin_restore(out, CN_DRILL_PASSED, now_ms);
			snprintf(out->reason, sizeof out->reason, "held %llds on the secondary with every slo passing "
				 "(%s); restoring the primary", (long long)(cfg->hold_ms / 1000), a);
		} else {
			int k = 0;
			while (k < out->nslos && out->slos[k].verdict == CN_VERDICT_PASS)
				k++;
			begin_restore(out, CN_DRILL_FAILED, now_ms);
			snprintf(out->reason, sizeof out->reason, "the hold ended without a verdict on %s: %s; "
				 "restoring the primary", cn_slo_label(&cfg->policy->slos[k], label, sizeof label),
				 out->slos[k].why);
		}
		*set_weight = true;
		return;
	}
	case CN_DRILL_RESTORING:
		if (!in->window_open)
			return;
		out->window_open = false;
		enter(out, in->outcome, now_ms);
		describe(&out->restore, b, sizeof b);
		/* the decision's reason stays in front: why the drill ended is what a person looks for */
		char why[sizeof in->reason];
		static const char tail[] = "; restoring the primary";
		snprintf(why, sizeof why, "%s", in->reason);
		size_t n = strlen(why), t = sizeof tail - 1;
		if (n >= t && strcmp(why + n - t, tail) == 0)
			why[n - t] = '\0';
		snprintf(out->reason, sizeof out->reason, "%s: %s; primary restored in %.3fs (during the restore: %s)",
			 cn_drill_phase_name(in->outcome), why,
			 (double)(in->restore_done_ms - in->restore_started_ms) / 1000, b);
		return;
	default:
		return;
	}
}

void cn_drill_confirmed(const struct cn_drill_state *in, double weight, int64_t now_ms, struct cn_drill_state *out)
{
	CN_BUG_ON(!in || !out || out == in);
	*out = *in;
	if (in->phase == CN_DRILL_SHIFTING && weight == 100 && in->weight == 100) {
		enter(out, CN_DRILL_HOLDING, now_ms);
		out->shift_done_ms = now_ms;
		out->hold_started_ms = now_ms;
		out->window_open = true;
		snprintf(out->reason, sizeof out->reason, "all traffic on the secondary after %.3fs; holding",
			 (double)(now_ms - in->shift_started_ms) / 1000);
	} else if (in->phase == CN_DRILL_RESTORING && weight == 0 && !in->window_open && in->restore_done_ms == 0) {
		out->restore_done_ms = now_ms;
		out->window_open = true;
	}
}

void cn_drill_stop(const struct cn_drill_state *in, enum cn_drill_phase outcome, const char *why, int64_t now_ms,
		   struct cn_drill_state *out, bool *set_weight)
{
	CN_BUG_ON(!in || !out || out == in || !set_weight || !cn_drill_ended(outcome));
	*out = *in;
	*set_weight = false;
	if (cn_drill_ended(in->phase) || in->phase == CN_DRILL_RESTORING)
		return;
	*set_weight = in->weight != 0;
	begin_restore(out, outcome, now_ms);
	snprintf(out->reason, sizeof out->reason, "%s; restoring the primary", why ? why : "stopped");
}
