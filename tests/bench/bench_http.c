/* bench_http.c — load on intake's POST /v1/inquiries over loopback, on the local stack
 * (deploy/stack up; topics created, schemas registered).
 *
 *   build/tests/bench_http [--duration-s S | --count N] [--connections C] [--port P]
 *                          [--env NAME=VALUE]... [--no-drain] [--keep-logs]
 *
 * It starts the built caseflow-intake with its HTTP endpoint on 127.0.0.1:P (default 18180),
 * a fresh instance id and a fresh identity secret, waits for /readyz, opens C keep-alive
 * connections (default 64, intake's connection limit) with one request each (not measured),
 * then keeps every connection busy with POST /v1/inquiries for S seconds (default 20) or N
 * requests, with libcurl's multi interface on one thread: JSON bodies made from
 * deploy/samples/, each with its own Idempotency-Key and its own contact, so each is a new
 * inquiry. Reported: requests/s, the count of each status code (and of transport errors),
 * p50/p99/max latency from handing a request to libcurl to its complete answer, intake's peak
 * RSS (VmHWM) and CPU time under that load, and the bench's own.
 *
 * Before the load, intake must be idle: a backlog older runs left on its topics is worked off
 * first. Afterwards (unless --no-drain) the inquiries are not left as a backlog for whoever
 * starts the services next on this shared stack: intake keeps running until its group has
 * committed them all, and a caseflow-validation is started until its group has consumed the
 * CaseOpened records they became and both services are idle. The services keep their Redis keys
 * under a prefix of this run's, deleted at the end. Exit status 0 when every request got a 202 and
 * the services stopped cleanly, 1 otherwise, 2 on bad arguments. It asserts nothing about speed. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "bench_support.h"
#include "child.h"
#include "clock.h"
#include "config.h"
#include "kafka.h"
#include "test_env.h"

#define INTAKE CF_BINARY_DIR "/services/caseflow-intake"
#define VALIDATION CF_BINARY_DIR "/services/caseflow-validation"
#define SAMPLES CF_SOURCE_DIR "/deploy/samples"

#define T_SUBMITTED "caseflow.inquiry.submitted"
#define T_OPENED "caseflow.case.opened"
#define READY_TIMEOUT_MS 90000
#define DRAIN_TIMEOUT_MS 300000
#define SETTLE_TIMEOUT_MS 600000 /* a backlog of 100,000s of records takes minutes */
#define STOP_TIMEOUT_MS 60000
#define REQUEST_TIMEOUT_MS 60000 /* longer than intake's produce timeout (10 s) */
#define MAX_CONNECTIONS 1024
#define MAX_EXTRA_ENV 6
#define MAX_SAMPLES 16
/* The latency array's cap (800 MB); requests past it are counted but not timed. */
#define MAX_LATENCIES 100000000

static const struct cf_config_entry table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
};

/* One connection's request in flight. */
struct conn {
    CURL *easy;
    struct curl_slist *headers;
    char *body; /* json_dumps output, the request's body until it completes */
    int64_t start_us;
    bool measured;
};

struct bench {
    /* arguments */
    long long duration_s, count, connections, port;
    bool drain, keep_logs;
    const char *extra_env[MAX_EXTRA_ENV];
    size_t n_extra;
    /* run identity */
    char run_id[24];
    char tag[9];
    char url[96];
    char intake_log[160], validation_log[160];
    char redis_prefix[64]; /* the services' CASEFLOW_REDIS_KEY_PREFIX, dropped after the run */
    json_t *samples[MAX_SAMPLES];
    size_t nsamples;
    /* the run */
    struct cf_config *config;
    pid_t intake, validation;
    CURLM *multi;
    struct conn *conns;
    uint64_t next;        /* index of the next inquiry (its email, phone and key) */
    uint64_t started;     /* measured requests handed to libcurl */
    uint64_t done;        /* measured requests completed */
    uint64_t status[600]; /* measured answers by HTTP status (0: no answer) */
    uint64_t transport_errors;
    int64_t *lat;
    size_t nlat, caplat;
};

/* Discards an answer's body: the status code is what is counted. */
static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

