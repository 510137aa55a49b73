/* caseflow-assignment — gives every validated case its dedicated care manager: consumes
 * caseflow.case.validated and caseflow.case.closed with the transactional loop, reads its own
 * caseflow.case.assigned and caseflow.case.pending back, follows the care-manager roster, and
 * serves the pending queue and its alerts with the loop's timer (assignment.c holds the Kafka
 * path, assignment_store.c the Redis scripts, assignment_roster.c the candidates, matching.c
 * the rule, README.md all of them).
 * Wiring only: configuration, logging, signals, the registry, Redis, the roster view and the
 * loop. Exit status: 0 after SIGTERM or SIGINT, 1 if the loop or a client failed, 2 on bad
 * config. */
#include "assignment.h"
#include "config.h"
#include "http.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "roster_view.h"
#include "service.h"

#include <string.h>

static const struct cf_config_entry config_table[] = {
    CF_CONFIG_COMMON_ENTRIES,
    CF_CONFIG_KAFKA_ENTRIES,
    CF_CONFIG_REDIS_ENTRIES,
    ASSIGNMENT_CONFIG_ENTRIES,
    CF_HTTP_OPS_CONFIG_ENTRIES("CASEFLOW_ASSIGNMENT", "18083"),
};

/* The service's own metrics besides the loop's: decisions by reason, releases, alerts,
 * re-emissions, and the pending queue's length (as the last serve saw it). */
static cf_status register_metrics(struct cf_metrics *metrics, void *ctx, char *err, size_t errlen)
{
    struct assignment *a = ctx;
    cf_status st = CF_OK;
    for (int r = 0; st == CF_OK && r <= ASSIGNMENT_REASON_NO_URGENT_ROOM; r++) {
        bool parked = r == ASSIGNMENT_REASON_NO_ROOM || r == ASSIGNMENT_REASON_NO_URGENT_ROOM;
        st = cf_metrics_counter_new(
            metrics,
            parked ? "caseflow_assignment_parked_total" : "caseflow_assignment_assigned_total",
            parked ? "Cases that started waiting for a care manager, by reason."
                   : "Cases assigned a care manager, by reason.",
            "reason", assignment_reason_code((enum assignment_reason)r), &a->decided[r], err,
            errlen);
    }
    if (st == CF_OK)
        st = cf_metrics_counter_new(metrics, "caseflow_assignment_released_total",
                                    "Cases released by a CaseClosed (capacity freed or queue left).",
                                    NULL, NULL, &a->released, err, errlen);
    if (st == CF_OK)
        st = cf_metrics_counter_new(metrics, "caseflow_assignment_pending_alerts_total",
                                    "CasePending alerts raised for cases waiting too long.", NULL,
                                    NULL, &a->alerts, err, errlen);
    if (st == CF_OK)
        st = cf_metrics_counter_new(metrics, "caseflow_assignment_reemitted_total",
                                    "CaseAssigned emitted again (same event id) after a lost "
                                    "transaction.",
                                    NULL, NULL, &a->reemitted, err, errlen);
    if (st == CF_OK)
        st = cf_metrics_gauge_new(metrics, "caseflow_assignment_pending",
                                  "Cases waiting for a care manager (as last served).", NULL, NULL,
                                  &a->pending, err, errlen);
    return st;
}

int main(int argc, char **argv)
{
    const size_t n = sizeof(config_table) / sizeof(config_table[0]);
    struct cf_service svc;
    struct cf_roster_view *view = NULL;
    struct assignment_scripts scripts;
    const char *topics[] = {ASSIGNMENT_TOPIC_VALIDATED, ASSIGNMENT_TOPIC_CLOSED,
                            ASSIGNMENT_TOPIC_ASSIGNED, ASSIGNMENT_TOPIC_PENDING};
    struct assignment a = {0};
    char err[512] = "";
    int rc = cf_service_args(argc, argv, config_table, n);
    cf_status st;

    if (rc >= 0)
        return rc;
    memset(&scripts, 0, sizeof(scripts));
    const volatile sig_atomic_t *stop = cf_service_signals();
    st = cf_service_start(ASSIGNMENT_SERVICE, config_table, n, true, &svc);
    if (st != CF_OK)
        return st == CF_ECONFIG ? 2 : 1;
    rc = 1;

    st = assignment_scripts_new(&scripts, err, sizeof(err));
    if (st == CF_OK)
        st = assignment_scripts_load(svc.redis, &scripts, err, sizeof(err));
    if (st == CF_OK)
        st = cf_roster_view_new(svc.config, svc.serde, ASSIGNMENT_TOPIC_ROSTER, &view, err,
                                sizeof(err));
    /* No case is matched against a half-read roster: read it to its end first. */
    if (st == CF_OK)
        st = cf_roster_view_sync(
            view, (int)cf_config_int(svc.config, "CASEFLOW_ASSIGNMENT_ROSTER_SYNC_MS"), err,
            sizeof(err));
    if (st != CF_OK) {
        CF_LOG(CF_LOG_ERROR, "start_failed", CF_LOG_ERR("reason", err));
        goto out;
    }
    a.serde = svc.serde;
    a.redis = svc.redis;
    a.view = view;
    a.scripts = &scripts;
    a.producer = ASSIGNMENT_PRODUCER;
    a.alert_ms = cf_config_int(svc.config, "CASEFLOW_ASSIGNMENT_PENDING_ALERT_SECONDS") * 1000;
    a.ttl_ms = cf_config_int(svc.config, "CASEFLOW_ASSIGNMENT_STATE_TTL_DAYS") * 24 * 3600 * 1000;
    a.lease_ms = cf_config_int(svc.config, "CASEFLOW_ASSIGNMENT_LEASE_SECONDS") * 1000;
    if ((st = assignment_refresh_roster(&a, false, err, sizeof(err))) != CF_OK) {
        CF_LOG(CF_LOG_ERROR, "start_failed", CF_LOG_ERR("reason", err));
        goto out;
    }

    const struct cf_service_loop_spec spec = {.service = ASSIGNMENT_SERVICE,
                                              .group = ASSIGNMENT_GROUP,
                                              .topics = topics,
                                              .ntopics = sizeof(topics) / sizeof(topics[0]),
                                              .handler = assignment_handle,
                                              .ctx = &a,
                                              .timer = assignment_tick,
                                              .timer_ms_key = "CASEFLOW_ASSIGNMENT_TIMER_MS",
                                              .ops_prefix = "CASEFLOW_ASSIGNMENT",
                                              .ready_topic = ASSIGNMENT_TOPIC_VALIDATED,
                                              .register_metrics = register_metrics};
    rc = cf_service_serve(&svc, &spec, &CF_LOG_INT("managers", a.roster.count), stop);
out:
    assignment_release_roster(&a);
    cf_roster_view_free(view);
    assignment_scripts_free(&scripts);
    cf_service_stop(&svc);
    return rc;
}
