/* test_env.h — what integration tests share: clocks, unique names, a Kafka config. */
#ifndef CF_TEST_ENV_H
#define CF_TEST_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Milliseconds of the monotonic clock, for deadlines. */
int64_t cf_test_now_ms(void);

/* Sleeps ms milliseconds, through signals. */
void cf_test_sleep_ms(long ms);

/* "<pid>-<unix seconds>": unique to a test run, for topic, group, subject and key names. */
void cf_test_run_id(char *buf, size_t len);

/* The schema registry to test against: CASEFLOW_REGISTRY_URL, or the local stack's. */
const char *cf_test_registry_url(void);

/* A config of table[0..n) from the environment's KAFKA_* variables alone (the local stack's
 * defaults otherwise), so a test runs the same whatever CASEFLOW_* the shell has. NULL, with
 * the reason on stderr, if it does not load. The caller frees it (cf_config_free). */
struct cf_config *cf_test_kafka_config(const struct cf_config_entry *table, size_t n);

#endif
