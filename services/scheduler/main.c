/* caseflow-scheduler — books teleconsultations and treatment: consumes caseflow.case.assigned,
 * caseflow.teleconsult.change-requested, caseflow.teleconsult.completed and
 * caseflow.case.closed with the transactional loop, reads its own scheduled / pending /
 * reminder-due records back to confirm the timer's work, and follows the specialist roster
 * (scheduler.c holds the Kafka path, sched_timer.c the timer, sched_pick.c the choice,
 * sched_store.c the Redis scripts, README.md all of them).
 * Wiring only: configuration, logging, signals, the registry, Redis, the roster and the loop.
 * Exit status: 0 after SIGTERM or SIGINT, 1 if the loop or a client failed, 2 on bad config. */
#include <string.h>

#include "config.h"
#include "http.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "roster_view.h"
#include "sched_token.h"
#include "scheduler.h"
#include "service.h"
#include "tz.h"
#include "treatment.h"

static const struct cf_config_entry config_table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
    CF_CONFIG_REDIS_ENTRIES,
    SCHEDULER_CONFIG_ENTRIES,
    CF_HTTP_OPS_CONFIG_ENTRIES("CASEFLOW_SCHEDULER", "18084"),
};

/* The service's counters besides the loop's. */
static cf_status register_metrics(struct cf_metrics *m, void *ctx, char *err, size_t errlen)
{
    struct scheduler *s = ctx;
    static const char *const help_b = "Teleconsultations booked, rescheduled or cancelled.";
    cf_status st = cf_metrics_counter_new(m, "caseflow_scheduler_bookings_total", help_b,
                                          "status", "BOOKED", &s->booked, err, errlen);
    if (st == CF_OK)
        st = cf_metrics_counter_new(m, "caseflow_scheduler_bookings_total", help_b, "status",
                                    "RESCHEDULED", &s->rescheduled, err, errlen);
    if (st == CF_OK)
        st = cf_metrics_counter_new(m, "caseflow_scheduler_bookings_total", help_b, "status",
                                    "CANCELLED", &s->cancelled, err, errlen);
    if (st == CF_OK)
        st = cf_metrics_counter_new(m, "caseflow_scheduler_reminders_total",
                                    "Reminders emitted (a re-emission after a lease counts again).",
                                    NULL, NULL, &s->reminders, err, errlen);
    if (st == CF_OK)
        st = cf_metrics_counter_new(m, "caseflow_scheduler_refused_changes_total",
                                    "Change requests refused (bad or stale token, no booking).",
                                    NULL, NULL, &s->refused, err, errlen);
    if (st == CF_OK)
        st = cf_metrics_counter_new(m, "caseflow_scheduler_pending_total",
                                    "CasePending records (a case waits; alerts included).", NULL,
                                    NULL, &s->pending, err, errlen);
    if (st == CF_OK)
        st = cf_metrics_counter_new(m, "caseflow_scheduler_treatments_total",
                                    "Treatments booked.", NULL, NULL, &s->treatments, err, errlen);
    if (st == CF_OK)
        st = cf_metrics_counter_new(m, "caseflow_scheduler_closed_total",
                                    "Cases closed by the scheduler.", NULL, NULL, &s->closed, err,
                                    errlen);
    return st;
}

/* The settings of the config, checked beyond the table's bounds. */
static cf_status read_settings(const struct cf_config *c, struct sched_settings *set, char *err,
                               size_t errlen)
{
    const char *secret = cf_config_string(c, "CASEFLOW_SCHEDULER_TOKEN_SECRET");
    memset(set, 0, sizeof(*set));
    set->secret = (const unsigned char *)secret;
    set->secret_len = strlen(secret);
    if (set->secret_len < SCHED_TOKEN_SECRET_MIN)
        return cf_fail(err, errlen, CF_ECONFIG,
                       "CASEFLOW_SCHEDULER_TOKEN_SECRET: at least %d bytes",
                       SCHED_TOKEN_SECRET_MIN);
    set->lead_ms = cf_config_int(c, "CASEFLOW_SCHEDULER_LEAD_MINUTES") * 60000;
    set->urgent_lead_ms = cf_config_int(c, "CASEFLOW_SCHEDULER_URGENT_LEAD_MINUTES") * 60000;
    set->horizon_ms = cf_config_int(c, "CASEFLOW_SCHEDULER_HORIZON_DAYS") * 86400000LL;
    set->join_url_base = cf_config_string(c, "CASEFLOW_SCHEDULER_JOIN_URL_BASE");
    set->pending_alert_ms = cf_config_int(c, "CASEFLOW_SCHEDULER_PENDING_ALERT_SECONDS") * 1000;
    set->pending_retry_ms = cf_config_int(c, "CASEFLOW_SCHEDULER_PENDING_RETRY_SECONDS") * 1000;
    set->h24_ms = cf_config_int(c, "CASEFLOW_SCHEDULER_REMINDER_H24_SECONDS") * 1000;
    set->h1_ms = cf_config_int(c, "CASEFLOW_SCHEDULER_REMINDER_H1_SECONDS") * 1000;
    set->state_ttl_seconds = cf_config_int(c, "CASEFLOW_SCHEDULER_STATE_TTL_DAYS") * 86400;
    set->tests_wait_ms = cf_config_int(c, "CASEFLOW_SCHEDULER_TESTS_WAIT_DAYS") * 86400000LL;
    set->clinic_time_zone = cf_config_string(c, "CASEFLOW_SCHEDULER_CLINIC_TIME_ZONE");
    set->clinic_daily = (int)cf_config_int(c, "CASEFLOW_SCHEDULER_CLINIC_DAILY_SESSIONS");
    set->travel_lead_days = (int)cf_config_int(c, "CASEFLOW_SCHEDULER_TRAVEL_LEAD_DAYS");
    if (!cf_tz_known(set->clinic_time_zone))
        return cf_fail(err, errlen, CF_ECONFIG,
                       "CASEFLOW_SCHEDULER_CLINIC_TIME_ZONE: not a known IANA zone");
    if (treatment_parse_days(cf_config_string(c, "CASEFLOW_SCHEDULER_CLINIC_DAYS"),
                             set->clinic_open) != CF_OK)
        return cf_fail(err, errlen, CF_ECONFIG,
                       "CASEFLOW_SCHEDULER_CLINIC_DAYS: ISO weekdays 1-7, comma-separated");
    if (set->h1_ms >= set->h24_ms)
        return cf_fail(err, errlen, CF_ECONFIG,
                       "CASEFLOW_SCHEDULER_REMINDER_H1_SECONDS must be below the H24 lead");
    return CF_OK;
}

