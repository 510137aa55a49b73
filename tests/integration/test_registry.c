/* Integration tests of the registry client and the topic codec against the real Apicurio
 * registry of deploy/stack (Confluent-compatible API). Subjects are unique to each run, so
 * the test never adds versions to the subjects the services use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "avro_convert.h"
#include "avro_serde.h"
#include "registry.h"
#include "schema.h"
#include "sample_json.h"
#include "topics.h"
#include "test_env.h"

static char err[1024];
static char run_id[32];

static struct cf_registry *registry(void)
{
    struct cf_registry *r = NULL;
    assert_int_equal(cf_registry_new(cf_test_registry_url(), 10000, &r, err, sizeof(err)), CF_OK);
    return r;
}

static struct cf_schema *parse_json(json_t *root)
{
    char *text = json_dumps(root, JSON_COMPACT);
    struct cf_schema *s = NULL;
    cf_status st = cf_schema_parse(text, strlen(text), &s, err, sizeof(err));
    if (st != CF_OK)
        fail_msg("parse: %s", err);
    free(text);
    return s;
}

/* v1 plus a field, with or without a default, at the top and inside the nested meta record. */
static struct cf_schema *evolve(const struct cf_schema *v1, bool with_defaults)
{
    json_t *root = json_deep_copy(cf_schema_root(v1));
    json_t *added = json_pack("{s:s, s:s}", "name", "added_top", "type", "string");
    if (with_defaults)
        json_object_set_new(added, "default", json_string("top-default"));
    json_array_append_new(json_object_get(root, "fields"), added);
    json_t *meta = json_object_get(json_array_get(json_object_get(root, "fields"), 0), "type");
    assert_string_equal(json_string_value(json_object_get(meta, "name")), "Meta");
    json_array_append_new(json_object_get(meta, "fields"),
                          json_pack("{s:s, s:[s,s], s:n}", "name", "added_nested", "type", "null",
                                    "long", "default"));
    struct cf_schema *s = parse_json(root);
    json_decref(root);
    return s;
}

/* Every caseflow schema registers (the assembled text, as written), and fetching it back by
 * id gives a schema with the same name, defaults and logical types. */
static void test_every_schema_registers_and_reads_back(void **state)
{
    (void)state;
    struct cf_registry *r = registry(), *fresh = registry();
    size_t n;
    const struct cf_topic *topics = cf_topics_all(&n);
    for (size_t i = 0; i < n; i++) {
        struct cf_schema *s = NULL;
        char subject[256];
        int32_t id = 0, again = 0;
        const struct cf_schema *back = NULL;
        assert_int_equal(cf_schema_load(NULL, topics[i].schema_name, &s, err, sizeof(err)), CF_OK);
        (void)snprintf(subject, sizeof(subject), "test-%s.%s-value", run_id, topics[i].name);
        if (cf_registry_register(r, subject, cf_schema_text(s), &id, err, sizeof(err)) != CF_OK)
            fail_msg("register %s: %s", subject, err);
        assert_true(id > 0);
        /* Registering the same text again is the same id (a fresh client asks the server). */
        assert_int_equal(cf_registry_register(fresh, subject, cf_schema_text(s), &again, err,
                                              sizeof(err)), CF_OK);
        assert_int_equal(again, id);
        assert_int_equal(cf_registry_schema(fresh, id, &back, err, sizeof(err)), CF_OK);
        assert_string_equal(cf_schema_name(back), topics[i].schema_name);
        assert_int_equal(avro_schema_equal(cf_schema_avro(back), cf_schema_avro(s)), 1);
        assert_non_null(strstr(cf_schema_text(back), "timestamp-millis"));
        cf_schema_free(s);
    }
    cf_registry_free(fresh);
    cf_registry_free(r);
}

/* Under BACKWARD, a new field with a default is compatible and registers as a new version;
 * an old record, fetched by its id, decodes into the new schema with the defaults. A new field
 * without a default is refused by the registry. */
