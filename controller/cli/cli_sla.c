/* canaryctl sla: SLA contracts and the ledger canaryd records. `lint` and `keys` need no database; `report` judges
 * one service-month against a contract (text, json, csv, or an HTML page); `gc` deletes old minutes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/sla_contract.h"
#include "canary/report_sla.h"
#include "canary/service.h"
#include "canary/sla.h"
#include "canary/store.h"
#include "canary/store_sla.h"
#include "cli_int.h"

static const char USAGE[] =
	"usage: canaryctl sla lint FILE...                 validate SLA contracts (no database)\n"
	"       canaryctl sla keys                         the contract file reference (Markdown)\n"
	"       canaryctl sla report --service S --month YYYY-MM [--contract FILE]\n"
	"                            [--output text|json|csv] [--html FILE]\n"
	"                                                  attainment per objective, the windows that missed, the\n"
	"                                                  credit owed; months are UTC\n"
	"       canaryctl sla gc --before YYYY-MM [--reason R]\n"
	"                                                  delete every service's ledger minutes before that month\n";

static int lint(struct cli *cli, int argc, char **argv)
{
	char *pos[64];
	int npos = 0, rc, worst = 0;
	if ((rc = cli_parse(argc, argv, NULL, pos, 64, &npos, USAGE)) != 0)
		return rc == 1 ? 0 : rc;
	if (npos == 0)
		return cli_usage_error(USAGE, "sla lint needs at least one FILE");
	json_t *out = json_array();
	for (int i = 0; i < npos; i++) {
		struct cn_sla_contract c;
		struct cn_err err = {0};
		if (cn_sla_contract_load_file(pos[i], &c, NULL, &err) < 0) {
			int code = cli_error(&err);
			worst = worst ? worst : code;
			json_array_append_new(out, cli_json_lint(pos[i], err.msg, NULL, NULL));
			continue;
		}
		if (cli->output == CLI_TEXT)
			printf("%s: ok (contract %s, %d objective%s, %d credit row%s)\n", pos[i], c.name, c.nobjectives,
			       c.nobjectives == 1 ? "" : "s", c.ncredits, c.ncredits == 1 ? "" : "s");
		json_array_append_new(out, cli_json_lint(pos[i], NULL, c.name, NULL));
	}
	if (cli->output == CLI_JSON)
		return (rc = cli_print_json(out)) ? rc : worst;
	json_decref(out);
	return worst;
}

static const char *objective_text(const struct cn_sla_objective *o, char *out, size_t size)
{
	if (o->metric == CN_SLA_AVAILABILITY)
		snprintf(out, size, "availability >= %g%% per %s", o->min * 100, o->window);
	else
		snprintf(out, size, "%s p%g <= %lldms per %s", cn_sla_metric_name(o->metric), o->quantile * 100,
			 (long long)o->max_ms, o->window);
	return out;
}

static const char *pct(double f, char *out, size_t size)
{
	if (isfinite(f))
		snprintf(out, size, "%.4f%%", f * 100);
	else
		snprintf(out, size, "-");
	return out;
}

static void print_text(const char *service, const char *month, const struct cn_sla_contract *c,
		       const struct cn_sla_result *r)
{
	char a[64], b[64], d[160];
	bool over = r->now_us >= r->month_end_us;
	printf("SLA %s, %s (UTC, %d days%s), contract %s\n", service, month, r->days, over ? "" : ", month not over",
	       c->name);
	printf("minutes: %lld elapsed, %lld with data, %lld without (no_data: %s)\n", (long long)r->minutes_elapsed,
	       (long long)r->minutes_data, (long long)r->minutes_nodata,
	       c->no_data == CN_SLA_NODATA_MISS ? "miss" : "exclude");
	printf("%-20s %-40s %-8s %-11s %-34s %-7s %s\n", "objective", "promise", "target", "attainment",
	       "windows met/missed/no data/pending", "status", "credit");
	for (int k = 0; k < r->nobjectives; k++) {
		const struct cn_sla_objective_result *o = &r->objectives[k];
		char w[64];
		snprintf(w, sizeof w, "%zu/%zu/%zu/%zu", o->met, o->missed, o->nodata, o->pending);
		printf("%-20s %-40s %-8s %-11s %-34s %-7s %g%%\n", o->obj->name, objective_text(o->obj, d, sizeof d),
		       o->obj->window_ms ? pct(o->obj->target, b, sizeof b)
					 : pct(o->obj->metric == CN_SLA_AVAILABILITY ? o->obj->min : o->obj->quantile, b,
					       sizeof b),
		       pct(o->attainment, a, sizeof a), w, o->ok ? "met" : "not met", o->credit * 100);
	}
	printf("credit owed%s: %g%% of %.2f %s = %.2f %s", over ? "" : " so far", r->credit * 100, c->price,
	       c->currency, r->credit_amount, c->currency);
	if (r->credit_from >= 0)
		printf(" (objective '%s')", r->objectives[r->credit_from].obj->name);
	putchar('\n');
	for (int k = 0; k < r->nobjectives; k++) {
		const struct cn_sla_objective_result *o = &r->objectives[k];
		if (o->missed + o->nodata == 0)
			continue;
		printf("\n%s: windows that missed%s\n", o->obj->name, o->nodata ? " or had no data" : "");
		for (size_t i = 0; i < o->nwindows; i++) {
			const struct cn_sla_window *w = &o->windows[i];
			if (w->state != CN_SLA_MISSED && w->state != CN_SLA_NODATA)
				continue;
			char t0[48], t1[48], v[32];
			cli_time(w->start_us, CLI_TIME_S, t0, sizeof t0);
			if (w->state == CN_SLA_NODATA) {
				/* a run of windows without data is one line */
				size_t j = i;
				int minutes = 0;
				while (j < o->nwindows && o->windows[j].state == CN_SLA_NODATA)
					minutes += o->windows[j++].nodata_minutes;
				cli_time(o->windows[j - 1].end_us, CLI_TIME_S, t1, sizeof t1);
				if (j - i == 1)
					printf("  %s .. %s  no data (%d minute%s without numbers)\n", t0, t1, minutes,
					       minutes == 1 ? "" : "s");
				else
					printf("  %s .. %s  no data (%zu windows, %d minutes without numbers)\n", t0, t1,
					       j - i, minutes);
				i = j - 1;
				continue;
			}
			cli_time(w->end_us, CLI_TIME_S, t1, sizeof t1);
			printf("  %s .. %s  %s %s, %.0f %s, %.0f %s\n", t0, t1,
			       o->obj->metric == CN_SLA_AVAILABILITY ? "availability" : "value",
			       cn_sla_value_text(o->obj, w->value, "-", v, sizeof v), w->total,
			       o->obj->metric == CN_SLA_AVAILABILITY ? "requests" : "observations", w->bad,
			       o->obj->metric == CN_SLA_AVAILABILITY ? "failed" : "above the limit");
		}
	}
}

