/* notifier.c — the notifier's Kafka path, batch sends and timer (see notifier.h). */
#include "notifier.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/hmac.h>

#include "avro_convert.h"
#include "clock.h"
#include "cloudevents.h"
#include "log.h"
#include "mime.h"
#include "sms_size.h"
#include "uuid.h"

#define DUE_KEY "notifier:due"
#define STATUS_TYPE "caseflow.event.NotificationStatus"

/* KEYS[1] the recipient's set of a day; ARGV: member, TTL ms, "add" or "count".
 * count answers {members, 1 if member is one}; add puts member in (idempotent) and answers the
 * new count. */
static const char cap_lua[] = "if ARGV[3] == 'add' then\n"
                              "  redis.call('SADD', KEYS[1], ARGV[1])\n"
                              "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                              "  return redis.call('SCARD', KEYS[1])\n"
                              "end\n"
                              "return {redis.call('SCARD', KEYS[1]),"
                              " redis.call('SISMEMBER', KEYS[1], ARGV[1])}\n";

/* A day's cap set outlives the day in every zone. */
#define CAP_TTL_MS (50LL * 3600 * 1000)

/* What to do with a job now; DONE: nothing (handled before, or expired). */
enum verdict { SEND, WAIT, SKIP, DONE };

/* One notification in hand during a batch end or a timer turn. */
struct item {
    json_t *job;       /* borrowed from the batch, or owned by the turn (timer) */
    json_t *state;     /* the stored state, or NULL */
    int attempt;       /* of the send about to be made */
    bool by_timer;     /* the timer makes this attempt */
    int64_t cap_count; /* notifications of the day before this one; -1 unknown */
    size_t cap_reply;  /* pipeline index of the cap count, or SIZE_MAX */
    char cap_key[CF_REDIS_MAX_KEY];
    enum verdict verdict;
    int64_t wait_until;
    const char *skip_code;
    /* the send */
    struct notifier_send send;
    char *message; /* email: the MIME message */
    int segments;  /* SMS */
};

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int channel_index(const json_t *job)
{
    const char *ch = str(job, "channel");
    return ch != NULL && strcmp(ch, "SMS") == 0 ? NOTIFIER_SMS : NOTIFIER_EMAIL;
}

static void count(struct cf_metrics_counter *c)
{
    if (c != NULL)
        cf_metrics_add(c, 1);
}

cf_status notifier_init(struct notifier *n, char *errbuf, size_t errlen)
{
    cf_status st = cf_due_set_init(&n->due, errbuf, errlen);
    if (st == CF_OK)
        st = cf_redis_script_new(cap_lua, CF_REDIS_SCRIPT_IDEMPOTENT, &n->cap, errbuf, errlen);
    if (st == CF_OK)
        st = cf_tz_set_new(&n->zones);
    if (st == CF_OK && ((n->batch = json_array()) == NULL || (n->finished = json_array()) == NULL ||
                        (n->forget = json_array()) == NULL))
        st = CF_ENOMEM;
    if (st != CF_OK)
        notifier_clear(n);
    return st;
}

void notifier_clear(struct notifier *n)
{
    if (n == NULL)
        return;
    cf_due_set_clear(&n->due);
    cf_redis_script_free(n->cap);
    cf_tz_set_free(n->zones);
    json_decref(n->batch);
    json_decref(n->finished);
    json_decref(n->forget);
    n->cap = NULL;
    n->zones = NULL;
    n->batch = n->finished = n->forget = NULL;
}

/* ---- Kafka path ----------------------------------------------------------------------------- */

cf_status notifier_handle(void *ctx, const struct cf_kafka_record *in, struct cf_kafka_out *out,
                          char *errbuf, size_t errlen)
{
    struct notifier *n = ctx;
    json_t *event = NULL;
    (void)out;

    cf_status st =
        cf_serde_decode_json(n->serde, in->topic, in->value, in->value_len, &event, errbuf, errlen);
    if (st == CF_OK)
        st = notifier_plan(&n->planner, in->topic, event, n->batch, errbuf, errlen);
    json_decref(event);
    return st;
}

void notifier_batch_begin(void *ctx)
{
    struct notifier *n = ctx;
    (void)json_array_clear(n->batch);
}

/* ---- Status events -------------------------------------------------------------------------- */

/* Queues the NotificationStatus of job: status, attempt and the state's details, occurred at
 * at_ms (when the server answered). Its event id is named by (notification, attempt, status),
 * so a re-emission after a crash is the same event. */
