/* JSON encodings of the core's plain-data structures: persisted in rollouts.state and measurements. */
#include "canary/state_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/judge.h"

json_t *cn_json_real(double v)
{
	/* Counters and bucket counts are whole numbers: written as integers they cost an integer's formatting and
	 * parsing, not %.17g's and strtod's (most numbers of a state are counts: at 1,000 ticks a second this was a
	 * third of canaryd's CPU). Readers take either (cn_json_get_real); beyond 2^53 a double is not exact anyway. */
	if (v == trunc(v) && fabs(v) < 9007199254740992.0)
		return json_integer((json_int_t)v);
	return isfinite(v) ? json_real(v) : json_null();
}

double cn_json_get_real(const json_t *j)
{
	if (json_is_number(j))
		return json_number_value(j);
	if (json_is_string(j) && strcmp(json_string_value(j), "+Inf") == 0)
		return INFINITY;
	return NAN;
}

static json_t *histogram_to_json(const struct cn_histogram *h)
{
	json_t *o = json_object();
	json_t *le = json_array();
	json_t *cnt = json_array();
	for (int i = 0; i < h->nbuckets; i++) {
		/* +Inf has no JSON form: written as the string "+Inf" */
		json_array_append_new(le, isinf(h->le[i]) ? json_string("+Inf") : json_real(h->le[i]));
		json_array_append_new(cnt, cn_json_real(h->count[i]));
	}
	json_object_set_new(o, "le", le);
	json_object_set_new(o, "count", cnt);
	json_object_set_new(o, "sum", cn_json_real(h->sum));
	return o;
}

static int histogram_from_json(const json_t *j, struct cn_histogram *h, const char *what, struct cn_err *err)
{
	memset(h, 0, sizeof *h);
	h->sum = NAN;
	if (!j || json_is_null(j))
		return 0;
	const json_t *le = json_object_get(j, "le");
	const json_t *cnt = json_object_get(j, "count");
	if (!json_is_array(le) || !json_is_array(cnt) || json_array_size(le) != json_array_size(cnt) ||
	    json_array_size(le) > CN_MAX_BUCKETS)
		return cn_fail(err, CN_EINTERNAL, "stored histogram '%s' is malformed", what);
	h->nbuckets = (int)json_array_size(le);
	for (int i = 0; i < h->nbuckets; i++) {
		h->le[i] = cn_json_get_real(json_array_get(le, (size_t)i));
		h->count[i] = cn_json_get_real(json_array_get(cnt, (size_t)i));
	}
	h->sum = cn_json_get_real(json_object_get(j, "sum"));
	return 0;
}

static json_t *cost_to_json(const struct cn_cost *c)
{
	if (!isfinite(c->per_hour) && !isfinite(c->per_1k_tokens))
		return json_null();
	return json_pack("{s:o, s:o, s:o}", "per_hour", cn_json_real(c->per_hour), "replicas",
			 cn_json_real(c->replicas), "per_1k_tokens", cn_json_real(c->per_1k_tokens));
}

static void cost_from_json(const json_t *j, struct cn_cost *c)
{
	c->per_hour = cn_json_get_real(json_object_get(j, "per_hour"));
	c->replicas = cn_json_get_real(json_object_get(j, "replicas"));
	c->per_1k_tokens = cn_json_get_real(json_object_get(j, "per_1k_tokens"));
}

/* The per-feature breakdown: [{name, gen_tokens, requests, latency_sum}, ...]; NULL when there is none. */
static json_t *features_to_json(const struct cn_feature *f, int n)
{
	if (n <= 0)
		return NULL;
	json_t *a = json_array();
	for (int i = 0; a && i < n && i < CN_MAX_FEATURES; i++)
		json_array_append_new(a, json_pack("{s:s, s:o, s:o, s:o}", "name", f[i].name, "gen_tokens",
						   cn_json_real(f[i].gen_tokens), "requests", cn_json_real(f[i].requests),
						   "latency_sum", cn_json_real(f[i].latency_sum)));
	return a;
}

