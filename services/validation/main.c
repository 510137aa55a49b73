/* caseflow-validation — triages cases: consumes caseflow.case.opened, .info-provided and
 * .reviewed with the transactional loop and produces exactly one outcome per input
 * (validation.c holds the Kafka path, rules.c the rules, README.md both).
 * Wiring only: configuration, logging, signals, the registry, Redis and the loop.
 * Exit status: 0 after SIGTERM or SIGINT, 1 if the loop or a client failed, 2 on bad config. */
#include "config.h"
#include "kafka.h"
#include "log.h"
#include "service.h"
#include "validation.h"

static const struct cf_config_entry config_table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
    CF_CONFIG_REDIS_ENTRIES,
    VALIDATION_CONFIG_ENTRIES,
};

int main(int argc, char **argv)
{
    const size_t n = sizeof(config_table) / sizeof(config_table[0]);
    struct cf_service svc;
    struct cf_kafka_loop *loop = NULL;
    const char *topics[] = {VALIDATION_TOPIC_OPENED, VALIDATION_TOPIC_INFO_PROVIDED,
                            VALIDATION_TOPIC_REVIEWED};
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

    long long wait_days = cf_config_int(svc.config, "CASEFLOW_VALIDATION_INFO_WAIT_DAYS");
    long long ttl_days = cf_config_int(svc.config, "CASEFLOW_VALIDATION_STATE_TTL_DAYS");
    if (ttl_days <= wait_days) {
        /* The stored case must outlive the wait, or the patient's answer finds nothing. */
        CF_LOG(CF_LOG_ERROR, "start_failed",
               CF_LOG_ERR("reason", "CASEFLOW_VALIDATION_STATE_TTL_DAYS must exceed "
                                    "CASEFLOW_VALIDATION_INFO_WAIT_DAYS"));
        rc = 2;
        goto out;
    }
    struct validation validation = {
        svc.serde, svc.redis, VALIDATION_PRODUCER, (int)wait_days, ttl_days * 24 * 60 * 60, NULL};
    st = cf_kafka_loop_new(svc.config, VALIDATION_SERVICE, VALIDATION_GROUP, topics,
                           sizeof(topics) / sizeof(topics[0]), validation_handle, &validation,
                           &loop, err, sizeof(err));
    if (st != CF_OK) {
        CF_LOG(CF_LOG_ERROR, "start_failed", CF_LOG_ERR("reason", err));
        goto out;
    }
    CF_LOG(CF_LOG_INFO, "started", CF_LOG_ID("group", VALIDATION_GROUP),
           CF_LOG_INT("info_wait_days", wait_days));
    rc = cf_service_run(loop, stop);
out:
    cf_kafka_loop_free(loop);
    cf_service_stop(&svc);
    return rc;
}
