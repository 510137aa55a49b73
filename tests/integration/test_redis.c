/* test_redis.c (integration) — common/redis.c against the real redis-server of deploy/stack.
 *
 * Needs `deploy/stack up` (Redis on CASEFLOW_REDIS_HOST:CASEFLOW_REDIS_PORT, default
 * 127.0.0.1:16379). What the module wrote is checked with a separate raw hiredis connection,
 * as an operator would with redis-cli: the key with its prefix, its TTL, its bytes. The restart
 * and outage tests stop and start the stack's Redis with deploy/stack and leave it running. The
 * AUTH test starts a redis-server of its own that requires a password.
 * Every key lives under a prefix unique to this run and is deleted at the end. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "child.h"
#include "config.h"
#include "http_client.h"
#include "log.h"
#include "redis.h"
#include "redis_raw.h"
#include "test_env.h"

#define STACK CF_TESTS_DIR "/../deploy/stack"
#define TTL 120

static const char *host = "127.0.0.1";
static int port = 16379;
static char prefix[CF_REDIS_MAX_PREFIX + 1];
static struct cf_redis *r;

/* Lua used by the tests. Every one that writes gives the key a TTL taken from an argument. */
static const char *const SRC_SET_TTL = /* idempotent: same keys and args, same result */
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) "
    "return redis.call('TTL', KEYS[1])";
static const char *const SRC_COUNT = /* not idempotent: every run counts */
    "local n = redis.call('INCR', KEYS[1]) "
    "redis.call('EXPIRE', KEYS[1], ARGV[1]) "
    "return {n, ARGV[2], false, {1, 'x'}}";

/* One command on a fresh raw connection (tests/support/redis_raw.h). */
#define raw(...) cf_test_redis_raw(host, port, __VA_ARGS__)

static long long raw_int(const char *fmt, const char *key)
{
    redisReply *reply = raw(fmt, prefix, key);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    long long v = reply->integer;
    freeReplyObject(reply);
    return v;
}

/* The number stored under a key (a counter written by a script). */
static long long raw_get_ll(const char *key)
{
    redisReply *reply = raw("GET %s%s", prefix, key);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    long long v = strtoll(reply->str, NULL, 10);
    freeReplyObject(reply);
    return v;
}

static long long raw_ttl(const char *key)
{
    return raw_int("TTL %s%s", key);
}

static bool raw_exists(const char *key)
{
    return raw_int("EXISTS %s%s", key) == 1;
}

static void raw_ok(const char *fmt, ...)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    va_list ap;
    va_start(ap, fmt);
    redisReply *reply = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    assert_non_null(reply);
    assert_int_not_equal(reply->type, REDIS_REPLY_ERROR);
    freeReplyObject(reply);
}

static int stack(const char *command)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' %s 1>&2", STACK, command);
    int rc = system(cmd);
    return rc == -1 || !WIFEXITED(rc) ? -1 : WEXITSTATUS(rc);
}

static bool redis_answers(void)
{
    redisReply *reply = raw("PING");
    bool ok = reply != NULL && reply->type == REDIS_REPLY_STATUS;
    freeReplyObject(reply);
    return ok;
}

static struct cf_redis_script *script(const char *src, unsigned flags)
{
    struct cf_redis_script *s = NULL;
    char errbuf[256] = "";
    assert_int_equal(cf_redis_script_new(src, flags, &s, errbuf, sizeof(errbuf)), CF_OK);
    return s;
}

static void ping_ok(void)
{
    char errbuf[256] = "";
    cf_status st = cf_redis_ping(r, errbuf, sizeof(errbuf));
    if (st != CF_OK)
        fail_msg("ping: %s: %s", cf_strerror(st), errbuf);
}

/* --- setup --------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    /* As in every caseflow program: a write to a dead Redis must not kill the process. */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    if (getenv("CASEFLOW_REDIS_HOST") != NULL)
        host = getenv("CASEFLOW_REDIS_HOST");
    if (getenv("CASEFLOW_REDIS_PORT") != NULL)
        port =
            (int)strtol(getenv("CASEFLOW_REDIS_PORT"), NULL, 10); /* bad input fails the connect */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(prefix, sizeof(prefix), "cftest:redis:%ld.%ld.%ld:", (long)getpid(), (long)ts.tv_sec,
             ts.tv_nsec);

    if (!redis_answers()) {
        fprintf(stderr, "no Redis on %s:%d: start the stack with deploy/stack up\n", host, port);
        return -1;
    }
    char errbuf[256] = "";
    cf_status st = cf_redis_new(host, port, 1000, 2000, &r, errbuf, sizeof(errbuf));
    if (st == CF_OK)
        st = cf_redis_set_key_prefix(r, prefix, errbuf, sizeof(errbuf));
    if (st != CF_OK) {
        fprintf(stderr, "cf_redis_new: %s: %s\n", cf_strerror(st), errbuf);
        return -1;
    }
    cf_redis_set_retry_budget(r, 10000);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (!redis_answers())
        (void)stack("start redis");
    /* Delete everything this run wrote. */
    char cursor[32] = "0";
    do {
        redisReply *reply = raw("SCAN %s MATCH %s* COUNT 1000", cursor, prefix);
        if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
            freeReplyObject(reply);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", reply->element[0]->str);
        for (size_t i = 0; i < reply->element[1]->elements; i++)
            freeReplyObject(raw("DEL %s", reply->element[1]->element[i]->str));
        freeReplyObject(reply);
    } while (strcmp(cursor, "0") != 0);
    cf_redis_free(r);
    r = NULL;
    return 0;
}

