/* test_assignment_candidates.c (unit) — the load-independent half of matching that C computes
 * for the Redis script: each manager's tier for a case (language and region, English with an
 * interpreter, neither), which managers are candidates at all (active, capacity, urgent), their
 * JSON form, and the roster built from the roster view's entries. A C model of the script's
 * decision over the candidates (the returning manager with room, else the smallest tier, load,
 * idle time, id) must agree with assignment_match() on thousands of random rosters: if it does,
 * the split between C and Lua loses nothing (the integration test then checks the Lua itself
 * against assignment_match() on a real Redis). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "assignment_roster.h"
#include "matching.h"

static const char *const ES_EN[] = {"es-ES", "EN"};
static const char *const TR[] = {"tr"};
static const char *const EN[] = {"en_GB"};
static const char *const C_ES[] = {"es", "mx"};
static const char *const C_GB[] = {"GB"};

static struct assignment_manager mgr(const char *id, const char *const *langs, size_t nl,
                                     const char *const *countries, size_t nc)
{
    struct assignment_manager m = {id,  langs, nl,   countries, nc, 5, false, true, 0,
                                   ASSIGNMENT_NEVER_ASSIGNED};
    return m;
}

static void test_tiers(void **state)
{
    (void)state;
    struct assignment_manager es = mgr("es", ES_EN, 2, C_ES, 2);
    struct assignment_manager tr = mgr("tr", TR, 1, NULL, 0);
    struct assignment_manager en = mgr("en", EN, 1, C_GB, 1);

    assert_int_equal(assignment_tier_of(&es, "es-MX", "MX"), ASSIGNMENT_TIER_LANGUAGE_REGION);
    assert_int_equal(assignment_tier_of(&es, "ES", "es"), ASSIGNMENT_TIER_LANGUAGE_REGION);
    assert_int_equal(assignment_tier_of(&es, "es", "AR"), ASSIGNMENT_TIER_LANGUAGE);
    assert_int_equal(assignment_tier_of(&es, "de", "MX"), ASSIGNMENT_TIER_INTERPRETER_REGION);
    assert_int_equal(assignment_tier_of(&es, "de", "DE"), ASSIGNMENT_TIER_INTERPRETER);
    assert_int_equal(assignment_tier_of(&es, "en", "GB"), ASSIGNMENT_TIER_LANGUAGE);
    assert_int_equal(assignment_tier_of(&tr, "de", "TR"), ASSIGNMENT_TIER_NONE);
    assert_int_equal(assignment_tier_of(&tr, "tr-TR", "TR"), ASSIGNMENT_TIER_LANGUAGE);
    assert_int_equal(assignment_tier_of(&en, "", ""), ASSIGNMENT_TIER_INTERPRETER);
    assert_int_equal(assignment_tier_of(&en, NULL, "gb"), ASSIGNMENT_TIER_INTERPRETER_REGION);
    /* "eng" is not English's primary subtag: no fallback. */
    static const char *const ENG[] = {"eng"};
    struct assignment_manager eng = mgr("eng", ENG, 1, NULL, 0);
    assert_int_equal(assignment_tier_of(&eng, "de", ""), ASSIGNMENT_TIER_NONE);
}

static void test_candidates(void **state)
{
    (void)state;
    struct assignment_manager roster[5] = {
        mgr("es", ES_EN, 2, C_ES, 2), mgr("tr", TR, 1, NULL, 0), mgr("en", EN, 1, C_GB, 1),
        mgr("off", ES_EN, 2, NULL, 0), mgr("zero", ES_EN, 2, NULL, 0)};
    roster[2].urgent_capable = true;
    roster[3].active = false;   /* inactive: no new case */
    roster[4].capacity = 0;     /* no capacity: no new case */
    roster[0].active_cases = 9; /* load is the script's business: still a candidate */
    struct assignment_candidate out[5];
    struct assignment_case routine = {ASSIGNMENT_PRIORITY_ROUTINE, "de", "DE", NULL};

    size_t n = assignment_candidates(&routine, roster, 5, out);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].index, 0);
    assert_int_equal(out[0].tier, ASSIGNMENT_TIER_INTERPRETER);
    assert_true(out[0].urgent_ok);
    assert_int_equal(out[1].index, 1);
    assert_int_equal(out[1].tier, ASSIGNMENT_TIER_NONE); /* kept: may be the returning manager */
    assert_int_equal(out[2].index, 2);

    /* URGENT: non-urgent-capable managers stay only as evidence for NO_URGENT_ROOM. */
    struct assignment_case urgent = {ASSIGNMENT_PRIORITY_URGENT, "de", "DE", NULL};
    n = assignment_candidates(&urgent, roster, 5, out);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].index, 0);
    assert_false(out[0].urgent_ok);
    assert_int_equal(out[1].index, 2);
    assert_true(out[1].urgent_ok);

    /* The JSON the script reads. */
    const char *names[5] = {"Lucía Ejemplo", NULL, "Avery Example", "x", "y"};
    const char *emails[5] = {"lucia@example.org", NULL, "avery@example.org", "x", "y"};
    char *text = NULL;
    assert_int_equal(assignment_candidates_json(&routine, roster, names, emails, 5, &text), CF_OK);
    json_t *arr = json_loads(text, 0, NULL);
    free(text);
    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), 3);
    json_t *c0 = json_array_get(arr, 0), *c1 = json_array_get(arr, 1);
    assert_string_equal(json_string_value(json_object_get(c0, "id")), "es");
    assert_int_equal(json_integer_value(json_object_get(c0, "tier")), 3);
    assert_int_equal(json_integer_value(json_object_get(c0, "cap")), 5);
    assert_int_equal(json_integer_value(json_object_get(c0, "u")), 1);
    assert_string_equal(json_string_value(json_object_get(c0, "name")), "Lucía Ejemplo");
    assert_string_equal(json_string_value(json_object_get(c0, "email")), "lucia@example.org");
    assert_string_equal(json_string_value(json_object_get(c1, "name")), "tr"); /* no name: id */
    assert_string_equal(json_string_value(json_object_get(c1, "email")), "");
    json_decref(arr);

    /* An empty roster is an empty list, not an error. */
    assert_int_equal(assignment_candidates_json(&routine, NULL, NULL, NULL, 0, &text), CF_OK);
    assert_string_equal(text, "[]");
    free(text);
}

