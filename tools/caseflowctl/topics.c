/* topics.c — caseflowctl topics create: every topic of DESIGN.md §2 with its partitions,
 * cleanup policy and retention. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "dlq.h"
#include "kafka.h"
#include "topics.h"

#define DAY_MS ((int64_t)24 * 60 * 60 * 1000)

/* The services that own a dead-letter topic (ctl.h). */
static const char *const dlq_services[] = CTL_DLQ_SERVICES;
#define DLQ_N (sizeof(dlq_services) / sizeof(dlq_services[0]))

/* "30 days", "forever", or the milliseconds when they are not whole days. */
static void format_retention(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        (void)snprintf(buf, len, "forever");
    else if (ms > 0 && ms % DAY_MS == 0)
        (void)snprintf(buf, len, "%" PRId64 " days", ms / DAY_MS);
    else
        (void)snprintf(buf, len, "%" PRId64 " ms", ms);
}

int ctl_topics_create(const struct ctl *ctl, int argc, char **argv)
{
    size_t ntopics = 0;
    const struct cf_topic *topics = cf_topics_all(&ntopics);
    struct cf_topic_spec specs[32];
    char dlq_names[DLQ_N][CF_DLQ_TOPIC_MAX];
    char err[CTL_ERR_MAX];
    size_t n = 0;
    int rc = CTL_EXIT_OK;
    cf_status st;

    (void)argv;
    if (argc != 1) {
        ctl_error("topics create takes no arguments");
        return CTL_EXIT_USAGE;
    }
    if (ntopics + DLQ_N > sizeof(specs) / sizeof(specs[0])) {
        ctl_error("topics create: more topics than this build expects");
        return CTL_EXIT_FAIL;
    }

    const int partitions = (int)cf_config_int(ctl->config, "CASEFLOW_TOPIC_PARTITIONS");
    const int replication = (int)cf_config_int(ctl->config, "CASEFLOW_TOPIC_REPLICATION");
    const int64_t event_ms = cf_config_int(ctl->config, "CASEFLOW_EVENT_RETENTION_DAYS") * DAY_MS;
    const int64_t dlq_ms = cf_config_int(ctl->config, "CASEFLOW_DLQ_RETENTION_DAYS") * DAY_MS;

    for (size_t i = 0; i < ntopics; i++) {
        /* A roster topic holds the latest record per id and must never lose one to age. */
        specs[n++] = (struct cf_topic_spec){
            .name = topics[i].name,
            .partitions = partitions,
            .replication_factor = replication,
            .cleanup_policy = topics[i].compacted ? "compact" : "delete",
            .retention_ms = topics[i].compacted ? -1 : event_ms,
        };
    }
    for (size_t i = 0; i < DLQ_N; i++) {
        if (cf_dlq_topic(dlq_services[i], dlq_names[i], sizeof(dlq_names[i])) != CF_OK) {
            ctl_error("topics create: bad dead-letter service name %s", dlq_services[i]);
            return CTL_EXIT_FAIL;
        }
        specs[n++] = (struct cf_topic_spec){
            .name = dlq_names[i],
            .partitions = partitions,
            .replication_factor = replication,
            .cleanup_policy = "delete",
            .retention_ms = dlq_ms,
        };
    }

    st = cf_kafka_create_topics(ctl->config, specs, n, ctl->kafka_timeout_ms, err, sizeof(err));
    if (st != CF_OK) {
        ctl_error("topics create: %s (%s)", err, cf_strerror(st));
        return CTL_EXIT_FAIL;
    }

    /* Read back what the broker applies: a topic that existed before keeps its own settings,
     * and an operator should see that rather than what was asked for. */
    for (size_t i = 0; i < n && !*ctl->stop; i++) {
        struct cf_topic_info info;
        char retention[32];
        memset(&info, 0, sizeof(info));
        st = cf_kafka_describe_topic(ctl->config, specs[i].name, ctl->kafka_timeout_ms, &info,
                                     err, sizeof(err));
        if (st != CF_OK) {
            ctl_error("topics create: describe %s: %s (%s)", specs[i].name, err,
                      cf_strerror(st));
            rc = CTL_EXIT_FAIL;
            continue;
        }
        format_retention(info.retention_ms, retention, sizeof(retention));
        (void)printf("%-40s partitions=%-3d replication=%d cleanup.policy=%-7s retention=%s\n",
                     specs[i].name, info.partitions, info.replication_factor,
                     info.cleanup_policy, retention);
        if (strcmp(info.cleanup_policy, specs[i].cleanup_policy) != 0 ||
            info.retention_ms != specs[i].retention_ms) {
            char wanted[32];
            format_retention(specs[i].retention_ms, wanted, sizeof(wanted));
            ctl_error("warning: %s existed with other settings (wanted cleanup.policy=%s "
                      "retention=%s); they were left as they are",
                      specs[i].name, specs[i].cleanup_policy, wanted);
        }
    }
    if (*ctl->stop)
        rc = CTL_EXIT_FAIL;
    if (fflush(stdout) != 0) {
        ctl_error("topics create: cannot write to stdout");
        rc = CTL_EXIT_FAIL;
    }
    return rc;
}
