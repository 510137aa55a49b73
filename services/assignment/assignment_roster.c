/* assignment_roster.c — the roster as matching.h's structs, and each case's candidates. */
#include "assignment_roster.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* The language every fallback manager speaks (matching.c's rule). */
#define FALLBACK_LANGUAGE "en"

void assignment_roster_clear(struct assignment_roster *r)
{
    if (r == NULL)
        return;
    free(r->managers);
    free(r->names);
    free(r->emails);
    free(r->strings);
    json_decref(r->entries);
    memset(r, 0, sizeof(*r));
}

/* Number of string items of a JSON array (0 for anything else). */
static size_t string_items(const json_t *array)
{
    size_t i, n = 0;
    json_t *item;
    json_array_foreach(array, i, item) n += json_is_string(item) ? 1 : 0;
    return n;
}

/* Appends the strings of array to strings[*used..] and returns where they start. */
static const char *const *take_strings(const json_t *array, const char **strings, size_t *used,
                                       size_t *count)
{
    size_t i, start = *used;
    json_t *item;
    json_array_foreach(array, i, item)
    {
        if (json_is_string(item))
            strings[(*used)++] = json_string_value(item);
    }
    *count = *used - start;
    return *count > 0 ? &strings[start] : NULL;
}

cf_status assignment_roster_build(const json_t *entries, struct assignment_roster *out,
                                  char *errbuf, size_t errlen)
{
    struct assignment_roster r;
    const char *id;
    json_t *e;
    size_t n, nstrings = 0, used = 0;
    cf_status st = CF_OK;

    memset(&r, 0, sizeof(r));
    memset(out, 0, sizeof(*out));
    r.entries = entries != NULL ? json_deep_copy(entries) : json_object();
    if (r.entries == NULL)
        goto nomem;
    n = json_object_size(r.entries);
    json_object_foreach(r.entries, id, e)
    {
        nstrings += string_items(json_object_get(e, "languages")) +
                    string_items(json_object_get(e, "countries"));
    }
    /* One spare slot each, so that an empty roster still allocates and NULL means failure. */
    r.managers = calloc(n + 1, sizeof(*r.managers));
    r.names = calloc(n + 1, sizeof(*r.names));
    r.emails = calloc(n + 1, sizeof(*r.emails));
    r.strings = calloc(nstrings + 1, sizeof(*r.strings));
    if (r.managers == NULL || r.names == NULL || r.emails == NULL || r.strings == NULL)
        goto nomem;
    json_object_foreach(r.entries, id, e)
    {
        const char *mid = json_string_value(json_object_get(e, "manager_id"));
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *email = json_string_value(json_object_get(e, "email"));
        const json_t *capacity = json_object_get(e, "capacity");
        const json_t *urgent = json_object_get(e, "urgent_capable");
        const json_t *active = json_object_get(e, "active");
        if (mid == NULL || name == NULL || email == NULL || !json_is_integer(capacity) ||
            r.count >= ASSIGNMENT_ROSTER_MAX) {
            r.skipped++;
            CF_LOG(CF_LOG_WARN, "roster_entry_skipped", CF_LOG_ID("manager_id", id),
                   CF_LOG_ERR("reason", r.count >= ASSIGNMENT_ROSTER_MAX
                                            ? "more managers than the roster maximum"
                                            : "manager_id, name, email or capacity missing"));
            continue;
        }
        json_int_t cap = json_integer_value(capacity);
        struct assignment_manager *m = &r.managers[r.count];
        m->id = mid;
        m->languages = take_strings(json_object_get(e, "languages"), r.strings, &used,
                                    &m->nlanguages);
        m->countries = take_strings(json_object_get(e, "countries"), r.strings, &used,
                                    &m->ncountries);
        m->capacity = cap < 0 ? 0 : cap > INT32_MAX ? INT32_MAX : (int)cap;
        m->urgent_capable = json_is_true(urgent);
        m->active = active == NULL || json_is_null(active) || json_is_true(active);
        m->active_cases = 0;
        m->last_assigned_ms = ASSIGNMENT_NEVER_ASSIGNED;
        r.names[r.count] = name;
        r.emails[r.count] = email;
        r.count++;
    }
    *out = r;
    return CF_OK;
nomem:
    st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory building the roster");
    assignment_roster_clear(&r);
    return st;
}

