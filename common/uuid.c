/* uuid.c — version 4 UUIDs from the kernel's random source, version 5 style ones from a name. */
#define _DEFAULT_SOURCE /* getrandom() */
#include "uuid.h"

#include <ctype.h>
#include <string.h>
#include <sys/random.h>

#include "sha1.h"

static const char hex[] = "0123456789abcdef";

/* Formats 16 bytes as a UUID with the given version and the RFC 4122 variant. */
static void uuid_format(unsigned char b[16], unsigned version, char out[CF_UUID_LEN + 1])
{
    b[6] = (unsigned char)((b[6] & 0x0F) | (version << 4));
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80);
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0F];
    }
    out[o] = '\0';
}

cf_status cf_uuid_v4(char out[CF_UUID_LEN + 1])
{
    unsigned char b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
        return CF_EIO;
    uuid_format(b, 4, out);
    return CF_OK;
}

void cf_uuid_from_name(const void *name, size_t len, char out[CF_UUID_LEN + 1])
{
    char digest[CF_SHA1_HEX_LEN + 1];
    unsigned char b[16];
    cf_sha1_hex(name, len, digest);
    for (size_t i = 0; i < sizeof(b); i++) {
        unsigned hi = (unsigned)(strchr(hex, digest[2 * i]) - hex);
        unsigned lo = (unsigned)(strchr(hex, digest[2 * i + 1]) - hex);
        b[i] = (unsigned char)(hi << 4 | lo);
    }
    uuid_format(b, 5, out);
}

bool cf_uuid_valid(const char *s)
{
    if (s == NULL || strlen(s) != CF_UUID_LEN)
        return false;
    for (size_t i = 0; i < CF_UUID_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}
