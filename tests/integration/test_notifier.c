/* test_notifier.c — caseflow-notifier against the real stack (deploy/stack up): the events go
 * onto their topics (caseflowctl produce), the emails are read back from the SMTP server's
 * Maildir (tests/tools/mailbox.py parses them with Python's email package), the SMS from the
 * SMS recorder's record, the outcomes from caseflow.notification.status:
 *   - every event type in English, and three in Spanish, Turkish and Russian: one message per
 *     (event, channel) with a parsable MIME structure, the consultation's time in the
 *     patient's zone and language, the join / reschedule / cancel links, and the care manager's
 *     own email on CaseAssigned;
 *   - a name with CR LF and a Bcc header, and <script>, add no header, no recipient, no markup;
 *   - no consent: SKIPPED and nothing sent; SMS-only consent: the acknowledgement by SMS; an
 *     email address no SMTP server takes: FAILED for good, then the SMS fallback;
 *   - quiet hours: a booking's SMS waits, a reminder whose consultation comes first does not;
 *   - the SMS provider answering 500 then 201: delivered once on attempt 2; 400: FAILED, no
 *     retry; the SMTP server stopped: retried, delivered once when it is back;
 *   - Twilio's API instead of the JSON webhook, and the daily cap holding back a third SMS;
 *   - SIGKILL during a burst of 100 bookings: after a restart every email and SMS is there,
 *     every SMS once at the provider, every Message-ID at the SMTP server.
 * Independent of earlier runs: a Redis key prefix, Message-ID domain and addresses of its own,
 * the notifier's group moved past what other tests left. */
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
#include <strings.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "avro_convert.h"
#include "avro_serde.h"
#include "child.h"
#include "clock.h"
#include "config.h"
#include "http_client.h"
#include "kafka.h"
#include "plan.h"
#include "redis_raw.h"
#include "registry.h"
#include "test_env.h"
#include "uuid.h"

#define CTL CF_BINARY_DIR "/tools/caseflowctl/caseflowctl"
#define SERVICE CF_BINARY_DIR "/services/caseflow-notifier"
#define STACK CF_TESTS_DIR "/../deploy/stack"
#define MAILBOX_TOOL CF_TESTS_DIR "/tools/mailbox.py"
#define SMS_URL "http://127.0.0.1:18025"
#define CTL_TIMEOUT_MS 60000
#define WAIT_MS 60000
#define GROUP "caseflow-notifier"
#define T_DLQ "caseflow.dlq.notifier"
#define BURST 100
#define MAX_PARALLEL 16

/* 2030-03-05T15:00:00Z, a Tuesday: before the US moves its clocks (2030-03-10). */
#define START "2030-03-05T15:00:00.000Z"
#define END "2030-03-05T15:30:00.000Z"

static const char *const out_topics[] = {NOTIFIER_T_STATUS, T_DLQ};

static char run_id[24];
static char log_path[128];
static char msgid_domain[64];
static char maildir[512];
static time_t started_at;
static pid_t pid = -1;
static struct cf_config *config;
static struct cf_registry *registry;
static struct cf_serde *serde;
static struct cf_kafka_consumer *consumer;
static json_t *seen;
static int serial;        /* makes addresses unique within the run */
static bool smtp_stopped; /* by test_smtp_down: the teardown starts it again if it failed */

static const struct cf_config_entry table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
};

/* ---- The service ------------------------------------------------------------------------ */

/* Starts the notifier with the test's settings and extra[0..nextra) after them. */
static void start_notifier_with(const char *const *extra, size_t nextra)
{
    static char env[CF_TEST_SERVICE_ENV_MAX][160];
    size_t ne = 0;
    time_t now = time(NULL);
    struct tm utc;
    int64_t quiet_from = now - 90 * 60, quiet_to = now + 90 * 60;
    char from[8], to[8];

    /* Quiet hours around the present UTC time: a patient in UTC is in them now, the other
     * patients (three hours or more away) are not. */
    time_t t = (time_t)quiet_from;
    gmtime_r(&t, &utc);
    (void)strftime(from, sizeof(from), "%H:%M", &utc);
    t = (time_t)quiet_to;
    gmtime_r(&t, &utc);
    (void)strftime(to, sizeof(to), "%H:%M", &utc);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_INSTANCE_ID=test-notifier-%s", run_id);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_LOG_LEVEL=info");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_BATCH_MAX_MS=50");
    snprintf(env[ne++], sizeof(env[0]),
             "CASEFLOW_REDIS_KEY_PREFIX=caseflow:test-notifier-%s:", run_id);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_NOTIFIER_MESSAGE_ID_DOMAIN=%s", msgid_domain);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_NOTIFIER_QUIET_START=%s", from);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_NOTIFIER_QUIET_END=%s", to);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_NOTIFIER_RETRY_BASE_MS=600");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_NOTIFIER_RETRY_MAX_MS=2000");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_NOTIFIER_MAX_ATTEMPTS=30");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_NOTIFIER_MAX_PARALLEL=%d", MAX_PARALLEL);
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_NOTIFIER_TIMER_MS=200");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_NOTIFIER_CONNECT_TIMEOUT_MS=2000");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_NOTIFIER_SEND_TIMEOUT_MS=5000");
    snprintf(env[ne++], sizeof(env[0]), "CASEFLOW_NOTIFIER_HTTP_PORT=0");
    snprintf(env[ne++], sizeof(env[0]), "KAFKA_SESSION_TIMEOUT_MS=6000");
    snprintf(env[ne++], sizeof(env[0]), "KAFKA_HEARTBEAT_INTERVAL_MS=1000");
    for (size_t i = 0; i < nextra && ne < CF_TEST_SERVICE_ENV_MAX; i++)
        snprintf(env[ne++], sizeof(env[0]), "%s", extra[i]);
    pid = cf_test_spawn_service(SERVICE, env, ne, log_path);
}

