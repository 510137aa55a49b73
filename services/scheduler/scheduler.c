/* scheduler.c — the scheduler's Kafka path: the case state in Redis, booking with holds,
 * change requests, outcomes and the read-backs of its own records. See scheduler.h and
 * README.md. */
#include "scheduler.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "avro_convert.h"
#include "cloudevents.h"
#include "log.h"
#include "sched_events.h"
#include "sched_internal.h"
#include "sched_token.h"
#include "treatment.h"
#include "uuid.h"

#define DAY_MS (24LL * 3600 * 1000)

const char *sched_str(const json_t *obj, const char *k1, const char *k2)
{
    const json_t *v = json_object_get(obj, k1);
    if (k2 != NULL)
        v = json_object_get(v, k2);
    return json_string_value(v);
}

/* ---- State in Redis ------------------------------------------------------------------- */

cf_status sched_load_state(struct scheduler *s, const char *case_id, json_t **state,
                           char *errbuf, size_t errlen)
{
    char key[SCHED_KEY_MAX];
    char *text = NULL;
    size_t len = 0;
    json_error_t jerr;
    *state = NULL;
    if (sched_case_key(case_id, key) != CF_OK)
        return cf_fail(errbuf, errlen, CF_EINVAL, "case id: not a UUID");
    cf_status st = cf_redis_get(s->redis, key, &text, &len, errbuf, errlen);
    if (st == CF_ENOTFOUND)
        return cf_fail(errbuf, errlen, CF_ENOTFOUND, "%s: no scheduling state (never assigned "
                       "here, or expired)", key);
    if (st != CF_OK)
        return st;
    *state = json_loadb(text, len, 0, &jerr);
    free(text);
    if (!json_is_object(*state)) {
        json_decref(*state);
        *state = NULL;
        return cf_fail(errbuf, errlen, CF_EINVAL, "%s: stored state is not a JSON object", key);
    }
    return CF_OK;
}

void sched_ops_add(struct sched_ops *ops, const char *key, const char *member, int64_t due)
{
    if (ops->n >= SCHED_OPS_MAX)
        return; /* bounded by construction: a step queues at most a dozen */
    (void)snprintf(ops->op[ops->n].key, sizeof(ops->op[0].key), "%s", key);
    (void)snprintf(ops->op[ops->n].member, sizeof(ops->op[0].member), "%s", member);
    ops->op[ops->n].due = due;
    ops->n++;
}

/* The reminder set's member for one reminder of a booking. */
static void reminder_member(char *buf, size_t len, const char *case_id, const json_t *booking,
                            const char *lead)
{
    (void)snprintf(buf, len, "%s/%s/%" PRId64 "/%s", case_id,
                   sched_str(booking, "teleconsult_id", NULL),
                   (int64_t)json_integer_value(json_object_get(booking, "start_ms")), lead);
}

void sched_reminder_ops(struct scheduler *s, struct sched_ops *ops, const char *case_id,
                        const json_t *booking, bool add, int64_t now)
{
    static const char *const leads[2] = {"H24", "H1"};
    char member[SCHED_MEMBER_MAX];
    int64_t due[2] = {-1, -1};
    if (!json_is_object(booking))
        return;
    if (add)
        sched_reminder_dues(json_integer_value(json_object_get(booking, "start_ms")), now,
                            s->set.h24_ms, s->set.h1_ms, due);
    for (int i = 0; i < 2; i++) {
        reminder_member(member, sizeof(member), case_id, booking, leads[i]);
        sched_ops_add(ops, SCHED_REMINDERS_KEY, member, due[i]);
    }
}

