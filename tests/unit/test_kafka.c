/* test_kafka.c — what kafka.c decides without a broker: error classification, handler outputs,
 * configuration checks (clients are created but pointed at a closed port, never used), and a
 * loop run against that closed port counting the errors it met. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct cf_config_entry table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
};

/* Nothing listens on port 1, so no client here ever reaches a broker. */
#define NO_BROKER "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1"

static struct cf_config *load(char **envp)
{
    struct cf_config *c = NULL;
    char err[256] = "";
    cf_status st = cf_config_load(table, N(table), envp, &c, err, sizeof(err));
    if (st != CF_OK)
        fail_msg("config: %s", err);
    return c;
}

static void test_status_action(void **state)
{
    (void)state;
    assert_int_equal(cf_kafka_status_action(CF_OK), CF_KAFKA_PROCEED);
    assert_int_equal(cf_kafka_status_action(CF_EDECODE), CF_KAFKA_DEAD_LETTER);
    assert_int_equal(cf_kafka_status_action(CF_EINVAL), CF_KAFKA_DEAD_LETTER);
    assert_int_equal(cf_kafka_status_action(CF_ESCHEMA), CF_KAFKA_DEAD_LETTER);
    assert_int_equal(cf_kafka_status_action(CF_ENOTFOUND), CF_KAFKA_DEAD_LETTER);
    assert_int_equal(cf_kafka_status_action(CF_ETOOBIG), CF_KAFKA_DEAD_LETTER);
    assert_int_equal(cf_kafka_status_action(CF_EIO), CF_KAFKA_ABORT);
    assert_int_equal(cf_kafka_status_action(CF_ETIMEOUT), CF_KAFKA_ABORT);
    assert_int_equal(cf_kafka_status_action(CF_EKAFKA), CF_KAFKA_ABORT);
    assert_int_equal(cf_kafka_status_action(CF_ENOMEM), CF_KAFKA_ABORT);
    assert_int_equal(cf_kafka_status_action(CF_ECONFIG), CF_KAFKA_FATAL);
    assert_int_equal(cf_kafka_status_action(CF_EFATAL), CF_KAFKA_FATAL);
    assert_int_equal(cf_kafka_status_action((cf_status)12345), CF_KAFKA_FATAL);
}

static void test_error_action(void **state)
{
    (void)state;
    /* The fatal flag and fencing codes win over everything. */
    assert_int_equal(cf_kafka_error_action(RD_KAFKA_RESP_ERR__TIMED_OUT, true, true, true),
                     CF_KAFKA_FATAL);
    assert_int_equal(cf_kafka_error_action(RD_KAFKA_RESP_ERR__FENCED, false, false, true),
                     CF_KAFKA_FATAL);
    assert_int_equal(cf_kafka_error_action(RD_KAFKA_RESP_ERR_PRODUCER_FENCED, false, true, false),
                     CF_KAFKA_FATAL);
    assert_int_equal(
        cf_kafka_error_action(RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH, false, false, false),
        CF_KAFKA_FATAL);
    assert_int_equal(cf_kafka_error_action(RD_KAFKA_RESP_ERR__FATAL, false, false, false),
                     CF_KAFKA_FATAL);
    assert_int_equal(cf_kafka_error_action(RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                                           false, false, false),
                     CF_KAFKA_FATAL);
    /* Abortable before retriable: the transaction is already lost. */
    assert_int_equal(cf_kafka_error_action(RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION, false, true, true),
                     CF_KAFKA_ABORT);
    assert_int_equal(cf_kafka_error_action(RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID, false, false, true),
                     CF_KAFKA_ABORT);
    assert_int_equal(cf_kafka_error_action(RD_KAFKA_RESP_ERR__TIMED_OUT, false, true, false),
                     CF_KAFKA_RETRY);
    assert_int_equal(
        cf_kafka_error_action(RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, false, true, false),
        CF_KAFKA_RETRY);
    assert_int_equal(cf_kafka_error_action(RD_KAFKA_RESP_ERR_NO_ERROR, false, false, false),
                     CF_KAFKA_PROCEED);
    /* Neither retriable nor abortable: treated as fatal, as librdkafka advises. */
    assert_int_equal(cf_kafka_error_action(RD_KAFKA_RESP_ERR__STATE, false, false, false),
                     CF_KAFKA_FATAL);
}

