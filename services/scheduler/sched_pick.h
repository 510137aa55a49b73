/* sched_pick.h — which specialist and which slot: the roster entries (caseflow.roster.Specialist
 * in caseflow's JSON form, from common/roster_view) parsed into plain structs, the candidates
 * for a case (condition, language with the English fallback, active only), and the earliest
 * slot across them (slots.h per specialist, the horizon shrinking to the best start found so
 * far, ties to the smaller specialist id). Pure: the holds already taken come in as arrays
 * (read from Redis by the caller). README.md ("Choosing the specialist") has the rules. */
#ifndef SCHEDULER_SCHED_PICK_H
#define SCHEDULER_SCHED_PICK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slots.h"
#include "status.h"
#include "tz.h"

/* Bounds on one roster entry; an entry past them is skipped (logged by id). */
#define SCHED_ID_MAX 64         /* specialist ids, [A-Za-z0-9._-] (they go into Redis keys) */
#define SCHED_LANG_MAX 16       /* languages of one specialist */
#define SCHED_CONDITION_MAX 48  /* conditions of one specialist */
#define SCHED_SYMBOL_MAX 48     /* one ConditionCategory symbol */
#define SCHED_SPECIALISTS_MAX 2000

/* One specialist, parsed. */
struct sched_specialist {
    char id[SCHED_ID_MAX + 1];
    char *name; /* owned */
    char time_zone[CF_TZ_ID_MAX + 1];
    struct scheduler_range hours[SCHEDULER_MAX_RANGES];
    size_t nhours;
    int slot_minutes;
    int daily_cap;
    bool active;
    char languages[SCHED_LANG_MAX][9]; /* primary subtags, lower case */
    size_t nlanguages;
    char conditions[SCHED_CONDITION_MAX][SCHED_SYMBOL_MAX + 1];
    size_t nconditions;
};

/* The parsed roster, sorted by id. */
struct sched_roster {
    struct sched_specialist *items;
    size_t n;
    size_t skipped; /* entries that did not parse */
};

/* Parses every entry of entries (id -> Specialist JSON, cf_roster_view_entries) into *out,
 * sorted by id; entries that do not parse (bad zone, hours, slot length, id) are skipped,
 * logged by id and counted. On failure (CF_ENOMEM, CF_ETOOBIG past SCHED_SPECIALISTS_MAX)
 * *out is empty. Free with sched_roster_clear. */
cf_status sched_roster_build(const json_t *entries, struct sched_roster *out, char *errbuf,
                             size_t errlen);

/* Parses one Specialist record into *sp (sp->name is then the caller's: sched_roster_clear or
 * free). CF_EINVAL naming the field, CF_ENOMEM. */
cf_status sched_specialist_parse(const json_t *entry, struct sched_specialist *sp, char *errbuf,
                                 size_t errlen);

/* Frees the roster's entries; NULL-safe, leaves it empty. */
void sched_roster_clear(struct sched_roster *roster);

/* The index of the specialist with id, or -1. */
long sched_roster_find(const struct sched_roster *roster, const char *id);

/* The primary subtag of a BCP 47 tag, lower case ("pt-BR" -> "pt") into out (9 bytes); ""
 * for NULL or a tag whose primary subtag is not 2-8 letters. */
void sched_language_primary(const char *tag, char out[9]);

/* The candidates for a case: the indexes (ascending, i.e. by id) of active specialists who see
 * category and speak language (primary subtags compared); if none does, those of them who speak
 * English, and *interpreter is set true (the care manager's interpreter joins the call).
 * idx must hold roster->n entries. *n is 0 when no active specialist sees the condition. */
void sched_candidates(const struct sched_roster *roster, const char *category,
                      const char *language, size_t *idx, size_t *n, bool *interpreter);

/* The patient of a search from a Recipient (time_zone, contact_windows) into *pt, whose
 * windows point into ranges (SCHEDULER_MAX_RANGES entries). CF_EINVAL naming the field. */
cf_status sched_patient_parse(const json_t *recipient, struct scheduler_range *ranges,
                              struct scheduler_patient *pt, char *errbuf, size_t errlen);

/* The slot starts (UTC ms) someone else holds with one specialist; any order. */
struct sched_held {
    const int64_t *starts;
    size_t n;
};

/* The search across the candidates cands[0..ncands) (roster indexes; held[i] belongs to
 * cands[i]): if prefer is a candidate's id, that specialist alone is searched first and wins
 * with any slot; otherwise (or if it has none) every candidate is searched in order, each with
 * the horizon shrunk to the best start so far, so a later one wins only with an earlier start
 * (ties stay with the smaller id). Day counts are derived from the held starts in each
 * specialist's zone. On CF_OK *found says whether a slot exists; if so *chosen is the index in
 * cands and *slot the slot. A specialist whose search fails (bad data) is skipped with a
 * warning. CF_ENOMEM. */
cf_status sched_pick_slot(const struct sched_roster *roster, const size_t *cands, size_t ncands,
                          const struct sched_held *held, const struct scheduler_patient *pt,
                          const struct scheduler_query *q, const char *prefer, bool *found,
                          size_t *chosen, struct scheduler_slot *slot, char *errbuf,
                          size_t errlen);

/* The day counts of held starts in sp's zone (from zones, which must not be NULL) into *booked
 * (the caller frees it; NULL when nheld is 0) and *nbooked. CF_EINVAL, CF_ENOMEM. */
cf_status sched_day_counts(struct cf_tz_set *zones, const struct sched_specialist *sp,
                           const int64_t *held, size_t nheld,
                           struct scheduler_day_count **booked, size_t *nbooked, char *errbuf,
                           size_t errlen);

/* The UTC bounds [*from, *to) of the specialist's local day y-m-d (the daily cap's day), the
 * zone from zones (not NULL). CF_EINVAL, CF_ENOMEM. */
cf_status sched_day_bounds(struct cf_tz_set *zones, const char *time_zone, int y, int m, int d,
                           int64_t *from, int64_t *to, char *errbuf, size_t errlen);

#endif
