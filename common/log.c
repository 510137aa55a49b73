/* log.c — JSON lines on stderr (see log.h).
 *
 * Each line is built in a fixed stack buffer and written with a single fwrite, so lines from
 * different threads do not interleave: stdio locks the stream for the call, and a line of at
 * most CF_LOG_LINE_MAX (= PIPE_BUF on Linux) bytes reaches a pipe in one atomic write(). A line
 * that would be longer loses its last fields (or the end of one string) and gets
 * "truncated":true; it is still one valid JSON object. */
#include "log.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The service name is copied, so the caller's string need not outlive cf_log_init. */
#define SERVICE_MAX 64

/* The logger's settings: written by cf_log_init / cf_log_set_stream before threads start, only
 * read afterwards (log.h explains why these are process-wide). */
static char log_service[SERVICE_MAX + 1] = "caseflow";
static cf_log_level log_min_level = CF_LOG_INFO;
static FILE *log_stream; /* NULL: stderr, which is not a constant and cannot initialise it */

static const char truncated_tail[] = ",\"truncated\":true";

struct line {
    char buf[CF_LOG_LINE_MAX];
    size_t len;
    bool truncated;
};

/* Everything but the closing tail must fit below this, so the tail always can be added. */
#define LINE_LIMIT (CF_LOG_LINE_MAX - (sizeof(truncated_tail) - 1) - 2 /* "}\n" */)

void cf_log_init(const char *service, cf_log_level min_level)
{
    (void)snprintf(log_service, sizeof(log_service), "%s",
                   service != NULL && service[0] != '\0' ? service : "caseflow");
    log_min_level = min_level;
}

cf_status cf_log_level_parse(const char *text, cf_log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};

    if (text == NULL || out == NULL)
        return CF_EINVAL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(text, names[i]) == 0) {
            *out = (cf_log_level)i;
            return CF_OK;
        }
    }
    return CF_EINVAL;
}

bool cf_log_enabled(cf_log_level level)
{
    return level >= log_min_level;
}

bool cf_log_id_ok(const char *s)
{
    size_t len = 0;

    if (s == NULL)
        return false;
    for (; s[len] != '\0'; len++) {
        char c = s[len];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '/' || c == '-';
        if (!ok || len >= 128)
            return false;
    }
    return len > 0;
}

void cf_log_set_stream(void *stream)
{
    log_stream = stream;
}

static bool put_raw(struct line *l, const char *s, size_t n)
{
    if (n > LINE_LIMIT - l->len)
        return false;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    return true;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF), or 0. Stops at a NUL, which is never a continuation byte. */
