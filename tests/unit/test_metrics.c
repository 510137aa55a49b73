/* test_metrics.c — the Prometheus registry (common/metrics.h): the exact text a scraper reads
 * for counters with and without a label, gauges, histograms (cumulative buckets, +Inf, _sum,
 * _count), escaped help, the standard loop metrics; label values that could carry personal data
 * refused; updates from two threads while a third renders add up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

/* Renders m and compares with want, showing both on a difference. */
static void assert_render(struct cf_metrics *m, const char *want)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(cf_metrics_render(m, &text, &len), CF_OK);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    if (strcmp(text, want) != 0)
        fail_msg("rendered:\n%s\nwanted:\n%s", text, want);
    free(text);
}

static void test_empty_registry_renders_nothing(void **state)
{
    (void)state;
    struct cf_metrics *m = NULL;
    assert_int_equal(cf_metrics_new("validation", &m), CF_OK);
    assert_render(m, "");
    cf_metrics_free(m);
    cf_metrics_free(NULL);
}

static void test_counters_and_gauges(void **state)
{
    (void)state;
    struct cf_metrics *m = NULL;
    struct cf_metrics_counter *validated = NULL, *rejected = NULL, *plain = NULL;
    struct cf_metrics_gauge *pending = NULL;
    char err[256] = "";
    assert_int_equal(cf_metrics_new("validation", &m), CF_OK);
    assert_int_equal(cf_metrics_counter_new(m, "caseflow_outcomes_total", "Outcomes by kind.",
                                            "outcome", "CaseValidated", &validated, err,
                                            sizeof(err)),
                     CF_OK);
    assert_int_equal(cf_metrics_counter_new(m, "caseflow_expiries_total", "Cases expired.", NULL,
                                            NULL, &plain, err, sizeof(err)),
                     CF_OK);
    /* A second series of the first family is rendered with it, not after the second family. */
    assert_int_equal(cf_metrics_counter_new(m, "caseflow_outcomes_total", "Outcomes by kind.",
                                            "outcome", "CaseRejected", &rejected, err, sizeof(err)),
                     CF_OK);
    assert_int_equal(cf_metrics_gauge_new(m, "caseflow_pending_cases", "Cases waiting.", NULL, NULL,
                                          &pending, err, sizeof(err)),
                     CF_OK);
    cf_metrics_add(validated, 3);
    cf_metrics_add(validated, 2);
    cf_metrics_add(rejected, 1);
    cf_metrics_set(pending, 7);
    cf_metrics_add(NULL, 1); /* NULL handles do nothing */
    cf_metrics_set(NULL, 1);
    cf_metrics_observe(NULL, 1);
    assert_int_equal(cf_metrics_counter_value(validated), 5);
    assert_render(m, "# HELP caseflow_outcomes_total Outcomes by kind.\n"
                     "# TYPE caseflow_outcomes_total counter\n"
                     "caseflow_outcomes_total{service=\"validation\",outcome=\"CaseValidated\"} 5\n"
                     "caseflow_outcomes_total{service=\"validation\",outcome=\"CaseRejected\"} 1\n"
                     "# HELP caseflow_expiries_total Cases expired.\n"
                     "# TYPE caseflow_expiries_total counter\n"
                     "caseflow_expiries_total{service=\"validation\"} 0\n"
                     "# HELP caseflow_pending_cases Cases waiting.\n"
                     "# TYPE caseflow_pending_cases gauge\n"
                     "caseflow_pending_cases{service=\"validation\"} 7\n");
    cf_metrics_counter_set(plain, 42);
    cf_metrics_set(pending, -2.5);
    assert_render(m, "# HELP caseflow_outcomes_total Outcomes by kind.\n"
                     "# TYPE caseflow_outcomes_total counter\n"
                     "caseflow_outcomes_total{service=\"validation\",outcome=\"CaseValidated\"} 5\n"
                     "caseflow_outcomes_total{service=\"validation\",outcome=\"CaseRejected\"} 1\n"
                     "# HELP caseflow_expiries_total Cases expired.\n"
                     "# TYPE caseflow_expiries_total counter\n"
                     "caseflow_expiries_total{service=\"validation\"} 42\n"
                     "# HELP caseflow_pending_cases Cases waiting.\n"
                     "# TYPE caseflow_pending_cases gauge\n"
                     "caseflow_pending_cases{service=\"validation\"} -2.5\n");
    cf_metrics_free(m);
}

