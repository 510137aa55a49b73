/* uuid.h — random (version 4) UUIDs for event ids. */
#ifndef CF_UUID_H
#define CF_UUID_H

#include <stdbool.h>

#include "status.h"

#define CF_UUID_LEN 36

/* Writes a new random UUID, lower-case, into out (CF_UUID_LEN + 1 bytes). CF_EIO only if the
 * kernel's random source fails. */
cf_status cf_uuid_v4(char out[CF_UUID_LEN + 1]);

/* True if s is a UUID in the canonical 8-4-4-4-12 hex form. */
bool cf_uuid_valid(const char *s);

#endif