/* Each test starts with a reachable Redis and a patient retry budget. */
static int test_setup(void **state)
{
    (void)state;
    cf_redis_set_retry_budget(r, 10000);
    return 0;
}

/* Whatever the outage tests did, Redis is running again afterwards. */
static int restart_teardown(void **state)
{
    (void)state;
    if (!redis_answers() && stack("start redis") != 0)
        return -1;
    cf_redis_set_retry_budget(r, 10000);
    return 0;
}

/* --- tests --------------------------------------------------------------------------------- */

static void test_connect_refused(void **state)
{
    (void)state;
    /* A loopback port nobody listens on: bind one, note it, close it. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t slen = sizeof(sin);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
    close(fd);

    struct cf_redis *dead = (struct cf_redis *)&dead;
    char errbuf[256] = "";
    long long t0 = cf_clock_mono_ms();
    cf_status st =
        cf_redis_new("127.0.0.1", ntohs(sin.sin_port), 500, 500, &dead, errbuf, sizeof(errbuf));
    assert_int_equal(st, CF_EIO);
    assert_null(dead);
    assert_non_null(strstr(errbuf, "refused"));
    assert_true(cf_clock_mono_ms() - t0 < 1000);
}

static void test_set_get_with_ttl(void **state)
{
    (void)state;
    char errbuf[256] = "";
    const char value[] = "bytes\0with a NUL \xff";
    assert_int_equal(cf_redis_set(r, "case:1", value, sizeof(value), TTL, errbuf, sizeof(errbuf)),
                     CF_OK);

    /* What an operator sees: the prefixed key, the exact bytes, a TTL. */
    redisReply *reply = raw("GET %scase:1", prefix);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    assert_int_equal(reply->len, sizeof(value));
    assert_memory_equal(reply->str, value, sizeof(value));
    freeReplyObject(reply);
    long long ttl = raw_ttl("case:1");
    assert_in_range(ttl, 1, TTL);
    assert_false(raw_exists("case:1x"));

    char *got = NULL;
    size_t len = 0;
    assert_int_equal(cf_redis_get(r, "case:1", &got, &len, errbuf, sizeof(errbuf)), CF_OK);
    assert_int_equal(len, sizeof(value));
    assert_memory_equal(got, value, sizeof(value));
    assert_int_equal(got[len], '\0');
    free(got);

    long long ttl2 = 0;
    assert_int_equal(cf_redis_ttl(r, "case:1", &ttl2, errbuf, sizeof(errbuf)), CF_OK);
    assert_in_range(ttl2, 1, TTL);

    /* Overwrite with a shorter TTL; an empty value is a value. */
    assert_int_equal(cf_redis_set(r, "case:1", NULL, 0, 5, errbuf, sizeof(errbuf)), CF_OK);
    assert_in_range(raw_ttl("case:1"), 1, 5);
    assert_int_equal(cf_redis_get(r, "case:1", &got, NULL, errbuf, sizeof(errbuf)), CF_OK);
    assert_string_equal(got, "");
    free(got);
}

static void test_set_without_ttl_refused(void **state)
{
    (void)state;
    char errbuf[256] = "";
    bool was_set = true;
    assert_int_equal(cf_redis_set(r, "nottl", "v", 1, 0, errbuf, sizeof(errbuf)), CF_EINVAL);
    assert_non_null(strstr(errbuf, "TTL"));
    assert_int_equal(cf_redis_set(r, "nottl", "v", 1, -1, errbuf, sizeof(errbuf)), CF_EINVAL);
    assert_int_equal(cf_redis_set_nx(r, "nottl", "v", 1, 0, &was_set, errbuf, sizeof(errbuf)),
                     CF_EINVAL);
    assert_false(was_set);
    struct cf_redis_pipeline *p = NULL;
    assert_int_equal(cf_redis_pipeline_new(r, &p), CF_OK);
    assert_int_equal(cf_redis_pipeline_set(p, "nottl", "v", 1, 0, errbuf, sizeof(errbuf)),
                     CF_EINVAL);
    assert_int_equal(cf_redis_pipeline_count(p), 0);
    cf_redis_pipeline_free(p);
    assert_false(raw_exists("nottl"));
}

static void test_key_rules(void **state)
{
    (void)state;
    char errbuf[256] = "";
    const char *bad[] = {"mail:jane@example.org", "two words", "tab\t", "nl\n", "ctl\x02",
                         "K\xc3\xb6ln",           "",          NULL};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cf_redis_set(r, bad[i], "v", 1, TTL, errbuf, sizeof(errbuf)), CF_EINVAL);
        char *got = NULL;
        assert_int_equal(cf_redis_get(r, bad[i], &got, NULL, errbuf, sizeof(errbuf)), CF_EINVAL);
        assert_null(got);
        assert_int_equal(cf_redis_del(r, bad[i], NULL, errbuf, sizeof(errbuf)), CF_EINVAL);
    }
    assert_false(raw_exists("mail:jane@example.org"));
    assert_false(raw_exists("two"));

    char key[CF_REDIS_MAX_KEY + 2];
    memset(key, 'k', sizeof(key) - 1);
    key[CF_REDIS_MAX_KEY + 1] = '\0';
    assert_int_equal(cf_redis_set(r, key, "v", 1, TTL, errbuf, sizeof(errbuf)), CF_EINVAL);
    key[CF_REDIS_MAX_KEY] = '\0';
    assert_int_equal(cf_redis_set(r, key, "v", 1, TTL, errbuf, sizeof(errbuf)), CF_OK);
    assert_true(raw_exists(key));

    /* The prefix is checked by the same rules and applies to what follows. */
    assert_int_equal(cf_redis_set_key_prefix(r, "bad prefix", errbuf, sizeof(errbuf)), CF_EINVAL);
    assert_int_equal(cf_redis_set(r, "prefixed", "v", 1, TTL, errbuf, sizeof(errbuf)), CF_OK);
    assert_true(raw_exists("prefixed"));
}