static void start_notifier(void)
{
    start_notifier_with(NULL, 0);
}

/* deploy/stack CMD PART, with the state directory this test reads the Maildir of. */
static void stack(const char *cmd, const char *part)
{
    char *argv[] = {(char *)STACK, (char *)cmd, (char *)part, NULL};
    char out[160], state_dir[600];
    const char *dir = getenv("CASEFLOW_STATE_DIR");
    const char *extra[] = {state_dir, NULL};
    snprintf(out, sizeof(out), "/tmp/test-notifier-%s-stack.log", run_id);
    snprintf(state_dir, sizeof(state_dir), "CASEFLOW_STATE_DIR=%s", dir != NULL ? dir : "");
    pid_t child = cf_test_spawn(STACK, argv, dir != NULL && dir[0] != '\0' ? extra : NULL, out);
    assert_int_equal(cf_test_wait_child(child, 120000), 0);
}

static int setup(void **state)
{
    (void)state;
    const char *dir = getenv("CASEFLOW_STATE_DIR");
    cf_test_run_id(run_id, sizeof(run_id));
    snprintf(log_path, sizeof(log_path), "/tmp/test-notifier-%s.log", run_id);
    snprintf(msgid_domain, sizeof(msgid_domain), "t%s.caseflow.test", run_id);
    snprintf(maildir, sizeof(maildir), "%s/mail/Maildir",
             dir != NULL && dir[0] != '\0' ? dir : CF_TESTS_DIR "/../.state");
    started_at = time(NULL) - 1;
    if (cf_test_service_clients(table, sizeof(table) / sizeof(table[0]), &config, &registry,
                                &serde) != 0)
        return -1;
    seen = json_array();
    const char *create[] = {"topics", "create", NULL};
    free(cf_test_ctl(CTL, create, "/tmp/test-notifier-ctl-XXXXXX", CTL_TIMEOUT_MS));
    size_t nin = 0;
    const char *const *in_topics = notifier_plan_topics(&nin);
    cf_test_group_to_end(config, GROUP, in_topics, nin);
    consumer = cf_test_consumer_at_end(config, out_topics, 2);
    if (consumer == NULL)
        return -1;
    start_notifier();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (smtp_stopped)
        stack("start", "smtp");
    cf_test_service_teardown(pid, consumer, seen, serde, registry, config);
    return 0;
}

/* ---- Records ---------------------------------------------------------------------------- */

static bool is_not_dlq(const char *topic)
{
    return strcmp(topic, T_DLQ) != 0;
}

static const char *vstr(const json_t *rec, const char *k)
{
    return json_string_value(json_object_get(json_object_get(rec, "value"), k));
}

static void produce(const char *topic, json_t *records)
{
    cf_test_ctl_json(CTL, "produce", topic, records, "/tmp/test-notifier-doc-XXXXXX",
                     CTL_TIMEOUT_MS);
    json_decref(records);
}

static json_t *meta(const char *case_id)
{
    char event_id[CF_UUID_LEN + 1], when[32];
    assert_int_equal(cf_uuid_v4(event_id), CF_OK);
    cf_avro_format_millis(cf_clock_wall_ms(), when, sizeof(when));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:n}", "event_id", event_id, "case_id", case_id,
                     "occurred_at", when, "producer", "test/1", "correlation_id", case_id,
                     "causation_id");
}

static const char *event_id(const json_t *ev)
{
    return json_string_value(json_object_get(json_object_get(ev, "meta"), "event_id"));
}

/* A patient; email / phone NULL for none. The addresses are unique to the run. */
static json_t *patient(const char *given, const char *family, const char *lang, const char *zone,
                       bool email, bool sms)
{
    char mail[128], phone[24];
    int k = ++serial;
    snprintf(mail, sizeof(mail), "p%d.%s@example.org", k, run_id);
    snprintf(phone, sizeof(phone), "+1555%03d%04d", (int)(getpid() % 1000), k);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:[]}", "given_name", given,
                     "family_name", family, "language", lang, "country", "US", "time_zone", zone,
                     "email", mail, "phone", phone, "consent_email", email, "consent_sms", sms,
                     "contact_windows");
}

static json_t *with_case(json_t *ev, const char *case_id, json_t *recipient)
{
    json_object_set_new(ev, "meta", meta(case_id));
    json_object_set(ev, "recipient", recipient);
    return ev;
}

/* A CaseOpened from the sample (its inquiry is not read by the notifier) for r. */
static json_t *ev_opened(const char *case_id, json_t *r)
{
    json_t *ev = json_load_file(CF_TESTS_DIR "/integration/case_opened.json", 0, NULL);
    assert_non_null(ev);
    json_object_set_new(ev, "case_id", json_string(case_id));
    return with_case(ev, case_id, r);
}

