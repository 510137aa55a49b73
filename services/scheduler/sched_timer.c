/* sched_timer.c — the scheduler's timer: follows the specialist roster, emits due reminders
 * and searches again for cases that wait (scheduler.h, README.md "Timer"). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sched_events.h"
#include "sched_internal.h"
#include "scheduler.h"
#include "uuid.h"

cf_status scheduler_roster_refresh(struct scheduler *s, char *errbuf, size_t errlen)
{
    struct sched_roster fresh;
    if (s->roster_view == NULL)
        return CF_OK;
    uint64_t version = cf_roster_view_version(s->roster_view);
    if (version == s->roster_version)
        return CF_OK;
    cf_status st =
        sched_roster_build(cf_roster_view_entries(s->roster_view), &fresh, errbuf, errlen);
    if (st != CF_OK)
        return st;
    sched_roster_clear(&s->roster);
    s->roster = fresh;
    s->roster_version = version;
    s->retry_pending_now = true; /* a new specialist or new hours may end some waits */
    CF_LOG(CF_LOG_INFO, "roster_changed", CF_LOG_INT("specialists", (long long)fresh.n),
           CF_LOG_INT("skipped", (long long)fresh.skipped),
           CF_LOG_INT("version", (long long)version));
    return CF_OK;
}

/* Removes member from the due-time set key. */
static cf_status drop_due(struct scheduler *s, const char *key, const char *member, char *errbuf,
                          size_t errlen)
{
    cf_redis_pipeline_reset(s->pipeline);
    cf_status st = cf_due_set_put(s->pipeline, &s->scripts->due, key, member, -1,
                                   s->set.state_ttl_seconds * 1000, errbuf, errlen);
    if (st == CF_OK)
        st = cf_redis_pipeline_exec(s->redis, s->pipeline, errbuf, errlen);
    cf_redis_pipeline_reset(s->pipeline);
    return st;
}

/* One claimed reminder "<case_id>/<teleconsult_id>/<start>/<lead>": emitted if the booking is
 * still the case's current one, else dropped. It stays (leased) until read back. */
static cf_status remind_one(struct scheduler *s, const char *member, int64_t now,
                            struct cf_kafka_out *out, char *errbuf, size_t errlen)
{
    char case_id[CF_UUID_LEN + 1], tid[CF_UUID_LEN + 1], lead[8], id[CF_UUID_LEN + 1];
    long long start = 0;
    json_t *state = NULL, *event = NULL, *item = NULL;
    cf_status st;
    if (sscanf(member, "%36[0-9a-f-]/%36[0-9a-f-]/%lld/%3[H0-9]", case_id, tid, &start, lead) !=
            4 ||
        !cf_uuid_valid(case_id) || (strcmp(lead, "H24") != 0 && strcmp(lead, "H1") != 0)) {
        CF_LOG(CF_LOG_WARN, "reminder_dropped", CF_LOG_ERR("reason", "malformed member"));
        return drop_due(s, SCHED_REMINDERS_KEY, member, errbuf, errlen);
    }
    st = sched_load_state(s, case_id, &state, errbuf, errlen);
    if (st == CF_ENOTFOUND || st == CF_EINVAL) {
        CF_LOG(CF_LOG_INFO, "reminder_dropped", CF_LOG_ID("case_id", case_id),
               CF_LOG_ERR("reason", "no scheduling state"));
        return drop_due(s, SCHED_REMINDERS_KEY, member, errbuf, errlen);
    }
    if (st != CF_OK)
        return st;
    const json_t *b = json_object_get(state, "booking");
    const char *stage = sched_str(state, "stage", NULL);
    const char *current = sched_str(b, "teleconsult_id", NULL);
    if (stage == NULL || strcmp(stage, "BOOKED") != 0 || current == NULL ||
        strcmp(current, tid) != 0 || json_integer_value(json_object_get(b, "start_ms")) != start) {
        CF_LOG(CF_LOG_INFO, "reminder_dropped", CF_LOG_ID("case_id", case_id),
               CF_LOG_ERR("reason", "the booking moved, was cancelled or took place"));
        st = drop_due(s, SCHED_REMINDERS_KEY, member, errbuf, errlen);
        goto out;
    }
    sched_reminder_event_id(tid, (int64_t)start, lead, id);
    struct sched_meta m = {id, NULL, now, s->producer};
    st = sched_build_reminder(state, lead, &m, &event, errbuf, errlen);
    if (st == CF_OK) {
        item = json_pack("{s:s, s:s, s:o}", "topic", SCHED_T_REMINDER, "type",
                         "caseflow.event.TeleconsultReminderDue", "event", event);
        event = NULL;
        st = item != NULL ? sched_emit(s, case_id, item, out, errbuf, errlen)
                          : cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
    }
    if (st == CF_OK) {
        cf_metrics_add(s->reminders, 1);
        CF_LOG(CF_LOG_INFO, "reminder_due", CF_LOG_ID("case_id", case_id),
               CF_LOG_ID("consult_id", tid), CF_LOG_ID("lead", lead),
               CF_LOG_ID("event_id", id));
    }
out:
    json_decref(item);
    json_decref(event);
    json_decref(state);
    return st;
}

/* One claimed waiting case: its unconfirmed records again, or a new search (BOOKED, or after
 * the configured wait CasePending alert=true once). */
