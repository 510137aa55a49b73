/* test_caseflowctl.c — the operator CLI against the real stack (deploy/stack up): topics,
 * schemas, producing the sample inquiries and reading them back with tail, dead letters,
 * rejected files and a clean stop on SIGTERM.
 *
 * caseflowctl runs as a child process exactly as an operator runs it; every wait is bounded
 * and a child that overstays is killed. The tests run in order: the first ones create the
 * topics and subjects the later ones use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "avro_serde.h"
#include "cloudevents.h"
#include "dlq.h"
#include "kafka.h"
#include "registry.h"
#include "topics.h"
#include "uuid.h"
#include "test_env.h"

#define CTL CF_BINARY_DIR "/tools/caseflowctl/caseflowctl"
#define SAMPLES CF_TESTS_DIR "/../deploy/samples"
#define REGISTRY_URL "http://127.0.0.1:18081/apis/ccompat/v7"

/* Bounds on every wait. */
#define RUN_TIMEOUT_MS 60000
#define TAIL_IDLE_MS "3000"
#define OUTPUT_CAP (32u * 1024u * 1024u)

extern char **environ;

/* ---- running caseflowctl ------------------------------------------------------------------ */

struct child {
    pid_t pid;
    int out_fd, err_fd;
};

struct result {
    int status; /* exit code; 128 + signal if killed by one; -1 if it had to be killed */
    char *out;  /* stdout, NUL-terminated */
    char *err;  /* stderr */
};

/* Starts caseflowctl with args (NULL-terminated, without the program), stdin from stdin_path
 * (NULL: /dev/null) and the environment plus extra_env ("NAME=value", NULL-terminated, may be
 * NULL). The environment is built before fork: after it the child only calls async-signal-safe
 * functions, as librdkafka threads may live in this process. */
static struct child spawn(const char *const *args, const char *stdin_path,
                          const char *const *extra_env)
{
    struct child c = {-1, -1, -1};
    int out[2], err[2];
    const char *argv[32];
    const char *envp[512];
    size_t n = 0, e = 0;

    argv[n++] = CTL;
    for (size_t i = 0; args[i] != NULL; i++) {
        assert_true(n < 31);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    for (size_t i = 0; environ[i] != NULL && e < 400; i++)
        envp[e++] = environ[i];
    for (size_t i = 0; extra_env != NULL && extra_env[i] != NULL; i++) {
        assert_true(e < 510);
        envp[e++] = extra_env[i];
    }
    envp[e] = NULL;

    int in = open(stdin_path != NULL ? stdin_path : "/dev/null", O_RDONLY);
    assert_true(in >= 0);
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in, 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(in);
        close(out[0]);
        close(out[1]);
        close(err[0]);
        close(err[1]);
        execve(CTL, (char *const *)argv, (char *const *)envp);
        _exit(127);
    }
    close(in);
    close(out[1]);
    close(err[1]);
    c.pid = pid;
    c.out_fd = out[0];
    c.err_fd = err[0];
    return c;
}

static void append(char **buf, size_t *len, const char *data, size_t n)
{
    assert_true(*len + n < OUTPUT_CAP);
    char *nbuf = realloc(*buf, *len + n + 1);
    assert_non_null(nbuf);
    memcpy(nbuf + *len, data, n);
    *len += n;
    nbuf[*len] = '\0';
    *buf = nbuf;
}

/* Reads the child's output until it closes both pipes and exits, at most timeout_ms; a child
 * still running then is killed and reported as status -1. */
static struct result collect(struct child c, int timeout_ms)
{
    struct result r = {-1, NULL, NULL};
    size_t out_len = 0, err_len = 0;
    int64_t deadline = cf_clock_mono_ms() + timeout_ms;
    bool timed_out = false;
    char buf[65536];

    append(&r.out, &out_len, "", 0);
    append(&r.err, &err_len, "", 0);
    while (c.out_fd >= 0 || c.err_fd >= 0) {
        struct pollfd fds[2] = {{c.out_fd, POLLIN, 0}, {c.err_fd, POLLIN, 0}};
        int64_t left = deadline - cf_clock_mono_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        int pr = poll(fds, 2, (int)(left < 200 ? left : 200));
        if (pr < 0 && errno == EINTR)
            continue;
        assert_true(pr >= 0);
        for (int k = 0; k < 2; k++) {
            if (fds[k].fd < 0 || fds[k].revents == 0)
                continue;
            ssize_t got = read(fds[k].fd, buf, sizeof(buf));
            if (got > 0) {
                if (k == 0)
                    append(&r.out, &out_len, buf, (size_t)got);
                else
                    append(&r.err, &err_len, buf, (size_t)got);
            } else if (got == 0 || errno != EINTR) {
                close(fds[k].fd);
                if (k == 0)
                    c.out_fd = -1;
                else
                    c.err_fd = -1;
            }
        }
    }
    if (c.out_fd >= 0)
        close(c.out_fd);
    if (c.err_fd >= 0)
        close(c.err_fd);

    int wstatus = 0;
    for (;;) {
        pid_t w = waitpid(c.pid, &wstatus, WNOHANG);
        if (w == c.pid)
            break;
        assert_true(w == 0 || errno == EINTR);
        if (timed_out || cf_clock_mono_ms() > deadline) {
            timed_out = true;
            kill(c.pid, SIGKILL);
            waitpid(c.pid, &wstatus, 0);
            break;
        }
        cf_clock_sleep_ms(20);
    }
    if (timed_out)
        r.status = -1;
    else if (WIFEXITED(wstatus))
        r.status = WEXITSTATUS(wstatus);
    else if (WIFSIGNALED(wstatus))
        r.status = 128 + WTERMSIG(wstatus);
    if (r.err[0] != '\0')
        print_message("caseflowctl stderr:\n%s", r.err);
    return r;
}

static struct result run_full(const char *const *args, const char *stdin_path,
                              const char *const *extra_env)
{
    return collect(spawn(args, stdin_path, extra_env), RUN_TIMEOUT_MS);
}

static struct result run(const char *const *args) { return run_full(args, NULL, NULL); }

static void result_free(struct result *r)
{
    free(r->out);
    free(r->err);
}

/* ---- JSON helpers ------------------------------------------------------------------------- */

