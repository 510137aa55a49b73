/* test_kafka_loop.c — the transactional loop (cf_kafka_loop) as a user of it sees it, run in
 * the child process tests/tools/cf_echo_loop (which copies each input record to an output
 * topic) against the Kafka of deploy/stack:
 *   - killed with SIGKILL mid-stream and restarted: exactly one output per input;
 *   - a second instance with the same instance id fences the first, which exits non-zero;
 *   - a second replica joins and the first leaves mid-stream: still exactly once;
 *   - a poison record lands in caseflow.dlq.<service> with error headers, the rest goes on; a
 *     failing handler or batch-end hook retries the batch, whose outputs appear once;
 *   - SIGTERM: the batch in progress is committed and the process exits 0.
 * The children's logs go to ${CF_BINARY_DIR}/tests/cf_echo_loop.<service>.log. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "kafka.h"
#include "log.h"
#include "test_env.h"

#define TIMEOUT_MS 15000
#define TOOL CF_BINARY_DIR "/tests/cf_echo_loop"

extern char **environ;

static struct cf_config *config;
static char run_id[24];
/* Children still running: killed after each test, so a failed assertion leaves none behind. */
static pid_t children[8];
static size_t nchildren;

static const struct cf_config_entry table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
};

static int setup(void **state)
{
    (void)state;
    config = cf_test_kafka_config(table, sizeof(table) / sizeof(table[0]));
    if (config == NULL)
        return -1;
    cf_test_run_id(run_id, sizeof(run_id));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_config_free(config);
    return 0;
}

/* ---- One scenario's names and topics ----------------------------------------------------- */

struct scenario {
    char service[96];
    char input[160];
    char output[160];
    char dlq[160];
    char log[512]; /* prefix: each instance appends ".<instance>.log" */
};

static void scenario_init(struct scenario *s, const char *what, int partitions)
{
    char err[512] = "";
    snprintf(s->service, sizeof(s->service), "echo-%s-%s", what, run_id);
    snprintf(s->input, sizeof(s->input), "cftest.loop.%s.in", s->service);
    snprintf(s->output, sizeof(s->output), "cftest.loop.%s.out", s->service);
    snprintf(s->dlq, sizeof(s->dlq), "caseflow.dlq.%s", s->service);
    snprintf(s->log, sizeof(s->log), "%s/tests/cf_echo_loop.%s", CF_BINARY_DIR, s->service);
    const struct cf_topic_spec specs[] = {
        {s->input, partitions, 1, "delete", 3600000},
        {s->output, partitions, 1, "delete", 3600000},
        {s->dlq, 1, 1, "delete", 3600000},
    };
    assert_int_equal(cf_kafka_create_topics(config, specs, 3, TIMEOUT_MS, err, sizeof(err)), CF_OK);
    fprintf(stderr, "scenario %s: logs in %s.*.log\n", s->service, s->log);
}

/* A record whose value is <prefix>-<index> instead of v<index>, for cf_echo_loop's error
 * paths (POISON, FLAKY, BIG). */
struct special {
    int index;
    const char *prefix;
};

/* Produces n records k00000.. with values v00000.. (or the special ones), each with a header
 * trace=t-<i>. */
static void produce_special(const struct scenario *s, int n, const struct special *specials,
                            size_t nspecials)
{
    struct cf_kafka_producer *p = NULL;
    char err[512] = "";

    assert_int_equal(cf_kafka_producer_new(config, NULL, TIMEOUT_MS, &p, err, sizeof(err)), CF_OK);
    for (int i = 0; i < n; i++) {
        char key[16], value[32], trace[16];
        int kl = snprintf(key, sizeof(key), "k%05d", i);
        int vl = snprintf(value, sizeof(value), "v%05d", i);
        for (size_t j = 0; j < nspecials; j++)
            if (specials[j].index == i)
                vl = snprintf(value, sizeof(value), "%s-%d", specials[j].prefix, i);
        int tl = snprintf(trace, sizeof(trace), "t-%d", i);
        const struct cf_header h = {"trace", trace, (size_t)tl};
        assert_int_equal(cf_kafka_produce(p, s->input, key, (size_t)kl, value, (size_t)vl, &h, 1,
                                          err, sizeof(err)),
                         CF_OK);
    }
    assert_int_equal(cf_kafka_producer_flush(p, TIMEOUT_MS, err, sizeof(err)), CF_OK);
    cf_kafka_producer_free(p);
}

