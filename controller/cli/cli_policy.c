/* canaryctl policy: lint (no database), apply, list and show versioned rollout policies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/policy.h"
#include "canary/store.h"
#include "canary/schema.h"
#include "cli.h"

static const char policy_usage[] =
	"usage: canaryctl policy lint FILE...           validate policy files (no database)\n"
	"       canaryctl policy keys                   print the policy file reference (Markdown)\n"
	"       canaryctl policy apply FILE             store a new version if the content changed\n"
	"       canaryctl policy list                   latest version of every policy\n"
	"       canaryctl policy show NAME [--version N] [--source]\n";

static int policy_load(const char *path, void *obj, char **source, struct cn_err *err)
{
	return cn_policy_load_file(path, obj, source, err);
}

static const char *policy_name(const void *obj)
{
	return ((const struct cn_policy *)obj)->name;
}

static void policy_describe(const void *obj, char *buf, size_t size)
{
	const struct cn_policy *p = obj;
	snprintf(buf, size, "policy '%s': %d steps, %d slos", p->name, p->nsteps, p->nslos);
}

static json_t *policy_json(const void *obj)
{
	return cn_policy_to_json(obj);
}

static int policy_store(struct cn_store *st, const void *obj, const char *source, int *version, bool *created,
			struct cn_err *err)
{
	return cn_store_policy_apply(st, obj, source, version, created, err);
}

static const struct cli_doc policy_doc = {
	.kind = "policy", .usage = policy_usage, .size = sizeof(struct cn_policy), .load = policy_load,
	.name = policy_name, .describe = policy_describe, .to_json = policy_json, .apply = policy_store,
	.schema = cn_policy_schema,
};

static int policy_lint(struct cli *cli, int argc, char **argv)
{
	return cli_doc_lint(cli, &policy_doc, argc, argv);
}

static int policy_apply(struct cli *cli, int argc, char **argv)
{
	return cli_doc_apply(cli, &policy_doc, argc, argv);
}

static int policy_list(struct cli *cli, int argc, char **argv)
{
	struct cn_err err = {0};
	struct cn_store *store;
	int n, rc;
	rc = cli_parse(argc, argv, NULL, NULL, 0, &n, policy_usage);
	if (rc)
		return rc == 1 ? 0 : rc;
	rc = cli_store(cli, &store);
	if (rc)
		return rc;
	json_t *rows = cn_store_policy_list(store, &err);
	if (!rows)
		return cli_error(&err);
	if (cli->output == CLI_JSON)
		return cli_print_json(rows);
	if (json_array_size(rows) == 0)
		printf("no policies yet; store one with 'canaryctl policy apply FILE'\n");
	else
		printf("%-24s %7s %8s %5s %4s  %-20s %s\n", "NAME", "VERSION", "VERSIONS", "STEPS", "SLOS", "APPLIED",
		       "BY");
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r)
	{
		printf("%-24s %7lld %8lld %5lld %4lld  %-20s %s\n", json_string_value(json_object_get(r, "name")),
		       json_integer_value(json_object_get(r, "version")),
		       json_integer_value(json_object_get(r, "versions")),
		       json_integer_value(json_object_get(r, "steps")), json_integer_value(json_object_get(r, "slos")),
		       json_string_value(json_object_get(r, "created_at")),
		       json_string_value(json_object_get(r, "created_by")));
	}
	json_decref(rows);
	return 0;
}

/* A stored double for people: "-" for null. */
static const char *num(const json_t *j, const char *suffix, double scale, char *buf, size_t len)
{
	if (!json_is_number(j))
		return "-";
	snprintf(buf, len, "%g%s", json_number_value(j) * scale, suffix);
	return buf;
}

