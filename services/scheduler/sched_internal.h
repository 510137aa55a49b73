/* sched_internal.h — what scheduler.c (the Kafka path) shares with sched_timer.c (the timer):
 * the case state in Redis, outputs and booking. Not for other modules. */
#ifndef SCHEDULER_SCHED_INTERNAL_H
#define SCHEDULER_SCHED_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka.h"
#include "scheduler.h"
#include "status.h"

#define SCHED_OPS_MAX 16
#define SCHED_MEMBER_MAX 160

/* Due-time set changes to write with the state, in the same round trip. */
struct sched_ops {
    struct {
        char key[32];
        char member[SCHED_MEMBER_MAX];
        int64_t due; /* < 0: remove */
    } op[SCHED_OPS_MAX];
    size_t n;
};

/* The string at obj.k1(.k2), or NULL. */
const char *sched_str(const json_t *obj, const char *k1, const char *k2);

/* Queues one due-time change (ignored past SCHED_OPS_MAX, which no step reaches). */
void sched_ops_add(struct sched_ops *ops, const char *key, const char *member, int64_t due);

/* Queues the booking's two reminders: added at their due times (add; past ones skipped) or
 * removed. */
void sched_reminder_ops(struct scheduler *s, struct sched_ops *ops, const char *case_id,
                        const json_t *booking, bool add, int64_t now);

/* The case's stored state: CF_ENOTFOUND, CF_EINVAL (not JSON), Redis errors. On CF_OK
 * *state is the caller's. */
cf_status sched_load_state(struct scheduler *s, const char *case_id, json_t **state,
                           char *errbuf, size_t errlen);

/* Writes ops and the state (TTL CASEFLOW_SCHEDULER_STATE_TTL_DAYS) in one round trip. */
cf_status sched_store_state(struct scheduler *s, const char *case_id, const json_t *state,
                            const struct sched_ops *ops, char *errbuf, size_t errlen);

/* Appends {"topic", "type", "event"} to list, taking event. 0, or -1 (event NULL, memory). */
int sched_out_add(json_t *list, const char *topic, const char *type, json_t *event);

/* Encodes and queues one stored output / every output of list, keyed by case_id. */
cf_status sched_emit(struct scheduler *s, const char *case_id, const json_t *item,
                     struct cf_kafka_out *out, char *errbuf, size_t errlen);
cf_status sched_emit_all(struct scheduler *s, const char *case_id, const json_t *list,
                         struct cf_kafka_out *out, char *errbuf, size_t errlen);

/* Searches and holds a slot for teleconsult tid from from_ms (prefer: a specialist id to try
 * first, may be NULL; old: the booking being moved, whose hold the book script releases, may
 * be NULL). Found: state's booking is the new one. Not found: *reason is NO_SPECIALIST or
 * NO_SLOT. CF_EINVAL for a bad recipient, Redis errors, CF_EIO after too many lost races. */
cf_status sched_try_book(struct scheduler *s, json_t *state, const char *tid, int64_t from_ms,
                         int64_t now, const char *prefer, const json_t *old, bool *found,
                         const char **reason, char *errbuf, size_t errlen);

/* Books what state's "want" asks for: BOOKED (the record appended to outs with event_id,
 * reminders and the pending removal queued on ops, stage BOOKED) or stage PENDING with
 * pending_reason (nothing emitted). */
cf_status sched_book_want(struct scheduler *s, json_t *state, int64_t now, const char *event_id,
                          const char *causation, json_t *outs, struct sched_ops *ops, bool *booked,
                          char *errbuf, size_t errlen);

#endif