/* Every stdout line parsed as JSON, in order (an array the caller decrefs). */
static json_t *json_lines(const char *text)
{
    json_t *lines = json_array();
    const char *p = text;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl); /* every line ends with a newline */
        json_error_t jerr;
        json_t *line = json_loadb(p, (size_t)(nl - p), 0, &jerr);
        if (line == NULL)
            fail_msg("not a JSON line (%s): %.*s", jerr.text, (int)(nl - p), p);
        json_array_append_new(lines, line);
        p = nl + 1;
    }
    return lines;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p != '\0'; p++)
        n += *p == '\n';
    return n;
}

static const char *str_at(const json_t *obj, const char *k1, const char *k2)
{
    const json_t *v = json_object_get(obj, k1);
    if (k2 != NULL)
        v = json_object_get(v, k2);
    return json_string_value(v);
}

static bool is_default(const json_t *v)
{
    return json_is_null(v) || json_is_false(v) || (json_is_array(v) && json_array_size(v) == 0) ||
           (json_is_object(v) && json_object_size(v) == 0);
}

/* Asserts that actual is expected with the schema's defaults applied: every member expected
 * gives is equal in actual, and every member it leaves out has a default value in actual
 * (all defaults in schemas/ are null, false, [] or {}). */
static void assert_json_with_defaults(const json_t *expected, const json_t *actual,
                                      const char *path)
{
    char sub[512];
    if (json_is_object(expected)) {
        const char *k;
        const json_t *v;
        if (!json_is_object(actual))
            fail_msg("%s: expected an object", path);
        json_object_foreach((json_t *)expected, k, v) {
            snprintf(sub, sizeof(sub), "%s.%s", path, k);
            if (json_object_get(actual, k) == NULL)
                fail_msg("%s: missing in the decoded record", sub);
            assert_json_with_defaults(v, json_object_get(actual, k), sub);
        }
        json_object_foreach((json_t *)actual, k, v) {
            if (json_object_get(expected, k) == NULL && !is_default(v))
                fail_msg("%s.%s: not in the sample, yet not a default value", path, k);
        }
    } else if (json_is_array(expected)) {
        if (!json_is_array(actual) || json_array_size(actual) != json_array_size(expected))
            fail_msg("%s: array differs in length", path);
        for (size_t i = 0; i < json_array_size(expected); i++) {
            snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
            assert_json_with_defaults(json_array_get(expected, i), json_array_get(actual, i),
                                      sub);
        }
    } else if (!json_equal((json_t *)expected, (json_t *)actual)) {
        char *a = json_dumps(actual, JSON_ENCODE_ANY), *e = json_dumps(expected, JSON_ENCODE_ANY);
        print_message("%s: expected %s, got %s\n", path, e, a);
        free(a);
        free(e);
        fail_msg("%s differs", path);
    }
}

static json_t *load_json(const char *path)
{
    json_error_t jerr;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        fail_msg("%s: %s", path, jerr.text);
    return j;
}

/* A temporary file holding text; the caller unlinks it. */
static void write_temp(char *path, size_t len, const char *text)
{
    snprintf(path, len, "/tmp/caseflowctl-test-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
}

static void write_temp_json(char *path, size_t len, const json_t *j)
{
    char *text = json_dumps(j, JSON_INDENT(2));
    assert_non_null(text);
    write_temp(path, len, text);
    free(text);
}

static void new_uuid(char out[CF_UUID_LEN + 1]) { assert_int_equal(cf_uuid_v4(out), CF_OK); }

/* Records of topic whose key (or meta.case_id) is id, read from the beginning until the topic
 * stays idle. */
static json_t *tail_case(const char *topic, const char *id)
{
    const char *args[] = {"tail",   topic, "--from-beginning", "--case", id, "--idle-exit-ms",
                          TAIL_IDLE_MS, NULL};
    struct result r = run(args);
    assert_int_equal(r.status, 0);
    json_t *lines = json_lines(r.out);
    result_free(&r);
    return lines;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_usage_and_config_errors(void **state)
{
    (void)state;
    const char *none[] = {NULL};
    struct result r = run(none);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "usage"));
    result_free(&r);

    const char *help[] = {"--help", NULL};
    r = run(help);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "topics create"));
    assert_non_null(strstr(r.out, "tail TOPIC"));
    assert_non_null(strstr(r.out, "CASEFLOW_TOPIC_PARTITIONS=3"));
    assert_non_null(strstr(r.out, "CASEFLOW_REGISTRY_URL="));
    result_free(&r);

    const char *unknown[] = {"frobnicate", NULL};
    r = run(unknown);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "unknown command"));
    result_free(&r);

    const char *bad_max[] = {"tail", "caseflow.case.opened", "--max", "many", NULL};
    r = run(bad_max);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--max"));
    result_free(&r);

    /* A bad setting is refused before anything is contacted, naming the key. */
    const char *create[] = {"topics", "create", NULL};
    const char *bad_env[] = {"CASEFLOW_TOPIC_PARTITIONS=0", NULL};
    r = run_full(create, NULL, bad_env);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "CASEFLOW_TOPIC_PARTITIONS"));
    assert_string_equal(r.out, "");
    result_free(&r);
}

static void test_topics_create_twice(void **state)
{
    (void)state;
    size_t ntopics;
    const struct cf_topic *topics = cf_topics_all(&ntopics);
    const char *args[] = {"topics", "create", NULL};
    for (int round = 0; round < 2; round++) {
        struct result r = run(args);
        assert_int_equal(r.status, 0);
        assert_int_equal(count_lines(r.out), ntopics + 5);
        for (size_t i = 0; i < ntopics; i++) {
            char want[256];
            const char *line = strstr(r.out, topics[i].name);
            assert_non_null(line);
            const char *eol = strchr(line, '\n');
            snprintf(want, sizeof(want), "%s",
                     topics[i].compacted ? "cleanup.policy=compact retention=forever"
                                         : "cleanup.policy=delete  retention=30 days");
            const char *found = strstr(line, want);
            if (found == NULL || found > eol)
                fail_msg("%s: line lacks \"%s\": %.*s", topics[i].name, want,
                         (int)(eol - line), line);
        }
        const char *services[] = {"intake", "validation", "assignment", "scheduler", "notifier"};
        for (size_t i = 0; i < 5; i++) {
            char name[64];
            snprintf(name, sizeof(name), "caseflow.dlq.%s ", services[i]);
            const char *line = strstr(r.out, name);
            assert_non_null(line);
            const char *eol = strchr(line, '\n');
            const char *found = strstr(line, "cleanup.policy=delete  retention=90 days");
            assert_true(found != NULL && found < eol);
        }
        result_free(&r);
    }
}

