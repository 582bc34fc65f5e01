/* The judges: turns each tick's cumulative readings into evidence for the step, and judges one SLO on that
 * evidence with a verdict, the numbers behind it, and a sentence a person understands. The threshold judge compares
 * the step's values with the SLO's limits; the sequential judge runs the test of seqtest.c on bad-event counts. */
#include "canary/judge.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "canary/bug.h"

int64_t cn_judge_min_sample(const struct cn_policy *p)
{
	int64_t m = p->analysis.min_requests;
	return m < 1 ? 1 : m;
}

static const char *series_name(unsigned bit)
{
	switch (bit) {
	case CN_SERIES_REQUESTS: return "requests counter";
	case CN_SERIES_ERRORS: return "errors counter";
	case CN_SERIES_LATENCY: return "latency histogram";
	case CN_SERIES_TTFT: return "ttft histogram";
	case CN_SERIES_ITL: return "itl histogram";
	case CN_SERIES_GEN_TOKENS: return "generation tokens counter";
	case CN_SERIES_PROMPT_TOKENS: return "prompt tokens counter";
	}
	return "series";
}

static void ingest_counter(double prev, double cur, unsigned bit, double *acc, double *base,
			   struct cn_series_status *st)
{
	double d;
	*base = isfinite(cur) && cur >= 0 ? cur : prev;
	switch (cn_counter_delta(cur, prev, &d)) {
	case CN_DELTA_OK:
		break;
	case CN_DELTA_RESET:
		st->reset |= bit;
		break;
	case CN_DELTA_MISSING:
		st->missing |= bit;
		return;
	}
	if (acc)
		*acc += d;
}

static void ingest_histogram(const struct cn_histogram *prev, const struct cn_histogram *cur, unsigned bit,
			     struct cn_histogram *acc, struct cn_histogram *base, struct cn_series_status *st)
{
	struct cn_histogram d;
	const struct cn_histogram *keep = cn_histogram_sane(cur) ? cur : prev;
	enum cn_delta r = cn_histogram_delta(cur, prev, &d);
	*base = *keep;
	if (r == CN_DELTA_MISSING) {
		st->missing |= bit;
		return;
	}
	if (r == CN_DELTA_RESET)
		st->reset |= bit;
	if (acc && !cn_histogram_accumulate(acc, &d))
		st->reset |= bit; /* bounds changed within the step: earlier evidence dropped */
}

/* The entry of feature `name` in acc's breakdown, a new zeroed one if there is room; NULL when full. */
static struct cn_feature *feature_entry(struct cn_counters *acc, const char *name)
{
	for (int j = 0; j < acc->nfeatures; j++)
		if (strcmp(acc->features[j].name, name) == 0)
			return &acc->features[j];
	if (acc->nfeatures >= CN_MAX_FEATURES)
		return NULL;
	struct cn_feature *fa = &acc->features[acc->nfeatures++];
	memset(fa, 0, sizeof *fa);
	snprintf(fa->name, sizeof fa->name, "%s", name);
	return fa;
}

/* Per-feature deltas: a feature counts from its second reading (matched by name), like any series. */
static void ingest_features(const struct cn_sample *prev, const struct cn_sample *cur, struct cn_counters *acc)
{
	for (int i = 0; i < cur->nfeatures && i < CN_MAX_FEATURES; i++) {
		const struct cn_feature *fc = &cur->features[i], *fp = NULL;
		for (int j = 0; j < prev->nfeatures && j < CN_MAX_FEATURES && !fp; j++)
			if (strcmp(prev->features[j].name, fc->name) == 0)
				fp = &prev->features[j];
		if (!fp || !fc->name[0])
			continue;
		double dg, dn, ds;
		if (cn_counter_delta(fc->gen_tokens, fp->gen_tokens, &dg) == CN_DELTA_MISSING)
			dg = NAN;
		if (cn_counter_delta(fc->requests, fp->requests, &dn) == CN_DELTA_MISSING)
			dn = NAN;
		ds = fc->latency_sum >= fp->latency_sum ? fc->latency_sum - fp->latency_sum : fc->latency_sum;
		struct cn_feature *fa = feature_entry(acc, fc->name);
		if (!fa)
			continue;
		if (isfinite(dg))
			fa->gen_tokens += dg;
		if (isfinite(dn))
			fa->requests += dn;
		if (isfinite(ds) && ds >= 0)
			fa->latency_sum += ds;
	}
}

static const struct cn_sample *usable(const struct cn_sample *s)
{
	return s && s->ok ? s : NULL;
}

