/* metrics.c — the Prometheus metrics registry (see metrics.h). */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"

/* Doubles live in atomic 64-bit words (gauges, histogram sums): a plain _Atomic double need
 * not be lock-free, and an add needs a compare-and-swap loop on the bits anyway. */
_Static_assert(sizeof(double) == sizeof(uint64_t), "double must be 64 bits");

/* First size of the rendering buffer; it doubles up to CF_METRICS_MAX_TEXT. */
#define RENDER_FIRST_CAP 4096

enum kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

struct cf_metrics_counter {
    _Atomic uint64_t value;
};

struct cf_metrics_gauge {
    _Atomic uint64_t bits;
};

struct cf_metrics_histogram {
    const double *bounds; /* the family's */
    size_t nbounds;
    _Atomic uint64_t sum_bits;
    /* Per bucket, not cumulative (one increment per observation); the last one is +Inf.
     * The render adds them up, so _count always equals the +Inf bucket. */
    _Atomic uint64_t counts[CF_METRICS_MAX_BUCKETS + 1];
};

struct series {
    char label_value[CF_METRICS_MAX_LABEL_VALUE + 1]; /* "" without a label */
    void *handle;                                     /* a counter, gauge or histogram */
};

struct family {
    char name[CF_METRICS_MAX_NAME + 1];
    char help[CF_METRICS_MAX_HELP + 1];
    char label_name[CF_METRICS_MAX_NAME + 1]; /* "" without a label */
    enum kind kind;
    double bounds[CF_METRICS_MAX_BUCKETS];
    size_t nbounds;
    size_t nseries;
    struct series series[CF_METRICS_MAX_SERIES];
};

struct collector {
    cf_metrics_collect_fn fn;
    void *ctx;
    void (*free_ctx)(void *);
};

struct cf_metrics {
    char service[CF_METRICS_MAX_LABEL_VALUE + 1];
    /* Guards the families and collectors (registration and rendering), never the values. */
    pthread_mutex_t lock;
    struct family *families[CF_METRICS_MAX_FAMILIES];
    size_t nfamilies;
    struct collector collectors[CF_METRICS_MAX_COLLECTORS];
    size_t ncollectors;
};

/* ---- Names and values ---------------------------------------------------------------------- */

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

bool cf_metrics_label_value_ok(const char *value)
{
    if (value == NULL || value[0] == '\0')
        return false;
    size_t n = 0;
    for (const char *p = value; *p != '\0'; p++, n++) {
        char c = *p;
        if (n >= CF_METRICS_MAX_LABEL_VALUE ||
            !(is_alpha(c) || is_digit(c) || c == '_' || c == '.' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names, [a-zA-Z_][a-zA-Z0-9_]* for label names. */
static bool name_ok(const char *name, bool colons)
{
    if (name == NULL || name[0] == '\0' || strlen(name) > CF_METRICS_MAX_NAME)
        return false;
    for (const char *p = name; *p != '\0'; p++) {
        char c = *p;
        bool ok = is_alpha(c) || c == '_' || (colons && c == ':') || (p != name && is_digit(c));
        if (!ok)
            return false;
    }
    return true;
}

static uint64_t double_bits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof(b));
    return b;
}

static double bits_double(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof(v));
    return v;
}

/* The shortest of %.15g and %.17g that reads back as v, so 0.1 renders as "0.1" and not
 * "0.10000000000000001"; Prometheus's own spellings for NaN and infinities. Programs never call
 * setlocale, so the decimal point is '.'. */
static void format_double(double v, char *out, size_t outlen)
{
    if (isnan(v)) {
        (void)snprintf(out, outlen, "NaN");
    } else if (isinf(v)) {
        (void)snprintf(out, outlen, "%s", v > 0 ? "+Inf" : "-Inf");
    } else {
        (void)snprintf(out, outlen, "%.15g", v);
        if (strtod(out, NULL) != v)
            (void)snprintf(out, outlen, "%.17g", v);
    }
}

/* ---- Lifecycle ----------------------------------------------------------------------------- */

cf_status cf_metrics_new(const char *service, struct cf_metrics **out)
{
    if (out == NULL)
        return CF_EINVAL;
    *out = NULL;
    if (!cf_metrics_label_value_ok(service))
        return CF_EINVAL;
    struct cf_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return CF_ENOMEM;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return CF_ENOMEM;
    }
    (void)snprintf(m->service, sizeof(m->service), "%s", service);
    *out = m;
    return CF_OK;
}

