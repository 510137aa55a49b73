/* caseflow-notifier — tells patients (and care managers) by email and SMS: consumes the
 * patient-facing case events with the transactional loop, sends each batch's notifications
 * concurrently at the batch's end, and retries, waits out quiet hours and falls back from its
 * timer (notifier.c; README.md in this folder).
 * Wiring only: configuration, logging, signals, the registry, Redis, templates and the loop.
 * Exit status: 0 after SIGTERM or SIGINT, 1 if the loop or a client failed, 2 on bad config. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "catalog.h"
#include "config.h"
#include "http.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "mime.h"
#include "notifier.h"
#include "service.h"

static const struct cf_config_entry config_table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
    CF_CONFIG_REDIS_ENTRIES,
    NOTIFIER_CONFIG_ENTRIES,
    CF_HTTP_OPS_CONFIG_ENTRIES("CASEFLOW_NOTIFIER", "18085"),
};

/* The service's counters besides the loop's. */
static cf_status register_metrics(struct cf_metrics *m, void *ctx, char *err, size_t errlen)
{
    static const double bounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    static const char *const channels[] = {"EMAIL", "SMS"};
    struct notifier *n = ctx;
    cf_status st = CF_OK;

    for (int c = 0; c < 2 && st == CF_OK; c++) {
        st = cf_metrics_counter_new(m, "caseflow_notifier_sent_total",
                                    "Notifications the SMTP server or SMS provider accepted.",
                                    "channel", channels[c], &n->sent[c], err, errlen);
        if (st == CF_OK)
            st = cf_metrics_counter_new(m, "caseflow_notifier_failed_total",
                                        "Notifications that failed for good.", "channel",
                                        channels[c], &n->failed[c], err, errlen);
        if (st == CF_OK)
            st = cf_metrics_counter_new(m, "caseflow_notifier_retries_total",
                                        "Attempts that failed transiently and were rescheduled.",
                                        "channel", channels[c], &n->retried[c], err, errlen);
    }
    if (st == CF_OK)
        st = cf_metrics_counter_new(m, "caseflow_notifier_skipped_total",
                                    "Notifications not sent (no consent, no address, too late).",
                                    NULL, NULL, &n->skipped, err, errlen);
    if (st == CF_OK)
        st = cf_metrics_counter_new(m, "caseflow_notifier_deferred_total",
                                    "Notifications held for quiet hours or the daily cap.", NULL,
                                    NULL, &n->deferred, err, errlen);
    if (st == CF_OK)
        st = cf_metrics_histogram_new(
            m, "caseflow_notifier_send_seconds", "Duration of one send attempt.", NULL, NULL,
            bounds, sizeof(bounds) / sizeof(bounds[0]), &n->send_seconds, err, errlen);
    return st;
}

/* One of the names in names[0..n) by its index into *out; CF_ECONFIG naming key otherwise. */
static cf_status pick(const struct cf_config *c, const char *key, const char *const *names,
                      int count_names, int *out, char *err, size_t errlen)
{
    const char *v = cf_config_string(c, key);
    for (int i = 0; i < count_names; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return CF_OK;
        }
    return cf_fail(err, errlen, CF_ECONFIG, "%s: not one of the values it takes", key);
}

/* The settings and the sender's configuration, checked beyond the table's bounds. */
static cf_status read_settings(const struct cf_config *c, struct notifier_settings *set,
                               struct notifier_sender_config *sc, char *err, size_t errlen)
{
    static const char *const tls[] = {"none", "starttls", "implicit"};
    static const char *const apis[] = {"json", "twilio"};
    const char *secret = cf_config_string(c, "CASEFLOW_NOTIFIER_KEY_SECRET");
    int tls_mode = 0, api = 0;

