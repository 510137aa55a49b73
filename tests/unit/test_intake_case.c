/* test_intake_case.c — intake's pure steps without servers: the CaseOpened record built from a
 * sample inquiry, the keyed identity hashes (stable, per condition, no personal data), and the
 * outcome counters (label values a metric takes; a refused inquiry counted as refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "intake.h"
#include "metrics.h"
#include "normalize.h"

#define SAMPLE CF_TESTS_DIR "/../deploy/samples/inquiry-en-cirrhosis.json"
#define SECRET "unit-test-secret-0123456789abcdef0123456789abcdef"
#define CASE_ID "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
#define EVENT_ID "6fa459ea-ee8a-4ca4-894e-db77e160355e"
#define CAUSE_ID "16fd2706-8baf-433b-82eb-8c7fada847da"

static const unsigned char *secret = (const unsigned char *)SECRET;
static const size_t secret_len = sizeof(SECRET) - 1;

/* The sample wrapped as an InquirySubmitted, normalised as the handler does. */
static json_t *load_submitted(void)
{
    json_error_t jerr;
    json_t *inquiry = json_load_file(SAMPLE, 0, &jerr);
    if (inquiry == NULL)
        fail_msg("%s: %s", SAMPLE, jerr.text);
    struct intake_field_error errors[4];
    size_t nerrors = 0;
    char err[256];
    assert_int_equal(intake_normalize_inquiry(inquiry, err, sizeof(err), errors, 4, &nerrors),
                     CF_OK);
    json_t *submitted = json_pack("{s:{s:s, s:n, s:s, s:s, s:s, s:n}, s:o}", "meta", "event_id",
                                  CAUSE_ID, "case_id", "occurred_at", "2026-11-20T14:05:31.000Z",
                                  "producer", "web/1.0", "correlation_id",
                                  json_string_value(json_object_get(inquiry, "inquiry_id")),
                                  "causation_id", "inquiry", inquiry);
    assert_non_null(submitted);
    return submitted;
}

static const char *str_at(const json_t *obj, const char *k1, const char *k2)
{
    const json_t *v = json_object_get(obj, k1);
    if (k2 != NULL)
        v = json_object_get(v, k2);
    return json_string_value(v);
}

static void test_build_case_opened(void **state)
{
    (void)state;
    json_t *submitted = load_submitted();
    json_t *before = json_deep_copy(submitted);
    const json_t *inquiry = json_object_get(submitted, "inquiry");
    char key[INTAKE_KEY_HEX_LEN + 1], err[256];
    json_t *opened = NULL;

    assert_int_equal(intake_patient_key(secret, secret_len, inquiry, key, err, sizeof(err)), CF_OK);
    struct intake_case_params p = {CASE_ID, EVENT_ID, 1795000000123LL, INTAKE_PRODUCER, key, 0};
    assert_int_equal(intake_build_case_opened(submitted, &p, &opened, err, sizeof(err)), CF_OK);
    assert_true(json_equal(submitted, before)); /* the input is not modified */

    const json_t *meta = json_object_get(opened, "meta");
    assert_string_equal(str_at(meta, "event_id", NULL), EVENT_ID);
    assert_string_equal(str_at(meta, "case_id", NULL), CASE_ID);
    assert_string_equal(str_at(meta, "occurred_at", NULL), "2026-11-18T11:06:40.123Z");
    assert_string_equal(str_at(meta, "producer", NULL), "intake/" CF_VERSION);
    assert_string_equal(str_at(meta, "correlation_id", NULL),
                        "70ca9b5a-5285-48f5-aed5-5a45ceea230a");
    assert_string_equal(str_at(meta, "causation_id", NULL), CAUSE_ID);
    assert_string_equal(str_at(opened, "case_id", NULL), CASE_ID);
    assert_string_equal(str_at(opened, "patient_key", NULL), key);
    assert_int_equal(json_integer_value(json_object_get(opened, "duplicate_count")), 0);
    assert_true(json_equal(json_object_get(opened, "inquiry"), (json_t *)inquiry));
    assert_int_equal(json_object_size(opened), 6);

    const json_t *r = json_object_get(opened, "recipient");
    assert_string_equal(str_at(r, "given_name", NULL), "Alex");
    assert_string_equal(str_at(r, "family_name", NULL), "Example");
    assert_string_equal(str_at(r, "language", NULL), "en");
    assert_string_equal(str_at(r, "country", NULL), "US");
    assert_string_equal(str_at(r, "time_zone", NULL), "America/Chicago");
    assert_string_equal(str_at(r, "email", NULL), "alex.example@example.com");
    assert_string_equal(str_at(r, "phone", NULL), "+15555550123");
    assert_true(json_is_true(json_object_get(r, "consent_email")));
    assert_true(json_is_true(json_object_get(r, "consent_sms")));
    assert_int_equal(json_array_size(json_object_get(r, "contact_windows")), 2);
    assert_string_equal(str_at(json_array_get(json_object_get(r, "contact_windows"), 1),
                               "weekday", NULL),
                        "THURSDAY");
    json_decref(opened);

    /* Without a phone, an SMS consent does not count. */
    json_object_set_new(json_object_get(json_object_get(submitted, "inquiry"), "contact"),
                        "phone", json_null());
    assert_int_equal(intake_build_case_opened(submitted, &p, &opened, err, sizeof(err)), CF_OK);
    r = json_object_get(opened, "recipient");
    assert_true(json_is_null(json_object_get(r, "phone")));
    assert_true(json_is_false(json_object_get(r, "consent_sms")));
    assert_true(json_is_true(json_object_get(r, "consent_email")));
    json_decref(opened);

    /* A record without a cause is refused, naming the field. */
    json_object_del(json_object_get(submitted, "meta"), "event_id");
    assert_int_equal(intake_build_case_opened(submitted, &p, &opened, err, sizeof(err)),
                     CF_EINVAL);
    assert_null(opened);
    assert_non_null(strstr(err, "$.meta.event_id"));

    json_decref(before);
    json_decref(submitted);
}

