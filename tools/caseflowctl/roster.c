/* roster.c — caseflowctl roster load FILE [--replace]: care managers and specialists onto their
 * compacted topics (DESIGN.md §2), upserts as full records, removals as tombstones; with
 * --replace also a tombstone for every entry live on the topics that FILE does not name.
 *
 * FILE is {"care_managers": [...], "specialists": [...]}: each entry a CareManager or Specialist
 * in caseflow's JSON form without meta, or {"<id field>": "...", "delete": true}. Every entry of
 * both lists is checked and encoded before the first record is sent, so a file with a mistake
 * anywhere changes nothing. Errors name the entry and field path, never a value: rosters hold
 * names and e-mail addresses. */
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
#include "roster_view.h"
#include "tz.h"
#include "uuid.h"

/* The two lists of a roster file and where their entries go. */
struct roster_list {
    const char *member;   /* the file's member: "care_managers" */
    const char *topic;    /* caseflow.roster.care-managers */
    const char *id_field; /* the key: "manager_id" */
    bool is_specialist;   /* has time_zone, weekly_hours, slot_minutes, daily_cap */
};

static const struct roster_list roster_lists[] = {
    {"care_managers", "caseflow.roster.care-managers", "manager_id", false},
    {"specialists", "caseflow.roster.specialists", "specialist_id", true},
};
#define ROSTER_LISTS_N (sizeof(roster_lists) / sizeof(roster_lists[0]))

/* One record ready to send: buf NULL is a tombstone. The CloudEvents headers point into ce
 * itself, so an entry is never copied once filled. */
struct roster_entry {
    const struct roster_list *list;
    const char *key;    /* borrowed from the file's JSON */
    unsigned char *buf; /* wire format, owned; NULL for a tombstone */
    size_t len;
    struct cf_cloudevent ce;
};

/* Everything one run holds, freed in one place. */
struct roster_run {
    const char *file;
    json_t *doc;
    json_t *records; /* the completed records (array): keeps what entries borrow alive */
    struct roster_entry *entries;
    size_t count;
};

/* A new meta for a roster record: roster records belong to no case and start no chain, so
 * case_id and causation_id are null, and Meta's correlation_id (not nullable) is the record's
 * own event_id, as the schema's doc says. NULL when out of memory or out of randomness. */
static json_t *new_meta(void)
{
    char event_id[CF_UUID_LEN + 1];
    char now[40];
    struct timespec ts;

    if (cf_uuid_v4(event_id) != CF_OK)
        return NULL;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    cf_avro_format_millis((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, now, sizeof(now));
    return json_pack("{s:s, s:n, s:s, s:s, s:s, s:n}", "event_id", event_id, "case_id",
                     "occurred_at", now, "producer", "caseflowctl/" CF_VERSION, "correlation_id",
                     event_id, "causation_id");
}

/* "HH:MM" with HH 00-24 and MM 00-59 (24:00 only as itself) into minutes since midnight. */
static int parse_hhmm(const char *text, int *minutes)
{
    if (text == NULL || strlen(text) != 5 || text[2] != ':')
        return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (text[i] < '0' || text[i] > '9'))
            return -1;
    int h = (text[0] - '0') * 10 + (text[1] - '0');
    int m = (text[3] - '0') * 10 + (text[4] - '0');
    if (h > 24 || m > 59 || (h == 24 && m != 0))
        return -1;
    *minutes = h * 60 + m;
    return 0;
}

/* What the schema cannot say but the services rely on: positive capacities, a zone ICU knows,
 * working hours that are times and ranges. Only called on a record that encoded, so every
 * field has its schema type. Returns 0, or -1 after reporting the field at where. */
