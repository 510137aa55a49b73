/* clock.h — the two clocks caseflow reads, and a sleep. */
#ifndef CF_CLOCK_H
#define CF_CLOCK_H

#include <stdint.h>

/* Milliseconds since the epoch (CLOCK_REALTIME): event times, occurred_at. */
int64_t cf_clock_wall_ms(void);

/* Milliseconds of CLOCK_MONOTONIC: deadlines and durations. */
int64_t cf_clock_mono_ms(void);

/* Microseconds of CLOCK_MONOTONIC: durations measured below a millisecond (the loop's
 * processing latency histogram starts at 1 ms). */
int64_t cf_clock_mono_us(void);

/* Sleeps ms milliseconds; a signal does not cut it short (callers sleep in short slices and
 * look at their stop flag between them). */
void cf_clock_sleep_ms(int64_t ms);

#endif
