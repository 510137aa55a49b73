/* redis_pipeline.c — pipelines of the Redis module (cf_redis_pipeline_*, declared in redis.h).
 *
 * A pipeline encodes each command when it is appended, with the same encoders as the single
 * commands, into one buffer; exec hands that buffer to redis_roundtrip() like a single command,
 * so reconnects, backoff and script loading follow the same rules (see redis.c). */
#include "redis.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "log.h"
#include "redis_internal.h"

struct pipeline_cmd {
    const struct cf_redis_script *script; /* the script of an EVALSHA, else NULL */
    cf_status status;
    struct cf_redis_value *value;
};

struct cf_redis_pipeline {
    char prefix[CF_REDIS_MAX_PREFIX + 1];
    char *buf; /* the encoded commands, back to back */
    size_t len, cap;
    struct pipeline_cmd *cmds;
    size_t n, ncap;
    const struct cf_redis_script *scripts[CF_REDIS_MAX_PIPELINE_SCRIPTS];
    size_t nscripts;
    bool resend_safe; /* every command may run twice */
    bool executed;
};

cf_status cf_redis_pipeline_new(const struct cf_redis *r, struct cf_redis_pipeline **out)
{
    if (out == NULL)
        return CF_EINVAL;
    *out = NULL;
    if (r == NULL)
        return CF_EINVAL;
    struct cf_redis_pipeline *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return CF_ENOMEM;
    memcpy(p->prefix, r->prefix, sizeof(p->prefix));
    p->resend_safe = true;
    *out = p;
    return CF_OK;
}

static void pipeline_clear_replies(struct cf_redis_pipeline *p)
{
    for (size_t i = 0; i < p->n; i++) {
        cf_redis_value_free(p->cmds[i].value);
        p->cmds[i].value = NULL;
        p->cmds[i].status = CF_OK;
    }
    p->executed = false;
}

void cf_redis_pipeline_reset(struct cf_redis_pipeline *p)
{
    if (p == NULL)
        return;
    pipeline_clear_replies(p);
    p->len = 0;
    p->n = 0;
    p->nscripts = 0;
    p->resend_safe = true;
}

void cf_redis_pipeline_free(struct cf_redis_pipeline *p)
{
    if (p == NULL)
        return;
    pipeline_clear_replies(p);
    free(p->cmds);
    free(p->buf);
    free(p);
}

size_t cf_redis_pipeline_count(const struct cf_redis_pipeline *p)
{
    return p != NULL ? p->n : 0;
}

/* Appends an encoded command (taking ownership of cmd, freed in every case). */
static cf_status pipeline_add(struct cf_redis_pipeline *p, char *cmd, size_t cmdlen,
                              const struct cf_redis_script *script, char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    bool new_script = false;
    if (p->n >= CF_REDIS_MAX_PIPELINE || cmdlen > CF_REDIS_MAX_PIPELINE_BYTES - p->len) {
        st = cf_fail(errbuf, errlen, CF_ETOOBIG, "redis pipeline: over %d commands or %d bytes",
                     CF_REDIS_MAX_PIPELINE, CF_REDIS_MAX_PIPELINE_BYTES);
        goto out;
    }
    if (script != NULL) {
        new_script = true;
        for (size_t i = 0; i < p->nscripts; i++)
            if (p->scripts[i] == script || strcmp(p->scripts[i]->sha, script->sha) == 0)
                new_script = false;
        if (new_script && p->nscripts == CF_REDIS_MAX_PIPELINE_SCRIPTS) {
            st = cf_fail(errbuf, errlen, CF_ETOOBIG, "redis pipeline: over %d scripts",
                         CF_REDIS_MAX_PIPELINE_SCRIPTS);
            goto out;
        }
    }
    if (p->len + cmdlen > p->cap) {
        size_t cap = p->cap > 0 ? p->cap : 4096;
        while (cap < p->len + cmdlen)
            cap *= 2;
        if (cap > CF_REDIS_MAX_PIPELINE_BYTES)
            cap = CF_REDIS_MAX_PIPELINE_BYTES;
        char *buf = realloc(p->buf, cap);
        if (buf == NULL) {
            st = cf_fail(errbuf, errlen, CF_ENOMEM, "redis pipeline: buffer");
            goto out;
        }
        p->buf = buf;
        p->cap = cap;
    }
    if (p->n == p->ncap) {
        size_t ncap = p->ncap > 0 ? p->ncap * 2 : 64;
        struct pipeline_cmd *cmds = realloc(p->cmds, ncap * sizeof(*cmds));
        if (cmds == NULL) {
            st = cf_fail(errbuf, errlen, CF_ENOMEM, "redis pipeline: commands");
            goto out;
        }
        p->cmds = cmds;
        p->ncap = ncap;
    }
    /* Appending after an exec starts a new batch: old replies no longer match. */
    pipeline_clear_replies(p);
    memcpy(p->buf + p->len, cmd, cmdlen);
    p->len += cmdlen;
    p->cmds[p->n++] = (struct pipeline_cmd){.script = script, .status = CF_OK, .value = NULL};
    if (new_script)
        p->scripts[p->nscripts++] = script;
    if (script != NULL && (script->flags & CF_REDIS_SCRIPT_IDEMPOTENT) == 0)
        p->resend_safe = false;
out:
    redisFreeCommand(cmd);
    return st;
}

