/* http.c — the operations endpoint: /healthz, /readyz, /metrics (see http.h). */
#include "http.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "kafka.h"
#include "log.h"
#include "redis.h"

/* Connections served at once, and how long an idle one is kept: probes and a scraper need few
 * and short ones, and the cap keeps a misbehaving client from taking the process's sockets. */
#define OPS_CONNECTION_LIMIT 16
#define OPS_CONNECTION_TIMEOUT_S 10
/* A registry answer is only looked at for its status; its body is read and dropped, up to
 * this many bytes (a subject's latest version is far smaller). */
#define REGISTRY_MAX_BODY (1024 * 1024)
/* Longest registry URL built (base URL up to 1024 bytes, as the config allows, plus the path). */
#define REGISTRY_URL_MAX 2048

static const char allow_methods[] = "GET, HEAD";
static const char json_type[] = "application/json";

struct cf_http_ops {
    struct MHD_Daemon *daemon;
    struct cf_metrics *metrics; /* borrowed; NULL: /metrics is 404 */
    bool have_readiness;        /* false: /readyz answers like /healthz */
    const struct cf_kafka_loop *loop;
    bool check_redis, check_registry;

    /* The checker's settings, copied at start: the config is not read after it. */
    char redis_host[256];
    char redis_username[129];
    char redis_password[513];
    int redis_port, redis_connect_ms, redis_command_ms;
    char *registry_url; /* .../subjects/<topic>-value/versions/latest */
    long registry_timeout_ms;

    /* The checker thread's own clients: no other thread touches them once it runs. */
    struct cf_redis *redis;
    CURL *curl;
    bool redis_failing, registry_failing; /* last logged state, the checker's */

    /* Shared between the server thread and the checker, under lock. cond (CLOCK_MONOTONIC)
     * wakes the checker when a check is wanted and the server thread when one is done. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool lock_made, cond_made;
    pthread_t checker;
    bool checker_running;
    bool stopping;
    atomic_bool stop_now; /* read by curl's progress callback, which cannot take the lock */
    bool wanted, checking;
    unsigned long generation; /* checks completed */
    int64_t checked_ms;       /* monotonic end of the last check; -1 before the first */
    bool redis_ok, registry_ok;
};

/* ---- Bind addresses ------------------------------------------------------------------------ */

cf_status cf_http_addr_parse(const char *key, const char *address, long long port,
                             struct cf_http_addr *out, char *errbuf, size_t errlen)
{
    const char *what = key != NULL ? key : "bind address";
    if (address == NULL || out == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "%s: address or out is NULL", what);
    memset(out, 0, sizeof(*out));
    if (port < 1 || port > 65535)
        return cf_fail(errbuf, errlen, CF_ECONFIG, "%s: port %lld is not in 1..65535", what, port);
    struct sockaddr_in *sa4 = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *sa6 = (struct sockaddr_in6 *)&out->ss;
    if (inet_pton(AF_INET, address, &sa4->sin_addr) == 1) {
        sa4->sin_family = AF_INET;
        sa4->sin_port = htons((uint16_t)port);
        out->len = sizeof(*sa4);
        return CF_OK;
    }
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET6, address, &sa6->sin6_addr) == 1) {
        sa6->sin6_family = AF_INET6;
        sa6->sin6_port = htons((uint16_t)port);
        out->len = sizeof(*sa6);
        out->ipv6 = true;
        return CF_OK;
    }
    memset(out, 0, sizeof(*out));
    return cf_fail(errbuf, errlen, CF_ECONFIG, "%s: not an IPv4 or IPv6 address", what);
}

/* ---- The readiness checker (its own thread) ------------------------------------------------ */

static int min_int(long long a, int b)
{
    return a < b ? (int)a : b;
}

/* PING on the checker's own connection, made anew after any failure so that a check is one
 * connect and one command, never the module's retries with backoff. */
static bool check_redis(struct cf_http_ops *ops, char *err, size_t errlen)
{
    cf_status st = CF_OK;
    if (ops->redis == NULL) {
        st = cf_redis_new_auth(ops->redis_host, ops->redis_port, ops->redis_username,
                               ops->redis_password, ops->redis_connect_ms,
                               ops->redis_command_ms, &ops->redis, err, errlen);
        if (st == CF_OK)
            cf_redis_set_retry_budget(ops->redis, 0);
    }
    if (st == CF_OK)
        st = cf_redis_ping(ops->redis, err, errlen);
    if (st != CF_OK) {
        cf_redis_free(ops->redis);
        ops->redis = NULL;
    }
    return st == CF_OK;
}

