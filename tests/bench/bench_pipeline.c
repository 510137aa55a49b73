/* bench_pipeline.c — cases per second and latency through intake → validation on the local
 * stack (deploy/stack up; topics created, schemas registered), transactions on.
 *
 *   build/tests/bench_pipeline [N] [--warmup W] [--rate R] [--timeout-s S] [--env NAME=VALUE]...
 *                              [--keep-logs]
 *
 * It starts the built caseflow-intake (HTTP off) and caseflow-validation with a fresh instance
 * id, a fresh identity secret and a Redis key prefix of the run's own, pushes W warm-up
 * inquiries through them (their start and group join are paid there) and waits until both are
 * idle (any backlog older runs left on their topics is worked off first). Then it produces N
 * InquirySubmitted records (default 20,000; R per second, or as fast as the idempotent producer
 * takes them) and reads the four outcome topics and both dead-letter topics read_committed.
 * The services' consumer groups have fixed names and the topics hold other runs' records, so
 * only this run's inquiries count: their ids carry a random run prefix and their index, and an
 * outcome is matched by meta.correlation_id (= inquiry id). At the end the services are stopped
 * and every Redis key under the run's prefix is deleted.
 *
 * Reported: cases/s from the first produce to the last outcome; p50/p99/max latency from an
 * inquiry's produce to the moment the bench reads its outcome; each service's peak RSS (VmHWM
 * just before it is stopped); the CPU time of each service, of the bench and of the whole
 * machine during the measured phase (the rest is the broker, the registry, Redis and whatever
 * else runs). Exit status 0 when every inquiry got exactly one outcome, both services stopped
 * cleanly and each committed every record of the run itself (no other replica in its group
 * took a share); 1 otherwise (the report says how many outcomes are missing), 2 on bad
 * arguments. It asserts nothing about speed. */
#include <avro.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "avro_convert.h"
#include "avro_serde.h"
#include "bench_support.h"
#include "child.h"
#include "cloudevents.h"
#include "config.h"
#include "kafka.h"
#include "registry.h"
#include "test_env.h"
#include "uuid.h"

#define INTAKE CF_BINARY_DIR "/services/caseflow-intake"
#define VALIDATION CF_BINARY_DIR "/services/caseflow-validation"
#define SAMPLES CF_SOURCE_DIR "/deploy/samples"

#define T_SUBMITTED "caseflow.inquiry.submitted"
#define T_OPENED "caseflow.case.opened"
#define WARMUP_TIMEOUT_MS 180000 /* a dead member of an older run holds partitions ~45 s */
#define STOP_TIMEOUT_MS 60000
#define SETTLE_TIMEOUT_MS 600000 /* a backlog of 100,000s of records takes minutes */
#define PRODUCE_CHUNK 500        /* records enqueued between two reads of the outcomes */
#define MAX_EXTRA_ENV 6
#define MAX_SAMPLES 16

/* What the bench reads; the index is an outcome code. The dead-letter topics are read so that
 * a refused inquiry is reported as such rather than as missing. */
static const char *const outcome_topics[] = {
    "caseflow.case.validated", "caseflow.case.info-requested", "caseflow.case.review-requested",
    "caseflow.case.rejected",  "caseflow.dlq.intake",          "caseflow.dlq.validation",
};
#define NOUTCOMES (sizeof(outcome_topics) / sizeof(outcome_topics[0]))

static const struct cf_config_entry table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
};

/* One inquiry of the run. */
struct item {
    unsigned char *value; /* the encoded InquirySubmitted */
    size_t len;
    char event_id[CF_UUID_LEN + 1];
    int64_t occurred_ms;
    int64_t sent_us;   /* when it was handed to the producer */
    int64_t recv_us;   /* when its first outcome was read; 0: none yet */
    unsigned outcomes; /* how many outcomes were read (1 is right) */
    unsigned topic;    /* outcome_topics index of the first */
};