static void test_produce_error_action(void **state)
{
    (void)state;
    assert_int_equal(cf_kafka_produce_error_action(RD_KAFKA_RESP_ERR_NO_ERROR), CF_KAFKA_PROCEED);
    assert_int_equal(cf_kafka_produce_error_action(RD_KAFKA_RESP_ERR__QUEUE_FULL), CF_KAFKA_RETRY);
    assert_int_equal(cf_kafka_produce_error_action(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE),
                     CF_KAFKA_DEAD_LETTER);
    assert_int_equal(cf_kafka_produce_error_action(RD_KAFKA_RESP_ERR__INVALID_ARG),
                     CF_KAFKA_DEAD_LETTER);
    assert_int_equal(cf_kafka_produce_error_action(RD_KAFKA_RESP_ERR__FENCED), CF_KAFKA_FATAL);
    assert_int_equal(cf_kafka_produce_error_action(RD_KAFKA_RESP_ERR__FATAL), CF_KAFKA_FATAL);
    assert_int_equal(cf_kafka_produce_error_action(RD_KAFKA_RESP_ERR__STATE), CF_KAFKA_ABORT);
    assert_int_equal(cf_kafka_produce_error_action(RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC),
                     CF_KAFKA_ABORT);
    assert_string_equal(cf_kafka_action_name(CF_KAFKA_DEAD_LETTER), "dead_letter");
    assert_string_equal(cf_kafka_action_name(CF_KAFKA_FATAL), "fatal");
    assert_string_equal(cf_kafka_action_name((enum cf_kafka_action)77), "unknown");
}

static void test_out_copies(void **state)
{
    (void)state;
    struct cf_kafka_out *out = NULL;
    char key[] = "case-1";
    char value[] = "payload";
    char hname[] = "ce_type";
    char hvalue[] = "CaseOpened";
    struct cf_header headers[] = {{hname, hvalue, 10}, {"nullvalue", NULL, 0}};

    assert_int_equal(cf_kafka_out_new(&out), CF_OK);
    assert_int_equal(cf_kafka_out_count(out), 0);
    assert_null(cf_kafka_out_get(out, 0));
    assert_int_equal(cf_kafka_out_add(out, "caseflow.case.opened", key, 6, value, 7, headers, 2),
                     CF_OK);
    assert_int_equal(cf_kafka_out_add(out, "t2", NULL, 0, NULL, 0, NULL, 0), CF_OK);
    /* The caller's buffers may change afterwards. */
    memset(key, 'X', 6);
    memset(value, 'X', 7);
    memset(hname, 'X', 7);
    memset(hvalue, 'X', 10);

    assert_int_equal(cf_kafka_out_count(out), 2);
    const struct cf_kafka_out_record *r = cf_kafka_out_get(out, 0);
    assert_string_equal(r->topic, "caseflow.case.opened");
    assert_memory_equal(r->key, "case-1", 6);
    assert_int_equal(r->key_len, 6);
    assert_memory_equal(r->value, "payload", 7);
    assert_int_equal(r->value_len, 7);
    assert_int_equal(r->header_count, 2);
    assert_string_equal(r->headers[0].name, "ce_type");
    assert_memory_equal(r->headers[0].value, "CaseOpened", 10);
    assert_int_equal(r->headers[0].len, 10);
    assert_string_equal(r->headers[1].name, "nullvalue");
    assert_null(r->headers[1].value);
    r = cf_kafka_out_get(out, 1);
    assert_string_equal(r->topic, "t2");
    assert_null(r->key); /* a null key stays null, not empty */
    assert_null(r->value);
    assert_null(r->headers);
    cf_kafka_out_reset(out);
    assert_int_equal(cf_kafka_out_count(out), 0);
    assert_int_equal(cf_kafka_out_add(out, "t3", "", 0, "", 0, NULL, 0), CF_OK);
    assert_non_null(cf_kafka_out_get(out, 0)->key); /* an empty key stays empty, not null */
    cf_kafka_out_free(out);
    cf_kafka_out_free(NULL);
}

