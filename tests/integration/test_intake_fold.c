/* test_intake_fold.c (integration) — intake_fold, intake's duplicate claims, against the real
 * redis-server of deploy/stack (CASEFLOW_REDIS_HOST / CASEFLOW_REDIS_PORT, default
 * 127.0.0.1:16379).
 *
 * The rules are README.md's "Folding duplicates": claims in order with a TTL, a held claim read
 * back, this event's own earlier claim adopted on a retry, earlier keys pointed at the case a
 * duplicate belongs to, later keys left alone, the inquiry linked to its case. What the fold
 * wrote is read back with a separate raw hiredis connection, as an operator would. Every key
 * lives under a prefix unique to this run and is deleted at the end. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "intake.h"
#include "journey.h"
#include "redis.h"
#include "redis_raw.h"
#include "uuid.h"

#define TTL 600

static const char *host = "127.0.0.1";
static int port = 16379;
static char prefix[CF_REDIS_MAX_PREFIX + 1];
static struct cf_redis *r;
static struct cf_redis_script *script;
static char err[512];

/* One command on a fresh raw connection (tests/support/redis_raw.h). */
#define raw(...) cf_test_redis_raw(host, port, __VA_ARGS__)

/* The value under prefix + key, or "" when it does not exist. */
static void raw_get(const char *key, char *out, size_t outlen)
{
    redisReply *reply = raw("GET %s%s", prefix, key);
    assert_non_null(reply);
    if (reply->type == REDIS_REPLY_NIL)
        out[0] = '\0';
    else if (reply->type == REDIS_REPLY_STRING)
        (void)snprintf(out, outlen, "%s", reply->str);
    else
        fail_msg("GET %s: unexpected reply type %d", key, reply->type);
    freeReplyObject(reply);
}

static long long raw_ttl(const char *key)
{
    redisReply *reply = raw("TTL %s%s", prefix, key);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    long long v = reply->integer;
    freeReplyObject(reply);
    return v;
}

static void raw_ok(const char *fmt, const char *key, const char *value)
{
    redisReply *reply = raw(fmt, prefix, key, value);
    assert_non_null(reply);
    assert_int_not_equal(reply->type, REDIS_REPLY_ERROR);
    freeReplyObject(reply);
}

static void new_uuid(char out[CF_UUID_LEN + 1])
{
    assert_int_equal(cf_uuid_v4(out), CF_OK);
}

/* "<case>/<event>", as the fold stores it. */
static void claim_of(const char *case_id, const char *event_id, char *out, size_t outlen)
{
    (void)snprintf(out, outlen, "%s/%s", case_id, event_id);
}

/* An inquiry's keys, shaped as intake_fold_keys makes them (ids and hex only). */
struct inquiry {
    char inquiry_id[CF_UUID_LEN + 1];
    char keys[INTAKE_FOLD_MAX_KEYS][INTAKE_REDIS_KEY_MAX];
    const char *ptrs[INTAKE_FOLD_MAX_KEYS];
    size_t nkeys;
};

/* keys: the inquiry key, then the given idempotency / person hashes (as "idem:<x>",
 * "person:<x>"). */
static void inquiry_make(struct inquiry *q, const char *const *more, size_t nmore)
{
    char id[CF_UUID_LEN + 1];
    memset(q, 0, sizeof(*q));
    new_uuid(id);
    memcpy(q->inquiry_id, id, sizeof(id));
    (void)snprintf(q->keys[q->nkeys++], INTAKE_REDIS_KEY_MAX, "intake:inquiry:%s", id);
    for (size_t i = 0; i < nmore; i++)
        (void)snprintf(q->keys[q->nkeys++], INTAKE_REDIS_KEY_MAX, "intake:%s", more[i]);
    for (size_t i = 0; i < q->nkeys; i++)
        q->ptrs[i] = q->keys[i];
}

static struct intake_fold_result fold(const struct inquiry *q, const char *event_id,
                                      const char *new_case_id)
{
    struct intake_fold_result res;
    cf_status st = intake_fold(r, script, q->ptrs, q->nkeys, event_id, new_case_id, TTL,
                               q->inquiry_id, &res, err, sizeof(err));
    if (st != CF_OK)
        fail_msg("intake_fold: %s: %s", cf_strerror(st), err);
    return res;
}

