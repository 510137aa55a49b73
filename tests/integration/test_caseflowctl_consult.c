/* test_caseflowctl_consult.c — caseflowctl consult complete, reschedule and cancel against the
 * real stack (deploy/stack up), no scheduler needed: the test itself produces a fresh case's
 * TeleconsultScheduled records (BOOKED, then RESCHEDULED with new tokens, with another case's
 * booking after them) with the real serde, runs the built caseflowctl as an operator does, and
 * reads what it produced on caseflow.teleconsult.completed and .change-requested: the newest
 * booking's teleconsult_id, token and event (as causation), the outcome, sessions,
 * preferred_start, the case's correlation_id, the CloudEvents headers. Then the refusals: usage
 * errors (exit 2) and a case with no booking or a cancelled one (exit 1).
 *
 * The output topics are read with a consumer that starts at their ends, so other runs' records
 * do not count; records are picked by the event id caseflowctl printed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "avro_convert.h"
#include "avro_serde.h"
#include "child.h"
#include "clock.h"
#include "cloudevents.h"
#include "config.h"
#include "kafka.h"
#include "registry.h"
#include "test_env.h"
#include "uuid.h"

#define CTL CF_BINARY_DIR "/tools/caseflowctl/caseflowctl"
#define SCHEDULED "caseflow.teleconsult.scheduled"
#define COMPLETED "caseflow.teleconsult.completed"
#define CHANGE "caseflow.teleconsult.change-requested"

#define CTL_TIMEOUT_MS 60000
#define ARRIVAL_TIMEOUT_MS 30000
#define KAFKA_TIMEOUT_MS 30000

static char run_id[24];
static struct cf_config *config;
static struct cf_registry *registry;
static struct cf_serde *serde;
static struct cf_kafka_consumer *consumer;
static json_t *seen; /* every record read from COMPLETED and CHANGE */

/* The case with a booking moved once, and its newest (RESCHEDULED) record's ids and tokens. */
static char case_a[CF_UUID_LEN + 1];
static char correlation_a[CF_UUID_LEN + 1];
static char teleconsult_a[CF_UUID_LEN + 1];
static char newest_event_a[CF_UUID_LEN + 1];
static char old_token[64], resched_token[64], cancel_token[64];
/* A case whose newest record is CANCELLED. */
static char case_cancelled[CF_UUID_LEN + 1];

static const struct cf_config_entry table[] = {
    CF_CONFIG_COMMON_ENTRIES,
};

/* ---- helpers ------------------------------------------------------------------------------ */

/* Produces one TeleconsultScheduled of case_id with the real serde and CloudEvents headers;
 * writes its event id into event_id. Tokens NULL for CANCELLED. */
static void produce_scheduled(struct cf_kafka_producer *producer, const char *case_id,
                              const char *correlation_id, const char *status,
                              const char *teleconsult_id, const char *rtoken, const char *ctoken,
                              char event_id[CF_UUID_LEN + 1])
{
    char err[1024], now[40];
    unsigned char *buf = NULL;
    size_t len = 0;
    struct cf_cloudevent ce;

    assert_int_equal(cf_uuid_v4(event_id), CF_OK);
    cf_avro_format_millis(cf_clock_wall_ms(), now, sizeof(now));
    bool cancelled = strcmp(status, "CANCELLED") == 0;
    json_t *rec = json_pack(
        "{s:{s:s, s:s, s:s, s:s, s:s, s:n}, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:o, "
        "s:o, s:o, s:{s:s, s:s, s:s, s:s, s:s}}",
        "meta", "event_id", event_id, "case_id", case_id, "occurred_at", now, "producer", "test/0",
        "correlation_id", correlation_id, "causation_id", "status", status, "teleconsult_id",
        teleconsult_id, "specialist_id", "sp-consult-test", "specialist_name", "Dr Placeholder",
        "start", "2026-12-10T10:00:00.000Z", "end", "2026-12-10T10:30:00.000Z", "previous_start",
        strcmp(status, "RESCHEDULED") == 0 ? json_string("2026-12-09T10:00:00.000Z") : json_null(),
        "patient_time_zone", "Europe/Madrid", "specialist_time_zone", "America/New_York",
        "join_url", cancelled ? json_null() : json_string("https://video.example/j/test"),
        "reschedule_token", rtoken != NULL ? json_string(rtoken) : json_null(), "cancel_token",
        ctoken != NULL ? json_string(ctoken) : json_null(), "recipient", "given_name", "Ada",
        "family_name", "Placeholder", "language", "en", "country", "ES", "time_zone",
        "Europe/Madrid");
    assert_non_null(rec);
    if (cf_serde_encode_json(serde, SCHEDULED, rec, &buf, &len, err, sizeof(err)) != CF_OK)
        fail_msg("encode TeleconsultScheduled: %s", err);
    assert_int_equal(cf_cloudevent_from_json(&ce, "scheduler",
                                             "caseflow.event.TeleconsultScheduled", rec, err,
                                             sizeof(err)),
                     CF_OK);
    if (cf_kafka_produce_sync(producer, SCHEDULED, case_id, strlen(case_id), buf, len, ce.headers,
                              CF_CE_HEADER_COUNT, KAFKA_TIMEOUT_MS, err, sizeof(err)) != CF_OK)
        fail_msg("produce %s: %s", SCHEDULED, err);
    free(buf);
    json_decref(rec);
}

