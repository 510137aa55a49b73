/* redis.c — one Redis connection over hiredis 0.14.1, owned replies, reconnect with backoff.
 *
 * Everything goes through one path: a command (or a pipeline of them) is encoded once with
 * redisFormatCommandArgv, then redis_roundtrip() sends it and reads its replies, reconnecting
 * with backoff while that is safe. Replies are copied into struct cf_redis_value with bounds, so
 * no hiredis type leaves the module's files (this one, redis_pipeline.c, redis_internal.h).
 * Pipelines live in redis_pipeline.c; what it shares with this file is declared in
 * redis_internal.h. Script SHA1s come from sha1.c. */
#include "clock.h"
#include "redis.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "log.h"
#include "redis_internal.h"
#include "sha1.h"

/* --- Small pure helpers ---------------------------------------------------------------- */

unsigned cf_redis_backoff_ms(unsigned attempt, unsigned base_ms, unsigned cap_ms, uint32_t random)
{
    if (base_ms == 0 || cap_ms == 0)
        return 0;
    unsigned d = base_ms < cap_ms ? base_ms : cap_ms;
    /* Doubling stops at the cap, so the loop runs at most ~32 times whatever attempt is. */
    for (unsigned i = 0; i < attempt && d < cap_ms; i++)
        d = d > cap_ms / 2 ? cap_ms : d * 2;
    /* Equal jitter: half the delay is fixed so retries never bunch up at 0; the other half is
     * random so replicas that lost Redis together do not come back in lockstep. */
    unsigned half = d / 2;
    return half + (unsigned)(random % ((uint64_t)(d - half) + 1));
}

static bool id_byte_ok(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == ':' || ch == '/' || ch == '-';
}

/* Names what is wrong with a byte without showing it: the key may be close to personal data. */
static const char *bad_byte_kind(unsigned char ch)
{
    if (ch == '@')
        return "an '@'";
    if (ch == ' ' || (ch >= '\t' && ch <= '\r'))
        return "whitespace";
    if (ch < 0x20 || ch == 0x7f)
        return "a control character";
    if (ch >= 0x80)
        return "a non-ASCII byte";
    return "punctuation outside [._:/-]";
}

static cf_status id_check(const char *what, const char *s, size_t max, char *errbuf,
                          size_t errlen)
{
    if (s == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis %s is NULL", what);
    size_t n = strnlen(s, max + 1);
    if (n == 0)
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis %s is empty", what);
    if (n > max)
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis %s is longer than %zu bytes", what, max);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!id_byte_ok(ch))
            return cf_fail(errbuf, errlen, CF_EINVAL,
                           "redis %s has %s at byte %zu (allowed: [A-Za-z0-9._:/-])", what,
                           bad_byte_kind(ch), i);
    }
    return CF_OK;
}

cf_status cf_redis_key_check(const char *key, char *errbuf, size_t errlen)
{
    return id_check("key", key, CF_REDIS_MAX_KEY, errbuf, errlen);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    /* A signal cuts the sleep short; a shorter wait only means an earlier attempt. */
    (void)nanosleep(&ts, NULL);
}