/* One row per objective, for finance: plain numbers, fractions as percentages. */
static void print_csv(const char *service, const char *month, const struct cn_sla_contract *c,
		      const struct cn_sla_result *r)
{
	fputs("service,month,contract,objective,metric,window,target_pct,attainment_pct,windows,met,missed,no_data,"
	      "pending,ok,credit_pct,credit_amount,currency\r\n", stdout);
	for (int k = 0; k < r->nobjectives; k++) {
		const struct cn_sla_objective_result *o = &r->objectives[k];
		double target = o->obj->window_ms ? o->obj->target
			      : o->obj->metric == CN_SLA_AVAILABILITY ? o->obj->min : o->obj->quantile;
		char att[32] = "";
		if (isfinite(o->attainment))
			snprintf(att, sizeof att, "%.6f", o->attainment * 100);
		printf("%s,%s,%s,%s,%s,%s,%.6g,%s,%zu,%zu,%zu,%zu,%zu,%s,%.6g,%.2f,%s\r\n", service, month, c->name,
		       o->obj->name, cn_sla_metric_name(o->obj->metric), o->obj->window, target * 100, att, o->nwindows,
		       o->met, o->missed, o->nodata, o->pending, o->ok ? "true" : "false", o->credit * 100,
		       o->credit * c->price, c->currency);
	}
}