static void test_gauge_number_spellings(void **state)
{
    (void)state;
    struct cf_metrics *m = NULL;
    struct cf_metrics_gauge *g[6];
    const char *names[] = {"g_tenth", "g_big", "g_nan", "g_inf", "g_neg_inf", "g_third"};
    assert_int_equal(cf_metrics_new("svc", &m), CF_OK);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(cf_metrics_gauge_new(m, names[i], "h", NULL, NULL, &g[i], NULL, 0), CF_OK);
    cf_metrics_set(g[0], 0.1);
    cf_metrics_set(g[1], 1e21);
    cf_metrics_set(g[2], NAN);
    cf_metrics_set(g[3], INFINITY);
    cf_metrics_set(g[4], -INFINITY);
    cf_metrics_set(g[5], 1.0 / 3.0);
    assert_render(m, "# HELP g_tenth h\n# TYPE g_tenth gauge\ng_tenth{service=\"svc\"} 0.1\n"
                     "# HELP g_big h\n# TYPE g_big gauge\ng_big{service=\"svc\"} 1e+21\n"
                     "# HELP g_nan h\n# TYPE g_nan gauge\ng_nan{service=\"svc\"} NaN\n"
                     "# HELP g_inf h\n# TYPE g_inf gauge\ng_inf{service=\"svc\"} +Inf\n"
                     "# HELP g_neg_inf h\n# TYPE g_neg_inf gauge\ng_neg_inf{service=\"svc\"} -Inf\n"
                     "# HELP g_third h\n# TYPE g_third gauge\n"
                     "g_third{service=\"svc\"} 0.33333333333333331\n");
    cf_metrics_free(m);
}

static void test_histogram_buckets(void **state)
{
    (void)state;
    struct cf_metrics *m = NULL;
    struct cf_metrics_histogram *h = NULL;
    const double bounds[] = {0.125, 0.5, 1};
    assert_int_equal(cf_metrics_new("scheduler", &m), CF_OK);
    assert_int_equal(cf_metrics_histogram_new(m, "caseflow_slot_search_seconds",
                                              "Time to find a slot.", "kind", "first", bounds, 3,
                                              &h, NULL, 0),
                     CF_OK);
    cf_metrics_observe(h, 0.0625);
    cf_metrics_observe(h, 0.125); /* a bound belongs to its own bucket (le: less or equal) */
    cf_metrics_observe(h, 0.25);
    cf_metrics_observe(h, 2);
    cf_metrics_observe(h, NAN); /* ignored */
    assert_render(m, "# HELP caseflow_slot_search_seconds Time to find a slot.\n"
                     "# TYPE caseflow_slot_search_seconds histogram\n"
                     "caseflow_slot_search_seconds_bucket{service=\"scheduler\",kind=\"first\","
                     "le=\"0.125\"} 2\n"
                     "caseflow_slot_search_seconds_bucket{service=\"scheduler\",kind=\"first\","
                     "le=\"0.5\"} 3\n"
                     "caseflow_slot_search_seconds_bucket{service=\"scheduler\",kind=\"first\","
                     "le=\"1\"} 3\n"
                     "caseflow_slot_search_seconds_bucket{service=\"scheduler\",kind=\"first\","
                     "le=\"+Inf\"} 4\n"
                     "caseflow_slot_search_seconds_sum{service=\"scheduler\",kind=\"first\"} "
                     "2.4375\n"
                     "caseflow_slot_search_seconds_count{service=\"scheduler\",kind=\"first\"} "
                     "4\n");
    cf_metrics_free(m);
}