cf_status sched_store_state(struct scheduler *s, const char *case_id, const json_t *state,
                            const struct sched_ops *ops, char *errbuf, size_t errlen)
{
    char key[SCHED_KEY_MAX];
    char *text = NULL;
    cf_status st = CF_OK;
    if (sched_case_key(case_id, key) != CF_OK)
        return cf_fail(errbuf, errlen, CF_EINVAL, "case id: not a UUID");
    if ((text = json_dumps(state, JSON_COMPACT)) == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory storing the case");
    int64_t ttl_ms = s->set.state_ttl_seconds * 1000;
    cf_redis_pipeline_reset(s->pipeline);
    for (size_t i = 0; st == CF_OK && ops != NULL && i < ops->n; i++)
        st = cf_due_set_put(s->pipeline, &s->scripts->due, ops->op[i].key, ops->op[i].member,
                             ops->op[i].due, ttl_ms, errbuf, errlen);
    if (st == CF_OK)
        st = cf_redis_pipeline_set(s->pipeline, key, text, strlen(text), s->set.state_ttl_seconds,
                                   errbuf, errlen);
    if (st == CF_OK)
        st = cf_redis_pipeline_exec(s->redis, s->pipeline, errbuf, errlen);
    cf_redis_pipeline_reset(s->pipeline);
    free(text);
    return st;
}

/* ---- Outputs ----------------------------------------------------------------------------- */

cf_status sched_emit(struct scheduler *s, const char *case_id, const json_t *item,
                     struct cf_kafka_out *out, char *errbuf, size_t errlen)
{
    const char *topic = sched_str(item, "topic", NULL);
    const char *type = sched_str(item, "type", NULL);
    const json_t *event = json_object_get(item, "event");
    if (topic == NULL || type == NULL || event == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "stored output incomplete");
    return cf_cloudevent_emit(s->serde, SCHEDULER_SERVICE, topic, type, case_id, event, out,
                              errbuf, errlen);
}

cf_status sched_emit_all(struct scheduler *s, const char *case_id, const json_t *list,
                         struct cf_kafka_out *out, char *errbuf, size_t errlen)
{
    size_t i;
    const json_t *item;
    json_array_foreach(list, i, item)
    {
        cf_status st = sched_emit(s, case_id, item, out, errbuf, errlen);
        if (st != CF_OK)
            return st;
    }
    return CF_OK;
}

int sched_out_add(json_t *list, const char *topic, const char *type, json_t *event)
{
    if (event == NULL)
        return -1;
    return json_array_append_new(list, json_pack("{s:s, s:s, s:o}", "topic", topic, "type", type,
                                                 "event", event));
}

/* The next output's event id of the input cause (the same on every retry). */
static void out_id(const char *cause, const json_t *outs, char id[CF_UUID_LEN + 1])
{
    sched_name_id(cause, "out", (long long)json_array_size(outs), id);
}

/* ---- Booking ----------------------------------------------------------------------------- */

/* Fills booking fields of a found slot into a new object (join_url: kept from keep_join or a
 * fresh random token). NULL on failure. */
static json_t *booking_new(const struct scheduler *s, const struct sched_specialist *sp,
                           const char *tid, const struct scheduler_slot *slot,
                           const char *keep_join)
{
    char join[SCHED_JOIN_TOKEN_LEN + 1], url[640];
    if (keep_join != NULL) {
        (void)snprintf(url, sizeof(url), "%s", keep_join);
    } else {
        if (sched_join_token(join) != CF_OK)
            return NULL;
        (void)snprintf(url, sizeof(url), "%s%s", s->set.join_url_base, join);
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "teleconsult_id", tid, "specialist_id",
                     sp->id, "specialist_name", sp->name, "specialist_time_zone", sp->time_zone,
                     "start_ms", (json_int_t)slot->start_ms, "end_ms", (json_int_t)slot->end_ms,
                     "join_url", url);
}

static void free_held(int64_t **starts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(starts[i]);
}

cf_status sched_try_book(struct scheduler *s, json_t *state, const char *tid, int64_t from_ms,
                         int64_t now, const char *prefer, const json_t *old, bool *found,
                         const char **reason, char *errbuf, size_t errlen)
{
    const struct sched_roster *roster = &s->roster;
    const json_t *recipient = json_object_get(state, "recipient");
    struct scheduler_range windows[SCHEDULER_MAX_RANGES];
    struct scheduler_patient pt;
    size_t *cands = NULL, n = 0, *counts = NULL;
    int64_t **starts = NULL;
    const char **ids = NULL;
    struct sched_held *held = NULL;
    int64_t *with_old = NULL;
    bool interpreter = false;
    cf_status st;

    *found = false;
    *reason = "NO_SPECIALIST";
    st = sched_patient_parse(recipient, windows, &pt, errbuf, errlen);
    if (st != CF_OK)
        return st;
    if (roster->n == 0)
        return CF_OK;
    cands = calloc(roster->n, sizeof(*cands));
    counts = calloc(roster->n, sizeof(*counts));
    starts = calloc(roster->n, sizeof(*starts));
    ids = calloc(roster->n, sizeof(*ids));
    held = calloc(roster->n, sizeof(*held));
    if (cands == NULL || counts == NULL || starts == NULL || ids == NULL || held == NULL) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
        goto out;
    }
    sched_candidates(roster, sched_str(state, "category", NULL),
                     sched_str(recipient, "language", NULL), cands, &n, &interpreter);
    if (n == 0)
        goto out;
    *reason = "NO_SLOT";
    for (size_t i = 0; i < n; i++)
        ids[i] = roster->items[cands[i]].id;
    const char *old_sp = old != NULL ? sched_str(old, "specialist_id", NULL) : NULL;
    int64_t old_start = old != NULL ? json_integer_value(json_object_get(old, "start_ms")) : -1;
    struct scheduler_query q = {from_ms, 0, s->set.horizon_ms, s->zones};

    for (int attempt = 0; attempt < SCHED_BOOK_ATTEMPTS; attempt++) {
        bool f = false;
        size_t chosen = 0;
        struct scheduler_slot slot;
        free_held(starts, n);
        free(with_old);
        with_old = NULL;
        st = sched_store_held(s->redis, s->pipeline, ids, n, from_ms - DAY_MS,
                              from_ms + s->set.horizon_ms + DAY_MS, tid, starts, counts, errbuf,
                              errlen);
        if (st != CF_OK)
            goto out;
        for (size_t i = 0; i < n; i++)
            held[i] = (struct sched_held){starts[i], counts[i]};
        /* A reschedule tries the same specialist first, its old booking released. */
        long same = -1;
        for (size_t i = 0; old_sp != NULL && i < n; i++)
            if (strcmp(ids[i], old_sp) == 0)
                same = (long)i;
        if (same >= 0) {
            /* The old booking counts on its day until it is given up (find_reschedule frees
             * it), and its start is never offered again. */
            if ((with_old = calloc(counts[same] + 1, sizeof(int64_t))) == NULL) {
                st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
                goto out;
            }
            if (counts[same] > 0)
                memcpy(with_old, starts[same], counts[same] * sizeof(int64_t));
            with_old[counts[same]] = old_start;
            held[same] = (struct sched_held){with_old, counts[same] + 1};
            const struct sched_specialist *sp = &roster->items[cands[same]];
            struct scheduler_day_count *booked = NULL;
            size_t nbooked = 0;
            st = sched_day_counts(s->zones, sp, held[same].starts, held[same].n, &booked,
                                  &nbooked, errbuf, errlen);
            if (st == CF_OK) {
                struct scheduler_specialist ss = {sp->time_zone, sp->hours,     sp->nhours,
                                                  sp->slot_minutes, sp->daily_cap, booked,
                                                  nbooked,          held[same].starts,
                                                  held[same].n};
                st = scheduler_find_reschedule(&ss, &pt, &q, old_start, &f, &slot, errbuf,
                                               errlen);
            }
            free(booked);
            if (st == CF_ENOMEM)
                goto out;
            if (st != CF_OK)
                f = false;
            chosen = (size_t)same;
        }
        if (!f) {
            st = sched_pick_slot(roster, cands, n, held, &pt, &q, prefer, &f, &chosen, &slot,
                                 errbuf, errlen);
            if (st != CF_OK)
                goto out;
        }
        if (!f)
            goto out;
        const struct sched_specialist *sp = &roster->items[cands[chosen]];
        struct sched_hold h = {sp->id, tid, slot.start_ms, slot.end_ms, sp->daily_cap, 0, 0,
                               old_sp,  old_start};
        st = sched_day_bounds(s->zones, sp->time_zone, slot.year, slot.month, slot.day,
                              &h.day_from_ms, &h.day_to_ms, errbuf, errlen);
        enum sched_book_result result = SCHED_BOOK_TAKEN;
        if (st == CF_OK)
            st = sched_store_book(s->redis, s->scripts, &h, now, &result, errbuf, errlen);
        if (st != CF_OK)
            goto out;
        if (result != SCHED_BOOK_OK) {
            CF_LOG(CF_LOG_INFO, "hold_lost", CF_LOG_ID("specialist_id", sp->id),
                   CF_LOG_INT("attempt", attempt));
            continue; /* another replica was quicker: read the holds again */
        }
        json_t *b = booking_new(s, sp, tid, &slot,
                                old != NULL ? sched_str(old, "join_url", NULL) : NULL);
        if (b == NULL || json_object_set_new(state, "booking", b) != 0 ||
            json_object_set_new(state, "interpreter", json_boolean(interpreter)) != 0) {
            st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
            goto out;
        }
        *found = true;
        goto out;
    }
    st = cf_fail(errbuf, errlen, CF_EIO, "booking: lost %d races in a row", SCHED_BOOK_ATTEMPTS);
out:
    if (starts != NULL)
        free_held(starts, n);
    free(with_old);
    free(held);
    free(ids);
    free(starts);
    free(counts);
    free(cands);
    return st;
}

