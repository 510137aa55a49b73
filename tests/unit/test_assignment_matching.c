/* test_assignment_matching.c (unit) — assignment's matching rule: each rule alone (language,
 * region, interpreter fallback, urgency, active and room, load ratio, idle time, id), the rules
 * in combination, the returning patient, bad input, the pending order and the README. Each case
 * builds a small roster and checks the manager a care coordinator would see chosen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "matching.h"

#define T0 1795000000000LL /* a fixed "now", ms since the epoch */
#define MINUTE 60000LL

static const char *const EN[] = {"en"};
static const char *const ES[] = {"es"};
static const char *const ES_EN[] = {"es-ES", "en-GB"};
static const char *const TR[] = {"tr"};
static const char *const RU[] = {"ru"};
static const char *const MX[] = {"MX"};
static const char *const ES_COUNTRY[] = {"ES"};
static const char *const TR_COUNTRY[] = {"TR"};

/* An active, routine-only manager with room, idle since T0; tests change one thing at a time. */
static struct assignment_manager mgr(const char *id, const char *const *languages, size_t nlang)
{
    struct assignment_manager m = {
        .id = id,
        .languages = languages,
        .nlanguages = nlang,
        .countries = NULL,
        .ncountries = 0,
        .capacity = 10,
        .urgent_capable = false,
        .active = true,
        .active_cases = 0,
        .last_assigned_ms = T0,
    };
    return m;
}

static struct assignment_case routine(const char *language, const char *country)
{
    struct assignment_case c = {
        .priority = ASSIGNMENT_PRIORITY_ROUTINE,
        .language = language,
        .country = country,
        .previous_manager = NULL,
    };
    return c;
}

static struct assignment_choice choose(const struct assignment_case *c,
                                       const struct assignment_manager *roster, size_t n)
{
    struct assignment_choice out;
    char err[128] = "";
    assert_int_equal(assignment_match(c, roster, n, &out, err, sizeof err), CF_OK);
    if (out.assigned) {
        assert_true(out.index < n);
        assert_ptr_equal(out.manager_id, roster[out.index].id);
    } else {
        assert_null(out.manager_id);
    }
    return out;
}

