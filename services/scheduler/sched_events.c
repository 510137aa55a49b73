/* sched_events.c — the scheduler's records in caseflow's JSON form (sched_events.h). */
#include "sched_events.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "avro_convert.h"
#include "sched_token.h"

void sched_name_id(const char *a, const char *b, long long n, char out[CF_UUID_LEN + 1])
{
    char name[192];
    int len = snprintf(name, sizeof(name), "caseflow.scheduler/%s/%s/%lld", a != NULL ? a : "",
                       b != NULL ? b : "", n);
    if (len < 0)
        len = 0;
    cf_uuid_from_name(name, (size_t)len < sizeof(name) ? (size_t)len : sizeof(name) - 1, out);
}

void sched_reminder_event_id(const char *teleconsult_id, int64_t start_ms, const char *lead,
                             char out[CF_UUID_LEN + 1])
{
    char b[48];
    (void)snprintf(b, sizeof(b), "reminder/%s", lead);
    sched_name_id(teleconsult_id, b, (long long)start_ms, out);
}

void sched_reminder_dues(int64_t start_ms, int64_t now_ms, int64_t h24_ms, int64_t h1_ms,
                         int64_t due[2])
{
    due[0] = start_ms - h24_ms > now_ms ? start_ms - h24_ms : -1;
    due[1] = start_ms - h1_ms > now_ms ? start_ms - h1_ms : -1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's civil algorithm). */
int32_t sched_days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (unsigned)((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1);
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int32_t)(era * 146097 + (int)doe - 719468);
}

void sched_format_day(int32_t day, char buf[16])
{
    int z = day + 719468;
    const int era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    int y = (int)yoe + era * 400 + (m <= 2);
    (void)snprintf(buf, 16, "%04d-%02u-%02u", y % 10000, m % 13, d % 32);
}

static const char *str_at(const json_t *obj, const char *k)
{
    return json_string_value(json_object_get(obj, k));
}

/* The meta record of a new event of the case in state, or NULL (missing fields, memory). */
static json_t *meta_of(const json_t *state, const struct sched_meta *m)
{
    char when[32];
    const char *case_id = str_at(state, "case_id");
    const char *correlation = str_at(state, "correlation_id");
    if (m == NULL || m->event_id == NULL || m->producer == NULL || case_id == NULL ||
        correlation == NULL)
        return NULL;
    cf_avro_format_millis(m->occurred_at_ms, when, sizeof(when));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "event_id", m->event_id, "case_id",
                     case_id, "occurred_at", when, "producer", m->producer, "correlation_id",
                     correlation, "causation_id",
                     m->causation_id != NULL ? json_string(m->causation_id) : json_null());
}

static json_t *millis(int64_t ms)
{
    char when[32];
    cf_avro_format_millis(ms, when, sizeof(when));
    return json_string(when);
}

cf_status sched_build_scheduled(const json_t *state, const char *status, int64_t previous_start_ms,
                                const unsigned char *secret, size_t secret_len,
                                const struct sched_meta *m, json_t **out, char *errbuf,
                                size_t errlen)
{
    const json_t *b = json_object_get(state, "booking");
    const json_t *recipient = json_object_get(state, "recipient");
    const char *tid = str_at(b, "teleconsult_id");
    const char *sp = str_at(b, "specialist_id");
    const char *name = str_at(b, "specialist_name");
    const char *sp_tz = str_at(b, "specialist_time_zone");
    const char *pt_tz = str_at(recipient, "time_zone");
    const char *join = str_at(b, "join_url");
    json_t *meta = meta_of(state, m);
    bool cancelled = strcmp(status, "CANCELLED") == 0;
    char resched[SCHED_TOKEN_LEN + 1], cancel[SCHED_TOKEN_LEN + 1];

    *out = NULL;
    if (meta == NULL || tid == NULL || sp == NULL || name == NULL || sp_tz == NULL ||
        pt_tz == NULL || !json_is_object(recipient) ||
        !json_is_integer(json_object_get(b, "start_ms")) || (!cancelled && join == NULL)) {
        json_decref(meta);
        return cf_fail(errbuf, errlen, CF_EINVAL, "stored case: booking or recipient incomplete");
    }
    int64_t start = json_integer_value(json_object_get(b, "start_ms"));
    int64_t end = json_integer_value(json_object_get(b, "end_ms"));
    if (!cancelled &&
        (sched_token_sign(secret, secret_len, SCHED_ACTION_RESCHEDULE, tid, start, resched) !=
             CF_OK ||
         sched_token_sign(secret, secret_len, SCHED_ACTION_CANCEL, tid, start, cancel) != CF_OK)) {
        json_decref(meta);
        return cf_fail(errbuf, errlen, CF_EINVAL, "token: cannot sign");
    }
    *out = json_pack("{s:o, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:s, s:o, s:o, s:o, s:O}",
                     "meta", meta, "status", status, "teleconsult_id", tid, "specialist_id", sp,
                     "specialist_name", name, "start", millis(start), "end", millis(end),
                     "previous_start", previous_start_ms >= 0 ? millis(previous_start_ms)
                                                              : json_null(),
                     "patient_time_zone", pt_tz, "specialist_time_zone", sp_tz, "join_url",
                     cancelled ? json_null() : json_string(join), "reschedule_token",
                     cancelled ? json_null() : json_string(resched), "cancel_token",
                     cancelled ? json_null() : json_string(cancel), "recipient", recipient);
    return *out != NULL ? CF_OK : cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
}