/* Lead of a case: shorter for URGENT. */
static int64_t lead_of(const struct scheduler *s, const json_t *state)
{
    const char *prio = sched_str(state, "priority", NULL);
    return prio != NULL && strcmp(prio, "URGENT") == 0 ? s->set.urgent_lead_ms : s->set.lead_ms;
}

cf_status sched_book_want(struct scheduler *s, json_t *state, int64_t now, const char *event_id,
                          const char *causation, json_t *outs, struct sched_ops *ops, bool *booked,
                          char *errbuf, size_t errlen)
{
    const json_t *want = json_object_get(state, "want");
    const char *case_id = sched_str(state, "case_id", NULL);
    const char *want_tid = sched_str(want, "teleconsult_id", NULL);
    const char *want_prefer = sched_str(want, "prefer", NULL);
    int64_t from = json_integer_value(json_object_get(want, "from_ms"));
    const char *reason = NULL;
    json_t *event = NULL;
    bool found = false;
    char tid[CF_UUID_LEN + 1], prefer_buf[SCHED_ID_MAX + 1];
    const char *prefer = NULL;

    *booked = false;
    if (want_tid == NULL || case_id == NULL || !cf_uuid_valid(want_tid))
        return cf_fail(errbuf, errlen, CF_EINVAL, "stored case: want incomplete");
    /* Copies: "want" is dropped from the state below. */
    (void)snprintf(tid, sizeof(tid), "%s", want_tid);
    if (want_prefer != NULL) {
        (void)snprintf(prefer_buf, sizeof(prefer_buf), "%s", want_prefer);
        prefer = prefer_buf;
    }
    if (from < now + lead_of(s, state))
        from = now + lead_of(s, state); /* a later retry keeps the lead from its own now */
    cf_status st =
        sched_try_book(s, state, tid, from, now, prefer, NULL, &found, &reason, errbuf, errlen);
    if (st != CF_OK)
        return st;
    if (!found) {
        if (json_object_set_new(state, "stage", json_string("PENDING")) != 0 ||
            json_object_set_new(state, "pending_reason", json_string(reason)) != 0)
            return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
        return CF_OK;
    }
    struct sched_meta m = {event_id, causation, now, s->producer};
    st = sched_build_scheduled(state, "BOOKED", -1, s->set.secret, s->set.secret_len, &m, &event,
                               errbuf, errlen);
    if (st != CF_OK)
        return st;
    if (sched_out_add(outs, SCHED_T_SCHEDULED, "caseflow.event.TeleconsultScheduled", event) != 0 ||
        json_object_set_new(state, "stage", json_string("BOOKED")) != 0)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
    (void)json_object_del(state, "want");
    (void)json_object_del(state, "pending_reason");
    (void)json_object_del(state, "waiting_since_ms");
    (void)json_object_del(state, "alerted");
    sched_reminder_ops(s, ops, case_id, json_object_get(state, "booking"), true, now);
    sched_ops_add(ops, SCHED_PENDING_KEY, case_id, -1);
    *booked = true;
    cf_metrics_add(s->booked, 1);
    CF_LOG(CF_LOG_INFO, "teleconsult_booked", CF_LOG_ID("case_id", case_id),
           CF_LOG_ID("consult_id", tid),
           CF_LOG_ID("specialist_id", sched_str(state, "booking", "specialist_id")),
           CF_LOG_ID("event_id", event_id));
    return CF_OK;
}

/* Sets what the case waits to book and tries; not found → PENDING with a CasePending. */
static cf_status want_and_book(struct scheduler *s, json_t *state, const char *cause, int k,
                               int64_t from, const char *prefer, int64_t now, json_t *outs,
                               struct sched_ops *ops, char *errbuf, size_t errlen)
{
    char tid[CF_UUID_LEN + 1], id[CF_UUID_LEN + 1];
    const char *case_id = sched_str(state, "case_id", NULL);
    json_t *event = NULL;
    bool booked = false;
    sched_name_id(cause, "teleconsult", k, tid);
    json_t *want = json_pack("{s:s, s:I, s:o, s:s}", "teleconsult_id", tid, "from_ms",
                             (json_int_t)from, "prefer",
                             prefer != NULL ? json_string(prefer) : json_null(), "cause", cause);
    if (want == NULL || json_object_set_new(state, "want", want) != 0)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
    out_id(cause, outs, id);
    cf_status st = sched_book_want(s, state, now, id, cause, outs, ops, &booked, errbuf, errlen);
    if (st != CF_OK || booked)
        return st;
    if (json_object_set_new(state, "waiting_since_ms", json_integer(now)) != 0 ||
        json_object_set_new(state, "alerted", json_false()) != 0)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
    (void)json_object_del(state, "booking");
    const char *reason = sched_str(state, "pending_reason", NULL);
    out_id(cause, outs, id);
    struct sched_meta m = {id, cause, now, s->producer};
    st = sched_build_pending(state, reason, now, false, &m, &event, errbuf, errlen);
    if (st != CF_OK)
        return st;
    if (sched_out_add(outs, SCHED_T_PENDING, "caseflow.event.CasePending", event) != 0)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
    sched_ops_add(ops, SCHED_PENDING_KEY, case_id, now + s->set.pending_retry_ms);
    cf_metrics_add(s->pending, 1);
    CF_LOG(CF_LOG_INFO, "case_pending", CF_LOG_ID("case_id", case_id), CF_LOG_ID("reason", reason));
    return CF_OK;
}

