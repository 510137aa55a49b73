/* journey.h — how far a case has come, for GET /v1/inquiries/{id} (issue 3). Intake's loop also
 * reads the case topics (INTAKE_STAGE_TOPICS) and keeps, per case, the stage the newest event
 * puts it in; the HTTP thread reads it back through the inquiry's link to its case. Only
 * codes are kept and answered: a stage, a close reason, a time, ids — never what the patient
 * wrote. README.md ("Stages") has the table. */
#ifndef INTAKE_JOURNEY_H
#define INTAKE_JOURNEY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka.h"
#include "redis.h"
#include "status.h"
#include "uuid.h"

/* The topics whose events move a case's stage. */
#define INTAKE_STAGE_TOPICS                                                                        \
    "caseflow.case.opened", "caseflow.case.info-requested", "caseflow.case.info-provided",         \
        "caseflow.case.review-requested", "caseflow.case.reviewed", "caseflow.case.validated",     \
        "caseflow.case.rejected", "caseflow.case.assigned", "caseflow.teleconsult.scheduled",      \
        "caseflow.treatment.booked", "caseflow.case.closed"
#define INTAKE_STAGE_TOPIC_COUNT 11

/* How long a case's stage is kept after its last event: as long as an accepted inquiry. */
#define INTAKE_STAGE_TTL_SECONDS (30LL * 24 * 60 * 60)
/* "intake:stage:" + UUID + NUL. */
#define INTAKE_STAGE_KEY_MAX 64

/* The stages, in the journey's order (the order breaks ties between events of one
 * millisecond). */
enum intake_stage {
    INTAKE_STAGE_RECEIVED = 0,
    INTAKE_STAGE_VALIDATING,
    INTAKE_STAGE_NEEDS_INFORMATION,
    INTAKE_STAGE_UNDER_REVIEW,
    INTAKE_STAGE_VALIDATED,
    INTAKE_STAGE_ASSIGNED,
    INTAKE_STAGE_TELECONSULT_BOOKED,
    INTAKE_STAGE_TREATMENT_BOOKED,
    INTAKE_STAGE_CLOSED,
};

/* "received", "validating", "needs_information", "under_review", "validated", "assigned",
 * "teleconsult_booked", "treatment_booked", "closed": static, never NULL. */
const char *intake_journey_stage_name(enum intake_stage stage);

/* The stage event (caseflow's JSON form of the schema of topic) puts its case in, and for
 * "closed" the reason in lower case ("rejected", "expired", ...; else *detail is ""): the
 * symbol comes from the schema, so it is a code. False for a topic that moves no stage and for
 * a TeleconsultScheduled or CaseClosed whose status or reason this build does not know. A
 * cancelled teleconsult goes back to "assigned" (a new one is to be booked); a rejection is
 * "closed" with detail "rejected". Pure. */
bool intake_journey_stage_of(const char *topic, const json_t *event, enum intake_stage *stage,
                             char detail[32]);

/* The scripts: record keeps a stage unless the case already has a newer one (later
 * occurred_at, or the same millisecond and a later stage) or is closed; read returns it.
 * Created once at start, immutable, shared by the loop and the HTTP thread. */
struct intake_journey_scripts {
    struct cf_redis_script *record;
    struct cf_redis_script *read;
};
cf_status intake_journey_scripts_new(struct intake_journey_scripts *s, char *errbuf, size_t errlen);
void intake_journey_scripts_free(struct intake_journey_scripts *s); /* NULL-safe parts */

/* The Redis key (without the connection's prefix) that links inquiry_id to its case for
 * INTAKE_STAGE_TTL_SECONDS (written by intake_fold when the inquiry is opened or folded):
 * "intake:case-of:<inquiry_id>", into key (INTAKE_STAGE_KEY_MAX bytes). CF_EINVAL if inquiry_id
 * is not a UUID. Pure. */
cf_status intake_journey_link_key(const char *inquiry_id, char key[INTAKE_STAGE_KEY_MAX],
                                  char *errbuf, size_t errlen);

/* Records stage for case_id as of at_ms. CF_EINVAL for a case id that is not a UUID, Redis
 * errors. */
cf_status intake_journey_record(struct cf_redis *redis, const struct intake_journey_scripts *s,
                                const char *case_id, enum intake_stage stage, const char *detail,
                                int64_t at_ms, char *errbuf, size_t errlen);

/* What GET /v1/inquiries/{id} answers. */
struct intake_journey_view {
    char case_id[CF_UUID_LEN + 1]; /* "" while the case is not opened yet */
    enum intake_stage stage;
    char detail[32]; /* close reason, or "" */
    int64_t at_ms;   /* when the case reached it; -1 if unknown */
};

/* The stage of the inquiry inquiry_id: its link (intake_journey_link_key) names the case, whose
 * recorded stage is read. An inquiry accepted but not yet opened (no link), or opened with no
 * stage recorded yet, is "received" with the case id when known. CF_ENOTFOUND if there is no
 * link and accepted (the caller's own record that it accepted the inquiry) is false; Redis
 * errors. */
cf_status intake_journey_lookup(struct cf_redis *redis, const struct intake_journey_scripts *s,
                                const char *inquiry_id, bool accepted,
                                struct intake_journey_view *out, char *errbuf, size_t errlen);

/* cf_kafka_handler body for the INTAKE_STAGE_TOPICS (ctx is a struct intake): decodes the
 * event, records the stage it implies keyed by meta.case_id at meta.occurred_at, emits nothing.
 * Undecodable records and bad ids are dead-lettered like any input. */
cf_status intake_journey_handle(void *ctx, const struct cf_kafka_record *in,
                                struct cf_kafka_out *out, char *errbuf, size_t errlen);

#endif