static void test_schemas_register(void **state)
{
    (void)state;
    size_t ntopics;
    const struct cf_topic *topics = cf_topics_all(&ntopics);
    const char *args[] = {"schemas", "register", NULL};
    struct result r = run(args);
    assert_int_equal(r.status, 0);
    assert_int_equal(count_lines(r.out), ntopics);
    const char *p = r.out;
    for (size_t i = 0; i < ntopics; i++) {
        char subject[256];
        int id = 0, used = 0;
        snprintf(subject, sizeof(subject), "%s-value ", topics[i].name);
        assert_memory_equal(p, subject, strlen(subject));
        assert_int_equal(sscanf(p + strlen(subject), "%d\n%n", &id, &used), 1);
        assert_true(id > 0);
        p = strchr(p, '\n') + 1;
    }
    result_free(&r);
}

/* Produces a sample (the last one through stdin) and finds it with tail. */
static void check_sample(const char *path, bool via_stdin)
{
    json_t *sample = load_json(path);
    const char *inquiry_id = str_at(sample, "inquiry_id", NULL);
    assert_non_null(inquiry_id);
    assert_true(cf_uuid_valid(inquiry_id));

    const char *file_args[] = {"produce", "caseflow.inquiry.submitted", path, NULL};
    const char *stdin_args[] = {"produce", "caseflow.inquiry.submitted", "-", NULL};
    struct result r = via_stdin ? run_full(stdin_args, path, NULL) : run(file_args);
    assert_int_equal(r.status, 0);
    assert_int_equal(count_lines(r.out), 1);
    json_t *produced = json_lines(r.out);
    result_free(&r);
    const json_t *p = json_array_get(produced, 0);
    assert_string_equal(str_at(p, "topic", NULL), "caseflow.inquiry.submitted");
    assert_string_equal(str_at(p, "key", NULL), inquiry_id);
    const char *event_id = str_at(p, "event_id", NULL);
    assert_non_null(event_id);
    assert_true(cf_uuid_valid(event_id));

    json_t *lines = tail_case("caseflow.inquiry.submitted", inquiry_id);
    const json_t *mine = NULL;
    size_t i;
    const json_t *line;
    json_array_foreach(lines, i, line) {
        /* --case keeps only this inquiry's records (it may have been produced before). */
        assert_string_equal(str_at(line, "key", NULL), inquiry_id);
        /* Older runs' records may have been written under a registry that has since been
         * reset; they show up with "error" and are not this run's. */
        const char *id = str_at(json_object_get(line, "value"), "meta", "event_id");
        if (id != NULL && strcmp(id, event_id) == 0)
            mine = line;
    }
    if (mine == NULL)
        fail_msg("%s: event %s not found by tail (%zu lines)", path, event_id,
                 json_array_size(lines));

    const json_t *headers = json_object_get(mine, "headers");
    const json_t *value = json_object_get(mine, "value");
    assert_string_equal(str_at(mine, "topic", NULL), "caseflow.inquiry.submitted");
    assert_true(json_is_integer(json_object_get(mine, "partition")));
    assert_true(json_is_integer(json_object_get(mine, "offset")));
    assert_string_equal(str_at(headers, "ce_type", NULL), "caseflow.event.InquirySubmitted");
    assert_string_equal(str_at(headers, "ce_id", NULL), str_at(value, "meta", "event_id"));
    assert_string_equal(str_at(headers, "ce_specversion", NULL), "1.0");
    assert_string_equal(str_at(headers, "ce_source", NULL), "/caseflow/caseflowctl");
    assert_string_equal(str_at(headers, "content-type", NULL), "application/avro");
    assert_string_equal(str_at(headers, "ce_time", NULL), str_at(value, "meta", "occurred_at"));

    const json_t *meta = json_object_get(value, "meta");
    assert_non_null(strstr(str_at(meta, "producer", NULL), "caseflowctl/"));
    assert_string_equal(str_at(meta, "correlation_id", NULL), inquiry_id);
    assert_true(json_is_null(json_object_get(meta, "case_id")));
    assert_true(json_is_null(json_object_get(meta, "causation_id")));
    assert_int_equal(json_object_size(value), 2);

    assert_json_with_defaults(sample, json_object_get(value, "inquiry"), "$.inquiry");

    json_decref(lines);
    json_decref(produced);
    json_decref(sample);
}

