/* canaryctl: the command-line shell. Global options, then a subcommand from the table below. */
#include <stdio.h>
#include <string.h>

#include "canary/store.h"
#include "cli_int.h"

#ifndef CANARY_VERSION
#define CANARY_VERSION "0.1.0"
#endif

struct command {
	const char *name;
	cli_command_fn fn;
	const char *summary;
};

/* To add a subcommand: declare cmd_NAME in cli.h, write it in cli_NAME.c, add a row here. */
static const struct command commands[] = {
	{"migrate", cmd_migrate, "apply the database migrations"},
	{"gc", cmd_gc, "delete the per-tick rows of rollouts that ended long ago (the audit trail stays)"},
	{"policy", cmd_policy, "lint, apply, list and show rollout policies"},
	{"service", cmd_service, "lint, apply, list and show services (gateway route, two slots)"},
	{"rollout", cmd_rollout, "start, watch and steer rollouts"},
	{"history", cmd_history, "past and current rollouts: outcome, step, duration, approvers"},
	{"audit", cmd_audit, "a rollout's timeline; verify the tamper-evident audit chains"},
	{"report", cmd_report, "one rollout as an HTML page: weight and SLO charts, decisions, audit"},
	{"profile", cmd_profile, "lint workload profiles (rate, bursts, prompt lengths) for pre-flight load"},
	{"preflight", cmd_preflight, "drive one slot with a workload profile; results per prompt-length band"},
	{"drill", cmd_drill, "failover drills: shift to the warm secondary, judge it, shift back; abort, status, report"},
	{"sla", cmd_sla, "SLA contracts and the ledger: attainment per month, missed windows, credits"},
};

static void usage(FILE *f)
{
	fputs("usage: canaryctl [--db CONNINFO] [--output text|json] COMMAND [ARGS...]\n"
	      "       canaryctl --help | --version\n"
	      "\n"
	      "options:\n"
	      "  --db CONNINFO       PostgreSQL URL or key=value string (default: DATABASE_URL, else PG* variables)\n"
	      "  --output text|json  human text (default) or one JSON document on stdout\n"
	      "\n"
	      "commands:\n",
	      f);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fputs("\n'canaryctl COMMAND --help' shows a command's usage. Exit codes: 0 ok, 64 usage, 65 invalid input,\n"
	      "69 database unavailable, 70 internal error, 77 permission denied.\n",
	      f);
}

static int usage_error(const char *fmt, const char *arg)
{
	fputs("canaryctl: ", stderr);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	usage(stderr);
	return CN_EUSAGE;
}

int main(int argc, char **argv)
{
	struct cli cli = {.db = NULL, .output = CLI_TEXT, .store = NULL};
	const char *output = NULL;
	int i = 1, rc;

	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i], *val = NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(a, "--version") == 0) {
			printf("canaryctl %s\n", CANARY_VERSION);
			return 0;
		}
		if (strncmp(a, "--db=", 5) == 0)
			cli.db = a + 5;
		else if (strncmp(a, "--output=", 9) == 0)
			output = a + 9;
		else if (strcmp(a, "--db") == 0 || strcmp(a, "--output") == 0) {
			if (i + 1 >= argc)
				return usage_error("option '%s' needs a value", a);
			val = argv[++i];
			if (a[2] == 'd')
				cli.db = val;
			else
				output = val;
		} else {
			return usage_error("unknown option '%s' (global options come before the command)", a);
		}
	}
	if (output) {
		if (strcmp(output, "json") == 0)
			cli.output = CLI_JSON;
		else if (strcmp(output, "text") != 0)
			return usage_error("--output is 'text' or 'json', not '%s'", output);
	}
	if (i >= argc)
		return usage_error("%s", "no command given");

	const struct command *cmd = NULL;
	for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
		if (strcmp(argv[i], commands[k].name) == 0)
			cmd = &commands[k];
	if (!cmd)
		return usage_error("unknown command '%s'", argv[i]);

	rc = cmd->fn(&cli, argc - i, argv + i);
	cn_store_close(cli.store);
	if (fflush(stdout) != 0 && rc == 0) {
		fputs("canaryctl: cannot write to stdout\n", stderr);
		rc = CN_EINTERNAL;
	}
	return rc;
}
