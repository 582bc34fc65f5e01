/* The SLA ledger's arithmetic: UTC months (28, 29, 30, 31 days), windows judged on summed bucket counts (not on
 * per-minute quantiles), the boundary of a latency limit, minutes without data under `miss` and `exclude`, pending
 * minutes, month-long availability and the credit table. Table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/sla.h"

#define MIN_US 60000000LL

/* ---- months ---- */

struct month_case {
	const char *s;
	int rc;
	int days;
	int64_t start_s; /* seconds since the epoch */
};

static const struct month_case months[] = {
	{ "2026-11", 0, 30, 1793491200 },  { "2026-02", 0, 28, 1769904000 }, { "2024-02", 0, 29, 1706745600 },
	{ "2026-12", 0, 31, 1796083200 },
	{ "1970-01", 0, 31, 0 },           { "2026-13", -CN_EINPUT, 0, 0 }, { "2026-00", -CN_EINPUT, 0, 0 },
	{ "26-11", -CN_EINPUT, 0, 0 },     { "2026/11", -CN_EINPUT, 0, 0 }, { "2026-1x", -CN_EINPUT, 0, 0 },
	{ "1969-12", -CN_EINPUT, 0, 0 },   { "", -CN_EINPUT, 0, 0 },
};

static void test_months(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof months / sizeof months[0]; i++) {
		const struct month_case *c = &months[i];
		int64_t s = -1, e = -1;
		int days = -1;
		struct cn_err err = {0};
		int rc = cn_sla_month(c->s, &s, &e, &days, &err);
		if (rc != c->rc)
			fail_msg("%s: rc %d (%s), wanted %d", c->s, rc, err.msg, c->rc);
		if (rc < 0) {
			assert_int_equal(s, -1); /* untouched */
			continue;
		}
		assert_int_equal(days, c->days);
		assert_int_equal(e - s, (int64_t)c->days * 86400 * 1000000);
		assert_int_equal(s, c->start_s * 1000000);
	}
	/* December ends where January starts */
	int64_t s1, e1, s2, e2;
	int d;
	struct cn_err err = {0};
	assert_int_equal(cn_sla_month("2026-12", &s1, &e1, &d, &err), 0);
	assert_int_equal(cn_sla_month("2027-01", &s2, &e2, &d, &err), 0);
	assert_int_equal(e1, s2);
	assert_int_equal(s2, (int64_t)1798761600 * 1000000); /* 2027-01-01T00:00:00Z */
}

/* ---- a synthetic ledger ---- */

static const double LE[] = {0.1, 0.2, 0.5, 1.0, INFINITY};
#define NB 5

struct fake {
	struct cn_sla_bounds bounds[2];
	struct cn_sla_minute *m;
	int32_t (*lat)[NB];
	size_t n;
};

/* n minutes from start, each with `req` requests, `err` errors and req observations: fast ones in the first bucket
 * and `slow` in the (0.5, 1.0] bucket. Minutes listed in gaps[] (-1 ends) are recorded without data; minutes in
 * skip[] are not recorded at all. */
static void fake_fill(struct fake *f, int64_t start, size_t n, double req, double errs, int slow, const int *gaps,
		      const int *skip)
{
	f->bounds[0] = (struct cn_sla_bounds){.id = 1, .n = NB, .le = LE};
	f->m = calloc(n, sizeof *f->m);
	f->lat = calloc(n, sizeof *f->lat);
	assert_non_null(f->m);
	assert_non_null(f->lat);
	f->n = 0;
	for (size_t i = 0; i < n; i++) {
		bool skipped = false, gap = false;
		for (const int *g = skip; g && *g >= 0; g++)
			skipped |= (size_t)*g == i;
		for (const int *g = gaps; g && *g >= 0; g++)
			gap |= (size_t)*g == i;
		if (skipped)
			continue;
		struct cn_sla_minute *mn = &f->m[f->n];
		int32_t *c = f->lat[f->n];
		mn->minute_us = start + (int64_t)i * MIN_US;
		mn->data = !gap;
		if (gap) {
			mn->requests = mn->errors = NAN;
			mn->note = "scrape failed";
		} else {
			mn->requests = req;
			mn->errors = errs;
			c[0] = (int32_t)req - slow;
			c[3] = slow;
			mn->lat_bounds = 1;
			mn->lat = c;
		}
		f->n++;
	}
}

