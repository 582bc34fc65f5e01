/* The report's view model and the audit's events in words: what a rollout's report shows, made from the rows the
 * store reads (canary/store_report.h). Pure: no I/O, no clock. The HTML page is rendered from the view model by
 * canary/report_html.h; the terminal views are in canary/report_term.h. */
#ifndef CANARY_REPORT_H
#define CANARY_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "canary/err.h"
#include "canary/store_report.h"

/* One audit event of the report, in words. Strings are borrowed (NULL reads as ""). */
struct cn_report_event {
	int64_t id;
	int64_t at_ms;
	const char *actor;
	const char *kind;
	const char *what;   /* the event in words */
	const char *reason;
	const char *hash;
};

/* What the report shows. Strings and arrays are borrowed. */
struct cn_report {
	struct cn_report_rollout rollout;
	const struct cn_report_weight *weights; /* oldest first */
	size_t nweights;
	const struct cn_report_slo *slos;
	size_t nslos;
	const struct cn_report_marker *markers; /* oldest first */
	size_t nmarkers;
	const struct cn_report_event *events;   /* oldest first */
	size_t nevents;
	size_t events_total;                    /* events the rollout has (> nevents: the table was cut) */
};

/* Makes the view model of a report from its rows: the rollout, the charts' data and the decision points as read,
 * and every audit event with its words (cn_audit_describe). Returns a new report (the caller frees it with
 * cn_report_free) that borrows rows' strings and arrays, so rows must outlive it; NULL with err set (CN_EINTERNAL)
 * when out of memory. */
struct cn_report *cn_report_build(const struct cn_report_rows *rows, struct cn_err *err);

/* Frees a report made by cn_report_build (not the rows it borrows from). Accepts NULL. */
void cn_report_free(struct cn_report *r);

/* What an audit event of `kind` with `data_json` (its data as stored; NULL: none) says in words, on one line:
 * "gateway confirmed weight 1%", "advance at step 2, weight 5%: errors pass (candidate 0.004, ...)". Writes buf
 * (cut to size, always NUL-terminated). */
void cn_audit_describe(const char *kind, const char *data_json, char *buf, size_t size);

#endif