static int write_html(const char *path, const struct cn_sla_page *page)
{
	struct cn_err err = {0};
	size_t len = 0;
	char *html = cn_report_sla_html(page, 0, &len, &err);
	if (!html)
		return cli_error(&err);
	FILE *f = fopen(path, "w");
	int rc = 0;
	if (!f || fwrite(html, 1, len, f) != len) {
		fprintf(stderr, "canaryctl: cannot write '%s'; check the directory exists and is writable\n", path);
		rc = CN_EINPUT;
	}
	if (f && fclose(f) != 0 && rc == 0) {
		fprintf(stderr, "canaryctl: cannot write '%s'\n", path);
		rc = CN_EINPUT;
	}
	free(html);
	return rc;
}

/* The service's latest stored version, parsed: a new struct the caller frees, or NULL with err. */
static struct cn_service *stored_service(struct cn_store *st, const char *name, struct cn_err *err)
{
	struct cn_service_list *l = NULL;
	struct cn_service *sv = calloc(1, sizeof *sv);
	if (!sv) {
		cn_fail(err, CN_EINTERNAL, "out of memory");
		goto out;
	}
	if (cn_store_service_show(st, name, &l, err) < 0)
		goto fail;
	const char *src = l->n ? l->items[0].source : NULL;
	if (!src) {
		cn_fail(err, CN_EINPUT, "service '%s' has no stored version", name);
		goto fail;
	}
	if (cn_service_parse(src, strlen(src), "stored service", sv, err) < 0)
		goto fail;
	goto out;
fail:
	free(sv);
	sv = NULL;
out:
	cn_service_list_free(l);
	return sv;
}

