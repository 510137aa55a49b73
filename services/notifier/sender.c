/* sender.c — see sender.h. */
#include "sender.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "clock.h"

/* Largest provider answer kept (the id is near the start; the rest is not needed). */
#define ANSWER_MAX (16u * 1024u)
#define POLL_MS 200

struct notifier_sender {
    struct notifier_sender_config cfg;
    CURLM *multi;
    char *sms_endpoint; /* the full URL of the provider's messages call */
};

/* One transfer in progress. */
struct transfer {
    struct notifier_send *send;
    CURL *easy;
    struct curl_slist *list; /* SMTP recipients or HTTP headers */
    char *body;              /* SMS request body */
    size_t sent;             /* SMTP: bytes of send->data handed to curl */
    char answer[ANSWER_MAX + 1];
    size_t answer_len;
};

enum notifier_outcome notifier_classify(enum notifier_channel channel, int curl_code, long response,
                                        char *error, size_t size)
{
    if (channel == NOTIFIER_EMAIL && response >= 400 && response <= 599) {
        /* Whatever curl made of it, the server said why: 4xx try later, 5xx never. */
        (void)snprintf(error, size, "SMTP_%ld", response);
        return response < 500 ? NOTIFIER_TRANSIENT : NOTIFIER_PERMANENT;
    }
    if (curl_code == CURLE_OK) {
        if (channel == NOTIFIER_EMAIL || (response >= 200 && response <= 299)) {
            error[0] = '\0';
            return NOTIFIER_SENT;
        }
        (void)snprintf(error, size, "HTTP_%ld", response);
        if (response == 408 || response == 425 || response == 429 || response >= 500)
            return NOTIFIER_TRANSIENT;
        return NOTIFIER_PERMANENT;
    }
    switch (curl_code) {
    case CURLE_COULDNT_CONNECT:
        (void)snprintf(error, size, "CONNECT");
        return NOTIFIER_TRANSIENT;
    case CURLE_OPERATION_TIMEDOUT:
        (void)snprintf(error, size, "TIMEOUT");
        return NOTIFIER_TRANSIENT;
    case CURLE_COULDNT_RESOLVE_HOST:
        (void)snprintf(error, size, "DNS");
        return NOTIFIER_TRANSIENT;
    case CURLE_LOGIN_DENIED:
        /* Our credentials, not the message: retried, so a fixed password lets it through. */
        (void)snprintf(error, size, "AUTH");
        return NOTIFIER_TRANSIENT;
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        (void)snprintf(error, size, "TLS");
        return NOTIFIER_TRANSIENT;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        (void)snprintf(error, size, "CONFIG");
        return NOTIFIER_TRANSIENT;
    default:
        (void)snprintf(error, size, "CURL_%d", curl_code);
        return NOTIFIER_TRANSIENT;
    }
}

cf_status notifier_sender_new(const struct notifier_sender_config *cfg,
                              struct notifier_sender **out, char *errbuf, size_t errlen)
{
    struct notifier_sender *s = NULL;
    cf_status st = CF_OK;
    bool smtps = strncmp(cfg->smtp_url, "smtps://", 8) == 0;