    memset(set, 0, sizeof(*set));
    memset(sc, 0, sizeof(*sc));
    set->key_secret = (const unsigned char *)secret;
    set->key_secret_len = strlen(secret);
    if (set->key_secret_len < NOTIFIER_KEY_SECRET_MIN)
        return cf_fail(err, errlen, CF_ECONFIG, "CASEFLOW_NOTIFIER_KEY_SECRET: at least %d bytes",
                       NOTIFIER_KEY_SECRET_MIN);
    if (notifier_parse_hhmm(cf_config_string(c, "CASEFLOW_NOTIFIER_QUIET_START"),
                            &set->quiet.start_min) != CF_OK)
        return cf_fail(err, errlen, CF_ECONFIG, "CASEFLOW_NOTIFIER_QUIET_START: HH:MM");
    if (notifier_parse_hhmm(cf_config_string(c, "CASEFLOW_NOTIFIER_QUIET_END"),
                            &set->quiet.end_min) != CF_OK)
        return cf_fail(err, errlen, CF_ECONFIG, "CASEFLOW_NOTIFIER_QUIET_END: HH:MM");
    set->mail_from = cf_config_string(c, "CASEFLOW_NOTIFIER_MAIL_FROM");
    if (!notifier_mime_addr_ok(set->mail_from))
        return cf_fail(err, errlen, CF_ECONFIG, "CASEFLOW_NOTIFIER_MAIL_FROM: not an address");
    set->mail_from_name = cf_config_string(c, "CASEFLOW_NOTIFIER_MAIL_FROM_NAME");
    set->message_id_domain = cf_config_string(c, "CASEFLOW_NOTIFIER_MESSAGE_ID_DOMAIN");
    if (strspn(set->message_id_domain, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                       "0123456789.-") != strlen(set->message_id_domain))
        return cf_fail(err, errlen, CF_ECONFIG,
                       "CASEFLOW_NOTIFIER_MESSAGE_ID_DOMAIN: letters, digits, '.' and '-'");
    /* A batch's statuses are queued at its end in one go: up to three per record. */
    if (cf_config_int(c, "CASEFLOW_BATCH_MAX_RECORDS") * 3 > CF_KAFKA_OUT_MAX_RECORDS)
        return cf_fail(err, errlen, CF_ECONFIG, "CASEFLOW_BATCH_MAX_RECORDS: at most %d here",
                       CF_KAFKA_OUT_MAX_RECORDS / 3);
    set->max_attempts = (int)cf_config_int(c, "CASEFLOW_NOTIFIER_MAX_ATTEMPTS");
    set->retry_base_ms = cf_config_int(c, "CASEFLOW_NOTIFIER_RETRY_BASE_MS");
    set->retry_max_ms = cf_config_int(c, "CASEFLOW_NOTIFIER_RETRY_MAX_MS");
    set->daily_cap = (int)cf_config_int(c, "CASEFLOW_NOTIFIER_DAILY_CAP");
    set->state_ttl_seconds = cf_config_int(c, "CASEFLOW_NOTIFIER_STATE_TTL_DAYS") * 86400;
    set->timer_batch = (int)cf_config_int(c, "CASEFLOW_NOTIFIER_TIMER_BATCH");
    if (pick(c, "CASEFLOW_NOTIFIER_SMTP_TLS", tls, 3, &tls_mode, err, errlen) != CF_OK ||
        pick(c, "CASEFLOW_NOTIFIER_SMS_API", apis, 2, &api, err, errlen) != CF_OK)
        return CF_ECONFIG;
    sc->smtp_url = cf_config_string(c, "CASEFLOW_NOTIFIER_SMTP_URL");
    sc->smtp_tls = (enum notifier_smtp_tls)tls_mode;
    sc->smtp_user = cf_config_string(c, "CASEFLOW_NOTIFIER_SMTP_USER");
    sc->smtp_password = cf_config_string(c, "CASEFLOW_NOTIFIER_SMTP_PASSWORD");
    sc->mail_from = set->mail_from;
    sc->sms_api = (enum notifier_sms_api)api;
    sc->sms_url = cf_config_string(c, "CASEFLOW_NOTIFIER_SMS_URL");
    sc->sms_account = cf_config_string(c, "CASEFLOW_NOTIFIER_SMS_ACCOUNT");
    sc->sms_token = cf_config_string(c, "CASEFLOW_NOTIFIER_SMS_TOKEN");
    sc->sms_from = cf_config_string(c, "CASEFLOW_NOTIFIER_SMS_FROM");
    sc->connect_timeout_ms = (long)cf_config_int(c, "CASEFLOW_NOTIFIER_CONNECT_TIMEOUT_MS");
    sc->timeout_ms = (long)cf_config_int(c, "CASEFLOW_NOTIFIER_SEND_TIMEOUT_MS");
    sc->max_parallel = (long)cf_config_int(c, "CASEFLOW_NOTIFIER_MAX_PARALLEL");
    /* A claimed retry is this replica's while its sends can last, and then some. */
    set->lease_ms = 2 * (sc->connect_timeout_ms + sc->timeout_ms) + 30000;
    return CF_OK;
}

