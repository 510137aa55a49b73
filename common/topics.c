/* topics.c — the topic table. Keep in step with DESIGN.md §2 and README.md. */
#include "topics.h"

#include <string.h>

static const struct cf_topic topics[] = {
    {"caseflow.inquiry.submitted", "caseflow.event.InquirySubmitted", "inquiry_id", false},
    {"caseflow.case.opened", "caseflow.event.CaseOpened", "case_id", false},
    {"caseflow.case.info-provided", "caseflow.event.CaseInfoProvided", "case_id", false},
    {"caseflow.case.info-requested", "caseflow.event.CaseInfoRequested", "case_id", false},
    {"caseflow.case.review-requested", "caseflow.event.CaseReviewRequested", "case_id", false},
    {"caseflow.case.reviewed", "caseflow.event.CaseReviewed", "case_id", false},
    {"caseflow.case.validated", "caseflow.event.CaseValidated", "case_id", false},
    {"caseflow.case.rejected", "caseflow.event.CaseRejected", "case_id", false},
    {"caseflow.case.assigned", "caseflow.event.CaseAssigned", "case_id", false},
    {"caseflow.teleconsult.change-requested", "caseflow.event.TeleconsultChangeRequested",
     "case_id", false},
    {"caseflow.teleconsult.scheduled", "caseflow.event.TeleconsultScheduled", "case_id", false},
    {"caseflow.teleconsult.reminder-due", "caseflow.event.TeleconsultReminderDue", "case_id",
     false},
    {"caseflow.teleconsult.completed", "caseflow.event.TeleconsultCompleted", "case_id", false},
    {"caseflow.treatment.booked", "caseflow.event.TreatmentBooked", "case_id", false},
    {"caseflow.case.closed", "caseflow.event.CaseClosed", "case_id", false},
    {"caseflow.case.pending", "caseflow.event.CasePending", "case_id", false},
    {"caseflow.notification.status", "caseflow.event.NotificationStatus", "case_id", false},
    {"caseflow.roster.care-managers", "caseflow.roster.CareManager", "manager_id", true},
    {"caseflow.roster.specialists", "caseflow.roster.Specialist", "specialist_id", true},
};

const struct cf_topic *cf_topics_all(size_t *count)
{
    *count = sizeof(topics) / sizeof(topics[0]);
    return topics;
}

const struct cf_topic *cf_topics_find(const char *name)
{
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
        if (strcmp(topics[i].name, name) == 0)
            return &topics[i];
    return NULL;
}