/* Runs caseflowctl with args (NULL-terminated, after the program); returns its exit status and
 * output (stdout and stderr; the caller frees). */
static int run_ctl(const char *const *args, char **out)
{
    char out_path[128];
    char *argv[16];
    size_t n = 0;
    argv[n++] = CTL;
    for (; args[n - 1] != NULL; n++) {
        assert_true(n < 15);
        argv[n] = (char *)args[n - 1];
    }
    argv[n] = NULL;
    (void)snprintf(out_path, sizeof(out_path), "/tmp/test-consult-out-%s-XXXXXX", run_id);
    int fd = mkstemp(out_path);
    assert_true(fd >= 0);
    close(fd);
    int status = cf_test_wait_child(cf_test_spawn(CTL, argv, NULL, out_path), CTL_TIMEOUT_MS);
    *out = cf_test_slurp(out_path);
    unlink(out_path);
    return status;
}

/* Runs caseflowctl, which must succeed and print its one result line; returns that line parsed
 * (the caller decrefs). The output must not show a token or the patient's name. */
static json_t *run_ok(const char *const *args)
{
    char *out = NULL;
    int status = run_ctl(args, &out);
    if (status != 0)
        fail_msg("caseflowctl %s %s: status %d\n%s", args[0], args[1], status, out);
    const char *line = strstr(out, "{\"topic\"");
    if (line == NULL)
        fail_msg("no result line in:\n%s", out);
    json_error_t jerr;
    json_t *result = json_loadb(line, strcspn(line, "\n"), 0, &jerr);
    if (result == NULL)
        fail_msg("result line is not JSON (%s):\n%s", jerr.text, out);
    if (strstr(out, resched_token) != NULL || strstr(out, cancel_token) != NULL ||
        strstr(out, "bad-token") != NULL || strstr(out, "Placeholder") != NULL)
        fail_msg("caseflowctl printed a token or personal data:\n%s", out);
    free(out);
    return result;
}

/* Runs caseflowctl, which must fail with status want and say expect. */
static void run_fails(const char *const *args, int want, const char *expect)
{
    char *out = NULL;
    int status = run_ctl(args, &out);
    if (status != want)
        fail_msg("caseflowctl %s %s: status %d, expected %d\n%s", args[0], args[1], status, want,
                 out);
    if (strstr(out, expect) == NULL)
        fail_msg("the error does not say \"%s\":\n%s", expect, out);
    assert_null(strstr(out, "{\"topic\""));
    free(out);
}

static bool decode_all(const char *topic)
{
    (void)topic;
    return true;
}

/* The record on topic whose meta.event_id is event_id, waiting up to ARRIVAL_TIMEOUT_MS. */
static const json_t *wait_for(const char *topic, const char *event_id)
{
    int64_t deadline = cf_clock_mono_ms() + ARRIVAL_TIMEOUT_MS;
    for (;;) {
        size_t i;
        const json_t *rec;
        json_array_foreach(seen, i, rec)
        {
            const json_t *meta = json_object_get(json_object_get(rec, "value"), "meta");
            const char *id = json_string_value(json_object_get(meta, "event_id"));
            if (id != NULL && strcmp(id, event_id) == 0) {
                assert_string_equal(json_string_value(json_object_get(rec, "topic")), topic);
                return rec;
            }
        }
        if (cf_clock_mono_ms() > deadline)
            fail_msg("event %s did not arrive on %s", event_id, topic);
        cf_test_poll_into(consumer, serde, decode_all, 200, seen);
    }
}

