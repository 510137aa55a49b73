/* bench_notifier.c — how fast caseflow-notifier delivers, against how fast the servers it
 * delivers to can take messages at all.
 *
 *   1. Ceiling: the local stack's SMTP server and SMS recorder fed by a plain libcurl client
 *      (the notifier's own sender module, services/notifier/sender.c, without Kafka, Redis or
 *      templates) as fast as it goes with the same parallelism: emails alone, SMS alone, and
 *      both mixed one to one, which is what the notifier sends.
 *   2. The notifier: N TeleconsultScheduled BOOKED events (each an email and an SMS: 2N
 *      notifications), produced at once (or at --rate per second), until every SENT status is
 *      on caseflow.notification.status. Latency is event → delivered: the status's occurred_at
 *      (written when the server accepted the message) minus the event's.
 * Reports notifications/s, latency percentiles, and the notifier's peak RSS and CPU time, with
 * the command that produced them. Not a test: run it by hand (ctest -L bench). */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "avro_convert.h"
#include "avro_serde.h"
#include "bench_support.h"
#include "child.h"
#include "clock.h"
#include "cloudevents.h"
#include "config.h"
#include "kafka.h"
#include "mime.h"
#include "plan.h"
#include "registry.h"
#include "sender.h"
#include "test_env.h"
#include "uuid.h"

#define SERVICE CF_BINARY_DIR "/services/caseflow-notifier"
#define GROUP "caseflow-notifier"
#define MAX_EXTRA_ENV 8
#define PARALLEL 16
#define SMS_URL "http://127.0.0.1:18025/v1/messages"
#define SMTP_URL "smtp://127.0.0.1:12525"

static const struct cf_config_entry table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
};

struct bench {
    long long n, warmup, rate, timeout_s;
    bool keep_logs, keep_backlog;
    const char *extra_env[MAX_EXTRA_ENV];
    size_t n_extra;
    char run_id[24];
    char log_path[128];
    struct cf_config *config;
    struct cf_registry *registry;
    struct cf_serde *serde;
    struct cf_kafka_producer *producer;
    struct cf_kafka_consumer *consumer;
    pid_t pid;
};

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_notifier [N] [--warmup W] [--rate R] [--timeout-s S]\n"
            "                      [--env NAME=VALUE]... [--keep-logs]\n"
            "  N          bookings measured, each an email and an SMS (default 2000)\n"
            "  --warmup   bookings sent first, not measured (default 50)\n"
            "  --rate     bookings per second to offer (default 0: all at once)\n"
            "  --timeout-s  longest wait for the last status after the first produce (300)\n"
            "  --env      an extra variable for the notifier (at most %d)\n"
            "  --keep-logs  keep the notifier's log even when the run succeeds\n",
            MAX_EXTRA_ENV);
}

/* ---- Ceiling ------------------------------------------------------------------------------ */

/* Sends count messages (kind 0: emails, 1: SMS, 2: alternating) with a plain client and
 * prints the rate; returns messages per second (0 if any failed). */
