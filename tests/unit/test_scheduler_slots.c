/* test_scheduler_slots.c (unit) — the scheduler's slot search (services/scheduler/slots.h): a
 * specialist in America/New_York across the 2026 DST changes (the same local hours land at
 * the right UTC instants), patients in Asia/Kolkata (+5:30), Asia/Kathmandu (+5:45) and
 * Australia/Lord_Howe (30-minute DST), windows that never meet the hours (none, not a wrong
 * booking), lead time (URGENT shorter), daily cap, held slots, horizon and reschedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "avro_convert.h"
#include "slots.h"

#define HOUR_MS 3600000LL
#define DAY_MS (24 * HOUR_MS)

static int64_t at(const char *rfc3339)
{
    int64_t ms = 0;
    assert_int_equal(cf_avro_parse_millis(rfc3339, &ms), CF_OK);
    return ms;
}

/* Mon-Fri 09:00-17:00. */
static const struct scheduler_range office[] = {
    {1, 540, 1020}, {2, 540, 1020}, {3, 540, 1020}, {4, 540, 1020}, {5, 540, 1020},
};

static struct scheduler_specialist new_york(void)
{
    struct scheduler_specialist sp = {
        .time_zone = "America/New_York",
        .hours = office,
        .nhours = sizeof office / sizeof *office,
        .slot_minutes = 30,
        .daily_cap = 8,
    };
    return sp;
}

static const struct scheduler_patient anytime = {.time_zone = "Europe/Madrid"};

static struct scheduler_query query(const char *now, int64_t lead_ms)
{
    struct scheduler_query q = {.now_ms = at(now), .lead_ms = lead_ms, .horizon_ms = 30 * DAY_MS};
    return q;
}

/* Runs the search, which must succeed; returns the start or -1 for none. */
static int64_t find(const struct scheduler_specialist *sp, const struct scheduler_patient *pt,
                    const struct scheduler_query *q, struct scheduler_slot *out)
{
    bool found = true;
    struct scheduler_slot slot;
    char err[256] = "";
    if (scheduler_find_slot(sp, pt, q, &found, &slot, err, sizeof err) != CF_OK)
        fail_msg("search failed: %s", err);
    if (!found)
        return -1;
    assert_int_equal(slot.end_ms - slot.start_ms, sp->slot_minutes * 60000LL);
    if (out != NULL)
        *out = slot;
    return slot.start_ms;
}

static void test_new_york_spring_forward(void **state)
{
    (void)state;
    struct scheduler_specialist sp = new_york();
    struct scheduler_slot slot;
    /* Friday before, lead 48 h: Monday 09:00 EST = 14:00Z. */
    struct scheduler_query q = query("2026-02-27T15:00:00.000Z", 48 * HOUR_MS);
    assert_int_equal(find(&sp, &anytime, &q, &slot), at("2026-03-02T14:00:00.000Z"));
    assert_int_equal(slot.year, 2026);
    assert_int_equal(slot.month, 3);
    assert_int_equal(slot.day, 2);
    /* The week of the change: Monday 09:00 EDT = 13:00Z. */
    q = query("2026-03-06T15:00:00.000Z", 48 * HOUR_MS);
    assert_int_equal(find(&sp, &anytime, &q, &slot), at("2026-03-09T13:00:00.000Z"));
    assert_int_equal(slot.day, 9);

    /* Hours over the night of the change, 00:00-06:00 Sunday, hourly: 02:00 does not exist and
     * is not offered; 03:00 EDT (07:00Z) follows 01:00 EST (06:00Z). */
    const struct scheduler_range night[] = {{7, 0, 360}};
    const int64_t held[] = {at("2026-03-08T05:00:00.000Z"), at("2026-03-08T06:00:00.000Z")};
    sp.hours = night;
    sp.nhours = 1;
    sp.slot_minutes = 60;
    q = query("2026-03-07T12:00:00.000Z", 0);
    assert_int_equal(find(&sp, &anytime, &q, NULL), at("2026-03-08T05:00:00.000Z"));
    sp.held = held;
    sp.nheld = 2;
    assert_int_equal(find(&sp, &anytime, &q, NULL), at("2026-03-08T07:00:00.000Z"));
}

