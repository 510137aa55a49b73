/* plan.c — see plan.h. */
#include "plan.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "avro_convert.h"
#include "uuid.h"

/* What the notifier knows about the event at hand while it plans. */
struct event_ctx {
    const struct notifier_planner *p;
    const json_t *event;
    const json_t *recipient; /* the patient, or NULL */
    const char *event_id, *case_id, *correlation_id;
    const char *lang;
    const char *zone;
    char case_ref[16];
};

const char *const *notifier_plan_topics(size_t *n)
{
    static const char *const topics[] = {
        NOTIFIER_T_OPENED,    NOTIFIER_T_INFO,     NOTIFIER_T_REJECTED,  NOTIFIER_T_ASSIGNED,
        NOTIFIER_T_SCHEDULED, NOTIFIER_T_REMINDER, NOTIFIER_T_TREATMENT, NOTIFIER_T_CLOSED};
    *n = sizeof(topics) / sizeof(topics[0]);
    return topics;
}

void notifier_plan_id(const char *source_event_id, const char *channel, const char *audience,
                      char out[37])
{
    char name[160];
    int n = snprintf(name, sizeof(name), "caseflow.notifier/%s/%s/%s", source_event_id, channel,
                     audience);
    cf_uuid_from_name(name, n > 0 ? (size_t)n : 0, out);
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static const char *or_default(const char *s, const char *fallback)
{
    return s != NULL ? s : fallback;
}

static const char *or_empty(const char *s)
{
    return or_default(s, "");
}

/* Milliseconds of an RFC 3339 field, or of a "YYYY-MM-DD" date's UTC midnight. */
static cf_status when_of(const json_t *o, const char *key, int64_t *ms, char *errbuf, size_t errlen)
{
    const char *text = str(o, key);
    char buf[40];
    if (text != NULL && strlen(text) == 10) {
        (void)snprintf(buf, sizeof(buf), "%sT00:00:00Z", text);
        text = buf;
    }
    if (text == NULL || cf_avro_parse_millis(text, ms) != CF_OK)
        return cf_fail(errbuf, errlen, CF_EINVAL, "%s: missing or not a time", key);
    return CF_OK;
}

/* Sets vars[name] to the localized text of the instant or date at o[key]. */
static cf_status set_when(struct event_ctx *e, json_t *vars, const char *name, const json_t *o,
                          const char *key, enum notifier_when kind, char *errbuf, size_t errlen)
{
    int64_t ms = 0;
    char text[NOTIFIER_WHEN_MAX];
    cf_status st = when_of(o, key, &ms, errbuf, errlen);
    /* A date is a calendar day, not an instant: shown as is, whatever the patient's zone. */
    const char *zone = kind == NOTIFIER_WHEN_DATE ? "UTC" : e->zone;
    if (st == CF_OK)
        st =
            notifier_localize_format(e->p->localize, e->lang, zone, kind, ms, text, errbuf, errlen);
    if (st == CF_OK && json_object_set_new(vars, name, json_string(text)) != 0)
        st = CF_ENOMEM;
    return st;
}

static cf_status set_text(json_t *vars, const char *name, const char *value)
{
    return json_object_set_new(vars, name, json_string(value != NULL ? value : "")) == 0
               ? CF_OK
               : CF_ENOMEM;
}

/* The variables every patient template has. */
static cf_status patient_vars(const struct event_ctx *e, json_t *vars)
{
    cf_status st = set_text(vars, "given_name", str(e->recipient, "given_name"));
    if (st == CF_OK)
        st = set_text(vars, "family_name", str(e->recipient, "family_name"));
    if (st == CF_OK)
        st = set_text(vars, "case_ref", e->case_ref);
    return st;
}

/* A list variable of labels: one item {"label": ...} per element of arr, each element's key
 * (prefix + the element, or + element[field]) looked up in the patient's language, else
 * fallback_key. */
static cf_status set_labels(const struct event_ctx *e, json_t *vars, const char *name,
                            const json_t *arr, const char *field, const char *prefix,
                            const char *fallback_key)
{
    json_t *list = json_array();
    size_t i;
    json_t *v;

    if (list == NULL)
        return CF_ENOMEM;
    json_array_foreach(arr, i, v)
    {
        char key[96];
        const char *sym = field != NULL ? str(v, field) : json_string_value(v);
        (void)snprintf(key, sizeof(key), "%s%s", prefix, sym != NULL ? sym : "");
        const char *label = notifier_templates_label(e->p->templates, e->lang, key);
        if (label == NULL)
            label = notifier_templates_label(e->p->templates, e->lang, fallback_key);
        if (label == NULL)
            continue;
        if (json_array_append_new(list, json_pack("{s:s}", "label", label)) != 0) {
            json_decref(list);
            return CF_ENOMEM;
        }
    }
    return json_object_set_new(vars, name, list) == 0 ? CF_OK : CF_ENOMEM;
}

/* Builds one job: the template rendered in the language used, with the common fields. */
static cf_status make_job(const struct event_ctx *e, const char *template_name,
                          enum notifier_channel channel, const char *audience, const char *lang,
                          const char *to, const char *to_name, const json_t *vars, json_t **out,
                          char *errbuf, size_t errlen)
{
    const char *used = NULL;
    const char *ch = channel == NOTIFIER_EMAIL ? "EMAIL" : "SMS";
    char id[37];
    struct notifier_rendered r = {0};
    json_t *job = NULL;
    cf_status st = CF_OK;

    *out = NULL;
    const struct notifier_template *tpl =
        notifier_templates_find(e->p->templates, template_name, channel, lang, &used);
    if (tpl == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "no %s template %s", ch, template_name);
    if ((st = notifier_render(tpl, vars, &r, errbuf, errlen)) != CF_OK)
        return st;
    notifier_plan_id(e->event_id, ch, audience, id);
    job = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", id,
                    "source_event_id", e->event_id, "case_id", e->case_id, "correlation_id",
                    e->correlation_id, "channel", ch, "audience", audience, "template",
                    template_name, "language", used, "to", to, "to_name",
                    to_name != NULL ? to_name : "", "text", r.text);
    if (job == NULL) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "a rendered text is not UTF-8");
        goto out;
    }
    if (channel == NOTIFIER_EMAIL &&
        (json_object_set_new(job, "subject", json_string(r.subject)) != 0 ||
         json_object_set_new(job, "html", json_string(r.html)) != 0)) {
        st = CF_ENOMEM;
        goto out;
    }
    if (strcmp(audience, "PATIENT") == 0 && e->zone != NULL &&
        json_object_set_new(job, "time_zone", json_string(e->zone)) != 0)
        st = CF_ENOMEM;
