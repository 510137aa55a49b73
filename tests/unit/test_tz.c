/* test_tz.c (unit) — common/tz on ICU: zone ids (unknown ones refused rather than read as GMT),
 * UTC -> local civil time, local -> UTC through DST gaps and overlaps, and offsets, in
 * America/New_York (2026-03-08 02:00->03:00, 2026-11-01 02:00->01:00), Asia/Kolkata (+5:30),
 * Asia/Kathmandu (+5:45) and Australia/Lord_Howe (+10:30/+11, a 30-minute change). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <unicode/ucal.h>

#include "avro_convert.h"
#include "tz.h"

#define HOUR_MS 3600000
#define MIN_MS 60000

static int64_t at(const char *rfc3339)
{
    int64_t ms = 0;
    assert_int_equal(cf_avro_parse_millis(rfc3339, &ms), CF_OK);
    return ms;
}

static struct cf_tz *open_zone(const char *zone)
{
    struct cf_tz *tz = NULL;
    char err[256] = "";
    if (cf_tz_new(zone, &tz, err, sizeof err) != CF_OK)
        fail_msg("%s: %s", zone, err);
    return tz;
}

static void assert_civil(struct cf_tz *tz, const char *utc, int y, int mo, int d, int wd, int h,
                         int mi)
{
    struct cf_tz_civil c;
    assert_int_equal(cf_tz_to_civil(tz, at(utc), &c, NULL, 0), CF_OK);
    assert_int_equal(c.year, y);
    assert_int_equal(c.month, mo);
    assert_int_equal(c.day, d);
    assert_int_equal(c.weekday, wd);
    assert_int_equal(c.hour, h);
    assert_int_equal(c.minute, mi);
    assert_int_equal(c.second, 0);
}

static void assert_offset(struct cf_tz *tz, const char *utc, int32_t expect_ms)
{
    int32_t off = 0;
    assert_int_equal(cf_tz_offset(tz, at(utc), &off, NULL, 0), CF_OK);
    assert_int_equal(off, expect_ms);
}

/* Local y-mo-d h:mi must be of kind k at first (and second). */
static void assert_local(struct cf_tz *tz, int y, int mo, int d, int h, int mi, enum cf_tz_local k,
                         const char *first, const char *second)
{
    int64_t a = 0, b = 0;
    enum cf_tz_local kind = CF_TZ_LOCAL_UNIQUE;
    assert_int_equal(cf_tz_from_civil(tz, y, mo, d, h, mi, &a, &b, &kind, NULL, 0), CF_OK);
    assert_int_equal(kind, k);
    assert_int_equal(a, at(first));
    assert_int_equal(b, at(second));
}

static void test_known_zones(void **state)
{
    (void)state;
    assert_true(cf_tz_known("America/New_York"));
    assert_true(cf_tz_known("Asia/Kathmandu"));
    assert_true(cf_tz_known("Australia/Lord_Howe"));
    assert_true(cf_tz_known("Asia/Calcutta")); /* a link, still IANA */
    assert_true(cf_tz_known("UTC"));
    assert_false(cf_tz_known("Mars/Olympus_Mons"));
    assert_false(cf_tz_known("america/new_york_city"));
    assert_false(cf_tz_known("Etc/Unknown"));
    assert_false(cf_tz_known("GMT+03:00")); /* custom, not an IANA id */
    assert_false(cf_tz_known(""));
    assert_false(cf_tz_known(NULL));
    assert_false(cf_tz_known("Europe/Ist anbul"));
    assert_false(cf_tz_known("Europe/Istanbul/Europe/Istanbul/Europe/Istanbul/Europe/Istanbul/X"));

    struct cf_tz *tz = (struct cf_tz *)1;
    char err[128] = "";
    assert_int_equal(cf_tz_new("Mars/Olympus_Mons", &tz, err, sizeof err), CF_EINVAL);
    assert_null(tz);
    assert_non_null(strstr(err, "Mars/Olympus_Mons"));
    assert_int_equal(cf_tz_new("Etc/Unknown", &tz, NULL, 0), CF_EINVAL);
    assert_null(tz);
    cf_tz_free(NULL);

    tz = open_zone("Asia/Kathmandu");
    assert_string_equal(cf_tz_id(tz), "Asia/Kathmandu");
    cf_tz_free(tz);
}

