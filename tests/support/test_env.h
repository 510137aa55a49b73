/* test_env.h — what integration tests share: clocks, unique names, a Kafka config, the clients
 * and teardown of a service test, records read into JSON. */
#ifndef CF_TEST_ENV_H
#define CF_TEST_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "clock.h"
#include "config.h"

struct cf_kafka_consumer;
struct cf_registry;
struct cf_serde;

/* "<pid>-<unix seconds>": unique to a test run, for topic, group, subject and key names. */
void cf_test_run_id(char *buf, size_t len);

/* The schema registry to test against: CASEFLOW_REGISTRY_URL, or the local stack's. */
const char *cf_test_registry_url(void);

/* A config of table[0..n) from the environment's KAFKA_* variables alone (the local stack's
 * defaults otherwise), so a test runs the same whatever CASEFLOW_* the shell has. NULL, with
 * the reason on stderr, if it does not load. The caller frees it (cf_config_free). */
struct cf_config *cf_test_kafka_config(const struct cf_config_entry *table, size_t n);

/* The clients of a service test's setup: *config from cf_test_kafka_config(table, n), then a
 * registry client for cf_test_registry_url() and a serde over it. 0, or -1 with the reason on
 * stderr ("config: ..." or "registry: ..."); the caller frees what was made
 * (cf_test_service_teardown), also after -1. */
int cf_test_service_clients(const struct cf_config_entry *table, size_t n,
                            struct cf_config **config, struct cf_registry **registry,
                            struct cf_serde **serde);

/* A consumer of topics[0..n) (no group) that starts at their ends: a long-lived stack holds
 * other runs' records (a benchmark leaves tens of thousands), which a test has no use for.
 * It polls for a while before returning, so that its positions are resolved before the test
 * produces anything (what it reads meanwhile is dropped). NULL, with the reason on stderr, on
 * failure. The caller frees it (cf_kafka_consumer_free). */
struct cf_kafka_consumer *cf_test_consumer_at_end(const struct cf_config *config,
                                                  const char *const *topics, size_t n);

/* Polls consumer once, for up to timeout_ms; a record read is appended to seen as
 * {"topic", "key", "headers" (name -> value), "value"}, "value" (the record decoded to JSON
 * with serde) only when decode(topic) is true and the record decodes. Nothing on a timeout or
 * an error. */
void cf_test_poll_into(struct cf_kafka_consumer *consumer, struct cf_serde *serde,
                       bool (*decode)(const char *topic), int timeout_ms, json_t *seen);

/* The teardown of a service test: SIGKILLs and reaps pid if it is > 0 (a service a failed test
 * left running), then frees consumer, seen, serde, registry and config (each may be NULL). */
void cf_test_service_teardown(pid_t pid, struct cf_kafka_consumer *consumer, json_t *seen,
                              struct cf_serde *serde, struct cf_registry *registry,
                              struct cf_config *config);

/* Moves consumer group to the end of topics[0..n) (cf_kafka_group_to_end), so the service a
 * test is about to start does not work off what earlier tests and benchmarks left on its
 * topics: records of cases it never saw would be processed (dead-lettered or, worse, booked
 * into the test's own roster) while the test runs. The service must not be running. Fails the
 * test (cmocka) if the broker refuses. */
void cf_test_group_to_end(const struct cf_config *config, const char *group,
                          const char *const *topics, size_t n);

/* The summed committed backlog (offsets, transaction markers included) of consumer group over
 * topics[0..n), or -1 (reason on stderr) if the broker could not tell. A group that never
 * committed counts from the first offset. */
long long cf_test_group_backlog(const struct cf_config *config, const char *group,
                                const char *const *topics, size_t n);

/* Waits (printing why) while the local time in zone at now + ahead_ms is fewer than minutes
 * before midnight, so a test that books a short span of that local day does not find the day
 * ending inside it: at most minutes + ahead_ms. Fails the test (cmocka) for an unknown zone. */
void cf_test_wait_day_room(const char *zone, int64_t ahead_ms, int minutes);

#endif