struct bench {
    /* arguments */
    long long n, warmup, rate, timeout_s;
    bool keep_logs;
    const char *extra_env[MAX_EXTRA_ENV];
    size_t n_extra;
    /* run identity */
    char run_id[24];
    char tag[9];     /* random: in emails, so two runs never share a contact */
    char prefix[25]; /* random first 24 characters of every inquiry id of the run */
    char intake_log[160], validation_log[160];
    char redis_prefix[64]; /* the services' CASEFLOW_REDIS_KEY_PREFIX, dropped after the run */
    /* clients */
    struct cf_config *config;
    struct cf_registry *registry;
    struct cf_serde *serde;
    struct cf_kafka_consumer *consumer;
    struct cf_kafka_producer *producer;
    pid_t intake, validation;
    /* the run */
    struct item *items; /* warm-up first, then the measured ones */
    size_t total;
    size_t got_warm, got_measured, duplicates, foreign, undecodable;
    size_t per_topic[NOUTCOMES];
};

/* Writes the id of inquiry i: the run's random prefix and i in the last 12 hex digits, still a
 * canonical version-4 UUID, so an outcome's correlation_id gives the index back without a
 * table. */
static void inquiry_id(const struct bench *b, size_t i, char out[CF_UUID_LEN + 1])
{
    (void)snprintf(out, CF_UUID_LEN + 1, "%.24s%012llx", b->prefix,
                   (unsigned long long)i & 0xffffffffffffULL);
}

/* The index of an inquiry id of this run, or -1 for anybody else's. */
static long long id_index(const struct bench *b, const char *id, size_t len)
{
    char digits[13];
    if (len != CF_UUID_LEN || memcmp(id, b->prefix, 24) != 0)
        return -1;
    memcpy(digits, id + 24, 12);
    digits[12] = '\0';
    char *end = NULL;
    unsigned long long v = strtoull(digits, &end, 16);
    if (end != digits + 12 || v >= b->total)
        return -1;
    return (long long)v;
}

/* The correlation id of a decoded caseflow event (meta.correlation_id), or NULL. */
static const char *correlation_id(avro_value_t *v, size_t *len)
{
    avro_value_t meta, cid;
    const char *s = NULL;
    if (avro_value_get_by_name(v, "meta", &meta, NULL) != 0 ||
        avro_value_get_by_name(&meta, "correlation_id", &cid, NULL) != 0 ||
        avro_value_get_string(&cid, &s, len) != 0)
        return NULL;
    if (*len > 0)
        (*len)--; /* avro-c counts the NUL */
    return s;
}

/* Accounts one record read from an outcome or dead-letter topic at now_us. */
static void take(struct bench *b, const struct cf_kafka_record *r, int64_t now_us)
{
    char err[512], source[128] = "";
    unsigned t = 0;
    while (t < NOUTCOMES && strcmp(outcome_topics[t], r->topic) != 0)
        t++;
    if (t == NOUTCOMES || r->value == NULL)
        return;
    const char *topic = r->topic;
    if (t >= 4) {
        /* A dead letter keeps the original record: decode it as its source topic's. */
        for (size_t h = 0; h < r->header_count; h++)
            if (strcmp(r->headers[h].name, "dlq.source.topic") == 0 && r->headers[h].value != NULL)
                (void)snprintf(source, sizeof(source), "%.*s", (int)r->headers[h].len,
                               (const char *)r->headers[h].value);
        topic = source;
    }
    avro_value_t v;
    if (topic[0] == '\0' ||
        cf_serde_decode(b->serde, topic, r->value, r->value_len, &v, err, sizeof(err)) != CF_OK) {
        b->undecodable++;
        return;
    }
    size_t len = 0;
    const char *cid = correlation_id(&v, &len);
    long long i = cid != NULL ? id_index(b, cid, len) : -1;
    avro_value_decref(&v);
    if (i < 0) {
        b->foreign++;
        return;
    }
    struct item *it = &b->items[i];
    if (it->outcomes++ > 0) {
        b->duplicates++;
        return;
    }
    it->recv_us = now_us;
    it->topic = t;
    if (i < b->warmup) {
        b->got_warm++;
    } else {
        b->got_measured++;
        b->per_topic[t]++;
    }
}

