/* rules.c — validation's rules as pure functions over the JSON form of an inquiry. */
#include "rules.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <utf8proc.h>

#define MS_PER_DAY 86400000LL

/* Priority thresholds of the issue; administrative triage, not configuration. */
#define MELD_URGENT_MIN 25
#define MELD_HIGH_MIN 15
#define MELD_VALID_MIN 6
#define MELD_VALID_MAX 40

void validation_limits_default(struct validation_limits *limits)
{
    if (limits == NULL)
        return;
    limits->description_min_chars = 20;
    limits->description_max_chars = 5000;
    limits->name_max_chars = 100;
    limits->field_max_chars = 320;
    limits->meld_min = MELD_VALID_MIN;
    limits->meld_max = MELD_VALID_MAX;
    limits->adult_age_years = 18;
    limits->max_age_years = 120;
}

/* ---- reading the JSON form: NULL-safe, a missing field reads as the schema's default ---- */

static const json_t *field(const json_t *obj, const char *name)
{
    return json_is_object(obj) ? json_object_get(obj, name) : NULL;
}

static const json_t *field2(const json_t *obj, const char *a, const char *b)
{
    return field(field(obj, a), b);
}

/* The string at obj.name, or NULL when absent, null or not a string. */
static const char *field_str(const json_t *obj, const char *name)
{
    return json_string_value(field(obj, name));
}

/* A guardian record, or NULL when the inquiry has none (null or absent). */
static const json_t *guardian_of(const json_t *inquiry)
{
    const json_t *g = field(inquiry, "guardian");
    return json_is_object(g) ? g : NULL;
}

/* ---- findings ---- */

/* Appends a finding with no parameters; NULL when out is full. */
static struct validation_reason *add(struct validation_findings *out, const char *code,
                                     enum validation_class cls, enum validation_info_item item)
{
    if (out->count >= VALIDATION_MAX_FINDINGS)
        return NULL;
    struct validation_reason *r = &out->reasons[out->count++];
    memset(r, 0, sizeof *r);
    r->code = code;
    r->cls = cls;
    r->item = cls == VALIDATION_CLASS_INFO ? item : VALIDATION_ITEM_NONE;
    return r;
}

/* Parameters are rule constants, field paths, counts and enum symbols, all short: a longer one
 * would be a bug here, so truncation (snprintf) is an acceptable failure mode. */
static void param(struct validation_reason *r, const char *key, const char *value)
{
    if (r == NULL || r->nparams >= VALIDATION_MAX_PARAMS)
        return;
    struct validation_param *p = &r->params[r->nparams++];
    snprintf(p->key, sizeof p->key, "%s", key);
    snprintf(p->value, sizeof p->value, "%s", value);
}

static void param_num(struct validation_reason *r, const char *key, long long value)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", value);
    param(r, key, buf);
}

/* ---- text ---- */

struct text_info {
    size_t chars; /* code points (bytes where the UTF-8 is broken) */
    bool invalid; /* not UTF-8 */
    bool control; /* a C0/C1 control (tab, LF, CR allowed when multiline), a bidi override */
    bool format;  /* any other invisible format character (Cf) but ZWNJ/ZWJ */
    bool markup;  /* '<' or '>' */
    bool blank;   /* nothing but white space */
};

static bool is_bidi_control(utf8proc_int32_t cp)
{
    return (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

/* Scans a JSON string (which may hold NUL) code point by code point. */
static void text_scan(const json_t *s, bool multiline, struct text_info *ti)
{
    memset(ti, 0, sizeof *ti);
    ti->blank = true;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)json_string_value(s);
    size_t len = json_string_length(s);
    size_t i = 0;
    while (p != NULL && i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &cp);
        ti->chars++;
        if (n <= 0) {
            ti->invalid = true;
            ti->blank = false;
            i++;
            continue;
        }
        i += (size_t)n;
        utf8proc_category_t cat = utf8proc_category(cp);
        bool allowed_ws = multiline && (cp == '\t' || cp == '\n' || cp == '\r');
        if ((cat == UTF8PROC_CATEGORY_CC && !allowed_ws) || is_bidi_control(cp))
            ti->control = true;
        else if (cat == UTF8PROC_CATEGORY_CF && cp != 0x200C && cp != 0x200D)
            ti->format = true;
        if (cp == '<' || cp == '>')
            ti->markup = true;
        if (!(cat == UTF8PROC_CATEGORY_ZS || cp == '\t' || cp == '\n' || cp == '\r'))
            ti->blank = false;
    }
}

