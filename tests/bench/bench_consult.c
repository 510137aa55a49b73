/* bench_consult.c — cases per second and latency from CaseValidated to TeleconsultScheduled
 * through assignment → scheduler on the local stack (deploy/stack up; topics created, schemas
 * registered), transactions on (issue 4).
 *
 *   build/tests/bench_consult [N] [--warmup W] [--rate R] [--timeout-s S] [--env NAME=VALUE]...
 *                             [--keep-backlog] [--keep-logs]
 *
 * The roster. Both roster topics are compacted and shared with every test and run on the
 * stack, and both services read all of them at start: so the bench first tombstones every
 * entry that is live on them (other runs' and tests' managers and specialists would otherwise
 * take part of the run), then loads its own, with ids unique to the run ("bench-<tag>-cm-07"),
 * and tombstones those at the end. Names and emails are synthetic and never printed.
 *   - 50 care managers: languages en / es / tr / ru in mixes (20 speak es, 10 tr, 10 ru; five
 *     speak only ru; 45 speak en), countries ES MX TR DE RU US GB IN (a few none), every third
 *     urgent-capable (at least three per language), capacity N + W plus 0–150: any one manager
 *     could take the whole run, so no case waits for room — the bench measures the path, not the
 *     pending queue (nothing closes a case during the run, so loads only grow).
 *   - 200 specialists in six IANA zones: America/New_York 50, America/Los_Angeles 20,
 *     Europe/Madrid 30, Europe/Istanbul 40, Europe/Moscow 20, Asia/Kolkata 40; English plus the
 *     local language (es, tr, ru, hi; some de); half of the 27 condition categories each
 *     (alternating), so every category is seen by 100 specialists spread over every zone;
 *     Monday–Friday 08:00–12:00 and 13:00–18:00 local (every fourth also Saturday 09:00–13:00),
 *     30-minute slots, daily caps of 10, 12 or 14.
 * Why those hours, caps and the 60-day horizon (the scheduler's default is 30): the six zones'
 * working hours cover about 02:30–02:00 UTC, so every patient window below meets the hours of
 * specialists who speak the patient's language (the scheduler matches the primary language
 * subtag, English only when nobody speaks it). The caps give about 200 × 12 × 5 ≈ 12,000
 * consultations a week in all, and the scarcest pairs still ≈ 600 a week per category (10 ru
 * speakers in Moscow, 10 de speakers in Madrid and Istanbul, per category) against ≈ 95 cases of
 * 20,200 per (language, category) pair of theirs. The whole run needs about two weeks of slots
 * if every case takes the earliest one and caps fill day after day (the default lead time of
 * 24 h, 4 h for URGENT, comes first); CASEFLOW_SCHEDULER_HORIZON_DAYS=60 (passed unless --env
 * sets it) leaves about four times that as margin, so a CasePending NO_SLOT in this run means a
 * bug or a changed rule, not a full calendar. Caps still push later cases days out, and the slot
 * search pays for that: it is part of what is measured.
 *
 * The cases: N CaseValidated records (default 20,000; R per second, or as fast as the
 * idempotent producer takes them) after W warm-up ones (default 200), varied over eight patient
 * profiles (en/US New York, es/US Los Angeles, es/ES Madrid, tr/TR Istanbul, ru/RU Moscow,
 * en/IN Kolkata, en/GB London, de/DE Berlin — no manager speaks de: interpreter cases), four
 * contact-window patterns (any time; weekdays 09–17; Tuesday and Thursday 14–18 plus Saturday
 * 10–13; Monday, Wednesday and Friday 08–11 and 17–20, all local), 27 condition categories,
 * URGENT 10 % / HIGH 30 % / ROUTINE 60 %, and every 50th a returning patient (the patient key
 * of a case 25 earlier). meta.correlation_id is the run's random prefix plus the case index
 * (cf_bench_run_id), so every outcome maps back to its case without a table.
 *
 * The services: the built caseflow-assignment and caseflow-scheduler, started with a fresh
 * CASEFLOW_INSTANCE_ID, a Redis key prefix of the run's own (all its keys are deleted at the
 * end), a random CASEFLOW_SCHEDULER_TOKEN_SECRET and their HTTP ports off. Their consumer groups
 * have fixed names, and on a long-lived stack caseflow.case.validated holds hundreds of
 * thousands of other runs' cases: a group that never committed would start at the beginning,
 * assign and book all of them into this run's roster and fill its calendars. So, unless
 * --keep-backlog, a group whose backlog is over 1,000 offsets is first moved to the end of its
 * topics (cf_kafka_group_to_end; reported). The warm-up then pays for the start, the
 * roster sync and the group joins, and the bench waits until both services are idle.
 *
 * Read back, read_committed, from the end: caseflow.case.assigned, caseflow.teleconsult.scheduled,
 * caseflow.case.pending, caseflow.dlq.assignment and caseflow.dlq.scheduler.
 *
 * Reported: cases/s from the first produce to the last TeleconsultScheduled; p50/p99/max latency
 * from a case's produce to the moment the bench reads its CaseAssigned and its
 * TeleconsultScheduled; counts per outcome and duplicates; each service's peak RSS (VmHWM, just
 * before it is stopped) and CPU, the bench's and the machine's CPU; the exact command. Exit 0
 * when every case got exactly one CaseAssigned and one TeleconsultScheduled (or, instead of the
 * rest of the path, one counted CasePending), nothing was duplicated, both services stopped
 * cleanly and each processed the whole run itself; 1 otherwise; 2 on bad arguments. It asserts
 * nothing about speed. */
#include <avro.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

#include <jansson.h>

#include "avro_convert.h"
#include "avro_serde.h"
#include "bench_support.h"
#include "child.h"
#include "cloudevents.h"
#include "config.h"
#include "kafka.h"
#include "log.h"
#include "registry.h"
#include "test_env.h"
#include "uuid.h"

#define ASSIGNMENT CF_BINARY_DIR "/services/caseflow-assignment"
#define SCHEDULER CF_BINARY_DIR "/services/caseflow-scheduler"

#define T_VALIDATED "caseflow.case.validated"
#define T_MANAGERS "caseflow.roster.care-managers"
#define T_SPECIALISTS "caseflow.roster.specialists"
#define ASSIGNMENT_GROUP "caseflow-assignment"
#define SCHEDULER_GROUP "caseflow-scheduler"
#define HORIZON_ENV "CASEFLOW_SCHEDULER_HORIZON_DAYS"
#define HORIZON_DEFAULT "60"

#define N_MANAGERS 50
#define N_SPECIALISTS 200
#define N_PROFILES 8
#define N_CATEGORIES 27
#define WARMUP_TIMEOUT_MS 180000 /* a dead member of an older run holds partitions ~45 s */
#define STOP_TIMEOUT_MS 60000
#define SETTLE_TIMEOUT_MS 600000
#define BACKLOG_SKIP_OVER 1000 /* offsets; below that the idle wait works it off */
#define PRODUCE_CHUNK 500
#define MAX_EXTRA_ENV 5 /* the scheduler's own 5 + 3 forwarded + these stay within 13 */
#define ROSTER_TIMEOUT_MS 60000