/* Sets c up for the next new inquiry. False if memory runs out or libcurl refuses an option. */
static bool prepare(struct bench *b, struct conn *c, bool measured)
{
    char idem[80];
    uint64_t i = b->next++;
    json_t *inq = cf_bench_inquiry(b->samples, b->nsamples, i, b->tag);
    free(c->body);
    c->body = inq != NULL ? json_dumps(inq, JSON_COMPACT) : NULL;
    json_decref(inq);
    curl_slist_free_all(c->headers);
    c->headers = NULL;
    (void)snprintf(idem, sizeof(idem), "Idempotency-Key: bench-%s-%" PRIu64, b->tag, i);
    /* "Expect:" (empty) stops libcurl from waiting for 100 Continue before a body. */
    const char *lines[] = {"Content-Type: application/json", idem, "Expect:"};
    for (size_t k = 0; k < sizeof(lines) / sizeof(lines[0]); k++) {
        struct curl_slist *h = curl_slist_append(c->headers, lines[k]);
        if (h == NULL)
            return false;
        c->headers = h;
    }
    if (c->body == NULL || curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body) != CURLE_OK ||
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(c->body)) != CURLE_OK ||
        curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->headers) != CURLE_OK)
        return false;
    c->measured = measured;
    c->start_us = cf_bench_now_us();
    return curl_multi_add_handle(b->multi, c->easy) == CURLM_OK;
}

static bool conn_init(struct bench *b, struct conn *c)
{
    c->easy = curl_easy_init();
    return c->easy != NULL && curl_easy_setopt(c->easy, CURLOPT_URL, b->url) == CURLE_OK &&
           curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, discard) == CURLE_OK &&
           curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, (long)REQUEST_TIMEOUT_MS) == CURLE_OK &&
           curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
           curl_easy_setopt(c->easy, CURLOPT_PRIVATE, (void *)c) == CURLE_OK;
}

/* Records a finished measured request. */
static void account(struct bench *b, struct conn *c, CURLcode result, int64_t now_us)
{
    long code = 0;
    b->done++;
    if (result != CURLE_OK) {
        b->transport_errors++;
        return;
    }
    (void)curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code);
    b->status[code >= 0 && code < 600 ? code : 0]++;
    if (b->nlat == b->caplat && b->caplat < MAX_LATENCIES) {
        size_t cap = b->caplat == 0 ? 65536 : b->caplat * 2;
        int64_t *grown = realloc(b->lat, cap * sizeof(*grown));
        if (grown != NULL) {
            b->lat = grown;
            b->caplat = cap;
        }
    }
    if (b->nlat < b->caplat)
        b->lat[b->nlat++] = now_us - c->start_us;
}

/* Runs requests until the phase is over: with measured, until the duration or the count is
 * reached; otherwise one request per connection (the warm-up). Every connection is refilled
 * as soon as its answer is in, so C requests are always in flight. False on a local failure
 * (libcurl or memory), not on failed requests: those are counted. */
static bool run_phase(struct bench *b, bool measured, int64_t *elapsed_us)
{
    int running = 0;
    int64_t t0 = cf_bench_now_us();
    int64_t end_us = measured && b->count == 0 ? t0 + b->duration_s * 1000000 : INT64_MAX;
    for (long long k = 0; k < b->connections; k++) {
        if (measured && b->count > 0 && b->started >= (uint64_t)b->count)
            break;
        if (!prepare(b, &b->conns[k], measured))
            return false;
        b->started += measured;
    }
    do {
        if (curl_multi_perform(b->multi, &running) != CURLM_OK)
            return false;
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(b->multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            int64_t now = cf_bench_now_us();
            char *priv = NULL;
            CURL *easy = m->easy_handle;
            CURLcode result = m->data.result;
            (void)curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
            struct conn *c = (struct conn *)priv;
            if (c->measured)
                account(b, c, result, now);
            else if (result != CURLE_OK)
                b->transport_errors++;
            (void)curl_multi_remove_handle(b->multi, easy);
            bool more =
                measured && now < end_us && (b->count == 0 || b->started < (uint64_t)b->count);
            if (more) {
                if (!prepare(b, c, true))
                    return false;
                b->started++;
                running++;
            }
        }
        if (running > 0 && curl_multi_poll(b->multi, NULL, 0, 100, NULL) != CURLM_OK)
            return false;
    } while (running > 0);
    *elapsed_us = cf_bench_now_us() - t0;
    return true;
}

/* Frees every connection's request and the multi handle, which closes the connections.
 * Safe to call twice. */
