/* Types of a service: one gateway route with two backend slots, and where each slot's metrics come from. */
#ifndef CANARY_SERVICE_T_H
#define CANARY_SERVICE_T_H

#include <stdint.h>

#include "canary/contract-t.h"
#include "canary/policy-t.h"
#include "canary/sla-t.h"

#define CN_URL_MAX 512
#define CN_SELECTOR_MAX 256
#define CN_PATH_MAX 256
#define CN_ARGV_BYTES 2048 /* an argv template's arguments, each NUL-terminated, back to back */
#define CN_ARGV_MAX 64     /* arguments in an argv template */
#define CN_K8S_NAME_MAX 254 /* a Kubernetes object name (DNS subdomain, 253) */
#define CN_K8S_NS_MAX 64    /* a namespace (DNS label, 63) */

/* An argv template of the command gateway: argc arguments, each NUL-terminated, one after another in buf; each may
 * hold {placeholder}s ({{ and }} stand for literal braces). argc 0: not set. */
struct cn_argv_tmpl {
	int argc;
	char buf[CN_ARGV_BYTES];
};

enum cn_gateway_kind { CN_GATEWAY_HAPROXY, CN_GATEWAY_NGINX, CN_GATEWAY_COMMAND, CN_GATEWAY_GATEWAY_API, CN_GATEWAY_KSERVE };
enum cn_metrics_source { CN_SOURCE_SCRAPE, CN_SOURCE_PROMETHEUS };
enum cn_metrics_preset { CN_PRESET_VLLM, CN_PRESET_TGI, CN_PRESET_TRITON, CN_PRESET_CUSTOM };

/* Series selectors in PromQL-like syntax: a metric name with optional label matchers, e.g.
 * `http_requests_total{status=~"5.."}`. Histograms are named by their base name (without _bucket). */
struct cn_metric_names {
	char requests[CN_SELECTOR_MAX]; /* counter of finished requests */
	char errors[CN_SELECTOR_MAX];   /* counter of failed requests */
	char latency[CN_SELECTOR_MAX];  /* histogram of end-to-end latency, seconds */
	char ttft[CN_SELECTOR_MAX];     /* histogram of time to first token, seconds; "" if none */
	char itl[CN_SELECTOR_MAX];      /* histogram of inter-token latency, seconds; "" if none */
	char gen_tokens[CN_SELECTOR_MAX];    /* counter of generated (output) tokens; "" if none */
	char prompt_tokens[CN_SELECTOR_MAX]; /* counter of prompt (input) tokens; "" if none */
	char feature_label[CN_NAME_MAX];     /* label that names a feature for the per-feature breakdown; "" none */
};

struct cn_slot {
	char name[CN_NAME_MAX];         /* e.g. "blue" */
	char server[CN_NAME_MAX];       /* the gateway's server for this slot: HAProxy's server name in the backend,
					 * nginx's server address (127.0.0.1:8001, unix:/path); command: optional text */
	char metrics_url[CN_URL_MAX];   /* scrape source: the slot's /metrics URL */
	char selector[CN_SELECTOR_MAX]; /* prometheus source: label matchers that pick this slot, e.g. {slot="blue"} */
	double cost_per_hour;           /* price of one replica-hour; NAN: none */
	int replicas;                   /* replicas serving the slot; 0: not given (1 with cost_per_hour) */
	double price_per_1k_tokens;     /* fixed price of 1,000 generation tokens; NAN: none */
};

/* A service's failover drill schedule (key `drill`): canaryd starts a drill every every_ms (0: never). */
struct cn_drill_schedule {
	int64_t every_ms;
	int64_t hold_ms;
	int64_t baseline_ms;
	char policy[CN_NAME_MAX]; /* whose SLOs judge the secondary */
};

struct cn_service {
	char name[CN_NAME_MAX];
	struct {
		enum cn_gateway_kind kind;
		char runtime_api[CN_URL_MAX]; /* "unix:/path/to/sock", "/path/to/sock" or "host:port" */
		char backend[CN_NAME_MAX];
		int64_t timeout_ms;
		/* kind nginx: canary writes the upstream's server lines into `include`, checks `config` with
		 * `nginx -t`, and reloads the master whose pid is in `pid_file` */
		char include[CN_PATH_MAX];
		char config[CN_PATH_MAX];
		char pid_file[CN_PATH_MAX];
		char nginx[CN_PATH_MAX];     /* the nginx binary: a path, or a name looked up in PATH and the sbin dirs */
		char prefix[CN_PATH_MAX];    /* nginx -p PREFIX; "" none */
		char error_log[CN_PATH_MAX]; /* read after a reload for [emerg] lines; "" none */
		/* kind command: argv templates run without a shell */
		struct cn_argv_tmpl set, get;
		/* kinds gateway-api (an HTTPRoute; each slot's server names its backendRef in rule `rule`) and kserve
		 * (an InferenceService's canaryTrafficPercent): the object, and the credentials (kubeconfig file and
		 * context; "" finds them as client-go does) */
		char k8s_namespace[CN_K8S_NS_MAX];
		char k8s_name[CN_K8S_NAME_MAX];
		int rule;
		char kubeconfig[CN_PATH_MAX];
		char k8s_context[CN_NAME_MAX * 2];
	} gateway;
	struct cn_slot slots[2];
	int initial_live;                 /* index of the slot that is live when the service is first applied */
	struct {
		enum cn_metrics_source source;
		char prometheus_url[CN_URL_MAX]; /* prometheus source: base URL, e.g. http://127.0.0.1:9090 */
		enum cn_metrics_preset preset;
		struct cn_metric_names names;    /* filled from the preset, then overridden by explicit names */
		int64_t timeout_ms;
	} metrics;
	struct cn_notify notify;          /* webhooks for its rollouts, drills and missed SLA windows */
	struct cn_drill_schedule drill;   /* scheduled failover drills */
	struct cn_contract contract;      /* what its answers must look like (checked during pre-flight) */
	struct cn_sla_contract sla;       /* the SLA canaryd judges each closed window against (nobjectives 0: none) */
};

#endif