static struct cn_sla_ledger fake_ledger(const struct fake *f)
{
	return (struct cn_sla_ledger){.bounds = f->bounds, .nbounds = 1, .minutes = f->m, .n = f->n};
}

static void fake_free(struct fake *f)
{
	free(f->m);
	free(f->lat);
}

static struct cn_sla_contract contract(int metric, const char *window, int64_t window_ms, double target, int nodata)
{
	struct cn_sla_contract c;
	memset(&c, 0, sizeof c);
	snprintf(c.name, sizeof c.name, "t");
	c.price = 1000;
	c.no_data = nodata;
	c.nobjectives = 1;
	struct cn_sla_objective *o = &c.objectives[0];
	snprintf(o->name, sizeof o->name, "o");
	o->metric = metric;
	o->quantile = 0.99;
	o->max_ms = 500;
	o->min = 0.999;
	snprintf(o->window, sizeof o->window, "%s", window);
	o->window_ms = window_ms;
	o->target = target;
	c.credits[0] = (struct cn_sla_credit){0.999, 0.10};
	c.credits[1] = (struct cn_sla_credit){0.99, 0.25};
	c.credits[2] = (struct cn_sla_credit){0.95, 1.00};
	c.ncredits = 3;
	return c;
}

/* ---- windows ---- */

struct win_case {
	const char *what;
	const char *month;
	int nodata;               /* contract's no_data */
	int64_t window_ms;
	int slow;                 /* observations above 500 ms per minute, of 100 */
	int gaps[4], skip[4];     /* -1 ends */
	int64_t now_min;          /* minutes after the month's start; -1: after its end */
	size_t nwindows, met, missed, nodata_w, pending;
	double attainment;
	double credit;
};

static const struct win_case wins[] = {
	/* exactly 1% above the limit: p99 is at the limit, met (the boundary belongs to the objective) */
	{ "at the limit", "2026-11", CN_SLA_NODATA_MISS, 300000, 1, {-1}, {-1}, -1, 8640, 8640, 0, 0, 0, 1.0, 0 },
	{ "above the limit", "2026-11", CN_SLA_NODATA_MISS, 300000, 2, {-1}, {-1}, -1, 8640, 0, 8640, 0, 0, 0.0, 1.0 },
	/* 28 and 31 days */
	{ "february", "2026-02", CN_SLA_NODATA_MISS, 300000, 0, {-1}, {-1}, -1, 8064, 8064, 0, 0, 0, 1.0, 0 },
	{ "january, hourly", "2026-01", CN_SLA_NODATA_MISS, 3600000, 0, {-1}, {-1}, -1, 744, 744, 0, 0, 0, 1.0, 0 },
	/* a scrape that failed and a minute nobody recorded: two windows without data */
	{ "no data, miss", "2026-02", CN_SLA_NODATA_MISS, 300000, 0, {7, -1}, {100, -1}, -1, 8064, 8062, 0, 2, 0,
	  8062.0 / 8064, 0 },
	{ "no data, exclude", "2026-02", CN_SLA_NODATA_EXCLUDE, 300000, 0, {7, -1}, {100, -1}, -1, 8064, 8062, 0, 2, 0,
	  1.0, 0 },
	/* as of minute 62: twelve windows over, the thirteenth under way */
	{ "pending", "2026-11", CN_SLA_NODATA_MISS, 300000, 0, {-1}, {-1}, 62, 8640, 12, 0, 0, 8628, 1.0, 0 },
	{ "nothing over yet", "2026-11", CN_SLA_NODATA_MISS, 300000, 0, {-1}, {-1}, 0, 8640, 0, 0, 0, 8640, NAN, 0 },
};

