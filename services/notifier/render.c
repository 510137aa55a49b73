/* render.c — the notifier's templates compiled and rendered (render.h); templates.c reads the
 * files.
 *
 * Every file is read and compiled once, at load, into a flat list of ops per part (subject,
 * text, HTML; or the SMS body): literal text, a value, and sections whose op knows where its
 * body ends. Each name is resolved there, to a variable of the spec or to a field of an
 * enclosing list section, so a template cannot name anything its spec does not declare, and a
 * render does no parsing: it binds the spec's variables to the JSON once, checks their types,
 * then walks the ops appending text into a capped buffer, escaping values for the part.
 *
 * Errors name the file, the line and the template's own names, never a value: errbufs end up
 * in log lines and values are personal data. */
#include "render.h"
#include "render_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

bool render_is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool name_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!render_is_name_char(s[i]))
            return false;
    return true;
}

/* True if the NUL-terminated a equals s[0..n). */
static bool name_eq(const char *a, const char *s, size_t n)
{
    return strncmp(a, s, n) == 0 && a[n] == '\0';
}

/* Scans one name at *p, returns its start and leaves *p after it (NULL if there is none). */
static char *scan_name(char **p)
{
    char *start = *p;
    while (render_is_name_char(**p))
        (*p)++;
    return *p == start ? NULL : start;
}

cf_status render_parse_spec(const struct notifier_template_spec *src, struct parsed_spec *ps,
                            char *errbuf, size_t errlen)
{
    ps->src = src;
    if (src->name == NULL || !name_ok(src->name, strlen(src->name)) || src->vars == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "template spec: a bad name or no variables");
    if ((ps->names = strdup(src->vars)) == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
    char *p = ps->names;
    for (;;) {
        while (*p == ' ')
            *p++ = '\0';
        if (*p == '\0')
            break;
        if (ps->nvars == RENDER_MAX_VARS)
            return cf_fail(errbuf, errlen, CF_EINVAL, "spec %s: more than %d variables", src->name,
                           RENDER_MAX_VARS);
        struct spec_var *v = &ps->vars[ps->nvars++];
        if ((v->name = scan_name(&p)) == NULL)
            goto bad;
        if (*p == '[') {
            *p++ = '\0';
            v->list = true;
            for (;;) {
                if (v->nfields == RENDER_MAX_FIELDS)
                    return cf_fail(errbuf, errlen, CF_EINVAL, "spec %s: more than %d fields",
                                   src->name, RENDER_MAX_FIELDS);
                if ((v->fields[v->nfields++] = scan_name(&p)) == NULL)
                    goto bad;
                char sep = *p;
                if (sep != ',' && sep != ']')
                    goto bad;
                *p++ = '\0';
                if (sep == ']')
                    break;
            }
        }
        if (*p != ' ' && *p != '\0')
            goto bad;
    }
    /* Names only: the separators are NULs by now. */
    for (size_t i = 0; i < ps->nvars; i++) {
        for (size_t j = 0; j < i; j++)
            if (strcmp(ps->vars[i].name, ps->vars[j].name) == 0)
                return cf_fail(errbuf, errlen, CF_EINVAL, "spec %s: %s declared twice", src->name,
                               ps->vars[i].name);
        for (size_t f = 0; f < ps->vars[i].nfields; f++)
            for (size_t g = 0; g < f; g++)
                if (strcmp(ps->vars[i].fields[f], ps->vars[i].fields[g]) == 0)
                    return cf_fail(errbuf, errlen, CF_EINVAL, "spec %s: %s has %s twice", src->name,
                                   ps->vars[i].name, ps->vars[i].fields[f]);
    }
    return CF_OK;
bad:
    return cf_fail(errbuf, errlen, CF_EINVAL, "spec %s: malformed variable list", src->name);
}

static void part_clear(struct part *p)
{
    free(p->ops);
    memset(p, 0, sizeof(*p));
}

void render_template_free(struct notifier_template *tpl)
{
    if (tpl == NULL)
        return;
    part_clear(&tpl->subject);
    part_clear(&tpl->text);
    part_clear(&tpl->html);
    free(tpl->source);
    free(tpl);
}

/* ---- the compiler ---------------------------------------------------------------------- */

struct open_section {
    size_t op;        /* its op's index */
    const char *name; /* as written, len bytes */
    size_t len;
    unsigned line;
    int list_var; /* the list variable whose items the body reads, or -1 */
};

struct compiler {
    const char *path;
    const struct parsed_spec *spec;
    struct part *part;
    size_t cap;
    struct open_section open[RENDER_MAX_DEPTH];
    size_t nopen;
    char *errbuf;
    size_t errlen;
};

/* A name for a tag's contents in an error message: the contents when they are short printable
 * ASCII, else a placeholder (the template's own bytes, but they need not be readable). */
static const char *quotable(const char *s, size_t n, int *shown)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            n = 0;
    if (n == 0 || n > RENDER_QUOTE_MAX) {
        *shown = 3;
        return "...";
    }
    *shown = (int)n;
    return s;
}

