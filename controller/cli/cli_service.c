/* canaryctl service: lint (no database), apply, list and show services; `show` tells a pipeline the idle slot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int service_read_show(struct cn_store *st, const char *name, int version, void **out, struct cn_err *err)
{
	(void)version; /* services are shown at their latest version */
	return cn_store_service_show(st, name, (struct cn_service_list **)out, err);
}

static json_t *service_show_json(const void *model)
{
	const struct cn_service_list *l = model;
	return cli_json_service(&l->items[0], true);
}

static void print_slot(const char *role, const struct cn_slot_info *slot)
{
	printf("%s: %s (server %s", role, slot_name(slot), S(slot->server));
	if (slot->metrics_url && *slot->metrics_url)
		printf(", metrics %s", slot->metrics_url);
	if (slot->selector && *slot->selector)
		printf(", selector %s", slot->selector);
	printf(")\n");
}

static void service_print_show(const void *model, bool source)
{
	const struct cn_service_info *sv = &((const struct cn_service_list *)model)->items[0];
	char at[48];
	printf("service %s version %d, applied %s by %s\n", S(sv->name), sv->version,
	       cli_time(sv->created_us, CLI_TIME_S, at, sizeof at), S(sv->created_by));
	print_slot("live", &sv->live);
	print_slot("idle", &sv->idle);
	if (sv->live_version)
		printf("live version: %s\n", sv->live_version);
	printf("gateway: %s %s backend %s\n", S(sv->gateway_kind), S(sv->gateway_runtime_api), S(sv->gateway_backend));
	printf("metrics: %s, preset %s\n", S(sv->metrics_source), S(sv->metrics_preset));
	if (source)
		printf("--- source ---\n%s", sv->source ? sv->source : "");
}

static const struct cli_doc service_doc = {
	.kind = "service", .usage = service_usage, .size = sizeof(struct cn_service), .load = service_load,
	.name = service_name, .describe = service_describe, .to_json = service_json, .apply = service_store,
	.schema = cn_service_schema, .probe = service_probe, .read_list = service_read_list,
	.list_json = service_list_json, .print_list = service_print_list, .free_list = service_free,
	.read_show = service_read_show, .show_json = service_show_json, .print_show = service_print_show,
	.free_show = service_free,
};

int cmd_service(struct cli *cli, int argc, char **argv)
{
	return cli_doc_command(cli, &service_doc, argc, argv);
}
