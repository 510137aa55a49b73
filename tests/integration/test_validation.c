/* test_validation.c — caseflow-validation against the real stack (deploy/stack up): CaseOpened
 * records produced with caseflowctl give exactly one outcome each, on the outcome's topic with
 * the rules' reason codes; the info loop (CaseInfoRequested -> provide-info -> CaseValidated)
 * and an operator's review (CaseReviewRequested -> review approve -> CaseValidated) go through
 * Redis; a rejection closes the case; a garbage record, information for an unknown case and
 * information for a case already validated are dead-lettered while the service keeps going;
 * SIGTERM stops it with status 0. A case left waiting for information (a short configured
 * wait) is closed EXPIRED, by the timer's due time in Redis, across a restart of the service,
 * and information arriving after that is refused.
 *
 * Other runs write to the same topics, so the test only looks at records keyed by its own
 * fresh case ids. Every wait is bounded; a child still running at the end is killed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <jansson.h>

#include "avro_serde.h"
#include "child.h"
#include "clock.h"
#include "config.h"
#include "http_client.h"
#include "kafka.h"
#include "registry.h"
#include "test_env.h"
#include "uuid.h"

#define CTL CF_BINARY_DIR "/tools/caseflowctl/caseflowctl"
#define SERVICE CF_BINARY_DIR "/services/caseflow-validation"
#define SAMPLE CF_TESTS_DIR "/integration/case_opened.json"

#define CTL_TIMEOUT_MS 60000
#define EVENT_TIMEOUT_MS 90000 /* the first one: transactions, group join, registry */
#define STOP_TIMEOUT_MS 40000
#define OPS_PORT 18182 /* the service's /healthz, /readyz and /metrics */

#define T_VALIDATED "caseflow.case.validated"
#define T_INFO "caseflow.case.info-requested"
#define T_REVIEW "caseflow.case.review-requested"
#define T_REJECTED "caseflow.case.rejected"
#define T_CLOSED "caseflow.case.closed"
#define T_DLQ "caseflow.dlq.validation"

static const char *const outcome_topics[] = {T_VALIDATED, T_INFO,   T_REVIEW,
                                             T_REJECTED,  T_CLOSED, T_DLQ};
#define NTOPICS (sizeof(outcome_topics) / sizeof(outcome_topics[0]))

static char run_id[24];
static char log_path[128];
static pid_t service_pid = -1;
static struct cf_config *config;
static struct cf_registry *registry;
static struct cf_serde *serde;
static struct cf_kafka_consumer *consumer;
static json_t *seen; /* {"topic", "key", "headers", "value"} of every record read so far */

static const struct cf_config_entry table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
};

/* caseflowctl args... (NULL-terminated); asserts exit 0. */
static void ctl(const char *const *args)
{
    free(cf_test_ctl(CTL, args, "/tmp/test-validation-ctl-XXXXXX", CTL_TIMEOUT_MS));
}

/* Writes doc to a temporary file and runs caseflowctl cmd arg path (arg may be NULL). */
static void ctl_with_file(const char *cmd, const char *arg, const json_t *doc)
{
    char path[] = "/tmp/test-validation-doc-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(json_dump_file(doc, path, 0), 0);
    const char *with_arg[] = {cmd, arg, path, NULL};
    ctl(with_arg);
    unlink(path);
}

static json_t *report(void)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:s}", "title", "Liver ultrasound", "url",
                     "https://files.example.org/reports/us-1.pdf", "media_type", "application/pdf",
                     "size_bytes", (json_int_t)48213, "sha256",
                     "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
}