static cf_status emit_status(struct notifier *n, const json_t *job, const char *status, int attempt,
                             bool will_retry, const char *error_code, const char *provider_id,
                             int segments, int64_t at_ms, struct cf_kafka_out *out, char *errbuf,
                             size_t errlen)
{
    char name[160], event_id[CF_UUID_LEN + 1], when[32];
    int len = snprintf(name, sizeof(name), "caseflow.notifier/status/%s/%d/%s", str(job, "id"),
                       attempt, status);
    cf_uuid_from_name(name, len > 0 ? (size_t)len : 0, event_id);
    cf_avro_format_millis(at_ms, when, sizeof(when));
    json_t *ev = json_pack(
        "{s:{s:s, s:s, s:s, s:s, s:s, s:s}, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:b, s:o, "
        "s:o, s:o, s:b}",
        "meta", "event_id", event_id, "case_id", str(job, "case_id"), "occurred_at", when,
        "producer", NOTIFIER_PRODUCER, "correlation_id", str(job, "correlation_id"), "causation_id",
        str(job, "source_event_id"), "notification_id", str(job, "id"), "source_event_id",
        str(job, "source_event_id"), "channel", str(job, "channel"), "audience",
        str(job, "audience"), "template", str(job, "template"), "language", str(job, "language"),
        "status", status, "attempt", attempt, "will_retry", will_retry, "error_code",
        error_code != NULL ? json_string(error_code) : json_null(), "provider_id",
        provider_id != NULL && provider_id[0] != '\0' ? json_string(provider_id) : json_null(),
        "sms_segments", segments > 0 ? json_integer(segments) : json_null(), "fallback",
        json_is_true(json_object_get(job, "fallback_of")));
    if (ev == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "notification status: a job field is missing");
    cf_status st = cf_cloudevent_emit(n->serde, NOTIFIER_SERVICE, NOTIFIER_T_STATUS, STATUS_TYPE,
                                      str(job, "case_id"), ev, out, errbuf, errlen);
    json_decref(ev);
    return st;
}

/* Re-emits the status a stored final state records. */
static cf_status emit_stored(struct notifier *n, const json_t *job, const json_t *state,
                             struct cf_kafka_out *out, char *errbuf, size_t errlen)
{
    return emit_status(
        n, job, str(state, "status"), (int)json_integer_value(json_object_get(state, "attempt")),
        json_is_true(json_object_get(state, "will_retry")), str(state, "error_code"),
        str(state, "provider_id"), (int)json_integer_value(json_object_get(state, "sms_segments")),
        json_integer_value(json_object_get(state, "at_ms")), out, errbuf, errlen);
}

static bool is_final(const json_t *state)
{
    const char *s = str(state, "status");
    return s != NULL && strcmp(s, "WAITING") != 0;
}

/* ---- Redis state ---------------------------------------------------------------------------- */

static void state_key(const json_t *job, char key[CF_REDIS_MAX_KEY])
{
    (void)snprintf(key, CF_REDIS_MAX_KEY, "notifier:n:%s", str(job, "id"));
}

/* Appends the SET of job's stored record with state to the pipeline. */
static cf_status put_state(struct notifier *n, const json_t *job, json_t *state, char *errbuf,
                           size_t errlen)
{
    char key[CF_REDIS_MAX_KEY];
    json_t *rec = json_pack("{s:O, s:o}", "job", job, "state", state);
    char *text = rec != NULL ? json_dumps(rec, JSON_COMPACT) : NULL;
    cf_status st = CF_ENOMEM;

    state_key(job, key);
    if (text != NULL)
        st = cf_redis_pipeline_set(n->pipeline, key, text, strlen(text), n->set.state_ttl_seconds,
                                   errbuf, errlen);
    free(text);
    json_decref(rec);
    return st;
}

/* A state record: status after attempt attempts, at at_ms. */
static json_t *new_state(const char *status, int attempt, bool by_timer, const char *error_code,
                         int64_t at_ms)
{
    return json_pack("{s:s, s:i, s:s, s:o, s:I}", "status", status, "attempt", attempt, "by",
                     by_timer ? "timer" : "batch", "error_code",
                     error_code != NULL ? json_string(error_code) : json_null(), "at_ms",
                     (json_int_t)at_ms);
}

/* The daily cap key of job's recipient and local day (an HMAC of the address, never the
 * address); false if job has no cap (not the patient's, or no zone). */