void cf_metrics_free(struct cf_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->ncollectors; i++)
        if (m->collectors[i].free_ctx != NULL)
            m->collectors[i].free_ctx(m->collectors[i].ctx);
    for (size_t i = 0; i < m->nfamilies; i++) {
        struct family *f = m->families[i];
        for (size_t j = 0; j < f->nseries; j++)
            free(f->series[j].handle);
        free(f);
    }
    (void)pthread_mutex_destroy(&m->lock);
    free(m);
}

/* ---- Registration -------------------------------------------------------------------------- */

/* Checks everything that needs no lock. */
static cf_status check_registration(const struct cf_metrics *m, const char *name, const char *help,
                                    const char *label_name, const char *label_value,
                                    const double *bounds, size_t nbounds, void *const *out,
                                    char *errbuf, size_t errlen)
{
    if (m == NULL || out == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "metrics: registry or out is NULL");
    if (!name_ok(name, true))
        return cf_fail(errbuf, errlen, CF_EINVAL,
                       "metrics: name must be 1 to %d bytes of [a-zA-Z0-9_:], not starting "
                       "with a digit",
                       CF_METRICS_MAX_NAME);
    if (help == NULL || strlen(help) > CF_METRICS_MAX_HELP)
        return cf_fail(errbuf, errlen, CF_EINVAL, "metrics: %s: help must be 0 to %d bytes", name,
                       CF_METRICS_MAX_HELP);
    if ((label_name == NULL) != (label_value == NULL))
        return cf_fail(errbuf, errlen, CF_EINVAL, "metrics: %s: label name and value go together",
                       name);
    if (label_name != NULL) {
        if (!name_ok(label_name, false) || strncmp(label_name, "__", 2) == 0 ||
            strcmp(label_name, "service") == 0 || strcmp(label_name, "le") == 0)
            return cf_fail(errbuf, errlen, CF_EINVAL,
                           "metrics: %s: label name must be [a-zA-Z_][a-zA-Z0-9_]*, not "
                           "service, le or __*",
                           name);
        /* The value itself is not quoted: refused values are what must not be shown. */
        if (!cf_metrics_label_value_ok(label_value))
            return cf_fail(errbuf, errlen, CF_EINVAL,
                           "metrics: %s: label %s: value must be 1 to %d bytes of "
                           "[A-Za-z0-9_.:-]",
                           name, label_name, CF_METRICS_MAX_LABEL_VALUE);
    }
    if (nbounds > CF_METRICS_MAX_BUCKETS)
        return cf_fail(errbuf, errlen, CF_ETOOBIG, "metrics: %s: more than %d buckets", name,
                       CF_METRICS_MAX_BUCKETS);
    for (size_t i = 0; bounds != NULL && i < nbounds; i++)
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
            return cf_fail(errbuf, errlen, CF_EINVAL,
                           "metrics: %s: bucket bounds must be finite and strictly increasing",
                           name);
    return CF_OK;
}

static struct family *find_family(const struct cf_metrics *m, const char *name)
{
    for (size_t i = 0; i < m->nfamilies; i++)
        if (strcmp(m->families[i]->name, name) == 0)
            return m->families[i];
    return NULL;
}

static bool is_base_plus(const char *full, const char *base, const char *suffix)
{
    size_t n = strlen(base);
    return strncmp(full, base, n) == 0 && strcmp(full + n, suffix) == 0;
}

