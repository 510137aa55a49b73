/* test_assignment.c — caseflow-assignment against the real stack (deploy/stack up):
 *
 *   1. the Lua script on the real Redis decides exactly as assignment_match(), the reference
 *      rule, on thousands of random rosters, loads and cases (and answers a second call for the
 *      same case without assigning it again);
 *   2. end to end, with the real binary: care managers produced to the roster topic, CaseValidated
 *      records produced → CaseAssigned with the right manager for language and region,
 *      interpreter, urgency and a returning patient; full capacity → CasePending NO_ROOM /
 *      NO_URGENT_ROOM; a CaseClosed frees a manager and the pending URGENT case is served before
 *      an older ROUTINE one; a case waiting longer than the configured limit raises
 *      CasePending alert=true; exactly one CaseAssigned per case; /metrics; no personal data in
 *      the log; SIGTERM exits 0;
 *   3. two replicas (two processes, different CASEFLOW_INSTANCE_ID) under a few hundred cases
 *      and tight capacity, one of them SIGKILLed mid-stream and restarted, then closes freeing
 *      capacity while both serve the queue: no case assigned twice, no manager above
 *      capacity, every case assigned once or pending.
 *
 * The stack is shared and long-lived: at the start every care manager on the (compacted, shared)
 * roster topic is tombstoned, the run uses manager ids of its own, the "assignment:*" Redis keys
 * are deleted, and the service's consumer group is moved to the end of its topics (a group
 * that never committed would otherwise start at the beginning of topics other runs filled).
 * Every wait is bounded; children still running at the end are killed. */
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

#include "assignment_events.h"
#include "assignment_roster.h"
#include "assignment_store.h"
#include "avro_serde.h"
#include "child.h"
#include "clock.h"
#include "config.h"
#include "http_client.h"
#include "kafka.h"
#include "log.h"
#include "matching.h"
#include "redis.h"
#include "redis_raw.h"
#include "registry.h"
#include "roster_view.h"
#include "test_env.h"
#include "uuid.h"

#define CTL CF_BINARY_DIR "/tools/caseflowctl/caseflowctl"
#define SERVICE CF_BINARY_DIR "/services/caseflow-assignment"

#define REDIS_HOST "127.0.0.1"
#define REDIS_PORT 16379
#define CTL_TIMEOUT_MS 60000
#define EVENT_TIMEOUT_MS 60000 /* the first one: transactions, group join, registry */
#define STOP_TIMEOUT_MS 40000
#define OPS_PORT 18184
#define ALERT_SECONDS 3

#define T_VALIDATED "caseflow.case.validated"
#define T_CLOSED "caseflow.case.closed"
#define T_ASSIGNED "caseflow.case.assigned"
#define T_PENDING "caseflow.case.pending"
#define T_MANAGERS "caseflow.roster.care-managers"
#define T_DLQ "caseflow.dlq.assignment"
#define GROUP "caseflow-assignment"

static const char *const read_topics[] = {T_ASSIGNED, T_PENDING, T_DLQ};
static const char *const group_topics[] = {T_VALIDATED, T_CLOSED, T_ASSIGNED, T_PENDING};

static char run_id[24];
static char log_path[2][128];
static pid_t pids[2] = {-1, -1};
static struct cf_config *config;
static struct cf_registry *registry;
static struct cf_serde *serde;
static struct cf_kafka_consumer *consumer;
static struct cf_kafka_producer *producer;
static json_t *seen;

static const struct cf_config_entry table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
};

/* ---- Stack helpers -------------------------------------------------------------------- */

static void ctl(const char *const *args)
{
    free(cf_test_ctl(CTL, args, "/tmp/test-assignment-ctl-XXXXXX", CTL_TIMEOUT_MS));
}

/* Deletes every key matching pattern (with the module's prefix) behind the module's back. */
static void redis_delete(const char *pattern)
{
    redisReply *reply = cf_test_redis_raw(
        REDIS_HOST, REDIS_PORT,
        "EVAL %s 0 %s",
        "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
        "redis.call('DEL', k) n = n + 1 end return n",
        pattern);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    freeReplyObject(reply);
}

static void produce_raw(const char *topic, const char *key, const void *value, size_t len)
{
    char err[512] = "";
    if (cf_kafka_produce(producer, topic, key, strlen(key), value, len, NULL, 0, err,
                         sizeof(err)) != CF_OK)
        fail_msg("produce to %s: %s", topic, err);
}

static void produce_json(const char *topic, const char *key, const json_t *value)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    char err[512] = "";
    if (cf_serde_encode_json(serde, topic, value, &buf, &len, err, sizeof(err)) != CF_OK)
        fail_msg("encode for %s: %s", topic, err);
    produce_raw(topic, key, buf, len);
    free(buf);
}

static void flush(void)
{
    char err[512] = "";
    if (cf_kafka_producer_flush(producer, 30000, err, sizeof(err)) != CF_OK)
        fail_msg("flush: %s", err);
}

