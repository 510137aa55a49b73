/* test_http_ops.c — the operations endpoint (common/http.h) with a real transactional loop,
 * Redis and registry (deploy/stack up), wired as a service's main.c wires it: the loop runs on
 * one thread, the endpoint serves from its own, and the test reads it with libcurl.
 *   - before the loop runs /readyz names "kafka" and "consumer" only (Redis answers PING, the
 *     registry knows the topic's subject); once the loop has its partitions it answers 200, and
 *     /metrics shows caseflow_ready 1, the partitions, the records the loop committed, each
 *     of them once in the caseflow_processing_seconds histogram, and caseflow_errors_total;
 *   - a subject the registry does not know makes "registry" fail, and the answer is cached:
 *     registering it shows only after CF_HTTP_READY_CACHE_MS;
 *   - a Redis port where nothing listens makes "redis" fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "http.h"
#include "http_client.h"
#include "kafka.h"
#include "metrics.h"
#include "redis.h"
#include "registry.h"
#include "test_env.h"

#define TIMEOUT_MS 15000
#define READY_TIMEOUT_MS 60000
#define PORT_KEY "CASEFLOW_OPSIT_HTTP_PORT"
#define BIND_KEY "CASEFLOW_OPSIT_HTTP_BIND"
#define TEST_SCHEMA                                                                                \
    "{\"type\":\"record\",\"name\":\"OpsTest\",\"namespace\":\"cftest\",\"fields\":[{\"name\":"    \
    "\"a\",\"type\":\"string\"}]}"

extern char **environ;

static const struct cf_config_entry table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
    CF_CONFIG_REDIS_ENTRIES,
    CF_HTTP_OPS_CONFIG_ENTRIES("CASEFLOW_OPSIT", "0"),
};

static char run_id[24];
/* The last answer: each request frees the one before, the teardown the last. */
static struct cf_test_reply last;
static struct cf_registry *registry;

static int setup(void **state)
{
    (void)state;
    char err[256] = "";
    cf_test_run_id(run_id, sizeof(run_id));
    if (cf_registry_new(cf_test_registry_url(), 10000, &registry, err, sizeof(err)) != CF_OK) {
        fprintf(stderr, "registry: %s\n", err);
        return -1;
    }
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cf_registry_free(registry);
    cf_test_reply_free(&last);
    curl_global_cleanup();
    return 0;
}

/* A config of the table: the environment's KAFKA_* and the stack's Redis and registry settings
 * (if set), this run's instance id, the endpoint on port, and Redis on redis_port if > 0. */
