/* canaryctl internals: the shared state of one invocation, the subcommands, and helpers they share. */
#ifndef CANARY_CLI_INT_H
#define CANARY_CLI_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
int cmd_gc(struct cli *cli, int argc, char **argv); /* cli_gc.c */
int cmd_policy(struct cli *cli, int argc, char **argv);
int cmd_service(struct cli *cli, int argc, char **argv);
int cmd_rollout(struct cli *cli, int argc, char **argv);
int cmd_audit(struct cli *cli, int argc, char **argv);   /* cli_audit.c */
int cmd_history(struct cli *cli, int argc, char **argv); /* cli_history.c */
int cmd_report(struct cli *cli, int argc, char **argv);  /* cli_report.c */
int cmd_profile(struct cli *cli, int argc, char **argv);   /* cli_preflight.c */
int cmd_preflight(struct cli *cli, int argc, char **argv); /* cli_preflight.c */
int cmd_drill(struct cli *cli, int argc, char **argv);     /* cli_drill.c */
int cmd_sla(struct cli *cli, int argc, char **argv);       /* cli_sla.c */

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

/* Parses a rollout id (a positive whole number); returns 0, or 64 after printing the error and usage. */
int cli_parse_id(const char *s, int64_t *id, const char *usage);

/* How a time is shown: ISO 8601 in UTC to the second ("2024-05-01T12:00:00Z"), to the millisecond
 * ("...:00.123Z"), or to the microsecond with an offset and no trailing zeros ("...:00.12345+00:00"). */
enum cli_time_fmt { CLI_TIME_S, CLI_TIME_MS, CLI_TIME_US_OFFSET };

/* Formats us (microseconds since 1970-01-01 UTC; digits are cut, not rounded) into buf; "-" for CN_TIME_NONE.
 * Returns buf. */
const char *cli_time(int64_t us, enum cli_time_fmt fmt, char *buf, size_t len);

/* ---- JSON documents of the read commands (cli_json.c): new references (the caller decrefs), NULL when out of
 * memory. ---- */
struct cn_rollout_status;
struct cn_status_list;
struct cn_history;
struct cn_policy_list;
struct cn_policy_version;
struct cn_service_info;
struct cn_service_list;
struct cn_timeline;
json_t *cli_json_status(const struct cn_rollout_status *s);
json_t *cli_json_status_list(const struct cn_status_list *l);
json_t *cli_json_history(const struct cn_history *h);
json_t *cli_json_policy_list(const struct cn_policy_list *l);
json_t *cli_json_policy_version(const struct cn_policy_version *v);
/* A service as `service list` (show false) or `service show` shows it. */
json_t *cli_json_service(const struct cn_service_info *sv, bool show);

struct cn_service;
struct cn_dynbuf;

/* What `service show` says about a service's gateway beyond the stored row: the applied file parsed again (each
 * kind's own keys) and, for the Kubernetes kinds, the API server its credentials name on this host. */
struct cli_gateway_view {
	const struct cn_service *spec; /* NULL when the stored file no longer parses (then only kind/backend) */
	const char *api_server;        /* gateway-api and kserve: the server's URL, or NULL with api_error */
	const char *api_origin;        /* where the credentials come from */
	const char *api_error;         /* why no API server could be found from this host */
};

/* The gateway's target in one line for people ("haproxy unix:/run/h.sock backend chat", "kserve
 * inferenceservice models/chat on https://... (FILE (context c))"): written into b (capped). */
void cli_gateway_target(const struct cli_gateway_view *v, struct cn_dynbuf *b);

/* The gateway's target as JSON: kind, each kind's own keys, and target (cli_gateway_target's line). Returns a new
 * reference or NULL. */