/* A histogram "x" also writes x_bucket, x_sum and x_count lines: a family of one of those names
 * would make a scrape with two meanings for one series, which Prometheus refuses whole. */
static bool clashes(const struct cf_metrics *m, const char *name, enum kind kind)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; i < m->nfamilies; i++) {
        const struct family *f = m->families[i];
        for (size_t j = 0; j < sizeof(suffixes) / sizeof(suffixes[0]); j++)
            if ((f->kind == KIND_HISTOGRAM && is_base_plus(name, f->name, suffixes[j])) ||
                (kind == KIND_HISTOGRAM && is_base_plus(f->name, name, suffixes[j])))
                return true;
    }
    return false;
}

/* Checks that a new series fits the family registered before under the same name. */
static cf_status check_same_family(const struct family *f, enum kind kind, const char *help,
                                   const char *label_name, const char *label_value,
                                   const double *bounds, size_t nbounds, char *errbuf,
                                   size_t errlen)
{
    if (f->kind != kind)
        return cf_fail(errbuf, errlen, CF_EINVAL, "metrics: %s is already a %s", f->name,
                       kind_names[f->kind]);
    if (strcmp(f->help, help) != 0 || strcmp(f->label_name, label_name ? label_name : "") != 0)
        return cf_fail(errbuf, errlen, CF_EINVAL,
                       "metrics: %s: help and label name must match the first registration",
                       f->name);
    if (kind == KIND_HISTOGRAM &&
        (f->nbounds != nbounds || memcmp(f->bounds, bounds, nbounds * sizeof(*bounds)) != 0))
        return cf_fail(errbuf, errlen, CF_EINVAL,
                       "metrics: %s: bucket bounds must match the first registration", f->name);
    for (size_t i = 0; i < f->nseries; i++)
        if (strcmp(f->series[i].label_value, label_value ? label_value : "") == 0)
            return cf_fail(errbuf, errlen, CF_EINVAL, "metrics: %s: series registered twice",
                           f->name);
    if (f->nseries >= CF_METRICS_MAX_SERIES)
        return cf_fail(errbuf, errlen, CF_ETOOBIG, "metrics: %s: more than %d series", f->name,
                       CF_METRICS_MAX_SERIES);
    return CF_OK;
}

static void *new_handle(enum kind kind, const struct family *f)
{
    if (kind == KIND_COUNTER) {
        struct cf_metrics_counter *c = malloc(sizeof(*c));
        if (c != NULL)
            atomic_init(&c->value, 0);
        return c;
    }
    if (kind == KIND_GAUGE) {
        struct cf_metrics_gauge *g = malloc(sizeof(*g));
        if (g != NULL)
            atomic_init(&g->bits, double_bits(0.0));
        return g;
    }
    struct cf_metrics_histogram *h = malloc(sizeof(*h));
    if (h == NULL)
        return NULL;
    h->bounds = f->bounds;
    h->nbounds = f->nbounds;
    atomic_init(&h->sum_bits, double_bits(0.0));
    for (size_t i = 0; i <= CF_METRICS_MAX_BUCKETS; i++)
        atomic_init(&h->counts[i], 0);
    return h;
}