static void test_new_york_fall_back(void **state)
{
    (void)state;
    struct scheduler_specialist sp = new_york();
    struct scheduler_query q = query("2026-10-23T14:00:00.000Z", 48 * HOUR_MS);
    assert_int_equal(find(&sp, &anytime, &q, NULL), at("2026-10-26T13:00:00.000Z")); /* EDT */
    q = query("2026-10-30T14:00:00.000Z", 48 * HOUR_MS);
    assert_int_equal(find(&sp, &anytime, &q, NULL), at("2026-11-02T14:00:00.000Z")); /* EST */

    /* Sunday 01:00-03:00, hourly: 01:00 happens twice and is offered once, at its first
     * instant (EDT, 05:00Z); next comes 02:00 EST (07:00Z), not the repeated 01:00 EST. */
    const struct scheduler_range night[] = {{7, 60, 180}};
    const int64_t held[] = {at("2026-11-01T05:00:00.000Z")};
    sp.hours = night;
    sp.nhours = 1;
    sp.slot_minutes = 60;
    q = query("2026-10-31T12:00:00.000Z", 0);
    assert_int_equal(find(&sp, &anytime, &q, NULL), at("2026-11-01T05:00:00.000Z"));
    sp.held = held;
    sp.nheld = 1;
    assert_int_equal(find(&sp, &anytime, &q, NULL), at("2026-11-01T07:00:00.000Z"));
}

static const struct scheduler_range evenings[] = {
    {1, 1200, 1320}, {2, 1200, 1320}, {3, 1200, 1320}, {4, 1200, 1320},
    {5, 1200, 1320}, {6, 1200, 1320}, {7, 1200, 1320},
}; /* every day 20:00-22:00 */

static void test_kolkata(void **state)
{
    (void)state;
    struct scheduler_specialist sp = new_york();
    struct scheduler_patient pt = {"Asia/Kolkata", evenings, 7};
    /* 20:00 IST = 14:30Z: 09:30 EST before the change, 10:30 EDT after it. */
    struct scheduler_query q = query("2026-03-01T00:00:00.000Z", DAY_MS);
    assert_int_equal(find(&sp, &pt, &q, NULL), at("2026-03-02T14:30:00.000Z"));
    q = query("2026-03-08T00:00:00.000Z", DAY_MS);
    assert_int_equal(find(&sp, &pt, &q, NULL), at("2026-03-09T14:30:00.000Z"));
    /* Only 20:30-21:00 IST: the slot starting at 15:00Z. */
    const struct scheduler_range narrow[] = {{1, 1230, 1260}};
    pt.windows = narrow;
    pt.nwindows = 1;
    q = query("2026-03-08T00:00:00.000Z", DAY_MS);
    assert_int_equal(find(&sp, &pt, &q, NULL), at("2026-03-09T15:00:00.000Z"));
}

static void test_kathmandu(void **state)
{
    (void)state;
    struct scheduler_specialist sp = new_york();
    /* 20:15-20:45 NPT = 14:30Z-15:00Z: one half-hour slot fits exactly. */
    const struct scheduler_range w[] = {{1, 1215, 1245}};
    struct scheduler_patient pt = {"Asia/Kathmandu", w, 1};
    struct scheduler_query q = query("2026-03-01T00:00:00.000Z", DAY_MS);
    assert_int_equal(find(&sp, &pt, &q, NULL), at("2026-03-02T14:30:00.000Z"));
    /* 20:00-20:30 NPT = 14:15Z-14:45Z holds no slot on a :00/:30 grid: Monday never fits. */
    const struct scheduler_range off_grid[] = {{1, 1200, 1230}};
    pt.windows = off_grid;
    assert_int_equal(find(&sp, &pt, &q, NULL), -1);
}

static void test_lord_howe(void **state)
{
    (void)state;
    /* Specialist in New York on Saturdays 09:00-17:00; patient on Lord Howe, Sunday mornings. */
    const struct scheduler_range saturday[] = {{6, 540, 1020}};
    struct scheduler_specialist sp = new_york();
    sp.hours = saturday;
    sp.nhours = 1;
    struct scheduler_slot slot;

    /* 2026-04-05 02:00 +11 -> 01:30 +10:30 at 15:00Z: 02:00 local is 15:30Z (a fixed +11
     * would say 15:00Z, which is 01:30 local). */
    const struct scheduler_range april[] = {{7, 120, 180}};
    struct scheduler_patient pt = {"Australia/Lord_Howe", april, 1};
    struct scheduler_query q = query("2026-04-01T00:00:00.000Z", 0);
    assert_int_equal(find(&sp, &pt, &q, &slot), at("2026-04-04T15:30:00.000Z"));
    assert_int_equal(slot.day, 4); /* the specialist's Saturday */

    /* 2026-10-04 02:00 +10:30 -> 02:30 +11 at 15:30Z: 02:30 local is 15:30Z (a fixed +10:30
     * would say 16:00Z). */
    const struct scheduler_range october[] = {{7, 150, 210}};
    pt.windows = october;
    q = query("2026-10-01T00:00:00.000Z", 0);
    assert_int_equal(find(&sp, &pt, &q, NULL), at("2026-10-03T15:30:00.000Z"));
}

