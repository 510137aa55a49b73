/* test_roster.c — caseflowctl roster load against the real stack (deploy/stack up): the sample
 * roster arrives on both compacted topics keyed by id with every field, a removal is a
 * tombstone, and a file with a mistake anywhere produces nothing and names the entry and field
 * but no personal data.
 *
 * caseflowctl runs as a child process as an operator runs it; the topics are read with a
 * consumer that starts at their ends, so other runs' records do not count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <jansson.h>

#include "avro_serde.h"
#include "child.h"
#include "clock.h"
#include "config.h"
#include "kafka.h"
#include "registry.h"
#include "roster_view.h"
#include "test_env.h"
#include "uuid.h"

#define CTL CF_BINARY_DIR "/tools/caseflowctl/caseflowctl"
#define ROSTER CF_TESTS_DIR "/../deploy/roster.json"
#define MANAGERS "caseflow.roster.care-managers"
#define SPECIALISTS "caseflow.roster.specialists"

#define CTL_TIMEOUT_MS 60000
#define ARRIVAL_TIMEOUT_MS 30000
/* How long a topic must stay quiet after a sentinel for "nothing else was produced". */
#define QUIET_MS 1500

static char run_id[24];
static struct cf_config *config;
static struct cf_registry *registry;
static struct cf_serde *serde;
static struct cf_kafka_consumer *consumer;

static const struct cf_config_entry table[] = {
    CF_CONFIG_COMMON_ENTRIES,
};

/* ---- helpers ------------------------------------------------------------------------------ */

/* Writes j to a new temporary file named into path (len bytes); the caller unlinks it. */
static void write_temp_json(char *path, size_t len, const json_t *j)
{
    (void)snprintf(path, len, "/tmp/test-roster-%s-XXXXXX", run_id);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(json_dump_file(j, path, JSON_INDENT(2)), 0);
}

/* Runs caseflowctl roster load path [option]; returns the exit status and its output (stdout
 * and stderr; the caller frees). */
static int roster_load_with(const char *path, const char *option, char **out)
{
    char out_path[128];
    (void)snprintf(out_path, sizeof(out_path), "/tmp/test-roster-out-%s-XXXXXX", run_id);
    int fd = mkstemp(out_path);
    assert_true(fd >= 0);
    close(fd);
    char *argv[] = {CTL, "roster", "load", (char *)path, (char *)option, NULL};
    int status = cf_test_wait_child(cf_test_spawn(CTL, argv, NULL, out_path), CTL_TIMEOUT_MS);
    *out = cf_test_slurp(out_path);
    unlink(out_path);
    return status;
}

static int roster_load(const char *path, char **out)
{
    return roster_load_with(path, NULL, out);
}

/* One record read: {"topic", "key", "headers", "value"} with "value" JSON null for a tombstone
 * and the decoded record otherwise (decoding must work). */
static json_t *poll_one(int timeout_ms)
{
    struct cf_kafka_record *r = NULL;
    char err[512];
    if (cf_kafka_consumer_poll(consumer, timeout_ms, &r, err, sizeof(err)) != CF_OK)
        return NULL;
    json_t *headers = json_object();
    for (size_t i = 0; i < r->header_count; i++)
        json_object_set_new(headers, r->headers[i].name,
                            json_stringn(r->headers[i].value != NULL ? r->headers[i].value : "",
                                         r->headers[i].len));
    json_t *value = json_null();
    if (r->value != NULL) {
        json_decref(value);
        value = NULL;
        if (cf_serde_decode_json(serde, r->topic, r->value, r->value_len, &value, err,
                                 sizeof(err)) != CF_OK)
            fail_msg("%s: a record that does not decode: %s", r->topic, err);
    }
    json_t *rec = json_pack("{s:s, s:s%, s:o, s:o}", "topic", r->topic, "key",
                            r->key != NULL ? (const char *)r->key : "", r->key_len, "headers",
                            headers, "value", value);
    assert_non_null(rec);
    cf_kafka_record_release(r);
    return rec;
}

/* Reads until want (an object: key -> anything) has a record per key on topic, at most
 * ARRIVAL_TIMEOUT_MS; returns key -> last record seen for every record read (the caller
 * decrefs). */
