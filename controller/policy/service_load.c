/* The service file: key tables for the gateway binding, the two slots and the metrics source, the metric-name
 * presets, the cross-key checks, and the public loader. */
#include "yaml_load.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/schema.h"
#include "canary/service.h"

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
	const char *req = "", *errs = "", *lat = "", *ttft = "", *itl = "";
	switch (preset) {
	case CN_PRESET_VLLM:
		req = "http_requests_total";
		errs = "http_requests_total{status=~\"5..\"}";
		lat = "vllm:e2e_request_latency_seconds";
		ttft = "vllm:time_to_first_token_seconds";
		itl = "vllm:time_per_output_token_seconds";
		break;
	case CN_PRESET_TGI:
		req = "tgi_request_count";
		errs = "tgi_request_failure";
		lat = "tgi_request_duration";
		ttft = ""; /* TGI exports no time-to-first-token histogram */
		itl = "tgi_request_mean_time_per_token_duration";
		break;
	case CN_PRESET_TRITON:
		/* Triton counts successes and failures separately (nv_inference_request_success / _failure);
		 * nv_inference_count counts inferences, close enough to requests for a share. Triton's latency metrics
		 * are microsecond summaries/counters, and its histogram (nv_inference_request_duration_us, with
		 * --metrics-config histogram_latencies=true) is in microseconds, not seconds: a latency SLO on Triton
		 * must state its max in the same unit, or use explicit names that point at a seconds histogram.
		 * The TTFT histogram exists only for decoupled (streaming) models and is in milliseconds. */
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
}

static const struct cn_enum_val gateway_words[] = { { "haproxy", CN_GATEWAY_HAPROXY }, { NULL, 0 } };
static const struct cn_enum_val source_words[] = {
	{ "scrape", CN_SOURCE_SCRAPE }, { "prometheus", CN_SOURCE_PROMETHEUS }, { NULL, 0 } };
static const struct cn_enum_val preset_words[] = {
	{ "vllm", CN_PRESET_VLLM }, { "tgi", CN_PRESET_TGI }, { "triton", CN_PRESET_TRITON },
	{ "custom", CN_PRESET_CUSTOM }, { NULL, 0 } };

#define GW(field) .offset = offsetof(struct cn_service, gateway.field) - offsetof(struct cn_service, gateway), \
		  .size = sizeof(((struct cn_service *)0)->gateway.field)

static int check_gateway(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals);

static const struct cn_key gateway_keys[] = {
	{ .name = "kind", .type = CN_KT_ENUM, GW(kind), .def = "haproxy", .min = NAN, .max = NAN,
	  .enums = gateway_words, .doc = "haproxy" },
	{ .name = "runtime_api", .type = CN_KT_STRING, .flags = CN_KEY_REQUIRED, GW(runtime_api), .min = NAN,
	  .max = NAN, .doc = "HAProxy runtime API: unix:/path/to/admin.sock, /path/to/admin.sock or host:port" },
	{ .name = "backend", .type = CN_KT_NAME, .flags = CN_KEY_REQUIRED, GW(backend), .min = NAN, .max = NAN,
	  .doc = "the HAProxy backend that holds the two slot servers" },
	{ .name = "timeout", .type = CN_KT_DURATION, GW(timeout_ms), .def = "2s", .min = NAN, .max = 60000,
	  .doc = "time limit for one runtime API exchange, at most 1m" },
};

static const struct cn_schema gateway_schema = {
	.name = "gateway", .keys = KEYS(gateway_keys), .check = check_gateway };

static const struct cn_key slot_keys[] = {
	{ .name = "server", .type = CN_KT_NAME, .flags = CN_KEY_REQUIRED, F(struct cn_slot, server), .min = NAN,
	  .max = NAN, .doc = "the gateway's server name for this slot" },
	{ .name = "metrics_url", .type = CN_KT_URL, F(struct cn_slot, metrics_url), .min = NAN, .max = NAN,
	  .doc = "scrape source: this slot's /metrics URL" },
	{ .name = "selector", .type = CN_KT_STRING, F(struct cn_slot, selector), .min = NAN, .max = NAN,
	  .doc = "prometheus source: label matchers for this slot, e.g. {slot=\"blue\"}" },
};

