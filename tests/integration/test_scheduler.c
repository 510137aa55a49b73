/* test_scheduler.c — caseflow-scheduler against the real stack (deploy/stack up), started as
 * child processes:
 *   - CaseAssigned → TeleconsultScheduled BOOKED at the slot this test computes with slots.h
 *     (specialist in New York, patient in Kolkata), checked in both zones;
 *   - a reschedule with the right token → RESCHEDULED with previous_start, and the old slot is
 *     booked by the next case; the earlier (now stale) token → dead letter with the reason;
 *   - a cancel → CANCELLED (no links) + CaseClosed WITHDRAWN TELECONSULT_CANCELLED;
 *   - ELIGIBLE with 2 sessions → TreatmentBooked (session 2 = session 1 + 15 days, arrival,
 *     departure); NOT_ELIGIBLE → CaseClosed NOT_ELIGIBLE with the recipient; NEEDS_TESTS → a
 *     new teleconsult a week later with the same specialist; NO_SHOW → one rebooking, then
 *     CaseClosed WITHDRAWN NO_SHOW;
 *   - reminders with shortened leads, each exactly once, although the scheduler is SIGKILLed
 *     and restarted between the booking and the reminders;
 *   - two replicas under 120 concurrent cases and two specialists: no (specialist, start)
 *     twice, no daily cap exceeded.
 * Independent of earlier runs: every specialist on the (shared, compacted) roster topic is
 * tombstoned first, this run's ids are unique, and "scheduler:*" keys are cleared in Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <jansson.h>

#include "avro_convert.h"
#include "avro_serde.h"
#include "child.h"
#include "clock.h"
#include "config.h"
#include "http_client.h"
#include "kafka.h"
#include "redis_raw.h"
#include "registry.h"
#include "roster_view.h"
#include "slots.h"
#include "test_env.h"
#include "tz.h"
#include "uuid.h"

#define CTL CF_BINARY_DIR "/tools/caseflowctl/caseflowctl"
#define SERVICE CF_BINARY_DIR "/services/caseflow-scheduler"
#define CTL_TIMEOUT_MS 60000
#define EVENT_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS 40000
#define OPS_PORT 18184

#define T_ASSIGNED "caseflow.case.assigned"
#define T_CHANGE "caseflow.teleconsult.change-requested"
#define T_COMPLETED "caseflow.teleconsult.completed"
#define T_SCHEDULED "caseflow.teleconsult.scheduled"
#define T_REMINDER "caseflow.teleconsult.reminder-due"
#define T_TREATMENT "caseflow.treatment.booked"
#define T_CLOSED "caseflow.case.closed"
#define T_PENDING "caseflow.case.pending"
#define T_DLQ "caseflow.dlq.scheduler"
#define T_SPECIALISTS "caseflow.roster.specialists"

#define H24_S 50
#define H1_S 20
#define LOAD_CASES 120
#define LOAD_CAP 6

static const char *const out_topics[] = {T_SCHEDULED, T_REMINDER, T_TREATMENT,
                                         T_CLOSED,    T_PENDING,  T_DLQ};
#define NTOPICS (sizeof(out_topics) / sizeof(out_topics[0]))

static char run_id[24];
static char log_path[2][128];
static pid_t pids[2] = {-1, -1};
static struct cf_config *config;
static struct cf_registry *registry;
static struct cf_serde *serde;
static struct cf_kafka_consumer *consumer;
static json_t *seen;
static char sp_ny[64], sp_rem[64], sp_c1[64], sp_c2[64];
static int64_t rem_start; /* the reminder case's slot */

static const struct cf_config_entry table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
};

static void ctl(const char *const *args)
{
    free(cf_test_ctl(CTL, args, "/tmp/test-scheduler-ctl-XXXXXX", CTL_TIMEOUT_MS));
}

static void ctl_with_file(const char *cmd, const char *arg, const json_t *doc)
{
    cf_test_ctl_json(CTL, cmd, arg, doc, "/tmp/test-scheduler-doc-XXXXXX", CTL_TIMEOUT_MS);
}

