/* The SLA ledger's arithmetic: one month of a service's minutes judged against a contract. A window's quantile is
 * computed from the minutes' bucket counts summed over the window (quantiles of minutes cannot be merged); whether
 * it met a latency objective is decided on the observations above the limit, which can be summed even across a
 * change of bucket layout. Minutes without data count as the contract says, never as a silent pass. */
#include "canary/sla.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/bug.h"
#include "canary/judge.h"

#define US_PER_MIN 60000000LL

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int cn_sla_month(const char *s, int64_t *start_us, int64_t *end_us, int *days, struct cn_err *err)
{
	int y = 0, m = 0;
	if (!s || strlen(s) != 7 || s[4] != '-')
		return cn_fail(err, CN_EINPUT, "month '%s' is not YYYY-MM (e.g. 2026-11)", s ? s : "");
	for (int i = 0; i < 7; i++) {
		if (i == 4)
			continue;
		if (s[i] < '0' || s[i] > '9')
			return cn_fail(err, CN_EINPUT, "month '%s' is not YYYY-MM (e.g. 2026-11)", s);
		if (i < 4)
			y = y * 10 + (s[i] - '0');
		else
			m = m * 10 + (s[i] - '0');
	}
	if (y < 1970 || m < 1 || m > 12)
		return cn_fail(err, CN_EINPUT, "month '%s' is out of range (years from 1970, months 01..12)", s);
	int64_t d0 = days_from_civil(y, m, 1);
	int64_t d1 = m == 12 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, m + 1, 1);
	*start_us = d0 * 86400LL * 1000000LL;
	*end_us = d1 * 86400LL * 1000000LL;
	*days = (int)(d1 - d0);
	return 0;
}

static const struct cn_sla_bounds *find_bounds(const struct cn_sla_ledger *l, int id)
{
	for (size_t i = 0; i < l->nbounds; i++)
		if (l->bounds[i].id == id)
			return &l->bounds[i];
	return NULL;
}

bool cn_sla_minute_histogram(const struct cn_sla_ledger *l, int bounds, const int32_t *counts,
			     struct cn_histogram *out)
{
	const struct cn_sla_bounds *b = bounds > 0 && counts ? find_bounds(l, bounds) : NULL;
	if (!b || b->n < 2 || b->n > CN_MAX_BUCKETS)
		return false;
	double run = 0;
	out->nbuckets = b->n;
	for (int i = 0; i < b->n; i++) {
		run += counts[i] > 0 ? counts[i] : 0;
		out->le[i] = b->le[i];
		out->count[i] = run;
	}
	out->sum = NAN;
	return true;
}

double cn_sla_credit_for(const struct cn_sla_contract *c, const struct cn_sla_objective *o, double attainment)
{
	const struct cn_sla_credit *t = o && o->ncredits > 0 ? o->credits : c->credits;
	int n = o && o->ncredits > 0 ? o->ncredits : c->ncredits;
	double best = 0;
	if (isnan(attainment))
		return 0;
	for (int i = 0; i < n; i++)
		if (attainment < t[i].below && t[i].credit > best)
			best = t[i].credit;
	return best;
}

const char *cn_sla_metric_name(int metric)
{
	switch (metric) {
	case CN_SLA_LATENCY: return "latency";
	case CN_SLA_TTFT: return "ttft";
	case CN_SLA_AVAILABILITY: return "availability";
	}
	return "?";
}

const char *cn_sla_value_text(const struct cn_sla_objective *o, double v, const char *none, char *out, size_t size)
{
	if (!isfinite(v))
		snprintf(out, size, "%s", none);
	else if (o->metric == CN_SLA_AVAILABILITY)
		snprintf(out, size, "%.3f%%", v * 100);
	else if (v < 1)
		snprintf(out, size, "%.0f ms", v * 1000);
	else
		snprintf(out, size, "%.3g s", v);
	return out;
}

const char *cn_sla_wstate_name(int state)
{
	switch (state) {
	case CN_SLA_MET: return "met";
	case CN_SLA_MISSED: return "missed";
	case CN_SLA_NODATA: return "no data";
	case CN_SLA_PENDING: return "pending";
	}
	return "?";
}

/* What a run of minutes adds up to for one objective. */
struct acc {
	double total, bad;
	struct cn_histogram h; /* latency: the summed histogram (the latest layout) */
	bool mixed;
};

static void acc_minute(const struct cn_sla_objective *o, const struct cn_sla_ledger *l, const struct cn_sla_minute *mn,
		       struct acc *a)
{
	if (!mn->data)
		return;
	if (o->metric == CN_SLA_AVAILABILITY) {
		double req = isfinite(mn->requests) && mn->requests > 0 ? mn->requests : 0;
		double errs = isfinite(mn->errors) && mn->errors > 0 ? mn->errors : 0;
		a->total += req;
		a->bad += errs < req ? errs : req; /* a scrape between the two counters: never more errors than requests */
		return;
	}
	struct cn_histogram h;
	bool has = o->metric == CN_SLA_LATENCY ? cn_sla_minute_histogram(l, mn->lat_bounds, mn->lat, &h)
					       : cn_sla_minute_histogram(l, mn->ttft_bounds, mn->ttft, &h);
	if (!has)
		return;
	double n = h.count[h.nbuckets - 1];
	if (n <= 0)
		return;
	double above = cn_histogram_count_above(&h, (double)o->max_ms / 1000.0);
	a->total += n;
	a->bad += isfinite(above) ? (above < 0 ? 0 : above > n ? n : above) : 0;
	if (!cn_histogram_accumulate(&a->h, &h))
		a->mixed = true;
}