static int features_from_json(const json_t *a, struct cn_feature *f)
{
	int n = 0;
	size_t i;
	const json_t *el;
	if (!json_is_array(a))
		return 0;
	json_array_foreach(a, i, el) {
		if (n >= CN_MAX_FEATURES)
			break;
		const char *name = json_string_value(json_object_get(el, "name"));
		if (!name)
			continue;
		snprintf(f[n].name, sizeof f[n].name, "%s", name);
		f[n].gen_tokens = cn_json_get_real(json_object_get(el, "gen_tokens"));
		f[n].requests = cn_json_get_real(json_object_get(el, "requests"));
		f[n].latency_sum = cn_json_get_real(json_object_get(el, "latency_sum"));
		n++;
	}
	return n;
}

json_t *cn_sample_to_json(const struct cn_sample *s)
{
	json_t *o = json_object();
	json_object_set_new(o, "ok", json_boolean(s->ok));
	if (s->why[0])
		json_object_set_new(o, "why", json_string(s->why));
	json_object_set_new(o, "requests", cn_json_real(s->requests));
	json_object_set_new(o, "errors", cn_json_real(s->errors));
	json_object_set_new(o, "latency", histogram_to_json(&s->latency));
	json_object_set_new(o, "ttft", histogram_to_json(&s->ttft));
	json_object_set_new(o, "itl", histogram_to_json(&s->itl));
	if (isfinite(s->gen_tokens))
		json_object_set_new(o, "gen_tokens", json_real(s->gen_tokens));
	if (isfinite(s->prompt_tokens))
		json_object_set_new(o, "prompt_tokens", json_real(s->prompt_tokens));
	if (isfinite(s->cost.per_hour) || isfinite(s->cost.per_1k_tokens))
		json_object_set_new(o, "cost", cost_to_json(&s->cost));
	if (s->nfeatures > 0)
		json_object_set_new(o, "features", features_to_json(s->features, s->nfeatures));
	if (s->features_dropped > 0)
		json_object_set_new(o, "features_dropped", json_integer(s->features_dropped));
	return o;
}

int cn_sample_from_json(const json_t *j, struct cn_sample *out, struct cn_err *err)
{
	struct cn_sample s;
	int rc;
	memset(&s, 0, sizeof s);
	if (!json_is_object(j))
		return cn_fail(err, CN_EINTERNAL, "stored sample is not an object");
	s.ok = json_is_true(json_object_get(j, "ok"));
	const char *why = json_string_value(json_object_get(j, "why"));
	if (why)
		snprintf(s.why, sizeof s.why, "%s", why);
	s.requests = cn_json_get_real(json_object_get(j, "requests"));
	s.errors = cn_json_get_real(json_object_get(j, "errors"));
	s.gen_tokens = cn_json_get_real(json_object_get(j, "gen_tokens"));
	s.prompt_tokens = cn_json_get_real(json_object_get(j, "prompt_tokens"));
	cost_from_json(json_object_get(j, "cost"), &s.cost);
	s.nfeatures = features_from_json(json_object_get(j, "features"), s.features);
	s.features_dropped = (int)json_integer_value(json_object_get(j, "features_dropped"));
	if ((rc = histogram_from_json(json_object_get(j, "latency"), &s.latency, "latency", err)) < 0 ||
	    (rc = histogram_from_json(json_object_get(j, "ttft"), &s.ttft, "ttft", err)) < 0 ||
	    (rc = histogram_from_json(json_object_get(j, "itl"), &s.itl, "itl", err)) < 0)
		return rc;
	*out = s;
	return 0;
}

