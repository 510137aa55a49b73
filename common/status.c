/* status.c — names of the statuses and the errbuf helper. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>

const char *cf_strerror(cf_status status)
{
    switch (status) {
    case CF_OK: return "ok";
    case CF_EINVAL: return "invalid input";
    case CF_ENOMEM: return "out of memory";
    case CF_ECONFIG: return "configuration error";
    case CF_EDECODE: return "cannot decode";
    case CF_ESCHEMA: return "schema error";
    case CF_ENOTFOUND: return "not found";
    case CF_ETOOBIG: return "too big";
    case CF_EIO: return "I/O error";
    case CF_ETIMEOUT: return "timed out";
    case CF_EKAFKA: return "Kafka error";
    case CF_EFATAL: return "fatal error";
    }
    return "unknown status";
}

cf_status cf_fail(char *errbuf, size_t errlen, cf_status status, const char *fmt, ...)
{
    if (errbuf != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}
