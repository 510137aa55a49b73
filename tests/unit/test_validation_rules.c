/* test_validation_rules.c (unit) — validation's rules: each rule on both sides of its edge,
 * every outcome, the precedence reject > info > review, the priority thresholds, the InfoItems
 * asked for, and the JSON form of the reasons. Each case starts from the English cirrhosis
 * sample inquiry (deploy/samples) and changes one thing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "avro_convert.h"
#include "rules.h"

#define SAMPLES CF_TESTS_DIR "/../deploy/samples/"
#define NOW "2026-11-24T09:30:00.000Z"

static int64_t at(const char *rfc3339)
{
    int64_t ms = 0;
    assert_int_equal(cf_avro_parse_millis(rfc3339, &ms), CF_OK);
    return ms;
}

static json_t *load(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s%s", SAMPLES, name);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (j == NULL)
        fail_msg("%s: %s", path, err.text);
    return j;
}

static json_t *base(void)
{
    return load("inquiry-en-cirrhosis.json");
}

/* inquiry.a.b = v (v stolen); b NULL sets inquiry.a. */
static void set(json_t *inq, const char *a, const char *b, json_t *v)
{
    if (b == NULL) {
        assert_int_equal(json_object_set_new(inq, a, v), 0);
        return;
    }
    json_t *obj = json_object_get(inq, a);
    assert_non_null(obj);
    assert_int_equal(json_object_set_new(obj, b, v), 0);
}

static struct validation_result res;

static struct validation_result *eval_at(const json_t *inq, int64_t now,
                                         const struct validation_limits *lim)
{
    assert_int_equal(validation_evaluate(inq, now, lim, &res), CF_OK);
    return &res;
}

static struct validation_result *eval(const json_t *inq)
{
    return eval_at(inq, at(NOW), NULL);
}

static size_t count_code(const struct validation_findings *f, const char *code)
{
    size_t n = 0;
    for (size_t i = 0; i < f->count; i++)
        if (strcmp(f->reasons[i].code, code) == 0)
            n++;
    return n;
}

static const struct validation_reason *find(const struct validation_findings *f, const char *code)
{
    for (size_t i = 0; i < f->count; i++)
        if (strcmp(f->reasons[i].code, code) == 0)
            return &f->reasons[i];
    fail_msg("no finding %s", code);
    return NULL;
}

static const char *param_of(const struct validation_reason *r, const char *key)
{
    for (size_t i = 0; i < r->nparams; i++)
        if (strcmp(r->params[i].key, key) == 0)
            return r->params[i].value;
    return NULL;
}

/* The reasons of the chosen outcome, as JSON text compared to expected JSON. */
static void assert_reasons_json(const struct validation_result *r, const char *expected)
{
    json_t *reasons = NULL, *missing = NULL;
    assert_int_equal(validation_result_to_json(r, &reasons, &missing), CF_OK);
    json_error_t err;
    json_t *want = json_loads(expected, 0, &err);
    assert_non_null(want);
    if (!json_equal(reasons, want)) {
        char *got = json_dumps(reasons, JSON_COMPACT);
        fail_msg("reasons %s, expected %s", got, expected);
    }
    json_decref(want);
    json_decref(reasons);
    json_decref(missing);
}

static void assert_missing(const struct validation_result *r, const char *expected)
{
    json_t *reasons = NULL, *missing = NULL;
    assert_int_equal(validation_result_to_json(r, &reasons, &missing), CF_OK);
    json_t *want = json_loads(expected, 0, NULL);
    assert_non_null(want);
    if (!json_equal(missing, want)) {
        char *got = json_dumps(missing, JSON_COMPACT);
        fail_msg("missing %s, expected %s", got, expected);
    }
    json_decref(want);
    json_decref(reasons);
    json_decref(missing);
}

/* One rule alone on inq: how many findings with code it appends. */
static size_t rule_count(validation_rule_fn fn, const json_t *inq, const char *code)
{
    struct validation_limits lim;
    validation_limits_default(&lim);
    struct validation_ctx ctx = {.now_ms = at(NOW), .limits = &lim};
    static struct validation_findings f;
    memset(&f, 0, sizeof f);
    assert_int_equal(fn(inq, &ctx, &f), CF_OK);
    return count_code(&f, code);
}

/* ---- samples and outcome paths ---- */

static void test_samples(void **state)
{
    (void)state;
    json_t *inq = base();
    struct validation_result *r = eval(inq);
    assert_int_equal(r->findings.count, 0);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_VALIDATED);
    assert_string_equal(validation_outcome_event(r->outcome), "CaseValidated");
    assert_int_equal(r->priority, VALIDATION_PRIORITY_HIGH);
    assert_reasons_json(r, "[{\"code\":\"HIGH_MELD\",\"params\":{\"min\":\"15\",\"max\":\"24\"}},"
                           "{\"code\":\"HIGH_COMPLICATION\",\"params\":"
                           "{\"complication\":\"ASCITES\"}}]");
    assert_missing(r, "[]");
    json_decref(inq);

    /* A minor (14) with a consenting guardian; Wilson disease, reports attached. */
    inq = load("inquiry-tr-wilson-minor.json");
    r = eval(inq);
    assert_int_equal(r->findings.count, 0);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_VALIDATED);
    assert_int_equal(r->priority, VALIDATION_PRIORITY_ROUTINE);
    assert_reasons_json(r, "[]");
    json_decref(inq);

    /* Fatty liver without reports: asked for them. */
    inq = load("inquiry-es-fatty-liver.json");
    r = eval(inq);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_INFO_REQUESTED);
    assert_string_equal(validation_outcome_event(r->outcome), "CaseInfoRequested");
    assert_reasons_json(r, "[{\"code\":\"REPORTS_MISSING\",\"params\":{\"min\":\"1\"}}]");
    assert_missing(r, "[\"REPORTS\"]");
    json_decref(inq);
}

