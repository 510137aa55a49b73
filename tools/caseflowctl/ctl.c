/* ctl.c — helpers the caseflowctl commands share (see ctl.h). */
#include "ctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ctl_error(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One line, whatever a library put in its message. */
    for (char *p = line; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    (void)fprintf(stderr, "caseflowctl: %s\n", line);
}

cf_status ctl_serde_open(const struct ctl *ctl, struct cf_registry **registry,
                         struct cf_serde **serde, char *errbuf, size_t errlen)
{
    struct cf_registry *r = NULL;
    struct cf_serde *s = NULL;
    cf_status st;

    *registry = NULL;
    *serde = NULL;
    st = cf_registry_new(cf_config_string(ctl->config, "CASEFLOW_REGISTRY_URL"),
                         (long)cf_config_int(ctl->config, "CASEFLOW_REGISTRY_TIMEOUT_MS"), &r,
                         errbuf, errlen);
    if (st != CF_OK)
        goto out;
    st = cf_serde_new(r, cf_config_string(ctl->config, "CASEFLOW_SCHEMA_DIR"), &s, errbuf,
                      errlen);
    if (st != CF_OK)
        goto out;
    *registry = r;
    *serde = s;
    r = NULL;
    s = NULL;
out:
    ctl_serde_close(r, s);
    return st;
}

void ctl_serde_close(struct cf_registry *registry, struct cf_serde *serde)
{
    cf_serde_free(serde);
    cf_registry_free(registry);
}

int ctl_parse_int(const char *text, long long min, long long max, long long *out)
{
    char *end = NULL;
    long long v;
    if (text == NULL || *text == '\0')
        return -1;
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int ctl_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

json_t *ctl_bytes_json(const void *p, size_t len)
{
    const unsigned char *b = p;
    json_t *s;
    char *buf;
    size_t k = 0;
    if (p == NULL)
        return json_null();
    if ((s = json_stringn(p, len)) != NULL)
        return s;
    if (len > SIZE_MAX / 2 || (buf = malloc(len * 2 + 1)) == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (b[i] < 0x80) {
            buf[k++] = (char)b[i];
        } else {
            buf[k++] = (char)(0xC0 | (b[i] >> 6));
            buf[k++] = (char)(0x80 | (b[i] & 0x3F));
        }
    }
    s = json_stringn(buf, k);
    free(buf);
    return s;
}

const struct cf_header *ctl_header(const struct cf_kafka_record *r, const char *name)
{
    for (size_t i = r->header_count; i > 0; i--) {
        const struct cf_header *h = &r->headers[i - 1];
        if (h->name != NULL && strcmp(h->name, name) == 0)
            return h;
    }
    return NULL;
}

json_t *ctl_header_json(const struct cf_kafka_record *r, const char *name)
{
    const struct cf_header *h = ctl_header(r, name);
    return h != NULL ? ctl_bytes_json(h->value, h->len) : json_null();
}

int ctl_print_json_line(const json_t *line)
{
    char *text = json_dumps(line, JSON_COMPACT);
    int rc = 0;
    if (text == NULL)
        return -1;
    errno = 0;
    if (fputs(text, stdout) == EOF || fputc('\n', stdout) == EOF || fflush(stdout) == EOF)
        rc = errno == EPIPE ? 1 : -1;
    free(text);
    return rc;
}