static json_t *ev_scheduled(const char *case_id, json_t *r, const char *status, const char *start)
{
    char tid[CF_UUID_LEN + 1];
    cf_uuid_from_name(case_id, strlen(case_id), tid);
    bool cancelled = strcmp(status, "CANCELLED") == 0;
    return with_case(
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:o, s:o, s:o}", "status", status,
                  "teleconsult_id", tid, "specialist_id", "sp-test", "specialist_name",
                  "Dr. Selin Aydın", "start", start, "end", END, "previous_start",
                  strcmp(status, "RESCHEDULED") == 0 ? json_string("2030-03-04T15:00:00.000Z")
                                                     : json_null(),
                  "patient_time_zone", json_string_value(json_object_get(r, "time_zone")),
                  "specialist_time_zone", "Europe/Istanbul", "join_url",
                  cancelled ? json_null() : json_string("https://meet.example.org/j/tok123"),
                  "reschedule_token", cancelled ? json_null() : json_string("rs-Tok_1"),
                  "cancel_token", cancelled ? json_null() : json_string("cx-Tok_2")),
        case_id, r);
}

static json_t *ev_reminder(const char *case_id, json_t *r, const char *lead, const char *start)
{
    char tid[CF_UUID_LEN + 1];
    cf_uuid_from_name(case_id, strlen(case_id), tid);
    return with_case(json_pack("{s:s, s:s, s:s, s:s}", "teleconsult_id", tid, "start", start,
                               "lead", lead, "join_url", "https://meet.example.org/j/tok123"),
                     case_id, r);
}

/* ---- What arrived ------------------------------------------------------------------------ */

static void drain(int ms)
{
    int64_t deadline = cf_clock_mono_ms() + ms;
    while (cf_clock_mono_ms() < deadline)
        cf_test_poll_into(consumer, serde, is_not_dlq, 100, seen);
}

/* Statuses of notification id seen so far (status NULL: any). */
static size_t statuses(const char *id, const char *status, const json_t **last)
{
    size_t n = 0, i;
    json_t *rec;
    json_array_foreach(seen, i, rec)
    {
        if (strcmp(json_string_value(json_object_get(rec, "topic")), NOTIFIER_T_STATUS) != 0 ||
            vstr(rec, "notification_id") == NULL || strcmp(vstr(rec, "notification_id"), id) != 0)
            continue;
        if (status != NULL && strcmp(vstr(rec, "status"), status) != 0)
            continue;
        n++;
        if (last != NULL)
            *last = json_object_get(rec, "value");
    }
    return n;
}

/* Waits for a status of id (SENT, FAILED, SKIPPED) and returns its value. */
static const json_t *expect_status(const char *id, const char *status)
{
    int64_t deadline = cf_clock_mono_ms() + WAIT_MS;
    const json_t *last = NULL;
    while (statuses(id, status, &last) == 0) {
        if (cf_clock_mono_ms() > deadline) {
            char *log = cf_test_slurp(log_path);
            fail_msg("no %s status for notification %s; notifier log:\n%.20000s", status, id, log);
        }
        cf_test_poll_into(consumer, serde, is_not_dlq, 100, seen);
    }
    return last;
}

static void id_of(const json_t *ev, const char *channel, const char *audience, char out[37])
{
    notifier_plan_id(event_id(ev), channel, audience, out);
}

/* The messages at the SMTP server with the Message-IDs <ids[i]@domain>, as mailbox.py prints
 * them (a JSON array). */
static json_t *mail_with(const char *const *ids, size_t n)
{
    char *cmd = NULL;
    size_t cap = 256 + n * 96, used;
    char since[32];
    json_t *all = json_array();

    snprintf(since, sizeof(since), "%lld", (long long)started_at);
    cmd = malloc(cap);
    assert_non_null(cmd);
    used = (size_t)snprintf(cmd, cap, "/usr/bin/python3 %s %s --since %s", MAILBOX_TOOL, maildir,
                            since);
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(cmd + used, cap - used, " --message-id '<%s@%s>'", ids[i],
                                 msgid_domain);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *line = NULL;
    size_t len = 0;
    while (getline(&line, &len, p) > 0) {
        json_t *m = json_loads(line, 0, NULL);
        if (m != NULL)
            json_array_append_new(all, m);
    }
    free(line);
    assert_int_equal(pclose(p), 0);
    free(cmd);
    return all;
}

/* The one message with Message-ID <id@domain>, asserting there is exactly one. */
static json_t *one_mail(const char *id)
{
    const char *ids[] = {id};
    json_t *all = mail_with(ids, 1);
    if (json_array_size(all) != 1)
        fail_msg("%zu messages with Message-ID <%s@%s>, want 1", json_array_size(all), id,
                 msgid_domain);
    json_t *m = json_incref(json_array_get(all, 0));
    json_decref(all);
    return m;
}

/* The SMS recorder's records with idempotency key id. */
static json_t *sms_with(const char *id)
{
    struct cf_test_reply r = cf_test_http("GET", SMS_URL "/v1/messages", NULL, NULL, 0, 10000);
    assert_int_equal(r.status, 200);
    json_t *all = json_loads(r.body, 0, NULL), *out = json_array(), *rec;
    size_t i;
    assert_non_null(all);
    json_array_foreach(all, i, rec)
    {
        const char *key = json_string_value(json_object_get(rec, "idempotency_key"));
        if (key != NULL && strcmp(key, id) == 0)
            json_array_append(out, rec);
    }
    json_decref(all);
    cf_test_reply_free(&r);
    return out;
}

static const char *mstr(const json_t *m, const char *k)
{
    const char *s = json_string_value(json_object_get(m, k));
    return s != NULL ? s : "";
}

