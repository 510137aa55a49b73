/* Unit tests of schema loading, JSON conversion, projection and the wire format: every
 * caseflow schema, no servers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#if defined(__SANITIZE_ADDRESS__)
/* From the ASan runtime; Debian ships its header only with clang's runtime package. */
size_t __sanitizer_get_current_allocated_bytes(void);
#else
#include <malloc.h>
#endif

#include "avro_convert.h"
#include "avro_serde.h"
#include "registry.h"
#include "schema.h"
#include "topics.h"
#include "sample_json.h"

static char err[1024];

static struct cf_schema *load(const char *name)
{
    struct cf_schema *s = NULL;
    cf_status st = cf_schema_load(NULL, name, &s, err, sizeof(err));
    if (st != CF_OK)
        fail_msg("load %s: %s", name, err);
    return s;
}

static void encode(const struct cf_schema *s, const json_t *json, unsigned char **buf,
                   size_t *len)
{
    avro_value_t v;
    assert_int_equal(avro_generic_value_new(cf_schema_iface(s), &v), 0);
    cf_status st = cf_avro_from_json(s, cf_schema_root(s), json, &v, err, sizeof(err));
    if (st != CF_OK)
        fail_msg("%s from JSON: %s", cf_schema_name(s), err);
    assert_int_equal(cf_serde_encode_wire(42, &v, buf, len, err, sizeof(err)), CF_OK);
    avro_value_decref(&v);
}

static json_t *decode(const struct cf_schema *writer, const struct cf_schema *reader,
                      const unsigned char *buf, size_t len)
{
    int32_t id;
    const unsigned char *payload;
    size_t plen;
    avro_value_t v;
    json_t *out = NULL;
    assert_int_equal(cf_serde_wire_parse(buf, len, &id, &payload, &plen, err, sizeof(err)), CF_OK);
    assert_int_equal(id, 42);
    cf_status st = cf_serde_decode_payload(writer, reader, payload, plen, &v, err, sizeof(err));
    if (st != CF_OK)
        fail_msg("%s decode: %s", cf_schema_name(reader), err);
    assert_int_equal(cf_avro_to_json(reader, cf_schema_root(reader), &v, &out, err, sizeof(err)),
                     CF_OK);
    avro_value_decref(&v);
    return out;
}

/* Every schema: JSON -> Avro -> wire -> Avro -> JSON gives the same document, with optional
 * parts empty and filled. */
static void test_round_trip_every_schema(void **state)
{
    (void)state;
    size_t n;
    const struct cf_topic *topics = cf_topics_all(&n);
    for (size_t i = 0; i < n; i++) {
        struct cf_schema *s = load(topics[i].schema_name);
        for (int fill = 0; fill < 2; fill++) {
            json_t *in = cf_test_sample_json(s, cf_schema_root(s), fill), *out;
            unsigned char *buf;
            size_t len;
            encode(s, in, &buf, &len);
            out = decode(s, s, buf, len);
            if (!json_equal(in, out)) {
                char *a = json_dumps(in, JSON_COMPACT), *b = json_dumps(out, JSON_COMPACT);
                fail_msg("%s round trip differs:\n in %s\nout %s", topics[i].schema_name, a, b);
            }
            json_decref(in);
            json_decref(out);
            free(buf);
        }
        cf_schema_free(s);
    }
}

/* avro-c drops "default" and "logicalType" when it writes a schema back as JSON; the text we
 * register must keep them, or other clients lose the defaults and timestamps. */
static void test_registered_text_keeps_defaults_and_logical_types(void **state)
{
    (void)state;
    struct cf_schema *s = load("caseflow.event.CaseOpened");
    const char *text = cf_schema_text(s);
    assert_non_null(strstr(text, "\"logicalType\":\"timestamp-millis\""));
    assert_non_null(strstr(text, "\"default\":null"));
    /* Shared types are inlined once: the text stands alone for any registry client. */
    assert_non_null(strstr(text, "\"name\":\"Meta\""));
    assert_null(strstr(strstr(text, "\"name\":\"Meta\"") + 1, "\"name\":\"Meta\""));
    struct cf_schema *again = NULL;
    assert_int_equal(cf_schema_parse(text, strlen(text), &again, err, sizeof(err)), CF_OK);
    assert_string_equal(cf_schema_name(again), "caseflow.event.CaseOpened");
    cf_schema_free(again);
    cf_schema_free(s);
}

