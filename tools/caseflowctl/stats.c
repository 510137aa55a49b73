/* stats.c — caseflowctl stats: how the pipeline stands, from the broker alone.
 *
 *   topics        offsets on each caseflow topic (records and transaction markers: Kafka
 *                 counts both) — what has gone through;
 *   consumer lag  per service and input topic, what its group has not committed yet;
 *   dead letters  offsets on each service's dead-letter topic;
 *   cases         how many cases stand at each stage: the stage of a case is the topic of its
 *                 newest record (by record timestamp) among the topics that move a case along.
 * Nothing is decoded: keys, offsets and timestamps say it all, and no personal data is read. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"
#include "dlq.h"
#include "kafka.h"
#include "topics.h"

/* The services' consumer groups and what they read (their main.c). */
static const struct {
    const char *group;
    const char *topics[8];
} groups[] = {
    {"caseflow-intake", {"caseflow.inquiry.submitted"}},
    {"caseflow-validation",
     {"caseflow.case.opened", "caseflow.case.info-provided", "caseflow.case.reviewed",
      "caseflow.case.closed"}},
    {"caseflow-assignment", {"caseflow.case.validated", "caseflow.case.closed"}},
    {"caseflow-scheduler",
     {"caseflow.case.assigned", "caseflow.teleconsult.change-requested",
      "caseflow.teleconsult.completed", "caseflow.case.closed"}},
    {"caseflow-notifier",
     {"caseflow.case.opened", "caseflow.case.info-requested", "caseflow.case.rejected",
      "caseflow.case.assigned", "caseflow.teleconsult.scheduled",
      "caseflow.teleconsult.reminder-due", "caseflow.treatment.booked", "caseflow.case.closed"}},
};

/* The topics that move a case to a stage, and the stage's name, in the journey's order. */
static const struct {
    const char *topic;
    const char *stage;
} stages[] = {
    {"caseflow.case.opened", "opened"},
    {"caseflow.case.info-requested", "needs_information"},
    {"caseflow.case.review-requested", "in_review"},
    {"caseflow.case.validated", "validated"},
    {"caseflow.case.rejected", "rejected"},
    {"caseflow.case.assigned", "assigned"},
    {"caseflow.case.pending", "pending"},
    {"caseflow.teleconsult.scheduled", "teleconsult_scheduled"},
    {"caseflow.teleconsult.completed", "teleconsult_completed"},
    {"caseflow.treatment.booked", "treatment_booked"},
    {"caseflow.case.closed", "closed"},
};
#define NSTAGES (sizeof(stages) / sizeof(stages[0]))

static const char *const dlq_services[] = CTL_DLQ_SERVICES;

/* A group that never commits anything: its "lag" on a topic is the topic's offsets. */
#define NO_GROUP "caseflowctl-stats-offsets"

static int print_offsets(const struct ctl *ctl, const char *topic)
{
    struct cf_kafka_group_progress p;
    char err[CTL_ERR_MAX];
    cf_status st = cf_kafka_group_progress(ctl->config, NO_GROUP, topic, ctl->kafka_timeout_ms, &p,
                                           err, sizeof(err));
    if (st != CF_OK) {
        ctl_error("stats: %s: %s (%s)", topic, err, cf_strerror(st));
        return CTL_EXIT_FAIL;
    }
    (void)printf("  %-42s %12lld\n", topic, (long long)p.lag);
    return CTL_EXIT_OK;
}