/* Checks what every produced record carries: the case as key and meta.case_id, a fresh event
 * id (the one printed) caused by the newest booking, the case's correlation id, this program as
 * producer, the CloudEvents headers; and the printed line's ids. */
static void assert_envelope(const json_t *rec, const json_t *result, const char *topic,
                            const char *type)
{
    const json_t *value = json_object_get(rec, "value");
    const json_t *meta = json_object_get(value, "meta");
    const json_t *headers = json_object_get(rec, "headers");
    const char *event_id = json_string_value(json_object_get(result, "event_id"));

    assert_string_equal(json_string_value(json_object_get(result, "topic")), topic);
    assert_string_equal(json_string_value(json_object_get(result, "case_id")), case_a);
    assert_string_equal(json_string_value(json_object_get(result, "teleconsult_id")),
                        teleconsult_a);
    assert_string_equal(json_string_value(json_object_get(rec, "key")), case_a);
    assert_string_equal(json_string_value(json_object_get(meta, "case_id")), case_a);
    assert_string_equal(json_string_value(json_object_get(meta, "correlation_id")), correlation_a);
    assert_string_equal(json_string_value(json_object_get(meta, "causation_id")), newest_event_a);
    assert_true(cf_uuid_valid(event_id));
    assert_string_not_equal(event_id, newest_event_a);
    assert_non_null(strstr(json_string_value(json_object_get(meta, "producer")), "caseflowctl/"));
    assert_string_equal(json_string_value(json_object_get(headers, "ce_id")), event_id);
    assert_string_equal(json_string_value(json_object_get(headers, "ce_type")), type);
    assert_string_equal(json_string_value(json_object_get(headers, "ce_source")),
                        "/caseflow/caseflowctl");
    assert_string_equal(json_string_value(json_object_get(headers, "content-type")),
                        "application/avro");
    assert_string_equal(json_string_value(json_object_get(value, "teleconsult_id")), teleconsult_a);
}