static struct timeval ms_to_timeval(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static uint32_t next_random(struct cf_redis *r)
{
    uint64_t x = r->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->rng = x;
    return (uint32_t)((x * 0x2545f4914f6cdd1dULL) >> 32);
}

/* --- Replies -------------------------------------------------------------------------------- */

static void value_clear(struct cf_redis_value *v)
{
    free(v->str);
    for (size_t i = 0; i < v->count; i++)
        value_clear(&v->elements[i]);
    free(v->elements);
}

void cf_redis_value_free(struct cf_redis_value *value)
{
    if (value == NULL)
        return;
    value_clear(value);
    free(value);
}

static bool has_prefix(const redisReply *reply, const char *prefix)
{
    size_t n = strlen(prefix);
    return reply->str != NULL && reply->len >= n && memcmp(reply->str, prefix, n) == 0;
}

/* Error replies that mean the command did not run and may run later. */
static bool error_not_run(const redisReply *reply)
{
    return has_prefix(reply, "LOADING ") || has_prefix(reply, "BUSY ") ||
           has_prefix(reply, "TRYAGAIN") || has_prefix(reply, "MASTERDOWN");
}

bool redis_error_noscript(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ERROR && has_prefix(reply, "NOSCRIPT");
}

/* An error reply as a status: states of the server that pass (loading, busy, out of memory,
 * read-only replica, disk full) are CF_EIO so the caller retries its batch later; everything
 * else (wrong type, syntax, script errors) is CF_EINVAL. */
static cf_status error_status(const redisReply *reply, const char *what, char *errbuf,
                              size_t errlen)
{
    cf_status st = CF_EINVAL;
    if (error_not_run(reply) || has_prefix(reply, "OOM ") || has_prefix(reply, "READONLY ") ||
        has_prefix(reply, "MISCONF ") || has_prefix(reply, "NOREPLICAS ") ||
        has_prefix(reply, "CLUSTERDOWN "))
        st = CF_EIO;
    int shown = reply->len > 300 ? 300 : (int)reply->len;
    return cf_fail(errbuf, errlen, st, "redis %s: %.*s", what, shown,
                   reply->str != NULL ? reply->str : "");
}

/* Copies reply into out (zeroed by the caller). *budget is the number of array elements still
 * allowed in the whole reply. On failure out may be half filled: value_clear() it. */
static cf_status convert(const redisReply *reply, struct cf_redis_value *out, int depth,
                         size_t *budget, const char *what, char *errbuf, size_t errlen)
{
    switch (reply->type) {
    case REDIS_REPLY_NIL:
        out->type = CF_REDIS_NIL;
        return CF_OK;
    case REDIS_REPLY_INTEGER:
        out->type = CF_REDIS_INT;
        out->integer = reply->integer;
        return CF_OK;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        out->type = reply->type == REDIS_REPLY_STRING ? CF_REDIS_STRING : CF_REDIS_STATUS;
        if (reply->len > CF_REDIS_MAX_STRING)
            return cf_fail(errbuf, errlen, CF_ETOOBIG,
                           "redis %s: reply string of %zu bytes is over %d", what, reply->len,
                           CF_REDIS_MAX_STRING);
        out->str = malloc(reply->len + 1);
        if (out->str == NULL)
            return cf_fail(errbuf, errlen, CF_ENOMEM, "redis %s: reply string", what);
        if (reply->len > 0)
            memcpy(out->str, reply->str, reply->len);
        out->str[reply->len] = '\0';
        out->len = reply->len;
        return CF_OK;
    case REDIS_REPLY_ARRAY:
        out->type = CF_REDIS_ARRAY;
        if (depth >= CF_REDIS_MAX_DEPTH)
            return cf_fail(errbuf, errlen, CF_ETOOBIG,
                           "redis %s: reply arrays nested deeper than %d", what,
                           CF_REDIS_MAX_DEPTH);
        if (reply->elements > *budget)
            return cf_fail(errbuf, errlen, CF_ETOOBIG,
                           "redis %s: reply has more than %d array elements", what,
                           CF_REDIS_MAX_ELEMENTS);
        *budget -= reply->elements;
        if (reply->elements == 0)
            return CF_OK;
        out->elements = calloc(reply->elements, sizeof(*out->elements));
        if (out->elements == NULL)
            return cf_fail(errbuf, errlen, CF_ENOMEM, "redis %s: reply array", what);
        out->count = reply->elements;
        for (size_t i = 0; i < reply->elements; i++) {
            cf_status st =
                convert(reply->element[i], &out->elements[i], depth + 1, budget, what, errbuf,
                        errlen);
            if (st != CF_OK)
                return st;
        }
        return CF_OK;
    case REDIS_REPLY_ERROR:
        /* Only inside an array (a script's table holding an error): the whole call fails. */
        return error_status(reply, what, errbuf, errlen);
    default:
        return cf_fail(errbuf, errlen, CF_EIO, "redis %s: unknown reply type %d", what,
                       reply->type);
    }
}

/* A new owned value from a non-error reply, or a status. */
cf_status redis_value_from_reply(const redisReply *reply, const char *what,
                                 struct cf_redis_value **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    if (reply->type == REDIS_REPLY_ERROR)
        return error_status(reply, what, errbuf, errlen);
    struct cf_redis_value *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "redis %s: reply", what);
    size_t budget = CF_REDIS_MAX_ELEMENTS;
    cf_status st = convert(reply, v, 0, &budget, what, errbuf, errlen);
    if (st != CF_OK) {
        cf_redis_value_free(v);
        return st;
    }
    *out = v;
    return CF_OK;
}

/* --- Connection ----------------------------------------------------------------------------- */

/* A failed hiredis call as a status. hiredis keeps errno from the failing syscall: EAGAIN comes
 * from SO_RCVTIMEO/SO_SNDTIMEO (command timeout), ETIMEDOUT from the connect timeout. */
static cf_status context_failure(const redisContext *c, int saved_errno, const char *what,
                                 char *err, size_t errlen)
{
    cf_status st = CF_EIO;
    if (c->err == REDIS_ERR_OOM)
        st = CF_ENOMEM;
    else if (c->err == REDIS_ERR_IO &&
             (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == ETIMEDOUT))
        st = CF_ETIMEOUT;
    return cf_fail(err, errlen, st, "redis %s: %s", what,
                   c->errstr[0] != '\0' ? c->errstr : "connection lost");
}

static void drop_connection(struct cf_redis *r)
{
    /* A fresh context rather than redisReconnect(): in 0.14.1 redisReconnect leaves the closed
     * fd number in the context when the new connect fails early (a later close would hit
     * whatever reused that number) and does not restore the command timeout. */
    redisFree(r->c);
    r->c = NULL;
    r->nloaded = 0;
}

/* AUTH on a fresh connection. An error reply (wrong password, unknown user, a server without
 * a password) is CF_ECONFIG: the credentials are wrong, not the network. */
static cf_status authenticate(struct cf_redis *r, redisContext *c, char *err, size_t errlen)
{
    errno = 0;
    redisReply *reply = r->username != NULL
                            ? redisCommand(c, "AUTH %s %s", r->username, r->password)
                            : redisCommand(c, "AUTH %s", r->password);
    int saved = errno;
    cf_status st = CF_OK;
    if (reply == NULL)
        return context_failure(c, saved, "AUTH", err, errlen);
    if (reply->type == REDIS_REPLY_ERROR)
        st = cf_fail(err, errlen, CF_ECONFIG, "redis AUTH refused: %.*s", (int)reply->len,
                     reply->str);
    freeReplyObject(reply);
    return st;
}

