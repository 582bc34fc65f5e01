/* canaryctl service: lint (no database), apply, list and show services; `show` tells a pipeline the idle slot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/dynbuf.h"
#include "canary/gateway.h"
#include "canary/schema.h"
#include "canary/service.h"
#include "canary/spec_json.h"
#include "canary/store.h"
#include "cli_int.h"

static const char service_usage[] =
	"usage: canaryctl service lint FILE...      validate service files (no database)\n"
	"       canaryctl service keys              print the service file reference (Markdown)\n"
	"       canaryctl service apply FILE        store the service (a new version if the content changed)\n"
	"       canaryctl service list              every service with its live and idle slot\n"
	"       canaryctl service show NAME [--source]\n"
	"  (a pipeline reads the idle slot with: canaryctl --output json service show NAME | jq -r .idle.name)\n";

static int service_load(const char *path, void *obj, char **source, struct cn_err *err)
{
	return cn_service_load_file(path, obj, source, err);
}

static const char *service_name(const void *obj)
{
	return ((const struct cn_service *)obj)->name;
}

static void service_describe(const void *obj, char *buf, size_t size)
{
	const struct cn_service *sv = obj;
	snprintf(buf, size, "service '%s': slots %s and %s, %s live", sv->name, sv->slots[0].name, sv->slots[1].name,
		 sv->slots[sv->initial_live ? 1 : 0].name);
}

static json_t *service_json(const void *obj)
{
	return cn_service_to_json(obj);
}

static int service_store(struct cn_store *st, const void *obj, const char *source, int *version, bool *created,
			 struct cn_err *err)
{
	return cn_store_service_apply(st, obj, source, version, created, err);
}

int cli_gateway_probe(const struct cn_service *svc, struct cn_err *err)
{
	double pct[2];
	struct cn_gateway *gw = cn_gateway_open(svc, err);
	if (!gw || cn_gateway_get_weights(gw, pct, err) < 0) {
		cn_gateway_close(gw);
		return cn_err_prefix(err, "its gateway does not answer from this host");
	}
	cn_gateway_close(gw);
	return 0;
}

static int service_probe(const void *obj, struct cn_err *err)
{
	return cli_gateway_probe(obj, err);
}

/* A string for the text views: "-" where the database has none. */
static const char *S(const char *s)
{
	return s ? s : "-";
}

static const char *slot_name(const struct cn_slot_info *slot)
{
	return slot->name ? slot->name : "?";
}

static int service_read_list(struct cn_store *st, void **out, struct cn_err *err)
{
	return cn_store_service_list(st, (struct cn_service_list **)out, err);
}

static json_t *service_list_json(const void *list)
{
	return cli_json_service_list(list);
}

static void service_print_list(const void *list)
{
	const struct cn_service_list *l = list;
	char at[48];
	if (l->n == 0)
		printf("no services yet; store one with 'canaryctl service apply FILE'\n");
	else
		printf("%-24s %7s %-12s %-12s %s\n", "NAME", "VERSION", "LIVE", "IDLE", "UPDATED");
	for (size_t i = 0; i < l->n; i++) {
		const struct cn_service_info *sv = &l->items[i];
		printf("%-24s %7d %-12s %-12s %s\n", S(sv->name), sv->version, slot_name(&sv->live),
		       slot_name(&sv->idle), cli_time(sv->updated_us, CLI_TIME_S, at, sizeof at));
	}
}

static void service_free(void *list)
{
	cn_service_list_free(list);
}

/* What `service show` prints: the stored row, and its gateway's target (cli_gateway_view). */
struct service_show {
	struct cn_service_list *list;
	struct cn_service *spec;
	char api_server[CN_URL_MAX], api_origin[CN_PATH_MAX + 80], api_error[CN_ERR_MSG_MAX];
	struct cli_gateway_view view;
};

static void service_show_free(void *model)
{
	struct service_show *m = model;
	if (!m)
		return;
	cn_service_list_free(m->list);
	free(m->spec);
	free(m);
}