static int report(struct cli *cli, int argc, char **argv)
{
	const char *service = NULL, *month = NULL, *file = NULL, *output = NULL, *html = NULL;
	const struct cli_opt opts[] = {{"service", &service, NULL}, {"month", &month, NULL}, {"contract", &file, NULL},
				       {"output", &output, NULL},   {"html", &html, NULL},   {NULL, NULL, NULL}};
	char *pos[1];
	int npos = 0, rc, days;
	struct cn_err err = {0};
	int64_t start, end;
	enum { T, J, C } fmt = cli->output == CLI_JSON ? J : T;
	if ((rc = cli_parse(argc, argv, opts, pos, 0, &npos, USAGE)) != 0)
		return rc == 1 ? 0 : rc;
	if (!service || !month)
		return cli_usage_error(USAGE, "sla report needs --service and --month (and --contract, unless the service "
					      "file has an sla: section)");
	if (output) {
		if (strcmp(output, "text") == 0)
			fmt = T;
		else if (strcmp(output, "json") == 0)
			fmt = J;
		else if (strcmp(output, "csv") == 0)
			fmt = C;
		else
			return cli_usage_error(NULL, "sla report --output is text, json or csv, not '%s'", output);
	}
	if (cn_sla_month(month, &start, &end, &days, &err) < 0)
		return cli_usage_error(NULL, "sla report --month: %s", err.msg);
	struct cn_sla_contract *c = calloc(1, sizeof *c);
	struct cn_sla_data *d = NULL;
	struct cn_sla_result *r = NULL;
	struct cn_service *sv = NULL;
	struct cn_store *st;
	if (!c) {
		fputs("canaryctl: out of memory\n", stderr);
		return CN_EINTERNAL;
	}
	if (file && cn_sla_contract_load_file(file, c, NULL, &err) < 0) {
		rc = cli_error(&err);
		goto out;
	}
	if (file && c->service[0] && strcmp(c->service, service) != 0) {
		cn_fail(&err, CN_EINPUT, "%s: contract '%s' covers service '%s', not '%s'", c->service_at, c->name,
			c->service, service);
		rc = cli_error(&err);
		goto out;
	}
	if ((rc = cli_store(cli, &st)) != 0)
		goto out;
	if (!(sv = stored_service(st, service, &err))) {
		rc = cli_error(&err);
		goto out;
	}
	/* without --contract: the contract canaryd judges the service's windows against (its file's sla:) */
	if (!file && sv->sla.nobjectives == 0) {
		cn_fail(&err, CN_EINPUT, "service '%s' has no sla: section; give the contract with --contract FILE",
			service);
		rc = cli_error(&err);
		goto out;
	}
	if (!file)
		*c = sv->sla;
	if (cn_sla_contract_check_service(c, sv, &err) < 0 || cn_store_sla_read(st, service, start, end, &d, &err) < 0 ||
	    cn_sla_evaluate(c, &d->ledger, start, end, d->now_us, &r, &err) < 0) {
		rc = cli_error(&err);
		goto out;
	}
	if (html) {
		struct cn_sla_page page = {service, month, file ? file : "the service's sla: section", c, r};
		if ((rc = write_html(html, &page)) != 0)
			goto out;
	}
	if (fmt == J)
		rc = cli_print_json(cli_json_sla(service, month, c, r));
	else if (fmt == C)
		print_csv(service, month, c, r);
	else
		print_text(service, month, c, r);
	if (html && fmt == T)
		printf("\nwrote %s\n", html);
out:
	cn_sla_result_free(r);
	cn_sla_data_free(d);
	free(sv);
	free(c);
	return rc;
}

static int gc(struct cli *cli, int argc, char **argv)
{
	const char *before = NULL, *reason = NULL;
	const struct cli_opt opts[] = {{"before", &before, NULL}, {"reason", &reason, NULL}, {NULL, NULL, NULL}};
	char *pos[1];
	int npos = 0, rc, days;
	int64_t start, end, rows = 0;
	struct cn_err err = {0};
	struct cn_store *st;
	if ((rc = cli_parse(argc, argv, opts, pos, 0, &npos, USAGE)) != 0)
		return rc == 1 ? 0 : rc;
	if (!before)
		return cli_usage_error(USAGE, "sla gc needs --before YYYY-MM");
	if (cn_sla_month(before, &start, &end, &days, &err) < 0)
		return cli_usage_error(NULL, "sla gc --before: %s", err.msg);
	if ((rc = cli_store(cli, &st)) != 0)
		return rc;
	if (cn_store_sla_gc(st, start, reason, &rows, &err) < 0)
		return cli_error(&err);
	if (cli->output == CLI_JSON)
		return cli_print_json(json_pack("{s:s, s:I}", "before", before, "deleted", (json_int_t)rows));
	printf("deleted %lld ledger minutes before %s\n", (long long)rows, before);
	return 0;
}

int cmd_sla(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error(USAGE, "sla needs a subcommand");
	const char *sub = argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		fputs(USAGE, stdout);
		return 0;
	}
	if (strcmp(sub, "lint") == 0)
		return lint(cli, argc - 1, argv + 1);
	if (strcmp(sub, "keys") == 0) {
		if (argc > 2)
			return cli_usage_error(USAGE, "sla keys takes no arguments");
		return cli_print_reference(cn_sla_contract_schema());
	}
	if (strcmp(sub, "report") == 0)
		return report(cli, argc - 1, argv + 1);
	if (strcmp(sub, "gc") == 0)
		return gc(cli, argc - 1, argv + 1);
	return cli_usage_error(USAGE, "unknown sla subcommand '%s'", sub);
}