static void test_out_limits(void **state)
{
    (void)state;
    struct cf_kafka_out *out = NULL;
    const char one = 'x';
    struct cf_header bad = {NULL, "v", 1};

    assert_int_equal(cf_kafka_out_new(&out), CF_OK);
    assert_int_equal(cf_kafka_out_add(out, NULL, NULL, 0, NULL, 0, NULL, 0), CF_EINVAL);
    assert_int_equal(cf_kafka_out_add(out, "", NULL, 0, NULL, 0, NULL, 0), CF_EINVAL);
    assert_int_equal(cf_kafka_out_add(out, "t", NULL, 3, NULL, 0, NULL, 0), CF_EINVAL);
    assert_int_equal(cf_kafka_out_add(out, "t", NULL, 0, NULL, 0, NULL, 2), CF_EINVAL);
    assert_int_equal(cf_kafka_out_add(out, "t", NULL, 0, NULL, 0, &bad, 1), CF_EINVAL);
    /* Sizes are checked before anything is read. */
    assert_int_equal(
        cf_kafka_out_add(out, "t", NULL, 0, &one, CF_KAFKA_OUT_MAX_BYTES + 1u, NULL, 0),
        CF_ETOOBIG);
    assert_int_equal(cf_kafka_out_add(out, "t", &one, SIZE_MAX, &one, SIZE_MAX, NULL, 0),
                     CF_ETOOBIG);
    assert_int_equal(cf_kafka_out_count(out), 0);
    for (int i = 0; i < CF_KAFKA_OUT_MAX_RECORDS; i++)
        assert_int_equal(cf_kafka_out_add(out, "t", &one, 1, &one, 1, NULL, 0), CF_OK);
    assert_int_equal(cf_kafka_out_add(out, "t", &one, 1, &one, 1, NULL, 0), CF_ETOOBIG);
    assert_int_equal(cf_kafka_out_count(out), CF_KAFKA_OUT_MAX_RECORDS);
    cf_kafka_out_free(out);
}

static void test_bad_property_names_key(void **state)
{
    (void)state;
    char *envp[] = {NO_BROKER, "KAFKA_NO_SUCH_PROPERTY=1", NULL};
    struct cf_config *c = load(envp);
    struct cf_kafka_producer *p = NULL;
    char err[256] = "";

    assert_int_equal(cf_kafka_producer_new(c, NULL, 1000, &p, err, sizeof(err)), CF_ECONFIG);
    assert_null(p);
    assert_non_null(strstr(err, "no.such.property"));
    cf_config_free(c);

    char *envp2[] = {NO_BROKER, "KAFKA_ACKS=banana", NULL};
    c = load(envp2);
    /* acks is fixed (acks=all), so a bad value for it is ignored with a warning. */
    assert_int_equal(cf_kafka_producer_new(c, NULL, 1000, &p, err, sizeof(err)), CF_OK);
    cf_kafka_producer_free(p);
    cf_config_free(c);

    char *envp3[] = {NO_BROKER, "KAFKA_LINGER_MS=-5", NULL};
    c = load(envp3);
    assert_int_equal(cf_kafka_producer_new(c, NULL, 1000, &p, err, sizeof(err)), CF_ECONFIG);
    assert_non_null(strstr(err, "linger.ms"));
    cf_config_free(c);

    char *envp4[] = {NO_BROKER, "KAFKA_SECURITY_PROTOCOL=nonsense", NULL};
    c = load(envp4);
    struct cf_kafka_consumer *consumer = NULL;
    const char *topics[] = {"caseflow.case.opened"};
    assert_int_equal(cf_kafka_consumer_new(c, "g", topics, 1, NULL, &consumer, err, sizeof(err)),
                     CF_ECONFIG);
    assert_null(consumer);
    assert_non_null(strstr(err, "security.protocol"));
    cf_config_free(c);
}

