/* kafka.c — librdkafka behind plain structs (see kafka.h).
 *
 * Written against librdkafka 2.0.2 (Debian 12). Things of that version this file works around:
 *   - rd_kafka_seek_partitions() waits timeout_ms *microseconds* (librdkafka #4230, fixed in
 *     2.2.0), so a seek often "times out" while it is still being applied. That is harmless:
 *     the seek bumps the partition's version barrier before returning, and consume_poll drops
 *     every message fetched under an older version, so nothing from before the rewind can
 *     reach the handler. _TIMED_OUT from a seek is therefore accepted.
 *   - rd_kafka_position() does not move past transaction control records (commit markers), so
 *     the offsets a batch commits are tracked from the records themselves (last offset + 1).
 *   - The producer's default is allow.auto.create.topics=true: set to false here, topics are
 *     created with their settings by cf_kafka_create_topics. */
#include "kafka.h"

#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dlq.h"
#include "log.h"

/* Longest blocking poll, so a stop flag is seen within half a second. */
#define POLL_MAX_MS 500
/* Size of librdkafka's error-string buffers. */
#define ERRSTR_MAX 512
/* How often a retriable transactional call (send_offsets, commit, abort) is repeated before
 * the transaction is given up. */
#define CALL_ATTEMPTS 5
/* Kafka's longest topic name is 249 bytes. */
#define TOPIC_MAX 249

/* ---- Small helpers ----------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    /* A signal (SIGTERM) interrupts the sleep; callers sleep in short slices and look at their
     * stop flag between them, so finishing the slice is fine. */
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Sleeps ms, in slices of at most 100 ms, returning early once *stop is set. */
static void pause_ms(int64_t ms, const volatile sig_atomic_t *stop)
{
    int64_t end = mono_ms() + ms;
    while (stop == NULL || !*stop) {
        int64_t left = end - mono_ms();
        if (left <= 0)
            break;
        sleep_ms(left < 100 ? left : 100);
    }
}

static int clamp_timeout(long long ms)
{
    return ms < 0 ? 0 : ms > 3600000 ? 3600000 : (int)ms;
}

static bool name_ok(const char *s, size_t max)
{
    size_t len = 0;
    if (s == NULL)
        return false;
    for (; s[len] != '\0'; len++) {
        char c = s[len];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
        if (len >= max)
            return false;
    }
    return len > 0;
}

/* ---- Error classification ---------------------------------------------------------------- */

/* Codes after which this producer may never write again: another instance with the same
 * transactional.id took over (fenced), or the client is broken. */
static bool fatal_code(int code)
{
    switch (code) {
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR__NOT_CONFIGURED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
        return true;
    default:
        return false;
    }
}

enum cf_kafka_action cf_kafka_status_action(cf_status status)
{
    switch (status) {
    case CF_OK:
        return CF_KAFKA_PROCEED;
    case CF_EDECODE:
    case CF_EINVAL:
    case CF_ESCHEMA:
    case CF_ENOTFOUND:
    case CF_ETOOBIG:
        return CF_KAFKA_DEAD_LETTER;
    case CF_EIO:
    case CF_ETIMEOUT:
    case CF_EKAFKA:
    case CF_ENOMEM:
        return CF_KAFKA_ABORT;
    case CF_ECONFIG:
    case CF_EFATAL:
        return CF_KAFKA_FATAL;
    }
    return CF_KAFKA_FATAL;
}

enum cf_kafka_action cf_kafka_error_action(int code, bool fatal, bool retriable,
                                           bool txn_requires_abort)
{
    if (fatal || fatal_code(code))
        return CF_KAFKA_FATAL;
    if (txn_requires_abort)
        return CF_KAFKA_ABORT;
    if (retriable)
        return CF_KAFKA_RETRY;
    if (code == RD_KAFKA_RESP_ERR_NO_ERROR)
        return CF_KAFKA_PROCEED;
    /* Neither retriable nor abortable: librdkafka's documentation says to treat it as fatal. */
    return CF_KAFKA_FATAL;
}

enum cf_kafka_action cf_kafka_produce_error_action(int code)
{
    switch (code) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return CF_KAFKA_PROCEED;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return CF_KAFKA_RETRY;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return CF_KAFKA_DEAD_LETTER;
    default:
        return fatal_code(code) ? CF_KAFKA_FATAL : CF_KAFKA_ABORT;
    }
}

const char *cf_kafka_action_name(enum cf_kafka_action action)
{
    switch (action) {
    case CF_KAFKA_PROCEED:
        return "proceed";
    case CF_KAFKA_DEAD_LETTER:
        return "dead_letter";
    case CF_KAFKA_RETRY:
        return "retry";
    case CF_KAFKA_ABORT:
        return "abort";
    case CF_KAFKA_FATAL:
        return "fatal";
    }
    return "unknown";
}

/* ---- librdkafka's logs and errors -------------------------------------------------------- */

static const char *client_kind(const rd_kafka_t *rk)
{
    return rd_kafka_type(rk) == RD_KAFKA_PRODUCER ? "producer" : "consumer";
}

/* librdkafka logs with syslog levels (0 emerg … 7 debug). */
static cf_log_level syslog_level(int level)
{
    if (level <= 3)
        return CF_LOG_ERROR;
    if (level == 4)
        return CF_LOG_WARN;
    if (level <= 6)
        return CF_LOG_INFO;
    return CF_LOG_DEBUG;
}

/* Runs on librdkafka's own threads; cf_log_write is thread-safe (one fwrite per line). */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    cf_log_level l = syslog_level(level);
    /* The KAFKA_* variables go to every client a program makes, so a consumer property on a
     * producer ("... is a consumer property and will be ignored by this producer instance")
     * is expected, not worth a warning on every start. */
    if (l == CF_LOG_WARN && strcmp(fac, "CONFWARN") == 0 &&
        strstr(buf, "will be ignored by this") != NULL)
        l = CF_LOG_DEBUG;
    CF_LOG(l, "rdkafka_log", CF_LOG_ID("client", client_kind(rk)), CF_LOG_ID("facility", fac),
           CF_LOG_ERR("message", buf));
}

/* Served by our poll calls. librdkafka recovers from these errors by itself (a broker
 * restarting, a connection lost), so they are logged; the calls that matter report a fatal
 * state again through their own return values. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[ERRSTR_MAX] = "";
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        CF_LOG(CF_LOG_ERROR, "kafka_fatal_error", CF_LOG_ID("client", client_kind(rk)),
               CF_LOG_ID("error", rd_kafka_err2name(orig)), CF_LOG_ERR("reason", fatal));
        return;
    }
    CF_LOG(CF_LOG_WARN, "kafka_error", CF_LOG_ID("client", client_kind(rk)),
           CF_LOG_ID("error", rd_kafka_err2name((rd_kafka_resp_err_t)err)),
           CF_LOG_ERR("reason", reason));
}

/* ---- Configuration ----------------------------------------------------------------------- */

struct kv {
    const char *key;
    const char *value;
};

/* librdkafka's message for a rejected value may quote the value: not for these. */
static bool secret_property(const char *key)
{
    return strstr(key, "password") != NULL || strstr(key, "secret") != NULL ||
           strstr(key, ".pem") != NULL || strstr(key, "oauthbearer.config") != NULL ||
           strstr(key, "jaas") != NULL;
}

static cf_status conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *errbuf,
                          size_t errlen)
{
    char errstr[ERRSTR_MAX] = "";

    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK)
        return CF_OK;
    if (secret_property(key))
        return cf_fail(errbuf, errlen, CF_ECONFIG, "Kafka property %s: value rejected", key);
    return cf_fail(errbuf, errlen, CF_ECONFIG, "Kafka property %s: %s", key, errstr);
}

static const char *kv_find(const struct kv *list, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].key, key) == 0)
            return list[i].value;
    return NULL;
}

/* Builds a librdkafka configuration: our defaults, then the KAFKA_* properties of config
 * (which may change the defaults), then the fixed properties (which they may not). On success
 * *out is the caller's (until rd_kafka_new takes it). */
static cf_status conf_build(const struct cf_config *config, const struct kv *defaults,
                            size_t ndefaults, const struct kv *fixed, size_t nfixed, void *opaque,
                            rd_kafka_conf_t **out, char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *key = NULL;
    const char *value = NULL;

    *out = NULL;
    st = conf_set(conf, "bootstrap.servers", CF_CONFIG_DEFAULT_BOOTSTRAP, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    for (size_t i = 0; i < ndefaults; i++)
        if ((st = conf_set(conf, defaults[i].key, defaults[i].value, errbuf, errlen)) != CF_OK)
            goto out;
    for (size_t i = 0; config != NULL && cf_config_kafka_property(config, i, &key, &value); i++) {
        const char *fixed_value = kv_find(fixed, nfixed, key);
        if (fixed_value != NULL) {
            if (strcmp(fixed_value, value) != 0)
                CF_LOG(CF_LOG_WARN, "kafka_property_ignored", CF_LOG_ID("key", key),
                       CF_LOG_ERR("reason", "caseflow sets this property itself to keep its "
                                            "delivery guarantees"));
            continue;
        }
        if ((st = conf_set(conf, key, value, errbuf, errlen)) != CF_OK)
            goto out;
    }
    for (size_t i = 0; i < nfixed; i++)
        if ((st = conf_set(conf, fixed[i].key, fixed[i].value, errbuf, errlen)) != CF_OK)
            goto out;
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, opaque);
    *out = conf;
    conf = NULL;
out:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return st;
}

/* Creates a client from *conf. rd_kafka_new takes the configuration only on success, so
 * *conf is set to NULL then and left to the caller otherwise. */
static cf_status client_new(rd_kafka_type_t type, rd_kafka_conf_t **conf, rd_kafka_t **out,
                            char *errbuf, size_t errlen)
{
    char errstr[ERRSTR_MAX] = "";
    rd_kafka_t *rk = rd_kafka_new(type, *conf, errstr, sizeof(errstr));

    if (rk == NULL)
        return cf_fail(errbuf, errlen, CF_ECONFIG, "creating the Kafka %s: %s",
                       type == RD_KAFKA_PRODUCER ? "producer" : "consumer", errstr);
    *conf = NULL;
    *out = rk;
    return CF_OK;
}

/* Producer defaults: murmur2 like the Java clients, no auto-created topics. */
static const struct kv producer_defaults[] = {
    {"client.id", "caseflow"},
    {"partitioner", "murmur2_random"},
    {"allow.auto.create.topics", "false"},
};

/* An admin client: a producer that never produces. */
static cf_status admin_new(const struct cf_config *config, rd_kafka_t **out, char *errbuf,
                           size_t errlen)
{
    rd_kafka_conf_t *conf = NULL;
    cf_status st = conf_build(config, producer_defaults,
                              sizeof(producer_defaults) / sizeof(producer_defaults[0]), NULL, 0,
                              NULL, &conf, errbuf, errlen);
    if (st == CF_OK)
        st = client_new(RD_KAFKA_PRODUCER, &conf, out, errbuf, errlen);
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return st;
}

/* ---- Records and headers ----------------------------------------------------------------- */

/* Copies headers into a new librdkafka list (NULL when there are none). */
static rd_kafka_resp_err_t headers_to_rd(const struct cf_header *headers, size_t n,
                                         rd_kafka_headers_t **out)
{
    *out = NULL;
    if (n == 0)
        return RD_KAFKA_RESP_ERR_NO_ERROR;
    if (headers == NULL)
        return RD_KAFKA_RESP_ERR__INVALID_ARG;
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(n);
    for (size_t i = 0; i < n; i++) {
        const struct cf_header *h = &headers[i];
        if (h->name == NULL || (h->value == NULL && h->len > 0) || h->len > (size_t)SSIZE_MAX ||
            rd_kafka_header_add(hdrs, h->name, -1, h->value, (ssize_t)h->len) !=
                RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_headers_destroy(hdrs);
            return RD_KAFKA_RESP_ERR__INVALID_ARG;
        }
    }
    *out = hdrs;
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* Enqueues one message (copied), serving delivery reports while librdkafka's queue is full,
 * for at most timeout_ms. Returns librdkafka's error code. */
static rd_kafka_resp_err_t enqueue(rd_kafka_t *rk, const char *topic, const void *key,
                                   size_t key_len, const void *value, size_t value_len,
                                   const struct cf_header *headers, size_t header_count,
                                   void *msg_opaque, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;

    for (;;) {
        rd_kafka_headers_t *hdrs = NULL;
        rd_kafka_resp_err_t err = headers_to_rd(headers, header_count, &hdrs);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            return err;
        /* The casts drop const only because the macros' type checks want void *: with
         * RD_KAFKA_MSG_F_COPY librdkafka copies and never writes through them. */
        err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                                RD_KAFKA_V_VALUE((void *)value, value_len),
                                RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(msg_opaque),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return err;   /* the message owns hdrs now */
        if (hdrs != NULL) /* not NULL-safe in 2.0.2 */
            rd_kafka_headers_destroy(hdrs);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || mono_ms() >= deadline)
            return err;
        (void)rd_kafka_poll(rk, 100);
    }
}