/* The chosen manager's id and reason code, or fails naming what was chosen instead. */
static void expect(const struct assignment_choice *got, const char *id, const char *reason)
{
    const char *code = assignment_reason_code(got->reason);
    if (id == NULL ? got->assigned : !got->assigned || strcmp(got->manager_id, id) != 0)
        fail_msg("chose %s (%s), expected %s (%s)", got->assigned ? got->manager_id : "none", code,
                 id == NULL ? "none" : id, reason);
    assert_string_equal(code, reason);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_language_subtag(void **state)
{
    (void)state;
    assert_true(assignment_language_match("es-MX", "es"));
    assert_true(assignment_language_match("ES", "es-419"));
    assert_true(assignment_language_match("pt_BR", "pt-PT"));
    assert_false(assignment_language_match("en", "eng"));
    assert_false(assignment_language_match("es", "et"));
    assert_false(assignment_language_match("", ""));
    assert_false(assignment_language_match(NULL, "en"));
    assert_false(assignment_language_match("-x", "-x"));

    struct assignment_manager roster[] = {mgr("cm-en", EN, 1), mgr("cm-es", ES, 1)};
    struct assignment_case c = routine("es-MX", "MX");
    struct assignment_choice got = choose(&c, roster, N(roster));
    expect(&got, "cm-es", "LANGUAGE");
    assert_false(got.interpreter);
}

/* A speaker of the language in another country beats a non-speaker in the patient's country. */
static void test_language_beats_region(void **state)
{
    (void)state;
    struct assignment_manager roster[] = {mgr("cm-local", EN, 1), mgr("cm-es", ES, 1)};
    roster[0].countries = MX;
    roster[0].ncountries = 1;
    struct assignment_case c = routine("es", "MX");
    struct assignment_choice got = choose(&c, roster, N(roster));
    expect(&got, "cm-es", "LANGUAGE");
    assert_false(got.interpreter);
}

/* Among speakers, the one for the patient's country wins even when more loaded. */
static void test_region_among_speakers(void **state)
{
    (void)state;
    struct assignment_manager roster[] = {mgr("cm-a", ES, 1), mgr("cm-b", ES_EN, 2),
                                          mgr("cm-c", ES, 1)};
    roster[1].countries = MX;
    roster[1].ncountries = 1;
    roster[1].active_cases = 8;
    roster[2].countries = ES_COUNTRY;
    roster[2].ncountries = 1;
    struct assignment_case c = routine("es", "mx"); /* country compared case-insensitively */
    struct assignment_choice got = choose(&c, roster, N(roster));
    expect(&got, "cm-b", "LANGUAGE_REGION");

    /* No country, or an unknown one: region plays no part, load decides. */
    c.country = NULL;
    got = choose(&c, roster, N(roster));
    expect(&got, "cm-a", "LANGUAGE");
    c.country = "DE";
    got = choose(&c, roster, N(roster));
    expect(&got, "cm-a", "LANGUAGE");
}

static void test_interpreter_fallback(void **state)
{
    (void)state;
    struct assignment_manager roster[] = {mgr("cm-ru", RU, 1), mgr("cm-en", EN, 1),
                                          mgr("cm-tr", TR, 1)};
    struct assignment_case c = routine("tr", "TR");

    /* Somebody with room speaks Turkish: no interpreter, even though cm-en is less loaded. */
    roster[2].active_cases = 9;
    struct assignment_choice got = choose(&c, roster, N(roster));
    expect(&got, "cm-tr", "LANGUAGE");
    assert_false(got.interpreter);

    /* The Turkish speaker is full: English with an interpreter, never the Russian speaker. */
    roster[2].active_cases = 10;
    got = choose(&c, roster, N(roster));
    expect(&got, "cm-en", "INTERPRETER");
    assert_true(got.interpreter);
    assert_false(got.returning);

    /* ... and the region still counts among English speakers. */
    struct assignment_manager more[] = {mgr("cm-en", EN, 1), mgr("cm-en-tr", EN, 1),
                                        mgr("cm-ru", RU, 1)};
    more[1].countries = TR_COUNTRY;
    more[1].ncountries = 1;
    more[1].active_cases = 5;
    got = choose(&c, more, N(more));
    expect(&got, "cm-en-tr", "INTERPRETER_REGION");
    assert_true(got.interpreter);

    /* Nobody speaks Turkish or English: the case waits. */
    struct assignment_manager ru_only[] = {mgr("cm-ru", RU, 1)};
    got = choose(&c, ru_only, N(ru_only));
    expect(&got, NULL, "NO_ROOM");
    assert_int_equal(got.index, SIZE_MAX);

    /* An empty or missing language goes straight to English with an interpreter. */
    c.language = "";
    got = choose(&c, roster, N(roster));
    expect(&got, "cm-en", "INTERPRETER");
    c.language = NULL;
    got = choose(&c, roster, N(roster));
    expect(&got, "cm-en", "INTERPRETER");

    /* An English-speaking patient never needs an interpreter. */
    c.language = "en-US";
    got = choose(&c, roster, N(roster));
    expect(&got, "cm-en", "LANGUAGE");
    assert_false(got.interpreter);
}

static void test_urgent(void **state)
{
    (void)state;
    struct assignment_manager roster[] = {mgr("cm-a", ES, 1), mgr("cm-b", ES, 1)};
    roster[1].urgent_capable = true;
    roster[1].active_cases = 7;
    struct assignment_case c = routine("es", "ES");
    c.priority = ASSIGNMENT_PRIORITY_URGENT;
    struct assignment_choice got = choose(&c, roster, N(roster));
    expect(&got, "cm-b", "LANGUAGE");

    /* HIGH is not URGENT: anyone may take it. */
    c.priority = ASSIGNMENT_PRIORITY_HIGH;
    got = choose(&c, roster, N(roster));
    expect(&got, "cm-a", "LANGUAGE");

    /* The only urgent-capable manager is full: nobody, although cm-a has room. */
    c.priority = ASSIGNMENT_PRIORITY_URGENT;
    roster[1].active_cases = 10;
    got = choose(&c, roster, N(roster));
    expect(&got, NULL, "NO_URGENT_ROOM");

    /* An urgent-capable English speaker with room is preferred to waiting (interpreter). */
    struct assignment_manager mixed[] = {mgr("cm-es", ES, 1), mgr("cm-en", EN, 1)};
    mixed[1].urgent_capable = true;
    got = choose(&c, mixed, N(mixed));
    expect(&got, "cm-en", "INTERPRETER");
    assert_true(got.interpreter);

    /* Nobody at all has room: plain NO_ROOM, not an urgency problem. */
    mixed[0].active_cases = 10;
    mixed[1].active_cases = 10;
    got = choose(&c, mixed, N(mixed));
    expect(&got, NULL, "NO_ROOM");
}

static void test_inactive_and_full(void **state)
{
    (void)state;
    struct assignment_manager roster[] = {mgr("cm-a", ES, 1), mgr("cm-b", ES, 1),
                                          mgr("cm-c", ES, 1), mgr("cm-d", ES, 1)};
    roster[0].active = false;    /* least loaded, but takes no new cases */
    roster[1].active_cases = 10; /* full */
    roster[2].capacity = 0;      /* never has room */
    roster[3].active_cases = 9;
    struct assignment_case c = routine("es", NULL);
    struct assignment_choice got = choose(&c, roster, N(roster));
    expect(&got, "cm-d", "LANGUAGE");

    roster[3].active_cases = 10;
    got = choose(&c, roster, N(roster));
    expect(&got, NULL, "NO_ROOM");

    /* An empty roster is not an error: the case waits. */
    got = choose(&c, NULL, 0);
    expect(&got, NULL, "NO_ROOM");
}

static void test_load_ratio(void **state)
{
    (void)state;
    struct assignment_manager roster[] = {mgr("cm-half", ES, 1), mgr("cm-third", ES, 1)};
    roster[0].active_cases = 1;
    roster[0].capacity = 2; /* 0.5 */
    roster[1].active_cases = 3;
    roster[1].capacity = 10;                  /* 0.3: more cases, but less loaded */
    roster[1].last_assigned_ms = T0 + MINUTE; /* and busier lately: load still comes first */
    struct assignment_case c = routine("es", NULL);
    struct assignment_choice got = choose(&c, roster, N(roster));
    expect(&got, "cm-third", "LANGUAGE");

    /* Large capacities do not overflow the comparison. */
    roster[0].capacity = 2000000000;
    roster[0].active_cases = 1999999999;
    roster[1].capacity = 2000000000;
    roster[1].active_cases = 1999999998;
    got = choose(&c, roster, N(roster));
    expect(&got, "cm-third", "LANGUAGE");
}

static void test_ties(void **state)
{
    (void)state;
    /* Same ratio (2/10 = 1/5): the longest idle wins. */
    struct assignment_manager roster[] = {mgr("cm-a", ES, 1), mgr("cm-b", ES, 1),
                                          mgr("cm-c", ES, 1)};
    roster[0].active_cases = 2;
    roster[0].last_assigned_ms = T0 - MINUTE;
    roster[1].active_cases = 1;
    roster[1].capacity = 5;
    roster[1].last_assigned_ms = T0 - 5 * MINUTE;
    roster[2].active_cases = 2;
    roster[2].last_assigned_ms = T0;
    struct assignment_case c = routine("es", NULL);
    struct assignment_choice got = choose(&c, roster, N(roster));
    expect(&got, "cm-b", "LANGUAGE");

    /* Never assigned is the idlest of all. */
    roster[2].last_assigned_ms = ASSIGNMENT_NEVER_ASSIGNED;
    got = choose(&c, roster, N(roster));
    expect(&got, "cm-c", "LANGUAGE");

    /* Same ratio, same idle time: the smallest id, whatever the roster order. */
    struct assignment_manager same[] = {mgr("cm-z", ES, 1), mgr("cm-m", ES, 1), mgr("cm-b", ES, 1)};
    got = choose(&c, same, N(same));
    expect(&got, "cm-b", "LANGUAGE");
    struct assignment_manager swapped[] = {same[2], same[0], same[1]};
    got = choose(&c, swapped, N(swapped));
    expect(&got, "cm-b", "LANGUAGE");
    assert_int_equal(got.index, 0);
}

static void test_returning(void **state)
{
    (void)state;
    struct assignment_manager roster[] = {mgr("cm-new", ES, 1), mgr("cm-old", ES, 1),
                                          mgr("cm-en", EN, 1)};
    roster[1].active_cases = 9; /* busier than cm-new, but still room */
    struct assignment_case c = routine("es", "ES");
    c.previous_manager = "cm-old";
    struct assignment_choice got = choose(&c, roster, N(roster));
    expect(&got, "cm-old", "RETURNING");
    assert_true(got.returning);
    assert_false(got.interpreter);

    /* Full: the patient gets a new manager by the ordinary rules. */
    roster[1].active_cases = 10;
    got = choose(&c, roster, N(roster));
    expect(&got, "cm-new", "LANGUAGE");
    assert_false(got.returning);

    /* Inactive, or gone from the roster: likewise. */
    roster[1].active_cases = 0;
    roster[1].active = false;
    got = choose(&c, roster, N(roster));
    expect(&got, "cm-new", "LANGUAGE");
    roster[1].active = true;
    c.previous_manager = "cm-left";
    got = choose(&c, roster, N(roster));
    expect(&got, "cm-new", "LANGUAGE");

    /* Continuity beats language: a manager without the patient's language is kept, with an
     * interpreter, even though a Spanish speaker has room. */
    c.previous_manager = "cm-en";
    got = choose(&c, roster, N(roster));
    expect(&got, "cm-en", "RETURNING");
    assert_true(got.interpreter);
    assert_true(got.returning);

    /* URGENT needs an urgent-capable manager, even for a returning patient. */
    c.previous_manager = "cm-old";
    c.priority = ASSIGNMENT_PRIORITY_URGENT;
    roster[0].urgent_capable = true;
    got = choose(&c, roster, N(roster));
    expect(&got, "cm-new", "LANGUAGE");
    roster[1].urgent_capable = true;
    got = choose(&c, roster, N(roster));
    expect(&got, "cm-old", "RETURNING");
}

/* All rules at once: a realistic roster and the order in which they filter. */
static void test_combined(void **state)
{
    (void)state;
    struct assignment_manager roster[] = {
        mgr("cm-ana", ES_EN, 2), mgr("cm-bea", ES, 1), mgr("cm-cem", TR, 1),
        mgr("cm-dan", EN, 1),    mgr("cm-eva", ES, 1),
    };
    roster[0].countries = ES_COUNTRY;
    roster[0].ncountries = 1;
    roster[0].urgent_capable = true;
    roster[0].active_cases = 6;
    roster[1].countries = MX;
    roster[1].ncountries = 1;
    roster[1].active_cases = 7;
    roster[1].urgent_capable = true;
    roster[3].urgent_capable = true;
    roster[4].countries = MX;
    roster[4].ncountries = 1;
    roster[4].active_cases = 1;

    /* Routine, Mexico: both MX speakers qualify; cm-eva is less loaded. */
    struct assignment_case c = routine("es-MX", "MX");
    struct assignment_choice got = choose(&c, roster, N(roster));
    expect(&got, "cm-eva", "LANGUAGE_REGION");

    /* Urgent, Mexico: cm-eva is not urgent-capable; cm-bea (MX, 7/10) beats the less loaded
     * cm-ana (Spain, 6/10) because region comes before load. */
    c.priority = ASSIGNMENT_PRIORITY_URGENT;
    got = choose(&c, roster, N(roster));
    expect(&got, "cm-bea", "LANGUAGE_REGION");

    /* Urgent, Mexico, cm-bea full: cm-ana speaks Spanish, no interpreter for cm-dan. */
    roster[1].active_cases = 10;
    got = choose(&c, roster, N(roster));
    expect(&got, "cm-ana", "LANGUAGE");

    /* Urgent Turkish: cm-cem is not urgent-capable, so English with an interpreter, and among
     * the English speakers cm-dan (0/10) beats cm-ana (6/10). */
    c.language = "tr";
    c.country = "TR";
    got = choose(&c, roster, N(roster));
    expect(&got, "cm-dan", "INTERPRETER");
    assert_true(got.interpreter);
}

static void test_bad_input(void **state)
{
    (void)state;
    struct assignment_manager roster[] = {mgr("cm-a", ES, 1)};
    struct assignment_case c = routine("es", NULL);
    struct assignment_choice out;
    char err[128] = "";
    assert_int_equal(assignment_match(NULL, roster, 1, &out, err, sizeof err), CF_EINVAL);
    assert_int_equal(assignment_match(&c, roster, 1, NULL, NULL, 0), CF_EINVAL);
    assert_int_equal(assignment_match(&c, NULL, 1, &out, err, sizeof err), CF_EINVAL);

    roster[0].active_cases = -1;
    err[0] = '\0';
    assert_int_equal(assignment_match(&c, roster, 1, &out, err, sizeof err), CF_EINVAL);
    assert_non_null(strstr(err, "cm-a"));
    roster[0].active_cases = 0;
    roster[0].id = NULL;
    assert_int_equal(assignment_match(&c, roster, 1, &out, err, sizeof err), CF_EINVAL);
    roster[0].id = "cm-a";
    roster[0].languages = NULL;
    assert_int_equal(assignment_match(&c, roster, 1, &out, err, sizeof err), CF_EINVAL);

    assert_string_equal(assignment_reason_code((enum assignment_reason)99), "UNKNOWN");
}

static void test_pending_order(void **state)
{
    (void)state;
    struct assignment_pending queue[] = {
        {"case-r-old", ASSIGNMENT_PRIORITY_ROUTINE, T0 - 60 * MINUTE},
        {"case-h-new", ASSIGNMENT_PRIORITY_HIGH, T0},
        {"case-u-new", ASSIGNMENT_PRIORITY_URGENT, T0},
        {"case-h-old", ASSIGNMENT_PRIORITY_HIGH, T0 - 5 * MINUTE},
        {"case-u-b", ASSIGNMENT_PRIORITY_URGENT, T0 - MINUTE},
        {"case-u-a", ASSIGNMENT_PRIORITY_URGENT, T0 - MINUTE},
    };
    qsort(queue, N(queue), sizeof queue[0], assignment_pending_compare);
    static const char *const want[] = {"case-u-a",   "case-u-b",   "case-u-new",
                                       "case-h-old", "case-h-new", "case-r-old"};
    for (size_t i = 0; i < N(want); i++)
        assert_string_equal(queue[i].case_id, want[i]);
    assert_int_equal(assignment_pending_compare(&queue[0], &queue[0]), 0);
}

static void test_readme(void **state)
{
    (void)state;
    FILE *f = fopen(CF_TESTS_DIR "/../services/assignment/README.md", "r");
    assert_non_null(f);
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    assert_int_equal(fclose(f), 0);
    for (int r = ASSIGNMENT_REASON_RETURNING; r <= ASSIGNMENT_REASON_NO_URGENT_ROOM; r++) {
        char needle[64];
        snprintf(needle, sizeof needle, "`%s`", assignment_reason_code((enum assignment_reason)r));
        if (strstr(text, needle) == NULL)
            fail_msg("README does not document %s", needle);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_language_subtag),
        cmocka_unit_test(test_language_beats_region),
        cmocka_unit_test(test_region_among_speakers),
        cmocka_unit_test(test_interpreter_fallback),
        cmocka_unit_test(test_urgent),
        cmocka_unit_test(test_inactive_and_full),
        cmocka_unit_test(test_load_ratio),
        cmocka_unit_test(test_ties),
        cmocka_unit_test(test_returning),
        cmocka_unit_test(test_combined),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_pending_order),
        cmocka_unit_test(test_readme),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
