/* topics.h — the caseflow topics, their keys, schemas and settings (DESIGN.md §2). */
#ifndef CF_TOPICS_H
#define CF_TOPICS_H

#include <stdbool.h>
#include <stddef.h>

struct cf_topic {
    const char *name;        /* "caseflow.case.opened" */
    const char *schema_name; /* full Avro name; schemas/<schema_name>.avsc */
    const char *key_field;   /* the id the record is keyed by */
    bool compacted;          /* rosters: cleanup.policy=compact, kept forever */
};

/* All caseflow topics except the dead-letter topics, which carry copies of other topics'
 * records and have no schema of their own. The array is static. */
const struct cf_topic *cf_topics_all(size_t *count);

/* The topic called name, or NULL. */
const struct cf_topic *cf_topics_find(const char *name);

#endif
