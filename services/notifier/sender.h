/* sender.h — sending rendered notifications: email over SMTP and SMS over an HTTP provider API,
 * all through one libcurl multi handle, so a batch's messages go out concurrently and a slow
 * SMTP server does not hold the SMS back (or the other way round).
 *
 * SMS providers (CASEFLOW_NOTIFIER_SMS_API):
 *   "twilio"  Twilio's Messages API: POST <url>/2010-04-01/Accounts/<account>/Messages.json,
 *             form fields To, From, Body, HTTP basic auth (account, token), the idempotency key
 *             in I-Twilio-Idempotency-Token; the provider's id is the answer's "sid".
 *   "json"    a generic JSON webhook: POST <url> {"to","from","body","idempotency_key"}, the key
 *             also in an Idempotency-Key header, "Authorization: Bearer <token>" when a token is
 *             set; the provider's id is the answer's "id".
 * Either way the idempotency key is the notification id, the same on every retry, so a
 * provider that saw the first attempt does not send twice. */
#ifndef NOTIFIER_SENDER_H
#define NOTIFIER_SENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "render.h"
#include "status.h"

enum notifier_sms_api {
    NOTIFIER_SMS_API_JSON,
    NOTIFIER_SMS_API_TWILIO,
};

enum notifier_smtp_tls {
    NOTIFIER_SMTP_TLS_NONE,     /* plain SMTP (the local stack) */
    NOTIFIER_SMTP_TLS_STARTTLS, /* STARTTLS required, the certificate verified */
    NOTIFIER_SMTP_TLS_IMPLICIT, /* smtps:// (TLS from the first byte) */
};

/* Where and how to send; every string is borrowed and must outlive the sender. */
struct notifier_sender_config {
    const char *smtp_url; /* smtp://host:port or smtps://host:port */
    enum notifier_smtp_tls smtp_tls;
    const char *smtp_user; /* "" or NULL: no AUTH */
    const char *smtp_password;
    const char *mail_from; /* envelope sender and From address */
    enum notifier_sms_api sms_api;
    const char *sms_url;
    const char *sms_account; /* twilio: the account SID */
    const char *sms_token;   /* twilio: the auth token; json: a bearer token ("" none) */
    const char *sms_from;    /* sender number or id */
    long connect_timeout_ms;
    long timeout_ms;   /* whole transfer */
    long max_parallel; /* transfers at once */
};

/* What one attempt came to. */
enum notifier_outcome {
    NOTIFIER_SENT,      /* the SMTP server or provider accepted it */
    NOTIFIER_TRANSIENT, /* may work later: SMTP 4xx, no connection, timeout, HTTP 408/429/5xx */
    NOTIFIER_PERMANENT, /* will not work: SMTP 5xx, HTTP 4xx, a refused address */
};

/* One message to send. The caller fills the inputs; notifier_sender_run fills the rest. */
struct notifier_send {
    enum notifier_channel channel;
    const char *to;   /* email address, or E.164 phone number */
    const char *data; /* email: the whole MIME message (CRLF); SMS: the text */
    size_t len;
    const char *key; /* idempotency key: the notification id */
    /* results */
    enum notifier_outcome outcome;
    char error[32];       /* outcome not SENT: a stable code, "SMTP_451", "HTTP_503", "CONNECT" */
    char provider_id[96]; /* SMS: the provider's message id when it gave one */
    double seconds;       /* how long the attempt took */
    int64_t finished_ms;  /* wall clock when the outcome came */
};

/* The outcome of a transfer that ended with curl_code (a CURLcode) and response (the last SMTP
 * or HTTP response code, 0 if none), with the stable error code into error (size ≥ 16). Pure. */
enum notifier_outcome notifier_classify(enum notifier_channel channel, int curl_code, long response,
                                        char *error, size_t size);

struct notifier_sender;

/* Creates a sender (curl multi handle) for cfg. CF_ECONFIG naming the setting for a bad URL
 * scheme for the TLS mode, CF_ENOMEM. On CF_OK *out is the caller's (notifier_sender_free). */
cf_status notifier_sender_new(const struct notifier_sender_config *cfg,
                              struct notifier_sender **out, char *errbuf, size_t errlen);

/* NULL-safe. */
void notifier_sender_free(struct notifier_sender *s);

/* What the caller does around each send (either may be NULL; ctx is passed to both):
 *   prepare  right before sends[i] starts: fill in its data (so a batch's big MIME messages are
 *            built only for the sends in flight); false: not sent, the caller set its outcome;
 *   done     as soon as sends[i] has its outcome, while others may still be in flight: the
 *            notifier records a sent message at once, so a crash a moment later does not send
 *            it again, and frees what prepare made. */
struct notifier_send_hooks {
    bool (*prepare)(void *ctx, size_t i, struct notifier_send *send);
    void (*done)(void *ctx, size_t i, struct notifier_send *send);
    void *ctx;
};

/* Sends sends[0..n), at most max_parallel at a time, and returns once every one has an outcome
 * (each transfer is bounded by the timeouts). hooks may be NULL. Never fails as a whole: a
 * message that could not even be started (out of memory) is TRANSIENT with error "LOCAL". */
void notifier_sender_run(struct notifier_sender *s, struct notifier_send *sends, size_t n,
                         const struct notifier_send_hooks *hooks);

#endif
