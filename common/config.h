/* config.h — table-driven configuration from the environment.
 *
 * Every program declares one table of {name, type, default, bounds, help}; the names are the
 * environment variables themselves (CASEFLOW_REDIS_PORT), so what an operator sets is what
 * the code reads. cf_config_load() validates everything once at start and names the bad key.
 * Variables starting with KAFKA_ are passed through to librdkafka: KAFKA_BOOTSTRAP_SERVERS
 * becomes bootstrap.servers (lower-case, '_' -> '.'); librdkafka itself validates them. */
#ifndef CF_CONFIG_H
#define CF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

typedef enum cf_config_type {
    CF_CONFIG_STRING, /* min/max bound the length in bytes */
    CF_CONFIG_INT,    /* min/max bound the value */
    CF_CONFIG_BOOL,   /* true/false, 1/0, yes/no, on/off */
} cf_config_type;

struct cf_config_entry {
    const char *name;          /* the environment variable, "CASEFLOW_..." */
    cf_config_type type;
    const char *default_value; /* NULL: the variable is required */
    long long min, max;
    const char *help;          /* one line, shown by --help and in deploy/caseflow.env.example */
};

/* Entries every caseflow program has; put CF_CONFIG_COMMON_ENTRIES first in a program's table.
 * Defaults point at the local stack started by deploy/stack. */
#define CF_CONFIG_COMMON_ENTRIES                                                                 \
    {"CASEFLOW_LOG_LEVEL", CF_CONFIG_STRING, "info", 4, 5, "debug, info, warn or error"},        \
    {"CASEFLOW_REGISTRY_URL", CF_CONFIG_STRING, "http://127.0.0.1:18081/apis/ccompat/v7", 8,     \
     1024, "Confluent-compatible schema registry base URL"},                                     \
    {"CASEFLOW_REGISTRY_TIMEOUT_MS", CF_CONFIG_INT, "5000", 100, 120000,                         \
     "timeout of one schema registry request"},                                                  \
    {"CASEFLOW_SCHEMA_DIR", CF_CONFIG_STRING, "", 0, 4096,                                       \
     "directory of the .avsc files (empty: the source tree's schemas/)"}

/* Bootstrap servers unless KAFKA_BOOTSTRAP_SERVERS says otherwise. */
#define CF_CONFIG_DEFAULT_BOOTSTRAP "127.0.0.1:19092"

struct cf_config;

/* Reads every entry of table[0..n) from envp (a NULL-terminated "NAME=value" array such as
 * environ), applies defaults and checks types and bounds. A variable that starts with
 * CASEFLOW_ but is not in the table is logged as a warning, not refused: one environment
 * serves several programs and deploy/stack, and each reads only its own keys.
 * On success *out is a new config the caller frees with cf_config_free(); on failure *out is
 * NULL, the status is CF_ECONFIG and errbuf names the key and what is wrong with it (CF_ENOMEM if
 * memory runs out, CF_EINVAL if table or out is NULL). envp may be NULL (an empty environment).
 * errbuf never contains a STRING value: those may be secrets. */
cf_status cf_config_load(const struct cf_config_entry *table, size_t n, char *const *envp,
                         struct cf_config **out, char *errbuf, size_t errlen);

/* NULL-safe. */
void cf_config_free(struct cf_config *config);

/* Typed getters. name must be in the program's table with that type: anything else is a
 * programming error and aborts. The string belongs to config. */
const char *cf_config_string(const struct cf_config *config, const char *name);
long long cf_config_int(const struct cf_config *config, const char *name);
bool cf_config_bool(const struct cf_config *config, const char *name);

/* The librdkafka properties from KAFKA_* variables, in the order found; *key is the
 * librdkafka name ("bootstrap.servers"). Both strings belong to config. Returns false when
 * index is past the end. */
bool cf_config_kafka_property(const struct cf_config *config, size_t index, const char **key,
                              const char **value);

/* Writes the table as a documented example environment file (one "# help" line and one
 * "NAME=default" line per entry) to the stream. */
void cf_config_write_example(const struct cf_config_entry *table, size_t n, void *stream);

#endif