static void produce_inputs(const struct scenario *s, int n)
{
    produce_special(s, n, NULL, 0);
}

/* ---- The child process ------------------------------------------------------------------- */

static void log_path(const struct scenario *s, const char *instance, char *buf, size_t len)
{
    snprintf(buf, len, "%s.%s.log", s->log, instance);
}

/* Starts cf_echo_loop for scenario s with instance id instance, a per-record pause and batch
 * settings; its stderr is appended to <s->log>.<instance>.log. */
static pid_t spawn(const struct scenario *s, const char *instance, long sleep_us, int batch_records,
                   int batch_ms)
{
    static char vars[9][128];
    char path[600];
    char *envp[128];
    size_t n = 0;
    char sleep_arg[32];

    /* The test's environment without CASEFLOW_ (the tool's config rejects unknown ones), then
     * the settings of this run. KAFKA_ passes through, so a different broker still works. */
    for (char **e = environ; *e != NULL && n < 100; e++)
        if (strncmp(*e, "CASEFLOW_", 9) != 0)
            envp[n++] = *e;
    snprintf(vars[0], sizeof(vars[0]), "CASEFLOW_INSTANCE_ID=%s", instance);
    snprintf(vars[1], sizeof(vars[1]), "CASEFLOW_BATCH_MAX_RECORDS=%d", batch_records);
    snprintf(vars[2], sizeof(vars[2]), "CASEFLOW_BATCH_MAX_MS=%d", batch_ms);
    snprintf(vars[3], sizeof(vars[3]), "CASEFLOW_RETRY_BACKOFF_MS=100");
    snprintf(vars[4], sizeof(vars[4]), "CASEFLOW_LOG_LEVEL=info");
    /* A member killed without leaving the group holds its partitions until its session times
     * out: 6 s (the broker's minimum) keeps the restart test short. */
    snprintf(vars[5], sizeof(vars[5]), "KAFKA_SESSION_TIMEOUT_MS=6000");
    /* Members learn of a rebalance from a heartbeat: every 0.5 s instead of 3 s. */
    snprintf(vars[6], sizeof(vars[6]), "KAFKA_HEARTBEAT_INTERVAL_MS=500");
    size_t nvars = 7;
    /* In the sanitizer build a child's report must not look like the loop's own exit 1. */
    if (getenv("ASAN_OPTIONS") == NULL)
        snprintf(vars[nvars++], sizeof(vars[0]), "ASAN_OPTIONS=exitcode=86");
    if (getenv("UBSAN_OPTIONS") == NULL)
        snprintf(vars[nvars++], sizeof(vars[0]), "UBSAN_OPTIONS=exitcode=86:print_stacktrace=1");
    for (size_t i = 0; i < nvars; i++)
        envp[n++] = vars[i];
    envp[n] = NULL;
    snprintf(sleep_arg, sizeof(sleep_arg), "%ld", sleep_us);
    char *argv[] = {TOOL,
                    (char *)s->service,
                    (char *)s->service,
                    (char *)s->input,
                    (char *)s->output,
                    sleep_arg,
                    NULL};

    log_path(s, instance, path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    assert_true(fd >= 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Only async-signal-safe calls between fork and exec: the parent has threads. */
        (void)dup2(fd, STDERR_FILENO);
        (void)execve(TOOL, argv, envp);
        _exit(127);
    }
    close(fd);
    if (nchildren < sizeof(children) / sizeof(children[0]))
        children[nchildren++] = pid;
    return pid;
}

static void forget_child(pid_t pid)
{
    for (size_t i = 0; i < nchildren; i++) {
        if (children[i] == pid) {
            children[i] = children[--nchildren];
            return;
        }
    }
}

static int kill_children(void **state)
{
    (void)state;
    while (nchildren > 0) {
        pid_t pid = children[--nchildren];
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return 0;
}

/* Waits up to timeout_ms for pid to exit; returns its exit status, 128 + signal if killed, or
 * -1 after a timeout (the child is then killed). */
static int wait_exit(pid_t pid, int timeout_ms)
{
    int64_t deadline = cf_clock_mono_ms() + timeout_ms;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (cf_clock_mono_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            forget_child(pid);
            return -1;
        }
        cf_clock_sleep_ms(20);
    }
    forget_child(pid);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

/* Waits until the service's group has committed at least min input offsets (or, with min < 0,
 * until it has no lag left); returns the committed total. Fails the test after timeout_ms. */
static int64_t wait_committed(const struct scenario *s, int64_t min, int timeout_ms)
{
    struct cf_kafka_group_progress progress = {0, 0, 0};
    char err[512] = "";
    int64_t deadline = cf_clock_mono_ms() + timeout_ms;

    while (cf_clock_mono_ms() < deadline) {
        if (cf_kafka_group_progress(config, s->service, s->input, TIMEOUT_MS, &progress, err,
                                    sizeof(err)) == CF_OK &&
            (min >= 0 ? progress.committed >= min : progress.end > 0 && progress.lag == 0))
            return progress.committed;
        cf_clock_sleep_ms(50);
    }
    fail_msg("group %s: committed %" PRId64 " of %" PRId64 " after %d ms (%s)", s->service,
             progress.committed, progress.end, timeout_ms, err);
    return -1;
}

/* Waits until the log of instance holds text (a JSON fragment); fails after timeout_ms. */
static void wait_log(const struct scenario *s, const char *instance, const char *text,
                     int timeout_ms)
{
    char path[600];
    static char buf[1 << 20];
    int64_t deadline = cf_clock_mono_ms() + timeout_ms;

    log_path(s, instance, path, sizeof(path));
    while (cf_clock_mono_ms() < deadline) {
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            size_t n = fread(buf, 1, sizeof(buf) - 1, f);
            fclose(f);
            buf[n] = '\0';
            if (strstr(buf, text) != NULL)
                return;
        }
        cf_clock_sleep_ms(50);
    }
    fail_msg("%s: no %s after %d ms", path, text, timeout_ms);
}

/* The number after "<key>": in the first line of instance's log that holds event (a JSON
 * fragment such as "\"event\":\"kafka_loop_stopping\""); fails if there is none. */
static long long log_number(const struct scenario *s, const char *instance, const char *event,
                            const char *key)
{
    char path[600], field[64], line[4096];
    long long value = -1;
    log_path(s, instance, path, sizeof(path));
    snprintf(field, sizeof(field), "\"%s\":", key);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    while (value < 0 && fgets(line, sizeof(line), f) != NULL) {
        const char *at = strstr(line, event) != NULL ? strstr(line, field) : NULL;
        if (at != NULL)
            value = strtoll(at + strlen(field), NULL, 10);
    }
    fclose(f);
    if (value < 0)
        fail_msg("%s: no %s with %s", path, event, field);
    return value;
}

/* ---- Reading the results ----------------------------------------------------------------- */

/* Reads topic from the start without a group until at least expect records came and then
 * nothing more for a second (or timeout_ms passed). counts[i] counts the records keyed
 * k<i> (i < n); returns the total. */
static int read_topic(const char *topic, bool read_uncommitted, int expect, int *counts, int n,
                      int timeout_ms)
{
    struct cf_kafka_consumer *c = NULL;
    struct cf_kafka_consumer_options opts = {false, read_uncommitted, "earliest"};
    const char *topics[] = {topic};
    char err[512] = "";
    int total = 0;
    int64_t deadline = cf_clock_mono_ms() + timeout_ms;
    int64_t last = cf_clock_mono_ms();

    if (counts != NULL)
        memset(counts, 0, sizeof(*counts) * (size_t)n);
    assert_int_equal(cf_kafka_consumer_new(config, NULL, topics, 1, &opts, &c, err, sizeof(err)),
                     CF_OK);
    while (cf_clock_mono_ms() < deadline && (total < expect || cf_clock_mono_ms() - last < 1000)) {
        struct cf_kafka_record *r = NULL;
        cf_status st = cf_kafka_consumer_poll(c, 200, &r, err, sizeof(err));
        if (st != CF_OK)
            continue;
        total++;
        last = cf_clock_mono_ms();
        if (counts != NULL && r->key_len == 6 && ((const char *)r->key)[0] == 'k') {
            char digits[6];
            memcpy(digits, (const char *)r->key + 1, 5);
            digits[5] = '\0';
            int i = (int)strtol(digits, NULL, 10);
            char expect_value[16];
            snprintf(expect_value, sizeof(expect_value), "v%05d", i);
            if (i >= 0 && i < n) {
                counts[i]++;
                /* The output carries the input's value. */
                assert_int_equal(r->value_len, 6);
                assert_memory_equal(r->value, expect_value, 6);
            }
        }
        cf_kafka_record_release(r);
    }
    cf_kafka_consumer_free(c);
    return total;
}

/* Every one of the n inputs appears exactly once in counts, but those whose counts[i] must be
 * 0 (skip[0..nskip)). */
static void assert_exactly_once_but(const int *counts, int n, const int *skip, size_t nskip)
{
    int missing = 0;
    int duplicated = 0;
    int unexpected = 0;
    for (int i = 0; i < n; i++) {
        bool skipped = false;
        for (size_t j = 0; j < nskip; j++)
            skipped = skipped || skip[j] == i;
        if (skipped) {
            unexpected += counts[i] != 0;
            continue;
        }
        missing += counts[i] == 0;
        duplicated += counts[i] > 1;
    }
    if (missing > 0 || duplicated > 0 || unexpected > 0)
        fail_msg("%d inputs lost, %d duplicated, %d dead letters with outputs", missing, duplicated,
                 unexpected);
}

static void assert_exactly_once(const int *counts, int n)
{
    assert_exactly_once_but(counts, n, NULL, 0);
}

/* ---- The scenarios ----------------------------------------------------------------------- */

/* SIGKILL mid-stream, restart with the same instance id: nothing lost, nothing doubled. */
static void test_sigkill_restart_exactly_once(void **state)
{
    (void)state;
    enum { N = 2000 };
    static int counts[N];
    struct scenario s;
    int64_t t0 = cf_clock_mono_ms();

    scenario_init(&s, "kill", 3);
    produce_inputs(&s, N);
    int64_t t1 = cf_clock_mono_ms();

    pid_t pid = spawn(&s, "i1", 1000, 50, 100);
    int64_t at_kill = wait_committed(&s, 500, 60000);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(wait_exit(pid, 5000), 128 + SIGKILL);
    int64_t t2 = cf_clock_mono_ms();
    /* Records of the transaction the kill interrupted are in the log, not yet aborted. */
    int visible = read_topic(s.output, true, 0, NULL, 0, 3000);
    fprintf(stderr, "killed after %" PRId64 " committed inputs; read_uncommitted sees %d outputs\n",
            at_kill, visible);
    assert_true(at_kill < N); /* the kill landed mid-stream */

    pid = spawn(&s, "i1", 1000, 50, 100);
    wait_committed(&s, -1, 90000);
    int64_t t3 = cf_clock_mono_ms();
    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(wait_exit(pid, 20000), 0);

    int total = read_topic(s.output, false, N, counts, N, 30000);
    assert_exactly_once(counts, N);
    assert_int_equal(total, N);
    int uncommitted = read_topic(s.output, true, N, NULL, 0, 30000);
    fprintf(stderr,
            "read_committed: %d outputs for %d inputs; read_uncommitted: %d (aborted included)\n",
            total, N, uncommitted);
    assert_true(uncommitted >= N);
    fprintf(stderr,
            "timings: produce %" PRId64 " ms, run until kill %" PRId64
            " ms, restart to done %" PRId64 " ms, verify %" PRId64 " ms\n",
            t1 - t0, t2 - t1, t3 - t2, cf_clock_mono_ms() - t3);
}

/* A second instance with the same id fences the first: the first exits non-zero, the second
 * finishes, and still every input has exactly one output. */
static void test_same_instance_fences_zombie(void **state)
{
    (void)state;
    enum { N = 600 };
    static int counts[N];
    struct scenario s;

    scenario_init(&s, "fence", 2);
    produce_inputs(&s, N);
    pid_t first = spawn(&s, "i1", 3000, 20, 100);
    wait_committed(&s, 40, 60000);
    pid_t second = spawn(&s, "i1", 0, 50, 100);
    int64_t t0 = cf_clock_mono_ms();
    int status = wait_exit(first, 60000);
    fprintf(stderr, "first instance exited with %d %" PRId64 " ms after the second started\n",
            status, cf_clock_mono_ms() - t0);
    assert_int_equal(status, 1);
    wait_committed(&s, -1, 90000);
    assert_int_equal(kill(second, SIGTERM), 0);
    assert_int_equal(wait_exit(second, 20000), 0);

    int total = read_topic(s.output, false, N, counts, N, 30000);
    assert_exactly_once(counts, N);
    assert_int_equal(total, N);
}

/* A second replica joins mid-stream (a cooperative rebalance moves partitions while batches
 * are being collected), then the first leaves on SIGTERM: still exactly one output per input. */
static void test_rebalance_exactly_once(void **state)
{
    (void)state;
    enum { N = 1500 };
    static int counts[N];
    struct scenario s;

    scenario_init(&s, "scale", 4);
    produce_inputs(&s, N);
    pid_t a = spawn(&s, "a", 4000, 20, 100);
    int64_t first = wait_committed(&s, 100, 60000);
    pid_t b = spawn(&s, "b", 4000, 20, 100);
    /* b gets its share while a goes on (a cooperative rebalance: a keeps the rest). */
    wait_log(&s, "b", "\"change\":\"assigned\"", 30000);
    wait_log(&s, "a", "\"change\":\"revoked\"", 30000);
    int64_t mid = wait_committed(&s, first + 300, 60000);
    assert_true(mid < N);
    assert_int_equal(kill(a, SIGTERM), 0);
    assert_int_equal(wait_exit(a, 20000), 0);
    wait_committed(&s, -1, 90000);
    assert_int_equal(kill(b, SIGTERM), 0);
    assert_int_equal(wait_exit(b, 20000), 0);

    int total = read_topic(s.output, false, N, counts, N, 30000);
    assert_exactly_once(counts, N);
    assert_int_equal(total, N);
}

/* Reads the next dead letter (or NULL within a second) and checks its key, value and
 * headers: the original trace header plus the dlq.* ones. */
static struct cf_kafka_record *next_dead_letter(struct cf_kafka_consumer *c, int timeout_ms)
{
    struct cf_kafka_record *r = NULL;
    char err[512] = "";
    int64_t deadline = cf_clock_mono_ms() + timeout_ms;
    while (r == NULL && cf_clock_mono_ms() < deadline)
        (void)cf_kafka_consumer_poll(c, 200, &r, err, sizeof(err));
    return r;
}

static void check_dead_letter(const struct scenario *s, const struct cf_kafka_record *r, int index,
                              const char *value, const char *reason, const char *error)
{
    char key[16], offset[24], trace[16];
    snprintf(key, sizeof(key), "k%05d", index);
    snprintf(offset, sizeof(offset), "%d", index); /* one partition, no markers: offset = i */
    snprintf(trace, sizeof(trace), "t-%d", index);

    assert_int_equal(r->key_len, strlen(key));
    assert_memory_equal(r->key, key, r->key_len);
    assert_int_equal(r->value_len, strlen(value));
    assert_memory_equal(r->value, value, r->value_len);
    const struct {
        const char *name;
        const char *value; /* NULL: only checked for presence */
    } want[] = {
        {"trace", trace},
        {"dlq.reason", reason},
        {"dlq.error", error},
        {"dlq.source.topic", s->input},
        {"dlq.source.partition", "0"},
        {"dlq.source.offset", offset},
        {"dlq.service", s->service},
        {"dlq.failed_at", NULL},
    };
    for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
        const struct cf_header *h = NULL;
        for (size_t i = 0; i < r->header_count; i++)
            if (strcmp(r->headers[i].name, want[w].name) == 0)
                h = &r->headers[i];
        if (h == NULL)
            fail_msg("dead letter of %s without header %s", key, want[w].name);
        if (want[w].value != NULL) {
            assert_int_equal(h->len, strlen(want[w].value));
            assert_memory_equal(h->value, want[w].value, h->len);
        } else {
            assert_int_equal(h->len, 24); /* 2026-11-24T03:00:00.123Z */
            assert_int_equal(((const char *)h->value)[23], 'Z');
        }
    }
}

