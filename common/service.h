/* service.h — what every caseflow service's main() does the same way: its arguments (only
 * --help), signals, configuration, logging, and the clients most services hold (schema
 * registry, topic codec, Redis). A service's main() then builds its own context and runs the
 * transactional loop with cf_service_stop_flag() as the stop flag. */
#ifndef CF_SERVICE_H
#define CF_SERVICE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "avro_serde.h"
#include "config.h"
#include "http.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "registry.h"

struct cf_service {
    struct cf_config *config;
    struct cf_registry *registry;
    struct cf_serde *serde;
    struct cf_redis *redis; /* NULL for a service made without Redis */
};

/* Services take no arguments but --help, which prints table as an example environment.
 * Returns the exit code when main() should return now (0 after --help, 2 for anything
 * else), -1 when it should go on. */
int cf_service_args(int argc, char **argv, const struct cf_config_entry *table, size_t n);

/* SIGINT and SIGTERM set the flag returned (the process's only mutable global); SIGPIPE is
 * ignored, because hiredis and librdkafka write to sockets and a peer that went away must come
 * back as an error on that call, not as a signal that kills the process. */
const volatile sig_atomic_t *cf_service_signals(void);

/* Loads the configuration from the environment (a bad key: message on stderr, CF_ECONFIG),
 * sets the logger up for service, and creates the registry client, the topic codec and, with
 * with_redis, the Redis client. On failure everything made so far is freed and the reason is
 * logged (event "start_failed"). */
cf_status cf_service_start(const char *service, const struct cf_config_entry *table, size_t n,
                           bool with_redis, struct cf_service *out);

/* Runs the loop until stop is set: logs "stopped" and returns exit code 0, or logs
 * "loop_failed" with the reason and returns 1. */
int cf_service_run(struct cf_kafka_loop *loop, const volatile sig_atomic_t *stop);

/* Registers a service's own metrics besides the loop's; ctx is the service's. */
typedef cf_status (*cf_service_register_metrics)(struct cf_metrics *metrics, void *ctx,
                                                 char *errbuf, size_t errlen);

/* Makes the metrics registry of service: the loop's standard metrics (cf_metrics_watch_loop,
 * which must come before cf_kafka_loop_run) and then, if register_metrics is not NULL, the
 * service's own, registered with ctx. On CF_OK *out is the caller's, freed with
 * cf_metrics_free after the ops endpoint that renders it has stopped; on failure *out is NULL
 * and errbuf says why. */
cf_status cf_service_metrics(const char *service, struct cf_kafka_loop *loop,
                             cf_service_register_metrics register_metrics, void *ctx,
                             struct cf_metrics **out, char *errbuf, size_t errlen);

/* What a service's running loop is made of, for cf_service_serve. */
struct cf_service_loop_spec {
    const char *service; /* "assignment": the loop's and the metrics' name */
    const char *group;   /* consumer group */
    const char *const *topics;
    size_t ntopics;
    cf_kafka_handler handler;
    void *ctx; /* handler's, timer's and register_metrics' context; stays the caller's */
    /* The loop's timer, run every cf_config_int(timer_ms_key) ms; NULL: none. */
    cf_kafka_timer timer;
    const char *timer_ms_key;
    cf_kafka_timer_done timer_done; /* told whether each timer turn committed; NULL: none */
    /* The loop's batch hooks (cf_kafka_loop_set_batch_hooks), both or neither; NULL: none. */
    cf_kafka_batch_begin batch_begin;
    cf_kafka_batch_end batch_end;
    /* The ops endpoint (/healthz, /readyz, /metrics): "<prefix>_HTTP_PORT" and
     * "<prefix>_HTTP_BIND" from CF_HTTP_OPS_CONFIG_ENTRIES(prefix, ...), e.g.
     * "CASEFLOW_ASSIGNMENT"; /readyz waits for a partition of ready_topic. */
    const char *ops_prefix;
    const char *ready_topic;
    /* Registers the service's own metrics besides the loop's; NULL: none. */
    cf_service_register_metrics register_metrics;
};

/* Makes the transactional loop of spec with its timer, its metrics and the ops endpoint, logs
 * "started" with the group and, if not NULL, the field started (CF_LOG_INT("managers", n)), runs
 * the loop until *stop is set, then stops the endpoint and frees what it made. Returns the exit
 * code: 0 after a clean stop, 1 if anything failed (logged as "start_failed" or
 * "loop_failed"), 2 for a bad ops setting. */
int cf_service_serve(const struct cf_service *svc, const struct cf_service_loop_spec *spec,
                     const struct cf_log_field *started, const volatile sig_atomic_t *stop);

/* Frees what cf_service_start made. NULL-safe, and safe on a zeroed struct. */
void cf_service_stop(struct cf_service *service);

#endif