/* Tombstones every care manager on the roster topic now. */
static void tombstone_roster(void)
{
    char err[512] = "";
    struct cf_roster_view *view = NULL;
    assert_int_equal(cf_roster_view_new(config, serde, T_MANAGERS, &view, err, sizeof(err)), CF_OK);
    if (cf_roster_view_sync(view, 30000, err, sizeof(err)) != CF_OK)
        fail_msg("roster sync: %s", err);
    const char *id;
    json_t *entry;
    json_object_foreach((json_t *)cf_roster_view_entries(view), id, entry)
    {
        (void)entry;
        produce_raw(T_MANAGERS, id, NULL, 0);
    }
    flush();
    cf_roster_view_free(view);
}

/* ---- Records --------------------------------------------------------------------------- */

static json_t *manager(const char *id, const char *name, const char *email, json_t *languages,
                       json_t *countries, int capacity, bool urgent)
{
    char event_id[CF_UUID_LEN + 1];
    assert_int_equal(cf_uuid_v4(event_id), CF_OK);
    json_t *m = json_pack("{s:{s:s,s:n,s:I,s:s,s:s,s:n},s:s,s:s,s:s,s:o,s:o,s:i,s:b,s:b}", "meta",
                          "event_id", event_id, "case_id", "occurred_at",
                          (json_int_t)cf_clock_wall_ms(), "producer", "test/0", "correlation_id",
                          event_id, "causation_id", "manager_id", id, "name", name, "email", email,
                          "languages", languages, "countries", countries, "capacity", capacity,
                          "urgent_capable", urgent, "active", 1);
    assert_non_null(m);
    return m;
}

static void produce_manager(const json_t *m)
{
    produce_json(T_MANAGERS, json_string_value(json_object_get(m, "manager_id")), m);
}

/* A CaseValidated for a fresh case (case_id and event_id are set). */
static json_t *validated(char case_id[CF_UUID_LEN + 1], char event_id[CF_UUID_LEN + 1],
                         const char *priority, const char *language, const char *country,
                         const char *patient_key)
{
    char correlation[CF_UUID_LEN + 1];
    assert_int_equal(cf_uuid_v4(case_id), CF_OK);
    assert_int_equal(cf_uuid_v4(event_id), CF_OK);
    assert_int_equal(cf_uuid_v4(correlation), CF_OK);
    json_t *v = json_pack(
        "{s:{s:s, s:s, s:I, s:s, s:s, s:n}, s:s, s:[], s:s, s:s,"
        " s:{s:s, s:s, s:s, s:s, s:s, s:s, s:n, s:b, s:b, s:[]}}",
        "meta", "event_id", event_id, "case_id", case_id, "occurred_at",
        (json_int_t)cf_clock_wall_ms(), "producer", "test/0", "correlation_id", correlation,
        "causation_id", "priority", priority, "reasons", "category", "CIRRHOSIS", "patient_key",
        patient_key, "recipient", "given_name", "Alexandra", "family_name", "Testperson",
        "language", language, "country", country, "time_zone", "Europe/Madrid", "email",
        "alexandra.testperson@example.org", "phone", "consent_email", 1, "consent_sms", 0,
        "contact_windows");
    assert_non_null(v);
    return v;
}

static void produce_closed(const char *case_id)
{
    char event_id[CF_UUID_LEN + 1], correlation[CF_UUID_LEN + 1];
    assert_int_equal(cf_uuid_v4(event_id), CF_OK);
    assert_int_equal(cf_uuid_v4(correlation), CF_OK);
    json_t *c = json_pack("{s:{s:s, s:s, s:I, s:s, s:s, s:n}, s:s, s:n, s:n, s:n}", "meta",
                          "event_id", event_id, "case_id", case_id, "occurred_at",
                          (json_int_t)cf_clock_wall_ms(), "producer", "test/0", "correlation_id",
                          correlation, "causation_id", "reason", "WITHDRAWN", "note_code",
                          "manager_id", "recipient");
    assert_non_null(c);
    produce_json(T_CLOSED, case_id, c);
    json_decref(c);
}

/* ---- Reading what the service wrote ------------------------------------------------------ */

static bool is_not_dlq(const char *topic)
{
    return strcmp(topic, T_DLQ) != 0;
}

static void read_one(int timeout_ms)
{
    cf_test_poll_into(consumer, serde, is_not_dlq, timeout_ms, seen);
}

static void drain(int ms)
{
    int64_t deadline = cf_clock_mono_ms() + ms;
    while (cf_clock_mono_ms() < deadline)
        read_one(100);
}

/* alert: -1 any, 0 / 1 the CasePending's alert flag. */
static bool matches(const json_t *rec, const char *topic, const char *key, int alert)
{
    if (strcmp(json_string_value(json_object_get(rec, "topic")), topic) != 0 ||
        strcmp(json_string_value(json_object_get(rec, "key")), key) != 0)
        return false;
    if (alert < 0)
        return true;
    const json_t *a = json_object_get(json_object_get(rec, "value"), "alert");
    return alert == 1 ? json_is_true(a) : json_is_false(a);
}