/* ---- syntax checks ---- */

static bool ascii_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool ascii_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* LDH labels of 1-63 characters, at least two, a TLD of letters or an xn-- A-label. */
static bool domain_valid(const char *d, size_t len)
{
    if (len == 0 || len > 253)
        return false;
    size_t start = 0, labels = 0;
    while (start <= len) {
        size_t end = start;
        while (end < len && d[end] != '.')
            end++;
        size_t n = end - start;
        if (n == 0 || n > 63 || d[start] == '-' || d[end - 1] == '-')
            return false;
        for (size_t i = start; i < end; i++)
            if (!ascii_alnum(d[i]) && d[i] != '-')
                return false;
        labels++;
        if (end == len) {
            /* The TLD: letters only (at least two), or an IDN TLD in its xn-- form. */
            const char *tld = d + start;
            if (n > 4 && strncmp(tld, "xn--", 4) == 0)
                return labels >= 2;
            if (n < 2)
                return false;
            for (size_t i = 0; i < n; i++)
                if (!ascii_alpha(tld[i]))
                    return false;
            return labels >= 2;
        }
        start = end + 1;
    }
    return false;
}

bool validation_email_valid(const char *email)
{
    if (email == NULL)
        return false;
    size_t len = strlen(email);
    if (len == 0 || len > 254)
        return false;
    const char *at = strchr(email, '@');
    if (at == NULL || strchr(at + 1, '@') != NULL)
        return false;
    size_t local = (size_t)(at - email);
    if (local == 0 || local > 64)
        return false;
    /* Dot-atom local part (RFC 5322 atext); quoted local parts are not worth their risk. */
    static const char atext[] = "!#$%&'*+/=?^_`{|}~-";
    for (size_t i = 0; i < local; i++) {
        char c = email[i];
        if (c == '.') {
            if (i == 0 || i == local - 1 || email[i - 1] == '.')
                return false;
        } else if (!ascii_alnum(c) && strchr(atext, c) == NULL) {
            return false;
        }
    }
    return domain_valid(at + 1, len - local - 1);
}

bool validation_phone_valid(const char *phone)
{
    if (phone == NULL || phone[0] != '+' || phone[1] < '1' || phone[1] > '9')
        return false;
    size_t digits = 0;
    for (const char *p = phone + 1; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return false;
        digits++;
    }
    return digits >= 8 && digits <= 15;
}

/* ---- dates ---- */

struct ymd {
    int y, m, d;
};

static int ymd_cmp(struct ymd a, struct ymd b)
{
    if (a.y != b.y)
        return a.y < b.y ? -1 : 1;
    if (a.m != b.m)
        return a.m < b.m ? -1 : 1;
    if (a.d != b.d)
        return a.d < b.d ? -1 : 1;
    return 0;
}

