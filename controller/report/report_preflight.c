/* A pre-flight's table and JSON document (canary/report_preflight.h), made from the load generator's per-band figures
 * and the judge's verdicts; the one place that formats them. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/judge.h"
#include "canary/report_preflight.h"

#define TABLE_MAX (64 * 1024)

static void q3(struct cn_dynbuf *b, const struct cn_lhist *h)
{
	if (h->n == 0)
		cn_dynbuf_addf(b, "  %22s", "-");
	else
		cn_dynbuf_addf(b, "  %6.0f %7.0f %7.0f", 1e3 * cn_lhist_quantile(h, 0.5), 1e3 * cn_lhist_quantile(h, 0.95),
			       1e3 * cn_lhist_quantile(h, 0.99));
}

static void arm_row(struct cn_dynbuf *b, const char *band, const char *range, const char *arm,
		    const struct cn_band_stats *s, bool contract)
{
	cn_dynbuf_addf(b, "%-9s %-12s %-9s %8ld %7ld", band, range, arm, s->requests, s->errors);
	if (contract)
		cn_dynbuf_addf(b, " %9ld", s->contract_violations);
	else
		cn_dynbuf_addf(b, " %9s", "-");
	q3(b, &s->latency);
	q3(b, &s->ttft);
	q3(b, &s->itl);
	cn_dynbuf_adds(b, "\n");
}

static const char *verdict_word(enum cn_verdict v)
{
	return v == CN_VERDICT_PASS ? "pass" : v == CN_VERDICT_FAIL ? "FAIL" : "inconclusive";
}

static void range_of(const struct cn_band_stats *s, char *buf, size_t n)
{
	if (isinf(s->hi))
		snprintf(buf, n, "> %.0f", s->lo);
	else
		snprintf(buf, n, "%.0f..%.0f", s->lo, s->hi);
}

int cn_report_preflight_text(struct cn_dynbuf *b, const struct cn_preflight_view *v)
{
	const struct cn_load_result *c = v->cand, *k = v->base;
	bool contract = c->contract_checked > 0 || (k && k->contract_checked > 0);
	cn_dynbuf_addf(b, "pre-flight of %s%s%s", v->candidate_slot ? "slot " : "", v->candidate_slot ? v->candidate_slot : "",
		       v->candidate_slot ? "" : v->candidate_url);
	if (k)
		cn_dynbuf_addf(b, " against %s%s (the same prompts, interleaved)", v->baseline_slot ? "slot " : "",
			       v->baseline_slot ? v->baseline_slot : v->baseline_url);
	cn_dynbuf_addf(b, ": %g/s for %.0fs, %s%s; candidate %ld sent at %.1f/s, %ld ok, %ld errors (%ld transport, "
		       "%ld http, %ld stream, %ld timeouts)\n", v->profile->rate, (double)v->profile->duration_ms / 1e3,
		       (v->profile->endpoint == CN_ENDPOINT_CHAT ? "chat" : "completions"), v->profile->stream ? ", streaming" : "", c->sent,
		       c->achieved_rate, c->ok, c->errors, c->transport_errors, c->http_errors, c->stream_errors, c->timeouts);
	if (contract)
		cn_dynbuf_addf(b, "contract: candidate %ld of %ld answers broke it%s%s%s", c->contract_violations,
			       c->contract_checked, c->contract_example[0] ? " (first: " : "", c->contract_example,
			       c->contract_example[0] ? ")" : "");
	if (contract && k)
		cn_dynbuf_addf(b, "; baseline %ld of %ld", k->contract_violations, k->contract_checked);
	if (contract)
		cn_dynbuf_adds(b, "\n");
	cn_dynbuf_addf(b, "%-9s %-12s %-9s %8s %7s %9s  %-22s  %-22s  %-22s\n", "band", "prompt tok", "arm", "requests",
		       "errors", "contract", "latency ms p50/p95/p99", "ttft ms p50/p95/p99", "itl ms p50/p95/p99");
	for (int i = 0; i < CN_NBANDS; i++) {
		char range[32];
		range_of(&c->bands[i], range, sizeof range);
		arm_row(b, cn_band_name((enum cn_band)i), range, "candidate", &c->bands[i], contract);
		if (k)
			arm_row(b, "", "", "baseline", &k->bands[i], contract);
	}
	if (v->res && v->pf) {
		cn_dynbuf_addf(b, "verdicts (threshold judge, each bound at %.3g%%):\n", 100 * v->res->alpha);
		for (int s = 0; s < v->pf->nslos; s++)
			for (int i = 0; i < CN_NBANDS; i++)
				cn_dynbuf_addf(b, "  %-20s %-9s %-12s %s\n", v->pf->slos[s].name,
					       cn_band_name((enum cn_band)i), verdict_word(v->res->v[s][i].verdict),
					       v->res->v[s][i].why);
		cn_dynbuf_addf(b, "%s\n", v->res->reason);
	}
	return cn_dynbuf_error(b);
}

static json_t *q_json(const struct cn_lhist *h)
{
	if (h->n == 0)
		return json_null();
	/* quantiles are upper bounds of 4% buckets; the mean is exact */
	return json_pack("{s:f, s:f, s:f, s:f}", "p50_ms", 1e3 * cn_lhist_quantile(h, 0.5), "p95_ms",
			 1e3 * cn_lhist_quantile(h, 0.95), "p99_ms", 1e3 * cn_lhist_quantile(h, 0.99), "mean_ms",
			 1e3 * h->sum / (double)h->n);
}

