/* Test helpers around the simulator: start a support program (modelsim) and wait for its ready line, stop it, and
 * a tiny HTTP/1.1 client for loopback servers (one request per connection), so tests need no libcurl. */
#ifndef CANARY_SIM_PROC_H
#define CANARY_SIM_PROC_H

#include <stddef.h>
#include <sys/types.h>

#include "canary/err.h"

/* A started program. */
struct sim_proc {
	pid_t pid;        /* 0 when not running */
	int out_fd;       /* read end of its stdout, kept open so the program never gets SIGPIPE */
	int port;         /* the port from its ready line ("... listening on 127.0.0.1:PORT"), or 0 */
	char line[256];   /* its ready line, without the newline */
};

/* Writes the path of a support program (e.g. "modelsim") into buf: $CANARY_BINARY_DIR/tests/NAME.
 * Returns 0, or -CN_EUNAVAIL if CANARY_BINARY_DIR is unset or the path does not fit. */
int sim_bin_path(const char *name, char *buf, size_t size, struct cn_err *err);

/* Starts argv[0] with argv (NULL-terminated), waits up to timeout_ms for its first line on stdout and parses the
 * port at its end. Returns 0 with *out filled, or -CN_EUNAVAIL (the program was killed and reaped). */
int sim_proc_start(char *const argv[], int timeout_ms, struct sim_proc *out, struct cn_err *err);

/* Sends SIGTERM, waits up to 5 s (then SIGKILL) and reaps. Returns the exit status (0..255), 128+signal if it was
 * killed by one, or -1 if p was not running. Safe to call twice. */
int sim_proc_stop(struct sim_proc *p);

/* An HTTP answer; body is malloc'd and NUL-terminated, freed by sim_http_free. */
struct sim_http_resp {
	int status;
	char headers[4096]; /* the header block, truncated if longer */
	char *body;
	size_t body_len;
};

/* Sends one request to 127.0.0.1:port (Connection: close) and reads the whole answer (at most 4 MiB) within
 * timeout_ms. body may be NULL. Returns 0 with *out filled (the caller frees with sim_http_free), or -CN_EUNAVAIL. */
int sim_http_request(int port, const char *method, const char *path, const char *body, int timeout_ms,
		     struct sim_http_resp *out, struct cn_err *err);

/* Copies the value of header name (case-insensitive) into buf; returns 0, or -1 if absent. */
int sim_http_header(const struct sim_http_resp *r, const char *name, char *buf, size_t size);

/* Frees r's body; safe on a zeroed resp. */
void sim_http_free(struct sim_http_resp *r);

/* Finds the first sample line of the text exposition page that starts with series (name plus labels exactly as
 * written, e.g. "http_requests_total{status=\"200\"}") and stores its value. Returns 0, or -1 if absent. */
int sim_prom_value(const char *page, const char *series, double *out);

#endif
