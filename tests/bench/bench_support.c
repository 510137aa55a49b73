/* bench_support.c — what the benchmarks share (see bench_support.h). */
#include "bench_support.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "kafka.h"
#include "redis.h"

int64_t cf_bench_now_us(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

void cf_bench_sort(int64_t *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof(v[0]), cmp_i64);
}

int64_t cf_bench_rank(const int64_t *sorted, size_t n, double q)
{
    if (n == 0)
        return 0;
    /* Nearest rank: the smallest value with at least q of the samples at or below it. */
    size_t rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

/* The number after "<key>:" in /proc/<pid>/status, or -1. */
static long status_kib(pid_t pid, const char *key)
{
    char path[64], line[256];
    long kib = -1;
    size_t klen = strlen(key);
    (void)snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            char *end = NULL;
            errno = 0;
            long v = strtol(line + klen + 1, &end, 10);
            if (errno == 0 && end != line + klen + 1)
                kib = v;
            break;
        }
    }
    (void)fclose(f);
    return kib;
}

long cf_bench_vmhwm_kib(pid_t pid)
{
    return status_kib(pid, "VmHWM");
}

long cf_bench_vmrss_kib(pid_t pid)
{
    return status_kib(pid, "VmRSS");
}

void cf_bench_rss_split_kib(pid_t pid, long *anon, long *file)
{
    *anon = status_kib(pid, "RssAnon");
    *file = status_kib(pid, "RssFile");
}

int64_t cf_bench_cpu_ms(pid_t pid)
{
    char path[64], buf[1024];
    int64_t result = -1;
    (void)snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t got = fread(buf, 1, sizeof(buf) - 1, f);
    (void)fclose(f);
    buf[got] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: fields are counted from the
     * last ')'. utime and stime are fields 14 and 15, in clock ticks. */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    p++;
    unsigned long long utime = 0, stime = 0;
    for (int field = 3; field <= 15 && p != NULL; field++) {
        while (*p == ' ')
            p++;
        char *end = NULL;
        if (field == 14 || field == 15) {
            errno = 0;
            unsigned long long v = strtoull(p, &end, 10);
            if (errno != 0 || end == p)
                return -1;
            *(field == 14 ? &utime : &stime) = v;
        }
        p = strchr(p, ' ');
    }
    long ticks = sysconf(_SC_CLK_TCK);
    if (ticks > 0)
        result = (int64_t)((utime + stime) * 1000ULL / (unsigned long long)ticks);
    return result;
}

size_t cf_bench_warn_others(const char *comm, const pid_t *mine, size_t n)
{
    size_t found = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char *end = NULL, path[300], name[32] = "";
        long pid = strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != '\0' || pid <= 0)
            continue;
        bool own = false;
        for (size_t i = 0; i < n; i++)
            own |= mine[i] == (pid_t)pid;
        (void)snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fgets(name, sizeof(name), f) != NULL)
            name[strcspn(name, "\n")] = '\0';
        (void)fclose(f);
        if (own || strcmp(name, comm) != 0)
            continue;
        found++;
        printf("  WARNING: another %s runs (pid %ld); it shares the service's consumer group, so "
               "this run's figures are not its own\n",
               comm, pid);
    }
    (void)closedir(d);
    return found;
}

bool cf_bench_wait_idle(const pid_t *pids, size_t n, int timeout_ms, int64_t *waited_ms)
{
    int64_t t0 = cf_bench_now_us();
    for (;;) {
        int64_t before = 0, after = 0;
        for (size_t i = 0; i < n; i++)
            before += cf_bench_cpu_ms(pids[i]);
        cf_clock_sleep_ms(1000);
        for (size_t i = 0; i < n; i++)
            after += cf_bench_cpu_ms(pids[i]);
        *waited_ms = (cf_bench_now_us() - t0) / 1000;
        if (after - before < 30)
            return true;
        if (*waited_ms > timeout_ms)
            return false;
    }
}

