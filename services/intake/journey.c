/* journey.c — the stage a case's events put it in, kept in Redis for GET /v1/inquiries/{id}.
 * See journey.h and README.md ("Stages"). */
#include "journey.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro_convert.h"
#include "intake.h"
#include "log.h"

static const char *const stage_names[] = {
    [INTAKE_STAGE_RECEIVED] = "received",
    [INTAKE_STAGE_VALIDATING] = "validating",
    [INTAKE_STAGE_NEEDS_INFORMATION] = "needs_information",
    [INTAKE_STAGE_UNDER_REVIEW] = "under_review",
    [INTAKE_STAGE_VALIDATED] = "validated",
    [INTAKE_STAGE_ASSIGNED] = "assigned",
    [INTAKE_STAGE_TELECONSULT_BOOKED] = "teleconsult_booked",
    [INTAKE_STAGE_TREATMENT_BOOKED] = "treatment_booked",
    [INTAKE_STAGE_CLOSED] = "closed",
};
#define STAGE_COUNT (sizeof(stage_names) / sizeof(stage_names[0]))

/* Where each topic's event puts a case; the two whose field decides are handled apart. */
static const struct {
    const char *topic;
    enum intake_stage stage;
} topic_stages[] = {
    {"caseflow.case.opened", INTAKE_STAGE_VALIDATING},
    {"caseflow.case.info-requested", INTAKE_STAGE_NEEDS_INFORMATION},
    {"caseflow.case.info-provided", INTAKE_STAGE_VALIDATING},
    {"caseflow.case.review-requested", INTAKE_STAGE_UNDER_REVIEW},
    {"caseflow.case.reviewed", INTAKE_STAGE_VALIDATING}, /* decided; the outcome follows */
    {"caseflow.case.validated", INTAKE_STAGE_VALIDATED},
    {"caseflow.case.rejected", INTAKE_STAGE_CLOSED},
    {"caseflow.case.assigned", INTAKE_STAGE_ASSIGNED},
    {"caseflow.treatment.booked", INTAKE_STAGE_TREATMENT_BOOKED},
};

/* "intake:case-of:<inquiry_id>" → case id: written when the inquiry is opened or folded. */
#define CASE_OF_PREFIX "intake:case-of:"
#define STAGE_PREFIX "intake:stage:"

const char *intake_journey_stage_name(enum intake_stage stage)
{
    return (size_t)stage < STAGE_COUNT ? stage_names[stage] : "received";
}

/* Copies an enum symbol lower-cased into detail; false if it is missing or too long. */
static bool lower_symbol(const char *symbol, char detail[32])
{
    size_t n = symbol != NULL ? strlen(symbol) : 0;
    if (n == 0 || n >= 32)
        return false;
    for (size_t i = 0; i <= n; i++)
        detail[i] = (char)tolower((unsigned char)symbol[i]);
    return true;
}

bool intake_journey_stage_of(const char *topic, const json_t *event, enum intake_stage *stage,
                             char detail[32])
{
    detail[0] = '\0';
    if (topic == NULL)
        return false;
    if (strcmp(topic, "caseflow.case.rejected") == 0) {
        *stage = INTAKE_STAGE_CLOSED;
        (void)snprintf(detail, 32, "rejected");
        return true;
    }
    for (size_t i = 0; i < sizeof(topic_stages) / sizeof(topic_stages[0]); i++)
        if (strcmp(topic, topic_stages[i].topic) == 0) {
            *stage = topic_stages[i].stage;
            return true;
        }
    if (strcmp(topic, "caseflow.teleconsult.scheduled") == 0) {
        const char *status = json_string_value(json_object_get(event, "status"));
        if (status == NULL)
            return false;
        if (strcmp(status, "BOOKED") == 0 || strcmp(status, "RESCHEDULED") == 0)
            *stage = INTAKE_STAGE_TELECONSULT_BOOKED;
        else if (strcmp(status, "CANCELLED") == 0)
            *stage = INTAKE_STAGE_ASSIGNED;
        else
            return false;
        return true;
    }
    if (strcmp(topic, "caseflow.case.closed") == 0) {
        const char *reason = json_string_value(json_object_get(event, "reason"));
        if (reason == NULL || strcmp(reason, "UNKNOWN") == 0 || !lower_symbol(reason, detail))
            return false;
        *stage = INTAKE_STAGE_CLOSED;
        return true;
    }
    return false;
}