static const struct cn_schema slot_schema = { .name = "slot", .keys = KEYS(slot_keys) };

#define NM(field) F(struct cn_metric_names, field)
static const struct cn_key names_keys[] = {
	{ .name = "requests", .type = CN_KT_STRING, NM(requests), .min = NAN, .max = NAN,
	  .doc = "counter of finished requests" },
	{ .name = "errors", .type = CN_KT_STRING, NM(errors), .min = NAN, .max = NAN, .doc = "counter of failed requests" },
	{ .name = "latency", .type = CN_KT_STRING, NM(latency), .min = NAN, .max = NAN,
	  .doc = "histogram of end-to-end latency in seconds (base name, without _bucket)" },
	{ .name = "ttft", .type = CN_KT_STRING, NM(ttft), .min = NAN, .max = NAN,
	  .doc = "histogram of time to first token in seconds; \"\" if none" },
	{ .name = "itl", .type = CN_KT_STRING, NM(itl), .min = NAN, .max = NAN,
	  .doc = "histogram of inter-token latency in seconds; \"\" if none" },
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

static int parse_slots(struct cn_load *ld, const struct cn_key *key, void *obj, const struct cn_ynode *val);
static int check_service(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals);

static const struct cn_key service_keys[] = {
	{ .name = "name", .type = CN_KT_NAME, .flags = CN_KEY_REQUIRED, F(struct service_doc, svc.name), .min = NAN,
	  .max = NAN, .doc = "the service's name; rollouts refer to it" },
	{ .name = "gateway", .type = CN_KT_MAP, .flags = CN_KEY_REQUIRED,
	  .offset = offsetof(struct service_doc, svc.gateway), .min = NAN, .max = NAN, .sub = &gateway_schema,
	  .doc = "where traffic is split" },
	{ .name = "slots", .type = CN_KT_CUSTOM, .flags = CN_KEY_REQUIRED, .min = NAN, .max = NAN,
	  .parse = parse_slots, .doc = "exactly two slots, NAME: {server, metrics_url | selector}" },
	{ .name = "live", .type = CN_KT_NAME, .flags = CN_KEY_REQUIRED, F(struct service_doc, live), .min = NAN,
	  .max = NAN, .doc = "the slot that is live when the service is first applied" },
	{ .name = "metrics", .type = CN_KT_MAP, .offset = 0, .min = NAN, .max = NAN, .sub = &metrics_schema,
	  .doc = "where each slot's metrics come from" },
};

static const struct cn_schema service_schema = {
	.name = "service", .keys = KEYS(service_keys), .check = check_service };

const struct cn_schema *cn_service_schema(void)
{
	return &service_schema;
}

/* unix:/PATH, /PATH or HOST:PORT (HOST may be [v6]). */
static int check_runtime_api(const char *s, char *why, size_t len)
{
	const char *path = NULL;
	if (strncmp(s, "unix:", 5) == 0)
		path = s + 5;
	else if (s[0] == '/')
		path = s;
	if (path) {
		if (path[0] != '/') {
			snprintf(why, len, "the unix socket path in '%s' must be absolute, e.g. 'unix:/run/haproxy/admin.sock'", s);
			return -1;
		}
		if (strlen(path) >= 108) {
			snprintf(why, len, "the unix socket path in '%s' is too long (at most 107 bytes)", s);
			return -1;
		}
		return 0;
	}
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s) {
		snprintf(why, len, "runtime_api '%s' must be unix:/PATH, /PATH or HOST:PORT (e.g. '127.0.0.1:9999')", s);
		return -1;
	}
	if (s[0] == '[' && colon[-1] != ']') {
		snprintf(why, len, "runtime_api '%s': write an IPv6 address as [ADDR]:PORT", s);
		return -1;
	}
	for (const char *p = s; p < colon; p++) {
		if (*p <= ' ' || *p == '/' || (*p == ':' && s[0] != '[')) {
			snprintf(why, len, "runtime_api '%s' has an invalid host; write HOST:PORT (e.g. '127.0.0.1:9999')", s);
			return -1;
		}
	}
	long port = 0;
	const char *p = colon + 1;
	if (!*p || strlen(p) > 5)
		port = -1;
	for (; *p && port >= 0; p++)
		port = (*p >= '0' && *p <= '9') ? port * 10 + (*p - '0') : -1;
	if (port < 1 || port > 65535) {
		snprintf(why, len, "runtime_api '%s' has an invalid port '%s'; use 1..65535", s, colon + 1);
		return -1;
	}
	return 0;
}

