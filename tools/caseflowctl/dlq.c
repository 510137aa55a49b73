/* dlq.c — caseflowctl dlq list / dlq replay: a service's dead letters (common/dlq.h) on
 * caseflow.dlq.<service>.
 *
 * Both read the dead-letter topic from its beginning to the end it has when the command starts
 * (ctl_read_topics), so dead letters written meanwhile — a replayed record that failed again —
 * are not read in the same run. A dead letter is named by where it sits on that topic,
 * "<partition>:<offset>", which never changes while the record is retained.
 *
 * list prints what went wrong (the dlq.* headers), the key and the value's size; never the
 * value, which may hold personal data. replay sends the original key, value and headers (the
 * dlq.* ones dropped) back to the source topic in one transaction: every selected dead letter
 * is replayed, or none is. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"
#include "dlq.h"
#include "kafka.h"
#include "topics.h"

static const char list_usage[] = "usage: caseflowctl dlq list SERVICE";
static const char replay_usage[] =
    "usage: caseflowctl dlq replay SERVICE [--id PARTITION:OFFSET]...";

static const char *const dlq_services[] = CTL_DLQ_SERVICES;
#define NSERVICES (sizeof(dlq_services) / sizeof(dlq_services[0]))

/* "<partition>:<offset>": an int32, a colon and an int64, with room to spare. */
#define ID_MAX 40

/* Most dead letters one replay sends. Each is remembered until the transaction commits, so
 * that its line is printed only once it is really replayed. */
#define REPLAY_MAX 1000000

/* Writes caseflow.dlq.<service> into topic. For a service without a dead-letter topic, reports
 * with the list of those that have one and returns -1. */
static int service_topic(const char *cmd, const char *service, char topic[CF_DLQ_TOPIC_MAX])
{
    char known[128] = "";
    size_t used = 0;

    for (size_t i = 0; i < NSERVICES; i++)
        if (strcmp(service, dlq_services[i]) == 0 &&
            cf_dlq_topic(service, topic, CF_DLQ_TOPIC_MAX) == CF_OK)
            return 0;
    for (size_t i = 0; i < NSERVICES && used < sizeof(known); i++) {
        int n = snprintf(known + used, sizeof(known) - used, "%s%s", i > 0 ? ", " : "",
                         dlq_services[i]);
        used += n > 0 ? (size_t)n : 0;
    }
    ctl_error("%s: unknown service \"%.64s\": one of %s", cmd, service, known);
    return -1;
}

static void dead_letter_id(const struct cf_kafka_record *r, char id[ID_MAX])
{
    (void)snprintf(id, ID_MAX, "%" PRId32 ":%" PRId64, r->partition, r->offset);
}

static bool header_is(const struct cf_kafka_record *r, const char *name, const char *value)
{
    const struct cf_header *h = ctl_header(r, name);
    size_t n = strlen(value);
    return h != NULL && h->value != NULL && h->len == n && memcmp(h->value, value, n) == 0;
}

/* A decimal header (dlq.source.partition, .offset) as a JSON integer; null when it is absent
 * or not a number, so the field has one type for jq. */
static json_t *header_int(const struct cf_kafka_record *r, const char *name)
{
    const struct cf_header *h = ctl_header(r, name);
    char text[24];
    long long v;
    if (h == NULL || h->value == NULL || h->len >= sizeof(text))
        return json_null();
    (void)snprintf(text, sizeof(text), "%.*s", (int)h->len, (const char *)h->value);
    return ctl_parse_int(text, 0, INT64_MAX, &v) == 0 ? json_integer(v) : json_null();
}

/* ---- dlq list ---------------------------------------------------------------------------- */

/* The fields of a dlq list line taken from the dlq.* headers (common/dlq.h), in order;
 * number: a decimal header shown as a JSON integer. */
static const struct {
    const char *field;
    const char *header;
    bool number;
} listed_headers[] = {
    {"reason", "dlq.reason", false},
    {"error", "dlq.error", false},
    {"source_topic", "dlq.source.topic", false},
    {"source_partition", "dlq.source.partition", true},
    {"source_offset", "dlq.source.offset", true},
    {"service", "dlq.service", false},
    {"failed_at", "dlq.failed_at", false},
};

/* One dead letter's line: its id, the dlq.* headers, the key and the value's size (never the
 * value). NULL when memory runs out. */