out:
    notifier_rendered_clear(&r);
    if (st != CF_OK)
        json_decref(job);
    else
        *out = job;
    return st;
}

/* A SKIPPED entry: the patient cannot be reached on any channel. */
static cf_status skip_job(const struct event_ctx *e, const char *template_name, const char *code,
                          json_t *jobs)
{
    char id[37];
    notifier_plan_id(e->event_id, "EMAIL", "PATIENT", id);
    json_t *job = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", id,
                            "source_event_id", e->event_id, "case_id", e->case_id, "correlation_id",
                            e->correlation_id, "channel", "EMAIL", "audience", "PATIENT",
                            "template", template_name, "language", e->lang, "skip", code);
    return job != NULL && json_array_append_new(jobs, job) == 0 ? CF_OK : CF_ENOMEM;
}

/* The patient's jobs of template_name with vars on the channels plan.h describes. */
static cf_status patient_jobs(const struct event_ctx *e, const char *template_name,
                              bool time_critical, int64_t deliver_by_ms, const json_t *vars,
                              json_t *jobs, char *errbuf, size_t errlen)
{
    const char *email = str(e->recipient, "email"), *phone = str(e->recipient, "phone");
    bool email_ok = email != NULL && json_is_true(json_object_get(e->recipient, "consent_email"));
    bool sms_ok = phone != NULL && json_is_true(json_object_get(e->recipient, "consent_sms"));
    char name[256];
    json_t *mail = NULL, *sms = NULL;
    cf_status st = CF_OK;

    if (!email_ok && !sms_ok) {
        bool consented = json_is_true(json_object_get(e->recipient, "consent_email")) ||
                         json_is_true(json_object_get(e->recipient, "consent_sms"));
        return skip_job(e, template_name, consented ? "NO_ADDRESS" : "NO_CONSENT", jobs);
    }
    (void)snprintf(name, sizeof(name), "%s %s", or_empty(str(e->recipient, "given_name")),
                   or_empty(str(e->recipient, "family_name")));
    if (email_ok)
        st = make_job(e, template_name, NOTIFIER_EMAIL, "PATIENT", e->lang, email, name, vars,
                      &mail, errbuf, errlen);
    if (st == CF_OK && sms_ok)
        st = make_job(e, template_name, NOTIFIER_SMS, "PATIENT", e->lang, phone, NULL, vars, &sms,
                      errbuf, errlen);
    if (st == CF_OK && sms != NULL && deliver_by_ms > 0 &&
        json_object_set_new(sms, "deliver_by_ms", json_integer(deliver_by_ms)) != 0)
        st = CF_ENOMEM;
    if (st != CF_OK)
        goto out;
    if (mail != NULL && sms != NULL && !time_critical) {
        /* SMS waits as the email's fallback. */
        st = json_object_set_new(mail, "fallback", sms) == 0 ? CF_OK : CF_ENOMEM;
        sms = NULL;
    }
    if (st == CF_OK && mail != NULL) {
        st = json_array_append_new(jobs, mail) == 0 ? CF_OK : CF_ENOMEM;
        mail = NULL;
    }
    if (st == CF_OK && sms != NULL) {
        st = json_array_append_new(jobs, sms) == 0 ? CF_OK : CF_ENOMEM;
        sms = NULL;
    }
out:
    json_decref(mail);
    json_decref(sms);
    return st;
}

