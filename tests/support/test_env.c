/* test_env.c — what integration tests share (see test_env.h). */
#include "test_env.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "avro_serde.h"
#include "child.h"
#include "kafka.h"
#include "registry.h"
#include "tz.h"

extern char **environ;

void cf_test_run_id(char *buf, size_t len)
{
    (void)snprintf(buf, len, "%ld-%ld", (long)getpid(), (long)time(NULL));
}

struct cf_config *cf_test_kafka_config(const struct cf_config_entry *table, size_t n)
{
    char err[256] = "";
    char *envp[64] = {NULL};
    size_t k = 0;
    struct cf_config *config = NULL;
    for (char **e = environ; *e != NULL && k < 63; e++)
        if (strncmp(*e, "KAFKA_", 6) == 0)
            envp[k++] = *e;
    if (cf_config_load(table, n, envp, &config, err, sizeof(err)) != CF_OK)
        fprintf(stderr, "config: %s\n", err);
    return config;
}

const char *cf_test_registry_url(void)
{
    const char *url = getenv("CASEFLOW_REGISTRY_URL");
    return url != NULL ? url : "http://127.0.0.1:18081/apis/ccompat/v7";
}

int cf_test_service_clients(const struct cf_config_entry *table, size_t n,
                            struct cf_config **config, struct cf_registry **registry,
                            struct cf_serde **serde)
{
    char err[512];
    *config = cf_test_kafka_config(table, n);
    if (*config == NULL)
        return -1;
    if (cf_registry_new(cf_test_registry_url(), 10000, registry, err, sizeof(err)) != CF_OK ||
        cf_serde_new(*registry, NULL, serde, err, sizeof(err)) != CF_OK) {
        fprintf(stderr, "registry: %s\n", err);
        return -1;
    }
    return 0;
}

struct cf_kafka_consumer *cf_test_consumer_at_end(const struct cf_config *config,
                                                  const char *const *topics, size_t n)
{
    char err[512];
    struct cf_kafka_consumer *consumer = NULL;
    const struct cf_kafka_consumer_options at_end = {false, false, "latest"};
    if (cf_kafka_consumer_new(config, NULL, topics, n, &at_end, &consumer, err, sizeof(err)) !=
        CF_OK) {
        fprintf(stderr, "consumer: %s\n", err);
        return NULL;
    }
    /* librdkafka looks the end offsets up when it starts fetching, during these polls. */
    for (int64_t end = cf_clock_mono_ms() + 2000; cf_clock_mono_ms() < end;) {
        struct cf_kafka_record *r = NULL;
        if (cf_kafka_consumer_poll(consumer, 100, &r, err, sizeof(err)) == CF_OK)
            cf_kafka_record_release(r);
    }
    return consumer;
}

void cf_test_poll_into(struct cf_kafka_consumer *consumer, struct cf_serde *serde,
                       bool (*decode)(const char *topic), int timeout_ms, json_t *seen)
{
    struct cf_kafka_record *r = NULL;
    char err[512];
    if (cf_kafka_consumer_poll(consumer, timeout_ms, &r, err, sizeof(err)) != CF_OK)
        return;
    json_t *rec = json_object();
    json_object_set_new(rec, "topic", json_string(r->topic));
    json_object_set_new(rec, "key", json_stringn(r->key != NULL ? r->key : "", r->key_len));
    json_t *headers = json_object();
    for (size_t i = 0; i < r->header_count; i++)
        json_object_set_new(headers, r->headers[i].name,
                            json_stringn(r->headers[i].value != NULL ? r->headers[i].value : "",
                                         r->headers[i].len));
    json_object_set_new(rec, "headers", headers);
    json_t *value = NULL;
    if (decode(r->topic) && cf_serde_decode_json(serde, r->topic, r->value, r->value_len, &value,
                                                 err, sizeof(err)) == CF_OK)
        json_object_set_new(rec, "value", value);
    json_array_append_new(seen, rec);
    cf_kafka_record_release(r);
}

void cf_test_service_teardown(pid_t pid, struct cf_kafka_consumer *consumer, json_t *seen,
                              struct cf_serde *serde, struct cf_registry *registry,
                              struct cf_config *config)
{
    cf_test_kill_child(pid);
    cf_kafka_consumer_free(consumer);
    json_decref(seen);
    cf_serde_free(serde);
    cf_registry_free(registry);
    cf_config_free(config);
}

long long cf_test_group_backlog(const struct cf_config *config, const char *group,
                                const char *const *topics, size_t n)
{
    long long sum = 0;
    for (size_t i = 0; i < n; i++) {
        char err[512] = "";
        struct cf_kafka_group_progress p;
        if (cf_kafka_group_progress(config, group, topics[i], 10000, &p, err, sizeof(err)) !=
            CF_OK) {
            fprintf(stderr, "backlog of group %s on %s: %s\n", group, topics[i], err);
            return -1;
        }
        sum += (long long)p.lag;
    }
    return sum;
}

void cf_test_group_to_end(const struct cf_config *config, const char *group,
                          const char *const *topics, size_t n)
{
    char err[512] = "";
    if (cf_kafka_group_to_end(config, group, topics, n, 30000, err, sizeof(err)) != CF_OK)
        fail_msg("moving group %s to the end of its topics: %s", group, err);
}

void cf_test_wait_day_room(const char *zone, int64_t ahead_ms, int minutes)
{
    struct cf_tz *tz = NULL;
    struct cf_tz_civil c;
    bool told = false;

    assert_int_equal(cf_tz_new(zone, &tz, NULL, 0), CF_OK);
    for (;;) {
        assert_int_equal(cf_tz_to_civil(tz, cf_clock_wall_ms() + ahead_ms, &c, NULL, 0), CF_OK);
        if (c.hour * 60 + c.minute + minutes <= 1440)
            break;
        if (!told)
            fprintf(stderr, "waiting for midnight in %s to pass (the test books %d minutes of one "
                            "local day)\n",
                    zone, minutes);
        told = true;
        cf_clock_sleep_ms(5000);
    }
    cf_tz_free(tz);
}
