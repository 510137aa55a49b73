/* test_log.c — every line is one valid JSON object with the right members, levels filter
 * before arguments are evaluated, and nothing personal or malformed gets through. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* Output of the logger between capture_start and capture_stop. */
struct capture {
    FILE *f;
    char *buf;
    size_t len;
};

static void capture_start(struct capture *cap)
{
    cap->buf = NULL;
    cap->len = 0;
    cap->f = open_memstream(&cap->buf, &cap->len);
    assert_non_null(cap->f);
    cf_log_set_stream(cap->f);
}

/* Stops capturing; the caller frees cap->buf. */
static void capture_stop(struct capture *cap)
{
    cf_log_set_stream(NULL);
    assert_int_equal(fclose(cap->f), 0);
}

static size_t count_lines(const char *buf)
{
    size_t n = 0;
    for (const char *p = buf; *p != '\0'; p++)
        n += *p == '\n';
    return n;
}

/* Parses the only line of buf; fails the test unless it is one JSON object and a newline. */
static json_t *parse_single_line(const char *buf)
{
    json_error_t jerr;
    size_t len = strlen(buf);

    assert_int_equal(count_lines(buf), 1);
    assert_true(len > 0 && buf[len - 1] == '\n');
    assert_true(len <= CF_LOG_LINE_MAX);
    json_t *obj = json_loadb(buf, len - 1, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL)
        fail_msg("not JSON (%s at %d): %s", jerr.text, jerr.position, buf);
    assert_true(json_is_object(obj));
    return obj;
}

/* Logs one line through fn and returns it parsed. */
static json_t *log_one(void (*fn)(void))
{
    struct capture cap;
    capture_start(&cap);
    fn();
    capture_stop(&cap);
    json_t *obj = parse_single_line(cap.buf);
    free(cap.buf);
    return obj;
}

static const char *str_member(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        fail_msg("member %s is missing or not a string", key);
    return json_string_value(v);
}

static int setup(void **state)
{
    (void)state;
    cf_log_init("test-svc", CF_LOG_DEBUG);
    return 0;
}

/* The lines before and after the CF_LOG call in log_shape: "src" must point between them. */
static int src_first, src_last;

static void log_shape(void)
{
    src_first = __LINE__;
    CF_LOG(CF_LOG_WARN, "case_opened", CF_LOG_ID("case_id", "3f1c9a2e-0b6d-4c1e-9d7a-1e2f3a4b5c6d"),
           CF_LOG_INT("partition", 3), CF_LOG_ERR("error", "Broker: Not enough in-sync replicas"));
    src_last = __LINE__;
}

static void test_line_shape(void **state)
{
    (void)state;
    time_t before = time(NULL);
    json_t *obj = log_one(log_shape);
    time_t after = time(NULL);

    /* Members in the documented order, and nothing else. */
    static const char *const keys[] = {"ts",      "level",     "service", "event",
                                       "src",     "case_id",   "partition", "error"};
    size_t i = 0;
    for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it), i++) {
        assert_true(i < sizeof(keys) / sizeof(keys[0]));
        assert_string_equal(json_object_iter_key(it), keys[i]);
    }
    assert_int_equal(i, sizeof(keys) / sizeof(keys[0]));

    assert_string_equal(str_member(obj, "level"), "warn");
    assert_string_equal(str_member(obj, "service"), "test-svc");
    assert_string_equal(str_member(obj, "event"), "case_opened");
    /* The basename, not the path the compiler was given. */
    const char *src = str_member(obj, "src");
    assert_true(strncmp(src, "test_log.c:", 11) == 0);
    char *end = NULL;
    long line = strtol(src + 11, &end, 10);
    assert_true(*end == '\0' && line > src_first && line < src_last);
    assert_string_equal(str_member(obj, "case_id"), "3f1c9a2e-0b6d-4c1e-9d7a-1e2f3a4b5c6d");
    assert_true(json_is_integer(json_object_get(obj, "partition")));
    assert_int_equal(json_integer_value(json_object_get(obj, "partition")), 3);
    assert_string_equal(str_member(obj, "error"), "Broker: Not enough in-sync replicas");

    /* ts: UTC ISO-8601 with milliseconds, today's date. */
    const char *ts = str_member(obj, "ts");
    assert_int_equal(strlen(ts), strlen("2026-11-24T03:00:00.123Z"));
    for (size_t k = 0; ts[k] != '\0'; k++) {
        const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";
        if (shape[k] == 'd')
            assert_true(ts[k] >= '0' && ts[k] <= '9');
        else
            assert_int_equal(ts[k], shape[k]);
    }
    char day_before[16], day_after[16];
    struct tm tm;
    assert_non_null(gmtime_r(&before, &tm));
    assert_true(strftime(day_before, sizeof(day_before), "%Y-%m-%d", &tm) > 0);
    assert_non_null(gmtime_r(&after, &tm));
    assert_true(strftime(day_after, sizeof(day_after), "%Y-%m-%d", &tm) > 0);
    assert_true(strncmp(ts, day_before, 10) == 0 || strncmp(ts, day_after, 10) == 0);
    json_decref(obj);
}

