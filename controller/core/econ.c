/* Unit economics as SLOs: tokens per busy second and cost per 1,000 generation tokens, candidate against baseline.
 * These are rates, not bad-event counts, so they have their own judge (both analysis.judge kinds call it).
 *
 * Why busy seconds and not wall-clock seconds: at a 1% step the candidate's replicas idle 99% of the time, so
 * tokens per wall-clock second (and cost per token from hourly prices times wall-clock time) measure the traffic
 * share, not the release. The time the slot's servers spent on requests (the latency histogram's _sum) grows with
 * the work done, so tokens per busy second and cost = price of a replica-hour x busy hours / tokens compare the two
 * releases at any share, and at the 100% step against the baseline frozen from the earlier steps. With batching a
 * replica runs several requests at once and busy seconds overcount its GPU time by that factor: the ratio is right
 * when both slots batch alike; absolute figures (an SLO's `max`) are then upper bounds.
 *
 * The estimate per arm is the ratio estimator r = sum b_k / sum g_k over ticks k (b busy seconds, g generation
 * tokens), so traffic that swings between ticks weighs each tick by its tokens. Its variance comes from the ticks'
 * residuals (b_k - r g_k), the delta method: var(r) = sum (b_k - r g_k)^2 / (sum g_k)^2 x t / (t - 1), and
 * var(ln r) = var(r) / r^2. The comparison is D = ln(candidate) - ln(baseline) with var = var_c + var_b.
 *
 * Looking at D at every tick is a repeated test, so the bound is a confidence sequence: the normal-mixture boundary
 * (Robbins 1970; Howard, Ramdas, McAuliffe, Sekhon 2021, eq. (14)) for a sum with intrinsic time V = t sigma^2 and
 * mixture scale rho = m sigma^2 gives, for the mean, |D - delta| <= sqrt(var (1 + m/t) (ln(1 + t/m) + 2 ln(1/alpha)))
 * at every t at once with probability >= 1 - alpha. The variance is plugged in, not known, so the bound is
 * approximate: CN_ECON_MIN_TICKS ticks before any verdict, and tests/unit/test_core_econ.c measures the A/A false
 * rollback rate of whole rollouts against the budget. alpha is the SLO's share of the false-rollback budget, split
 * by the caller over the steps (each step's evidence is a fresh sequence); an SLO with both max_increase and max
 * splits it again between the two. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "canary/bug.h"
#include "canary/judge.h"

void cn_econ_estimate(enum cn_slo_metric metric, const struct cn_counters *c, struct cn_econ_est *out)
{
	const struct cn_econ_acc *e = &c->econ;
	CN_BUG_ON(!CN_METRIC_IS_ECON(metric));
	memset(out, 0, sizeof *out);
	out->value = out->ln = out->var_ln = NAN;
	out->ticks = e->ticks;
	out->tokens = e->g;
	out->busy = e->b;
	bool cost = metric == CN_METRIC_COST_PER_1K;
	if (cost && isfinite(c->cost.per_1k_tokens) && c->cost.per_1k_tokens > 0) {
		/* a fixed price: known exactly, whatever the traffic */
		out->value = c->cost.per_1k_tokens;
		out->ln = log(out->value);
		out->var_ln = 0;
		out->ok = true;
		return;
	}
	if (cost && !(isfinite(c->cost.per_hour) && c->cost.per_hour > 0)) {
		snprintf(out->why, sizeof out->why, "no cost configured for the slot");
		return;
	}
	if (!(e->g > 0)) {
		snprintf(out->why, sizeof out->why, "no generation tokens counted in this step");
		return;
	}
	if (!(e->b > 0)) {
		snprintf(out->why, sizeof out->why, "no busy time (latency _sum) counted in this step");
		return;
	}
	if (e->ticks < CN_ECON_MIN_TICKS) {
		snprintf(out->why, sizeof out->why, "%.0f ticks with tokens in this step, need %d", e->ticks,
			 CN_ECON_MIN_TICKS);
		return;
	}
	double r = e->b / e->g;
	double ss = e->bb - 2 * r * e->gb + r * r * e->gg;
	if (!(ss > 0))
		ss = 0; /* rounding: a perfectly steady arm */
	double var_r = ss / (e->g * e->g) * e->ticks / (e->ticks - 1);
	out->var_ln = var_r / (r * r);
	if (cost) {
		out->value = c->cost.per_hour / 3600 * r * 1000;
	} else {
		out->value = 1 / r;
	}
	out->ln = log(out->value);
	out->ok = isfinite(out->ln) && isfinite(out->var_ln);
	if (!out->ok)
		snprintf(out->why, sizeof out->why, "not computable from the counters");
}