/* The sample CaseOpened with fresh case, event and inquiry ids; case_id is set. */
static json_t *fresh_case(char case_id[CF_UUID_LEN + 1])
{
    json_error_t jerr;
    json_t *doc = json_load_file(SAMPLE, 0, &jerr);
    if (doc == NULL)
        fail_msg("%s: %s", SAMPLE, jerr.text);
    char event_id[CF_UUID_LEN + 1], inquiry_id[CF_UUID_LEN + 1];
    assert_int_equal(cf_uuid_v4(case_id), CF_OK);
    assert_int_equal(cf_uuid_v4(event_id), CF_OK);
    assert_int_equal(cf_uuid_v4(inquiry_id), CF_OK);
    json_t *meta = json_object_get(doc, "meta");
    json_object_set_new(meta, "event_id", json_string(event_id));
    json_object_set_new(meta, "case_id", json_string(case_id));
    json_object_set_new(meta, "correlation_id", json_string(inquiry_id));
    json_object_set_new(doc, "case_id", json_string(case_id));
    json_object_set_new(json_object_get(doc, "inquiry"), "inquiry_id", json_string(inquiry_id));
    return doc;
}

static bool is_not_dlq(const char *topic)
{
    return strcmp(topic, T_DLQ) != 0;
}

static void read_one(int timeout_ms)
{
    cf_test_poll_into(consumer, serde, is_not_dlq, timeout_ms, seen);
}

/* Records of topic (NULL: any outcome topic but the DLQ) keyed key, read so far. */
static size_t count(const char *topic, const char *key)
{
    size_t n = 0, i;
    json_t *rec;
    json_array_foreach(seen, i, rec)
    {
        const char *t = json_string_value(json_object_get(rec, "topic"));
        if ((topic != NULL ? strcmp(t, topic) == 0 : strcmp(t, T_DLQ) != 0) &&
            strcmp(json_string_value(json_object_get(rec, "key")), key) == 0)
            n++;
    }
    return n;
}

/* The nth (0-based) record of topic keyed key, waiting up to timeout_ms; NULL if none came. */
static const json_t *wait_nth(const char *topic, const char *key, size_t nth, int timeout_ms)
{
    int64_t deadline = cf_clock_mono_ms() + timeout_ms;
    for (;;) {
        size_t i, k = 0;
        json_t *rec;
        json_array_foreach(seen, i, rec)
        {
            if (strcmp(json_string_value(json_object_get(rec, "topic")), topic) == 0 &&
                strcmp(json_string_value(json_object_get(rec, "key")), key) == 0 && k++ == nth)
                return rec;
        }
        if (cf_clock_mono_ms() > deadline)
            return NULL;
        read_one(200);
    }
}

/* Reads for ms more, so that a duplicate output would be seen. */
static void drain(int ms)
{
    int64_t deadline = cf_clock_mono_ms() + ms;
    while (cf_clock_mono_ms() < deadline)
        read_one(100);
}

static const json_t *expect(const char *topic, const char *key, size_t nth)
{
    const json_t *rec = wait_nth(topic, key, nth, EVENT_TIMEOUT_MS);
    if (rec == NULL) {
        char *log = cf_test_slurp(log_path);
        fail_msg("no record %zu on %s for case %s; validation log:\n%s", nth, topic, key, log);
    }
    return rec;
}

static const char *code0(const json_t *rec)
{
    const json_t *reasons = json_object_get(json_object_get(rec, "value"), "reasons");
    return json_string_value(json_object_get(json_array_get(reasons, 0), "code"));
}

static int setup(void **state)
{
    (void)state;
    cf_test_run_id(run_id, sizeof(run_id));
    snprintf(log_path, sizeof(log_path), "/tmp/test-validation-%s.log", run_id);
    if (cf_test_service_clients(table, sizeof(table) / sizeof(table[0]), &config, &registry,
                                &serde) != 0)
        return -1;
    seen = json_array();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_test_service_teardown(service_pid, consumer, seen, serde, registry, config);
    return 0;
}

/* Starts the service with a wait for information of wait_s seconds, checked every 200 ms. */
static void start_with_wait(int wait_s)
{
    static char env[7][160];
    size_t ne = 0;
    if (service_pid > 0) /* left running by a failed test */
        cf_test_kill_child(service_pid);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_INSTANCE_ID=test-validation-%s", run_id);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_LOG_LEVEL=info");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_BATCH_MAX_MS=50");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_VALIDATION_INFO_WAIT_SECONDS=%d", wait_s);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_VALIDATION_EXPIRY_CHECK_MS=200");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_VALIDATION_HTTP_PORT=%d", OPS_PORT);
    service_pid = cf_test_spawn_service(SERVICE, env, ne, log_path);
}