static struct cf_config *load_config(int port, int redis_port)
{
    static const char *const forwarded[] = {
        "CASEFLOW_REDIS_HOST=", "CASEFLOW_REDIS_PORT=", "CASEFLOW_REGISTRY_URL="};
    char v_port[64], v_instance[64], v_redis[64];
    char *envp[80] = {NULL};
    size_t k = 0;
    for (char **e = environ; *e != NULL && k < 64; e++) {
        bool take = strncmp(*e, "KAFKA_", 6) == 0;
        for (size_t i = 0; i < 3; i++)
            take = take || strncmp(*e, forwarded[i], strlen(forwarded[i])) == 0;
        if (take && !(redis_port > 0 && strncmp(*e, "CASEFLOW_REDIS_PORT=", 20) == 0))
            envp[k++] = *e;
    }
    (void)snprintf(v_port, sizeof(v_port), PORT_KEY "=%d", port);
    (void)snprintf(v_instance, sizeof(v_instance), "CASEFLOW_INSTANCE_ID=ops-%s", run_id);
    (void)snprintf(v_redis, sizeof(v_redis), "CASEFLOW_REDIS_PORT=%d", redis_port);
    envp[k++] = v_port;
    envp[k++] = v_instance;
    if (redis_port > 0)
        envp[k++] = v_redis;
    struct cf_config *config = NULL;
    char err[256] = "";
    if (cf_config_load(table, sizeof(table) / sizeof(table[0]), envp, &config, err, sizeof(err)) !=
        CF_OK)
        fail_msg("config: %s", err);
    return config;
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

/* GET 127.0.0.1:port path. The answer is valid until the next request. */
static struct cf_test_reply get(int port, const char *path)
{
    char url[128];
    (void)snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    cf_test_reply_free(&last);
    last = cf_test_http("GET", url, NULL, NULL, 0, 10000);
    if (last.status <= 0)
        fail_msg("GET %s: no answer (%ld)", path, last.status);
    return last;
}

/* Polls path until its body contains want, for up to timeout_ms. */
static struct cf_test_reply wait_for(int port, const char *path, const char *want, int timeout_ms)
{
    int64_t deadline = cf_clock_mono_ms() + timeout_ms;
    struct cf_test_reply r = get(port, path);
    while (strstr(r.body, want) == NULL && cf_clock_mono_ms() < deadline) {
        cf_clock_sleep_ms(200);
        r = get(port, path);
    }
    if (strstr(r.body, want) == NULL)
        fail_msg("GET %s never showed %s; last answer %ld:\n%s", path, want, r.status, r.body);
    return r;
}

/* ---- The loop, on its own thread as in a service ------------------------------------------ */

struct loop_thread {
    struct cf_kafka_loop *loop;
    volatile sig_atomic_t stop;
    cf_status result;
    char err[512];
};

static void *run_loop(void *arg)
{
    struct loop_thread *t = arg;
    t->result = cf_kafka_loop_run(t->loop, &t->stop, t->err, sizeof(t->err));
    return NULL;
}

static cf_status echo(void *ctx, const struct cf_kafka_record *in, struct cf_kafka_out *out,
                      char *errbuf, size_t errlen)
{
    (void)errbuf;
    (void)errlen;
    return cf_kafka_out_add(out, ctx, in->key, in->key_len, in->value, in->value_len, NULL, 0);
}

/* caseflow_processing_seconds has every bucket of CF_METRICS_LATENCY_BUCKETS and +Inf, each
 * cumulative count at most the next, and counts exactly the records the loop committed. */
static void assert_latency_histogram(const char *body, const char *service, double records)
{
    static const char *const les[] = {"0.001", "0.0025", "0.005", "0.01", "0.025",
                                      "0.05",  "0.1",    "0.25",  "0.5",  "1",
                                      "2.5",   "5",      "10",    "+Inf"};
    char name[256];
    double previous = 0;
    for (size_t i = 0; i < sizeof(les) / sizeof(les[0]); i++) {
        (void)snprintf(name, sizeof(name),
                       "caseflow_processing_seconds_bucket{service=\"%s\",le=\"%s\"}", service,
                       les[i]);
        double v = cf_test_metric(body, name);
        if (v < previous)
            fail_msg("%s is %g, under the bucket before (%g):\n%s", name, v, previous, body);
        previous = v;
    }
    assert_true(previous == records); /* le="+Inf" */
    (void)snprintf(name, sizeof(name), "caseflow_records_in_total{service=\"%s\"}", service);
    assert_true(cf_test_metric(body, name) == records);
    (void)snprintf(name, sizeof(name), "caseflow_processing_seconds_count{service=\"%s\"}",
                   service);
    assert_true(cf_test_metric(body, name) == records);
    (void)snprintf(name, sizeof(name), "caseflow_processing_seconds_sum{service=\"%s\"}",
                   service);
    assert_true(cf_test_metric(body, name) > 0);
}

static void test_ready_once_the_loop_has_partitions(void **state)
{
    (void)state;
    char service[64], input[128], output[128], dlq[128], subject[160], err[512] = "";
    char want[256];
    int32_t id = 0;
    int port = cf_test_free_port();
    (void)snprintf(service, sizeof(service), "opsit-%s", run_id);
    (void)snprintf(input, sizeof(input), "cftest.ops.%s.in", run_id);
    (void)snprintf(output, sizeof(output), "cftest.ops.%s.out", run_id);
    (void)snprintf(dlq, sizeof(dlq), "caseflow.dlq.%s", service);
    (void)snprintf(subject, sizeof(subject), "%s-value", input);
    struct cf_config *config = load_config(port, 0);
    const struct cf_topic_spec specs[] = {
        {input, 2, 1, "delete", 3600000},
        {output, 1, 1, "delete", 3600000},
        {dlq, 1, 1, "delete", 3600000},
    };
    assert_int_equal(cf_kafka_create_topics(config, specs, 3, TIMEOUT_MS, err, sizeof(err)), CF_OK);
    if (cf_registry_register(registry, subject, TEST_SCHEMA, &id, err, sizeof(err)) != CF_OK)
        fail_msg("register: %s", err);

    /* What a service's main.c does. */
    const char *topics[] = {input};
    struct loop_thread t = {NULL, 0, CF_OK, ""};
    struct cf_metrics *metrics = NULL;
    struct cf_http_ops *ops = NULL;
    assert_int_equal(cf_kafka_loop_new(config, service, NULL, topics, 1, echo, output, &t.loop, err,
                                       sizeof(err)),
                     CF_OK);
    assert_int_equal(cf_metrics_new(service, &metrics), CF_OK);
    assert_int_equal(cf_metrics_watch_loop(metrics, t.loop, err, sizeof(err)), CF_OK);
    const struct cf_http_readiness readiness = {t.loop, true, input};
    if (cf_http_ops_start(config, PORT_KEY, BIND_KEY, metrics, &readiness, &ops, err,
                          sizeof(err)) != CF_OK)
        fail_msg("start: %s", err);

    /* Redis and the registry are fine; the loop has not started. */
    struct cf_test_reply r = get(port, "/readyz");
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "{\"status\":\"not_ready\",\"component\":\"kafka\","
                                "\"failing\":[\"kafka\",\"consumer\"]}");

    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, run_loop, &t), 0);
    r = wait_for(port, "/readyz", "{\"status\":\"ready\"}", READY_TIMEOUT_MS);
    assert_int_equal(r.status, 200);
    (void)snprintf(want, sizeof(want), "caseflow_ready{service=\"%s\"} 1\n", service);
    r = wait_for(port, "/metrics", want, TIMEOUT_MS);
    (void)snprintf(want, sizeof(want), "caseflow_partitions_assigned{service=\"%s\"} 2\n", service);
    assert_non_null(strstr(r.body, want));

    struct cf_kafka_producer *p = NULL;
    assert_int_equal(cf_kafka_producer_new(config, NULL, TIMEOUT_MS, &p, err, sizeof(err)), CF_OK);
    for (int i = 0; i < 3; i++) {
        char key[8];
        int n = snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(
            cf_kafka_produce(p, input, key, (size_t)n, "v", 1, NULL, 0, err, sizeof(err)), CF_OK);
    }
    assert_int_equal(cf_kafka_producer_flush(p, TIMEOUT_MS, err, sizeof(err)), CF_OK);
    cf_kafka_producer_free(p);
    (void)snprintf(want, sizeof(want), "caseflow_records_in_total{service=\"%s\"} 3\n", service);
    r = wait_for(port, "/metrics", want, READY_TIMEOUT_MS);
    (void)snprintf(want, sizeof(want), "caseflow_records_out_total{service=\"%s\"} 3\n", service);
    assert_non_null(strstr(r.body, want));
    (void)snprintf(want, sizeof(want), "caseflow_dead_letters_total{service=\"%s\"} 0\n", service);
    assert_non_null(strstr(r.body, want));
    (void)snprintf(want, sizeof(want), "caseflow_transactions_total{service=\"%s\"} 0\n", service);
    assert_null(strstr(r.body, want)); /* at least one */
    assert_latency_histogram(r.body, service, 3);
    /* Present; its value depends on the shared broker (a lost connection counts). */
    (void)snprintf(want, sizeof(want), "caseflow_errors_total{service=\"%s\"} ", service);
    assert_non_null(strstr(r.body, want));

    /* Shutdown in a service's order: the loop, then the endpoint, then what it borrowed. */
    t.stop = 1;
    assert_int_equal(pthread_join(thread, NULL), 0);
    if (t.result != CF_OK)
        fail_msg("loop: %s", t.err);
    cf_http_ops_stop(ops);
    cf_metrics_free(metrics);
    cf_kafka_loop_free(t.loop);
    cf_config_free(config);
}

