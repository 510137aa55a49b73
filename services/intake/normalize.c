/* normalize.c — intake's normalisation of inquiry fields (see normalize.h and README.md).
 * Nothing here logs: every message names a field or a rule, never a value. */
#include "normalize.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <unicode/uloc.h>
#include <utf8proc.h>

#define ZONEINFO_DIR "/usr/share/zoneinfo"
#define ZONE_NAME_MAX 64

/* ---- text ---------------------------------------------------------------------------- */

/* Strict UTF-8 (RFC 3629): rejects overlong forms, surrogates, code points above U+10FFFF
 * and truncated sequences. We check this ourselves rather than relying on utf8proc's decoder
 * so the accepted set is exactly the one written down here. NUL is reported apart. */
static bool utf8_valid(const unsigned char *s, size_t len, bool *has_nul)
{
    size_t i = 0;
    *has_nul = false;
    while (i < len) {
        unsigned char b = s[i];
        size_t follow;
        unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the first continuation byte */
        if (b < 0x80) {
            if (b == 0)
                *has_nul = true;
            i++;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF) {
            follow = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            follow = 2;
            if (b == 0xE0)
                lo = 0xA0; /* overlong below U+0800 */
            else if (b == 0xED)
                hi = 0x9F; /* U+D800..U+DFFF are surrogates */
        } else if (b >= 0xF0 && b <= 0xF4) {
            follow = 3;
            if (b == 0xF0)
                lo = 0x90; /* overlong below U+10000 */
            else if (b == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else {
            return false; /* continuation byte first, C0/C1 overlong lead, F5..FF */
        }
        if (len - i <= follow)
            return false; /* truncated */
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= follow; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return false;
        i += follow + 1;
    }
    return true;
}

/* Unicode White_Space: the Z* separators plus the whitespace controls and NEL. */
static bool is_space(utf8proc_int32_t cp)
{
    if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x85)
        return true;
    utf8proc_category_t cat = utf8proc_category(cp);
    return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
           cat == UTF8PROC_CATEGORY_ZP;
}

cf_status intake_normalize_text(const char *in, size_t len, unsigned flags, char **out,
                                char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    utf8proc_uint8_t *nfc = NULL;
    char *res = NULL;
    bool has_nul = false;

    *out = NULL;
    if (in == NULL && len > 0)
        return cf_fail(errbuf, errlen, CF_EINVAL, "text: NULL input");
    if (len > INTAKE_TEXT_MAX) {
        st = cf_fail(errbuf, errlen, CF_ETOOBIG, "text: longer than %d bytes", INTAKE_TEXT_MAX);
        goto out;
    }
    if (len > 0 && !utf8_valid((const unsigned char *)in, len, &has_nul)) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "text: not valid UTF-8");
        goto out;
    }
    if (has_nul) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "text: contains a NUL character");
        goto out;
    }

    utf8proc_ssize_t n = 0;
    if (len > 0) {
        n = utf8proc_map((const utf8proc_uint8_t *)in, (utf8proc_ssize_t)len, &nfc,
                         UTF8PROC_COMPOSE | UTF8PROC_STABLE);
        if (n < 0) {
            st = n == UTF8PROC_ERROR_NOMEM
                     ? cf_fail(errbuf, errlen, CF_ENOMEM, "text: out of memory")
                     : cf_fail(errbuf, errlen, CF_EINVAL, "text: cannot normalise (%s)",
                               utf8proc_errmsg(n));
            goto out;
        }
        if (n > INTAKE_TEXT_MAX) {
            st = cf_fail(errbuf, errlen, CF_ETOOBIG, "text: longer than %d bytes", INTAKE_TEXT_MAX);
            goto out;
        }
    }

    /* Trimming and collapsing only ever shrink the text, so n + 1 bytes are enough. */
    res = malloc((size_t)n + 1);
    if (res == NULL) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "text: out of memory");
        goto out;
    }
    size_t pos = 0, end = 0; /* end: just after the last non-space written */
    bool pending = false;
    for (utf8proc_ssize_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(nfc + i, n - i, &cp);
        if (k <= 0) { /* cannot happen on validated NFC output, but never loop forever */
            st = cf_fail(errbuf, errlen, CF_EINVAL, "text: not valid UTF-8");
            goto out;
        }
        if (is_space(cp)) {
            if (pos > 0) { /* leading whitespace is dropped */
                if (flags & INTAKE_TEXT_COLLAPSE) {
                    pending = true;
                } else {
                    memcpy(res + pos, nfc + i, (size_t)k);
                    pos += (size_t)k;
                }
            }
        } else {
            if (pending) {
                res[pos++] = ' ';
                pending = false;
            }
            memcpy(res + pos, nfc + i, (size_t)k);
            pos += (size_t)k;
            end = pos;
        }
        i += k;
    }
    res[end] = '\0'; /* trailing whitespace is dropped */
    *out = res;
    res = NULL;