/* Adds one series (and its family on first use) and returns the new handle in *out. */
static cf_status register_series(struct cf_metrics *m, enum kind kind, const char *name,
                                 const char *help, const char *label_name, const char *label_value,
                                 const double *bounds, size_t nbounds, void **out, char *errbuf,
                                 size_t errlen)
{
    struct family *created = NULL;
    void *handle = NULL;
    cf_status st = check_registration(m, name, help, label_name, label_value, bounds, nbounds, out,
                                      errbuf, errlen);
    if (st != CF_OK)
        return st;
    *out = NULL;

    (void)pthread_mutex_lock(&m->lock);
    struct family *f = find_family(m, name);
    if (f != NULL) {
        st = check_same_family(f, kind, help, label_name, label_value, bounds, nbounds, errbuf,
                               errlen);
        if (st != CF_OK)
            goto out;
    } else {
        if (clashes(m, name, kind)) {
            st = cf_fail(errbuf, errlen, CF_EINVAL,
                         "metrics: %s: clashes with a histogram's _bucket, _sum or _count", name);
            goto out;
        }
        if (m->nfamilies >= CF_METRICS_MAX_FAMILIES) {
            st = cf_fail(errbuf, errlen, CF_ETOOBIG, "metrics: more than %d metrics",
                         CF_METRICS_MAX_FAMILIES);
            goto out;
        }
        f = created = calloc(1, sizeof(*f));
        if (f == NULL) {
            st = cf_fail(errbuf, errlen, CF_ENOMEM, "metrics: out of memory");
            goto out;
        }
        (void)snprintf(f->name, sizeof(f->name), "%s", name);
        (void)snprintf(f->help, sizeof(f->help), "%s", help);
        (void)snprintf(f->label_name, sizeof(f->label_name), "%s", label_name ? label_name : "");
        f->kind = kind;
        if (nbounds > 0)
            memcpy(f->bounds, bounds, nbounds * sizeof(*bounds));
        f->nbounds = nbounds;
    }
    handle = new_handle(kind, f);
    if (handle == NULL) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "metrics: out of memory");
        goto out;
    }
    struct series *s = &f->series[f->nseries++];
    (void)snprintf(s->label_value, sizeof(s->label_value), "%s", label_value ? label_value : "");
    s->handle = handle;
    if (created != NULL)
        m->families[m->nfamilies++] = created;
    created = NULL;
    *out = handle;
out:
    (void)pthread_mutex_unlock(&m->lock);
    free(created);
    return st;
}

cf_status cf_metrics_counter_new(struct cf_metrics *m, const char *name, const char *help,
                                 const char *label_name, const char *label_value,
                                 struct cf_metrics_counter **out, char *errbuf, size_t errlen)
{
    void *handle = NULL;
    cf_status st = register_series(m, KIND_COUNTER, name, help, label_name, label_value, NULL, 0,
                                   out != NULL ? &handle : NULL, errbuf, errlen);
    if (out != NULL)
        *out = handle;
    return st;
}

cf_status cf_metrics_gauge_new(struct cf_metrics *m, const char *name, const char *help,
                               const char *label_name, const char *label_value,
                               struct cf_metrics_gauge **out, char *errbuf, size_t errlen)
{
    void *handle = NULL;
    cf_status st = register_series(m, KIND_GAUGE, name, help, label_name, label_value, NULL, 0,
                                   out != NULL ? &handle : NULL, errbuf, errlen);
    if (out != NULL)
        *out = handle;
    return st;
}

cf_status cf_metrics_histogram_new(struct cf_metrics *m, const char *name, const char *help,
                                   const char *label_name, const char *label_value,
                                   const double *bounds, size_t nbounds,
                                   struct cf_metrics_histogram **out, char *errbuf, size_t errlen)
{
    static const double latency[] = CF_METRICS_LATENCY_BUCKETS;
    void *handle = NULL;
    if (bounds == NULL) {
        bounds = latency;
        nbounds = sizeof(latency) / sizeof(latency[0]);
    }
    cf_status st = register_series(m, KIND_HISTOGRAM, name, help, label_name, label_value, bounds,
                                   nbounds, out != NULL ? &handle : NULL, errbuf, errlen);
    if (out != NULL)
        *out = handle;
    return st;
}

cf_status cf_metrics_on_collect(struct cf_metrics *m, cf_metrics_collect_fn fn, void *ctx,
                                void (*free_ctx)(void *), char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    if (m == NULL || fn == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "metrics: registry or collector is NULL");
    (void)pthread_mutex_lock(&m->lock);
    if (m->ncollectors >= CF_METRICS_MAX_COLLECTORS)
        st = cf_fail(errbuf, errlen, CF_ETOOBIG, "metrics: more than %d collectors",
                     CF_METRICS_MAX_COLLECTORS);
    else
        m->collectors[m->ncollectors++] = (struct collector){fn, ctx, free_ctx};
    (void)pthread_mutex_unlock(&m->lock);
    return st;
}

