/* Every caseflow schema through the real Kafka and registry: a record built from JSON,
 * encoded in the Confluent wire format with its CloudEvents headers, produced to its topic,
 * consumed (read_committed) and decoded back to the same JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "avro_serde.h"
#include "cloudevents.h"
#include "kafka.h"
#include "sample_json.h"
#include "topics.h"
#include "uuid.h"
#include "test_env.h"

#define TIMEOUT_MS 60000

static char err[1024];

struct sent {
    char key[CF_UUID_LEN + 1];
    json_t *json;
    bool seen;
};

static const char *header(const struct cf_kafka_record *rec, const char *name, char *buf,
                          size_t len)
{
    for (size_t i = 0; i < rec->header_count; i++)
        if (strcmp(rec->headers[i].name, name) == 0) {
            (void)snprintf(buf, len, "%.*s", (int)rec->headers[i].len,
                           (const char *)rec->headers[i].value);
            return buf;
        }
    return NULL;
}

static void test_every_schema_through_kafka(void **state)
{
    (void)state;
    size_t n;
    const struct cf_topic *topics = cf_topics_all(&n);
    struct cf_topic_spec *specs = calloc(n, sizeof(*specs));
    const char **names = calloc(n, sizeof(*names));
    struct sent *sent = calloc(n, sizeof(*sent));
    struct cf_registry *registry = NULL;
    struct cf_serde *serde = NULL;
    struct cf_kafka_producer *producer = NULL;
    struct cf_kafka_consumer *consumer = NULL;

    for (size_t i = 0; i < n; i++) {
        specs[i] = (struct cf_topic_spec){topics[i].name, 3, 1,
                                          topics[i].compacted ? "compact" : "delete", 0};
        names[i] = topics[i].name;
    }
    assert_int_equal(cf_kafka_create_topics(NULL, specs, n, TIMEOUT_MS, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_registry_new(cf_test_registry_url(), 10000, &registry, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_serde_new(registry, NULL, &serde, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_kafka_producer_new(NULL, NULL, TIMEOUT_MS, &producer, err, sizeof(err)),
                     CF_OK);

    for (size_t i = 0; i < n; i++) {
        struct cf_schema *schema = NULL;
        struct cf_cloudevent ce;
        char event_id[CF_UUID_LEN + 1];
        unsigned char *buf = NULL;
        size_t len = 0;
        assert_int_equal(cf_schema_load(NULL, topics[i].schema_name, &schema, err, sizeof(err)), CF_OK);
        sent[i].json = cf_test_sample_json(schema, cf_schema_root(schema), true);
        assert_non_null(sent[i].json);
        assert_int_equal(cf_uuid_v4(sent[i].key), CF_OK);
        assert_int_equal(cf_uuid_v4(event_id), CF_OK);
        json_object_set_new(json_object_get(sent[i].json, "meta"), "event_id", json_string(event_id));
        if (cf_serde_encode_json(serde, topics[i].name, sent[i].json, &buf, &len, err,
                                 sizeof(err)) != CF_OK)
            fail_msg("encode %s: %s", topics[i].name, err);
        assert_int_equal(cf_cloudevent_from_json(&ce, "test", topics[i].schema_name, sent[i].json,
                                                 err, sizeof(err)), CF_OK);
        if (cf_kafka_produce_sync(producer, topics[i].name, sent[i].key, strlen(sent[i].key), buf,
                                  len, ce.headers, CF_CE_HEADER_COUNT, TIMEOUT_MS, err,
                                  sizeof(err)) != CF_OK)
            fail_msg("produce %s: %s", topics[i].name, err);
        free(buf);
        cf_schema_free(schema);
    }

    assert_int_equal(cf_kafka_consumer_new(NULL, NULL, names, n, NULL, &consumer, err, sizeof(err)),
                     CF_OK);
    size_t seen = 0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (seen < n) {
        struct cf_kafka_record *rec = NULL;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > TIMEOUT_MS / 1000)
            break;
        if (cf_kafka_consumer_poll(consumer, 500, &rec, err, sizeof(err)) != CF_OK)
            continue;
        for (size_t i = 0; i < n; i++) {
            if (sent[i].seen || strcmp(rec->topic, topics[i].name) != 0 ||
                rec->key_len != CF_UUID_LEN || memcmp(rec->key, sent[i].key, CF_UUID_LEN) != 0)
                continue;
            json_t *got = NULL;
            char hbuf[256];
            if (cf_serde_decode_json(serde, rec->topic, rec->value, rec->value_len, &got, err,
                                     sizeof(err)) != CF_OK)
                fail_msg("decode %s: %s", rec->topic, err);
            if (!json_equal(got, sent[i].json)) {
                char *a = json_dumps(sent[i].json, JSON_COMPACT), *b = json_dumps(got, JSON_COMPACT);
                fail_msg("%s: sent %s\ngot %s", rec->topic, a, b);
            }
            assert_string_equal(header(rec, "ce_type", hbuf, sizeof(hbuf)), topics[i].schema_name);
            assert_string_equal(header(rec, "ce_id", hbuf, sizeof(hbuf)),
                                json_string_value(json_object_get(json_object_get(got, "meta"), "event_id")));
            assert_string_equal(header(rec, "ce_specversion", hbuf, sizeof(hbuf)), "1.0");
            assert_string_equal(header(rec, "content-type", hbuf, sizeof(hbuf)), "application/avro");
            json_decref(got);
            sent[i].seen = true;
            seen++;
        }
        cf_kafka_record_release(rec);
    }
    for (size_t i = 0; i < n; i++)
        if (!sent[i].seen)
            fail_msg("the record produced to %s never came back", topics[i].name);

    for (size_t i = 0; i < n; i++)
        json_decref(sent[i].json);
    cf_kafka_consumer_free(consumer);
    cf_kafka_producer_free(producer);
    cf_serde_free(serde);
    cf_registry_free(registry);
    free(sent);
    free(names);
    free(specs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_schema_through_kafka),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