/* The email with notification id: arrived once, SENT, parsable multipart/alternative to the
 * patient's address, text and HTML both holding each of needles. */
static void check_mail(const char *id, const char *to, const char *const *needles)
{
    expect_status(id, "SENT");
    json_t *m = one_mail(id);
    assert_string_equal(mstr(m, "content_type"), "multipart/alternative");
    assert_int_equal(json_array_size(json_object_get(m, "defects")), 0);
    assert_non_null(strstr(mstr(m, "to"), to));
    assert_true(strlen(mstr(m, "subject")) > 5);
    for (size_t i = 0; needles != NULL && needles[i] != NULL; i++) {
        if (strstr(mstr(m, "text"), needles[i]) == NULL ||
            strstr(mstr(m, "html"), needles[i]) == NULL)
            fail_msg("email %s lacks \"%s\":\n%s", id, needles[i], mstr(m, "text"));
    }
    json_decref(m);
}

/* The SMS with notification id: recorded once, to the phone, holding each of needles. */
static void check_sms(const char *id, const char *phone, const char *const *needles)
{
    const json_t *st = expect_status(id, "SENT");
    json_t *recs = sms_with(id);
    assert_int_equal(json_array_size(recs), 1);
    const json_t *body = json_object_get(json_array_get(recs, 0), "body");
    assert_string_equal(json_string_value(json_object_get(body, "to")), phone);
    const char *text = json_string_value(json_object_get(body, "body"));
    for (size_t i = 0; needles != NULL && needles[i] != NULL; i++)
        if (strstr(text, needles[i]) == NULL)
            fail_msg("SMS %s lacks \"%s\": %s", id, needles[i], text);
    assert_true(json_integer_value(json_object_get(st, "sms_segments")) >= 1);
    json_decref(recs);
}

static void check_no_sms(const char *id)
{
    json_t *recs = sms_with(id);
    assert_int_equal(json_array_size(recs), 0);
    json_decref(recs);
    assert_int_equal(statuses(id, NULL, NULL), 0);
}

/* ---- Tests ------------------------------------------------------------------------------ */

