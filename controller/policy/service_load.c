/* The service file: key tables for the gateway binding, the two slots and the metrics source, the metric-name
 * presets, the cross-key checks, and the public loader. */
#include "policy_int.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/addr.h"
#include "canary/schema.h"
#include "canary/service.h"
#include "canary/sla_contract.h"
#include "canary/template.h"

#define KEYS(a) (a), (sizeof(a) / sizeof((a)[0]))
#define F(type, field) .offset = offsetof(type, field), .size = sizeof(((type *)0)->field)
#define UNSET "\x01" /* marks a metric name the file did not override */

/* What the file is read into: the service plus what needs checking against other keys afterwards. */
struct service_doc {
	struct cn_service svc;
	char live[CN_NAME_MAX];
	struct cn_metric_names names; /* explicit names; UNSET where absent */
	int nslots;
};

void cn_metric_names_preset(enum cn_metrics_preset preset, struct cn_metric_names *n)
{
	const char *req = "", *errs = "", *lat = "", *ttft = "", *itl = "", *gen = "", *prompt = "";
	switch (preset) {
	case CN_PRESET_VLLM:
		req = "http_requests_total";
		errs = "http_requests_total{status=~\"5..\"}";
		lat = "vllm:e2e_request_latency_seconds";
		ttft = "vllm:time_to_first_token_seconds";
		itl = "vllm:time_per_output_token_seconds";
		gen = "vllm:generation_tokens_total";
		prompt = "vllm:prompt_tokens_total";
		break;
	case CN_PRESET_TGI:
		req = "tgi_request_count";
		errs = "tgi_request_failure";
		lat = "tgi_request_duration";
		ttft = ""; /* TGI exports no time-to-first-token histogram */
		itl = "tgi_request_mean_time_per_token_duration";
		/* TGI counts tokens in histograms of per-request counts: their _sum is the counter */
		gen = "tgi_request_generated_tokens_sum";
		prompt = "tgi_request_input_length_sum";
		break;
	case CN_PRESET_TRITON:
		/* Triton counts successes and failures separately (nv_inference_request_success / _failure);
		 * nv_inference_count counts inferences, close enough to requests for a share. Its request duration
		 * (nv_inference_request_duration_us) is a cumulative counter of microseconds, not a histogram, so a
		 * latency SLO on it stays inconclusive (no buckets) until names.latency points at a histogram. Its
		 * time-to-first-response histogram (--metrics-config histogram_latencies=true, decoupled models) is in
		 * milliseconds, as the _ms says: the parsers scale le and _sum of a name ending _ms or _us to seconds
		 * (cn_promtext_unit_seconds). */
		req = "nv_inference_count";
		errs = "nv_inference_request_failure";
		lat = "nv_inference_request_duration_us";
		ttft = "nv_inference_first_response_histogram_ms";
		itl = "";
		break;
	case CN_PRESET_CUSTOM:
		break;
	}
	memset(n, 0, sizeof *n);
	snprintf(n->requests, sizeof n->requests, "%s", req);
	snprintf(n->errors, sizeof n->errors, "%s", errs);
	snprintf(n->latency, sizeof n->latency, "%s", lat);
	snprintf(n->ttft, sizeof n->ttft, "%s", ttft);
	snprintf(n->itl, sizeof n->itl, "%s", itl);
	snprintf(n->gen_tokens, sizeof n->gen_tokens, "%s", gen);
	snprintf(n->prompt_tokens, sizeof n->prompt_tokens, "%s", prompt);
	snprintf(n->feature_label, sizeof n->feature_label, "%s", preset == CN_PRESET_CUSTOM ? "" : "feature");
}

static const struct cn_enum_val gateway_words[] = {
	{ "haproxy", CN_GATEWAY_HAPROXY }, { "nginx", CN_GATEWAY_NGINX }, { "command", CN_GATEWAY_COMMAND },
	{ "gateway-api", CN_GATEWAY_GATEWAY_API }, { "kserve", CN_GATEWAY_KSERVE }, { NULL, 0 } };

const char *cn_gateway_kind_name(enum cn_gateway_kind kind)
{
	for (const struct cn_enum_val *w = gateway_words; w->name; w++)
		if (w->value == (int)kind)
			return w->name;
	return "unknown";
}
static const struct cn_enum_val source_words[] = {
	{ "scrape", CN_SOURCE_SCRAPE }, { "prometheus", CN_SOURCE_PROMETHEUS }, { NULL, 0 } };
static const struct cn_enum_val preset_words[] = {
	{ "vllm", CN_PRESET_VLLM }, { "tgi", CN_PRESET_TGI }, { "triton", CN_PRESET_TRITON },
	{ "custom", CN_PRESET_CUSTOM }, { NULL, 0 } };

#define GW(field) .offset = offsetof(struct cn_service, gateway.field) - offsetof(struct cn_service, gateway), \
		  .size = sizeof(((struct cn_service *)0)->gateway.field)

static int check_gateway(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals);
static int parse_argv(struct cn_load *ld, const struct cn_key *key, void *obj, const struct cn_ynode *val);

#define PLACEHOLDERS "{candidate_percent} {baseline_percent} {candidate_slot} {baseline_slot} {candidate_server} " \
		     "{baseline_server} {service} {percent:SLOT}"

