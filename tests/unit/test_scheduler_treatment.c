/* test_scheduler_treatment.c (unit) — the treatment plan (services/scheduler/treatment.h): one
 * and two sessions, full and closed days skipped, a session 2 that would land on a closed or
 * full day moving session 1, arrival/departure and follow-up days, an exhausted horizon (none,
 * not an error), bad input, the weekday list parser and weekdays of known dates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "treatment.h"

/* Days since 1970-01-01 of a few civil dates (checked with Python's datetime). */
#define TUE_2026_12_01 20788
#define WED_2026_12_02 20789
#define FRI_2026_12_04 20791
#define SAT_2026_12_05 20792
#define MON_2026_12_07 20794
#define WED_2026_12_16 20803

/* Mon-Fri, two sessions a day. */
static struct treatment_clinic weekdays(void)
{
    struct treatment_clinic c = {.open = {false, true, true, true, true, true, false, false},
                                 .daily_capacity = 2};
    return c;
}

static struct treatment_request request(int32_t earliest, int sessions, int follow_ups)
{
    struct treatment_request r = {.earliest_day = earliest,
                                  .sessions = sessions,
                                  .follow_ups = follow_ups,
                                  .horizon_days = 60};
    return r;
}

/* Plans, which must succeed and find a plan. */
static struct treatment_plan plan_ok(const struct treatment_clinic *clinic,
                                     const struct treatment_day_count *booked, size_t nbooked,
                                     const struct treatment_request *req)
{
    struct treatment_plan p;
    bool found = false;
    char err[256] = "";
    cf_status st = treatment_plan(clinic, booked, nbooked, req, &found, &p, err, sizeof err);
    if (st != CF_OK)
        fail_msg("treatment_plan: %s", err);
    assert_true(found);
    return p;
}

static void one_session(void **state)
{
    (void)state;
    struct treatment_clinic c = weekdays();
    struct treatment_request r = request(TUE_2026_12_01, 1, 1);
    struct treatment_plan p = plan_ok(&c, NULL, 0, &r);
    assert_int_equal(p.nsessions, 1);
    assert_int_equal(p.session_day[0], TUE_2026_12_01);
    assert_int_equal(p.session_day[1], 0);
    assert_int_equal(p.arrival_day, TUE_2026_12_01 - 1);
    assert_int_equal(p.departure_day, TUE_2026_12_01 + 2);
    assert_int_equal(p.nfollow_ups, 1);
    assert_int_equal(p.follow_up_from_day[0], TUE_2026_12_01 + 30);
    assert_int_equal(p.follow_up_from_day[1], 0);
}

static void two_sessions(void **state)
{
    (void)state;
    struct treatment_clinic c = weekdays();
    struct treatment_request r = request(TUE_2026_12_01, 2, 2);
    struct treatment_plan p = plan_ok(&c, NULL, 0, &r);
    assert_int_equal(p.nsessions, 2);
    assert_int_equal(p.session_day[0], TUE_2026_12_01);
    assert_int_equal(p.session_day[1], WED_2026_12_16);
    /* Arrival the day before the first session, departure two days after the last. */
    assert_int_equal(p.arrival_day, TUE_2026_12_01 - 1);
    assert_int_equal(p.departure_day, WED_2026_12_16 + 2);
    /* Follow-ups count from the last session. */
    assert_int_equal(p.nfollow_ups, 2);
    assert_int_equal(p.follow_up_from_day[0], WED_2026_12_16 + 30);
    assert_int_equal(p.follow_up_from_day[1], WED_2026_12_16 + 90);
}

static void full_day_skipped(void **state)
{
    (void)state;
    struct treatment_clinic c = weekdays();
    struct treatment_request r = request(TUE_2026_12_01, 1, 1);
    /* One of two places taken: the day still has room. */
    struct treatment_day_count one[] = {{TUE_2026_12_01, 1}, {WED_2026_12_02, 5}};
    assert_int_equal(plan_ok(&c, one, 2, &r).session_day[0], TUE_2026_12_01);
    /* Both taken: the next day. */
    struct treatment_day_count full[] = {{TUE_2026_12_01, 2}};
    struct treatment_plan p = plan_ok(&c, full, 1, &r);
    assert_int_equal(p.session_day[0], WED_2026_12_02);
    assert_int_equal(p.arrival_day, WED_2026_12_02 - 1);
    /* The same day listed twice counts the sum. */
    struct treatment_day_count twice[] = {{TUE_2026_12_01, 1}, {TUE_2026_12_01, 1}};
    assert_int_equal(plan_ok(&c, twice, 2, &r).session_day[0], WED_2026_12_02);
}