static void test_windows_never_meet_hours(void **state)
{
    (void)state;
    struct scheduler_specialist sp = new_york();
    /* 09:00-12:00 IST = 22:30-01:30 EST: never inside 09:00-17:00 New York. */
    const struct scheduler_range mornings[] = {
        {1, 540, 720}, {2, 540, 720}, {3, 540, 720}, {4, 540, 720},
        {5, 540, 720}, {6, 540, 720}, {7, 540, 720},
    };
    struct scheduler_patient pt = {"Asia/Kolkata", mornings, 7};
    struct scheduler_query q = query("2026-03-01T00:00:00.000Z", 0);
    struct scheduler_slot slot = {.start_ms = 42};
    bool found = true;
    assert_int_equal(scheduler_find_slot(&sp, &pt, &q, &found, &slot, NULL, 0), CF_OK);
    assert_false(found);
    assert_int_equal(slot.start_ms, 42); /* untouched: nothing to book */
}

static void test_lead_time(void **state)
{
    (void)state;
    struct scheduler_specialist sp = new_york();
    /* Monday 09:00 EST. Routine: 48 h ahead -> Wednesday 09:00. */
    struct scheduler_query q = query("2026-03-02T14:00:00.000Z", 48 * HOUR_MS);
    assert_int_equal(find(&sp, &anytime, &q, NULL), at("2026-03-04T14:00:00.000Z"));
    /* URGENT, 4 h: the same afternoon, 13:00. */
    q.lead_ms = 4 * HOUR_MS;
    assert_int_equal(find(&sp, &anytime, &q, NULL), at("2026-03-02T18:00:00.000Z"));
    /* 4 h 10 min: the next slot on the grid, 13:30. */
    q.lead_ms = 4 * HOUR_MS + 10 * 60000;
    assert_int_equal(find(&sp, &anytime, &q, NULL), at("2026-03-02T18:30:00.000Z"));
    /* Friday 16:45 with no lead: too late for 16:30-17:00, so Monday. */
    q = query("2026-03-06T21:45:00.000Z", 0);
    assert_int_equal(find(&sp, &anytime, &q, NULL), at("2026-03-09T13:00:00.000Z"));
}

static void test_daily_cap(void **state)
{
    (void)state;
    struct scheduler_specialist sp = new_york();
    sp.daily_cap = 2;
    const struct scheduler_day_count booked[] = {{2026, 3, 2, 1}, {2026, 3, 2, 1}, {2026, 3, 4, 5}};
    struct scheduler_query q = query("2026-03-02T05:00:00.000Z", 0);
    sp.booked = booked;
    sp.nbooked = 1;
    assert_int_equal(find(&sp, &anytime, &q, NULL), at("2026-03-02T14:00:00.000Z"));
    sp.nbooked = 3; /* Monday full (1 + 1), Wednesday over: Tuesday */
    assert_int_equal(find(&sp, &anytime, &q, NULL), at("2026-03-03T14:00:00.000Z"));
    sp.daily_cap = 0;
    assert_int_equal(find(&sp, &anytime, &q, NULL), -1);
}

static void test_held_slot_skipped(void **state)
{
    (void)state;
    struct scheduler_specialist sp = new_york();
    const int64_t held[] = {at("2026-03-02T14:30:00.000Z"), at("2026-03-02T14:00:00.000Z")};
    sp.held = held;
    sp.nheld = 2;
    struct scheduler_query q = query("2026-03-02T05:00:00.000Z", 0);
    assert_int_equal(find(&sp, &anytime, &q, NULL), at("2026-03-02T15:00:00.000Z"));
}

static void test_horizon(void **state)
{
    (void)state;
    struct scheduler_specialist sp = new_york();
    /* Monday 00:00 EST; the first slot is 9 h later. */
    struct scheduler_query q = query("2026-03-02T05:00:00.000Z", 0);
    q.horizon_ms = 9 * HOUR_MS;
    assert_int_equal(find(&sp, &anytime, &q, NULL), -1);
    q.horizon_ms = 9 * HOUR_MS + 1;
    assert_int_equal(find(&sp, &anytime, &q, NULL), at("2026-03-02T14:00:00.000Z"));
    /* Lead past the horizon: none. */
    q.lead_ms = 10 * HOUR_MS;
    assert_int_equal(find(&sp, &anytime, &q, NULL), -1);
    /* A weekend-only specialist and a 4-day horizon from Monday: none. */
    const struct scheduler_range sunday[] = {{7, 540, 1020}};
    sp.hours = sunday;
    sp.nhours = 1;
    q = query("2026-03-02T05:00:00.000Z", 0);
    q.horizon_ms = 4 * DAY_MS;
    assert_int_equal(find(&sp, &anytime, &q, NULL), -1);
    q.horizon_ms = 7 * DAY_MS;
    assert_int_equal(find(&sp, &anytime, &q, NULL), at("2026-03-08T13:00:00.000Z")); /* EDT */
}

