/* The rollout state machine: what one tick or one operator's command does to a rollout, and why, with numbers.
 * Decisions taken here (README "Rollout rules" repeats them):
 * - Steps are numbered from 1 in reasons, from 0 in the state.
 * - Evidence (deltas) accumulates from the tick after a step's weight was applied; advancing resets it.
 * - A tick with any failing SLO counts towards analysis.failing_ticks; only an all-pass tick (with both readings
 *   usable) resets the count. Inconclusive ticks leave it as it is: a gap in evidence neither confirms nor clears.
 * - A tick is inconclusive if no SLO fails and some SLO is inconclusive or a reading is unusable; the timer starts
 *   at the first such tick and any conclusive tick stops it. on_inconclusive "wait" holds for ever.
 * - Pending applies step 1 only with both readings usable (shifting traffic blind is never right).
 * - While awaiting approval the candidate keeps its weight and is still judged: a regression rolls back.
 * - Paused rollouts hold and change nothing (not even the base reading); the verdicts are reported only.
 * - Terminal decisions (rollback, abort, promote) always set the gateway, even if the weight looks unchanged.
 * - Threshold judge: a step advances when no SLO is proven over its limit; promotion wants more, every SLO proven
 *   within its limit (the candidate's upper bound below it). Otherwise a regression that starts late in the last
 *   hold is promoted on the step's average: errors x2 30 s into a 1-minute 100% step at 1,000 requests/s were
 *   promoted in 97.6% of simulated rollouts. At the last step the candidate already has its final share, so
 *   holding for the proof exposes no one new; a healthy candidate at 1,000 requests/s has it when the hold ends.
 * Sequential judge (analysis.judge: sequential; README "Sequential judge"):
 * - Each SLO's test is carried across steps (its false-rollback chance is per rollout); its alpha is the budget
 *   divided by the number of SLOs. A failing verdict is a boundary crossing, which is already the confirmation:
 *   it acts at once, analysis.failing_ticks applies to the threshold judge only.
 * - What the evidence must show to advance depends on what advancing exposes. To promote, or to move to a step
 *   that gives the candidate most of the traffic (> 50%), every SLO with a tolerance needs its ratio's
 *   time-uniform upper bound below it. To move to a minority step it is enough that the data fit "at the
 *   tolerance" no better than "as good as the baseline" (ln Lambda(tol) <= 0). Proving a 1.2x tolerance on a
 *   p99 needs some 360 slow requests of the candidate: about an hour at 1% of 1,000 requests/s, 12 minutes at 5%.
 *   Demanding it at 1% made a healthy rollout of the default policy take 67 minutes (p50) instead of its 16-minute
 *   hold; a regression that slips through the weak gate is still tested at every tick of the next step, with
 *   more traffic and so more power, and the strong gate comes before most users see it.
 *   Besides hold, min_requests and all-pass; until then the rollout holds (not "inconclusive": no timer runs).
 * - The sample-ratio check compares the candidate's share of requests with the configured weight, per step (and
 *   anew after a resume); a mismatch makes the tick inconclusive (hold, then on_inconclusive) and says why. */
#include "canary/rollout.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "canary/bug.h"
#include "canary/judge.h"
#include "canary/preflight.h"

/* A step above this weight (or promotion) gives the candidate most of the traffic: the sequential judge then wants
 * the ratio proven within its tolerance, not only favoured (see the top of this file). */
#define CN_MAJORITY_WEIGHT 50

static const char *const phase_names[] = {
	[CN_PHASE_PENDING] = "pending",
	[CN_PHASE_PROGRESSING] = "progressing",
	[CN_PHASE_PAUSED] = "paused",
	[CN_PHASE_AWAITING_APPROVAL] = "awaiting_approval",
	[CN_PHASE_PROMOTED] = "promoted",
	[CN_PHASE_ROLLED_BACK] = "rolled_back",
	[CN_PHASE_ABORTED] = "aborted",
	[CN_PHASE_FAILED] = "failed",
};

static const char *const decision_names[] = {
	[CN_DECIDE_HOLD] = "hold",
	[CN_DECIDE_START] = "start",
	[CN_DECIDE_ADVANCE] = "advance",
	[CN_DECIDE_AWAIT_APPROVAL] = "await_approval",
	[CN_DECIDE_PROMOTE] = "promote",
	[CN_DECIDE_ROLLBACK] = "rollback",
	[CN_DECIDE_PAUSE] = "pause",
	[CN_DECIDE_RESUME] = "resume",
	[CN_DECIDE_ABORT] = "abort",
};

static const char *const verdict_names[] = {
	[CN_VERDICT_PASS] = "pass",
	[CN_VERDICT_FAIL] = "fail",
	[CN_VERDICT_INCONCLUSIVE] = "inconclusive",
};