/* What the bench reads, by outcome code. */
enum outcome { O_ASSIGNED, O_SCHEDULED, O_PENDING, O_DLQ_ASSIGNMENT, O_DLQ_SCHEDULER, NOUT };
static const char *const outcome_topics[NOUT] = {
    "caseflow.case.assigned",  "caseflow.teleconsult.scheduled", "caseflow.case.pending",
    "caseflow.dlq.assignment", "caseflow.dlq.scheduler",
};

/* The services' input topics, for their groups' backlog (what their main.c subscribes to). */
static const char *const assignment_inputs[] = {T_VALIDATED, "caseflow.case.closed",
                                                "caseflow.case.assigned", "caseflow.case.pending"};
static const char *const scheduler_inputs[] = {
    "caseflow.case.assigned",           "caseflow.teleconsult.change-requested",
    "caseflow.teleconsult.completed",   "caseflow.case.closed",
    "caseflow.teleconsult.scheduled",   "caseflow.case.pending",
    "caseflow.teleconsult.reminder-due"};

static const struct cf_config_entry table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
};

/* caseflow.common.ConditionCategory without OTHER (validation sends OTHER to review). */
static const char *const categories[N_CATEGORIES] = {
    "HEPATITIS_A",
    "HEPATITIS_B",
    "HEPATITIS_C",
    "FATTY_LIVER",
    "NASH",
    "ALCOHOLIC_LIVER_DISEASE",
    "CIRRHOSIS",
    "LIVER_FAILURE",
    "HEPATOCELLULAR_CARCINOMA",
    "CHOLANGIOCARCINOMA",
    "LIVER_ADENOMA",
    "WILSON_DISEASE",
    "HYPEROXALURIA",
    "HEMOCHROMATOSIS",
    "AUTOIMMUNE_HEPATITIS",
    "PRIMARY_BILIARY_CHOLANGITIS",
    "PRIMARY_SCLEROSING_CHOLANGITIS",
    "ALPHA_1_ANTITRYPSIN_DEFICIENCY",
    "OTHER_LIVER",
    "MULTIPLE_SCLEROSIS",
    "PARKINSONS_DISEASE",
    "ARTHRITIS",
    "LUPUS",
    "INFLAMMATORY_BOWEL_DISEASE",
    "DIABETES",
    "PSORIASIS",
    "GRAVES_DISEASE",
};

/* A patient profile: language, country, IANA zone. */
struct profile {
    const char *language, *country, *zone;
};
static const struct profile profiles[N_PROFILES] = {
    {"en", "US", "America/New_York"}, {"es", "US", "America/Los_Angeles"},
    {"es", "ES", "Europe/Madrid"},    {"tr", "TR", "Europe/Istanbul"},
    {"ru", "RU", "Europe/Moscow"},    {"en", "IN", "Asia/Kolkata"},
    {"en", "GB", "Europe/London"},    {"de", "DE", "Europe/Berlin"},
};

/* One case of the run. */
struct item {
    unsigned char *value; /* the encoded CaseValidated */
    size_t len;
    char case_id[CF_UUID_LEN + 1];
    char event_id[CF_UUID_LEN + 1];
    int64_t occurred_ms;
    int64_t sent_us;     /* handed to the producer */
    int64_t assigned_us; /* its first CaseAssigned read; 0: none yet */
    int64_t done_us;     /* its first end of the path read (booked, pending, dead letter) */
    int64_t booked_us;   /* its first TeleconsultScheduled BOOKED read */
    uint16_t assigned, booked, other_status, pending_a, pending_s, alerts, dlq;
};

struct bench {
    /* arguments */
    long long n, warmup, rate, timeout_s;
    bool keep_logs, keep_backlog;
    const char *extra_env[MAX_EXTRA_ENV];
    size_t n_extra;
    /* run identity */
    char run_id[24];
    char tag[9];     /* random: in roster ids and emails */
    char prefix[25]; /* random first 24 characters of every correlation id of the run */
    char assignment_log[160], scheduler_log[160];
    char redis_prefix[64];
    /* clients */
    struct cf_config *config;
    struct cf_registry *registry;
    struct cf_serde *serde;
    struct cf_kafka_consumer *consumer;
    struct cf_kafka_producer *producer;
    pid_t assignment, scheduler;
    bool roster_loaded;
    /* the run */
    struct item *items; /* warm-up first, then the measured ones */
    size_t total;
    size_t done_warm, done_measured, duplicates, foreign, undecodable;
    size_t n_assigned; /* CaseAssigned read for this run's cases (warm-up included) */
};

/* ---- Generated data ------------------------------------------------------------------------ */

/* A meta record for a roster entry: roster records belong to no case, and their correlation id
 * is their own event id (Meta's doc). */
static json_t *roster_meta(char event_id[CF_UUID_LEN + 1], int64_t *when)
{
    if (cf_uuid_v4(event_id) != CF_OK)
        return NULL;
    *when = cf_clock_wall_ms();
    return json_pack("{s:s, s:n, s:I, s:s, s:s, s:n}", "event_id", event_id, "case_id",
                     "occurred_at", (json_int_t)*when, "producer", "bench/" CF_BENCH_VERSION,
                     "correlation_id", event_id, "causation_id");
}

static void manager_id(const struct bench *b, int m, char *out, size_t len)
{
    (void)snprintf(out, len, "bench-%s-cm-%02d", b->tag, m);
}

static void specialist_id(const struct bench *b, int s, char *out, size_t len)
{
    (void)snprintf(out, len, "bench-%s-sp-%03d", b->tag, s);
}

/* Care manager m (header comment: languages, countries, urgent, capacity). */
static json_t *manager(const struct bench *b, int m, char event_id[CF_UUID_LEN + 1], int64_t *when)
{
    static const char *const countries[5][3] = {{"ES", "MX", NULL},
                                                {"TR", "DE", NULL},
                                                {"RU", NULL, NULL},
                                                {"US", "GB", "IN"},
                                                {"US", "ES", NULL}};
    char id[64], name[64], email[96];
    manager_id(b, m, id, sizeof(id));
    (void)snprintf(name, sizeof(name), "Bench Manager %02d", m);
    (void)snprintf(email, sizeof(email), "cm%02d.%s@example.org", m, b->tag);
    json_t *langs = json_array(), *ctry = json_array();
    switch (m % 5) {
    case 0:
        json_array_append_new(langs, json_string("en"));
        json_array_append_new(langs, json_string("es"));
        break;
    case 1:
        json_array_append_new(langs, json_string("en"));
        json_array_append_new(langs, json_string("tr"));
        break;
    case 2:
        /* Five managers speak only Russian: the English fallback must not pick them. */
        if (m % 10 != 2)
            json_array_append_new(langs, json_string("en"));
        json_array_append_new(langs, json_string("ru"));
        break;
    case 3:
        json_array_append_new(langs, json_string("en"));
        break;
    default:
        json_array_append_new(langs, json_string("es"));
        json_array_append_new(langs, json_string("en"));
        break;
    }
    for (int k = 0; m % 7 != 0 && k < 3 && countries[m % 5][k] != NULL; k++)
        json_array_append_new(ctry, json_string(countries[m % 5][k]));
    json_t *meta = roster_meta(event_id, when);
    if (meta == NULL) {
        json_decref(langs);
        json_decref(ctry);
        return NULL;
    }
    return json_pack("{s:o, s:s, s:s, s:s, s:o, s:o, s:I, s:b, s:b}", "meta", meta, "manager_id",
                     id, "name", name, "email", email, "languages", langs, "countries", ctry,
                     "capacity", (json_int_t)(b->total + 50 * (size_t)(m % 4)), "urgent_capable",
                     m % 3 == 0, "active", 1);
}