/* ---- Inputs ------------------------------------------------------------------------------ */

static cf_status on_assigned(struct scheduler *s, const json_t *in, const char *case_id,
                             const char *cause, json_t **state, int64_t now, json_t *outs,
                             struct sched_ops *ops, char *errbuf, size_t errlen)
{
    const char *stage = sched_str(*state, "stage", NULL);
    if (*state != NULL && stage != NULL && strcmp(stage, "CLOSED") != 0)
        return cf_fail(errbuf, errlen, CF_EINVAL,
                       "CaseAssigned: the case is already scheduled (stage %s)", stage);
    const char *correlation = sched_str(in, "meta", "correlation_id");
    const char *manager = sched_str(in, "manager_id", NULL);
    const char *category = sched_str(in, "category", NULL);
    const char *priority = sched_str(in, "priority", NULL);
    const json_t *recipient = json_object_get(in, "recipient");
    if (correlation == NULL || manager == NULL || category == NULL || priority == NULL ||
        !json_is_object(recipient))
        return cf_fail(errbuf, errlen, CF_EINVAL, "CaseAssigned: a required field is missing");
    json_decref(*state);
    *state = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:s, s:i, s:[]}", "case_id", case_id,
                       "correlation_id", correlation, "manager_id", manager, "category", category,
                       "priority", priority, "recipient", recipient, "stage", "WAITING",
                       "no_shows", 0, "applied");
    if (*state == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
    return want_and_book(s, *state, cause, 0, now + lead_of(s, *state), NULL, now, outs, ops,
                         errbuf, errlen);
}

/* Releases the case's current hold and drops its reminders. */
static cf_status release_booking(struct scheduler *s, json_t *state, struct sched_ops *ops,
                                 char *errbuf, size_t errlen)
{
    const json_t *b = json_object_get(state, "booking");
    const char *case_id = sched_str(state, "case_id", NULL);
    if (!json_is_object(b))
        return CF_OK;
    sched_reminder_ops(s, ops, case_id, b, false, 0);
    return sched_store_release(s->redis, s->scripts, sched_str(b, "specialist_id", NULL),
                               sched_str(b, "teleconsult_id", NULL),
                               json_integer_value(json_object_get(b, "start_ms")), errbuf, errlen);
}

static cf_status close_case(struct scheduler *s, json_t *state, const char *cause,
                            const char *reason, const char *note, bool notify, int64_t now,
                            json_t *outs, char *errbuf, size_t errlen)
{
    char id[CF_UUID_LEN + 1];
    json_t *event = NULL;
    out_id(cause, outs, id);
    struct sched_meta m = {id, cause, now, s->producer};
    cf_status st = sched_build_closed(state, reason, note, notify, &m, &event, errbuf, errlen);
    if (st != CF_OK)
        return st;
    if (sched_out_add(outs, SCHED_T_CLOSED, "caseflow.event.CaseClosed", event) != 0 ||
        json_object_set_new(state, "stage", json_string("CLOSED")) != 0)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
    cf_metrics_add(s->closed, 1);
    return CF_OK;
}

