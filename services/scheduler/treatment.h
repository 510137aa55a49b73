/* treatment.h — the scheduler's treatment booking as a pure function: which clinic days an
 * eligible patient's 1 or 2 sessions take, when the patient arrives and leaves, and from which
 * day each follow-up teleconsultation may be booked.
 *
 * Nothing here talks to Kafka or Redis, allocates or logs. Dates are Avro `date` values: days
 * since 1970-01-01 (int32), civil dates at the clinic. The rules (issue 4), also in
 * services/scheduler/README.md:
 * - session 1 is the first clinic day (open weekday, fewer than daily_capacity sessions booked)
 *   on or after the earliest travel date;
 * - with two sessions, session 2 is TREATMENT_SESSION_GAP_DAYS after session 1 and must be a
 *   clinic day with capacity too, else session 1 moves to the next candidate day;
 * - arrival is the day before session 1, departure two days after the last session;
 * - follow-up teleconsultations are booked from the last session + 30 (and + 90) days. */
#ifndef SCHEDULER_TREATMENT_H
#define SCHEDULER_TREATMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define TREATMENT_SESSION_GAP_DAYS 15  /* session 2 is 15 days after session 1 */
#define TREATMENT_FOLLOW_UP_DAYS_1 30  /* follow-up 1: not before last session + 30 days */
#define TREATMENT_FOLLOW_UP_DAYS_2 90  /* follow-up 2: not before last session + 90 days */
#define TREATMENT_MAX_HORIZON_DAYS 730 /* longest search for a first session */

/* The clinic's configuration. */
struct treatment_clinic {
    bool open[8];       /* open[1..7]: ISO weekday (1 = Monday) the clinic treats on; [0] unused */
    int daily_capacity; /* sessions per clinic day, >= 1 */
};

/* Sessions already booked on one clinic day. */
struct treatment_day_count {
    int32_t day; /* days since 1970-01-01 */
    int count;
};

/* What to plan. */
struct treatment_request {
    int32_t earliest_day; /* earliest travel date (the caller: consultation's local date at the
                             clinic + the configured travel lead days) */
    int sessions;         /* 1 or 2 */
    int follow_ups;       /* 1 or 2 */
    int horizon_days;     /* search at most this many days from earliest_day, 1 ..
                             TREATMENT_MAX_HORIZON_DAYS: session 1 lies in
                             [earliest_day, earliest_day + horizon_days) */
};

/* A plan found. */
struct treatment_plan {
    int nsessions;
    int32_t session_day[2]; /* session 1 = first clinic day with capacity on or after
                               earliest_day such that, with 2 sessions, day + 15 is also a
                               clinic day with capacity (else the next candidate day) */
    int32_t arrival_day;    /* first session - 1 */
    int32_t departure_day;  /* last session + 2 */
    int nfollow_ups;
    int32_t follow_up_from_day[2]; /* last session + 30, + 90: the scheduler books each
                                      follow-up teleconsultation at the first slot from then */
};

/* Plans the treatment; on CF_OK *found says whether a plan exists within the horizon (none is a
 * normal answer; *out is then zeroed). CF_EINVAL (details in errbuf, which may be NULL) for
 * sessions/follow_ups not 1..2, a clinic with no open day or capacity < 1, a horizon out of
 * bounds (< 1 or > TREATMENT_MAX_HORIZON_DAYS), an earliest_day so late that the plan's days
 * would overflow, a negative booked count, NULL pointers. booked may be NULL when nbooked is 0;
 * days not listed have 0 sessions booked; a day listed twice counts the sum. Nothing is taken
 * over. */
cf_status treatment_plan(const struct treatment_clinic *clinic,
                         const struct treatment_day_count *booked, size_t nbooked,
                         const struct treatment_request *req, bool *found,
                         struct treatment_plan *out, char *errbuf, size_t errlen);

/* Weekday (1 = Monday .. 7 = Sunday) of a days-since-epoch date; any int32 day, negative ones
 * (before 1970) included. */
int treatment_weekday(int32_t day);

/* Parses "1,2,3,4,5" (ISO weekdays 1..7, any order, no repeats, no spaces, at least one) into
 * open[] (open[0] false, open[d] true for each listed d). CF_EINVAL otherwise (open[] is then
 * all false); text and open must not be NULL (CF_EINVAL). */
cf_status treatment_parse_days(const char *text, bool open[8]);

#endif
