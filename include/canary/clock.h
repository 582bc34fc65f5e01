/* The process's clocks in milliseconds. Which clock where: the wall clock for what people read (log stamps, "since"
 * in terminal views); the monotonic clock for intervals, deadlines and back-off, which a clock step must not
 * stretch or shrink. The rollout core reads neither: its time is an argument (cn_tick's now_ms). */
#ifndef CANARY_CLOCK_H
#define CANARY_CLOCK_H

#include <stdint.h>

/* Wall clock (CLOCK_REALTIME): milliseconds since 1970-01-01 UTC. */
int64_t cn_wall_ms(void);

/* Monotonic clock (CLOCK_MONOTONIC): milliseconds since an arbitrary start; for differences only. */
int64_t cn_mono_ms(void);

#endif
