/* due_set.c — due-time sets with leases in Redis (see due_set.h). */
#include "due_set.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* KEYS[1] the set; ARGV: member, due ms (negative: remove), TTL ms of the set. */
static const char put_lua[] = "if tonumber(ARGV[2]) < 0 then\n"
                              "  redis.call('ZREM', KEYS[1], ARGV[1])\n"
                              "  return 0\n"
                              "end\n"
                              "redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])\n"
                              "if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then\n"
                              "  redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
                              "end\n"
                              "return 1\n";

/* KEYS[1] the set; ARGV: now ms, lease end ms, limit. ZADD XX: only members still there. The
 * set's TTL is untouched: it was set when they were put. */
static const char claim_lua[] =
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])\n"
    "for _, m in ipairs(due) do\n"
    "  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], m)\n"
    "end\n"
    "return due\n";

cf_status cf_due_set_init(struct cf_due_set *d, char *errbuf, size_t errlen)
{
    memset(d, 0, sizeof(*d));
    cf_status st = cf_redis_script_new(put_lua, CF_REDIS_SCRIPT_IDEMPOTENT, &d->put, errbuf,
                                       errlen);
    if (st == CF_OK)
        st = cf_redis_script_new(claim_lua, 0, &d->claim, errbuf, errlen);
    if (st != CF_OK)
        cf_due_set_clear(d);
    return st;
}

void cf_due_set_clear(struct cf_due_set *d)
{
    if (d == NULL)
        return;
    cf_redis_script_free(d->put);
    cf_redis_script_free(d->claim);
    d->put = d->claim = NULL;
}

cf_status cf_due_set_put(struct cf_redis_pipeline *p, const struct cf_due_set *d, const char *key,
                         const char *member, int64_t due_ms, int64_t ttl_ms, char *errbuf,
                         size_t errlen)
{
    char due[24], ttl[24];
    const char *keys[] = {key};
    (void)snprintf(due, sizeof(due), "%" PRId64, due_ms < 0 ? -1 : due_ms);
    (void)snprintf(ttl, sizeof(ttl), "%" PRId64, ttl_ms);
    const char *args[] = {member, due, ttl};
    return cf_redis_pipeline_script(p, d->put, 1, keys, 3, args, NULL, errbuf, errlen);
}

cf_status cf_due_set_claim(struct cf_redis *r, const struct cf_due_set *d, const char *key,
                           int64_t now_ms, int64_t lease_end_ms, int limit,
                           struct cf_redis_value **due, char *errbuf, size_t errlen)
{
    char now[24], lease[24], lim[16];
    const char *keys[] = {key};
    (void)snprintf(now, sizeof(now), "%" PRId64, now_ms);
    (void)snprintf(lease, sizeof(lease), "%" PRId64, lease_end_ms);
    (void)snprintf(lim, sizeof(lim), "%d", limit);
    const char *args[] = {now, lease, lim};
    return cf_redis_script_run(r, d->claim, 1, keys, 3, args, NULL, due, errbuf, errlen);
}
