/* test_case_to_treatment.c — assignment and the scheduler together on the real stack
 * (deploy/stack up), two replicas of each, as they run in production:
 *
 *   CaseValidated → CaseAssigned → TeleconsultScheduled BOOKED → TeleconsultReminderDue H24
 *   and H1 → (caseflowctl consult complete --outcome eligible --sessions 2) → TreatmentBooked.
 *
 * 120 validated cases (en and es speakers, New York, Madrid and Kolkata patients) go in as one
 * burst; while they flow, one replica of each service is SIGKILLed and started again. Then:
 * every case has exactly one CaseAssigned and one BOOKED, the manager speaks the patient's
 * language, no manager is above capacity, no (specialist, start) is booked twice and no
 * specialist's local day is above its cap. One more case is booked into the only slot of a
 * specialist working ~2 minutes from now, with the reminder leads shortened to 50 s and 20 s:
 * its two reminders come once each although a scheduler replica is killed after the booking.
 * One booked case is completed as eligible with two sessions and gets its TreatmentBooked.
 * No name, email or phone of the test's patients appears in any service's log.
 *
 * Independent of earlier runs: every care manager and specialist on the shared compacted
 * roster topics is tombstoned first, both services' consumer groups are moved to the end of
 * their topics, ids are the run's own, and the services use a Redis key prefix of the run's own. */
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
#include "kafka.h"
#include "log.h"
#include "redis_raw.h"
#include "registry.h"
#include "roster_view.h"
#include "test_env.h"
#include "tz.h"
#include "uuid.h"

#define CTL CF_BINARY_DIR "/tools/caseflowctl/caseflowctl"
#define ASSIGNMENT CF_BINARY_DIR "/services/caseflow-assignment"
#define SCHEDULER CF_BINARY_DIR "/services/caseflow-scheduler"
#define CTL_TIMEOUT_MS 60000
#define EVENT_TIMEOUT_MS 90000 /* a killed member's partitions move after its 6 s session */
#define STOP_TIMEOUT_MS 40000

#define T_VALIDATED "caseflow.case.validated"
#define T_CLOSED "caseflow.case.closed"
#define T_ASSIGNED "caseflow.case.assigned"
#define T_PENDING "caseflow.case.pending"
#define T_CHANGE "caseflow.teleconsult.change-requested"
#define T_COMPLETED "caseflow.teleconsult.completed"
#define T_SCHEDULED "caseflow.teleconsult.scheduled"
#define T_REMINDER "caseflow.teleconsult.reminder-due"
#define T_TREATMENT "caseflow.treatment.booked"
#define T_MANAGERS "caseflow.roster.care-managers"
#define T_SPECIALISTS "caseflow.roster.specialists"

#define CASES 120
#define MANAGERS 3
#define CAPACITY 50 /* 150 places for 121 cases: room for all, but not far from full */
#define DAILY_CAP 10
#define H24_S 50
#define H1_S 20

/* The patients' personal data: none of it may reach a log line. */
#define GIVEN "Wilhelmina"
#define FAMILY "Journeytester"
#define EMAIL "wilhelmina.journeytester@example.org"
#define PHONE "+34600111222"

static const char *const read_topics[] = {T_ASSIGNED, T_SCHEDULED, T_REMINDER, T_TREATMENT,
                                          T_PENDING,  "caseflow.dlq.assignment",
                                          "caseflow.dlq.scheduler"};
/* What each service's consumer group reads (its inputs and its own outputs, read back). */
static const char *const assignment_topics[] = {T_VALIDATED, T_CLOSED, T_ASSIGNED, T_PENDING};
static const char *const scheduler_topics[] = {T_ASSIGNED, T_CHANGE,  T_COMPLETED, T_CLOSED,
                                               T_SCHEDULED, T_PENDING, T_REMINDER};

