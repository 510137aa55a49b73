/* Benchmark of the Avro codec on a realistic CaseOpened record (tests/integration/
 * case_opened.json): encode, decode with the writer's schema, decode into an evolved schema
 * (projection), and the JSON conversions. Reports throughput, latency percentiles and peak
 * memory. Not a test: it asserts nothing about speed.
 *   build/tests/bench_serde [iterations]     (ctest -L bench runs it with the default) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "avro_convert.h"
#include "avro_serde.h"
#include "schema.h"

static char err[1024];

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, int64_t *ns, size_t n, int64_t total_ns)
{
    qsort(ns, n, sizeof(ns[0]), cmp_i64);
    printf("%-28s %10.0f ops/s   p50 %6.2f us   p99 %6.2f us   p99.9 %6.2f us\n", what,
           (double)n * 1e9 / (double)total_ns, ns[n / 2] / 1e3, ns[n * 99 / 100] / 1e3,
           ns[n * 999 / 1000] / 1e3);
}

static void die(const char *what)
{
    fprintf(stderr, "bench_serde: %s: %s\n", what, err);
    exit(1);
}

/* The reader of an older record: the same schema with one field added at the top. */
static struct cf_schema *evolved(const struct cf_schema *s)
{
    json_t *root = json_deep_copy(cf_schema_root(s));
    json_array_append_new(json_object_get(root, "fields"),
                          json_pack("{s:s, s:[s,s], s:n}", "name", "added", "type", "null",
                                    "string", "default"));
    char *text = json_dumps(root, JSON_COMPACT);
    struct cf_schema *out = NULL;
    if (cf_schema_parse(text, strlen(text), &out, err, sizeof(err)) != CF_OK)
        die("evolved schema");
    free(text);
    json_decref(root);
    return out;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    struct cf_schema *s = NULL;
    if (n == 0 || cf_schema_load(NULL, "caseflow.event.CaseOpened", &s, err, sizeof(err)) != CF_OK)
        die("schema");
    struct cf_schema *v2 = evolved(s);
    json_t *json = json_load_file(CF_TESTS_DIR "/integration/case_opened.json", 0, NULL);
    avro_value_t value, out;
    unsigned char *buf = NULL;
    size_t len = 0;
    int64_t *ns = malloc(n * sizeof(*ns));
    if (json == NULL || ns == NULL || avro_generic_value_new(cf_schema_iface(s), &value) != 0 ||
        cf_avro_from_json(s, cf_schema_root(s), json, &value, err, sizeof(err)) != CF_OK)
        die("record");

    int64_t start = now_ns();
    for (size_t i = 0; i < n; i++) {
        int64_t t = now_ns();
        free(buf);
        if (cf_serde_encode_wire(1, &value, &buf, &len, err, sizeof(err)) != CF_OK)
            die("encode");
        ns[i] = now_ns() - t;
    }
    report("encode", ns, n, now_ns() - start);
    printf("  record: %zu bytes on the wire\n", len);

    const struct {
        const char *name;
        const struct cf_schema *reader;
    } decodes[] = {{"decode (same schema)", s}, {"decode (projected, evolved)", v2}};
    for (size_t d = 0; d < 2; d++) {
        start = now_ns();
        for (size_t i = 0; i < n; i++) {
            int64_t t = now_ns();
            if (cf_serde_decode_payload(s, decodes[d].reader, buf + CF_SERDE_HEADER_LEN,
                                        len - CF_SERDE_HEADER_LEN, &out, err,
                                        sizeof(err)) != CF_OK)
                die("decode");
            avro_value_decref(&out);
            ns[i] = now_ns() - t;
        }
        report(decodes[d].name, ns, n, now_ns() - start);
    }

    size_t m = n / 10 > 0 ? n / 10 : 1;
    start = now_ns();
    for (size_t i = 0; i < m; i++) {
        int64_t t = now_ns();
        json_t *j = NULL;
        avro_value_t v;
        if (avro_generic_value_new(cf_schema_iface(s), &v) != 0 ||
            cf_avro_from_json(s, cf_schema_root(s), json, &v, err, sizeof(err)) != CF_OK ||
            cf_avro_to_json(s, cf_schema_root(s), &v, &j, err, sizeof(err)) != CF_OK)
            die("json");
        json_decref(j);
        avro_value_decref(&v);
        ns[i] = now_ns() - t;
    }
    report("JSON -> Avro -> JSON", ns, m, now_ns() - start);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS %ld KiB after %zu records of each kind\n", ru.ru_maxrss, n);

    free(ns);
    free(buf);
    avro_value_decref(&value);
    json_decref(json);
    cf_schema_free(v2);
    cf_schema_free(s);
    return 0;
}