static double ceiling(const char *what, int kind, size_t count)
{
    const struct notifier_sender_config cfg = {SMTP_URL,
                                               NOTIFIER_SMTP_TLS_NONE,
                                               "",
                                               "",
                                               "bench@caseflow.example",
                                               NOTIFIER_SMS_API_JSON,
                                               SMS_URL,
                                               "",
                                               "",
                                               "+15550100000",
                                               5000,
                                               30000,
                                               PARALLEL};
    struct notifier_sender *s = NULL;
    struct notifier_send *sends = calloc(count, sizeof(*sends));
    char **bufs = calloc(count, sizeof(*bufs));
    char(*keys)[CF_UUID_LEN + 1] = calloc(count, sizeof(*keys));
    char err[256] = "", msgid[96], to[96];
    static const char text[] =
        "Dear Bench Tester,\n\nYour teleconsultation is booked for Tuesday, March 5, 2030 at "
        "9:00 AM Central Standard Time.\nJoin: https://meet.example.org/j/tok123\n";
    double rate = 0;

    if (sends == NULL || bufs == NULL || keys == NULL ||
        notifier_sender_new(&cfg, &s, err, sizeof(err)) != CF_OK) {
        fprintf(stderr, "bench_notifier: ceiling: %s\n", err);
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        bool mail = kind == 0 || (kind == 2 && i % 2 == 0);
        (void)cf_uuid_v4(keys[i]);
        snprintf(to, sizeof(to), "b%zu@example.org", i);
        sends[i].channel = mail ? NOTIFIER_EMAIL : NOTIFIER_SMS;
        sends[i].key = keys[i];
        if (!mail) {
            sends[i].to = "+15550123456";
            sends[i].data = "Teleconsultation booked for Tue, Mar 5, 9:00 AM. Join: "
                            "https://meet.example.org/j/tok123";
            sends[i].len = strlen(sends[i].data);
            continue;
        }
        snprintf(msgid, sizeof(msgid), "<%s@bench.caseflow.test>", keys[i]);
        const struct notifier_mail m = {"Care team",
                                        "bench@caseflow.example",
                                        "Bench Tester",
                                        to,
                                        "Your teleconsultation is booked",
                                        text,
                                        "<p>Your teleconsultation is booked.</p>",
                                        msgid,
                                        cf_clock_wall_ms()};
        size_t len = 0;
        if (notifier_mime_build(&m, &bufs[i], &len, err, sizeof(err)) != CF_OK) {
            fprintf(stderr, "bench_notifier: ceiling: %s\n", err);
            goto out;
        }
        sends[i].to = strdup(to);
        sends[i].data = bufs[i];
        sends[i].len = len;
    }
    int64_t t0 = cf_bench_now_us();
    notifier_sender_run(s, sends, count, NULL);
    int64_t us = cf_bench_now_us() - t0;
    size_t ok = 0;
    for (size_t i = 0; i < count; i++)
        ok += sends[i].outcome == NOTIFIER_SENT;
    rate = ok == count ? (double)count * 1e6 / (double)us : 0;
    printf("  ceiling %-6s %6zu messages in %7.2f s: %8.1f messages/s%s\n", what, count,
           (double)us / 1e6, (double)count * 1e6 / (double)us,
           ok == count ? "" : "  (SOME FAILED)");
out:
    if (sends != NULL)
        for (size_t i = 0; i < count; i++)
            if (sends[i].channel == NOTIFIER_EMAIL)
                free((char *)sends[i].to);
    if (bufs != NULL)
        for (size_t i = 0; i < count; i++)
            free(bufs[i]);
    free(bufs);
    free(keys);
    free(sends);
    notifier_sender_free(s);
    return rate;
}

/* ---- The notifier ------------------------------------------------------------------------- */

static bool start_notifier(struct bench *b)
{
    char env[CF_TEST_SERVICE_ENV_MAX][160], prefix[96];
    size_t ne = 0;
    cf_bench_redis_prefix(b->run_id, prefix, sizeof(prefix));
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_INSTANCE_ID=bench-notifier-%s", b->run_id);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_REDIS_KEY_PREFIX=%s", prefix);
    /* No quiet hours: every SMS goes now, whatever the hour of the run. */
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_NOTIFIER_QUIET_START=00:00");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_NOTIFIER_QUIET_END=00:00");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_NOTIFIER_MAX_PARALLEL=%d", PARALLEL);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_NOTIFIER_MESSAGE_ID_DOMAIN=bench.caseflow.test");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_NOTIFIER_HTTP_PORT=0");
    for (size_t i = 0; i < b->n_extra && ne < CF_TEST_SERVICE_ENV_MAX; i++)
        snprintf(env[ne++], sizeof(env[0]), "%s", b->extra_env[i]);
    b->pid = cf_test_spawn_service(SERVICE, env, ne, b->log_path);
    return b->pid > 0;
}

