/* kafka.h — every Kafka call caseflow makes: producers, consumers, topic administration and the
 * transactional consume → process → produce loop each service runs (DESIGN.md §5).
 *
 * Services never see a librdkafka type: records come in as struct cf_kafka_record views, a
 * handler answers with plain outputs queued on a struct cf_kafka_out, and errors come back as a
 * cf_status with details in the caller's errbuf. Every client built here
 *   - takes its librdkafka properties from the KAFKA_* variables of the program's config
 *     (bootstrap.servers defaults to CF_CONFIG_DEFAULT_BOOTSTRAP);
 *   - routes librdkafka's own log lines and errors through CF_LOG (never a payload);
 *   - never auto-creates topics (allow.auto.create.topics=false): topics are created with
 *     cf_kafka_create_topics, with their partitions, cleanup policy and retention;
 *   - partitions by murmur2 of the key (partitioner=murmur2_random), like the Java clients, so
 *     a key lands on the same partition whichever client wrote it.
 * Properties that carry a guarantee (enable.idempotence, acks, isolation.level,
 * enable.auto.commit, transactional.id, group.id) are set last: a KAFKA_* variable cannot
 * weaken them, and trying logs a warning.
 *
 * Threads: one client object is used by one thread at a time. */
#ifndef CF_KAFKA_H
#define CF_KAFKA_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "status.h"

/* Config entries the Kafka loop reads; put them in the table of every program that calls
 * cf_kafka_loop_new (after CF_CONFIG_COMMON_ENTRIES). */
/* clang-format off */
#define CF_CONFIG_KAFKA_ENTRIES                                                                  \
    {"CASEFLOW_INSTANCE_ID", CF_CONFIG_STRING, "", 0, 64,                                        \
     "this replica's stable id, [A-Za-z0-9._-] (empty: the host name); transactional.id is "     \
     "<service>-<id>, so a restarted replica fences its own zombie: give every replica its "     \
     "own id and keep it across restarts"},                                                      \
    {"CASEFLOW_BATCH_MAX_RECORDS", CF_CONFIG_INT, "500", 1, 100000,                              \
     "most input records in one transaction"},                                                   \
    {"CASEFLOW_BATCH_MAX_MS", CF_CONFIG_INT, "100", 1, 60000,                                    \
     "longest wait for more records once a batch has its first one"},                            \
    {"CASEFLOW_TXN_TIMEOUT_MS", CF_CONFIG_INT, "60000", 1000, 900000,                            \
     "transaction.timeout.ms: the broker aborts a transaction left open this long"},             \
    {"CASEFLOW_RETRY_BACKOFF_MS", CF_CONFIG_INT, "200", 10, 60000,                               \
     "first pause before a failed batch is retried (doubles up to the maximum)"},                \
    {"CASEFLOW_RETRY_BACKOFF_MAX_MS", CF_CONFIG_INT, "10000", 10, 600000,                        \
     "longest pause between retries of a failed batch"},                                         \
    {"CASEFLOW_KAFKA_TIMEOUT_MS", CF_CONFIG_INT, "30000", 1000, 600000,                          \
     "timeout of blocking Kafka calls: initialising transactions, metadata, seeks, flush"}
/* clang-format on */

/* One record header. value NULL means a null value (len is then 0). */
struct cf_header {
    const char *name;
    const void *value;
    size_t len;
};

/* A consumed record. Every pointer belongs to whoever handed the view out (the loop during a
 * handler call, or cf_kafka_record_release for a consumer's records). key and value may be NULL
 * (a null key or value); timestamp_ms is -1 when the record has none. */
struct cf_kafka_record {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    const struct cf_header *headers;
    size_t header_count;
    int64_t timestamp_ms;
};

/* ---- Error classification (pure; unit-tested) ------------------------------------------ */

enum cf_kafka_action {
    CF_KAFKA_PROCEED,     /* no error */
    CF_KAFKA_DEAD_LETTER, /* this record can never succeed: dead-letter it and go on */
    CF_KAFKA_RETRY,       /* the call itself may be repeated (a timeout, a lost connection) */
    CF_KAFKA_ABORT,       /* abort the transaction, rewind the batch, retry after a pause */
    CF_KAFKA_FATAL,       /* fenced or broken client: the process must exit non-zero */
};

