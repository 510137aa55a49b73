/* assignment_store.c — assignment's Redis scripts (see assignment_store.h and README.md,
 * "Redis"). Every script that writes a key gives it the TTL passed in ARGV. */
#include "assignment_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assignment_events.h"
#include "uuid.h"

/* KEYS: 1 case, 2 active, 3 last, 4 patient link, 5 pending, 6 unconfirmed, 7 alerts.
 * ARGV: 1 case_id, 2 mode ("new" | "serve"), 3 now ms, 4 priority symbol, 5 pending score,
 * 6 TTL ms, 7 lease end ms, 8 alert due ms, 9 candidates JSON, 10 input JSON ("" keeps the
 * stored one), 11 via.
 * Reply: {status, manager, reason, interpreter, returning, name, email, at, confirmed, via}.
 *
 * The rule is matching.c's, over the candidates C computed (assignment_roster.h): tier 0-3 by
 * language and region, 4 = eligible only as the returning patient's manager; u = 0 for a
 * manager who may not take this URGENT case. Ids are compared byte by byte, because Lua's '<'
 * follows the server's collation locale. Loads are small integers and times below 2^53, so
 * Lua's doubles hold them exactly. */
static const char assign_lua[] =
    "local function bytelt(a, b)\n"
    "  local n = math.min(#a, #b)\n"
    "  for i = 1, n do\n"
    "    local x, y = string.byte(a, i), string.byte(b, i)\n"
    "    if x ~= y then return x < y end\n"
    "  end\n"
    "  return #a < #b\n"
    "end\n"
    "local ttl = ARGV[6]\n"
    "local rec = redis.call('HMGET', KEYS[1], 'state', 'manager', 'reason', 'interpreter',\n"
    "  'returning', 'name', 'email', 'at', 'confirmed', 'via', 'queued')\n"
    "local state = rec[1]\n"
    "if state == 'assigned' then\n"
    "  return {'already', rec[2] or '', rec[3] or '', rec[4] or '0', rec[5] or '0',\n"
    "    rec[6] or '', rec[7] or '', rec[8] or '0', rec[9] or '0', rec[10] or ''}\n"
    "end\n"
    "if state == 'released' then\n"
    "  return {'released', '', '', '0', '0', '', '', '0', '0', ''}\n"
    "end\n"
    "if not state and ARGV[2] == 'serve' then\n"
    "  redis.call('ZREM', KEYS[5], ARGV[1])\n"
    "  redis.call('ZREM', KEYS[7], ARGV[1])\n"
    "  return {'gone', '', '', '0', '0', '', '', '0', '0', ''}\n"
    "end\n"
    "local cands = cjson.decode(ARGV[9])\n"
    "local ids = {}\n"
    "for i, c in ipairs(cands) do ids[i] = c.id end\n"
    "local act, last = {}, {}\n"
    "if #ids > 0 then\n"
    "  act = redis.call('HMGET', KEYS[2], unpack(ids))\n"
    "  last = redis.call('HMGET', KEYS[3], unpack(ids))\n"
    "end\n"
    "local function load(i) return tonumber(act[i]) or 0 end\n"
    "local function room(i) return load(i) < cands[i].cap end\n"
    "local function better(i, j)\n"
    "  local a, b = cands[i], cands[j]\n"
    "  if a.tier ~= b.tier then return a.tier < b.tier end\n"
    "  local la, lb = load(i) * b.cap, load(j) * a.cap\n"
    "  if la ~= lb then return la < lb end\n"
    "  local ta, tb = tonumber(last[i]), tonumber(last[j])\n"
    "  if ta ~= tb then\n"
    "    if ta == nil then return true end\n"
    "    if tb == nil then return false end\n"
    "    return ta < tb\n"
    "  end\n"
    "  return bytelt(a.id, b.id)\n"
    "end\n"
    "local pick, reason, interp, returning = nil, nil, '0', '0'\n"
    "local prev = redis.call('GET', KEYS[4])\n"
    "if prev then\n"
    "  for i, c in ipairs(cands) do\n"
    "    if c.id == prev then\n"
    "      if c.u == 1 and room(i) then\n"
    "        pick, reason, returning = i, 'RETURNING', '1'\n"
    "        if c.tier >= 2 then interp = '1' end\n"
    "      end\n"
    "      break\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if not pick then\n"
    "  local other = false\n"
    "  for i, c in ipairs(cands) do\n"
    "    if c.tier <= 3 and room(i) then\n"
    "      if c.u == 1 then\n"
    "        if not pick or better(i, pick) then pick = i end\n"
    "      else\n"
    "        other = true\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if pick then\n"
    "    local t = cands[pick].tier\n"
    "    if t == 0 then reason = 'LANGUAGE_REGION'\n"
    "    elseif t == 1 then reason = 'LANGUAGE'\n"
    "    elseif t == 2 then reason, interp = 'INTERPRETER_REGION', '1'\n"
    "    else reason, interp = 'INTERPRETER', '1' end\n"
    "  elseif ARGV[4] == 'URGENT' and other then\n"
    "    reason = 'NO_URGENT_ROOM'\n"
    "  else\n"
    "    reason = 'NO_ROOM'\n"
    "  end\n"
    "end\n"
    "if pick then\n"
    "  local c = cands[pick]\n"
    "  redis.call('HINCRBY', KEYS[2], c.id, 1)\n"
    "  redis.call('PEXPIRE', KEYS[2], ttl)\n"
    "  redis.call('HSET', KEYS[3], c.id, ARGV[3])\n"
    "  redis.call('PEXPIRE', KEYS[3], ttl)\n"
    "  redis.call('SET', KEYS[4], c.id, 'PX', ttl)\n"
    "  redis.call('HSET', KEYS[1], 'state', 'assigned', 'manager', c.id, 'reason', reason,\n"
    "    'interpreter', interp, 'returning', returning, 'name', c.name, 'email', c.email,\n"
    "    'at', ARGV[3], 'confirmed', '0', 'via', ARGV[11])\n"
    "  if ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'input', ARGV[10]) end\n"
    "  redis.call('PEXPIRE', KEYS[1], ttl)\n"
    "  redis.call('ZREM', KEYS[5], ARGV[1])\n"
    "  redis.call('ZREM', KEYS[7], ARGV[1])\n"
    "  redis.call('ZADD', KEYS[6], ARGV[7], ARGV[1])\n"
    "  redis.call('PEXPIRE', KEYS[6], ttl)\n"
    "  return {'assigned', c.id, reason, interp, returning, c.name, c.email, ARGV[3], '0',\n"
    "    ARGV[11]}\n"
    "end\n"
    "if state == 'pending' then\n"
    "  return {'pending', '', rec[3] or reason, '0', '0', '', '', rec[11] or ARGV[3], '0',\n"
    "    rec[10] or ''}\n"
    "end\n"
    "if ARGV[2] == 'serve' then\n"
    "  return {'gone', '', '', '0', '0', '', '', '0', '0', ''}\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'state', 'pending', 'reason', reason, 'queued', ARGV[3],\n"
    "  'via', ARGV[11], 'input', ARGV[10])\n"
    "redis.call('PEXPIRE', KEYS[1], ttl)\n"
    "redis.call('ZADD', KEYS[5], ARGV[5], ARGV[1])\n"
    "redis.call('PEXPIRE', KEYS[5], ttl)\n"
    "redis.call('ZADD', KEYS[7], ARGV[8], ARGV[1])\n"
    "redis.call('PEXPIRE', KEYS[7], ttl)\n"
    "return {'parked', '', reason, '0', '0', '', '', ARGV[3], '0', ARGV[11]}\n";

