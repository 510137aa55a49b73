/* test_intake_http.c — caseflow-intake's HTTP endpoint against the real stack (deploy/stack
 * up), spoken to with libcurl: a POSTed inquiry is answered 202 with its id only once its
 * InquirySubmitted is on caseflow.inquiry.submitted, and intake's own loop opens a case
 * correlated with that id; the same Idempotency-Key again answers the same id and produces
 * nothing; 400 (malformed JSON, unknown field), 413, 415, 405, 404, health, readiness and the
 * status resource behave as README.md says; many POSTs at once are all answered; connections
 * past the configured limit are refused; SIGTERM stops the service with status 0 at once, even
 * with every connection slot held by an idle keep-alive client.
 *
 * The service gets a free port, its own instance id and identity secret; the test looks only
 * at records with this run's fresh inquiry ids. Every wait is bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include "avro_convert.h"
#include "avro_serde.h"
#include "child.h"
#include "clock.h"
#include "config.h"
#include "http_client.h"
#include "kafka.h"
#include "registry.h"
#include "test_env.h"
#include "uuid.h"

#define INTAKE CF_BINARY_DIR "/services/caseflow-intake"
#define SAMPLE CF_TESTS_DIR "/../deploy/samples/inquiry-en-cirrhosis.json"
#define READY_TIMEOUT_MS 60000
#define EVENT_TIMEOUT_MS 90000
#define STOP_TIMEOUT_MS 40000
#define HTTP_TIMEOUT_MS 40000
/* POSTs sent at once, and the connection limit the service gets (all held idle at SIGTERM). */
#define CONCURRENT 24
#define IDLE_CONNECTIONS 32

static const struct cf_config_entry table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
};

static char run_id[24];
static char log_path[128];
static char base_url[64];
static pid_t intake_pid = -1;
static struct cf_config *config;
static struct cf_registry *registry;
static struct cf_serde *serde;
static struct cf_kafka_consumer *consumer;
static json_t *seen; /* {topic, key, value} of records that concern this run */

/* ---- HTTP ---- */

/* One request; ctype and idem may be NULL, body NULL means none. */
static struct cf_test_reply request(const char *method, const char *path, const char *ctype,
                                    const char *idem, const char *body, size_t body_len)
{
    char url[256], h_type[160], h_idem[400];
    const char *headers[3] = {NULL, NULL, NULL};
    size_t n = 0;
    (void)snprintf(url, sizeof(url), "%s%s", base_url, path);
    if (ctype != NULL) {
        (void)snprintf(h_type, sizeof(h_type), "Content-Type: %s", ctype);
        headers[n++] = h_type;
    }
    if (idem != NULL) {
        (void)snprintf(h_idem, sizeof(h_idem), "Idempotency-Key: %s", idem);
        headers[n++] = h_idem;
    }
    return cf_test_http(method, url, headers, body, body_len, HTTP_TIMEOUT_MS);
}

static json_t *reply_json(const struct cf_test_reply *r)
{
    json_error_t jerr;
    json_t *doc = json_loads(r->body, 0, &jerr);
    if (doc == NULL)
        fail_msg("status %ld: body is not JSON: %s", r->status, r->body);
    assert_memory_equal(r->content_type, "application/json", 16);
    return doc;
}

/* Asserts an error answer: status, and an entry with code (and path if not NULL). */
static void expect_error(struct cf_test_reply r, long status, const char *code, const char *path)
{
    if (r.status != status)
        fail_msg("expected %ld, got %ld: %s", status, r.status, r.body);
    json_t *doc = reply_json(&r);
    json_t *errors = json_object_get(doc, "errors");
    assert_true(json_array_size(errors) > 0);
    bool found = false;
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        const char *c = json_string_value(json_object_get(e, "code"));
        const char *p = json_string_value(json_object_get(e, "path"));
        if (c != NULL && strcmp(c, code) == 0 && (path == NULL || (p && strcmp(p, path) == 0)))
            found = true;
    }
    if (!found)
        fail_msg("no %s at %s in %s", code, path ? path : "-", r.body);
    json_decref(doc);
    free(r.body);
}