static cf_status on_change(struct scheduler *s, const json_t *in, const char *cause,
                           json_t *state, int64_t now, json_t *outs, struct sched_ops *ops,
                           char *errbuf, size_t errlen)
{
    const char *case_id = sched_str(state, "case_id", NULL);
    const char *stage = sched_str(state, "stage", NULL);
    const char *tid = sched_str(in, "teleconsult_id", NULL);
    const char *action = sched_str(in, "action", NULL);
    const char *token = sched_str(in, "token", NULL);
    json_t *b = json_object_get(state, "booking");
    json_t *old = NULL, *event = NULL;
    char id[CF_UUID_LEN + 1];
    cf_status st;

    if (stage == NULL || strcmp(stage, "BOOKED") != 0 || !json_is_object(b)) {
        cf_metrics_add(s->refused, 1);
        return cf_fail(errbuf, errlen, CF_EINVAL,
                       "TeleconsultChangeRequested: the case has no booked teleconsult (stage "
                       "%s)", stage != NULL ? stage : "unknown");
    }
    if (tid == NULL || strcmp(tid, sched_str(b, "teleconsult_id", NULL)) != 0) {
        cf_metrics_add(s->refused, 1);
        return cf_fail(errbuf, errlen, CF_EINVAL,
                       "TeleconsultChangeRequested: not the case's current teleconsult");
    }
    if (action == NULL ||
        (strcmp(action, SCHED_ACTION_RESCHEDULE) != 0 && strcmp(action, SCHED_ACTION_CANCEL) != 0)) {
        cf_metrics_add(s->refused, 1);
        return cf_fail(errbuf, errlen, CF_EINVAL, "TeleconsultChangeRequested: unknown action");
    }
    int64_t start = json_integer_value(json_object_get(b, "start_ms"));
    if (!sched_token_verify(s->set.secret, s->set.secret_len, action, tid, start, token)) {
        cf_metrics_add(s->refused, 1);
        return cf_fail(errbuf, errlen, CF_EINVAL,
                       "TeleconsultChangeRequested: the token does not match the current "
                       "booking");
    }
    if (strcmp(action, SCHED_ACTION_CANCEL) == 0) {
        if ((st = release_booking(s, state, ops, errbuf, errlen)) != CF_OK)
            return st;
        out_id(cause, outs, id);
        struct sched_meta m = {id, cause, now, s->producer};
        st = sched_build_scheduled(state, "CANCELLED", -1, NULL, 0, &m, &event, errbuf, errlen);
        if (st != CF_OK)
            return st;
        if (sched_out_add(outs, SCHED_T_SCHEDULED, "caseflow.event.TeleconsultScheduled",
                          event) != 0)
            return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
        /* The CANCELLED record already tells the patient: the close carries no recipient. */
        st = close_case(s, state, cause, "WITHDRAWN", "TELECONSULT_CANCELLED", false, now, outs,
                        errbuf, errlen);
        if (st == CF_OK) {
            cf_metrics_add(s->cancelled, 1);
            CF_LOG(CF_LOG_INFO, "teleconsult_cancelled", CF_LOG_ID("case_id", case_id),
                   CF_LOG_ID("consult_id", tid));
        }
        return st;
    }
    /* RESCHEDULE: from max(preferred_start, now + lead), the same specialist first. */
    int64_t from = now + lead_of(s, state);
    const json_t *pref = json_object_get(in, "preferred_start");
    if (json_is_integer(pref) && json_integer_value(pref) > from)
        from = json_integer_value(pref);
    else if (json_is_string(pref)) {
        int64_t p = 0;
        if (cf_avro_parse_millis(json_string_value(pref), &p) == CF_OK && p > from)
            from = p;
    }
    if ((old = json_deep_copy(b)) == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
    bool found = false;
    const char *reason = NULL;
    st = sched_try_book(s, state, tid, from, now, sched_str(old, "specialist_id", NULL), old,
                        &found, &reason, errbuf, errlen);
    if (st == CF_OK && !found)
        st = cf_fail(errbuf, errlen, CF_ENOTFOUND,
                     "TeleconsultChangeRequested: no other slot within the horizon (%s); the "
                     "booking stands", reason);
    if (st != CF_OK)
        goto out;
    /* The book script released the old hold; its reminders go, the new ones come. */
    sched_reminder_ops(s, ops, case_id, old, false, 0);
    sched_reminder_ops(s, ops, case_id, json_object_get(state, "booking"), true, now);
    out_id(cause, outs, id);
    struct sched_meta m = {id, cause, now, s->producer};
    st = sched_build_scheduled(state, "RESCHEDULED", start, s->set.secret, s->set.secret_len, &m,
                               &event, errbuf, errlen);
    if (st == CF_OK &&
        sched_out_add(outs, SCHED_T_SCHEDULED, "caseflow.event.TeleconsultScheduled", event) != 0)
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
    if (st == CF_OK) {
        cf_metrics_add(s->rescheduled, 1);
        CF_LOG(CF_LOG_INFO, "teleconsult_rescheduled", CF_LOG_ID("case_id", case_id),
               CF_LOG_ID("consult_id", tid));
    }
out:
    json_decref(old);
    return st;
}

/* Clinic-local date (days since the epoch) of an instant. */
static cf_status clinic_day(const struct scheduler *s, int64_t ms, int32_t *day, char *errbuf,
                            size_t errlen)
{
    struct cf_tz *tz = NULL;
    struct cf_tz_civil c;
    cf_status st = cf_tz_set_get(s->zones, s->set.clinic_time_zone, &tz, errbuf, errlen);
    if (st == CF_OK)
        st = cf_tz_to_civil(tz, ms, &c, errbuf, errlen);
    if (st == CF_OK)
        *day = sched_days_from_civil(c.year, c.month, c.day);
    return st;
}

/* Clinic-local midnight of a day. */
static cf_status clinic_midnight(const struct scheduler *s, int32_t day, int64_t *ms,
                                 char *errbuf, size_t errlen)
{
    char text[16];
    int y = 0, m = 0, d = 0;
    struct cf_tz *tz = NULL;
    enum cf_tz_local kind;
    sched_format_day(day, text);
    if (sscanf(text, "%d-%d-%d", &y, &m, &d) != 3)
        return cf_fail(errbuf, errlen, CF_EINVAL, "day out of range");
    cf_status st = cf_tz_set_get(s->zones, s->set.clinic_time_zone, &tz, errbuf, errlen);
    if (st == CF_OK)
        st = cf_tz_from_civil(tz, y, m, d, 0, 0, ms, NULL, &kind, errbuf, errlen);
    return st;
}

#define TREATMENT_SEARCH_DAYS 365

/* Plans the treatment and takes its clinic days atomically (a lost race plans again). */
static cf_status plan_treatment(struct scheduler *s, const char *case_id, const char *cause,
                                int32_t earliest, int sessions, int follow_ups,
                                struct treatment_plan *plan, char *errbuf, size_t errlen)
{
    static int counts[TREATMENT_SEARCH_DAYS + 1];
    struct treatment_day_count booked[TREATMENT_SEARCH_DAYS + 1];
    struct treatment_clinic clinic;
    struct treatment_request req = {earliest, sessions, follow_ups, TREATMENT_SEARCH_DAYS - 20};
    char claim[128], existing[128];
    memcpy(clinic.open, s->set.clinic_open, sizeof(clinic.open));
    clinic.daily_capacity = s->set.clinic_daily;

    for (int attempt = 0; attempt < SCHED_BOOK_ATTEMPTS; attempt++) {
        size_t nbooked = 0;
        bool found = false;
        int result = 0;
        cf_status st = sched_store_clinic_read(s->redis, s->scripts, earliest,
                                               earliest + TREATMENT_SEARCH_DAYS, counts, errbuf,
                                               errlen);
        if (st != CF_OK)
            return st;
        for (int i = 0; i <= TREATMENT_SEARCH_DAYS; i++)
            if (counts[i] > 0)
                booked[nbooked++] = (struct treatment_day_count){earliest + i, counts[i]};
        st = treatment_plan(&clinic, booked, nbooked, &req, &found, plan, errbuf, errlen);
        if (st != CF_OK)
            return st;
        if (!found)
            return cf_fail(errbuf, errlen, CF_ENOTFOUND,
                           "TeleconsultCompleted: no clinic capacity within %d days",
                           req.horizon_days);
        if (plan->nsessions == 2)
            (void)snprintf(claim, sizeof(claim), "%s|%" PRId32 "|%" PRId32, cause,
                           plan->session_day[0], plan->session_day[1]);
        else
            (void)snprintf(claim, sizeof(claim), "%s|%" PRId32, cause, plan->session_day[0]);
        int64_t ttl = (int64_t)(plan->session_day[plan->nsessions - 1] - earliest + 60) * DAY_MS +
                      s->set.state_ttl_seconds * 1000;
        st = sched_store_clinic_take(s->redis, s->scripts, case_id, claim, plan->session_day,
                                     (size_t)plan->nsessions, clinic.daily_capacity, ttl, &result,
                                     existing, sizeof(existing), errbuf, errlen);
        if (st != CF_OK)
            return st;
        if (result == 1)
            return CF_OK;
        if (result == 0) {
            /* A retry: the days this input took before are the plan. */
            size_t cl = strlen(cause);
            long long d1 = 0, d2 = 0;
            int nd = 0;
            if (strncmp(existing, cause, cl) != 0 || existing[cl] != '|')
                return cf_fail(errbuf, errlen, CF_EINVAL,
                               "TeleconsultCompleted: the case's treatment is already booked");
            nd = sscanf(existing + cl, "|%lld|%lld", &d1, &d2);
            if (nd < 1)
                return cf_fail(errbuf, errlen, CF_EINVAL, "stored clinic claim unreadable");
            plan->nsessions = nd;
            plan->session_day[0] = (int32_t)d1;
            plan->session_day[1] = (int32_t)d2;
            plan->arrival_day = plan->session_day[0] - 1;
            plan->departure_day = plan->session_day[nd - 1] + 2;
            plan->nfollow_ups = follow_ups;
            plan->follow_up_from_day[0] = plan->session_day[nd - 1] + TREATMENT_FOLLOW_UP_DAYS_1;
            plan->follow_up_from_day[1] = plan->session_day[nd - 1] + TREATMENT_FOLLOW_UP_DAYS_2;
            return CF_OK;
        }
    }
    return cf_fail(errbuf, errlen, CF_EIO, "treatment: lost %d races in a row",
                   SCHED_BOOK_ATTEMPTS);
}

static cf_status on_eligible(struct scheduler *s, const json_t *in, const char *cause,
                             json_t *state, int64_t now, json_t *outs, struct sched_ops *ops,
                             char *errbuf, size_t errlen)
{
    const char *case_id = sched_str(state, "case_id", NULL);
    json_t *b = json_object_get(state, "booking");
    json_int_t sessions = json_integer_value(json_object_get(in, "sessions_planned"));
    json_int_t fups = json_integer_value(json_object_get(in, "follow_ups_planned"));
    struct treatment_plan plan;
    int64_t fu_start[2];
    int nfu = 0;
    json_t *event = NULL, *fu_list = NULL;
    char id[CF_UUID_LEN + 1];
    int32_t consult_day = 0;

    if (sessions < 1 || sessions > 2)
        return cf_fail(errbuf, errlen, CF_EINVAL,
                       "TeleconsultCompleted: ELIGIBLE needs sessions_planned 1 or 2");
    if (fups == 0)
        fups = 1; /* every treatment gets at least one follow-up */
    if (fups < 0 || fups > 2)
        return cf_fail(errbuf, errlen, CF_EINVAL,
                       "TeleconsultCompleted: follow_ups_planned must be 0, 1 or 2");
    cf_status st = clinic_day(s, json_integer_value(json_object_get(b, "start_ms")), &consult_day,
                              errbuf, errlen);
    if (st == CF_OK)
        st = plan_treatment(s, case_id, cause, consult_day + s->set.travel_lead_days,
                            (int)sessions, (int)fups, &plan, errbuf, errlen);
    if (st != CF_OK)
        return st;
    /* The follow-ups: each a booked teleconsult with a hold, the same specialist first. */
    json_t *current = json_deep_copy(b);
    if (current == NULL || (fu_list = json_array()) == NULL) {
        json_decref(current);
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
    }
    sched_reminder_ops(s, ops, case_id, b, false, 0); /* the consultation took place */
    for (int k = 0; k < plan.nfollow_ups && k < 2; k++) {
        char tid[CF_UUID_LEN + 1];
        int64_t from = 0;
        bool found = false;
        const char *reason = NULL;
        sched_name_id(cause, "teleconsult", k + 1, tid);
        st = clinic_midnight(s, plan.follow_up_from_day[k], &from, errbuf, errlen);
        if (st == CF_OK)
            st = sched_try_book(s, state, tid, from, now, sched_str(current, "specialist_id", NULL),
                                NULL, &found, &reason, errbuf, errlen);
        if (st != CF_OK)
            goto out;
        if (!found) {
            CF_LOG(CF_LOG_WARN, "follow_up_not_booked", CF_LOG_ID("case_id", case_id),
                   CF_LOG_ID("reason", reason));
            continue;
        }
        json_t *fb = json_object_get(state, "booking");
        fu_start[nfu++] = json_integer_value(json_object_get(fb, "start_ms"));
        if (json_array_append(fu_list, fb) != 0) {
            st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
            goto out;
        }
    }
    /* The completed consultation stays the case's booking of record. */
    if (json_object_set(state, "booking", current) != 0 ||
        json_object_set(state, "follow_ups", fu_list) != 0 ||
        json_object_set_new(state, "stage", json_string("TREATMENT")) != 0) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
        goto out;
    }
    out_id(cause, outs, id);
    struct sched_meta m = {id, cause, now, s->producer};
    st = sched_build_treatment(state, plan.session_day, plan.nsessions, plan.arrival_day,
                               plan.departure_day, fu_start, nfu, &m, &event, errbuf, errlen);
    if (st == CF_OK &&
        sched_out_add(outs, SCHED_T_TREATMENT, "caseflow.event.TreatmentBooked", event) != 0)
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
    if (st == CF_OK) {
        cf_metrics_add(s->treatments, 1);
        CF_LOG(CF_LOG_INFO, "treatment_booked", CF_LOG_ID("case_id", case_id),
               CF_LOG_INT("sessions", plan.nsessions), CF_LOG_INT("follow_ups", nfu));
    }
out:
    json_decref(current);
    json_decref(fu_list);
    return st;
}

