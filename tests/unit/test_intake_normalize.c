/* test_intake_normalize.c (unit) — intake's normalisation: text (NFC, Unicode trimming,
 * collapsing, invalid UTF-8), email, phone to E.164 per country table, IANA zone checks,
 * BCP 47 canonicalisation with ICU, and whole inquiries from deploy/samples made messy and
 * normalised back, with field errors that name the path and never the value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "normalize.h"

#define SAMPLES CF_TESTS_DIR "/../deploy/samples/"

/* ---- text ---- */

static void expect_text(const char *in, size_t len, unsigned flags, const char *want)
{
    char *out = NULL;
    char err[128] = "";
    assert_int_equal(intake_normalize_text(in, len, flags, &out, err, sizeof err), CF_OK);
    assert_non_null(out);
    assert_string_equal(out, want);
    free(out);
}

static void expect_text_fails(const char *in, size_t len, cf_status want)
{
    char *out = (char *)"sentinel";
    char err[128] = "";
    assert_int_equal(intake_normalize_text(in, len, 0, &out, err, sizeof err), want);
    assert_null(out);
    assert_true(strlen(err) > 0);
    assert_null(strstr(err, "Secret")); /* the value never reaches the message */
}

static void test_text_nfc(void **state)
{
    (void)state;
    /* "e" + U+0301 COMBINING ACUTE -> U+00E9 */
    expect_text("e\xCC\x81", 3, 0, "\xC3\xA9");
    expect_text("Jose\xCC\x81 Garci\xCC\x81"
                "a",
                15, INTAKE_TEXT_COLLAPSE,
                "Jos\xC3\xA9 Garc\xC3\xAD"
                "a");
    /* Already NFC text is unchanged ("Örnek", Turkish "Ayşe"). */
    expect_text("\xC3\x96rnek", 6, 0, "\xC3\x96rnek");
    expect_text("Ay\xC5\x9F"
                "e",
                5, 0,
                "Ay\xC5\x9F"
                "e");
    /* Compatibility forms are kept (NFC, not NFKC): U+FB01 LATIN SMALL LIGATURE FI. */
    expect_text("\xEF\xAC\x81", 3, 0, "\xEF\xAC\x81");
}

static void test_text_trim_and_collapse(void **state)
{
    (void)state;
    /* U+00A0 NO-BREAK SPACE, U+3000 IDEOGRAPHIC SPACE, tabs and newlines at both ends. */
    const char *s = "\xC2\xA0 \tAlex\n\xE3\x80\x80";
    expect_text(s, strlen(s), 0, "Alex");
    /* Inner whitespace kept without COLLAPSE, one U+0020 with it. */
    s = "  Mary \t\xC2\xA0 Ann  ";
    expect_text(s, strlen(s), 0, "Mary \t\xC2\xA0 Ann");
    expect_text(s, strlen(s), INTAKE_TEXT_COLLAPSE, "Mary Ann");
    s = "line one\n\nline two\n";
    expect_text(s, strlen(s), 0, "line one\n\nline two");
    expect_text(s, strlen(s), INTAKE_TEXT_COLLAPSE, "line one line two");
    /* Only whitespace, and nothing at all, give "". */
    expect_text(" \xC2\xA0\xE2\x80\x83 ", 7, 0, "");
    expect_text("", 0, 0, "");
    expect_text(NULL, 0, 0, "");
    /* Length is honoured: bytes after len are not read. */
    expect_text("Alex  trailing", 4, 0, "Alex");
}

static void test_text_invalid_utf8(void **state)
{
    (void)state;
    expect_text_fails("Secret\xC0\xAF", 8, CF_EINVAL);          /* overlong '/' (2 bytes) */
    expect_text_fails("Secret\xE0\x80\xAF", 9, CF_EINVAL);      /* overlong (3 bytes) */
    expect_text_fails("Secret\xF0\x80\x80\xAF", 10, CF_EINVAL); /* overlong (4 bytes) */
    expect_text_fails("Secret\xED\xA0\x80", 9, CF_EINVAL);      /* U+D800 high surrogate */
    expect_text_fails("Secret\xED\xBF\xBF", 9, CF_EINVAL);      /* U+DFFF low surrogate */
    expect_text_fails("Secret\xE2\x82", 8, CF_EINVAL);          /* truncated euro sign */
    expect_text_fails("Secret\xF0\x9F\x98", 9, CF_EINVAL);      /* truncated emoji */
    expect_text_fails("Secret\x80", 7, CF_EINVAL);              /* lone continuation */
    expect_text_fails("Secret\xF4\x90\x80\x80", 10, CF_EINVAL); /* above U+10FFFF */
    expect_text_fails("Secret\xFF", 7, CF_EINVAL);
    expect_text_fails("Sec\xC3(ret", 8, CF_EINVAL); /* bad continuation */
    expect_text_fails("Secret\0x", 8, CF_EINVAL);   /* embedded NUL */
    expect_text_fails(NULL, 3, CF_EINVAL);
    /* The edges of the valid ranges are accepted: U+0800, U+D7FF, U+E000, U+10000, U+10FFFF. */
    expect_text("\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xF0\x90\x80\x80\xF4\x8F\xBF\xBF", 17, 0,
                "\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xF0\x90\x80\x80\xF4\x8F\xBF\xBF");
}

