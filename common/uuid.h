/* uuid.h — random (version 4) UUIDs for event ids, and name-based ones for events that must
 * keep their id when they are produced again. */
#ifndef CF_UUID_H
#define CF_UUID_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

#define CF_UUID_LEN 36

/* Writes a new random UUID, lower-case, into out (CF_UUID_LEN + 1 bytes). CF_EIO only if the
 * kernel's random source fails. */
cf_status cf_uuid_v4(char out[CF_UUID_LEN + 1]);

/* Writes the UUID named by name[0..len) into out (CF_UUID_LEN + 1 bytes): the first 16 bytes
 * of its SHA1 with the version 5 and RFC 4122 variant bits set, lower-case. The same name
 * always gives the same UUID, so an event emitted again after a crash (a timer's expiry, say)
 * carries the id it had and a consumer recognises it. name may hold any bytes. Pure. */
void cf_uuid_from_name(const void *name, size_t len, char out[CF_UUID_LEN + 1]);

/* True if s is a UUID in the canonical 8-4-4-4-12 hex form. */
bool cf_uuid_valid(const char *s);

#endif