/* Reads outcomes: waits up to timeout_ms for the first, then takes whatever else is already
 * there (at most max records). */
static void read_outcomes(struct bench *b, int timeout_ms, size_t max)
{
    char err[512];
    for (size_t k = 0; k < max; k++) {
        struct cf_kafka_record *r = NULL;
        if (cf_kafka_consumer_poll(b->consumer, k == 0 ? timeout_ms : 0, &r, err, sizeof(err)) !=
            CF_OK)
            return;
        take(b, r, cf_bench_now_us());
        cf_kafka_record_release(r);
    }
}

/* Encodes every inquiry of the run before anything is timed. */
static bool make_items(struct bench *b, json_t *const *samples, size_t nsamples)
{
    char err[512], id[CF_UUID_LEN + 1], when[32], idem[64];
    b->items = calloc(b->total, sizeof(*b->items));
    if (b->items == NULL)
        return false;
    for (size_t i = 0; i < b->total; i++) {
        struct item *it = &b->items[i];
        json_t *inq = cf_bench_inquiry(samples, nsamples, i, b->tag);
        if (inq == NULL || cf_uuid_v4(it->event_id) != CF_OK) {
            json_decref(inq);
            return false;
        }
        inquiry_id(b, i, id);
        it->occurred_ms = cf_clock_wall_ms();
        cf_avro_format_millis(it->occurred_ms, when, sizeof(when));
        (void)snprintf(idem, sizeof(idem), "bench-%s-%zu", b->tag, i);
        json_object_set_new(inq, "inquiry_id", json_string(id));
        json_object_set_new(inq, "idempotency_key", json_string(idem));
        json_object_set_new(inq, "submitted_at", json_string(when));
        json_t *rec =
            json_pack("{s:{s:s, s:n, s:s, s:s, s:s, s:n}, s:o}", "meta", "event_id", it->event_id,
                      "case_id", "occurred_at", when, "producer", "bench/" CF_BENCH_VERSION,
                      "correlation_id", id, "causation_id", "inquiry", inq);
        cf_status st = rec != NULL ? cf_serde_encode_json(b->serde, T_SUBMITTED, rec, &it->value,
                                                          &it->len, err, sizeof(err))
                                   : CF_ENOMEM;
        json_decref(rec);
        if (st != CF_OK) {
            /* err names a field path, never a value. */
            fprintf(stderr, "bench_pipeline: encoding inquiry %zu: %s\n", i, err);
            return false;
        }
    }
    return true;
}

/* Hands inquiry i to the producer and stamps it. */
static bool produce(struct bench *b, size_t i)
{
    char err[512], id[CF_UUID_LEN + 1];
    struct cf_cloudevent ce;
    struct item *it = &b->items[i];
    inquiry_id(b, i, id);
    if (cf_cloudevent_init(&ce, "bench", "caseflow.event.InquirySubmitted", it->event_id,
                           it->occurred_ms, err, sizeof(err)) != CF_OK) {
        fprintf(stderr, "bench_pipeline: headers: %s\n", err);
        return false;
    }
    it->sent_us = cf_bench_now_us();
    if (cf_kafka_produce(b->producer, T_SUBMITTED, id, CF_UUID_LEN, it->value, it->len, ce.headers,
                         CF_CE_HEADER_COUNT, err, sizeof(err)) != CF_OK) {
        fprintf(stderr, "bench_pipeline: produce: %s\n", err);
        return false;
    }
    return true;
}

/* True (and *pid reaped and set to -1, its status in *status: 128 + signal if killed) if the
 * child has exited, so a service that died is reported at once instead of after a timeout. */
static bool exited(pid_t *pid, int *status)
{
    int ws = 0;
    if (*pid <= 0 || waitpid(*pid, &ws, WNOHANG) != *pid)
        return false;
    *pid = -1;
    *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    return true;
}

