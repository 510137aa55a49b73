/* api.c — intake's HTTP endpoint (see api.h and README.md "HTTP endpoint").
 *
 * Threads and ownership. One thread of ours, the server thread (serve()), runs everything a
 * request touches: libmicrohttpd in external-polling mode (MHD_run), the HTTP path's producer
 * (enqueueing and serving its delivery reports with cf_kafka_producer_poll), the registry
 * client and serde, the Redis connection and pipeline, every struct request and struct post.
 * avro-c and hiredis objects are not thread-safe, and with one owner no lock is needed.
 * intake_http_start builds them on the caller's thread before the server thread exists, and
 * intake_http_stop frees them after joining it. Between the two, only three things cross
 * threads: the stop flag (atomic, set by intake_http_stop), the wake pipe, which
 * intake_http_stop and librdkafka's own threads (a delivery report is waiting) write to, and
 * the metrics registry, which the loop thread updates and GET /metrics renders (metrics.h:
 * atomic values, a mutex of its own for rendering).
 *
 * A POST is never waited for on the server thread: once its body is checked and encoded, its
 * connection is suspended and a struct post carries it through three steps, each done for
 * every POST that reached it in one turn of the loop, in one Redis round trip or one
 * librdkafka produce request for all of them:
 *   1. claims: the idempotency claims, one Lua script call each, in one pipeline;
 *   2. in flight: enqueued with cf_kafka_produce_async (librdkafka batches them), waiting for
 *      the delivery report or the produce timeout;
 *   3. delivered: the "received" markers, one pipeline, then 202.
 * Each step that ends a POST stores its answer in the request and resumes the connection;
 * libmicrohttpd then calls on_request again, which sends it. */
#include "api.h"
#include "clock.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "avro_convert.h"
#include "avro_serde.h"
#include "cloudevents.h"
#include "intake.h"
#include "kafka.h"
#include "log.h"
#include "normalize.h"
#include "redis.h"
#include "registry.h"

#define IDEM_PREFIX "intake:http:idem:"
#define INQUIRY_PREFIX "intake:http:inquiry:"
#define INQUIRIES_PATH "/v1/inquiries"
/* Most field errors one 400 lists (normalisation reports at most this many). */
#define MAX_FIELD_ERRORS 32
/* How long the readiness checks wait for the broker. */
#define READY_TIMEOUT_MS 5000
/* Readiness is checked again at most this often while it fails. */
#define READY_RECHECK_MS 2000
/* A chunked body over the limit is read and dropped (a response cannot be queued while upload
 * data is being handed over); past this multiple of the limit the connection is closed. */
#define DISCARD_FACTOR 4
/* Longest sleep of the server thread (house rule: poll timeouts ≤ 500 ms), so a lost wake-up
 * costs at most this much. */
#define SERVE_POLL_MAX_MS 500

/* The idempotency claim in one round trip: SET NX the claim; if another request holds it,
 * return its inquiry id and whether that inquiry was delivered (its "received" marker exists).
 * KEYS[1] the claim, KEYS[2] the marker of this request's id ARGV[1]; ARGV[2] the claim's TTL.
 * The claimed inquiry's marker key is derived from KEYS[2] (its prefix + the claimed id), so
 * the key prefix of the Redis module applies to it too; it is only read (a key outside KEYS is
 * fine on the single Redis caseflow uses). Running it twice returns, the second time, this
 * request's own claim, which the caller treats like a fresh one: so it is safe to resend.
 * Returns {1} when claimed, {0, claimed id, 0|1} when held. */
static const char claim_lua[] =
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return {1} end\n"
    "local claimed = redis.call('GET', KEYS[1])\n"
    "local marker = string.sub(KEYS[2], 1, #KEYS[2] - #ARGV[1]) .. claimed\n"
    "return {0, claimed, redis.call('EXISTS', marker)}\n";

struct post;

/* A list of posts in arrival order (so the in-flight list is ordered by deadline). */
struct post_list {
    struct post *head, *tail;
    size_t n;
};

struct intake_http {
    const struct cf_config *config;              /* borrowed */
    const struct intake_journey_scripts *stages; /* borrowed; read-only scripts */
    struct cf_metrics *metrics; /* borrowed; rendering is safe beside the loop's updates */
    struct MHD_Daemon *daemon;
    int epoll_fd; /* libmicrohttpd's, polled by the server thread */
    pthread_t thread;
    bool thread_started;
    atomic_bool stop; /* set by intake_http_stop, read by the server thread */
    /* wake[1]: written (one byte, non-blocking) by intake_http_stop and by librdkafka when a
     * delivery report waits; wake[0]: polled and read dry by the server thread. */
    int wake[2];
    /* Owned by the server thread (see the top of this file). */
    struct cf_kafka_producer *producer;
    struct cf_registry *registry;
    struct cf_serde *serde;
    struct cf_redis *redis; /* NULL until Redis answers */
    struct cf_redis_script *claim;
    struct cf_redis_pipeline *pipe; /* NULL until Redis answers */
    size_t max_body;
    int produce_timeout_ms;
    bool ready;
    int64_t ready_checked_ms;
    bool stopping;            /* the server thread has seen the stop flag */
    size_t suspended;         /* connections suspended by a post */
    bool resumed;             /* a connection was resumed since the last MHD_run */
    struct post_list claims;  /* step 1: waiting for the idempotency claim */
    struct post_list flying;  /* step 2: produced, waiting for the delivery report */
    struct post_list done;    /* step 3: delivery reported, waiting for the marker and answer */
    struct post_list orphans; /* answered 503 on timeout, waiting for the late report */
};

/* An answer: status, body (malloc'd; JSON unless content_type says otherwise), and the extra
 * headers it needs. */
struct answer {
    unsigned status;
    char *body;
    const char *content_type; /* static; NULL: application/json */
    const char *allow; /* static, or NULL */
    bool retry_after;
};

/* One request's state (MHD's con_cls); freed when the request completes. */
struct request {
    char *body;
    size_t len, cap;
    bool too_big;
    size_t discarded;
    struct post *post; /* while the connection is suspended */
    bool answered;     /* answer is ready: sent at the next call after the resume */
    struct answer answer;
};

enum post_stage { POST_CLAIM, POST_FLYING, POST_DONE, POST_ORPHAN };

/* A POST past its checks, from its suspension until its answer and its delivery report, which
 * may come after a 503 (timeout): then req and conn are NULL and the report only frees it. */
struct post {
    struct intake_http *h;
    struct post *prev, *next;
    enum post_stage stage;
    struct MHD_Connection *conn; /* suspended; NULL once answered */
    struct request *req;         /* NULL once answered */
    json_t *inquiry;             /* until produced: re-encoded if the claim names another id */
    unsigned char *value;        /* the encoded record, until produced */
    size_t value_len;
    struct cf_cloudevent ce;
    char id[CF_UUID_LEN + 1];
    bool has_key;                               /* an idempotency claim is to be made */
    char idem_key[INTAKE_HTTP_REDIS_KEY_LEN];   /* its Redis key */
    char marker_key[INTAKE_HTTP_REDIS_KEY_LEN]; /* intake:http:inquiry:<id> */
    int64_t deadline_ms;                        /* of the delivery report */
    cf_status delivery;                         /* the report's status */
    size_t pipe_index;                          /* its command in the pipeline being run */
};