cf_status cf_redis_pipeline_set(struct cf_redis_pipeline *p, const char *key, const void *value,
                                size_t len, long long ttl_seconds, char *errbuf, size_t errlen)
{
    if (p == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis pipeline is NULL");
    char *cmd = NULL;
    size_t cmdlen = 0;
    cf_status st = redis_encode_set(p->prefix, key, value, len, ttl_seconds, false, &cmd, &cmdlen,
                                    errbuf, errlen);
    return st == CF_OK ? pipeline_add(p, cmd, cmdlen, NULL, errbuf, errlen) : st;
}

cf_status cf_redis_pipeline_get(struct cf_redis_pipeline *p, const char *key, char *errbuf,
                                size_t errlen)
{
    if (p == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis pipeline is NULL");
    char *cmd = NULL;
    size_t cmdlen = 0;
    cf_status st = redis_encode_key_cmd(p->prefix, "GET", key, &cmd, &cmdlen, errbuf, errlen);
    return st == CF_OK ? pipeline_add(p, cmd, cmdlen, NULL, errbuf, errlen) : st;
}

cf_status cf_redis_pipeline_del(struct cf_redis_pipeline *p, const char *key, char *errbuf,
                                size_t errlen)
{
    if (p == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis pipeline is NULL");
    char *cmd = NULL;
    size_t cmdlen = 0;
    cf_status st = redis_encode_key_cmd(p->prefix, "DEL", key, &cmd, &cmdlen, errbuf, errlen);
    return st == CF_OK ? pipeline_add(p, cmd, cmdlen, NULL, errbuf, errlen) : st;
}

cf_status cf_redis_pipeline_zrange_scores(struct cf_redis_pipeline *p, const char *key,
                                          int64_t min_score, int64_t max_score, char *errbuf,
                                          size_t errlen)
{
    if (p == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis pipeline is NULL");
    char min[24], max[24];
    (void)snprintf(min, sizeof(min), "%" PRId64, min_score);
    (void)snprintf(max, sizeof(max), "(%" PRId64, max_score);
    const char *args[] = {min, max};
    char *cmd = NULL;
    size_t cmdlen = 0;
    cf_status st = redis_encode_key_args(p->prefix, "ZRANGEBYSCORE", key, 2, args, &cmd, &cmdlen,
                                         errbuf, errlen);
    return st == CF_OK ? pipeline_add(p, cmd, cmdlen, NULL, errbuf, errlen) : st;
}

cf_status cf_redis_pipeline_script(struct cf_redis_pipeline *p,
                                   const struct cf_redis_script *script, size_t nkeys,
                                   const char *const *keys, size_t nargs, const char *const *args,
                                   const size_t *arglens, char *errbuf, size_t errlen)
{
    if (p == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis pipeline is NULL");
    char *cmd = NULL;
    size_t cmdlen = 0;
    cf_status st = redis_encode_script(p->prefix, script, nkeys, keys, nargs, args, arglens, &cmd,
                                       &cmdlen, errbuf, errlen);
    return st == CF_OK ? pipeline_add(p, cmd, cmdlen, script, errbuf, errlen) : st;
}

cf_status cf_redis_pipeline_exec(struct cf_redis *r, struct cf_redis_pipeline *p, char *errbuf,
                                 size_t errlen)
{
    redisReply **replies = NULL;
    cf_status st = redis_check_r(r, errbuf, errlen);
    if (st == CF_OK && p == NULL)
        st = cf_fail(errbuf, errlen, CF_EINVAL, "redis pipeline is NULL");
    if (st != CF_OK)
        return st;
    pipeline_clear_replies(p);
    if (p->n == 0) {
        p->executed = true;
        return CF_OK;
    }
    replies = calloc(p->n, sizeof(*replies));
    if (replies == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "redis pipeline: replies");
    struct exchange x = {.cmd = p->buf,
                         .cmdlen = p->len,
                         .n = p->n,
                         .scripts = p->scripts,
                         .nscripts = p->nscripts,
                         .replies = replies};
    for (int round = 0;; round++) {
        st = redis_roundtrip(r, &x, p->resend_safe, NULL, errbuf, errlen);
        if (st != CF_OK)
            goto out;
        size_t noscript = p->n;
        for (size_t i = 0; i < p->n && noscript == p->n; i++)
            if (p->cmds[i].script != NULL && redis_error_noscript(replies[i]))
                noscript = i;
        if (noscript == p->n)
            break;
        /* Scripts flushed under a live connection: the commands before (and any after) the
         * NOSCRIPT ones ran, so the batch may be sent again only if all of it may run twice. */
        redis_free_replies(replies, p->n);
        for (size_t i = 0; i < p->nscripts; i++)
            redis_script_forget(r, p->scripts[i]);
        if (round > 0 || !p->resend_safe) {
            st = cf_fail(errbuf, errlen, CF_EIO,
                         "redis pipeline: NOSCRIPT at command %zu; part of the batch may have "
                         "run, retry it",
                         noscript);
            goto out;
        }
        CF_LOG(CF_LOG_INFO, "redis_pipeline_script_reload", CF_LOG_INT("command", noscript));
    }

    for (size_t i = 0; i < p->n; i++) {
        char err[ERRLEN] = "";
        const char *what = p->cmds[i].script != NULL ? "EVALSHA" : "command";
        p->cmds[i].status =
            redis_value_from_reply(replies[i], what, &p->cmds[i].value, err, sizeof(err));
        if (p->cmds[i].status != CF_OK && st == CF_OK)
            st = cf_fail(errbuf, errlen, p->cmds[i].status, "redis pipeline command %zu: %s", i,
                         err);
    }
    p->executed = true;
out:
    if (replies != NULL)
        redis_free_replies(replies, p->n);
    free(replies);
    return st;
}

cf_status cf_redis_pipeline_reply(const struct cf_redis_pipeline *p, size_t index,
                                  const struct cf_redis_value **value)
{
    if (value != NULL)
        *value = NULL;
    if (p == NULL || !p->executed || index >= p->n)
        return CF_EINVAL;
    if (value != NULL)
        *value = p->cmds[index].value;
    return p->cmds[index].status;
}