int main(int argc, char **argv)
{
    const size_t n = sizeof(config_table) / sizeof(config_table[0]);
    struct cf_service svc;
    struct notifier_sender_config sender_config;
    struct notifier_templates *templates = NULL;
    struct notifier_localize *localize = NULL;
    struct notifier nt;
    size_t ntopics = 0;
    const char *const *topics = notifier_plan_topics(&ntopics);
    char err[512] = "";
    size_t ncatalog = 0;
    int rc = cf_service_args(argc, argv, config_table, n);
    cf_status st;

    if (rc >= 0)
        return rc;
    memset(&nt, 0, sizeof(nt));
    const volatile sig_atomic_t *stop = cf_service_signals();
    st = cf_service_start(NOTIFIER_SERVICE, config_table, n, true, &svc);
    if (st != CF_OK)
        return st == CF_ECONFIG ? 2 : 1;
    rc = 1;
    /* Jitter of the retry backoff; not a secret. */
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        CF_LOG(CF_LOG_ERROR, "start_failed", CF_LOG_ERR("reason", "curl_global_init failed"));
        goto out;
    }
    if ((st = read_settings(svc.config, &nt.set, &sender_config, err, sizeof(err))) != CF_OK) {
        CF_LOG(CF_LOG_ERROR, "start_failed", CF_LOG_ERR("reason", err));
        rc = 2;
        goto out;
    }
    const char *dir = cf_config_string(svc.config, "CASEFLOW_NOTIFIER_TEMPLATE_DIR");
    const struct notifier_template_spec *catalog = notifier_catalog(&ncatalog);
    st = notifier_templates_load(dir[0] != '\0' ? dir : CF_NOTIFIER_TEMPLATE_DIR, catalog, ncatalog,
                                 &templates, err, sizeof(err));
    if (st == CF_OK)
        st = notifier_localize_new(&localize);
    if (st == CF_OK)
        st = notifier_sender_new(&sender_config, &nt.sender, err, sizeof(err));
    if (st == CF_OK)
        st = cf_redis_pipeline_new(svc.redis, &nt.pipeline);
    if (st == CF_OK)
        st = notifier_init(&nt, err, sizeof(err));
    if (st != CF_OK) {
        if (err[0] == '\0')
            (void)cf_fail(err, sizeof(err), st, "%s", cf_strerror(st));
        CF_LOG(CF_LOG_ERROR, "start_failed", CF_LOG_ERR("reason", err));
        rc = st == CF_ECONFIG ? 2 : 1;
        goto out;
    }
    nt.serde = svc.serde;
    nt.redis = svc.redis;
    nt.planner.templates = templates;
    nt.planner.localize = localize;
    nt.planner.links.patient_base = cf_config_string(svc.config, "CASEFLOW_NOTIFIER_PATIENT_URL");
    nt.planner.links.console_base = cf_config_string(svc.config, "CASEFLOW_NOTIFIER_CONSOLE_URL");
    const struct cf_service_loop_spec spec = {.service = NOTIFIER_SERVICE,
                                              .group = NOTIFIER_GROUP,
                                              .topics = topics,
                                              .ntopics = ntopics,
                                              .handler = notifier_handle,
                                              .ctx = &nt,
                                              .timer = notifier_tick,
                                              .timer_ms_key = "CASEFLOW_NOTIFIER_TIMER_MS",
                                              .timer_done = notifier_tick_done,
                                              .batch_begin = notifier_batch_begin,
                                              .batch_end = notifier_batch_end,
                                              .ops_prefix = "CASEFLOW_NOTIFIER",
                                              .ready_topic = NOTIFIER_T_OPENED,
                                              .register_metrics = register_metrics};
    rc = cf_service_serve(&svc, &spec, &CF_LOG_INT("templates", (long long)ncatalog), stop);
out:
    notifier_clear(&nt);
    cf_redis_pipeline_free(nt.pipeline);
    notifier_sender_free(nt.sender);
    notifier_localize_free(localize);
    notifier_templates_free(templates);
    curl_global_cleanup();
    cf_service_stop(&svc);
    return rc;
}
