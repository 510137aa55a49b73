/* templates.c — the notifier's template directory read (render.h): every language's templates
 * and labels, checked and compiled once at start (render.c compiles), then found by language
 * with English as the fallback.
 *
 * Errors name the file and the line, never a value. */
#include "render.h"
#include "render_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- files ----------------------------------------------------------------------------- */

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
    size_t valid = render_utf8_valid_prefix(buf, n);
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
    st = render_compile(path, tpl, len, errbuf, errlen);
    if (st != CF_OK)
        goto out;
    *out = tpl;
    tpl = NULL;
out:
    render_template_free(tpl);
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
        size_t e = render_line_end(s, len, at);
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
            if (!render_is_name_char(s[i]) && s[i] != '.' && s[i] != '-')
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
        if ((st = render_parse_spec(&specs[i], &t->parsed[i], errbuf, errlen)) != CF_OK)
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
            render_template_free(lang->tpls[i]);
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

