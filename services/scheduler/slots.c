/* slots.c — the earliest slot that suits a specialist and a patient, via common/tz. */
#include "slots.h"

#include <string.h>

#include "tz.h"

#define MIN_MS 60000LL
#define DAY_MS 86400000LL
#define MINUTES_PER_DAY 1440
/* As common/tz: instants ICU represents exactly. */
#define INSTANT_MAX 8640000000000000LL

cf_status scheduler_parse_hhmm(const char *text, int *minutes)
{
    if (text == NULL || minutes == NULL || strnlen(text, 6) != 5 || text[2] != ':')
        return CF_EINVAL;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (text[i] < '0' || text[i] > '9'))
            return CF_EINVAL;
    int h = (text[0] - '0') * 10 + (text[1] - '0');
    int m = (text[3] - '0') * 10 + (text[4] - '0');
    if (h > 24 || m > 59 || (h == 24 && m != 0))
        return CF_EINVAL;
    *minutes = h * 60 + m;
    return CF_OK;
}

static cf_status check_ranges(const struct scheduler_range *r, size_t n, const char *what,
                              char *errbuf, size_t errlen)
{
    if (n > SCHEDULER_MAX_RANGES)
        return cf_fail(errbuf, errlen, CF_EINVAL, "%s: %zu ranges, at most %d", what, n,
                       SCHEDULER_MAX_RANGES);
    if (n > 0 && r == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "%s: NULL ranges", what);
    for (size_t i = 0; i < n; i++) {
        if (r[i].weekday < 1 || r[i].weekday > 7 || r[i].start_min < 0 ||
            r[i].end_min > MINUTES_PER_DAY || r[i].start_min >= r[i].end_min)
            return cf_fail(errbuf, errlen, CF_EINVAL, "%s[%zu]: weekday %d, %d-%d minutes", what, i,
                           r[i].weekday, r[i].start_min, r[i].end_min);
    }
    return CF_OK;
}

static cf_status check_input(const struct scheduler_specialist *sp,
                             const struct scheduler_patient *pt, const struct scheduler_query *q,
                             char *errbuf, size_t errlen)
{
    cf_status st = check_ranges(sp->hours, sp->nhours, "specialist hours", errbuf, errlen);
    if (st != CF_OK)
        return st;
    st = check_ranges(pt->windows, pt->nwindows, "patient windows", errbuf, errlen);
    if (st != CF_OK)
        return st;
    if (sp->slot_minutes < SCHEDULER_MIN_SLOT_MINUTES ||
        sp->slot_minutes > SCHEDULER_MAX_SLOT_MINUTES)
        return cf_fail(errbuf, errlen, CF_EINVAL, "slot_minutes %d out of %d-%d", sp->slot_minutes,
                       SCHEDULER_MIN_SLOT_MINUTES, SCHEDULER_MAX_SLOT_MINUTES);
    if (sp->daily_cap < 0)
        return cf_fail(errbuf, errlen, CF_EINVAL, "daily_cap %d is negative", sp->daily_cap);
    if ((sp->nbooked > 0 && sp->booked == NULL) || (sp->nheld > 0 && sp->held == NULL))
        return cf_fail(errbuf, errlen, CF_EINVAL, "NULL booked or held list");
    const int64_t max_span = SCHEDULER_MAX_HORIZON_DAYS * DAY_MS;
    if (q->lead_ms < 0 || q->lead_ms > max_span || q->horizon_ms <= 0 || q->horizon_ms > max_span)
        return cf_fail(errbuf, errlen, CF_EINVAL, "lead %lld ms / horizon %lld ms out of bounds",
                       (long long)q->lead_ms, (long long)q->horizon_ms);
    /* Keeps now + lead/horizon (+ a day) inside what common/tz accepts, so no sum overflows. */
    if (q->now_ms > INSTANT_MAX / 2 || q->now_ms < -(INSTANT_MAX / 2))
        return cf_fail(errbuf, errlen, CF_EINVAL, "now %lld out of range", (long long)q->now_ms);
    return CF_OK;
}

/* Consultations booked on the specialist's local date y-m-d (entries for one date add up). */
static long booked_on(const struct scheduler_specialist *sp, int y, int m, int d)
{
    long n = 0;
    for (size_t i = 0; i < sp->nbooked; i++)
        if (sp->booked[i].year == y && sp->booked[i].month == m && sp->booked[i].day == d)
            n += sp->booked[i].count;
    return n;
}

