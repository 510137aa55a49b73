/* group.c — caseflowctl group to-end: a service's consumer group moved past what its topics
 * hold, what `kafka-consumer-groups --reset-offsets --to-latest` does. */
#include <stdio.h>

#include "ctl.h"
#include "kafka.h"

int ctl_group_to_end(const struct ctl *ctl, int argc, char **argv)
{
    char err[CTL_ERR_MAX] = "";
    if (argc < 3) {
        ctl_error("group to-end takes a group and at least one topic");
        return CTL_EXIT_USAGE;
    }
    const char *group = argv[1];
    cf_status st = cf_kafka_group_to_end(ctl->config, group, (const char *const *)&argv[2],
                                         (size_t)(argc - 2), ctl->kafka_timeout_ms, err,
                                         sizeof(err));
    if (st != CF_OK) {
        ctl_error("group to-end %s: %s", group, err);
        return st == CF_EINVAL ? CTL_EXIT_USAGE : CTL_EXIT_FAIL;
    }
    if (printf("%s at the end of %d topic(s)\n", group, argc - 2) < 0)
        return CTL_EXIT_FAIL;
    return CTL_EXIT_OK;
}