static cf_status connect_once(struct cf_redis *r, char *err, size_t errlen)
{
    errno = 0;
    redisContext *c = redisConnectWithTimeout(r->host, r->port, r->connect_tv);
    int saved = errno;
    if (c == NULL)
        return cf_fail(err, errlen, CF_ENOMEM, "redis connect: cannot allocate a context");
    if (c->err != 0) {
        cf_status st = context_failure(c, saved, "connect", err, errlen);
        redisFree(c);
        return st;
    }
    if (redisSetTimeout(c, r->command_tv) != REDIS_OK) {
        cf_status st = context_failure(c, errno, "set timeout", err, errlen);
        redisFree(c);
        return st;
    }
    if (r->password != NULL) {
        cf_status st = authenticate(r, c, err, errlen);
        if (st != CF_OK) {
            redisFree(c);
            return st;
        }
    }
    r->c = c;
    r->nloaded = 0;
    r->connects++;
    if (r->connects > 1)
        CF_LOG(CF_LOG_INFO, "redis_reconnected", CF_LOG_ID("host", r->host),
               CF_LOG_INT("port", r->port), CF_LOG_INT("connects", r->connects));
    return CF_OK;
}

/* True if the idle connection cannot be trusted: every reply has been read, so anything
 * readable is the server's FIN or RST (Redis restarted, idle timeout) or garbage. Checking
 * before sending lets even non-idempotent commands survive a restart that happened between
 * calls. */
static bool connection_stale(const struct cf_redis *r)
{
    struct pollfd pfd = {.fd = r->c->fd, .events = POLLIN};
    return poll(&pfd, 1, 0) != 0;
}

static bool script_is_loaded(const struct cf_redis *r, const struct cf_redis_script *s)
{
    for (size_t i = 0; i < r->nloaded; i++)
        if (memcmp(r->loaded[i], s->sha, CF_SHA1_HEX_LEN) == 0)
            return true;
    return false;
}

void redis_script_forget(struct cf_redis *r, const struct cf_redis_script *s)
{
    for (size_t i = 0; i < r->nloaded; i++) {
        if (memcmp(r->loaded[i], s->sha, CF_SHA1_HEX_LEN) == 0) {
            memcpy(r->loaded[i], r->loaded[r->nloaded - 1], CF_SHA1_HEX_LEN + 1);
            r->nloaded--;
            return;
        }
    }
}

/* SCRIPT LOAD on the live connection. *transient tells whether a later attempt may succeed. */
static cf_status load_script(struct cf_redis *r, const struct cf_redis_script *s,
                             bool *transient, char *err, size_t errlen)
{
    const char *argv[3] = {"SCRIPT", "LOAD", s->source};
    size_t lens[3] = {6, 4, s->len};
    errno = 0;
    redisReply *reply = redisCommandArgv(r->c, 3, argv, lens);
    cf_status st = CF_OK;
    if (reply == NULL) {
        st = context_failure(r->c, errno, "SCRIPT LOAD", err, errlen);
        *transient = st != CF_ENOMEM;
        drop_connection(r);
        return st;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        st = error_status(reply, "SCRIPT LOAD", err, errlen);
        *transient = error_not_run(reply);
    } else if (reply->type != REDIS_REPLY_STRING || reply->len != CF_SHA1_HEX_LEN ||
               memcmp(reply->str, s->sha, CF_SHA1_HEX_LEN) != 0) {
        st = cf_fail(err, errlen, CF_EIO, "redis SCRIPT LOAD: unexpected answer for script %s",
                     s->sha);
    } else {
        if (r->nloaded == LOADED_MAX)
            r->nloaded = 0;
        memcpy(r->loaded[r->nloaded++], s->sha, CF_SHA1_HEX_LEN + 1);
        CF_LOG(CF_LOG_DEBUG, "redis_script_loaded", CF_LOG_ID("sha", s->sha));
    }
    freeReplyObject(reply);
    return st;
}

void redis_free_replies(redisReply **replies, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
}

/* One attempt: connect if needed, load the batch's scripts, send it, read all its replies.
 * On failure no reply is kept, *sent tells whether the batch may have reached Redis, and
 * *transient whether a later attempt may succeed. */
static cf_status exchange_once(struct cf_redis *r, struct exchange *x, bool *sent,
                               bool *transient, char *err, size_t errlen)
{
    *sent = false;
    *transient = true;
    if (r->c != NULL && connection_stale(r)) {
        CF_LOG0(CF_LOG_DEBUG, "redis_connection_stale");
        drop_connection(r);
    }
    if (r->c == NULL) {
        cf_status st = connect_once(r, err, errlen);
        if (st != CF_OK) {
            *transient = st != CF_ENOMEM;
            return st;
        }
    }
    for (size_t i = 0; i < x->nscripts; i++) {
        if (script_is_loaded(r, x->scripts[i]))
            continue;
        cf_status st = load_script(r, x->scripts[i], transient, err, errlen);
        if (st != CF_OK)
            return st;
    }
    if (redisAppendFormattedCommand(r->c, x->cmd, x->cmdlen) != REDIS_OK) {
        cf_status st = context_failure(r->c, errno, "append", err, errlen);
        *transient = st != CF_ENOMEM;
        drop_connection(r);
        return st;
    }
    *sent = true;
    for (size_t i = 0; i < x->n; i++) {
        void *reply = NULL; /* hiredis leaves it untouched on error */
        errno = 0;
        if (redisGetReply(r->c, &reply) != REDIS_OK || reply == NULL) {
            cf_status st = context_failure(r->c, errno, "reply", err, errlen);
            *transient = st != CF_ENOMEM;
            redis_free_replies(x->replies, i);
            drop_connection(r);
            return st;
        }
        x->replies[i] = reply;
    }
    return CF_OK;
}

/* True if every reply says the command did not run (LOADING after a restart, BUSY script). */
static bool all_not_run(const struct exchange *x)
{
    for (size_t i = 0; i < x->n; i++)
        if (x->replies[i]->type != REDIS_REPLY_ERROR || !error_not_run(x->replies[i]))
            return false;
    return true;
}