/* The window's value and whether the objective held in it (no requests: it held, value NAN). */
static bool acc_verdict(const struct cn_sla_objective *o, const struct acc *a, double *value)
{
	if (a->total <= 0) {
		*value = NAN;
		return true;
	}
	if (o->metric == CN_SLA_AVAILABILITY) {
		*value = 1.0 - a->bad / a->total;
		return *value >= o->min - 1e-12;
	}
	*value = cn_histogram_quantile(o->quantile, &a->h);
	return a->bad <= (1.0 - o->quantile) * a->total * (1 + 1e-12);
}

/* Whether a minute has this objective's numbers: a row with data, and for a latency objective its histogram. */
static bool minute_has(const struct cn_sla_objective *o, const struct cn_sla_minute *mn)
{
	if (!mn->data)
		return false;
	if (o->metric == CN_SLA_LATENCY)
		return mn->lat_bounds > 0 && mn->lat;
	if (o->metric == CN_SLA_TTFT)
		return mn->ttft_bounds > 0 && mn->ttft;
	return true;
}

/* Index of the minute a row belongs to, or -1 when outside the month. */
static int64_t minute_index(const struct cn_sla_minute *mn, int64_t start_us, int64_t nmin)
{
	if (mn->minute_us < start_us)
		return -1;
	int64_t m = (mn->minute_us - start_us) / US_PER_MIN;
	return m < nmin ? m : -1;
}

static int judge_month_long(const struct cn_sla_contract *c, const struct cn_sla_ledger *l, struct cn_sla_result *r,
			    struct cn_sla_objective_result *or, struct cn_err *err)
{
	const struct cn_sla_objective *o = or->obj;
	struct acc a;
	memset(&a, 0, sizeof a);
	int64_t nmin = (r->month_end_us - r->month_start_us) / US_PER_MIN;
	for (size_t i = 0; i < l->n; i++)
		if (minute_index(&l->minutes[i], r->month_start_us, nmin) >= 0)
			acc_minute(o, l, &l->minutes[i], &a);
	if (!(or->windows = calloc(1, sizeof *or->windows)))
		return cn_fail(err, CN_EINTERNAL, "out of memory judging objective '%s'", o->name);
	or->nwindows = 1;
	struct cn_sla_window *w = &or->windows[0];
	w->start_us = r->month_start_us;
	w->end_us = r->month_end_us;
	w->total = a.total;
	w->bad = a.bad;
	w->mixed_bounds = a.mixed;
	w->nodata_minutes = (int)or->minutes_nodata;
	acc_verdict(o, &a, &w->value);
	or->total = a.total;
	or->bad = a.bad;
	/* the share of good events; a minute without data counts, under `miss`, as an average minute that was all bad */
	double good = a.total > 0 ? 1.0 - a.bad / a.total : or->minutes_data > 0 ? 1.0 : NAN;
	if (r->minutes_elapsed == 0)
		good = NAN;
	else if (c->no_data == CN_SLA_NODATA_MISS)
		good = or->minutes_data > 0 ? good * (double)or->minutes_data / (double)r->minutes_elapsed : 0;
	or->attainment = good;
	double need = o->metric == CN_SLA_AVAILABILITY ? o->min : o->quantile;
	or->ok = !isnan(good) && good >= need - 1e-12;
	if (r->now_us < r->month_end_us)
		w->state = CN_SLA_PENDING;
	else
		w->state = or->ok ? CN_SLA_MET : CN_SLA_MISSED;
	or->met = w->state == CN_SLA_MET;
	or->missed = w->state == CN_SLA_MISSED;
	or->pending = w->state == CN_SLA_PENDING;
	return 0;
}