static bool ymd_from_ms(int64_t ms, struct ymd *out)
{
    /* Floor division, so instants before 1970 fall on the right day. */
    int64_t days = ms / MS_PER_DAY - (ms % MS_PER_DAY < 0 ? 1 : 0);
    time_t t = (time_t)(days * 86400);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL)
        return false;
    out->y = tm.tm_year + 1900;
    out->m = tm.tm_mon + 1;
    out->d = tm.tm_mday;
    return true;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* "YYYY-MM-DD" (the JSON form) or days since 1970-01-01 (Avro's int). */
static bool parse_date(const json_t *v, struct ymd *out)
{
    if (json_is_integer(v)) {
        json_int_t days = json_integer_value(v);
        if (days < -1000000 || days > 1000000)
            return false;
        return ymd_from_ms((int64_t)days * MS_PER_DAY, out);
    }
    const char *s = json_string_value(v);
    if (s == NULL || json_string_length(v) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    int part[3] = {0, 0, 0};
    static const int pos[3] = {0, 5, 8}, width[3] = {4, 2, 2};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < width[k]; i++) {
            char c = s[pos[k] + i];
            if (c < '0' || c > '9')
                return false;
            part[k] = part[k] * 10 + (c - '0');
        }
    if (part[1] < 1 || part[1] > 12 || part[2] < 1 || part[2] > days_in_month(part[0], part[1]))
        return false;
    out->y = part[0];
    out->m = part[1];
    out->d = part[2];
    return true;
}

enum dob_state { DOB_ABSENT, DOB_BAD_FORMAT, DOB_FUTURE, DOB_TOO_OLD, DOB_OK };

/* Reads the date of birth and the age in whole years at ctx->now_ms (UTC calendar). */
static enum dob_state patient_age(const json_t *inquiry, const struct validation_ctx *ctx, int *age)
{
    const json_t *v = field2(inquiry, "patient", "date_of_birth");
    if (v == NULL || json_is_null(v))
        return DOB_ABSENT;
    struct ymd dob, today;
    if (!parse_date(v, &dob) || !ymd_from_ms(ctx->now_ms, &today))
        return DOB_BAD_FORMAT;
    if (ymd_cmp(dob, today) > 0)
        return DOB_FUTURE;
    /* A birthday not yet reached this year does not count; 29 February counts on 1 March. */
    int years = today.y - dob.y;
    if (today.m < dob.m || (today.m == dob.m && today.d < dob.d))
        years--;
    *age = years;
    return years > ctx->limits->max_age_years ? DOB_TOO_OLD : DOB_OK;
}

/* ---- conditions ---- */

/* ConditionCategory's symbols up to OTHER_LIVER are liver conditions (schema order). */
static const char *const liver_categories[] = {"HEPATITIS_A",
                                               "HEPATITIS_B",
                                               "HEPATITIS_C",
                                               "FATTY_LIVER",
                                               "NASH",
                                               "ALCOHOLIC_LIVER_DISEASE",
                                               "CIRRHOSIS",
                                               "LIVER_FAILURE",
                                               "HEPATOCELLULAR_CARCINOMA",
                                               "CHOLANGIOCARCINOMA",
                                               "LIVER_ADENOMA",
                                               "WILSON_DISEASE",
                                               "HYPEROXALURIA",
                                               "HEMOCHROMATOSIS",
                                               "AUTOIMMUNE_HEPATITIS",
                                               "PRIMARY_BILIARY_CHOLANGITIS",
                                               "PRIMARY_SCLEROSING_CHOLANGITIS",
                                               "ALPHA_1_ANTITRYPSIN_DEFICIENCY",
                                               "OTHER_LIVER"};

static const char *const non_liver_categories[] = {
    "MULTIPLE_SCLEROSIS",         "PARKINSONS_DISEASE", "ARTHRITIS", "LUPUS",
    "INFLAMMATORY_BOWEL_DISEASE", "DIABETES",           "PSORIASIS", "GRAVES_DISEASE"};

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; s != NULL && i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *category_of(const json_t *inquiry)
{
    return json_string_value(field2(inquiry, "condition", "category"));
}

static bool has_complication(const json_t *inquiry, const char *symbol)
{
    const json_t *list = field2(inquiry, "condition", "complications");
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *s = json_string_value(v);
        if (s != NULL && strcmp(s, symbol) == 0)
            return true;
    }
    return false;
}

/* The MELD score when it is an integer within 6-40. */
static bool meld_of(const json_t *inquiry, int min, int max, int *meld)
{
    const json_t *v = field2(inquiry, "condition", "meld_score");
    if (!json_is_integer(v))
        return false;
    json_int_t m = json_integer_value(v);
    if (m < min || m > max)
        return false;
    *meld = (int)m;
    return true;
}

/* ---- the rules ---- */

#define ADD_OR_FULL(r, out, code, cls, item)                                                       \
    do {                                                                                           \
        (r) = add((out), (code), (cls), (item));                                                   \
        if ((r) == NULL)                                                                           \
            return CF_ETOOBIG;                                                                     \
    } while (0)

/* One over-long text field: TEXT_TOO_LONG {field, max, actual}. */
static cf_status check_length(const json_t *v, const char *path, size_t max,
                              struct validation_findings *out)
{
    if (!json_is_string(v))
        return CF_OK;
    struct text_info ti;
    text_scan(v, true, &ti);
    if (ti.chars <= max)
        return CF_OK;
    struct validation_reason *r;
    ADD_OR_FULL(r, out, "TEXT_TOO_LONG", VALIDATION_CLASS_REJECT, VALIDATION_ITEM_NONE);
    param(r, "field", path);
    param_num(r, "max", (long long)max);
    param_num(r, "actual", (long long)ti.chars);
    return CF_OK;
}