static void test_text_too_big(void **state)
{
    (void)state;
    size_t n = INTAKE_TEXT_MAX + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'a', n);
    expect_text_fails(big, n, CF_ETOOBIG);
    char *out = NULL;
    assert_int_equal(intake_normalize_text(big, n - 1, 0, &out, NULL, 0), CF_OK);
    assert_int_equal(strlen(out), INTAKE_TEXT_MAX);
    free(out);
    free(big);
}

/* ---- email ---- */

static void expect_email(const char *in, const char *want)
{
    char *out = NULL;
    assert_int_equal(intake_normalize_email(in, strlen(in), &out, NULL, 0), CF_OK);
    assert_string_equal(out, want);
    free(out);
}

static void expect_email_fails(const char *in)
{
    char *out = (char *)"sentinel";
    char err[128] = "";
    assert_int_equal(intake_normalize_email(in, strlen(in), &out, err, sizeof err), CF_EINVAL);
    assert_null(out);
    assert_true(strlen(err) > 0);
    assert_null(strstr(err, "secret"));
}

static void test_email(void **state)
{
    (void)state;
    expect_email("  Alex.Example@EXAMPLE.COM\xC2\xA0", "Alex.Example@example.com");
    expect_email("x@Sub.Example.Org", "x@sub.example.org");
    /* Non-ASCII domain letters are left alone (IDN); NFC applies to the whole address. */
    expect_email("Jose\xCC\x81@B\xC3\x9C"
                 "CHER.de",
                 "Jos\xC3\xA9@b\xC3\x9C"
                 "cher.de");
    expect_email_fails("secret");
    expect_email_fails("secret@");
    expect_email_fails("@secret.com");
    expect_email_fails("se@cret@example.com");
    expect_email_fails("sec ret@example.com");
    expect_email_fails("secret@exa\xC2\xA0mple.com");
    expect_email_fails("");
    expect_email_fails("   ");
    char long_email[300];
    memset(long_email, 'a', sizeof long_email);
    memcpy(long_email + 250, "@x.com", 7); /* 256 bytes */
    expect_email_fails(long_email);
    char *out = NULL;
    assert_int_equal(intake_normalize_email("secret\xC0\xAF@x.com", 12, &out, NULL, 0), CF_EINVAL);
    assert_null(out);
}

/* ---- phone ---- */

static void expect_phone(const char *raw, const char *country, const char *want)
{
    char out[INTAKE_PHONE_LEN];
    char err[128] = "";
    cf_status st = intake_normalize_phone(raw, country, out, err, sizeof err);
    if (st != CF_OK)
        fail_msg("phone for %s: %s (%s)", country ? country : "(null)", cf_strerror(st), err);
    assert_string_equal(out, want);
}

static void expect_phone_fails(const char *raw, const char *country, cf_status want)
{
    char out[INTAKE_PHONE_LEN] = "untouched";
    char err[128] = "";
    cf_status st = intake_normalize_phone(raw, country, out, err, sizeof err);
    if (st != want)
        fail_msg("phone case %s/%s: %s, expected %s", raw ? raw : "(null)",
                 country ? country : "(null)", cf_strerror(st), cf_strerror(want));
    assert_string_equal(out, "untouched");
    assert_true(strlen(err) > 0);
    assert_null(strstr(err, "7700"));
    assert_null(strstr(err, "555"));
}

