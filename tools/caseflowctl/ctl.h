/* ctl.h — what caseflowctl's command files share: the run context, exit codes, the one-line
 * error report and the registry/serde pair most commands need.
 *
 * Each command group lives in its own file (topics.c, schemas.c, tail.c, produce.c, case.c,
 * roster.c, consult.c, group.c, timeline.c, stats.c, dlq.c; read.c reads topics to their
 * end for them) and has one entry point per command, ctl_<group>_<verb>(ctl, argc, argv),
 * which returns the process exit code. argv[0] is the last word of the command ("create",
 * "tail", ...), so argument parsing starts at 1. */
#ifndef CF_CTL_H
#define CF_CTL_H

#include <signal.h>
#include <stddef.h>

#include <jansson.h>

#include "avro_serde.h"
#include "config.h"
#include "kafka.h"
#include "registry.h"

#ifndef CF_VERSION
#define CF_VERSION "0.0.0"
#endif

/* Exit codes. */
#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1  /* a runtime failure: a server, a file, a record */
#define CTL_EXIT_USAGE 2 /* wrong arguments or configuration */

/* The services that own a dead-letter topic caseflow.dlq.<service> (DESIGN.md §4): the one
 * list `topics create`, `case` and `stats` use. */
#define CTL_DLQ_SERVICES {"intake", "validation", "assignment", "scheduler", "notifier"}

/* Longest error text kept from a library call. */
#define CTL_ERR_MAX 1024

struct ctl {
    const struct cf_config *config;       /* borrowed from main */
    const volatile sig_atomic_t *stop;    /* set by SIGINT/SIGTERM */
    int kafka_timeout_ms;                 /* CASEFLOW_KAFKA_TIMEOUT_MS */
};

/* Prints "caseflowctl: <message>" as one line on stderr. The message must not carry personal
 * data: name files, topics, fields and JSON paths, never record values. */
void ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Creates the registry client and topic codec from the config (CASEFLOW_REGISTRY_URL,
 * CASEFLOW_REGISTRY_TIMEOUT_MS, CASEFLOW_SCHEMA_DIR). No request is made yet. On success both
 * are the caller's: free with ctl_serde_close. On failure both are NULL and errbuf says why. */
cf_status ctl_serde_open(const struct ctl *ctl, struct cf_registry **registry,
                         struct cf_serde **serde, char *errbuf, size_t errlen);

/* Frees what ctl_serde_open made (the serde first: it borrows the registry). NULL-safe. */
void ctl_serde_close(struct cf_registry *registry, struct cf_serde *serde);

/* One record as ctl_read_topics hands it over (valid during the call only). Return 0 to go on,
 * CTL_READ_DONE to stop reading with success, or an exit code to stop with it. */
typedef int (*ctl_raw_fn)(void *ctx, const struct cf_kafka_record *r);
#define CTL_READ_DONE (-1)

/* Reads topics[0..n) from their beginning up to the end offsets they have now (read_committed,
 * no consumer group, nothing committed, nothing decoded) and calls fn for each record, in
 * partition order. Returns CTL_EXIT_OK (also when fn returned CTL_READ_DONE), fn's exit code
 * if it stopped, or CTL_EXIT_FAIL after reporting (cmd prefixes the report). */
int ctl_read_topics(const struct ctl *ctl, const char *cmd, const char *const *topics, size_t n,
                    ctl_raw_fn fn, void *ctx);

/* One record of a key, as ctl_read_key hands it over: value is the record decoded to caseflow's
 * JSON form (borrowed: json_incref to keep it), NULL for a tombstone or for a record that could
 * not be decoded, when error (else NULL) says why. Return 0 to go on, or an exit code to stop. */
typedef int (*ctl_record_fn)(void *ctx, const struct cf_kafka_record *r, json_t *value,
                             const char *error);

/* ctl_read_topics for the records keyed key only (a key's records share a partition per
 * topic), each decoded with the registry's schemas first. fn may return CTL_READ_DONE too. */
int ctl_read_key(const struct ctl *ctl, const char *cmd, const char *const *topics, size_t n,
                 const char *key, ctl_record_fn fn, void *ctx);

/* Parses a decimal integer in [min, max] with nothing after it. Returns 0 on success, -1
 * otherwise (*out untouched). */
int ctl_parse_int(const char *text, long long min, long long max, long long *out);

/* A JSON string of bytes: as they are when they are UTF-8, otherwise each byte as the code
 * point of the same value (as Avro's JSON encoding writes bytes), so nothing is lost or
 * rejected. NULL bytes give JSON null. A new reference; NULL only when memory runs out. */
json_t *ctl_bytes_json(const void *p, size_t len);

/* The record's last header called name (as Kafka's lastHeader() reads it), or NULL. */
const struct cf_header *ctl_header(const struct cf_kafka_record *r, const char *name);

/* That header's value as a new JSON string (ctl_bytes_json); JSON null when it is absent or
 * its value is null. NULL only when memory runs out. */
json_t *ctl_header_json(const struct cf_kafka_record *r, const char *name);

/* Writes line to stdout as one compact JSON line and flushes it, so a pipe reader sees it at
 * once. 0 ok, 1 the reader went away (EPIPE: stop quietly), -1 another error. */
int ctl_print_json_line(const json_t *line);

/* True if arg is "-h" or "--help". */
int ctl_is_help(const char *arg);

/* Reads and parses a JSON file ("-": stdin; at most 64 MiB). NULL after reporting why; the
 * report names the file, line and column, never the content. The caller json_decrefs. */
json_t *ctl_load_json(const char *path);

/* Produces doc (one object or an array of objects) to a caseflow topic as `produce` does:
 * meta completed, bare records wrapped, every record checked before the first is sent, one
 * {"topic","key","event_id"} line printed per record. source names doc in messages. Returns
 * an exit code. */
int ctl_produce_json(const struct ctl *ctl, const char *topic, json_t *doc, const char *source);

/* The same without the printed lines, for commands that print their own line once it returns
 * CTL_EXIT_OK (consult complete, reschedule, cancel). A meta given in full is kept as it is. */
int ctl_produce_json_quiet(const struct ctl *ctl, const char *topic, json_t *doc,
                           const char *source);

/* Command entry points; each returns an exit code (CTL_EXIT_*). */
int ctl_topics_create(const struct ctl *ctl, int argc, char **argv);
int ctl_schemas_register(const struct ctl *ctl, int argc, char **argv);
int ctl_tail(const struct ctl *ctl, int argc, char **argv);
int ctl_produce(const struct ctl *ctl, int argc, char **argv);
int ctl_submit(const struct ctl *ctl, int argc, char **argv);
int ctl_provide_info(const struct ctl *ctl, int argc, char **argv);
int ctl_review(const struct ctl *ctl, int argc, char **argv);
int ctl_roster_load(const struct ctl *ctl, int argc, char **argv);
int ctl_consult_complete(const struct ctl *ctl, int argc, char **argv);
int ctl_reschedule(const struct ctl *ctl, int argc, char **argv);
int ctl_cancel(const struct ctl *ctl, int argc, char **argv);
int ctl_group_to_end(const struct ctl *ctl, int argc, char **argv);
int ctl_case(const struct ctl *ctl, int argc, char **argv);
int ctl_stats(const struct ctl *ctl, int argc, char **argv);
int ctl_dlq_list(const struct ctl *ctl, int argc, char **argv);
int ctl_dlq_replay(const struct ctl *ctl, int argc, char **argv);

#endif
