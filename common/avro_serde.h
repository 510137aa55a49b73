/* avro_serde.h — Avro records in the Confluent wire format, safely.
 *
 *   byte 0      magic 0
 *   bytes 1-4   schema id, big-endian, as the registry numbers it
 *   bytes 5-    Avro binary of one record, written with that schema
 *
 * Decoding never trusts the bytes: before avro-c sees a record, cf_serde_check_bounds() walks
 * it with the writer's schema and checks every length, count, enum index and union branch
 * against the bytes left, because avro-c 1.11.1 allocates whatever a length claims and leaks
 * it on error. Records written with another (older or newer) schema are decoded with that
 * schema and projected into the reader's (cf_avro_project), as avro-c cannot resolve them.
 *
 * Values are avro-c generic values; callers that prefer plain JSON use the _json functions.
 * avro-c here is built without thread support: use one cf_serde per thread. */
#ifndef CF_AVRO_SERDE_H
#define CF_AVRO_SERDE_H

#include <avro.h>
#include <jansson.h>
#include <stdint.h>

#include "registry.h"
#include "schema.h"

#define CF_SERDE_HEADER_LEN 5
/* Largest record accepted or produced, the broker's default message.max.bytes. */
#define CF_SERDE_MAX_RECORD (1024 * 1024)

/* Splits a wire-format record. CF_EDECODE with a precise reason for empty, short records and
 * a wrong magic byte; CF_ETOOBIG above CF_SERDE_MAX_RECORD. payload points into buf. On failure
 * the outputs are 0 / NULL / 0. */
cf_status cf_serde_wire_parse(const void *buf, size_t len, int32_t *schema_id,
                              const unsigned char **payload, size_t *payload_len, char *errbuf,
                              size_t errlen);

/* Checks that payload is exactly one record of the writer schema, every length and count
 * within the bytes left. CF_EDECODE naming what was wrong and where. */
cf_status cf_serde_check_bounds(avro_schema_t writer, const void *payload, size_t len,
                                char *errbuf, size_t errlen);

/* Decodes payload, written with writer, into *out: a new value of reader's class, the
 * caller's to avro_value_decref. writer and reader may be the same schema. */
cf_status cf_serde_decode_payload(const struct cf_schema *writer, const struct cf_schema *reader,
                                  const void *payload, size_t len, avro_value_t *out,
                                  char *errbuf, size_t errlen);

/* Encodes value with the wire header for schema_id into a new buffer (*out, malloc'd, the
 * caller's to free). CF_ETOOBIG above CF_SERDE_MAX_RECORD. */
cf_status cf_serde_encode_wire(int32_t schema_id, avro_value_t *value, unsigned char **out,
                               size_t *len, char *errbuf, size_t errlen);

/* Topic-level codec: the reader schema of each topic comes from schemas/ (common/topics.h
 * names it), is registered under the subject "<topic>-value" on first use, and writer schemas
 * come from the registry by id. */
struct cf_serde;

/* registry is borrowed and must outlive the serde; schema_dir NULL or "" means the built-in
 * schemas/ directory. */
cf_status cf_serde_new(struct cf_registry *registry, const char *schema_dir,
                       struct cf_serde **out, char *errbuf, size_t errlen);

/* NULL-safe. */
void cf_serde_free(struct cf_serde *serde);

/* The topic's reader schema and its registry id (registering it if needed). CF_ENOTFOUND for
 * a topic that is not a caseflow topic. *schema belongs to serde. */
cf_status cf_serde_topic_schema(struct cf_serde *serde, const char *topic,
                                const struct cf_schema **schema, int32_t *schema_id,
                                char *errbuf, size_t errlen);

/* Wire-format record of the topic's schema from value (of that schema's class). */
cf_status cf_serde_encode(struct cf_serde *serde, const char *topic, avro_value_t *value,
                          unsigned char **out, size_t *len, char *errbuf, size_t errlen);

/* Decodes a wire-format record of the topic into *out, a new value of the topic's reader
 * schema (avro_value_decref). A record written with the reader schema itself (the topic's
 * registered id, or any id whose registry schema equals the reader's) is decoded straight into
 * it; one written with another schema is decoded with that schema and projected. Unknown
 * schema ids give CF_ENOTFOUND, bad bytes CF_EDECODE, an unreachable registry CF_EIO/
 * CF_ETIMEOUT (retriable). */
cf_status cf_serde_decode(struct cf_serde *serde, const char *topic, const void *buf,
                          size_t len, avro_value_t *out, char *errbuf, size_t errlen);

/* Records decoded by this serde (cf_serde_decode and cf_serde_decode_json) since it was made:
 * straight into the reader schema, or with the writer's schema and then projected. */
struct cf_serde_stats {
    uint64_t direct;
    uint64_t projected;
};
void cf_serde_get_stats(const struct cf_serde *serde, struct cf_serde_stats *out);

/* cf_serde_encode and cf_serde_decode through JSON (avro_convert.h describes the form): missing
 * fields take defaults. The encoded buffer and the decoded JSON are the caller's (free,
 * json_decref). */
cf_status cf_serde_encode_json(struct cf_serde *serde, const char *topic, const json_t *json,
                               unsigned char **out, size_t *len, char *errbuf, size_t errlen);
cf_status cf_serde_decode_json(struct cf_serde *serde, const char *topic, const void *buf,
                               size_t len, json_t **out, char *errbuf, size_t errlen);

#endif