static size_t drop_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    (void)data;
    size_t *seen = ctx;
    size_t n = size * nmemb;
    if (*seen + n > REGISTRY_MAX_BODY)
        return 0; /* makes curl fail the transfer */
    *seen += n;
    return n;
}

/* Lets cf_http_ops_stop cut a registry request short instead of waiting for its timeout. */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    struct cf_http_ops *ops = ctx;
    return atomic_load(&ops->stop_now) ? 1 : 0;
}

/* GET <registry>/subjects/<topic>-value/versions/latest answers 200. */
static bool check_registry(struct cf_http_ops *ops, char *err, size_t errlen)
{
    size_t seen = 0;
    long status = 0;
    CURLcode rc;
    curl_easy_reset(ops->curl);
    if ((rc = curl_easy_setopt(ops->curl, CURLOPT_URL, ops->registry_url)) != CURLE_OK ||
        (rc = curl_easy_setopt(ops->curl, CURLOPT_NOSIGNAL, 1L)) != CURLE_OK ||
        (rc = curl_easy_setopt(ops->curl, CURLOPT_TIMEOUT_MS, ops->registry_timeout_ms)) !=
            CURLE_OK ||
        (rc = curl_easy_setopt(ops->curl, CURLOPT_CONNECTTIMEOUT_MS, ops->registry_timeout_ms)) !=
            CURLE_OK ||
        (rc = curl_easy_setopt(ops->curl, CURLOPT_WRITEFUNCTION, drop_body)) != CURLE_OK ||
        (rc = curl_easy_setopt(ops->curl, CURLOPT_WRITEDATA, &seen)) != CURLE_OK ||
        (rc = curl_easy_setopt(ops->curl, CURLOPT_XFERINFOFUNCTION, on_progress)) != CURLE_OK ||
        (rc = curl_easy_setopt(ops->curl, CURLOPT_XFERINFODATA, ops)) != CURLE_OK ||
        (rc = curl_easy_setopt(ops->curl, CURLOPT_NOPROGRESS, 0L)) != CURLE_OK) {
        (void)cf_fail(err, errlen, CF_EINVAL, "curl: %s", curl_easy_strerror(rc));
        return false;
    }
    rc = curl_easy_perform(ops->curl);
    if (rc != CURLE_OK) {
        (void)cf_fail(err, errlen, CF_EIO, "registry: %s", curl_easy_strerror(rc));
        return false;
    }
    (void)curl_easy_getinfo(ops->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        (void)cf_fail(err, errlen, CF_EIO, "registry answered HTTP %ld for the subject", status);
        return false;
    }
    return true;
}

/* Logs a component's change of state (not every failed probe: a down server would flood the
 * log). The reason is our errbuf or the library's message, never a value. */
static void log_change(const char *component, bool ok, bool *failing, const char *err)
{
    if (!ok && !*failing)
        CF_LOG(CF_LOG_WARN, "ops_not_ready", CF_LOG_ID("component", component),
               CF_LOG_ERR("reason", err));
    else if (ok && *failing)
        CF_LOG(CF_LOG_INFO, "ops_ready_again", CF_LOG_ID("component", component));
    *failing = !ok;
}

static void *checker_main(void *arg)
{
    struct cf_http_ops *ops = arg;
    char err[512];
    (void)pthread_mutex_lock(&ops->lock);
    for (;;) {
        while (!ops->stopping && !ops->wanted)
            (void)pthread_cond_wait(&ops->cond, &ops->lock);
        if (ops->stopping)
            break;
        ops->wanted = false;
        ops->checking = true;
        (void)pthread_mutex_unlock(&ops->lock);

        bool redis_ok = true, registry_ok = true;
        if (ops->check_redis) {
            err[0] = '\0';
            redis_ok = check_redis(ops, err, sizeof(err));
            log_change("redis", redis_ok, &ops->redis_failing, err);
        }
        if (ops->check_registry) {
            err[0] = '\0';
            registry_ok = check_registry(ops, err, sizeof(err));
            log_change("registry", registry_ok, &ops->registry_failing, err);
        }

        (void)pthread_mutex_lock(&ops->lock);
        ops->redis_ok = redis_ok;
        ops->registry_ok = registry_ok;
        ops->checked_ms = cf_clock_mono_ms();
        ops->generation++;
        ops->checking = false;
        (void)pthread_cond_broadcast(&ops->cond);
    }
    (void)pthread_mutex_unlock(&ops->lock);
    return NULL;
}

