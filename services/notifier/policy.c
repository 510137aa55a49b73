/* policy.c — see policy.h. */
#include "policy.h"

#include <stdio.h>

cf_status notifier_parse_hhmm(const char *text, int *minutes)
{
    if (text == NULL || text[0] < '0' || text[0] > '2' || text[1] < '0' || text[1] > '9' ||
        text[2] != ':' || text[3] < '0' || text[3] > '5' || text[4] < '0' || text[4] > '9' ||
        text[5] != '\0')
        return CF_EINVAL;
    int h = (text[0] - '0') * 10 + (text[1] - '0');
    int m = (text[3] - '0') * 10 + (text[4] - '0');
    if (h > 23)
        return CF_EINVAL;
    *minutes = h * 60 + m;
    return CF_OK;
}

bool notifier_quiet_at(const struct notifier_quiet *q, int minute_of_day)
{
    if (q->start_min == q->end_min)
        return false;
    if (q->start_min < q->end_min)
        return minute_of_day >= q->start_min && minute_of_day < q->end_min;
    return minute_of_day >= q->start_min || minute_of_day < q->end_min;
}

/* The instant of local date (y, m, d) at minute_of_day in tz. */
static cf_status local_instant(struct cf_tz *tz, int y, int m, int d, int minute_of_day,
                               int64_t *out_ms, char *errbuf, size_t errlen)
{
    enum cf_tz_local kind;
    return cf_tz_from_civil(tz, y, m, d, minute_of_day / 60, minute_of_day % 60, out_ms, NULL,
                            &kind, errbuf, errlen);
}

/* The local date after the one holding now_ms: noon of now's date plus a day is the next date
 * whatever daylight saving does (days are 23 to 25 hours long). */
static cf_status next_date(struct cf_tz *tz, const struct cf_tz_civil *now,
                           struct cf_tz_civil *next, char *errbuf, size_t errlen)
{
    int64_t noon = 0;
    cf_status st =
        local_instant(tz, now->year, now->month, now->day, 12 * 60, &noon, errbuf, errlen);
    return st == CF_OK ? cf_tz_to_civil(tz, noon + 86400000LL, next, errbuf, errlen) : st;
}

cf_status notifier_quiet_end(struct cf_tz *tz, const struct notifier_quiet *q, int64_t now_ms,
                             int64_t *out_ms, char *errbuf, size_t errlen)
{
    struct cf_tz_civil now, day;
    cf_status st = cf_tz_to_civil(tz, now_ms, &now, errbuf, errlen);
    if (st != CF_OK)
        return st;
    int minute = now.hour * 60 + now.minute;
    *out_ms = now_ms;
    if (!notifier_quiet_at(q, minute))
        return CF_OK;
    day = now;
    /* Quiet hours that span midnight end tomorrow when it is still evening. */
    if (q->start_min > q->end_min && minute >= q->start_min &&
        (st = next_date(tz, &now, &day, errbuf, errlen)) != CF_OK)
        return st;
    return local_instant(tz, day.year, day.month, day.day, q->end_min, out_ms, errbuf, errlen);
}

cf_status notifier_next_day_at(struct cf_tz *tz, int64_t now_ms, int minute_of_day, int64_t *out_ms,
                               char *errbuf, size_t errlen)
{
    struct cf_tz_civil now, next;
    cf_status st = cf_tz_to_civil(tz, now_ms, &now, errbuf, errlen);
    if (st == CF_OK)
        st = next_date(tz, &now, &next, errbuf, errlen);
    if (st == CF_OK)
        st = local_instant(tz, next.year, next.month, next.day, minute_of_day, out_ms, errbuf,
                           errlen);
    return st;
}

cf_status notifier_local_day(struct cf_tz *tz, int64_t now_ms, char day[9], char *errbuf,
                             size_t errlen)
{
    struct cf_tz_civil now;
    cf_status st = cf_tz_to_civil(tz, now_ms, &now, errbuf, errlen);
    if (st == CF_OK) {
        /* ICU's civil fields are in range (month 1-12, day 1-31); unsigned keeps gcc sure. */
        unsigned y = (unsigned)now.year % 10000u, m = (unsigned)now.month % 100u,
                 d = (unsigned)now.day % 100u;
        (void)snprintf(day, 9, "%04u%02u%02u", y, m, d);
    }
    return st;
}

int64_t notifier_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, uint32_t rnd)
{
    int64_t d = base_ms;
    for (int i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    /* Upper-half jitter: at least half the pause, so backoff still backs off. */
    return d / 2 + (int64_t)((uint64_t)rnd % (uint64_t)(d / 2 + 1));
}
