/* assignment.h — assignment's Kafka path (DESIGN.md §1 step 4, §4, §5): the handler of the
 * transactional loop and its timer.
 *
 *   caseflow.case.validated  match the case (assignment_store_assign): CaseAssigned, or
 *                            CasePending (alert false) when it starts waiting
 *   caseflow.case.closed     release the case's capacity once, then serve the pending queue
 *   caseflow.case.assigned   our own CaseAssigned read back: the assignment is confirmed
 *   caseflow.case.pending    our own pending alert read back: it is not raised again
 *   timer                    follow the roster, emit again CaseAssigned still unconfirmed
 *                            after the lease, serve the pending queue, raise pending alerts
 *
 * README.md says why no case is assigned twice, no CaseAssigned is lost and no manager exceeds
 * their capacity. */
#ifndef ASSIGNMENT_ASSIGNMENT_H
#define ASSIGNMENT_ASSIGNMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "assignment_events.h"
#include "assignment_roster.h"
#include "assignment_store.h"
#include "avro_serde.h"
#include "kafka.h"
#include "metrics.h"
#include "redis.h"
#include "roster_view.h"
#include "status.h"

#define ASSIGNMENT_GROUP "caseflow-assignment"
#define ASSIGNMENT_TOPIC_VALIDATED "caseflow.case.validated"
#define ASSIGNMENT_TOPIC_CLOSED "caseflow.case.closed"
#define ASSIGNMENT_TOPIC_ASSIGNED "caseflow.case.assigned"
#define ASSIGNMENT_TOPIC_PENDING "caseflow.case.pending"
#define ASSIGNMENT_TOPIC_ROSTER "caseflow.roster.care-managers"

/* Pending cases tried per CaseClosed and per timer run (in queue order). */
#define ASSIGNMENT_SERVE_BATCH 32
/* Unconfirmed assignments and alerts claimed per timer run. */
#define ASSIGNMENT_CLAIM_BATCH 100
/* The handler polls the roster view before a CaseValidated when this long has passed. */
#define ASSIGNMENT_ROSTER_POLL_MS 200

/* Assignment's own config entries; put them after CF_CONFIG_REDIS_ENTRIES in main.c's table. */
/* clang-format off */
#define ASSIGNMENT_CONFIG_ENTRIES                                                                \
    {"CASEFLOW_ASSIGNMENT_PENDING_ALERT_SECONDS", CF_CONFIG_INT, "14400", 1, 31536000,           \
     "seconds a case may wait for a care manager before CasePending alert=true tells "           \
     "operators (14400 = 4 hours)"},                                                             \
    {"CASEFLOW_ASSIGNMENT_TIMER_MS", CF_CONFIG_INT, "500", 50, 600000,                           \
     "how often the loop follows the roster, serves pending cases, re-emits unconfirmed "        \
     "assignments and raises pending alerts"},                                                   \
    {"CASEFLOW_ASSIGNMENT_STATE_TTL_DAYS", CF_CONFIG_INT, "90", 1, 3650,                         \
     "days Redis keeps assignments, loads and returning-patient links (refreshed on every "      \
     "assignment)"},                                                                             \
    {"CASEFLOW_ASSIGNMENT_ROSTER_SYNC_MS", CF_CONFIG_INT, "30000", 1000, 600000,                 \
     "longest wait at start for the care-manager roster to be read to its end"},                 \
    {"CASEFLOW_ASSIGNMENT_LEASE_SECONDS", CF_CONFIG_INT, "60", 1, 3600,                          \
     "a CaseAssigned or pending alert not read back this long after it was emitted is emitted "  \
     "again with the same event id (its transaction was lost); keep it well above the time the " \
     "service takes to read its own output back"}
/* clang-format on */

/* The handler's and the timer's context. Pointers are borrowed and outlive the loop; all of it
 * belongs to the loop's thread. Counters may be NULL (not counted). */
struct assignment {
    struct cf_serde *serde;
    struct cf_redis *redis;
    struct cf_roster_view *view; /* NULL: an empty roster (tests) */
    const struct assignment_scripts *scripts;
    const char *producer;
    int64_t alert_ms;
    int64_t ttl_ms;
    int64_t lease_ms; /* CASEFLOW_ASSIGNMENT_LEASE_SECONDS */
    /* The roster matched against, rebuilt when the view's version changes. */
    struct assignment_roster roster;
    uint64_t roster_version;
    bool roster_built;
    int64_t roster_polled_ms; /* monotonic */
    /* Counters by reason (matching.h's enum), releases, alerts, re-emissions; pending gauge. */
    struct cf_metrics_counter *decided[ASSIGNMENT_REASON_NO_URGENT_ROOM + 1];
    struct cf_metrics_counter *released;
    struct cf_metrics_counter *alerts;
    struct cf_metrics_counter *reemitted;
    struct cf_metrics_gauge *pending;
};

/* Polls the roster view (when force, or ASSIGNMENT_ROSTER_POLL_MS after the last poll) and
 * rebuilds a->roster if the view's version changed or it was never built. A consumer error is
 * logged and the roster kept (the next poll goes on). CF_ENOMEM. */
cf_status assignment_refresh_roster(struct assignment *a, bool force, char *errbuf,
                                    size_t errlen);

/* Frees the roster a holds (not the borrowed pointers). NULL-safe. */
void assignment_release_roster(struct assignment *a);

/* cf_kafka_handler for the four input topics (ctx is a struct assignment). Decode and field
 * errors dead-letter the record (CF_EDECODE, CF_EINVAL); Redis errors pass through, so the
 * batch is retried. */
cf_status assignment_handle(void *ctx, const struct cf_kafka_record *in, struct cf_kafka_out *out,
                            char *errbuf, size_t errlen);

/* cf_kafka_timer (ctx is a struct assignment): follows the roster, emits again up to
 * ASSIGNMENT_CLAIM_BATCH CaseAssigned whose lease ran out, serves the pending queue, and raises
 * the alert of cases waiting longer than alert_ms. Redis errors are returned (the claimed work
 * comes back after its lease). */
cf_status assignment_tick(void *ctx, int64_t now_ms, struct cf_kafka_out *out, char *errbuf,
                          size_t errlen);

/* Encodes event (caseflow's JSON form of topic's schema, CloudEvents type type) and queues it
 * on out keyed by case_id. Serde errors, CF_ENOMEM, CF_ETOOBIG. */
cf_status assignment_emit(struct assignment *a, const char *topic, const char *type,
                          const char *case_id, const json_t *event, struct cf_kafka_out *out,
                          char *errbuf, size_t errlen);

#endif