void cn_ingest_sample(const struct cn_sample *prev, const struct cn_sample *cur, struct cn_counters *acc,
		      struct cn_sample *base_out, struct cn_series_status *st)
{
	const unsigned all = (CN_SERIES_LAST << 1) - 1;
	st->missing = 0;
	st->reset = 0;
	st->note = NULL;
	prev = usable(prev);
	if (!usable(cur)) {
		st->missing = all;
		st->note = cur && cur->why[0] ? cur->why : "no reading";
		if (prev) {
			*base_out = *prev;
		} else {
			memset(base_out, 0, sizeof *base_out);
			base_out->ok = false;
			base_out->requests = NAN;
			base_out->errors = NAN;
			base_out->gen_tokens = base_out->prompt_tokens = NAN;
			base_out->latency.sum = base_out->ttft.sum = base_out->itl.sum = NAN;
		}
		return;
	}
	base_out->ok = true;
	base_out->why[0] = '\0';
	if (!prev) {
		/* a first reading is only a base: nothing to subtract it from */
		*base_out = *cur;
		st->missing = all;
		st->note = "first reading, nothing to compare with yet";
		return;
	}
	ingest_counter(prev->requests, cur->requests, CN_SERIES_REQUESTS, acc ? &acc->requests : NULL,
		       &base_out->requests, st);
	ingest_counter(prev->errors, cur->errors, CN_SERIES_ERRORS, acc ? &acc->errors : NULL, &base_out->errors, st);
	ingest_histogram(&prev->latency, &cur->latency, CN_SERIES_LATENCY, acc ? &acc->latency : NULL,
			 &base_out->latency, st);
	ingest_histogram(&prev->ttft, &cur->ttft, CN_SERIES_TTFT, acc ? &acc->ttft : NULL, &base_out->ttft, st);
	ingest_histogram(&prev->itl, &cur->itl, CN_SERIES_ITL, acc ? &acc->itl : NULL, &base_out->itl, st);
	/* unit economics: this tick's generation tokens and busy seconds (the latency histogram's _sum), when both
	 * are clean, enter the ratio estimator as one tick */
	double g = 0, p = 0;
	ingest_counter(prev->gen_tokens, cur->gen_tokens, CN_SERIES_GEN_TOKENS, &g, &base_out->gen_tokens, st);
	ingest_counter(prev->prompt_tokens, cur->prompt_tokens, CN_SERIES_PROMPT_TOKENS, &p, &base_out->prompt_tokens,
		       st);
	base_out->cost = cur->cost;
	base_out->nfeatures = cur->nfeatures;
	base_out->features_dropped = cur->features_dropped;
	memcpy(base_out->features, cur->features, sizeof base_out->features);
	if (!acc)
		return;
	acc->cost = cur->cost;
	ingest_features(prev, cur, acc);
	unsigned econ = CN_SERIES_GEN_TOKENS | CN_SERIES_LATENCY;
	double b = cur->latency.sum - prev->latency.sum;
	if ((st->reset & CN_SERIES_LATENCY) && cn_histogram_sane(&cur->latency))
		b = cur->latency.sum; /* counted from the reset, as the buckets are */
	if ((st->missing | st->reset) & econ || !(isfinite(b) && b >= 0 && g > 0))
		return; /* no tokens (no traffic, or no counter) or no _sum: the tick adds nothing */
	acc->econ.ticks += 1;
	acc->econ.g += g;
	acc->econ.b += b;
	acc->econ.gg += g * g;
	acc->econ.bb += b * b;
	acc->econ.gb += g * b;
	if (!(st->missing & CN_SERIES_PROMPT_TOKENS) && isfinite(p))
		acc->econ.prompt += p;
}

/* Series an SLO's value depends on: the requests counter always (it is the sample size). */
static unsigned slo_series(const struct cn_slo *slo)
{
	switch (slo->metric) {
	case CN_METRIC_ERROR_RATE: return CN_SERIES_REQUESTS | CN_SERIES_ERRORS;
	case CN_METRIC_LATENCY: return CN_SERIES_REQUESTS | CN_SERIES_LATENCY;
	case CN_METRIC_TTFT: return CN_SERIES_REQUESTS | CN_SERIES_TTFT;
	case CN_METRIC_ITL: return CN_SERIES_REQUESTS | CN_SERIES_ITL;
	case CN_METRIC_TOKENS_PER_SECOND:
	case CN_METRIC_COST_PER_1K: return CN_SERIES_GEN_TOKENS | CN_SERIES_LATENCY;
	}
	return CN_SERIES_REQUESTS;
}