/* The link <base><path>?case=..&teleconsult=..&token=.. (token: base64url, URL-safe). */
static cf_status set_change_link(const struct event_ctx *e, json_t *vars, const char *name,
                                 const char *path, const char *token)
{
    char url[1024];
    if (token == NULL)
        return set_text(vars, name, "");
    (void)snprintf(url, sizeof(url), "%s%s?case=%s&teleconsult=%s&token=%s",
                   e->p->links.patient_base, path, e->case_id, str(e->event, "teleconsult_id"),
                   token);
    return set_text(vars, name, url);
}

static cf_status plan_scheduled(struct event_ctx *e, json_t *vars, json_t *jobs, char *errbuf,
                                size_t errlen)
{
    const char *status = str(e->event, "status");
    const char *tpl = NULL;
    int64_t start = 0, end = 0;
    cf_status st;

    if (status == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "status: missing");
    if (strcmp(status, "BOOKED") == 0)
        tpl = "teleconsult_booked";
    else if (strcmp(status, "RESCHEDULED") == 0)
        tpl = "teleconsult_rescheduled";
    else if (strcmp(status, "CANCELLED") == 0)
        tpl = "teleconsult_cancelled";
    else
        return cf_fail(errbuf, errlen, CF_EINVAL, "status: not BOOKED, RESCHEDULED or CANCELLED");
    /* The patient's zone of the booking is the one the times are shown in. */
    if (str(e->event, "patient_time_zone") != NULL)
        e->zone = str(e->event, "patient_time_zone");
    if ((st = when_of(e->event, "start", &start, errbuf, errlen)) != CF_OK ||
        (st = when_of(e->event, "end", &end, errbuf, errlen)) != CF_OK)
        return st;
    char minutes[24];
    (void)snprintf(minutes, sizeof(minutes), "%lld", (long long)((end - start) / 60000));
    st = set_text(vars, "specialist_name", str(e->event, "specialist_name"));
    if (st == CF_OK)
        st = set_text(vars, "time_zone", e->zone);
    if (st == CF_OK)
        st = set_when(e, vars, "start_local", e->event, "start", NOTIFIER_WHEN_DATETIME, errbuf,
                      errlen);
    if (st == CF_OK && strcmp(status, "CANCELLED") != 0) {
        st = set_text(vars, "duration_minutes", minutes);
        if (st == CF_OK)
            st = set_text(vars, "join_url", str(e->event, "join_url"));
        if (st == CF_OK)
            st = set_change_link(e, vars, "reschedule_url", "/teleconsult/reschedule",
                                 str(e->event, "reschedule_token"));
        if (st == CF_OK)
            st = set_change_link(e, vars, "cancel_url", "/teleconsult/cancel",
                                 str(e->event, "cancel_token"));
    }
    if (st == CF_OK && strcmp(status, "RESCHEDULED") == 0 &&
        json_is_string(json_object_get(e->event, "previous_start")))
        st = set_when(e, vars, "previous_start_local", e->event, "previous_start",
                      NOTIFIER_WHEN_DATETIME, errbuf, errlen);
    if (st == CF_OK)
        st = patient_jobs(e, tpl, true, 0, vars, jobs, errbuf, errlen);
    return st;
}