static void test_reschedule(void **state)
{
    (void)state;
    struct scheduler_specialist sp = new_york();
    sp.daily_cap = 1;
    const struct scheduler_day_count booked[] = {{2026, 3, 2, 1}};
    const int64_t old = at("2026-03-02T14:00:00.000Z");
    sp.booked = booked;
    sp.nbooked = 1;
    sp.held = &old;
    sp.nheld = 1;
    struct scheduler_query q = query("2026-03-02T05:00:00.000Z", 0);
    /* A new booking: Monday is full. */
    assert_int_equal(find(&sp, &anytime, &q, NULL), at("2026-03-03T14:00:00.000Z"));
    /* Moving Monday's booking: its place frees, its own start is not offered again. */
    bool found = false;
    struct scheduler_slot slot;
    assert_int_equal(scheduler_find_reschedule(&sp, &anytime, &q, old, &found, &slot, NULL, 0),
                     CF_OK);
    assert_true(found);
    assert_int_equal(slot.start_ms, at("2026-03-02T14:30:00.000Z"));
    sp.nheld = 0;
    assert_int_equal(scheduler_find_reschedule(&sp, &anytime, &q, old, &found, &slot, NULL, 0),
                     CF_OK);
    assert_int_equal(slot.start_ms, at("2026-03-02T14:30:00.000Z"));
}

static void test_bad_input(void **state)
{
    (void)state;
    struct scheduler_specialist sp = new_york();
    struct scheduler_patient pt = {"Asia/Kolkata", evenings, 7};
    struct scheduler_query q = query("2026-03-02T05:00:00.000Z", 0);
    struct scheduler_slot slot;
    bool found = true;
    char err[256] = "";

    sp.time_zone = "America/Nowhere";
    assert_int_equal(scheduler_find_slot(&sp, &pt, &q, &found, &slot, err, sizeof err), CF_EINVAL);
    assert_false(found);
    assert_non_null(strstr(err, "America/Nowhere"));
    sp = new_york();
    pt.time_zone = "Etc/Unknown";
    assert_int_equal(scheduler_find_slot(&sp, &pt, &q, &found, &slot, NULL, 0), CF_EINVAL);
    pt.time_zone = "Asia/Kolkata";

    const struct scheduler_range bad[] = {{8, 540, 600}, {1, 600, 540}, {1, 0, 1441}};
    for (size_t i = 0; i < 3; i++) {
        sp.hours = &bad[i];
        sp.nhours = 1;
        assert_int_equal(scheduler_find_slot(&sp, &pt, &q, &found, &slot, NULL, 0), CF_EINVAL);
    }
    sp = new_york();
    sp.slot_minutes = 0;
    assert_int_equal(scheduler_find_slot(&sp, &pt, &q, &found, &slot, NULL, 0), CF_EINVAL);
    sp = new_york();
    q.horizon_ms = 0;
    assert_int_equal(scheduler_find_slot(&sp, &pt, &q, &found, &slot, NULL, 0), CF_EINVAL);
    q.horizon_ms = 500 * DAY_MS;
    assert_int_equal(scheduler_find_slot(&sp, &pt, &q, &found, &slot, NULL, 0), CF_EINVAL);
    assert_int_equal(scheduler_find_slot(NULL, &pt, &q, &found, &slot, NULL, 0), CF_EINVAL);
}

static void test_parse_hhmm(void **state)
{
    (void)state;
    int m = -1;
    assert_int_equal(scheduler_parse_hhmm("00:00", &m), CF_OK);
    assert_int_equal(m, 0);
    assert_int_equal(scheduler_parse_hhmm("09:30", &m), CF_OK);
    assert_int_equal(m, 570);
    assert_int_equal(scheduler_parse_hhmm("24:00", &m), CF_OK);
    assert_int_equal(m, 1440);
    const char *bad[] = {"24:01", "9:30", "09:60", "09.30", "09:30 ", "", "+9:30", "25:00"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(scheduler_parse_hhmm(bad[i], &m), CF_EINVAL);
    assert_int_equal(scheduler_parse_hhmm(NULL, &m), CF_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_york_spring_forward),
        cmocka_unit_test(test_new_york_fall_back),
        cmocka_unit_test(test_kolkata),
        cmocka_unit_test(test_kathmandu),
        cmocka_unit_test(test_lord_howe),
        cmocka_unit_test(test_windows_never_meet_hours),
        cmocka_unit_test(test_lead_time),
        cmocka_unit_test(test_daily_cap),
        cmocka_unit_test(test_held_slot_skipped),
        cmocka_unit_test(test_horizon),
        cmocka_unit_test(test_reschedule),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_parse_hhmm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
