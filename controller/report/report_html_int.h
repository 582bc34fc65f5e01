/* Private to the report module: what the HTML pages share (the rollout report, report_html.c, and the SLA month,
 * report_sla.c): writing into the page's capped buffer, escaping, time formats, the chart geometry and time axis,
 * and the stylesheet. */
#ifndef CANARY_REPORT_HTML_INT_H
#define CANARY_REPORT_HTML_INT_H

#include <stdint.h>

#include "canary/dynbuf.h"

/* Chart geometry: width, left and right padding; the plot's width. */
enum { CW = 1140, PL = 78, PR = 24 };
#define PW ((double)(CW - PL - PR))

/* A chart's time range in milliseconds since the epoch. */
struct rh_axis {
	int64_t t0, t1;
};

/* Appends to the page (a failed add is sticky: the page is checked once at the end). */
void rh_put(struct cn_dynbuf *b, const char *s);
void rh_putf(struct cn_dynbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s escaped for HTML text and attribute values; control characters become spaces. */
void rh_put_esc(struct cn_dynbuf *b, const char *s);

/* "2024-05-01 12:00:05 UTC" (what = 0), "12:00:05" (1), "12:00" (2), "05-01 12:00" (3), "12:00:05.123" (4); returns
 * out. */
const char *rh_fmt_time(int64_t ms, int what, char *out, size_t size);

/* The x coordinate of time t (clamped to the axis). */
double rh_xat(const struct rh_axis *ax, int64_t t);
/* Time ticks at round clock times (at most 9), grid lines from top to bottom, and the axis line. */
void rh_time_axis(struct cn_dynbuf *b, const struct rh_axis *ax, double top, double bottom);
/* A round step for about 5 ticks up to vmax. */
double rh_nice_step(double vmax);

/* The pages' stylesheet. */
extern const char rh_css[];

#endif
