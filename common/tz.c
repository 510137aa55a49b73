/* tz.c — time-zone arithmetic on ICU's C calendar API (ucal). */
#include "tz.h"

#include <stdlib.h>
#include <string.h>

#include <unicode/ucal.h>

/* ICU keeps instants as doubles (UDate); these bounds (±100 million days, as ECMAScript Date)
 * keep every int64_t we hand over exact and inside what ICU computes with. */
#define TZ_INSTANT_MAX 8640000000000000LL
#define TZ_YEAR_MIN 1
#define TZ_YEAR_MAX 9999

struct cf_tz {
    UCalendar *cal;
    char id[CF_TZ_ID_MAX + 1];
};

/* Widens an ASCII zone id to ICU's UTF-16; false if it is NULL, empty, too long or not
 * printable ASCII (no IANA id is anything else). */
static bool widen(const char *zone, UChar *out, int32_t *len)
{
    if (zone == NULL || zone[0] == '\0')
        return false;
    size_t n = strnlen(zone, CF_TZ_ID_MAX + 1);
    if (n > CF_TZ_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)zone[i];
        if (c <= ' ' || c >= 0x7f)
            return false;
        out[i] = (UChar)c;
    }
    *len = (int32_t)n;
    return true;
}

bool cf_tz_known(const char *zone)
{
    UChar id[CF_TZ_ID_MAX];
    UChar canonical[CF_TZ_ID_MAX * 2];
    int32_t len = 0;
    if (!widen(zone, id, &len))
        return false;
    /* ICU would open any unknown id as GMT named "Etc/Unknown"; asking for the canonical id
     * is the documented way to learn whether an id is in the zone data at all. */
    if (strcmp(zone, "Etc/Unknown") == 0)
        return false;
    UBool system = 0;
    UErrorCode err = U_ZERO_ERROR;
    ucal_getCanonicalTimeZoneID(id, len, canonical, (int32_t)(sizeof canonical / sizeof *canonical),
                                &system, &err);
    /* Custom ids ("GMT+03:00") canonicalise but are not system ids: not IANA, refused. */
    return U_SUCCESS(err) && system;
}

cf_status cf_tz_new(const char *zone, struct cf_tz **out, char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    struct cf_tz *tz = NULL;
    UChar id[CF_TZ_ID_MAX];
    int32_t len = 0;

    if (out == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "cf_tz_new: out is NULL");
    *out = NULL;
    if (!cf_tz_known(zone) || !widen(zone, id, &len)) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "unknown time zone \"%.*s\"", CF_TZ_ID_MAX,
                     zone == NULL ? "(null)" : zone);
        goto out;
    }
    tz = calloc(1, sizeof *tz);
    if (tz == NULL) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "time zone %s", zone);
        goto out;
    }
    memcpy(tz->id, zone, (size_t)len);
    tz->id[len] = '\0';
    UErrorCode err = U_ZERO_ERROR;
    /* en_US_POSIX only fixes the first day of the week, which nothing here uses. */
    tz->cal = ucal_open(id, len, "en_US_POSIX", UCAL_GREGORIAN, &err);
    if (U_FAILURE(err) || tz->cal == NULL) {
        st = cf_fail(errbuf, errlen, err == U_MEMORY_ALLOCATION_ERROR ? CF_ENOMEM : CF_EINVAL,
                     "ICU cannot open time zone %s: %s", zone, u_errorName(err));
        goto out;
    }
    *out = tz;
    tz = NULL;
out:
    cf_tz_free(tz);
    return st;
}

void cf_tz_free(struct cf_tz *tz)
{
    if (tz == NULL)
        return;
    if (tz->cal != NULL)
        ucal_close(tz->cal);
    free(tz);
}

const char *cf_tz_id(const struct cf_tz *tz)
{
    return tz == NULL ? "" : tz->id;
}

/* Positions the calendar at utc_ms. */
static cf_status seek(struct cf_tz *tz, int64_t utc_ms, char *errbuf, size_t errlen)
{
    if (utc_ms > TZ_INSTANT_MAX || utc_ms < -TZ_INSTANT_MAX)
        return cf_fail(errbuf, errlen, CF_EINVAL, "instant %lld out of range", (long long)utc_ms);
    UErrorCode err = U_ZERO_ERROR;
    ucal_setMillis(tz->cal, (UDate)utc_ms, &err);
    if (U_FAILURE(err))
        return cf_fail(errbuf, errlen, CF_EINVAL, "ICU setMillis: %s", u_errorName(err));
    return CF_OK;
}

/* One calendar field at the current position; U_FAILURE lands in *err. */
static int field(struct cf_tz *tz, UCalendarDateFields f, UErrorCode *err)
{
    return (int)ucal_get(tz->cal, f, err);
}

cf_status cf_tz_to_civil(struct cf_tz *tz, int64_t utc_ms, struct cf_tz_civil *out, char *errbuf,
                         size_t errlen)
{
    if (tz == NULL || out == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "cf_tz_to_civil: NULL argument");
    cf_status st = seek(tz, utc_ms, errbuf, errlen);
    if (st != CF_OK)
        return st;
    UErrorCode err = U_ZERO_ERROR;
    struct cf_tz_civil c;
    /* ucal_get also folds a BC era into negative years, which never matters for bookings. */
    c.year = field(tz, UCAL_EXTENDED_YEAR, &err);
    c.month = field(tz, UCAL_MONTH, &err) + 1; /* ICU counts months from 0 */
    c.day = field(tz, UCAL_DATE, &err);
    /* ICU: 1 = Sunday ... 7 = Saturday; ISO 8601: 1 = Monday ... 7 = Sunday. */
    c.weekday = (field(tz, UCAL_DAY_OF_WEEK, &err) + 5) % 7 + 1;
    c.hour = field(tz, UCAL_HOUR_OF_DAY, &err);
    c.minute = field(tz, UCAL_MINUTE, &err);
    c.second = field(tz, UCAL_SECOND, &err);
    if (U_FAILURE(err))
        return cf_fail(errbuf, errlen, CF_EINVAL, "ICU get fields: %s", u_errorName(err));
    *out = c;
    return CF_OK;
}

