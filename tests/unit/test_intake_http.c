/* test_intake_http.c — the pure parts of intake's HTTP endpoint: Content-Type, routes, error
 * bodies, schema error paths, idempotency keys and the connection limit setting. No server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

static void test_content_type(void **state)
{
    (void)state;
    assert_true(intake_http_content_type_ok("application/json"));
    assert_true(intake_http_content_type_ok("Application/JSON"));
    assert_true(intake_http_content_type_ok(" application/json "));
    assert_true(intake_http_content_type_ok("application/json; charset=utf-8"));
    assert_true(intake_http_content_type_ok("application/json;charset=UTF-8"));
    assert_true(intake_http_content_type_ok("application/json; charset=\"utf-8\""));
    assert_true(intake_http_content_type_ok("application/json; foo=bar; charset=utf-8"));
    assert_false(intake_http_content_type_ok(NULL));
    assert_false(intake_http_content_type_ok(""));
    assert_false(intake_http_content_type_ok("text/plain"));
    assert_false(intake_http_content_type_ok("application/jsonx"));
    assert_false(intake_http_content_type_ok("application/json-patch+json"));
    assert_false(intake_http_content_type_ok("application/x-www-form-urlencoded"));
    assert_false(intake_http_content_type_ok("application/json; charset=latin1"));
    assert_false(intake_http_content_type_ok("application/json; charset"));
    assert_false(intake_http_content_type_ok("application/json; charset=\"utf-8"));
    assert_false(intake_http_content_type_ok("application/json garbage"));
}

static void test_routes(void **state)
{
    (void)state;
    char id[CF_UUID_LEN + 1];
    assert_int_equal(intake_http_route_of("/healthz", id), INTAKE_HTTP_ROUTE_HEALTHZ);
    assert_int_equal(intake_http_route_of("/readyz", id), INTAKE_HTTP_ROUTE_READYZ);
    assert_int_equal(intake_http_route_of("/metrics", id), INTAKE_HTTP_ROUTE_METRICS);
    assert_int_equal(intake_http_route_of("/metrics/", id), INTAKE_HTTP_ROUTE_NONE);
    assert_int_equal(intake_http_route_of("/v1/inquiries", id), INTAKE_HTTP_ROUTE_INQUIRIES);
    assert_int_equal(intake_http_route_of("/v1/inquiries/70CA9B5A-5285-48f5-aed5-5a45ceea230a", id),
                     INTAKE_HTTP_ROUTE_INQUIRY);
    assert_string_equal(id, "70ca9b5a-5285-48f5-aed5-5a45ceea230a");
    assert_int_equal(intake_http_route_of("/v1/inquiries/not-a-uuid", id),
                     INTAKE_HTTP_ROUTE_INQUIRY);
    assert_string_equal(id, "");
    assert_int_equal(intake_http_route_of("/v1/inquiries/", id), INTAKE_HTTP_ROUTE_NONE);
    assert_int_equal(intake_http_route_of("/v1/inquiries/a/b", id), INTAKE_HTTP_ROUTE_NONE);
    assert_int_equal(intake_http_route_of("/v1/inquiriesx", id), INTAKE_HTTP_ROUTE_NONE);
    assert_int_equal(intake_http_route_of("/", id), INTAKE_HTTP_ROUTE_NONE);
    assert_int_equal(intake_http_route_of(NULL, id), INTAKE_HTTP_ROUTE_NONE);
    assert_string_equal(intake_http_allowed(INTAKE_HTTP_ROUTE_INQUIRIES), "POST");
    assert_string_equal(intake_http_allowed(INTAKE_HTTP_ROUTE_HEALTHZ), "GET, HEAD");
    assert_string_equal(intake_http_allowed(INTAKE_HTTP_ROUTE_METRICS), "GET, HEAD");
}

static void test_errors_json(void **state)
{
    (void)state;
    struct intake_http_error e[] = {
        {"$.contact.phone", "PHONE_INVALID", "not a phone number"},
        {"$", "JSON_INVALID", "quote \" and backslash \\"},
        {NULL, NULL, "\xff not utf-8"},
    };
    char *text = intake_http_errors_json(e, 3);
    assert_non_null(text);
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    assert_non_null(doc);
    json_t *list = json_object_get(doc, "errors");
    assert_int_equal(json_array_size(list), 3);
    json_t *first = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(first, "path")), "$.contact.phone");
    assert_string_equal(json_string_value(json_object_get(first, "code")), "PHONE_INVALID");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "message")),
                        "quote \" and backslash \\");
    json_t *third = json_array_get(list, 2);
    assert_string_equal(json_string_value(json_object_get(third, "path")), "");
    assert_string_equal(json_string_value(json_object_get(third, "message")), "");
    json_decref(doc);
    free(text);

    text = intake_http_errors_json(NULL, 0);
    assert_string_equal(text, "{\"errors\":[]}");
    free(text);
}

static void test_schema_error(void **state)
{
    (void)state;
    char path[64], msg[64];
    intake_http_schema_error("$.inquiry.patient.nickname: unknown field", path, sizeof(path), msg,
                             sizeof(msg));
    assert_string_equal(path, "$.patient.nickname");
    assert_string_equal(msg, "unknown field");
    intake_http_schema_error("$.inquiry.reports[1].url: expected a string", path, sizeof(path), msg,
                             sizeof(msg));
    assert_string_equal(path, "$.reports[1].url");
    intake_http_schema_error("$.inquiry: expected an object", path, sizeof(path), msg, sizeof(msg));
    assert_string_equal(path, "$");
    assert_string_equal(msg, "expected an object");
    intake_http_schema_error("$.inquiryx.a: unknown field", path, sizeof(path), msg, sizeof(msg));
    assert_string_equal(path, "$");
    intake_http_schema_error("$.meta.event_id: expected a string", path, sizeof(path), msg,
                             sizeof(msg));
    assert_string_equal(path, "$");
    intake_http_schema_error("registry said no", path, sizeof(path), msg, sizeof(msg));
    assert_string_equal(path, "$");
    assert_string_equal(msg, "registry said no");
    intake_http_schema_error(NULL, path, sizeof(path), msg, sizeof(msg));
    assert_string_equal(path, "$");
    assert_string_equal(msg, "");
    /* Cut, never overrun. */
    char small[8];
    intake_http_schema_error("$.inquiry.patient.given_name: expected a string", small,
                             sizeof(small), msg, 4);
    assert_string_equal(small, "$.patie");
    assert_string_equal(msg, "exp");
}

