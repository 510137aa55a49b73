/* intake.c — intake's Kafka path: keyed identity hashes, duplicate folding in Redis, the
 * CaseOpened record and the loop's handler. See intake.h and README.md ("Kafka path"). */
#include "intake.h"
#include "clock.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro_convert.h"
#include "cloudevents.h"
#include "log.h"
#include "metrics.h"
#include "normalize.h"

/* Longest message intake hashes: two texts of INTAKE_TEXT_MAX and a few separators. */
#define INTAKE_HASH_INPUT_MAX (2u * INTAKE_TEXT_MAX + 64u)
/* Length of a claim value: "<case uuid>/<event uuid>". */
#define INTAKE_CLAIM_LEN (2 * CF_UUID_LEN + 1)

/* HMAC-SHA256(secret, parts[0] || "\n" || parts[1] || ... ) as lower-case hex. ascii_lower
 * says which parts are lower-cased (ASCII letters only) before hashing. The separator cannot
 * occur inside a normalised email, phone or enum symbol, so distinct inputs give distinct
 * messages. */
static cf_status keyed_hash(const unsigned char *secret, size_t secret_len,
                            const char *const *parts, const bool *ascii_lower, size_t nparts,
                            char out[INTAKE_KEY_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    size_t total = 0, pos = 0;
    unsigned char *msg = NULL;
    cf_status st = CF_OK;

    if (secret == NULL || secret_len == 0 || secret_len > (size_t)INT32_MAX)
        return CF_EINVAL;
    for (size_t i = 0; i < nparts; i++) {
        if (parts[i] == NULL)
            return CF_EINVAL;
        total += strlen(parts[i]) + 1;
        if (total > INTAKE_HASH_INPUT_MAX)
            return CF_ETOOBIG;
    }
    if ((msg = malloc(total + 1)) == NULL)
        return CF_ENOMEM;
    for (size_t i = 0; i < nparts; i++) {
        size_t n = strlen(parts[i]);
        for (size_t k = 0; k < n; k++) {
            unsigned char c = (unsigned char)parts[i][k];
            msg[pos++] = (ascii_lower != NULL && ascii_lower[i] && c >= 'A' && c <= 'Z')
                             ? (unsigned char)(c - 'A' + 'a')
                             : c;
        }
        if (i + 1 < nparts)
            msg[pos++] = '\n';
    }
    if (HMAC(EVP_sha256(), secret, (int)secret_len, msg, pos, md, &md_len) == NULL ||
        md_len != INTAKE_KEY_HEX_LEN / 2) {
        st = CF_EFATAL; /* libcrypto without SHA-256: nothing later can work */
        goto out;
    }
    for (unsigned int i = 0; i < md_len; i++) {
        static const char hex[] = "0123456789abcdef";
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0x0f];
    }
    out[INTAKE_KEY_HEX_LEN] = '\0';
out:
    /* The message holds an email or a phone number: do not leave it in freed memory. */
    memset(msg, 0, total + 1);
    free(msg);
    return st;
}

/* The string at obj.k1.k2 (k2 may be NULL), or NULL when absent, null or not a string. */
static const char *str_at(const json_t *obj, const char *k1, const char *k2)
{
    const json_t *v = json_object_get(obj, k1);
    if (k2 != NULL)
        v = json_object_get(v, k2);
    return json_string_value(v);
}

cf_status intake_fold_key(const unsigned char *secret, size_t secret_len, const char *kind,
                          const char *value, const char *category, char out[INTAKE_KEY_HEX_LEN + 1])
{
    if (kind == NULL || value == NULL || category == NULL || out == NULL)
        return CF_EINVAL;
    /* Emails are matched without case: the local part may be case-sensitive in theory, but a
     * person who types "Alex@" once and "alex@" next time is far likelier than two people whose
     * addresses differ only in case. The event keeps the address as the patient wrote it. */
    const char *parts[] = {"fold", kind, value, category};
    const bool lower[] = {false, false, strcmp(kind, "email") == 0, false};
    return keyed_hash(secret, secret_len, parts, lower, 4, out);
}

