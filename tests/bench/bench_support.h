/* bench_support.h — what the benchmarks that drive real services share: a microsecond clock,
 * percentiles, a process's peak memory and CPU time from /proc, argument parsing, and varied
 * synthetic inquiries made from deploy/samples/. Compiled into every tests/bench/bench_*.c
 * (tests/CMakeLists.txt). Nothing here prints the inquiries it makes: they are synthetic, but
 * they have the shape of personal data and the benches treat them as such. */
#ifndef CF_BENCH_SUPPORT_H
#define CF_BENCH_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <jansson.h>

/* Microseconds of CLOCK_MONOTONIC: latencies here are a few ms, cf_clock_mono_ms is too coarse. */
int64_t cf_bench_now_us(void);

/* Sorts v[0..n) in place (ascending). */
void cf_bench_sort(int64_t *v, size_t n);

/* The value at fraction q (0.5, 0.99; 1.0 is the maximum) of sorted[0..n) by the nearest-rank
 * method; 0 when n is 0. */
int64_t cf_bench_rank(const int64_t *sorted, size_t n, double q);

/* Peak resident set (VmHWM) and current resident set (VmRSS) of pid in KiB from
 * /proc/<pid>/status; -1 if the process or the line is gone. */
long cf_bench_vmhwm_kib(pid_t pid);
long cf_bench_vmrss_kib(pid_t pid);

/* The resident set of pid now, split into anonymous memory (heap, stacks: what the process
 * allocated) and file-backed pages (the program, its libraries and mapped data files such as
 * ICU's), in KiB from /proc/<pid>/status; -1 each when unreadable. VmHWM cannot be split, but
 * the split tells which of the two a peak is made of. */
void cf_bench_rss_split_kib(pid_t pid, long *anon, long *file);

/* User + system CPU time of pid (all its threads) in milliseconds from /proc/<pid>/stat;
 * -1 if unreadable. */
int64_t cf_bench_cpu_ms(pid_t pid);

/* Prints a warning for every running process other than the ones in mine[0..n) whose command
 * name (/proc/<pid>/comm, at most 15 characters) is comm: another caseflow service of the same
 * kind joins the same fixed consumer group and takes partitions, so the figures would not be
 * this run's alone. Returns how many there were. */
size_t cf_bench_warn_others(const char *comm, const pid_t *mine, size_t n);

/* Waits until the processes pids[0..n) together use under 3% of one CPU over a second (they
 * have caught up with whatever their topics held), at most timeout_ms. Returns true once idle;
 * *waited_ms says how long it took. A service of a fixed consumer group may find a backlog that
 * older runs of any version left on any of its topics; measuring while it works that off would
 * measure the backlog. */
bool cf_bench_wait_idle(const pid_t *pids, size_t n, int timeout_ms, int64_t *waited_ms);

/* CPU time the whole machine spent busy (all CPUs: user, nice, system, irq, softirq, steal)
 * in milliseconds since boot, from /proc/stat; -1 if unreadable. The difference over a phase,
 * less what the services and the bench used, is what the broker, the registry, Redis and
 * anything else on the machine took. */
int64_t cf_bench_machine_busy_ms(void);

/* The Redis key prefix (CASEFLOW_REDIS_KEY_PREFIX) a run gives the services it starts,
 * "caseflow-bench:<run_id>:", so that everything they store can be found and deleted after the
 * run: without it every run would leave its cases in the shared Redis for up to 30 days. */
void cf_bench_redis_prefix(const char *run_id, char *out, size_t len);

/* Deletes every key starting with prefix from the Redis the services used
 * (CASEFLOW_REDIS_HOST / CASEFLOW_REDIS_PORT of the environment, else the local stack's), one
 * SCAN step at a time so Redis keeps serving others in between. Prints how many keys went.
 * False, with the reason on stderr, if Redis could not be reached or refused. */
bool cf_bench_redis_drop(const char *prefix);

/* Ignores SIGPIPE: a write to a Redis or HTTP peer that went away must fail, not kill. */
void cf_bench_ignore_sigpipe(void);

/* Parses a whole decimal integer in [min, max] (no sign games, no trailing text); false with a
 * message on stderr naming what otherwise. Used instead of atoi, which cannot fail. */
bool cf_bench_parse_ll(const char *what, const char *text, long long min, long long max,
                       long long *out);

/* Where the options of the benches that drive services go: [N] [--warmup W] [--rate R]
 * [--timeout-s S] [--env NAME=VALUE]... [--keep-logs] [--keep-backlog]. keep_backlog NULL: that
 * option is not accepted. The pointed-to values hold the defaults on entry. */
