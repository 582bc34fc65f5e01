/* Test fixture for store integration tests: a fresh database on DATABASE_URL's server, migrated, with a store
 * connected to it; dropped afterwards. Use as CMocka group or per-test setup/teardown. */
#ifndef CANARY_TEST_STORE_FIXTURE_H
#define CANARY_TEST_STORE_FIXTURE_H

#include "canary/store.h"
#include "pg_fixture.h"

struct store_ctx {
	struct pg_fixture db;
	struct cn_store *s;
	char role[64];   /* a login role the test created; dropped at teardown when set */
};

/* CMocka setup: creates, migrates and connects; *state becomes a struct store_ctx. Returns 0 or -1 (printed why). */
int store_ctx_setup(void **state);
/* CMocka teardown: closes, drops the database and the role. */
int store_ctx_teardown(void **state);
/* The one integer a query returns (fails the test on error). */
long long store_ctx_scalar(struct store_ctx *c, const char *sql);
/* Path of a file in the source tree (CANARY_SOURCE_DIR); a static buffer. */
const char *store_ctx_src_path(const char *rel);
/* Writes text to a new temp file and returns its path (a static buffer); the caller unlinks it. */
const char *store_ctx_temp_file(const char *prefix, const char *text);

#endif