static void test_argument_checks(void **state)
{
    (void)state;
    char *envp[] = {NO_BROKER, NULL};
    struct cf_config *c = load(envp);
    struct cf_kafka_consumer *consumer = NULL;
    struct cf_kafka_producer *p = NULL;
    char err[256] = "";
    const char *topics[] = {"caseflow.case.opened"};
    const char *bad_topics[] = {"has space"};
    struct cf_kafka_consumer_options opts = {false, false, "middle"};

    assert_int_equal(cf_kafka_consumer_new(c, "g", topics, 1, &opts, &consumer, err, sizeof(err)),
                     CF_EINVAL);
    assert_int_equal(cf_kafka_consumer_new(c, "g", topics, 0, NULL, &consumer, err, sizeof(err)),
                     CF_EINVAL);
    assert_int_equal(
        cf_kafka_consumer_new(c, "g", bad_topics, 1, NULL, &consumer, err, sizeof(err)), CF_EINVAL);
    assert_int_equal(cf_kafka_consumer_new(c, "", topics, 1, NULL, &consumer, err, sizeof(err)),
                     CF_EINVAL);
    assert_int_equal(cf_kafka_producer_new(c, "bad id", 1000, &p, err, sizeof(err)), CF_EINVAL);

    const struct cf_topic_spec bad_specs[][1] = {
        {{"ok.name", 0, 1, NULL, 0}},      {{"ok.name", 3, 0, NULL, 0}},
        {{"bad name", 3, 1, NULL, 0}},     {{"ok.name", 3, 1, "compress", 0}},
        {{"ok.name", 3, 1, "delete", -2}},
    };
    for (size_t i = 0; i < N(bad_specs); i++)
        assert_int_equal(cf_kafka_create_topics(c, bad_specs[i], 1, 1000, err, sizeof(err)),
                         CF_EINVAL);
    assert_int_equal(cf_kafka_create_topics(c, NULL, 0, 1000, err, sizeof(err)), CF_EINVAL);

    /* A group consumer is created without contacting anyone. */
    assert_int_equal(cf_kafka_consumer_new(c, "g", topics, 1, NULL, &consumer, err, sizeof(err)),
                     CF_OK);
    assert_int_equal(cf_kafka_consumer_poll(consumer, 10, NULL, err, sizeof(err)), CF_EINVAL);
    cf_kafka_consumer_free(consumer);
    cf_kafka_consumer_free(NULL);
    cf_kafka_producer_free(NULL);
    cf_kafka_record_release(NULL);
    cf_config_free(c);
}

static cf_status echo(void *ctx, const struct cf_kafka_record *in, struct cf_kafka_out *out,
                      char *errbuf, size_t errlen)
{
    (void)ctx;
    (void)errbuf;
    (void)errlen;
    return cf_kafka_out_add(out, "t", in->key, in->key_len, in->value, in->value_len, NULL, 0);
}

