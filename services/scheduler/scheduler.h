/* scheduler.h — the teleconsult scheduler's Kafka path and timer (DESIGN.md §1 step 5, §4):
 * CaseAssigned → a booking (TeleconsultScheduled BOOKED) or CasePending; change requests →
 * RESCHEDULED / CANCELLED (+ CaseClosed); outcomes → TreatmentBooked, a new booking or
 * CaseClosed; reminders 24 h and 1 h before; another service's CaseClosed releases the case's
 * hold. README.md has the rules, the Redis keys and why every step is retry-safe.
 *
 * The case state lives in Redis under "scheduler:case:<case_id>" (sched_store.h) as JSON:
 *   case_id, correlation_id, manager_id, recipient, category, priority (from CaseAssigned),
 *   stage (WAITING, PENDING, BOOKED, TREATMENT, CLOSED), booking (sched_events.h), want (what
 *   a pending case waits to book: teleconsult_id, from_ms, prefer, cause), waiting_since_ms,
 *   pending_reason, alerted, interpreter, no_shows, follow_ups,
 *   applied: [{"id": input event id, "out": [{"topic", "type", "event"}, ...]}] — the last
 *   SCHED_APPLIED_MAX inputs and what they emitted, so a retried input re-emits the very same
 *   records (ids, tokens, join link) and takes nothing twice;
 *   outbox: the timer's records not yet read back from their topics (re-emitted after the
 *   lease if their transaction was lost). */
#ifndef SCHEDULER_SCHEDULER_H
#define SCHEDULER_SCHEDULER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "avro_serde.h"
#include "kafka.h"
#include "metrics.h"
#include "redis.h"
#include "roster_view.h"
#include "sched_pick.h"
#include "sched_store.h"
#include "status.h"

#define SCHEDULER_SERVICE "scheduler"
#define SCHEDULER_GROUP "caseflow-scheduler"
#define SCHEDULER_PRODUCER SCHEDULER_SERVICE "/" CF_VERSION

#define SCHED_T_ASSIGNED "caseflow.case.assigned"
#define SCHED_T_CHANGE "caseflow.teleconsult.change-requested"
#define SCHED_T_COMPLETED "caseflow.teleconsult.completed"
#define SCHED_T_CLOSED "caseflow.case.closed"
#define SCHED_T_SCHEDULED "caseflow.teleconsult.scheduled"
#define SCHED_T_REMINDER "caseflow.teleconsult.reminder-due"
#define SCHED_T_TREATMENT "caseflow.treatment.booked"
#define SCHED_T_PENDING "caseflow.case.pending"
#define SCHED_T_ROSTER "caseflow.roster.specialists"

#define SCHED_APPLIED_MAX 16
/* Attempts of one booking when another replica wins the hold or the day's last place. */
#define SCHED_BOOK_ATTEMPTS 8
/* A claimed reminder comes back after this long unless it was read back first. */
#define SCHED_REMINDER_LEASE_MS (60LL * 1000)
#define SCHED_TIMER_BATCH 100

