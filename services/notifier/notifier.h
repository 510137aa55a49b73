/* notifier.h — the notifier service: the transactional loop's handler, its batch hooks and its
 * timer (DESIGN.md §4, notifier; README.md in this folder tells the whole story).
 *
 * The handler decodes an event and plans its notifications (plan.h) into the batch; the batch
 * end sends them all at once (sender.h), records each outcome in Redis and queues its
 * NotificationStatus in the batch's transaction, so the consumed offsets are committed only
 * once every send's outcome is known and recorded. Redis keys (ids only, every one with a TTL):
 *   notifier:n:<notification id>   {"job": ..., "state": ...}: what to send and how it went
 *   notifier:due                   the due set (common/due_set) of retries, quiet-hours waits
 *                                  and fallbacks, served by the timer
 *   notifier:cap:<E|S>:<hmac>:<day>  the recipient's notifications of a local day, by id (the
 *                                  recipient is an HMAC of the address with a secret)
 * A notification whose state says it was sent is never sent again: a batch that comes back
 * after a crash or an abort re-emits the recorded status (same event id) instead. The one
 * window left is a crash after the server accepted a message and before its outcome reached
 * Redis: the message is then sent again with the same Message-ID / idempotency key, which the
 * SMS provider deduplicates and a mail client recognises. */
#ifndef NOTIFIER_NOTIFIER_H
#define NOTIFIER_NOTIFIER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "avro_serde.h"
#include "due_set.h"
#include "kafka.h"
#include "metrics.h"
#include "plan.h"
#include "policy.h"
#include "redis.h"
#include "sender.h"
#include "tz.h"

#define NOTIFIER_SERVICE "notifier"
#define NOTIFIER_GROUP "caseflow-notifier"
#define NOTIFIER_PRODUCER NOTIFIER_SERVICE "/" CF_VERSION

/* Shortest key secret accepted (CASEFLOW_NOTIFIER_KEY_SECRET). */
#define NOTIFIER_KEY_SECRET_MIN 16

/* clang-format off */
#define NOTIFIER_CONFIG_ENTRIES                                                                  \
    {"CASEFLOW_NOTIFIER_TEMPLATE_DIR", CF_CONFIG_STRING, "", 0, 4096,                            \
     "directory of the templates, <lang>/<template>.email|.sms and <lang>/labels (empty: the "   \
     "source tree's services/notifier/templates); read at start"},                               \
    {"CASEFLOW_NOTIFIER_SMTP_URL", CF_CONFIG_STRING, "smtp://127.0.0.1:12525", 8, 512,           \
     "SMTP server: smtp://host:port, or smtps://host:port for implicit TLS"},                    \
    {"CASEFLOW_NOTIFIER_SMTP_TLS", CF_CONFIG_STRING, "none", 4, 8,                               \
     "none, starttls (required, certificate verified) or implicit (with smtps://)"},            \
    {"CASEFLOW_NOTIFIER_SMTP_USER", CF_CONFIG_STRING, "", 0, 256,                                \
     "SMTP AUTH user (empty: no AUTH)"},                                                         \
    {"CASEFLOW_NOTIFIER_SMTP_PASSWORD", CF_CONFIG_STRING, "", 0, 256, "SMTP AUTH password"},    \
    {"CASEFLOW_NOTIFIER_MAIL_FROM", CF_CONFIG_STRING, "care@caseflow.example", 3, 254,          \
     "sender address of every email (envelope and From)"},                                       \
    {"CASEFLOW_NOTIFIER_MAIL_FROM_NAME", CF_CONFIG_STRING, "Care team", 0, 128,                  \
     "display name of the From header"},                                                         \
    {"CASEFLOW_NOTIFIER_MESSAGE_ID_DOMAIN", CF_CONFIG_STRING, "caseflow.example", 3, 128,       \
     "right-hand side of every Message-ID"},                                                     \
    {"CASEFLOW_NOTIFIER_SMS_API", CF_CONFIG_STRING, "json", 4, 6,                                \
     "SMS provider API: json (a JSON webhook) or twilio (Twilio's Messages API)"},              \
    {"CASEFLOW_NOTIFIER_SMS_URL", CF_CONFIG_STRING, "http://127.0.0.1:18025/v1/messages", 8,     \
     1024, "json: the webhook URL; twilio: the API base URL (https://api.twilio.com)"},         \
    {"CASEFLOW_NOTIFIER_SMS_ACCOUNT", CF_CONFIG_STRING, "", 0, 64,                               \
     "twilio: the account SID (the basic-auth user)"},                                           \
    {"CASEFLOW_NOTIFIER_SMS_TOKEN", CF_CONFIG_STRING, "", 0, 256,                                \
     "twilio: the auth token; json: a bearer token (empty: none)"},                              \
    {"CASEFLOW_NOTIFIER_SMS_FROM", CF_CONFIG_STRING, "+15550100000", 2, 32,                      \
     "sender number or id of every SMS"},                                                        \
    {"CASEFLOW_NOTIFIER_CONNECT_TIMEOUT_MS", CF_CONFIG_INT, "5000", 100, 60000,                  \
     "connect timeout of one send"},                                                             \
    {"CASEFLOW_NOTIFIER_SEND_TIMEOUT_MS", CF_CONFIG_INT, "15000", 500, 120000,                   \
     "whole-transfer timeout of one send"},                                                      \
    {"CASEFLOW_NOTIFIER_MAX_PARALLEL", CF_CONFIG_INT, "16", 1, 256,                              \
     "sends in flight at once"},                                                                 \
    {"CASEFLOW_NOTIFIER_MAX_ATTEMPTS", CF_CONFIG_INT, "6", 1, 50,                                \
     "attempts of a notification that keeps failing transiently before it is FAILED"},          \
    {"CASEFLOW_NOTIFIER_RETRY_BASE_MS", CF_CONFIG_INT, "5000", 10, 3600000,                      \
     "pause after the first failed attempt (doubles per attempt, with jitter)"},                 \
    {"CASEFLOW_NOTIFIER_RETRY_MAX_MS", CF_CONFIG_INT, "900000", 10, 86400000,                    \
     "longest pause between attempts"},                                                          \
    {"CASEFLOW_NOTIFIER_QUIET_START", CF_CONFIG_STRING, "21:00", 5, 5,                           \
     "start of the SMS quiet hours in the patient's local time (HH:MM)"},                        \
    {"CASEFLOW_NOTIFIER_QUIET_END", CF_CONFIG_STRING, "08:00", 5, 5,                             \
     "end of the SMS quiet hours (HH:MM; equal to the start: no quiet hours)"},                  \
    {"CASEFLOW_NOTIFIER_DAILY_CAP", CF_CONFIG_INT, "12", 1, 1000,                                \
     "notifications per recipient and channel per local day; more wait for the next day"},      \
    {"CASEFLOW_NOTIFIER_KEY_SECRET", CF_CONFIG_STRING, "caseflow-dev-notifier-secret", 0, 256,   \
     "HMAC key that turns an address into the daily cap's Redis key (>= 16 bytes)"},             \
    {"CASEFLOW_NOTIFIER_PATIENT_URL", CF_CONFIG_STRING, "https://care.caseflow.example", 8, 512, \
     "base of the reschedule and cancel links sent to patients"},                                \
    {"CASEFLOW_NOTIFIER_CONSOLE_URL", CF_CONFIG_STRING, "https://console.caseflow.example", 8,   \
     512, "base of the case links sent to care managers"},                                       \
    {"CASEFLOW_NOTIFIER_STATE_TTL_DAYS", CF_CONFIG_INT, "14", 1, 365,                            \
     "how long a notification's state is kept in Redis"},                                        \
    {"CASEFLOW_NOTIFIER_TIMER_MS", CF_CONFIG_INT, "1000", 50, 60000,                             \
     "how often due retries, quiet-hours waits and fallbacks are looked for"},                   \
    {"CASEFLOW_NOTIFIER_TIMER_BATCH", CF_CONFIG_INT, "200", 1, 5000,                             \
     "most due notifications one timer turn sends"}
