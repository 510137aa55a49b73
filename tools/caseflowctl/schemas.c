/* schemas.c — caseflowctl schemas register: every topic's value schema into the registry,
 * under BACKWARD compatibility (schemas/README.md, "Evolution"). */
#include <stdio.h>

#include "ctl.h"
#include "topics.h"

int ctl_schemas_register(const struct ctl *ctl, int argc, char **argv)
{
    struct cf_registry *registry = NULL;
    struct cf_serde *serde = NULL;
    size_t ntopics = 0;
    const struct cf_topic *topics = cf_topics_all(&ntopics);
    char err[CTL_ERR_MAX];
    int rc = CTL_EXIT_OK;
    cf_status st;

    (void)argv;
    if (argc != 1) {
        ctl_error("schemas register takes no arguments");
        return CTL_EXIT_USAGE;
    }
    st = ctl_serde_open(ctl, &registry, &serde, err, sizeof(err));
    if (st != CF_OK) {
        ctl_error("schemas register: %s (%s)", err, cf_strerror(st));
        return CTL_EXIT_FAIL;
    }
    /* Go through every topic even after a failure, so one run reports every refused schema. */
    for (size_t i = 0; i < ntopics && !*ctl->stop; i++) {
        const struct cf_schema *schema = NULL;
        int32_t id = 0;
        char subject[300];
        (void)snprintf(subject, sizeof(subject), "%s-value", topics[i].name);
        st = cf_serde_topic_schema(serde, topics[i].name, &schema, &id, err, sizeof(err));
        if (st != CF_OK) {
            ctl_error("schemas register: %s: %s (%s)", subject, err, cf_strerror(st));
            rc = CTL_EXIT_FAIL;
            continue;
        }
        /* Set after registering: the first version needs no check, and every later one must
         * let consumers on the new schema read what was written with the old (README.md). */
        st = cf_registry_set_compatibility(registry, subject, "BACKWARD", err, sizeof(err));
        if (st != CF_OK) {
            ctl_error("schemas register: %s: set compatibility: %s (%s)", subject, err,
                      cf_strerror(st));
            rc = CTL_EXIT_FAIL;
            continue;
        }
        (void)printf("%s %d\n", subject, (int)id);
    }
    if (*ctl->stop)
        rc = CTL_EXIT_FAIL;
    if (fflush(stdout) != 0) {
        ctl_error("schemas register: cannot write to stdout");
        rc = CTL_EXIT_FAIL;
    }
    ctl_serde_close(registry, serde);
    return rc;
}
