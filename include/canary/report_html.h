/* The rollout report for release managers: one self-contained HTML page (inline CSS and SVG, no script, no external
 * assets) with the candidate weight over time, each SLO's candidate vs baseline vs objective over time, the decision
 * points marked, and the audit table. Pure: a view model in (canary/report.h), an HTML string out. Every text is
 * HTML-escaped. */
#ifndef CANARY_REPORT_HTML_H
#define CANARY_REPORT_HTML_H

#include <stddef.h>

#include "canary/err.h"
#include "canary/report.h"

/* The largest page cn_report_html writes unless told otherwise. */
#define CN_REPORT_HTML_MAX (32u * 1024 * 1024)

/* Renders r as one HTML page of at most max bytes (0: CN_REPORT_HTML_MAX). Returns a new NUL-terminated string
 * (the caller frees it) and writes its length to *len (when not NULL); NULL with err set (CN_EINPUT: the page
 * would exceed max; CN_EINTERNAL: out of memory). */
char *cn_report_html(const struct cn_report *r, size_t max, size_t *len, struct cn_err *err);

/* Writes s HTML-escaped (& < > " ') into buf of size bytes, truncating; returns buf. For tests and callers. */
char *cn_html_escape(const char *s, char *buf, size_t size);

#endif