/* ---- Kafka ---- */

static void poll_once(void)
{
    struct cf_kafka_record *rec = NULL;
    char err[512];
    if (cf_kafka_consumer_poll(consumer, 200, &rec, err, sizeof(err)) != CF_OK)
        return;
    json_t *value = NULL;
    if (cf_serde_decode_json(serde, rec->topic, rec->value, rec->value_len, &value, err,
                             sizeof(err)) == CF_OK) {
        json_t *item =
            json_pack("{s:s, s:s%, s:o}", "topic", rec->topic, "key",
                      rec->key != NULL ? (const char *)rec->key : "", rec->key_len, "value", value);
        json_t *headers = json_object();
        for (size_t i = 0; i < rec->header_count; i++)
            if (rec->headers[i].value != NULL)
                json_object_set_new(headers, rec->headers[i].name,
                                    json_stringn(rec->headers[i].value, rec->headers[i].len));
        json_object_set_new(item, "headers", headers);
        json_array_append_new(seen, item);
    }
    cf_kafka_record_release(rec);
}

/* Records of topic whose correlation_id is inquiry_id, seen so far. */
static size_t count_for(const char *topic, const char *inquiry_id, const json_t **first)
{
    size_t n = 0, i;
    json_t *item;
    json_array_foreach(seen, i, item)
    {
        const char *cid = json_string_value(json_object_get(
            json_object_get(json_object_get(item, "value"), "meta"), "correlation_id"));
        if (strcmp(json_string_value(json_object_get(item, "topic")), topic) == 0 && cid != NULL &&
            strcmp(cid, inquiry_id) == 0) {
            if (n++ == 0 && first != NULL)
                *first = item;
        }
    }
    return n;
}

static const json_t *wait_record(const char *topic, const char *inquiry_id, int timeout_ms)
{
    int64_t deadline = cf_clock_mono_ms() + timeout_ms;
    const json_t *hit = NULL;
    while (count_for(topic, inquiry_id, &hit) == 0 && cf_clock_mono_ms() < deadline)
        poll_once();
    return hit;
}

/* A status answer holds ids, a stage, a close reason and a time: nothing of the person. */
static void assert_status_fields(const json_t *doc)
{
    static const char *const allowed[] = {"inquiry_id", "case_id", "stage", "closed_reason",
                                          "updated_at"};
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)doc, key, value)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
            ok = ok || strcmp(key, allowed[i]) == 0;
        if (!ok)
            fail_msg("status answer has field %s", key);
    }
}

/* GETs url until its stage is stage (and its case case_id); returns the answer. */
static json_t *wait_stage(const char *url, const char *stage, const char *case_id)
{
    int64_t deadline = cf_clock_mono_ms() + EVENT_TIMEOUT_MS;
    for (;;) {
        struct cf_test_reply r = request("GET", url, NULL, NULL, NULL, 0);
        json_t *doc = r.status == 200 ? reply_json(&r) : NULL;
        free(r.body);
        const char *got = json_string_value(json_object_get(doc, "stage"));
        if (got != NULL && strcmp(got, stage) == 0) {
            assert_status_fields(doc);
            assert_string_equal(json_string_value(json_object_get(doc, "case_id")), case_id);
            assert_non_null(json_string_value(json_object_get(doc, "updated_at")));
            return doc;
        }
        if (cf_clock_mono_ms() > deadline) {
            char *log = cf_test_slurp(log_path);
            fail_msg("%s never reached stage %s (last %s); log:\n%s", url, stage,
                     got != NULL ? got : "-", log);
        }
        json_decref(doc);
        cf_clock_sleep_ms(100);
    }
}

/* Encodes value (caseflow's JSON form of topic's schema) and produces it keyed key, as a
 * front end or another service would. */
