/* The wall and monotonic clocks in milliseconds (canary/clock.h), the one place that calls clock_gettime for them. */
#include "canary/clock.h"

#include <time.h>

static int64_t ms_of(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts); /* cannot fail for these two clocks with a valid pointer */
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cn_wall_ms(void) { return ms_of(CLOCK_REALTIME); }

int64_t cn_mono_ms(void) { return ms_of(CLOCK_MONOTONIC); }
