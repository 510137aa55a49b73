/* kafka_admin.c — topic administration and group progress (see kafka.h): creating and
 * describing topics, reading a group's committed offsets; what it shares with the other
 * kafka*.c files is in kafka_internal.h. */
#include "kafka.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_internal.h"
#include "log.h"

/* An admin client: a producer that never produces. */
static cf_status admin_new(const struct cf_config *config, rd_kafka_t **out, char *errbuf,
                           size_t errlen)
{
    rd_kafka_conf_t *conf = NULL;
    cf_status st =
        kafka_conf_build(config, kafka_producer_defaults,
                         sizeof(kafka_producer_defaults) / sizeof(kafka_producer_defaults[0]), NULL,
                         0, NULL, &conf, errbuf, errlen);
    if (st == CF_OK)
        st = kafka_client_new(RD_KAFKA_PRODUCER, &conf, out, errbuf, errlen);
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return st;
}

static cf_status check_spec(const struct cf_topic_spec *s, char *errbuf, size_t errlen)
{
    if (!kafka_name_ok(s->name, TOPIC_MAX))
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

    if (out == NULL || !kafka_name_ok(topic, TOPIC_MAX))
        return cf_fail(errbuf, errlen, CF_EINVAL, "describe topic: bad topic name or output");
    memset(out, 0, sizeof(*out));
    if ((st = admin_new(config, &rk, errbuf, errlen)) != CF_OK)
        goto out;
    rd_kafka_resp_err_t err = kafka_topic_metadata(rk, topic, timeout_ms, &md);
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

/* A consumer that names group_id but never subscribes: it reads and commits the group's offsets
 * without joining it. read_committed makes the broker answer only with offsets of committed
 * transactions. */
static cf_status group_client_new(const struct cf_config *config, const char *group_id,
                                  rd_kafka_t **rk, char *errbuf, size_t errlen)
{
    rd_kafka_conf_t *conf = NULL;
    const struct kv fixed[] = {
        {"group.id", group_id},
        {"enable.auto.commit", "false"},
        {"isolation.level", "read_committed"},
    };
    cf_status st = kafka_conf_build(config, NULL, 0, fixed, sizeof(fixed) / sizeof(fixed[0]), NULL,
                                    &conf, errbuf, errlen);
    if (st == CF_OK)
        st = kafka_client_new(RD_KAFKA_CONSUMER, &conf, rk, errbuf, errlen);
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return st;
}

static void group_client_free(rd_kafka_t *rk)
{
    if (rk != NULL) {
        (void)rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
}

/* Appends every partition of topic to list. CF_ENOTFOUND if the topic does not exist. */
static cf_status add_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms,
                                rd_kafka_topic_partition_list_t *list, char *errbuf, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = kafka_topic_metadata(rk, topic, timeout_ms, &md);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return cf_fail(errbuf, errlen,
                       err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? CF_ENOTFOUND : CF_EKAFKA,
                       "topic %s: %s", topic, rd_kafka_err2str(err));
    for (int p = 0; p < md->topics[0].partition_cnt; p++)
        rd_kafka_topic_partition_list_add(list, topic, md->topics[0].partitions[p].id);
    rd_kafka_metadata_destroy(md);
    return CF_OK;
}

cf_status cf_kafka_group_progress(const struct cf_config *config, const char *group_id,
                                  const char *topic, int timeout_ms,
                                  struct cf_kafka_group_progress *out, char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *list = NULL;

    if (out == NULL || group_id == NULL || group_id[0] == '\0' || !kafka_name_ok(topic, TOPIC_MAX))
        return cf_fail(errbuf, errlen, CF_EINVAL, "group progress: bad group, topic or output");
    memset(out, 0, sizeof(*out));
    if ((st = group_client_new(config, group_id, &rk, errbuf, errlen)) != CF_OK)
        goto out;
    list = rd_kafka_topic_partition_list_new(8);
    if ((st = add_partitions(rk, topic, timeout_ms, list, errbuf, errlen)) != CF_OK)
        goto out;
    rd_kafka_resp_err_t err = rd_kafka_committed(rk, list, timeout_ms);
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
    group_client_free(rk);
    return st;
}

cf_status cf_kafka_group_to_end(const struct cf_config *config, const char *group_id,
                                const char *const *topics, size_t ntopics, int timeout_ms,
                                char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *list = NULL;

    if (group_id == NULL || group_id[0] == '\0' || topics == NULL || ntopics == 0)
        return cf_fail(errbuf, errlen, CF_EINVAL, "group to end: bad group or topics");
    for (size_t t = 0; t < ntopics; t++)
        if (!kafka_name_ok(topics[t], TOPIC_MAX))
            return cf_fail(errbuf, errlen, CF_EINVAL, "group to end: bad topic name");
    if ((st = group_client_new(config, group_id, &rk, errbuf, errlen)) != CF_OK)
        goto out;
    list = rd_kafka_topic_partition_list_new(8);
    for (size_t t = 0; st == CF_OK && t < ntopics; t++)
        st = add_partitions(rk, topics[t], timeout_ms, list, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    for (int i = 0; i < list->cnt; i++) {
        int64_t low = 0;
        int64_t high = 0;
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
            rk, list->elems[i].topic, list->elems[i].partition, &low, &high, timeout_ms);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            st = cf_fail(errbuf, errlen, CF_EKAFKA, "end offsets of %s: %s", list->elems[i].topic,
                         rd_kafka_err2str(err));
            goto out;
        }
        list->elems[i].offset = high;
    }
    /* Not a member of the group: the broker takes the commit only while the group has no
     * members (it answers UNKNOWN_MEMBER_ID or a rebalance error otherwise). */
    rd_kafka_resp_err_t err = rd_kafka_commit(rk, list, 0);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        st = cf_fail(errbuf, errlen, CF_EKAFKA,
                     "committing the end offsets for %s (is a member running?): %s", group_id,
                     rd_kafka_err2str(err));
out:
    if (list != NULL)
        rd_kafka_topic_partition_list_destroy(list);
    group_client_free(rk);
    return st;
}
