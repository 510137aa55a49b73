/* test_validation_case.c — validation's Kafka path without servers: the case state taken from
 * a CaseOpened, the outcome record of each class (encoded against its own schema, so every
 * required field is there), merging a CaseInfoProvided (non-null replaces, reports appended
 * once) and operator decisions mapped to outcomes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <jansson.h>

#include "avro_convert.h"
#include "schema.h"
#include "validation.h"

#define SAMPLE CF_TESTS_DIR "/integration/case_opened.json"
#define EVENT_ID "6fa459ea-ee8a-4ca4-894e-db77e160355e"
#define INFO_EVENT_ID "16fd2706-8baf-433b-82eb-8c7fada847da"
#define NOW_MS 1795000000123LL               /* 2026-11-18T11:06:40.123Z */
#define WAIT_MS (14LL * 24 * 60 * 60 * 1000) /* the default info wait, 14 days */

static char err[1024];

static json_t *load_opened(void)
{
    json_error_t jerr;
    json_t *opened = json_load_file(SAMPLE, 0, &jerr);
    if (opened == NULL)
        fail_msg("%s: %s", SAMPLE, jerr.text);
    return opened;
}

static json_t *report(const char *url)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:s}", "title", "Ultrasound", "url", url, "media_type",
                     "application/pdf", "size_bytes", (json_int_t)12345, "sha256",
                     "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
}

/* Encodes event with the outcome's schema: fails the test naming the field if anything the
 * schema requires is missing or mistyped. */
static void assert_encodes(const char *schema_name, const json_t *event)
{
    struct cf_schema *s = NULL;
    avro_value_t v;
    if (cf_schema_load(NULL, schema_name, &s, err, sizeof(err)) != CF_OK)
        fail_msg("load %s: %s", schema_name, err);
    assert_int_equal(avro_generic_value_new(cf_schema_iface(s), &v), 0);
    cf_status st = cf_avro_from_json(s, cf_schema_root(s), event, &v, err, sizeof(err));
    if (st != CF_OK) {
        char *text = json_dumps(event, JSON_COMPACT);
        fail_msg("%s from JSON: %s\n%s", schema_name, err, text);
    }
    avro_value_decref(&v);
    cf_schema_free(s);
}

/* Evaluates the state's inquiry, builds the outcome, checks it encodes; returns it. */
static json_t *outcome_of(const json_t *state, struct validation_decision *d)
{
    struct validation_result res;
    json_t *event = NULL;
    assert_int_equal(validation_evaluate(json_object_get(state, "inquiry"), NOW_MS, NULL, &res),
                     CF_OK);
    assert_int_equal(validation_decide_evaluated(&res, d), CF_OK);
    struct validation_outcome_params p = {EVENT_ID, "5f0c8a4e-2b1d-4c7e-9a3f-0d6e1b2c3a40", NOW_MS,
                                          VALIDATION_PRODUCER, WAIT_MS};
    assert_int_equal(validation_build_outcome(state, d, &p, &event, err, sizeof(err)), CF_OK);
    assert_encodes(validation_outcome_type(d->outcome), event);
    return event;
}

static json_t *state_of(const json_t *opened)
{
    json_t *state = NULL;
    assert_int_equal(validation_state_from_opened(opened, &state, err, sizeof(err)), CF_OK);
    return state;
}

static const char *first_code(const json_t *event)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(event, "reasons"), 0), "code"));
}

static void test_state_key(void **state)
{
    (void)state;
    char key[VALIDATION_REDIS_KEY_MAX];
    assert_int_equal(validation_state_key("9b2e4f60-7c1a-4d3b-8e5f-a1b2c3d4e5f6", key), CF_OK);
    assert_string_equal(key, "validation:case:9b2e4f60-7c1a-4d3b-8e5f-a1b2c3d4e5f6");
    assert_int_equal(validation_state_key("alex@example.org", key), CF_EINVAL);
    assert_int_equal(validation_state_key(NULL, key), CF_EINVAL);
}