static void test_phone_national(void **state)
{
    (void)state;
    expect_phone("07700 900123", "GB", "+447700900123");
    expect_phone("07700 900123", "gb", "+447700900123");
    expect_phone("087 123 4567", "IE", "+353871234567");
    expect_phone("0151 2345 6789", "DE", "+4915123456789");
    expect_phone("030/1234567", "DE", "+49301234567");
    expect_phone("06 12 34 56 78", "FR", "+33612345678");
    expect_phone("612 345 678", "ES", "+34612345678");
    expect_phone("06 1234 5678", "IT", "+390612345678"); /* Italy keeps the 0 */
    expect_phone("333 123 4567", "IT", "+393331234567");
    expect_phone("06-12345678", "NL", "+31612345678");
    expect_phone("0532 123 45 67", "TR", "+905321234567");
    expect_phone("8 (912) 345-67-89", "RU", "+79123456789");
    expect_phone("(555) 555-0123", "US", "+15555550123");
    expect_phone("1-555-555-0123", "US", "+15555550123");
    expect_phone("555.555.0123", "CA", "+15555550123");
    expect_phone("050 123 4567", "AE", "+971501234567");
    expect_phone("050 123 4567", "SA", "+966501234567");
    expect_phone("050-123-4567", "IL", "+972501234567");
    expect_phone("07700\xC2\xA0"
                 "900123",
                 "GB", "+447700900123"); /* NBSP separator */
}

static void test_phone_international(void **state)
{
    (void)state;
    expect_phone("+44 7700 900123", "US", "+447700900123");
    expect_phone("+44 7700 900123", NULL, "+447700900123");
    expect_phone("0044 7700 900123", "TR", "+447700900123");
    expect_phone("+44 (0)7700 900123", "GB", "+447700900123");
    expect_phone("+90 (532) 123-45-67", "BR", "+905321234567");
    expect_phone("+15555550123", "US", "+15555550123");
    expect_phone("+12345678", NULL, "+12345678");               /* 8 digits */
    expect_phone("+123456789012345", NULL, "+123456789012345"); /* 15 digits */
}

static void test_phone_failures(void **state)
{
    (void)state;
    /* Not a phone number at all: CF_EINVAL. */
    expect_phone_fails("+4477", "GB", CF_EINVAL);             /* too short */
    expect_phone_fails("+1234567", NULL, CF_EINVAL);          /* 7 digits */
    expect_phone_fails("+1234567890123456", NULL, CF_EINVAL); /* 16 digits */
    expect_phone_fails("0770O 900123", "GB", CF_EINVAL);      /* letter O */
    expect_phone_fails("call me 7700", "GB", CF_EINVAL);
    expect_phone_fails("+44+7700900123", "GB", CF_EINVAL);
    expect_phone_fails("07700+900123", "GB", CF_EINVAL);
    expect_phone_fails("+0447700900123", "GB", CF_EINVAL); /* no code starts with 0 */
    expect_phone_fails("000447700900", "GB", CF_EINVAL);
    expect_phone_fails("", "GB", CF_EINVAL);
    expect_phone_fails(" - ", "GB", CF_EINVAL);
    expect_phone_fails(NULL, "GB", CF_EINVAL);
    expect_phone_fails("07700 900123 ext 5", "GB", CF_EINVAL);
    /* A national number we cannot convert for the country: CF_ENOTFOUND, keep as given. */
    expect_phone_fails("011 91234 5678", "BR", CF_ENOTFOUND); /* not in the table */
    expect_phone_fails("07700 900123", NULL, CF_ENOTFOUND);
    expect_phone_fails("07700 900123", "GBR", CF_ENOTFOUND);
    expect_phone_fails("7700 900123", "GB", CF_ENOTFOUND);     /* trunk 0 missing */
    expect_phone_fails("0770", "GB", CF_ENOTFOUND);            /* too short for GB */
    expect_phone_fails("555 0123", "US", CF_ENOTFOUND);        /* 7-digit local */
    expect_phone_fails("06 12 34 56 789", "FR", CF_ENOTFOUND); /* 10 digits after 0 */
    expect_phone_fails("0151 2345 6789", "TR", CF_ENOTFOUND);  /* a German mobile in TR */
}

/* ---- time zone ---- */

