/* validation.c — validation's Kafka path: the case state kept in Redis, merging supplied
 * information, operator decisions, the outcome record and the loop's handler. See validation.h
 * and README.md ("Kafka path"). */
#include "validation.h"
#include "clock.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro_convert.h"
#include "cloudevents.h"
#include "log.h"

/* The string at obj.k1.k2 (k2 may be NULL), or NULL when absent, null or not a string. */
static const char *str_at(const json_t *obj, const char *k1, const char *k2)
{
    const json_t *v = json_object_get(obj, k1);
    if (k2 != NULL)
        v = json_object_get(v, k2);
    return json_string_value(v);
}

cf_status validation_state_key(const char *case_id, char key[VALIDATION_REDIS_KEY_MAX])
{
    if (case_id == NULL || !cf_uuid_valid(case_id))
        return CF_EINVAL;
    (void)snprintf(key, VALIDATION_REDIS_KEY_MAX, "validation:case:%s", case_id);
    return CF_OK;
}

cf_status validation_state_from_opened(const json_t *opened, json_t **state, char *errbuf,
                                       size_t errlen)
{
    const char *case_id = str_at(opened, "case_id", NULL);
    const char *correlation = str_at(opened, "meta", "correlation_id");
    const char *event_id = str_at(opened, "meta", "event_id");
    const char *patient_key = str_at(opened, "patient_key", NULL);
    const json_t *inquiry = json_object_get(opened, "inquiry");
    const json_t *recipient = json_object_get(opened, "recipient");

    *state = NULL;
    if (case_id == NULL || !cf_uuid_valid(case_id))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.case_id: not a UUID");
    if (event_id == NULL || !cf_uuid_valid(event_id))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.meta.event_id: not a UUID");
    if (correlation == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.meta.correlation_id: missing");
    if (patient_key == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.patient_key: missing");
    if (!json_is_object(inquiry))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.inquiry: missing or not an object");
    if (!json_is_object(recipient))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.recipient: missing or not an object");
    /* "o" steals the deep copies: they belong to the new state. */
    *state = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "case_id", case_id, "correlation_id",
                       correlation, "patient_key", patient_key, "last_event_id", event_id,
                       "inquiry", json_deep_copy(inquiry), "recipient", json_deep_copy(recipient));
    if (*state == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory building the case state");
    return CF_OK;
}

/* Sets obj[key] to a copy of value when value is given and not null; 0 on success. */
static int replace_if_given(json_t *obj, const char *key, const json_t *value)
{
    if (value == NULL || json_is_null(value))
        return 0;
    if (!json_is_object(obj))
        return -1;
    return json_object_set_new(obj, key, json_deep_copy(value));
}

/* The recipient's channels follow a replaced contact; a consent counts only where its channel
 * exists (Recipient's documentation). */
static int refresh_recipient(json_t *recipient, const json_t *contact)
{
    const json_t *email = json_object_get(contact, "email");
    const json_t *phone = json_object_get(contact, "phone");
    const json_t *windows = json_object_get(contact, "contact_windows");
    bool has_email = json_is_string(email), has_phone = json_is_string(phone);

    if (!json_is_object(recipient))
        return -1;
    return json_object_set_new(recipient, "email",
                               has_email ? json_deep_copy(email) : json_null()) |
           json_object_set_new(recipient, "phone",
                               has_phone ? json_deep_copy(phone) : json_null()) |
           json_object_set_new(
               recipient, "consent_email",
               json_boolean(has_email && json_is_true(json_object_get(contact, "consent_email")))) |
           json_object_set_new(
               recipient, "consent_sms",
               json_boolean(has_phone && json_is_true(json_object_get(contact, "consent_sms")))) |
           json_object_set_new(recipient, "contact_windows",
                               json_is_array(windows) ? json_deep_copy(windows) : json_array());
}

/* Appends the reports of added whose url is not yet in reports; 0 on success. */
static int append_reports(json_t *reports, const json_t *added)
{
    size_t i, k;
    json_t *r, *have;
    json_array_foreach(added, i, r)
    {
        const char *url = str_at(r, "url", NULL);
        bool dup = false;
        json_array_foreach(reports, k, have)
        {
            const char *u = str_at(have, "url", NULL);
            if (url != NULL && u != NULL && strcmp(url, u) == 0) {
                dup = true;
                break;
            }
        }
        if (!dup && json_array_append_new(reports, json_deep_copy(r)) != 0)
            return -1;
    }
    return 0;
}

cf_status validation_merge_info(const json_t *state, const json_t *provided, json_t **merged,
                                char *errbuf, size_t errlen)
{
    const char *event_id = str_at(provided, "meta", "event_id");
    const json_t *contact = json_object_get(provided, "contact");
    const json_t *reports = json_object_get(provided, "reports");
    json_t *m = NULL, *inquiry, *patient, *condition, *list;
    cf_status st = CF_OK;

    *merged = NULL;
    if (event_id == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.meta.event_id: missing");
    if (reports != NULL && !json_is_array(reports))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.reports: not an array");
    if ((m = json_deep_copy(state)) == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory merging information");
    inquiry = json_object_get(m, "inquiry");
    patient = json_object_get(inquiry, "patient");
    condition = json_object_get(inquiry, "condition");
    if (!json_is_object(inquiry) || !json_is_object(patient) || !json_is_object(condition)) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "stored case: inquiry incomplete");
        goto out;
    }
    list = json_object_get(inquiry, "reports");
    if (!json_is_array(list)) {
        list = json_array();
        if (json_object_set_new(inquiry, "reports", list) != 0)
            goto nomem;
    }
    if (replace_if_given(inquiry, "contact", contact) != 0 ||
        replace_if_given(inquiry, "guardian", json_object_get(provided, "guardian")) != 0 ||
        replace_if_given(inquiry, "consent", json_object_get(provided, "consent")) != 0 ||
        replace_if_given(patient, "date_of_birth", json_object_get(provided, "date_of_birth")) !=
            0 ||
        replace_if_given(condition, "description", json_object_get(provided, "description")) != 0 ||
        replace_if_given(condition, "meld_score", json_object_get(provided, "meld_score")) != 0 ||
        replace_if_given(condition, "transplant_status",
                         json_object_get(provided, "transplant_status")) != 0 ||
        append_reports(list, reports) != 0)
        goto nomem;
    if (json_is_object(contact) && refresh_recipient(json_object_get(m, "recipient"), contact) != 0)
        goto nomem;
    if (json_object_set_new(m, "last_event_id", json_string(event_id)) != 0)
        goto nomem;
    *merged = m;
    return CF_OK;
nomem:
    st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory merging information");
out:
    json_decref(m);
    return st;
}

void validation_decision_clear(struct validation_decision *d)
{
    if (d == NULL)
        return;
    json_decref(d->reasons);
    json_decref(d->missing);
    d->reasons = d->missing = NULL;
}

cf_status validation_decide_evaluated(const struct validation_result *res,
                                      struct validation_decision *d)
{
    json_t *reasons = NULL, *missing = NULL;
    cf_status st = validation_result_to_json(res, &reasons, &missing);
    if (st != CF_OK)
        return st;
    d->outcome = res->outcome;
    d->priority = res->priority;
    d->reasons = reasons;
    d->missing = missing;
    return CF_OK;
}

/* A reason with one optional parameter (key NULL: none). */
static json_t *reason(const char *code, const char *key, const char *value)
{
    json_t *params = json_object();
    if (params != NULL && key != NULL &&
        json_object_set_new(params, key, json_string(value)) != 0) {
        json_decref(params);
        return NULL;
    }
    return json_pack("{s:s, s:o}", "code", code, "params", params);
}

static bool note_code_valid(const char *code)
{
    size_t n = strlen(code);
    if (n == 0 || n > VALIDATION_NOTE_CODE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((code[i] >= 'A' && code[i] <= 'Z') || (code[i] >= '0' && code[i] <= '9') ||
              code[i] == '_'))
            return false;
    return true;
}

static bool priority_parse(const char *symbol, enum validation_priority *out)
{
    static const enum validation_priority all[] = {
        VALIDATION_PRIORITY_URGENT, VALIDATION_PRIORITY_HIGH, VALIDATION_PRIORITY_ROUTINE};
    for (size_t i = 0; symbol != NULL && i < sizeof(all) / sizeof(all[0]); i++)
        if (strcmp(symbol, validation_priority_symbol(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    return false;
}

/* The event's InfoItems, each once, without UNKNOWN or symbols this build does not know. */
static json_t *review_missing(const json_t *items)
{
    json_t *out = json_array(), *item;
    size_t i;
    if (out == NULL)
        return NULL;
    json_array_foreach(items, i, item)
    {
        const char *sym = json_string_value(item);
        bool known = false, dup = false;
        for (int k = VALIDATION_ITEM_NONE + 1; sym != NULL && k < VALIDATION_ITEM_COUNT; k++)
            known = known ||
                    strcmp(sym, validation_info_item_symbol((enum validation_info_item)k)) == 0;
        size_t j;
        json_t *have;
        json_array_foreach(out, j, have) dup = dup || strcmp(json_string_value(have), sym) == 0;
        if (known && !dup && json_array_append_new(out, json_string(sym)) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

cf_status validation_decide_review(const json_t *reviewed, const struct validation_result *res,
                                   struct validation_decision *d, char *errbuf, size_t errlen)
{
    const char *decision = str_at(reviewed, "decision", NULL);
    const char *note = str_at(reviewed, "note_code", NULL);
    const char *prio = str_at(reviewed, "priority", NULL);
    struct validation_decision nd = {VALIDATION_OUTCOME_VALIDATED, res->priority, NULL, NULL};

    if (decision == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.decision: missing");
    if (note != NULL && !note_code_valid(note))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.note_code: not an UPPER_SNAKE code");
    if (prio != NULL && !priority_parse(prio, &nd.priority))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.priority: unknown symbol");

    if (strcmp(decision, "APPROVE") == 0) {
        nd.outcome = VALIDATION_OUTCOME_VALIDATED;
        if (prio != NULL) {
            nd.reasons = json_array();
            if (nd.reasons != NULL &&
                json_array_append_new(
                    nd.reasons, reason(VALIDATION_CODE_REVIEW_APPROVED, "priority", prio)) != 0)
                goto nomem;
        } else {
            /* The priority the rules set, explained by their priority reasons. */
            struct validation_result as_validated = *res;
            as_validated.outcome = VALIDATION_OUTCOME_VALIDATED;
            if (validation_result_to_json(&as_validated, &nd.reasons, NULL) != CF_OK)
                goto nomem;
        }
    } else if (strcmp(decision, "REJECT") == 0) {
        nd.outcome = VALIDATION_OUTCOME_REJECTED;
        nd.reasons = json_array();
        if (nd.reasons != NULL &&
            json_array_append_new(
                nd.reasons,
                reason(note != NULL ? note : VALIDATION_CODE_REVIEW_REJECTED, NULL, NULL)) != 0)
            goto nomem;
    } else if (strcmp(decision, "REQUEST_INFO") == 0) {
        nd.outcome = VALIDATION_OUTCOME_INFO_REQUESTED;
        if ((nd.missing = review_missing(json_object_get(reviewed, "missing"))) == NULL)
            goto nomem;
        if (json_array_size(nd.missing) == 0) {
            json_decref(nd.missing);
            return cf_fail(errbuf, errlen, CF_EINVAL, "$.missing: no known item to ask for");
        }
        nd.reasons = json_array();
        if (nd.reasons != NULL &&
            json_array_append_new(
                nd.reasons,
                reason(note != NULL ? note : VALIDATION_CODE_REVIEW_REQUEST_INFO, NULL, NULL)) != 0)
            goto nomem;
    } else {
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.decision: unknown decision");
    }
    if (nd.reasons == NULL)
        goto nomem;
    if (nd.missing == NULL && (nd.missing = json_array()) == NULL)
        goto nomem;
    *d = nd;
    return CF_OK;
nomem:
    validation_decision_clear(&nd);
    return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory building the decision");
}

const char *validation_outcome_topic(enum validation_outcome outcome)
{
    switch (outcome) {
    case VALIDATION_OUTCOME_VALIDATED:
        return "caseflow.case.validated";
    case VALIDATION_OUTCOME_INFO_REQUESTED:
        return "caseflow.case.info-requested";
    case VALIDATION_OUTCOME_REVIEW_REQUESTED:
        return "caseflow.case.review-requested";
    case VALIDATION_OUTCOME_REJECTED:
        break;
    }
    return "caseflow.case.rejected";
}

const char *validation_outcome_type(enum validation_outcome outcome)
{
    switch (outcome) {
    case VALIDATION_OUTCOME_VALIDATED:
        return "caseflow.event.CaseValidated";
    case VALIDATION_OUTCOME_INFO_REQUESTED:
        return "caseflow.event.CaseInfoRequested";
    case VALIDATION_OUTCOME_REVIEW_REQUESTED:
        return "caseflow.event.CaseReviewRequested";
    case VALIDATION_OUTCOME_REJECTED:
        break;
    }
    return "caseflow.event.CaseRejected";
}

/* Sets obj[key] to a copy of src (required: NULL src fails); 0 on success. */
static int set_copy(json_t *obj, const char *key, const json_t *src)
{
    return src == NULL ? -1 : json_object_set_new(obj, key, json_deep_copy(src));
}

cf_status validation_build_outcome(const json_t *state, const struct validation_decision *d,
                                   const struct validation_outcome_params *p, json_t **out,
                                   char *errbuf, size_t errlen)
{
    const char *case_id = str_at(state, "case_id", NULL);
    const char *correlation = str_at(state, "correlation_id", NULL);
    const char *patient_key = str_at(state, "patient_key", NULL);
    const json_t *inquiry = json_object_get(state, "inquiry");
    const char *category = str_at(inquiry, "condition", "category");
    const json_t *recipient = json_object_get(state, "recipient");
    char when[32], expires[32];
    json_t *event = NULL;
    int rc = 0;

    *out = NULL;
    if (p == NULL || p->event_id == NULL || p->causation_id == NULL || p->producer == NULL ||
        d == NULL || d->reasons == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "outcome parameters missing");
    if (case_id == NULL || correlation == NULL || patient_key == NULL || category == NULL ||
        !json_is_object(recipient))
        return cf_fail(errbuf, errlen, CF_EINVAL, "stored case: %s missing",
                       case_id == NULL       ? "case_id"
                       : correlation == NULL ? "correlation_id"
                       : patient_key == NULL ? "patient_key"
                       : category == NULL    ? "inquiry.condition.category"
                                             : "recipient");
    cf_avro_format_millis(p->occurred_at_ms, when, sizeof(when));
    event = json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s}, s:s, s:O}", "meta", "event_id",
                      p->event_id, "case_id", case_id, "occurred_at", when, "producer", p->producer,
                      "correlation_id", correlation, "causation_id", p->causation_id, "priority",
                      validation_priority_symbol(d->priority), "reasons", d->reasons);
    if (event == NULL)
        goto nomem;
    switch (d->outcome) {
    case VALIDATION_OUTCOME_VALIDATED:
        rc = json_object_set_new(event, "category", json_string(category)) |
             json_object_set_new(event, "patient_key", json_string(patient_key)) |
             set_copy(event, "recipient", recipient);
        break;
    case VALIDATION_OUTCOME_INFO_REQUESTED:
        cf_avro_format_millis(p->occurred_at_ms + p->info_wait_ms, expires, sizeof(expires));
        rc = json_object_set_new(event, "missing",
                                 d->missing != NULL ? json_deep_copy(d->missing) : json_array()) |
             json_object_set_new(event, "expires_at", json_string(expires)) |
             set_copy(event, "recipient", recipient);
        break;
    case VALIDATION_OUTCOME_REVIEW_REQUESTED:
        rc = json_object_set_new(event, "category", json_string(category));
        break;
    case VALIDATION_OUTCOME_REJECTED:
        rc = set_copy(event, "recipient", recipient);
        break;
    }
    if (rc != 0)
        goto nomem;
    *out = event;
    return CF_OK;
nomem:
    json_decref(event);
    return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory building the outcome");
}

cf_status validation_load_state(struct validation *v, const char *case_id, json_t **state,
                                char *errbuf, size_t errlen)
{
    char key[VALIDATION_REDIS_KEY_MAX];
    char *text = NULL;
    size_t len = 0;
    json_error_t jerr;
    cf_status st;

    *state = NULL;
    if (validation_state_key(case_id, key) != CF_OK)
        return cf_fail(errbuf, errlen, CF_EINVAL, "case id: not a UUID");
    st = cf_redis_get(v->redis, key, &text, &len, errbuf, errlen);
    if (st == CF_ENOTFOUND)
        return cf_fail(errbuf, errlen, CF_ENOTFOUND,
                       "%s: no stored case (never opened, or expired)", key);
    if (st != CF_OK)
        return st;
    *state = json_loadb(text, len, 0, &jerr);
    free(text);
    if (!json_is_object(*state)) {
        json_decref(*state);
        *state = NULL;
        return cf_fail(errbuf, errlen, CF_EINVAL, "%s: stored case is not a JSON object", key);
    }
    return CF_OK;
}

cf_status validation_store_state(struct validation *v, const char *case_id, const json_t *state,
                                 int64_t due_ms, char *errbuf, size_t errlen)
{
    char key[VALIDATION_REDIS_KEY_MAX];
    char *text = NULL;
    cf_status st;

    if (validation_state_key(case_id, key) != CF_OK)
        return cf_fail(errbuf, errlen, CF_EINVAL, "case id: not a UUID");
    if ((text = json_dumps(state, JSON_COMPACT)) == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory storing the case");
    cf_redis_pipeline_reset(v->pipeline);
    st = cf_redis_pipeline_set(v->pipeline, key, text, strlen(text), v->state_ttl_seconds, errbuf,
                               errlen);
    if (st == CF_OK && due_ms != VALIDATION_DUE_KEEP)
        st = validation_expiry_schedule(v->pipeline, v->expiry, case_id,
                                        due_ms == VALIDATION_DUE_NONE ? -1 : due_ms,
                                        v->state_ttl_seconds * 1000, errbuf, errlen);
    if (st == CF_OK)
        st = cf_redis_pipeline_exec(v->redis, v->pipeline, errbuf, errlen);
    cf_redis_pipeline_reset(v->pipeline);
    free(text);
    return st;
}

cf_status validation_emit(struct validation *v, const char *topic, const char *type,
                          const char *case_id, const json_t *event, struct cf_kafka_out *out,
                          char *errbuf, size_t errlen)
{
    return cf_cloudevent_emit(v->serde, VALIDATION_SERVICE, topic, type, case_id, event, out, errbuf, errlen);
}

/* The input kind of a topic validation reads; false for any other topic. */
static bool input_of(const char *topic, enum validation_input *kind)
{
    static const struct {
        const char *topic;
        enum validation_input kind;
    } inputs[] = {
        {VALIDATION_TOPIC_OPENED, VALIDATION_INPUT_OPENED},
        {VALIDATION_TOPIC_INFO_PROVIDED, VALIDATION_INPUT_INFO_PROVIDED},
        {VALIDATION_TOPIC_REVIEWED, VALIDATION_INPUT_REVIEWED},
        {VALIDATION_TOPIC_CLOSED, VALIDATION_INPUT_CLOSED},
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
        if (strcmp(topic, inputs[i].topic) == 0) {
            *kind = inputs[i].kind;
            return true;
        }
    return false;
}

/* After a CaseRejected: the case's CaseClosed REJECTED, without a recipient (the rejection
 * itself is what the patient is told), its note the first reason's code. */
static cf_status emit_rejected_close(struct validation *v, const json_t *state,
                                     const struct validation_decision *d, const char *rejected_id,
                                     int64_t now, struct cf_kafka_out *out, char *errbuf,
                                     size_t errlen)
{
    char event_id[CF_UUID_LEN + 1];
    json_t *closed = NULL;
    const char *case_id = str_at(state, "case_id", NULL);
    cf_status st = cf_uuid_v4(event_id);
    if (st != CF_OK)
        return cf_fail(errbuf, errlen, st, "uuid: %s", cf_strerror(st));
    struct validation_closed_params p = {
        event_id,    rejected_id, now,
        v->producer, "REJECTED",  str_at(json_array_get(d->reasons, 0), "code", NULL),
        false};
    st = validation_build_closed(state, &p, &closed, errbuf, errlen);
    if (st == CF_OK)
        st = validation_emit(v, VALIDATION_TOPIC_CLOSED, VALIDATION_CLOSED_TYPE, case_id, closed,
                             out, errbuf, errlen);
    json_decref(closed);
    return st;
}

/* Moves the case to stage after deciding (applied input cause, outcome event_id) and says
 * when it expires: a case waiting for information remembers which request it waits on. */
static int64_t mark_decided(json_t *state, const struct validation_decision *d, const char *cause,
                            const char *event_id, int64_t now, int64_t wait_ms, int *rc)
{
    enum validation_stage next = validation_stage_after(d->outcome);
    *rc = validation_state_mark(state, next, cause);
    if (next != VALIDATION_STAGE_NEEDS_INFO) {
        (void)json_object_del(state, "info_request_id");
        (void)json_object_del(state, "info_expires_at_ms");
        return VALIDATION_DUE_NONE;
    }
    *rc |= json_object_set_new(state, "info_request_id", json_string(event_id)) |
           json_object_set_new(state, "info_expires_at_ms", json_integer(now + wait_ms));
    return now + wait_ms;
}

cf_status validation_handle(void *ctx, const struct cf_kafka_record *in, struct cf_kafka_out *out,
                            char *errbuf, size_t errlen)
{
    struct validation *v = ctx;
    json_t *input = NULL, *state = NULL, *merged = NULL, *outcome = NULL;
    struct validation_result res;
    struct validation_decision d = {VALIDATION_OUTCOME_VALIDATED, VALIDATION_PRIORITY_ROUTINE, NULL,
                                    NULL};
    char event_id[CF_UUID_LEN + 1];
    enum validation_input kind;
    enum validation_stage stage;
    int64_t now = cf_clock_wall_ms();
    int rc = 0;
    cf_status st;

    if (!input_of(in->topic, &kind)) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "topic: not one validation reads");
        goto out;
    }
    if (in->value == NULL) {
        st = cf_fail(errbuf, errlen, CF_EDECODE, "value: null");
        goto out;
    }
    st =
        cf_serde_decode_json(v->serde, in->topic, in->value, in->value_len, &input, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    bool opened = kind == VALIDATION_INPUT_OPENED;
    const char *cause = str_at(input, "meta", "event_id");
    const char *case_id =
        opened ? str_at(input, "case_id", NULL) : str_at(input, "meta", "case_id");
    if (cause == NULL || !cf_uuid_valid(cause)) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "$.meta.event_id: not a UUID");
        goto out;
    }
    if (case_id == NULL || !cf_uuid_valid(case_id)) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "%s: not a UUID",
                     opened ? "$.case_id" : "$.meta.case_id");
        goto out;
    }

    /* The stored state is a function of the inputs replayed in partition order (all of a
     * case's records share its key, hence its partition), so a retried batch that writes it
     * again ends with the same value; the inputs it already applied are not refused by the
     * stage they moved the case to: see README "Retry safety". */
    if (opened)
        st = validation_state_from_opened(input, &state, errbuf, errlen);
    else
        st = validation_load_state(v, case_id, &state, errbuf, errlen);
    if (st == CF_ENOTFOUND && kind == VALIDATION_INPUT_CLOSED) {
        st = CF_OK; /* a case validation no longer (or never) held: nothing to update */
        goto out;
    }
    if (st != CF_OK)
        goto out;
    if (!validation_stage_get(state, &stage)) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "stored case: unknown stage");
        goto out;
    }
    if (!validation_state_applied(state, cause) &&
        (st = validation_stage_admits(stage, kind, errbuf, errlen)) != CF_OK) {
        cf_metrics_add(v->refused, 1);
        goto out;
    }

    if (kind == VALIDATION_INPUT_CLOSED) {
        if (validation_state_mark(state, VALIDATION_STAGE_CLOSED, cause) != 0) {
            st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory marking the case");
            goto out;
        }
        st = validation_store_state(v, case_id, state, VALIDATION_DUE_NONE, errbuf, errlen);
        if (st == CF_OK)
            CF_LOG(CF_LOG_INFO, "case_closed_seen", CF_LOG_ID("case_id", case_id),
                   CF_LOG_ID("causation_id", cause));
        goto out;
    }
    if (kind == VALIDATION_INPUT_INFO_PROVIDED) {
        st = validation_merge_info(state, input, &merged, errbuf, errlen);
        if (st != CF_OK)
            goto out;
        json_decref(state);
        state = merged;
        merged = NULL;
    }

    st = validation_evaluate(json_object_get(state, "inquiry"), now, v->limits, &res);
    if (st != CF_OK) {
        (void)cf_fail(errbuf, errlen, st, "evaluate: %s", cf_strerror(st));
        goto out;
    }
    if (kind == VALIDATION_INPUT_REVIEWED)
        st = validation_decide_review(input, &res, &d, errbuf, errlen);
    else if ((st = validation_decide_evaluated(&res, &d)) != CF_OK)
        (void)cf_fail(errbuf, errlen, st, "decide: %s", cf_strerror(st));
    if (st != CF_OK)
        goto out;

    if ((st = cf_uuid_v4(event_id)) != CF_OK) {
        (void)cf_fail(errbuf, errlen, st, "uuid: %s", cf_strerror(st));
        goto out;
    }
    struct validation_outcome_params params = {event_id, cause, now, v->producer, v->info_wait_ms};
    st = validation_build_outcome(state, &d, &params, &outcome, errbuf, errlen);
    if (st == CF_OK)
        st = validation_emit(v, validation_outcome_topic(d.outcome),
                             validation_outcome_type(d.outcome), case_id, outcome, out, errbuf,
                             errlen);
    if (st == CF_OK && d.outcome == VALIDATION_OUTCOME_REJECTED)
        st = emit_rejected_close(v, state, &d, event_id, now, out, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    int64_t due = mark_decided(state, &d, cause, event_id, now, v->info_wait_ms, &rc);
    if (rc != 0) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory marking the case");
        goto out;
    }
    if ((st = validation_store_state(v, case_id, state, due, errbuf, errlen)) != CF_OK)
        goto out;
    cf_metrics_add(v->decided[d.outcome], 1);
    CF_LOG(CF_LOG_INFO, "case_decided", CF_LOG_ID("case_id", case_id),
           CF_LOG_ID("outcome", validation_outcome_event(d.outcome)),
           CF_LOG_ID("priority", validation_priority_symbol(d.priority)),
           CF_LOG_ID("event_id", event_id), CF_LOG_ID("causation_id", cause),
           CF_LOG_INT("reasons", json_array_size(d.reasons)));
out:
    validation_decision_clear(&d);
    json_decref(outcome);
    json_decref(merged);
    json_decref(state);
    json_decref(input);
    return st;
}
