/* The service loader: bad inputs give "ORIGIN:LINE:COL: message" at the offending node; presets, overrides and the
 * example service load as documented. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/policy.h"
#include "canary/schema.h"
#include "canary/service.h"

#define NAME "name: chat\n"
#define GATEWAY "gateway:\n  runtime_api: unix:/run/haproxy/admin.sock\n  backend: chat\n"
#define BLUE "  blue:  { server: blue,  metrics_url: http://127.0.0.1:8001/metrics }\n"
#define GREEN "  green: { server: green, metrics_url: http://127.0.0.1:8002/metrics }\n"
#define SLOTS "slots:\n" BLUE GREEN
#define LIVE "live: blue\n"
#define GOOD NAME GATEWAY SLOTS LIVE
/* the same with a runtime_api of our choosing on line 3 */
/* an nginx gateway whose last keys are `more` (lines 3..6, then more), and slots with nginx addresses */
#define NGX_GW(more) "gateway:\n  kind: nginx\n  include: /etc/nginx/canary/chat.conf\n  config: /etc/nginx/nginx.conf\n" more
#define NGX_SLOTS "slots:\n" \
	"  blue:  { server: '127.0.0.1:8001', metrics_url: http://127.0.0.1:8001/metrics }\n" \
	"  green: { server: '127.0.0.1:8002', metrics_url: http://127.0.0.1:8002/metrics }\n"
/* a command gateway with the set template on line 4 and a good get */
#define CMD_GW(set) "gateway:\n  kind: command\n  set: " set "\n  get: [getw, '{service}']\n"
#define CMD_SLOTS "slots:\n  blue:  { metrics_url: http://127.0.0.1:8001/metrics }\n" \
	"  green: { metrics_url: http://127.0.0.1:8002/metrics }\n"
/* Kubernetes gateways: kind on line 3, namespace 4, name 5, then more */
#define K8S_GW(kind, more) "gateway:\n  kind: " kind "\n  namespace: models\n  name: foo-route\n" more
#define K8S_SLOTS "slots:\n  blue:  { server: foo-v1, metrics_url: http://127.0.0.1:8001/metrics }\n" \
	"  green: { server: foo-v2, metrics_url: http://127.0.0.1:8002/metrics }\n"
#define WITH_API(api) NAME "gateway:\n  runtime_api: " api "\n  backend: chat\n" SLOTS LIVE

/* a blue slot with cost keys `k` on line 6; a green slot with a cost */
#define COST_BLUE(k) "  blue:  { server: blue,  metrics_url: http://127.0.0.1:8001/metrics, " k " }\n"
#define GREEN_COST "  green: { server: green, metrics_url: http://127.0.0.1:8002/metrics, cost_per_hour: 2 }\n"
#define SLOTS_BLUE_COST_ONLY "slots:\n" COST_BLUE("cost_per_hour: 2") GREEN

struct bad_case {
	const char *what;
	const char *text;
	int line, col;
	const char *part;
};

