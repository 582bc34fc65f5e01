/* The failover drill's report: one self-contained HTML page (inline CSS and SVG, no script) with the outcome, the
 * timings, each window's numbers (baseline, shift, hold, shift back), the last verdicts, the secondary's share and
 * both slots' error rate and p99 per tick, and the drill's audit events. Pure: rows in, an HTML string out. */
#ifndef CANARY_REPORT_DRILL_H
#define CANARY_REPORT_DRILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "canary/err.h"
#include "canary/store_drills.h"

struct cn_drill_report {
	const struct cn_drill_row *drill;
	const struct cn_drill_tick_row *ticks;
	int nticks;
	const struct cn_drill_event *events;
	int nevents;
};

/* Renders r as one HTML page of at most max bytes (0: CN_REPORT_HTML_MAX). Returns a new NUL-terminated string (the
 * caller frees it) and its length in *len (when not NULL); NULL with err set (CN_EINPUT: too large; CN_EINTERNAL). */
char *cn_report_drill_html(const struct cn_drill_report *r, size_t max, size_t *len, struct cn_err *err);

/* One line for a drill on f (phase, slots, hold, reason); with details its timings, each window's numbers, the
 * verdicts and an abort request: the text of `canaryctl drill status` and of a drill's end. */
void cn_report_drill_print(FILE *f, const struct cn_drill_row *d, bool details);

#endif