/* service 0, 1: assignment replicas; 2, 3: scheduler replicas. */
#define SERVICES 4
static char run_id[24];
static char prefix[96];
static char log_path[SERVICES][128];
static pid_t pids[SERVICES] = {-1, -1, -1, -1};
static struct cf_config *config;
static struct cf_registry *registry;
static struct cf_serde *serde;
static struct cf_kafka_consumer *consumer;
static json_t *seen;
static char cm_id[MANAGERS][64];
static char sp_ny[64], sp_mad[64], sp_kol[64], sp_rem[64];
static int64_t rem_start;

static const struct cf_config_entry table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
};

/* ---- Helpers --------------------------------------------------------------------------- */

static char *ctl(const char *const *args)
{
    return cf_test_ctl(CTL, args, "/tmp/test-c2t-ctl-XXXXXX", CTL_TIMEOUT_MS);
}

static void ctl_with_file(const char *cmd, const char *arg, const json_t *doc)
{
    cf_test_ctl_json(CTL, cmd, arg, doc, "/tmp/test-c2t-doc-XXXXXX", CTL_TIMEOUT_MS);
}

static void dump_logs(void)
{
    for (int i = 0; i < SERVICES; i++)
        if (log_path[i][0] != '\0' && access(log_path[i], R_OK) == 0) {
            char *log = cf_test_slurp(log_path[i]);
            size_t len = strlen(log);
            fprintf(stderr, "---- %s (last 8000 bytes) ----\n%s\n", log_path[i],
                    log + (len > 8000 ? len - 8000 : 0));
            free(log);
        }
}

static bool decode_all(const char *topic)
{
    return strncmp(topic, "caseflow.dlq.", 13) != 0;
}

static const char *vstr(const json_t *rec, const char *k)
{
    return json_string_value(json_object_get(json_object_get(rec, "value"), k));
}

static bool matches(const json_t *rec, const char *topic, const char *key, const char *status)
{
    return strcmp(json_string_value(json_object_get(rec, "topic")), topic) == 0 &&
           (key == NULL || strcmp(json_string_value(json_object_get(rec, "key")), key) == 0) &&
           (status == NULL ||
            (vstr(rec, "status") != NULL && strcmp(vstr(rec, "status"), status) == 0));
}

static size_t count(const char *topic, const char *key, const char *status)
{
    size_t n = 0, i;
    json_t *rec;
    json_array_foreach(seen, i, rec) n += matches(rec, topic, key, status) ? 1 : 0;
    return n;
}

/* The nth record of topic keyed key (status: of TeleconsultScheduled, or NULL), reading until
 * it comes or timeout_ms passes; NULL then. */
static const json_t *wait_nth(const char *topic, const char *key, const char *status, size_t nth,
                              int64_t timeout_ms)
{
    int64_t deadline = cf_clock_mono_ms() + timeout_ms;
    for (;;) {
        size_t i, k = 0;
        json_t *rec;
        json_array_foreach(seen, i, rec)
        {
            if (matches(rec, topic, key, status) && k++ == nth)
                return rec;
        }
        if (cf_clock_mono_ms() > deadline)
            return NULL;
        cf_test_poll_into(consumer, serde, decode_all, 200, seen);
    }
}

static const json_t *expect(const char *topic, const char *key, const char *status, size_t nth)
{
    const json_t *rec = wait_nth(topic, key, status, nth, EVENT_TIMEOUT_MS);
    if (rec == NULL) {
        dump_logs();
        fail_msg("no record %zu (%s) on %s for case %s", nth, status != NULL ? status : "-",
                 topic, key);
    }
    if (json_object_get(rec, "value") == NULL)
        fail_msg("the record on %s for case %s does not decode", topic, key);
    return rec;
}

static void drain(int ms)
{
    int64_t deadline = cf_clock_mono_ms() + ms;
    while (cf_clock_mono_ms() < deadline)
        cf_test_poll_into(consumer, serde, decode_all, 100, seen);
}

static int64_t millis_of(const json_t *rec, const char *k)
{
    int64_t ms = 0;
    const char *text = vstr(rec, k);
    assert_non_null(text);
    assert_int_equal(cf_avro_parse_millis(text, &ms), CF_OK);
    return ms;
}