static json_t *counters_to_json(const struct cn_counters *c)
{
	json_t *o = json_object();
	json_object_set_new(o, "requests", cn_json_real(c->requests));
	json_object_set_new(o, "errors", cn_json_real(c->errors));
	json_object_set_new(o, "latency", histogram_to_json(&c->latency));
	json_object_set_new(o, "ttft", histogram_to_json(&c->ttft));
	json_object_set_new(o, "itl", histogram_to_json(&c->itl));
	const struct cn_econ_acc *e = &c->econ;
	if (e->ticks > 0 || e->seconds > 0)
		json_object_set_new(o, "econ", json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "ticks",
							 cn_json_real(e->ticks), "g", cn_json_real(e->g), "b",
							 cn_json_real(e->b), "gg", cn_json_real(e->gg), "bb",
							 cn_json_real(e->bb), "gb", cn_json_real(e->gb), "prompt",
							 cn_json_real(e->prompt), "seconds", cn_json_real(e->seconds)));
	if (isfinite(c->cost.per_hour) || isfinite(c->cost.per_1k_tokens))
		json_object_set_new(o, "cost", cost_to_json(&c->cost));
	if (c->nfeatures > 0)
		json_object_set_new(o, "features", features_to_json(c->features, c->nfeatures));
	return o;
}

static int counters_from_json(const json_t *j, struct cn_counters *c, struct cn_err *err)
{
	int rc;
	memset(c, 0, sizeof *c);
	if (!json_is_object(j))
		return cn_fail(err, CN_EINTERNAL, "stored counters are not an object");
	c->requests = cn_json_get_real(json_object_get(j, "requests"));
	c->errors = cn_json_get_real(json_object_get(j, "errors"));
	const json_t *e = json_object_get(j, "econ");
	double *econ[] = { &c->econ.ticks, &c->econ.g, &c->econ.b, &c->econ.gg, &c->econ.bb, &c->econ.gb,
			   &c->econ.prompt, &c->econ.seconds };
	const char *ekey[] = { "ticks", "g", "b", "gg", "bb", "gb", "prompt", "seconds" };
	for (size_t i = 0; i < sizeof econ / sizeof econ[0]; i++) {
		double v = cn_json_get_real(json_object_get(e, ekey[i]));
		*econ[i] = isfinite(v) ? v : 0;
	}
	cost_from_json(json_object_get(j, "cost"), &c->cost);
	c->nfeatures = features_from_json(json_object_get(j, "features"), c->features);
	if ((rc = histogram_from_json(json_object_get(j, "latency"), &c->latency, "latency", err)) < 0 ||
	    (rc = histogram_from_json(json_object_get(j, "ttft"), &c->ttft, "ttft", err)) < 0 ||
	    (rc = histogram_from_json(json_object_get(j, "itl"), &c->itl, "itl", err)) < 0)
		return rc;
	return 0;
}

static json_t *seq_stat_to_json(const struct cn_seq_stat *s)
{
	json_t *o = json_object();
	json_t *llr = json_array();
	for (int i = 0; i < CN_SEQ_NGRID; i++)
		json_array_append_new(llr, cn_json_real(s->llr[i]));
	json_object_set_new(o, "llr", llr);
	json_object_set_new(o, "llr_tol", cn_json_real(s->llr_tol));
	json_object_set_new(o, "tol", cn_json_real(s->tol));
	json_object_set_new(o, "threshold", cn_json_real(s->threshold));
	json_object_set_new(o, "x_c", cn_json_real(s->x_c));
	json_object_set_new(o, "x_b", cn_json_real(s->x_b));
	json_object_set_new(o, "n_c", cn_json_real(s->n_c));
	json_object_set_new(o, "n_b", cn_json_real(s->n_b));
	json_object_set_new(o, "disp_xx_n", cn_json_real(s->disp_xx_n));
	json_object_set_new(o, "disp_x", cn_json_real(s->disp_x));
	json_object_set_new(o, "disp_n", cn_json_real(s->disp_n));
	json_object_set_new(o, "disp_ticks", json_integer(s->disp_ticks));
	json_object_set_new(o, "disp_c_ss", cn_json_real(s->disp_c_ss));
	json_object_set_new(o, "disp_c_x", cn_json_real(s->disp_c_x));
	json_object_set_new(o, "disp_c_n", cn_json_real(s->disp_c_n));
	json_object_set_new(o, "disp_c_prev_x", cn_json_real(s->disp_c_prev_x));
	json_object_set_new(o, "disp_c_prev_n", cn_json_real(s->disp_c_prev_n));
	json_object_set_new(o, "disp_c_terms", json_integer(s->disp_c_terms));
	json_object_set_new(o, "disp_c_max", cn_json_real(s->disp_c_max));
	json_object_set_new(o, "upper_best", cn_json_real(s->upper_best)); /* null: none yet (+Inf) */
	json_object_set_new(o, "ticks", json_integer(s->ticks));
	json_t *rs = json_array();
	for (int k = 0; k < s->nrs && k < CN_SEQ_NRESTART; k++) {
		json_t *p = json_object(), *pl = json_array();
		for (int i = 0; i < CN_SEQ_NROLL; i++)
			json_array_append_new(pl, cn_json_real(s->rs[k].llr[i]));
		json_object_set_new(p, "index", json_integer(s->rs[k].index));
		json_object_set_new(p, "llr", pl);
		json_array_append_new(rs, p);
	}
	json_object_set_new(o, "restarted", rs);
	json_object_set_new(o, "restarts", json_integer(s->restarts));
	json_object_set_new(o, "since", cn_json_real(s->since));
	json_object_set_new(o, "since_ticks", json_integer(s->since_ticks));
	json_t *lm = json_array();
	for (int i = 0; i < CN_SEQ_NMAX; i++)
		json_array_append_new(lm, cn_json_real(s->llr_max[i]));
	json_object_set_new(o, "llr_max", lm);
	json_object_set_new(o, "max", cn_json_real(s->max));
	return o;
}

