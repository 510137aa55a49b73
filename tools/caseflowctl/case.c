/* case.c — the commands that move a case along: submit an inquiry, provide the information
 * validation asked for, record an operator's review decision. Each builds the event in
 * caseflow's JSON form and hands it to ctl_produce_json (meta filled in, checked, keyed). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"
#include "uuid.h"

int ctl_submit(const struct ctl *ctl, int argc, char **argv)
{
    if (argc != 2) {
        ctl_error("usage: caseflowctl submit FILE.json|-");
        return CTL_EXIT_USAGE;
    }
    json_t *doc = ctl_load_json(argv[1]);
    if (doc == NULL)
        return CTL_EXIT_FAIL;
    int rc = ctl_produce_json(ctl, "caseflow.inquiry.submitted", doc, argv[1]);
    json_decref(doc);
    return rc;
}

/* Sets meta.case_id of record (making meta if it has none). */
static int set_case(json_t *record, const char *case_id)
{
    json_t *meta = json_object_get(record, "meta");
    if (meta == NULL && (json_object_set_new(record, "meta", meta = json_object()) != 0))
        return -1;
    if (!json_is_object(meta))
        return -1;
    return json_object_set_new(meta, "case_id", json_string(case_id));
}

static int check_case(const char *case_id)
{
    if (!cf_uuid_valid(case_id)) {
        ctl_error("case id must be a UUID (8-4-4-4-12 hex)");
        return -1;
    }
    return 0;
}

int ctl_provide_info(const struct ctl *ctl, int argc, char **argv)
{
    if (argc != 3) {
        ctl_error("usage: caseflowctl provide-info CASE FILE.json|-");
        return CTL_EXIT_USAGE;
    }
    if (check_case(argv[1]) != 0)
        return CTL_EXIT_USAGE;
    json_t *doc = ctl_load_json(argv[2]);
    if (doc == NULL)
        return CTL_EXIT_FAIL;
    int rc = CTL_EXIT_FAIL;
    if (!json_is_object(doc))
        ctl_error("provide-info: %s: $: expected one JSON object", argv[2]);
    else if (set_case(doc, argv[1]) != 0)
        ctl_error("provide-info: %s: $.meta: expected an object", argv[2]);
    else
        rc = ctl_produce_json(ctl, "caseflow.case.info-provided", doc, argv[2]);
    json_decref(doc);
    return rc;
}

/* "request-info" -> "REQUEST_INFO", into out (len bytes); -1 if too long. */
static int symbol(const char *word, char *out, size_t len)
{
    size_t n = strlen(word);
    if (n + 1 > len)
        return -1;
    for (size_t i = 0; i <= n; i++)
        out[i] = word[i] == '-' ? '_' : (char)(word[i] >= 'a' && word[i] <= 'z' ? word[i] - 32 : word[i]);
    return 0;
}

int ctl_review(const struct ctl *ctl, int argc, char **argv)
{
    static const char *const decisions[] = {"approve", "reject", "request-info"};
    const char *reason = NULL, *operator_id = "caseflowctl", *priority = NULL;
    char decision[32], item[64], prio[16];
    json_t *missing = json_array(), *record = NULL;
    int rc = CTL_EXIT_USAGE;

    if (missing == NULL)
        return CTL_EXIT_FAIL;
    if (argc < 3 || check_case(argv[1]) != 0)
        goto usage;
    bool known = false;
    for (size_t i = 0; i < sizeof(decisions) / sizeof(decisions[0]); i++)
        known = known || strcmp(argv[2], decisions[i]) == 0;
    if (!known || symbol(argv[2], decision, sizeof(decision)) != 0)
        goto usage;
    for (int i = 3; i < argc; i++) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (value == NULL)
            goto usage;
        if (strcmp(argv[i], "--reason") == 0)
            reason = value;
        else if (strcmp(argv[i], "--operator") == 0)
            operator_id = value;
        else if (strcmp(argv[i], "--priority") == 0 && symbol(value, prio, sizeof(prio)) == 0)
            priority = prio;
        else if (strcmp(argv[i], "--missing") == 0 && symbol(value, item, sizeof(item)) == 0) {
            if (json_array_append_new(missing, json_string(item)) != 0) {
                rc = CTL_EXIT_FAIL;
                goto out;
            }
        } else
            goto usage;
        i++;
    }
    record = json_pack("{s:s, s:s, s:o?, s:O, s:o?}", "decision", decision, "operator_id",
                       operator_id, "note_code", reason != NULL ? json_string(reason) : NULL,
                       "missing", missing, "priority",
                       priority != NULL ? json_string(priority) : NULL);
    if (record == NULL || set_case(record, argv[1]) != 0) {
        ctl_error("review: out of memory");
        rc = CTL_EXIT_FAIL;
        goto out;
    }
    rc = ctl_produce_json(ctl, "caseflow.case.reviewed", record, "review");
    goto out;
usage:
    ctl_error("usage: caseflowctl review CASE approve|reject|request-info [--reason CODE] "
              "[--missing ITEM]... [--priority urgent|high|routine] [--operator ID]");
out:
    json_decref(record);
    json_decref(missing);
    return rc;
}