static size_t count(const char *topic, const char *key, int alert)
{
    size_t n = 0, i;
    json_t *rec;
    json_array_foreach(seen, i, rec) n += matches(rec, topic, key, alert) ? 1 : 0;
    return n;
}

static void dump_logs(void)
{
    for (int i = 0; i < 2; i++)
        if (log_path[i][0] != '\0' && access(log_path[i], R_OK) == 0) {
            char *log = cf_test_slurp(log_path[i]);
            fprintf(stderr, "---- %s ----\n%s\n", log_path[i], log);
            free(log);
        }
}

/* The value of the first record of topic keyed key (alert as in matches), waiting up to
 * EVENT_TIMEOUT_MS; fails the test with the service logs if none comes. */
static const json_t *expect(const char *topic, const char *key, int alert)
{
    int64_t deadline = cf_clock_mono_ms() + EVENT_TIMEOUT_MS;
    for (;;) {
        size_t i;
        json_t *rec;
        json_array_foreach(seen, i, rec)
        {
            if (matches(rec, topic, key, alert)) {
                const json_t *v = json_object_get(rec, "value");
                if (v == NULL)
                    fail_msg("record on %s for %s does not decode", topic, key);
                return v;
            }
        }
        if (cf_clock_mono_ms() > deadline) {
            dump_logs();
            fail_msg("no record on %s for case %s", topic, key);
        }
        read_one(200);
    }
}

static const char *vstr(const json_t *v, const char *key)
{
    return json_string_value(json_object_get(v, key));
}

static const char *meta_str(const json_t *v, const char *key)
{
    return json_string_value(json_object_get(json_object_get(v, "meta"), key));
}

/* ---- Services ------------------------------------------------------------------------- */

static void start_service(int which, int alert_seconds, int http_port)
{
    static char env[8][160];
    size_t ne = 0;
    cf_test_kill_child(pids[which]);
    snprintf(log_path[which], sizeof(log_path[which]), "/tmp/test-assignment-%s-%d.log", run_id,
             which);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_INSTANCE_ID=test-assign-%s-%d", run_id, which);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_LOG_LEVEL=info");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_BATCH_MAX_MS=20");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_ASSIGNMENT_PENDING_ALERT_SECONDS=%d",
             alert_seconds);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_ASSIGNMENT_TIMER_MS=200");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_ASSIGNMENT_HTTP_PORT=%d", http_port);
    /* Test 3 kills a replica: its partitions move on after 6 s, not the default 45 s, and a
     * lost assignment would come back after 30 s. */
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_ASSIGNMENT_LEASE_SECONDS=30");
    snprintf(env[ne++], sizeof(env[0]), "KAFKA_SESSION_TIMEOUT_MS=6000");
    pids[which] = cf_test_spawn_service(SERVICE, env, ne, log_path[which]);
}

static void stop_service(int which)
{
    int status = cf_test_stop_child(&pids[which], STOP_TIMEOUT_MS);
    if (status != 0) {
        dump_logs();
        fail_msg("caseflow-assignment %d exited %d", which, status);
    }
}

static long ops_get_port(int port, const char *path, char **body)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    struct cf_test_reply r = cf_test_http("GET", url, NULL, NULL, 0, 5000);
    *body = r.body;
    return r.status;
}

static long ops_get(const char *path, char **body)
{
    return ops_get_port(OPS_PORT, path, body);
}

/* Waits until the replica on port answers /readyz 200 (transactions initialised, at least one
 * partition assigned). */
static void wait_ready(int port)
{
    int64_t deadline = cf_clock_mono_ms() + EVENT_TIMEOUT_MS;
    for (;;) {
        char *body = NULL;
        long status = ops_get_port(port, "/readyz", &body);
        free(body);
        if (status == 200)
            return;
        if (cf_clock_mono_ms() > deadline) {
            dump_logs();
            fail_msg("replica on port %d not ready", port);
        }
        cf_clock_sleep_ms(200);
    }
}

static int setup(void **state)
{
    (void)state;
    char err[512] = "";
    /* The test's own roster views warn about other runs' odd records: not this test's news. */
    cf_log_init("test_assignment", CF_LOG_ERROR);
    cf_test_run_id(run_id, sizeof(run_id));
    if (cf_test_service_clients(table, sizeof(table) / sizeof(table[0]), &config, &registry,
                                &serde) != 0)
        return -1;
    if (cf_kafka_producer_new(config, NULL, 30000, &producer, err, sizeof(err)) != CF_OK) {
        fprintf(stderr, "producer: %s\n", err);
        return -1;
    }
    seen = json_array();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_test_kill_child(pids[1]);
    cf_kafka_producer_free(producer);
    cf_test_service_teardown(pids[0], consumer, seen, serde, registry, config);
    return 0;
}

/* ---- 1. The script decides as the reference ------------------------------------------- */

/* KEYS: active, last, patient link. ARGV: TTL ms, {"active": {id: n}, "last": {id: ms},
 * "prev": id or ""}. Sets the loads of one iteration. */
