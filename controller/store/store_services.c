/* Services in Postgres: one row per service (its live slot), and immutable versions of its file; list, show. */
#include "canary/service.h"
#include "canary/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

json_t *cn_service_to_json(const struct cn_service *sv)
{
	json_t *slots = json_array();
	json_t *doc = NULL;
	if (!slots)
		return NULL;
	for (int i = 0; i < 2; i++) {
		const struct cn_slot *sl = &sv->slots[i];
		if (json_array_append_new(slots, json_pack("{s:s, s:s, s:s, s:s}", "name", sl->name, "server",
							   sl->server, "metrics_url", sl->metrics_url, "selector",
							   sl->selector)))
			goto out;
	}
	const struct cn_metric_names *n = &sv->metrics.names;
	doc = json_pack("{s:s, s:{s:s, s:s, s:s, s:I}, s:O, s:s, s:{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}, s:I}}",
			"name", sv->name, "gateway", "kind", "haproxy", "runtime_api", sv->gateway.runtime_api,
			"backend", sv->gateway.backend, "timeout_ms", (json_int_t)sv->gateway.timeout_ms, "slots", slots,
			"initial_live", sv->slots[sv->initial_live ? 1 : 0].name, "metrics", "source",
			sv->metrics.source == CN_SOURCE_PROMETHEUS ? "prometheus" : "scrape", "prometheus_url",
			sv->metrics.prometheus_url, "preset", preset_name(sv->metrics.preset), "names", "requests",
			n->requests, "errors", n->errors, "latency", n->latency, "ttft", n->ttft, "itl", n->itl,
			"timeout_ms", (json_int_t)sv->metrics.timeout_ms);
out:
	json_decref(slots);
	return doc;
}

int cn_store_service_apply(struct cn_store *s, const struct cn_service *sv, const char *source, int *version_out,
			   bool *created_out, struct cn_err *err)
{
	json_t *spec = cn_service_to_json(sv);
	if (!spec)
		return cn_fail(err, CN_EINTERNAL, "cannot encode service '%s' as json", sv->name);
	/* The live slot is set once; later the control loop moves it on promotion. */
	return cn_store_apply_version(s, "apply services",
				      "SELECT version, created FROM canary.apply_service($1, $2, $3, $4::smallint)",
				      sv->name, source, spec, sv->initial_live ? "1" : "0", version_out, created_out, err);
}

/* Columns shared by list and show: the service, its latest version, and its live and idle slots from the spec. */
#define SERVICE_COLUMNS                                                                                             \
	" s.name, v.version, v.content_sha256, s.live_slot, s.live_version,"                                       \
	" to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created_at,"               \
	" to_char(s.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS updated_at,"               \
	" jsonb_build_object('index', s.live_slot) || (v.spec->'slots'->(s.live_slot::int)) AS live,"             \
	" jsonb_build_object('index', 1 - s.live_slot) || (v.spec->'slots'->(1 - s.live_slot::int)) AS idle"

#define SERVICE_FROM                                                                                                \
	" FROM services s JOIN LATERAL (SELECT * FROM service_versions WHERE service = s.name"                     \
	" ORDER BY version DESC LIMIT 1) v ON true"

json_t *cn_store_service_list(struct cn_store *s, struct cn_err *err)
{
	return cn_store_query_json(s, "list services", "SELECT" SERVICE_COLUMNS SERVICE_FROM " ORDER BY s.name", 0,
				   NULL, err);
}

json_t *cn_store_service_show(struct cn_store *s, const char *name, struct cn_err *err)
{
	const char *q[1] = {name};
	json_t *rows = cn_store_query_json(s, "show services",
					   "SELECT" SERVICE_COLUMNS ", v.created_by, v.spec, v.source" SERVICE_FROM
					   " WHERE s.name = $1",
					   1, q, err);
	json_t *doc = NULL;
	if (!rows)
		return NULL;
	if (json_array_size(rows) == 0)
		cn_fail(err, CN_EINPUT, "no service '%s'; see 'canaryctl service list', or apply it with "
			"'canaryctl service apply FILE'", name);
	else
		doc = json_incref(json_array_get(rows, 0));
	json_decref(rows);
	return doc;
}