static char ascii_lower(char ch)
{
    return (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
}

/* Country codes compared as matching.c does: whole code, ASCII case-insensitive. */
static bool covers(const struct assignment_manager *m, const char *country)
{
    if (country == NULL || country[0] == '\0')
        return false;
    size_t n = strlen(country);
    for (size_t i = 0; i < m->ncountries; i++) {
        const char *own = m->countries[i];
        if (own == NULL || strlen(own) != n)
            continue;
        size_t k = 0;
        while (k < n && ascii_lower(own[k]) == ascii_lower(country[k]))
            k++;
        if (k == n)
            return true;
    }
    return false;
}

static bool speaks(const struct assignment_manager *m, const char *language)
{
    for (size_t i = 0; i < m->nlanguages; i++)
        if (assignment_language_match(m->languages[i], language))
            return true;
    return false;
}

enum assignment_tier assignment_tier_of(const struct assignment_manager *m, const char *language,
                                        const char *country)
{
    bool region = covers(m, country);
    if (speaks(m, language))
        return region ? ASSIGNMENT_TIER_LANGUAGE_REGION : ASSIGNMENT_TIER_LANGUAGE;
    if (speaks(m, FALLBACK_LANGUAGE))
        return region ? ASSIGNMENT_TIER_INTERPRETER_REGION : ASSIGNMENT_TIER_INTERPRETER;
    return ASSIGNMENT_TIER_NONE;
}

size_t assignment_candidates(const struct assignment_case *c,
                             const struct assignment_manager *roster, size_t nroster,
                             struct assignment_candidate *out)
{
    size_t n = 0;
    for (size_t i = 0; i < nroster; i++) {
        const struct assignment_manager *m = &roster[i];
        if (!m->active || m->capacity <= 0)
            continue; /* takes no new case whatever the load */
        enum assignment_tier tier = assignment_tier_of(m, c->language, c->country);
        bool urgent_ok = c->priority != ASSIGNMENT_PRIORITY_URGENT || m->urgent_capable;
        /* A manager who may not take an URGENT case matters only as proof that capacity of
         * another kind exists (NO_URGENT_ROOM), which a tier-4 manager is not. */
        if (!urgent_ok && tier == ASSIGNMENT_TIER_NONE)
            continue;
        out[n].index = i;
        out[n].tier = tier;
        out[n].urgent_ok = urgent_ok;
        n++;
    }
    return n;
}

cf_status assignment_candidates_json(const struct assignment_case *c,
                                     const struct assignment_manager *roster,
                                     const char *const *names, const char *const *emails,
                                     size_t nroster, char **out)
{
    struct assignment_candidate *cands = NULL;
    json_t *array = NULL;
    cf_status st = CF_ENOMEM;

    *out = NULL;
    if ((cands = calloc(nroster + 1, sizeof(*cands))) == NULL || (array = json_array()) == NULL)
        goto out;
    size_t n = assignment_candidates(c, roster, nroster, cands);
    for (size_t k = 0; k < n; k++) {
        const struct assignment_manager *m = &roster[cands[k].index];
        const char *name = names != NULL ? names[cands[k].index] : NULL;
        const char *email = emails != NULL ? emails[cands[k].index] : NULL;
        json_t *o = json_pack("{s:s, s:i, s:i, s:i, s:s, s:s}", "id", m->id, "tier",
                              (int)cands[k].tier, "cap", m->capacity, "u",
                              cands[k].urgent_ok ? 1 : 0, "name", name != NULL ? name : m->id,
                              "email", email != NULL ? email : "");
        if (o == NULL || json_array_append_new(array, o) != 0)
            goto out;
    }
    if ((*out = json_dumps(array, JSON_COMPACT)) != NULL)
        st = CF_OK;
out:
    json_decref(array);
    free(cands);
    return st;
}