static bool held(const struct scheduler_specialist *sp, int64_t start)
{
    for (size_t i = 0; i < sp->nheld; i++)
        if (sp->held[i] == start)
            return true;
    return false;
}

/* Whether the UTC offset of tz is the same over all of [start, end): then the wall clock runs
 * exactly as long as the slot. Offsets change at most a few times a year, never twice within
 * one slot, so comparing the two ends is enough. */
static cf_status steady(struct cf_tz *tz, int64_t start, int64_t end, bool *ok, char *errbuf,
                        size_t errlen)
{
    int32_t a = 0, b = 0;
    cf_status st = cf_tz_offset(tz, start, &a, errbuf, errlen);
    if (st == CF_OK)
        st = cf_tz_offset(tz, end - 1, &b, errbuf, errlen);
    *ok = st == CF_OK && a == b;
    return st;
}

/* Whether [start, end) lies inside one of the patient's windows, in the patient's zone. */
static cf_status suits_patient(struct cf_tz *ptz, const struct scheduler_patient *pt, int64_t start,
                               int64_t end, bool *ok, char *errbuf, size_t errlen)
{
    *ok = false;
    if (pt->nwindows == 0) {
        *ok = true;
        return CF_OK;
    }
    bool same = false;
    cf_status st = steady(ptz, start, end, &same, errbuf, errlen);
    if (st != CF_OK || !same)
        return st;
    struct cf_tz_civil c;
    st = cf_tz_to_civil(ptz, start, &c, errbuf, errlen);
    if (st != CF_OK)
        return st;
    /* Seconds, not minutes: a zone's offset need not be whole minutes (old LMTs). With the
     * offset steady, the local end is the local start plus the slot's length; a slot that
     * crosses the patient's midnight fits no window, as windows never cross midnight. */
    long s = ((long)c.hour * 60 + c.minute) * 60 + c.second;
    long e = s + (long)((end - start) / 1000);
    for (size_t i = 0; i < pt->nwindows; i++) {
        const struct scheduler_range *w = &pt->windows[i];
        if (w->weekday == c.weekday && (long)w->start_min * 60 <= s && e <= (long)w->end_min * 60) {
            *ok = true;
            break;
        }
    }
    return CF_OK;
}

static bool leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Moves a civil date and its ISO weekday by one day, forwards (step 1) or back (-1). */
static void step_day(int *y, int *m, int *d, int *wd, int step)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    *wd = (*wd - 1 + step + 7) % 7 + 1;
    *d += step;
    if (*d < 1) {
        if (--*m < 1) {
            *m = 12;
            --*y;
        }
        *d = *m == 2 && leap_year(*y) ? 29 : days[*m - 1];
    } else if (*d > (*m == 2 && leap_year(*y) ? 29 : days[*m - 1])) {
        *d = 1;
        if (++*m > 12) {
            *m = 1;
            ++*y;
        }
    }
}

