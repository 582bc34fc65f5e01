/* Errors: a code that is also the process exit code the shells use, and a one-line message. */
#ifndef CANARY_ERR_H
#define CANARY_ERR_H

#include <stddef.h>

/* Codes follow sysexits(3), as DESIGN.md "Contracts" fixes them. Functions that fail return -code. */
enum cn_code {
	CN_OK = 0,
	CN_EUSAGE = 64,    /* the command was called wrongly */
	CN_EINPUT = 65,    /* invalid input: policy or service file, unknown id, bad state for the command */
	CN_EUNAVAIL = 69,  /* a dependency is unavailable: database, gateway, metrics */
	CN_EINTERNAL = 70, /* a bug or an unexpected answer */
	CN_EPERM = 77,     /* the database role may not do this */
};

#define CN_ERR_MSG_MAX 512

struct cn_err {
	int code;                  /* enum cn_code; 0 while no error was set */
	char msg[CN_ERR_MSG_MAX];  /* lowercase, one line, says what, where and what to do */
};

/* Sets err (if not NULL) to code and the formatted message; returns -code so callers can `return cn_fail(...)`. */
int cn_fail(struct cn_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefixes err's message with "prefix: " (e.g. a file name or an operation); returns -err->code. */
int cn_err_prefix(struct cn_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Resets err to no error. */
void cn_err_clear(struct cn_err *err);

#endif