/* Fills the record view of message m; header views go into *scratch (grown as needed, the
 * caller frees it). The view borrows from m. CF_EDECODE if the headers cannot be parsed. */
static cf_status record_view(const rd_kafka_message_t *m, struct cf_header **scratch, size_t *cap,
                             struct cf_kafka_record *rec)
{
    rd_kafka_headers_t *hdrs = NULL;
    size_t n = 0;
    rd_kafka_resp_err_t err = rd_kafka_message_headers(m, &hdrs);

    memset(rec, 0, sizeof(*rec));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        n = rd_kafka_header_cnt(hdrs);
    else if (err != RD_KAFKA_RESP_ERR__NOENT)
        return CF_EDECODE;
    if (n > *cap) {
        struct cf_header *grown = realloc(*scratch, n * sizeof(**scratch));
        if (grown == NULL)
            return CF_ENOMEM;
        *scratch = grown;
        *cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL;
        const void *value = NULL;
        size_t size = 0;
        if (rd_kafka_header_get_all(hdrs, i, &name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
            return CF_EDECODE;
        (*scratch)[i] = (struct cf_header){name, value, value != NULL ? size : 0};
    }
    rec->topic = rd_kafka_topic_name(m->rkt);
    rec->partition = m->partition;
    rec->offset = m->offset;
    rec->key = m->key;
    rec->key_len = m->key != NULL ? m->key_len : 0;
    rec->value = m->payload;
    rec->value_len = m->payload != NULL ? m->len : 0;
    rec->headers = n > 0 ? *scratch : NULL;
    rec->header_count = n;
    rec->timestamp_ms = rd_kafka_message_timestamp(m, NULL);
    return CF_OK;
}

/* How long an unknown topic is asked about again: a topic created a moment ago takes a few
 * milliseconds to reach every broker's metadata. */
#define UNKNOWN_TOPIC_GRACE_MS 1000

/* Metadata of one topic, retried while it is still propagating or the cluster is not
 * reachable yet, for at most timeout_ms. On success *out is the caller's, freed with
 * rd_kafka_metadata_destroy. */
static rd_kafka_resp_err_t topic_metadata(rd_kafka_t *rk, const char *topic, int timeout_ms,
                                          const struct rd_kafka_metadata **out)
{
    int64_t start = mono_ms();
    int64_t deadline = start + timeout_ms;
    rd_kafka_resp_err_t err;

    *out = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rkt == NULL)
        return rd_kafka_last_error();
    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        int64_t left = deadline - mono_ms();
        err = rd_kafka_metadata(rk, 0, rkt, &md, clamp_timeout(left > 100 ? left : 100));
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt != 1)
                err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
            else if (md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
                err = md->topics[0].err;
            else if (md->topics[0].partition_cnt <= 0)
                err = RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE;
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                *out = md;
                break;
            }
            rd_kafka_metadata_destroy(md);
        }
        if (mono_ms() + 100 >= deadline || (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
                                            mono_ms() - start >= UNKNOWN_TOPIC_GRACE_MS))
            break;
        sleep_ms(100);
    }
    rd_kafka_topic_destroy(rkt);
    return err;
}

/* librdkafka 2.0.2 looks up a topic it has not seen before only on its once-a-second topic
 * scan, so the first record to each new topic waits up to a second (but the very first one,
 * which rides on the bootstrap metadata request). Asking for the topic's metadata first takes
 * a few milliseconds; a producer remembers up to this many topics it asked about. */
#define KNOWN_TOPICS_MAX 64

struct known_topics {
    char *names[KNOWN_TOPICS_MAX];
    size_t n;
};

/* Makes sure rk has the topic's metadata before its first record. Failures are left to the
 * produce call to report. */
static void known_topic(rd_kafka_t *rk, struct known_topics *known, const char *topic,
                        int timeout_ms)
{
    for (size_t i = 0; i < known->n; i++)
        if (strcmp(known->names[i], topic) == 0)
            return;
    if (known->n == KNOWN_TOPICS_MAX)
        return;
    const struct rd_kafka_metadata *md = NULL;
    if (topic_metadata(rk, topic, timeout_ms, &md) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    rd_kafka_metadata_destroy(md);
    size_t len = strlen(topic) + 1;
    char *copy = malloc(len);
    if (copy == NULL)
        return;
    memcpy(copy, topic, len);
    known->names[known->n++] = copy;
}

static void known_topics_clear(struct known_topics *known)
{
    for (size_t i = 0; i < known->n; i++)
        free(known->names[i]);
    known->n = 0;
}

/* ---- Producer ---------------------------------------------------------------------------- */

struct cf_kafka_producer {
    rd_kafka_t *rk;
    bool transactional;
    /* cf_kafka_produce_sync tags its message with a sequence number; the delivery report with
     * the awaited number ends the wait. Reports run on our own thread (poll/flush). */
    uint64_t next_seq;
    uint64_t wait_seq;
    bool wait_done;
    rd_kafka_resp_err_t wait_err;
    /* Asynchronous failures since the last flush. */
    size_t failed;
    rd_kafka_resp_err_t first_err;
    struct known_topics known;
};

static void producer_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct cf_kafka_producer *p = opaque;
    uint64_t seq = (uint64_t)(uintptr_t)m->_private;

    (void)rk;
    if (seq != 0 && seq == p->wait_seq) {
        p->wait_done = true;
        p->wait_err = m->err;
        return;
    }
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (seq == 0 && p->failed++ == 0)
        p->first_err = m->err;
    CF_LOG(CF_LOG_WARN, "kafka_delivery_failed", CF_LOG_ID("topic", rd_kafka_topic_name(m->rkt)),
           CF_LOG_INT("partition", m->partition), CF_LOG_ID("error", rd_kafka_err2name(m->err)),
           CF_LOG_ERR("reason", rd_kafka_err2str(m->err)));
}

/* CF_EFATAL with the fatal reason if the client has raised a fatal error, else st. */
static cf_status check_fatal(rd_kafka_t *rk, cf_status st, char *errbuf, size_t errlen)
{
    char fatal[ERRSTR_MAX] = "";
    rd_kafka_resp_err_t err = rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return st;
    return cf_fail(errbuf, errlen, CF_EFATAL, "Kafka client failed: %s: %s", rd_kafka_err2name(err),
                   fatal);
}