static void check_evolution(struct cf_registry *r, const char *schema_name, json_t *old)
{
    struct cf_schema *v1 = NULL;
    char subject[256];
    int32_t id1 = 0, id2 = 0, id_bad = 0;
    bool compatible = false;
    assert_int_equal(cf_schema_load(NULL, schema_name, &v1, err, sizeof(err)), CF_OK);
    struct cf_schema *v2 = evolve(v1, true), *bad = evolve(v1, false);
    (void)snprintf(subject, sizeof(subject), "test-%s.evolution.%s-value", run_id, schema_name);

    assert_int_equal(cf_registry_register(r, subject, cf_schema_text(v1), &id1, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_registry_set_compatibility(r, subject, "BACKWARD", err, sizeof(err)), CF_OK);
    assert_int_equal(cf_registry_check_compatibility(r, subject, cf_schema_text(v2), &compatible,
                                                     err, sizeof(err)), CF_OK);
    if (!compatible)
        fail_msg("%s: the evolved schema is not BACKWARD compatible", schema_name);
    assert_int_equal(cf_registry_check_compatibility(r, subject, cf_schema_text(bad), &compatible,
                                                     err, sizeof(err)), CF_OK);
    if (compatible)
        fail_msg("%s: a field without default passed as BACKWARD compatible", schema_name);
    assert_int_equal(cf_registry_register(r, subject, cf_schema_text(bad), &id_bad, err, sizeof(err)),
                     CF_ESCHEMA);
    assert_non_null(strstr(err, "409"));
    assert_int_equal(cf_registry_register(r, subject, cf_schema_text(v2), &id2, err, sizeof(err)), CF_OK);
    assert_int_not_equal(id1, id2);

    /* An old record: built and encoded with v1, under v1's id. */
    avro_value_t value, decoded;
    unsigned char *buf = NULL;
    size_t len = 0;
    assert_int_equal(avro_generic_value_new(cf_schema_iface(v1), &value), 0);
    if (cf_avro_from_json(v1, cf_schema_root(v1), old, &value, err, sizeof(err)) != CF_OK)
        fail_msg("%s: old record: %s", schema_name, err);
    assert_int_equal(cf_serde_encode_wire(id1, &value, &buf, &len, err, sizeof(err)), CF_OK);

    /* A reader on v2 that knows nothing of v1 fetches the writer schema by id. */
    struct cf_registry *reader_side = registry();
    const struct cf_schema *writer = NULL;
    assert_int_equal(cf_registry_schema(reader_side, id1, &writer, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_serde_decode_payload(writer, v2, buf + CF_SERDE_HEADER_LEN,
                                             len - CF_SERDE_HEADER_LEN, &decoded, err, sizeof(err)),
                     CF_OK);
    json_t *got = NULL;
    assert_int_equal(cf_avro_to_json(v2, cf_schema_root(v2), &decoded, &got, err, sizeof(err)), CF_OK);
    assert_string_equal(json_string_value(json_object_get(got, "added_top")), "top-default");
    assert_true(json_is_null(json_object_get(json_object_get(got, "meta"), "added_nested")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(got, "meta"), "event_id")),
                        json_string_value(json_object_get(json_object_get(old, "meta"), "event_id")));

    json_decref(got);
    avro_value_decref(&decoded);
    avro_value_decref(&value);
    free(buf);
    cf_registry_free(reader_side);
    cf_schema_free(bad);
    cf_schema_free(v2);
    cf_schema_free(v1);
}

/* For every schema; CaseOpened with a realistic record, the others with generated ones. */
static void test_backward_evolution(void **state)
{
    (void)state;
    struct cf_registry *r = registry();
    size_t n;
    const struct cf_topic *topics = cf_topics_all(&n);
    json_t *old = json_load_file(CF_TESTS_DIR "/integration/case_opened.json", 0, NULL);
    assert_non_null(old);
    check_evolution(r, "caseflow.event.CaseOpened", old);
    json_decref(old);
    for (size_t i = 0; i < n; i++) {
        struct cf_schema *s = NULL;
        if (strcmp(topics[i].schema_name, "caseflow.event.CaseOpened") == 0)
            continue; /* done above; its subject already holds the evolved version */
        assert_int_equal(cf_schema_load(NULL, topics[i].schema_name, &s, err, sizeof(err)), CF_OK);
        old = cf_test_sample_json(s, cf_schema_root(s), true);
        assert_non_null(old);
        check_evolution(r, topics[i].schema_name, old);
        json_decref(old);
        cf_schema_free(s);
    }
    cf_registry_free(r);
}

/* A record naming a schema id the registry never issued: a clear CF_ENOTFOUND. */
static void test_unknown_schema_id(void **state)
{
    (void)state;
    struct cf_registry *r = registry();
    struct cf_serde *serde = NULL;
    const struct cf_schema *s = NULL;
    avro_value_t v;
    unsigned char record[] = {0, 0x7F, 0xFF, 0xFF, 0xF0, 0x02, 'x'};
    assert_int_equal(cf_registry_schema(r, 0x7FFFFFF0, &s, err, sizeof(err)), CF_ENOTFOUND);
    assert_non_null(strstr(err, "schema id 2147483632"));
    assert_int_equal(cf_serde_new(r, NULL, &serde, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_serde_decode(serde, "caseflow.case.opened", record, sizeof(record), &v, err,
                                     sizeof(err)), CF_ENOTFOUND);
    assert_non_null(strstr(err, "schema id 2147483632"));
    cf_serde_free(serde);
    cf_registry_free(r);
}

/* A registry that is not there: a retriable error naming it, quickly. */
static void test_unreachable_registry(void **state)
{
    (void)state;
    struct cf_registry *r = NULL;
    const struct cf_schema *s = NULL;
    assert_int_equal(cf_registry_new("http://127.0.0.1:1/apis/ccompat/v7", 2000, &r, err,
                                     sizeof(err)), CF_OK);
    cf_status st = cf_registry_schema(r, 1, &s, err, sizeof(err));
    assert_true(st == CF_EIO || st == CF_ETIMEOUT);
    assert_non_null(strstr(err, "127.0.0.1:1"));
    cf_registry_free(r);
}

int main(void)
{
    cf_test_run_id(run_id, sizeof(run_id));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_schema_registers_and_reads_back),
        cmocka_unit_test(test_backward_evolution),
        cmocka_unit_test(test_unknown_schema_id),
        cmocka_unit_test(test_unreachable_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