/* clang-format on */

struct notifier_settings {
    int max_attempts;
    int64_t retry_base_ms;
    int64_t retry_max_ms;
    struct notifier_quiet quiet;
    int daily_cap;
    const unsigned char *key_secret;
    size_t key_secret_len;
    const char *mail_from;
    const char *mail_from_name;
    const char *message_id_domain;
    long long state_ttl_seconds;
    int64_t lease_ms; /* how long a claimed due notification is the claimer's */
    int timer_batch;
};

struct notifier {
    struct notifier_settings set;
    struct notifier_planner planner;
    struct notifier_sender *sender;
    struct cf_serde *serde;
    struct cf_redis *redis;
    struct cf_redis_pipeline *pipeline;
    struct cf_due_set due;
    struct cf_redis_script *cap; /* count / add of the daily cap set */
    struct cf_tz_set *zones;
    json_t *batch;    /* the jobs the batch's records planned */
    json_t *finished; /* due ids this timer turn settled for good */
    json_t *forget;   /* settled ids whose statuses are committed: out of the due set next */
    /* metrics (set by main) */
    struct cf_metrics_counter *sent[2];
    struct cf_metrics_counter *failed[2];
    struct cf_metrics_counter *retried[2];
    struct cf_metrics_counter *skipped;
    struct cf_metrics_counter *deferred;
    struct cf_metrics_histogram *send_seconds;
};

/* Makes the parts of n that main does not: the due set and cap scripts, the zone set and the
 * two JSON arrays. n's settings, planner, sender, serde, redis and pipeline are set by the
 * caller. CF_ENOMEM. Free with notifier_clear. */
cf_status notifier_init(struct notifier *n, char *errbuf, size_t errlen);

/* Frees what notifier_init made; NULL-safe, safe on a zeroed struct. */
void notifier_clear(struct notifier *n);

/* The loop's handler, batch hooks and timer (kafka.h); ctx is the struct notifier. */
cf_status notifier_handle(void *ctx, const struct cf_kafka_record *in, struct cf_kafka_out *out,
                          char *errbuf, size_t errlen);
void notifier_batch_begin(void *ctx);
cf_status notifier_batch_end(void *ctx, struct cf_kafka_out *out, char *errbuf, size_t errlen);
cf_status notifier_tick(void *ctx, int64_t now_ms, struct cf_kafka_out *out, char *errbuf,
                        size_t errlen);
void notifier_tick_done(void *ctx, bool committed);

#endif
