/* The rollout report as one self-contained HTML page: inline rh_css, inline SVG charts (weight over time, one chart per
 * SLO with candidate, baseline and objective), the decision points marked on every chart and listed, and the audit
 * table. Pure: no I/O, no clock. The page is built in a bounded buffer; every text from the data is escaped. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canary/dynbuf.h"
#include "canary/parse.h"
#include "canary/report_html.h"
#include "report_html_int.h"

/* ---- the page's buffer: capped (canary/dynbuf.h); a failed add is sticky, so the page is checked once at the end */

void rh_put(struct cn_dynbuf *b, const char *s)
{
	cn_dynbuf_adds(b, s);
}

void rh_putf(struct cn_dynbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cn_dynbuf_vaddf(b, fmt, ap);
	va_end(ap);
}

/* Appends s escaped for HTML text and attribute values; control characters become spaces. */
void rh_put_esc(struct cn_dynbuf *b, const char *s)
{
	char chunk[512];
	size_t k = 0;
	for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
		const char *rep = NULL;
		char one[2] = {(char)*c, '\0'};
		switch (*c) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default:
			if (*c < 0x20 || *c == 0x7f)
				one[0] = ' ';
			rep = one;
		}
		size_t n = strlen(rep);
		if (k + n >= sizeof chunk) {
			chunk[k] = '\0';
			rh_put(b, chunk);
			k = 0;
		}
		memcpy(chunk + k, rep, n);
		k += n;
	}
	chunk[k] = '\0';
	rh_put(b, chunk);
}

/* The most escaped text cn_html_escape builds before it cuts to its caller's buffer. */
#define HTML_ESCAPE_MAX (1u << 20)

char *cn_html_escape(const char *s, char *out, size_t size)
{
	struct cn_dynbuf b;
	if (!out || size == 0)
		return out;
	cn_dynbuf_init(&b, HTML_ESCAPE_MAX);
	rh_put_esc(&b, s);
	snprintf(out, size, "%s", cn_dynbuf_ptr(&b));
	cn_dynbuf_free(&b);
	return out;
}

static const char *str(const char *s) { return s ? s : ""; }

/* ---- time and number formats ---- */

/* "2024-05-01 12:00:05 UTC" (what = 0), "12:00:05" (1), "12:00" (2), "05-01 12:00" (3), "12:00:05.123" (4). */
const char *rh_fmt_time(int64_t ms, int what, char *out, size_t size)
{
	time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	int frac = (int)(ms - (int64_t)t * 1000);
	struct tm tm;
	if (!gmtime_r(&t, &tm)) {
		snprintf(out, size, "?");
		return out;
	}
	static const char *const fmts[] = {"%Y-%m-%d %H:%M:%S UTC", "%H:%M:%S", "%H:%M", "%m-%d %H:%M", "%H:%M:%S"};
	if (strftime(out, size, fmts[what], &tm) == 0)
		snprintf(out, size, "?");
	if (what == 4) {
		size_t n = strlen(out);
		snprintf(out + n, size - n, ".%03d", frac);
	}
	return out;
}

/* A duration for people: "1h2m", "3m5s", "12.4s". */
static const char *fmt_dur(int64_t ms, char *out, size_t size)
{
	if (ms < 0)
		ms = 0;
	if (ms < 60000) {
		snprintf(out, size, ms < 10000 ? "%.1fs" : "%.0fs", (double)ms / 1000.0);
		return out;
	}
	return cn_format_duration(ms < 3600000 ? ms / 1000 * 1000 : ms / 60000 * 60000, out, size);
}

static bool is_rate(const char *metric) { return metric && strcmp(metric, "error_rate") == 0; }
static bool is_econ(const char *metric)
{
	return metric && (strcmp(metric, "tokens_per_second") == 0 || strcmp(metric, "cost_per_1k_tokens") == 0);
}

/* An SLO value with its unit: error rates as percent, latencies in ms below 1 s. "n/a" for NaN. */
static const char *fmt_value(double v, const char *metric, double scale, char *out, size_t size)
{
	if (!isfinite(v))
		snprintf(out, size, "n/a");
	else if (is_rate(metric))
		snprintf(out, size, "%.3g%%", v * 100.0);
	else if (is_econ(metric)) /* tokens per busy second, or a price in the service's unit */
		snprintf(out, size, "%.4g%s", v, metric[0] == 't' ? " tok/s" : "");
	else if (scale < 1.0)
		snprintf(out, size, "%.4g ms", v * 1000.0);
	else
		snprintf(out, size, "%.3g s", v);
	return out;
}

/* ---- what the decisions look like ---- */