cf_status intake_patient_key(const unsigned char *secret, size_t secret_len, const json_t *inquiry,
                             char out[INTAKE_KEY_HEX_LEN + 1], char *errbuf, size_t errlen)
{
    const char *email = str_at(inquiry, "contact", "email");
    const char *phone = str_at(inquiry, "contact", "phone");
    const char *inquiry_id = str_at(inquiry, "inquiry_id", NULL);
    const char *parts[3] = {"patient", NULL, NULL};
    bool lower[3] = {false, false, false};
    cf_status st;

    if (email != NULL && email[0] != '\0') {
        lower[2] = true; /* as in intake_fold_key */
        parts[1] = "email";
        parts[2] = email;
    } else if (phone != NULL && phone[0] != '\0') {
        parts[1] = "phone";
        parts[2] = phone;
    } else if (inquiry_id != NULL) {
        parts[1] = "inquiry";
        parts[2] = inquiry_id;
    } else {
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.inquiry.inquiry_id: missing");
    }
    st = keyed_hash(secret, secret_len, parts, lower, 3, out);
    if (st != CF_OK)
        return cf_fail(errbuf, errlen, st, "patient_key: %s", cf_strerror(st));
    return CF_OK;
}

cf_status intake_fold_keys(const unsigned char *secret, size_t secret_len, const json_t *inquiry,
                           char keys[INTAKE_FOLD_MAX_KEYS][INTAKE_REDIS_KEY_MAX], size_t *nkeys,
                           char *errbuf, size_t errlen)
{
    const char *inquiry_id = str_at(inquiry, "inquiry_id", NULL);
    const char *idem = str_at(inquiry, "idempotency_key", NULL);
    const char *category = str_at(inquiry, "condition", "category");
    const char *contact[2][2] = {{"email", str_at(inquiry, "contact", "email")},
                                 {"phone", str_at(inquiry, "contact", "phone")}};
    char hash[INTAKE_KEY_HEX_LEN + 1];
    size_t n = 0;
    cf_status st;

    *nkeys = 0;
    if (inquiry_id == NULL || !cf_uuid_valid(inquiry_id))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.inquiry.inquiry_id: not a UUID");
    (void)snprintf(keys[n++], INTAKE_REDIS_KEY_MAX, "intake:inquiry:%s", inquiry_id);
    if (idem != NULL && idem[0] != '\0') {
        /* A client's key is free text: hashed like personal data, never used as it is. */
        if ((st = intake_fold_key(secret, secret_len, "idempotency", idem, "", hash)) != CF_OK)
            return cf_fail(errbuf, errlen, st, "$.inquiry.idempotency_key: %s", cf_strerror(st));
        (void)snprintf(keys[n++], INTAKE_REDIS_KEY_MAX, "intake:idem:%s", hash);
    }
    for (size_t i = 0; i < 2; i++) {
        if (contact[i][1] == NULL || contact[i][1][0] == '\0')
            continue;
        st = intake_fold_key(secret, secret_len, contact[i][0], contact[i][1],
                             category != NULL ? category : "", hash);
        if (st != CF_OK)
            return cf_fail(errbuf, errlen, st, "$.inquiry.contact.%s: %s", contact[i][0],
                           cf_strerror(st));
        (void)snprintf(keys[n++], INTAKE_REDIS_KEY_MAX, "intake:person:%s", hash);
    }
    *nkeys = n;
    return CF_OK;
}

/* The whole fold in one round trip (README.md "Folding duplicates"): the claims of one inquiry
 * used to be up to four SET NX + GET round trips and a SET for the link; a script does them
 * atomically, so no claim can expire or change between its SET NX and its read-back either.
 *
 * KEYS[1..n]: the claim keys in claim order; KEYS[n+1]: the inquiry's link
 * (intake:case-of:<inquiry id>) when ARGV[4] is not "".
 * ARGV[1]: the claim "<new case id>/<event id>"; ARGV[2]: the event id; ARGV[3]: the claims'
 * TTL in seconds; ARGV[4]: the link's TTL in seconds, or "" for no link.
 * Returns {case id, 1 if a duplicate else 0}; a key holding something that is not a claim is an
 * error reply naming the key (keys are ids and hashes, never personal data).
 *
 * Idempotent for the event: a second run finds its own claims (adopted, nothing rewritten) or
 * the winning claim it pointed its earlier keys at (a duplicate again), and sets the link to
 * the same case. */
