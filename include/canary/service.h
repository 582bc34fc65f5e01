/* Services: load and validate a service file (gateway binding, two slots, metrics source and names). */
#ifndef CANARY_SERVICE_H
#define CANARY_SERVICE_H

#include <stddef.h>

#include "canary/err.h"
#include "canary/metrics-t.h"
#include "canary/policy-t.h"
#include "canary/service-t.h"
#include "canary/template.h"

/* Parses and validates a service from YAML text; like cn_policy_parse. Metric names are filled from the preset,
 * then overridden by any explicit names. */
int cn_service_parse(const char *text, size_t len, const char *origin, struct cn_service *out, struct cn_err *err);

/* Reads a file and parses it; *source_out as in cn_policy_load_file. */
int cn_service_load_file(const char *path, struct cn_service *out, char **source_out, struct cn_err *err);

/* Fills names with a preset's series names (vllm, tgi, triton); custom leaves them empty. */
void cn_metric_names_preset(enum cn_metrics_preset preset, struct cn_metric_names *names);

/* The word for a gateway kind as written in service files ("haproxy", "nginx", "command", "gateway-api", "kserve"); static string. */
const char *cn_gateway_kind_name(enum cn_gateway_kind kind);

/* Writes slot (0 or 1)'s cost from the service file into *out (NAN fields when it has none). */
void cn_service_slot_cost(const struct cn_service *svc, int slot, struct cn_cost *out);

/* Checks that a policy's objectives can be computed from a service's metrics and costs: tokens_per_second and
 * cost_per_1k_tokens need a generation tokens counter and the latency histogram; cost_per_1k_tokens a cost on both
 * slots. policy_source (its origin names it in messages) is the policy's YAML, for the position of the SLO.
 * Returns 0, or -CN_EINPUT with "ORIGIN:LINE:COL: slo 'NAME': ..." and what to do. */
int cn_policy_service_check(const struct cn_policy *p, const char *policy_source, const char *origin,
			    const struct cn_service *svc, struct cn_err *err);

#define CN_COMMAND_VARS 9 /* placeholders of the command gateway's templates */

/* Fills vars with the placeholders of the command gateway's templates for a move that gives slot cand (0 or 1)
 * the share cand_pct and the other slot base_pct (percent as text): {candidate_percent} {baseline_percent}
 * {candidate_slot} {baseline_slot} {candidate_server} {baseline_server} (only when both slots have a server)
 * {service} {percent:SLOT}. The values point into svc, the percent strings and names, which must outlive vars.
 * Returns the number of vars. */
size_t cn_service_command_vars(const struct cn_service *svc, int cand, const char *cand_pct, const char *base_pct,
			       char names[2][CN_NAME_MAX + 8], struct cn_tmpl_var vars[CN_COMMAND_VARS]);

#endif
