/* sched_store.c — the scheduler's Redis keys and Lua scripts (sched_store.h). */
#include "sched_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uuid.h"

/* KEYS: new hold, new index, old hold, old index. ARGV: teleconsult_id, start, cap, day from,
 * day to, hold TTL ms, old member ("" none), now. A hold the teleconsult already has is kept
 * (a retry), so running it twice leaves Redis as running it once. The old booking's index
 * entry does not count against the cap of its own day: the patient gives it up. */
static const char book_lua[] =
    "local member = ARGV[2] .. '/' .. ARGV[1]\n"
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur and cur ~= ARGV[1] then return -1 end\n"
    "if not cur then\n"
    "  local n = redis.call('ZCOUNT', KEYS[2], ARGV[4], '(' .. ARGV[5])\n"
    "  if ARGV[7] ~= '' and KEYS[4] == KEYS[2] then\n"
    "    local s = redis.call('ZSCORE', KEYS[2], ARGV[7])\n"
    "    if s and tonumber(s) >= tonumber(ARGV[4]) and tonumber(s) < tonumber(ARGV[5]) then\n"
    "      n = n - 1\n"
    "    end\n"
    "  end\n"
    "  if n >= tonumber(ARGV[3]) then return -2 end\n"
    "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[6])\n"
    "end\n"
    "redis.call('ZADD', KEYS[2], ARGV[2], member)\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (tonumber(ARGV[8]) - 86400000))\n"
    "if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[6]) then\n"
    "  redis.call('PEXPIRE', KEYS[2], ARGV[6])\n"
    "end\n"
    "if ARGV[7] ~= '' and ARGV[7] ~= member then\n"
    "  if KEYS[3] ~= KEYS[1] and redis.call('GET', KEYS[3]) == ARGV[1] then\n"
    "    redis.call('DEL', KEYS[3])\n"
    "  end\n"
    "  redis.call('ZREM', KEYS[4], ARGV[7])\n"
    "end\n"
    "return 1\n";

