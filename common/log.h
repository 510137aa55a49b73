/* log.h — JSON lines on stderr, one object per line.
 *
 * {"ts":"2026-11-24T03:00:00.123Z","level":"info","service":"intake","event":"case_opened",
 *  "src":"intake.c:120","case_id":"...","partition":3}
 *
 * Personal data must never reach a log line, so the API has no way to log free text from a
 * record: the event name must be a string literal, and a field is one of
 *   CF_LOG_ID(key, s)   an identifier (UUID, topic, subject, config key): 1 to 128 bytes of
 *                       [A-Za-z0-9._:/-] (no '@', '+' or space, so no email, phone or full
 *                       name fits); anything else is written as "[redacted]";
 *   CF_LOG_INT(key, n)  a number;
 *   CF_LOG_ERR(key, s)  an error message from our code or a library (errbuf, avro_strerror,
 *                       rd_kafka_err2str): JSON-escaped and cut at 512 bytes. Our errbufs name
 *                       fields, never their values.
 * Keys must be string literals too. Nothing accepts a buffer, a record or a format string. */
#ifndef CF_LOG_H
#define CF_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

typedef enum cf_log_level {
    CF_LOG_DEBUG = 0,
    CF_LOG_INFO,
    CF_LOG_WARN,
    CF_LOG_ERROR,
} cf_log_level;

enum cf_log_field_type { CF_LOG_FIELD_ID, CF_LOG_FIELD_INT, CF_LOG_FIELD_ERR };

struct cf_log_field {
    const char *key;
    enum cf_log_field_type type;
    const char *s;
    long long n;
};

/* Longest line written, newline included (PIPE_BUF on Linux, so one write to a pipe is atomic);
 * a longer line loses its last fields and gets "truncated":true. An ERR value is cut after
 * CF_LOG_ERR_MAX bytes of input, on a UTF-8 character boundary. */
#define CF_LOG_LINE_MAX 4096
#define CF_LOG_ERR_MAX 512

#define CF_LOG_ID(key, value)                                                                    \
    ((struct cf_log_field){"" key "", CF_LOG_FIELD_ID, (value), 0})
#define CF_LOG_INT(key, value)                                                                   \
    ((struct cf_log_field){"" key "", CF_LOG_FIELD_INT, NULL, (long long)(value)})
#define CF_LOG_ERR(key, value)                                                                   \
    ((struct cf_log_field){"" key "", CF_LOG_FIELD_ERR, (value), 0})

/* Logs one line if level is enabled; the fields are not evaluated otherwise.
 *   CF_LOG(CF_LOG_INFO, "case_opened", CF_LOG_ID("case_id", id), CF_LOG_INT("partition", p)); */
#define CF_LOG(level, event, ...)                                                                \
    do {                                                                                         \
        if (cf_log_enabled(level)) {                                                             \
            const struct cf_log_field cf_log_fields_[] = {__VA_ARGS__};                          \
            cf_log_write((level), "" event "", __FILE__, __LINE__, cf_log_fields_,               \
                         sizeof(cf_log_fields_) / sizeof(cf_log_fields_[0]));                    \
        }                                                                                        \
    } while (0)

/* The same with no fields. */
#define CF_LOG0(level, event)                                                                    \
    do {                                                                                         \
        if (cf_log_enabled(level))                                                               \
            cf_log_write((level), "" event "", __FILE__, __LINE__, NULL, 0);                     \
    } while (0)

/* Sets the service name written on every line and the lowest level written. Call once at
 * start, before any thread exists; the logger's two settings are the only process-wide state
 * besides the signal flag, because every module logs and none should carry a logger around. */
void cf_log_init(const char *service, cf_log_level min_level);

/* Parses "debug", "info", "warn", "error". */
cf_status cf_log_level_parse(const char *text, cf_log_level *out);

bool cf_log_enabled(cf_log_level level);

/* True if s is written as is by CF_LOG_ID. */
bool cf_log_id_ok(const char *s);

/* Writes one line. Use CF_LOG, which checks the level first and forces literal names. */
void cf_log_write(cf_log_level level, const char *event, const char *file, int line,
                  const struct cf_log_field *fields, size_t nfields);

/* Redirects output to a stream (tests); NULL restores stderr. */
void cf_log_set_stream(void *stream);

#endif