static json_t *read_until(const char *topic, const json_t *want)
{
    json_t *got = json_object();
    int64_t deadline = cf_clock_mono_ms() + ARRIVAL_TIMEOUT_MS;
    for (;;) {
        const char *key;
        const json_t *v;
        size_t missing = 0;
        json_object_foreach((json_t *)want, key, v)
        {
            (void)v;
            missing += json_object_get(got, key) == NULL;
        }
        if (missing == 0)
            return got;
        if (cf_clock_mono_ms() > deadline)
            fail_msg("%s: %zu of %zu records did not arrive", topic, missing,
                     json_object_size(want));
        json_t *rec = poll_one(200);
        if (rec == NULL)
            continue;
        if (strcmp(json_string_value(json_object_get(rec, "topic")), topic) == 0)
            json_object_set(got, json_string_value(json_object_get(rec, "key")), rec);
        else
            fail_msg("a record on %s while waiting for %s",
                     json_string_value(json_object_get(rec, "topic")), topic);
        json_decref(rec);
    }
}

/* Asserts that decoded (a roster record read back) is entry with meta filled in: every member
 * of entry equal, every other member but meta a schema default. */
static void assert_record(const json_t *entry, const json_t *rec, const char *schema_name)
{
    const json_t *value = json_object_get(rec, "value");
    const json_t *headers = json_object_get(rec, "headers");
    const json_t *meta = json_object_get(value, "meta");
    const char *key;
    const json_t *v;

    assert_true(json_is_object(value));
    json_object_foreach((json_t *)entry, key, v)
    {
        if (!json_equal((json_t *)v, json_object_get(value, key)))
            fail_msg("%s: field %s differs after the round trip", schema_name, key);
    }
    json_object_foreach((json_t *)value, key, v)
    {
        if (strcmp(key, "meta") == 0 || json_object_get(entry, key) != NULL)
            continue;
        /* The sample leaves out only countries ([]), urgent_capable (false), active (true). */
        if (strcmp(key, "active") == 0)
            assert_true(json_is_true(v));
        else if (!(json_is_false(v) || (json_is_array(v) && json_array_size(v) == 0)))
            fail_msg("%s: %s is not its default", schema_name, key);
    }
    const char *event_id = json_string_value(json_object_get(meta, "event_id"));
    assert_non_null(event_id);
    assert_true(cf_uuid_valid(event_id));
    assert_string_equal(json_string_value(json_object_get(meta, "correlation_id")), event_id);
    assert_true(json_is_null(json_object_get(meta, "case_id")));
    assert_true(json_is_null(json_object_get(meta, "causation_id")));
    assert_non_null(strstr(json_string_value(json_object_get(meta, "producer")), "caseflowctl/"));
    assert_string_equal(json_string_value(json_object_get(headers, "ce_id")), event_id);
    assert_string_equal(json_string_value(json_object_get(headers, "ce_type")), schema_name);
    assert_string_equal(json_string_value(json_object_get(headers, "ce_source")),
                        "/caseflow/caseflowctl");
    assert_string_equal(json_string_value(json_object_get(headers, "ce_specversion")), "1.0");
    assert_string_equal(json_string_value(json_object_get(headers, "content-type")),
                        "application/avro");
}

/* The entries of a list keyed by their id. */
static json_t *by_id(const json_t *entries, const char *id_field)
{
    json_t *out = json_object();
    size_t i;
    const json_t *e;
    json_array_foreach(entries, i, e)
    {
        assert_int_equal(
            json_object_set(out, json_string_value(json_object_get(e, id_field)), (json_t *)e), 0);
    }
    return out;
}