/* A finite stored number, else 0 (sums) */
static double finite_or_0(const json_t *j)
{
	double v = cn_json_get_real(j);
	return isfinite(v) ? v : 0;
}

static double get_sum(const json_t *o, const char *key)
{
	return finite_or_0(json_object_get(o, key));
}

static int seq_stat_from_json(const json_t *j, struct cn_seq_stat *s, struct cn_err *err)
{
	memset(s, 0, sizeof *s);
	s->tol = NAN;
	s->threshold = NAN;
	s->max = NAN;
	s->upper_best = INFINITY;
	if (!j || json_is_null(j))
		return 0; /* a state written before the sequential judge existed */
	const json_t *llr = json_object_get(j, "llr");
	if (!json_is_object(j) || !json_is_array(llr) || json_array_size(llr) != CN_SEQ_NGRID)
		return cn_fail(err, CN_EINTERNAL, "stored sequential test is malformed");
	for (int i = 0; i < CN_SEQ_NGRID; i++)
		s->llr[i] = cn_json_get_real(json_array_get(llr, (size_t)i));
	s->llr_tol = get_sum(j, "llr_tol");
	s->tol = cn_json_get_real(json_object_get(j, "tol"));
	s->threshold = cn_json_get_real(json_object_get(j, "threshold"));
	s->x_c = get_sum(j, "x_c");
	s->x_b = get_sum(j, "x_b");
	s->n_c = get_sum(j, "n_c");
	s->n_b = get_sum(j, "n_b");
	s->disp_xx_n = get_sum(j, "disp_xx_n");
	s->disp_x = get_sum(j, "disp_x");
	s->disp_n = get_sum(j, "disp_n");
	s->disp_ticks = (int)json_integer_value(json_object_get(j, "disp_ticks"));
	/* absent in states written before the candidate's dispersion was kept: 0, it starts from the next tick */
	s->disp_c_ss = get_sum(j, "disp_c_ss");
	s->disp_c_x = get_sum(j, "disp_c_x");
	s->disp_c_n = get_sum(j, "disp_c_n");
	s->disp_c_prev_x = get_sum(j, "disp_c_prev_x");
	s->disp_c_prev_n = get_sum(j, "disp_c_prev_n");
	s->disp_c_terms = (int)json_integer_value(json_object_get(j, "disp_c_terms"));
	s->disp_c_max = get_sum(j, "disp_c_max"); /* absent before it was kept: 0, nothing left out */
	s->upper_best = cn_json_get_real(json_object_get(j, "upper_best"));
	if (!(s->upper_best > 0) || !isfinite(s->upper_best))
		s->upper_best = INFINITY; /* none yet, or a state written before it was kept */
	s->ticks = (int)json_integer_value(json_object_get(j, "ticks"));
	/* absent in states written before restarts and the max test: none yet, they start from the next tick */
	const json_t *rs = json_object_get(j, "restarted"), *lm = json_object_get(j, "llr_max");
	if ((rs && !json_is_array(rs)) || json_array_size(rs) > CN_SEQ_NRESTART ||
	    (lm && (!json_is_array(lm) || json_array_size(lm) != CN_SEQ_NMAX)))
		return cn_fail(err, CN_EINTERNAL, "stored sequential test is malformed");
	s->restarts = (int)json_integer_value(json_object_get(j, "restarts"));
	for (size_t k = 0; k < json_array_size(rs); k++) {
		const json_t *p = json_array_get(rs, k), *pl = json_object_get(p, "llr");
		int index = (int)json_integer_value(json_object_get(p, "index"));
		if (!json_is_array(pl) || json_array_size(pl) != CN_SEQ_NROLL || index < 1 || index > s->restarts)
			return cn_fail(err, CN_EINTERNAL, "stored sequential test is malformed");
		s->rs[k].index = index;
		for (int i = 0; i < CN_SEQ_NROLL; i++)
			s->rs[k].llr[i] = finite_or_0(json_array_get(pl, (size_t)i));
		s->nrs++;
	}
	s->since = get_sum(j, "since");
	s->since_ticks = (int)json_integer_value(json_object_get(j, "since_ticks"));
	for (int i = 0; lm && i < CN_SEQ_NMAX; i++)
		s->llr_max[i] = finite_or_0(json_array_get(lm, (size_t)i));
	s->max = cn_json_get_real(json_object_get(j, "max"));
	return 0;
}

