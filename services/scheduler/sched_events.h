/* sched_events.h — the records the scheduler writes, built from the case state as caseflow's
 * JSON form (avro_convert.h), their ids, and the reminders' due times. Pure: nothing here talks
 * to Kafka or Redis.
 *
 * The case state (kept in Redis, see scheduler.h) is a JSON object with at least case_id,
 * correlation_id, manager_id and recipient (copied from CaseAssigned); its "booking" is
 *   {"teleconsult_id", "specialist_id", "specialist_name", "specialist_time_zone",
 *    "start_ms", "end_ms", "join_url"}.
 * Change tokens are not stored: they are recomputed from the booking with the secret. */
#ifndef SCHEDULER_SCHED_EVENTS_H
#define SCHEDULER_SCHED_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "uuid.h"

/* Meta of a new record. */
struct sched_meta {
    const char *event_id;
    const char *causation_id; /* NULL: none */
    int64_t occurred_at_ms;
    const char *producer;
};

/* A name-based id: UUIDv5-like of "caseflow.scheduler/<a>/<b>/<n>", so the same step gives the
 * same id on every retry. */
void sched_name_id(const char *a, const char *b, long long n, char out[CF_UUID_LEN + 1]);

/* The reminder's event id: name-based on (teleconsult_id, start, lead). */
void sched_reminder_event_id(const char *teleconsult_id, int64_t start_ms, const char *lead,
                             char out[CF_UUID_LEN + 1]);

/* Due times of the H24 and H1 reminders of a start: due[0] = start - h24_ms, due[1] = start -
 * h1_ms, each -1 when it is not after now_ms (its moment passed before the booking: skipped). */
void sched_reminder_dues(int64_t start_ms, int64_t now_ms, int64_t h24_ms, int64_t h1_ms,
                         int64_t due[2]);

/* TeleconsultScheduled for the state's booking. status "BOOKED", "RESCHEDULED" or "CANCELLED";
 * previous_start_ms < 0 for none; CANCELLED has null join_url and tokens, the others carry the
 * tokens signed with secret. On CF_OK *out is the caller's. CF_EINVAL naming a missing field. */
cf_status sched_build_scheduled(const json_t *state, const char *status, int64_t previous_start_ms,
                                const unsigned char *secret, size_t secret_len,
                                const struct sched_meta *m, json_t **out, char *errbuf,
                                size_t errlen);

/* TeleconsultReminderDue for the state's booking; lead "H24" or "H1". */
cf_status sched_build_reminder(const json_t *state, const char *lead, const struct sched_meta *m,
                               json_t **out, char *errbuf, size_t errlen);

/* CaseClosed: reason (CloseReason symbol), note_code (may be NULL), the state's manager_id,
 * and the recipient when notify (else null). */
cf_status sched_build_closed(const json_t *state, const char *reason, const char *note_code,
                             bool notify, const struct sched_meta *m, json_t **out, char *errbuf,
                             size_t errlen);

/* CasePending from service "scheduler": reason NO_SPECIALIST or NO_SLOT. */
cf_status sched_build_pending(const json_t *state, const char *reason, int64_t waiting_since_ms,
                              bool alert, const struct sched_meta *m, json_t **out, char *errbuf,
                              size_t errlen);

/* TreatmentBooked: sessions session_day[0..nsessions) (days since the epoch), arrival and
 * departure days, follow-up starts follow_ups[0..nfollow_ups) (UTC ms), the recipient. */
cf_status sched_build_treatment(const json_t *state, const int32_t *session_day, int nsessions,
                                int32_t arrival_day, int32_t departure_day,
                                const int64_t *follow_ups, int nfollow_ups,
                                const struct sched_meta *m, json_t **out, char *errbuf,
                                size_t errlen);

/* "YYYY-MM-DD" of a days-since-epoch date into buf (16 bytes). */
void sched_format_day(int32_t day, char buf[16]);

/* Days since the epoch of a civil date. */
int32_t sched_days_from_civil(int y, int m, int d);

#endif
