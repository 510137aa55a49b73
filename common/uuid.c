/* uuid.c — version 4 UUIDs from the kernel's random source. */
#define _DEFAULT_SOURCE /* getrandom() */
#include "uuid.h"

#include <ctype.h>
#include <string.h>
#include <sys/random.h>

cf_status cf_uuid_v4(char out[CF_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
        return CF_EIO;
    b[6] = (unsigned char)((b[6] & 0x0F) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    size_t o = 0;
    for (size_t i = 0; i < sizeof(b); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0F];
    }
    out[o] = '\0';
    return CF_OK;
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