static void test_windows(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof wins / sizeof wins[0]; i++) {
		const struct win_case *c = &wins[i];
		int64_t s, e;
		int days;
		struct cn_err err = {0};
		assert_int_equal(cn_sla_month(c->month, &s, &e, &days, &err), 0);
		int64_t now = c->now_min < 0 ? e + MIN_US : s + c->now_min * MIN_US;
		int64_t recorded = (c->now_min < 0 ? (e - s) / MIN_US : c->now_min);
		struct fake f;
		fake_fill(&f, s, (size_t)recorded, 100, 0, c->slow, c->gaps, c->skip);
		struct cn_sla_ledger l = fake_ledger(&f);
		struct cn_sla_contract ct = contract(CN_SLA_LATENCY, "5m", c->window_ms, 0.99, c->nodata);
		struct cn_sla_result *r = NULL;
		assert_int_equal(cn_sla_evaluate(&ct, &l, s, e, now, &r, &err), 0);
		const struct cn_sla_objective_result *o = &r->objectives[0];
		if (o->nwindows != c->nwindows || o->met != c->met || o->missed != c->missed || o->nodata != c->nodata_w ||
		    o->pending != c->pending)
			fail_msg("%s: windows %zu met %zu missed %zu nodata %zu pending %zu", c->what, o->nwindows, o->met,
				 o->missed, o->nodata, o->pending);
		if (isnan(c->attainment) ? !isnan(o->attainment) : fabs(o->attainment - c->attainment) > 1e-12)
			fail_msg("%s: attainment %.9f, wanted %.9f", c->what, o->attainment, c->attainment);
		if (fabs(r->credit - c->credit) > 1e-12 || fabs(r->credit_amount - c->credit * 1000) > 1e-9)
			fail_msg("%s: credit %g (%g), wanted %g", c->what, r->credit, r->credit_amount, c->credit);
		cn_sla_result_free(r);
		fake_free(&f);
	}
}

/* The window's p99 comes from the summed buckets: a slow minute inside a busy window does not miss it, although its
 * own p99 is far above the limit (a maximum or mean of per-minute p99s would say missed). */
static void test_quantile_from_buckets(void **state)
{
	(void)state;
	int64_t s, e;
	int days;
	struct cn_err err = {0};
	assert_int_equal(cn_sla_month("2026-11", &s, &e, &days, &err), 0);
	struct fake f;
	fake_fill(&f, s, 5, 1000, 0, 0, NULL, NULL);
	f.lat[4][0] = 95; /* the fifth minute: 100 observations, 5 of them slow (its own p99 is ~0.9 s) */
	f.lat[4][3] = 5;
	struct cn_sla_ledger l = fake_ledger(&f);
	struct cn_sla_contract ct = contract(CN_SLA_LATENCY, "5m", 300000, 0.99, CN_SLA_NODATA_EXCLUDE);
	struct cn_sla_result *r = NULL;
	assert_int_equal(cn_sla_evaluate(&ct, &l, s, e, s + 5 * MIN_US, &r, &err), 0);
	const struct cn_sla_window *w = &r->objectives[0].windows[0];
	assert_int_equal(w->state, CN_SLA_MET);
	assert_true(w->total == 4100 && w->bad == 5);
	assert_true(w->value < 0.1); /* p99 of 4,100 observations of which 5 are slow: in the first bucket */
	cn_sla_result_free(r);
	/* 45 slow of 4,100 is above 1%: missed, and the p99 is in the slow bucket */
	f.lat[4][0] = 55;
	f.lat[4][3] = 45;
	assert_int_equal(cn_sla_evaluate(&ct, &l, s, e, s + 5 * MIN_US, &r, &err), 0);
	w = &r->objectives[0].windows[0];
	assert_int_equal(w->state, CN_SLA_MISSED);
	assert_true(w->value > 0.5 && w->value <= 1.0);
	cn_sla_result_free(r);
	/* a minute with counters but without the latency histogram has no numbers for a latency objective: its window
	 * is no data, never a pass on the other minutes (availability still counts the minute) */
	f.m[4].lat = NULL;
	f.m[4].lat_bounds = 0;
	assert_int_equal(cn_sla_evaluate(&ct, &l, s, e, s + 5 * MIN_US, &r, &err), 0);
	assert_int_equal(r->objectives[0].windows[0].state, CN_SLA_NODATA);
	assert_int_equal(r->objectives[0].minutes_nodata, 1);
	assert_int_equal(r->minutes_nodata, 0);
	cn_sla_result_free(r);
	fake_free(&f);
}

/* Month-long availability: the share of good requests; under `miss` a minute without data counts as an average
 * minute that was all bad. */
