/* roster_view.c — the newest entry of every key of a compacted roster topic (roster_view.h). */
#include "roster_view.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "kafka.h"
#include "log.h"
#include "topics.h"

/* Longest id accepted as a key; the rosters' ids are short operator-chosen names. */
#define ROSTER_ID_MAX 256

struct cf_roster_view {
    struct cf_serde *serde;
    const struct cf_topic *topic;
    struct cf_kafka_consumer *consumer;
    json_t *entries;
    /* A record whose decoding failed for a reason that passes (the registry unreachable): kept
     * and tried again first by the next call, so no roster change is lost to an outage. */
    struct cf_kafka_record *held;
    uint64_t version;
    uint64_t skipped;
};

cf_status cf_roster_view_new(const struct cf_config *config, struct cf_serde *serde,
                             const char *topic, struct cf_roster_view **out, char *errbuf,
                             size_t errlen)
{
    struct cf_roster_view *view = NULL;
    cf_status st = CF_OK;

    if (out == NULL || serde == NULL || topic == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "roster view: missing argument");
    *out = NULL;
    const struct cf_topic *t = cf_topics_find(topic);
    if (t == NULL || !t->compacted)
        return cf_fail(errbuf, errlen, CF_EINVAL, "roster view: %s is not a compacted topic",
                       topic);
    if ((view = calloc(1, sizeof(*view))) == NULL || (view->entries = json_object()) == NULL) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "roster view: out of memory");
        goto out;
    }
    view->serde = serde;
    view->topic = t;
    st = cf_kafka_consumer_new(config, NULL, &t->name, 1, NULL, &view->consumer, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    *out = view;
    view = NULL;
out:
    cf_roster_view_free(view);
    return st;
}

/* Copies the record's key into id (NUL-terminated). False for a null, empty, overlong or
 * NUL-holding key. */
static bool key_of(const struct cf_kafka_record *rec, char id[ROSTER_ID_MAX + 1])
{
    if (rec->key == NULL || rec->key_len == 0 || rec->key_len > ROSTER_ID_MAX ||
        memchr(rec->key, '\0', rec->key_len) != NULL)
        return false;
    memcpy(id, rec->key, rec->key_len);
    id[rec->key_len] = '\0';
    return true;
}

static void skip(struct cf_roster_view *view, const struct cf_kafka_record *rec, const char *why)
{
    view->skipped++;
    CF_LOG(CF_LOG_WARN, "roster_record_skipped", CF_LOG_ID("topic", rec->topic),
           CF_LOG_INT("partition", rec->partition), CF_LOG_INT("offset", rec->offset),
           CF_LOG_ERR("reason", why));
}

/* Applies one record. CF_OK when it was applied or skipped for good; a status for which the
 * caller keeps it to try again (the registry could not be reached). */
static cf_status apply(struct cf_roster_view *view, const struct cf_kafka_record *rec,
                       bool *changed)
{
    char id[ROSTER_ID_MAX + 1];
    char err[256] = "";
    json_t *entry = NULL;

    if (!key_of(rec, id)) {
        skip(view, rec, "the key is not an id");
        return CF_OK;
    }
    if (rec->value == NULL) { /* a tombstone */
        if (json_object_del(view->entries, id) == 0) {
            view->version++;
            *changed = true;
        }
        return CF_OK;
    }
    cf_status st = cf_serde_decode_json(view->serde, view->topic->name, rec->value, rec->value_len,
                                        &entry, err, sizeof(err));
    if (st == CF_EIO || st == CF_ETIMEOUT || st == CF_ENOMEM)
        return st;
    if (st != CF_OK) {
        skip(view, rec, err);
        return CF_OK;
    }
    const char *field = json_string_value(json_object_get(entry, view->topic->key_field));
    if (field == NULL || strcmp(field, id) != 0) {
        json_decref(entry);
        skip(view, rec, "the key does not equal the entry's id");
        return CF_OK;
    }
    if (json_object_set_new(view->entries, id, entry) != 0)
        return CF_ENOMEM;
    view->version++;
    *changed = true;
    return CF_OK;
}