static json_t *list_line(const struct cf_kafka_record *r)
{
    char id[ID_MAX];
    json_t *line = json_object();

    dead_letter_id(r, id);
    if (line == NULL || json_object_set_new(line, "id", json_string(id)) != 0)
        goto fail;
    for (size_t i = 0; i < sizeof(listed_headers) / sizeof(listed_headers[0]); i++) {
        const char *h = listed_headers[i].header;
        json_t *v = listed_headers[i].number ? header_int(r, h) : ctl_header_json(r, h);
        if (json_object_set_new(line, listed_headers[i].field, v) != 0)
            goto fail;
    }
    if (json_object_set_new(line, "value_dropped",
                            json_boolean(header_is(r, "dlq.value_dropped", "true"))) != 0 ||
        json_object_set_new(line, "key", ctl_bytes_json(r->key, r->key_len)) != 0 ||
        json_object_set_new(line, "value_bytes",
                            r->value != NULL ? json_integer((json_int_t)r->value_len)
                                             : json_null()) != 0)
        goto fail;
    return line;
fail:
    json_decref(line);
    return NULL;
}

static int list_record(void *ctx, const struct cf_kafka_record *r)
{
    (void)ctx;
    json_t *line = list_line(r);
    if (line == NULL) {
        ctl_error("dlq list: out of memory");
        return CTL_EXIT_FAIL;
    }
    int w = ctl_print_json_line(line);
    json_decref(line);
    if (w > 0)
        return CTL_READ_DONE; /* the reader of our output is gone (| head): nothing to do */
    if (w < 0) {
        ctl_error("dlq list: cannot write to stdout");
        return CTL_EXIT_FAIL;
    }
    return 0;
}

int ctl_dlq_list(const struct ctl *ctl, int argc, char **argv)
{
    char topic[CF_DLQ_TOPIC_MAX];

    if (argc != 2 || argv[1][0] == '-') {
        ctl_error("dlq list: %s", list_usage);
        return CTL_EXIT_USAGE;
    }
    if (service_topic("dlq list", argv[1], topic) != 0)
        return CTL_EXIT_USAGE;
    const char *const topics[] = {topic};
    return ctl_read_topics(ctl, "dlq list", topics, 1, list_record, NULL);
}

/* ---- dlq replay -------------------------------------------------------------------------- */

/* A dead letter asked for with --id. */
struct wanted {
    const char *text; /* as the operator wrote it */
    int32_t partition;
    int64_t offset;
    bool found;
};

/* A dead letter produced in the open transaction. */
struct sent {
    int32_t partition;
    int64_t offset;
    const char *topic; /* static, from cf_topics_find */
};

/* What one run of dlq replay holds, freed in one place. */
struct replay {
    struct cf_kafka_producer *producer;
    struct wanted *ids; /* none: every dead letter */
    size_t nids;
    size_t found; /* ids found so far */
    struct sent *sent;
    size_t nsent, cap;
    size_t skipped;
};

/* Parses "<partition>:<offset>" into w. 0, or -1 when text is not such an id. */
static int parse_id(const char *text, struct wanted *w)
{
    const char *colon = strchr(text, ':');
    char part[16];
    long long p, o;

    if (colon == NULL || (size_t)(colon - text) >= sizeof(part))
        return -1;
    (void)snprintf(part, sizeof(part), "%.*s", (int)(colon - text), text);
    if (ctl_parse_int(part, 0, INT32_MAX, &p) != 0 ||
        ctl_parse_int(colon + 1, 0, INT64_MAX, &o) != 0)
        return -1;
    *w = (struct wanted){text, (int32_t)p, (int64_t)o, false};
    return 0;
}

/* Adds the id unless it is there already (naming a dead letter twice replays it once). */
static void add_id(struct replay *run, const struct wanted *w)
{
    for (size_t i = 0; i < run->nids; i++)
        if (run->ids[i].partition == w->partition && run->ids[i].offset == w->offset)
            return;
    run->ids[run->nids++] = *w;
}

/* SERVICE and --id ID / --id=ID into *service and run->ids (room for argc ids). 0, or -1
 * after reporting. */
static int parse_replay_args(int argc, char **argv, const char **service, struct replay *run)
{
    *service = NULL;
    for (int i = 1; i < argc; i++) {
        const char *id = NULL;
        struct wanted w;
        if (strncmp(argv[i], "--id=", 5) == 0) {
            id = argv[i] + 5;
        } else if (strcmp(argv[i], "--id") == 0) {
            if (i + 1 >= argc) {
                ctl_error("dlq replay: --id needs a value (%s)", replay_usage);
                return -1;
            }
            id = argv[++i];
        } else if (argv[i][0] == '-' || *service != NULL) {
            ctl_error("dlq replay: unexpected argument \"%.64s\" (%s)", argv[i], replay_usage);
            return -1;
        } else {
            *service = argv[i];
            continue;
        }
        if (parse_id(id, &w) != 0) {
            ctl_error("dlq replay: bad id \"%.64s\": PARTITION:OFFSET, as dlq list prints it", id);
            return -1;
        }
        add_id(run, &w);
    }
    if (*service == NULL) {
        ctl_error("dlq replay: no service (%s)", replay_usage);
        return -1;
    }
    return 0;
}