/* avro-c never applies defaults: a JSON record without its optional fields must still
 * encode, each missing field taking the schema's default. */
static void test_defaults_applied_when_building_from_json(void **state)
{
    (void)state;
    struct cf_schema *s = load("caseflow.common.Meta");
    json_t *in = json_pack("{s:s, s:s, s:s, s:s}", "event_id", "7d4a2a5e-3f7e-4c55-9a64-2f7b1c1e0a01",
                           "occurred_at", "2026-11-24T09:30:00Z", "producer", "test/0",
                           "correlation_id", "inq-1");
    unsigned char *buf;
    size_t len;
    encode(s, in, &buf, &len);
    json_t *out = decode(s, s, buf, len);
    assert_true(json_is_null(json_object_get(out, "case_id")));
    assert_true(json_is_null(json_object_get(out, "causation_id")));
    assert_string_equal(json_string_value(json_object_get(out, "occurred_at")),
                        "2026-11-24T09:30:00.000Z");
    json_decref(out);
    json_decref(in);
    free(buf);
    cf_schema_free(s);
}

static void test_json_errors_name_the_path(void **state)
{
    (void)state;
    struct cf_schema *s = load("caseflow.common.Meta");
    avro_value_t v;
    struct {
        const char *json, *expect;
    } cases[] = {
        {"{\"event_id\":\"e\",\"producer\":\"p\",\"correlation_id\":\"c\"}",
         "$.occurred_at: required field is missing"},
        {"{\"event_id\":\"e\",\"occurred_at\":\"yesterday\",\"producer\":\"p\",\"correlation_id\":\"c\"}",
         "$.occurred_at: expected an RFC 3339 time"},
        {"{\"event_id\":1,\"occurred_at\":0,\"producer\":\"p\",\"correlation_id\":\"c\"}",
         "$.event_id: expected a string"},
        {"{\"event_id\":\"e\",\"occurred_at\":0,\"producer\":\"p\",\"correlation_id\":\"c\",\"evil\":1}",
         "$.evil: unknown field"},
        {"[]", "$: expected an object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j = json_loads(cases[i].json, 0, NULL);
        assert_non_null(j);
        assert_int_equal(avro_generic_value_new(cf_schema_iface(s), &v), 0);
        assert_int_equal(cf_avro_from_json(s, cf_schema_root(s), j, &v, err, sizeof(err)),
                         CF_EINVAL);
        if (strstr(err, cases[i].expect) == NULL)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].expect);
        avro_value_decref(&v);
        json_decref(j);
    }
    cf_schema_free(s);
}

/* The evolution a schema may make under BACKWARD: a new top-level field with a default, and
 * new fields with defaults inside the nested meta record (one of them a record itself). */
static struct cf_schema *evolve(const struct cf_schema *s)
{
    json_t *root = json_deep_copy(cf_schema_root(s));
    json_t *meta = NULL;
    size_t i;
    json_t *field;
    json_array_append_new(json_object_get(root, "fields"),
                          json_pack("{s:s, s:s, s:s}", "name", "added_top", "type", "string",
                                    "default", "top-default"));
    json_array_foreach(json_object_get(root, "fields"), i, field) {
        if (strcmp(json_string_value(json_object_get(field, "name")), "meta") == 0)
            meta = json_object_get(field, "type");
    }
    assert_true(json_is_object(meta));
    json_t *fields = json_object_get(meta, "fields");
    json_array_append_new(fields, json_pack("{s:s, s:[s,s], s:n}", "name", "added_nested", "type",
                                            "null", "long", "default"));
    json_array_append_new(
        fields, json_pack("{s:s, s:{s:s, s:s, s:[{s:s, s:s, s:i}]}, s:{s:i}}", "name", "added_record",
                          "type", "type", "record", "name", "AddedThing", "fields", "name", "n",
                          "type", "int", "default", 7, "default", "n", 7));
    char *text = json_dumps(root, JSON_COMPACT);
    struct cf_schema *evolved = NULL;
    cf_status st = cf_schema_parse(text, strlen(text), &evolved, err, sizeof(err));
    if (st != CF_OK)
        fail_msg("evolved %s: %s", cf_schema_name(s), err);
    free(text);
    json_decref(root);
    return evolved;
}