/* One booking for a patient of its own (the daily cap counts per recipient), encoded. */
static bool booking(struct bench *b, size_t i, unsigned char **value, size_t *len,
                    char case_id[CF_UUID_LEN + 1], char event_id[CF_UUID_LEN + 1])
{
    char err[256], email[96], phone[24];
    (void)cf_uuid_v4(case_id);
    (void)cf_uuid_v4(event_id);
    snprintf(email, sizeof(email), "bench%zu.%s@example.org", i, b->run_id);
    snprintf(phone, sizeof(phone), "+1555%07zu", i % 10000000);
    json_t *ev = json_pack(
        "{s:{s:s, s:s, s:s, s:s, s:s, s:n}, s:s, s:s, s:s, s:s, s:s, s:s, s:n, s:s, s:s, s:s, "
        "s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:[]}}",
        "meta", "event_id", event_id, "case_id", case_id, "occurred_at", "2030-01-01T00:00:00.000Z",
        "producer", "bench/1", "correlation_id", case_id, "causation_id", "status", "BOOKED",
        "teleconsult_id", case_id, "specialist_id", "sp-b", "specialist_name", "Dr. Selin Aydın",
        "start", "2030-03-05T15:00:00.000Z", "end", "2030-03-05T15:30:00.000Z", "previous_start",
        "patient_time_zone", "America/Chicago", "specialist_time_zone", "Europe/Istanbul",
        "join_url", "https://meet.example.org/j/tok123", "reschedule_token", "rs-Tok_1",
        "cancel_token", "cx-Tok_2", "recipient", "given_name", "Bench", "family_name", "Tester",
        "language", i % 2 == 0 ? "en" : "es", "country", "US", "time_zone", "America/Chicago",
        "email", email, "phone", phone, "consent_email", 1, "consent_sms", 1, "contact_windows");
    cf_status st = ev != NULL ? cf_serde_encode_json(b->serde, NOTIFIER_T_SCHEDULED, ev, value, len,
                                                     err, sizeof(err))
                              : CF_ENOMEM;
    json_decref(ev);
    if (st != CF_OK)
        fprintf(stderr, "bench_notifier: encoding a booking: %s\n", err);
    return st == CF_OK;
}

/* Produces bookings [from, to) at rate per second (0: at once); their produce times (wall ms)
 * into sent_ms, their event ids into index (event id -> i). */
static bool produce_bookings(struct bench *b, size_t from, size_t to, int64_t *sent_ms,
                             json_t *index)
{
    char err[256];
    int64_t t0 = cf_bench_now_us();
    for (size_t i = from; i < to; i++) {
        unsigned char *value = NULL;
        size_t len = 0;
        char case_id[CF_UUID_LEN + 1], event_id[CF_UUID_LEN + 1];
        struct cf_cloudevent ce;
        if (!booking(b, i, &value, &len, case_id, event_id))
            return false;
        if (b->rate > 0) {
            int64_t due = t0 + (int64_t)((double)(i - from) * 1e6 / (double)b->rate);
            while (cf_bench_now_us() < due)
                cf_clock_sleep_ms(1);
        }
        int64_t now = cf_clock_wall_ms();
        /* The event's time is its produce time: the latency is from here to delivered. */
        bool ok = cf_cloudevent_init(&ce, "bench", "caseflow.event.TeleconsultScheduled", event_id,
                                     now, err, sizeof(err)) == CF_OK &&
                  cf_kafka_produce(b->producer, NOTIFIER_T_SCHEDULED, case_id, CF_UUID_LEN, value,
                                   len, ce.headers, CF_CE_HEADER_COUNT, err, sizeof(err)) == CF_OK;
        free(value);
        if (!ok) {
            fprintf(stderr, "bench_notifier: produce: %s\n", err);
            return false;
        }
        sent_ms[i] = now;
        json_object_set_new(index, event_id, json_integer((json_int_t)i));
    }
    return cf_kafka_producer_flush(b->producer, 60000, err, sizeof(err)) == CF_OK;
}