cf_status validation_rule_text_length(const json_t *inquiry, const struct validation_ctx *ctx,
                                      struct validation_findings *out)
{
    const struct validation_limits *lim = ctx->limits;
    const json_t *g = guardian_of(inquiry);
    const struct {
        const json_t *v;
        const char *path;
        size_t max;
    } fields[] = {
        {field2(inquiry, "patient", "given_name"), "patient.given_name", lim->name_max_chars},
        {field2(inquiry, "patient", "family_name"), "patient.family_name", lim->name_max_chars},
        {field2(inquiry, "contact", "email"), "contact.email", lim->field_max_chars},
        {field2(inquiry, "contact", "phone"), "contact.phone", lim->field_max_chars},
        {field2(inquiry, "condition", "description"), "condition.description",
         lim->description_max_chars},
        {field(g, "name"), "guardian.name", lim->name_max_chars},
        {field(g, "email"), "guardian.email", lim->field_max_chars},
        {field(g, "phone"), "guardian.phone", lim->field_max_chars},
    };
    for (size_t i = 0; i < COUNT_OF(fields); i++) {
        cf_status st = check_length(fields[i].v, fields[i].path, fields[i].max, out);
        if (st != CF_OK)
            return st;
    }
    return CF_OK;
}

cf_status validation_rule_consent(const json_t *inquiry, const struct validation_ctx *ctx,
                                  struct validation_findings *out)
{
    (void)ctx;
    struct validation_reason *r;
    if (!json_is_true(field2(inquiry, "consent", "data_processing")))
        ADD_OR_FULL(r, out, "CONSENT_MISSING", VALIDATION_CLASS_REJECT, VALIDATION_ITEM_NONE);
    return CF_OK;
}

cf_status validation_rule_contact_channel(const json_t *inquiry, const struct validation_ctx *ctx,
                                          struct validation_findings *out)
{
    (void)ctx;
    const json_t *c = field(inquiry, "contact");
    bool email =
        json_is_true(field(c, "consent_email")) && validation_email_valid(field_str(c, "email"));
    bool sms =
        json_is_true(field(c, "consent_sms")) && validation_phone_valid(field_str(c, "phone"));
    struct validation_reason *r;
    if (!email && !sms)
        ADD_OR_FULL(r, out, "NO_CONTACT_CHANNEL", VALIDATION_CLASS_REJECT, VALIDATION_ITEM_NONE);
    return CF_OK;
}

/* A given (non-null) value at path that fails check: code {field} asking for item. */
static cf_status check_syntax(const json_t *v, const char *path, bool (*check)(const char *),
                              const char *code, enum validation_info_item item,
                              struct validation_findings *out)
{
    if (v == NULL || json_is_null(v))
        return CF_OK;
    const char *s = json_string_value(v);
    /* A NUL inside the string would hide the rest from the check. */
    if (s != NULL && strlen(s) == json_string_length(v) && check(s))
        return CF_OK;
    struct validation_reason *r;
    ADD_OR_FULL(r, out, code, VALIDATION_CLASS_INFO, item);
    param(r, "field", path);
    return CF_OK;
}

cf_status validation_rule_email(const json_t *inquiry, const struct validation_ctx *ctx,
                                struct validation_findings *out)
{
    (void)ctx;
    cf_status st =
        check_syntax(field2(inquiry, "contact", "email"), "contact.email", validation_email_valid,
                     "EMAIL_INVALID", VALIDATION_ITEM_EMAIL, out);
    if (st == CF_OK)
        st = check_syntax(field(guardian_of(inquiry), "email"), "guardian.email",
                          validation_email_valid, "EMAIL_INVALID", VALIDATION_ITEM_GUARDIAN, out);
    return st;
}

cf_status validation_rule_phone(const json_t *inquiry, const struct validation_ctx *ctx,
                                struct validation_findings *out)
{
    (void)ctx;
    cf_status st =
        check_syntax(field2(inquiry, "contact", "phone"), "contact.phone", validation_phone_valid,
                     "PHONE_INVALID", VALIDATION_ITEM_PHONE, out);
    if (st == CF_OK)
        st = check_syntax(field(guardian_of(inquiry), "phone"), "guardian.phone",
                          validation_phone_valid, "PHONE_INVALID", VALIDATION_ITEM_GUARDIAN, out);
    return st;
}

