/* JSON encodings of samples, observations and the core's rollout state, for the store and `--output json`. */
#ifndef CANARY_STATE_JSON_H
#define CANARY_STATE_JSON_H

#include <jansson.h>

#include "canary/err.h"
#include "canary/metrics-t.h"
#include "canary/rollout-t.h"

/* Encodes one variant's cumulative counters. Returns a new reference (the caller decrefs) or NULL. */
json_t *cn_sample_to_json(const struct cn_sample *s);
/* Decodes what cn_sample_to_json made. Returns 0, or -CN_EINTERNAL when the document does not fit. */
int cn_sample_from_json(const json_t *j, struct cn_sample *out, struct cn_err *err);

/* Encodes the whole core state. Returns a new reference (the caller decrefs) or NULL. */
json_t *cn_state_to_json(const struct cn_rollout_state *st);
/* Decodes what cn_state_to_json made into *out (unspecified when it fails). */
int cn_state_from_json(const json_t *j, struct cn_rollout_state *out, struct cn_err *err);

/* Encodes one tick's SLO verdicts as an array of objects. Returns a new reference. */
json_t *cn_slo_results_to_json(const struct cn_policy *p, const struct cn_slo_result *r, int n);

#define CN_ECON_LINE_MAX 1024 /* the per-feature breakdown as one line */

/* The tick's unit economics ({arms: {candidate, baseline}, features: [...], features_dropped, features_line}) as a
 * new object, or NULL when there are none (v->have false). */
json_t *cn_econ_view_to_json(const struct cn_econ_view *v);

/* Adds the per-feature breakdown line ("features") to the entries of slos (as cn_slo_results_to_json made them)
 * whose SLO is an economics one, so the tick's audit event carries it. Nothing without a breakdown. */
void cn_slo_results_add_econ(json_t *slos, const struct cn_policy *p, const struct cn_econ_view *v);

/* A double as JSON: an integer when it is a whole number below 2^53, else a real, or null for NaN and infinities
 * (JSON has neither). Returns a new reference. */
json_t *cn_json_real(double v);
/* The inverse: null -> NAN; a number -> its value. */
double cn_json_get_real(const json_t *j);

#endif
