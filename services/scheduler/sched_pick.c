/* sched_pick.c — roster parsing, candidates and the search across specialists (sched_pick.h). */
#include "sched_pick.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char *const weekdays[] = {"UNKNOWN",  "MONDAY", "TUESDAY",  "WEDNESDAY",
                                       "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"};

static int weekday_of(const char *symbol)
{
    for (int i = 1; symbol != NULL && i <= 7; i++)
        if (strcmp(symbol, weekdays[i]) == 0)
            return i;
    return 0;
}

static bool id_valid(const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;
    if (n == 0 || n > SCHED_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '.' && id[i] != '_' && id[i] != '-')
            return false;
    return true;
}

void sched_language_primary(const char *tag, char out[9])
{
    size_t n = 0;
    out[0] = '\0';
    if (tag == NULL)
        return;
    while (tag[n] != '\0' && tag[n] != '-' && tag[n] != '_') {
        if (n >= 8 || !isalpha((unsigned char)tag[n])) {
            out[0] = '\0';
            return;
        }
        out[n] = (char)tolower((unsigned char)tag[n]);
        n++;
    }
    out[n] = '\0';
    if (n < 2)
        out[0] = '\0';
}

/* Parses a list of {weekday, <from_key>, <to_key>} into ranges; *n their count. */
static cf_status ranges_parse(const json_t *list, const char *name, const char *from_key,
                              const char *to_key, struct scheduler_range *ranges, size_t *n,
                              char *errbuf, size_t errlen)
{
    size_t i;
    const json_t *r;
    *n = 0;
    if (list == NULL || json_is_null(list))
        return CF_OK;
    if (!json_is_array(list))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.%s: not an array", name);
    if (json_array_size(list) > SCHEDULER_MAX_RANGES)
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.%s: more than %d ranges", name,
                       SCHEDULER_MAX_RANGES);
    json_array_foreach(list, i, r)
    {
        struct scheduler_range *out = &ranges[*n];
        out->weekday = weekday_of(json_string_value(json_object_get(r, "weekday")));
        if (out->weekday == 0 ||
            scheduler_parse_hhmm(json_string_value(json_object_get(r, from_key)),
                                 &out->start_min) != CF_OK ||
            scheduler_parse_hhmm(json_string_value(json_object_get(r, to_key)), &out->end_min) !=
                CF_OK ||
            out->start_min >= out->end_min)
            return cf_fail(errbuf, errlen, CF_EINVAL, "$.%s[%zu]: bad weekday or times", name, i);
        (*n)++;
    }
    return CF_OK;
}

cf_status sched_specialist_parse(const json_t *entry, struct sched_specialist *sp, char *errbuf,
                                 size_t errlen)
{
    const char *id = json_string_value(json_object_get(entry, "specialist_id"));
    const char *name = json_string_value(json_object_get(entry, "name"));
    const char *zone = json_string_value(json_object_get(entry, "time_zone"));
    const json_t *langs = json_object_get(entry, "languages");
    const json_t *conds = json_object_get(entry, "conditions");
    const json_t *active = json_object_get(entry, "active");
    json_int_t slot = json_integer_value(json_object_get(entry, "slot_minutes"));
    json_int_t cap = json_integer_value(json_object_get(entry, "daily_cap"));
    size_t i;
    const json_t *v;
    cf_status st;

    memset(sp, 0, sizeof(*sp));
    if (!id_valid(id))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.specialist_id: not [A-Za-z0-9._-]{1,64}");
    if (name == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.name: missing");
    if (!cf_tz_known(zone))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.time_zone: not a known IANA zone");
    if (slot < SCHEDULER_MIN_SLOT_MINUTES || slot > SCHEDULER_MAX_SLOT_MINUTES)
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.slot_minutes: out of bounds");
    if (cap < 0 || cap > 1000)
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.daily_cap: out of bounds");
    if (!json_is_array(langs) || json_array_size(langs) > SCHED_LANG_MAX)
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.languages: not an array of at most %d",
                       SCHED_LANG_MAX);
    if (!json_is_array(conds) || json_array_size(conds) > SCHED_CONDITION_MAX)
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.conditions: not an array of at most %d",
                       SCHED_CONDITION_MAX);
    st = ranges_parse(json_object_get(entry, "weekly_hours"), "weekly_hours", "start", "end",
                      sp->hours, &sp->nhours, errbuf, errlen);
    if (st != CF_OK)
        return st;
    (void)snprintf(sp->id, sizeof(sp->id), "%s", id);
    (void)snprintf(sp->time_zone, sizeof(sp->time_zone), "%s", zone);
    sp->slot_minutes = (int)slot;
    sp->daily_cap = (int)cap;
    sp->active = active == NULL || json_is_true(active);
    json_array_foreach(langs, i, v)
    {
        sched_language_primary(json_string_value(v), sp->languages[sp->nlanguages]);
        if (sp->languages[sp->nlanguages][0] != '\0')
            sp->nlanguages++;
    }
    json_array_foreach(conds, i, v)
    {
        const char *c = json_string_value(v);
        if (c != NULL && strlen(c) <= SCHED_SYMBOL_MAX)
            (void)snprintf(sp->conditions[sp->nconditions++], SCHED_SYMBOL_MAX + 1, "%s", c);
    }
    if ((sp->name = strdup(name)) == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
    return CF_OK;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct sched_specialist *)a)->id,
                  ((const struct sched_specialist *)b)->id);
}