/* Days since 1970-01-01 of a "YYYY-MM-DD" JSON string (an Avro date). */
static int64_t day_of(const json_t *date)
{
    char text[40];
    int64_t ms = 0;
    assert_true(json_is_string(date));
    snprintf(text, sizeof(text), "%sT00:00:00Z", json_string_value(date));
    assert_int_equal(cf_avro_parse_millis(text, &ms), CF_OK);
    return ms / 86400000;
}

static struct cf_tz_civil civil(const char *zone, int64_t ms)
{
    struct cf_tz *tz = NULL;
    struct cf_tz_civil c;
    assert_int_equal(cf_tz_new(zone, &tz, NULL, 0), CF_OK);
    assert_int_equal(cf_tz_to_civil(tz, ms, &c, NULL, 0), CF_OK);
    cf_tz_free(tz);
    return c;
}

/* ---- Records --------------------------------------------------------------------------- */

static json_t *every_day(const char *from, const char *to)
{
    static const char *const days[] = {"MONDAY", "TUESDAY",  "WEDNESDAY", "THURSDAY",
                                       "FRIDAY", "SATURDAY", "SUNDAY"};
    json_t *list = json_array();
    for (int i = 0; i < 7; i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "weekday", days[i], "start",
                                              from, "end", to));
    return list;
}

static json_t *specialist(const char *id, const char *zone, const char *language,
                          const char *condition, json_t *hours, int slot)
{
    return json_pack("{s:s, s:s, s:s, s:[s, s], s:[s], s:s, s:o, s:i, s:i}", "specialist_id", id,
                     "name", "Dr. Test Specialist", "email", "specialist@example.org",
                     "languages", "en", language, "conditions", condition, "time_zone", zone,
                     "weekly_hours", hours, "slot_minutes", slot, "daily_cap", DAILY_CAP);
}

/* A CaseValidated for a fresh case (case_id set); patient i of three kinds. */
static json_t *validated(char case_id[CF_UUID_LEN + 1], const char *category, int kind)
{
    static const char *const language[] = {"en", "es", "en"};
    static const char *const country[] = {"US", "ES", "IN"};
    static const char *const zone[] = {"America/New_York", "Europe/Madrid", "Asia/Kolkata"};
    char event_id[CF_UUID_LEN + 1], correlation[CF_UUID_LEN + 1], patient_key[80], when[32];
    assert_int_equal(cf_uuid_v4(case_id), CF_OK);
    assert_int_equal(cf_uuid_v4(event_id), CF_OK);
    assert_int_equal(cf_uuid_v4(correlation), CF_OK);
    snprintf(patient_key, sizeof(patient_key), "pk-%s", case_id);
    cf_avro_format_millis(cf_clock_wall_ms(), when, sizeof(when));
    json_t *v = json_pack(
        "{s:{s:s, s:s, s:s, s:s, s:s, s:n}, s:s, s:[], s:s, s:s,"
        " s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:[]}}",
        "meta", "event_id", event_id, "case_id", case_id, "occurred_at", when, "producer",
        "test/0", "correlation_id", correlation, "causation_id", "priority", "ROUTINE", "reasons",
        "category", category, "patient_key", patient_key, "recipient", "given_name", GIVEN,
        "family_name", FAMILY, "language", language[kind], "country", country[kind], "time_zone",
        zone[kind], "email", EMAIL, "phone", PHONE, "consent_email", 1, "consent_sms", 1,
        "contact_windows");
    assert_non_null(v);
    return v;
}

/* ---- Stack preparation ------------------------------------------------------------------ */

/* Tombstones of every entry live on the compacted roster topic, appended to list as
 * {"<id_field>": id, "delete": true}. */
static void tombstones(const char *topic, const char *id_field, json_t *list)
{
    struct cf_roster_view *view = NULL;
    char err[256] = "";
    assert_int_equal(cf_roster_view_new(config, serde, topic, &view, err, sizeof(err)), CF_OK);
    if (cf_roster_view_sync(view, 30000, err, sizeof(err)) != CF_OK)
        fail_msg("roster sync of %s: %s", topic, err);
    const char *id;
    json_t *entry;
    json_object_foreach((json_t *)cf_roster_view_entries(view), id, entry)
        json_array_append_new(list, json_pack("{s:s, s:b}", id_field, id, "delete", 1));
    cf_roster_view_free(view);
}