static void test_time_zone(void **state)
{
    (void)state;
    assert_true(intake_check_time_zone("Etc/UTC"));
    assert_true(intake_check_time_zone("Europe/Istanbul"));
    assert_true(intake_check_time_zone("Asia/Kolkata"));
    assert_true(intake_check_time_zone("Asia/Kathmandu"));
    assert_true(intake_check_time_zone("America/Argentina/Buenos_Aires"));
    assert_true(intake_check_time_zone("Etc/GMT+5"));
    assert_true(intake_check_time_zone("UTC"));

    assert_false(intake_check_time_zone("Mars/Olympus"));
    assert_false(intake_check_time_zone("../etc/passwd"));
    assert_false(intake_check_time_zone("../../../../etc/passwd"));
    assert_false(intake_check_time_zone("Europe/../Europe/Istanbul"));
    assert_false(intake_check_time_zone("/usr/share/zoneinfo/Etc/UTC"));
    assert_false(intake_check_time_zone("/etc/passwd"));
    assert_false(intake_check_time_zone(""));
    assert_false(intake_check_time_zone(NULL));
    assert_false(intake_check_time_zone("Europe")); /* a directory */
    assert_false(intake_check_time_zone("Europe//Istanbul"));
    assert_false(intake_check_time_zone("Europe/Istanbul/"));
    assert_false(intake_check_time_zone("Europe/Istanbul ")); /* not trimmed here */
    assert_false(intake_check_time_zone("europe/istanbul"));  /* names are case-sensitive */
    assert_false(intake_check_time_zone("leapseconds"));      /* a file, not TZif */
    assert_false(intake_check_time_zone("zone.tab"));
    assert_false(intake_check_time_zone("localtime"));
    assert_false(intake_check_time_zone("posixrules"));
    assert_false(intake_check_time_zone("posix/Europe/Istanbul"));
    assert_false(intake_check_time_zone("right/Etc/UTC"));
    assert_false(intake_check_time_zone("Factory"));
    assert_false(intake_check_time_zone("Europe/Istanbul\n"));
    char longname[100];
    memset(longname, 'A', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_false(intake_check_time_zone(longname));
}

/* Answers are remembered per zone (a bounded cache): more zones than it holds, each asked
 * twice in turn, all still answer right, and remembered zones never make another name valid. */
static void test_time_zone_cache(void **state)
{
    (void)state;
    static const char *const regions[] = {"Etc/GMT+", "Etc/GMT-"};
    char zone[32];
    for (int round = 0; round < 2; round++)
        for (size_t r = 0; r < 2; r++)
            for (int h = 1; h <= 12; h++) {
                (void)snprintf(zone, sizeof zone, "%s%d", regions[r], h);
                assert_true(intake_check_time_zone(zone));
            }
    static const char *const zones[] = {
        "Europe/Istanbul",     "Europe/Berlin",   "Europe/London",     "Europe/Paris",
        "Europe/Madrid",       "Europe/Rome",     "Europe/Dublin",     "Europe/Amsterdam",
        "Europe/Moscow",       "Europe/Athens",   "Europe/Vienna",     "Europe/Warsaw",
        "Europe/Prague",       "Europe/Lisbon",   "Europe/Helsinki",   "Europe/Kyiv",
        "Asia/Kolkata",        "Asia/Kathmandu",  "Asia/Tokyo",        "Asia/Dubai",
        "Asia/Riyadh",         "Asia/Jerusalem",  "Asia/Shanghai",     "Asia/Singapore",
        "Asia/Seoul",          "Asia/Bangkok",    "Asia/Jakarta",      "Asia/Karachi",
        "Asia/Tehran",         "Asia/Baku",       "Asia/Tbilisi",      "Asia/Yerevan",
        "America/New_York",    "America/Chicago", "America/Denver",    "America/Phoenix",
        "America/Los_Angeles", "America/Toronto", "America/Vancouver", "America/Mexico_City",
        "America/Bogota",      "America/Lima",    "America/Santiago",  "America/Sao_Paulo",
        "Africa/Cairo",        "Africa/Lagos",    "Africa/Nairobi",    "Africa/Johannesburg",
        "Australia/Sydney",    "Australia/Perth", "Pacific/Auckland",  "Pacific/Honolulu",
        "Atlantic/Reykjavik",  "Atlantic/Azores", "Indian/Maldives",   "Etc/UTC",
    };
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++)
            assert_true(intake_check_time_zone(zones[i]));
    assert_true(intake_check_time_zone("Etc/GMT+1")); /* pushed out of the cache by now */
    assert_false(intake_check_time_zone("europe/istanbul"));
    assert_false(intake_check_time_zone("Europe/Istanbul/"));
    assert_false(intake_check_time_zone("Europe/Istanbul "));
    assert_false(intake_check_time_zone("posix/Europe/Istanbul"));
    assert_false(intake_check_time_zone("Mars/Olympus"));
    assert_false(intake_check_time_zone("Mars/Olympus"));
}

