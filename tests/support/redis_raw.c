/* redis_raw.c — one raw Redis command for tests (see redis_raw.h). */
#include "redis_raw.h"

#include <stdarg.h>
#include <sys/time.h>

redisReply *cf_test_redis_raw(const char *host, int port, const char *fmt, ...)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (c == NULL || c->err) {
        redisFree(c);
        return NULL;
    }
    (void)redisSetTimeout(c, tv);
    va_list ap;
    va_start(ap, fmt);
    redisReply *reply = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return reply;
}