static const struct bad_case bad_cases[] = {
	{ "unknown gateway key", NAME "gateway:\n  runtime_api: /run/h.sock\n  backnd: chat\n" SLOTS LIVE, 4, 3,
	  "unknown key 'backnd' (did you mean 'backend'?)" },
	{ "unknown slot key", NAME GATEWAY "slots:\n  blue:  { sever: blue,  metrics_url: http://127.0.0.1:8001/metrics }\n"
	  GREEN LIVE, 6, 12, "unknown key 'sever' (did you mean 'server'?)" },
	{ "unknown metrics key", GOOD "metrics:\n  preset: vllm\n  sorce: scrape\n", 11, 3,
	  "unknown key 'sorce' (did you mean 'source'?)" },
	{ "slots as a list", NAME GATEWAY "slots:\n  - blue\n  - green\n" LIVE, 6, 3, "'slots' must be a mapping" },
	{ "gateway as text", NAME "gateway: haproxy\n" SLOTS LIVE, 2, 10, "'gateway' must be a mapping" },
	{ "slot as text", NAME GATEWAY "slots:\n  blue: blue\n" GREEN LIVE, 6, 9, "slot 'blue' must be a mapping" },
	{ "three slots", NAME GATEWAY SLOTS "  red:   { server: red,   metrics_url: http://127.0.0.1:8003/metrics }\n" LIVE,
	  6, 3, "exactly two slots, got 3" },
	{ "one slot", NAME GATEWAY "slots:\n" BLUE LIVE, 6, 3, "exactly two slots, got 1" },
	{ "live is not a slot", NAME GATEWAY SLOTS "live: red\n", 8, 7, "live slot 'red' is not one of the slots" },
	{ "same server twice", NAME GATEWAY "slots:\n" BLUE
	  "  green: { server: blue,  metrics_url: http://127.0.0.1:8002/metrics }\n" LIVE, 7, 20,
	  "name the same server 'blue'" },
	{ "url without http", NAME GATEWAY "slots:\n  blue:  { server: blue,  metrics_url: ftp://127.0.0.1/metrics }\n"
	  GREEN LIVE, 6, 40, "must start with http:// or https://" },
	{ "url without host", NAME GATEWAY "slots:\n  blue:  { server: blue,  metrics_url: 'http:///metrics' }\n"
	  GREEN LIVE, 6, 40, "has no host" },
	{ "runtime api port too big", WITH_API("127.0.0.1:99999"), 3, 16, "invalid port '99999'" },
	{ "runtime api port zero", WITH_API("127.0.0.1:0"), 3, 16, "invalid port '0'" },
	{ "runtime api port not a number", WITH_API("localhost:http"), 3, 16, "invalid port 'http'" },
	{ "runtime api without port", WITH_API("localhost"), 3, 16, "must be unix:/PATH, /PATH or HOST:PORT" },
	{ "runtime api relative unix path", WITH_API("unix:admin.sock"), 3, 16, "must be absolute" },
	{ "runtime api empty host", WITH_API("':9999'"), 3, 16, "must be unix:/PATH, /PATH or HOST:PORT" },
	/* unit economics: each slot's cost */
	{ "negative cost", NAME GATEWAY "slots:\n" COST_BLUE("cost_per_hour: -1") GREEN_COST LIVE, 6, 86,
	  "cost_per_hour '-1' must be greater than 0" },
	{ "zero replicas", NAME GATEWAY "slots:\n" COST_BLUE("cost_per_hour: 2, replicas: 0") GREEN_COST LIVE, 6, 99,
	  "replicas '0' must be at least 1" },
	{ "misspelt cost key", NAME GATEWAY "slots:\n" COST_BLUE("cost_per_hour: 2, replica: 3") GREEN_COST LIVE, 6, 89,
	  "unknown key 'replica' (did you mean 'replicas'?)" },
	{ "two kinds of cost", NAME GATEWAY "slots:\n" COST_BLUE("cost_per_hour: 2, price_per_1k_tokens: 0.1") GREEN_COST
	  LIVE, 6, 110, "give cost_per_hour (with replicas) or price_per_1k_tokens, not both" },
	{ "replicas without a price", NAME GATEWAY "slots:\n" COST_BLUE("replicas: 2") GREEN_COST LIVE, 6, 81,
	  "replicas goes with cost_per_hour" },
	{ "zero price per 1k", NAME GATEWAY "slots:\n" COST_BLUE("price_per_1k_tokens: 0") GREEN_COST LIVE, 6, 92,
	  "price_per_1k_tokens '0' must be greater than 0" },
	{ "one slot without cost", NAME GATEWAY SLOTS_BLUE_COST_ONLY LIVE, 7, 10,
	  "slot 'green' has no cost but slot 'blue' has one" },
	{ "prometheus without url", GOOD "metrics:\n  source: prometheus\n", 10, 3, "missing 'prometheus_url'" },
	{ "prometheus without selectors", GOOD "metrics:\n  source: prometheus\n  prometheus_url: http://127.0.0.1:9090\n",
	  6, 10, "slot 'blue' needs a selector" },
	{ "scrape without metrics url", NAME GATEWAY "slots:\n" BLUE "  green: { server: green }\n" LIVE, 7, 10,
	  "slot 'green' needs a metrics_url" },
	{ "custom preset without names", GOOD "metrics:\n  preset: custom\n", 10, 3, "needs a 'names' section" },
	{ "custom preset without errors", GOOD "metrics:\n  preset: custom\n  names:\n    requests: reqs_total\n", 12, 5,
	  "at least requests and errors" },
	{ "bad preset", GOOD "metrics:\n  preset: vlm\n", 10, 11, "expected one of vllm, tgi, triton, custom, got 'vlm'" },
	{ "bad gateway kind", NAME "gateway:\n  kind: envoy\n  runtime_api: /run/h.sock\n  backend: chat\n" SLOTS LIVE, 3,
	  9, "expected one of haproxy, nginx, command, gateway-api, kserve, got 'envoy'" },
	/* nginx */
	{ "nginx without pid_file", NAME NGX_GW("") NGX_SLOTS LIVE, 3, 3,
	  "missing required key 'pid_file' in gateway (kind nginx)" },
	{ "nginx with an haproxy key", NAME NGX_GW("  pid_file: /run/nginx.pid\n  backend: chat\n") NGX_SLOTS LIVE, 7, 12,
	  "'backend' is a key of gateway kind haproxy, not nginx; remove it, or set kind: haproxy" },
	{ "haproxy with an nginx key", NAME "gateway:\n  runtime_api: /run/h.sock\n  backend: chat\n  include: /x\n"
	  SLOTS LIVE, 5, 12, "'include' is a key of gateway kind nginx, not haproxy" },
	{ "nginx relative include", NAME "gateway:\n  kind: nginx\n  include: servers.conf\n  config: /etc/nginx/nginx.conf\n"
	  "  pid_file: /run/nginx.pid\n" NGX_SLOTS LIVE, 4, 12, "include 'servers.conf' must be an absolute path" },
	{ "nginx include is the config", NAME "gateway:\n  kind: nginx\n  include: /etc/nginx/nginx.conf\n"
	  "  config: /etc/nginx/nginx.conf\n  pid_file: /run/nginx.pid\n" NGX_SLOTS LIVE, 4, 12, "is the config itself" },
	{ "nginx address with parameters", NAME NGX_GW("  pid_file: /run/nginx.pid\n") "slots:\n"
	  "  blue:  { server: '127.0.0.1:8001 weight=5', metrics_url: http://127.0.0.1:8001/metrics }\n"
	  "  green: { server: '127.0.0.1:8002', metrics_url: http://127.0.0.1:8002/metrics }\n" LIVE, 8, 20,
	  "server '127.0.0.1:8001 weight=5' is not an nginx server address" },
	{ "nginx slot without server", NAME NGX_GW("  pid_file: /run/nginx.pid\n") "slots:\n"
	  "  blue:  { metrics_url: http://127.0.0.1:8001/metrics }\n"
	  "  green: { server: '127.0.0.1:8002', metrics_url: http://127.0.0.1:8002/metrics }\n" LIVE, 8, 10,
	  "slot 'blue' needs a server: its address in the nginx upstream" },
	/* command */
	{ "command without get", NAME "gateway:\n  kind: command\n  set: [true]\n" CMD_SLOTS LIVE, 3, 3,
	  "missing required key 'get' in gateway (kind command)" },
	{ "command unknown placeholder", NAME CMD_GW("[setw, '{candidate_pct}']") CMD_SLOTS LIVE, 4, 15,
	  "set argument 2: unknown placeholder '{candidate_pct}'" },
	{ "command unknown placeholder, plain", NAME CMD_GW("\n    - setw\n    - --w={candidate_pct}") CMD_SLOTS LIVE, 6, 11,
	  "set argument 2: unknown placeholder '{candidate_pct}'" },
	{ "command placeholder of another slot", NAME CMD_GW("[setw, '{percent:red}']") CMD_SLOTS LIVE, 4, 15,
	  "unknown placeholder '{percent:red}'" },
	{ "command unclosed brace", NAME CMD_GW("[setw, 'w={candidate_percent']") CMD_SLOTS LIVE, 4, 15,
	  "unclosed '{' at character 3" },
	{ "command lone brace", NAME CMD_GW("[setw, '{{\"w\": {candidate_percent}}']") CMD_SLOTS LIVE, 4, 15,
	  "lone '}'" },
	{ "command server placeholder without servers", NAME CMD_GW("[setw, '{candidate_server}']") CMD_SLOTS LIVE, 4, 15,
	  "unknown placeholder '{candidate_server}'" },
	{ "command empty argv", NAME CMD_GW("[]") CMD_SLOTS LIVE, 4, 8, "'set' is an empty list" },
	{ "command argv as one string", NAME CMD_GW("kubectl patch x") CMD_SLOTS LIVE, 4, 8,
	  "'set' must be a list of arguments such as [kubectl, patch, ...], got text" },
	{ "command empty program", NAME CMD_GW("['', x]") CMD_SLOTS LIVE, 4, 9, "the program of 'set' is empty" },
	{ "command null argument", NAME CMD_GW("[setw, ~]") CMD_SLOTS LIVE, 4, 15, "argument 2 of 'set' has no value" },
	{ "command nested argument", NAME CMD_GW("[setw, [a]]") CMD_SLOTS LIVE, 4, 15, "argument 2 of 'set' must be text" },
	/* gateway-api and kserve */
	{ "gateway-api without name", NAME "gateway:\n  kind: gateway-api\n  namespace: models\n" K8S_SLOTS LIVE, 3, 3,
	  "missing required key 'name' in gateway (kind gateway-api)" },
	{ "kserve bad namespace", NAME "gateway:\n  kind: kserve\n  namespace: Models\n  name: m\n" CMD_SLOTS LIVE, 4, 14,
	  "namespace 'Models' is not a Kubernetes namespace" },
	{ "kserve bad name", NAME "gateway:\n  kind: kserve\n  namespace: models\n  name: my_model\n" CMD_SLOTS LIVE, 5, 9,
	  "name 'my_model' is not a Kubernetes object name" },
	{ "kserve with a rule", NAME K8S_GW("kserve", "  rule: 1\n") CMD_SLOTS LIVE, 6, 9,
	  "'rule' is a key of gateway kind gateway-api, not kserve; remove it, or set kind: gateway-api" },
	{ "haproxy with a namespace", NAME "gateway:\n  runtime_api: /run/h.sock\n  backend: chat\n  namespace: models\n"
	  SLOTS LIVE, 5, 14, "'namespace' is a key of gateway kind gateway-api or kserve, not haproxy" },
	{ "gateway-api slot without server", NAME K8S_GW("gateway-api", "") CMD_SLOTS LIVE, 7, 10,
	  "slot 'blue' needs a server: the name of its backendRef (a Service) in the HTTPRoute's rule" },
	{ "gateway-api relative kubeconfig", NAME K8S_GW("gateway-api", "  kubeconfig: kc\n") K8S_SLOTS LIVE, 6, 15,
	  "kubeconfig 'kc' must be an absolute path" },
	{ "gateway-api rule out of range", NAME K8S_GW("gateway-api", "  rule: 99\n") K8S_SLOTS LIVE, 6, 9, "99" },
	{ "zero timeout", NAME "gateway:\n  runtime_api: /run/h.sock\n  backend: chat\n  timeout: 0s\n" SLOTS LIVE, 5, 12,
	  "must be greater than zero" },
	{ "timeout too long", GOOD "metrics:\n  timeout: 5m\n", 10, 12, "timeout '5m' must be at most 1m" },
	{ "names as a list", GOOD "metrics:\n  names: [a, b]\n", 10, 10, "'names' must be a mapping" },
	{ "tab indentation", NAME "gateway:\n\truntime_api: /run/h.sock\n", 3, 1,
	  "tab character used for indentation; use spaces" },
	{ "duplicate slot", NAME GATEWAY "slots:\n" BLUE BLUE LIVE, 7, 3, "duplicate key 'blue' (first at line 6, column 3)" },
	{ "empty file", "", 1, 1, "empty file" },
	{ "invalid utf-8", "name: ch\xe2\x82t\n", 1, 9, "invalid utf-8 byte 0xe2" },
	{ "yaml syntax error", NAME "gateway: {runtime_api: /x\n", 3, 1, "yaml syntax error" },
	{ "missing gateway", NAME SLOTS LIVE, 1, 1, "missing required key 'gateway' in service" },
	{ "missing live", NAME GATEWAY SLOTS, 1, 1, "missing required key 'live'" },
	{ "missing runtime api", NAME "gateway:\n  backend: chat\n" SLOTS LIVE, 3, 3,
	  "missing required key 'runtime_api' in gateway" },
	{ "slot without server", NAME GATEWAY "slots:\n  blue:  { metrics_url: http://127.0.0.1:8001/metrics }\n" GREEN
	  LIVE, 6, 10, "slot 'blue' needs a server: its server name in the haproxy backend" },
	{ "bad slot name", NAME GATEWAY "slots:\n  'bl ue':  { server: blue,  metrics_url: http://127.0.0.1:8001/metrics }\n"
	  GREEN LIVE, 6, 3, "invalid slot name 'bl ue'" },
	/* the drill schedule (line 9 on) */
	{ "drill unknown key", GOOD "drill:\n  every: 30d\n  hodl: 5m\n", 11, 3, "unknown key 'hodl' (did you mean 'hold'?)" },
	{ "drill without every", GOOD "drill:\n  hold: 5m\n", 10, 3, "missing required key 'every' in drill" },
	{ "drill too often", GOOD "drill: { every: 10s }\n", 9, 17, "every '10s' must be at least 1m" },
	{ "drill hold too long", GOOD "drill: { every: 30d, hold: 25h }\n", 9, 28, "hold '25h' must be at most" },
	{ "drill bad policy name", GOOD "drill: { every: 30d, policy: 'a b' }\n", 9, 30, "'a b'" },
	{ "alias", NAME GATEWAY "slots:\n  blue: &s { server: blue, metrics_url: http://127.0.0.1:8001/metrics }\n"
	  "  green: *s\n" LIVE, 6, 9, "anchors ('&s') are not supported" },
};