static void produce_json(const char *topic, const char *key, const json_t *value)
{
    char err[512];
    unsigned char *wire = NULL;
    size_t len = 0;
    struct cf_kafka_producer *producer = NULL;
    if (cf_serde_encode_json(serde, topic, value, &wire, &len, err, sizeof(err)) != CF_OK)
        fail_msg("encode for %s: %s", topic, err);
    assert_int_equal(cf_kafka_producer_new(config, NULL, 30000, &producer, err, sizeof(err)),
                     CF_OK);
    assert_int_equal(cf_kafka_produce_sync(producer, topic, key, strlen(key), wire, len, NULL, 0,
                                           30000, err, sizeof(err)),
                     CF_OK);
    cf_kafka_producer_free(producer);
    free(wire);
}

/* A meta block of a new event (case_id NULL: an inquiry, which has none yet). */
static json_t *new_meta(const char *case_id, const char *correlation_id)
{
    char event_id[CF_UUID_LEN + 1], when[32];
    assert_int_equal(cf_uuid_v4(event_id), CF_OK);
    cf_avro_format_millis(cf_clock_wall_ms(), when, sizeof(when));
    return json_pack("{s:s, s:s?, s:s, s:s, s:s, s:n}", "event_id", event_id, "case_id", case_id,
                     "occurred_at", when, "producer", "test/1", "correlation_id", correlation_id,
                     "causation_id");
}

/* Produces a CaseClosed for case_id (another service closing it) with reason. */
static void produce_closed(const char *case_id, const char *inquiry_id, const char *reason)
{
    json_t *closed =
        json_pack("{s:o, s:s}", "meta", new_meta(case_id, inquiry_id), "reason", reason);
    produce_json("caseflow.case.closed", case_id, closed);
    json_decref(closed);
}

/* Produces inquiry as a web front end does: an InquirySubmitted on the intake topic. */
static void produce_inquiry(const json_t *inquiry)
{
    const char *id = json_string_value(json_object_get(inquiry, "inquiry_id"));
    json_t *submitted = json_pack("{s:o, s:O}", "meta", new_meta(NULL, id), "inquiry", inquiry);
    produce_json("caseflow.inquiry.submitted", id, submitted);
    json_decref(submitted);
}

/* The inquiry of a CaseOpened record without what differs between two submissions of it:
 * its ids and the contact's email. */
static json_t *inquiry_shape(const json_t *opened)
{
    json_t *inq = json_deep_copy(json_object_get(json_object_get(opened, "value"), "inquiry"));
    json_object_del(inq, "inquiry_id");
    json_object_del(inq, "idempotency_key");
    json_object_del(json_object_get(inq, "contact"), "email");
    return inq;
}

/* ---- the test ---- */

static json_t *sample(char id[CF_UUID_LEN + 1])
{
    json_error_t jerr;
    json_t *inq = json_load_file(SAMPLE, 0, &jerr);
    assert_non_null(inq);
    char email[128];
    if (id != NULL) {
        assert_int_equal(cf_uuid_v4(id), CF_OK);
        json_object_set_new(inq, "inquiry_id", json_string(id));
    } else {
        json_object_del(inq, "inquiry_id");
    }
    json_object_del(inq, "idempotency_key");
    /* A person of this run only, so no earlier run's claim folds it. */
    snprintf(email, sizeof(email), "http.%s.%d@example.com", run_id, rand() % 100000);
    json_object_set_new(json_object_get(inq, "contact"), "email", json_string(email));
    json_object_del(json_object_get(inq, "contact"), "phone");
    return inq;
}

static struct cf_test_reply post_json(const json_t *inq, const char *idem)
{
    char *text = json_dumps(inq, JSON_COMPACT);
    struct cf_test_reply r = request("POST", "/v1/inquiries", "application/json; charset=utf-8",
                                     idem, text, strlen(text));
    free(text);
    return r;
}

/* A TCP connection to intake's port. */
static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {5, 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    return fd;
}