static void close_connections(struct bench *b)
{
    for (long long k = 0; b->conns != NULL && k < b->connections; k++) {
        if (b->conns[k].easy != NULL) {
            (void)curl_multi_remove_handle(b->multi, b->conns[k].easy);
            curl_easy_cleanup(b->conns[k].easy);
        }
        curl_slist_free_all(b->conns[k].headers);
        free(b->conns[k].body);
    }
    free(b->conns);
    b->conns = NULL;
    if (b->multi != NULL)
        (void)curl_multi_cleanup(b->multi);
    b->multi = NULL;
}

/* GETs /readyz until it answers 200 (false after timeout_ms, or at once if *pid exited: then
 * it is reaped and *pid set to -1). */
static bool wait_ready(const struct bench *b, pid_t *pid, int timeout_ms)
{
    char url[96];
    int64_t deadline = cf_clock_mono_ms() + timeout_ms;
    (void)snprintf(url, sizeof(url), "http://127.0.0.1:%lld/readyz", b->port);
    CURL *easy = curl_easy_init();
    if (easy == NULL)
        return false;
    bool ready = false;
    if (curl_easy_setopt(easy, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 2000L) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK)
        goto out;
    while (!ready && cf_clock_mono_ms() < deadline) {
        long code = 0;
        int ws = 0;
        if (waitpid(*pid, &ws, WNOHANG) == *pid) {
            *pid = -1;
            break;
        }
        ready = curl_easy_perform(easy) == CURLE_OK &&
                curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200;
        if (!ready)
            cf_clock_sleep_ms(200);
    }
out:
    curl_easy_cleanup(easy);
    return ready;
}

/* True if nothing listens on 127.0.0.1:port, so the intake started here is the one answering.
 * SO_REUSEADDR as a server sets it (libmicrohttpd does): connections of an earlier run left in
 * TIME_WAIT do not make the port busy. */
static bool port_free(long long port)
{
    struct sockaddr_in sa;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    (void)close(fd);
    return ok;
}

/* Environment of a service started here: a fresh instance id, the stack's location if the
 * bench's environment moves it, the --env extras, and the service's own keys. A fresh
 * secret makes every fold key new, so claims an older run left in Redis never fold these
 * inquiries. */
static size_t service_env(const struct bench *b, char (*env)[160], bool intake)
{
    static const char *const forwarded[] = {"CASEFLOW_REGISTRY_URL", "CASEFLOW_REDIS_HOST",
                                            "CASEFLOW_REDIS_PORT"};
    char secret[65];
    size_t n = 0;
    (void)snprintf(env[n++], 160, "CASEFLOW_INSTANCE_ID=bench-http-%s", b->run_id);
    (void)snprintf(env[n++], 160, "CASEFLOW_REDIS_KEY_PREFIX=%s", b->redis_prefix);
    if (intake) {
        if (!cf_bench_random_hex(secret, 32))
            return 0;
        (void)snprintf(env[n++], 160, "CASEFLOW_INTAKE_IDENTITY_SECRET=%s", secret);
        (void)snprintf(env[n++], 160, "CASEFLOW_INTAKE_HTTP_PORT=%lld", b->port);
    } else {
        /* Its ops endpoint is not needed, and another validation may hold the default port (a
         * build without the endpoint only warns about the unknown key). */
        (void)snprintf(env[n++], 160, "CASEFLOW_VALIDATION_HTTP_PORT=0");
    }
    for (size_t k = 0; k < sizeof(forwarded) / sizeof(forwarded[0]); k++) {
        const char *v = getenv(forwarded[k]);
        if (v != NULL)
            (void)snprintf(env[n++], 160, "%s=%s", forwarded[k], v);
    }
    for (size_t k = 0; k < b->n_extra; k++)
        (void)snprintf(env[n++], 160, "%s", b->extra_env[k]);
    return n;
}

/* Waits until group has consumed topic up to its end (committed transactions leave one marker
 * per partition behind the last record, hence the slack of one per partition). */
