/* canaryctl report: one rollout as a self-contained HTML page for release managers (charts of the weight and of
 * every SLO over time, the decision points, the audit table). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "canary/report.h"
#include "canary/report_html.h"
#include "canary/store.h"
#include "canary/store_report.h"
#include "cli_int.h"

static const char USAGE[] =
	"usage: canaryctl report ID --html FILE   write rollout ID's report to FILE ('-': stdout): one HTML page with\n"
	"                                        no external assets and no script, charts of the candidate weight and\n"
	"                                        of every SLO (candidate vs baseline vs objective) over time, the\n"
	"                                        decision points, and the audit table\n"
	"exit codes: 0 written, 64 usage, 65 unknown rollout or FILE not writable, 69 database unavailable,\n"
	"77 permission denied\n";

/* Writes len bytes of html to path through a temporary file and a rename, so a failure leaves no half page.
 * Returns 0, or -CN_EINPUT with err set. */
static int write_file(const char *path, const char *html, size_t len, struct cn_err *err)
{
	char tmp[4096];
	FILE *f = NULL;
	int rc = 0, n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof tmp)
		return cn_fail(err, CN_EINPUT, "cannot write the report to '%.200s': the path is too long", path);
	if (!(f = fopen(tmp, "wx"))) {
		rc = cn_fail(err, CN_EINPUT, "cannot write the report to '%.200s': %s; choose a writable path", path,
			     strerror(errno));
		goto out;
	}
	if (fwrite(html, 1, len, f) != len || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		rc = cn_fail(err, CN_EINPUT, "cannot write the report to '%.200s': %s; choose a writable path", path,
			     strerror(errno));
		goto out;
	}
	int cr = fclose(f);
	f = NULL;
	if (cr != 0 || rename(tmp, path) != 0) {
		rc = cn_fail(err, CN_EINPUT, "cannot write the report to '%.200s': %s; choose a writable path", path,
			     strerror(errno));
		goto out;
	}
	return 0;
out:
	if (f)
		fclose(f);
	unlink(tmp);
	return rc;
}

int cmd_report(struct cli *cli, int argc, char **argv)
{
	const char *html_path = NULL;
	const struct cli_opt opts[] = {{"html", &html_path, NULL}, {NULL, NULL, NULL}};
	char *pos[1];
	int npos = 0, rc;
	struct cn_store *st;
	struct cn_err err = {0};
	struct cn_report_rows *rows = NULL;
	struct cn_report *r = NULL;
	char *html = NULL;
	size_t len = 0;

	if ((rc = cli_parse(argc, argv, opts, pos, 1, &npos, USAGE)) != 0)
		return rc == 1 ? 0 : rc;
	if (npos == 0)
		return cli_usage_error(USAGE, "report needs a rollout ID");
	int64_t id = 0;
	if ((rc = cli_parse_id(pos[0], &id, USAGE)) != 0)
		return rc;
	if (!html_path || !html_path[0])
		return cli_usage_error(USAGE, "report needs --html FILE (where to write the page; '-' for stdout)");

	if ((rc = cli_store(cli, &st)) != 0)
		return rc;
	if (cn_store_report(st, id, &rows, &err) < 0 || !(r = cn_report_build(rows, &err)) ||
	    !(html = cn_report_html(r, 0, &len, &err))) {
		rc = cli_error(&err);
		goto out;
	}
	if (strcmp(html_path, "-") == 0) {
		if (fwrite(html, 1, len, stdout) != len) {
			fputs("canaryctl: cannot write the report to stdout\n", stderr);
			rc = CN_EINTERNAL;
		}
		goto out;
	}
	if (write_file(html_path, html, len, &err) < 0) {
		rc = cli_error(&err);
		goto out;
	}
	if (cli->output == CLI_JSON) {
		rc = cli_print_json(cli_json_report(r, id, html_path, len));
		goto out;
	}
	printf("wrote the report of rollout %" PRId64 " (%s %s, %s) to %s: %zu KiB, %zu SLO charts, %zu decision "
	       "points, %zu audit events\n", id, r->rollout.service ? r->rollout.service : "",
	       r->rollout.candidate ? r->rollout.candidate : "", r->rollout.phase ? r->rollout.phase : "", html_path,
	       (len + 1023) / 1024, r->nslos, r->nmarkers, r->nevents);
out:
	free(html);
	cn_report_free(r);
	cn_report_rows_free(rows);
	return rc;
}