static void test_info_requested(void **state)
{
    (void)state;
    json_t *opened = load_opened(); /* cirrhosis without reports, MELD 17 */
    json_t *before = json_deep_copy(opened);
    json_t *st = state_of(opened);
    assert_true(json_equal(opened, before));
    struct validation_decision d = {0};
    json_t *ev = outcome_of(st, &d);
    assert_int_equal(d.outcome, VALIDATION_OUTCOME_INFO_REQUESTED);
    assert_string_equal(validation_outcome_topic(d.outcome), "caseflow.case.info-requested");
    assert_string_equal(first_code(ev), "REPORTS_MISSING");
    assert_string_equal(json_string_value(json_array_get(json_object_get(ev, "missing"), 0)),
                        "REPORTS");
    assert_string_equal(json_string_value(json_object_get(ev, "priority")), "HIGH");
    /* 14 days after NOW_MS. */
    assert_string_equal(json_string_value(json_object_get(ev, "expires_at")),
                        "2026-12-02T11:06:40.123Z");
    const json_t *meta = json_object_get(ev, "meta");
    assert_string_equal(json_string_value(json_object_get(meta, "event_id")), EVENT_ID);
    assert_string_equal(json_string_value(json_object_get(meta, "case_id")),
                        "9b2e4f60-7c1a-4d3b-8e5f-a1b2c3d4e5f6");
    assert_string_equal(json_string_value(json_object_get(meta, "correlation_id")),
                        "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
    assert_string_equal(json_string_value(json_object_get(meta, "causation_id")),
                        "5f0c8a4e-2b1d-4c7e-9a3f-0d6e1b2c3a40");
    assert_string_equal(json_string_value(json_object_get(meta, "producer")),
                        "validation/" CF_VERSION);
    assert_true(json_equal(json_object_get(ev, "recipient"), json_object_get(opened, "recipient")));
    validation_decision_clear(&d);
    validation_decision_clear(&d); /* idempotent */
    json_decref(ev);
    json_decref(st);
    json_decref(before);
    json_decref(opened);
}

static void test_validated(void **state)
{
    (void)state;
    json_t *opened = load_opened();
    json_t *reports = json_array();
    json_array_append_new(reports, report("https://files.example.org/r/1.pdf"));
    json_object_set_new(json_object_get(opened, "inquiry"), "reports", reports);
    json_t *st = state_of(opened);
    struct validation_decision d = {0};
    json_t *ev = outcome_of(st, &d);
    assert_int_equal(d.outcome, VALIDATION_OUTCOME_VALIDATED);
    assert_string_equal(json_string_value(json_object_get(ev, "priority")), "HIGH");
    assert_string_equal(first_code(ev), "HIGH_MELD");
    assert_string_equal(json_string_value(json_object_get(ev, "category")), "CIRRHOSIS");
    assert_string_equal(json_string_value(json_object_get(ev, "patient_key")),
                        json_string_value(json_object_get(opened, "patient_key")));
    validation_decision_clear(&d);
    json_decref(ev);
    json_decref(st);
    json_decref(opened);
}

static void test_rejected_and_review(void **state)
{
    (void)state;
    json_t *opened = load_opened();
    json_t *inquiry = json_object_get(opened, "inquiry");
    json_object_set_new(json_object_get(inquiry, "consent"), "data_processing", json_false());
    json_t *st = state_of(opened);
    struct validation_decision d = {0};
    json_t *ev = outcome_of(st, &d);
    assert_int_equal(d.outcome, VALIDATION_OUTCOME_REJECTED);
    assert_string_equal(first_code(ev), "CONSENT_MISSING");
    assert_non_null(json_object_get(ev, "recipient"));
    validation_decision_clear(&d);
    json_decref(ev);
    json_decref(st);

    /* A category outside the list, otherwise complete: review. */
    json_object_set_new(json_object_get(inquiry, "consent"), "data_processing", json_true());
    json_object_set_new(json_object_get(inquiry, "condition"), "category", json_string("OTHER"));
    st = state_of(opened);
    ev = outcome_of(st, &d);
    assert_int_equal(d.outcome, VALIDATION_OUTCOME_REVIEW_REQUESTED);
    assert_string_equal(first_code(ev), "CONDITION_NEEDS_REVIEW");
    assert_string_equal(json_string_value(json_object_get(ev, "category")), "OTHER");
    assert_null(json_object_get(ev, "recipient")); /* not in CaseReviewRequested */
    validation_decision_clear(&d);
    json_decref(ev);
    json_decref(st);
    json_decref(opened);
}

static json_t *info_provided(void)
{
    json_t *p = json_pack(
        "{s:{s:s, s:s, s:s, s:s, s:s, s:n}, s:n, s:[], s:n, s:n, s:s, s:i, "
        "s:n, s:n}",
        "meta", "event_id", INFO_EVENT_ID, "case_id", "9b2e4f60-7c1a-4d3b-8e5f-a1b2c3d4e5f6",
        "occurred_at", "2026-11-25T09:00:00.000Z", "producer", "caseflowctl/0.1.0",
        "correlation_id", INFO_EVENT_ID, "causation_id", "contact", "reports", "guardian",
        "date_of_birth", "description", "New description of the liver condition, long enough.",
        "meld_score", 26, "transplant_status", "consent");
    assert_non_null(p);
    json_array_append_new(json_object_get(p, "reports"),
                          report("https://files.example.org/r/1.pdf"));
    return p;
}

static void test_merge_info(void **state)
{
    (void)state;
    json_t *opened = load_opened();
    json_t *st = state_of(opened);
    json_t *provided = info_provided();
    json_t *st_before = json_deep_copy(st), *p_before = json_deep_copy(provided);
    json_t *merged = NULL, *again = NULL;

    assert_int_equal(validation_merge_info(st, provided, &merged, err, sizeof(err)), CF_OK);
    assert_true(json_equal(st, st_before));
    assert_true(json_equal(provided, p_before));
    const json_t *inq = json_object_get(merged, "inquiry");
    const json_t *cond = json_object_get(inq, "condition");
    /* Non-null fields replace, null fields keep the case's value. */
    assert_string_equal(json_string_value(json_object_get(cond, "description")),
                        "New description of the liver condition, long enough.");
    assert_int_equal(json_integer_value(json_object_get(cond, "meld_score")), 26);
    assert_true(json_equal(json_object_get(inq, "contact"),
                           json_object_get(json_object_get(opened, "inquiry"), "contact")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(inq, "patient"), "date_of_birth")),
        "1968-04-12");
    assert_int_equal(json_array_size(json_object_get(inq, "reports")), 1);
    assert_string_equal(json_string_value(json_object_get(merged, "last_event_id")), INFO_EVENT_ID);
    /* The same event applied again (a retried batch) gives the same state. */
    assert_int_equal(validation_merge_info(merged, provided, &again, err, sizeof(err)), CF_OK);
    assert_true(json_equal(again, merged));
    json_decref(again);
    /* Another report is appended after the first. */
    json_array_append_new(json_object_get(provided, "reports"),
                          report("https://files.example.org/r/2.pdf"));
    assert_int_equal(validation_merge_info(merged, provided, &again, err, sizeof(err)), CF_OK);
    const json_t *reports = json_object_get(json_object_get(again, "inquiry"), "reports");
    assert_int_equal(json_array_size(reports), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(reports, 1), "url")),
                        "https://files.example.org/r/2.pdf");

    /* With reports and MELD 26 the case validates as URGENT, and still encodes. */
    struct validation_decision d = {0};
    json_t *ev = outcome_of(again, &d);
    assert_int_equal(d.outcome, VALIDATION_OUTCOME_VALIDATED);
    assert_string_equal(json_string_value(json_object_get(ev, "priority")), "URGENT");
    validation_decision_clear(&d);
    json_decref(ev);
    json_decref(again);

    /* A new contact replaces the block and refreshes the recipient's channels. */
    json_object_set_new(provided, "contact",
                        json_pack("{s:s, s:n, s:b, s:b, s:[]}", "email", "new@example.org", "phone",
                                  "consent_email", 1, "consent_sms", 1, "contact_windows"));
    assert_int_equal(validation_merge_info(merged, provided, &again, err, sizeof(err)), CF_OK);
    const json_t *rcp = json_object_get(again, "recipient");
    assert_string_equal(json_string_value(json_object_get(rcp, "email")), "new@example.org");
    assert_true(json_is_null(json_object_get(rcp, "phone")));
    assert_true(json_is_false(json_object_get(rcp, "consent_sms")));
    assert_string_equal(json_string_value(json_object_get(rcp, "given_name")), "Alex");
    json_decref(again);

    json_decref(merged);
    json_decref(st_before);
    json_decref(p_before);
    json_decref(provided);
    json_decref(st);
    json_decref(opened);
}