static void test_consent(void **state)
{
    (void)state;
    json_t *inq = base();
    assert_int_equal(rule_count(validation_rule_consent, inq, "CONSENT_MISSING"), 0);
    set(inq, "consent", "data_processing", json_false());
    struct validation_result *r = eval(inq);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_REJECTED);
    assert_string_equal(validation_outcome_event(r->outcome), "CaseRejected");
    assert_reasons_json(r, "[{\"code\":\"CONSENT_MISSING\",\"params\":{}}]");
    assert_missing(r, "[]");
    /* Absent consent (or a non-boolean) is no consent. */
    assert_int_equal(json_object_del(inq, "consent"), 0);
    assert_int_equal(rule_count(validation_rule_consent, inq, "CONSENT_MISSING"), 1);
    set(inq, "consent", NULL, json_pack("{s:s}", "data_processing", "yes"));
    assert_int_equal(rule_count(validation_rule_consent, inq, "CONSENT_MISSING"), 1);
    json_decref(inq);
}

static void test_contact_channel(void **state)
{
    (void)state;
    const char *code = "NO_CONTACT_CHANNEL";
    json_t *inq = base();
    assert_int_equal(rule_count(validation_rule_contact_channel, inq, code), 0);
    /* Email alone, consented: usable. */
    set(inq, "contact", "consent_sms", json_false());
    assert_int_equal(rule_count(validation_rule_contact_channel, inq, code), 0);
    /* Phone alone, consented: usable. */
    set(inq, "contact", "consent_sms", json_true());
    set(inq, "contact", "consent_email", json_false());
    assert_int_equal(rule_count(validation_rule_contact_channel, inq, code), 0);
    /* Both given, neither consented: rejected. */
    set(inq, "contact", "consent_sms", json_false());
    assert_int_equal(rule_count(validation_rule_contact_channel, inq, code), 1);
    /* Consent to a channel that is not given does not count. */
    set(inq, "contact", "consent_email", json_true());
    set(inq, "contact", "email", json_null());
    assert_int_equal(rule_count(validation_rule_contact_channel, inq, code), 1);
    /* An unusable (invalid) address does not count either: nothing could reach the patient. */
    set(inq, "contact", "email", json_string("not-an-address"));
    struct validation_result *r = eval(inq);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_REJECTED);
    assert_int_equal(count_code(&r->findings, code), 1);
    assert_int_equal(count_code(&r->findings, "EMAIL_INVALID"), 1);
    assert_reasons_json(r, "[{\"code\":\"NO_CONTACT_CHANNEL\",\"params\":{}}]");
    json_decref(inq);
}