static void print_policy(const json_t *doc, bool source)
{
	char b1[32], b2[32], b3[32], b4[32];
	const json_t *spec = json_object_get(doc, "spec"), *a = json_object_get(spec, "analysis");
	printf("policy %s version %lld (latest %lld)\n", json_string_value(json_object_get(doc, "name")),
	       json_integer_value(json_object_get(doc, "version")),
	       json_integer_value(json_object_get(doc, "latest_version")));
	printf("applied %s by %s, sha256 %s\n", json_string_value(json_object_get(doc, "created_at")),
	       json_string_value(json_object_get(doc, "created_by")),
	       json_string_value(json_object_get(doc, "content_sha256")));
	const char *desc = json_string_value(json_object_get(spec, "description"));
	if (desc && *desc)
		printf("description: %s\n", desc);
	printf("steps:\n");
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(doc, "steps"), i, r)
	{
		printf("  %zu. weight %-8s hold %s%s\n", i + 1,
		       num(json_object_get(r, "weight_pct"), "%", 1, b1, sizeof b1),
		       cli_duration(json_integer_value(json_object_get(r, "hold_ms")), b2, sizeof b2),
		       json_is_true(json_object_get(r, "approval")) ? " approval required" : "");
	}
	printf("slos:\n");
	json_array_foreach(json_object_get(doc, "slos"), i, r)
	{
		const char *metric = json_string_value(json_object_get(r, "metric"));
		bool rate = metric && strcmp(metric, "error_rate") == 0;
		printf("  %-20s %-10s quantile %-6s max %-8s max_increase %-6s tolerance %s\n",
		       json_string_value(json_object_get(r, "name")), metric,
		       num(json_object_get(r, "quantile"), "", 1, b1, sizeof b1),
		       num(json_object_get(r, "max_value"), rate ? "%" : "s", rate ? 100 : 1, b2, sizeof b2),
		       num(json_object_get(r, "max_increase"), "x", 1, b3, sizeof b3),
		       num(json_object_get(r, "tolerance"), "x", 1, b4, sizeof b4));
	}
	if (a)
		printf("analysis: every %s, judge %s, %lld failing ticks confirm, min %lld requests per step, "
		       "inconclusive for %s -> %s\n",
		       cli_duration(json_integer_value(json_object_get(a, "interval_ms")), b1, sizeof b1),
		       json_string_value(json_object_get(a, "judge")),
		       json_integer_value(json_object_get(a, "failing_ticks")),
		       json_integer_value(json_object_get(a, "min_requests")),
		       cli_duration(json_integer_value(json_object_get(a, "inconclusive_timeout_ms")), b2, sizeof b2),
		       json_string_value(json_object_get(a, "on_inconclusive")));
	printf("on failure: %s\n", json_string_value(json_object_get(spec, "on_failure")));
	if (source)
		printf("--- source ---\n%s", json_string_value(json_object_get(doc, "source")));
}

static int policy_show(struct cli *cli, int argc, char **argv)
{
	char *pos[1];
	const char *vers = NULL;
	bool source = false;
	struct cli_opt opts[] = {{"version", &vers, NULL}, {"source", NULL, &source}, {NULL, NULL, NULL}};
	struct cn_err err = {0};
	struct cn_store *store;
	int n, rc, version = 0;

	rc = cli_parse(argc, argv, opts, pos, 1, &n, policy_usage);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (n != 1)
		return cli_usage_error(policy_usage, "policy show needs one NAME");
	if (vers && (rc = cli_parse_int("version", vers, 1, &version, policy_usage)) != 0)
		return rc;
	rc = cli_store(cli, &store);
	if (rc)
		return rc;
	json_t *doc = cn_store_policy_show(store, pos[0], version, &err);
	if (!doc)
		return cli_error(&err);
	if (cli->output == CLI_JSON)
		return cli_print_json(doc);
	print_policy(doc, source);
	json_decref(doc);
	return 0;
}

static int policy_keys(struct cli *cli, int argc, char **argv)
{
	return cli_doc_keys(cli, &policy_doc, argc, argv);
}

int cmd_policy(struct cli *cli, int argc, char **argv)
{
	static const struct {
		const char *name;
		cli_command_fn fn;
	} sub[] = {{"lint", policy_lint}, {"keys", policy_keys}, {"apply", policy_apply}, {"list", policy_list}, {"show", policy_show}};
	if (argc < 2)
		return cli_usage_error(policy_usage, "policy needs a subcommand");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(policy_usage, stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++)
		if (strcmp(argv[1], sub[i].name) == 0)
			return sub[i].fn(cli, argc - 1, argv + 1);
	return cli_usage_error(policy_usage, "unknown policy subcommand '%s'", argv[1]);
}
