/* policy.h — when a notification may go out: the SMS quiet hours in the patient's local time,
 * the per-recipient daily cap's local day, and the retry backoff. Pure apart from ICU's zone
 * data (common/tz). */
#ifndef NOTIFIER_POLICY_H
#define NOTIFIER_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"
#include "tz.h"

/* Quiet hours as minutes after local midnight: from start (inclusive) to end (exclusive),
 * across midnight when start > end (21:00-08:00 is {1260, 480}); start == end: none. */
struct notifier_quiet {
    int start_min;
    int end_min;
};

/* Parses "HH:MM" (00:00-23:59) into *minutes. CF_EINVAL otherwise. */
cf_status notifier_parse_hhmm(const char *text, int *minutes);

/* True if minute_of_day (0-1439) lies in the quiet hours. */
bool notifier_quiet_at(const struct notifier_quiet *q, int minute_of_day);

/* The earliest instant at or after now_ms, in tz, outside the quiet hours: now_ms itself when
 * it is not quiet, else the local end of the quiet hours (the first valid instant after it if
 * the clocks skip that time). */
cf_status notifier_quiet_end(struct cf_tz *tz, const struct notifier_quiet *q, int64_t now_ms,
                             int64_t *out_ms, char *errbuf, size_t errlen);

/* The instant the next local day (after the one holding now_ms) reaches minute_of_day, in tz:
 * when a notification held back by the daily cap goes out. */
cf_status notifier_next_day_at(struct cf_tz *tz, int64_t now_ms, int minute_of_day, int64_t *out_ms,
                               char *errbuf, size_t errlen);

/* The local date of now_ms in tz as YYYYMMDD (the daily cap's day) into day (9 bytes). */
cf_status notifier_local_day(struct cf_tz *tz, int64_t now_ms, char day[9], char *errbuf,
                             size_t errlen);

/* The pause before attempt number `attempt` + 1 after attempt `attempt` (≥ 1) failed:
 * base_ms doubled per attempt up to max_ms, then a random point in its upper half (rnd is a
 * uniform random 32-bit number), so replicas that failed together do not retry together. */
int64_t notifier_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, uint32_t rnd);

#endif