void sched_roster_clear(struct sched_roster *roster)
{
    if (roster == NULL)
        return;
    for (size_t i = 0; i < roster->n; i++)
        free(roster->items[i].name);
    free(roster->items);
    roster->items = NULL;
    roster->n = roster->skipped = 0;
}

cf_status sched_roster_build(const json_t *entries, struct sched_roster *out, char *errbuf,
                             size_t errlen)
{
    const char *key;
    const json_t *entry;
    size_t cap = json_object_size(entries);
    char why[256];

    out->items = NULL;
    out->n = out->skipped = 0;
    if (cap > SCHED_SPECIALISTS_MAX)
        return cf_fail(errbuf, errlen, CF_ETOOBIG, "roster: more than %d specialists",
                       SCHED_SPECIALISTS_MAX);
    if (cap > 0 && (out->items = calloc(cap, sizeof(*out->items))) == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
    json_object_foreach((json_t *)entries, key, entry)
    {
        cf_status st = sched_specialist_parse(entry, &out->items[out->n], why, sizeof(why));
        if (st == CF_ENOMEM) {
            sched_roster_clear(out);
            return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
        }
        if (st != CF_OK) {
            out->skipped++;
            CF_LOG(CF_LOG_WARN, "specialist_skipped",
                   CF_LOG_ID("specialist_id", id_valid(key) ? key : "(bad id)"),
                   CF_LOG_ERR("reason", why));
            continue;
        }
        out->n++;
    }
    if (out->n > 1)
        qsort(out->items, out->n, sizeof(*out->items), by_id);
    return CF_OK;
}

long sched_roster_find(const struct sched_roster *roster, const char *id)
{
    for (size_t i = 0; id != NULL && i < roster->n; i++)
        if (strcmp(roster->items[i].id, id) == 0)
            return (long)i;
    return -1;
}

static bool sees(const struct sched_specialist *sp, const char *category)
{
    for (size_t i = 0; category != NULL && i < sp->nconditions; i++)
        if (strcmp(sp->conditions[i], category) == 0)
            return true;
    return false;
}

static bool speaks(const struct sched_specialist *sp, const char *primary)
{
    for (size_t i = 0; primary[0] != '\0' && i < sp->nlanguages; i++)
        if (strcmp(sp->languages[i], primary) == 0)
            return true;
    return false;
}

void sched_candidates(const struct sched_roster *roster, const char *category,
                      const char *language, size_t *idx, size_t *n, bool *interpreter)
{
    char primary[9];
    sched_language_primary(language, primary);
    *n = 0;
    *interpreter = false;
    for (size_t i = 0; i < roster->n; i++)
        if (roster->items[i].active && sees(&roster->items[i], category) &&
            speaks(&roster->items[i], primary))
            idx[(*n)++] = i;
    if (*n > 0 || strcmp(primary, "en") == 0)
        return;
    /* Nobody who sees the condition speaks the patient's language: an English-speaking
     * specialist, and the care manager's interpreter joins the call. */
    for (size_t i = 0; i < roster->n; i++)
        if (roster->items[i].active && sees(&roster->items[i], category) &&
            speaks(&roster->items[i], "en"))
            idx[(*n)++] = i;
    *interpreter = *n > 0;
}

cf_status sched_patient_parse(const json_t *recipient, struct scheduler_range *ranges,
                              struct scheduler_patient *pt, char *errbuf, size_t errlen)
{
    const char *zone = json_string_value(json_object_get(recipient, "time_zone"));
    size_t n = 0;
    cf_status st = ranges_parse(json_object_get(recipient, "contact_windows"),
                                "recipient.contact_windows", "from", "to", ranges, &n, errbuf,
                                errlen);
    if (st != CF_OK)
        return st;
    if (n > 0 && !cf_tz_known(zone))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.recipient.time_zone: not a known IANA zone");
    pt->time_zone = zone;
    pt->windows = ranges;
    pt->nwindows = n;
    return CF_OK;
}

cf_status sched_day_counts(struct cf_tz_set *zones, const struct sched_specialist *sp,
                           const int64_t *held, size_t nheld, struct scheduler_day_count **booked,
                           size_t *nbooked, char *errbuf, size_t errlen)
{
    struct cf_tz *tz = NULL;
    struct scheduler_day_count *days = NULL;
    size_t n = 0;
    cf_status st = CF_OK;

    *booked = NULL;
    *nbooked = 0;
    if (nheld == 0)
        return CF_OK;
    if ((days = calloc(nheld, sizeof(*days))) == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
    if ((st = cf_tz_set_get(zones, sp->time_zone, &tz, errbuf, errlen)) != CF_OK)
        goto out;
    for (size_t i = 0; i < nheld; i++) {
        struct cf_tz_civil c;
        if ((st = cf_tz_to_civil(tz, held[i], &c, errbuf, errlen)) != CF_OK)
            goto out;
        size_t k = 0;
        while (k < n && !(days[k].year == c.year && days[k].month == c.month &&
                          days[k].day == c.day))
            k++;
        if (k == n)
            days[n++] = (struct scheduler_day_count){c.year, c.month, c.day, 0};
        days[k].count++;
    }
    *booked = days;
    *nbooked = n;
    days = NULL;
out:
    free(days);
    return st;
}

cf_status sched_day_bounds(struct cf_tz_set *zones, const char *time_zone, int y, int m, int d,
                           int64_t *from, int64_t *to, char *errbuf, size_t errlen)
{
    struct cf_tz *tz = NULL;
    enum cf_tz_local kind;
    cf_status st = cf_tz_set_get(zones, time_zone, &tz, errbuf, errlen);
    if (st == CF_OK)
        st = cf_tz_from_civil(tz, y, m, d, 0, 0, from, NULL, &kind, errbuf, errlen);
    if (st == CF_OK)
        st = cf_tz_from_civil(tz, y, m, d, 24, 0, to, NULL, &kind, errbuf, errlen);
    return st;
}

/* One specialist's search with the held starts, into *found / *slot. */
static cf_status search_one(const struct sched_specialist *sp, const struct sched_held *held,
                            const struct scheduler_patient *pt, const struct scheduler_query *q,
                            bool *found, struct scheduler_slot *slot, char *errbuf, size_t errlen)
{
    struct scheduler_day_count *booked = NULL;
    size_t nbooked = 0;
    cf_status st =
        sched_day_counts(q->zones, sp, held->starts, held->n, &booked, &nbooked, errbuf, errlen);
    if (st == CF_OK) {
        struct scheduler_specialist s = {sp->time_zone, sp->hours,   sp->nhours,
                                         sp->slot_minutes, sp->daily_cap, booked,
                                         nbooked,          held->starts,  held->n};
        st = scheduler_find_slot(&s, pt, q, found, slot, errbuf, errlen);
    }
    free(booked);
    return st;
}

cf_status sched_pick_slot(const struct sched_roster *roster, const size_t *cands, size_t ncands,
                          const struct sched_held *held, const struct scheduler_patient *pt,
                          const struct scheduler_query *q, const char *prefer, bool *found,
                          size_t *chosen, struct scheduler_slot *slot, char *errbuf,
                          size_t errlen)
{
    struct scheduler_query base = *q, shrunk;
    struct cf_tz_set *own = NULL;
    struct scheduler_slot s;
    char why[256];
    bool f;
    cf_status st = CF_OK;

    *found = false;
    if (base.zones == NULL) { /* every candidate's search shares the zones it opens */
        if (cf_tz_set_new(&own) != CF_OK)
            return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
        base.zones = own;
    }
    shrunk = base;
    for (size_t i = 0; prefer != NULL && i < ncands; i++) {
        if (strcmp(roster->items[cands[i]].id, prefer) != 0)
            continue;
        st = search_one(&roster->items[cands[i]], &held[i], pt, &base, &f, &s, why, sizeof(why));
        if (st == CF_ENOMEM) {
            (void)cf_fail(errbuf, errlen, st, "%s", why);
            goto out;
        }
        if (st == CF_OK && f) {
            *found = true;
            *chosen = i;
            *slot = s;
            goto out;
        }
        break;
    }
    st = CF_OK;
    for (size_t i = 0; i < ncands; i++) {
        const struct sched_specialist *sp = &roster->items[cands[i]];
        cf_status one = search_one(sp, &held[i], pt, &shrunk, &f, &s, why, sizeof(why));
        if (one == CF_ENOMEM) {
            st = cf_fail(errbuf, errlen, one, "%s", why);
            goto out;
        }
        if (one != CF_OK) {
            CF_LOG(CF_LOG_WARN, "specialist_search_failed", CF_LOG_ID("specialist_id", sp->id),
                   CF_LOG_ERR("reason", why));
            continue;
        }
        if (!f)
            continue;
        *found = true;
        *chosen = i;
        *slot = s;
        /* Only a strictly earlier start can beat this one (ties keep the smaller id). */
        shrunk.horizon_ms = s.start_ms - shrunk.now_ms;
        if (shrunk.horizon_ms <= shrunk.lead_ms)
            break;
    }
out:
    cf_tz_set_free(own);
    return st;
}
