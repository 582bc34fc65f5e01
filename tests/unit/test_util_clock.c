/* Unit: the clock helpers count milliseconds of the right clock: the wall clock agrees with time(), the monotonic one
 * never goes back and advances with a sleep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <time.h>

#include "canary/clock.h"

static void test_wall_is_epoch_ms(void **state)
{
	(void)state;
	int64_t before = (int64_t)time(NULL) * 1000;
	int64_t ms = cn_wall_ms();
	int64_t after = (int64_t)time(NULL) * 1000 + 1000;
	assert_true(ms >= before && ms < after);
}

static void test_mono_advances(void **state)
{
	(void)state;
	int64_t a = cn_mono_ms();
	struct timespec nap = {.tv_sec = 0, .tv_nsec = 30 * 1000000L};
	nanosleep(&nap, NULL);
	int64_t b = cn_mono_ms();
	assert_true(b - a >= 29);  /* ms truncation of both readings may lose up to 1 ms */
	assert_true(b - a < 5000); /* milliseconds, not micro- or nanoseconds */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wall_is_epoch_ms),
		cmocka_unit_test(test_mono_advances),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