static void test_produce_and_tail_samples(void **state)
{
    (void)state;
    glob_t g;
    assert_int_equal(glob(SAMPLES "/inquiry-*.json", 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 3);
    for (size_t i = 0; i < g.gl_pathc; i++)
        check_sample(g.gl_pathv[i], i == g.gl_pathc - 1);
    globfree(&g);
}

static void test_tail_max(void **state)
{
    (void)state;
    const char *args[] = {"tail", "caseflow.inquiry.submitted", "--from-beginning", "--max",
                          "2", NULL};
    struct result r = run(args);
    assert_int_equal(r.status, 0);
    json_t *lines = json_lines(r.out);
    assert_int_equal(json_array_size(lines), 2);
    json_decref(lines);
    result_free(&r);
}

static void test_produce_rejects_bad_files(void **state)
{
    (void)state;
    char path[64];
    struct result r;

    /* Malformed JSON: the file, line and column; no record. */
    write_temp(path, sizeof(path), "{\n  \"inquiry_id\": \"x\",\n  \"channel\": WEB\n}\n");
    const char *args[] = {"produce", "caseflow.inquiry.submitted", path, NULL};
    r = run(args);
    assert_int_not_equal(r.status, 0);
    assert_non_null(strstr(r.err, path));
    assert_non_null(strstr(r.err, ":3:"));
    assert_non_null(strstr(r.err, "invalid JSON"));
    assert_string_equal(r.out, "");
    result_free(&r);
    unlink(path);

    /* An unknown field in the second object of an array: the JSON path names it, and the valid
     * first object is not produced either. */
    char fresh_id[CF_UUID_LEN + 1];
    new_uuid(fresh_id);
    json_t *good = load_json(SAMPLES "/inquiry-en-cirrhosis.json");
    json_object_set_new(good, "inquiry_id", json_string(fresh_id));
    json_t *bad = json_deep_copy(good);
    json_object_set_new(json_object_get(bad, "patient"), "nickname", json_string("Al"));
    json_t *both = json_pack("[O, O]", good, bad);
    write_temp_json(path, sizeof(path), both);
    r = run(args);
    assert_int_not_equal(r.status, 0);
    assert_non_null(strstr(r.err, path));
    assert_non_null(strstr(r.err, "$[1].patient.nickname"));
    assert_non_null(strstr(r.err, "unknown field"));
    /* The error names the field, never a value of the record. */
    assert_null(strstr(r.err, "Example"));
    assert_string_equal(r.out, "");
    result_free(&r);
    unlink(path);

    json_t *lines = tail_case("caseflow.inquiry.submitted", fresh_id);
    assert_int_equal(json_array_size(lines), 0);
    json_decref(lines);

    /* A wrong type in a nested field. */
    json_object_set_new(json_object_get(good, "condition"), "meld_score", json_string("high"));
    write_temp_json(path, sizeof(path), good);
    r = run(args);
    assert_int_not_equal(r.status, 0);
    assert_non_null(strstr(r.err, "$.condition.meld_score"));
    result_free(&r);
    unlink(path);

    json_decref(both);
    json_decref(bad);
    json_decref(good);
}

/* submit, provide-info and review put the events a user expects on their topics: the
 * inquiry, the supplied fields for the case, and the operator's decision. */
static void test_case_commands(void **state)
{
    (void)state;
    char case_id[CF_UUID_LEN + 1], inquiry_id[CF_UUID_LEN + 1], path[64];
    struct result r;
    new_uuid(case_id);
    new_uuid(inquiry_id);

    json_t *inquiry = load_json(SAMPLES "/inquiry-es-fatty-liver.json");
    json_object_set_new(inquiry, "inquiry_id", json_string(inquiry_id));
    write_temp_json(path, sizeof(path), inquiry);
    const char *submit[] = {"submit", path, NULL};
    r = run(submit);
    assert_int_equal(r.status, 0);
    result_free(&r);
    unlink(path);
    json_t *lines = tail_case("caseflow.inquiry.submitted", inquiry_id);
    assert_int_equal(json_array_size(lines), 1);
    assert_string_equal(str_at(json_object_get(json_array_get(lines, 0), "value"), "inquiry",
                               "inquiry_id"),
                        inquiry_id);
    json_decref(lines);
    json_decref(inquiry);

    write_temp(path, sizeof(path), "{\"meld_score\": 12, \"date_of_birth\": \"1971-03-09\"}");
    const char *provide[] = {"provide-info", case_id, path, NULL};
    r = run(provide);
    assert_int_equal(r.status, 0);
    result_free(&r);
    unlink(path);
    lines = tail_case("caseflow.case.info-provided", case_id);
    assert_int_equal(json_array_size(lines), 1);
    json_t *value = json_object_get(json_array_get(lines, 0), "value");
    assert_string_equal(str_at(value, "meta", "case_id"), case_id);
    assert_int_equal(json_integer_value(json_object_get(value, "meld_score")), 12);
    assert_string_equal(json_string_value(json_object_get(value, "date_of_birth")), "1971-03-09");
    assert_true(json_is_null(json_object_get(value, "contact")));
    json_decref(lines);

    const char *review[] = {"review", case_id, "request-info", "--reason", "NEEDS_LABS",
                            "--missing", "reports", "--priority", "high", "--operator", "op-17",
                            NULL};
    r = run(review);
    assert_int_equal(r.status, 0);
    result_free(&r);
    lines = tail_case("caseflow.case.reviewed", case_id);
    assert_int_equal(json_array_size(lines), 1);
    value = json_object_get(json_array_get(lines, 0), "value");
    assert_string_equal(json_string_value(json_object_get(value, "decision")), "REQUEST_INFO");
    assert_string_equal(json_string_value(json_object_get(value, "note_code")), "NEEDS_LABS");
    assert_string_equal(json_string_value(json_array_get(json_object_get(value, "missing"), 0)),
                        "REPORTS");
    assert_string_equal(json_string_value(json_object_get(value, "priority")), "HIGH");
    assert_string_equal(json_string_value(json_object_get(value, "operator_id")), "op-17");
    json_decref(lines);

    /* Wrong decisions, case ids and InfoItems are refused before anything is sent. */
    const char *bad_decision[] = {"review", case_id, "maybe", NULL};
    const char *bad_case[] = {"review", "not-a-uuid", "approve", NULL};
    const char *bad_item[] = {"review", case_id, "request-info", "--missing", "x-rays", NULL};
    r = run(bad_decision);
    assert_int_equal(r.status, 2);
    result_free(&r);
    r = run(bad_case);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "UUID"));
    result_free(&r);
    r = run(bad_item);
    assert_int_not_equal(r.status, 0);
    assert_non_null(strstr(r.err, "$.missing[0]"));
    result_free(&r);
}

/* A dead letter carries a copy of another topic's record: tail decodes it with the writer's
 * schema from the registry and shows the dlq.* headers; an undecodable record before it is
 * reported and the tail goes on. */