static const struct cn_key gateway_keys[] = {
	{ .name = "kind", .type = CN_KT_ENUM, GW(kind), .def = "haproxy", .min = NAN, .max = NAN,
	  .enums = gateway_words, .doc = "how traffic is split; each key below names the kind it belongs to" },
	{ .name = "runtime_api", .type = CN_KT_STRING, GW(runtime_api), .min = NAN, .max = NAN,
	  .doc = "haproxy, required: the runtime API, unix:/path/to/admin.sock, /path/to/admin.sock or host:port" },
	{ .name = "backend", .type = CN_KT_NAME, GW(backend), .min = NAN, .max = NAN,
	  .doc = "haproxy, required: the backend that holds the two slot servers" },
	{ .name = "include", .type = CN_KT_STRING, GW(include), .min = NAN, .max = NAN,
	  .doc = "nginx, required: absolute path of the file canary writes the two `server ADDR weight=N;` lines "
		 "into; `include` it inside the upstream block" },
	{ .name = "config", .type = CN_KT_STRING, GW(config), .min = NAN, .max = NAN,
	  .doc = "nginx, required: absolute path of the nginx.conf that `nginx -t -c` checks before every reload" },
	{ .name = "pid_file", .type = CN_KT_STRING, GW(pid_file), .min = NAN, .max = NAN,
	  .doc = "nginx, required: absolute path of the master's pid file; canary reloads the master with SIGHUP" },
	{ .name = "nginx", .type = CN_KT_STRING, GW(nginx), .def = "nginx", .min = NAN, .max = NAN,
	  .doc = "nginx: the binary, a path or a name looked up in PATH, /usr/local/sbin, /usr/sbin and /sbin" },
	{ .name = "prefix", .type = CN_KT_STRING, GW(prefix), .min = NAN, .max = NAN,
	  .doc = "nginx: the prefix (-p) the master runs with, if any" },
	{ .name = "error_log", .type = CN_KT_STRING, GW(error_log), .min = NAN, .max = NAN,
	  .doc = "nginx: absolute path of the error log; an [emerg] logged during a reload fails it at once, quoted" },
	{ .name = "set", .type = CN_KT_CUSTOM, GW(set), .min = NAN, .max = NAN, .parse = parse_argv,
	  .doc = "command, required: the argv that sets the shares, a list run without a shell; placeholders "
		 PLACEHOLDERS "; {{ and }} are literal braces" },
	{ .name = "get", .type = CN_KT_CUSTOM, GW(get), .min = NAN, .max = NAN, .parse = parse_argv,
	  .doc = "command, required: the argv that prints the shares as JSON, e.g. {\"blue\": 95, \"green\": 5} "
		 "(percentages or weights, by slot name); the same placeholders" },
	{ .name = "namespace", .type = CN_KT_STRING, GW(k8s_namespace), .min = NAN, .max = NAN,
	  .doc = "gateway-api and kserve, required: the namespace of the HTTPRoute or InferenceService" },
	{ .name = "name", .type = CN_KT_STRING, GW(k8s_name), .min = NAN, .max = NAN,
	  .doc = "gateway-api, required: the HTTPRoute's name (each slot's server names its backendRef); kserve, "
		 "required: the InferenceService's name" },
	{ .name = "rule", .type = CN_KT_INT, GW(rule), .def = "0", .min = 0, .max = 15,
	  .doc = "gateway-api: the index of the rule in spec.rules whose backendRefs are the two slots" },
	{ .name = "kubeconfig", .type = CN_KT_STRING, GW(kubeconfig), .min = NAN, .max = NAN,
	  .doc = "gateway-api and kserve: absolute path of a kubeconfig; default as client-go: in-cluster service "
		 "account, else $KUBECONFIG, else ~/.kube/config" },
	{ .name = "context", .type = CN_KT_STRING, GW(k8s_context), .min = NAN, .max = NAN,
	  .doc = "gateway-api and kserve: the kubeconfig context to use; default its current-context" },
	{ .name = "timeout", .type = CN_KT_DURATION, GW(timeout_ms), .min = NAN, .max = 60000,
	  .doc = "time limit, at most 1m, for one runtime API command (haproxy, default 2s), for `nginx -t` and for "
		 "the reload to take (nginx, default 10s), for one run of set or get (command, default 10s), for each "
		 "API request and for the controller to confirm a set (gateway-api and kserve, default 10s)" },
};

/* Which keys belong to which kinds (a bit per kind), and which of them those kinds require. */
#define K(kind) (1u << (kind))
#define K8S (K(CN_GATEWAY_GATEWAY_API) | K(CN_GATEWAY_KSERVE))
static const struct {
	const char *key;
	unsigned kinds;
	bool required;
} kind_keys[] = {
	{ "runtime_api", K(CN_GATEWAY_HAPROXY), true }, { "backend", K(CN_GATEWAY_HAPROXY), true },
	{ "include", K(CN_GATEWAY_NGINX), true },       { "config", K(CN_GATEWAY_NGINX), true },
	{ "pid_file", K(CN_GATEWAY_NGINX), true },      { "nginx", K(CN_GATEWAY_NGINX), false },
	{ "prefix", K(CN_GATEWAY_NGINX), false },       { "error_log", K(CN_GATEWAY_NGINX), false },
	{ "set", K(CN_GATEWAY_COMMAND), true },         { "get", K(CN_GATEWAY_COMMAND), true },
	{ "namespace", K8S, true },                     { "name", K8S, true },
	{ "rule", K(CN_GATEWAY_GATEWAY_API), false },   { "kubeconfig", K8S, false },
	{ "context", K8S, false },
};