/* The checker's latest results, asking for a new check when they are older than
 * CF_HTTP_READY_CACHE_MS and waiting for it up to CF_HTTP_READY_WAIT_MS. Before the first check
 * ends, both count as not ready: nothing is known yet. */
static void checked_results(struct cf_http_ops *ops, bool *redis_ok, bool *registry_ok)
{
    (void)pthread_mutex_lock(&ops->lock);
    int64_t now = cf_clock_mono_ms();
    if (ops->checked_ms < 0 || now - ops->checked_ms >= CF_HTTP_READY_CACHE_MS) {
        if (!ops->checking && !ops->wanted) {
            ops->wanted = true;
            (void)pthread_cond_broadcast(&ops->cond);
        }
        unsigned long generation = ops->generation;
        struct timespec deadline;
        (void)clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_nsec += (long)CF_HTTP_READY_WAIT_MS * 1000000L;
        deadline.tv_sec += deadline.tv_nsec / 1000000000L;
        deadline.tv_nsec %= 1000000000L;
        while (ops->generation == generation && !ops->stopping)
            if (pthread_cond_timedwait(&ops->cond, &ops->lock, &deadline) == ETIMEDOUT)
                break;
    }
    bool known = ops->checked_ms >= 0;
    *redis_ok = known && ops->redis_ok;
    *registry_ok = known && ops->registry_ok;
    (void)pthread_mutex_unlock(&ops->lock);
}

/* ---- Answers ------------------------------------------------------------------------------- */

/* The /readyz answer: status and a JSON body naming the failing components. */
static unsigned ready_answer(struct cf_http_ops *ops, char *body, size_t len)
{
    const char *failing[4];
    size_t n = 0;
    if (ops->have_readiness) {
        struct cf_kafka_loop_stats stats;
        cf_kafka_loop_stats(ops->loop, &stats); /* zeros for a NULL loop */
        if (!stats.ready)
            failing[n++] = "kafka";
        if (stats.assigned <= 0)
            failing[n++] = "consumer";
        if (ops->check_redis || ops->check_registry) {
            bool redis_ok = true, registry_ok = true;
            checked_results(ops, &redis_ok, &registry_ok);
            if (ops->check_redis && !redis_ok)
                failing[n++] = "redis";
            if (ops->check_registry && !registry_ok)
                failing[n++] = "registry";
        }
    }
    if (n == 0) {
        (void)snprintf(body, len, "{\"status\":\"ready\"}");
        return MHD_HTTP_OK;
    }
    /* Component names are literals above: no escaping needed, and the body always fits. */
    size_t at = (size_t)snprintf(body, len,
                                 "{\"status\":\"not_ready\",\"component\":\"%s\","
                                 "\"failing\":[",
                                 failing[0]);
    for (size_t i = 0; i < n && at < len; i++)
        at += (size_t)snprintf(body + at, len - at, "%s\"%s\"", i > 0 ? "," : "", failing[i]);
    if (at < len)
        (void)snprintf(body + at, len - at, "]}");
    return MHD_HTTP_SERVICE_UNAVAILABLE;
}

/* Queues one answer. body is copied unless must_free, in which case MHD takes it (and frees it
 * with free() even when queueing fails). */
static enum MHD_Result send_answer(struct MHD_Connection *conn, unsigned status,
                                   const char *content_type, char *body, size_t len, bool must_free,
                                   bool allow)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    if (resp == NULL) {
        if (must_free)
            free(body);
        return MHD_NO;
    }
    enum MHD_Result ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (ok == MHD_YES)
        ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (ok == MHD_YES && allow)
        ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow_methods);
    if (ok == MHD_YES)
        ok = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, const char *body,
                                 bool allow)
{
    return send_answer(conn, status, json_type, (char *)body, strlen(body), false, allow);
}