static void test_tail_dead_letters(void **state)
{
    (void)state;
    char err[1024];
    char key[CF_UUID_LEN + 1], event_id[CF_UUID_LEN + 1], marker[CF_UUID_LEN + 1];
    struct cf_registry *registry = NULL;
    struct cf_serde *serde = NULL;
    struct cf_kafka_producer *producer = NULL;
    unsigned char *wire = NULL;
    size_t wire_len = 0;
    struct cf_cloudevent ce;
    struct cf_dlq_record dlq;

    new_uuid(key);
    new_uuid(event_id);
    new_uuid(marker);
    json_t *inquiry = load_json(SAMPLES "/inquiry-es-fatty-liver.json");
    json_object_set_new(inquiry, "inquiry_id", json_string(key));
    json_t *record = json_pack("{s:{s:s, s:n, s:s, s:s, s:s, s:n}, s:O}", "meta", "event_id",
                               event_id, "case_id", "occurred_at", "2026-11-24T09:30:00.000Z",
                               "producer", "test/0", "correlation_id", key, "causation_id",
                               "inquiry", inquiry);
    assert_non_null(record);

    assert_int_equal(cf_registry_new(REGISTRY_URL, 10000, &registry, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_serde_new(registry, NULL, &serde, err, sizeof(err)), CF_OK);
    cf_status st = cf_serde_encode_json(serde, "caseflow.inquiry.submitted", record, &wire,
                                        &wire_len, err, sizeof(err));
    if (st != CF_OK)
        fail_msg("encode: %s", err);
    assert_int_equal(cf_cloudevent_from_json(&ce, "test", "caseflow.event.InquirySubmitted",
                                             record, err, sizeof(err)),
                     CF_OK);
    const struct cf_kafka_record in = {
        .topic = "caseflow.inquiry.submitted",
        .partition = 1,
        .offset = 42,
        .key = key,
        .key_len = strlen(key),
        .value = wire,
        .value_len = wire_len,
        .headers = ce.headers,
        .header_count = CF_CE_HEADER_COUNT,
        .timestamp_ms = -1,
    };
    memset(&dlq, 0, sizeof(dlq));
    assert_int_equal(cf_dlq_build(&in, "intake", "invalid_input", marker, 1795000000000LL, 0,
                                  &dlq, err, sizeof(err)),
                     CF_OK);

    assert_int_equal(cf_kafka_producer_new(NULL, NULL, 30000, &producer, err, sizeof(err)),
                     CF_OK);
    st = cf_kafka_produce_sync(producer, "caseflow.dlq.intake", key, strlen(key), "not avro", 8,
                               NULL, 0, 30000, err, sizeof(err));
    if (st != CF_OK)
        fail_msg("produce: %s", err);
    st = cf_kafka_produce_sync(producer, dlq.topic, dlq.key, dlq.key_len, dlq.value,
                               dlq.value_len, dlq.headers, dlq.header_count, 30000, err,
                               sizeof(err));
    if (st != CF_OK)
        fail_msg("produce: %s", err);
    cf_kafka_producer_free(producer);

    json_t *lines = tail_case("caseflow.dlq.intake", key);
    assert_int_equal(json_array_size(lines), 2);
    const json_t *broken = json_array_get(lines, 0);
    const json_t *letter = json_array_get(lines, 1);

    assert_string_equal(str_at(broken, "key", NULL), key);
    assert_non_null(str_at(broken, "error", NULL));
    assert_null(json_object_get(broken, "value"));

    const json_t *headers = json_object_get(letter, "headers");
    assert_string_equal(str_at(letter, "topic", NULL), "caseflow.dlq.intake");
    assert_string_equal(str_at(headers, "dlq.reason", NULL), "invalid_input");
    assert_string_equal(str_at(headers, "dlq.error", NULL), marker);
    assert_string_equal(str_at(headers, "dlq.source.topic", NULL), "caseflow.inquiry.submitted");
    assert_string_equal(str_at(headers, "dlq.source.partition", NULL), "1");
    assert_string_equal(str_at(headers, "dlq.source.offset", NULL), "42");
    assert_string_equal(str_at(headers, "dlq.service", NULL), "intake");
    assert_string_equal(str_at(headers, "ce_type", NULL), "caseflow.event.InquirySubmitted");
    assert_string_equal(str_at(headers, "ce_id", NULL), event_id);
    const json_t *value = json_object_get(letter, "value");
    assert_string_equal(str_at(value, "meta", "event_id"), event_id);
    assert_json_with_defaults(inquiry, json_object_get(value, "inquiry"), "$.inquiry");

    json_decref(lines);
    cf_dlq_record_clear(&dlq);
    free(wire);
    cf_serde_free(serde);
    cf_registry_free(registry);
    json_decref(record);
    json_decref(inquiry);
}

/* caseflowctl case: a case's events from several topics and its dead letter, oldest first,
 * without personal data unless asked; an unknown case is exit 1, a bad id exit 2. */
static void test_case_timeline(void **state)
{
    (void)state;
    char case_id[CF_UUID_LEN + 1], other[CF_UUID_LEN + 1], event_id[CF_UUID_LEN + 1];
    char path[64], err[1024], marker[CF_UUID_LEN + 1];
    struct result r;
    new_uuid(case_id);
    new_uuid(other);
    new_uuid(event_id);
    new_uuid(marker);

    write_temp(path, sizeof(path), "{\"meld_score\": 12, \"date_of_birth\": \"1971-03-09\"}");
    const char *provide[] = {"provide-info", case_id, path, NULL};
    r = run(provide);
    assert_int_equal(r.status, 0);
    result_free(&r);
    unlink(path);
    const char *review[] = {"review", case_id, "approve", "--operator", "op-17", NULL};
    r = run(review);
    assert_int_equal(r.status, 0);
    result_free(&r);
    json_t *assigned = json_pack(
        "{s:{s:s, s:s, s:s, s:s, s:s, s:n}, s:s, s:s, s:s, s:b, s:s, s:b, s:s, s:{s:s, s:s, s:s, "
        "s:s, s:s, s:s, s:n, s:b, s:b, s:[]}}",
        "meta", "event_id", event_id, "case_id", case_id, "occurred_at",
        "2030-01-01T00:00:00.000Z", "producer", "assignment/test", "correlation_id", case_id,
        "causation_id", "manager_id", "cm-timeline", "manager_name", "Casey Manager",
        "manager_email", "casey.manager@example.org", "interpreter_needed", 0, "priority", "HIGH",
        "returning_patient", 0, "category", "CIRRHOSIS", "recipient", "given_name", "Grace",
        "family_name", "Hopper", "language", "en", "country", "US", "time_zone",
        "America/Chicago", "email", "grace.hopper@example.org", "phone", "consent_email", 1,
        "consent_sms", 0, "contact_windows");
    write_temp_json(path, sizeof(path), assigned);
    const char *produce[] = {"produce", "caseflow.case.assigned", path, NULL};
    r = run(produce);
    assert_int_equal(r.status, 0);
    result_free(&r);
    unlink(path);

    /* A dead letter of the case, failed after everything above (2030 is later than now). */
    struct cf_kafka_producer *producer = NULL;
    struct cf_dlq_record dlq;
    const struct cf_kafka_record in = {"caseflow.case.validated", 0, 7, case_id, strlen(case_id),
                                       "garbage", 7, NULL, 0, -1};
    memset(&dlq, 0, sizeof(dlq));
    assert_int_equal(cf_dlq_build(&in, "assignment", "decode_failed", marker, 1893456001000LL, 0,
                                  &dlq, err, sizeof(err)),
                     CF_OK);
    assert_int_equal(cf_kafka_producer_new(NULL, NULL, 30000, &producer, err, sizeof(err)),
                     CF_OK);
    assert_int_equal(cf_kafka_produce_sync(producer, dlq.topic, dlq.key, dlq.key_len, dlq.value,
                                           dlq.value_len, dlq.headers, dlq.header_count, 30000,
                                           err, sizeof(err)),
                     CF_OK);
    cf_kafka_producer_free(producer);
    cf_dlq_record_clear(&dlq);

    const char *timeline[] = {"case", case_id, NULL};
    r = run(timeline);
    if (r.status != 0)
        fail_msg("caseflowctl case: exit %d: %s", r.status, r.err);
    assert_int_equal(count_lines(r.out), 4);
    const char *provided = strstr(r.out, "CaseInfoProvided");
    const char *reviewed = strstr(r.out, "CaseReviewed");
    const char *assigned_line = strstr(r.out, "CaseAssigned");
    const char *dead = strstr(r.out, "DeadLetter");
    assert_true(provided != NULL && reviewed != NULL && assigned_line != NULL && dead != NULL);
    assert_true(provided < reviewed && reviewed < assigned_line && assigned_line < dead);
    assert_non_null(strstr(r.out, "\"meld_score\":12"));
    assert_non_null(strstr(r.out, "\"decision\":\"APPROVE\""));
    assert_non_null(strstr(r.out, "\"manager_id\":\"cm-timeline\""));
    assert_non_null(strstr(r.out, "assignment/test"));
    assert_non_null(strstr(r.out, "decode_failed"));
    assert_non_null(strstr(r.out, marker));
    static const char *const hidden[] = {"1971-03-09", "Casey Manager", "casey.manager@",
                                         "Grace", "grace.hopper@", "garbage"};
    for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++)
        if (strstr(r.out, hidden[i]) != NULL)
            fail_msg("caseflowctl case shows \"%s\" without --show-personal-data:\n%s",
                     hidden[i], r.out);
    result_free(&r);

    const char *personal[] = {"case", case_id, "--show-personal-data", NULL};
    r = run(personal);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "1971-03-09"));
    assert_non_null(strstr(r.out, "Casey Manager"));
    assert_non_null(strstr(r.out, "grace.hopper@example.org"));
    result_free(&r);

    const char *unknown[] = {"case", other, NULL};
    r = run(unknown);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "not found"));
    result_free(&r);
    const char *bad[] = {"case", "not-a-uuid", NULL};
    r = run(bad);
    assert_int_equal(r.status, 2);
    result_free(&r);
    json_decref(assigned);
}

