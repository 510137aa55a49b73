/* assignment_store.h — assignment's state in Redis and the Lua scripts that change it, each
 * in one EVALSHA so that replicas never assign a case twice or exceed a manager's capacity
 * (README, "Redis"). Keys hold ids only and every key written gets a TTL:
 *
 *   assignment:active              hash manager_id -> cases assigned and not yet closed
 *   assignment:last                hash manager_id -> ms of the manager's last assignment
 *   assignment:case:<case_id>      hash: state (pending | assigned | released), manager, reason,
 *                                  interpreter, returning, name, email (the manager's, for a
 *                                  re-emission), at (ms assigned), queued (ms it started
 *                                  waiting), confirmed, via (event id whose handling assigned
 *                                  it), input (the CaseValidated JSON)
 *   assignment:patient:<key>       string: the manager of the patient's last case
 *   assignment:pending             zset case_id, score priority * 1e13 + queued ms
 *   assignment:unconfirmed         zset case_id, score: when its CaseAssigned is due again
 *   assignment:alerts              zset case_id, score: when its pending alert is due
 *
 * The module adds the configured prefix (caseflow:) to each. Scripts that visit many cases
 * build their keys from a base passed in KEYS ("assignment:case:" with the prefix), which is
 * fine on one Redis and would need hash tags on a cluster. */
#ifndef ASSIGNMENT_STORE_H
#define ASSIGNMENT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "matching.h"
#include "redis.h"
#include "status.h"

#define ASSIGNMENT_KEY_ACTIVE "assignment:active"
#define ASSIGNMENT_KEY_LAST "assignment:last"
#define ASSIGNMENT_KEY_PENDING "assignment:pending"
#define ASSIGNMENT_KEY_UNCONFIRMED "assignment:unconfirmed"
#define ASSIGNMENT_KEY_ALERTS "assignment:alerts"
#define ASSIGNMENT_KEY_CASE "assignment:case:"
#define ASSIGNMENT_KEY_PATIENT "assignment:patient:"
/* Longest key built here ("assignment:patient:" + a key of up to 128 bytes). */
#define ASSIGNMENT_KEY_MAX 160

/* Pending score = priority index * this + queued ms: every ms timestamp until the year 2286
 * is below it, and the largest score stays an exact double (< 2^53). */
#define ASSIGNMENT_PENDING_PRIORITY_STEP 10000000000000LL

/* The scripts; made once at start, immutable, shared. */
struct assignment_scripts {
    struct cf_redis_script *assign;
    struct cf_redis_script *release;
    struct cf_redis_script *confirm;
    struct cf_redis_script *claim_unconfirmed;
    struct cf_redis_script *peek_pending;
    struct cf_redis_script *claim_alerts;
    struct cf_redis_script *drop_alert;
};

/* Creates every script (CF_ENOMEM); free with assignment_scripts_free (NULL-safe parts). */
cf_status assignment_scripts_new(struct assignment_scripts *s, char *errbuf, size_t errlen);
void assignment_scripts_free(struct assignment_scripts *s);

/* SCRIPT LOAD of each, so that a broken script fails at start. Redis errors. */
cf_status assignment_scripts_load(struct cf_redis *r, const struct assignment_scripts *s,
                                  char *errbuf, size_t errlen);

/* "assignment:case:<case_id>" / "assignment:patient:<patient_key>" into key
 * (ASSIGNMENT_KEY_MAX bytes). CF_EINVAL when case_id is not a UUID or patient_key is longer
 * than 128 bytes or not a valid key (cf_redis_key_check), so no key ever holds anything else. */
cf_status assignment_case_key(const char *case_id, char key[ASSIGNMENT_KEY_MAX]);
cf_status assignment_patient_key(const char *patient_key, char key[ASSIGNMENT_KEY_MAX]);

/* What the assign script did. */
enum assignment_status {
    ASSIGNMENT_ASSIGNED, /* assigned now, by this call */
    ASSIGNMENT_ALREADY,  /* was assigned before (fields describe that assignment) */
    ASSIGNMENT_PARKED,   /* nobody had room: the case starts waiting now */
    ASSIGNMENT_PENDING,  /* still waiting (was parked before) */
    ASSIGNMENT_RELEASED, /* the case was closed first: nothing to do */
    ASSIGNMENT_GONE,     /* serve mode: the case's record expired; dropped from the queue */
};

