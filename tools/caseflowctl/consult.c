/* consult.c — an operator's commands on a case's current teleconsultation: record the
 * specialist's outcome (consult complete: TeleconsultCompleted), and ask the scheduler to move
 * or cancel it on the patient's behalf (reschedule, cancel: TeleconsultChangeRequested).
 *
 * The current teleconsultation is the case's newest TeleconsultScheduled on
 * caseflow.teleconsult.scheduled, found by reading that topic from its beginning up to the end
 * offsets it had when the command started (the topic is keyed by case_id, so only the case's
 * own records are decoded). Its teleconsult_id, tokens, correlation_id and event_id (as the
 * new event's causation_id) go into the produced record, which ctl_produce_json_quiet checks,
 * keys by case_id and sends with CloudEvents headers. Arguments are checked before the stack is
 * touched. Nothing printed or logged carries a token or personal data: ids only. */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "avro_convert.h"
#include "clock.h"
#include "ctl.h"
#include "kafka.h"
#include "uuid.h"

#define SCHEDULED_TOPIC "caseflow.teleconsult.scheduled"
#define COMPLETED_TOPIC "caseflow.teleconsult.completed"
#define CHANGE_TOPIC "caseflow.teleconsult.change-requested"

/* Longest note code (TeleconsultCompleted.notes_code): a stable code, never free text. */
#define NOTE_MAX 64
/* Longest token accepted from --token: far more than a signed token needs. */
#define TOKEN_MAX 1024

static const char complete_usage[] =
    "usage: caseflowctl consult complete CASE --outcome eligible|not-eligible|needs-tests|"
    "no-show [--sessions 1|2] [--follow-ups 1|2] [--note CODE]";
static const char reschedule_usage[] =
    "usage: caseflowctl reschedule CASE [--after YYYY-MM-DDTHH:MM:SSZ] [--token T]";
static const char cancel_usage[] = "usage: caseflowctl cancel CASE [--token T]";

/* The outcomes an operator may record: the command's word and the TeleconsultOutcome symbol
 * (UNKNOWN is the reader's fallback and never written). */
static const struct {
    const char *word;
    const char *symbol;
} outcomes[] = {
    {"eligible", "ELIGIBLE"},
    {"not-eligible", "NOT_ELIGIBLE"},
    {"needs-tests", "NEEDS_TESTS"},
    {"no-show", "NO_SHOW"},
};