/* The number on the line of caseflowctl stats whose first word is name; -1 if none. */
static long long stat_value(const char *out, const char *name)
{
    size_t n = strlen(name);
    for (const char *line = out; line != NULL && *line != '\0';) {
        while (*line == ' ')
            line++;
        const char *end = strchr(line, '\n');
        if (strncmp(line, name, n) == 0 && line[n] == ' ') {
            long long v = -1;
            if (sscanf(line + n, "%lld", &v) == 1)
                return v;
        }
        line = end != NULL ? end + 1 : NULL;
    }
    return -1;
}

/* caseflowctl stats counts a new case at the stage of its newest record, and the topics'
 * offsets grow by what was produced. */
static void test_stats(void **state)
{
    (void)state;
    char case_id[CF_UUID_LEN + 1], event_id[CF_UUID_LEN + 1], path[64];
    const char *stats[] = {"stats", NULL};
    struct result before = run(stats);
    if (before.status != 0)
        fail_msg("caseflowctl stats: exit %d: %s", before.status, before.err);
    assert_non_null(strstr(before.out, "consumer lag per service"));
    assert_true(stat_value(before.out, "caseflow-notifier") >= 0);
    assert_true(stat_value(before.out, "caseflow.dlq.scheduler") >= 0);

    /* A case that is reviewed, then rejected: it stands at "rejected". */
    new_uuid(case_id);
    new_uuid(event_id);
    const char *review[] = {"review", case_id, "reject", "--reason", "OUT_OF_SCOPE", NULL};
    struct result r = run(review);
    assert_int_equal(r.status, 0);
    result_free(&r);
    json_t *rejected = json_pack(
        "{s:{s:s, s:s, s:s, s:s, s:s, s:n}, s:s, s:[{s:s, s:{}}], s:{s:s, s:s, s:s, s:s, s:s, "
        "s:n, s:n, s:b, s:b, s:[]}}",
        "meta", "event_id", event_id, "case_id", case_id, "occurred_at",
        "2030-01-01T00:00:00.000Z", "producer", "validation/test", "correlation_id", case_id,
        "causation_id", "priority", "ROUTINE", "reasons", "code", "CONSENT_MISSING", "params",
        "recipient", "given_name", "A", "family_name", "B", "language", "en", "country", "US",
        "time_zone", "UTC", "email", "phone", "consent_email", 0, "consent_sms", 0,
        "contact_windows");
    write_temp_json(path, sizeof(path), rejected);
    const char *produce[] = {"produce", "caseflow.case.rejected", path, NULL};
    r = run(produce);
    assert_int_equal(r.status, 0);
    result_free(&r);
    unlink(path);
    json_decref(rejected);

    struct result after = run(stats);
    assert_int_equal(after.status, 0);
    assert_int_equal(stat_value(after.out, "rejected"), stat_value(before.out, "rejected") + 1);
    assert_true(stat_value(after.out, "caseflow.case.rejected") >
                stat_value(before.out, "caseflow.case.rejected"));
    assert_true(stat_value(after.out, "caseflow.case.reviewed") >
                stat_value(before.out, "caseflow.case.reviewed"));
    result_free(&before);
    result_free(&after);
}

/* ---- dlq list / dlq replay ---------------------------------------------------------------- */

#define DLQ_SOURCE "caseflow.inquiry.submitted"