static const char fold_lua[] =
    "local uuid = '%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x'\n"
    "local n = #KEYS\n"
    "if ARGV[4] ~= '' then n = n - 1 end\n"
    "local claim, dup = ARGV[1], 0\n"
    "for i = 1, n do\n"
    "  if not redis.call('SET', KEYS[i], claim, 'NX', 'EX', ARGV[3]) then\n"
    "    local held = redis.call('GET', KEYS[i])\n"
    /* Keys do not expire while a script runs (Redis freezes its clock), so held is there; a
     * missing one would simply be claimed. */
    "    if not held then\n"
    "      redis.call('SET', KEYS[i], claim, 'EX', ARGV[3])\n"
    "    else\n"
    "      local held_event = string.match(held, '^' .. uuid .. '/(' .. uuid .. ')$')\n"
    "      if not held_event then\n"
    "        return redis.error_reply('fold: ' .. KEYS[i] .. ' does not hold a claim')\n"
    "      end\n"
    /* The keys before this one hold our claim: point them at the one that wins, so a retry of
     * this event, or the next duplicate, gets the same answer whichever key it tries first. */
    "      if held ~= claim then\n"
    "        for k = 1, i - 1 do redis.call('SET', KEYS[k], held, 'EX', ARGV[3]) end\n"
    "      end\n"
    "      claim = held\n"
    "      if held_event ~= ARGV[2] then\n"
    "        dup = 1\n"
    "        break\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local case_id = string.sub(claim, 1, 36)\n"
    "if ARGV[4] ~= '' then redis.call('SET', KEYS[#KEYS], case_id, 'EX', ARGV[4]) end\n"
    "return {case_id, dup}\n";

cf_status intake_fold_script_new(struct cf_redis_script **out, char *errbuf, size_t errlen)
{
    return cf_redis_script_new(fold_lua, CF_REDIS_SCRIPT_IDEMPOTENT, out, errbuf, errlen);
}

cf_status intake_fold(struct cf_redis *redis, const struct cf_redis_script *script,
                      const char *const *keys, size_t nkeys, const char *event_id,
                      const char *new_case_id, long long ttl_seconds, const char *inquiry_id,
                      struct intake_fold_result *out, char *errbuf, size_t errlen)
{
    const char *all_keys[INTAKE_FOLD_MAX_KEYS + 1];
    char link_key[INTAKE_STAGE_KEY_MAX];
    char claim[INTAKE_CLAIM_LEN + 1], ttl[24], link_ttl[24] = "";
    struct cf_redis_value *v = NULL;
    cf_status st;

    if (script == NULL || !cf_uuid_valid(event_id) || !cf_uuid_valid(new_case_id) || nkeys == 0 ||
        nkeys > INTAKE_FOLD_MAX_KEYS || ttl_seconds <= 0)
        return cf_fail(errbuf, errlen, CF_EINVAL, "fold: bad arguments");
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < nkeys; i++)
        all_keys[i] = keys[i];
    if (inquiry_id != NULL) {
        if ((st = intake_journey_link_key(inquiry_id, link_key, errbuf, errlen)) != CF_OK)
            return st;
        all_keys[nkeys] = link_key;
        (void)snprintf(link_ttl, sizeof(link_ttl), "%lld", INTAKE_STAGE_TTL_SECONDS);
    }
    (void)snprintf(claim, sizeof(claim), "%s/%s", new_case_id, event_id);
    (void)snprintf(ttl, sizeof(ttl), "%lld", ttl_seconds);
    const char *args[] = {claim, event_id, ttl, link_ttl};
    st = cf_redis_script_run(redis, script, nkeys + (inquiry_id != NULL ? 1 : 0), all_keys, 4, args,
                             NULL, &v, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    if (v->type != CF_REDIS_ARRAY || v->count != 2 || v->elements[0].type != CF_REDIS_STRING ||
        v->elements[1].type != CF_REDIS_INT || !cf_uuid_valid(v->elements[0].str)) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "fold: unexpected reply from the script");
        goto out;
    }
    memcpy(out->case_id, v->elements[0].str, CF_UUID_LEN + 1);
    out->duplicate = v->elements[1].integer != 0;
out:
    cf_redis_value_free(v);
    return st;
}

/* Sets obj[key] to a copy of src[key] (null when absent). */
static int copy_member(json_t *obj, const char *key, const json_t *src)
{
    const json_t *v = json_object_get(src, key);
    return json_object_set_new(obj, key, v != NULL ? json_deep_copy(v) : json_null());
}

