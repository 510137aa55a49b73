/* test_notifier_policy.c — when the notifier may send (services/notifier/policy.h) and how it
 * reads a send's outcome (notifier_classify in sender.h): quiet hours across midnight and
 * daylight-saving changes, the daily cap's local day, the backoff's bounds, and which SMTP /
 * HTTP / connection failures are retried. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <string.h>

#include "avro_convert.h"
#include "policy.h"
#include "sender.h"
#include "tz.h"

static int64_t at(const char *rfc3339)
{
    int64_t ms = 0;
    assert_int_equal(cf_avro_parse_millis(rfc3339, &ms), CF_OK);
    return ms;
}

static struct cf_tz *zone(const char *id)
{
    struct cf_tz *tz = NULL;
    assert_int_equal(cf_tz_new(id, &tz, NULL, 0), CF_OK);
    return tz;
}

static void test_parse_hhmm(void **state)
{
    (void)state;
    int m = -1;
    assert_int_equal(notifier_parse_hhmm("21:00", &m), CF_OK);
    assert_int_equal(m, 1260);
    assert_int_equal(notifier_parse_hhmm("00:00", &m), CF_OK);
    assert_int_equal(m, 0);
    assert_int_equal(notifier_parse_hhmm("23:59", &m), CF_OK);
    assert_int_equal(m, 1439);
    static const char *const bad[] = {"24:00", "7:00", "07:60", "07:0", "07:000", "", "ab:cd"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(notifier_parse_hhmm(bad[i], &m), CF_EINVAL);
}

static void test_quiet_at(void **state)
{
    (void)state;
    const struct notifier_quiet night = {21 * 60, 8 * 60}, day = {12 * 60, 14 * 60},
                                none = {8 * 60, 8 * 60};
    assert_true(notifier_quiet_at(&night, 21 * 60));
    assert_true(notifier_quiet_at(&night, 23 * 60 + 59));
    assert_true(notifier_quiet_at(&night, 0));
    assert_true(notifier_quiet_at(&night, 7 * 60 + 59));
    assert_false(notifier_quiet_at(&night, 8 * 60));
    assert_false(notifier_quiet_at(&night, 20 * 60 + 59));
    assert_true(notifier_quiet_at(&day, 12 * 60));
    assert_false(notifier_quiet_at(&day, 14 * 60));
    assert_false(notifier_quiet_at(&day, 11 * 60));
    assert_false(notifier_quiet_at(&none, 8 * 60));
    assert_false(notifier_quiet_at(&none, 3 * 60));
}

static void test_quiet_end(void **state)
{
    (void)state;
    const struct notifier_quiet night = {21 * 60, 8 * 60};
    struct cf_tz *chicago = zone("America/Chicago"), *kolkata = zone("Asia/Kolkata");
    int64_t end = 0;

    /* 22:30 in Chicago (CST, -6): quiet until 08:00 the next morning = 14:00Z. */
    assert_int_equal(notifier_quiet_end(chicago, &night, at("2026-12-08T04:30:00Z"), &end, NULL, 0),
                     CF_OK);
    assert_int_equal(end, at("2026-12-08T14:00:00Z"));
    /* 05:00 local: quiet until 08:00 the same day. */
    assert_int_equal(notifier_quiet_end(chicago, &night, at("2026-12-08T11:00:00Z"), &end, NULL, 0),
                     CF_OK);
    assert_int_equal(end, at("2026-12-08T14:00:00Z"));
    /* 10:00 local: not quiet, now. */
    assert_int_equal(notifier_quiet_end(chicago, &night, at("2026-12-08T16:00:00Z"), &end, NULL, 0),
                     CF_OK);
    assert_int_equal(end, at("2026-12-08T16:00:00Z"));
    /* The night the clocks go forward (2027-03-14 02:00 CST -> 03:00 CDT): 08:00 CDT = 13:00Z. */
    assert_int_equal(notifier_quiet_end(chicago, &night, at("2027-03-14T04:00:00Z"), &end, NULL, 0),
                     CF_OK);
    assert_int_equal(end, at("2027-03-14T13:00:00Z"));
    /* Half-hour zone: 23:00 IST (+5:30) -> 08:00 IST = 02:30Z. */
    assert_int_equal(notifier_quiet_end(kolkata, &night, at("2026-12-08T17:30:00Z"), &end, NULL, 0),
                     CF_OK);
    assert_int_equal(end, at("2026-12-09T02:30:00Z"));
    cf_tz_free(chicago);
    cf_tz_free(kolkata);
}

