/* test_redis.c (unit) — the parts of the Redis module that need no server: backoff delays, key
 * rules, script SHA1s, argument checks. tests/integration/test_redis.c covers the rest, and
 * tests/unit/test_sha1.c the SHA1 digest itself. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "redis.h"

/* min(cap, base * 2^attempt) without overflow. */
static unsigned full_delay(unsigned attempt, unsigned base, unsigned cap)
{
    unsigned long long d = base < cap ? base : cap;
    for (unsigned i = 0; i < attempt && d < cap; i++)
        d *= 2;
    return d < cap ? (unsigned)d : cap;
}

static void test_backoff_grows_to_cap(void **state)
{
    (void)state;
    const uint32_t randoms[] = {0, 1, 7, 12345, 0x7fffffffu, UINT32_MAX};
    for (unsigned attempt = 0; attempt < 64; attempt++) {
        unsigned d = full_delay(attempt, 50, 1000);
        for (size_t j = 0; j < sizeof(randoms) / sizeof(randoms[0]); j++) {
            unsigned got = cf_redis_backoff_ms(attempt, 50, 1000, randoms[j]);
            assert_in_range(got, d / 2, d);
        }
    }
    /* The exact sequence of lower bounds: 25, 50, 100, 200, 400, 500, 500 ... */
    assert_int_equal(cf_redis_backoff_ms(0, 50, 1000, 0), 25);
    assert_int_equal(cf_redis_backoff_ms(1, 50, 1000, 0), 50);
    assert_int_equal(cf_redis_backoff_ms(3, 50, 1000, 0), 200);
    assert_int_equal(cf_redis_backoff_ms(4, 50, 1000, 0), 400);
    assert_int_equal(cf_redis_backoff_ms(5, 50, 1000, 0), 500);
    assert_int_equal(cf_redis_backoff_ms(30, 50, 1000, 0), 500);
    /* No overflow for huge attempts or bounds. */
    assert_in_range(cf_redis_backoff_ms(UINT_MAX, 50, 1000, 99), 500, 1000);
    assert_in_range(cf_redis_backoff_ms(UINT_MAX, UINT_MAX, UINT_MAX, UINT32_MAX),
                    UINT_MAX / 2, UINT_MAX);
    assert_in_range(cf_redis_backoff_ms(40, 3, UINT_MAX - 1, 5), (UINT_MAX - 1) / 2,
                    UINT_MAX - 1);
}

static void test_backoff_jitter_spreads(void **state)
{
    (void)state;
    /* Over many random inputs the delay of attempt 4 (d = 800) covers its whole range
     * [400, 800] rather than a few values: replicas must not retry in lockstep. */
    unsigned lo = UINT_MAX, hi = 0;
    unsigned seen[401] = {0};
    uint32_t x = 2463534242u;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        unsigned got = cf_redis_backoff_ms(4, 50, 1000, x);
        assert_in_range(got, 400, 800);
        lo = got < lo ? got : lo;
        hi = got > hi ? got : hi;
        seen[got - 400] = 1;
    }
    unsigned distinct = 0;
    for (size_t i = 0; i < 401; i++)
        distinct += seen[i];
    assert_true(lo <= 410);
    assert_true(hi >= 790);
    assert_true(distinct > 300);
}

static void test_backoff_degenerate(void **state)
{
    (void)state;
    assert_int_equal(cf_redis_backoff_ms(3, 0, 1000, 5), 0);
    assert_int_equal(cf_redis_backoff_ms(3, 50, 0, 5), 0);
    /* A base above the cap is clamped to the cap. */
    assert_in_range(cf_redis_backoff_ms(0, 5000, 1000, 123), 500, 1000);
    /* base 1: delays 0..1, then 1..2, ... */
    assert_in_range(cf_redis_backoff_ms(0, 1, 1000, UINT32_MAX), 0, 1);
    assert_in_range(cf_redis_backoff_ms(1, 1, 1000, UINT32_MAX), 1, 2);
}