cf_status validation_rule_date_of_birth(const json_t *inquiry, const struct validation_ctx *ctx,
                                        struct validation_findings *out)
{
    int age = 0;
    enum dob_state state = patient_age(inquiry, ctx, &age);
    struct validation_reason *r;
    switch (state) {
    case DOB_OK:
        return CF_OK;
    case DOB_ABSENT:
        ADD_OR_FULL(r, out, "DOB_MISSING", VALIDATION_CLASS_INFO, VALIDATION_ITEM_DATE_OF_BIRTH);
        return CF_OK;
    case DOB_BAD_FORMAT:
    case DOB_FUTURE:
    case DOB_TOO_OLD:
        break;
    }
    ADD_OR_FULL(r, out, "DOB_IMPLAUSIBLE", VALIDATION_CLASS_INFO, VALIDATION_ITEM_DATE_OF_BIRTH);
    if (state == DOB_FUTURE) {
        param(r, "problem", "future");
    } else if (state == DOB_TOO_OLD) {
        param(r, "problem", "too_old");
        param_num(r, "max_age", ctx->limits->max_age_years);
    } else {
        param(r, "problem", "format");
    }
    return CF_OK;
}

cf_status validation_rule_guardian(const json_t *inquiry, const struct validation_ctx *ctx,
                                   struct validation_findings *out)
{
    int age = 0;
    /* Without a believable date of birth the DOB rule asks for it; minority is decided on the
     * next evaluation. */
    if (patient_age(inquiry, ctx, &age) != DOB_OK || age >= ctx->limits->adult_age_years)
        return CF_OK;
    const json_t *g = guardian_of(inquiry);
    struct validation_reason *r;
    if (g == NULL) {
        ADD_OR_FULL(r, out, "GUARDIAN_MISSING", VALIDATION_CLASS_INFO, VALIDATION_ITEM_GUARDIAN);
        param_num(r, "adult_age", ctx->limits->adult_age_years);
    } else if (!json_is_true(field(g, "consent"))) {
        ADD_OR_FULL(r, out, "GUARDIAN_CONSENT_MISSING", VALIDATION_CLASS_INFO,
                    VALIDATION_ITEM_GUARDIAN);
        param(r, "field", "guardian.consent");
    }
    return CF_OK;
}

cf_status validation_rule_description(const json_t *inquiry, const struct validation_ctx *ctx,
                                      struct validation_findings *out)
{
    const json_t *v = field2(inquiry, "condition", "description");
    struct validation_reason *r;
    struct text_info ti;
    text_scan(v, true, &ti);
    if (!json_is_string(v) || ti.blank) {
        ADD_OR_FULL(r, out, "DESCRIPTION_MISSING", VALIDATION_CLASS_INFO,
                    VALIDATION_ITEM_DESCRIPTION);
        param_num(r, "min", (long long)ctx->limits->description_min_chars);
        return CF_OK;
    }
    if (ti.invalid || ti.control) {
        ADD_OR_FULL(r, out, "DESCRIPTION_INVALID", VALIDATION_CLASS_INFO,
                    VALIDATION_ITEM_DESCRIPTION);
        param(r, "field", "condition.description");
        param(r, "problem", ti.invalid ? "encoding" : "control");
    }
    if (ti.chars < ctx->limits->description_min_chars) {
        ADD_OR_FULL(r, out, "DESCRIPTION_TOO_SHORT", VALIDATION_CLASS_INFO,
                    VALIDATION_ITEM_DESCRIPTION);
        param_num(r, "min", (long long)ctx->limits->description_min_chars);
        param_num(r, "actual", (long long)ti.chars);
    }
    return CF_OK;
}

cf_status validation_rule_reports(const json_t *inquiry, const struct validation_ctx *ctx,
                                  struct validation_findings *out)
{
    (void)ctx;
    if (!in_list(category_of(inquiry), liver_categories, COUNT_OF(liver_categories)))
        return CF_OK;
    const json_t *reports = field(inquiry, "reports");
    struct validation_reason *r;
    if (json_array_size(reports) == 0) {
        ADD_OR_FULL(r, out, "REPORTS_MISSING", VALIDATION_CLASS_INFO, VALIDATION_ITEM_REPORTS);
        param(r, "min", "1");
    }
    return CF_OK;
}

cf_status validation_rule_meld(const json_t *inquiry, const struct validation_ctx *ctx,
                               struct validation_findings *out)
{
    const json_t *v = field2(inquiry, "condition", "meld_score");
    int meld;
    if (v == NULL || json_is_null(v) ||
        meld_of(inquiry, ctx->limits->meld_min, ctx->limits->meld_max, &meld))
        return CF_OK;
    /* The value itself stays out of the params: it is the patient's health data. */
    struct validation_reason *r;
    ADD_OR_FULL(r, out, "MELD_OUT_OF_RANGE", VALIDATION_CLASS_INFO, VALIDATION_ITEM_MELD_SCORE);
    param_num(r, "min", ctx->limits->meld_min);
    param_num(r, "max", ctx->limits->meld_max);
    return CF_OK;
}