/* The kinds in a mask, for messages: "gateway-api or kserve". */
static const char *kinds_desc(unsigned kinds, char *buf, size_t size)
{
	buf[0] = '\0';
	for (int k = 0; k < 32; k++)
		if (kinds & (1u << k)) {
			size_t used = strlen(buf);
			snprintf(buf + used, size - used, "%s%s", used ? " or " : "", cn_gateway_kind_name(k));
		}
	return buf;
}

static const struct cn_schema gateway_schema = {
	.name = "gateway", .keys = KEYS(gateway_keys), .check = check_gateway };

static const struct cn_key slot_keys[] = {
	{ .name = "server", .type = CN_KT_STRING, F(struct cn_slot, server), .min = NAN, .max = NAN,
	  .doc = "the gateway's server for this slot: haproxy's server name, nginx's server address; command: "
		 "optional, for {candidate_server} and {baseline_server}" },
	{ .name = "metrics_url", .type = CN_KT_URL, F(struct cn_slot, metrics_url), .min = NAN, .max = NAN,
	  .doc = "scrape source: this slot's /metrics URL" },
	{ .name = "selector", .type = CN_KT_STRING, F(struct cn_slot, selector), .min = NAN, .max = NAN,
	  .doc = "prometheus source: label matchers for this slot, e.g. {slot=\"blue\"}" },
	{ .name = "cost_per_hour", .type = CN_KT_NUMBER, F(struct cn_slot, cost_per_hour), .min = 0, .max = NAN,
	  .range = CN_RANGE_MIN_EXCL, .doc = "the price of one of this slot's replicas per hour (any currency, the "
	  "same for both slots), e.g. 12.40; with replicas; for cost_per_1k_tokens" },
	{ .name = "replicas", .type = CN_KT_INT, F(struct cn_slot, replicas), .min = 1, .max = 100000,
	  .doc = "replicas serving this slot, with cost_per_hour (default 1): the slot's cost per hour is "
	  "cost_per_hour x replicas" },
	{ .name = "price_per_1k_tokens", .type = CN_KT_NUMBER, F(struct cn_slot, price_per_1k_tokens), .min = 0,
	  .max = NAN, .range = CN_RANGE_MIN_EXCL, .doc = "instead of cost_per_hour: a fixed price of 1,000 generated "
	  "tokens (a hosted model billed per token)" },
};

static const struct cn_schema slot_schema = { .name = "slot", .keys = KEYS(slot_keys) };

#define NM(field) F(struct cn_metric_names, field)
static const struct cn_key names_keys[] = {
	{ .name = "requests", .type = CN_KT_STRING, NM(requests), .min = NAN, .max = NAN,
	  .doc = "counter of finished requests" },
	{ .name = "errors", .type = CN_KT_STRING, NM(errors), .min = NAN, .max = NAN, .doc = "counter of failed requests" },
	{ .name = "latency", .type = CN_KT_STRING, NM(latency), .min = NAN, .max = NAN,
	  .doc = "histogram of end-to-end latency (base name, without _bucket), in seconds; a name ending _ms or _us is "
		 "read in milliseconds or microseconds" },
	{ .name = "ttft", .type = CN_KT_STRING, NM(ttft), .min = NAN, .max = NAN,
	  .doc = "histogram of time to first token, in seconds (or _ms, _us as the name ends); \"\" if none" },
	{ .name = "itl", .type = CN_KT_STRING, NM(itl), .min = NAN, .max = NAN,
	  .doc = "histogram of inter-token latency in seconds; \"\" if none" },
	{ .name = "gen_tokens", .type = CN_KT_STRING, NM(gen_tokens), .min = NAN, .max = NAN,
	  .doc = "counter of generated tokens (tokens_per_second, cost_per_1k_tokens); \"\" if none" },
	{ .name = "prompt_tokens", .type = CN_KT_STRING, NM(prompt_tokens), .min = NAN, .max = NAN,
	  .doc = "counter of prompt tokens (shown with the economics, not judged); \"\" if none" },
	{ .name = "feature_label", .type = CN_KT_STRING, NM(feature_label), .min = NAN, .max = NAN,
	  .doc = "the label naming a product feature on the token and latency series, for the per-feature "
	  "breakdown (default feature; \"\" turns it off)" },
};

static const struct cn_schema names_schema = { .name = "names", .keys = KEYS(names_keys) };

/* The metrics section's offsets are relative to struct service_doc (it reaches svc.metrics and the overrides). */
static const struct cn_key metrics_keys[] = {
	{ .name = "source", .type = CN_KT_ENUM, F(struct service_doc, svc.metrics.source), .def = "scrape", .min = NAN,
	  .max = NAN, .enums = source_words, .doc = "scrape | prometheus" },
	{ .name = "prometheus_url", .type = CN_KT_URL, F(struct service_doc, svc.metrics.prometheus_url), .min = NAN,
	  .max = NAN, .doc = "Prometheus base URL; required when source is prometheus" },
	{ .name = "preset", .type = CN_KT_ENUM, F(struct service_doc, svc.metrics.preset), .def = "vllm", .min = NAN,
	  .max = NAN, .enums = preset_words, .doc = "vllm | tgi | triton | custom: series names to read" },
	{ .name = "timeout", .type = CN_KT_DURATION, F(struct service_doc, svc.metrics.timeout_ms), .def = "2s",
	  .min = NAN, .max = 60000, .doc = "time limit for one scrape or query, at most 1m" },
	{ .name = "names", .type = CN_KT_MAP, .offset = offsetof(struct service_doc, names), .min = NAN, .max = NAN,
	  .sub = &names_schema, .doc = "explicit series names; override the preset; required for custom" },
};

