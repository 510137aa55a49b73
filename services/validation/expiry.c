/* expiry.c — due times of cases waiting for information, and the timer that closes the ones
 * whose wait ran out. See expiry.h and README.md ("Expiry"). */
#include "expiry.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "validation.h"

/* KEYS[1] the set; ARGV: member, due ms (negative: remove), TTL ms of the set. Running it
 * twice leaves the same set. */
static const char schedule_lua[] = "if tonumber(ARGV[2]) < 0 then\n"
                                   "  redis.call('ZREM', KEYS[1], ARGV[1])\n"
                                   "  return 0\n"
                                   "end\n"
                                   "redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])\n"
                                   "if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then\n"
                                   "  redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
                                   "end\n"
                                   "return 1\n";

/* KEYS[1] the set; ARGV: now ms, lease end ms, limit. The members due by now, each pushed to
 * the lease's end (ZADD XX: only members still there), so a second run does not return them
 * again before the lease is over. The set's TTL is untouched: it was set when they were
 * added. */
static const char claim_lua[] =
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])\n"
    "for _, m in ipairs(due) do\n"
    "  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], m)\n"
    "end\n"
    "return due\n";

cf_status validation_expiry_scripts_new(struct validation_expiry_scripts *s, char *errbuf,
                                        size_t errlen)
{
    cf_status st;
    s->schedule = s->claim = NULL;
    st =
        cf_redis_script_new(schedule_lua, CF_REDIS_SCRIPT_IDEMPOTENT, &s->schedule, errbuf, errlen);
    /* Not idempotent: a second run after a lost reply returns nothing, and the members then
     * wait for the lease, which is slower but never wrong. */
    if (st == CF_OK)
        st = cf_redis_script_new(claim_lua, 0, &s->claim, errbuf, errlen);
    if (st != CF_OK)
        validation_expiry_scripts_free(s);
    return st;
}

void validation_expiry_scripts_free(struct validation_expiry_scripts *s)
{
    if (s == NULL)
        return;
    cf_redis_script_free(s->schedule);
    cf_redis_script_free(s->claim);
    s->schedule = s->claim = NULL;
}

cf_status validation_expiry_schedule(struct cf_redis_pipeline *p,
                                     const struct validation_expiry_scripts *s, const char *case_id,
                                     int64_t due_ms, int64_t ttl_ms, char *errbuf, size_t errlen)
{
    char due[24], ttl[24];
    const char *keys[] = {VALIDATION_EXPIRY_KEY};
    if (!cf_uuid_valid(case_id))
        return cf_fail(errbuf, errlen, CF_EINVAL, "case id: not a UUID");
    (void)snprintf(due, sizeof(due), "%" PRId64, due_ms < 0 ? -1 : due_ms);
    (void)snprintf(ttl, sizeof(ttl), "%" PRId64, ttl_ms);
    const char *args[] = {case_id, due, ttl};
    return cf_redis_pipeline_script(p, s->schedule, 1, keys, 3, args, NULL, errbuf, errlen);
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
    char now[24], lease[24], limit[16];
    const char *keys[] = {VALIDATION_EXPIRY_KEY};
    cf_status st;

    (void)snprintf(now, sizeof(now), "%" PRId64, now_ms);
    (void)snprintf(lease, sizeof(lease), "%" PRId64,
                   (int64_t)(now_ms + VALIDATION_EXPIRY_LEASE_MS));
    (void)snprintf(limit, sizeof(limit), "%d", VALIDATION_EXPIRY_BATCH);
    const char *args[] = {now, lease, limit};
    st = cf_redis_script_run(v->redis, v->expiry->claim, 1, keys, 3, args, NULL, &due, errbuf,
                             errlen);
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