static void test_set_nx_claim(void **state)
{
    (void)state;
    char errbuf[256] = "";
    bool was_set = false;
    assert_int_equal(
        cf_redis_set_nx(r, "claim:evt-1", "instance-a", 10, TTL, &was_set, errbuf, sizeof(errbuf)),
        CF_OK);
    assert_true(was_set);
    assert_int_equal(
        cf_redis_set_nx(r, "claim:evt-1", "instance-b", 10, TTL, &was_set, errbuf, sizeof(errbuf)),
        CF_OK);
    assert_false(was_set);
    char *got = NULL;
    assert_int_equal(cf_redis_get(r, "claim:evt-1", &got, NULL, errbuf, sizeof(errbuf)), CF_OK);
    assert_string_equal(got, "instance-a");
    free(got);
    assert_in_range(raw_ttl("claim:evt-1"), 1, TTL);
}

static void test_get_del_missing(void **state)
{
    (void)state;
    char errbuf[256] = "";
    char *got = (char *)&got;
    assert_int_equal(cf_redis_get(r, "absent", &got, NULL, errbuf, sizeof(errbuf)), CF_ENOTFOUND);
    assert_null(got);
    long long ttl = 0;
    assert_int_equal(cf_redis_ttl(r, "absent", &ttl, errbuf, sizeof(errbuf)), CF_ENOTFOUND);

    bool deleted = false;
    assert_int_equal(cf_redis_set(r, "gone", "v", 1, TTL, errbuf, sizeof(errbuf)), CF_OK);
    assert_int_equal(cf_redis_del(r, "gone", &deleted, errbuf, sizeof(errbuf)), CF_OK);
    assert_true(deleted);
    assert_false(raw_exists("gone"));
    assert_int_equal(cf_redis_del(r, "gone", &deleted, errbuf, sizeof(errbuf)), CF_OK);
    assert_false(deleted);

    /* A key of another type is an error with the server's text, and the connection lives. */
    raw_ok("SADD %sset 1", prefix);
    raw_ok("EXPIRE %sset 60", prefix);
    assert_int_equal(cf_redis_get(r, "set", &got, NULL, errbuf, sizeof(errbuf)), CF_EINVAL);
    assert_non_null(strstr(errbuf, "WRONGTYPE"));
    ping_ok();
}

static void test_value_limits(void **state)
{
    (void)state;
    char errbuf[256] = "";
    char *big = malloc(CF_REDIS_MAX_STRING + 1);
    assert_non_null(big);
    memset(big, 'b', CF_REDIS_MAX_STRING + 1);

    assert_int_equal(
        cf_redis_set(r, "big", big, CF_REDIS_MAX_STRING + 1, TTL, errbuf, sizeof(errbuf)),
        CF_ETOOBIG);
    assert_false(raw_exists("big"));
    assert_int_equal(cf_redis_set(r, "big", big, CF_REDIS_MAX_STRING, TTL, errbuf, sizeof(errbuf)),
                     CF_OK);
    char *got = NULL;
    size_t len = 0;
    assert_int_equal(cf_redis_get(r, "big", &got, &len, errbuf, sizeof(errbuf)), CF_OK);
    assert_int_equal(len, CF_REDIS_MAX_STRING);
    free(got);

    /* Someone else stored more than the cap: reading it is refused, not copied. */
    redisReply *reply = raw("SET %sbigger %b EX 60", prefix, big, (size_t)CF_REDIS_MAX_STRING + 1);
    assert_non_null(reply);
    freeReplyObject(reply);
    assert_int_equal(cf_redis_get(r, "bigger", &got, &len, errbuf, sizeof(errbuf)), CF_ETOOBIG);
    assert_null(got);
    free(big);

    /* Arrays: the element cap and the nesting cap. */
    struct cf_redis_script *range =
        script("local t = {} for i = 1, tonumber(ARGV[1]) do t[i] = i end return t", 0);
    struct cf_redis_value *v = NULL;
    char n[16];
    snprintf(n, sizeof(n), "%d", CF_REDIS_MAX_ELEMENTS);
    const char *args[1] = {n};
    assert_int_equal(
        cf_redis_script_run(r, range, 0, NULL, 1, args, NULL, &v, errbuf, sizeof(errbuf)), CF_OK);
    assert_int_equal(v->type, CF_REDIS_ARRAY);
    assert_int_equal(v->count, CF_REDIS_MAX_ELEMENTS);
    assert_int_equal(v->elements[CF_REDIS_MAX_ELEMENTS - 1].integer, CF_REDIS_MAX_ELEMENTS);
    cf_redis_value_free(v);
    snprintf(n, sizeof(n), "%d", CF_REDIS_MAX_ELEMENTS + 1);
    assert_int_equal(
        cf_redis_script_run(r, range, 0, NULL, 1, args, NULL, &v, errbuf, sizeof(errbuf)),
        CF_ETOOBIG);
    assert_null(v);
    cf_redis_script_free(range);

    struct cf_redis_script *deep4 = script("return {{{{1}}}}", 0);
    struct cf_redis_script *deep5 = script("return {{{{{1}}}}}", 0);
    assert_int_equal(
        cf_redis_script_run(r, deep4, 0, NULL, 0, NULL, NULL, &v, errbuf, sizeof(errbuf)), CF_OK);
    assert_int_equal(v->elements[0].elements[0].elements[0].elements[0].integer, 1);
    cf_redis_value_free(v);
    assert_int_equal(
        cf_redis_script_run(r, deep5, 0, NULL, 0, NULL, NULL, &v, errbuf, sizeof(errbuf)),
        CF_ETOOBIG);
    cf_redis_script_free(deep4);
    cf_redis_script_free(deep5);
    ping_ok();
}