cf_status cf_kafka_producer_new(const struct cf_config *config, const char *transactional_id,
                                int timeout_ms, struct cf_kafka_producer **out, char *errbuf,
                                size_t errlen)
{
    cf_status st = CF_OK;
    rd_kafka_conf_t *conf = NULL;
    struct cf_kafka_producer *p = NULL;
    struct kv fixed[3] = {{"enable.idempotence", "true"}, {"acks", "all"}, {NULL, NULL}};
    size_t nfixed = 2;

    if (out == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "producer: no output pointer");
    *out = NULL;
    if (transactional_id != NULL) {
        if (!name_ok(transactional_id, 255))
            return cf_fail(errbuf, errlen, CF_EINVAL,
                           "producer: transactional id must be [A-Za-z0-9._-]");
        fixed[nfixed++] = (struct kv){"transactional.id", transactional_id};
    }
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "producer: out of memory");
    p->transactional = transactional_id != NULL;
    st = conf_build(config, producer_defaults,
                    sizeof(producer_defaults) / sizeof(producer_defaults[0]), fixed, nfixed, p,
                    &conf, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    rd_kafka_conf_set_dr_msg_cb(conf, producer_dr_cb);
    if ((st = client_new(RD_KAFKA_PRODUCER, &conf, &p->rk, errbuf, errlen)) != CF_OK)
        goto out;
    if (p->transactional) {
        rd_kafka_error_t *error = rd_kafka_init_transactions(p->rk, timeout_ms);
        if (error != NULL) {
            st = cf_fail(errbuf, errlen,
                         rd_kafka_error_is_fatal(error)       ? CF_EFATAL
                         : rd_kafka_error_is_retriable(error) ? CF_ETIMEOUT
                                                              : CF_EKAFKA,
                         "init_transactions: %s: %s", rd_kafka_error_name(error),
                         rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
            goto out;
        }
    }
    *out = p;
    p = NULL;
out:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    if (p != NULL) {
        if (p->rk != NULL)
            rd_kafka_destroy(p->rk);
        free(p);
    }
    return st;
}

static cf_status produce_failed(struct cf_kafka_producer *p, const char *topic,
                                rd_kafka_resp_err_t err, char *errbuf, size_t errlen)
{
    cf_status st =
        cf_fail(errbuf, errlen, CF_EKAFKA, "producing to %s: %s", topic, rd_kafka_err2str(err));
    return check_fatal(p->rk, st, errbuf, errlen);
}

cf_status cf_kafka_produce(struct cf_kafka_producer *producer, const char *topic, const void *key,
                           size_t key_len, const void *value, size_t value_len,
                           const struct cf_header *headers, size_t header_count, char *errbuf,
                           size_t errlen)
{
    if (producer == NULL || topic == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "produce: no producer or topic");
    known_topic(producer->rk, &producer->known, topic, 10000);
    rd_kafka_resp_err_t err = enqueue(producer->rk, topic, key, key_len, value, value_len, headers,
                                      header_count, NULL, 60000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return produce_failed(producer, topic, err, errbuf, errlen);
    (void)rd_kafka_poll(producer->rk, 0);
    return CF_OK;
}

cf_status cf_kafka_producer_flush(struct cf_kafka_producer *producer, int timeout_ms, char *errbuf,
                                  size_t errlen)
{
    cf_status st = CF_OK;

    if (producer == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "flush: no producer");
    rd_kafka_resp_err_t err = rd_kafka_flush(producer->rk, timeout_ms);
    if (producer->failed > 0)
        st = cf_fail(errbuf, errlen, CF_EKAFKA, "%zu record(s) not delivered, the first: %s",
                     producer->failed, rd_kafka_err2str(producer->first_err));
    else if (err == RD_KAFKA_RESP_ERR__TIMED_OUT)
        st = cf_fail(errbuf, errlen, CF_ETIMEOUT, "%d record(s) still undelivered after %d ms",
                     rd_kafka_outq_len(producer->rk), timeout_ms);
    producer->failed = 0;
    producer->first_err = RD_KAFKA_RESP_ERR_NO_ERROR;
    return check_fatal(producer->rk, st, errbuf, errlen);
}

cf_status cf_kafka_produce_sync(struct cf_kafka_producer *producer, const char *topic,
                                const void *key, size_t key_len, const void *value,
                                size_t value_len, const struct cf_header *headers,
                                size_t header_count, int timeout_ms, char *errbuf, size_t errlen)
{
    if (producer == NULL || topic == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "produce: no producer or topic");
    int64_t deadline = mono_ms() + timeout_ms;
    known_topic(producer->rk, &producer->known, topic, timeout_ms);
    uint64_t seq = ++producer->next_seq;
    producer->wait_seq = seq;
    producer->wait_done = false;
    rd_kafka_resp_err_t err = enqueue(producer->rk, topic, key, key_len, value, value_len, headers,
                                      header_count, (void *)(uintptr_t)seq, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        producer->wait_seq = 0;
        return produce_failed(producer, topic, err, errbuf, errlen);
    }
    while (!producer->wait_done) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            break;
        /* flush serves delivery reports and returns as soon as the queue is empty. */
        (void)rd_kafka_flush(producer->rk, (int)(left < POLL_MAX_MS ? left : POLL_MAX_MS));
    }
    producer->wait_seq = 0; /* a late report for this record is only logged */
    if (!producer->wait_done)
        return check_fatal(producer->rk,
                           cf_fail(errbuf, errlen, CF_ETIMEOUT,
                                   "producing to %s: no delivery report within %d ms", topic,
                                   timeout_ms),
                           errbuf, errlen);
    if (producer->wait_err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return produce_failed(producer, topic, producer->wait_err, errbuf, errlen);
    return CF_OK;
}

static cf_status producer_txn_result(struct cf_kafka_producer *producer, const char *what,
                                     rd_kafka_error_t *error, char *errbuf, size_t errlen)
{
    if (error == NULL)
        return CF_OK;
    enum cf_kafka_action a = cf_kafka_error_action(
        rd_kafka_error_code(error), rd_kafka_error_is_fatal(error),
        rd_kafka_error_is_retriable(error), rd_kafka_error_txn_requires_abort(error));
    cf_status st =
        cf_fail(errbuf, errlen,
                a == CF_KAFKA_FATAL   ? CF_EFATAL
                : a == CF_KAFKA_RETRY ? CF_ETIMEOUT
                                      : CF_EKAFKA,
                "%s: %s: %s", what, rd_kafka_error_name(error), rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
    return st == CF_EFATAL ? st : check_fatal(producer->rk, st, errbuf, errlen);
}

cf_status cf_kafka_producer_begin(struct cf_kafka_producer *producer, char *errbuf, size_t errlen)
{
    if (producer == NULL || !producer->transactional)
        return cf_fail(errbuf, errlen, CF_EINVAL, "begin: not a transactional producer");
    return producer_txn_result(producer, "begin_transaction",
                               rd_kafka_begin_transaction(producer->rk), errbuf, errlen);
}

cf_status cf_kafka_producer_commit(struct cf_kafka_producer *producer, char *errbuf, size_t errlen)
{
    if (producer == NULL || !producer->transactional)
        return cf_fail(errbuf, errlen, CF_EINVAL, "commit: not a transactional producer");
    return producer_txn_result(producer, "commit_transaction",
                               rd_kafka_commit_transaction(producer->rk, -1), errbuf, errlen);
}

cf_status cf_kafka_producer_abort(struct cf_kafka_producer *producer, char *errbuf, size_t errlen)
{
    if (producer == NULL || !producer->transactional)
        return cf_fail(errbuf, errlen, CF_EINVAL, "abort: not a transactional producer");
    return producer_txn_result(producer, "abort_transaction",
                               rd_kafka_abort_transaction(producer->rk, -1), errbuf, errlen);
}

void cf_kafka_producer_free(struct cf_kafka_producer *producer)
{
    if (producer == NULL)
        return;
    if (rd_kafka_flush(producer->rk, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        CF_LOG(CF_LOG_WARN, "kafka_producer_closed_with_undelivered",
               CF_LOG_INT("records", rd_kafka_outq_len(producer->rk)));
    rd_kafka_destroy(producer->rk);
    known_topics_clear(&producer->known);
    free(producer);
}

/* ---- Rebalances -------------------------------------------------------------------------- */

static void log_partitions(cf_log_level level, const char *what,
                           const rd_kafka_topic_partition_list_t *parts)
{
    if (!cf_log_enabled(level))
        return;
    for (int i = 0; i < parts->cnt; i++)
        CF_LOG(level, "partition_rebalanced", CF_LOG_ID("change", what),
               CF_LOG_ID("topic", parts->elems[i].topic),
               CF_LOG_INT("partition", parts->elems[i].partition));
}

/* Applies a rebalance event as the group's protocol requires: incremental (un)assignment for
 * cooperative-sticky, whole assignments for the eager assignors. Returns false if librdkafka
 * refused, which leaves the assignment unknown. */
static bool apply_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts)
{
    const char *protocol = rd_kafka_rebalance_protocol(rk);
    bool cooperative = protocol != NULL && strcmp(protocol, "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_partitions(CF_LOG_INFO, "assigned", parts);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        log_partitions(CF_LOG_INFO, rd_kafka_assignment_lost(rk) ? "lost" : "revoked", parts);
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, NULL);
    } else {
        /* librdkafka's contract for a failed rebalance: drop the whole assignment. */
        CF_LOG(CF_LOG_ERROR, "rebalance_failed", CF_LOG_ID("error", rd_kafka_err2name(err)));
        aerr = rd_kafka_assign(rk, NULL);
    }
    if (error != NULL) {
        CF_LOG(CF_LOG_ERROR, "rebalance_apply_failed",
               CF_LOG_ID("error", rd_kafka_error_name(error)),
               CF_LOG_ERR("reason", rd_kafka_error_string(error)));
        rd_kafka_error_destroy(error);
        return false;
    }
    if (aerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        CF_LOG(CF_LOG_ERROR, "rebalance_apply_failed", CF_LOG_ID("error", rd_kafka_err2name(aerr)),
               CF_LOG_ERR("reason", rd_kafka_err2str(aerr)));
        return false;
    }
    return true;
}

static int64_t assignment_size(rd_kafka_t *rk)
{
    rd_kafka_topic_partition_list_t *assigned = NULL;
    int64_t n = 0;
    if (rd_kafka_assignment(rk, &assigned) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        n = assigned->cnt;
        rd_kafka_topic_partition_list_destroy(assigned);
    }
    return n;
}

/* ---- Consumer ---------------------------------------------------------------------------- */

struct cf_kafka_consumer {
    rd_kafka_t *rk;
    bool grouped;
    bool closed;
    bool broken; /* a rebalance could not be applied */
};

/* What cf_kafka_consumer_poll hands out: the view first, so release can find the rest. */
struct record_box {
    struct cf_kafka_record record;
    rd_kafka_message_t *msg;
    struct cf_header *headers;
};

static void consumer_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                  rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct cf_kafka_consumer *c = opaque;
    if (!apply_rebalance(rk, err, parts))
        c->broken = true;
}

/* Assigns every partition of topics, starting at offset (BEGINNING or END). */
static cf_status assign_all(rd_kafka_t *rk, const char *const *topics, size_t ntopics,
                            int64_t offset, int timeout_ms, char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);

    for (size_t i = 0; i < ntopics; i++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = topic_metadata(rk, topics[i], timeout_ms, &md);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            st = cf_fail(errbuf, errlen,
                         err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? CF_ENOTFOUND : CF_EKAFKA,
                         "topic %s: %s", topics[i], rd_kafka_err2str(err));
            goto out;
        }
        for (int p = 0; p < md->topics[0].partition_cnt; p++)
            rd_kafka_topic_partition_list_add(list, topics[i], md->topics[0].partitions[p].id)
                ->offset = offset;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(rk, list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        st = cf_fail(errbuf, errlen, CF_EKAFKA, "assigning partitions: %s", rd_kafka_err2str(err));
out:
    rd_kafka_topic_partition_list_destroy(list);
    return st;
}

static rd_kafka_topic_partition_list_t *topic_list(const char *const *topics, size_t ntopics)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)ntopics);
    for (size_t i = 0; i < ntopics; i++)
        rd_kafka_topic_partition_list_add(list, topics[i], RD_KAFKA_PARTITION_UA);
    return list;
}

static cf_status check_topics(const char *const *topics, size_t ntopics, char *errbuf,
                              size_t errlen)
{
    if (topics == NULL || ntopics == 0 || ntopics > 1000)
        return cf_fail(errbuf, errlen, CF_EINVAL, "consumer: 1 to 1000 topics are needed");
    for (size_t i = 0; i < ntopics; i++)
        if (!name_ok(topics[i], TOPIC_MAX))
            return cf_fail(errbuf, errlen, CF_EINVAL,
                           "consumer: topic #%zu is not a valid topic name", i + 1);
    return CF_OK;
}

cf_status cf_kafka_consumer_new(const struct cf_config *config, const char *group_id,
                                const char *const *topics, size_t ntopics,
                                const struct cf_kafka_consumer_options *options,
                                struct cf_kafka_consumer **out, char *errbuf, size_t errlen)
{
    static const struct cf_kafka_consumer_options defaults = {false, false, NULL};
    cf_status st = CF_OK;
    rd_kafka_conf_t *conf = NULL;
    struct cf_kafka_consumer *c = NULL;
    rd_kafka_topic_partition_list_t *subscription = NULL;
    char private_group[96];

    if (out == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "consumer: no output pointer");
    *out = NULL;
    if (options == NULL)
        options = &defaults;
    const char *reset = options->offset_reset != NULL ? options->offset_reset : "earliest";
    if (strcmp(reset, "earliest") != 0 && strcmp(reset, "latest") != 0)
        return cf_fail(errbuf, errlen, CF_EINVAL,
                       "consumer: offset reset must be \"earliest\" or \"latest\"");
    if ((st = check_topics(topics, ntopics, errbuf, errlen)) != CF_OK)
        return st;
    if (group_id != NULL && (group_id[0] == '\0' || strlen(group_id) > 255))
        return cf_fail(errbuf, errlen, CF_EINVAL, "consumer: group id must be 1 to 255 bytes");
    if (group_id == NULL) {
        /* librdkafka's consumer_poll needs a group.id even for a plain assign(); this one is
         * never joined and never committed to, so no group appears on the broker. */
        (void)snprintf(private_group, sizeof(private_group), "caseflow-private-%ld-%" PRId64,
                       (long)getpid(), wall_ms());
    }
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "consumer: out of memory");
    c->grouped = group_id != NULL;

    const struct kv defaults_kv[] = {
        {"client.id", "caseflow"},
        {"auto.offset.reset", reset},
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"allow.auto.create.topics", "false"},
    };
    const struct kv fixed[] = {
        {"group.id", group_id != NULL ? group_id : private_group},
        {"isolation.level", options->read_uncommitted ? "read_uncommitted" : "read_committed"},
        {"enable.auto.commit", options->auto_commit && group_id != NULL ? "true" : "false"},
    };
    st = conf_build(config, defaults_kv, sizeof(defaults_kv) / sizeof(defaults_kv[0]), fixed,
                    sizeof(fixed) / sizeof(fixed[0]), c, &conf, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    rd_kafka_conf_set_rebalance_cb(conf, consumer_rebalance_cb);
    if ((st = client_new(RD_KAFKA_CONSUMER, &conf, &c->rk, errbuf, errlen)) != CF_OK)
        goto out;
    /* One queue for messages, rebalances, errors and logs, served by consumer_poll. */
    rd_kafka_resp_err_t err = rd_kafka_poll_set_consumer(c->rk);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        st = cf_fail(errbuf, errlen, CF_EKAFKA, "consumer: %s", rd_kafka_err2str(err));
        goto out;
    }
    if (c->grouped) {
        subscription = topic_list(topics, ntopics);
        err = rd_kafka_subscribe(c->rk, subscription);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            st = cf_fail(errbuf, errlen, CF_EKAFKA, "subscribing: %s", rd_kafka_err2str(err));
            goto out;
        }
    } else {
        st = assign_all(c->rk, topics, ntopics,
                        strcmp(reset, "latest") == 0 ? RD_KAFKA_OFFSET_END
                                                     : RD_KAFKA_OFFSET_BEGINNING,
                        30000, errbuf, errlen);
        if (st != CF_OK)
            goto out;
    }
    *out = c;
    c = NULL;
out:
    if (subscription != NULL)
        rd_kafka_topic_partition_list_destroy(subscription);
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    if (c != NULL) {
        if (c->rk != NULL) {
            (void)rd_kafka_consumer_close(c->rk);
            rd_kafka_destroy(c->rk);
        }
        free(c);
    }
    return st;
}

cf_status cf_kafka_consumer_poll(struct cf_kafka_consumer *consumer, int timeout_ms,
                                 struct cf_kafka_record **out, char *errbuf, size_t errlen)
{
    struct record_box *box = NULL;
    size_t cap = 0;
    cf_status st;

