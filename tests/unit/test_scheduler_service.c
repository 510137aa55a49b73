/* test_scheduler_service.c — the scheduler's pure parts without servers: signed change tokens,
 * the join token, the choice of specialist (condition, language, English fallback, inactive
 * excluded, earliest across specialists, ties by id), reminder due times and the records built
 * (fields, ids, null links on CANCELLED). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "avro_convert.h"
#include "sched_events.h"
#include "sched_pick.h"
#include "sched_token.h"

static const unsigned char secret[] = "0123456789abcdef0123456789abcdef-test";
#define SECRET_LEN (sizeof(secret) - 1)
#define TID "7b0f6a52-3c1e-4f57-9a51-3f1c2d4e5f60"
#define CASE "0c3e9f2a-1b2c-4d5e-8f90-a1b2c3d4e5f6"
#define START 1790000000000LL

static void test_token_sign_verify(void **state)
{
    (void)state;
    char tok[SCHED_TOKEN_LEN + 1], again[SCHED_TOKEN_LEN + 1];
    assert_int_equal(sched_token_sign(secret, SECRET_LEN, "RESCHEDULE", TID, START, tok), CF_OK);
    assert_int_equal(strlen(tok), SCHED_TOKEN_LEN);
    assert_null(strpbrk(tok, "+/="));
    assert_int_equal(sched_token_sign(secret, SECRET_LEN, "RESCHEDULE", TID, START, again), CF_OK);
    assert_string_equal(tok, again);
    assert_true(sched_token_verify(secret, SECRET_LEN, "RESCHEDULE", TID, START, tok));
    /* Another start (the booking moved), action, id or secret: refused. */
    assert_false(sched_token_verify(secret, SECRET_LEN, "RESCHEDULE", TID, START + 1800000, tok));
    assert_false(sched_token_verify(secret, SECRET_LEN, "CANCEL", TID, START, tok));
    assert_false(sched_token_verify(secret, SECRET_LEN, "RESCHEDULE",
                                    "7b0f6a52-3c1e-4f57-9a51-3f1c2d4e5f61", START, tok));
    assert_false(sched_token_verify((const unsigned char *)"another-secret-of-32-bytes-at-least",
                                    35, "RESCHEDULE", TID, START, tok));
    /* One character changed, truncated, NULL. */
    tok[5] = tok[5] == 'A' ? 'B' : 'A';
    assert_false(sched_token_verify(secret, SECRET_LEN, "RESCHEDULE", TID, START, tok));
    assert_false(sched_token_verify(secret, SECRET_LEN, "RESCHEDULE", TID, START, "abc"));
    assert_false(sched_token_verify(secret, SECRET_LEN, "RESCHEDULE", TID, START, NULL));
    assert_int_equal(sched_token_sign(NULL, 0, "CANCEL", TID, START, tok), CF_EINVAL);
}

static void test_join_token_random(void **state)
{
    (void)state;
    char a[SCHED_JOIN_TOKEN_LEN + 1], b[SCHED_JOIN_TOKEN_LEN + 1];
    assert_int_equal(sched_join_token(a), CF_OK);
    assert_int_equal(sched_join_token(b), CF_OK);
    assert_int_equal(strlen(a), 22);
    assert_string_not_equal(a, b);
    char out[8];
    const unsigned char in[] = {0xfb, 0xff};
    assert_int_equal(sched_base64url(in, 2, out), 3);
    assert_string_equal(out, "-_8");
}

/* A specialist entry in caseflow's JSON form: Monday-Friday hours from..to in zone. */
static json_t *specialist(const char *id, const char *zone, const char *from, const char *to,
                          const char *lang, const char *condition, bool active)
{
    json_t *hours = json_array();
    static const char *const days[] = {"MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"};
    for (int i = 0; i < 5; i++)
        json_array_append_new(hours, json_pack("{s:s, s:s, s:s}", "weekday", days[i], "start",
                                               from, "end", to));
    return json_pack("{s:s, s:s, s:s, s:[s], s:[s], s:s, s:o, s:i, s:i, s:b}", "specialist_id",
                     id, "name", "Dr. Test", "email", "t@example.org", "languages", lang,
                     "conditions", condition, "time_zone", zone, "weekly_hours", hours,
                     "slot_minutes", 30, "daily_cap", 8, "active", active);
}