/* Replaces the whole roster with the run's: three care managers, three specialists for
 * CIRRHOSIS in three zones, and one for WILSON_DISEASE whose only slot (5 minutes, New York
 * time) starts ~100-160 s from now, for the reminders. */
static void load_roster(void)
{
    json_t *managers = json_array(), *specialists = json_array();
    tombstones(T_MANAGERS, "manager_id", managers);
    tombstones(T_SPECIALISTS, "specialist_id", specialists);

    static const char *const languages[MANAGERS][2] = {{"en", "es"}, {"en", "tr"}, {"es", "en"}};
    for (int i = 0; i < MANAGERS; i++) {
        snprintf(cm_id[i], sizeof(cm_id[i]), "cm-%s-%d", run_id, i);
        json_array_append_new(managers,
                              json_pack("{s:s, s:s, s:s, s:[s, s], s:[s], s:i, s:b}",
                                        "manager_id", cm_id[i], "name", "Test Manager", "email",
                                        "manager@example.org", "languages", languages[i][0],
                                        languages[i][1], "countries", i == 2 ? "ES" : "US",
                                        "capacity", CAPACITY, "urgent_capable", 1));
    }

    cf_test_wait_day_room("America/New_York", 100000 + 59999, 5);
    struct cf_tz_civil c = civil("America/New_York", cf_clock_wall_ms() + 100000 + 59999);
    int from = c.hour * 60 + c.minute;
    if (from + 5 > 1440)
        fail_msg("the local day in New York ends within the slot");
    static const char *const days[] = {"", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY",
                                       "FRIDAY", "SATURDAY", "SUNDAY"};
    char hf[24], ht[24];
    snprintf(hf, sizeof(hf), "%02d:%02d", from / 60, from % 60);
    snprintf(ht, sizeof(ht), "%02d:%02d", (from + 5) / 60, (from + 5) % 60);
    struct cf_tz *ny = NULL;
    enum cf_tz_local kind;
    assert_int_equal(cf_tz_new("America/New_York", &ny, NULL, 0), CF_OK);
    assert_int_equal(cf_tz_from_civil(ny, c.year, c.month, c.day, from / 60, from % 60,
                                      &rem_start, NULL, &kind, NULL, 0),
                     CF_OK);
    cf_tz_free(ny);

    snprintf(sp_ny, sizeof(sp_ny), "sp-%s-ny", run_id);
    snprintf(sp_mad, sizeof(sp_mad), "sp-%s-mad", run_id);
    snprintf(sp_kol, sizeof(sp_kol), "sp-%s-kol", run_id);
    snprintf(sp_rem, sizeof(sp_rem), "sp-%s-rem", run_id);
    json_array_append_new(specialists, specialist(sp_ny, "America/New_York", "es", "CIRRHOSIS",
                                                  every_day("07:00", "21:00"), 30));
    json_array_append_new(specialists, specialist(sp_mad, "Europe/Madrid", "es", "CIRRHOSIS",
                                                  every_day("08:00", "20:00"), 30));
    json_array_append_new(specialists, specialist(sp_kol, "Asia/Kolkata", "hi", "CIRRHOSIS",
                                                  every_day("09:00", "18:00"), 30));
    json_array_append_new(
        specialists,
        specialist(sp_rem, "America/New_York", "es", "WILSON_DISEASE",
                   json_pack("[{s:s, s:s, s:s}]", "weekday", days[c.weekday], "start", hf, "end",
                             ht),
                   5));
    json_t *doc = json_pack("{s:o, s:o}", "care_managers", managers, "specialists", specialists);
    ctl_with_file("roster", "load", doc);
    json_decref(doc);
}

