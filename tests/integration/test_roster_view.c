/* test_roster_view.c — common/roster_view against the real stack: a view synced at start holds
 * the newest record of every key on the compacted care-manager topic, follows updates and
 * tombstones while it runs, and skips (and counts) records it cannot use without stopping.
 *
 * The topic is shared with other tests and the demo, so the test only looks at ids unique to
 * its run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "avro_serde.h"
#include "clock.h"
#include "config.h"
#include "kafka.h"
#include "registry.h"
#include "roster_view.h"
#include "test_env.h"
#include "uuid.h"

#define MANAGERS "caseflow.roster.care-managers"
#define SYNC_TIMEOUT_MS 30000
#define FOLLOW_TIMEOUT_MS 15000

static char run_id[24];
static struct cf_config *config;
static struct cf_registry *registry;
static struct cf_serde *serde;
static struct cf_kafka_producer *producer;

static const struct cf_config_entry table[] = {
    CF_CONFIG_COMMON_ENTRIES,
};

/* A care manager of this run: id "rv-<run>-<suffix>". */
static json_t *manager(const char *suffix, int capacity, char *id, size_t idlen)
{
    char event_id[CF_UUID_LEN + 1];
    (void)snprintf(id, idlen, "rv-%s-%s", run_id, suffix);
    assert_int_equal(cf_uuid_v4(event_id), CF_OK);
    /* Roster records belong to no case; correlation_id is not nullable: the event's own id. */
    return json_pack("{s:{s:s,s:n,s:I,s:s,s:s,s:n},s:s,s:s,s:s,s:[s],s:[s],s:i,s:b,s:b}", "meta",
                     "event_id", event_id, "case_id", "occurred_at",
                     (json_int_t)cf_clock_wall_ms(), "producer", "test/0", "correlation_id",
                     event_id, "causation_id", "manager_id", id, "name", "Test Manager", "email",
                     "manager@example.org", "languages", "en", "countries", "GB", "capacity",
                     capacity, "urgent_capable", 1, "active", 1);
}

static void produce_raw(const char *key, const void *value, size_t len)
{
    char err[512] = "";
    cf_status st = cf_kafka_produce_sync(producer, MANAGERS, key, strlen(key), value, len, NULL, 0,
                                         30000, err, sizeof(err));
    if (st != CF_OK)
        fail_msg("produce: %s", err);
}

static void produce_entry(const char *key, const json_t *entry)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    char err[512] = "";
    if (cf_serde_encode_json(serde, MANAGERS, entry, &buf, &len, err, sizeof(err)) != CF_OK)
        fail_msg("encode: %s", err);
    produce_raw(key, buf, len);
    free(buf);
}

static int setup(void **state)
{
    (void)state;
    char err[512] = "";
    cf_test_run_id(run_id, sizeof(run_id));
    if (cf_test_service_clients(table, sizeof(table) / sizeof(table[0]), &config, &registry,
                                &serde) != 0)
        return -1;
    if (cf_kafka_producer_new(config, NULL, 30000, &producer, err, sizeof(err)) != CF_OK) {
        fprintf(stderr, "producer: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cf_kafka_producer_free(producer);
    cf_test_service_teardown(0, NULL, NULL, serde, registry, config);
    return 0;
}

static void test_sync_then_follow(void **state)
{
    (void)state;
    char a[64], b[64], other[64], err[512] = "";
    json_t *ea = manager("a", 10, a, sizeof(a));
    json_t *eb = manager("b", 20, b, sizeof(b));
    json_t *eother = manager("other", 5, other, sizeof(other));

    /* Before the view starts: a, b (twice: the newest wins), a record that is not Avro, and an
     * entry under a key that is not its id. */
    produce_entry(a, ea);
    produce_entry(b, eb);
    json_object_set_new(eb, "capacity", json_integer(21));
    produce_entry(b, eb);
    produce_raw(other, "not avro", 8);
    produce_entry(a, eother); /* key a, id other: skipped, a keeps its entry */

    struct cf_roster_view *view = NULL;
    assert_int_equal(cf_roster_view_new(config, serde, MANAGERS, &view, err, sizeof(err)), CF_OK);
    if (cf_roster_view_sync(view, SYNC_TIMEOUT_MS, err, sizeof(err)) != CF_OK)
        fail_msg("sync: %s", err);
    const json_t *got = cf_roster_view_find(view, a);
    assert_non_null(got);
    /* Every field as produced (meta's times come back in the JSON form's ISO text). */
    const char *fields[] = {"manager_id", "name", "email", "languages", "countries", "capacity",
                            "urgent_capable", "active"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        assert_true(json_equal(json_object_get(got, fields[i]), json_object_get(ea, fields[i])));
    assert_true(json_equal(json_object_get(json_object_get(got, "meta"), "event_id"),
                           json_object_get(json_object_get(ea, "meta"), "event_id")));
    got = cf_roster_view_find(view, b);
    assert_non_null(got);
    assert_int_equal(json_integer_value(json_object_get(got, "capacity")), 21);
    assert_string_equal(json_string_value(json_object_get(got, "email")), "manager@example.org");
    assert_null(cf_roster_view_find(view, other));
    assert_true(cf_roster_view_skipped(view) >= 2);
    assert_non_null(json_object_get(cf_roster_view_entries(view), a));

    /* While it runs: a changes, b is removed by a tombstone. */
    uint64_t version = cf_roster_view_version(view);
    json_object_set_new(ea, "active", json_false());
    produce_entry(a, ea);
    produce_raw(b, NULL, 0);
    int64_t deadline = cf_clock_mono_ms() + FOLLOW_TIMEOUT_MS;
    for (;;) {
        bool changed = false;
        assert_int_equal(cf_roster_view_poll(view, &changed, err, sizeof(err)), CF_OK);
        const json_t *now_a = cf_roster_view_find(view, a);
        if (cf_roster_view_find(view, b) == NULL && now_a != NULL &&
            json_is_false(json_object_get(now_a, "active")))
            break;
        if (cf_clock_mono_ms() > deadline)
            fail_msg("the view did not follow the update and the tombstone within %d ms",
                     FOLLOW_TIMEOUT_MS);
        cf_clock_sleep_ms(50);
    }
    assert_true(cf_roster_view_version(view) >= version + 2);

    /* Leave the shared topic without this run's entries. */
    produce_raw(a, NULL, 0);
    cf_roster_view_free(view);
    json_decref(ea);
    json_decref(eb);
    json_decref(eother);
}

static void test_rejects_other_topics(void **state)
{
    (void)state;
    struct cf_roster_view *view = NULL;
    char err[256] = "";
    assert_int_equal(
        cf_roster_view_new(config, serde, "caseflow.case.opened", &view, err, sizeof(err)),
        CF_EINVAL);
    assert_null(view);
    assert_non_null(strstr(err, "caseflow.case.opened"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_then_follow),
        cmocka_unit_test(test_rejects_other_topics),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