static void test_script_run_and_noscript(void **state)
{
    (void)state;
    char errbuf[256] = "";
    struct cf_redis_script *count = script(SRC_COUNT, 0);

    /* The SHA1 computed here is the one Redis computes. */
    redisReply *reply = raw("SCRIPT LOAD %s", SRC_COUNT);
    assert_non_null(reply);
    assert_string_equal(reply->str, cf_redis_script_sha(count));
    freeReplyObject(reply);

    const char *keys[1] = {"counter:evt-9"};
    const char *args[2] = {"60", "tag\0x"};
    const size_t arglens[2] = {2, 5};
    struct cf_redis_value *v = NULL;
    assert_int_equal(
        cf_redis_script_run(r, count, 1, keys, 2, args, arglens, &v, errbuf, sizeof(errbuf)),
        CF_OK);
    assert_int_equal(v->type, CF_REDIS_ARRAY);
    assert_int_equal(v->count, 4);
    assert_int_equal(v->elements[0].type, CF_REDIS_INT);
    assert_int_equal(v->elements[0].integer, 1);
    assert_int_equal(v->elements[1].type, CF_REDIS_STRING);
    assert_int_equal(v->elements[1].len, 5);
    assert_memory_equal(v->elements[1].str, "tag\0x", 5);
    assert_int_equal(v->elements[2].type, CF_REDIS_NIL);
    assert_int_equal(v->elements[3].type, CF_REDIS_ARRAY);
    assert_string_equal(v->elements[3].elements[1].str, "x");
    cf_redis_value_free(v);
    /* The script wrote the prefixed key, with the TTL it was given. */
    assert_in_range(raw_ttl("counter:evt-9"), 1, 60);

    /* Redis forgets every script: the next run repairs that by itself and runs exactly once. */
    raw_ok("SCRIPT FLUSH");
    reply = raw("SCRIPT EXISTS %s", cf_redis_script_sha(count));
    assert_int_equal(reply->element[0]->integer, 0);
    freeReplyObject(reply);
    assert_int_equal(
        cf_redis_script_run(r, count, 1, keys, 2, args, arglens, &v, errbuf, sizeof(errbuf)),
        CF_OK);
    assert_int_equal(v->elements[0].integer, 2);
    cf_redis_value_free(v);
    reply = raw("SCRIPT EXISTS %s", cf_redis_script_sha(count));
    assert_int_equal(reply->element[0]->integer, 1);
    freeReplyObject(reply);
    assert_int_equal(raw_get_ll(keys[0]), 2);

    /* out may be NULL; NUL-terminated args without lengths. */
    const char *args2[2] = {"60", "t"};
    assert_int_equal(
        cf_redis_script_run(r, count, 1, keys, 2, args2, NULL, NULL, errbuf, sizeof(errbuf)),
        CF_OK);
    /* Keys of scripts follow the key rules. */
    const char *badkeys[1] = {"jane@example.org"};
    assert_int_equal(
        cf_redis_script_run(r, count, 1, badkeys, 2, args2, NULL, &v, errbuf, sizeof(errbuf)),
        CF_EINVAL);
    assert_null(v);
    cf_redis_script_free(count);
}

static void test_script_errors(void **state)
{
    (void)state;
    char errbuf[256] = "";
    struct cf_redis_value *v = NULL;

    struct cf_redis_script *broken = script("return (", 0);
    assert_int_equal(cf_redis_script_load(r, broken, errbuf, sizeof(errbuf)), CF_EINVAL);
    assert_non_null(strstr(errbuf, "SCRIPT LOAD"));
    assert_int_equal(
        cf_redis_script_run(r, broken, 0, NULL, 0, NULL, NULL, &v, errbuf, sizeof(errbuf)),
        CF_EINVAL);
    cf_redis_script_free(broken);

    struct cf_redis_script *refuse = script("return redis.error_reply('CFTEST refused')", 0);
    assert_int_equal(cf_redis_script_load(r, refuse, errbuf, sizeof(errbuf)), CF_OK);
    assert_int_equal(
        cf_redis_script_run(r, refuse, 0, NULL, 0, NULL, NULL, &v, errbuf, sizeof(errbuf)),
        CF_EINVAL);
    assert_non_null(strstr(errbuf, "CFTEST refused"));
    assert_null(v);
    cf_redis_script_free(refuse);

    /* A runtime error inside Redis (INCR on a non-number). */
    assert_int_equal(cf_redis_set(r, "text", "abc", 3, TTL, errbuf, sizeof(errbuf)), CF_OK);
    struct cf_redis_script *incr = script("return redis.call('INCR', KEYS[1])", 0);
    const char *keys[1] = {"text"};
    assert_int_equal(
        cf_redis_script_run(r, incr, 1, keys, 0, NULL, NULL, &v, errbuf, sizeof(errbuf)),
        CF_EINVAL);
    assert_non_null(strstr(errbuf, "not an integer"));
    cf_redis_script_free(incr);
    ping_ok();
}

