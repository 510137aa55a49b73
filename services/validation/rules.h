/* rules.h — validation's rules: small pure functions over an inquiry in caseflow's JSON form
 * (common/avro_convert.h), the outcome they imply and the priority of the case.
 *
 * Nothing here talks to Kafka or Redis, allocates (but validation_result_to_json) or logs. The
 * inquiry is exactly the "inquiry" field of CaseOpened as cf_avro_to_json renders it: unions
 * are their value or null, dates "YYYY-MM-DD", enums their symbol. Missing fields are treated
 * as the schema's default (false, null, []), so no input crashes a rule.
 *
 * Every finding carries a stable code (services/validation/README.md lists them all), up to
 * VALIDATION_MAX_PARAMS parameters that never hold text typed by the patient, contact data,
 * dates or the MELD value, the outcome class it implies, and the InfoItem to ask for. */
#ifndef VALIDATION_RULES_H
#define VALIDATION_RULES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define VALIDATION_MAX_FINDINGS 32
#define VALIDATION_MAX_PARAMS 4
#define VALIDATION_PARAM_KEY_LEN 16
#define VALIDATION_PARAM_VALUE_LEN 40

/* Bounds the rules use; validation_limits_default() gives the documented defaults. */
struct validation_limits {
    size_t description_min_chars; /* 20: shorter descriptions are asked for again */
    size_t description_max_chars; /* 5000: longer is absurd, the case is rejected */
    size_t name_max_chars;        /* 100: patient and guardian names */
    size_t field_max_chars;       /* 320: email and phone fields */
    int meld_min;                 /* 6 */
    int meld_max;                 /* 40 */
    int adult_age_years;          /* 18: younger patients need a consenting guardian */
    int max_age_years;            /* 120: older is implausible */
};

/* What a finding implies. PRIORITY findings explain the priority and never change the outcome. */
enum validation_class {
    VALIDATION_CLASS_REJECT,
    VALIDATION_CLASS_INFO,
    VALIDATION_CLASS_REVIEW,
    VALIDATION_CLASS_PRIORITY,
};

/* The single outcome of one evaluation, i.e. which event the service emits. */
enum validation_outcome {
    VALIDATION_OUTCOME_VALIDATED,        /* CaseValidated */
    VALIDATION_OUTCOME_INFO_REQUESTED,   /* CaseInfoRequested */
    VALIDATION_OUTCOME_REVIEW_REQUESTED, /* CaseReviewRequested */
    VALIDATION_OUTCOME_REJECTED,         /* CaseRejected */
};

/* caseflow.common.Priority, in the schema's symbol order. */
enum validation_priority {
    VALIDATION_PRIORITY_URGENT,
    VALIDATION_PRIORITY_HIGH,
    VALIDATION_PRIORITY_ROUTINE,
};

/* caseflow.common.InfoItem, values = the schema's symbol indexes. NONE (UNKNOWN in the schema)
 * is never written: it marks findings that ask for nothing. */
enum validation_info_item {
    VALIDATION_ITEM_NONE = 0,
    VALIDATION_ITEM_CONTACT,
    VALIDATION_ITEM_EMAIL,
    VALIDATION_ITEM_PHONE,
    VALIDATION_ITEM_DATE_OF_BIRTH,
    VALIDATION_ITEM_DESCRIPTION,
    VALIDATION_ITEM_REPORTS,
    VALIDATION_ITEM_MELD_SCORE,
    VALIDATION_ITEM_TRANSPLANT_STATUS,
    VALIDATION_ITEM_GUARDIAN,
    VALIDATION_ITEM_CONSENT,
    VALIDATION_ITEM_COUNT
};

struct validation_param {
    char key[VALIDATION_PARAM_KEY_LEN];
    char value[VALIDATION_PARAM_VALUE_LEN];
};

/* One rule result; code is a static string ("EMAIL_INVALID"). */
struct validation_reason {
    const char *code;
    enum validation_class cls;
    enum validation_info_item item; /* VALIDATION_ITEM_NONE unless cls is INFO */
    size_t nparams;
    struct validation_param params[VALIDATION_MAX_PARAMS];
};

/* Findings in the order the rules produced them; a plain value, zero it to start. */
struct validation_findings {
    size_t count;
    struct validation_reason reasons[VALIDATION_MAX_FINDINGS];
};

/* What a rule sees besides the inquiry. */
struct validation_ctx {
    int64_t now_ms; /* evaluation time, ms since the epoch (UTC): age and date-of-birth checks */
    const struct validation_limits *limits; /* never NULL inside a rule */
};

/* Everything one evaluation decided. findings keeps every rule's findings, whatever the
 * outcome; priority_reasons explains the priority; missing lists the InfoItems of the INFO
 * findings, without duplicates, in the order first asked for. */