static void start_service(int which)
{
    static char env[13][160];
    size_t ne = 0;
    bool scheduler = which >= 2;
    cf_test_kill_child(pids[which]);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_INSTANCE_ID=test-c2t-%s-%d", run_id, which);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_LOG_LEVEL=info");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_BATCH_MAX_MS=50");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_REDIS_KEY_PREFIX=%s", prefix);
    /* A killed member's partitions move on after 6 s, not the default 45 s. */
    snprintf(env[ne++], sizeof(env[0]), "KAFKA_SESSION_TIMEOUT_MS=6000");
    snprintf(env[ne++], sizeof(env[0]), "KAFKA_HEARTBEAT_INTERVAL_MS=1000");
    if (!scheduler) {
        snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_ASSIGNMENT_HTTP_PORT=0");
        snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_ASSIGNMENT_TIMER_MS=200");
        /* A case claimed by the killed replica comes back after 30 s. */
        snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_ASSIGNMENT_LEASE_SECONDS=30");
    } else {
        snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_SCHEDULER_HTTP_PORT=0");
        snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_SCHEDULER_TIMER_MS=200");
        snprintf(env[ne++], sizeof(env[0]),
                 "CASEFLOW_SCHEDULER_TOKEN_SECRET=integration-test-secret-0123456789abcdef");
        snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_SCHEDULER_LEAD_MINUTES=0");
        snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_SCHEDULER_REMINDER_H24_SECONDS=%d", H24_S);
        snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_SCHEDULER_REMINDER_H1_SECONDS=%d", H1_S);
    }
    pids[which] = cf_test_spawn_service(scheduler ? SCHEDULER : ASSIGNMENT, env, ne,
                                        log_path[which]);
}

static void kill_and_restart(int which)
{
    assert_int_equal(kill(pids[which], SIGKILL), 0);
    assert_int_equal(cf_test_wait_child(pids[which], STOP_TIMEOUT_MS), 128 + SIGKILL);
    pids[which] = -1;
    start_service(which);
}

static int setup(void **state)
{
    (void)state;
    /* The test's own roster views warn about other runs' odd records: not this test's news. */
    cf_log_init("test_case_to_treatment", CF_LOG_ERROR);
    cf_test_run_id(run_id, sizeof(run_id));
    snprintf(prefix, sizeof(prefix), "caseflow:test-c2t-%s:", run_id);
    for (int i = 0; i < SERVICES; i++)
        snprintf(log_path[i], sizeof(log_path[i]), "/tmp/test-c2t-%s-%d.log", run_id, i);
    if (cf_test_service_clients(table, sizeof(table) / sizeof(table[0]), &config, &registry,
                                &serde) != 0)
        return -1;
    seen = json_array();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 1; i < SERVICES; i++)
        cf_test_kill_child(pids[i]);
    cf_test_service_teardown(pids[0], consumer, seen, serde, registry, config);
    /* The run's keys have TTLs; deleting them keeps a long-lived Redis small all the same. */
    char pattern[128];
    snprintf(pattern, sizeof(pattern), "%s*", prefix);
    freeReplyObject(cf_test_redis_raw(
        "127.0.0.1", 16379, "EVAL %s 0 %s",
        "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end return 0",
        pattern));
    return 0;
}

/* ---- The test ---------------------------------------------------------------------------- */

/* Fails with the first dead letter of one of the run's cases (cases: case id -> true), with its
 * source topic and error. */
static void no_dead_letters(const json_t *cases)
{
    size_t i;
    json_t *rec;
    json_array_foreach(seen, i, rec)
    {
        if (strncmp(json_string_value(json_object_get(rec, "topic")), "caseflow.dlq.", 13) != 0 ||
            json_object_get(cases, json_string_value(json_object_get(rec, "key"))) == NULL)
            continue;
        const json_t *h = json_object_get(rec, "headers");
        dump_logs();
        fail_msg("dead letter on %s for %s from %s: %s",
                 json_string_value(json_object_get(rec, "topic")),
                 json_string_value(json_object_get(rec, "key")),
                 json_string_value(json_object_get(h, "dlq.source.topic")),
                 json_string_value(json_object_get(h, "dlq.error")));
    }
}