static cf_status retry_one(struct scheduler *s, const char *case_id, int64_t now,
                           struct cf_kafka_out *out, char *errbuf, size_t errlen)
{
    json_t *state = NULL, *outs = NULL, *event = NULL;
    struct sched_ops ops = {.n = 0};
    char id[CF_UUID_LEN + 1];
    bool booked = false;
    cf_status st = sched_load_state(s, case_id, &state, errbuf, errlen);
    if (st == CF_ENOTFOUND || st == CF_EINVAL)
        return drop_due(s, SCHED_PENDING_KEY, case_id, errbuf, errlen);
    if (st != CF_OK)
        return st;
    const json_t *outbox = json_object_get(state, "outbox");
    const char *stage = sched_str(state, "stage", NULL);
    if (json_array_size(outbox) > 0) {
        /* A transaction of an earlier turn may be lost: the same records again. */
        st = sched_emit_all(s, case_id, outbox, out, errbuf, errlen);
        goto out;
    }
    if (stage == NULL || strcmp(stage, "PENDING") != 0) {
        st = drop_due(s, SCHED_PENDING_KEY, case_id, errbuf, errlen);
        goto out;
    }
    if ((outs = json_array()) == NULL) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
        goto out;
    }
    const char *tid = sched_str(state, "want", "teleconsult_id");
    const char *cause = sched_str(state, "want", "cause");
    sched_name_id(tid, "timer-booked", 0, id);
    st = sched_book_want(s, state, now, id, cause, outs, &ops, &booked, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    if (booked) {
        /* Stays claimed until the BOOKED record is read back (sched_book_want queued its
         * removal; this later entry wins). */
        sched_ops_add(&ops, SCHED_PENDING_KEY, case_id, now + s->set.pending_retry_ms);
    } else {
        json_int_t since = json_integer_value(json_object_get(state, "waiting_since_ms"));
        if (json_is_true(json_object_get(state, "alerted")) ||
            now - since < s->set.pending_alert_ms) {
            st = CF_OK; /* keeps waiting; the claim's lease is the next retry */
            goto out;
        }
        sched_name_id(case_id, "pending-alert", (long long)since, id);
        struct sched_meta m = {id, cause, now, s->producer};
        st = sched_build_pending(state, sched_str(state, "pending_reason", NULL), since, true, &m,
                                 &event, errbuf, errlen);
        if (st != CF_OK)
            goto out;
        if (sched_out_add(outs, SCHED_T_PENDING, "caseflow.event.CasePending", event) != 0 ||
            json_object_set_new(state, "alerted", json_true()) != 0) {
            st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
            goto out;
        }
        cf_metrics_add(s->pending, 1);
        CF_LOG(CF_LOG_WARN, "case_pending_alert", CF_LOG_ID("case_id", case_id),
               CF_LOG_ID("reason", sched_str(state, "pending_reason", NULL)));
    }
    if (json_object_set(state, "outbox", outs) != 0) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
        goto out;
    }
    st = sched_store_state(s, case_id, state, &ops, errbuf, errlen);
    if (st == CF_OK)
        st = sched_emit_all(s, case_id, outs, out, errbuf, errlen);
out:
    json_decref(outs);
    json_decref(state);
    return st;
}

cf_status scheduler_tick(void *ctx, int64_t now_ms, struct cf_kafka_out *out, char *errbuf,
                         size_t errlen)
{
    struct scheduler *s = ctx;
    struct cf_redis_value *due = NULL;
    char why[256];
    cf_status st;

    if (s->roster_view != NULL &&
        cf_roster_view_poll(s->roster_view, NULL, why, sizeof(why)) != CF_OK)
        CF_LOG(CF_LOG_WARN, "roster_poll_failed", CF_LOG_ERR("reason", why));
    if ((st = scheduler_roster_refresh(s, errbuf, errlen)) != CF_OK)
        return st;

    st = cf_due_set_claim(s->redis, &s->scripts->due, SCHED_REMINDERS_KEY, now_ms,
                           now_ms + SCHED_REMINDER_LEASE_MS, SCHED_TIMER_BATCH, &due, errbuf,
                           errlen);
    for (size_t i = 0; st == CF_OK && due->type == CF_REDIS_ARRAY && i < due->count; i++)
        if (due->elements[i].type == CF_REDIS_STRING)
            st = remind_one(s, due->elements[i].str, now_ms, out, errbuf, errlen);
    cf_redis_value_free(due);
    due = NULL;
    if (st != CF_OK)
        return st;

    /* After a roster change every waiting case is searched at once, not at its next turn. */
    int64_t upto = s->retry_pending_now ? INT64_MAX / 4 : now_ms;
    s->retry_pending_now = false;
    st = cf_due_set_claim(s->redis, &s->scripts->due, SCHED_PENDING_KEY, upto,
                           now_ms + s->set.pending_retry_ms, SCHED_TIMER_BATCH, &due, errbuf,
                           errlen);
    for (size_t i = 0; st == CF_OK && due->type == CF_REDIS_ARRAY && i < due->count; i++)
        if (due->elements[i].type == CF_REDIS_STRING && cf_uuid_valid(due->elements[i].str))
            st = retry_one(s, due->elements[i].str, now_ms, out, errbuf, errlen);
    cf_redis_value_free(due);
    return st;
}