    if (consumer == NULL || out == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "poll: no consumer or output pointer");
    *out = NULL;
    if (consumer->broken)
        return cf_fail(errbuf, errlen, CF_EFATAL, "poll: a rebalance could not be applied");
    rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer->rk, timeout_ms);
    if (consumer->broken) {
        if (m != NULL)
            rd_kafka_message_destroy(m);
        return cf_fail(errbuf, errlen, CF_EFATAL, "poll: a rebalance could not be applied");
    }
    if (m == NULL)
        return CF_ETIMEOUT;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *topic = m->rkt != NULL ? rd_kafka_topic_name(m->rkt) : "";
        st = cf_fail(errbuf, errlen, m->err == RD_KAFKA_RESP_ERR__FATAL ? CF_EFATAL : CF_EKAFKA,
                     "consumer: %s%s%s", topic, topic[0] != '\0' ? ": " : "",
                     rd_kafka_message_errstr(m));
        CF_LOG(st == CF_EFATAL ? CF_LOG_ERROR : CF_LOG_WARN, "kafka_consumer_error",
               CF_LOG_ID("topic", topic[0] != '\0' ? topic : "-"),
               CF_LOG_INT("partition", m->partition), CF_LOG_ID("error", rd_kafka_err2name(m->err)),
               CF_LOG_ERR("reason", rd_kafka_message_errstr(m)));
        rd_kafka_message_destroy(m);
        return st == CF_EFATAL ? check_fatal(consumer->rk, st, errbuf, errlen) : st;
    }
    if ((box = calloc(1, sizeof(*box))) == NULL) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "poll: out of memory");
        goto fail;
    }
    box->msg = m;
    st = record_view(m, &box->headers, &cap, &box->record);
    if (st != CF_OK) {
        (void)cf_fail(errbuf, errlen, st, "poll: %s [%" PRId32 "] offset %" PRId64 ": %s",
                      rd_kafka_topic_name(m->rkt), m->partition, m->offset,
                      st == CF_ENOMEM ? "out of memory" : "headers cannot be parsed");
        goto fail;
    }
    *out = &box->record;
    return CF_OK;
fail:
    if (box != NULL) {
        free(box->headers);
        free(box);
    }
    rd_kafka_message_destroy(m);
    return st;
}

void cf_kafka_record_release(struct cf_kafka_record *record)
{
    if (record == NULL)
        return;
    struct record_box *box = (struct record_box *)record;
    rd_kafka_message_destroy(box->msg);
    free(box->headers);
    free(box);
}

cf_status cf_kafka_consumer_commit(struct cf_kafka_consumer *consumer, char *errbuf, size_t errlen)
{
    if (consumer == NULL || !consumer->grouped)
        return cf_fail(errbuf, errlen, CF_EINVAL, "commit: not a group consumer");
    rd_kafka_resp_err_t err = rd_kafka_commit(consumer->rk, NULL, 0);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return CF_OK;
    return check_fatal(consumer->rk,
                       cf_fail(errbuf, errlen, CF_EKAFKA, "commit: %s", rd_kafka_err2str(err)),
                       errbuf, errlen);
}

void cf_kafka_consumer_free(struct cf_kafka_consumer *consumer)
{
    if (consumer == NULL)
        return;
    if (!consumer->closed) {
        rd_kafka_resp_err_t err = rd_kafka_consumer_close(consumer->rk);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            CF_LOG(CF_LOG_WARN, "kafka_consumer_close_failed",
                   CF_LOG_ID("error", rd_kafka_err2name(err)));
    }
    rd_kafka_destroy(consumer->rk);
    free(consumer);
}

/* ---- Administration ---------------------------------------------------------------------- */

static cf_status check_spec(const struct cf_topic_spec *s, char *errbuf, size_t errlen)
{
    if (!name_ok(s->name, TOPIC_MAX))
        return cf_fail(errbuf, errlen, CF_EINVAL, "topic name must be 1 to 249 [A-Za-z0-9._-]");
    if (s->partitions == 0 || s->partitions < -1 || s->partitions > 100000)
        return cf_fail(errbuf, errlen, CF_EINVAL, "topic %s: partitions must be 1..100000 or -1",
                       s->name);
    if (s->replication_factor == 0 || s->replication_factor < -1 || s->replication_factor > 32)
        return cf_fail(errbuf, errlen, CF_EINVAL,
                       "topic %s: replication factor must be 1..32 or -1", s->name);
    if (s->cleanup_policy != NULL && strcmp(s->cleanup_policy, "delete") != 0 &&
        strcmp(s->cleanup_policy, "compact") != 0 &&
        strcmp(s->cleanup_policy, "compact,delete") != 0)
        return cf_fail(errbuf, errlen, CF_EINVAL,
                       "topic %s: cleanup policy must be delete, compact or compact,delete",
                       s->name);
    if (s->retention_ms < -1)
        return cf_fail(errbuf, errlen, CF_EINVAL, "topic %s: retention must be > 0, -1 or 0",
                       s->name);
    return CF_OK;
}

/* Waits for the result event of an admin request; the request has its own timeout, so a
 * result always comes unless the cluster stops answering entirely. */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *queue, int timeout_ms)
{
    return rd_kafka_queue_poll(queue, timeout_ms + 5000);
}

static cf_status admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op, int timeout_ms,
                               rd_kafka_AdminOptions_t **out, char *errbuf, size_t errlen)
{
    char errstr[ERRSTR_MAX] = "";
    rd_kafka_AdminOptions_t *options = rd_kafka_AdminOptions_new(rk, op);

    *out = NULL;
    if (options == NULL)
        return cf_fail(errbuf, errlen, CF_EKAFKA, "admin options: unknown operation");
    if (rd_kafka_AdminOptions_set_request_timeout(options, timeout_ms, errstr, sizeof(errstr)) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        (op == RD_KAFKA_ADMIN_OP_CREATETOPICS &&
         rd_kafka_AdminOptions_set_operation_timeout(options, timeout_ms, errstr, sizeof(errstr)) !=
             RD_KAFKA_RESP_ERR_NO_ERROR)) {
        rd_kafka_AdminOptions_destroy(options);
        return cf_fail(errbuf, errlen, CF_EINVAL, "admin options: %s", errstr);
    }
    *out = options;
    return CF_OK;
}

cf_status cf_kafka_create_topics(const struct cf_config *config, const struct cf_topic_spec *specs,
                                 size_t n, int timeout_ms, char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    rd_kafka_t *rk = NULL;
    rd_kafka_NewTopic_t **topics = NULL;
    size_t ntopics = 0;
    rd_kafka_AdminOptions_t *options = NULL;
    rd_kafka_queue_t *queue = NULL;
    rd_kafka_event_t *ev = NULL;
    char errstr[ERRSTR_MAX] = "";

    if (specs == NULL || n == 0 || n > 10000)
        return cf_fail(errbuf, errlen, CF_EINVAL, "create topics: 1 to 10000 specs are needed");
    for (size_t i = 0; i < n; i++)
        if ((st = check_spec(&specs[i], errbuf, errlen)) != CF_OK)
            return st;
    if ((topics = calloc(n, sizeof(*topics))) == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "create topics: out of memory");
    if ((st = admin_new(config, &rk, errbuf, errlen)) != CF_OK)
        goto out;
    for (; ntopics < n; ntopics++) {
        const struct cf_topic_spec *s = &specs[ntopics];
        char retention[24];
        rd_kafka_NewTopic_t *t = rd_kafka_NewTopic_new(
            s->name, s->partitions, s->replication_factor, errstr, sizeof(errstr));
        if (t == NULL) {
            st = cf_fail(errbuf, errlen, CF_EINVAL, "topic %s: %s", s->name, errstr);
            goto out;
        }
        topics[ntopics] = t;
        if (s->cleanup_policy != NULL &&
            rd_kafka_NewTopic_set_config(t, "cleanup.policy", s->cleanup_policy) !=
                RD_KAFKA_RESP_ERR_NO_ERROR) {
            st = cf_fail(errbuf, errlen, CF_EINVAL, "topic %s: cleanup.policy rejected", s->name);
            goto out;
        }
        if (s->retention_ms != 0) {
            (void)snprintf(retention, sizeof(retention), "%" PRId64, s->retention_ms);
            if (rd_kafka_NewTopic_set_config(t, "retention.ms", retention) !=
                RD_KAFKA_RESP_ERR_NO_ERROR) {
                st = cf_fail(errbuf, errlen, CF_EINVAL, "topic %s: retention.ms rejected", s->name);
                goto out;
            }
        }
    }
    if ((st = admin_options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms, &options, errbuf,
                            errlen)) != CF_OK)
        goto out;
    queue = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, topics, ntopics, options, queue);
    if ((ev = admin_wait(queue, timeout_ms)) == NULL) {
        st = cf_fail(errbuf, errlen, CF_ETIMEOUT, "create topics: no answer within %d ms",
                     timeout_ms);
        goto out;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        st = cf_fail(errbuf, errlen,
                     rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR__TIMED_OUT ? CF_ETIMEOUT
                                                                              : CF_EKAFKA,
                     "create topics: %s", rd_kafka_event_error_string(ev));
        goto out;
    }
    size_t cnt = 0;
    const rd_kafka_topic_result_t **results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
        const char *name = rd_kafka_topic_result_name(results[i]);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            CF_LOG(CF_LOG_INFO, "topic_created", CF_LOG_ID("topic", name));
        } else if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            CF_LOG(CF_LOG_DEBUG, "topic_exists", CF_LOG_ID("topic", name));
        } else {
            const char *reason = rd_kafka_topic_result_error_string(results[i]);
            CF_LOG(CF_LOG_ERROR, "topic_create_failed", CF_LOG_ID("topic", name),
                   CF_LOG_ID("error", rd_kafka_err2name(err)),
                   CF_LOG_ERR("reason", reason != NULL ? reason : rd_kafka_err2str(err)));
            if (st == CF_OK)
                st = cf_fail(errbuf, errlen,
                             err == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT ? CF_ETIMEOUT : CF_EKAFKA,
                             "topic %s: %s", name, reason != NULL ? reason : rd_kafka_err2str(err));
        }
    }
    if (st == CF_OK && cnt != n)
        st =
            cf_fail(errbuf, errlen, CF_EKAFKA, "create topics: %zu results for %zu topics", cnt, n);
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (queue != NULL)
        rd_kafka_queue_destroy(queue);
    if (options != NULL)
        rd_kafka_AdminOptions_destroy(options);
    if (topics != NULL) {
        rd_kafka_NewTopic_destroy_array(topics, ntopics);
        free(topics);
    }
    if (rk != NULL)
        rd_kafka_destroy(rk);
    return st;
}

cf_status cf_kafka_describe_topic(const struct cf_config *config, const char *topic, int timeout_ms,
                                  struct cf_topic_info *out, char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    rd_kafka_t *rk = NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_ConfigResource_t *resource = NULL;
    rd_kafka_AdminOptions_t *options = NULL;
    rd_kafka_queue_t *queue = NULL;
    rd_kafka_event_t *ev = NULL;

    if (out == NULL || !name_ok(topic, TOPIC_MAX))
        return cf_fail(errbuf, errlen, CF_EINVAL, "describe topic: bad topic name or output");
    memset(out, 0, sizeof(*out));
    if ((st = admin_new(config, &rk, errbuf, errlen)) != CF_OK)
        goto out;
    rd_kafka_resp_err_t err = topic_metadata(rk, topic, timeout_ms, &md);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        st = cf_fail(errbuf, errlen,
                     err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? CF_ENOTFOUND : CF_EKAFKA,
                     "topic %s: %s", topic, rd_kafka_err2str(err));
        goto out;
    }
    out->partitions = md->topics[0].partition_cnt;
    for (int p = 0; p < md->topics[0].partition_cnt; p++)
        if (md->topics[0].partitions[p].id == 0)
            out->replication_factor = md->topics[0].partitions[p].replica_cnt;

    resource = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    if ((st = admin_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout_ms, &options, errbuf,
                            errlen)) != CF_OK)
        goto out;
    queue = rd_kafka_queue_new(rk);
    rd_kafka_DescribeConfigs(rk, &resource, 1, options, queue);
    if ((ev = admin_wait(queue, timeout_ms)) == NULL) {
        st = cf_fail(errbuf, errlen, CF_ETIMEOUT, "describe %s: no answer", topic);
        goto out;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        st = cf_fail(errbuf, errlen, CF_EKAFKA, "describe %s: %s", topic,
                     rd_kafka_event_error_string(ev));
        goto out;
    }
    size_t nres = 0;
    const rd_kafka_ConfigResource_t **res =
        rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &nres);
    if (nres != 1 || rd_kafka_ConfigResource_error(res[0]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        st = cf_fail(errbuf, errlen, CF_EKAFKA, "describe %s: %s", topic,
                     nres == 1 ? rd_kafka_ConfigResource_error_string(res[0]) : "no result");
        goto out;
    }
    size_t nentries = 0;
    const rd_kafka_ConfigEntry_t **entries = rd_kafka_ConfigResource_configs(res[0], &nentries);
    out->retention_ms = 0;
    for (size_t i = 0; i < nentries; i++) {
        const char *name = rd_kafka_ConfigEntry_name(entries[i]);
        const char *value = rd_kafka_ConfigEntry_value(entries[i]);
        if (name == NULL || value == NULL)
            continue;
        if (strcmp(name, "cleanup.policy") == 0)
            (void)snprintf(out->cleanup_policy, sizeof(out->cleanup_policy), "%s", value);
        else if (strcmp(name, "retention.ms") == 0)
            out->retention_ms = strtoll(value, NULL, 10);
    }
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (queue != NULL)
        rd_kafka_queue_destroy(queue);
    if (options != NULL)
        rd_kafka_AdminOptions_destroy(options);
    if (resource != NULL)
        rd_kafka_ConfigResource_destroy(resource);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rk != NULL)
        rd_kafka_destroy(rk);
    return st;
}