static json_t *build_recipient(const json_t *inquiry)
{
    const json_t *patient = json_object_get(inquiry, "patient");
    const json_t *contact = json_object_get(inquiry, "contact");
    const json_t *windows = json_object_get(contact, "contact_windows");
    json_t *r = json_object();
    bool has_email = str_at(contact, "email", NULL) != NULL;
    bool has_phone = str_at(contact, "phone", NULL) != NULL;

    if (r == NULL)
        return NULL;
    /* A consent counts only where the channel exists (Recipient's documentation). */
    if (copy_member(r, "given_name", patient) != 0 || copy_member(r, "family_name", patient) != 0 ||
        copy_member(r, "language", patient) != 0 || copy_member(r, "country", patient) != 0 ||
        copy_member(r, "time_zone", patient) != 0 ||
        json_object_set_new(r, "email",
                            has_email ? json_deep_copy(json_object_get(contact, "email"))
                                      : json_null()) != 0 ||
        json_object_set_new(r, "phone",
                            has_phone ? json_deep_copy(json_object_get(contact, "phone"))
                                      : json_null()) != 0 ||
        json_object_set_new(r, "consent_email",
                            json_boolean(has_email && json_is_true(json_object_get(
                                                          contact, "consent_email")))) != 0 ||
        json_object_set_new(r, "consent_sms",
                            json_boolean(has_phone && json_is_true(json_object_get(
                                                          contact, "consent_sms")))) != 0 ||
        json_object_set_new(r, "contact_windows",
                            json_is_array(windows) ? json_deep_copy(windows) : json_array()) != 0) {
        json_decref(r);
        return NULL;
    }
    return r;
}