    *out = NULL;
    if (!smtps && strncmp(cfg->smtp_url, "smtp://", 7) != 0)
        return cf_fail(errbuf, errlen, CF_ECONFIG,
                       "CASEFLOW_NOTIFIER_SMTP_URL: smtp://host:port or smtps://host:port");
    if (smtps != (cfg->smtp_tls == NOTIFIER_SMTP_TLS_IMPLICIT))
        return cf_fail(errbuf, errlen, CF_ECONFIG,
                       "CASEFLOW_NOTIFIER_SMTP_TLS: implicit goes with smtps:// and only with it");
    if (strncmp(cfg->sms_url, "http://", 7) != 0 && strncmp(cfg->sms_url, "https://", 8) != 0)
        return cf_fail(errbuf, errlen, CF_ECONFIG, "CASEFLOW_NOTIFIER_SMS_URL: http(s)://...");
    if (cfg->sms_api == NOTIFIER_SMS_API_TWILIO &&
        (cfg->sms_account == NULL || cfg->sms_account[0] == '\0' ||
         strspn(cfg->sms_account,
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") !=
             strlen(cfg->sms_account)))
        return cf_fail(errbuf, errlen, CF_ECONFIG,
                       "CASEFLOW_NOTIFIER_SMS_ACCOUNT: the twilio API needs the account SID");
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return CF_ENOMEM;
    s->cfg = *cfg;
    if (s->cfg.max_parallel < 1)
        s->cfg.max_parallel = 1;
    if (cfg->sms_api == NOTIFIER_SMS_API_TWILIO) {
        size_t len = strlen(cfg->sms_url) + strlen(cfg->sms_account) + 64;
        if ((s->sms_endpoint = malloc(len)) != NULL) {
            const char *base = cfg->sms_url;
            size_t blen = strlen(base);
            while (blen > 0 && base[blen - 1] == '/')
                blen--;
            (void)snprintf(s->sms_endpoint, len, "%.*s/2010-04-01/Accounts/%s/Messages.json",
                           (int)blen, base, cfg->sms_account);
        }
    } else {
        s->sms_endpoint = strdup(cfg->sms_url);
    }
    if (s->sms_endpoint == NULL || (s->multi = curl_multi_init()) == NULL) {
        st = CF_ENOMEM;
        goto out;
    }
    /* Connections are kept between batches: one SMTP session serves many messages. */
    (void)curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, s->cfg.max_parallel);
out:
    if (st != CF_OK)
        notifier_sender_free(s);
    else
        *out = s;
    return st;
}

void notifier_sender_free(struct notifier_sender *s)
{
    if (s == NULL)
        return;
    if (s->multi != NULL)
        (void)curl_multi_cleanup(s->multi);
    free(s->sms_endpoint);
    free(s);
}

/* SMTP upload: hands curl the next piece of the message. */
static size_t read_message(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct transfer *t = userdata;
    size_t room = size * nitems, left = t->send->len - t->sent;
    size_t n = left < room ? left : room;
    memcpy(buf, t->send->data + t->sent, n);
    t->sent += n;
    return n;
}

/* HTTP answer: kept up to ANSWER_MAX, the rest dropped (not an error). */
static size_t write_answer(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct transfer *t = userdata;
    size_t n = size * nmemb, room = ANSWER_MAX - t->answer_len;
    memcpy(t->answer + t->answer_len, ptr, n < room ? n : room);
    t->answer_len += n < room ? n : room;
    return n;
}

/* Appends "name=escaped(value)" (with '&' before all but the first) to a form body. */
static bool form_add(CURL *easy, char **body, size_t *len, const char *name, const char *value)
{
    char *esc = curl_easy_escape(easy, value, 0);
    if (esc == NULL)
        return false;
    size_t add = strlen(name) + strlen(esc) + 2;
    char *grown = realloc(*body, *len + add + 1);
    if (grown == NULL) {
        curl_free(esc);
        return false;
    }
    *body = grown;
    *len += (size_t)snprintf(*body + *len, add + 1, "%s%s=%s", *len > 0 ? "&" : "", name, esc);
    curl_free(esc);
    return true;
}