/* Runs the batch, reconnecting with backoff within the retry budget. A batch that may have
 * reached Redis is sent again only if resend_safe. On CF_OK x->replies holds all n replies (the
 * caller frees them; each may be an error reply) and *resent (may be NULL) tells whether an
 * earlier attempt may have run the batch. */
cf_status redis_roundtrip(struct cf_redis *r, struct exchange *x, bool resend_safe, bool *resent,
                          char *errbuf, size_t errlen)
{
    char err[ERRLEN] = "";
    long long deadline = cf_clock_mono_ms() + r->retry_budget_ms;
    bool maybe_ran = false;
    cf_status st = CF_OK;

    for (unsigned attempt = 0;; attempt++) {
        bool sent = false, transient = false;
        st = exchange_once(r, x, &sent, &transient, err, sizeof(err));
        if (st == CF_OK && x->n > 0 && all_not_run(x)) {
            st = error_status(x->replies[0], "command", err, sizeof(err));
            redis_free_replies(x->replies, x->n);
            sent = false;
            transient = true;
        } else if (st == CF_OK) {
            if (attempt > 0)
                CF_LOG(CF_LOG_INFO, "redis_recovered", CF_LOG_INT("attempts", attempt + 1));
            if (resent != NULL)
                *resent = maybe_ran;
            return CF_OK;
        }
        maybe_ran = maybe_ran || sent;
        if (!transient)
            break;
        if (sent && !resend_safe) {
            CF_LOG(CF_LOG_WARN, "redis_not_resent", CF_LOG_ERR("error", err));
            break;
        }
        long long left = deadline - cf_clock_mono_ms();
        if (left <= 0) {
            CF_LOG(CF_LOG_WARN, "redis_unavailable", CF_LOG_INT("attempts", attempt + 1),
                   CF_LOG_ERR("error", err));
            break;
        }
        unsigned delay = cf_redis_backoff_ms(attempt, CF_REDIS_BACKOFF_BASE_MS,
                                             CF_REDIS_BACKOFF_CAP_MS, next_random(r));
        if ((long long)delay > left)
            delay = (unsigned)left;
        CF_LOG(CF_LOG_WARN, "redis_retry", CF_LOG_INT("attempt", attempt + 1),
               CF_LOG_INT("delay_ms", delay), CF_LOG_ERR("error", err));
        sleep_ms(delay);
    }
    return cf_fail(errbuf, errlen, st, "%s", err);
}

/* --- Encoding ------------------------------------------------------------------------------- */

/* Encodes argv as one RESP command; *cmd is freed with redisFreeCommand(). */
static cf_status encode(int argc, const char **argv, const size_t *lens, char **cmd,
                        size_t *cmdlen, char *errbuf, size_t errlen)
{
    *cmd = NULL;
    int n = redisFormatCommandArgv(cmd, argc, argv, lens);
    if (n < 0 || *cmd == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "redis: cannot encode a command");
    *cmdlen = (size_t)n;
    return CF_OK;
}

/* prefix+key into buf (CF_REDIS_MAX_PREFIX + CF_REDIS_MAX_KEY + 1 bytes) after checking key. */
static cf_status full_key(const char *prefix, const char *key, char *buf, size_t *len,
                          char *errbuf, size_t errlen)
{
    cf_status st = cf_redis_key_check(key, errbuf, errlen);
    if (st != CF_OK)
        return st;
    size_t plen = strlen(prefix), klen = strlen(key);
    memcpy(buf, prefix, plen);
    memcpy(buf + plen, key, klen + 1);
    *len = plen + klen;
    return CF_OK;
}

cf_status redis_encode_set(const char *prefix, const char *key, const void *value, size_t len,
                           long long ttl_seconds, bool nx, char **cmd, size_t *cmdlen, char *errbuf,
                           size_t errlen)
{
    char kbuf[CF_REDIS_MAX_PREFIX + CF_REDIS_MAX_KEY + 1];
    size_t klen = 0;
    cf_status st = full_key(prefix, key, kbuf, &klen, errbuf, errlen);
    if (st != CF_OK)
        return st;
    if (ttl_seconds <= 0)
        return cf_fail(errbuf, errlen, CF_EINVAL,
                       "redis SET: ttl_seconds must be > 0 (every key has a TTL)");
    if (len > CF_REDIS_MAX_STRING)
        return cf_fail(errbuf, errlen, CF_ETOOBIG, "redis SET: value of %zu bytes is over %d",
                       len, CF_REDIS_MAX_STRING);
    if (value == NULL && len > 0)
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis SET: value is NULL");
    char ttl[24];
    int tlen = snprintf(ttl, sizeof(ttl), "%lld", ttl_seconds);
    const char *argv[6] = {"SET", kbuf, value != NULL ? value : "", "EX", ttl, "NX"};
    size_t lens[6] = {3, klen, len, 2, (size_t)tlen, 2};
    return encode(nx ? 6 : 5, argv, lens, cmd, cmdlen, errbuf, errlen);
}

/* A one-key command: GET, DEL, TTL. */
cf_status redis_encode_key_cmd(const char *prefix, const char *verb, const char *key, char **cmd,
                               size_t *cmdlen, char *errbuf, size_t errlen)
{
    return redis_encode_key_args(prefix, verb, key, 0, NULL, cmd, cmdlen, errbuf, errlen);
}

