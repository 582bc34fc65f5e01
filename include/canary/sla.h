/* The SLA ledger's arithmetic (pure: no I/O, no clock; time is an argument): UTC months, and one month of a
 * service's recorded minutes judged against a contract: attainment per objective, each window met, missed or
 * without data, and the credit owed. */
#ifndef CANARY_SLA_H
#define CANARY_SLA_H

#include <stddef.h>
#include <stdint.h>

#include "canary/err.h"
#include "canary/metrics-t.h"
#include "canary/sla-t.h"

/* Parses a month "YYYY-MM" (years 1970..9999) into its first instant and the next month's, in microseconds since
 * 1970-01-01 UTC, and its number of days. Returns 0, or -CN_EINPUT with the reason. Outputs written only on
 * success. */
int cn_sla_month(const char *s, int64_t *start_us, int64_t *end_us, int *days, struct cn_err *err);

/* The ledger row's histogram as a cumulative one (counts per bucket summed up to each bound) into *out. Returns false
 * when the row has none or its bounds are unknown to the ledger. */
bool cn_sla_minute_histogram(const struct cn_sla_ledger *l, int bounds, const int32_t *counts,
			     struct cn_histogram *out);

/* Judges ledger l (rows in [start_us, end_us) are used; sorted by minute) against contract c for the month
 * [start_us, end_us), as of now_us (minutes that have not ended are pending, never missed). Writes a new result to
 * *out (cn_sla_result_free frees it); returns 0 or -CN_EINTERNAL (out of memory). */
int cn_sla_evaluate(const struct cn_sla_contract *c, const struct cn_sla_ledger *l, int64_t start_us, int64_t end_us,
		    int64_t now_us, struct cn_sla_result **out, struct cn_err *err);

/* Frees a result; accepts NULL. */
void cn_sla_result_free(struct cn_sla_result *r);

/* The credit for objective o's attainment from its own credit table, else the contract's: the largest credit whose
 * `below` the attainment is under; 0 for NAN or none. */
double cn_sla_credit_for(const struct cn_sla_contract *c, const struct cn_sla_objective *o, double attainment);

/* A window's value for people into out: a latency in ms under 1 s ("812 ms") else in s ("1.02 s"), availability in
 * percent ("99.950%"); `none` for NAN. Returns out. */
const char *cn_sla_value_text(const struct cn_sla_objective *o, double v, const char *none, char *out, size_t size);

/* Words for people: "latency", "ttft", "availability"; "met", "missed", "no data", "pending" (static strings). */
const char *cn_sla_metric_name(int metric);
const char *cn_sla_wstate_name(int state);

#endif
