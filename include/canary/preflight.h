/* Pre-flight (issue 12, items 3 and 4): before any live traffic moves, the candidate's slot is driven directly with
 * the policy's workload (and the baseline's slot with the same prompts, interleaved in time), and judged per
 * prompt-length band by the threshold judge of the live steps as a fixed-sample test. The judge is pure
 * (controller/load/preflight_judge.c); canaryd runs the load on a thread of its own (controller/daemon/preflight.c).
 *
 * The false-rollback budget: with a pre-flight, CN_PREFLIGHT_BUDGET_SHARE of the policy's false_rollback_budget
 * goes to it and the live judges keep the rest, so the chance that a healthy candidate is rolled back by either
 * stays within the budget (union bound). Within the pre-flight, its share is split equally over its SLOs x the
 * three bands x the two sides of each comparison (the candidate's bound and the baseline's). */
#ifndef CANARY_PREFLIGHT_H
#define CANARY_PREFLIGHT_H

#include <stdbool.h>

#include "canary/load.h"
#include "canary/policy-t.h"
#include "canary/rollout-t.h"

#define CN_PREFLIGHT_BUDGET_SHARE 0.2
#define CN_PREFLIGHT_MAX_ATTEMPTS 3 /* runs interrupted by a daemon's death are started again at most this often */

/* The part of the false-rollback budget the live judges use: all of it without a pre-flight. */
static inline double cn_policy_live_budget(const struct cn_policy *p)
{
	double b = p->analysis.false_rollback_budget;
	return p->preflight.enabled ? b * (1 - CN_PREFLIGHT_BUDGET_SHARE) : b;
}

/* The pre-flight's part of it. */
static inline double cn_policy_preflight_budget(const struct cn_policy *p)
{
	return p->analysis.false_rollback_budget * CN_PREFLIGHT_BUDGET_SHARE;
}

/* The pre-flight's judgement: one verdict per SLO and band, with the numbers. */
struct cn_preflight_result {
	bool passed;               /* no verdict failed (inconclusive ones are left to the live steps) */
	int failed, inconclusive;  /* verdicts */
	double alpha;              /* each bound's false-alarm chance */
	int nslos;
	struct cn_slo_result v[CN_PF_MAX_SLOS][CN_NBANDS];
	char reason[512];          /* one line: the outcome and, when failed, the first failing verdict */
};

/* Judges a pre-flight run: cand (and base, NULL with compare: none) as measured, with budget (the pre-flight's
 * part). Fills *out. Pure. */
void cn_preflight_judge(const struct cn_preflight *pf, double budget, const struct cn_load_result *cand,
			const struct cn_load_result *base, struct cn_preflight_result *out);

/* The pre-flight SLO as the live judges' SLO type (contract_violations is judged as a rate of bad answers). */
void cn_preflight_slo(const struct cn_pf_slo *s, struct cn_slo *out);

/* "error_rate", "latency", "ttft", "itl", "contract_violations". */
const char *cn_pf_metric_name(int metric);

/* Converts a client-side timing histogram into the judge's cumulative form (at most CN_MAX_BUCKETS bounds, merged
 * evenly in log space from the first to the last non-empty bucket of a and b, so both share one set of bounds). */
void cn_lhist_to_histograms(const struct cn_lhist *a, const struct cn_lhist *b, struct cn_histogram *outa,
			    struct cn_histogram *outb);

/* ---- a whole pre-flight: the run and its judgement (controller/load/preflight_run.c) ---- */

struct cn_preflight_opts {
	const struct cn_profile *profile;
	const struct cn_preflight *pf;        /* NULL: measure only, no verdicts */
	double budget;                        /* the pre-flight's part of the false-rollback budget */
	const struct cn_contract *contract;   /* the service's; NULL or not declared: answers are not checked */
	const char *candidate_url;            /* http://HOST:PORT of the candidate's server */
	const char *baseline_url;             /* NULL: no baseline arm (compare: none) */
	uint64_t seed;
	const atomic_bool *cancel;            /* optional: stops the run (-CN_EUNAVAIL) */
	void (*progress)(const struct cn_load_progress *p, void *arg);
	void *progress_arg;
	double progress_every_s;
};

struct cn_preflight_outcome {
	struct cn_load_result cand, base;     /* base: zero without a baseline arm */
	bool has_base;
	bool judged;
	struct cn_preflight_result res;       /* when judged */
};

/* Runs the load (both arms, interleaved) and judges it. Returns 0 with *out filled, or the load's error (a bad URL,
 * a contract that does not compile: -CN_EINPUT; cancelled: -CN_EUNAVAIL). Failures of single requests are counted,
 * never returned. */
int cn_preflight_run(const struct cn_preflight_opts *o, struct cn_preflight_outcome *out, struct cn_err *err);

/* The base URL (scheme://host:port) of a slot's server from its metrics_url. Returns 0, or -1 when it has none. */
int cn_slot_base_url(const char *metrics_url, char *buf, size_t size);

#endif
