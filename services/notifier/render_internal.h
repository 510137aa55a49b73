/* render_internal.h — what the template loader (templates.c) and the compiler and renderer
 * (render.c) share: the parsed specs, the compiled form of a template and the loaded set. Not
 * for the rest of the notifier, which sees render.h only. */
#ifndef NOTIFIER_RENDER_INTERNAL_H
#define NOTIFIER_RENDER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "render.h"

/* Bounds of what a spec may declare and a template may nest: far above the catalog's needs,
 * and they let a render keep its bindings on the stack. */
#define RENDER_MAX_VARS 32
#define RENDER_MAX_FIELDS 8
#define RENDER_MAX_DEPTH 16
#define RENDER_MAX_LANGS 64
/* Longest path built from the directory, a language and a file name. */
#define RENDER_PATH_MAX 4096
/* Tags are quoted in errors only up to this many bytes of printable ASCII. */
#define RENDER_QUOTE_MAX 48

struct spec_var {
    const char *name;
    bool list;
    size_t nfields;
    const char *fields[RENDER_MAX_FIELDS];
};

/* A spec's variable list, parsed: the names point into names, a copy of spec->vars with NULs
 * written over the separators. */
struct parsed_spec {
    const struct notifier_template_spec *src;
    char *names;
    size_t nvars;
    struct spec_var vars[RENDER_MAX_VARS];
};

enum op_kind {
    OP_TEXT,     /* literal template text */
    OP_VALUE,    /* {{name}} */
    OP_SECTION,  /* {{#name}} */
    OP_INVERTED, /* {{^name}} */
};

struct op {
    enum op_kind kind;
    bool list;        /* OP_SECTION over a list variable: the body runs once per item */
    unsigned scope;   /* 0: the spec's variable index; d > 0: a field of the d-th list item */
    unsigned index;   /* the variable's index in the spec (scope 0) */
    unsigned depth;   /* OP_SECTION over a list: the scope its items get (1 = outermost) */
    size_t end;       /* sections: the index of the op after the body */
    const char *text; /* OP_TEXT: the literal, len bytes; a field: its name (NUL-terminated) */
    size_t len;
};

struct part {
    struct op *ops;
    size_t nops;
    size_t literal; /* bytes of literal text: a first guess at the rendered size */
};

struct notifier_template {
    const struct parsed_spec *spec;
    enum notifier_channel channel;
    char *source; /* the file's text; the ops point into it */
    struct part subject, text, html;
};

struct label {
    const char *key;
    const char *text;
    unsigned line;
};

struct language {
    char name[4];
    struct notifier_template **tpls; /* [spec * 2 + channel], NULL where the file is absent */
    char *label_source;
    struct label *labels; /* sorted by key */
    size_t nlabels;
};

struct notifier_templates {
    const struct notifier_template_spec *specs;
    size_t nspecs;
    struct parsed_spec *parsed;
    struct language *langs; /* sorted by name */
    size_t nlangs;
    const struct language *en;
};

/* Parses src's variable list into *ps (ps zeroed by the caller; ps->names is then the caller's
 * to free). CF_EINVAL for a malformed list, CF_ENOMEM. */
cf_status render_parse_spec(const struct notifier_template_spec *src, struct parsed_spec *ps,
                            char *errbuf, size_t errlen);

/* Compiles tpl->source (len bytes, the file at path; tpl->spec and tpl->channel set) into its
 * parts: an email's subject, text and HTML, or an SMS body (its final newline dropped).
 * CF_ECONFIG naming path:line for a syntax error or a name the spec does not declare. */
cf_status render_compile(const char *path, struct notifier_template *tpl, size_t len, char *errbuf,
                         size_t errlen);

/* Bytes of valid UTF-8 at the start of s[0..len) (NUL is not text here). */
size_t render_utf8_valid_prefix(const char *s, size_t len);

/* The end of the line starting at pos in s[0..len) (its '\n', or len). */
size_t render_line_end(const char *s, size_t len, size_t pos);

/* [A-Za-z0-9_]: what a variable, field or label key is made of. */
bool render_is_name_char(char c);

/* Frees a template and its parts; NULL-safe. */
void render_template_free(struct notifier_template *tpl);

#endif