static int judge_windows(const struct cn_sla_contract *c, const struct cn_sla_ledger *l, struct cn_sla_result *r,
			 struct cn_sla_objective_result *or, const unsigned char *has, struct cn_err *err)
{
	const struct cn_sla_objective *o = or->obj;
	int64_t nmin = (r->month_end_us - r->month_start_us) / US_PER_MIN;
	int64_t per = o->window_ms / CN_SLA_MINUTE_MS;
	CN_BUG_ON(per < 1 || nmin % per != 0);
	size_t nw = (size_t)(nmin / per);
	if (!(or->windows = calloc(nw, sizeof *or->windows)))
		return cn_fail(err, CN_EINTERNAL, "out of memory judging objective '%s'", o->name);
	or->nwindows = nw;
	size_t row = 0;
	for (size_t k = 0; k < nw; k++) {
		struct cn_sla_window *w = &or->windows[k];
		int64_t m0 = (int64_t)k * per, m1 = m0 + per;
		struct acc a;
		memset(&a, 0, sizeof a);
		w->start_us = r->month_start_us + m0 * US_PER_MIN;
		w->end_us = r->month_start_us + m1 * US_PER_MIN;
		for (; row < l->n; row++) {
			int64_t m = minute_index(&l->minutes[row], r->month_start_us, nmin);
			if (l->minutes[row].minute_us < r->month_start_us)
				continue;
			if (m < 0 || m >= m1)
				break;
			acc_minute(o, l, &l->minutes[row], &a);
		}
		for (int64_t m = m0; m < m1 && m < r->minutes_elapsed; m++)
			w->nodata_minutes += !has[m];
		w->total = a.total;
		w->bad = a.bad;
		w->mixed_bounds = a.mixed;
		bool held = acc_verdict(o, &a, &w->value);
		if (m1 > r->minutes_elapsed)
			w->state = CN_SLA_PENDING;
		else if (w->nodata_minutes > 0)
			w->state = CN_SLA_NODATA;
		else
			w->state = held ? CN_SLA_MET : CN_SLA_MISSED;
		or->met += w->state == CN_SLA_MET;
		or->missed += w->state == CN_SLA_MISSED;
		or->nodata += w->state == CN_SLA_NODATA;
		or->pending += w->state == CN_SLA_PENDING;
		if (w->state != CN_SLA_PENDING) {
			or->total += a.total;
			or->bad += a.bad;
		}
	}
	size_t counted = or->met + or->missed + (c->no_data == CN_SLA_NODATA_MISS ? or->nodata : 0);
	or->attainment = counted ? (double)or->met / (double)counted : NAN;
	or->ok = !isnan(or->attainment) && or->attainment >= o->target - 1e-12;
	return 0;
}

int cn_sla_evaluate(const struct cn_sla_contract *c, const struct cn_sla_ledger *l, int64_t start_us, int64_t end_us,
		    int64_t now_us, struct cn_sla_result **out, struct cn_err *err)
{
	CN_BUG_ON(!c || !l || !out || end_us <= start_us || (end_us - start_us) % US_PER_MIN != 0);
	int64_t nmin = (end_us - start_us) / US_PER_MIN;
	struct cn_sla_result *r = calloc(1, sizeof *r);
	unsigned char *has = calloc((size_t)nmin, 1);
	int rc = -CN_EINTERNAL;
	if (!r || !has) {
		cn_fail(err, CN_EINTERNAL, "out of memory judging a month");
		goto out;
	}
	r->month_start_us = start_us;
	r->month_end_us = end_us;
	r->now_us = now_us;
	r->days = (int)(nmin / 1440);
	r->minutes_elapsed = now_us <= start_us ? 0 : now_us >= end_us ? nmin : (now_us - start_us) / US_PER_MIN;
	for (size_t i = 0; i < l->n; i++) {
		int64_t m = minute_index(&l->minutes[i], start_us, nmin);
		if (m >= 0 && m < r->minutes_elapsed && l->minutes[i].data)
			has[m] = 1;
	}
	for (int64_t m = 0; m < r->minutes_elapsed; m++)
		r->minutes_data += has[m];
	r->minutes_nodata = r->minutes_elapsed - r->minutes_data;
	r->credit_from = -1;
	r->nobjectives = c->nobjectives;
	for (int k = 0; k < c->nobjectives; k++) {
		struct cn_sla_objective_result *or = &r->objectives[k];
		or->obj = &c->objectives[k];
		memset(has, 0, (size_t)nmin);
		for (size_t i = 0; i < l->n; i++) {
			int64_t m = minute_index(&l->minutes[i], start_us, nmin);
			if (m >= 0 && m < r->minutes_elapsed && minute_has(or->obj, &l->minutes[i]))
				has[m] = 1;
		}
		for (int64_t m = 0; m < r->minutes_elapsed; m++)
			or->minutes_data += has[m];
		or->minutes_nodata = r->minutes_elapsed - or->minutes_data;
		rc = or->obj->window_ms == 0 ? judge_month_long(c, l, r, or, err) : judge_windows(c, l, r, or, has, err);
		if (rc < 0)
			goto out;
		or->credit = cn_sla_credit_for(c, or->obj, or->attainment);
		if (or->credit > r->credit) {
			r->credit = or->credit;
			r->credit_from = k;
		}
	}
	r->credit_amount = r->credit * c->price;
	*out = r;
	r = NULL;
	rc = 0;
out:
	free(has);
	cn_sla_result_free(r);
	return rc;
}

void cn_sla_result_free(struct cn_sla_result *r)
{
	if (!r)
		return;
	for (int k = 0; k < r->nobjectives; k++)
		free(r->objectives[k].windows);
	free(r);
}
