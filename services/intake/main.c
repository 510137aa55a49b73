/* caseflow-intake — opens cases: consumes caseflow.inquiry.submitted with the transactional
 * loop and produces caseflow.case.opened (intake.c holds the logic, README.md the rules); the
 * same loop follows the case topics to keep each case's stage (journey.c).
 * Wiring only: configuration, logging, signals, the registry, Redis, the loop, its metrics and
 * the HTTP endpoint (api.c, its own thread), which also serves /metrics.
 * Exit status: 0 after SIGTERM or SIGINT, 1 if the loop or a client failed, 2 on bad config. */
#include <string.h>

#include "api.h"
#include "config.h"
#include "intake.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "service.h"

static const struct cf_config_entry config_table[] = {
    CF_CONFIG_COMMON_ENTRIES, CF_CONFIG_KAFKA_ENTRIES,    CF_CONFIG_REDIS_ENTRIES,
    INTAKE_CONFIG_ENTRIES,    INTAKE_HTTP_CONFIG_ENTRIES,
};

/* Intake's own counters besides the loop's: inquiries by outcome (ctx is the struct intake). */
static cf_status register_metrics(struct cf_metrics *metrics, void *ctx, char *err, size_t errlen)
{
    struct intake *intake = ctx;
    cf_status st = CF_OK;
    for (int o = 0; st == CF_OK && o < INTAKE_OUTCOMES; o++)
        st = cf_metrics_counter_new(metrics, "caseflow_intake_outcomes_total",
                                    "Inquiries decided, by outcome (retried batches decide "
                                    "again).",
                                    "outcome", intake_outcome_name((enum intake_outcome)o),
                                    &intake->outcomes[o], err, errlen);
    return st;
}

int main(int argc, char **argv)
{
    const size_t n = sizeof(config_table) / sizeof(config_table[0]);
    struct cf_service svc;
    struct cf_kafka_loop *loop = NULL;
    struct cf_metrics *metrics = NULL;
    struct intake_http *http = NULL;
    struct intake_journey_scripts stages = {NULL, NULL};
    struct cf_redis_script *fold = NULL;
    const char *topics[] = {INTAKE_INPUT_TOPIC, INTAKE_STAGE_TOPICS};
    char err[512] = "";
    int rc = cf_service_args(argc, argv, config_table, n);
    cf_status st;

    if (rc >= 0)
        return rc;
    const volatile sig_atomic_t *stop = cf_service_signals();
    st = cf_service_start(INTAKE_SERVICE, config_table, n, true, &svc);
    if (st != CF_OK)
        return st == CF_ECONFIG ? 2 : 1;
    rc = 1;

    const char *secret = cf_config_string(svc.config, "CASEFLOW_INTAKE_IDENTITY_SECRET");
    st = intake_journey_scripts_new(&stages, err, sizeof(err));
    if (st == CF_OK)
        st = intake_fold_script_new(&fold, err, sizeof(err));
    struct intake intake = {.serde = svc.serde,
                            .redis = svc.redis,
                            .secret = (const unsigned char *)secret,
                            .secret_len = strlen(secret),
                            .producer = INTAKE_PRODUCER,
                            .stages = &stages,
                            .fold = fold};
    if (st == CF_OK)
        st = cf_kafka_loop_new(svc.config, INTAKE_SERVICE, INTAKE_GROUP, topics,
                               sizeof(topics) / sizeof(topics[0]), intake_handle, &intake, &loop,
                               err, sizeof(err));
    if (st == CF_OK)
        st = cf_service_metrics(INTAKE_SERVICE, loop, register_metrics, &intake, &metrics, err,
                                sizeof(err));
    if (st != CF_OK) {
        CF_LOG(CF_LOG_ERROR, "start_failed", CF_LOG_ERR("reason", err));
        goto out;
    }
    /* The HTTP endpoint runs on its own thread with its own clients (api.h). */
    st = intake_http_start(svc.config, &stages, metrics, &http, err, sizeof(err));
    if (st != CF_OK) {
        CF_LOG(CF_LOG_ERROR, "start_failed", CF_LOG_ERR("reason", err));
        goto out;
    }
    CF_LOG(CF_LOG_INFO, "started", CF_LOG_ID("topic", INTAKE_INPUT_TOPIC),
           CF_LOG_ID("group", INTAKE_GROUP));
    rc = cf_service_run(loop, stop);
out:
    intake_http_stop(http); /* first: it renders the metrics, which read the loop */
    cf_metrics_free(metrics);
    cf_kafka_loop_free(loop);
    cf_redis_script_free(fold);
    intake_journey_scripts_free(&stages);
    cf_service_stop(&svc);
    return rc;
}
