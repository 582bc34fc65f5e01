/* Runs the canaryctl binary from a test and captures its exit code and output. Include after <cmocka.h>. */
#ifndef CANARY_TEST_CTL_RUN_H
#define CANARY_TEST_CTL_RUN_H

#include <stddef.h>

struct run {
	int status;      /* exit code, or -1 */
	char out[65536]; /* stdout */
	char err[8192];  /* stderr */
};

/* Runs $CANARY_BINARY_DIR/canaryctl with args (NULL-terminated, at most 30) and DATABASE_URL set to db (NULL:
 * unset); waits at most 60 s (then kills it and fails the test). */
void ctl_run(struct run *r, const char *db, const char *const *args);

/* Reads a file's first len-1 bytes into buf, NUL-terminated ("" if it cannot be read). */
void ctl_slurp(const char *path, char *buf, size_t len);

#endif
