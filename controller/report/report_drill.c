/* The failover drill's report as one HTML page: a summary (outcome, timings), the numbers of each window, the last
 * verdicts, two SVG charts over the drill's ticks (the secondary's share; each slot's error rate and p99), and the
 * audit events. Pure: no I/O, no clock. Built in a capped buffer; every text from the data is escaped. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canary/dynbuf.h"
#include "canary/report_drill.h"
#include "canary/report_html.h"

#define W 900.0
#define H 170.0
#define PAD_L 60.0
#define PAD_R 20.0
#define PAD_T 24.0
#define PAD_B 28.0

static void putf(struct cn_dynbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct cn_dynbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cn_dynbuf_vaddf(b, fmt, ap);
	va_end(ap);
}

static void esc(struct cn_dynbuf *b, const char *s)
{
	char buf[2048];
	cn_dynbuf_adds(b, cn_html_escape(s ? s : "", buf, sizeof buf));
}

static const char *when(int64_t us, char *buf, size_t size)
{
	if (us == INT64_MIN) {
		snprintf(buf, size, "-");
		return buf;
	}
	time_t t = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(buf, size, "%04d-%02d-%02d %02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us / 1000 % 1000));
	return buf;
}

static const char *secs(double s, char *buf, size_t size)
{
	if (isnan(s))
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%.3fs", s);
	return buf;
}

static const char *color(enum cn_drill_phase p)
{
	switch (p) {
	case CN_DRILL_PASSED: return "#1a9850";
	case CN_DRILL_CUT_SHORT: return "#d73027";
	case CN_DRILL_ABORTED: return "#7b3294";
	case CN_DRILL_FAILED: return "#b2182b";
	default: return "#2166ac";
	}
}

static void window_row(struct cn_dynbuf *b, const char *name, const char *where, const struct cn_drill_numbers *n)
{
	putf(b, "<tr><td>%s</td><td>", name);
	esc(b, where);
	if (!(n->requests > 0)) {
		putf(b, "</td><td class=num>0</td><td class=num>-</td><td class=num>-</td><td class=num>-</td></tr>");
		return;
	}
	putf(b, "</td><td class=num>%.0f</td><td class=num>%.0f</td><td class=num>%.2f%%</td><td class=num>", n->requests,
	     n->errors, 100 * n->error_rate);
	if (isnan(n->p99_s))
		putf(b, "-</td></tr>");
	else
		putf(b, "%.3f s</td></tr>", n->p99_s);
}

/* A chart over the ticks: one polyline per series (values by tick; NAN leaves a gap), scaled to vmax. */
struct series {
	const char *label, *stroke;
	double (*value)(const struct cn_drill_tick_row *t);
};

static double v_share(const struct cn_drill_tick_row *t) { return t->weight; }
static double v_sec_err(const struct cn_drill_tick_row *t) { return 100 * t->secondary.error_rate; }
static double v_pri_err(const struct cn_drill_tick_row *t) { return 100 * t->primary.error_rate; }
static double v_sec_p99(const struct cn_drill_tick_row *t) { return t->secondary.p99_s; }
static double v_pri_p99(const struct cn_drill_tick_row *t) { return t->primary.p99_s; }

static void chart(struct cn_dynbuf *b, const struct cn_drill_report *r, const char *title, const char *unit,
		  const struct series *s, int ns)
{
	int64_t t0 = r->nticks ? r->ticks[0].at_us : 0, t1 = r->nticks ? r->ticks[r->nticks - 1].at_us : 1;
	double span = t1 > t0 ? (double)(t1 - t0) : 1, vmax = 0;
	for (int k = 0; k < ns; k++)
		for (int i = 0; i < r->nticks; i++) {
			double v = s[k].value(&r->ticks[i]);
			if (isfinite(v) && v > vmax)
				vmax = v;
		}
	if (vmax <= 0)
		vmax = 1;
	vmax *= 1.1;
	double pw = W - PAD_L - PAD_R, ph = H - PAD_T - PAD_B;
	putf(b, "<svg class=chart viewBox='0 0 %.0f %.0f' width='%.0f' height='%.0f' role=img>", W, H, W, H);
	putf(b, "<text x='%.0f' y='16' class=title>", PAD_L);
	esc(b, title);
	putf(b, "</text>");
	for (int g = 0; g <= 4; g++) {
		double y = PAD_T + ph - ph * g / 4;
		putf(b, "<line x1='%.0f' x2='%.0f' y1='%.1f' y2='%.1f' class=grid />", PAD_L, W - PAD_R, y, y);
		putf(b, "<text x='%.0f' y='%.1f' class=tick text-anchor=end>%.3g%s</text>", PAD_L - 4, y + 4, vmax * g / 4,
		     unit);
	}
	putf(b, "<text x='%.0f' y='%.0f' class=tick>0 s</text><text x='%.0f' y='%.0f' class=tick "
		"text-anchor=end>%.1f s</text>", PAD_L, H - 8, W - PAD_R, H - 8, span / 1e6);
	for (int k = 0; k < ns; k++) {
		bool open = false;
		for (int i = 0; i < r->nticks; i++) {
			double v = s[k].value(&r->ticks[i]);
			if (!isfinite(v)) {
				if (open)
					putf(b, "' />");
				open = false;
				continue;
			}
			double x = PAD_L + pw * (double)(r->ticks[i].at_us - t0) / span, y = PAD_T + ph - ph * v / vmax;
			if (!open)
				putf(b, "<polyline fill=none stroke='%s' stroke-width=2 points='", s[k].stroke);
			putf(b, "%.1f,%.1f ", x, y);
			open = true;
		}
		if (open)
			putf(b, "' />");
		putf(b, "<text x='%.0f' y='16' class=tick fill='%s'>", W - PAD_R - 200 + 100 * k, s[k].stroke);
		esc(b, s[k].label);
		putf(b, "</text>");
	}
	putf(b, "</svg>");
}