static bool cap_key_of(struct notifier *n, const json_t *job, int64_t now_ms,
                       char key[CF_REDIS_MAX_KEY])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char msg[300], hex[33], day[9];
    struct cf_tz *tz = NULL;
    const char *to = str(job, "to"), *zone = str(job, "time_zone");

    if (to == NULL || zone == NULL || strcmp(str(job, "audience"), "PATIENT") != 0)
        return false;
    if (cf_tz_set_get(n->zones, zone, &tz, NULL, 0) != CF_OK ||
        notifier_local_day(tz, now_ms, day, NULL, 0) != CF_OK)
        return false;
    int len = snprintf(msg, sizeof(msg), "%s:%s", str(job, "channel"), to);
    if (len < 0 || (size_t)len >= sizeof(msg) ||
        HMAC(EVP_sha256(), n->set.key_secret, (int)n->set.key_secret_len,
             (const unsigned char *)msg, (size_t)len, md, &md_len) == NULL)
        return false;
    for (int i = 0; i < 16; i++)
        (void)snprintf(hex + 2 * i, 3, "%02x", md[i]);
    (void)snprintf(key, CF_REDIS_MAX_KEY, "notifier:cap:%c:%s:%s", str(job, "channel")[0], hex,
                   day);
    return true;
}

/* Appends the cap script (mode "count" or "add") for item. */
static cf_status cap_call(struct notifier *n, struct item *it, const char *mode, char *errbuf,
                          size_t errlen)
{
    char ttl[24];
    const char *keys[] = {it->cap_key};
    (void)snprintf(ttl, sizeof(ttl), "%lld", (long long)CAP_TTL_MS);
    const char *args[] = {str(it->job, "id"), ttl, mode};
    return cf_redis_pipeline_script(n->pipeline, n->cap, 1, keys, 3, args, NULL, errbuf, errlen);
}

/* ---- Deciding and sending ------------------------------------------------------------------- */

/* decide's verdict for it->cap_count notifications already sent today. */
static void decide_now(struct notifier *n, struct item *it, int64_t now_ms)
{
    int64_t deliver_by = json_integer_value(json_object_get(it->job, "deliver_by_ms"));
    const char *zone = str(it->job, "time_zone");
    struct cf_tz *tz = NULL;

    it->verdict = SEND;
    if (deliver_by > 0 && now_ms >= deliver_by) {
        /* A reminder of a consultation that has begun helps no one. */
        it->verdict = SKIP;
        it->skip_code = "TOO_LATE";
        return;
    }
    if (zone == NULL || cf_tz_set_get(n->zones, zone, &tz, NULL, 0) != CF_OK)
        return;
    if (it->cap_count >= n->set.daily_cap) {
        int64_t next = now_ms;
        if (notifier_next_day_at(tz, now_ms, n->set.quiet.end_min, &next, NULL, 0) != CF_OK)
            next = now_ms + 86400000LL;
        if (deliver_by > 0 && deliver_by <= next) {
            it->verdict = SKIP;
            it->skip_code = "DAILY_CAP";
        } else {
            it->verdict = WAIT;
            it->wait_until = next;
        }
        return;
    }
    if (channel_index(it->job) == NOTIFIER_SMS) {
        int64_t end = now_ms;
        if (notifier_quiet_end(tz, &n->set.quiet, now_ms, &end, NULL, 0) == CF_OK && end > now_ms &&
            !(deliver_by > 0 && deliver_by <= end)) {
            it->verdict = WAIT;
            it->wait_until = end;
        }
    }
}

/* Sets it->verdict for now: skip, wait (quiet hours, daily cap) or send. planned counts, per
 * cap key, the sends this batch or turn has already decided, which Redis does not know yet. */
static void decide(struct notifier *n, struct item *it, int64_t now_ms, json_t *planned)
{
    json_t *before = it->cap_key[0] != '\0' ? json_object_get(planned, it->cap_key) : NULL;
    if (before != NULL && it->cap_count >= 0)
        it->cap_count += json_integer_value(before);
    decide_now(n, it, now_ms);
    if (it->verdict == SEND && it->cap_key[0] != '\0')
        (void)json_object_set_new(planned, it->cap_key,
                                  json_integer(json_integer_value(before) + 1));
}

/* Builds it's message (MIME or SMS text). A message that cannot be built is a permanent
 * failure of that notification, never of the batch. */
