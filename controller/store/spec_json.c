/* The normalised policy and service as JSON (canary/spec_json.h): the spec stored with each version. */
#include "canary/spec_json.h"

#include <math.h>
#include <string.h>

#include "canary/policy.h"
#include "canary/service.h"

static json_t *num_or_null(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

/* The webhooks, without an inline secret (the spec is shown by lint and read by every viewer; canaryd reads the key
 * from the version's source). NULL when there are none or out of memory. */
static json_t *notify_json(const struct cn_notify *nt)
{
	json_t *hooks = nt->nhooks > 0 ? json_array() : NULL;
	for (int i = 0; hooks && i < nt->nhooks; i++) {
		const struct cn_notify_hook *h = &nt->hooks[i];
		json_t *events = json_array();
		for (unsigned bit = 1; events && bit <= CN_EVENTS_ALL; bit <<= 1)
			if ((h->events & bit) && cn_notify_event_name(bit))
				json_array_append_new(events, json_string(cn_notify_event_name(bit)));
		json_t *o = json_pack("{s:s, s:o*, s:s, s:s?, s:b, s:I}", "url", h->url, "events", events, "format",
				      cn_notify_format_name(h->format), "secret_env",
				      h->secret_env[0] ? h->secret_env : NULL, "signed",
				      h->secret[0] || h->secret_env[0], "timeout_ms", (json_int_t)h->timeout_ms);
		if (!o || json_array_append_new(hooks, o)) {
			json_decref(hooks);
			return NULL;
		}
	}
	return hooks;
}

json_t *cn_policy_to_json(const struct cn_policy *p)
{
	json_t *steps = json_array(), *slos = json_array(), *doc = NULL;
	if (!steps || !slos)
		goto out;
	for (int i = 0; i < p->nsteps; i++) {
		const struct cn_step *st = &p->steps[i];
		if (json_array_append_new(steps, json_pack("{s:o, s:I, s:b}", "weight", num_or_null(st->weight),
							   "hold_ms", (json_int_t)st->hold_ms, "approval",
							   st->approval)))
			goto out;
	}
	for (int i = 0; i < p->nslos; i++) {
		const struct cn_slo *sl = &p->slos[i];
		json_t *o = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "name", sl->name, "metric",
				      cn_metric_name(sl->metric), "quantile", num_or_null(sl->quantile), "max",
				      num_or_null(sl->max), "max_increase", num_or_null(sl->max_increase), "tolerance",
				      num_or_null(sl->tolerance));
		if (o && isfinite(sl->min_ratio))
			json_object_set_new(o, "min_ratio", json_real(sl->min_ratio));
		if (json_array_append_new(slos, o))
			goto out;
	}
	const struct cn_analysis *a = &p->analysis;
	doc = json_pack("{s:s, s:s, s:O, s:{s:I, s:I, s:i, s:I, s:s, s:s, s:o}, s:O, s:s, s:I, s:s, s:b}",
			"name", p->name, "description", p->description, "steps", steps, "analysis",
			"interval_ms", (json_int_t)a->interval_ms, "min_requests", (json_int_t)a->min_requests,
			"failing_ticks", a->failing_ticks, "inconclusive_timeout_ms",
			(json_int_t)a->inconclusive_timeout_ms, "on_inconclusive", cn_fallback_name(a->on_inconclusive),
			"judge", cn_judge_name(a->judge), "false_rollback_budget", num_or_null(a->false_rollback_budget),
			"slos", slos, "on_failure", cn_fallback_name(p->on_failure), "approval_timeout_ms",
			(json_int_t)p->approval_timeout_ms, "on_approval_timeout",
			cn_fallback_name(p->on_approval_timeout), "approver_must_differ", p->approver_must_differ);
	if (doc && p->notify.nhooks > 0)
		json_object_set_new(doc, "notify", notify_json(&p->notify));
out:
	json_decref(steps);
	json_decref(slos);
	return doc;
}

static const char *preset_name(enum cn_metrics_preset p)
{
	switch (p) {
	case CN_PRESET_VLLM:
		return "vllm";
	case CN_PRESET_TGI:
		return "tgi";
	case CN_PRESET_TRITON:
		return "triton";
	case CN_PRESET_CUSTOM:
		return "custom";
	}
	return "unknown";
}