static const struct cn_histogram *slo_histogram(const struct cn_slo *slo, const struct cn_counters *c)
{
	switch (slo->metric) {
	case CN_METRIC_LATENCY: return &c->latency;
	case CN_METRIC_TTFT: return &c->ttft;
	case CN_METRIC_ITL: return &c->itl;
	case CN_METRIC_ERROR_RATE:
	case CN_METRIC_TOKENS_PER_SECOND:
	case CN_METRIC_COST_PER_1K: break;
	}
	return NULL;
}

static double slo_value(const struct cn_slo *slo, const struct cn_counters *c)
{
	if (slo->metric == CN_METRIC_ERROR_RATE)
		return c->requests > 0 ? c->errors / c->requests : NAN;
	return cn_histogram_quantile(slo->quantile, slo_histogram(slo, c));
}

const char *cn_slo_label(const struct cn_slo *slo, char *buf, size_t size)
{
	static const char *const what[] = {
		[CN_METRIC_ERROR_RATE] = "error rate",
		[CN_METRIC_LATENCY] = "latency",
		[CN_METRIC_TTFT] = "ttft",
		[CN_METRIC_ITL] = "itl",
	};
	if (slo->metric == CN_METRIC_ERROR_RATE)
		snprintf(buf, size, "error rate");
	else if (slo->metric == CN_METRIC_TOKENS_PER_SECOND)
		snprintf(buf, size, "tokens/s");
	else if (slo->metric == CN_METRIC_COST_PER_1K)
		snprintf(buf, size, "cost/1k tokens");
	else
		snprintf(buf, size, "p%g %s", slo->quantile * 100, what[slo->metric]);
	return buf;
}

/* Formats a value of the SLO's unit: "0.5%", "0.91s", "25ms", "n/a". */
static const char *fmt_value(const struct cn_slo *slo, double v, char *buf, size_t size)
{
	if (isnan(v))
		snprintf(buf, size, "n/a");
	else if (slo->metric == CN_METRIC_ERROR_RATE)
		snprintf(buf, size, "%.3g%%", v * 100);
	else if (fabs(v) >= 0.1 || isinf(v))
		snprintf(buf, size, "%.2fs", v);
	else
		snprintf(buf, size, "%.3gms", v * 1000);
	return buf;
}

bool cn_series_trouble(const struct cn_series_status *st, unsigned mask, const char *variant, char *buf,
			   size_t size)
{
	if (st->note) {
		snprintf(buf, size, "%s metrics unusable: %s", variant, st->note);
		return true;
	}
	for (unsigned bit = 1; bit <= CN_SERIES_LAST; bit <<= 1) {
		if (!(mask & bit))
			continue;
		if (st->reset & bit) {
			snprintf(buf, size,
				 "%s %s went down (server restart?): counted from its new value, judged again next tick",
				 variant, series_name(bit));
			return true;
		}
		if (st->missing & bit) {
			snprintf(buf, size, "%s %s missing or unusable this tick", variant, series_name(bit));
			return true;
		}
	}
	return false;
}

static void seq_fields_clear(struct cn_slo_result *out)
{
	out->statistic = out->boundary = out->ratio = out->ratio_upper = NAN;
	out->tolerance = out->threshold = out->dispersion = NAN;
	out->promotable = true;
	out->plausible = true;
}

/* "99.9%" for a bound at alpha 0.001 */
static const char *fmt_conf(double alpha, char *buf, size_t size)
{
	snprintf(buf, size, "%.4g%%", 100 * (1 - alpha));
	return buf;
}

/* The q-quantile's anytime upper bound from a histogram of n observations: the value that at most k of them
 * exceed, k the most that still rejects "a share 1 - q or more lies above it". INFINITY when that value lies in
 * the +Inf bucket (the histogram cannot bound it), NAN while n is too small for any bound. */
static double quantile_upper(double q, const struct cn_histogram *h, double alpha, double d)
{
	if (!cn_histogram_sane(h) || !(q > 0 && q < 1))
		return NAN;
	double n = h->count[h->nbuckets - 1];
	double k = cn_rate_count_below(n, 1 - q, alpha, d);
	if (!(k >= 0))
		return NAN;
	if (n - k > h->count[h->nbuckets - 2])
		return INFINITY;
	return cn_histogram_quantile(1 - k / n, h);
}

/* The candidate's bad events against a limit: errors for an error rate, requests slower than the limit for a
 * quantile; *share is the share of requests they may be (the limit itself, or 1 - q). */
