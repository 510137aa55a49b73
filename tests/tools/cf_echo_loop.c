/* cf_echo_loop — a caseflow Kafka loop (cf_kafka_loop) whose handler copies every input
 * record's key and value to an output topic. Integration tests start it as a child process,
 * kill it, restart it and check what reached the output topic.
 *
 *   cf_echo_loop SERVICE GROUP INPUT_TOPIC OUTPUT_TOPIC [SLEEP_US]
 *
 * Values with a special prefix test the loop's error paths:
 *   POISON  the handler fails with CF_EDECODE: the record goes to caseflow.dlq.SERVICE;
 *   FLAKY   the handler fails with CF_EIO the first two times (the batch is aborted, rewound
 *           and retried), then outputs "v" + the key's digits like an ordinary record would;
 *   BIG     the output is 2 MiB, more than Kafka takes: the record is dead-lettered;
 *   ENDFAIL output like an ordinary record, but the loop's batch-end hook fails with CF_EIO the
 *           first two times it ends a batch holding it (the whole batch is aborted and retried).
 * SLEEP_US is a pause per record that widens the window in which a kill lands inside a
 * transaction. Configuration comes from the environment (CASEFLOW_*, KAFKA_*).
 * Exit status: 0 after SIGTERM or SIGINT, 1 if the loop failed, 2 on bad usage or config. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "kafka.h"
#include "log.h"

extern char **environ;

/* The only mutable global: set by the signal handler, read by the loop. */
static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

struct echo {
    const char *output_topic;
    long sleep_us;
    int flaky_failures;
    bool batch_has_endfail; /* reset by the batch-begin hook */
    int endfail_failures;
};

static void echo_batch_begin(void *ctx)
{
    struct echo *echo = ctx;
    echo->batch_has_endfail = false;
}

static cf_status echo_batch_end(void *ctx, struct cf_kafka_out *out, char *errbuf, size_t errlen)
{
    struct echo *echo = ctx;
    (void)out;
    if (echo->batch_has_endfail && echo->endfail_failures < 2) {
        echo->endfail_failures++;
        return cf_fail(errbuf, errlen, CF_EIO, "test batch end unavailable");
    }
    return CF_OK;
}

static bool has_prefix(const struct cf_kafka_record *in, const char *prefix)
{
    size_t len = strlen(prefix);
    return in->value != NULL && in->value_len >= len && memcmp(in->value, prefix, len) == 0;
}

static cf_status echo_handler(void *ctx, const struct cf_kafka_record *in, struct cf_kafka_out *out,
                              char *errbuf, size_t errlen)
{
    struct echo *echo = ctx;
    const void *value = in->value;
    size_t value_len = in->value_len;
    char flaky_value[32];
    char *big = NULL;

    if (echo->sleep_us > 0) {
        struct timespec ts = {echo->sleep_us / 1000000, (echo->sleep_us % 1000000) * 1000};
        (void)nanosleep(&ts, NULL);
    }
    if (has_prefix(in, "POISON"))
        return cf_fail(errbuf, errlen, CF_EDECODE, "value: unknown format (test poison)");
    if (has_prefix(in, "FLAKY") && echo->flaky_failures < 2) {
        echo->flaky_failures++;
        return cf_fail(errbuf, errlen, CF_EIO, "test dependency unavailable");
    }
    if (has_prefix(in, "FLAKY") || has_prefix(in, "ENDFAIL")) {
        /* Output like an ordinary record's. */
        int n = snprintf(flaky_value, sizeof(flaky_value), "v%.*s",
                         in->key_len > 1 ? (int)in->key_len - 1 : 0,
                         in->key_len > 1 ? (const char *)in->key + 1 : "");
        value = flaky_value;
        value_len = n > 0 ? (size_t)n : 0;
    }
    if (has_prefix(in, "ENDFAIL"))
        echo->batch_has_endfail = true;
    if (has_prefix(in, "BIG")) {
        value_len = 2u * 1024u * 1024u;
        if ((big = malloc(value_len)) == NULL)
            return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
        memset(big, 'x', value_len);
        value = big;
    }
    cf_status st =
        cf_kafka_out_add(out, echo->output_topic, in->key, in->key_len, value, value_len, NULL, 0);
    free(big);
    if (st != CF_OK)
        return cf_fail(errbuf, errlen, st, "output: %s", cf_strerror(st));
    return CF_OK;
}

int main(int argc, char **argv)
{
    static const struct cf_config_entry table[] = {
        CF_CONFIG_COMMON_ENTRIES,
        CF_CONFIG_KAFKA_ENTRIES,
    };
    struct cf_config *config = NULL;
    struct cf_kafka_loop *loop = NULL;
    char err[512] = "";
    cf_log_level level = CF_LOG_INFO;
    int rc = 2;

    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: %s SERVICE GROUP INPUT_TOPIC OUTPUT_TOPIC [SLEEP_US]\n", argv[0]);
        return 2;
    }
    struct echo echo = {argv[4], argc == 6 ? strtol(argv[5], NULL, 10) : 0, 0, false, 0};
    const char *topics[] = {argv[3]};

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    (void)sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGTERM, &sa, NULL);
    (void)sigaction(SIGINT, &sa, NULL);
    /* A write to a closed connection must come back as an error, not kill the process. */
    sa.sa_handler = SIG_IGN;
    (void)sigaction(SIGPIPE, &sa, NULL);

    if (cf_config_load(table, sizeof(table) / sizeof(table[0]), environ, &config, err,
                       sizeof(err)) != CF_OK) {
        fprintf(stderr, "cf_echo_loop: %s\n", err);
        goto out;
    }
    (void)cf_log_level_parse(cf_config_string(config, "CASEFLOW_LOG_LEVEL"), &level);
    cf_log_init(argv[1], level);
    if (cf_kafka_loop_new(config, argv[1], argv[2], topics, 1, echo_handler, &echo, &loop, err,
                          sizeof(err)) != CF_OK ||
        cf_kafka_loop_set_batch_hooks(loop, echo_batch_begin, echo_batch_end, &echo) != CF_OK) {
        CF_LOG(CF_LOG_ERROR, "start_failed", CF_LOG_ERR("reason", err));
        goto out;
    }
    rc = cf_kafka_loop_run(loop, &stop_flag, err, sizeof(err)) == CF_OK ? 0 : 1;
out:
    cf_kafka_loop_free(loop);
    cf_config_free(config);
    return rc;
}