/* KEYS[1] the case's stage hash; ARGV: at ms, stage rank, stage name, detail, TTL seconds.
 * Keeps the newest (then the furthest) stage; a closed case stays closed. Running it twice
 * leaves the same hash. */
static const char record_lua[] =
    "local cur = redis.call('HMGET', KEYS[1], 'at', 'rank', 'stage')\n"
    "local at, rank = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "if cur[1] then\n"
    "  local cat, crank = tonumber(cur[1]), tonumber(cur[2])\n"
    "  if cur[3] == 'closed' and ARGV[3] ~= 'closed' then return 0 end\n"
    "  if cat > at or (cat == at and crank > rank) then return 0 end\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'at', ARGV[1], 'rank', ARGV[2], 'stage', ARGV[3], "
    "'detail', ARGV[4])\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[5])\n"
    "return 1\n";

/* KEYS[1] the case's stage hash: its stage, detail and time, or nils. Reads only. */
static const char read_lua[] = "return redis.call('HMGET', KEYS[1], 'stage', 'detail', 'at')\n";

cf_status intake_journey_scripts_new(struct intake_journey_scripts *s, char *errbuf, size_t errlen)
{
    s->record = s->read = NULL;
    cf_status st =
        cf_redis_script_new(record_lua, CF_REDIS_SCRIPT_IDEMPOTENT, &s->record, errbuf, errlen);
    if (st == CF_OK)
        st = cf_redis_script_new(read_lua, CF_REDIS_SCRIPT_IDEMPOTENT, &s->read, errbuf, errlen);
    if (st != CF_OK)
        intake_journey_scripts_free(s);
    return st;
}

void intake_journey_scripts_free(struct intake_journey_scripts *s)
{
    if (s == NULL)
        return;
    cf_redis_script_free(s->record);
    cf_redis_script_free(s->read);
    s->record = s->read = NULL;
}

cf_status intake_journey_record(struct cf_redis *redis, const struct intake_journey_scripts *s,
                                const char *case_id, enum intake_stage stage, const char *detail,
                                int64_t at_ms, char *errbuf, size_t errlen)
{
    char key[INTAKE_STAGE_KEY_MAX], at[24], rank[8], ttl[24];
    if (!cf_uuid_valid(case_id))
        return cf_fail(errbuf, errlen, CF_EINVAL, "case id: not a UUID");
    (void)snprintf(key, sizeof(key), STAGE_PREFIX "%s", case_id);
    (void)snprintf(at, sizeof(at), "%" PRId64, at_ms);
    (void)snprintf(rank, sizeof(rank), "%d", (int)stage);
    (void)snprintf(ttl, sizeof(ttl), "%lld", INTAKE_STAGE_TTL_SECONDS);
    const char *keys[] = {key};
    const char *args[] = {at, rank, intake_journey_stage_name(stage), detail != NULL ? detail : "",
                          ttl};
    return cf_redis_script_run(redis, s->record, 1, keys, 5, args, NULL, NULL, errbuf, errlen);
}

cf_status intake_journey_link_key(const char *inquiry_id, char key[INTAKE_STAGE_KEY_MAX],
                                  char *errbuf, size_t errlen)
{
    if (!cf_uuid_valid(inquiry_id))
        return cf_fail(errbuf, errlen, CF_EINVAL, "inquiry id: not a UUID");
    (void)snprintf(key, INTAKE_STAGE_KEY_MAX, CASE_OF_PREFIX "%s", inquiry_id);
    return CF_OK;
}