static void test_email_syntax(void **state)
{
    (void)state;
    static const char *const good[] = {
        "a@example.com", "first.last+tag@sub.example.co.uk", "o'brien@example.ie",
        "x@xn--bcher-kva.example", "user@example.xn--p1ai", "a-b@a-b.example.org",
        /* 64-character local part */
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.com"};
    static const char *const bad[] = {
        "", "plain", "@example.com", "a@", "a@b@example.com", "a@example", "a@example.c",
        "a@example.c0m", "a@-example.com", "a@example-.com", "a@exa_mple.com", "a@example..com",
        ".a@example.com", "a.@example.com", "a..b@example.com", "a b@example.com", "a@example.com.",
        "<a>@example.com", "ä@example.com", "a@bücher.example", "a@example.xn--",
        /* 65-character local part */
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.com"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!validation_email_valid(good[i]))
            fail_msg("rejected %s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (validation_email_valid(bad[i]))
            fail_msg("accepted %s", bad[i]);
    assert_false(validation_email_valid(NULL));

    /* 254 characters in all pass, 255 do not: "a@" + 3 x (63 + '.') + 57 + ".co". */
    char email[300];
    char label[64];
    memset(label, 'b', 63);
    label[63] = '\0';
    snprintf(email, sizeof email, "a@%s.%s.%s.%.57s.co", label, label, label, label);
    assert_int_equal(strlen(email), 254);
    assert_true(validation_email_valid(email));
    snprintf(email, sizeof email, "aa@%s.%s.%s.%.57s.co", label, label, label, label);
    assert_int_equal(strlen(email), 255);
    assert_false(validation_email_valid(email));
    /* A 64-character label is too long. */
    snprintf(email, sizeof email, "a@%sb.example.com", label);
    assert_false(validation_email_valid(email));
}

static void test_email_rule(void **state)
{
    (void)state;
    json_t *inq = base();
    assert_int_equal(rule_count(validation_rule_email, inq, "EMAIL_INVALID"), 0);
    set(inq, "contact", "email", json_string("alex.example@example"));
    struct validation_result *r = eval(inq);
    /* The phone (consented) still reaches the patient: ask for the email. */
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_INFO_REQUESTED);
    assert_reasons_json(r, "[{\"code\":\"EMAIL_INVALID\",\"params\":"
                           "{\"field\":\"contact.email\"}}]");
    assert_missing(r, "[\"EMAIL\"]");
    /* A NUL hidden in the string is not a valid address. */
    set(inq, "contact", "email", json_stringn("a@example.com\0x", 15));
    assert_int_equal(rule_count(validation_rule_email, inq, "EMAIL_INVALID"), 1);
    /* Null: not given, nothing to correct. */
    set(inq, "contact", "email", json_null());
    assert_int_equal(rule_count(validation_rule_email, inq, "EMAIL_INVALID"), 0);
    json_decref(inq);

    /* The guardian's address is asked for as part of the guardian. */
    inq = load("inquiry-tr-wilson-minor.json");
    set(inq, "guardian", "email", json_string("aile@@example.net"));
    r = eval(inq);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_INFO_REQUESTED);
    assert_string_equal(param_of(find(&r->findings, "EMAIL_INVALID"), "field"), "guardian.email");
    assert_missing(r, "[\"GUARDIAN\"]");
    json_decref(inq);
}

static void test_phone(void **state)
{
    (void)state;
    assert_true(validation_phone_valid("+12345678"));        /* 8 digits */
    assert_true(validation_phone_valid("+123456789012345")); /* 15 digits */
    assert_true(validation_phone_valid("+905321234567"));
    assert_false(validation_phone_valid("+1234567"));          /* 7 */
    assert_false(validation_phone_valid("+1234567890123456")); /* 16 */
    assert_false(validation_phone_valid("+0123456789"));
    assert_false(validation_phone_valid("15555550123"));
    assert_false(validation_phone_valid("+1 555 555 0123"));
    assert_false(validation_phone_valid("+1555555012a"));
    assert_false(validation_phone_valid("+"));
    assert_false(validation_phone_valid(""));
    assert_false(validation_phone_valid(NULL));

    json_t *inq = base();
    assert_int_equal(rule_count(validation_rule_phone, inq, "PHONE_INVALID"), 0);
    set(inq, "contact", "phone", json_string("0555 555 0123"));
    struct validation_result *r = eval(inq);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_INFO_REQUESTED);
    assert_reasons_json(r, "[{\"code\":\"PHONE_INVALID\",\"params\":"
                           "{\"field\":\"contact.phone\"}}]");
    assert_missing(r, "[\"PHONE\"]");
    json_decref(inq);
}

static void test_date_of_birth(void **state)
{
    (void)state;
    json_t *inq = base();
    set(inq, "patient", "date_of_birth", json_null());
    struct validation_result *r = eval(inq);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_INFO_REQUESTED);
    assert_reasons_json(r, "[{\"code\":\"DOB_MISSING\",\"params\":{}}]");
    assert_missing(r, "[\"DATE_OF_BIRTH\"]");

    set(inq, "patient", "date_of_birth", json_string("2026-11-25")); /* tomorrow */
    r = eval(inq);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_INFO_REQUESTED);
    assert_reasons_json(r, "[{\"code\":\"DOB_IMPLAUSIBLE\",\"params\":{\"problem\":\"future\"}}]");
    assert_missing(r, "[\"DATE_OF_BIRTH\"]");

    /* Born today: plausible (then a minor, so the guardian is asked for). */
    set(inq, "patient", "date_of_birth", json_string("2026-11-24"));
    assert_int_equal(rule_count(validation_rule_date_of_birth, inq, "DOB_IMPLAUSIBLE"), 0);

    /* 120 today is plausible, 121 is not; 120 with the birthday tomorrow neither matters. */
    set(inq, "patient", "date_of_birth", json_string("1906-11-24"));
    assert_int_equal(rule_count(validation_rule_date_of_birth, inq, "DOB_IMPLAUSIBLE"), 0);
    set(inq, "patient", "date_of_birth", json_string("1905-11-25"));
    assert_int_equal(rule_count(validation_rule_date_of_birth, inq, "DOB_IMPLAUSIBLE"), 0);
    set(inq, "patient", "date_of_birth", json_string("1905-11-24"));
    r = eval(inq);
    assert_reasons_json(r, "[{\"code\":\"DOB_IMPLAUSIBLE\",\"params\":"
                           "{\"problem\":\"too_old\",\"max_age\":\"120\"}}]");

    /* Not a calendar date. */
    set(inq, "patient", "date_of_birth", json_string("2001-02-29"));
    r = eval(inq);
    assert_string_equal(param_of(find(&r->findings, "DOB_IMPLAUSIBLE"), "problem"), "format");
    set(inq, "patient", "date_of_birth", json_string("1968-3-14"));
    assert_int_equal(rule_count(validation_rule_date_of_birth, inq, "DOB_IMPLAUSIBLE"), 1);
    /* Avro's int form (days since 1970-01-01) is understood: 1968-03-14 = -658. */
    set(inq, "patient", "date_of_birth", json_integer(-658));
    assert_int_equal(rule_count(validation_rule_date_of_birth, inq, "DOB_IMPLAUSIBLE"), 0);
    json_decref(inq);
}

