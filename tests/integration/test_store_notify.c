/* Integration: notifications through the store (what canaryd's loop waits on) against a real Postgres: LISTEN,
 * nothing pending, a bounded wait, NOTIFYs counted once each, another channel not counted, a channel name that
 * needs quoting, and a lost connection reported as unavailable (69). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "canary/store.h"
#include "store_fixture.h"

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits up to 5 s in total for want notifications; returns how many arrived. */
static int collect(struct cn_store *s, int want)
{
	struct cn_err err = {0};
	int got = 0;
	int64_t start = mono_ms();
	while (got < want && mono_ms() - start < 5000) {
		int n = cn_store_wait_notify(s, 500, &err);
		if (n < 0)
			fail_msg("wait: %s", err.msg);
		got += n;
	}
	return got;
}

static void test_notify(void **state)
{
	struct store_ctx *c = *state;
	struct cn_err err = {0};
	struct cn_store *other = cn_store_connect(c->db.conninfo, &err);
	assert_non_null(other);

	assert_int_equal(cn_store_listen(c->s, "canary", &err), 0);
	assert_true(cn_store_socket(c->s) >= 0);
	/* nothing pending: 0 at once, and a bounded wait returns 0 after its time */
	assert_int_equal(cn_store_wait_notify(c->s, 0, &err), 0);
	int64_t t0 = mono_ms();
	assert_int_equal(cn_store_wait_notify(c->s, 200, &err), 0);
	assert_true(mono_ms() - t0 >= 150);

	/* two NOTIFYs are two notifications, consumed once */
	assert_int_equal(cn_store_run(other, "notify", "NOTIFY canary", 0, NULL, &err), 0);
	assert_int_equal(cn_store_run(other, "notify", "NOTIFY canary", 0, NULL, &err), 0);
	assert_int_equal(collect(c->s, 2), 2);
	assert_int_equal(cn_store_wait_notify(c->s, 100, &err), 0);

	/* a channel nobody listens on is not counted; a name that needs quoting works */
	assert_int_equal(cn_store_run(other, "notify", "NOTIFY elsewhere", 0, NULL, &err), 0);
	assert_int_equal(cn_store_wait_notify(c->s, 200, &err), 0);
	assert_int_equal(cn_store_listen(c->s, "odd \"name\"", &err), 0);
	assert_int_equal(cn_store_run(other, "notify", "NOTIFY \"odd \"\"name\"\"\"", 0, NULL, &err), 0);
	assert_int_equal(collect(c->s, 1), 1);

	/* the listening connection is killed: unavailable, with a message */
	assert_int_equal(cn_store_run(other, "kill the listener",
				      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
				      "WHERE datname = current_database() AND pid <> pg_backend_pid()",
				      0, NULL, &err),
			 0);
	int rc = 0;
	int64_t start = mono_ms();
	while ((rc = cn_store_wait_notify(c->s, 500, &err)) == 0 && mono_ms() - start < 5000)
		;
	assert_int_equal(rc, -CN_EUNAVAIL);
	assert_int_equal(err.code, CN_EUNAVAIL);
	assert_non_null(strstr(err.msg, "waiting for notifications"));
	cn_store_close(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_notify, store_ctx_setup, store_ctx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