static cf_status on_completed(struct scheduler *s, const json_t *in, const char *cause,
                              json_t *state, int64_t now, json_t *outs, struct sched_ops *ops,
                              char *errbuf, size_t errlen)
{
    const char *stage = sched_str(state, "stage", NULL);
    const char *tid = sched_str(in, "teleconsult_id", NULL);
    const char *outcome = sched_str(in, "outcome", NULL);
    json_t *b = json_object_get(state, "booking");
    if (stage == NULL || strcmp(stage, "BOOKED") != 0 || !json_is_object(b))
        return cf_fail(errbuf, errlen, CF_EINVAL,
                       "TeleconsultCompleted: the case has no booked teleconsult (stage %s)",
                       stage != NULL ? stage : "unknown");
    if (tid == NULL || strcmp(tid, sched_str(b, "teleconsult_id", NULL)) != 0)
        return cf_fail(errbuf, errlen, CF_EINVAL,
                       "TeleconsultCompleted: not the case's current teleconsult");
    if (outcome == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "TeleconsultCompleted: outcome missing");
    if (strcmp(outcome, "ELIGIBLE") == 0)
        return on_eligible(s, in, cause, state, now, outs, ops, errbuf, errlen);
    if (strcmp(outcome, "NOT_ELIGIBLE") == 0) {
        sched_reminder_ops(s, ops, sched_str(state, "case_id", NULL), b, false, 0);
        return close_case(s, state, cause, "NOT_ELIGIBLE", NULL, true, now, outs, errbuf, errlen);
    }
    const char *sp = sched_str(b, "specialist_id", NULL);
    char prefer[SCHED_ID_MAX + 1];
    (void)snprintf(prefer, sizeof(prefer), "%s", sp != NULL ? sp : "");
    sched_reminder_ops(s, ops, sched_str(state, "case_id", NULL), b, false, 0);
    if (strcmp(outcome, "NEEDS_TESTS") == 0)
        return want_and_book(s, state, cause, 0, now + s->set.tests_wait_ms, prefer, now, outs,
                             ops, errbuf, errlen);
    if (strcmp(outcome, "NO_SHOW") == 0) {
        json_int_t n = json_integer_value(json_object_get(state, "no_shows")) + 1;
        if (json_object_set_new(state, "no_shows", json_integer(n)) != 0)
            return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
        if (n >= 2)
            return close_case(s, state, cause, "WITHDRAWN", "NO_SHOW", true, now, outs, errbuf,
                              errlen);
        return want_and_book(s, state, cause, 0, now + lead_of(s, state), prefer, now, outs, ops,
                             errbuf, errlen);
    }
    return cf_fail(errbuf, errlen, CF_EINVAL, "TeleconsultCompleted: unknown outcome");
}

