/* canaryd's file descriptors: the limit it runs under, and one line (not a flood, not a spin) when they run out. */
#ifndef CANARY_DAEMON_FD_INT_H
#define CANARY_DAEMON_FD_INT_H

#include <stdbool.h>
#include <stddef.h>

/* Descriptors a rollout costs, measured (README "Running at scale"): the figure the out-of-descriptors line gives. */
#define DAEMON_FDS_PER_ROLLOUT 2
/* Descriptors canaryd holds with no rollout (database, listener, threads' connections, libraries), about. */
#define DAEMON_FDS_BASE 32

/* Raises the soft RLIMIT_NOFILE to the hard limit and logs both ("fd.limit"). Call once at start, before threads. */
void daemon_fd_init(void);

/* The soft descriptor limit in force (after daemon_fd_init); 0 when unknown. */
long daemon_fd_limit(void);

/* Out-of-descriptor errors seen since start (every one, also those not logged). */
unsigned long long daemon_fd_exhausted_total(void);

/* True when msg reports running out of descriptors (EMFILE or ENFILE: "Too many open files"). */
bool daemon_fd_exhausted(const char *msg);

/* When msg reports running out of descriptors: counts it, logs "fd.exhausted" at most once a minute for the whole
 * process (with the count since the last line, where (gateway, metrics, database, accept) and msg) and returns
 * true; the caller then logs nothing of its own. Otherwise returns false and does nothing. Thread-safe. */
bool daemon_fd_check(const char *where, const char *msg);

/* Writes the hold reason for a rollout that cannot be served for lack of descriptors into why (NUL-terminated):
 * "holding: out of file descriptors (limit N): raise LimitNOFILE / ulimit -n; each rollout needs about K". It stays
 * the same from one turn to the next, so the hold is audited once. */
void daemon_fd_reason(char *why, size_t size);

#endif
