/* Types of the SLA ledger: a contract's objectives and credit table (filled by the contract loader, canary/sla_contract.h),
 * the per-minute rows canaryd records for a service (read back by the store, canary/store_sla.h), and what the core
 * computes from them for one month (attainment per objective, the windows that missed, the credit owed). */
#ifndef CANARY_SLA_T_H
#define CANARY_SLA_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canary/policy-t.h"

#define CN_SLA_MAX_OBJECTIVES 16
#define CN_SLA_MAX_CREDITS 16
#define CN_SLA_AT_MAX 320          /* "FILE:LINE:COL" of a key, for errors found after loading */
#define CN_SLA_MINUTE_MS 60000     /* the ledger's row: one service-minute */

enum cn_sla_metric { CN_SLA_LATENCY, CN_SLA_TTFT, CN_SLA_AVAILABILITY };

/* How a minute without data counts. miss: a window with such a minute is missed (a month-long objective counts the
 * minute as entirely bad); exclude: such windows (minutes) are left out of the attainment. */
enum cn_sla_no_data { CN_SLA_NODATA_MISS, CN_SLA_NODATA_EXCLUDE };

struct cn_sla_credit {
	double below;              /* attainment below this fraction ... */
	double credit;             /* ... earns this fraction of the price */
};

struct cn_sla_objective {
	char name[CN_NAME_MAX];
	int metric;                /* enum cn_sla_metric */
	double quantile;           /* latency, ttft: (0, 1) */
	int64_t max_ms;            /* latency, ttft: the quantile's limit */
	double min;                /* availability: the lowest share of good requests, a fraction */
	char window[32];           /* as written: "month" or a duration */
	int64_t window_ms;         /* 0: the calendar month (UTC); else a whole number of minutes that divides a day */
	double target;             /* windowed: the share of windows that must meet it (a fraction); month: NAN */
	char metric_at[CN_SLA_AT_MAX]; /* where `metric` is written, for "cannot be computed" after loading */
	struct cn_sla_credit credits[CN_SLA_MAX_CREDITS]; /* this objective's own credit table (ncredits 0: the */
	int ncredits;                                     /* contract's) */
};

struct cn_sla_contract {
	char name[CN_NAME_MAX];
	char description[256];
	char service[CN_NAME_MAX]; /* the service it covers ("": any, named on the command line) */
	char service_at[CN_SLA_AT_MAX]; /* where `service` is written ("" when absent) */
	double price;              /* the month's price, >= 0 */
	char currency[16];
	int no_data;               /* enum cn_sla_no_data */
	struct cn_sla_objective objectives[CN_SLA_MAX_OBJECTIVES];
	int nobjectives;
	struct cn_sla_credit credits[CN_SLA_MAX_CREDITS];
	int ncredits;
};

/* One bucket layout of a histogram, stored once (upper bounds in seconds, the last +Inf). */
struct cn_sla_bounds {
	int id;
	int n;
	const double *le;
};

/* One recorded service-minute. Counts are the minute's own (not cumulative); a histogram's counts are per bucket
 * (not cumulative either), n of them for its bounds. data false: canaryd looked and could not tell (note says why). */
struct cn_sla_minute {
	int64_t minute_us;         /* the minute's start, microseconds since 1970-01-01 UTC */
	bool data;
	double requests, errors;
	int lat_bounds;            /* an id of the ledger's bounds; 0: no histogram */
	const int32_t *lat;
	int ttft_bounds;
	const int32_t *ttft;
	const char *note;
};

/* A service's recorded minutes over a period, by time. */
struct cn_sla_ledger {
	const struct cn_sla_bounds *bounds;
	size_t nbounds;
	const struct cn_sla_minute *minutes;
	size_t n;
};

enum cn_sla_wstate { CN_SLA_MET, CN_SLA_MISSED, CN_SLA_NODATA, CN_SLA_PENDING };

/* One window of one objective. */
struct cn_sla_window {
	int64_t start_us, end_us;
	int state;                 /* enum cn_sla_wstate */
	double value;              /* latency: the quantile in seconds; availability: the good share; NAN: no requests */
	double total;              /* requests (availability) or observations (latency) */
	double bad;                /* errors, or observations above the limit */
	int nodata_minutes;
	bool mixed_bounds;         /* the histogram's buckets changed within the window (value from the latest) */
};

struct cn_sla_objective_result {
	const struct cn_sla_objective *obj;
	struct cn_sla_window *windows;  /* every window of the month (one for a month-long objective) */
	size_t nwindows;
	size_t met, missed, nodata, pending;
	double attainment;         /* a fraction; NAN when nothing could be counted yet */
	bool ok;                   /* attainment reaches the target (month: the objective itself) */
	double credit;             /* the credit table's fraction for this attainment */
	double total, bad;         /* the month's requests or observations, and the bad ones */
	int64_t minutes_data;      /* elapsed minutes with this objective's numbers (a latency objective needs the */
	int64_t minutes_nodata;    /* minute's histogram too), and those without */
};

struct cn_sla_result {
	int64_t month_start_us, month_end_us, now_us;
	int days;
	int64_t minutes_elapsed, minutes_data, minutes_nodata;
	struct cn_sla_objective_result objectives[CN_SLA_MAX_OBJECTIVES];
	int nobjectives;
	double credit;             /* the largest of the objectives' credits, a fraction */
	double credit_amount;      /* credit x price */
	int credit_from;           /* the objective that set it, -1: none */
};

#endif