/* The SMS request's body and headers. */
static bool sms_request(struct notifier_sender *s, struct transfer *t)
{
    const struct notifier_sender_config *c = &s->cfg;
    char header[160];
    char *text = strndup(t->send->data, t->send->len);
    bool ok = false;

    if (text == NULL)
        return false;
    if (c->sms_api == NOTIFIER_SMS_API_TWILIO) {
        size_t len = 0;
        ok = form_add(t->easy, &t->body, &len, "To", t->send->to) &&
             form_add(t->easy, &t->body, &len, "From", c->sms_from) &&
             form_add(t->easy, &t->body, &len, "Body", text);
        (void)snprintf(header, sizeof(header), "I-Twilio-Idempotency-Token: %s", t->send->key);
        ok = ok && (t->list = curl_slist_append(t->list, header)) != NULL;
        ok = ok && curl_easy_setopt(t->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) == CURLE_OK &&
             curl_easy_setopt(t->easy, CURLOPT_USERNAME, c->sms_account) == CURLE_OK &&
             curl_easy_setopt(t->easy, CURLOPT_PASSWORD, c->sms_token) == CURLE_OK;
    } else {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "to", t->send->to, "from", c->sms_from,
                              "body", text, "idempotency_key", t->send->key);
        t->body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        (void)snprintf(header, sizeof(header), "Idempotency-Key: %s", t->send->key);
        ok = t->body != NULL && (t->list = curl_slist_append(t->list, header)) != NULL &&
             (t->list = curl_slist_append(t->list, "Content-Type: application/json")) != NULL;
        if (ok && c->sms_token != NULL && c->sms_token[0] != '\0') {
            char *auth = NULL;
            size_t alen = strlen(c->sms_token) + 32;
            if ((auth = malloc(alen)) != NULL) {
                (void)snprintf(auth, alen, "Authorization: Bearer %s", c->sms_token);
                ok = (t->list = curl_slist_append(t->list, auth)) != NULL;
                free(auth);
            } else {
                ok = false;
            }
        }
    }
    free(text);
    return ok && curl_easy_setopt(t->easy, CURLOPT_URL, s->sms_endpoint) == CURLE_OK &&
           curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->body) == CURLE_OK &&
           curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->list) == CURLE_OK &&
           curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, write_answer) == CURLE_OK &&
           curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t) == CURLE_OK;
}

/* The SMTP transfer's options. */
static bool smtp_request(struct notifier_sender *s, struct transfer *t)
{
    const struct notifier_sender_config *c = &s->cfg;
    char rcpt[300];

    (void)snprintf(rcpt, sizeof(rcpt), "<%s>", t->send->to);
    if ((t->list = curl_slist_append(NULL, rcpt)) == NULL)
        return false;
    (void)snprintf(rcpt, sizeof(rcpt), "<%s>", c->mail_from);
    bool ok =
        curl_easy_setopt(t->easy, CURLOPT_URL, c->smtp_url) == CURLE_OK &&
        curl_easy_setopt(t->easy, CURLOPT_MAIL_FROM, rcpt) == CURLE_OK &&
        curl_easy_setopt(t->easy, CURLOPT_MAIL_RCPT, t->list) == CURLE_OK &&
        curl_easy_setopt(t->easy, CURLOPT_READFUNCTION, read_message) == CURLE_OK &&
        curl_easy_setopt(t->easy, CURLOPT_READDATA, t) == CURLE_OK &&
        curl_easy_setopt(t->easy, CURLOPT_UPLOAD, 1L) == CURLE_OK &&
        curl_easy_setopt(t->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)t->send->len) == CURLE_OK;
    if (ok && c->smtp_tls == NOTIFIER_SMTP_TLS_STARTTLS)
        ok = curl_easy_setopt(t->easy, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL) == CURLE_OK;
    if (ok && c->smtp_user != NULL && c->smtp_user[0] != '\0')
        ok = curl_easy_setopt(t->easy, CURLOPT_USERNAME, c->smtp_user) == CURLE_OK &&
             curl_easy_setopt(t->easy, CURLOPT_PASSWORD, c->smtp_password) == CURLE_OK;
    return ok;
}

/* Makes t's easy handle and adds it to the multi handle; false if it could not be started. */
static bool transfer_start(struct notifier_sender *s, struct transfer *t)
{
    const struct notifier_sender_config *c = &s->cfg;

    if ((t->easy = curl_easy_init()) == NULL)
        return false;
    bool ok =
        curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
        curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms) == CURLE_OK &&
        curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, c->timeout_ms) == CURLE_OK &&
        curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t) == CURLE_OK;
    if (ok)
        ok = t->send->channel == NOTIFIER_EMAIL ? smtp_request(s, t) : sms_request(s, t);
    return ok && curl_multi_add_handle(s->multi, t->easy) == CURLM_OK;
}