static const char seed_lua[] =
    "redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])\n"
    "local s = cjson.decode(ARGV[2])\n"
    "for id, n in pairs(s.active) do redis.call('HSET', KEYS[1], id, n) end\n"
    "for id, t in pairs(s.last) do redis.call('HSET', KEYS[2], id, t) end\n"
    "if s.prev ~= '' then redis.call('SET', KEYS[3], s.prev) end\n"
    "for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[1]) end\n"
    "return 1\n";

static uint32_t rng_state;
static uint32_t rnd(uint32_t bound)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 8) % bound;
}

static void test_script_matches_reference(void **state)
{
    (void)state;
    char err[512] = "", prefix[64];
    struct cf_redis *r = NULL;
    struct cf_redis_script *seed = NULL;
    struct assignment_scripts scripts;
    assert_int_equal(cf_redis_new(REDIS_HOST, REDIS_PORT, 1000, 2000, &r, err, sizeof(err)), CF_OK);
    /* A prefix of the run's own: nothing here touches the service's keys. */
    snprintf(prefix, sizeof(prefix), "caseflow:test-assign-%s:", run_id);
    assert_int_equal(cf_redis_set_key_prefix(r, prefix, err, sizeof(err)), CF_OK);
    assert_int_equal(assignment_scripts_new(&scripts, err, sizeof(err)), CF_OK);
    assert_int_equal(cf_redis_script_new(seed_lua, 0, &seed, err, sizeof(err)), CF_OK);

    /* Ids whose byte order differs from a locale's collation ('-' and '.' before digits and
     * letters, upper case before lower case). */
    static const char *const ids[] = {"a", "b", "B", "a-1", "a.1", "a1", "ab", "b-"};
    static const char *const langs[] = {"en", "es", "es-MX", "tr", "ru", "EN", "de"};
    static const char *const countries[] = {"ES", "MX", "TR", "GB", "mx"};
    static const char *const case_langs[] = {"es", "es-419", "en", "tr", "de", ""};
    static const char *const case_countries[] = {"ES", "MX", "", "GB", "tr"};
    const char *lang_store[8][2], *country_store[8][2];
    const char *const seed_keys[] = {ASSIGNMENT_KEY_ACTIVE, ASSIGNMENT_KEY_LAST,
                                     ASSIGNMENT_KEY_PATIENT "refpatient"};
    const int iterations = 3000;
    int assigned = 0, parked = 0, returning = 0, interpreter = 0, urgent_room = 0;
    rng_state = (uint32_t)getpid();

    for (int iter = 0; iter < iterations; iter++) {
        struct assignment_manager roster[8];
        size_t n = 1 + rnd(8);
        json_t *active = json_object(), *last = json_object();
        const int64_t t0 = 1795000000000LL;
        for (size_t i = 0; i < n; i++) {
            size_t nl = rnd(3), nc = rnd(3);
            for (size_t k = 0; k < nl; k++)
                lang_store[i][k] = langs[rnd(7)];
            for (size_t k = 0; k < nc; k++)
                country_store[i][k] = countries[rnd(5)];
            struct assignment_manager m = {ids[i],
                                           lang_store[i],
                                           nl,
                                           country_store[i],
                                           nc,
                                           (int)rnd(5),
                                           rnd(2) == 0,
                                           rnd(5) != 0,
                                           0,
                                           ASSIGNMENT_NEVER_ASSIGNED};
            m.active_cases = (int)rnd((uint32_t)m.capacity + 2);
            if (rnd(4) != 0)
                m.last_assigned_ms = t0 + (int64_t)rnd(3) * 60000;
            roster[i] = m;
            if (m.active_cases > 0 || rnd(2) == 0) /* an absent field is a load of 0 */
                json_object_set_new(active, m.id, json_integer(m.active_cases));
            if (m.last_assigned_ms != ASSIGNMENT_NEVER_ASSIGNED)
                json_object_set_new(last, m.id, json_integer(m.last_assigned_ms));
        }
        struct assignment_case c = {(enum assignment_priority)rnd(3), case_langs[rnd(6)],
                                    case_countries[rnd(5)], NULL};
        if (rnd(5) < 2)
            c.previous_manager = rnd(4) == 0 ? "gone" : ids[rnd((uint32_t)n)];
        json_t *seed_doc = json_pack("{s:o, s:o, s:s}", "active", active, "last", last, "prev",
                                     c.previous_manager != NULL ? c.previous_manager : "");
        char *seed_text = json_dumps(seed_doc, JSON_COMPACT);
        json_decref(seed_doc);
        const char *seed_args[] = {"60000", seed_text};
        if (cf_redis_script_run(r, seed, 3, seed_keys, 2, seed_args, NULL, NULL, err,
                                sizeof(err)) != CF_OK)
            fail_msg("seed: %s", err);
        free(seed_text);

        struct assignment_choice want;
        assert_int_equal(assignment_match(&c, roster, n, &want, err, sizeof(err)), CF_OK);

        char *cands = NULL, case_id[CF_UUID_LEN + 1];
        assert_int_equal(assignment_candidates_json(&c, roster, NULL, NULL, n, &cands), CF_OK);
        assert_int_equal(cf_uuid_v4(case_id), CF_OK);
        struct assignment_request req = {case_id, "refpatient", false, t0 + 3600000, c.priority,
                                         cands,   "{}",         "ref", 60000,        60000,
                                         60000};
        struct assignment_result got;
        if (assignment_store_assign(r, &scripts, &req, &got, err, sizeof(err)) != CF_OK)
            fail_msg("assign: %s", err);
        bool got_assigned = got.status == ASSIGNMENT_ASSIGNED;
        if (got.status != ASSIGNMENT_ASSIGNED && got.status != ASSIGNMENT_PARKED)
            fail_msg("iteration %d: unexpected status %d", iter, (int)got.status);
        if (want.assigned != got_assigned || strcmp(assignment_reason_code(want.reason),
                                                    got.reason) != 0 ||
            (want.assigned && (strcmp(want.manager_id, got.manager_id) != 0 ||
                               want.interpreter != got.interpreter ||
                               want.returning != got.returning))) {
            fprintf(stderr, "candidates: %s\n", cands);
            fail_msg("iteration %d: reference %s %s interpreter=%d returning=%d; script %s %s "
                     "interpreter=%d returning=%d",
                     iter, want.assigned ? want.manager_id : "-",
                     assignment_reason_code(want.reason), want.interpreter, want.returning,
                     got_assigned ? got.manager_id : "-", got.reason, got.interpreter,
                     got.returning);
        }
        assigned += got_assigned;
        parked += !got_assigned;
        returning += want.returning;
        interpreter += want.interpreter;
        urgent_room += want.reason == ASSIGNMENT_REASON_NO_URGENT_ROOM;
        assignment_result_clear(&got);

        /* Asked again for the same case (a retried batch): the same answer, nothing more. */
        if (iter % 10 == 0) {
            if (assignment_store_assign(r, &scripts, &req, &got, err, sizeof(err)) != CF_OK)
                fail_msg("assign again: %s", err);
            if (want.assigned) {
                assert_int_equal(got.status, ASSIGNMENT_ALREADY);
                assert_string_equal(got.manager_id, want.manager_id);
                assert_string_equal(got.via, "ref");
            } else {
                assert_int_equal(got.status, ASSIGNMENT_PENDING);
                assert_string_equal(got.reason, assignment_reason_code(want.reason));
            }
            assignment_result_clear(&got);
        }
        free(cands);
    }
    fprintf(stderr,
            "%d cases: %d assigned (%d returning, %d with an interpreter), %d parked (%d "
            "NO_URGENT_ROOM)\n",
            iterations, assigned, returning, interpreter, parked, urgent_room);
    /* The random rosters exercised every branch. */
    assert_true(assigned > 100 && parked > 100 && returning > 20 && interpreter > 20 &&
                urgent_room > 5);
    cf_redis_script_free(seed);
    assignment_scripts_free(&scripts);
    cf_redis_free(r);
}

