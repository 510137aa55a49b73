/* catalog.c — the template catalog (see catalog.h). Every patient template has an email and an
 * SMS version: SMS is sent beside the email for time-critical events, instead of it for a
 * patient who consented to SMS only, and as the fallback when an email fails for good. */
#include "catalog.h"

/* Variables every patient template may name. */
#define PATIENT "given_name family_name case_ref "

static const struct notifier_template_spec catalog[] = {
    {"case_opened", PATIENT, true, true},
    {"case_info_requested", PATIENT "missing[label] expires_date", true, true},
    {"case_rejected", PATIENT "reasons[label]", true, true},
    {"case_assigned", PATIENT "manager_name interpreter", true, true},
    /* To the care manager: the case id and a link, no medical details, no patient contact. */
    {"case_assigned_manager", "manager_name case_ref case_id case_url priority interpreter", true,
     false},
    {"teleconsult_booked",
     PATIENT "specialist_name start_local time_zone duration_minutes join_url reschedule_url "
             "cancel_url",
     true, true},
    {"teleconsult_rescheduled",
     PATIENT "specialist_name start_local previous_start_local time_zone duration_minutes "
             "join_url reschedule_url cancel_url",
     true, true},
    {"teleconsult_cancelled", PATIENT "specialist_name start_local time_zone", true, true},
    {"teleconsult_reminder", PATIENT "start_local time_zone join_url h24 h1", true, true},
    {"treatment_booked",
     PATIENT "sessions[number,date] arrival_date departure_date follow_ups[start_local] time_zone",
     true, true},
    {"case_closed", PATIENT "reason", true, true},
};

const struct notifier_template_spec *notifier_catalog(size_t *n)
{
    *n = sizeof(catalog) / sizeof(catalog[0]);
    return catalog;
}
