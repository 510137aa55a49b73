/* test_config.c — cf_config_load, the getters, KAFKA_ passthrough and the example writer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

#define N(table) (sizeof(table) / sizeof((table)[0]))

static const struct cf_config_entry table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    {"CASEFLOW_REDIS_PORT", CF_CONFIG_INT, "6379", 1, 65535, "Redis port"},
    {"CASEFLOW_DRY_RUN", CF_CONFIG_BOOL, "false", 0, 0, "log instead of sending"},
    {"CASEFLOW_TOPIC", CF_CONFIG_STRING, "caseflow.case.opened", 1, 249, "input topic"},
};

/* One load; on failure errbuf keeps the message for the assertions. */
static cf_status load(const struct cf_config_entry *t, size_t n, char *const *envp,
                      struct cf_config **out, char *errbuf, size_t errlen)
{
    cf_status st = cf_config_load(t, n, envp, out, errbuf, errlen);
    if (st != CF_OK)
        assert_null(*out);
    return st;
}

/* Loads `table` with a single variable set and expects a configuration error. */
static void expect_error(const char *var, char *errbuf, size_t errlen)
{
    char *envp[] = {(char *)var, NULL};
    struct cf_config *c = (struct cf_config *)(uintptr_t)1; /* must be reset to NULL */
    assert_int_equal(load(table, N(table), envp, &c, errbuf, errlen), CF_ECONFIG);
}