out:
    free(res);
    free(nfc);
    return st;
}

/* ---- email --------------------------------------------------------------------------- */

cf_status intake_normalize_email(const char *in, size_t len, char **out, char *errbuf,
                                 size_t errlen)
{
    char *t = NULL;
    cf_status st = intake_normalize_text(in, len, 0, &t, errbuf, errlen);
    *out = NULL;
    if (st != CF_OK)
        return st;

    size_t n = strlen(t);
    char *at = strchr(t, '@');
    if (n > INTAKE_EMAIL_MAX) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "email: longer than %d bytes", INTAKE_EMAIL_MAX);
        goto out;
    }
    if (at == NULL || strchr(at + 1, '@') != NULL) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "email: needs exactly one '@'");
        goto out;
    }
    if (at == t || at[1] == '\0') {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "email: empty local part or domain");
        goto out;
    }
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k =
            utf8proc_iterate((const utf8proc_uint8_t *)t + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0 || is_space(cp)) {
            st = cf_fail(errbuf, errlen, CF_EINVAL, "email: contains whitespace");
            goto out;
        }
        i += (size_t)k;
    }
    /* Only the domain is case-insensitive (RFC 5321 §2.4); IDN domains keep non-ASCII. */
    for (char *p = at + 1; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    *out = t;
    t = NULL;
out:
    free(t);
    return st;
}

/* ---- phone --------------------------------------------------------------------------- */

/* The countries the facilitator serves. trunk: the national (trunk) prefix dialled before a
 * national number and dropped in E.164; "" where numbers have none (ES, IT: Italy's leading 0
 * of fixed lines is part of the number and stays after +39). trunk_optional: national numbers
 * are commonly written without it (NANP "(555) 555-0123"). nsn_min/max: digits of the
 * national significant number, i.e. what follows the calling code. */
struct phone_rule {
    char alpha2[3];
    const char *calling_code;
    const char *trunk;
    bool trunk_optional;
    unsigned nsn_min, nsn_max;
};

static const struct phone_rule phone_rules[] = {
    {"GB", "44", "0", false, 9, 10}, {"IE", "353", "0", false, 7, 9},
    {"DE", "49", "0", false, 6, 13}, {"FR", "33", "0", false, 9, 9},
    {"ES", "34", "", false, 9, 9},   {"IT", "39", "", false, 6, 11},
    {"NL", "31", "0", false, 9, 9},  {"TR", "90", "0", false, 10, 10},
    {"RU", "7", "8", false, 10, 10}, {"US", "1", "1", true, 10, 10},
    {"CA", "1", "1", true, 10, 10},  {"AE", "971", "0", false, 8, 9},
    {"SA", "966", "0", false, 8, 9}, {"IL", "972", "0", false, 8, 9},
};

static const struct phone_rule *phone_rule_for(const char *country)
{
    if (country == NULL || strlen(country) != 2)
        return NULL;
    char up[3] = {country[0], country[1], '\0'};
    for (int i = 0; i < 2; i++)
        if (up[i] >= 'a' && up[i] <= 'z')
            up[i] = (char)(up[i] - 'a' + 'A');
    for (size_t i = 0; i < sizeof phone_rules / sizeof phone_rules[0]; i++)
        if (strcmp(phone_rules[i].alpha2, up) == 0)
            return &phone_rules[i];
    return NULL;
}

#define PHONE_DIGITS_MAX 32