static const struct cn_schema metrics_schema = { .name = "metrics", .keys = KEYS(metrics_keys) };

static const struct cn_schema notify_schema = {
	.name = "notify", .keys = cn_notify_hook_keys, .nkeys = CN_NOTIFY_HOOK_NKEYS, .check = cn_notify_hook_check_service,
	.item_size = sizeof(struct cn_notify_hook), .max_items = CN_NOTIFY_MAX_HOOKS,
	.count_offset = offsetof(struct service_doc, svc.notify.nhooks),
};

static const struct cn_key drill_keys[] = {
	{ .name = "every", .type = CN_KT_DURATION, .flags = CN_KEY_REQUIRED, F(struct cn_drill_schedule, every_ms),
	  .min = 60000, .max = NAN, .doc = "how often canaryd runs a failover drill of this service, e.g. 30d (at least 1m)" },
	{ .name = "hold", .type = CN_KT_DURATION, F(struct cn_drill_schedule, hold_ms), .def = "5m", .min = 1000,
	  .max = 86400000, .doc = "time on the secondary, 1s .. 24h" },
	{ .name = "baseline", .type = CN_KT_DURATION, F(struct cn_drill_schedule, baseline_ms), .def = "30s",
	  .min = 1000, .max = 3600000, .doc = "time measuring the primary before the shift, 1s .. 1h" },
	{ .name = "policy", .type = CN_KT_NAME, F(struct cn_drill_schedule, policy), .def = "default", .min = NAN,
	  .max = NAN, .doc = "the policy whose SLOs judge the secondary" },
};

static const struct cn_schema drill_schema = { .name = "drill", .keys = KEYS(drill_keys) };

static int parse_slots(struct cn_load *ld, const struct cn_key *key, void *obj, const struct cn_ynode *val);
static int check_service(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals);

static const struct cn_key service_keys[] = {
	{ .name = "name", .type = CN_KT_NAME, .flags = CN_KEY_REQUIRED, F(struct service_doc, svc.name), .min = NAN,
	  .max = NAN, .doc = "the service's name; rollouts refer to it" },
	{ .name = "gateway", .type = CN_KT_MAP, .flags = CN_KEY_REQUIRED,
	  .offset = offsetof(struct service_doc, svc.gateway), .min = NAN, .max = NAN, .sub = &gateway_schema,
	  .doc = "where traffic is split" },
	{ .name = "slots", .type = CN_KT_CUSTOM, .flags = CN_KEY_REQUIRED, .min = NAN, .max = NAN,
	  .parse = parse_slots, .sub = &slot_schema,
	  .doc = "exactly two slots, NAME: {server, metrics_url | selector, cost}; their keys below" },
	{ .name = "live", .type = CN_KT_NAME, .flags = CN_KEY_REQUIRED, F(struct service_doc, live), .min = NAN,
	  .max = NAN, .doc = "the slot that is live when the service is first applied" },
	{ .name = "metrics", .type = CN_KT_MAP, .offset = 0, .min = NAN, .max = NAN, .sub = &metrics_schema,
	  .doc = "where each slot's metrics come from" },
	{ .name = "notify", .type = CN_KT_LIST, .offset = offsetof(struct service_doc, svc.notify.hooks), .min = NAN,
	  .max = NAN, .sub = &notify_schema, .doc = "webhooks for this service's rollouts, failover drills and missed SLA windows (see "
	  "Notifications)" },
	{ .name = "drill", .type = CN_KT_MAP, .offset = offsetof(struct service_doc, svc.drill), .min = NAN,
	  .max = NAN, .sub = &drill_schema,
	  .doc = "a failover drill canaryd runs on a schedule (see Failover drills); absent: none" },
	{ .name = "contract", .type = CN_KT_MAP, .offset = offsetof(struct service_doc, svc.contract), .min = NAN,
	  .max = NAN, .sub = &cn_contract_schema,
	  .doc = "the inference contract every answer is checked against during pre-flight (see Pre-flight)" },
	{ .name = "sla", .type = CN_KT_MAP, .offset = offsetof(struct service_doc, svc.sla), .min = NAN, .max = NAN,
	  .sub = &cn_sla_contract_doc_schema, .doc = "the SLA contract canaryd judges every closed window of the ledger against, to notify "
	  "sla_window_missed (the keys of an SLA contract file; see SLA ledger); absent: none" },
};

static const struct cn_schema service_schema = {
	.name = "service", .keys = KEYS(service_keys), .check = check_service };

const struct cn_schema *cn_service_schema(void)
{
	return &service_schema;
}

/* A field of the gateway section, given the section's address (its struct has no name of its own). */
#define GWF(obj, field) ((char *)(obj) + (offsetof(struct cn_service, gateway.field) - \
					  offsetof(struct cn_service, gateway)))

static int check_abs_path(struct cn_load *ld, const struct cn_ynode *at, const char *key, const char *path)
{
	if (path[0] != '/')
		return cn_ld_fail(ld, at, "%s '%s' must be an absolute path (canaryd's working directory is not yours)",
				  key, path);
	for (const char *p = path; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			return cn_ld_fail(ld, at, "%s '%s' contains a control character", key, path);
	return 0;
}

/* A DNS-1123 label (namespace) or subdomain (object name, dots allowed) of at most max characters. */
static bool k8s_name_ok(const char *s, size_t max, bool dots)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
		if (!alnum && (i == 0 || i == n - 1 || !(ch == '-' || (dots && ch == '.'))))
			return false;
	}
	return true;
}

