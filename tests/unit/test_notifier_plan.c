/* test_notifier_plan.c — what one event asks the notifier to send (services/notifier/plan.h),
 * with the shipped templates: channels by consent and by event, the SMS kept as the email's
 * fallback, skips, the care manager's email, languages, links, ids. No server involved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "catalog.h"
#include "localize.h"
#include "plan.h"
#include "render.h"

#define TEMPLATES CF_TESTS_DIR "/../services/notifier/templates"
#define EVENT_ID "11111111-2222-4333-8444-555555555555"
#define CASE_ID "abcdef01-2345-4678-9abc-def012345678"

struct fixture {
    struct notifier_templates *templates;
    struct notifier_localize *localize;
    struct notifier_planner planner;
};

static int setup(void **state)
{
    static struct fixture f;
    size_t n = 0;
    char err[256] = "";
    const struct notifier_template_spec *catalog = notifier_catalog(&n);
    if (notifier_templates_load(TEMPLATES, catalog, n, &f.templates, err, sizeof(err)) != CF_OK ||
        notifier_localize_new(&f.localize) != CF_OK) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    f.planner.templates = f.templates;
    f.planner.localize = f.localize;
    f.planner.links.patient_base = "https://care.example";
    f.planner.links.console_base = "https://console.example";
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    notifier_templates_free(f->templates);
    notifier_localize_free(f->localize);
    return 0;
}

static json_t *recipient(const char *lang, bool email, bool sms)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:[]}", "given_name", "Lucía",
                     "family_name", "Pérez", "language", lang, "country", "MX", "time_zone",
                     "America/Mexico_City", "email", "lucia@example.org", "phone", "+525512345678",
                     "consent_email", email, "consent_sms", sms, "contact_windows");
}

static json_t *event(json_t *fields, json_t *r)
{
    json_object_set_new(fields, "meta",
                        json_pack("{s:s, s:s, s:s, s:s, s:s, s:n}", "event_id", EVENT_ID, "case_id",
                                  CASE_ID, "occurred_at", "2030-01-01T00:00:00.000Z", "producer",
                                  "test/1", "correlation_id", CASE_ID, "causation_id"));
    if (r != NULL)
        json_object_set_new(fields, "recipient", r);
    return fields;
}

static json_t *plan(void **state, const char *topic, json_t *ev, cf_status want)
{
    struct fixture *f = *state;
    json_t *jobs = json_array();
    char err[256] = "";
    cf_status st = notifier_plan(&f->planner, topic, ev, jobs, err, sizeof(err));
    if (st != want)
        fail_msg("plan of %s: %s (%s), want %s", topic, cf_strerror(st), err, cf_strerror(want));
    json_decref(ev);
    return jobs;
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void assert_id(const json_t *job, const char *channel, const char *audience)
{
    char id[37];
    notifier_plan_id(EVENT_ID, channel, audience, id);
    assert_string_equal(jstr(job, "id"), id);
    assert_string_equal(jstr(job, "channel"), channel);
    assert_string_equal(jstr(job, "audience"), audience);
}

static void test_opened_by_consent(void **state)
{
    /* Both: email, with the SMS kept as its fallback. */
    json_t *jobs =
        plan(state, NOTIFIER_T_OPENED, event(json_object(), recipient("es-MX", 1, 1)), CF_OK);
    assert_int_equal(json_array_size(jobs), 1);
    json_t *mail = json_array_get(jobs, 0);
    assert_id(mail, "EMAIL", "PATIENT");
    assert_string_equal(jstr(mail, "language"), "es");
    assert_string_equal(jstr(mail, "to"), "lucia@example.org");
    assert_string_equal(jstr(mail, "to_name"), "Lucía Pérez");
    assert_non_null(strstr(jstr(mail, "text"), "Lucía"));
    assert_non_null(strstr(jstr(mail, "text"), "CF-ABCDEF01"));
    assert_non_null(jstr(mail, "subject"));
    assert_non_null(jstr(mail, "html"));
    json_t *fb = json_object_get(mail, "fallback");
    assert_non_null(fb);
    assert_id(fb, "SMS", "PATIENT");
    assert_string_equal(jstr(fb, "to"), "+525512345678");
    assert_null(jstr(fb, "html"));
    json_decref(jobs);

    /* SMS only: the SMS itself. */
    jobs = plan(state, NOTIFIER_T_OPENED, event(json_object(), recipient("es", 0, 1)), CF_OK);
    assert_int_equal(json_array_size(jobs), 1);
    assert_id(json_array_get(jobs, 0), "SMS", "PATIENT");
    assert_null(json_object_get(json_array_get(jobs, 0), "fallback"));
    json_decref(jobs);

    /* Neither: one SKIPPED NO_CONSENT. Consent without an address: NO_ADDRESS. */
    jobs = plan(state, NOTIFIER_T_OPENED, event(json_object(), recipient("es", 0, 0)), CF_OK);
    assert_int_equal(json_array_size(jobs), 1);
    assert_string_equal(jstr(json_array_get(jobs, 0), "skip"), "NO_CONSENT");
    assert_null(jstr(json_array_get(jobs, 0), "to"));
    json_decref(jobs);
    json_t *r = recipient("es", 1, 0);
    json_object_set_new(r, "email", json_null());
    jobs = plan(state, NOTIFIER_T_OPENED, event(json_object(), r), CF_OK);
    assert_string_equal(jstr(json_array_get(jobs, 0), "skip"), "NO_ADDRESS");
    json_decref(jobs);
}