static cf_status plan_treatment(struct event_ctx *e, json_t *vars, json_t *jobs, char *errbuf,
                                size_t errlen)
{
    json_t *sessions = json_array(), *follow = json_array();
    size_t i;
    json_t *v;
    cf_status st = sessions != NULL && follow != NULL ? CF_OK : CF_ENOMEM;

    json_array_foreach(json_object_get(e->event, "sessions"), i, v)
    {
        json_t *item = json_object();
        char number[16];
        json_int_t n = json_integer_value(json_object_get(v, "number"));
        (void)snprintf(number, sizeof(number), "%lld", (long long)n);
        if (st == CF_OK && item == NULL)
            st = CF_ENOMEM;
        if (st == CF_OK)
            st = set_text(item, "number", number);
        if (st == CF_OK)
            st = set_when(e, item, "date", v, "date", NOTIFIER_WHEN_DATE, errbuf, errlen);
        if (st == CF_OK && json_array_append(sessions, item) != 0)
            st = CF_ENOMEM;
        json_decref(item);
    }
    json_array_foreach(json_object_get(e->event, "follow_ups"), i, v)
    {
        json_t *item = json_object(), *holder = json_pack("{s:O}", "t", v);
        if (st == CF_OK && (item == NULL || holder == NULL))
            st = CF_ENOMEM;
        if (st == CF_OK)
            st = set_when(e, item, "start_local", holder, "t", NOTIFIER_WHEN_DATETIME, errbuf,
                          errlen);
        if (st == CF_OK && json_array_append(follow, item) != 0)
            st = CF_ENOMEM;
        json_decref(item);
        json_decref(holder);
    }
    if (st == CF_OK && (json_object_set(vars, "sessions", sessions) != 0 ||
                        json_object_set(vars, "follow_ups", follow) != 0))
        st = CF_ENOMEM;
    json_decref(sessions);
    json_decref(follow);
    if (st == CF_OK)
        st = set_when(e, vars, "arrival_date", e->event, "arrival_date", NOTIFIER_WHEN_DATE, errbuf,
                      errlen);
    if (st == CF_OK)
        st = set_when(e, vars, "departure_date", e->event, "departure_date", NOTIFIER_WHEN_DATE,
                      errbuf, errlen);
    if (st == CF_OK)
        st = set_text(vars, "time_zone", e->zone);
    if (st == CF_OK)
        st = patient_jobs(e, "treatment_booked", true, 0, vars, jobs, errbuf, errlen);
    return st;
}