static void test_idem_key(void **state)
{
    (void)state;
    assert_true(intake_http_idem_key_ok("web-1b747cd9ae0c4bd98183a837e8103076"));
    assert_false(intake_http_idem_key_ok(NULL));
    assert_false(intake_http_idem_key_ok(""));
    assert_false(intake_http_idem_key_ok("has space"));
    assert_false(intake_http_idem_key_ok("caf\xc3\xa9"));
    char long_key[300];
    memset(long_key, 'k', sizeof(long_key));
    long_key[255] = '\0';
    assert_true(intake_http_idem_key_ok(long_key));
    long_key[255] = 'k';
    long_key[256] = '\0';
    assert_false(intake_http_idem_key_ok(long_key));

    char a[INTAKE_HTTP_REDIS_KEY_LEN], b[INTAKE_HTTP_REDIS_KEY_LEN];
    assert_int_equal(intake_http_idem_redis_key("key-1", a), CF_OK);
    assert_int_equal(intake_http_idem_redis_key("key-1", b), CF_OK);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), strlen("intake:http:idem:") + 64);
    assert_memory_equal(a, "intake:http:idem:", 17);
    assert_null(strstr(a, "key-1"));
    /* SHA-256("abc") */
    assert_int_equal(intake_http_idem_redis_key("abc", a), CF_OK);
    assert_string_equal(a + 17, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(intake_http_idem_redis_key("key-2", b), CF_OK);
    assert_string_not_equal(a, b);
    assert_int_equal(intake_http_idem_redis_key(NULL, a), CF_EINVAL);
}

/* The connection limit is a setting: 1024 unless CASEFLOW_INTAKE_HTTP_MAX_CONNECTIONS says
 * otherwise, within 1..65536. */
static void test_config_max_connections(void **state)
{
    (void)state;
    const struct cf_config_entry table[] = {INTAKE_HTTP_CONFIG_ENTRIES};
    const size_t n = sizeof(table) / sizeof(table[0]);
    struct cf_config *config = NULL;
    char err[256] = "";
    char *none[] = {NULL};
    char *some[] = {"CASEFLOW_INTAKE_HTTP_MAX_CONNECTIONS=4096", NULL};
    char *zero[] = {"CASEFLOW_INTAKE_HTTP_MAX_CONNECTIONS=0", NULL};
    assert_int_equal(cf_config_load(table, n, none, &config, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_config_int(config, "CASEFLOW_INTAKE_HTTP_MAX_CONNECTIONS"), 1024);
    cf_config_free(config);
    assert_int_equal(cf_config_load(table, n, some, &config, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_config_int(config, "CASEFLOW_INTAKE_HTTP_MAX_CONNECTIONS"), 4096);
    cf_config_free(config);
    config = NULL;
    assert_int_equal(cf_config_load(table, n, zero, &config, err, sizeof(err)), CF_ECONFIG);
    assert_non_null(strstr(err, "CASEFLOW_INTAKE_HTTP_MAX_CONNECTIONS"));
    cf_config_free(config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_type), cmocka_unit_test(test_routes),
        cmocka_unit_test(test_errors_json),  cmocka_unit_test(test_schema_error),
        cmocka_unit_test(test_idem_key),     cmocka_unit_test(test_config_max_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
