/* kafka_consumer.c — the group or assign-all consumer of kafka.h and the records it hands out;
 * what it shares with the other kafka*.c files is in kafka_internal.h. */
#include "kafka.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka_internal.h"
#include "log.h"

struct cf_kafka_consumer {
    rd_kafka_t *rk;
    bool grouped;
    bool closed;
    bool broken; /* a rebalance could not be applied */
    rd_kafka_topic_partition_list_t *mark; /* end offsets of cf_kafka_consumer_mark_end */
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
    if (!kafka_apply_rebalance(rk, err, parts))
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
        rd_kafka_resp_err_t err = kafka_topic_metadata(rk, topics[i], timeout_ms, &md);
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
    if ((st = kafka_check_topics(topics, ntopics, errbuf, errlen)) != CF_OK)
        return st;
    if (group_id != NULL && (group_id[0] == '\0' || strlen(group_id) > 255))
        return cf_fail(errbuf, errlen, CF_EINVAL, "consumer: group id must be 1 to 255 bytes");
    if (group_id == NULL) {
        /* librdkafka's consumer_poll needs a group.id even for a plain assign(); this one is
         * never joined and never committed to, so no group appears on the broker. */
        (void)snprintf(private_group, sizeof(private_group), "caseflow-private-%ld-%" PRId64,
                       (long)getpid(), cf_clock_wall_ms());
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
    st = kafka_conf_build(config, defaults_kv, sizeof(defaults_kv) / sizeof(defaults_kv[0]), fixed,
                          sizeof(fixed) / sizeof(fixed[0]), c, &conf, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    rd_kafka_conf_set_rebalance_cb(conf, consumer_rebalance_cb);
    if ((st = kafka_client_new(RD_KAFKA_CONSUMER, &conf, &c->rk, errbuf, errlen)) != CF_OK)
        goto out;
    /* One queue for messages, rebalances, errors and logs, served by consumer_poll. */
    rd_kafka_resp_err_t err = rd_kafka_poll_set_consumer(c->rk);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        st = cf_fail(errbuf, errlen, CF_EKAFKA, "consumer: %s", rd_kafka_err2str(err));
        goto out;
    }
    if (c->grouped) {
        subscription = kafka_topic_list(topics, ntopics);
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
        return st == CF_EFATAL ? kafka_check_fatal(consumer->rk, st, errbuf, errlen) : st;
    }
    if ((box = calloc(1, sizeof(*box))) == NULL) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "poll: out of memory");
        goto fail;
    }
    box->msg = m;
    st = kafka_record_view(m, &box->headers, &cap, &box->record);
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
    return kafka_check_fatal(
        consumer->rk, cf_fail(errbuf, errlen, CF_EKAFKA, "commit: %s", rd_kafka_err2str(err)),
        errbuf, errlen);
}

cf_status cf_kafka_consumer_mark_end(struct cf_kafka_consumer *consumer, int timeout_ms,
                                     char *errbuf, size_t errlen)
{
    rd_kafka_topic_partition_list_t *parts = NULL, *firsts = NULL;
    cf_status st = CF_OK;

    if (consumer == NULL || consumer->grouped)
        return cf_fail(errbuf, errlen, CF_EINVAL, "mark end: not a consumer of no group");
    rd_kafka_topic_partition_list_t *assigned = NULL;
    rd_kafka_resp_err_t err = rd_kafka_assignment(consumer->rk, &assigned);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return cf_fail(errbuf, errlen, CF_EKAFKA, "mark end: %s", rd_kafka_err2str(err));
    /* A plain copy of topic and partition: the assignment's elements hold references to the
     * client's partitions, and a list kept past rd_kafka_destroy would make it wait forever. */
    parts = rd_kafka_topic_partition_list_new(assigned->cnt);
    for (int i = 0; i < assigned->cnt; i++)
        rd_kafka_topic_partition_list_add(parts, assigned->elems[i].topic,
                                          assigned->elems[i].partition);
    rd_kafka_topic_partition_list_destroy(assigned);
    /* Two ListOffsets requests per broker for every partition, the first offsets then the end
     * offsets (read_committed: the end of what is committed). A request per partition would
     * wait behind the fetch already pending on the same connection, up to fetch.wait.max.ms
     * each time. */
    firsts = rd_kafka_topic_partition_list_copy(parts);
    for (int i = 0; i < parts->cnt; i++) {
        firsts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
        parts->elems[i].offset = RD_KAFKA_OFFSET_END;
    }
    if (parts->cnt > 0) {
        err = rd_kafka_offsets_for_times(consumer->rk, firsts, timeout_ms);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            err = rd_kafka_offsets_for_times(consumer->rk, parts, timeout_ms);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            st = cf_fail(errbuf, errlen, CF_EKAFKA, "mark end: %s", rd_kafka_err2str(err));
            goto out;
        }
    }
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        rd_kafka_resp_err_t perr = p->err != RD_KAFKA_RESP_ERR_NO_ERROR ? p->err
                                                                        : firsts->elems[i].err;
        if (perr != RD_KAFKA_RESP_ERR_NO_ERROR) {
            st = cf_fail(errbuf, errlen, CF_EKAFKA, "mark end: %s [%" PRId32 "]: %s", p->topic,
                         p->partition, rd_kafka_err2str(perr));
            goto out;
        }
        /* An empty partition (first == end) has nothing to wait for: mark it as -1, which any
         * position, even "none consumed yet", reaches. */
        if (p->offset <= firsts->elems[i].offset)
            p->offset = -1;
    }
    if (consumer->mark != NULL)
        rd_kafka_topic_partition_list_destroy(consumer->mark);
    consumer->mark = parts;
    parts = NULL;
out:
    if (parts != NULL)
        rd_kafka_topic_partition_list_destroy(parts);
    if (firsts != NULL)
        rd_kafka_topic_partition_list_destroy(firsts);
    return st;
}

bool cf_kafka_consumer_at_mark(const struct cf_kafka_consumer *consumer)
{
    if (consumer == NULL || consumer->mark == NULL)
        return false;
    rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_copy(consumer->mark);
    bool reached = rd_kafka_position(consumer->rk, pos) == RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; reached && i < pos->cnt; i++) {
        int64_t want = consumer->mark->elems[i].offset;
        /* position is the offset after the last record handed out (RD_KAFKA_OFFSET_INVALID, a
         * negative value, before the first). */
        reached = want < 0 || pos->elems[i].offset >= want;
    }
    rd_kafka_topic_partition_list_destroy(pos);
    return reached;
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
    if (consumer->mark != NULL)
        rd_kafka_topic_partition_list_destroy(consumer->mark);
    rd_kafka_destroy(consumer->rk);
    free(consumer);
}
