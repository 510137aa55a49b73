/* intake.h — intake's Kafka path (DESIGN.md §1 step 2, §4, §5): one InquirySubmitted in,
 * normalised, folded into an existing case or given a new one, and at most one CaseOpened out.
 *
 * The steps are separate functions so that each can be tested on its own:
 *   intake_patient_key / intake_fold_key  keyed hashes of the person (pure, no personal data out)
 *   intake_fold                           the Redis claims that fold duplicates (one Lua script)
 *   intake_build_case_opened              the CaseOpened record in caseflow's JSON form (pure)
 *   intake_handle                         the cf_kafka_handler that ties them together
 * The rules and the reasons behind them are in README.md ("Kafka path"). */
#ifndef INTAKE_INTAKE_H
#define INTAKE_INTAKE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "avro_serde.h"
#include "config.h"
#include "journey.h"
#include "kafka.h"
#include "redis.h"
#include "status.h"
#include "uuid.h"

#define INTAKE_SERVICE "intake"
#define INTAKE_GROUP "caseflow-intake"
#define INTAKE_INPUT_TOPIC "caseflow.inquiry.submitted"
#define INTAKE_OUTPUT_TOPIC "caseflow.case.opened"
#define INTAKE_CASE_OPENED_TYPE "caseflow.event.CaseOpened"

/* CF_VERSION comes from services/CMakeLists.txt. */
#define INTAKE_PRODUCER INTAKE_SERVICE "/" CF_VERSION

/* How long a claim (same key, same person and condition) folds later inquiries: 24 h. */
#define INTAKE_FOLD_TTL_SECONDS (24LL * 60 * 60)
/* Lower-case hex of an HMAC-SHA256, without the NUL. */
#define INTAKE_KEY_HEX_LEN 64
/* Shortest identity secret accepted: 32 bytes, the HMAC-SHA256 block's half (RFC 2104). */
#define INTAKE_SECRET_MIN 32
/* Most Redis keys one inquiry claims: inquiry id, idempotency key, email, phone. */
#define INTAKE_FOLD_MAX_KEYS 4
/* Longest Redis key intake builds ("intake:person:" + 64 hex). */
#define INTAKE_REDIS_KEY_MAX 96

/* Intake's own config entries; put them after CF_CONFIG_REDIS_ENTRIES in main.c's table. */
#define INTAKE_CONFIG_ENTRIES                                                                      \
    {                                                                                              \
        "CASEFLOW_INTAKE_IDENTITY_SECRET", CF_CONFIG_STRING, NULL, INTAKE_SECRET_MIN, 1024,        \
            "secret key of the HMAC-SHA256 that turns a person's email or phone into patient_key " \
            "and "                                                                                 \
            "the Redis duplicate keys; required, at least 32 bytes, random; changing it stops "    \
            "folding duplicates of earlier inquiries and changes every patient_key"                \
    }

/* patient_key: lower-case hex HMAC-SHA256(secret, "patient\n" + identity), where identity is
 * "email\n" + the normalised email with ASCII letters lower-cased when the contact has one,
 * else "phone\n" + the normalised phone, else "inquiry\n" + inquiry_id (a person without a
 * contact cannot be recognised). It does not depend on the condition: it recognises the person
 * (assignment keeps a returning patient's manager). inquiry is the normalised JSON form of
 * caseflow.common.Inquiry. out gets INTAKE_KEY_HEX_LEN + NUL bytes. CF_EINVAL (errbuf names
 * the field, never its value) when neither a contact nor an inquiry_id string is there,
 * CF_ENOMEM. */
cf_status intake_patient_key(const unsigned char *secret, size_t secret_len, const json_t *inquiry,
                             char out[INTAKE_KEY_HEX_LEN + 1], char *errbuf, size_t errlen);

/* A fold key's hash: lower-case hex HMAC-SHA256(secret, "fold\n" + kind + "\n" + value + "\n" +
 * category). kind is "email" (value lower-cased, ASCII only), "phone" or "idempotency" (value
 * as is); category is the condition category symbol ("" for idempotency keys). The hash of the
 * same inputs is the same across processes and restarts, differs by kind and category, and
 * holds nothing of value. Returns CF_EINVAL if an argument is NULL, CF_ENOMEM. */
cf_status intake_fold_key(const unsigned char *secret, size_t secret_len, const char *kind,
                          const char *value, const char *category,
                          char out[INTAKE_KEY_HEX_LEN + 1]);

/* The Redis keys (without the connection's prefix) an inquiry claims, in claim order:
 * "intake:inquiry:<inquiry_id>", "intake:idem:<fold_key(idempotency)>" if it has an
 * idempotency key, "intake:person:<fold_key(email, category)>" and
 * "intake:person:<fold_key(phone, category)>" for the contact's email and phone if given.
 * keys[i] are INTAKE_REDIS_KEY_MAX-byte buffers. CF_EINVAL if inquiry_id is not a UUID. */
cf_status intake_fold_keys(const unsigned char *secret, size_t secret_len, const json_t *inquiry,
                           char keys[INTAKE_FOLD_MAX_KEYS][INTAKE_REDIS_KEY_MAX], size_t *nkeys,
                           char *errbuf, size_t errlen);