static bool is_not_dlq(const char *topic)
{
    return strcmp(topic, T_DLQ) != 0;
}

static void read_one(int timeout_ms)
{
    cf_test_poll_into(consumer, serde, is_not_dlq, timeout_ms, seen);
}

static const char *vstr(const json_t *rec, const char *k)
{
    return json_string_value(json_object_get(json_object_get(rec, "value"), k));
}

static size_t count(const char *topic, const char *key, const char *status)
{
    size_t n = 0, i;
    json_t *rec;
    json_array_foreach(seen, i, rec)
    {
        if (strcmp(json_string_value(json_object_get(rec, "topic")), topic) == 0 &&
            strcmp(json_string_value(json_object_get(rec, "key")), key) == 0 &&
            (status == NULL || (vstr(rec, "status") != NULL && strcmp(vstr(rec, "status"), status) == 0)))
            n++;
    }
    return n;
}

/* The nth record of topic keyed key (status: of TeleconsultScheduled, or NULL), waiting. */
static const json_t *wait_nth(const char *topic, const char *key, const char *status, size_t nth,
                              int timeout_ms)
{
    int64_t deadline = cf_clock_mono_ms() + timeout_ms;
    for (;;) {
        size_t i, k = 0;
        json_t *rec;
        json_array_foreach(seen, i, rec)
        {
            if (strcmp(json_string_value(json_object_get(rec, "topic")), topic) == 0 &&
                strcmp(json_string_value(json_object_get(rec, "key")), key) == 0 &&
                (status == NULL ||
                 (vstr(rec, "status") != NULL && strcmp(vstr(rec, "status"), status) == 0)) &&
                k++ == nth)
                return rec;
        }
        if (cf_clock_mono_ms() > deadline)
            return NULL;
        read_one(200);
    }
}

static const json_t *expect(const char *topic, const char *key, const char *status, size_t nth)
{
    const json_t *rec = wait_nth(topic, key, status, nth, EVENT_TIMEOUT_MS);
    if (rec == NULL) {
        char *log = cf_test_slurp(log_path[0]);
        fail_msg("no record %zu (%s) on %s for case %s; scheduler log:\n%.20000s", nth,
                 status != NULL ? status : "-", topic, key, log);
    }
    return rec;
}

static void drain(int ms)
{
    int64_t deadline = cf_clock_mono_ms() + ms;
    while (cf_clock_mono_ms() < deadline)
        read_one(100);
}

static int64_t millis_of(const json_t *rec, const char *k)
{
    int64_t ms = 0;
    const char *text = vstr(rec, k);
    assert_non_null(text);
    assert_int_equal(cf_avro_parse_millis(text, &ms), CF_OK);
    return ms;
}

/* ---- Records --------------------------------------------------------------------------- */

static json_t *meta(const char *case_id, const char *correlation)
{
    char event_id[CF_UUID_LEN + 1], when[32];
    assert_int_equal(cf_uuid_v4(event_id), CF_OK);
    cf_avro_format_millis(cf_clock_wall_ms(), when, sizeof(when));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:n}", "event_id", event_id, "case_id", case_id,
                     "occurred_at", when, "producer", "test/1", "correlation_id", correlation,
                     "causation_id");
}

static json_t *every_day(const char *from_key, const char *to_key, const char *from,
                         const char *to)
{
    static const char *const days[] = {"MONDAY",   "TUESDAY",  "WEDNESDAY", "THURSDAY",
                                       "FRIDAY",   "SATURDAY", "SUNDAY"};
    json_t *list = json_array();
    for (int i = 0; i < 7; i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "weekday", days[i], from_key,
                                              from, to_key, to));
    return list;
}