/* ---- Pure helpers ------------------------------------------------------------------------ */

static const char *skip_blanks(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

bool intake_http_content_type_ok(const char *value)
{
    static const char type[] = "application/json";
    if (value == NULL)
        return false;
    const char *p = skip_blanks(value);
    if (strncasecmp(p, type, sizeof(type) - 1) != 0)
        return false;
    p = skip_blanks(p + sizeof(type) - 1);
    while (*p == ';') {
        p = skip_blanks(p + 1);
        const char *name = p;
        while (*p != '\0' && *p != '=' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t name_len = (size_t)(p - name);
        p = skip_blanks(p);
        if (*p != '=')
            return false; /* a parameter needs a value */
        p = skip_blanks(p + 1);
        const char *val = p;
        size_t val_len;
        if (*p == '"') {
            val = ++p;
            while (*p != '\0' && *p != '"')
                p++;
            if (*p != '"')
                return false;
            val_len = (size_t)(p - val);
            p++;
        } else {
            while (*p != '\0' && *p != ';' && *p != ' ' && *p != '\t')
                p++;
            val_len = (size_t)(p - val);
        }
        if (name_len == 0 || val_len == 0)
            return false;
        if (name_len == 7 && strncasecmp(name, "charset", 7) == 0 &&
            !(val_len == 5 && strncasecmp(val, "utf-8", 5) == 0))
            return false;
        p = skip_blanks(p);
    }
    return *p == '\0';
}

enum intake_http_route intake_http_route_of(const char *url, char id[CF_UUID_LEN + 1])
{
    id[0] = '\0';
    if (url == NULL)
        return INTAKE_HTTP_ROUTE_NONE;
    if (strcmp(url, "/healthz") == 0)
        return INTAKE_HTTP_ROUTE_HEALTHZ;
    if (strcmp(url, "/readyz") == 0)
        return INTAKE_HTTP_ROUTE_READYZ;
    if (strcmp(url, "/metrics") == 0)
        return INTAKE_HTTP_ROUTE_METRICS;
    if (strcmp(url, INQUIRIES_PATH) == 0)
        return INTAKE_HTTP_ROUTE_INQUIRIES;
    size_t n = sizeof(INQUIRIES_PATH) - 1;
    if (strncmp(url, INQUIRIES_PATH "/", n + 1) != 0 || url[n + 1] == '\0')
        return INTAKE_HTTP_ROUTE_NONE;
    const char *rest = url + n + 1;
    if (strchr(rest, '/') != NULL)
        return INTAKE_HTTP_ROUTE_NONE;
    if (strlen(rest) == CF_UUID_LEN && cf_uuid_valid(rest)) {
        for (size_t i = 0; i <= CF_UUID_LEN; i++)
            id[i] = (char)tolower((unsigned char)rest[i]);
    }
    return INTAKE_HTTP_ROUTE_INQUIRY;
}

const char *intake_http_allowed(enum intake_http_route route)
{
    return route == INTAKE_HTTP_ROUTE_INQUIRIES ? "POST" : "GET, HEAD";
}

static const char *or_empty(const char *s)
{
    return s != NULL ? s : "";
}

char *intake_http_errors_json(const struct intake_http_error *errors, size_t n)
{
    json_t *list = json_array();
    json_t *root = json_object();
    char *out = NULL;
    if (list == NULL || root == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_object();
        /* json_string refuses text that is not UTF-8; "" keeps the entry's shape. */
        json_t *path = json_string(or_empty(errors[i].path));
        json_t *code = json_string(or_empty(errors[i].code));
        json_t *msg = json_string(or_empty(errors[i].message));
        if (e == NULL || json_object_set_new(e, "path", path ? path : json_string("")) != 0 ||
            json_object_set_new(e, "code", code ? code : json_string("")) != 0 ||
            json_object_set_new(e, "message", msg ? msg : json_string("")) != 0 ||
            json_array_append_new(list, e) != 0)
            goto out;
    }
    if (json_object_set(root, "errors", list) != 0)
        goto out;
    out = json_dumps(root, JSON_COMPACT);
out:
    json_decref(list);
    json_decref(root);
    return out;
}

static void copy_cut(char *dst, size_t dstlen, const char *src, size_t srclen)
{
    if (dstlen == 0)
        return;
    size_t n = srclen < dstlen - 1 ? srclen : dstlen - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void intake_http_schema_error(const char *errbuf, char *path, size_t pathlen, char *message,
                              size_t msglen)
{
    static const char inq[] = "$.inquiry";
    const char *text = or_empty(errbuf);
    const char *sep = text[0] == '$' ? strstr(text, ": ") : NULL;
    if (sep == NULL) {
        copy_cut(path, pathlen, "$", 1);
        copy_cut(message, msglen, text, strlen(text));
        return;
    }
    size_t plen = (size_t)(sep - text);
    size_t ilen = sizeof(inq) - 1;
    if (plen >= ilen && strncmp(text, inq, ilen) == 0 &&
        (plen == ilen || text[ilen] == '.' || text[ilen] == '[')) {
        /* "$.inquiry.patient" -> "$" + ".patient" */
        if (pathlen > 1) {
            path[0] = '$';
            copy_cut(path + 1, pathlen - 1, text + ilen, plen - ilen);
        } else {
            copy_cut(path, pathlen, "", 0);
        }
    } else {
        copy_cut(path, pathlen, "$", 1);
    }
    copy_cut(message, msglen, sep + 2, strlen(sep + 2));
}

bool intake_http_idem_key_ok(const char *key)
{
    if (key == NULL || key[0] == '\0')
        return false;
    size_t n = 0;
    for (const char *p = key; *p != '\0'; p++, n++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e || n >= INTAKE_HTTP_IDEM_KEY_MAX)
            return false;
    return true;
}

cf_status intake_http_idem_redis_key(const char *key, char out[INTAKE_HTTP_REDIS_KEY_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (key == NULL)
        return CF_EINVAL;
    if (EVP_Digest(key, strlen(key), md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
        return CF_ENOMEM;
    size_t pos = (size_t)snprintf(out, INTAKE_HTTP_REDIS_KEY_LEN, "%s", IDEM_PREFIX);
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < md_len; i++) {
        out[pos++] = hex[md[i] >> 4];
        out[pos++] = hex[md[i] & 0xf];
    }
    out[pos] = '\0';
    return CF_OK;
}

/* ---- Answers ----------------------------------------------------------------------------- */

static void answer_error(struct answer *a, unsigned status, const char *path, const char *code,
                         const char *message)
{
    struct intake_http_error e = {path, code, message};
    a->status = status;
    a->body = intake_http_errors_json(&e, 1);
}

static void answer_unavailable(struct answer *a, const char *what)
{
    answer_error(a, MHD_HTTP_SERVICE_UNAVAILABLE, "$", "UNAVAILABLE", what);
    a->retry_after = true;
}

/* An object answer built with json_pack's format; NULL body on failure (sent as 500). */
static void answer_json(struct answer *a, unsigned status, json_t *obj)
{
    a->status = status;
    a->body = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
}

/* GET /metrics: the registry in Prometheus's text format; a failed rendering leaves the body
 * NULL, sent as a 500. */
static void answer_metrics(struct intake_http *h, struct answer *a)
{
    cf_status st = cf_metrics_render(h->metrics, &a->body, NULL);
    if (st != CF_OK)
        CF_LOG(CF_LOG_WARN, "http_metrics_failed", CF_LOG_ERR("reason", cf_strerror(st)));
    a->status = MHD_HTTP_OK;
    a->content_type = CF_METRICS_CONTENT_TYPE;
}

/* ---- Readiness --------------------------------------------------------------------------- */

/* Connects to Redis if not connected yet. */
static cf_status ensure_redis(struct intake_http *h, char *err, size_t errlen)
{
    if (h->redis != NULL)
        return CF_OK;
    return cf_redis_new_from_config(h->config, &h->redis, err, errlen);
}

/* Redis answers PING, the registry knows the topic's schema, the broker describes the topic. */
static bool check_ready(struct intake_http *h)
{
    char err[512] = "";
    const struct cf_schema *schema = NULL;
    int32_t id = 0;
    struct cf_topic_info info;
    cf_status st = ensure_redis(h, err, sizeof(err));
    const char *what = "redis";
    if (st == CF_OK)
        st = cf_redis_ping(h->redis, err, sizeof(err));
    if (st == CF_OK) {
        what = "registry";
        st = cf_serde_topic_schema(h->serde, INTAKE_INPUT_TOPIC, &schema, &id, err, sizeof(err));
    }
    if (st == CF_OK) {
        what = "kafka";
        st = cf_kafka_describe_topic(h->config, INTAKE_INPUT_TOPIC, READY_TIMEOUT_MS, &info, err,
                                     sizeof(err));
    }
    h->ready_checked_ms = cf_clock_mono_ms();
    if (st != CF_OK) {
        CF_LOG(CF_LOG_WARN, "http_not_ready", CF_LOG_ID("component", what),
               CF_LOG_ERR("reason", err));
        return false;
    }
    if (!h->ready)
        CF_LOG0(CF_LOG_INFO, "http_ready");
    h->ready = true;
    return true;
}

/* ---- POST /v1/inquiries: checks ---------------------------------------------------------- */

/* Answers 400 with every rejected field of the normalisation. */
static void answer_field_errors(struct answer *a, const struct intake_field_error *fe, size_t n)
{
    struct intake_http_error errors[MAX_FIELD_ERRORS];
    size_t m = 0;
    for (size_t i = 0; i < n && m < MAX_FIELD_ERRORS; i++)
        if (fe[i].severity == INTAKE_REJECT)
            errors[m++] = (struct intake_http_error){fe[i].path, fe[i].code, fe[i].message};
    a->status = MHD_HTTP_BAD_REQUEST;
    a->body = intake_http_errors_json(errors, m);
}

/* Builds and encodes InquirySubmitted {meta, inquiry} for inquiry (borrowed). On CF_OK *value
 * is the wire record (free) and ce is filled. Encoding errors other than the registry's
 * (CF_EIO, CF_ETIMEOUT) are the request's fault: answered here as 400 SCHEMA. */
static cf_status encode_submitted(struct intake_http *h, json_t *inquiry, const char *inquiry_id,
                                  struct cf_cloudevent *ce, unsigned char **value, size_t *len,
                                  struct answer *a)
{
    char err[512] = "";
    char event_id[CF_UUID_LEN + 1], when[32];
    json_t *record = NULL;
    cf_status st = cf_uuid_v4(event_id);
    if (st != CF_OK)
        goto out;
    cf_avro_format_millis(cf_clock_wall_ms(), when, sizeof(when));
    record = json_pack("{s:{s:s, s:n, s:s, s:s, s:s, s:n}, s:O}", "meta", "event_id", event_id,
                       "case_id", "occurred_at", when, "producer", INTAKE_HTTP_PRODUCER,
                       "correlation_id", inquiry_id, "causation_id", "inquiry", inquiry);
    if (record == NULL) {
        st = CF_ENOMEM;
        goto out;
    }
    st = cf_serde_encode_json(h->serde, INTAKE_INPUT_TOPIC, record, value, len, err, sizeof(err));
    if (st == CF_EIO || st == CF_ETIMEOUT) {
        CF_LOG(CF_LOG_WARN, "http_registry_failed", CF_LOG_ERR("reason", err));
        answer_unavailable(a, "the schema registry is unavailable");
        goto out;
    }
    if (st != CF_OK) {
        char path[256], msg[256];
        intake_http_schema_error(err, path, sizeof(path), msg, sizeof(msg));
        answer_error(a, MHD_HTTP_BAD_REQUEST, path, "SCHEMA", msg);
        goto out;
    }
    st = cf_cloudevent_from_json(ce, INTAKE_HTTP_SERVICE, INTAKE_HTTP_SUBMITTED_TYPE, record, err,
                                 sizeof(err));
    if (st != CF_OK) {
        free(*value);
        *value = NULL;
    }
out:
    json_decref(record);
    return st;
}

/* Sets inquiry_id (lower-case canonical) in the inquiry, or answers 400 if it is not a UUID. */
static bool take_inquiry_id(json_t *inquiry, char id[CF_UUID_LEN + 1], struct answer *a)
{
    json_t *v = json_object_get(inquiry, "inquiry_id");
    if (v == NULL || json_is_null(v)) {
        if (cf_uuid_v4(id) != CF_OK) {
            answer_unavailable(a, "no random source");
            return false;
        }
    } else if (json_is_string(v) && json_string_length(v) == CF_UUID_LEN &&
               cf_uuid_valid(json_string_value(v))) {
        const char *s = json_string_value(v);
        for (size_t i = 0; i <= CF_UUID_LEN; i++)
            id[i] = (char)tolower((unsigned char)s[i]);
    } else {
        answer_error(a, MHD_HTTP_BAD_REQUEST, "$.inquiry_id", "UUID_INVALID",
                     "expected a UUID (8-4-4-4-12 hex digits)");
        return false;
    }
    if (json_object_set_new(inquiry, "inquiry_id", json_string(id)) != 0) {
        a->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        return false;
    }
    return true;
}

static void post_free(struct post *p)
{
    if (p == NULL)
        return;
    json_decref(p->inquiry);
    free(p->value);
    free(p);
}

/* Steps 1 to 6 of README "HTTP endpoint" (everything that needs no server but the registry).
 * Either answers in a (the request is over), or returns a new post (the caller's) holding the
 * checked inquiry, its record and its idempotency key, to be claimed and produced. */
static struct post *check_post(struct intake_http *h, const char *idem_header, const char *body,
                               size_t len, struct answer *a)
{
    char err[512] = "";
    struct intake_field_error fe[MAX_FIELD_ERRORS];
    size_t nfe = 0;
    json_t *copy = NULL;
    json_error_t jerr;
    cf_status st;
    struct post *p = calloc(1, sizeof(*p));
    if (p == NULL)
        goto nomem;
    p->h = h;
    p->stage = POST_CLAIM;

    p->inquiry = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (p->inquiry == NULL) {
        /* jansson's text quotes the input near the error: only its position is passed on. */
        char msg[128];
        if (json_error_code(&jerr) == json_error_invalid_utf8)
            (void)snprintf(msg, sizeof(msg), "the body is not valid UTF-8");
        else if (json_error_code(&jerr) == json_error_duplicate_key)
            (void)snprintf(msg, sizeof(msg), "duplicate key at line %d, column %d", jerr.line,
                           jerr.column);
        else
            (void)snprintf(msg, sizeof(msg), "malformed JSON at line %d, column %d", jerr.line,
                           jerr.column);
        answer_error(a, MHD_HTTP_BAD_REQUEST, "$", "JSON_INVALID", msg);
        goto fail;
    }
    json_t *inquiry = p->inquiry;
    if (!json_is_object(inquiry)) {
        answer_error(a, MHD_HTTP_BAD_REQUEST, "$", "TYPE_INVALID", "expected an object");
        goto fail;
    }
    if (idem_header != NULL && !intake_http_idem_key_ok(idem_header)) {
        answer_error(a, MHD_HTTP_BAD_REQUEST, "$", "IDEMPOTENCY_KEY_INVALID",
                     "Idempotency-Key must be 1-255 visible ASCII characters");
        goto fail;
    }
    if (idem_header != NULL) {
        json_t *k = json_object_get(inquiry, "idempotency_key");
        if (k == NULL || json_is_null(k)) {
            if (json_object_set_new(inquiry, "idempotency_key", json_string(idem_header)) != 0)
                goto nomem;
        } else if (!json_is_string(k) || strcmp(json_string_value(k), idem_header) != 0) {
            answer_error(a, MHD_HTTP_BAD_REQUEST, "$.idempotency_key", "IDEMPOTENCY_KEY_MISMATCH",
                         "differs from the Idempotency-Key header");
            goto fail;
        }
    }
    /* Was inquiry_id given? Then it is the idempotency key when the header is absent. */
    json_t *given_id = json_object_get(inquiry, "inquiry_id");
    bool id_given = given_id != NULL && !json_is_null(given_id);
    if (!take_inquiry_id(inquiry, p->id, a))
        goto fail;
    if (json_object_get(inquiry, "submitted_at") == NULL) {
        char when[32];
        cf_avro_format_millis(cf_clock_wall_ms(), when, sizeof(when));
        if (json_object_set_new(inquiry, "submitted_at", json_string(when)) != 0)
            goto nomem;
    }

    /* The event carries the inquiry as received (the schema says so; the loop normalises it
     * again); a copy is normalised only to refuse what intake would dead-letter. */
    copy = json_deep_copy(inquiry);
    if (copy == NULL)
        goto nomem;
    st = intake_normalize_inquiry(copy, err, sizeof(err), fe, MAX_FIELD_ERRORS, &nfe);
    if (st == CF_EINVAL) {
        answer_field_errors(a, fe, nfe);
        CF_LOG(CF_LOG_INFO, "http_inquiry_refused", CF_LOG_ID("inquiry_id", p->id),
               CF_LOG_ID("code", nfe > 0 ? fe[0].code : "INVALID"));
        goto fail;
    }
    if (st != CF_OK)
        goto nomem;
    if (encode_submitted(h, inquiry, p->id, &p->ce, &p->value, &p->value_len, a) != CF_OK) {
        if (a->status == MHD_HTTP_BAD_REQUEST)
            CF_LOG(CF_LOG_INFO, "http_inquiry_refused", CF_LOG_ID("inquiry_id", p->id),
                   CF_LOG_ID("code", "SCHEMA"));
        goto fail;
    }
    /* Idempotency: the key is the header, else a given inquiry_id (a generated one needs
     * none). It is claimed only after the checks, so that a refused body never holds it. */
    const char *key_source = idem_header != NULL ? idem_header : id_given ? p->id : NULL;
    if (key_source != NULL) {
        if (intake_http_idem_redis_key(key_source, p->idem_key) != CF_OK)
            goto nomem;
        p->has_key = true;
    }
    (void)snprintf(p->marker_key, sizeof(p->marker_key), INQUIRY_PREFIX "%s", p->id);
    json_decref(copy);
    return p;
nomem:
    a->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
fail:
    json_decref(copy);
    post_free(p);
    return NULL;
}

/* ---- POST /v1/inquiries: the asynchronous steps (server thread) -------------------------- */

static void list_push(struct post_list *l, struct post *p)
{
    p->next = NULL;
    p->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
    l->n++;
}

static void list_remove(struct post_list *l, struct post *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        l->head = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    else
        l->tail = p->prev;
    p->prev = p->next = NULL;
    l->n--;
}

static struct post_list *list_of(struct intake_http *h, enum post_stage stage)
{
    switch (stage) {
    case POST_CLAIM:
        return &h->claims;
    case POST_FLYING:
        return &h->flying;
    case POST_DONE:
        return &h->done;
    case POST_ORPHAN:
        break;
    }
    return &h->orphans;
}

static void post_move(struct intake_http *h, struct post *p, enum post_stage stage)
{
    list_remove(list_of(h, p->stage), p);
    p->stage = stage;
    list_push(list_of(h, stage), p);
}

/* Ends the POST's request with a (taken over) and resumes its connection; libmicrohttpd then
 * calls on_request, which sends it. The post stays in its list: the caller moves or frees it. */
static void post_answer(struct intake_http *h, struct post *p, struct answer *a)
{
    if (p->req == NULL) {
        free(a->body);
        a->body = NULL;
        return;
    }
    p->req->answer = *a;
    p->req->answered = true;
    p->req->post = NULL;
    a->body = NULL;
    MHD_resume_connection(p->conn);
    p->conn = NULL;
    p->req = NULL;
    h->suspended--;
    h->resumed = true;
}

/* 202 {"inquiry_id", "status_url"} for id. */
static void answer_accepted(struct answer *a, const char *id)
{
    answer_json(a, MHD_HTTP_ACCEPTED,
                json_pack("{s:s, s:s+}", "inquiry_id", id, "status_url", INQUIRIES_PATH "/", id));
}

/* Answers 503 and frees a post that has produced nothing. */
static void post_unavailable(struct intake_http *h, struct post *p, const char *what)
{
    struct answer a = {0};
    answer_unavailable(&a, what);
    post_answer(h, p, &a);
    list_remove(list_of(h, p->stage), p);
    post_free(p);
}

/* The delivery report of a post's record (cf_kafka_delivery_fn). Runs on the server thread,
 * inside cf_kafka_producer_poll (or inside cf_kafka_producer_free in intake_http_stop, after
 * the server thread ended). Only moves the post on: step 3 answers it. */
static void on_delivery(void *opaque, cf_status status, const char *reason)
{
    struct post *p = opaque;
    struct intake_http *h = p->h;
    p->delivery = status;
    if (p->stage == POST_ORPHAN) {
        /* Answered 503 at its timeout; a delivered record is folded by the loop if the client
         * sends it again (README), so nothing is left to do. */
        CF_LOG(CF_LOG_INFO, "http_late_delivery", CF_LOG_ID("inquiry_id", p->id),
               CF_LOG_INT("delivered", status == CF_OK));
        list_remove(&h->orphans, p);
        post_free(p);
        return;
    }
    if (status != CF_OK)
        CF_LOG(CF_LOG_WARN, "http_produce_failed", CF_LOG_ID("inquiry_id", p->id),
               CF_LOG_ERR("reason", reason));
    post_move(h, p, POST_DONE);
}

/* Step 2: enqueues the post's record; the report comes through on_delivery. */
static void post_produce(struct intake_http *h, struct post *p)
{
    char err[512] = "";
    cf_status st = cf_kafka_produce_async(h->producer, INTAKE_INPUT_TOPIC, p->id, strlen(p->id),
                                          p->value, p->value_len, p->ce.headers, CF_CE_HEADER_COUNT,
                                          on_delivery, p, err, sizeof(err));
    if (st != CF_OK) {
        CF_LOG(CF_LOG_WARN, "http_produce_failed", CF_LOG_ID("inquiry_id", p->id),
               CF_LOG_ERR("reason", err));
        post_unavailable(h, p, "the event broker is unavailable");
        return;
    }
    /* librdkafka copied the record: only the id and the event id are needed from here on. */
    free(p->value);
    p->value = NULL;
    json_decref(p->inquiry);
    p->inquiry = NULL;
    p->deadline_ms = cf_clock_mono_ms() + h->produce_timeout_ms;
    post_move(h, p, POST_FLYING);
}

/* The outcome of one claim script call (st and its reply v, from the pipeline): produce,
 * answer 202 for an earlier delivery, or 503. */
static void claim_settled(struct intake_http *h, struct post *p, cf_status st,
                          const struct cf_redis_value *v)
{
    const struct cf_redis_value *held = NULL;
    if (st == CF_OK && (v == NULL || v->type != CF_REDIS_ARRAY || v->count < 1 ||
                        v->elements[0].type != CF_REDIS_INT))
        st = CF_EINVAL;
    if (st == CF_OK && v->elements[0].integer == 0) {
        if (v->count < 3 || v->elements[1].type != CF_REDIS_STRING ||
            v->elements[2].type != CF_REDIS_INT || !cf_uuid_valid(v->elements[1].str))
            st = CF_EINVAL; /* the claim is not an inquiry id */
        else
            held = v->elements;
    }
    if (st != CF_OK) {
        CF_LOG(CF_LOG_WARN, "http_redis_failed", CF_LOG_ID("inquiry_id", p->id),
               CF_LOG_ERR("reason", st == CF_EINVAL ? "unexpected claim reply" : cf_strerror(st)));
        post_unavailable(h, p, "the state store is unavailable");
        return;
    }
    if (held != NULL) {
        /* Seen before. If that inquiry was delivered, answer its id and produce nothing; if
         * not (its produce failed or timed out), deliver this one under that id: a second
         * record of one inquiry id is folded by the loop. */
        const char *claimed = held[1].str;
        struct answer a = {0};
        if (held[2].integer != 0) {
            CF_LOG(CF_LOG_INFO, "http_inquiry_repeated", CF_LOG_ID("inquiry_id", claimed));
            answer_accepted(&a, claimed);
            goto answered;
        }
        if (strcmp(claimed, p->id) != 0) {
            (void)snprintf(p->id, sizeof(p->id), "%s", claimed);
            (void)snprintf(p->marker_key, sizeof(p->marker_key), INQUIRY_PREFIX "%s", p->id);
            free(p->value);
            p->value = NULL;
            if (json_object_set_new(p->inquiry, "inquiry_id", json_string(p->id)) != 0) {
                a.status = MHD_HTTP_INTERNAL_SERVER_ERROR;
                goto answered;
            }
            if (encode_submitted(h, p->inquiry, p->id, &p->ce, &p->value, &p->value_len, &a) !=
                CF_OK)
                goto answered;
        }
        post_produce(h, p);
        return;
    answered:
        post_answer(h, p, &a);
        list_remove(&h->claims, p);
        post_free(p);
        return;
    }
    post_produce(h, p);
}

/* Step 1, for every post that arrived in this turn: the claims in one pipeline, then each
 * post produced or answered. Posts without a key go straight to producing. */
static void run_claims(struct intake_http *h)
{
    char err[512] = "";
    cf_status st = CF_OK;
    size_t n = 0;
    if (h->claims.head == NULL)
        return;
    /* Redis is needed even without a claim: the "received" marker follows the delivery. */
    if (h->pipe == NULL) {
        st = ensure_redis(h, err, sizeof(err));
        if (st == CF_OK)
            st = cf_redis_pipeline_new(h->redis, &h->pipe);
    }
    if (st == CF_OK) {
        cf_redis_pipeline_reset(h->pipe);
        char ttl[24];
        (void)snprintf(ttl, sizeof(ttl), "%lld", INTAKE_HTTP_IDEM_TTL_SECONDS);
        for (struct post *p = h->claims.head; p != NULL && st == CF_OK; p = p->next) {
            if (!p->has_key)
                continue;
            const char *keys[2] = {p->idem_key, p->marker_key};
            const char *args[2] = {p->id, ttl};
            p->pipe_index = n++;
            st = cf_redis_pipeline_script(h->pipe, h->claim, 2, keys, 2, args, NULL, err,
                                          sizeof(err));
        }
    }
    if (st == CF_OK && n > 0) {
        /* A failed command leaves the others' replies (each post looks at its own); a failed
         * exchange leaves none, and every post then finds its reply missing. */
        st = cf_redis_pipeline_exec(h->redis, h->pipe, err, sizeof(err));
        if (st != CF_OK)
            CF_LOG(CF_LOG_WARN, "http_redis_failed", CF_LOG_ERR("reason", err));
        st = CF_OK;
    }
    if (st != CF_OK) {
        CF_LOG(CF_LOG_WARN, "http_redis_failed", CF_LOG_ERR("reason", err));
        while (h->claims.head != NULL)
            post_unavailable(h, h->claims.head, "the state store is unavailable");
        return;
    }
    while (h->claims.head != NULL) {
        struct post *p = h->claims.head;
        const struct cf_redis_value *v = NULL;
        if (!p->has_key) {
            post_produce(h, p);
            continue;
        }
        cf_status cst = cf_redis_pipeline_reply(h->pipe, p->pipe_index, &v);
        claim_settled(h, p, cst, v);
    }
}

/* Posts whose report is overdue are answered 503; their late report only frees them. */
static void expire_flying(struct intake_http *h, int64_t now_ms)
{
    while (h->flying.head != NULL && h->flying.head->deadline_ms <= now_ms) {
        struct post *p = h->flying.head;
        struct answer a = {0};
        CF_LOG(CF_LOG_WARN, "http_produce_failed", CF_LOG_ID("inquiry_id", p->id),
               CF_LOG_ERR("reason", "no delivery report within the produce timeout"));
        answer_unavailable(&a, "the event broker is unavailable");
        post_answer(h, p, &a);
        post_move(h, p, POST_ORPHAN);
    }
}

/* Step 3: the "received" markers of every delivered post in one pipeline, then the answers. */
static void finish_done(struct intake_http *h)
{
    char err[512] = "";
    cf_status st = CF_OK;
    size_t n = 0;
    if (h->done.head == NULL)
        return;
    cf_redis_pipeline_reset(h->pipe);
    for (struct post *p = h->done.head; p != NULL && st == CF_OK; p = p->next)
        if (p->delivery == CF_OK)
            st = cf_redis_pipeline_set(h->pipe, p->marker_key, "received", 8,
                                       INTAKE_HTTP_INQUIRY_TTL_SECONDS, err, sizeof(err));
    n = cf_redis_pipeline_count(h->pipe);
    if (st == CF_OK && n > 0)
        st = cf_redis_pipeline_exec(h->redis, h->pipe, err, sizeof(err));
    if (st != CF_OK) /* delivered all the same: answer 202; a retry is folded by the loop */
        CF_LOG(CF_LOG_WARN, "http_redis_failed", CF_LOG_INT("inquiries", (long long)n),
               CF_LOG_ERR("reason", err));
    while (h->done.head != NULL) {
        struct post *p = h->done.head;
        struct answer a = {0};
        if (p->delivery != CF_OK) {
            answer_unavailable(&a, "the event broker is unavailable");
        } else {
            CF_LOG(CF_LOG_INFO, "http_inquiry_accepted", CF_LOG_ID("inquiry_id", p->id),
                   CF_LOG_ID("event_id", p->ce.id));
            answer_accepted(&a, p->id);
        }
        post_answer(h, p, &a);
        list_remove(&h->done, p);
        post_free(p);
    }
}

/* ---- GET /v1/inquiries/{id} -------------------------------------------------------------- */

static void handle_status(struct intake_http *h, const char *id, struct answer *a)
{
    char err[512] = "";
    char key[INTAKE_HTTP_REDIS_KEY_LEN];
    char *accepted = NULL;
    struct intake_journey_view view;
    if (id[0] == '\0') {
        answer_error(a, MHD_HTTP_NOT_FOUND, "$", "NOT_FOUND", "no such inquiry");
        return;
    }
    cf_status st = ensure_redis(h, err, sizeof(err));
    if (st == CF_OK) {
        /* Accepted here but perhaps not opened yet: then it is "received". */
        (void)snprintf(key, sizeof(key), INQUIRY_PREFIX "%s", id);
        st = cf_redis_get(h->redis, key, &accepted, NULL, err, sizeof(err));
        if (st == CF_ENOTFOUND)
            st = CF_OK;
    }
    if (st == CF_OK)
        st = intake_journey_lookup(h->redis, h->stages, id, accepted != NULL, &view, err,
                                   sizeof(err));
    if (st == CF_ENOTFOUND) {
        answer_error(a, MHD_HTTP_NOT_FOUND, "$", "NOT_FOUND", "no such inquiry");
    } else if (st != CF_OK) {
        CF_LOG(CF_LOG_WARN, "http_redis_failed", CF_LOG_ERR("reason", err));
        answer_unavailable(a, "the state store is unavailable");
    } else {
        char at[32];
        if (view.at_ms >= 0)
            cf_avro_format_millis(view.at_ms, at, sizeof(at));
        answer_json(a, MHD_HTTP_OK,
                    json_pack("{s:s, s:s?, s:s, s:s?, s:s?}", "inquiry_id", id, "case_id",
                              view.case_id[0] != '\0' ? view.case_id : NULL, "stage",
                              intake_journey_stage_name(view.stage), "closed_reason",
                              view.detail[0] != '\0' ? view.detail : NULL, "updated_at",
                              view.at_ms >= 0 ? at : NULL));
    }
    free(accepted);
}

/* ---- libmicrohttpd glue ------------------------------------------------------------------ */

static enum MHD_Result send_answer(struct MHD_Connection *conn, struct answer *a)
{
    static const char fallback[] =
        "{\"errors\":[{\"path\":\"$\",\"code\":\"INTERNAL\",\"message\":\"internal error\"}]}";
    if (a->body == NULL) {
        a->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        a->retry_after = false;
    }
    const char *text = a->body != NULL ? a->body : fallback;
    const char *type = a->body != NULL && a->content_type != NULL ? a->content_type
                                                                  : "application/json";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    free(a->body);
    a->body = NULL;
    if (resp == NULL)
        return MHD_NO;
    char retry[16];
    (void)snprintf(retry, sizeof(retry), "%d", INTAKE_HTTP_RETRY_AFTER_SECONDS);
    enum MHD_Result ok =
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (ok == MHD_YES)
        ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (ok == MHD_YES && a->allow != NULL)
        ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, a->allow);
    if (ok == MHD_YES && a->retry_after)
        ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry);
    if (ok == MHD_YES)
        ok = MHD_queue_response(conn, a->status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static bool method_is(const char *method, const char *want)
{
    return strcmp(method, want) == 0;
}

/* Everything but the body of POST /v1/inquiries is answered at the first call, from the
 * headers alone: a response queued before the body is read makes MHD drop the rest and close
 * the connection, so a refused upload is never read. */
static enum MHD_Result first_call(struct intake_http *h, struct MHD_Connection *conn,
                                  const char *url, const char *method, void **con_cls)
{
    struct answer a = {0};
    char id[CF_UUID_LEN + 1];
    enum intake_http_route route = intake_http_route_of(url, id);
    bool get = method_is(method, MHD_HTTP_METHOD_GET) || method_is(method, MHD_HTTP_METHOD_HEAD);

    if (route == INTAKE_HTTP_ROUTE_METRICS && h->metrics == NULL)
        route = INTAKE_HTTP_ROUTE_NONE;
    if (route == INTAKE_HTTP_ROUTE_NONE) {
        answer_error(&a, MHD_HTTP_NOT_FOUND, "$", "NOT_FOUND", "no such resource");
    } else if (route == INTAKE_HTTP_ROUTE_INQUIRIES ? !method_is(method, MHD_HTTP_METHOD_POST)
                                                    : !get) {
        answer_error(&a, MHD_HTTP_METHOD_NOT_ALLOWED, "$", "METHOD_NOT_ALLOWED",
                     "method not allowed on this resource");
        a.allow = intake_http_allowed(route);
    } else if (route == INTAKE_HTTP_ROUTE_HEALTHZ) {
        answer_json(&a, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
    } else if (route == INTAKE_HTTP_ROUTE_READYZ) {
        if (!h->ready && cf_clock_mono_ms() - h->ready_checked_ms >= READY_RECHECK_MS)
            (void)check_ready(h);
        if (h->ready) {
            answer_json(&a, MHD_HTTP_OK, json_pack("{s:s}", "status", "ready"));
        } else {
            answer_unavailable(&a, "not ready");
        }
    } else if (route == INTAKE_HTTP_ROUTE_METRICS) {
        answer_metrics(h, &a);
    } else if (route == INTAKE_HTTP_ROUTE_INQUIRY) {
        handle_status(h, id, &a);
    } else {
        /* POST /v1/inquiries */
        const char *ctype =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        const char *clen =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        char *end = NULL;
        unsigned long long declared = clen != NULL ? strtoull(clen, &end, 10) : 0;
        if (!intake_http_content_type_ok(ctype)) {
            answer_error(&a, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "$", "UNSUPPORTED_MEDIA_TYPE",
                         "Content-Type must be application/json");
        } else if (clen != NULL && declared > h->max_body) {
            answer_error(&a, MHD_HTTP_CONTENT_TOO_LARGE, "$", "BODY_TOO_LARGE",
                         "the body is over the size limit");
        } else {
            struct request *r = calloc(1, sizeof(*r));
            if (r == NULL)
                return MHD_NO;
            *con_cls = r;
            return MHD_YES; /* MHD sends 100 Continue if asked and hands the body over */
        }
    }
    return send_answer(conn, &a);
}

/* Takes one piece of the body: kept while under the limit, dropped after it. */
static enum MHD_Result take_upload(struct intake_http *h, struct request *r, const char *data,
                                   size_t size)
{
    if (!r->too_big && r->len + size > h->max_body) {
        r->too_big = true;
        free(r->body);
        r->body = NULL;
        r->len = r->cap = 0;
    }
    if (r->too_big) {
        r->discarded += size;
        return r->discarded > DISCARD_FACTOR * h->max_body ? MHD_NO : MHD_YES;
    }
    if (r->len + size + 1 > r->cap) {
        size_t cap = r->cap > 0 ? r->cap : 16384;
        while (cap < r->len + size + 1)
            cap *= 2;
        if (cap > h->max_body + 1)
            cap = h->max_body + 1;
        char *grown = realloc(r->body, cap);
        if (grown == NULL)
            return MHD_NO;
        r->body = grown;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, size);
    r->len += size;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct intake_http *h = cls;
    struct request *r = *con_cls;
    if (r == NULL)
        return first_call(h, conn, url, method, con_cls);
    if (*upload_data_size > 0) {
        enum MHD_Result res = take_upload(h, r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return res;
    }
    if (r->answered) /* resumed: the answer a step stored */
        return send_answer(conn, &r->answer);
    struct answer a = {0};
    if (r->too_big) {
        answer_error(&a, MHD_HTTP_CONTENT_TOO_LARGE, "$", "BODY_TOO_LARGE",
                     "the body is over the size limit");
    } else if (h->stopping) {
        /* Stopping waits for the POSTs in progress only; a new one would prolong it. */
        answer_unavailable(&a, "the service is stopping");
    } else {
        const char *idem = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
        struct post *p = check_post(h, idem, r->body != NULL ? r->body : "", r->len, &a);
        if (p != NULL) {
            /* The body is no longer needed; the connection waits for the steps (top of file). */
            free(r->body);
            r->body = NULL;
            r->len = r->cap = 0;
            p->conn = conn;
            p->req = r;
            r->post = p;
            list_push(&h->claims, p);
            MHD_suspend_connection(conn);
            h->suspended++;
            return MHD_YES;
        }
    }
    return send_answer(conn, &a);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct intake_http *h = cls;
    (void)conn;
    (void)toe;
    struct request *r = *con_cls;
    if (r != NULL) {
        /* A suspended connection never completes (it cannot time out, and the server thread
         * resumes every one before stopping the daemon): should one all the same, its post is
         * detached (answered into the void) and no longer waited for. */
        if (r->post != NULL) {
            r->post->req = NULL;
            r->post->conn = NULL;
            h->suspended--;
        }
        free(r->answer.body);
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
}

/* ---- The server thread ------------------------------------------------------------------- */

/* Reads the wake pipe dry (it only says "look again"). */
static void drain_wake(int fd)
{
    char buf[64];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

/* How long the server thread may sleep: until libmicrohttpd's next timeout, the first
 * produce deadline, or SERVE_POLL_MAX_MS. */
static int serve_timeout_ms(struct intake_http *h, int64_t now_ms)
{
    int64_t ms = SERVE_POLL_MAX_MS;
    MHD_UNSIGNED_LONG_LONG mhd_ms = 0;
    if (h->resumed || h->claims.head != NULL || h->done.head != NULL)
        return 0;
    if (MHD_get_timeout(h->daemon, &mhd_ms) == MHD_YES && (int64_t)mhd_ms < ms)
        ms = (int64_t)mhd_ms;
    if (h->flying.head != NULL && h->flying.head->deadline_ms - now_ms < ms)
        ms = h->flying.head->deadline_ms - now_ms;
    return ms < 0 ? 0 : (int)ms;
}

/* The server thread: waits on libmicrohttpd's epoll descriptor and the wake pipe, runs
 * libmicrohttpd (the request callbacks), then the three steps of the POSTs (top of file).
 * On stop it goes on until no connection is suspended (each POST ends by its produce
 * timeout at the latest) and their answers are handed to libmicrohttpd. */
static void *serve(void *arg)
{
    struct intake_http *h = arg;
    struct pollfd fds[2] = {{h->wake[0], POLLIN, 0}, {h->epoll_fd, POLLIN, 0}};
    for (;;) {
        if (!h->stopping && atomic_load(&h->stop)) {
            h->stopping = true;
            CF_LOG(CF_LOG_INFO, "http_stopping",
                   CF_LOG_INT("in_progress", (long long)h->suspended));
        }
        if (h->stopping && h->suspended == 0 && !h->resumed)
            break;
        int64_t now = cf_clock_mono_ms();
        if (poll(fds, 2, serve_timeout_ms(h, now)) < 0 && errno != EINTR) {
            CF_LOG(CF_LOG_ERROR, "http_poll_failed", CF_LOG_ERR("reason", strerror(errno)));
            break;
        }
        if ((fds[0].revents & POLLIN) != 0)
            drain_wake(h->wake[0]);
        h->resumed = false;
        (void)MHD_run(h->daemon);
        run_claims(h);
        (void)cf_kafka_producer_poll(h->producer, 0);
        expire_flying(h, cf_clock_mono_ms());
        finish_done(h);
    }
    return NULL;
}

/* ---- Start and stop ---------------------------------------------------------------------- */

/* A non-blocking, close-on-exec pipe (librdkafka must never block writing to it). */
static int wake_pipe(int fds[2])
{
    if (pipe(fds) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(fds[i], F_GETFL);
        if (fl < 0 || fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) != 0 ||
            fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0)
            return -1;
    }
    return 0;
}

cf_status intake_http_start(const struct cf_config *config,
                            const struct intake_journey_scripts *stages, struct cf_metrics *metrics,
                            struct intake_http **out, char *errbuf, size_t errlen)
{
    struct intake_http *h = NULL;
    cf_status st;
    *out = NULL;
    long long port = cf_config_int(config, "CASEFLOW_INTAKE_HTTP_PORT");
    if (port == 0)
        return CF_OK;
    const char *bind = cf_config_string(config, "CASEFLOW_INTAKE_HTTP_BIND");
    struct sockaddr_in6 sa6;
    struct sockaddr_in sa4;
    struct sockaddr *sa;
    /* No internal thread: serve() polls libmicrohttpd's epoll descriptor itself, beside the
     * producer's wake pipe. MHD_USE_ITC lets MHD_resume_connection wake that descriptor, and
     * with no thread of libmicrohttpd's to wake, MHD_stop_daemon closes idle keep-alive
     * connections at once. */
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
    memset(&sa6, 0, sizeof(sa6));
    memset(&sa4, 0, sizeof(sa4));
    if (inet_pton(AF_INET, bind, &sa4.sin_addr) == 1) {
        sa4.sin_family = AF_INET;
        sa4.sin_port = htons((uint16_t)port);
        sa = (struct sockaddr *)&sa4;
    } else if (inet_pton(AF_INET6, bind, &sa6.sin6_addr) == 1) {
        sa6.sin6_family = AF_INET6;
        sa6.sin6_port = htons((uint16_t)port);
        sa = (struct sockaddr *)&sa6;
        flags |= MHD_USE_IPv6;
    } else {
        return cf_fail(errbuf, errlen, CF_ECONFIG,
                       "CASEFLOW_INTAKE_HTTP_BIND: not an IPv4 or IPv6 address");
    }
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) != MHD_YES)
        return cf_fail(errbuf, errlen, CF_ECONFIG, "http: libmicrohttpd was built without epoll");

    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "http: out of memory");
    h->wake[0] = h->wake[1] = -1;
    atomic_init(&h->stop, false);
    h->config = config;
    h->stages = stages;
    h->metrics = metrics;
    h->max_body = (size_t)cf_config_int(config, "CASEFLOW_INTAKE_HTTP_MAX_BODY");
    h->produce_timeout_ms = (int)cf_config_int(config, "CASEFLOW_INTAKE_HTTP_PRODUCE_TIMEOUT_MS");
    unsigned max_conn = (unsigned)cf_config_int(config, "CASEFLOW_INTAKE_HTTP_MAX_CONNECTIONS");
    if (wake_pipe(h->wake) != 0) {
        st = cf_fail(errbuf, errlen, CF_EIO, "http: pipe: %s", strerror(errno));
        goto out;
    }
    st = cf_redis_script_new(claim_lua, CF_REDIS_SCRIPT_IDEMPOTENT, &h->claim, errbuf, errlen);
    if (st == CF_OK)
        st = cf_kafka_producer_new(config, NULL, 0, &h->producer, errbuf, errlen);
    if (st == CF_OK)
        st = cf_registry_new(cf_config_string(config, "CASEFLOW_REGISTRY_URL"),
                             cf_config_int(config, "CASEFLOW_REGISTRY_TIMEOUT_MS"), &h->registry,
                             errbuf, errlen);
    if (st == CF_OK)
        st = cf_serde_new(h->registry, cf_config_string(config, "CASEFLOW_SCHEMA_DIR"), &h->serde,
                          errbuf, errlen);
    if (st != CF_OK)
        goto out;
    cf_kafka_producer_wake_fd(h->producer, h->wake[1]);
    /* Checked here, on this thread, before the server thread exists: from then on only that
     * thread touches h. */
    (void)check_ready(h);

    h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, sa,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)h,
                                 MHD_OPTION_CONNECTION_LIMIT, max_conn,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30, MHD_OPTION_END);
    if (h->daemon == NULL) {
        st = cf_fail(errbuf, errlen, CF_EIO,
                     "http: cannot listen on CASEFLOW_INTAKE_HTTP_BIND "
                     "port %lld: %s",
                     port, strerror(errno));
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (info == NULL) {
        st = cf_fail(errbuf, errlen, CF_EIO, "http: libmicrohttpd has no epoll descriptor");
        goto out;
    }
    h->epoll_fd = info->epoll_fd;
    int rc = pthread_create(&h->thread, NULL, serve, h);
    if (rc != 0) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "http: cannot start its thread: %s", strerror(rc));
        goto out;
    }
    h->thread_started = true;
    CF_LOG(CF_LOG_INFO, "http_listening", CF_LOG_ID("address", bind), CF_LOG_INT("port", port),
           CF_LOG_INT("ready", h->ready), CF_LOG_INT("max_connections", (long long)max_conn));
    *out = h;
    return CF_OK;
out:
    intake_http_stop(h);
    return st;
}

/* Frees every post of a list (those whose report never came). */
static void free_posts(struct post_list *l)
{
    while (l->head != NULL) {
        struct post *p = l->head;
        list_remove(l, p);
        post_free(p);
    }
}

void intake_http_stop(struct intake_http *h)
{
    if (h == NULL)
        return;
    if (h->thread_started) {
        static const char byte = 1;
        atomic_store(&h->stop, true);
        /* Wakes serve() at once; if the pipe is full it is awake already. */
        (void)!write(h->wake[1], &byte, 1);
        (void)pthread_join(h->thread, NULL);
    }
    /* No suspended connection is left (serve() waited for them): idle keep-alive connections
     * are closed here at once. */
    if (h->daemon != NULL)
        MHD_stop_daemon(h->daemon);
    /* The server thread has ended: this thread owns everything now. Freeing the producer
     * flushes it and reports (on_delivery, here) what is still in flight: only orphans. */
    cf_kafka_producer_free(h->producer);
    free_posts(&h->claims);
    free_posts(&h->flying);
    free_posts(&h->done);
    free_posts(&h->orphans);
    cf_redis_pipeline_free(h->pipe);
    cf_redis_free(h->redis);
    cf_redis_script_free(h->claim);
    cf_serde_free(h->serde);
    cf_registry_free(h->registry);
    for (int i = 0; i < 2; i++)
        if (h->wake[i] >= 0)
            (void)close(h->wake[i]);
    free(h);
}