/* The outcome of intake_fold. */
struct intake_fold_result {
    char case_id[CF_UUID_LEN + 1]; /* the case the inquiry belongs to */
    bool duplicate;                /* true: another event opened that case */
};

/* The Lua script intake_fold runs (CF_REDIS_SCRIPT_IDEMPOTENT). Created once at start; talks
 * to no server; immutable, so the loop may share it. *out is the caller's
 * (cf_redis_script_free). CF_ENOMEM only. */
cf_status intake_fold_script_new(struct cf_redis_script **out, char *errbuf, size_t errlen);

/* Claims keys[0..nkeys) in order for the event, each with SET NX EX ttl_seconds and the value
 * "<case_id>/<event_id>" (new_case_id at first). A key that is already held is read back: if
 * its event is event_id, it is this event's own claim from an earlier, aborted attempt and its
 * case_id is adopted (so a retried batch reopens the same case); otherwise the inquiry is a
 * duplicate of that claim's case, the keys claimed before it are pointed at that claim (SET EX,
 * so a retry answers the same) and the rest are left alone. out->case_id is new_case_id only
 * when no claim existed. When inquiry_id is not NULL the inquiry is also linked to the case it
 * ends in (intake_journey_link_key, INTAKE_STAGE_TTL_SECONDS). All of it is one script (script,
 * from intake_fold_script_new) run atomically in one round trip; running it again for the same
 * event gives the same answer and leaves Redis as it was. 1 <= nkeys <= INTAKE_FOLD_MAX_KEYS.
 * CF_EIO/CF_ETIMEOUT when Redis fails (retry the batch), CF_EINVAL when an argument or a key is
 * malformed or a key holds something that is not a claim. */
cf_status intake_fold(struct cf_redis *redis, const struct cf_redis_script *script,
                      const char *const *keys, size_t nkeys, const char *event_id,
                      const char *new_case_id, long long ttl_seconds, const char *inquiry_id,
                      struct intake_fold_result *out, char *errbuf, size_t errlen);

/* What intake_build_case_opened needs besides the InquirySubmitted. */
struct intake_case_params {
    const char *case_id;     /* UUID */
    const char *event_id;    /* the new event's UUID */
    int64_t occurred_at_ms;  /* now */
    const char *producer;    /* INTAKE_PRODUCER */
    const char *patient_key; /* intake_patient_key */
    int duplicate_count;     /* 0 for a new case */
};

/* Builds CaseOpened in caseflow's JSON form from submitted (an InquirySubmitted whose inquiry
 * is already normalised): meta (event_id, case_id, occurred_at, producer, correlation_id =
 * inquiry.inquiry_id, causation_id = submitted's meta.event_id), case_id, a copy of the
 * inquiry, duplicate_count, patient_key and the recipient (patient names, language, country,
 * time zone, email and phone, consents only where the channel is given, contact windows).
 * On CF_OK *out is the caller's (json_decref). CF_EINVAL naming a missing or mistyped field,
 * CF_ENOMEM. Neither argument is modified. */
cf_status intake_build_case_opened(const json_t *submitted, const struct intake_case_params *p,
                                   json_t **out, char *errbuf, size_t errlen);

/* What intake_handle decided for one InquirySubmitted: the values of the outcome label of
 * caseflow_intake_outcomes_total. */
enum intake_outcome {
    INTAKE_OUTCOME_OPENED,  /* a new case: one CaseOpened queued */
    INTAKE_OUTCOME_FOLDED,  /* a duplicate of a claimed inquiry: folded into its case, nothing
                             * queued */
    INTAKE_OUTCOME_REFUSED, /* undecodable or invalid (a status the loop dead-letters) */
    INTAKE_OUTCOMES
};

/* "opened", "folded", "refused"; "unknown" for anything else. Pure. */
const char *intake_outcome_name(enum intake_outcome outcome);

struct cf_metrics_counter;

/* The handler's context; every pointer is borrowed and outlives the loop. */
struct intake {
    struct cf_serde *serde;
    struct cf_redis *redis;
    const unsigned char *secret;
    size_t secret_len;
    const char *producer;
    const struct intake_journey_scripts *stages;
    const struct cf_redis_script *fold; /* intake_fold_script_new */
    /* Counted when decided, so a retried batch decides (and counts) again; NULL: not
     * counted. */
    struct cf_metrics_counter *outcomes[INTAKE_OUTCOMES];
};

/* cf_kafka_handler of intake's loop (ctx is a struct intake). For caseflow.inquiry.submitted:
 * decode (CF_EDECODE and the serde's other errors pass through), normalise (CF_EINVAL naming
 * the first rejected field), fold (Redis errors pass through, so the batch is retried), link
 * the inquiry to its case (journey.h), and for a new case queue one CaseOpened keyed by case_id
 * with CloudEvents headers; a duplicate queues nothing. Each decision adds 1 to its counter in
 * intake->outcomes (a retriable failure decides nothing). For the INTAKE_STAGE_TOPICS:
 * intake_journey_handle. */
cf_status intake_handle(void *ctx, const struct cf_kafka_record *in, struct cf_kafka_out *out,
                        char *errbuf, size_t errlen);

#endif