cf_status intake_journey_lookup(struct cf_redis *redis, const struct intake_journey_scripts *s,
                                const char *inquiry_id, bool accepted,
                                struct intake_journey_view *out, char *errbuf, size_t errlen)
{
    char key[INTAKE_STAGE_KEY_MAX];
    char *case_id = NULL;
    size_t len = 0;
    struct cf_redis_value *v = NULL;
    cf_status st;

    memset(out, 0, sizeof(*out));
    out->stage = INTAKE_STAGE_RECEIVED;
    out->at_ms = -1;
    if (!cf_uuid_valid(inquiry_id))
        return cf_fail(errbuf, errlen, CF_ENOTFOUND, "inquiry id: not a UUID");
    (void)snprintf(key, sizeof(key), CASE_OF_PREFIX "%s", inquiry_id);
    st = cf_redis_get(redis, key, &case_id, &len, errbuf, errlen);
    if (st == CF_ENOTFOUND) {
        st = accepted ? CF_OK : cf_fail(errbuf, errlen, CF_ENOTFOUND, "no such inquiry");
        goto out;
    }
    if (st != CF_OK)
        goto out;
    if (len != CF_UUID_LEN || !cf_uuid_valid(case_id)) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "%s does not hold a case id", key);
        goto out;
    }
    memcpy(out->case_id, case_id, CF_UUID_LEN + 1);
    (void)snprintf(key, sizeof(key), STAGE_PREFIX "%s", out->case_id);
    const char *keys[] = {key};
    if ((st = cf_redis_script_run(redis, s->read, 1, keys, 0, NULL, NULL, &v, errbuf, errlen)) !=
        CF_OK)
        goto out;
    if (v->type != CF_REDIS_ARRAY || v->count != 3 || v->elements[0].type != CF_REDIS_STRING)
        goto out; /* opened, no stage recorded yet: received */
    for (size_t i = 0; i < STAGE_COUNT; i++)
        if (strcmp(v->elements[0].str, stage_names[i]) == 0)
            out->stage = (enum intake_stage)i;
    if (v->elements[1].type == CF_REDIS_STRING)
        (void)snprintf(out->detail, sizeof(out->detail), "%s", v->elements[1].str);
    if (v->elements[2].type == CF_REDIS_STRING)
        out->at_ms = strtoll(v->elements[2].str, NULL, 10);
out:
    cf_redis_value_free(v);
    free(case_id);
    return st;
}

cf_status intake_journey_handle(void *ctx, const struct cf_kafka_record *in,
                                struct cf_kafka_out *out, char *errbuf, size_t errlen)
{
    struct intake *intake = ctx;
    json_t *event = NULL;
    enum intake_stage stage;
    char detail[32];
    int64_t at = 0;
    cf_status st;

    (void)out; /* stages are kept, not emitted */
    if (in->value == NULL)
        return cf_fail(errbuf, errlen, CF_EDECODE, "value: null");
    st = cf_serde_decode_json(intake->serde, in->topic, in->value, in->value_len, &event, errbuf,
                              errlen);
    if (st != CF_OK)
        goto out;
    const json_t *meta = json_object_get(event, "meta");
    const char *case_id = json_string_value(json_object_get(meta, "case_id"));
    const char *occurred = json_string_value(json_object_get(meta, "occurred_at"));
    if (case_id == NULL || !cf_uuid_valid(case_id)) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "$.meta.case_id: not a UUID");
        goto out;
    }
    if (occurred == NULL || cf_avro_parse_millis(occurred, &at) != CF_OK) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "$.meta.occurred_at: not a time");
        goto out;
    }
    if (!intake_journey_stage_of(in->topic, event, &stage, detail))
        goto out; /* a status or reason this build does not know: the stage stays */
    st = intake_journey_record(intake->redis, intake->stages, case_id, stage, detail, at, errbuf,
                               errlen);
out:
    json_decref(event);
    return st;
}
