/* caseflow-validation — triages cases: consumes caseflow.case.opened, .info-provided and
 * .reviewed with the transactional loop and produces exactly one outcome per input; reads
 * caseflow.case.closed back to follow its cases, and closes those left waiting for information
 * with the loop's timer (validation.c holds the Kafka path, rules.c the rules, stage.c the
 * stages, expiry.c the timer, README.md all of them).
 * Wiring only: configuration, logging, signals, the registry, Redis and the loop.
 * Exit status: 0 after SIGTERM or SIGINT, 1 if the loop or a client failed, 2 on bad config. */
#include "config.h"
#include "http.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "service.h"
#include "validation.h"

static const struct cf_config_entry config_table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
    CF_CONFIG_REDIS_ENTRIES,
    VALIDATION_CONFIG_ENTRIES,
    CF_HTTP_OPS_CONFIG_ENTRIES("CASEFLOW_VALIDATION", "18082"),
};

/* The service's own counters besides the loop's: outcomes by kind and expiries. */
static cf_status register_metrics(struct cf_metrics *metrics, void *ctx, char *err,
                                  size_t errlen)
{
    struct validation *v = ctx;
    static const enum validation_outcome outcomes[] = {
        VALIDATION_OUTCOME_VALIDATED, VALIDATION_OUTCOME_INFO_REQUESTED,
        VALIDATION_OUTCOME_REVIEW_REQUESTED, VALIDATION_OUTCOME_REJECTED};
    cf_status st = CF_OK;
    for (size_t i = 0; st == CF_OK && i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
        st = cf_metrics_counter_new(metrics, "caseflow_validation_outcomes_total",
                                    "Outcomes decided (retried batches decide again).", "outcome",
                                    validation_outcome_event(outcomes[i]), &v->decided[outcomes[i]],
                                    err, errlen);
    if (st == CF_OK)
        st = cf_metrics_counter_new(metrics, "caseflow_validation_expired_total",
                                    "Cases closed EXPIRED after waiting for information.", NULL,
                                    NULL, &v->expired, err, errlen);
    if (st == CF_OK)
        st = cf_metrics_counter_new(metrics, "caseflow_validation_refused_total",
                                    "Inputs the case's stage no longer admits (dead-lettered).",
                                    NULL, NULL, &v->refused, err, errlen);
    return st;
}

int main(int argc, char **argv)
{
    const size_t n = sizeof(config_table) / sizeof(config_table[0]);
    struct cf_service svc;
    struct cf_redis_pipeline *pipeline = NULL;
    struct cf_due_set expiry = {NULL, NULL};
    const char *topics[] = {VALIDATION_TOPIC_OPENED, VALIDATION_TOPIC_INFO_PROVIDED,
                            VALIDATION_TOPIC_REVIEWED, VALIDATION_TOPIC_CLOSED};
    char err[512] = "";
    int rc = cf_service_args(argc, argv, config_table, n);
    cf_status st;

    if (rc >= 0)
        return rc;
    const volatile sig_atomic_t *stop = cf_service_signals();
    st = cf_service_start(VALIDATION_SERVICE, config_table, n, true, &svc);
    if (st != CF_OK)
        return st == CF_ECONFIG ? 2 : 1;
    rc = 1;

    long long wait_seconds = cf_config_int(svc.config, "CASEFLOW_VALIDATION_INFO_WAIT_SECONDS");
    long long ttl_days = cf_config_int(svc.config, "CASEFLOW_VALIDATION_STATE_TTL_DAYS");
    if (ttl_days * 24 * 60 * 60 <= wait_seconds) {
        /* The stored case must outlive the wait, or the patient's answer finds nothing. */
        CF_LOG(CF_LOG_ERROR, "start_failed",
               CF_LOG_ERR("reason", "CASEFLOW_VALIDATION_STATE_TTL_DAYS must exceed "
                                    "CASEFLOW_VALIDATION_INFO_WAIT_SECONDS"));
        rc = 2;
        goto out;
    }
    st = cf_due_set_init(&expiry, err, sizeof(err));
    if (st == CF_OK)
        st = cf_redis_pipeline_new(svc.redis, &pipeline);
    if (st != CF_OK) {
        CF_LOG(CF_LOG_ERROR, "start_failed", CF_LOG_ERR("reason", "out of memory"));
        goto out;
    }
    struct validation validation = {svc.serde,
                                    svc.redis,
                                    pipeline,
                                    &expiry,
                                    VALIDATION_PRODUCER,
                                    wait_seconds * 1000,
                                    ttl_days * 24 * 60 * 60,
                                    NULL,
                                    {NULL},
                                    NULL,
                                    NULL};
    const struct cf_service_loop_spec spec = {.service = VALIDATION_SERVICE,
                                              .group = VALIDATION_GROUP,
                                              .topics = topics,
                                              .ntopics = sizeof(topics) / sizeof(topics[0]),
                                              .handler = validation_handle,
                                              .ctx = &validation,
                                              .timer = validation_expire,
                                              .timer_ms_key = "CASEFLOW_VALIDATION_EXPIRY_CHECK_MS",
                                              .ops_prefix = "CASEFLOW_VALIDATION",
                                              .ready_topic = VALIDATION_TOPIC_OPENED,
                                              .register_metrics = register_metrics};
    rc = cf_service_serve(&svc, &spec, &CF_LOG_INT("info_wait_seconds", wait_seconds), stop);
out:
    cf_redis_pipeline_free(pipeline);
    cf_due_set_clear(&expiry);
    cf_service_stop(&svc);
    return rc;
}
