/* http_client.c — one HTTP request for tests (see http_client.h). */
#define _DEFAULT_SOURCE /* open_memstream, strncasecmp */
#include "http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

size_t cf_test_curl_to_file(char *data, size_t size, size_t nmemb, void *file)
{
    return fwrite(data, size, nmemb, file) * size;
}

/* Copies the value of header name into out when line is that header. */
static void header_value(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    if (len <= n + 1 || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return;
    const char *v = line + n + 1;
    while (*v == ' ')
        v++;
    size_t vl = len - (size_t)(v - line);
    while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
        vl--;
    (void)snprintf(out, outlen, "%.*s", (int)vl, v);
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct cf_test_reply *r = ctx;
    size_t len = size * nmemb;
    header_value(data, len, "Content-Type", r->content_type, sizeof(r->content_type));
    header_value(data, len, "Allow", r->allow, sizeof(r->allow));
    header_value(data, len, "Retry-After", r->retry_after, sizeof(r->retry_after));
    header_value(data, len, "Cache-Control", r->cache_control, sizeof(r->cache_control));
    return len;
}

struct cf_test_reply cf_test_http(const char *method, const char *url, const char *const *headers,
                                  const char *body, size_t body_len, long timeout_ms)
{
    struct cf_test_reply r;
    struct curl_slist *list = NULL;
    memset(&r, 0, sizeof(r));
    FILE *sink = open_memstream(&r.body, &r.len);
    CURL *c = curl_easy_init();
    if (sink == NULL || c == NULL) {
        r.status = -(long)CURLE_OUT_OF_MEMORY;
        goto out;
    }
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
        list = curl_slist_append(list, headers[i]);
    /* No "Expect: 100-continue" round trip before a body. */
    list = curl_slist_append(list, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL && strcmp(method, "HEAD") != 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, cf_test_curl_to_file);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    else
        r.status = -(long)rc;
out:
    if (sink != NULL)
        fclose(sink); /* sets r.body and r.len */
    if (r.body == NULL)
        r.body = calloc(1, 1);
    curl_slist_free_all(list);
    curl_easy_cleanup(c);
    return r;
}

void cf_test_reply_free(struct cf_test_reply *r)
{
    if (r == NULL)
        return;
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

double cf_test_metric(const char *body, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = strstr(body, series); p != NULL; p = strstr(p + 1, series))
        if ((p == body || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

int cf_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int port = -1;
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}
