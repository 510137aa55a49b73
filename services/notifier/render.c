/* render.c — the notifier's templates: loading, checking and rendering (see render.h).
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

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utf8proc.h>

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

/* ---- specs ----------------------------------------------------------------------------- */

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

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool name_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_name_char(s[i]))
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
    while (is_name_char(**p))
        (*p)++;
    return *p == start ? NULL : start;
}

static cf_status parse_spec(const struct notifier_template_spec *src, struct parsed_spec *ps,
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

/* ---- compiled templates ------------------------------------------------------------------ */

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

static void part_clear(struct part *p)
{
    free(p->ops);
    memset(p, 0, sizeof(*p));
}

static void template_free(struct notifier_template *tpl)
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
static size_t line_end(const char *s, size_t len, size_t pos)
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
    size_t e1 = line_end(s, len, 0);
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
    if (e1 == len || !is_separator(s, e1 + 1, line_end(s, len, e1 + 1), "--- text"))
        return cf_fail(c->errbuf, c->errlen, CF_ECONFIG,
                       "%s:2: the second line must be \"--- text\"", c->path);
    size_t text_start = line_end(s, len, e1 + 1);
    text_start += text_start < len;
    /* The first "--- html" line ends the text; the newline before it is not the body's. */
    size_t at = text_start, html_line = 0;
    unsigned line = 3;
    for (;; line++) {
        if (at >= len)
            return cf_fail(c->errbuf, c->errlen, CF_ECONFIG,
                           "%s:%u: the file ends without a line \"--- html\"", c->path, line);
        size_t e = line_end(s, len, at);
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

/* ---- files ----------------------------------------------------------------------------- */

/* Bytes of valid UTF-8 at the start of s[0..len) (NUL is not text here). */
static size_t utf8_valid_prefix(const char *s, size_t len)
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

static unsigned line_at(const char *s, size_t pos)
{
    unsigned line = 1;
    for (size_t i = 0; i < pos; i++)
        line += s[i] == '\n';
    return line;
}

/* Reads path into *out (NUL-terminated, *len bytes), checked to be UTF-8 and with every CR LF
 * and lone CR turned into LF and a leading byte order mark dropped. *absent (when not NULL) is
 * set instead of failing if the file does not exist. */
static cf_status read_text_file(const char *path, bool *absent, char **out, size_t *len,
                                char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    char *buf = NULL;
    size_t n = 0;
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (absent != NULL)
        *absent = false;
    if (fd < 0) {
        if (errno == ENOENT && absent != NULL) {
            *absent = true;
            return CF_OK;
        }
        return cf_fail(errbuf, errlen, CF_ECONFIG, "%s: %s", path, strerror(errno));
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = cf_fail(errbuf, errlen, CF_ECONFIG, "%s: not a readable regular file", path);
        goto out;
    }
    if (sb.st_size > (off_t)NOTIFIER_TEMPLATE_FILE_MAX) {
        st = cf_fail(errbuf, errlen, CF_ECONFIG, "%s: over %u bytes", path,
                     NOTIFIER_TEMPLATE_FILE_MAX);
        goto out;
    }
    /* One byte more than the cap shows a file that grew since fstat. */
    if ((buf = malloc((size_t)sb.st_size + 2)) == NULL) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
        goto out;
    }
    while (n < (size_t)sb.st_size + 1) {
        ssize_t r = read(fd, buf + n, (size_t)sb.st_size + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            st = cf_fail(errbuf, errlen, CF_ECONFIG, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > (size_t)sb.st_size || n > NOTIFIER_TEMPLATE_FILE_MAX) {
        st = cf_fail(errbuf, errlen, CF_ECONFIG, "%s: changed while read", path);
        goto out;
    }
    size_t valid = utf8_valid_prefix(buf, n);
    if (valid < n) {
        st =
            cf_fail(errbuf, errlen, CF_ECONFIG, "%s:%u: not UTF-8 text", path, line_at(buf, valid));
        goto out;
    }
    size_t r = 0, w = 0;
    if (n >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        r = 3;
    for (; r < n; r++) {
        if (buf[r] == '\r') {
            buf[w++] = '\n';
            r += r + 1 < n && buf[r + 1] == '\n';
        } else {
            buf[w++] = buf[r];
        }
    }
    buf[w] = '\0';
    *out = buf;
    *len = w;
    buf = NULL;
out:
    free(buf);
    (void)close(fd);
    return st;
}

/* path = dir "/" a "/" b (b may be NULL). */
static cf_status join_path(char *path, const char *dir, const char *a, const char *b, char *errbuf,
                           size_t errlen)
{
    int w = b != NULL ? snprintf(path, RENDER_PATH_MAX, "%s/%s/%s", dir, a, b)
                      : snprintf(path, RENDER_PATH_MAX, "%s/%s", dir, a);
    if (w < 0 || (size_t)w >= RENDER_PATH_MAX)
        return cf_fail(errbuf, errlen, CF_ECONFIG, "template directory: path over %d bytes",
                       RENDER_PATH_MAX);
    return CF_OK;
}

static const char *const channel_ext[] = {[NOTIFIER_EMAIL] = ".email", [NOTIFIER_SMS] = ".sms"};

static bool spec_has(const struct notifier_template_spec *spec, enum notifier_channel ch)
{
    return ch == NOTIFIER_EMAIL ? spec->email : spec->sms;
}

/* Loads <dir>/<lang>/<spec>.<ext>; *out stays NULL when the file is absent and may be. */
static cf_status load_template(const char *dir, const char *lang, const struct parsed_spec *ps,
                               enum notifier_channel ch, bool required,
                               struct notifier_template **out, char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    char path[RENDER_PATH_MAX];
    char file[RENDER_PATH_MAX];
    struct notifier_template *tpl = NULL;
    bool absent = false;
    size_t len = 0;

    *out = NULL;
    int w = snprintf(file, sizeof(file), "%s%s", ps->src->name, channel_ext[ch]);
    if (w < 0 || (size_t)w >= sizeof(file))
        return cf_fail(errbuf, errlen, CF_EINVAL, "spec %s: name too long", ps->src->name);
    if ((st = join_path(path, dir, lang, file, errbuf, errlen)) != CF_OK)
        return st;
    if ((tpl = calloc(1, sizeof(*tpl))) == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
    tpl->spec = ps;
    tpl->channel = ch;
    if ((st = read_text_file(path, &absent, &tpl->source, &len, errbuf, errlen)) != CF_OK)
        goto out;
    if (absent) {
        if (required)
            st = cf_fail(errbuf, errlen, CF_ECONFIG,
                         "%s: missing (English must have every template)", path);
        goto out;
    }
    struct compiler c = {.path = path, .spec = ps, .errbuf = errbuf, .errlen = errlen};
    if (ch == NOTIFIER_EMAIL) {
        st = compile_email(&c, tpl, len);
    } else {
        /* The editor's final newline is not part of the message. */
        if (len > 0 && tpl->source[len - 1] == '\n')
            tpl->source[--len] = '\0';
        if (len == 0)
            st = cf_fail(errbuf, errlen, CF_ECONFIG, "%s:1: empty SMS", path);
        else
            st = compile_part(&c, tpl->source, len, 1, &tpl->text);
    }
    if (st != CF_OK)
        goto out;
    *out = tpl;
    tpl = NULL;
out:
    template_free(tpl);
    return st;
}

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const struct label *)a)->key, ((const struct label *)b)->key);
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* "KEY = text" lines, '#' comments and blank lines. The keys and texts point into source. */
static cf_status parse_labels(const char *path, struct language *lang, size_t len, char *errbuf,
                              size_t errlen)
{
    char *s = lang->label_source;
    size_t cap = 0;
    unsigned line = 1;

    for (size_t at = 0; at < len; line++) {
        size_t e = line_end(s, len, at);
        size_t b = at;
        at = e + 1;
        while (b < e && is_blank(s[b]))
            b++;
        if (b == e || s[b] == '#')
            continue;
        char *eq = memchr(s + b, '=', e - b);
        if (eq == NULL)
            return cf_fail(errbuf, errlen, CF_ECONFIG, "%s:%u: expected \"KEY = text\"", path,
                           line);
        size_t ke = (size_t)(eq - s), tb = ke + 1, te = e;
        while (ke > b && is_blank(s[ke - 1]))
            ke--;
        while (tb < te && is_blank(s[tb]))
            tb++;
        while (te > tb && is_blank(s[te - 1]))
            te--;
        for (size_t i = b; i < ke; i++)
            if (!is_name_char(s[i]) && s[i] != '.' && s[i] != '-')
                return cf_fail(errbuf, errlen, CF_ECONFIG,
                               "%s:%u: a key may hold only letters, digits, '_', '.' and '-'", path,
                               line);
        if (ke == b || te == tb)
            return cf_fail(errbuf, errlen, CF_ECONFIG, "%s:%u: empty key or text", path, line);
        if (lang->nlabels == cap) {
            /* Bounded by the file: every label takes a line of it. */
            size_t ncap = cap ? cap * 2 : 32;
            struct label *l = realloc(lang->labels, ncap * sizeof(*l));
            if (l == NULL)
                return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
            lang->labels = l;
            cap = ncap;
        }
        s[ke] = '\0';
        s[te] = '\0';
        lang->labels[lang->nlabels++] = (struct label){s + b, s + tb, line};
    }
    if (lang->nlabels > 0)
        qsort(lang->labels, lang->nlabels, sizeof(*lang->labels), label_cmp);
    for (size_t i = 1; i < lang->nlabels; i++) {
        const struct label *l = &lang->labels[i], *p = &lang->labels[i - 1];
        if (strcmp(l->key, p->key) == 0)
            return cf_fail(errbuf, errlen, CF_ECONFIG, "%s:%u: %s already set on line %u", path,
                           l->line > p->line ? l->line : p->line, l->key,
                           l->line > p->line ? p->line : l->line);
    }
    return CF_OK;
}

static const struct label *label_find(const struct language *lang, const char *key)
{
    if (lang == NULL || lang->nlabels == 0)
        return NULL;
    struct label probe = {key, NULL, 0};
    return bsearch(&probe, lang->labels, lang->nlabels, sizeof(*lang->labels), label_cmp);
}

static cf_status load_labels(const char *dir, struct language *lang, char *errbuf, size_t errlen)
{
    char path[RENDER_PATH_MAX];
    bool absent = false;
    size_t len = 0;
    cf_status st = join_path(path, dir, lang->name, "labels", errbuf, errlen);
    if (st == CF_OK)
        st = read_text_file(path, &absent, &lang->label_source, &len, errbuf, errlen);
    if (st != CF_OK)
        return st;
    if (absent)
        return strcmp(lang->name, "en") == 0
                   ? cf_fail(errbuf, errlen, CF_ECONFIG, "%s: missing (English needs labels)", path)
                   : CF_OK;
    return parse_labels(path, lang, len, errbuf, errlen);
}

/* A file named like a template that the spec table lacks is a typo or a channel the spec does
 * not have: refused, rather than silently never sent. Other files (notes, editor backups) are
 * left alone. */
static cf_status check_strays(const char *dir, const struct notifier_templates *t, const char *lang,
                              char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    char path[RENDER_PATH_MAX];
    DIR *d = NULL;
    struct dirent *e;

    if ((st = join_path(path, dir, lang, NULL, errbuf, errlen)) != CF_OK)
        return st;
    if ((d = opendir(path)) == NULL)
        return cf_fail(errbuf, errlen, CF_ECONFIG, "%s: %s", path, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.')
            continue;
        for (int ch = NOTIFIER_EMAIL; ch <= NOTIFIER_SMS; ch++) {
            size_t xl = strlen(channel_ext[ch]);
            if (n <= xl || strcmp(e->d_name + n - xl, channel_ext[ch]) != 0)
                continue;
            bool known = false;
            for (size_t i = 0; i < t->nspecs && !known; i++)
                known = spec_has(&t->specs[i], (enum notifier_channel)ch) &&
                        strlen(t->specs[i].name) == n - xl &&
                        memcmp(t->specs[i].name, e->d_name, n - xl) == 0;
            if (!known) {
                st = cf_fail(errbuf, errlen, CF_ECONFIG,
                             "%s/%s: no such template in the catalog for this channel", path,
                             e->d_name);
                goto out;
            }
        }
    }
out:
    (void)closedir(d);
    return st;
}

static bool is_lang_name(const char *s)
{
    size_t n = 0;
    while (s[n] >= 'a' && s[n] <= 'z')
        n++;
    return s[n] == '\0' && n >= 2 && n <= 3;
}

static int lang_cmp(const void *a, const void *b)
{
    return strcmp(((const struct language *)a)->name, ((const struct language *)b)->name);
}

/* Fills t->langs with the language directories under dir, sorted. */
static cf_status list_languages(const char *dir, struct notifier_templates *t, char *errbuf,
                                size_t errlen)
{
    cf_status st = CF_OK;
    char path[RENDER_PATH_MAX];
    DIR *d = opendir(dir);
    struct dirent *e;

    if (d == NULL)
        return cf_fail(errbuf, errlen, CF_ECONFIG, "template directory %s: %s", dir,
                       strerror(errno));
    if ((t->langs = calloc(RENDER_MAX_LANGS, sizeof(*t->langs))) == NULL) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
        goto out;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        if (!is_lang_name(e->d_name))
            continue;
        if ((st = join_path(path, dir, e->d_name, NULL, errbuf, errlen)) != CF_OK)
            goto out;
        if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
            continue;
        if (t->nlangs == RENDER_MAX_LANGS) {
            st = cf_fail(errbuf, errlen, CF_ECONFIG, "%s: more than %d languages", dir,
                         RENDER_MAX_LANGS);
            goto out;
        }
        struct language *lang = &t->langs[t->nlangs++];
        memcpy(lang->name, e->d_name, strlen(e->d_name) + 1);
        if ((lang->tpls = calloc(t->nspecs * 2, sizeof(*lang->tpls))) == NULL) {
            st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (t->nlangs > 0)
        qsort(t->langs, t->nlangs, sizeof(*t->langs), lang_cmp);
out:
    (void)closedir(d);
    return st;
}

/* Every label of every language is in English too, the fallback for any of them. */
static cf_status check_english_labels(const char *dir, const struct notifier_templates *t,
                                      char *errbuf, size_t errlen)
{
    for (size_t i = 0; i < t->nlangs; i++) {
        const struct language *lang = &t->langs[i];
        if (lang == t->en)
            continue;
        for (size_t k = 0; k < lang->nlabels; k++)
            if (label_find(t->en, lang->labels[k].key) == NULL)
                return cf_fail(errbuf, errlen, CF_ECONFIG,
                               "%s/%s/labels:%u: %s is not in en/labels", dir, lang->name,
                               lang->labels[k].line, lang->labels[k].key);
    }
    return CF_OK;
}

cf_status notifier_templates_load(const char *dir, const struct notifier_template_spec *specs,
                                  size_t n, struct notifier_templates **out, char *errbuf,
                                  size_t errlen)
{
    cf_status st = CF_OK;
    struct notifier_templates *t = NULL;

    if (out == NULL || dir == NULL || (specs == NULL && n > 0))
        return cf_fail(errbuf, errlen, CF_EINVAL, "templates: no directory, specs or output");
    *out = NULL;
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
    t->specs = specs;
    t->nspecs = n;
    if (n > 0 && (t->parsed = calloc(n, sizeof(*t->parsed))) == NULL) {
        st = cf_fail(errbuf, errlen, CF_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if ((st = parse_spec(&specs[i], &t->parsed[i], errbuf, errlen)) != CF_OK)
            goto out;
        for (size_t j = 0; j < i; j++)
            if (strcmp(specs[i].name, specs[j].name) == 0) {
                st = cf_fail(errbuf, errlen, CF_EINVAL, "spec %s: listed twice", specs[i].name);
                goto out;
            }
    }
    if ((st = list_languages(dir, t, errbuf, errlen)) != CF_OK)
        goto out;
    for (size_t l = 0; l < t->nlangs; l++)
        if (strcmp(t->langs[l].name, "en") == 0)
            t->en = &t->langs[l];
    if (t->en == NULL) {
        st = cf_fail(errbuf, errlen, CF_ECONFIG, "%s/en: missing (English is required)", dir);
        goto out;
    }
    for (size_t l = 0; l < t->nlangs; l++) {
        struct language *lang = &t->langs[l];
        bool required = lang == t->en;
        for (size_t i = 0; i < n; i++)
            for (int ch = NOTIFIER_EMAIL; ch <= NOTIFIER_SMS; ch++) {
                if (!spec_has(&specs[i], (enum notifier_channel)ch))
                    continue;
                if ((st = load_template(dir, lang->name, &t->parsed[i], (enum notifier_channel)ch,
                                        required, &lang->tpls[i * 2 + (size_t)ch], errbuf,
                                        errlen)) != CF_OK)
                    goto out;
            }
        if ((st = check_strays(dir, t, lang->name, errbuf, errlen)) != CF_OK ||
            (st = load_labels(dir, lang, errbuf, errlen)) != CF_OK)
            goto out;
    }
    if ((st = check_english_labels(dir, t, errbuf, errlen)) != CF_OK)
        goto out;
    *out = t;
    t = NULL;
out:
    notifier_templates_free(t);
    return st;
}

void notifier_templates_free(struct notifier_templates *t)
{
    if (t == NULL)
        return;
    for (size_t l = 0; l < t->nlangs; l++) {
        struct language *lang = &t->langs[l];
        for (size_t i = 0; lang->tpls != NULL && i < t->nspecs * 2; i++)
            template_free(lang->tpls[i]);
        free(lang->tpls);
        free(lang->labels);
        free(lang->label_source);
    }
    free(t->langs);
    for (size_t i = 0; t->parsed != NULL && i < t->nspecs; i++)
        free(t->parsed[i].names);
    free(t->parsed);
    free(t);
}

/* The language whose directory matches tag's primary subtag, or NULL. */
static const struct language *language_of(const struct notifier_templates *t, const char *tag)
{
    char primary[4];
    size_t n = 0;

    if (tag == NULL)
        return NULL;
    for (; tag[n] != '\0' && tag[n] != '-' && tag[n] != '_'; n++) {
        char c = tag[n];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (n == 3 || c < 'a' || c > 'z')
            return NULL;
        primary[n] = c;
    }
    if (n < 2)
        return NULL;
    primary[n] = '\0';
    for (size_t l = 0; l < t->nlangs; l++)
        if (strcmp(t->langs[l].name, primary) == 0)
            return &t->langs[l];
    return NULL;
}

const struct notifier_template *notifier_templates_find(const struct notifier_templates *t,
                                                        const char *name,
                                                        enum notifier_channel channel,
                                                        const char *lang, const char **used_lang)
{
    if (used_lang != NULL)
        *used_lang = NULL;
    if (t == NULL || name == NULL || (channel != NOTIFIER_EMAIL && channel != NOTIFIER_SMS))
        return NULL;
    size_t i = 0;
    while (i < t->nspecs && strcmp(t->specs[i].name, name) != 0)
        i++;
    if (i == t->nspecs || !spec_has(&t->specs[i], channel))
        return NULL;
    const struct language *l = language_of(t, lang);
    if (l == NULL || l->tpls[i * 2 + (size_t)channel] == NULL)
        l = t->en;
    if (used_lang != NULL)
        *used_lang = l->name;
    return l->tpls[i * 2 + (size_t)channel];
}

const char *notifier_templates_label(const struct notifier_templates *t, const char *lang,
                                     const char *key)
{
    if (t == NULL || key == NULL)
        return NULL;
    const struct label *l = label_find(language_of(t, lang), key);
    if (l == NULL)
        l = label_find(t->en, key);
    return l != NULL ? l->text : NULL;
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
    else if (utf8_valid_prefix(json_string_value(v), json_string_length(v)) !=
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
