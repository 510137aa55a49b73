/* metrics.h — a small Prometheus metrics registry (DESIGN.md §4 "/metrics"), rendered in the
 * text exposition format 0.0.4.
 *
 * A service registers its metrics at start (counters, gauges and histograms, each optionally
 * split by one label), keeps the handles, and updates them from its loop thread; the ops HTTP
 * thread (http.h) renders the whole registry on every scrape. Updates are C11 atomics and take
 * no lock, so the loop never waits for a scrape; registration and rendering take the registry's
 * mutex.
 *
 * Personal data must never reach a metric (DESIGN.md §5), so the API takes no free text from a
 * record: names, label names and help texts are meant to be literals, and a label value (the
 * service name included) must be 1 to CF_METRICS_MAX_LABEL_VALUE bytes of [A-Za-z0-9_.:-] — a
 * code-like id such as an outcome name ("CaseValidated") or a reason code. An email ('@'), a
 * phone number ('+') or a name (space, non-ASCII) is refused with CF_EINVAL, never rendered.
 *
 * Every series carries the constant label service="<service>" first. Families are rendered in
 * registration order, series in the order their label values were registered. */
#ifndef CF_METRICS_H
#define CF_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Limits: registrations past them are CF_ETOOBIG; a rendering over CF_METRICS_MAX_TEXT bytes is
 * CF_ETOOBIG (it cannot happen within the other limits, but the buffer has a cap all the
 * same). */
#define CF_METRICS_MAX_FAMILIES 128
#define CF_METRICS_MAX_SERIES 64 /* label values of one family */
#define CF_METRICS_MAX_BUCKETS 32
#define CF_METRICS_MAX_NAME 128
#define CF_METRICS_MAX_LABEL_VALUE 64
#define CF_METRICS_MAX_HELP 256
#define CF_METRICS_MAX_COLLECTORS 8
#define CF_METRICS_MAX_TEXT (4u * 1024u * 1024u)

/* The default latency buckets in seconds, used when a histogram is registered with bounds NULL:
 * 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 (then +Inf). */
#define CF_METRICS_LATENCY_BUCKETS                                                                 \
    {                                                                                              \
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10                     \
    }

struct cf_metrics;
struct cf_metrics_counter;
struct cf_metrics_gauge;
struct cf_metrics_histogram;
struct cf_kafka_loop;

/* Creates an empty registry for service (1 to CF_METRICS_MAX_LABEL_VALUE bytes of
 * [A-Za-z0-9_.:-]; it becomes the service="..." label of every series). CF_EINVAL for a bad
 * name or a NULL out, CF_ENOMEM. On CF_OK *out is the caller's, freed with cf_metrics_free;
 * on failure *out is NULL. */
cf_status cf_metrics_new(const char *service, struct cf_metrics **out);

/* Frees the registry, every handle it gave out and the contexts of collectors registered with
 * a free function. No thread may use it or its handles any more (stop the ops server first).
 * NULL-safe. */
void cf_metrics_free(struct cf_metrics *m);

/* ---- Registration (at start, before the ops server serves; takes the registry's mutex) --- */

/* Registers a counter series and returns its handle in *out, which belongs to m (valid until
 * cf_metrics_free). name: a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*, at most
 * CF_METRICS_MAX_NAME bytes; counters end in "_total" by convention); help: one line of
 * documentation (at most CF_METRICS_MAX_HELP bytes; escaped when rendered).
 * label_name and label_value are both NULL for an unlabelled series, or both set: label_name
 * [a-zA-Z_][a-zA-Z0-9_]* (not "service", not "le", not starting with "__"), label_value an id
 * as described at the top of this file. Registering the same name again with another
 * label_value adds a series to the same family; the kind, help and label name must then be
 * the same. CF_EINVAL (errbuf names the problem, never the refused value itself), CF_ETOOBIG
 * past the limits, CF_ENOMEM. errbuf may be NULL. */
cf_status cf_metrics_counter_new(struct cf_metrics *m, const char *name, const char *help,
                                 const char *label_name, const char *label_value,
                                 struct cf_metrics_counter **out, char *errbuf, size_t errlen);

/* The same for a gauge (a value that goes up and down; starts at 0). */
cf_status cf_metrics_gauge_new(struct cf_metrics *m, const char *name, const char *help,
                               const char *label_name, const char *label_value,
                               struct cf_metrics_gauge **out, char *errbuf, size_t errlen);

/* The same for a histogram of durations in seconds. bounds[0..nbounds) are the upper bounds of
 * its buckets, finite and strictly increasing (at most CF_METRICS_MAX_BUCKETS; +Inf is added
 * by the registry); bounds NULL means CF_METRICS_LATENCY_BUCKETS. The bounds are copied. Every
 * series of one family must have the same bounds. */