cf_status cf_kafka_group_progress(const struct cf_config *config, const char *group_id,
                                  const char *topic, int timeout_ms,
                                  struct cf_kafka_group_progress *out, char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *list = NULL;

    if (out == NULL || group_id == NULL || group_id[0] == '\0' || !name_ok(topic, TOPIC_MAX))
        return cf_fail(errbuf, errlen, CF_EINVAL, "group progress: bad group, topic or output");
    memset(out, 0, sizeof(*out));
    /* A consumer that names the group but never subscribes: it reads the group's offsets
     * without joining it. read_committed makes the broker answer only with offsets of
     * committed transactions. */
    const struct kv fixed[] = {
        {"group.id", group_id},
        {"enable.auto.commit", "false"},
        {"isolation.level", "read_committed"},
    };
    st = conf_build(config, NULL, 0, fixed, sizeof(fixed) / sizeof(fixed[0]), NULL, &conf, errbuf,
                    errlen);
    if (st != CF_OK)
        goto out;
    if ((st = client_new(RD_KAFKA_CONSUMER, &conf, &rk, errbuf, errlen)) != CF_OK)
        goto out;
    rd_kafka_resp_err_t err = topic_metadata(rk, topic, timeout_ms, &md);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        st = cf_fail(errbuf, errlen,
                     err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? CF_ENOTFOUND : CF_EKAFKA,
                     "topic %s: %s", topic, rd_kafka_err2str(err));
        goto out;
    }
    list = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int p = 0; p < md->topics[0].partition_cnt; p++)
        rd_kafka_topic_partition_list_add(list, topic, md->topics[0].partitions[p].id);
    err = rd_kafka_committed(rk, list, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        st = cf_fail(errbuf, errlen, err == RD_KAFKA_RESP_ERR__TIMED_OUT ? CF_ETIMEOUT : CF_EKAFKA,
                     "committed offsets of %s: %s", group_id, rd_kafka_err2str(err));
        goto out;
    }
    for (int i = 0; i < list->cnt; i++) {
        int64_t low = 0;
        int64_t high = 0;
        err = rd_kafka_query_watermark_offsets(rk, topic, list->elems[i].partition, &low, &high,
                                               timeout_ms);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            st = cf_fail(errbuf, errlen, CF_EKAFKA, "end offsets of %s: %s", topic,
                         rd_kafka_err2str(err));
            goto out;
        }
        int64_t committed = list->elems[i].offset >= 0 ? list->elems[i].offset : low;
        out->committed += committed;
        out->end += high;
        out->lag += high > committed ? high - committed : 0;
    }
out:
    if (list != NULL)
        rd_kafka_topic_partition_list_destroy(list);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    if (rk != NULL) {
        (void)rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    return st;
}

/* ---- Handler outputs --------------------------------------------------------------------- */

struct out_item {
    struct cf_kafka_out_record rec;
    char *block; /* one allocation: header array, topic, key, value, header names and values */
};

struct cf_kafka_out {
    struct out_item *items;
    size_t n;
    size_t cap;
    size_t bytes;
};

cf_status cf_kafka_out_new(struct cf_kafka_out **out)
{
    if (out == NULL)
        return CF_EINVAL;
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? CF_OK : CF_ENOMEM;
}

void cf_kafka_out_reset(struct cf_kafka_out *out)
{
    if (out == NULL)
        return;
    for (size_t i = 0; i < out->n; i++)
        free(out->items[i].block);
    out->n = 0;
    out->bytes = 0;
}

void cf_kafka_out_free(struct cf_kafka_out *out)
{
    if (out == NULL)
        return;
    cf_kafka_out_reset(out);
    free(out->items);
    free(out);
}

size_t cf_kafka_out_count(const struct cf_kafka_out *out)
{
    return out != NULL ? out->n : 0;
}

const struct cf_kafka_out_record *cf_kafka_out_get(const struct cf_kafka_out *out, size_t i)
{
    return out != NULL && i < out->n ? &out->items[i].rec : NULL;
}

/* a + b into *sum unless it passes limit. */
static bool add_capped(size_t *sum, size_t add, size_t limit)
{
    if (add > limit || *sum > limit - add)
        return false;
    *sum += add;
    return true;
}

cf_status cf_kafka_out_add(struct cf_kafka_out *out, const char *topic, const void *key,
                           size_t key_len, const void *value, size_t value_len,
                           const struct cf_header *headers, size_t header_count)
{
    const size_t limit = CF_KAFKA_OUT_MAX_BYTES;
    size_t payload = 0; /* what counts against the byte limit */
    size_t size = 0;

    if (out == NULL || topic == NULL || topic[0] == '\0' || (header_count > 0 && headers == NULL) ||
        (key == NULL && key_len > 0) || (value == NULL && value_len > 0))
        return CF_EINVAL;
    if (out->n >= CF_KAFKA_OUT_MAX_RECORDS || header_count > CF_KAFKA_OUT_MAX_RECORDS * 100u)
        return CF_ETOOBIG;
    size_t topic_len = strlen(topic);
    if (topic_len > TOPIC_MAX)
        return CF_EINVAL;
    if (!add_capped(&payload, key_len, limit) || !add_capped(&payload, value_len, limit))
        return CF_ETOOBIG;
    for (size_t i = 0; i < header_count; i++) {
        if (headers[i].name == NULL || (headers[i].value == NULL && headers[i].len > 0))
            return CF_EINVAL;
        if (!add_capped(&payload, strlen(headers[i].name) + 1, limit) ||
            !add_capped(&payload, headers[i].len, limit))
            return CF_ETOOBIG;
    }
    if (!add_capped(&size, payload, limit) || out->bytes > limit - payload)
        return CF_ETOOBIG;
    /* Everything fits below 64 MiB, so these additions cannot overflow. */
    size += header_count * sizeof(struct cf_header) + topic_len + 1;

    if (out->n == out->cap) {
        size_t cap = out->cap == 0 ? 4 : out->cap * 2;
        struct out_item *grown = realloc(out->items, cap * sizeof(*grown));
        if (grown == NULL)
            return CF_ENOMEM;
        out->items = grown;
        out->cap = cap;
    }
    char *block = malloc(size > 0 ? size : 1);
    if (block == NULL)
        return CF_ENOMEM;

    struct out_item *item = &out->items[out->n];
    struct cf_header *h = (struct cf_header *)block; /* first: malloc alignment suits it */
    char *p = block + header_count * sizeof(struct cf_header);
    memcpy(p, topic, topic_len + 1);
    item->rec.topic = p;
    p += topic_len + 1;
    item->rec.key = NULL;
    if (key != NULL) {
        memcpy(p, key, key_len);
        item->rec.key = p;
        p += key_len;
    }
    item->rec.key_len = key_len;
    item->rec.value = NULL;
    if (value != NULL) {
        memcpy(p, value, value_len);
        item->rec.value = p;
        p += value_len;
    }
    item->rec.value_len = value_len;
    for (size_t i = 0; i < header_count; i++) {
        size_t name_len = strlen(headers[i].name);
        memcpy(p, headers[i].name, name_len + 1);
        h[i].name = p;
        p += name_len + 1;
        h[i].value = NULL;
        if (headers[i].value != NULL) {
            memcpy(p, headers[i].value, headers[i].len);
            h[i].value = p;
            p += headers[i].len;
        }
        h[i].len = headers[i].len;
    }
    item->rec.headers = header_count > 0 ? h : NULL;
    item->rec.header_count = header_count;
    item->block = block;
    out->n++;
    out->bytes += payload;
    return CF_OK;
}

/* ---- The transactional loop -------------------------------------------------------------- */

struct cf_kafka_loop {
    char *service;
    char *group_id;
    char *transactional_id;
    char dlq_topic[CF_DLQ_TOPIC_MAX];
    char **topics;
    size_t ntopics;
    cf_kafka_handler handler;
    void *handler_ctx;
    long long batch_max_records;
    long long batch_max_ms;
    long long backoff_ms;
    long long backoff_max_ms;
    int timeout_ms;

    rd_kafka_t *producer;
    rd_kafka_t *consumer;
    struct known_topics known; /* output topics the producer has metadata for */
    bool ran;
    bool closed;
    bool broken; /* a rebalance could not be applied: the assignment is unknown */

    /* The batch being collected or processed; every message in it is destroyed exactly once,
     * by loop_drop (after a commit, an abort, a revocation, or at the end). */
    rd_kafka_message_t **batch;
    size_t batch_len;
    struct cf_kafka_out *out;
    struct cf_header *scratch;
    size_t scratch_cap;

    /* The producer's message.max.bytes: an output above it is dead-lettered before anything
     * of its record is produced, so the transaction need not be aborted for it. */
    size_t max_message_bytes;

    /* A record whose outputs librdkafka refused (too large to ever write): the batch was
     * aborted, and on the retry this record goes to the dead-letter topic instead. */
    bool poison;
    char poison_topic[TOPIC_MAX + 1];
    int32_t poison_partition;
    int64_t poison_offset;

    /* Counts of the transaction in progress, added to the stats when it commits. */
    uint64_t txn_outputs;
    uint64_t txn_dead_letters;

    _Atomic bool ready;
    _Atomic int64_t assigned;
    _Atomic uint64_t transactions;
    _Atomic uint64_t records;
    _Atomic uint64_t outputs;
    _Atomic uint64_t dead_letters;
    _Atomic uint64_t aborts;
};

/* How a step of a transaction ended. */
enum step { STEP_OK, STEP_ABORT, STEP_FATAL };

/* Destroys the batch's messages of the partitions in parts (all of them if parts is NULL)
 * and keeps the others in order. Returns how many were dropped. */
static size_t loop_drop(struct cf_kafka_loop *loop, const rd_kafka_topic_partition_list_t *parts)
{
    size_t kept = 0;
    size_t dropped = 0;

    for (size_t i = 0; i < loop->batch_len; i++) {
        rd_kafka_message_t *m = loop->batch[i];
        if (parts == NULL || rd_kafka_topic_partition_list_find(parts, rd_kafka_topic_name(m->rkt),
                                                                m->partition) != NULL) {
            rd_kafka_message_destroy(m);
            dropped++;
        } else {
            loop->batch[kept++] = m;
        }
    }
    loop->batch_len = kept;
    return dropped;
}

/* Runs inside rd_kafka_consumer_poll (and consumer_close), between batches: no transaction is
 * open then, because the loop only polls while collecting. Records of revoked partitions that
 * were collected but not processed are dropped; their new owner reads them again from the
 * committed offsets. */
static void loop_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct cf_kafka_loop *loop = opaque;

    if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        size_t dropped =
            loop_drop(loop, err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS ? parts : NULL);
        if (dropped > 0)
            CF_LOG(CF_LOG_INFO, "batch_records_dropped", CF_LOG_INT("records", dropped),
                   CF_LOG_ERR("reason", "their partitions were revoked before processing"));
    }
    if (!apply_rebalance(rk, err, parts))
        loop->broken = true;
    atomic_store(&loop->assigned, assignment_size(rk));
}

