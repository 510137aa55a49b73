/* dlq.c — dead-letter records (see dlq.h). */
#include "dlq.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Headers this module adds: reason, error, topic, partition, offset, service, failed_at and
 * possibly value_dropped. */
#define DLQ_ADDED_HEADERS 8

static bool name_char_ok(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

cf_status cf_dlq_topic(const char *service, char *buf, size_t len)
{
    if (service == NULL || service[0] == '\0')
        return CF_EINVAL;
    for (const char *p = service; *p != '\0'; p++)
        if (!name_char_ok(*p))
            return CF_EINVAL;
    size_t need = strlen(CF_DLQ_TOPIC_PREFIX) + strlen(service);
    if (need > 249 || buf == NULL || need + 1 > len)
        return CF_ETOOBIG;
    (void)snprintf(buf, len, "%s%s", CF_DLQ_TOPIC_PREFIX, service);
    return CF_OK;
}

const char *cf_dlq_reason(cf_status status)
{
    switch (status) {
    case CF_EDECODE:
        return "decode_failed";
    case CF_EINVAL:
        return "invalid_input";
    case CF_ESCHEMA:
        return "schema_error";
    case CF_ENOTFOUND:
        return "not_found";
    case CF_ETOOBIG:
        return "too_big";
    default:
        return "failed";
    }
}

static bool reason_ok(const char *reason)
{
    size_t len = 0;

    if (reason == NULL)
        return false;
    for (; reason[len] != '\0'; len++) {
        char c = reason[len];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return len > 0 && len < CF_DLQ_REASON_MAX;
}

/* Copies at most CF_DLQ_ERROR_MAX bytes of text, never cutting a UTF-8 sequence in two, and
 * turns control characters into spaces so the header stays one printable line. */
static void copy_error(char *dst, const char *text)
{
    size_t len = text != NULL ? strlen(text) : 0;

    if (len > CF_DLQ_ERROR_MAX) {
        len = CF_DLQ_ERROR_MAX;
        /* If the cut falls inside a character (text[len] is a continuation byte, top bits 10),
         * move it back to the start of that character. */
        while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
            len--;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        dst[i] = (c < 0x20 || c == 0x7F) ? ' ' : (char)c;
    }
    dst[len] = '\0';
}

static cf_status format_time(char *dst, size_t len, int64_t ms)
{
    struct tm tm;
    time_t secs = (time_t)(ms / 1000);
    int64_t frac = ms % 1000;

    if (ms < 0 || gmtime_r(&secs, &tm) == NULL)
        return CF_EINVAL;
    int n = snprintf(dst, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
    return n > 0 && (size_t)n < len ? CF_OK : CF_ETOOBIG;
}

static void add_text(struct cf_dlq_record *out, const char *name, const char *value)
{
    out->headers[out->header_count++] = (struct cf_header){name, value, strlen(value)};
}

cf_status cf_dlq_build(const struct cf_kafka_record *in, const char *service, const char *reason,
                       const char *error_text, int64_t failed_at_ms, unsigned flags,
                       struct cf_dlq_record *out, char *errbuf, size_t errlen)
{
    cf_status st;

    if (out == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "dead letter: no output record");
    memset(out, 0, sizeof(*out));
    if (in == NULL || in->topic == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "dead letter: no input record");
    if (in->header_count > 0 && in->headers == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "dead letter: header count without headers");
    if (!reason_ok(reason))
        return cf_fail(errbuf, errlen, CF_EINVAL, "dead letter: reason must be [a-z0-9_]");
    st = cf_dlq_topic(service, out->topic, sizeof(out->topic));
    if (st != CF_OK)
        return cf_fail(errbuf, errlen, st, "dead letter: service name must be [A-Za-z0-9._-]");
    st = format_time(out->failed_at, sizeof(out->failed_at), failed_at_ms);
    if (st != CF_OK)
        return cf_fail(errbuf, errlen, st, "dead letter: failure time out of range");

    size_t kept = 0;
    for (size_t i = 0; i < in->header_count; i++)
        if (in->headers[i].name != NULL && !cf_dlq_header(in->headers[i].name))
            kept++;
    if (kept > SIZE_MAX / sizeof(struct cf_header) - DLQ_ADDED_HEADERS)
        return cf_fail(errbuf, errlen, CF_ETOOBIG, "dead letter: too many headers");
    out->headers = calloc(kept + DLQ_ADDED_HEADERS, sizeof(struct cf_header));
    if (out->headers == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "dead letter: out of memory");
    for (size_t i = 0; i < in->header_count; i++)
        if (in->headers[i].name != NULL && !cf_dlq_header(in->headers[i].name))
            out->headers[out->header_count++] = in->headers[i];

    (void)snprintf(out->reason, sizeof(out->reason), "%s", reason);
    copy_error(out->error, error_text);
    (void)snprintf(out->partition, sizeof(out->partition), "%" PRId32, in->partition);
    (void)snprintf(out->offset, sizeof(out->offset), "%" PRId64, in->offset);

    add_text(out, "dlq.reason", out->reason);
    add_text(out, "dlq.error", out->error);
    add_text(out, "dlq.source.topic", in->topic);
    add_text(out, "dlq.source.partition", out->partition);
    add_text(out, "dlq.source.offset", out->offset);
    /* The service name, copied into the topic name already. */
    add_text(out, "dlq.service", out->topic + strlen(CF_DLQ_TOPIC_PREFIX));
    add_text(out, "dlq.failed_at", out->failed_at);

    out->key = in->key;
    out->key_len = in->key_len;
    if (flags & CF_DLQ_DROP_VALUE) {
        add_text(out, "dlq.value_dropped", "true");
    } else {
        out->value = in->value;
        out->value_len = in->value_len;
    }
    return CF_OK;
}

void cf_dlq_record_clear(struct cf_dlq_record *record)
{
    if (record == NULL)
        return;
    free(record->headers);
    memset(record, 0, sizeof(*record));
}

bool cf_dlq_header(const char *name)
{
    return name != NULL && strncmp(name, "dlq.", 4) == 0;
}