/* ---- fixtures ----------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    char err[512], ignored[CF_UUID_LEN + 1];
    struct cf_kafka_producer *producer = NULL;

    cf_test_run_id(run_id, sizeof(run_id));
    if (cf_test_service_clients(table, sizeof(table) / sizeof(table[0]), &config, &registry,
                                &serde) != 0)
        return -1;
    /* The topics and subjects may not exist yet on a fresh stack. */
    const char *create[] = {"topics", "create", NULL};
    const char *reg[] = {"schemas", "register", NULL};
    free(cf_test_ctl(CTL, create, "/tmp/test-consult-ctl-XXXXXX", CTL_TIMEOUT_MS));
    free(cf_test_ctl(CTL, reg, "/tmp/test-consult-ctl-XXXXXX", CTL_TIMEOUT_MS));
    const char *topics[] = {COMPLETED, CHANGE};
    if ((consumer = cf_test_consumer_at_end(config, topics, 2)) == NULL ||
        (seen = json_array()) == NULL)
        return -1;

    if (cf_kafka_producer_new(config, NULL, KAFKA_TIMEOUT_MS, &producer, err, sizeof(err)) !=
        CF_OK) {
        fprintf(stderr, "producer: %s\n", err);
        return -1;
    }
    char other_case[CF_UUID_LEN + 1], other_corr[CF_UUID_LEN + 1], other_tc[CF_UUID_LEN + 1];
    char corr_c[CF_UUID_LEN + 1], tc_c[CF_UUID_LEN + 1];
    if (cf_uuid_v4(case_a) != CF_OK || cf_uuid_v4(correlation_a) != CF_OK ||
        cf_uuid_v4(teleconsult_a) != CF_OK || cf_uuid_v4(case_cancelled) != CF_OK ||
        cf_uuid_v4(other_case) != CF_OK || cf_uuid_v4(other_corr) != CF_OK ||
        cf_uuid_v4(other_tc) != CF_OK || cf_uuid_v4(corr_c) != CF_OK || cf_uuid_v4(tc_c) != CF_OK)
        return -1;
    (void)snprintf(old_token, sizeof(old_token), "rt-old-%s", run_id);
    (void)snprintf(resched_token, sizeof(resched_token), "rt-new-%s", run_id);
    (void)snprintf(cancel_token, sizeof(cancel_token), "ct-new-%s", run_id);
    /* Case A: booked, then moved with new tokens (the teleconsult_id stays); then another
     * case's booking, which must not be taken for A's. */
    produce_scheduled(producer, case_a, correlation_a, "BOOKED", teleconsult_a, old_token, "ct-old",
                      ignored);
    produce_scheduled(producer, case_a, correlation_a, "RESCHEDULED", teleconsult_a, resched_token,
                      cancel_token, newest_event_a);
    produce_scheduled(producer, other_case, other_corr, "BOOKED", other_tc, "rt-other", "ct-other",
                      ignored);
    /* Case C: booked, then cancelled. */
    produce_scheduled(producer, case_cancelled, corr_c, "BOOKED", tc_c, "rt-c", "ct-c", ignored);
    produce_scheduled(producer, case_cancelled, corr_c, "CANCELLED", tc_c, NULL, NULL, ignored);
    cf_kafka_producer_free(producer);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_test_service_teardown(-1, consumer, seen, serde, registry, config);
    return 0;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_complete_eligible(void **state)
{
    (void)state;
    const char *args[] = {"consult",           "complete", case_a,         "--outcome", "eligible",
                          "--sessions",        "2",        "--follow-ups", "2",         "--note",
                          "TESTS_LIVER_PANEL", NULL};
    json_t *result = run_ok(args);
    const json_t *rec = wait_for(COMPLETED, json_string_value(json_object_get(result, "event_id")));
    assert_envelope(rec, result, COMPLETED, "caseflow.event.TeleconsultCompleted");
    const json_t *value = json_object_get(rec, "value");
    assert_string_equal(json_string_value(json_object_get(value, "outcome")), "ELIGIBLE");
    assert_int_equal(json_integer_value(json_object_get(value, "sessions_planned")), 2);
    assert_int_equal(json_integer_value(json_object_get(value, "follow_ups_planned")), 2);
    assert_string_equal(json_string_value(json_object_get(value, "notes_code")),
                        "TESTS_LIVER_PANEL");
    json_decref(result);

    /* --follow-ups defaults to 1. */
    const char *one[] = {"consult",  "complete",   case_a, "--outcome",
                         "eligible", "--sessions", "1",    NULL};
    result = run_ok(one);
    rec = wait_for(COMPLETED, json_string_value(json_object_get(result, "event_id")));
    value = json_object_get(rec, "value");
    assert_int_equal(json_integer_value(json_object_get(value, "sessions_planned")), 1);
    assert_int_equal(json_integer_value(json_object_get(value, "follow_ups_planned")), 1);
    assert_true(json_is_null(json_object_get(value, "notes_code")));
    json_decref(result);
}

static void test_complete_other_outcomes(void **state)
{
    (void)state;
    static const char *const words[] = {"not-eligible", "needs-tests", "no-show"};
    static const char *const symbols[] = {"NOT_ELIGIBLE", "NEEDS_TESTS", "NO_SHOW"};
    for (size_t i = 0; i < 3; i++) {
        const char *args[] = {"consult", "complete", case_a, "--outcome", words[i], NULL};
        json_t *result = run_ok(args);
        const json_t *rec =
            wait_for(COMPLETED, json_string_value(json_object_get(result, "event_id")));
        assert_envelope(rec, result, COMPLETED, "caseflow.event.TeleconsultCompleted");
        const json_t *value = json_object_get(rec, "value");
        assert_string_equal(json_string_value(json_object_get(value, "outcome")), symbols[i]);
        assert_int_equal(json_integer_value(json_object_get(value, "sessions_planned")), 0);
        assert_int_equal(json_integer_value(json_object_get(value, "follow_ups_planned")), 0);
        json_decref(result);
    }
}

