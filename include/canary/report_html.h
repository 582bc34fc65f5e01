/* The rollout report for release managers: one self-contained HTML page (inline CSS and SVG, no script, no external
 * assets) with the candidate weight over time, each SLO's candidate vs baseline vs objective over time, the decision
 * points marked, and the audit table. Pure: a filled struct in, an HTML string out. Every text is HTML-escaped. */
#ifndef CANARY_REPORT_HTML_H
#define CANARY_REPORT_HTML_H

#include <stddef.h>
#include <stdint.h>

#include "canary/err.h"

/* The largest page cn_report_html writes unless told otherwise. */
#define CN_REPORT_HTML_MAX (32u * 1024 * 1024)

/* Strings are borrowed (NULL reads as ""); times are ms since 1970-01-01 UTC; NaN means "no value". */
struct cn_report_rollout {
	int64_t id;
	const char *service;
	const char *candidate;
	const char *baseline;     /* NULL: unknown */
	const char *policy;
	int policy_version;
	const char *phase;        /* the outcome once ended: promoted, rolled_back, aborted, failed; else the phase */
	int step;                 /* 0-based step it is at or ended at; -1: never started */
	int steps;                /* steps in the policy */
	double weight;            /* candidate percent now / at the end */
	const char *created_by;
	const char *approved_by;  /* roles whose approvals were accepted, comma-separated; NULL or "": none */
	const char *reason;       /* why it is where it is */
	int64_t started_ms;
	int64_t finished_ms;      /* 0: still active */
	int64_t now_ms;           /* when the report was made (the end of the time axis while active) */
};

struct cn_report_weight {
	int64_t at_ms;
	double weight; /* candidate percent from this time on */
};

struct cn_report_slo_point {
	int64_t at_ms;
	double candidate, baseline, objective;
	const char *verdict; /* pass, fail, inconclusive */
};

struct cn_report_slo {
	const char *name;
	const char *metric; /* error_rate (values are fractions), latency, ttft, itl (seconds) */
	const struct cn_report_slo_point *points;
	size_t npoints;
};

/* A decision point: a decision that was not "hold", or an operator's command. */
struct cn_report_marker {
	int64_t at_ms;
	const char *kind;   /* start, advance, await_approval, promote, rollback, pause, resume, abort; approve, ... */
	const char *actor;  /* who: a role, or the daemon */
	const char *detail; /* the reason, or the command's result */
};

struct cn_report_event {
	int64_t id;
	int64_t at_ms;
	const char *actor;
	const char *kind;
	const char *what;   /* the event in words */
	const char *reason;
	const char *hash;
};

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

/* Renders r as one HTML page of at most max bytes (0: CN_REPORT_HTML_MAX). Returns a new NUL-terminated string
 * (the caller frees it) and writes its length to *len (when not NULL); NULL with err set (CN_EINPUT: the page
 * would exceed max; CN_EINTERNAL: out of memory). */
char *cn_report_html(const struct cn_report *r, size_t max, size_t *len, struct cn_err *err);

/* Writes s HTML-escaped (& < > " ') into buf of size bytes, truncating; returns buf. For tests and callers. */
char *cn_html_escape(const char *s, char *buf, size_t size);

#endif
