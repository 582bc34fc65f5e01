/* The normalised policy and service as JSON: the `spec` stored with each version (store) and printed by
 * `canaryctl policy|service lint --output json`. One encoder for both, so what lint shows is what is stored. */
#ifndef CANARY_SPEC_JSON_H
#define CANARY_SPEC_JSON_H

#include <jansson.h>

#include "canary/policy-t.h"
#include "canary/service-t.h"

/* The normalised policy: every field, defaults as loaded, durations in ms, NaN as null.
 * Returns a new reference (the caller decrefs) or NULL when out of memory. */
json_t *cn_policy_to_json(const struct cn_policy *p);

/* The normalised service. Returns a new reference (the caller decrefs) or NULL when out of memory. */
json_t *cn_service_to_json(const struct cn_service *sv);

#endif
