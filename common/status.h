/* status.h — the one status enum every fallible caseflow function returns. */
#ifndef CF_STATUS_H
#define CF_STATUS_H

#include <stddef.h>

/* Details of a failure go into the caller's errbuf; the status says which kind it was. */
typedef enum cf_status {
    CF_OK = 0,
    CF_EINVAL,     /* an argument or an input is malformed */
    CF_ENOMEM,     /* an allocation failed */
    CF_ECONFIG,    /* a configuration value is missing, unknown or out of bounds */
    CF_EDECODE,    /* bytes could not be decoded (wire format, Avro, JSON) */
    CF_ESCHEMA,    /* a schema could not be parsed, resolved or found */
    CF_ENOTFOUND,  /* the thing asked for does not exist (schema id, key) */
    CF_ETOOBIG,    /* an input is over its documented limit */
    CF_EIO,        /* a server could not be reached or answered badly; may succeed later */
    CF_ETIMEOUT,   /* a server did not answer in time; may succeed later */
    CF_EKAFKA,     /* Kafka reported an error; see errbuf */
    CF_EFATAL,     /* unrecoverable (fenced producer, fatal client error): the process must exit */
} cf_status;

/* A static, human-readable name for a status ("invalid input", ...). Never NULL. */
const char *cf_strerror(cf_status status);

/* Writes printf-style details into errbuf (if errbuf is not NULL and errlen > 0) and returns
 * status, so a failure can be reported in one line: return cf_fail(errbuf, errlen, CF_EINVAL,
 * "field %s", name); */
cf_status cf_fail(char *errbuf, size_t errlen, cf_status status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