/* An old record (nested meta record included) read with an evolved schema gets the new
 * fields' defaults and keeps every old field; a new record read with the old schema drops
 * them. avro-c's own resolver refuses the first and double-frees on nested records. */
static void test_old_record_read_with_evolved_schema(void **state)
{
    (void)state;
    size_t n;
    const struct cf_topic *topics = cf_topics_all(&n);
    for (size_t i = 0; i < n; i++) {
        struct cf_schema *v1 = load(topics[i].schema_name), *v2 = evolve(v1);
        json_t *old = cf_test_sample_json(v1, cf_schema_root(v1), true);
        unsigned char *buf, *buf2;
        size_t len, len2;
        encode(v1, old, &buf, &len);

        json_t *read = decode(v1, v2, buf, len);
        json_t *meta = json_object_get(read, "meta");
        assert_string_equal(json_string_value(json_object_get(read, "added_top")), "top-default");
        assert_true(json_is_null(json_object_get(meta, "added_nested")));
        assert_int_equal(json_integer_value(json_object_get(json_object_get(meta, "added_record"), "n")), 7);
        json_object_del(read, "added_top");
        json_object_del(meta, "added_nested");
        json_object_del(meta, "added_record");
        assert_true(json_equal(read, old));

        /* ...and forwards: a v2 record read with v1 loses only the added fields. */
        json_t *newer = decode(v1, v2, buf, len);
        encode(v2, newer, &buf2, &len2);
        json_t *back = decode(v2, v1, buf2, len2);
        assert_true(json_equal(back, old));

        json_decref(back);
        json_decref(newer);
        json_decref(read);
        json_decref(old);
        free(buf);
        free(buf2);
        cf_schema_free(v2);
        cf_schema_free(v1);
    }
}

/* An enum symbol the reader does not know takes the reader enum's default. */
static void test_unknown_enum_symbol_takes_reader_default(void **state)
{
    (void)state;
    struct cf_schema *reader = load("caseflow.common.Priority");
    json_t *root = json_deep_copy(cf_schema_root(reader));
    json_array_append_new(json_object_get(root, "symbols"), json_string("CRITICAL"));
    char *text = json_dumps(root, JSON_COMPACT);
    struct cf_schema *writer = NULL;
    assert_int_equal(cf_schema_parse(text, strlen(text), &writer, err, sizeof(err)), CF_OK);
    json_t *critical = json_string("CRITICAL");
    unsigned char *buf;
    size_t len;
    encode(writer, critical, &buf, &len);
    json_t *got = decode(writer, reader, buf, len);
    const char *def = json_string_value(json_object_get(cf_schema_root(reader), "default"));
    assert_non_null(def);
    assert_string_equal(json_string_value(got), def);
    json_decref(got);
    json_decref(critical);
    free(buf);
    free(text);
    json_decref(root);
    cf_schema_free(writer);
    cf_schema_free(reader);
}

static cf_status decode_status(const struct cf_schema *s, const unsigned char *buf, size_t len)
{
    int32_t id;
    const unsigned char *payload;
    size_t plen;
    avro_value_t v;
    cf_status st = cf_serde_wire_parse(buf, len, &id, &payload, &plen, err, sizeof(err));
    if (st != CF_OK)
        return st;
    st = cf_serde_decode_payload(s, s, payload, plen, &v, err, sizeof(err));
    if (st == CF_OK)
        avro_value_decref(&v);
    return st;
}

static void expect_error(const struct cf_schema *s, const unsigned char *buf, size_t len,
                         cf_status want, const char *text)
{
    assert_int_equal(decode_status(s, buf, len), want);
    if (strstr(err, text) == NULL)
        fail_msg("error \"%s\" does not say \"%s\"", err, text);
}

