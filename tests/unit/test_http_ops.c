/* test_http_ops.c — the operations endpoint (common/http.h) spoken to with libcurl, with no
 * server of the stack: /healthz, /readyz (503 naming "kafka" and "consumer" for a loop that does
 * not exist, "redis" and "registry" for ports where nothing listens), /metrics (the registry's
 * exact text, Prometheus content type), 404, 405 with Allow, HEAD; the port-0 switch, bad bind
 * addresses, a port already taken; and the bind address parser intake will share.
 * Against the real Redis and registry: tests/integration/test_http_ops.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "http.h"
#include "http_client.h"
#include "metrics.h"
#include "redis.h"

#define PORT_KEY "CASEFLOW_OPSTEST_HTTP_PORT"
#define BIND_KEY "CASEFLOW_OPSTEST_HTTP_BIND"

static const struct cf_config_entry table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_REDIS_ENTRIES,
    CF_HTTP_OPS_CONFIG_ENTRIES("CASEFLOW_OPSTEST", "0"),
};

/* A config of the table from these variables alone (nothing from the shell's environment). */
static struct cf_config *load_config(const char *port, const char *bind, int redis_port,
                                     int registry_port)
{
    char v_port[64], v_bind[96], v_redis[64], v_registry[128];
    (void)snprintf(v_port, sizeof(v_port), PORT_KEY "=%s", port);
    (void)snprintf(v_bind, sizeof(v_bind), BIND_KEY "=%s", bind);
    (void)snprintf(v_redis, sizeof(v_redis), "CASEFLOW_REDIS_PORT=%d", redis_port);
    (void)snprintf(v_registry, sizeof(v_registry),
                   "CASEFLOW_REGISTRY_URL=http://127.0.0.1:%d/apis/ccompat/v7/", registry_port);
    char *envp[] = {v_port, v_bind, v_redis, v_registry, NULL};
    struct cf_config *config = NULL;
    char err[256] = "";
    if (cf_config_load(table, sizeof(table) / sizeof(table[0]), envp, &config, err, sizeof(err)) !=
        CF_OK)
        fail_msg("config: %s", err);
    return config;
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

/* The last answer: each request frees the one before, the group teardown the last. */
static struct cf_test_reply last;

/* One request to 127.0.0.1:port; body NULL sends none. The answer is valid until the next. */
static struct cf_test_reply request(int port, const char *method, const char *path,
                                    const char *body)
{
    char url[128];
    (void)snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    cf_test_reply_free(&last);
    last = cf_test_http(method, url, NULL, body, body != NULL ? strlen(body) : 0, 10000);
    if (last.status <= 0)
        fail_msg("%s %s: no answer (%ld)", method, path, last.status);
    return last;
}

static int free_last(void **state)
{
    (void)state;
    cf_test_reply_free(&last);
    return 0;
}

/* ---- Tests --------------------------------------------------------------------------------- */

static void test_addr_parse(void **state)
{
    (void)state;
    struct cf_http_addr a;
    char err[256] = "";
    assert_int_equal(cf_http_addr_parse("K", "127.0.0.1", 18082, &a, err, sizeof(err)), CF_OK);
    assert_false(a.ipv6);
    assert_int_equal(a.len, sizeof(struct sockaddr_in));
    const struct sockaddr_in *sa4 = (const struct sockaddr_in *)&a.ss;
    assert_int_equal(sa4->sin_family, AF_INET);
    assert_int_equal(ntohs(sa4->sin_port), 18082);
    assert_int_equal(ntohl(sa4->sin_addr.s_addr), INADDR_LOOPBACK);

    assert_int_equal(cf_http_addr_parse("K", "::1", 9, &a, err, sizeof(err)), CF_OK);
    assert_true(a.ipv6);
    assert_int_equal(a.len, sizeof(struct sockaddr_in6));
    const struct sockaddr_in6 *sa6 = (const struct sockaddr_in6 *)&a.ss;
    assert_int_equal(sa6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(sa6->sin6_port), 9);
    assert_memory_equal(&sa6->sin6_addr, &in6addr_loopback, sizeof(in6addr_loopback));
    assert_int_equal(cf_http_addr_parse("K", "0.0.0.0", 1, &a, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_http_addr_parse("K", "::", 65535, &a, err, sizeof(err)), CF_OK);

    /* Names, brackets and scopes are not addresses; the error names the key, not the value. */
    const char *bad[] = {"localhost", "[::1]", "fe80::1%eth0", "127.0.0.1:80", "", "1.2.3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(
            cf_http_addr_parse("CASEFLOW_X_HTTP_BIND", bad[i], 80, &a, err, sizeof(err)),
            CF_ECONFIG);
        assert_non_null(strstr(err, "CASEFLOW_X_HTTP_BIND"));
        if (bad[i][0] != '\0')
            assert_null(strstr(err, bad[i]));
    }
    assert_int_equal(cf_http_addr_parse(NULL, "127.0.0.1", 0, &a, err, sizeof(err)), CF_ECONFIG);
    assert_non_null(strstr(err, "bind address"));
    assert_int_equal(cf_http_addr_parse(NULL, "127.0.0.1", 65536, &a, err, sizeof(err)),
                     CF_ECONFIG);
    assert_int_equal(cf_http_addr_parse(NULL, NULL, 80, &a, err, sizeof(err)), CF_EINVAL);
}

static void test_port_zero_is_off(void **state)
{
    (void)state;
    struct cf_config *config = load_config("0", "127.0.0.1", 1, 1);
    struct cf_http_ops *ops = (struct cf_http_ops *)&ops;
    char err[256] = "";
    assert_int_equal(
        cf_http_ops_start(config, PORT_KEY, BIND_KEY, NULL, NULL, &ops, err, sizeof(err)), CF_OK);
    assert_null(ops);
    cf_http_ops_stop(NULL);
    cf_config_free(config);
}

static void test_bad_bind_and_port_in_use(void **state)
{
    (void)state;
    char port[16], err[256] = "";
    struct cf_http_ops *ops = NULL, *second = NULL;
    (void)snprintf(port, sizeof(port), "%d", cf_test_free_port());

    struct cf_config *config = load_config(port, "localhost", 1, 1);
    assert_int_equal(
        cf_http_ops_start(config, PORT_KEY, BIND_KEY, NULL, NULL, &ops, err, sizeof(err)),
        CF_ECONFIG);
    assert_null(ops);
    assert_non_null(strstr(err, BIND_KEY));
    cf_config_free(config);

    config = load_config(port, "127.0.0.1", 1, 1);
    assert_int_equal(
        cf_http_ops_start(config, PORT_KEY, BIND_KEY, NULL, NULL, &ops, err, sizeof(err)), CF_OK);
    assert_non_null(ops);
    assert_int_equal(
        cf_http_ops_start(config, PORT_KEY, BIND_KEY, NULL, NULL, &second, err, sizeof(err)),
        CF_EIO);
    assert_null(second);
    assert_non_null(strstr(err, BIND_KEY));
    cf_http_ops_stop(ops);
    cf_config_free(config);
}

/* Everything a probe and a scraper see, with a readiness whose loop does not exist and whose
 * Redis and registry ports have nothing listening. */
static void test_routes_not_ready(void **state)
{
    (void)state;
    int port = cf_test_free_port();
    char port_text[16], err[256] = "";
    (void)snprintf(port_text, sizeof(port_text), "%d", port);
    struct cf_config *config =
        load_config(port_text, "127.0.0.1", cf_test_free_port(), cf_test_free_port());
    struct cf_metrics *metrics = NULL;
    struct cf_metrics_counter *outcomes = NULL;
    assert_int_equal(cf_metrics_new("opstest", &metrics), CF_OK);
    assert_int_equal(cf_metrics_counter_new(metrics, "caseflow_outcomes_total", "Outcomes.",
                                            "outcome", "CaseValidated", &outcomes, err,
                                            sizeof(err)),
                     CF_OK);
    assert_int_equal(cf_metrics_watch_loop(metrics, NULL, err, sizeof(err)), CF_OK);
    cf_metrics_add(outcomes, 2);
    const struct cf_http_readiness readiness = {NULL, true, "caseflow.case.opened"};
    struct cf_http_ops *ops = NULL;
    if (cf_http_ops_start(config, PORT_KEY, BIND_KEY, metrics, &readiness, &ops, err,
                          sizeof(err)) != CF_OK)
        fail_msg("start: %s", err);

    struct cf_test_reply r = request(port, "GET", "/healthz", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    assert_string_equal(r.content_type, "application/json");
    assert_string_equal(r.cache_control, "no-store");

    /* The first answer may come before the first check ends, the later ones after it: all
     * name the same components (nothing known counts as not ready). */
    for (int i = 0; i < 3; i++) {
        r = request(port, "GET", i == 2 ? "/readyz?verbose=1" : "/readyz", NULL);
        assert_int_equal(r.status, 503);
        assert_string_equal(r.content_type, "application/json");
        assert_string_equal(r.body, "{\"status\":\"not_ready\",\"component\":\"kafka\","
                                    "\"failing\":[\"kafka\",\"consumer\",\"redis\","
                                    "\"registry\"]}");
    }

    r = request(port, "GET", "/metrics", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    char *want = NULL;
    assert_int_equal(cf_metrics_render(metrics, &want, NULL), CF_OK);
    assert_string_equal(r.body, want);
    free(want);
    assert_non_null(strstr(
        r.body, "caseflow_outcomes_total{service=\"opstest\",outcome=\"CaseValidated\"} 2\n"));
    assert_non_null(strstr(r.body, "caseflow_ready{service=\"opstest\"} 0\n"));

    r = request(port, "HEAD", "/healthz", NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);

    r = request(port, "GET", "/nothing-here", NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "{\"error\":\"not_found\"}");
    r = request(port, "GET", "/", NULL);
    assert_int_equal(r.status, 404);

    const char *paths[] = {"/healthz", "/readyz", "/metrics"};
    for (size_t i = 0; i < 3; i++) {
        r = request(port, "POST", paths[i], "x=1");
        assert_int_equal(r.status, 405);
        assert_string_equal(r.allow, "GET, HEAD");
        assert_string_equal(r.body, "{\"error\":\"method_not_allowed\"}");
    }
    r = request(port, "DELETE", "/metrics", NULL);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "GET, HEAD");

    cf_http_ops_stop(ops);
    cf_metrics_free(metrics);
    cf_config_free(config);
}

/* Without Redis and registry checks, readiness is the loop's alone; without a readiness at all
 * /readyz answers like /healthz; without metrics /metrics does not exist. */
static void test_readiness_variants(void **state)
{
    (void)state;
    int port = cf_test_free_port();
    char port_text[16], err[256] = "";
    (void)snprintf(port_text, sizeof(port_text), "%d", port);
    struct cf_config *config = load_config(port_text, "127.0.0.1", 1, 1);
    struct cf_http_ops *ops = NULL;

    const struct cf_http_readiness loop_only = {NULL, false, NULL};
    assert_int_equal(
        cf_http_ops_start(config, PORT_KEY, BIND_KEY, NULL, &loop_only, &ops, err, sizeof(err)),
        CF_OK);
    struct cf_test_reply r = request(port, "GET", "/readyz", NULL);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "{\"status\":\"not_ready\",\"component\":\"kafka\","
                                "\"failing\":[\"kafka\",\"consumer\"]}");
    r = request(port, "GET", "/metrics", NULL);
    assert_int_equal(r.status, 404);
    cf_http_ops_stop(ops);

    ops = NULL;
    assert_int_equal(
        cf_http_ops_start(config, PORT_KEY, BIND_KEY, NULL, NULL, &ops, err, sizeof(err)), CF_OK);
    r = request(port, "GET", "/readyz", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ready\"}");
    cf_http_ops_stop(ops);
    cf_config_free(config);
}

/* IPv6 loopback, where the machine has it. */
static void test_ipv6_loopback(void **state)
{
    (void)state;
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        if (fd >= 0)
            close(fd);
        skip();
    }
    close(fd);
    int port = ntohs(sa.sin6_port);
    char port_text[16], err[256] = "", url[64];
    (void)snprintf(port_text, sizeof(port_text), "%d", port);
    struct cf_config *config = load_config(port_text, "::1", 1, 1);
    struct cf_http_ops *ops = NULL;
    assert_int_equal(
        cf_http_ops_start(config, PORT_KEY, BIND_KEY, NULL, NULL, &ops, err, sizeof(err)), CF_OK);
    (void)snprintf(url, sizeof(url), "http://[::1]:%d/healthz", port);
    CURL *curl = curl_easy_init();
    long status = 0;
    assert_non_null(curl);
    assert_int_equal(curl_easy_setopt(curl, CURLOPT_URL, url), CURLE_OK);
    assert_int_equal(curl_easy_setopt(curl, CURLOPT_NOBODY, 1L), CURLE_OK);
    assert_int_equal(curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L), CURLE_OK);
    assert_int_equal(curl_easy_perform(curl), CURLE_OK);
    assert_int_equal(curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status), CURLE_OK);
    assert_int_equal(status, 200);
    curl_easy_cleanup(curl);
    cf_http_ops_stop(ops);
    cf_config_free(config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_port_zero_is_off),
        cmocka_unit_test(test_bad_bind_and_port_in_use),
        cmocka_unit_test(test_routes_not_ready),
        cmocka_unit_test(test_readiness_variants),
        cmocka_unit_test(test_ipv6_loopback),
    };
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    int failed = cmocka_run_group_tests(tests, NULL, free_last);
    curl_global_cleanup();
    return failed;
}