/* Reads statuses until `want` distinct SENT notifications of bookings [from, to) arrived or the
 * deadline passed; their latencies (status occurred_at - produce time, ms) into lat. Returns
 * how many arrived; *failed counts FAILED / SKIPPED statuses. */
static size_t read_statuses(struct bench *b, size_t want, const int64_t *sent_ms,
                            const json_t *index, int64_t *lat, int64_t deadline_ms, size_t *failed,
                            int64_t *last_ms)
{
    size_t got = 0;
    json_t *done = json_object();
    while (got < want && cf_clock_mono_ms() < deadline_ms) {
        struct cf_kafka_record *r = NULL;
        json_t *v = NULL;
        char err[256];
        if (cf_kafka_consumer_poll(b->consumer, 200, &r, err, sizeof(err)) != CF_OK)
            continue;
        if (cf_serde_decode_json(b->serde, r->topic, r->value, r->value_len, &v, err,
                                 sizeof(err)) == CF_OK) {
            const char *status = json_string_value(json_object_get(v, "status"));
            const char *src = json_string_value(json_object_get(v, "source_event_id"));
            const char *nid = json_string_value(json_object_get(v, "notification_id"));
            json_t *at = json_object_get(index, src != NULL ? src : "");
            if (at != NULL && status != NULL && nid != NULL && json_object_get(done, nid) == NULL) {
                if (strcmp(status, "SENT") == 0) {
                    int64_t when = 0;
                    (void)cf_avro_parse_millis(json_string_value(json_object_get(
                                                   json_object_get(v, "meta"), "occurred_at")),
                                               &when);
                    lat[got++] = when - sent_ms[json_integer_value(at)];
                    if (when > *last_ms)
                        *last_ms = when;
                    json_object_set_new(done, nid, json_true());
                } else if (!json_is_true(json_object_get(v, "will_retry"))) {
                    (*failed)++;
                }
            }
        }
        json_decref(v);
        cf_kafka_record_release(r);
    }
    json_decref(done);
    return got;
}

static void print_latency(int64_t *v, size_t n)
{
    cf_bench_sort(v, n);
    printf("  event -> delivered: p50 %lld ms, p90 %lld ms, p99 %lld ms, max %lld ms\n",
           (long long)cf_bench_rank(v, n, 0.5), (long long)cf_bench_rank(v, n, 0.9),
           (long long)cf_bench_rank(v, n, 0.99), (long long)cf_bench_rank(v, n, 1.0));
}