static bool build_message(struct notifier *n, struct item *it, int64_t now_ms)
{
    const json_t *job = it->job;
    char msgid[160], err[160] = "";

    memset(&it->send, 0, sizeof(it->send));
    it->send.channel = (enum notifier_channel)channel_index(job);
    it->send.to = str(job, "to");
    it->send.key = str(job, "id");
    if (it->send.to == NULL || str(job, "text") == NULL)
        return false;
    if (it->send.channel == NOTIFIER_SMS) {
        struct notifier_sms_size size;
        it->send.data = str(job, "text");
        it->send.len = strlen(it->send.data);
        if (notifier_sms_size(it->send.data, it->send.len, &size, err, sizeof(err)) != CF_OK)
            return false;
        it->segments = (int)size.segments;
        return true;
    }
    (void)snprintf(msgid, sizeof(msgid), "<%s@%s>", str(job, "id"), n->set.message_id_domain);
    const char *to_name = str(job, "to_name");
    struct notifier_mail mail = {n->set.mail_from_name[0] != '\0' ? n->set.mail_from_name : NULL,
                                 n->set.mail_from,
                                 to_name != NULL && to_name[0] != '\0' ? to_name : NULL,
                                 it->send.to,
                                 str(job, "subject"),
                                 str(job, "text"),
                                 str(job, "html"),
                                 msgid,
                                 now_ms};
    size_t len = 0;
    if (mail.subject == NULL || mail.html == NULL ||
        notifier_mime_build(&mail, &it->message, &len, err, sizeof(err)) != CF_OK)
        return false;
    it->send.data = it->message;
    it->send.len = len;
    return true;
}

/* Records the outcome of it's send: state, due set, cap, status event; a final failure with a
 * fallback puts the fallback job in the due set, due now. Appends to the pipeline. */
static cf_status settle(struct notifier *n, struct item *it, struct cf_kafka_out *out, char *errbuf,
                        size_t errlen)
{
    int64_t now_ms = it->send.finished_ms;
    const json_t *job = it->job;
    const char *id = str(job, "id");
    int ch = channel_index(job);
    cf_status st = CF_OK;
    json_t *state = NULL;

    if (n->send_seconds != NULL)
        cf_metrics_observe(n->send_seconds, it->send.seconds);
    if (it->send.outcome == NOTIFIER_SENT) {
        state = new_state("SENT", it->attempt, it->by_timer, NULL, now_ms);
        if (state != NULL && it->send.provider_id[0] != '\0')
            (void)json_object_set_new(state, "provider_id", json_string(it->send.provider_id));
        if (state != NULL && it->segments > 0)
            (void)json_object_set_new(state, "sms_segments", json_integer(it->segments));
        if (state == NULL)
            return CF_ENOMEM;
        st = put_state(n, job, state, errbuf, errlen);
        if (st == CF_OK && it->cap_key[0] != '\0')
            st = cap_call(n, it, "add", errbuf, errlen);
        if (st == CF_OK)
            st = emit_status(n, job, "SENT", it->attempt, false, NULL, it->send.provider_id,
                             it->segments, now_ms, out, errbuf, errlen);
        count(n->sent[ch]);
        CF_LOG(CF_LOG_INFO, "notification_sent", CF_LOG_ID("notification_id", id),
               CF_LOG_ID("case_id", str(job, "case_id")), CF_LOG_ID("channel", str(job, "channel")),
               CF_LOG_ID("template", str(job, "template")), CF_LOG_INT("attempt", it->attempt));
        return st;
    }
    bool retry = it->send.outcome == NOTIFIER_TRANSIENT && it->attempt < n->set.max_attempts;
    CF_LOG(CF_LOG_WARN, "notification_failed", CF_LOG_ID("notification_id", id),
           CF_LOG_ID("case_id", str(job, "case_id")), CF_LOG_ID("channel", str(job, "channel")),
           CF_LOG_ID("error_code", it->send.error), CF_LOG_INT("attempt", it->attempt),
           CF_LOG_INT("will_retry", retry));
    if (retry) {
        uint32_t rnd = (uint32_t)rand();
        int64_t due = now_ms + notifier_backoff_ms(it->attempt, n->set.retry_base_ms,
                                                   n->set.retry_max_ms, rnd);
        if ((state = new_state("WAITING", it->attempt, it->by_timer, it->send.error, now_ms)) ==
            NULL)
            return CF_ENOMEM;
        st = put_state(n, job, state, errbuf, errlen);
        if (st == CF_OK)
            st = cf_due_set_put(n->pipeline, &n->due, DUE_KEY, id, due,
                                n->set.state_ttl_seconds * 1000, errbuf, errlen);
        count(n->retried[ch]);
    } else {
        if ((state = new_state("FAILED", it->attempt, it->by_timer, it->send.error, now_ms)) ==
            NULL)
            return CF_ENOMEM;
        st = put_state(n, job, state, errbuf, errlen);
        count(n->failed[ch]);
        json_t *fb = json_object_get(job, "fallback");
        if (st == CF_OK && json_is_object(fb)) {
            json_t *copy = json_deep_copy(fb);
            json_t *wait = new_state("WAITING", 0, true, NULL, now_ms);
            if (copy == NULL || wait == NULL ||
                json_object_set_new(copy, "fallback_of", json_true()) != 0) {
                json_decref(copy);
                json_decref(wait);
                return CF_ENOMEM;
            }
            st = put_state(n, copy, wait, errbuf, errlen);
            if (st == CF_OK)
                st = cf_due_set_put(n->pipeline, &n->due, DUE_KEY, str(copy, "id"), now_ms,
                                    n->set.state_ttl_seconds * 1000, errbuf, errlen);
            CF_LOG(CF_LOG_INFO, "notification_fallback", CF_LOG_ID("notification_id", id),
                   CF_LOG_ID("fallback_id", str(copy, "id")));
            json_decref(copy);
        }
    }
    if (st == CF_OK)
        st = emit_status(n, job, "FAILED", it->attempt, retry, it->send.error, NULL, it->segments,
                         now_ms, out, errbuf, errlen);
    return st;
}