static enum MHD_Result send_metrics(struct cf_http_ops *ops, struct MHD_Connection *conn)
{
    char *text = NULL;
    size_t len = 0;
    cf_status st = cf_metrics_render(ops->metrics, &text, &len);
    if (st != CF_OK) {
        CF_LOG(CF_LOG_WARN, "ops_metrics_failed", CF_LOG_ERR("reason", cf_strerror(st)));
        return send_json(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "{\"error\":\"internal\"}", false);
    }
    return send_answer(conn, MHD_HTTP_OK, CF_METRICS_CONTENT_TYPE, text, len, true, false);
}

/* Every request is answered from its first call, headers alone: these routes take no body,
 * and a response queued before a body is read makes MHD drop the body and close. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    struct cf_http_ops *ops = cls;
    bool healthz = strcmp(url, "/healthz") == 0;
    bool readyz = strcmp(url, "/readyz") == 0;
    bool metrics = strcmp(url, "/metrics") == 0 && ops->metrics != NULL;
    if (!healthz && !readyz && !metrics)
        return send_json(conn, MHD_HTTP_NOT_FOUND, "{\"error\":\"not_found\"}", false);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return send_json(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "{\"error\":\"method_not_allowed\"}",
                         true);
    if (healthz)
        return send_json(conn, MHD_HTTP_OK, "{\"status\":\"ok\"}", false);
    if (metrics)
        return send_metrics(ops, conn);
    char body[160];
    unsigned status = ready_answer(ops, body, sizeof(body));
    return send_json(conn, status, body, false);
}

/* ---- Start and stop ------------------------------------------------------------------------ */

/* Copies what the checker needs from the config and makes its curl handle. */
static cf_status prepare_checker(struct cf_http_ops *ops, const struct cf_config *config,
                                 const struct cf_http_readiness *readiness, char *errbuf,
                                 size_t errlen)
{
    if (readiness->redis) {
        ops->check_redis = true;
        (void)snprintf(ops->redis_host, sizeof(ops->redis_host), "%s",
                       cf_config_string(config, "CASEFLOW_REDIS_HOST"));
        ops->redis_port = (int)cf_config_int(config, "CASEFLOW_REDIS_PORT");
        (void)snprintf(ops->redis_username, sizeof(ops->redis_username), "%s",
                       cf_config_string(config, "CASEFLOW_REDIS_USERNAME"));
        (void)snprintf(ops->redis_password, sizeof(ops->redis_password), "%s",
                       cf_config_string(config, "CASEFLOW_REDIS_PASSWORD"));
        ops->redis_connect_ms = min_int(cf_config_int(config, "CASEFLOW_REDIS_CONNECT_TIMEOUT_MS"),
                                        CF_HTTP_READY_TIMEOUT_MS);
        ops->redis_command_ms = min_int(cf_config_int(config, "CASEFLOW_REDIS_COMMAND_TIMEOUT_MS"),
                                        CF_HTTP_READY_TIMEOUT_MS);
    }
    if (readiness->registry_topic != NULL) {
        char subject[512];
        ops->check_registry = true;
        ops->registry_timeout_ms = min_int(cf_config_int(config, "CASEFLOW_REGISTRY_TIMEOUT_MS"),
                                           CF_HTTP_READY_TIMEOUT_MS);
        int n = snprintf(subject, sizeof(subject), "%s-value", readiness->registry_topic);
        if (n < 0 || (size_t)n >= sizeof(subject))
            return cf_fail(errbuf, errlen, CF_EINVAL, "http: registry topic name too long");
        if ((ops->curl = curl_easy_init()) == NULL)
            return cf_fail(errbuf, errlen, CF_ENOMEM, "http: cannot make a curl handle");
        char *escaped = curl_easy_escape(ops->curl, subject, 0);
        const char *base = cf_config_string(config, "CASEFLOW_REGISTRY_URL");
        size_t base_len = strlen(base);
        while (base_len > 0 && base[base_len - 1] == '/')
            base_len--;
        ops->registry_url = malloc(REGISTRY_URL_MAX);
        if (escaped == NULL || ops->registry_url == NULL) {
            curl_free(escaped);
            return cf_fail(errbuf, errlen, CF_ENOMEM, "http: out of memory");
        }
        n = snprintf(ops->registry_url, REGISTRY_URL_MAX, "%.*s/subjects/%s/versions/latest",
                     (int)base_len, base, escaped);
        curl_free(escaped);
        if (n < 0 || n >= REGISTRY_URL_MAX)
            return cf_fail(errbuf, errlen, CF_EINVAL, "http: CASEFLOW_REGISTRY_URL too long");
    }
    return CF_OK;
}

