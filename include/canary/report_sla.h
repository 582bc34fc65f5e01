/* The SLA month as one self-contained HTML page: per objective its attainment and credit, and for windowed
 * objectives a chart of each window's value (p99, availability) against the objective over the month, missed windows
 * and windows without data marked, then the table of those windows. Pure: a result in, an HTML string out. */
#ifndef CANARY_REPORT_SLA_H
#define CANARY_REPORT_SLA_H

#include <stddef.h>

#include "canary/err.h"
#include "canary/sla-t.h"

/* What the page shows. */
struct cn_sla_page {
	const char *service;
	const char *month;                  /* "2026-11" */
	const char *contract_file;
	const struct cn_sla_contract *contract;
	const struct cn_sla_result *result;
};

/* Renders the page, at most max bytes (0: CN_REPORT_HTML_MAX). Returns a new NUL-terminated string (the caller frees
 * it) and its length in *len (when not NULL); NULL with err set (CN_EINPUT: too big; CN_EINTERNAL: out of memory). */
char *cn_report_sla_html(const struct cn_sla_page *p, size_t max, size_t *len, struct cn_err *err);

#endif