static int check_gateway(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals)
{
	int kind = 0;
	int64_t *timeout = (int64_t *)(void *)GWF(obj, timeout_ms);
	memcpy(&kind, GWF(obj, kind), sizeof kind);
	const char *kname = cn_gateway_kind_name((enum cn_gateway_kind)kind);

	for (size_t i = 0; i < sizeof kind_keys / sizeof kind_keys[0]; i++) {
		const struct cn_ynode *v = cn_schema_val(&gateway_schema, vals, kind_keys[i].key);
		bool mine = (kind_keys[i].kinds & K(kind)) != 0;
		char kinds[64];
		if (v && !mine)
			return cn_ld_fail(ld, v, "'%s' is a key of gateway kind %s, not %s; remove it, or set kind: %s",
					  kind_keys[i].key, kinds_desc(kind_keys[i].kinds, kinds, sizeof kinds), kname,
					  kinds);
		if (!v && kind_keys[i].required && mine)
			return cn_ld_fail(ld, map, "missing required key '%s' in gateway (kind %s)", kind_keys[i].key,
					  kname);
	}
	if (!cn_schema_val(&gateway_schema, vals, "timeout"))
		*timeout = kind == CN_GATEWAY_HAPROXY ? 2000 : 10000;

	switch ((enum cn_gateway_kind)kind) {
	case CN_GATEWAY_HAPROXY: {
		struct cn_addr addr;
		struct cn_err e = { 0 };
		if (cn_addr_parse(GWF(obj, runtime_api), "runtime_api", CN_ADDR_UNIX, &addr, &e) < 0)
			return cn_ld_fail(ld, cn_schema_val(&gateway_schema, vals, "runtime_api"), "%s", e.msg);
		break;
	}
	case CN_GATEWAY_NGINX: {
		static const char *const paths[] = { "include", "config", "pid_file", "prefix", "error_log" };
		const char *val[] = { GWF(obj, include), GWF(obj, config), GWF(obj, pid_file), GWF(obj, prefix),
				      GWF(obj, error_log) };
		for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
			const struct cn_ynode *v = cn_schema_val(&gateway_schema, vals, paths[i]);
			int rc;
			if (v && (rc = check_abs_path(ld, v, paths[i], val[i])) < 0)
				return rc;
		}
		if (strcmp(val[0], val[1]) == 0)
			return cn_ld_fail(ld, cn_schema_val(&gateway_schema, vals, "include"),
					  "include '%s' is the config itself; give the server lines a file of their own",
					  val[0]);
		const char *bin = GWF(obj, nginx);
		if (!bin[0] || strchr(bin, '\n'))
			return cn_ld_fail(ld, cn_schema_val(&gateway_schema, vals, "nginx"),
					  "nginx must name the nginx binary, e.g. /usr/sbin/nginx");
		break;
	}
	case CN_GATEWAY_COMMAND:
		break; /* the templates are checked with the slots' names (check_service) */
	case CN_GATEWAY_GATEWAY_API:
	case CN_GATEWAY_KSERVE: {
		const struct cn_ynode *v = cn_schema_val(&gateway_schema, vals, "namespace");
		if (!k8s_name_ok(GWF(obj, k8s_namespace), 63, false))
			return cn_ld_fail(ld, v, "namespace '%s' is not a Kubernetes namespace: lowercase letters, "
					  "digits and '-', at most 63, starting and ending with a letter or digit",
					  GWF(obj, k8s_namespace));
		v = cn_schema_val(&gateway_schema, vals, "name");
		if (!k8s_name_ok(GWF(obj, k8s_name), 253, true))
			return cn_ld_fail(ld, v, "name '%s' is not a Kubernetes object name: lowercase letters, digits, "
					  "'-' and '.', at most 253, starting and ending with a letter or digit",
					  GWF(obj, k8s_name));
		if ((v = cn_schema_val(&gateway_schema, vals, "kubeconfig")))
			return check_abs_path(ld, v, "kubeconfig", GWF(obj, kubeconfig));
		break;
	}
	}
	return 0;
}

/* An argv template: a list of text items, stored back to back. */
static int parse_argv(struct cn_load *ld, const struct cn_key *key, void *obj, const struct cn_ynode *val)
{
	struct cn_argv_tmpl *t = (struct cn_argv_tmpl *)(void *)((char *)obj + key->offset);
	size_t used = 0;

	if (val->kind != CN_Y_SEQ)
		return cn_ld_fail(ld, val, "'%s' must be a list of arguments such as [kubectl, patch, ...], got %s; it "
				  "runs without a shell, so write each argument as its own item", key->name,
				  cn_ynode_kind_desc(val));
	if (val->n == 0)
		return cn_ld_fail(ld, val, "'%s' is an empty list; give the program and its arguments", key->name);
	if (val->n > CN_ARGV_MAX)
		return cn_ld_fail(ld, val->kids[CN_ARGV_MAX], "'%s' has %zu arguments; at most %d", key->name, val->n,
				  CN_ARGV_MAX);
	memset(t, 0, sizeof *t);
	for (size_t i = 0; i < val->n; i++) {
		const struct cn_ynode *a = val->kids[i];
		if (a->kind != CN_Y_SCALAR)
			return cn_ld_fail(ld, a, "argument %zu of '%s' must be text, got %s", i + 1, key->name,
					  cn_ynode_kind_desc(a));
		if (cn_ynode_is_null(a))
			return cn_ld_fail(ld, a, "argument %zu of '%s' has no value; write '' for an empty argument", i + 1,
					  key->name);
		if (strlen(a->text) != a->len)
			return cn_ld_fail(ld, a, "argument %zu of '%s' contains a nul character", i + 1, key->name);
		if (i == 0 && a->len == 0)
			return cn_ld_fail(ld, a, "the program of '%s' is empty; name the program to run", key->name);
		if (used + a->len + 1 > sizeof t->buf)
			return cn_ld_fail(ld, a, "'%s' is too long (more than %zu bytes in all)", key->name,
					  sizeof t->buf - 1);
		memcpy(t->buf + used, a->text, a->len + 1);
		used += a->len + 1;
	}
	t->argc = (int)val->n;
	return 0;
}