/* The drill schedule as canary.start_scheduled_drills reads it (migrations/0010_drills.sql). */
static json_t *drill_json(const struct cn_drill_schedule *d)
{
	static const struct { int64_t ms; const char *unit; } units[] = {
		{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
	char every[32] = "";
	for (size_t i = 0; i < sizeof units / sizeof units[0] && !every[0]; i++)
		if (d->every_ms % units[i].ms == 0)
			snprintf(every, sizeof every, "%lld%s", (long long)(d->every_ms / units[i].ms), units[i].unit);
	return json_pack("{s:s, s:I, s:I, s:I, s:s}", "every", every, "every_ms", (json_int_t)d->every_ms, "hold_ms",
			 (json_int_t)d->hold_ms, "baseline_ms", (json_int_t)d->baseline_ms, "policy", d->policy);
}

json_t *cn_service_to_json(const struct cn_service *sv)
{
	json_t *slots = json_array();
	json_t *doc = NULL;
	if (!slots)
		return NULL;
	for (int i = 0; i < 2; i++) {
		const struct cn_slot *sl = &sv->slots[i];
		json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "name", sl->name, "server", sl->server, "metrics_url",
				      sl->metrics_url, "selector", sl->selector);
		if (o && isfinite(sl->cost_per_hour))
			json_object_set_new(o, "cost", json_pack("{s:f, s:i}", "per_hour", sl->cost_per_hour, "replicas",
								 sl->replicas));
		else if (o && isfinite(sl->price_per_1k_tokens))
			json_object_set_new(o, "cost", json_pack("{s:f}", "per_1k_tokens", sl->price_per_1k_tokens));
		if (json_array_append_new(slots, o))
			goto out;
	}
	const struct cn_metric_names *n = &sv->metrics.names;
	doc = json_pack("{s:s, s:{s:s, s:s, s:s, s:I}, s:O, s:s, s:{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}, s:I}}",
			"name", sv->name, "gateway", "kind", cn_gateway_kind_name(sv->gateway.kind), "runtime_api",
			sv->gateway.runtime_api,
			"backend", sv->gateway.backend, "timeout_ms", (json_int_t)sv->gateway.timeout_ms, "slots", slots,
			"initial_live", sv->slots[sv->initial_live ? 1 : 0].name, "metrics", "source",
			sv->metrics.source == CN_SOURCE_PROMETHEUS ? "prometheus" : "scrape", "prometheus_url",
			sv->metrics.prometheus_url, "preset", preset_name(sv->metrics.preset), "names", "requests",
			n->requests, "errors", n->errors, "latency", n->latency, "ttft", n->ttft, "itl", n->itl,
			"timeout_ms", (json_int_t)sv->metrics.timeout_ms);
	if (doc && (n->gen_tokens[0] || n->prompt_tokens[0])) {
		/* token counters (unit economics): only when named, so older specs read as they always did */
		json_t *names = json_object_get(json_object_get(doc, "metrics"), "names");
		json_object_set_new(names, "gen_tokens", json_string(n->gen_tokens));
		json_object_set_new(names, "prompt_tokens", json_string(n->prompt_tokens));
		json_object_set_new(names, "feature_label", json_string(n->feature_label));
	}
	if (doc && sv->gateway.kind != CN_GATEWAY_HAPROXY) {
		/* the other kinds' keys (an haproxy service's spec stays as it always was) */
		json_t *gw = json_object_get(doc, "gateway");
		if (sv->gateway.kind == CN_GATEWAY_NGINX) {
			json_object_set_new(gw, "include", json_string(sv->gateway.include));
			json_object_set_new(gw, "config", json_string(sv->gateway.config));
			json_object_set_new(gw, "pid_file", json_string(sv->gateway.pid_file));
			json_object_set_new(gw, "nginx", json_string(sv->gateway.nginx));
			json_object_set_new(gw, "prefix", json_string(sv->gateway.prefix));
			json_object_set_new(gw, "error_log", json_string(sv->gateway.error_log));
		} else if (sv->gateway.kind == CN_GATEWAY_GATEWAY_API || sv->gateway.kind == CN_GATEWAY_KSERVE) {
			json_object_set_new(gw, "namespace", json_string(sv->gateway.k8s_namespace));
			json_object_set_new(gw, "name", json_string(sv->gateway.k8s_name));
			if (sv->gateway.kind == CN_GATEWAY_GATEWAY_API)
				json_object_set_new(gw, "rule", json_integer(sv->gateway.rule));
			json_object_set_new(gw, "kubeconfig", json_string(sv->gateway.kubeconfig));
			json_object_set_new(gw, "context", json_string(sv->gateway.k8s_context));
		} else {
			const struct cn_argv_tmpl *t[2] = { &sv->gateway.set, &sv->gateway.get };
			const char *key[2] = { "set", "get" };
			for (int k = 0; k < 2; k++) {
				json_t *argv = json_array();
				const char *a = t[k]->buf;
				for (int i = 0; i < t[k]->argc; i++, a += strlen(a) + 1)
					json_array_append_new(argv, json_string(a));
				json_object_set_new(gw, key[k], argv);
			}
		}
	}
	if (doc && sv->notify.nhooks > 0)
		json_object_set_new(doc, "notify", notify_json(&sv->notify));
	if (doc && sv->drill.every_ms > 0)
		json_object_set_new(doc, "drill", drill_json(&sv->drill));
out:
	json_decref(slots);
	return doc;
}