/* What the loop does when a handler returns status: CF_OK proceeds; CF_EDECODE, CF_EINVAL,
 * CF_ESCHEMA, CF_ENOTFOUND and CF_ETOOBIG dead-letter the record; CF_EIO, CF_ETIMEOUT,
 * CF_EKAFKA and CF_ENOMEM abort and retry the batch; CF_ECONFIG, CF_EFATAL and anything
 * unknown are fatal. */
enum cf_kafka_action cf_kafka_status_action(cf_status status);

/* What to do with a librdkafka error object's code and flags (rd_kafka_error_code,
 * rd_kafka_error_is_fatal, _is_retriable, _txn_requires_abort). Fatal flags and fencing codes
 * (_FATAL, _FENCED, INVALID_PRODUCER_EPOCH, PRODUCER_FENCED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
 * _NOT_CONFIGURED) are fatal; then abortable → ABORT; then retriable → RETRY; code 0 →
 * PROCEED; anything else is fatal, as librdkafka's documentation advises. */
enum cf_kafka_action cf_kafka_error_action(int code, bool fatal, bool retriable,
                                           bool txn_requires_abort);

/* What to do when enqueueing one message fails synchronously with code (an
 * rd_kafka_resp_err_t): _QUEUE_FULL → RETRY (serve delivery reports, try again);
 * MSG_SIZE_TOO_LARGE and _INVALID_ARG → DEAD_LETTER (that message can never be written);
 * _FATAL and fencing codes → FATAL; anything else → ABORT. */
enum cf_kafka_action cf_kafka_produce_error_action(int code);

/* "proceed", "dead_letter", "retry", "abort", "fatal". */
const char *cf_kafka_action_name(enum cf_kafka_action action);

/* ---- Producer ---------------------------------------------------------------------------- */

struct cf_kafka_producer;

/* Creates an idempotent producer (enable.idempotence=true, acks=all). config may be NULL (no
 * KAFKA_* properties). With a transactional_id the producer is transactional: this call runs
 * init_transactions (fencing an older producer with the same id, waiting up to timeout_ms) and
 * every produce must then sit between cf_kafka_producer_begin and _commit/_abort.
 * On success *out is the caller's, freed with cf_kafka_producer_free. */
cf_status cf_kafka_producer_new(const struct cf_config *config, const char *transactional_id,
                                int timeout_ms, struct cf_kafka_producer **out, char *errbuf,
                                size_t errlen);

/* Enqueues one record (topic, key, value and headers are copied; key, value and headers may be
 * NULL). Waits while librdkafka's queue is full. A failed delivery is reported by the next
 * cf_kafka_producer_flush. CF_EFATAL if the producer can no longer produce. */
cf_status cf_kafka_produce(struct cf_kafka_producer *producer, const char *topic, const void *key,
                           size_t key_len, const void *value, size_t value_len,
                           const struct cf_header *headers, size_t header_count, char *errbuf,
                           size_t errlen);

/* Waits up to timeout_ms for every enqueued record's delivery report. CF_OK if all were
 * delivered since the last flush; CF_EKAFKA naming the first failure and how many failed;
 * CF_ETIMEOUT if some are still undelivered. */
cf_status cf_kafka_producer_flush(struct cf_kafka_producer *producer, int timeout_ms, char *errbuf,
                                  size_t errlen);

/* Produces one record and waits up to timeout_ms for its delivery report: CF_OK once the broker
 * has it (acks=all), CF_EKAFKA with the delivery error, CF_ETIMEOUT if no report came (the
 * record may still arrive later: idempotence keeps a retry from duplicating it). For tools and
 * caseflowctl; services use the loop. */
cf_status cf_kafka_produce_sync(struct cf_kafka_producer *producer, const char *topic,
                                const void *key, size_t key_len, const void *value,
                                size_t value_len, const struct cf_header *headers,
                                size_t header_count, int timeout_ms, char *errbuf, size_t errlen);

/* The outcome of one cf_kafka_produce_async record: status CF_OK once the broker has it
 * (acks=all), CF_EKAFKA if it was not delivered (reason says why: librdkafka's text, never a
 * payload; valid during the call only). Runs on the thread that serves the producer's reports
 * (cf_kafka_producer_poll, _flush or _free), exactly once per record. */
typedef void (*cf_kafka_delivery_fn)(void *opaque, cf_status status, const char *reason);