/* Records a verdict that is not SEND: a skip (final, status emitted) or a wait (due set). */
static cf_status hold(struct notifier *n, struct item *it, struct cf_kafka_out *out, char *errbuf,
                      size_t errlen)
{
    const char *id = str(it->job, "id");
    json_t *state;
    cf_status st;

    if (it->verdict == SKIP) {
        /* Skipped: attempts made before, none now. */
        if ((state = new_state("SKIPPED", it->attempt - 1, it->by_timer, it->skip_code,
                               cf_clock_wall_ms())) == NULL)
            return CF_ENOMEM;
        st = put_state(n, it->job, state, errbuf, errlen);
        count(n->skipped);
        CF_LOG(CF_LOG_INFO, "notification_skipped", CF_LOG_ID("notification_id", id),
               CF_LOG_ID("case_id", str(it->job, "case_id")), CF_LOG_ID("reason", it->skip_code));
        return st == CF_OK
                   ? emit_status(n, it->job, "SKIPPED", it->attempt - 1, false, it->skip_code, NULL,
                                 0, cf_clock_wall_ms(), out, errbuf, errlen)
                   : st;
    }
    /* A wait keeps the attempts made so far (0 before the first). */
    if ((state = new_state("WAITING", it->attempt - 1, it->by_timer, NULL, cf_clock_wall_ms())) ==
        NULL)
        return CF_ENOMEM;
    st = put_state(n, it->job, state, errbuf, errlen);
    if (st == CF_OK)
        st = cf_due_set_put(n->pipeline, &n->due, DUE_KEY, id, it->wait_until,
                            n->set.state_ttl_seconds * 1000, errbuf, errlen);
    count(n->deferred);
    CF_LOG(CF_LOG_INFO, "notification_deferred", CF_LOG_ID("notification_id", id),
           CF_LOG_ID("case_id", str(it->job, "case_id")), CF_LOG_INT("until_ms", it->wait_until));
    return st;
}

/* Reads the stored record and the cap count of every item (one pipeline). On CF_OK each item
 * has its state (or NULL) and cap_count; *stored[i] is the stored job (timer) or NULL. */