static const char *const command_names[] = {
	[CN_CMD_APPROVE] = "approve",
	[CN_CMD_PAUSE] = "pause",
	[CN_CMD_RESUME] = "resume",
	[CN_CMD_ABORT] = "abort",
	[CN_CMD_PROMOTE_FULL] = "promote_full",
};

#define NAME_OF(table, v) \
	((unsigned)(v) < sizeof(table) / sizeof(table[0]) && (table)[v] ? (table)[v] : "unknown")

const char *cn_phase_name(enum cn_phase ph) { return NAME_OF(phase_names, ph); }
const char *cn_decision_name(enum cn_decision d) { return NAME_OF(decision_names, d); }
const char *cn_verdict_name(enum cn_verdict v) { return NAME_OF(verdict_names, v); }
const char *cn_command_name(enum cn_command_kind c) { return NAME_OF(command_names, c); }

int cn_phase_from_name(const char *name, enum cn_phase *out)
{
	for (unsigned i = 0; name && i < sizeof phase_names / sizeof phase_names[0]; i++) {
		if (strcmp(name, phase_names[i]) == 0) {
			*out = (enum cn_phase)i;
			return 0;
		}
	}
	return -CN_EINPUT;
}

int cn_command_from_name(const char *name, enum cn_command_kind *out)
{
	for (unsigned i = 0; name && i < sizeof command_names / sizeof command_names[0]; i++) {
		if (strcmp(name, command_names[i]) == 0) {
			*out = (enum cn_command_kind)i;
			return 0;
		}
	}
	return -CN_EINPUT;
}

bool cn_phase_is_terminal(enum cn_phase ph)
{
	return ph == CN_PHASE_PROMOTED || ph == CN_PHASE_ROLLED_BACK || ph == CN_PHASE_ABORTED ||
	       ph == CN_PHASE_FAILED;
}

static void sample_clear(struct cn_sample *s)
{
	memset(s, 0, sizeof *s);
	s->requests = NAN;
	s->errors = NAN;
	s->latency.sum = s->ttft.sum = s->itl.sum = NAN;
	s->gen_tokens = s->prompt_tokens = NAN;
	s->cost.per_hour = s->cost.replicas = s->cost.per_1k_tokens = NAN;
}

void cn_rollout_init(struct cn_rollout_state *st)
{
	CN_BUG_ON(!st);
	memset(st, 0, sizeof *st);
	st->phase = CN_PHASE_PENDING;
	st->paused_from = CN_PHASE_PENDING;
	st->step = -1;
	st->weight = 0;
	st->have_last = false;
	sample_clear(&st->last.baseline);
	sample_clear(&st->last.candidate);
	cn_counters_reset(&st->acc_baseline);
	cn_counters_reset(&st->acc_candidate);
	cn_counters_reset(&st->ref_baseline);
	for (int i = 0; i < CN_MAX_SLOS; i++)
		cn_seq_init(&st->seq.slo[i], NAN);
	cn_seq_init(&st->seq.srm, NAN);
}

/* Appends to out->reason, bounded. */
__attribute__((format(printf, 2, 3))) static void say(struct cn_tick_result *out, const char *fmt, ...)
{
	size_t len = strlen(out->reason);
	if (len + 1 >= sizeof out->reason)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out->reason + len, sizeof out->reason - len, fmt, ap);
	va_end(ap);
}