/* ---- fixtures ----------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    cf_test_run_id(run_id, sizeof(run_id));
    if (cf_test_service_clients(table, sizeof(table) / sizeof(table[0]), &config, &registry,
                                &serde) != 0)
        return -1;
    /* The topics and subjects may not exist yet on a fresh stack. */
    const char *create[] = {"topics", "create", NULL};
    const char *reg[] = {"schemas", "register", NULL};
    free(cf_test_ctl(CTL, create, "/tmp/test-roster-ctl-XXXXXX", CTL_TIMEOUT_MS));
    free(cf_test_ctl(CTL, reg, "/tmp/test-roster-ctl-XXXXXX", CTL_TIMEOUT_MS));
    const char *topics[] = {MANAGERS, SPECIALISTS};
    consumer = cf_test_consumer_at_end(config, topics, 2);
    return consumer != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cf_test_service_teardown(-1, consumer, NULL, serde, registry, config);
    return 0;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_sample_roster(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *roster = json_load_file(ROSTER, JSON_REJECT_DUPLICATES, &jerr);
    if (roster == NULL)
        fail_msg("%s: %s", ROSTER, jerr.text);
    json_t *managers = by_id(json_object_get(roster, "care_managers"), "manager_id");
    json_t *specialists = by_id(json_object_get(roster, "specialists"), "specialist_id");
    assert_true(json_object_size(managers) >= 4);
    assert_true(json_object_size(specialists) >= 4);

    char *out = NULL;
    assert_int_equal(roster_load(ROSTER, &out), 0);
    /* One line per record, in file order: managers, then specialists. */
    const char *p = out;
    const char *key;
    const json_t *entry;
    json_object_foreach(managers, key, entry)
    {
        char line[256];
        (void)snprintf(line, sizeof(line), MANAGERS " %s upsert\n", key);
        if (strstr(p, line) == NULL)
            fail_msg("no line \"%s\" in:\n%s", line, out);
    }
    json_object_foreach(specialists, key, entry)
    {
        char line[256];
        (void)snprintf(line, sizeof(line), SPECIALISTS " %s upsert\n", key);
        if (strstr(p, line) == NULL)
            fail_msg("no line \"%s\" in:\n%s", line, out);
    }
    free(out);

    /* Records of the two topics interleave on the consumer: read both into one map. */
    json_t *seen = json_object();
    int64_t deadline = cf_clock_mono_ms() + ARRIVAL_TIMEOUT_MS;
    while (json_object_size(seen) < json_object_size(managers) + json_object_size(specialists)) {
        if (cf_clock_mono_ms() > deadline)
            fail_msg("only %zu roster records arrived", json_object_size(seen));
        json_t *rec = poll_one(200);
        if (rec == NULL)
            continue;
        char k[300];
        (void)snprintf(k, sizeof(k), "%s/%s", json_string_value(json_object_get(rec, "topic")),
                       json_string_value(json_object_get(rec, "key")));
        json_object_set_new(seen, k, rec);
    }
    json_object_foreach(managers, key, entry)
    {
        char k[300];
        (void)snprintf(k, sizeof(k), MANAGERS "/%s", key);
        const json_t *rec = json_object_get(seen, k);
        if (rec == NULL)
            fail_msg("manager %s not on " MANAGERS, key);
        assert_record(entry, rec, "caseflow.roster.CareManager");
    }
    json_object_foreach(specialists, key, entry)
    {
        char k[300];
        (void)snprintf(k, sizeof(k), SPECIALISTS "/%s", key);
        const json_t *rec = json_object_get(seen, k);
        if (rec == NULL)
            fail_msg("specialist %s not on " SPECIALISTS, key);
        assert_record(entry, rec, "caseflow.roster.Specialist");
    }
    json_decref(seen);
    json_decref(specialists);
    json_decref(managers);
    json_decref(roster);
}

