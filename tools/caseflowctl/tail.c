/* tail.c — caseflowctl tail: a topic's records as JSON lines on stdout.
 *
 * One line per record, flushed at once so a pipe reader sees it immediately:
 *   {"topic":..,"partition":..,"offset":..,"key":..,"headers":{..},"value":{..}}
 * or, for a record that cannot be decoded, "error" (the decoder's message) instead of
 * "value", and the tail goes on. Decoded records are
 * what an operator asked to see, so they go to stdout as they are; nothing of them reaches
 * the logs. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ctl.h"
#include "kafka.h"
#include "log.h"

/* Longest wait in one poll, so a signal is seen quickly (STYLE.md: ≤ 500 ms). */
#define POLL_MS 200

struct tail_options {
    const char *topic;
    bool from_beginning;
    const char *case_id; /* NULL: every record */
    long long max;       /* 0: no limit */
    long long idle_ms;   /* 0: wait forever */
};

static const char tail_usage[] =
    "usage: caseflowctl tail TOPIC [--from-beginning] [--case ID] [--max N] [--idle-exit-ms N]";

static int64_t now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "--name VALUE" or "--name=VALUE": returns the value and advances *i, or NULL if argv[*i] is
 * not that option. *missing is set when the option is there without a value. */
static const char *option_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    const char *arg = argv[*i];
    if (strncmp(arg, name, n) != 0)
        return NULL;
    if (arg[n] == '=')
        return arg + n + 1;
    if (arg[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

static int parse_options(int argc, char **argv, struct tail_options *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if (strcmp(argv[i], "--from-beginning") == 0) {
            o->from_beginning = true;
        } else if ((v = option_value(argc, argv, &i, "--case", &missing)) != NULL) {
            if (*v == '\0') {
                ctl_error("tail: --case needs an id");
                return -1;
            }
            o->case_id = v;
        } else if ((v = option_value(argc, argv, &i, "--max", &missing)) != NULL) {
            if (ctl_parse_int(v, 1, INT64_MAX, &o->max) != 0) {
                ctl_error("tail: --max needs a positive integer");
                return -1;
            }
        } else if ((v = option_value(argc, argv, &i, "--idle-exit-ms", &missing)) != NULL) {
            /* Capped at a day so the deadline arithmetic cannot overflow. */
            if (ctl_parse_int(v, 1, 86400000, &o->idle_ms) != 0) {
                ctl_error("tail: --idle-exit-ms needs an integer from 1 to 86400000");
                return -1;
            }
        } else if (missing) {
            ctl_error("tail: %s needs a value", argv[i]);
            return -1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            ctl_error("tail: unknown option %.64s", argv[i]);
            return -1;
        } else if (o->topic == NULL) {
            o->topic = argv[i];
        } else {
            ctl_error("tail: one topic only");
            return -1;
        }
    }
    if (o->topic == NULL) {
        ctl_error("tail: no topic given (%s)", tail_usage);
        return -1;
    }
    return 0;
}

static bool key_is(const struct cf_kafka_record *r, const char *id)
{
    size_t n = strlen(id);
    return r->key != NULL && r->key_len == n && memcmp(r->key, id, n) == 0;
}

static bool case_id_is(const json_t *value, const char *id)
{
    const json_t *case_id = json_object_get(json_object_get(value, "meta"), "case_id");
    return json_is_string(case_id) && strcmp(json_string_value(case_id), id) == 0;
}

/* Builds the line of one record into *out (NULL when --case filters it out). */
static cf_status record_line(struct cf_serde *serde, const struct tail_options *o,
                             const struct cf_kafka_record *r, json_t **out)
{
    char err[CTL_ERR_MAX];
    json_t *line = NULL, *headers = NULL, *value = NULL;
    cf_status st = CF_ENOMEM;
    bool decoded = false;

    *out = NULL;
    err[0] = '\0';
    if (r->value != NULL) {
        cf_status dst = cf_serde_decode_json(serde, r->topic, r->value, r->value_len, &value,
                                             err, sizeof(err));
        if (dst == CF_ENOMEM)
            goto out;
        decoded = dst == CF_OK;
        if (!decoded && err[0] == '\0')
            (void)snprintf(err, sizeof(err), "%s", cf_strerror(dst));
    } else {
        decoded = true; /* a tombstone, or a dead letter whose value was dropped */
        value = json_null();
    }
    if (o->case_id != NULL && !key_is(r, o->case_id) &&
        !(decoded && case_id_is(value, o->case_id))) {
        st = CF_OK;
        goto out;
    }

    if ((line = json_object()) == NULL || (headers = json_object()) == NULL)
        goto out;
    /* A repeated header name keeps its last value, as Kafka's lastHeader() reads it. */
    for (size_t i = 0; i < r->header_count; i++) {
        const struct cf_header *h = &r->headers[i];
        json_t *hv = ctl_bytes_json(h->value, h->len);
        if (hv == NULL || json_object_set_new(headers, h->name != NULL ? h->name : "", hv) != 0)
            goto out;
    }
    if (json_object_set_new(line, "topic", json_string(r->topic)) != 0 ||
        json_object_set_new(line, "partition", json_integer(r->partition)) != 0 ||
        json_object_set_new(line, "offset", json_integer(r->offset)) != 0 ||
        json_object_set_new(line, "key", ctl_bytes_json(r->key, r->key_len)) != 0)
        goto out;
    /* json_object_set_new takes the reference even when it fails. */
    st = json_object_set_new(line, "headers", headers) != 0 ? CF_ENOMEM : CF_OK;
    headers = NULL;
    if (st != CF_OK)
        goto out;
    st = CF_ENOMEM;
    if (decoded) {
        int failed = json_object_set_new(line, "value", value);
        value = NULL;
        if (failed != 0)
            goto out;
    } else if (json_object_set_new(line, "error", ctl_bytes_json(err, strlen(err))) != 0) {
        goto out;
    }
    *out = line;
    line = NULL;
    st = CF_OK;
out:
    json_decref(value);
    json_decref(headers);
    json_decref(line);
    return st;
}

int ctl_tail(const struct ctl *ctl, int argc, char **argv)
{
    struct tail_options o;
    struct cf_registry *registry = NULL;
    struct cf_serde *serde = NULL;
    struct cf_kafka_consumer *consumer = NULL;
    char err[CTL_ERR_MAX];
    long long printed = 0;
    int rc = CTL_EXIT_FAIL;
    cf_status st;

    if (parse_options(argc, argv, &o) != 0)
        return CTL_EXIT_USAGE;
    st = ctl_serde_open(ctl, &registry, &serde, err, sizeof(err));
    if (st != CF_OK) {
        ctl_error("tail: %s (%s)", err, cf_strerror(st));
        goto out;
    }
    const char *const topics[] = {o.topic};
    const struct cf_kafka_consumer_options copts = {
        .auto_commit = false,
        .read_uncommitted = false,
        .offset_reset = o.from_beginning ? "earliest" : "latest",
    };
    /* No group: every partition, nothing committed, no trace left on the cluster. */
    st = cf_kafka_consumer_new(ctl->config, NULL, topics, 1, &copts, &consumer, err,
                               sizeof(err));
    if (st != CF_OK) {
        ctl_error("tail: %s: %s (%s)", o.topic, err, cf_strerror(st));
        goto out;
    }
    CF_LOG(CF_LOG_DEBUG, "tail_started", CF_LOG_ID("topic", o.topic));

    int64_t last_arrival = now_ms();
    rc = CTL_EXIT_OK;
    while (!*ctl->stop) {
        struct cf_kafka_record *r = NULL;
        int timeout = POLL_MS;
        if (o.idle_ms > 0) {
            int64_t left = last_arrival + o.idle_ms - now_ms();
            if (left <= 0)
                break;
            if (left < timeout)
                timeout = (int)left;
        }
        st = cf_kafka_consumer_poll(consumer, timeout, &r, err, sizeof(err));
        if (st == CF_ETIMEOUT)
            continue;
        if (st == CF_EKAFKA)
            continue; /* logged by the consumer, which keeps going */
        if (st != CF_OK) {
            ctl_error("tail: %s: %s (%s)", o.topic, err, cf_strerror(st));
            rc = CTL_EXIT_FAIL;
            break;
        }
        last_arrival = now_ms();

        json_t *line = NULL;
        st = record_line(serde, &o, r, &line);
        cf_kafka_record_release(r);
        if (st != CF_OK) {
            ctl_error("tail: out of memory");
            rc = CTL_EXIT_FAIL;
            break;
        }
        if (line == NULL)
            continue;
        int w = ctl_print_json_line(line);
        json_decref(line);
        if (w > 0)
            break; /* the reader of our output is gone: nothing left to do */
        if (w < 0) {
            ctl_error("tail: cannot write to stdout");
            rc = CTL_EXIT_FAIL;
            break;
        }
        if (o.max > 0 && ++printed >= o.max)
            break;
    }
out:
    cf_kafka_consumer_free(consumer);
    ctl_serde_close(registry, serde);
    return rc;
}