static void test_bad_inputs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad_case *c = &bad_cases[i];
		struct cn_service s;
		memset(&s, 0x5a, sizeof s);
		struct cn_err err = { 0 };
		int rc = cn_service_parse(c->text, strlen(c->text), "policies/s.yaml", &s, &err);
		if (rc != -CN_EINPUT)
			fail_msg("%s: expected -CN_EINPUT, got %d (%s)", c->what, rc, err.msg);
		char prefix[64];
		snprintf(prefix, sizeof prefix, "policies/s.yaml:%d:%d: ", c->line, c->col);
		if (strncmp(err.msg, prefix, strlen(prefix)) != 0)
			fail_msg("%s: expected position '%s', got '%s'", c->what, prefix, err.msg);
		if (!strstr(err.msg, c->part))
			fail_msg("%s: message '%s' lacks '%s'", c->what, err.msg, c->part);
		assert_int_equal(((unsigned char *)&s)[0], 0x5a); /* untouched on failure */
	}
}

static void test_runtime_api_forms(void **state)
{
	(void)state;
	static const char *const good[] = {
		WITH_API("unix:/run/haproxy/admin.sock"), WITH_API("/run/haproxy/admin.sock"), WITH_API("127.0.0.1:9999"),
		WITH_API("localhost:1"), WITH_API("'[::1]:65535'"),
	};
	static const char *const want[] = {
		"unix:/run/haproxy/admin.sock", "/run/haproxy/admin.sock", "127.0.0.1:9999", "localhost:1", "[::1]:65535",
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		struct cn_service s;
		struct cn_err err = { 0 };
		if (cn_service_parse(good[i], strlen(good[i]), "t", &s, &err) != 0)
			fail_msg("%s: %s", want[i], err.msg);
		assert_string_equal(s.gateway.runtime_api, want[i]);
	}
}

