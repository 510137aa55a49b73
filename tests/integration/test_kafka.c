/* test_kafka.c — topic administration, the plain producer and consumers, against the Kafka of
 * deploy/stack (127.0.0.1:19092 unless KAFKA_BOOTSTRAP_SERVERS says otherwise). Every test
 * makes its own uniquely named topics and groups. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "kafka.h"
#include "log.h"
#include "test_env.h"

#define TIMEOUT_MS 15000

extern char **environ;

static struct cf_config *config;
static char prefix[96];

static const struct cf_config_entry table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
};

static void name(char *buf, size_t len, const char *what)
{
    snprintf(buf, len, "%s.%s", prefix, what);
}

static int setup(void **state)
{
    (void)state;
    char id[32];
    config = cf_test_kafka_config(table, sizeof(table) / sizeof(table[0]));
    if (config == NULL)
        return -1;
    cf_test_run_id(id, sizeof(id));
    snprintf(prefix, sizeof(prefix), "cftest.kafka.%s", id);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_config_free(config);
    return 0;
}

/* Topics are created with their settings, and creating them again changes nothing. */
static void test_create_topics_idempotent(void **state)
{
    (void)state;
    char a[160], b[160], err[512] = "";
    name(a, sizeof(a), "events");
    name(b, sizeof(b), "roster");
    const struct cf_topic_spec specs[] = {
        {a, 3, 1, "delete", 7LL * 24 * 3600 * 1000},
        {b, 1, 1, "compact", -1},
    };
    struct cf_topic_info info;

    int64_t t0 = cf_clock_mono_ms();
    assert_int_equal(cf_kafka_create_topics(config, specs, 2, TIMEOUT_MS, err, sizeof(err)), CF_OK);
    int64_t t1 = cf_clock_mono_ms();
    /* Again: TOPIC_ALREADY_EXISTS counts as success. */
    assert_int_equal(cf_kafka_create_topics(config, specs, 2, TIMEOUT_MS, err, sizeof(err)), CF_OK);
    int64_t t2 = cf_clock_mono_ms();
    fprintf(stderr, "create: %" PRId64 " ms, re-create: %" PRId64 " ms\n", t1 - t0, t2 - t1);

    assert_int_equal(cf_kafka_describe_topic(config, a, TIMEOUT_MS, &info, err, sizeof(err)),
                     CF_OK);
    assert_int_equal(info.partitions, 3);
    assert_int_equal(info.replication_factor, 1);
    assert_string_equal(info.cleanup_policy, "delete");
    assert_int_equal(info.retention_ms, 7LL * 24 * 3600 * 1000);

    assert_int_equal(cf_kafka_describe_topic(config, b, TIMEOUT_MS, &info, err, sizeof(err)),
                     CF_OK);
    assert_int_equal(info.partitions, 1);
    assert_string_equal(info.cleanup_policy, "compact");
    assert_int_equal(info.retention_ms, -1);

    /* Re-creating with other settings keeps the topic as it is (documented). */
    const struct cf_topic_spec other[] = {{a, 6, 1, "compact", 1000}};
    assert_int_equal(cf_kafka_create_topics(config, other, 1, TIMEOUT_MS, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_kafka_describe_topic(config, a, TIMEOUT_MS, &info, err, sizeof(err)),
                     CF_OK);
    assert_int_equal(info.partitions, 3);
    assert_string_equal(info.cleanup_policy, "delete");
}

static void test_missing_topic(void **state)
{
    (void)state;
    char missing[160], err[512] = "";
    struct cf_topic_info info;
    name(missing, sizeof(missing), "never-created");

    assert_int_equal(cf_kafka_describe_topic(config, missing, 3000, &info, err, sizeof(err)),
                     CF_ENOTFOUND);
    /* The broker refuses an impossible replication factor: the error names the topic. */
    const struct cf_topic_spec bad[] = {{missing, 1, 3, NULL, 0}};
    assert_int_not_equal(cf_kafka_create_topics(config, bad, 1, TIMEOUT_MS, err, sizeof(err)),
                         CF_OK);
    assert_non_null(strstr(err, missing));
    /* Nobody auto-creates it either: producing fails instead (after message.timeout.ms, set
     * short here through the KAFKA_ passthrough). */
    struct cf_config *short_timeout = NULL;
    char *envp[] = {"KAFKA_MESSAGE_TIMEOUT_MS=1500", NULL};
    assert_int_equal(cf_config_load(table, sizeof(table) / sizeof(table[0]), envp, &short_timeout,
                                    err, sizeof(err)),
                     CF_OK);
    struct cf_kafka_producer *p = NULL;
    assert_int_equal(cf_kafka_producer_new(short_timeout, NULL, TIMEOUT_MS, &p, err, sizeof(err)),
                     CF_OK);
    int64_t t0 = cf_clock_mono_ms();
    assert_int_equal(
        cf_kafka_produce_sync(p, missing, "k", 1, "v", 1, NULL, 0, 10000, err, sizeof(err)),
        CF_EKAFKA);
    fprintf(stderr, "produce to a missing topic: %s after %" PRId64 " ms\n", err, cf_clock_mono_ms() - t0);
    cf_kafka_producer_free(p);
    cf_config_free(short_timeout);
    assert_int_equal(cf_kafka_describe_topic(config, missing, 3000, &info, err, sizeof(err)),
                     CF_ENOTFOUND);
}

/* What the producer writes comes back byte for byte: keys (null and empty too), values,
 * headers (with a null value), in order within a partition. */
static void test_produce_consume_roundtrip(void **state)
{
    (void)state;
    char topic[160], err[512] = "";
    name(topic, sizeof(topic), "roundtrip");
    const struct cf_topic_spec spec = {topic, 1, 1, "delete", 3600000};
    struct cf_kafka_producer *p = NULL;
    struct cf_kafka_consumer *c = NULL;
    const struct cf_header headers[] = {{"ce_type", "caseflow.CaseOpened", 19}, {"empty", NULL, 0}};
    const char binary[] = {0, 1, 2, (char)0xff, 0};

    assert_int_equal(cf_kafka_create_topics(config, &spec, 1, TIMEOUT_MS, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_kafka_producer_new(config, NULL, TIMEOUT_MS, &p, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_kafka_produce_sync(p, topic, "case-1", 6, binary, sizeof(binary), headers,
                                           2, TIMEOUT_MS, err, sizeof(err)),
                     CF_OK);
    assert_int_equal(
        cf_kafka_produce_sync(p, topic, NULL, 0, NULL, 0, NULL, 0, TIMEOUT_MS, err, sizeof(err)),
        CF_OK);
    for (int i = 0; i < 100; i++) {
        char v[16];
        int len = snprintf(v, sizeof(v), "n%03d", i);
        assert_int_equal(
            cf_kafka_produce(p, topic, "", 0, v, (size_t)len, NULL, 0, err, sizeof(err)), CF_OK);
    }
    assert_int_equal(cf_kafka_producer_flush(p, TIMEOUT_MS, err, sizeof(err)), CF_OK);
    cf_kafka_producer_free(p);

    const char *topics[] = {topic};
    assert_int_equal(cf_kafka_consumer_new(config, NULL, topics, 1, NULL, &c, err, sizeof(err)),
                     CF_OK);
    int got = 0;
    int64_t deadline = cf_clock_mono_ms() + TIMEOUT_MS;
    while (got < 102 && cf_clock_mono_ms() < deadline) {
        struct cf_kafka_record *r = NULL;
        cf_status st = cf_kafka_consumer_poll(c, 500, &r, err, sizeof(err));
        if (st == CF_ETIMEOUT)
            continue;
        assert_int_equal(st, CF_OK);
        assert_string_equal(r->topic, topic);
        assert_int_equal(r->offset, got);
        assert_true(r->timestamp_ms > 0);
        if (got == 0) {
            assert_int_equal(r->key_len, 6);
            assert_memory_equal(r->key, "case-1", 6);
            assert_int_equal(r->value_len, sizeof(binary));
            assert_memory_equal(r->value, binary, sizeof(binary));
            assert_int_equal(r->header_count, 2);
            assert_string_equal(r->headers[0].name, "ce_type");
            assert_int_equal(r->headers[0].len, 19);
            assert_memory_equal(r->headers[0].value, "caseflow.CaseOpened", 19);
            assert_string_equal(r->headers[1].name, "empty");
            assert_null(r->headers[1].value);
        } else if (got == 1) {
            assert_null(r->key);
            assert_null(r->value);
            assert_int_equal(r->header_count, 0);
        } else {
            char v[16];
            snprintf(v, sizeof(v), "n%03d", got - 2);
            assert_non_null(r->key); /* empty, not null */
            assert_int_equal(r->key_len, 0);
            assert_int_equal(r->value_len, 4);
            assert_memory_equal(r->value, v, 4);
        }
        cf_kafka_record_release(r);
        got++;
    }
    assert_int_equal(got, 102);
    cf_kafka_consumer_free(c);
}

/* What cf_kafka_produce_async's callback was told about each record. */
struct async_seen {
    int calls;
    cf_status status;
};

static void on_async(void *opaque, cf_status status, const char *reason)
{
    struct async_seen *seen = opaque;
    assert_non_null(reason);
    seen->calls++;
    seen->status = status;
}

/* Asynchronous produce: every record is reported exactly once, through the wake fd and
 * cf_kafka_producer_poll, and is on the topic in order; a record that cannot be delivered is
 * reported CF_EKAFKA; one still queued when the producer is freed is reported too. */
static void test_produce_async(void **state)
{
    (void)state;
    enum { N = 50 };
    char topic[160], missing[160], err[512] = "";
    name(topic, sizeof(topic), "async");
    name(missing, sizeof(missing), "async-missing");
    const struct cf_topic_spec spec = {topic, 1, 1, "delete", 3600000};
    struct cf_kafka_producer *p = NULL;
    struct cf_kafka_consumer *c = NULL;
    struct async_seen seen[N + 1];
    int fds[2];
    memset(seen, 0, sizeof(seen));
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);

    assert_int_equal(cf_kafka_create_topics(config, &spec, 1, TIMEOUT_MS, err, sizeof(err)), CF_OK);
    struct cf_config *short_timeout = NULL;
    char *envp[] = {"KAFKA_MESSAGE_TIMEOUT_MS=1500", NULL};
    assert_int_equal(cf_config_load(table, sizeof(table) / sizeof(table[0]), envp, &short_timeout,
                                    err, sizeof(err)),
                     CF_OK);
    assert_int_equal(cf_kafka_producer_new(short_timeout, NULL, TIMEOUT_MS, &p, err, sizeof(err)),
                     CF_OK);
    cf_kafka_producer_wake_fd(p, fds[1]);
    assert_int_equal(cf_kafka_produce_async(NULL, topic, NULL, 0, NULL, 0, NULL, 0, on_async,
                                            &seen[0], err, sizeof(err)),
                     CF_EINVAL);
    for (int i = 0; i < N; i++) {
        char v[16];
        int len = snprintf(v, sizeof(v), "a%03d", i);
        assert_int_equal(cf_kafka_produce_async(p, topic, "k", 1, v, (size_t)len, NULL, 0, on_async,
                                                &seen[i], err, sizeof(err)),
                         CF_OK);
    }
    assert_int_equal(cf_kafka_produce_async(p, missing, "k", 1, "v", 1, NULL, 0, on_async, &seen[N],
                                            err, sizeof(err)),
                     CF_OK);
    /* Only the wake fd is waited on, as an event loop would. */
    int64_t deadline = cf_clock_mono_ms() + TIMEOUT_MS;
    int reported = 0;
    while (reported < N + 1 && cf_clock_mono_ms() < deadline) {
        struct pollfd pfd = {fds[0], POLLIN, 0};
        char buf[64];
        (void)poll(&pfd, 1, 500);
        while (read(fds[0], buf, sizeof(buf)) > 0)
            ;
        (void)cf_kafka_producer_poll(p, 0);
        reported = 0;
        for (int i = 0; i <= N; i++)
            reported += seen[i].calls;
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(seen[i].calls, 1);
        assert_int_equal(seen[i].status, CF_OK);
    }
    assert_int_equal(seen[N].calls, 1);
    assert_int_equal(seen[N].status, CF_EKAFKA);

    /* Freed with a record still queued: it is reported (purged), not lost silently. */
    struct async_seen last = {0, CF_OK};
    assert_int_equal(cf_kafka_produce_async(p, missing, "k", 1, "v", 1, NULL, 0, on_async, &last,
                                            err, sizeof(err)),
                     CF_OK);
    cf_kafka_producer_free(p);
    assert_int_equal(last.calls, 1);
    assert_int_equal(last.status, CF_EKAFKA);
    cf_config_free(short_timeout);
    close(fds[0]);
    close(fds[1]);

    const char *topics[] = {topic};
    assert_int_equal(cf_kafka_consumer_new(config, NULL, topics, 1, NULL, &c, err, sizeof(err)),
                     CF_OK);
    int got = 0;
    deadline = cf_clock_mono_ms() + TIMEOUT_MS;
    while (got < N && cf_clock_mono_ms() < deadline) {
        struct cf_kafka_record *r = NULL;
        cf_status st = cf_kafka_consumer_poll(c, 500, &r, err, sizeof(err));
        if (st == CF_ETIMEOUT)
            continue;
        assert_int_equal(st, CF_OK);
        char v[16];
        snprintf(v, sizeof(v), "a%03d", got);
        assert_int_equal(r->value_len, 4);
        assert_memory_equal(r->value, v, 4);
        cf_kafka_record_release(r);
        got++;
    }
    assert_int_equal(got, N);
    cf_kafka_consumer_free(c);
}

/* A group consumer commits; the group's progress then shows no lag. */
static void test_group_commit_and_progress(void **state)
{
    (void)state;
    char topic[160], group[160], err[512] = "";
    name(topic, sizeof(topic), "grouped");
    name(group, sizeof(group), "group");
    const struct cf_topic_spec spec = {topic, 2, 1, "delete", 3600000};
    struct cf_kafka_producer *p = NULL;
    struct cf_kafka_consumer *c = NULL;
    struct cf_kafka_group_progress progress;

    assert_int_equal(cf_kafka_create_topics(config, &spec, 1, TIMEOUT_MS, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_kafka_producer_new(config, NULL, TIMEOUT_MS, &p, err, sizeof(err)), CF_OK);
    for (int i = 0; i < 50; i++) {
        char k[16];
        int len = snprintf(k, sizeof(k), "k%d", i);
        assert_int_equal(
            cf_kafka_produce(p, topic, k, (size_t)len, "v", 1, NULL, 0, err, sizeof(err)), CF_OK);
    }
    assert_int_equal(cf_kafka_producer_flush(p, TIMEOUT_MS, err, sizeof(err)), CF_OK);
    cf_kafka_producer_free(p);

    assert_int_equal(
        cf_kafka_group_progress(config, group, topic, TIMEOUT_MS, &progress, err, sizeof(err)),
        CF_OK);
    assert_int_equal(progress.end, 50);
    assert_int_equal(progress.committed, 0);
    assert_int_equal(progress.lag, 50);

    const char *topics[] = {topic};
    assert_int_equal(cf_kafka_consumer_new(config, group, topics, 1, NULL, &c, err, sizeof(err)),
                     CF_OK);
    int got = 0;
    int64_t deadline = cf_clock_mono_ms() + 30000;
    while (got < 50 && cf_clock_mono_ms() < deadline) {
        struct cf_kafka_record *r = NULL;
        if (cf_kafka_consumer_poll(c, 500, &r, err, sizeof(err)) != CF_OK)
            continue;
        cf_kafka_record_release(r);
        got++;
    }
    assert_int_equal(got, 50);
    assert_int_equal(cf_kafka_consumer_commit(c, err, sizeof(err)), CF_OK);
    cf_kafka_consumer_free(c);

    assert_int_equal(
        cf_kafka_group_progress(config, group, topic, TIMEOUT_MS, &progress, err, sizeof(err)),
        CF_OK);
    assert_int_equal(progress.committed, 50);
    assert_int_equal(progress.lag, 0);
}

int main(void)
{
    cf_log_init("test_kafka", CF_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_topics_idempotent),
        cmocka_unit_test(test_missing_topic),
        cmocka_unit_test(test_produce_consume_roundtrip),
        cmocka_unit_test(test_produce_async),
        cmocka_unit_test(test_group_commit_and_progress),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
