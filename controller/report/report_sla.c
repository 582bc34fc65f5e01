/* The SLA month's HTML page (canary/report_sla.h): a summary, then per objective its numbers and, for windowed
 * objectives, an SVG of every window's value against the objective (missed windows as red marks on the line, windows
 * without data as grey bands), and the table of the windows that missed or had no data. The page's helpers are the
 * rollout report's (report_html_int.h). */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "canary/report_html.h"
#include "canary/report_sla.h"
#include "canary/sla.h"
#include "report_html_int.h"

#define US_PER_MS 1000

static const char SLA_CSS[] = ".s-val{fill:none;stroke:#1f4e79;stroke-width:1.2}"
			      ".miss{fill:#b2182b}.nodata{fill:#999;fill-opacity:.35}"
			      ".ok{color:#1b7837;font-weight:700}.bad{color:#b2182b;font-weight:700}";

/* The objective in words: "p99 latency <= 800ms per 5m window, in 99% of windows". */
static void describe(struct cn_dynbuf *b, const struct cn_sla_objective *o)
{
	if (o->metric == CN_SLA_AVAILABILITY)
		rh_putf(b, "availability \xe2\x89\xa5 %g%%", o->min * 100);
	else
		rh_putf(b, "p%g %s \xe2\x89\xa4 %lld ms", o->quantile * 100, o->metric == CN_SLA_LATENCY ? "latency" : "TTFT",
			(long long)o->max_ms);
	if (o->window_ms == 0)
		rh_put(b, " over the month");
	else
		rh_putf(b, " per %s window, in %g%% of windows", o->window, o->target * 100);
}