static void stop_service(void)
{
    int status = cf_test_stop_child(&service_pid, STOP_TIMEOUT_MS);
    if (status != 0) {
        char *log = cf_test_slurp(log_path);
        fail_msg("caseflow-validation exited %d; log:\n%s", status, log);
    }
}

/* GET path from the service's operations endpoint: the HTTP status, and the body (the
 * caller's) in *body. */
static long ops_get(const char *path, char **body)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", OPS_PORT, path);
    struct cf_test_reply r = cf_test_http("GET", url, NULL, NULL, 0, 5000);
    *body = r.body;
    return r.status;
}

static void test_validation_end_to_end(void **state)
{
    (void)state;
    char err[512];
    const char *create[] = {"topics", "create", NULL};
    const char *reg[] = {"schemas", "register", NULL};
    ctl(create);
    ctl(reg);
    assert_non_null(consumer = cf_test_consumer_at_end(config, outcome_topics, NTOPICS));

    start_with_wait(14 * 24 * 60 * 60); /* the default: every case here is answered in time */

    /* Four cases, one of each outcome class, produced in one go. */
    char info[CF_UUID_LEN + 1], ok[CF_UUID_LEN + 1], rej[CF_UUID_LEN + 1], rev[CF_UUID_LEN + 1];
    json_t *c_info = fresh_case(info); /* cirrhosis without reports */
    json_t *c_ok = fresh_case(ok);
    json_t *c_rej = fresh_case(rej);
    json_t *c_rev = fresh_case(rev);
    json_t *reports = json_pack("[o]", report());
    json_object_set(json_object_get(c_ok, "inquiry"), "reports", reports);
    json_object_set(json_object_get(c_rej, "inquiry"), "reports", reports);
    json_object_set(json_object_get(c_rev, "inquiry"), "reports", reports);
    json_object_set_new(json_object_get(json_object_get(c_rej, "inquiry"), "consent"),
                        "data_processing", json_false());
    json_object_set_new(json_object_get(json_object_get(c_rev, "inquiry"), "condition"), "category",
                        json_string("OTHER"));
    json_t *batch = json_pack("[O, O, O, O]", c_info, c_ok, c_rej, c_rev);
    ctl_with_file("produce", "caseflow.case.opened", batch);
    json_decref(batch);

    const json_t *rec = expect(T_INFO, info, 0);
    const json_t *v = json_object_get(rec, "value");
    assert_string_equal(code0(rec), "REPORTS_MISSING");
    assert_string_equal(json_string_value(json_array_get(json_object_get(v, "missing"), 0)),
                        "REPORTS");
    assert_int_equal(json_array_size(json_object_get(v, "missing")), 1);
    const json_t *meta = json_object_get(v, "meta");
    const json_t *in_meta = json_object_get(c_info, "meta");
    assert_string_equal(json_string_value(json_object_get(meta, "case_id")), info);
    assert_string_equal(json_string_value(json_object_get(meta, "correlation_id")),
                        json_string_value(json_object_get(in_meta, "correlation_id")));
    assert_string_equal(json_string_value(json_object_get(meta, "causation_id")),
                        json_string_value(json_object_get(in_meta, "event_id")));
    assert_memory_equal(json_string_value(json_object_get(meta, "producer")), "validation/", 11);
    const json_t *headers = json_object_get(rec, "headers");
    assert_string_equal(json_string_value(json_object_get(headers, "ce_type")),
                        "caseflow.event.CaseInfoRequested");
    assert_string_equal(json_string_value(json_object_get(headers, "ce_source")),
                        "/caseflow/validation");
    assert_string_equal(json_string_value(json_object_get(headers, "ce_id")),
                        json_string_value(json_object_get(meta, "event_id")));

    rec = expect(T_VALIDATED, ok, 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rec, "value"), "priority")), "HIGH");
    assert_string_equal(code0(rec), "HIGH_MELD");
    rec = expect(T_REJECTED, rej, 0);
    assert_string_equal(code0(rec), "CONSENT_MISSING");
    const char *rejected_id = json_string_value(
        json_object_get(json_object_get(json_object_get(rec, "value"), "meta"), "event_id"));
    rec = expect(T_CLOSED, rej, 0); /* the rejection closes the case; the patient is told once */
    v = json_object_get(rec, "value");
    assert_string_equal(json_string_value(json_object_get(v, "reason")), "REJECTED");
    assert_string_equal(json_string_value(json_object_get(v, "note_code")), "CONSENT_MISSING");
    assert_true(json_is_null(json_object_get(v, "recipient")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(v, "meta"), "causation_id")),
        rejected_id);
    rec = expect(T_REVIEW, rev, 0);
    assert_string_equal(code0(rec), "CONDITION_NEEDS_REVIEW");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rec, "value"), "category")), "OTHER");

    /* The info loop: the reports arrive, the case validates. */
    json_t *provided = json_pack("{s:[o]}", "reports", report());
    ctl_with_file("provide-info", info, provided);
    json_decref(provided);
    rec = expect(T_VALIDATED, info, 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rec, "value"), "category")), "CIRRHOSIS");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_object_get(rec, "value"), "meta"),
                                          "correlation_id")),
        json_string_value(json_object_get(in_meta, "correlation_id")));

    /* A review: the operator approves, the case validates. */
    const char *approve[] = {"review", rev, "approve", NULL};
    ctl(approve);
    rec = expect(T_VALIDATED, rev, 0);

    /* Garbage is dead-lettered; information for a case never opened too. */
    struct cf_kafka_producer *producer = NULL;
    assert_int_equal(cf_kafka_producer_new(config, NULL, 30000, &producer, err, sizeof(err)),
                     CF_OK);
    char garbage_key[64];
    snprintf(garbage_key, sizeof(garbage_key), "garbage-%s", run_id);
    assert_int_equal(cf_kafka_produce_sync(producer, "caseflow.case.opened", garbage_key,
                                           strlen(garbage_key), "not avro at all", 15, NULL, 0,
                                           30000, err, sizeof(err)),
                     CF_OK);
    cf_kafka_producer_free(producer);
    rec = expect(T_DLQ, garbage_key, 0);
    headers = json_object_get(rec, "headers");
    assert_string_equal(json_string_value(json_object_get(headers, "dlq.reason")), "decode_failed");
    assert_string_equal(json_string_value(json_object_get(headers, "dlq.service")), "validation");

    char unknown[CF_UUID_LEN + 1];
    assert_int_equal(cf_uuid_v4(unknown), CF_OK);
    json_t *orphan = json_pack("{s:s}", "description", "A description for a case nobody opened.");
    ctl_with_file("provide-info", unknown, orphan);
    json_decref(orphan);
    rec = expect(T_DLQ, unknown, 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rec, "headers"), "dlq.reason")),
        "not_found");

    /* Information for a case already validated is refused: its outcome has gone on. */
    json_t *late = json_pack("{s:s}", "description", "More details after the case was validated.");
    ctl_with_file("provide-info", ok, late);
    json_decref(late);
    rec = expect(T_DLQ, ok, 0);
    headers = json_object_get(rec, "headers");
    assert_string_equal(json_string_value(json_object_get(headers, "dlq.reason")), "invalid_input");
    assert_non_null(strstr(json_string_value(json_object_get(headers, "dlq.error")), "VALIDATED"));

    /* The service keeps going: one more case validates. */
    char after[CF_UUID_LEN + 1];
    json_t *c_after = fresh_case(after);
    json_object_set(json_object_get(c_after, "inquiry"), "reports", reports);
    ctl_with_file("produce", "caseflow.case.opened", c_after);
    json_decref(c_after);
    expect(T_VALIDATED, after, 0);

    /* Exactly one outcome per input. */
    drain(2000);
    assert_int_equal(count(NULL, info), 2); /* CaseOpened + CaseInfoProvided */
    assert_int_equal(count(T_INFO, info), 1);
    assert_int_equal(count(T_VALIDATED, info), 1);
    assert_int_equal(count(NULL, ok), 1);
    assert_int_equal(count(NULL, rej), 2); /* CaseRejected + CaseClosed */
    assert_int_equal(count(NULL, rev), 2); /* CaseOpened + CaseReviewed */
    assert_int_equal(count(T_REVIEW, rev), 1);
    assert_int_equal(count(NULL, after), 1);
    assert_int_equal(count(NULL, unknown), 0);

    /* The operations endpoint: alive, ready, and counting what it decided. */
    char *body = NULL;
    assert_int_equal(ops_get("/healthz", &body), 200);
    free(body);
    assert_int_equal(ops_get("/readyz", &body), 200);
    free(body);
    assert_int_equal(ops_get("/metrics", &body), 200);
    assert_non_null(strstr(body, "caseflow_validation_outcomes_total{service=\"validation\","
                                 "outcome=\"CaseValidated\"}"));
    assert_non_null(strstr(body, "caseflow_validation_refused_total{service=\"validation\"} "));
    assert_non_null(strstr(body, "caseflow_records_in_total{service=\"validation\"} "));
    assert_null(strstr(body, "alex"));
    free(body);

    /* The log carries ids, never the person's data. */
    char *log = cf_test_slurp(log_path);
    assert_null(strstr(log, "alex@"));
    assert_null(strstr(log, "Alex"));
    assert_null(strstr(log, "+4477"));
    free(log);

    /* SIGTERM: finish, commit, exit 0. */
    stop_service();
    log = cf_test_slurp(log_path);
    assert_non_null(strstr(log, "\"stopped\""));
    free(log);
    unlink(log_path);

    json_decref(reports);
    json_decref(c_info);
    json_decref(c_ok);
    json_decref(c_rej);
    json_decref(c_rev);
}

