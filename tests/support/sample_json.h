/* sample_json.h — valid sample records for any schema, for tests (unit and integration). */
#ifndef CF_TEST_SAMPLE_JSON_H
#define CF_TEST_SAMPLE_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "schema.h"

/* A deterministic pseudo-random number (xorshift), so a failure can be reproduced. */
uint64_t cf_test_rand(void);

/* A new valid JSON document for a type node of s, in the canonical form cf_avro_to_json writes
 * (so a round trip gives an equal document). With fill_optional every union takes its last
 * branch (the value) and arrays get items; without, unions take their first (null) and arrays
 * are empty. NULL if the schema holds something the generator does not know. */
json_t *cf_test_sample_json(const struct cf_schema *s, const json_t *type, bool fill_optional);

#endif
