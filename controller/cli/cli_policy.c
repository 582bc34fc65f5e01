/* canaryctl policy: lint (no database), apply, list and show versioned rollout policies. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/policy.h"
#include "canary/schema.h"
#include "canary/service.h"
#include "canary/spec_json.h"
#include "canary/store.h"
#include "cli_int.h"

static const char policy_usage[] =
	"usage: canaryctl policy lint FILE... [--service SERVICE_FILE]\n"
	"                                               validate policy files (no database); with --service, also\n"
	"                                               that their objectives can be computed from that service\n"
	"       canaryctl policy keys                   print the policy file reference (Markdown)\n"
	"       canaryctl policy apply FILE             store a new version if the content changed\n"
	"       canaryctl policy list                   latest version of every policy\n"
	"       canaryctl policy show NAME [--version N] [--source]\n";

static int policy_load(const char *path, void *obj, char **source, struct cn_err *err)
{
	return cn_policy_load_file(path, obj, source, err);
}

static int policy_pair(const void *obj, const char *source, const char *path, const char *other,
		       struct cn_err *err)
{
	struct cn_service *svc = calloc(1, sizeof *svc);
	if (!svc)
		return cn_fail(err, CN_EINTERNAL, "out of memory");
	int rc = cn_service_load_file(other, svc, NULL, err);
	if (rc == 0)
		rc = cn_policy_service_check(obj, source, path, svc, err);
	free(svc);
	return rc;
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

/* A string for the text views: "-" where the database has none. */
static const char *S(const char *s)
{
	return s ? s : "-";
}

static int policy_read_list(struct cn_store *st, void **out, struct cn_err *err)
{
	return cn_store_policy_list(st, (struct cn_policy_list **)out, err);
}

static json_t *policy_list_json(const void *list)
{
	return cli_json_policy_list(list);
}

static void policy_print_list(const void *list)
{
	const struct cn_policy_list *l = list;
	char at[48];
	if (l->n == 0)
		printf("no policies yet; store one with 'canaryctl policy apply FILE'\n");
	else
		printf("%-24s %7s %8s %5s %4s  %-20s %s\n", "NAME", "VERSION", "VERSIONS", "STEPS", "SLOS", "APPLIED",
		       "BY");
	for (size_t i = 0; i < l->n; i++) {
		const struct cn_policy_info *p = &l->items[i];
		printf("%-24s %7d %8d %5d %4d  %-20s %s\n", S(p->name), p->version, p->versions, p->steps, p->slos,
		       cli_time(p->created_us, CLI_TIME_S, at, sizeof at), S(p->created_by));
	}
}

static void policy_free_list(void *list)
{
	cn_policy_list_free(list);
}

static int policy_read_show(struct cn_store *st, const char *name, int version, void **out, struct cn_err *err)
{
	return cn_store_policy_show(st, name, version, (struct cn_policy_version **)out, err);
}

static json_t *policy_show_json(const void *model)
{
	return cli_json_policy_version(model);
}

/* A stored double for people: "-" for NULL. */
static const char *num(double v, const char *suffix, double scale, char *buf, size_t len)
{
	if (isnan(v))
		return "-";
	snprintf(buf, len, "%g%s", v * scale, suffix);
	return buf;
}

static void policy_print_show(const void *model, bool source)
{
	const struct cn_policy_version *v = model;
	char b1[48], b2[32], b3[32], b4[32];
	printf("policy %s version %d (latest %d)\n", S(v->name), v->version, v->latest_version);
	printf("applied %s by %s, sha256 %s\n", cli_time(v->created_us, CLI_TIME_S, b1, sizeof b1), S(v->created_by),
	       S(v->content_sha256));
	if (v->description && *v->description)
		printf("description: %s\n", v->description);
	printf("steps:\n");
	for (size_t i = 0; i < v->nsteps; i++) {
		const struct cn_policy_step_row *st = &v->steps[i];
		printf("  %zu. weight %-8s hold %s%s\n", i + 1, num(st->weight_pct, "%", 1, b1, sizeof b1),
		       cli_duration(st->hold_ms, b2, sizeof b2), st->approval ? " approval required" : "");
	}
	printf("slos:\n");
	for (size_t i = 0; i < v->nslos; i++) {
		const struct cn_policy_slo_row *sl = &v->slos[i];
		bool rate = sl->metric && strcmp(sl->metric, "error_rate") == 0;
		printf("  %-20s %-10s quantile %-6s max %-8s max_increase %-6s tolerance %s\n", S(sl->name),
		       S(sl->metric), num(sl->quantile, "", 1, b1, sizeof b1),
		       num(sl->max_value, rate ? "%" : "s", rate ? 100 : 1, b2, sizeof b2),
		       num(sl->max_increase, "x", 1, b3, sizeof b3), num(sl->tolerance, "x", 1, b4, sizeof b4));
	}
	if (v->has_analysis)
		printf("analysis: every %s, judge %s, %lld failing ticks confirm, min %lld requests per step, "
		       "inconclusive for %s -> %s\n",
		       cli_duration(v->interval_ms, b1, sizeof b1), S(v->judge), (long long)v->failing_ticks,
		       (long long)v->min_requests, cli_duration(v->inconclusive_timeout_ms, b2, sizeof b2),
		       S(v->on_inconclusive));
	printf("on failure: %s\n", S(v->on_failure));
	if (source)
		printf("--- source ---\n%s", v->source ? v->source : "");
}

static void policy_free_show(void *model)
{
	cn_policy_version_free(model);
}

static const struct cli_doc policy_doc = {
	.kind = "policy", .usage = policy_usage, .size = sizeof(struct cn_policy), .load = policy_load,
	.name = policy_name, .describe = policy_describe, .to_json = policy_json, .apply = policy_store,
	.schema = cn_policy_schema, .read_list = policy_read_list, .list_json = policy_list_json,
	.print_list = policy_print_list, .free_list = policy_free_list, .show_versions = true,
	.read_show = policy_read_show, .show_json = policy_show_json, .print_show = policy_print_show,
	.free_show = policy_free_show, .pair = policy_pair,
};

int cmd_policy(struct cli *cli, int argc, char **argv)
{
	return cli_doc_command(cli, &policy_doc, argc, argv);
}
