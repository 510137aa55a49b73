/* test_dlq.c — the dead-letter record: topic name, reason codes, headers, bounds. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "dlq.h"

/* The value of the last header called name, as a NUL-terminated copy in buf, or NULL. */
static const char *header(const struct cf_dlq_record *d, const char *name, char *buf, size_t len)
{
    const char *found = NULL;
    for (size_t i = 0; i < d->header_count; i++) {
        if (strcmp(d->headers[i].name, name) != 0)
            continue;
        size_t n = d->headers[i].len < len - 1 ? d->headers[i].len : len - 1;
        memcpy(buf, d->headers[i].value, n);
        buf[n] = '\0';
        found = buf;
    }
    return found;
}

static size_t count_headers(const struct cf_dlq_record *d, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < d->header_count; i++)
        n += strcmp(d->headers[i].name, name) == 0;
    return n;
}

static const struct cf_header input_headers[] = {
    {"ce_id", "7d3c-ev", 7},
    {"dlq.reason", "old_reason", 10}, /* from an earlier failure: must not survive */
    {"trace", NULL, 0},               /* a null header value */
};

static struct cf_kafka_record input(void)
{
    return (struct cf_kafka_record){
        .topic = "caseflow.case.opened",
        .partition = 7,
        .offset = 123456789012LL,
        .key = "case-1",
        .key_len = 6,
        .value = "\x00\x00\x00\x00\x01garbage",
        .value_len = 12,
        .headers = input_headers,
        .header_count = 3,
        .timestamp_ms = 1795921200000LL,
    };
}

static void test_topic_name(void **state)
{
    (void)state;
    char buf[CF_DLQ_TOPIC_MAX];
    char longname[300];

    assert_int_equal(cf_dlq_topic("intake", buf, sizeof(buf)), CF_OK);
    assert_string_equal(buf, "caseflow.dlq.intake");
    assert_int_equal(cf_dlq_topic("notifier-2.x_y", buf, sizeof(buf)), CF_OK);
    assert_string_equal(buf, "caseflow.dlq.notifier-2.x_y");
    assert_int_equal(cf_dlq_topic("", buf, sizeof(buf)), CF_EINVAL);
    assert_int_equal(cf_dlq_topic(NULL, buf, sizeof(buf)), CF_EINVAL);
    assert_int_equal(cf_dlq_topic("in take", buf, sizeof(buf)), CF_EINVAL);
    assert_int_equal(cf_dlq_topic("a/b", buf, sizeof(buf)), CF_EINVAL);
    assert_int_equal(cf_dlq_topic("intake", buf, 10), CF_ETOOBIG);
    memset(longname, 'a', 237);
    longname[237] = '\0'; /* 13 + 237 = 250 > 249 */
    assert_int_equal(cf_dlq_topic(longname, buf, sizeof(buf)), CF_ETOOBIG);
    longname[236] = '\0';
    assert_int_equal(cf_dlq_topic(longname, buf, sizeof(buf)), CF_OK);
    assert_int_equal(strlen(buf), 249);
}

static void test_reasons(void **state)
{
    (void)state;
    assert_string_equal(cf_dlq_reason(CF_EDECODE), "decode_failed");
    assert_string_equal(cf_dlq_reason(CF_EINVAL), "invalid_input");
    assert_string_equal(cf_dlq_reason(CF_ESCHEMA), "schema_error");
    assert_string_equal(cf_dlq_reason(CF_ENOTFOUND), "not_found");
    assert_string_equal(cf_dlq_reason(CF_ETOOBIG), "too_big");
    assert_string_equal(cf_dlq_reason(CF_EIO), "failed");
    assert_string_equal(cf_dlq_reason((cf_status)999), "failed");
}

static void test_build(void **state)
{
    (void)state;
    struct cf_kafka_record in = input();
    struct cf_dlq_record d;
    char err[128] = "";
    char buf[600];

    /* 2026-11-29T03:00:00.123Z */
    assert_int_equal(cf_dlq_build(&in, "validation", "decode_failed", "field meta.case_id: bad",
                                  1795921200123LL, 0, &d, err, sizeof(err)),
                     CF_OK);
    assert_string_equal(d.topic, "caseflow.dlq.validation");
    /* Original key and value, untouched and borrowed. */
    assert_ptr_equal(d.key, in.key);
    assert_int_equal(d.key_len, 6);
    assert_ptr_equal(d.value, in.value);
    assert_int_equal(d.value_len, 12);
    /* Original headers first, in order, the old dlq.* one left out. */
    assert_string_equal(d.headers[0].name, "ce_id");
    assert_memory_equal(d.headers[0].value, "7d3c-ev", 7);
    assert_string_equal(d.headers[1].name, "trace");
    assert_null(d.headers[1].value);
    assert_int_equal(d.headers[1].len, 0);
    assert_int_equal(d.header_count, 2 + 7);
    assert_int_equal(count_headers(&d, "dlq.reason"), 1);

    assert_string_equal(header(&d, "dlq.reason", buf, sizeof(buf)), "decode_failed");
    assert_string_equal(header(&d, "dlq.error", buf, sizeof(buf)), "field meta.case_id: bad");
    assert_string_equal(header(&d, "dlq.source.topic", buf, sizeof(buf)), "caseflow.case.opened");
    assert_string_equal(header(&d, "dlq.source.partition", buf, sizeof(buf)), "7");
    assert_string_equal(header(&d, "dlq.source.offset", buf, sizeof(buf)), "123456789012");
    assert_string_equal(header(&d, "dlq.service", buf, sizeof(buf)), "validation");
    assert_string_equal(header(&d, "dlq.failed_at", buf, sizeof(buf)), "2026-11-29T03:00:00.123Z");
    assert_null(header(&d, "dlq.value_dropped", buf, sizeof(buf)));
    cf_dlq_record_clear(&d);
    assert_null(d.headers);
    assert_int_equal(d.header_count, 0);
    cf_dlq_record_clear(NULL);
}