static void log_no_fields(void)
{
    CF_LOG0(CF_LOG_ERROR, "shutting_down");
}

static void test_no_fields_and_default_service(void **state)
{
    (void)state;
    cf_log_init(NULL, CF_LOG_INFO);
    json_t *obj = log_one(log_no_fields);
    assert_int_equal(json_object_size(obj), 5);
    assert_string_equal(str_member(obj, "service"), "caseflow");
    assert_string_equal(str_member(obj, "level"), "error");
    assert_string_equal(str_member(obj, "event"), "shutting_down");
    json_decref(obj);
}

static int evaluated;

static long long side_effect(void)
{
    evaluated++;
    return 42;
}

static void test_level_filtering(void **state)
{
    (void)state;
    struct capture cap;

    cf_log_init("test-svc", CF_LOG_WARN);
    assert_false(cf_log_enabled(CF_LOG_DEBUG));
    assert_false(cf_log_enabled(CF_LOG_INFO));
    assert_true(cf_log_enabled(CF_LOG_WARN));
    assert_true(cf_log_enabled(CF_LOG_ERROR));

    evaluated = 0;
    capture_start(&cap);
    CF_LOG(CF_LOG_DEBUG, "dropped", CF_LOG_INT("n", side_effect()));
    CF_LOG(CF_LOG_INFO, "dropped", CF_LOG_INT("n", side_effect()));
    CF_LOG0(CF_LOG_INFO, "dropped");
    capture_stop(&cap);
    assert_int_equal(evaluated, 0); /* the arguments were never evaluated */
    assert_int_equal(cap.len, 0);
    free(cap.buf);

    capture_start(&cap);
    CF_LOG(CF_LOG_WARN, "kept", CF_LOG_INT("n", side_effect()));
    CF_LOG(CF_LOG_ERROR, "kept", CF_LOG_INT("n", side_effect()));
    capture_stop(&cap);
    assert_int_equal(evaluated, 2);
    assert_int_equal(count_lines(cap.buf), 2);
    char *second = strchr(cap.buf, '\n') + 1;
    json_t *obj = parse_single_line(second);
    assert_string_equal(str_member(obj, "level"), "error");
    assert_int_equal(json_integer_value(json_object_get(obj, "n")), 42);
    json_decref(obj);
    *second = '\0';
    obj = parse_single_line(cap.buf);
    assert_string_equal(str_member(obj, "level"), "warn");
    json_decref(obj);
    free(cap.buf);
}

static void test_level_parse(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        cf_log_level level;
    } ok[] = {{"debug", CF_LOG_DEBUG}, {"info", CF_LOG_INFO}, {"warn", CF_LOG_WARN},
              {"error", CF_LOG_ERROR}};
    cf_log_level level = CF_LOG_ERROR;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(cf_log_level_parse(ok[i].text, &level), CF_OK);
        assert_int_equal(level, ok[i].level);
    }
    level = CF_LOG_WARN;
    const char *bad[] = {"", "trace", "warning", "infox", "inf"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cf_log_level_parse(bad[i], &level), CF_EINVAL);
    assert_int_equal(level, CF_LOG_WARN); /* untouched on failure */
    assert_int_equal(cf_log_level_parse(NULL, &level), CF_EINVAL);
    assert_int_equal(cf_log_level_parse("info", NULL), CF_EINVAL);
}

static void test_id_ok(void **state)
{
    (void)state;
    char longest[130];

    assert_true(cf_log_id_ok("3f1c9a2e-0b6d-4c1e-9d7a-1e2f3a4b5c6d"));
    assert_true(cf_log_id_ok("caseflow.inquiry.submitted"));
    assert_true(cf_log_id_ok("CASEFLOW_REDIS_PORT"));
    assert_true(cf_log_id_ok("caseflow.event.CaseOpened-value:3/x"));
    assert_false(cf_log_id_ok(NULL));
    assert_false(cf_log_id_ok(""));
    assert_false(cf_log_id_ok("anna.schmidt@example.com"));
    assert_false(cf_log_id_ok("+4915112345678"));
    assert_false(cf_log_id_ok("Anna Schmidt"));
    assert_false(cf_log_id_ok("tab\there"));
    assert_false(cf_log_id_ok("M\xc3\xbcller"));
    memset(longest, 'a', 128);
    longest[128] = '\0';
    assert_true(cf_log_id_ok(longest));
    longest[128] = 'a';
    longest[129] = '\0';
    assert_false(cf_log_id_ok(longest));
}

