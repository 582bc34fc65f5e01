/* canaryctl history: one row per rollout for release managers, as a table, JSON or CSV. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/parse.h"
#include "canary/rollout.h"
#include "canary/store.h"
#include "canary/store_history.h"
#include "cli_int.h"

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
#define NCSV 15
#define CELL_MAX 256

static const char *const HEADERS[NCOLS] = {"id",      "service", "candidate",  "baseline",    "policy",   "outcome",
					   "step",    "duration", "started_by", "approved_by", "started_at", "finished_at"};

/* A string cell: "" where the database has none. */
static const char *E(const char *s)
{
	return s ? s : "";
}

/* The accepted approvers, space-separated, into cell (cut at its size). */
static void approvers(const struct cn_history_row *r, char *cell, size_t size)
{
	size_t used = 0;
	cell[0] = '\0';
	for (size_t i = 0; i < r->napproved; i++) {
		int n = snprintf(cell + used, size - used, "%s%s", i ? " " : "", E(r->approved_by[i]));
		if (n < 0 || (size_t)n >= size - used)
			break;
		used += (size_t)n;
	}
}

/* One line per row whatever the data holds. */
static void flatten(char *cell)
{
	for (char *p = cell; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
}

/* One row's cells as the table shows them. */
static void cells(const struct cn_history_row *r, char out[NCOLS][CELL_MAX])
{
	long long dur = (long long)r->duration_ms;
	snprintf(out[0], CELL_MAX, "%lld", (long long)r->id);
	snprintf(out[1], CELL_MAX, "%s", E(r->service));
	snprintf(out[2], CELL_MAX, "%s", E(r->candidate));
	snprintf(out[3], CELL_MAX, "%s", E(r->baseline));
	snprintf(out[4], CELL_MAX, "%s@%d", E(r->policy), r->policy_version);
	snprintf(out[5], CELL_MAX, "%s", cn_phase_name(r->outcome));
	snprintf(out[6], CELL_MAX, "%d/%d", r->step + 1, r->steps);
	cli_duration(dur - dur % 1000, out[7], CELL_MAX);
	snprintf(out[8], CELL_MAX, "%s", E(r->started_by));
	approvers(r, out[9], CELL_MAX);
	if (!out[9][0])
		snprintf(out[9], CELL_MAX, "-");
	cli_time(r->created_us, CLI_TIME_MS, out[10], CELL_MAX);
	cli_time(r->finished_us, CLI_TIME_MS, out[11], CELL_MAX); /* "-" while active */
	for (int c = 0; c < NCOLS; c++)
		flatten(out[c]);
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

static int print_table(const struct cn_history *h)
{
	size_t n = h->n;
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
		cells(&h->rows[i], cs[i]);
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
static int print_csv(const struct cn_history *h)
{
	static const char *const cols[NCSV] = {"id",          "service",    "candidate", "baseline",   "policy",
					   "policy_version", "outcome", "step",      "steps",      "duration_ms",
					   "started_by", "approved_by", "aborted_by", "started_at", "finished_at"};
	const size_t ncols = NCSV;
	char cell[NCSV][CELL_MAX];
	for (size_t c = 0; c < ncols; c++)
		csv_field(cols[c], c == ncols - 1);
	for (size_t i = 0; i < h->n; i++) {
		const struct cn_history_row *r = &h->rows[i];
		snprintf(cell[0], CELL_MAX, "%lld", (long long)r->id);
		snprintf(cell[1], CELL_MAX, "%s", E(r->service));
		snprintf(cell[2], CELL_MAX, "%s", E(r->candidate));
		snprintf(cell[3], CELL_MAX, "%s", E(r->baseline));
		snprintf(cell[4], CELL_MAX, "%s", E(r->policy));
		snprintf(cell[5], CELL_MAX, "%d", r->policy_version);
		snprintf(cell[6], CELL_MAX, "%s", cn_phase_name(r->outcome));
		snprintf(cell[7], CELL_MAX, "%d", r->step + 1);
		snprintf(cell[8], CELL_MAX, "%d", r->steps);
		snprintf(cell[9], CELL_MAX, "%lld", (long long)r->duration_ms);
		snprintf(cell[10], CELL_MAX, "%s", E(r->started_by));
		approvers(r, cell[11], CELL_MAX);
		snprintf(cell[12], CELL_MAX, "%s", E(r->aborted_by));
		/* the store's created_at is the csv's started_at, as in the table */
		if (r->created_us == CN_TIME_NONE)
			cell[13][0] = '\0';
		else
			cli_time(r->created_us, CLI_TIME_MS, cell[13], CELL_MAX);
		if (r->finished_us == CN_TIME_NONE)
			cell[14][0] = '\0';
		else
			cli_time(r->finished_us, CLI_TIME_MS, cell[14], CELL_MAX);
		for (size_t c = 0; c < ncols; c++) {
			flatten(cell[c]);
			csv_field(cell[c], c == ncols - 1);
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
	struct cn_history *h = NULL;
	if (cn_store_history(st, &filter, &h, &err) < 0)
		return cli_error(&err);
	if (f == FMT_JSON)
		rc = cli_print_json(cli_json_history(h));
	else
		rc = f == FMT_CSV ? print_csv(h) : print_table(h);
	cn_history_free(h);
	return rc;
}
