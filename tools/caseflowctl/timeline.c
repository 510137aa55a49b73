/* timeline.c — caseflowctl case ID: one case's timeline assembled from the topics.
 *
 * Every topic keyed by case_id (cf_topics_all) and every service's dead-letter topic is read
 * from its beginning to its end as it is now (ctl_read_key); the case's records are sorted by
 * their meta.occurred_at (a dead letter by its dlq.failed_at) and printed one line each:
 *
 *   2026-12-07T05:10:01.123Z  CaseValidated  validation/0.1.0  {"priority":"HIGH",...}
 *
 * the event's fields but its meta. Without --show-personal-data, what names, reaches or
 * describes a person (the recipient, the inquiry, contact and guardian details, staff names
 * and addresses) and what opens a door (join links, change tokens) is left out, so the output
 * can be pasted into a ticket. A dead letter shows the service that gave up, the reason and the
 * error, never the record it could not read. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"
#include "dlq.h"
#include "topics.h"
#include "uuid.h"

static const char case_usage[] = "usage: caseflowctl case CASE_ID [--show-personal-data]";

/* The services with a dead-letter topic (ctl.h). */
static const char *const dlq_services[] = CTL_DLQ_SERVICES;

/* Fields left out without --show-personal-data, wherever they appear in an event. */
static const char *const personal[] = {
    "recipient",       "inquiry",  "contact",     "guardian",         "date_of_birth",
    "description",     "reports",  "patient_key", "manager_name",     "manager_email",
    "specialist_name", "join_url", "token",       "reschedule_token", "cancel_token",
};

struct timeline {
    bool show_personal;
    json_t *entries; /* [{"at", "what", "by", "details"}] */
    size_t undecodable;
};

static bool is_personal(const char *key)
{
    for (size_t i = 0; i < sizeof(personal) / sizeof(personal[0]); i++)
        if (strcmp(key, personal[i]) == 0)
            return true;
    return false;
}

/* Removes the personal fields from an object, recursively. */
static void strip(json_t *v)
{
    const char *key;
    json_t *child;
    void *tmp;
    size_t i;

    if (json_is_object(v)) {
        json_object_foreach_safe(v, tmp, key, child)
        {
            if (is_personal(key))
                (void)json_object_del(v, key);
            else
                strip(child);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, child) strip(child);
    }
}

static int add_entry(void *ctx, const struct cf_kafka_record *r, json_t *value, const char *error)
{
    struct timeline *t = ctx;
    json_t *entry = NULL;

    if (strncmp(r->topic, CF_DLQ_TOPIC_PREFIX, strlen(CF_DLQ_TOPIC_PREFIX)) == 0) {
        entry = json_pack("{s:o, s:s, s:o, s:{s:o, s:o, s:o}}", "at",
                          ctl_header_json(r, "dlq.failed_at"), "what", "DeadLetter", "by",
                          ctl_header_json(r, "dlq.service"), "details", "source_topic",
                          ctl_header_json(r, "dlq.source.topic"), "reason",
                          ctl_header_json(r, "dlq.reason"), "error",
                          ctl_header_json(r, "dlq.error"));
    } else if (value != NULL) {
        const json_t *meta = json_object_get(value, "meta");
        const struct cf_topic *topic = cf_topics_find(r->topic);
        const char *schema = topic != NULL ? topic->schema_name : r->topic;
        const char *dot = strrchr(schema, '.');
        json_t *details = json_deep_copy(value);
        if (details == NULL)
            return CTL_EXIT_FAIL;
        (void)json_object_del(details, "meta");
        if (!t->show_personal)
            strip(details);
        entry = json_pack("{s:O, s:s, s:O, s:o}", "at", json_object_get(meta, "occurred_at"),
                          "what", dot != NULL ? dot + 1 : schema, "by",
                          json_object_get(meta, "producer"), "details", details);
    } else {
        if (error != NULL)
            t->undecodable++;
        return 0; /* a tombstone, or a record that cannot be read: counted, not shown */
    }
    if (entry == NULL || json_array_append_new(t->entries, entry) != 0) {
        ctl_error("case: out of memory");
        return CTL_EXIT_FAIL;
    }
    return 0;
}

static int by_time(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "at"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "at"));
    return strcmp(x != NULL ? x : "", y != NULL ? y : "");
}

int ctl_case(const struct ctl *ctl, int argc, char **argv)
{
    struct timeline t = {false, json_array(), 0};
    const char *case_id = NULL;
    const char *topics[64];
    char dlq[sizeof(dlq_services) / sizeof(dlq_services[0])][CF_DLQ_TOPIC_MAX];
    size_t n = 0, count = 0;
    int rc = CTL_EXIT_USAGE;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--show-personal-data") == 0)
            t.show_personal = true;
        else if (case_id == NULL && argv[i][0] != '-')
            case_id = argv[i];
        else
            goto usage;
    }
    if (case_id == NULL || !cf_uuid_valid(case_id))
        goto usage;
    const struct cf_topic *all = cf_topics_all(&count);
    for (size_t i = 0; i < count && n < sizeof(topics) / sizeof(topics[0]); i++)
        if (strcmp(all[i].key_field, "case_id") == 0)
            topics[n++] = all[i].name;
    for (size_t i = 0; i < sizeof(dlq_services) / sizeof(dlq_services[0]); i++)
        if (cf_dlq_topic(dlq_services[i], dlq[i], sizeof(dlq[i])) == CF_OK)
            topics[n++] = dlq[i];
    if (t.entries == NULL) {
        ctl_error("case: out of memory");
        return CTL_EXIT_FAIL;
    }
    rc = ctl_read_key(ctl, "case", topics, n, case_id, add_entry, &t);
    if (rc != CTL_EXIT_OK)
        goto out;
    size_t len = json_array_size(t.entries);
    if (len == 0) {
        ctl_error("case: case %s not found on the case topics", case_id);
        rc = CTL_EXIT_FAIL;
        goto out;
    }
    json_t **sorted = malloc(len * sizeof(*sorted));
    if (sorted == NULL) {
        ctl_error("case: out of memory");
        rc = CTL_EXIT_FAIL;
        goto out;
    }
    for (size_t i = 0; i < len; i++)
        sorted[i] = json_array_get(t.entries, i);
    /* Stable enough: occurred_at has milliseconds; ties keep no particular order. */
    qsort(sorted, len, sizeof(*sorted), by_time);
    for (size_t i = 0; i < len; i++) {
        char *details = json_dumps(json_object_get(sorted[i], "details"), JSON_COMPACT);
        const char *at = json_string_value(json_object_get(sorted[i], "at"));
        const char *by = json_string_value(json_object_get(sorted[i], "by"));
        (void)printf("%-24s  %-26s  %-22s  %s\n", at != NULL ? at : "-",
                     json_string_value(json_object_get(sorted[i], "what")), by != NULL ? by : "-",
                     details != NULL ? details : "{}");
        free(details);
    }
    free(sorted);
    if (t.undecodable > 0)
        ctl_error("case: warning: %zu record(s) of case %s could not be decoded and are not shown",
                  t.undecodable, case_id);
    rc = fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
out:
    json_decref(t.entries);
    return rc;
usage:
    ctl_error("case: %s", case_usage);
    json_decref(t.entries);
    return CTL_EXIT_USAGE;
}
