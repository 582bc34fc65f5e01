/* The rows one rollout's report is made from, read from the store in one snapshot: the rollout, its weight changes,
 * each SLO's verdicts over time, the decision points (automatic decisions and operators' commands) and the audit
 * events as stored. Typed rows only, no words for people: canary/report.h turns them into the report's view model,
 * and canary/report_html.h renders that. */
#ifndef CANARY_STORE_REPORT_H
#define CANARY_STORE_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "canary/err.h"

struct cn_store;
struct cn_read;

/* Most points per SLO chart (longer rollouts are thinned, keeping every failing verdict), decision points and audit
 * events one report holds. */
#define CN_REPORT_SLO_POINTS_MAX 1500
#define CN_REPORT_MARKERS_MAX 500
#define CN_REPORT_EVENTS_MAX 5000

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
	const char *features;     /* unit economics per feature at the last tick, candidate vs baseline; NULL: none */
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

/* One audit event as stored. */
struct cn_report_audit_row {
	int64_t id;
	int64_t at_ms;
	const char *actor;
	const char *kind;
	const char *reason;
	const char *data_json; /* the event's data (jsonb's text); NULL: none */
	const char *hash;
};

/* Everything one rollout's report shows, as read. The arrays and strings belong to the rows (rd). */
struct cn_report_rows {
	struct cn_report_rollout rollout;
	const struct cn_report_weight *weights; /* oldest first */
	size_t nweights;
	const struct cn_report_slo *slos;       /* in the policy's order */
	size_t nslos;
	const struct cn_report_marker *markers; /* oldest first */
	size_t nmarkers;
	const struct cn_report_audit_row *events; /* oldest first */
	size_t nevents;
	size_t events_total;                    /* events the rollout has (> nevents: the list was cut) */
	struct cn_read *rd;
};

/* Reads everything the report of rollout id shows, in one REPEATABLE READ snapshot. Writes new rows to *out (the
 * caller frees them with cn_report_rows_free); -CN_EINPUT for an unknown rollout, or another -code. */
int cn_store_report(struct cn_store *st, int64_t id, struct cn_report_rows **out, struct cn_err *err);

/* Frees rows and everything they point into. Accepts NULL. */
void cn_report_rows_free(struct cn_report_rows *rows);

#endif