/* ---- The loop's standard metrics ----------------------------------------------------------- */

/* The loop's counters, in the order they are registered and rendered. */
enum loop_counter {
    LOOP_RECORDS_IN,
    LOOP_RECORDS_OUT,
    LOOP_DEAD_LETTERS,
    LOOP_TRANSACTIONS,
    LOOP_ABORTS,
    LOOP_ERRORS,
    LOOP_COUNTERS
};

static const struct {
    const char *name;
    const char *help;
} loop_counters[LOOP_COUNTERS] = {
    [LOOP_RECORDS_IN] = {"caseflow_records_in_total",
                         "Input records committed, dead-lettered ones included."},
    [LOOP_RECORDS_OUT] = {"caseflow_records_out_total", "Output records committed."},
    [LOOP_DEAD_LETTERS] = {"caseflow_dead_letters_total", "Records sent to the dead-letter topic."},
    [LOOP_TRANSACTIONS] = {"caseflow_transactions_total", "Kafka transactions committed."},
    [LOOP_ABORTS] = {"caseflow_transaction_aborts_total",
                     "Kafka transactions aborted for a retry."},
    [LOOP_ERRORS] = {"caseflow_errors_total",
                     "Errors the loop logged and went on from: retriable handler failures, refused "
                     "outputs, failed transactional calls, Kafka client errors."},
};

struct loop_watch {
    const struct cf_kafka_loop *loop;
    struct cf_metrics_counter *counters[LOOP_COUNTERS];
    struct cf_metrics_gauge *assigned, *ready;
};

static void collect_loop(void *ctx)
{
    struct loop_watch *w = ctx;
    struct cf_kafka_loop_stats stats;
    cf_kafka_loop_stats(w->loop, &stats);
    const uint64_t totals[LOOP_COUNTERS] = {
        [LOOP_RECORDS_IN] = stats.records,
        [LOOP_RECORDS_OUT] = stats.outputs,
        [LOOP_DEAD_LETTERS] = stats.dead_letters,
        [LOOP_TRANSACTIONS] = stats.transactions,
        [LOOP_ABORTS] = stats.aborts,
        [LOOP_ERRORS] = stats.errors,
    };
    for (size_t i = 0; i < LOOP_COUNTERS; i++)
        cf_metrics_counter_set(w->counters[i], totals[i]);
    cf_metrics_set(w->assigned, (double)stats.assigned);
    cf_metrics_set(w->ready, stats.ready ? 1.0 : 0.0);
}

/* The loop's gauges and its latency histogram, after its counters. */
static cf_status register_loop_rest(struct cf_metrics *m, struct loop_watch *w,
                                    struct cf_metrics_histogram **latency, char *errbuf,
                                    size_t errlen)
{
    cf_status st = cf_metrics_gauge_new(m, "caseflow_partitions_assigned",
                                        "Input partitions assigned to this replica now.", NULL,
                                        NULL, &w->assigned, errbuf, errlen);
    if (st == CF_OK)
        st = cf_metrics_gauge_new(m, "caseflow_ready",
                                  "1 once Kafka transactions are initialised and the consumer "
                                  "subscribed, else 0.",
                                  NULL, NULL, &w->ready, errbuf, errlen);
    if (st == CF_OK)
        st = cf_metrics_histogram_new(m, "caseflow_processing_seconds",
                                      "Per input record committed: seconds from the poll that "
                                      "handed it to the loop to its transaction's commit.",
                                      NULL, NULL, NULL, 0, latency, errbuf, errlen);
    return st;
}