/* The zone and local language of specialist s: s % 20 picks the zone so that both parities
 * (and so every category) are in every zone. */
static void specialist_place(int s, const char **zone, const char **lang)
{
    int z = s % 20;
    if (z < 5)
        *zone = "America/New_York", *lang = "es";
    else if (z < 7)
        *zone = "America/Los_Angeles", *lang = "es";
    else if (z < 10)
        *zone = "Europe/Madrid", *lang = "es";
    else if (z < 14)
        *zone = "Europe/Istanbul", *lang = "tr";
    else if (z < 16)
        *zone = "Europe/Moscow", *lang = "ru";
    else
        *zone = "Asia/Kolkata", *lang = "hi";
}

static int append_hours(json_t *hours, const char *day, const char *start, const char *end)
{
    return json_array_append_new(
        hours, json_pack("{s:s, s:s, s:s}", "weekday", day, "start", start, "end", end));
}

/* Specialist s (header comment: zones, languages, conditions, hours, caps). */
static json_t *specialist(const struct bench *b, int s, char event_id[CF_UUID_LEN + 1],
                          int64_t *when)
{
    static const char *const weekdays[] = {"MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"};
    char id[64], name[64], email[96];
    const char *zone = NULL, *lang = NULL;
    int bad = 0;
    specialist_id(b, s, id, sizeof(id));
    specialist_place(s, &zone, &lang);
    (void)snprintf(name, sizeof(name), "Dr Bench %03d", s);
    (void)snprintf(email, sizeof(email), "sp%03d.%s@example.org", s, b->tag);
    json_t *langs = json_array(), *conds = json_array(), *hours = json_array();
    bad |= json_array_append_new(langs, json_string("en"));
    bad |= json_array_append_new(langs, json_string(lang));
    if (s % 20 == 7 || s % 20 == 10)
        bad |= json_array_append_new(langs, json_string("de"));
    for (int k = 0; k < N_CATEGORIES; k++)
        if ((k + s) % 2 == 0)
            bad |= json_array_append_new(conds, json_string(categories[k]));
    for (size_t d = 0; d < sizeof(weekdays) / sizeof(weekdays[0]); d++) {
        bad |= append_hours(hours, weekdays[d], "08:00", "12:00");
        bad |= append_hours(hours, weekdays[d], "13:00", "18:00");
    }
    if (s % 4 == 0)
        bad |= append_hours(hours, "SATURDAY", "09:00", "13:00");
    json_t *meta = bad == 0 ? roster_meta(event_id, when) : NULL;
    if (meta == NULL) {
        json_decref(langs);
        json_decref(conds);
        json_decref(hours);
        return NULL;
    }
    return json_pack("{s:o, s:s, s:s, s:s, s:o, s:o, s:s, s:o, s:i, s:i, s:b}", "meta", meta,
                     "specialist_id", id, "name", name, "email", email, "languages", langs,
                     "conditions", conds, "time_zone", zone, "weekly_hours", hours, "slot_minutes",
                     30, "daily_cap", 10 + 2 * (s % 3), "active", 1);
}

static int append_window(json_t *windows, const char *day, const char *from, const char *to)
{
    return json_array_append_new(
        windows, json_pack("{s:s, s:s, s:s}", "weekday", day, "from", from, "to", to));
}

/* The contact windows of case i (header comment: four patterns, local times). */
static json_t *windows_of(size_t i)
{
    static const char *const weekdays[] = {"MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"};
    json_t *w = json_array();
    int bad = w == NULL;
    switch ((i / N_PROFILES) % 4) {
    case 0:
        break; /* any time */
    case 1:
        for (size_t d = 0; d < 5; d++)
            bad |= append_window(w, weekdays[d], "09:00", "17:00");
        break;
    case 2:
        bad |= append_window(w, "TUESDAY", "14:00", "18:00");
        bad |= append_window(w, "THURSDAY", "14:00", "18:00");
        bad |= append_window(w, "SATURDAY", "10:00", "13:00");
        break;
    default:
        for (size_t d = 0; d < 5; d += 2) {
            bad |= append_window(w, weekdays[d], "08:00", "11:00");
            bad |= append_window(w, weekdays[d], "17:00", "20:00");
        }
        break;
    }
    if (bad) {
        json_decref(w);
        return NULL;
    }
    return w;
}

/* The CaseValidated of case i in caseflow's JSON form (synthetic patient; never printed). */
static json_t *validated_case(const struct bench *b, size_t i, struct item *it)
{
    static const char *const priorities[10] = {"URGENT",  "HIGH",    "HIGH",    "HIGH",
                                               "ROUTINE", "ROUTINE", "ROUTINE", "ROUTINE",
                                               "ROUTINE", "ROUTINE"};
    char cid[CF_UUID_LEN + 1], when[32], family[32], email[96], phone[24], patient_key[65];
    const struct profile *p = &profiles[i % N_PROFILES];
    /* Every 50th case is a returning patient: the key of a case 25 earlier. */
    size_t key_index = i % 50 == 49 ? i - 25 : i;

    if (cf_uuid_v4(it->case_id) != CF_OK || cf_uuid_v4(it->event_id) != CF_OK)
        return NULL;
    cf_bench_run_id(b->prefix, i, cid);
    it->occurred_ms = cf_clock_wall_ms();
    cf_avro_format_millis(it->occurred_ms, when, sizeof(when));
    (void)snprintf(family, sizeof(family), "Patient %zu", i);
    (void)snprintf(email, sizeof(email), "bench.%s.%zu@example.com", b->tag, i);
    (void)snprintf(phone, sizeof(phone), "+1555%07zu", i % 10000000);
    (void)snprintf(patient_key, sizeof(patient_key), "%.8s%056zx", b->tag, key_index);
    json_t *windows = windows_of(i);
    if (windows == NULL)
        return NULL;
    json_t *recipient =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:o}", "given_name", "Bench",
                  "family_name", family, "language", p->language, "country", p->country,
                  "time_zone", p->zone, "email", email, "phone", phone, "consent_email", 1,
                  "consent_sms", i % 3 != 0, "contact_windows", windows);
    if (recipient == NULL)
        return NULL;
    return json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:n}, s:s, s:[], s:s, s:s, s:o}", "meta",
                     "event_id", it->event_id, "case_id", it->case_id, "occurred_at", when,
                     "producer", "bench/" CF_BENCH_VERSION, "correlation_id", cid, "causation_id",
                     "priority", priorities[(i * 13) % 10], "reasons", "category",
                     categories[(i * 7 + i / N_PROFILES) % N_CATEGORIES], "patient_key",
                     patient_key, "recipient", recipient);
}

