/* test_intake_journey.c — the stage each case event puts its case in (GET /v1/inquiries/{id}). */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <jansson.h>

#include "journey.h"

static const char *stage_of(const char *topic, json_t *event, char detail[32])
{
    enum intake_stage stage;
    bool known = intake_journey_stage_of(topic, event, &stage, detail);
    json_decref(event);
    return known ? intake_journey_stage_name(stage) : NULL;
}

static void test_each_topic_moves_the_stage(void **state)
{
    (void)state;
    char d[32];
    assert_string_equal(stage_of("caseflow.case.opened", json_object(), d), "validating");
    assert_string_equal(stage_of("caseflow.case.info-requested", json_object(), d),
                        "needs_information");
    assert_string_equal(stage_of("caseflow.case.info-provided", json_object(), d), "validating");
    assert_string_equal(stage_of("caseflow.case.review-requested", json_object(), d),
                        "under_review");
    assert_string_equal(stage_of("caseflow.case.reviewed", json_object(), d), "validating");
    assert_string_equal(stage_of("caseflow.case.validated", json_object(), d), "validated");
    assert_string_equal(d, "");
    assert_string_equal(stage_of("caseflow.case.rejected", json_object(), d), "closed");
    assert_string_equal(d, "rejected");
    assert_string_equal(stage_of("caseflow.case.assigned", json_object(), d), "assigned");
    assert_string_equal(stage_of("caseflow.treatment.booked", json_object(), d),
                        "treatment_booked");
}

static void test_fields_that_decide(void **state)
{
    (void)state;
    char d[32];
    const char *sched = "caseflow.teleconsult.scheduled";
    assert_string_equal(stage_of(sched, json_pack("{s:s}", "status", "BOOKED"), d),
                        "teleconsult_booked");
    assert_string_equal(stage_of(sched, json_pack("{s:s}", "status", "RESCHEDULED"), d),
                        "teleconsult_booked");
    /* Cancelled: back to waiting for a consultation. */
    assert_string_equal(stage_of(sched, json_pack("{s:s}", "status", "CANCELLED"), d), "assigned");
    assert_null(stage_of(sched, json_pack("{s:s}", "status", "UNKNOWN"), d));
    assert_null(stage_of(sched, json_object(), d));

    const char *closed = "caseflow.case.closed";
    assert_string_equal(stage_of(closed, json_pack("{s:s}", "reason", "EXPIRED"), d), "closed");
    assert_string_equal(d, "expired");
    assert_string_equal(stage_of(closed, json_pack("{s:s}", "reason", "TREATMENT_COMPLETED"), d),
                        "closed");
    assert_string_equal(d, "treatment_completed");
    assert_null(stage_of(closed, json_pack("{s:s}", "reason", "UNKNOWN"), d));
    assert_null(stage_of(closed, json_pack("{s:i}", "reason", 3), d));
}

static void test_other_topics_move_nothing(void **state)
{
    (void)state;
    char d[32];
    assert_null(stage_of("caseflow.inquiry.submitted", json_object(), d));
    assert_null(stage_of("caseflow.notification.status", json_object(), d));
    assert_null(stage_of(NULL, json_object(), d));
    /* Every topic intake subscribes to for stages is one that moves a stage. */
    const char *topics[] = {INTAKE_STAGE_TOPICS};
    assert_int_equal(sizeof(topics) / sizeof(topics[0]), INTAKE_STAGE_TOPIC_COUNT);
    json_t *fields = json_pack("{s:s, s:s}", "status", "BOOKED", "reason", "EXPIRED");
    for (size_t i = 0; i < INTAKE_STAGE_TOPIC_COUNT; i++)
        assert_non_null(stage_of(topics[i], json_incref(fields), d));
    json_decref(fields);
    /* Names are the API's: snake_case, in the journey's order. */
    assert_string_equal(intake_journey_stage_name(INTAKE_STAGE_RECEIVED), "received");
    assert_string_equal(intake_journey_stage_name(INTAKE_STAGE_CLOSED), "closed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_topic_moves_the_stage),
        cmocka_unit_test(test_fields_that_decide),
        cmocka_unit_test(test_other_topics_move_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
