/* canaryctl drill internals shared by its files: the outcome's exit code and text, the synthetic load that
 * --profile runs beside a drill (cli_drill_load.c), the HTML report (cli_drill_report.c), the JSON document. */
#ifndef CANARY_CLI_DRILL_INT_H
#define CANARY_CLI_DRILL_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "canary/drill.h"
#include "canary/err.h"

struct cli;
struct cn_store;
struct cn_drill_row;

/* The exit code of a drill that ended in phase (0 passed, 1 cut short, 2 aborted, 70 failed). */
int cli_drill_exit(enum cn_drill_phase phase);

/* `drill status --output json` and the end of `drill failover`/`wait` (exit_code < 0: none). A new reference. */
json_t *cli_json_drill(const struct cn_drill_row *d, int exit_code);

/* `drill report ID --html FILE`. */
int cli_drill_report(struct cli *cli, int argc, char **argv);

/* Synthetic load beside a drill: the profile is read before the drill starts (a bad file is 65 and nothing is
 * started); the load runs on a thread of its own against url for at most max_ms; finish prints what it did (to f,
 * unless NULL) and frees it (accepts NULL; a load still running is left to end with the process). */
struct cli_drill_load;
int cli_drill_load_prepare(const char *profile_path, struct cli_drill_load **out, struct cn_err *err);
int cli_drill_load_start(struct cli_drill_load *l, const char *url, int64_t max_ms, struct cn_err *err);
void cli_drill_load_finish(struct cli_drill_load *l, FILE *f);

#endif