static bool drained(const struct bench *b, const char *group, const char *topic, int timeout_ms)
{
    char err[512];
    struct cf_topic_info ti;
    struct cf_kafka_group_progress p;
    if (cf_kafka_describe_topic(b->config, topic, 10000, &ti, err, sizeof(err)) != CF_OK)
        return false;
    int64_t deadline = cf_clock_mono_ms() + timeout_ms;
    while (cf_clock_mono_ms() < deadline) {
        if (cf_kafka_group_progress(b->config, group, topic, 10000, &p, err, sizeof(err)) ==
                CF_OK &&
            p.lag <= ti.partitions)
            return true;
        cf_clock_sleep_ms(500);
    }
    return false;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_http [--duration-s S | --count N] [--connections C] [--port P]\n"
            "                  [--env NAME=VALUE]... [--no-drain] [--keep-logs]\n"
            "  --duration-s   seconds of load (default 20)\n"
            "  --count        requests instead of a duration\n"
            "  --connections  keep-alive connections, each with one request in flight (64)\n"
            "  --port         intake's HTTP port on 127.0.0.1 (18180)\n"
            "  --env          an extra variable for the services, e.g. CASEFLOW_LOG_LEVEL=warn\n"
            "  --no-drain     stop intake right after the load; leave the backlog\n"
            "  --keep-logs    keep the services' logs even when the run succeeds\n");
}

static bool parse_args(struct bench *b, int argc, char **argv)
{
    b->duration_s = 20;
    b->connections = 64;
    b->port = 18180;
    b->drain = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(a, "--duration-s") == 0)
            ok = cf_bench_parse_ll(a, v, 1, 86400, &b->duration_s), i++;
        else if (strcmp(a, "--count") == 0)
            ok = cf_bench_parse_ll(a, v, 1, 9000000, &b->count), i++;
        else if (strcmp(a, "--connections") == 0)
            ok = cf_bench_parse_ll(a, v, 1, MAX_CONNECTIONS, &b->connections), i++;
        else if (strcmp(a, "--port") == 0)
            ok = cf_bench_parse_ll(a, v, 1, 65535, &b->port), i++;
        else if (strcmp(a, "--no-drain") == 0)
            b->drain = false;
        else if (strcmp(a, "--keep-logs") == 0)
            b->keep_logs = true;
        else if (strcmp(a, "--env") == 0) {
            if (v == NULL || strchr(v, '=') == NULL || strlen(v) >= 160 ||
                b->n_extra == MAX_EXTRA_ENV) {
                fprintf(stderr, "--env: NAME=VALUE, under 160 bytes, at most %d\n", MAX_EXTRA_ENV);
                ok = false;
            } else {
                b->extra_env[b->n_extra++] = v;
            }
            i++;
        } else {
            ok = false;
        }
        if (!ok) {
            usage();
            return false;
        }
    }
    if (b->count + b->connections > 9999999) {
        fprintf(stderr, "--count: at most 9,999,999 less the connections (unique phones)\n");
        return false;
    }
    return true;
}

static void print_config(const struct bench *b, int argc, char **argv)
{
    extern char **environ;
    printf("bench_http: POST /v1/inquiries to caseflow-intake over loopback\n");
    cf_bench_print_command(argc, argv);
    cf_bench_print_machine();
    printf("  service: %s, %s\n", INTAKE, b->url);
    printf("  load: %lld keep-alive connections, one request in flight on each, ", b->connections);
    if (b->count > 0)
        printf("%lld requests", b->count);
    else
        printf("%lld s", b->duration_s);
    printf("; bodies from %zu samples (%s), each a new inquiry (own Idempotency-Key, own "
           "contact)\n",
           b->nsamples, SAMPLES);
    printf("  service env: CASEFLOW_INSTANCE_ID=bench-http-%s, CASEFLOW_REDIS_KEY_PREFIX=%s, "
           "CASEFLOW_INTAKE_HTTP_PORT=%lld, a fresh CASEFLOW_INTAKE_IDENTITY_SECRET",
           b->run_id, b->redis_prefix, b->port);
    for (size_t k = 0; k < b->n_extra; k++)
        printf(", %s", b->extra_env[k]);
    printf("; everything else at the service's defaults\n");
    for (char **e = environ; *e != NULL; e++)
        if (strncmp(*e, "KAFKA_", 6) == 0)
            printf("  inherited: %.*s=%s\n", (int)(strcspn(*e, "=")), *e,
                   strstr(*e, "PASSWORD") != NULL || strstr(*e, "SECRET") != NULL
                       ? "(not shown)"
                       : strchr(*e, '=') + 1);
    printf("  log: %s\n", b->intake_log);
    (void)cf_bench_warn_others("caseflow-intake", NULL, 0);
    fflush(stdout);
}

