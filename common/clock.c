/* clock.c — the clocks (see clock.h). */
#include "clock.h"

#include <errno.h>
#include <time.h>

/* The clock id's time in units of 1/per_second seconds (1000: ms, 1000000: µs). */
static int64_t read_clock(clockid_t id, int64_t per_second)
{
    struct timespec ts;
    (void)clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * per_second + ts.tv_nsec / (1000000000 / per_second);
}

int64_t cf_clock_wall_ms(void) { return read_clock(CLOCK_REALTIME, 1000); }

int64_t cf_clock_mono_ms(void) { return read_clock(CLOCK_MONOTONIC, 1000); }

int64_t cf_clock_mono_us(void) { return read_clock(CLOCK_MONOTONIC, 1000000); }

void cf_clock_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