struct kind_style {
	const char *kind;
	const char *label;
	const char *color;
	bool command; /* an operator's command (drawn as a square) */
};

static const struct kind_style kind_styles[] = {
	{"start", "start", "#1b7837", false},
	{"advance", "advance", "#1b7837", false},
	{"await_approval", "awaiting approval", "#b35806", false},
	{"promote", "promote", "#1b7837", false},
	{"rollback", "rollback", "#b2182b", false},
	{"pause", "pause", "#b35806", false},
	{"resume", "resume", "#2166ac", false},
	{"abort", "abort", "#b2182b", false},
	{"approve", "approve (command)", "#2166ac", true},
	{"promote_full", "promote --full (command)", "#762a83", true},
	{"cmd:pause", "pause (command)", "#b35806", true},
	{"cmd:resume", "resume (command)", "#2166ac", true},
	{"cmd:abort", "abort (command)", "#b2182b", true},
};

static const struct kind_style *style_of(const char *kind)
{
	static const struct kind_style other = {"", "", "#555555", false};
	for (size_t i = 0; i < sizeof kind_styles / sizeof kind_styles[0]; i++)
		if (kind && strcmp(kind, kind_styles[i].kind) == 0)
			return &kind_styles[i];
	return &other;
}

static const char *outcome_color(const char *phase)
{
	if (!phase)
		return "#555555";
	if (strcmp(phase, "promoted") == 0)
		return "#1b7837";
	if (strcmp(phase, "rolled_back") == 0 || strcmp(phase, "failed") == 0 || strcmp(phase, "aborted") == 0)
		return "#b2182b";
	if (strcmp(phase, "paused") == 0 || strcmp(phase, "awaiting_approval") == 0)
		return "#b35806";
	return "#2166ac";
}

static const char *verdict_color(const char *v)
{
	if (v && strcmp(v, "pass") == 0)
		return "#4daf4a";
	if (v && strcmp(v, "fail") == 0)
		return "#d7301f";
	return "#bdbdbd";
}

/* ---- chart geometry ---- */

double rh_xat(const struct rh_axis *ax, int64_t t)
{
	if (t < ax->t0)
		t = ax->t0;
	if (t > ax->t1)
		t = ax->t1;
	return PL + PW * (double)(t - ax->t0) / (double)(ax->t1 - ax->t0);
}

/* Time ticks at round clock times, at most 9. */
void rh_time_axis(struct cn_dynbuf *b, const struct rh_axis *ax, double top, double bottom)
{
	static const int64_t steps[] = {1000, 2000, 5000, 10000, 15000, 30000, 60000, 120000, 300000, 600000,
					900000, 1800000, 3600000, 7200000, 10800000, 21600000, 43200000, 86400000,
					172800000, 604800000};
	int64_t span = ax->t1 - ax->t0, step = steps[sizeof steps / sizeof steps[0] - 1];
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		if (span / steps[i] <= 8) {
			step = steps[i];
			break;
		}
	}
	int what = span >= 86400000 ? 3 : step >= 60000 ? 2 : 1;
	int64_t first = (ax->t0 / step) * step;
	if (first < ax->t0)
		first += step;
	rh_put(b, "<g class=\"x-axis\">");
	for (int64_t t = first; t <= ax->t1; t += step) {
		char lab[32];
		double x = rh_xat(ax, t);
		rh_putf(b, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", x, top, x, bottom);
		rh_putf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>", x, bottom + 16,
		     rh_fmt_time(t, what, lab, sizeof lab));
	}
	rh_putf(b, "<line class=\"axis\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", PL, bottom, CW - PR, bottom);
	rh_putf(b, "<text class=\"axis-title\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">time (UTC)</text>", CW - PR,
	     bottom + 32);
	rh_put(b, "</g>");
}

