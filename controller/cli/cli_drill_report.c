/* canaryctl drill report ID --html FILE: one failover drill as a self-contained HTML page (canary/report_drill.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/report_drill.h"
#include "canary/store.h"
#include "canary/store_drills.h"
#include "cli_drill_int.h"
#include "cli_int.h"

static const char USAGE[] =
	"usage: canaryctl drill report ID --html FILE   write drill ID's report to FILE ('-': stdout): the outcome,\n"
	"                                              the timings, each window's numbers, the verdicts, charts of\n"
	"                                              the share and of both slots per tick, and the audit events\n"
	"exit codes: 0 written, 64 usage, 65 unknown drill or FILE not writable, 69 database unavailable\n";

int cli_drill_report(struct cli *cli, int argc, char **argv)
{
	const char *path = NULL;
	const struct cli_opt opts[] = {{"html", &path, NULL}, {NULL, NULL, NULL}};
	char *pos[1];
	int npos = 0, rc = cli_parse(argc, argv, opts, pos, 1, &npos, USAGE);
	int64_t id;
	struct cn_err err = {0};
	struct cn_store *st;
	struct cn_drill_row *d = NULL;
	struct cn_drill_tick_row *ticks = NULL;
	struct cn_drill_event *events = NULL;
	char *html = NULL;
	size_t len = 0;
	if (rc)
		return rc == 1 ? 0 : rc;
	if (npos < 1 || !path)
		return cli_usage_error(USAGE, "drill report needs a drill ID and --html FILE");
	if ((rc = cli_parse_id(pos[0], &id, USAGE)) || (rc = cli_store(cli, &st)))
		return rc;
	struct cn_drill_report r = {0};
	if (cn_store_drill_get(st, id, &d, &err) < 0 || cn_store_drill_ticks(st, id, &ticks, &r.nticks, &err) < 0 ||
	    cn_store_drill_events(st, id, &events, &r.nevents, &err) < 0) {
		rc = cli_error(&err);
		goto out;
	}
	r.drill = d;
	r.ticks = ticks;
	r.events = events;
	if (!(html = cn_report_drill_html(&r, 0, &len, &err))) {
		rc = cli_error(&err);
		goto out;
	}
	FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
	if (!f || fwrite(html, 1, len, f) != len || (f != stdout && fclose(f) != 0)) {
		cn_fail(&err, CN_EINPUT, "cannot write the report to '%.200s'; choose a writable path", path);
		rc = cli_error(&err);
		goto out;
	}
	if (cli->output == CLI_JSON)
		rc = cli_print_json(json_pack("{s:I, s:s, s:I}", "drill", (json_int_t)id, "path", path, "bytes",
					      (json_int_t)len));
	else if (f != stdout)
		printf("drill %lld: report written to %s (%zu bytes)\n", (long long)id, path, len);
out:
	free(html);
	free(events);
	free(ticks);
	cn_drill_row_free(d);
	return rc;
}