static bool is_hex64(const char *s)
{
    if (strlen(s) != INTAKE_KEY_HEX_LEN)
        return false;
    for (const char *p = s; *p != '\0'; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

static void test_identity_hashes(void **state)
{
    (void)state;
    char a[INTAKE_KEY_HEX_LEN + 1], b[INTAKE_KEY_HEX_LEN + 1], c[INTAKE_KEY_HEX_LEN + 1];

    /* Stable: the same inputs always give the same hash (a known value pins the format, so a
     * change that would stop folding existing claims shows here). */
    assert_int_equal(intake_fold_key(secret, secret_len, "email", "alex.example@example.com",
                                     "CIRRHOSIS", a),
                     CF_OK);
    assert_int_equal(intake_fold_key(secret, secret_len, "email", "alex.example@example.com",
                                     "CIRRHOSIS", b),
                     CF_OK);
    assert_string_equal(a, b);
    /* HMAC-SHA256 of "fold\nemail\nalex.example@example.com\nCIRRHOSIS", from Python's hmac. */
    assert_string_equal(a, "4ebef62c56ccdcbc5dc2a2121904419e2229c0739320d037bd7997427616d1a1");
    /* Email case does not matter. */
    assert_int_equal(intake_fold_key(secret, secret_len, "email", "Alex.Example@example.com",
                                     "CIRRHOSIS", b),
                     CF_OK);
    assert_string_equal(a, b);
    /* It differs by condition, by kind and by secret. */
    assert_int_equal(intake_fold_key(secret, secret_len, "email", "alex.example@example.com",
                                     "FATTY_LIVER", c),
                     CF_OK);
    assert_string_not_equal(a, c);
    assert_int_equal(intake_fold_key(secret, secret_len, "phone", "alex.example@example.com",
                                     "CIRRHOSIS", c),
                     CF_OK);
    assert_string_not_equal(a, c);
    assert_int_equal(intake_fold_key((const unsigned char *)"another-secret-0123456789abcdef!",
                                     32, "email", "alex.example@example.com", "CIRRHOSIS", c),
                     CF_OK);
    assert_string_not_equal(a, c);
    /* The separator keeps fields apart: moving text between value and category changes it. */
    assert_int_equal(intake_fold_key(secret, secret_len, "email", "a", "bc", b), CF_OK);
    assert_int_equal(intake_fold_key(secret, secret_len, "email", "ab", "c", c), CF_OK);
    assert_string_not_equal(b, c);

    /* The keys an inquiry claims hold ids and hashes only. */
    json_t *submitted = load_submitted();
    const json_t *inquiry = json_object_get(submitted, "inquiry");
    char keys[INTAKE_FOLD_MAX_KEYS][INTAKE_REDIS_KEY_MAX], err[256];
    size_t nkeys = 0;
    assert_int_equal(intake_fold_keys(secret, secret_len, inquiry, keys, &nkeys, err, sizeof(err)),
                     CF_OK);
    assert_int_equal(nkeys, 4);
    assert_string_equal(keys[0], "intake:inquiry:70ca9b5a-5285-48f5-aed5-5a45ceea230a");
    assert_memory_equal(keys[1], "intake:idem:", 12);
    assert_true(is_hex64(keys[1] + 12));
    assert_string_equal(keys[2] + strlen("intake:person:"), a); /* email, CIRRHOSIS */
    for (size_t i = 0; i < nkeys; i++) {
        assert_int_equal(cf_redis_key_check(keys[i], err, sizeof(err)), CF_OK);
        assert_null(strstr(keys[i], "alex"));
        assert_null(strstr(keys[i], "example"));
        assert_null(strstr(keys[i], "5555550123"));
        assert_null(strstr(keys[i], "web-1b747cd9"));
    }

    /* patient_key recognises the person whatever the condition, and holds no contact. */
    char key1[INTAKE_KEY_HEX_LEN + 1], key2[INTAKE_KEY_HEX_LEN + 1];
    assert_int_equal(intake_patient_key(secret, secret_len, inquiry, key1, err, sizeof(err)),
                     CF_OK);
    assert_true(is_hex64(key1));
    assert_string_not_equal(key1, a);
    json_object_set_new(json_object_get(json_object_get(submitted, "inquiry"), "condition"),
                        "category", json_string("HEPATITIS_C"));
    assert_int_equal(intake_patient_key(secret, secret_len, inquiry, key2, err, sizeof(err)),
                     CF_OK);
    assert_string_equal(key1, key2);
    /* ... while the person's fold keys change with the condition. */
    char keys2[INTAKE_FOLD_MAX_KEYS][INTAKE_REDIS_KEY_MAX];
    assert_int_equal(
        intake_fold_keys(secret, secret_len, inquiry, keys2, &nkeys, err, sizeof(err)), CF_OK);
    assert_string_equal(keys[0], keys2[0]);
    assert_string_equal(keys[1], keys2[1]);
    assert_string_not_equal(keys[2], keys2[2]);
    assert_string_not_equal(keys[3], keys2[3]);

    /* Without email the phone identifies the person; without either, only the inquiry. */
    json_t *contact = json_object_get(json_object_get(submitted, "inquiry"), "contact");
    json_object_set_new(contact, "email", json_null());
    assert_int_equal(intake_patient_key(secret, secret_len, inquiry, key2, err, sizeof(err)),
                     CF_OK);
    assert_string_not_equal(key1, key2);
    json_object_set_new(contact, "phone", json_null());
    assert_int_equal(
        intake_fold_keys(secret, secret_len, inquiry, keys2, &nkeys, err, sizeof(err)), CF_OK);
    assert_int_equal(nkeys, 2);

    /* An inquiry id that is not a UUID cannot become a key; the error holds no value. */
    json_object_set_new(json_object_get(submitted, "inquiry"), "inquiry_id",
                        json_string("alex@example.com"));
    assert_int_equal(
        intake_fold_keys(secret, secret_len, inquiry, keys2, &nkeys, err, sizeof(err)),
        CF_EINVAL);
    assert_null(strstr(err, "alex"));
    json_decref(submitted);
}

static void test_outcomes(void **state)
{
    (void)state;
    struct cf_metrics *m = NULL;
    struct intake intake = {0};
    struct cf_kafka_out *out = NULL;
    char err[256] = "";
    assert_int_equal(cf_metrics_new("intake", &m), CF_OK);
    for (int o = 0; o < INTAKE_OUTCOMES; o++) {
        const char *name = intake_outcome_name((enum intake_outcome)o);
        assert_true(cf_metrics_label_value_ok(name));
        assert_string_not_equal(name, "unknown");
        assert_int_equal(cf_metrics_counter_new(m, "caseflow_intake_outcomes_total", "Outcomes.",
                                                "outcome", name, &intake.outcomes[o], err,
                                                sizeof(err)),
                         CF_OK);
    }
    assert_string_equal(intake_outcome_name(INTAKE_OUTCOME_OPENED), "opened");
    assert_string_equal(intake_outcome_name(INTAKE_OUTCOME_FOLDED), "folded");
    assert_string_equal(intake_outcome_name(INTAKE_OUTCOME_REFUSED), "refused");
    assert_string_equal(intake_outcome_name(INTAKE_OUTCOMES), "unknown");

    /* A null value is refused before anything else is touched (no serde, no Redis here). */
    const struct cf_kafka_record in = {INTAKE_INPUT_TOPIC, 0, 7, "k", 1, NULL, 0, NULL, 0, -1};
    assert_int_equal(cf_kafka_out_new(&out), CF_OK);
    assert_int_equal(intake_handle(&intake, &in, out, err, sizeof(err)), CF_EDECODE);
    assert_int_equal(cf_metrics_counter_value(intake.outcomes[INTAKE_OUTCOME_REFUSED]), 1);
    assert_int_equal(cf_metrics_counter_value(intake.outcomes[INTAKE_OUTCOME_OPENED]), 0);
    assert_int_equal(cf_metrics_counter_value(intake.outcomes[INTAKE_OUTCOME_FOLDED]), 0);
    assert_int_equal(cf_kafka_out_count(out), 0);
    cf_kafka_out_free(out);
    cf_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_case_opened),
        cmocka_unit_test(test_identity_hashes),
        cmocka_unit_test(test_outcomes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
