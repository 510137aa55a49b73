/* sched_token.c — join tokens and signed change tokens (see sched_token.h). */
#include "sched_token.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

size_t sched_base64url(const unsigned char *in, size_t len, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

cf_status sched_token_sign(const unsigned char *secret, size_t secret_len, const char *action,
                           const char *teleconsult_id, int64_t start_ms,
                           char out[SCHED_TOKEN_LEN + 1])
{
    char msg[160];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    if (out != NULL)
        out[0] = '\0';
    if (secret == NULL || secret_len == 0 || secret_len > INT32_MAX || action == NULL ||
        teleconsult_id == NULL || out == NULL)
        return CF_EINVAL;
    int n = snprintf(msg, sizeof(msg), "%s\n%s\n%" PRId64, action, teleconsult_id, start_ms);
    if (n < 0 || (size_t)n >= sizeof(msg))
        return CF_EINVAL;
    if (HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)msg, (size_t)n, md,
             &md_len) == NULL ||
        md_len != 32)
        return CF_EIO;
    (void)sched_base64url(md, md_len, out);
    OPENSSL_cleanse(md, sizeof(md));
    return CF_OK;
}

bool sched_token_verify(const unsigned char *secret, size_t secret_len, const char *action,
                        const char *teleconsult_id, int64_t start_ms, const char *token)
{
    char want[SCHED_TOKEN_LEN + 1];
    if (token == NULL || strlen(token) != SCHED_TOKEN_LEN)
        return false;
    if (sched_token_sign(secret, secret_len, action, teleconsult_id, start_ms, want) != CF_OK)
        return false;
    /* Constant time: a forger learns nothing from how long a mismatch takes. */
    bool ok = CRYPTO_memcmp(want, token, SCHED_TOKEN_LEN) == 0;
    OPENSSL_cleanse(want, sizeof(want));
    return ok;
}

cf_status sched_join_token(char out[SCHED_JOIN_TOKEN_LEN + 1])
{
    unsigned char raw[16];
    if (RAND_bytes(raw, (int)sizeof(raw)) != 1)
        return CF_EIO;
    (void)sched_base64url(raw, sizeof(raw), out);
    return CF_OK;
}