cf_status redis_encode_key_args(const char *prefix, const char *verb, const char *key,
                                size_t nargs, const char *const *args, char **cmd, size_t *cmdlen,
                                char *errbuf, size_t errlen)
{
    char kbuf[CF_REDIS_MAX_PREFIX + CF_REDIS_MAX_KEY + 1];
    size_t klen = 0;
    const char *argv[2 + REDIS_KEY_ARGS_MAX];
    size_t lens[2 + REDIS_KEY_ARGS_MAX];
    if (nargs > REDIS_KEY_ARGS_MAX)
        return cf_fail(errbuf, errlen, CF_ETOOBIG, "redis %s: more than %d arguments", verb,
                       REDIS_KEY_ARGS_MAX);
    cf_status st = full_key(prefix, key, kbuf, &klen, errbuf, errlen);
    if (st != CF_OK)
        return st;
    argv[0] = verb;
    lens[0] = strlen(verb);
    argv[1] = kbuf;
    lens[1] = klen;
    for (size_t i = 0; i < nargs; i++) {
        argv[2 + i] = args[i];
        lens[2 + i] = strlen(args[i]);
    }
    return encode(2 + nargs, argv, lens, cmd, cmdlen, errbuf, errlen);
}

cf_status redis_encode_script(const char *prefix, const struct cf_redis_script *script,
                              size_t nkeys, const char *const *keys, size_t nargs,
                              const char *const *args, const size_t *arglens, char **cmd,
                              size_t *cmdlen, char *errbuf, size_t errlen)
{
    const char **argv = NULL;
    size_t *lens = NULL;
    char *kbufs = NULL;
    cf_status st = CF_OK;
    const size_t kstride = CF_REDIS_MAX_PREFIX + CF_REDIS_MAX_KEY + 1;

    if (script == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis EVALSHA: script is NULL");
    if (nkeys > CF_REDIS_MAX_SCRIPT_ARGS || nargs > CF_REDIS_MAX_SCRIPT_ARGS - nkeys)
        return cf_fail(errbuf, errlen, CF_ETOOBIG,
                       "redis EVALSHA: more than %d keys and arguments",
                       CF_REDIS_MAX_SCRIPT_ARGS);
    if ((nkeys > 0 && keys == NULL) || (nargs > 0 && args == NULL))
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis EVALSHA: keys or args is NULL");

    size_t argc = 3 + nkeys + nargs;
    argv = calloc(argc, sizeof(*argv));
    lens = calloc(argc, sizeof(*lens));
    kbufs = nkeys > 0 ? malloc(nkeys * kstride) : NULL;
    if (argv == NULL || lens == NULL || (nkeys > 0 && kbufs == NULL)) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "redis EVALSHA: arguments");
        goto out;
    }
    char nk[24];
    int nklen = snprintf(nk, sizeof(nk), "%zu", nkeys);
    argv[0] = "EVALSHA";
    lens[0] = 7;
    argv[1] = script->sha;
    lens[1] = CF_SHA1_HEX_LEN;
    argv[2] = nk;
    lens[2] = (size_t)nklen;
    for (size_t i = 0; i < nkeys; i++) {
        char *kb = kbufs + i * kstride;
        st = full_key(prefix, keys[i], kb, &lens[3 + i], errbuf, errlen);
        if (st != CF_OK)
            goto out;
        argv[3 + i] = kb;
    }
    for (size_t i = 0; i < nargs; i++) {
        if (args[i] == NULL) {
            st = cf_fail(errbuf, errlen, CF_EINVAL, "redis EVALSHA: argument %zu is NULL", i);
            goto out;
        }
        size_t alen = arglens != NULL ? arglens[i] : strnlen(args[i], CF_REDIS_MAX_STRING + 1);
        if (alen > CF_REDIS_MAX_STRING) {
            st = cf_fail(errbuf, errlen, CF_ETOOBIG,
                         "redis EVALSHA: argument %zu is over %d bytes", i,
                         CF_REDIS_MAX_STRING);
            goto out;
        }
        argv[3 + nkeys + i] = args[i];
        lens[3 + nkeys + i] = alen;
    }
    st = encode((int)argc, argv, lens, cmd, cmdlen, errbuf, errlen);
out:
    free(kbufs);
    free(lens);
    free(argv);
    return st;
}

/* --- Single commands ------------------------------------------------------------------------ */

/* Runs one encoded command and returns its reply (the caller frees it with freeReplyObject);
 * an error reply becomes a status. A script's NOSCRIPT is repaired here. Takes ownership of cmd.
 */
static cf_status run_one(struct cf_redis *r, char *cmd, size_t cmdlen,
                         const struct cf_redis_script *script, bool resend_safe,
                         const char *what, redisReply **out, bool *resent, char *errbuf,
                         size_t errlen)
{
    redisReply *reply = NULL;
    const struct cf_redis_script *scripts[1] = {script};
    struct exchange x = {.cmd = cmd,
                         .cmdlen = cmdlen,
                         .n = 1,
                         .scripts = scripts,
                         .nscripts = script != NULL ? 1 : 0,
                         .replies = &reply};
    *out = NULL;
    cf_status st = redis_roundtrip(r, &x, resend_safe, resent, errbuf, errlen);
    if (st == CF_OK && script != NULL && redis_error_noscript(reply)) {
        /* The script cache was emptied under a live connection (SCRIPT FLUSH) or the context
         * survived a failover. NOSCRIPT means the script did not run, so running it again is
         * safe whatever the script does. */
        CF_LOG(CF_LOG_INFO, "redis_script_reload", CF_LOG_ID("sha", script->sha));
        freeReplyObject(reply);
        reply = NULL;
        redis_script_forget(r, script);
        st = redis_roundtrip(r, &x, resend_safe, resent, errbuf, errlen);
    }
    if (st == CF_OK && reply->type == REDIS_REPLY_ERROR) {
        st = error_status(reply, what, errbuf, errlen);
        freeReplyObject(reply);
        reply = NULL;
    }
    redisFreeCommand(cmd);
    *out = reply;
    return st;
}

