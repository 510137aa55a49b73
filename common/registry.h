/* registry.h — a client of a Confluent-compatible schema registry (Apicurio's
 * /apis/ccompat/v7 here) over libcurl, with caches.
 *
 * Schemas are registered with their JSON text as written (cf_schema_text), never avro-c's
 * re-serialisation, which loses defaults and logical types. Lookups by id are cached for the
 * life of the client (an id's schema never changes), registrations per (subject, text).
 * One client per thread: it holds one curl handle. */
#ifndef CF_REGISTRY_H
#define CF_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "schema.h"

struct cf_registry;

/* base_url: ".../apis/ccompat/v7" (no trailing slash needed); timeout_ms bounds each request.
 * Makes no request yet. *out is the caller's (cf_registry_free). */
cf_status cf_registry_new(const char *base_url, long timeout_ms, struct cf_registry **out,
                          char *errbuf, size_t errlen);

/* NULL-safe; frees every cached schema. */
void cf_registry_free(struct cf_registry *registry);

/* Registers text under subject (or finds it registered) and returns its id. CF_ESCHEMA when
 * the registry refuses it (incompatible, invalid), CF_EIO/CF_ETIMEOUT when unreachable. */
cf_status cf_registry_register(struct cf_registry *registry, const char *subject,
                               const char *text, int32_t *id, char *errbuf, size_t errlen);

/* The schema with this id. *out belongs to the registry client and lives as long as it.
 * CF_ENOTFOUND for an id the registry does not know. */
cf_status cf_registry_schema(struct cf_registry *registry, int32_t id,
                             const struct cf_schema **out, char *errbuf, size_t errlen);

/* Sets a subject's compatibility level ("BACKWARD", "NONE", ...). */
cf_status cf_registry_set_compatibility(struct cf_registry *registry, const char *subject,
                                        const char *level, char *errbuf, size_t errlen);

/* Asks whether text is compatible with the subject's latest version under its level. */
cf_status cf_registry_check_compatibility(struct cf_registry *registry, const char *subject,
                                          const char *text, bool *compatible, char *errbuf,
                                          size_t errlen);

#endif