static void assert_link(const struct inquiry *q, const char *case_id)
{
    char key[INTAKE_STAGE_KEY_MAX], value[128];
    assert_int_equal(intake_journey_link_key(q->inquiry_id, key, err, sizeof(err)), CF_OK);
    raw_get(key, value, sizeof(value));
    assert_string_equal(value, case_id);
    long long ttl = raw_ttl(key);
    assert_true(ttl > INTAKE_STAGE_TTL_SECONDS - 60 && ttl <= INTAKE_STAGE_TTL_SECONDS);
}

static void assert_key(const char *key, const char *expected)
{
    char value[128];
    raw_get(key, value, sizeof(value));
    assert_string_equal(value, expected);
    if (expected[0] != '\0') {
        long long ttl = raw_ttl(key);
        assert_true(ttl > TTL - 60 && ttl <= TTL);
    }
}

/* A unique hash-like name, so runs and tests never share a key. */
static void unique(char *out, size_t outlen, const char *kind)
{
    char id[CF_UUID_LEN + 1];
    new_uuid(id);
    (void)snprintf(out, outlen, "%s:%s", kind, id);
}

/* --- tests --------------------------------------------------------------------------------- */

/* No claim yet: every key is claimed for the new case, the inquiry linked to it. */
static void test_new_case_claims_every_key(void **state)
{
    (void)state;
    char idem[64], person[64], claim[2 * CF_UUID_LEN + 2];
    char event[CF_UUID_LEN + 1], case_id[CF_UUID_LEN + 1];
    unique(idem, sizeof(idem), "idem");
    unique(person, sizeof(person), "person");
    const char *more[] = {idem, person};
    struct inquiry q;
    inquiry_make(&q, more, 2);
    new_uuid(event);
    new_uuid(case_id);

    struct intake_fold_result res = fold(&q, event, case_id);
    assert_false(res.duplicate);
    assert_string_equal(res.case_id, case_id);
    claim_of(case_id, event, claim, sizeof(claim));
    for (size_t i = 0; i < q.nkeys; i++)
        assert_key(q.keys[i], claim);
    assert_link(&q, case_id);
}

/* A retried batch (another new case id each attempt) adopts the event's own earlier claim, so
 * it reopens the same case; also when an earlier key of the event has gone meanwhile, which is
 * claimed again and then pointed at the adopted claim. */
static void test_retry_adopts_own_claim(void **state)
{
    (void)state;
    char idem[64], person[64], claim[2 * CF_UUID_LEN + 2];
    char event[CF_UUID_LEN + 1], first[CF_UUID_LEN + 1], second[CF_UUID_LEN + 1],
        third[CF_UUID_LEN + 1];
    unique(idem, sizeof(idem), "idem");
    unique(person, sizeof(person), "person");
    const char *more[] = {idem, person};
    struct inquiry q;
    inquiry_make(&q, more, 2);
    new_uuid(event);
    new_uuid(first);
    new_uuid(second);
    new_uuid(third);

    struct intake_fold_result res = fold(&q, event, first);
    assert_false(res.duplicate);
    assert_string_equal(res.case_id, first);

    res = fold(&q, event, second); /* the retry */
    assert_false(res.duplicate);
    assert_string_equal(res.case_id, first);
    claim_of(first, event, claim, sizeof(claim));
    for (size_t i = 0; i < q.nkeys; i++)
        assert_key(q.keys[i], claim);
    assert_link(&q, first);

    /* The inquiry key is gone (deleted here; expired in life): the next attempt claims it for
     * its own new case, finds its earlier claim on the next key, and points the first back. */
    redisReply *reply = raw("DEL %s%s", prefix, q.keys[0]);
    freeReplyObject(reply);
    res = fold(&q, event, third);
    assert_false(res.duplicate);
    assert_string_equal(res.case_id, first);
    for (size_t i = 0; i < q.nkeys; i++)
        assert_key(q.keys[i], claim);
    assert_link(&q, first);
}

/* Another event reaching a held key is a duplicate of that claim's case: the keys before it
 * are pointed at the winning claim, the keys after it are left alone, and a retry of the
 * duplicate (with yet another case id) answers the same. */