cf_status sched_build_reminder(const json_t *state, const char *lead, const struct sched_meta *m,
                               json_t **out, char *errbuf, size_t errlen)
{
    const json_t *b = json_object_get(state, "booking");
    const json_t *recipient = json_object_get(state, "recipient");
    const char *tid = str_at(b, "teleconsult_id");
    const char *join = str_at(b, "join_url");
    json_t *meta = meta_of(state, m);
    *out = NULL;
    if (meta == NULL || tid == NULL || !json_is_object(recipient) ||
        !json_is_integer(json_object_get(b, "start_ms"))) {
        json_decref(meta);
        return cf_fail(errbuf, errlen, CF_EINVAL, "stored case: booking or recipient incomplete");
    }
    *out = json_pack("{s:o, s:s, s:o, s:s, s:o, s:O}", "meta", meta, "teleconsult_id", tid,
                     "start", millis(json_integer_value(json_object_get(b, "start_ms"))), "lead",
                     lead, "join_url", join != NULL ? json_string(join) : json_null(),
                     "recipient", recipient);
    return *out != NULL ? CF_OK : cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
}

cf_status sched_build_closed(const json_t *state, const char *reason, const char *note_code,
                             bool notify, const struct sched_meta *m, json_t **out, char *errbuf,
                             size_t errlen)
{
    const json_t *recipient = json_object_get(state, "recipient");
    const char *manager = str_at(state, "manager_id");
    json_t *meta = meta_of(state, m);
    *out = NULL;
    if (meta == NULL || (notify && !json_is_object(recipient))) {
        json_decref(meta);
        return cf_fail(errbuf, errlen, CF_EINVAL, "stored case: meta or recipient incomplete");
    }
    *out = json_pack("{s:o, s:s, s:o, s:o, s:o}", "meta", meta, "reason", reason, "note_code",
                     note_code != NULL ? json_string(note_code) : json_null(), "manager_id",
                     manager != NULL ? json_string(manager) : json_null(), "recipient",
                     notify ? json_deep_copy(recipient) : json_null());
    return *out != NULL ? CF_OK : cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
}

cf_status sched_build_pending(const json_t *state, const char *reason, int64_t waiting_since_ms,
                              bool alert, const struct sched_meta *m, json_t **out, char *errbuf,
                              size_t errlen)
{
    json_t *meta = meta_of(state, m);
    *out = NULL;
    if (meta == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "stored case: meta incomplete");
    *out = json_pack("{s:o, s:s, s:s, s:o, s:b}", "meta", meta, "service", "scheduler", "reason",
                     reason, "waiting_since", millis(waiting_since_ms), "alert", alert);
    return *out != NULL ? CF_OK : cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
}

cf_status sched_build_treatment(const json_t *state, const int32_t *session_day, int nsessions,
                                int32_t arrival_day, int32_t departure_day,
                                const int64_t *follow_ups, int nfollow_ups,
                                const struct sched_meta *m, json_t **out, char *errbuf,
                                size_t errlen)
{
    const json_t *recipient = json_object_get(state, "recipient");
    json_t *meta = meta_of(state, m), *sessions = json_array(), *fu = json_array();
    char day[16], arr[16], dep[16];
    int rc = 0;
    *out = NULL;
    if (meta == NULL || sessions == NULL || fu == NULL || !json_is_object(recipient)) {
        json_decref(meta);
        json_decref(sessions);
        json_decref(fu);
        return cf_fail(errbuf, errlen, CF_EINVAL, "stored case: meta or recipient incomplete");
    }
    for (int i = 0; i < nsessions; i++) {
        sched_format_day(session_day[i], day);
        rc |= json_array_append_new(sessions, json_pack("{s:i, s:s}", "number", i + 1, "date", day));
    }
    for (int i = 0; i < nfollow_ups; i++)
        rc |= json_array_append_new(fu, millis(follow_ups[i]));
    sched_format_day(arrival_day, arr);
    sched_format_day(departure_day, dep);
    *out = json_pack("{s:o, s:o, s:s, s:s, s:o, s:O}", "meta", meta, "sessions", sessions,
                     "arrival_date", arr, "departure_date", dep, "follow_ups", fu, "recipient",
                     recipient);
    if (*out == NULL || rc != 0) {
        json_decref(*out);
        *out = NULL;
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
    }
    return CF_OK;
}