int64_t cf_bench_machine_busy_ms(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL)
        return -1;
    /* cpu  user nice system idle iowait irq softirq steal (clock ticks) */
    int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                     &v[4], &v[5], &v[6], &v[7]);
    (void)fclose(f);
    long ticks = sysconf(_SC_CLK_TCK);
    if (got != 8 || ticks <= 0)
        return -1;
    unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    return (int64_t)(busy * 1000ULL / (unsigned long long)ticks);
}

void cf_bench_redis_prefix(const char *run_id, char *out, size_t len)
{
    (void)snprintf(out, len, "caseflow-bench:%s:", run_id);
}

/* One SCAN step over the keys matching ARGV[2] (ARGV[3] slots), unlinking what it finds;
 * returns {next cursor, keys unlinked}. Running it twice unlinks nothing more, so the module
 * may resend it. */
static const char drop_script[] =
    "local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])\n"
    "for _, k in ipairs(r[2]) do redis.call('UNLINK', k) end\n"
    "return {r[1], #r[2]}\n";

bool cf_bench_redis_drop(const char *prefix)
{
    char err[512], cursor[32] = "0", pattern[128];
    struct cf_redis *r = NULL;
    struct cf_redis_script *script = NULL;
    struct cf_redis_value *reply = NULL;
    const char *host = getenv("CASEFLOW_REDIS_HOST");
    const char *port_text = getenv("CASEFLOW_REDIS_PORT");
    long long port = 16379, deleted = 0, steps = 0;
    bool ok = false;
    int64_t t0 = cf_bench_now_us();

    if (port_text != NULL && !cf_bench_parse_ll("CASEFLOW_REDIS_PORT", port_text, 1, 65535, &port))
        return false;
    /* Only the characters a prefix may hold, so nothing in it is a glob pattern. */
    if (strspn(prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/-") !=
            strlen(prefix) ||
        strlen(prefix) < 16) {
        fprintf(stderr, "redis cleanup: refusing an unusual prefix\n");
        return false;
    }
    (void)snprintf(pattern, sizeof(pattern), "%s*", prefix);
    if (cf_redis_new(host != NULL ? host : "127.0.0.1", (int)port, 2000, 30000, &r, err,
                     sizeof(err)) != CF_OK ||
        cf_redis_script_new(drop_script, CF_REDIS_SCRIPT_IDEMPOTENT, &script, err, sizeof(err)) !=
            CF_OK)
        goto out;
    do {
        const char *args[] = {cursor, pattern, "10000"};
        if (cf_redis_script_run(r, script, 0, NULL, 3, args, NULL, &reply, err, sizeof(err)) !=
            CF_OK)
            goto out;
        if (reply->type != CF_REDIS_ARRAY || reply->count != 2 ||
            reply->elements[0].type != CF_REDIS_STRING ||
            reply->elements[0].len >= sizeof(cursor) || reply->elements[1].type != CF_REDIS_INT) {
            (void)snprintf(err, sizeof(err), "unexpected reply from the SCAN script");
            goto out;
        }
        memcpy(cursor, reply->elements[0].str, reply->elements[0].len + 1);
        deleted += reply->elements[1].integer;
        steps++;
        cf_redis_value_free(reply);
        reply = NULL;
    } while (strcmp(cursor, "0") != 0);
    ok = true;
    printf("  redis: %lld keys of this run deleted (prefix %s) in %.1f s, %lld SCAN steps\n",
           deleted, prefix, (double)(cf_bench_now_us() - t0) / 1e6, steps);
out:
    if (!ok)
        fprintf(stderr, "redis cleanup of %s failed: %s\n", prefix, err);
    cf_redis_value_free(reply);
    cf_redis_script_free(script);
    cf_redis_free(r);
    return ok;
}

void cf_bench_ignore_sigpipe(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    (void)sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGPIPE, &sa, NULL);
}

bool cf_bench_parse_ll(const char *what, const char *text, long long min, long long max,
                       long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = text != NULL ? strtoll(text, &end, 10) : 0;
    if (text == NULL || end == text || *end != '\0' || errno != 0 || v < min || v > max) {
        fprintf(stderr, "%s: expected a whole number from %lld to %lld\n", what, min, max);
        return false;
    }
    *out = v;
    return true;
}

