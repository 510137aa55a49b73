/* test_intake.c — caseflow-intake against the real stack (deploy/stack up): an inquiry
 * submitted with caseflowctl opens exactly one case on caseflow.case.opened, normalised and
 * correlated; the same idempotency key again opens none; a garbage record and an invalid
 * inquiry are dead-lettered while the service keeps going; /metrics counts those outcomes and
 * times the records; SIGTERM stops it with status 0.
 *
 * Other runs (and other tests) write to the same topics, and the consumer group is intake's
 * own, so the test only looks at records carrying its own fresh ids; each run has its own
 * identity secret, email and phone, so earlier runs' claims in Redis fold nothing here.
 * Every wait is bounded and children still running at the end are killed. */
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
#include "config.h"
#include "http_client.h"
#include "kafka.h"
#include "registry.h"
#include "test_env.h"
#include "uuid.h"

#define CTL CF_BINARY_DIR "/tools/caseflowctl/caseflowctl"
#define INTAKE CF_BINARY_DIR "/services/caseflow-intake"
#define SAMPLE CF_TESTS_DIR "/../deploy/samples/inquiry-en-cirrhosis.json"

#define CTL_TIMEOUT_MS 60000
#define EVENT_TIMEOUT_MS 90000 /* first one: transactions, group join, registry */
#define STOP_TIMEOUT_MS 40000

static char run_id[24];
static char log_path[128];
static pid_t intake_pid = -1;
static struct cf_config *config;
static struct cf_registry *registry;
static struct cf_serde *serde;
static struct cf_kafka_consumer *consumer;
/* Decoded records of caseflow.case.opened and raw dead letters of this run seen so far. */
static json_t *seen;

static const struct cf_config_entry table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
};

/* Runs caseflowctl with args (NULL-terminated); asserts exit 0; returns its output. */
static char *ctl(const char *const *args)
{
    return cf_test_ctl(CTL, args, "/tmp/test-intake-ctl-XXXXXX", CTL_TIMEOUT_MS);
}

/* Submits inquiry with caseflowctl submit; returns the event id (the caller frees). */
static char *submit(const json_t *inquiry)
{
    char path[] = "/tmp/test-intake-inquiry-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(json_dump_file(inquiry, path, 0), 0);
    const char *args[] = {"submit", path, NULL};
    char *out = ctl(args);
    unlink(path);
    json_error_t jerr;
    json_t *line = json_loads(out, JSON_DISABLE_EOF_CHECK, &jerr);
    if (line == NULL)
        fail_msg("submit printed no JSON: %s", out);
    char *event_id = strdup(json_string_value(json_object_get(line, "event_id")));
    json_decref(line);
    free(out);
    return event_id;
}

/* A fresh copy of the sample: new inquiry id, idempotency key, email and phone of this run,
 * and whitespace, an upper-case domain and a national phone for intake to normalise. */
static json_t *fresh_inquiry(char *inquiry_id, const char *idem, int person)
{
    json_error_t jerr;
    json_t *inq = json_load_file(SAMPLE, 0, &jerr);
    assert_non_null(inq);
    assert_int_equal(cf_uuid_v4(inquiry_id), CF_OK);
    char email[128], phone[32];
    snprintf(email, sizeof(email), "alex.%s.%d@EXAMPLE.com", run_id, person);
    /* US numbers: (NXX) NXX-XXXX; vary the last digits per run and person. */
    snprintf(phone, sizeof(phone), "(555) 2%02d-%04d", person % 100, (int)(getpid() % 10000));
    json_object_set_new(inq, "inquiry_id", json_string(inquiry_id));
    json_object_set_new(inq, "idempotency_key", json_string(idem));
    json_t *patient = json_object_get(inq, "patient");
    json_object_set_new(patient, "given_name", json_string("  Alex \t Maria  "));
    json_t *contact = json_object_get(inq, "contact");
    json_object_set_new(contact, "email", json_string(email));
    json_object_set_new(contact, "phone", json_string(phone));
    return inq;
}

/* The first record of topic in seen whose key, inquiry id or case id (field) is want. */
static const json_t *find(const char *topic, const char *field, const char *want)
{
    size_t i;
    json_t *rec;
    json_array_foreach(seen, i, rec)
    {
        if (strcmp(json_string_value(json_object_get(rec, "topic")), topic) != 0)
            continue;
        json_t *v = json_object_get(rec, "value");
        const char *got = NULL;
        if (strcmp(field, "key") == 0)
            got = json_string_value(json_object_get(rec, "key"));
        else if (strcmp(field, "inquiry_id") == 0)
            got = json_string_value(json_object_get(json_object_get(v, "inquiry"), "inquiry_id"));
        else if (strcmp(field, "case_id") == 0)
            got = json_string_value(json_object_get(v, "case_id"));
        if (got != NULL && strcmp(got, want) == 0)
            return rec;
    }
    return NULL;
}

