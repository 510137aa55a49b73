/* tz.h — time-zone arithmetic on ICU (ucal): IANA zone ids, UTC instants and local civil time.
 *
 * Every instant is milliseconds since the Unix epoch, UTC (int64_t, as the Avro timestamp-millis
 * fields). Civil time is the proleptic Gregorian calendar of ICU's default Gregorian calendar
 * (only the Julian cutover of 1582 differs, far outside any booking). Offsets and transitions
 * come from ICU's zone data (tzdata); nothing here hand-rolls an offset.
 *
 * A struct cf_tz wraps one ICU calendar: it is cheap to use but not to open (~10 µs), so keep
 * one per zone for a search. It is not thread-safe (ICU calendars carry state); use one per
 * thread. */
#ifndef CF_TZ_H
#define CF_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Longest zone id accepted; the longest IANA id is ~32 characters. */
#define CF_TZ_ID_MAX 64

struct cf_tz;

/* A local civil time: what a wall clock and a calendar in the zone show. */
struct cf_tz_civil {
    int year;    /* e.g. 2026 */
    int month;   /* 1-12 */
    int day;     /* 1-31 */
    int weekday; /* ISO 8601: 1 = Monday ... 7 = Sunday (caseflow.common.Weekday's index) */
    int hour;    /* 0-23 */
    int minute;  /* 0-59 */
    int second;  /* 0-59 (offsets of old Local Mean Times have seconds) */
};

/* What a local civil time maps to in a zone, see cf_tz_from_civil. */
enum cf_tz_local {
    CF_TZ_LOCAL_UNIQUE,  /* happens once: *first == *second */
    CF_TZ_LOCAL_GAP,     /* does not exist (clocks jump over it, e.g. spring forward) */
    CF_TZ_LOCAL_OVERLAP, /* happens twice (clocks go back): *first < *second */
};

/* True if zone is an IANA zone id ICU knows ("Europe/Istanbul", also links such as
 * "Asia/Calcutta"). False for NULL, "", ids longer than CF_TZ_ID_MAX or not ASCII, custom ids
 * ("GMT+03:00") and "Etc/Unknown": ICU silently treats an unknown id as GMT under the name
 * "Etc/Unknown", which would book a patient at the wrong hour instead of failing. */
bool cf_tz_known(const char *zone);

/* Opens zone for the calls below into *out (set to NULL first); the caller frees it with
 * cf_tz_free. Returns CF_EINVAL (details in errbuf, which may be NULL) when zone is not
 * cf_tz_known or out is NULL, CF_ENOMEM/CF_EINVAL when ICU fails to open a calendar. */
cf_status cf_tz_new(const char *zone, struct cf_tz **out, char *errbuf, size_t errlen);

/* Frees tz; NULL is allowed. */
void cf_tz_free(struct cf_tz *tz);

/* The zone id tz was opened with (owned by tz, valid until cf_tz_free). */
const char *cf_tz_id(const struct cf_tz *tz);

/* The local civil time in tz at the instant utc_ms, into *out. Returns CF_EINVAL for NULL
 * arguments or an instant ICU cannot represent. */
cf_status cf_tz_to_civil(struct cf_tz *tz, int64_t utc_ms, struct cf_tz_civil *out, char *errbuf,
                         size_t errlen);

/* The instant(s) at which the wall clock in tz shows year-month-day hour:minute:00.000.
 * month 1-12, day 1-31 (must exist in that month), hour 0-24 and minute 0-59 (24:00 means
 * the next day's 00:00, the end of a range such as "09:00"-"24:00"). *kind says which case:
 * - UNIQUE: *first = *second = the instant.
 * - OVERLAP (clocks go back and the time happens twice): *first = the earlier instant (under
 *   the offset before the change), *second = the later one. Callers that want one answer take
 *   *first.
 * - GAP (clocks jump over the time, it never happens): *first = *second = the instant the gap
 *   ends (the first valid instant after it), for information only; callers must not book at a
 *   time that does not exist, they skip it.
 * second may be NULL. Returns CF_EINVAL for out-of-range fields or NULL tz/first/kind. */
cf_status cf_tz_from_civil(struct cf_tz *tz, int year, int month, int day, int hour, int minute,
                           int64_t *first, int64_t *second, enum cf_tz_local *kind, char *errbuf,
                           size_t errlen);

/* The offset of tz from UTC at the instant utc_ms (local = UTC + offset), in milliseconds,
 * daylight saving included: +19800000 for Asia/Kolkata. Returns CF_EINVAL on NULL arguments. */
cf_status cf_tz_offset(struct cf_tz *tz, int64_t utc_ms, int32_t *offset_ms, char *errbuf,
                       size_t errlen);

/* Zones opened once and kept, by id: a search asks about the same few zones for every case,
 * and opening one (an ICU calendar, its transition rules on first use) costs more than
 * hundreds of conversions. Not thread-safe, like the zones it holds: one per thread. */
struct cf_tz_set;

/* Longest set: more zones than the IANA database has. */
#define CF_TZ_SET_MAX 1024

/* A new empty set into *out; CF_ENOMEM. The caller frees it with cf_tz_set_free. */
cf_status cf_tz_set_new(struct cf_tz_set **out);

/* Frees set and every zone in it; NULL is allowed. */
void cf_tz_set_free(struct cf_tz_set *set);

/* The set's zone for zone, opened (cf_tz_new) on first use, into *out; the set owns it (valid
 * until cf_tz_set_free). The errors of cf_tz_new; CF_ETOOBIG past CF_TZ_SET_MAX zones. */
cf_status cf_tz_set_get(struct cf_tz_set *set, const char *zone, struct cf_tz **out,
                        char *errbuf, size_t errlen);

#endif