/* KEYS: 1 case, 2 active, 3 pending, 4 unconfirmed, 5 alerts. ARGV: case_id, TTL ms, now ms.
 * Reply: {state before ("released" when it already was), manager who got room or ""}. A load
 * is never taken below 0, and only decremented while its hash exists (it has a TTL then). */
static const char release_lua[] =
    "local r = redis.call('HMGET', KEYS[1], 'state', 'manager')\n"
    "if r[1] == 'released' then return {'released', ''} end\n"
    "local freed = ''\n"
    "if r[1] == 'assigned' and r[2] then\n"
    "  if (tonumber(redis.call('HGET', KEYS[2], r[2])) or 0) > 0 then\n"
    "    redis.call('HINCRBY', KEYS[2], r[2], -1)\n"
    "    freed = r[2]\n"
    "  end\n"
    "end\n"
    "redis.call('ZREM', KEYS[3], ARGV[1])\n"
    "redis.call('ZREM', KEYS[4], ARGV[1])\n"
    "redis.call('ZREM', KEYS[5], ARGV[1])\n"
    "redis.call('HSET', KEYS[1], 'state', 'released', 'released', ARGV[3])\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "return {r[1] or 'unknown', freed}\n";

/* KEYS: 1 case, 2 unconfirmed. ARGV: case_id, manager_id. */
static const char confirm_lua[] =
    "local r = redis.call('HMGET', KEYS[1], 'state', 'manager')\n"
    "if r[2] ~= ARGV[2] then return 0 end\n"
    "if r[1] == 'assigned' then redis.call('HSET', KEYS[1], 'confirmed', '1') end\n"
    "redis.call('ZREM', KEYS[2], ARGV[1])\n"
    "return 1\n";