/* Every event type for an English patient in Chicago; three for Spanish, Turkish, Russian. */
static void test_events_in_languages(void **state)
{
    (void)state;
    static const struct {
        const char *lang, *zone, *given, *date, *time;
    } langs[] = {
        {"en", "America/Chicago", "Grace", "March 5, 2030", "9:00 AM"},
        {"es-MX", "America/Mexico_City", "Lucía", "5 de marzo de 2030", "9:00"},
        {"tr", "Europe/Istanbul", "Ayşe", "5 Mart 2030", "18:00"},
        {"ru", "Europe/Moscow", "Ольга", "5 марта 2030", "18:00"},
    };
    char case_id[CF_UUID_LEN + 1], id[37], id2[37];

    for (size_t l = 0; l < sizeof(langs) / sizeof(langs[0]); l++) {
        json_t *r = patient(langs[l].given, "Tester", langs[l].lang, langs[l].zone, true, true);
        const char *email = json_string_value(json_object_get(r, "email"));
        const char *phone = json_string_value(json_object_get(r, "phone"));
        assert_int_equal(cf_uuid_v4(case_id), CF_OK);
        json_t *opened = ev_opened(case_id, r);
        json_t *booked = ev_scheduled(case_id, r, "BOOKED", START);
        json_t *reminder = ev_reminder(case_id, r, "H24", START);
        produce(NOTIFIER_T_OPENED, json_pack("[O]", opened));
        produce(NOTIFIER_T_SCHEDULED, json_pack("[O]", booked));
        produce(NOTIFIER_T_REMINDER, json_pack("[O]", reminder));

        /* The acknowledgement: email only, its SMS kept as the fallback. */
        const char *greet[] = {langs[l].given, NULL};
        id_of(opened, "EMAIL", "PATIENT", id);
        check_mail(id, email, greet);
        id_of(opened, "SMS", "PATIENT", id2);
        /* The booking: the time in the patient's zone and language, the links. */
        const char *when[] = {
            langs[l].date,    langs[l].time,    "https://meet.example.org/j/tok123",
            "token=rs-Tok_1", "token=cx-Tok_2", NULL};
        id_of(booked, "EMAIL", "PATIENT", id);
        check_mail(id, email, when);
        const char *sms_when[] = {langs[l].time, "https://meet.example.org/j/tok123", NULL};
        id_of(booked, "SMS", "PATIENT", id);
        check_sms(id, phone, sms_when);
        const json_t *st = expect_status(id, "SENT");
        assert_string_equal(json_string_value(json_object_get(st, "language")),
                            strncmp(langs[l].lang, "es", 2) == 0 ? "es" : langs[l].lang);
        id_of(reminder, "SMS", "PATIENT", id);
        check_sms(id, phone, sms_when);
        id_of(reminder, "EMAIL", "PATIENT", id);
        const char *remind[] = {langs[l].date, langs[l].time, "https://meet.example.org/j/tok123",
                                NULL};
        check_mail(id, email, remind);
        check_no_sms(id2);
        json_decref(opened);
        json_decref(booked);
        json_decref(reminder);

        if (l != 0) {
            json_decref(r);
            continue;
        }
        /* The other events, in English. */
        json_t *info = with_case(json_pack("{s:s, s:[], s:[s,s], s:s}", "priority", "ROUTINE",
                                           "reasons", "missing", "REPORTS", "MELD_SCORE",
                                           "expires_at", "2030-03-19T15:00:00.000Z"),
                                 case_id, r);
        json_t *rejected = with_case(json_pack("{s:s, s:[{s:s, s:{}}]}", "priority", "ROUTINE",
                                               "reasons", "code", "CONSENT_MISSING", "params"),
                                     case_id, r);
        json_t *assigned =
            with_case(json_pack("{s:s, s:s, s:s, s:b, s:s, s:b, s:s}", "manager_id", "cm-test",
                                "manager_name", "Casey Manager", "manager_email",
                                "casey.manager@example.org", "interpreter_needed", 1, "priority",
                                "URGENT", "returning_patient", 0, "category", "CIRRHOSIS"),
                      case_id, r);
        json_t *moved = ev_scheduled(case_id, r, "RESCHEDULED", START);
        json_t *cancelled = ev_scheduled(case_id, r, "CANCELLED", START);
        json_t *treatment =
            with_case(json_pack("{s:[{s:i, s:s}, {s:i, s:s}], s:s, s:s, s:[s]}", "sessions",
                                "number", 1, "date", "2030-03-20", "number", 2, "date",
                                "2030-04-04", "arrival_date", "2030-03-19", "departure_date",
                                "2030-04-06", "follow_ups", "2030-05-06T15:00:00.000Z"),
                      case_id, r);
        json_t *closed = with_case(json_pack("{s:s, s:n, s:s}", "reason", "TREATMENT_COMPLETED",
                                             "note_code", "manager_id", "cm-test"),
                                   case_id, r);
        produce(NOTIFIER_T_INFO, json_pack("[O]", info));
        produce(NOTIFIER_T_REJECTED, json_pack("[O]", rejected));
        produce(NOTIFIER_T_ASSIGNED, json_pack("[O]", assigned));
        produce(NOTIFIER_T_SCHEDULED, json_pack("[O, O]", moved, cancelled));
        produce(NOTIFIER_T_TREATMENT, json_pack("[O]", treatment));
        produce(NOTIFIER_T_CLOSED, json_pack("[O]", closed));

        id_of(info, "EMAIL", "PATIENT", id);
        check_mail(id, email, NULL);
        id_of(info, "SMS", "PATIENT", id);
        check_sms(id, phone, NULL);
        id_of(rejected, "EMAIL", "PATIENT", id);
        check_mail(id, email, NULL);
        id_of(assigned, "EMAIL", "PATIENT", id);
        const char *manager[] = {"Casey Manager", NULL};
        check_mail(id, email, manager);
        /* The care manager's own email: the case and its link, no medical details. */
        id_of(assigned, "EMAIL", "CARE_MANAGER", id);
        char link[160];
        snprintf(link, sizeof(link), "https://console.caseflow.example/cases/%s", case_id);
        const char *mgr[] = {link, NULL};
        check_mail(id, "casey.manager@example.org", mgr);
        json_t *m = one_mail(id);
        assert_null(strstr(mstr(m, "text"), "irrhosis"));
        assert_null(strstr(mstr(m, "text"), email));
        json_decref(m);
        id_of(moved, "EMAIL", "PATIENT", id);
        check_mail(id, email, when);
        id_of(cancelled, "EMAIL", "PATIENT", id);
        const char *gone[] = {langs[l].date, langs[l].time, NULL};
        check_mail(id, email, gone);
        m = one_mail(id);
        assert_null(strstr(mstr(m, "text"), "https://"));
        json_decref(m);
        id_of(cancelled, "SMS", "PATIENT", id);
        check_sms(id, phone, NULL);
        id_of(treatment, "EMAIL", "PATIENT", id);
        const char *days[] = {"March 20, 2030", "April 4, 2030", "March 19, 2030",
                              "April 6, 2030",  "May 6, 2030",   NULL};
        check_mail(id, email, days);
        id_of(treatment, "SMS", "PATIENT", id);
        check_sms(id, phone, NULL);
        id_of(closed, "EMAIL", "PATIENT", id);
        check_mail(id, email, NULL);
        json_decref(info);
        json_decref(rejected);
        json_decref(assigned);
        json_decref(moved);
        json_decref(cancelled);
        json_decref(treatment);
        json_decref(closed);
        json_decref(r);
    }
}

/* CR LF with a Bcc header in a name, <script> in another: no header, no recipient, no markup. */
static void test_injection(void **state)
{
    (void)state;
    char case_id[CF_UUID_LEN + 1], id[37];
    assert_int_equal(cf_uuid_v4(case_id), CF_OK);
    json_t *r = patient("Ana\r\nBcc: x@evil.example", "<script>alert(1)</script>", "en",
                        "America/Chicago", true, false);
    json_t *opened = ev_opened(case_id, r);
    produce(NOTIFIER_T_OPENED, json_pack("[O]", opened));
    id_of(opened, "EMAIL", "PATIENT", id);
    expect_status(id, "SENT");
    json_t *m = one_mail(id);
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(m, "headers"), i, h)
    {
        const char *name = json_string_value(json_array_get(h, 0));
        const char *value = json_string_value(json_array_get(h, 1));
        assert_true(strcasecmp(name, "Bcc") != 0);
        if (strcasecmp(name, "X-RcptTo") == 0)
            assert_string_equal(value, json_string_value(json_object_get(r, "email")));
    }
    assert_null(strstr(mstr(m, "html"), "<script>"));
    assert_non_null(strstr(mstr(m, "html"), "&lt;script&gt;"));
    assert_null(strchr(mstr(m, "subject"), '\n'));
    assert_null(strchr(mstr(m, "to"), '\n'));
    json_decref(m);
    json_decref(opened);
    json_decref(r);
}

