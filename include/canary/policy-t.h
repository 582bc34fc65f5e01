/* Types of a rollout policy: steps, analysis settings and SLOs. Shared by the loader, the core and the store. */
#ifndef CANARY_POLICY_T_H
#define CANARY_POLICY_T_H

#include <stdbool.h>
#include <stdint.h>

#include "canary/notify-t.h"
#include "canary/preflight-t.h"

#define CN_NAME_MAX 64
#define CN_MAX_STEPS 16
#define CN_MAX_SLOS 16

enum cn_slo_metric {
	CN_METRIC_ERROR_RATE, /* errors / requests */
	CN_METRIC_LATENCY,    /* end-to-end request latency, seconds, from a histogram */
	CN_METRIC_TTFT,       /* time to first token, seconds, from a histogram */
	CN_METRIC_ITL,        /* inter-token latency, seconds, from a histogram */
	/* unit economics (README "Unit economics"): rates, not bad-event counts */
	CN_METRIC_TOKENS_PER_SECOND, /* generation tokens per busy second, from token counters; higher is better */
	CN_METRIC_COST_PER_1K,       /* cost of 1,000 generation tokens, from the slots' cost and the counters */
};

/* True for the unit-economics metrics, judged on rates by cn_judge_slo_econ. */
#define CN_METRIC_IS_ECON(m) ((m) == CN_METRIC_TOKENS_PER_SECOND || (m) == CN_METRIC_COST_PER_1K)

enum cn_judge_kind { CN_JUDGE_THRESHOLD, CN_JUDGE_SEQUENTIAL };

/* What happens when the candidate fails, or when metrics stay inconclusive too long, or an approval times out. */
enum cn_fallback { CN_FALLBACK_ROLLBACK, CN_FALLBACK_PAUSE, CN_FALLBACK_WAIT };

struct cn_step {
	double weight;    /* candidate share of traffic in percent, (0, 100]; strictly increasing over steps */
	int64_t hold_ms;  /* minimum time spent at this step, > 0 */
	bool approval;    /* a person must approve before this step's weight is applied */
};

struct cn_analysis {
	int64_t interval_ms;             /* tick interval */
	int64_t min_requests;            /* candidate requests needed in a step before it may advance */
	int failing_ticks;               /* consecutive failing ticks that confirm a regression, >= 1 */
	int64_t inconclusive_timeout_ms; /* how long verdicts may stay inconclusive ... */
	enum cn_fallback on_inconclusive; /* ... before this happens (rollback or pause) */
	enum cn_judge_kind judge;
	double false_rollback_budget;    /* alpha for the sequential judge, a fraction in (0, 0.5) */
};

struct cn_slo {
	char name[CN_NAME_MAX];  /* unique within the policy, e.g. "p99-latency" */
	enum cn_slo_metric metric;
	double quantile;         /* (0,1) for histogram metrics; NAN for error rate */
	double max;              /* absolute maximum (seconds, or a fraction for error rate); NAN if unset */
	double max_increase;     /* maximum candidate/baseline ratio, e.g. 1.2; NAN if unset */
	double tolerance;        /* sequential judge: acceptable ratio of bad-event rates; NAN = use max_increase */
	double min_ratio;        /* tokens_per_second: minimum candidate/baseline ratio, (0, 1]; NAN if unset */
};

struct cn_policy {
	char name[CN_NAME_MAX];
	char description[256];
	struct cn_step steps[CN_MAX_STEPS];
	int nsteps;
	struct cn_analysis analysis;
	struct cn_slo slos[CN_MAX_SLOS];
	int nslos;
	enum cn_fallback on_failure;        /* rollback (default) or pause */
	int64_t approval_timeout_ms;        /* 0: wait for ever */
	enum cn_fallback on_approval_timeout; /* rollback or wait */
	bool approver_must_differ;          /* the approver may not be who started the rollout */
	struct cn_notify notify;            /* webhooks for this policy's rollouts */
	struct cn_preflight preflight;      /* load the candidate's slot before step 1 (enabled: the key is there) */
};

#endif