static void test_minor_guardian(void **state)
{
    (void)state;
    json_t *inq = base();
    /* Exactly 18 today: an adult. */
    set(inq, "patient", "date_of_birth", json_string("2008-11-24"));
    assert_int_equal(eval(inq)->outcome, VALIDATION_OUTCOME_VALIDATED);
    /* 18 tomorrow: a minor without a guardian. */
    set(inq, "patient", "date_of_birth", json_string("2008-11-25"));
    struct validation_result *r = eval(inq);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_INFO_REQUESTED);
    assert_reasons_json(r, "[{\"code\":\"GUARDIAN_MISSING\",\"params\":{\"adult_age\":\"18\"}}]");
    assert_missing(r, "[\"GUARDIAN\"]");
    /* A guardian who has not consented. */
    set(inq, "guardian", NULL,
        json_pack("{s:s,s:s,s:b}", "name", "Sam Example", "relationship", "PARENT", "consent", 0));
    r = eval(inq);
    assert_reasons_json(r, "[{\"code\":\"GUARDIAN_CONSENT_MISSING\",\"params\":"
                           "{\"field\":\"guardian.consent\"}}]");
    assert_missing(r, "[\"GUARDIAN\"]");
    /* ... and who has. */
    set(inq, "guardian", "consent", json_true());
    assert_int_equal(eval(inq)->outcome, VALIDATION_OUTCOME_VALIDATED);
    /* Without a date of birth minority is not guessed. */
    set(inq, "guardian", NULL, json_null());
    set(inq, "patient", "date_of_birth", json_null());
    assert_int_equal(rule_count(validation_rule_guardian, inq, "GUARDIAN_MISSING"), 0);
    json_decref(inq);
}

/* n copies of a code point's UTF-8. */
static json_t *repeat(const char *unit, size_t n)
{
    char buf[1024] = "";
    size_t len = strlen(unit), at = 0;
    for (size_t i = 0; i < n && at + len < sizeof(buf); i++, at += len)
        memcpy(buf + at, unit, len);
    return json_string(buf);
}

static void test_description(void **state)
{
    (void)state;
    json_t *inq = base();
    /* 19 characters in 38 bytes: too short, counted in characters. */
    set(inq, "condition", "description", repeat("ğ", 19));
    struct validation_result *r = eval(inq);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_INFO_REQUESTED);
    assert_reasons_json(r, "[{\"code\":\"DESCRIPTION_TOO_SHORT\",\"params\":"
                           "{\"min\":\"20\",\"actual\":\"19\"}}]");
    assert_missing(r, "[\"DESCRIPTION\"]");
    /* 20 characters (40 bytes) are enough. */
    set(inq, "condition", "description", repeat("ğ", 20));
    assert_int_equal(eval(inq)->outcome, VALIDATION_OUTCOME_VALIDATED);
    /* 4-byte characters too. */
    set(inq, "condition", "description", repeat("\xF0\x9F\x98\x80", 19));
    assert_int_equal(rule_count(validation_rule_description, inq, "DESCRIPTION_TOO_SHORT"), 1);
    set(inq, "condition", "description", repeat("a", 19));
    assert_int_equal(rule_count(validation_rule_description, inq, "DESCRIPTION_TOO_SHORT"), 1);
    set(inq, "condition", "description", repeat("a", 20));
    assert_int_equal(rule_count(validation_rule_description, inq, "DESCRIPTION_TOO_SHORT"), 0);
    /* Absent, or only white space. */
    set(inq, "condition", "description", json_null());
    r = eval(inq);
    assert_reasons_json(r, "[{\"code\":\"DESCRIPTION_MISSING\",\"params\":{\"min\":\"20\"}}]");
    set(inq, "condition", "description", repeat(" ", 30));
    assert_int_equal(rule_count(validation_rule_description, inq, "DESCRIPTION_MISSING"), 1);
    /* Line breaks are text; other control characters are asked to be re-sent. */
    set(inq, "condition", "description",
        json_string("Line one of my history.\nLine two,\tindented.\r\n"));
    assert_int_equal(rule_count(validation_rule_description, inq, "DESCRIPTION_INVALID"), 0);
    set(inq, "condition", "description", json_string("Twenty-plus characters \x1b[31m red"));
    r = eval(inq);
    assert_reasons_json(r, "[{\"code\":\"DESCRIPTION_INVALID\",\"params\":"
                           "{\"field\":\"condition.description\",\"problem\":\"control\"}}]");
    /* A right-to-left override reorders what a reader sees. */
    set(inq, "condition", "description", json_string("Twenty-plus characters \xE2\x80\xAE here"));
    assert_int_equal(rule_count(validation_rule_description, inq, "DESCRIPTION_INVALID"), 1);
    /* Markup in free text is not a finding (it is never rendered unescaped). */
    set(inq, "condition", "description", json_string("My ALT is <40 now, was > 200 last year."));
    assert_int_equal(eval(inq)->outcome, VALIDATION_OUTCOME_VALIDATED);
    /* The minimum comes from the limits. */
    struct validation_limits lim;
    validation_limits_default(&lim);
    lim.description_min_chars = 5;
    set(inq, "condition", "description", json_string("short"));
    assert_int_equal(eval_at(inq, at(NOW), &lim)->outcome, VALIDATION_OUTCOME_VALIDATED);
    assert_int_equal(eval(inq)->outcome, VALIDATION_OUTCOME_INFO_REQUESTED);
    json_decref(inq);
}

