/* canaryctl internals: the shared state of one invocation, the subcommands, and helpers they share. */
#ifndef CANARY_CLI_H
#define CANARY_CLI_H

#include <stdbool.h>

#include <jansson.h>

#include "canary/err.h"

struct cn_store;

enum cli_output { CLI_TEXT, CLI_JSON };

struct cli {
	const char *db;         /* --db, or NULL: DATABASE_URL, else PG* variables */
	enum cli_output output; /* --output */
	struct cn_store *store; /* connected on first use by cli_store(); closed by main */
};

/* A subcommand: argv[0] is its name; returns the process exit code. */
typedef int (*cli_command_fn)(struct cli *cli, int argc, char **argv);

int cmd_migrate(struct cli *cli, int argc, char **argv);
int cmd_policy(struct cli *cli, int argc, char **argv);
int cmd_service(struct cli *cli, int argc, char **argv);
int cmd_rollout(struct cli *cli, int argc, char **argv);
int cmd_audit(struct cli *cli, int argc, char **argv);   /* cli_audit.c */
int cmd_history(struct cli *cli, int argc, char **argv); /* cli_history.c */
int cmd_report(struct cli *cli, int argc, char **argv);  /* cli_report.c */

/* One option of a subcommand: "--name VALUE" / "--name=VALUE" sets *value; a flag sets *flag. */
struct cli_opt {
	const char *name; /* without the dashes */
	const char **value;
	bool *flag;
};

/* Parses argv[1..argc) into opts and up to maxpos positionals (pos[], *npos). Options and positionals may mix;
 * "--" ends options. Returns 0; 1 when --help was given (usage printed on stdout: exit 0); or 64 after printing
 * the error and usage on stderr. */
int cli_parse(int argc, char **argv, const struct cli_opt *opts, char **pos, int maxpos, int *npos,
	      const char *usage);

/* Prints "canaryctl: MESSAGE" and then usage on stderr; returns 64. */
int cli_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "canaryctl: err->msg" on stderr; returns the exit code (err->code, or 70 when it is not one of ours). */
int cli_error(const struct cn_err *err);

/* Connects on first use (cli->db); on failure prints the error and returns its exit code (69), else 0. */
int cli_store(struct cli *cli, struct cn_store **out);

/* Prints doc as one JSON document on stdout and decrefs it (accepts NULL: out of memory). Returns 0 or 70. */
int cli_print_json(json_t *doc);

/* Parses a positive int option value ("--version 3"); returns 0, or 64 after printing the error and usage. */
int cli_parse_int(const char *opt, const char *s, int min, int *out, const char *usage);

/* Formats a duration in ms for people ("5m", "800ms") into buf; returns buf. */
const char *cli_duration(long long ms, char *buf, size_t len);

struct cn_schema;

/* A kind of versioned YAML document (policy, service): how to load, describe, encode and store one. */
struct cli_doc {
	const char *kind;   /* "policy" */
	const char *usage;
	size_t size;        /* sizeof the parsed object */
	int (*load)(const char *path, void *obj, char **source, struct cn_err *err);
	const char *(*name)(const void *obj);
	void (*describe)(const void *obj, char *buf, size_t size); /* one line for lint */
	json_t *(*to_json)(const void *obj);
	int (*apply)(struct cn_store *st, const void *obj, const char *source, int *version, bool *created,
		     struct cn_err *err);
	const struct cn_schema *(*schema)(void);
	/* After a successful apply, whether what the document points at answers from here (NULL: nothing to check).
	 * A failure is printed as a warning: the document is stored, and the daemon may reach what this host cannot. */
	int (*probe)(const void *obj, struct cn_err *err);
};

/* `KIND lint FILE...`: validates without a database; exit 65 if any file is invalid (each error on one line). */
int cli_doc_lint(struct cli *cli, const struct cli_doc *doc, int argc, char **argv);
/* `KIND apply FILE`: validates, then stores a new version unless the latest has the same content; then probes. */
int cli_doc_apply(struct cli *cli, const struct cli_doc *doc, int argc, char **argv);
/* `KIND keys`: the file reference, generated from the loader's key table. */
int cli_doc_keys(struct cli *cli, const struct cli_doc *doc, int argc, char **argv);

/* Checks that svc's gateway answers from this host (reads the slots' shares once). Returns 0 or -code with err. */
struct cn_service;
int cli_gateway_probe(const struct cn_service *svc, struct cn_err *err);

/* Prints a file's key reference (every key, its value type, default and meaning) as a Markdown table; returns 0. */
int cli_print_reference(const struct cn_schema *s);

#endif