static void hex(const void *p, size_t len, char *out, size_t cap)
{
    const unsigned char *b = p;
    assert_true(len * 2 < cap);
    for (size_t i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    out[2 * len] = '\0';
}

/* Time a replayed record gets to show up, and then for strays behind it. */
#define REPLAY_WAIT_MS 30000
#define REPLAY_SETTLE_MS 3000

/* Polls consumer until a record keyed keys[0] has come (at most REPLAY_WAIT_MS), then for
 * REPLAY_SETTLE_MS more; returns the records keyed one of keys[0..n) as
 * [{"key", "value_hex" (null for a null value), "headers": [[name, value], ...]}].
 * (cf_kafka_consumer_at_mark cannot end the wait: a consumer that started at the end reports
 * no position for a partition it has read nothing from.) */
static json_t *read_keys(struct cf_kafka_consumer *consumer, char (*keys)[CF_UUID_LEN + 1],
                         size_t n)
{
    char err[512], value_hex[512];
    json_t *found = json_array();
    int64_t deadline = cf_clock_mono_ms() + REPLAY_WAIT_MS;
    bool first_seen = false;
    while (cf_clock_mono_ms() < deadline) {
        struct cf_kafka_record *r = NULL;
        if (cf_kafka_consumer_poll(consumer, 200, &r, err, sizeof(err)) != CF_OK)
            continue;
        for (size_t k = 0; k < n; k++) {
            if (r->key == NULL || r->key_len != strlen(keys[k]) ||
                memcmp(r->key, keys[k], r->key_len) != 0)
                continue;
            json_t *headers = json_array();
            for (size_t i = 0; i < r->header_count; i++) {
                const struct cf_header *h = &r->headers[i];
                json_array_append_new(
                    headers,
                    json_pack("[s, o]", h->name,
                              h->value != NULL ? json_stringn(h->value, h->len) : json_null()));
            }
            if (r->value != NULL)
                hex(r->value, r->value_len, value_hex, sizeof(value_hex));
            json_array_append_new(found, json_pack("{s:s, s:s?, s:o}", "key", keys[k], "value_hex",
                                                   r->value != NULL ? value_hex : NULL, "headers",
                                                   headers));
            if (k == 0 && !first_seen) {
                first_seen = true;
                deadline = cf_clock_mono_ms() + REPLAY_SETTLE_MS;
            }
        }
        cf_kafka_record_release(r);
    }
    return found;
}

/* The dlq list line whose key is key, or NULL. */
static const json_t *line_of_key(const json_t *lines, const char *key)
{
    size_t i;
    const json_t *line;
    json_array_foreach(lines, i, line)
    {
        const char *k = str_at(line, "key", NULL);
        if (k != NULL && strcmp(k, key) == 0)
            return line;
    }
    return NULL;
}

/* ce_type of the synthetic input records: no caseflow event. */
static const char *const dlq_test_type = "caseflow.test.NotAnEvent";

/* Dead letters of this test: replayed, named with an unknown id beside it, value dropped,
 * and one whose source is a topic replay must never write to. */
#define DLQ_TEST_LETTERS 4
#define DLQ_FOREIGN_SOURCE "caseflow.dlq.validation"

static const char *dlq_test_source(size_t i)
{
    return i == 3 ? DLQ_FOREIGN_SOURCE : DLQ_SOURCE;
}

/* Produces dead letters of intake for keys[0..DLQ_TEST_LETTERS) to caseflow.dlq.intake, as
 * intake would have written them for records of dlq_test_source(i) at partition 2, offsets
 * 100.. with value and headers; the third with its value dropped. */
static void produce_test_dead_letters(char (*keys)[CF_UUID_LEN + 1], const char *marker,
                                      const char *value, const struct cf_header *headers,
                                      size_t nheaders)
{
    struct cf_kafka_producer *producer = NULL;
    char err[1024];

    assert_int_equal(cf_kafka_producer_new(NULL, NULL, 30000, &producer, err, sizeof(err)), CF_OK);
    for (size_t i = 0; i < DLQ_TEST_LETTERS; i++) {
        struct cf_dlq_record dlq;
        const struct cf_kafka_record in = {
            .topic = dlq_test_source(i),
            .partition = 2,
            .offset = 100 + (int64_t)i,
            .key = keys[i],
            .key_len = strlen(keys[i]),
            .value = value,
            .value_len = strlen(value),
            .headers = headers,
            .header_count = nheaders,
            .timestamp_ms = -1,
        };
        assert_int_equal(cf_dlq_build(&in, "intake", "decode_failed", marker, 1795000000000LL,
                                      i == 2 ? CF_DLQ_DROP_VALUE : 0, &dlq, err, sizeof(err)),
                         CF_OK);
        cf_status st = cf_kafka_produce_sync(producer, dlq.topic, dlq.key, dlq.key_len, dlq.value,
                                             dlq.value_len, dlq.headers, dlq.header_count, 30000,
                                             err, sizeof(err));
        if (st != CF_OK)
            fail_msg("produce: %s", err);
        cf_dlq_record_clear(&dlq);
    }
    cf_kafka_producer_free(producer);
}

/* The dlq list line of produce_test_dead_letters' dead letter i. */
static void check_listed(const json_t *line, size_t i, const char *marker, size_t value_len)
{
    assert_string_equal(str_at(line, "reason", NULL), "decode_failed");
    assert_string_equal(str_at(line, "error", NULL), marker);
    assert_string_equal(str_at(line, "source_topic", NULL), dlq_test_source(i));
    assert_int_equal(json_integer_value(json_object_get(line, "source_partition")), 2);
    assert_int_equal(json_integer_value(json_object_get(line, "source_offset")), 100 + i);
    assert_string_equal(str_at(line, "service", NULL), "intake");
    assert_string_equal(str_at(line, "failed_at", NULL), "2026-11-18T11:06:40.000Z");
    assert_true(json_is_boolean(json_object_get(line, "value_dropped")));
    assert_int_equal(json_is_true(json_object_get(line, "value_dropped")), i == 2);
    if (i == 2)
        assert_true(json_is_null(json_object_get(line, "value_bytes")));
    else
        assert_int_equal(json_integer_value(json_object_get(line, "value_bytes")), value_len);
    assert_null(json_object_get(line, "value"));
}

/* dlq replay intake --id id skips that dead letter, saying why, and exits 1. */
static void check_replay_skipped(const char *id, const char *why)
{
    const char *args[] = {"dlq", "replay", "intake", "--id", id, NULL};
    struct result r = run(args);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, id));
    assert_non_null(strstr(r.err, why));
    assert_non_null(strstr(r.out, "replayed 0 dead letter(s)"));
    result_free(&r);
}