static void test_reports(void **state)
{
    (void)state;
    json_t *inq = base();
    assert_int_equal(rule_count(validation_rule_reports, inq, "REPORTS_MISSING"), 0);
    set(inq, "reports", NULL, json_array());
    struct validation_result *r = eval(inq);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_INFO_REQUESTED);
    assert_reasons_json(r, "[{\"code\":\"REPORTS_MISSING\",\"params\":{\"min\":\"1\"}}]");
    assert_missing(r, "[\"REPORTS\"]");
    /* Absent = the default []. */
    assert_int_equal(json_object_del(inq, "reports"), 0);
    assert_int_equal(rule_count(validation_rule_reports, inq, "REPORTS_MISSING"), 1);
    set(inq, "condition", "category", json_string("OTHER_LIVER"));
    assert_int_equal(rule_count(validation_rule_reports, inq, "REPORTS_MISSING"), 1);
    set(inq, "condition", "category", json_string("HEPATITIS_A"));
    assert_int_equal(rule_count(validation_rule_reports, inq, "REPORTS_MISSING"), 1);
    /* Non-liver conditions need none. */
    set(inq, "condition", "category", json_string("DIABETES"));
    assert_int_equal(rule_count(validation_rule_reports, inq, "REPORTS_MISSING"), 0);
    json_decref(inq);
}

static void test_meld_range(void **state)
{
    (void)state;
    static const struct {
        int meld;
        size_t findings;
    } cases[] = {{5, 1}, {6, 0}, {40, 0}, {41, 1}, {-1, 1}, {0, 1}};
    json_t *inq = base();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        set(inq, "condition", "meld_score", json_integer(cases[i].meld));
        if (rule_count(validation_rule_meld, inq, "MELD_OUT_OF_RANGE") != cases[i].findings)
            fail_msg("MELD %d", cases[i].meld);
    }
    set(inq, "condition", "meld_score", json_integer(41));
    struct validation_result *r = eval(inq);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_INFO_REQUESTED);
    /* The value itself is health data: only the range is named. */
    assert_reasons_json(r, "[{\"code\":\"MELD_OUT_OF_RANGE\",\"params\":"
                           "{\"min\":\"6\",\"max\":\"40\"}}]");
    assert_missing(r, "[\"MELD_SCORE\"]");
    set(inq, "condition", "meld_score", json_null());
    assert_int_equal(rule_count(validation_rule_meld, inq, "MELD_OUT_OF_RANGE"), 0);
    set(inq, "condition", "meld_score", json_string("17"));
    assert_int_equal(rule_count(validation_rule_meld, inq, "MELD_OUT_OF_RANGE"), 1);
    json_decref(inq);
}

static enum validation_priority prio(const json_t *inq)
{
    return validation_priority(inq, NULL);
}

static void test_priority(void **state)
{
    (void)state;
    json_t *inq = base();
    set(inq, "condition", "complications", json_array());
    static const struct {
        int meld;
        enum validation_priority want;
    } cases[] = {{6, VALIDATION_PRIORITY_ROUTINE},
                 {14, VALIDATION_PRIORITY_ROUTINE},
                 {15, VALIDATION_PRIORITY_HIGH},
                 {24, VALIDATION_PRIORITY_HIGH},
                 {25, VALIDATION_PRIORITY_URGENT},
                 {40, VALIDATION_PRIORITY_URGENT},
                 /* outside 6-40 the value is not believed */
                 {41, VALIDATION_PRIORITY_ROUTINE},
                 {99, VALIDATION_PRIORITY_ROUTINE}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        set(inq, "condition", "meld_score", json_integer(cases[i].meld));
        if (prio(inq) != cases[i].want)
            fail_msg("MELD %d gave %s", cases[i].meld, validation_priority_symbol(prio(inq)));
    }
    set(inq, "condition", "meld_score", json_null());
    assert_int_equal(prio(inq), VALIDATION_PRIORITY_ROUTINE);

    static const char *const urgent[] = {"HEPATIC_ENCEPHALOPATHY", "VARICEAL_BLEEDING",
                                         "KIDNEY_FAILURE"};
    for (size_t i = 0; i < 3; i++) {
        set(inq, "condition", "complications", json_pack("[s]", urgent[i]));
        assert_int_equal(prio(inq), VALIDATION_PRIORITY_URGENT);
    }
    set(inq, "condition", "complications", json_pack("[s]", "ASCITES"));
    assert_int_equal(prio(inq), VALIDATION_PRIORITY_HIGH);
    set(inq, "condition", "complications", json_pack("[s]", "INFECTION"));
    assert_int_equal(prio(inq), VALIDATION_PRIORITY_ROUTINE);
    set(inq, "condition", "category", json_string("LIVER_FAILURE"));
    assert_int_equal(prio(inq), VALIDATION_PRIORITY_URGENT);

    /* URGENT wins over HIGH, and only its triggers explain it. */
    set(inq, "condition", "category", json_string("CIRRHOSIS"));
    set(inq, "condition", "meld_score", json_integer(30));
    set(inq, "condition", "complications", json_pack("[s,s]", "ASCITES", "VARICEAL_BLEEDING"));
    struct validation_result *r = eval(inq);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_VALIDATED);
    assert_int_equal(r->priority, VALIDATION_PRIORITY_URGENT);
    assert_string_equal(validation_priority_symbol(r->priority), "URGENT");
    assert_reasons_json(r, "[{\"code\":\"URGENT_MELD\",\"params\":{\"min\":\"25\"}},"
                           "{\"code\":\"URGENT_COMPLICATION\",\"params\":"
                           "{\"complication\":\"VARICEAL_BLEEDING\"}}]");
    /* The priority is set whatever the outcome. */
    set(inq, "consent", "data_processing", json_false());
    assert_int_equal(eval(inq)->priority, VALIDATION_PRIORITY_URGENT);
    json_decref(inq);
}

