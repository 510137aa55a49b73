/* kafka_loop.c — the transactional consume → process → produce loop (see kafka.h); what it
 * shares with the other kafka*.c files is in kafka_internal.h.
 *
 * Written against librdkafka 2.0.2 (Debian 12). Things of that version this file works around:
 *   - rd_kafka_seek_partitions() waits timeout_ms *microseconds* (librdkafka #4230, fixed in
 *     2.2.0), so a seek often "times out" while it is still being applied. That is harmless:
 *     the seek bumps the partition's version barrier before returning, and consume_poll drops
 *     every message fetched under an older version, so nothing from before the rewind can
 *     reach the handler. _TIMED_OUT from a seek is therefore accepted.
 *   - rd_kafka_position() does not move past transaction control records (commit markers), so
 *     the offsets a batch commits are tracked from the records themselves (last offset + 1). */
#include "kafka.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlq.h"
#include "kafka_internal.h"
#include "log.h"
#include "metrics.h"

/* How often a retriable transactional call (send_offsets, commit, abort) is repeated before
 * the transaction is given up. */
#define CALL_ATTEMPTS 5

/* Sleeps ms, in slices of at most 100 ms, returning early once *stop is set. */
static void pause_ms(int64_t ms, const volatile sig_atomic_t *stop)
{
    int64_t end = cf_clock_mono_ms() + ms;
    while (stop == NULL || !*stop) {
        int64_t left = end - cf_clock_mono_ms();
        if (left <= 0)
            break;
        cf_clock_sleep_ms(left < 100 ? left : 100);
    }
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
    /* When each message of the batch came out of the consumer's poll (cf_clock_mono_us), kept
     * in step with batch: allocated once with it, so timing a record allocates nothing. */
    int64_t *polled_us;
    struct cf_metrics_histogram *latency; /* borrowed; NULL: records are not timed */
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

    /* The batch hooks (cf_kafka_loop_set_batch_hooks): NULL when there are none. */
    cf_kafka_batch_begin batch_begin;
    cf_kafka_batch_end batch_end;
    void *batch_ctx;

    /* The periodic task (cf_kafka_loop_set_timer): NULL when there is none. */
    cf_kafka_timer timer;
    cf_kafka_timer_done timer_done; /* NULL: the timer need not know */
    void *timer_ctx;
    int64_t timer_interval_ms;

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
    _Atomic uint64_t errors; /* what cf_kafka_loop_stats documents */
};

/* Counts one error the loop met and goes on from (cf_kafka_loop_stats says which). */
static void loop_count_error(struct cf_kafka_loop *loop)
{
    atomic_fetch_add_explicit(&loop->errors, 1, memory_order_relaxed);
}

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
            loop->polled_us[kept] = loop->polled_us[i];
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
    if (!kafka_apply_rebalance(rk, err, parts))
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

/* librdkafka's errors of either client (served by the loop's polls, on the loop's thread):
 * logged like every client's, and counted. A fatal one ends the loop through the call that
 * next fails, so it is not an error the loop goes on from. */
