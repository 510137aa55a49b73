/* main.c — caseflowctl, the operator CLI (DESIGN.md §4): argument dispatch, configuration,
 * logging and signals. The commands live in topics.c, schemas.c, tail.c, produce.c, case.c,
 * roster.c, consult.c, group.c, timeline.c, stats.c and dlq.c. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "log.h"

/* POSIX: the application declares environ itself. */
extern char **environ;

/* The process's only mutable global: set by SIGINT/SIGTERM, polled by long-running commands
 * (tail) between waits of at most 500 ms. */
static volatile sig_atomic_t stop_requested;

static const struct cf_config_entry config_table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    {"CASEFLOW_KAFKA_TIMEOUT_MS", CF_CONFIG_INT, "30000", 1000, 600000,
     "timeout of one Kafka admin request, of one produced record's delivery, of connecting"},
    {"CASEFLOW_TOPIC_PARTITIONS", CF_CONFIG_INT, "3", 1, 10000,
     "partitions of each topic `topics create` makes"},
    {"CASEFLOW_TOPIC_REPLICATION", CF_CONFIG_INT, "1", 1, 32,
     "replication factor of each topic `topics create` makes (3 on a three-broker cluster)"},
    {"CASEFLOW_EVENT_RETENTION_DAYS", CF_CONFIG_INT, "30", 1, 36500,
     "retention of the event topics `topics create` makes (rosters are kept forever)"},
    {"CASEFLOW_DLQ_RETENTION_DAYS", CF_CONFIG_INT, "90", 1, 36500,
     "retention of the dead-letter topics `topics create` makes"},
};
#define CONFIG_N (sizeof(config_table) / sizeof(config_table[0]))

struct command {
    const char *group; /* first word */
    const char *verb;  /* second word, or NULL for a one-word command */
    const char *args;  /* the rest of the synopsis */
    const char *help;  /* what it does, indented lines */
    int (*run)(const struct ctl *ctl, int argc, char **argv);
};