static void test_histogram_default_buckets(void **state)
{
    (void)state;
    struct cf_metrics *m = NULL;
    struct cf_metrics_histogram *h = NULL;
    assert_int_equal(cf_metrics_new("notifier", &m), CF_OK);
    assert_int_equal(cf_metrics_histogram_new(m, "caseflow_send_seconds", "Send latency.", NULL,
                                              NULL, NULL, 0, &h, NULL, 0),
                     CF_OK);
    cf_metrics_observe(h, 0.003);
    cf_metrics_observe(h, 30);
    /* clang-format off */
    assert_render(m,
        "# HELP caseflow_send_seconds Send latency.\n"
        "# TYPE caseflow_send_seconds histogram\n"
        "caseflow_send_seconds_bucket{service=\"notifier\",le=\"0.001\"} 0\n"
        "caseflow_send_seconds_bucket{service=\"notifier\",le=\"0.0025\"} 0\n"
        "caseflow_send_seconds_bucket{service=\"notifier\",le=\"0.005\"} 1\n"
        "caseflow_send_seconds_bucket{service=\"notifier\",le=\"0.01\"} 1\n"
        "caseflow_send_seconds_bucket{service=\"notifier\",le=\"0.025\"} 1\n"
        "caseflow_send_seconds_bucket{service=\"notifier\",le=\"0.05\"} 1\n"
        "caseflow_send_seconds_bucket{service=\"notifier\",le=\"0.1\"} 1\n"
        "caseflow_send_seconds_bucket{service=\"notifier\",le=\"0.25\"} 1\n"
        "caseflow_send_seconds_bucket{service=\"notifier\",le=\"0.5\"} 1\n"
        "caseflow_send_seconds_bucket{service=\"notifier\",le=\"1\"} 1\n"
        "caseflow_send_seconds_bucket{service=\"notifier\",le=\"2.5\"} 1\n"
        "caseflow_send_seconds_bucket{service=\"notifier\",le=\"5\"} 1\n"
        "caseflow_send_seconds_bucket{service=\"notifier\",le=\"10\"} 1\n"
        "caseflow_send_seconds_bucket{service=\"notifier\",le=\"+Inf\"} 2\n"
        "caseflow_send_seconds_sum{service=\"notifier\"} 30.003\n"
        "caseflow_send_seconds_count{service=\"notifier\"} 2\n");
    /* clang-format on */
    cf_metrics_free(m);
}

static void test_help_is_escaped(void **state)
{
    (void)state;
    struct cf_metrics *m = NULL;
    assert_int_equal(cf_metrics_new("intake", &m), CF_OK);
    assert_int_equal(
        cf_metrics_gauge_new(m, "x", "a \\ back\"slash\nand a line", NULL, NULL, NULL, NULL, 0),
        CF_EINVAL); /* out is required */
    struct cf_metrics_gauge *g = NULL;
    assert_int_equal(
        cf_metrics_gauge_new(m, "x", "a \\ back\"slash\nand a line", NULL, NULL, &g, NULL, 0),
        CF_OK);
    /* In HELP only the backslash and the newline are escaped (not the quote). */
    assert_render(m, "# HELP x a \\\\ back\"slash\\nand a line\n"
                     "# TYPE x gauge\n"
                     "x{service=\"intake\"} 0\n");
    cf_metrics_free(m);
}

/* Each refused registration leaves the registry as it was and errbuf without the value. */
static void assert_refused(struct cf_metrics *m, const char *name, const char *label_name,
                           const char *label_value, cf_status want)
{
    struct cf_metrics_counter *c = (struct cf_metrics_counter *)&c;
    char err[256] = "";
    assert_int_equal(
        cf_metrics_counter_new(m, name, "help", label_name, label_value, &c, err, sizeof(err)),
        want);
    assert_null(c);
    assert_true(err[0] != '\0');
    if (label_value != NULL && label_value[0] != '\0' && strstr(err, label_value) != NULL)
        fail_msg("the error quotes the refused value: %s", err);
}