static void test_roster_build(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *entries = json_loads(
        "{\"cm-a\": {\"manager_id\": \"cm-a\", \"name\": \"A\", \"email\": \"a@example.org\","
        "  \"languages\": [\"es\", \"en\"], \"countries\": [\"ES\"], \"capacity\": 3,"
        "  \"urgent_capable\": true, \"active\": true},"
        " \"cm-b\": {\"manager_id\": \"cm-b\", \"name\": \"B\", \"email\": \"b@example.org\","
        "  \"languages\": [\"tr\"], \"capacity\": 2, \"active\": false},"
        " \"cm-c\": {\"manager_id\": \"cm-c\", \"name\": \"C\", \"email\": \"c@example.org\","
        "  \"languages\": [], \"capacity\": 1},"
        " \"cm-bad\": {\"manager_id\": \"cm-bad\", \"name\": \"No email\", \"capacity\": 1}}",
        0, &jerr);
    assert_non_null(entries);
    struct assignment_roster r;
    char err[256];
    assert_int_equal(assignment_roster_build(entries, &r, err, sizeof(err)), CF_OK);
    /* The roster holds its own copy: the view may change the entries at once. */
    json_object_clear(entries);
    json_decref(entries);
    assert_int_equal(r.count, 3);
    assert_int_equal(r.skipped, 1);
    bool seen_a = false, seen_b = false, seen_c = false;
    for (size_t i = 0; i < r.count; i++) {
        const struct assignment_manager *m = &r.managers[i];
        assert_int_equal(m->active_cases, 0);
        assert_true(m->last_assigned_ms == ASSIGNMENT_NEVER_ASSIGNED);
        if (strcmp(m->id, "cm-a") == 0) {
            seen_a = true;
            assert_int_equal(m->nlanguages, 2);
            assert_string_equal(m->languages[1], "en");
            assert_int_equal(m->ncountries, 1);
            assert_string_equal(m->countries[0], "ES");
            assert_int_equal(m->capacity, 3);
            assert_true(m->urgent_capable && m->active);
            assert_string_equal(r.names[i], "A");
            assert_string_equal(r.emails[i], "a@example.org");
        } else if (strcmp(m->id, "cm-b") == 0) {
            seen_b = true;
            assert_false(m->active);
            assert_false(m->urgent_capable);
            assert_int_equal(m->ncountries, 0); /* absent: none */
        } else if (strcmp(m->id, "cm-c") == 0) {
            seen_c = true;
            assert_true(m->active); /* absent: the schema's default */
            assert_int_equal(m->nlanguages, 0);
        }
    }
    assert_true(seen_a && seen_b && seen_c);
    assignment_roster_clear(&r);
    assignment_roster_clear(&r); /* idempotent */
    assert_int_equal(assignment_roster_build(NULL, &r, err, sizeof(err)), CF_OK);
    assert_int_equal(r.count, 0);
    assignment_roster_clear(&r);
}

/* ---- The script's decision, modelled in C over the candidates ---------------------------- */

static bool model_room(const struct assignment_manager *m)
{
    return m->active_cases < m->capacity;
}

/* a before b: smaller tier, lower load (cross-multiplied), longer idle, smaller id. */
static bool model_better(const struct assignment_manager *roster,
                         const struct assignment_candidate *a, const struct assignment_candidate *b)
{
    const struct assignment_manager *ma = &roster[a->index], *mb = &roster[b->index];
    if (a->tier != b->tier)
        return a->tier < b->tier;
    int64_t la = (int64_t)ma->active_cases * mb->capacity;
    int64_t lb = (int64_t)mb->active_cases * ma->capacity;
    if (la != lb)
        return la < lb;
    if (ma->last_assigned_ms != mb->last_assigned_ms)
        return ma->last_assigned_ms < mb->last_assigned_ms;
    return strcmp(ma->id, mb->id) < 0;
}

