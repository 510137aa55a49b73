/* stage.h — where a case stands in validation, which inputs that stage still admits, and the
 * CaseClosed record validation writes (a rejection's close, an expiry). Pure functions over
 * the case state (validation.h); README.md ("Stages") has the table.
 *
 * The stage lives in the state as "stage" (the symbol below), beside "applied" — the event ids
 * of the inputs already applied, newest last, at most VALIDATION_APPLIED_MAX — so that a batch
 * the loop retries finds its own inputs already applied and is not refused by the stage they
 * moved the case to. */
#ifndef VALIDATION_STAGE_H
#define VALIDATION_STAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules.h"
#include "status.h"

/* How many applied input ids the state remembers (a retried batch holds at most a few inputs
 * of one case). */
#define VALIDATION_APPLIED_MAX 16

enum validation_stage {
    VALIDATION_STAGE_VALIDATING = 0, /* opened, no outcome yet */
    VALIDATION_STAGE_NEEDS_INFO,     /* CaseInfoRequested: waiting for the patient */
    VALIDATION_STAGE_UNDER_REVIEW,   /* CaseReviewRequested: waiting for an operator */
    VALIDATION_STAGE_VALIDATED,      /* CaseValidated: assignment has it */
    VALIDATION_STAGE_REJECTED,       /* CaseRejected (and its CaseClosed on the way) */
    VALIDATION_STAGE_EXPIRING,       /* the wait ran out: CaseClosed EXPIRED on the way */
    VALIDATION_STAGE_CLOSED,         /* a CaseClosed was read back */
};

/* The input topics, as far as stages care. */
enum validation_input {
    VALIDATION_INPUT_OPENED = 0,
    VALIDATION_INPUT_INFO_PROVIDED,
    VALIDATION_INPUT_REVIEWED,
    VALIDATION_INPUT_CLOSED,
};

/* "VALIDATING", "NEEDS_INFO", ...: static, never NULL. */
const char *validation_stage_symbol(enum validation_stage stage);

/* The stage in state ("stage"); a state without one (written before stages existed) is
 * VALIDATING. False if the symbol is unknown. */
bool validation_stage_get(const json_t *state, enum validation_stage *stage);

/* The stage an outcome puts a case in. */
enum validation_stage validation_stage_after(enum validation_outcome outcome);

/* CF_OK if an input of kind may be applied to a case in stage; else CF_EINVAL with the reason
 * in errbuf (no values: the stage and the input's kind). A CaseOpened and a CaseClosed are
 * always admitted; CaseInfoProvided while VALIDATING, NEEDS_INFO or UNDER_REVIEW; CaseReviewed
 * while NEEDS_INFO or UNDER_REVIEW (an operator may decide a case that waits for the patient).
 * A decided, expiring or closed case admits neither: its outcome has gone on. */
cf_status validation_stage_admits(enum validation_stage stage, enum validation_input kind,
                                  char *errbuf, size_t errlen);

/* True if state's "applied" holds event_id: the input was applied before (a retried batch). */
bool validation_state_applied(const json_t *state, const char *event_id);

/* Sets state's stage and appends event_id, if not NULL, to "applied" (dropping the oldest past
 * VALIDATION_APPLIED_MAX; an id already there is not added twice). 0 on success, -1 out of
 * memory or state not an object. */
int validation_state_mark(json_t *state, enum validation_stage stage, const char *event_id);

/* What validation_build_closed needs besides the state. */
struct validation_closed_params {
    const char *event_id;     /* the new event's UUID */
    const char *causation_id; /* the event that closes the case */
    int64_t occurred_at_ms;
    const char *producer;
    const char *reason;    /* CloseReason symbol: "REJECTED" or "EXPIRED" */
    const char *note_code; /* NULL or a stable code */
    bool notify;           /* carry the state's recipient (else null: do not tell the patient) */
};

/* The CaseClosed record for the case in state, in caseflow's JSON form. On CF_OK *out is the
 * caller's. CF_EINVAL naming a missing field of state or parameter, CF_ENOMEM. */
cf_status validation_build_closed(const json_t *state, const struct validation_closed_params *p,
                                  json_t **out, char *errbuf, size_t errlen);

#endif