static cf_status read_items(struct notifier *n, struct item *items, size_t count_items,
                            int64_t now_ms, json_t **stored, char *errbuf, size_t errlen)
{
    char key[CF_REDIS_MAX_KEY];
    cf_status st = CF_OK;

    cf_redis_pipeline_reset(n->pipeline);
    for (size_t i = 0; i < count_items && st == CF_OK; i++) {
        struct item *it = &items[i];
        if (it->job != NULL) {
            state_key(it->job, key);
        } else {
            /* timer: the key from the claimed id, the job from the reply */
            (void)snprintf(key, sizeof(key), "notifier:n:%s", json_string_value(stored[i]));
        }
        st = cf_redis_pipeline_get(n->pipeline, key, errbuf, errlen);
    }
    if (st == CF_OK)
        st = cf_redis_pipeline_exec(n->redis, n->pipeline, errbuf, errlen);
    for (size_t i = 0; i < count_items && st == CF_OK; i++) {
        const struct cf_redis_value *v = NULL;
        struct item *it = &items[i];
        if ((st = cf_redis_pipeline_reply(n->pipeline, i, &v)) != CF_OK)
            break;
        if (v->type == CF_REDIS_STRING) {
            json_t *rec = json_loadb(v->str, v->len, 0, NULL);
            if (it->job == NULL) {
                json_decref(stored[i]);
                stored[i] = json_incref(json_object_get(rec, "job"));
                it->job = stored[i];
            }
            it->state = json_incref(json_object_get(rec, "state"));
            json_decref(rec);
        }
    }
    /* The cap counts of what may be sent, in a second pipeline. */
    if (st != CF_OK)
        return st;
    cf_redis_pipeline_reset(n->pipeline);
    size_t calls = 0;
    for (size_t i = 0; i < count_items && st == CF_OK; i++) {
        struct item *it = &items[i];
        it->cap_count = -1;
        it->cap_reply = SIZE_MAX;
        it->cap_key[0] = '\0';
        if (it->job == NULL || json_object_get(it->job, "skip") != NULL || is_final(it->state) ||
            !cap_key_of(n, it->job, now_ms, it->cap_key))
            continue;
        it->cap_reply = calls++;
        st = cap_call(n, it, "count", errbuf, errlen);
    }
    if (st == CF_OK && calls > 0)
        st = cf_redis_pipeline_exec(n->redis, n->pipeline, errbuf, errlen);
    for (size_t i = 0; i < count_items && st == CF_OK; i++) {
        const struct cf_redis_value *v = NULL;
        struct item *it = &items[i];
        if (it->cap_reply == SIZE_MAX)
            continue;
        if ((st = cf_redis_pipeline_reply(n->pipeline, it->cap_reply, &v)) != CF_OK)
            break;
        if (v->type == CF_REDIS_ARRAY && v->count == 2)
            it->cap_count = v->elements[0].integer - v->elements[1].integer;
    }
    return st;
}

/* What the send hooks need to find a send's item. */
struct sent_ctx {
    struct notifier *n;
    struct item *items;
    const size_t *which;
    int64_t now_ms;
};

/* The sender's prepare hook: builds the item's message right before it goes out, so a batch
 * holds only the MIME messages of the sends in flight. */
static bool prepare_send(void *ctx, size_t i, struct notifier_send *send)
{
    struct sent_ctx *sc = ctx;
    struct item *it = &sc->items[sc->which[i]];
    if (!build_message(sc->n, it, sc->now_ms)) {
        send->outcome = NOTIFIER_PERMANENT;
        (void)snprintf(send->error, sizeof(send->error), "BAD_MESSAGE");
        send->finished_ms = cf_clock_wall_ms();
        return false;
    }
    send->channel = it->send.channel;
    send->to = it->send.to;
    send->data = it->send.data;
    send->len = it->send.len;
    send->key = it->send.key;
    return true;
}

/* The sender's done hook: frees the message and records one the server has just accepted as
 * SENT at once (settle records it again with the rest): the window in which a crash makes it go
 * out twice is one Redis call, not the whole batch. A failure here is not an error: settle's
 * pipeline writes the same later. */
static void finish_send(void *ctx, size_t i, struct notifier_send *send)
{
    struct sent_ctx *sc = ctx;
    struct item *it = &sc->items[sc->which[i]];
    char key[CF_REDIS_MAX_KEY], err[128];

    /* The message itself is not needed any more. */
    free(it->message);
    it->message = NULL;
    send->data = NULL;
    if (send->outcome != NOTIFIER_SENT)
        return;
    json_t *rec = json_pack("{s:O, s:o}", "job", it->job, "state",
                            new_state("SENT", it->attempt, it->by_timer, NULL, send->finished_ms));
    char *text = rec != NULL ? json_dumps(rec, JSON_COMPACT) : NULL;
    state_key(it->job, key);
    if (text != NULL)
        (void)cf_redis_set(sc->n->redis, key, text, strlen(text), sc->n->set.state_ttl_seconds, err,
                           sizeof(err));
    free(text);
    json_decref(rec);
}

