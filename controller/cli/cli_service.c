/* canaryctl service: lint (no database), apply, list and show services; `show` tells a pipeline the idle slot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/gateway.h"
#include "canary/service.h"
#include "canary/store.h"
#include "canary/schema.h"
#include "cli.h"

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

static const struct cli_doc service_doc = {
	.kind = "service", .usage = service_usage, .size = sizeof(struct cn_service), .load = service_load,
	.name = service_name, .describe = service_describe, .to_json = service_json, .apply = service_store,
	.schema = cn_service_schema, .probe = service_probe,
};

static int service_lint(struct cli *cli, int argc, char **argv)
{
	return cli_doc_lint(cli, &service_doc, argc, argv);
}

static int service_apply(struct cli *cli, int argc, char **argv)
{
	return cli_doc_apply(cli, &service_doc, argc, argv);
}

static const char *slot_name(const json_t *slot)
{
	const char *s = json_string_value(json_object_get(slot, "name"));
	return s ? s : "?";
}

static int service_list(struct cli *cli, int argc, char **argv)
{
	struct cn_err err = {0};
	struct cn_store *store;
	int n, rc;
	rc = cli_parse(argc, argv, NULL, NULL, 0, &n, service_usage);
	if (rc)
		return rc == 1 ? 0 : rc;
	rc = cli_store(cli, &store);
	if (rc)
		return rc;
	json_t *rows = cn_store_service_list(store, &err);
	if (!rows)
		return cli_error(&err);
	if (cli->output == CLI_JSON)
		return cli_print_json(rows);
	if (json_array_size(rows) == 0)
		printf("no services yet; store one with 'canaryctl service apply FILE'\n");
	else
		printf("%-24s %7s %-12s %-12s %s\n", "NAME", "VERSION", "LIVE", "IDLE", "UPDATED");
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r)
	{
		printf("%-24s %7lld %-12s %-12s %s\n", json_string_value(json_object_get(r, "name")),
		       json_integer_value(json_object_get(r, "version")), slot_name(json_object_get(r, "live")),
		       slot_name(json_object_get(r, "idle")), json_string_value(json_object_get(r, "updated_at")));
	}
	json_decref(rows);
	return 0;
}

static void print_slot(const char *role, const json_t *slot)
{
	const char *url = json_string_value(json_object_get(slot, "metrics_url"));
	const char *sel = json_string_value(json_object_get(slot, "selector"));
	printf("%s: %s (server %s", role, slot_name(slot), json_string_value(json_object_get(slot, "server")));
	if (url && *url)
		printf(", metrics %s", url);
	if (sel && *sel)
		printf(", selector %s", sel);
	printf(")\n");
}

static int service_show(struct cli *cli, int argc, char **argv)
{
	char *pos[1];
	bool source = false;
	struct cli_opt opts[] = {{"source", NULL, &source}, {NULL, NULL, NULL}};
	struct cn_err err = {0};
	struct cn_store *store;
	int n, rc;

	rc = cli_parse(argc, argv, opts, pos, 1, &n, service_usage);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (n != 1)
		return cli_usage_error(service_usage, "service show needs one NAME");
	rc = cli_store(cli, &store);
	if (rc)
		return rc;
	json_t *doc = cn_store_service_show(store, pos[0], &err);
	if (!doc)
		return cli_error(&err);
	if (cli->output == CLI_JSON)
		return cli_print_json(doc);
	const json_t *spec = json_object_get(doc, "spec"), *gw = json_object_get(spec, "gateway");
	const json_t *m = json_object_get(spec, "metrics");
	const char *live_version = json_string_value(json_object_get(doc, "live_version"));
	printf("service %s version %lld, applied %s by %s\n", json_string_value(json_object_get(doc, "name")),
	       json_integer_value(json_object_get(doc, "version")), json_string_value(json_object_get(doc, "created_at")),
	       json_string_value(json_object_get(doc, "created_by")));
	print_slot("live", json_object_get(doc, "live"));
	print_slot("idle", json_object_get(doc, "idle"));
	if (live_version)
		printf("live version: %s\n", live_version);
	printf("gateway: %s %s backend %s\n", json_string_value(json_object_get(gw, "kind")),
	       json_string_value(json_object_get(gw, "runtime_api")), json_string_value(json_object_get(gw, "backend")));
	printf("metrics: %s, preset %s\n", json_string_value(json_object_get(m, "source")),
	       json_string_value(json_object_get(m, "preset")));
	if (source)
		printf("--- source ---\n%s", json_string_value(json_object_get(doc, "source")));
	json_decref(doc);
	return 0;
}

static int service_keys(struct cli *cli, int argc, char **argv)
{
	return cli_doc_keys(cli, &service_doc, argc, argv);
}

int cmd_service(struct cli *cli, int argc, char **argv)
{
	static const struct {
		const char *name;
		cli_command_fn fn;
	} sub[] = {{"lint", service_lint}, {"keys", service_keys}, {"apply", service_apply}, {"list", service_list}, {"show", service_show}};
	if (argc < 2)
		return cli_usage_error(service_usage, "service needs a subcommand");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(service_usage, stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++)
		if (strcmp(argv[1], sub[i].name) == 0)
			return sub[i].fn(cli, argc - 1, argv + 1);
	return cli_usage_error(service_usage, "unknown service subcommand '%s'", argv[1]);
}