cf_status cf_metrics_watch_loop(struct cf_metrics *m, struct cf_kafka_loop *loop, char *errbuf,
                                size_t errlen)
{
    struct loop_watch *w = calloc(1, sizeof(*w));
    struct cf_metrics_histogram *latency = NULL;
    cf_status st = CF_OK;
    if (w == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "metrics: out of memory");
    w->loop = loop;
    for (size_t i = 0; st == CF_OK && i < LOOP_COUNTERS; i++)
        st = cf_metrics_counter_new(m, loop_counters[i].name, loop_counters[i].help, NULL, NULL,
                                    &w->counters[i], errbuf, errlen);
    if (st == CF_OK)
        st = register_loop_rest(m, w, &latency, errbuf, errlen);
    if (st == CF_OK && loop != NULL && cf_kafka_loop_set_latency(loop, latency) != CF_OK)
        st = cf_fail(errbuf, errlen, CF_EINVAL, "metrics: the loop has already run");
    if (st == CF_OK)
        st = cf_metrics_on_collect(m, collect_loop, w, free, errbuf, errlen);
    if (st != CF_OK)
        free(w); /* series already registered stay (zeros); their handles belong to m */
    return st;
}

/* ---- Updates ------------------------------------------------------------------------------- */

void cf_metrics_add(struct cf_metrics_counter *counter, uint64_t n)
{
    if (counter != NULL)
        (void)atomic_fetch_add_explicit(&counter->value, n, memory_order_relaxed);
}

void cf_metrics_counter_set(struct cf_metrics_counter *counter, uint64_t total)
{
    if (counter != NULL)
        atomic_store_explicit(&counter->value, total, memory_order_relaxed);
}

void cf_metrics_set(struct cf_metrics_gauge *gauge, double value)
{
    if (gauge != NULL)
        atomic_store_explicit(&gauge->bits, double_bits(value), memory_order_relaxed);
}

void cf_metrics_observe(struct cf_metrics_histogram *h, double seconds)
{
    if (h == NULL || isnan(seconds))
        return;
    size_t i = 0;
    while (i < h->nbounds && seconds > h->bounds[i])
        i++;
    (void)atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
    uint64_t next;
    do {
        next = double_bits(bits_double(old) + seconds);
    } while (!atomic_compare_exchange_weak_explicit(&h->sum_bits, &old, next, memory_order_relaxed,
                                                    memory_order_relaxed));
}

uint64_t cf_metrics_counter_value(const struct cf_metrics_counter *counter)
{
    return counter != NULL ? atomic_load_explicit(&counter->value, memory_order_relaxed) : 0;
}

double cf_metrics_gauge_value(const struct cf_metrics_gauge *gauge)
{
    return gauge != NULL ? bits_double(atomic_load_explicit(&gauge->bits, memory_order_relaxed))
                         : 0.0;
}

/* ---- Rendering ----------------------------------------------------------------------------- */

/* A growable buffer with a cap: the first failure sticks and later appends do nothing. */
struct buf {
    char *data;
    size_t len, cap;
    cf_status st;
};

static void buf_put(struct buf *b, const char *s, size_t n)
{
    if (b->st != CF_OK)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : RENDER_FIRST_CAP;
        while (cap < b->len + n + 1 && cap <= CF_METRICS_MAX_TEXT)
            cap *= 2;
        if (cap > CF_METRICS_MAX_TEXT + 1)
            cap = CF_METRICS_MAX_TEXT + 1;
        if (b->len + n + 1 > cap) {
            b->st = CF_ETOOBIG;
            return;
        }
        char *grown = realloc(b->data, cap);
        if (grown == NULL) {
            b->st = CF_ENOMEM;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

/* Writes s with the exposition format's escapes: backslash and newline always, the double
 * quote too inside a label value. Label values cannot hold any of them (they are refused at
 * registration), but the escaping keeps the output well-formed whatever gets here. */
static void buf_escaped(struct buf *b, const char *s, bool quote)
{
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '\\')
            buf_put(b, "\\\\", 2);
        else if (*p == '\n')
            buf_put(b, "\\n", 2);
        else if (quote && *p == '"')
            buf_put(b, "\\\"", 2);
        else
            buf_put(b, p, 1);
    }
}