static void test_candidates(void **state)
{
    (void)state;
    json_t *entries = json_object();
    json_object_set_new(entries, "sp-b", specialist("sp-b", "Europe/Istanbul", "09:00", "17:00",
                                                    "tr", "CIRRHOSIS", true));
    json_object_set_new(entries, "sp-a", specialist("sp-a", "America/New_York", "09:00", "17:00",
                                                    "en-US", "CIRRHOSIS", true));
    json_object_set_new(entries, "sp-c", specialist("sp-c", "Europe/Madrid", "09:00", "17:00",
                                                    "es", "CIRRHOSIS", false));
    json_object_set_new(entries, "sp-d", specialist("sp-d", "Europe/Madrid", "09:00", "17:00",
                                                    "en", "WILSON_DISEASE", true));
    json_object_set_new(entries, "sp-bad", specialist("sp-bad", "Mars/Olympus", "09:00", "17:00",
                                                      "en", "CIRRHOSIS", true));
    struct sched_roster r;
    size_t idx[8], n = 0;
    bool interp = true;
    assert_int_equal(sched_roster_build(entries, &r, NULL, 0), CF_OK);
    assert_int_equal(r.n, 4);
    assert_int_equal(r.skipped, 1);
    assert_string_equal(r.items[0].id, "sp-a"); /* sorted by id */

    sched_candidates(&r, "CIRRHOSIS", "tr-TR", idx, &n, &interp);
    assert_int_equal(n, 1);
    assert_string_equal(r.items[idx[0]].id, "sp-b");
    assert_false(interp);
    /* Spanish: sp-c speaks it but is inactive: English speakers with an interpreter. */
    sched_candidates(&r, "CIRRHOSIS", "es", idx, &n, &interp);
    assert_int_equal(n, 1);
    assert_string_equal(r.items[idx[0]].id, "sp-a");
    assert_true(interp);
    sched_candidates(&r, "WILSON_DISEASE", "EN", idx, &n, &interp);
    assert_int_equal(n, 1);
    assert_string_equal(r.items[idx[0]].id, "sp-d");
    assert_false(interp);
    sched_candidates(&r, "LUPUS", "en", idx, &n, &interp);
    assert_int_equal(n, 0);
    sched_roster_clear(&r);
    json_decref(entries);
}

static int64_t utc(const char *text)
{
    int64_t ms = 0;
    assert_int_equal(cf_avro_parse_millis(text, &ms), CF_OK);
    return ms;
}

static void test_pick_earliest_and_ties(void **state)
{
    (void)state;
    json_t *entries = json_object();
    /* 09:00 New York (EST, UTC-5) = 14:00Z; 09:00 Istanbul (UTC+3) = 06:00Z. */
    json_object_set_new(entries, "sp-ny", specialist("sp-ny", "America/New_York", "09:00",
                                                     "17:00", "en", "CIRRHOSIS", true));
    json_object_set_new(entries, "sp-ist", specialist("sp-ist", "Europe/Istanbul", "09:00",
                                                      "17:00", "en", "CIRRHOSIS", true));
    json_object_set_new(entries, "sp-ist2", specialist("sp-ist2", "Europe/Istanbul", "09:00",
                                                       "17:00", "en", "CIRRHOSIS", true));
    struct sched_roster r;
    size_t idx[8], n = 0, chosen = 99;
    bool interp, found = false;
    struct sched_held held[3] = {{NULL, 0}, {NULL, 0}, {NULL, 0}};
    struct scheduler_patient pt = {NULL, NULL, 0};
    struct scheduler_slot slot;
    assert_int_equal(sched_roster_build(entries, &r, NULL, 0), CF_OK);
    sched_candidates(&r, "CIRRHOSIS", "en", idx, &n, &interp);
    assert_int_equal(n, 3); /* sp-ist, sp-ist2, sp-ny */
    struct scheduler_query q = {utc("2026-11-23T00:00:00Z"), 0, 7LL * 86400000, NULL};
    assert_int_equal(
        sched_pick_slot(&r, idx, n, held, &pt, &q, NULL, &found, &chosen, &slot, NULL, 0), CF_OK);
    assert_true(found);
    assert_string_equal(r.items[idx[chosen]].id, "sp-ist"); /* tie with sp-ist2: smaller id */
    assert_true(slot.start_ms == utc("2026-11-23T06:00:00Z"));
    /* sp-ist's first slot held: sp-ist2 has it. */
    int64_t taken[] = {utc("2026-11-23T06:00:00Z")};
    held[0] = (struct sched_held){taken, 1};
    assert_int_equal(
        sched_pick_slot(&r, idx, n, held, &pt, &q, NULL, &found, &chosen, &slot, NULL, 0), CF_OK);
    assert_string_equal(r.items[idx[chosen]].id, "sp-ist2");
    assert_true(slot.start_ms == utc("2026-11-23T06:00:00Z"));
    /* A patient in Kolkata reachable only 20:00-22:00 local (14:30-16:30Z): New York 09:30. */
    struct scheduler_range w[] = {{1, 20 * 60, 22 * 60}};
    struct scheduler_patient kol = {"Asia/Kolkata", w, 1};
    held[0] = (struct sched_held){NULL, 0};
    assert_int_equal(
        sched_pick_slot(&r, idx, n, held, &kol, &q, NULL, &found, &chosen, &slot, NULL, 0), CF_OK);
    assert_true(found);
    /* Istanbul's hours end at 14:00Z: New York at 09:30 EST. */
    assert_string_equal(r.items[idx[chosen]].id, "sp-ny");
    assert_true(slot.start_ms == utc("2026-11-23T14:30:00Z"));
    /* A preferred specialist wins with any slot, even a tie the id would lose... */
    assert_int_equal(
        sched_pick_slot(&r, idx, n, held, &pt, &q, "sp-ist2", &found, &chosen, &slot, NULL, 0),
        CF_OK);
    assert_string_equal(r.items[idx[chosen]].id, "sp-ist2");
    assert_true(slot.start_ms == utc("2026-11-23T06:00:00Z"));
    /* ...and without one the search goes on across all. */
    assert_int_equal(
        sched_pick_slot(&r, idx, n, held, &kol, &q, "sp-ist", &found, &chosen, &slot, NULL, 0),
        CF_OK);
    assert_string_equal(r.items[idx[chosen]].id, "sp-ny");
    sched_roster_clear(&r);
    json_decref(entries);
}