/* Records that can never succeed go to the dead-letter topic with their key, value and
 * headers and the error headers, and the records after them are processed: one the handler
 * cannot decode (POISON) and one whose output is larger than Kafka takes (BIG, dead-lettered
 * before any output of it is produced, so the transaction goes on). A record whose handler fails with a
 * retriable error (FLAKY, twice) is retried, not dead-lettered, and output once; so is a batch
 * whose batch-end hook fails (ENDFAIL, twice): the aborted attempts' outputs never show. The
 * loop's stop line counts those aborts, and at least as many errors. */
static void test_poison_goes_to_dlq(void **state)
{
    (void)state;
    enum { N = 20, FLAKY = 3, POISON = 7, BIG = 12, ENDFAIL = 16 };
    const struct special specials[] = {
        {FLAKY, "FLAKY"}, {POISON, "POISON"}, {BIG, "BIG"}, {ENDFAIL, "ENDFAIL"}};
    const int dead[] = {POISON, BIG};
    int counts[N];
    struct scenario s;
    char err[512] = "";

    scenario_init(&s, "poison", 1);
    produce_special(&s, N, specials, 4);
    pid_t pid = spawn(&s, "i1", 0, 5, 50); /* several batches: the bad ones are not the last */
    wait_committed(&s, -1, 60000);
    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(wait_exit(pid, 20000), 0);
    wait_log(&s, "i1", "\"event\":\"batch_retry_scheduled\"", 1000);
    wait_log(&s, "i1", "\"event\":\"batch_end_failed\"", 1000);
    /* FLAKY's two handler failures and ENDFAIL's two hook failures each aborted a batch and
     * count as errors (dead letters do not); the shared broker may add Kafka errors. */
    const char *stopping = "\"event\":\"kafka_loop_stopping\"";
    long long aborts = log_number(&s, "i1", stopping, "aborts");
    long long errors = log_number(&s, "i1", stopping, "errors");
    fprintf(stderr, "aborts %lld, errors %lld\n", aborts, errors);
    assert_true(aborts >= 4);
    assert_true(errors >= aborts);

    int total = read_topic(s.output, false, N - 2, counts, N, 30000);
    assert_exactly_once_but(counts, N, dead, 2);
    assert_int_equal(total, N - 2);

    struct cf_kafka_consumer *c = NULL;
    const char *topics[] = {s.dlq};
    assert_int_equal(cf_kafka_consumer_new(config, NULL, topics, 1, NULL, &c, err, sizeof(err)),
                     CF_OK);
    struct cf_kafka_record *r = next_dead_letter(c, TIMEOUT_MS);
    assert_non_null(r);
    check_dead_letter(&s, r, POISON, "POISON-7", "decode_failed",
                      "value: unknown format (test poison)");
    cf_kafka_record_release(r);
    r = next_dead_letter(c, TIMEOUT_MS);
    assert_non_null(r);
    check_dead_letter(&s, r, BIG, "BIG-12", "output_rejected",
                      "an output is larger than message.max.bytes");
    cf_kafka_record_release(r);
    /* And no other. */
    r = next_dead_letter(c, 1000);
    assert_null(r);
    cf_kafka_consumer_free(c);
}

