/* Failover drills, the pure part: the state machine of one drill (shift all traffic to the warm secondary slot,
 * hold while its SLOs are judged, shift back) and the numbers it keeps per window. No I/O, no clock: canaryd passes
 * the time (the database's clock, as for cn_tick), the counters it read and the gateway's confirmations. */
#ifndef CANARY_DRILL_H
#define CANARY_DRILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canary/metrics-t.h"
#include "canary/policy-t.h"
#include "canary/rollout-t.h"

enum cn_drill_phase {
	CN_DRILL_PENDING,   /* created; no reading yet */
	CN_DRILL_BASELINE,  /* measuring the primary before the shift; all traffic on the primary */
	CN_DRILL_SHIFTING,  /* the secondary's 100% is the intent; waiting for the gateway to confirm it */
	CN_DRILL_HOLDING,   /* all traffic on the secondary, judged every tick */
	CN_DRILL_RESTORING, /* the primary's 100% is the intent; ends in `outcome` once the gateway confirmed it */
	CN_DRILL_PASSED,    /* terminal: held for the whole hold with every SLO passing; primary restored */
	CN_DRILL_CUT_SHORT, /* terminal: an SLO was breached on the secondary; primary restored */
	CN_DRILL_ABORTED,   /* terminal: an operator ended it; primary restored */
	CN_DRILL_FAILED,    /* terminal: it could not go on (no confirmation, no verdict, its daemon died); restored */
};

/* What a drill runs with. */
struct cn_drill_config {
	int64_t hold_ms;           /* time on the secondary once the shift is confirmed */
	int64_t baseline_ms;       /* time measuring the primary before the shift */
	int64_t shift_timeout_ms;  /* the gateway must confirm the shift within this, or the drill restores (failed) */
	const struct cn_policy *policy; /* whose SLOs judge the secondary (and whose analysis settings) */
};

/* The state between turns. Plain data. */
struct cn_drill_state {
	enum cn_drill_phase phase;
	enum cn_drill_phase outcome;   /* RESTORING: the terminal phase once the primary is confirmed */
	double weight;                 /* the secondary's intended share in percent: 0 or 100 */
	int64_t phase_started_ms;
	int64_t shift_started_ms, shift_done_ms;     /* intent to the secondary committed / confirmed (0: not yet) */
	int64_t hold_started_ms;
	int64_t restore_started_ms, restore_done_ms; /* intent to the primary committed / confirmed */
	bool window_open;              /* the first tick after a confirmed move still counts in the move's window */
	bool have_last;
	struct cn_sample last_primary, last_secondary; /* the last usable readings, the bases of the next deltas */
	struct cn_counters primary_ref;  /* the primary during the baseline: what relative limits are taken from */
	struct cn_counters shift;        /* both slots from the last tick before the shift to the first after it */
	struct cn_counters hold_sec;     /* the secondary during the hold: what is judged */
	struct cn_counters hold_pri;     /* the primary during the hold (what still reached it) */
	struct cn_counters restore;      /* both slots from the decision to restore to the first tick after it */
	struct cn_counters tick_pri, tick_sec; /* this tick's deltas of each slot (what the report draws) */
	struct cn_slo_result slos[CN_MAX_SLOS]; /* the last verdicts of the hold */
	int nslos;
	char reason[512];              /* where it is and why, in words and numbers */
};

/* The phase's name as stored ("cut_short"), and back (-1 for an unknown name, *out untouched). */
const char *cn_drill_phase_name(enum cn_drill_phase p);
int cn_drill_phase_parse(const char *s, enum cn_drill_phase *out);

/* True for the four terminal phases. */
bool cn_drill_ended(enum cn_drill_phase p);

/* A new drill: pending, weight 0. */
void cn_drill_init(struct cn_drill_state *s);

/* The state a daemon continues from when it has none in memory (it took the drill over, or restarted), from the
 * stored phase, outcome and weight: before the shift the baseline starts again (nothing was moved); once the shift
 * was intended the evidence is gone, so the primary is restored and the drill fails (`why` says why); a restore goes
 * on with its outcome. */
void cn_drill_resume(enum cn_drill_phase phase, enum cn_drill_phase outcome, double weight, int64_t now_ms,
		     const char *why, struct cn_drill_state *out);

/* One tick at now_ms with the primary's and the secondary's readings (either may be NULL or not ok: no evidence
 * this tick). Writes the next state to *out (out may not alias in); *set_weight tells whether out->weight is a new
 * intent the gateway must be moved to (commit it first). */
void cn_drill_tick(const struct cn_drill_config *cfg, const struct cn_drill_state *in,
		   const struct cn_sample *primary, const struct cn_sample *secondary, int64_t now_ms,
		   struct cn_drill_state *out, bool *set_weight);

/* The gateway confirmed the secondary's share `weight` at now_ms. The confirmed shift starts the hold; the
 * confirmed restore lets the next tick end the drill. Anything else (a reconciliation) changes nothing. */
void cn_drill_confirmed(const struct cn_drill_state *in, double weight, int64_t now_ms, struct cn_drill_state *out);

/* An operator's abort (or any reason to stop, with outcome CN_DRILL_ABORTED or CN_DRILL_FAILED): the primary's
 * share becomes the intent and the drill restores; a restore already under way keeps its outcome. Nothing for an
 * ended drill. *set_weight as for cn_drill_tick. */
void cn_drill_stop(const struct cn_drill_state *in, enum cn_drill_phase outcome, const char *why, int64_t now_ms,
		   struct cn_drill_state *out, bool *set_weight);

/* The numbers of one window of counters: requests, errors, error rate (NAN without requests) and the p99 of
 * latency (NAN without a histogram). */
struct cn_drill_numbers {
	double requests, errors, error_rate, p99_s;
};
void cn_drill_numbers(const struct cn_counters *c, struct cn_drill_numbers *out);

/* The numbers in words into buf: "1200 requests, 6 errors (0.50%), p99 0.41s" or "no requests"; returns buf. */
const char *cn_drill_numbers_text(const struct cn_drill_numbers *n, char *buf, size_t size);

/* What a drill reports: the timings (seconds; NAN where it did not happen) and the numbers of each window. */
struct cn_drill_figures {
	double shift_s;    /* intent to the secondary committed -> the gateway confirmed it */
	double hold_s;     /* confirmed shift -> decision to restore */
	double restore_s;  /* intent to the primary committed -> the gateway confirmed it */
	struct cn_drill_numbers baseline;   /* the primary before the shift */
	struct cn_drill_numbers shift;      /* both slots around the shift */
	struct cn_drill_numbers hold;       /* the secondary during the hold */
	struct cn_drill_numbers hold_primary; /* what still reached the primary during the hold */
	struct cn_drill_numbers restore;    /* both slots around the restore */
};
void cn_drill_figures(const struct cn_drill_state *s, struct cn_drill_figures *out);

/* Completes f with what an earlier daemon recorded (a drill taken over keeps the timings and windows measured
 * before): every timing that is NAN in f and every window without requests in f is taken from earlier. */
void cn_drill_figures_merge(struct cn_drill_figures *f, const struct cn_drill_figures *earlier);

#endif
