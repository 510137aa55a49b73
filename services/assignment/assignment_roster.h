/* assignment_roster.h — the care managers assignment matches against, rebuilt from the roster
 * view (common/roster_view.h) whenever its version changes, and the load-independent part of
 * the matching rule computed per case: the candidates handed to the Redis script.
 *
 * The split (README, "How a case is matched"): everything that depends only on the roster and
 * the case — active, capacity, urgent-capable, which language tier and region a manager is in —
 * is computed here in C; everything that depends on the load (active cases, last assignment, the
 * patient's earlier manager) is read and decided by the script, atomically across replicas.
 * Nothing here talks to a server. */
#ifndef ASSIGNMENT_ROSTER_H
#define ASSIGNMENT_ROSTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "matching.h"
#include "status.h"

/* Most managers one roster holds: the script unpacks the candidates' ids into one HMGET, and
 * Lua's C stack takes about 8,000 values. Managers past it are left out (logged). */
#define ASSIGNMENT_ROSTER_MAX 4000

/* The language tier of a manager for one case; smaller is better (matching.h's rule):
 * speaks the patient's language and covers the country, speaks it, English (interpreter) and
 * covers the country, English (interpreter), neither — eligible only as the returning patient's
 * manager. */
enum assignment_tier {
    ASSIGNMENT_TIER_LANGUAGE_REGION = 0,
    ASSIGNMENT_TIER_LANGUAGE = 1,
    ASSIGNMENT_TIER_INTERPRETER_REGION = 2,
    ASSIGNMENT_TIER_INTERPRETER = 3,
    ASSIGNMENT_TIER_NONE = 4,
};

/* The managers of a roster view, as matching.h's structs. Every string points into entries, a
 * copy owned by the roster, so the view may change under it. active_cases and
 * last_assigned_ms are 0 / ASSIGNMENT_NEVER_ASSIGNED: the load lives in Redis. */
struct assignment_roster {
    json_t *entries;
    struct assignment_manager *managers;
    const char **names;   /* names[i]: managers[i]'s name (personal data: events only) */
    const char **emails;  /* emails[i]: where managers[i] is notified (events only) */
    const char **strings; /* storage of every manager's languages and countries */
    size_t count;
    size_t skipped; /* entries left out: no id, name, email or capacity, or past the maximum */
};

/* Builds *out from the roster view's entries (cf_roster_view_entries: id -> CareManager in
 * caseflow's JSON form; NULL is an empty roster). An entry without a string manager_id, name
 * and email or an integer capacity is skipped and counted; absent languages / countries are
 * empty, absent urgent_capable false, absent active true (the schema's defaults). On CF_OK
 * *out is the caller's, emptied with assignment_roster_clear; CF_ENOMEM leaves it empty. */
cf_status assignment_roster_build(const json_t *entries, struct assignment_roster *out,
                                  char *errbuf, size_t errlen);

/* Frees what a roster holds and zeroes it. NULL-safe, idempotent. */
void assignment_roster_clear(struct assignment_roster *r);

/* The tier of manager m for a patient speaking language in country (both may be NULL or ""). */
enum assignment_tier assignment_tier_of(const struct assignment_manager *m, const char *language,
                                        const char *country);

/* One manager as the script sees it for one case. */
struct assignment_candidate {
    size_t index; /* into the roster */
    enum assignment_tier tier;
    bool urgent_ok; /* may take this case: not URGENT, or urgent-capable */
};

/* Writes to out[0..] (room for nroster entries) the candidates for case c, and returns how
 * many: every active manager with a capacity above 0, in roster order, with its tier and
 * whether it may take the case's priority. For an URGENT case the managers who may not take it
 * stay in (urgent_ok false) only when their tier is below ASSIGNMENT_TIER_NONE, so the script
 * can tell NO_URGENT_ROOM from NO_ROOM. c->previous_manager is not looked at: the script reads
 * the patient's earlier manager itself. */
size_t assignment_candidates(const struct assignment_case *c,
                             const struct assignment_manager *roster, size_t nroster,
                             struct assignment_candidate *out);

/* The candidates for c as the script's JSON argument, a new string the caller frees:
 *   [{"id": ..., "tier": 0..4, "cap": capacity, "u": 0|1, "name": ..., "email": ...}, ...]
 * names and emails (each may be NULL, entries too) give each manager's name and email, stored
 * with the assignment so that a CaseAssigned emitted again later is the same event; a missing
 * name is the id, a missing email "". CF_ENOMEM. */
cf_status assignment_candidates_json(const struct assignment_case *c,
                                     const struct assignment_manager *roster,
                                     const char *const *names, const char *const *emails,
                                     size_t nroster, char **out);

#endif