static void test_new_york_spring_forward(void **state)
{
    (void)state;
    struct cf_tz *tz = open_zone("America/New_York");
    assert_offset(tz, "2026-03-08T06:59:59.999Z", -5 * HOUR_MS);
    assert_offset(tz, "2026-03-08T07:00:00.000Z", -4 * HOUR_MS);
    assert_civil(tz, "2026-03-08T06:59:00.000Z", 2026, 3, 8, 7, 1, 59);
    assert_civil(tz, "2026-03-08T07:00:00.000Z", 2026, 3, 8, 7, 3, 0);
    assert_local(tz, 2026, 3, 8, 1, 30, CF_TZ_LOCAL_UNIQUE, "2026-03-08T06:30:00.000Z",
                 "2026-03-08T06:30:00.000Z");
    /* 02:00-02:59 never happens: reported as a gap, with the instant it ends. */
    assert_local(tz, 2026, 3, 8, 2, 0, CF_TZ_LOCAL_GAP, "2026-03-08T07:00:00.000Z",
                 "2026-03-08T07:00:00.000Z");
    assert_local(tz, 2026, 3, 8, 2, 30, CF_TZ_LOCAL_GAP, "2026-03-08T07:00:00.000Z",
                 "2026-03-08T07:00:00.000Z");
    assert_local(tz, 2026, 3, 8, 3, 0, CF_TZ_LOCAL_UNIQUE, "2026-03-08T07:00:00.000Z",
                 "2026-03-08T07:00:00.000Z");
    /* 9:00 the Monday before and after: 14:00Z, then 13:00Z. */
    assert_local(tz, 2026, 3, 2, 9, 0, CF_TZ_LOCAL_UNIQUE, "2026-03-02T14:00:00.000Z",
                 "2026-03-02T14:00:00.000Z");
    assert_local(tz, 2026, 3, 9, 9, 0, CF_TZ_LOCAL_UNIQUE, "2026-03-09T13:00:00.000Z",
                 "2026-03-09T13:00:00.000Z");
    /* 24:00 is the next day's midnight (the end of a range "…-24:00"). */
    assert_local(tz, 2026, 3, 7, 24, 0, CF_TZ_LOCAL_UNIQUE, "2026-03-08T05:00:00.000Z",
                 "2026-03-08T05:00:00.000Z");
    cf_tz_free(tz);
}

static void test_new_york_fall_back(void **state)
{
    (void)state;
    struct cf_tz *tz = open_zone("America/New_York");
    assert_offset(tz, "2026-11-01T05:59:59.999Z", -4 * HOUR_MS);
    assert_offset(tz, "2026-11-01T06:00:00.000Z", -5 * HOUR_MS);
    /* 01:30 happens twice: EDT first, EST an hour later. */
    assert_civil(tz, "2026-11-01T05:30:00.000Z", 2026, 11, 1, 7, 1, 30);
    assert_civil(tz, "2026-11-01T06:30:00.000Z", 2026, 11, 1, 7, 1, 30);
    assert_local(tz, 2026, 11, 1, 1, 30, CF_TZ_LOCAL_OVERLAP, "2026-11-01T05:30:00.000Z",
                 "2026-11-01T06:30:00.000Z");
    assert_local(tz, 2026, 11, 1, 0, 59, CF_TZ_LOCAL_UNIQUE, "2026-11-01T04:59:00.000Z",
                 "2026-11-01T04:59:00.000Z");
    assert_local(tz, 2026, 11, 1, 2, 0, CF_TZ_LOCAL_UNIQUE, "2026-11-01T07:00:00.000Z",
                 "2026-11-01T07:00:00.000Z");
    assert_local(tz, 2026, 11, 2, 9, 0, CF_TZ_LOCAL_UNIQUE, "2026-11-02T14:00:00.000Z",
                 "2026-11-02T14:00:00.000Z");
    cf_tz_free(tz);
}

static void test_half_and_three_quarter_hours(void **state)
{
    (void)state;
    struct cf_tz *kol = open_zone("Asia/Kolkata");
    struct cf_tz *ktm = open_zone("Asia/Kathmandu");
    assert_offset(kol, "2026-03-08T12:00:00.000Z", 5 * HOUR_MS + 30 * MIN_MS);
    assert_offset(ktm, "2026-03-08T12:00:00.000Z", 5 * HOUR_MS + 45 * MIN_MS);
    assert_civil(kol, "2026-03-08T12:00:00.000Z", 2026, 3, 8, 7, 17, 30);
    assert_civil(ktm, "2026-03-08T12:00:00.000Z", 2026, 3, 8, 7, 17, 45);
    /* Across local midnight: 2026-03-08T18:20Z is Monday 00:05 in Kathmandu. */
    assert_civil(ktm, "2026-03-08T18:20:00.000Z", 2026, 3, 9, 1, 0, 5);
    assert_local(kol, 2026, 3, 9, 9, 0, CF_TZ_LOCAL_UNIQUE, "2026-03-09T03:30:00.000Z",
                 "2026-03-09T03:30:00.000Z");
    assert_local(ktm, 2026, 3, 9, 9, 0, CF_TZ_LOCAL_UNIQUE, "2026-03-09T03:15:00.000Z",
                 "2026-03-09T03:15:00.000Z");
    cf_tz_free(kol);
    cf_tz_free(ktm);
}

