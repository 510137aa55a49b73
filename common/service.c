/* service.c — the start and stop every service shares (see service.h). */
#include "service.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

extern char **environ;

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

int cf_service_args(int argc, char **argv, const struct cf_config_entry *table, size_t n)
{
    if (argc <= 1)
        return -1;
    if (strcmp(argv[1], "--help") == 0) {
        (void)printf("usage: %s\nConfiguration from the environment:\n", argv[0]);
        cf_config_write_example(table, n, stdout);
        return 0;
    }
    (void)fprintf(stderr, "usage: %s (configured by the environment; --help)\n", argv[0]);
    return 2;
}

const volatile sig_atomic_t *cf_service_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    (void)sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGTERM, &sa, NULL);
    (void)sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    (void)sigaction(SIGPIPE, &sa, NULL);
    return &stop_flag;
}

cf_status cf_service_start(const char *service, const struct cf_config_entry *table, size_t n,
                           bool with_redis, struct cf_service *out)
{
    char err[512] = "";
    cf_log_level level = CF_LOG_INFO;
    cf_status st;

    memset(out, 0, sizeof(*out));
    st = cf_config_load(table, n, environ, &out->config, err, sizeof(err));
    if (st != CF_OK) {
        (void)fprintf(stderr, "caseflow-%s: %s\n", service, err);
        return CF_ECONFIG;
    }
    (void)cf_log_level_parse(cf_config_string(out->config, "CASEFLOW_LOG_LEVEL"), &level);
    cf_log_init(service, level);

    st = cf_registry_new(cf_config_string(out->config, "CASEFLOW_REGISTRY_URL"),
                         cf_config_int(out->config, "CASEFLOW_REGISTRY_TIMEOUT_MS"),
                         &out->registry, err, sizeof(err));
    if (st == CF_OK)
        st = cf_serde_new(out->registry, cf_config_string(out->config, "CASEFLOW_SCHEMA_DIR"),
                          &out->serde, err, sizeof(err));
    if (st == CF_OK && with_redis)
        st = cf_redis_new_from_config(out->config, &out->redis, err, sizeof(err));
    if (st != CF_OK) {
        CF_LOG(CF_LOG_ERROR, "start_failed", CF_LOG_ERR("reason", err));
        cf_service_stop(out);
    }
    return st;
}

int cf_service_run(struct cf_kafka_loop *loop, const volatile sig_atomic_t *stop)
{
    char err[512] = "";
    if (cf_kafka_loop_run(loop, stop, err, sizeof(err)) != CF_OK) {
        CF_LOG(CF_LOG_ERROR, "loop_failed", CF_LOG_ERR("reason", err));
        return 1;
    }
    CF_LOG0(CF_LOG_INFO, "stopped");
    return 0;
}

cf_status cf_service_metrics(const char *service, struct cf_kafka_loop *loop,
                             cf_service_register_metrics register_metrics, void *ctx,
                             struct cf_metrics **out, char *errbuf, size_t errlen)
{
    struct cf_metrics *metrics = NULL;
    cf_status st = cf_metrics_new(service, &metrics);
    *out = NULL;
    if (st != CF_OK)
        return cf_fail(errbuf, errlen, st, "metrics: %s", cf_strerror(st));
    st = cf_metrics_watch_loop(metrics, loop, errbuf, errlen);
    if (st == CF_OK && register_metrics != NULL)
        st = register_metrics(metrics, ctx, errbuf, errlen);
    if (st != CF_OK) {
        cf_metrics_free(metrics);
        return st;
    }
    *out = metrics;
    return CF_OK;
}

int cf_service_serve(const struct cf_service *svc, const struct cf_service_loop_spec *spec,
                     const struct cf_log_field *started, const volatile sig_atomic_t *stop)
{
    struct cf_kafka_loop *loop = NULL;
    struct cf_metrics *metrics = NULL;
    struct cf_http_ops *ops = NULL;
    char err[512] = "", port_key[96], bind_key[96];
    int rc = 1;

    (void)snprintf(port_key, sizeof(port_key), "%s_HTTP_PORT", spec->ops_prefix);
    (void)snprintf(bind_key, sizeof(bind_key), "%s_HTTP_BIND", spec->ops_prefix);
    cf_status st = cf_kafka_loop_new(svc->config, spec->service, spec->group, spec->topics,
                                     spec->ntopics, spec->handler, spec->ctx, &loop, err,
                                     sizeof(err));
    if (st == CF_OK && spec->timer != NULL)
        st = cf_kafka_loop_set_timer(loop, (int)cf_config_int(svc->config, spec->timer_ms_key),
                                     spec->timer, spec->ctx);
    if (st == CF_OK && spec->timer_done != NULL)
        st = cf_kafka_loop_set_timer_done(loop, spec->timer_done);
    if (st == CF_OK && spec->batch_end != NULL)
        st = cf_kafka_loop_set_batch_hooks(loop, spec->batch_begin, spec->batch_end, spec->ctx);
    if (st == CF_OK)
        st = cf_service_metrics(spec->service, loop, spec->register_metrics, spec->ctx, &metrics,
                                err, sizeof(err));
    if (st == CF_OK) {
        const struct cf_http_readiness readiness = {loop, svc->redis != NULL, spec->ready_topic};
        st = cf_http_ops_start(svc->config, port_key, bind_key, metrics, &readiness, &ops, err,
                               sizeof(err));
    }
    if (st != CF_OK) {
        CF_LOG(CF_LOG_ERROR, "start_failed", CF_LOG_ERR("reason", err));
        rc = st == CF_ECONFIG ? 2 : 1;
        goto out;
    }
    if (started != NULL)
        CF_LOG(CF_LOG_INFO, "started", CF_LOG_ID("group", spec->group), *started);
    else
        CF_LOG(CF_LOG_INFO, "started", CF_LOG_ID("group", spec->group));
    rc = cf_service_run(loop, stop);
out:
    cf_http_ops_stop(ops); /* first: it reads the metrics and the loop */
    cf_metrics_free(metrics);
    cf_kafka_loop_free(loop);
    return rc;
}

void cf_service_stop(struct cf_service *s)
{
    if (s == NULL)
        return;
    cf_redis_free(s->redis);
    cf_serde_free(s->serde);
    cf_registry_free(s->registry);
    cf_config_free(s->config);
    memset(s, 0, sizeof(*s));
}
