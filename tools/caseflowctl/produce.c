/* produce.c — caseflowctl produce TOPIC FILE: JSON records in caseflow's JSON form
 * (avro_convert.h) onto a caseflow topic, with CloudEvents headers.
 *
 * Every object of the file is completed (meta, wrapping), keyed and encoded before the first
 * one is sent, so a file with a mistake anywhere produces nothing. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "avro_convert.h"
#include "cloudevents.h"
#include "ctl.h"
#include "kafka.h"
#include "topics.h"
#include "uuid.h"

/* Largest input file: far more than any sensible batch of records (each at most
 * CF_SERDE_MAX_RECORD once encoded), small enough to hold in memory twice. */
#define MAX_FILE_BYTES (64u * 1024u * 1024u)

/* One record ready to send. The CloudEvents headers point into ce itself, so a pending
 * record is never copied or moved once filled. */
struct pending {
    const char *key;    /* borrowed from the record's JSON */
    unsigned char *buf; /* wire format, owned */
    size_t len;
    struct cf_cloudevent ce;
};

/* Everything one run of the command holds, freed in one place. */
struct produce_run {
    const char *topic;
    const char *file;            /* as the operator named it; "-" is stdin */
    const struct cf_topic *info; /* the topic table's row */
    const struct cf_schema *schema;
    const char *wrap_field; /* the one record field besides meta, or NULL */
    json_t *doc;            /* the file's JSON */
    json_t *records;        /* the completed records (array), keeps keys alive */
    struct pending *pending;
    size_t count;
    bool is_array;
};

/* Reads all of path ("-": stdin) into a new NUL-terminated buffer, at most MAX_FILE_BYTES. */
static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    int rc = -1;

    *out = NULL;
    if (f == NULL) {
        ctl_error("%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (n == cap) {
            size_t ncap = cap == 0 ? 65536 : cap * 2;
            char *nbuf;
            if (cap >= MAX_FILE_BYTES) {
                ctl_error("%s: larger than %u bytes", path, MAX_FILE_BYTES);
                goto out;
            }
            if (ncap > MAX_FILE_BYTES)
                ncap = MAX_FILE_BYTES;
            /* One byte more for the terminating NUL. */
            if ((nbuf = realloc(buf, ncap + 1)) == NULL) {
                ctl_error("%s: out of memory", path);
                goto out;
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                ctl_error("%s: read error", path);
                goto out;
            }
            break;
        }
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    if (f != stdin)
        (void)fclose(f);
    return rc;
}

/* The field to wrap a bare object in: the schema is `meta` plus exactly one other field and
 * that field is a record (InquirySubmitted: inquiry). NULL for any other schema. */
static const char *find_wrap_field(const struct cf_schema *schema)
{
    const json_t *fields = json_object_get(cf_schema_root(schema), "fields");
    const char *found = NULL;
    size_t i;
    const json_t *field;

    json_array_foreach(fields, i, field) {
        const char *name = json_string_value(json_object_get(field, "name"));
        if (name == NULL || strcmp(name, "meta") == 0)
            continue;
        if (found != NULL)
            return NULL;
        const json_t *type = cf_schema_resolve(schema, json_object_get(field, "type"));
        if (type == NULL || cf_schema_kind(type, NULL) != AVRO_RECORD)
            return NULL;
        found = name;
    }
    return found;
}

/* "$" or "$[i]": where item i sits in the file. */
static void item_path(const struct produce_run *run, size_t i, char *buf, size_t len)
{
    if (run->is_array)
        (void)snprintf(buf, len, "$[%zu]", i);
    else
        (void)snprintf(buf, len, "$");
}

/* Reports an encoder error with the path as it is in the operator's file: the encoder sees
 * the wrapped record ("$.inquiry.patient.x"), the file has the bare one ("$[2].patient.x"). */