static void test_lord_howe(void **state)
{
    (void)state;
    struct cf_tz *tz = open_zone("Australia/Lord_Howe");
    /* 2026-04-05 02:00 +11 -> 01:30 +10:30 (at 2026-04-04T15:00Z). */
    assert_offset(tz, "2026-04-04T14:59:59.999Z", 11 * HOUR_MS);
    assert_offset(tz, "2026-04-04T15:00:00.000Z", 10 * HOUR_MS + 30 * MIN_MS);
    assert_local(tz, 2026, 4, 5, 1, 45, CF_TZ_LOCAL_OVERLAP, "2026-04-04T14:45:00.000Z",
                 "2026-04-04T15:15:00.000Z");
    assert_local(tz, 2026, 4, 5, 1, 29, CF_TZ_LOCAL_UNIQUE, "2026-04-04T14:29:00.000Z",
                 "2026-04-04T14:29:00.000Z");
    assert_civil(tz, "2026-04-04T15:00:00.000Z", 2026, 4, 5, 7, 1, 30);
    /* 2026-10-04 02:00 +10:30 -> 02:30 +11 (at 2026-10-03T15:30Z). */
    assert_offset(tz, "2026-10-03T15:29:59.999Z", 10 * HOUR_MS + 30 * MIN_MS);
    assert_offset(tz, "2026-10-03T15:30:00.000Z", 11 * HOUR_MS);
    assert_local(tz, 2026, 10, 4, 2, 15, CF_TZ_LOCAL_GAP, "2026-10-03T15:30:00.000Z",
                 "2026-10-03T15:30:00.000Z");
    assert_local(tz, 2026, 10, 4, 2, 30, CF_TZ_LOCAL_UNIQUE, "2026-10-03T15:30:00.000Z",
                 "2026-10-03T15:30:00.000Z");
    assert_local(tz, 2026, 10, 4, 1, 59, CF_TZ_LOCAL_UNIQUE, "2026-10-03T15:29:00.000Z",
                 "2026-10-03T15:29:00.000Z");
    assert_civil(tz, "2026-10-03T15:30:00.000Z", 2026, 10, 4, 7, 2, 30);
    cf_tz_free(tz);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct cf_tz *tz = open_zone("UTC");
    int64_t a = 0;
    enum cf_tz_local k;
    assert_int_equal(cf_tz_from_civil(tz, 2026, 2, 29, 9, 0, &a, NULL, &k, NULL, 0), CF_EINVAL);
    assert_int_equal(cf_tz_from_civil(tz, 2028, 2, 29, 9, 0, &a, NULL, &k, NULL, 0), CF_OK);
    assert_int_equal(cf_tz_from_civil(tz, 2026, 13, 1, 9, 0, &a, NULL, &k, NULL, 0), CF_EINVAL);
    assert_int_equal(cf_tz_from_civil(tz, 2026, 1, 1, 24, 1, &a, NULL, &k, NULL, 0), CF_EINVAL);
    assert_int_equal(cf_tz_from_civil(tz, 2026, 1, 1, 9, 60, &a, NULL, &k, NULL, 0), CF_EINVAL);
    assert_int_equal(cf_tz_from_civil(NULL, 2026, 1, 1, 9, 0, &a, NULL, &k, NULL, 0), CF_EINVAL);
    int32_t off = 1;
    assert_int_equal(cf_tz_offset(tz, 0, &off, NULL, 0), CF_OK);
    assert_int_equal(off, 0);
    struct cf_tz_civil c;
    assert_int_equal(cf_tz_to_civil(tz, INT64_MAX, &c, NULL, 0), CF_EINVAL);
    assert_int_equal(cf_tz_to_civil(tz, 0, &c, NULL, 0), CF_OK);
    assert_int_equal(c.year, 1970);
    assert_int_equal(c.weekday, 4); /* a Thursday */
    cf_tz_free(tz);
}

/* ICU itself, for comparing: the instant of a wall time under ICU's options. */
static int64_t icu_resolve(UCalendar *cal, const struct cf_tz_civil *c,
                           UCalendarWallTimeOption repeated)
{
    UErrorCode err = U_ZERO_ERROR;
    ucal_setAttribute(cal, UCAL_REPEATED_WALL_TIME, (int32_t)repeated);
    ucal_setAttribute(cal, UCAL_SKIPPED_WALL_TIME, UCAL_WALLTIME_FIRST);
    ucal_clear(cal);
    ucal_setDateTime(cal, c->year, c->month - 1, c->day, c->hour, c->minute, 0, &err);
    ucal_set(cal, UCAL_MILLISECOND, 0);
    int64_t t = (int64_t)ucal_getMillis(cal, &err);
    assert_true(U_SUCCESS(err));
    return t;
}