static void test_good_service_defaults(void **state)
{
	(void)state;
	struct cn_service s;
	struct cn_err err = { 0 };
	int rc = cn_service_parse(GOOD, strlen(GOOD), "t", &s, &err);
	if (rc)
		fail_msg("%s", err.msg);
	assert_string_equal(s.name, "chat");
	assert_int_equal(s.gateway.kind, CN_GATEWAY_HAPROXY);
	assert_string_equal(s.gateway.backend, "chat");
	assert_true(s.gateway.timeout_ms == 2000);
	assert_string_equal(s.slots[0].name, "blue");
	assert_string_equal(s.slots[0].server, "blue");
	assert_string_equal(s.slots[1].name, "green");
	assert_string_equal(s.slots[1].metrics_url, "http://127.0.0.1:8002/metrics");
	assert_int_equal(s.initial_live, 0);
	assert_int_equal(s.metrics.source, CN_SOURCE_SCRAPE);
	assert_int_equal(s.metrics.preset, CN_PRESET_VLLM);
	assert_true(s.metrics.timeout_ms == 2000);
	assert_string_equal(s.metrics.names.requests, "http_requests_total");
	assert_string_equal(s.metrics.names.errors, "http_requests_total{status=~\"5..\"}");
	assert_string_equal(s.metrics.names.latency, "vllm:e2e_request_latency_seconds");
	assert_string_equal(s.metrics.names.ttft, "vllm:time_to_first_token_seconds");
	assert_string_equal(s.metrics.names.itl, "vllm:time_per_output_token_seconds");
}