/* KEYS: 1 unconfirmed, 2 case key base. ARGV: now ms, lease end ms, limit. */
static const char claim_unconfirmed_lua[] =
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])\n"
    "local out = {}\n"
    "for _, id in ipairs(due) do\n"
    "  local r = redis.call('HMGET', KEYS[2] .. id, 'state', 'confirmed', 'manager', 'reason',\n"
    "    'interpreter', 'returning', 'name', 'email', 'at', 'input')\n"
    "  if r[1] ~= 'assigned' or r[2] == '1' or not r[3] or not r[10] then\n"
    "    redis.call('ZREM', KEYS[1], id)\n"
    "  else\n"
    "    redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)\n"
    "    out[#out + 1] = {id, r[3], r[4] or '', r[5] or '0', r[6] or '0', r[7] or '',\n"
    "      r[8] or '', r[9] or '0', r[10]}\n"
    "  end\n"
    "end\n"
    "return out\n";

/* KEYS: 1 pending, 2 case key base. ARGV: limit. */
static const char peek_pending_lua[] =
    "local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)\n"
    "local out = {redis.call('ZCARD', KEYS[1])}\n"
    "for _, id in ipairs(ids) do\n"
    "  local r = redis.call('HMGET', KEYS[2] .. id, 'state', 'input')\n"
    "  if r[1] == 'pending' and r[2] then\n"
    "    out[#out + 1] = {id, r[2]}\n"
    "  else\n"
    "    redis.call('ZREM', KEYS[1], id)\n"
    "  end\n"
    "end\n"
    "return out\n";

/* KEYS: 1 alerts, 2 case key base. ARGV: now ms, lease end ms, limit. */
static const char claim_alerts_lua[] =
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])\n"
    "local out = {}\n"
    "for _, id in ipairs(due) do\n"
    "  local r = redis.call('HMGET', KEYS[2] .. id, 'state', 'reason', 'queued', 'input')\n"
    "  if r[1] ~= 'pending' or not r[3] or not r[4] then\n"
    "    redis.call('ZREM', KEYS[1], id)\n"
    "  else\n"
    "    redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)\n"
    "    out[#out + 1] = {id, r[2] or 'NO_ROOM', r[3], r[4]}\n"
    "  end\n"
    "end\n"
    "return out\n";

/* KEYS: 1 alerts. ARGV: case_id. */
static const char drop_alert_lua[] = "return redis.call('ZREM', KEYS[1], ARGV[1])\n";

