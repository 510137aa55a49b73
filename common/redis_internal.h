/* redis_internal.h — INTERNAL to the Redis module; include it from common/redis*.c only.
 *
 * Not part of libcaseflow's API: services and tests use redis.h, where these types stay opaque.
 * It exists because pipelines (redis_pipeline.c) run on the same connection, encoders and
 * send/retry path as single commands (redis.c), and says what the two files share. Besides
 * those two files, this is the only place hiredis types appear.
 *
 * Naming: cf_redis_... is public (redis.h); redis_... is internal to the module and declared
 * only here, as curl marks internal functions Curl_. The comments of these functions stay with
 * their definitions in redis.c. */
#ifndef CF_REDIS_INTERNAL_H
#define CF_REDIS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "redis.h"
#include "sha1.h"
#include "status.h"

/* Scripts remembered as loaded on the current connection; past this the list starts over
 * (a forgotten script costs one SCRIPT LOAD, nothing else). */
#define LOADED_MAX 32
/* Internal error texts; copied into the caller's errbuf at the end. */
#define ERRLEN 256

struct cf_redis {
    redisContext *c; /* NULL when there is no usable connection */
    char *host;
    int port;
    char *username; /* AUTH; NULL: none (or the default user with password) */
    char *password; /* NULL: no AUTH */
    struct timeval connect_tv;
    struct timeval command_tv;
    char prefix[CF_REDIS_MAX_PREFIX + 1];
    int retry_budget_ms;
    uint64_t rng;       /* xorshift state for the backoff jitter */
    long long connects; /* successful connects so far; > 1 means reconnects happened */
    char loaded[LOADED_MAX][CF_SHA1_HEX_LEN + 1];
    size_t nloaded;
};

struct cf_redis_script {
    char *source;
    size_t len;
    unsigned flags;
    char sha[CF_SHA1_HEX_LEN + 1];
};

/* One batch on the wire: n commands encoded in cmd[0..cmdlen), the scripts they use. */
struct exchange {
    const char *cmd;
    size_t cmdlen;
    size_t n;
    const struct cf_redis_script *const *scripts;
    size_t nscripts;
    redisReply **replies; /* n slots; filled only when an attempt succeeds */
};

/* Argument check (redis.c "Single commands"). */
cf_status redis_check_r(const struct cf_redis *r, char *errbuf, size_t errlen);

/* Encoding (redis.c "Encoding"): each *cmd is freed with redisFreeCommand(). */
cf_status redis_encode_set(const char *prefix, const char *key, const void *value, size_t len,
                           long long ttl_seconds, bool nx, char **cmd, size_t *cmdlen, char *errbuf,
                           size_t errlen);
cf_status redis_encode_key_cmd(const char *prefix, const char *verb, const char *key, char **cmd,
                               size_t *cmdlen, char *errbuf, size_t errlen);
/* VERB key args[0..nargs): a command of one key and a few plain (NUL-terminated) arguments. */
#define REDIS_KEY_ARGS_MAX 4
cf_status redis_encode_key_args(const char *prefix, const char *verb, const char *key,
                                size_t nargs, const char *const *args, char **cmd, size_t *cmdlen,
                                char *errbuf, size_t errlen);
cf_status redis_encode_script(const char *prefix, const struct cf_redis_script *script,
                              size_t nkeys, const char *const *keys, size_t nargs,
                              const char *const *args, const size_t *arglens, char **cmd,
                              size_t *cmdlen, char *errbuf, size_t errlen);

/* Sending a batch with reconnects (redis.c "Connection"). */
cf_status redis_roundtrip(struct cf_redis *r, struct exchange *x, bool resend_safe, bool *resent,
                          char *errbuf, size_t errlen);
void redis_free_replies(redisReply **replies, size_t n);
void redis_script_forget(struct cf_redis *r, const struct cf_redis_script *s);

/* Replies (redis.c "Replies"). */
bool redis_error_noscript(const redisReply *reply);
cf_status redis_value_from_reply(const redisReply *reply, const char *what,
                                 struct cf_redis_value **out, char *errbuf, size_t errlen);

#endif