/* One sample line: <name><suffix>{service="..",<label>="..",le=".."} <value> */
static void put_sample(struct buf *b, const struct cf_metrics *m, const struct family *f,
                       const struct series *s, const char *suffix, const char *le,
                       const char *value)
{
    buf_str(b, f->name);
    buf_str(b, suffix);
    buf_str(b, "{service=\"");
    buf_escaped(b, m->service, true);
    buf_str(b, "\"");
    if (f->label_name[0] != '\0') {
        buf_str(b, ",");
        buf_str(b, f->label_name);
        buf_str(b, "=\"");
        buf_escaped(b, s->label_value, true);
        buf_str(b, "\"");
    }
    if (le != NULL) {
        buf_str(b, ",le=\"");
        buf_str(b, le);
        buf_str(b, "\"");
    }
    buf_str(b, "} ");
    buf_str(b, value);
    buf_str(b, "\n");
}

static void put_histogram(struct buf *b, const struct cf_metrics *m, const struct family *f,
                          const struct series *s)
{
    const struct cf_metrics_histogram *h = s->handle;
    char le[32], value[32];
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= h->nbounds; i++) {
        cumulative += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        if (i < h->nbounds)
            format_double(h->bounds[i], le, sizeof(le));
        else
            (void)snprintf(le, sizeof(le), "+Inf");
        (void)snprintf(value, sizeof(value), "%llu", (unsigned long long)cumulative);
        put_sample(b, m, f, s, "_bucket", le, value);
    }
    format_double(bits_double(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)), value,
                  sizeof(value));
    put_sample(b, m, f, s, "_sum", NULL, value);
    (void)snprintf(value, sizeof(value), "%llu", (unsigned long long)cumulative);
    put_sample(b, m, f, s, "_count", NULL, value);
}

cf_status cf_metrics_render(struct cf_metrics *m, char **text, size_t *len)
{
    struct buf b = {NULL, 0, 0, CF_OK};
    char value[32];
    if (text == NULL)
        return CF_EINVAL;
    *text = NULL;
    if (len != NULL)
        *len = 0;
    if (m == NULL)
        return CF_EINVAL;

    (void)pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->ncollectors; i++)
        m->collectors[i].fn(m->collectors[i].ctx);
    buf_put(&b, "", 0); /* an empty registry renders as "" */
    for (size_t i = 0; i < m->nfamilies; i++) {
        const struct family *f = m->families[i];
        buf_str(&b, "# HELP ");
        buf_str(&b, f->name);
        buf_str(&b, " ");
        buf_escaped(&b, f->help, false);
        buf_str(&b, "\n# TYPE ");
        buf_str(&b, f->name);
        buf_str(&b, " ");
        buf_str(&b, kind_names[f->kind]);
        buf_str(&b, "\n");
        for (size_t j = 0; j < f->nseries; j++) {
            const struct series *s = &f->series[j];
            if (f->kind == KIND_COUNTER) {
                (void)snprintf(value, sizeof(value), "%llu",
                               (unsigned long long)cf_metrics_counter_value(s->handle));
                put_sample(&b, m, f, s, "", NULL, value);
            } else if (f->kind == KIND_GAUGE) {
                format_double(cf_metrics_gauge_value(s->handle), value, sizeof(value));
                put_sample(&b, m, f, s, "", NULL, value);
            } else {
                put_histogram(&b, m, f, s);
            }
        }
    }
    (void)pthread_mutex_unlock(&m->lock);

    if (b.st != CF_OK) {
        free(b.data);
        return b.st;
    }
    *text = b.data;
    if (len != NULL)
        *len = b.len;
    return CF_OK;
}