static size_t count(const char *topic, const char *field, const char *want)
{
    size_t n = 0, i;
    json_t *rec;
    json_t *copy = json_array();
    /* find() returns the first match; count by removing matches from a scratch list. */
    json_array_foreach(seen, i, rec) json_array_append(copy, rec);
    json_t *saved = seen;
    seen = copy;
    const json_t *hit;
    while ((hit = find(topic, field, want)) != NULL) {
        n++;
        for (size_t k = 0; k < json_array_size(seen); k++)
            if (json_array_get(seen, k) == hit) {
                json_array_remove(seen, k);
                break;
            }
    }
    seen = saved;
    json_decref(copy);
    return n;
}

static bool is_case_opened(const char *topic)
{
    return strcmp(topic, "caseflow.case.opened") == 0;
}

static void poll_into_seen(int timeout_ms)
{
    cf_test_poll_into(consumer, serde, is_case_opened, timeout_ms, seen);
}

static const json_t *wait_for(const char *topic, const char *field, const char *want,
                              int timeout_ms)
{
    int64_t deadline = cf_clock_mono_ms() + timeout_ms;
    const json_t *hit;
    while ((hit = find(topic, field, want)) == NULL && cf_clock_mono_ms() < deadline)
        poll_into_seen(200);
    return hit;
}

/* True once intake's log has a line with both texts, waiting up to timeout_ms. */
static bool wait_log(const char *event, const char *id, int timeout_ms)
{
    int64_t deadline = cf_clock_mono_ms() + timeout_ms;
    do {
        char *log = cf_test_slurp(log_path);
        bool found = false;
        for (char *line = log; line != NULL && *line != '\0' && !found;) {
            char *nl = strchr(line, '\n');
            if (nl != NULL)
                *nl = '\0';
            found = strstr(line, event) != NULL && strstr(line, id) != NULL;
            line = nl != NULL ? nl + 1 : NULL;
        }
        free(log);
        if (found)
            return true;
        poll_into_seen(200);
    } while (cf_clock_mono_ms() < deadline);
    return false;
}

static int setup(void **state)
{
    (void)state;
    cf_test_run_id(run_id, sizeof(run_id));
    snprintf(log_path, sizeof(log_path), "/tmp/test-intake-%s.log", run_id);
    if (cf_test_service_clients(table, sizeof(table) / sizeof(table[0]), &config, &registry,
                                &serde) != 0)
        return -1;
    seen = json_array();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_test_service_teardown(intake_pid, consumer, seen, serde, registry, config);
    return 0;
}

/* intake's /metrics: at least this run's outcomes (two of each; earlier runs' records left in
 * the group's backlog count too), the loop's metrics with every input timed, nothing personal. */
static void check_metrics(int port)
{
    static const char *const outcomes[] = {"opened", "folded", "refused"};
    char url[64], series[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    struct cf_test_reply r = cf_test_http("GET", url, NULL, NULL, 0, 10000);
    if (r.status != 200)
        fail_msg("GET /metrics: %ld", r.status);
    assert_non_null(strstr(r.content_type, "text/plain; version=0.0.4"));
    for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++) {
        snprintf(series, sizeof(series),
                 "caseflow_intake_outcomes_total{service=\"intake\",outcome=\"%s\"}",
                 outcomes[i]);
        if (cf_test_metric(r.body, series) < 2)
            fail_msg("%s under 2:\n%s", series, r.body);
    }
    double records = cf_test_metric(r.body, "caseflow_records_in_total{service=\"intake\"}");
    double timed =
        cf_test_metric(r.body, "caseflow_processing_seconds_count{service=\"intake\"}");
    assert_true(records >= 6);
    /* Timed before counted: a commit between the scrape's two reads shows in the histogram
     * first. */
    assert_true(timed >= records);
    assert_true(cf_test_metric(r.body, "caseflow_processing_seconds_bucket{service=\"intake\","
                                       "le=\"+Inf\"}") == timed);
    assert_true(cf_test_metric(r.body, "caseflow_processing_seconds_bucket{service=\"intake\","
                                       "le=\"0.001\"}") >= 0);
    assert_true(cf_test_metric(r.body, "caseflow_errors_total{service=\"intake\"}") >= 0);
    assert_null(strstr(r.body, "alex."));
    assert_null(strstr(r.body, "+1555"));
    cf_test_reply_free(&r);
}