double cn_econ_halfwidth(double var, double t, double alpha)
{
	if (!(var >= 0) || !(t > 0) || !(alpha > 0 && alpha < 1))
		return NAN;
	double m = CN_ECON_MIX_TICKS;
	return sqrt(var * (1 + m / t) * (log(1 + t / m) + 2 * log(1 / alpha)));
}

/* 4 significant digits, no currency (the service file's prices are in whatever unit it uses). */
static const char *fmt_econ(enum cn_slo_metric m, double v, char *buf, size_t size)
{
	(void)m;
	if (isnan(v))
		snprintf(buf, size, "n/a");
	else
		snprintf(buf, size, "%.4g", v);
	return buf;
}

static void econ_fields(struct cn_slo_result *out)
{
	out->verdict = CN_VERDICT_INCONCLUSIVE;
	out->candidate = out->baseline = out->objective = NAN;
	out->statistic = out->boundary = out->ratio = out->ratio_upper = NAN;
	out->tolerance = out->threshold = out->dispersion = NAN;
	out->promotable = false;
	out->plausible = false;
}

void cn_judge_slo_econ(const struct cn_slo *slo, double alpha, const struct cn_counters *cand,
		       const struct cn_counters *base, const struct cn_series_status *cst,
		       const struct cn_series_status *bst, struct cn_slo_result *out)
{
	char label[32], cv[24], bv[24], lo_s[16], hi_s[16], lim[24], conf[16];
	CN_BUG_ON(!slo || !cand || !base || !cst || !bst || !out || !CN_METRIC_IS_ECON(slo->metric));
	CN_BUG_ON(!(alpha > 0 && alpha < 1));
	const unsigned mask = CN_SERIES_GEN_TOKENS | CN_SERIES_LATENCY;
	bool cost = slo->metric == CN_METRIC_COST_PER_1K;

	cn_slo_label(slo, label, sizeof label);
	econ_fields(out);
	out->n_candidate = cand->requests;
	out->n_baseline = base->requests;
	struct cn_econ_est c, b;
	cn_econ_estimate(slo->metric, cand, &c);
	cn_econ_estimate(slo->metric, base, &b);
	out->candidate = c.ok ? c.value : NAN;
	out->baseline = b.ok ? b.value : NAN;
	if (cn_series_trouble(cst, mask, "candidate", out->why, sizeof out->why) ||
	    cn_series_trouble(bst, mask, "baseline", out->why, sizeof out->why))
		return;
	if (!c.ok || !b.ok) {
		snprintf(out->why, sizeof out->why, "%s: %s %s", label, !c.ok ? "candidate:" : "baseline:",
			 !c.ok ? c.why : b.why);
		return;
	}

	bool rel = cost ? isfinite(slo->max_increase) : isfinite(slo->min_ratio);
	bool abs = cost && isfinite(slo->max);
	double a = rel && abs ? alpha / 2 : alpha;
	snprintf(conf, sizeof conf, "%.4g%%", 100 * (1 - a));
	/* the ticks that drive the mixture: the arms' that are estimated (a fixed price has no noise) */
	double t = c.var_ln > 0 && b.var_ln > 0 ? fmin(c.ticks, b.ticks) : c.var_ln > 0 ? c.ticks : b.ticks;
	if (!(t >= 1))
		t = 1;
	double d = c.ln - b.ln, h = cn_econ_halfwidth(c.var_ln + b.var_ln, t, a);
	double ratio = exp(d), lo = exp(d - h), hi = exp(d + h);
	out->ratio = ratio;
	out->ratio_upper = hi;
	if (cost) {
		double hc = cn_econ_halfwidth(c.var_ln, c.ticks > 0 ? c.ticks : 1, a);
		double c_lo = exp(c.ln - hc), c_hi = exp(c.ln + hc);
		out->tolerance = rel ? slo->max_increase : NAN;
		out->objective = rel ? slo->max_increase * b.value : NAN;
		if (abs && !(out->objective <= slo->max))
			out->objective = slo->max;
		bool fail_rel = rel && lo > slo->max_increase;
		bool fail_abs = abs && c_lo > slo->max;
		out->promotable = (!rel || hi <= slo->max_increase) && (!abs || c_hi <= slo->max);
		out->plausible = (!rel || ratio <= slo->max_increase) && (!abs || c.value <= slo->max);
		if (fail_abs && !fail_rel) {
			out->verdict = CN_VERDICT_FAIL;
			snprintf(out->why, sizeof out->why, "%s %s vs baseline %s: over the max %s, at least %s at %s",
				 label, fmt_econ(slo->metric, c.value, cv, sizeof cv),
				 fmt_econ(slo->metric, b.value, bv, sizeof bv), fmt_econ(slo->metric, slo->max, lim, sizeof lim),
				 fmt_econ(slo->metric, c_lo, lo_s, sizeof lo_s), conf);
			return;
		}
		snprintf(lim, sizeof lim, rel ? "%gx" : "n/a", slo->max_increase);
		out->verdict = fail_rel ? CN_VERDICT_FAIL : CN_VERDICT_PASS;
		snprintf(out->why, sizeof out->why, "%s %s vs baseline %s (%.3gx, %.3gx..%.3gx at %s; limit %s%s%s, %.0f "
			 "tokens): %s", label, fmt_econ(slo->metric, c.value, cv, sizeof cv),
			 fmt_econ(slo->metric, b.value, bv, sizeof bv), ratio, lo, hi, conf, lim, abs ? ", max " : "",
			 abs ? fmt_econ(slo->metric, slo->max, hi_s, sizeof hi_s) : "", c.tokens,
			 fail_rel ? "costlier than baseline" : "within");
		return;
	}
	out->tolerance = slo->min_ratio;
	out->objective = slo->min_ratio * b.value;
	out->promotable = lo >= slo->min_ratio;
	out->plausible = ratio >= slo->min_ratio;
	out->verdict = hi < slo->min_ratio ? CN_VERDICT_FAIL : CN_VERDICT_PASS;
	snprintf(out->why, sizeof out->why, "%s %s vs baseline %s (%.3gx, %.3gx..%.3gx at %s; need >= %gx, %.0f tokens): "
		 "%s", label, fmt_econ(slo->metric, c.value, cv, sizeof cv), fmt_econ(slo->metric, b.value, bv, sizeof bv),
		 ratio, lo, hi, conf, slo->min_ratio, c.tokens,
		 out->verdict == CN_VERDICT_FAIL ? "slower than baseline" : "within");
}