static void test_duplicate_points_earlier_keys(void **state)
{
    (void)state;
    char idem_a[64], idem_b[64], person[64], email_b[64];
    char claim_a[2 * CF_UUID_LEN + 2];
    char event_a[CF_UUID_LEN + 1], case_a[CF_UUID_LEN + 1];
    char event_b[CF_UUID_LEN + 1], case_b[CF_UUID_LEN + 1], case_b2[CF_UUID_LEN + 1];
    unique(idem_a, sizeof(idem_a), "idem");
    unique(idem_b, sizeof(idem_b), "idem");
    unique(person, sizeof(person), "person");
    unique(email_b, sizeof(email_b), "person");
    const char *more_a[] = {idem_a, person};
    const char *more_b[] = {idem_b, person, email_b}; /* same person, key 3 not held by A */
    struct inquiry a, b;
    inquiry_make(&a, more_a, 2);
    inquiry_make(&b, more_b, 3);
    new_uuid(event_a);
    new_uuid(case_a);
    new_uuid(event_b);
    new_uuid(case_b);
    new_uuid(case_b2);

    struct intake_fold_result res = fold(&a, event_a, case_a);
    assert_false(res.duplicate);

    res = fold(&b, event_b, case_b);
    assert_true(res.duplicate);
    assert_string_equal(res.case_id, case_a);
    claim_of(case_a, event_a, claim_a, sizeof(claim_a));
    assert_key(b.keys[0], claim_a); /* b's inquiry key: pointed at A's claim */
    assert_key(b.keys[1], claim_a); /* b's idempotency key: the same */
    assert_key(b.keys[2], claim_a); /* the person key A holds */
    assert_key(b.keys[3], "");      /* after the held key: not touched */
    assert_link(&b, case_a);        /* a folded inquiry answers its case's stage */
    assert_link(&a, case_a);

    res = fold(&b, event_b, case_b2); /* the duplicate's retry */
    assert_true(res.duplicate);
    assert_string_equal(res.case_id, case_a);
    assert_key(b.keys[0], claim_a);
    assert_key(b.keys[3], "");

    /* A later inquiry with b's idempotency key (tried before the person key) gets A's case. */
    const char *more_c[] = {idem_b};
    struct inquiry c;
    char event_c[CF_UUID_LEN + 1], case_c[CF_UUID_LEN + 1];
    inquiry_make(&c, more_c, 1);
    new_uuid(event_c);
    new_uuid(case_c);
    res = fold(&c, event_c, case_c);
    assert_true(res.duplicate);
    assert_string_equal(res.case_id, case_a);
}

/* The same inquiry id submitted again (another event) folds on the first key. */
static void test_same_inquiry_again(void **state)
{
    (void)state;
    struct inquiry q;
    char event1[CF_UUID_LEN + 1], event2[CF_UUID_LEN + 1], case1[CF_UUID_LEN + 1],
        case2[CF_UUID_LEN + 1];
    inquiry_make(&q, NULL, 0);
    new_uuid(event1);
    new_uuid(event2);
    new_uuid(case1);
    new_uuid(case2);
    assert_false(fold(&q, event1, case1).duplicate);
    struct intake_fold_result res = fold(&q, event2, case2);
    assert_true(res.duplicate);
    assert_string_equal(res.case_id, case1);
}

/* A key that holds something else is CF_EINVAL naming the key, and nothing is linked. Bad
 * arguments are refused before Redis is asked. */
static void test_not_a_claim_and_bad_arguments(void **state)
{
    (void)state;
    char person[64], event[CF_UUID_LEN + 1], case_id[CF_UUID_LEN + 1];
    unique(person, sizeof(person), "person");
    const char *more[] = {person};
    struct inquiry q;
    inquiry_make(&q, more, 1);
    new_uuid(event);
    new_uuid(case_id);
    raw_ok("SET %s%s %s EX 600", q.keys[1], "not-a-claim");

    struct intake_fold_result res;
    assert_int_equal(intake_fold(r, script, q.ptrs, q.nkeys, event, case_id, TTL, q.inquiry_id,
                                 &res, err, sizeof(err)),
                     CF_EINVAL);
    assert_non_null(strstr(err, "does not hold a claim"));
    char key[INTAKE_STAGE_KEY_MAX], value[128];
    assert_int_equal(intake_journey_link_key(q.inquiry_id, key, err, sizeof(err)), CF_OK);
    raw_get(key, value, sizeof(value));
    assert_string_equal(value, "");

    assert_int_equal(intake_fold(r, script, q.ptrs, q.nkeys, "not-a-uuid", case_id, TTL, NULL, &res,
                                 err, sizeof(err)),
                     CF_EINVAL);
    assert_int_equal(
        intake_fold(r, script, q.ptrs, 0, event, case_id, TTL, NULL, &res, err, sizeof(err)),
        CF_EINVAL);
    assert_int_equal(
        intake_fold(r, script, q.ptrs, q.nkeys, event, case_id, 0, NULL, &res, err, sizeof(err)),
        CF_EINVAL);
    assert_int_equal(
        intake_fold(r, script, q.ptrs, q.nkeys, event, case_id, TTL, "x", &res, err, sizeof(err)),
        CF_EINVAL);
    const char *bad_keys[] = {"intake:person:alex@example.com"}; /* never a key */
    assert_int_equal(
        intake_fold(r, script, bad_keys, 1, event, case_id, TTL, NULL, &res, err, sizeof(err)),
        CF_EINVAL);
}

