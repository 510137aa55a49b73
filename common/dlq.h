/* dlq.h — the dead-letter record a service writes when an input record can never be processed
 * (DESIGN.md §5): the original key, value and headers, plus headers that say what failed.
 *
 * Pure functions on plain structs (no Kafka call), so the format is unit-tested without a
 * broker; the Kafka loop (kafka.c) produces the result inside the batch's transaction.
 *
 * Headers added after the original ones (all values UTF-8 text):
 *   dlq.reason            stable code: decode_failed, invalid_input, schema_error, not_found,
 *                         too_big, output_rejected, ... (cf_dlq_reason)
 *   dlq.error             the handler's error text, at most CF_DLQ_ERROR_MAX bytes, control
 *                         characters replaced by spaces
 *   dlq.source.topic      the input topic
 *   dlq.source.partition  decimal
 *   dlq.source.offset     decimal
 *   dlq.service           the service that gave up on it
 *   dlq.failed_at         RFC 3339 UTC with milliseconds, "2026-11-24T03:00:00.123Z"
 *   dlq.value_dropped     "true", only when the value was left out (CF_DLQ_DROP_VALUE)
 * Original headers whose names start with "dlq." (a replayed record that failed again) are
 * left out, so a dead letter describes exactly one failure. */
#ifndef CF_DLQ_H
#define CF_DLQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka.h"
#include "status.h"

#define CF_DLQ_TOPIC_PREFIX "caseflow.dlq."
/* Kafka's longest topic name is 249 bytes. */
#define CF_DLQ_TOPIC_MAX 250
#define CF_DLQ_ERROR_MAX 512
#define CF_DLQ_REASON_MAX 64

/* cf_dlq_build flags. */
#define CF_DLQ_DROP_VALUE 0x1u /* leave the value out (it was too big to write again) */

struct cf_dlq_record {
    char topic[CF_DLQ_TOPIC_MAX]; /* caseflow.dlq.<service> */
    const void *key;              /* the original key (borrowed from the input record) */
    size_t key_len;
    const void *value; /* the original value (borrowed), NULL if dropped */
    size_t value_len;
    struct cf_header *headers; /* owned; names and values point into the input record or
                                * into the buffers below */
    size_t header_count;
    /* Storage for the added header values. */
    char reason[CF_DLQ_REASON_MAX];
    char error[CF_DLQ_ERROR_MAX + 1];
    char partition[16];
    char offset[24];
    char failed_at[32];
};

/* Writes caseflow.dlq.<service> into buf. CF_EINVAL if service is empty or not
 * [A-Za-z0-9._-], CF_ETOOBIG if the name would not fit buf or Kafka's 249 bytes. */
cf_status cf_dlq_topic(const char *service, char *buf, size_t len);

/* The stable dlq.reason code for a handler status: decode_failed, invalid_input,
 * schema_error, not_found, too_big; "failed" for any other status. Never NULL. */
const char *cf_dlq_reason(cf_status status);

/* Builds the dead-letter record of in. reason is a code as above ([a-z0-9_], at most
 * CF_DLQ_REASON_MAX - 1 bytes); error_text may be NULL or empty; failed_at_ms is the Unix time
 * in milliseconds. out borrows the key, value and original headers of in, so it must not
 * outlive it; release it with cf_dlq_record_clear, also after a failure.
 * CF_EINVAL for a bad service or reason, CF_ETOOBIG, CF_ENOMEM. */
cf_status cf_dlq_build(const struct cf_kafka_record *in, const char *service, const char *reason,
                       const char *error_text, int64_t failed_at_ms, unsigned flags,
                       struct cf_dlq_record *out, char *errbuf, size_t errlen);

/* True if a header of that name is one cf_dlq_build adds ("dlq." and more): what a dead letter
 * says of its failure, left out when the original record is written again. NULL is false. */
bool cf_dlq_header(const char *name);

/* Frees what cf_dlq_build allocated and zeroes the record. NULL-safe. */
void cf_dlq_record_clear(struct cf_dlq_record *record);

#endif
