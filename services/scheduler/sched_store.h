/* sched_store.h — what the scheduler keeps in Redis besides the case state, and the Lua
 * scripts that change it atomically (README.md "Redis"). Keys hold ids and times only:
 *   scheduler:hold:<specialist_id>:<start_ms>  string teleconsult_id, TTL past the slot's end
 *   scheduler:held:<specialist_id>             zset "<start_ms>/<teleconsult_id>" by start:
 *                                              the specialist's holds, read by the search
 *                                              and counted for the daily cap
 *   scheduler:reminders                        zset "<case_id>/<teleconsult_id>/<start>/<lead>"
 *                                              by due time (leased when claimed)
 *   scheduler:pending                          zset case_id by next retry (leased when claimed)
 *   scheduler:clinic:days                      hash clinic day (days since epoch) -> sessions
 *   scheduler:clinic:case:<case_id>            string "<cause>|<day>|<day>": the days a case
 *                                              took, so a retry takes nothing twice
 * Every key gets a TTL from its script's arguments. */
#ifndef SCHEDULER_SCHED_STORE_H
#define SCHEDULER_SCHED_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "due_set.h"
#include "redis.h"
#include "status.h"

#define SCHED_KEY_MAX 160
#define SCHED_REMINDERS_KEY "scheduler:reminders"
#define SCHED_PENDING_KEY "scheduler:pending"
#define SCHED_CLINIC_KEY "scheduler:clinic:days"

/* The scripts, made once at start and shared (immutable). */
struct sched_scripts {
    struct cf_redis_script *book;        /* hold + daily cap (+ release of the old hold) */
    struct cf_redis_script *release;     /* drop one hold if it is the teleconsult's */
    struct cf_due_set due;               /* the reminder and waiting-case sets */
    struct cf_redis_script *clinic_read; /* clinic day counts in a range */
    struct cf_redis_script *clinic_take; /* take clinic days under the daily capacity */
};

/* Creates every script. CF_ENOMEM. sched_scripts_free is NULL-safe on parts. */
cf_status sched_scripts_new(struct sched_scripts *s, char *errbuf, size_t errlen);
void sched_scripts_free(struct sched_scripts *s);

/* "scheduler:case:<case_id>" (CF_EINVAL unless case_id is a UUID). */
cf_status sched_case_key(const char *case_id, char key[SCHED_KEY_MAX]);

/* Outcome of sched_store_book. */
enum sched_book_result {
    SCHED_BOOK_OK = 1,      /* held now (or already held by this teleconsult) */
    SCHED_BOOK_TAKEN = -1,  /* someone else holds that start: search again */
    SCHED_BOOK_CAP = -2,    /* the specialist's day is full: search again */
};

/* One hold to take. old_* describe the hold this one replaces (a reschedule): it is released
 * in the same script and does not count against the cap; old_specialist NULL for none. */
struct sched_hold {
    const char *specialist_id;
    const char *teleconsult_id;
    int64_t start_ms, end_ms;
    int daily_cap;
    int64_t day_from_ms, day_to_ms; /* the specialist's local day of start, UTC bounds */
    const char *old_specialist;
    int64_t old_start_ms;
};

/* Takes the hold atomically with the daily-cap check (one Lua script). now_ms prunes index
 * entries older than a day. Redis errors. */
cf_status sched_store_book(struct cf_redis *r, const struct sched_scripts *s,
                           const struct sched_hold *h, int64_t now_ms,
                           enum sched_book_result *result, char *errbuf, size_t errlen);

/* Releases the hold (specialist_id, start_ms) if teleconsult_id holds it. Idempotent. */
cf_status sched_store_release(struct cf_redis *r, const struct sched_scripts *s,
                              const char *specialist_id, const char *teleconsult_id,
                              int64_t start_ms, char *errbuf, size_t errlen);

/* The held starts in [from_ms, to_ms) of each specialist ids[0..n), in one round trip, except
 * those of exclude_tid (the teleconsult being booked: a retry must not see its own hold as
 * someone else's). On CF_OK starts[i] (the caller frees each with free) and counts[i] are set
 * for every i. Redis errors, CF_ENOMEM. */
cf_status sched_store_held(struct cf_redis *r, struct cf_redis_pipeline *p,
                           const char *const *ids, size_t n, int64_t from_ms, int64_t to_ms,
                           const char *exclude_tid, int64_t **starts, size_t *counts,
                           char *errbuf, size_t errlen);

/* Clinic day counts for days [from_day, to_day] into counts (to_day - from_day + 1 ints,
 * zeroed first). Redis errors. */
cf_status sched_store_clinic_read(struct cf_redis *r, const struct sched_scripts *s,
                                  int32_t from_day, int32_t to_day, int *counts, char *errbuf,
                                  size_t errlen);

/* Takes days[0..ndays) for case_id under capacity, remembered as claim "<cause>|d1|d2".
 * *result: 1 taken; -2 a day is full (plan again); 0 the case already holds a claim, which is
 * copied into existing (existing_len bytes): the caller reuses it if it is its own cause. */
cf_status sched_store_clinic_take(struct cf_redis *r, const struct sched_scripts *s,
                                  const char *case_id, const char *claim, const int32_t *days,
                                  size_t ndays, int capacity, int64_t ttl_ms, int *result,
                                  char *existing, size_t existing_len, char *errbuf,
                                  size_t errlen);

#endif
