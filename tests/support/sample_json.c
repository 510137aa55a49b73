/* sample_json.c — valid sample records for any schema, for tests. */
#include "sample_json.h"

#include <stdio.h>
#include <string.h>

#include "avro_convert.h"

/* xorshift: deterministic "random" data, so a failure can be reproduced. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

uint64_t cf_test_rand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* A valid JSON document for a type, in the canonical form cf_avro_to_json writes; with
 * fill_optional, unions take their last branch (the value), else their first (null). */
json_t *cf_test_sample_json(const struct cf_schema *s, const json_t *type, bool fill_optional)
{
    const char *logical;
    type = cf_schema_resolve(s, type);
    switch (cf_schema_kind(type, &logical)) {
    case AVRO_NULL: return json_null();
    case AVRO_BOOLEAN: return json_boolean(cf_test_rand() & 1);
    case AVRO_INT32:
        if (logical != NULL && strcmp(logical, "date") == 0) {
            char buf[40];
            cf_avro_format_millis((int64_t)(cf_test_rand() % 40000) * 86400000, buf, sizeof(buf));
            buf[10] = '\0';
            return json_string(buf);
        }
        return json_integer((json_int_t)(cf_test_rand() % 2000) - 1000);
    case AVRO_INT64:
        if (logical != NULL && strcmp(logical, "timestamp-millis") == 0) {
            char buf[40];
            cf_avro_format_millis((int64_t)(cf_test_rand() % 4000000000000ull), buf, sizeof(buf));
            return json_string(buf);
        }
        return json_integer((json_int_t)(cf_test_rand() % 1000000000000ull));
    case AVRO_FLOAT: return json_real(1.5);
    case AVRO_DOUBLE: return json_real(2.25 + (double)(cf_test_rand() % 100));
    case AVRO_STRING: {
        char buf[48];
        (void)snprintf(buf, sizeof(buf), "s%llu-\xC3\xA9\xE2\x82\xAC", (unsigned long long)(cf_test_rand() % 1000));
        return json_string(buf);
    }
    case AVRO_ENUM: {
        const json_t *symbols = json_object_get(type, "symbols");
        return json_incref(json_array_get(symbols, cf_test_rand() % json_array_size(symbols)));
    }
    case AVRO_RECORD: {
        json_t *obj = json_object();
        size_t i;
        const json_t *field;
        json_array_foreach(json_object_get(type, "fields"), i, field) {
            json_object_set_new(obj, json_string_value(json_object_get(field, "name")),
                                cf_test_sample_json(s, json_object_get(field, "type"), fill_optional));
        }
        return obj;
    }
    case AVRO_ARRAY: {
        json_t *arr = json_array();
        size_t n = fill_optional ? 1 + cf_test_rand() % 3 : 0;
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, cf_test_sample_json(s, json_object_get(type, "items"), fill_optional));
        return arr;
    }
    case AVRO_MAP: {
        json_t *obj = json_object();
        if (fill_optional)
            json_object_set_new(obj, "k1", cf_test_sample_json(s, json_object_get(type, "values"), true));
        return obj;
    }
    case AVRO_UNION:
        return cf_test_sample_json(s, json_array_get(type, fill_optional ? json_array_size(type) - 1 : 0),
                      fill_optional);
    default: return NULL; /* not a type: the caller's test fails on the NULL */
    }
}