/* Keeps each case's newest stage record: case id -> [timestamp, stage index]. */
static int note_stage(void *ctx, const struct cf_kafka_record *r)
{
    json_t *newest = ctx;
    size_t stage = 0;
    while (stage < NSTAGES && strcmp(stages[stage].topic, r->topic) != 0)
        stage++;
    if (r->key == NULL || r->value == NULL || stage == NSTAGES)
        return 0;
    char key[128];
    size_t n = r->key_len < sizeof(key) - 1 ? r->key_len : sizeof(key) - 1;
    memcpy(key, r->key, n);
    key[n] = '\0';
    /* Of records of the same millisecond (a CaseRejected and its CaseClosed come in one
     * transaction) the later stage of the journey counts, whichever was read first. */
    json_t *had = json_object_get(newest, key);
    if (had != NULL) {
        json_int_t had_ts = json_integer_value(json_array_get(had, 0));
        json_int_t had_stage = json_integer_value(json_array_get(had, 1));
        if (had_ts > r->timestamp_ms ||
            (had_ts == r->timestamp_ms && had_stage > (json_int_t)stage))
            return 0;
    }
    json_t *entry = json_pack("[I, I]", (json_int_t)r->timestamp_ms, (json_int_t)stage);
    if (entry == NULL || json_object_set_new(newest, key, entry) != 0) {
        ctl_error("stats: out of memory");
        return CTL_EXIT_FAIL;
    }
    return 0;
}

/* Reads the stage topics to their ends and counts each case's newest stage. */
static int count_stages(const struct ctl *ctl, long long counts[NSTAGES])
{
    const char *topics[NSTAGES];
    json_t *newest = json_object();
    if (newest == NULL) {
        ctl_error("stats: out of memory");
        return CTL_EXIT_FAIL;
    }
    for (size_t i = 0; i < NSTAGES; i++)
        topics[i] = stages[i].topic;
    int rc = ctl_read_topics(ctl, "stats", topics, NSTAGES, note_stage, newest);
    const char *key;
    json_t *v;
    json_object_foreach(newest, key, v)
    {
        counts[json_integer_value(json_array_get(v, 1))]++;
    }
    json_decref(newest);
    return rc;
}

int ctl_stats(const struct ctl *ctl, int argc, char **argv)
{
    char err[CTL_ERR_MAX], dlq[CF_DLQ_TOPIC_MAX];
    size_t count = 0;
    long long counts[NSTAGES] = {0};
    int rc = CTL_EXIT_OK;
    (void)argv;

    if (argc != 1) {
        ctl_error("stats: usage: caseflowctl stats");
        return CTL_EXIT_USAGE;
    }
    (void)printf("offsets per topic (records and transaction markers)\n");
    const struct cf_topic *all = cf_topics_all(&count);
    for (size_t i = 0; i < count && rc == CTL_EXIT_OK; i++)
        rc = print_offsets(ctl, all[i].name);
    (void)printf("consumer lag per service (offsets not committed yet)\n");
    for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]) && rc == CTL_EXIT_OK; g++) {
        long long total = 0;
        for (size_t t = 0; t < 8 && groups[g].topics[t] != NULL; t++) {
            struct cf_kafka_group_progress p;
            cf_status st =
                cf_kafka_group_progress(ctl->config, groups[g].group, groups[g].topics[t],
                                        ctl->kafka_timeout_ms, &p, err, sizeof(err));
            if (st != CF_OK) {
                ctl_error("stats: %s on %s: %s (%s)", groups[g].group, groups[g].topics[t], err,
                          cf_strerror(st));
                rc = CTL_EXIT_FAIL;
                break;
            }
            total += p.lag;
        }
        (void)printf("  %-42s %12lld\n", groups[g].group, total);
    }
    (void)printf("dead letters per service (offsets)\n");
    for (size_t i = 0; i < sizeof(dlq_services) / sizeof(dlq_services[0]) && rc == CTL_EXIT_OK; i++)
        if (cf_dlq_topic(dlq_services[i], dlq, sizeof(dlq)) == CF_OK)
            rc = print_offsets(ctl, dlq);
    if (rc == CTL_EXIT_OK)
        rc = count_stages(ctl, counts);
    if (rc == CTL_EXIT_OK) {
        (void)printf("cases per stage (the topic of each case's newest record)\n");
        for (size_t i = 0; i < NSTAGES; i++)
            (void)printf("  %-42s %12lld\n", stages[i].stage, counts[i]);
    }
    if (fflush(stdout) != 0)
        rc = CTL_EXIT_FAIL;
    return rc;
}