/* tz.c answers most questions by arithmetic inside a span of constant offset (from ICU's
 * transitions): it must agree with ICU's own calendar everywhere, across every change of
 * these zones from 1990 to 2045, walking forwards and jumping back and forth. */
static void test_agrees_with_icu(void **state)
{
    (void)state;
    static const char *const zones[] = {"America/New_York", "Asia/Kolkata",      "Asia/Kathmandu",
                                        "Australia/Lord_Howe", "Pacific/Chatham", "Pacific/Apia",
                                        "America/Sao_Paulo", "Europe/Dublin",   "UTC"};
    const int64_t from = at("1990-01-01T00:00:00Z"), to = at("2045-01-01T00:00:00Z");
    const int64_t step = 27 * HOUR_MS + 17 * MIN_MS + 13000;
    for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
        struct cf_tz *tz = open_zone(zones[z]);
        UChar id[64];
        size_t n = strlen(zones[z]);
        for (size_t i = 0; i <= n; i++)
            id[i] = (UChar)zones[z][i];
        UErrorCode err = U_ZERO_ERROR;
        UCalendar *cal = ucal_open(id, (int32_t)n, "en_US_POSIX", UCAL_GREGORIAN, &err);
        assert_true(U_SUCCESS(err));
        long long steps = 0;
        for (int64_t k = 0; from + k * step < to; k++, steps++) {
            /* even steps walk forwards, odd ones mirror them from the end */
            int64_t t = k % 2 == 0 ? from + k * step : to - k * step;
            struct cf_tz_civil c;
            assert_int_equal(cf_tz_to_civil(tz, t, &c, NULL, 0), CF_OK);
            ucal_setMillis(cal, (UDate)t, &err);
            if (c.year != ucal_get(cal, UCAL_EXTENDED_YEAR, &err) ||
                c.month != ucal_get(cal, UCAL_MONTH, &err) + 1 ||
                c.day != ucal_get(cal, UCAL_DATE, &err) ||
                c.weekday != (ucal_get(cal, UCAL_DAY_OF_WEEK, &err) + 5) % 7 + 1 ||
                c.hour != ucal_get(cal, UCAL_HOUR_OF_DAY, &err) ||
                c.minute != ucal_get(cal, UCAL_MINUTE, &err) ||
                c.second != ucal_get(cal, UCAL_SECOND, &err))
                fail_msg("%s at %lld: %04d-%02d-%02d %02d:%02d:%02d, ICU disagrees", zones[z],
                         (long long)t, c.year, c.month, c.day, c.hour, c.minute, c.second);
            int32_t off = 0;
            assert_int_equal(cf_tz_offset(tz, t, &off, NULL, 0), CF_OK);
            assert_int_equal(off, ucal_get(cal, UCAL_ZONE_OFFSET, &err) +
                                      ucal_get(cal, UCAL_DST_OFFSET, &err));
            assert_true(U_SUCCESS(err));

            int64_t first = 0, second = 0;
            enum cf_tz_local kind;
            assert_int_equal(cf_tz_from_civil(tz, c.year, c.month, c.day, c.hour, c.minute, &first,
                                              &second, &kind, NULL, 0),
                             CF_OK);
            int64_t minute_start = t - (int64_t)c.second * 1000 - t % 1000;
            int64_t icu_first = icu_resolve(cal, &c, UCAL_WALLTIME_FIRST);
            int64_t icu_last = icu_resolve(cal, &c, UCAL_WALLTIME_LAST);
            if (kind == CF_TZ_LOCAL_UNIQUE) {
                assert_true(first == second && first == minute_start);
                assert_true(icu_first == first && icu_last == first);
            } else {
                assert_int_equal(kind, CF_TZ_LOCAL_OVERLAP); /* t itself shows this time */
                assert_true(first == minute_start || second == minute_start);
                assert_true(icu_first != icu_last);
            }
        }
        assert_true(steps > 10000);
        ucal_close(cal);
        cf_tz_free(tz);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_zones),
        cmocka_unit_test(test_new_york_spring_forward),
        cmocka_unit_test(test_new_york_fall_back),
        cmocka_unit_test(test_half_and_three_quarter_hours),
        cmocka_unit_test(test_lord_howe),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_agrees_with_icu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
