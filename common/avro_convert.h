/* avro_convert.h — conversions of Avro values: to and from plain JSON (jansson), with
 * defaults applied, and from a writer schema to a reader schema.
 *
 * The JSON form is what operators read and write (caseflowctl tail / produce, sample
 * inquiries): a record is an object, an enum its symbol, a union just its value (null or the
 * branch value, the branch chosen by the JSON type), a timestamp-millis an RFC 3339 UTC string
 * ("2026-11-24T09:30:00.000Z"), a date "YYYY-MM-DD", bytes a string of code points 0-255 as in
 * Avro's JSON encoding. On input, timestamps and dates may also be given as numbers, and
 * timestamps with a "+HH:MM" offset.
 *
 * Building from JSON applies the schema's defaults to missing fields (avro-c never does), and
 * rejects unknown fields, so a typo in a field name is an error, not silently lost data. */
#ifndef CF_AVRO_CONVERT_H
#define CF_AVRO_CONVERT_H

#include <avro.h>
#include <jansson.h>
#include <stdint.h>

#include "schema.h"

/* Fills value (a fresh or reset value of the type node's class) from json. type is a node of
 * schema's tree (cf_schema_root for the whole record). Errors name the JSON path
 * ("$.patient.date_of_birth: expected YYYY-MM-DD"). */
cf_status cf_avro_from_json(const struct cf_schema *schema, const json_t *type,
                            const json_t *json, avro_value_t *value, char *errbuf,
                            size_t errlen);

/* Renders value (of the type node's class) as a new JSON tree, the caller's to json_decref.
 * Fails on a string that is not UTF-8. */
cf_status cf_avro_to_json(const struct cf_schema *schema, const json_t *type,
                          avro_value_t *value, json_t **out, char *errbuf, size_t errlen);

/* Copies src, a value decoded with a writer's schema, into value of the reader's schema, as
 * Avro schema resolution says: record fields by name, fields the writer lacks take the
 * reader's default, fields the reader lacks are dropped, enums by symbol (an unknown symbol
 * takes the reader enum's default), unions by branch type, int -> long -> float -> double and
 * string <-> bytes promoted. avro-c 1.11.1 cannot do this itself (it refuses added fields with
 * defaults and double-frees on nested records), so caseflow does it here. value must be fresh
 * or reset; reader_type is a node of reader's tree (cf_schema_root for the whole record). */
cf_status cf_avro_project(const struct cf_schema *reader, const json_t *reader_type,
                          avro_value_t *src, avro_value_t *value, char *errbuf, size_t errlen);

/* RFC 3339 UTC text of a time in milliseconds since the epoch ("...T09:30:00.000Z");
 * buf needs 32 bytes. */
void cf_avro_format_millis(int64_t millis, char *buf, size_t len);

/* Parses RFC 3339 ("2026-11-24T09:30:00Z", fractions up to milliseconds, "Z" or "+HH:MM"). */
cf_status cf_avro_parse_millis(const char *text, int64_t *millis);

#endif