static void test_reminder_dues(void **state)
{
    (void)state;
    int64_t due[2];
    sched_reminder_dues(START, START - 48LL * 3600000, 86400000, 3600000, due);
    assert_true(due[0] == START - 86400000 && due[1] == START - 3600000);
    sched_reminder_dues(START, START - 5LL * 3600000, 86400000, 3600000, due);
    assert_true(due[0] == -1 && due[1] == START - 3600000); /* the 24 h one had passed */
    sched_reminder_dues(START, START - 1800000, 86400000, 3600000, due);
    assert_true(due[0] == -1 && due[1] == -1);
    char a[CF_UUID_LEN + 1], b[CF_UUID_LEN + 1];
    sched_reminder_event_id(TID, START, "H24", a);
    sched_reminder_event_id(TID, START, "H24", b);
    assert_string_equal(a, b);
    sched_reminder_event_id(TID, START, "H1", b);
    assert_string_not_equal(a, b);
    sched_reminder_event_id(TID, START + 1, "H24", b);
    assert_string_not_equal(a, b);
}

static json_t *case_state(void)
{
    return json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:I, "
                     "s:I, s:s}}",
                     "case_id", CASE, "correlation_id", "5f0e8c1a-2b3c-4d5e-9f80-1a2b3c4d5e6f",
                     "manager_id", "cm-avery", "recipient", "given_name", "Ana", "family_name",
                     "Example", "language", "en", "country", "IN", "time_zone", "Asia/Kolkata",
                     "booking", "teleconsult_id", TID, "specialist_id", "sp-ny",
                     "specialist_name", "Dr. Test", "specialist_time_zone", "America/New_York",
                     "start_ms", (json_int_t)START, "end_ms", (json_int_t)(START + 1800000),
                     "join_url", "https://meet.example.org/j/abc");
}