/* NAME_INVALID {field, problem} for a name with controls, invisible formatting or markup. */
static cf_status check_name(const json_t *v, const char *path, struct validation_findings *out)
{
    struct text_info ti;
    text_scan(v, false, &ti);
    const char *problem = NULL;
    if (ti.invalid)
        problem = "encoding";
    else if (ti.control || ti.format)
        problem = "control";
    else if (ti.markup)
        problem = "markup";
    if (problem == NULL)
        return CF_OK;
    struct validation_reason *r;
    ADD_OR_FULL(r, out, "NAME_INVALID", VALIDATION_CLASS_REVIEW, VALIDATION_ITEM_NONE);
    param(r, "field", path);
    param(r, "problem", problem);
    return CF_OK;
}

cf_status validation_rule_names(const json_t *inquiry, const struct validation_ctx *ctx,
                                struct validation_findings *out)
{
    (void)ctx;
    const json_t *p = field(inquiry, "patient");
    const json_t *g = guardian_of(inquiry);
    struct text_info given, family;
    text_scan(field(p, "given_name"), false, &given);
    text_scan(field(p, "family_name"), false, &family);
    struct validation_reason *r;
    /* One of the two may be empty (mononyms); both empty leaves nobody to address. */
    if (given.blank && family.blank) {
        ADD_OR_FULL(r, out, "NAME_INVALID", VALIDATION_CLASS_REVIEW, VALIDATION_ITEM_NONE);
        param(r, "field", "patient.name");
        param(r, "problem", "empty");
    }
    cf_status st = check_name(field(p, "given_name"), "patient.given_name", out);
    if (st == CF_OK)
        st = check_name(field(p, "family_name"), "patient.family_name", out);
    if (st == CF_OK && g != NULL) {
        struct text_info gn;
        text_scan(field(g, "name"), false, &gn);
        if (gn.blank) {
            ADD_OR_FULL(r, out, "NAME_INVALID", VALIDATION_CLASS_REVIEW, VALIDATION_ITEM_NONE);
            param(r, "field", "guardian.name");
            param(r, "problem", "empty");
        }
        st = check_name(field(g, "name"), "guardian.name", out);
    }
    return st;
}

cf_status validation_rule_condition(const json_t *inquiry, const struct validation_ctx *ctx,
                                    struct validation_findings *out)
{
    (void)ctx;
    const char *cat = category_of(inquiry);
    /* OTHER_LIVER is on the list: the facilitator treats liver disease, so an unlisted liver
     * condition is in scope and goes to a hepatologist. OTHER, and any symbol this build does
     * not know (a reader maps it to OTHER), is outside the list: a human decides. */
    if (in_list(cat, liver_categories, COUNT_OF(liver_categories)) ||
        in_list(cat, non_liver_categories, COUNT_OF(non_liver_categories)))
        return CF_OK;
    struct validation_reason *r;
    ADD_OR_FULL(r, out, "CONDITION_NEEDS_REVIEW", VALIDATION_CLASS_REVIEW, VALIDATION_ITEM_NONE);
    param(r, "category", "OTHER");
    return CF_OK;
}

/* Order = importance: the event lists its reasons most important first. */
static const struct validation_rule rule_table[] = {
    {"text_length", validation_rule_text_length},
    {"consent", validation_rule_consent},
    {"contact_channel", validation_rule_contact_channel},
    {"email", validation_rule_email},
    {"phone", validation_rule_phone},
    {"date_of_birth", validation_rule_date_of_birth},
    {"guardian", validation_rule_guardian},
    {"description", validation_rule_description},
    {"reports", validation_rule_reports},
    {"meld", validation_rule_meld},
    {"names", validation_rule_names},
    {"condition", validation_rule_condition},
};

const struct validation_rule *validation_rules(size_t *count)
{
    if (count != NULL)
        *count = COUNT_OF(rule_table);
    return rule_table;
}

/* ---- priority ---- */