static void test_condition_review(void **state)
{
    (void)state;
    json_t *inq = base();
    set(inq, "condition", "category", json_string("OTHER"));
    struct validation_result *r = eval(inq);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_REVIEW_REQUESTED);
    assert_string_equal(validation_outcome_event(r->outcome), "CaseReviewRequested");
    assert_reasons_json(r, "[{\"code\":\"CONDITION_NEEDS_REVIEW\",\"params\":"
                           "{\"category\":\"OTHER\"}}]");
    assert_missing(r, "[]");
    /* A symbol this build does not know is treated as OTHER. */
    set(inq, "condition", "category", json_string("SOMETHING_NEW"));
    assert_int_equal(eval(inq)->outcome, VALIDATION_OUTCOME_REVIEW_REQUESTED);
    /* OTHER_LIVER and the facilitator's non-liver conditions are on the list. */
    set(inq, "condition", "category", json_string("OTHER_LIVER"));
    assert_int_equal(eval(inq)->outcome, VALIDATION_OUTCOME_VALIDATED);
    set(inq, "condition", "category", json_string("GRAVES_DISEASE"));
    assert_int_equal(eval(inq)->outcome, VALIDATION_OUTCOME_VALIDATED);
    json_decref(inq);
}

static void test_names(void **state)
{
    (void)state;
    json_t *inq = base();
    set(inq, "patient", "given_name", json_string("<script>alert(1)</script>"));
    struct validation_result *r = eval(inq);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_REVIEW_REQUESTED);
    assert_reasons_json(r, "[{\"code\":\"NAME_INVALID\",\"params\":"
                           "{\"field\":\"patient.given_name\",\"problem\":\"markup\"}}]");
    set(inq, "patient", "given_name", json_string("Alex"));
    set(inq, "patient", "family_name", json_string("Exam\x07ple"));
    r = eval(inq);
    assert_string_equal(param_of(find(&r->findings, "NAME_INVALID"), "problem"), "control");
    assert_string_equal(param_of(find(&r->findings, "NAME_INVALID"), "field"),
                        "patient.family_name");
    /* A right-to-left override and a soft hyphen hide what is shown. */
    set(inq, "patient", "family_name", json_string("Exa\xE2\x80\xAEmple"));
    assert_int_equal(rule_count(validation_rule_names, inq, "NAME_INVALID"), 1);
    set(inq, "patient", "family_name", json_string("Exa\xC2\xADmple"));
    assert_int_equal(rule_count(validation_rule_names, inq, "NAME_INVALID"), 1);
    /* A newline is a control character in a name. */
    set(inq, "patient", "family_name", json_string("Exam\nple"));
    assert_int_equal(rule_count(validation_rule_names, inq, "NAME_INVALID"), 1);
    /* Real names: diacritics, apostrophes, hyphens, Cyrillic, ZWNJ (Persian). */
    set(inq, "patient", "family_name", json_string("O'Brien-Örnek Иванова"));
    assert_int_equal(rule_count(validation_rule_names, inq, "NAME_INVALID"), 0);
    set(inq, "patient", "family_name", json_string("\xD9\x85\xDB\x8C\xE2\x80\x8C\xD8\xB1"));
    assert_int_equal(rule_count(validation_rule_names, inq, "NAME_INVALID"), 0);
    set(inq, "patient", "family_name", json_string("Example>"));
    assert_int_equal(rule_count(validation_rule_names, inq, "NAME_INVALID"), 1);
    /* A mononym (either name alone) is fine; no name at all is not. */
    set(inq, "patient", "given_name", json_string(""));
    set(inq, "patient", "family_name", json_string("Example"));
    assert_int_equal(rule_count(validation_rule_names, inq, "NAME_INVALID"), 0);
    set(inq, "patient", "given_name", json_string("Alex"));
    set(inq, "patient", "family_name", json_string(""));
    assert_int_equal(rule_count(validation_rule_names, inq, "NAME_INVALID"), 0);
    set(inq, "patient", "given_name", json_string("  "));
    r = eval(inq);
    assert_reasons_json(r, "[{\"code\":\"NAME_INVALID\",\"params\":"
                           "{\"field\":\"patient.name\",\"problem\":\"empty\"}}]");
    json_decref(inq);

    inq = load("inquiry-tr-wilson-minor.json");
    set(inq, "guardian", "name", json_string("Ayşe <b>Örnek</b>"));
    r = eval(inq);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_REVIEW_REQUESTED);
    assert_string_equal(param_of(find(&r->findings, "NAME_INVALID"), "field"), "guardian.name");
    json_decref(inq);
}

