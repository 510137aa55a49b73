/* test_assignment_events.c (unit) — what assignment reads from a CaseValidated and what it
 * writes: the CaseAssigned (the manager, the flags, priority, category and recipient copied,
 * causation = the CaseValidated, a name-based event id that is the same on every emission) and
 * the CasePending (waiting and alert records with their own stable ids); both encode with their
 * schemas. Also the Redis key builders, which refuse anything that is not an id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <avro.h>
#include <jansson.h>
#include <string.h>

#include "assignment_events.h"
#include "assignment_store.h"
#include "avro_convert.h"
#include "schema.h"
#include "uuid.h"

#define CASE_ID "3b4f3a52-7c1e-4f5a-9d2b-8e6f0a1c2d3e"
#define EVENT_ID "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
#define CORRELATION_ID "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
#define PATIENT_KEY "6f1ed002ab5595859014ebf0951522d9c0f2a8e3d4b5c6a7980a1b2c3d4e5f60"
#define T_ASSIGNED 1795000123456LL /* 2026-11-18T...: some fixed time in ms */

static char err[512];

/* A CaseValidated in caseflow's JSON form, as validation writes it. */
static json_t *validated(const char *priority)
{
    json_t *v = json_pack(
        "{s:{s:s, s:s, s:s, s:s, s:s, s:s}, s:s, s:[], s:s, s:s,"
        " s:{s:s, s:s, s:s, s:s, s:s, s:s, s:n, s:b, s:b, s:[]}}",
        "meta", "event_id", EVENT_ID, "case_id", CASE_ID, "occurred_at",
        "2026-11-24T09:30:00.000Z", "producer", "validation/0.1.0", "correlation_id",
        CORRELATION_ID, "causation_id", "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f", "priority",
        priority, "reasons", "category", "CIRRHOSIS", "patient_key", PATIENT_KEY, "recipient",
        "given_name", "Lucía", "family_name", "Ejemplo", "language", "es-MX", "country", "MX",
        "time_zone", "America/Mexico_City", "email", "lucia@example.org", "phone", "consent_email",
        1, "consent_sms", 0, "contact_windows");
    assert_non_null(v);
    return v;
}

static void assert_encodes(const char *schema_name, const json_t *event)
{
    struct cf_schema *s = NULL;
    avro_value_t v;
    if (cf_schema_load(NULL, schema_name, &s, err, sizeof(err)) != CF_OK)
        fail_msg("load %s: %s", schema_name, err);
    assert_int_equal(avro_generic_value_new(cf_schema_iface(s), &v), 0);
    if (cf_avro_from_json(s, cf_schema_root(s), event, &v, err, sizeof(err)) != CF_OK) {
        char *text = json_dumps(event, JSON_COMPACT);
        fail_msg("%s from JSON: %s\n%s", schema_name, err, text);
    }
    avro_value_decref(&v);
    cf_schema_free(s);
}

static const char *meta_str(const json_t *event, const char *key)
{
    return json_string_value(json_object_get(json_object_get(event, "meta"), key));
}

static void test_input_parse(void **state)
{
    (void)state;
    json_t *v = validated("URGENT");
    struct assignment_input in;
    assert_int_equal(assignment_input_parse(v, &in, err, sizeof(err)), CF_OK);
    assert_string_equal(in.case_id, CASE_ID);
    assert_string_equal(in.event_id, EVENT_ID);
    assert_string_equal(in.correlation_id, CORRELATION_ID);
    assert_string_equal(in.patient_key, PATIENT_KEY);
    assert_string_equal(in.language, "es-MX");
    assert_string_equal(in.country, "MX");
    assert_int_equal(in.priority, ASSIGNMENT_PRIORITY_URGENT);
    struct assignment_case c = assignment_input_case(&in);
    assert_int_equal(c.priority, ASSIGNMENT_PRIORITY_URGENT);
    assert_string_equal(c.language, "es-MX");
    assert_null(c.previous_manager);

    /* Each required field, taken away, is named. */
    static const struct {
        const char *path;
        const char *expect;
    } broken[] = {
        {"meta.case_id", "$.meta.case_id"}, {"meta.event_id", "$.meta.event_id"},
        {"patient_key", "$.patient_key"},   {"recipient", "$.recipient"},
        {"priority", "$.priority"},         {"category", "$.category"},
    };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        json_t *b = json_deep_copy(v);
        const char *dot = strchr(broken[i].path, '.');
        if (dot != NULL)
            json_object_set_new(json_object_get(b, "meta"), dot + 1, json_string("not-a-uuid"));
        else
            json_object_del(b, broken[i].path);
        err[0] = '\0';
        assert_int_equal(assignment_input_parse(b, &in, err, sizeof(err)), CF_EINVAL);
        assert_non_null(strstr(err, broken[i].expect));
        json_decref(b);
    }
    json_t *b = json_deep_copy(v);
    json_object_set_new(b, "priority", json_string("SOON"));
    assert_int_equal(assignment_input_parse(b, &in, err, sizeof(err)), CF_EINVAL);
    json_decref(b);
    json_decref(v);
}

