/* api.c — intake's HTTP endpoint (see api.h and README.md "HTTP endpoint"). */
#include "api.h"
#include "clock.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

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

struct intake_http {
    const struct cf_config *config;              /* borrowed */
    const struct intake_journey_scripts *stages; /* borrowed */
    struct MHD_Daemon *daemon;
    struct cf_kafka_producer *producer;
    struct cf_registry *registry;
    struct cf_serde *serde;
    struct cf_redis *redis; /* NULL until Redis answers */
    size_t max_body;
    int produce_timeout_ms;
    bool ready;
    int64_t ready_checked_ms;
};

/* One request's upload state (MHD's con_cls); freed when the request completes. */
struct request {
    char *body;
    size_t len, cap;
    bool too_big;
    size_t discarded;
};

/* An answer: status, JSON body (malloc'd), and the extra headers it needs. */
struct answer {
    unsigned status;
    char *body;
    const char *allow; /* static, or NULL */
    bool retry_after;
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

/* ---- POST /v1/inquiries ------------------------------------------------------------------ */

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

/* The whole POST once the body is in. Answers go into a; the function never fails itself. */
static void handle_post(struct intake_http *h, const char *idem_header, const char *body,
                        size_t len, struct answer *a)
{
    char err[512] = "";
    char id[CF_UUID_LEN + 1] = "";
    char idem_key[INTAKE_HTTP_REDIS_KEY_LEN] = "";
    char inquiry_key[INTAKE_HTTP_REDIS_KEY_LEN];
    struct intake_field_error fe[MAX_FIELD_ERRORS];
    size_t nfe = 0;
    struct cf_cloudevent ce;
    unsigned char *value = NULL;
    size_t value_len = 0;
    char *claimed = NULL;
    json_t *inquiry = NULL, *copy = NULL;
    json_error_t jerr;
    cf_status st;

    inquiry = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (inquiry == NULL) {
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
        goto out;
    }
    if (!json_is_object(inquiry)) {
        answer_error(a, MHD_HTTP_BAD_REQUEST, "$", "TYPE_INVALID", "expected an object");
        goto out;
    }
    if (idem_header != NULL && !intake_http_idem_key_ok(idem_header)) {
        answer_error(a, MHD_HTTP_BAD_REQUEST, "$", "IDEMPOTENCY_KEY_INVALID",
                     "Idempotency-Key must be 1-255 visible ASCII characters");
        goto out;
    }
    if (idem_header != NULL) {
        json_t *k = json_object_get(inquiry, "idempotency_key");
        if (k == NULL || json_is_null(k)) {
            if (json_object_set_new(inquiry, "idempotency_key", json_string(idem_header)) != 0)
                goto nomem;
        } else if (!json_is_string(k) || strcmp(json_string_value(k), idem_header) != 0) {
            answer_error(a, MHD_HTTP_BAD_REQUEST, "$.idempotency_key", "IDEMPOTENCY_KEY_MISMATCH",
                         "differs from the Idempotency-Key header");
            goto out;
        }
    }
    /* Was inquiry_id given? Then it is the idempotency key when the header is absent. */
    json_t *given_id = json_object_get(inquiry, "inquiry_id");
    bool id_given = given_id != NULL && !json_is_null(given_id);
    if (!take_inquiry_id(inquiry, id, a))
        goto out;
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
        CF_LOG(CF_LOG_INFO, "http_inquiry_refused", CF_LOG_ID("inquiry_id", id),
               CF_LOG_ID("code", nfe > 0 ? fe[0].code : "INVALID"));
        goto out;
    }
    if (st != CF_OK)
        goto nomem;
    if (encode_submitted(h, inquiry, id, &ce, &value, &value_len, a) != CF_OK) {
        if (a->status == MHD_HTTP_BAD_REQUEST)
            CF_LOG(CF_LOG_INFO, "http_inquiry_refused", CF_LOG_ID("inquiry_id", id),
                   CF_LOG_ID("code", "SCHEMA"));
        goto out;
    }

    /* Idempotency: the first request with a key claims it for its inquiry id; later ones get
     * that id. The claim is made only now, so that a refused body does not hold the key. */
    if (ensure_redis(h, err, sizeof(err)) != CF_OK) {
        CF_LOG(CF_LOG_WARN, "http_redis_failed", CF_LOG_ERR("reason", err));
        answer_unavailable(a, "the state store is unavailable");
        goto out;
    }
    const char *key_source = idem_header != NULL ? idem_header : id_given ? id : NULL;
    if (key_source != NULL) {
        bool was_set = false;
        if (intake_http_idem_redis_key(key_source, idem_key) != CF_OK)
            goto nomem;
        st = cf_redis_set_nx(h->redis, idem_key, id, strlen(id), INTAKE_HTTP_IDEM_TTL_SECONDS,
                             &was_set, err, sizeof(err));
        if (st == CF_OK && !was_set) {
            st = cf_redis_get(h->redis, idem_key, &claimed, NULL, err, sizeof(err));
            if (st == CF_ENOTFOUND) { /* expired in between: this request is the first again */
                st = cf_redis_set_nx(h->redis, idem_key, id, strlen(id),
                                     INTAKE_HTTP_IDEM_TTL_SECONDS, &was_set, err, sizeof(err));
            } else if (st == CF_OK && !cf_uuid_valid(claimed)) {
                st = cf_fail(err, sizeof(err), CF_EINVAL, "claim is not an inquiry id");
            }
        }
        if (st != CF_OK) {
            CF_LOG(CF_LOG_WARN, "http_redis_failed", CF_LOG_ERR("reason", err));
            answer_unavailable(a, "the state store is unavailable");
            goto out;
        }
        if (claimed != NULL) {
            /* Seen before. If that inquiry was delivered, answer its id and produce nothing;
             * if not (its produce failed or timed out), deliver this one under that id: a
             * second record of one inquiry id is folded by the loop. */
            (void)snprintf(inquiry_key, sizeof(inquiry_key), INQUIRY_PREFIX "%s", claimed);
            char *stage = NULL;
            st = cf_redis_get(h->redis, inquiry_key, &stage, NULL, err, sizeof(err));
            free(stage);
            if (st == CF_OK) {
                CF_LOG(CF_LOG_INFO, "http_inquiry_repeated", CF_LOG_ID("inquiry_id", claimed));
                answer_json(a, MHD_HTTP_ACCEPTED,
                            json_pack("{s:s, s:s+}", "inquiry_id", claimed, "status_url",
                                      INQUIRIES_PATH "/", claimed));
                goto out;
            }
            if (st != CF_ENOTFOUND) {
                CF_LOG(CF_LOG_WARN, "http_redis_failed", CF_LOG_ERR("reason", err));
                answer_unavailable(a, "the state store is unavailable");
                goto out;
            }
            if (strcmp(claimed, id) != 0) {
                (void)snprintf(id, sizeof(id), "%s", claimed);
                if (json_object_set_new(inquiry, "inquiry_id", json_string(id)) != 0)
                    goto nomem;
                free(value);
                value = NULL;
                if (encode_submitted(h, inquiry, id, &ce, &value, &value_len, a) != CF_OK)
                    goto out;
            }
        }
    }