int main(int argc, char **argv)
{
    struct bench b = {.n = 2000, .warmup = 50, .timeout_s = 300, .pid = -1};
    const struct cf_bench_args args = {&b.n, &b.warmup,   &b.rate,       &b.timeout_s, &b.keep_logs,
                                       NULL, b.extra_env, MAX_EXTRA_ENV, &b.n_extra};
    const char *status_topic[] = {NOTIFIER_T_STATUS};
    char err[512];
    int rc = 1;
    int64_t *sent_ms = NULL, *lat = NULL;
    json_t *warm = json_object(), *measured = json_object();
    size_t failed = 0;
    int64_t last_ms = 0;

    if (!cf_bench_parse_args(&args, argc, argv)) {
        usage();
        return 2;
    }
    cf_bench_ignore_sigpipe();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || warm == NULL || measured == NULL)
        return 1;
    cf_test_run_id(b.run_id, sizeof(b.run_id));
    snprintf(b.log_path, sizeof(b.log_path), "/tmp/bench-notifier-%s.log", b.run_id);
    size_t total = (size_t)(b.n + b.warmup), want = 2 * (size_t)b.n;
    printf("bench_notifier: TeleconsultScheduled -> notifier -> SMTP server + SMS recorder on the "
           "local stack, transactions on\n");
    cf_bench_print_command(argc, argv);
    printf("  %lld bookings measured (%zu notifications), %lld warm-up, %s, parallel %d\n", b.n,
           want, b.warmup, b.rate > 0 ? "paced" : "produced at once", PARALLEL);

    double c_mixed = 0;
    (void)ceiling("email", 0, (size_t)b.n);
    (void)ceiling("sms", 1, (size_t)b.n);
    c_mixed = ceiling("mixed", 2, want);

    if (cf_test_service_clients(table, sizeof(table) / sizeof(table[0]), &b.config, &b.registry,
                                &b.serde) != 0 ||
        cf_kafka_producer_new(b.config, NULL, 30000, &b.producer, err, sizeof(err)) != CF_OK)
        goto out;
    size_t nin = 0;
    const char *const *in_topics = notifier_plan_topics(&nin);
    cf_test_group_to_end(b.config, GROUP, in_topics, nin);
    if ((b.consumer = cf_test_consumer_at_end(b.config, status_topic, 1)) == NULL ||
        !start_notifier(&b))
        goto out;
    if ((sent_ms = calloc(total, sizeof(*sent_ms))) == NULL ||
        (lat = calloc(2 * total, sizeof(*lat))) == NULL)
        goto out;
    /* Warm-up: the notifier joins its group, loads its scripts, opens its connections. */
    int64_t deadline = cf_clock_mono_ms() + b.timeout_s * 1000;
    if (!produce_bookings(&b, 0, (size_t)b.warmup, sent_ms, warm))
        goto out;
    size_t got =
        read_statuses(&b, 2 * (size_t)b.warmup, sent_ms, warm, lat, deadline, &failed, &last_ms);
    if (got < 2 * (size_t)b.warmup) {
        fprintf(stderr, "bench_notifier: warm-up: %zu of %lld statuses\n", got, 2 * b.warmup);
        goto out;
    }
    long cpu0 = (long)cf_bench_cpu_ms(b.pid);
    int64_t t0 = cf_clock_wall_ms();
    deadline = cf_clock_mono_ms() + b.timeout_s * 1000;
    if (!produce_bookings(&b, (size_t)b.warmup, total, sent_ms, measured))
        goto out;
    last_ms = 0;
    failed = 0;
    got = read_statuses(&b, want, sent_ms, measured, lat, deadline, &failed, &last_ms);
    double secs = (double)(last_ms - t0) / 1000.0;
    long cpu = (long)cf_bench_cpu_ms(b.pid) - cpu0;
    double per_s = secs > 0 ? (double)got / secs : 0;
    printf("  notifier: %zu of %zu notifications SENT (%zu failed) in %.2f s: %.1f "
           "notifications/s",
           got, want, failed, secs, per_s);
    /* Only a saturating run says what the notifier can do; a paced one, what it was offered. */
    if (b.rate > 0)
        printf(" (offered %lld/s)\n", 2 * b.rate);
    else
        printf(" = %.0f%% of the mixed ceiling\n", c_mixed > 0 ? 100.0 * per_s / c_mixed : 0);
    print_latency(lat, got);
    long anon = -1, file = -1;
    cf_bench_rss_split_kib(b.pid, &anon, &file);
    printf("  notifier peak RSS %ld KiB (now %ld KiB anonymous + %ld KiB file-backed), CPU %ld ms "
           "(%.2f ms per notification)\n",
           cf_bench_vmhwm_kib(b.pid), anon, file, cpu, got > 0 ? (double)cpu / (double)got : 0);
    rc = got == want && failed == 0 ? 0 : 1;
out:
    if (b.pid > 0 && cf_test_stop_child(&b.pid, 30000) != 0)
        rc = 1;
    cf_test_service_teardown(b.pid, b.consumer, NULL, b.serde, b.registry, b.config);
    cf_kafka_producer_free(b.producer);
    if (b.config != NULL) {
        char prefix[96];
        cf_bench_redis_prefix(b.run_id, prefix, sizeof(prefix));
        (void)cf_bench_redis_drop(prefix);
    }
    if (rc == 0 && !b.keep_logs)
        (void)unlink(b.log_path);
    else
        printf("  notifier log: %s\n", b.log_path);
    free(sent_ms);
    free(lat);
    json_decref(warm);
    json_decref(measured);
    curl_global_cleanup();
    return rc;
}