static void test_refusals(void **state)
{
    (void)state;
    struct cf_metrics *m = NULL;
    struct cf_metrics_counter *c = NULL;
    char long_value[CF_METRICS_MAX_LABEL_VALUE + 2];
    memset(long_value, 'a', sizeof(long_value) - 1);
    long_value[sizeof(long_value) - 1] = '\0';

    /* Service names follow the label value rule. */
    assert_int_equal(cf_metrics_new("jane doe", &m), CF_EINVAL);
    assert_null(m);
    assert_int_equal(cf_metrics_new("", &m), CF_EINVAL);
    assert_int_equal(cf_metrics_new(NULL, &m), CF_EINVAL);
    assert_int_equal(cf_metrics_new("svc", NULL), CF_EINVAL);

    assert_int_equal(cf_metrics_new("svc", &m), CF_OK);
    assert_int_equal(
        cf_metrics_counter_new(m, "c_total", "help", "reason", "CONSENT_MISSING", &c, NULL, 0),
        CF_OK);
    /* Label values that could be personal data, or would need quoting. */
    assert_refused(m, "c_total", "reason", "jane@example.com", CF_EINVAL);
    assert_refused(m, "c_total", "reason", "+905551234567", CF_EINVAL);
    assert_refused(m, "c_total", "reason", "Jane Doe", CF_EINVAL);
    assert_refused(m, "c_total", "reason", "Jos\xc3\xa9", CF_EINVAL);
    assert_refused(m, "c_total", "reason", "a\"b", CF_EINVAL);
    assert_refused(m, "c_total", "reason", "a\\b", CF_EINVAL);
    assert_refused(m, "c_total", "reason", "a\nb", CF_EINVAL);
    assert_refused(m, "c_total", "reason", "", CF_EINVAL);
    assert_refused(m, "c_total", "reason", long_value, CF_EINVAL);
    assert_refused(m, "c_total", "reason", NULL, CF_EINVAL); /* name without value */
    assert_refused(m, "c_total", NULL, "X", CF_EINVAL);      /* value without name */
    /* Names. */
    assert_refused(m, "1c_total", NULL, NULL, CF_EINVAL);
    assert_refused(m, "c-total", NULL, NULL, CF_EINVAL);
    assert_refused(m, "", NULL, NULL, CF_EINVAL);
    assert_refused(m, "d_total", "service", "x", CF_EINVAL);
    assert_refused(m, "d_total", "le", "x", CF_EINVAL);
    assert_refused(m, "d_total", "__name__", "x", CF_EINVAL);
    assert_refused(m, "d_total", "a:b", "x", CF_EINVAL);
    /* The family's shape is fixed by its first registration. */
    assert_refused(m, "c_total", "reason", "CONSENT_MISSING", CF_EINVAL); /* twice */
    assert_refused(m, "c_total", "other", "X", CF_EINVAL);
    assert_refused(m, "c_total", NULL, NULL, CF_EINVAL);
    struct cf_metrics_gauge *g = NULL;
    assert_int_equal(cf_metrics_gauge_new(m, "c_total", "help", "reason", "X", &g, NULL, 0),
                     CF_EINVAL);
    assert_null(g);
    /* Histogram bounds. */
    struct cf_metrics_histogram *h = NULL;
    const double down[] = {1, 0.5}, nan[] = {NAN}, ok[] = {1, 2};
    double many[CF_METRICS_MAX_BUCKETS + 1];
    for (size_t i = 0; i < CF_METRICS_MAX_BUCKETS + 1; i++)
        many[i] = (double)i;
    assert_int_equal(
        cf_metrics_histogram_new(m, "h_seconds", "h", NULL, NULL, down, 2, &h, NULL, 0), CF_EINVAL);
    assert_int_equal(cf_metrics_histogram_new(m, "h_seconds", "h", NULL, NULL, nan, 1, &h, NULL, 0),
                     CF_EINVAL);
    assert_int_equal(cf_metrics_histogram_new(m, "h_seconds", "h", NULL, NULL, many,
                                              CF_METRICS_MAX_BUCKETS + 1, &h, NULL, 0),
                     CF_ETOOBIG);
    assert_int_equal(cf_metrics_histogram_new(m, "h_seconds", "h", "k", "a", ok, 2, &h, NULL, 0),
                     CF_OK);
    assert_int_equal(cf_metrics_histogram_new(m, "h_seconds", "h", "k", "b", NULL, 0, &h, NULL, 0),
                     CF_EINVAL); /* other bounds than the family's */
    assert_null(h);
    /* A histogram's own lines cannot be another family's name, either way round. */
    assert_refused(m, "h_seconds_count", NULL, NULL, CF_EINVAL);
    assert_refused(m, "h_seconds_bucket", NULL, NULL, CF_EINVAL);
    struct cf_metrics_counter *e = NULL;
    assert_int_equal(cf_metrics_counter_new(m, "e_count", "h", NULL, NULL, &e, NULL, 0), CF_OK);
    assert_int_equal(cf_metrics_histogram_new(m, "e", "h", NULL, NULL, ok, 2, &h, NULL, 0),
                     CF_EINVAL);
    assert_null(h);

    assert_render(m, "# HELP c_total help\n# TYPE c_total counter\n"
                     "c_total{service=\"svc\",reason=\"CONSENT_MISSING\"} 0\n"
                     "# HELP h_seconds h\n# TYPE h_seconds histogram\n"
                     "h_seconds_bucket{service=\"svc\",k=\"a\",le=\"1\"} 0\n"
                     "h_seconds_bucket{service=\"svc\",k=\"a\",le=\"2\"} 0\n"
                     "h_seconds_bucket{service=\"svc\",k=\"a\",le=\"+Inf\"} 0\n"
                     "h_seconds_sum{service=\"svc\",k=\"a\"} 0\n"
                     "h_seconds_count{service=\"svc\",k=\"a\"} 0\n"
                     "# HELP e_count h\n# TYPE e_count counter\n"
                     "e_count{service=\"svc\"} 0\n");
    assert_true(cf_metrics_label_value_ok("CaseInfoRequested"));
    assert_true(cf_metrics_label_value_ok("a-b_c.d:e"));
    assert_false(cf_metrics_label_value_ok(NULL));
    cf_metrics_free(m);
}

