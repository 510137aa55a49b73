/* render.h — the notifier's templates: one file per (template, language, channel) under a
 * directory the operators edit without rebuilding (read at start), and their rendering.
 *
 * Layout of the directory (CASEFLOW_NOTIFIER_TEMPLATE_DIR):
 *   <lang>/<template>.email   "subject: ..." on the first line, then a line "--- text", the
 *                             plain-text body, a line "--- html", the HTML body
 *   <lang>/<template>.sms     the SMS body (a final newline is dropped)
 *   <lang>/labels             "KEY = text" lines ('#' starts a comment line): words the
 *                             templates' lists use (INFO.<InfoItem>, REASON.<code>,
 *                             CLOSE.<CloseReason>, ...)
 * <lang> is a lower-case BCP 47 primary language subtag ("en", "es", "tr", "ru"). English must
 * be complete: every template of the spec table in both channels (where the spec has them) and
 * any label another language has; other languages may lack files (English is used instead).
 *
 * Template syntax (mustache-like, nothing else):
 *   {{name}}                  the variable's text, escaped for the part (see below)
 *   {{#name}} ... {{/name}}   a list variable: the inside once per item, where the item's fields
 *                             are readable by name; a text variable: the inside once if the
 *                             text is not empty
 *   {{^name}} ... {{/name}}   the inside once if the variable is empty (empty text, empty list)
 * A template may name only the variables its spec declares (checked at load: a template naming
 * anything else, or with unbalanced sections, fails the load with file, line and name). So a
 * template cannot read a field it does not name in its spec, and the spec is what the notifier
 * fills in.
 *
 * Escaping is chosen by the part, never by the template author: the subject drops every
 * control character of a value (CR and LF become spaces, so no value can start a header), the
 * text part and the SMS turn CR LF and lone CR into LF, and the HTML part escapes & < > " ' as
 * entities (and normalises line ends the same way). Template text itself is not escaped. */
#ifndef NOTIFIER_RENDER_H
#define NOTIFIER_RENDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "status.h"

/* Largest rendered part (subject, text, HTML or SMS body); more is CF_ETOOBIG. */
#define NOTIFIER_RENDER_MAX (64u * 1024u)
/* Largest template or labels file read; more fails the load. */
#define NOTIFIER_TEMPLATE_FILE_MAX (64u * 1024u)

enum notifier_channel {
    NOTIFIER_EMAIL = 0,
    NOTIFIER_SMS = 1,
};

/* What one template is and which variables it may name. vars is a space-separated list:
 * "given_name case_ref missing[label] sessions[number,date]" — a plain name is a text
 * variable, name[f,g] a list whose items have the text fields f and g. */
struct notifier_template_spec {
    const char *name; /* "case_opened": the file name without the extension */
    const char *vars;
    bool email; /* has a .email file */
    bool sms;   /* has a .sms file */
};

struct notifier_templates;
struct notifier_template;

/* Reads every template of specs[0..n) in every language directory under dir, and the labels.
 * specs must stay valid while the result lives. Fails (CF_ECONFIG, errbuf naming the file and
 * line, never a value) on a syntax error, a variable the spec does not declare, a file over
 * NOTIFIER_TEMPLATE_FILE_MAX, a file that is not UTF-8, or a missing English template; a
 * language directory lacking some templates is fine. On CF_OK *out is the caller's, freed with
 * notifier_templates_free. */
cf_status notifier_templates_load(const char *dir, const struct notifier_template_spec *specs,
                                  size_t n, struct notifier_templates **out, char *errbuf,
                                  size_t errlen);

/* NULL-safe. */
void notifier_templates_free(struct notifier_templates *t);

/* The template name for channel in the language lang (a BCP 47 tag: "es", "es-MX", "pt-BR";
 * matched by its primary subtag, case-insensitively), else in English. *used_lang (may be NULL)
 * is set to the language actually used ("es" or "en"; owned by t). NULL if the spec has no such
 * template for that channel. */
const struct notifier_template *notifier_templates_find(const struct notifier_templates *t,
                                                        const char *name,
                                                        enum notifier_channel channel,
                                                        const char *lang, const char **used_lang);

/* The label key in lang (matched as above), else in English; NULL if neither has it. Owned
 * by t. */
const char *notifier_templates_label(const struct notifier_templates *t, const char *lang,
                                     const char *key);

/* A rendered message. Email: subject, text and html; SMS: text only (subject and html NULL).
 * Every string is NUL-terminated UTF-8 and the caller's (notifier_rendered_clear). */
struct notifier_rendered {
    char *subject;
    char *text;
    char *html;
};

/* Renders tpl with vars, a JSON object whose members are strings (text variables) or arrays
 * of objects of strings (lists); a declared variable missing from vars renders as empty.
 * CF_EINVAL (naming the variable) when a value has the wrong JSON type or is not UTF-8,
 * CF_ETOOBIG when a part would exceed NOTIFIER_RENDER_MAX, CF_ENOMEM. On failure out is
 * cleared. */
cf_status notifier_render(const struct notifier_template *tpl, const json_t *vars,
                          struct notifier_rendered *out, char *errbuf, size_t errlen);

/* Frees the strings and zeroes out; NULL-safe. */
void notifier_rendered_clear(struct notifier_rendered *r);

#endif
