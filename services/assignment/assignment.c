/* assignment.c — assignment's handler and timer (see assignment.h and README.md). */
#include "assignment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cloudevents.h"
#include "log.h"

/* The string at obj.k1.k2 (k2 may be NULL), or NULL. */
static const char *str_at(const json_t *obj, const char *k1, const char *k2)
{
    const json_t *v = json_object_get(obj, k1);
    if (k2 != NULL)
        v = json_object_get(v, k2);
    return json_string_value(v);
}

void assignment_release_roster(struct assignment *a)
{
    if (a == NULL)
        return;
    assignment_roster_clear(&a->roster);
    a->roster_built = false;
}

cf_status assignment_refresh_roster(struct assignment *a, bool force, char *errbuf,
                                    size_t errlen)
{
    char err[256] = "";
    int64_t mono = cf_clock_mono_ms();

    if (a->view != NULL && (force || mono - a->roster_polled_ms >= ASSIGNMENT_ROSTER_POLL_MS)) {
        a->roster_polled_ms = mono;
        /* A failed poll keeps the roster as it was; the view logged why, the next poll goes
         * on from where this one stopped. */
        if (cf_roster_view_poll(a->view, NULL, err, sizeof(err)) != CF_OK)
            CF_LOG(CF_LOG_WARN, "roster_poll_failed", CF_LOG_ERR("reason", err));
    }
    uint64_t version = a->view != NULL ? cf_roster_view_version(a->view) : 0;
    if (a->roster_built && version == a->roster_version)
        return CF_OK;
    struct assignment_roster fresh;
    cf_status st = assignment_roster_build(a->view != NULL ? cf_roster_view_entries(a->view) : NULL,
                                           &fresh, errbuf, errlen);
    if (st != CF_OK)
        return st;
    assignment_roster_clear(&a->roster);
    a->roster = fresh;
    a->roster_version = version;
    a->roster_built = true;
    CF_LOG(CF_LOG_INFO, "roster_rebuilt", CF_LOG_INT("managers", fresh.count),
           CF_LOG_INT("skipped", fresh.skipped), CF_LOG_INT("version", version));
    return CF_OK;
}

cf_status assignment_emit(struct assignment *a, const char *topic, const char *type,
                          const char *case_id, const json_t *event, struct cf_kafka_out *out,
                          char *errbuf, size_t errlen)
{
    return cf_cloudevent_emit(a->serde, ASSIGNMENT_SERVICE, topic, type, case_id, event, out, errbuf, errlen);
}

static void count_reason(struct assignment *a, const char *code)
{
    for (int r = 0; r <= ASSIGNMENT_REASON_NO_URGENT_ROOM; r++)
        if (strcmp(code, assignment_reason_code((enum assignment_reason)r)) == 0)
            cf_metrics_add(a->decided[r], 1);
}

/* Queues the CaseAssigned of the CaseValidated validated for the script's answer res. */
static cf_status emit_assigned(struct assignment *a, const json_t *validated, const char *case_id,
                               const struct assignment_decision *d, struct cf_kafka_out *out,
                               char *errbuf, size_t errlen)
{
    json_t *event = NULL;
    cf_status st = assignment_build_assigned(validated, d, a->producer, &event, errbuf, errlen);
    if (st == CF_OK)
        st = assignment_emit(a, ASSIGNMENT_TOPIC_ASSIGNED, ASSIGNMENT_ASSIGNED_TYPE, case_id,
                             event, out, errbuf, errlen);
    json_decref(event);
    return st;
}

static struct assignment_decision decision_of(const struct assignment_result *res)
{
    struct assignment_decision d = {res->manager_id, res->manager_name, res->manager_email,
                                    res->interpreter, res->returning,   res->at_ms};
    return d;
}