static cf_status emit(struct compiler *c, struct op op)
{
    struct part *p = c->part;
    /* Bounded by the file: every op stands for at least one byte of it. */
    if (p->nops == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct op *ops = realloc(p->ops, cap * sizeof(*ops));
        if (ops == NULL)
            return cf_fail(c->errbuf, c->errlen, CF_ENOMEM, "%s: out of memory", c->path);
        p->ops = ops;
        c->cap = cap;
    }
    p->ops[p->nops++] = op;
    return CF_OK;
}

/* Resolves name[0..n) where it stands: a field of the innermost enclosing list section that has
 * one, else a variable of the spec. False if neither declares it. */
static bool resolve(const struct compiler *c, const char *name, size_t n, struct op *op, int *var)
{
    unsigned depth = 0;
    for (size_t i = 0; i < c->nopen; i++)
        depth += c->open[i].list_var >= 0;
    for (size_t i = c->nopen; i-- > 0;) {
        if (c->open[i].list_var < 0)
            continue;
        const struct spec_var *lv = &c->spec->vars[c->open[i].list_var];
        for (size_t f = 0; f < lv->nfields; f++) {
            if (name_eq(lv->fields[f], name, n)) {
                op->scope = depth;
                op->text = lv->fields[f];
                *var = -1;
                return true;
            }
        }
        depth--;
    }
    for (size_t v = 0; v < c->spec->nvars; v++) {
        if (name_eq(c->spec->vars[v].name, name, n)) {
            op->scope = 0;
            op->index = (unsigned)v;
            op->list = c->spec->vars[v].list;
            *var = (int)v;
            return true;
        }
    }
    return false;
}

/* One tag, its contents s[0..n) (between the braces) on line. */
static cf_status compile_tag(struct compiler *c, const char *s, size_t n, unsigned line)
{
    char sigil = '\0';
    int shown = 0;
    while (n > 0 && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n > 0 && (*s == '#' || *s == '^' || *s == '/')) {
        sigil = *s++;
        n--;
        while (n > 0 && (*s == ' ' || *s == '\t'))
            s++, n--;
    }
    if (n == 0)
        return cf_fail(c->errbuf, c->errlen, CF_ECONFIG, "%s:%u: a tag with an empty name", c->path,
                       line);
    if (!name_ok(s, n)) {
        const char *q = quotable(s, n, &shown);
        return cf_fail(c->errbuf, c->errlen, CF_ECONFIG,
                       "%s:%u: \"%.*s\": not a name (letters, digits and _)", c->path, line, shown,
                       q);
    }
    shown = n > RENDER_QUOTE_MAX ? RENDER_QUOTE_MAX : (int)n;

    if (sigil == '/') {
        if (c->nopen == 0)
            return cf_fail(c->errbuf, c->errlen, CF_ECONFIG,
                           "%s:%u: {{/%.*s}} closes no open section", c->path, line, shown, s);
        struct open_section *o = &c->open[c->nopen - 1];
        if (o->len != n || memcmp(o->name, s, n) != 0) {
            int oshown = o->len > RENDER_QUOTE_MAX ? RENDER_QUOTE_MAX : (int)o->len;
            return cf_fail(c->errbuf, c->errlen, CF_ECONFIG,
                           "%s:%u: {{/%.*s}} does not close the section %.*s opened on line %u",
                           c->path, line, shown, s, oshown, o->name, o->line);
        }
        c->part->ops[o->op].end = c->part->nops;
        c->nopen--;
        return CF_OK;
    }

    struct op op = {.kind = sigil == '#' ? OP_SECTION : sigil == '^' ? OP_INVERTED : OP_VALUE};
    int var = -1;
    if (!resolve(c, s, n, &op, &var))
        return cf_fail(c->errbuf, c->errlen, CF_ECONFIG,
                       "%s:%u: %.*s: not a variable of %s (nor a field of an enclosing list)",
                       c->path, line, shown, s, c->spec->src->name);
    if (op.kind == OP_VALUE) {
        if (op.list)
            return cf_fail(c->errbuf, c->errlen, CF_ECONFIG,
                           "%s:%u: {{%.*s}}: a list, only usable as a section", c->path, line,
                           shown, s);
        return emit(c, op);
    }
    if (c->nopen == RENDER_MAX_DEPTH)
        return cf_fail(c->errbuf, c->errlen, CF_ECONFIG,
                       "%s:%u: %.*s: sections nested deeper than %d", c->path, line, shown, s,
                       RENDER_MAX_DEPTH);
    /* Only a section over a list has an item whose fields its body reads. */
    bool items = op.kind == OP_SECTION && op.list;
    if (op.kind != OP_SECTION)
        op.list = false;
    if (items) {
        op.depth = 1;
        for (size_t i = 0; i < c->nopen; i++)
            op.depth += c->open[i].list_var >= 0;
    }
    c->open[c->nopen] = (struct open_section){c->part->nops, s, n, line, items ? var : -1};
    cf_status st = emit(c, op);
    if (st == CF_OK)
        c->nopen++;
    return st;
}