static void test_null_key_value_and_drop(void **state)
{
    (void)state;
    struct cf_kafka_record in = input();
    struct cf_dlq_record d;
    char buf[64];

    in.key = NULL;
    in.key_len = 0;
    in.headers = NULL;
    in.header_count = 0;
    assert_int_equal(
        cf_dlq_build(&in, "intake", "too_big", NULL, 0, CF_DLQ_DROP_VALUE, &d, NULL, 0), CF_OK);
    assert_null(d.key);
    assert_null(d.value);
    assert_int_equal(d.value_len, 0);
    assert_int_equal(d.header_count, 8);
    assert_string_equal(header(&d, "dlq.value_dropped", buf, sizeof(buf)), "true");
    assert_string_equal(header(&d, "dlq.error", buf, sizeof(buf)), "");
    assert_string_equal(header(&d, "dlq.failed_at", buf, sizeof(buf)), "1970-01-01T00:00:00.000Z");
    cf_dlq_record_clear(&d);
}

static void test_error_text_bounded(void **state)
{
    (void)state;
    struct cf_kafka_record in = input();
    struct cf_dlq_record d;
    char text[2000];
    char buf[2000];

    /* 511 ASCII bytes then "é" (2 bytes) straddling the 512-byte cut, then more. */
    memset(text, 'x', sizeof(text));
    text[511] = '\xc3';
    text[512] = '\xa9';
    text[1999] = '\0';
    assert_int_equal(cf_dlq_build(&in, "intake", "failed", text, 1, 0, &d, NULL, 0), CF_OK);
    const char *e = header(&d, "dlq.error", buf, sizeof(buf));
    assert_int_equal(strlen(e), 511); /* the whole character dropped, never half of it */
    cf_dlq_record_clear(&d);

    /* Exactly at the limit stays whole; control characters become spaces. */
    memset(text, 'y', CF_DLQ_ERROR_MAX);
    text[CF_DLQ_ERROR_MAX] = '\0';
    text[3] = '\n';
    text[4] = '\t';
    assert_int_equal(cf_dlq_build(&in, "intake", "failed", text, 1, 0, &d, NULL, 0), CF_OK);
    e = header(&d, "dlq.error", buf, sizeof(buf));
    assert_int_equal(strlen(e), CF_DLQ_ERROR_MAX);
    assert_memory_equal(e, "yyy  yyy", 8);
    cf_dlq_record_clear(&d);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct cf_kafka_record in = input();
    struct cf_dlq_record d;
    char err[128] = "";

    assert_int_equal(cf_dlq_build(&in, "intake", "Decode Failed", "x", 1, 0, &d, err, sizeof(err)),
                     CF_EINVAL);
    assert_non_null(strstr(err, "reason"));
    cf_dlq_record_clear(&d);
    assert_int_equal(cf_dlq_build(&in, "intake", "", "x", 1, 0, &d, err, sizeof(err)), CF_EINVAL);
    assert_int_equal(cf_dlq_build(&in, "bad service", "failed", "x", 1, 0, &d, err, sizeof(err)),
                     CF_EINVAL);
    assert_non_null(strstr(err, "service"));
    assert_int_equal(cf_dlq_build(NULL, "intake", "failed", "x", 1, 0, &d, err, sizeof(err)),
                     CF_EINVAL);
    assert_int_equal(cf_dlq_build(&in, "intake", "failed", "x", -5, 0, &d, err, sizeof(err)),
                     CF_EINVAL);
    in.headers = NULL; /* count without headers */
    assert_int_equal(cf_dlq_build(&in, "intake", "failed", "x", 1, 0, &d, err, sizeof(err)),
                     CF_EINVAL);
    assert_int_equal(cf_dlq_build(&in, "intake", "failed", "x", 1, 0, NULL, err, sizeof(err)),
                     CF_EINVAL);
    cf_dlq_record_clear(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_name),
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_null_key_value_and_drop),
        cmocka_unit_test(test_error_text_bounded),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