static void test_defaults(void **state)
{
    (void)state;
    char *envp[] = {"PATH=/usr/bin", "HOME=/root", NULL};
    struct cf_config *c = NULL;
    char err[256] = "untouched";

    assert_int_equal(load(table, N(table), envp, &c, err, sizeof(err)), CF_OK);
    assert_non_null(c);
    assert_string_equal(cf_config_string(c, "CASEFLOW_LOG_LEVEL"), "info");
    assert_string_equal(cf_config_string(c, "CASEFLOW_REGISTRY_URL"),
                        "http://127.0.0.1:18081/apis/ccompat/v7");
    assert_int_equal(cf_config_int(c, "CASEFLOW_REGISTRY_TIMEOUT_MS"), 5000);
    assert_string_equal(cf_config_string(c, "CASEFLOW_SCHEMA_DIR"), "");
    assert_int_equal(cf_config_int(c, "CASEFLOW_REDIS_PORT"), 6379);
    assert_false(cf_config_bool(c, "CASEFLOW_DRY_RUN"));
    assert_string_equal(cf_config_string(c, "CASEFLOW_TOPIC"), "caseflow.case.opened");
    assert_false(cf_config_kafka_property(c, 0, NULL, NULL));
    cf_config_free(c);

    /* A NULL environment is an empty one. */
    assert_int_equal(load(table, N(table), NULL, &c, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_config_int(c, "CASEFLOW_REDIS_PORT"), 6379);
    cf_config_free(c);
}

static void test_overrides(void **state)
{
    (void)state;
    char *envp[] = {"CASEFLOW_REDIS_PORT=16379", "CASEFLOW_DRY_RUN=yes",
                    "CASEFLOW_LOG_LEVEL=debug", "CASEFLOW_SCHEMA_DIR=/opt/schemas",
                    "CASEFLOW_TOPIC=a=b", NULL};
    struct cf_config *c = NULL;
    char err[256];

    assert_int_equal(load(table, N(table), envp, &c, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_config_int(c, "CASEFLOW_REDIS_PORT"), 16379);
    assert_true(cf_config_bool(c, "CASEFLOW_DRY_RUN"));
    assert_string_equal(cf_config_string(c, "CASEFLOW_LOG_LEVEL"), "debug");
    assert_string_equal(cf_config_string(c, "CASEFLOW_SCHEMA_DIR"), "/opt/schemas");
    /* Only the first '=' separates name and value. */
    assert_string_equal(cf_config_string(c, "CASEFLOW_TOPIC"), "a=b");
    /* Untouched entries keep their defaults. */
    assert_int_equal(cf_config_int(c, "CASEFLOW_REGISTRY_TIMEOUT_MS"), 5000);
    cf_config_free(c);
}

static void test_int_parse_errors(void **state)
{
    (void)state;
    char err[256];

    expect_error("CASEFLOW_REDIS_PORT=12x", err, sizeof(err));
    assert_string_equal(err, "CASEFLOW_REDIS_PORT: \"12x\" is not a whole number; allowed: a "
                             "whole number from 1 to 65535");

    expect_error("CASEFLOW_REDIS_PORT=", err, sizeof(err));
    assert_string_equal(err, "CASEFLOW_REDIS_PORT: the value is empty; allowed: a whole number "
                             "from 1 to 65535");

    expect_error("CASEFLOW_REDIS_PORT=99999999999999999999", err, sizeof(err));
    assert_non_null(strstr(err, "CASEFLOW_REDIS_PORT: \"99999999999999999999\" does not fit"));

    expect_error("CASEFLOW_REDIS_PORT=-99999999999999999999", err, sizeof(err));
    assert_non_null(strstr(err, "does not fit in 64 bits"));

    /* strtoll would take all of these in part; the whole string must be the number. */
    const char *bad[] = {"CASEFLOW_REDIS_PORT= 12", "CASEFLOW_REDIS_PORT=12 ",
                         "CASEFLOW_REDIS_PORT=0x10", "CASEFLOW_REDIS_PORT=1e3",
                         "CASEFLOW_REDIS_PORT=+", "CASEFLOW_REDIS_PORT=12.0"};
    for (size_t i = 0; i < N(bad); i++) {
        expect_error(bad[i], err, sizeof(err));
        assert_non_null(strstr(err, "CASEFLOW_REDIS_PORT: "));
        assert_non_null(strstr(err, "is not a whole number"));
    }
}

static void test_int_bounds(void **state)
{
    (void)state;
    char err[256];
    struct cf_config *c = NULL;

    expect_error("CASEFLOW_REDIS_PORT=70000", err, sizeof(err));
    assert_string_equal(err, "CASEFLOW_REDIS_PORT: 70000 is above the maximum 65535");
    expect_error("CASEFLOW_REDIS_PORT=0", err, sizeof(err));
    assert_string_equal(err, "CASEFLOW_REDIS_PORT: 0 is below the minimum 1");
    expect_error("CASEFLOW_REDIS_PORT=-5", err, sizeof(err));
    assert_string_equal(err, "CASEFLOW_REDIS_PORT: -5 is below the minimum 1");

    /* Both bounds are inclusive; a sign is fine. */
    char *low[] = {"CASEFLOW_REDIS_PORT=1", NULL};
    assert_int_equal(load(table, N(table), low, &c, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_config_int(c, "CASEFLOW_REDIS_PORT"), 1);
    cf_config_free(c);
    char *high[] = {"CASEFLOW_REDIS_PORT=+65535", NULL};
    assert_int_equal(load(table, N(table), high, &c, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_config_int(c, "CASEFLOW_REDIS_PORT"), 65535);
    cf_config_free(c);

    /* The extremes of long long parse when the table allows them. */
    static const struct cf_config_entry wide[] = {
        {"CASEFLOW_N", CF_CONFIG_INT, "0", -9223372036854775807LL - 1, 9223372036854775807LL,
         "any"},
    };
    char *min[] = {"CASEFLOW_N=-9223372036854775808", NULL};
    assert_int_equal(load(wide, N(wide), min, &c, err, sizeof(err)), CF_OK);
    assert_true(cf_config_int(c, "CASEFLOW_N") == -9223372036854775807LL - 1);
    cf_config_free(c);
}

static void test_bool_forms(void **state)
{
    (void)state;
    static const struct {
        const char *var;
        bool value;
    } forms[] = {
        {"CASEFLOW_DRY_RUN=true", true},  {"CASEFLOW_DRY_RUN=TRUE", true},
        {"CASEFLOW_DRY_RUN=1", true},     {"CASEFLOW_DRY_RUN=yes", true},
        {"CASEFLOW_DRY_RUN=Yes", true},   {"CASEFLOW_DRY_RUN=on", true},
        {"CASEFLOW_DRY_RUN=ON", true},    {"CASEFLOW_DRY_RUN=false", false},
        {"CASEFLOW_DRY_RUN=False", false}, {"CASEFLOW_DRY_RUN=0", false},
        {"CASEFLOW_DRY_RUN=no", false},   {"CASEFLOW_DRY_RUN=NO", false},
        {"CASEFLOW_DRY_RUN=off", false},  {"CASEFLOW_DRY_RUN=Off", false},
    };
    char err[256];

    for (size_t i = 0; i < N(forms); i++) {
        char *envp[] = {(char *)forms[i].var, NULL};
        struct cf_config *c = NULL;
        assert_int_equal(load(table, N(table), envp, &c, err, sizeof(err)), CF_OK);
        assert_int_equal(cf_config_bool(c, "CASEFLOW_DRY_RUN"), forms[i].value);
        cf_config_free(c);
    }

    const char *bad[] = {"CASEFLOW_DRY_RUN=maybe", "CASEFLOW_DRY_RUN=2", "CASEFLOW_DRY_RUN=",
                         "CASEFLOW_DRY_RUN=truee", "CASEFLOW_DRY_RUN= true"};
    for (size_t i = 0; i < N(bad); i++) {
        expect_error(bad[i], err, sizeof(err));
        assert_non_null(strstr(err, "CASEFLOW_DRY_RUN: "));
        assert_non_null(strstr(err, "not a boolean; allowed: true/false, 1/0, yes/no or on/off"));
    }
    expect_error("CASEFLOW_DRY_RUN=maybe", err, sizeof(err));
    assert_string_equal(err, "CASEFLOW_DRY_RUN: \"maybe\" is not a boolean; allowed: true/false, "
                             "1/0, yes/no or on/off");
}

static void test_string_length_bounds(void **state)
{
    (void)state;
    char err[256];
    struct cf_config *c = NULL;

    expect_error("CASEFLOW_LOG_LEVEL=abc", err, sizeof(err));
    assert_string_equal(err, "CASEFLOW_LOG_LEVEL: the value is 3 bytes long, below the minimum "
                             "length of 4 bytes");
    expect_error("CASEFLOW_LOG_LEVEL=abcdef", err, sizeof(err));
    assert_string_equal(err, "CASEFLOW_LOG_LEVEL: the value is 6 bytes long, above the maximum "
                             "length of 5 bytes");
    expect_error("CASEFLOW_TOPIC=", err, sizeof(err));
    assert_non_null(strstr(err, "CASEFLOW_TOPIC: the value is 0 bytes long"));

    /* Length is in bytes: "ü" is two. */
    char *two[] = {"CASEFLOW_LOG_LEVEL=\xc3\xbc\xc3\xbc", NULL};
    assert_int_equal(load(table, N(table), two, &c, err, sizeof(err)), CF_OK);
    cf_config_free(c);
}

static const struct cf_config_entry with_required[] = {
    {"CASEFLOW_INPUT_TOPIC", CF_CONFIG_STRING, NULL, 1, 249, "topic to consume"},
    {"CASEFLOW_WORKERS", CF_CONFIG_INT, NULL, 1, 64, "worker threads"},
};

static void test_required(void **state)
{
    (void)state;
    char err[256];
    struct cf_config *c = (struct cf_config *)(uintptr_t)1;

    char *none[] = {"CASEFLOW_WORKERS=4", NULL};
    assert_int_equal(load(with_required, N(with_required), none, &c, err, sizeof(err)),
                     CF_ECONFIG);
    assert_string_equal(err, "CASEFLOW_INPUT_TOPIC: required but not set (topic to consume)");

    char *one[] = {"CASEFLOW_INPUT_TOPIC=caseflow.case.opened", NULL};
    assert_int_equal(load(with_required, N(with_required), one, &c, err, sizeof(err)),
                     CF_ECONFIG);
    assert_string_equal(err, "CASEFLOW_WORKERS: required but not set (worker threads)");

    char *both[] = {"CASEFLOW_WORKERS=4", "CASEFLOW_INPUT_TOPIC=caseflow.case.opened", NULL};
    assert_int_equal(load(with_required, N(with_required), both, &c, err, sizeof(err)), CF_OK);
    assert_string_equal(cf_config_string(c, "CASEFLOW_INPUT_TOPIC"), "caseflow.case.opened");
    assert_int_equal(cf_config_int(c, "CASEFLOW_WORKERS"), 4);
    cf_config_free(c);
}

/* An unknown CASEFLOW_ variable (another program's key, or a typo) does not stop the program:
 * it is named in a warning, without its value. */
static void test_unknown_caseflow_variable(void **state)
{
    (void)state;
    char err[256], *logged = NULL;
    size_t logged_len = 0;
    FILE *stream = open_memstream(&logged, &logged_len);
    assert_non_null(stream);
    cf_log_set_stream(stream);
    char *typo[] = {"CASEFLOW_REDIS_PROT=6379", NULL};
    struct cf_config *c = NULL;
    assert_int_equal(load(table, N(table), typo, &c, err, sizeof(err)), CF_OK);
    cf_config_free(c);
    cf_log_set_stream(NULL);
    fclose(stream);
    assert_non_null(strstr(logged, "\"level\":\"warn\""));
    assert_non_null(strstr(logged, "\"event\":\"config_variable_ignored\""));
    assert_non_null(strstr(logged, "\"name\":\"CASEFLOW_REDIS_PROT\""));
    assert_null(strstr(logged, "6379"));
    free(logged);

    /* Only names starting with CASEFLOW_ are ours; the rest of the environment is not. */
    char *envp[] = {"CASEFLOWX=1", "CASEFLOW=1", "MY_CASEFLOW_THING=1", "LANG=C.UTF-8",
                    "NOEQUALS", NULL};
    assert_int_equal(load(table, N(table), envp, &c, err, sizeof(err)), CF_OK);
    cf_config_free(c);
}

static void test_set_twice(void **state)
{
    (void)state;
    char err[256];
    char *envp[] = {"CASEFLOW_REDIS_PORT=1", "CASEFLOW_REDIS_PORT=2", NULL};
    struct cf_config *c = NULL;

    assert_int_equal(load(table, N(table), envp, &c, err, sizeof(err)), CF_ECONFIG);
    assert_string_equal(err, "CASEFLOW_REDIS_PORT: set twice in the environment");
}

static void test_kafka_passthrough(void **state)
{
    (void)state;
    char *envp[] = {"KAFKA_BOOTSTRAP_SERVERS=broker1:9092,broker2:9092",
                    "CASEFLOW_REDIS_PORT=6380",
                    "KAFKA_SECURITY_PROTOCOL=SASL_SSL",
                    "KAFKA_ENABLE_IDEMPOTENCE=true",
                    "KAFKA_SASL_PASSWORD=",
                    NULL};
    struct cf_config *c = NULL;
    const char *key = NULL, *value = NULL;
    char err[256];

    assert_int_equal(load(table, N(table), envp, &c, err, sizeof(err)), CF_OK);
    assert_true(cf_config_kafka_property(c, 0, &key, &value));
    assert_string_equal(key, "bootstrap.servers");
    assert_string_equal(value, "broker1:9092,broker2:9092");
    assert_true(cf_config_kafka_property(c, 1, &key, &value));
    assert_string_equal(key, "security.protocol");
    assert_string_equal(value, "SASL_SSL"); /* the value is passed as is, case and all */
    assert_true(cf_config_kafka_property(c, 2, &key, &value));
    assert_string_equal(key, "enable.idempotence");
    assert_string_equal(value, "true");
    assert_true(cf_config_kafka_property(c, 3, &key, &value));
    assert_string_equal(key, "sasl.password");
    assert_string_equal(value, "");
    assert_false(cf_config_kafka_property(c, 4, &key, &value));
    assert_false(cf_config_kafka_property(NULL, 0, &key, &value));
    assert_int_equal(cf_config_int(c, "CASEFLOW_REDIS_PORT"), 6380);
    cf_config_free(c);
}

static void test_kafka_errors(void **state)
{
    (void)state;
    char err[256];
    struct cf_config *c = NULL;

    char *empty[] = {"KAFKA_=x", NULL};
    assert_int_equal(load(table, N(table), empty, &c, err, sizeof(err)), CF_ECONFIG);
    assert_non_null(strstr(err, "KAFKA_: no librdkafka property name"));

    /* Two spellings of one property: which would win depends on the environment's order. */
    char *twice[] = {"KAFKA_CLIENT_ID=a", "KAFKA_client_id=b", NULL};
    assert_int_equal(load(table, N(table), twice, &c, err, sizeof(err)), CF_ECONFIG);
    assert_string_equal(err, "KAFKA_client_id: sets client.id, which another KAFKA_ variable "
                             "already sets");

    /* "KAFKA" without the underscore is not ours. */
    char *other[] = {"KAFKA=x", "KAFKAESQUE=1", NULL};
    assert_int_equal(load(table, N(table), other, &c, err, sizeof(err)), CF_OK);
    assert_false(cf_config_kafka_property(c, 0, NULL, NULL));
    cf_config_free(c);
}

static void test_secrets_not_echoed(void **state)
{
    (void)state;
    static const struct cf_config_entry secrets[] = {
        {"CASEFLOW_SMTP_PASSWORD", CF_CONFIG_STRING, "", 0, 8, "SMTP password"},
        {"CASEFLOW_LINK_SECRET", CF_CONFIG_STRING, "0123456789abcdef", 16, 64,
         "key for signed links"},
        {"CASEFLOW_TOKEN_TTL_S", CF_CONFIG_INT, "60", 1, 3600, "token lifetime"},
        {"CASEFLOW_SMS_URL", CF_CONFIG_STRING, "", 0, 10, "SMS provider URL"},
    };
    const char *cases[][2] = {
        {"CASEFLOW_SMTP_PASSWORD=hunter2hunter2", "hunter2"},
        {"CASEFLOW_LINK_SECRET=sekrit", "sekrit"},
        {"CASEFLOW_TOKEN_TTL_S=s3cr3t", "s3cr3t"},
        {"CASEFLOW_TOKEN_TTL_S=987654", "987654"},
        /* Any string can hold a credential, whatever its name. */
        {"CASEFLOW_SMS_URL=https://user:pa55@sms.example", "pa55"},
    };
    char err[256];

    for (size_t i = 0; i < N(cases); i++) {
        char *envp[] = {(char *)cases[i][0], NULL};
        struct cf_config *c = NULL;
        size_t namelen = (size_t)(strchr(cases[i][0], '=') - cases[i][0]);
        assert_int_equal(load(secrets, N(secrets), envp, &c, err, sizeof(err)), CF_ECONFIG);
        assert_memory_equal(err, cases[i][0], namelen); /* names the key... */
        assert_null(strstr(err, cases[i][1]));          /* ...but not the value */
    }
}

static void test_table_errors(void **state)
{
    (void)state;
    char err[256];
    struct cf_config *c = NULL;

    static const struct cf_config_entry dup[] = {
        {"CASEFLOW_A", CF_CONFIG_INT, "1", 0, 9, "a"},
        {"CASEFLOW_B", CF_CONFIG_INT, "1", 0, 9, "b"},
        {"CASEFLOW_A", CF_CONFIG_BOOL, "true", 0, 0, "a again"},
    };
    assert_int_equal(load(dup, N(dup), NULL, &c, err, sizeof(err)), CF_ECONFIG);
    assert_string_equal(err, "CASEFLOW_A: listed twice in the configuration table");

    static const struct cf_config_entry bad_default[] = {
        {"CASEFLOW_A", CF_CONFIG_INT, "0", 1, 9, "a"},
    };
    assert_int_equal(load(bad_default, N(bad_default), NULL, &c, err, sizeof(err)), CF_ECONFIG);
    assert_string_equal(err, "CASEFLOW_A: the default 0 is below the minimum 1");

    static const struct cf_config_entry swapped[] = {
        {"CASEFLOW_A", CF_CONFIG_INT, "5", 9, 1, "a"},
    };
    assert_int_equal(load(swapped, N(swapped), NULL, &c, err, sizeof(err)), CF_ECONFIG);
    assert_non_null(strstr(err, "CASEFLOW_A: the table's minimum 9 is above its maximum 1"));

    assert_int_equal(cf_config_load(table, N(table), NULL, NULL, err, sizeof(err)), CF_EINVAL);
    assert_int_equal(cf_config_load(NULL, 1, NULL, &c, err, sizeof(err)), CF_EINVAL);
    /* A NULL errbuf is allowed. */
    assert_int_equal(load(dup, N(dup), NULL, &c, NULL, 0), CF_ECONFIG);
    cf_config_free(NULL);
}

/* Runs fn in a child and returns what it wrote on stderr; the child must die of SIGABRT. */
static void expect_abort(void (*fn)(const struct cf_config *), const struct cf_config *c,
                         char *msg, size_t msglen)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        (void)dup2(fds[1], 2);
        close(fds[0]);
        fn(c);
        _exit(0); /* not reached if fn aborts */
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < msglen && (r = read(fds[0], msg + got, msglen - 1 - got)) > 0)
        got += (size_t)r;
    msg[got] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void get_missing(const struct cf_config *c)
{
    (void)cf_config_int(c, "CASEFLOW_NOT_THERE");
}

static void get_wrong_type(const struct cf_config *c)
{
    (void)cf_config_string(c, "CASEFLOW_REDIS_PORT");
}

static void get_bool_as_int(const struct cf_config *c)
{
    (void)cf_config_int(c, "CASEFLOW_DRY_RUN");
}

static void test_getter_misuse_aborts(void **state)
{
    (void)state;
    struct cf_config *c = NULL;
    char err[256], msg[512];

    assert_int_equal(load(table, N(table), NULL, &c, err, sizeof(err)), CF_OK);
    expect_abort(get_missing, c, msg, sizeof(msg));
    assert_non_null(strstr(msg, "cf_config_int(\"CASEFLOW_NOT_THERE\")"));
    assert_non_null(strstr(msg, "not in the program's configuration table"));
    expect_abort(get_wrong_type, c, msg, sizeof(msg));
    assert_non_null(strstr(msg, "cf_config_string(\"CASEFLOW_REDIS_PORT\")"));
    assert_non_null(strstr(msg, "another type"));
    expect_abort(get_bool_as_int, c, msg, sizeof(msg));
    assert_non_null(strstr(msg, "cf_config_int(\"CASEFLOW_DRY_RUN\")"));
    cf_config_free(c);
}

static void test_write_example(void **state)
{
    (void)state;
    static const struct cf_config_entry t[] = {
        {"CASEFLOW_REDIS_PORT", CF_CONFIG_INT, "6379", 1, 65535, "Redis port"},
        {"CASEFLOW_INPUT_TOPIC", CF_CONFIG_STRING, NULL, 1, 249, "topic to consume"},
        {"CASEFLOW_DRY_RUN", CF_CONFIG_BOOL, "false", 0, 0, "log instead of sending"},
        {"CASEFLOW_SCHEMA_DIR", CF_CONFIG_STRING, "", 0, 4096, "schema directory"},
    };
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);

    cf_config_write_example(t, N(t), f);
    cf_config_write_example(t, N(t), NULL); /* no stream: nothing, no crash */
    assert_int_equal(fclose(f), 0);
    assert_string_equal(buf, "# Redis port (integer, 1 to 65535)\n"
                             "CASEFLOW_REDIS_PORT=6379\n"
                             "\n"
                             "# topic to consume (string, 1 to 249 bytes)\n"
                             "# required\n"
                             "# CASEFLOW_INPUT_TOPIC=\n"
                             "\n"
                             "# log instead of sending (boolean: true or false)\n"
                             "CASEFLOW_DRY_RUN=false\n"
                             "\n"
                             "# schema directory (string, 0 to 4096 bytes)\n"
                             "CASEFLOW_SCHEMA_DIR=\n");
    free(buf);
}

/* The example file, read back as an environment, loads and gives the defaults. */
static void test_example_round_trip(void **state)
{
    (void)state;
    char *buf = NULL, *envp[32];
    size_t len = 0, n = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    cf_config_write_example(table, N(table), f);
    assert_int_equal(fclose(f), 0);

    for (char *line = buf, *next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (line[0] != '#' && line[0] != '\0') {
            assert_true(n + 1 < N(envp));
            envp[n++] = line;
        }
    }
    envp[n] = NULL;
    assert_int_equal(n, N(table)); /* one NAME=default line per entry */

    struct cf_config *c = NULL;
    char err[256];
    assert_int_equal(load(table, N(table), envp, &c, err, sizeof(err)), CF_OK);
    assert_string_equal(cf_config_string(c, "CASEFLOW_REGISTRY_URL"),
                        "http://127.0.0.1:18081/apis/ccompat/v7");
    assert_int_equal(cf_config_int(c, "CASEFLOW_REDIS_PORT"), 6379);
    assert_false(cf_config_bool(c, "CASEFLOW_DRY_RUN"));
    cf_config_free(c);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_int_parse_errors),
        cmocka_unit_test(test_int_bounds),
        cmocka_unit_test(test_bool_forms),
        cmocka_unit_test(test_string_length_bounds),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_unknown_caseflow_variable),
        cmocka_unit_test(test_set_twice),
        cmocka_unit_test(test_kafka_passthrough),
        cmocka_unit_test(test_kafka_errors),
        cmocka_unit_test(test_secrets_not_echoed),
        cmocka_unit_test(test_table_errors),
        cmocka_unit_test(test_getter_misuse_aborts),
        cmocka_unit_test(test_write_example),
        cmocka_unit_test(test_example_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