/* Without an inquiry id nothing is linked, the claims work the same. */
static void test_without_link(void **state)
{
    (void)state;
    struct inquiry q;
    char event[CF_UUID_LEN + 1], case_id[CF_UUID_LEN + 1], claim[2 * CF_UUID_LEN + 2];
    char key[INTAKE_STAGE_KEY_MAX], value[128];
    struct intake_fold_result res;
    inquiry_make(&q, NULL, 0);
    new_uuid(event);
    new_uuid(case_id);
    assert_int_equal(
        intake_fold(r, script, q.ptrs, q.nkeys, event, case_id, TTL, NULL, &res, err, sizeof(err)),
        CF_OK);
    assert_false(res.duplicate);
    assert_string_equal(res.case_id, case_id);
    claim_of(case_id, event, claim, sizeof(claim));
    assert_key(q.keys[0], claim);
    assert_int_equal(intake_journey_link_key(q.inquiry_id, key, err, sizeof(err)), CF_OK);
    raw_get(key, value, sizeof(value));
    assert_string_equal(value, "");
}

/* --- setup --------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    /* As in every caseflow program: a write to a dead Redis must not kill the process. */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    (void)sigaction(SIGPIPE, &sa, NULL);
    if (getenv("CASEFLOW_REDIS_HOST") != NULL)
        host = getenv("CASEFLOW_REDIS_HOST");
    if (getenv("CASEFLOW_REDIS_PORT") != NULL)
        port = (int)strtol(getenv("CASEFLOW_REDIS_PORT"), NULL, 10); /* bad input fails below */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    (void)snprintf(prefix, sizeof(prefix), "cftest:fold:%ld.%ld.%ld:", (long)getpid(),
                   (long)ts.tv_sec, ts.tv_nsec);
    cf_status st = cf_redis_new(host, port, 1000, 2000, &r, err, sizeof(err));
    if (st == CF_OK)
        st = cf_redis_set_key_prefix(r, prefix, err, sizeof(err));
    if (st == CF_OK)
        st = intake_fold_script_new(&script, err, sizeof(err));
    if (st == CF_OK)
        st = cf_redis_script_load(r, script, err, sizeof(err)); /* a Lua syntax error shows here */
    if (st != CF_OK) {
        fprintf(stderr, "setup (Redis on %s:%d; deploy/stack up): %s: %s\n", host, port,
                cf_strerror(st), err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cursor[32] = "0";
    do {
        redisReply *reply = raw("SCAN %s MATCH %s* COUNT 1000", cursor, prefix);
        if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
            freeReplyObject(reply);
            break;
        }
        (void)snprintf(cursor, sizeof(cursor), "%s", reply->element[0]->str);
        for (size_t i = 0; i < reply->element[1]->elements; i++)
            freeReplyObject(raw("DEL %s", reply->element[1]->element[i]->str));
        freeReplyObject(reply);
    } while (strcmp(cursor, "0") != 0);
    cf_redis_script_free(script);
    cf_redis_free(r);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_case_claims_every_key),
        cmocka_unit_test(test_retry_adopts_own_claim),
        cmocka_unit_test(test_duplicate_points_earlier_keys),
        cmocka_unit_test(test_same_inquiry_again),
        cmocka_unit_test(test_not_a_claim_and_bad_arguments),
        cmocka_unit_test(test_without_link),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