/* The decision of a CaseReviewed built from the arguments, on the sample's case (which the
 * rules alone send to INFO_REQUESTED at HIGH). Returns the status; *ev gets the outcome. */
static cf_status review(const char *decision, const char *note, const char *priority,
                        const char *missing, struct validation_decision *d, json_t **ev)
{
    json_t *opened = load_opened();
    json_t *st = state_of(opened);
    struct validation_result res;
    json_t *reviewed =
        json_pack("{s:s, s:s, s:o, s:[], s:o}", "decision", decision, "operator_id", "op-7",
                  "note_code", note != NULL ? json_string(note) : json_null(), "missing",
                  "priority", priority != NULL ? json_string(priority) : json_null());
    if (missing != NULL)
        json_array_append_new(json_object_get(reviewed, "missing"), json_string(missing));
    assert_int_equal(validation_evaluate(json_object_get(st, "inquiry"), NOW_MS, NULL, &res),
                     CF_OK);
    cf_status s = validation_decide_review(reviewed, &res, d, err, sizeof(err));
    *ev = NULL;
    if (s == CF_OK) {
        struct validation_outcome_params p = {EVENT_ID, INFO_EVENT_ID, NOW_MS, VALIDATION_PRODUCER,
                                              WAIT_MS};
        assert_int_equal(validation_build_outcome(st, d, &p, ev, err, sizeof(err)), CF_OK);
        assert_encodes(validation_outcome_type(d->outcome), *ev);
    }
    json_decref(reviewed);
    json_decref(st);
    json_decref(opened);
    return s;
}

