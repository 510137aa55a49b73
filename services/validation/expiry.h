/* expiry.h — cases waiting for information too long get CaseClosed EXPIRED (issue 3). The due
 * times live in Redis, in one sorted set (member: case id; score: due time in ms), so they
 * survive a restart of the service and are shared by its replicas; the loop's timer
 * (cf_kafka_loop_set_timer) claims the due ones and closes them. README.md ("Expiry") says
 * why a case is closed once even when a transaction aborts or the service dies. */
#ifndef VALIDATION_EXPIRY_H
#define VALIDATION_EXPIRY_H

#include <stddef.h>
#include <stdint.h>

#include "due_set.h"
#include "kafka.h"
#include "redis.h"
#include "status.h"
#include "uuid.h"

/* The sorted set of due times (ids only; the module adds the key prefix). */
#define VALIDATION_EXPIRY_KEY "validation:expiry"
/* A claimed due time comes back after this long unless its CaseClosed was read back first:
 * the retry of a timer transaction that aborted or a process that died mid-way. */
#define VALIDATION_EXPIRY_LEASE_MS (60LL * 1000)
/* Cases claimed per timer run (one transaction). */
#define VALIDATION_EXPIRY_BATCH 100

/* Appends to p the command that makes case_id due at due_ms (due_ms < 0: no longer due),
 * keeping the set alive ttl_ms at least. CF_EINVAL for a case id that is not a UUID. */
cf_status validation_expiry_schedule(struct cf_redis_pipeline *p,
                                     const struct cf_due_set *s, const char *case_id,
                                     int64_t due_ms, int64_t ttl_ms, char *errbuf, size_t errlen);

/* The id of the CaseClosed that expires the wait for the CaseInfoRequested info_request_id:
 * the same every time, so a close emitted twice (a lease ran out before the first was read
 * back) is recognisably one event. */
void validation_expiry_event_id(const char *info_request_id, char out[CF_UUID_LEN + 1]);

/* cf_kafka_timer (ctx is a struct validation): claims up to VALIDATION_EXPIRY_BATCH due cases
 * and queues a CaseClosed EXPIRED (with the recipient, so the patient is told) for each one
 * still waiting — marking it EXPIRING in its state, so late information is refused — and drops
 * the due time of any case that is no longer waiting. Redis errors are returned (the claimed
 * ones come back after the lease). */
cf_status validation_expire(void *ctx, int64_t now_ms, struct cf_kafka_out *out, char *errbuf,
                            size_t errlen);

#endif