static json_t *booking(const char *status)
{
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:n, s:s, s:s, s:s, s:s, s:s}", "status", status,
        "teleconsult_id", "99999999-8888-4777-8666-555555555555", "specialist_id", "sp-1",
        "specialist_name", "Dr. Aydın", "start", "2030-03-05T15:00:00.000Z", "end",
        "2030-03-05T15:45:00.000Z", "previous_start", "patient_time_zone", "America/Mexico_City",
        "specialist_time_zone", "Europe/Istanbul", "join_url", "https://meet.example/j/abc",
        "reschedule_token", "RS_tok-1", "cancel_token", "CX_tok-2");
}

static void test_booking_both_channels(void **state)
{
    json_t *jobs =
        plan(state, NOTIFIER_T_SCHEDULED, event(booking("BOOKED"), recipient("es", 1, 1)), CF_OK);
    assert_int_equal(json_array_size(jobs), 2);
    json_t *mail = json_array_get(jobs, 0), *sms = json_array_get(jobs, 1);
    assert_id(mail, "EMAIL", "PATIENT");
    assert_id(sms, "SMS", "PATIENT");
    assert_null(json_object_get(mail, "fallback"));
    const char *text = jstr(mail, "text");
    /* 15:00Z is 9:00 in Mexico City, in Spanish; 45 minutes; the links with case and token. */
    assert_non_null(strstr(text, "5 de marzo de 2030"));
    assert_non_null(strstr(text, "9:00"));
    assert_non_null(strstr(text, "45"));
    assert_non_null(strstr(text, "https://meet.example/j/abc"));
    assert_non_null(strstr(text, "https://care.example/teleconsult/reschedule?case=" CASE_ID
                                 "&teleconsult=99999999-8888-4777-8666-555555555555&token="
                                 "RS_tok-1"));
    assert_non_null(strstr(text, "/teleconsult/cancel?"));
    assert_non_null(strstr(jstr(mail, "html"), "&amp;token=CX_tok-2"));
    assert_string_equal(jstr(sms, "time_zone"), "America/Mexico_City");
    assert_null(json_object_get(sms, "deliver_by_ms"));
    json_decref(jobs);
}