static void test_intake_end_to_end(void **state)
{
    (void)state;
    char err[512];
    const char *create[] = {"topics", "create", NULL};
    const char *reg[] = {"schemas", "register", NULL};
    free(ctl(create));
    free(ctl(reg));

    const char *topics[] = {"caseflow.case.opened", "caseflow.dlq.intake"};
    assert_non_null(consumer = cf_test_consumer_at_end(config, topics, 2));

    static char env[8][160];
    snprintf(env[0], sizeof(env[0]), "CASEFLOW_INSTANCE_ID=test-intake-%s", run_id);
    snprintf(env[1], sizeof(env[1]),
             "CASEFLOW_INTAKE_IDENTITY_SECRET=test-intake-secret-%s-0123456789abcdef", run_id);
    snprintf(env[2], sizeof(env[2]), "CASEFLOW_LOG_LEVEL=info");
    snprintf(env[3], sizeof(env[3]), "CASEFLOW_BATCH_MAX_MS=50");
    /* A free port, so as not to clash with another intake on this machine: /metrics is read
     * there. */
    int port = cf_test_free_port();
    snprintf(env[4], sizeof(env[4]), "CASEFLOW_INTAKE_HTTP_PORT=%d", port);
    size_t ne = 5;
    intake_pid = cf_test_spawn_service(INTAKE, env, ne, log_path);

    /* 1. A new inquiry opens one case, normalised and correlated. */
    char id_a[CF_UUID_LEN + 1], idem[96];
    snprintf(idem, sizeof(idem), "test-intake-%s", run_id);
    json_t *inq_a = fresh_inquiry(id_a, idem, 1);
    char *event_a = submit(inq_a);
    const json_t *rec = wait_for("caseflow.case.opened", "inquiry_id", id_a, EVENT_TIMEOUT_MS);
    if (rec == NULL) {
        char *log = cf_test_slurp(log_path);
        fail_msg("no CaseOpened for inquiry %s; intake log:\n%s", id_a, log);
    }
    const json_t *v = json_object_get(rec, "value");
    const json_t *meta = json_object_get(v, "meta");
    const char *case_id = json_string_value(json_object_get(v, "case_id"));
    assert_non_null(case_id);
    assert_true(cf_uuid_valid(case_id));
    char case_a[CF_UUID_LEN + 1];
    snprintf(case_a, sizeof(case_a), "%s", case_id);
    assert_string_equal(json_string_value(json_object_get(rec, "key")), case_a);
    assert_string_equal(json_string_value(json_object_get(meta, "case_id")), case_a);
    assert_string_equal(json_string_value(json_object_get(meta, "correlation_id")), id_a);
    assert_string_equal(json_string_value(json_object_get(meta, "causation_id")), event_a);
    assert_memory_equal(json_string_value(json_object_get(meta, "producer")), "intake/", 7);
    assert_int_equal(json_integer_value(json_object_get(v, "duplicate_count")), 0);
    assert_int_equal(strlen(json_string_value(json_object_get(v, "patient_key"))), 64);
    const json_t *inq = json_object_get(v, "inquiry");
    const json_t *contact = json_object_get(inq, "contact");
    char email[128];
    snprintf(email, sizeof(email), "alex.%s.1@example.com", run_id);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(inq, "patient"), "given_name")),
        "Alex Maria");
    assert_string_equal(json_string_value(json_object_get(contact, "email")), email);
    const char *phone = json_string_value(json_object_get(contact, "phone"));
    assert_true(phone != NULL && phone[0] == '+' && strncmp(phone, "+1555201", 8) == 0);
    const json_t *recipient = json_object_get(v, "recipient");
    assert_string_equal(json_string_value(json_object_get(recipient, "email")), email);
    assert_string_equal(json_string_value(json_object_get(recipient, "phone")), phone);
    assert_string_equal(json_string_value(json_object_get(recipient, "given_name")), "Alex Maria");
    const json_t *headers = json_object_get(rec, "headers");
    assert_string_equal(json_string_value(json_object_get(headers, "ce_type")),
                        "caseflow.event.CaseOpened");
    assert_string_equal(json_string_value(json_object_get(headers, "ce_source")),
                        "/caseflow/intake");
    assert_string_equal(json_string_value(json_object_get(headers, "ce_id")),
                        json_string_value(json_object_get(meta, "event_id")));
    /* The log has ids, never the person's data. */
    assert_true(wait_log("case_opened", case_a, 5000));

    /* 2. The same idempotency key again (another inquiry id, person and condition): folded
     * into case A, no second CaseOpened. */
    char id_b[CF_UUID_LEN + 1];
    json_t *inq_b = fresh_inquiry(id_b, idem, 2);
    json_object_set_new(json_object_get(inq_b, "condition"), "category",
                        json_string("FATTY_LIVER"));
    free(submit(inq_b));
    if (!wait_log("inquiry_folded", id_b, EVENT_TIMEOUT_MS))
        fail_msg("inquiry %s was not folded", id_b);
    assert_true(wait_log("inquiry_folded", case_a, 1000));

    /* 3. The same person and condition again, new key: folded as well. */
    char id_c[CF_UUID_LEN + 1], idem_c[96];
    snprintf(idem_c, sizeof(idem_c), "test-intake-%s-c", run_id);
    json_t *inq_c = fresh_inquiry(id_c, idem_c, 1);
    free(submit(inq_c));
    if (!wait_log("inquiry_folded", id_c, EVENT_TIMEOUT_MS))
        fail_msg("inquiry %s (same person and condition) was not folded", id_c);

    /* 4. Garbage on the input topic is dead-lettered. */
    struct cf_kafka_producer *producer = NULL;
    assert_int_equal(cf_kafka_producer_new(config, NULL, 30000, &producer, err, sizeof(err)),
                     CF_OK);
    char garbage_key[64];
    snprintf(garbage_key, sizeof(garbage_key), "garbage-%s", run_id);
    assert_int_equal(cf_kafka_produce_sync(producer, "caseflow.inquiry.submitted", garbage_key,
                                           strlen(garbage_key), "not avro at all", 15, NULL, 0,
                                           30000, err, sizeof(err)),
                     CF_OK);
    cf_kafka_producer_free(producer);
    rec = wait_for("caseflow.dlq.intake", "key", garbage_key, EVENT_TIMEOUT_MS);
    if (rec == NULL)
        fail_msg("garbage record not dead-lettered");
    headers = json_object_get(rec, "headers");
    assert_string_equal(json_string_value(json_object_get(headers, "dlq.reason")), "decode_failed");
    assert_string_equal(json_string_value(json_object_get(headers, "dlq.service")), "intake");

    /* 5. An inquiry with an invalid email is dead-lettered naming the field, not the value. */
    char id_d[CF_UUID_LEN + 1], idem_d[96];
    snprintf(idem_d, sizeof(idem_d), "test-intake-%s-d", run_id);
    json_t *inq_d = fresh_inquiry(id_d, idem_d, 4);
    json_object_set_new(json_object_get(inq_d, "contact"), "email",
                        json_string("no-at-sign.example.com"));
    free(submit(inq_d));
    rec = wait_for("caseflow.dlq.intake", "key", id_d, EVENT_TIMEOUT_MS);
    if (rec == NULL)
        fail_msg("invalid inquiry %s not dead-lettered", id_d);
    headers = json_object_get(rec, "headers");
    assert_string_equal(json_string_value(json_object_get(headers, "dlq.reason")), "invalid_input");
    const char *dlq_error = json_string_value(json_object_get(headers, "dlq.error"));
    assert_non_null(strstr(dlq_error, "$.contact.email"));
    assert_null(strstr(dlq_error, "no-at-sign"));

    /* 6. The service keeps going: another person opens a new case. */
    char id_e[CF_UUID_LEN + 1], idem_e[96];
    snprintf(idem_e, sizeof(idem_e), "test-intake-%s-e", run_id);
    json_t *inq_e = fresh_inquiry(id_e, idem_e, 5);
    free(submit(inq_e));
    rec = wait_for("caseflow.case.opened", "inquiry_id", id_e, EVENT_TIMEOUT_MS);
    if (rec == NULL)
        fail_msg("no CaseOpened for inquiry %s after the dead letters", id_e);
    assert_string_not_equal(
        json_string_value(json_object_get(json_object_get(rec, "value"), "case_id")), case_a);

    /* Exactly one case for A, none for the folded ones (E came later, so they are done). */
    assert_int_equal(count("caseflow.case.opened", "case_id", case_a), 1);
    assert_int_equal(count("caseflow.case.opened", "inquiry_id", id_b), 0);
    assert_int_equal(count("caseflow.case.opened", "inquiry_id", id_c), 0);

    /* No personal data in the log: names, emails, phones of this run. */
    char *log = cf_test_slurp(log_path);
    assert_null(strstr(log, "alex."));
    assert_null(strstr(log, "Alex"));
    assert_null(strstr(log, "+1555"));
    assert_null(strstr(log, "no-at-sign"));
    free(log);

    /* 7. What /metrics counted meanwhile. */
    check_metrics(port);

    /* 8. SIGTERM: finish, commit, exit 0. */
    int status = cf_test_stop_child(&intake_pid, STOP_TIMEOUT_MS);
    assert_int_equal(status, 0);
    log = cf_test_slurp(log_path);
    assert_non_null(strstr(log, "\"stopped\""));
    free(log);
    unlink(log_path);

    free(event_a);
    json_decref(inq_a);
    json_decref(inq_b);
    json_decref(inq_c);
    json_decref(inq_d);
    json_decref(inq_e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intake_end_to_end),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