/* Enqueues one record like cf_kafka_produce, but never waits: a full librdkafka queue is
 * CF_EKAFKA at once, and the first record to a topic the producer has not written yet may wait
 * up to a second in librdkafka for the topic's metadata (nothing here blocks on it). On CF_OK,
 * on_delivery(opaque, ...) is called exactly once later, from cf_kafka_producer_poll (or _flush,
 * or _free, which purges what is still undelivered after its flush, reporting it failed); on
 * failure it is never called. opaque is the caller's and must stay valid until then.
 * CF_EFATAL if the producer can no longer produce. */
cf_status cf_kafka_produce_async(struct cf_kafka_producer *producer, const char *topic,
                                 const void *key, size_t key_len, const void *value,
                                 size_t value_len, const struct cf_header *headers,
                                 size_t header_count, cf_kafka_delivery_fn on_delivery,
                                 void *opaque, char *errbuf, size_t errlen);

/* Serves delivery reports (and librdkafka's logs and errors) on the calling thread, waiting up
 * to timeout_ms (0: only what is there) for the first. Returns how many events were served. */
int cf_kafka_producer_poll(struct cf_kafka_producer *producer, int timeout_ms);

/* Makes librdkafka write one byte to fd whenever a report is waiting for
 * cf_kafka_producer_poll, so an event loop can poll() fd (with its other descriptors) instead
 * of polling the producer on a timer; read fd dry before calling cf_kafka_producer_poll. fd
 * must be non-blocking (the write end of a pipe, say) and stay open until the producer is freed
 * or this is called again with -1 (off). */
void cf_kafka_producer_wake_fd(struct cf_kafka_producer *producer, int fd);

/* Transactions of a producer made with a transactional_id. _commit flushes and commits;
 * CF_EKAFKA means the transaction failed and must be aborted, CF_EFATAL that the producer was
 * fenced or broke. */
cf_status cf_kafka_producer_begin(struct cf_kafka_producer *producer, char *errbuf, size_t errlen);
cf_status cf_kafka_producer_commit(struct cf_kafka_producer *producer, char *errbuf, size_t errlen);
cf_status cf_kafka_producer_abort(struct cf_kafka_producer *producer, char *errbuf, size_t errlen);

/* Flushes for up to 10 s (logging how many records were left undelivered), then destroys.
 * NULL-safe. */
void cf_kafka_producer_free(struct cf_kafka_producer *producer);

/* ---- Consumer ---------------------------------------------------------------------------- */

struct cf_kafka_consumer_options {
    bool auto_commit;         /* commit positions in the background (enable.auto.commit) */
    bool read_uncommitted;    /* see aborted and open transactions' records (diagnostics) */
    const char *offset_reset; /* where to start without a committed offset: "earliest"
                               * (NULL) or "latest" */
};

struct cf_kafka_consumer;

/* Creates a consumer of topics[0..ntopics). With a group_id it joins that consumer group
 * (partition.assignment.strategy=cooperative-sticky, incremental rebalances); with group_id
 * NULL it joins no group and reads every partition of the topics (which must exist) from the
 * start or end per offset_reset, committing nothing (caseflowctl tail, tests). options may be
 * NULL: read_committed, no auto commit, "earliest". config may be NULL.
 * On success *out is the caller's, freed with cf_kafka_consumer_free. */
cf_status cf_kafka_consumer_new(const struct cf_config *config, const char *group_id,
                                const char *const *topics, size_t ntopics,
                                const struct cf_kafka_consumer_options *options,
                                struct cf_kafka_consumer **out, char *errbuf, size_t errlen);

/* Waits up to timeout_ms (keep it ≤ 500 in a loop that watches a stop flag) for one record.
 * CF_OK: *out is a record the caller releases with cf_kafka_record_release (several may be held
 * at once; each stays valid until released; release them all before cf_kafka_consumer_free).
 * CF_ETIMEOUT: none came. CF_EKAFKA: the consumer reported an error (logged, in errbuf; the
 * consumer keeps going). CF_EFATAL: the consumer cannot go on. */
cf_status cf_kafka_consumer_poll(struct cf_kafka_consumer *consumer, int timeout_ms,
                                 struct cf_kafka_record **out, char *errbuf, size_t errlen);

/* Frees a record returned by cf_kafka_consumer_poll. NULL-safe. */
void cf_kafka_record_release(struct cf_kafka_record *record);

/* Commits the group's positions (the offsets after the records polled so far), waiting for the
 * broker. For group consumers without auto_commit. */
cf_status cf_kafka_consumer_commit(struct cf_kafka_consumer *consumer, char *errbuf, size_t errlen);