/* clang-format off */
#define SCHEDULER_CONFIG_ENTRIES                                                                 \
    {"CASEFLOW_SCHEDULER_TOKEN_SECRET", CF_CONFIG_STRING, NULL, 32, 1024,                        \
     "secret (at least 32 bytes) signing the reschedule and cancel tokens; changing it "        \
     "invalidates every token sent"},                                                            \
    {"CASEFLOW_SCHEDULER_LEAD_MINUTES", CF_CONFIG_INT, "1440", 0, 43200,                         \
     "earliest start of a teleconsultation after booking, in minutes"},                          \
    {"CASEFLOW_SCHEDULER_URGENT_LEAD_MINUTES", CF_CONFIG_INT, "240", 0, 43200,                   \
     "the same for URGENT cases"},                                                               \
    {"CASEFLOW_SCHEDULER_HORIZON_DAYS", CF_CONFIG_INT, "30", 1, 365,                             \
     "latest start of a teleconsultation, in days after the search starts"},                     \
    {"CASEFLOW_SCHEDULER_JOIN_URL_BASE", CF_CONFIG_STRING, "https://meet.example.org/j/", 8,     \
     512, "join links are this followed by a random token"},                                     \
    {"CASEFLOW_SCHEDULER_PENDING_ALERT_SECONDS", CF_CONFIG_INT, "86400", 1, 31536000,            \
     "a case waiting for a slot this long gets CasePending alert=true (once)"},                  \
    {"CASEFLOW_SCHEDULER_PENDING_RETRY_SECONDS", CF_CONFIG_INT, "60", 1, 86400,                  \
     "how often a waiting case is searched again (at once after a roster change)"},              \
    {"CASEFLOW_SCHEDULER_TIMER_MS", CF_CONFIG_INT, "500", 50, 60000,                             \
     "how often the loop looks for due reminders, waiting cases and roster changes"},            \
    {"CASEFLOW_SCHEDULER_ROSTER_SYNC_MS", CF_CONFIG_INT, "30000", 1000, 600000,                  \
     "longest wait at start for the specialist roster to be read to its end"},                   \
    {"CASEFLOW_SCHEDULER_REMINDER_H24_SECONDS", CF_CONFIG_INT, "86400", 1, 604800,               \
     "lead of the first reminder"},                                                              \
    {"CASEFLOW_SCHEDULER_REMINDER_H1_SECONDS", CF_CONFIG_INT, "3600", 1, 604800,                 \
     "lead of the second reminder"},                                                             \
    {"CASEFLOW_SCHEDULER_STATE_TTL_DAYS", CF_CONFIG_INT, "90", 1, 3650,                          \
     "days Redis keeps a case's scheduling state (refreshed on every input)"},                   \
    {"CASEFLOW_SCHEDULER_TESTS_WAIT_DAYS", CF_CONFIG_INT, "7", 0, 365,                           \
     "NEEDS_TESTS: the new teleconsultation starts at least this many days later"},              \
    {"CASEFLOW_SCHEDULER_CLINIC_TIME_ZONE", CF_CONFIG_STRING, "Europe/Istanbul", 3, 64,          \
     "IANA zone of the treatment clinic (its dates)"},                                           \
    {"CASEFLOW_SCHEDULER_CLINIC_DAYS", CF_CONFIG_STRING, "1,2,3,4,5", 1, 13,                     \
     "ISO weekdays the clinic treats on (1 = Monday)"},                                          \
    {"CASEFLOW_SCHEDULER_CLINIC_DAILY_SESSIONS", CF_CONFIG_INT, "4", 1, 1000,                    \
     "treatment sessions per clinic day"},                                                       \
    {"CASEFLOW_SCHEDULER_TRAVEL_LEAD_DAYS", CF_CONFIG_INT, "14", 0, 365,                         \
     "first treatment day at least this many days after the consultation"}
/* clang-format on */

/* The settings, read once at start. */
struct sched_settings {
    const unsigned char *secret;
    size_t secret_len;
    int64_t lead_ms, urgent_lead_ms, horizon_ms;
    const char *join_url_base;
    int64_t pending_alert_ms, pending_retry_ms;
    int64_t h24_ms, h1_ms;
    long long state_ttl_seconds;
    int64_t tests_wait_ms;
    const char *clinic_time_zone;
    bool clinic_open[8];
    int clinic_daily;
    int travel_lead_days;
};

/* The handler's and the timer's context; pointers borrowed, all of it the loop thread's. */
struct scheduler {
    struct cf_serde *serde;
    struct cf_redis *redis;
    struct cf_redis_pipeline *pipeline;
    const struct sched_scripts *scripts;
    struct cf_roster_view *roster_view; /* NULL in unit tests: roster is then fixed */
    struct cf_tz_set *zones;            /* the specialists', patients' and clinic's zones */
    struct sched_roster roster;         /* derived from the view, rebuilt when it changes */
    uint64_t roster_version;
    bool retry_pending_now; /* the roster changed: search waiting cases at once */
    struct sched_settings set;
    const char *producer;
    /* Counters (NULL: not counted). */
    struct cf_metrics_counter *booked, *rescheduled, *cancelled;
    struct cf_metrics_counter *reminders, *refused, *pending, *treatments, *closed;
};

/* cf_kafka_handler (ctx: struct scheduler) for the input topics and the read-backs. Errors:
 * serde → dead letter; Redis → retried batch; a change request with a bad or stale token, an
 * outcome of another teleconsult, an input the case's stage does not admit → CF_EINVAL with
 * the reason (dead letter); no stored case → CF_ENOTFOUND (dead letter). */
cf_status scheduler_handle(void *ctx, const struct cf_kafka_record *in, struct cf_kafka_out *out,
                           char *errbuf, size_t errlen);

/* cf_kafka_timer (ctx: struct scheduler): follows the roster, emits due reminders and searches
 * again for waiting cases (README "Timer"). */
cf_status scheduler_tick(void *ctx, int64_t now_ms, struct cf_kafka_out *out, char *errbuf,
                         size_t errlen);

/* Rebuilds s->roster from the view if its version changed. CF_ENOMEM, CF_ETOOBIG. */
cf_status scheduler_roster_refresh(struct scheduler *s, char *errbuf, size_t errlen);

#endif
