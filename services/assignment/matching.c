/* matching.c — assignment's matching rule and pending order as pure functions. */
#include "matching.h"

#include <string.h>

/* The language every fallback manager must speak: the interpreter translates to and from it. */
#define FALLBACK_LANGUAGE "en"

static const char *const reason_codes[] = {
    [ASSIGNMENT_REASON_RETURNING] = "RETURNING",
    [ASSIGNMENT_REASON_LANGUAGE_REGION] = "LANGUAGE_REGION",
    [ASSIGNMENT_REASON_LANGUAGE] = "LANGUAGE",
    [ASSIGNMENT_REASON_INTERPRETER_REGION] = "INTERPRETER_REGION",
    [ASSIGNMENT_REASON_INTERPRETER] = "INTERPRETER",
    [ASSIGNMENT_REASON_NO_ROOM] = "NO_ROOM",
    [ASSIGNMENT_REASON_NO_URGENT_ROOM] = "NO_URGENT_ROOM",
};

const char *assignment_reason_code(enum assignment_reason reason)
{
    if ((size_t)reason >= sizeof reason_codes / sizeof reason_codes[0] ||
        reason_codes[reason] == NULL)
        return "UNKNOWN";
    return reason_codes[reason];
}

/* ASCII only on purpose: language subtags and country codes are ASCII by definition, and the
 * locale must not change how replicas compare them. */
static char ascii_lower(char ch)
{
    return (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
}

/* Length of the primary subtag: up to the first '-' (BCP 47) or '_' (POSIX locale names, which
 * rosters typed by hand sometimes use). */
static size_t primary_len(const char *tag)
{
    size_t n = 0;
    while (tag[n] != '\0' && tag[n] != '-' && tag[n] != '_')
        n++;
    return n;
}

static bool ascii_equal_n(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
    return true;
}

bool assignment_language_match(const char *tag, const char *other)
{
    if (tag == NULL || other == NULL)
        return false;
    size_t n = primary_len(tag);
    return n > 0 && primary_len(other) == n && ascii_equal_n(tag, other, n);
}

static bool speaks(const struct assignment_manager *m, const char *language)
{
    for (size_t i = 0; i < m->nlanguages; i++)
        if (assignment_language_match(m->languages[i], language))
            return true;
    return false;
}

static bool covers(const struct assignment_manager *m, const char *country)
{
    if (country == NULL || country[0] == '\0')
        return false;
    size_t n = strlen(country);
    for (size_t i = 0; i < m->ncountries; i++) {
        const char *own = m->countries[i];
        if (own != NULL && strlen(own) == n && ascii_equal_n(own, country, n))
            return true;
    }
    return false;
}

static bool has_room(const struct assignment_manager *m)
{
    return m->active && m->capacity > 0 && m->active_cases < m->capacity;
}

/* Eligible to take this case at all, whatever the language. */
static bool eligible(const struct assignment_manager *m, enum assignment_priority priority,
                     bool need_urgent)
{
    return has_room(m) &&
           (!need_urgent || priority != ASSIGNMENT_PRIORITY_URGENT || m->urgent_capable);
}

/* < 0 when a should be chosen before b among managers of the same language tier: the patient's
 * country first, then the lower active/capacity (cross-multiplied in 64 bits, so 3/10 beats 1/2
 * exactly and nothing overflows), then the longest idle, then the smaller id. */
static int better(const struct assignment_manager *a, const struct assignment_manager *b,
                  const char *country)
{
    bool ra = covers(a, country), rb = covers(b, country);
    if (ra != rb)
        return ra ? -1 : 1;
    int64_t la = (int64_t)a->active_cases * b->capacity;
    int64_t lb = (int64_t)b->active_cases * a->capacity;
    if (la != lb)
        return la < lb ? -1 : 1;
    if (a->last_assigned_ms != b->last_assigned_ms)
        return a->last_assigned_ms < b->last_assigned_ms ? -1 : 1;
    return strcmp(a->id, b->id);
}

/* The best eligible manager speaking language, or SIZE_MAX when there is none. */
static size_t best_speaker(const struct assignment_case *c, const struct assignment_manager *roster,
                           size_t nroster, const char *language, bool need_urgent)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < nroster; i++) {
        const struct assignment_manager *m = &roster[i];
        if (!eligible(m, c->priority, need_urgent) || !speaks(m, language))
            continue;
        if (best == SIZE_MAX || better(m, &roster[best], c->country) < 0)
            best = i;
    }
    return best;
}