static void test_wire_format_errors(void **state)
{
    (void)state;
    struct cf_schema *s = load("caseflow.event.CaseOpened");
    json_t *in = cf_test_sample_json(s, cf_schema_root(s), true);
    unsigned char *good;
    size_t len;
    encode(s, in, &good, &len);

    expect_error(s, good, 0, CF_EDECODE, "empty record");
    unsigned char magic[] = {1, 0, 0, 0, 42, 2};
    expect_error(s, magic, sizeof(magic), CF_EDECODE, "magic byte is 0x01");
    expect_error(s, good, 3, CF_EDECODE, "shorter than the 5-byte wire header");
    unsigned char zero_id[] = {0, 0, 0, 0, 0, 2};
    expect_error(s, zero_id, sizeof(zero_id), CF_EDECODE, "schema id 0");
    expect_error(s, good, CF_SERDE_MAX_RECORD + 1, CF_ETOOBIG, "over the");
    for (size_t cut = CF_SERDE_HEADER_LEN; cut < len; cut += 7)
        assert_int_equal(decode_status(s, good, cut), CF_EDECODE);
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, good, len);
    longer[len] = 0;
    expect_error(s, longer, len + 1, CF_EDECODE, "1 bytes left after the record");

    /* The first field is meta.event_id, a string: claim 2^62 bytes of it. */
    unsigned char huge[] = {0, 0, 0, 0, 42, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 'x'};
    expect_error(s, huge, sizeof(huge), CF_EDECODE, "length exceeds the bytes left");
    unsigned char negative[] = {0, 0, 0, 0, 42, 0x01, 'x'};
    expect_error(s, negative, sizeof(negative), CF_EDECODE, "length exceeds the bytes left");
    unsigned char overlong[] = {0, 0, 0, 0, 42, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    expect_error(s, overlong, sizeof(overlong), CF_EDECODE, "number longer than 10 bytes");

    assert_int_equal(decode_status(s, good, len), CF_OK);
    free(longer);
    free(good);
    json_decref(in);
    cf_schema_free(s);
}

static long proc_status_kib(const char *key)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, key, strlen(key)) == 0)
            v = strtol(line + strlen(key), NULL, 10);
    fclose(f);
    return v;
}

/* Bytes of heap in use: ASan's own count under the sanitizer (its quarantine keeps freed
 * memory resident, so RSS says nothing there), glibc's otherwise. */
static long heap_in_use(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return (long)__sanitizer_get_current_allocated_bytes();
#else
    return (long)mallinfo2().uordblks;
#endif
}

/* 100,000 random, mutated and truncated records: each one a clean error or a record, never a
 * crash, memory flat, and a valid record still decodes afterwards. (avro-c alone reserves
 * terabytes on such input and then fails on valid records.) */
static void test_random_records_leave_memory_flat(void **state)
{
    (void)state;
    struct cf_schema *s = load("caseflow.event.CaseOpened");
    json_t *in = cf_test_sample_json(s, cf_schema_root(s), true);
    unsigned char *good, buf[2048];
    size_t len, decoded = 0;
    long heap_start = 0, vm_start = 0;
    encode(s, in, &good, &len);
    assert_true(len <= sizeof(buf));

    for (int i = 0; i < 100000; i++) {
        size_t n;
        if (i == 10000) { /* after warm-up: allocator pools and caches are in place */
            heap_start = heap_in_use();
            vm_start = proc_status_kib("VmSize:");
        }
        switch (i % 3) {
        case 0: /* random bytes behind a valid header */
            n = CF_SERDE_HEADER_LEN + cf_test_rand() % 600;
            for (size_t k = 0; k < n; k++)
                buf[k] = (unsigned char)cf_test_rand();
            memcpy(buf, good, CF_SERDE_HEADER_LEN);
            break;
        case 1: /* a valid record with a few bytes changed */
            n = len;
            memcpy(buf, good, len);
            for (int k = 0; k < 4; k++)
                buf[CF_SERDE_HEADER_LEN + cf_test_rand() % (len - CF_SERDE_HEADER_LEN)] = (unsigned char)cf_test_rand();
            break;
        default: /* a valid record cut short */
            n = CF_SERDE_HEADER_LEN + cf_test_rand() % (len - CF_SERDE_HEADER_LEN);
            memcpy(buf, good, n);
        }
        cf_status st = decode_status(s, buf, n);
        if (st == CF_OK)
            decoded++;
        else if (st != CF_EDECODE)
            fail_msg("record %d: status %d: %s", i, st, err);
    }
    long heap_growth = heap_in_use() - heap_start;
    long vm_growth = proc_status_kib("VmSize:") - vm_start;
    print_message("random records: %zu of 100000 decoded; heap %+ld bytes, VmSize %+ld KiB\n",
                  decoded, heap_growth, vm_growth);
    assert_true(heap_growth < 64 * 1024);
#if !defined(__SANITIZE_ADDRESS__) /* ASan maps shadow and quarantine memory as it likes */
    assert_true(vm_growth < 64 * 1024);
#endif
    assert_int_equal(decode_status(s, good, len), CF_OK);
    free(good);
    json_decref(in);
    cf_schema_free(s);
}

