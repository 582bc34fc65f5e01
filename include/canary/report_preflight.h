/* A pre-flight's figures for people and machines (controller/report/report_preflight.c): the per prompt-length band
 * table (each arm's requests, errors, contract violations, latency, TTFT and inter-token latency p50/p95/p99), the
 * verdicts, and the same as one JSON document. canaryctl preflight run prints them; canaryd stores the document in
 * the audit. */
#ifndef CANARY_REPORT_PREFLIGHT_H
#define CANARY_REPORT_PREFLIGHT_H

#include "canary/dynbuf.h"
#include "canary/load.h"
#include "canary/preflight.h"

struct cn_preflight_view {
	const char *candidate_slot, *candidate_url; /* slot NULL: driven by --url */
	const char *baseline_slot, *baseline_url;   /* NULL: no baseline arm */
	const struct cn_profile *profile;
	const struct cn_preflight *pf;              /* NULL: not judged (no policy) */
	const struct cn_load_result *cand, *base;   /* base NULL: no baseline arm */
	const struct cn_preflight_result *res;      /* NULL: not judged */
};

/* Appends the table (and the verdicts, when judged) to b, lines ending in '\n'. Returns b's error or 0. */
int cn_report_preflight_text(struct cn_dynbuf *b, const struct cn_preflight_view *v);

/* The whole pre-flight as one JSON document, the table's text included as "table": a new string the caller frees;
 * NULL when out of memory. */
char *cn_report_preflight_json(const struct cn_preflight_view *v);

#endif