cf_status intake_normalize_phone(const char *raw, const char *country_alpha2,
                                 char out[INTAKE_PHONE_LEN], char *errbuf, size_t errlen)
{
    char digits[PHONE_DIGITS_MAX + 1];
    size_t nd = 0;
    bool plus = false;

    if (raw == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "phone: missing");
    for (const char *p = raw; *p != '\0';) {
        unsigned char c = (unsigned char)*p;
        bool intl = plus || (nd >= 2 && digits[0] == '0' && digits[1] == '0');
        if (intl && nd > 0 && strncmp(p, "(0)", 3) == 0) {
            p += 3; /* "+44 (0)20 ...": the trunk prefix a national reader would dial */
        } else if (c >= '0' && c <= '9') {
            if (nd == PHONE_DIGITS_MAX)
                return cf_fail(errbuf, errlen, CF_EINVAL, "phone: too many digits");
            digits[nd++] = (char)c;
            p++;
        } else if (c == '+' && nd == 0 && !plus) {
            plus = true;
            p++;
        } else if (c == ' ' || c == '\t' || c == '.' || c == '-' || c == '/' || c == '(' ||
                   c == ')') {
            p++;
        } else if (c == 0xC2 && (unsigned char)p[1] == 0xA0) {
            p += 2; /* U+00A0, common in numbers pasted from documents */
        } else {
            return cf_fail(errbuf, errlen, CF_EINVAL, "phone: not a phone number");
        }
    }
    digits[nd] = '\0';
    if (nd == 0)
        return cf_fail(errbuf, errlen, CF_EINVAL, "phone: no digits");

    const char *intl = NULL;
    if (plus)
        intl = digits;
    else if (nd >= 2 && digits[0] == '0' && digits[1] == '0')
        intl = digits + 2;
    if (intl != NULL) {
        size_t n = strlen(intl);
        if (n < 8 || n > 15 || intl[0] == '0') /* no calling code starts with 0 */
            return cf_fail(errbuf, errlen, CF_EINVAL,
                           "phone: an international number has 8-15 digits");
        out[0] = '+';
        memcpy(out + 1, intl, n + 1);
        return CF_OK;
    }

    const struct phone_rule *rule = phone_rule_for(country_alpha2);
    if (rule == NULL)
        return cf_fail(errbuf, errlen, CF_ENOTFOUND,
                       "phone: national number for a country without a numbering rule");
    const char *nsn;
    size_t tl = strlen(rule->trunk);
    if (tl > 0 && strncmp(digits, rule->trunk, tl) == 0 &&
        !(rule->trunk_optional && nd == rule->nsn_max))
        nsn = digits + tl;
    else if (tl == 0 || rule->trunk_optional)
        nsn = digits;
    else
        return cf_fail(errbuf, errlen, CF_ENOTFOUND,
                       "phone: national number without the country's trunk prefix");
    size_t nl = strlen(nsn), cl = strlen(rule->calling_code);
    if (nl < rule->nsn_min || nl > rule->nsn_max || cl + nl < 8 || cl + nl > 15)
        return cf_fail(errbuf, errlen, CF_ENOTFOUND,
                       "phone: national number of the wrong length for the country");
    out[0] = '+';
    memcpy(out + 1, rule->calling_code, cl);
    memcpy(out + 1 + cl, nsn, nl + 1);
    return CF_OK;
}

/* ---- time zone ----------------------------------------------------------------------- */

/* Zones found valid, so that each is looked up in tzdata once instead of for every inquiry
 * (an open, fstat, read and close each time were 12 % of intake's loop with the rest of
 * normalisation). Only valid zones are kept: inquiries name a few dozen distinct zones, and
 * junk input must not push them out. Bounded; past the cap the oldest entry makes room.
 *
 * One cache per thread, not one per process: normalisation runs on the Kafka loop and on the
 * HTTP thread, and a thread's own cache needs no lock. This is the one mutable static here;
 * it holds zone names (public data), never anything of the inquiry's person. An answer stays
 * for the life of the thread: tzdata updates add zones and keep old names as links. */
#define ZONE_CACHE_MAX 64
struct zone_cache {
    char names[ZONE_CACHE_MAX][ZONE_NAME_MAX + 1];
    size_t count, next;
};
static _Thread_local struct zone_cache zone_cache;

static bool zone_cache_has(const char *zone)
{
    for (size_t i = 0; i < zone_cache.count; i++)
        if (strcmp(zone_cache.names[i], zone) == 0)
            return true;
    return false;
}

/* zone is checked (1 to ZONE_NAME_MAX bytes, n of them). */
static void zone_cache_add(const char *zone, size_t n)
{
    size_t slot = zone_cache.next;
    zone_cache.next = (zone_cache.next + 1) % ZONE_CACHE_MAX;
    if (zone_cache.count < ZONE_CACHE_MAX)
        zone_cache.count++;
    memcpy(zone_cache.names[slot], zone, n + 1);
}