/* The cost of 1,000 tokens of a feature: its busy seconds at the slot's replica price, or the fixed price. */
static double feature_cost(const struct cn_cost *c, double tokens, double busy)
{
	if (isfinite(c->per_1k_tokens) && c->per_1k_tokens > 0)
		return c->per_1k_tokens;
	if (!(isfinite(c->per_hour) && c->per_hour > 0) || !(tokens > 0) || !(busy >= 0))
		return NAN;
	return c->per_hour / 3600 * busy / tokens * 1000;
}

void cn_econ_view_fill(const struct cn_counters *cand, const struct cn_counters *base, int dropped,
		       struct cn_econ_view *out)
{
	const struct cn_counters *arm[2] = { cand, base };
	bool have = out->have;
	memset(out, 0, sizeof *out);
	out->have = have;
	out->dropped = dropped;
	for (int a = 0; a < 2; a++) {
		const struct cn_counters *c = arm[a];
		out->tps[a] = c->econ.b > 0 && c->econ.g > 0 ? c->econ.g / c->econ.b : NAN;
		out->cost_1k[a] = feature_cost(&c->cost, c->econ.g, c->econ.b);
		out->tokens[a] = c->econ.g;
		out->prompt_tokens[a] = c->econ.prompt;
		out->slot_cost_per_hour[a] = isfinite(c->cost.per_hour) ? c->cost.per_hour * c->cost.replicas : NAN;
	}
	/* features by name, the candidate's first, then the baseline's others, up to the cap */
	for (int a = 0; a < 2; a++) {
		const struct cn_counters *c = arm[a];
		for (int i = 0; i < c->nfeatures && i < CN_MAX_FEATURES; i++) {
			const struct cn_feature *fi = &c->features[i];
			struct cn_econ_feature *f = NULL;
			for (int j = 0; j < out->nfeatures && !f; j++)
				if (strcmp(out->f[j].name, fi->name) == 0)
					f = &out->f[j];
			if (!f) {
				if (out->nfeatures >= CN_MAX_FEATURES)
					continue;
				f = &out->f[out->nfeatures++];
				snprintf(f->name, sizeof f->name, "%s", fi->name);
				f->tokens[0] = f->tokens[1] = f->latency_mean[0] = f->latency_mean[1] = NAN;
				f->cost_1k[0] = f->cost_1k[1] = NAN;
			}
			f->tokens[a] = fi->gen_tokens;
			f->latency_mean[a] = fi->requests > 0 ? fi->latency_sum / fi->requests : NAN;
			f->cost_1k[a] = feature_cost(&c->cost, fi->gen_tokens, fi->latency_sum);
		}
	}
}