static void test_series_limit(void **state)
{
    (void)state;
    struct cf_metrics *m = NULL;
    struct cf_metrics_counter *c = NULL;
    char value[16];
    assert_int_equal(cf_metrics_new("svc", &m), CF_OK);
    for (int i = 0; i < CF_METRICS_MAX_SERIES; i++) {
        (void)snprintf(value, sizeof(value), "v%d", i);
        assert_int_equal(cf_metrics_counter_new(m, "c_total", "h", "k", value, &c, NULL, 0), CF_OK);
    }
    assert_int_equal(cf_metrics_counter_new(m, "c_total", "h", "k", "one_more", &c, NULL, 0),
                     CF_ETOOBIG);
    cf_metrics_free(m);
}

/* ---- Collectors and the loop's metrics ----------------------------------------------------- */

struct probe {
    struct cf_metrics_gauge *gauge;
    int calls;
};

static void collect_probe(void *ctx)
{
    struct probe *p = ctx;
    p->calls++;
    cf_metrics_set(p->gauge, p->calls);
}

static int freed;
static void free_probe(void *ctx)
{
    freed++;
    free(ctx);
}

static void test_collectors_run_first(void **state)
{
    (void)state;
    struct cf_metrics *m = NULL;
    struct probe *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    assert_int_equal(cf_metrics_new("svc", &m), CF_OK);
    assert_int_equal(cf_metrics_gauge_new(m, "scrapes", "Scrapes.", NULL, NULL, &p->gauge, NULL, 0),
                     CF_OK);
    assert_int_equal(cf_metrics_on_collect(m, NULL, p, NULL, NULL, 0), CF_EINVAL);
    assert_int_equal(cf_metrics_on_collect(m, collect_probe, p, free_probe, NULL, 0), CF_OK);
    assert_render(m, "# HELP scrapes Scrapes.\n# TYPE scrapes gauge\nscrapes{service=\"svc\"} 1\n");
    assert_render(m, "# HELP scrapes Scrapes.\n# TYPE scrapes gauge\nscrapes{service=\"svc\"} 2\n");
    freed = 0;
    cf_metrics_free(m); /* frees p */
    assert_int_equal(freed, 1);
}

/* One empty bucket line of the loop's latency histogram in test_loop_metrics. */
#define PROCESSING_BUCKET(le)                                                                      \
    "caseflow_processing_seconds_bucket{service=\"assignment\",le=\"" le "\"} 0\n"