/* Every case of ids[0..n) assigned once and booked once, within the rules. */
static void check_load(char (*ids)[CF_UUID_LEN + 1], const int *kinds, size_t n)
{
    json_t *load = json_object(), *slots = json_object(), *days = json_object();
    for (size_t i = 0; i < n; i++) {
        const json_t *a = expect(T_ASSIGNED, ids[i], NULL, 0);
        const char *manager = vstr(a, "manager_id");
        /* es speakers go to a manager who speaks es (cm 0 or 2), the others to any. */
        if (kinds[i] == 1)
            assert_true(strcmp(manager, cm_id[0]) == 0 || strcmp(manager, cm_id[2]) == 0);
        json_object_set_new(load, manager,
                            json_integer(json_integer_value(json_object_get(load, manager)) + 1));

        const json_t *b = expect(T_SCHEDULED, ids[i], "BOOKED", 0);
        const char *sp = vstr(b, "specialist_id");
        const char *zone = strcmp(sp, sp_ny) == 0    ? "America/New_York"
                           : strcmp(sp, sp_mad) == 0 ? "Europe/Madrid"
                           : strcmp(sp, sp_kol) == 0 ? "Asia/Kolkata"
                                                     : NULL;
        if (zone == NULL)
            fail_msg("case %s booked with %s, not one of the run's CIRRHOSIS specialists", ids[i],
                     sp);
        /* The patient's language: es speakers only with the es-speaking specialists. */
        if (kinds[i] == 1)
            assert_true(strcmp(sp, sp_kol) != 0);
        char key[160], day[160];
        snprintf(key, sizeof(key), "%s/%s", sp, vstr(b, "start"));
        if (json_object_get(slots, key) != NULL)
            fail_msg("slot %s booked twice", key);
        json_object_set_new(slots, key, json_true());
        struct cf_tz_civil c = civil(zone, millis_of(b, "start"));
        snprintf(day, sizeof(day), "%s/%04d-%02d-%02d", sp, c.year, c.month, c.day);
        json_int_t on_day = json_integer_value(json_object_get(days, day)) + 1;
        json_object_set_new(days, day, json_integer(on_day));
        if (on_day > DAILY_CAP)
            fail_msg("%s: %d consultations, cap %d", day, (int)on_day, DAILY_CAP);
    }
    const char *manager;
    json_t *v;
    json_object_foreach(load, manager, v)
    {
        if (json_integer_value(v) > CAPACITY)
            fail_msg("%s has %d cases, capacity %d", manager, (int)json_integer_value(v),
                     CAPACITY);
    }
    json_decref(load);
    json_decref(slots);
    json_decref(days);
    drain(3000); /* duplicates, if any, would come within the same transactions' reach */
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(count(T_ASSIGNED, ids[i], NULL), 1);
        assert_int_equal(count(T_SCHEDULED, ids[i], NULL), 1);
    }
}

