/* read.c — reading a key's records from topics as they are now: what `consult complete`,
 * `reschedule`, `cancel` (the newest booking) and `case` (the whole timeline) share. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "clock.h"
#include "ctl.h"
#include "kafka.h"

/* Longest wait in one poll, so a signal is seen quickly (STYLE.md: ≤ 500 ms). */
#define POLL_MS 200

int ctl_read_key(const struct ctl *ctl, const char *cmd, const char *const *topics, size_t n,
                 const char *key, ctl_record_fn fn, void *ctx)
{
    struct cf_registry *registry = NULL;
    struct cf_serde *serde = NULL;
    struct cf_kafka_consumer *consumer = NULL;
    char err[CTL_ERR_MAX];
    size_t key_len = strlen(key);
    int rc = CTL_EXIT_FAIL;
    cf_status st;

    st = ctl_serde_open(ctl, &registry, &serde, err, sizeof(err));
    if (st != CF_OK) {
        ctl_error("%s: %s (%s)", cmd, err, cf_strerror(st));
        goto out;
    }
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
        if (r->key == NULL || r->key_len != key_len || memcmp(r->key, key, key_len) != 0) {
            cf_kafka_record_release(r);
            continue;
        }
        json_t *value = NULL;
        err[0] = '\0';
        if (r->value != NULL) {
            st = cf_serde_decode_json(serde, r->topic, r->value, r->value_len, &value, err,
                                      sizeof(err));
            if (st == CF_ENOMEM) {
                cf_kafka_record_release(r);
                ctl_error("%s: out of memory", cmd);
                goto out;
            }
            if (st != CF_OK && err[0] == '\0')
                (void)snprintf(err, sizeof(err), "%s", cf_strerror(st));
        }
        int stop = fn(ctx, r, value, value == NULL && r->value != NULL ? err : NULL);
        json_decref(value);
        cf_kafka_record_release(r);
        if (stop != 0) {
            rc = stop;
            goto out;
        }
    }
    rc = CTL_EXIT_OK;
out:
    cf_kafka_consumer_free(consumer);
    ctl_serde_close(registry, serde);
    return rc;
}