json_t *cn_state_to_json(const struct cn_rollout_state *st)
{
	json_t *o = json_object();
	json_object_set_new(o, "phase", json_integer(st->phase));
	json_object_set_new(o, "paused_from", json_integer(st->paused_from));
	json_object_set_new(o, "step", json_integer(st->step));
	json_object_set_new(o, "weight", json_real(st->weight));
	json_object_set_new(o, "step_started_ms", json_integer(st->step_started_ms));
	json_object_set_new(o, "last_tick_ms", json_integer(st->last_tick_ms));
	json_object_set_new(o, "waiting_since_ms", json_integer(st->waiting_since_ms));
	json_object_set_new(o, "failing_ticks", json_integer(st->failing_ticks));
	json_object_set_new(o, "inconclusive_since_ms", json_integer(st->inconclusive_since_ms));
	json_object_set_new(o, "approved", json_boolean(st->approved));
	json_object_set_new(o, "have_last", json_boolean(st->have_last));
	if (st->have_last) {
		json_object_set_new(o, "last_at_ms", json_integer(st->last.at_ms));
		json_object_set_new(o, "last_baseline", cn_sample_to_json(&st->last.baseline));
		json_object_set_new(o, "last_candidate", cn_sample_to_json(&st->last.candidate));
	}
	json_object_set_new(o, "acc_baseline", counters_to_json(&st->acc_baseline));
	json_object_set_new(o, "ref_baseline", counters_to_json(&st->ref_baseline));
	json_object_set_new(o, "acc_candidate", counters_to_json(&st->acc_candidate));
	/* Trailing SLO slots that are exactly what cn_state_from_json makes of a missing one (the policy has fewer
	 * SLOs) are left out: 13 of 16 slots were 6.6 kB of a 14 kB state, written and read at every tick. */
	struct cn_seq_stat fresh;
	seq_stat_from_json(NULL, &fresh, NULL);
	int nslots = CN_MAX_SLOS;
	while (nslots > 0 && memcmp(&st->seq.slo[nslots - 1], &fresh, sizeof fresh) == 0)
		nslots--;
	json_t *seq = json_object(), *slos = json_array();
	for (int i = 0; i < nslots; i++)
		json_array_append_new(slos, seq_stat_to_json(&st->seq.slo[i]));
	json_object_set_new(seq, "slos", slos);
	json_object_set_new(seq, "srm", seq_stat_to_json(&st->seq.srm));
	json_object_set_new(o, "seq", seq);
	return o;
}