/* KEYS: hold, index. ARGV: teleconsult_id, index member. */
static const char release_lua[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                                  "  redis.call('DEL', KEYS[1])\n"
                                  "end\n"
                                  "redis.call('ZREM', KEYS[2], ARGV[2])\n"
                                  "return 1\n";

/* KEYS: the hash. ARGV: first day, last day. Flat {day, count, ...} of the days in range. */
static const char clinic_read_lua[] =
    "local out = {}\n"
    "local all = redis.call('HGETALL', KEYS[1])\n"
    "for i = 1, #all, 2 do\n"
    "  local d = tonumber(all[i])\n"
    "  if d and d >= tonumber(ARGV[1]) and d <= tonumber(ARGV[2]) then\n"
    "    out[#out + 1] = d\n"
    "    out[#out + 1] = tonumber(all[i + 1])\n"
    "  end\n"
    "end\n"
    "return out\n";

/* KEYS: the hash, the case's claim. ARGV: claim, capacity, TTL ms, days... The claim makes a
 * second run (a retry) a no-op that returns the claim. */
static const char clinic_take_lua[] =
    "local have = redis.call('GET', KEYS[2])\n"
    "if have then return have end\n"
    "for i = 4, #ARGV do\n"
    "  if tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0') >= tonumber(ARGV[2]) then\n"
    "    return -2\n"
    "  end\n"
    "end\n"
    "for i = 4, #ARGV do redis.call('HINCRBY', KEYS[1], ARGV[i], 1) end\n"
    "redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])\n"
    "if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    "end\n"
    "return 1\n";

cf_status sched_scripts_new(struct sched_scripts *s, char *errbuf, size_t errlen)
{
    const unsigned idem = CF_REDIS_SCRIPT_IDEMPOTENT;
    memset(s, 0, sizeof(*s));
    cf_status st = cf_redis_script_new(book_lua, idem, &s->book, errbuf, errlen);
    if (st == CF_OK)
        st = cf_redis_script_new(release_lua, idem, &s->release, errbuf, errlen);
    if (st == CF_OK)
        st = cf_due_set_init(&s->due, errbuf, errlen);
    if (st == CF_OK)
        st = cf_redis_script_new(clinic_read_lua, idem, &s->clinic_read, errbuf, errlen);
    if (st == CF_OK)
        st = cf_redis_script_new(clinic_take_lua, idem, &s->clinic_take, errbuf, errlen);
    if (st != CF_OK)
        sched_scripts_free(s);
    return st;
}

void sched_scripts_free(struct sched_scripts *s)
{
    if (s == NULL)
        return;
    cf_redis_script_free(s->book);
    cf_redis_script_free(s->release);
    cf_due_set_clear(&s->due);
    cf_redis_script_free(s->clinic_read);
    cf_redis_script_free(s->clinic_take);
    memset(s, 0, sizeof(*s));
}

cf_status sched_case_key(const char *case_id, char key[SCHED_KEY_MAX])
{
    if (case_id == NULL || !cf_uuid_valid(case_id))
        return CF_EINVAL;
    (void)snprintf(key, SCHED_KEY_MAX, "scheduler:case:%s", case_id);
    return CF_OK;
}

static void hold_key(char key[SCHED_KEY_MAX], const char *sp, int64_t start)
{
    (void)snprintf(key, SCHED_KEY_MAX, "scheduler:hold:%s:%" PRId64, sp, start);
}

static void index_key(char key[SCHED_KEY_MAX], const char *sp)
{
    (void)snprintf(key, SCHED_KEY_MAX, "scheduler:held:%s", sp);
}

/* Hold keys live a day past the slot's end, so a late reader still sees it was taken. */
static int64_t hold_ttl(int64_t end_ms, int64_t now_ms)
{
    int64_t ttl = end_ms - now_ms + 24LL * 3600 * 1000;
    return ttl < 60000 ? 60000 : ttl;
}

cf_status sched_store_book(struct cf_redis *r, const struct sched_scripts *s,
                           const struct sched_hold *h, int64_t now_ms,
                           enum sched_book_result *result, char *errbuf, size_t errlen)
{
    char k1[SCHED_KEY_MAX], k2[SCHED_KEY_MAX], k3[SCHED_KEY_MAX], k4[SCHED_KEY_MAX];
    char start[24], cap[16], from[24], to[24], ttl[24], old[96], now[24];
    struct cf_redis_value *v = NULL;

    hold_key(k1, h->specialist_id, h->start_ms);
    index_key(k2, h->specialist_id);
    if (h->old_specialist != NULL) {
        hold_key(k3, h->old_specialist, h->old_start_ms);
        index_key(k4, h->old_specialist);
        (void)snprintf(old, sizeof(old), "%" PRId64 "/%s", h->old_start_ms, h->teleconsult_id);
    } else {
        (void)snprintf(k3, sizeof(k3), "%s", k1);
        (void)snprintf(k4, sizeof(k4), "%s", k2);
        old[0] = '\0';
    }
    (void)snprintf(start, sizeof(start), "%" PRId64, h->start_ms);
    (void)snprintf(cap, sizeof(cap), "%d", h->daily_cap);
    (void)snprintf(from, sizeof(from), "%" PRId64, h->day_from_ms);
    (void)snprintf(to, sizeof(to), "%" PRId64, h->day_to_ms);
    (void)snprintf(ttl, sizeof(ttl), "%" PRId64, hold_ttl(h->end_ms, now_ms));
    (void)snprintf(now, sizeof(now), "%" PRId64, now_ms);
    const char *keys[] = {k1, k2, k3, k4};
    const char *args[] = {h->teleconsult_id, start, cap, from, to, ttl, old, now};
    cf_status st = cf_redis_script_run(r, s->book, 4, keys, 8, args, NULL, &v, errbuf, errlen);
    if (st != CF_OK)
        return st;
    if (v->type != CF_REDIS_INT || (v->integer != 1 && v->integer != -1 && v->integer != -2))
        st = cf_fail(errbuf, errlen, CF_EIO, "book script: unexpected reply");
    else
        *result = (enum sched_book_result)v->integer;
    cf_redis_value_free(v);
    return st;
}

cf_status sched_store_release(struct cf_redis *r, const struct sched_scripts *s,
                              const char *specialist_id, const char *teleconsult_id,
                              int64_t start_ms, char *errbuf, size_t errlen)
{
    char k1[SCHED_KEY_MAX], k2[SCHED_KEY_MAX], member[96];
    hold_key(k1, specialist_id, start_ms);
    index_key(k2, specialist_id);
    (void)snprintf(member, sizeof(member), "%" PRId64 "/%s", start_ms, teleconsult_id);
    const char *keys[] = {k1, k2};
    const char *args[] = {teleconsult_id, member};
    return cf_redis_script_run(r, s->release, 2, keys, 2, args, NULL, NULL, errbuf, errlen);
}

cf_status sched_store_held(struct cf_redis *r, struct cf_redis_pipeline *p,
                           const char *const *ids, size_t n, int64_t from_ms, int64_t to_ms,
                           const char *exclude_tid, int64_t **starts, size_t *counts,
                           char *errbuf, size_t errlen)
{
    char key[SCHED_KEY_MAX];
    cf_status st = CF_OK;
    size_t i, tid_len = exclude_tid != NULL ? strlen(exclude_tid) : 0;

    for (i = 0; i < n; i++) {
        starts[i] = NULL;
        counts[i] = 0;
    }
    /* Plain ZRANGEBYSCORE, one per candidate in one round trip: a script per candidate cost
     * Redis ten times as much, and leaving out the teleconsult's own holds is as easy here. */
    cf_redis_pipeline_reset(p);
    for (i = 0; st == CF_OK && i < n; i++) {
        index_key(key, ids[i]);
        st = cf_redis_pipeline_zrange_scores(p, key, from_ms, to_ms, errbuf, errlen);
    }
    if (st == CF_OK && n > 0)
        st = cf_redis_pipeline_exec(r, p, errbuf, errlen);
    for (i = 0; st == CF_OK && i < n; i++) {
        const struct cf_redis_value *v = NULL;
        if ((st = cf_redis_pipeline_reply(p, i, &v)) != CF_OK || v->type != CF_REDIS_ARRAY) {
            st = cf_fail(errbuf, errlen, CF_EIO, "held starts: unexpected reply");
            break;
        }
        if (v->count == 0)
            continue;
        if ((starts[i] = calloc(v->count, sizeof(int64_t))) == NULL) {
            st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
            break;
        }
        for (size_t k = 0; k < v->count; k++) {
            /* members are "<start_ms>/<teleconsult_id>" */
            const struct cf_redis_value *m = &v->elements[k];
            const char *slash = m->type == CF_REDIS_STRING ? strchr(m->str, '/') : NULL;
            if (slash == NULL || (tid_len > 0 && strcmp(slash + 1, exclude_tid) == 0))
                continue;
            starts[i][counts[i]++] = strtoll(m->str, NULL, 10);
        }
    }
    cf_redis_pipeline_reset(p);
    if (st != CF_OK)
        for (i = 0; i < n; i++) {
            free(starts[i]);
            starts[i] = NULL;
            counts[i] = 0;
        }
    return st;
}

cf_status sched_store_clinic_read(struct cf_redis *r, const struct sched_scripts *s,
                                  int32_t from_day, int32_t to_day, int *counts, char *errbuf,
                                  size_t errlen)
{
    char from[16], to[16];
    struct cf_redis_value *v = NULL;
    const char *keys[] = {SCHED_CLINIC_KEY};
    memset(counts, 0, sizeof(int) * (size_t)(to_day - from_day + 1));
    (void)snprintf(from, sizeof(from), "%" PRId32, from_day);
    (void)snprintf(to, sizeof(to), "%" PRId32, to_day);
    const char *args[] = {from, to};
    cf_status st =
        cf_redis_script_run(r, s->clinic_read, 1, keys, 2, args, NULL, &v, errbuf, errlen);
    if (st != CF_OK)
        return st;
    for (size_t i = 0; v->type == CF_REDIS_ARRAY && i + 1 < v->count; i += 2) {
        long long d = v->elements[i].integer;
        if (d >= from_day && d <= to_day)
            counts[d - from_day] = (int)v->elements[i + 1].integer;
    }
    cf_redis_value_free(v);
    return CF_OK;
}

cf_status sched_store_clinic_take(struct cf_redis *r, const struct sched_scripts *s,
                                  const char *case_id, const char *claim, const int32_t *days,
                                  size_t ndays, int capacity, int64_t ttl_ms, int *result,
                                  char *existing, size_t existing_len, char *errbuf,
                                  size_t errlen)
{
    char ckey[SCHED_KEY_MAX], cap[16], ttl[24], d[2][16];
    struct cf_redis_value *v = NULL;
    const char *args[5];
    size_t nargs = 3;
    if (case_id == NULL || !cf_uuid_valid(case_id) || ndays > 2)
        return cf_fail(errbuf, errlen, CF_EINVAL, "clinic take: bad arguments");
    (void)snprintf(ckey, sizeof(ckey), "scheduler:clinic:case:%s", case_id);
    (void)snprintf(cap, sizeof(cap), "%d", capacity);
    (void)snprintf(ttl, sizeof(ttl), "%" PRId64, ttl_ms);
    args[0] = claim;
    args[1] = cap;
    args[2] = ttl;
    for (size_t i = 0; i < ndays; i++) {
        (void)snprintf(d[i], sizeof(d[i]), "%" PRId32, days[i]);
        args[nargs++] = d[i];
    }
    const char *keys[] = {SCHED_CLINIC_KEY, ckey};
    cf_status st =
        cf_redis_script_run(r, s->clinic_take, 2, keys, nargs, args, NULL, &v, errbuf, errlen);
    if (st != CF_OK)
        return st;
    existing[0] = '\0';
    if (v->type == CF_REDIS_STRING) {
        *result = 0;
        (void)snprintf(existing, existing_len, "%s", v->str);
    } else if (v->type == CF_REDIS_INT) {
        *result = (int)v->integer;
    } else {
        st = cf_fail(errbuf, errlen, CF_EIO, "clinic take: unexpected reply");
    }
    cf_redis_value_free(v);
    return st;
}