bool cf_bench_parse_args(const struct cf_bench_args *a, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(o, "--warmup") == 0)
            ok = cf_bench_parse_ll(o, v, 1, 1000000, a->warmup), i++;
        else if (strcmp(o, "--rate") == 0)
            ok = cf_bench_parse_ll(o, v, 0, 10000000, a->rate), i++;
        else if (strcmp(o, "--timeout-s") == 0)
            ok = cf_bench_parse_ll(o, v, 1, 86400, a->timeout_s), i++;
        else if (strcmp(o, "--keep-logs") == 0)
            *a->keep_logs = true;
        else if (strcmp(o, "--keep-backlog") == 0 && a->keep_backlog != NULL)
            *a->keep_backlog = true;
        else if (strcmp(o, "--env") == 0) {
            if (v == NULL || strchr(v, '=') == NULL || strlen(v) >= 160 ||
                *a->n_extra == a->max_extra) {
                fprintf(stderr, "--env: NAME=VALUE, under 160 bytes, at most %zu\n", a->max_extra);
                ok = false;
            } else {
                a->extra_env[(*a->n_extra)++] = v;
            }
            i++;
        } else if (o[0] != '-' && i == 1)
            ok = cf_bench_parse_ll("N", o, 1, 9000000, a->n);
        else
            ok = false;
        if (!ok)
            return false;
    }
    if (*a->n + *a->warmup > 9999999) {
        fprintf(stderr, "N + W must stay below 10,000,000 (unique ids and phone numbers)\n");
        return false;
    }
    return true;
}

bool cf_bench_random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char bytes[64];
    bool ok = false;
    if (n > sizeof(bytes))
        return false;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f == NULL)
        return false;
    if (fread(bytes, 1, n, f) == n) {
        for (size_t i = 0; i < n; i++) {
            out[2 * i] = hex[bytes[i] >> 4];
            out[2 * i + 1] = hex[bytes[i] & 15];
        }
        out[2 * n] = '\0';
        ok = true;
    }
    (void)fclose(f);
    return ok;
}

void cf_bench_print_command(int argc, char **argv)
{
    printf("  command:");
    for (int i = 0; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\n");
}

void cf_bench_print_machine(void)
{
    char load[128] = "unknown";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        if (fgets(load, sizeof(load), f) != NULL)
            load[strcspn(load, "\n")] = '\0';
        (void)fclose(f);
    }
    printf("  machine: %ld online CPUs, Kafka, registry and Redis on it too; /proc/loadavg at "
           "start: %s\n",
           sysconf(_SC_NPROCESSORS_ONLN), load);
}

json_t *cf_bench_last_log_line(const char *path, const char *needle)
{
    char *line = NULL;
    size_t cap = 0;
    json_t *last = NULL;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    while (getline(&line, &cap, f) > 0) {
        if (strstr(line, needle) == NULL)
            continue;
        json_t *obj = json_loads(line, 0, NULL);
        if (obj == NULL)
            continue;
        json_decref(last);
        last = obj;
    }
    free(line);
    (void)fclose(f);
    return last;
}

size_t cf_bench_load_samples(const char *dir, json_t **samples, size_t max)
{
    char pattern[1024];
    glob_t g;
    size_t n = 0;
    (void)snprintf(pattern, sizeof(pattern), "%s/inquiry-*.json", dir);
    if (glob(pattern, 0, NULL, &g) != 0) {
        fprintf(stderr, "no sample inquiries match %s\n", pattern);
        return 0;
    }
    for (size_t i = 0; i < g.gl_pathc && n < max; i++) {
        json_error_t jerr;
        json_t *doc = json_load_file(g.gl_pathv[i], 0, &jerr);
        if (!json_is_object(doc)) {
            /* jerr.text may quote the file; the samples are synthetic, but say where only. */
            fprintf(stderr, "%s: not a JSON object (line %d)\n", g.gl_pathv[i], jerr.line);
            json_decref(doc);
            for (size_t k = 0; k < n; k++)
                json_decref(samples[k]);
            n = 0;
            break;
        }
        samples[n++] = doc;
    }
    globfree(&g);
    return n;
}

