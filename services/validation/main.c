/* caseflow-validation — triages cases: consumes caseflow.case.opened, .info-provided and
 * .reviewed with the transactional loop and produces exactly one outcome per input
 * (validation.c holds the Kafka path, rules.c the rules, README.md both).
 * Wiring only: configuration, logging, signals, the registry, Redis and the loop.
 * Exit status: 0 after SIGTERM or SIGINT, 1 if the loop or a client failed, 2 on bad config. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "avro_serde.h"
#include "config.h"
#include "kafka.h"
#include "log.h"
#include "redis.h"
#include "registry.h"
#include "validation.h"

extern char **environ;

/* The only mutable global: set by the signal handler, read by the loop. */
static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static const struct cf_config_entry config_table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
    CF_CONFIG_REDIS_ENTRIES,
    VALIDATION_CONFIG_ENTRIES,
};

int main(int argc, char **argv)
{
    struct cf_config *config = NULL;
    struct cf_registry *registry = NULL;
    struct cf_serde *serde = NULL;
    struct cf_redis *redis = NULL;
    struct cf_kafka_loop *loop = NULL;
    const char *topics[] = {VALIDATION_TOPIC_OPENED, VALIDATION_TOPIC_INFO_PROVIDED,
                            VALIDATION_TOPIC_REVIEWED};
    cf_log_level level = CF_LOG_INFO;
    char err[512] = "";
    int rc = 2;
    cf_status st;

    if (argc > 1) {
        if (strcmp(argv[1], "--help") == 0) {
            (void)printf("usage: %s\nConfiguration from the environment:\n", argv[0]);
            cf_config_write_example(config_table, sizeof(config_table) / sizeof(config_table[0]),
                                    stdout);
            return 0;
        }
        (void)fprintf(stderr, "usage: %s (configured by the environment; --help)\n", argv[0]);
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    (void)sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGTERM, &sa, NULL);
    (void)sigaction(SIGINT, &sa, NULL);
    /* hiredis and librdkafka write to sockets: a peer that went away must come back as an
     * error on that call, not as a signal that kills the process. */
    sa.sa_handler = SIG_IGN;
    (void)sigaction(SIGPIPE, &sa, NULL);

    if (cf_config_load(config_table, sizeof(config_table) / sizeof(config_table[0]), environ,
                       &config, err, sizeof(err)) != CF_OK) {
        (void)fprintf(stderr, "caseflow-validation: %s\n", err);
        goto out;
    }
    (void)cf_log_level_parse(cf_config_string(config, "CASEFLOW_LOG_LEVEL"), &level);
    cf_log_init(VALIDATION_SERVICE, level);
    rc = 1;

    st = cf_registry_new(cf_config_string(config, "CASEFLOW_REGISTRY_URL"),
                         cf_config_int(config, "CASEFLOW_REGISTRY_TIMEOUT_MS"), &registry, err,
                         sizeof(err));
    if (st == CF_OK)
        st = cf_serde_new(registry, cf_config_string(config, "CASEFLOW_SCHEMA_DIR"), &serde, err,
                          sizeof(err));
    if (st == CF_OK)
        st = cf_redis_new_from_config(config, &redis, err, sizeof(err));
    if (st != CF_OK) {
        CF_LOG(CF_LOG_ERROR, "start_failed", CF_LOG_ERR("reason", err));
        goto out;
    }

    long long wait_days = cf_config_int(config, "CASEFLOW_VALIDATION_INFO_WAIT_DAYS");
    long long ttl_days = cf_config_int(config, "CASEFLOW_VALIDATION_STATE_TTL_DAYS");
    if (ttl_days <= wait_days) {
        /* The stored case must outlive the wait, or the patient's answer finds nothing. */
        CF_LOG(CF_LOG_ERROR, "start_failed",
               CF_LOG_ERR("reason", "CASEFLOW_VALIDATION_STATE_TTL_DAYS must exceed "
                                    "CASEFLOW_VALIDATION_INFO_WAIT_DAYS"));
        rc = 2;
        goto out;
    }
    struct validation validation = {
        serde, redis, VALIDATION_PRODUCER, (int)wait_days, ttl_days * 24 * 60 * 60, NULL};
    st = cf_kafka_loop_new(config, VALIDATION_SERVICE, VALIDATION_GROUP, topics,
                           sizeof(topics) / sizeof(topics[0]), validation_handle, &validation,
                           &loop, err, sizeof(err));
    if (st != CF_OK) {
        CF_LOG(CF_LOG_ERROR, "start_failed", CF_LOG_ERR("reason", err));
        goto out;
    }
    CF_LOG(CF_LOG_INFO, "started", CF_LOG_ID("group", VALIDATION_GROUP),
           CF_LOG_INT("info_wait_days", wait_days));
    st = cf_kafka_loop_run(loop, &stop_flag, err, sizeof(err));
    if (st != CF_OK) {
        CF_LOG(CF_LOG_ERROR, "loop_failed", CF_LOG_ERR("reason", err));
        goto out;
    }
    CF_LOG0(CF_LOG_INFO, "stopped");
    rc = 0;
out:
    cf_kafka_loop_free(loop);
    cf_redis_free(redis);
    cf_serde_free(serde);
    cf_registry_free(registry);
    cf_config_free(config);
    return rc;
}