static void log_personal(void)
{
    CF_LOG(CF_LOG_INFO, "inquiry_received", CF_LOG_ID("email", "anna.schmidt@example.com"),
           CF_LOG_ID("phone", "+4915112345678"), CF_LOG_ID("name", "Anna Schmidt"),
           CF_LOG_ID("empty", ""), CF_LOG_ID("missing", NULL), CF_LOG_ERR("no_error", NULL),
           CF_LOG_ID("topic", "caseflow.inquiry.submitted"));
}

static void test_id_redaction(void **state)
{
    (void)state;
    struct capture cap;

    capture_start(&cap);
    log_personal();
    capture_stop(&cap);
    /* Not even a fragment of the personal data reaches the bytes of the line. */
    assert_null(strstr(cap.buf, "schmidt"));
    assert_null(strstr(cap.buf, "Schmidt"));
    assert_null(strstr(cap.buf, "15112345678"));
    json_t *obj = parse_single_line(cap.buf);
    assert_string_equal(str_member(obj, "email"), "[redacted]");
    assert_string_equal(str_member(obj, "phone"), "[redacted]");
    assert_string_equal(str_member(obj, "name"), "[redacted]");
    assert_string_equal(str_member(obj, "empty"), "[redacted]");
    assert_true(json_is_null(json_object_get(obj, "missing")));
    assert_true(json_is_null(json_object_get(obj, "no_error")));
    assert_string_equal(str_member(obj, "topic"), "caseflow.inquiry.submitted");
    json_decref(obj);
    free(cap.buf);
}

/* Logs one ERR field and returns the string that came out. Frees nothing: caller decrefs. */
static json_t *log_err(const char *err)
{
    struct capture cap;
    capture_start(&cap);
    CF_LOG(CF_LOG_ERROR, "decode_failed", CF_LOG_ERR("error", err), CF_LOG_INT("after", 7));
    capture_stop(&cap);
    json_t *obj = parse_single_line(cap.buf);
    free(cap.buf);
    /* The member after the ERR survives whatever the ERR held. */
    assert_int_equal(json_integer_value(json_object_get(obj, "after")), 7);
    return obj;
}