static void test_time_text(void **state)
{
    (void)state;
    int64_t ms;
    char buf[40];
    assert_int_equal(cf_avro_parse_millis("2026-11-24T09:30:00Z", &ms), CF_OK);
    assert_int_equal(ms, 1795512600000LL);
    assert_int_equal(cf_avro_parse_millis("2026-11-24T12:30:00.250+03:00", &ms), CF_OK);
    assert_int_equal(ms, 1795512600250LL);
    cf_avro_format_millis(ms, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-24T09:30:00.250Z");
    cf_avro_format_millis(-1, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    assert_int_equal(cf_avro_parse_millis("2026-02-29T00:00:00Z", &ms), CF_EINVAL);
    assert_int_equal(cf_avro_parse_millis("2026-11-24 09:30:00Z", &ms), CF_EINVAL);
    assert_int_equal(cf_avro_parse_millis("2026-11-24T09:30:00", &ms), CF_EINVAL);
}

static void test_schema_load_errors(void **state)
{
    (void)state;
    struct cf_schema *s = NULL;
    assert_int_equal(cf_schema_load(NULL, "caseflow.event.NoSuchEvent", &s, err, sizeof(err)),
                     CF_ESCHEMA);
    assert_non_null(strstr(err, "caseflow.event.NoSuchEvent.avsc"));
    assert_null(s);
    const char *bad = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"Missing\"}]}";
    assert_int_equal(cf_schema_parse(bad, strlen(bad), &s, err, sizeof(err)), CF_ESCHEMA);
    assert_non_null(strstr(err, "unknown type Missing"));
    assert_int_equal(cf_schema_parse("{", 1, &s, err, sizeof(err)), CF_ESCHEMA);
}

/* --- a registry that knows a few ids, for cf_serde_decode without servers ---------------- */

#define FAKE_IDS 3

/* Answers GET /schemas/ids/<id> from texts[] (ids first_id, first_id + 1, ...), one request
 * per connection, and counts the requests. */
struct fake_registry {
    int listener;
    int port;
    int32_t first_id;
    const char *texts[FAKE_IDS];
    int requests;
    pthread_t thread;
};

static void fake_answer(int fd, struct fake_registry *f)
{
    char req[2048];
    size_t got = 0;
    while (got < sizeof(req) - 1) {
        ssize_t n = read(fd, req + got, sizeof(req) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL)
            break;
    }
    req[got] = '\0';
    f->requests++;
    char *body = NULL;
    const char *status = "404 Not Found";
    const char *path = strstr(req, "/schemas/ids/");
    if (path != NULL) {
        long id = strtol(path + strlen("/schemas/ids/"), NULL, 10);
        if (id >= f->first_id && id < f->first_id + FAKE_IDS) {
            json_t *j =
                json_pack("{s:s, s:s}", "schema", f->texts[id - f->first_id], "schemaType", "AVRO");
            body = json_dumps(j, JSON_COMPACT);
            json_decref(j);
            status = "200 OK";
        }
    }
    if (body == NULL)
        body = strdup("{\"error_code\":40403,\"message\":\"Schema not found\"}");
    char head[256];
    int hn = snprintf(head, sizeof(head),
                      "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      status, strlen(body));
    if (write(fd, head, (size_t)hn) < 0 || write(fd, body, strlen(body)) < 0)
        fprintf(stderr, "fake registry: write failed\n");
    free(body);
}

static void *fake_serve(void *arg)
{
    struct fake_registry *f = arg;
    for (;;) {
        int fd = accept(f->listener, NULL, NULL);
        if (fd < 0)
            return NULL; /* the listener was shut down */
        fake_answer(fd, f);
        close(fd);
    }
}

static void fake_start(struct fake_registry *f)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->listener = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->listener >= 0);
    assert_int_equal(bind(f->listener, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->listener, 8), 0);
    assert_int_equal(getsockname(f->listener, (struct sockaddr *)&a, &alen), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_serve, f), 0);
}

static void fake_stop(struct fake_registry *f)
{
    (void)shutdown(f->listener, SHUT_RDWR);
    (void)pthread_join(f->thread, NULL);
    close(f->listener);
}