static bool start_services(struct bench *b)
{
    static char ienv[13][160], venv[13][160];
    static const char *const forwarded[] = {"CASEFLOW_REGISTRY_URL", "CASEFLOW_REDIS_HOST",
                                            "CASEFLOW_REDIS_PORT"};
    char secret[65];
    size_t ni = 0, nv = 0;
    if (!cf_bench_random_hex(secret, 32))
        return false;
    /* A fresh secret makes every fold key new: no claim an older run left in Redis (24 h) can
     * fold this run's inquiries. A fresh instance id is a fresh transactional.id. */
    (void)snprintf(ienv[ni++], sizeof(ienv[0]), "CASEFLOW_INSTANCE_ID=bench-%s", b->run_id);
    (void)snprintf(ienv[ni++], sizeof(ienv[0]), "CASEFLOW_INTAKE_IDENTITY_SECRET=%s", secret);
    (void)snprintf(ienv[ni++], sizeof(ienv[0]), "CASEFLOW_INTAKE_HTTP_PORT=0");
    (void)snprintf(ienv[ni++], sizeof(ienv[0]), "CASEFLOW_REDIS_KEY_PREFIX=%s", b->redis_prefix);
    (void)snprintf(venv[nv++], sizeof(venv[0]), "CASEFLOW_INSTANCE_ID=bench-%s", b->run_id);
    (void)snprintf(venv[nv++], sizeof(venv[0]), "CASEFLOW_REDIS_KEY_PREFIX=%s", b->redis_prefix);
    /* Its ops endpoint is not needed, and another validation on the machine may hold the
     * default port (a build without the endpoint only warns about the unknown key). */
    (void)snprintf(venv[nv++], sizeof(venv[0]), "CASEFLOW_VALIDATION_HTTP_PORT=0");
    for (size_t k = 0; k < sizeof(forwarded) / sizeof(forwarded[0]); k++) {
        const char *v = getenv(forwarded[k]);
        if (v == NULL)
            continue;
        (void)snprintf(ienv[ni++], sizeof(ienv[0]), "%s=%s", forwarded[k], v);
        (void)snprintf(venv[nv++], sizeof(venv[0]), "%s=%s", forwarded[k], v);
    }
    for (size_t k = 0; k < b->n_extra; k++) {
        (void)snprintf(ienv[ni++], sizeof(ienv[0]), "%s", b->extra_env[k]);
        (void)snprintf(venv[nv++], sizeof(venv[0]), "%s", b->extra_env[k]);
    }
    b->intake = cf_test_spawn_service(INTAKE, ienv, ni, b->intake_log);
    b->validation = cf_test_spawn_service(VALIDATION, venv, nv, b->validation_log);
    return true;
}

/* The committed backlog of a service's group on a topic, or -1 if it cannot be read. */
static long long backlog(const struct bench *b, const char *group, const char *topic)
{
    char err[512];
    struct cf_kafka_group_progress p;
    if (cf_kafka_group_progress(b->config, group, topic, 10000, &p, err, sizeof(err)) != CF_OK)
        return -1;
    return (long long)p.lag;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_pipeline [N] [--warmup W] [--rate R] [--timeout-s S]\n"
            "                      [--env NAME=VALUE]... [--keep-logs]\n"
            "  N          inquiries measured (default 20000)\n"
            "  --warmup   inquiries pushed through first, not measured (default 200)\n"
            "  --rate     inquiries per second to offer (default 0: as fast as possible)\n"
            "  --timeout-s  longest wait for the last outcome after the first produce (300)\n"
            "  --env      an extra variable for both services, e.g. CASEFLOW_BATCH_MAX_MS=20\n"
            "  --keep-logs  keep the services' logs even when the run succeeds\n");
}

static bool parse_args(struct bench *b, int argc, char **argv)
{
    b->n = 20000;
    b->warmup = 200;
    b->rate = 0;
    b->timeout_s = 300;
    const struct cf_bench_args args = {&b->n,        &b->warmup,  &b->rate,
                                       &b->timeout_s, &b->keep_logs, NULL,
                                       b->extra_env,  MAX_EXTRA_ENV, &b->n_extra};
    if (!cf_bench_parse_args(&args, argc, argv)) {
        usage();
        return false;
    }
    return true;
}

