/* clock.c — the clocks (see clock.h). */
#include "clock.h"

#include <errno.h>
#include <time.h>

static int64_t read_ms(clockid_t id)
{
    struct timespec ts;
    (void)clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cf_clock_wall_ms(void) { return read_ms(CLOCK_REALTIME); }

int64_t cf_clock_mono_ms(void) { return read_ms(CLOCK_MONOTONIC); }

void cf_clock_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