/* Delivery reports of the transactional producer: a failure also fails the transaction
 * (commit_transaction reports it), so this only logs which record it was. */
static void loop_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    /* Purged: the loop aborted the transaction itself, and logged why. */
    bool purged =
        m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
    CF_LOG(purged ? CF_LOG_DEBUG : CF_LOG_WARN, "kafka_delivery_failed",
           CF_LOG_ID("topic", rd_kafka_topic_name(m->rkt)), CF_LOG_INT("partition", m->partition),
           CF_LOG_ID("error", rd_kafka_err2name(m->err)),
           CF_LOG_ERR("reason", rd_kafka_err2str(m->err)));
}

static char *dup_string(const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = malloc(len);
    if (copy != NULL)
        memcpy(copy, s, len);
    return copy;
}

cf_status cf_kafka_loop_new(const struct cf_config *config, const char *service,
                            const char *group_id, const char *const *topics, size_t ntopics,
                            cf_kafka_handler handler, void *handler_ctx, struct cf_kafka_loop **out,
                            char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    struct cf_kafka_loop *loop = NULL;
    rd_kafka_conf_t *conf = NULL;
    char host[256];
    char txn_timeout[24];

    if (out == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "loop: no output pointer");
    *out = NULL;
    if (config == NULL || handler == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "loop: config and handler are required");
    if (!name_ok(service, 64))
        return cf_fail(errbuf, errlen, CF_EINVAL,
                       "loop: service name must be 1 to 64 "
                       "[A-Za-z0-9._-]");
    if ((st = check_topics(topics, ntopics, errbuf, errlen)) != CF_OK)
        return st;
    if (group_id != NULL && (group_id[0] == '\0' || strlen(group_id) > 255))
        return cf_fail(errbuf, errlen, CF_EINVAL, "loop: group id must be 1 to 255 bytes");

    const char *instance = cf_config_string(config, "CASEFLOW_INSTANCE_ID");
    if (instance[0] == '\0') {
        if (gethostname(host, sizeof(host)) != 0)
            return cf_fail(errbuf, errlen, CF_ECONFIG,
                           "CASEFLOW_INSTANCE_ID: empty and the host name is unavailable");
        host[sizeof(host) - 1] = '\0';
        instance = host;
    }
    if (!name_ok(instance, 64))
        return cf_fail(errbuf, errlen, CF_ECONFIG,
                       "CASEFLOW_INSTANCE_ID: must be 1 to 64 [A-Za-z0-9._-] (the host name "
                       "is used when it is empty)");

    if ((loop = calloc(1, sizeof(*loop))) == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "loop: out of memory");
    loop->handler = handler;
    loop->handler_ctx = handler_ctx;
    loop->batch_max_records = cf_config_int(config, "CASEFLOW_BATCH_MAX_RECORDS");
    loop->batch_max_ms = cf_config_int(config, "CASEFLOW_BATCH_MAX_MS");
    loop->backoff_ms = cf_config_int(config, "CASEFLOW_RETRY_BACKOFF_MS");
    loop->backoff_max_ms = cf_config_int(config, "CASEFLOW_RETRY_BACKOFF_MAX_MS");
    loop->timeout_ms = clamp_timeout(cf_config_int(config, "CASEFLOW_KAFKA_TIMEOUT_MS"));
    if (loop->backoff_max_ms < loop->backoff_ms)
        loop->backoff_max_ms = loop->backoff_ms;
    (void)snprintf(txn_timeout, sizeof(txn_timeout), "%lld",
                   cf_config_int(config, "CASEFLOW_TXN_TIMEOUT_MS"));

    size_t txn_len = strlen(service) + 1 + strlen(instance) + 1;
    loop->service = dup_string(service);
    loop->group_id = dup_string(group_id != NULL ? group_id : service);
    loop->transactional_id = malloc(txn_len);
    loop->topics = calloc(ntopics, sizeof(*loop->topics));
    loop->batch = calloc((size_t)loop->batch_max_records, sizeof(*loop->batch));
    if (loop->service == NULL || loop->group_id == NULL || loop->transactional_id == NULL ||
        loop->topics == NULL || loop->batch == NULL || cf_kafka_out_new(&loop->out) != CF_OK) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "loop: out of memory");
        goto out;
    }
    (void)snprintf(loop->transactional_id, txn_len, "%s-%s", service, instance);
    for (; loop->ntopics < ntopics; loop->ntopics++) {
        if ((loop->topics[loop->ntopics] = dup_string(topics[loop->ntopics])) == NULL) {
            st = cf_fail(errbuf, errlen, CF_ENOMEM, "loop: out of memory");
            goto out;
        }
    }
    if (cf_dlq_topic(service, loop->dlq_topic, sizeof(loop->dlq_topic)) != CF_OK) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "loop: no dead-letter topic name for service");
        goto out;
    }

    /* The transactional producer. */
    const struct kv producer_fixed[] = {
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"transactional.id", loop->transactional_id},
        {"transaction.timeout.ms", txn_timeout},
    };
    const struct kv loop_producer_defaults[] = {
        {"client.id", service},
        {"partitioner", "murmur2_random"},
        {"allow.auto.create.topics", "false"},
    };
    st = conf_build(config, loop_producer_defaults,
                    sizeof(loop_producer_defaults) / sizeof(loop_producer_defaults[0]),
                    producer_fixed, sizeof(producer_fixed) / sizeof(producer_fixed[0]), loop, &conf,
                    errbuf, errlen);
    if (st != CF_OK)
        goto out;
    rd_kafka_conf_set_dr_msg_cb(conf, loop_dr_cb);
    {
        char max[32];
        size_t max_len = sizeof(max);
        if (rd_kafka_conf_get(conf, "message.max.bytes", max, &max_len) != RD_KAFKA_CONF_OK) {
            st = cf_fail(errbuf, errlen, CF_ECONFIG, "message.max.bytes cannot be read");
            goto out;
        }
        loop->max_message_bytes = (size_t)strtoull(max, NULL, 10);
    }
    if ((st = client_new(RD_KAFKA_PRODUCER, &conf, &loop->producer, errbuf, errlen)) != CF_OK)
        goto out;

    /* The consumer: offsets are committed only through the producer's transactions. */
    const struct kv consumer_fixed[] = {
        {"group.id", loop->group_id},
        {"isolation.level", "read_committed"},
        {"enable.auto.commit", "false"},
    };
    const struct kv consumer_defaults[] = {
        {"client.id", service},
        {"auto.offset.reset", "earliest"},
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"allow.auto.create.topics", "false"},
    };
    st =
        conf_build(config, consumer_defaults,
                   sizeof(consumer_defaults) / sizeof(consumer_defaults[0]), consumer_fixed,
                   sizeof(consumer_fixed) / sizeof(consumer_fixed[0]), loop, &conf, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    rd_kafka_conf_set_rebalance_cb(conf, loop_rebalance_cb);
    if ((st = client_new(RD_KAFKA_CONSUMER, &conf, &loop->consumer, errbuf, errlen)) != CF_OK)
        goto out;
    rd_kafka_resp_err_t err = rd_kafka_poll_set_consumer(loop->consumer);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        st = cf_fail(errbuf, errlen, CF_EKAFKA, "loop consumer: %s", rd_kafka_err2str(err));
        goto out;
    }
    *out = loop;
    loop = NULL;
out:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    cf_kafka_loop_free(loop);
    return st;
}

/* Logs a transactional call's error, destroys it and says what to do. A fatal one is written
 * to errbuf with librdkafka's underlying fatal reason (fenced by whom, for instance). */
static enum cf_kafka_action loop_txn_error(struct cf_kafka_loop *loop, const char *what,
                                           rd_kafka_error_t *error, char *errbuf, size_t errlen)
{
    enum cf_kafka_action a = cf_kafka_error_action(
        rd_kafka_error_code(error), rd_kafka_error_is_fatal(error),
        rd_kafka_error_is_retriable(error), rd_kafka_error_txn_requires_abort(error));
    CF_LOG(a == CF_KAFKA_FATAL ? CF_LOG_ERROR : CF_LOG_WARN, "transaction_error",
           CF_LOG_ID("call", what), CF_LOG_ID("transactional_id", loop->transactional_id),
           CF_LOG_ID("error", rd_kafka_error_name(error)),
           CF_LOG_ERR("reason", rd_kafka_error_string(error)),
           CF_LOG_ID("action", cf_kafka_action_name(a)));
    if (a == CF_KAFKA_FATAL) {
        char fatal[ERRSTR_MAX] = "";
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(loop->producer, fatal, sizeof(fatal));
        if (orig != RD_KAFKA_RESP_ERR_NO_ERROR)
            (void)cf_fail(errbuf, errlen, CF_EFATAL, "%s: %s: %s", what, rd_kafka_err2name(orig),
                          fatal);
        else
            (void)cf_fail(errbuf, errlen, CF_EFATAL, "%s: %s: %s", what, rd_kafka_error_name(error),
                          rd_kafka_error_string(error));
    }
    rd_kafka_error_destroy(error);
    return a;
}