static void check_pipeline_replies(const struct cf_redis_pipeline *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct cf_redis_value *v = NULL;
        assert_int_equal(cf_redis_pipeline_reply(p, i, &v), CF_OK);
        assert_non_null(v);
        if (i % 10 < 7) { /* SET */
            assert_int_equal(v->type, CF_REDIS_STATUS);
            assert_string_equal(v->str, "OK");
        } else if (i % 10 < 9) { /* EVALSHA: the TTL it set */
            assert_int_equal(v->type, CF_REDIS_INT);
            assert_in_range(v->integer, 1, TTL);
        } else { /* GET of the SET at i - 9 */
            char want[32];
            snprintf(want, sizeof(want), "value-%zu", i - 9);
            assert_int_equal(v->type, CF_REDIS_STRING);
            assert_string_equal(v->str, want);
        }
    }
}

static void test_pipeline_1000(void **state)
{
    (void)state;
    char errbuf[256] = "";
    char key[64], val[64], ttl[16];
    struct cf_redis_script *set_ttl = script(SRC_SET_TTL, CF_REDIS_SCRIPT_IDEMPOTENT);
    struct cf_redis_pipeline *p = NULL;
    assert_int_equal(cf_redis_pipeline_new(r, &p), CF_OK);
    snprintf(ttl, sizeof(ttl), "%d", TTL);

    /* 1,000 commands: per 10, seven SETs, two EVALSHAs, one GET of this ten's first SET. */
    for (size_t i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "pipe:%zu", i);
        snprintf(val, sizeof(val), "value-%zu", i);
        if (i % 10 < 7) {
            assert_int_equal(
                cf_redis_pipeline_set(p, key, val, strlen(val), TTL, errbuf, sizeof(errbuf)),
                CF_OK);
        } else if (i % 10 < 9) {
            const char *keys[1] = {key};
            const char *args[2] = {val, ttl};
            assert_int_equal(cf_redis_pipeline_script(p, set_ttl, 1, keys, 2, args, NULL, errbuf,
                                                      sizeof(errbuf)),
                             CF_OK);
        } else {
            snprintf(key, sizeof(key), "pipe:%zu", i - 9);
            assert_int_equal(cf_redis_pipeline_get(p, key, errbuf, sizeof(errbuf)), CF_OK);
        }
    }
    assert_int_equal(cf_redis_pipeline_count(p), 1000);
    assert_int_equal(cf_redis_pipeline_reply(p, 0, NULL), CF_EINVAL); /* not run yet */
    cf_status st = cf_redis_pipeline_exec(r, p, errbuf, sizeof(errbuf));
    if (st != CF_OK)
        fail_msg("exec: %s: %s", cf_strerror(st), errbuf);
    check_pipeline_replies(p, 1000);
    assert_int_equal(cf_redis_pipeline_reply(p, 1000, NULL), CF_EINVAL);

    /* Every written key is there, with its value and a TTL (checked in one raw pipeline). */
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    assert_int_equal(c->err, 0);
    for (size_t i = 0; i < 1000; i++)
        if (i % 10 < 9) {
            /* hiredis's format knows no %zu */
            redisAppendCommand(c, "GET %spipe:%d", prefix, (int)i);
            redisAppendCommand(c, "TTL %spipe:%d", prefix, (int)i);
        }
    for (size_t i = 0; i < 1000; i++) {
        if (i % 10 >= 9)
            continue;
        void *g = NULL, *t = NULL;
        assert_int_equal(redisGetReply(c, &g), REDIS_OK);
        assert_int_equal(redisGetReply(c, &t), REDIS_OK);
        snprintf(val, sizeof(val), "value-%zu", i);
        assert_int_equal(((redisReply *)g)->type, REDIS_REPLY_STRING);
        assert_string_equal(((redisReply *)g)->str, val);
        assert_in_range(((redisReply *)t)->integer, 1, TTL);
        freeReplyObject(g);
        freeReplyObject(t);
    }
    redisFree(c);

    /* Running it again sends the same batch. */
    assert_int_equal(cf_redis_pipeline_exec(r, p, errbuf, sizeof(errbuf)), CF_OK);
    check_pipeline_replies(p, 1000);

    /* One failing command fails the batch and says which; the others' replies stay readable. */
    cf_redis_pipeline_reset(p);
    assert_int_equal(cf_redis_pipeline_count(p), 0);
    struct cf_redis_script *refuse = script("return redis.error_reply('CFTEST no')", 0);
    assert_int_equal(cf_redis_pipeline_set(p, "pf:0", "a", 1, TTL, errbuf, sizeof(errbuf)), CF_OK);
    assert_int_equal(
        cf_redis_pipeline_script(p, refuse, 0, NULL, 0, NULL, NULL, errbuf, sizeof(errbuf)), CF_OK);
    assert_int_equal(cf_redis_pipeline_get(p, "pf:0", errbuf, sizeof(errbuf)), CF_OK);
    assert_int_equal(cf_redis_pipeline_get(p, "pf:missing", errbuf, sizeof(errbuf)), CF_OK);
    assert_int_equal(cf_redis_pipeline_del(p, "pf:0", errbuf, sizeof(errbuf)), CF_OK);
    assert_int_equal(cf_redis_pipeline_exec(r, p, errbuf, sizeof(errbuf)), CF_EINVAL);
    assert_non_null(strstr(errbuf, "command 1"));
    assert_non_null(strstr(errbuf, "CFTEST no"));
    const struct cf_redis_value *v = NULL;
    assert_int_equal(cf_redis_pipeline_reply(p, 1, &v), CF_EINVAL);
    assert_null(v);
    assert_int_equal(cf_redis_pipeline_reply(p, 2, &v), CF_OK);
    assert_string_equal(v->str, "a");
    assert_int_equal(cf_redis_pipeline_reply(p, 3, &v), CF_OK);
    assert_int_equal(v->type, CF_REDIS_NIL);
    assert_int_equal(cf_redis_pipeline_reply(p, 4, &v), CF_OK);
    assert_int_equal(v->integer, 1);
    cf_redis_script_free(refuse);
    cf_redis_pipeline_free(p);
    cf_redis_script_free(set_ttl);
}