/* The language tiers of the rule: the patient's language, else English with an interpreter.
 * Sets *interpreter for the second tier. */
static size_t best_by_language(const struct assignment_case *c,
                               const struct assignment_manager *roster, size_t nroster,
                               bool need_urgent, bool *interpreter)
{
    *interpreter = false;
    size_t best = best_speaker(c, roster, nroster, c->language, need_urgent);
    if (best != SIZE_MAX)
        return best;
    *interpreter = true;
    return best_speaker(c, roster, nroster, FALLBACK_LANGUAGE, need_urgent);
}

/* The patient's earlier manager if they can still take this case, else SIZE_MAX. Continuity
 * outranks language, region and load (the manager already knows the patient; if they do not
 * speak the language now asked for, an interpreter is flagged), but not urgency: an URGENT case
 * goes to an urgent-capable manager even if that means a new one. */
static size_t previous_of(const struct assignment_case *c, const struct assignment_manager *roster,
                          size_t nroster)
{
    if (c->previous_manager == NULL)
        return SIZE_MAX;
    for (size_t i = 0; i < nroster; i++)
        if (strcmp(roster[i].id, c->previous_manager) == 0)
            return eligible(&roster[i], c->priority, true) ? i : SIZE_MAX;
    return SIZE_MAX; /* left the roster (tombstone) */
}

cf_status assignment_match(const struct assignment_case *c, const struct assignment_manager *roster,
                           size_t nroster, struct assignment_choice *out, char *errbuf,
                           size_t errlen)
{
    if (c == NULL || out == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "assignment_match: case and out are required");
    if (roster == NULL && nroster > 0)
        return cf_fail(errbuf, errlen, CF_EINVAL, "assignment_match: roster is NULL");
    for (size_t i = 0; i < nroster; i++) {
        const struct assignment_manager *m = &roster[i];
        if (m->id == NULL)
            return cf_fail(errbuf, errlen, CF_EINVAL, "roster entry %zu has no id", i);
        if (m->active_cases < 0)
            return cf_fail(errbuf, errlen, CF_EINVAL, "manager %s: negative active count", m->id);
        if ((m->languages == NULL && m->nlanguages > 0) ||
            (m->countries == NULL && m->ncountries > 0))
            return cf_fail(errbuf, errlen, CF_EINVAL, "manager %s: NULL list", m->id);
    }

    memset(out, 0, sizeof *out);
    out->index = SIZE_MAX;

    size_t pick = previous_of(c, roster, nroster);
    if (pick != SIZE_MAX) {
        out->assigned = true;
        out->index = pick;
        out->manager_id = roster[pick].id;
        out->returning = true;
        out->interpreter = !speaks(&roster[pick], c->language);
        out->reason = ASSIGNMENT_REASON_RETURNING;
        return CF_OK;
    }

    bool interpreter = false;
    pick = best_by_language(c, roster, nroster, true, &interpreter);
    if (pick == SIZE_MAX) {
        /* Tell operators whether more urgent-capable capacity, not just capacity, is missing. */
        bool ignored = false;
        bool others = c->priority == ASSIGNMENT_PRIORITY_URGENT &&
                      best_by_language(c, roster, nroster, false, &ignored) != SIZE_MAX;
        out->reason = others ? ASSIGNMENT_REASON_NO_URGENT_ROOM : ASSIGNMENT_REASON_NO_ROOM;
        return CF_OK;
    }
    bool region = covers(&roster[pick], c->country);
    out->assigned = true;
    out->index = pick;
    out->manager_id = roster[pick].id;
    out->interpreter = interpreter;
    if (interpreter)
        out->reason = region ? ASSIGNMENT_REASON_INTERPRETER_REGION : ASSIGNMENT_REASON_INTERPRETER;
    else
        out->reason = region ? ASSIGNMENT_REASON_LANGUAGE_REGION : ASSIGNMENT_REASON_LANGUAGE;
    return CF_OK;
}

int assignment_pending_compare(const void *a, const void *b)
{
    const struct assignment_pending *pa = a, *pb = b;
    if (pa->priority != pb->priority)
        return pa->priority < pb->priority ? -1 : 1;
    if (pa->queued_ms != pb->queued_ms)
        return pa->queued_ms < pb->queued_ms ? -1 : 1;
    return strcmp(pa->case_id, pb->case_id);
}