/* Produces one record inside the transaction; returns what to do about a failure. */
static enum cf_kafka_action loop_produce(struct cf_kafka_loop *loop, const char *topic,
                                         const void *key, size_t key_len, const void *value,
                                         size_t value_len, const struct cf_header *headers,
                                         size_t header_count, const struct cf_kafka_record *in,
                                         char *errbuf, size_t errlen)
{
    known_topic(loop->producer, &loop->known, topic, loop->timeout_ms);
    rd_kafka_resp_err_t err = enqueue(loop->producer, topic, key, key_len, value, value_len,
                                      headers, header_count, NULL, loop->timeout_ms);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return CF_KAFKA_PROCEED;
    enum cf_kafka_action a = cf_kafka_produce_error_action(err);
    if (a == CF_KAFKA_RETRY) /* the queue stayed full for the whole timeout */
        a = CF_KAFKA_ABORT;
    if (rd_kafka_fatal_error(loop->producer, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR)
        a = CF_KAFKA_FATAL;
    CF_LOG(a == CF_KAFKA_FATAL ? CF_LOG_ERROR : CF_LOG_WARN, "produce_failed",
           CF_LOG_ID("topic", topic), CF_LOG_ID("source_topic", in->topic),
           CF_LOG_INT("source_partition", in->partition), CF_LOG_INT("source_offset", in->offset),
           CF_LOG_ID("error", rd_kafka_err2name(err)), CF_LOG_ERR("reason", rd_kafka_err2str(err)),
           CF_LOG_ID("action", cf_kafka_action_name(a)));
    if (a == CF_KAFKA_FATAL)
        (void)check_fatal(loop->producer, CF_EFATAL, errbuf, errlen);
    return a;
}

/* Sends in to the dead-letter topic inside the transaction. */
static enum cf_kafka_action loop_dead_letter(struct cf_kafka_loop *loop,
                                             const struct cf_kafka_record *in, const char *reason,
                                             const char *error_text, char *errbuf, size_t errlen)
{
    struct cf_dlq_record d;
    char derr[256] = "";
    enum cf_kafka_action a = CF_KAFKA_ABORT;

    for (unsigned flags = 0; flags <= CF_DLQ_DROP_VALUE; flags += CF_DLQ_DROP_VALUE) {
        cf_status st = cf_dlq_build(in, loop->service, reason, error_text, wall_ms(), flags, &d,
                                    derr, sizeof(derr));
        if (st != CF_OK) {
            CF_LOG(CF_LOG_ERROR, "dead_letter_build_failed", CF_LOG_ID("topic", in->topic),
                   CF_LOG_INT("partition", in->partition), CF_LOG_INT("offset", in->offset),
                   CF_LOG_ERR("reason", derr));
            cf_dlq_record_clear(&d);
            return st == CF_ENOMEM ? CF_KAFKA_ABORT : CF_KAFKA_FATAL;
        }
        a = loop_produce(loop, d.topic, d.key, d.key_len, d.value, d.value_len, d.headers,
                         d.header_count, in, errbuf, errlen);
        cf_dlq_record_clear(&d);
        if (a != CF_KAFKA_DEAD_LETTER)
            break;
        /* The record itself cannot be written again (too large with the added headers):
         * write the dead letter without its value, which the headers then say. */
    }
    if (a == CF_KAFKA_PROCEED) {
        loop->txn_dead_letters++;
        CF_LOG(CF_LOG_WARN, "record_dead_lettered", CF_LOG_ID("topic", in->topic),
               CF_LOG_INT("partition", in->partition), CF_LOG_INT("offset", in->offset),
               CF_LOG_ID("dlq_topic", loop->dlq_topic), CF_LOG_ID("reason", reason),
               CF_LOG_ERR("error", error_text));
    } else if (a == CF_KAFKA_DEAD_LETTER) {
        a = CF_KAFKA_FATAL;
        (void)cf_fail(errbuf, errlen, CF_EFATAL,
                      "%s: the dead letter of %s [%" PRId32 "] offset %" PRId64
                      " cannot be written",
                      loop->dlq_topic, in->topic, in->partition, in->offset);
    }
    return a;
}

/* Room librdkafka reserves per message for the record batch framing it adds (it refuses a
 * message whose key, value, headers and this overhead exceed message.max.bytes). */
#define MESSAGE_OVERHEAD 512

/* True if every queued output fits in one Kafka message. */
static bool outputs_fit(const struct cf_kafka_loop *loop)
{
    for (size_t i = 0; i < cf_kafka_out_count(loop->out); i++) {
        const struct cf_kafka_out_record *o = cf_kafka_out_get(loop->out, i);
        size_t size = MESSAGE_OVERHEAD + o->key_len + o->value_len;
        for (size_t h = 0; h < o->header_count; h++)
            size += strlen(o->headers[h].name) + o->headers[h].len;
        if (size > loop->max_message_bytes)
            return false;
    }
    return true;
}

/* Runs the handler on one record and produces what it asks for. */
static enum cf_kafka_action loop_record(struct cf_kafka_loop *loop, rd_kafka_message_t *m,
                                        char *errbuf, size_t errlen)
{
    struct cf_kafka_record rec;
    char herr[CF_DLQ_ERROR_MAX + 1] = "";
    cf_status st = record_view(m, &loop->scratch, &loop->scratch_cap, &rec);

    if (st == CF_ENOMEM)
        return CF_KAFKA_ABORT;
    if (st != CF_OK) {
        /* The view could not be built: the record's headers are malformed. */
        rec = (struct cf_kafka_record){rd_kafka_topic_name(m->rkt),
                                       m->partition,
                                       m->offset,
                                       m->key,
                                       m->key != NULL ? m->key_len : 0,
                                       m->payload,
                                       m->payload != NULL ? m->len : 0,
                                       NULL,
                                       0,
                                       rd_kafka_message_timestamp(m, NULL)};
        return loop_dead_letter(loop, &rec, "decode_failed", "record headers cannot be parsed",
                                errbuf, errlen);
    }
    if (loop->poison && loop->poison_partition == rec.partition &&
        loop->poison_offset == rec.offset && strcmp(loop->poison_topic, rec.topic) == 0) {
        loop->poison = false;
        return loop_dead_letter(loop, &rec, "output_rejected",
                                "Kafka refused an output of this record (too large or invalid)",
                                errbuf, errlen);
    }

    cf_kafka_out_reset(loop->out);
    st = loop->handler(loop->handler_ctx, &rec, loop->out, herr, sizeof(herr));
    enum cf_kafka_action a = cf_kafka_status_action(st);
    switch (a) {
    case CF_KAFKA_PROCEED:
        if (!outputs_fit(loop)) {
            a = loop_dead_letter(loop, &rec, "output_rejected",
                                 "an output is larger than message.max.bytes", errbuf, errlen);
            break;
        }
        for (size_t i = 0; i < cf_kafka_out_count(loop->out); i++) {
            const struct cf_kafka_out_record *o = cf_kafka_out_get(loop->out, i);
            a = loop_produce(loop, o->topic, o->key, o->key_len, o->value, o->value_len, o->headers,
                             o->header_count, &rec, errbuf, errlen);
            if (a == CF_KAFKA_DEAD_LETTER) {
                /* Outputs of this record may already be in the transaction: abort it, and
                 * dead-letter the record when the batch is retried. */
                loop->poison = true;
                (void)snprintf(loop->poison_topic, sizeof(loop->poison_topic), "%s", rec.topic);
                loop->poison_partition = rec.partition;
                loop->poison_offset = rec.offset;
                a = CF_KAFKA_ABORT;
            }
            if (a != CF_KAFKA_PROCEED)
                break;
            loop->txn_outputs++;
        }
        break;
    case CF_KAFKA_DEAD_LETTER:
        a = loop_dead_letter(loop, &rec, cf_dlq_reason(st), herr, errbuf, errlen);
        break;
    case CF_KAFKA_RETRY:
    case CF_KAFKA_ABORT:
        a = CF_KAFKA_ABORT;
        CF_LOG(CF_LOG_WARN, "handler_retriable_error", CF_LOG_ID("topic", rec.topic),
               CF_LOG_INT("partition", rec.partition), CF_LOG_INT("offset", rec.offset),
               CF_LOG_ERR("status", cf_strerror(st)), CF_LOG_ERR("error", herr));
        break;
    case CF_KAFKA_FATAL:
        CF_LOG(CF_LOG_ERROR, "handler_fatal_error", CF_LOG_ID("topic", rec.topic),
               CF_LOG_INT("partition", rec.partition), CF_LOG_INT("offset", rec.offset),
               CF_LOG_ERR("status", cf_strerror(st)), CF_LOG_ERR("error", herr));
        (void)cf_fail(errbuf, errlen, CF_EFATAL, "handler: %s: %s", cf_strerror(st), herr);
        break;
    }
    cf_kafka_out_reset(loop->out);
    return a;
}

/* The batch's offsets per partition: with first, the lowest (where a rewind goes back to);
 * otherwise the highest + 1 (what the group commits: the next record to read). */
static rd_kafka_topic_partition_list_t *batch_offsets(const struct cf_kafka_loop *loop, bool first)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);

    for (size_t i = 0; i < loop->batch_len; i++) {
        const rd_kafka_message_t *m = loop->batch[i];
        const char *topic = rd_kafka_topic_name(m->rkt);
        int64_t offset = first ? m->offset : m->offset + 1;
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(list, topic, m->partition);
        if (tp == NULL)
            rd_kafka_topic_partition_list_add(list, topic, m->partition)->offset = offset;
        else if (first ? offset < tp->offset : offset > tp->offset)
            tp->offset = offset;
    }
    return list;
}

