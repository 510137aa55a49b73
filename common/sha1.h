/* sha1.h — the SHA1 digest (FIPS 180-4) as lower-case hex.
 *
 * Used for the name Redis gives a Lua script (EVALSHA takes the SHA1 of the script's source),
 * so the Redis module can compute it without asking the server. Not for security: SHA1 is
 * broken for collision resistance. */
#ifndef CF_SHA1_H
#define CF_SHA1_H

#include <stddef.h>

#define CF_SHA1_HEX_LEN 40

/* Writes the SHA1 of data[0..len) into out as CF_SHA1_HEX_LEN lower-case hex digits and a NUL.
 * data may hold any bytes (NULs included) and may be NULL when len is 0. Pure; cannot fail. */
void cf_sha1_hex(const void *data, size_t len, char out[CF_SHA1_HEX_LEN + 1]);

#endif