static void test_pipeline_noscript(void **state)
{
    (void)state;
    char errbuf[256] = "";
    struct cf_redis_script *set_ttl = script(SRC_SET_TTL, CF_REDIS_SCRIPT_IDEMPOTENT);
    struct cf_redis_script *count = script(SRC_COUNT, 0);
    struct cf_redis_pipeline *safe = NULL, *unsafe = NULL;
    assert_int_equal(cf_redis_pipeline_new(r, &safe), CF_OK);
    assert_int_equal(cf_redis_pipeline_new(r, &unsafe), CF_OK);
    const char *k1[1] = {"pn:safe"}, *a1[2] = {"v", "60"};
    const char *k2[1] = {"pn:count"}, *a2[2] = {"60", "t"};
    assert_int_equal(cf_redis_pipeline_set(safe, "pn:a", "a", 1, TTL, errbuf, sizeof(errbuf)),
                     CF_OK);
    assert_int_equal(
        cf_redis_pipeline_script(safe, set_ttl, 1, k1, 2, a1, NULL, errbuf, sizeof(errbuf)), CF_OK);
    assert_int_equal(cf_redis_pipeline_set(unsafe, "pn:b", "b", 1, TTL, errbuf, sizeof(errbuf)),
                     CF_OK);
    assert_int_equal(
        cf_redis_pipeline_script(unsafe, count, 1, k2, 2, a2, NULL, errbuf, sizeof(errbuf)), CF_OK);
    assert_int_equal(cf_redis_pipeline_exec(r, safe, errbuf, sizeof(errbuf)), CF_OK);
    assert_int_equal(cf_redis_pipeline_exec(r, unsafe, errbuf, sizeof(errbuf)), CF_OK);
    assert_int_equal(raw_get_ll("pn:count"), 1);

    /* Scripts flushed under the live connection. A batch that may run twice is repaired. */
    raw_ok("SCRIPT FLUSH");
    assert_int_equal(cf_redis_pipeline_exec(r, safe, errbuf, sizeof(errbuf)), CF_OK);
    const struct cf_redis_value *v = NULL;
    assert_int_equal(cf_redis_pipeline_reply(safe, 1, &v), CF_OK);
    assert_int_equal(v->type, CF_REDIS_INT);

    /* A batch that may not is refused as a whole (the caller retries its transaction); its
     * script did not run. Running it again works: the module has forgotten the script. */
    raw_ok("SCRIPT FLUSH");
    assert_int_equal(cf_redis_pipeline_exec(r, unsafe, errbuf, sizeof(errbuf)), CF_EIO);
    assert_non_null(strstr(errbuf, "NOSCRIPT"));
    assert_int_equal(cf_redis_pipeline_reply(unsafe, 1, &v), CF_EINVAL);
    assert_int_equal(raw_get_ll("pn:count"), 1);
    assert_int_equal(cf_redis_pipeline_exec(r, unsafe, errbuf, sizeof(errbuf)), CF_OK);
    assert_int_equal(raw_get_ll("pn:count"), 2);

    cf_redis_pipeline_free(safe);
    cf_redis_pipeline_free(unsafe);
    cf_redis_script_free(set_ttl);
    cf_redis_script_free(count);
}

static void test_config(void **state)
{
    (void)state;
    const struct cf_config_entry table[] = {CF_CONFIG_COMMON_ENTRIES, CF_CONFIG_REDIS_ENTRIES};
    char env_host[300], env_port[64], env_prefix[128];
    snprintf(env_host, sizeof(env_host), "CASEFLOW_REDIS_HOST=%s", host);
    snprintf(env_port, sizeof(env_port), "CASEFLOW_REDIS_PORT=%d", port);
    snprintf(env_prefix, sizeof(env_prefix), "CASEFLOW_REDIS_KEY_PREFIX=%scfg:", prefix);
    char *envp[] = {env_host, env_port, env_prefix, NULL};
    struct cf_config *config = NULL;
    char errbuf[256] = "";
    cf_status st = cf_config_load(table, sizeof(table) / sizeof(table[0]), envp, &config, errbuf,
                                  sizeof(errbuf));
    if (st != CF_OK)
        fail_msg("config: %s", errbuf);
    struct cf_redis *rc = NULL;
    assert_int_equal(cf_redis_new_from_config(config, &rc, errbuf, sizeof(errbuf)), CF_OK);
    assert_int_equal(cf_redis_set(rc, "k", "v", 1, TTL, errbuf, sizeof(errbuf)), CF_OK);
    assert_true(raw_exists("cfg:k"));
    cf_redis_free(rc);
    cf_config_free(config);

    /* A prefix outside the key alphabet passes the config's length bounds but not the module. */
    char *bad_env[] = {env_host, env_port, "CASEFLOW_REDIS_KEY_PREFIX=a b", NULL};
    assert_int_equal(cf_config_load(table, sizeof(table) / sizeof(table[0]), bad_env, &config,
                                    errbuf, sizeof(errbuf)),
                     CF_OK);
    rc = (struct cf_redis *)&rc;
    assert_int_equal(cf_redis_new_from_config(config, &rc, errbuf, sizeof(errbuf)), CF_EINVAL);
    assert_null(rc);
    cf_config_free(config);
}