static void test_err_escaping(void **state)
{
    (void)state;

    /* Quotes, backslashes and every control character survive the round trip. */
    char ctl[64];
    size_t k = 0;
    for (int c = 1; c < 0x20; c++)
        ctl[k++] = (char)c;
    memcpy(ctl + k, "\"q\\b\x7f}", 7);
    json_t *obj = log_err(ctl);
    assert_string_equal(str_member(obj, "error"), ctl);
    json_decref(obj);

    /* Valid UTF-8 passes unchanged: é, €, and an emoji. */
    obj = log_err("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    assert_string_equal(str_member(obj, "error"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    json_decref(obj);

    /* Invalid bytes, overlong forms, surrogates, a truncated sequence: each byte -> U+FFFD. */
    obj = log_err("a\xff" "b\xc0\xaf" "c\xed\xa0\x80" "d\xf4\x90\x80\x80" "e\xe2\x82");
    assert_string_equal(str_member(obj, "error"),
                        "a\xef\xbf\xbd"
                        "b\xef\xbf\xbd\xef\xbf\xbd"
                        "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                        "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                        "e\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(obj);
}

static void test_err_cut_at_512(void **state)
{
    (void)state;
    char err[700];

    memset(err, 'x', 600);
    err[600] = '\0';
    json_t *obj = log_err(err);
    const char *out = str_member(obj, "error");
    assert_int_equal(strlen(out), CF_LOG_ERR_MAX);
    assert_memory_equal(out, err, CF_LOG_ERR_MAX);
    /* An ERR cut at its own limit is not a truncated line. */
    assert_null(json_object_get(obj, "truncated"));
    json_decref(obj);

    /* A two-byte character across byte 512 is left out whole. */
    memset(err, 'x', 511);
    memcpy(err + 511, "\xc3\xa9tail", 7);
    obj = log_err(err);
    out = str_member(obj, "error");
    assert_int_equal(strlen(out), 511);
    json_decref(obj);

    /* Exactly 512 bytes are kept whole. */
    memset(err, 'y', 510);
    memcpy(err + 510, "\xc3\xa9", 3);
    obj = log_err(err);
    assert_string_equal(str_member(obj, "error"), err);
    json_decref(obj);
}

static void log_huge(void)
{
    static char quotes[CF_LOG_ERR_MAX + 1];
    static char ctl[CF_LOG_ERR_MAX + 1];
    memset(quotes, '"', CF_LOG_ERR_MAX);   /* 2 bytes each once escaped */
    memset(ctl, '\x01', CF_LOG_ERR_MAX);   /* 6 bytes each: \u0001 */
    CF_LOG(CF_LOG_ERROR, "huge", CF_LOG_INT("first", 1), CF_LOG_ERR("a", quotes),
           CF_LOG_ERR("b", ctl), CF_LOG_ERR("c", ctl), CF_LOG_INT("last", 2));
}

static void test_truncation(void **state)
{
    (void)state;
    struct capture cap;

    capture_start(&cap);
    log_huge();
    capture_stop(&cap);
    assert_true(cap.len <= CF_LOG_LINE_MAX);
    assert_true(cap.len > CF_LOG_LINE_MAX - 64); /* filled, not dropped wholesale */
    json_t *obj = parse_single_line(cap.buf);
    assert_true(json_is_true(json_object_get(obj, "truncated")));
    assert_int_equal(json_integer_value(json_object_get(obj, "first")), 1);
    assert_int_equal(strlen(str_member(obj, "a")), CF_LOG_ERR_MAX);
    assert_null(json_object_get(obj, "last")); /* fields after the cut are gone */
    /* "b" is the field that hit the limit: cut short, holding only whole escapes of its input;
     * "c" did not fit at all. */
    const char *b = str_member(obj, "b");
    assert_true(strlen(b) > 0 && strlen(b) < CF_LOG_ERR_MAX);
    for (const char *p = b; *p != '\0'; p++)
        assert_int_equal(*p, '\x01');
    assert_null(json_object_get(obj, "c"));
    json_decref(obj);
    free(cap.buf);

    /* A line that fits is never marked. */
    capture_start(&cap);
    CF_LOG(CF_LOG_INFO, "small", CF_LOG_INT("n", 1));
    capture_stop(&cap);
    obj = parse_single_line(cap.buf);
    assert_null(json_object_get(obj, "truncated"));
    json_decref(obj);
    free(cap.buf);
}

static void test_int_extremes(void **state)
{
    (void)state;
    struct capture cap;

    capture_start(&cap);
    CF_LOG(CF_LOG_INFO, "ints", CF_LOG_INT("min", LLONG_MIN), CF_LOG_INT("max", LLONG_MAX),
           CF_LOG_INT("zero", 0), CF_LOG_INT("neg", -1));
    capture_stop(&cap);
    json_t *obj = parse_single_line(cap.buf);
    assert_true(json_integer_value(json_object_get(obj, "min")) == LLONG_MIN);
    assert_true(json_integer_value(json_object_get(obj, "max")) == LLONG_MAX);
    assert_true(json_integer_value(json_object_get(obj, "zero")) == 0);
    assert_true(json_integer_value(json_object_get(obj, "neg")) == -1);
    json_decref(obj);
    free(cap.buf);
}

static void test_service_name_escaped(void **state)
{
    (void)state;
    struct capture cap;

    cf_log_init("svc\"with\nodd", CF_LOG_INFO);
    capture_start(&cap);
    CF_LOG0(CF_LOG_INFO, "started");
    capture_stop(&cap);
    json_t *obj = parse_single_line(cap.buf);
    assert_string_equal(str_member(obj, "service"), "svc\"with\nodd");
    json_decref(obj);
    free(cap.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_line_shape, setup),
        cmocka_unit_test_setup(test_no_fields_and_default_service, setup),
        cmocka_unit_test_setup(test_level_filtering, setup),
        cmocka_unit_test_setup(test_level_parse, setup),
        cmocka_unit_test_setup(test_id_ok, setup),
        cmocka_unit_test_setup(test_id_redaction, setup),
        cmocka_unit_test_setup(test_err_escaping, setup),
        cmocka_unit_test_setup(test_err_cut_at_512, setup),
        cmocka_unit_test_setup(test_truncation, setup),
        cmocka_unit_test_setup(test_int_extremes, setup),
        cmocka_unit_test_setup(test_service_name_escaped, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