/* Applies what the consumer has, waiting up to wait_ms for the first record when there is
 * none. CF_OK when it ran dry; CF_EKAFKA and the decode statuses worth a retry otherwise. */
static cf_status drain(struct cf_roster_view *view, int wait_ms, bool *changed, char *errbuf,
                       size_t errlen)
{
    cf_status st;

    if (view->held != NULL) {
        if ((st = apply(view, view->held, changed)) != CF_OK)
            return cf_fail(errbuf, errlen, st, "roster %s: a record could not be decoded yet: %s",
                           view->topic->name, cf_strerror(st));
        cf_kafka_record_release(view->held);
        view->held = NULL;
    }
    for (;;) {
        struct cf_kafka_record *rec = NULL;
        st = cf_kafka_consumer_poll(view->consumer, wait_ms, &rec, errbuf, errlen);
        if (st == CF_ETIMEOUT)
            return CF_OK;
        if (st != CF_OK)
            return st;
        wait_ms = 0;
        if ((st = apply(view, rec, changed)) != CF_OK) {
            view->held = rec;
            return cf_fail(errbuf, errlen, st, "roster %s: a record could not be decoded yet: %s",
                           view->topic->name, cf_strerror(st));
        }
        cf_kafka_record_release(rec);
    }
}

cf_status cf_roster_view_sync(struct cf_roster_view *view, int timeout_ms, char *errbuf,
                              size_t errlen)
{
    bool changed = false;

    if (view == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "roster view: none");
    int64_t deadline = cf_clock_mono_ms() + timeout_ms;
    cf_status st = cf_kafka_consumer_mark_end(view->consumer, timeout_ms, errbuf, errlen);
    if (st != CF_OK)
        return st;
    while (!cf_kafka_consumer_at_mark(view->consumer)) {
        int64_t left = deadline - cf_clock_mono_ms();
        if (left <= 0)
            return cf_fail(errbuf, errlen, CF_ETIMEOUT,
                           "roster %s: not read to its end within %d ms", view->topic->name,
                           timeout_ms);
        st = drain(view, left < 100 ? (int)left : 100, &changed, errbuf, errlen);
        /* A consumer error or an unreachable registry may pass before the deadline. */
        if (st != CF_OK && st != CF_EKAFKA && st != CF_EIO && st != CF_ETIMEOUT)
            return st;
        if (st != CF_OK)
            cf_clock_sleep_ms(100);
    }
    CF_LOG(CF_LOG_INFO, "roster_synced", CF_LOG_ID("topic", view->topic->name),
           CF_LOG_INT("entries", (long long)json_object_size(view->entries)));
    return CF_OK;
}

cf_status cf_roster_view_poll(struct cf_roster_view *view, bool *changed, char *errbuf,
                              size_t errlen)
{
    bool any = false;

    if (view == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "roster view: none");
    cf_status st = drain(view, 0, &any, errbuf, errlen);
    if (changed != NULL)
        *changed = any;
    return st;
}

const json_t *cf_roster_view_entries(const struct cf_roster_view *view)
{
    return view->entries;
}

const json_t *cf_roster_view_find(const struct cf_roster_view *view, const char *id)
{
    return id != NULL ? json_object_get(view->entries, id) : NULL;
}

uint64_t cf_roster_view_version(const struct cf_roster_view *view)
{
    return view->version;
}

uint64_t cf_roster_view_skipped(const struct cf_roster_view *view)
{
    return view->skipped;
}

void cf_roster_view_free(struct cf_roster_view *view)
{
    if (view == NULL)
        return;
    cf_kafka_record_release(view->held); /* before the consumer it came from */
    cf_kafka_consumer_free(view->consumer);
    json_decref(view->entries);
    free(view);
}