static cf_status emit_pending(struct assignment *a, const json_t *validated, const char *case_id,
                              const char *reason, int64_t queued_ms, bool alert,
                              struct cf_kafka_out *out, char *errbuf, size_t errlen)
{
    json_t *event = NULL;
    cf_status st = assignment_build_pending(validated, reason, queued_ms, alert, a->alert_ms,
                                            a->producer, &event, errbuf, errlen);
    if (st == CF_OK)
        st = assignment_emit(a, ASSIGNMENT_TOPIC_PENDING, ASSIGNMENT_PENDING_TYPE, case_id, event,
                             out, errbuf, errlen);
    json_decref(event);
    return st;
}

/* Runs the assign script for the case of validated (input_json: its text to store, "" when
 * serving a case already stored). */
static cf_status assign(struct assignment *a, const struct assignment_input *in, bool serve,
                        const char *input_json, const char *via, int64_t now,
                        struct assignment_result *res, char *errbuf, size_t errlen)
{
    char *cands = NULL;
    struct assignment_case c = assignment_input_case(in);
    if (assignment_candidates_json(&c, a->roster.managers, a->roster.names, a->roster.emails,
                                   a->roster.count, &cands) != CF_OK)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory listing candidates");
    struct assignment_request req = {in->case_id, in->patient_key, serve,       now,
                                     in->priority, cands,          input_json,  via,
                                     a->ttl_ms,    a->lease_ms,    a->alert_ms};
    cf_status st = assignment_store_assign(a->redis, a->scripts, &req, res, errbuf, errlen);
    free(cands);
    return st;
}

static void log_assigned(const struct assignment_input *in, const struct assignment_result *res,
                         const char *event, const char *via)
{
    CF_LOG(CF_LOG_INFO, "case_assigned", CF_LOG_ID("case_id", in->case_id),
           CF_LOG_ID("manager_id", res->manager_id), CF_LOG_ID("reason", res->reason),
           CF_LOG_ID("priority", assignment_priority_symbol(in->priority)),
           CF_LOG_ID("how", event), CF_LOG_ID("via", via));
}

