/* validation.h — validation's Kafka path (DESIGN.md §1 step 3, §4, §5): one CaseOpened,
 * CaseInfoProvided or CaseReviewed in, exactly one outcome out (CaseValidated,
 * CaseInfoRequested, CaseReviewRequested or CaseRejected).
 *
 * The steps are separate functions so that each can be tested without servers:
 *   validation_state_from_opened  the case state kept in Redis, from a CaseOpened (pure)
 *   validation_merge_info         a CaseInfoProvided merged into that state (pure)
 *   validation_decide_evaluated   the outcome the rules give (pure)
 *   validation_decide_review      the outcome an operator's decision gives (pure)
 *   validation_build_outcome      the outcome record in caseflow's JSON form (pure)
 *   validation_handle             the cf_kafka_handler that ties them to Redis and the loop
 * README.md ("Kafka path") says what is stored, and why a retried batch is safe. */
#ifndef VALIDATION_VALIDATION_H
#define VALIDATION_VALIDATION_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "avro_serde.h"
#include "config.h"
#include "expiry.h"
#include "kafka.h"
#include "metrics.h"
#include "redis.h"
#include "rules.h"
#include "stage.h"
#include "status.h"
#include "uuid.h"

#define VALIDATION_SERVICE "validation"
#define VALIDATION_GROUP "caseflow-validation"
#define VALIDATION_TOPIC_OPENED "caseflow.case.opened"
#define VALIDATION_TOPIC_INFO_PROVIDED "caseflow.case.info-provided"
#define VALIDATION_TOPIC_REVIEWED "caseflow.case.reviewed"
#define VALIDATION_TOPIC_CLOSED "caseflow.case.closed"
#define VALIDATION_CLOSED_TYPE "caseflow.event.CaseClosed"

/* CF_VERSION comes from services/CMakeLists.txt. */
#define VALIDATION_PRODUCER VALIDATION_SERVICE "/" CF_VERSION

/* Longest Redis key validation builds ("validation:case:" + a UUID). */
#define VALIDATION_REDIS_KEY_MAX 64

/* Reason codes of operator decisions (the rules' codes are in rules.h / README). */
#define VALIDATION_CODE_REVIEW_APPROVED "REVIEW_APPROVED"
#define VALIDATION_CODE_REVIEW_REJECTED "REVIEW_REJECTED"
#define VALIDATION_CODE_REVIEW_REQUEST_INFO "REVIEW_REQUEST_INFO"
/* Longest note_code accepted from CaseReviewed ([A-Z0-9_] only). */
#define VALIDATION_NOTE_CODE_MAX 64

/* Validation's own config entries; put them after CF_CONFIG_REDIS_ENTRIES in main.c's table. */
/* clang-format off */
#define VALIDATION_CONFIG_ENTRIES                                                                \
    {"CASEFLOW_VALIDATION_INFO_WAIT_SECONDS", CF_CONFIG_INT, "1209600", 1, 31536000,             \
     "seconds a case waits for requested information before CaseClosed EXPIRED (1209600 = "      \
     "14 days; CaseInfoRequested.expires_at)"},                                                  \
    {"CASEFLOW_VALIDATION_EXPIRY_CHECK_MS", CF_CONFIG_INT, "1000", 50, 600000,                   \
     "how often the loop looks for cases whose wait for information ran out"},                   \
    {"CASEFLOW_VALIDATION_STATE_TTL_DAYS", CF_CONFIG_INT, "30", 1, 3650,                         \
     "days Redis keeps a case's state for later CaseInfoProvided / CaseReviewed (refreshed on "  \
     "every input); must exceed the info wait"}
/* clang-format on */

/* "validation:case:<case_id>" into key (VALIDATION_REDIS_KEY_MAX bytes). CF_EINVAL if case_id
 * is not a UUID (so a key never holds anything but an id). */
cf_status validation_state_key(const char *case_id, char key[VALIDATION_REDIS_KEY_MAX]);

/* The case state kept in Redis, from a CaseOpened in caseflow's JSON form:
 *   {"case_id", "correlation_id", "patient_key", "last_event_id", "inquiry", "recipient"}
 * (copies; opened is not modified). last_event_id is opened's meta.event_id. On CF_OK *state
 * is the caller's (json_decref). CF_EINVAL naming the first missing field, CF_ENOMEM. */
cf_status validation_state_from_opened(const json_t *opened, json_t **state, char *errbuf,
                                       size_t errlen);

/* Merges a CaseInfoProvided (caseflow's JSON form) into a copy of state, as the schema says:
 * each non-null field replaces the case's value (contact the whole block, guardian, consent;
 * date_of_birth into patient, description, meld_score and transplant_status into condition),
 * and reports are appended, skipping any whose url the case already has (so applying the same
 * event twice gives the same state: see README). The recipient's email, phone, consents and
 * contact windows follow a replaced contact. last_event_id becomes provided's meta.event_id.
 * On CF_OK *merged is the caller's; neither input is modified. CF_EINVAL, CF_ENOMEM. */
cf_status validation_merge_info(const json_t *state, const json_t *provided, json_t **merged,
                                char *errbuf, size_t errlen);

/* The outcome to emit and what it carries. reasons and missing are JSON arrays
 * (caseflow.common.Reason, InfoItem symbols) owned by the decision: free with
 * validation_decision_clear. */
struct validation_decision {
    enum validation_outcome outcome;
    enum validation_priority priority;
    json_t *reasons;
    json_t *missing;
};