/* The care manager's short email on CaseAssigned: case id, priority, a link, in English. */
static cf_status plan_manager(struct event_ctx *e, json_t *jobs, char *errbuf, size_t errlen)
{
    const char *to = str(e->event, "manager_email");
    char url[512], pkey[48];
    json_t *vars = json_object(), *job = NULL;
    cf_status st = vars != NULL ? CF_OK : CF_ENOMEM;

    if (to == NULL)
        st = cf_fail(errbuf, errlen, CF_EINVAL, "manager_email: missing");
    (void)snprintf(url, sizeof(url), "%s/cases/%s", e->p->links.console_base, e->case_id);
    (void)snprintf(pkey, sizeof(pkey), "PRIORITY.%s",
                   or_default(str(e->event, "priority"), "ROUTINE"));
    const char *priority = notifier_templates_label(e->p->templates, "en", pkey);
    if (st == CF_OK)
        st = set_text(vars, "manager_name", str(e->event, "manager_name"));
    if (st == CF_OK)
        st = set_text(vars, "case_ref", e->case_ref);
    if (st == CF_OK)
        st = set_text(vars, "case_id", e->case_id);
    if (st == CF_OK)
        st = set_text(vars, "case_url", url);
    if (st == CF_OK)
        st = set_text(vars, "priority", priority != NULL ? priority : str(e->event, "priority"));
    if (st == CF_OK)
        st = set_text(vars, "interpreter",
                      json_is_true(json_object_get(e->event, "interpreter_needed")) ? "yes" : "");
    if (st == CF_OK)
        st = make_job(e, "case_assigned_manager", NOTIFIER_EMAIL, "CARE_MANAGER", "en", to,
                      str(e->event, "manager_name"), vars, &job, errbuf, errlen);
    if (st == CF_OK && json_array_append_new(jobs, job) != 0)
        st = CF_ENOMEM;
    json_decref(vars);
    return st;
}