static void test_review_decisions(void **state)
{
    (void)state;
    struct validation_decision d = {0};
    json_t *ev = NULL;

    assert_int_equal(review("APPROVE", NULL, NULL, NULL, &d, &ev), CF_OK);
    assert_int_equal(d.outcome, VALIDATION_OUTCOME_VALIDATED);
    assert_string_equal(json_string_value(json_object_get(ev, "priority")), "HIGH");
    assert_string_equal(first_code(ev), "HIGH_MELD");
    validation_decision_clear(&d);
    json_decref(ev);

    assert_int_equal(review("APPROVE", NULL, "URGENT", NULL, &d, &ev), CF_OK);
    assert_int_equal(d.outcome, VALIDATION_OUTCOME_VALIDATED);
    assert_string_equal(json_string_value(json_object_get(ev, "priority")), "URGENT");
    assert_string_equal(first_code(ev), "REVIEW_APPROVED");
    validation_decision_clear(&d);
    json_decref(ev);

    assert_int_equal(review("REJECT", "OUT_OF_SCOPE", NULL, NULL, &d, &ev), CF_OK);
    assert_int_equal(d.outcome, VALIDATION_OUTCOME_REJECTED);
    assert_string_equal(first_code(ev), "OUT_OF_SCOPE");
    validation_decision_clear(&d);
    json_decref(ev);

    assert_int_equal(review("REJECT", NULL, NULL, NULL, &d, &ev), CF_OK);
    assert_string_equal(first_code(ev), "REVIEW_REJECTED");
    validation_decision_clear(&d);
    json_decref(ev);

    assert_int_equal(review("REQUEST_INFO", NULL, NULL, "CONSENT", &d, &ev), CF_OK);
    assert_int_equal(d.outcome, VALIDATION_OUTCOME_INFO_REQUESTED);
    assert_int_equal(json_array_size(json_object_get(ev, "missing")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(ev, "missing"), 0)),
                        "CONSENT");
    assert_string_equal(first_code(ev), "REVIEW_REQUEST_INFO");
    validation_decision_clear(&d);
    json_decref(ev);

    /* Refused: nothing to ask for, an unknown decision, free text as a code. */
    assert_int_equal(review("REQUEST_INFO", NULL, NULL, NULL, &d, &ev), CF_EINVAL);
    assert_int_equal(review("REQUEST_INFO", NULL, NULL, "UNKNOWN", &d, &ev), CF_EINVAL);
    assert_int_equal(review("UNKNOWN", NULL, NULL, NULL, &d, &ev), CF_EINVAL);
    assert_int_equal(review("REJECT", "patient was rude", NULL, NULL, &d, &ev), CF_EINVAL);
    assert_null(strstr(err, "rude"));
}