static void test_case_assigned(void **state)
{
    (void)state;
    json_t *v = validated("HIGH");
    json_t *event = NULL;
    struct assignment_decision d = {"cm-lucia", "Lucía Ejemplo", "lucia.ejemplo@example.org",
                                    true, true, T_ASSIGNED};
    assert_int_equal(assignment_build_assigned(v, &d, "assignment/9.9.9", &event, err, sizeof(err)),
                     CF_OK);
    assert_encodes(ASSIGNMENT_ASSIGNED_TYPE, event);

    char expected_id[CF_UUID_LEN + 1];
    cf_uuid_from_name("caseflow.case.assigned\n" CASE_ID,
                      strlen("caseflow.case.assigned\n" CASE_ID), expected_id);
    assert_string_equal(meta_str(event, "event_id"), expected_id);
    assert_string_equal(meta_str(event, "case_id"), CASE_ID);
    assert_string_equal(meta_str(event, "correlation_id"), CORRELATION_ID);
    assert_string_equal(meta_str(event, "causation_id"), EVENT_ID);
    assert_string_equal(meta_str(event, "producer"), "assignment/9.9.9");
    char when[32];
    cf_avro_format_millis(T_ASSIGNED, when, sizeof(when));
    assert_string_equal(meta_str(event, "occurred_at"), when);
    assert_string_equal(json_string_value(json_object_get(event, "manager_id")), "cm-lucia");
    assert_string_equal(json_string_value(json_object_get(event, "manager_name")),
                        "Lucía Ejemplo");
    assert_string_equal(json_string_value(json_object_get(event, "manager_email")),
                        "lucia.ejemplo@example.org");
    assert_true(json_is_true(json_object_get(event, "interpreter_needed")));
    assert_true(json_is_true(json_object_get(event, "returning_patient")));
    assert_string_equal(json_string_value(json_object_get(event, "priority")), "HIGH");
    assert_string_equal(json_string_value(json_object_get(event, "category")), "CIRRHOSIS");
    assert_true(json_equal(json_object_get(event, "recipient"), json_object_get(v, "recipient")));
    /* A copy: the event does not share the input's recipient. */
    assert_ptr_not_equal(json_object_get(event, "recipient"), json_object_get(v, "recipient"));
    /* Nothing of the CaseValidated that CaseAssigned does not carry. */
    assert_null(json_object_get(event, "patient_key"));
    assert_null(json_object_get(event, "reasons"));

    /* Built again (a re-emission): the very same record. */
    json_t *again = NULL;
    assert_int_equal(assignment_build_assigned(v, &d, "assignment/9.9.9", &again, err, sizeof(err)),
                     CF_OK);
    assert_true(json_equal(event, again));
    json_decref(again);

    /* Another case: another id. */
    char other[CF_UUID_LEN + 1];
    assignment_assigned_event_id("6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d", other);
    assert_string_not_equal(other, expected_id);
    assert_true(cf_uuid_valid(other));

    struct assignment_decision none = {NULL, "x", "y", false, false, 0};
    json_t *bad = NULL;
    assert_int_equal(assignment_build_assigned(v, &none, "a/1", &bad, err, sizeof(err)), CF_EINVAL);
    assert_null(bad);
    json_decref(event);
    json_decref(v);
}

