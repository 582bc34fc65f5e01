/* Types of the rollout state machine and the judge: state, verdicts, decisions. */
#ifndef CANARY_ROLLOUT_T_H
#define CANARY_ROLLOUT_T_H

#include <stdbool.h>
#include <stdint.h>

#include "canary/metrics-t.h"
#include "canary/policy-t.h"

enum cn_phase {
	CN_PHASE_PENDING,           /* created, no weight applied yet */
	CN_PHASE_PROGRESSING,       /* at step `step`, being judged */
	CN_PHASE_PAUSED,            /* held by an operator or by the policy; weight kept */
	CN_PHASE_AWAITING_APPROVAL, /* the next step requires approval */
	CN_PHASE_PROMOTED,          /* terminal: candidate at 100%, its slot is live */
	CN_PHASE_ROLLED_BACK,       /* terminal: regression; candidate at 0% */
	CN_PHASE_ABORTED,           /* terminal: an operator aborted; candidate at 0% */
	CN_PHASE_FAILED,            /* terminal: could not continue (e.g. inconclusive too long with no fallback) */
};

enum cn_verdict { CN_VERDICT_PASS, CN_VERDICT_FAIL, CN_VERDICT_INCONCLUSIVE };

/* One SLO's verdict at one tick, always with the numbers it came from. */
struct cn_slo_result {
	enum cn_verdict verdict;
	double candidate;    /* the candidate's value (fraction or seconds); NAN if unknown */
	double baseline;     /* the baseline's value; NAN if unknown */
	double objective;    /* the effective limit the candidate was held to; NAN if none */
	double n_candidate;  /* requests behind the candidate's value */
	double n_baseline;
	char why[CN_WHY_MAX]; /* one line a person understands */
	/* The sequential judge's numbers (NAN with the threshold judge). With it, candidate and baseline above are
	 * the bad-event fractions over the rollout (errors, or requests slower than `threshold`), objective is
	 * baseline * tolerance (NAN without a tolerance), and n_* the requests behind them. */
	double statistic;    /* ln of the mixture likelihood ratio "candidate worse than baseline", dispersion-scaled */
	double boundary;     /* ln(1/alpha) of this SLO: the statistic at or above it rolls back */
	double ratio;        /* estimated candidate/baseline bad-event rate ratio */
	double ratio_upper;  /* time-uniform upper bound on that ratio; +Inf while none is established */
	double tolerance;    /* the ratio the bound must fall below for a step to advance; NAN: no such condition */
	double threshold;    /* latency SLOs: seconds; a request slower than this is a bad event */
	double dispersion;   /* estimated dispersion index of bad events (1 = independent); the statistic is divided by it */
	bool promotable;     /* the evidence lets the candidate take most traffic (bound below tolerance, or none) */
	bool plausible;      /* the evidence favours "within tolerance" over "at it": enough for a minority step */
};

/* The grid of rate ratios r the sequential test keeps a likelihood ratio for (see judge.h). */
#define CN_SEQ_NGRID 12

/* The rollback ratios (the grid's 1.5, 1.75, 2, 2.5, 3): a restarted process keeps ln Lambda for these only. */
#define CN_SEQ_NROLL 5
/* Restarted processes kept at once (the weakest is dropped to make room: see seqtest.c). */
#define CN_SEQ_NRESTART 8
/* The absolute-max test's ratios c (rate = c x max): see cn_seq_max_grid. */
#define CN_SEQ_NMAX 5

/* One restarted rollback process: ln Lambda(r) over the ticks since it started. */
struct cn_seq_proc {
	int index;                 /* the restart's number m >= 1: its weight is (1 - w0) / (m (m + 1)) */
	double llr[CN_SEQ_NROLL];
};

/* One sequential test, carried across steps: log-likelihood ratios against r = 1 and dispersion sums. */
struct cn_seq_stat {
	double llr[CN_SEQ_NGRID]; /* sum over ticks of ln Lambda(r) for r = cn_seq_grid[i], not dispersion-scaled */
	double llr_tol;           /* the same at r = tol */
	double tol;               /* the tolerance llr_tol is kept for; NAN if none */
	double threshold;         /* latency SLOs: the bad-event threshold in seconds, chosen once; NAN until then */
	double x_c, x_b, n_c, n_b; /* totals of bad events and requests that entered the test */
	double disp_xx_n;         /* sum of x_b^2 / n_b over ticks (baseline dispersion) */
	double disp_x, disp_n;    /* sums of x_b and n_b over the same ticks */
	int disp_ticks;           /* ticks in the dispersion sums */
	double disp_c_ss;         /* candidate: sum of (rate_k - rate_k-1)^2 / (1/n_k + 1/n_k-1) (successive differences) */
	double disp_c_x, disp_c_n; /* candidate: sums of x_c and n_c over its dispersion ticks */
	double disp_c_prev_x, disp_c_prev_n; /* candidate: the previous tick's counts (n 0: none yet) */
	int disp_c_terms;         /* candidate: successive differences in disp_c_ss */
	double disp_c_max;        /* candidate: the largest of those terms (left out: a level shift is one term) */
	double upper_best;        /* the best time-uniform upper bound on the ratio so far; +Inf while none */
	int ticks;                /* ticks that entered the test */
	/* late onset: the rollback statistic is a weighted sum of the process above (from the start) and processes
	 * restarted at step starts and every CN_SEQ_RESTART_EVENTS expected bad events (seqtest.c) */
	struct cn_seq_proc rs[CN_SEQ_NRESTART]; /* the restarted processes kept */
	int nrs;                  /* how many of rs are in use */
	int restarts;             /* restarts so far: the next one is number restarts + 1 */
	double since;             /* expected candidate bad events (under the null) since the last (re)start */
	int since_ticks;          /* ticks since the last (re)start */
	/* error-rate SLOs with a max: sum over ticks of x_c ln c - n_c max (c - 1), c = cn_seq_max_grid[i] */
	double llr_max[CN_SEQ_NMAX];
	double max;               /* the max llr_max is kept for; NAN: none */
};