static void test_registry_subject_and_cache(void **state)
{
    (void)state;
    char topic[128], subject[160], err[512] = "";
    int32_t id = 0;
    int port = cf_test_free_port();
    (void)snprintf(topic, sizeof(topic), "cftest.ops.%s.late", run_id);
    (void)snprintf(subject, sizeof(subject), "%s-value", topic);
    struct cf_config *config = load_config(port, 0);
    const struct cf_http_readiness readiness = {NULL, true, topic};
    struct cf_http_ops *ops = NULL;
    if (cf_http_ops_start(config, PORT_KEY, BIND_KEY, NULL, &readiness, &ops, err, sizeof(err)) !=
        CF_OK)
        fail_msg("start: %s", err);

    static const char missing[] = "{\"status\":\"not_ready\",\"component\":\"kafka\","
                                  "\"failing\":[\"kafka\",\"consumer\",\"registry\"]}";
    /* The check answering this request ends after before. */
    int64_t before = cf_clock_mono_ms();
    struct cf_test_reply r = get(port, "/readyz");
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, missing);

    /* Registered now, but the last check is less than a second old: the answer is reused
     * (asserted only when this machine was quick enough for the check to be that young). */
    if (cf_registry_register(registry, subject, TEST_SCHEMA, &id, err, sizeof(err)) != CF_OK)
        fail_msg("register: %s", err);
    r = get(port, "/readyz");
    if (cf_clock_mono_ms() - before < CF_HTTP_READY_CACHE_MS)
        assert_string_equal(r.body, missing);
    cf_clock_sleep_ms(CF_HTTP_READY_CACHE_MS + 100);
    r = get(port, "/readyz");
    assert_string_equal(r.body, "{\"status\":\"not_ready\",\"component\":\"kafka\","
                                "\"failing\":[\"kafka\",\"consumer\"]}");
    cf_http_ops_stop(ops);
    cf_config_free(config);
}

static void test_redis_down(void **state)
{
    (void)state;
    char err[512] = "";
    int port = cf_test_free_port();
    struct cf_config *config = load_config(port, cf_test_free_port());
    const struct cf_http_readiness readiness = {NULL, true, NULL};
    struct cf_http_ops *ops = NULL;
    if (cf_http_ops_start(config, PORT_KEY, BIND_KEY, NULL, &readiness, &ops, err, sizeof(err)) !=
        CF_OK)
        fail_msg("start: %s", err);
    struct cf_test_reply r = get(port, "/readyz");
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "{\"status\":\"not_ready\",\"component\":\"kafka\","
                                "\"failing\":[\"kafka\",\"consumer\",\"redis\"]}");
    r = get(port, "/healthz");
    assert_int_equal(r.status, 200);
    cf_http_ops_stop(ops);
    cf_config_free(config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_once_the_loop_has_partitions),
        cmocka_unit_test(test_registry_subject_and_cache),
        cmocka_unit_test(test_redis_down),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
