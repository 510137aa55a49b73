/* http_client.h — what tests that speak HTTP to a service share: one request with libcurl, the
 * answer's status, body and the headers tests look at, and a free loopback port. */
#ifndef CF_TEST_HTTP_CLIENT_H
#define CF_TEST_HTTP_CLIENT_H

#include <stddef.h>

/* An answer. body is NUL-terminated and malloc'd (free with cf_test_reply_free, or free());
 * status is the HTTP status, or -CURLcode when no answer came. */
struct cf_test_reply {
    long status;
    char *body;
    size_t len;
    char content_type[128];
    char allow[64];
    char retry_after[16];
    char cache_control[64];
};

/* Sends method to url with headers (a NULL-terminated list of "Name: value", may be NULL) and
 * body[0..body_len) (NULL: none; HEAD never sends one), waiting at most timeout_ms. Never
 * fails the test itself: the caller asserts on the reply. */
struct cf_test_reply cf_test_http(const char *method, const char *url, const char *const *headers,
                                  const char *body, size_t body_len, long timeout_ms);

/* A CURLOPT_WRITEFUNCTION that appends to the FILE * given as CURLOPT_WRITEDATA (an
 * open_memstream), for tests that drive several requests at once with curl's multi interface. */
size_t cf_test_curl_to_file(char *data, size_t size, size_t nmemb, void *file);

/* Frees the body; NULL-safe, leaves an empty body. */
void cf_test_reply_free(struct cf_test_reply *r);

/* A loopback TCP port nothing listens on right now (bound, read, closed). */
int cf_test_free_port(void);

/* The value of the sample of series (a metric name with its labels as rendered, e.g.
 * "caseflow_ready{service=\"intake\"}") in a /metrics body, or -1 when there is none. */
double cf_test_metric(const char *body, const char *series);

#endif