json_t *cli_json_gateway(const struct cli_gateway_view *v);
json_t *cli_json_service_list(const struct cn_service_list *l);
json_t *cli_json_timeline(const struct cn_timeline *t);
struct cn_audit_report;
/* `audit verify [ID]`: what the check found (id 0: every chain) and the message it printed. */
json_t *cli_json_audit_verify(const struct cn_audit_report *rep, int64_t id, const char *msg);
struct cn_migrate_report;
/* `migrate`: the directory, how many files it holds and the names this run applied. */
json_t *cli_json_migrate(const char *dir, const struct cn_migrate_report *rep);
struct cn_gc_result;
json_t *cli_json_gc(const char *older_than, const struct cn_gc_result *r);
struct cn_report;
/* `report ID --html FILE`: what was written where. */
json_t *cli_json_report(const struct cn_report *r, int64_t id, const char *path, size_t bytes);

struct cn_sla_contract;
struct cn_sla_result;
/* `sla report`: the month, each objective's attainment and windows that missed or had no data, the credit. */
json_t *cli_json_sla(const char *service, const char *month, const struct cn_sla_contract *c,
		     const struct cn_sla_result *r);

/* ---- what the write commands say (cli_json.c) ---- */
/* One file of `KIND lint`: its error (ok false), or its name and spec (a new reference, taken). */
json_t *cli_json_lint(const char *file, const char *error, const char *name, json_t *spec);
/* `KIND apply FILE`: the version, whether it was created, and a warning (NULL: none, shown as null). */
json_t *cli_json_applied(const char *name, int version, bool created, const char *file, const char *warning);
/* `rollout start` without --wait. */
json_t *cli_json_started(int64_t id, const char *service, const char *candidate);
/* An accepted operator's command. */
json_t *cli_json_command(int64_t id, const char *command, bool emergency, bool gateway_confirmed);
/* The end of `rollout start --wait` / `rollout wait`: the status with the exit code. */
json_t *cli_json_waited(const struct cn_rollout_status *s, int exit_code);

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
	/* `lint FILE... --with OTHER`: checks the document (obj, its source and path) against another kind's file
	 * (policy: a service file); NULL when the kind has none. Returns 0 or -code with err. */
	int (*pair)(const void *obj, const char *source, const char *path, const char *other, struct cn_err *err);
	/* `KIND list` and `KIND show NAME`: read a model from the store (a new one in *out), render it as JSON, print
	 * it as text, free it. `version` is --version (0: the latest) where show_versions is set. */
	int (*read_list)(struct cn_store *st, void **out, struct cn_err *err);
	json_t *(*list_json)(const void *list);
	void (*print_list)(const void *list);
	void (*free_list)(void *list);
	bool show_versions;
	int (*read_show)(struct cn_store *st, const char *name, int version, void **out, struct cn_err *err);
	json_t *(*show_json)(const void *model);
	void (*print_show)(const void *model, bool source);
	void (*free_show)(void *model);
};

/* `KIND SUBCOMMAND ...`: lint, keys, apply, list or show (or --help); usage errors exit 64. */
int cli_doc_command(struct cli *cli, const struct cli_doc *doc, int argc, char **argv);
/* `KIND lint FILE...`: validates without a database; exit 65 if any file is invalid (each error on one line). */
int cli_doc_lint(struct cli *cli, const struct cli_doc *doc, int argc, char **argv);
/* `KIND apply FILE`: validates, then stores a new version unless the latest has the same content; then probes. */
int cli_doc_apply(struct cli *cli, const struct cli_doc *doc, int argc, char **argv);
/* `KIND keys`: the file reference, generated from the loader's key table. */
int cli_doc_keys(struct cli *cli, const struct cli_doc *doc, int argc, char **argv);
/* `KIND list`: every stored document's latest version. */
int cli_doc_list(struct cli *cli, const struct cli_doc *doc, int argc, char **argv);
/* `KIND show NAME [--version N] [--source]`: one stored document. */
int cli_doc_show(struct cli *cli, const struct cli_doc *doc, int argc, char **argv);

/* Checks that svc's gateway answers from this host (reads the slots' shares once). Returns 0 or -code with err. */
struct cn_service;
int cli_gateway_probe(const struct cn_service *svc, struct cn_err *err);

/* Prints a file's key reference (every key, its value type, default and meaning) as a Markdown table; returns 0. */
int cli_print_reference(const struct cn_schema *s);

#endif