static const struct command commands[] = {
    {"topics", "create", "",
     "    Create every caseflow topic and the dead-letter topics caseflow.dlq.<service>\n"
     "    (intake, validation, assignment, scheduler, notifier): events delete after\n"
     "    CASEFLOW_EVENT_RETENTION_DAYS, rosters compacted and kept forever, dead letters\n"
     "    delete after CASEFLOW_DLQ_RETENTION_DAYS. Topics that exist are left as they are.\n"
     "    Prints one line per topic with the settings the broker reports.\n",
     ctl_topics_create},
    {"schemas", "register", "",
     "    Register each topic's value schema (schemas/*.avsc, assembled) under\n"
     "    <topic>-value and set the subject's compatibility to BACKWARD.\n"
     "    Prints one line per subject: \"<subject> <id>\".\n",
     ctl_schemas_register},
    {"tail", NULL, "TOPIC [--from-beginning] [--case ID] [--max N] [--idle-exit-ms N]",
     "    Print the topic's records as JSON lines on stdout:\n"
     "    {\"topic\",\"partition\",\"offset\",\"key\",\"headers\":{..},\"value\":{..}}.\n"
     "    Reads committed records of every partition, from the end (or the beginning\n"
     "    with --from-beginning); joins no consumer group and commits nothing.\n"
     "    --case ID        only records whose key or value.meta.case_id is ID\n"
     "    --max N          exit after N printed records\n"
     "    --idle-exit-ms N exit when no record arrived for N ms\n"
     "    A record that cannot be decoded is printed with \"error\" instead of \"value\".\n"
     "    Stops on SIGINT/SIGTERM.\n",
     ctl_tail},
    {"produce", NULL, "TOPIC FILE.json|-",
     "    Produce the JSON object, or each object of the JSON array, in FILE (- reads\n"
     "    stdin) in caseflow's JSON form. A missing meta is filled in (new event_id,\n"
     "    occurred_at now, producer caseflowctl/<version>); for a topic whose schema is\n"
     "    meta plus one record (caseflow.inquiry.submitted: inquiry), a bare record is\n"
     "    wrapped, so a sample inquiry can be produced as it is. Every object is checked\n"
     "    before the first is sent. Prints {\"topic\",\"key\",\"event_id\"} per record.\n",
     ctl_produce},
    {"submit", NULL, "FILE.json|-",
     "    Submit the inquiry (or each inquiry of the array) in FILE, as web front ends do:\n"
     "    produce caseflow.inquiry.submitted with a bare inquiry wrapped.\n",
     ctl_submit},
    {"provide-info", NULL, "CASE FILE.json|-",
     "    Produce CaseInfoProvided for the case: FILE holds the fields supplied (contact,\n"
     "    reports, guardian, date_of_birth, description, meld_score, transplant_status,\n"
     "    consent); meta is filled in with the case id.\n",
     ctl_provide_info},
    {"review", NULL,
     "CASE approve|reject|request-info [--reason CODE] [--missing ITEM]... [--priority P]\n"
     "                     [--operator ID]",
     "    Record an operator's decision on a case under review (CaseReviewed). --reason is a\n"
     "    stable code (note_code), never free text; --missing names an InfoItem to ask for\n"
     "    (request-info; repeatable, e.g. --missing reports); --priority overrides\n"
     "    validation's (urgent, high, routine); --operator is an id, not a name.\n",
     ctl_review},
    {"roster", "load", "FILE.json|- [--replace]",
     "    Publish the roster in FILE: {\"care_managers\": [...], \"specialists\": [...]},\n"
     "    each entry a CareManager or Specialist in caseflow's JSON form without meta, to\n"
     "    caseflow.roster.care-managers (key manager_id) or caseflow.roster.specialists\n"
     "    (key specialist_id); {\"manager_id\": ID, \"delete\": true} (or specialist_id)\n"
     "    removes one with a tombstone. With --replace, every entry live on the topics\n"
     "    that FILE does not name is removed too, so the roster is FILE's and nothing\n"
     "    else. Every entry is checked before the first is sent.\n"
     "    Prints \"<topic> <key> upsert|tombstone\" per record.\n",
     ctl_roster_load},
    {"consult", "complete",
     "CASE --outcome eligible|not-eligible|needs-tests|no-show\n"
     "                     [--sessions 1|2] [--follow-ups 1|2] [--note CODE]",
     "    Record the specialist's outcome of the case's current teleconsultation\n"
     "    (TeleconsultCompleted on caseflow.teleconsult.completed). The current one is the\n"
     "    case's newest TeleconsultScheduled on caseflow.teleconsult.scheduled (read from\n"
     "    the beginning to its end); it must be BOOKED or RESCHEDULED. eligible needs\n"
     "    --sessions (treatment sessions, 1 or 2) and takes --follow-ups (1 or 2, default\n"
     "    1); the other outcomes take neither. --note is a stable code [A-Z0-9_]{1,64},\n"
     "    never free text. Prints {\"topic\",\"case_id\",\"event_id\",\"teleconsult_id\"}.\n",
     ctl_consult_complete},
    {"reschedule", NULL, "CASE [--after YYYY-MM-DDTHH:MM:SSZ] [--token T]",
     "    Ask the scheduler, on the patient's behalf, to move the case's current\n"
     "    teleconsultation (TeleconsultChangeRequested, action RESCHEDULE, on\n"
     "    caseflow.teleconsult.change-requested) with the reschedule token of its newest\n"
     "    TeleconsultScheduled. --after (UTC, \"Z\") is the earliest start wanted; without\n"
     "    it the next suitable slot. --token sends another token instead (for tests). Prints\n"
     "    {\"topic\",\"case_id\",\"event_id\",\"teleconsult_id\"}, never the token.\n",
     ctl_reschedule},
    {"cancel", NULL, "CASE [--token T]",
     "    The same with action CANCEL and the cancel token: cancel the case's current\n"
     "    teleconsultation.\n",
     ctl_cancel},
    {"group", "to-end", "GROUP TOPIC...",
     "    Move consumer group GROUP to the end of every partition of the TOPICs (the\n"
     "    committed offsets become the end offsets): its members then start after what\n"
     "    the topics hold now. What kafka-consumer-groups --reset-offsets --to-latest\n"
     "    does; the group must have no running member. For a test or demo stack.\n",
     ctl_group_to_end},
    {"case", NULL, "CASE_ID [--show-personal-data]",
     "    The case's timeline: every event of it on the case topics and every dead letter\n"
     "    of it, oldest first, one line each: time (UTC), event, producing service and\n"
     "    version, and the event's fields (its outcome, reasons, booking, ...). Without\n"
     "    --show-personal-data the patient's and staff's names, addresses, contact and\n"
     "    medical description, join links and change tokens are left out.\n",
     ctl_case},
    {"stats", NULL, "",
     "    How the pipeline stands, from the broker alone: offsets per topic, each service's\n"
     "    consumer lag on its input topics, dead letters per service, and how many cases\n"
     "    stand at each stage (the topic of each case's newest record). Reads keys,\n"
     "    offsets and timestamps only, no record values.\n",
     ctl_stats},
    {"dlq", "list", "SERVICE",
     "    The dead letters of SERVICE (intake, validation, assignment, scheduler, notifier)\n"
     "    on caseflow.dlq.<SERVICE>, read from the beginning to its end, one JSON line each:\n"
     "    {\"id\",\"reason\",\"error\",\"source_topic\",\"source_partition\",\n"
     "    \"source_offset\",\"service\",\"failed_at\",\"value_dropped\",\"key\",\"value_bytes\"}.\n"
     "    id is PARTITION:OFFSET on the dead-letter topic. The value is never shown.\n",
     ctl_dlq_list},
    {"dlq", "replay", "SERVICE [--id PARTITION:OFFSET]...",
     "    Send SERVICE's dead letters (all, or those named with --id, as dlq list prints\n"
     "    them) back to their source topic: the original key, value and headers, without\n"
     "    the dlq.* headers, in one transaction. An --id not on the topic fails the whole\n"
     "    run (nothing is sent). A dead letter whose value was dropped, that has no source\n"
     "    topic or whose source is not a caseflow topic is reported and skipped (exit 1).\n"
     "    Prints \"replayed <id> -> <topic>\" per record, then a count. Replaying a dead\n"
     "    letter twice sends it twice.\n",
     ctl_dlq_replay},
};
#define COMMANDS_N (sizeof(commands) / sizeof(commands[0]))

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    (void)sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
        return -1;
    /* `caseflowctl tail ... | head` closes the pipe under us: with SIGPIPE's default action
     * the process would die in the middle of a write, without closing the consumer. Ignored,
     * the write fails with EPIPE, which tail notices and turns into a clean stop. (Sockets to
     * the broker and the registry are written with MSG_NOSIGNAL by their libraries, but a
     * stray SIGPIPE must not kill an operator's command either way.) */
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        return -1;
    return 0;
}