static int parse_slots(struct cn_load *ld, const struct cn_key *key, void *obj, const struct cn_ynode *val)
{
	struct service_doc *doc = obj;
	struct cn_err nerr;
	(void)key;
	if (val->kind != CN_Y_MAP)
		return cn_ld_fail(ld, val, "'slots' must be a mapping of two slots (e.g. blue: and green:), got %s",
				  cn_ynode_kind_desc(val));
	if (val->n / 2 != 2)
		return cn_ld_fail(ld, val, "'slots' must have exactly two slots, got %zu", val->n / 2);
	for (size_t i = 0; i < 2; i++) {
		const struct cn_ynode *name = val->kids[2 * i], *slot = val->kids[2 * i + 1];
		struct cn_slot *s = &doc->svc.slots[i];
		char what[96];
		cn_err_clear(&nerr);
		if (name->len >= sizeof s->name)
			return cn_ld_fail(ld, name, "slot name '%s' is too long (at most %zu characters)", name->text,
					  sizeof s->name - 1);
		for (const char *p = name->text; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			      ((*p == '-' || *p == '_' || *p == '.') && p != name->text)))
				return cn_ld_fail(ld, name, "invalid slot name '%s': use letters, digits, '.', '_' and '-'",
						  name->text);
		if (!name->len)
			return cn_ld_fail(ld, name, "empty slot name; use e.g. 'blue'");
		snprintf(what, sizeof what, "slot '%s'", name->text);
		int rc = cn_schema_walk(ld, &slot_schema, s, slot, what);
		if (rc < 0)
			return rc;
		memcpy(s->name, name->text, name->len + 1);
	}
	doc->nslots = 2;
	return 0;
}

size_t cn_service_command_vars(const struct cn_service *svc, int cand, const char *cand_pct, const char *base_pct,
			       char names[2][CN_NAME_MAX + 8], struct cn_tmpl_var vars[CN_COMMAND_VARS])
{
	size_t n = 0;
	int base = 1 - cand;
	vars[n++] = (struct cn_tmpl_var){ "candidate_percent", cand_pct };
	vars[n++] = (struct cn_tmpl_var){ "baseline_percent", base_pct };
	vars[n++] = (struct cn_tmpl_var){ "candidate_slot", svc->slots[cand].name };
	vars[n++] = (struct cn_tmpl_var){ "baseline_slot", svc->slots[base].name };
	if (svc->slots[0].server[0] && svc->slots[1].server[0]) {
		vars[n++] = (struct cn_tmpl_var){ "candidate_server", svc->slots[cand].server };
		vars[n++] = (struct cn_tmpl_var){ "baseline_server", svc->slots[base].server };
	}
	vars[n++] = (struct cn_tmpl_var){ "service", svc->name };
	for (int i = 0; i < 2; i++) {
		snprintf(names[i], CN_NAME_MAX + 8, "percent:%s", svc->slots[i].name);
		vars[n++] = (struct cn_tmpl_var){ names[i], i == cand ? cand_pct : base_pct };
	}
	return n;
}

/* An nginx server address as the `server` directive takes it, without parameters: no blanks, ';', braces, '#',
 * quotes or '$' (nginx -t checks the rest). */
static bool nginx_address_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || strchr(";{}#'\"$\\", *s) || (unsigned char)*s == 0x7f)
			return false;
	return true;
}

static bool haproxy_name_ok(const char *s)
{
	if (!*s)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      ((*p == '-' || *p == '_' || *p == '.') && p != s)))
			return false;
	return true;
}