/* Drops the decision's arrays (NULL-safe, idempotent). */
void validation_decision_clear(struct validation_decision *d);

/* The decision the rules give for res (validation_evaluate's result): its outcome, priority,
 * reasons and missing items. CF_ENOMEM; d is unchanged on failure. */
cf_status validation_decide_evaluated(const struct validation_result *res,
                                      struct validation_decision *d);

/* The decision an operator's CaseReviewed (caseflow's JSON form) gives, res being the rules'
 * result on the case's current inquiry (it supplies the priority the operator did not set):
 *   APPROVE      -> VALIDATED, the event's priority if given (reason REVIEW_APPROVED with
 *                   param priority) else the evaluated one with its priority reasons;
 *   REJECT       -> REJECTED, the reason note_code (REVIEW_REJECTED without one);
 *   REQUEST_INFO -> INFO_REQUESTED, missing = the event's items (each once, UNKNOWN dropped),
 *                   reason REVIEW_REQUEST_INFO.
 * CF_EINVAL (naming the field) for decision UNKNOWN, a note_code that is not [A-Z0-9_]{1,64},
 * or REQUEST_INFO without any item; CF_ENOMEM. */
cf_status validation_decide_review(const json_t *reviewed, const struct validation_result *res,
                                   struct validation_decision *d, char *errbuf, size_t errlen);

/* What validation_build_outcome needs besides the state and the decision. */
struct validation_outcome_params {
    const char *event_id;     /* the new event's UUID */
    const char *causation_id; /* the input's meta.event_id */
    int64_t occurred_at_ms;   /* now */
    const char *producer;     /* VALIDATION_PRODUCER */
    int64_t info_wait_ms;     /* CaseInfoRequested.expires_at = now + this */
};

/* The topic and schema full name of an outcome. Static strings, never NULL. */
const char *validation_outcome_topic(enum validation_outcome outcome);
const char *validation_outcome_type(enum validation_outcome outcome);

/* Builds the outcome record of d for the case in state (validation_state_from_opened's form)
 * in caseflow's JSON form: meta (event_id, case_id, occurred_at, producer, the case's
 * correlation_id, causation_id), priority, reasons, and what the outcome's schema requires
 * besides: missing and expires_at (CaseInfoRequested), category (CaseValidated,
 * CaseReviewRequested), patient_key (CaseValidated), recipient (all but CaseReviewRequested).
 * On CF_OK *out is the caller's. CF_EINVAL naming a missing field of state, CF_ENOMEM. */
cf_status validation_build_outcome(const json_t *state, const struct validation_decision *d,
                                   const struct validation_outcome_params *p, json_t **out,
                                   char *errbuf, size_t errlen);

/* The handler's and the timer's context; every pointer is borrowed and outlives the loop, and
 * all of it belongs to the loop's thread. */
struct validation {
    struct cf_serde *serde;
    struct cf_redis *redis;
    struct cf_redis_pipeline *pipeline; /* scratch for the state writes */
    const struct cf_due_set *expiry;
    const char *producer;
    int64_t info_wait_ms;
    long long state_ttl_seconds;
    const struct validation_limits *limits; /* NULL: the defaults */
    /* Counters (NULL: not counted), by outcome; expiries; inputs refused by the stage. */
    struct cf_metrics_counter *decided[VALIDATION_OUTCOME_REJECTED + 1];
    struct cf_metrics_counter *expired;
    struct cf_metrics_counter *refused;
};

/* The case's stored state (see validation_state_from_opened): CF_ENOTFOUND if there is none
 * (never opened here, or past its TTL), Redis errors, CF_EINVAL if it is not a JSON object.
 * On CF_OK *state is the caller's. */
cf_status validation_load_state(struct validation *v, const char *case_id, json_t **state,
                                char *errbuf, size_t errlen);

/* validation_store_state's due_ms besides a time: drop the case's due time, or leave it. */
#define VALIDATION_DUE_NONE 0
#define VALIDATION_DUE_KEEP (-1)

/* Writes the case's state (TTL state_ttl_seconds) and, in the same round trip, its expiry due
 * time (a time in ms, VALIDATION_DUE_NONE or VALIDATION_DUE_KEEP). Redis errors. */
cf_status validation_store_state(struct validation *v, const char *case_id, const json_t *state,
                                 int64_t due_ms, char *errbuf, size_t errlen);

/* Encodes event (caseflow's JSON form of the schema of topic, CloudEvents type type) and
 * queues it on out keyed by case_id. Serde errors, CF_ENOMEM, CF_ETOOBIG. */
cf_status validation_emit(struct validation *v, const char *topic, const char *type,
                          const char *case_id, const json_t *event, struct cf_kafka_out *out,
                          char *errbuf, size_t errlen);

/* cf_kafka_handler for the input topics (ctx is a struct validation): decode (serde errors
 * pass through: dead letter), load or store the case state in Redis (Redis errors pass
 * through, so the batch is retried; no stored case for an info or review event is
 * CF_ENOTFOUND: dead letter), check the case's stage admits the input (else CF_EINVAL: dead
 * letter), decide, and queue exactly one outcome keyed by case_id with CloudEvents headers —
 * and after a CaseRejected the case's CaseClosed REJECTED. A CaseClosed read back only moves
 * the case to CLOSED and drops its expiry; it emits nothing. */
cf_status validation_handle(void *ctx, const struct cf_kafka_record *in, struct cf_kafka_out *out,
                            char *errbuf, size_t errlen);

#endif