/* SIGTERM in the middle of a batch: the batch is finished and committed, the process exits 0,
 * and the outputs are exactly the committed inputs. */
static void test_sigterm_commits_last_batch(void **state)
{
    (void)state;
    enum { N = 300 };
    int counts[N];
    struct scenario s;
    struct cf_kafka_group_progress after;
    char err[512] = "";

    scenario_init(&s, "term", 1);
    produce_inputs(&s, N);
    /* Batches of 100 taking about a second each (10 ms per record). */
    pid_t pid = spawn(&s, "i1", 10000, 100, 5000);
    int64_t at_term = wait_committed(&s, 100, 60000);
    assert_int_equal(kill(pid, SIGTERM), 0);
    int64_t t0 = cf_clock_mono_ms();
    assert_int_equal(wait_exit(pid, 20000), 0);
    int64_t exit_ms = cf_clock_mono_ms() - t0;

    assert_int_equal(
        cf_kafka_group_progress(config, s.service, s.input, TIMEOUT_MS, &after, err, sizeof(err)),
        CF_OK);
    fprintf(stderr,
            "SIGTERM at %" PRId64 " committed inputs; exit 0 after %" PRId64 " ms with %" PRId64
            " committed\n",
            at_term, exit_ms, after.committed);
    /* The batch in progress when the signal came was committed, not dropped... */
    assert_true(after.committed > at_term);
    assert_true(after.committed < N); /* ...and no new batch was started */
    /* Outputs are exactly the inputs below the committed offset. */
    int total = read_topic(s.output, false, (int)after.committed, counts, N, 30000);
    assert_int_equal(total, after.committed);
    for (int i = 0; i < N; i++)
        assert_int_equal(counts[i], i < after.committed ? 1 : 0);
}

int main(void)
{
    cf_log_init("test_kafka_loop", CF_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_sigkill_restart_exactly_once, kill_children),
        cmocka_unit_test_teardown(test_same_instance_fences_zombie, kill_children),
        cmocka_unit_test_teardown(test_rebalance_exactly_once, kill_children),
        cmocka_unit_test_teardown(test_poison_goes_to_dlq, kill_children),
        cmocka_unit_test_teardown(test_sigterm_commits_last_batch, kill_children),
    };
    /* CF_TEST_FILTER=test_poison* runs only the matching tests. */
    if (getenv("CF_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("CF_TEST_FILTER"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