static void test_tombstone(void **state)
{
    (void)state;
    char manager[64], specialist[64], path[128];
    (void)snprintf(manager, sizeof(manager), "cm-test-%s", run_id);
    (void)snprintf(specialist, sizeof(specialist), "sp-test-%s", run_id);
    json_t *file =
        json_pack("{s:[{s:s, s:b}], s:[{s:s, s:b}]}", "care_managers", "manager_id", manager,
                  "delete", 1, "specialists", "specialist_id", specialist, "delete", 1);
    assert_non_null(file);
    write_temp_json(path, sizeof(path), file);
    char *out = NULL;
    int status = roster_load(path, &out);
    unlink(path);
    if (status != 0)
        fail_msg("roster load: status %d\n%s", status, out);
    char line[256];
    (void)snprintf(line, sizeof(line), MANAGERS " %s tombstone\n", manager);
    assert_non_null(strstr(out, line));
    (void)snprintf(line, sizeof(line), SPECIALISTS " %s tombstone\n", specialist);
    assert_non_null(strstr(out, line));
    free(out);

    json_t *want = json_pack("{s:n}", manager);
    json_t *got = read_until(MANAGERS, want);
    const json_t *rec = json_object_get(got, manager);
    assert_true(json_is_null(json_object_get(rec, "value")));
    /* Still an event with an id and a type, but no content type for no content. */
    assert_true(cf_uuid_valid(
        json_string_value(json_object_get(json_object_get(rec, "headers"), "ce_id"))));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rec, "headers"), "ce_type")),
        "caseflow.roster.CareManager");
    assert_null(json_object_get(json_object_get(rec, "headers"), "content-type"));
    json_decref(got);
    json_decref(want);

    want = json_pack("{s:n}", specialist);
    got = read_until(SPECIALISTS, want);
    assert_true(json_is_null(json_object_get(json_object_get(got, specialist), "value")));
    json_decref(got);
    json_decref(want);
    json_decref(file);
}

/* Loads file, which must be refused naming where (and no name or e-mail of it); then a
 * sentinel tombstone must be the only record that arrives. */
static void check_refused(json_t *file, const char *where, const char *const *secrets)
{
    char path[128];
    write_temp_json(path, sizeof(path), file);
    char *out = NULL;
    int status = roster_load(path, &out);
    unlink(path);
    if (status != 1)
        fail_msg("a bad file: status %d, expected 1\n%s", status, out);
    if (strstr(out, where) == NULL)
        fail_msg("the error does not name %s:\n%s", where, out);
    for (size_t i = 0; secrets[i] != NULL; i++)
        if (strstr(out, secrets[i]) != NULL)
            fail_msg("the error shows personal data:\n%s", out);
    assert_null(strstr(out, "upsert"));
    free(out);

    char sentinel[64];
    (void)snprintf(sentinel, sizeof(sentinel), "cm-sentinel-%s", run_id);
    json_t *tomb =
        json_pack("{s:[{s:s, s:b}]}", "care_managers", "manager_id", sentinel, "delete", 1);
    write_temp_json(path, sizeof(path), tomb);
    assert_int_equal(roster_load(path, &out), 0);
    unlink(path);
    free(out);
    json_t *want = json_pack("{s:n}", sentinel);
    json_t *got = read_until(MANAGERS, want);
    /* A record of the bad file on another partition could come after the sentinel. */
    int64_t until = cf_clock_mono_ms() + QUIET_MS;
    while (cf_clock_mono_ms() < until) {
        json_t *rec = poll_one(200);
        if (rec != NULL)
            json_object_set(got, json_string_value(json_object_get(rec, "key")), rec);
        json_decref(rec);
    }
    if (json_object_size(got) != 1)
        fail_msg("a refused file produced %zu records", json_object_size(got) - 1);
    json_decref(got);
    json_decref(want);
    json_decref(tomb);
}