/* "0.0276", "n/a" */
static const char *fmt_num(double v, const char *unit, char *buf, size_t size)
{
	if (isfinite(v))
		snprintf(buf, size, "%.3g%s", v, unit);
	else
		snprintf(buf, size, "n/a");
	return buf;
}

const char *cn_econ_features_line(const struct cn_econ_view *v, char *buf, size_t size)
{
	char c0[16], c1[16], l0[16], l1[16], r[24];
	size_t used = 0;
	buf[0] = '\0';
	for (int i = 0; i < v->nfeatures && used + 1 < size; i++) {
		const struct cn_econ_feature *f = &v->f[i];
		double ratio = f->cost_1k[0] / f->cost_1k[1];
		snprintf(r, sizeof r, isfinite(ratio) ? " (%.2fx)" : "", ratio);
		int n = snprintf(buf + used, size - used, "%s%s: cost/1k %s vs %s%s, latency %s vs %s, %.0f tokens",
				 i ? "; " : "", f->name, fmt_num(f->cost_1k[0], "", c0, sizeof c0),
				 fmt_num(f->cost_1k[1], "", c1, sizeof c1), r, fmt_num(f->latency_mean[0], "s", l0, sizeof l0),
				 fmt_num(f->latency_mean[1], "s", l1, sizeof l1), isfinite(f->tokens[0]) ? f->tokens[0] : 0);
		if (n < 0)
			break;
		used += (size_t)n < size - used ? (size_t)n : size - used - 1;
	}
	if (v->dropped > 0 && used + 1 < size)
		snprintf(buf + used, size - used, "; %d more feature%s in 'other' (at most %d shown)", v->dropped,
			 v->dropped == 1 ? "" : "s", CN_MAX_FEATURES - 1);
	return buf;
}