static void bad_events(const struct cn_slo *slo, const struct cn_counters *c, double limit, double *x, double *n,
		       double *share)
{
	if (slo->metric == CN_METRIC_ERROR_RATE) {
		*x = c->errors, *n = c->requests, *share = limit;
		return;
	}
	const struct cn_histogram *h = slo_histogram(slo, c);
	*n = cn_histogram_sane(h) ? h->count[h->nbuckets - 1] : NAN;
	*x = cn_histogram_count_above(h, limit);
	*share = 1 - slo->quantile;
}

void cn_judge_slo(const struct cn_slo *slo, const struct cn_judge_ctx *ctx, const struct cn_counters *cand,
		  const struct cn_counters *base, const struct cn_series_status *cst,
		  const struct cn_series_status *bst, struct cn_slo_result *out)
{
	char label[32], cv[24], bv[24], ov[24], lv[24], uv[24], rel[24], conf[16];
	CN_BUG_ON(!slo || !ctx || !cand || !base || !cst || !bst || !out);
	CN_BUG_ON(!(ctx->alpha > 0 && ctx->alpha < 1) || !(ctx->disp >= 1));
	unsigned mask = slo_series(slo);
	bool is_err = slo->metric == CN_METRIC_ERROR_RATE;

	/* Any verdict needs min(min_requests, CN_JUDGE_MIN_SAMPLE) requests; a failing one needs all of min_requests
	 * (below, a candidate that looks worse is inconclusive: it holds, and fails once the sample is in). */
	int64_t min_requests = ctx->min_requests;
	int64_t min_sample = min_requests < CN_JUDGE_MIN_SAMPLE ? min_requests : CN_JUDGE_MIN_SAMPLE;
	if (min_sample < 1)
		min_sample = 1;

	cn_slo_label(slo, label, sizeof label);
	seq_fields_clear(out);
	out->dispersion = ctx->disp;
	out->verdict = CN_VERDICT_INCONCLUSIVE;
	out->n_candidate = cand->requests;
	out->n_baseline = base->requests;
	out->candidate = slo_value(slo, cand);
	out->objective = NAN;
	fmt_conf(ctx->alpha, conf, sizeof conf);

	/* the baseline only counts if this tick's reading was clean and it has a sample of its own */
	bool base_clean = !bst->note && !((bst->missing | bst->reset) & mask);
	out->baseline = base_clean && base->requests >= (double)min_sample ? slo_value(slo, base) : NAN;

	if (cn_series_trouble(cst, mask, "candidate", out->why, sizeof out->why))
		return;
	if (!(cand->requests >= (double)min_sample)) {
		snprintf(out->why, sizeof out->why, "%s: only %.0f candidate requests in this step, need %lld", label,
			 cand->requests, (long long)min_sample);
		return;
	}
	if (isnan(out->candidate)) {
		snprintf(out->why, sizeof out->why, "%s: candidate value not computable (%s)", label,
			 is_err ? "no requests" : "histogram empty or missing in this step");
		return;
	}

	/* The relative limit: the ratio times the baseline's upper bound, so that noise in a small baseline cannot
	 * make a healthy candidate look worse (0 errors in 500 baseline requests is not a 0% limit). */
	bool wants_rel = isfinite(slo->max_increase);
	double base_upper = NAN;
	if (wants_rel && isfinite(out->baseline)) {
		if (is_err)
			base_upper = cn_rate_upper(base->errors, base->requests, ctx->alpha, ctx->disp);
		else
			base_upper = quantile_upper(slo->quantile, slo_histogram(slo, base), ctx->alpha, ctx->disp);
	}
	double rel_limit = isfinite(base_upper) ? base_upper * slo->max_increase : NAN;
	bool has_max = isfinite(slo->max);
	const char *src;
	if (has_max && !(slo->max > rel_limit)) {
		out->objective = slo->max; /* also when the relative part is unknown: the max alone can still fail */
		src = "max";
	} else if (isfinite(rel_limit)) {
		out->objective = rel_limit;
		snprintf(rel, sizeof rel, "%gx", slo->max_increase);
		src = rel;
	} else {
		if (isinf(base_upper))
			snprintf(out->why, sizeof out->why, "%s %s: the baseline's bound lies above the histogram's last "
				 "finite bucket, no relative limit", label, fmt_value(slo, out->candidate, cv, sizeof cv));
		else
			snprintf(out->why, sizeof out->why, "%s %s: no baseline value to compare with yet (%.0f baseline "
				 "requests are too few to bound it) and no absolute max", label,
				 fmt_value(slo, out->candidate, cv, sizeof cv), base->requests);
		return;
	}
	/* a relative part not yet known (baseline too small or unusable this tick) never drops out silently: the
	 * max may fail the candidate, but a pass waits for the relative limit */
	bool rel_missing = wants_rel && !isfinite(rel_limit);

	double x, n, share;
	bad_events(slo, cand, out->objective, &x, &n, &share);
	double evidence = share > 0 ? cn_rate_evidence_above(x, n, share, ctx->disp) : (x > 0 ? INFINITY : 0);
	double lower = cn_rate_lower(x, n, ctx->alpha, ctx->disp);
	double upper = cn_rate_upper(x, n, ctx->alpha, ctx->disp);
	bool worse = evidence >= log(1 / ctx->alpha);
	/* late onsets: this tick's bad events against the limit enter the rollout-long test; it stays a
	 * supermartingale while the limit is at or above the truth, which the baseline's bound already stakes */
	double late = NAN, late_boundary = NAN;
	if (ctx->late && ctx->tick && share > 0 && isfinite(share)) {
		double xt, nt, st;
		bad_events(slo, ctx->tick, out->objective, &xt, &nt, &st);
		if (nt > 0 && xt >= 0 && isfinite(xt) && isfinite(nt))
			cn_seq_add_one_arm(ctx->late, nt * st, xt);
		late = cn_seq_statistic(ctx->late, ctx->disp);
		late_boundary = log(1 / ctx->alpha_late);
	}
	bool late_worse = !worse && late >= late_boundary;
	out->verdict = worse || late_worse ? CN_VERDICT_FAIL : CN_VERDICT_PASS;
	if (late_worse)
		snprintf(out->why, sizeof out->why, "%s %s in the step vs limit %s (%s), but the latest ticks are over "
			 "it: evidence %.1f reached %.1f", label, fmt_value(slo, out->candidate, cv, sizeof cv),
			 fmt_value(slo, out->objective, ov, sizeof ov), src, late, late_boundary);
	else if (is_err)
		snprintf(out->why, sizeof out->why, "%s %s vs baseline %s (limit %s = %s), at least %s at %s at every "
			 "tick, at most %s", label, fmt_value(slo, out->candidate, cv, sizeof cv),
			 fmt_value(slo, out->baseline, bv, sizeof bv), fmt_value(slo, out->objective, ov, sizeof ov), src,
			 fmt_value(slo, lower, lv, sizeof lv), conf, fmt_value(slo, upper, uv, sizeof uv));
	else
		snprintf(out->why, sizeof out->why, "%s %s vs baseline %s (limit %s = %s), %.3g%% of requests above it "
			 "(at least %.3g%%, at most %.3g%%, allowed %.3g%%)", label,
			 fmt_value(slo, out->candidate, cv, sizeof cv), fmt_value(slo, out->baseline, bv, sizeof bv),
			 fmt_value(slo, out->objective, ov, sizeof ov), src, n > 0 ? 100 * x / n : 0.0, 100 * lower,
			 100 * (upper < 1 ? upper : 1), 100 * share);

	if (out->verdict == CN_VERDICT_FAIL && (cand->requests < (double)min_requests || !ctx->warm)) {
		out->verdict = CN_VERDICT_INCONCLUSIVE;
		if (cand->requests < (double)min_requests)
			snprintf(out->why, sizeof out->why, "%s %s vs limit %s (%s): looks worse, judged once the step "
				 "has %lld candidate requests (%.0f so far)", label,
				 fmt_value(slo, out->candidate, cv, sizeof cv), fmt_value(slo, out->objective, ov, sizeof ov),
				 src, (long long)min_requests, cand->requests);
		else
			snprintf(out->why, sizeof out->why, "%s %s vs limit %s (%s): looks worse, judged once %d ticks "
				 "show how bursty bad events are", label, fmt_value(slo, out->candidate, cv, sizeof cv),
				 fmt_value(slo, out->objective, ov, sizeof ov), src, CN_SEQ_MIN_TICKS);
	} else if (out->verdict == CN_VERDICT_PASS && rel_missing) {
		out->verdict = CN_VERDICT_INCONCLUSIVE;
		snprintf(out->why, sizeof out->why, "%s %s: within the max %s, but the %gx limit needs a bound on the "
			 "baseline (%.0f baseline requests so far)", label, fmt_value(slo, out->candidate, cv, sizeof cv),
			 fmt_value(slo, slo->max, ov, sizeof ov), slo->max_increase, base->requests);
	}
	/* promotion wants more than "not proven worse": the candidate proven within the limit (its upper bound below
	 * it), so that a regression that begins late in the last hold is not promoted on the step's average, and the
	 * latest ticks not favouring "over the limit" (the late test's e-value at most 1): the step's bound alone let a
	 * latency tail starting 30 s into a 1-minute 100% hold be promoted in 4% of simulated rollouts */
	out->promotable = out->verdict == CN_VERDICT_PASS && ctx->warm && upper <= share && !(late > 0);
}