static void encode_with_id(const struct cf_schema *s, const json_t *json, int32_t id,
                           unsigned char **buf, size_t *len)
{
    avro_value_t v;
    assert_int_equal(avro_generic_value_new(cf_schema_iface(s), &v), 0);
    assert_int_equal(cf_avro_from_json(s, cf_schema_root(s), json, &v, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_serde_encode_wire(id, &v, buf, len, err, sizeof(err)), CF_OK);
    avro_value_decref(&v);
}

/* A service that only reads a topic never registers the topic's schema, so the records' ids
 * are not "its" id: records whose writer schema is the reader schema (even as other text) must
 * still be decoded straight into it, and only records of another schema projected. */
static void test_decode_same_schema_skips_projection(void **state)
{
    (void)state;
    const char *topic = "caseflow.case.opened";
    struct cf_schema *v1 = load("caseflow.event.CaseOpened"), *v2 = evolve(v1);
    char *pretty = json_dumps(cf_schema_root(v1), JSON_INDENT(2)); /* same schema, other text */
    struct fake_registry f = {.first_id = 101,
                              .texts = {cf_schema_text(v1), pretty, cf_schema_text(v2)}};
    struct cf_registry *registry = NULL;
    struct cf_serde *serde = NULL;
    struct cf_serde_stats stats;
    char url[64];
    unsigned char *buf = NULL;
    size_t len = 0;
    json_t *out = NULL;

    fake_start(&f);
    (void)snprintf(url, sizeof(url), "http://127.0.0.1:%d", f.port);
    assert_int_equal(cf_registry_new(url, 2000, &registry, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_serde_new(registry, NULL, &serde, err, sizeof(err)), CF_OK);
    json_t *sample = cf_test_sample_json(v1, cf_schema_root(v1), true);

    /* Written with the reader schema under an id this serde never registered. */
    encode_with_id(v1, sample, 101, &buf, &len);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cf_serde_decode_json(serde, topic, buf, len, &out, err, sizeof(err)),
                         CF_OK);
        assert_true(json_equal(out, sample));
        json_decref(out);
    }
    free(buf);
    cf_serde_get_stats(serde, &stats);
    assert_int_equal(stats.direct, 3);
    assert_int_equal(stats.projected, 0);
    assert_int_equal(f.requests, 1); /* the id's schema is fetched once */

    /* The same schema registered as different text (whitespace) is the same schema. */
    encode_with_id(v1, sample, 102, &buf, &len);
    assert_int_equal(cf_serde_decode_json(serde, topic, buf, len, &out, err, sizeof(err)), CF_OK);
    assert_true(json_equal(out, sample));
    json_decref(out);
    free(buf);
    cf_serde_get_stats(serde, &stats);
    assert_int_equal(stats.direct, 4);
    assert_int_equal(stats.projected, 0);

    /* Real evolution still projects: a newer record loses only the added fields. */
    json_t *newer = cf_test_sample_json(v2, cf_schema_root(v2), true);
    encode_with_id(v2, newer, 103, &buf, &len);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(cf_serde_decode_json(serde, topic, buf, len, &out, err, sizeof(err)),
                         CF_OK);
        assert_null(json_object_get(out, "added_top"));
        assert_non_null(json_object_get(out, "case_id"));
        json_decref(out);
    }
    free(buf);
    cf_serde_get_stats(serde, &stats);
    assert_int_equal(stats.direct, 4);
    assert_int_equal(stats.projected, 2);
    assert_int_equal(f.requests, 3);

    json_decref(newer);
    json_decref(sample);
    cf_serde_free(serde);
    cf_registry_free(registry);
    fake_stop(&f);
    free(pretty);
    cf_schema_free(v2);
    cf_schema_free(v1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_schema),
        cmocka_unit_test(test_registered_text_keeps_defaults_and_logical_types),
        cmocka_unit_test(test_defaults_applied_when_building_from_json),
        cmocka_unit_test(test_json_errors_name_the_path),
        cmocka_unit_test(test_old_record_read_with_evolved_schema),
        cmocka_unit_test(test_unknown_enum_symbol_takes_reader_default),
        cmocka_unit_test(test_wire_format_errors),
        cmocka_unit_test(test_random_records_leave_memory_flat),
        cmocka_unit_test(test_time_text),
        cmocka_unit_test(test_schema_load_errors),
        cmocka_unit_test(test_decode_same_schema_skips_projection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