/* ---- 2. End to end -------------------------------------------------------------------- */

/* Checks a CaseAssigned against its CaseValidated and the expected decision. */
static void check_assigned(const json_t *v, const json_t *in, const char *manager_id,
                           const char *name, bool interpreter, bool returning)
{
    char expected_id[CF_UUID_LEN + 1];
    assignment_assigned_event_id(meta_str(in, "case_id"), expected_id);
    assert_string_equal(vstr(v, "manager_id"), manager_id);
    assert_string_equal(vstr(v, "manager_name"), name);
    assert_non_null(strstr(vstr(v, "manager_email"), "@example.org"));
    assert_int_equal(json_is_true(json_object_get(v, "interpreter_needed")), interpreter);
    assert_int_equal(json_is_true(json_object_get(v, "returning_patient")), returning);
    assert_string_equal(vstr(v, "priority"), vstr(in, "priority"));
    assert_string_equal(vstr(v, "category"), "CIRRHOSIS");
    assert_true(json_equal(json_object_get(v, "recipient"), json_object_get(in, "recipient")));
    assert_string_equal(meta_str(v, "event_id"), expected_id);
    assert_string_equal(meta_str(v, "case_id"), meta_str(in, "case_id"));
    assert_string_equal(meta_str(v, "causation_id"), meta_str(in, "event_id"));
    assert_string_equal(meta_str(v, "correlation_id"), meta_str(in, "correlation_id"));
    assert_memory_equal(meta_str(v, "producer"), "assignment/", 11);
}