cf_status assignment_scripts_new(struct assignment_scripts *s, char *errbuf, size_t errlen)
{
    cf_status st;
    memset(s, 0, sizeof(*s));
    /* assign and the claims are not idempotent: a second run after a lost reply answers
     * differently (ALREADY, nothing due), so the module must not resend them on its own. */
    st = cf_redis_script_new(assign_lua, 0, &s->assign, errbuf, errlen);
    if (st == CF_OK)
        st = cf_redis_script_new(release_lua, CF_REDIS_SCRIPT_IDEMPOTENT, &s->release, errbuf,
                                 errlen);
    if (st == CF_OK)
        st = cf_redis_script_new(confirm_lua, CF_REDIS_SCRIPT_IDEMPOTENT, &s->confirm, errbuf,
                                 errlen);
    if (st == CF_OK)
        st = cf_redis_script_new(claim_unconfirmed_lua, 0, &s->claim_unconfirmed, errbuf, errlen);
    if (st == CF_OK)
        st = cf_redis_script_new(peek_pending_lua, CF_REDIS_SCRIPT_IDEMPOTENT, &s->peek_pending,
                                 errbuf, errlen);
    if (st == CF_OK)
        st = cf_redis_script_new(claim_alerts_lua, 0, &s->claim_alerts, errbuf, errlen);
    if (st == CF_OK)
        st = cf_redis_script_new(drop_alert_lua, CF_REDIS_SCRIPT_IDEMPOTENT, &s->drop_alert,
                                 errbuf, errlen);
    if (st != CF_OK)
        assignment_scripts_free(s);
    return st;
}

void assignment_scripts_free(struct assignment_scripts *s)
{
    if (s == NULL)
        return;
    cf_redis_script_free(s->assign);
    cf_redis_script_free(s->release);
    cf_redis_script_free(s->confirm);
    cf_redis_script_free(s->claim_unconfirmed);
    cf_redis_script_free(s->peek_pending);
    cf_redis_script_free(s->claim_alerts);
    cf_redis_script_free(s->drop_alert);
    memset(s, 0, sizeof(*s));
}

cf_status assignment_scripts_load(struct cf_redis *r, const struct assignment_scripts *s,
                                  char *errbuf, size_t errlen)
{
    const struct cf_redis_script *all[] = {s->assign,       s->release,      s->confirm,
                                           s->claim_unconfirmed, s->peek_pending,
                                           s->claim_alerts, s->drop_alert};
    cf_status st = CF_OK;
    for (size_t i = 0; st == CF_OK && i < sizeof(all) / sizeof(all[0]); i++)
        st = cf_redis_script_load(r, all[i], errbuf, errlen);
    return st;
}

cf_status assignment_case_key(const char *case_id, char key[ASSIGNMENT_KEY_MAX])
{
    if (case_id == NULL || !cf_uuid_valid(case_id))
        return CF_EINVAL;
    (void)snprintf(key, ASSIGNMENT_KEY_MAX, ASSIGNMENT_KEY_CASE "%s", case_id);
    return CF_OK;
}

cf_status assignment_patient_key(const char *patient_key, char key[ASSIGNMENT_KEY_MAX])
{
    if (patient_key == NULL || patient_key[0] == '\0' || strlen(patient_key) > 128)
        return CF_EINVAL;
    (void)snprintf(key, ASSIGNMENT_KEY_MAX, ASSIGNMENT_KEY_PATIENT "%s", patient_key);
    return cf_redis_key_check(key, NULL, 0);
}

const char *assignment_reply_str(const struct cf_redis_value *v, size_t i)
{
    if (v == NULL || v->type != CF_REDIS_ARRAY || i >= v->count ||
        v->elements[i].type != CF_REDIS_STRING)
        return NULL;
    return v->elements[i].str;
}

void assignment_result_clear(struct assignment_result *res)
{
    if (res == NULL)
        return;
    cf_redis_value_free(res->reply);
    memset(res, 0, sizeof(*res));
}

static const struct {
    const char *name;
    enum assignment_status status;
} statuses[] = {
    {"assigned", ASSIGNMENT_ASSIGNED}, {"already", ASSIGNMENT_ALREADY},
    {"parked", ASSIGNMENT_PARKED},     {"pending", ASSIGNMENT_PENDING},
    {"released", ASSIGNMENT_RELEASED}, {"gone", ASSIGNMENT_GONE},
};

cf_status assignment_store_assign(struct cf_redis *r, const struct assignment_scripts *s,
                                  const struct assignment_request *req,
                                  struct assignment_result *res, char *errbuf, size_t errlen)
{
    char case_key[ASSIGNMENT_KEY_MAX], patient_key[ASSIGNMENT_KEY_MAX];
    char now[24], score[24], ttl[24], lease[24], alert[24];
    struct cf_redis_value *reply = NULL;
    const char *f[10];
    cf_status st;