/* A CaseAssigned for a fresh case (case_id set) of category; windows may be NULL (any time). */
static json_t *assigned(char case_id[CF_UUID_LEN + 1], const char *category, const char *zone,
                        const char *language, json_t *windows)
{
    char corr[CF_UUID_LEN + 1];
    assert_int_equal(cf_uuid_v4(case_id), CF_OK);
    assert_int_equal(cf_uuid_v4(corr), CF_OK);
    return json_pack("{s:o, s:s, s:s, s:s, s:b, s:s, s:b, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, "
                     "s:n, s:b, s:b, s:o}}",
                     "meta", meta(case_id, corr), "manager_id", "cm-test", "manager_name",
                     "Casey Manager", "manager_email", "casey@example.org", "interpreter_needed",
                     0, "priority", "ROUTINE", "returning_patient", 0, "category", category,
                     "recipient", "given_name", "Asha", "family_name", "Example", "language",
                     language, "country", "IN", "time_zone", zone, "email", "asha@example.org",
                     "phone", "consent_email", 1, "consent_sms", 0, "contact_windows",
                     windows != NULL ? windows : json_array());
}

static const char *case_corr(const json_t *scheduled_rec)
{
    return json_string_value(json_object_get(
        json_object_get(json_object_get(scheduled_rec, "value"), "meta"), "correlation_id"));
}

static void produce_one(const char *topic, json_t *rec)
{
    json_t *batch = json_pack("[o]", rec);
    ctl_with_file("produce", topic, batch);
    json_decref(batch);
}

static void change(const char *case_id, const json_t *booked, const char *action,
                   const char *token)
{
    produce_one(T_CHANGE, json_pack("{s:o, s:s, s:s, s:s, s:n}", "meta",
                                    meta(case_id, case_corr(booked)), "teleconsult_id",
                                    vstr(booked, "teleconsult_id"), "action", action, "token",
                                    token, "preferred_start"));
}

static void completed(const char *case_id, const json_t *booked, const char *outcome,
                      int sessions, int follow_ups)
{
    produce_one(T_COMPLETED,
                json_pack("{s:o, s:s, s:s, s:i, s:i, s:n}", "meta",
                          meta(case_id, case_corr(booked)), "teleconsult_id",
                          vstr(booked, "teleconsult_id"), "outcome", outcome, "sessions_planned",
                          sessions, "follow_ups_planned", follow_ups, "notes_code"));
}

static json_t *specialist(const char *id, const char *zone, const char *cond, json_t *hours,
                          int slot, int cap)
{
    return json_pack("{s:s, s:s, s:s, s:[s, s], s:[s], s:s, s:o, s:i, s:i, s:b}",
                     "specialist_id", id, "name", "Dr. Test Specialist", "email",
                     "specialist@example.org", "languages", "en", "hi", "conditions", cond,
                     "time_zone", zone, "weekly_hours", hours, "slot_minutes", slot, "daily_cap",
                     cap, "active", 1);
}

/* ---- Stack preparation ------------------------------------------------------------------- */

static void clear_redis(void)
{
    redisReply *keys = cf_test_redis_raw("127.0.0.1", 16379, "KEYS %s", "caseflow:scheduler:*");
    assert_non_null(keys);
    for (size_t i = 0; keys->type == REDIS_REPLY_ARRAY && i < keys->elements; i++) {
        redisReply *r = cf_test_redis_raw("127.0.0.1", 16379, "DEL %s", keys->element[i]->str);
        freeReplyObject(r);
    }
    freeReplyObject(keys);
}

