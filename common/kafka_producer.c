/* kafka_producer.c — the idempotent (optionally transactional) producer of kafka.h; what it
 * shares with the other kafka*.c files is in kafka_internal.h. */
#include "kafka.h"

#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "kafka_internal.h"
#include "log.h"

/* A message's opaque (_private) says whose report it is: NULL for cf_kafka_produce (counted
 * for the next flush), an odd number (seq << 1 | 1) for cf_kafka_produce_sync, and otherwise
 * (malloc'd, so even) a struct async_report of cf_kafka_produce_async, freed by its report. */
struct async_report {
    cf_kafka_delivery_fn fn;
    void *opaque;
};

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
    /* cf_kafka_produce_async records not reported yet: _free purges them so that each
     * async_report is freed (and its caller told) exactly once. */
    size_t async_pending;
    /* The main queue while a wake fd is set (cf_kafka_producer_wake_fd), else NULL. */
    rd_kafka_queue_t *wake_queue;
    struct known_topics known;
};

static void producer_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct cf_kafka_producer *p = opaque;
    uintptr_t tag = (uintptr_t)m->_private;
    uint64_t seq = (tag & 1u) != 0 ? (uint64_t)(tag >> 1) : 0;

    (void)rk;
    if (tag != 0 && (tag & 1u) == 0) {
        struct async_report *r = m->_private;
        char reason[ERRSTR_MAX] = "";
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
            (void)snprintf(reason, sizeof(reason), "producing to %s: %s",
                           rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        p->async_pending--;
        r->fn(r->opaque, m->err == RD_KAFKA_RESP_ERR_NO_ERROR ? CF_OK : CF_EKAFKA, reason);
        free(r);
        return;
    }
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
        if (!kafka_name_ok(transactional_id, 255))
            return cf_fail(errbuf, errlen, CF_EINVAL,
                           "producer: transactional id must be [A-Za-z0-9._-]");
        fixed[nfixed++] = (struct kv){"transactional.id", transactional_id};
    }
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "producer: out of memory");
    p->transactional = transactional_id != NULL;
    st = kafka_conf_build(config, kafka_producer_defaults,
                          sizeof(kafka_producer_defaults) / sizeof(kafka_producer_defaults[0]),
                          fixed, nfixed, p, &conf, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    rd_kafka_conf_set_dr_msg_cb(conf, producer_dr_cb);
    if ((st = kafka_client_new(RD_KAFKA_PRODUCER, &conf, &p->rk, errbuf, errlen)) != CF_OK)
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
    return kafka_check_fatal(p->rk, st, errbuf, errlen);
}

cf_status cf_kafka_produce(struct cf_kafka_producer *producer, const char *topic, const void *key,
                           size_t key_len, const void *value, size_t value_len,
                           const struct cf_header *headers, size_t header_count, char *errbuf,
                           size_t errlen)
{
    if (producer == NULL || topic == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "produce: no producer or topic");
    kafka_known_topic(producer->rk, &producer->known, topic, 10000);
    rd_kafka_resp_err_t err = kafka_enqueue(producer->rk, topic, key, key_len, value, value_len,
                                            headers, header_count, NULL, 60000);
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
    return kafka_check_fatal(producer->rk, st, errbuf, errlen);
}

cf_status cf_kafka_produce_sync(struct cf_kafka_producer *producer, const char *topic,
                                const void *key, size_t key_len, const void *value,
                                size_t value_len, const struct cf_header *headers,
                                size_t header_count, int timeout_ms, char *errbuf, size_t errlen)
{
    if (producer == NULL || topic == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "produce: no producer or topic");
    int64_t deadline = cf_clock_mono_ms() + timeout_ms;
    kafka_known_topic(producer->rk, &producer->known, topic, timeout_ms);
    uint64_t seq = ++producer->next_seq;
    producer->wait_seq = seq;
    producer->wait_done = false;
    rd_kafka_resp_err_t err =
        kafka_enqueue(producer->rk, topic, key, key_len, value, value_len, headers, header_count,
                      (void *)(uintptr_t)((seq << 1) | 1u), timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        producer->wait_seq = 0;
        return produce_failed(producer, topic, err, errbuf, errlen);
    }
    while (!producer->wait_done) {
        int64_t left = deadline - cf_clock_mono_ms();
        if (left <= 0)
            break;
        /* flush serves delivery reports and returns as soon as the queue is empty. */
        (void)rd_kafka_flush(producer->rk, (int)(left < POLL_MAX_MS ? left : POLL_MAX_MS));
    }
    producer->wait_seq = 0; /* a late report for this record is only logged */
    if (!producer->wait_done)
        return kafka_check_fatal(producer->rk,
                                 cf_fail(errbuf, errlen, CF_ETIMEOUT,
                                         "producing to %s: no delivery report within %d ms", topic,
                                         timeout_ms),
                                 errbuf, errlen);
    if (producer->wait_err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return produce_failed(producer, topic, producer->wait_err, errbuf, errlen);
    return CF_OK;
}

cf_status cf_kafka_produce_async(struct cf_kafka_producer *producer, const char *topic,
                                 const void *key, size_t key_len, const void *value,
                                 size_t value_len, const struct cf_header *headers,
                                 size_t header_count, cf_kafka_delivery_fn on_delivery,
                                 void *opaque, char *errbuf, size_t errlen)
{
    if (producer == NULL || topic == NULL || on_delivery == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "produce: no producer, topic or callback");
    struct async_report *r = malloc(sizeof(*r));
    if (r == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "produce: out of memory");
    r->fn = on_delivery;
    r->opaque = opaque;
    /* Timeout 0: a full queue fails at once instead of polling here, which would run other
     * records' callbacks inside this call. */
    rd_kafka_resp_err_t err = kafka_enqueue(producer->rk, topic, key, key_len, value, value_len,
                                            headers, header_count, r, 0);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        free(r);
        return produce_failed(producer, topic, err, errbuf, errlen);
    }
    producer->async_pending++;
    return CF_OK;
}

int cf_kafka_producer_poll(struct cf_kafka_producer *producer, int timeout_ms)
{
    if (producer == NULL)
        return 0;
    return rd_kafka_poll(producer->rk, timeout_ms);
}

void cf_kafka_producer_wake_fd(struct cf_kafka_producer *producer, int fd)
{
    static const char byte = 1;
    if (producer == NULL)
        return;
    if (producer->wake_queue == NULL) {
        if (fd < 0)
            return;
        producer->wake_queue = rd_kafka_queue_get_main(producer->rk);
    }
    rd_kafka_queue_io_event_enable(producer->wake_queue, fd, fd >= 0 ? &byte : NULL,
                                   fd >= 0 ? 1 : 0);
    if (fd < 0) {
        rd_kafka_queue_destroy(producer->wake_queue);
        producer->wake_queue = NULL;
    }
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
    return st == CF_EFATAL ? st : kafka_check_fatal(producer->rk, st, errbuf, errlen);
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
    if (producer->async_pending > 0) {
        /* rd_kafka_destroy drops undelivered records without a report: purged, they are
         * reported (_PURGED_QUEUE / _PURGED_INFLIGHT) by the poll below, so every async
         * caller hears of its record and every async_report is freed. */
        (void)rd_kafka_purge(producer->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        for (int i = 0; i < 20 && producer->async_pending > 0; i++)
            (void)rd_kafka_poll(producer->rk, 100);
    }
    cf_kafka_producer_wake_fd(producer, -1);
    rd_kafka_destroy(producer->rk);
    kafka_known_topics_clear(&producer->known);
    free(producer);
}