static void report_item_error(const struct produce_run *run, size_t i, bool wrapped,
                              const char *err)
{
    char where[32];
    item_path(run, i, where, sizeof(where));
    if (err[0] != '$') {
        ctl_error("produce: %s: %s: %s", run->file, where, err);
        return;
    }
    const char *rest = err + 1;
    if (wrapped) {
        size_t n = strlen(run->wrap_field);
        if (rest[0] == '.' && strncmp(rest + 1, run->wrap_field, n) == 0 &&
            (rest[1 + n] == '.' || rest[1 + n] == '[' || rest[1 + n] == ':' ||
             rest[1 + n] == '\0'))
            rest += 1 + n;
    }
    ctl_error("produce: %s: %s%s", run->file, where, rest);
}

/* Sets name in obj to a new string unless obj has it already. */
static int default_string(json_t *obj, const char *name, const char *value)
{
    if (json_object_get(obj, name) != NULL)
        return 0;
    return json_object_set_new(obj, name, json_string(value));
}

/* Completes meta where it is absent or incomplete: a new event_id, occurred_at now, this
 * program as producer, the inquiry id (else the event id) as correlation_id, no case and no
 * cause. A meta that is not an object is left for the encoder to report. */
static int fill_meta(json_t *record, json_t *wrapped_record)
{
    json_t *meta = json_object_get(record, "meta");
    char event_id[CF_UUID_LEN + 1];
    char now[40];
    struct timespec ts;
    const char *inquiry_id;

    if (meta == NULL) {
        if ((meta = json_object()) == NULL || json_object_set_new(record, "meta", meta) != 0)
            return -1;
    }
    if (!json_is_object(meta))
        return 0;
    if (cf_uuid_v4(event_id) != CF_OK)
        return -1;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    cf_avro_format_millis((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, now, sizeof(now));
    if (default_string(meta, "event_id", event_id) != 0 ||
        default_string(meta, "occurred_at", now) != 0 ||
        default_string(meta, "producer", "caseflowctl/" CF_VERSION) != 0)
        return -1;

    /* DESIGN.md §2: correlation_id is the inquiry id the case started from. */
    inquiry_id = json_string_value(json_object_get(record, "inquiry_id"));
    if (inquiry_id == NULL)
        inquiry_id = json_string_value(json_object_get(wrapped_record, "inquiry_id"));
    if (inquiry_id == NULL || !cf_uuid_valid(inquiry_id))
        inquiry_id = json_string_value(json_object_get(meta, "event_id"));
    if (inquiry_id != NULL && default_string(meta, "correlation_id", inquiry_id) != 0)
        return -1;
    if (json_object_get(meta, "case_id") == NULL &&
        json_object_set_new(meta, "case_id", json_null()) != 0)
        return -1;
    if (json_object_get(meta, "causation_id") == NULL &&
        json_object_set_new(meta, "causation_id", json_null()) != 0)
        return -1;
    return 0;
}

/* The record's key: the topic's key field at top level, in the wrapped record, or
 * meta.case_id. NULL if none is a non-empty string. */
static const char *find_key(const struct produce_run *run, const json_t *record)
{
    const char *field = run->info->key_field;
    const char *key = json_string_value(json_object_get(record, field));
    if ((key == NULL || *key == '\0') && run->wrap_field != NULL)
        key = json_string_value(
            json_object_get(json_object_get(record, run->wrap_field), field));
    if (key == NULL || *key == '\0')
        key = json_string_value(json_object_get(json_object_get(record, "meta"), "case_id"));
    return key != NULL && *key != '\0' ? key : NULL;
}

/* Completes, keys and encodes item i into run->pending[i]. Returns 0, or -1 after reporting. */
static int prepare(struct produce_run *run, struct cf_serde *serde, size_t i, json_t *item)
{
    struct pending *p = &run->pending[i];
    char err[CTL_ERR_MAX];
    char where[32];
    json_t *record = NULL;
    bool wrapped = false;
    cf_status st;

    item_path(run, i, where, sizeof(where));
    if (!json_is_object(item)) {
        ctl_error("produce: %s: %s: expected an object", run->file, where);
        return -1;
    }
    /* A bare inquiry has neither the wrapping field nor meta. */
    if (run->wrap_field != NULL && json_object_get(item, run->wrap_field) == NULL &&
        json_object_get(item, "meta") == NULL) {
        record = json_object();
        if (record == NULL || json_object_set(record, run->wrap_field, item) != 0) {
            json_decref(record);
            goto nomem;
        }
        wrapped = true;
    } else {
        record = json_incref(item);
    }
    /* Kept in run->records from here on, which owns it. */
    if (json_array_append_new(run->records, record) != 0)
        goto nomem;
    if (fill_meta(record, run->wrap_field != NULL ? json_object_get(record, run->wrap_field)
                                                  : NULL) != 0)
        goto nomem;

    p->key = find_key(run, record);
    if (p->key == NULL) {
        ctl_error("produce: %s: %s: no key: no string %s at the top level%s%s, nor a "
                  "meta.case_id",
                  run->file, where, run->info->key_field, run->wrap_field != NULL ? ", in " : "",
                  run->wrap_field != NULL ? run->wrap_field : "");
        return -1;
    }
    st = cf_serde_encode_json(serde, run->topic, record, &p->buf, &p->len, err, sizeof(err));
    if (st != CF_OK) {
        report_item_error(run, i, wrapped, err);
        return -1;
    }
    st = cf_cloudevent_from_json(&p->ce, "caseflowctl", cf_schema_name(run->schema), record,
                                 err, sizeof(err));
    if (st != CF_OK) {
        ctl_error("produce: %s: %s: %s", run->file, where, err);
        return -1;
    }
    return 0;
nomem:
    ctl_error("produce: %s: out of memory", run->file);
    return -1;
}

/* Parses a JSON file ("-": stdin). Errors name the file, line and column; jansson's "near
 * '...'" part is left out, as it would echo the file's content. */
json_t *ctl_load_json(const char *path)
{
    char *text = NULL;
    size_t len = 0;
    json_error_t jerr;

    if (read_file(path, &text, &len) != 0)
        return NULL;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (doc == NULL) {
        char *near = strstr(jerr.text, " near ");
        if (near != NULL)
            *near = '\0';
        ctl_error("%s:%d:%d: invalid JSON: %s", path, jerr.line, jerr.column, jerr.text);
    }
    return doc;
}

/* Sets how many records run->doc holds (an object is one). */
static int count_records(struct produce_run *run)
{
    if (json_is_array(run->doc)) {
        run->is_array = true;
        run->count = json_array_size(run->doc);
    } else if (json_is_object(run->doc)) {
        run->count = 1;
    } else {
        ctl_error("produce: %s: $: expected a JSON object or an array of objects", run->file);
        return -1;
    }
    return 0;
}

static int print_result(const struct produce_run *run, const struct pending *p)
{
    json_t *line = json_pack("{s:s, s:s, s:s}", "topic", run->topic, "key", p->key,
                             "event_id", p->ce.id);
    char *text = line != NULL ? json_dumps(line, JSON_COMPACT) : NULL;
    int rc = 0;
    if (text == NULL || fputs(text, stdout) == EOF || fputc('\n', stdout) == EOF ||
        fflush(stdout) == EOF)
        rc = -1;
    free(text);
    json_decref(line);
    return rc;
}

int ctl_produce(const struct ctl *ctl, int argc, char **argv)
{
    if (argc != 3) {
        ctl_error("usage: caseflowctl produce TOPIC FILE.json|-");
        return CTL_EXIT_USAGE;
    }
    if (cf_topics_find(argv[1]) == NULL) {
        ctl_error("produce: %.249s is not a caseflow topic (caseflowctl --help lists what "
                  "topics create makes; dead letters are replayed, not produced)",
                  argv[1]);
        return CTL_EXIT_USAGE;
    }
    json_t *doc = ctl_load_json(argv[2]);
    if (doc == NULL)
        return CTL_EXIT_FAIL;
    int rc = ctl_produce_json(ctl, argv[1], doc, argv[2]);
    json_decref(doc);
    return rc;
}

/* ctl_produce_json and ctl_produce_json_quiet: print says whether the per-record lines are
 * printed. */
static int produce_json(const struct ctl *ctl, const char *topic, json_t *doc, const char *source,
                        bool print)
{
    struct produce_run run;
    struct cf_registry *registry = NULL;
    struct cf_serde *serde = NULL;
    struct cf_kafka_producer *producer = NULL;
    char err[CTL_ERR_MAX];
    int32_t schema_id = 0;
    size_t sent = 0;
    int rc = CTL_EXIT_FAIL;
    cf_status st;

    memset(&run, 0, sizeof(run));
    run.topic = topic;
    run.file = source;
    run.info = cf_topics_find(run.topic);
    run.doc = json_incref(doc);
    if (run.info == NULL || count_records(&run) != 0)
        goto out;
    if ((run.records = json_array()) == NULL ||
        (run.count > 0 && (run.pending = calloc(run.count, sizeof(*run.pending))) == NULL)) {
        ctl_error("produce: out of memory");
        goto out;
    }

    st = ctl_serde_open(ctl, &registry, &serde, err, sizeof(err));
    if (st == CF_OK)
        st = cf_serde_topic_schema(serde, run.topic, &run.schema, &schema_id, err,
                                   sizeof(err));
    if (st != CF_OK) {
        ctl_error("produce: %s: %s (%s)", run.topic, err, cf_strerror(st));
        goto out;
    }
    run.wrap_field = find_wrap_field(run.schema);

    for (size_t i = 0; i < run.count; i++) {
        json_t *item = run.is_array ? json_array_get(run.doc, i) : run.doc;
        if (prepare(&run, serde, i, item) != 0)
            goto out;
    }
    if (run.count == 0) {
        rc = CTL_EXIT_OK;
        goto out;
    }

    st = cf_kafka_producer_new(ctl->config, NULL, ctl->kafka_timeout_ms, &producer, err,
                               sizeof(err));
    if (st != CF_OK) {
        ctl_error("produce: %s (%s)", err, cf_strerror(st));
        goto out;
    }
    for (; sent < run.count; sent++) {
        const struct pending *p = &run.pending[sent];
        if (*ctl->stop) {
            ctl_error("produce: interrupted after %zu of %zu records", sent, run.count);
            goto out;
        }
        st = cf_kafka_produce_sync(producer, run.topic, p->key, strlen(p->key), p->buf, p->len,
                                   p->ce.headers, CF_CE_HEADER_COUNT, ctl->kafka_timeout_ms, err,
                                   sizeof(err));
        if (st != CF_OK) {
            ctl_error("produce: %s: record %zu (event %s): %s (%s); %zu of %zu sent before it",
                      run.topic, sent, p->ce.id, err, cf_strerror(st), sent, run.count);
            goto out;
        }
        if (print && print_result(&run, p) != 0) {
            ctl_error("produce: cannot write to stdout");
            goto out;
        }
    }
    rc = CTL_EXIT_OK;
out:
    cf_kafka_producer_free(producer);
    ctl_serde_close(registry, serde);
    for (size_t i = 0; run.pending != NULL && i < run.count; i++)
        free(run.pending[i].buf);
    free(run.pending);
    json_decref(run.records);
    json_decref(run.doc);
    return rc;
}

int ctl_produce_json(const struct ctl *ctl, const char *topic, json_t *doc, const char *source)
{
    return produce_json(ctl, topic, doc, source, true);
}

int ctl_produce_json_quiet(const struct ctl *ctl, const char *topic, json_t *doc,
                           const char *source)
{
    return produce_json(ctl, topic, doc, source, false);
}
