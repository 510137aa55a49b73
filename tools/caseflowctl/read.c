/* read.c — reading topics as they are now: every record up to the end offsets they have when
 * the command starts (dlq list and replay), or a key's records decoded (consult complete,
 * reschedule, cancel: the newest booking; case: the whole timeline). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "ctl.h"
#include "kafka.h"

/* Longest wait in one poll, so a signal is seen quickly (STYLE.md: ≤ 500 ms). */
#define POLL_MS 200

int ctl_read_topics(const struct ctl *ctl, const char *cmd, const char *const *topics, size_t n,
                    ctl_raw_fn fn, void *ctx)
{
    struct cf_kafka_consumer *consumer = NULL;
    char err[CTL_ERR_MAX];
    int rc = CTL_EXIT_FAIL;
    cf_status st;

    const struct cf_kafka_consumer_options copts = {
        .auto_commit = false,
        .read_uncommitted = false, /* the services write in transactions */
        .offset_reset = "earliest",
    };
    /* No group: every partition, nothing committed, no trace left on the cluster. */
    st = cf_kafka_consumer_new(ctl->config, NULL, topics, n, &copts, &consumer, err, sizeof(err));
    if (st == CF_OK)
        st = cf_kafka_consumer_mark_end(consumer, ctl->kafka_timeout_ms, err, sizeof(err));
    if (st != CF_OK) {
        ctl_error("%s: %s (%s)", cmd, err, cf_strerror(st));
        goto out;
    }
    /* The deadline moves with every record, so long topics are read to their end as long as
     * records keep coming; a broker that goes quiet ends the wait. */
    int64_t deadline = cf_clock_mono_ms() + ctl->kafka_timeout_ms;
    while (!cf_kafka_consumer_at_mark(consumer)) {
        struct cf_kafka_record *r = NULL;
        if (*ctl->stop) {
            ctl_error("%s: interrupted while reading", cmd);
            goto out;
        }
        if (cf_clock_mono_ms() > deadline) {
            ctl_error("%s: the topics were not read to their end within %d ms", cmd,
                      ctl->kafka_timeout_ms);
            goto out;
        }
        st = cf_kafka_consumer_poll(consumer, POLL_MS, &r, err, sizeof(err));
        if (st == CF_ETIMEOUT || st == CF_EKAFKA)
            continue; /* nothing yet, or an error the consumer logged and goes past */
        if (st != CF_OK) {
            ctl_error("%s: %s (%s)", cmd, err, cf_strerror(st));
            goto out;
        }
        deadline = cf_clock_mono_ms() + ctl->kafka_timeout_ms;
        int stop = fn(ctx, r);
        cf_kafka_record_release(r);
        if (stop != 0) {
            rc = stop == CTL_READ_DONE ? CTL_EXIT_OK : stop;
            goto out;
        }
    }
    rc = CTL_EXIT_OK;
out:
    cf_kafka_consumer_free(consumer);
    return rc;
}

/* What ctl_read_key's raw callback needs: the key, the decoder and the caller's callback. */
struct key_reader {
    const char *cmd;
    const char *key;
    size_t key_len;
    struct cf_serde *serde;
    ctl_record_fn fn;
    void *ctx;
};

static int read_key_record(void *ctx, const struct cf_kafka_record *r)
{
    struct key_reader *kr = ctx;
    char err[CTL_ERR_MAX];
    json_t *value = NULL;

    if (r->key == NULL || r->key_len != kr->key_len || memcmp(r->key, kr->key, kr->key_len) != 0)
        return 0;
    err[0] = '\0';
    if (r->value != NULL) {
        cf_status st = cf_serde_decode_json(kr->serde, r->topic, r->value, r->value_len, &value,
                                            err, sizeof(err));
        if (st == CF_ENOMEM) {
            ctl_error("%s: out of memory", kr->cmd);
            return CTL_EXIT_FAIL;
        }
        if (st != CF_OK && err[0] == '\0')
            (void)snprintf(err, sizeof(err), "%s", cf_strerror(st));
    }
    int stop = kr->fn(kr->ctx, r, value, value == NULL && r->value != NULL ? err : NULL);
    json_decref(value);
    return stop;
}

int ctl_read_key(const struct ctl *ctl, const char *cmd, const char *const *topics, size_t n,
                 const char *key, ctl_record_fn fn, void *ctx)
{
    struct cf_registry *registry = NULL;
    char err[CTL_ERR_MAX];
    struct key_reader kr = {cmd, key, strlen(key), NULL, fn, ctx};

    cf_status st = ctl_serde_open(ctl, &registry, &kr.serde, err, sizeof(err));
    if (st != CF_OK) {
        ctl_error("%s: %s (%s)", cmd, err, cf_strerror(st));
        return CTL_EXIT_FAIL;
    }
    int rc = ctl_read_topics(ctl, cmd, topics, n, read_key_record, &kr);
    ctl_serde_close(registry, kr.serde);
    return rc;
}