static int service_read_show(struct cn_store *st, const char *name, int version, void **out, struct cn_err *err)
{
	(void)version; /* services are shown at their latest version */
	struct service_show *m = calloc(1, sizeof *m);
	int rc;
	if (!m)
		return cn_fail(err, CN_EINTERNAL, "out of memory");
	if ((rc = cn_store_service_show(st, name, &m->list, err)) < 0) {
		service_show_free(m);
		return rc;
	}
	const struct cn_service_info *sv = &m->list->items[0];
	/* each kind's own keys: the file as applied, parsed again (what the daemon runs with); a file that a later
	 * canary no longer accepts shows the stored kind and HAProxy fields only */
	struct cn_err perr = { 0 };
	char origin[CN_NAME_MAX + 32];
	snprintf(origin, sizeof origin, "service %s version %d", S(sv->name), sv->version);
	if (sv->source && (m->spec = calloc(1, sizeof *m->spec)) &&
	    cn_service_parse(sv->source, strlen(sv->source), origin, m->spec, &perr) < 0) {
		free(m->spec);
		m->spec = NULL;
	}
	m->view.spec = m->spec;
	if (m->spec && (m->spec->gateway.kind == CN_GATEWAY_GATEWAY_API || m->spec->gateway.kind == CN_GATEWAY_KSERVE)) {
		if (cn_gateway_k8s_server(m->spec, m->api_server, sizeof m->api_server, m->api_origin,
					  sizeof m->api_origin, &perr) == 0) {
			m->view.api_server = m->api_server;
			m->view.api_origin = m->api_origin;
		} else {
			snprintf(m->api_error, sizeof m->api_error, "%s", perr.msg);
			m->view.api_error = m->api_error;
		}
	}
	*out = m;
	return 0;
}