/* Sends the items whose verdict is SEND, concurrently, and settles every item (appending the
 * writes to a fresh pipeline, run at the end). */
static cf_status send_and_settle(struct notifier *n, struct item *items, size_t count_items,
                                 int64_t now_ms, struct cf_kafka_out *out, char *errbuf,
                                 size_t errlen)
{
    struct notifier_send *sends = NULL;
    size_t *which = NULL, nsend = 0;
    cf_status st = CF_OK;

    if (count_items > 0 && ((sends = calloc(count_items, sizeof(*sends))) == NULL ||
                            (which = calloc(count_items, sizeof(*which))) == NULL)) {
        st = CF_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < count_items; i++)
        if (items[i].job != NULL && items[i].verdict == SEND)
            which[nsend++] = i;
    if (nsend > 0) {
        struct sent_ctx sc = {n, items, which, now_ms};
        const struct notifier_send_hooks hooks = {prepare_send, finish_send, &sc};
        notifier_sender_run(n->sender, sends, nsend, &hooks);
    }
    for (size_t k = 0; k < nsend; k++)
        items[which[k]].send = sends[k];
    cf_redis_pipeline_reset(n->pipeline);
    for (size_t i = 0; i < count_items && st == CF_OK; i++) {
        struct item *it = &items[i];
        if (it->job == NULL || it->verdict == DONE)
            continue;
        if (it->verdict == SEND)
            st = settle(n, it, out, errbuf, errlen);
        else if (it->verdict == WAIT || it->verdict == SKIP)
            st = hold(n, it, out, errbuf, errlen);
    }
    if (st == CF_OK && cf_redis_pipeline_count(n->pipeline) > 0)
        st = cf_redis_pipeline_exec(n->redis, n->pipeline, errbuf, errlen);
out:
    free(sends);
    free(which);
    return st;
}

static void items_clear(struct item *items, size_t count_items)
{
    for (size_t i = 0; i < count_items; i++) {
        json_decref(items[i].state);
        free(items[i].message);
    }
    free(items);
}

cf_status notifier_batch_end(void *ctx, struct cf_kafka_out *out, char *errbuf, size_t errlen)
{
    struct notifier *n = ctx;
    size_t count_items = json_array_size(n->batch);
    struct item *items = NULL;
    json_t *planned = NULL;
    int64_t now_ms = cf_clock_wall_ms();
    cf_status st = CF_OK;

    if (count_items == 0)
        return CF_OK;
    if ((items = calloc(count_items, sizeof(*items))) == NULL)
        return CF_ENOMEM;
    for (size_t i = 0; i < count_items; i++) {
        items[i].job = json_array_get(n->batch, i);
        items[i].attempt = 1;
    }
    st = read_items(n, items, count_items, now_ms, NULL, errbuf, errlen);
    if (st == CF_OK && (planned = json_object()) == NULL)
        st = CF_ENOMEM;
    for (size_t i = 0; i < count_items && st == CF_OK; i++) {
        struct item *it = &items[i];
        if (it->state != NULL) {
            /* This event was handled before (a batch that came back): a final outcome of the
             * batch path is re-emitted, anything else is the timer's now. */
            it->verdict = DONE;
            if (is_final(it->state) && strcmp(str(it->state, "by"), "batch") == 0)
                st = emit_stored(n, it->job, it->state, out, errbuf, errlen);
            continue;
        }
        const char *skip = str(it->job, "skip");
        if (skip != NULL) {
            it->verdict = SKIP;
            it->skip_code = skip;
            continue;
        }
        decide(n, it, now_ms, planned);
    }
    if (st == CF_OK)
        st = send_and_settle(n, items, count_items, now_ms, out, errbuf, errlen);
    json_decref(planned);
    items_clear(items, count_items);
    return st;
}

/* ---- Timer ---------------------------------------------------------------------------------- */

/* Removes from the due set the notifications earlier turns settled for good and whose statuses
 * are committed (notifier_tick_done moved them to n->forget). Kept for the next turn if Redis
 * fails. */
static cf_status forget_settled(struct notifier *n, char *errbuf, size_t errlen)
{
    size_t i;
    json_t *id;
    cf_status st = CF_OK;

    if (json_array_size(n->forget) == 0)
        return CF_OK;
    cf_redis_pipeline_reset(n->pipeline);
    json_array_foreach(n->forget, i, id)
    {
        if (st == CF_OK)
            st = cf_due_set_put(n->pipeline, &n->due, DUE_KEY, json_string_value(id), -1,
                                n->set.state_ttl_seconds * 1000, errbuf, errlen);
    }
    if (st == CF_OK)
        st = cf_redis_pipeline_exec(n->redis, n->pipeline, errbuf, errlen);
    if (st == CF_OK)
        (void)json_array_clear(n->forget);
    return st;
}