/* Another service closed the case: its hold and reminders go, it waits no more. */
static cf_status on_closed(struct scheduler *s, json_t *state, struct sched_ops *ops, char *errbuf,
                           size_t errlen)
{
    const char *stage = sched_str(state, "stage", NULL);
    const char *case_id = sched_str(state, "case_id", NULL);
    cf_status st = CF_OK;
    if (stage != NULL && strcmp(stage, "BOOKED") == 0)
        st = release_booking(s, state, ops, errbuf, errlen);
    if (st != CF_OK)
        return st;
    sched_ops_add(ops, SCHED_PENDING_KEY, case_id, -1);
    if (json_object_set_new(state, "stage", json_string("CLOSED")) != 0)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
    CF_LOG(CF_LOG_INFO, "case_closed_seen", CF_LOG_ID("case_id", case_id));
    return CF_OK;
}

/* The outputs the state remembers for input cause, or NULL. */
static const json_t *applied_outputs(const json_t *state, const char *cause)
{
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(state, "applied"), i, a)
    {
        const char *id = sched_str(a, "id", NULL);
        if (id != NULL && strcmp(id, cause) == 0)
            return json_object_get(a, "out");
    }
    return NULL;
}

static int mark_applied(json_t *state, const char *cause, json_t *outs)
{
    json_t *list = json_object_get(state, "applied");
    if (!json_is_array(list)) {
        list = json_array();
        if (json_object_set_new(state, "applied", list) != 0)
            return -1;
    }
    while (json_array_size(list) >= SCHED_APPLIED_MAX)
        (void)json_array_remove(list, 0);
    return json_array_append_new(list, json_pack("{s:s, s:O}", "id", cause, "out", outs));
}

