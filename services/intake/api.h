/* api.h — intake's HTTP endpoint (DESIGN.md §1 step 1, §4): POST /v1/inquiries turns a JSON
 * inquiry into one InquirySubmitted on caseflow.inquiry.submitted, GET /v1/inquiries/{id}
 * answers the stage of an inquiry this service accepted, /healthz and /readyz answer probes,
 * /metrics the scraper (the service's registry, as common/http.h serves the other services').
 *
 * The server is libmicrohttpd driven by one thread of ours (external polling, epoll).
 * Everything a request touches (its own idempotent producer, registry, serde and Redis
 * connection) belongs to that thread alone, apart from the transactional loop in main.c:
 * avro-c and hiredis objects are not thread-safe, and one thread needs no lock. A POST never
 * holds that thread while the broker acknowledges it: its connection is suspended, the record
 * enqueued (librdkafka batches the records of many requests), and the answer sent from the
 * delivery report; Redis work is pipelined across the requests of one turn of the loop. The
 * rules and the reasons behind them are in README.md ("HTTP endpoint") and api.c.
 *
 * The pure helpers below (content type, routes, error bodies, idempotency keys) are what the
 * unit tests exercise; intake_http_start/_stop are the wiring that integration tests run. */
#ifndef INTAKE_API_H
#define INTAKE_API_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "journey.h"
#include "metrics.h"
#include "status.h"
#include "uuid.h"

/* Service name of the HTTP path: CloudEvents source "/caseflow/intake-http" and meta.producer. */
#define INTAKE_HTTP_SERVICE "intake-http"
#define INTAKE_HTTP_PRODUCER INTAKE_HTTP_SERVICE "/" CF_VERSION
#define INTAKE_HTTP_SUBMITTED_TYPE "caseflow.event.InquirySubmitted"

/* A seen Idempotency-Key answers with its inquiry id for 24 h (as intake's own folding). */
#define INTAKE_HTTP_IDEM_TTL_SECONDS (24LL * 60 * 60)
/* GET /v1/inquiries/{id} knows an accepted inquiry for 30 days. */
#define INTAKE_HTTP_INQUIRY_TTL_SECONDS (30LL * 24 * 60 * 60)
/* Longest Idempotency-Key accepted, in bytes (visible ASCII only). */
#define INTAKE_HTTP_IDEM_KEY_MAX 255
/* "intake:http:idem:" + 64 hex digits + NUL, and "intake:http:inquiry:" + UUID + NUL. */
#define INTAKE_HTTP_REDIS_KEY_LEN 96
/* Seconds a client is told to wait (Retry-After) when Kafka, the registry or Redis fails. */
#define INTAKE_HTTP_RETRY_AFTER_SECONDS 5

/* Entries of the HTTP endpoint; put them after INTAKE_CONFIG_ENTRIES in main.c's table. */
/* clang-format off */
#define INTAKE_HTTP_CONFIG_ENTRIES                                                               \
    {"CASEFLOW_INTAKE_HTTP_PORT", CF_CONFIG_INT, "18080", 0, 65535,                              \
     "TCP port of POST /v1/inquiries, GET /v1/inquiries/{id}, /healthz, /readyz and /metrics; "  \
     "0 turns the HTTP endpoint off"},                                                           \
    {"CASEFLOW_INTAKE_HTTP_BIND", CF_CONFIG_STRING, "127.0.0.1", 2, 64,                          \
     "IPv4 or IPv6 address the HTTP endpoint listens on (loopback: put a TLS proxy in front)"},  \
    {"CASEFLOW_INTAKE_HTTP_MAX_BODY", CF_CONFIG_INT, "262144", 1024, 1048576,                    \
     "largest POST body accepted, in bytes; larger is 413"},                                     \
    {"CASEFLOW_INTAKE_HTTP_PRODUCE_TIMEOUT_MS", CF_CONFIG_INT, "10000", 100, 120000,             \
     "longest wait for the broker's acknowledgement of one inquiry before answering 503"},       \
    {"CASEFLOW_INTAKE_HTTP_MAX_CONNECTIONS", CF_CONFIG_INT, "1024", 1, 65536,                    \
     "most HTTP connections open at once (each idle keep-alive one holds a slot until its "     \
     "30 s timeout); keep it under the process's open-file limit"}
/* clang-format on */

/* ---- Pure helpers ------------------------------------------------------------------------ */

/* True iff a Content-Type header value is application/json (any case, surrounding blanks
 * allowed) with no parameter or only parameters, of which a charset must be UTF-8 ("utf-8",
 * any case, quoted or not): RFC 8259 JSON is UTF-8. value may be NULL (false). */