cf_status notifier_tick(void *ctx, int64_t now_ms, struct cf_kafka_out *out, char *errbuf,
                        size_t errlen)
{
    struct notifier *n = ctx;
    struct cf_redis_value *due = NULL;
    struct item *items = NULL;
    json_t **stored = NULL, *planned = NULL;
    size_t count_items = 0;
    cf_status st = forget_settled(n, errbuf, errlen);

    if (st == CF_OK)
        st = cf_due_set_claim(n->redis, &n->due, DUE_KEY, now_ms, now_ms + n->set.lease_ms,
                              n->set.timer_batch, &due, errbuf, errlen);
    if (st != CF_OK || due == NULL || due->type != CF_REDIS_ARRAY || due->count == 0)
        goto out;
    count_items = due->count;
    if ((items = calloc(count_items, sizeof(*items))) == NULL ||
        (stored = calloc(count_items, sizeof(*stored))) == NULL) {
        st = CF_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < count_items; i++) {
        if (due->elements[i].type != CF_REDIS_STRING || !cf_uuid_valid(due->elements[i].str)) {
            st = cf_fail(errbuf, errlen, CF_EINVAL, "due set member is not a notification id");
            goto out;
        }
        stored[i] = json_string(due->elements[i].str);
        items[i].by_timer = true;
    }
    st = read_items(n, items, count_items, now_ms, stored, errbuf, errlen);
    if (st == CF_OK && (planned = json_object()) == NULL)
        st = CF_ENOMEM;
    for (size_t i = 0; i < count_items && st == CF_OK; i++) {
        struct item *it = &items[i];
        if (it->job == NULL || it->state == NULL) {
            /* Expired with its TTL: nothing left to send. */
            it->verdict = DONE;
            if (json_array_append_new(n->finished, json_string(due->elements[i].str)) != 0)
                st = CF_ENOMEM;
            continue;
        }
        if (is_final(it->state)) {
            /* Settled by a turn whose removal did not happen (a restart): its status again. */
            it->verdict = DONE;
            st = emit_stored(n, it->job, it->state, out, errbuf, errlen);
            if (st == CF_OK &&
                json_array_append_new(n->finished, json_string(str(it->job, "id"))) != 0)
                st = CF_ENOMEM;
            continue;
        }
        it->attempt = (int)json_integer_value(json_object_get(it->state, "attempt")) + 1;
        decide(n, it, now_ms, planned);
        if (it->verdict == SKIP &&
            json_array_append_new(n->finished, json_string(str(it->job, "id"))) != 0)
            st = CF_ENOMEM;
    }
    if (st == CF_OK)
        st = send_and_settle(n, items, count_items, now_ms, out, errbuf, errlen);
    /* What was sent or failed for good leaves the due set at the next turn. */
    for (size_t i = 0; i < count_items && st == CF_OK; i++) {
        struct item *it = &items[i];
        if (it->job == NULL || it->verdict != SEND)
            continue;
        bool final = it->send.outcome == NOTIFIER_SENT ||
                     !(it->send.outcome == NOTIFIER_TRANSIENT && it->attempt < n->set.max_attempts);
        if (final && json_array_append_new(n->finished, json_string(str(it->job, "id"))) != 0)
            st = CF_ENOMEM;
    }
out:
    if (stored != NULL)
        for (size_t i = 0; i < count_items; i++)
            json_decref(stored[i]);
    free(stored);
    json_decref(planned);
    if (items != NULL)
        items_clear(items, count_items);
    cf_redis_value_free(due);
    return st;
}

void notifier_tick_done(void *ctx, bool committed)
{
    struct notifier *n = ctx;
    /* Aborted: the settled notifications stay in the due set, come back when their lease ends
     * and, their state being final, have their statuses emitted again (the same event ids). */
    if (committed && json_array_extend(n->forget, n->finished) != 0)
        CF_LOG(CF_LOG_WARN, "notifier_forget_failed",
               CF_LOG_ERR("reason", "out of memory: settled notifications come back after their "
                                    "lease"));
    (void)json_array_clear(n->finished);
}
