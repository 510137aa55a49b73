/* plan.h — what one consumed event asks the notifier to send: which template, to whom, on
 * which channels, in which language, rendered. Pure apart from ICU: no server is involved.
 *
 * Channels. Email carries every patient event when the patient consented to it and gave an
 * address; SMS goes beside it for the time-critical events (information requested, a
 * teleconsultation booked, moved or cancelled, a reminder, treatment booked) and instead of it
 * for a patient who consented to SMS only. An event that would have gone by email alone keeps
 * its SMS rendered as the fallback, sent only if the email fails for good. A patient reachable
 * on no channel gets a SKIPPED status (NO_CONSENT or NO_ADDRESS) and nothing else. The care
 * manager's email on CaseAssigned needs no consent (it is work mail) and carries no medical
 * details.
 *
 * A job is a JSON object, stored as is in Redis while it waits for a retry or the end of quiet
 * hours:
 *   id               notification id: name-based UUID of (source event id, channel, audience),
 *                    the Message-ID / idempotency key of every attempt
 *   source_event_id, case_id, correlation_id
 *   channel          "EMAIL" | "SMS";  audience "PATIENT" | "CARE_MANAGER"
 *   template, language   the template and the language actually used
 *   skip             present for a SKIPPED notification: the error code; nothing else follows
 *   to, to_name      address (email or E.164 phone) and display name
 *   time_zone        the patient's zone (quiet hours, daily cap day); absent for the manager
 *   deliver_by_ms    a reminder's consultation start: quiet hours do not hold back a reminder
 *                    whose consultation would come first
 *   subject, text, html   the rendered message (SMS: text only)
 *   fallback         (optional) the other channel's job, sent if this one fails for good */
#ifndef NOTIFIER_PLAN_H
#define NOTIFIER_PLAN_H

#include <jansson.h>

#include "localize.h"
#include "render.h"
#include "status.h"

/* Links the messages carry. Borrowed strings. */
struct notifier_links {
    const char *patient_base; /* reschedule / cancel pages: <base>/teleconsult/reschedule?... */
    const char *console_base; /* the care manager's case page: <base>/cases/<case_id> */
};

struct notifier_planner {
    const struct notifier_templates *templates;
    struct notifier_localize *localize;
    struct notifier_links links;
};

/* The topics the notifier consumes. */
#define NOTIFIER_T_OPENED "caseflow.case.opened"
#define NOTIFIER_T_INFO "caseflow.case.info-requested"
#define NOTIFIER_T_REJECTED "caseflow.case.rejected"
#define NOTIFIER_T_ASSIGNED "caseflow.case.assigned"
#define NOTIFIER_T_SCHEDULED "caseflow.teleconsult.scheduled"
#define NOTIFIER_T_REMINDER "caseflow.teleconsult.reminder-due"
#define NOTIFIER_T_TREATMENT "caseflow.treatment.booked"
#define NOTIFIER_T_CLOSED "caseflow.case.closed"
#define NOTIFIER_T_STATUS "caseflow.notification.status"

/* The topics above that the notifier consumes (all but the status topic); *n is set to their
 * number. Static data: the service subscribes to them, tests and benchmarks move its group past
 * them. */
const char *const *notifier_plan_topics(size_t *n);

/* Appends to jobs (a JSON array) the jobs of event, a record of topic in caseflow's JSON form
 * (avro_convert.h). CF_OK with nothing appended for an event the patient need not hear about
 * (CaseClosed without a recipient). CF_EINVAL (errbuf naming the field, never a value) for a
 * record lacking what its template needs or a value that cannot be rendered; CF_ENOTFOUND for
 * a topic the notifier does not read. */
cf_status notifier_plan(const struct notifier_planner *p, const char *topic, const json_t *event,
                        json_t *jobs, char *errbuf, size_t errlen);

/* The notification id of (source event, channel, audience) into out. Pure. */
void notifier_plan_id(const char *source_event_id, const char *channel, const char *audience,
                      char out[37]);

#endif