/* One request on fd that leaves it open and idle: true iff its answer came back. A POST
 * refused at its last call (400, malformed JSON) is used, because libmicrohttpd 0.9.75 closes
 * every connection whose answer is queued at the first call, as GETs and early refusals are. */
static bool raw_keep_alive(int fd)
{
    static const char req[] = "POST /v1/inquiries HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Content-Type: application/json\r\nContent-Length: 3\r\n\r\n{x}";
    char buf[1024];
    if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(req) - 1))
        return false;
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return strncmp(buf, "HTTP/1.1 400", 12) == 0 && strstr(buf, "Connection: close") == NULL;
}

/* CONCURRENT POSTs in flight at once with curl's multi interface; the last two share a key. */
static void concurrent_posts(void)
{
    CURLM *multi = curl_multi_init();
    CURL *easy[CONCURRENT];
    struct curl_slist *hdrs[CONCURRENT];
    char *bodies[CONCURRENT], *answers[CONCURRENT];
    size_t answer_len[CONCURRENT];
    FILE *sinks[CONCURRENT];
    char ids[CONCURRENT][CF_UUID_LEN + 1];
    char url[128];
    assert_non_null(multi);
    snprintf(url, sizeof(url), "%s/v1/inquiries", base_url);
    for (int i = 0; i < CONCURRENT; i++) {
        char h[160];
        json_t *inq = sample(NULL);
        bodies[i] = json_dumps(inq, JSON_COMPACT);
        json_decref(inq);
        snprintf(h, sizeof(h), "Idempotency-Key: test-intake-http-%s-c%d", run_id,
                 i < CONCURRENT - 1 ? i : CONCURRENT - 2);
        hdrs[i] = curl_slist_append(NULL, h);
        hdrs[i] = curl_slist_append(hdrs[i], "Content-Type: application/json");
        hdrs[i] = curl_slist_append(hdrs[i], "Expect:");
        answers[i] = NULL;
        sinks[i] = open_memstream(&answers[i], &answer_len[i]);
        easy[i] = curl_easy_init();
        assert_non_null(easy[i]);
        curl_easy_setopt(easy[i], CURLOPT_URL, url);
        curl_easy_setopt(easy[i], CURLOPT_POSTFIELDS, bodies[i]);
        curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, hdrs[i]);
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, cf_test_curl_to_file);
        curl_easy_setopt(easy[i], CURLOPT_WRITEDATA, sinks[i]);
        curl_easy_setopt(easy[i], CURLOPT_TIMEOUT_MS, (long)HTTP_TIMEOUT_MS);
        curl_multi_add_handle(multi, easy[i]);
    }
    int running = 1;
    while (running > 0) {
        assert_int_equal(curl_multi_perform(multi, &running), CURLM_OK);
        if (running > 0)
            assert_int_equal(curl_multi_poll(multi, NULL, 0, 500, NULL), CURLM_OK);
    }
    for (int i = 0; i < CONCURRENT; i++) {
        long code = 0;
        curl_easy_getinfo(easy[i], CURLINFO_RESPONSE_CODE, &code);
        fclose(sinks[i]);
        if (code != 202)
            fail_msg("concurrent POST %d: %ld %s", i, code, answers[i]);
        json_t *doc = json_loads(answers[i], 0, NULL);
        assert_non_null(doc);
        snprintf(ids[i], sizeof(ids[i]), "%s",
                 json_string_value(json_object_get(doc, "inquiry_id")));
        json_decref(doc);
        curl_multi_remove_handle(multi, easy[i]);
        curl_easy_cleanup(easy[i]);
        curl_slist_free_all(hdrs[i]);
        free(bodies[i]);
        free(answers[i]);
    }
    curl_multi_cleanup(multi);
    assert_string_equal(ids[CONCURRENT - 1], ids[CONCURRENT - 2]);
    for (int i = 0; i < CONCURRENT - 1; i++) {
        for (int j = 0; j < i; j++)
            assert_string_not_equal(ids[i], ids[j]);
        if (wait_record("caseflow.inquiry.submitted", ids[i], EVENT_TIMEOUT_MS) == NULL)
            fail_msg("no InquirySubmitted for concurrent POST %d", i);
    }
}