/* No consent: SKIPPED, nothing sent. SMS only: the acknowledgement by SMS. An address the SMTP
 * server cannot take (non-ASCII, no SMTPUTF8): FAILED for good, then the SMS fallback. */
static void test_consent_and_fallback(void **state)
{
    (void)state;
    char c1[CF_UUID_LEN + 1], c2[CF_UUID_LEN + 1], c3[CF_UUID_LEN + 1], id[37], id2[37];
    assert_int_equal(cf_uuid_v4(c1), CF_OK);
    assert_int_equal(cf_uuid_v4(c2), CF_OK);
    assert_int_equal(cf_uuid_v4(c3), CF_OK);
    json_t *none = patient("Nadia", "Tester", "en", "America/Chicago", false, false);
    json_t *sms_only = patient("Omar", "Tester", "en", "America/Chicago", false, true);
    json_t *bad_mail = patient("Jürgen", "Tester", "en", "America/Chicago", true, true);
    json_object_set_new(bad_mail, "email", json_string("jürgen@example.org"));
    json_t *e1 = ev_opened(c1, none), *e2 = ev_opened(c2, sms_only), *e3 = ev_opened(c3, bad_mail);
    produce(NOTIFIER_T_OPENED, json_pack("[O, O, O]", e1, e2, e3));

    id_of(e1, "EMAIL", "PATIENT", id);
    const json_t *st = expect_status(id, "SKIPPED");
    assert_string_equal(json_string_value(json_object_get(st, "error_code")), "NO_CONSENT");
    const char *ids[] = {id};
    json_t *mails = mail_with(ids, 1);
    assert_int_equal(json_array_size(mails), 0);
    json_decref(mails);

    id_of(e2, "SMS", "PATIENT", id);
    const char *greet[] = {"Omar", NULL};
    check_sms(id, json_string_value(json_object_get(sms_only, "phone")), greet);

    id_of(e3, "EMAIL", "PATIENT", id);
    st = expect_status(id, "FAILED");
    assert_false(json_is_true(json_object_get(st, "will_retry")));
    id_of(e3, "SMS", "PATIENT", id2);
    st = expect_status(id2, "SENT");
    assert_true(json_is_true(json_object_get(st, "fallback")));
    check_sms(id2, json_string_value(json_object_get(bad_mail, "phone")), NULL);
    assert_int_equal(statuses(id, "SENT", NULL), 0);
    json_decref(e1);
    json_decref(e2);
    json_decref(e3);
    json_decref(none);
    json_decref(sms_only);
    json_decref(bad_mail);
}

/* A patient in UTC is in the quiet hours now: a booking's SMS waits, its email does not; a
 * reminder of a consultation that starts before the quiet hours end goes out at once. */
static void test_quiet_hours(void **state)
{
    (void)state;
    char case_id[CF_UUID_LEN + 1], id[37], soon[32];
    assert_int_equal(cf_uuid_v4(case_id), CF_OK);
    cf_avro_format_millis(cf_clock_wall_ms() + 30 * 60000, soon, sizeof(soon));
    json_t *r = patient("Quinn", "Tester", "en", "UTC", true, true);
    json_t *booked = ev_scheduled(case_id, r, "BOOKED", START);
    json_t *reminder = ev_reminder(case_id, r, "H1", soon);
    produce(NOTIFIER_T_SCHEDULED, json_pack("[O]", booked));
    id_of(booked, "EMAIL", "PATIENT", id);
    check_mail(id, json_string_value(json_object_get(r, "email")), NULL);
    produce(NOTIFIER_T_REMINDER, json_pack("[O]", reminder));
    id_of(reminder, "SMS", "PATIENT", id);
    check_sms(id, json_string_value(json_object_get(r, "phone")), NULL);
    /* The reminder came later and is through: the booking's SMS had every chance to go. */
    drain(1500);
    id_of(booked, "SMS", "PATIENT", id);
    check_no_sms(id);
    json_decref(booked);
    json_decref(reminder);
    json_decref(r);
}

static void fail_next_sms(int status, int n)
{
    char body[64];
    snprintf(body, sizeof(body), "{\"status\": %d, \"count\": %d}", status, n);
    struct cf_test_reply rep =
        cf_test_http("POST", SMS_URL "/_control/fail-next", NULL, body, strlen(body), 10000);
    assert_int_equal(rep.status, 200);
    cf_test_reply_free(&rep);
}