/* ---- language ---- */

static void expect_lang(const char *tag, const char *want)
{
    char out[INTAKE_LANGUAGE_MAX + 1] = "";
    char err[128] = "";
    cf_status st = intake_canonical_language(tag, out, sizeof out, err, sizeof err);
    if (st != CF_OK)
        fail_msg("language %s: %s (%s)", tag, cf_strerror(st), err);
    assert_string_equal(out, want);
}

static void expect_lang_fails(const char *tag)
{
    char out[INTAKE_LANGUAGE_MAX + 1] = "untouched";
    char err[128] = "";
    assert_int_equal(intake_canonical_language(tag, out, sizeof out, err, sizeof err), CF_EINVAL);
    assert_string_equal(out, "untouched");
    assert_true(strlen(err) > 0);
    if (tag != NULL && strlen(tag) >= 5) /* short tags are substrings of any English text */
        assert_null(strstr(err, tag));
}

static void test_language(void **state)
{
    (void)state;
    expect_lang("en", "en");
    expect_lang("EN-gb", "en-GB");
    expect_lang("es-419", "es-419");
    expect_lang("es_419", "es-419");
    expect_lang("tr", "tr");
    expect_lang("TR-tr", "tr-TR");
    expect_lang("ru", "ru");
    expect_lang("pt-br", "pt-BR");
    expect_lang("zh-hant-tw", "zh-Hant-TW");
    expect_lang("iw", "he"); /* ICU 72 replaces the deprecated code */
    expect_lang("he", "he");

    expect_lang_fails("");
    expect_lang_fails(NULL);
    expect_lang_fails("e");
    expect_lang_fails("en-");
    expect_lang_fails("en gb");
    expect_lang_fails("12");
    expect_lang_fails("en-GB-!!");
    expect_lang_fails("qqqqqqqqq"); /* nine letters: no such subtag */
    expect_lang_fails("und");       /* undetermined is no preference */
    expect_lang_fails("x-klingon"); /* private use only */
    expect_lang_fails("en\xC3\xA9");
    expect_lang_fails("english-language-tag-that-goes-on-and-on-and-on-and-on-and-on-and-on");

    char small[3];
    assert_int_equal(intake_canonical_language("en-GB", small, sizeof small, NULL, 0), CF_ETOOBIG);
}

/* ---- inquiry ---- */

static json_t *load_sample(const char *name)
{
    char path[512];
    json_error_t jerr;
    (void)snprintf(path, sizeof path, "%s%s", SAMPLES, name);
    json_t *j = json_load_file(path, 0, &jerr);
    if (j == NULL)
        fail_msg("cannot load %s: %s", path, jerr.text);
    return j;
}

static void set_str(json_t *obj, const char *key, const char *value)
{
    assert_int_equal(json_object_set_new(obj, key, json_string(value)), 0);
}

static const struct intake_field_error *find_error(const struct intake_field_error *errs, size_t n,
                                                   const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(errs[i].path, path) == 0)
            return &errs[i];
    return NULL;
}

static void test_inquiry_samples_unchanged(void **state)
{
    (void)state;
    static const char *const names[] = {"inquiry-en-cirrhosis.json", "inquiry-es-fatty-liver.json",
                                        "inquiry-tr-wilson-minor.json"};
    for (size_t i = 0; i < 3; i++) {
        json_t *j = load_sample(names[i]);
        json_t *orig = json_deep_copy(j);
        struct intake_field_error errs[8];
        size_t n = 99;
        char err[256] = "";
        assert_int_equal(intake_normalize_inquiry(j, err, sizeof err, errs, 8, &n), CF_OK);
        assert_int_equal(n, 0);
        assert_true(json_equal(j, orig));
        json_decref(orig);
        json_decref(j);
    }
}

