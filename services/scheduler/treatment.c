/* treatment.c — the treatment plan of an eligible patient (see treatment.h for the rules). */
#include "treatment.h"

#include <string.h>

/* Sessions already booked on day: the sum of the entries for it (a list with the same day twice
 * is taken at its word rather than refused, so a caller that merges sources need not dedup). */
static int64_t treatment_booked_on(const struct treatment_day_count *booked, size_t nbooked,
                                   int32_t day)
{
    int64_t sum = 0;
    for (size_t i = 0; i < nbooked; i++)
        if (booked[i].day == day)
            sum += booked[i].count;
    return sum;
}

/* A day the clinic treats on and still has room for one more session. */
static bool treatment_day_free(const struct treatment_clinic *clinic,
                               const struct treatment_day_count *booked, size_t nbooked,
                               int32_t day)
{
    return clinic->open[treatment_weekday(day)] &&
           treatment_booked_on(booked, nbooked, day) < clinic->daily_capacity;
}

int treatment_weekday(int32_t day)
{
    /* 1970-01-01 (day 0) was a Thursday, ISO weekday 4; int64 so day + 3 cannot overflow, and
     * the double modulo keeps days before 1970 in 0..6. */
    int64_t r = (((int64_t)day + 3) % 7 + 7) % 7;
    return (int)r + 1;
}

cf_status treatment_parse_days(const char *text, bool open[8])
{
    bool seen[8] = {false};
    cf_status st = CF_EINVAL;

    if (text == NULL || open == NULL)
        goto out;
    /* Strictly "d(,d)*": a digit 1..7, then a comma and another digit or the end. Anything
     * else (spaces, empty items, "8", "01") is refused rather than guessed at. */
    for (const char *p = text;; p++) {
        if (*p < '1' || *p > '7' || seen[*p - '0'])
            goto out;
        seen[*p - '0'] = true;
        p++;
        if (*p == '\0')
            break;
        if (*p != ',')
            goto out;
    }
    st = CF_OK;
out:
    /* All false on failure, so a caller that ignores the status opens nothing. */
    if (open != NULL)
        memcpy(open, seen, sizeof seen);
    if (st != CF_OK && open != NULL)
        memset(open, 0, sizeof seen);
    return st;
}

cf_status treatment_plan(const struct treatment_clinic *clinic,
                         const struct treatment_day_count *booked, size_t nbooked,
                         const struct treatment_request *req, bool *found,
                         struct treatment_plan *out, char *errbuf, size_t errlen)
{
    if (found != NULL)
        *found = false;
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (clinic == NULL || req == NULL || found == NULL || out == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "treatment_plan: NULL argument");
    if (booked == NULL && nbooked > 0)
        return cf_fail(errbuf, errlen, CF_EINVAL, "treatment_plan: booked is NULL, nbooked %zu",
                       nbooked);
    if (req->sessions < 1 || req->sessions > 2)
        return cf_fail(errbuf, errlen, CF_EINVAL, "sessions %d: must be 1 or 2", req->sessions);
    if (req->follow_ups < 1 || req->follow_ups > 2)
        return cf_fail(errbuf, errlen, CF_EINVAL, "follow_ups %d: must be 1 or 2", req->follow_ups);
    if (req->horizon_days < 1 || req->horizon_days > TREATMENT_MAX_HORIZON_DAYS)
        return cf_fail(errbuf, errlen, CF_EINVAL, "horizon_days %d: must be 1..%d",
                       req->horizon_days, TREATMENT_MAX_HORIZON_DAYS);
    if (clinic->daily_capacity < 1)
        return cf_fail(errbuf, errlen, CF_EINVAL, "clinic daily_capacity %d: must be >= 1",
                       clinic->daily_capacity);
    bool any_open = false;
    for (int d = 1; d <= 7; d++)
        any_open = any_open || clinic->open[d];
    if (!any_open)
        return cf_fail(errbuf, errlen, CF_EINVAL, "clinic is open on no weekday");
    for (size_t i = 0; i < nbooked; i++)
        if (booked[i].count < 0)
            return cf_fail(errbuf, errlen, CF_EINVAL, "booked day %ld: negative count %d",
                           (long)booked[i].day, booked[i].count);
    /* Every day the plan can name lies in [earliest - 1, earliest + horizon - 1 + gap + 90];
     * refusing dates whose plan would leave int32 keeps all arithmetic below exact. */
    int64_t first = req->earliest_day;
    int64_t last_possible =
        first + req->horizon_days - 1 + TREATMENT_SESSION_GAP_DAYS + TREATMENT_FOLLOW_UP_DAYS_2;
    if (first - 1 < INT32_MIN || last_possible > INT32_MAX)
        return cf_fail(errbuf, errlen, CF_EINVAL, "earliest_day %ld: plan would overflow",
                       (long)first);

    for (int i = 0; i < req->horizon_days; i++) {
        int32_t s1 = (int32_t)(first + i);
        if (!treatment_day_free(clinic, booked, nbooked, s1))
            continue;
        int32_t last = s1;
        if (req->sessions == 2) {
            /* Session 2 is fixed at +15 days (the treatment's rhythm, not the clinic's), so a
             * closed or full day there moves the whole plan instead of session 2 alone. */
            int32_t s2 = s1 + TREATMENT_SESSION_GAP_DAYS;
            if (!treatment_day_free(clinic, booked, nbooked, s2))
                continue;
            last = s2;
        }
        out->nsessions = req->sessions;
        out->session_day[0] = s1;
        out->session_day[1] = req->sessions == 2 ? last : 0;
        out->arrival_day = s1 - 1;
        out->departure_day = last + 2;
        out->nfollow_ups = req->follow_ups;
        out->follow_up_from_day[0] = last + TREATMENT_FOLLOW_UP_DAYS_1;
        out->follow_up_from_day[1] = req->follow_ups == 2 ? last + TREATMENT_FOLLOW_UP_DAYS_2 : 0;
        *found = true;
        return CF_OK;
    }
    return CF_OK;
}