static int check_gateway(struct cn_load *ld, void *obj, const struct cn_ynode *map, const struct cn_ynode *const *vals)
{
	char why[CN_ERR_MSG_MAX / 2];
	const char *api = (const char *)obj + (offsetof(struct cn_service, gateway.runtime_api) -
					       offsetof(struct cn_service, gateway));
	(void)map;
	if (check_runtime_api(api, why, sizeof why) < 0)
		return cn_ld_fail(ld, cn_schema_val(&gateway_schema, vals, "runtime_api"), "%s", why);
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
	if (strcmp(svc->slots[0].server, svc->slots[1].server) == 0)
		return cn_ld_fail(ld, cn_ynode_get(slots->kids[3], "server"),
				  "slots '%s' and '%s' name the same server '%s'; each slot needs its own",
				  svc->slots[0].name, svc->slots[1].name, svc->slots[1].server);

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
	};
	for (size_t i = 0; i < sizeof over / sizeof over[0]; i++)
		if (strcmp(over[i].src, UNSET) != 0)
			memcpy(over[i].dst, over[i].src, CN_SELECTOR_MAX);
	if (!svc->metrics.names.requests[0] || !svc->metrics.names.errors[0])
		return cn_ld_fail(ld, names ? names : mat, "metric names for requests and errors must not be empty");
	return 0;
}

int cn_service_parse(const char *text, size_t len, const char *origin, struct cn_service *out, struct cn_err *err)
{
	struct cn_err scratch;
	struct cn_ynode *root = NULL;
	struct service_doc *doc = NULL;
	int rc;

	if (!err)
		err = &scratch;
	struct cn_load ld = { .origin = origin ? origin : "<input>", .err = err };
	if ((rc = cn_yaml_read(text, len, ld.origin, &root, err)) < 0)
		goto out;
	if (!root) {
		rc = cn_ld_fail(&ld, NULL, "empty file; expected a service with name, gateway, slots and live");
		goto out;
	}
	doc = calloc(1, sizeof *doc);
	if (!doc) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory loading %s", ld.origin);
		goto out;
	}
	snprintf(doc->names.requests, sizeof doc->names.requests, UNSET);
	snprintf(doc->names.errors, sizeof doc->names.errors, UNSET);
	snprintf(doc->names.latency, sizeof doc->names.latency, UNSET);
	snprintf(doc->names.ttft, sizeof doc->names.ttft, UNSET);
	snprintf(doc->names.itl, sizeof doc->names.itl, UNSET);
	if ((rc = cn_schema_walk(&ld, &service_schema, doc, root, "service")) < 0)
		goto out;
	*out = doc->svc;
	rc = 0;
out:
	free(doc);
	cn_ynode_free(root);
	return rc;
}

int cn_service_load_file(const char *path, struct cn_service *out, char **source_out, struct cn_err *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	if ((rc = cn_read_file(path, &text, &len, err)) < 0)
		goto out;
	if ((rc = cn_service_parse(text, len, path, out, err)) < 0)
		goto out;
	if (source_out) {
		*source_out = text;
		text = NULL;
	}
out:
	free(text);
	return rc;
}