bool intake_http_content_type_ok(const char *value);

/* What a request path names. */
enum intake_http_route {
    INTAKE_HTTP_ROUTE_NONE = 0,  /* 404 */
    INTAKE_HTTP_ROUTE_INQUIRIES, /* /v1/inquiries */
    INTAKE_HTTP_ROUTE_INQUIRY,   /* /v1/inquiries/{id}; id is not checked here */
    INTAKE_HTTP_ROUTE_HEALTHZ,   /* /healthz */
    INTAKE_HTTP_ROUTE_READYZ,    /* /readyz */
    INTAKE_HTTP_ROUTE_METRICS,   /* /metrics */
};

/* The route of url (the path, without query string). For INTAKE_HTTP_ROUTE_INQUIRY, id gets the
 * lower-cased id when it is a UUID, else "" (the caller answers 404). url may be NULL. */
enum intake_http_route intake_http_route_of(const char *url, char id[CF_UUID_LEN + 1]);

/* The methods a route allows, for the Allow header of a 405 ("POST", "GET, HEAD"). */
const char *intake_http_allowed(enum intake_http_route route);

/* One entry of an error answer. path and message never hold a request value. */
struct intake_http_error {
    const char *path;    /* JSON path in the request body ("$.contact.phone"), "$" for it all */
    const char *code;    /* stable code ("JSON_INVALID", "SCHEMA", "PHONE_INVALID") */
    const char *message; /* short English text */
};

/* {"errors":[{"path":...,"code":...,"message":...},...]} as a new compact JSON string, the
 * caller's to free(); NULL on allocation failure. NULL paths, codes or messages become "",
 * and texts that are not UTF-8 become "" too (jansson refuses them). */
char *intake_http_errors_json(const struct intake_http_error *errors, size_t n);

/* Splits an avro_convert error of an InquirySubmitted ("$.inquiry.patient.sex: not a symbol of
 * the enum") into the path in the request body ("$.patient.sex") and the message ("not a
 * symbol of the enum"). A path outside "$.inquiry" becomes "$"; text without a path gives "$"
 * and the whole text. Outputs are always NUL-terminated (cut if needed). */
void intake_http_schema_error(const char *errbuf, char *path, size_t pathlen, char *message,
                              size_t msglen);

/* True iff key is a usable Idempotency-Key: 1 to INTAKE_HTTP_IDEM_KEY_MAX visible ASCII
 * characters (0x21-0x7e). NULL is false. */
bool intake_http_idem_key_ok(const char *key);

/* The Redis key that holds an Idempotency-Key's claim: "intake:http:idem:" + lower-case hex
 * SHA-256 of key (the client's key itself never reaches Redis). CF_EINVAL if key is NULL,
 * CF_ENOMEM if hashing fails. */
cf_status intake_http_idem_redis_key(const char *key, char out[INTAKE_HTTP_REDIS_KEY_LEN]);

/* ---- The server -------------------------------------------------------------------------- */

struct intake_http;

/* Starts the endpoint when CASEFLOW_INTAKE_HTTP_PORT is not 0 (otherwise *out is NULL and the
 * result CF_OK): creates the HTTP path's own idempotent producer, registry client, serde and
 * Redis connection, checks once that Redis, the registry and the broker answer (the /readyz
 * state; if one does not, /readyz says 503 and checks again at most every 2 s), then listens
 * on CASEFLOW_INTAKE_HTTP_BIND:PORT (at most CASEFLOW_INTAKE_HTTP_MAX_CONNECTIONS connections)
 * and starts the server thread. config, stages (the scripts GET reads stages with) and metrics
 * (rendered by GET /metrics on the server thread; NULL: /metrics answers 404) are borrowed and
 * must outlive the server; config must
 * hold the common, Kafka and Redis entries and INTAKE_HTTP_CONFIG_ENTRIES. CF_EIO when the
 * address cannot be bound, CF_ECONFIG for a bad bind address, CF_ENOMEM; errbuf says why.
 * Redis or Kafka being down at start is not an error here (the endpoint answers 503).
 * On CF_OK *out is the caller's, stopped and freed with intake_http_stop. */
cf_status intake_http_start(const struct cf_config *config,
                            const struct intake_journey_scripts *stages, struct cf_metrics *metrics,
                            struct intake_http **out, char *errbuf, size_t errlen);

/* Stops the server: POSTs in progress are finished (each within the produce timeout; new
 * POSTs meanwhile are answered 503), then the server thread ends, every connection is closed
 * at once (idle keep-alive ones too), and the clients are freed. NULL-safe. */
void intake_http_stop(struct intake_http *http);

#endif