/* Encodes every case of the run before anything is timed. */
static bool make_items(struct bench *b)
{
    char err[512];
    if ((b->items = calloc(b->total, sizeof(*b->items))) == NULL)
        return false;
    for (size_t i = 0; i < b->total; i++) {
        struct item *it = &b->items[i];
        json_t *rec = validated_case(b, i, it);
        cf_status st = rec != NULL ? cf_serde_encode_json(b->serde, T_VALIDATED, rec, &it->value,
                                                          &it->len, err, sizeof(err))
                                   : CF_ENOMEM;
        json_decref(rec);
        if (st != CF_OK) {
            /* err names a field path, never a value. */
            fprintf(stderr, "bench_consult: encoding case %zu: %s\n", i,
                    rec != NULL ? err : "out of memory");
            return false;
        }
    }
    return true;
}

/* ---- The roster ---------------------------------------------------------------------------- */

/* Produces one roster record (value NULL: a tombstone) of topic under key. */
static bool produce_entry(struct bench *b, const char *topic, const char *type, const char *key,
                          const json_t *entry, const char *event_id, int64_t when)
{
    char err[512];
    unsigned char *buf = NULL;
    size_t len = 0;
    struct cf_cloudevent ce;
    bool ok = false;
    if (entry != NULL &&
        (cf_serde_encode_json(b->serde, topic, entry, &buf, &len, err, sizeof(err)) != CF_OK ||
         cf_cloudevent_init(&ce, "bench", type, event_id, when, err, sizeof(err)) != CF_OK))
        goto out;
    if (cf_kafka_produce(b->producer, topic, key, strlen(key), buf, len,
                         entry != NULL ? ce.headers : NULL, entry != NULL ? CF_CE_HEADER_COUNT : 0,
                         err, sizeof(err)) != CF_OK)
        goto out;
    ok = true;
out:
    if (!ok)
        fprintf(stderr, "bench_consult: roster entry for %s: %s\n", topic, err);
    free(buf);
    return ok;
}

/* Tombstones every entry live on topic; prints how many. */
static bool clear_topic(struct bench *b, const char *topic)
{
    size_t count = 0;
    char **keys = cf_bench_compacted_live_keys(b->config, topic, ROSTER_TIMEOUT_MS, &count);
    bool ok = keys != NULL;
    for (size_t i = 0; ok && i < count; i++)
        ok = produce_entry(b, topic, NULL, keys[i], NULL, NULL, 0);
    cf_bench_free_keys(keys);
    if (ok)
        printf("  roster: %zu live entries of other runs and tests tombstoned on %s\n", count,
               topic);
    return ok;
}

/* Clears both roster topics, loads the run's roster and waits until the broker has it all. */
static bool load_roster(struct bench *b)
{
    char err[512], id[64], event_id[CF_UUID_LEN + 1];
    int64_t when = 0;
    if (!clear_topic(b, T_MANAGERS) || !clear_topic(b, T_SPECIALISTS))
        return false;
    b->roster_loaded = true; /* from here on, the end tombstones what may have been sent */
    for (int m = 0; m < N_MANAGERS; m++) {
        json_t *e = manager(b, m, event_id, &when);
        manager_id(b, m, id, sizeof(id));
        bool ok = e != NULL && produce_entry(b, T_MANAGERS, "caseflow.roster.CareManager", id, e,
                                             event_id, when);
        json_decref(e);
        if (!ok)
            return false;
    }
    for (int s = 0; s < N_SPECIALISTS; s++) {
        json_t *e = specialist(b, s, event_id, &when);
        specialist_id(b, s, id, sizeof(id));
        bool ok = e != NULL && produce_entry(b, T_SPECIALISTS, "caseflow.roster.Specialist", id, e,
                                             event_id, when);
        json_decref(e);
        if (!ok)
            return false;
    }
    if (cf_kafka_producer_flush(b->producer, 30000, err, sizeof(err)) != CF_OK) {
        fprintf(stderr, "bench_consult: roster delivery: %s\n", err);
        return false;
    }
    printf("  roster: %d care managers and %d specialists of this run loaded (ids bench-%s-*)\n",
           N_MANAGERS, N_SPECIALISTS, b->tag);
    return true;
}

/* Tombstones the run's own roster entries. */
static bool unload_roster(struct bench *b)
{
    char err[512], id[64];
    bool ok = true;
    for (int m = 0; ok && m < N_MANAGERS; m++) {
        manager_id(b, m, id, sizeof(id));
        ok = produce_entry(b, T_MANAGERS, NULL, id, NULL, NULL, 0);
    }
    for (int s = 0; ok && s < N_SPECIALISTS; s++) {
        specialist_id(b, s, id, sizeof(id));
        ok = produce_entry(b, T_SPECIALISTS, NULL, id, NULL, NULL, 0);
    }
    if (ok && cf_kafka_producer_flush(b->producer, 30000, err, sizeof(err)) != CF_OK) {
        fprintf(stderr, "bench_consult: roster tombstones: %s\n", err);
        ok = false;
    }
    if (ok)
        printf("  roster: this run's %d entries tombstoned\n", N_MANAGERS + N_SPECIALISTS);
    return ok;
}

/* ---- Outcomes ------------------------------------------------------------------------------ */

/* A string field of a record value, without avro-c's trailing NUL in *len; NULL if absent. */
static const char *string_field(avro_value_t *v, const char *name, size_t *len)
{
    avro_value_t f;
    const char *s = NULL;
    if (avro_value_get_by_name(v, name, &f, NULL) != 0 || avro_value_get_string(&f, &s, len) != 0)
        return NULL;
    if (*len > 0)
        (*len)--;
    return s;
}

/* The run index of a decoded caseflow event (by meta.correlation_id), or -1. */
static long long event_index(const struct bench *b, avro_value_t *v)
{
    avro_value_t meta;
    size_t len = 0;
    if (avro_value_get_by_name(v, "meta", &meta, NULL) != 0)
        return -1;
    const char *cid = string_field(&meta, "correlation_id", &len);
    return cid != NULL ? cf_bench_run_index(b->prefix, cid, len, b->total) : -1;
}

