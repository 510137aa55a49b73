/* http.h — the operations endpoint of a caseflow service (DESIGN.md §4): GET /healthz,
 * GET /readyz and GET /metrics over libmicrohttpd, for every service without an HTTP API of its
 * own (intake serves the same routes from its own server, services/intake/api.c).
 *
 *   /healthz  200 {"status":"ok"} while the process runs (the server thread never waits for a
 *             server, so a slow Redis cannot make a live process look dead);
 *   /readyz   200 {"status":"ready"}, or 503 {"status":"not_ready","component":"<first>",
 *             "failing":[...]} naming components only, never values or error texts, in this
 *             order: "kafka" (the loop's transactions are not initialised or it is not
 *             subscribed), "consumer" (no partition assigned), "redis" (no PING answer),
 *             "registry" (the subject of the service's topic is not known to the registry);
 *   /metrics  200 text/plain; version=0.0.4, the cf_metrics_render of the service's registry;
 *   anything else 404, another method than GET or HEAD on these paths 405 with Allow.
 *
 * Threads: the server has one internal polling thread that only reads atomics (the loop's
 * stats, the metrics) and the last readiness results. Redis and the registry are checked by a
 * second thread of the server with its OWN Redis connection and curl handle, because hiredis
 * and registry clients are not shared across threads: a /readyz whose results are older than
 * CF_HTTP_READY_CACHE_MS asks it for a new check and waits for it at most CF_HTTP_READY_WAIT_MS,
 * else answers with the last results. So probes never hammer the servers (one check a second
 * at most, none without probes) and never hold the server thread for long. The readiness
 * checks use timeouts of at most CF_HTTP_READY_TIMEOUT_MS and no retries: they tell how the
 * servers are now.
 *
 * The bind address is loopback by default: /metrics and /readyz are for the node's probes and
 * scraper, not the internet. */
#ifndef CF_HTTP_H
#define CF_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "config.h"
#include "metrics.h"
#include "status.h"

struct cf_kafka_loop;

/* Readiness results are reused this long; a check runs at most this often. */
#define CF_HTTP_READY_CACHE_MS 1000
/* Longest wait of a /readyz for a fresh check before it answers with the last results. */
#define CF_HTTP_READY_WAIT_MS 300
/* Upper bound of the Redis connect and command timeouts and the registry timeout of a check
 * (the configured timeouts apply when lower). */
#define CF_HTTP_READY_TIMEOUT_MS 1000

/* The two config entries of a service's operations endpoint; put them in the service's table:
 *   CF_HTTP_OPS_CONFIG_ENTRIES("CASEFLOW_VALIDATION", "18082")
 * declares CASEFLOW_VALIDATION_HTTP_PORT (default 18082; 0 turns the endpoint off) and
 * CASEFLOW_VALIDATION_HTTP_BIND (default 127.0.0.1). prefix and default_port must be string
 * literals. */
/* clang-format off */
#define CF_HTTP_OPS_CONFIG_ENTRIES(prefix, default_port)                                         \
    {prefix "_HTTP_PORT", CF_CONFIG_INT, default_port, 0, 65535,                                 \
     "TCP port of /healthz, /readyz and /metrics; 0 turns the endpoint off"},                    \
    {prefix "_HTTP_BIND", CF_CONFIG_STRING, "127.0.0.1", 2, 64,                                  \
     "IPv4 or IPv6 address /healthz, /readyz and /metrics listen on (loopback: the node's "     \
     "probes and scraper)"}
/* clang-format on */

/* ---- Bind addresses (shared with intake's own server) ---------------------------------- */

/* A socket address to give libmicrohttpd (MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr.ss),
 * with MHD_USE_IPv6 in the daemon's flags when ipv6 is true. */
struct cf_http_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    bool ipv6;
};

/* Parses address (a numeric IPv4 "127.0.0.1" or IPv6 "::1" address, no host names, no brackets,
 * no scope) and port (1..65535) into *out. key names the setting in the error message (may be
 * NULL: "bind address"). CF_ECONFIG with errbuf naming key, never the value, if address is not
 * an address or port is out of range; CF_EINVAL if address or out is NULL. Pure. */
cf_status cf_http_addr_parse(const char *key, const char *address, long long port,
                             struct cf_http_addr *out, char *errbuf, size_t errlen);

/* ---- The operations endpoint ------------------------------------------------------------- */

/* What /readyz looks at. The struct and the topic string are read during cf_http_ops_start
 * only; the loop is borrowed and must outlive the server. */
struct cf_http_readiness {
    /* The service's loop: ready (transactions initialised, subscribed) for "kafka", at least
     * one partition assigned for "consumer" (so a replica with no partition, one more than the
     * topic has, is not ready). NULL: the loop does not exist yet, never ready. */
    const struct cf_kafka_loop *loop;
    /* PING Redis (from the CF_CONFIG_REDIS_ENTRIES of the start's config, which must then hold
     * them) on the checker thread's own connection. */
    bool redis;
    /* If not NULL, the registry (CASEFLOW_REGISTRY_URL, CASEFLOW_REGISTRY_TIMEOUT_MS of the
     * config) must answer GET /subjects/<topic>-value/versions/latest with 200: one of the
     * topics the service reads, whose schema caseflowctl registers at setup. */
    const char *registry_topic;
};

struct cf_http_ops;

/* Starts the operations endpoint on the address of the config entries bind_key and port_key
 * (declared with CF_HTTP_OPS_CONFIG_ENTRIES) when the port is not 0; when it is 0, *out is NULL
 * and the result CF_OK. config is read during this call only (it must hold the common entries,
 * and the Redis entries if readiness->redis). metrics (may be NULL: /metrics then answers 404)
 * and readiness (may be NULL: /readyz then answers like /healthz) are borrowed: metrics and
 * readiness->loop must outlive the server, the rest is copied. The first readiness check starts at
 * once. CF_ECONFIG for a bad bind address, CF_EIO when the address cannot be bound (port in use),
 * CF_EINVAL for NULL arguments, CF_ENOMEM; errbuf says why. Redis or the registry being down is
 * not an error (/readyz answers 503). On CF_OK *out is the caller's, stopped and freed with
 * cf_http_ops_stop. */
cf_status cf_http_ops_start(const struct cf_config *config, const char *port_key,
                            const char *bind_key, struct cf_metrics *metrics,
                            const struct cf_http_readiness *readiness, struct cf_http_ops **out,
                            char *errbuf, size_t errlen);

/* Stops listening (waiting for the request in progress), stops the readiness checker (waiting
 * for a Redis check in progress, at most its connect and command timeouts; a registry request
 * is cut short) and frees ops.
 * NULL-safe. Call it before freeing the metrics registry and the loop. */
void cf_http_ops_stop(struct cf_http_ops *ops);

#endif