/* Compiles src[0..len), which starts on line, into *out (cleared on failure). */
static cf_status compile_part(struct compiler *c, const char *src, size_t len, unsigned line,
                              struct part *out)
{
    cf_status st = CF_OK;
    size_t pos = 0;

    memset(out, 0, sizeof(*out));
    c->part = out;
    c->cap = 0;
    c->nopen = 0;
    while (pos < len) {
        size_t tag = pos;
        while (tag + 1 < len && !(src[tag] == '{' && src[tag + 1] == '{'))
            tag++;
        if (tag + 1 >= len)
            tag = len;
        if (tag > pos) {
            if ((st = emit(c, (struct op){.kind = OP_TEXT, .text = src + pos, .len = tag - pos})) !=
                CF_OK)
                goto out;
            out->literal += tag - pos;
            for (size_t i = pos; i < tag; i++)
                line += src[i] == '\n';
        }
        if (tag == len)
            break;
        /* A tag ends on its own line. */
        size_t end = tag + 2;
        while (end + 1 < len && src[end] != '\n' && !(src[end] == '}' && src[end + 1] == '}'))
            end++;
        if (end + 1 >= len || src[end] != '}') {
            st = cf_fail(c->errbuf, c->errlen, CF_ECONFIG, "%s:%u: unterminated {{", c->path, line);
            goto out;
        }
        if ((st = compile_tag(c, src + tag + 2, end - tag - 2, line)) != CF_OK)
            goto out;
        pos = end + 2;
    }
    if (c->nopen > 0) {
        const struct open_section *o = &c->open[c->nopen - 1];
        int shown = o->len > RENDER_QUOTE_MAX ? RENDER_QUOTE_MAX : (int)o->len;
        st = cf_fail(c->errbuf, c->errlen, CF_ECONFIG, "%s:%u: section %.*s is never closed",
                     c->path, o->line, shown, o->name);
    }
out:
    if (st != CF_OK)
        part_clear(out);
    return st;
}

/* The end of the line starting at pos (its '\n', or len). */
size_t render_line_end(const char *s, size_t len, size_t pos)
{
    const char *nl = memchr(s + pos, '\n', len - pos);
    return nl != NULL ? (size_t)(nl - s) : len;
}

/* True if s[from..to) is the separator sep, trailing blanks aside. */
static bool is_separator(const char *s, size_t from, size_t to, const char *sep)
{
    while (to > from && (s[to - 1] == ' ' || s[to - 1] == '\t'))
        to--;
    return to - from == strlen(sep) && memcmp(s + from, sep, to - from) == 0;
}