/* Tombstones every specialist on the shared roster topic, then loads this run's. */
static void prepare_roster(void)
{
    struct cf_roster_view *view = NULL;
    char err[256];
    assert_int_equal(cf_roster_view_new(config, serde, T_SPECIALISTS, &view, err, sizeof(err)),
                     CF_OK);
    assert_int_equal(cf_roster_view_sync(view, 30000, err, sizeof(err)), CF_OK);
    json_t *gone = json_array();
    const char *id;
    json_t *entry;
    json_object_foreach((json_t *)cf_roster_view_entries(view), id, entry)
        json_array_append_new(gone, json_pack("{s:s, s:b}", "specialist_id", id, "delete", 1));
    cf_roster_view_free(view);
    if (json_array_size(gone) > 0) {
        json_t *doc = json_pack("{s:o}", "specialists", gone);
        ctl_with_file("roster", "load", doc);
        json_decref(doc);
    } else {
        json_decref(gone);
    }

    /* The reminder specialist works one 5-minute slot, ~100 s from now (New York time). */
    struct cf_tz *ny = NULL;
    struct cf_tz_civil c;
    enum cf_tz_local kind;
    static const char *const days[] = {"", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY",
                                       "FRIDAY", "SATURDAY", "SUNDAY"};
    assert_int_equal(cf_tz_new("America/New_York", &ny, NULL, 0), CF_OK);
    cf_test_wait_day_room("America/New_York", 100000 + 59999, 5);
    assert_int_equal(cf_tz_to_civil(ny, cf_clock_wall_ms() + 100000 + 59999, &c, NULL, 0), CF_OK);
    int from = c.hour * 60 + c.minute;
    if (from + 5 > 1440)
        fail_msg("the local day in New York ends within the slot");
    char hf[24], ht[24];
    snprintf(hf, sizeof(hf), "%02d:%02d", from / 60, from % 60);
    snprintf(ht, sizeof(ht), "%02d:%02d", (from + 5) / 60, (from + 5) % 60);
    assert_int_equal(cf_tz_from_civil(ny, c.year, c.month, c.day, from / 60, from % 60,
                                      &rem_start, NULL, &kind, NULL, 0),
                     CF_OK);
    cf_tz_free(ny);

    json_t *doc = json_pack(
        "{s:[o, o, o, o]}", "specialists",
        specialist(sp_ny, "America/New_York", "CIRRHOSIS",
                   every_day("start", "end", "09:00", "17:00"), 30, 8),
        specialist(sp_rem, "America/New_York", "WILSON_DISEASE",
                   json_pack("[{s:s, s:s, s:s}]", "weekday", days[c.weekday], "start", hf, "end",
                             ht),
                   5, 8),
        specialist(sp_c1, "America/New_York", "HEPATITIS_C",
                   every_day("start", "end", "08:00", "20:00"), 30, LOAD_CAP),
        specialist(sp_c2, "Europe/Istanbul", "HEPATITIS_C",
                   every_day("start", "end", "08:00", "20:00"), 30, LOAD_CAP));
    ctl_with_file("roster", "load", doc);
    json_decref(doc);
}

static void start_replica(int i)
{
    static char env[13][160];
    size_t ne = 0;
    if (pids[i] > 0)
        cf_test_kill_child(pids[i]);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_INSTANCE_ID=test-scheduler-%s-%d", run_id, i);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_LOG_LEVEL=info");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_BATCH_MAX_MS=50");
    snprintf(env[ne++], sizeof(env[0]),
             "CASEFLOW_SCHEDULER_TOKEN_SECRET=integration-test-secret-0123456789abcdef");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_SCHEDULER_LEAD_MINUTES=0");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_SCHEDULER_REMINDER_H24_SECONDS=%d", H24_S);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_SCHEDULER_REMINDER_H1_SECONDS=%d", H1_S);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_SCHEDULER_HTTP_PORT=%d", i == 0 ? OPS_PORT : 0);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_SCHEDULER_TIMER_MS=200");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_SCHEDULER_PENDING_RETRY_SECONDS=2");
    snprintf(env[ne++], sizeof(env[0]), "KAFKA_SESSION_TIMEOUT_MS=6000");
    snprintf(env[ne++], sizeof(env[0]), "KAFKA_HEARTBEAT_INTERVAL_MS=1000");
    pids[i] = cf_test_spawn_service(SERVICE, env, ne, log_path[i]);
}

static int setup(void **state)
{
    (void)state;
    cf_test_run_id(run_id, sizeof(run_id));
    for (int i = 0; i < 2; i++)
        snprintf(log_path[i], sizeof(log_path[i]), "/tmp/test-scheduler-%s-%d.log", run_id, i);
    snprintf(sp_ny, sizeof(sp_ny), "sp-%s-ny", run_id);
    snprintf(sp_rem, sizeof(sp_rem), "sp-%s-rem", run_id);
    snprintf(sp_c1, sizeof(sp_c1), "sp-%s-c1", run_id);
    snprintf(sp_c2, sizeof(sp_c2), "sp-%s-c2", run_id);
    if (cf_test_service_clients(table, sizeof(table) / sizeof(table[0]), &config, &registry,
                                &serde) != 0)
        return -1;
    seen = json_array();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_test_kill_child(pids[1]);
    cf_test_service_teardown(pids[0], consumer, seen, serde, registry, config);
    return 0;
}