static void chart(struct cn_dynbuf *b, const struct cn_sla_page *p, const struct cn_sla_objective_result *or)
{
	const struct cn_sla_objective *o = or->obj;
	const struct cn_sla_result *r = p->result;
	const double top = 30, h = 180, bottom = top + h;
	struct rh_axis ax = {r->month_start_us / US_PER_MS, r->month_end_us / US_PER_MS};
	bool avail = o->metric == CN_SLA_AVAILABILITY;
	double limit = avail ? o->min : (double)o->max_ms / 1000.0, vmax = avail ? 1.0 : limit * 1.5, vmin = 0;
	for (size_t i = 0; i < or->nwindows; i++)
		if (!avail && isfinite(or->windows[i].value) && or->windows[i].value > vmax)
			vmax = or->windows[i].value;
	if (avail) { /* zoom on the interesting part: from just below the worst window or the objective */
		vmin = limit - (1 - limit);
		for (size_t i = 0; i < or->nwindows; i++)
			if (isfinite(or->windows[i].value) && or->windows[i].value < vmin)
				vmin = or->windows[i].value;
		vmin = vmin < 0 ? 0 : vmin;
	} else {
		double st = rh_nice_step(vmax);
		vmax = ceil(vmax / st) * st;
	}
	double span = vmax - vmin > 0 ? vmax - vmin : 1;
#define YAT(v) (bottom - h * (((v) < vmin ? vmin : (v) > vmax ? vmax : (v)) - vmin) / span)
	rh_putf(b, "<svg class=\"chart\" id=\"chart-%s\" viewBox=\"0 0 %d %d\" role=\"img\">", o->name, CW,
		(int)bottom + 40);
	/* y ticks */
	for (int k = 0; k <= 4; k++) {
		double v = vmin + span * k / 4;
		char lab[32];
		rh_putf(b, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", PL, YAT(v), CW - PR, YAT(v));
		rh_putf(b, "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>", PL - 6, YAT(v) + 4,
			cn_sla_value_text(o, v, "\xe2\x80\x94", lab, sizeof lab));
	}
	/* windows without data: grey bands */
	for (size_t i = 0; i < or->nwindows; i++) {
		const struct cn_sla_window *w = &or->windows[i];
		if (w->state != CN_SLA_NODATA)
			continue;
		double x0 = rh_xat(&ax, w->start_us / US_PER_MS), x1 = rh_xat(&ax, w->end_us / US_PER_MS);
		rh_putf(b, "<rect class=\"nodata\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>", x0, top,
			x1 - x0 > 1.5 ? x1 - x0 : 1.5, h);
	}
	/* the values, a line broken where a window has none */
	rh_put(b, "<path class=\"s-val\" d=\"");
	bool pen = false;
	for (size_t i = 0; i < or->nwindows; i++) {
		const struct cn_sla_window *w = &or->windows[i];
		if (!isfinite(w->value) || w->state == CN_SLA_PENDING) {
			pen = false;
			continue;
		}
		rh_putf(b, "%s%.1f %.1f", pen ? "L" : "M", rh_xat(&ax, (w->start_us + w->end_us) / 2 / US_PER_MS),
			YAT(w->value));
		pen = true;
	}
	rh_put(b, "\"/>");
	rh_putf(b, "<line class=\"s-obj\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", PL, YAT(limit), CW - PR,
		YAT(limit));
	/* missed windows: red marks */
	for (size_t i = 0; i < or->nwindows; i++) {
		const struct cn_sla_window *w = &or->windows[i];
		if (w->state == CN_SLA_MISSED)
			rh_putf(b, "<circle class=\"miss\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\"/>",
				rh_xat(&ax, (w->start_us + w->end_us) / 2 / US_PER_MS), YAT(isfinite(w->value) ? w->value : limit));
	}
	rh_time_axis(b, &ax, top, bottom);
	rh_putf(b, "<text class=\"legend\" x=\"%d\" y=\"18\">blue: each window's value \xc2\xb7 dotted red: the "
		   "objective \xc2\xb7 red dots: missed (%zu) \xc2\xb7 grey: no data (%zu)</text>", PL, or->missed,
		or->nodata);
	rh_put(b, "</svg>\n");
#undef YAT
}

static void window_table(struct cn_dynbuf *b, const struct cn_sla_objective_result *or)
{
	const struct cn_sla_objective *o = or->obj;
	if (or->missed + or->nodata == 0) {
		rh_put(b, "<p class=\"note\">No window missed or lacked data.</p>\n");
		return;
	}
	rh_put(b, "<table><thead><tr><th>window (UTC)</th><th>state</th><th class=\"num\">value</th>"
		  "<th class=\"num\">requests</th><th class=\"num\">bad</th><th class=\"num\">minutes without data</th>"
		  "</tr></thead><tbody>\n");
	for (size_t i = 0; i < or->nwindows; i++) {
		const struct cn_sla_window *w = &or->windows[i];
		char t0[40], t1[40], v[32];
		if (w->state != CN_SLA_MISSED && w->state != CN_SLA_NODATA)
			continue;
		rh_putf(b, "<tr><td class=\"t\">%s \xe2\x80\x93 %s</td><td class=\"%s\">%s</td><td class=\"num\">%s</td>"
			   "<td class=\"num\">%.0f</td><td class=\"num\">%.0f</td><td class=\"num\">%d</td></tr>\n",
			rh_fmt_time(w->start_us / US_PER_MS, 3, t0, sizeof t0), rh_fmt_time(w->end_us / US_PER_MS, 3, t1, sizeof t1),
			w->state == CN_SLA_MISSED ? "bad" : "note", cn_sla_wstate_name(w->state),
			cn_sla_value_text(o, w->value, "\xe2\x80\x94", v, sizeof v), w->total, w->bad, w->nodata_minutes);
	}
	rh_put(b, "</tbody></table>\n");
}

char *cn_report_sla_html(const struct cn_sla_page *p, size_t max, size_t *len, struct cn_err *err)
{
	struct cn_dynbuf b;
	const struct cn_sla_result *r = p->result;
	const struct cn_sla_contract *c = p->contract;
	char t[64];
	cn_dynbuf_init(&b, max ? max : CN_REPORT_HTML_MAX);
	rh_put(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
		   "<meta name=\"generator\" content=\"canaryctl sla report\"><title>SLA ");
	rh_put_esc(&b, p->service);
	rh_put(&b, " ");
	rh_put_esc(&b, p->month);
	rh_put(&b, "</title><style>");
	rh_put(&b, rh_css);
	rh_put(&b, SLA_CSS);
	rh_put(&b, "</style></head>\n<body>\n<h1>SLA: ");
	rh_put_esc(&b, p->service);
	rh_put(&b, " <span class=\"sub\">");
	rh_put_esc(&b, p->month);
	rh_putf(&b, " (UTC, %d days) \xc2\xb7 contract ", r->days);
	rh_put_esc(&b, c->name);
	rh_put(&b, "</span></h1>\n<div class=\"summary\">");
	rh_putf(&b, "<div><span>minutes elapsed</span><b>%lld</b></div>", (long long)r->minutes_elapsed);
	rh_putf(&b, "<div><span>minutes without data</span><b>%lld</b></div>", (long long)r->minutes_nodata);
	rh_putf(&b, "<div><span>credit owed%s</span><b id=\"credit\">%g%% = %.2f ", r->now_us < r->month_end_us ?
		" so far" : "", r->credit * 100, r->credit_amount);
	rh_put_esc(&b, c->currency);
	rh_put(&b, "</b></div><div><span>minutes without data count as</span><b>");
	rh_put(&b, c->no_data == CN_SLA_NODATA_MISS ? "missed" : "left out");
	rh_put(&b, "</b></div></div>\n");
	for (int k = 0; k < r->nobjectives; k++) {
		const struct cn_sla_objective_result *or = &r->objectives[k];
		char a[32];
		rh_put(&b, "<h2>");
		rh_put_esc(&b, or->obj->name);
		rh_put(&b, " <span class=\"sub\">");
		describe(&b, or->obj);
		rh_put(&b, "</span></h2>\n<p>attainment ");
		if (isfinite(or->attainment))
			snprintf(a, sizeof a, "%.4f%%", or->attainment * 100);
		else
			snprintf(a, sizeof a, "\xe2\x80\x94");
		rh_putf(&b, "<b>%s</b> <span class=\"%s\">%s</span>; windows met %zu, missed %zu, without data %zu, "
			    "pending %zu; credit %g%%</p>\n", a, or->ok ? "ok" : "bad", or->ok ? "met" : "not met", or->met,
			or->missed, or->nodata, or->pending, or->credit * 100);
		if (or->obj->window_ms > 0) {
			chart(&b, p, or);
			window_table(&b, or);
		}
	}
	rh_put(&b, "<footer>Generated by canaryctl sla report at ");
	rh_put(&b, rh_fmt_time(r->now_us / US_PER_MS, 0, t, sizeof t));
	rh_put(&b, " from the canary database's ledger and ");
	rh_put_esc(&b, p->contract_file);
	rh_put(&b, ". Times are UTC.</footer>\n</body></html>\n");
	char *page = NULL;
	if (cn_dynbuf_error(&b) == -CN_EINPUT)
		cn_fail(err, CN_EINPUT, "the SLA page would exceed %zu bytes; use --output csv or json", b.max);
	else if (cn_dynbuf_error(&b) < 0 || !(page = cn_dynbuf_take(&b, len)))
		cn_fail(err, CN_EINTERNAL, "out of memory rendering the SLA page");
	cn_dynbuf_free(&b);
	return page;
}