struct cf_bench_args {
    long long *n, *warmup, *rate, *timeout_s;
    bool *keep_logs, *keep_backlog;
    const char **extra_env; /* room for max_extra */
    size_t max_extra, *n_extra;
};

/* Parses argv[1..argc) into a; false (a message on stderr for a bad value) on anything it does
 * not take, for the caller to print its usage. N + W must stay below 10,000,000. */
bool cf_bench_parse_args(const struct cf_bench_args *a, int argc, char **argv);

/* Writes n random bytes as 2n lower-case hex digits plus a NUL into out (2n + 1 bytes) from
 * /dev/urandom; false if it cannot be read. */
bool cf_bench_random_hex(char *out, size_t n);

/* Prints "  command: " and argv joined by spaces, so a report says what produced it. */
void cf_bench_print_command(int argc, char **argv);

/* Prints the machine's CPUs and load averages: on a shared machine the figures depend on what
 * else runs. */
void cf_bench_print_machine(void);

/* The last line of the file at path containing needle, as a new JSON object (json_decref), or
 * NULL. For reading a service's final log line ("kafka_loop_stopping" and its counters). */
json_t *cf_bench_last_log_line(const char *path, const char *needle);

/* The sample inquiries deploy/samples/inquiry-*.json (bare Inquiry JSON, caseflow's JSON form).
 * Returns how many were loaded into samples[0..max), 0 with a message on stderr on failure; the
 * caller json_decrefs each. */
size_t cf_bench_load_samples(const char *dir, json_t **samples, size_t max);

/* A new inquiry (the caller's to json_decref) made from samples[i % n] for the i-th submission
 * of a run: a unique contact (email "bench.<tag>.<i>@example.com", phone "+1555" and i in 7
 * digits where the sample has one; a guardian's too), so intake never folds two of them, and a
 * varied outcome: i % 20 == 7 withdraws the data-processing consent (rejected), i % 20 == 13
 * sets the category OTHER (review); the samples themselves give validated and
 * information-requested cases. inquiry_id and idempotency_key are removed: callers set them
 * (Kafka) or let intake's HTTP API do it. NULL if memory runs out. i must be below 10^7. */
json_t *cf_bench_inquiry(json_t *const *samples, size_t n, uint64_t i, const char *tag);

/* ---- Shared by the benches that drive a chain of services (bench_consult) ------------------ */

struct cf_config;

/* True (and *pid reaped and set to -1, its exit status in *status: 128 + signal if killed) if
 * the child *pid has exited, so a service that died is reported at once instead of after a
 * timeout. False while it runs or when *pid is not a child (<= 0). */
bool cf_bench_child_exited(pid_t *pid, int *status);

/* The keys (new strings in a NULL-terminated array the caller frees with
 * cf_bench_free_keys) whose newest record on the compacted topic has a value, i.e. the entries
 * a service reading the topic would hold now; keys that are not printable ASCII count too. Reads
 * every partition from its start to the end offsets of the moment of the call (consumer of no
 * group), at most timeout_ms. NULL (reason on stderr) on failure; *count says how many. */
char **cf_bench_compacted_live_keys(const struct cf_config *config, const char *topic,
                                    int timeout_ms, size_t *count);

/* Frees what cf_bench_compacted_live_keys returned. NULL-safe. */
void cf_bench_free_keys(char **keys);

/* Prints a service's own count of what it committed (its last "kafka_loop_stopping" log
 * line). False, with a warning, when it committed fewer input records than expected (another
 * member of its fixed consumer group took part of them) or the line is missing. */
bool cf_bench_print_loop_counts(const char *name, const char *log_path, size_t expected);

/* A fresh random prefix for the ids of a run (the first 24 characters of a canonical version 4
 * UUID, "xxxxxxxx-xxxx-4xxx-8xxx-") into out (25 bytes). False if /dev/urandom is unreadable. */
bool cf_bench_id_prefix(char out[25]);

/* The run's id of item i: prefix and i in the last 12 hex digits, still a canonical UUID, so
 * the id read back from an event (meta.correlation_id) gives the index without a table. out
 * holds 37 bytes. */
void cf_bench_run_id(const char *prefix, uint64_t i, char out[37]);

/* The index of a run id (id[0..len)) made by cf_bench_run_id with prefix, or -1 for anybody
 * else's id or an index >= total. */
long long cf_bench_run_index(const char *prefix, const char *id, size_t len, size_t total);

/* CPU seconds (user + system) between two getrusage(RUSAGE_SELF) readings. */
double cf_bench_rusage_s(const struct rusage *before, const struct rusage *after);

#endif