cf_status intake_build_case_opened(const json_t *submitted, const struct intake_case_params *p,
                                   json_t **out, char *errbuf, size_t errlen)
{
    const json_t *inquiry = json_object_get(submitted, "inquiry");
    const char *inquiry_id = str_at(inquiry, "inquiry_id", NULL);
    const char *cause = str_at(submitted, "meta", "event_id");
    char when[32];
    json_t *event = NULL, *meta = NULL, *recipient = NULL;

    *out = NULL;
    if (p == NULL || p->case_id == NULL || p->event_id == NULL || p->producer == NULL ||
        p->patient_key == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "case parameters missing");
    if (!json_is_object(inquiry))
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.inquiry: missing or not an object");
    if (inquiry_id == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.inquiry.inquiry_id: missing");
    if (cause == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.meta.event_id: missing");
    cf_avro_format_millis(p->occurred_at_ms, when, sizeof(when));

    meta = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "event_id", p->event_id, "case_id",
                     p->case_id, "occurred_at", when, "producer", p->producer, "correlation_id",
                     inquiry_id, "causation_id", cause);
    recipient = build_recipient(inquiry);
    if (meta == NULL || recipient == NULL)
        goto nomem;
    /* "o" steals the references: meta, the inquiry's copy and recipient belong to event. */
    event = json_pack("{s:o, s:s, s:o, s:i, s:s, s:o}", "meta", meta, "case_id", p->case_id,
                      "inquiry", json_deep_copy(inquiry), "duplicate_count", p->duplicate_count,
                      "patient_key", p->patient_key, "recipient", recipient);
    meta = recipient = NULL;
    if (event == NULL)
        goto nomem;
    *out = event;
    return CF_OK;
nomem:
    json_decref(meta);
    json_decref(recipient);
    return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory building CaseOpened");
}

/* Country codes are compared and matched upper-case (ISO 3166-1 alpha-2 as written). */
static cf_status upper_country(json_t *inquiry)
{
    json_t *patient = json_object_get(inquiry, "patient");
    const char *country = str_at(patient, "country", NULL);
    char buf[8];
    size_t n;

    if (country == NULL || (n = strlen(country)) >= sizeof(buf))
        return CF_OK; /* conversion to Avro or validation reports it */
    for (size_t i = 0; i <= n; i++)
        buf[i] =
            (country[i] >= 'a' && country[i] <= 'z') ? (char)(country[i] - 'a' + 'A') : country[i];
    return json_object_set_new(patient, "country", json_string(buf)) == 0 ? CF_OK : CF_ENOMEM;
}

/* One InquirySubmitted: see intake_handle. */
static cf_status handle_submitted(struct intake *intake, const struct cf_kafka_record *in,
                                  struct cf_kafka_out *out, char *errbuf, size_t errlen)
{
    json_t *submitted = NULL, *opened = NULL;
    struct intake_field_error field_errors[8];
    size_t nfield_errors = 0;
    char keys[INTAKE_FOLD_MAX_KEYS][INTAKE_REDIS_KEY_MAX];
    const char *key_ptrs[INTAKE_FOLD_MAX_KEYS];
    size_t nkeys = 0;
    char patient_key[INTAKE_KEY_HEX_LEN + 1];
    char new_case_id[CF_UUID_LEN + 1], event_id[CF_UUID_LEN + 1];
    struct intake_fold_result fold;
    cf_status st;

    if (in->value == NULL) {
        st = cf_fail(errbuf, errlen, CF_EDECODE, "value: null");
        goto out;
    }
    st = cf_serde_decode_json(intake->serde, INTAKE_INPUT_TOPIC, in->value, in->value_len,
                              &submitted, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    const char *cause = str_at(submitted, "meta", "event_id");
    json_t *inquiry = json_object_get(submitted, "inquiry");
    if (cause == NULL || !cf_uuid_valid(cause)) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "$.meta.event_id: not a UUID");
        goto out;
    }
    st = intake_normalize_inquiry(inquiry, errbuf, errlen, field_errors,
                                  sizeof(field_errors) / sizeof(field_errors[0]), &nfield_errors);
    if (st == CF_OK)
        st = upper_country(inquiry);
    if (st != CF_OK)
        goto out;
    st =
        intake_fold_keys(intake->secret, intake->secret_len, inquiry, keys, &nkeys, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    st = intake_patient_key(intake->secret, intake->secret_len, inquiry, patient_key, errbuf,
                            errlen);
    if (st != CF_OK)
        goto out;
    const char *inquiry_id = str_at(inquiry, "inquiry_id", NULL); /* a UUID: fold_keys checked */
    if ((st = cf_uuid_v4(new_case_id)) != CF_OK || (st = cf_uuid_v4(event_id)) != CF_OK) {
        (void)cf_fail(errbuf, errlen, st, "uuid: %s", cf_strerror(st));
        goto out;
    }
    for (size_t i = 0; i < nkeys; i++)
        key_ptrs[i] = keys[i];
    /* One round trip: the claims and the inquiry's link to its case (journey.h). */
    st = intake_fold(intake->redis, intake->fold, key_ptrs, nkeys, cause, new_case_id,
                     INTAKE_FOLD_TTL_SECONDS, inquiry_id, &fold, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    if (fold.duplicate) {
        /* Folded: the case exists and its CaseOpened went out with the first inquiry. */
        cf_metrics_add(intake->outcomes[INTAKE_OUTCOME_FOLDED], 1);
        CF_LOG(CF_LOG_INFO, "inquiry_folded", CF_LOG_ID("case_id", fold.case_id),
               CF_LOG_ID("inquiry_id", inquiry_id), CF_LOG_ID("causation_id", cause));
        goto out;
    }

    struct intake_case_params params = {fold.case_id,     event_id,    cf_clock_wall_ms(),
                                        intake->producer, patient_key, 0};
    st = intake_build_case_opened(submitted, &params, &opened, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    st = cf_cloudevent_emit(intake->serde, INTAKE_SERVICE, INTAKE_OUTPUT_TOPIC,
                            INTAKE_CASE_OPENED_TYPE, fold.case_id, opened, out, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    cf_metrics_add(intake->outcomes[INTAKE_OUTCOME_OPENED], 1);
    CF_LOG(CF_LOG_INFO, "case_opened", CF_LOG_ID("case_id", fold.case_id),
           CF_LOG_ID("inquiry_id", inquiry_id), CF_LOG_ID("event_id", event_id),
           CF_LOG_ID("causation_id", cause));
out:
    /* A status the loop dead-letters refuses the inquiry; a retriable one decides nothing. */
    if (cf_kafka_status_action(st) == CF_KAFKA_DEAD_LETTER)
        cf_metrics_add(intake->outcomes[INTAKE_OUTCOME_REFUSED], 1);
    json_decref(opened);
    json_decref(submitted);
    return st;
}

const char *intake_outcome_name(enum intake_outcome outcome)
{
    static const char *const names[INTAKE_OUTCOMES] = {
        [INTAKE_OUTCOME_OPENED] = "opened",
        [INTAKE_OUTCOME_FOLDED] = "folded",
        [INTAKE_OUTCOME_REFUSED] = "refused",
    };
    return (unsigned)outcome < INTAKE_OUTCOMES ? names[outcome] : "unknown";
}

cf_status intake_handle(void *ctx, const struct cf_kafka_record *in, struct cf_kafka_out *out,
                        char *errbuf, size_t errlen)
{
    if (strcmp(in->topic, INTAKE_INPUT_TOPIC) == 0)
        return handle_submitted(ctx, in, out, errbuf, errlen);
    return intake_journey_handle(ctx, in, out, errbuf, errlen);
}
