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
#define TZ_DAY_MS 86400000LL
/* The arithmetic fast path (below) serves instants from 1600-01-01 UTC on: ICU's Gregorian
 * calendar is Julian before 1582, the proleptic arithmetic is not. */
#define TZ_FAST_MIN (-11676096000000LL)
#define TZ_FAST_YEAR_MIN 1601
/* A local time whose instant under a span's offset lies at least this far inside the span is
 * unambiguous: UTC offsets differ by at most 26 h (tzdata's -12 h to +14 h), so no other offset
 * can map it to an instant outside the span. */
#define TZ_SPAN_MARGIN_MS (2 * TZ_DAY_MS)

struct cf_tz {
    UCalendar *cal;
    char id[CF_TZ_ID_MAX + 1];
    /* The span of constant UTC offset, [span_from, span_to) with offset span_offset, around the
     * last instant asked about, from ICU's own zone transitions. Inside it, conversions are
     * calendar arithmetic with ICU's offset: a slot search asks thousands of questions about
     * the same few weeks, and ICU's field computation costs microseconds each. Empty
     * (span_from > span_to) until first used. */
    int64_t span_from, span_to;
    int32_t span_offset;
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
    tz->span_from = 1;
    tz->span_to = 0;
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

/* The offset at the calendar's current position. */
static cf_status current_offset(struct cf_tz *tz, int32_t *offset_ms, char *errbuf, size_t errlen)
{
    UErrorCode err = U_ZERO_ERROR;
    int32_t raw = (int32_t)ucal_get(tz->cal, UCAL_ZONE_OFFSET, &err);
    int32_t dst = (int32_t)ucal_get(tz->cal, UCAL_DST_OFFSET, &err);
    if (U_FAILURE(err))
        return cf_fail(errbuf, errlen, CF_EINVAL, "ICU get offset: %s", u_errorName(err));
    *offset_ms = raw + dst;
    return CF_OK;
}

static bool in_span(const struct cf_tz *tz, int64_t utc_ms)
{
    return utc_ms >= tz->span_from && utc_ms < tz->span_to;
}

/* Makes the span the one that holds utc_ms: its offset and the zone's transitions around it,
 * as ICU reports them (no transition before or after: the span is open on that side). */
static cf_status span_at(struct cf_tz *tz, int64_t utc_ms, char *errbuf, size_t errlen)
{
    int32_t offset = 0;
    UDate prev = 0, next = 0;
    cf_status st = seek(tz, utc_ms, errbuf, errlen);
    if (st == CF_OK)
        st = current_offset(tz, &offset, errbuf, errlen);
    if (st != CF_OK)
        return st;
    UErrorCode err = U_ZERO_ERROR;
    bool has_prev = ucal_getTimeZoneTransitionDate(tz->cal, UCAL_TZ_TRANSITION_PREVIOUS_INCLUSIVE,
                                                   &prev, &err);
    bool has_next = ucal_getTimeZoneTransitionDate(tz->cal, UCAL_TZ_TRANSITION_NEXT, &next, &err);
    if (U_FAILURE(err))
        return cf_fail(errbuf, errlen, CF_EINVAL, "ICU zone transitions of %s: %s", tz->id,
                       u_errorName(err));
    tz->span_from = has_prev ? (int64_t)prev : -TZ_INSTANT_MAX;
    tz->span_to = has_next ? (int64_t)next : TZ_INSTANT_MAX;
    tz->span_offset = offset;
    if (!in_span(tz, utc_ms)) { /* never seen; a span that misses its instant is no span */
        tz->span_from = 1;
        tz->span_to = 0;
        return cf_fail(errbuf, errlen, CF_EINVAL, "ICU transitions of %s do not hold %lld",
                       tz->id, (long long)utc_ms);
    }
    return CF_OK;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar, counted in 400-year
 * eras of 146097 days that start on March 1st (so the leap day ends a year). */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t year = m <= 2 ? (int64_t)y - 1 : (int64_t)y;
    int64_t era = floor_div(year, 400);
    int64_t year_of_era = year - era * 400;                             /* 0-399 */
    int64_t month_from_march = m > 2 ? m - 3 : m + 9;                   /* 0-11 */
    int64_t day_of_year = (153 * month_from_march + 2) / 5 + d - 1;     /* 0-365 */
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468; /* 719468: 0000-03-01 to 1970-01-01 */
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t days, int *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t day_of_era = z - era * 146097;
    int64_t year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    int64_t month_from_march = (5 * day_of_year + 2) / 153;
    *d = (int)(day_of_year - (153 * month_from_march + 2) / 5 + 1);
    *m = (int)(month_from_march < 10 ? month_from_march + 3 : month_from_march - 9);
    *y = (int)(year_of_era + era * 400 + (*m <= 2 ? 1 : 0));
}

cf_status cf_tz_to_civil(struct cf_tz *tz, int64_t utc_ms, struct cf_tz_civil *out, char *errbuf,
                         size_t errlen)
{
    if (tz == NULL || out == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "cf_tz_to_civil: NULL argument");
    if (utc_ms >= TZ_FAST_MIN && utc_ms <= TZ_INSTANT_MAX &&
        (in_span(tz, utc_ms) || span_at(tz, utc_ms, NULL, 0) == CF_OK)) {
        int64_t local = utc_ms + tz->span_offset;
        int64_t days = floor_div(local, TZ_DAY_MS);
        int64_t ms_of_day = local - days * TZ_DAY_MS;
        civil_from_days(days, &out->year, &out->month, &out->day);
        out->weekday = (int)((days % 7 + 7 + 3) % 7) + 1; /* 1970-01-01 was a Thursday */
        out->hour = (int)(ms_of_day / 3600000);
        out->minute = (int)(ms_of_day / 60000 % 60);
        out->second = (int)(ms_of_day / 1000 % 60);
        return CF_OK;
    }
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
    if (in_span(tz, utc_ms) || span_at(tz, utc_ms, NULL, 0) == CF_OK) {
        *offset_ms = tz->span_offset;
        return CF_OK;
    }
    cf_status st = seek(tz, utc_ms, errbuf, errlen);
    if (st != CF_OK)
        return st;
    return current_offset(tz, offset_ms, errbuf, errlen);
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

    /* Far from any offset change, the wall time happens exactly once, at local - offset. */
    if (year >= TZ_FAST_YEAR_MIN) {
        int64_t local = days_from_civil(year, month, day) * TZ_DAY_MS +
                        (int64_t)hour * 3600000 + (int64_t)minute * 60000;
        int64_t utc = local - tz->span_offset;
        if (!in_span(tz, utc) && span_at(tz, utc, NULL, 0) == CF_OK)
            utc = local - tz->span_offset;
        if (in_span(tz, utc) && utc - tz->span_from >= TZ_SPAN_MARGIN_MS &&
            tz->span_to - utc > TZ_SPAN_MARGIN_MS) {
            *kind = CF_TZ_LOCAL_UNIQUE;
            *first = utc;
            if (second != NULL)
                *second = utc;
            return CF_OK;
        }
    }

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

struct cf_tz_set {
    struct cf_tz **zones;
    size_t n, cap;
};

cf_status cf_tz_set_new(struct cf_tz_set **out)
{
    *out = calloc(1, sizeof(**out));
    return *out == NULL ? CF_ENOMEM : CF_OK;
}

void cf_tz_set_free(struct cf_tz_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++)
        cf_tz_free(set->zones[i]);
    free(set->zones);
    free(set);
}

cf_status cf_tz_set_get(struct cf_tz_set *set, const char *zone, struct cf_tz **out,
                        char *errbuf, size_t errlen)
{
    if (set == NULL || zone == NULL || out == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "cf_tz_set_get: NULL argument");
    /* Linear: a set holds a handful of zones (those of a roster and its patients). */
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->zones[i]->id, zone) == 0) {
            *out = set->zones[i];
            return CF_OK;
        }
    if (set->n == CF_TZ_SET_MAX)
        return cf_fail(errbuf, errlen, CF_ETOOBIG, "more than %d time zones", CF_TZ_SET_MAX);
    if (set->n == set->cap) {
        size_t cap = set->cap == 0 ? 8 : set->cap * 2;
        struct cf_tz **zones = realloc(set->zones, cap * sizeof(*zones));
        if (zones == NULL)
            return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
        set->zones = zones;
        set->cap = cap;
    }
    cf_status st = cf_tz_new(zone, &set->zones[set->n], errbuf, errlen);
    if (st != CF_OK)
        return st;
    *out = set->zones[set->n++];
    return CF_OK;
}
