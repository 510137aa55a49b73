/* ctl.c — helpers the caseflowctl commands share (see ctl.h). */
#include "ctl.h"

#include <errno.h>
#include <stdarg.h>
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