static int check_semantics(const struct roster_run *run, const struct roster_list *list,
                           const json_t *record, const char *where)
{
    static const char *const positive[] = {"capacity", "slot_minutes", "daily_cap"};
    for (size_t i = 0; i < sizeof(positive) / sizeof(positive[0]); i++) {
        const json_t *v = json_object_get(record, positive[i]);
        if (v != NULL && json_integer_value(v) < 1) {
            ctl_error("roster load: %s: %s.%s: must be at least 1", run->file, where, positive[i]);
            return -1;
        }
    }
    if (json_array_size(json_object_get(record, "languages")) == 0) {
        ctl_error("roster load: %s: %s.languages: must name at least one language", run->file,
                  where);
        return -1;
    }
    if (!list->is_specialist)
        return 0;
    if (!cf_tz_known(json_string_value(json_object_get(record, "time_zone")))) {
        ctl_error("roster load: %s: %s.time_zone: not an IANA time zone", run->file, where);
        return -1;
    }
    if (json_array_size(json_object_get(record, "conditions")) == 0) {
        ctl_error("roster load: %s: %s.conditions: must name at least one condition", run->file,
                  where);
        return -1;
    }
    size_t i;
    const json_t *range;
    json_array_foreach(json_object_get(record, "weekly_hours"), i, range)
    {
        int start = 0, end = 0;
        if (parse_hhmm(json_string_value(json_object_get(range, "start")), &start) != 0 ||
            parse_hhmm(json_string_value(json_object_get(range, "end")), &end) != 0) {
            ctl_error("roster load: %s: %s.weekly_hours[%zu]: start and end must be HH:MM "
                      "(00:00-24:00)",
                      run->file, where, i);
            return -1;
        }
        if (end <= start) {
            ctl_error("roster load: %s: %s.weekly_hours[%zu]: end must be later than start",
                      run->file, where, i);
            return -1;
        }
        if (strcmp(json_string_value(json_object_get(range, "weekday")), "UNKNOWN") == 0) {
            ctl_error("roster load: %s: %s.weekly_hours[%zu].weekday: UNKNOWN is a reader's "
                      "fallback, not a day",
                      run->file, where, i);
            return -1;
        }
    }
    return 0;
}

/* Fills e for a tombstone entry {"<id>": "...", "delete": true}: no value, and the CloudEvents
 * headers but content-type, as there is no content. */