/* Whether the record is one the operator asked for (every one without --id); marks it found. */
static bool selected(struct replay *run, const struct cf_kafka_record *r)
{
    if (run->nids == 0)
        return true;
    for (size_t i = 0; i < run->nids; i++) {
        struct wanted *w = &run->ids[i];
        if (w->partition == r->partition && w->offset == r->offset && !w->found) {
            w->found = true;
            run->found++;
            return true;
        }
    }
    return false;
}

/* The caseflow topic the dead letter came from, or NULL after reporting why it cannot be
 * replayed. Only caseflow's own topics are written to: a header is data, and must not steer
 * records to any topic it names (a dead-letter topic included). */
static const struct cf_topic *replay_target(const struct cf_kafka_record *r, const char *id)
{
    const struct cf_header *h = ctl_header(r, "dlq.source.topic");
    char name[CF_DLQ_TOPIC_MAX];

    if (header_is(r, "dlq.value_dropped", "true")) {
        ctl_error("dlq replay: %s: skipped: its value was dropped when it was dead-lettered "
                  "(too big), so there is nothing to send",
                  id);
        return NULL;
    }
    if (h == NULL || h->value == NULL || h->len == 0) {
        ctl_error("dlq replay: %s: skipped: no dlq.source.topic header (not a dead letter)", id);
        return NULL;
    }
    size_t len = h->len < sizeof(name) ? h->len : sizeof(name) - 1;
    memcpy(name, h->value, len);
    name[len] = '\0';
    /* The whole header, not a prefix cut at a NUL byte or at the buffer's end. */
    const struct cf_topic *topic = strlen(name) == h->len ? cf_topics_find(name) : NULL;
    if (topic == NULL) {
        /* Shown, so made printable: it came from a record. */
        for (char *p = name; *p != '\0'; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7F)
                *p = '?';
        ctl_error("dlq replay: %s: skipped: source topic \"%.64s\" is not a caseflow topic", id,
                  name);
    }
    return topic;
}

/* Produces the record's key, value and non-dlq.* headers to topic inside the transaction.
 * 0, or -1 after reporting. */
static int send_original(struct replay *run, const struct cf_kafka_record *r, const char *id,
                         const char *topic)
{
    struct cf_header *headers = NULL;
    size_t n = 0;
    char err[CTL_ERR_MAX];

    if (r->header_count > 0 && (headers = calloc(r->header_count, sizeof(*headers))) == NULL) {
        ctl_error("dlq replay: out of memory");
        return -1;
    }
    /* The dlq.* headers describe the failure, not the event: the record goes back as it came. */
    for (size_t i = 0; i < r->header_count; i++)
        if (r->headers[i].name != NULL && !cf_dlq_header(r->headers[i].name))
            headers[n++] = r->headers[i];
    cf_status st = cf_kafka_produce(run->producer, topic, r->key, r->key_len, r->value,
                                    r->value_len, headers, n, err, sizeof(err));
    free(headers);
    if (st != CF_OK) {
        ctl_error("dlq replay: %s: %s (%s)", id, err, cf_strerror(st));
        return -1;
    }
    return 0;
}

/* Remembers a sent record for its line after the commit. 0, or -1 after reporting. */
static int remember(struct replay *run, const struct cf_kafka_record *r, const char *topic)
{
    if (run->nsent >= REPLAY_MAX) {
        ctl_error("dlq replay: more than %d dead letters: replay them in parts with --id",
                  REPLAY_MAX);
        return -1;
    }
    if (run->nsent == run->cap) {
        size_t ncap = run->cap == 0 ? 64 : run->cap * 2 > REPLAY_MAX ? REPLAY_MAX : run->cap * 2;
        struct sent *nsent;
        if ((nsent = realloc(run->sent, ncap * sizeof(*nsent))) == NULL) {
            ctl_error("dlq replay: out of memory");
            return -1;
        }
        run->sent = nsent;
        run->cap = ncap;
    }
    run->sent[run->nsent++] = (struct sent){r->partition, r->offset, topic};
    return 0;
}

static int replay_record(void *ctx, const struct cf_kafka_record *r)
{
    struct replay *run = ctx;
    char id[ID_MAX];

    if (!selected(run, r))
        return 0;
    dead_letter_id(r, id);
    const struct cf_topic *topic = replay_target(r, id);
    if (topic == NULL)
        run->skipped++;
    else if (send_original(run, r, id, topic->name) != 0 || remember(run, r, topic->name) != 0)
        return CTL_EXIT_FAIL;
    /* Every id asked for is found: the rest of the topic has nothing for us. */
    return run->nids > 0 && run->found == run->nids ? CTL_READ_DONE : 0;
}