/* The provider's id from its answer, if it is a plain token. */
static void read_provider_id(const struct notifier_sender *s, struct transfer *t)
{
    json_t *answer = json_loadb(t->answer, t->answer_len, 0, NULL);
    const char *id = json_string_value(
        json_object_get(answer, s->cfg.sms_api == NOTIFIER_SMS_API_TWILIO ? "sid" : "id"));
    if (id != NULL && strlen(id) < sizeof(t->send->provider_id) &&
        strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") ==
            strlen(id))
        (void)snprintf(t->send->provider_id, sizeof(t->send->provider_id), "%s", id);
    json_decref(answer);
}

/* Records a finished transfer's outcome and frees what it used. */
static void transfer_finish(struct notifier_sender *s, struct transfer *t, CURLcode code)
{
    long response = 0;
    double seconds = 0;

    (void)curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &response);
    (void)curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME, &seconds);
    t->send->seconds = seconds;
    t->send->finished_ms = cf_clock_wall_ms();
    t->send->outcome = notifier_classify(t->send->channel, (int)code, response, t->send->error,
                                         sizeof(t->send->error));
    if (t->send->outcome == NOTIFIER_SENT && t->send->channel == NOTIFIER_SMS)
        read_provider_id(s, t);
    (void)curl_multi_remove_handle(s->multi, t->easy);
}

static void transfer_clear(struct transfer *t)
{
    if (t->easy != NULL)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->list);
    free(t->body);
    t->easy = NULL;
    t->list = NULL;
    t->body = NULL;
}

void notifier_sender_run(struct notifier_sender *s, struct notifier_send *sends, size_t n,
                         const struct notifier_send_hooks *hooks)
{
    size_t slots = (size_t)s->cfg.max_parallel, next = 0, running = 0;
    struct transfer *pool = calloc(slots, sizeof(*pool));

    for (size_t i = 0; i < n; i++) {
        sends[i].outcome = NOTIFIER_TRANSIENT;
        (void)snprintf(sends[i].error, sizeof(sends[i].error), "LOCAL");
        sends[i].provider_id[0] = '\0';
        sends[i].seconds = 0;
        sends[i].finished_ms = cf_clock_wall_ms();
    }
    if (pool == NULL)
        return;
    while (next < n || running > 0) {
        /* Fill the free slots. */
        for (size_t k = 0; k < slots && next < n; k++) {
            struct transfer *t = &pool[k];
            if (t->send != NULL)
                continue;
            memset(t, 0, sizeof(*t));
            t->send = &sends[next++];
            if (hooks != NULL && hooks->prepare != NULL &&
                !hooks->prepare(hooks->ctx, (size_t)(t->send - sends), t->send)) {
                t->send = NULL;
                continue;
            }
            if (transfer_start(s, t)) {
                running++;
            } else {
                /* stays TRANSIENT "LOCAL" */
                if (hooks != NULL && hooks->done != NULL)
                    hooks->done(hooks->ctx, (size_t)(t->send - sends), t->send);
                transfer_clear(t);
                t->send = NULL;
            }
        }
        int still = 0;
        (void)curl_multi_perform(s->multi, &still);
        CURLMsg *msg;
        int left = 0;
        while ((msg = curl_multi_info_read(s->multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct transfer *t = NULL;
            (void)curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            transfer_finish(s, t, msg->data.result);
            if (hooks != NULL && hooks->done != NULL)
                hooks->done(hooks->ctx, (size_t)(t->send - sends), t->send);
            transfer_clear(t);
            t->send = NULL;
            running--;
        }
        if (running > 0 && (next >= n || running >= slots))
            (void)curl_multi_poll(s->multi, NULL, 0, POLL_MS, NULL);
    }
    free(pool);
}