/* The sequential judge's memory: one test per SLO (per rollout) and the sample-ratio test (per step). */
struct cn_seq_state {
	struct cn_seq_stat slo[CN_MAX_SLOS];
	struct cn_seq_stat srm;
};

/* Unit-economics evidence (cn_judge_slo_econ): per tick g generation tokens and b busy seconds (the latency
 * histogram's _sum: seconds the slot's servers spent on requests), over the ticks in which both were clean; the
 * sums and the moments the ratio's variance is estimated from. */
struct cn_econ_acc {
	double ticks;
	double g, b;           /* sums */
	double gg, bb, gb;     /* sums of squares and products */
	double prompt;         /* prompt tokens over the same ticks (shown, not judged); NAN: not exposed */
	double seconds;        /* wall-clock seconds those ticks spanned */
};

/* Deltas accumulated since the current step began. */
struct cn_counters {
	double requests;
	double errors;
	struct cn_histogram latency, ttft, itl;
	struct cn_econ_acc econ;
	struct cn_cost cost;   /* the slot's cost as last read (configuration) */
	int nfeatures;         /* per-feature deltas (names as in struct cn_sample) */
	struct cn_feature features[CN_MAX_FEATURES];
};

/* Everything the core needs to carry from one tick to the next. Plain data: the store persists it. */
struct cn_rollout_state {
	enum cn_phase phase;
	enum cn_phase paused_from;    /* phase to go back to on resume */
	int step;                     /* index of the current step; -1 before the first */
	double weight;                /* candidate share in percent that should be on the gateway */
	int64_t step_started_ms;
	int64_t last_tick_ms;         /* 0 before the first tick */
	int64_t waiting_since_ms;     /* when awaiting_approval began */
	int failing_ticks;            /* consecutive ticks with at least one failing SLO */
	int64_t inconclusive_since_ms; /* 0 when the last verdicts were conclusive */
	bool approved;                /* the approval that the next step requires has been given */
	bool have_last;
	struct cn_observation last;   /* the previous tick's cumulative counters */
	struct cn_counters acc_baseline, acc_candidate;
	/* The baseline's evidence from the last step in which it had traffic, frozen when a step takes it all (100%):
	 * the threshold judge's reference when the baseline has no traffic of its own. */
	struct cn_counters ref_baseline;
	struct cn_seq_state seq;      /* sequential judge: evidence carried across steps */
};

enum cn_decision {
	CN_DECIDE_HOLD,             /* stay at the current weight */
	CN_DECIDE_START,            /* first step's weight applied */
	CN_DECIDE_ADVANCE,          /* next step's weight applied */
	CN_DECIDE_AWAIT_APPROVAL,   /* the next step needs a person */
	CN_DECIDE_PROMOTE,          /* candidate to 100%, terminal */
	CN_DECIDE_ROLLBACK,         /* candidate to 0%, terminal */
	CN_DECIDE_PAUSE,            /* held for a person */
	CN_DECIDE_RESUME,
	CN_DECIDE_ABORT,
};

enum cn_command_kind {
	CN_CMD_APPROVE,
	CN_CMD_PAUSE,
	CN_CMD_RESUME,
	CN_CMD_ABORT,
	CN_CMD_PROMOTE_FULL,  /* emergency: skip remaining steps and analysis */
};

/* What the economics look like at this tick, candidate [0] against baseline [1] (at 100% the baseline frozen from
 * the earlier steps), over the step's evidence: shown in status, the audit and the report; judged only through the
 * SLOs. NAN where it cannot be computed. */
struct cn_econ_feature {
	char name[CN_FEATURE_MAX];
	double tokens[2];       /* generation tokens in the step */
	double latency_mean[2]; /* seconds: the latency histogram's _sum / _count for the feature */
	double cost_1k[2];      /* cost of 1,000 of its tokens (its busy seconds at the slot's price, or the fixed price) */
};

struct cn_econ_view {
	bool have;              /* the policy judges economics, or the step counted tokens */
	double tps[2];          /* generation tokens per busy second */
	double cost_1k[2];      /* cost per 1,000 generation tokens */
	double tokens[2], prompt_tokens[2];
	double slot_cost_per_hour[2]; /* cost_per_hour x replicas; NAN with a fixed price or none */
	int nfeatures;          /* features in both arms' breakdown, at most CN_MAX_FEATURES */
	int dropped;            /* distinct features beyond the cap on the last page (summed as "other") */
	struct cn_econ_feature f[CN_MAX_FEATURES];
};

struct cn_tick_result {
	struct cn_rollout_state next;
	enum cn_decision decision;
	bool set_weight;              /* the gateway must be moved to `weight` */
	double weight;                /* candidate percent */
	struct cn_slo_result slos[CN_MAX_SLOS];
	int nslos;
	char reason[256];             /* why, in words and numbers */
	struct cn_econ_view econ;     /* unit economics and the per-feature breakdown (have false: none) */
};

#endif
