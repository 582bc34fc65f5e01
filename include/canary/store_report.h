/* The data of one rollout's report, read from the store: the rollout, its weight changes, each SLO's verdicts over
 * time, the decision points (automatic decisions and operators' commands) and the audit events. The page itself is
 * rendered by cn_report_html (canary/report_html.h). */
#ifndef CANARY_STORE_REPORT_H
#define CANARY_STORE_REPORT_H

#include <stdint.h>

#include "canary/err.h"
#include "canary/report_html.h"

struct cn_store;

/* Most points per SLO chart (longer rollouts are thinned, keeping every failing verdict), decision points and audit
 * events one report holds. */
#define CN_REPORT_SLO_POINTS_MAX 1500
#define CN_REPORT_MARKERS_MAX 500
#define CN_REPORT_EVENTS_MAX 5000

struct cn_report_data;

/* Reads everything the report of rollout id shows, in one REPEATABLE READ snapshot. Writes a new report data to
 * *out (the caller frees it with cn_report_data_free); -CN_EINPUT for an unknown rollout, or another -code. */
int cn_store_report(struct cn_store *st, int64_t id, struct cn_report_data **out, struct cn_err *err);

/* The report to render. Borrowed from d: valid until cn_report_data_free(d). */
const struct cn_report *cn_report_data_get(const struct cn_report_data *d);

/* Frees d and everything its report points into. Accepts NULL. */
void cn_report_data_free(struct cn_report_data *d);

#endif