/* Sets key of the object at parent.name (if that object exists) to value; takes value. */
static int set_in(json_t *parent, const char *name, const char *key, json_t *value)
{
    json_t *obj = json_object_get(parent, name);
    if (!json_is_object(obj)) {
        json_decref(value);
        return 0;
    }
    return json_object_set_new(obj, key, value);
}

json_t *cf_bench_inquiry(json_t *const *samples, size_t n, uint64_t i, const char *tag)
{
    char email[96], phone[24];
    json_t *inq = json_deep_copy(samples[i % n]);
    if (inq == NULL)
        return NULL;
    (void)snprintf(email, sizeof(email), "bench.%s.%" PRIu64 "@example.com", tag, i);
    (void)snprintf(phone, sizeof(phone), "+1555%07" PRIu64, i % 10000000);
    /* -1 only when a sample lacks the field: nothing to remove then. */
    (void)json_object_del(inq, "inquiry_id");
    (void)json_object_del(inq, "idempotency_key");
    json_t *contact = json_object_get(inq, "contact");
    json_t *guardian = json_object_get(inq, "guardian");
    int bad = set_in(inq, "contact", "email", json_string(email));
    if (json_is_string(json_object_get(contact, "phone")))
        bad |= set_in(inq, "contact", "phone", json_string(phone));
    /* A guardian shares the family's contact in the samples; keep it that way. */
    if (json_is_object(guardian)) {
        if (json_is_string(json_object_get(guardian, "email")))
            bad |= set_in(inq, "guardian", "email", json_string(email));
        if (json_is_string(json_object_get(guardian, "phone")))
            bad |= set_in(inq, "guardian", "phone", json_string(phone));
    }
    if (i % 20 == 7)
        bad |= set_in(inq, "consent", "data_processing", json_false());
    else if (i % 20 == 13)
        bad |= set_in(inq, "condition", "category", json_string("OTHER"));
    if (bad != 0) {
        json_decref(inq);
        return NULL;
    }
    return inq;
}

/* ---- Shared by the benches that drive a chain of services ---------------------------------- */

bool cf_bench_child_exited(pid_t *pid, int *status)
{
    int ws = 0;
    if (*pid <= 0 || waitpid(*pid, &ws, WNOHANG) != *pid)
        return false;
    *pid = -1;
    *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    return true;
}

/* The growing list of keys of cf_bench_compacted_live_keys: key, whether its newest record has
 * a value. Linear search: a roster topic holds hundreds of keys, not millions. */
struct live_keys {
    char **keys;
    bool *live;
    size_t n, cap;
};