/* "subject: ..." / "--- text" / text / "--- html" / HTML. */
static cf_status compile_email(struct compiler *c, struct notifier_template *tpl, size_t len)
{
    cf_status st = CF_OK;
    const char *s = tpl->source;
    size_t e1 = render_line_end(s, len, 0);
    static const char subject_key[] = "subject:";
    size_t klen = sizeof(subject_key) - 1;

    if (e1 < klen || memcmp(s, subject_key, klen) != 0)
        return cf_fail(c->errbuf, c->errlen, CF_ECONFIG,
                       "%s:1: the first line must be \"subject: <text>\"", c->path);
    size_t sb = klen, se = e1;
    while (sb < se && (s[sb] == ' ' || s[sb] == '\t'))
        sb++;
    while (se > sb && (s[se - 1] == ' ' || s[se - 1] == '\t'))
        se--;
    if (se == sb)
        return cf_fail(c->errbuf, c->errlen, CF_ECONFIG, "%s:1: empty subject", c->path);
    if (e1 == len || !is_separator(s, e1 + 1, render_line_end(s, len, e1 + 1), "--- text"))
        return cf_fail(c->errbuf, c->errlen, CF_ECONFIG,
                       "%s:2: the second line must be \"--- text\"", c->path);
    size_t text_start = render_line_end(s, len, e1 + 1);
    text_start += text_start < len;
    /* The first "--- html" line ends the text; the newline before it is not the body's. */
    size_t at = text_start, html_line = 0;
    unsigned line = 3;
    for (;; line++) {
        if (at >= len)
            return cf_fail(c->errbuf, c->errlen, CF_ECONFIG,
                           "%s:%u: the file ends without a line \"--- html\"", c->path, line);
        size_t e = render_line_end(s, len, at);
        if (is_separator(s, at, e, "--- html")) {
            html_line = at;
            at = e + (e < len);
            break;
        }
        at = e + 1;
    }
    size_t text_end = html_line > text_start ? html_line - 1 : text_start;
    if ((st = compile_part(c, s + sb, se - sb, 1, &tpl->subject)) != CF_OK ||
        (st = compile_part(c, s + text_start, text_end - text_start, 3, &tpl->text)) != CF_OK ||
        (st = compile_part(c, s + at, len - at, line + 1, &tpl->html)) != CF_OK)
        return st;
    return CF_OK;
}

cf_status render_compile(const char *path, struct notifier_template *tpl, size_t len,
                         char *errbuf, size_t errlen)
{
    struct compiler c = {.path = path, .spec = tpl->spec, .errbuf = errbuf, .errlen = errlen};
    if (tpl->channel == NOTIFIER_EMAIL)
        return compile_email(&c, tpl, len);
    /* The editor's final newline is not part of the message. */
    if (len > 0 && tpl->source[len - 1] == '\n')
        tpl->source[--len] = '\0';
    if (len == 0)
        return cf_fail(errbuf, errlen, CF_ECONFIG, "%s:1: empty SMS", path);
    return compile_part(&c, tpl->source, len, 1, &tpl->text);
}

size_t render_utf8_valid_prefix(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char b = (unsigned char)s[i];
        if (b != 0 && b < 0x80) {
            i++;
            continue;
        }
        utf8proc_int32_t cp = 0;
        utf8proc_ssize_t n =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (n <= 0 || cp == 0)
            return i;
        i += (size_t)n;
    }
    return len;
}

/* ---- rendering ------------------------------------------------------------------------- */

enum part_kind {
    PART_SUBJECT,
    PART_TEXT, /* the plain-text part and the SMS */
    PART_HTML,
};

/* A growing output of at most NOTIFIER_RENDER_MAX bytes (and its NUL). */
struct buf {
    char *data;
    size_t len, cap;
};

struct render_ctx {
    const json_t *vals[RENDER_MAX_VARS];   /* the spec's variables, NULL when absent */
    const json_t *items[RENDER_MAX_DEPTH]; /* the current item of each enclosing list */
    enum part_kind kind;
    struct buf out;
};

static cf_status buf_reserve(struct buf *b, size_t more)
{
    if (more > NOTIFIER_RENDER_MAX - b->len)
        return CF_ETOOBIG;
    size_t need = b->len + more + 1;
    if (need <= b->cap)
        return CF_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > NOTIFIER_RENDER_MAX + 1)
        cap = NOTIFIER_RENDER_MAX + 1;
    char *data = realloc(b->data, cap);
    if (data == NULL)
        return CF_ENOMEM;
    b->data = data;
    b->cap = cap;
    return CF_OK;
}