/* Vertical lines at the decision points; with labels (numbered badges) when `labels`. */
static void draw_markers(struct cn_dynbuf *b, const struct cn_report *r, const struct rh_axis *ax, double top, double bottom,
			 bool labels)
{
	double last_x[3] = {-1e9, -1e9, -1e9};
	rh_put(b, "<g class=\"markers\">");
	for (size_t i = 0; i < r->nmarkers; i++) {
		const struct cn_report_marker *m = &r->markers[i];
		const struct kind_style *ks = style_of(m->kind);
		double x = rh_xat(ax, m->at_ms);
		char when[32];
		rh_putf(b, "<g class=\"marker marker-%s\" data-kind=\"", labels ? "label" : "line");
		rh_put_esc(b, m->kind);
		rh_put(b, "\"><title>");
		rh_putf(b, "%zu. ", i + 1);
		rh_put_esc(b, ks->label[0] ? ks->label : m->kind);
		rh_putf(b, " at %s", rh_fmt_time(m->at_ms, 4, when, sizeof when));
		if (m->actor && m->actor[0]) {
			rh_put(b, " by ");
			rh_put_esc(b, m->actor);
		}
		if (m->detail && m->detail[0]) {
			rh_put(b, ": ");
			rh_put_esc(b, m->detail);
		}
		rh_put(b, "</title>");
		rh_putf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.2\" "
		     "stroke-dasharray=\"%s\"/>", x, top, x, bottom, ks->color, ks->command ? "2 2" : "5 3");
		if (labels) {
			/* Badges that would overlap move down a row (three rows). */
			int row = 0;
			while (row < 2 && x - last_x[row] < 19)
				row++;
			last_x[row] = x;
			double y = top - 12 - row * 17.0;
			if (ks->command)
				rh_putf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"16\" height=\"16\" rx=\"2\" fill=\"%s\"/>",
				     x - 8, y - 8, ks->color);
			else
				rh_putf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"8.5\" fill=\"%s\"/>", x, y, ks->color);
			rh_putf(b, "<text class=\"badge\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%zu</text>", x, y + 3.5,
			     i + 1);
		}
		rh_put(b, "</g>");
	}
	rh_put(b, "</g>");
}

/* ---- the weight chart ---- */

/* Square-root scale: 1% and 5% stay visible next to 100%. */
static double wy(double w, double top, double h)
{
	if (!isfinite(w) || w < 0)
		w = 0;
	if (w > 100)
		w = 100;
	return top + h - h * sqrt(w / 100.0);
}

