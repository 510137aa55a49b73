/* localize.c — see localize.h. */
#include "localize.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/udat.h>
#include <unicode/udatpg.h>
#include <unicode/ustring.h>

#include "tz.h"

/* Formatters kept; a notifier serves a handful of (language, zone) pairs at a time, and a miss
 * only costs an open. */
#define CACHE_SIZE 64
#define LANG_MAX 36

static const char *const skeletons[] = {
    [NOTIFIER_WHEN_DATETIME] = "yMMMMEEEEdjmmzzzz",
    [NOTIFIER_WHEN_DATE] = "yMMMMEEEEd",
};

struct entry {
    char lang[LANG_MAX];
    char zone[CF_TZ_ID_MAX + 1];
    enum notifier_when kind;
    UDateFormat *fmt; /* NULL: the slot is free */
};

struct notifier_localize {
    struct entry cache[CACHE_SIZE];
    size_t next; /* the slot the next miss replaces, round robin */
};

cf_status notifier_localize_new(struct notifier_localize **out)
{
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? CF_OK : CF_ENOMEM;
}

void notifier_localize_free(struct notifier_localize *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < CACHE_SIZE; i++)
        if (l->cache[i].fmt != NULL)
            udat_close(l->cache[i].fmt);
    free(l);
}

/* An ICU locale id from a BCP 47 tag ("es-MX" -> "es_MX"); false if it does not fit or holds
 * anything but letters, digits and '-'. */
static bool locale_id(const char *lang, char out[LANG_MAX])
{
    size_t n = strlen(lang);
    if (n == 0 || n >= LANG_MAX)
        return false;
    for (size_t i = 0; i <= n; i++) {
        char c = lang[i];
        if (c != '\0' && c != '-' && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
            !(c >= '0' && c <= '9'))
            return false;
        out[i] = c == '-' ? '_' : c;
    }
    return true;
}

/* Opens the formatter of (locale, zone, kind). */
static cf_status open_format(const char *locale, const char *zone, enum notifier_when kind,
                             UDateFormat **out, char *errbuf, size_t errlen)
{
    UErrorCode status = U_ZERO_ERROR;
    UChar skeleton[32], pattern[96], uzone[CF_TZ_ID_MAX + 1];
    UDateTimePatternGenerator *gen = NULL;
    cf_status st = CF_OK;

    *out = NULL;
    u_uastrcpy(skeleton, skeletons[kind]);
    u_uastrcpy(uzone, zone);
    gen = udatpg_open(locale, &status);
    int32_t plen = udatpg_getBestPattern(gen, skeleton, -1, pattern,
                                         (int32_t)(sizeof(pattern) / sizeof(pattern[0])), &status);
    if (U_FAILURE(status) || plen <= 0) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "no date pattern for the language: %s",
                     u_errorName(status));
        goto out;
    }
    *out = udat_open(UDAT_PATTERN, UDAT_PATTERN, locale, uzone, -1, pattern, plen, &status);
    if (U_FAILURE(status)) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "date formatter: %s", u_errorName(status));
        *out = NULL;
    }
out:
    udatpg_close(gen);
    return st;
}

cf_status notifier_localize_format(struct notifier_localize *l, const char *lang, const char *zone,
                                   enum notifier_when kind, int64_t utc_ms,
                                   char buf[NOTIFIER_WHEN_MAX], char *errbuf, size_t errlen)
{
    char locale[LANG_MAX];
    struct entry *e = NULL;
    UChar text[NOTIFIER_WHEN_MAX];
    UErrorCode status = U_ZERO_ERROR;

    buf[0] = '\0';
    if (lang == NULL || !locale_id(lang, locale))
        return cf_fail(errbuf, errlen, CF_EINVAL, "language: not a BCP 47 tag");
    if (!cf_tz_known(zone))
        return cf_fail(errbuf, errlen, CF_EINVAL, "time zone: not a known IANA zone");
    if ((unsigned)kind >= sizeof(skeletons) / sizeof(skeletons[0]))
        return cf_fail(errbuf, errlen, CF_EINVAL, "unknown date kind");
    for (size_t i = 0; i < CACHE_SIZE && e == NULL; i++) {
        struct entry *c = &l->cache[i];
        if (c->fmt != NULL && c->kind == kind && strcmp(c->lang, locale) == 0 &&
            strcmp(c->zone, zone) == 0)
            e = c;
    }
    if (e == NULL) {
        UDateFormat *fmt = NULL;
        cf_status st = open_format(locale, zone, kind, &fmt, errbuf, errlen);
        if (st != CF_OK)
            return st;
        e = &l->cache[l->next];
        l->next = (l->next + 1) % CACHE_SIZE;
        if (e->fmt != NULL)
            udat_close(e->fmt);
        (void)snprintf(e->lang, sizeof(e->lang), "%s", locale);
        (void)snprintf(e->zone, sizeof(e->zone), "%s", zone);
        e->kind = kind;
        e->fmt = fmt;
    }
    int32_t n = udat_format(e->fmt, (UDate)utc_ms, text, (int32_t)(sizeof(text) / sizeof(text[0])),
                            NULL, &status);
    if (U_FAILURE(status) || n <= 0)
        return cf_fail(errbuf, errlen, CF_EINVAL, "formatting a date: %s", u_errorName(status));
    /* ICU 72 puts a narrow no-break space before "AM"; in an SMS that one character would
     * switch the whole text from GSM-7 to UCS-2 and halve what fits. */
    for (int32_t i = 0; i < n; i++)
        if (text[i] == 0x202F || text[i] == 0x00A0)
            text[i] = 0x20;
    int32_t out_len = 0;
    u_strToUTF8(buf, NOTIFIER_WHEN_MAX, &out_len, text, n, &status);
    if (U_FAILURE(status) || out_len >= NOTIFIER_WHEN_MAX) {
        buf[0] = '\0';
        return cf_fail(errbuf, errlen, CF_EINVAL, "formatted date too long: %s",
                       u_errorName(status));
    }
    return CF_OK;
}
