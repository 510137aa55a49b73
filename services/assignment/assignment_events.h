/* assignment_events.h — what assignment reads from a CaseValidated and the records it writes
 * (CaseAssigned, CasePending), in caseflow's JSON form, as pure functions.
 *
 * Event ids are name-based (cf_uuid_from_name), so any re-emission of the same decision — a
 * retried batch, a lease that ran out before the event was read back — carries the id it had
 * and consumers recognise it (README, "Exactly once"). */
#ifndef ASSIGNMENT_EVENTS_H
#define ASSIGNMENT_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "matching.h"
#include "status.h"
#include "uuid.h"

#define ASSIGNMENT_SERVICE "assignment"
/* CF_VERSION comes from services/CMakeLists.txt. */
#define ASSIGNMENT_PRODUCER ASSIGNMENT_SERVICE "/" CF_VERSION
#define ASSIGNMENT_ASSIGNED_TYPE "caseflow.event.CaseAssigned"
#define ASSIGNMENT_PENDING_TYPE "caseflow.event.CasePending"

/* What assignment needs of a CaseValidated; every string is borrowed from the record. */
struct assignment_input {
    const char *case_id;        /* meta.case_id, a UUID */
    const char *event_id;       /* meta.event_id, a UUID: causation of what follows */
    const char *correlation_id; /* meta.correlation_id */
    const char *patient_key;    /* an HMAC in hex: the returning-patient link's key */
    const char *category;
    const char *language; /* recipient.language */
    const char *country;  /* recipient.country */
    enum assignment_priority priority;
};

/* Reads a CaseValidated (caseflow's JSON form) into *in. CF_EINVAL naming the first field that
 * is missing or wrong (meta.case_id and meta.event_id not UUIDs, an unknown priority, no
 * recipient object, ...). */
cf_status assignment_input_parse(const json_t *validated, struct assignment_input *in,
                                 char *errbuf, size_t errlen);

/* The matching rule's view of the case: priority, language, country; no earlier manager (the
 * script looks the patient up). */
struct assignment_case assignment_input_case(const struct assignment_input *in);

/* "URGENT", "HIGH", "ROUTINE"; false for anything else. */
bool assignment_priority_parse(const char *symbol, enum assignment_priority *out);
const char *assignment_priority_symbol(enum assignment_priority p);

/* The id of the case's CaseAssigned: the UUID named "caseflow.case.assigned\n<case_id>". A case
 * is assigned once, so the id is the case's. */
void assignment_assigned_event_id(const char *case_id, char out[CF_UUID_LEN + 1]);

/* The id of the case's CasePending: named "caseflow.case.pending\n<alert|waiting>\n<case_id>"
 * (a case starts waiting once, and is alerted once). */
void assignment_pending_event_id(const char *case_id, bool alert, char out[CF_UUID_LEN + 1]);

/* The decision a CaseAssigned reports. */
struct assignment_decision {
    const char *manager_id;
    const char *manager_name;
    const char *manager_email;
    bool interpreter;
    bool returning;
    int64_t assigned_ms; /* when the script assigned it: meta.occurred_at */
};

/* Builds the CaseAssigned of the CaseValidated validated for decision d: meta (the case's
 * name-based event id, case_id, occurred_at = d->assigned_ms, producer, correlation_id copied,
 * causation_id = the CaseValidated's event id), the manager's id, name and email,
 * interpreter_needed, returning_patient, and priority, category and recipient copied. On CF_OK
 * *out is the caller's. CF_EINVAL (a field of validated missing), CF_ENOMEM. */
cf_status assignment_build_assigned(const json_t *validated, const struct assignment_decision *d,
                                    const char *producer, json_t **out, char *errbuf,
                                    size_t errlen);

/* Builds the CasePending of the CaseValidated validated: service "assignment", reason (NO_ROOM
 * or NO_URGENT_ROOM), waiting_since = queued_ms, alert; meta.occurred_at is queued_ms when the
 * case starts waiting, queued_ms + alert_after_ms for the alert, so a re-emission is the same
 * record. causation_id = the CaseValidated's event id. On CF_OK *out is the caller's. CF_EINVAL,
 * CF_ENOMEM. */
cf_status assignment_build_pending(const json_t *validated, const char *reason, int64_t queued_ms,
                                   bool alert, int64_t alert_after_ms, const char *producer,
                                   json_t **out, char *errbuf, size_t errlen);

#endif