static void test_events_built(void **state)
{
    (void)state;
    json_t *st = case_state(), *ev = NULL;
    struct sched_meta m = {"11111111-2222-4333-8444-555555555555",
                           "66666666-7777-4888-9999-000000000000", START - 86400000,
                           "scheduler/0.1.0"};
    char tok[SCHED_TOKEN_LEN + 1];
    assert_int_equal(sched_build_scheduled(st, "RESCHEDULED", START - 3600000, secret, SECRET_LEN,
                                           &m, &ev, NULL, 0),
                     CF_OK);
    assert_string_equal(json_string_value(json_object_get(ev, "status")), "RESCHEDULED");
    assert_string_equal(json_string_value(json_object_get(ev, "teleconsult_id")), TID);
    assert_string_equal(json_string_value(json_object_get(ev, "patient_time_zone")),
                        "Asia/Kolkata");
    assert_string_equal(json_string_value(json_object_get(ev, "specialist_time_zone")),
                        "America/New_York");
    assert_string_equal(json_string_value(json_object_get(ev, "join_url")),
                        "https://meet.example.org/j/abc");
    assert_string_equal(json_string_value(json_object_get(ev, "start")),
                        "2026-09-21T14:13:20.000Z");
    assert_true(json_is_string(json_object_get(ev, "previous_start")));
    const json_t *meta = json_object_get(ev, "meta");
    assert_string_equal(json_string_value(json_object_get(meta, "case_id")), CASE);
    assert_string_equal(json_string_value(json_object_get(meta, "causation_id")), m.causation_id);
    assert_int_equal(sched_token_sign(secret, SECRET_LEN, "CANCEL", TID, START, tok), CF_OK);
    assert_string_equal(json_string_value(json_object_get(ev, "cancel_token")), tok);
    json_decref(ev);

    assert_int_equal(
        sched_build_scheduled(st, "CANCELLED", -1, secret, SECRET_LEN, &m, &ev, NULL, 0), CF_OK);
    assert_true(json_is_null(json_object_get(ev, "join_url")));
    assert_true(json_is_null(json_object_get(ev, "reschedule_token")));
    assert_true(json_is_null(json_object_get(ev, "cancel_token")));
    assert_true(json_is_null(json_object_get(ev, "previous_start")));
    json_decref(ev);

    assert_int_equal(sched_build_closed(st, "WITHDRAWN", "TELECONSULT_CANCELLED", false, &m, &ev,
                                        NULL, 0),
                     CF_OK);
    assert_string_equal(json_string_value(json_object_get(ev, "manager_id")), "cm-avery");
    assert_string_equal(json_string_value(json_object_get(ev, "note_code")),
                        "TELECONSULT_CANCELLED");
    assert_true(json_is_null(json_object_get(ev, "recipient")));
    json_decref(ev);

    assert_int_equal(sched_build_reminder(st, "H1", &m, &ev, NULL, 0), CF_OK);
    assert_string_equal(json_string_value(json_object_get(ev, "lead")), "H1");
    assert_string_equal(json_string_value(json_object_get(ev, "join_url")),
                        "https://meet.example.org/j/abc");
    json_decref(ev);

    assert_int_equal(sched_build_pending(st, "NO_SLOT", START, true, &m, &ev, NULL, 0), CF_OK);
    assert_string_equal(json_string_value(json_object_get(ev, "service")), "scheduler");
    assert_true(json_is_true(json_object_get(ev, "alert")));
    json_decref(ev);

    int32_t days[2] = {sched_days_from_civil(2026, 12, 1), sched_days_from_civil(2026, 12, 16)};
    int64_t fu[1] = {START};
    assert_int_equal(sched_build_treatment(st, days, 2, days[0] - 1, days[1] + 2, fu, 1, &m, &ev,
                                           NULL, 0),
                     CF_OK);
    const json_t *s2 = json_array_get(json_object_get(ev, "sessions"), 1);
    assert_int_equal(json_integer_value(json_object_get(s2, "number")), 2);
    assert_string_equal(json_string_value(json_object_get(s2, "date")), "2026-12-16");
    assert_string_equal(json_string_value(json_object_get(ev, "arrival_date")), "2026-11-30");
    assert_string_equal(json_string_value(json_object_get(ev, "departure_date")), "2026-12-18");
    assert_int_equal(json_array_size(json_object_get(ev, "follow_ups")), 1);
    json_decref(ev);

    json_object_del(st, "booking");
    assert_int_equal(sched_build_scheduled(st, "BOOKED", -1, secret, SECRET_LEN, &m, &ev, NULL, 0),
                     CF_EINVAL);
    json_decref(st);
}

static void test_language_primary(void **state)
{
    (void)state;
    char out[9];
    sched_language_primary("pt-BR", out);
    assert_string_equal(out, "pt");
    sched_language_primary("EN", out);
    assert_string_equal(out, "en");
    sched_language_primary("x", out);
    assert_string_equal(out, "");
    sched_language_primary(NULL, out);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_sign_verify), cmocka_unit_test(test_join_token_random),
        cmocka_unit_test(test_candidates),        cmocka_unit_test(test_pick_earliest_and_ties),
        cmocka_unit_test(test_reminder_dues),     cmocka_unit_test(test_events_built),
        cmocka_unit_test(test_language_primary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