/* The event-specific variables and jobs. */
static cf_status plan_event(struct event_ctx *e, const char *topic, json_t *vars, json_t *jobs,
                            char *errbuf, size_t errlen)
{
    const json_t *ev = e->event;
    cf_status st = CF_OK;

    if (strcmp(topic, NOTIFIER_T_OPENED) == 0)
        return patient_jobs(e, "case_opened", false, 0, vars, jobs, errbuf, errlen);
    if (strcmp(topic, NOTIFIER_T_INFO) == 0) {
        st = set_labels(e, vars, "missing", json_object_get(ev, "missing"), NULL, "INFO.",
                        "REASON.OTHER");
        if (st == CF_OK)
            st = set_when(e, vars, "expires_date", ev, "expires_at", NOTIFIER_WHEN_DATETIME, errbuf,
                          errlen);
        return st == CF_OK
                   ? patient_jobs(e, "case_info_requested", true, 0, vars, jobs, errbuf, errlen)
                   : st;
    }
    if (strcmp(topic, NOTIFIER_T_REJECTED) == 0) {
        st = set_labels(e, vars, "reasons", json_object_get(ev, "reasons"), "code", "REASON.",
                        "REASON.OTHER");
        return st == CF_OK ? patient_jobs(e, "case_rejected", false, 0, vars, jobs, errbuf, errlen)
                           : st;
    }
    if (strcmp(topic, NOTIFIER_T_ASSIGNED) == 0) {
        st = set_text(vars, "manager_name", str(ev, "manager_name"));
        if (st == CF_OK)
            st = set_text(vars, "interpreter",
                          json_is_true(json_object_get(ev, "interpreter_needed")) ? "yes" : "");
        if (st == CF_OK)
            st = patient_jobs(e, "case_assigned", false, 0, vars, jobs, errbuf, errlen);
        return st == CF_OK ? plan_manager(e, jobs, errbuf, errlen) : st;
    }
    if (strcmp(topic, NOTIFIER_T_SCHEDULED) == 0)
        return plan_scheduled(e, vars, jobs, errbuf, errlen);
    if (strcmp(topic, NOTIFIER_T_REMINDER) == 0) {
        const char *lead = str(ev, "lead");
        int64_t start = 0;
        if ((st = when_of(ev, "start", &start, errbuf, errlen)) != CF_OK)
            return st;
        st = set_when(e, vars, "start_local", ev, "start", NOTIFIER_WHEN_DATETIME, errbuf, errlen);
        if (st == CF_OK)
            st = set_text(vars, "time_zone", e->zone);
        if (st == CF_OK)
            st = set_text(vars, "join_url", str(ev, "join_url"));
        if (st == CF_OK)
            st = set_text(vars, "h24", lead != NULL && strcmp(lead, "H24") == 0 ? "yes" : "");
        if (st == CF_OK)
            st = set_text(vars, "h1", lead != NULL && strcmp(lead, "H1") == 0 ? "yes" : "");
        return st == CF_OK ? patient_jobs(e, "teleconsult_reminder", true, start, vars, jobs,
                                          errbuf, errlen)
                           : st;
    }
    if (strcmp(topic, NOTIFIER_T_TREATMENT) == 0)
        return plan_treatment(e, vars, jobs, errbuf, errlen);
    if (strcmp(topic, NOTIFIER_T_CLOSED) == 0) {
        char key[64];
        (void)snprintf(key, sizeof(key), "CLOSE.%s", or_default(str(ev, "reason"), "UNKNOWN"));
        st = set_text(vars, "reason", notifier_templates_label(e->p->templates, e->lang, key));
        return st == CF_OK ? patient_jobs(e, "case_closed", false, 0, vars, jobs, errbuf, errlen)
                           : st;
    }
    return cf_fail(errbuf, errlen, CF_ENOTFOUND, "not a topic the notifier reads");
}

cf_status notifier_plan(const struct notifier_planner *p, const char *topic, const json_t *event,
                        json_t *jobs, char *errbuf, size_t errlen)
{
    const json_t *meta = json_object_get(event, "meta");
    struct event_ctx e = {.p = p, .event = event};
    json_t *vars = NULL;
    cf_status st;

    e.event_id = str(meta, "event_id");
    e.case_id = str(meta, "case_id");
    e.correlation_id = str(meta, "correlation_id");
    if (e.event_id == NULL || e.case_id == NULL || e.correlation_id == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL,
                       "meta: event_id, case_id or correlation_id missing");
    e.recipient = json_object_get(event, "recipient");
    if (!json_is_object(e.recipient)) {
        if (strcmp(topic, NOTIFIER_T_CLOSED) == 0)
            return CF_OK; /* closed without telling the patient (e.g. erased) */
        return cf_fail(errbuf, errlen, CF_EINVAL, "recipient: missing");
    }
    e.lang = str(e.recipient, "language");
    e.zone = str(e.recipient, "time_zone");
    if (e.lang == NULL || e.zone == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "recipient: language or time_zone missing");
    /* A short reference the patient can quote: CF- and the case id's first 8 hex digits. */
    (void)snprintf(e.case_ref, sizeof(e.case_ref), "CF-%.8s", e.case_id);
    for (char *c = e.case_ref; *c != '\0'; c++)
        *c = (char)toupper((unsigned char)*c);
    if ((vars = json_object()) == NULL)
        return CF_ENOMEM;
    st = patient_vars(&e, vars);
    if (st == CF_OK)
        st = plan_event(&e, topic, vars, jobs, errbuf, errlen);
    json_decref(vars);
    return st;
}