static int setup(void **state)
{
    (void)state;
    cf_test_run_id(run_id, sizeof(run_id));
    srand((unsigned)getpid());
    snprintf(log_path, sizeof(log_path), "/tmp/test-intake-http-%s.log", run_id);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    if (cf_test_service_clients(table, sizeof(table) / sizeof(table[0]), &config, &registry,
                                &serde) != 0)
        return -1;
    const char *topics[] = {"caseflow.inquiry.submitted", "caseflow.case.opened"};
    if ((consumer = cf_test_consumer_at_end(config, topics, 2)) == NULL)
        return -1;
    seen = json_array();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_test_service_teardown(intake_pid, consumer, seen, serde, registry, config);
    curl_global_cleanup();
    return 0;
}

static void test_intake_http(void **state)
{
    (void)state;
    int port = cf_test_free_port();
    snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d", port);
    static char env[8][160];
    snprintf(env[0], sizeof(env[0]), "CASEFLOW_INSTANCE_ID=test-intake-http-%s", run_id);
    snprintf(env[1], sizeof(env[1]),
             "CASEFLOW_INTAKE_IDENTITY_SECRET=test-intake-http-%s-0123456789abcdef", run_id);
    snprintf(env[2], sizeof(env[2]), "CASEFLOW_INTAKE_HTTP_PORT=%d", port);
    snprintf(env[3], sizeof(env[3]), "CASEFLOW_BATCH_MAX_MS=50");
    snprintf(env[4], sizeof(env[4]), "CASEFLOW_INTAKE_HTTP_MAX_CONNECTIONS=%d", IDLE_CONNECTIONS);
    size_t ne = 5;
    intake_pid = cf_test_spawn_service(INTAKE, env, ne, log_path);

    /* Ready: the producer, registry and Redis answered. */
    int64_t deadline = cf_clock_mono_ms() + READY_TIMEOUT_MS;
    struct cf_test_reply r;
    for (;;) {
        r = request("GET", "/readyz", NULL, NULL, NULL, 0);
        if (r.status == 200 || cf_clock_mono_ms() > deadline)
            break;
        free(r.body);
        cf_clock_sleep_ms(200);
    }
    if (r.status != 200) {
        char *log = cf_test_slurp(log_path);
        fail_msg("/readyz never answered 200 (last %ld); log:\n%s", r.status, log);
    }
    free(r.body);
    r = request("GET", "/healthz", NULL, NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    json_t *doc = reply_json(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "ok");
    json_decref(doc);
    free(r.body);

    /* 1. A new inquiry: 202 with its id, on the topic, and a case opened for it. */
    char id_a[CF_UUID_LEN + 1], idem_a[96];
    snprintf(idem_a, sizeof(idem_a), "test-intake-http-%s-a", run_id);
    json_t *inq_a = sample(id_a);
    r = post_json(inq_a, idem_a);
    if (r.status != 202)
        fail_msg("POST: %ld %s", r.status, r.body);
    doc = reply_json(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "inquiry_id")), id_a);
    char status_url[96];
    snprintf(status_url, sizeof(status_url), "/v1/inquiries/%s", id_a);
    assert_string_equal(json_string_value(json_object_get(doc, "status_url")), status_url);
    json_decref(doc);
    free(r.body);

    const json_t *sub = wait_record("caseflow.inquiry.submitted", id_a, EVENT_TIMEOUT_MS);
    if (sub == NULL)
        fail_msg("no InquirySubmitted for %s", id_a);
    assert_string_equal(json_string_value(json_object_get(sub, "key")), id_a);
    const json_t *v = json_object_get(sub, "value");
    const json_t *inq = json_object_get(v, "inquiry");
    assert_string_equal(json_string_value(json_object_get(inq, "inquiry_id")), id_a);
    assert_string_equal(json_string_value(json_object_get(inq, "idempotency_key")), idem_a);
    assert_memory_equal(json_string_value(json_object_get(json_object_get(v, "meta"), "producer")),
                        "intake-http/", 12);
    const json_t *headers = json_object_get(sub, "headers");
    assert_string_equal(json_string_value(json_object_get(headers, "ce_source")),
                        "/caseflow/intake-http");
    assert_string_equal(json_string_value(json_object_get(headers, "ce_type")),
                        "caseflow.event.InquirySubmitted");
    const json_t *opened = wait_record("caseflow.case.opened", id_a, EVENT_TIMEOUT_MS);
    if (opened == NULL) {
        char *log = cf_test_slurp(log_path);
        fail_msg("no CaseOpened for %s; log:\n%s", id_a, log);
    }
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(opened, "value"), "inquiry"), "inquiry_id")),
        id_a);

    /* 1b. The status follows the case: intake reads its own CaseOpened back (validating),
     * then any service's event, here a CaseClosed (closed, with its reason). */
    const char *case_a =
        json_string_value(json_object_get(json_object_get(opened, "value"), "case_id"));
    snprintf(status_url, sizeof(status_url), "/v1/inquiries/%s", id_a);
    json_decref(wait_stage(status_url, "validating", case_a));
    produce_closed(case_a, id_a, "WITHDRAWN");
    doc = wait_stage(status_url, "closed", case_a);
    assert_string_equal(json_string_value(json_object_get(doc, "closed_reason")), "withdrawn");
    json_decref(doc);

    /* 2. The same Idempotency-Key again (even with another body id): the same id, nothing
     * produced. */
    char other[CF_UUID_LEN + 1];
    json_t *inq_again = sample(other);
    r = post_json(inq_again, idem_a);
    if (r.status != 202)
        fail_msg("repeat POST: %ld %s", r.status, r.body);
    doc = reply_json(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "inquiry_id")), id_a);
    json_decref(doc);
    free(r.body);

    /* 3. No key and no inquiry_id: a new id, known to the status resource. */
    json_t *inq_b = sample(NULL);
    r = post_json(inq_b, NULL);
    if (r.status != 202)
        fail_msg("POST without id: %ld %s", r.status, r.body);
    doc = reply_json(&r);
    char id_b[CF_UUID_LEN + 1];
    snprintf(id_b, sizeof(id_b), "%s", json_string_value(json_object_get(doc, "inquiry_id")));
    assert_true(cf_uuid_valid(id_b));
    assert_string_not_equal(id_b, id_a);
    json_decref(doc);
    free(r.body);
    snprintf(status_url, sizeof(status_url), "/v1/inquiries/%s", id_b);
    r = request("GET", status_url, NULL, NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    doc = reply_json(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "inquiry_id")), id_b);
    assert_status_fields(doc);
    /* Just accepted: received, or validating if intake was that quick. */
    const char *stage_b = json_string_value(json_object_get(doc, "stage"));
    assert_true(strcmp(stage_b, "received") == 0 || strcmp(stage_b, "validating") == 0);
    json_decref(doc);
    free(r.body);
    /* B's InquirySubmitted came after the repeated A: once B's is here, wait a little more and
     * A still has exactly one. */
    if (wait_record("caseflow.inquiry.submitted", id_b, EVENT_TIMEOUT_MS) == NULL)
        fail_msg("no InquirySubmitted for %s", id_b);
    int64_t settle = cf_clock_mono_ms() + 3000;
    while (cf_clock_mono_ms() < settle)
        poll_once();
    assert_int_equal(count_for("caseflow.inquiry.submitted", id_a, NULL), 1);
    assert_int_equal(count_for("caseflow.inquiry.submitted", other, NULL), 0);

    /* 3b. A front end producing to Kafka gets the same CaseOpened as one that POSTs: the same
     * inquiry (another person's email, so nothing folds) opens a case whose normalised
     * inquiry is the same but for ids and email; and the first inquiry sent again over Kafka
     * under its Idempotency-Key is folded into the case HTTP opened, its status that case's. */
    char id_k[CF_UUID_LEN + 1], idem_k[96];
    snprintf(idem_k, sizeof(idem_k), "test-intake-http-%s-k", run_id);
    json_t *inq_k = sample(id_k);
    json_object_set_new(inq_k, "idempotency_key", json_string(idem_k));
    produce_inquiry(inq_k);
    const json_t *opened_k = wait_record("caseflow.case.opened", id_k, EVENT_TIMEOUT_MS);
    if (opened_k == NULL)
        fail_msg("no CaseOpened for the Kafka inquiry %s", id_k);
    json_t *shape_http = inquiry_shape(opened), *shape_kafka = inquiry_shape(opened_k);
    if (!json_equal(shape_http, shape_kafka)) {
        char *a = json_dumps(shape_http, JSON_SORT_KEYS),
             *b = json_dumps(shape_kafka, JSON_SORT_KEYS);
        fail_msg("HTTP and Kafka inquiries opened differently:\n%s\n%s", a, b);
    }
    json_decref(shape_http);
    json_decref(shape_kafka);
    json_decref(inq_k);

    char id_dup[CF_UUID_LEN + 1], url_dup[96];
    json_t *inq_dup = sample(id_dup);
    json_object_set_new(inq_dup, "idempotency_key", json_string(idem_a));
    produce_inquiry(inq_dup);
    snprintf(url_dup, sizeof(url_dup), "/v1/inquiries/%s", id_dup);
    doc = wait_stage(url_dup, "closed", case_a); /* A's case, closed in 1b */
    json_decref(doc);
    json_decref(inq_dup);
    for (int64_t end = cf_clock_mono_ms() + 2000; cf_clock_mono_ms() < end;)
        poll_once();
    assert_int_equal(count_for("caseflow.case.opened", id_dup, NULL), 0);
    assert_int_equal(count_for("caseflow.case.opened", id_a, NULL), 1);

    /* 4. Refusals. */
    char missing[96];
    char unknown_id[CF_UUID_LEN + 1];
    assert_int_equal(cf_uuid_v4(unknown_id), CF_OK);
    snprintf(missing, sizeof(missing), "/v1/inquiries/%s", unknown_id);
    expect_error(request("GET", missing, NULL, NULL, NULL, 0), 404, "NOT_FOUND", "$");
    expect_error(request("GET", "/v1/inquiries/not-a-uuid", NULL, NULL, NULL, 0), 404, "NOT_FOUND",
                 "$");
    static const char bad_json[] = "{\"patient\": {\"given_name\": \"Secretname\"";
    r = request("POST", "/v1/inquiries", "application/json", NULL, bad_json, sizeof(bad_json) - 1);
    assert_null(strstr(r.body, "Secretname"));
    expect_error(r, 400, "JSON_INVALID", "$");
    static const char bad_utf8[] = "{\"a\": \"\xc3\x28\"}";
    expect_error(
        request("POST", "/v1/inquiries", "application/json", NULL, bad_utf8, sizeof(bad_utf8) - 1),
        400, "JSON_INVALID", "$");
    char id_u[CF_UUID_LEN + 1];
    json_t *inq_u = sample(id_u);
    json_object_set_new(json_object_get(inq_u, "patient"), "nickname", json_string("Secretnick"));
    r = post_json(inq_u, NULL);
    assert_null(strstr(r.body, "Secretnick"));
    expect_error(r, 400, "SCHEMA", "$.patient.nickname");
    char id_e[CF_UUID_LEN + 1];
    json_t *inq_e = sample(id_e);
    json_object_set_new(json_object_get(inq_e, "contact"), "email",
                        json_string("secret-no-at.example.com"));
    r = post_json(inq_e, NULL);
    assert_null(strstr(r.body, "secret-no-at"));
    expect_error(r, 400, "EMAIL_INVALID", "$.contact.email");
    size_t big_len = 300 * 1024;
    char *big = malloc(big_len);
    assert_non_null(big);
    memset(big, ' ', big_len);
    big[0] = '{';
    big[big_len - 1] = '}';
    expect_error(request("POST", "/v1/inquiries", "application/json", NULL, big, big_len), 413,
                 "BODY_TOO_LARGE", "$");
    free(big);
    expect_error(request("POST", "/v1/inquiries", "text/plain", NULL, "{}", 2), 415,
                 "UNSUPPORTED_MEDIA_TYPE", "$");
    expect_error(request("POST", "/v1/inquiries", NULL, NULL, "{}", 2), 415,
                 "UNSUPPORTED_MEDIA_TYPE", "$");
    r = request("GET", "/v1/inquiries", NULL, NULL, NULL, 0);
    assert_string_equal(r.allow, "POST");
    expect_error(r, 405, "METHOD_NOT_ALLOWED", "$");
    r = request("DELETE", status_url, NULL, NULL, NULL, 0);
    assert_string_equal(r.allow, "GET, HEAD");
    expect_error(r, 405, "METHOD_NOT_ALLOWED", "$");
    expect_error(request("GET", "/nowhere", NULL, NULL, NULL, 0), 404, "NOT_FOUND", "$");
    /* Refused inquiries produce nothing. */
    assert_int_equal(count_for("caseflow.inquiry.submitted", id_u, NULL), 0);
    assert_int_equal(count_for("caseflow.inquiry.submitted", id_e, NULL), 0);

    /* The log has ids, never the person's data or the request's values. */
    char *log = cf_test_slurp(log_path);
    char email_prefix[64];
    snprintf(email_prefix, sizeof(email_prefix), "http.%s", run_id);
    assert_null(strstr(log, email_prefix));
    assert_null(strstr(log, "Alex"));
    assert_null(strstr(log, "Secret"));
    assert_null(strstr(log, "secret-no-at"));
    assert_non_null(strstr(log, id_a));
    free(log);

    /* 5. Many POSTs at once are served together (the server thread never waits for the
     * broker): every one 202, each its own inquiry on the topic, and two racing with one key
     * both answer the first one's id. */
    concurrent_posts();
    cf_clock_sleep_ms(500); /* lets intake see those connections closed: they held slots */

    /* 6. Connections past CASEFLOW_INTAKE_HTTP_MAX_CONNECTIONS are closed unanswered, and
     * SIGTERM with every slot held by an idle keep-alive connection exits 0 at once (not after
     * libmicrohttpd's 30 s idle timeout). */
    int idle[IDLE_CONNECTIONS + 1];
    for (int i = 0; i < IDLE_CONNECTIONS; i++) {
        idle[i] = raw_connect(port);
        assert_true(raw_keep_alive(idle[i]));
    }
    idle[IDLE_CONNECTIONS] = raw_connect(port);
    assert_false(raw_keep_alive(idle[IDLE_CONNECTIONS]));
    int64_t t0 = cf_clock_mono_ms();
    int status = cf_test_stop_child(&intake_pid, STOP_TIMEOUT_MS);
    int64_t stop_ms = cf_clock_mono_ms() - t0;
    fprintf(stderr, "stopped in %lld ms with %d idle keep-alive connections\n", (long long)stop_ms,
            IDLE_CONNECTIONS);
    assert_int_equal(status, 0);
    assert_true(stop_ms < 5000);
    for (int i = 0; i <= IDLE_CONNECTIONS; i++)
        close(idle[i]);
    unlink(log_path);
    json_decref(inq_a);
    json_decref(inq_again);
    json_decref(inq_b);
    json_decref(inq_u);
    json_decref(inq_e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intake_http),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