static void closed_weekday_skipped(void **state)
{
    (void)state;
    struct treatment_clinic c = weekdays();
    /* Saturday and Sunday are closed: Monday. */
    struct treatment_request r = request(SAT_2026_12_05, 1, 1);
    struct treatment_plan p = plan_ok(&c, NULL, 0, &r);
    assert_int_equal(p.session_day[0], MON_2026_12_07);
    assert_int_equal(p.arrival_day, MON_2026_12_07 - 1); /* Sunday travel is the patient's */
    /* A clinic open on Saturdays only (weekday 6). */
    struct treatment_clinic sat = {.open = {[6] = true}, .daily_capacity = 1};
    r = request(TUE_2026_12_01, 1, 1);
    assert_int_equal(plan_ok(&sat, NULL, 0, &r).session_day[0], SAT_2026_12_05);
}

static void session_two_on_closed_day_moves_session_one(void **state)
{
    (void)state;
    struct treatment_clinic c = weekdays();
    /* Friday + 15 = Saturday (closed); Saturday and Sunday are closed for session 1; Monday +
     * 15 = Tuesday. */
    struct treatment_request r = request(FRI_2026_12_04, 2, 1);
    struct treatment_plan p = plan_ok(&c, NULL, 0, &r);
    assert_int_equal(p.session_day[0], MON_2026_12_07);
    assert_int_equal(p.session_day[1], MON_2026_12_07 + 15);
    assert_int_equal(treatment_weekday(p.session_day[1]), 2);
    assert_int_equal(p.departure_day, MON_2026_12_07 + 17);
    /* The same request with one session keeps Friday. */
    r.sessions = 1;
    assert_int_equal(plan_ok(&c, NULL, 0, &r).session_day[0], FRI_2026_12_04);
}

static void session_two_on_full_day_moves_session_one(void **state)
{
    (void)state;
    struct treatment_clinic c = weekdays();
    struct treatment_request r = request(TUE_2026_12_01, 2, 1);
    /* Wednesday the 16th is full: Tuesday the 1st would need it, so Wednesday the 2nd (+15 =
     * Thursday the 17th). */
    struct treatment_day_count full[] = {{WED_2026_12_16, 2}};
    struct treatment_plan p = plan_ok(&c, full, 1, &r);
    assert_int_equal(p.session_day[0], WED_2026_12_02);
    assert_int_equal(p.session_day[1], WED_2026_12_16 + 1);
    assert_int_equal(p.arrival_day, WED_2026_12_02 - 1);
    assert_int_equal(p.follow_up_from_day[0], WED_2026_12_16 + 1 + 30);
}

static void horizon_exhausted(void **state)
{
    (void)state;
    struct treatment_clinic c = weekdays();
    struct treatment_plan p;
    bool found = true;
    /* From Saturday, 2 days cover Saturday and Sunday only; 3 reach Monday. */
    struct treatment_request r = request(SAT_2026_12_05, 1, 1);
    r.horizon_days = 2;
    assert_int_equal(treatment_plan(&c, NULL, 0, &r, &found, &p, NULL, 0), CF_OK);
    assert_false(found);
    assert_int_equal(p.nsessions, 0);
    r.horizon_days = 3;
    assert_int_equal(plan_ok(&c, NULL, 0, &r).session_day[0], MON_2026_12_07);
    /* Open on Mondays only: + 15 days is always a Tuesday, so two sessions never fit. */
    struct treatment_clinic mondays = {.open = {[1] = true}, .daily_capacity = 3};
    r = request(TUE_2026_12_01, 2, 1);
    r.horizon_days = TREATMENT_MAX_HORIZON_DAYS;
    found = true;
    assert_int_equal(treatment_plan(&mondays, NULL, 0, &r, &found, &p, NULL, 0), CF_OK);
    assert_false(found);
    /* Every day full. */
    struct treatment_day_count full[60];
    for (int i = 0; i < 60; i++)
        full[i] = (struct treatment_day_count){TUE_2026_12_01 + i, 2};
    r = request(TUE_2026_12_01, 1, 1);
    found = true;
    assert_int_equal(treatment_plan(&c, full, 60, &r, &found, &p, NULL, 0), CF_OK);
    assert_false(found);
}

/* Expects CF_EINVAL with a message and found false. */
static void expect_einval(const struct treatment_clinic *clinic,
                          const struct treatment_day_count *booked, size_t nbooked,
                          const struct treatment_request *req)
{
    struct treatment_plan p;
    bool found = true;
    char err[256] = "";
    assert_int_equal(treatment_plan(clinic, booked, nbooked, req, &found, &p, err, sizeof err),
                     CF_EINVAL);
    assert_false(found);
    assert_true(err[0] != '\0');
}

