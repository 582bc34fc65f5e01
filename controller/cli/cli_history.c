/* canaryctl history: one row per rollout for release managers, as a table, JSON or CSV. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/parse.h"
#include "canary/rollout.h"
#include "canary/store.h"
#include "canary/store_history.h"
#include "cli.h"

static const char USAGE[] =
	"usage: canaryctl history [--service S] [--since D] [--state PHASE] [--limit N] [--output table|json|csv]\n"
	"  --service S   only rollouts of service S\n"
	"  --since D     only rollouts started within D (30d, 12h, 1h30m)\n"
	"  --state PHASE only rollouts in PHASE: promoted, rolled_back, aborted, failed, pending, progressing,\n"
	"                paused, awaiting_approval\n"
	"  --limit N     at most N rows, newest first (default: all)\n"
	"  --output F    table (default; also 'text'), json (also the global --output json) or csv.\n"
	"                The table and csv count steps from 1 (0: never started); json's step counts from 0, as\n"
	"                'rollout status' does (-1: never started).\n";

enum fmt { FMT_TABLE, FMT_JSON, FMT_CSV };

#define NCOLS 12
#define CELL_MAX 256

static const char *const HEADERS[NCOLS] = {"id",      "service", "candidate",  "baseline",    "policy",   "outcome",
					   "step",    "duration", "started_by", "approved_by", "started_at", "finished_at"};

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

/* One row's cells as the table shows them. */
static void cells(const json_t *r, char out[NCOLS][CELL_MAX])
{
	long long step = (long long)json_integer_value(json_object_get(r, "step"));
	long long steps = (long long)json_integer_value(json_object_get(r, "steps"));
	long long dur = (long long)json_integer_value(json_object_get(r, "duration_ms"));
	snprintf(out[0], CELL_MAX, "%lld", (long long)json_integer_value(json_object_get(r, "id")));
	snprintf(out[1], CELL_MAX, "%s", jstr(r, "service"));
	snprintf(out[2], CELL_MAX, "%s", jstr(r, "candidate"));
	snprintf(out[3], CELL_MAX, "%s", jstr(r, "baseline"));
	snprintf(out[4], CELL_MAX, "%s@%lld", jstr(r, "policy"),
		 (long long)json_integer_value(json_object_get(r, "policy_version")));
	snprintf(out[5], CELL_MAX, "%s", jstr(r, "outcome"));
	snprintf(out[6], CELL_MAX, "%lld/%lld", step + 1, steps);
	cli_duration(dur - dur % 1000, out[7], CELL_MAX);
	snprintf(out[8], CELL_MAX, "%s", jstr(r, "started_by"));
	out[9][0] = '\0';
	size_t i, used = 0;
	const json_t *a;
	json_array_foreach(json_object_get(r, "approved_by"), i, a)
	{
		int n = snprintf(out[9] + used, CELL_MAX - used, "%s%s", i ? " " : "", json_string_value(a));
		if (n < 0 || (size_t)n >= CELL_MAX - used)
			break;
		used += (size_t)n;
	}
	if (!out[9][0])
		snprintf(out[9], CELL_MAX, "-");
	snprintf(out[10], CELL_MAX, "%s", jstr(r, "created_at"));
	snprintf(out[11], CELL_MAX, "%s", json_is_string(json_object_get(r, "finished_at")) ? jstr(r, "finished_at")
											     : "-");
	/* One line per row whatever the data holds. */
	for (int c = 0; c < NCOLS; c++)
		for (char *p = out[c]; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = ' ';
}

/* RFC 4180: quote a field that holds a comma, quote, or leading/trailing space; double the quotes. */
static void csv_field(const char *s, bool last)
{
	if (strpbrk(s, ",\"") || (s[0] == ' ') || (s[0] && s[strlen(s) - 1] == ' ')) {
		putchar('"');
		for (; *s; s++) {
			if (*s == '"')
				putchar('"');
			putchar(*s);
		}
		putchar('"');
	} else {
		fputs(s, stdout);
	}
	fputs(last ? "\r\n" : ",", stdout);
}

static int print_table(const json_t *rows)
{
	size_t n = json_array_size(rows);
	char(*cs)[NCOLS][CELL_MAX] = calloc(n ? n : 1, sizeof *cs);
	int width[NCOLS];
	if (!cs) {
		fputs("canaryctl: out of memory formatting the history\n", stderr);
		return CN_EINTERNAL;
	}
	if (n == 0) {
		puts("no rollouts match");
		free(cs);
		return 0;
	}
	for (int c = 0; c < NCOLS; c++)
		width[c] = (int)strlen(HEADERS[c]);
	for (size_t i = 0; i < n; i++) {
		cells(json_array_get(rows, i), cs[i]);
		for (int c = 0; c < NCOLS; c++)
			if ((int)strlen(cs[i][c]) > width[c])
				width[c] = (int)strlen(cs[i][c]);
	}
	for (int c = 0; c < NCOLS; c++)
		printf("%-*s%s", c == NCOLS - 1 ? 0 : width[c], HEADERS[c], c == NCOLS - 1 ? "\n" : "  ");
	for (size_t i = 0; i < n; i++)
		for (int c = 0; c < NCOLS; c++)
			printf("%-*s%s", c == NCOLS - 1 ? 0 : width[c], cs[i][c], c == NCOLS - 1 ? "\n" : "  ");
	free(cs);
	return 0;
}

/* CSV for spreadsheets: plain numbers (step counted from 1, duration in ms), empty cells for nothing. */
static int print_csv(const json_t *rows)
{
	static const char *const cols[] = {"id",          "service",    "candidate", "baseline",   "policy",
					   "policy_version", "outcome", "step",      "steps",      "duration_ms",
					   "started_by", "approved_by", "aborted_by", "started_at", "finished_at"};
	const size_t ncols = sizeof cols / sizeof cols[0];
	char cell[CELL_MAX];
	for (size_t c = 0; c < ncols; c++)
		csv_field(cols[c], c == ncols - 1);
	size_t i;
	const json_t *r;
	json_array_foreach(rows, i, r)
	{
		for (size_t c = 0; c < ncols; c++) {
			/* the store's created_at is the csv's started_at, as in the table */
			const json_t *v = json_object_get(r, strcmp(cols[c], "started_at") == 0 ? "created_at" : cols[c]);
			cell[0] = '\0';
			if (strcmp(cols[c], "step") == 0) {
				snprintf(cell, sizeof cell, "%lld", (long long)json_integer_value(v) + 1);
			} else if (json_is_array(v)) {
				size_t k, used = 0;
				const json_t *a;
				json_array_foreach(v, k, a)
				{
					int w = snprintf(cell + used, sizeof cell - used, "%s%s", k ? " " : "",
							 json_string_value(a) ? json_string_value(a) : "");
					if (w < 0 || (size_t)w >= sizeof cell - used)
						break;
					used += (size_t)w;
				}
			} else if (json_is_integer(v)) {
				snprintf(cell, sizeof cell, "%lld", (long long)json_integer_value(v));
			} else if (json_is_string(v)) {
				snprintf(cell, sizeof cell, "%s", json_string_value(v));
			}
			for (char *p = cell; *p; p++)
				if ((unsigned char)*p < 0x20 || *p == 0x7f)
					*p = ' ';
			csv_field(cell, c == ncols - 1);
		}
	}
	return 0;
}

int cmd_history(struct cli *cli, int argc, char **argv)
{
	const char *service = NULL, *since = NULL, *state = NULL, *output = NULL, *limit = NULL;
	const struct cli_opt opts[] = {
		{"service", &service, NULL}, {"since", &since, NULL},   {"state", &state, NULL},
		{"output", &output, NULL},   {"limit", &limit, NULL},   {NULL, NULL, NULL},
	};
	struct cn_history_filter filter = {0};
	struct cn_err err = {0};
	enum fmt f = cli->output == CLI_JSON ? FMT_JSON : FMT_TABLE;
	char *pos[1];
	int npos = 0, rc;
	if ((rc = cli_parse(argc, argv, opts, pos, 0, &npos, USAGE)) != 0)
		return rc == 1 ? 0 : rc;
	/* Bad values: one line, no usage, so a pipeline's log shows just what is wrong. */
	if (output) {
		if (strcmp(output, "table") == 0 || strcmp(output, "text") == 0)
			f = FMT_TABLE;
		else if (strcmp(output, "json") == 0)
			f = FMT_JSON;
		else if (strcmp(output, "csv") == 0)
			f = FMT_CSV;
		else
			return cli_usage_error(NULL, "history --output is table, json or csv, not '%s'", output);
	}
	if (since && cn_parse_duration_ms(since, 0, &filter.since_ms, &err) < 0)
		return cli_usage_error(NULL, "history --since '%s' is not a duration such as 30d, 12h or 1h30m: %s",
				       since, err.msg);
	enum cn_phase ph;
	if (state && cn_phase_from_name(state, &ph) < 0)
		return cli_usage_error(NULL, "history --state '%s' is not a rollout state; use one of promoted, "
				       "rolled_back, aborted, failed, pending, progressing, paused, awaiting_approval",
				       state);
	if (limit) {
		int n;
		if ((rc = cli_parse_int("limit", limit, 1, &n, NULL)) != 0)
			return rc;
		filter.limit = n;
	}
	filter.service = service;
	filter.phase = state;
	struct cn_store *st;
	if ((rc = cli_store(cli, &st)) != 0)
		return rc;
	json_t *rows = NULL;
	if (cn_store_history(st, &filter, &rows, &err) < 0)
		return cli_error(&err);
	if (f == FMT_JSON)
		return cli_print_json(rows);
	rc = f == FMT_CSV ? print_csv(rows) : print_table(rows);
	json_decref(rows);
	return rc;
}