/* For a consumer of no group: asks the brokers for the end offset (read_committed: the last
 * stable offset) of every partition the consumer reads and remembers them as its mark, waiting
 * up to timeout_ms for each of two requests. CF_EINVAL for a group consumer, CF_EKAFKA if a
 * broker did not answer. */
cf_status cf_kafka_consumer_mark_end(struct cf_kafka_consumer *consumer, int timeout_ms,
                                     char *errbuf, size_t errlen);

/* True once the consumer's position in every partition has reached the mark of the last
 * cf_kafka_consumer_mark_end (transaction markers count as read), i.e. it has handed out every
 * record that was there then. False without a mark. */
bool cf_kafka_consumer_at_mark(const struct cf_kafka_consumer *consumer);

/* Leaves the group (committing first if auto_commit) and destroys. NULL-safe. */
void cf_kafka_consumer_free(struct cf_kafka_consumer *consumer);

/* ---- Administration ---------------------------------------------------------------------- */

struct cf_topic_spec {
    const char *name;
    int partitions;             /* -1: the broker's default */
    int replication_factor;     /* -1: the broker's default */
    const char *cleanup_policy; /* "delete", "compact", "compact,delete"; NULL: broker default */
    int64_t retention_ms;       /* > 0: retention.ms; -1: keep forever; 0: broker default */
};

/* Creates the topics specs[0..n) with the Admin API and waits up to timeout_ms. A topic that
 * already exists counts as created (its settings are not compared or changed), so this is
 * safe to run again. On failure errbuf names the first topic that failed and why; the others
 * may have been created. */
cf_status cf_kafka_create_topics(const struct cf_config *config, const struct cf_topic_spec *specs,
                                 size_t n, int timeout_ms, char *errbuf, size_t errlen);

struct cf_topic_info {
    int partitions;
    int replication_factor;  /* replicas of partition 0 */
    char cleanup_policy[32]; /* as the broker reports it */
    int64_t retention_ms;    /* -1: forever */
};

/* Reads a topic's partition count and its cleanup.policy and retention.ms as the broker
 * applies them. CF_ENOTFOUND if the topic does not exist. */
cf_status cf_kafka_describe_topic(const struct cf_config *config, const char *topic, int timeout_ms,
                                  struct cf_topic_info *out, char *errbuf, size_t errlen);

struct cf_kafka_group_progress {
    int64_t committed; /* sum over partitions of the group's committed offset (or the
                        * partition's first offset where the group committed none) */
    int64_t end;       /* sum of the partitions' end offsets (high watermarks) */
    int64_t lag;       /* end - committed */
};

/* The consumer group's committed progress on one topic (only offsets of committed
 * transactions count). For caseflowctl lag and tests. */
cf_status cf_kafka_group_progress(const struct cf_config *config, const char *group_id,
                                  const char *topic, int timeout_ms,
                                  struct cf_kafka_group_progress *out, char *errbuf, size_t errlen);

/* Moves the consumer group's committed offsets on every partition of topics[0..ntopics) to the
 * partition's end (high watermark): what `kafka-consumer-groups --reset-offsets --to-latest`
 * does. The group must have no running member (CF_EKAFKA otherwise); its members then start
 * after everything written so far. For tests and benchmarks on a shared stack; an operator's
 * tool too. CF_ENOTFOUND for a topic that does not exist. */
cf_status cf_kafka_group_to_end(const struct cf_config *config, const char *group_id,
                                const char *const *topics, size_t ntopics, int timeout_ms,
                                char *errbuf, size_t errlen);

/* ---- Handler outputs --------------------------------------------------------------------- */

/* Limits on what one handler call may queue; cf_kafka_out_add returns CF_ETOOBIG past them. */
#define CF_KAFKA_OUT_MAX_RECORDS 4096
#define CF_KAFKA_OUT_MAX_BYTES (64u * 1024u * 1024u)

struct cf_kafka_out;

/* One queued output; every pointer belongs to the cf_kafka_out. */
struct cf_kafka_out_record {
    const char *topic;
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    const struct cf_header *headers;
    size_t header_count;
};

/* Queues one output record: topic, key, value and headers are copied. key, value and headers
 * may be NULL. CF_EINVAL without a topic, CF_ETOOBIG past the limits above, CF_ENOMEM. */
cf_status cf_kafka_out_add(struct cf_kafka_out *out, const char *topic, const void *key,
                           size_t key_len, const void *value, size_t value_len,
                           const struct cf_header *headers, size_t header_count);

