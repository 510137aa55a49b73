/* kafka_internal.h — INTERNAL to the kafka module: not for services, tools or tests, which use
 * kafka.h, the module's only public interface.
 *
 * The module is split by noun: kafka.c (what every client shares), kafka_producer.c,
 * kafka_consumer.c, kafka_admin.c, kafka_out.c and kafka_loop.c. What is declared here is
 * defined once, in kafka.c, because a second kafka*.c file needs it; a helper that only one file
 * uses stays static there. These are external symbols of libcaseflow, hence the kafka_ prefix
 * (public functions are cf_kafka_). The comments that describe these functions stay with their
 * definitions in kafka.c. */
#ifndef CF_KAFKA_INTERNAL_H
#define CF_KAFKA_INTERNAL_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "clock.h"
#include "kafka.h"
#include "status.h"

/* Longest blocking poll, so a stop flag is seen within half a second. */
#define POLL_MAX_MS 500
/* Size of librdkafka's error-string buffers. */
#define ERRSTR_MAX 512
/* Kafka's longest topic name is 249 bytes. */
#define TOPIC_MAX 249

/* ---- Small helpers ----------------------------------------------------------------------- */

int kafka_clamp_timeout(long long ms);
bool kafka_name_ok(const char *s, size_t max);

/* ---- Configuration and clients ----------------------------------------------------------- */

struct kv {
    const char *key;
    const char *value;
};

/* The size is spelled out so that sizeof works in the files that use the table; kafka.c's
 * definition must agree with it (the compiler checks). */
extern const struct kv kafka_producer_defaults[3];

cf_status kafka_conf_build(const struct cf_config *config, const struct kv *defaults,
                           size_t ndefaults, const struct kv *fixed, size_t nfixed, void *opaque,
                           rd_kafka_conf_t **out, char *errbuf, size_t errlen);
cf_status kafka_client_new(rd_kafka_type_t type, rd_kafka_conf_t **conf, rd_kafka_t **out,
                           char *errbuf, size_t errlen);
cf_status kafka_check_fatal(rd_kafka_t *rk, cf_status st, char *errbuf, size_t errlen);
void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque);

/* ---- Records, headers and topic metadata ------------------------------------------------- */

rd_kafka_resp_err_t kafka_enqueue(rd_kafka_t *rk, const char *topic, const void *key,
                                  size_t key_len, const void *value, size_t value_len,
                                  const struct cf_header *headers, size_t header_count,
                                  void *msg_opaque, int timeout_ms);
cf_status kafka_record_view(const rd_kafka_message_t *m, struct cf_header **scratch, size_t *cap,
                            struct cf_kafka_record *rec);
rd_kafka_resp_err_t kafka_topic_metadata(rd_kafka_t *rk, const char *topic, int timeout_ms,
                                         const struct rd_kafka_metadata **out);

/* librdkafka 2.0.2 looks up a topic it has not seen before only on its once-a-second topic
 * scan, so the first record to each new topic waits up to a second (but the very first one,
 * which rides on the bootstrap metadata request). Asking for the topic's metadata first takes
 * a few milliseconds; a producer remembers up to this many topics it asked about. */
#define KNOWN_TOPICS_MAX 64

struct known_topics {
    char *names[KNOWN_TOPICS_MAX];
    size_t n;
};

void kafka_known_topic(rd_kafka_t *rk, struct known_topics *known, const char *topic,
                       int timeout_ms);
void kafka_known_topics_clear(struct known_topics *known);

/* ---- Rebalances and topic lists ---------------------------------------------------------- */

bool kafka_apply_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t *parts);
rd_kafka_topic_partition_list_t *kafka_topic_list(const char *const *topics, size_t ntopics);
cf_status kafka_check_topics(const char *const *topics, size_t ntopics, char *errbuf,
                             size_t errlen);

#endif
