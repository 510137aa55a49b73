/* matching.h — assignment's matching rule: which care manager a validated case goes to, and the
 * order in which pending cases are served, as pure functions over plain structs.
 *
 * Nothing here talks to Kafka or Redis, allocates or logs. The service's Redis Lua script, which
 * applies the rule atomically across replicas, must decide exactly as assignment_match() does:
 * this file is the reference the script is tested against. services/assignment/README.md lists
 * the rules and the reason codes.
 *
 * Strings are borrowed: the caller keeps the case and the roster alive while it uses the result
 * (assignment_choice.manager_id points into the roster). */
#ifndef ASSIGNMENT_MATCHING_H
#define ASSIGNMENT_MATCHING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* last_assigned_ms of a manager who never had a case: the idlest of all. */
#define ASSIGNMENT_NEVER_ASSIGNED INT64_MIN

/* caseflow.common.Priority, in the schema's symbol order (URGENT is served first). */
enum assignment_priority {
    ASSIGNMENT_PRIORITY_URGENT,
    ASSIGNMENT_PRIORITY_HIGH,
    ASSIGNMENT_PRIORITY_ROUTINE,
};

/* One roster entry (caseflow.roster.CareManager) with its current load. */
struct assignment_manager {
    const char *id;               /* manager_id; never NULL */
    const char *const *languages; /* BCP 47 tags; may be NULL when nlanguages is 0 */
    size_t nlanguages;
    const char *const *countries; /* ISO 3166-1 alpha-2; may be NULL when ncountries is 0 */
    size_t ncountries;
    int capacity; /* maximum active cases; <= 0 never has room */
    bool urgent_capable;
    bool active;
    int active_cases;         /* cases assigned and not yet closed; >= 0 */
    int64_t last_assigned_ms; /* ms since the epoch, or ASSIGNMENT_NEVER_ASSIGNED */
};

/* What matching needs of a validated case (CaseValidated: priority, recipient.language,
 * recipient.country, and the manager of the patient's earlier case found by patient_key). */
struct assignment_case {
    enum assignment_priority priority;
    const char *language;         /* BCP 47; NULL or "" speaks nothing (interpreter) */
    const char *country;          /* ISO 3166-1 alpha-2; NULL or "" prefers no region */
    const char *previous_manager; /* manager id of the earlier case, or NULL for a new patient */
};

/* Why a manager was chosen, or why none was. Static codes via assignment_reason_code(); they
 * carry no personal data, so they may go to logs and metric labels. */
enum assignment_reason {
    ASSIGNMENT_REASON_RETURNING,          /* kept the patient's earlier manager */
    ASSIGNMENT_REASON_LANGUAGE_REGION,    /* speaks the language and covers the country */
    ASSIGNMENT_REASON_LANGUAGE,           /* speaks the language, other region */
    ASSIGNMENT_REASON_INTERPRETER_REGION, /* English with an interpreter, covers the country */
    ASSIGNMENT_REASON_INTERPRETER,        /* English with an interpreter, other region */
    ASSIGNMENT_REASON_NO_ROOM,            /* nobody suitable has room: the case waits */
    ASSIGNMENT_REASON_NO_URGENT_ROOM, /* URGENT, and only non-urgent-capable managers have room */
};

/* The decision. When assigned is false, index and manager_id are meaningless (SIZE_MAX, NULL)
 * and the caller parks the case in the pending queue. */
struct assignment_choice {
    bool assigned;
    size_t index;           /* into the roster passed to assignment_match */
    const char *manager_id; /* borrowed from the roster */
    bool interpreter;       /* the manager does not speak the patient's language */
    bool returning;         /* the patient kept their earlier manager */
    enum assignment_reason reason;
};

/* A case waiting for capacity. */
struct assignment_pending {
    const char *case_id; /* never NULL */
    enum assignment_priority priority;
    int64_t queued_ms; /* when it started waiting, ms since the epoch */
};

/* Chooses a care manager for c among the nroster managers of roster (README, "Matching"):
 * only active managers with room (active_cases < capacity), urgent-capable for URGENT; the
 * patient's earlier manager if still eligible; else speakers of the patient's language (primary
 * subtag, case-insensitive), else English speakers with an interpreter; within those, the
 * patient's country first, then the least loaded by active/capacity, then the longest idle, then
 * the smallest id (byte order). Writes the decision to *out, also when nobody has room.
 * roster may be NULL only when nroster is 0. errbuf may be NULL. Returns CF_EINVAL (errbuf says
 * which) when c or out is NULL, or a manager has a NULL id or a negative active count; else
 * CF_OK. */
cf_status assignment_match(const struct assignment_case *c, const struct assignment_manager *roster,
                           size_t nroster, struct assignment_choice *out, char *errbuf,
                           size_t errlen);

/* True when tag and other have the same primary language subtag (the part before the first '-'
 * or '_'), compared case-insensitively: "es-MX" and "ES" match, "en" and "eng" do not. NULL or
 * empty never matches. */
bool assignment_language_match(const char *tag, const char *other);

/* The static code of a reason ("RETURNING", ...); "UNKNOWN" for a value out of range. */
const char *assignment_reason_code(enum assignment_reason reason);

/* Orders pending cases for service: URGENT before HIGH before ROUTINE, then the oldest (smallest
 * queued_ms) first, then case_id in byte order so every replica agrees. A qsort/bsearch
 * comparator over struct assignment_pending; neither argument may be NULL. */
int assignment_pending_compare(const void *a, const void *b);

#endif