static cf_status on_validated(struct assignment *a, const json_t *validated, int64_t now,
                              struct cf_kafka_out *out, char *errbuf, size_t errlen)
{
    struct assignment_input in;
    struct assignment_result res = {0};
    char *text = NULL;
    cf_status st = assignment_input_parse(validated, &in, errbuf, errlen);
    if (st != CF_OK)
        return st;
    if ((st = assignment_refresh_roster(a, false, errbuf, errlen)) != CF_OK)
        return st;
    if ((text = json_dumps(validated, JSON_COMPACT)) == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory storing the case");
    st = assign(a, &in, false, text, in.event_id, now, &res, errbuf, errlen);
    free(text);
    if (st != CF_OK)
        return st;
    struct assignment_decision d = decision_of(&res);
    switch (res.status) {
    case ASSIGNMENT_ASSIGNED:
        st = emit_assigned(a, validated, in.case_id, &d, out, errbuf, errlen);
        if (st == CF_OK) {
            count_reason(a, res.reason);
            log_assigned(&in, &res, "validated", in.event_id);
        }
        break;
    case ASSIGNMENT_ALREADY:
        /* Assigned by an earlier run of this very input whose transaction did not commit (a
         * retried batch, a replica that died): its CaseAssigned, same id, is emitted again.
         * Assigned any other way, or read back already: nothing more to say. */
        if (!res.confirmed && strcmp(res.via, in.event_id) == 0) {
            st = emit_assigned(a, validated, in.case_id, &d, out, errbuf, errlen);
            if (st == CF_OK) {
                cf_metrics_add(a->reemitted, 1);
                log_assigned(&in, &res, "validated_again", in.event_id);
            }
        }
        break;
    case ASSIGNMENT_PARKED:
    case ASSIGNMENT_PENDING:
        /* PENDING: parked by an earlier run whose transaction did not commit, so its
         * CasePending is emitted again (same id). */
        st = emit_pending(a, validated, in.case_id, res.reason, res.at_ms, false, out, errbuf,
                          errlen);
        if (st == CF_OK && res.status == ASSIGNMENT_PARKED) {
            count_reason(a, res.reason);
            CF_LOG(CF_LOG_INFO, "case_pending", CF_LOG_ID("case_id", in.case_id),
                   CF_LOG_ID("reason", res.reason),
                   CF_LOG_ID("priority", assignment_priority_symbol(in.priority)));
        }
        break;
    case ASSIGNMENT_RELEASED:
    case ASSIGNMENT_GONE:
        CF_LOG(CF_LOG_INFO, "case_closed_before_assignment", CF_LOG_ID("case_id", in.case_id),
               CF_LOG_ID("event_id", in.event_id));
        break;
    }
    assignment_result_clear(&res);
    return st;
}

/* Tries the first ASSIGNMENT_SERVE_BATCH cases of the pending queue, in its order, and emits
 * a CaseAssigned for each one this call assigns. via: what prompted it (an event id, "timer"). */
static cf_status serve_pending(struct assignment *a, const char *via, int64_t now,
                               struct cf_kafka_out *out, char *errbuf, size_t errlen)
{
    struct cf_redis_value *top = NULL;
    cf_status st = assignment_store_peek_pending(a->redis, a->scripts, ASSIGNMENT_SERVE_BATCH,
                                                 &top, errbuf, errlen);
    if (st != CF_OK)
        return st;
    if (top->type != CF_REDIS_ARRAY || top->count == 0) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "pending script: unexpected reply");
        goto out;
    }
    if (top->elements[0].type == CF_REDIS_INT)
        cf_metrics_set(a->pending, (double)top->elements[0].integer);
    if (top->count > 1 && (st = assignment_refresh_roster(a, false, errbuf, errlen)) != CF_OK)
        goto out;
    for (size_t i = 1; i < top->count; i++) {
        const char *case_id = assignment_reply_str(&top->elements[i], 0);
        const char *text = assignment_reply_str(&top->elements[i], 1);
        struct assignment_input in;
        struct assignment_result res = {0};
        json_t *validated = text != NULL ? json_loads(text, 0, NULL) : NULL;
        if (case_id == NULL || validated == NULL ||
            assignment_input_parse(validated, &in, errbuf, errlen) != CF_OK) {
            /* Only assignment writes the queue, from inputs it parsed: cannot happen. */
            CF_LOG(CF_LOG_ERROR, "pending_case_unreadable", CF_LOG_ID("case_id", case_id));
            json_decref(validated);
            continue;
        }
        st = assign(a, &in, true, "", via, now, &res, errbuf, errlen);
        if (st == CF_OK && res.status == ASSIGNMENT_ASSIGNED) {
            struct assignment_decision d = decision_of(&res);
            st = emit_assigned(a, validated, in.case_id, &d, out, errbuf, errlen);
            if (st == CF_OK) {
                count_reason(a, res.reason);
                log_assigned(&in, &res, "from_pending", via);
            }
        }
        assignment_result_clear(&res);
        json_decref(validated);
        if (st != CF_OK)
            goto out;
    }
out:
    cf_redis_value_free(top);
    return st;
}

static cf_status on_closed(struct assignment *a, const json_t *closed, int64_t now,
                           struct cf_kafka_out *out, char *errbuf, size_t errlen)
{
    const char *case_id = str_at(closed, "meta", "case_id");
    const char *event_id = str_at(closed, "meta", "event_id");
    char freed[ASSIGNMENT_KEY_MAX];
    bool released_now = false;