void cn_report_drill_print(FILE *f, const struct cn_drill_row *d, bool details)
{
	char a[32], b[160];
	fprintf(f, "drill %lld %s: %s, %s -> %s, hold %llds%s — %s\n", (long long)d->id, d->service,
		cn_drill_phase_name(d->phase), d->primary, d->secondary, (long long)(d->hold_ms / 1000),
		d->scheduled ? " (scheduled)" : "", d->phase == CN_DRILL_PENDING ? "waiting for canaryd" : d->reason);
	if (!details || !d->has_figures)
		return;
	const struct cn_drill_figures *g = &d->figures;
	fprintf(f, "  baseline on %s: %s\n", d->primary, cn_drill_numbers_text(&g->baseline, b, sizeof b));
	if (!isnan(g->shift_s))
		fprintf(f, "  shift to %s: %s; during the shift: %s\n", d->secondary, secs(g->shift_s, a, sizeof a),
			cn_drill_numbers_text(&g->shift, b, sizeof b));
	if (g->hold.requests > 0 || !isnan(g->hold_s))
		fprintf(f, "  hold on %s: %s; %s (on %s meanwhile: %.0f requests)\n", d->secondary,
			secs(g->hold_s, a, sizeof a), cn_drill_numbers_text(&g->hold, b, sizeof b), d->primary,
			isnan(g->hold_primary.requests) ? 0 : g->hold_primary.requests);
	if (!isnan(g->restore_s))
		fprintf(f, "  shift back to %s: %s; during the shift back: %s\n", d->primary,
			secs(g->restore_s, a, sizeof a), cn_drill_numbers_text(&g->restore, b, sizeof b));
	for (int i = 0; i < d->nslos; i++)
		fprintf(f, "  slo %s: %s — %s\n", d->slos[i].slo, d->slos[i].verdict, d->slos[i].why);
	if (d->abort_requested)
		fprintf(f, "  abort requested by %s%s%s\n", d->abort_by, d->abort_reason[0] ? ": " : "", d->abort_reason);
}