static double cpu_s(const struct rusage *r)
{
    return (double)(r->ru_utime.tv_sec + r->ru_stime.tv_sec) +
           (double)(r->ru_utime.tv_usec + r->ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
    static char ienv[13][160], venv[13][160];
    struct bench b;
    int st_i = -1, st_v = 0; /* exit statuses (-1: not known) */
    int rc = 1;
    bool curl_ready = false;

    memset(&b, 0, sizeof(b));
    b.intake = b.validation = -1;
    if (!parse_args(&b, argc, argv))
        return 2;
    cf_test_run_id(b.run_id, sizeof(b.run_id));
    (void)snprintf(b.url, sizeof(b.url), "http://127.0.0.1:%lld/v1/inquiries", b.port);
    (void)snprintf(b.intake_log, sizeof(b.intake_log), "/tmp/bench-http-%s-intake.log", b.run_id);
    (void)snprintf(b.validation_log, sizeof(b.validation_log), "/tmp/bench-http-%s-validation.log",
                   b.run_id);
    cf_bench_redis_prefix(b.run_id, b.redis_prefix, sizeof(b.redis_prefix));
    cf_bench_ignore_sigpipe();
    if (!cf_bench_random_hex(b.tag, 4)) {
        fprintf(stderr, "bench_http: /dev/urandom unreadable\n");
        goto out;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        goto out;
    curl_ready = true;
    if ((b.nsamples = cf_bench_load_samples(SAMPLES, b.samples, MAX_SAMPLES)) == 0)
        goto out;
    if ((b.config = cf_test_kafka_config(table, sizeof(table) / sizeof(table[0]))) == NULL)
        goto out;
    print_config(&b, argc, argv);
    if (!port_free(b.port)) {
        fprintf(stderr, "bench_http: 127.0.0.1:%lld is in use; pick another with --port\n", b.port);
        goto out;
    }

    size_t ni = service_env(&b, ienv, true);
    if (ni == 0)
        goto out;
    int64_t t = cf_bench_now_us();
    b.intake = cf_test_spawn_service(INTAKE, ienv, ni, b.intake_log);
    if (!wait_ready(&b, &b.intake, READY_TIMEOUT_MS)) {
        fprintf(stderr, "bench_http: intake not ready after %d s (or it exited); see %s\n",
                READY_TIMEOUT_MS / 1000, b.intake_log);
        goto out;
    }
    printf("intake ready after %.1f s (pid %ld)\n", (double)(cf_bench_now_us() - t) / 1e6,
           (long)b.intake);

    if ((b.multi = curl_multi_init()) == NULL ||
        (b.conns = calloc((size_t)b.connections, sizeof(*b.conns))) == NULL)
        goto out;
    /* Exactly C connections, all kept open between requests. */
    if (curl_multi_setopt(b.multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)b.connections) !=
            CURLM_OK ||
        curl_multi_setopt(b.multi, CURLMOPT_MAXCONNECTS, (long)b.connections) != CURLM_OK)
        goto out;
    for (long long k = 0; k < b.connections; k++)
        if (!conn_init(&b, &b.conns[k]))
            goto out;

    int64_t warm_us = 0, elapsed_us = 0;
    if (!run_phase(&b, false, &warm_us))
        goto out;
    printf("warm-up: %lld requests (one per connection) in %.2f s, %" PRIu64 " transport errors\n",
           b.connections, (double)warm_us / 1e6, b.transport_errors);
    fflush(stdout);
    /* Intake's loop may still be working off what older runs left on its topics: measure only
     * once it is idle. */
    int64_t waited = 0;
    if (!cf_bench_wait_idle(&b.intake, 1, SETTLE_TIMEOUT_MS, &waited)) {
        fprintf(stderr,
                "bench_http: intake still busy %d s after the warm-up (a backlog on its "
                "topics?)\n",
                SETTLE_TIMEOUT_MS / 1000);
        goto out;
    }
    printf("settled: intake idle %.1f s after the warm-up\n", (double)waited / 1e3);
    fflush(stdout);
    b.transport_errors = 0;

    struct rusage ru0, ru1;
    (void)getrusage(RUSAGE_SELF, &ru0);
    int64_t cpu0 = cf_bench_cpu_ms(b.intake), busy0 = cf_bench_machine_busy_ms();
    if (!run_phase(&b, true, &elapsed_us))
        goto out;
    int64_t cpu1 = cf_bench_cpu_ms(b.intake), busy1 = cf_bench_machine_busy_ms();
    (void)getrusage(RUSAGE_SELF, &ru1);
    long hwm = cf_bench_vmhwm_kib(b.intake);

    double secs = (double)elapsed_us / 1e6;
    printf("measured: %" PRIu64 " requests in %.2f s: %.0f requests/s\n", b.done, secs,
           secs > 0 ? (double)b.done / secs : 0.0);
    printf("  status:");
    for (size_t code = 0; code < 600; code++)
        if (b.status[code] > 0)
            printf(" %zu x %" PRIu64 ";", code, b.status[code]);
    printf(" transport errors %" PRIu64 "\n", b.transport_errors);
    cf_bench_sort(b.lat, b.nlat);
    printf("  latency (request handed to libcurl -> answer complete): p50 %.1f ms, p99 %.1f ms, "
           "max %.1f ms\n",
           (double)cf_bench_rank(b.lat, b.nlat, 0.50) / 1e3,
           (double)cf_bench_rank(b.lat, b.nlat, 0.99) / 1e3,
           (double)cf_bench_rank(b.lat, b.nlat, 1.0) / 1e3);
    printf("  intake: peak RSS (VmHWM) %.1f MiB; CPU %.2f s over the load (%.0f%% of one core)\n",
           (double)hwm / 1024.0, (double)(cpu1 - cpu0) / 1e3,
           secs > 0 ? (double)(cpu1 - cpu0) / 10.0 / secs : 0.0);
    double cores = (double)sysconf(_SC_NPROCESSORS_ONLN), busy = (double)(busy1 - busy0) / 1e3;
    double bench_cpu = cpu_s(&ru1) - cpu_s(&ru0);
    printf("  bench: CPU %.2f s over the load; the machine %.2f s of %.2f s (%.0f%% busy), so "
           "%.2f s went to Kafka, the registry, Redis and anything else running\n",
           bench_cpu, busy, secs * cores, secs > 0 ? 100.0 * busy / (secs * cores) : 0.0,
           busy - (double)(cpu1 - cpu0) / 1e3 - bench_cpu);
    fflush(stdout);

    /* The load is over: close the connections. (Held open, they keep intake from exiting on
     * SIGTERM until libmicrohttpd's idle timeout, 30 s, ends them; see README.) */
    close_connections(&b);

    bool drained_ok = true;
    if (b.drain) {
        /* What the load left on the topics is consumed before leaving (see the top). */
        t = cf_bench_now_us();
        size_t nv = service_env(&b, venv, false);
        drained_ok = drained(&b, "caseflow-intake", T_SUBMITTED, DRAIN_TIMEOUT_MS);
        b.validation = cf_test_spawn_service(VALIDATION, venv, nv, b.validation_log);
        drained_ok &= drained(&b, "caseflow-validation", T_OPENED, DRAIN_TIMEOUT_MS);
        /* Both groups may read more topics than these two (intake follows the case topics):
         * done when both services have nothing left to do. */
        pid_t both[] = {b.intake, b.validation};
        int64_t idle_ms = 0;
        drained_ok &= cf_bench_wait_idle(both, 2, DRAIN_TIMEOUT_MS, &idle_ms);
        printf("drain: %s after %.1f s (not part of the figures)\n",
               drained_ok ? "the inquiries and their CaseOpened consumed"
                          : "gave up, a backlog is left",
               (double)(cf_bench_now_us() - t) / 1e6);
        fflush(stdout);
        st_v = cf_test_stop_child(&b.validation, STOP_TIMEOUT_MS);
    }
    t = cf_bench_now_us();
    st_i = cf_test_stop_child(&b.intake, STOP_TIMEOUT_MS);
    printf("  services stopped with status: intake %d (in %.1f s)%s", st_i,
           (double)(cf_bench_now_us() - t) / 1e6, b.drain ? ", validation " : "");
    if (b.drain)
        printf("%d", st_v);
    printf("\n");
    rc = b.status[202] == b.done && b.done > 0 && st_i == 0 && st_v == 0 && drained_ok ? 0 : 1;
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
        if (access(b.intake_log, F_OK) == 0)
            printf("log kept: %s\n", b.intake_log);
        if (access(b.validation_log, F_OK) == 0)
            printf("log kept: %s\n", b.validation_log);
    }
    close_connections(&b);
    free(b.lat);
    for (size_t k = 0; k < b.nsamples; k++)
        json_decref(b.samples[k]);
    cf_config_free(b.config);
    if (curl_ready)
        curl_global_cleanup();
    return rc;
}