bool intake_check_time_zone(const char *zone)
{
    if (zone == NULL)
        return false;
    size_t n = strlen(zone);
    if (n == 0 || n > ZONE_NAME_MAX || zone[0] == '/' || zone[n - 1] == '/')
        return false;
    /* The character set excludes '.', so ".." and "./" cannot occur; an empty component
     * ("a//b") is refused too so one name has one spelling. */
    for (size_t i = 0; i < n; i++) {
        char c = zone[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '/' || c == '_' || c == '+' || c == '-';
        if (!ok || (c == '/' && zone[i + 1] == '/'))
            return false;
    }
    /* Files in tzdata's directory that are not zone names. */
    if (strncmp(zone, "posix/", 6) == 0 || strncmp(zone, "right/", 6) == 0 ||
        strcmp(zone, "posix") == 0 || strcmp(zone, "right") == 0 ||
        strcmp(zone, "localtime") == 0 || strcmp(zone, "posixrules") == 0 ||
        strcmp(zone, "Factory") == 0) /* "Factory" is tzdata's "-00" placeholder, no place */
        return false;

    if (zone_cache_has(zone))
        return true;
    char path[sizeof ZONEINFO_DIR + 1 + ZONE_NAME_MAX];
    int w = snprintf(path, sizeof path, "%s/%s", ZONEINFO_DIR, zone);
    if (w < 0 || (size_t)w >= sizeof path)
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return false;
    struct stat sb;
    char magic[4];
    bool ok = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
              read(fd, magic, sizeof magic) == (ssize_t)sizeof magic &&
              memcmp(magic, "TZif", 4) == 0;
    (void)close(fd);
    if (ok)
        zone_cache_add(zone, n);
    return ok;
}

/* ---- language ------------------------------------------------------------------------ */

cf_status intake_canonical_language(const char *tag, char *out, size_t outlen, char *errbuf,
                                    size_t errlen)
{
    char in[INTAKE_LANGUAGE_MAX + 1];
    char locale[ULOC_FULLNAME_CAPACITY];
    char canon[INTAKE_LANGUAGE_MAX + 1];

    if (tag == NULL || tag[0] == '\0')
        return cf_fail(errbuf, errlen, CF_EINVAL, "language: empty");
    size_t n = strlen(tag);
    if (n > INTAKE_LANGUAGE_MAX)
        return cf_fail(errbuf, errlen, CF_EINVAL, "language: longer than %d bytes",
                       INTAKE_LANGUAGE_MAX);
    for (size_t i = 0; i <= n; i++)
        in[i] = tag[i] == '_' ? '-' : tag[i]; /* "es_419", an ICU/POSIX spelling */

    UErrorCode uerr = U_ZERO_ERROR;
    int32_t parsed = 0;
    int32_t ln = uloc_forLanguageTag(in, locale, (int32_t)sizeof locale, &parsed, &uerr);
    /* ICU ignores everything from the first ill-formed subtag on; we refuse the tag instead
     * of keeping a silently shortened one. */
    if (U_FAILURE(uerr) || uerr == U_STRING_NOT_TERMINATED_WARNING || ln <= 0 ||
        parsed != (int32_t)n)
        return cf_fail(errbuf, errlen, CF_EINVAL, "language: not a well-formed BCP 47 tag");
    const char *iso3 = uloc_getISO3Language(locale);
    if (iso3 == NULL || iso3[0] == '\0')
        return cf_fail(errbuf, errlen, CF_EINVAL, "language: unknown language subtag");

    uerr = U_ZERO_ERROR;
    int32_t cn = uloc_toLanguageTag(locale, canon, (int32_t)sizeof canon, 1, &uerr);
    if (U_FAILURE(uerr) || uerr == U_STRING_NOT_TERMINATED_WARNING || cn <= 0)
        return cf_fail(errbuf, errlen, CF_EINVAL, "language: cannot canonicalise (%s)",
                       u_errorName(uerr));
    if ((size_t)cn >= outlen)
        return cf_fail(errbuf, errlen, CF_ETOOBIG, "language: output buffer too small");
    memcpy(out, canon, (size_t)cn + 1);
    return CF_OK;
}

/* ---- the inquiry --------------------------------------------------------------------- */

struct norm_ctx {
    struct intake_field_error *errors;
    size_t max, stored, rejected;
    char first_path[64];
    const char *first_code;
};

static void field_error(struct norm_ctx *c, const char *path, const char *code,
                        enum intake_severity sev, const char *message)
{
    if (sev == INTAKE_REJECT && c->rejected++ == 0) {
        (void)snprintf(c->first_path, sizeof c->first_path, "%s", path);
        c->first_code = code;
    }
    if (c->stored >= c->max)
        return;
    struct intake_field_error *e = &c->errors[c->stored++];
    (void)snprintf(e->path, sizeof e->path, "%s", path);
    e->code = code;
    (void)snprintf(e->message, sizeof e->message, "%s", message);
    e->severity = sev;
}

/* Whether a field is a string, may be null, and how text is cleaned. */
enum field_kind { FIELD_TEXT, FIELD_NAME, FIELD_EMAIL, FIELD_PHONE, FIELD_LANGUAGE, FIELD_ZONE };

/* Normalises obj[key] in place. Returns CF_ENOMEM only; field failures go to ctx. */
static cf_status norm_field(struct norm_ctx *c, json_t *obj, const char *key, const char *path,
                            enum field_kind kind, bool nullable, const char *country)
{
    cf_status st = CF_OK;
    char *text = NULL;
    char *email = NULL;
    json_t *v = json_object_get(obj, key);

    if (v == NULL)
        return CF_OK; /* absent: schema conversion reports a missing required field */
    if (json_is_null(v)) {
        if (!nullable)
            field_error(c, path, "TYPE_INVALID", INTAKE_REJECT, "expected a string");
        return CF_OK;
    }
    if (!json_is_string(v)) {
        field_error(c, path, "TYPE_INVALID", INTAKE_REJECT,
                    nullable ? "expected a string or null" : "expected a string");
        return CF_OK;
    }

    st = intake_normalize_text(json_string_value(v), json_string_length(v),
                               kind == FIELD_NAME ? INTAKE_TEXT_COLLAPSE : 0, &text, NULL, 0);
    if (st == CF_ENOMEM)
        goto out;
    if (st != CF_OK) {
        bool has_nul = strlen(json_string_value(v)) != json_string_length(v);
        if (st == CF_ETOOBIG)
            field_error(c, path, "TEXT_TOO_LONG", INTAKE_REJECT, "text is too long");
        else if (has_nul)
            field_error(c, path, "TEXT_CONTAINS_NUL", INTAKE_REJECT,
                        "text contains a NUL character");
        else
            field_error(c, path, "TEXT_INVALID_UTF8", INTAKE_REJECT, "text is not valid UTF-8");
        st = CF_OK;
        goto out;
    }
    if (text[0] == '\0' && (kind == FIELD_EMAIL || kind == FIELD_PHONE)) {
        /* Blank contact fields mean "not given"; validation asks if a channel is needed. */
        if (json_object_set_new(obj, key, json_null()) != 0)
            st = CF_ENOMEM;
        goto out;
    }

    const char *result = text;
    char phone[INTAKE_PHONE_LEN];
    char lang[INTAKE_LANGUAGE_MAX + 1];
    cf_status fs;
    switch (kind) {
    case FIELD_TEXT:
    case FIELD_NAME:
        break;
    case FIELD_EMAIL:
        fs = intake_normalize_email(text, strlen(text), &email, NULL, 0);
        if (fs == CF_ENOMEM) {
            st = fs;
            goto out;
        }
        if (fs != CF_OK) {
            field_error(c, path, "EMAIL_INVALID", INTAKE_REJECT, "not a valid email address");
            goto out;
        }
        result = email;
        break;
    case FIELD_PHONE:
        fs = intake_normalize_phone(text, country, phone, NULL, 0);
        if (fs == CF_ENOTFOUND) {
            /* Our table's limit, not the patient's mistake: keep the (trimmed) number. */
            field_error(c, path, "PHONE_UNCONVERTIBLE", INTAKE_KEPT,
                        "cannot be converted to E.164 for the patient's country; kept as given");
        } else if (fs != CF_OK) {
            field_error(c, path, "PHONE_INVALID", INTAKE_REJECT, "not a phone number");
            goto out;
        } else {
            result = phone;
        }
        break;
    case FIELD_LANGUAGE:
        if (intake_canonical_language(text, lang, sizeof lang, NULL, 0) != CF_OK) {
            field_error(c, path, "LANGUAGE_INVALID", INTAKE_REJECT,
                        "not a valid BCP 47 language tag");
            goto out;
        }
        result = lang;
        break;
    case FIELD_ZONE:
        if (!intake_check_time_zone(text)) {
            field_error(c, path, "TIME_ZONE_UNKNOWN", INTAKE_REJECT, "not a known IANA time zone");
            goto out;
        }
        break;
    }
    if (strcmp(result, json_string_value(v)) != 0 && json_string_set(v, result) != 0)
        st = CF_ENOMEM;
out:
    free(email);
    free(text);
    return st;
}

cf_status intake_normalize_inquiry(json_t *inquiry, char *errbuf, size_t errlen,
                                   struct intake_field_error *errors, size_t max_errors,
                                   size_t *nerrors)
{
    struct norm_ctx c = {.errors = errors, .max = errors != NULL ? max_errors : 0};
    cf_status st = CF_OK;
    char path[64];

    *nerrors = 0;
    if (!json_is_object(inquiry))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$: expected an object");

    static const char *const objects[] = {"patient", "contact", "condition"};
    for (size_t i = 0; i < 3; i++) {
        json_t *o = json_object_get(inquiry, objects[i]);
        if (o != NULL && !json_is_object(o)) {
            (void)snprintf(path, sizeof path, "$.%s", objects[i]);
            field_error(&c, path, "TYPE_INVALID", INTAKE_REJECT, "expected an object");
        }
    }

    json_t *patient = json_object_get(inquiry, "patient");
    const char *country = NULL;
    if (json_is_object(patient)) {
        country = json_string_value(json_object_get(patient, "country"));
        if ((st = norm_field(&c, patient, "given_name", "$.patient.given_name", FIELD_NAME, false,
                             NULL)) != CF_OK ||
            (st = norm_field(&c, patient, "family_name", "$.patient.family_name", FIELD_NAME, false,
                             NULL)) != CF_OK ||
            (st = norm_field(&c, patient, "language", "$.patient.language", FIELD_LANGUAGE, false,
                             NULL)) != CF_OK ||
            (st = norm_field(&c, patient, "time_zone", "$.patient.time_zone", FIELD_ZONE, false,
                             NULL)) != CF_OK)
            goto out;
    }

    json_t *contact = json_object_get(inquiry, "contact");
    if (json_is_object(contact)) {
        if ((st = norm_field(&c, contact, "email", "$.contact.email", FIELD_EMAIL, true, NULL)) !=
                CF_OK ||
            (st = norm_field(&c, contact, "phone", "$.contact.phone", FIELD_PHONE, true,
                             country)) != CF_OK)
            goto out;
    }

    json_t *condition = json_object_get(inquiry, "condition");
    if (json_is_object(condition) &&
        (st = norm_field(&c, condition, "description", "$.condition.description", FIELD_TEXT, true,
                         NULL)) != CF_OK)
        goto out;

    json_t *guardian = json_object_get(inquiry, "guardian");
    if (guardian != NULL && !json_is_null(guardian) && !json_is_object(guardian)) {
        field_error(&c, "$.guardian", "TYPE_INVALID", INTAKE_REJECT, "expected an object or null");
    } else if (json_is_object(guardian)) {
        if ((st = norm_field(&c, guardian, "name", "$.guardian.name", FIELD_NAME, false, NULL)) !=
                CF_OK ||
            (st = norm_field(&c, guardian, "email", "$.guardian.email", FIELD_EMAIL, true, NULL)) !=
                CF_OK ||
            (st = norm_field(&c, guardian, "phone", "$.guardian.phone", FIELD_PHONE, true,
                             country)) != CF_OK)
            goto out;
    }

    json_t *reports = json_object_get(inquiry, "reports");
    if (reports != NULL && !json_is_array(reports)) {
        field_error(&c, "$.reports", "TYPE_INVALID", INTAKE_REJECT, "expected an array");
    } else {
        size_t i;
        json_t *r;
        json_array_foreach(reports, i, r)
        {
            if (!json_is_object(r)) {
                (void)snprintf(path, sizeof path, "$.reports[%zu]", i);
                field_error(&c, path, "TYPE_INVALID", INTAKE_REJECT, "expected an object");
                continue;
            }
            (void)snprintf(path, sizeof path, "$.reports[%zu].title", i);
            if ((st = norm_field(&c, r, "title", path, FIELD_NAME, false, NULL)) != CF_OK)
                goto out;
        }
    }

out:
    *nerrors = c.stored;
    if (st != CF_OK)
        return cf_fail(errbuf, errlen, st, "inquiry: out of memory while normalising");
    if (c.rejected > 0)
        return cf_fail(errbuf, errlen, CF_EINVAL, "inquiry: %zu field(s) rejected, first %s (%s)",
                       c.rejected, c.first_path, c.first_code);
    return CF_OK;
}