    if (case_id == NULL || !cf_uuid_valid(case_id))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.meta.case_id: not a UUID");
    if (event_id == NULL || !cf_uuid_valid(event_id))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.meta.event_id: not a UUID");
    cf_status st = assignment_store_release(a->redis, a->scripts, case_id, now, a->ttl_ms, freed,
                                            sizeof(freed), &released_now, errbuf, errlen);
    if (st != CF_OK)
        return st;
    if (released_now) {
        cf_metrics_add(a->released, 1);
        CF_LOG(CF_LOG_INFO, "case_released", CF_LOG_ID("case_id", case_id),
               CF_LOG_ID("manager_id", freed[0] != '\0' ? freed : "-"),
               CF_LOG_ID("causation_id", event_id));
    }
    /* Also when this input was released before: a retried batch serves again what its lost
     * transaction had served (those cases then wait for their lease, see README). */
    return serve_pending(a, event_id, now, out, errbuf, errlen);
}

static cf_status on_assigned_back(struct assignment *a, const json_t *assigned, char *errbuf,
                                  size_t errlen)
{
    const char *case_id = str_at(assigned, "meta", "case_id");
    const char *manager_id = str_at(assigned, "manager_id", NULL);
    if (case_id == NULL || !cf_uuid_valid(case_id) || manager_id == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.meta.case_id or $.manager_id: missing");
    return assignment_store_confirm(a->redis, a->scripts, case_id, manager_id, errbuf, errlen);
}

static cf_status on_pending_back(struct assignment *a, const json_t *pending, char *errbuf,
                                 size_t errlen)
{
    const char *case_id = str_at(pending, "meta", "case_id");
    const char *service = str_at(pending, "service", NULL);
    /* The scheduler writes this topic too; only assignment's alerts are ours to confirm. */
    if (service == NULL || strcmp(service, ASSIGNMENT_SERVICE) != 0 ||
        !json_is_true(json_object_get(pending, "alert")))
        return CF_OK;
    if (case_id == NULL || !cf_uuid_valid(case_id))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.meta.case_id: not a UUID");
    return assignment_store_drop_alert(a->redis, a->scripts, case_id, errbuf, errlen);
}

cf_status assignment_handle(void *ctx, const struct cf_kafka_record *in, struct cf_kafka_out *out,
                            char *errbuf, size_t errlen)
{
    struct assignment *a = ctx;
    json_t *input = NULL;
    int64_t now = cf_clock_wall_ms();
    cf_status st;

    if (in->value == NULL) {
        st = cf_fail(errbuf, errlen, CF_EDECODE, "value: null");
        goto out;
    }
    bool validated = strcmp(in->topic, ASSIGNMENT_TOPIC_VALIDATED) == 0;
    bool closed = strcmp(in->topic, ASSIGNMENT_TOPIC_CLOSED) == 0;
    bool assigned = strcmp(in->topic, ASSIGNMENT_TOPIC_ASSIGNED) == 0;
    bool pending = strcmp(in->topic, ASSIGNMENT_TOPIC_PENDING) == 0;
    if (!validated && !closed && !assigned && !pending) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "topic: not one assignment reads");
        goto out;
    }
    st = cf_serde_decode_json(a->serde, in->topic, in->value, in->value_len, &input, errbuf,
                              errlen);
    if (st != CF_OK)
        goto out;
    if (validated)
        st = on_validated(a, input, now, out, errbuf, errlen);
    else if (closed)
        st = on_closed(a, input, now, out, errbuf, errlen);
    else if (assigned)
        st = on_assigned_back(a, input, errbuf, errlen);
    else
        st = on_pending_back(a, input, errbuf, errlen);
out:
    json_decref(input);
    return st;
}