static void print_synopsis(FILE *f, const struct command *c)
{
    (void)fprintf(f, "  caseflowctl %s%s%s%s%s\n", c->group, c->verb != NULL ? " " : "",
                  c->verb != NULL ? c->verb : "", c->args[0] != '\0' ? " " : "", c->args);
}

static void usage(FILE *f)
{
    (void)fprintf(f, "usage: caseflowctl COMMAND [ARGS]   (caseflowctl %s)\n\ncommands:\n",
                  CF_VERSION);
    for (size_t i = 0; i < COMMANDS_N; i++) {
        print_synopsis(f, &commands[i]);
        (void)fputs(commands[i].help, f);
    }
    (void)fputs("  caseflowctl help | --help | --version\n"
                "\n"
                "exit status: 0 ok, 1 runtime failure, 2 usage or configuration error\n"
                "\n"
                "configuration: environment variables, shown here with their defaults.\n"
                "Variables KAFKA_<NAME> are passed to librdkafka as <name> (lower case, '_' to\n"
                "'.'), e.g. KAFKA_BOOTSTRAP_SERVERS (default " CF_CONFIG_DEFAULT_BOOTSTRAP ").\n"
                "\n",
                f);
    cf_config_write_example(config_table, CONFIG_N, f);
}

static const struct command *find_command(int argc, char **argv, int *consumed)
{
    for (size_t i = 0; i < COMMANDS_N; i++) {
        const struct command *c = &commands[i];
        if (strcmp(argv[1], c->group) != 0)
            continue;
        if (c->verb == NULL) {
            *consumed = 1;
            return c;
        }
        if (argc > 2 && strcmp(argv[2], c->verb) == 0) {
            *consumed = 2;
            return c;
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    char err[CTL_ERR_MAX];
    struct cf_config *config = NULL;
    const struct command *cmd;
    cf_log_level level;
    int consumed = 0;
    int rc = CTL_EXIT_FAIL;

    if (argc < 2) {
        (void)fputs("usage: caseflowctl COMMAND [ARGS]\n", stderr);
        for (size_t i = 0; i < COMMANDS_N; i++)
            print_synopsis(stderr, &commands[i]);
        (void)fputs("caseflowctl --help describes each command and the configuration.\n",
                    stderr);
        return CTL_EXIT_USAGE;
    }
    if (ctl_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    }
    if (strcmp(argv[1], "--version") == 0) {
        (void)printf("caseflowctl %s\n", CF_VERSION);
        return fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    }
    cmd = find_command(argc, argv, &consumed);
    if (cmd == NULL) {
        ctl_error("unknown command \"%.64s%s%.64s\" (caseflowctl --help lists them)", argv[1],
                  argc > 2 ? " " : "", argc > 2 ? argv[2] : "");
        return CTL_EXIT_USAGE;
    }
    /* "caseflowctl tail --help" needs no configuration. */
    for (int i = consumed + 1; i < argc; i++) {
        if (ctl_is_help(argv[i])) {
            (void)fputs("usage:\n", stdout);
            print_synopsis(stdout, cmd);
            (void)fputs(cmd->help, stdout);
            return fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
        }
    }

    cf_status st = cf_config_load(config_table, CONFIG_N, environ, &config, err, sizeof(err));
    if (st != CF_OK) {
        ctl_error("configuration: %s", err);
        return st == CF_ECONFIG ? CTL_EXIT_USAGE : CTL_EXIT_FAIL;
    }
    if (cf_log_level_parse(cf_config_string(config, "CASEFLOW_LOG_LEVEL"), &level) != CF_OK) {
        ctl_error("configuration: CASEFLOW_LOG_LEVEL: expected debug, info, warn or error");
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    cf_log_init("caseflowctl", level);
    if (install_signals() != 0) {
        ctl_error("cannot install signal handlers");
        goto out;
    }

    const struct ctl ctl = {
        .config = config,
        .stop = &stop_requested,
        .kafka_timeout_ms = (int)cf_config_int(config, "CASEFLOW_KAFKA_TIMEOUT_MS"),
    };
    /* The command sees its last word as argv[0]. */
    rc = cmd->run(&ctl, argc - consumed, argv + consumed);
out:
    cf_config_free(config);
    return rc;
}