/* Accounts one record read at now_us. */
static void take(struct bench *b, const struct cf_kafka_record *r, int64_t now_us)
{
    char err[512], source[128] = "";
    unsigned t = 0;
    while (t < NOUT && strcmp(outcome_topics[t], r->topic) != 0)
        t++;
    if (t == NOUT || r->value == NULL)
        return;
    const char *topic = r->topic;
    if (t == O_DLQ_ASSIGNMENT || t == O_DLQ_SCHEDULER) {
        /* A dead letter keeps the original record: decode it as its source topic's. */
        for (size_t h = 0; h < r->header_count; h++)
            if (strcmp(r->headers[h].name, "dlq.source.topic") == 0 && r->headers[h].value != NULL)
                (void)snprintf(source, sizeof(source), "%.*s", (int)r->headers[h].len,
                               (const char *)r->headers[h].value);
        topic = source;
    }
    avro_value_t v;
    if (topic[0] == '\0' ||
        cf_serde_decode(b->serde, topic, r->value, r->value_len, &v, err, sizeof(err)) != CF_OK) {
        b->undecodable++;
        return;
    }
    long long i = event_index(b, &v);
    if (i < 0) {
        avro_value_decref(&v);
        b->foreign++;
        return;
    }
    struct item *it = &b->items[i];
    bool end = false; /* this record ends the case's path */
    avro_value_t f;
    size_t len = 0;
    switch (t) {
    case O_ASSIGNED:
        if (it->assigned++ == 0) {
            it->assigned_us = now_us;
            b->n_assigned++;
        } else {
            b->duplicates++;
        }
        break;
    case O_SCHEDULED: {
        int status = -1;
        if (avro_value_get_by_name(&v, "status", &f, NULL) == 0)
            (void)avro_value_get_enum(&f, &status);
        if (status != 1) { /* TeleconsultStatus BOOKED */
            it->other_status++;
            break;
        }
        if (it->booked++ == 0) {
            it->booked_us = now_us;
            end = true;
        } else {
            b->duplicates++;
        }
        break;
    }
    case O_PENDING: {
        int alert = 0;
        const char *svc = string_field(&v, "service", &len);
        if (avro_value_get_by_name(&v, "alert", &f, NULL) == 0)
            (void)avro_value_get_boolean(&f, &alert);
        if (alert) {
            it->alerts++; /* the "waited too long" repeat: not a second outcome */
            break;
        }
        bool sched = svc != NULL && len == 9 && memcmp(svc, "scheduler", 9) == 0;
        uint16_t *count = sched ? &it->pending_s : &it->pending_a;
        if ((*count)++ > 0)
            b->duplicates++;
        end = true;
        break;
    }
    default:
        it->dlq++;
        end = true;
        break;
    }
    avro_value_decref(&v);
    if (!end || it->done_us != 0)
        return;
    it->done_us = now_us;
    if (i < b->warmup)
        b->done_warm++;
    else
        b->done_measured++;
}

/* Reads outcomes: waits up to timeout_ms for the first, then takes what else is there (at most
 * max records). */
static void read_outcomes(struct bench *b, int timeout_ms, size_t max)
{
    char err[512];
    for (size_t k = 0; k < max; k++) {
        struct cf_kafka_record *r = NULL;
        if (cf_kafka_consumer_poll(b->consumer, k == 0 ? timeout_ms : 0, &r, err, sizeof(err)) !=
            CF_OK)
            return;
        take(b, r, cf_bench_now_us());
        cf_kafka_record_release(r);
    }
}

/* True when case i went the whole way exactly once: one CaseAssigned and one BOOKED, or one
 * CaseAssigned and one scheduler CasePending, or one assignment CasePending and nothing after
 * it; never a dead letter. */
static bool item_ok(const struct item *it)
{
    if (it->dlq != 0 || it->other_status != 0)
        return false;
    if (it->assigned == 0)
        return it->pending_a == 1 && it->booked == 0 && it->pending_s == 0;
    return it->assigned == 1 && it->pending_a == 0 &&
           ((it->booked == 1 && it->pending_s == 0) || (it->booked == 0 && it->pending_s == 1));
}

/* ---- Producing and the services ------------------------------------------------------------ */

/* Hands case i to the producer and stamps it. */
static bool produce(struct bench *b, size_t i)
{
    char err[512];
    struct cf_cloudevent ce;
    struct item *it = &b->items[i];
    if (cf_cloudevent_init(&ce, "bench", "caseflow.event.CaseValidated", it->event_id,
                           it->occurred_ms, err, sizeof(err)) != CF_OK) {
        fprintf(stderr, "bench_consult: headers: %s\n", err);
        return false;
    }
    it->sent_us = cf_bench_now_us();
    if (cf_kafka_produce(b->producer, T_VALIDATED, it->case_id, CF_UUID_LEN, it->value, it->len,
                         ce.headers, CF_CE_HEADER_COUNT, err, sizeof(err)) != CF_OK) {
        fprintf(stderr, "bench_consult: produce: %s\n", err);
        return false;
    }
    return true;
}

static bool extra_sets(const struct bench *b, const char *name)
{
    size_t len = strlen(name);
    for (size_t k = 0; k < b->n_extra; k++)
        if (strncmp(b->extra_env[k], name, len) == 0 && b->extra_env[k][len] == '=')
            return true;
    return false;
}

static bool start_services(struct bench *b)
{
    static char aenv[13][160], senv[13][160];
    static const char *const forwarded[] = {"CASEFLOW_REGISTRY_URL", "CASEFLOW_REDIS_HOST",
                                            "CASEFLOW_REDIS_PORT"};
    char secret[65];
    size_t na = 0, ns = 0;
    if (!cf_bench_random_hex(secret, 32))
        return false;
    /* A fresh instance id is a fresh transactional.id; the HTTP ports are off because another
     * replica on the machine may hold the default ones. */
    (void)snprintf(aenv[na++], sizeof(aenv[0]), "CASEFLOW_INSTANCE_ID=bench-%s", b->run_id);
    (void)snprintf(aenv[na++], sizeof(aenv[0]), "CASEFLOW_REDIS_KEY_PREFIX=%s", b->redis_prefix);
    (void)snprintf(aenv[na++], sizeof(aenv[0]), "CASEFLOW_ASSIGNMENT_HTTP_PORT=0");
    (void)snprintf(senv[ns++], sizeof(senv[0]), "CASEFLOW_INSTANCE_ID=bench-%s", b->run_id);
    (void)snprintf(senv[ns++], sizeof(senv[0]), "CASEFLOW_REDIS_KEY_PREFIX=%s", b->redis_prefix);
    (void)snprintf(senv[ns++], sizeof(senv[0]), "CASEFLOW_SCHEDULER_HTTP_PORT=0");
    (void)snprintf(senv[ns++], sizeof(senv[0]), "CASEFLOW_SCHEDULER_TOKEN_SECRET=%s", secret);
    if (!extra_sets(b, HORIZON_ENV))
        (void)snprintf(senv[ns++], sizeof(senv[0]), "%s=%s", HORIZON_ENV, HORIZON_DEFAULT);
    for (size_t k = 0; k < sizeof(forwarded) / sizeof(forwarded[0]); k++) {
        const char *v = getenv(forwarded[k]);
        if (v == NULL)
            continue;
        (void)snprintf(aenv[na++], sizeof(aenv[0]), "%s=%s", forwarded[k], v);
        (void)snprintf(senv[ns++], sizeof(senv[0]), "%s=%s", forwarded[k], v);
    }
    for (size_t k = 0; k < b->n_extra; k++) {
        (void)snprintf(aenv[na++], sizeof(aenv[0]), "%s", b->extra_env[k]);
        (void)snprintf(senv[ns++], sizeof(senv[0]), "%s", b->extra_env[k]);
    }
    b->assignment = cf_test_spawn_service(ASSIGNMENT, aenv, na, b->assignment_log);
    b->scheduler = cf_test_spawn_service(SCHEDULER, senv, ns, b->scheduler_log);
    return true;
}