    memset(res, 0, sizeof(*res));
    if (assignment_case_key(req->case_id, case_key) != CF_OK)
        return cf_fail(errbuf, errlen, CF_EINVAL, "case id: not a UUID");
    if (assignment_patient_key(req->patient_key, patient_key) != CF_OK)
        return cf_fail(errbuf, errlen, CF_EINVAL, "$.patient_key: not an id");
    (void)snprintf(now, sizeof(now), "%" PRId64, req->now_ms);
    (void)snprintf(score, sizeof(score), "%" PRId64,
                   (int64_t)((int64_t)req->priority * ASSIGNMENT_PENDING_PRIORITY_STEP + req->now_ms));
    (void)snprintf(ttl, sizeof(ttl), "%" PRId64, req->ttl_ms);
    (void)snprintf(lease, sizeof(lease), "%" PRId64, req->now_ms + req->lease_ms);
    (void)snprintf(alert, sizeof(alert), "%" PRId64, req->now_ms + req->alert_ms);
    const char *keys[] = {case_key,
                          ASSIGNMENT_KEY_ACTIVE,
                          ASSIGNMENT_KEY_LAST,
                          patient_key,
                          ASSIGNMENT_KEY_PENDING,
                          ASSIGNMENT_KEY_UNCONFIRMED,
                          ASSIGNMENT_KEY_ALERTS};
    const char *args[] = {req->case_id,
                          req->serve ? "serve" : "new",
                          now,
                          assignment_priority_symbol(req->priority),
                          score,
                          ttl,
                          lease,
                          alert,
                          req->candidates_json,
                          req->input_json != NULL ? req->input_json : "",
                          req->via != NULL ? req->via : ""};
    st = cf_redis_script_run(r, s->assign, 7, keys, 11, args, NULL, &reply, errbuf, errlen);
    if (st != CF_OK)
        return st;
    for (size_t i = 0; i < 10; i++)
        if ((f[i] = assignment_reply_str(reply, i)) == NULL) {
            cf_redis_value_free(reply);
            return cf_fail(errbuf, errlen, CF_EINVAL, "assign script: unexpected reply");
        }
    res->status = ASSIGNMENT_GONE;
    bool known = false;
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (strcmp(f[0], statuses[i].name) == 0) {
            res->status = statuses[i].status;
            known = true;
        }
    if (!known) {
        cf_redis_value_free(reply);
        return cf_fail(errbuf, errlen, CF_EINVAL, "assign script: unknown status");
    }
    res->manager_id = f[1];
    res->reason = f[2];
    res->interpreter = strcmp(f[3], "1") == 0;
    res->returning = strcmp(f[4], "1") == 0;
    res->manager_name = f[5];
    res->manager_email = f[6];
    res->at_ms = strtoll(f[7], NULL, 10);
    res->confirmed = strcmp(f[8], "1") == 0;
    res->via = f[9];
    res->reply = reply;
    return CF_OK;
}

cf_status assignment_store_release(struct cf_redis *r, const struct assignment_scripts *s,
                                   const char *case_id, int64_t now_ms, int64_t ttl_ms,
                                   char *freed, size_t freed_len, bool *released_now,
                                   char *errbuf, size_t errlen)
{
    char case_key[ASSIGNMENT_KEY_MAX], now[24], ttl[24];
    struct cf_redis_value *reply = NULL;

    if (freed != NULL && freed_len > 0)
        freed[0] = '\0';
    *released_now = false;
    if (assignment_case_key(case_id, case_key) != CF_OK)
        return cf_fail(errbuf, errlen, CF_EINVAL, "case id: not a UUID");
    (void)snprintf(now, sizeof(now), "%" PRId64, now_ms);
    (void)snprintf(ttl, sizeof(ttl), "%" PRId64, ttl_ms);
    const char *keys[] = {case_key, ASSIGNMENT_KEY_ACTIVE, ASSIGNMENT_KEY_PENDING,
                          ASSIGNMENT_KEY_UNCONFIRMED, ASSIGNMENT_KEY_ALERTS};
    const char *args[] = {case_id, ttl, now};
    cf_status st = cf_redis_script_run(r, s->release, 5, keys, 3, args, NULL, &reply, errbuf,
                                       errlen);
    if (st != CF_OK)
        return st;
    const char *before = assignment_reply_str(reply, 0);
    const char *manager = assignment_reply_str(reply, 1);
    if (before == NULL || manager == NULL) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "release script: unexpected reply");
        goto out;
    }
    *released_now = strcmp(before, "released") != 0;
    if (freed != NULL && freed_len > 0)
        (void)snprintf(freed, freed_len, "%s", manager);