/* Each slot's server, as the gateway kind needs it. */
static int check_slot_servers(struct cn_load *ld, const struct cn_service *svc, const struct cn_ynode *slots)
{
	enum cn_gateway_kind kind = svc->gateway.kind;
	for (int i = 0; i < 2; i++) {
		const struct cn_slot *sl = &svc->slots[i];
		const struct cn_ynode *node = slots->kids[2 * i + 1], *srv = cn_ynode_get(node, "server");
		if (kind == CN_GATEWAY_COMMAND || kind == CN_GATEWAY_KSERVE) { /* kserve: the slots are labels */
			for (const char *p = sl->server; *p; p++)
				if ((unsigned char)*p < ' ' || *p == 0x7f)
					return cn_ld_fail(ld, srv, "slot '%s': server contains a control character", sl->name);
			continue;
		}
		if (kind == CN_GATEWAY_GATEWAY_API && (!srv || !k8s_name_ok(sl->server, 63, false)))
			return cn_ld_fail(ld, srv ? srv : node, "slot '%s' needs a server: the name of its backendRef (a "
					  "Service) in the HTTPRoute's rule, e.g. 'server: %s-svc'", sl->name, sl->name);
		if (!srv)
			return cn_ld_fail(ld, node, kind == CN_GATEWAY_NGINX
					  ? "slot '%s' needs a server: its address in the nginx upstream, e.g. "
					    "'server: 127.0.0.1:8001'"
					  : "slot '%s' needs a server: its server name in the haproxy backend, e.g. 'server: %s'",
					  sl->name, sl->name);
		if (kind == CN_GATEWAY_NGINX && !nginx_address_ok(sl->server))
			return cn_ld_fail(ld, srv, "slot '%s': server '%s' is not an nginx server address; write HOST:PORT, "
					  "IP:PORT or unix:/PATH, without parameters", sl->name, sl->server);
		if (kind == CN_GATEWAY_HAPROXY && !haproxy_name_ok(sl->server))
			return cn_ld_fail(ld, srv, "server: invalid name '%s': use letters, digits, '.', '_' and '-', "
					  "starting with a letter or digit", sl->server);
	}
	if (kind != CN_GATEWAY_COMMAND && kind != CN_GATEWAY_KSERVE && strcmp(svc->slots[0].server, svc->slots[1].server) == 0)
		return cn_ld_fail(ld, cn_ynode_get(slots->kids[3], "server"),
				  "slots '%s' and '%s' name the same server '%s'; each slot needs its own",
				  svc->slots[0].name, svc->slots[1].name, svc->slots[1].server);
	return 0;
}

/* Every argument of the command gateway's templates expands with the placeholders of a move. */
static int check_templates(struct cn_load *ld, const struct cn_service *svc, const struct cn_ynode *gw)
{
	char names[2][CN_NAME_MAX + 8], out[CN_ARGV_BYTES + 1024];
	struct cn_tmpl_var vars[CN_COMMAND_VARS];
	size_t nvars = cn_service_command_vars(svc, 1, "100", "100", names, vars);
	const char *keys[] = { "set", "get" };
	const struct cn_argv_tmpl *t[] = { &svc->gateway.set, &svc->gateway.get };
	for (int k = 0; k < 2; k++) {
		const struct cn_ynode *list = cn_ynode_get(gw, keys[k]);
		const char *arg = t[k]->buf;
		for (int i = 0; i < t[k]->argc; i++, arg += strlen(arg) + 1) {
			struct cn_err terr = { 0 };
			size_t at = 0;
			if (cn_tmpl_expand(arg, vars, nvars, out, sizeof out, &at, &terr) == 0)
				continue;
			struct cn_ynode pos = { .line = 1, .col = 1 };
			if (list && (size_t)i < list->n) {
				pos = *list->kids[i];
				if (pos.plain)
					pos.col += (int)at; /* the brace itself; quoted text may hold escapes */
			}
			return cn_ld_fail(ld, &pos, "%s argument %d: %s", keys[k], i + 1, terr.msg);
		}
	}
	return 0;
}

/* Each slot's cost: cost_per_hour (with replicas) or price_per_1k_tokens, not both, and both slots or neither (the
 * slots swap roles from one release to the next). */
static int check_costs(struct cn_load *ld, struct cn_service *svc, const struct cn_ynode *slots)
{
	bool has[2];
	for (int i = 0; i < 2; i++) {
		struct cn_slot *sl = &svc->slots[i];
		const struct cn_ynode *node = slots->kids[2 * i + 1];
		const struct cn_ynode *ph = cn_ynode_get(node, "cost_per_hour"), *rp = cn_ynode_get(node, "replicas");
		const struct cn_ynode *pk = cn_ynode_get(node, "price_per_1k_tokens");
		if (ph && pk)
			return cn_ld_fail(ld, pk, "slot '%s': give cost_per_hour (with replicas) or price_per_1k_tokens, not "
					  "both", sl->name);
		if (rp && !ph)
			return cn_ld_fail(ld, rp, "slot '%s': replicas goes with cost_per_hour (the price of one replica "
					  "per hour); add it, or remove replicas", sl->name);
		if (ph && sl->replicas == 0)
			sl->replicas = 1;
		has[i] = ph || pk;
	}
	if (has[0] != has[1]) {
		int bare = has[0] ? 1 : 0;
		return cn_ld_fail(ld, slots->kids[2 * bare + 1], "slot '%s' has no cost but slot '%s' has one; give both "
				  "slots a cost (cost_per_hour or price_per_1k_tokens) or neither: they swap roles between "
				  "releases", svc->slots[bare].name, svc->slots[1 - bare].name);
	}
	return 0;
}

