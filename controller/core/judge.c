/* The threshold judge: turns each tick's cumulative readings into evidence for the step, and judges one SLO on that
 * evidence with a verdict, the numbers behind it, and a sentence a person understands. */
#include "canary/judge.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int64_t cn_judge_min_sample(const struct cn_policy *p)
{
	int64_t m = p->analysis.min_requests;
	if (m > CN_JUDGE_MIN_SAMPLE)
		m = CN_JUDGE_MIN_SAMPLE;
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

static const struct cn_sample *usable(const struct cn_sample *s)
{
	return s && s->ok ? s : NULL;
}

void cn_ingest_sample(const struct cn_sample *prev, const struct cn_sample *cur, struct cn_counters *acc,
		      struct cn_sample *base_out, struct cn_series_status *st)
{
	const unsigned all = CN_SERIES_REQUESTS | CN_SERIES_ERRORS | CN_SERIES_LATENCY | CN_SERIES_TTFT | CN_SERIES_ITL;
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
}

/* Series an SLO's value depends on: the requests counter always (it is the sample size). */
static unsigned slo_series(const struct cn_slo *slo)
{
	switch (slo->metric) {
	case CN_METRIC_ERROR_RATE: return CN_SERIES_REQUESTS | CN_SERIES_ERRORS;
	case CN_METRIC_LATENCY: return CN_SERIES_REQUESTS | CN_SERIES_LATENCY;
	case CN_METRIC_TTFT: return CN_SERIES_REQUESTS | CN_SERIES_TTFT;
	case CN_METRIC_ITL: return CN_SERIES_REQUESTS | CN_SERIES_ITL;
	}
	return CN_SERIES_REQUESTS;
}

static const struct cn_histogram *slo_histogram(const struct cn_slo *slo, const struct cn_counters *c)
{
	switch (slo->metric) {
	case CN_METRIC_LATENCY: return &c->latency;
	case CN_METRIC_TTFT: return &c->ttft;
	case CN_METRIC_ITL: return &c->itl;
	case CN_METRIC_ERROR_RATE: break;
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

/* Writes why the variant's evidence is unusable for the series in `mask` into buf; false if it is usable. */
static bool series_trouble(const struct cn_series_status *st, unsigned mask, const char *variant, char *buf,
			   size_t size)
{
	if (st->note) {
		snprintf(buf, size, "%s metrics unusable: %s", variant, st->note);
		return true;
	}
	for (unsigned bit = 1; bit <= CN_SERIES_ITL; bit <<= 1) {
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

void cn_judge_slo(const struct cn_slo *slo, int64_t min_sample, const struct cn_counters *cand,
		  const struct cn_counters *base, const struct cn_series_status *cst,
		  const struct cn_series_status *bst, struct cn_slo_result *out)
{
	char label[32], cv[24], bv[24], ov[24], rel[24];
	unsigned mask = slo_series(slo);

	cn_slo_label(slo, label, sizeof label);
	out->verdict = CN_VERDICT_INCONCLUSIVE;
	out->n_candidate = cand->requests;
	out->n_baseline = base->requests;
	out->candidate = slo_value(slo, cand);
	out->objective = NAN;

	/* the baseline only counts if this tick's reading was clean and it has a sample of its own */
	bool base_clean = !bst->note && !((bst->missing | bst->reset) & mask);
	out->baseline = base_clean && base->requests >= (double)min_sample ? slo_value(slo, base) : NAN;

	if (series_trouble(cst, mask, "candidate", out->why, sizeof out->why))
		return;
	if (!(cand->requests >= (double)min_sample)) {
		snprintf(out->why, sizeof out->why, "%s: only %.0f candidate requests in this step, need %lld", label,
			 cand->requests, (long long)min_sample);
		return;
	}
	if (isnan(out->candidate)) {
		snprintf(out->why, sizeof out->why, "%s: candidate value not computable (%s)", label,
			 slo->metric == CN_METRIC_ERROR_RATE ? "no requests" : "histogram empty or missing in this step");
		return;
	}

	bool has_rel = isfinite(slo->max_increase) && isfinite(out->baseline);
	double rel_limit = has_rel ? out->baseline * slo->max_increase : NAN;
	const char *src;
	if (isfinite(slo->max) && (!has_rel || slo->max <= rel_limit)) {
		out->objective = slo->max;
		src = "max";
	} else if (has_rel) {
		out->objective = rel_limit;
		snprintf(rel, sizeof rel, "%gx", slo->max_increase);
		src = rel;
	} else {
		snprintf(out->why, sizeof out->why, "%s %s: no baseline value to compare with (%.0f baseline requests) "
			 "and no absolute max", label, fmt_value(slo, out->candidate, cv, sizeof cv), base->requests);
		return;
	}
	out->verdict = out->candidate <= out->objective ? CN_VERDICT_PASS : CN_VERDICT_FAIL;
	snprintf(out->why, sizeof out->why, "%s %s vs baseline %s (limit %s = %s)", label,
		 fmt_value(slo, out->candidate, cv, sizeof cv), fmt_value(slo, out->baseline, bv, sizeof bv),
		 fmt_value(slo, out->objective, ov, sizeof ov), src);
}
