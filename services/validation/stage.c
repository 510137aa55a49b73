/* stage.c — a case's stage in validation, what it admits, and validation's CaseClosed. See
 * stage.h and README.md ("Stages"). */
#include "stage.h"

#include <string.h>

#include "avro_convert.h"

static const char *const stage_symbols[] = {
    [VALIDATION_STAGE_VALIDATING] = "VALIDATING",
    [VALIDATION_STAGE_NEEDS_INFO] = "NEEDS_INFO",
    [VALIDATION_STAGE_UNDER_REVIEW] = "UNDER_REVIEW",
    [VALIDATION_STAGE_VALIDATED] = "VALIDATED",
    [VALIDATION_STAGE_REJECTED] = "REJECTED",
    [VALIDATION_STAGE_EXPIRING] = "EXPIRING",
    [VALIDATION_STAGE_CLOSED] = "CLOSED",
};

#define STAGE_COUNT (sizeof(stage_symbols) / sizeof(stage_symbols[0]))

const char *validation_stage_symbol(enum validation_stage stage)
{
    return (size_t)stage < STAGE_COUNT ? stage_symbols[stage] : "VALIDATING";
}

bool validation_stage_get(const json_t *state, enum validation_stage *stage)
{
    const json_t *v = json_object_get(state, "stage");
    if (v == NULL) {
        *stage = VALIDATION_STAGE_VALIDATING;
        return true;
    }
    for (size_t i = 0; json_is_string(v) && i < STAGE_COUNT; i++)
        if (strcmp(json_string_value(v), stage_symbols[i]) == 0) {
            *stage = (enum validation_stage)i;
            return true;
        }
    return false;
}

enum validation_stage validation_stage_after(enum validation_outcome outcome)
{
    switch (outcome) {
    case VALIDATION_OUTCOME_VALIDATED:
        return VALIDATION_STAGE_VALIDATED;
    case VALIDATION_OUTCOME_INFO_REQUESTED:
        return VALIDATION_STAGE_NEEDS_INFO;
    case VALIDATION_OUTCOME_REVIEW_REQUESTED:
        return VALIDATION_STAGE_UNDER_REVIEW;
    case VALIDATION_OUTCOME_REJECTED:
        break;
    }
    return VALIDATION_STAGE_REJECTED;
}

cf_status validation_stage_admits(enum validation_stage stage, enum validation_input kind,
                                  char *errbuf, size_t errlen)
{
    bool ok = false;
    const char *what = "CaseInfoProvided";
    switch (kind) {
    case VALIDATION_INPUT_OPENED:
    case VALIDATION_INPUT_CLOSED:
        return CF_OK;
    case VALIDATION_INPUT_INFO_PROVIDED:
        ok = stage == VALIDATION_STAGE_VALIDATING || stage == VALIDATION_STAGE_NEEDS_INFO ||
             stage == VALIDATION_STAGE_UNDER_REVIEW;
        break;
    case VALIDATION_INPUT_REVIEWED:
        what = "CaseReviewed";
        ok = stage == VALIDATION_STAGE_NEEDS_INFO || stage == VALIDATION_STAGE_UNDER_REVIEW;
        break;
    }
    if (ok)
        return CF_OK;
    return cf_fail(errbuf, errlen, CF_EINVAL, "%s: the case is %s, which it no longer applies to",
                   what, validation_stage_symbol(stage));
}

bool validation_state_applied(const json_t *state, const char *event_id)
{
    size_t i;
    const json_t *id;
    if (event_id == NULL)
        return false;
    json_array_foreach(json_object_get(state, "applied"), i, id)
    {
        if (json_is_string(id) && strcmp(json_string_value(id), event_id) == 0)
            return true;
    }
    return false;
}

int validation_state_mark(json_t *state, enum validation_stage stage, const char *event_id)
{
    json_t *applied = json_object_get(state, "applied");
    if (!json_is_object(state))
        return -1;
    if (event_id == NULL)
        goto set;
    if (!json_is_array(applied)) {
        if ((applied = json_array()) == NULL || json_object_set_new(state, "applied", applied) != 0)
            return -1;
    }
    if (!validation_state_applied(state, event_id)) {
        if (json_array_append_new(applied, json_string(event_id)) != 0)
            return -1;
        while (json_array_size(applied) > VALIDATION_APPLIED_MAX)
            (void)json_array_remove(applied, 0);
    }
set:
    return json_object_set_new(state, "stage", json_string(validation_stage_symbol(stage)));
}

cf_status validation_build_closed(const json_t *state, const struct validation_closed_params *p,
                                  json_t **out, char *errbuf, size_t errlen)
{
    const char *case_id = json_string_value(json_object_get(state, "case_id"));
    const char *correlation = json_string_value(json_object_get(state, "correlation_id"));
    const json_t *recipient = json_object_get(state, "recipient");
    char when[32];
    json_t *event = NULL;

    *out = NULL;
    if (p == NULL || p->event_id == NULL || p->causation_id == NULL || p->producer == NULL ||
        p->reason == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "closed parameters missing");
    if (case_id == NULL || correlation == NULL || (p->notify && !json_is_object(recipient)))
        return cf_fail(errbuf, errlen, CF_EINVAL, "stored case: %s missing",
                       case_id == NULL       ? "case_id"
                       : correlation == NULL ? "correlation_id"
                                             : "recipient");
    cf_avro_format_millis(p->occurred_at_ms, when, sizeof(when));
    event = json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s}, s:s, s:s?, s:n, s:O?}", "meta",
                      "event_id", p->event_id, "case_id", case_id, "occurred_at", when, "producer",
                      p->producer, "correlation_id", correlation, "causation_id", p->causation_id,
                      "reason", p->reason, "note_code", p->note_code, "manager_id", "recipient",
                      p->notify ? recipient : NULL);
    if (event == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory building CaseClosed");
    *out = event;
    return CF_OK;
}