static bool live_keys_note(struct live_keys *lk, const void *key, size_t len, bool live)
{
    for (size_t i = 0; i < lk->n; i++)
        if (strlen(lk->keys[i]) == len && memcmp(lk->keys[i], key, len) == 0) {
            lk->live[i] = live;
            return true;
        }
    if (lk->n + 1 >= lk->cap) {
        size_t cap = lk->cap == 0 ? 64 : lk->cap * 2;
        if (cap > 1000000)
            return false;
        char **keys = realloc(lk->keys, cap * sizeof(*keys));
        if (keys == NULL)
            return false;
        lk->keys = keys;
        bool *flags = realloc(lk->live, cap * sizeof(*flags));
        if (flags == NULL)
            return false;
        lk->live = flags;
        lk->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return false;
    memcpy(copy, key, len);
    copy[len] = '\0';
    lk->keys[lk->n] = copy;
    lk->live[lk->n] = live;
    lk->n++;
    return true;
}

char **cf_bench_compacted_live_keys(const struct cf_config *config, const char *topic,
                                    int timeout_ms, size_t *count)
{
    char err[512] = "";
    struct cf_kafka_consumer *c = NULL;
    struct live_keys lk = {NULL, NULL, 0, 0};
    char **result = NULL;
    struct cf_kafka_consumer_options opts = {false, false, "earliest"};
    const char *topics[] = {topic};
    int64_t deadline = cf_clock_mono_ms() + timeout_ms;

    *count = 0;
    if (cf_kafka_consumer_new(config, NULL, topics, 1, &opts, &c, err, sizeof(err)) != CF_OK ||
        cf_kafka_consumer_mark_end(c, 10000, err, sizeof(err)) != CF_OK)
        goto out;
    while (!cf_kafka_consumer_at_mark(c)) {
        struct cf_kafka_record *r = NULL;
        if (cf_clock_mono_ms() > deadline) {
            (void)snprintf(err, sizeof(err), "not at the end after %d ms", timeout_ms);
            goto out;
        }
        cf_status st = cf_kafka_consumer_poll(c, 200, &r, err, sizeof(err));
        if (st == CF_EFATAL)
            goto out;
        if (st != CF_OK)
            continue;
        /* A record without a key is no entry (and compaction would refuse it anyway). */
        bool ok = r->key == NULL || r->key_len == 0 ||
                  live_keys_note(&lk, r->key, r->key_len, r->value != NULL);
        cf_kafka_record_release(r);
        if (!ok) {
            (void)snprintf(err, sizeof(err), "out of memory");
            goto out;
        }
    }
    size_t live = 0;
    for (size_t i = 0; i < lk.n; i++)
        live += lk.live[i];
    if ((result = calloc(live + 1, sizeof(*result))) == NULL) {
        (void)snprintf(err, sizeof(err), "out of memory");
        goto out;
    }
    for (size_t i = 0; i < lk.n; i++) {
        if (lk.live[i]) {
            result[(*count)++] = lk.keys[i];
            lk.keys[i] = NULL;
        }
    }
out:
    if (result == NULL)
        fprintf(stderr, "reading the entries of %s failed: %s\n", topic, err);
    for (size_t i = 0; i < lk.n; i++)
        free(lk.keys[i]);
    free(lk.keys);
    free(lk.live);
    cf_kafka_consumer_free(c);
    return result;
}

void cf_bench_free_keys(char **keys)
{
    if (keys == NULL)
        return;
    for (size_t i = 0; keys[i] != NULL; i++)
        free(keys[i]);
    free(keys);
}

bool cf_bench_print_loop_counts(const char *name, const char *log_path, size_t expected)
{
    json_t *line = cf_bench_last_log_line(log_path, "\"kafka_loop_stopping\"");
    if (line == NULL) {
        printf("  %s: no kafka_loop_stopping line in its log\n", name);
        return false;
    }
    json_int_t records = json_integer_value(json_object_get(line, "records"));
    printf("  %s committed %" JSON_INTEGER_FORMAT " input records in %" JSON_INTEGER_FORMAT
           " transactions (warm-up and backlog included)\n",
           name, records, json_integer_value(json_object_get(line, "transactions")));
    json_decref(line);
    if (records < (json_int_t)expected) {
        printf("  WARNING: %s committed fewer records than this run gave it (%zu): another "
               "member of its consumer group took part of them\n",
               name, expected);
        return false;
    }
    return true;
}

bool cf_bench_id_prefix(char out[25])
{
    char rnd[19];
    if (!cf_bench_random_hex(rnd, 9))
        return false;
    (void)snprintf(out, 25, "%.8s-%.4s-4%.3s-8%.3s-", rnd, rnd + 8, rnd + 12, rnd + 15);
    return true;
}

void cf_bench_run_id(const char *prefix, uint64_t i, char out[37])
{
    (void)snprintf(out, 37, "%.24s%012" PRIx64, prefix, i & (uint64_t)0xffffffffffffULL);
}

long long cf_bench_run_index(const char *prefix, const char *id, size_t len, size_t total)
{
    char digits[13];
    if (id == NULL || len != 36 || memcmp(id, prefix, 24) != 0)
        return -1;
    memcpy(digits, id + 24, 12);
    digits[12] = '\0';
    char *end = NULL;
    unsigned long long v = strtoull(digits, &end, 16);
    if (end != digits + 12 || v >= total)
        return -1;
    return (long long)v;
}

double cf_bench_rusage_s(const struct rusage *before, const struct rusage *after)
{
    return (double)(after->ru_utime.tv_sec - before->ru_utime.tv_sec + after->ru_stime.tv_sec -
                    before->ru_stime.tv_sec) +
           (double)(after->ru_utime.tv_usec - before->ru_utime.tv_usec + after->ru_stime.tv_usec -
                    before->ru_stime.tv_usec) /
               1e6;
}