/* The provider answers 500, then 201: one SMS on attempt 2. Then 400: FAILED, not retried. */
static void test_sms_provider_errors(void **state)
{
    (void)state;
    char c1[CF_UUID_LEN + 1], c2[CF_UUID_LEN + 1], id[37];
    assert_int_equal(cf_uuid_v4(c1), CF_OK);
    assert_int_equal(cf_uuid_v4(c2), CF_OK);
    json_t *r1 = patient("Rosa", "Tester", "en", "America/Chicago", false, true);
    json_t *r2 = patient("Sam", "Tester", "en", "America/Chicago", false, true);
    json_t *e1 = ev_opened(c1, r1), *e2 = ev_opened(c2, r2);

    fail_next_sms(500, 1);
    produce(NOTIFIER_T_OPENED, json_pack("[O]", e1));
    id_of(e1, "SMS", "PATIENT", id);
    const json_t *st = expect_status(id, "FAILED");
    assert_true(json_is_true(json_object_get(st, "will_retry")));
    assert_string_equal(json_string_value(json_object_get(st, "error_code")), "HTTP_500");
    st = expect_status(id, "SENT");
    assert_int_equal(json_integer_value(json_object_get(st, "attempt")), 2);
    check_sms(id, json_string_value(json_object_get(r1, "phone")), NULL);

    fail_next_sms(400, 1);
    produce(NOTIFIER_T_OPENED, json_pack("[O]", e2));
    id_of(e2, "SMS", "PATIENT", id);
    st = expect_status(id, "FAILED");
    assert_false(json_is_true(json_object_get(st, "will_retry")));
    assert_string_equal(json_string_value(json_object_get(st, "error_code")), "HTTP_400");
    drain(3000); /* several retry periods */
    assert_int_equal(statuses(id, NULL, NULL), 1);
    json_t *recs = sms_with(id);
    assert_int_equal(json_array_size(recs), 0);
    json_decref(recs);
    json_decref(e1);
    json_decref(e2);
    json_decref(r1);
    json_decref(r2);
}

/* The SMTP server is down: the email is retried and delivered once when it is back. */
static void test_smtp_down(void **state)
{
    (void)state;
    char case_id[CF_UUID_LEN + 1], id[37];
    assert_int_equal(cf_uuid_v4(case_id), CF_OK);
    json_t *r = patient("Tomás", "Tester", "es", "America/Mexico_City", true, false);
    json_t *opened = ev_opened(case_id, r);
    smtp_stopped = true;
    stack("stop", "smtp");
    produce(NOTIFIER_T_OPENED, json_pack("[O]", opened));
    id_of(opened, "EMAIL", "PATIENT", id);
    const json_t *st = expect_status(id, "FAILED");
    assert_true(json_is_true(json_object_get(st, "will_retry")));
    assert_string_equal(json_string_value(json_object_get(st, "error_code")), "CONNECT");
    drain(1500);
    stack("start", "smtp");
    smtp_stopped = false;
    st = expect_status(id, "SENT");
    assert_true(json_integer_value(json_object_get(st, "attempt")) >= 2);
    check_mail(id, json_string_value(json_object_get(r, "email")), NULL);
    json_decref(opened);
    json_decref(r);
}

/* Twilio's Messages API (form POST, basic auth, its idempotency header) and a daily cap of 2:
 * three acknowledgements for one phone on one day, the third held for the next morning. */
static void test_twilio_and_daily_cap(void **state)
{
    (void)state;
    char account[64], id[3][37];
    snprintf(account, sizeof(account), "AC%s", run_id);
    for (char *c = account; *c != '\0'; c++)
        if (*c == '-')
            *c = '0';
    char api[] = "CASEFLOW_NOTIFIER_SMS_API=twilio", url[] = "CASEFLOW_NOTIFIER_SMS_URL=" SMS_URL,
         cap[] = "CASEFLOW_NOTIFIER_DAILY_CAP=2",
         token[] = "CASEFLOW_NOTIFIER_SMS_TOKEN=s3cret-tok";
    char acc[96];
    snprintf(acc, sizeof(acc), "CASEFLOW_NOTIFIER_SMS_ACCOUNT=%s", account);
    const char *extra[] = {api, url, cap, token, acc};
    assert_int_equal(cf_test_stop_child(&pid, 40000), 0);
    start_notifier_with(extra, sizeof(extra) / sizeof(extra[0]));

    json_t *r = patient("Uma", "Tester", "en", "America/Chicago", false, true);
    json_t *events = json_array();
    for (int k = 0; k < 3; k++) {
        char case_id[CF_UUID_LEN + 1];
        assert_int_equal(cf_uuid_v4(case_id), CF_OK);
        json_t *ev = ev_opened(case_id, r);
        id_of(ev, "SMS", "PATIENT", id[k]);
        json_array_append_new(events, ev);
    }
    produce(NOTIFIER_T_OPENED, events);
    /* Which two go first depends on the partitions the cases land on: any two. */
    int64_t deadline = cf_clock_mono_ms() + WAIT_MS;
    size_t sent = 0;
    while (sent < 2) {
        assert_true(cf_clock_mono_ms() < deadline);
        cf_test_poll_into(consumer, serde, is_not_dlq, 100, seen);
        sent = 0;
        for (int k = 0; k < 3; k++)
            sent += statuses(id[k], "SENT", NULL);
    }
    drain(2000);
    int held = -1;
    for (int k = 0; k < 3; k++) {
        if (statuses(id[k], "SENT", NULL) == 0) {
            assert_int_equal(held, -1);
            held = k;
            continue;
        }
        check_sms(id[k], json_string_value(json_object_get(r, "phone")), NULL);
        json_t *recs = sms_with(id[k]);
        const json_t *rec = json_array_get(recs, 0);
        assert_string_equal(json_string_value(json_object_get(rec, "api")), "twilio");
        assert_string_equal(json_string_value(json_object_get(rec, "account_sid")), account);
        const char *auth =
            json_string_value(json_object_get(json_object_get(rec, "headers"), "Authorization"));
        assert_non_null(auth);
        assert_null(strstr(auth, "s3cret"));
        json_decref(recs);
    }
    assert_true(held >= 0);
    check_no_sms(id[held]);
    json_decref(r);
    assert_int_equal(cf_test_stop_child(&pid, 40000), 0);
    start_notifier();
}