static void test_case_to_treatment(void **state)
{
    (void)state;
    const char *create[] = {"topics", "create", NULL};
    const char *reg[] = {"schemas", "register", NULL};
    free(ctl(create));
    free(ctl(reg));
    cf_test_group_to_end(config, "caseflow-assignment", assignment_topics,
                 sizeof(assignment_topics) / sizeof(assignment_topics[0]));
    cf_test_group_to_end(config, "caseflow-scheduler", scheduler_topics,
                 sizeof(scheduler_topics) / sizeof(scheduler_topics[0]));
    assert_non_null(consumer = cf_test_consumer_at_end(
                        config, read_topics, sizeof(read_topics) / sizeof(read_topics[0])));
    load_roster();
    for (int i = 0; i < SERVICES; i++)
        start_service(i);

    /* -- The reminder case, booked into the one slot ~2 minutes ahead. -- */
    char rem[CF_UUID_LEN + 1];
    json_t *batch = json_pack("[o]", validated(rem, "WILSON_DISEASE", 0));
    ctl_with_file("produce", T_VALIDATED, batch);
    json_decref(batch);
    const json_t *rb = expect(T_SCHEDULED, rem, "BOOKED", 0);
    assert_true(millis_of(rb, "start") == rem_start);
    assert_string_equal(vstr(rb, "specialist_id"), sp_rem);

    /* -- The burst, with one replica of each service killed and restarted in the middle. -- */
    static char ids[CASES][CF_UUID_LEN + 1];
    int kinds[CASES];
    batch = json_array();
    for (int i = 0; i < CASES; i++) {
        kinds[i] = i % 3;
        json_array_append_new(batch, validated(ids[i], "CIRRHOSIS", kinds[i]));
    }
    ctl_with_file("produce", T_VALIDATED, batch);
    json_decref(batch);
    expect(T_SCHEDULED, ids[CASES / 4], "BOOKED", 0);
    kill_and_restart(1);
    kill_and_restart(3);
    check_load(ids, kinds, CASES);

    /* -- Eligible with two sessions → TreatmentBooked. -- */
    const char *complete[] = {"consult",    "complete", ids[0], "--outcome", "eligible",
                              "--sessions", "2",        NULL};
    free(ctl(complete));
    const json_t *tb = expect(T_TREATMENT, ids[0], NULL, 0);
    const json_t *sessions = json_object_get(json_object_get(tb, "value"), "sessions");
    assert_int_equal(json_array_size(sessions), 2);
    int64_t d1 = day_of(json_object_get(json_array_get(sessions, 0), "date"));
    int64_t d2 = day_of(json_object_get(json_array_get(sessions, 1), "date"));
    int64_t arrival = day_of(json_object_get(json_object_get(tb, "value"), "arrival_date"));
    int64_t departure = day_of(json_object_get(json_object_get(tb, "value"), "departure_date"));
    assert_int_equal(d2 - d1, 15);
    assert_int_equal(d1 - arrival, 1);
    assert_int_equal(departure - d2, 2);

    /* -- The reminders: each once, though a scheduler replica was killed after the booking.
     * The wait runs from the H1 reminder's due time; none may come before it is due. -- */
    int64_t h1_due_in = rem_start - H1_S * 1000 - cf_clock_wall_ms() - 1000;
    if (h1_due_in > 0 && wait_nth(T_REMINDER, rem, NULL, 1, h1_due_in) != NULL)
        fail_msg("the H1 reminder came %lld ms before it was due", (long long)h1_due_in);
    const json_t *ra = expect(T_REMINDER, rem, NULL, 0);
    const json_t *rz = expect(T_REMINDER, rem, NULL, 1);
    assert_string_equal(vstr(ra, "lead"), "H24");
    assert_string_equal(vstr(rz, "lead"), "H1");
    assert_true(millis_of(rz, "start") == rem_start);
    assert_string_equal(vstr(rz, "join_url"), vstr(rb, "join_url"));
    drain(3000);
    assert_int_equal(count(T_REMINDER, rem, NULL), 2);

    /* Nothing waited and nothing was dead-lettered. */
    for (int i = 0; i < CASES; i++)
        assert_int_equal(count(T_PENDING, ids[i], NULL), 0);
    json_t *cases = json_object();
    json_object_set_new(cases, rem, json_true());
    for (int i = 0; i < CASES; i++)
        json_object_set_new(cases, ids[i], json_true());
    no_dead_letters(cases);
    json_decref(cases);

    for (int i = 0; i < SERVICES; i++) {
        int status = cf_test_stop_child(&pids[i], STOP_TIMEOUT_MS);
        if (status != 0) {
            dump_logs();
            fail_msg("service %d exited %d", i, status);
        }
    }
    /* No personal data in any log line. */
    for (int i = 0; i < SERVICES; i++) {
        char *log = cf_test_slurp(log_path[i]);
        assert_true(strlen(log) > 0);
        const char *personal[] = {GIVEN, FAMILY, EMAIL, PHONE};
        for (size_t k = 0; k < 4; k++)
            if (strstr(log, personal[k]) != NULL)
                fail_msg("%s appears in %s", personal[k], log_path[i]);
        free(log);
        unlink(log_path[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_case_to_treatment),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