void cn_counters_add(struct cn_counters *acc, const struct cn_counters *d, struct cn_series_status *st)
{
	acc->requests += d->requests;
	acc->errors += d->errors;
	if (!cn_histogram_accumulate(&acc->latency, &d->latency))
		st->reset |= CN_SERIES_LATENCY; /* bounds changed within the step: earlier evidence dropped */
	if (!cn_histogram_accumulate(&acc->ttft, &d->ttft))
		st->reset |= CN_SERIES_TTFT;
	if (!cn_histogram_accumulate(&acc->itl, &d->itl))
		st->reset |= CN_SERIES_ITL;
	struct cn_econ_acc *e = &acc->econ;
	const struct cn_econ_acc *de = &d->econ;
	e->ticks += de->ticks, e->g += de->g, e->b += de->b;
	e->gg += de->gg, e->bb += de->bb, e->gb += de->gb;
	e->prompt += de->prompt, e->seconds += de->seconds;
	if (isfinite(d->cost.per_hour) || isfinite(d->cost.per_1k_tokens))
		acc->cost = d->cost;
	for (int i = 0; i < d->nfeatures && i < CN_MAX_FEATURES; i++) {
		const struct cn_feature *fd = &d->features[i];
		struct cn_feature *fa = feature_entry(acc, fd->name);
		if (!fa)
			continue;
		fa->gen_tokens += fd->gen_tokens;
		fa->requests += fd->requests;
		fa->latency_sum += fd->latency_sum;
	}
}