static json_t *service_show_json(const void *model)
{
	const struct service_show *m = model;
	json_t *o = cli_json_service(&m->list->items[0], true), *gw = cli_json_gateway(&m->view);
	if (!o || !gw || json_object_set_new(o, "gateway", gw) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static void print_slot(const char *role, const struct cn_slot_info *slot, const char *server_label)
{
	const char *sep = "";
	printf("%s: %s (", role, slot_name(slot));
	if (server_label) {
		printf("%s %s", server_label, S(slot->server));
		sep = ", ";
	}
	if (slot->metrics_url && *slot->metrics_url) {
		printf("%smetrics %s", sep, slot->metrics_url);
		sep = ", ";
	}
	if (slot->selector && *slot->selector)
		printf("%sselector %s", sep, slot->selector);
	printf(")\n");
}

/* What a slot's `server` is to this kind of gateway, or NULL when it has none (kserve: revisions). */
static const char *server_label(const struct cn_service *spec)
{
	if (!spec)
		return "server";
	switch (spec->gateway.kind) {
	case CN_GATEWAY_NGINX:
		return "upstream server";
	case CN_GATEWAY_GATEWAY_API:
		return "backendRef";
	case CN_GATEWAY_KSERVE:
		return NULL;
	case CN_GATEWAY_COMMAND:
		return spec->slots[0].server[0] ? "server" : NULL;
	default:
		return "server";
	}
}

static void service_print_show(const void *model, bool source)
{
	const struct service_show *m = model;
	const struct cn_service_info *sv = &m->list->items[0];
	char at[48];
	struct cn_dynbuf target;
	printf("service %s version %d, applied %s by %s\n", S(sv->name), sv->version,
	       cli_time(sv->created_us, CLI_TIME_S, at, sizeof at), S(sv->created_by));
	print_slot("live", &sv->live, server_label(m->spec));
	print_slot("idle", &sv->idle, server_label(m->spec));
	if (sv->live_version)
		printf("live version: %s\n", sv->live_version);
	if (m->spec) {
		cn_dynbuf_init(&target, 64 * 1024);
		cli_gateway_target(&m->view, &target);
		printf("gateway: %s\n", cn_dynbuf_len(&target) ? cn_dynbuf_ptr(&target) : "?");
		cn_dynbuf_free(&target);
	} else {
		printf("gateway: %s %s backend %s\n", S(sv->gateway_kind), S(sv->gateway_runtime_api),
		       S(sv->gateway_backend));
	}
	printf("metrics: %s, preset %s\n", S(sv->metrics_source), S(sv->metrics_preset));
	if (source)
		printf("--- source ---\n%s", sv->source ? sv->source : "");
}

/* An argv template for people: its arguments separated by blanks, each quoted as a shell would need it. */
static void add_argv(struct cn_dynbuf *b, const struct cn_argv_tmpl *t)
{
	const char *a = t->buf;
	for (int i = 0; i < t->argc; i++) {
		bool plain = a[0] != '\0';
		for (const char *p = a; *p && plain; p++)
			plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=/.,:@%{}", *p) != NULL;
		cn_dynbuf_adds(b, i ? " " : "");
		if (plain) {
			cn_dynbuf_adds(b, a);
		} else {
			cn_dynbuf_adds(b, "'");
			for (const char *p = a; *p; p++)
				*p == '\'' ? cn_dynbuf_adds(b, "'\\''") : cn_dynbuf_add(b, p, 1);
			cn_dynbuf_adds(b, "'");
		}
		a += strlen(a) + 1;
	}
}

/* Where the Kubernetes API server is, or why it cannot be found from here. */
static void add_api_server(struct cn_dynbuf *b, const struct cli_gateway_view *v)
{
	if (v->api_server)
		cn_dynbuf_addf(b, " on %s (credentials: %s)", v->api_server, v->api_origin);
	else
		cn_dynbuf_addf(b, " on an API server not found from this host (%s)", v->api_error ? v->api_error : "?");
}

void cli_gateway_target(const struct cli_gateway_view *v, struct cn_dynbuf *b)
{
	const struct cn_service *sv = v->spec;
	if (!sv)
		return;
	const char *kind = cn_gateway_kind_name(sv->gateway.kind);
	switch (sv->gateway.kind) {
	case CN_GATEWAY_HAPROXY:
		cn_dynbuf_addf(b, "%s %s backend %s", kind, sv->gateway.runtime_api, sv->gateway.backend);
		break;
	case CN_GATEWAY_NGINX:
		cn_dynbuf_addf(b, "%s upstream servers %s and %s written to include %s (config %s, pid file %s)", kind,
			       sv->slots[0].server, sv->slots[1].server, sv->gateway.include, sv->gateway.config,
			       sv->gateway.pid_file);
		break;
	case CN_GATEWAY_COMMAND:
		cn_dynbuf_addf(b, "%s set: ", kind);
		add_argv(b, &sv->gateway.set);
		cn_dynbuf_adds(b, "; get: ");
		add_argv(b, &sv->gateway.get);
		break;
	case CN_GATEWAY_GATEWAY_API:
		cn_dynbuf_addf(b, "%s httproute %s/%s rule %d, backendRefs %s and %s", kind, sv->gateway.k8s_namespace,
			       sv->gateway.k8s_name, sv->gateway.rule, sv->slots[0].server, sv->slots[1].server);
		add_api_server(b, v);
		break;
	case CN_GATEWAY_KSERVE:
		cn_dynbuf_addf(b, "%s inferenceservice %s/%s", kind, sv->gateway.k8s_namespace, sv->gateway.k8s_name);
		add_api_server(b, v);
		break;
	}
}

static const struct cli_doc service_doc = {
	.kind = "service", .usage = service_usage, .size = sizeof(struct cn_service), .load = service_load,
	.name = service_name, .describe = service_describe, .to_json = service_json, .apply = service_store,
	.schema = cn_service_schema, .probe = service_probe, .read_list = service_read_list,
	.list_json = service_list_json, .print_list = service_print_list, .free_list = service_free,
	.read_show = service_read_show, .show_json = service_show_json, .print_show = service_print_show,
	.free_show = service_show_free,
};

int cmd_service(struct cli *cli, int argc, char **argv)
{
	return cli_doc_command(cli, &service_doc, argc, argv);
}
