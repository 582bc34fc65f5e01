/* Where a policy meets a service: objectives that need what the service file configures (token counters, costs)
 * are checked when a rollout pairs the two (`rollout start`, `policy lint --service`), with the SLO's position in
 * the policy file. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "canary/policy.h"
#include "canary/service.h"
#include "canary/yaml.h"

void cn_service_slot_cost(const struct cn_service *svc, int slot, struct cn_cost *out)
{
	const struct cn_slot *sl = &svc->slots[slot ? 1 : 0];
	out->per_hour = sl->cost_per_hour > 0 ? sl->cost_per_hour : NAN;
	out->replicas = isfinite(out->per_hour) ? (sl->replicas > 0 ? sl->replicas : 1) : NAN;
	out->per_1k_tokens = sl->price_per_1k_tokens > 0 ? sl->price_per_1k_tokens : NAN;
}

static bool slot_has_cost(const struct cn_slot *sl)
{
	return sl->cost_per_hour > 0 || sl->price_per_1k_tokens > 0;
}

/* The node of slos[i].metric in the policy's YAML (or the entry, or NULL when the text does not parse). */
static const struct cn_ynode *slo_node(const struct cn_ynode *root, int i)
{
	const struct cn_ynode *slos = cn_ynode_get(root, "slos");
	if (!slos || slos->kind != CN_Y_SEQ || (size_t)i >= slos->n)
		return NULL;
	const struct cn_ynode *m = cn_ynode_get(slos->kids[i], "metric");
	return m ? m : slos->kids[i];
}

int cn_policy_service_check(const struct cn_policy *p, const char *policy_source, const char *origin,
			    const struct cn_service *svc, struct cn_err *err)
{
	struct cn_ynode *root = NULL;
	struct cn_err yerr = { 0 };
	struct cn_load ld = { .origin = origin ? origin : "policy", .err = err };
	const struct cn_metric_names *n = &svc->metrics.names;
	int rc = 0;

	if (policy_source && cn_yaml_read(policy_source, strlen(policy_source), ld.origin, &root, &yerr) < 0)
		root = NULL; /* a stored policy parsed once already; without positions the message says 1:1 */
	for (int i = 0; i < p->nslos && rc == 0; i++) {
		const struct cn_slo *s = &p->slos[i];
		if (!CN_METRIC_IS_ECON(s->metric))
			continue;
		const struct cn_ynode *at = root ? slo_node(root, i) : NULL;
		const char *metric = cn_metric_name(s->metric);
		if (!n->gen_tokens[0])
			rc = cn_ld_fail(&ld, at, "slo '%s': %s needs a generation tokens counter, but service '%s' names "
					"none; set metrics.names.gen_tokens (vllm: vllm:generation_tokens_total)", s->name,
					metric, svc->name);
		else if (!n->latency[0])
			rc = cn_ld_fail(&ld, at, "slo '%s': %s needs the latency histogram's _sum (busy seconds), but "
					"service '%s' names no latency histogram; set metrics.names.latency", s->name, metric,
					svc->name);
		else if (s->metric == CN_METRIC_COST_PER_1K && !(slot_has_cost(&svc->slots[0]) &&
								 slot_has_cost(&svc->slots[1])))
			rc = cn_ld_fail(&ld, at, "slo '%s': cost_per_1k_tokens needs each slot's cost, but service '%s' "
					"gives none; add cost_per_hour (with replicas) or price_per_1k_tokens to both slots",
					s->name, svc->name);
	}
	cn_ynode_free(root);
	return rc;
}