static void test_drill_schedule(void **state)
{
	(void)state;
	struct cn_service s;
	struct cn_err err = { 0 };
	if (cn_service_parse(GOOD, strlen(GOOD), "t", &s, &err))
		fail_msg("%s", err.msg);
	assert_true(s.drill.every_ms == 0); /* none */
	static const char text[] = GOOD "drill:\n  every: 30d\n  policy: chat\n";
	if (cn_service_parse(text, strlen(text), "t", &s, &err))
		fail_msg("%s", err.msg);
	assert_true(s.drill.every_ms == 30LL * 86400000);
	assert_true(s.drill.hold_ms == 300000);
	assert_true(s.drill.baseline_ms == 30000);
	assert_string_equal(s.drill.policy, "chat");
}

static void test_prometheus_preset_and_overrides(void **state)
{
	(void)state;
	const char *text = NAME GATEWAY
		"slots:\n  blue:  { server: b1, selector: '{slot=\"blue\"}' }\n  green: { server: g1, selector: '{slot=\"green\"}' }\n"
		"live: green\n"
		"metrics:\n  source: prometheus\n  prometheus_url: http://127.0.0.1:9090\n  preset: tgi\n  timeout: 3s\n"
		"  names:\n    latency: my_latency_seconds\n    ttft: ''\n";
	struct cn_service s;
	struct cn_err err = { 0 };
	int rc = cn_service_parse(text, strlen(text), "t", &s, &err);
	if (rc)
		fail_msg("%s", err.msg);
	assert_int_equal(s.initial_live, 1);
	assert_int_equal(s.metrics.source, CN_SOURCE_PROMETHEUS);
	assert_string_equal(s.metrics.prometheus_url, "http://127.0.0.1:9090");
	assert_string_equal(s.slots[0].selector, "{slot=\"blue\"}");
	assert_true(s.metrics.timeout_ms == 3000);
	assert_string_equal(s.metrics.names.requests, "tgi_request_count");      /* from the preset */
	assert_string_equal(s.metrics.names.errors, "tgi_request_failure");
	assert_string_equal(s.metrics.names.latency, "my_latency_seconds");     /* overridden */
	assert_string_equal(s.metrics.names.ttft, "");                          /* overridden to none */
	assert_string_equal(s.metrics.names.itl, "tgi_request_mean_time_per_token_duration");
}