static void test_case_pending(void **state)
{
    (void)state;
    json_t *v = validated("URGENT");
    json_t *waiting = NULL, *alert = NULL;
    const int64_t queued = T_ASSIGNED, after = 4LL * 3600 * 1000;
    assert_int_equal(assignment_build_pending(v, "NO_URGENT_ROOM", queued, false, after,
                                              "assignment/9.9.9", &waiting, err, sizeof(err)),
                     CF_OK);
    assert_int_equal(assignment_build_pending(v, "NO_URGENT_ROOM", queued, true, after,
                                              "assignment/9.9.9", &alert, err, sizeof(err)),
                     CF_OK);
    assert_encodes(ASSIGNMENT_PENDING_TYPE, waiting);
    assert_encodes(ASSIGNMENT_PENDING_TYPE, alert);
    char since[32], raised[32];
    cf_avro_format_millis(queued, since, sizeof(since));
    cf_avro_format_millis(queued + after, raised, sizeof(raised));

    assert_string_equal(json_string_value(json_object_get(waiting, "service")), "assignment");
    assert_string_equal(json_string_value(json_object_get(waiting, "reason")), "NO_URGENT_ROOM");
    assert_string_equal(json_string_value(json_object_get(waiting, "waiting_since")), since);
    assert_true(json_is_false(json_object_get(waiting, "alert")));
    assert_string_equal(meta_str(waiting, "occurred_at"), since);
    assert_true(json_is_true(json_object_get(alert, "alert")));
    assert_string_equal(json_string_value(json_object_get(alert, "waiting_since")), since);
    assert_string_equal(meta_str(alert, "occurred_at"), raised);
    assert_string_equal(meta_str(alert, "causation_id"), EVENT_ID);
    assert_string_equal(meta_str(alert, "correlation_id"), CORRELATION_ID);
    assert_string_equal(meta_str(alert, "case_id"), CASE_ID);

    /* Stable ids, different for the two records and from the CaseAssigned's. */
    char w[CF_UUID_LEN + 1], a[CF_UUID_LEN + 1], as[CF_UUID_LEN + 1];
    assignment_pending_event_id(CASE_ID, false, w);
    assignment_pending_event_id(CASE_ID, true, a);
    assignment_assigned_event_id(CASE_ID, as);
    assert_string_equal(meta_str(waiting, "event_id"), w);
    assert_string_equal(meta_str(alert, "event_id"), a);
    assert_string_not_equal(w, a);
    assert_string_not_equal(w, as);
    /* No personal data in a record operators watch. */
    char *text = json_dumps(alert, JSON_COMPACT);
    assert_null(strstr(text, "Lucía"));
    assert_null(strstr(text, "example.org"));
    free(text);
    json_decref(waiting);
    json_decref(alert);
    json_decref(v);
}

static void test_keys(void **state)
{
    (void)state;
    char key[ASSIGNMENT_KEY_MAX];
    assert_int_equal(assignment_case_key(CASE_ID, key), CF_OK);
    assert_string_equal(key, "assignment:case:" CASE_ID);
    assert_int_equal(assignment_case_key("cm-ana", key), CF_EINVAL);
    assert_int_equal(assignment_case_key(NULL, key), CF_EINVAL);
    assert_int_equal(assignment_patient_key(PATIENT_KEY, key), CF_OK);
    assert_string_equal(key, "assignment:patient:" PATIENT_KEY);
    /* An email or a name can never become a key. */
    assert_int_equal(assignment_patient_key("lucia@example.org", key), CF_EINVAL);
    assert_int_equal(assignment_patient_key("Lucía Ejemplo", key), CF_EINVAL);
    assert_int_equal(assignment_patient_key("", key), CF_EINVAL);
    char longer[200];
    memset(longer, 'a', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    assert_int_equal(assignment_patient_key(longer, key), CF_EINVAL);
}

static void test_priority_symbols(void **state)
{
    (void)state;
    enum assignment_priority p;
    assert_true(assignment_priority_parse("ROUTINE", &p));
    assert_int_equal(p, ASSIGNMENT_PRIORITY_ROUTINE);
    assert_true(assignment_priority_parse("HIGH", &p));
    assert_int_equal(p, ASSIGNMENT_PRIORITY_HIGH);
    assert_false(assignment_priority_parse("urgent", &p));
    assert_false(assignment_priority_parse(NULL, &p));
    assert_string_equal(assignment_priority_symbol(ASSIGNMENT_PRIORITY_URGENT), "URGENT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_input_parse),   cmocka_unit_test(test_case_assigned),
        cmocka_unit_test(test_case_pending),  cmocka_unit_test(test_keys),
        cmocka_unit_test(test_priority_symbols),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