static void print_config(const struct bench *b, int argc, char **argv, size_t nsamples)
{
    extern char **environ;
    char err[512];
    struct cf_topic_info ti;
    printf("bench_pipeline: intake -> validation on the local stack, transactions on\n");
    cf_bench_print_command(argc, argv);
    cf_bench_print_machine();
    printf("  services: %s, %s\n", INTAKE, VALIDATION);
    printf("  inquiries: %lld measured, %lld warm-up, from %zu samples (%s), ", b->n, b->warmup,
           nsamples, SAMPLES);
    if (b->rate > 0)
        printf("offered at %lld/s\n", b->rate);
    else
        printf("produced as fast as the producer takes them\n");
    printf("  service env: CASEFLOW_INSTANCE_ID=bench-%s, CASEFLOW_REDIS_KEY_PREFIX=%s (both), "
           "CASEFLOW_INTAKE_HTTP_PORT=0 and a fresh CASEFLOW_INTAKE_IDENTITY_SECRET (intake), "
           "CASEFLOW_VALIDATION_HTTP_PORT=0 (validation)",
           b->run_id, b->redis_prefix);
    for (size_t k = 0; k < b->n_extra; k++)
        printf(", %s", b->extra_env[k]);
    printf("; everything else at the services' defaults\n");
    for (char **e = environ; *e != NULL; e++)
        if (strncmp(*e, "KAFKA_", 6) == 0)
            printf("  inherited: %.*s=%s\n", (int)(strcspn(*e, "=")), *e,
                   strstr(*e, "PASSWORD") != NULL || strstr(*e, "SECRET") != NULL
                       ? "(not shown)"
                       : strchr(*e, '=') + 1);
    if (cf_kafka_describe_topic(b->config, T_SUBMITTED, 10000, &ti, err, sizeof(err)) == CF_OK)
        printf("  topics: %s %d partitions", T_SUBMITTED, ti.partitions);
    if (cf_kafka_describe_topic(b->config, T_OPENED, 10000, &ti, err, sizeof(err)) == CF_OK)
        printf(", %s %d partitions", T_OPENED, ti.partitions);
    printf("\n  backlog of the services' groups before the run (offsets, transaction markers "
           "included): intake %lld, validation %lld\n",
           backlog(b, "caseflow-intake", T_SUBMITTED), backlog(b, "caseflow-validation", T_OPENED));
    printf("  logs: %s, %s\n", b->intake_log, b->validation_log);
    (void)cf_bench_warn_others("caseflow-intake", NULL, 0);
    (void)cf_bench_warn_others("caseflow-valida", NULL, 0); /* comm keeps 15 characters */
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct bench b;
    json_t *samples[MAX_SAMPLES];
    size_t nsamples = 0;
    int64_t *lat = NULL;
    char err[512];
    int st_i = -1, st_v = -1; /* the services' exit statuses (-1: not yet known) */
    int rc = 1;

    memset(&b, 0, sizeof(b));
    b.intake = b.validation = -1;
    if (!parse_args(&b, argc, argv))
        return 2;
    b.total = (size_t)(b.n + b.warmup);
    cf_test_run_id(b.run_id, sizeof(b.run_id));
    char rnd[19];
    if (!cf_bench_random_hex(b.tag, 4) || !cf_bench_random_hex(rnd, 9)) {
        fprintf(stderr, "bench_pipeline: /dev/urandom unreadable\n");
        goto out;
    }
    (void)snprintf(b.prefix, sizeof(b.prefix), "%.8s-%.4s-4%.3s-8%.3s-", rnd, rnd + 8, rnd + 12,
                   rnd + 15);
    (void)snprintf(b.intake_log, sizeof(b.intake_log), "/tmp/bench-pipeline-%s-intake.log",
                   b.run_id);
    (void)snprintf(b.validation_log, sizeof(b.validation_log),
                   "/tmp/bench-pipeline-%s-validation.log", b.run_id);
    cf_bench_redis_prefix(b.run_id, b.redis_prefix, sizeof(b.redis_prefix));
    cf_bench_ignore_sigpipe();

    if (cf_test_service_clients(table, sizeof(table) / sizeof(table[0]), &b.config, &b.registry,
                                &b.serde) != 0)
        goto out;
    if ((nsamples = cf_bench_load_samples(SAMPLES, samples, MAX_SAMPLES)) == 0)
        goto out;
    print_config(&b, argc, argv, nsamples);

    struct cf_kafka_consumer_options copts = {false, false, "latest"};
    if (cf_kafka_consumer_new(b.config, NULL, outcome_topics, NOUTCOMES, &copts, &b.consumer, err,
                              sizeof(err)) != CF_OK ||
        cf_kafka_producer_new(b.config, NULL, 30000, &b.producer, err, sizeof(err)) != CF_OK) {
        fprintf(stderr, "bench_pipeline: Kafka clients: %s\n", err);
        goto out;
    }
    int64_t t = cf_bench_now_us();
    if (!make_items(&b, samples, nsamples)) {
        fprintf(stderr, "bench_pipeline: could not make the inquiries\n");
        goto out;
    }
    printf("prepared %zu encoded inquiries in %.2f s (not timed)\n", b.total,
           (double)(cf_bench_now_us() - t) / 1e6);

    /* Read the outcome topics once before anything is produced, so the consumer's position
     * ("latest") is fixed before the first warm-up outcome can appear. */
    read_outcomes(&b, 1000, 1000);
    t = cf_bench_now_us();
    if (!start_services(&b))
        goto out;
    printf("services started: intake pid %ld, validation pid %ld\n", (long)b.intake,
           (long)b.validation);
    fflush(stdout);

    /* Warm-up: waits until both loops run (whatever the log level, the outcomes say so), joins
     * both groups, clears any backlog, proves the whole path. */
    for (size_t i = 0; i < (size_t)b.warmup; i++)
        if (!produce(&b, i))
            goto out;
    if (cf_kafka_producer_flush(b.producer, 30000, err, sizeof(err)) != CF_OK) {
        fprintf(stderr, "bench_pipeline: warm-up flush: %s\n", err);
        goto out;
    }
    int64_t deadline = cf_clock_mono_ms() + WARMUP_TIMEOUT_MS;
    while (b.got_warm < (size_t)b.warmup && cf_clock_mono_ms() < deadline &&
           !exited(&b.intake, &st_i) && !exited(&b.validation, &st_v))
        read_outcomes(&b, 100, 1000);
    if (b.got_warm < (size_t)b.warmup) {
        fprintf(stderr, "bench_pipeline: warm-up: %zu of %lld outcomes after %d s%s\n", b.got_warm,
                b.warmup, WARMUP_TIMEOUT_MS / 1000,
                b.intake < 0 || b.validation < 0 ? " (a service exited)" : "");
        goto out;
    }
    printf("warm-up: %lld inquiries through both services in %.1f s from their start\n", b.warmup,
           (double)(cf_bench_now_us() - t) / 1e6);
    fflush(stdout);
    /* The warm-up outcomes are in, but the services may still be working off what older runs
     * left on their other topics: measure only once they are idle. */
    pid_t both[] = {b.intake, b.validation};
    int64_t waited = 0;
    if (!cf_bench_wait_idle(both, 2, SETTLE_TIMEOUT_MS, &waited)) {
        fprintf(stderr,
                "bench_pipeline: the services were still busy %d s after the warm-up "
                "(a backlog on their topics?)\n",
                SETTLE_TIMEOUT_MS / 1000);
        goto out;
    }
    printf("settled: both services idle %.1f s after the warm-up\n", (double)waited / 1e3);
    fflush(stdout);

    /* Measured phase. */
    int64_t cpu0_i = cf_bench_cpu_ms(b.intake), cpu0_v = cf_bench_cpu_ms(b.validation);
    int64_t busy0 = cf_bench_machine_busy_ms();
    struct rusage ru0, ru1;
    (void)getrusage(RUSAGE_SELF, &ru0);
    size_t next = (size_t)b.warmup;
    int64_t t0 = cf_bench_now_us(), produced_us = 0, acked_us = 0;
    int64_t end_us = t0 + b.timeout_s * 1000000;
    while (b.got_measured < (size_t)b.n && cf_bench_now_us() < end_us) {
        if (next < b.total) {
            size_t due = b.total;
            if (b.rate > 0) {
                /* Pacing: by now, (elapsed × rate) records should have been offered. */
                long long offered = (cf_bench_now_us() - t0) * b.rate / 1000000 + 1;
                if ((size_t)b.warmup + (size_t)offered < due)
                    due = (size_t)b.warmup + (size_t)offered;
            }
            for (size_t k = 0; next < due && k < PRODUCE_CHUNK; k++)
                if (!produce(&b, next++))
                    goto out;
            if (next == b.total)
                produced_us = cf_bench_now_us();
            /* Paced and nothing due: wait a millisecond for outcomes rather than spin. */
            read_outcomes(&b, b.rate > 0 && next == due ? 1 : 0, 1000);
            continue;
        }
        /* Everything is with the producer: serve its delivery reports now and then. */
        if (acked_us == 0) {
            cf_status st = cf_kafka_producer_flush(b.producer, 0, err, sizeof(err));
            if (st == CF_OK)
                acked_us = cf_bench_now_us();
            else if (st != CF_ETIMEOUT) {
                fprintf(stderr, "bench_pipeline: delivery: %s\n", err);
                goto out;
            }
        }
        read_outcomes(&b, 50, 1000);
        if (exited(&b.intake, &st_i) || exited(&b.validation, &st_v)) {
            fprintf(stderr, "bench_pipeline: a service died during the run\n");
            break;
        }
    }
    (void)getrusage(RUSAGE_SELF, &ru1);
    int64_t cpu1_i = cf_bench_cpu_ms(b.intake), cpu1_v = cf_bench_cpu_ms(b.validation);
    int64_t busy1 = cf_bench_machine_busy_ms();
    int64_t phase_us = cf_bench_now_us() - t0;
    /* A moment more, so that a duplicate outcome would be seen. */
    for (int64_t until = cf_bench_now_us() + 2000000; cf_bench_now_us() < until;)
        read_outcomes(&b, 100, 1000);
    long hwm_i = cf_bench_vmhwm_kib(b.intake), hwm_v = cf_bench_vmhwm_kib(b.validation);

    if (b.intake > 0)
        st_i = cf_test_stop_child(&b.intake, STOP_TIMEOUT_MS);
    if (b.validation > 0)
        st_v = cf_test_stop_child(&b.validation, STOP_TIMEOUT_MS);

    /* The report. */
    lat = malloc((size_t)b.n * sizeof(*lat));
    if (lat == NULL)
        goto out;
    size_t nl = 0;
    int64_t last_us = t0;
    for (size_t i = (size_t)b.warmup; i < b.total; i++) {
        const struct item *it = &b.items[i];
        if (it->recv_us == 0)
            continue;
        lat[nl++] = it->recv_us - it->sent_us;
        if (it->recv_us > last_us)
            last_us = it->recv_us;
    }
    cf_bench_sort(lat, nl);
    double span_s = (double)(last_us - t0) / 1e6;
    printf("measured: %lld inquiries\n", b.n);
    if (produced_us > 0)
        printf("  produce: all %lld handed to the producer after %.3f s", b.n,
               (double)(produced_us - t0) / 1e6);
    if (acked_us > 0)
        printf(", acknowledged (acks=all) after %.3f s", (double)(acked_us - t0) / 1e6);
    printf("\n  outcomes: %zu of %lld (validated %zu, info-requested %zu, review-requested %zu, "
           "rejected %zu, dead-lettered %zu); duplicates %zu; other runs' records seen %zu\n",
           b.got_measured, b.n, b.per_topic[0], b.per_topic[1], b.per_topic[2], b.per_topic[3],
           b.per_topic[4] + b.per_topic[5], b.duplicates, b.foreign);
    if (b.undecodable > 0)
        printf("  records that could not be decoded: %zu\n", b.undecodable);
    printf("  throughput: %.0f cases/s (%zu outcomes, first produce -> last outcome %.3f s)\n",
           span_s > 0 ? (double)nl / span_s : 0.0, nl, span_s);
    printf("  latency, produce -> outcome read: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
           (double)cf_bench_rank(lat, nl, 0.50) / 1e3, (double)cf_bench_rank(lat, nl, 0.99) / 1e3,
           (double)cf_bench_rank(lat, nl, 1.0) / 1e3);
    double bench_cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
                                ru0.ru_stime.tv_sec) +
                       (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
                                ru0.ru_stime.tv_usec) /
                           1e6;
    double cpu_i = (double)(cpu1_i - cpu0_i) / 1e3, cpu_v = (double)(cpu1_v - cpu0_v) / 1e3;
    double busy = (double)(busy1 - busy0) / 1e3;
    printf("  CPU during the measured phase (%.2f s, first produce to last outcome): intake "
           "%.2f s, validation %.2f s, bench %.2f s; the machine %.2f s of %.2f s (%.0f%% "
           "busy), so %.2f s went to Kafka, the registry, Redis and anything else running\n",
           (double)phase_us / 1e6, cpu_i, cpu_v, bench_cpu, busy,
           (double)phase_us / 1e6 * (double)sysconf(_SC_NPROCESSORS_ONLN),
           100.0 * busy / ((double)phase_us / 1e6 * (double)sysconf(_SC_NPROCESSORS_ONLN)),
           busy - cpu_i - cpu_v - bench_cpu);
    struct rusage self;
    (void)getrusage(RUSAGE_SELF, &self);
    printf("  peak RSS (VmHWM): intake %.1f MiB, validation %.1f MiB, bench %.1f MiB\n",
           (double)hwm_i / 1024.0, (double)hwm_v / 1024.0, (double)self.ru_maxrss / 1024.0);
    printf("  services stopped with status: intake %d, validation %d\n", st_i, st_v);
    bool alone = cf_bench_print_loop_counts("intake", b.intake_log, b.total);
    alone &= cf_bench_print_loop_counts("validation", b.validation_log, b.total);
    if (nl < (size_t)b.n)
        printf("MISSING: %zu of %lld inquiries had no outcome after %lld s\n", (size_t)b.n - nl,
               b.n, b.timeout_s);
    /* Not alone in the groups: the outcomes are all there, but the figures are not this run's. */
    rc = nl == (size_t)b.n && b.duplicates == 0 && st_i == 0 && st_v == 0 && alone ? 0 : 1;
out:
    /* Whatever happened, the services are stopped (or killed) now: drop what they stored. */
    cf_test_kill_child(b.intake);
    cf_test_kill_child(b.validation);
    if (b.redis_prefix[0] != '\0' && !cf_bench_redis_drop(b.redis_prefix))
        rc = 1;
    if (rc == 0 && !b.keep_logs) {
        (void)unlink(b.intake_log);
        (void)unlink(b.validation_log);
    } else {
        if (b.intake_log[0] != '\0' && access(b.intake_log, F_OK) == 0)
            printf("log kept: %s\n", b.intake_log);
        if (b.validation_log[0] != '\0' && access(b.validation_log, F_OK) == 0)
            printf("log kept: %s\n", b.validation_log);
    }
    free(lat);
    if (b.items != NULL)
        for (size_t i = 0; i < b.total; i++)
            free(b.items[i].value);
    free(b.items);
    for (size_t i = 0; i < nsamples; i++)
        json_decref(samples[i]);
    cf_kafka_producer_free(b.producer);
    cf_kafka_consumer_free(b.consumer);
    cf_serde_free(b.serde);
    cf_registry_free(b.registry);
    cf_config_free(b.config);
    return rc;
}