/* "850ms", "45s", "5m00s", "2h05m". */
static const char *fmt_dur(int64_t ms, char *b, size_t n)
{
	long long s = (long long)(ms / 1000);
	if (ms < 0)
		snprintf(b, n, "%lldms", (long long)ms);
	else if (ms < 1000)
		snprintf(b, n, "%lldms", (long long)ms);
	else if (s < 60)
		snprintf(b, n, "%.3gs", (double)ms / 1000.0);
	else if (s < 3600)
		snprintf(b, n, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(b, n, "%lldh%02lldm", s / 3600, s / 60 % 60);
	return b;
}

/* "step 2 of 3 (5%)" or "before the first step". */
static const char *fmt_where(const struct cn_policy *p, int step, char *b, size_t n)
{
	if (step < 0 || step >= p->nsteps)
		snprintf(b, n, "before the first step");
	else
		snprintf(b, n, "step %d of %d (%g%%)", step + 1, p->nsteps, p->steps[step].weight);
	return b;
}

/* "at step 2 of 3 (5%)" or "before the first step". */
static const char *fmt_at(const struct cn_policy *p, int step, char *b, size_t n)
{
	char w[48];
	if (step < 0 || step >= p->nsteps)
		return fmt_where(p, step, b, n);
	snprintf(b, n, "at %s", fmt_where(p, step, w, sizeof w));
	return b;
}

/* True if the state lies in or across the result: cn_tick and cn_command write out while they still read cur, so
 * cur must not alias out. Compared as integers, which is defined for unrelated objects. */
static bool overlaps(const struct cn_rollout_state *cur, const struct cn_tick_result *out)
{
	uintptr_t c = (uintptr_t)cur, o = (uintptr_t)out;
	return c < o + sizeof *out && o < c + sizeof *cur;
}

static void result_init(struct cn_tick_result *out, const struct cn_rollout_state *cur)
{
	out->next = *cur;
	out->decision = CN_DECIDE_HOLD;
	out->set_weight = false;
	out->weight = cur->weight;
	out->nslos = 0;
	out->reason[0] = '\0';
	out->econ.have = false;
	out->econ.nfeatures = 0;
}

static void finish(struct cn_tick_result *out, enum cn_phase ph, double weight, enum cn_decision d)
{
	out->next.phase = ph;
	out->next.weight = weight;
	out->weight = weight;
	out->set_weight = true;
	out->decision = d;
}

static void pause_here(struct cn_tick_result *out)
{
	out->next.paused_from = out->next.phase;
	out->next.phase = CN_PHASE_PAUSED;
	out->decision = CN_DECIDE_PAUSE;
}

static void await_approval(struct cn_tick_result *out, int64_t now)
{
	out->next.phase = CN_PHASE_AWAITING_APPROVAL;
	out->next.waiting_since_ms = now;
	out->decision = CN_DECIDE_AWAIT_APPROVAL;
}

static void apply_step(const struct cn_policy *p, struct cn_tick_result *out, int step, int64_t now,
		       enum cn_decision d)
{
	struct cn_rollout_state *n = &out->next;
	n->phase = CN_PHASE_PROGRESSING;
	n->step = step;
	n->weight = p->steps[step].weight;
	n->step_started_ms = now;
	n->waiting_since_ms = 0;
	n->failing_ticks = 0;
	n->inconclusive_since_ms = 0;
	n->approved = false;
	/* a step that takes all traffic leaves the baseline none: keep what it showed so far as the reference */
	if (n->acc_baseline.requests > 0)
		n->ref_baseline = n->acc_baseline;
	cn_counters_reset(&n->acc_baseline);
	cn_counters_reset(&n->acc_candidate);
	cn_seq_init(&n->seq.srm, NAN); /* a new weight: the sample ratio is checked anew */
	/* a regression often arrives with the load of a new step: a fresh rollback process starts with it */
	for (int i = 0; i < CN_MAX_SLOS; i++)
		cn_seq_restart(&n->seq.slo[i]);
	out->decision = d;
	out->set_weight = true;
	out->weight = n->weight;
}

/* What one tick's evidence says. */
struct tally {
	struct cn_series_status cst, bst;
	bool usable;     /* both readings usable */
	int nfail, ninc;
	int first_fail, first_inc;
	int first_unproven; /* sequential: first SLO whose evidence does not yet allow most traffic, -1 if none */
	int first_implausible; /* sequential: first SLO whose evidence does not yet allow a minority step, -1 if none */
	bool srm;           /* sequential: the traffic split is not the configured one */
	char srm_why[160];
};

/* The sample-ratio check: requests of this tick against the configured share. */
static void check_srm(const struct cn_policy *p, const struct cn_rollout_state *cur, struct cn_rollout_state *n,
		      const struct cn_counters *dc, const struct cn_counters *db, struct tally *t)
{
	struct cn_seq_stat *s = &n->seq.srm;
	double w = cur->weight / 100;
	unsigned bad = CN_SERIES_REQUESTS;
	if (!(w > 0 && w < 1) || t->cst.note || t->bst.note || ((t->cst.missing | t->cst.reset) & bad) ||
	    ((t->bst.missing | t->bst.reset) & bad))
		return;
	cn_seq_add(s, w, dc->requests, db->requests);
	if (dc->requests >= 0 && db->requests >= 0 && isfinite(dc->requests) && isfinite(db->requests)) {
		s->x_c += dc->requests;
		s->x_b += db->requests;
	}
	double b = log(1 / p->analysis.false_rollback_budget);
	double up = cn_seq_mixture(s, CN_SRM_MARGIN, 1.5, CN_SRM_MAX, 1);
	double down = cn_seq_mixture(s, 1 / CN_SRM_MARGIN, 0.2, 0.5, 1);
	if (!(up >= b) && !(down >= b))
		return;
	t->srm = true;
	snprintf(t->srm_why, sizeof t->srm_why, "sample ratio mismatch: the candidate got %.3g%% of %.0f requests in "
		 "this step, configured %g%% (evidence %.1f of %.1f): the traffic split is not what the controller thinks",
		 100 * s->x_c / (s->x_c + s->x_b), s->x_c + s->x_b, cur->weight, up > down ? up : down, b);
}

/* The threshold judge's dispersion estimate: each clean tick's bad events of both arms (errors, or requests slower
 * than a line fixed at the first tick: a moving limit would pass for bursts) enter the sums of the SLO's seq stat, which the threshold judge does not otherwise use. */
static void threshold_dispersion(const struct cn_slo *slo, struct cn_seq_stat *s, const struct cn_counters *dc,
				 const struct cn_counters *db, const struct cn_counters *acc_base, const struct tally *t)
{
	unsigned mask = CN_SERIES_REQUESTS;
	const struct cn_histogram *hc = NULL, *hb = NULL;
	switch (slo->metric) {
	case CN_METRIC_ERROR_RATE: mask |= CN_SERIES_ERRORS; break;
	case CN_METRIC_LATENCY: mask |= CN_SERIES_LATENCY, hc = &dc->latency, hb = &db->latency; break;
	case CN_METRIC_TTFT: mask |= CN_SERIES_TTFT, hc = &dc->ttft, hb = &db->ttft; break;
	case CN_METRIC_ITL: mask |= CN_SERIES_ITL, hc = &dc->itl, hb = &db->itl; break;
	case CN_METRIC_TOKENS_PER_SECOND:
	case CN_METRIC_COST_PER_1K: return; /* rates: their variance comes from the ticks (econ.c) */
	}
	if (hc && isnan(s->threshold)) {
		/* the line slow requests are counted above, fixed once: the limit as the baseline's estimate gives it */
		double q = cn_histogram_quantile(slo->quantile, hc == &dc->latency ? &acc_base->latency :
						 hc == &dc->ttft ? &acc_base->ttft : &acc_base->itl);
		double l = isfinite(slo->max_increase) && isfinite(q) ? q * slo->max_increase : NAN;
		if (isfinite(slo->max) && !(l <= slo->max))
			l = slo->max;
		if (!(l > 0) || !isfinite(l))
			return; /* no line yet */
		s->threshold = l;
	}
	if (!t->cst.note && !((t->cst.missing | t->cst.reset) & mask)) {
		double x = hc ? cn_histogram_count_above(hc, s->threshold) : dc->errors;
		double n = hc ? (cn_histogram_sane(hc) ? hc->count[hc->nbuckets - 1] : NAN) : dc->requests;
		cn_seq_add_dispersion_cand(s, x, n);
	}
	if (!t->bst.note && !((t->bst.missing | t->bst.reset) & mask)) {
		double x = hb ? cn_histogram_count_above(hb, s->threshold) : db->errors;
		double n = hb ? (cn_histogram_sane(hb) ? hb->count[hb->nbuckets - 1] : NAN) : db->requests;
		cn_seq_add_dispersion(s, x, n);
	}
}

/* Ingests the observation into out->next (base reading and, from step 1 on, the step's evidence) and judges every
 * SLO into out->slos. */
static void gather(const struct cn_policy *p, const struct cn_rollout_state *cur, const struct cn_observation *obs,
		   struct cn_tick_result *out, struct tally *t)
{
	struct cn_rollout_state *n = &out->next;
	bool judging = cur->step >= 0 && cur->phase != CN_PHASE_PENDING;
	const struct cn_sample *pc = cur->have_last ? &cur->last.candidate : NULL;
	const struct cn_sample *pb = cur->have_last ? &cur->last.baseline : NULL;
	struct cn_counters dc, db; /* this tick's deltas, added to the step's evidence below */

	cn_counters_reset(&dc);
	cn_counters_reset(&db);
	cn_ingest_sample(pc, obs ? &obs->candidate : NULL, &dc, &n->last.candidate, &t->cst);
	cn_ingest_sample(pb, obs ? &obs->baseline : NULL, &db, &n->last.baseline, &t->bst);
	t->usable = obs && obs->candidate.ok && obs->baseline.ok;
	if (obs && (obs->candidate.ok || obs->baseline.ok)) {
		n->have_last = true;
		n->last.at_ms = obs->at_ms;
	}
	t->nfail = t->ninc = 0;
	t->first_fail = t->first_inc = t->first_unproven = t->first_implausible = -1;
	t->srm = false;
	t->srm_why[0] = '\0';
	if (!judging)
		return;
	/* wall-clock time of the tick (shown with the economics: tokens per second per replica at this share) */
	if (obs && cur->have_last && obs->at_ms > cur->last.at_ms)
		dc.econ.seconds = db.econ.seconds = (double)(obs->at_ms - cur->last.at_ms) / 1000.0;
	cn_counters_add(&n->acc_candidate, &dc, &t->cst);
	cn_counters_add(&n->acc_baseline, &db, &t->bst);

	int nslos = p->nslos < 0 ? 0 : p->nslos > CN_MAX_SLOS ? CN_MAX_SLOS : p->nslos;
	bool seq = p->analysis.judge == CN_JUDGE_SEQUENTIAL;
	double budget = cn_policy_live_budget(p); /* a pre-flight has its own share (canary/preflight.h) */
	if (!(budget > 0 && budget < 1))
		budget = 0.01; /* an unvalidated policy: the loader's default budget */
	double alpha = nslos > 0 ? budget / nslos : budget;
	/* the threshold judge: an SLO's alpha in three: a fresh pair of bounds (candidate, baseline) per step, and
	 * the rollout-long test of late onsets */
	struct cn_judge_ctx ctx = { .min_requests = cn_judge_min_sample(p),
				    .alpha = alpha / (3.0 * (p->nsteps > 0 ? p->nsteps : 1)), .tick = &dc,
				    .alpha_late = alpha / 3 };
	for (int i = 0; i < nslos; i++) {
		struct cn_slo_result *r = &out->slos[i];
		if (CN_METRIC_IS_ECON(p->slos[i].metric)) {
			/* rates (econ.c): each step's evidence is a fresh confidence sequence, so the SLO's alpha is split
			 * over the steps (the threshold judge keeps the third it gives late onsets elsewhere) */
			int nsteps = p->nsteps > 0 ? p->nsteps : 1;
			double a = seq ? alpha / nsteps : 2 * ctx.alpha;
			bool frozen = cur->weight >= 100 && n->ref_baseline.requests > 0;
			cn_judge_slo_econ(&p->slos[i], a, &n->acc_candidate, frozen ? &n->ref_baseline : &n->acc_baseline,
					  &t->cst, frozen ? &(struct cn_series_status){0} : &t->bst, r);
			if (!seq)
				r->plausible = true; /* the threshold judge gates only promotion on proof */
		} else if (seq) {
			cn_judge_slo_seq(&p->slos[i], alpha, &n->seq.slo[i], &dc, &db, &n->acc_baseline, &t->cst, &t->bst,
					 r);
		} else {
			struct cn_seq_stat *s = &n->seq.slo[i];
			threshold_dispersion(&p->slos[i], s, &dc, &db, cur->weight >= 100 ? &n->ref_baseline :
					     &n->acc_baseline, t);
			ctx.disp = cn_seq_dispersion_shift(s);
			ctx.warm = cn_seq_ready(s);
			ctx.late = s;
			if (cur->weight >= 100 && n->ref_baseline.requests > 0)
				/* no baseline traffic at 100%: judge against the baseline frozen from the earlier steps */
				cn_judge_slo(&p->slos[i], &ctx, &n->acc_candidate, &n->ref_baseline, &t->cst,
					     &(struct cn_series_status){0}, r);
			else
				cn_judge_slo(&p->slos[i], &ctx, &n->acc_candidate, &n->acc_baseline, &t->cst, &t->bst, r);
		}
		if (r->verdict == CN_VERDICT_FAIL && t->nfail++ == 0)
			t->first_fail = i;
		if (r->verdict == CN_VERDICT_INCONCLUSIVE && t->ninc++ == 0)
			t->first_inc = i;
		if (!r->promotable && t->first_unproven < 0)
			t->first_unproven = i;
		if (!r->plausible && t->first_implausible < 0)
			t->first_implausible = i;
	}
	out->nslos = nslos;
	if (seq)
		check_srm(p, cur, n, &dc, &db, t);
	/* the economics as shown (status, audit, report): whenever the policy judges them or tokens were counted */
	bool econ = n->acc_candidate.econ.g > 0;
	for (int i = 0; i < nslos && !econ; i++)
		econ = CN_METRIC_IS_ECON(p->slos[i].metric);
	if (econ) {
		bool frozen = cur->weight >= 100 && n->ref_baseline.requests > 0;
		out->econ.have = true;
		cn_econ_view_fill(&n->acc_candidate, frozen ? &n->ref_baseline : &n->acc_baseline,
				  obs ? obs->candidate.features_dropped : 0, &out->econ);
	}
}

/* Why the tick is not conclusive: the first inconclusive SLO, else the unusable reading. */
static void say_inconclusive(const struct cn_policy *p, struct cn_tick_result *out, const struct tally *t)
{
	/* an unusable page makes every slo inconclusive: say that, not the first slo's symptom of it */
	if (t->cst.note && t->ninc == out->nslos)
		say(out, "candidate metrics unusable: %s; all slos inconclusive", t->cst.note);
	else if (t->bst.note && t->ninc == out->nslos)
		say(out, "baseline metrics unusable: %s; all slos inconclusive", t->bst.note);
	else if (t->first_inc >= 0)
		say(out, "slo '%s' inconclusive: %s", p->slos[t->first_inc].name, out->slos[t->first_inc].why);
	else if (t->srm)
		say(out, "%s", t->srm_why);
	else if (t->cst.note)
		say(out, "candidate metrics unusable: %s", t->cst.note);
	else if (t->bst.note)
		say(out, "baseline metrics unusable: %s", t->bst.note);
	else
		say(out, "metrics unusable");
}

static void tick_awaiting(const struct cn_policy *p, const struct cn_rollout_state *cur, int64_t now,
			  struct cn_tick_result *out, bool conclusive, const struct tally *t)
{
	char d1[24], d2[24], w[48];
	int next = cur->step + 1;
	int64_t waited = now - cur->waiting_since_ms;

	fmt_where(p, next, w, sizeof w);
	if (p->approval_timeout_ms > 0 && waited >= p->approval_timeout_ms) {
		switch (p->on_approval_timeout) {
		case CN_FALLBACK_ROLLBACK:
			finish(out, CN_PHASE_ROLLED_BACK, 0, CN_DECIDE_ROLLBACK);
			say(out, "no approval of %s within %s (waited %s): rolling back, candidate to 0%%", w,
			    fmt_dur(p->approval_timeout_ms, d1, sizeof d1), fmt_dur(waited, d2, sizeof d2));
			return;
		case CN_FALLBACK_PAUSE:
			pause_here(out);
			say(out, "no approval of %s within %s (waited %s): paused at %g%%", w,
			    fmt_dur(p->approval_timeout_ms, d1, sizeof d1), fmt_dur(waited, d2, sizeof d2), cur->weight);
			return;
		case CN_FALLBACK_WAIT:
			say(out, "approval of %s overdue (waited %s, timeout %s; policy says wait): holding at %g%%", w,
			    fmt_dur(waited, d1, sizeof d1), fmt_dur(p->approval_timeout_ms, d2, sizeof d2), cur->weight);
			return;
		}
	}
	say(out, "waiting for approval of %s for %s: holding at %g%%", w, fmt_dur(waited, d1, sizeof d1),
	    cur->weight);
	if (!conclusive) {
		say(out, "; ");
		say_inconclusive(p, out, t);
	}
}

static void tick_progressing(const struct cn_policy *p, const struct cn_rollout_state *cur, int64_t now,
			     struct cn_tick_result *out, bool conclusive, const struct tally *t)
{
	char d1[24], d2[24], w[48], w2[48];
	const struct cn_step *s = &p->steps[cur->step];
	int64_t held = now - cur->step_started_ms;
	double reqs = out->next.acc_candidate.requests;
	long long need = (long long)p->analysis.min_requests;

	fmt_where(p, cur->step, w, sizeof w);
	if (!conclusive) {
		say(out, "holding at %s: ", w);
		say_inconclusive(p, out, t);
		return;
	}
	if (held < s->hold_ms || reqs < (double)need) {
		say(out, "holding at %s: %s of %s hold, %.0f of %lld candidate requests, all %d slos pass", w,
		    fmt_dur(held, d1, sizeof d1), fmt_dur(s->hold_ms, d2, sizeof d2), reqs, need, out->nslos);
		return;
	}
	/* the proof the evidence must give depends on what advancing exposes (see the top of this file) */
	bool last = cur->step + 1 >= p->nsteps, seq = p->analysis.judge == CN_JUDGE_SEQUENTIAL;
	bool majority = last || p->steps[cur->step + 1].weight > CN_MAJORITY_WEIGHT;
	if ((seq ? majority : last) && t->first_unproven >= 0) {
		const struct cn_slo_result *r = &out->slos[t->first_unproven];
		say(out, "holding at %s: %s held, %.0f candidate requests, all %d slos pass, but slo '%s' is not yet "
		    "proven within its %s: %s", w, fmt_dur(held, d1, sizeof d1), reqs, out->nslos,
		    p->slos[t->first_unproven].name, seq ? "tolerance" : "limit", r->why);
		return;
	}
	if (!majority && t->first_implausible >= 0) {
		const struct cn_slo_result *r = &out->slos[t->first_implausible];
		say(out, "holding at %s: %s held, %.0f candidate requests, all %d slos pass, but slo '%s' fits its "
		    "tolerance (%gx) better than the baseline so far: %s", w, fmt_dur(held, d1, sizeof d1), reqs,
		    out->nslos, p->slos[t->first_implausible].name, r->tolerance, r->why);
		return;
	}
	if (cur->step + 1 >= p->nsteps) {
		finish(out, CN_PHASE_PROMOTED, 100, CN_DECIDE_PROMOTE);
		say(out, "%s passed (%s held, %.0f candidate requests, all %d slos pass): candidate promoted to 100%%",
		    w, fmt_dur(held, d1, sizeof d1), reqs, out->nslos);
		return;
	}
	int next = cur->step + 1;
	fmt_where(p, next, w2, sizeof w2);
	if (p->steps[next].approval && !cur->approved) {
		await_approval(out, now);
		say(out, "%s passed (%s held, %.0f candidate requests, all %d slos pass); %s requires approval: "
		    "waiting at %g%%", w, fmt_dur(held, d1, sizeof d1), reqs, out->nslos, w2, cur->weight);
		return;
	}
	apply_step(p, out, next, now, CN_DECIDE_ADVANCE);
	say(out, "%s passed (%s held, %.0f candidate requests, all %d slos pass): %s applied, hold %s", w,
	    fmt_dur(held, d1, sizeof d1), reqs, out->nslos, w2, fmt_dur(p->steps[next].hold_ms, d2, sizeof d2));
}

void cn_tick(const struct cn_policy *p, const struct cn_rollout_state *cur, const struct cn_observation *obs,
	     int64_t now_ms, struct cn_tick_result *out)
{
	char d1[24], d2[24], w[48];
	struct cn_rollout_state *n = &out->next;
	struct tally t;

	CN_BUG_ON(!p || !cur || !out);
	CN_BUG_ON(overlaps(cur, out));
	CN_BUG_ON(p->nslos < 0 || p->nslos > CN_MAX_SLOS || p->nsteps < 0 || p->nsteps > CN_MAX_STEPS);
	result_init(out, cur);
	if (cn_phase_is_terminal(cur->phase)) {
		say(out, "rollout is %s: nothing to do", cn_phase_name(cur->phase));
		return;
	}
	if (cur->last_tick_ms > 0 && now_ms < cur->last_tick_ms) {
		say(out, "clock went backwards: now is %s before the last tick; holding at %g%%, nothing changed",
		    fmt_dur(cur->last_tick_ms - now_ms, d1, sizeof d1), cur->weight);
		return;
	}
	if (p->nsteps < 1 || p->nsteps > CN_MAX_STEPS || cur->step < -1 || cur->step >= p->nsteps) {
		finish(out, CN_PHASE_FAILED, 0, CN_DECIDE_ROLLBACK);
		say(out, "policy '%s' has %d steps but the rollout is at step index %d: cannot continue, candidate to 0%%",
		    p->name, p->nsteps, cur->step);
		return;
	}

	gather(p, cur, obs, out, &t);
	fmt_at(p, cur->step, w, sizeof w);

	if (cur->phase == CN_PHASE_PAUSED) {
		/* report the verdicts, keep everything else */
		*n = *cur;
		say(out, "paused (was %s %s): holding until an operator resumes, aborts or promotes",
		    cn_phase_name(cur->paused_from), w);
		if (t.first_fail >= 0)
			say(out, "; slo '%s' failing: %s", p->slos[t.first_fail].name, out->slos[t.first_fail].why);
		return;
	}
	n->last_tick_ms = now_ms;

	if (t.nfail > 0) {
		int need = p->analysis.failing_ticks < 1 ? 1 : p->analysis.failing_ticks;
		if (p->analysis.judge == CN_JUDGE_SEQUENTIAL)
			need = 1; /* crossing the boundary is the confirmation (see the top of this file) */
		const struct cn_slo_result *r = &out->slos[t.first_fail];
		n->failing_ticks = cur->failing_ticks + 1;
		n->inconclusive_since_ms = 0;
		if (n->failing_ticks < need) {
			say(out, "slo '%s' failing (%d of %d ticks to confirm): %s; holding at %g%%",
			    p->slos[t.first_fail].name, n->failing_ticks, need, r->why, cur->weight);
			return;
		}
		char conf[48];
		if (p->analysis.judge == CN_JUDGE_SEQUENTIAL)
			snprintf(conf, sizeof conf, "by the sequential test");
		else
			snprintf(conf, sizeof conf, "(%d failing tick%s)", n->failing_ticks,
				 n->failing_ticks == 1 ? "" : "s");
		if (p->on_failure == CN_FALLBACK_ROLLBACK) {
			finish(out, CN_PHASE_ROLLED_BACK, 0, CN_DECIDE_ROLLBACK);
			say(out, "regression confirmed %s %s: slo '%s': %s; candidate to 0%%", conf, w,
			    p->slos[t.first_fail].name, r->why);
		} else {
			pause_here(out);
			say(out, "regression confirmed %s %s: slo '%s': %s; paused for a person", conf, w,
			    p->slos[t.first_fail].name, r->why);
		}
		return;
	}

	bool conclusive = t.usable && t.ninc == 0 && !t.srm;
	if (conclusive) {
		n->failing_ticks = 0;
		n->inconclusive_since_ms = 0;
	} else {
		if (n->inconclusive_since_ms == 0)
			n->inconclusive_since_ms = now_ms;
		int64_t lasted = now_ms - n->inconclusive_since_ms;
		int64_t limit = p->analysis.inconclusive_timeout_ms;
		if (limit > 0 && lasted >= limit && p->analysis.on_inconclusive != CN_FALLBACK_WAIT) {
			if (p->analysis.on_inconclusive == CN_FALLBACK_ROLLBACK)
				finish(out, CN_PHASE_ROLLED_BACK, 0, CN_DECIDE_ROLLBACK);
			else
				pause_here(out);
			say(out, "inconclusive for %s (limit %s) %s, %s: ", fmt_dur(lasted, d1, sizeof d1),
			    fmt_dur(limit, d2, sizeof d2), w,
			    out->decision == CN_DECIDE_ROLLBACK ? "rolling back, candidate to 0%" : "paused for a person");
			say_inconclusive(p, out, &t);
			return;
		}
	}

	switch (cur->phase) {
	case CN_PHASE_PENDING:
		if (!t.usable) {
			say(out, "waiting for usable metrics before the first step: ");
			say_inconclusive(p, out, &t);
			return;
		}
		fmt_where(p, 0, w, sizeof w);
		if (p->steps[0].approval && !cur->approved) {
			await_approval(out, now_ms);
			say(out, "%s requires approval: waiting at 0%%", w);
			return;
		}
		apply_step(p, out, 0, now_ms, CN_DECIDE_START);
		say(out, "%s applied, hold %s", w, fmt_dur(p->steps[0].hold_ms, d1, sizeof d1));
		return;
	case CN_PHASE_AWAITING_APPROVAL:
		tick_awaiting(p, cur, now_ms, out, conclusive, &t);
		return;
	case CN_PHASE_PROGRESSING:
		if (cur->step < 0) {
			finish(out, CN_PHASE_FAILED, 0, CN_DECIDE_ROLLBACK);
			say(out, "rollout is progressing before its first step: inconsistent state, candidate to 0%%");
			return;
		}
		tick_progressing(p, cur, now_ms, out, conclusive, &t);
		return;
	default:
		say(out, "rollout is %s: nothing to do", cn_phase_name(cur->phase));
		return;
	}
}

int cn_command(const struct cn_policy *p, const struct cn_rollout_state *cur, enum cn_command_kind cmd,
	       int64_t now_ms, struct cn_tick_result *out, struct cn_err *err)
{
	char w[48];
	CN_BUG_ON(!p || !cur || !out || !err);
	CN_BUG_ON(overlaps(cur, out));
	CN_BUG_ON(p->nslos < 0 || p->nslos > CN_MAX_SLOS || p->nsteps < 0 || p->nsteps > CN_MAX_STEPS);
	const char *ph = cn_phase_name(cur->phase);

	if (cn_phase_is_terminal(cur->phase))
		return cn_fail(err, CN_EINPUT, "rollout is %s: it accepts no more commands", ph);
	switch (cmd) {
	case CN_CMD_APPROVE:
		if (cur->phase == CN_PHASE_PAUSED && cur->paused_from == CN_PHASE_AWAITING_APPROVAL)
			return cn_fail(err, CN_EINPUT, "rollout is paused while awaiting approval: resume it, then approve");
		if (cur->phase != CN_PHASE_AWAITING_APPROVAL)
			return cn_fail(err, CN_EINPUT, "rollout is %s, not awaiting approval", ph);
		break;
	case CN_CMD_PAUSE:
		if (cur->phase == CN_PHASE_PAUSED)
			return cn_fail(err, CN_EINPUT, "rollout is already paused");
		break;
	case CN_CMD_RESUME:
		if (cur->phase != CN_PHASE_PAUSED)
			return cn_fail(err, CN_EINPUT, "rollout is %s, not paused", ph);
		break;
	case CN_CMD_ABORT:
	case CN_CMD_PROMOTE_FULL:
		break;
	default:
		return cn_fail(err, CN_EINPUT, "unknown command '%d'", (int)cmd);
	}

	struct cn_rollout_state *n = &out->next;
	result_init(out, cur);
	fmt_at(p, cur->step, w, sizeof w);
	switch (cmd) {
	case CN_CMD_APPROVE:
		n->approved = true;
		n->phase = cur->step < 0 ? CN_PHASE_PENDING : CN_PHASE_PROGRESSING;
		n->waiting_since_ms = 0;
		out->decision = CN_DECIDE_RESUME;
		fmt_where(p, cur->step + 1, w, sizeof w);
		say(out, "%s approved: applied at the next tick if every slo still passes", w);
		break;
	case CN_CMD_PAUSE:
		pause_here(out);
		say(out, "paused by an operator %s", w);
		break;
	case CN_CMD_RESUME:
		n->phase = cur->paused_from;
		if (n->phase == CN_PHASE_PAUSED || cn_phase_is_terminal(n->phase))
			n->phase = cur->step < 0 ? CN_PHASE_PENDING : CN_PHASE_PROGRESSING;
		n->failing_ticks = 0;
		n->inconclusive_since_ms = 0;
		cn_seq_init(&n->seq.srm, NAN); /* the operator has looked: the sample ratio is checked anew */
		if (n->phase == CN_PHASE_AWAITING_APPROVAL)
			n->waiting_since_ms = now_ms;
		out->decision = CN_DECIDE_RESUME;
		say(out, "resumed by an operator: %s %s", cn_phase_name(n->phase), w);
		break;
	case CN_CMD_ABORT:
		finish(out, CN_PHASE_ABORTED, 0, CN_DECIDE_ABORT);
		say(out, "aborted by an operator %s: candidate to 0%%", w);
		break;
	case CN_CMD_PROMOTE_FULL:
		finish(out, CN_PHASE_PROMOTED, 100, CN_DECIDE_PROMOTE);
		say(out, "promoted to 100%% by an operator %s, skipping the remaining steps and analysis", w);
		break;
	}
	return 0;
}