static void test_bad_inputs(void **state)
{
    (void)state;
    json_t *opened = load_opened();
    json_t *st = NULL, *merged = NULL;
    json_object_set_new(opened, "case_id", json_string("not-a-uuid"));
    assert_int_equal(validation_state_from_opened(opened, &st, err, sizeof(err)), CF_EINVAL);
    assert_null(st);
    json_object_del(opened, "inquiry");
    json_object_set_new(opened, "case_id", json_string("9b2e4f60-7c1a-4d3b-8e5f-a1b2c3d4e5f6"));
    assert_int_equal(validation_state_from_opened(opened, &st, err, sizeof(err)), CF_EINVAL);
    /* A stored state without an inquiry cannot take information. */
    json_t *broken = json_pack("{s:s}", "case_id", "9b2e4f60-7c1a-4d3b-8e5f-a1b2c3d4e5f6");
    json_t *provided = info_provided();
    assert_int_equal(validation_merge_info(broken, provided, &merged, err, sizeof(err)), CF_EINVAL);
    assert_null(merged);
    json_decref(provided);
    json_decref(broken);
    json_decref(opened);
}
/* Which inputs each stage admits: information until the case is decided, a review while a
 * person (patient or operator) is awaited, openings and closings always. */
static void test_stage_admission(void **state)
{
    (void)state;
    const enum validation_stage all[] = {VALIDATION_STAGE_VALIDATING,   VALIDATION_STAGE_NEEDS_INFO,
                                         VALIDATION_STAGE_UNDER_REVIEW, VALIDATION_STAGE_VALIDATED,
                                         VALIDATION_STAGE_REJECTED,     VALIDATION_STAGE_EXPIRING,
                                         VALIDATION_STAGE_CLOSED};
    const bool info_ok[] = {true, true, true, false, false, false, false};
    const bool review_ok[] = {false, true, true, false, false, false, false};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        assert_int_equal(validation_stage_admits(all[i], VALIDATION_INPUT_OPENED, err, sizeof(err)),
                         CF_OK);
        assert_int_equal(validation_stage_admits(all[i], VALIDATION_INPUT_CLOSED, err, sizeof(err)),
                         CF_OK);
        assert_int_equal(
            validation_stage_admits(all[i], VALIDATION_INPUT_INFO_PROVIDED, err, sizeof(err)),
            info_ok[i] ? CF_OK : CF_EINVAL);
        assert_int_equal(
            validation_stage_admits(all[i], VALIDATION_INPUT_REVIEWED, err, sizeof(err)),
            review_ok[i] ? CF_OK : CF_EINVAL);
    }
    assert_int_equal(validation_stage_admits(VALIDATION_STAGE_VALIDATED,
                                             VALIDATION_INPUT_INFO_PROVIDED, err, sizeof(err)),
                     CF_EINVAL);
    assert_string_equal(err, "CaseInfoProvided: the case is VALIDATED, which it no longer "
                             "applies to");
    assert_int_equal(validation_stage_after(VALIDATION_OUTCOME_INFO_REQUESTED),
                     VALIDATION_STAGE_NEEDS_INFO);
    assert_int_equal(validation_stage_after(VALIDATION_OUTCOME_REVIEW_REQUESTED),
                     VALIDATION_STAGE_UNDER_REVIEW);
    assert_int_equal(validation_stage_after(VALIDATION_OUTCOME_VALIDATED),
                     VALIDATION_STAGE_VALIDATED);
    assert_int_equal(validation_stage_after(VALIDATION_OUTCOME_REJECTED),
                     VALIDATION_STAGE_REJECTED);
}

/* The stage and the applied inputs round-trip through the state; the list stays bounded and
 * a retried input is recognised. */