static void test_text_length(void **state)
{
    (void)state;
    json_t *inq = base();
    /* 100 characters (200 bytes) pass, 101 are rejected. */
    set(inq, "patient", "given_name", repeat("é", 100));
    assert_int_equal(rule_count(validation_rule_text_length, inq, "TEXT_TOO_LONG"), 0);
    set(inq, "patient", "given_name", repeat("é", 101));
    struct validation_result *r = eval(inq);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_REJECTED);
    assert_reasons_json(r, "[{\"code\":\"TEXT_TOO_LONG\",\"params\":{\"field\":"
                           "\"patient.given_name\",\"max\":\"100\",\"actual\":\"101\"}}]");
    set(inq, "patient", "given_name", json_string("Alex"));

    /* The description: 5000 characters pass, 5001 are rejected. */
    char *big = malloc(5002);
    assert_non_null(big);
    memset(big, 'x', 5001);
    big[5001] = '\0';
    set(inq, "condition", "description", json_string(big));
    r = eval(inq);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_REJECTED);
    assert_string_equal(param_of(find(&r->findings, "TEXT_TOO_LONG"), "field"),
                        "condition.description");
    big[5000] = '\0';
    set(inq, "condition", "description", json_string(big));
    assert_int_equal(eval(inq)->outcome, VALIDATION_OUTCOME_VALIDATED);
    free(big);

    /* An absurd email is rejected, not asked for again. */
    char mail[400];
    memset(mail, 'a', 330);
    (void)snprintf(mail + 330, sizeof(mail) - 330, "@example.com");
    set(inq, "contact", "email", json_string(mail));
    r = eval(inq);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_REJECTED);
    assert_string_equal(param_of(find(&r->findings, "TEXT_TOO_LONG"), "field"), "contact.email");
    /* The limit comes from the limits. */
    struct validation_limits lim;
    validation_limits_default(&lim);
    lim.name_max_chars = 3;
    set(inq, "contact", "email", json_string("alex.example@example.com"));
    assert_int_equal(eval_at(inq, at(NOW), &lim)->outcome, VALIDATION_OUTCOME_REJECTED);
    json_decref(inq);
}

/* ---- precedence, items, JSON ---- */

static void test_precedence(void **state)
{
    (void)state;
    json_t *inq = base();
    set(inq, "condition", "category", json_string("OTHER"));
    set(inq, "condition", "meld_score", json_integer(50));
    set(inq, "consent", "data_processing", json_false());
    struct validation_result *r = eval(inq);
    /* Reject beats info beats review; every finding is kept. */
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_REJECTED);
    assert_int_equal(r->findings.count, 3);
    assert_int_equal(count_code(&r->findings, "MELD_OUT_OF_RANGE"), 1);
    assert_int_equal(count_code(&r->findings, "CONDITION_NEEDS_REVIEW"), 1);
    assert_reasons_json(r, "[{\"code\":\"CONSENT_MISSING\",\"params\":{}}]");
    assert_missing(r, "[]");

    set(inq, "consent", "data_processing", json_true());
    r = eval(inq);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_INFO_REQUESTED);
    assert_reasons_json(r, "[{\"code\":\"MELD_OUT_OF_RANGE\",\"params\":"
                           "{\"min\":\"6\",\"max\":\"40\"}}]");

    set(inq, "condition", "meld_score", json_integer(20));
    assert_int_equal(eval(inq)->outcome, VALIDATION_OUTCOME_REVIEW_REQUESTED);
    set(inq, "condition", "category", json_string("CIRRHOSIS"));
    assert_int_equal(eval(inq)->outcome, VALIDATION_OUTCOME_VALIDATED);
    json_decref(inq);
}

static void test_missing_items(void **state)
{
    (void)state;
    json_t *inq = base();
    set(inq, "contact", "email", json_string("bad@"));
    set(inq, "patient", "date_of_birth", json_null());
    /* Two findings about the description name one item. */
    set(inq, "condition", "description", json_string("too\x01short"));
    set(inq, "reports", NULL, json_array());
    struct validation_result *r = eval(inq);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_INFO_REQUESTED);
    assert_int_equal(count_code(&r->findings, "DESCRIPTION_INVALID"), 1);
    assert_int_equal(count_code(&r->findings, "DESCRIPTION_TOO_SHORT"), 1);
    assert_missing(r, "[\"EMAIL\",\"DATE_OF_BIRTH\",\"DESCRIPTION\",\"REPORTS\"]");
    assert_int_equal(r->nmissing, 4);
    assert_reasons_json(
        r, "[{\"code\":\"EMAIL_INVALID\",\"params\":{\"field\":\"contact.email\"}},"
           "{\"code\":\"DOB_MISSING\",\"params\":{}},"
           "{\"code\":\"DESCRIPTION_INVALID\",\"params\":{\"field\":\"condition.description\","
           "\"problem\":\"control\"}},"
           "{\"code\":\"DESCRIPTION_TOO_SHORT\",\"params\":{\"min\":\"20\",\"actual\":\"9\"}},"
           "{\"code\":\"REPORTS_MISSING\",\"params\":{\"min\":\"1\"}}]");
    json_decref(inq);

    /* The guardian named once for three guardian findings. */
    inq = load("inquiry-tr-wilson-minor.json");
    set(inq, "guardian", "consent", json_false());
    set(inq, "guardian", "email", json_string("x"));
    set(inq, "guardian", "phone", json_string("y"));
    r = eval(inq);
    assert_int_equal(r->findings.count, 3);
    assert_missing(r, "[\"GUARDIAN\"]");
    json_decref(inq);

    assert_string_equal(validation_info_item_symbol(VALIDATION_ITEM_MELD_SCORE), "MELD_SCORE");
    assert_string_equal(validation_info_item_symbol(VALIDATION_ITEM_COUNT), "UNKNOWN");
}