static void test_reschedule(void **state)
{
    (void)state;
    const char *args[] = {"reschedule", case_a, "--after", "2026-12-01T09:00:00Z", NULL};
    json_t *result = run_ok(args);
    const json_t *rec = wait_for(CHANGE, json_string_value(json_object_get(result, "event_id")));
    assert_envelope(rec, result, CHANGE, "caseflow.event.TeleconsultChangeRequested");
    const json_t *value = json_object_get(rec, "value");
    assert_string_equal(json_string_value(json_object_get(value, "action")), "RESCHEDULE");
    /* The newest booking's token, not the first one's. */
    assert_string_equal(json_string_value(json_object_get(value, "token")), resched_token);
    assert_string_equal(json_string_value(json_object_get(value, "preferred_start")),
                        "2026-12-01T09:00:00.000Z");
    json_decref(result);

    /* Without --after: the next suitable slot. The case id as an operator may paste it, in
     * upper case: the record is still the case's, keyed in lower case. */
    char upper[CF_UUID_LEN + 1];
    for (size_t i = 0; i <= CF_UUID_LEN; i++)
        upper[i] = (char)toupper((unsigned char)case_a[i]);
    const char *next[] = {"reschedule", upper, NULL};
    result = run_ok(next);
    rec = wait_for(CHANGE, json_string_value(json_object_get(result, "event_id")));
    assert_envelope(rec, result, CHANGE, "caseflow.event.TeleconsultChangeRequested");
    value = json_object_get(rec, "value");
    assert_string_equal(json_string_value(json_object_get(value, "token")), resched_token);
    assert_true(json_is_null(json_object_get(value, "preferred_start")));
    json_decref(result);
}

static void test_cancel(void **state)
{
    (void)state;
    const char *args[] = {"cancel", case_a, NULL};
    json_t *result = run_ok(args);
    const json_t *rec = wait_for(CHANGE, json_string_value(json_object_get(result, "event_id")));
    assert_envelope(rec, result, CHANGE, "caseflow.event.TeleconsultChangeRequested");
    const json_t *value = json_object_get(rec, "value");
    assert_string_equal(json_string_value(json_object_get(value, "action")), "CANCEL");
    assert_string_equal(json_string_value(json_object_get(value, "token")), cancel_token);
    assert_true(json_is_null(json_object_get(value, "preferred_start")));
    json_decref(result);

    /* --token overrides, so a test of the scheduler can send a bad one. */
    const char *bad[] = {"cancel", case_a, "--token", "bad-token", NULL};
    result = run_ok(bad);
    rec = wait_for(CHANGE, json_string_value(json_object_get(result, "event_id")));
    value = json_object_get(rec, "value");
    assert_string_equal(json_string_value(json_object_get(value, "action")), "CANCEL");
    assert_string_equal(json_string_value(json_object_get(value, "token")), "bad-token");
    json_decref(result);
}

static void test_refusals(void **state)
{
    (void)state;
    char unknown[CF_UUID_LEN + 1];
    assert_int_equal(cf_uuid_v4(unknown), CF_OK);

    const char *no_sessions[] = {"consult", "complete", case_a, "--outcome", "eligible", NULL};
    run_fails(no_sessions, 2, "needs --sessions");
    const char *three[] = {"consult",  "complete",   case_a, "--outcome",
                           "eligible", "--sessions", "3",    NULL};
    run_fails(three, 2, "--sessions must be 1 or 2");
    const char *sessions_forbidden[] = {"consult", "complete",   case_a, "--outcome",
                                        "no-show", "--sessions", "1",    NULL};
    run_fails(sessions_forbidden, 2, "eligible only");
    const char *bad_outcome[] = {"consult", "complete", case_a, "--outcome", "maybe", NULL};
    run_fails(bad_outcome, 2, "bad outcome");
    const char *free_text[] = {"consult", "complete", case_a,         "--outcome",
                               "no-show", "--note",   "called twice", NULL};
    run_fails(free_text, 2, "--note must be a code");
    const char *not_uuid[] = {"cancel", "case-1", NULL};
    run_fails(not_uuid, 2, "must be a UUID");
    const char *offset[] = {"reschedule", case_a, "--after", "2026-12-01T09:00:00+01:00", NULL};
    run_fails(offset, 2, "--after must be an ISO 8601 UTC time");

    /* The stack answers: no teleconsultation for the case, or only a cancelled one. */
    const char *unknown_case[] = {"consult", "complete", unknown, "--outcome", "no-show", NULL};
    run_fails(unknown_case, 1, "not found");
    const char *unknown_cancel[] = {"cancel", unknown, NULL};
    run_fails(unknown_cancel, 1, "not found");
    const char *cancelled[] = {"reschedule", case_cancelled, NULL};
    run_fails(cancelled, 1, "is CANCELLED");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_complete_eligible), cmocka_unit_test(test_complete_other_outcomes),
        cmocka_unit_test(test_reschedule),        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