int main(int argc, char **argv)
{
    const size_t n = sizeof(config_table) / sizeof(config_table[0]);
    struct cf_service svc;
    struct cf_redis_pipeline *pipeline = NULL;
    struct cf_roster_view *view = NULL;
    struct sched_scripts scripts;
    struct scheduler s;
    const char *topics[] = {SCHED_T_ASSIGNED,  SCHED_T_CHANGE,   SCHED_T_COMPLETED,
                            SCHED_T_CLOSED,    SCHED_T_SCHEDULED, SCHED_T_PENDING,
                            SCHED_T_REMINDER};
    char err[512] = "";
    int rc = cf_service_args(argc, argv, config_table, n);
    cf_status st;

    if (rc >= 0)
        return rc;
    memset(&scripts, 0, sizeof(scripts));
    memset(&s, 0, sizeof(s));
    const volatile sig_atomic_t *stop = cf_service_signals();
    st = cf_service_start(SCHEDULER_SERVICE, config_table, n, true, &svc);
    if (st != CF_OK)
        return st == CF_ECONFIG ? 2 : 1;
    rc = 1;
    if ((st = read_settings(svc.config, &s.set, err, sizeof(err))) != CF_OK) {
        CF_LOG(CF_LOG_ERROR, "start_failed", CF_LOG_ERR("reason", err));
        rc = 2;
        goto out;
    }
    st = sched_scripts_new(&scripts, err, sizeof(err));
    if (st == CF_OK)
        st = cf_redis_pipeline_new(svc.redis, &pipeline);
    if (st == CF_OK)
        st = cf_tz_set_new(&s.zones);
    if (st == CF_OK)
        st = cf_roster_view_new(svc.config, svc.serde, SCHED_T_ROSTER, &view, err, sizeof(err));
    if (st == CF_OK) {
        /* Every replica reads the whole roster before its first case: no case is matched
         * against half a roster. */
        st = cf_roster_view_sync(view, (int)cf_config_int(svc.config,
                                                          "CASEFLOW_SCHEDULER_ROSTER_SYNC_MS"),
                                 err, sizeof(err));
    }
    if (st != CF_OK) {
        CF_LOG(CF_LOG_ERROR, "start_failed", CF_LOG_ERR("reason", err));
        goto out;
    }
    s.serde = svc.serde;
    s.redis = svc.redis;
    s.pipeline = pipeline;
    s.scripts = &scripts;
    s.roster_view = view;
    s.producer = SCHEDULER_PRODUCER;
    s.roster_version = (uint64_t)-1;
    if ((st = scheduler_roster_refresh(&s, err, sizeof(err))) != CF_OK) {
        CF_LOG(CF_LOG_ERROR, "start_failed", CF_LOG_ERR("reason", err));
        goto out;
    }
    const struct cf_service_loop_spec spec = {.service = SCHEDULER_SERVICE,
                                              .group = SCHEDULER_GROUP,
                                              .topics = topics,
                                              .ntopics = sizeof(topics) / sizeof(topics[0]),
                                              .handler = scheduler_handle,
                                              .ctx = &s,
                                              .timer = scheduler_tick,
                                              .timer_ms_key = "CASEFLOW_SCHEDULER_TIMER_MS",
                                              .ops_prefix = "CASEFLOW_SCHEDULER",
                                              .ready_topic = SCHED_T_ASSIGNED,
                                              .register_metrics = register_metrics};
    rc = cf_service_serve(&svc, &spec, &CF_LOG_INT("specialists", s.roster.n), stop);
out:
    sched_roster_clear(&s.roster);
    cf_tz_set_free(s.zones);
    cf_roster_view_free(view);
    cf_redis_pipeline_free(pipeline);
    sched_scripts_free(&scripts);
    cf_service_stop(&svc);
    return rc;
}