/* For tests of handlers (the loop owns its own): a new empty list, freed with
 * cf_kafka_out_free (NULL-safe); _reset empties it; _get returns the i-th queued record or NULL
 * past the end. */
cf_status cf_kafka_out_new(struct cf_kafka_out **out);
void cf_kafka_out_free(struct cf_kafka_out *out);
void cf_kafka_out_reset(struct cf_kafka_out *out);
size_t cf_kafka_out_count(const struct cf_kafka_out *out);
const struct cf_kafka_out_record *cf_kafka_out_get(const struct cf_kafka_out *out, size_t i);

/* ---- The transactional loop -------------------------------------------------------------- */

/* Processes one record: queue its outputs on out (nothing is produced if the status is not
 * CF_OK) and return a status classified by cf_kafka_status_action. On failure write a short
 * reason into errbuf: it goes to the logs and the dead-letter headers, so name fields, never
 * their values. The record and its buffers are valid only during the call. The handler may run
 * again for the same record after a retried batch or a restart: side effects outside Kafka
 * must be idempotent (keyed by the event id). */
typedef cf_status (*cf_kafka_handler)(void *ctx, const struct cf_kafka_record *in,
                                      struct cf_kafka_out *out, char *errbuf, size_t errlen);

struct cf_kafka_loop;

/* Creates the loop of service (the name in the transactional.id, the dead-letter topic
 * caseflow.dlq.<service> and the logs; [A-Za-z0-9._-]): a transactional producer with
 * transactional.id <service>-<CASEFLOW_INSTANCE_ID> and a read_committed consumer in group_id
 * (NULL: the service name) subscribed to topics[0..ntopics). config must hold
 * CF_CONFIG_KAFKA_ENTRIES. Nothing is contacted yet. handler_ctx is passed to every handler
 * call and stays the caller's. On success *out is the caller's, freed with cf_kafka_loop_free. */
cf_status cf_kafka_loop_new(const struct cf_config *config, const char *service,
                            const char *group_id, const char *const *topics, size_t ntopics,
                            cf_kafka_handler handler, void *handler_ctx, struct cf_kafka_loop **out,
                            char *errbuf, size_t errlen);

/* Runs until *stop becomes non-zero (a SIGTERM handler's flag) or a fatal error:
 * init_transactions, checks that the dead-letter topic exists, subscribes, then repeatedly
 * collects up to CASEFLOW_BATCH_MAX_RECORDS records (at most CASEFLOW_BATCH_MAX_MS after the
 * first), and in one transaction runs the handler on each, produces the outputs (or the
 * dead-letter record), adds the batch's next offsets and commits. A retriable failure aborts
 * the transaction, rewinds the consumer to the batch's first offsets and retries after a
 * growing pause. On stop the batch in progress is finished and committed, then the consumer
 * leaves the group and the producer is flushed.
 * Returns CF_OK after a stop, CF_EFATAL if the producer was fenced or a client broke (or the
 * handler said so), CF_ECONFIG if the dead-letter topic is missing, CF_EIO if its metadata
 * could not be read; errbuf says why. Exit non-zero on anything but CF_OK. Call at most once
 * per loop. */
cf_status cf_kafka_loop_run(struct cf_kafka_loop *loop, const volatile sig_atomic_t *stop,
                            char *errbuf, size_t errlen);

/* A periodic task of the loop (a service's timers: expiries, reminders): queue outputs on out
 * for the wall-clock time now_ms and return CF_OK; they are produced in a transaction of their
 * own, without consumed offsets. A non-CF_OK status is logged with errbuf and the timer runs
 * again at its next turn (its outputs are dropped); one classified fatal by
 * cf_kafka_status_action ends the loop. Nothing the timer did outside Kafka is undone when its
 * transaction aborts: a timer claims its work in a way that lets the work come back (a lease,
 * say) rather than deleting it before the commit. */
typedef cf_status (*cf_kafka_timer)(void *ctx, int64_t now_ms, struct cf_kafka_out *out,
                                    char *errbuf, size_t errlen);

/* Makes the loop run timer every interval_ms (≥ 1) between batches, first right after the
 * loop started; timer_ctx stays the caller's. Call before cf_kafka_loop_run. CF_EINVAL on a
 * NULL loop or timer, a bad interval, or a loop already run. */
cf_status cf_kafka_loop_set_timer(struct cf_kafka_loop *loop, int interval_ms, cf_kafka_timer timer,
                                  void *timer_ctx);