/* SIGKILL while a burst of bookings is being sent: after a restart every notification is SENT,
 * every SMS is at the provider once, every Message-ID at the SMTP server. */
static void test_kill_during_burst(void **state)
{
    (void)state;
    json_t *events = json_array(), *ev;
    char email_ids[BURST][37], sms_ids[BURST][37];
    const char *ids[BURST];
    size_t i;

    for (int k = 0; k < BURST; k++) {
        char case_id[CF_UUID_LEN + 1];
        assert_int_equal(cf_uuid_v4(case_id), CF_OK);
        json_t *r = patient("Burst", "Tester", "en", "America/Chicago", true, true);
        json_array_append_new(events, ev_scheduled(case_id, r, "BOOKED", START));
        json_decref(r);
    }
    json_array_foreach(events, i, ev)
    {
        id_of(ev, "EMAIL", "PATIENT", email_ids[i]);
        id_of(ev, "SMS", "PATIENT", sms_ids[i]);
        ids[i] = email_ids[i];
    }
    produce(NOTIFIER_T_SCHEDULED, json_incref(events));
    /* Kill once some are through and others are not. */
    int64_t deadline = cf_clock_mono_ms() + WAIT_MS;
    size_t sent = 0;
    while (sent < 10) {
        assert_true(cf_clock_mono_ms() < deadline);
        cf_test_poll_into(consumer, serde, is_not_dlq, 20, seen);
        sent = 0;
        for (int k = 0; k < BURST; k++)
            sent += statuses(email_ids[k], "SENT", NULL) > 0;
    }
    assert_int_equal(kill(pid, SIGKILL), 0);
    (void)cf_test_wait_child(pid, 10000);
    fprintf(stderr, "killed after %zu of %d emails reported sent\n", sent, BURST);
    start_notifier();
    for (int k = 0; k < BURST; k++) {
        expect_status(email_ids[k], "SENT");
        expect_status(sms_ids[k], "SENT");
    }
    json_t *mails = mail_with(ids, BURST);
    json_t *by_id = json_object();
    json_array_foreach(mails, i, ev)
    {
        const char *mid = mstr(ev, "message_id");
        json_object_set_new(by_id, mid,
                            json_integer(json_integer_value(json_object_get(by_id, mid)) + 1));
    }
    size_t twice = json_array_size(mails) - json_object_size(by_id);
    fprintf(stderr, "%zu emails for %zu Message-IDs (%zu sent again after the kill)\n",
            json_array_size(mails), json_object_size(by_id), twice);
    /* Every notification is there; an email sent again is the same Message-ID, and only one
     * in flight at the kill can be (at most the sends in flight). */
    assert_int_equal(json_object_size(by_id), BURST);
    assert_true(twice <= MAX_PARALLEL);
    for (int k = 0; k < BURST; k++) {
        json_t *recs = sms_with(sms_ids[k]);
        assert_int_equal(json_array_size(recs), 1);
        json_decref(recs);
    }
    json_decref(by_id);
    json_decref(mails);
    json_decref(events);
}

/* Nothing was dead-lettered, the log holds no name, address or phone number, every Redis key
 * the run left has a TTL and none holds an address, and the notifier stops cleanly. */
static void test_no_dead_letters_no_personal_data(void **state)
{
    (void)state;
    size_t i;
    json_t *rec;
    drain(500);
    json_array_foreach(seen, i, rec)
        assert_string_not_equal(json_string_value(json_object_get(rec, "topic")), T_DLQ);
    char *log = cf_test_slurp(log_path);
    static const char *const personal[] = {"Grace", "Lucía",         "Ayşe",
                                           "Ольга", "Tester",        "@example.org",
                                           "+1555", "Casey Manager", "script"};
    for (size_t k = 0; k < sizeof(personal) / sizeof(personal[0]); k++)
        if (strstr(log, personal[k]) != NULL)
            fail_msg("the notifier log holds \"%s\"", personal[k]);
    free(log);
    redisReply *keys =
        cf_test_redis_raw("127.0.0.1", 16379, "KEYS caseflow:test-notifier-%s:*", run_id);
    assert_non_null(keys);
    assert_int_equal(keys->type, REDIS_REPLY_ARRAY);
    assert_true(keys->elements > 2 * BURST); /* one per notification, the due set, cap sets */
    for (size_t k = 0; k < keys->elements; k++) {
        const char *key = keys->element[k]->str;
        assert_null(strchr(key, '@'));
        assert_null(strchr(key, '+'));
        redisReply *ttl = cf_test_redis_raw("127.0.0.1", 16379, "PTTL %s", key);
        assert_non_null(ttl);
        if (ttl->integer <= 0)
            fail_msg("Redis key %s has no TTL (%lld)", key, ttl->integer);
        freeReplyObject(ttl);
    }
    freeReplyObject(keys);
    /* SIGTERM: the batch in progress is finished and committed, the group is left. */
    assert_int_equal(cf_test_stop_child(&pid, 40000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_in_languages),
        cmocka_unit_test(test_injection),
        cmocka_unit_test(test_consent_and_fallback),
        cmocka_unit_test(test_quiet_hours),
        cmocka_unit_test(test_sms_provider_errors),
        cmocka_unit_test(test_smtp_down),
        cmocka_unit_test(test_twilio_and_daily_cap),
        cmocka_unit_test(test_kill_during_burst),
        cmocka_unit_test(test_no_dead_letters_no_personal_data),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