static cf_status buf_append(struct buf *b, const char *s, size_t n)
{
    cf_status st = buf_reserve(b, n);
    if (st != CF_OK)
        return st;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return CF_OK;
}

/* What replaces the bytes of s[i..) in a value in this part, and how many bytes it replaces
 * (*skip); NULL when s[i] is copied. */
static const char *escape_at(enum part_kind kind, const unsigned char *s, size_t i, size_t n,
                             size_t *skip)
{
    unsigned char c = s[i];
    *skip = 1;
    if (kind == PART_SUBJECT) {
        /* C0, DEL and C1 controls (U+0080-U+009F), and the Unicode line and paragraph
         * separators: nothing in a value may break the subject's line. */
        if (c < 0x20 || c == 0x7f)
            return " ";
        if (c == 0xc2 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f) {
            *skip = 2;
            return " ";
        }
        if (c == 0xe2 && i + 2 < n && s[i + 1] == 0x80 && (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
            *skip = 3;
            return " ";
        }
        return NULL;
    }
    if (c == '\r') {
        *skip = i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
        return "\n";
    }
    if (kind != PART_HTML)
        return NULL;
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&#39;";
    default:
        return NULL;
    }
}

static cf_status append_value(struct render_ctx *rc, const json_t *v)
{
    cf_status st = CF_OK;
    const unsigned char *s = (const unsigned char *)json_string_value(v);
    size_t n = json_string_length(v), run = 0;

    for (size_t i = 0; i < n && st == CF_OK; i++) {
        size_t skip = 1;
        const char *rep = escape_at(rc->kind, s, i, n, &skip);
        if (rep == NULL)
            continue;
        if ((st = buf_append(&rc->out, (const char *)s + run, i - run)) == CF_OK)
            st = buf_append(&rc->out, rep, strlen(rep));
        i += skip - 1;
        run = i + 1;
    }
    if (st == CF_OK)
        st = buf_append(&rc->out, (const char *)s + run, n - run);
    return st;
}

/* The value an op names, NULL when absent (or JSON null). */
static const json_t *lookup(const struct render_ctx *rc, const struct op *o)
{
    const json_t *v =
        o->scope == 0 ? rc->vals[o->index] : json_object_get(rc->items[o->scope - 1], o->text);
    return json_is_null(v) ? NULL : v;
}

static bool is_empty(const json_t *v)
{
    return v == NULL || (json_is_string(v) && json_string_length(v) == 0) ||
           (json_is_array(v) && json_array_size(v) == 0);
}

/* Runs ops[from..to) of p. Recursion is bounded by RENDER_MAX_DEPTH (checked at load). */
static cf_status run(const struct part *p, size_t from, size_t to, struct render_ctx *rc)
{
    cf_status st = CF_OK;
    size_t i = from;

    while (i < to && st == CF_OK) {
        const struct op *o = &p->ops[i];
        const json_t *v = o->kind == OP_TEXT ? NULL : lookup(rc, o);
        switch (o->kind) {
        case OP_TEXT:
            st = buf_append(&rc->out, o->text, o->len);
            i++;
            break;
        case OP_VALUE:
            if (v != NULL)
                st = append_value(rc, v);
            i++;
            break;
        case OP_SECTION:
            if (o->list) {
                for (size_t k = 0; k < json_array_size(v) && st == CF_OK; k++) {
                    rc->items[o->depth - 1] = json_array_get(v, k);
                    st = run(p, i + 1, o->end, rc);
                }
            } else if (!is_empty(v)) {
                st = run(p, i + 1, o->end, rc);
            }
            i = o->end;
            break;
        case OP_INVERTED:
            if (is_empty(v))
                st = run(p, i + 1, o->end, rc);
            i = o->end;
            break;
        }
    }
    return st;
}

static const char *const part_names[] = {
    [PART_SUBJECT] = "subject", [PART_TEXT] = "text", [PART_HTML] = "html"};

static cf_status render_part(const struct part *p, enum part_kind kind, struct render_ctx *rc,
                             char **dst, char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    rc->kind = kind;
    rc->out = (struct buf){NULL, 0, 0};
    /* The literal text plus room for the values: usually one allocation. */
    size_t guess = p->literal + 256;
    st = buf_reserve(&rc->out, guess < NOTIFIER_RENDER_MAX ? guess : NOTIFIER_RENDER_MAX);
    if (st == CF_OK)
        st = run(p, 0, p->nops, rc);
    if (st == CF_OK) {
        rc->out.data[rc->out.len] = '\0';
        *dst = rc->out.data;
        return CF_OK;
    }
    free(rc->out.data);
    rc->out.data = NULL;
    if (st == CF_ETOOBIG)
        return cf_fail(errbuf, errlen, st, "%s: over %u bytes rendered", part_names[kind],
                       NOTIFIER_RENDER_MAX);
    return cf_fail(errbuf, errlen, st, "%s: %s", part_names[kind], cf_strerror(st));
}