/* Makes the lock and the condition (on CLOCK_MONOTONIC, as the waits' deadlines are) and starts
 * the checker, which runs its first check at once. */
static cf_status start_checker(struct cf_http_ops *ops, char *errbuf, size_t errlen)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "http: cannot make a condition");
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&ops->cond, &attr);
    (void)pthread_condattr_destroy(&attr);
    if (rc != 0)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "http: cannot make a condition");
    ops->cond_made = true;
    if (!(ops->check_redis || ops->check_registry))
        return CF_OK;
    ops->wanted = true;
    rc = pthread_create(&ops->checker, NULL, checker_main, ops);
    if (rc != 0)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "http: cannot start the readiness checker: %s",
                       strerror(rc));
    ops->checker_running = true;
    return CF_OK;
}

cf_status cf_http_ops_start(const struct cf_config *config, const char *port_key,
                            const char *bind_key, struct cf_metrics *metrics,
                            const struct cf_http_readiness *readiness, struct cf_http_ops **out,
                            char *errbuf, size_t errlen)
{
    struct cf_http_ops *ops = NULL;
    struct cf_http_addr addr;
    cf_status st;
    if (out == NULL || config == NULL || port_key == NULL || bind_key == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "http: config, keys or out is NULL");
    *out = NULL;
    long long port = cf_config_int(config, port_key);
    if (port == 0) {
        CF_LOG(CF_LOG_INFO, "ops_http_off", CF_LOG_ID("key", port_key));
        return CF_OK;
    }
    const char *bind = cf_config_string(config, bind_key);
    st = cf_http_addr_parse(bind_key, bind, port, &addr, errbuf, errlen);
    if (st != CF_OK)
        return st;

    ops = calloc(1, sizeof(*ops));
    if (ops == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "http: out of memory");
    ops->metrics = metrics;
    ops->checked_ms = -1;
    atomic_init(&ops->stop_now, false);
    if (pthread_mutex_init(&ops->lock, NULL) != 0) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "http: cannot make a lock");
        goto out;
    }
    ops->lock_made = true;
    if (readiness != NULL) {
        ops->have_readiness = true;
        ops->loop = readiness->loop;
        st = prepare_checker(ops, config, readiness, errbuf, errlen);
        if (st != CF_OK)
            goto out;
    }
    st = start_checker(ops, errbuf, errlen);
    if (st != CF_OK)
        goto out;

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    if (addr.ipv6)
        flags |= MHD_USE_IPv6;
    ops->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, ops, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr.ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)OPS_CONNECTION_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)OPS_CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    if (ops->daemon == NULL) {
        st = cf_fail(errbuf, errlen, CF_EIO, "http: cannot listen on %s port %lld: %s", bind_key,
                     port, strerror(errno));
        goto out;
    }
    CF_LOG(CF_LOG_INFO, "ops_http_listening", CF_LOG_ID("address", bind), CF_LOG_INT("port", port));
    *out = ops;
    ops = NULL;
out:
    cf_http_ops_stop(ops);
    return st;
}

void cf_http_ops_stop(struct cf_http_ops *ops)
{
    if (ops == NULL)
        return;
    /* The server first: once it has stopped, no request waits on cond any more. */
    if (ops->daemon != NULL)
        MHD_stop_daemon(ops->daemon);
    if (ops->checker_running) {
        (void)pthread_mutex_lock(&ops->lock);
        ops->stopping = true;
        atomic_store(&ops->stop_now, true);
        (void)pthread_cond_broadcast(&ops->cond);
        (void)pthread_mutex_unlock(&ops->lock);
        (void)pthread_join(ops->checker, NULL);
    }
    cf_redis_free(ops->redis);
    if (ops->curl != NULL)
        curl_easy_cleanup(ops->curl);
    free(ops->registry_url);
    if (ops->cond_made)
        (void)pthread_cond_destroy(&ops->cond);
    if (ops->lock_made)
        (void)pthread_mutex_destroy(&ops->lock);
    free(ops);
}