/* Commands keep succeeding while deploy/stack restarts Redis under them. */
static void test_restart_during_writes(void **state)
{
    (void)state;
    char errbuf[256] = "", key[32], val[32];
    struct cf_redis_script *count = script(SRC_COUNT, 0);
    const char *ckeys[1] = {"rs:count"}, *cargs[2] = {"600", "t"};

    assert_int_equal(cf_redis_set(r, "rs:before", "1", 1, TTL, errbuf, sizeof(errbuf)), CF_OK);
    assert_int_equal(
        cf_redis_script_run(r, count, 1, ckeys, 2, cargs, NULL, NULL, errbuf, sizeof(errbuf)),
        CF_OK);

    /* Restart between calls: even a non-idempotent script must go through (the module sees
     * the closed connection before sending). */
    assert_int_equal(stack("restart redis"), 0);
    assert_int_equal(
        cf_redis_script_run(r, count, 1, ckeys, 2, cargs, NULL, NULL, errbuf, sizeof(errbuf)),
        CF_OK);
    assert_int_equal(raw_get_ll("rs:count"), 2);
    char *got = NULL;
    assert_int_equal(cf_redis_get(r, "rs:before", &got, NULL, errbuf, sizeof(errbuf)), CF_OK);
    assert_string_equal(got, "1");
    free(got);

    /* Restart during a stream of idempotent writes: each call rides out the outage. */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "sleep 0.3; exec '" STACK "' restart redis 1>&2",
              (char *)NULL);
        _exit(127);
    }
    int n = 0, status = 0;
    long long t0 = cf_clock_mono_ms(), slowest = 0;
    for (;;) {
        snprintf(key, sizeof(key), "rs:w:%d", n);
        snprintf(val, sizeof(val), "v%d", n);
        long long t1 = cf_clock_mono_ms();
        cf_status st = cf_redis_set(r, key, val, strlen(val), TTL, errbuf, sizeof(errbuf));
        if (st != CF_OK)
            fail_msg("write %d during restart: %s: %s", n, cf_strerror(st), errbuf);
        slowest = cf_clock_mono_ms() - t1 > slowest ? cf_clock_mono_ms() - t1 : slowest;
        n++;
        pid_t done = waitpid(pid, &status, WNOHANG);
        assert_true(done >= 0);
        if (done == pid)
            break;
        assert_true(cf_clock_mono_ms() - t0 < 120000);
    }
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("redis restart: %d writes during the restart, slowest call %lld ms\n", n, slowest);
    /* Some call must have waited for the outage, or Redis never went away. */
    assert_true(slowest >= 20);
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "rs:w:%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        assert_int_equal(cf_redis_get(r, key, &got, NULL, errbuf, sizeof(errbuf)), CF_OK);
        assert_string_equal(got, val);
        free(got);
    }
    cf_redis_script_free(count);
}

/* With Redis stopped, a call gives up within its budget with CF_EIO/CF_ETIMEOUT. */
static void test_down_fails_within_budget(void **state)
{
    (void)state;
    char errbuf[256] = "";
    struct cf_redis_script *count = script(SRC_COUNT, 0);
    const char *ckeys[1] = {"down:count"}, *cargs[2] = {"60", "t"};
    ping_ok();
    assert_int_equal(stack("stop redis"), 0);
    assert_false(redis_answers());

    const int budget = 1500;
    cf_redis_set_retry_budget(r, budget);
    FILE *logf = tmpfile();
    assert_non_null(logf);
    cf_log_set_stream(logf);
    long long t0 = cf_clock_mono_ms();
    cf_status st = cf_redis_set(r, "down:k", "v", 1, TTL, errbuf, sizeof(errbuf));
    long long took = cf_clock_mono_ms() - t0;
    cf_log_set_stream(NULL);
    printf("redis down: SET gave up after %lld ms: %s (%s)\n", took, cf_strerror(st), errbuf);
    assert_true(st == CF_EIO || st == CF_ETIMEOUT);
    assert_true(errbuf[0] != '\0');
    /* It kept trying for the whole budget, and no longer than the budget plus one connect and
     * one command timeout. */
    assert_in_range(took, budget - 50, budget + 1000 + 2000);
    /* With backoff (25 ms doubling to 1 s, jitter) that is a handful of attempts, each logged,
     * not a busy loop; and the final give-up is logged once. */
    char line[1024];
    int retries = 0, unavailable = 0;
    rewind(logf);
    while (fgets(line, sizeof(line), logf) != NULL) {
        retries += strstr(line, "\"event\":\"redis_retry\"") != NULL;
        unavailable += strstr(line, "\"event\":\"redis_unavailable\"") != NULL;
    }
    fclose(logf);
    printf("redis down: %d retries logged\n", retries);
    assert_in_range(retries, 3, 20);
    assert_int_equal(unavailable, 1);

    /* Nothing was ever sent, so even a non-idempotent script retries, then gives up too. */
    t0 = cf_clock_mono_ms();
    st = cf_redis_script_run(r, count, 1, ckeys, 2, cargs, NULL, NULL, errbuf, sizeof(errbuf));
    took = cf_clock_mono_ms() - t0;
    assert_true(st == CF_EIO || st == CF_ETIMEOUT);
    assert_in_range(took, budget - 50, budget + 3000);

    /* A zero budget means one attempt. */
    cf_redis_set_retry_budget(r, 0);
    t0 = cf_clock_mono_ms();
    assert_int_equal(cf_redis_ping(r, errbuf, sizeof(errbuf)), CF_EIO);
    assert_true(cf_clock_mono_ms() - t0 < 500);

    assert_int_equal(stack("start redis"), 0);
    cf_redis_set_retry_budget(r, 10000);
    ping_ok();
    assert_int_equal(cf_redis_set(r, "down:k", "v", 1, TTL, errbuf, sizeof(errbuf)), CF_OK);
    assert_in_range(raw_ttl("down:k"), 1, TTL);
    cf_redis_script_free(count);
}