cf_status redis_check_r(const struct cf_redis *r, char *errbuf, size_t errlen)
{
    if (r == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis: connection is NULL");
    return CF_OK;
}

static cf_status unexpected(const redisReply *reply, const char *what, char *errbuf,
                            size_t errlen)
{
    return cf_fail(errbuf, errlen, CF_EIO, "redis %s: unexpected reply type %d", what,
                   reply->type);
}

cf_status cf_redis_ping(struct cf_redis *r, char *errbuf, size_t errlen)
{
    cf_status st = redis_check_r(r, errbuf, errlen);
    if (st != CF_OK)
        return st;
    const char *argv[1] = {"PING"};
    size_t lens[1] = {4};
    char *cmd = NULL;
    size_t cmdlen = 0;
    redisReply *reply = NULL;
    st = encode(1, argv, lens, &cmd, &cmdlen, errbuf, errlen);
    if (st == CF_OK)
        st = run_one(r, cmd, cmdlen, NULL, true, "PING", &reply, NULL, errbuf, errlen);
    if (st == CF_OK && reply->type != REDIS_REPLY_STATUS)
        st = unexpected(reply, "PING", errbuf, errlen);
    freeReplyObject(reply);
    return st;
}

cf_status cf_redis_set(struct cf_redis *r, const char *key, const void *value, size_t len,
                       long long ttl_seconds, char *errbuf, size_t errlen)
{
    cf_status st = redis_check_r(r, errbuf, errlen);
    char *cmd = NULL;
    size_t cmdlen = 0;
    redisReply *reply = NULL;
    if (st == CF_OK)
        st = redis_encode_set(r->prefix, key, value, len, ttl_seconds, false, &cmd, &cmdlen, errbuf,
                              errlen);
    if (st == CF_OK)
        st = run_one(r, cmd, cmdlen, NULL, true, "SET", &reply, NULL, errbuf, errlen);
    if (st == CF_OK && reply->type != REDIS_REPLY_STATUS)
        st = unexpected(reply, "SET", errbuf, errlen);
    freeReplyObject(reply);
    return st;
}

cf_status cf_redis_get(struct cf_redis *r, const char *key, char **value, size_t *len,
                       char *errbuf, size_t errlen)
{
    char *cmd = NULL;
    size_t cmdlen = 0;
    redisReply *reply = NULL;
    cf_status st = redis_check_r(r, errbuf, errlen);
    if (st == CF_OK && value == NULL)
        st = cf_fail(errbuf, errlen, CF_EINVAL, "redis GET: value is NULL");
    if (st != CF_OK)
        return st;
    *value = NULL;
    if (len != NULL)
        *len = 0;
    st = redis_encode_key_cmd(r->prefix, "GET", key, &cmd, &cmdlen, errbuf, errlen);
    if (st == CF_OK)
        st = run_one(r, cmd, cmdlen, NULL, true, "GET", &reply, NULL, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    if (reply->type == REDIS_REPLY_NIL) {
        st = cf_fail(errbuf, errlen, CF_ENOTFOUND, "redis GET: no such key");
        goto out;
    }
    if (reply->type != REDIS_REPLY_STRING) {
        st = unexpected(reply, "GET", errbuf, errlen);
        goto out;
    }
    if (reply->len > CF_REDIS_MAX_STRING) {
        st = cf_fail(errbuf, errlen, CF_ETOOBIG, "redis GET: value of %zu bytes is over %d",
                     reply->len, CF_REDIS_MAX_STRING);
        goto out;
    }
    *value = malloc(reply->len + 1);
    if (*value == NULL) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "redis GET: value");
        goto out;
    }
    if (reply->len > 0)
        memcpy(*value, reply->str, reply->len);
    (*value)[reply->len] = '\0';
    if (len != NULL)
        *len = reply->len;
out:
    freeReplyObject(reply);
    return st;
}