static void test_end_to_end(void **state)
{
    (void)state;
    const char *create[] = {"topics", "create", NULL};
    const char *reg[] = {"schemas", "register", NULL};
    ctl(create);
    ctl(reg);
    tombstone_roster();
    redis_delete("caseflow:assignment:*");
    cf_test_group_to_end(config, GROUP, group_topics, sizeof(group_topics) / sizeof(group_topics[0]));
    assert_non_null(consumer = cf_test_consumer_at_end(config, read_topics, 3));

    char es[64], tr[64], en[64], fr[64];
    snprintf(es, sizeof(es), "ta-%s-es", run_id);
    snprintf(tr, sizeof(tr), "ta-%s-tr", run_id);
    snprintf(en, sizeof(en), "ta-%s-en", run_id);
    snprintf(fr, sizeof(fr), "ta-%s-fr", run_id);
    json_t *roster[] = {
        manager(es, "Lucía Ejemplo", "lucia.ejemplo@example.org", json_pack("[s,s]", "es", "en"),
                json_pack("[s,s]", "ES", "MX"), 2, false),
        manager(tr, "Deniz Örnek", "deniz.ornek@example.org", json_pack("[s]", "tr"),
                json_pack("[s]", "TR"), 2, true),
        manager(en, "Avery Example", "avery.example@example.org", json_pack("[s]", "en"),
                json_pack("[s]", "GB"), 1, true),
        manager(fr, "Camille Exemple", "camille.exemple@example.org", json_pack("[s]", "fr"),
                json_pack("[s]", "FR"), 1, false),
    };
    for (size_t i = 0; i < 4; i++)
        produce_manager(roster[i]);
    flush();
    start_service(0, ALERT_SECONDS, OPS_PORT);

    char c1[37], c2[37], c3[37], c4[37], c5[37], c6[37], c8[37], e[37];
    char pk1[80], pk[80];
    snprintf(pk1, sizeof(pk1), "pk%s1", run_id);
    /* 1. Spanish speaker in Mexico: the Spanish-speaking manager for Mexico. */
    json_t *v1 = validated(c1, e, "ROUTINE", "es-MX", "MX", pk1);
    produce_json(T_VALIDATED, c1, v1);
    flush();
    check_assigned(expect(T_ASSIGNED, c1, -1), v1, es, "Lucía Ejemplo", false, false);
    /* 2. Nobody speaks German: English with an interpreter, the less loaded of the two. */
    snprintf(pk, sizeof(pk), "pk%s2", run_id);
    json_t *v2 = validated(c2, e, "ROUTINE", "de", "DE", pk);
    produce_json(T_VALIDATED, c2, v2);
    flush();
    check_assigned(expect(T_ASSIGNED, c2, -1), v2, en, "Avery Example", true, false);
    /* 3. URGENT Turkish: the urgent-capable Turkish speaker. */
    snprintf(pk, sizeof(pk), "pk%s3", run_id);
    json_t *v3 = validated(c3, e, "URGENT", "tr", "TR", pk);
    produce_json(T_VALIDATED, c3, v3);
    flush();
    check_assigned(expect(T_ASSIGNED, c3, -1), v3, tr, "Deniz Örnek", false, false);
    /* 4. The patient of case 1 comes back speaking Turkish: they keep their manager (with an
     * interpreter), although the Turkish speaker has room. */
    json_t *v5 = validated(c5, e, "ROUTINE", "tr", "TR", pk1);
    produce_json(T_VALIDATED, c5, v5);
    flush();
    check_assigned(expect(T_ASSIGNED, c5, -1), v5, es, "Lucía Ejemplo", true, true);
    /* 5. Spanish ROUTINE: everyone who could take it is full. */
    snprintf(pk, sizeof(pk), "pk%s6", run_id);
    json_t *v6 = validated(c6, e, "ROUTINE", "es", "ES", pk);
    produce_json(T_VALIDATED, c6, v6);
    flush();
    const json_t *p6 = expect(T_PENDING, c6, 0);
    assert_string_equal(vstr(p6, "reason"), "NO_ROOM");
    assert_string_equal(vstr(p6, "service"), "assignment");
    assert_string_equal(meta_str(p6, "causation_id"), meta_str(v6, "event_id"));
    const char *since6 = vstr(p6, "waiting_since");
    /* 6. Spanish URGENT, later: waits too. */
    snprintf(pk, sizeof(pk), "pk%s4", run_id);
    json_t *v4 = validated(c4, e, "URGENT", "es", "ES", pk);
    produce_json(T_VALIDATED, c4, v4);
    flush();
    assert_string_equal(vstr(expect(T_PENDING, c4, 0), "reason"), "NO_ROOM");
    /* 7. French URGENT: the French speaker has room but may not take URGENT cases. */
    snprintf(pk, sizeof(pk), "pk%s8", run_id);
    json_t *v8 = validated(c8, e, "URGENT", "fr", "FR", pk);
    produce_json(T_VALIDATED, c8, v8);
    flush();
    assert_string_equal(vstr(expect(T_PENDING, c8, 0), "reason"), "NO_URGENT_ROOM");

    /* 8. Case 2 closes: its manager takes the URGENT Spanish case, not the older ROUTINE one. */
    produce_closed(c2);
    flush();
    check_assigned(expect(T_ASSIGNED, c4, -1), v4, en, "Avery Example", true, false);
    /* 9. The ROUTINE case waits longer than the limit: operators are alerted, once. */
    const json_t *a6 = expect(T_PENDING, c6, 1);
    assert_string_equal(vstr(a6, "reason"), "NO_ROOM");
    assert_string_equal(vstr(a6, "waiting_since"), since6);
    assert_string_not_equal(meta_str(a6, "event_id"), meta_str(p6, "event_id"));
    /* 10. Case 1 closes: the Spanish case goes to the Spanish speaker. */
    produce_closed(c1);
    flush();
    check_assigned(expect(T_ASSIGNED, c6, -1), v6, es, "Lucía Ejemplo", false, false);
    /* The same close again changes nothing. */
    produce_closed(c1);
    flush();

    drain(3000);
    const char *all[] = {c1, c2, c3, c5, c4, c6};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(count(T_ASSIGNED, all[i], -1), 1);
    assert_int_equal(count(T_ASSIGNED, c8, -1), 0); /* still no urgent-capable French speaker */
    assert_int_equal(count(T_PENDING, c6, 0), 1);
    assert_int_equal(count(T_PENDING, c6, 1), 1);
    assert_int_equal(count(T_PENDING, c4, 0), 1);
    assert_int_equal(count(T_PENDING, c1, -1), 0);
    assert_int_equal(count(T_DLQ, c1, -1), 0);

    char *body = NULL;
    assert_int_equal(ops_get("/metrics", &body), 200);
    assert_non_null(strstr(body, "caseflow_assignment_assigned_total{service=\"assignment\","
                                 "reason=\"RETURNING\"} 1"));
    assert_non_null(strstr(body, "caseflow_assignment_parked_total{service=\"assignment\","
                                 "reason=\"NO_URGENT_ROOM\"} 1"));
    assert_non_null(strstr(body, "caseflow_assignment_released_total{service=\"assignment\"} 2"));
    assert_null(strstr(body, "Lucía"));
    free(body);
    assert_int_equal(ops_get("/readyz", &body), 200);
    free(body);

    stop_service(0);
    char *log = cf_test_slurp(log_path[0]);
    assert_non_null(strstr(log, "\"stopped\""));
    assert_null(strstr(log, "Alexandra"));
    assert_null(strstr(log, "example.org"));
    assert_null(strstr(log, "Lucía"));
    free(log);
    unlink(log_path[0]);

    for (size_t i = 0; i < 4; i++) {
        produce_raw(T_MANAGERS, json_string_value(json_object_get(roster[i], "manager_id")), NULL,
                    0);
        json_decref(roster[i]);
    }
    flush();
    json_t *inputs[] = {v1, v2, v3, v4, v5, v6, v8};
    for (size_t i = 0; i < 7; i++)
        json_decref(inputs[i]);
}