/* A redis-server of this test's own on a free loopback port that requires AUTH: the default
 * user's password "s3cret-pw", and an ACL user alice / "alice-pw". */
static pid_t start_auth_redis(int auth_port, const char *log)
{
    char port_arg[16];
    snprintf(port_arg, sizeof(port_arg), "%d", auth_port);
    char *argv[] = {"/usr/bin/redis-server", "--port", port_arg, "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--requirepass", "s3cret-pw",
                    "--user", "alice", "on", ">alice-pw", "~*", "&*", "+@all", NULL};
    pid_t pid = cf_test_spawn(argv[0], argv, NULL, log);
    for (int i = 0; i < 100; i++) {
        redisContext *c = redisConnect("127.0.0.1", auth_port);
        bool up = c != NULL && c->err == 0;
        redisFree(c);
        if (up)
            return pid;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fail_msg("the AUTH redis-server did not start (log %s)", log);
    return -1;
}

/* Without AUTH the server refuses commands; wrong credentials are CF_ECONFIG at once; right ones
 * (the default user's password, or an ACL user's) work, and again after the server restarts. */
static void test_auth(void **state)
{
    (void)state;
    int auth_port = cf_test_free_port();
    char log[128], errbuf[256] = "";
    struct cf_redis *plain = NULL, *bad = NULL, *r1 = NULL, *r2 = NULL;
    snprintf(log, sizeof(log), "/tmp/test-redis-auth-%d.log", (int)getpid());
    pid_t pid = start_auth_redis(auth_port, log);

    assert_int_equal(cf_redis_new("127.0.0.1", auth_port, 1000, 2000, &plain, errbuf,
                                  sizeof(errbuf)),
                     CF_OK);
    cf_redis_set_retry_budget(plain, 0);
    assert_int_not_equal(cf_redis_ping(plain, errbuf, sizeof(errbuf)), CF_OK);
    assert_non_null(strstr(errbuf, "NOAUTH"));
    cf_redis_free(plain);

    assert_int_equal(cf_redis_new_auth("127.0.0.1", auth_port, NULL, "wr0ng-Pa55", 1000, 2000, &bad,
                                       errbuf, sizeof(errbuf)),
                     CF_ECONFIG);
    assert_null(bad);
    assert_null(strstr(errbuf, "wr0ng-Pa55")); /* Redis's reason, never the password */
    assert_int_equal(cf_redis_new_auth("127.0.0.1", auth_port, "alice", "s3cret-pw", 1000, 2000,
                                       &bad, errbuf, sizeof(errbuf)),
                     CF_ECONFIG);

    assert_int_equal(cf_redis_new_auth("127.0.0.1", auth_port, "", "s3cret-pw", 1000, 2000, &r1,
                                       errbuf, sizeof(errbuf)),
                     CF_OK);
    assert_int_equal(cf_redis_new_auth("127.0.0.1", auth_port, "alice", "alice-pw", 1000, 2000,
                                       &r2, errbuf, sizeof(errbuf)),
                     CF_OK);
    cf_redis_set_retry_budget(r1, 10000);
    assert_int_equal(cf_redis_set(r1, "auth:k", "v1", 2, TTL, errbuf, sizeof(errbuf)), CF_OK);
    char *value = NULL;
    assert_int_equal(cf_redis_get(r2, "auth:k", &value, NULL, errbuf, sizeof(errbuf)), CF_OK);
    assert_string_equal(value, "v1");
    free(value);

    /* A restart: the next call reconnects, and the new connection authenticates too. */
    assert_int_equal(kill(pid, SIGKILL), 0);
    (void)cf_test_wait_child(pid, 10000);
    pid = start_auth_redis(auth_port, log);
    assert_int_equal(cf_redis_ping(r1, errbuf, sizeof(errbuf)), CF_OK);
    assert_int_equal(cf_redis_set(r1, "auth:k", "v2", 2, TTL, errbuf, sizeof(errbuf)), CF_OK);

    cf_redis_free(r1);
    cf_redis_free(r2);
    cf_test_kill_child(pid);
    (void)unlink(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_connect_refused, test_setup),
        cmocka_unit_test_setup(test_set_get_with_ttl, test_setup),
        cmocka_unit_test_setup(test_set_without_ttl_refused, test_setup),
        cmocka_unit_test_setup(test_key_rules, test_setup),
        cmocka_unit_test_setup(test_set_nx_claim, test_setup),
        cmocka_unit_test_setup(test_get_del_missing, test_setup),
        cmocka_unit_test_setup(test_value_limits, test_setup),
        cmocka_unit_test_setup(test_script_run_and_noscript, test_setup),
        cmocka_unit_test_setup(test_script_errors, test_setup),
        cmocka_unit_test_setup(test_pipeline_1000, test_setup),
        cmocka_unit_test_setup(test_pipeline_noscript, test_setup),
        cmocka_unit_test_setup(test_config, test_setup),
        cmocka_unit_test(test_auth),
        cmocka_unit_test_setup_teardown(test_restart_during_writes, test_setup, restart_teardown),
        cmocka_unit_test_setup_teardown(test_down_fails_within_budget, test_setup,
                                        restart_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