char *cn_report_drill_html(const struct cn_drill_report *r, size_t max, size_t *len, struct cn_err *err)
{
	const struct cn_drill_row *d = r->drill;
	const struct cn_drill_figures *f = &d->figures;
	struct cn_dynbuf b;
	char t[64], t2[64];
	cn_dynbuf_init(&b, max ? max : CN_REPORT_HTML_MAX);
	putf(&b, "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>drill %lld ", (long long)d->id);
	esc(&b, d->service);
	putf(&b, "</title><style>body{font:14px/1.45 system-ui,sans-serif;max-width:1000px;margin:24px auto;"
		 "padding:0 20px;color:#1a1a1a}h2{font-size:17px;border-bottom:2px solid #ddd;margin-top:26px}"
		 ".outcome{color:#fff;padding:2px 10px;border-radius:4px;font-weight:700}"
		 "table{border-collapse:collapse;width:100%%;font-size:13px}th,td{text-align:left;padding:4px 8px;"
		 "border-bottom:1px solid #e6e6e6;vertical-align:top}th{background:#f2f2f2}.num{text-align:right}"
		 "svg .grid{stroke:#e3e3e3}svg .tick{font-size:11px;fill:#444}svg .title{font-size:14px;"
		 "font-weight:600}</style></head><body>");
	putf(&b, "<h1>Failover drill %lld: ", (long long)d->id);
	esc(&b, d->service);
	putf(&b, " <span class=outcome style='background:%s'>%s</span></h1><p>", color(d->phase),
	     cn_drill_phase_name(d->phase));
	esc(&b, d->reason);
	putf(&b, "</p><table><tr><th>primary</th><td>");
	esc(&b, d->primary);
	putf(&b, "</td><th>secondary</th><td>");
	esc(&b, d->secondary);
	putf(&b, "</td><th>policy</th><td>");
	esc(&b, d->policy_name);
	putf(&b, " v%d</td></tr><tr><th>started</th><td>%s</td><th>ended</th><td>%s</td><th>by</th><td>",
	     d->policy_version, when(d->created_us, t, sizeof t), when(d->finished_us, t2, sizeof t2));
	esc(&b, d->created_by);
	putf(&b, "%s</td></tr><tr><th>time to shift</th><td>%s</td>", d->scheduled ? " (scheduled)" : "",
	     secs(f->shift_s, t, sizeof t));
	putf(&b, "<th>hold</th><td>%s of %.0f s</td>", secs(f->hold_s, t, sizeof t), (double)d->hold_ms / 1000);
	putf(&b, "<th>time to shift back</th><td>%s</td></tr></table>", secs(f->restore_s, t, sizeof t));
	if (d->abort_requested) {
		putf(&b, "<p>Abort requested by ");
		esc(&b, d->abort_by);
		if (d->abort_reason[0]) {
			putf(&b, ": ");
			esc(&b, d->abort_reason);
		}
		putf(&b, "</p>");
	}
	putf(&b, "<h2>Windows</h2><table><tr><th>window</th><th>where</th><th class=num>requests</th>"
		 "<th class=num>errors</th><th class=num>error rate</th><th class=num>p99 latency</th></tr>");
	window_row(&b, "baseline (before the shift)", d->primary, &f->baseline);
	window_row(&b, "shift", "both slots", &f->shift);
	window_row(&b, "hold", d->secondary, &f->hold);
	window_row(&b, "hold (still on the primary)", d->primary, &f->hold_primary);
	window_row(&b, "shift back", "both slots", &f->restore);
	putf(&b, "</table><h2>Verdicts on the secondary</h2><table><tr><th>slo</th><th>verdict</th><th>why</th></tr>");
	for (int i = 0; i < d->nslos; i++) {
		putf(&b, "<tr><td>");
		esc(&b, d->slos[i].slo);
		putf(&b, "</td><td>");
		esc(&b, d->slos[i].verdict);
		putf(&b, "</td><td>");
		esc(&b, d->slos[i].why);
		putf(&b, "</td></tr>");
	}
	putf(&b, "</table><h2>Over time</h2>");
	const struct series share[] = {{"secondary's share", "#2166ac", v_share}};
	const struct series errs[] = {{"secondary", "#d95f02", v_sec_err}, {"primary", "#1f4e79", v_pri_err}};
	const struct series p99[] = {{"secondary", "#d95f02", v_sec_p99}, {"primary", "#1f4e79", v_pri_p99}};
	chart(&b, r, "share of traffic on the secondary", "%", share, 1);
	chart(&b, r, "error rate per tick", "%", errs, 2);
	chart(&b, r, "p99 latency per tick", "s", p99, 2);
	putf(&b, "<h2>Audit</h2><table><tr><th>at</th><th>actor</th><th>event</th><th>reason</th></tr>");
	for (int i = 0; i < r->nevents; i++) {
		putf(&b, "<tr><td>%s</td><td>", when(r->events[i].at_us, t, sizeof t));
		esc(&b, r->events[i].actor);
		putf(&b, "</td><td>");
		esc(&b, r->events[i].kind);
		putf(&b, "</td><td>");
		esc(&b, r->events[i].reason);
		putf(&b, "</td></tr>");
	}
	putf(&b, "</table></body></html>\n");
	char *page = NULL;
	if (cn_dynbuf_error(&b) == -CN_EINPUT)
		cn_fail(err, CN_EINPUT, "the report of drill %lld would exceed %zu bytes", (long long)d->id, b.max);
	else if (cn_dynbuf_error(&b) < 0 || !(page = cn_dynbuf_take(&b, len)))
		cn_fail(err, CN_EINTERNAL, "out of memory rendering the report of drill %lld", (long long)d->id);
	cn_dynbuf_free(&b);
	return page;
}