/* ---- 3. Two replicas -------------------------------------------------------------------- */

#define NCASES 300
#define NMANAGERS 5
#define CAPACITY 3
#define NCLOSE 10

static void test_two_replicas(void **state)
{
    (void)state;
    static char case_ids[NCASES][CF_UUID_LEN + 1];
    char ids[NMANAGERS][64], e[CF_UUID_LEN + 1], pk[80];
    static const char *const second[] = {"es", "tr", "ru", "de", "fr"};
    static const char *const langs[] = {"es", "tr", "ru", "en", "de", "pt"};
    static const char *const prios[] = {"URGENT", "HIGH", "ROUTINE"};

    if (consumer == NULL) /* run alone */
        assert_non_null(consumer = cf_test_consumer_at_end(config, read_topics, 3));
    tombstone_roster();
    redis_delete("caseflow:assignment:*");
    cf_test_group_to_end(config, GROUP, group_topics, sizeof(group_topics) / sizeof(group_topics[0]));
    for (int i = 0; i < NMANAGERS; i++) {
        snprintf(ids[i], sizeof(ids[i]), "ta-%s-p%d", run_id, i);
        json_t *m = manager(ids[i], "Pat Example", "pat.example@example.org",
                            json_pack("[s,s]", "en", second[i]), json_pack("[s]", "ES"),
                            CAPACITY, true);
        produce_manager(m);
        json_decref(m);
    }
    flush();
    int64_t t_ready = cf_clock_mono_ms();
    /* Both replicas in the group, each with its partitions, before the cases come. */
    start_service(0, 14400, OPS_PORT);
    start_service(1, 14400, OPS_PORT + 1);
    wait_ready(OPS_PORT);
    wait_ready(OPS_PORT + 1);
    cf_clock_sleep_ms(1000);
    wait_ready(OPS_PORT);
    wait_ready(OPS_PORT + 1);
    fprintf(stderr, "replicas ready after %lld ms\n", (long long)(cf_clock_mono_ms() - t_ready));

    int64_t t_start = cf_clock_mono_ms();
    rng_state = 777;
    for (int i = 0; i < NCASES; i++) {
        if (i == NCASES / 2) {
            /* Replica 1 dies mid-stream (SIGKILL: no commit, no goodbye) while it works on the
             * first half, and comes back with the same instance id; what its open transaction
             * held is emitted again by whoever processes those records next, with the same
             * event ids, and must not show up twice. */
            flush();
            cf_clock_sleep_ms(30);
            fprintf(stderr, "[%lld ms] %d cases produced, killing replica 1\n",
                    (long long)(cf_clock_mono_ms() - t_start), i);
            cf_test_kill_child(pids[1]);
            pids[1] = -1;
            start_service(1, 14400, OPS_PORT + 1);
        }
        snprintf(pk, sizeof(pk), "pk%s-r%d", run_id, i);
        json_t *v = validated(case_ids[i], e, prios[rnd(3)], langs[rnd(6)], "ES", pk);
        produce_json(T_VALIDATED, case_ids[i], v);
        json_decref(v);
    }
    flush();

    /* Every case: assigned or waiting. */
    int64_t deadline = cf_clock_mono_ms() + 90000;
    for (int i = 0; i < NCASES; i++)
        while (count(T_ASSIGNED, case_ids[i], -1) + count(T_PENDING, case_ids[i], 0) == 0) {
            if (cf_clock_mono_ms() > deadline) {
                dump_logs();
                fail_msg("case %d (%s): neither assigned nor pending", i, case_ids[i]);
            }
            read_one(200);
        }

    fprintf(stderr, "[%lld ms] every case assigned or pending\n",
            (long long)(cf_clock_mono_ms() - t_start));
    /* Close NCLOSE assigned cases while both replicas serve the queue. */
    int closed = 0;
    json_t *closed_by_manager = json_object();
    for (int i = 0; i < NCASES && closed < NCLOSE; i++)
        if (count(T_ASSIGNED, case_ids[i], -1) == 1) {
            const json_t *v = expect(T_ASSIGNED, case_ids[i], -1);
            const char *m = vstr(v, "manager_id");
            json_object_set_new(closed_by_manager, m,
                                json_integer(json_integer_value(
                                                 json_object_get(closed_by_manager, m)) +
                                             1));
            produce_closed(case_ids[i]);
            closed++;
        }
    flush();
    assert_int_equal(closed, NCLOSE);
    deadline = cf_clock_mono_ms() + 60000;
    for (;;) {
        size_t total = 0;
        for (int i = 0; i < NCASES; i++)
            total += count(T_ASSIGNED, case_ids[i], -1);
        if (total >= NMANAGERS * CAPACITY + NCLOSE)
            break;
        if (cf_clock_mono_ms() > deadline) {
            dump_logs();
            fail_msg("%zu cases assigned after the closes, %d expected", total,
                     NMANAGERS * CAPACITY + NCLOSE);
        }
        read_one(200);
    }
    fprintf(stderr, "[%lld ms] the closes served\n", (long long)(cf_clock_mono_ms() - t_start));
    drain(4000);

    /* No case twice; every case assigned once or waiting; no manager above capacity. */
    json_t *per_manager = json_object();
    size_t total = 0;
    for (int i = 0; i < NCASES; i++) {
        size_t n = count(T_ASSIGNED, case_ids[i], -1);
        if (n > 1)
            fail_msg("case %s assigned %zu times", case_ids[i], n);
        if (n == 0)
            assert_int_equal(count(T_PENDING, case_ids[i], 0), 1);
        if (n == 1) {
            const char *m = vstr(expect(T_ASSIGNED, case_ids[i], -1), "manager_id");
            json_object_set_new(
                per_manager, m,
                json_integer(json_integer_value(json_object_get(per_manager, m)) + 1));
        }
        total += n;
    }
    assert_int_equal(total, NMANAGERS * CAPACITY + NCLOSE);
    for (int i = 0; i < NMANAGERS; i++) {
        json_int_t got = json_integer_value(json_object_get(per_manager, ids[i]));
        json_int_t freed = json_integer_value(json_object_get(closed_by_manager, ids[i]));
        if (got - freed != CAPACITY)
            fail_msg("manager %s: %lld assigned, %lld closed, capacity %d", ids[i],
                     (long long)got, (long long)freed, CAPACITY);
    }
    assert_int_equal(json_object_size(per_manager), NMANAGERS);

    /* Both replicas took part. */
    stop_service(0);
    stop_service(1);
    for (int i = 0; i < 2; i++) {
        char *log = cf_test_slurp(log_path[i]);
        size_t decided = 0;
        for (const char *p = log; (p = strstr(p, "\"case_")) != NULL; p++)
            decided += strncmp(p, "\"case_assigned\"", 15) == 0 ||
                       strncmp(p, "\"case_pending\"", 14) == 0;
        fprintf(stderr, "replica %d decided %zu cases (restarts included)\n", i, decided);
        assert_true(decided > 0);
        free(log);
        unlink(log_path[i]);
    }
    for (int i = 0; i < NMANAGERS; i++)
        produce_raw(T_MANAGERS, ids[i], NULL, 0);
    flush();
    json_decref(per_manager);
    json_decref(closed_by_manager);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_script_matches_reference),
        cmocka_unit_test(test_end_to_end),
        cmocka_unit_test(test_two_replicas),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