static void test_inquiry_messy_en(void **state)
{
    (void)state;
    json_t *expected = load_sample("inquiry-en-cirrhosis.json");
    json_t *j = json_deep_copy(expected);
    json_t *patient = json_object_get(j, "patient");
    json_t *contact = json_object_get(j, "contact");
    json_t *condition = json_object_get(j, "condition");
    json_t *report1 = json_array_get(json_object_get(j, "reports"), 1);

    set_str(patient, "given_name", "  Alex\xC2\xA0");
    set_str(patient, "family_name", "\tExample  ");
    set_str(patient, "language", "EN");
    set_str(patient, "time_zone", " America/Chicago\n");
    set_str(contact, "email", " alex.example@EXAMPLE.Com ");
    set_str(contact, "phone", "(555) 555-0123");
    char desc[1024];
    (void)snprintf(desc, sizeof desc, "\xE3\x80\x80 %s\n\n",
                   json_string_value(json_object_get(condition, "description")));
    set_str(condition, "description", desc);
    set_str(report1, "title", " Liver  panel\tand\xC2\xA0INR ");
    assert_false(json_equal(j, expected));

    struct intake_field_error errs[8];
    size_t n = 99;
    char err[256] = "";
    assert_int_equal(intake_normalize_inquiry(j, err, sizeof err, errs, 8, &n), CF_OK);
    assert_int_equal(n, 0);
    if (!json_equal(j, expected)) {
        char *dump = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
        fail_msg("normalised inquiry differs from the sample:\n%s", dump);
    }
    json_decref(j);
    json_decref(expected);
}

static void test_inquiry_guardian_and_nfc(void **state)
{
    (void)state;
    json_t *j = load_sample("inquiry-tr-wilson-minor.json");
    json_t *patient = json_object_get(j, "patient");
    json_t *guardian = json_object_get(j, "guardian");
    json_t *contact = json_object_get(j, "contact");
    set_str(patient, "family_name", "O\xCC\x88rnek"); /* decomposed Ö */
    set_str(guardian, "name",
            "  Ays\xCC\xA7"
            "e   O\xCC\x88rnek "); /* s + cedilla */
    set_str(guardian, "phone", "0532 123 45 67");
    set_str(guardian, "email", "ORNEK.aile@EXAMPLE.NET");
    set_str(contact, "email", "   ");
    set_str(patient, "language", "tr_TR");

    struct intake_field_error errs[8];
    size_t n = 99;
    assert_int_equal(intake_normalize_inquiry(j, NULL, 0, errs, 8, &n), CF_OK);
    assert_int_equal(n, 0);
    assert_string_equal(json_string_value(json_object_get(patient, "family_name")), "\xC3\x96rnek");
    assert_string_equal(json_string_value(json_object_get(guardian, "name")), "Ay\xC5\x9F"
                                                                              "e \xC3\x96rnek");
    assert_string_equal(json_string_value(json_object_get(guardian, "phone")), "+905321234567");
    assert_string_equal(json_string_value(json_object_get(guardian, "email")),
                        "ORNEK.aile@example.net");
    assert_true(json_is_null(json_object_get(contact, "email"))); /* blank = not given */
    assert_string_equal(json_string_value(json_object_get(patient, "language")), "tr-TR");
    json_decref(j);
}

static void test_inquiry_phone_kept(void **state)
{
    (void)state;
    json_t *j = load_sample("inquiry-en-cirrhosis.json");
    set_str(json_object_get(j, "patient"), "country", "BR");
    set_str(json_object_get(j, "contact"), "phone", " 011 91234 5678 ");

    struct intake_field_error errs[8];
    size_t n = 0;
    char err[256] = "";
    assert_int_equal(intake_normalize_inquiry(j, err, sizeof err, errs, 8, &n), CF_OK);
    assert_int_equal(n, 1);
    assert_string_equal(errs[0].path, "$.contact.phone");
    assert_string_equal(errs[0].code, "PHONE_UNCONVERTIBLE");
    assert_int_equal(errs[0].severity, INTAKE_KEPT);
    assert_null(strstr(errs[0].message, "91234"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "contact"), "phone")),
                        "011 91234 5678");
    json_decref(j);
}