static void test_loop_metrics(void **state)
{
    (void)state;
    struct cf_metrics *m = NULL;
    char err[256] = "";
    assert_int_equal(cf_metrics_new("assignment", &m), CF_OK);
    /* A NULL loop reports zeros: what a scrape sees before the loop exists. */
    assert_int_equal(cf_metrics_watch_loop(m, NULL, err, sizeof(err)), CF_OK);
    assert_render(m, "# HELP caseflow_records_in_total Input records committed, dead-lettered "
                     "ones included.\n"
                     "# TYPE caseflow_records_in_total counter\n"
                     "caseflow_records_in_total{service=\"assignment\"} 0\n"
                     "# HELP caseflow_records_out_total Output records committed.\n"
                     "# TYPE caseflow_records_out_total counter\n"
                     "caseflow_records_out_total{service=\"assignment\"} 0\n"
                     "# HELP caseflow_dead_letters_total Records sent to the dead-letter topic.\n"
                     "# TYPE caseflow_dead_letters_total counter\n"
                     "caseflow_dead_letters_total{service=\"assignment\"} 0\n"
                     "# HELP caseflow_transactions_total Kafka transactions committed.\n"
                     "# TYPE caseflow_transactions_total counter\n"
                     "caseflow_transactions_total{service=\"assignment\"} 0\n"
                     "# HELP caseflow_transaction_aborts_total Kafka transactions aborted for a "
                     "retry.\n"
                     "# TYPE caseflow_transaction_aborts_total counter\n"
                     "caseflow_transaction_aborts_total{service=\"assignment\"} 0\n"
                     "# HELP caseflow_errors_total Errors the loop logged and went on from: "
                     "retriable handler failures, refused outputs, failed transactional calls, "
                     "Kafka client errors.\n"
                     "# TYPE caseflow_errors_total counter\n"
                     "caseflow_errors_total{service=\"assignment\"} 0\n"
                     "# HELP caseflow_partitions_assigned Input partitions assigned to this "
                     "replica now.\n"
                     "# TYPE caseflow_partitions_assigned gauge\n"
                     "caseflow_partitions_assigned{service=\"assignment\"} 0\n"
                     "# HELP caseflow_ready 1 once Kafka transactions are initialised and the "
                     "consumer subscribed, else 0.\n"
                     "# TYPE caseflow_ready gauge\n"
                     "caseflow_ready{service=\"assignment\"} 0\n"
                     /* The latency histogram: every bucket from 1 ms to 10 s, then +Inf. */
                     "# HELP caseflow_processing_seconds Per input record committed: seconds "
                     "from the poll that handed it to the loop to its transaction's commit.\n"
                     "# TYPE caseflow_processing_seconds histogram\n"
                     PROCESSING_BUCKET("0.001") PROCESSING_BUCKET("0.0025")
                     PROCESSING_BUCKET("0.005") PROCESSING_BUCKET("0.01")
                     PROCESSING_BUCKET("0.025") PROCESSING_BUCKET("0.05") PROCESSING_BUCKET("0.1")
                     PROCESSING_BUCKET("0.25") PROCESSING_BUCKET("0.5") PROCESSING_BUCKET("1")
                     PROCESSING_BUCKET("2.5") PROCESSING_BUCKET("5") PROCESSING_BUCKET("10")
                     PROCESSING_BUCKET("+Inf")
                     "caseflow_processing_seconds_sum{service=\"assignment\"} 0\n"
                     "caseflow_processing_seconds_count{service=\"assignment\"} 0\n");
    /* The names are taken: a second call is refused. */
    assert_int_equal(cf_metrics_watch_loop(m, NULL, err, sizeof(err)), CF_EINVAL);
    cf_metrics_free(m);
}

/* ---- Threads ------------------------------------------------------------------------------- */

#define PER_THREAD 200000

struct worker {
    struct cf_metrics_counter *counter;
    struct cf_metrics_histogram *histogram;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        cf_metrics_add(w->counter, 1);
        cf_metrics_observe(w->histogram, (i % 2) ? 0.5 : 0.25);
    }
    return NULL;
}

static void test_two_threads_add_up(void **state)
{
    (void)state;
    struct cf_metrics *m = NULL;
    struct worker w = {NULL, NULL};
    const double bounds[] = {0.25};
    pthread_t t[2];
    assert_int_equal(cf_metrics_new("svc", &m), CF_OK);
    assert_int_equal(cf_metrics_counter_new(m, "n_total", "N.", NULL, NULL, &w.counter, NULL, 0),
                     CF_OK);
    assert_int_equal(cf_metrics_histogram_new(m, "d_seconds", "D.", NULL, NULL, bounds, 1,
                                              &w.histogram, NULL, 0),
                     CF_OK);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, work, &w), 0);
    /* Scrapes while the threads update: each must be well-formed, whatever it catches. */
    for (int i = 0; i < 50; i++) {
        char *text = NULL;
        assert_int_equal(cf_metrics_render(m, &text, NULL), CF_OK);
        assert_non_null(strstr(text, "d_seconds_count{service=\"svc\"} "));
        free(text);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    /* Half of the observations are 0.25 (le 0.25), half 0.5: sums of binary fractions, exact. */
    assert_render(m, "# HELP n_total N.\n# TYPE n_total counter\n"
                     "n_total{service=\"svc\"} 400000\n"
                     "# HELP d_seconds D.\n# TYPE d_seconds histogram\n"
                     "d_seconds_bucket{service=\"svc\",le=\"0.25\"} 200000\n"
                     "d_seconds_bucket{service=\"svc\",le=\"+Inf\"} 400000\n"
                     "d_seconds_sum{service=\"svc\"} 150000\n"
                     "d_seconds_count{service=\"svc\"} 400000\n");
    cf_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_registry_renders_nothing),
        cmocka_unit_test(test_counters_and_gauges),
        cmocka_unit_test(test_gauge_number_spellings),
        cmocka_unit_test(test_histogram_buckets),
        cmocka_unit_test(test_histogram_default_buckets),
        cmocka_unit_test(test_help_is_escaped),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_series_limit),
        cmocka_unit_test(test_collectors_run_first),
        cmocka_unit_test(test_loop_metrics),
        cmocka_unit_test(test_two_threads_add_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
