/* normalize.h — intake's normalisation of an inquiry (DESIGN §3, §4): pure functions, no Kafka,
 * no HTTP, no logging. Text is trimmed and put in Unicode NFC, email domains lower-cased,
 * phones put in E.164 where the patient's country allows it, time zones checked against the
 * IANA database and language tags canonicalised to BCP 47. The rules are in README.md.
 *
 * Errors never carry the value being normalised: an errbuf or a field error names the field
 * path ("$.contact.phone") and the kind of failure only, because inquiries hold personal data
 * and these messages reach logs, HTTP answers and dead-letter headers. */
#ifndef INTAKE_NORMALIZE_H
#define INTAKE_NORMALIZE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "status.h"

/* Longest text intake accepts for one field, in bytes after NFC; longer is CF_ETOOBIG. */
#define INTAKE_TEXT_MAX 65536
/* Longest email address (RFC 5321 path limit), in bytes. */
#define INTAKE_EMAIL_MAX 254
/* Size of an E.164 buffer: '+', up to 15 digits, NUL. */
#define INTAKE_PHONE_LEN 17
/* Longest language tag intake accepts, in bytes (input and output). */
#define INTAKE_LANGUAGE_MAX 64

/* Flags for intake_normalize_text. */
#define INTAKE_TEXT_COLLAPSE 0x1u /* replace each inner run of whitespace by one U+0020 */

/* Checks that in[0..len) is well-formed UTF-8 (no overlong forms, surrogates, truncated
 * sequences or code points above U+10FFFF) without NUL bytes, puts it in NFC (utf8proc,
 * COMPOSE|STABLE), trims Unicode White_Space (incl. U+00A0, U+3000, tabs, newlines) at both
 * ends and, with INTAKE_TEXT_COLLAPSE, collapses inner whitespace runs (for names and titles).
 * in may be NULL only if len is 0. On CF_OK *out is a new NUL-terminated string, the caller's
 * to free(); on failure *out is NULL. Returns CF_EINVAL (invalid UTF-8 or NUL), CF_ETOOBIG
 * (over INTAKE_TEXT_MAX) or CF_ENOMEM. errbuf may be NULL. */
cf_status intake_normalize_text(const char *in, size_t len, unsigned flags, char **out,
                                char *errbuf, size_t errlen);

/* Normalises an email address: intake_normalize_text without collapsing, then lower-cases
 * the domain (ASCII letters only; the local part is left as is, since it may be
 * case-sensitive). Rejects with CF_EINVAL anything that has not exactly one '@', an empty
 * local part or domain, whitespace inside, or more than INTAKE_EMAIL_MAX bytes. It does not
 * check that the domain exists. On CF_OK *out is a new string, the caller's to free(). */
cf_status intake_normalize_email(const char *in, size_t len, char **out, char *errbuf,
                                 size_t errlen);

/* Puts a phone number in E.164 ("+" and 8-15 digits) into out. Spaces (incl. U+00A0), tabs,
 * dots, dashes, slashes and parentheses are dropped; "+..." and "00..." are international
 * (a "(0)" after the country code, as in "+44 (0)7700 900123", is dropped); anything else is
 * a national number converted with the calling code and trunk prefix of country_alpha2
 * (case-insensitive) from the table in README.md. Returns CF_EINVAL for characters other than
 * digits and separators, a misplaced '+', or a wrong number of digits; CF_ENOTFOUND when a
 * national number cannot be converted for that country (country NULL or not in the table, or
 * the national form lacks the country's trunk prefix): keep the value as given. out is
 * written only on CF_OK. */
cf_status intake_normalize_phone(const char *raw, const char *country_alpha2,
                                 char out[INTAKE_PHONE_LEN], char *errbuf, size_t errlen);

/* True iff zone is an IANA time zone name of the installed tzdata: only [A-Za-z0-9/_+-], not
 * empty, at most 64 bytes, no leading '/' or empty component, not one of tzdata's
 * non-zone files (posix/, right/, localtime, posixrules) or the Factory placeholder, and
 * /usr/share/zoneinfo/<zone> is a regular file starting with "TZif". zone may be NULL (false). */
bool intake_check_time_zone(const char *zone);

/* Canonicalises a BCP 47 language tag with ICU ("EN-gb" -> "en-GB", "es_419" -> "es-419",
 * "iw" -> "he"). '_' is read as '-'. Returns CF_EINVAL for a tag that is empty, longer than
 * INTAKE_LANGUAGE_MAX, not entirely well-formed, or whose language subtag ICU does not know
 * (no ISO 639 code), and CF_ETOOBIG if the result does not fit outlen. out is written only on
 * CF_OK. */
cf_status intake_canonical_language(const char *tag, char *out, size_t outlen, char *errbuf,
                                    size_t errlen);

/* How a field failure affects the inquiry. */
enum intake_severity {
    INTAKE_REJECT = 0, /* the inquiry is refused (HTTP 400, dead letter) */
    INTAKE_KEPT,       /* the value is kept as given; validation will ask the patient */
};

/* One field's failure. path and message never contain the value. */
struct intake_field_error {
    char path[64];     /* JSON path, "$.contact.phone", "$.reports[1].title" */
    const char *code;  /* static stable code, "PHONE_UNCONVERTIBLE" */
    char message[128]; /* short English explanation, no value */
    enum intake_severity severity;
};

/* Normalises inquiry (the caseflow JSON form of caseflow.common.Inquiry) in place: patient
 * given_name / family_name (collapsed), language (canonical), time_zone (checked);
 * contact email / phone (phone with the patient's country); condition description (trimmed,
 * inner whitespace kept); guardian name / email / phone; every report title (collapsed).
 * An optional email or phone that is empty after trimming becomes null (not given). Absent
 * fields are skipped (schema conversion reports them); a field of the wrong JSON type is a
 * TYPE_INVALID rejection.
 *
 * Field failures are stored in errors[0..max_errors) (errors may be NULL if max_errors is
 * 0), *nerrors says how many were stored (later ones are dropped but still counted in the
 * result). Returns CF_OK when no failure is INTAKE_REJECT (INTAKE_KEPT notes may be present),
 * CF_EINVAL when at least one is (errbuf then says how many and names the first path), or
 * CF_ENOMEM. After CF_EINVAL the inquiry may be partly normalised. nerrors must not be NULL. */
cf_status intake_normalize_inquiry(json_t *inquiry, char *errbuf, size_t errlen,
                                   struct intake_field_error *errors, size_t max_errors,
                                   size_t *nerrors);

#endif