static void test_key_check_accepts_ids(void **state)
{
    (void)state;
    char errbuf[256];
    const char *good[] = {
        "case:6f1c2a4e-0b7d-4c1e-9a55-3f2d7e8b9c01",
        "hold/specialist/42/2026-11-24T10:30Z",
        "idem:evt_01HZX.email",
        "a",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(cf_redis_key_check(good[i], errbuf, sizeof(errbuf)), CF_OK);

    char longest[CF_REDIS_MAX_KEY + 2];
    memset(longest, 'k', CF_REDIS_MAX_KEY);
    longest[CF_REDIS_MAX_KEY] = '\0';
    assert_int_equal(cf_redis_key_check(longest, errbuf, sizeof(errbuf)), CF_OK);
    longest[CF_REDIS_MAX_KEY] = 'k';
    longest[CF_REDIS_MAX_KEY + 1] = '\0';
    assert_int_equal(cf_redis_key_check(longest, errbuf, sizeof(errbuf)), CF_EINVAL);
    assert_non_null(strstr(errbuf, "longer than 200"));
}

static void test_key_check_rejects_personal_data(void **state)
{
    (void)state;
    struct {
        const char *key;
        const char *why;
    } bad[] = {
        {"patient:jane.doe@example.org", "'@'"},
        {"name:Jane Doe", "whitespace"},
        {"tab\there", "whitespace"},
        {"line\nbreak", "whitespace"},
        {"ctl\x01", "control character"},
        {"del\x7f", "control character"},
        {"city:K\xc3\xb6ln", "non-ASCII"},
        {"phone:+4915112345678", "punctuation"},
        {"quote\"", "punctuation"},
        {"", "empty"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char errbuf[256] = "";
        assert_int_equal(cf_redis_key_check(bad[i].key, errbuf, sizeof(errbuf)), CF_EINVAL);
        assert_non_null(strstr(errbuf, bad[i].why));
    }
    /* The message says what and where, never the key itself. */
    char errbuf[256] = "";
    assert_int_equal(cf_redis_key_check("jane.doe@example.org", errbuf, sizeof(errbuf)),
                     CF_EINVAL);
    assert_null(strstr(errbuf, "jane"));
    assert_null(strstr(errbuf, "example"));
    assert_non_null(strstr(errbuf, "byte 8"));
    assert_int_equal(cf_redis_key_check(NULL, errbuf, sizeof(errbuf)), CF_EINVAL);
    /* errbuf may be NULL. */
    assert_int_equal(cf_redis_key_check("a b", NULL, 0), CF_EINVAL);
}

static void check_sha(const char *source, const char *expected)
{
    struct cf_redis_script *script = NULL;
    char errbuf[256] = "";
    assert_int_equal(cf_redis_script_new(source, 0, &script, errbuf, sizeof(errbuf)), CF_OK);
    assert_string_equal(cf_redis_script_sha(script), expected);
    cf_redis_script_free(script);
}

/* A script is named by the SHA1 of its source (the digest itself: test_sha1.c). */
static void test_script_sha1(void **state)
{
    (void)state;
    /* The SHA1 Redis itself reports for "return 1", and a FIPS 180 example. */
    check_sha("return 1", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    check_sha("abc", "a9993e364706816aba3e25717850c26c9cd0d89d");
}

static void test_script_new_checks(void **state)
{
    (void)state;
    struct cf_redis_script *script = (struct cf_redis_script *)&script;
    char errbuf[256];
    assert_int_equal(cf_redis_script_new(NULL, 0, &script, errbuf, sizeof(errbuf)), CF_EINVAL);
    assert_null(script);
    assert_int_equal(cf_redis_script_new("", 0, &script, errbuf, sizeof(errbuf)), CF_EINVAL);
    assert_int_equal(cf_redis_script_new("return 1", 0x80, &script, errbuf, sizeof(errbuf)),
                     CF_EINVAL);
    assert_null(script);
    assert_int_equal(cf_redis_script_new("return 1", CF_REDIS_SCRIPT_IDEMPOTENT, &script, errbuf,
                                         sizeof(errbuf)),
                     CF_OK);
    assert_non_null(script);
    assert_int_equal(strlen(cf_redis_script_sha(script)), 40);
    cf_redis_script_free(script);

    char *huge = malloc(CF_REDIS_MAX_STRING + 2);
    assert_non_null(huge);
    memset(huge, ' ', CF_REDIS_MAX_STRING + 1);
    huge[CF_REDIS_MAX_STRING + 1] = '\0';
    assert_int_equal(cf_redis_script_new(huge, 0, &script, errbuf, sizeof(errbuf)), CF_ETOOBIG);
    assert_null(script);
    free(huge);
}

static void test_new_checks_arguments(void **state)
{
    (void)state;
    struct cf_redis *r = (struct cf_redis *)&r;
    char errbuf[256];
    assert_int_equal(cf_redis_new(NULL, 6379, 100, 100, &r, errbuf, sizeof(errbuf)), CF_EINVAL);
    assert_null(r);
    assert_int_equal(cf_redis_new("", 6379, 100, 100, &r, errbuf, sizeof(errbuf)), CF_EINVAL);
    assert_int_equal(cf_redis_new("127.0.0.1", 0, 100, 100, &r, errbuf, sizeof(errbuf)),
                     CF_EINVAL);
    assert_int_equal(cf_redis_new("127.0.0.1", 65536, 100, 100, &r, errbuf, sizeof(errbuf)),
                     CF_EINVAL);
    assert_int_equal(cf_redis_new("127.0.0.1", 6379, 0, 100, &r, errbuf, sizeof(errbuf)),
                     CF_EINVAL);
    assert_int_equal(cf_redis_new("127.0.0.1", 6379, 100, -1, &r, errbuf, sizeof(errbuf)),
                     CF_EINVAL);
    assert_null(r);
    assert_int_equal(cf_redis_new("127.0.0.1", 6379, 100, 100, NULL, errbuf, sizeof(errbuf)),
                     CF_EINVAL);
}

static void test_null_safety(void **state)
{
    (void)state;
    char errbuf[64];
    cf_redis_free(NULL);
    cf_redis_value_free(NULL);
    cf_redis_script_free(NULL);
    cf_redis_pipeline_free(NULL);
    cf_redis_pipeline_reset(NULL);
    cf_redis_set_retry_budget(NULL, 10);
    assert_int_equal(cf_redis_pipeline_count(NULL), 0);
    assert_int_equal(cf_redis_pipeline_reply(NULL, 0, NULL), CF_EINVAL);
    assert_int_equal(cf_redis_set(NULL, "k", "v", 1, 10, errbuf, sizeof(errbuf)), CF_EINVAL);
    assert_int_equal(cf_redis_ping(NULL, errbuf, sizeof(errbuf)), CF_EINVAL);
    struct cf_redis_pipeline *p = NULL;
    assert_int_equal(cf_redis_pipeline_new(NULL, &p), CF_EINVAL);
    assert_null(p);

    /* A hand-built value is freed deeply (the allocator sanitizer build checks for leaks). */
    struct cf_redis_value *v = calloc(1, sizeof(*v));
    assert_non_null(v);
    v->type = CF_REDIS_ARRAY;
    v->count = 2;
    v->elements = calloc(2, sizeof(*v->elements));
    assert_non_null(v->elements);
    v->elements[0].type = CF_REDIS_STRING;
    v->elements[0].str = strdup("x");
    v->elements[1].type = CF_REDIS_ARRAY;
    v->elements[1].count = 1;
    v->elements[1].elements = calloc(1, sizeof(struct cf_redis_value));
    cf_redis_value_free(v);
}

static void test_config_entries(void **state)
{
    (void)state;
    /* The table compiles as config entries and holds every documented key with its default. */
    const struct cf_config_entry table[] = {CF_CONFIG_REDIS_ENTRIES};
    const char *names[] = {"CASEFLOW_REDIS_HOST",
                           "CASEFLOW_REDIS_PORT",
                           "CASEFLOW_REDIS_USERNAME",
                           "CASEFLOW_REDIS_PASSWORD",
                           "CASEFLOW_REDIS_CONNECT_TIMEOUT_MS",
                           "CASEFLOW_REDIS_COMMAND_TIMEOUT_MS",
                           "CASEFLOW_REDIS_KEY_PREFIX",
                           "CASEFLOW_REDIS_RETRY_BUDGET_MS"};
    assert_int_equal(sizeof(table) / sizeof(table[0]), sizeof(names) / sizeof(names[0]));
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        assert_string_equal(table[i].name, names[i]);
        assert_non_null(table[i].default_value);
        assert_non_null(table[i].help);
    }
    assert_string_equal(table[0].default_value, "127.0.0.1");
    assert_string_equal(table[1].default_value, "16379");
    assert_string_equal(table[3].default_value, ""); /* no AUTH unless configured */
    assert_string_equal(table[6].default_value, "caseflow:");
    char errbuf[128];
    assert_int_equal(cf_redis_key_check(table[6].default_value, errbuf, sizeof(errbuf)), CF_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_grows_to_cap),
        cmocka_unit_test(test_backoff_jitter_spreads),
        cmocka_unit_test(test_backoff_degenerate),
        cmocka_unit_test(test_key_check_accepts_ids),
        cmocka_unit_test(test_key_check_rejects_personal_data),
        cmocka_unit_test(test_script_sha1),
        cmocka_unit_test(test_script_new_checks),
        cmocka_unit_test(test_new_checks_arguments),
        cmocka_unit_test(test_null_safety),
        cmocka_unit_test(test_config_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