/* Expiry: the case asks for information, the service stops before the wait is over; started
 * again after it, the service closes the case EXPIRED (the due time was in Redis), tells the
 * patient (recipient set) and refuses the information that comes too late. */
static void test_expiry_survives_restart(void **state)
{
    (void)state;
    char waiting[CF_UUID_LEN + 1];
    const int wait_s = 4;
    json_t *c = fresh_case(waiting); /* no reports: information requested */
    start_with_wait(wait_s);
    ctl_with_file("produce", "caseflow.case.opened", c);
    const json_t *rec = expect(T_INFO, waiting, 0);
    const json_t *v = json_object_get(rec, "value");
    const char *request_id =
        json_string_value(json_object_get(json_object_get(v, "meta"), "event_id"));
    int64_t asked = cf_clock_wall_ms();
    stop_service();

    /* Sleep past the due time while nothing runs. */
    int64_t left = asked + wait_s * 1000 + 500 - cf_clock_wall_ms();
    if (left > 0)
        cf_clock_sleep_ms(left);
    start_with_wait(wait_s);
    rec = expect(T_CLOSED, waiting, 0);
    v = json_object_get(rec, "value");
    assert_string_equal(json_string_value(json_object_get(v, "reason")), "EXPIRED");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(v, "meta"), "causation_id")), request_id);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(v, "meta"), "correlation_id")),
        json_string_value(json_object_get(json_object_get(c, "meta"), "correlation_id")));
    assert_true(json_is_object(json_object_get(v, "recipient")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rec, "headers"), "ce_type")),
        "caseflow.event.CaseClosed");

    json_t *late = json_pack("{s:[o]}", "reports", report());
    ctl_with_file("provide-info", waiting, late);
    json_decref(late);
    rec = expect(T_DLQ, waiting, 0);
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(rec, "headers"), "dlq.error")),
               "the case is"));

    drain(2000);
    assert_int_equal(count(T_CLOSED, waiting), 1);
    assert_int_equal(count(T_VALIDATED, waiting), 0);
    assert_int_equal(count(T_INFO, waiting), 1);
    stop_service();
    unlink(log_path);
    json_decref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation_end_to_end),
        cmocka_unit_test(test_expiry_survives_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