cf_status cf_redis_set_nx(struct cf_redis *r, const char *key, const void *value, size_t len,
                          long long ttl_seconds, bool *was_set, char *errbuf, size_t errlen)
{
    char *cmd = NULL;
    size_t cmdlen = 0;
    redisReply *reply = NULL;
    char *current = NULL;
    size_t current_len = 0;
    bool resent = false;
    cf_status st = redis_check_r(r, errbuf, errlen);
    if (st == CF_OK && was_set == NULL)
        st = cf_fail(errbuf, errlen, CF_EINVAL, "redis SET NX: was_set is NULL");
    if (st != CF_OK)
        return st;
    *was_set = false;
    st = redis_encode_set(r->prefix, key, value, len, ttl_seconds, true, &cmd, &cmdlen, errbuf,
                          errlen);
    /* Resending is safe: NX never overwrites, and the ambiguity is resolved below. */
    if (st == CF_OK)
        st = run_one(r, cmd, cmdlen, NULL, true, "SET NX", &reply, &resent, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    if (reply->type == REDIS_REPLY_STATUS) {
        *was_set = true;
    } else if (reply->type != REDIS_REPLY_NIL) {
        st = unexpected(reply, "SET NX", errbuf, errlen);
    } else if (resent) {
        /* An earlier attempt may have created the key before the connection broke. If it
         * holds our value, that earlier attempt was ours. */
        st = cf_redis_get(r, key, &current, &current_len, errbuf, errlen);
        if (st == CF_ENOTFOUND)
            st = CF_OK; /* expired in between; someone else's claim is gone too */
        else if (st == CF_OK && current_len == len &&
                 (len == 0 || memcmp(current, value, len) == 0))
            *was_set = true;
    }
out:
    free(current);
    freeReplyObject(reply);
    return st;
}

cf_status cf_redis_del(struct cf_redis *r, const char *key, bool *deleted, char *errbuf,
                       size_t errlen)
{
    char *cmd = NULL;
    size_t cmdlen = 0;
    redisReply *reply = NULL;
    cf_status st = redis_check_r(r, errbuf, errlen);
    if (deleted != NULL)
        *deleted = false;
    if (st == CF_OK)
        st = redis_encode_key_cmd(r->prefix, "DEL", key, &cmd, &cmdlen, errbuf, errlen);
    if (st == CF_OK)
        st = run_one(r, cmd, cmdlen, NULL, true, "DEL", &reply, NULL, errbuf, errlen);
    if (st == CF_OK && reply->type != REDIS_REPLY_INTEGER)
        st = unexpected(reply, "DEL", errbuf, errlen);
    if (st == CF_OK && deleted != NULL)
        *deleted = reply->integer > 0;
    freeReplyObject(reply);
    return st;
}

cf_status cf_redis_ttl(struct cf_redis *r, const char *key, long long *ttl_seconds,
                       char *errbuf, size_t errlen)
{
    char *cmd = NULL;
    size_t cmdlen = 0;
    redisReply *reply = NULL;
    cf_status st = redis_check_r(r, errbuf, errlen);
    if (st == CF_OK && ttl_seconds == NULL)
        st = cf_fail(errbuf, errlen, CF_EINVAL, "redis TTL: ttl_seconds is NULL");
    if (st == CF_OK)
        st = redis_encode_key_cmd(r->prefix, "TTL", key, &cmd, &cmdlen, errbuf, errlen);
    if (st == CF_OK)
        st = run_one(r, cmd, cmdlen, NULL, true, "TTL", &reply, NULL, errbuf, errlen);
    if (st == CF_OK && reply->type != REDIS_REPLY_INTEGER)
        st = unexpected(reply, "TTL", errbuf, errlen);
    if (st == CF_OK) {
        if (reply->integer == -2)
            st = cf_fail(errbuf, errlen, CF_ENOTFOUND, "redis TTL: no such key");
        else
            *ttl_seconds = reply->integer;
    }
    freeReplyObject(reply);
    return st;
}

/* --- Connection lifecycle ------------------------------------------------------------------- */

cf_status cf_redis_new(const char *host, int port, int connect_timeout_ms,
                       int command_timeout_ms, struct cf_redis **out, char *errbuf,
                       size_t errlen)
{
    return cf_redis_new_auth(host, port, NULL, NULL, connect_timeout_ms, command_timeout_ms, out,
                             errbuf, errlen);
}

cf_status cf_redis_new_auth(const char *host, int port, const char *username,
                            const char *password, int connect_timeout_ms, int command_timeout_ms,
                            struct cf_redis **out, char *errbuf, size_t errlen)
{
    struct cf_redis *r = NULL;
    char err[ERRLEN] = "";
    cf_status st = CF_OK;

    if (out == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis: out is NULL");
    *out = NULL;
    if (host == NULL || host[0] == '\0' || strlen(host) > 255)
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis: host must be 1 to 255 bytes");
    if (port < 1 || port > 65535)
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis: port %d is not in 1..65535", port);
    if (connect_timeout_ms < 1 || command_timeout_ms < 1)
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis: timeouts must be > 0 ms");

    r = calloc(1, sizeof(*r));
    if (r == NULL || (r->host = strdup(host)) == NULL) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "redis: connection");
        goto out;
    }
    r->port = port;
    if ((password != NULL && password[0] != '\0' && (r->password = strdup(password)) == NULL) ||
        (r->password != NULL && username != NULL && username[0] != '\0' &&
         (r->username = strdup(username)) == NULL)) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "redis: connection");
        goto out;
    }
    r->connect_tv = ms_to_timeval(connect_timeout_ms);
    r->command_tv = ms_to_timeval(command_timeout_ms);
    memcpy(r->prefix, CF_REDIS_DEFAULT_KEY_PREFIX, sizeof(CF_REDIS_DEFAULT_KEY_PREFIX));
    r->retry_budget_ms = CF_REDIS_DEFAULT_RETRY_BUDGET_MS;
    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    r->rng = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16) ^
             (uint64_t)(uintptr_t)r;
    if (r->rng == 0)
        r->rng = 0x9e3779b97f4a7c15ULL;

    st = connect_once(r, err, sizeof(err));
    if (st != CF_OK) {
        CF_LOG(CF_LOG_WARN, "redis_connect_failed", CF_LOG_ID("host", r->host),
               CF_LOG_INT("port", port), CF_LOG_ERR("error", err));
        st = cf_fail(errbuf, errlen, st, "%s", err);
        goto out;
    }
    *out = r;
    r = NULL;
out:
    cf_redis_free(r);
    return st;
}