static void test_stage_marks(void **state)
{
    (void)state;
    json_t *opened = load_opened(), *st = NULL;
    enum validation_stage stage = VALIDATION_STAGE_CLOSED;
    char id[CF_UUID_LEN + 1], first[CF_UUID_LEN + 1];
    assert_int_equal(validation_state_from_opened(opened, &st, err, sizeof(err)), CF_OK);
    assert_true(validation_stage_get(st, &stage)); /* none stored yet: VALIDATING */
    assert_int_equal(stage, VALIDATION_STAGE_VALIDATING);
    assert_false(validation_state_applied(st, EVENT_ID));
    assert_int_equal(validation_state_mark(st, VALIDATION_STAGE_NEEDS_INFO, EVENT_ID), 0);
    assert_int_equal(validation_state_mark(st, VALIDATION_STAGE_NEEDS_INFO, EVENT_ID), 0);
    assert_int_equal(json_array_size(json_object_get(st, "applied")), 1);
    assert_true(validation_state_applied(st, EVENT_ID));
    assert_true(validation_stage_get(st, &stage));
    assert_int_equal(stage, VALIDATION_STAGE_NEEDS_INFO);
    assert_string_equal(json_string_value(json_object_get(st, "stage")), "NEEDS_INFO");
    assert_int_equal(validation_state_mark(st, VALIDATION_STAGE_EXPIRING, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(st, "applied")), 1);

    for (int i = 0; i < VALIDATION_APPLIED_MAX; i++) {
        assert_int_equal(cf_uuid_v4(id), CF_OK);
        if (i == 0)
            memcpy(first, id, sizeof(first));
        assert_int_equal(validation_state_mark(st, VALIDATION_STAGE_UNDER_REVIEW, id), 0);
    }
    assert_int_equal(json_array_size(json_object_get(st, "applied")), VALIDATION_APPLIED_MAX);
    assert_false(validation_state_applied(st, EVENT_ID)); /* the oldest went */
    assert_true(validation_state_applied(st, first));
    assert_true(validation_state_applied(st, id));

    json_object_set_new(st, "stage", json_string("SOMEWHERE"));
    assert_false(validation_stage_get(st, &stage));
    json_decref(st);
    json_decref(opened);
}

/* Validation's CaseClosed: encodes with the schema; the recipient only when the patient is to
 * be told (an expiry), none after a rejection (the rejection itself is the message). */
static void test_closed(void **state)
{
    (void)state;
    json_t *opened = load_opened(), *st = NULL, *ev = NULL;
    char expired_id[CF_UUID_LEN + 1], again[CF_UUID_LEN + 1];
    assert_int_equal(validation_state_from_opened(opened, &st, err, sizeof(err)), CF_OK);

    validation_expiry_event_id(INFO_EVENT_ID, expired_id);
    validation_expiry_event_id(INFO_EVENT_ID, again);
    assert_string_equal(expired_id, again);
    assert_string_not_equal(expired_id, INFO_EVENT_ID);
    struct validation_closed_params p = {expired_id, INFO_EVENT_ID, NOW_MS, VALIDATION_PRODUCER,
                                         "EXPIRED",  NULL,          true};
    assert_int_equal(validation_build_closed(st, &p, &ev, err, sizeof(err)), CF_OK);
    assert_encodes("caseflow.event.CaseClosed", ev);
    assert_string_equal(json_string_value(json_object_get(ev, "reason")), "EXPIRED");
    assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "meta"), "event_id")),
                        expired_id);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(ev, "meta"), "causation_id")),
        INFO_EVENT_ID);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(ev, "meta"), "occurred_at")),
        "2026-11-18T11:06:40.123Z");
    assert_true(json_equal(json_object_get(ev, "recipient"), json_object_get(st, "recipient")));
    assert_true(json_is_null(json_object_get(ev, "note_code")));
    json_decref(ev);

    p = (struct validation_closed_params){
        EVENT_ID,   INFO_EVENT_ID,           NOW_MS, VALIDATION_PRODUCER,
        "REJECTED", "NO_PROCESSING_CONSENT", false};
    assert_int_equal(validation_build_closed(st, &p, &ev, err, sizeof(err)), CF_OK);
    assert_encodes("caseflow.event.CaseClosed", ev);
    assert_true(json_is_null(json_object_get(ev, "recipient")));
    assert_string_equal(json_string_value(json_object_get(ev, "note_code")),
                        "NO_PROCESSING_CONSENT");
    json_decref(ev);

    p.reason = NULL;
    assert_int_equal(validation_build_closed(st, &p, &ev, err, sizeof(err)), CF_EINVAL);
    assert_null(ev);
    json_decref(st);
    json_decref(opened);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_key),   cmocka_unit_test(test_info_requested),
        cmocka_unit_test(test_validated),   cmocka_unit_test(test_rejected_and_review),
        cmocka_unit_test(test_merge_info),  cmocka_unit_test(test_review_decisions),
        cmocka_unit_test(test_bad_inputs),  cmocka_unit_test(test_stage_admission),
        cmocka_unit_test(test_stage_marks), cmocka_unit_test(test_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