cf_status cf_metrics_histogram_new(struct cf_metrics *m, const char *name, const char *help,
                                   const char *label_name, const char *label_value,
                                   const double *bounds, size_t nbounds,
                                   struct cf_metrics_histogram **out, char *errbuf, size_t errlen);

/* Called by cf_metrics_render, under the registry's mutex, before anything is rendered: the
 * place to copy counts kept elsewhere (cf_kafka_loop_stats) into this registry's handles with
 * cf_metrics_counter_set / cf_metrics_set. It runs on the rendering thread, so it may only read
 * what is safe to read from there, and must not register metrics. */
typedef void (*cf_metrics_collect_fn)(void *ctx);

/* Adds a collector. ctx is passed to fn; if free_ctx is not NULL the registry calls it on ctx
 * in cf_metrics_free (the registry then owns ctx), else ctx stays the caller's and must outlive
 * the registry. CF_EINVAL without fn, CF_ETOOBIG past CF_METRICS_MAX_COLLECTORS (nothing is
 * taken then: the caller still owns ctx). */
cf_status cf_metrics_on_collect(struct cf_metrics *m, cf_metrics_collect_fn fn, void *ctx,
                                void (*free_ctx)(void *), char *errbuf, size_t errlen);

/* Registers the standard metrics of a service's transactional loop and a collector that fills
 * them from cf_kafka_loop_stats(loop) at each scrape:
 *   caseflow_records_in_total           counter    input records committed (dead letters too)
 *   caseflow_records_out_total          counter    output records committed
 *   caseflow_dead_letters_total         counter    records sent to the dead-letter topic
 *   caseflow_transactions_total         counter    transactions committed
 *   caseflow_transaction_aborts_total   counter    transactions aborted for a retry
 *   caseflow_errors_total               counter    errors the loop logged and went on from
 *                                                  (cf_kafka_loop_stats lists them)
 *   caseflow_partitions_assigned        gauge      partitions assigned now
 *   caseflow_ready                      gauge      1 once transactions are initialised and the
 *                                                  consumer subscribed, else 0
 *   caseflow_processing_seconds         histogram  per input record committed, from its poll
 *                                                  to its transaction's commit
 *                                                  (CF_METRICS_LATENCY_BUCKETS)
 * and hands the histogram to the loop (cf_kafka_loop_set_latency), which observes it itself:
 * call this before cf_kafka_loop_run. loop is borrowed and must outlive the registry (free the
 * loop after the registry, or stop the ops server first); NULL reports zeros. One call per
 * registry (a second is CF_EINVAL, the names being taken); CF_EINVAL too for a loop already
 * run. */
cf_status cf_metrics_watch_loop(struct cf_metrics *m, struct cf_kafka_loop *loop, char *errbuf,
                                size_t errlen);

/* ---- Updates (any thread, lock-free; every handle may be NULL, which does nothing) -------- */

/* Adds n to a counter. */
void cf_metrics_add(struct cf_metrics_counter *counter, uint64_t n);

/* Sets a counter to total, for a collector that mirrors a count kept elsewhere. A counter must
 * never go down: pass a total that only grows. */
void cf_metrics_counter_set(struct cf_metrics_counter *counter, uint64_t total);

/* Sets a gauge. NaN and infinities are rendered as Prometheus spells them. */
void cf_metrics_set(struct cf_metrics_gauge *gauge, double value);

/* Records one duration in seconds. NaN is ignored (it would make the sum NaN for ever). */
void cf_metrics_observe(struct cf_metrics_histogram *histogram, double seconds);

/* ---- Reading ------------------------------------------------------------------------------ */

/* The Content-Type of an answer carrying cf_metrics_render's text. */
#define CF_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Runs the collectors, then writes every metric in the Prometheus text format 0.0.4:
 *   # HELP <name> <help, with \ and newline escaped>
 *   # TYPE <name> counter|gauge|histogram
 *   <name>{service="...",<label>="..."} <value>
 * and, for histograms, cumulative <name>_bucket{...,le="<bound>"} lines ending in le="+Inf",
 * then <name>_sum and <name>_count (equal to the +Inf bucket). On CF_OK *text is a new
 * NUL-terminated string the caller frees with free(), and *len its length (len may be NULL).
 * CF_ENOMEM or CF_ETOOBIG (over CF_METRICS_MAX_TEXT) otherwise, *text NULL. Safe to call while
 * other threads update. */
cf_status cf_metrics_render(struct cf_metrics *m, char **text, size_t *len);

/* Current values, for tests and collectors; 0 for a NULL handle. */
uint64_t cf_metrics_counter_value(const struct cf_metrics_counter *counter);
double cf_metrics_gauge_value(const struct cf_metrics_gauge *gauge);

/* True iff value is a valid label value: 1 to CF_METRICS_MAX_LABEL_VALUE bytes of
 * [A-Za-z0-9_.:-]. NULL is false. Pure. */
bool cf_metrics_label_value_ok(const char *value);

#endif