static void test_inquiry_rejections(void **state)
{
    (void)state;
    json_t *j = load_sample("inquiry-en-cirrhosis.json");
    json_t *patient = json_object_get(j, "patient");
    json_t *contact = json_object_get(j, "contact");
    set_str(patient, "time_zone", "Mars/Olympus");
    set_str(patient, "language", "Klingon!!");
    assert_int_equal(json_object_set_new(patient, "given_name", json_integer(42)), 0);
    set_str(contact, "phone", "call SecretPhone");
    set_str(contact, "email", "SecretMail.example.com");
    /* Bytes jansson would refuse to parse can still arrive via a careless producer. */
    assert_int_equal(json_object_set_new(json_array_get(json_object_get(j, "reports"), 0), "title",
                                         json_stringn_nocheck("Secret\xED\xA0\x80", 9)),
                     0);
    assert_int_equal(json_object_set_new(json_object_get(j, "condition"), "description",
                                         json_stringn("Secret\0Desc", 11)),
                     0);

    struct intake_field_error errs[16];
    size_t n = 0;
    char err[256] = "";
    assert_int_equal(intake_normalize_inquiry(j, err, sizeof err, errs, 16, &n), CF_EINVAL);
    assert_int_equal(n, 7);
    static const struct {
        const char *path, *code;
    } want[] = {
        {"$.patient.given_name", "TYPE_INVALID"},
        {"$.patient.language", "LANGUAGE_INVALID"},
        {"$.patient.time_zone", "TIME_ZONE_UNKNOWN"},
        {"$.contact.email", "EMAIL_INVALID"},
        {"$.contact.phone", "PHONE_INVALID"},
        {"$.condition.description", "TEXT_CONTAINS_NUL"},
        {"$.reports[0].title", "TEXT_INVALID_UTF8"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const struct intake_field_error *e = find_error(errs, n, want[i].path);
        if (e == NULL)
            fail_msg("no error for %s", want[i].path);
        assert_string_equal(e->code, want[i].code);
        assert_int_equal(e->severity, INTAKE_REJECT);
        assert_true(strlen(e->message) > 0);
        assert_null(strstr(e->message, "Secret"));
        assert_null(strstr(e->message, "Mars"));
        assert_null(strstr(e->message, "Klingon"));
    }
    assert_non_null(strstr(err, "7 field(s) rejected"));
    assert_non_null(strstr(err, "$.patient.given_name"));
    assert_null(strstr(err, "Secret"));
    assert_null(strstr(err, "Mars"));
    /* Fields that were fine are still normalised and untouched values kept as given. */
    assert_string_equal(json_string_value(json_object_get(patient, "time_zone")), "Mars/Olympus");
    json_decref(j);
}

static void test_inquiry_error_cap_and_types(void **state)
{
    (void)state;
    json_t *j = load_sample("inquiry-en-cirrhosis.json");
    json_t *patient = json_object_get(j, "patient");
    set_str(patient, "time_zone", "Nowhere/Else");
    set_str(patient, "language", "");
    assert_int_equal(json_object_set_new(j, "reports", json_string("none")), 0);

    struct intake_field_error errs[1];
    size_t n = 0;
    char err[256] = "";
    assert_int_equal(intake_normalize_inquiry(j, err, sizeof err, errs, 1, &n), CF_EINVAL);
    assert_int_equal(n, 1); /* capped, but all three counted */
    assert_non_null(strstr(err, "3 field(s) rejected"));
    assert_string_equal(errs[0].path, "$.patient.language");
    json_decref(j);

    /* Not an object at all, and errors == NULL with max_errors 0. */
    json_t *arr = json_array();
    assert_int_equal(intake_normalize_inquiry(arr, err, sizeof err, NULL, 0, &n), CF_EINVAL);
    assert_int_equal(n, 0);
    json_decref(arr);
    j = load_sample("inquiry-en-cirrhosis.json");
    assert_int_equal(json_object_set_new(j, "guardian", json_integer(1)), 0);
    assert_int_equal(intake_normalize_inquiry(j, err, sizeof err, NULL, 0, &n), CF_EINVAL);
    assert_non_null(strstr(err, "$.guardian"));
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_nfc),
        cmocka_unit_test(test_text_trim_and_collapse),
        cmocka_unit_test(test_text_invalid_utf8),
        cmocka_unit_test(test_text_too_big),
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_phone_national),
        cmocka_unit_test(test_phone_international),
        cmocka_unit_test(test_phone_failures),
        cmocka_unit_test(test_time_zone),
        cmocka_unit_test(test_time_zone_cache),
        cmocka_unit_test(test_language),
        cmocka_unit_test(test_inquiry_samples_unchanged),
        cmocka_unit_test(test_inquiry_messy_en),
        cmocka_unit_test(test_inquiry_guardian_and_nfc),
        cmocka_unit_test(test_inquiry_phone_kept),
        cmocka_unit_test(test_inquiry_rejections),
        cmocka_unit_test(test_inquiry_error_cap_and_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