/* Emits again the CaseAssigned whose lease ran out (claimed a lease ahead). */
static cf_status reemit_unconfirmed(struct assignment *a, int64_t now, struct cf_kafka_out *out,
                                    char *errbuf, size_t errlen)
{
    struct cf_redis_value *due = NULL;
    cf_status st = assignment_store_claim_unconfirmed(a->redis, a->scripts, now, a->lease_ms,
                                                      ASSIGNMENT_CLAIM_BATCH, &due, errbuf, errlen);
    if (st != CF_OK)
        return st;
    for (size_t i = 0; due->type == CF_REDIS_ARRAY && i < due->count; i++) {
        const struct cf_redis_value *e = &due->elements[i];
        const char *f[9];
        bool complete = true;
        for (size_t k = 0; k < 9; k++)
            complete = (f[k] = assignment_reply_str(e, k)) != NULL && complete;
        json_t *validated = complete ? json_loads(f[8], 0, NULL) : NULL;
        if (validated == NULL) {
            CF_LOG(CF_LOG_ERROR, "reemit_unreadable", CF_LOG_ID("case_id", f[0]));
            continue;
        }
        struct assignment_decision d = {f[1], f[5], f[6], strcmp(f[3], "1") == 0,
                                        strcmp(f[4], "1") == 0, strtoll(f[7], NULL, 10)};
        st = emit_assigned(a, validated, f[0], &d, out, errbuf, errlen);
        json_decref(validated);
        if (st != CF_OK) {
            CF_LOG(CF_LOG_ERROR, "reemit_failed", CF_LOG_ID("case_id", f[0]),
                   CF_LOG_ERR("reason", errbuf));
            if (st == CF_EIO || st == CF_ETIMEOUT || st == CF_ENOMEM)
                goto out;
            st = CF_OK; /* that record can never be encoded: its lease keeps it from spinning */
            continue;
        }
        cf_metrics_add(a->reemitted, 1);
        CF_LOG(CF_LOG_WARN, "assignment_reemitted", CF_LOG_ID("case_id", f[0]),
               CF_LOG_ID("manager_id", f[1]));
    }
out:
    cf_redis_value_free(due);
    return st;
}

/* Raises the alert of cases waiting longer than alert_ms (claimed a lease ahead). */
static cf_status raise_alerts(struct assignment *a, int64_t now, struct cf_kafka_out *out,
                              char *errbuf, size_t errlen)
{
    struct cf_redis_value *due = NULL;
    cf_status st = assignment_store_claim_alerts(a->redis, a->scripts, now, a->lease_ms,
                                                 ASSIGNMENT_CLAIM_BATCH, &due, errbuf, errlen);
    if (st != CF_OK)
        return st;
    for (size_t i = 0; due->type == CF_REDIS_ARRAY && i < due->count; i++) {
        const struct cf_redis_value *e = &due->elements[i];
        const char *case_id = assignment_reply_str(e, 0), *reason = assignment_reply_str(e, 1);
        const char *queued = assignment_reply_str(e, 2), *text = assignment_reply_str(e, 3);
        json_t *validated = text != NULL ? json_loads(text, 0, NULL) : NULL;
        if (case_id == NULL || reason == NULL || queued == NULL || validated == NULL) {
            CF_LOG(CF_LOG_ERROR, "alert_unreadable", CF_LOG_ID("case_id", case_id));
            json_decref(validated);
            continue;
        }
        int64_t queued_ms = strtoll(queued, NULL, 10);
        st = emit_pending(a, validated, case_id, reason, queued_ms, true, out, errbuf, errlen);
        json_decref(validated);
        if (st != CF_OK)
            goto out;
        cf_metrics_add(a->alerts, 1);
        CF_LOG(CF_LOG_WARN, "case_pending_alert", CF_LOG_ID("case_id", case_id),
               CF_LOG_ID("reason", reason), CF_LOG_INT("waited_ms", now - queued_ms));
    }
out:
    cf_redis_value_free(due);
    return st;
}

cf_status assignment_tick(void *ctx, int64_t now_ms, struct cf_kafka_out *out, char *errbuf,
                          size_t errlen)
{
    struct assignment *a = ctx;
    cf_status st = assignment_refresh_roster(a, true, errbuf, errlen);
    if (st == CF_OK)
        st = reemit_unconfirmed(a, now_ms, out, errbuf, errlen);
    if (st == CF_OK)
        st = serve_pending(a, "timer", now_ms, out, errbuf, errlen);
    if (st == CF_OK)
        st = raise_alerts(a, now_ms, out, errbuf, errlen);
    return st;
}