static int check_service(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals)
{
	struct service_doc *doc = obj;
	struct cn_service *svc = &doc->svc;
	const struct cn_ynode *slots = cn_schema_val(&service_schema, vals, "slots");
	const struct cn_ynode *live = cn_schema_val(&service_schema, vals, "live");
	const struct cn_ynode *metrics = cn_schema_val(&service_schema, vals, "metrics");
	const struct cn_ynode *mat = metrics ? metrics : map;

	svc->initial_live = -1;
	for (int i = 0; i < 2; i++)
		if (strcmp(svc->slots[i].name, doc->live) == 0)
			svc->initial_live = i;
	if (svc->initial_live < 0)
		return cn_ld_fail(ld, live, "live slot '%s' is not one of the slots ('%s', '%s')", doc->live,
				  svc->slots[0].name, svc->slots[1].name);
	int rc = check_slot_servers(ld, svc, slots);
	if (rc < 0)
		return rc;
	if (svc->gateway.kind == CN_GATEWAY_COMMAND &&
	    (rc = check_templates(ld, svc, cn_schema_val(&service_schema, vals, "gateway"))) < 0)
		return rc;

	if (svc->metrics.source == CN_SOURCE_PROMETHEUS) {
		if (!svc->metrics.prometheus_url[0])
			return cn_ld_fail(ld, mat, "missing 'prometheus_url' in metrics: required when source is prometheus");
		for (int i = 0; i < 2; i++)
			if (!svc->slots[i].selector[0])
				return cn_ld_fail(ld, slots->kids[2 * i + 1],
						  "slot '%s' needs a selector when source is prometheus, e.g. "
						  "'selector: {slot=\"%s\"}'", svc->slots[i].name, svc->slots[i].name);
	} else {
		for (int i = 0; i < 2; i++)
			if (!svc->slots[i].metrics_url[0])
				return cn_ld_fail(ld, slots->kids[2 * i + 1],
						  "slot '%s' needs a metrics_url when source is scrape, e.g. "
						  "'metrics_url: http://127.0.0.1:8001/metrics'", svc->slots[i].name);
	}

	const struct cn_ynode *names = cn_ynode_get(metrics, "names");
	if (svc->metrics.preset == CN_PRESET_CUSTOM) {
		if (!names)
			return cn_ld_fail(ld, mat, "preset 'custom' needs a 'names' section with at least requests and errors");
		if (!strcmp(doc->names.requests, UNSET) || !strcmp(doc->names.errors, UNSET))
			return cn_ld_fail(ld, names, "preset 'custom' needs names for at least requests and errors");
	}
	cn_metric_names_preset(svc->metrics.preset, &svc->metrics.names);
	struct {
		char *dst;
		const char *src;
	} over[] = {
		{ svc->metrics.names.requests, doc->names.requests }, { svc->metrics.names.errors, doc->names.errors },
		{ svc->metrics.names.latency, doc->names.latency },   { svc->metrics.names.ttft, doc->names.ttft },
		{ svc->metrics.names.itl, doc->names.itl },
		{ svc->metrics.names.gen_tokens, doc->names.gen_tokens },
		{ svc->metrics.names.prompt_tokens, doc->names.prompt_tokens },
	};
	for (size_t i = 0; i < sizeof over / sizeof over[0]; i++)
		if (strcmp(over[i].src, UNSET) != 0)
			memcpy(over[i].dst, over[i].src, CN_SELECTOR_MAX);
	if (strcmp(doc->names.feature_label, UNSET) != 0)
		memcpy(svc->metrics.names.feature_label, doc->names.feature_label, CN_NAME_MAX);
	if ((rc = check_costs(ld, svc, slots)) < 0)
		return rc;
	if (!svc->metrics.names.requests[0] || !svc->metrics.names.errors[0])
		return cn_ld_fail(ld, names ? names : mat, "metric names for requests and errors must not be empty");
	const struct cn_ynode *sla = cn_schema_val(&service_schema, vals, "sla");
	if (!sla) {
		memset(&svc->sla, 0, sizeof svc->sla);
		return 0;
	}
	if (svc->sla.service[0] && strcmp(svc->sla.service, svc->name) != 0)
		return cn_ld_fail(ld, cn_ynode_get(sla, "service"), "sla: the contract names service '%s', but this is "
				  "service '%s'; drop sla.service or make it '%s'", svc->sla.service, svc->name, svc->name);
	if (cn_sla_contract_check_service(&svc->sla, svc, ld->err) < 0)
		return -CN_EINPUT;
	return 0;
}

int cn_service_parse(const char *text, size_t len, const char *origin, struct cn_service *out, struct cn_err *err)
{
	struct cn_err scratch;
	if (!err)
		err = &scratch;
	struct cn_load ld = { .origin = origin ? origin : "<input>", .err = err };
	struct service_doc *doc = calloc(1, sizeof *doc);
	if (!doc)
		return cn_fail(err, CN_EINTERNAL, "out of memory loading %s", ld.origin);
	snprintf(doc->names.requests, sizeof doc->names.requests, UNSET);
	snprintf(doc->names.errors, sizeof doc->names.errors, UNSET);
	snprintf(doc->names.latency, sizeof doc->names.latency, UNSET);
	snprintf(doc->names.ttft, sizeof doc->names.ttft, UNSET);
	snprintf(doc->names.itl, sizeof doc->names.itl, UNSET);
	snprintf(doc->names.gen_tokens, sizeof doc->names.gen_tokens, UNSET);
	snprintf(doc->names.prompt_tokens, sizeof doc->names.prompt_tokens, UNSET);
	snprintf(doc->names.feature_label, sizeof doc->names.feature_label, UNSET);
	int rc = cn_schema_parse(&ld, text, len, &service_schema, "service",
				 "empty file; expected a service with name, gateway, slots and live", doc);
	if (rc == 0)
		*out = doc->svc;
	free(doc);
	return rc;
}

/* cn_service_parse as a cn_yaml_parse_fn. */
static int parse_service(const char *text, size_t len, const char *origin, void *out, struct cn_err *err)
{
	return cn_service_parse(text, len, origin, out, err);
}

int cn_service_load_file(const char *path, struct cn_service *out, char **source_out, struct cn_err *err)
{
	return cn_yaml_load_file(path, parse_service, out, source_out, err);
}