static json_t *num(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *arm_json(const struct cn_band_stats *s)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:o, s:o, s:o}", "requests", (json_int_t)s->requests, "errors",
			 (json_int_t)s->errors, "contract_checked", (json_int_t)s->contract_checked,
			 "contract_violations", (json_int_t)s->contract_violations, "latency", q_json(&s->latency),
			 "ttft", q_json(&s->ttft), "itl", q_json(&s->itl));
}

static json_t *totals_json(const char *slot, const char *url, const struct cn_load_result *r)
{
	/* late, elapsed_s, latency (all bands) and send_lag say whether the generator itself kept to the schedule */
	return json_pack("{s:s?, s:s?, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I, s:s, s:I, s:f, s:o, s:o}",
			 "slot", slot, "url", url, "sent", (json_int_t)r->sent, "ok", (json_int_t)r->ok, "errors",
			 (json_int_t)r->errors, "transport_errors", (json_int_t)r->transport_errors, "http_errors",
			 (json_int_t)r->http_errors, "stream_errors", (json_int_t)r->stream_errors, "timeouts",
			 (json_int_t)r->timeouts, "achieved_rate", r->achieved_rate, "contract_checked",
			 (json_int_t)r->contract_checked, "contract_violations", (json_int_t)r->contract_violations,
			 "contract_example", r->contract_example, "late", (json_int_t)r->late, "elapsed_s", r->elapsed_s,
			 "latency", q_json(&r->latency), "send_lag", q_json(&r->send_lag));
}

char *cn_report_preflight_json(const struct cn_preflight_view *v)
{
	struct cn_dynbuf t;
	char *out = NULL;
	cn_dynbuf_init(&t, TABLE_MAX);
	cn_report_preflight_text(&t, v);
	json_t *bands = json_array(), *verdicts = json_array();
	for (int i = 0; bands && i < CN_NBANDS; i++) {
		const struct cn_band_stats *s = &v->cand->bands[i];
		json_array_append_new(bands, json_pack("{s:s, s:f, s:o, s:o, s:o}", "band", cn_band_name((enum cn_band)i),
						       "prompt_tokens_above", s->lo, "prompt_tokens_up_to", num(s->hi),
						       "candidate", arm_json(s), "baseline",
						       v->base ? arm_json(&v->base->bands[i]) : json_null()));
	}
	for (int s = 0; v->res && v->pf && verdicts && s < v->pf->nslos; s++)
		for (int i = 0; i < CN_NBANDS; i++) {
			const struct cn_slo_result *r = &v->res->v[s][i];
			char slo[96];
			snprintf(slo, sizeof slo, "%s@%s", v->pf->slos[s].name, cn_band_name((enum cn_band)i));
			json_array_append_new(verdicts,
					      json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:f, s:f, s:s}", "slo", slo,
							"metric", cn_pf_metric_name(v->pf->slos[s].metric), "band",
							cn_band_name((enum cn_band)i), "verdict",
							r->verdict == CN_VERDICT_PASS ? "pass"
							: r->verdict == CN_VERDICT_FAIL ? "fail" : "inconclusive",
							"candidate", num(r->candidate), "baseline", num(r->baseline),
							"objective", num(r->objective), "n_candidate", r->n_candidate,
							"n_baseline", isfinite(r->n_baseline) ? r->n_baseline : 0.0, "why", r->why));
		}
	json_t *doc = json_pack("{s:s, s:s, s:f, s:f, s:b, s:s, s:o, s:o, s:o, s:o, s:f, s:s%}",
				"verdict", !v->res ? "not judged" : v->res->passed ? "passed" : "failed", "reason",
				v->res ? v->res->reason : "", "rate", v->profile->rate, "duration_s",
				(double)v->profile->duration_ms / 1e3, "stream", v->profile->stream, "endpoint",
				(v->profile->endpoint == CN_ENDPOINT_CHAT ? "chat" : "completions"), "candidate",
				totals_json(v->candidate_slot, v->candidate_url, v->cand), "baseline",
				v->base ? totals_json(v->baseline_slot, v->baseline_url, v->base) : json_null(), "bands",
				bands ? bands : json_null(), "verdicts", verdicts ? verdicts : json_null(), "alpha",
				v->res ? v->res->alpha : 0.0, "table", cn_dynbuf_ptr(&t), cn_dynbuf_len(&t));
	if (doc)
		out = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	cn_dynbuf_free(&t);
	return out;
}