static struct assignment_choice model(const struct assignment_case *c,
                                      const struct assignment_manager *roster, size_t n)
{
    struct assignment_candidate cands[16];
    struct assignment_choice out = {false, SIZE_MAX, NULL, false, false, ASSIGNMENT_REASON_NO_ROOM};
    size_t k = assignment_candidates(c, roster, n, cands);
    const struct assignment_candidate *pick = NULL;
    for (size_t i = 0; c->previous_manager != NULL && i < k; i++)
        if (strcmp(roster[cands[i].index].id, c->previous_manager) == 0) {
            if (cands[i].urgent_ok && model_room(&roster[cands[i].index])) {
                pick = &cands[i];
                out.returning = true;
                out.reason = ASSIGNMENT_REASON_RETURNING;
            }
            break;
        }
    bool other = false;
    if (pick == NULL) {
        for (size_t i = 0; i < k; i++) {
            if (cands[i].tier > ASSIGNMENT_TIER_INTERPRETER || !model_room(&roster[cands[i].index]))
                continue;
            if (!cands[i].urgent_ok)
                other = true;
            else if (pick == NULL || model_better(roster, &cands[i], pick))
                pick = &cands[i];
        }
        if (pick != NULL)
            out.reason = (enum assignment_reason)(ASSIGNMENT_REASON_LANGUAGE_REGION + pick->tier);
        else if (c->priority == ASSIGNMENT_PRIORITY_URGENT && other)
            out.reason = ASSIGNMENT_REASON_NO_URGENT_ROOM;
    }
    if (pick != NULL) {
        out.assigned = true;
        out.index = pick->index;
        out.manager_id = roster[pick->index].id;
        out.interpreter = pick->tier >= ASSIGNMENT_TIER_INTERPRETER_REGION;
    }
    return out;
}

static uint32_t rng = 12345;
static uint32_t next(uint32_t bound)
{
    rng = rng * 1103515245u + 12345u;
    return (rng >> 8) % bound;
}

static void test_model_agrees_with_reference(void **state)
{
    (void)state;
    static const char *const ids[] = {"a", "b", "B", "a-1", "a.1", "a1", "ab", "b-"};
    static const char *const langs[] = {"en", "es", "es-MX", "tr", "ru", "EN", "de"};
    static const char *const countries[] = {"ES", "MX", "TR", "GB", "mx"};
    static const char *const case_langs[] = {"es", "es-419", "en", "tr", "de", ""};
    static const char *const case_countries[] = {"ES", "MX", "", "GB", "tr"};
    const char *lang_store[8][2], *country_store[8][2];
    for (int iter = 0; iter < 20000; iter++) {
        struct assignment_manager roster[8];
        size_t n = 1 + next(8);
        for (size_t i = 0; i < n; i++) {
            size_t nl = next(3), nc = next(3);
            for (size_t k = 0; k < nl; k++)
                lang_store[i][k] = langs[next(7)];
            for (size_t k = 0; k < nc; k++)
                country_store[i][k] = countries[next(5)];
            roster[i] = mgr(ids[i], lang_store[i], nl, country_store[i], nc);
            roster[i].capacity = (int)next(5);
            roster[i].urgent_capable = next(2) == 0;
            roster[i].active = next(5) != 0;
            roster[i].active_cases = (int)next((uint32_t)roster[i].capacity + 2);
            roster[i].last_assigned_ms =
                next(4) == 0 ? ASSIGNMENT_NEVER_ASSIGNED : 1000 + (int64_t)next(3) * 60000;
        }
        struct assignment_case c = {(enum assignment_priority)next(3), case_langs[next(6)],
                                    case_countries[next(5)], NULL};
        if (next(5) < 2)
            c.previous_manager = next(4) == 0 ? "gone" : ids[next((uint32_t)n)];
        struct assignment_choice want, got = model(&c, roster, n);
        char err[128];
        assert_int_equal(assignment_match(&c, roster, n, &want, err, sizeof(err)), CF_OK);
        if (want.assigned != got.assigned || want.reason != got.reason ||
            want.interpreter != got.interpreter || want.returning != got.returning ||
            (want.assigned && strcmp(want.manager_id, got.manager_id) != 0))
            fail_msg("iteration %d: reference %s/%s, model %s/%s", iter,
                     want.assigned ? want.manager_id : "-", assignment_reason_code(want.reason),
                     got.assigned ? got.manager_id : "-", assignment_reason_code(got.reason));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiers),
        cmocka_unit_test(test_candidates),
        cmocka_unit_test(test_roster_build),
        cmocka_unit_test(test_model_agrees_with_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