/* Dead letters of this run on caseflow.dlq.intake: dlq list shows their headers, key and size
 * but never the value; dlq replay --id sends exactly the one named back to its source topic as
 * it was; an unknown --id fails the whole run; a dropped value and a source that is not a
 * caseflow topic are skipped; an unknown service is a usage error. */
static void test_dlq_list_and_replay(void **state)
{
    (void)state;
    char keys[DLQ_TEST_LETTERS][CF_UUID_LEN + 1], marker[CF_UUID_LEN + 1];
    char value_mark[CF_UUID_LEN + 1], event_id[CF_UUID_LEN + 1], value[128];
    char ids[DLQ_TEST_LETTERS][32], want[128];
    struct result r;

    for (size_t i = 0; i < DLQ_TEST_LETTERS; i++)
        new_uuid(keys[i]);
    new_uuid(marker);
    new_uuid(value_mark);
    new_uuid(event_id);
    /* Byte 0 is not the wire format's magic 0: a running intake cannot decode it, so no real
     * case comes of a replayed copy (it is dead-lettered again, under a newer offset). */
    value[0] = (char)0xFF;
    snprintf(value + 1, sizeof(value) - 1, "not avro: dlq test value %s", value_mark);
    const struct cf_header original[] = {
        {"ce_id", event_id, strlen(event_id)},
        {"ce_type", dlq_test_type, strlen(dlq_test_type)},
        {"x-test-null", NULL, 0},
    };
    produce_test_dead_letters(keys, marker, value, original, 3);

    const char *list[] = {"dlq", "list", "intake", NULL};
    r = run(list);
    if (r.status != 0)
        fail_msg("caseflowctl dlq list: exit %d: %s", r.status, r.err);
    if (strstr(r.out, value_mark) != NULL)
        fail_msg("dlq list shows a record's value");
    json_t *lines = json_lines(r.out);
    result_free(&r);
    for (size_t i = 0; i < DLQ_TEST_LETTERS; i++) {
        const json_t *line = line_of_key(lines, keys[i]);
        if (line == NULL)
            fail_msg("dead letter %zu of this run not listed", i);
        check_listed(line, i, marker, strlen(value));
        snprintf(ids[i], sizeof(ids[i]), "%s", str_at(line, "id", NULL));
    }
    json_decref(lines);

    const char *const source[] = {DLQ_SOURCE};
    struct cf_kafka_consumer *consumer = cf_test_consumer_at_end(NULL, source, 1);
    assert_non_null(consumer);

    /* An id that is not there fails the run by name, and the good id beside it is not sent. */
    const char *missing[] = {"dlq", "replay", "intake", "--id", ids[1], "--id", "99:1", NULL};
    r = run(missing);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "99:1"));
    assert_non_null(strstr(r.err, "nothing was replayed"));
    assert_null(strstr(r.out, "replayed"));
    result_free(&r);

    /* A dead letter without its value cannot be replayed; nor can one whose source is not a
     * caseflow topic: a header must not steer records anywhere. */
    check_replay_skipped(ids[2], "dropped");
    check_replay_skipped(ids[3], "not a caseflow topic");

    const char *replay[] = {"dlq", "replay", "intake", "--id", ids[0], NULL};
    r = run(replay);
    if (r.status != 0)
        fail_msg("caseflowctl dlq replay: exit %d: %s", r.status, r.err);
    snprintf(want, sizeof(want), "replayed %s -> %s\n", ids[0], DLQ_SOURCE);
    assert_non_null(strstr(r.out, want));
    assert_non_null(strstr(r.out, "replayed 1 dead letter(s) from caseflow.dlq.intake"));
    result_free(&r);

    /* Exactly the one named arrived, as it was before it failed: key, value, headers. */
    json_t *arrived = read_keys(consumer, keys, DLQ_TEST_LETTERS);
    cf_kafka_consumer_free(consumer);
    if (json_array_size(arrived) != 1) {
        char *dump = json_dumps(arrived, 0);
        fail_msg("expected exactly the replayed record on %s, got %s", DLQ_SOURCE, dump);
    }
    const json_t *got = json_array_get(arrived, 0);
    char value_hex[512];
    hex(value, strlen(value), value_hex, sizeof(value_hex));
    assert_string_equal(str_at(got, "key", NULL), keys[0]);
    assert_string_equal(str_at(got, "value_hex", NULL), value_hex);
    json_t *headers = json_pack("[[s, s], [s, s], [s, n]]", "ce_id", event_id, "ce_type",
                                dlq_test_type, "x-test-null");
    if (!json_equal(headers, json_object_get(got, "headers"))) {
        char *dump = json_dumps(json_object_get(got, "headers"), 0);
        fail_msg("replayed headers differ from the original ones: %s", dump);
    }
    json_decref(headers);
    json_decref(arrived);

    const char *unknown[] = {"dlq", "list", "nosuchservice", NULL};
    r = run(unknown);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "nosuchservice"));
    assert_non_null(strstr(r.err, "intake"));
    assert_string_equal(r.out, "");
    result_free(&r);
}

static void test_tail_stops_on_sigterm(void **state)
{
    (void)state;
    const char *args[] = {"tail", "caseflow.inquiry.submitted", NULL};
    struct child c = spawn(args, NULL, NULL);
    cf_clock_sleep_ms(1500);
    assert_int_equal(kill(c.pid, SIGTERM), 0);
    int64_t start = cf_clock_mono_ms();
    struct result r = collect(c, 15000);
    assert_int_equal(r.status, 0);
    assert_true(cf_clock_mono_ms() - start < 10000);
    result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_and_config_errors),
        cmocka_unit_test(test_topics_create_twice),
        cmocka_unit_test(test_schemas_register),
        cmocka_unit_test(test_produce_and_tail_samples),
        cmocka_unit_test(test_tail_max),
        cmocka_unit_test(test_produce_rejects_bad_files),
        cmocka_unit_test(test_tail_dead_letters),
        cmocka_unit_test(test_case_timeline),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_case_commands),
        cmocka_unit_test(test_dlq_list_and_replay),
        cmocka_unit_test(test_tail_stops_on_sigterm),
    };
    /* A child's stdout closing early must not kill the test. */
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