/* The slot the service must pick for the Kolkata patient with sp_ny, searching from now_ms. */
static int64_t expected_slot(int64_t now_ms, const struct scheduler_range *w, size_t nw)
{
    struct scheduler_range hours[7];
    for (int d = 0; d < 7; d++)
        hours[d] = (struct scheduler_range){d + 1, 9 * 60, 17 * 60};
    struct scheduler_specialist sp = {"America/New_York", hours, 7, 30, 8, NULL, 0, NULL, 0};
    struct scheduler_patient pt = {"Asia/Kolkata", w, nw};
    struct scheduler_query q = {now_ms, 0, 30LL * 86400000, NULL};
    struct scheduler_slot slot;
    bool found = false;
    assert_int_equal(scheduler_find_slot(&sp, &pt, &q, &found, &slot, NULL, 0), CF_OK);
    assert_true(found);
    return slot.start_ms;
}

/* Minutes after local midnight of ms in zone. */
static int local_minutes(const char *zone, int64_t ms)
{
    struct cf_tz *tz = NULL;
    struct cf_tz_civil c;
    assert_int_equal(cf_tz_new(zone, &tz, NULL, 0), CF_OK);
    assert_int_equal(cf_tz_to_civil(tz, ms, &c, NULL, 0), CF_OK);
    cf_tz_free(tz);
    return c.hour * 60 + c.minute;
}

static const char *dlq_error(const json_t *rec)
{
    return json_string_value(json_object_get(json_object_get(rec, "headers"), "dlq.error"));
}