static void test_custom_names(void **state)
{
	(void)state;
	const char *text = GOOD "metrics:\n  preset: custom\n  names:\n    requests: reqs_total\n"
			   "    errors: 'reqs_total{code=\"500\"}'\n";
	struct cn_service s;
	struct cn_err err = { 0 };
	int rc = cn_service_parse(text, strlen(text), "t", &s, &err);
	if (rc)
		fail_msg("%s", err.msg);
	assert_string_equal(s.metrics.names.requests, "reqs_total");
	assert_string_equal(s.metrics.names.errors, "reqs_total{code=\"500\"}");
	assert_string_equal(s.metrics.names.latency, "");
	assert_string_equal(s.metrics.names.ttft, "");
}

static void test_presets(void **state)
{
	(void)state;
	struct cn_metric_names n;
	cn_metric_names_preset(CN_PRESET_TGI, &n);
	assert_string_equal(n.latency, "tgi_request_duration");
	assert_string_equal(n.ttft, "");
	cn_metric_names_preset(CN_PRESET_TRITON, &n);
	assert_string_equal(n.requests, "nv_inference_count");
	assert_string_equal(n.errors, "nv_inference_request_failure");
	assert_string_equal(n.latency, "nv_inference_request_duration_us");
	cn_metric_names_preset(CN_PRESET_CUSTOM, &n);
	assert_string_equal(n.requests, "");
	assert_string_equal(n.errors, "");
}

