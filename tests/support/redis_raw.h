/* redis_raw.h — a command to Redis behind the module's back, for tests that check what the
 * module (or a script) really left there: keys, values, TTLs. */
#ifndef CF_TEST_REDIS_RAW_H
#define CF_TEST_REDIS_RAW_H

#include <hiredis/hiredis.h>

/* Runs one command (redisCommand's format) on a fresh connection to host:port, never the
 * module's, with 2 s timeouts. The reply is the caller's (freeReplyObject); NULL if Redis is
 * unreachable. */
redisReply *cf_test_redis_raw(const char *host, int port, const char *fmt, ...);

#endif