/* True for a stable code: [A-Z0-9_]{1,NOTE_MAX}. */
static bool is_code(const char *text)
{
    size_t n = strlen(text);
    if (n == 0 || n > NOTE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/* "--name VALUE" at argv[*i]: returns VALUE and advances *i, or NULL if argv[*i] is not name.
 * *bad is set (after reporting) when name is there without a value or a second time (*seen
 * says whether it was there before). */
static const char *option(int argc, char **argv, int *i, const char *name, bool *seen, bool *bad,
                          const char *cmd)
{
    if (strcmp(argv[*i], name) != 0)
        return NULL;
    if (*seen) {
        ctl_error("%s: %s given twice", cmd, name);
        *bad = true;
        return NULL;
    }
    if (*i + 1 >= argc || argv[*i + 1][0] == '\0') {
        ctl_error("%s: %s needs a value", cmd, name);
        *bad = true;
        return NULL;
    }
    *seen = true;
    return argv[++*i];
}

/* Checks the case id argument (argv[1]) and writes it in lower case into case_id (ids are
 * written lower-case, Meta says, and the topic's keys are compared byte for byte); reports and
 * returns -1 when it is missing or not a UUID. */
static int check_case(int argc, char **argv, const char *cmd, const char *usage,
                      char case_id[CF_UUID_LEN + 1])
{
    if (argc < 2 || argv[1][0] == '-') {
        ctl_error("%s: no case id (%s)", cmd, usage);
        return -1;
    }
    if (!cf_uuid_valid(argv[1])) {
        ctl_error("%s: case id must be a UUID (8-4-4-4-12 hex)", cmd);
        return -1;
    }
    for (size_t i = 0; i <= CF_UUID_LEN; i++)
        case_id[i] = (char)tolower((unsigned char)argv[1][i]);
    return 0;
}

/* What read_newest_booking keeps while the topic goes by. */
struct newest {
    json_t *value;
    size_t undecodable;
};

static int keep_newest(void *ctx, const struct cf_kafka_record *r, json_t *value,
                       const char *error)
{
    struct newest *nw = ctx;
    (void)r;
    if (value != NULL) {
        json_decref(nw->value);
        nw->value = json_incref(value);
    } else if (error != NULL) {
        nw->undecodable++;
    }
    return 0;
}

/* Reads SCHEDULED_TOPIC to its end and keeps the newest record of case_id into *out (decoded,
 * the caller's; NULL when the case has none). Records of one case share a partition (the key),
 * so the newest read is the newest written. Returns an exit code after reporting. */
static int read_newest_booking(const struct ctl *ctl, const char *cmd, const char *case_id,
                               json_t **out)
{
    const char *const topics[] = {SCHEDULED_TOPIC};
    struct newest nw = {NULL, 0};

    *out = NULL;
    int rc = ctl_read_key(ctl, cmd, topics, 1, case_id, keep_newest, &nw);
    if (rc != CTL_EXIT_OK) {
        json_decref(nw.value);
        return rc;
    }
    if (nw.value == NULL) {
        ctl_error("%s: case %s not found: no teleconsultation of it on %s%s", cmd, case_id,
                  SCHEDULED_TOPIC,
                  nw.undecodable > 0 ? " (some of its records could not be decoded)" : "");
        return CTL_EXIT_FAIL;
    }
    if (nw.undecodable > 0)
        ctl_error("%s: warning: %zu record(s) of case %s on %s could not be decoded and were "
                  "skipped",
                  cmd, nw.undecodable, case_id, SCHEDULED_TOPIC);
    *out = nw.value;
    return CTL_EXIT_OK;
}

/* The case's current teleconsultation: its newest TeleconsultScheduled, which must be BOOKED or
 * RESCHEDULED (a CANCELLED one has nothing left to complete or change). Returns an exit code
 * after reporting; *out is the caller's on CTL_EXIT_OK. */
static int current_booking(const struct ctl *ctl, const char *cmd, const char *case_id,
                           json_t **out)
{
    json_t *booking = NULL;
    int rc = read_newest_booking(ctl, cmd, case_id, &booking);
    if (rc != CTL_EXIT_OK)
        return rc;
    const char *status = json_string_value(json_object_get(booking, "status"));
    const char *tc_id = json_string_value(json_object_get(booking, "teleconsult_id"));
    if (status == NULL || (strcmp(status, "BOOKED") != 0 && strcmp(status, "RESCHEDULED") != 0)) {
        ctl_error("%s: case %s: its newest teleconsultation %s is %s, not BOOKED or RESCHEDULED",
                  cmd, case_id, tc_id != NULL ? tc_id : "?", status != NULL ? status : "?");
        json_decref(booking);
        return CTL_EXIT_FAIL;
    }
    *out = booking;
    return CTL_EXIT_OK;
}

/* A new meta for the event that answers booking: a new event_id, the case, now, this program,
 * the booking's correlation_id, and the booking's event_id as the cause. Writes the new
 * event_id into event_id. NULL when out of memory or randomness. */
static json_t *new_meta(const json_t *booking, const char *case_id, char event_id[CF_UUID_LEN + 1])
{
    const json_t *meta = json_object_get(booking, "meta");
    const char *correlation_id = json_string_value(json_object_get(meta, "correlation_id"));
    const char *cause = json_string_value(json_object_get(meta, "event_id"));
    char now[40];

    if (correlation_id == NULL || cause == NULL || cf_uuid_v4(event_id) != CF_OK)
        return NULL;
    cf_avro_format_millis(cf_clock_wall_ms(), now, sizeof(now));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "event_id", event_id, "case_id", case_id,
                     "occurred_at", now, "producer", "caseflowctl/" CF_VERSION, "correlation_id",
                     correlation_id, "causation_id", cause);
}

/* Finishes a command: sets record's meta for booking, produces record to topic and prints the
 * one result line. Takes no reference. Returns an exit code. */
static int send(const struct ctl *ctl, const char *cmd, const char *topic, json_t *record,
                const json_t *booking, const char *case_id)
{
    char event_id[CF_UUID_LEN + 1];
    const char *tc_id = json_string_value(json_object_get(record, "teleconsult_id"));
    json_t *meta = new_meta(booking, case_id, event_id);
    if (meta == NULL || json_object_set_new(record, "meta", meta) != 0) {
        ctl_error("%s: cannot make the event's meta (memory or randomness)", cmd);
        return CTL_EXIT_FAIL;
    }
    int rc = ctl_produce_json_quiet(ctl, topic, record, cmd);
    if (rc != CTL_EXIT_OK)
        return rc;
    /* Ids only: the tokens the record carries are the patient's. */
    json_t *line = json_pack("{s:s, s:s, s:s, s:s?}", "topic", topic, "case_id", case_id,
                             "event_id", event_id, "teleconsult_id", tc_id);
    char *text = line != NULL ? json_dumps(line, JSON_COMPACT) : NULL;
    rc = CTL_EXIT_OK;
    if (text == NULL || puts(text) == EOF || fflush(stdout) == EOF) {
        /* Sent already: say so, so the operator does not send it again. */
        ctl_error("%s: event %s sent, but cannot write to stdout", cmd, event_id);
        rc = CTL_EXIT_FAIL;
    }
    free(text);
    json_decref(line);
    return rc;
}

int ctl_consult_complete(const struct ctl *ctl, int argc, char **argv)
{
    static const char cmd[] = "consult complete";
    const char *outcome = NULL, *note = NULL;
    long long sessions = 0, follow_ups = 0;
    bool seen_outcome = false, seen_sessions = false, seen_follow_ups = false, seen_note = false;
    char case_id[CF_UUID_LEN + 1];
    json_t *booking = NULL, *record = NULL;
    int rc = CTL_EXIT_USAGE;

    if (check_case(argc, argv, cmd, complete_usage, case_id) != 0)
        goto out;
    for (int i = 2; i < argc; i++) {
        bool bad = false;
        const char *v;
        if ((v = option(argc, argv, &i, "--outcome", &seen_outcome, &bad, cmd)) != NULL) {
            for (size_t k = 0; k < sizeof(outcomes) / sizeof(outcomes[0]); k++)
                if (strcmp(v, outcomes[k].word) == 0)
                    outcome = outcomes[k].symbol;
            if (outcome == NULL) {
                ctl_error("%s: bad outcome (eligible, not-eligible, needs-tests, no-show)", cmd);
                goto out;
            }
        } else if (!bad &&
                   (v = option(argc, argv, &i, "--sessions", &seen_sessions, &bad, cmd)) != NULL) {
            if (ctl_parse_int(v, 1, 2, &sessions) != 0) {
                ctl_error("%s: --sessions must be 1 or 2", cmd);
                goto out;
            }
        } else if (!bad && (v = option(argc, argv, &i, "--follow-ups", &seen_follow_ups, &bad,
                                       cmd)) != NULL) {
            if (ctl_parse_int(v, 1, 2, &follow_ups) != 0) {
                ctl_error("%s: --follow-ups must be 1 or 2", cmd);
                goto out;
            }
        } else if (!bad && (v = option(argc, argv, &i, "--note", &seen_note, &bad, cmd)) != NULL) {
            if (!is_code(v)) {
                ctl_error("%s: --note must be a code of 1 to %d characters A-Z, 0-9, _ (no "
                          "free text)",
                          cmd, NOTE_MAX);
                goto out;
            }
            note = v;
        } else {
            if (!bad)
                ctl_error("%s: unknown argument %.64s (%s)", cmd, argv[i], complete_usage);
            goto out;
        }
    }
    if (outcome == NULL) {
        ctl_error("%s: --outcome is required (%s)", cmd, complete_usage);
        goto out;
    }
    if (strcmp(outcome, "ELIGIBLE") == 0) {
        if (!seen_sessions) {
            ctl_error("%s: --outcome eligible needs --sessions 1|2 (the treatment plan)", cmd);
            goto out;
        }
        if (!seen_follow_ups)
            follow_ups = 1;
    } else if (seen_sessions || seen_follow_ups) {
        /* The schema's rule: sessions and follow-ups are planned for ELIGIBLE only. */
        ctl_error("%s: --sessions and --follow-ups go with --outcome eligible only", cmd);
        goto out;
    }

    rc = current_booking(ctl, cmd, case_id, &booking);
    if (rc != CTL_EXIT_OK)
        goto out;
    record = json_pack("{s:O, s:s, s:I, s:I, s:s?}", "teleconsult_id",
                       json_object_get(booking, "teleconsult_id"), "outcome", outcome,
                       "sessions_planned", (json_int_t)sessions, "follow_ups_planned",
                       (json_int_t)follow_ups, "notes_code", note);
    if (record == NULL) {
        ctl_error("%s: out of memory", cmd);
        rc = CTL_EXIT_FAIL;
        goto out;
    }
    rc = send(ctl, cmd, COMPLETED_TOPIC, record, booking, case_id);
out:
    json_decref(record);
    json_decref(booking);
    return rc;
}

/* reschedule and cancel: TeleconsultChangeRequested with action, the booking's token (or
 * --token's) and, for RESCHEDULE, --after as preferred_start. */
static int change(const struct ctl *ctl, int argc, char **argv, bool reschedule)
{
    const char *cmd = reschedule ? "reschedule" : "cancel";
    const char *usage = reschedule ? reschedule_usage : cancel_usage;
    const char *token = NULL, *after = NULL;
    bool seen_token = false, seen_after = false;
    char preferred[40];
    char case_id[CF_UUID_LEN + 1];
    json_t *booking = NULL, *record = NULL;
    int rc = CTL_EXIT_USAGE;

    if (check_case(argc, argv, cmd, usage, case_id) != 0)
        goto out;
    for (int i = 2; i < argc; i++) {
        bool bad = false;
        const char *v;
        if ((v = option(argc, argv, &i, "--token", &seen_token, &bad, cmd)) != NULL) {
            if (strlen(v) > TOKEN_MAX) {
                ctl_error("%s: --token longer than %d characters", cmd, TOKEN_MAX);
                goto out;
            }
            token = v;
        } else if (!bad && reschedule &&
                   (v = option(argc, argv, &i, "--after", &seen_after, &bad, cmd)) != NULL) {
            int64_t ms = 0;
            size_t n = strlen(v);
            /* UTC only: an offset the operator typed would be easy to misread later. */
            if (n == 0 || v[n - 1] != 'Z' || cf_avro_parse_millis(v, &ms) != CF_OK) {
                ctl_error("%s: --after must be an ISO 8601 UTC time such as "
                          "2026-12-01T09:00:00Z",
                          cmd);
                goto out;
            }
            cf_avro_format_millis(ms, preferred, sizeof(preferred));
            after = preferred;
        } else {
            if (!bad)
                ctl_error("%s: unknown argument %.64s (%s)", cmd, argv[i], usage);
            goto out;
        }
    }

    rc = current_booking(ctl, cmd, case_id, &booking);
    if (rc != CTL_EXIT_OK)
        goto out;
    if (token == NULL) {
        token = json_string_value(
            json_object_get(booking, reschedule ? "reschedule_token" : "cancel_token"));
        if (token == NULL) {
            ctl_error("%s: case %s: teleconsultation %s has no %s token (--token gives one)", cmd,
                      case_id, json_string_value(json_object_get(booking, "teleconsult_id")), cmd);
            rc = CTL_EXIT_FAIL;
            goto out;
        }
    }
    record = json_pack(
        "{s:O, s:s, s:s, s:s?}", "teleconsult_id", json_object_get(booking, "teleconsult_id"),
        "action", reschedule ? "RESCHEDULE" : "CANCEL", "token", token, "preferred_start", after);
    if (record == NULL) {
        ctl_error("%s: out of memory", cmd);
        rc = CTL_EXIT_FAIL;
        goto out;
    }
    rc = send(ctl, cmd, CHANGE_TOPIC, record, booking, case_id);
out:
    json_decref(record);
    json_decref(booking);
    return rc;
}

int ctl_reschedule(const struct ctl *ctl, int argc, char **argv)
{
    return change(ctl, argc, argv, true);
}

int ctl_cancel(const struct ctl *ctl, int argc, char **argv)
{
    return change(ctl, argc, argv, false);
}