static void test_scheduler(void **state)
{
    (void)state;
    const char *create[] = {"topics", "create", NULL};
    const char *reg[] = {"schemas", "register", NULL};
    ctl(create);
    ctl(reg);
    clear_redis();
    /* Records other tests left on the input topics (CaseAssigned of test_assignment's cases,
     * caseflowctl's requests for cases no scheduler knows) would be worked off by this test's
     * scheduler: booked into its roster before its own cases, or dead-lettered. */
    static const char *const inputs[] = {T_ASSIGNED, T_CHANGE, T_COMPLETED, T_CLOSED,
                                         T_SCHEDULED, T_PENDING, T_REMINDER};
    cf_test_group_to_end(config, "caseflow-scheduler", inputs,
                         sizeof(inputs) / sizeof(inputs[0]));
    prepare_roster();
    assert_non_null(consumer = cf_test_consumer_at_end(config, out_topics, NTOPICS));
    start_replica(0);

    /* -- Reminders: booked, then the scheduler dies and comes back before they are due. -- */
    char rem[CF_UUID_LEN + 1];
    produce_one(T_ASSIGNED, assigned(rem, "WILSON_DISEASE", "Asia/Kolkata", "en", NULL));
    const json_t *rb = expect(T_SCHEDULED, rem, "BOOKED", 0);
    assert_true(millis_of(rb, "start") == rem_start);
    assert_string_equal(vstr(rb, "specialist_id"), sp_rem);
    kill(pids[0], SIGKILL);
    assert_int_equal(cf_test_wait_child(pids[0], STOP_TIMEOUT_MS), 128 + SIGKILL);
    pids[0] = -1;
    start_replica(0);

    /* -- CaseAssigned → BOOKED at the computed slot, in both zones. -- */
    struct scheduler_range w[7];
    for (int d = 0; d < 7; d++)
        w[d] = (struct scheduler_range){d + 1, 19 * 60, 23 * 60};
    char c1[CF_UUID_LEN + 1];
    int64_t before = cf_clock_wall_ms();
    produce_one(T_ASSIGNED, assigned(c1, "CIRRHOSIS", "Asia/Kolkata", "hi-IN",
                                     every_day("from", "to", "19:00", "23:00")));
    const json_t *b1 = expect(T_SCHEDULED, c1, "BOOKED", 0);
    int64_t after = cf_clock_wall_ms();
    int64_t s1 = millis_of(b1, "start");
    int64_t want_before = expected_slot(before, w, 7), want_after = expected_slot(after, w, 7);
    assert_true(s1 == want_before || s1 == want_after);
    int ny = local_minutes("America/New_York", s1), kol = local_minutes("Asia/Kolkata", s1);
    assert_true(ny >= 9 * 60 && ny + 30 <= 17 * 60);
    assert_true(kol >= 19 * 60 && kol + 30 <= 23 * 60);
    assert_true(millis_of(b1, "end") == s1 + 30 * 60000);
    assert_string_equal(vstr(b1, "specialist_id"), sp_ny);
    assert_string_equal(vstr(b1, "patient_time_zone"), "Asia/Kolkata");
    assert_string_equal(vstr(b1, "specialist_time_zone"), "America/New_York");
    assert_memory_equal(vstr(b1, "join_url"), "https://meet.example.org/j/", 27);
    assert_int_equal(strlen(vstr(b1, "join_url")), 27 + 22);
    assert_non_null(vstr(b1, "reschedule_token"));
    char old_resched[64];
    snprintf(old_resched, sizeof(old_resched), "%s", vstr(b1, "reschedule_token"));

    /* -- Reschedule with the right token. -- */
    change(c1, b1, "RESCHEDULE", old_resched);
    const json_t *r1 = expect(T_SCHEDULED, c1, "RESCHEDULED", 0);
    assert_string_equal(vstr(r1, "teleconsult_id"), vstr(b1, "teleconsult_id"));
    assert_true(millis_of(r1, "previous_start") == s1);
    assert_true(millis_of(r1, "start") != s1);
    assert_string_not_equal(vstr(r1, "reschedule_token"), old_resched);
    assert_string_not_equal(vstr(r1, "cancel_token"), vstr(b1, "cancel_token"));
    /* The old slot is free again: the next case gets it. */
    char c2[CF_UUID_LEN + 1];
    produce_one(T_ASSIGNED, assigned(c2, "CIRRHOSIS", "Asia/Kolkata", "en",
                                     every_day("from", "to", "19:00", "23:00")));
    const json_t *b2 = expect(T_SCHEDULED, c2, "BOOKED", 0);
    assert_true(millis_of(b2, "start") == s1);

    /* -- The stale token (of the booking before the reschedule) is refused. -- */
    change(c1, b1, "RESCHEDULE", old_resched);
    const json_t *dl = expect(T_DLQ, c1, NULL, 0);
    assert_non_null(strstr(dlq_error(dl), "the token does not match the current booking"));
    assert_null(strstr(dlq_error(dl), old_resched));

    /* -- Cancel → CANCELLED + CaseClosed WITHDRAWN. -- */
    change(c1, r1, "CANCEL", vstr(r1, "cancel_token"));
    const json_t *x1 = expect(T_SCHEDULED, c1, "CANCELLED", 0);
    const json_t *xv = json_object_get(x1, "value");
    assert_true(json_is_null(json_object_get(xv, "join_url")));
    assert_true(json_is_null(json_object_get(xv, "reschedule_token")));
    assert_true(json_is_null(json_object_get(xv, "cancel_token")));
    const json_t *cl = expect(T_CLOSED, c1, NULL, 0);
    assert_string_equal(vstr(cl, "reason"), "WITHDRAWN");
    assert_string_equal(vstr(cl, "note_code"), "TELECONSULT_CANCELLED");
    assert_string_equal(vstr(cl, "manager_id"), "cm-test");
    assert_true(json_is_null(json_object_get(json_object_get(cl, "value"), "recipient")));

    /* -- ELIGIBLE with 2 sessions → TreatmentBooked. -- */
    completed(c2, b2, "ELIGIBLE", 2, 1);
    const json_t *tb = expect(T_TREATMENT, c2, NULL, 0);
    const json_t *sessions = json_object_get(json_object_get(tb, "value"), "sessions");
    assert_int_equal(json_array_size(sessions), 2);
    int64_t d1 = 0, d2 = 0, arr = 0, dep = 0;
    char t[40];
    snprintf(t, sizeof(t), "%sT00:00:00Z",
             json_string_value(json_object_get(json_array_get(sessions, 0), "date")));
    assert_int_equal(cf_avro_parse_millis(t, &d1), CF_OK);
    snprintf(t, sizeof(t), "%sT00:00:00Z",
             json_string_value(json_object_get(json_array_get(sessions, 1), "date")));
    assert_int_equal(cf_avro_parse_millis(t, &d2), CF_OK);
    snprintf(t, sizeof(t), "%sT00:00:00Z", vstr(tb, "arrival_date"));
    assert_int_equal(cf_avro_parse_millis(t, &arr), CF_OK);
    snprintf(t, sizeof(t), "%sT00:00:00Z", vstr(tb, "departure_date"));
    assert_int_equal(cf_avro_parse_millis(t, &dep), CF_OK);
    assert_true(d2 - d1 == 15LL * 86400000);
    assert_true(d1 - arr == 86400000);
    assert_true(dep - d2 == 2LL * 86400000);
    assert_true(d1 >= s1 + 13LL * 86400000); /* travel lead: 14 clinic days after the call */
    assert_int_equal(json_array_size(json_object_get(json_object_get(tb, "value"), "follow_ups")),
                     1);

    /* -- NOT_ELIGIBLE → CaseClosed with the recipient. -- */
    char c3[CF_UUID_LEN + 1];
    produce_one(T_ASSIGNED, assigned(c3, "CIRRHOSIS", "Asia/Kolkata", "en",
                                     every_day("from", "to", "19:00", "23:00")));
    const json_t *b3 = expect(T_SCHEDULED, c3, "BOOKED", 0);
    completed(c3, b3, "NOT_ELIGIBLE", 0, 0);
    const json_t *cl3 = expect(T_CLOSED, c3, NULL, 0);
    assert_string_equal(vstr(cl3, "reason"), "NOT_ELIGIBLE");
    assert_true(json_is_object(json_object_get(json_object_get(cl3, "value"), "recipient")));

    /* -- NEEDS_TESTS → a new teleconsult with the same specialist, at least the wait (the
     * default 7 days) later; then NO_SHOW once → one rebooking, twice → CaseClosed. -- */
    char c4[CF_UUID_LEN + 1];
    produce_one(T_ASSIGNED, assigned(c4, "CIRRHOSIS", "Asia/Kolkata", "en",
                                     every_day("from", "to", "19:00", "23:00")));
    const json_t *b4 = expect(T_SCHEDULED, c4, "BOOKED", 0);
    int64_t reported = cf_clock_wall_ms();
    completed(c4, b4, "NEEDS_TESTS", 0, 0);
    const json_t *t4 = expect(T_SCHEDULED, c4, "BOOKED", 1);
    assert_string_not_equal(vstr(t4, "teleconsult_id"), vstr(b4, "teleconsult_id"));
    assert_string_equal(vstr(t4, "specialist_id"), sp_ny);
    assert_true(millis_of(t4, "start") >= reported + 7LL * 86400000);
    completed(c4, t4, "NO_SHOW", 0, 0);
    const json_t *n4 = expect(T_SCHEDULED, c4, "BOOKED", 2);
    assert_string_not_equal(vstr(n4, "teleconsult_id"), vstr(t4, "teleconsult_id"));
    assert_string_equal(vstr(n4, "specialist_id"), sp_ny);
    completed(c4, n4, "NO_SHOW", 0, 0);
    const json_t *cl4 = expect(T_CLOSED, c4, NULL, 0);
    assert_string_equal(vstr(cl4, "reason"), "WITHDRAWN");
    assert_string_equal(vstr(cl4, "note_code"), "NO_SHOW");
    assert_true(json_is_object(json_object_get(json_object_get(cl4, "value"), "recipient")));

    /* -- Two replicas, many cases, two specialists. -- */
    start_replica(1);
    static char ids[LOAD_CASES][CF_UUID_LEN + 1];
    json_t *batch = json_array();
    for (int i = 0; i < LOAD_CASES; i++)
        json_array_append_new(batch, assigned(ids[i], "HEPATITIS_C", "Asia/Kolkata", "en", NULL));
    ctl_with_file("produce", T_ASSIGNED, batch);
    json_decref(batch);
    json_t *slots = json_object(), *days = json_object();
    for (int i = 0; i < LOAD_CASES; i++) {
        const json_t *b = expect(T_SCHEDULED, ids[i], "BOOKED", 0);
        const char *sp = vstr(b, "specialist_id");
        assert_true(strcmp(sp, sp_c1) == 0 || strcmp(sp, sp_c2) == 0);
        char key[128], day[128];
        snprintf(key, sizeof(key), "%s/%s", sp, vstr(b, "start"));
        if (json_object_get(slots, key) != NULL)
            fail_msg("slot %s booked twice", key);
        json_object_set_new(slots, key, json_true());
        struct cf_tz *tz = NULL;
        struct cf_tz_civil c;
        assert_int_equal(cf_tz_new(strcmp(sp, sp_c1) == 0 ? "America/New_York" : "Europe/Istanbul",
                                   &tz, NULL, 0),
                         CF_OK);
        assert_int_equal(cf_tz_to_civil(tz, millis_of(b, "start"), &c, NULL, 0), CF_OK);
        cf_tz_free(tz);
        snprintf(day, sizeof(day), "%s/%04d-%02d-%02d", sp, c.year, c.month, c.day);
        json_int_t n = json_integer_value(json_object_get(days, day)) + 1;
        json_object_set_new(days, day, json_integer(n));
        if (n > LOAD_CAP)
            fail_msg("%s: %d consultations, cap %d", day, (int)n, LOAD_CAP);
    }
    json_decref(slots);
    json_decref(days);

    /* -- The reminders: each once, across the SIGKILL and restart. The H1 one is due up to
     * ~140 s after the roster was loaded, so the wait runs from its due time, not from now. -- */
    int64_t h1_due_in = rem_start - H1_S * 1000 - cf_clock_wall_ms() - 1000;
    if (h1_due_in > 0 && wait_nth(T_REMINDER, rem, NULL, 1, (int)h1_due_in) != NULL)
        fail_msg("the H1 reminder came %lld ms before it was due", (long long)h1_due_in);
    expect(T_REMINDER, rem, NULL, 0);
    expect(T_REMINDER, rem, NULL, 1);
    drain(3000);
    assert_int_equal(count(T_REMINDER, rem, NULL), 2);
    const json_t *ra = wait_nth(T_REMINDER, rem, NULL, 0, 0);
    const json_t *rz = wait_nth(T_REMINDER, rem, NULL, 1, 0);
    assert_string_equal(vstr(ra, "lead"), "H24");
    assert_string_equal(vstr(rz, "lead"), "H1");
    assert_true(millis_of(ra, "start") == rem_start);
    assert_string_equal(vstr(ra, "join_url"), vstr(rb, "join_url"));
    for (int i = 0; i < LOAD_CASES; i++)
        assert_int_equal(count(T_SCHEDULED, ids[i], "BOOKED"), 1);
    assert_int_equal(count(T_SCHEDULED, c1, "BOOKED"), 1);

    /* /metrics counts what happened. */
    struct cf_test_reply m = cf_test_http("GET", "http://127.0.0.1:18184/metrics", NULL, NULL, 0,
                                          5000);
    assert_int_equal(m.status, 200);
    assert_non_null(strstr(m.body, "caseflow_scheduler_bookings_total"));
    assert_non_null(strstr(m.body, "caseflow_scheduler_refused_changes_total"));
    free(m.body);

    for (int i = 0; i < 2; i++) {
        int status = cf_test_stop_child(&pids[i], STOP_TIMEOUT_MS);
        if (status != 0) {
            char *log = cf_test_slurp(log_path[i]);
            fail_msg("caseflow-scheduler %d exited %d; log:\n%.20000s", i, status, log);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scheduler),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