static int prepare_tombstone(const struct roster_run *run, struct roster_entry *e,
                             const json_t *item, const char *where, const char *schema_name)
{
    char event_id[CF_UUID_LEN + 1];
    char err[CTL_ERR_MAX];
    struct timespec ts;

    if (!json_is_true(json_object_get(item, "delete")) || json_object_size(item) != 2) {
        ctl_error("roster load: %s: %s: a removal holds only %s and \"delete\": true", run->file,
                  where, e->list->id_field);
        return -1;
    }
    if (cf_uuid_v4(event_id) != CF_OK) {
        ctl_error("roster load: no randomness for an event id");
        return -1;
    }
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    if (cf_cloudevent_init(&e->ce, "caseflowctl", schema_name, event_id,
                           (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, err,
                           sizeof(err)) != CF_OK) {
        ctl_error("roster load: %s: %s: %s", run->file, where, err);
        return -1;
    }
    return 0;
}

/* Checks, completes and encodes item (entry index of list) into e. Returns 0, or -1 after
 * reporting. */
static int prepare(struct roster_run *run, struct cf_serde *serde, struct roster_entry *e,
                   const json_t *item, size_t index, json_t *seen_ids)
{
    const struct roster_list *list = e->list;
    const struct cf_schema *schema = NULL;
    char where[64], err[CTL_ERR_MAX];
    int32_t schema_id = 0;
    json_t *record = NULL, *meta = NULL;
    cf_status st;

    (void)snprintf(where, sizeof(where), "$.%s[%zu]", list->member, index);
    if (!json_is_object(item)) {
        ctl_error("roster load: %s: %s: expected an object", run->file, where);
        return -1;
    }
    e->key = json_string_value(json_object_get(item, list->id_field));
    if (e->key == NULL || e->key[0] == '\0') {
        ctl_error("roster load: %s: %s.%s: required, a non-empty string", run->file, where,
                  list->id_field);
        return -1;
    }
    /* A second entry for an id would silently replace the first on the compacted topic: far
     * more likely a copy-and-paste slip than an intent. The earlier index is named, not the
     * id. */
    const json_t *first = json_object_get(seen_ids, e->key);
    if (first != NULL) {
        ctl_error("roster load: %s: %s.%s: the same id as $.%s[%lld]", run->file, where,
                  list->id_field, list->member, (long long)json_integer_value(first));
        return -1;
    }
    if (json_object_set_new(seen_ids, e->key, json_integer((json_int_t)index)) != 0)
        goto nomem;

    st = cf_serde_topic_schema(serde, list->topic, &schema, &schema_id, err, sizeof(err));
    if (st != CF_OK) {
        ctl_error("roster load: %s: %s (%s)", list->topic, err, cf_strerror(st));
        return -1;
    }
    if (json_object_get(item, "delete") != NULL)
        return prepare_tombstone(run, e, item, where, cf_schema_name(schema));
    if (json_object_get(item, "meta") != NULL) {
        ctl_error("roster load: %s: %s.meta: caseflowctl fills meta in; leave it out", run->file,
                  where);
        return -1;
    }

    /* A copy, so that the file's JSON stays as the operator wrote it. */
    if ((record = json_copy((json_t *)item)) == NULL ||
        json_array_append_new(run->records, record) != 0)
        goto nomem;
    if ((meta = new_meta()) == NULL || json_object_set_new(record, "meta", meta) != 0)
        goto nomem;
    e->key = json_string_value(json_object_get(record, list->id_field));

    st = cf_serde_encode_json(serde, list->topic, record, &e->buf, &e->len, err, sizeof(err));
    if (st != CF_OK) {
        /* The encoder's paths start at the record ("$.languages[0]: expected a string"). */
        ctl_error("roster load: %s: %s%s", run->file, where, err[0] == '$' ? err + 1 : err);
        return -1;
    }
    if (check_semantics(run, list, record, where) != 0)
        return -1;
    st = cf_cloudevent_from_json(&e->ce, "caseflowctl", cf_schema_name(schema), record, err,
                                 sizeof(err));
    if (st != CF_OK) {
        ctl_error("roster load: %s: %s: %s", run->file, where, err);
        return -1;
    }
    return 0;
nomem:
    ctl_error("roster load: %s: out of memory", run->file);
    return -1;
}

/* Checks the file's shape and counts its entries. */
static int count_entries(struct roster_run *run)
{
    const char *member;
    const json_t *value;

    if (!json_is_object(run->doc)) {
        ctl_error("roster load: %s: $: expected an object {\"care_managers\": [...], "
                  "\"specialists\": [...]}",
                  run->file);
        return -1;
    }
    json_object_foreach(run->doc, member, value)
    {
        bool known = false;
        for (size_t l = 0; l < ROSTER_LISTS_N; l++)
            known = known || strcmp(member, roster_lists[l].member) == 0;
        /* The member name is the operator's own text, but a key, not a roster value. */
        if (!known) {
            ctl_error("roster load: %s: $.%.64s: unknown member (care_managers, specialists)",
                      run->file, member);
            return -1;
        }
        if (!json_is_array(value)) {
            ctl_error("roster load: %s: $.%s: expected an array", run->file, member);
            return -1;
        }
        run->count += json_array_size(value);
    }
    return 0;
}

/* For --replace: a removal {"<id field>": id, "delete": true} for every entry live on list's
 * topic now that the file's list does not name, appended to gone. Returns 0, or -1 after
 * reporting. */
static int live_not_in_file(const struct ctl *ctl, const struct roster_run *run,
                            struct cf_serde *serde, const struct roster_list *list, json_t *gone)
{
    struct cf_roster_view *view = NULL;
    char err[CTL_ERR_MAX];
    const json_t *items = json_object_get(run->doc, list->member);
    int rc = -1;

    if (cf_roster_view_new(ctl->config, serde, list->topic, &view, err, sizeof(err)) != CF_OK ||
        cf_roster_view_sync(view, ctl->kafka_timeout_ms, err, sizeof(err)) != CF_OK) {
        ctl_error("roster load --replace: %s: %s", list->topic, err);
        goto out;
    }
    const char *id;
    json_t *entry;
    json_object_foreach((json_t *)cf_roster_view_entries(view), id, entry)
    {
        bool named = false;
        size_t i;
        const json_t *item;
        json_array_foreach(items, i, item)
        {
            const char *own = json_string_value(json_object_get(item, list->id_field));
            named = named || (own != NULL && strcmp(own, id) == 0);
        }
        if (!named && json_array_append_new(gone, json_pack("{s:s, s:b}", list->id_field, id,
                                                            "delete", 1)) != 0) {
            ctl_error("roster load: out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    cf_roster_view_free(view);
    return rc;
}

static int print_result(const struct roster_entry *e)
{
    if (printf("%s %s %s\n", e->list->topic, e->key, e->buf != NULL ? "upsert" : "tombstone") < 0 ||
        fflush(stdout) == EOF)
        return -1;
    return 0;
}

int ctl_roster_load(const struct ctl *ctl, int argc, char **argv)
{
    struct roster_run run;
    struct cf_registry *registry = NULL;
    struct cf_serde *serde = NULL;
    struct cf_kafka_producer *producer = NULL;
    json_t *seen_ids = NULL;
    json_t *gone[ROSTER_LISTS_N] = {NULL};
    bool replace = false;
    char err[CTL_ERR_MAX];
    size_t n = 0, sent = 0;
    int rc = CTL_EXIT_FAIL;
    cf_status st;

    memset(&run, 0, sizeof(run));
    replace = argc == 3 && strcmp(argv[2], "--replace") == 0;
    if (argc != 2 && !replace) {
        ctl_error("usage: caseflowctl roster load FILE.json|- [--replace]");
        return CTL_EXIT_USAGE;
    }
    run.file = argv[1];
    if ((run.doc = ctl_load_json(run.file)) == NULL || count_entries(&run) != 0)
        goto out;
    st = ctl_serde_open(ctl, &registry, &serde, err, sizeof(err));
    if (st != CF_OK) {
        ctl_error("roster load: %s (%s)", err, cf_strerror(st));
        goto out;
    }
    /* The removals --replace adds are known before the entries are made: an entry's headers
     * point into the entry, so the array is allocated once. */
    for (size_t l = 0; replace && l < ROSTER_LISTS_N; l++) {
        if ((gone[l] = json_array()) == NULL) {
            ctl_error("roster load: out of memory");
            goto out;
        }
        if (live_not_in_file(ctl, &run, serde, &roster_lists[l], gone[l]) != 0)
            goto out;
        run.count += json_array_size(gone[l]);
    }
    if ((run.records = json_array()) == NULL ||
        (run.count > 0 && (run.entries = calloc(run.count, sizeof(*run.entries))) == NULL)) {
        ctl_error("roster load: out of memory");
        goto out;
    }

    for (size_t l = 0; l < ROSTER_LISTS_N; l++) {
        const struct roster_list *list = &roster_lists[l];
        const json_t *items = json_object_get(run.doc, list->member);
        const json_t *item;
        size_t i;
        /* Ids are unique per list: a manager and a specialist are different keys' spaces. */
        json_decref(seen_ids);
        if ((seen_ids = json_object()) == NULL) {
            ctl_error("roster load: out of memory");
            goto out;
        }
        json_array_foreach(items, i, item)
        {
            run.entries[n].list = list;
            if (prepare(&run, serde, &run.entries[n], item, i, seen_ids) != 0)
                goto out;
            n++;
        }
        /* Then the removals of --replace, indexed after the file's entries. */
        size_t first = json_array_size(items);
        json_array_foreach(gone[l], i, item)
        {
            run.entries[n].list = list;
            if (prepare(&run, serde, &run.entries[n], item, first + i, seen_ids) != 0)
                goto out;
            n++;
        }
    }
    if (run.count == 0) {
        rc = CTL_EXIT_OK;
        goto out;
    }

    st = cf_kafka_producer_new(ctl->config, NULL, ctl->kafka_timeout_ms, &producer, err,
                               sizeof(err));
    if (st != CF_OK) {
        ctl_error("roster load: %s (%s)", err, cf_strerror(st));
        goto out;
    }
    for (; sent < run.count; sent++) {
        const struct roster_entry *e = &run.entries[sent];
        /* content-type is the last header and only describes a value a tombstone lacks. */
        size_t nheaders = e->buf != NULL ? CF_CE_HEADER_COUNT : CF_CE_HEADER_COUNT - 1;
        if (*ctl->stop) {
            ctl_error("roster load: interrupted after %zu of %zu records", sent, run.count);
            goto out;
        }
        st =
            cf_kafka_produce_sync(producer, e->list->topic, e->key, strlen(e->key), e->buf, e->len,
                                  e->ce.headers, nheaders, ctl->kafka_timeout_ms, err, sizeof(err));
        if (st != CF_OK) {
            ctl_error("roster load: %s: record %zu (event %s): %s (%s); %zu of %zu sent before "
                      "it",
                      e->list->topic, sent, e->ce.id, err, cf_strerror(st), sent, run.count);
            goto out;
        }
        if (print_result(e) != 0) {
            ctl_error("roster load: cannot write to stdout");
            goto out;
        }
    }
    rc = CTL_EXIT_OK;
out:
    cf_kafka_producer_free(producer);
    ctl_serde_close(registry, serde);
    for (size_t i = 0; run.entries != NULL && i < run.count; i++)
        free(run.entries[i].buf);
    free(run.entries);
    json_decref(seen_ids);
    for (size_t l = 0; l < ROSTER_LISTS_N; l++)
        json_decref(gone[l]);
    json_decref(run.records);
    json_decref(run.doc);
    return rc;
}