/* One assign call. */
struct assignment_request {
    const char *case_id;
    const char *patient_key;
    bool serve;   /* serving the pending queue: never parks, never creates a case */
    int64_t now_ms;
    enum assignment_priority priority;
    const char *candidates_json; /* assignment_candidates_json */
    const char *input_json;      /* the CaseValidated; "" in serve mode (already stored) */
    const char *via;             /* event id of what is being handled, or "timer" */
    int64_t ttl_ms;              /* of every key written */
    int64_t lease_ms;            /* the CaseAssigned is due again after this unless read back */
    int64_t alert_ms;            /* a case waiting this long raises the pending alert */
};

/* The script's answer. The strings point into reply, freed with assignment_result_clear. */
struct assignment_result {
    enum assignment_status status;
    const char *manager_id; /* ASSIGNED, ALREADY; else "" */
    const char *reason;     /* a matching.h reason code; "" for RELEASED, GONE */
    const char *manager_name;
    const char *manager_email;
    const char *via;
    bool interpreter;
    bool returning;
    bool confirmed; /* ALREADY: its CaseAssigned was read back */
    int64_t at_ms;  /* ASSIGNED, ALREADY: when assigned; PARKED, PENDING: when it started
                     * waiting */
    struct cf_redis_value *reply;
};

void assignment_result_clear(struct assignment_result *res);

/* Runs the matching rule atomically (README, "How a case is matched"): a case already assigned
 * or released is answered as it is; otherwise the patient's earlier manager if a candidate with
 * room, else the best candidate of the smallest tier (load by cross-multiplication, longest
 * idle, smallest id in byte order), whose load then grows by one; else the case is parked
 * (unless serving, or already waiting). Redis errors; CF_EINVAL for a reply of the wrong shape.
 * On CF_OK clear *res with assignment_result_clear. Not resent after a lost reply: the batch is
 * retried instead, and its second run finds ALREADY. */
cf_status assignment_store_assign(struct cf_redis *r, const struct assignment_scripts *s,
                                  const struct assignment_request *req,
                                  struct assignment_result *res, char *errbuf, size_t errlen);

/* Releases the case once: its manager's load shrinks by one if it was assigned, it leaves the
 * pending queue if it was waiting, and it is marked released (also when unknown here, so a
 * CaseValidated read after its CaseClosed assigns nothing). *freed (ASSIGNMENT_KEY_MAX bytes,
 * may be NULL) is the manager who got room, or "". *released_now is false when it had been
 * released before. Idempotent. Redis errors. */
cf_status assignment_store_release(struct cf_redis *r, const struct assignment_scripts *s,
                                   const char *case_id, int64_t now_ms, int64_t ttl_ms,
                                   char *freed, size_t freed_len, bool *released_now,
                                   char *errbuf, size_t errlen);

/* The case's CaseAssigned for manager_id was read back: it is confirmed and no longer due
 * again. Idempotent. Redis errors. */
cf_status assignment_store_confirm(struct cf_redis *r, const struct assignment_scripts *s,
                                   const char *case_id, const char *manager_id, char *errbuf,
                                   size_t errlen);

/* Up to limit cases whose CaseAssigned is due again (unconfirmed at now_ms), each pushed a
 * lease ahead. *reply (the caller's, cf_redis_value_free) is an array of
 * [case_id, manager, reason, interpreter, returning, name, email, at, input]. */
cf_status assignment_store_claim_unconfirmed(struct cf_redis *r, const struct assignment_scripts *s,
                                             int64_t now_ms, int64_t lease_ms, int limit,
                                             struct cf_redis_value **reply, char *errbuf,
                                             size_t errlen);

/* The first limit cases of the pending queue, in its order. *reply is an array whose element
 * 0 is the queue's length and each other one [case_id, input]. Members whose record expired are
 * dropped on the way. */
cf_status assignment_store_peek_pending(struct cf_redis *r, const struct assignment_scripts *s,
                                        int limit, struct cf_redis_value **reply, char *errbuf,
                                        size_t errlen);

/* Up to limit cases still waiting whose alert is due at now_ms, each pushed a lease ahead
 * (it comes back unless its alert is read back). *reply is an array of
 * [case_id, reason, queued, input]. */
cf_status assignment_store_claim_alerts(struct cf_redis *r, const struct assignment_scripts *s,
                                        int64_t now_ms, int64_t lease_ms, int limit,
                                        struct cf_redis_value **reply, char *errbuf,
                                        size_t errlen);

/* The case's alert was read back (or it no longer waits): not due again. Idempotent. */
cf_status assignment_store_drop_alert(struct cf_redis *r, const struct assignment_scripts *s,
                                      const char *case_id, char *errbuf, size_t errlen);

/* The string of element i of an array reply, or NULL (wrong type or out of range). */
const char *assignment_reply_str(const struct cf_redis_value *v, size_t i);

#endif