/* Our own TeleconsultScheduled / CasePending / ReminderDue read back. */
static cf_status on_readback(struct scheduler *s, const char *topic, const json_t *in,
                             const char *case_id, char *errbuf, size_t errlen)
{
    const char *producer = sched_str(in, "meta", "producer");
    const char *event_id = sched_str(in, "meta", "event_id");
    json_t *state = NULL;
    struct sched_ops ops = {.n = 0};
    cf_status st = CF_OK;
    if (producer == NULL || strncmp(producer, SCHEDULER_SERVICE "/", 10) != 0 || event_id == NULL)
        return CF_OK;
    if (strcmp(topic, SCHED_T_REMINDER) == 0) {
        char member[SCHED_MEMBER_MAX];
        int64_t start = 0;
        const json_t *v = json_object_get(in, "start");
        if (json_is_string(v) && cf_avro_parse_millis(json_string_value(v), &start) != CF_OK)
            return CF_OK;
        if (json_is_integer(v))
            start = json_integer_value(v);
        (void)snprintf(member, sizeof(member), "%s/%s/%" PRId64 "/%s", case_id,
                       sched_str(in, "teleconsult_id", NULL), start, sched_str(in, "lead", NULL));
        cf_redis_pipeline_reset(s->pipeline);
        st = cf_due_set_put(s->pipeline, &s->scripts->due, SCHED_REMINDERS_KEY, member, -1,
                             s->set.state_ttl_seconds * 1000, errbuf, errlen);
        if (st == CF_OK)
            st = cf_redis_pipeline_exec(s->redis, s->pipeline, errbuf, errlen);
        cf_redis_pipeline_reset(s->pipeline);
        return st;
    }
    st = sched_load_state(s, case_id, &state, errbuf, errlen);
    if (st == CF_ENOTFOUND || st == CF_EINVAL)
        return CF_OK;
    if (st != CF_OK)
        return st;
    json_t *outbox = json_object_get(state, "outbox");
    size_t i;
    json_t *item;
    bool changed = false;
    json_array_foreach(outbox, i, item)
    {
        const char *id = sched_str(json_object_get(item, "event"), "meta", "event_id");
        if (id != NULL && strcmp(id, event_id) == 0) {
            (void)json_array_remove(outbox, i);
            changed = true;
            break;
        }
    }
    if (changed) {
        const char *stage = sched_str(state, "stage", NULL);
        if (json_array_size(outbox) == 0 && (stage == NULL || strcmp(stage, "PENDING") != 0))
            sched_ops_add(&ops, SCHED_PENDING_KEY, case_id, -1);
        st = sched_store_state(s, case_id, state, &ops, errbuf, errlen);
    }
    json_decref(state);
    return st;
}

enum input_kind { IN_ASSIGNED, IN_CHANGE, IN_COMPLETED, IN_CLOSED, IN_READBACK };

static bool kind_of(const char *topic, enum input_kind *kind)
{
    if (strcmp(topic, SCHED_T_ASSIGNED) == 0)
        *kind = IN_ASSIGNED;
    else if (strcmp(topic, SCHED_T_CHANGE) == 0)
        *kind = IN_CHANGE;
    else if (strcmp(topic, SCHED_T_COMPLETED) == 0)
        *kind = IN_COMPLETED;
    else if (strcmp(topic, SCHED_T_CLOSED) == 0)
        *kind = IN_CLOSED;
    else if (strcmp(topic, SCHED_T_SCHEDULED) == 0 || strcmp(topic, SCHED_T_PENDING) == 0 ||
             strcmp(topic, SCHED_T_REMINDER) == 0)
        *kind = IN_READBACK;
    else
        return false;
    return true;
}

cf_status scheduler_handle(void *ctx, const struct cf_kafka_record *in, struct cf_kafka_out *out,
                           char *errbuf, size_t errlen)
{
    struct scheduler *s = ctx;
    json_t *input = NULL, *state = NULL, *outs = NULL;
    struct sched_ops ops = {.n = 0};
    enum input_kind kind;
    int64_t now = cf_clock_wall_ms();
    cf_status st;

    if (!kind_of(in->topic, &kind)) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "topic: not one the scheduler reads");
        goto out;
    }
    if (in->value == NULL) {
        st = cf_fail(errbuf, errlen, CF_EDECODE, "value: null");
        goto out;
    }
    st = cf_serde_decode_json(s->serde, in->topic, in->value, in->value_len, &input, errbuf,
                              errlen);
    if (st != CF_OK)
        goto out;
    const char *cause = sched_str(input, "meta", "event_id");
    const char *case_id = sched_str(input, "meta", "case_id");
    if (cause == NULL || !cf_uuid_valid(cause)) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "$.meta.event_id: not a UUID");
        goto out;
    }
    if (case_id == NULL || !cf_uuid_valid(case_id)) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "$.meta.case_id: not a UUID");
        goto out;
    }
    if (kind == IN_READBACK) {
        st = on_readback(s, in->topic, input, case_id, errbuf, errlen);
        goto out;
    }
    if (kind == IN_CLOSED) {
        const char *producer = sched_str(input, "meta", "producer");
        if (producer != NULL && strncmp(producer, SCHEDULER_SERVICE "/", 10) == 0)
            goto out; /* our own close: its step already released everything */
    }
    st = sched_load_state(s, case_id, &state, errbuf, errlen);
    if (st == CF_ENOTFOUND && (kind == IN_ASSIGNED || kind == IN_CLOSED)) {
        st = CF_OK;
        if (kind == IN_CLOSED)
            goto out; /* a case the scheduler never held */
    }
    if (st != CF_OK)
        goto out;
    const json_t *done = applied_outputs(state, cause);
    if (done != NULL) {
        /* A retried batch or a restart: the very same records again, nothing taken twice. */
        st = sched_emit_all(s, case_id, done, out, errbuf, errlen);
        goto out;
    }
    if ((st = scheduler_roster_refresh(s, errbuf, errlen)) != CF_OK)
        goto out;
    if ((outs = json_array()) == NULL) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
        goto out;
    }
    switch (kind) {
    case IN_ASSIGNED:
        st = on_assigned(s, input, case_id, cause, &state, now, outs, &ops, errbuf, errlen);
        break;
    case IN_CHANGE:
        st = on_change(s, input, cause, state, now, outs, &ops, errbuf, errlen);
        break;
    case IN_COMPLETED:
        st = on_completed(s, input, cause, state, now, outs, &ops, errbuf, errlen);
        break;
    case IN_CLOSED:
        st = on_closed(s, state, &ops, errbuf, errlen);
        break;
    case IN_READBACK:
        break;
    }
    if (st != CF_OK)
        goto out;
    if (mark_applied(state, cause, outs) != 0) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
        goto out;
    }
    st = sched_store_state(s, case_id, state, &ops, errbuf, errlen);
    if (st == CF_OK)
        st = sched_emit_all(s, case_id, outs, out, errbuf, errlen);
out:
    json_decref(outs);
    json_decref(state);
    json_decref(input);
    return st;
}