static void weight_chart(struct cn_dynbuf *b, const struct cn_report *r, const struct rh_axis *ax)
{
	const double top = 84, h = 200, bottom = top + h;
	const int height = (int)bottom + 44;
	static const double ticks[] = {0, 1, 5, 10, 25, 50, 100};
	rh_putf(b, "<svg id=\"chart-weight\" class=\"chart chart-weight\" xmlns=\"http://www.w3.org/2000/svg\" "
	     "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"candidate weight over time\">",
	     CW, height, CW, height);
	rh_put(b, "<text class=\"chart-title\" x=\"4\" y=\"16\">Candidate weight</text>");
	rh_put(b, "<text class=\"legend\" x=\"200\" y=\"16\"><tspan class=\"sw\" fill=\"#2166ac\">\xe2\x96\xac</tspan> share of "
	       "traffic sent to the candidate (square-root scale) \xc2\xb7 numbered marks: decision points, "
	       "listed below</text>");
	for (size_t i = 0; i < sizeof ticks / sizeof ticks[0]; i++) {
		double y = wy(ticks[i], top, h);
		rh_putf(b, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", PL, y, CW - PR, y);
		rh_putf(b, "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g%%</text>", PL - 6, y + 4, ticks[i]);
	}
	rh_putf(b, "<line class=\"axis\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", PL, top, PL, bottom);
	rh_time_axis(b, ax, top, bottom);

	/* The weight is a step function: 0 before the first point, each point's weight until the next. */
	double w = 0;
	char d0[64];
	snprintf(d0, sizeof d0, "M%.1f %.1f", rh_xat(ax, ax->t0), wy(0, top, h));
	rh_put(b, "<path class=\"weight-area\" d=\"");
	rh_put(b, d0);
	for (size_t i = 0; i < r->nweights; i++) {
		w = r->weights[i].weight;
		rh_putf(b, "H%.1fV%.1f", rh_xat(ax, r->weights[i].at_ms), wy(w, top, h));
	}
	rh_putf(b, "H%.1fV%.1fZ\"/>", rh_xat(ax, ax->t1), wy(0, top, h));
	rh_put(b, "<path class=\"weight-line\" d=\"");
	rh_put(b, d0);
	for (size_t i = 0; i < r->nweights; i++)
		rh_putf(b, "H%.1fV%.1f", rh_xat(ax, r->weights[i].at_ms), wy(r->weights[i].weight, top, h));
	rh_putf(b, "H%.1f\"/>", rh_xat(ax, ax->t1));
	/* The level of every change, written next to it. */
	double prev = 0, last_lx = -1e9;
	for (size_t i = 0; i < r->nweights; i++) {
		w = r->weights[i].weight;
		if (!isfinite(w) || w == prev)
			continue;
		prev = w;
		double x = rh_xat(ax, r->weights[i].at_ms), y = wy(w, top, h);
		if (x - last_lx < 34)
			continue;
		last_lx = x;
		bool right = x > CW - PR - 40; /* near the right edge: write it to the left of the change */
		rh_putf(b, "<text class=\"level\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">%g%%</text>",
		     right ? x - 4 : x + 4, y < top + 14 ? y + 14 : y - 5, right ? "end" : "start", w);
	}
	if (r->nweights == 0)
		rh_putf(b, "<text class=\"empty\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no weight change recorded "
		     "yet</text>", PL + PW / 2, top + h / 2);
	draw_markers(b, r, ax, top, bottom, true);
	rh_put(b, "</svg>\n");
}

/* ---- one chart per SLO ---- */

/* A round step for about 5 ticks up to vmax. */
double rh_nice_step(double vmax)
{
	double raw = vmax / 5.0, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
	return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
}

/* A polyline through the finite values of one series; NaN breaks the line. */
static void series_path(struct cn_dynbuf *b, const struct cn_report_slo *s, int which, const struct rh_axis *ax, double top,
			double h, double vmax, bool step)
{
	bool pen = false;
	rh_put(b, " d=\"");
	for (size_t i = 0; i < s->npoints; i++) {
		const struct cn_report_slo_point *p = &s->points[i];
		double v = which == 0 ? p->candidate : which == 1 ? p->baseline : p->objective;
		if (!isfinite(v)) {
			pen = false;
			continue;
		}
		double x = rh_xat(ax, p->at_ms), y = top + h - h * (v < 0 ? 0 : v > vmax ? vmax : v) / vmax;
		if (!pen)
			rh_putf(b, "M%.1f %.1f", x, y);
		else if (step)
			rh_putf(b, "H%.1fV%.1f", x, y);
		else
			rh_putf(b, "L%.1f %.1f", x, y);
		pen = true;
	}
	rh_put(b, "\"");
}

static void slo_chart(struct cn_dynbuf *b, const struct cn_report *r, size_t k, const struct rh_axis *ax)
{
	const struct cn_report_slo *s = &r->slos[k];
	const double top = 56, h = 170, bottom = top + h;
	const int height = (int)bottom + 58;
	double vmax = 0;
	size_t counts[3] = {0, 0, 0}; /* pass, fail, inconclusive */
	for (size_t i = 0; i < s->npoints; i++) {
		const struct cn_report_slo_point *p = &s->points[i];
		const double v[3] = {p->candidate, p->baseline, p->objective};
		for (int j = 0; j < 3; j++)
			if (isfinite(v[j]) && v[j] > vmax)
				vmax = v[j];
		counts[p->verdict && strcmp(p->verdict, "pass") == 0 ? 0 :
		       p->verdict && strcmp(p->verdict, "fail") == 0 ? 1 : 2]++;
	}
	if (!(vmax > 0))
		vmax = is_rate(s->metric) ? 0.01 : 1.0;
	double st = rh_nice_step(vmax * 1.08);
	vmax = ceil(vmax * 1.08 / st) * st;
	rh_putf(b, "<svg class=\"chart chart-slo\" data-slo=\"");
	rh_put_esc(b, s->name);
	rh_putf(b, "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
	     "aria-label=\"SLO ", CW, height, CW, height);
	rh_put_esc(b, s->name);
	rh_put(b, ": candidate, baseline and objective over time\">");
	rh_put(b, "<text class=\"chart-title\" x=\"4\" y=\"16\">SLO ");
	rh_put_esc(b, s->name);
	rh_put(b, "<tspan class=\"sub\"> (");
	rh_put_esc(b, s->metric);
	rh_putf(b, ") \xc2\xb7 %zu ticks: %zu pass, %zu fail, %zu inconclusive</tspan></text>", s->npoints, counts[0],
	     counts[1], counts[2]);
	/* Legend: colour and dash pattern, so it reads in grey print too. */
	rh_putf(b, "<g class=\"legend\" transform=\"translate(%d,22)\">"
	       "<line x1=\"0\" y1=\"8\" x2=\"26\" y2=\"8\" class=\"s-cand\"/><text x=\"32\" y=\"12\">candidate</text>"
	       "<line x1=\"120\" y1=\"8\" x2=\"146\" y2=\"8\" class=\"s-base\"/><text x=\"152\" y=\"12\">baseline</text>"
	       "<line x1=\"235\" y1=\"8\" x2=\"261\" y2=\"8\" class=\"s-obj\"/><text x=\"267\" y=\"12\">objective "
	       "(the most allowed)</text>"
	       "<text x=\"460\" y=\"12\">verdict per tick:</text>"
	       "<rect x=\"568\" y=\"3\" width=\"11\" height=\"11\" fill=\"#4daf4a\"/><text x=\"584\" y=\"12\">pass</text>"
	       "<rect x=\"630\" y=\"3\" width=\"11\" height=\"11\" fill=\"#d7301f\"/><text x=\"646\" y=\"12\">fail</text>"
	       "<rect x=\"684\" y=\"3\" width=\"11\" height=\"11\" fill=\"#bdbdbd\"/><text x=\"700\" y=\"12\">"
	       "inconclusive</text></g>", PL);
	for (double v = 0; v <= vmax * 1.0001; v += st) {
		double y = top + h - h * v / vmax;
		char lab[32];
		rh_putf(b, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", PL, y, CW - PR, y);
		rh_putf(b, "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>", PL - 6, y + 4,
		     fmt_value(v, s->metric, vmax, lab, sizeof lab));
	}
	rh_putf(b, "<line class=\"axis\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", PL, top, PL, bottom);
	/* The verdict strip under the plot: one cell per tick, until the next tick. */
	double sy = bottom + 3;
	rh_put(b, "<g class=\"verdicts\">");
	for (size_t i = 0; i < s->npoints; i++) {
		double x0 = rh_xat(ax, s->points[i].at_ms);
		double x1 = i + 1 < s->npoints ? rh_xat(ax, s->points[i + 1].at_ms) : x0 + 3;
		if (x1 - x0 < 1)
			x1 = x0 + 1;
		rh_putf(b, "<rect class=\"v-%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"7\" fill=\"%s\"/>",
		     s->points[i].verdict ? (strcmp(s->points[i].verdict, "pass") == 0 ? "pass" :
					     strcmp(s->points[i].verdict, "fail") == 0 ? "fail" : "inconclusive") : "none",
		     x0, sy, x1 - x0, verdict_color(s->points[i].verdict));
	}
	rh_put(b, "</g>");
	rh_time_axis(b, ax, top, bottom + 12);
	rh_put(b, "<path class=\"s-obj\"");
	series_path(b, s, 2, ax, top, h, vmax, true);
	rh_put(b, "/><path class=\"s-base\"");
	series_path(b, s, 1, ax, top, h, vmax, false);
	rh_put(b, "/><path class=\"s-cand\"");
	series_path(b, s, 0, ax, top, h, vmax, false);
	rh_put(b, "/>");
	if (s->npoints <= 150) {
		/* Dots with the numbers on hover, and so a lone tick shows. */
		rh_put(b, "<g class=\"dots\">");
		for (size_t i = 0; i < s->npoints; i++) {
			const struct cn_report_slo_point *p = &s->points[i];
			if (!isfinite(p->candidate))
				continue;
			char a[32], c[32], o[32], when[32];
			double y = top + h - h * (p->candidate < 0 ? 0 : p->candidate > vmax ? vmax : p->candidate) / vmax;
			rh_putf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.4\" fill=\"%s\"><title>%s: candidate %s, baseline "
			     "%s, objective %s, ", rh_xat(ax, p->at_ms), y, "#d95f02", rh_fmt_time(p->at_ms, 4, when, sizeof when),
			     fmt_value(p->candidate, s->metric, vmax, a, sizeof a),
			     fmt_value(p->baseline, s->metric, vmax, c, sizeof c),
			     fmt_value(p->objective, s->metric, vmax, o, sizeof o));
			rh_put_esc(b, p->verdict);
			rh_put(b, "</title></circle>");
		}
		rh_put(b, "</g>");
	}
	if (s->npoints == 0)
		rh_putf(b, "<text class=\"empty\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no measurements recorded "
		     "yet</text>", PL + PW / 2, top + h / 2);
	draw_markers(b, r, ax, top, bottom, false);
	rh_put(b, "</svg>\n");
}

/* ---- the page ---- */

const char rh_css[] =
	"*{box-sizing:border-box}"
	"body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;"
	"color:#1a1a1a;background:#fff;margin:24px auto;max-width:1180px;padding:0 20px}"
	"h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:2px solid #ddd;"
	"padding-bottom:4px}"
	".sub{color:#555;font-weight:normal}"
	".outcome{display:inline-block;color:#fff;font-weight:700;padding:2px 10px;border-radius:4px;"
	"letter-spacing:.04em;font-size:15px;vertical-align:middle;-webkit-print-color-adjust:exact;"
	"print-color-adjust:exact}"
	".summary{display:grid;grid-template-columns:repeat(4,1fr);gap:8px 24px;margin:14px 0;padding:12px 16px;"
	"border:1px solid #ddd;border-radius:6px;background:#fafafa}"
	".summary div span{display:block;color:#666;font-size:12px;text-transform:uppercase;letter-spacing:.05em}"
	".summary div b{font-weight:600}"
	".reason{margin:6px 0 0;color:#333}"
	"svg.chart{display:block;margin:6px 0 14px;max-width:100%;height:auto;font-family:inherit}"
	"svg .grid{stroke:#e3e3e3;stroke-width:1}svg .axis{stroke:#555;stroke-width:1}"
	"svg .tick{font-size:11px;fill:#444}svg .axis-title{font-size:11px;fill:#666}"
	"svg .chart-title{font-size:15px;font-weight:600;fill:#1a1a1a}svg .chart-title .sub{fill:#555;font-size:12px;"
	"font-weight:normal}"
	"svg .legend,svg .legend text{font-size:12px;fill:#333}"
	"svg .badge{font-size:10px;font-weight:700;fill:#fff}"
	"svg .level{font-size:12px;font-weight:600;fill:#2166ac}"
	"svg .empty{font-size:13px;fill:#888;font-style:italic}"
	".weight-line{fill:none;stroke:#2166ac;stroke-width:2.5}.weight-area{fill:#2166ac;fill-opacity:.12;stroke:none}"
	".s-cand{fill:none;stroke:#d95f02;stroke-width:2.2}"
	".s-base{fill:none;stroke:#1f4e79;stroke-width:1.8;stroke-dasharray:7 4}"
	".s-obj{fill:none;stroke:#b2182b;stroke-width:1.6;stroke-dasharray:2 3}"
	"table{border-collapse:collapse;width:100%;font-size:12.5px}"
	"th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e6e6e6;vertical-align:top}"
	"th{background:#f2f2f2;font-weight:600;position:sticky;top:0}"
	"td.num,th.num{text-align:right;white-space:nowrap}td.t{white-space:nowrap;font-variant-numeric:tabular-nums}"
	"td code,td.hash{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:11.5px;color:#555}"
	"tr.ev-tick td{color:#444}tr.ev-state-changed td,tr.ev-command-accepted td,tr.ev-command-refused td{"
	"background:#fff8e6}"
	".kind{display:inline-block;color:#fff;padding:0 6px;border-radius:3px;font-size:12px;font-weight:600;"
	"-webkit-print-color-adjust:exact;print-color-adjust:exact}"
	".note{color:#666;font-size:12px}"
	"footer{margin-top:24px;color:#777;font-size:12px}"
	"@media print{body{margin:0;max-width:none}h2{break-after:avoid}svg.chart{break-inside:avoid}"
	"th{position:static}}";

static void field(struct cn_dynbuf *b, const char *label, const char *value)
{
	rh_putf(b, "<div><span>%s</span><b>", label);
	rh_put_esc(b, value && value[0] ? value : "\xe2\x80\x94");
	rh_put(b, "</b></div>");
}

static void summary(struct cn_dynbuf *b, const struct cn_report *r, const struct rh_axis *ax)
{
	const struct cn_report_rollout *ro = &r->rollout;
	char t[64], d[48], v[64];
	rh_put(b, "<header><h1>");
	rh_putf(b, "Rollout %lld \xc2\xb7 ", (long long)ro->id);
	rh_put_esc(b, ro->service);
	rh_put(b, ": ");
	rh_put_esc(b, ro->candidate);
	rh_put(b, " <span class=\"sub\">replacing</span> ");
	rh_put_esc(b, ro->baseline && ro->baseline[0] ? ro->baseline : "(unknown baseline)");
	rh_putf(b, " <span class=\"outcome\" id=\"outcome\" style=\"background:%s\">", outcome_color(ro->phase));
	char up[64];
	snprintf(up, sizeof up, "%s", str(ro->phase));
	for (char *c = up; *c; c++)
		*c = *c == '_' ? ' ' : (char)(*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c);
	rh_put_esc(b, up);
	rh_put(b, "</span></h1>");
	rh_put(b, "<div class=\"sub\">canary rollout report \xc2\xb7 candidate ");
	rh_put_esc(b, ro->candidate);
	rh_put(b, " \xe2\x86\x92 baseline ");
	rh_put_esc(b, ro->baseline && ro->baseline[0] ? ro->baseline : "unknown");
	rh_put(b, " \xc2\xb7 policy ");
	rh_put_esc(b, ro->policy);
	rh_putf(b, "@%d</div>", ro->policy_version);
	rh_put(b, "<section class=\"summary\">");
	snprintf(v, sizeof v, "%s", str(ro->phase));
	for (char *c = v; *c; c++)
		*c = *c == '_' ? ' ' : *c;
	field(b, "Outcome", v);
	field(b, "Candidate", ro->candidate);
	field(b, "Baseline", ro->baseline);
	snprintf(v, sizeof v, "%s@%d", str(ro->policy), ro->policy_version);
	field(b, "Policy", v);
	field(b, "Started", rh_fmt_time(ro->started_ms, 0, t, sizeof t));
	field(b, "Finished", ro->finished_ms ? rh_fmt_time(ro->finished_ms, 0, t, sizeof t) : "still active");
	fmt_dur((ro->finished_ms ? ro->finished_ms : ro->now_ms) - ro->started_ms, d, sizeof d);
	if (!ro->finished_ms)
		snprintf(v, sizeof v, "%s so far", d);
	else
		snprintf(v, sizeof v, "%s", d);
	field(b, "Duration", v);
	if (ro->step < 0)
		snprintf(v, sizeof v, "not started (weight %g%%)", ro->weight);
	else
		snprintf(v, sizeof v, "%d of %d (weight %g%%)", ro->step + 1, ro->steps, ro->weight);
	field(b, ro->finished_ms ? "Ended at step" : "At step", v);
	field(b, "Started by", ro->created_by);
	field(b, "Approved by", ro->approved_by);
	snprintf(v, sizeof v, "%zu", r->nmarkers);
	field(b, "Decision points", v);
	snprintf(v, sizeof v, "%zu", r->events_total > r->nevents ? r->events_total : r->nevents);
	field(b, "Audit events", v);
	rh_put(b, "</section>");
	if (ro->reason && ro->reason[0]) {
		rh_put(b, "<p class=\"reason\"><b>Why: </b>");
		rh_put_esc(b, ro->reason);
		rh_put(b, "</p>");
	}
	if (ro->features && ro->features[0]) {
		rh_put(b, "<p class=\"features\" id=\"features\"><b>Per feature (candidate vs baseline, last tick): </b>");
		rh_put_esc(b, ro->features);
		rh_put(b, "</p>");
	}
	rh_put(b, "</header>\n");
	(void)ax;
}

static void markers_table(struct cn_dynbuf *b, const struct cn_report *r)
{
	char t[32], d[48];
	rh_put(b, "<h2>Decision points</h2>\n");
	if (r->nmarkers == 0) {
		rh_put(b, "<p class=\"note\" id=\"no-decisions\">No decisions besides holding the weight, and no operator "
		       "commands.</p>\n");
		return;
	}
	rh_put(b, "<table id=\"decisions\"><thead><tr><th class=\"num\">#</th><th>time (UTC)</th><th>after</th>"
	       "<th>decision</th><th>by</th><th>why</th></tr></thead><tbody>\n");
	for (size_t i = 0; i < r->nmarkers; i++) {
		const struct cn_report_marker *m = &r->markers[i];
		const struct kind_style *ks = style_of(m->kind);
		rh_putf(b, "<tr class=\"decision\"><td class=\"num\">%zu</td><td class=\"t\">%s</td><td class=\"t\">+%s</td>"
		     "<td><span class=\"kind\" style=\"background:%s\">", i + 1, rh_fmt_time(m->at_ms, 4, t, sizeof t),
		     fmt_dur(m->at_ms - r->rollout.started_ms, d, sizeof d), ks->color);
		rh_put_esc(b, ks->label[0] ? ks->label : m->kind);
		rh_put(b, "</span></td><td>");
		rh_put_esc(b, m->actor);
		rh_put(b, "</td><td>");
		rh_put_esc(b, m->detail);
		rh_put(b, "</td></tr>\n");
	}
	rh_put(b, "</tbody></table>\n");
}

static void audit_table(struct cn_dynbuf *b, const struct cn_report *r)
{
	char t[32];
	rh_put(b, "<h2>Audit trail</h2>\n");
	if (r->events_total > r->nevents)
		rh_putf(b, "<p class=\"note\">The first %zu of %zu events; <code>canaryctl audit ID</code> lists them all.</p>",
		     r->nevents, r->events_total);
	if (r->nevents == 0) {
		rh_put(b, "<p class=\"note\" id=\"no-events\">No audit events.</p>\n");
		return;
	}
	rh_put(b, "<p class=\"note\">Every event is hash-chained to the one before it; <code>canaryctl audit verify "
	       "ID</code> recomputes the chain.</p>\n");
	rh_put(b, "<table id=\"audit\"><thead><tr><th class=\"num\">event</th><th>time (UTC)</th><th>actor</th>"
	       "<th>kind</th><th>what</th><th>reason</th><th>hash</th></tr></thead><tbody>\n");
	for (size_t i = 0; i < r->nevents; i++) {
		const struct cn_report_event *e = &r->events[i];
		char cls[48];
		size_t k = 0;
		for (const char *c = str(e->kind); *c && k + 1 < sizeof cls; c++)
			cls[k++] = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ? *c : '-';
		cls[k] = '\0';
		rh_putf(b, "<tr class=\"event ev-%s\"><td class=\"num\">%lld</td><td class=\"t\">%s</td><td>", cls,
		     (long long)e->id, rh_fmt_time(e->at_ms, 4, t, sizeof t));
		rh_put_esc(b, e->actor);
		rh_put(b, "</td><td><code>");
		rh_put_esc(b, e->kind);
		rh_put(b, "</code></td><td>");
		rh_put_esc(b, e->what);
		rh_put(b, "</td><td>");
		rh_put_esc(b, e->reason);
		rh_put(b, "</td><td class=\"hash\" title=\"");
		rh_put_esc(b, e->hash);
		rh_put(b, "\">");
		char h[16];
		snprintf(h, sizeof h, "%.10s", str(e->hash));
		rh_put_esc(b, h);
		rh_put(b, "</td></tr>\n");
	}
	rh_put(b, "</tbody></table>\n");
}

char *cn_report_html(const struct cn_report *r, size_t max, size_t *len, struct cn_err *err)
{
	struct cn_dynbuf b;
	const struct cn_report_rollout *ro = &r->rollout;
	char t[64];
	cn_dynbuf_init(&b, max ? max : CN_REPORT_HTML_MAX);

	/* The time axis: from the start to the end (or now), widened to cover every point. */
	struct rh_axis ax = {ro->started_ms, ro->finished_ms ? ro->finished_ms : ro->now_ms};
	for (size_t i = 0; i < r->nweights; i++)
		ax.t1 = r->weights[i].at_ms > ax.t1 ? r->weights[i].at_ms : ax.t1;
	for (size_t k = 0; k < r->nslos; k++)
		for (size_t i = 0; i < r->slos[k].npoints; i++)
			ax.t1 = r->slos[k].points[i].at_ms > ax.t1 ? r->slos[k].points[i].at_ms : ax.t1;
	for (size_t i = 0; i < r->nmarkers; i++)
		ax.t1 = r->markers[i].at_ms > ax.t1 ? r->markers[i].at_ms : ax.t1;
	if (ax.t1 - ax.t0 < 1000)
		ax.t1 = ax.t0 + 1000;

	rh_put(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
		"<meta name=\"generator\" content=\"canaryctl report\"><title>");
	rh_putf(&b, "Rollout %lld: ", (long long)ro->id);
	rh_put_esc(&b, ro->service);
	rh_put(&b, " ");
	rh_put_esc(&b, ro->candidate);
	rh_put(&b, " \xe2\x80\x94 ");
	rh_put_esc(&b, ro->phase);
	rh_put(&b, "</title><style>");
	rh_put(&b, rh_css);
	rh_put(&b, "</style></head>\n<body>\n");
	summary(&b, r, &ax);
	rh_put(&b, "<h2>Traffic to the candidate</h2>\n");
	weight_chart(&b, r, &ax);
	rh_put(&b, "<h2>SLOs: candidate vs baseline vs objective</h2>\n");
	if (r->nslos == 0)
		rh_put(&b, "<p class=\"note\" id=\"no-slos\">The policy has no SLOs.</p>\n");
	for (size_t k = 0; k < r->nslos; k++)
		slo_chart(&b, r, k, &ax);
	markers_table(&b, r);
	audit_table(&b, r);
	rh_put(&b, "<footer>Generated by canaryctl report at ");
	rh_put(&b, rh_fmt_time(ro->now_ms, 0, t, sizeof t));
	rh_put(&b, " from the canary database. Times are UTC.</footer>\n</body></html>\n");

	char *page = NULL;
	if (cn_dynbuf_error(&b) == -CN_EINPUT)
		cn_fail(err, CN_EINPUT, "the report of rollout %lld would exceed %zu bytes; use 'canaryctl audit %lld' "
			"for the full timeline", (long long)ro->id, b.max, (long long)ro->id);
	else if (cn_dynbuf_error(&b) < 0 || !(page = cn_dynbuf_take(&b, len)))
		cn_fail(err, CN_EINTERNAL, "out of memory rendering the report of rollout %lld", (long long)ro->id);
	cn_dynbuf_free(&b);
	return page;
}