static int64_t get_int(const json_t *o, const char *key)
{
	return (int64_t)json_integer_value(json_object_get(o, key));
}

int cn_state_from_json(const json_t *j, struct cn_rollout_state *out, struct cn_err *err)
{
	/* straight into *out: a copy through the heap made every tick allocate 31 kB (and glibc then consolidate
	 * every small chunk jansson had freed) */
	struct cn_rollout_state *st = out;
	int rc = 0;
	memset(st, 0, sizeof *st);
	if (!json_is_object(j)) {
		rc = cn_fail(err, CN_EINTERNAL, "stored rollout state is not an object");
		goto out;
	}
	int64_t phase = get_int(j, "phase");
	int64_t paused_from = get_int(j, "paused_from");
	if (phase < CN_PHASE_PENDING || phase > CN_PHASE_FAILED || paused_from < CN_PHASE_PENDING ||
	    paused_from > CN_PHASE_FAILED) {
		rc = cn_fail(err, CN_EINTERNAL, "stored rollout state has an unknown phase %lld", (long long)phase);
		goto out;
	}
	st->phase = (enum cn_phase)phase;
	st->paused_from = (enum cn_phase)paused_from;
	st->step = (int)get_int(j, "step");
	st->weight = cn_json_get_real(json_object_get(j, "weight"));
	st->step_started_ms = get_int(j, "step_started_ms");
	st->last_tick_ms = get_int(j, "last_tick_ms");
	st->waiting_since_ms = get_int(j, "waiting_since_ms");
	st->failing_ticks = (int)get_int(j, "failing_ticks");
	st->inconclusive_since_ms = get_int(j, "inconclusive_since_ms");
	st->approved = json_is_true(json_object_get(j, "approved"));
	st->have_last = json_is_true(json_object_get(j, "have_last"));
	if (st->have_last) {
		st->last.at_ms = get_int(j, "last_at_ms");
		if ((rc = cn_sample_from_json(json_object_get(j, "last_baseline"), &st->last.baseline, err)) < 0 ||
		    (rc = cn_sample_from_json(json_object_get(j, "last_candidate"), &st->last.candidate, err)) < 0)
			goto out;
	}
	if ((rc = counters_from_json(json_object_get(j, "acc_baseline"), &st->acc_baseline, err)) < 0 ||
	    (rc = counters_from_json(json_object_get(j, "acc_candidate"), &st->acc_candidate, err)) < 0)
		goto out;
	/* states saved before the frozen reference existed have none: an empty one (nothing frozen yet) */
	if (json_object_get(j, "ref_baseline") &&
	    (rc = counters_from_json(json_object_get(j, "ref_baseline"), &st->ref_baseline, err)) < 0)
		goto out;
	const json_t *seq = json_object_get(j, "seq");
	const json_t *slos = json_object_get(seq, "slos");
	for (int i = 0; i < CN_MAX_SLOS; i++)
		if ((rc = seq_stat_from_json(json_array_get(slos, (size_t)i), &st->seq.slo[i], err)) < 0)
			goto out;
	if ((rc = seq_stat_from_json(json_object_get(seq, "srm"), &st->seq.srm, err)) < 0)
		goto out;
out:
	return rc;
}