static void test_hostile_input(void **state)
{
    (void)state;
    json_t *j = json_array();
    assert_int_equal(validation_evaluate(j, 0, NULL, &res), CF_EINVAL);
    assert_int_equal(validation_evaluate(NULL, 0, NULL, &res), CF_EINVAL);
    json_decref(j);
    json_t *inq = base();
    assert_int_equal(validation_evaluate(inq, 0, NULL, NULL), CF_EINVAL);
    json_t *reasons = NULL;
    assert_int_equal(validation_result_to_json(NULL, &reasons, NULL), CF_EINVAL);
    assert_null(reasons);
    json_decref(inq);

    /* An empty object: every field at its default; rejected, nothing crashes. */
    j = json_object();
    struct validation_result *r = eval(j);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_REJECTED);
    assert_int_equal(count_code(&r->findings, "CONSENT_MISSING"), 1);
    assert_int_equal(count_code(&r->findings, "NO_CONTACT_CHANNEL"), 1);
    assert_int_equal(count_code(&r->findings, "DOB_MISSING"), 1);
    assert_int_equal(count_code(&r->findings, "CONDITION_NEEDS_REVIEW"), 1);
    json_decref(j);

    /* Wrong types everywhere. */
    j = json_pack("{s:i,s:s,s:[],s:{s:i,s:b},s:s,s:i}", "patient", 1, "contact", "x", "condition",
                  "guardian", "name", 7, "consent", 1, "reports", "none", "consent", 3);
    assert_non_null(j);
    r = eval(j);
    assert_int_equal(r->outcome, VALIDATION_OUTCOME_REJECTED);
    json_decref(j);

    /* A full findings list is reported, not overrun. */
    inq = base();
    set(inq, "consent", "data_processing", json_false());
    struct validation_limits lim;
    validation_limits_default(&lim);
    struct validation_ctx ctx = {.now_ms = at(NOW), .limits = &lim};
    static struct validation_findings f;
    f.count = VALIDATION_MAX_FINDINGS;
    assert_int_equal(validation_rule_consent(inq, &ctx, &f), CF_ETOOBIG);
    assert_int_equal(f.count, VALIDATION_MAX_FINDINGS);
    json_decref(inq);
}

/* Every rule is in the table, and every code the rules emit is documented in the README. */
static void test_table_and_readme(void **state)
{
    (void)state;
    size_t n = 0;
    const struct validation_rule *rules = validation_rules(&n);
    assert_int_equal(n, 12);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(rules[i].fn);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(rules[i].name, rules[k].name);
    }
    FILE *fp = fopen(CF_TESTS_DIR "/../services/validation/README.md", "r");
    assert_non_null(fp);
    static char text[65536];
    size_t len = fread(text, 1, sizeof text - 1, fp);
    text[len] = '\0';
    fclose(fp);
    static const char *const codes[] = {
        "TEXT_TOO_LONG",          "CONSENT_MISSING",     "NO_CONTACT_CHANNEL",
        "EMAIL_INVALID",          "PHONE_INVALID",       "DOB_MISSING",
        "DOB_IMPLAUSIBLE",        "GUARDIAN_MISSING",    "GUARDIAN_CONSENT_MISSING",
        "DESCRIPTION_MISSING",    "DESCRIPTION_INVALID", "DESCRIPTION_TOO_SHORT",
        "REPORTS_MISSING",        "MELD_OUT_OF_RANGE",   "NAME_INVALID",
        "CONDITION_NEEDS_REVIEW", "URGENT_MELD",         "URGENT_CATEGORY",
        "URGENT_COMPLICATION",    "HIGH_MELD",           "HIGH_COMPLICATION"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "`%s`", codes[i]);
        if (strstr(text, needle) == NULL)
            fail_msg("README does not document %s", codes[i]);
    }
    for (size_t i = 0; i < n; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "`%s`", rules[i].name);
        if (strstr(text, needle) == NULL)
            fail_msg("README does not name rule %s", rules[i].name);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples),          cmocka_unit_test(test_consent),
        cmocka_unit_test(test_contact_channel),  cmocka_unit_test(test_email_syntax),
        cmocka_unit_test(test_email_rule),       cmocka_unit_test(test_phone),
        cmocka_unit_test(test_date_of_birth),    cmocka_unit_test(test_minor_guardian),
        cmocka_unit_test(test_description),      cmocka_unit_test(test_reports),
        cmocka_unit_test(test_meld_range),       cmocka_unit_test(test_priority),
        cmocka_unit_test(test_condition_review), cmocka_unit_test(test_names),
        cmocka_unit_test(test_text_length),      cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_missing_items),    cmocka_unit_test(test_hostile_input),
        cmocka_unit_test(test_table_and_readme),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