struct validation_result {
    enum validation_outcome outcome;
    enum validation_priority priority;
    struct validation_findings findings;
    struct validation_findings priority_reasons;
    size_t nmissing;
    enum validation_info_item missing[VALIDATION_ITEM_COUNT];
};

/* A rule: appends its findings (if any) to out. Returns CF_OK, or CF_ETOOBIG when out is full. */
typedef cf_status (*validation_rule_fn)(const json_t *inquiry, const struct validation_ctx *ctx,
                                        struct validation_findings *out);

struct validation_rule {
    const char *name; /* "consent", as in the README's table */
    validation_rule_fn fn;
};

/* Fills *limits with the defaults documented above. */
void validation_limits_default(struct validation_limits *limits);

/* The rules validation_evaluate runs, in order (most important first); *count gets their
 * number. The table is static and read-only. */
const struct validation_rule *validation_rules(size_t *count);

/* Runs every rule on inquiry at now_ms and decides the outcome: any REJECT finding -> REJECTED,
 * else any INFO -> INFO_REQUESTED, else any REVIEW -> REVIEW_REQUESTED, else VALIDATED; sets
 * the priority with validation_priority(). limits may be NULL (defaults). out is overwritten.
 * Returns CF_EINVAL if inquiry is not a JSON object or out is NULL, CF_ETOOBIG if the findings
 * overflow (cannot happen with the built-in rules), else CF_OK. */
cf_status validation_evaluate(const json_t *inquiry, int64_t now_ms,
                              const struct validation_limits *limits,
                              struct validation_result *out);

/* The priority of an inquiry: URGENT for MELD >= 25, category LIVER_FAILURE or a complication
 * HEPATIC_ENCEPHALOPATHY, VARICEAL_BLEEDING or KIDNEY_FAILURE; HIGH for MELD 15-24 or
 * ASCITES; else ROUTINE. A MELD outside 6-40 is not believed and counts as absent. If why is
 * not NULL, the findings (class PRIORITY) that set the returned level are appended to it. */
enum validation_priority validation_priority(const json_t *inquiry,
                                             struct validation_findings *why);

/* The reasons the event of res's outcome carries: the findings of the deciding class, or the
 * priority reasons for VALIDATED. Appends pointers into res to sel (room for
 * VALIDATION_MAX_FINDINGS) and returns their number. */
size_t validation_result_reasons(const struct validation_result *res,
                                 const struct validation_reason **sel);

/* Renders the event's reasons as a JSON array of caseflow.common.Reason ({"code": ...,
 * "params": {...}}) into *reasons and, if missing is not NULL, the InfoItem symbols as a JSON
 * array into *missing (empty unless INFO_REQUESTED). Both are new references the caller
 * json_decref()s; on failure neither is set. Returns CF_EINVAL on NULL res/reasons, CF_ENOMEM. */
cf_status validation_result_to_json(const struct validation_result *res, json_t **reasons,
                                    json_t **missing);

/* Static names: the event ("CaseRejected"), the Priority and InfoItem symbols. Never NULL. */
const char *validation_outcome_event(enum validation_outcome outcome);
const char *validation_priority_symbol(enum validation_priority priority);
const char *validation_info_item_symbol(enum validation_info_item item);

/* Syntax checks, exposed for their own tests. See README for what passes. */
bool validation_email_valid(const char *email);
bool validation_phone_valid(const char *phone);

/* The rules, each appending its findings to out (codes in README). */
cf_status validation_rule_text_length(const json_t *inquiry, const struct validation_ctx *ctx,
                                      struct validation_findings *out);
cf_status validation_rule_consent(const json_t *inquiry, const struct validation_ctx *ctx,
                                  struct validation_findings *out);
cf_status validation_rule_contact_channel(const json_t *inquiry, const struct validation_ctx *ctx,
                                          struct validation_findings *out);
cf_status validation_rule_email(const json_t *inquiry, const struct validation_ctx *ctx,
                                struct validation_findings *out);
cf_status validation_rule_phone(const json_t *inquiry, const struct validation_ctx *ctx,
                                struct validation_findings *out);
cf_status validation_rule_date_of_birth(const json_t *inquiry, const struct validation_ctx *ctx,
                                        struct validation_findings *out);
cf_status validation_rule_guardian(const json_t *inquiry, const struct validation_ctx *ctx,
                                   struct validation_findings *out);
cf_status validation_rule_description(const json_t *inquiry, const struct validation_ctx *ctx,
                                      struct validation_findings *out);
cf_status validation_rule_reports(const json_t *inquiry, const struct validation_ctx *ctx,
                                  struct validation_findings *out);
cf_status validation_rule_meld(const json_t *inquiry, const struct validation_ctx *ctx,
                               struct validation_findings *out);
cf_status validation_rule_names(const json_t *inquiry, const struct validation_ctx *ctx,
                                struct validation_findings *out);
cf_status validation_rule_condition(const json_t *inquiry, const struct validation_ctx *ctx,
                                    struct validation_findings *out);

#endif