out:
    cf_redis_value_free(reply);
    return st;
}

cf_status assignment_store_confirm(struct cf_redis *r, const struct assignment_scripts *s,
                                   const char *case_id, const char *manager_id, char *errbuf,
                                   size_t errlen)
{
    char case_key[ASSIGNMENT_KEY_MAX];
    if (assignment_case_key(case_id, case_key) != CF_OK)
        return cf_fail(errbuf, errlen, CF_EINVAL, "case id: not a UUID");
    const char *keys[] = {case_key, ASSIGNMENT_KEY_UNCONFIRMED};
    const char *args[] = {case_id, manager_id};
    return cf_redis_script_run(r, s->confirm, 2, keys, 2, args, NULL, NULL, errbuf, errlen);
}

/* Runs one of the claim scripts over zset with (now, lease end, limit). */
static cf_status claim(struct cf_redis *r, const struct cf_redis_script *script, const char *zset,
                       int64_t now_ms, int64_t lease_ms, int limit, struct cf_redis_value **reply,
                       char *errbuf, size_t errlen)
{
    char now[24], lease[24], lim[16];
    (void)snprintf(now, sizeof(now), "%" PRId64, now_ms);
    (void)snprintf(lease, sizeof(lease), "%" PRId64, now_ms + lease_ms);
    (void)snprintf(lim, sizeof(lim), "%d", limit);
    const char *keys[] = {zset, ASSIGNMENT_KEY_CASE};
    const char *args[] = {now, lease, lim};
    return cf_redis_script_run(r, script, 2, keys, 3, args, NULL, reply, errbuf, errlen);
}

cf_status assignment_store_claim_unconfirmed(struct cf_redis *r, const struct assignment_scripts *s,
                                             int64_t now_ms, int64_t lease_ms, int limit,
                                             struct cf_redis_value **reply, char *errbuf,
                                             size_t errlen)
{
    return claim(r, s->claim_unconfirmed, ASSIGNMENT_KEY_UNCONFIRMED, now_ms, lease_ms, limit,
                 reply, errbuf, errlen);
}

cf_status assignment_store_claim_alerts(struct cf_redis *r, const struct assignment_scripts *s,
                                        int64_t now_ms, int64_t lease_ms, int limit,
                                        struct cf_redis_value **reply, char *errbuf,
                                        size_t errlen)
{
    return claim(r, s->claim_alerts, ASSIGNMENT_KEY_ALERTS, now_ms, lease_ms, limit, reply,
                 errbuf, errlen);
}

cf_status assignment_store_peek_pending(struct cf_redis *r, const struct assignment_scripts *s,
                                        int limit, struct cf_redis_value **reply, char *errbuf,
                                        size_t errlen)
{
    char lim[16];
    (void)snprintf(lim, sizeof(lim), "%d", limit);
    const char *keys[] = {ASSIGNMENT_KEY_PENDING, ASSIGNMENT_KEY_CASE};
    const char *args[] = {lim};
    return cf_redis_script_run(r, s->peek_pending, 2, keys, 1, args, NULL, reply, errbuf, errlen);
}

cf_status assignment_store_drop_alert(struct cf_redis *r, const struct assignment_scripts *s,
                                      const char *case_id, char *errbuf, size_t errlen)
{
    const char *keys[] = {ASSIGNMENT_KEY_ALERTS};
    const char *args[] = {case_id};
    return cf_redis_script_run(r, s->drop_alert, 1, keys, 1, args, NULL, NULL, errbuf, errlen);
}