/* Reports each group's backlog and, unless --keep-backlog, moves a big one to the end. */
static bool handle_backlog(struct bench *b, const char *group, const char *const *topics, size_t n)
{
    long long lag = cf_test_group_backlog(b->config, group, topics, n);
    printf("  backlog of group %s before the run: %lld offsets (transaction markers included)",
           group, lag);
    if (lag <= BACKLOG_SKIP_OVER || b->keep_backlog) {
        printf("%s\n", lag > BACKLOG_SKIP_OVER ? "; kept (--keep-backlog)" : "");
        return true;
    }
    printf("; moving the group to the end of its topics\n");
    fflush(stdout);
    char err[512] = "";
    if (cf_kafka_group_to_end(b->config, group, topics, n, 30000, err, sizeof(err)) != CF_OK) {
        fprintf(stderr, "bench_consult: %s\n", err);
        return false;
    }
    printf("  backlog of group %s now: %lld offsets\n", group,
           cf_test_group_backlog(b->config, group, topics, n));
    return true;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_consult [N] [--warmup W] [--rate R] [--timeout-s S]\n"
            "                     [--env NAME=VALUE]... [--keep-backlog] [--keep-logs]\n"
            "  N          cases measured (default 20000)\n"
            "  --warmup   cases pushed through first, not measured (default 200)\n"
            "  --rate     CaseValidated per second to offer (default 0: as fast as possible)\n"
            "  --timeout-s  longest wait for the last outcome after the first produce (300)\n"
            "  --env      an extra variable for both services (at most %d), e.g.\n"
            "             CASEFLOW_BATCH_MAX_MS=20 or " HORIZON_ENV "=30 (default " HORIZON_DEFAULT
            ")\n"
            "  --keep-backlog  leave the services' groups where they are, however far behind\n"
            "  --keep-logs  keep the services' logs even when the run succeeds\n",
            MAX_EXTRA_ENV);
}

static bool parse_args(struct bench *b, int argc, char **argv)
{
    b->n = 20000;
    b->warmup = 200;
    b->rate = 0;
    b->timeout_s = 300;
    const struct cf_bench_args args = {&b->n,        &b->warmup,  &b->rate,
                                       &b->timeout_s, &b->keep_logs, &b->keep_backlog,
                                       b->extra_env,  MAX_EXTRA_ENV, &b->n_extra};
    if (!cf_bench_parse_args(&args, argc, argv)) {
        usage();
        return false;
    }
    return true;
}

static void print_config(const struct bench *b, int argc, char **argv)
{
    extern char **environ;
    char err[512];
    struct cf_topic_info ti;
    printf("bench_consult: CaseValidated -> assignment -> scheduler -> TeleconsultScheduled on "
           "the local stack, transactions on\n");
    cf_bench_print_command(argc, argv);
    cf_bench_print_machine();
    printf("  services: %s, %s\n", ASSIGNMENT, SCHEDULER);
    printf("  cases: %lld measured, %lld warm-up, ", b->n, b->warmup);
    if (b->rate > 0)
        printf("offered at %lld/s\n", b->rate);
    else
        printf("produced as fast as the producer takes them\n");
    printf("  roster: %d care managers, %d specialists (30-minute slots)\n", N_MANAGERS,
           N_SPECIALISTS);
    printf("  service env: CASEFLOW_INSTANCE_ID=bench-%s, CASEFLOW_REDIS_KEY_PREFIX=%s, HTTP "
           "ports 0 (both), a fresh CASEFLOW_SCHEDULER_TOKEN_SECRET",
           b->run_id, b->redis_prefix);
    if (!extra_sets(b, HORIZON_ENV))
        printf(", %s=%s", HORIZON_ENV, HORIZON_DEFAULT);
    printf(" (scheduler)");
    for (size_t k = 0; k < b->n_extra; k++)
        printf(", %s", b->extra_env[k]);
    printf("; everything else at the services' defaults\n");
    for (char **e = environ; *e != NULL; e++)
        if (strncmp(*e, "KAFKA_", 6) == 0)
            printf("  inherited: %.*s=%s\n", (int)(strcspn(*e, "=")), *e,
                   strstr(*e, "PASSWORD") != NULL || strstr(*e, "SECRET") != NULL
                       ? "(not shown)"
                       : strchr(*e, '=') + 1);
    if (cf_kafka_describe_topic(b->config, T_VALIDATED, 10000, &ti, err, sizeof(err)) == CF_OK)
        printf("  topics: %s %d partitions", T_VALIDATED, ti.partitions);
    if (cf_kafka_describe_topic(b->config, outcome_topics[O_ASSIGNED], 10000, &ti, err,
                                sizeof(err)) == CF_OK)
        printf(", %s %d partitions", outcome_topics[O_ASSIGNED], ti.partitions);
    printf("\n  logs: %s, %s\n", b->assignment_log, b->scheduler_log);
    (void)cf_bench_warn_others("caseflow-assign", NULL, 0); /* comm keeps 15 characters */
    (void)cf_bench_warn_others("caseflow-schedu", NULL, 0);
    fflush(stdout);
}

/* Prints p50/p99/max of v[0..n) (sorted here) in ms. */
static void print_latency(const char *what, int64_t *v, size_t n)
{
    cf_bench_sort(v, n);
    printf("  latency, produce -> %s read (%zu cases): p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
           what, n, (double)cf_bench_rank(v, n, 0.50) / 1e3,
           (double)cf_bench_rank(v, n, 0.99) / 1e3, (double)cf_bench_rank(v, n, 1.0) / 1e3);
}