static void bad_input(void **state)
{
    (void)state;
    struct treatment_clinic c = weekdays();
    struct treatment_request r = request(TUE_2026_12_01, 1, 1);
    struct treatment_plan p;
    bool found = false;

    for (int v = -1; v <= 3; v += 4) { /* -1 and 3 */
        r = request(TUE_2026_12_01, v, 1);
        expect_einval(&c, NULL, 0, &r);
        r = request(TUE_2026_12_01, 1, v);
        expect_einval(&c, NULL, 0, &r);
    }
    r = request(TUE_2026_12_01, 0, 1);
    expect_einval(&c, NULL, 0, &r);
    r = request(TUE_2026_12_01, 1, 0);
    expect_einval(&c, NULL, 0, &r);

    r = request(TUE_2026_12_01, 1, 1);
    r.horizon_days = 0;
    expect_einval(&c, NULL, 0, &r);
    r.horizon_days = TREATMENT_MAX_HORIZON_DAYS + 1;
    expect_einval(&c, NULL, 0, &r);
    r.horizon_days = TREATMENT_MAX_HORIZON_DAYS;
    assert_int_equal(treatment_plan(&c, NULL, 0, &r, &found, &p, NULL, 0), CF_OK);

    r = request(TUE_2026_12_01, 1, 1);
    struct treatment_clinic no_capacity = c;
    no_capacity.daily_capacity = 0;
    expect_einval(&no_capacity, NULL, 0, &r);
    struct treatment_clinic never_open = {.daily_capacity = 2};
    never_open.open[0] = true; /* index 0 is not a weekday */
    expect_einval(&never_open, NULL, 0, &r);

    struct treatment_day_count negative[] = {{TUE_2026_12_01, -1}};
    expect_einval(&c, negative, 1, &r);
    expect_einval(&c, NULL, 1, &r); /* booked NULL but nbooked 1 */

    /* A date whose plan would leave int32. */
    r.earliest_day = INT32_MAX - 10;
    expect_einval(&c, NULL, 0, &r);
    r.earliest_day = INT32_MIN;
    expect_einval(&c, NULL, 0, &r);

    r = request(TUE_2026_12_01, 1, 1);
    assert_int_equal(treatment_plan(NULL, NULL, 0, &r, &found, &p, NULL, 0), CF_EINVAL);
    assert_int_equal(treatment_plan(&c, NULL, 0, NULL, &found, &p, NULL, 0), CF_EINVAL);
    assert_int_equal(treatment_plan(&c, NULL, 0, &r, NULL, &p, NULL, 0), CF_EINVAL);
    assert_int_equal(treatment_plan(&c, NULL, 0, &r, &found, NULL, NULL, 0), CF_EINVAL);
}

static void parse_days(void **state)
{
    (void)state;
    bool open[8];
    assert_int_equal(treatment_parse_days("1,2,3,4,5", open), CF_OK);
    for (int d = 0; d < 8; d++)
        assert_int_equal(open[d], d >= 1 && d <= 5);
    assert_int_equal(treatment_parse_days("7,3", open), CF_OK);
    for (int d = 0; d < 8; d++)
        assert_int_equal(open[d], d == 3 || d == 7);
    assert_int_equal(treatment_parse_days("6", open), CF_OK);
    for (int d = 0; d < 8; d++)
        assert_int_equal(open[d], d == 6);

    const char *bad[] = {"",     "0",    "8",  "1,1", "1,", ",1",
                         "1,,2", "1, 2", " 1", "1;2", "12", "1,2,3,4,5,6,7,1",
                         "mon"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(open, 1, sizeof open);
        if (treatment_parse_days(bad[i], open) != CF_EINVAL)
            fail_msg("\"%s\" accepted", bad[i]);
        for (int d = 0; d < 8; d++)
            assert_false(open[d]);
    }
    assert_int_equal(treatment_parse_days(NULL, open), CF_EINVAL);
    assert_int_equal(treatment_parse_days("1", NULL), CF_EINVAL);
}

static void weekday_of_known_dates(void **state)
{
    (void)state;
    assert_int_equal(treatment_weekday(0), 4);     /* 1970-01-01, Thursday */
    assert_int_equal(treatment_weekday(-1), 3);    /* 1969-12-31, Wednesday */
    assert_int_equal(treatment_weekday(-7), 4);    /* 1969-12-25, Thursday */
    assert_int_equal(treatment_weekday(10957), 6); /* 2000-01-01, Saturday */
    assert_int_equal(treatment_weekday(19782), 4); /* 2024-02-29, Thursday */
    assert_int_equal(treatment_weekday(TUE_2026_12_01), 2);
    assert_int_equal(treatment_weekday(SAT_2026_12_05), 6);
    assert_int_equal(treatment_weekday(MON_2026_12_07), 1);
    /* Consecutive days step through 1..7, also across the epoch and at the int32 ends. */
    for (int32_t d = -30; d < 30; d++)
        assert_int_equal(treatment_weekday(d + 1), treatment_weekday(d) % 7 + 1);
    assert_int_equal(treatment_weekday(INT32_MAX), treatment_weekday(INT32_MAX - 1) % 7 + 1);
    assert_int_equal(treatment_weekday(INT32_MIN + 1), treatment_weekday(INT32_MIN) % 7 + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_session),
        cmocka_unit_test(two_sessions),
        cmocka_unit_test(full_day_skipped),
        cmocka_unit_test(closed_weekday_skipped),
        cmocka_unit_test(session_two_on_closed_day_moves_session_one),
        cmocka_unit_test(session_two_on_full_day_moves_session_one),
        cmocka_unit_test(horizon_exhausted),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(parse_days),
        cmocka_unit_test(weekday_of_known_dates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