double cn_slo_tolerance(const struct cn_slo *slo)
{
	if (isfinite(slo->tolerance))
		return slo->tolerance;
	return isfinite(slo->max_increase) ? slo->max_increase : NAN;
}

/* Chooses a latency SLO's bad-event threshold once: the baseline's q-quantile over the step so far (capped by
 * `max`), or `max` itself for an SLO with no relative part. NAN while the baseline has too few observations. */
static double choose_threshold(const struct cn_slo *slo, const struct cn_histogram *base)
{
	bool relative = isfinite(cn_slo_tolerance(slo));
	if (!relative)
		return isfinite(slo->max) && slo->max > 0 ? slo->max : NAN;
	if (!cn_histogram_sane(base))
		return NAN;
	/* about 20 observations above the quantile, so the estimate is not a single request's latency */
	double need = 20 / (1 - slo->quantile);
	if (need < CN_JUDGE_MIN_SAMPLE)
		need = CN_JUDGE_MIN_SAMPLE;
	if (!(base->count[base->nbuckets - 1] >= need))
		return NAN;
	double l = cn_histogram_quantile(slo->quantile, base);
	if (isfinite(slo->max) && slo->max > 0 && !(l <= slo->max))
		l = slo->max;
	return isfinite(l) && l > 0 ? l : NAN;
}

/* "1.3x", "10x", "a 0.5x" */
static const char *fmt_ratio(double r, char *buf, size_t size)
{
	if (isnan(r))
		snprintf(buf, size, "n/a");
	else if (isinf(r))
		snprintf(buf, size, "any");
	else
		snprintf(buf, size, "%.2gx", r);
	return buf;
}