cf_status cf_tz_offset(struct cf_tz *tz, int64_t utc_ms, int32_t *offset_ms, char *errbuf,
                       size_t errlen)
{
    if (tz == NULL || offset_ms == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "cf_tz_offset: NULL argument");
    cf_status st = seek(tz, utc_ms, errbuf, errlen);
    if (st != CF_OK)
        return st;
    UErrorCode err = U_ZERO_ERROR;
    int32_t raw = (int32_t)ucal_get(tz->cal, UCAL_ZONE_OFFSET, &err);
    int32_t dst = (int32_t)ucal_get(tz->cal, UCAL_DST_OFFSET, &err);
    if (U_FAILURE(err))
        return cf_fail(errbuf, errlen, CF_EINVAL, "ICU get offset: %s", u_errorName(err));
    *offset_ms = raw + dst;
    return CF_OK;
}

static bool leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap_year(y) ? 29 : days[m - 1];
}

/* The instant of a wall-clock time under ICU's rules for repeated and skipped wall times.
 * The calendar is lenient (ICU's default), so hour 24 rolls into the next day. */
static cf_status resolve(struct cf_tz *tz, int year, int month, int day, int hour, int minute,
                         UCalendarWallTimeOption repeated, UCalendarWallTimeOption skipped,
                         int64_t *out, char *errbuf, size_t errlen)
{
    UErrorCode err = U_ZERO_ERROR;
    ucal_setAttribute(tz->cal, UCAL_REPEATED_WALL_TIME, (int32_t)repeated);
    ucal_setAttribute(tz->cal, UCAL_SKIPPED_WALL_TIME, (int32_t)skipped);
    /* clear first: setDateTime leaves the milliseconds (and stale fields) of the last use. */
    ucal_clear(tz->cal);
    ucal_setDateTime(tz->cal, year, month - 1, day, hour, minute, 0, &err);
    ucal_set(tz->cal, UCAL_MILLISECOND, 0);
    UDate t = ucal_getMillis(tz->cal, &err);
    if (U_FAILURE(err))
        return cf_fail(errbuf, errlen, CF_EINVAL, "ICU resolve %04d-%02d-%02d %02d:%02d in %s: %s",
                       year, month, day, hour, minute, tz->id, u_errorName(err));
    *out = (int64_t)t;
    return CF_OK;
}

cf_status cf_tz_from_civil(struct cf_tz *tz, int year, int month, int day, int hour, int minute,
                           int64_t *first, int64_t *second, enum cf_tz_local *kind, char *errbuf,
                           size_t errlen)
{
    cf_status st = CF_OK;
    int64_t early = 0, late = 0;

    if (tz == NULL || first == NULL || kind == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "cf_tz_from_civil: NULL argument");
    if (year < TZ_YEAR_MIN || year > TZ_YEAR_MAX || month < 1 || month > 12 || day < 1 ||
        day > days_in_month(year, month) || hour < 0 || hour > 24 || minute < 0 || minute > 59 ||
        (hour == 24 && minute != 0))
        return cf_fail(errbuf, errlen, CF_EINVAL, "no such local time %04d-%02d-%02d %02d:%02d",
                       year, month, day, hour, minute);

    /* ICU tells the cases apart, with no offsets computed here: only a repeated time reads
     * differently under REPEATED = FIRST and LAST, only a skipped one under SKIPPED = FIRST
     * and LAST (one with the offset before the jump, one with the offset after). */
    st = resolve(tz, year, month, day, hour, minute, UCAL_WALLTIME_FIRST, UCAL_WALLTIME_FIRST,
                 &early, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    st = resolve(tz, year, month, day, hour, minute, UCAL_WALLTIME_LAST, UCAL_WALLTIME_FIRST, &late,
                 errbuf, errlen);
    if (st != CF_OK)
        goto out;
    if (early != late) {
        *kind = CF_TZ_LOCAL_OVERLAP;
        if (early > late) { /* not relying on which option ICU calls "first" */
            int64_t t = early;
            early = late;
            late = t;
        }
    } else {
        int64_t other = 0;
        st = resolve(tz, year, month, day, hour, minute, UCAL_WALLTIME_FIRST, UCAL_WALLTIME_LAST,
                     &other, errbuf, errlen);
        if (st != CF_OK)
            goto out;
        if (other == early) {
            *kind = CF_TZ_LOCAL_UNIQUE;
        } else {
            /* Report where the gap ends: the first instant that exists after it. */
            *kind = CF_TZ_LOCAL_GAP;
            st = resolve(tz, year, month, day, hour, minute, UCAL_WALLTIME_FIRST,
                         UCAL_WALLTIME_NEXT_VALID, &early, errbuf, errlen);
            if (st != CF_OK)
                goto out;
            late = early;
        }
    }
    *first = early;
    if (second != NULL)
        *second = late;
out:
    /* Leave ICU's defaults behind for any later reader of the calendar. */
    ucal_setAttribute(tz->cal, UCAL_REPEATED_WALL_TIME, UCAL_WALLTIME_LAST);
    ucal_setAttribute(tz->cal, UCAL_SKIPPED_WALL_TIME, UCAL_WALLTIME_LAST);
    return st;
}
