/* caseflow-intake — opens cases: consumes caseflow.inquiry.submitted with the transactional
 * loop and produces caseflow.case.opened (intake.c holds the logic, README.md the rules).
 * Wiring only: configuration, logging, signals, the registry, Redis, the loop and the HTTP
 * endpoint (http.c, its own thread).
 * Exit status: 0 after SIGTERM or SIGINT, 1 if the loop or a client failed, 2 on bad config. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "avro_serde.h"
#include "config.h"
#include "http.h"
#include "intake.h"
#include "kafka.h"
#include "log.h"
#include "redis.h"
#include "registry.h"

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
    INTAKE_CONFIG_ENTRIES,
    INTAKE_HTTP_CONFIG_ENTRIES,
};

int main(int argc, char **argv)
{
    struct cf_config *config = NULL;
    struct cf_registry *registry = NULL;
    struct cf_serde *serde = NULL;
    struct cf_redis *redis = NULL;
    struct cf_kafka_loop *loop = NULL;
    struct intake_http *http = NULL;
    const char *topics[] = {INTAKE_INPUT_TOPIC};
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
        (void)fprintf(stderr, "caseflow-intake: %s\n", err);
        goto out;
    }
    (void)cf_log_level_parse(cf_config_string(config, "CASEFLOW_LOG_LEVEL"), &level);
    cf_log_init(INTAKE_SERVICE, level);
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

    const char *secret = cf_config_string(config, "CASEFLOW_INTAKE_IDENTITY_SECRET");
    struct intake intake = {serde, redis, (const unsigned char *)secret, strlen(secret),
                            INTAKE_PRODUCER};
    st = cf_kafka_loop_new(config, INTAKE_SERVICE, INTAKE_GROUP, topics, 1, intake_handle,
                           &intake, &loop, err, sizeof(err));
    if (st != CF_OK) {
        CF_LOG(CF_LOG_ERROR, "start_failed", CF_LOG_ERR("reason", err));
        goto out;
    }
    /* The HTTP endpoint runs on its own thread with its own clients (http.h). */
    st = intake_http_start(config, &http, err, sizeof(err));
    if (st != CF_OK) {
        CF_LOG(CF_LOG_ERROR, "start_failed", CF_LOG_ERR("reason", err));
        goto out;
    }
    CF_LOG(CF_LOG_INFO, "started", CF_LOG_ID("topic", INTAKE_INPUT_TOPIC),
           CF_LOG_ID("group", INTAKE_GROUP));
    st = cf_kafka_loop_run(loop, &stop_flag, err, sizeof(err));
    if (st != CF_OK) {
        CF_LOG(CF_LOG_ERROR, "loop_failed", CF_LOG_ERR("reason", err));
        goto out;
    }
    CF_LOG0(CF_LOG_INFO, "stopped");
    rc = 0;
out:
    intake_http_stop(http);
    cf_kafka_loop_free(loop);
    cf_redis_free(redis);
    cf_serde_free(serde);
    cf_registry_free(registry);
    cf_config_free(config);
    return rc;
}
