/* schema.h — an Avro schema as caseflow uses it: the avro-c handle plus the JSON it came from.
 *
 * avro-c 1.11.1 drops "default" and "logicalType" when it turns a schema back into JSON, and
 * never applies defaults, so a cf_schema keeps the JSON text (what is registered with the
 * registry) and its parsed tree (where defaults and logical types are read from).
 *
 * Files in schemas/ are named by full name (caseflow.event.CaseOpened.avsc) and may refer to
 * named types of other files by full name; cf_schema_load() inlines each referenced file at
 * its first use, so the assembled text is self-contained, as a registry and every client
 * expect. References are rewritten to full names, which is the same schema in Avro's terms. */
#ifndef CF_SCHEMA_H
#define CF_SCHEMA_H

#include <avro.h>
#include <jansson.h>
#include <stddef.h>

#include "status.h"

/* Largest .avsc file or registry schema text accepted. */
#define CF_SCHEMA_MAX_TEXT (1024 * 1024)

struct cf_schema;

/* Loads dir/<full_name>.avsc and the files it refers to. dir NULL or "" means the schemas/
 * directory this build was configured with. *out is the caller's (cf_schema_free). */
cf_status cf_schema_load(const char *dir, const char *full_name, struct cf_schema **out,
                         char *errbuf, size_t errlen);

/* Parses a self-contained schema text, e.g. one fetched from a registry. */
cf_status cf_schema_parse(const char *text, size_t len, struct cf_schema **out, char *errbuf,
                          size_t errlen);

/* NULL-safe. */
void cf_schema_free(struct cf_schema *schema);

/* The assembled JSON text (compact, NUL-terminated): what is registered. Owned by schema. */
const char *cf_schema_text(const struct cf_schema *schema);

/* The full name of the top-level named type ("caseflow.event.CaseOpened"), or the primitive
 * type name. Owned by schema. */
const char *cf_schema_name(const struct cf_schema *schema);

/* The avro-c schema and its generic value class (borrowed, live as long as schema). */
avro_schema_t cf_schema_avro(const struct cf_schema *schema);
avro_value_iface_t *cf_schema_iface(const struct cf_schema *schema);

/* The JSON node of the top-level type (borrowed). */
const json_t *cf_schema_root(const struct cf_schema *schema);

/* Follows a type node: a string naming a defined type becomes that type's definition; any
 * other node is returned as is. NULL for an unknown name. */
const json_t *cf_schema_resolve(const struct cf_schema *schema, const json_t *type);

/* The Avro type of a (resolved) JSON type node: AVRO_RECORD, AVRO_UNION (a JSON array), ...;
 * -1 if the node is not a type. logical_type (may be NULL) receives the node's "logicalType"
 * or NULL. */
int cf_schema_kind(const json_t *type, const char **logical_type);

#endif