static void test_reminder_deliver_by(void **state)
{
    json_t *ev = json_pack(
        "{s:s, s:s, s:s, s:s}", "teleconsult_id", "99999999-8888-4777-8666-555555555555", "start",
        "2030-03-05T15:00:00.000Z", "lead", "H1", "join_url", "https://meet.example/j/abc");
    json_t *jobs = plan(state, NOTIFIER_T_REMINDER, event(ev, recipient("en", 1, 1)), CF_OK);
    assert_int_equal(json_array_size(jobs), 2);
    json_t *sms = json_array_get(jobs, 1);
    assert_id(sms, "SMS", "PATIENT");
    /* 2030-03-05T15:00Z */
    assert_int_equal(json_integer_value(json_object_get(sms, "deliver_by_ms")), 1898953200000LL);
    json_decref(jobs);
}

static void test_assigned_manager(void **state)
{
    json_t *ev =
        json_pack("{s:s, s:s, s:s, s:b, s:s, s:b, s:s}", "manager_id", "cm-1", "manager_name",
                  "Casey Manager", "manager_email", "casey@example.org", "interpreter_needed", 1,
                  "priority", "URGENT", "returning_patient", 0, "category", "CIRRHOSIS");
    json_t *jobs = plan(state, NOTIFIER_T_ASSIGNED, event(ev, recipient("tr", 1, 0)), CF_OK);
    assert_int_equal(json_array_size(jobs), 2);
    json_t *patient = json_array_get(jobs, 0), *manager = json_array_get(jobs, 1);
    assert_id(patient, "EMAIL", "PATIENT");
    assert_string_equal(jstr(patient, "language"), "tr");
    assert_non_null(strstr(jstr(patient, "text"), "Casey Manager"));
    assert_id(manager, "EMAIL", "CARE_MANAGER");
    assert_string_equal(jstr(manager, "language"), "en");
    assert_string_equal(jstr(manager, "to"), "casey@example.org");
    assert_non_null(strstr(jstr(manager, "text"), "https://console.example/cases/" CASE_ID));
    /* No medical details, no patient contact data. */
    assert_null(strstr(jstr(manager, "text"), "CIRRHOSIS"));
    assert_null(strstr(jstr(manager, "text"), "irrhosis"));
    assert_null(strstr(jstr(manager, "text"), "lucia@example.org"));
    assert_null(json_object_get(manager, "time_zone"));
    json_decref(jobs);
}

static void test_closed_and_errors(void **state)
{
    /* Closed without a recipient: nobody to tell. */
    json_t *jobs = plan(state, NOTIFIER_T_CLOSED,
                        event(json_pack("{s:s, s:n, s:n, s:n}", "reason", "ERASED", "note_code",
                                        "manager_id", "recipient"),
                              NULL),
                        CF_OK);
    assert_int_equal(json_array_size(jobs), 0);
    json_decref(jobs);
    jobs = plan(
        state, NOTIFIER_T_CLOSED,
        event(json_pack("{s:s, s:n, s:n}", "reason", "NOT_ELIGIBLE", "note_code", "manager_id"),
              recipient("ru", 1, 0)),
        CF_OK);
    assert_int_equal(json_array_size(jobs), 1);
    assert_string_equal(jstr(json_array_get(jobs, 0), "language"), "ru");
    json_decref(jobs);
    /* Not a topic the notifier reads; an event without meta. */
    json_decref(plan(state, "caseflow.case.validated", event(json_object(), recipient("en", 1, 1)),
                     CF_ENOTFOUND));
    json_t *bare = json_pack("{s:o}", "recipient", recipient("en", 1, 1));
    json_decref(plan(state, NOTIFIER_T_OPENED, bare, CF_EINVAL));
    /* A booking whose start is not a time. */
    json_t *bad = booking("BOOKED");
    json_object_set_new(bad, "start", json_string("tomorrow"));
    json_decref(plan(state, NOTIFIER_T_SCHEDULED, event(bad, recipient("en", 1, 1)), CF_EINVAL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opened_by_consent),   cmocka_unit_test(test_booking_both_channels),
        cmocka_unit_test(test_reminder_deliver_by), cmocka_unit_test(test_assigned_manager),
        cmocka_unit_test(test_closed_and_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
