/* Inside the gateway module: the adapter interface (a struct of function pointers per gateway kind) and the
 * HAProxy runtime API transport. Not a public header. */
#ifndef CANARY_GATEWAY_INT_H
#define CANARY_GATEWAY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canary/addr.h"
#include "canary/err.h"
#include "canary/service-t.h"

struct cn_gateway;

struct cn_gateway_ops {
	const char *name;
	int (*set_weights)(struct cn_gateway *gw, const double pct[2], struct cn_err *err);
	int (*get_weights)(struct cn_gateway *gw, double pct[2], struct cn_err *err);
	void (*close)(struct cn_gateway *gw);
};

/* Every adapter's client starts with this header; cn_gateway_* dispatch through ops. */
struct cn_gateway {
	const struct cn_gateway_ops *ops;
	int candidate; /* the slot that holds the candidate (cn_gateway_set_candidate) */
};

/* Open a client of each kind for svc; each returns a new client or NULL with err set. */
struct cn_gateway *cn_gateway_haproxy_open(const struct cn_service *svc, struct cn_err *err);
struct cn_gateway *cn_gateway_nginx_open(const struct cn_service *svc, struct cn_err *err);
struct cn_gateway *cn_gateway_command_open(const struct cn_service *svc, struct cn_err *err);

/* A helper program's run (cn_gw_run): the caller's capture buffers, and what happened. */
struct cn_run {
	char *out;          /* stdout, NUL-terminated, at most outsz - 1 bytes (NULL: dropped) */
	size_t outsz;
	char *errout;       /* stderr, likewise */
	size_t errsz;
	size_t out_len, err_len;
	bool out_truncated, err_truncated; /* the program wrote more than fits; the rest was read and dropped */
	bool timed_out;     /* the time was up: the program's process group was killed */
	int status;         /* exit status, 128 + signal when killed by one */
	int64_t elapsed_ms;
};

/* Runs argv (argv[0] looked up in PATH unless it has a '/') without a shell, in a process group of its own, with
 * stdin from /dev/null, capturing stdout and stderr into r's buffers, for at most timeout_ms; then kills whatever
 * is left of its process group. Returns 0 when it ran (see r->status and r->timed_out), -CN_EUNAVAIL when it could
 * not be started (not found, not executable), -CN_EINTERNAL on a system error. */
int cn_gw_run(const char *const *argv, int64_t timeout_ms, struct cn_run *r, struct cn_err *err);

/* Quotes a helper's output as one printable line into buf (cn_hap_quote): the first line holding `prefer` (e.g.
 * "[emerg]") if given and present, else the first non-blank line, with " ..." when more lines follow. Returns buf. */
char *cn_gw_quote_output(const char *text, const char *prefer, char *buf, size_t bufsz);

/* Largest runtime API answer read; longer answers are an error. */
#define CN_HAP_ANSWER_MAX 16384

/* Sends one command (without newline) on a new connection and reads the answer to EOF into out (NUL-terminated,
 * at most outsz - 1 bytes), all within timeout_ms. Returns 0, -CN_EUNAVAIL (cannot connect, timeout, reset) or
 * -CN_EINTERNAL (answer longer than outsz - 1). */
int cn_hap_cmd(const struct cn_addr *a, const char *cmd, int64_t timeout_ms, char *out, size_t outsz,
	       struct cn_err *err);

/* The same into a size-capped buffer (its max is the most it reads; the answer replaces what it held). */
struct cn_dynbuf;
int cn_hap_cmd_buf(const struct cn_addr *a, const char *cmd, int64_t timeout_ms, struct cn_dynbuf *out,
		   struct cn_err *err);

/* Copies text into buf as one printable line (control characters become spaces, trailing blanks dropped,
 * truncated with "..." when longer than bufsz - 1); returns buf. For quoting HAProxy's answers in errors. */
char *cn_hap_quote(const char *text, char *buf, size_t bufsz);

#endif