/* True if every partition of offsets is still assigned to this consumer. */
static bool all_assigned(struct cf_kafka_loop *loop, const rd_kafka_topic_partition_list_t *offsets)
{
    rd_kafka_topic_partition_list_t *assigned = NULL;
    bool ok = true;

    if (rd_kafka_assignment(loop->consumer, &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    for (int i = 0; i < offsets->cnt; i++) {
        if (rd_kafka_topic_partition_list_find(assigned, offsets->elems[i].topic,
                                               offsets->elems[i].partition) == NULL) {
            CF_LOG(CF_LOG_WARN, "offsets_not_committed",
                   CF_LOG_ID("topic", offsets->elems[i].topic),
                   CF_LOG_INT("partition", offsets->elems[i].partition),
                   CF_LOG_ERR("reason", "the partition is no longer assigned"));
            ok = false;
        }
    }
    rd_kafka_topic_partition_list_destroy(assigned);
    return ok;
}

/* Adds the batch's offsets to the transaction and commits it. */
static enum step loop_commit(struct cf_kafka_loop *loop, char *errbuf, size_t errlen)
{
    rd_kafka_topic_partition_list_t *offsets = batch_offsets(loop, false);
    rd_kafka_consumer_group_metadata_t *cgmd = NULL;
    rd_kafka_error_t *error = NULL;
    enum step result = STEP_OK;

    /* Never commit offsets of a partition someone else may own now. No poll ran since the
     * batch was collected, so this holds unless librdkafka changed the assignment itself. */
    if (!all_assigned(loop, offsets)) {
        result = STEP_ABORT;
        goto out;
    }
    if ((cgmd = rd_kafka_consumer_group_metadata(loop->consumer)) == NULL) {
        (void)cf_fail(errbuf, errlen, CF_EFATAL, "the consumer has no group metadata");
        result = STEP_FATAL;
        goto out;
    }
    /* The group metadata carries the generation: if the group rebalanced meanwhile, the
     * coordinator refuses the offsets (an abortable error) rather than let a zombie commit. */
    for (int attempt = 1;; attempt++) {
        error =
            rd_kafka_send_offsets_to_transaction(loop->producer, offsets, cgmd, loop->timeout_ms);
        if (error == NULL)
            break;
        enum cf_kafka_action a =
            loop_txn_error(loop, "send_offsets_to_transaction", error, errbuf, errlen);
        if (a == CF_KAFKA_RETRY && attempt < CALL_ATTEMPTS) {
            sleep_ms(100 * attempt);
            continue;
        }
        result = a == CF_KAFKA_FATAL ? STEP_FATAL : STEP_ABORT;
        goto out;
    }
    for (int attempt = 1;; attempt++) {
        /* -1: the transaction's remaining time, as librdkafka recommends. */
        error = rd_kafka_commit_transaction(loop->producer, -1);
        if (error == NULL)
            break;
        enum cf_kafka_action a = loop_txn_error(loop, "commit_transaction", error, errbuf, errlen);
        if (a == CF_KAFKA_RETRY && attempt < CALL_ATTEMPTS) {
            sleep_ms(100 * attempt);
            continue;
        }
        result = a == CF_KAFKA_FATAL ? STEP_FATAL : STEP_ABORT;
        goto out;
    }
    atomic_fetch_add(&loop->transactions, 1);
    atomic_fetch_add(&loop->records, loop->batch_len);
    atomic_fetch_add(&loop->outputs, loop->txn_outputs);
    atomic_fetch_add(&loop->dead_letters, loop->txn_dead_letters);
    CF_LOG(CF_LOG_DEBUG, "batch_committed", CF_LOG_INT("records", loop->batch_len),
           CF_LOG_INT("outputs", loop->txn_outputs),
           CF_LOG_INT("dead_letters", loop->txn_dead_letters),
           CF_LOG_INT("partitions", offsets->cnt));
    (void)loop_drop(loop, NULL);
out:
    if (cgmd != NULL)
        rd_kafka_consumer_group_metadata_destroy(cgmd);
    rd_kafka_topic_partition_list_destroy(offsets);
    return result;
}

/* One transaction over the collected batch. */
static enum step loop_transaction(struct cf_kafka_loop *loop, char *errbuf, size_t errlen)
{
    rd_kafka_error_t *error = rd_kafka_begin_transaction(loop->producer);
    if (error != NULL) {
        /* begin fails only on a state error or a fatal one: neither is retriable. */
        (void)loop_txn_error(loop, "begin_transaction", error, errbuf, errlen);
        (void)check_fatal(loop->producer, CF_EFATAL, errbuf, errlen);
        return STEP_FATAL;
    }
    loop->txn_outputs = 0;
    loop->txn_dead_letters = 0;
    for (size_t i = 0; i < loop->batch_len; i++) {
        enum cf_kafka_action a = loop_record(loop, loop->batch[i], errbuf, errlen);
        if (a == CF_KAFKA_ABORT)
            return STEP_ABORT;
        if (a == CF_KAFKA_FATAL) {
            /* Abort so the open transaction does not hold back read_committed consumers until
             * it times out; if the producer itself is broken this fails at once. */
            rd_kafka_error_destroy(rd_kafka_abort_transaction(loop->producer, loop->timeout_ms));
            return STEP_FATAL;
        }
        (void)rd_kafka_poll(loop->producer, 0);
    }
    return loop_commit(loop, errbuf, errlen);
}

/* Aborts the transaction and moves the consumer back to the batch's first offsets, so the
 * same records come again. CF_EFATAL if either fails. */
static cf_status loop_abort(struct cf_kafka_loop *loop, char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    rd_kafka_topic_partition_list_t *first = NULL;

    /* Let the records already sent in this transaction be acknowledged first: an abort issued
     * with other records still in flight once ended in INVALID_TXN_STATE (fatal) here, with
     * librdkafka 2.0.2 and Kafka 3.9.1. A flush that times out is no worse than not waiting. */
    (void)rd_kafka_flush(loop->producer, loop->timeout_ms);
    for (int attempt = 1;; attempt++) {
        rd_kafka_error_t *error = rd_kafka_abort_transaction(loop->producer, -1);
        if (error == NULL)
            break;
        enum cf_kafka_action a = loop_txn_error(loop, "abort_transaction", error, errbuf, errlen);
        if (a == CF_KAFKA_RETRY && attempt < CALL_ATTEMPTS) {
            sleep_ms(100 * attempt);
            continue;
        }
        if (a != CF_KAFKA_FATAL)
            (void)cf_fail(errbuf, errlen, CF_EFATAL, "abort_transaction failed");
        st = CF_EFATAL;
        goto out;
    }
    atomic_fetch_add(&loop->aborts, 1);
    if (loop->batch_len == 0)
        goto out;
    first = batch_offsets(loop, true);
    /* Only partitions still assigned can be (and need to be) rewound: a revoked one's new
     * owner starts from the committed offset anyway. */
    rd_kafka_topic_partition_list_t *assigned = NULL;
    if (rd_kafka_assignment(loop->consumer, &assigned) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = first->cnt - 1; i >= 0; i--)
            if (rd_kafka_topic_partition_list_find(assigned, first->elems[i].topic,
                                                   first->elems[i].partition) == NULL)
                (void)rd_kafka_topic_partition_list_del_by_idx(first, i);
        rd_kafka_topic_partition_list_destroy(assigned);
    }
    if (first->cnt == 0)
        goto out;
    rd_kafka_error_t *error = rd_kafka_seek_partitions(loop->consumer, first, loop->timeout_ms);
    if (error != NULL && rd_kafka_error_code(error) != RD_KAFKA_RESP_ERR__TIMED_OUT) {
        st = cf_fail(errbuf, errlen, CF_EFATAL, "rewinding the consumer: %s",
                     rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        goto out;
    }
    if (error == NULL) {
        for (int i = 0; i < first->cnt; i++) {
            if (first->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
                continue;
            /* Going on would skip the batch: better to exit and restart from the committed
             * offsets. */
            st = cf_fail(errbuf, errlen, CF_EFATAL, "rewinding %s [%" PRId32 "]: %s",
                         first->elems[i].topic, first->elems[i].partition,
                         rd_kafka_err2str(first->elems[i].err));
            goto out;
        }
    }
    /* else: timed out, which librdkafka 2.0.2 does after timeout_ms microseconds (#4230); the
     * seek is applied anyway and stale messages are filtered by its version barrier. */
    rd_kafka_error_destroy(error);
    for (int i = 0; i < first->cnt; i++)
        CF_LOG(CF_LOG_INFO, "partition_rewound", CF_LOG_ID("topic", first->elems[i].topic),
               CF_LOG_INT("partition", first->elems[i].partition),
               CF_LOG_INT("offset", first->elems[i].offset));
out:
    if (first != NULL)
        rd_kafka_topic_partition_list_destroy(first);
    (void)loop_drop(loop, NULL);
    return st;
}

/* Handles an error message from consumer_poll. */
static cf_status loop_consumer_error(struct cf_kafka_loop *loop, const rd_kafka_message_t *m,
                                     char *errbuf, size_t errlen)
{
    const char *topic = m->rkt != NULL ? rd_kafka_topic_name(m->rkt) : "-";
    bool fatal = m->err == RD_KAFKA_RESP_ERR__FATAL;

    CF_LOG(fatal ? CF_LOG_ERROR : CF_LOG_WARN, "kafka_consumer_error", CF_LOG_ID("topic", topic),
           CF_LOG_INT("partition", m->partition), CF_LOG_ID("error", rd_kafka_err2name(m->err)),
           CF_LOG_ERR("reason", rd_kafka_message_errstr(m)));
    if (!fatal)
        return CF_OK;
    return check_fatal(
        loop->consumer,
        cf_fail(errbuf, errlen, CF_EFATAL, "consumer: %s", rd_kafka_message_errstr(m)), errbuf,
        errlen);
}

/* Collects a batch: returns when it is full, CASEFLOW_BATCH_MAX_MS after its first record,
 * when a poll brings nothing while it is empty, or on stop. */
static cf_status loop_collect(struct cf_kafka_loop *loop, const volatile sig_atomic_t *stop,
                              char *errbuf, size_t errlen)
{
    int64_t deadline = 0;

    while (!*stop && loop->batch_len < (size_t)loop->batch_max_records) {
        int64_t timeout = POLL_MAX_MS;
        if (loop->batch_len > 0) {
            int64_t left = deadline - mono_ms();
            if (left <= 0)
                break;
            if (left < timeout)
                timeout = left;
        }
        (void)rd_kafka_poll(loop->producer, 0); /* the producer's logs and errors */
        rd_kafka_message_t *m = rd_kafka_consumer_poll(loop->consumer, (int)timeout);
        if (loop->broken) {
            if (m != NULL)
                rd_kafka_message_destroy(m);
            return cf_fail(errbuf, errlen, CF_EFATAL, "a rebalance could not be applied");
        }
        if (m == NULL) {
            if (loop->batch_len == 0)
                break;
            continue;
        }
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            cf_status st = loop_consumer_error(loop, m, errbuf, errlen);
            rd_kafka_message_destroy(m);
            if (st != CF_OK)
                return st;
            continue;
        }
        if (loop->batch_len == 0)
            deadline = mono_ms() + loop->batch_max_ms;
        loop->batch[loop->batch_len++] = m;
    }
    return CF_OK;
}

/* init_transactions (retrying while the coordinator is unavailable or the previous instance's
 * transaction is still being aborted), checks the topics, subscribes. CF_OK with ready unset
 * if stop came first. */
static cf_status loop_start(struct cf_kafka_loop *loop, const volatile sig_atomic_t *stop,
                            char *errbuf, size_t errlen)
{
    int64_t backoff = loop->backoff_ms;

    CF_LOG(CF_LOG_INFO, "kafka_loop_starting",
           CF_LOG_ID("transactional_id", loop->transactional_id),
           CF_LOG_ID("group_id", loop->group_id), CF_LOG_ID("dlq_topic", loop->dlq_topic));
    /* Before subscribing: fencing the previous instance aborts its open transaction, including
     * its pending offsets, so the consumer then reads committed offsets that are stable. */
    for (;;) {
        rd_kafka_error_t *error = rd_kafka_init_transactions(loop->producer, loop->timeout_ms);
        if (error == NULL)
            break;
        enum cf_kafka_action a = loop_txn_error(loop, "init_transactions", error, errbuf, errlen);
        if (a != CF_KAFKA_RETRY) {
            if (a != CF_KAFKA_FATAL)
                (void)cf_fail(errbuf, errlen, CF_EFATAL, "init_transactions failed");
            return CF_EFATAL;
        }
        pause_ms(backoff, stop);
        if (*stop)
            return CF_OK;
        backoff = backoff * 2 < loop->backoff_max_ms ? backoff * 2 : loop->backoff_max_ms;
    }

    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err =
        topic_metadata(loop->producer, loop->dlq_topic, loop->timeout_ms, &md);
    if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        return cf_fail(errbuf, errlen, CF_ECONFIG,
                       "dead-letter topic %s does not exist (create the topics first)",
                       loop->dlq_topic);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return cf_fail(errbuf, errlen, CF_EIO, "dead-letter topic %s: %s", loop->dlq_topic,
                       rd_kafka_err2str(err));
    rd_kafka_metadata_destroy(md);

    rd_kafka_topic_partition_list_t *subscription =
        topic_list((const char *const *)loop->topics, loop->ntopics);
    err = rd_kafka_subscribe(loop->consumer, subscription);
    rd_kafka_topic_partition_list_destroy(subscription);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return cf_fail(errbuf, errlen, CF_EFATAL, "subscribing: %s", rd_kafka_err2str(err));
    atomic_store(&loop->ready, true);
    CF_LOG(CF_LOG_INFO, "kafka_loop_started", CF_LOG_ID("transactional_id", loop->transactional_id),
           CF_LOG_INT("topics", loop->ntopics));
    return CF_OK;
}

/* Leaves the group and flushes the producer. */
static void loop_close(struct cf_kafka_loop *loop)
{
    if (loop->closed)
        return;
    loop->closed = true;
    atomic_store(&loop->ready, false);
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(loop->consumer);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        CF_LOG(CF_LOG_WARN, "kafka_consumer_close_failed",
               CF_LOG_ID("error", rd_kafka_err2name(err)));
    (void)loop_drop(loop, NULL); /* in case a poll inside close delivered anything */
    if (rd_kafka_flush(loop->producer, loop->timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        CF_LOG(CF_LOG_WARN, "kafka_producer_closed_with_undelivered",
               CF_LOG_INT("records", rd_kafka_outq_len(loop->producer)));
}

cf_status cf_kafka_loop_run(struct cf_kafka_loop *loop, const volatile sig_atomic_t *stop,
                            char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;

    if (loop == NULL || stop == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "loop: no loop or stop flag");
    if (loop->ran)
        return cf_fail(errbuf, errlen, CF_EINVAL, "loop: already run");
    loop->ran = true;
    if ((st = loop_start(loop, stop, errbuf, errlen)) != CF_OK)
        goto out;

    int64_t backoff = loop->backoff_ms;
    while (!*stop) {
        if ((st = loop_collect(loop, stop, errbuf, errlen)) != CF_OK)
            goto out;
        if (loop->batch_len == 0)
            continue;
        /* Once collected, a batch is finished even if stop is set meanwhile. */
        enum step r = loop_transaction(loop, errbuf, errlen);
        if (r == STEP_FATAL) {
            st = CF_EFATAL;
            goto out;
        }
        if (r == STEP_OK) {
            backoff = loop->backoff_ms;
            continue;
        }
        if ((st = loop_abort(loop, errbuf, errlen)) != CF_OK)
            goto out;
        CF_LOG(CF_LOG_WARN, "batch_retry_scheduled", CF_LOG_INT("backoff_ms", backoff));
        pause_ms(backoff, stop);
        backoff = backoff * 2 < loop->backoff_max_ms ? backoff * 2 : loop->backoff_max_ms;
    }
    CF_LOG(CF_LOG_INFO, "kafka_loop_stopping",
           CF_LOG_INT("transactions", atomic_load(&loop->transactions)),
           CF_LOG_INT("records", atomic_load(&loop->records)));
out:
    if (st != CF_OK)
        CF_LOG(CF_LOG_ERROR, "kafka_loop_failed", CF_LOG_ERR("status", cf_strerror(st)),
               CF_LOG_ERR("reason", errbuf != NULL && errlen > 0 ? errbuf : ""));
    (void)loop_drop(loop, NULL);
    loop_close(loop);
    return st;
}

void cf_kafka_loop_stats(const struct cf_kafka_loop *loop, struct cf_kafka_loop_stats *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof(*out));
    if (loop == NULL)
        return;
    out->ready = atomic_load(&loop->ready);
    out->assigned = atomic_load(&loop->assigned);
    out->transactions = atomic_load(&loop->transactions);
    out->records = atomic_load(&loop->records);
    out->outputs = atomic_load(&loop->outputs);
    out->dead_letters = atomic_load(&loop->dead_letters);
    out->aborts = atomic_load(&loop->aborts);
}

void cf_kafka_loop_free(struct cf_kafka_loop *loop)
{
    if (loop == NULL)
        return;
    if (loop->consumer != NULL) {
        if (loop->ran && loop->producer != NULL)
            loop_close(loop);
        else if (!loop->closed)
            (void)rd_kafka_consumer_close(loop->consumer);
        (void)loop_drop(loop, NULL);
        rd_kafka_destroy(loop->consumer);
    }
    if (loop->producer != NULL)
        rd_kafka_destroy(loop->producer);
    known_topics_clear(&loop->known);
    cf_kafka_out_free(loop->out);
    free(loop->scratch);
    free(loop->batch);
    for (size_t i = 0; i < loop->ntopics; i++)
        free(loop->topics[i]);
    free(loop->topics);
    free(loop->transactional_id);
    free(loop->group_id);
    free(loop->service);
    free(loop);
}
