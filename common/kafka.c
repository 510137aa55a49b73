/* kafka.c — what every Kafka client of the module shares (see kafka.h): the configuration built
 * from the default and fixed property tables, client creation, librdkafka's logs and errors
 * routed through CF_LOG, the error classification, and the record, metadata and rebalance
 * helpers that the other files reach through kafka_internal.h. The nouns live beside it:
 * kafka_producer.c, kafka_consumer.c, kafka_admin.c, kafka_out.c (handler outputs) and
 * kafka_loop.c (the transactional loop).
 *
 * Written against librdkafka 2.0.2 (Debian 12). Things of that version this file works around:
 *   - The producer's default is allow.auto.create.topics=true: set to false here, topics are
 *     created with their settings by cf_kafka_create_topics. */
#include "kafka.h"

#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka_internal.h"
#include "log.h"

/* ---- Small helpers ----------------------------------------------------------------------- */

int kafka_clamp_timeout(long long ms)
{
    return ms < 0 ? 0 : ms > 3600000 ? 3600000 : (int)ms;
}

bool kafka_name_ok(const char *s, size_t max)
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
 * state again through their own return values. Every client's error_cb; the loop's wraps it
 * to count the errors. */
void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
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
cf_status kafka_conf_build(const struct cf_config *config, const struct kv *defaults,
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
    rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
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
cf_status kafka_client_new(rd_kafka_type_t type, rd_kafka_conf_t **conf, rd_kafka_t **out,
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
const struct kv kafka_producer_defaults[] = {
    {"client.id", "caseflow"},
    {"partitioner", "murmur2_random"},
    {"allow.auto.create.topics", "false"},
};

/* CF_EFATAL with the fatal reason if the client has raised a fatal error, else st. */
cf_status kafka_check_fatal(rd_kafka_t *rk, cf_status st, char *errbuf, size_t errlen)
{
    char fatal[ERRSTR_MAX] = "";
    rd_kafka_resp_err_t err = rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return st;
    return cf_fail(errbuf, errlen, CF_EFATAL, "Kafka client failed: %s: %s", rd_kafka_err2name(err),
                   fatal);
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
rd_kafka_resp_err_t kafka_enqueue(rd_kafka_t *rk, const char *topic, const void *key,
                                  size_t key_len, const void *value, size_t value_len,
                                  const struct cf_header *headers, size_t header_count,
                                  void *msg_opaque, int timeout_ms)
{
    int64_t deadline = cf_clock_mono_ms() + timeout_ms;

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
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || cf_clock_mono_ms() >= deadline)
            return err;
        (void)rd_kafka_poll(rk, 100);
    }
}

/* Fills the record view of message m; header views go into *scratch (grown as needed, the
 * caller frees it). The view borrows from m. CF_EDECODE if the headers cannot be parsed. */
cf_status kafka_record_view(const rd_kafka_message_t *m, struct cf_header **scratch, size_t *cap,
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
rd_kafka_resp_err_t kafka_topic_metadata(rd_kafka_t *rk, const char *topic, int timeout_ms,
                                         const struct rd_kafka_metadata **out)
{
    int64_t start = cf_clock_mono_ms();
    int64_t deadline = start + timeout_ms;
    rd_kafka_resp_err_t err;

    *out = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rkt == NULL)
        return rd_kafka_last_error();
    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        int64_t left = deadline - cf_clock_mono_ms();
        err = rd_kafka_metadata(rk, 0, rkt, &md, kafka_clamp_timeout(left > 100 ? left : 100));
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
        if (cf_clock_mono_ms() + 100 >= deadline ||
            (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
             cf_clock_mono_ms() - start >= UNKNOWN_TOPIC_GRACE_MS))
            break;
        cf_clock_sleep_ms(100);
    }
    rd_kafka_topic_destroy(rkt);
    return err;
}

/* Makes sure rk has the topic's metadata before its first record. Failures are left to the
 * produce call to report. */
void kafka_known_topic(rd_kafka_t *rk, struct known_topics *known, const char *topic,
                       int timeout_ms)
{
    for (size_t i = 0; i < known->n; i++)
        if (strcmp(known->names[i], topic) == 0)
            return;
    if (known->n == KNOWN_TOPICS_MAX)
        return;
    const struct rd_kafka_metadata *md = NULL;
    if (kafka_topic_metadata(rk, topic, timeout_ms, &md) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    rd_kafka_metadata_destroy(md);
    size_t len = strlen(topic) + 1;
    char *copy = malloc(len);
    if (copy == NULL)
        return;
    memcpy(copy, topic, len);
    known->names[known->n++] = copy;
}

void kafka_known_topics_clear(struct known_topics *known)
{
    for (size_t i = 0; i < known->n; i++)
        free(known->names[i]);
    known->n = 0;
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
bool kafka_apply_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
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

/* ---- Topic lists ------------------------------------------------------------------------- */

rd_kafka_topic_partition_list_t *kafka_topic_list(const char *const *topics, size_t ntopics)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)ntopics);
    for (size_t i = 0; i < ntopics; i++)
        rd_kafka_topic_partition_list_add(list, topics[i], RD_KAFKA_PARTITION_UA);
    return list;
}

cf_status kafka_check_topics(const char *const *topics, size_t ntopics, char *errbuf, size_t errlen)
{
    if (topics == NULL || ntopics == 0 || ntopics > 1000)
        return cf_fail(errbuf, errlen, CF_EINVAL, "consumer: 1 to 1000 topics are needed");
    for (size_t i = 0; i < ntopics; i++)
        if (!kafka_name_ok(topics[i], TOPIC_MAX))
            return cf_fail(errbuf, errlen, CF_EINVAL,
                           "consumer: topic #%zu is not a valid topic name", i + 1);
    return CF_OK;
}