static void test_loop_new_checks(void **state)
{
    (void)state;
    char *envp[] = {NO_BROKER, "CASEFLOW_INSTANCE_ID=replica-0", NULL};
    struct cf_config *c = load(envp);
    struct cf_kafka_loop *loop = NULL;
    struct cf_kafka_loop_stats stats;
    char err[256] = "";
    const char *topics[] = {"caseflow.case.opened", "caseflow.case.closed"};

    assert_int_equal(
        cf_kafka_loop_new(c, "bad service", NULL, topics, 2, echo, NULL, &loop, err, sizeof(err)),
        CF_EINVAL);
    assert_null(loop);
    assert_int_equal(
        cf_kafka_loop_new(c, "intake", NULL, topics, 0, echo, NULL, &loop, err, sizeof(err)),
        CF_EINVAL);
    assert_int_equal(
        cf_kafka_loop_new(c, "intake", NULL, topics, 2, NULL, NULL, &loop, err, sizeof(err)),
        CF_EINVAL);
    assert_int_equal(
        cf_kafka_loop_new(NULL, "intake", NULL, topics, 2, echo, NULL, &loop, err, sizeof(err)),
        CF_EINVAL);
    /* Valid: nothing is contacted before cf_kafka_loop_run. */
    assert_int_equal(
        cf_kafka_loop_new(c, "intake", NULL, topics, 2, echo, NULL, &loop, err, sizeof(err)),
        CF_OK);
    cf_kafka_loop_stats(loop, &stats);
    assert_false(stats.ready);
    assert_int_equal(stats.transactions, 0);
    assert_int_equal(cf_kafka_loop_run(loop, NULL, err, sizeof(err)), CF_EINVAL);
    cf_kafka_loop_free(loop);
    cf_kafka_loop_free(NULL);
    cf_config_free(c);

    char *envp2[] = {NO_BROKER, "CASEFLOW_INSTANCE_ID=has space", NULL};
    c = load(envp2);
    assert_int_equal(
        cf_kafka_loop_new(c, "intake", NULL, topics, 2, echo, NULL, &loop, err, sizeof(err)),
        CF_ECONFIG);
    assert_non_null(strstr(err, "CASEFLOW_INSTANCE_ID"));
    cf_config_free(c);
}

/* A loop run with no broker: init_transactions times out (a retriable error, counted), the stop
 * flag, already set, ends the run. The latency histogram is set before the run, refused
 * after it. */
static void test_loop_counts_errors(void **state)
{
    (void)state;
    char *envp[] = {NO_BROKER, "CASEFLOW_INSTANCE_ID=replica-0", "CASEFLOW_KAFKA_TIMEOUT_MS=1000",
                    NULL};
    struct cf_config *c = load(envp);
    struct cf_kafka_loop *loop = NULL;
    struct cf_metrics *m = NULL, *late = NULL;
    struct cf_kafka_loop_stats stats;
    volatile sig_atomic_t stop = 1;
    char err[256] = "";
    const char *topics[] = {"caseflow.case.opened"};

    assert_int_equal(
        cf_kafka_loop_new(c, "intake", NULL, topics, 1, echo, NULL, &loop, err, sizeof(err)),
        CF_OK);
    assert_int_equal(cf_kafka_loop_set_latency(NULL, NULL), CF_EINVAL);
    assert_int_equal(cf_metrics_new("intake", &m), CF_OK);
    assert_int_equal(cf_metrics_watch_loop(m, loop, err, sizeof(err)), CF_OK); /* sets it */
    assert_int_equal(cf_kafka_loop_run(loop, &stop, err, sizeof(err)), CF_OK);
    cf_kafka_loop_stats(loop, &stats);
    assert_true(stats.errors >= 1);
    assert_int_equal(stats.aborts, 0);
    assert_int_equal(stats.records, 0);
    assert_int_equal(cf_kafka_loop_set_latency(loop, NULL), CF_EINVAL);
    assert_int_equal(cf_metrics_new("intake", &late), CF_OK);
    assert_int_equal(cf_metrics_watch_loop(late, loop, err, sizeof(err)), CF_EINVAL);
    cf_metrics_free(late);
    cf_metrics_free(m);
    cf_kafka_loop_free(loop);
    cf_config_free(c);
}

int main(void)
{
    cf_log_init("test_kafka", CF_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_action),        cmocka_unit_test(test_error_action),
        cmocka_unit_test(test_produce_error_action), cmocka_unit_test(test_out_copies),
        cmocka_unit_test(test_out_limits),           cmocka_unit_test(test_bad_property_names_key),
        cmocka_unit_test(test_argument_checks),      cmocka_unit_test(test_loop_new_checks),
        cmocka_unit_test(test_loop_counts_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