static void test_bad_files_produce_nothing(void **state)
{
    (void)state;
    char good[64], bad[64];
    (void)snprintf(good, sizeof(good), "cm-good-%s", run_id);
    (void)snprintf(bad, sizeof(bad), "cm-bad-%s", run_id);
    const char *secrets[] = {"Quentin Placeholder", "quentin@example.org", "Wren Dummy",
                             "wren@example.net", NULL};

    /* An unknown field in the second manager; the first is fine and must not be sent. */
    json_t *file = json_pack("{s:[{s:s, s:s, s:s, s:[s], s:i}, {s:s, s:s, s:s, s:[s], s:i, s:s}]}",
                             "care_managers", "manager_id", good, "name", "Quentin Placeholder",
                             "email", "quentin@example.org", "languages", "en", "capacity", 5,
                             "manager_id", bad, "name", "Wren Dummy", "email", "wren@example.net",
                             "languages", "en", "capacity", 5, "nickname", "Wren Dummy");
    assert_non_null(file);
    check_refused(file, "$.care_managers[1].nickname: unknown field", secrets);
    json_decref(file);

    /* A wrong type in a specialist; the manager before it must not be sent either. */
    file = json_pack("{s:[{s:s, s:s, s:s, s:[s], s:i}], s:[{s:s, s:s, s:s, s:[s], s:[s], s:s, "
                     "s:[], s:s, s:i}]}",
                     "care_managers", "manager_id", good, "name", "Quentin Placeholder", "email",
                     "quentin@example.org", "languages", "en", "capacity", 5, "specialists",
                     "specialist_id", bad, "name", "Wren Dummy", "email", "wren@example.net",
                     "languages", "en", "conditions", "CIRRHOSIS", "time_zone", "Europe/Madrid",
                     "weekly_hours", "slot_minutes", "thirty", "daily_cap", 4);
    assert_non_null(file);
    check_refused(file, "$.specialists[0].slot_minutes", secrets);
    json_decref(file);

    /* A time zone ICU does not know: schema-valid, still refused. */
    file = json_pack("{s:[{s:s, s:s, s:s, s:[s], s:[s], s:s, s:[], s:i, s:i}]}", "specialists",
                     "specialist_id", bad, "name", "Wren Dummy", "email", "wren@example.net",
                     "languages", "en", "conditions", "CIRRHOSIS", "time_zone", "Mars/Olympus",
                     "weekly_hours", "slot_minutes", 30, "daily_cap", 4);
    assert_non_null(file);
    check_refused(file, "$.specialists[0].time_zone", secrets);
    json_decref(file);
}

/* --replace: the roster becomes the file's. A manager loaded first is tombstoned by a second
 * load of another manager with --replace, and the compacted topics then hold exactly the second
 * file's entries (no specialist: the file names none). */
static void test_replace(void **state)
{
    (void)state;
    char first[64], second[64], path[128], line[256];
    char *out = NULL;
    (void)snprintf(first, sizeof(first), "cm-first-%s", run_id);
    (void)snprintf(second, sizeof(second), "cm-second-%s", run_id);
    for (int k = 0; k < 2; k++) {
        json_t *file = json_pack("{s:[{s:s, s:s, s:s, s:[s], s:i}]}", "care_managers",
                                 "manager_id", k == 0 ? first : second, "name", "Test Manager",
                                 "email", "manager@example.org", "languages", "en", "capacity", 5);
        write_temp_json(path, sizeof(path), file);
        int status = roster_load_with(path, k == 0 ? NULL : "--replace", &out);
        unlink(path);
        json_decref(file);
        if (status != 0)
            fail_msg("roster load: status %d\n%s", status, out);
        if (k == 1) {
            (void)snprintf(line, sizeof(line), MANAGERS " %s upsert\n", second);
            assert_non_null(strstr(out, line));
            (void)snprintf(line, sizeof(line), MANAGERS " %s tombstone\n", first);
            assert_non_null(strstr(out, line));
        }
        free(out);
    }
    static const char *const topics[] = {MANAGERS, SPECIALISTS};
    for (size_t t = 0; t < 2; t++) {
        struct cf_roster_view *view = NULL;
        char err[256] = "";
        assert_int_equal(cf_roster_view_new(config, serde, topics[t], &view, err, sizeof(err)),
                         CF_OK);
        if (cf_roster_view_sync(view, ARRIVAL_TIMEOUT_MS, err, sizeof(err)) != CF_OK)
            fail_msg("%s: %s", topics[t], err);
        const json_t *entries = cf_roster_view_entries(view);
        assert_int_equal(json_object_size(entries), t == 0 ? 1 : 0);
        if (t == 0)
            assert_non_null(json_object_get(entries, second));
        cf_roster_view_free(view);
    }
    /* Its own manager goes too: no test roster stays live on the shared topics. */
    char *last_out = NULL;
    json_t *gone = json_pack("{s:[{s:s, s:b}]}", "care_managers", "manager_id", second, "delete", 1);
    write_temp_json(path, sizeof(path), gone);
    assert_int_equal(roster_load(path, &last_out), 0);
    unlink(path);
    free(last_out);
    json_decref(gone);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_roster),
        cmocka_unit_test(test_tombstone),
        cmocka_unit_test(test_bad_files_produce_nothing),
        cmocka_unit_test(test_replace),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
