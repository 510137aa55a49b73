/* assignment_events.c — CaseValidated in, CaseAssigned and CasePending out (see the header). */
#include "assignment_events.h"

#include <stdio.h>
#include <string.h>

#include "avro_convert.h"

static const char *const priority_symbols[] = {
    [ASSIGNMENT_PRIORITY_URGENT] = "URGENT",
    [ASSIGNMENT_PRIORITY_HIGH] = "HIGH",
    [ASSIGNMENT_PRIORITY_ROUTINE] = "ROUTINE",
};

bool assignment_priority_parse(const char *symbol, enum assignment_priority *out)
{
    for (size_t i = 0; symbol != NULL && i < sizeof(priority_symbols) / sizeof(priority_symbols[0]);
         i++)
        if (strcmp(symbol, priority_symbols[i]) == 0) {
            *out = (enum assignment_priority)i;
            return true;
        }
    return false;
}

const char *assignment_priority_symbol(enum assignment_priority p)
{
    return (size_t)p < sizeof(priority_symbols) / sizeof(priority_symbols[0])
               ? priority_symbols[p]
               : "ROUTINE";
}

/* The string at obj.k1.k2 (k2 may be NULL), or NULL. */
static const char *str_at(const json_t *obj, const char *k1, const char *k2)
{
    const json_t *v = json_object_get(obj, k1);
    if (k2 != NULL)
        v = json_object_get(v, k2);
    return json_string_value(v);
}

cf_status assignment_input_parse(const json_t *validated, struct assignment_input *in,
                                 char *errbuf, size_t errlen)
{
    const json_t *recipient = json_object_get(validated, "recipient");
    memset(in, 0, sizeof(*in));
    in->case_id = str_at(validated, "meta", "case_id");
    in->event_id = str_at(validated, "meta", "event_id");
    in->correlation_id = str_at(validated, "meta", "correlation_id");
    in->patient_key = str_at(validated, "patient_key", NULL);
    in->category = str_at(validated, "category", NULL);
    in->language = str_at(recipient, "language", NULL);
    in->country = str_at(recipient, "country", NULL);
    if (in->case_id == NULL || !cf_uuid_valid(in->case_id))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.meta.case_id: not a UUID");
    if (in->event_id == NULL || !cf_uuid_valid(in->event_id))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.meta.event_id: not a UUID");
    if (in->correlation_id == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.meta.correlation_id: missing");
    if (in->patient_key == NULL || in->patient_key[0] == '\0')
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.patient_key: missing");
    if (in->category == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.category: missing");
    if (!json_is_object(recipient))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.recipient: missing or not an object");
    if (!assignment_priority_parse(str_at(validated, "priority", NULL), &in->priority))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.priority: unknown symbol");
    return CF_OK;
}

struct assignment_case assignment_input_case(const struct assignment_input *in)
{
    struct assignment_case c = {in->priority, in->language, in->country, NULL};
    return c;
}

void assignment_assigned_event_id(const char *case_id, char out[CF_UUID_LEN + 1])
{
    char name[96];
    int n = snprintf(name, sizeof(name), "caseflow.case.assigned\n%s", case_id);
    cf_uuid_from_name(name, (size_t)n < sizeof(name) ? (size_t)n : sizeof(name) - 1, out);
}

void assignment_pending_event_id(const char *case_id, bool alert, char out[CF_UUID_LEN + 1])
{
    char name[96];
    int n = snprintf(name, sizeof(name), "caseflow.case.pending\n%s\n%s",
                     alert ? "alert" : "waiting", case_id);
    cf_uuid_from_name(name, (size_t)n < sizeof(name) ? (size_t)n : sizeof(name) - 1, out);
}

/* The meta every record of assignment carries for the case of validated. */
static json_t *meta_for(const struct assignment_input *in, const char *event_id, int64_t when_ms,
                        const char *producer)
{
    char when[32];
    cf_avro_format_millis(when_ms, when, sizeof(when));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "event_id", event_id, "case_id",
                     in->case_id, "occurred_at", when, "producer", producer, "correlation_id",
                     in->correlation_id, "causation_id", in->event_id);
}

cf_status assignment_build_assigned(const json_t *validated, const struct assignment_decision *d,
                                    const char *producer, json_t **out, char *errbuf,
                                    size_t errlen)
{
    struct assignment_input in;
    char event_id[CF_UUID_LEN + 1];
    json_t *meta = NULL, *recipient = NULL;

    *out = NULL;
    cf_status st = assignment_input_parse(validated, &in, errbuf, errlen);
    if (st != CF_OK)
        return st;
    if (d == NULL || d->manager_id == NULL || d->manager_name == NULL ||
        d->manager_email == NULL || producer == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "assignment decision incomplete");
    assignment_assigned_event_id(in.case_id, event_id);
    meta = meta_for(&in, event_id, d->assigned_ms, producer);
    recipient = json_deep_copy(json_object_get(validated, "recipient"));
    if (meta == NULL || recipient == NULL)
        goto nomem;
    /* "o" steals meta and recipient, also when the pack fails. */
    *out = json_pack("{s:o, s:s, s:s, s:s, s:b, s:s, s:b, s:s, s:o}", "meta", meta, "manager_id",
                     d->manager_id, "manager_name", d->manager_name, "manager_email",
                     d->manager_email, "interpreter_needed", d->interpreter, "priority",
                     assignment_priority_symbol(in.priority), "returning_patient", d->returning,
                     "category", in.category, "recipient", recipient);
    if (*out == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory building CaseAssigned");
    return CF_OK;
nomem:
    json_decref(meta);
    json_decref(recipient);
    return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory building CaseAssigned");
}

cf_status assignment_build_pending(const json_t *validated, const char *reason, int64_t queued_ms,
                                   bool alert, int64_t alert_after_ms, const char *producer,
                                   json_t **out, char *errbuf, size_t errlen)
{
    struct assignment_input in;
    char event_id[CF_UUID_LEN + 1], since[32];
    json_t *meta;

    *out = NULL;
    cf_status st = assignment_input_parse(validated, &in, errbuf, errlen);
    if (st != CF_OK)
        return st;
    if (reason == NULL || producer == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "pending reason missing");
    assignment_pending_event_id(in.case_id, alert, event_id);
    meta = meta_for(&in, event_id, alert ? queued_ms + alert_after_ms : queued_ms, producer);
    if (meta == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory building CasePending");
    cf_avro_format_millis(queued_ms, since, sizeof(since));
    *out = json_pack("{s:o, s:s, s:s, s:s, s:b}", "meta", meta, "service", ASSIGNMENT_SERVICE,
                     "reason", reason, "waiting_since", since, "alert", alert);
    if (*out == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory building CasePending");
    return CF_OK;
}
