/* due_set.h — a Redis sorted set of members by due time, served with leases: the timer state
 * that survives a restart (validation's expiries, the scheduler's reminders and waiting cases).
 *
 * A member is put with its due time; a timer claims the members due by now, which pushes each
 * one a lease ahead instead of removing it, so a replica that dies after claiming (or a timer
 * transaction that aborts) leaves the member to be claimed again once the lease is over. The
 * caller removes a member (due time < 0) once what it was due for is durable. */
#ifndef CF_DUE_SET_H
#define CF_DUE_SET_H

#include <stdint.h>

#include "redis.h"

/* The two scripts; made once at start, immutable, shared by every thread. */
struct cf_due_set {
    struct cf_redis_script *put;   /* add, move or remove one member (idempotent) */
    struct cf_redis_script *claim; /* the due members, pushed a lease ahead */
};

/* Creates both scripts (no server involved). CF_ENOMEM. Free with cf_due_set_clear. */
cf_status cf_due_set_init(struct cf_due_set *d, char *errbuf, size_t errlen);

/* Frees both scripts; NULL-safe, and safe on a zeroed or half-made struct. */
void cf_due_set_clear(struct cf_due_set *d);

/* Appends to p the command that makes member of the set key due at due_ms (due_ms < 0: removes
 * it), keeping the set alive ttl_ms at least. Running it twice leaves the same set. */
cf_status cf_due_set_put(struct cf_redis_pipeline *p, const struct cf_due_set *d, const char *key,
                         const char *member, int64_t due_ms, int64_t ttl_ms, char *errbuf,
                         size_t errlen);

/* Claims up to limit members of key due by now_ms, pushing each to lease_end_ms (members still
 * in the set only). On CF_OK *due is the reply, an array of strings the caller frees with
 * cf_redis_value_free. Not idempotent: a retry after a lost reply claims nothing, and the
 * members then wait for their lease, which is slower but never wrong. */
cf_status cf_due_set_claim(struct cf_redis *r, const struct cf_due_set *d, const char *key,
                           int64_t now_ms, int64_t lease_end_ms, int limit,
                           struct cf_redis_value **due, char *errbuf, size_t errlen);

#endif