/* Called after each timer turn with committed true when what the timer queued is committed (or
 * it queued nothing), false when its transaction aborted or the timer failed; ctx is the
 * timer's. For a timer that forgets its work only once its outputs are durable (the notifier's
 * due set): work claimed with a lease comes back by itself after an abort. */
typedef void (*cf_kafka_timer_done)(void *ctx, bool committed);

/* Sets the timer's done callback; call after cf_kafka_loop_set_timer, before cf_kafka_loop_run.
 * CF_EINVAL on a NULL loop or callback, a loop without a timer, or a loop already run. */
cf_status cf_kafka_loop_set_timer_done(struct cf_kafka_loop *loop, cf_kafka_timer_done done);

/* Hooks around each batch, for a handler whose side effects are cheaper done for the whole
 * batch at once (the notifier sends a batch's messages concurrently): begin runs before the
 * batch's first record is handled (also when a batch is retried: drop what an aborted attempt
 * left), end after its last record, inside the same transaction. end queues outputs on out the
 * way a handler does, produced with the batch and committed with its offsets; a status the
 * loop would retry (cf_kafka_status_action ABORT or RETRY, and also DEAD_LETTER: there is no
 * single record to dead-letter) aborts the whole batch, which comes back after a pause; a fatal
 * one ends the loop. */
typedef void (*cf_kafka_batch_begin)(void *ctx);
typedef cf_status (*cf_kafka_batch_end)(void *ctx, struct cf_kafka_out *out, char *errbuf,
                                        size_t errlen);

/* Sets both batch hooks with their context (the caller's). Call before cf_kafka_loop_run.
 * CF_EINVAL on a NULL loop or hook, or a loop already run. */
cf_status cf_kafka_loop_set_batch_hooks(struct cf_kafka_loop *loop, cf_kafka_batch_begin begin,
                                        cf_kafka_batch_end end, void *ctx);

struct cf_metrics_histogram;

/* Makes the loop time every input record it commits in histogram (from
 * cf_metrics_histogram_new; borrowed, it must outlive the loop's run): one observation per
 * record, the seconds from the consumer poll that handed the record to the loop to the commit
 * of the transaction that holds its result (its outputs or dead letter, and its offset). A
 * record polled again after an aborted batch is timed from that later poll; dead-lettered
 * records are timed like the others, so the histogram's count follows the stats' records.
 * Observed before the stats count the batch, so a reader that sees a record counted sees it
 * timed. histogram NULL turns the timing off (the default). Call before cf_kafka_loop_run.
 * CF_EINVAL on a NULL loop or a loop already run. */
cf_status cf_kafka_loop_set_latency(struct cf_kafka_loop *loop,
                                    struct cf_metrics_histogram *histogram);

/* Counters for /metrics and /readyz; safe to read from another thread while the loop runs. */
struct cf_kafka_loop_stats {
    bool ready;            /* transactions initialised and subscribed */
    int64_t assigned;      /* partitions assigned now */
    uint64_t transactions; /* committed */
    uint64_t records;      /* input records committed (dead-lettered ones included) */
    uint64_t outputs;      /* output records committed */
    uint64_t dead_letters; /* records sent to the dead-letter topic */
    uint64_t aborts;       /* transactions aborted for a retry */
    /* Errors the loop logged and went on from (each counted once, where it is logged):
     *   - a handler call that failed with a retriable status (the batch is aborted), a record
     *     whose view or dead letter could not be allocated, a batch-end hook or timer turn that
     *     failed, an output too large for a batch-end hook or timer;
     *   - an output the producer refused to enqueue (the batch is aborted, or the record
     *     dead-lettered);
     *   - a failed transactional call that is retried or aborts the batch (init_transactions,
     *     send_offsets_to_transaction, commit_transaction, abort_transaction);
     *   - a batch whose partitions were revoked before its commit;
     *   - an error event of the consumer's poll, and an error librdkafka reported for either
     *     client (a broker connection lost, all brokers down), which it recovers from itself.
     * Not counted: records dead-lettered for their content (dead_letters), a delivery report's
     * failure (the commit that fails for it is), and fatal errors, which end the loop. Every
     * abort follows a counted error, so errors >= aborts. */
    uint64_t errors;
};
void cf_kafka_loop_stats(const struct cf_kafka_loop *loop, struct cf_kafka_loop_stats *out);

/* Closes the consumer if cf_kafka_loop_run did not, destroys both clients. NULL-safe. */
void cf_kafka_loop_free(struct cf_kafka_loop *loop);

#endif
