/* The pre-flight's judgement (canary/preflight.h): every SLO in every prompt-length band through the threshold judge
 * of the live steps, on the run's whole sample at once. Its bounds hold at every look, so one look at the end is a
 * fixed-sample test at the same level (conservative). Pure: no I/O, no clock. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "canary/judge.h"
#include "canary/preflight.h"

const char *cn_pf_metric_name(int metric)
{
	switch (metric) {
	case CN_PF_ERROR_RATE: return "error_rate";
	case CN_PF_LATENCY: return "latency";
	case CN_PF_TTFT: return "ttft";
	case CN_PF_ITL: return "itl";
	case CN_PF_CONTRACT_VIOLATIONS: return "contract_violations";
	}
	return "?";
}

void cn_preflight_slo(const struct cn_pf_slo *s, struct cn_slo *out)
{
	memset(out, 0, sizeof *out);
	snprintf(out->name, sizeof out->name, "%s", s->name);
	switch (s->metric) {
	case CN_PF_LATENCY: out->metric = CN_METRIC_LATENCY; break;
	case CN_PF_TTFT: out->metric = CN_METRIC_TTFT; break;
	case CN_PF_ITL: out->metric = CN_METRIC_ITL; break;
	default: out->metric = CN_METRIC_ERROR_RATE; break; /* errors, or answers that broke the contract */
	}
	out->quantile = s->quantile;
	out->max = s->max;
	out->max_increase = s->max_increase;
	out->tolerance = NAN;
}

/* One arm's evidence in one band, as the judge reads it. */
static void counters(const struct cn_pf_slo *s, const struct cn_band_stats *b, const struct cn_band_stats *other,
		     struct cn_counters *c)
{
	memset(c, 0, sizeof *c);
	if (s->metric == CN_PF_CONTRACT_VIOLATIONS) {
		c->requests = (double)b->contract_checked;
		c->errors = (double)b->contract_violations;
		return;
	}
	c->requests = (double)b->requests;
	c->errors = (double)b->errors;
	if (s->metric == CN_PF_LATENCY)
		cn_lhist_to_histograms(&b->latency, other ? &other->latency : NULL, &c->latency, NULL);
	else if (s->metric == CN_PF_TTFT)
		cn_lhist_to_histograms(&b->ttft, other ? &other->ttft : NULL, &c->ttft, NULL);
	else if (s->metric == CN_PF_ITL)
		cn_lhist_to_histograms(&b->itl, other ? &other->itl : NULL, &c->itl, NULL);
}

void cn_preflight_judge(const struct cn_preflight *pf, double budget, const struct cn_load_result *cand,
			const struct cn_load_result *base, struct cn_preflight_result *out)
{
	static const struct cn_band_stats none;
	memset(out, 0, sizeof *out);
	out->nslos = pf->nslos;
	int nslos = pf->nslos > 0 ? pf->nslos : 1;
	out->alpha = budget / (nslos * CN_NBANDS * 2.0);
	const char *first_fail = NULL;
	int fail_slo = 0, fail_band = 0;
	for (int i = 0; i < pf->nslos; i++) {
		struct cn_slo slo;
		cn_preflight_slo(&pf->slos[i], &slo);
		for (int b = 0; b < CN_NBANDS; b++) {
			const struct cn_band_stats *cb = &cand->bands[b], *bb = base ? &base->bands[b] : &none;
			/* cn_counters holds three histograms: keep them off the stack */
			static _Thread_local struct cn_counters c, k;
			counters(&pf->slos[i], cb, base ? bb : NULL, &c);
			counters(&pf->slos[i], bb, cb, &k);
			struct cn_series_status st = { 0 };
			struct cn_judge_ctx ctx = { .min_requests = pf->min_requests, .alpha = out->alpha, .disp = 1,
						    .warm = true };
			struct cn_slo_result *r = &out->v[i][b];
			cn_judge_slo(&slo, &ctx, &c, &k, &st, &st, r);
			if (pf->slos[i].metric == CN_PF_CONTRACT_VIOLATIONS && cand->contract_checked == 0 &&
			    r->verdict != CN_VERDICT_FAIL) {
				r->verdict = CN_VERDICT_INCONCLUSIVE;
				snprintf(r->why, sizeof r->why, "no answer was checked: the service declares no contract "
					 "(contract: in its file), or no answer succeeded");
			}
			if (r->verdict == CN_VERDICT_FAIL) {
				if (!first_fail) {
					first_fail = r->why;
					fail_slo = i;
					fail_band = b;
				}
				out->failed++;
			} else if (r->verdict == CN_VERDICT_INCONCLUSIVE) {
				out->inconclusive++;
			}
		}
	}
	out->passed = out->failed == 0;
	if (first_fail) {
		const struct cn_band_stats *fb = &cand->bands[fail_band];
		char range[48];
		if (isinf(fb->hi))
			snprintf(range, sizeof range, "over %.0f", fb->lo);
		else
			snprintf(range, sizeof range, "%.0f..%.0f", fb->lo, fb->hi);
		snprintf(out->reason, sizeof out->reason,
			 "pre-flight failed (%d of %d verdicts): slo '%s' in the %s band (prompts of %s tokens): %s",
			 out->failed, pf->nslos * CN_NBANDS, pf->slos[fail_slo].name, cn_band_name((enum cn_band)fail_band),
			 range, first_fail);
	}
	else if (out->inconclusive)
		snprintf(out->reason, sizeof out->reason,
			 "pre-flight passed: no verdict failed; %d of %d inconclusive (too few requests in a band), left "
			 "to the live steps", out->inconclusive, pf->nslos * CN_NBANDS);
	else
		snprintf(out->reason, sizeof out->reason, "pre-flight passed: all %d verdicts pass",
			 pf->nslos * CN_NBANDS);
}
