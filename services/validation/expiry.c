/* expiry.c — due times of cases waiting for information, and the timer that closes the ones
 * whose wait ran out. See expiry.h and README.md ("Expiry"). */
#include "expiry.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "validation.h"

cf_status validation_expiry_schedule(struct cf_redis_pipeline *p, const struct cf_due_set *s,
                                     const char *case_id, int64_t due_ms, int64_t ttl_ms,
                                     char *errbuf, size_t errlen)
{
    if (!cf_uuid_valid(case_id))
        return cf_fail(errbuf, errlen, CF_EINVAL, "case id: not a UUID");
    return cf_due_set_put(p, s, VALIDATION_EXPIRY_KEY, case_id, due_ms, ttl_ms, errbuf, errlen);
}

void validation_expiry_event_id(const char *info_request_id, char out[CF_UUID_LEN + 1])
{
    char name[64];
    int n = snprintf(name, sizeof(name), "caseflow.validation.expired/%s", info_request_id);
    cf_uuid_from_name(name, (size_t)n < sizeof(name) ? (size_t)n : sizeof(name) - 1, out);
}

/* Drops (due_ms VALIDATION_DUE_NONE) or moves one case's due time. */
static cf_status reschedule(struct validation *v, const char *case_id, int64_t due_ms, char *errbuf,
                            size_t errlen)
{
    cf_redis_pipeline_reset(v->pipeline);
    cf_status st = validation_expiry_schedule(v->pipeline, v->expiry, case_id,
                                              due_ms == VALIDATION_DUE_NONE ? -1 : due_ms,
                                              v->state_ttl_seconds * 1000, errbuf, errlen);
    if (st == CF_OK)
        st = cf_redis_pipeline_exec(v->redis, v->pipeline, errbuf, errlen);
    cf_redis_pipeline_reset(v->pipeline);
    return st;
}

/* Closes one claimed case if it is still waiting (or already expiring: an earlier close that
 * may not have been committed), else drops or moves its due time. Redis errors are returned;
 * a case that cannot be closed (its state is damaged) is logged and dropped, since no retry
 * would mend it. */
static cf_status expire_one(struct validation *v, const char *case_id, int64_t now,
                            struct cf_kafka_out *out, char *errbuf, size_t errlen)
{
    json_t *state = NULL, *closed = NULL;
    enum validation_stage stage;
    char event_id[CF_UUID_LEN + 1];
    cf_status st = validation_load_state(v, case_id, &state, errbuf, errlen);

    if (st == CF_ENOTFOUND || st == CF_EINVAL) {
        st = reschedule(v, case_id, VALIDATION_DUE_NONE, errbuf, errlen);
        goto out;
    }
    if (st != CF_OK)
        goto out;
    if (!validation_stage_get(state, &stage) ||
        (stage != VALIDATION_STAGE_NEEDS_INFO && stage != VALIDATION_STAGE_EXPIRING)) {
        st = reschedule(v, case_id, VALIDATION_DUE_NONE, errbuf, errlen);
        goto out;
    }
    const char *request = json_string_value(json_object_get(state, "info_request_id"));
    json_int_t expires = json_integer_value(json_object_get(state, "info_expires_at_ms"));
    if (stage == VALIDATION_STAGE_NEEDS_INFO && expires > now) {
        /* Asked again since this due time was set: wait for the new one. */
        st = reschedule(v, case_id, expires, errbuf, errlen);
        goto out;
    }
    if (request == NULL || !cf_uuid_valid(request)) {
        CF_LOG(CF_LOG_ERROR, "expiry_failed", CF_LOG_ID("case_id", case_id),
               CF_LOG_ERR("reason", "stored case: info_request_id missing"));
        st = reschedule(v, case_id, VALIDATION_DUE_NONE, errbuf, errlen);
        goto out;
    }
    validation_expiry_event_id(request, event_id);
    struct validation_closed_params p = {event_id,  request, now, v->producer,
                                         "EXPIRED", NULL,    true};
    st = validation_build_closed(state, &p, &closed, errbuf, errlen);
    if (st == CF_OK)
        st = validation_emit(v, VALIDATION_TOPIC_CLOSED, VALIDATION_CLOSED_TYPE, case_id, closed,
                             out, errbuf, errlen);
    if (st != CF_OK && st != CF_ENOMEM && st != CF_EIO && st != CF_ETIMEOUT) {
        CF_LOG(CF_LOG_ERROR, "expiry_failed", CF_LOG_ID("case_id", case_id),
               CF_LOG_ERR("reason", errbuf));
        st = reschedule(v, case_id, VALIDATION_DUE_NONE, errbuf, errlen);
        goto out;
    }
    if (st != CF_OK)
        goto out;
    /* Late information is refused from now on; the due time stays (leased) until the
     * CaseClosed is read back, which drops it. */
    if (validation_state_mark(state, VALIDATION_STAGE_EXPIRING, NULL) != 0) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory marking the case");
        goto out;
    }
    st = validation_store_state(v, case_id, state, VALIDATION_DUE_KEEP, errbuf, errlen);
    if (st == CF_OK) {
        cf_metrics_add(v->expired, 1);
        CF_LOG(CF_LOG_INFO, "case_expired", CF_LOG_ID("case_id", case_id),
               CF_LOG_ID("event_id", event_id), CF_LOG_ID("causation_id", request));
    }
out:
    json_decref(closed);
    json_decref(state);
    return st;
}

cf_status validation_expire(void *ctx, int64_t now_ms, struct cf_kafka_out *out, char *errbuf,
                            size_t errlen)
{
    struct validation *v = ctx;
    struct cf_redis_value *due = NULL;
    cf_status st = cf_due_set_claim(v->redis, v->expiry, VALIDATION_EXPIRY_KEY, now_ms,
                                    now_ms + VALIDATION_EXPIRY_LEASE_MS, VALIDATION_EXPIRY_BATCH,
                                    &due, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    for (size_t i = 0; due->type == CF_REDIS_ARRAY && i < due->count; i++) {
        const struct cf_redis_value *m = &due->elements[i];
        if (m->type != CF_REDIS_STRING || !cf_uuid_valid(m->str))
            continue; /* only validation writes this set, and only case ids */
        if ((st = expire_one(v, m->str, now_ms, out, errbuf, errlen)) != CF_OK)
            goto out;
    }
out:
    cf_redis_value_free(due);
    return st;
}