json_t *cn_slo_results_to_json(const struct cn_policy *p, const struct cn_slo_result *r, int n)
{
	static const char *verdicts[] = {"pass", "fail", "inconclusive"};
	json_t *a = json_array();
	for (int i = 0; i < n; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "slo", json_string(i < p->nslos ? p->slos[i].name : "?"));
		json_object_set_new(o, "verdict", json_string(verdicts[r[i].verdict]));
		json_object_set_new(o, "candidate", cn_json_real(r[i].candidate));
		json_object_set_new(o, "baseline", cn_json_real(r[i].baseline));
		json_object_set_new(o, "objective", cn_json_real(r[i].objective));
		json_object_set_new(o, "n_candidate", cn_json_real(r[i].n_candidate));
		json_object_set_new(o, "n_baseline", cn_json_real(r[i].n_baseline));
		json_object_set_new(o, "why", json_string(r[i].why));
		if (i < p->nslos && CN_METRIC_IS_ECON(p->slos[i].metric)) {
			/* unit economics: the candidate/baseline ratio and its confidence bound's far end */
			json_object_set_new(o, "ratio", cn_json_real(r[i].ratio));
			json_object_set_new(o, "ratio_upper", cn_json_real(r[i].ratio_upper));
		}
		if (!isnan(r[i].boundary)) {
			/* the sequential judge's numbers; ratio_upper null = no bound yet */
			json_object_set_new(o, "statistic", cn_json_real(r[i].statistic));
			json_object_set_new(o, "boundary", cn_json_real(r[i].boundary));
			json_object_set_new(o, "ratio", cn_json_real(r[i].ratio));
			json_object_set_new(o, "ratio_upper", cn_json_real(r[i].ratio_upper));
			json_object_set_new(o, "tolerance", cn_json_real(r[i].tolerance));
			json_object_set_new(o, "threshold", cn_json_real(r[i].threshold));
			json_object_set_new(o, "dispersion", cn_json_real(r[i].dispersion));
			json_object_set_new(o, "promotable", json_boolean(r[i].promotable));
			json_object_set_new(o, "plausible", json_boolean(r[i].plausible));
		}
		json_array_append_new(a, o);
	}
	return a;
}

json_t *cn_econ_view_to_json(const struct cn_econ_view *v)
{
	if (!v->have)
		return NULL;
	char line[CN_ECON_LINE_MAX];
	json_t *o = json_object(), *arms = json_object(), *fs = json_array();
	static const char *const arm[2] = { "candidate", "baseline" };
	for (int a = 0; a < 2 && arms; a++)
		json_object_set_new(arms, arm[a], json_pack("{s:o, s:o, s:o, s:o, s:o}", "tokens_per_second",
							   cn_json_real(v->tps[a]), "cost_per_1k_tokens",
							   cn_json_real(v->cost_1k[a]), "tokens", cn_json_real(v->tokens[a]),
							   "prompt_tokens", cn_json_real(v->prompt_tokens[a]),
							   "slot_cost_per_hour", cn_json_real(v->slot_cost_per_hour[a])));
	for (int i = 0; fs && i < v->nfeatures && i < CN_MAX_FEATURES; i++) {
		const struct cn_econ_feature *f = &v->f[i];
		json_array_append_new(fs, json_pack("{s:s, s:[o, o], s:[o, o], s:[o, o]}", "name", f->name, "tokens",
						    cn_json_real(f->tokens[0]), cn_json_real(f->tokens[1]), "latency_mean",
						    cn_json_real(f->latency_mean[0]), cn_json_real(f->latency_mean[1]),
						    "cost_per_1k_tokens", cn_json_real(f->cost_1k[0]),
						    cn_json_real(f->cost_1k[1])));
	}
	json_object_set_new(o, "arms", arms);
	json_object_set_new(o, "features", fs);
	json_object_set_new(o, "features_dropped", json_integer(v->dropped));
	json_object_set_new(o, "features_line", json_string(cn_econ_features_line(v, line, sizeof line)));
	return o;
}

void cn_slo_results_add_econ(json_t *slos, const struct cn_policy *p, const struct cn_econ_view *v)
{
	char line[CN_ECON_LINE_MAX];
	if (!v->have || !json_is_array(slos) || !cn_econ_features_line(v, line, sizeof line)[0])
		return;
	for (size_t i = 0; i < json_array_size(slos) && i < (size_t)p->nslos; i++)
		if (CN_METRIC_IS_ECON(p->slos[i].metric))
			json_object_set_new(json_array_get(slos, i), "features", json_string(line));
}
