/* slots.h — the scheduler's slot search: the earliest teleconsultation slot that fits a
 * specialist's weekly hours (in the specialist's zone) and a patient's contact windows (in the
 * patient's zone), as a pure function over plain structs.
 *
 * Nothing here talks to Kafka or Redis, allocates (but through common/tz) or logs. Instants are
 * ms since the epoch, UTC; local times go through common/tz (ICU), so daylight-saving changes
 * and +5:30 / +5:45 / Lord Howe's 30-minute DST need no special case here. The rules, also in
 * services/scheduler/README.md:
 * - Slots step by slot_minutes of wall-clock time from the start of each working range
 *   (09:00, 09:30, ... for 30-minute slots from 09:00); a slot must end by the range's end.
 * - A start that does not exist locally (DST gap) is skipped. A start that happens twice
 *   (DST overlap) is offered at its first occurrence only.
 * - A slot that contains a UTC-offset change of the specialist's or the patient's zone is
 *   skipped: its wall-clock length would differ from its real one, and losing one slot a year
 *   is better than a consultation that overruns the hours or a window.
 * - The daily cap counts consultations per local day of the specialist (the day the slot
 *   starts); a held start is never offered again. */
#ifndef SCHEDULER_SLOTS_H
#define SCHEDULER_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

struct cf_tz_set;

/* Bounds that keep one search small (a few thousand zone conversions at most). */
#define SCHEDULER_MAX_RANGES 64        /* weekly hours or windows of one person */
#define SCHEDULER_MAX_HORIZON_DAYS 400 /* longest booking horizon */
#define SCHEDULER_MIN_SLOT_MINUTES 5   /* shortest slot: bounds slots per day */
#define SCHEDULER_MAX_SLOT_MINUTES 1440

/* A weekly range in someone's own zone: caseflow.common.WorkingHours or ContactWindow.
 * weekday is ISO 8601 (1 = Monday ... 7 = Sunday, the Weekday symbol index); start/end are
 * minutes after local midnight, 0 <= start < end <= 1440 (end exclusive, 1440 = "24:00"). */
struct scheduler_range {
    int weekday;
    int start_min;
    int end_min;
};

/* Consultations already booked on one local day of the specialist. */
struct scheduler_day_count {
    int year, month, day; /* the specialist's local date */
    int count;
};

/* What the search needs of a specialist (caseflow.roster.Specialist plus the bookings).
 * Arrays may be NULL when their count is 0; nothing is taken over. */
struct scheduler_specialist {
    const char *time_zone; /* IANA id of hours */
    const struct scheduler_range *hours;
    size_t nhours;
    int slot_minutes; /* SCHEDULER_MIN_SLOT_MINUTES .. SCHEDULER_MAX_SLOT_MINUTES */
    int daily_cap;    /* >= 0; 0 books nothing */
    const struct scheduler_day_count *booked;
    size_t nbooked;
    const int64_t *held; /* slot starts (UTC ms) already held, any order */
    size_t nheld;
};

/* The patient: no windows (nwindows 0) means any time suits, and time_zone is then not read
 * (may be NULL). */
struct scheduler_patient {
    const char *time_zone; /* IANA id of windows */
    const struct scheduler_range *windows;
    size_t nwindows;
};

/* When to look. The caller picks lead_ms (shorter for URGENT cases) and horizon_ms from its
 * configuration. A slot qualifies when now_ms + lead_ms <= start < now_ms + horizon_ms. */
struct scheduler_query {
    int64_t now_ms;
    int64_t lead_ms;    /* >= 0 */
    int64_t horizon_ms; /* > 0, at most SCHEDULER_MAX_HORIZON_DAYS days */
    /* Zones already open, reused by the search (it adds the ones it opens); NULL: the search
     * opens and closes its own. Results are the same either way. */
    struct cf_tz_set *zones;
};

/* A slot found. */
struct scheduler_slot {
    int64_t start_ms, end_ms; /* [start, end), UTC */
    int year, month, day;     /* the specialist's local date of start (whose count grows) */
};

/* Finds the earliest qualifying slot (rules at the top of this file). On CF_OK *found says
 * whether there is one, and if so *slot holds it; "none" is a normal answer (the caller puts
 * the case on hold and raises an operator event), never a guess. Returns CF_EINVAL (details in
 * errbuf, which may be NULL) for an unknown zone, a range, slot length, cap, lead or horizon out
 * of bounds, or NULL sp/pt/q/found/slot; CF_ENOMEM if ICU cannot open a calendar. */
cf_status scheduler_find_slot(const struct scheduler_specialist *sp,
                              const struct scheduler_patient *pt, const struct scheduler_query *q,
                              bool *found, struct scheduler_slot *slot, char *errbuf,
                              size_t errlen);

/* The search for a reschedule with the same specialist: as scheduler_find_slot, but the
 * booking being moved (its start old_start_ms, on the specialist's local day it counts
 * against) is released first: it does not count against its day's cap, and its start is never
 * offered again (the patient asked for another time) even if sp->held does not list it. */
cf_status scheduler_find_reschedule(const struct scheduler_specialist *sp,
                                    const struct scheduler_patient *pt,
                                    const struct scheduler_query *q, int64_t old_start_ms,
                                    bool *found, struct scheduler_slot *slot, char *errbuf,
                                    size_t errlen);

/* Parses a local wall-clock time "HH:MM" (24 h, "00:00".."24:00", exactly five characters)
 * into minutes after midnight. Returns CF_EINVAL for NULL or anything else. */
cf_status scheduler_parse_hhmm(const char *text, int *minutes);

#endif