/* A text value: a JSON string of UTF-8 without NUL. name, idx and field say where it is. */
static cf_status check_text(const json_t *v, const char *name, size_t idx, const char *field,
                            char *errbuf, size_t errlen)
{
    const char *why = NULL;
    if (!json_is_string(v))
        why = "not a string";
    else if (render_utf8_valid_prefix(json_string_value(v), json_string_length(v)) !=
             json_string_length(v))
        why = "not UTF-8 text";
    if (why == NULL)
        return CF_OK;
    if (field != NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "%s[%zu].%s: %s", name, idx, field, why);
    return cf_fail(errbuf, errlen, CF_EINVAL, "%s: %s", name, why);
}

/* Binds every variable of spec to its value in vars and checks its type, so running the ops
 * needs no checks. */
static cf_status bind(const struct parsed_spec *spec, const json_t *vars, struct render_ctx *rc,
                      char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    if (vars != NULL && !json_is_object(vars))
        return cf_fail(errbuf, errlen, CF_EINVAL, "variables: not a JSON object");
    for (size_t i = 0; i < spec->nvars; i++) {
        const struct spec_var *sv = &spec->vars[i];
        const json_t *v = vars != NULL ? json_object_get(vars, sv->name) : NULL;
        if (json_is_null(v))
            v = NULL;
        rc->vals[i] = v;
        if (v == NULL)
            continue;
        if (!sv->list) {
            if ((st = check_text(v, sv->name, 0, NULL, errbuf, errlen)) != CF_OK)
                return st;
            continue;
        }
        if (!json_is_array(v))
            return cf_fail(errbuf, errlen, CF_EINVAL, "%s: not a list", sv->name);
        for (size_t k = 0; k < json_array_size(v); k++) {
            const json_t *item = json_array_get(v, k);
            if (!json_is_object(item))
                return cf_fail(errbuf, errlen, CF_EINVAL, "%s[%zu]: not an object", sv->name, k);
            for (size_t f = 0; f < sv->nfields; f++) {
                const json_t *fv = json_object_get(item, sv->fields[f]);
                if (fv != NULL && !json_is_null(fv) &&
                    (st = check_text(fv, sv->name, k, sv->fields[f], errbuf, errlen)) != CF_OK)
                    return st;
            }
        }
    }
    return CF_OK;
}

cf_status notifier_render(const struct notifier_template *tpl, const json_t *vars,
                          struct notifier_rendered *out, char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    struct notifier_rendered r = {NULL, NULL, NULL};
    struct render_ctx rc;

    if (out == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "render: no output");
    memset(out, 0, sizeof(*out));
    if (tpl == NULL) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "render: no template");
        goto out;
    }
    memset(&rc, 0, sizeof(rc));
    if ((st = bind(tpl->spec, vars, &rc, errbuf, errlen)) != CF_OK)
        goto out;
    if (tpl->channel == NOTIFIER_EMAIL) {
        if ((st = render_part(&tpl->subject, PART_SUBJECT, &rc, &r.subject, errbuf, errlen)) !=
                CF_OK ||
            (st = render_part(&tpl->text, PART_TEXT, &rc, &r.text, errbuf, errlen)) != CF_OK ||
            (st = render_part(&tpl->html, PART_HTML, &rc, &r.html, errbuf, errlen)) != CF_OK)
            goto out;
    } else if ((st = render_part(&tpl->text, PART_TEXT, &rc, &r.text, errbuf, errlen)) != CF_OK) {
        goto out;
    }
    *out = r;
    memset(&r, 0, sizeof(r));
out:
    notifier_rendered_clear(&r);
    return st;
}

void notifier_rendered_clear(struct notifier_rendered *r)
{
    if (r == NULL)
        return;
    free(r->subject);
    free(r->text);
    free(r->html);
    memset(r, 0, sizeof(*r));
}