int main(int argc, char **argv)
{
    struct bench b;
    int64_t *lat_a = NULL, *lat_s = NULL;
    char err[512];
    int st_a = -1, st_s = -1; /* the services' exit statuses (-1: not yet known) */
    int rc = 1;

    memset(&b, 0, sizeof(b));
    b.assignment = b.scheduler = -1;
    if (!parse_args(&b, argc, argv))
        return 2;
    b.total = (size_t)(b.n + b.warmup);
    cf_test_run_id(b.run_id, sizeof(b.run_id));
    if (!cf_bench_random_hex(b.tag, 4) || !cf_bench_id_prefix(b.prefix)) {
        fprintf(stderr, "bench_consult: /dev/urandom unreadable\n");
        goto out;
    }
    (void)snprintf(b.assignment_log, sizeof(b.assignment_log),
                   "/tmp/bench-consult-%s-assignment.log", b.run_id);
    (void)snprintf(b.scheduler_log, sizeof(b.scheduler_log), "/tmp/bench-consult-%s-scheduler.log",
                   b.run_id);
    cf_bench_redis_prefix(b.run_id, b.redis_prefix, sizeof(b.redis_prefix));
    cf_bench_ignore_sigpipe();
    /* The bench's own Kafka clients log at info (each partition of a group join): warnings
     * only, so the report stays readable. */
    cf_log_init("bench_consult", CF_LOG_WARN);
    if (access(ASSIGNMENT, X_OK) != 0 || access(SCHEDULER, X_OK) != 0) {
        fprintf(stderr, "bench_consult: build %s and %s first\n", ASSIGNMENT, SCHEDULER);
        goto out;
    }

    if (cf_test_service_clients(table, sizeof(table) / sizeof(table[0]), &b.config, &b.registry,
                                &b.serde) != 0)
        goto out;
    print_config(&b, argc, argv);
    if (cf_kafka_producer_new(b.config, NULL, 30000, &b.producer, err, sizeof(err)) != CF_OK) {
        fprintf(stderr, "bench_consult: producer: %s\n", err);
        goto out;
    }
    if (!handle_backlog(&b, ASSIGNMENT_GROUP, assignment_inputs,
                        sizeof(assignment_inputs) / sizeof(assignment_inputs[0])) ||
        !handle_backlog(&b, SCHEDULER_GROUP, scheduler_inputs,
                        sizeof(scheduler_inputs) / sizeof(scheduler_inputs[0])))
        goto out;
    if (!load_roster(&b))
        goto out;
    struct cf_kafka_consumer_options copts = {false, false, "latest"};
    if (cf_kafka_consumer_new(b.config, NULL, outcome_topics, NOUT, &copts, &b.consumer, err,
                              sizeof(err)) != CF_OK) {
        fprintf(stderr, "bench_consult: consumer: %s\n", err);
        goto out;
    }
    int64_t t = cf_bench_now_us();
    if (!make_items(&b))
        goto out;
    printf("prepared %zu encoded CaseValidated records in %.2f s (not timed)\n", b.total,
           (double)(cf_bench_now_us() - t) / 1e6);

    /* Read the outcome topics once before anything is produced, so the consumer's position
     * ("latest") is fixed before the first warm-up outcome can appear. */
    read_outcomes(&b, 1000, 1000);
    t = cf_bench_now_us();
    if (!start_services(&b))
        goto out;
    printf("services started: assignment pid %ld, scheduler pid %ld\n", (long)b.assignment,
           (long)b.scheduler);
    fflush(stdout);

    /* Warm-up: both loops run, both groups joined, rosters synced, the whole path proved. */
    for (size_t i = 0; i < (size_t)b.warmup; i++)
        if (!produce(&b, i))
            goto out;
    if (cf_kafka_producer_flush(b.producer, 30000, err, sizeof(err)) != CF_OK) {
        fprintf(stderr, "bench_consult: warm-up flush: %s\n", err);
        goto out;
    }
    int64_t deadline = cf_clock_mono_ms() + WARMUP_TIMEOUT_MS;
    while (b.done_warm < (size_t)b.warmup && cf_clock_mono_ms() < deadline &&
           !cf_bench_child_exited(&b.assignment, &st_a) &&
           !cf_bench_child_exited(&b.scheduler, &st_s))
        read_outcomes(&b, 100, 1000);
    if (b.done_warm < (size_t)b.warmup) {
        fprintf(stderr,
                "bench_consult: warm-up: %zu of %lld cases through (%zu assigned) after "
                "%d s%s\n",
                b.done_warm, b.warmup, b.n_assigned, WARMUP_TIMEOUT_MS / 1000,
                b.assignment < 0 || b.scheduler < 0 ? " (a service exited)" : "");
        goto out;
    }
    printf("warm-up: %lld cases through both services in %.1f s from their start\n", b.warmup,
           (double)(cf_bench_now_us() - t) / 1e6);
    fflush(stdout);
    pid_t both[] = {b.assignment, b.scheduler};
    int64_t waited = 0;
    if (!cf_bench_wait_idle(both, 2, SETTLE_TIMEOUT_MS, &waited)) {
        fprintf(stderr, "bench_consult: the services were still busy %d s after the warm-up\n",
                SETTLE_TIMEOUT_MS / 1000);
        goto out;
    }
    printf("settled: both services idle %.1f s after the warm-up\n", (double)waited / 1e3);
    fflush(stdout);

    /* Measured phase. */
    int64_t cpu0_a = cf_bench_cpu_ms(b.assignment), cpu0_s = cf_bench_cpu_ms(b.scheduler);
    int64_t busy0 = cf_bench_machine_busy_ms();
    struct rusage ru0, ru1;
    (void)getrusage(RUSAGE_SELF, &ru0);
    size_t next = (size_t)b.warmup;
    int64_t t0 = cf_bench_now_us(), produced_us = 0, acked_us = 0;
    int64_t end_us = t0 + b.timeout_s * 1000000;
    while (b.done_measured < (size_t)b.n && cf_bench_now_us() < end_us) {
        if (next < b.total) {
            size_t due = b.total;
            if (b.rate > 0) {
                /* Pacing: by now, (elapsed × rate) records should have been offered. */
                long long offered = (cf_bench_now_us() - t0) * b.rate / 1000000 + 1;
                if ((size_t)b.warmup + (size_t)offered < due)
                    due = (size_t)b.warmup + (size_t)offered;
            }
            for (size_t k = 0; next < due && k < PRODUCE_CHUNK; k++)
                if (!produce(&b, next++))
                    goto out;
            if (next == b.total)
                produced_us = cf_bench_now_us();
            read_outcomes(&b, b.rate > 0 && next == due ? 1 : 0, 1000);
            continue;
        }
        if (acked_us == 0) {
            cf_status st = cf_kafka_producer_flush(b.producer, 0, err, sizeof(err));
            if (st == CF_OK)
                acked_us = cf_bench_now_us();
            else if (st != CF_ETIMEOUT) {
                fprintf(stderr, "bench_consult: delivery: %s\n", err);
                goto out;
            }
        }
        read_outcomes(&b, 50, 1000);
        if (cf_bench_child_exited(&b.assignment, &st_a) ||
            cf_bench_child_exited(&b.scheduler, &st_s)) {
            fprintf(stderr, "bench_consult: a service died during the run\n");
            break;
        }
    }
    (void)getrusage(RUSAGE_SELF, &ru1);
    int64_t cpu1_a = cf_bench_cpu_ms(b.assignment), cpu1_s = cf_bench_cpu_ms(b.scheduler);
    int64_t busy1 = cf_bench_machine_busy_ms();
    int64_t phase_us = cf_bench_now_us() - t0;
    /* A moment more, so that a duplicate would be seen. */
    for (int64_t until = cf_bench_now_us() + 3000000; cf_bench_now_us() < until;)
        read_outcomes(&b, 100, 1000);
    long hwm_a = cf_bench_vmhwm_kib(b.assignment), hwm_s = cf_bench_vmhwm_kib(b.scheduler);
    long anon_a = -1, file_a = -1, anon_s = -1, file_s = -1;
    cf_bench_rss_split_kib(b.assignment, &anon_a, &file_a);
    cf_bench_rss_split_kib(b.scheduler, &anon_s, &file_s);
    if (b.assignment > 0)
        st_a = cf_test_stop_child(&b.assignment, STOP_TIMEOUT_MS);
    if (b.scheduler > 0)
        st_s = cf_test_stop_child(&b.scheduler, STOP_TIMEOUT_MS);

    /* The report. */
    lat_a = malloc((size_t)b.n * sizeof(*lat_a));
    lat_s = malloc((size_t)b.n * sizeof(*lat_s));
    if (lat_a == NULL || lat_s == NULL)
        goto out;
    size_t na = 0, ns = 0, bad = 0, bad_warm = 0;
    size_t assigned = 0, pend_a = 0, pend_s = 0, alerts = 0, dlq = 0, other = 0;
    int64_t last_booked = t0, last_done = t0;
    for (size_t i = 0; i < b.total; i++) {
        const struct item *it = &b.items[i];
        if (i < (size_t)b.warmup) {
            bad_warm += !item_ok(it);
            continue;
        }
        bad += !item_ok(it);
        assigned += it->assigned > 0;
        pend_a += it->pending_a > 0;
        pend_s += it->pending_s > 0;
        alerts += it->alerts;
        dlq += it->dlq > 0;
        other += it->other_status;
        if (it->assigned_us != 0)
            lat_a[na++] = it->assigned_us - it->sent_us;
        if (it->booked_us != 0) {
            lat_s[ns++] = it->booked_us - it->sent_us;
            if (it->booked_us > last_booked)
                last_booked = it->booked_us;
        }
        if (it->done_us > last_done)
            last_done = it->done_us;
    }
    double span_s = (double)(last_booked - t0) / 1e6;
    printf("measured: %lld cases\n", b.n);
    if (produced_us > 0)
        printf("  produce: all %lld handed to the producer after %.3f s", b.n,
               (double)(produced_us - t0) / 1e6);
    if (acked_us > 0)
        printf(", acknowledged (acks=all) after %.3f s", (double)(acked_us - t0) / 1e6);
    printf("\n  outcomes: CaseAssigned %zu of %lld, TeleconsultScheduled BOOKED %zu; CasePending "
           "assignment %zu, scheduler %zu (alerts %zu); dead-lettered %zu; other statuses %zu; "
           "duplicates %zu; cases without exactly one path %zu (warm-up %zu); other runs' "
           "records seen %zu\n",
           assigned, b.n, ns, pend_a, pend_s, alerts, dlq, other, b.duplicates, bad, bad_warm,
           b.foreign);
    if (b.undecodable > 0)
        printf("  records that could not be decoded: %zu\n", b.undecodable);
    printf("  throughput: %.0f cases/s booked (%zu TeleconsultScheduled, first produce -> last "
           "one %.3f s); every case's path ended after %.3f s\n",
           span_s > 0 ? (double)ns / span_s : 0.0, ns, span_s, (double)(last_done - t0) / 1e6);
    print_latency("CaseAssigned", lat_a, na);
    print_latency("TeleconsultScheduled", lat_s, ns);
    double bench_cpu = cf_bench_rusage_s(&ru0, &ru1);
    double cpu_a = (double)(cpu1_a - cpu0_a) / 1e3, cpu_s = (double)(cpu1_s - cpu0_s) / 1e3;
    double busy = (double)(busy1 - busy0) / 1e3;
    double capacity = (double)phase_us / 1e6 * (double)sysconf(_SC_NPROCESSORS_ONLN);
    printf("  CPU during the measured phase (%.2f s): assignment %.2f s, scheduler %.2f s, bench "
           "%.2f s; the machine %.2f s of %.2f s (%.0f%% busy), so %.2f s went to Kafka, the "
           "registry, Redis and anything else running\n",
           (double)phase_us / 1e6, cpu_a, cpu_s, bench_cpu, busy, capacity,
           capacity > 0 ? 100.0 * busy / capacity : 0.0, busy - cpu_a - cpu_s - bench_cpu);
    struct rusage self;
    (void)getrusage(RUSAGE_SELF, &self);
    printf("  peak RSS (VmHWM): assignment %.1f MiB, scheduler %.1f MiB, bench %.1f MiB\n",
           (double)hwm_a / 1024.0, (double)hwm_s / 1024.0, (double)self.ru_maxrss / 1024.0);
    printf("  RSS at the end, allocated / file-backed (program, libraries, ICU data): assignment "
           "%.1f / %.1f MiB, scheduler %.1f / %.1f MiB\n",
           (double)anon_a / 1024.0, (double)file_a / 1024.0, (double)anon_s / 1024.0,
           (double)file_s / 1024.0);
    printf("  services stopped with status: assignment %d, scheduler %d\n", st_a, st_s);
    bool alone = cf_bench_print_loop_counts("assignment", b.assignment_log, b.total);
    alone &= cf_bench_print_loop_counts("scheduler", b.scheduler_log, b.n_assigned);
    if (b.done_measured < (size_t)b.n)
        printf("MISSING: %zu of %lld cases did not reach the end of the path after %lld s\n",
               (size_t)b.n - b.done_measured, b.n, b.timeout_s);
    rc = bad == 0 && bad_warm == 0 && b.duplicates == 0 && st_a == 0 && st_s == 0 && alone ? 0 : 1;
out:
    cf_test_kill_child(b.assignment);
    cf_test_kill_child(b.scheduler);
    if (b.roster_loaded && !unload_roster(&b))
        rc = 1;
    if (b.redis_prefix[0] != '\0' && !cf_bench_redis_drop(b.redis_prefix))
        rc = 1;
    if (rc == 0 && !b.keep_logs) {
        (void)unlink(b.assignment_log);
        (void)unlink(b.scheduler_log);
    } else {
        if (b.assignment_log[0] != '\0' && access(b.assignment_log, F_OK) == 0)
            printf("log kept: %s\n", b.assignment_log);
        if (b.scheduler_log[0] != '\0' && access(b.scheduler_log, F_OK) == 0)
            printf("log kept: %s\n", b.scheduler_log);
    }
    free(lat_a);
    free(lat_s);
    if (b.items != NULL)
        for (size_t i = 0; i < b.total; i++)
            free(b.items[i].value);
    free(b.items);
    cf_kafka_producer_free(b.producer);
    cf_kafka_consumer_free(b.consumer);
    cf_serde_free(b.serde);
    cf_registry_free(b.registry);
    cf_config_free(b.config);
    return rc;
}