/* Appends (if why) the triggers of one priority level; returns how many there are. */
static size_t priority_triggers(const json_t *inquiry, enum validation_priority level,
                                struct validation_findings *why)
{
    static const char *const urgent_complications[] = {"HEPATIC_ENCEPHALOPATHY",
                                                       "VARICEAL_BLEEDING", "KIDNEY_FAILURE"};
    size_t n = 0;
    int meld = 0;
    bool has_meld = meld_of(inquiry, MELD_VALID_MIN, MELD_VALID_MAX, &meld);
    struct validation_reason *r = NULL;
    if (level == VALIDATION_PRIORITY_URGENT) {
        if (has_meld && meld >= MELD_URGENT_MIN) {
            n++;
            if (why != NULL && (r = add(why, "URGENT_MELD", VALIDATION_CLASS_PRIORITY, 0)))
                param_num(r, "min", MELD_URGENT_MIN);
        }
        const char *cat = category_of(inquiry);
        if (cat != NULL && strcmp(cat, "LIVER_FAILURE") == 0) {
            n++;
            if (why != NULL && (r = add(why, "URGENT_CATEGORY", VALIDATION_CLASS_PRIORITY, 0)))
                param(r, "category", "LIVER_FAILURE");
        }
        for (size_t i = 0; i < COUNT_OF(urgent_complications); i++)
            if (has_complication(inquiry, urgent_complications[i])) {
                n++;
                if (why != NULL &&
                    (r = add(why, "URGENT_COMPLICATION", VALIDATION_CLASS_PRIORITY, 0)))
                    param(r, "complication", urgent_complications[i]);
            }
    } else if (level == VALIDATION_PRIORITY_HIGH) {
        if (has_meld && meld >= MELD_HIGH_MIN && meld < MELD_URGENT_MIN) {
            n++;
            if (why != NULL && (r = add(why, "HIGH_MELD", VALIDATION_CLASS_PRIORITY, 0))) {
                param_num(r, "min", MELD_HIGH_MIN);
                param_num(r, "max", MELD_URGENT_MIN - 1);
            }
        }
        if (has_complication(inquiry, "ASCITES")) {
            n++;
            if (why != NULL && (r = add(why, "HIGH_COMPLICATION", VALIDATION_CLASS_PRIORITY, 0)))
                param(r, "complication", "ASCITES");
        }
    }
    return n;
}

enum validation_priority validation_priority(const json_t *inquiry, struct validation_findings *why)
{
    if (priority_triggers(inquiry, VALIDATION_PRIORITY_URGENT, NULL) > 0) {
        priority_triggers(inquiry, VALIDATION_PRIORITY_URGENT, why);
        return VALIDATION_PRIORITY_URGENT;
    }
    if (priority_triggers(inquiry, VALIDATION_PRIORITY_HIGH, NULL) > 0) {
        priority_triggers(inquiry, VALIDATION_PRIORITY_HIGH, why);
        return VALIDATION_PRIORITY_HIGH;
    }
    return VALIDATION_PRIORITY_ROUTINE;
}

/* ---- evaluation ---- */

static bool has_class(const struct validation_findings *f, enum validation_class cls)
{
    for (size_t i = 0; i < f->count; i++)
        if (f->reasons[i].cls == cls)
            return true;
    return false;
}

cf_status validation_evaluate(const json_t *inquiry, int64_t now_ms,
                              const struct validation_limits *limits, struct validation_result *out)
{
    if (out == NULL)
        return CF_EINVAL;
    memset(out, 0, sizeof *out);
    out->priority = VALIDATION_PRIORITY_ROUTINE;
    if (!json_is_object(inquiry))
        return CF_EINVAL;
    struct validation_limits defaults;
    if (limits == NULL) {
        validation_limits_default(&defaults);
        limits = &defaults;
    }
    struct validation_ctx ctx = {.now_ms = now_ms, .limits = limits};
    for (size_t i = 0; i < COUNT_OF(rule_table); i++) {
        cf_status st = rule_table[i].fn(inquiry, &ctx, &out->findings);
        if (st != CF_OK)
            return st;
    }
    if (has_class(&out->findings, VALIDATION_CLASS_REJECT))
        out->outcome = VALIDATION_OUTCOME_REJECTED;
    else if (has_class(&out->findings, VALIDATION_CLASS_INFO))
        out->outcome = VALIDATION_OUTCOME_INFO_REQUESTED;
    else if (has_class(&out->findings, VALIDATION_CLASS_REVIEW))
        out->outcome = VALIDATION_OUTCOME_REVIEW_REQUESTED;
    else
        out->outcome = VALIDATION_OUTCOME_VALIDATED;
    out->priority = validation_priority(inquiry, &out->priority_reasons);
    if (out->outcome == VALIDATION_OUTCOME_INFO_REQUESTED) {
        bool seen[VALIDATION_ITEM_COUNT] = {false};
        for (size_t i = 0; i < out->findings.count; i++) {
            enum validation_info_item item = out->findings.reasons[i].item;
            if (out->findings.reasons[i].cls != VALIDATION_CLASS_INFO ||
                item == VALIDATION_ITEM_NONE || seen[item])
                continue;
            seen[item] = true;
            out->missing[out->nmissing++] = item;
        }
    }
    return CF_OK;
}