static size_t utf8_sequence(const unsigned char *p)
{
    unsigned char lo = 0x80, hi = 0xbf; /* the range of the second byte */
    size_t n;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        n = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        n = 4;
    else
        return 0;
    if (p[0] == 0xe0)
        lo = 0xa0;
    else if (p[0] == 0xed)
        hi = 0x9f;
    else if (p[0] == 0xf0)
        lo = 0x90;
    else if (p[0] == 0xf4)
        hi = 0x8f;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

/* Writes s as a JSON string, reading at most max_src bytes of it and never splitting a UTF-8
 * character; bytes that are not UTF-8 become U+FFFD, so the line is always valid JSON. If the
 * line is full the string is cut (still closed) and the line marked truncated. Returns false,
 * writing nothing, if not even "" fits. */
static bool put_string(struct line *l, const char *s, size_t max_src)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t used = 0;

    if (LINE_LIMIT - l->len < 2)
        return false;
    l->buf[l->len++] = '"';
    while (p[used] != '\0' && used < max_src) {
        char unit[8];
        size_t unit_len, src_len = 1;
        unsigned char c = p[used];

        if (c == '"' || c == '\\') {
            unit[0] = '\\';
            unit[1] = (char)c;
            unit_len = 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            unit[0] = '\\';
            unit[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            unit_len = 2;
        } else if (c < 0x20 || c == 0x7f) {
            /* DEL is legal JSON but a terminal control character; escape it with the others. */
            (void)snprintf(unit, sizeof(unit), "\\u%04x", (unsigned)c);
            unit_len = 6;
        } else if (c < 0x80) {
            unit[0] = (char)c;
            unit_len = 1;
        } else if ((src_len = utf8_sequence(p + used)) == 0) {
            memcpy(unit, "\\ufffd", 6);
            unit_len = 6;
            src_len = 1;
        } else {
            if (src_len > max_src - used)
                break; /* the cut falls inside this character: leave it out whole */
            memcpy(unit, p + used, src_len);
            unit_len = src_len;
        }
        /* Keep one byte for the closing quote. */
        if (unit_len + 1 > LINE_LIMIT - l->len) {
            l->truncated = true;
            break;
        }
        memcpy(l->buf + l->len, unit, unit_len);
        l->len += unit_len;
        used += src_len;
    }
    l->buf[l->len++] = '"'; /* every step above kept a byte for it */
    return true;
}

/* Writes ,"key": (no comma after the opening brace). */
static bool put_key(struct line *l, const char *key)
{
    if (l->buf[l->len - 1] != '{' && !put_raw(l, ",", 1))
        return false;
    return put_string(l, key, SIZE_MAX) && put_raw(l, ":", 1);
}

/* Writes one "key":value member, or nothing if it does not fit (then the line is truncated). */
static bool put_member(struct line *l, const char *key, const struct cf_log_field *f,
                       const char *text)
{
    size_t start = l->len;
    bool ok = put_key(l, key);

    if (ok && f == NULL) {
        ok = put_string(l, text, SIZE_MAX);
    } else if (ok && f->type == CF_LOG_FIELD_INT) {
        char digits[32];
        int n = snprintf(digits, sizeof(digits), "%lld", f->n);
        ok = n > 0 && put_raw(l, digits, (size_t)n);
    } else if (ok && f->s == NULL) {
        ok = put_raw(l, "null", 4);
    } else if (ok && f->type == CF_LOG_FIELD_ID) {
        ok = put_string(l, cf_log_id_ok(f->s) ? f->s : "[redacted]", SIZE_MAX);
    } else if (ok) {
        ok = put_string(l, f->s, CF_LOG_ERR_MAX);
    }
    if (!ok) {
        l->len = start;
        l->truncated = true;
    }
    return ok;
}

static void put_timestamp(struct line *l)
{
    struct timespec now = {0, 0};
    struct tm tm;
    char ts[64];

    /* A clock that fails still gives a well-formed line, stamped at the epoch. */
    if (clock_gettime(CLOCK_REALTIME, &now) != 0)
        now.tv_sec = 0, now.tv_nsec = 0;
    if (gmtime_r(&now.tv_sec, &tm) == NULL)
        memset(&tm, 0, sizeof(tm));
    (void)snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   (int)(now.tv_nsec / 1000000));
    (void)put_member(l, "ts", NULL, ts);
}

void cf_log_write(cf_log_level level, const char *event, const char *file, int line,
                  const struct cf_log_field *fields, size_t nfields)
{
    static const char *const level_names[] = {"debug", "info", "warn", "error"};
    struct line l;
    char src[160];
    FILE *stream = log_stream != NULL ? log_stream : stderr;

    const char *base = file != NULL ? strrchr(file, '/') : NULL;
    base = base != NULL ? base + 1 : file != NULL ? file : "?";
    (void)snprintf(src, sizeof(src), "%s:%d", base, line);

    l.buf[0] = '{';
    l.len = 1;
    l.truncated = false;
    put_timestamp(&l);
    bool ok = put_member(&l, "level", NULL,
                         (unsigned)level < sizeof(level_names) / sizeof(level_names[0])
                             ? level_names[level]
                             : "unknown") &&
              put_member(&l, "service", NULL, log_service) &&
              put_member(&l, "event", NULL, event != NULL ? event : "") &&
              put_member(&l, "src", NULL, src);
    for (size_t i = 0; ok && !l.truncated && fields != NULL && i < nfields; i++)
        ok = put_member(&l, fields[i].key != NULL ? fields[i].key : "", &fields[i], NULL);

    /* LINE_LIMIT kept room for exactly this tail. */
    if (l.truncated) {
        memcpy(l.buf + l.len, truncated_tail, sizeof(truncated_tail) - 1);
        l.len += sizeof(truncated_tail) - 1;
    }
    l.buf[l.len++] = '}';
    l.buf[l.len++] = '\n';
    /* A logger has nowhere to report its own write errors; the process carries on. */
    (void)fwrite(l.buf, 1, l.len, stream);
    (void)fflush(stream);
}