static void test_cap_day(void **state)
{
    (void)state;
    struct cf_tz *chicago = zone("America/Chicago");
    char day[9];
    int64_t next = 0;

    /* 04:30Z on Dec 8 is still Dec 7 in Chicago. */
    assert_int_equal(notifier_local_day(chicago, at("2026-12-08T04:30:00Z"), day, NULL, 0), CF_OK);
    assert_string_equal(day, "20261207");
    assert_int_equal(
        notifier_next_day_at(chicago, at("2026-12-08T04:30:00Z"), 8 * 60, &next, NULL, 0), CF_OK);
    assert_int_equal(next, at("2026-12-08T14:00:00Z"));
    /* Across the autumn change (2026-11-01 is 25 hours long): the next day still. */
    assert_int_equal(
        notifier_next_day_at(chicago, at("2026-11-01T04:30:00Z"), 8 * 60, &next, NULL, 0), CF_OK);
    assert_int_equal(next, at("2026-11-01T14:00:00Z"));
    cf_tz_free(chicago);
}

static void test_backoff(void **state)
{
    (void)state;
    /* Attempt 1: 1000 ms base -> [500, 1000]; attempt 3 -> [2000, 4000]; capped at max. */
    for (uint32_t rnd = 0; rnd < 5000; rnd += 7) {
        int64_t d1 = notifier_backoff_ms(1, 1000, 60000, rnd * 2654435761u);
        int64_t d3 = notifier_backoff_ms(3, 1000, 60000, rnd * 2654435761u);
        int64_t d9 = notifier_backoff_ms(30, 1000, 60000, rnd * 2654435761u);
        assert_true(d1 >= 500 && d1 <= 1000);
        assert_true(d3 >= 2000 && d3 <= 4000);
        assert_true(d9 >= 30000 && d9 <= 60000);
    }
    /* Jitter: not every draw the same. */
    assert_true(notifier_backoff_ms(2, 1000, 60000, 1) != notifier_backoff_ms(2, 1000, 60000, 777));
}

static void test_classify(void **state)
{
    (void)state;
    char e[32];
    assert_int_equal(notifier_classify(NOTIFIER_EMAIL, CURLE_OK, 250, e, sizeof(e)), NOTIFIER_SENT);
    assert_int_equal(notifier_classify(NOTIFIER_EMAIL, CURLE_SEND_ERROR, 451, e, sizeof(e)),
                     NOTIFIER_TRANSIENT);
    assert_string_equal(e, "SMTP_451");
    assert_int_equal(notifier_classify(NOTIFIER_EMAIL, CURLE_RECV_ERROR, 550, e, sizeof(e)),
                     NOTIFIER_PERMANENT);
    assert_string_equal(e, "SMTP_550");
    assert_int_equal(notifier_classify(NOTIFIER_EMAIL, CURLE_COULDNT_CONNECT, 0, e, sizeof(e)),
                     NOTIFIER_TRANSIENT);
    assert_string_equal(e, "CONNECT");
    assert_int_equal(notifier_classify(NOTIFIER_EMAIL, CURLE_OPERATION_TIMEDOUT, 0, e, sizeof(e)),
                     NOTIFIER_TRANSIENT);
    assert_string_equal(e, "TIMEOUT");
    assert_int_equal(notifier_classify(NOTIFIER_SMS, CURLE_OK, 201, e, sizeof(e)), NOTIFIER_SENT);
    static const long transient[] = {408, 425, 429, 500, 502, 503, 504};
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++)
        assert_int_equal(notifier_classify(NOTIFIER_SMS, CURLE_OK, transient[i], e, sizeof(e)),
                         NOTIFIER_TRANSIENT);
    static const long permanent[] = {301, 400, 401, 403, 404, 413, 422};
    for (size_t i = 0; i < sizeof(permanent) / sizeof(permanent[0]); i++)
        assert_int_equal(notifier_classify(NOTIFIER_SMS, CURLE_OK, permanent[i], e, sizeof(e)),
                         NOTIFIER_PERMANENT);
    assert_string_equal(e, "HTTP_422");
    assert_int_equal(notifier_classify(NOTIFIER_SMS, CURLE_COULDNT_CONNECT, 0, e, sizeof(e)),
                     NOTIFIER_TRANSIENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_hhmm), cmocka_unit_test(test_quiet_at),
        cmocka_unit_test(test_quiet_end),  cmocka_unit_test(test_cap_day),
        cmocka_unit_test(test_backoff),    cmocka_unit_test(test_classify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