/* The search; has_old/old_start describe a booking being moved (scheduler_find_reschedule). */
static cf_status search(const struct scheduler_specialist *sp, const struct scheduler_patient *pt,
                        const struct scheduler_query *q, bool has_old, int64_t old_start,
                        bool *found, struct scheduler_slot *slot, char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    struct cf_tz *stz = NULL, *ptz = NULL;
    struct cf_tz_set *own = NULL, *zones = q == NULL ? NULL : q->zones;
    struct cf_tz_civil day, old_day;
    struct scheduler_slot best;
    bool have = false;
    long best_index = 0;

    if (sp == NULL || pt == NULL || q == NULL || found == NULL || slot == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "slot search: NULL argument");
    *found = false;
    memset(&best, 0, sizeof best);
    st = check_input(sp, pt, q, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    if (zones == NULL) {
        if ((st = cf_tz_set_new(&own)) != CF_OK) {
            st = cf_fail(errbuf, errlen, st, "out of memory");
            goto out;
        }
        zones = own;
    }
    st = cf_tz_set_get(zones, sp->time_zone, &stz, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    if (pt->nwindows > 0) {
        st = cf_tz_set_get(zones, pt->time_zone, &ptz, errbuf, errlen);
        if (st != CF_OK)
            goto out;
    }
    if (has_old) {
        if (old_start > INSTANT_MAX || old_start < -INSTANT_MAX) {
            st = cf_fail(errbuf, errlen, CF_EINVAL, "old start out of range");
            goto out;
        }
        st = cf_tz_to_civil(stz, old_start, &old_day, errbuf, errlen);
        if (st != CF_OK)
            goto out;
    }

    const int64_t earliest = q->now_ms + q->lead_ms;
    const int64_t limit = q->now_ms + q->horizon_ms;
    const int64_t slot_ms = sp->slot_minutes * MIN_MS;
    if (earliest >= limit)
        goto out; /* a lead at or past the horizon: nothing can qualify */

    /* Walk the specialist's local days from the day before the one `earliest` falls on (a slot
     * that starts there can still be the first qualifying one only if it is later, which the
     * time checks sort out) until a day that starts at or after the limit. */
    st = cf_tz_to_civil(stz, earliest, &day, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    step_day(&day.year, &day.month, &day.day, &day.weekday, -1);
    const long ndays = (long)((limit - earliest) / DAY_MS) + 3;
    for (long i = 0; i < ndays; i++, step_day(&day.year, &day.month, &day.day, &day.weekday, 1)) {
        /* Local days follow each other in time, so once a slot is found only the next day
         * (in case of an odd midnight transition) can hold an earlier one. */
        if (have && i > best_index + 1)
            break;
        int64_t midnight = 0;
        enum cf_tz_local kind;
        st = cf_tz_from_civil(stz, day.year, day.month, day.day, 0, 0, &midnight, NULL, &kind,
                              errbuf, errlen);
        if (st != CF_OK)
            goto out;
        if (midnight >= limit)
            break;
        long count = booked_on(sp, day.year, day.month, day.day);
        if (has_old && old_day.year == day.year && old_day.month == day.month &&
            old_day.day == day.day)
            count--; /* the booking being moved frees its place on its day */
        if (count >= sp->daily_cap)
            continue;
        for (size_t r = 0; r < sp->nhours; r++) {
            const struct scheduler_range *h = &sp->hours[r];
            if (h->weekday != day.weekday)
                continue;
            /* Wall-clock stepping from the range's start: the slots a person reads off the
             * calendar (09:00, 09:30, ...), whatever the offset of the day. */
            for (int m = h->start_min; m + sp->slot_minutes <= h->end_min; m += sp->slot_minutes) {
                int64_t start = 0;
                st = cf_tz_from_civil(stz, day.year, day.month, day.day, m / 60, m % 60, &start,
                                      NULL, &kind, errbuf, errlen);
                if (st != CF_OK)
                    goto out;
                /* A time the clocks skip is not offered; an overlap offers its first instant. */
                if (kind == CF_TZ_LOCAL_GAP || start < earliest || start >= limit)
                    continue;
                if (have && start >= best.start_ms)
                    continue;
                if (held(sp, start) || (has_old && start == old_start))
                    continue;
                bool ok = false;
                st = steady(stz, start, start + slot_ms, &ok, errbuf, errlen);
                if (st != CF_OK)
                    goto out;
                if (!ok)
                    continue;
                st = suits_patient(ptz, pt, start, start + slot_ms, &ok, errbuf, errlen);
                if (st != CF_OK)
                    goto out;
                if (!ok)
                    continue;
                best.start_ms = start;
                best.end_ms = start + slot_ms;
                best.year = day.year;
                best.month = day.month;
                best.day = day.day;
                best_index = i;
                have = true;
            }
        }
    }
    if (have) {
        *slot = best;
        *found = true;
    }
out:
    cf_tz_set_free(own);
    return st;
}

cf_status scheduler_find_slot(const struct scheduler_specialist *sp,
                              const struct scheduler_patient *pt, const struct scheduler_query *q,
                              bool *found, struct scheduler_slot *slot, char *errbuf, size_t errlen)
{
    return search(sp, pt, q, false, 0, found, slot, errbuf, errlen);
}

cf_status scheduler_find_reschedule(const struct scheduler_specialist *sp,
                                    const struct scheduler_patient *pt,
                                    const struct scheduler_query *q, int64_t old_start_ms,
                                    bool *found, struct scheduler_slot *slot, char *errbuf,
                                    size_t errlen)
{
    return search(sp, pt, q, true, old_start_ms, found, slot, errbuf, errlen);
}