cf_status cf_redis_new_from_config(const struct cf_config *config, struct cf_redis **out,
                                   char *errbuf, size_t errlen)
{
    if (config == NULL || out == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis: config or out is NULL");
    *out = NULL;
    /* The table's bounds keep these within int. */
    struct cf_redis *r = NULL;
    cf_status st =
        cf_redis_new_auth(cf_config_string(config, "CASEFLOW_REDIS_HOST"),
                          (int)cf_config_int(config, "CASEFLOW_REDIS_PORT"),
                          cf_config_string(config, "CASEFLOW_REDIS_USERNAME"),
                          cf_config_string(config, "CASEFLOW_REDIS_PASSWORD"),
                          (int)cf_config_int(config, "CASEFLOW_REDIS_CONNECT_TIMEOUT_MS"),
                          (int)cf_config_int(config, "CASEFLOW_REDIS_COMMAND_TIMEOUT_MS"), &r,
                          errbuf, errlen);
    if (st == CF_OK)
        st = cf_redis_set_key_prefix(r, cf_config_string(config, "CASEFLOW_REDIS_KEY_PREFIX"),
                                     errbuf, errlen);
    if (st != CF_OK) {
        cf_redis_free(r);
        return st;
    }
    cf_redis_set_retry_budget(r, (int)cf_config_int(config, "CASEFLOW_REDIS_RETRY_BUDGET_MS"));
    *out = r;
    return CF_OK;
}

void cf_redis_free(struct cf_redis *r)
{
    if (r == NULL)
        return;
    redisFree(r->c);
    free(r->host);
    free(r->username);
    if (r->password != NULL) {
        /* Through a volatile pointer, so the wipe is not dropped as a dead store before free;
         * explicit_bzero is not in POSIX. */
        for (volatile char *p = r->password; *p != '\0'; p++)
            *p = '\0';
        free(r->password);
    }
    free(r);
}

cf_status cf_redis_set_key_prefix(struct cf_redis *r, const char *prefix, char *errbuf,
                                  size_t errlen)
{
    /* The NULL check is spelled out here, not left to redis_check_r: -O3 inlines this into
     * cf_redis_new_from_config and, not knowing that cf_fail returns its non-zero status,
     * would see a path to the memcpy with r NULL (-Warray-bounds). */
    if (r == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis: connection is NULL");
    cf_status st = id_check("key prefix", prefix, CF_REDIS_MAX_PREFIX, errbuf, errlen);
    if (st == CF_OK)
        memcpy(r->prefix, prefix, strlen(prefix) + 1);
    return st;
}

void cf_redis_set_retry_budget(struct cf_redis *r, int retry_budget_ms)
{
    if (r != NULL)
        r->retry_budget_ms = retry_budget_ms > 0 ? retry_budget_ms : 0;
}

/* --- Scripts -------------------------------------------------------------------------------- */

cf_status cf_redis_script_new(const char *source, unsigned flags, struct cf_redis_script **out,
                              char *errbuf, size_t errlen)
{
    if (out == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis script: out is NULL");
    *out = NULL;
    if (source == NULL || source[0] == '\0')
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis script: source is empty");
    if ((flags & ~CF_REDIS_SCRIPT_IDEMPOTENT) != 0)
        return cf_fail(errbuf, errlen, CF_EINVAL, "redis script: unknown flags 0x%x", flags);
    size_t len = strnlen(source, CF_REDIS_MAX_STRING + 1);
    if (len > CF_REDIS_MAX_STRING)
        return cf_fail(errbuf, errlen, CF_ETOOBIG, "redis script: source over %d bytes",
                       CF_REDIS_MAX_STRING);
    struct cf_redis_script *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->source = strdup(source)) == NULL) {
        free(s);
        return cf_fail(errbuf, errlen, CF_ENOMEM, "redis script");
    }
    s->len = len;
    s->flags = flags;
    cf_sha1_hex(source, len, s->sha);
    *out = s;
    return CF_OK;
}

void cf_redis_script_free(struct cf_redis_script *script)
{
    if (script == NULL)
        return;
    free(script->source);
    free(script);
}

const char *cf_redis_script_sha(const struct cf_redis_script *script)
{
    return script->sha;
}

cf_status cf_redis_script_load(struct cf_redis *r, const struct cf_redis_script *script,
                               char *errbuf, size_t errlen)
{
    cf_status st = redis_check_r(r, errbuf, errlen);
    if (st == CF_OK && script == NULL)
        st = cf_fail(errbuf, errlen, CF_EINVAL, "redis SCRIPT LOAD: script is NULL");
    if (st != CF_OK)
        return st;
    /* A PING carrying the script: redis_roundtrip() connects and loads it like before any EVALSHA,
     * with the same reconnect rules. Forgetting it first forces the SCRIPT LOAD. */
    redis_script_forget(r, script);
    const char *argv[1] = {"PING"};
    size_t lens[1] = {4};
    char *cmd = NULL;
    size_t cmdlen = 0;
    redisReply *reply = NULL;
    st = encode(1, argv, lens, &cmd, &cmdlen, errbuf, errlen);
    if (st == CF_OK)
        st = run_one(r, cmd, cmdlen, script, true, "SCRIPT LOAD", &reply, NULL, errbuf, errlen);
    freeReplyObject(reply);
    return st;
}

cf_status cf_redis_script_run(struct cf_redis *r, const struct cf_redis_script *script,
                              size_t nkeys, const char *const *keys, size_t nargs,
                              const char *const *args, const size_t *arglens,
                              struct cf_redis_value **out, char *errbuf, size_t errlen)
{
    char *cmd = NULL;
    size_t cmdlen = 0;
    redisReply *reply = NULL;
    if (out != NULL)
        *out = NULL;
    cf_status st = redis_check_r(r, errbuf, errlen);
    if (st == CF_OK)
        st = redis_encode_script(r->prefix, script, nkeys, keys, nargs, args, arglens, &cmd,
                                 &cmdlen, errbuf, errlen);
    if (st == CF_OK)
        st = run_one(r, cmd, cmdlen, script, (script->flags & CF_REDIS_SCRIPT_IDEMPOTENT) != 0,
                     "EVALSHA", &reply, NULL, errbuf, errlen);
    if (st == CF_OK && out != NULL)
        st = redis_value_from_reply(reply, "EVALSHA", out, errbuf, errlen);
    freeReplyObject(reply);
    return st;
}