static void test_demo_service_example(void **state)
{
	(void)state;
	const char *dir = getenv("CANARY_SOURCE_DIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/policies/demo-service.yaml", dir ? dir : ".");
	struct cn_service s;
	struct cn_err err = { 0 };
	char *src = NULL;
	int rc = cn_service_load_file(path, &s, &src, &err);
	if (rc)
		fail_msg("%s", err.msg);
	assert_non_null(src);
	assert_string_equal(s.gateway.runtime_api, "unix:/tmp/canary-demo/haproxy.sock");
	assert_string_equal(s.slots[0].name, "blue");
	assert_string_equal(s.slots[0].metrics_url, "http://127.0.0.1:18081/metrics");
	assert_string_equal(s.slots[1].name, "green");
	assert_string_equal(s.slots[1].metrics_url, "http://127.0.0.1:18082/metrics");
	assert_int_equal(s.initial_live, 0);
	assert_int_equal(s.metrics.preset, CN_PRESET_VLLM);
	free(src);
}

/* Unit economics: the example with costs loads; a policy's economics SLOs meet a service only when it has token
 * counters and, for cost_per_1k_tokens, a cost on both slots (FILE:LINE:COL of the SLO's metric otherwise). */
static void test_econ_service_and_policy(void **state)
{
	(void)state;
	const char *dir = getenv("CANARY_SOURCE_DIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/policies/econ-service.yaml", dir ? dir : ".");
	struct cn_service s;
	struct cn_err err = { 0 };
	if (cn_service_load_file(path, &s, NULL, &err))
		fail_msg("%s", err.msg);
	assert_true(s.slots[0].cost_per_hour == 12.40 && s.slots[0].replicas == 4);
	assert_string_equal(s.metrics.names.gen_tokens, "vllm:generation_tokens_total");
	assert_string_equal(s.metrics.names.prompt_tokens, "vllm:prompt_tokens_total");
	assert_string_equal(s.metrics.names.feature_label, "feature");
	struct cn_cost c;
	cn_service_slot_cost(&s, 1, &c);
	assert_true(c.per_hour == 12.40 && c.replicas == 4 && isnan(c.per_1k_tokens));

	static const char pol[] = "name: p\nsteps:\n  - weight: 5%\n    hold: 1m\n  - weight: 100%\n    hold: 1m\n"
				  "slos:\n  - name: e\n    metric: error_rate\n    max: 1%\n"
				  "  - name: c\n    metric: cost_per_1k_tokens\n    max_increase: 1.1x\n";
	struct cn_policy p;
	if (cn_policy_parse(pol, strlen(pol), "p.yaml", &p, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(cn_policy_service_check(&p, pol, "p.yaml", &s, &err), 0);

	struct cn_service nocost = s;
	nocost.slots[1].cost_per_hour = NAN;
	nocost.slots[1].replicas = 0;
	assert_int_equal(cn_policy_service_check(&p, pol, "p.yaml", &nocost, &err), -CN_EINPUT);
	assert_non_null(strstr(err.msg, "p.yaml:12:13: slo 'c': cost_per_1k_tokens needs each slot's cost"));

	struct cn_service notokens = s;
	notokens.metrics.names.gen_tokens[0] = '\0';
	assert_int_equal(cn_policy_service_check(&p, pol, "p.yaml", &notokens, &err), -CN_EINPUT);
	assert_non_null(strstr(err.msg, "p.yaml:12:13: slo 'c': cost_per_1k_tokens needs a generation tokens counter"));

	/* a fixed price per 1k tokens is a cost too */
	struct cn_service fixed = nocost;
	fixed.slots[1].price_per_1k_tokens = 0.002;
	assert_int_equal(cn_policy_service_check(&p, pol, "p.yaml", &fixed, &err), 0);
	cn_service_slot_cost(&fixed, 1, &c);
	assert_true(isnan(c.per_hour) && c.per_1k_tokens == 0.002);
}

/* The Kubernetes examples load as their comments describe. */
static void test_k8s_service_examples(void **state)
{
	(void)state;
	const char *dir = getenv("CANARY_SOURCE_DIR");
	char path[4096];
	struct cn_service s;
	struct cn_err err = { 0 };
	snprintf(path, sizeof path, "%s/policies/gateway-api-service.yaml", dir ? dir : ".");
	if (cn_service_load_file(path, &s, NULL, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(s.gateway.kind, CN_GATEWAY_GATEWAY_API);
	assert_string_equal(s.gateway.k8s_namespace, "models");
	assert_string_equal(s.gateway.k8s_name, "chat");
	assert_int_equal(s.gateway.rule, 0);
	assert_string_equal(s.slots[1].server, "chat-green");
	assert_int_equal(s.gateway.timeout_ms, 10000);
	snprintf(path, sizeof path, "%s/policies/kserve-service.yaml", dir ? dir : ".");
	if (cn_service_load_file(path, &s, NULL, &err))
		fail_msg("%s", err.msg);
	assert_int_equal(s.gateway.kind, CN_GATEWAY_KSERVE);
	assert_string_equal(s.gateway.k8s_name, "flowers");
	assert_int_equal(s.gateway.timeout_ms, 30000);
}

static void test_schema_is_documented(void **state)
{
	(void)state;
	const struct cn_schema *stack[16];
	int n = 0;
	stack[n++] = cn_service_schema();
	while (n > 0) {
		const struct cn_schema *sc = stack[--n];
		for (size_t i = 0; i < sc->nkeys; i++) {
			if (!sc->keys[i].doc || !*sc->keys[i].doc)
				fail_msg("key '%s' in %s has no doc", sc->keys[i].name, sc->name);
			if (sc->keys[i].sub)
				stack[n++] = sc->keys[i].sub;
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_runtime_api_forms),
		cmocka_unit_test(test_good_service_defaults),
		cmocka_unit_test(test_drill_schedule),
		cmocka_unit_test(test_prometheus_preset_and_overrides),
		cmocka_unit_test(test_custom_names),
		cmocka_unit_test(test_presets),
		cmocka_unit_test(test_demo_service_example),
		cmocka_unit_test(test_k8s_service_examples),
		cmocka_unit_test(test_econ_service_and_policy),
		cmocka_unit_test(test_schema_is_documented),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
