/* canaryctl gc: delete the per-tick rows of rollouts that ended long ago (the audit trail stays). */
#include <stdio.h>
#include <stdlib.h>

#include "canary/parse.h"
#include "canary/store_gc.h"
#include "cli_int.h"

#define GC_BATCH 1000 /* rollouts per transaction, so a first run over years of history holds no long locks */

static const char gc_usage[] =
	"usage: canaryctl gc --older-than DURATION\n"
	"  deletes the measurements, decisions and SLO verdicts of rollouts that ended more than DURATION ago (at\n"
	"  least 1 day, e.g. 90d); the audit trail is never deleted and still verifies (canaryctl audit verify)\n";

int cmd_gc(struct cli *cli, int argc, char **argv)
{
	const char *older = NULL;
	struct cli_opt opts[] = {{"older-than", &older, NULL}, {NULL, NULL, NULL}};
	struct cn_store *store;
	struct cn_err err = {0};
	struct cn_gc_result total = {0};
	int64_t ms = 0;
	int npos, rc = cli_parse(argc, argv, opts, NULL, 0, &npos, gc_usage);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (!older)
		return cli_usage_error(gc_usage, "gc needs --older-than DURATION, e.g. 90d");
	if (cn_parse_duration_ms(older, 0, &ms, &err) < 0)
		return cli_usage_error(gc_usage, "--older-than: %s", err.msg);
	if ((rc = cli_store(cli, &store)) != 0)
		return rc;
	for (int round = 0; round < 1000000; round++) {
		struct cn_gc_result r = {0};
		if (cn_store_gc(store, ms, GC_BATCH, &r, &err) < 0)
			return cli_error(&err);
		total.rollouts += r.rollouts;
		total.measurements += r.measurements;
		total.decisions += r.decisions;
		total.verdicts += r.verdicts;
		if (r.rollouts < GC_BATCH)
			break;
	}
	if (cli->output == CLI_JSON)
		return cli_print_json(cli_json_gc(older, &total));
	printf("deleted %lld measurements, %lld decisions and %lld verdicts of %d rollouts that ended more than %s "
	       "ago; the audit trail is kept\n", (long long)total.measurements, (long long)total.decisions,
	       (long long)total.verdicts, total.rollouts, older);
	return 0;
}