struct avail_case {
	const char *what;
	const char *month;
	int nodata;
	double errs;      /* per minute, of 10,000 */
	int ngaps;        /* minutes without data, the first ones */
	double attainment;
	bool ok;
	double credit;
};

static const struct avail_case avails[] = {
	{ "99.95%", "2026-11", CN_SLA_NODATA_MISS, 5, 0, 0.9995, true, 0 },
	{ "exactly 99.9%", "2026-11", CN_SLA_NODATA_MISS, 10, 0, 0.999, true, 0 },
	{ "99.8%", "2026-11", CN_SLA_NODATA_MISS, 20, 0, 0.998, false, 0.10 },
	{ "98%", "2026-12", CN_SLA_NODATA_MISS, 200, 0, 0.98, false, 0.25 },
	{ "no data, miss", "2026-02", CN_SLA_NODATA_MISS, 0, 403, 1.0 - 403.0 / 40320, false, 0.10 },
	{ "no data, exclude", "2026-02", CN_SLA_NODATA_EXCLUDE, 0, 403, 1.0, true, 0 },
};

static void test_availability(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof avails / sizeof avails[0]; i++) {
		const struct avail_case *c = &avails[i];
		int64_t s, e;
		int days;
		struct cn_err err = {0};
		assert_int_equal(cn_sla_month(c->month, &s, &e, &days, &err), 0);
		size_t n = (size_t)((e - s) / MIN_US);
		int gaps[404];
		int k = 0;
		for (; k < c->ngaps && k < 403; k++)
			gaps[k] = k;
		gaps[k] = -1;
		struct fake f;
		fake_fill(&f, s, n, 10000, c->errs, 0, gaps, NULL);
		struct cn_sla_ledger l = fake_ledger(&f);
		struct cn_sla_contract ct = contract(CN_SLA_AVAILABILITY, "month", 0, NAN, c->nodata);
		struct cn_sla_result *r = NULL;
		assert_int_equal(cn_sla_evaluate(&ct, &l, s, e, e, &r, &err), 0);
		const struct cn_sla_objective_result *o = &r->objectives[0];
		if (fabs(o->attainment - c->attainment) > 1e-12 || o->ok != c->ok || fabs(r->credit - c->credit) > 1e-12)
			fail_msg("%s: attainment %.9f ok %d credit %g; wanted %.9f %d %g", c->what, o->attainment, o->ok,
				 r->credit, c->attainment, c->ok, c->credit);
		assert_int_equal(o->nwindows, 1);
		assert_int_equal(o->windows[0].state, c->ok ? CN_SLA_MET : CN_SLA_MISSED);
		assert_int_equal(r->minutes_nodata, c->ngaps);
		assert_int_equal(r->days, days);
		cn_sla_result_free(r);
		fake_free(&f);
	}
}

/* The credit table: the largest credit whose `below` the attainment is under; the boundary earns nothing. */
static void test_credit_table(void **state)
{
	(void)state;
	struct cn_sla_contract c = contract(CN_SLA_AVAILABILITY, "month", 0, NAN, 0);
	const struct {
		double att, credit;
	} t[] = {{1.0, 0}, {0.999, 0}, {0.99899, 0.10}, {0.99, 0.10}, {0.985, 0.25}, {0.95, 0.25}, {0.5, 1.0},
		 {NAN, 0}};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (fabs(cn_sla_credit_for(&c, &c.objectives[0], t[i].att) - t[i].credit) > 1e-12)
			fail_msg("attainment %g: credit %g, wanted %g", t[i].att,
				 cn_sla_credit_for(&c, &c.objectives[0], t[i].att), t[i].credit);
	/* an objective's own table replaces the contract's */
	c.objectives[0].credits[0] = (struct cn_sla_credit){0.9999, 0.05};
	c.objectives[0].ncredits = 1;
	assert_true(fabs(cn_sla_credit_for(&c, &c.objectives[0], 0.999) - 0.05) < 1e-12);
	assert_true(fabs(cn_sla_credit_for(&c, &c.objectives[0], 0.5) - 0.05) < 1e-12);
	assert_true(cn_sla_credit_for(&c, &c.objectives[0], 0.99995) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_months),
		cmocka_unit_test(test_windows),
		cmocka_unit_test(test_quantile_from_buckets),
		cmocka_unit_test(test_availability),
		cmocka_unit_test(test_credit_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