    st = cf_kafka_produce_sync(h->producer, INTAKE_INPUT_TOPIC, id, strlen(id), value, value_len,
                               ce.headers, CF_CE_HEADER_COUNT, h->produce_timeout_ms, err,
                               sizeof(err));
    if (st != CF_OK) {
        CF_LOG(CF_LOG_WARN, "http_produce_failed", CF_LOG_ID("inquiry_id", id),
               CF_LOG_ERR("reason", err));
        answer_unavailable(a, "the event broker is unavailable");
        goto out;
    }
    (void)snprintf(inquiry_key, sizeof(inquiry_key), INQUIRY_PREFIX "%s", id);
    st = cf_redis_set(h->redis, inquiry_key, "received", 8, INTAKE_HTTP_INQUIRY_TTL_SECONDS, err,
                      sizeof(err));
    if (st != CF_OK) /* delivered all the same: answer 202; a retry is folded by the loop */
        CF_LOG(CF_LOG_WARN, "http_redis_failed", CF_LOG_ID("inquiry_id", id),
               CF_LOG_ERR("reason", err));
    CF_LOG(CF_LOG_INFO, "http_inquiry_accepted", CF_LOG_ID("inquiry_id", id),
           CF_LOG_ID("event_id", ce.id));
    answer_json(a, MHD_HTTP_ACCEPTED,
                json_pack("{s:s, s:s+}", "inquiry_id", id, "status_url", INQUIRIES_PATH "/", id));
    goto out;
nomem:
    a->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
out:
    free(claimed);
    free(value);
    json_decref(copy);
    json_decref(inquiry);
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
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    free(a->body);
    a->body = NULL;
    if (resp == NULL)
        return MHD_NO;
    char retry[16];
    (void)snprintf(retry, sizeof(retry), "%d", INTAKE_HTTP_RETRY_AFTER_SECONDS);
    enum MHD_Result ok =
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
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
    struct answer a = {0};
    if (r->too_big) {
        answer_error(&a, MHD_HTTP_CONTENT_TOO_LARGE, "$", "BODY_TOO_LARGE",
                     "the body is over the size limit");
    } else {
        const char *idem = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
        handle_post(h, idem, r->body != NULL ? r->body : "", r->len, &a);
    }
    return send_answer(conn, &a);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct request *r = *con_cls;
    if (r != NULL) {
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
}

/* ---- Start and stop ---------------------------------------------------------------------- */

cf_status intake_http_start(const struct cf_config *config,
                            const struct intake_journey_scripts *stages, struct intake_http **out,
                            char *errbuf, size_t errlen)
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
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
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

    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "http: out of memory");
    h->config = config;
    h->stages = stages;
    h->max_body = (size_t)cf_config_int(config, "CASEFLOW_INTAKE_HTTP_MAX_BODY");
    h->produce_timeout_ms = (int)cf_config_int(config, "CASEFLOW_INTAKE_HTTP_PRODUCE_TIMEOUT_MS");
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
    /* Checked here, on this thread, before the server thread exists: from then on only that
     * thread touches h. */
    (void)check_ready(h);

    h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, sa,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)NULL,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30, MHD_OPTION_END);
    if (h->daemon == NULL) {
        st = cf_fail(errbuf, errlen, CF_EIO,
                     "http: cannot listen on CASEFLOW_INTAKE_HTTP_BIND "
                     "port %lld: %s",
                     port, strerror(errno));
        goto out;
    }
    CF_LOG(CF_LOG_INFO, "http_listening", CF_LOG_ID("address", bind), CF_LOG_INT("port", port),
           CF_LOG_INT("ready", h->ready));
    *out = h;
    return CF_OK;
out:
    intake_http_stop(h);
    return st;
}

void intake_http_stop(struct intake_http *h)
{
    if (h == NULL)
        return;
    if (h->daemon != NULL)
        MHD_stop_daemon(h->daemon);
    cf_kafka_producer_free(h->producer);
    cf_redis_free(h->redis);
    cf_serde_free(h->serde);
    cf_registry_free(h->registry);
    free(h);
}