static void loop_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    if (err != RD_KAFKA_RESP_ERR__FATAL)
        loop_count_error(opaque);
    kafka_error_cb(rk, err, reason, opaque);
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
    if (!kafka_name_ok(service, 64))
        return cf_fail(errbuf, errlen, CF_EINVAL,
                       "loop: service name must be 1 to 64 "
                       "[A-Za-z0-9._-]");
    if ((st = kafka_check_topics(topics, ntopics, errbuf, errlen)) != CF_OK)
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
    if (!kafka_name_ok(instance, 64))
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
    loop->timeout_ms = kafka_clamp_timeout(cf_config_int(config, "CASEFLOW_KAFKA_TIMEOUT_MS"));
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
    loop->polled_us = calloc((size_t)loop->batch_max_records, sizeof(*loop->polled_us));
    if (loop->service == NULL || loop->group_id == NULL || loop->transactional_id == NULL ||
        loop->topics == NULL || loop->batch == NULL || loop->polled_us == NULL ||
        cf_kafka_out_new(&loop->out) != CF_OK) {
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
    st = kafka_conf_build(config, loop_producer_defaults,
                          sizeof(loop_producer_defaults) / sizeof(loop_producer_defaults[0]),
                          producer_fixed, sizeof(producer_fixed) / sizeof(producer_fixed[0]), loop,
                          &conf, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    rd_kafka_conf_set_dr_msg_cb(conf, loop_dr_cb);
    rd_kafka_conf_set_error_cb(conf, loop_error_cb);
    {
        char max[32];
        size_t max_len = sizeof(max);
        if (rd_kafka_conf_get(conf, "message.max.bytes", max, &max_len) != RD_KAFKA_CONF_OK) {
            st = cf_fail(errbuf, errlen, CF_ECONFIG, "message.max.bytes cannot be read");
            goto out;
        }
        loop->max_message_bytes = (size_t)strtoull(max, NULL, 10);
    }
    if ((st = kafka_client_new(RD_KAFKA_PRODUCER, &conf, &loop->producer, errbuf, errlen)) != CF_OK)
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
    st = kafka_conf_build(config, consumer_defaults,
                          sizeof(consumer_defaults) / sizeof(consumer_defaults[0]), consumer_fixed,
                          sizeof(consumer_fixed) / sizeof(consumer_fixed[0]), loop, &conf, errbuf,
                          errlen);
    if (st != CF_OK)
        goto out;
    rd_kafka_conf_set_rebalance_cb(conf, loop_rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, loop_error_cb);
    if ((st = kafka_client_new(RD_KAFKA_CONSUMER, &conf, &loop->consumer, errbuf, errlen)) != CF_OK)
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
    kafka_known_topic(loop->producer, &loop->known, topic, loop->timeout_ms);
    rd_kafka_resp_err_t err = kafka_enqueue(loop->producer, topic, key, key_len, value, value_len,
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
        (void)kafka_check_fatal(loop->producer, CF_EFATAL, errbuf, errlen);
    else
        loop_count_error(loop);
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
        cf_status st = cf_dlq_build(in, loop->service, reason, error_text, cf_clock_wall_ms(),
                                    flags, &d, derr, sizeof(derr));
        if (st != CF_OK) {
            CF_LOG(CF_LOG_ERROR, "dead_letter_build_failed", CF_LOG_ID("topic", in->topic),
                   CF_LOG_INT("partition", in->partition), CF_LOG_INT("offset", in->offset),
                   CF_LOG_ERR("reason", derr));
            cf_dlq_record_clear(&d);
            if (st != CF_ENOMEM)
                return CF_KAFKA_FATAL;
            loop_count_error(loop);
            return CF_KAFKA_ABORT;
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
    cf_status st = kafka_record_view(m, &loop->scratch, &loop->scratch_cap, &rec);

    if (st == CF_ENOMEM) {
        loop_count_error(loop);
        return CF_KAFKA_ABORT;
    }
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
        loop_count_error(loop);
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
    if (!ok)
        loop_count_error(loop);
    return ok;
}

/* Observes, for each record of the batch just committed, the time since its poll. */
static void loop_observe_latency(const struct cf_kafka_loop *loop)
{
    if (loop->latency == NULL)
        return;
    int64_t now = cf_clock_mono_us();
    for (size_t i = 0; i < loop->batch_len; i++)
        cf_metrics_observe(loop->latency, (double)(now - loop->polled_us[i]) / 1e6);
}

/* Adds the batch's offsets to the transaction and commits it. */
static enum step loop_commit(struct cf_kafka_loop *loop, char *errbuf, size_t errlen)
{
    rd_kafka_topic_partition_list_t *offsets = batch_offsets(loop, false);
    rd_kafka_consumer_group_metadata_t *cgmd = NULL;
    rd_kafka_error_t *error = NULL;
    enum step result = STEP_OK;

    if (loop->batch_len == 0) /* the timer's transaction: nothing was consumed */
        goto commit;
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
        if (a != CF_KAFKA_FATAL)
            loop_count_error(loop);
        if (a == CF_KAFKA_RETRY && attempt < CALL_ATTEMPTS) {
            cf_clock_sleep_ms(100 * attempt);
            continue;
        }
        result = a == CF_KAFKA_FATAL ? STEP_FATAL : STEP_ABORT;
        goto out;
    }
commit:
    for (int attempt = 1;; attempt++) {
        /* -1: the transaction's remaining time, as librdkafka recommends. */
        error = rd_kafka_commit_transaction(loop->producer, -1);
        if (error == NULL)
            break;
        enum cf_kafka_action a = loop_txn_error(loop, "commit_transaction", error, errbuf, errlen);
        if (a != CF_KAFKA_FATAL)
            loop_count_error(loop);
        if (a == CF_KAFKA_RETRY && attempt < CALL_ATTEMPTS) {
            cf_clock_sleep_ms(100 * attempt);
            continue;
        }
        result = a == CF_KAFKA_FATAL ? STEP_FATAL : STEP_ABORT;
        goto out;
    }
    loop_observe_latency(loop); /* before the counts: see cf_kafka_loop_set_latency */
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

/* Produces every output queued on loop->out inside the open transaction, on behalf of source
 * (which stands for it in produce_failed logs). STEP_FATAL aborts the transaction first. */
static enum step loop_produce_queued(struct cf_kafka_loop *loop,
                                     const struct cf_kafka_record *source, char *errbuf,
                                     size_t errlen)
{
    for (size_t i = 0; i < cf_kafka_out_count(loop->out); i++) {
        const struct cf_kafka_out_record *o = cf_kafka_out_get(loop->out, i);
        enum cf_kafka_action a =
            loop_produce(loop, o->topic, o->key, o->key_len, o->value, o->value_len, o->headers,
                         o->header_count, source, errbuf, errlen);
        if (a == CF_KAFKA_FATAL) {
            rd_kafka_error_destroy(rd_kafka_abort_transaction(loop->producer, loop->timeout_ms));
            return STEP_FATAL;
        }
        if (a != CF_KAFKA_PROCEED)
            return STEP_ABORT;
        loop->txn_outputs++;
    }
    return STEP_OK;
}

/* Runs the batch-end hook after the batch's records and produces its outputs in the batch's
 * transaction. A failure the loop would retry aborts the whole batch. */
static enum step loop_batch_end(struct cf_kafka_loop *loop, char *errbuf, size_t errlen)
{
    const struct cf_kafka_record source = {"(batch end)", -1, -1, NULL, 0, NULL, 0, NULL, 0, -1};
    char herr[CF_DLQ_ERROR_MAX + 1] = "";
    enum step result = STEP_OK;

    cf_kafka_out_reset(loop->out);
    cf_status st = loop->batch_end(loop->batch_ctx, loop->out, herr, sizeof(herr));
    if (st != CF_OK) {
        bool fatal = cf_kafka_status_action(st) == CF_KAFKA_FATAL;
        if (!fatal)
            loop_count_error(loop);
        CF_LOG(fatal ? CF_LOG_ERROR : CF_LOG_WARN, "batch_end_failed",
               CF_LOG_ERR("status", cf_strerror(st)), CF_LOG_ERR("error", herr));
        if (fatal) {
            rd_kafka_error_destroy(rd_kafka_abort_transaction(loop->producer, loop->timeout_ms));
            (void)cf_fail(errbuf, errlen, CF_EFATAL, "batch end: %s: %s", cf_strerror(st), herr);
        }
        result = fatal ? STEP_FATAL : STEP_ABORT;
        goto out;
    }
    if (!outputs_fit(loop)) {
        /* Nothing of this batch can be dead-lettered for it: it comes back after a pause. */
        loop_count_error(loop);
        CF_LOG(CF_LOG_ERROR, "batch_end_failed", CF_LOG_ERR("status", cf_strerror(CF_ETOOBIG)),
               CF_LOG_ERR("error", "an output is larger than message.max.bytes"));
        result = STEP_ABORT;
        goto out;
    }
    result = loop_produce_queued(loop, &source, errbuf, errlen);
out:
    cf_kafka_out_reset(loop->out);
    return result;
}

/* One transaction over the collected batch. */
static enum step loop_transaction(struct cf_kafka_loop *loop, char *errbuf, size_t errlen)
{
    rd_kafka_error_t *error = rd_kafka_begin_transaction(loop->producer);
    if (error != NULL) {
        /* begin fails only on a state error or a fatal one: neither is retriable. */
        (void)loop_txn_error(loop, "begin_transaction", error, errbuf, errlen);
        (void)kafka_check_fatal(loop->producer, CF_EFATAL, errbuf, errlen);
        return STEP_FATAL;
    }
    loop->txn_outputs = 0;
    loop->txn_dead_letters = 0;
    if (loop->batch_begin != NULL)
        loop->batch_begin(loop->batch_ctx);
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
    if (loop->batch_end != NULL) {
        enum step result = loop_batch_end(loop, errbuf, errlen);
        if (result != STEP_OK)
            return result;
    }
    return loop_commit(loop, errbuf, errlen);
}

/* Runs the timer and, if it queued outputs, produces them in a transaction of their own (no
 * consumed offsets). A timer's failure is logged and the timer tries again at its next turn;
 * only a fatal status ends the loop. */
static enum step loop_timer_transaction(struct cf_kafka_loop *loop, char *errbuf, size_t errlen)
{
    /* Stands for the source record in produce_failed logs. */
    const struct cf_kafka_record source = {"(timer)", -1, -1, NULL, 0, NULL, 0, NULL, 0, -1};
    char terr[CF_DLQ_ERROR_MAX + 1] = "";
    enum step result = STEP_OK;
    bool committed = false; /* what the timer queued is durable (or it queued nothing) */

    cf_kafka_out_reset(loop->out);
    cf_status st = loop->timer(loop->timer_ctx, cf_clock_wall_ms(), loop->out, terr, sizeof(terr));
    if (st != CF_OK) {
        bool fatal = cf_kafka_status_action(st) == CF_KAFKA_FATAL;
        if (!fatal)
            loop_count_error(loop);
        CF_LOG(fatal ? CF_LOG_ERROR : CF_LOG_WARN, "timer_failed",
               CF_LOG_ERR("status", cf_strerror(st)), CF_LOG_ERR("error", terr));
        if (fatal) {
            (void)cf_fail(errbuf, errlen, CF_EFATAL, "timer: %s: %s", cf_strerror(st), terr);
            result = STEP_FATAL;
        }
        goto out;
    }
    if (cf_kafka_out_count(loop->out) == 0) {
        committed = true;
        goto out;
    }
    if (!outputs_fit(loop)) {
        loop_count_error(loop);
        CF_LOG(CF_LOG_ERROR, "timer_failed", CF_LOG_ERR("status", cf_strerror(CF_ETOOBIG)),
               CF_LOG_ERR("error", "an output is larger than message.max.bytes"));
        goto out;
    }
    rd_kafka_error_t *error = rd_kafka_begin_transaction(loop->producer);
    if (error != NULL) {
        (void)loop_txn_error(loop, "begin_transaction", error, errbuf, errlen);
        (void)kafka_check_fatal(loop->producer, CF_EFATAL, errbuf, errlen);
        result = STEP_FATAL;
        goto out;
    }
    loop->txn_outputs = 0;
    loop->txn_dead_letters = 0;
    result = loop_produce_queued(loop, &source, errbuf, errlen);
    if (result == STEP_OK)
        result = loop_commit(loop, errbuf, errlen);
    committed = result == STEP_OK;
out:
    cf_kafka_out_reset(loop->out);
    if (loop->timer_done != NULL)
        loop->timer_done(loop->timer_ctx, committed);
    return result;
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
            loop_count_error(loop);
            cf_clock_sleep_ms(100 * attempt);
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
    if (!fatal) {
        loop_count_error(loop);
        return CF_OK;
    }
    return kafka_check_fatal(
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
            int64_t left = deadline - cf_clock_mono_ms();
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
            deadline = cf_clock_mono_ms() + loop->batch_max_ms;
        loop->polled_us[loop->batch_len] = cf_clock_mono_us();
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
        loop_count_error(loop);
        pause_ms(backoff, stop);
        if (*stop)
            return CF_OK;
        backoff = backoff * 2 < loop->backoff_max_ms ? backoff * 2 : loop->backoff_max_ms;
    }

    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err =
        kafka_topic_metadata(loop->producer, loop->dlq_topic, loop->timeout_ms, &md);
    if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        return cf_fail(errbuf, errlen, CF_ECONFIG,
                       "dead-letter topic %s does not exist (create the topics first)",
                       loop->dlq_topic);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return cf_fail(errbuf, errlen, CF_EIO, "dead-letter topic %s: %s", loop->dlq_topic,
                       rd_kafka_err2str(err));
    rd_kafka_metadata_destroy(md);

    rd_kafka_topic_partition_list_t *subscription =
        kafka_topic_list((const char *const *)loop->topics, loop->ntopics);
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
    int64_t timer_due = cf_clock_mono_ms();
    while (!*stop) {
        enum step r;
        if (loop->timer != NULL && cf_clock_mono_ms() >= timer_due) {
            /* Between batches, so the timer never runs inside a batch's transaction. */
            timer_due = cf_clock_mono_ms() + loop->timer_interval_ms;
            r = loop_timer_transaction(loop, errbuf, errlen);
        } else {
            if ((st = loop_collect(loop, stop, errbuf, errlen)) != CF_OK)
                goto out;
            if (loop->batch_len == 0)
                continue;
            /* Once collected, a batch is finished even if stop is set meanwhile. */
            r = loop_transaction(loop, errbuf, errlen);
        }
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
           CF_LOG_INT("records", atomic_load(&loop->records)),
           CF_LOG_INT("aborts", atomic_load(&loop->aborts)),
           CF_LOG_INT("errors", atomic_load(&loop->errors)));
out:
    if (st != CF_OK)
        CF_LOG(CF_LOG_ERROR, "kafka_loop_failed", CF_LOG_ERR("status", cf_strerror(st)),
               CF_LOG_ERR("reason", errbuf != NULL && errlen > 0 ? errbuf : ""));
    (void)loop_drop(loop, NULL);
    loop_close(loop);
    return st;
}

cf_status cf_kafka_loop_set_timer(struct cf_kafka_loop *loop, int interval_ms, cf_kafka_timer timer,
                                  void *timer_ctx)
{
    if (loop == NULL || timer == NULL || interval_ms < 1 || loop->ran)
        return CF_EINVAL;
    loop->timer = timer;
    loop->timer_ctx = timer_ctx;
    loop->timer_interval_ms = interval_ms;
    return CF_OK;
}

cf_status cf_kafka_loop_set_timer_done(struct cf_kafka_loop *loop, cf_kafka_timer_done done)
{
    if (loop == NULL || done == NULL || loop->timer == NULL || loop->ran)
        return CF_EINVAL;
    loop->timer_done = done;
    return CF_OK;
}

cf_status cf_kafka_loop_set_batch_hooks(struct cf_kafka_loop *loop, cf_kafka_batch_begin begin,
                                        cf_kafka_batch_end end, void *ctx)
{
    if (loop == NULL || begin == NULL || end == NULL || loop->ran)
        return CF_EINVAL;
    loop->batch_begin = begin;
    loop->batch_end = end;
    loop->batch_ctx = ctx;
    return CF_OK;
}

cf_status cf_kafka_loop_set_latency(struct cf_kafka_loop *loop,
                                    struct cf_metrics_histogram *histogram)
{
    if (loop == NULL || loop->ran)
        return CF_EINVAL;
    loop->latency = histogram;
    return CF_OK;
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
    out->errors = atomic_load(&loop->errors);
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
    kafka_known_topics_clear(&loop->known);
    cf_kafka_out_free(loop->out);
    free(loop->scratch);
    free(loop->batch);
    free(loop->polled_us);
    for (size_t i = 0; i < loop->ntopics; i++)
        free(loop->topics[i]);
    free(loop->topics);
    free(loop->transactional_id);
    free(loop->group_id);
    free(loop->service);
    free(loop);
}