size_t validation_result_reasons(const struct validation_result *res,
                                 const struct validation_reason **sel)
{
    if (res == NULL || sel == NULL)
        return 0;
    const struct validation_findings *src = &res->findings;
    enum validation_class cls;
    switch (res->outcome) {
    case VALIDATION_OUTCOME_REJECTED:
        cls = VALIDATION_CLASS_REJECT;
        break;
    case VALIDATION_OUTCOME_INFO_REQUESTED:
        cls = VALIDATION_CLASS_INFO;
        break;
    case VALIDATION_OUTCOME_REVIEW_REQUESTED:
        cls = VALIDATION_CLASS_REVIEW;
        break;
    case VALIDATION_OUTCOME_VALIDATED:
    default:
        src = &res->priority_reasons;
        cls = VALIDATION_CLASS_PRIORITY;
        break;
    }
    size_t n = 0;
    for (size_t i = 0; i < src->count && n < VALIDATION_MAX_FINDINGS; i++)
        if (src->reasons[i].cls == cls)
            sel[n++] = &src->reasons[i];
    return n;
}

static json_t *reason_json(const struct validation_reason *r)
{
    json_t *obj = json_object();
    json_t *params = json_object();
    if (obj == NULL || params == NULL || json_object_set_new(obj, "code", json_string(r->code)))
        goto fail;
    for (size_t i = 0; i < r->nparams; i++)
        if (json_object_set_new(params, r->params[i].key, json_string(r->params[i].value)))
            goto fail;
    if (json_object_set_new(obj, "params", params))
        goto fail_params_taken;
    return obj;
fail:
    json_decref(params);
fail_params_taken:
    json_decref(obj);
    return NULL;
}

cf_status validation_result_to_json(const struct validation_result *res, json_t **reasons,
                                    json_t **missing)
{
    if (res == NULL || reasons == NULL)
        return CF_EINVAL;
    cf_status st = CF_ENOMEM;
    json_t *arr = json_array();
    json_t *items = json_array();
    const struct validation_reason *sel[VALIDATION_MAX_FINDINGS];
    size_t n = validation_result_reasons(res, sel);
    if (arr == NULL || items == NULL)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(arr, reason_json(sel[i])))
            goto out;
    for (size_t i = 0; i < res->nmissing; i++)
        if (json_array_append_new(items, json_string(validation_info_item_symbol(res->missing[i]))))
            goto out;
    *reasons = arr;
    arr = NULL;
    if (missing != NULL) {
        *missing = items;
        items = NULL;
    }
    st = CF_OK;
out:
    json_decref(items);
    json_decref(arr);
    return st;
}

/* ---- names ---- */

const char *validation_outcome_event(enum validation_outcome outcome)
{
    switch (outcome) {
    case VALIDATION_OUTCOME_VALIDATED:
        return "CaseValidated";
    case VALIDATION_OUTCOME_INFO_REQUESTED:
        return "CaseInfoRequested";
    case VALIDATION_OUTCOME_REVIEW_REQUESTED:
        return "CaseReviewRequested";
    case VALIDATION_OUTCOME_REJECTED:
        return "CaseRejected";
    }
    return "CaseReviewRequested";
}

const char *validation_priority_symbol(enum validation_priority priority)
{
    switch (priority) {
    case VALIDATION_PRIORITY_URGENT:
        return "URGENT";
    case VALIDATION_PRIORITY_HIGH:
        return "HIGH";
    case VALIDATION_PRIORITY_ROUTINE:
        return "ROUTINE";
    }
    return "ROUTINE";
}

const char *validation_info_item_symbol(enum validation_info_item item)
{
    static const char *const symbols[VALIDATION_ITEM_COUNT] = {
        "UNKNOWN",           "CONTACT",     "EMAIL",   "PHONE",
        "DATE_OF_BIRTH",     "DESCRIPTION", "REPORTS", "MELD_SCORE",
        "TRANSPLANT_STATUS", "GUARDIAN",    "CONSENT"};
    if ((int)item < 0 || item >= VALIDATION_ITEM_COUNT)
        return "UNKNOWN";
    return symbols[item];
}