void cn_judge_slo_seq(const struct cn_slo *slo, double alpha, struct cn_seq_stat *s, const struct cn_counters *dcand,
		      const struct cn_counters *dbase, const struct cn_counters *acc_base,
		      const struct cn_series_status *cst, const struct cn_series_status *bst, struct cn_slo_result *out)
{
	char label[32], what[48], trouble[CN_WHY_MAX], cv[24], bv[24], rv[16], uv[16], tv[16], lv[24], dv[32];
	CN_BUG_ON(!slo || !s || !dcand || !dbase || !acc_base || !cst || !bst || !out);
	unsigned mask = slo_series(slo);
	double tol = cn_slo_tolerance(slo);
	bool just_chosen = false;

	cn_slo_label(slo, label, sizeof label);
	if (s->ticks == 0)
		s->tol = tol; /* the policy is pinned for the rollout: the tolerance's ln Lambda is kept from the start */
	/* (also for a state saved before the max test existed: a test started at any tick is valid) */
	bool max_test = slo->metric == CN_METRIC_ERROR_RATE && isfinite(slo->max) && slo->max > 0;
	if (isnan(s->max) && max_test)
		s->max = slo->max;
	double alpha_cmp = max_test ? alpha * (1 - CN_SEQ_MAX_SHARE) : alpha;
	if (slo->metric != CN_METRIC_ERROR_RATE && isnan(s->threshold)) {
		s->threshold = choose_threshold(slo, slo_histogram(slo, acc_base));
		just_chosen = !isnan(s->threshold); /* chosen on this tick's data: counting starts with the next */
	}

	bool trouble_c = cn_series_trouble(cst, mask, "candidate", trouble, sizeof trouble);
	bool trouble_b = !trouble_c && cn_series_trouble(bst, mask, "baseline", trouble, sizeof trouble);
	bool ready = slo->metric == CN_METRIC_ERROR_RATE || (!isnan(s->threshold) && !just_chosen);
	if (!trouble_c && !trouble_b && ready) {
		double n_c, n_b, x_c, x_b;
		if (slo->metric == CN_METRIC_ERROR_RATE) {
			n_c = dcand->requests, n_b = dbase->requests;
			x_c = dcand->errors, x_b = dbase->errors;
		} else {
			const struct cn_histogram *hc = slo_histogram(slo, dcand), *hb = slo_histogram(slo, dbase);
			n_c = cn_histogram_sane(hc) ? hc->count[hc->nbuckets - 1] : NAN;
			n_b = cn_histogram_sane(hb) ? hb->count[hb->nbuckets - 1] : NAN;
			x_c = cn_histogram_count_above(hc, s->threshold);
			x_b = cn_histogram_count_above(hb, s->threshold);
		}
		if (n_c > 0 && n_b > 0 && x_c >= 0 && x_b >= 0) {
			cn_seq_add(s, n_c / (n_c + n_b), x_c, x_b);
			cn_seq_add_dispersion(s, x_b, n_b);
			cn_seq_add_dispersion_cand(s, x_c, n_c);
			if (max_test)
				cn_seq_add_max(s, x_c, n_c);
			s->n_c += n_c, s->n_b += n_b, s->x_c += x_c, s->x_b += x_b;
		} else if (n_c > 0 && n_b == 0 && x_c >= 0 && s->n_b >= CN_JUDGE_MIN_SAMPLE) {
			/* the 100% step: the candidate against the baseline's rate frozen from the earlier steps */
			cn_seq_add_one_arm(s, n_c * cn_seq_frozen_rate(s->x_b, s->n_b), x_c);
			cn_seq_add_dispersion_cand(s, x_c, n_c);
			if (max_test)
				cn_seq_add_max(s, x_c, n_c);
			s->n_c += n_c, s->x_c += x_c;
		}
	}

	double disp = cn_seq_dispersion(s);
	out->statistic = cn_seq_statistic(s, disp);
	out->boundary = log(1 / alpha_cmp);
	out->ratio = cn_seq_ratio(s);
	out->tolerance = tol;
	out->threshold = s->threshold;
	out->dispersion = disp;
	bool warm = cn_seq_ready(s);
	/* The bound is time-uniform, so every bound it ever gave holds at once and their intersection is as valid:
	 * keep the best. It no longer jumps between "< 5x" and "< 10x" as the dispersion estimate or a tick without
	 * bad events moves the test a little. */
	if (warm) {
		double now = cn_seq_upper(s, disp, alpha);
		if (!(s->upper_best <= now))
			s->upper_best = now;
	}
	out->ratio_upper = warm ? s->upper_best : INFINITY;
	out->promotable = isnan(tol) || (warm && (cn_seq_rejects_above(s, tol, disp, alpha) || s->upper_best <= tol));
	/* the weaker gate of a step to a minority share: "at the tolerance" fits the data no better than "as good as
	 * the baseline" (ln Lambda(tol) <= 0); see the top of rollout.c */
	out->plausible = out->promotable || (warm && !(cn_seq_llr(s, tol) > 0));
	out->candidate = s->n_c > 0 ? s->x_c / s->n_c : NAN;
	out->baseline = s->n_b > 0 ? s->x_b / s->n_b : NAN;
	out->objective = isfinite(tol) ? out->baseline * tol : NAN;
	out->n_candidate = s->n_c;
	out->n_baseline = s->n_b;

	if (slo->metric == CN_METRIC_ERROR_RATE) {
		snprintf(what, sizeof what, "%s", label);
		snprintf(cv, sizeof cv, "%.3g%%", out->candidate * 100);
		snprintf(bv, sizeof bv, "%.3g%%", out->baseline * 100);
	} else {
		snprintf(what, sizeof what, "%s, >%s", label, fmt_value(slo, s->threshold, lv, sizeof lv));
		snprintf(cv, sizeof cv, "%.3g%%", out->candidate * 100);
		snprintf(bv, sizeof bv, "%.3g%%", out->baseline * 100);
	}
	dv[0] = '\0';
	if (disp > 1.05)
		snprintf(dv, sizeof dv, ", bursts /%.2g", disp);

	if (warm && out->statistic >= out->boundary) {
		out->verdict = CN_VERDICT_FAIL;
		snprintf(out->why, sizeof out->why,
			 "%s: %s vs %s (%s): worse than baseline, evidence %.1f reached %.1f (false alarm <= %.2g%%%s)",
			 what, cv, bv, fmt_ratio(out->ratio, rv, sizeof rv), out->statistic, out->boundary, alpha_cmp * 100,
			 dv);
		return;
	}
	/* The test compares the arms; an error-rate SLO's absolute max still holds on its own (a candidate at 5%
	 * next to a baseline at 4.5% is not "worse than baseline", but it is over a 2% max). Its own sequential test
	 * ("rate > max", anytime valid) with CN_SEQ_MAX_SHARE of this SLO's alpha: a per-tick confidence bound here
	 * would be a repeated test outside the budget. */
	double max_stat = max_test ? cn_seq_max_statistic(s, disp) : NAN;
	double max_boundary = log(1 / (alpha * CN_SEQ_MAX_SHARE));
	if (warm && max_stat >= max_boundary) {
		out->verdict = CN_VERDICT_FAIL;
		out->objective = slo->max;
		out->statistic = max_stat;
		out->boundary = max_boundary;
		snprintf(out->why, sizeof out->why, "%s: %s over the absolute max %s: evidence %.1f reached %.1f (false "
			 "alarm <= %.2g%%%s; baseline %s)", what, cv, fmt_value(slo, slo->max, tv, sizeof tv), max_stat,
			 max_boundary, alpha * CN_SEQ_MAX_SHARE * 100, dv, bv);
		return;
	}
	out->verdict = CN_VERDICT_INCONCLUSIVE;
	if (trouble_c || trouble_b) {
		snprintf(out->why, sizeof out->why, "%s", trouble);
		return;
	}
	if (!ready) {
		if (isnan(s->threshold))
			snprintf(out->why, sizeof out->why, "%s: choosing the bad-latency threshold: need more baseline "
				 "requests in the %s histogram", label, slo->metric == CN_METRIC_LATENCY ? "latency" :
				 slo->metric == CN_METRIC_TTFT ? "ttft" : "itl");
		else
			snprintf(out->why, sizeof out->why, "%s: bad-latency threshold set to %s from the baseline's "
				 "p%g, counting from the next tick", label, fmt_value(slo, s->threshold, lv, sizeof lv),
				 slo->quantile * 100);
		return;
	}
	out->verdict = CN_VERDICT_PASS;
	if (isnan(tol))
		snprintf(out->why, sizeof out->why, "%s: %s vs %s (%s): evidence of regression %.1f of %.1f%s",
			 what, cv, bv, fmt_ratio(out->ratio, rv, sizeof rv), out->statistic, out->boundary, dv);
	else if (isinf(out->ratio_upper))
		snprintf(out->why, sizeof out->why, "%s: %s vs %s (%s): evidence of regression %.1f of %.1f; ratio not "
			 "yet bounded, need < %s%s", what, cv, bv, fmt_ratio(out->ratio, rv, sizeof rv), out->statistic,
			 out->boundary, fmt_ratio(tol, tv, sizeof tv), dv);
	else
		snprintf(out->why, sizeof out->why, "%s: %s vs %s (%s): evidence of regression %.1f of %.1f; ratio "
			 "< %s, need < %s%s", what, cv, bv, fmt_ratio(out->ratio, rv, sizeof rv), out->statistic,
			 out->boundary, fmt_ratio(out->ratio_upper, uv, sizeof uv), fmt_ratio(tol, tv, sizeof tv), dv);
}