/* Reports each --id that was not on the topic. Returns how many. */
static size_t report_missing(const struct replay *run, const char *topic)
{
    size_t missing = 0;
    for (size_t i = 0; i < run->nids; i++) {
        if (run->ids[i].found)
            continue;
        ctl_error("dlq replay: %.64s: no such dead letter on %s", run->ids[i].text, topic);
        missing++;
    }
    return missing;
}

/* Commits the transaction, or aborts it when rc says the run failed. Returns the exit code. */
static int finish_transaction(struct replay *run, int rc)
{
    char err[CTL_ERR_MAX];
    cf_status st;

    if (rc == CTL_EXIT_OK) {
        st = cf_kafka_producer_commit(run->producer, err, sizeof(err));
        if (st == CF_OK)
            return CTL_EXIT_OK;
        ctl_error("dlq replay: %s (%s)", err, cf_strerror(st));
        if (st == CF_EFATAL) {
            ctl_error("dlq replay: the transaction may not have completed: check the source "
                      "topics before replaying again");
            return CTL_EXIT_FAIL;
        }
    }
    st = cf_kafka_producer_abort(run->producer, err, sizeof(err));
    if (st != CF_OK) {
        ctl_error("dlq replay: %s (%s); the broker aborts the transaction after "
                  "transaction.timeout.ms",
                  err, cf_strerror(st));
        return CTL_EXIT_FAIL;
    }
    ctl_error("dlq replay: nothing was replayed");
    return CTL_EXIT_FAIL;
}

/* The result lines, once the transaction is committed. */
static int print_replayed(const struct replay *run, const char *dlq_topic)
{
    for (size_t i = 0; i < run->nsent; i++)
        (void)printf("replayed %" PRId32 ":%" PRId64 " -> %s\n", run->sent[i].partition,
                     run->sent[i].offset, run->sent[i].topic);
    (void)printf("replayed %zu dead letter(s) from %s, skipped %zu\n", run->nsent, dlq_topic,
                 run->skipped);
    if (fflush(stdout) != 0) {
        ctl_error("dlq replay: %zu replayed, but cannot write to stdout", run->nsent);
        return CTL_EXIT_FAIL;
    }
    return CTL_EXIT_OK;
}

int ctl_dlq_replay(const struct ctl *ctl, int argc, char **argv)
{
    struct replay run;
    const char *service = NULL;
    char topic[CF_DLQ_TOPIC_MAX], txn_id[CF_DLQ_TOPIC_MAX + 32], err[CTL_ERR_MAX];
    int rc = CTL_EXIT_USAGE;

    memset(&run, 0, sizeof(run));
    if ((run.ids = calloc((size_t)argc, sizeof(*run.ids))) == NULL) {
        ctl_error("dlq replay: out of memory");
        return CTL_EXIT_FAIL;
    }
    if (parse_replay_args(argc, argv, &service, &run) != 0 ||
        service_topic("dlq replay", service, topic) != 0)
        goto out;
    /* One transactional id per service: a second replay of the same service fences the first
     * (they would send the same records twice), and a replay that died with its transaction
     * open is aborted by the next one at once instead of holding back read_committed readers
     * of the source topics until the broker's timeout. */
    (void)snprintf(txn_id, sizeof(txn_id), "caseflowctl-dlq-replay-%s", service);
    rc = CTL_EXIT_FAIL;
    cf_status st = cf_kafka_producer_new(ctl->config, txn_id, ctl->kafka_timeout_ms, &run.producer,
                                         err, sizeof(err));
    if (st == CF_OK)
        st = cf_kafka_producer_begin(run.producer, err, sizeof(err));
    if (st != CF_OK) {
        ctl_error("dlq replay: %s (%s)", err, cf_strerror(st));
        goto out;
    }
    const char *const topics[] = {topic};
    rc = ctl_read_topics(ctl, "dlq replay", topics, 1, replay_record, &run);
    if (rc == CTL_EXIT_OK && report_missing(&run, topic) > 0)
        rc = CTL_EXIT_FAIL;
    rc = finish_transaction(&run, rc);
    if (rc == CTL_EXIT_OK)
        rc = print_replayed(&run, topic);
    if (rc == CTL_EXIT_OK && run.skipped > 0)
        rc = CTL_EXIT_FAIL;
out:
    cf_kafka_producer_free(run.producer);
    free(run.sent);
    free(run.ids);
    return rc;
}
