/* test_notifier_render.c — the notifier's templates (services/notifier/render.h): the shipped
 * templates load with the real catalog and render in every language, the engine's exact output
 * on small templates written to a temporary directory, escaping per part, language and label
 * fallback, and every way a template directory or a render can be refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "catalog.h"
#include "render.h"
#include "sms_size.h"

#define TEMPLATE_DIR CF_TESTS_DIR "/../services/notifier/templates"

static const char *const languages[] = {"en", "es", "tr", "ru"};

/* ---- temporary template directories ------------------------------------------------------ */

static void rm_rf(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            char child[1024];
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            (void)snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
            rm_rf(child);
        }
        if (d != NULL)
            (void)closedir(d);
        (void)rmdir(path);
    } else {
        (void)unlink(path);
    }
}

static int tmp_setup(void **state)
{
    const char *base = getenv("TMPDIR");
    char *dir = malloc(512);
    if (dir == NULL)
        return -1;
    (void)snprintf(dir, 512, "%s/cf_render_XXXXXX", base != NULL && *base ? base : "/tmp");
    if (mkdtemp(dir) == NULL) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

static int tmp_teardown(void **state)
{
    rm_rf(*state);
    free(*state);
    return 0;
}

/* Writes len bytes of data to dir/rel, creating rel's one directory level (the language). */
static void put_n(const char *dir, const char *rel, const char *data, size_t len)
{
    char path[1024];
    const char *slash = strchr(rel, '/');
    if (slash != NULL) {
        (void)snprintf(path, sizeof(path), "%s/%.*s", dir, (int)(slash - rel), rel);
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            fail_msg("mkdir %s: %s", path, strerror(errno));
    }
    (void)snprintf(path, sizeof(path), "%s/%s", dir, rel);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void put(const char *dir, const char *rel, const char *text)
{
    put_n(dir, rel, text, strlen(text));
}

/* The specs of the small templates: "t" has both channels, "s" is an SMS with a field that
 * shadows a top-level name, "v" one text variable. */
static const struct notifier_template_spec specs[] = {
    {"t", "given_name items[name,x] flag", true, true},
    {"s", "name items[name] flag", false, true},
    {"v", "v", true, true},
};
#define NSPECS (sizeof(specs) / sizeof(specs[0]))

/* A valid English set for specs; tests overwrite one file to break it. */
static void minimal(const char *dir)
{
    put(dir, "en/t.email",
        "subject: Hello {{given_name}}{{#flag}} (flagged){{/flag}}\n"
        "--- text\n"
        "Dear {{given_name}},\n"
        "{{#items}}- {{name}}: {{x}}\n{{/items}}{{^items}}(none)\n{{/items}}\n"
        "--- html\n"
        "<p>{{given_name}}</p>\n"
        "<ul>{{#items}}<li>{{name}}</li>{{/items}}</ul>\n");
    put(dir, "en/t.sms", "Hi {{given_name}}\n");
    put(dir, "en/s.sms",
        "{{name}}|{{#items}}{{name}};{{/items}}|{{^items}}none{{/items}}|"
        "{{#flag}}F{{/flag}}{{^flag}}f{{/flag}}"
        "{{#items}}{{#flag}}[{{name}}]{{/flag}}{{/items}}\n");
    put(dir, "en/v.email", "subject: {{v}}\n--- text\n{{v}}\n--- html\n{{v}}");
    put(dir, "en/v.sms", "{{v}}");
    put(dir, "en/labels", "# comment\n\nA.ONE = One\nA.TWO=Two  \n");
}

static struct notifier_templates *load_ok(const char *dir)
{
    struct notifier_templates *t = NULL;
    char err[512] = "";
    cf_status st = notifier_templates_load(dir, specs, NSPECS, &t, err, sizeof(err));
    if (st != CF_OK)
        fail_msg("load: %s: %s", cf_strerror(st), err);
    assert_non_null(t);
    return t;
}

/* Loads dir expecting CF_ECONFIG with an errbuf holding every one of the NULL-terminated
 * strings. */
static void load_fails(const char *dir, ...)
{
    struct notifier_templates *t = NULL;
    char err[512] = "";
    va_list ap;
    cf_status st = notifier_templates_load(dir, specs, NSPECS, &t, err, sizeof(err));
    assert_int_equal(st, CF_ECONFIG);
    assert_null(t);
    va_start(ap, dir);
    for (const char *want = va_arg(ap, const char *); want != NULL; want = va_arg(ap, const char *))
        if (strstr(err, want) == NULL)
            fail_msg("errbuf \"%s\" lacks \"%s\"", err, want);
    va_end(ap);
}

static json_t *vars_of(const char *json)
{
    json_error_t jerr;
    json_t *v = json_loads(json, 0, &jerr);
    if (v == NULL)
        fail_msg("test JSON: %s", jerr.text);
    return v;
}

/* Renders template name/channel in English with vars (JSON text) into *out, expecting CF_OK. */
static void render_ok(const struct notifier_templates *t, const char *name,
                      enum notifier_channel ch, const char *json, struct notifier_rendered *out)
{
    char err[256] = "";
    json_t *vars = vars_of(json);
    const struct notifier_template *tpl = notifier_templates_find(t, name, ch, "en", NULL);
    assert_non_null(tpl);
    cf_status st = notifier_render(tpl, vars, out, err, sizeof(err));
    json_decref(vars);
    if (st != CF_OK)
        fail_msg("render %s: %s: %s", name, cf_strerror(st), err);
}

static void assert_sms(const struct notifier_templates *t, const char *name, const char *json,
                       const char *want)
{
    struct notifier_rendered r;
    render_ok(t, name, NOTIFIER_SMS, json, &r);
    assert_null(r.subject);
    assert_null(r.html);
    assert_string_equal(r.text, want);
    notifier_rendered_clear(&r);
}

/* ---- the engine on small templates ------------------------------------------------------- */

static void test_render_exact(void **state)
{
    const char *dir = *state;
    struct notifier_rendered r;
    minimal(dir);
    struct notifier_templates *t = load_ok(dir);

    render_ok(t, "t", NOTIFIER_EMAIL,
              "{\"given_name\": \"Ana\", \"flag\": \"yes\", \"items\": "
              "[{\"name\": \"a<b\", \"x\": \"1\"}, {\"name\": \"c\", \"x\": \"\"}]}",
              &r);
    assert_string_equal(r.subject, "Hello Ana (flagged)");
    /* The newline before "--- html" is the separator's; the HTML body is kept as written. */
    assert_string_equal(r.text, "Dear Ana,\n- a<b: 1\n- c: \n");
    assert_string_equal(r.html, "<p>Ana</p>\n<ul><li>a&lt;b</li><li>c</li></ul>\n");
    notifier_rendered_clear(&r);
    assert_null(r.subject);
    assert_null(r.text);
    assert_null(r.html);

    /* Missing variables render empty; an empty list and an empty text are both empty. */
    render_ok(t, "t", NOTIFIER_EMAIL, "{\"flag\": \"\", \"items\": []}", &r);
    assert_string_equal(r.subject, "Hello ");
    assert_string_equal(r.text, "Dear ,\n(none)\n");
    assert_string_equal(r.html, "<p></p>\n<ul></ul>\n");
    notifier_rendered_clear(&r);

    /* JSON null is an absent value. */
    render_ok(t, "t", NOTIFIER_EMAIL, "{\"given_name\": null, \"items\": null}", &r);
    assert_string_equal(r.text, "Dear ,\n(none)\n");
    notifier_rendered_clear(&r);

    /* SMS: one final newline dropped. */
    assert_sms(t, "t", "{\"given_name\": \"Ana\"}", "Hi Ana");

    /* An item's field shadows the outer name of the same name, even when the item lacks it;
     * outer text variables stay readable inside a list. */
    assert_sms(t, "s",
               "{\"name\": \"top\", \"items\": [{\"name\": \"i1\"}, {\"name\": \"i2\"}], "
               "\"flag\": \"\"}",
               "top|i1;i2;||f");
    assert_sms(t, "s", "{\"name\": \"top\", \"items\": [{}], \"flag\": \"y\"}", "top|;||F[]");
    assert_sms(t, "s", "{\"name\": \"top\", \"items\": [{\"name\": \"i\"}], \"flag\": \"y\"}",
               "top|i;||F[i]");
    assert_sms(t, "s", "{\"name\": \"top\"}", "top||none|f");
    assert_sms(t, "s", "{}", "||none|f");
    /* Members the spec does not declare are ignored. */
    assert_sms(t, "s", "{\"name\": \"n\", \"other\": 5}", "n||none|f");
    notifier_templates_free(t);
}

static void test_file_format(void **state)
{
    const char *dir = *state;
    struct notifier_rendered r;
    minimal(dir);
    /* CR LF and lone CR in a file are LF; only one final newline of an SMS is dropped; blanks
     * after "subject:" and after the separators are not part of the text. */
    put(dir, "en/t.sms", "line {{given_name}}\r\nnext\rlast\n\n");
    put(dir, "en/t.email",
        "subject:   S {{given_name}}  \r\n--- text  \r\n\r\nbody\r\n\r\n--- html\r\n<b>\r\n");
    struct notifier_templates *t = load_ok(dir);
    assert_sms(t, "t", "{\"given_name\": \"A\"}", "line A\nnext\nlast\n");
    render_ok(t, "t", NOTIFIER_EMAIL, "{\"given_name\": \"A\"}", &r);
    assert_string_equal(r.subject, "S A");
    assert_string_equal(r.text, "\nbody\n");
    assert_string_equal(r.html, "<b>\n");
    notifier_rendered_clear(&r);
    notifier_templates_free(t);

    /* Empty text and HTML bodies. */
    put(dir, "en/t.email", "subject: S\n--- text\n--- html\n");
    t = load_ok(dir);
    render_ok(t, "t", NOTIFIER_EMAIL, "{}", &r);
    assert_string_equal(r.subject, "S");
    assert_string_equal(r.text, "");
    assert_string_equal(r.html, "");
    notifier_rendered_clear(&r);
    notifier_templates_free(t);
}

static void test_escaping(void **state)
{
    const char *dir = *state;
    struct notifier_rendered r;
    minimal(dir);
    struct notifier_templates *t = load_ok(dir);

    /* A value cannot start a header: every control character of the subject is a space. */
    render_ok(t, "v", NOTIFIER_EMAIL, "{\"v\": \"Ana\\r\\nBcc: x@evil\"}", &r);
    assert_string_equal(r.subject, "Ana  Bcc: x@evil");
    assert_string_equal(r.text, "Ana\nBcc: x@evil");
    assert_string_equal(r.html, "Ana\nBcc: x@evil");
    notifier_rendered_clear(&r);

    render_ok(t, "v", NOTIFIER_EMAIL, "{\"v\": \"a\\rb\\nc\\td\\u007fe\\u0085f\\u2028g\\u00e9\"}",
              &r);
    /* C0, DEL, C1 (U+0085) and U+2028 become one space each; é stays. */
    assert_string_equal(r.subject, "a b c d e f g\xc3\xa9");
    notifier_rendered_clear(&r);

    render_ok(t, "v", NOTIFIER_EMAIL, "{\"v\": \"<script>alert(1)</script> & \\\"q\\\" 'a'\"}", &r);
    assert_string_equal(r.html,
                        "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot; &#39;a&#39;");
    assert_string_equal(r.text, "<script>alert(1)</script> & \"q\" 'a'");
    assert_string_equal(r.subject, "<script>alert(1)</script> & \"q\" 'a'");
    notifier_rendered_clear(&r);

    /* Text and SMS: CR LF and lone CR are LF, other characters untouched. */
    assert_sms(t, "v", "{\"v\": \"a\\r\\nb\\rc\\n\\td<&\"}", "a\nb\nc\n\td<&");
    render_ok(t, "v", NOTIFIER_EMAIL, "{\"v\": \"a\\r\\nb\\rc\"}", &r);
    assert_string_equal(r.html, "a\nb\nc");
    notifier_rendered_clear(&r);
    notifier_templates_free(t);
}

static void test_render_limits(void **state)
{
    const char *dir = *state;
    struct notifier_rendered r = {NULL, NULL, NULL};
    char err[256];
    minimal(dir);
    struct notifier_templates *t = load_ok(dir);
    const struct notifier_template *sms = notifier_templates_find(t, "v", NOTIFIER_SMS, "en", NULL);
    const struct notifier_template *mail =
        notifier_templates_find(t, "v", NOTIFIER_EMAIL, "en", NULL);
    char *big = malloc(NOTIFIER_RENDER_MAX + 2);
    assert_non_null(big);

    /* Exactly the limit fits; one byte more does not. */
    memset(big, 'a', NOTIFIER_RENDER_MAX + 1);
    big[NOTIFIER_RENDER_MAX] = '\0';
    json_t *vars = json_pack("{s:s}", "v", big);
    assert_int_equal(notifier_render(sms, vars, &r, err, sizeof(err)), CF_OK);
    assert_int_equal(strlen(r.text), NOTIFIER_RENDER_MAX);
    notifier_rendered_clear(&r);
    json_decref(vars);
    big[NOTIFIER_RENDER_MAX] = 'a';
    big[NOTIFIER_RENDER_MAX + 1] = '\0';
    vars = json_pack("{s:s}", "v", big);
    assert_int_equal(notifier_render(sms, vars, &r, err, sizeof(err)), CF_ETOOBIG);
    assert_null(r.text);
    json_decref(vars);

    /* Escaping counts: 20000 apostrophes fit the subject and the text, not the HTML (5 bytes
     * each), and a failed render leaves nothing behind. */
    memset(big, '\'', 20000);
    big[20000] = '\0';
    vars = json_pack("{s:s}", "v", big);
    err[0] = '\0';
    assert_int_equal(notifier_render(mail, vars, &r, err, sizeof(err)), CF_ETOOBIG);
    assert_non_null(strstr(err, "html"));
    assert_null(r.subject);
    assert_null(r.text);
    assert_null(r.html);
    json_decref(vars);

    /* A list multiplies its body: 5000 items of 20 bytes. */
    json_t *items = json_array();
    for (int i = 0; i < 5000; i++)
        assert_int_equal(
            json_array_append_new(items, json_pack("{s:s}", "name", "0123456789012345678")), 0);
    vars = json_pack("{s:o}", "items", items);
    const struct notifier_template *s = notifier_templates_find(t, "s", NOTIFIER_SMS, "en", NULL);
    assert_int_equal(notifier_render(s, vars, &r, err, sizeof(err)), CF_ETOOBIG);
    assert_null(r.text);
    json_decref(vars);
    free(big);
    notifier_templates_free(t);
}

static void test_render_refused(void **state)
{
    const char *dir = *state;
    struct notifier_rendered r = {NULL, NULL, NULL};
    char err[256];
    minimal(dir);
    struct notifier_templates *t = load_ok(dir);
    const struct notifier_template *tpl =
        notifier_templates_find(t, "t", NOTIFIER_EMAIL, "en", NULL);
    static const struct {
        const char *json;
        const char *names;
    } cases[] = {
        {"{\"given_name\": 42}", "given_name"},
        {"{\"given_name\": [\"a\"]}", "given_name"},
        {"{\"items\": \"a, b\"}", "items"},
        {"{\"items\": {\"name\": \"a\"}}", "items"},
        {"{\"items\": [\"a\"]}", "items[0]"},
        {"{\"items\": [{\"name\": \"a\"}, {\"name\": 1}]}", "items[1].name"},
        {"{\"items\": [{\"x\": true}]}", "items[0].x"},
        {"[1, 2]", "variables"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *vars = vars_of(cases[i].json);
        err[0] = '\0';
        assert_int_equal(notifier_render(tpl, vars, &r, err, sizeof(err)), CF_EINVAL);
        if (strstr(err, cases[i].names) == NULL)
            fail_msg("%s: errbuf \"%s\" lacks \"%s\"", cases[i].json, err, cases[i].names);
        assert_null(r.subject);
        json_decref(vars);
    }

    /* Text that is not UTF-8 (jansson's unchecked constructor lets it in) or holds a NUL. */
    json_t *vars = json_object();
    assert_int_equal(json_object_set_new(vars, "given_name", json_string_nocheck("a\xff")), 0);
    assert_int_equal(notifier_render(tpl, vars, &r, err, sizeof(err)), CF_EINVAL);
    assert_non_null(strstr(err, "given_name"));
    assert_int_equal(json_object_set_new(vars, "given_name", json_stringn("a\0b", 3)), 0);
    assert_int_equal(notifier_render(tpl, vars, &r, err, sizeof(err)), CF_EINVAL);
    json_decref(vars);

    assert_int_equal(notifier_render(NULL, NULL, &r, err, sizeof(err)), CF_EINVAL);
    assert_int_equal(notifier_render(tpl, NULL, NULL, err, sizeof(err)), CF_EINVAL);
    /* NULL vars: every variable empty. */
    assert_int_equal(notifier_render(tpl, NULL, &r, err, sizeof(err)), CF_OK);
    assert_string_equal(r.subject, "Hello ");
    notifier_rendered_clear(&r);
    notifier_rendered_clear(NULL);
    notifier_templates_free(NULL);
    notifier_templates_free(t);
}

/* ---- load errors -------------------------------------------------------------------------- */

static void test_load_errors(void **state)
{
    const char *dir = *state;
    char path[1024];
    static const struct {
        const char *file;
        const char *text;
        const char *where;
        const char *what;
    } cases[] = {
        {"en/t.email", "subject: x\n--- text\nA\n{{nope}}\n--- html\n", "/en/t.email:4:", "nope"},
        {"en/t.email", "subject: x {{ given_nam }}\n--- text\n--- html\n",
         "/en/t.email:1:", "given_nam"},
        {"en/t.email", "subject: x\n--- text\n--- html\n\n\n{{#items}}<li>\n",
         "/en/t.email:6:", "items"},
        {"en/t.sms", "{{#flag}}\n{{/items}}", "/en/t.sms:2:", "items"},
        {"en/t.sms", "a\n{{/flag}}", "/en/t.sms:2:", "flag"},
        {"en/t.sms", "a {{given_name", "/en/t.sms:1:", "unterminated"},
        {"en/t.sms", "a {{given_name\n}}", "/en/t.sms:1:", "unterminated"},
        {"en/t.sms", "\n\na {{ }}", "/en/t.sms:3:", "empty name"},
        {"en/t.sms", "{{#}}{{/}}", "/en/t.sms:1:", "empty name"},
        {"en/t.sms", "{{{given_name}}}", "/en/t.sms:1:", "not a name"},
        {"en/t.sms", "{{!comment}}", "/en/t.sms:1:", "not a name"},
        {"en/t.sms", "x\n{{items}}", "/en/t.sms:2:", "items"},
        /* A field outside its list, and a field of a list read under an inverted section. */
        {"en/t.sms", "{{name}}", "/en/t.sms:1:", "name"},
        {"en/t.sms", "{{^items}}{{x}}{{/items}}", "/en/t.sms:1:", "x"},
        {"en/t.sms", "", "/en/t.sms:1:", "empty SMS"},
        {"en/t.email", "subject: x\n--- html\n", "/en/t.email:2:", "--- text"},
        {"en/t.email", "Subject: x\n--- text\n--- html\n", "/en/t.email:1:", "subject"},
        {"en/t.email", "subject:  \n--- text\n--- html\n", "/en/t.email:1:", "empty subject"},
        {"en/t.email", "subject: x\n--- text\nbody\n", "/en/t.email:4:", "--- html"},
        {"en/t.sms", "ok \xc3\n", "/en/t.sms:1:", "UTF-8"},
        {"en/t.sms", "ok\n\n\xed\xa0\x80", "/en/t.sms:3:", "UTF-8"},
        {"en/labels", "A.ONE = One\nnothing here\n", "/en/labels:2:", "KEY = text"},
        {"en/labels", "A.ONE = One\n\nA.ONE = Again\n", "/en/labels:3:", "A.ONE"},
        {"en/labels", "A B = x\n", "/en/labels:1:", "key"},
        {"en/labels", "A.ONE =\n", "/en/labels:1:", "empty"},
        /* Files the catalog does not have: a typo, a channel the spec lacks. */
        {"en/tt.email", "subject: x\n--- text\n--- html\n", "/en/tt.email", "catalog"},
        {"es/s.email", "subject: x\n--- text\n--- html\n", "/es/s.email", "catalog"},
        /* Labels another language has must be in English. */
        {"ru/labels", "A.ONE = Один\nA.THREE = Три\n", "/ru/labels:2:", "A.THREE"},
        /* Other languages are checked like English. */
        {"es/t.sms", "{{nope}}", "/es/t.sms:1:", "nope"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rm_rf(dir);
        assert_int_equal(mkdir(dir, 0700), 0);
        minimal(dir);
        put(dir, cases[i].file, cases[i].text);
        load_fails(dir, cases[i].where, cases[i].what, NULL);
    }

    /* English must have every template of the spec in each of its channels, and labels. */
    const char *required[] = {"en/t.email", "en/t.sms", "en/s.sms", "en/labels"};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        rm_rf(dir);
        assert_int_equal(mkdir(dir, 0700), 0);
        minimal(dir);
        (void)snprintf(path, sizeof(path), "%s/%s", dir, required[i]);
        assert_int_equal(unlink(path), 0);
        load_fails(dir, required[i], "missing", NULL);
    }
    rm_rf(dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    put(dir, "es/t.sms", "x");
    load_fails(dir, "/en", "missing", NULL);
    load_fails(CF_TESTS_DIR "/no/such/dir", "no/such/dir", NULL);

    /* Over NOTIFIER_TEMPLATE_FILE_MAX. */
    minimal(dir);
    char *big = malloc(NOTIFIER_TEMPLATE_FILE_MAX + 1);
    assert_non_null(big);
    memset(big, 'a', NOTIFIER_TEMPLATE_FILE_MAX + 1);
    put_n(dir, "en/t.sms", big, NOTIFIER_TEMPLATE_FILE_MAX + 1);
    load_fails(dir, "/en/t.sms", "over", NULL);
    put_n(dir, "en/t.sms", big, NOTIFIER_TEMPLATE_FILE_MAX);
    notifier_templates_free(load_ok(dir));
    free(big);

    /* A spec table the engine cannot use is the caller's error. */
    static const struct notifier_template_spec bad[] = {{"b", "a[", true, false}};
    struct notifier_templates *t = NULL;
    char err[256];
    assert_int_equal(notifier_templates_load(dir, bad, 1, &t, err, sizeof(err)), CF_EINVAL);
    assert_null(t);
}

/* ---- languages and labels ------------------------------------------------------------------ */

static void test_language_fallback(void **state)
{
    const char *dir = *state;
    const char *used = NULL;
    minimal(dir);
    put(dir, "es/t.sms", "Hola {{given_name}}\n");
    put(dir, "es/labels", "A.ONE = Uno\n");
    put(dir, "xx/t.sms", "{{given_name}}");
    put(dir, "notalang/t.sms", "{{nope}}"); /* not a language: never read */
    put(dir, "en/README", "editor notes are not templates");
    put(dir, "en/t.email~", "an editor's backup");
    struct notifier_templates *t = load_ok(dir);

    const struct notifier_template *es = notifier_templates_find(t, "t", NOTIFIER_SMS, "es", &used);
    assert_non_null(es);
    assert_string_equal(used, "es");
    assert_ptr_equal(notifier_templates_find(t, "t", NOTIFIER_SMS, "es-MX", &used), es);
    assert_string_equal(used, "es");
    assert_ptr_equal(notifier_templates_find(t, "t", NOTIFIER_SMS, "ES_419", &used), es);
    assert_string_equal(used, "es");
    assert_sms(t, "t", "{\"given_name\": \"Ana\"}", "Hi Ana");

    const struct notifier_template *en = notifier_templates_find(t, "t", NOTIFIER_SMS, "en", &used);
    assert_string_equal(used, "en");
    assert_ptr_not_equal(en, es);
    const char *fallbacks[] = {"pt", "pt-BR", "", NULL, "e", "espa", "es MX", "english"};
    for (size_t i = 0; i < sizeof(fallbacks) / sizeof(fallbacks[0]); i++) {
        used = "unset";
        assert_ptr_equal(notifier_templates_find(t, "t", NOTIFIER_SMS, fallbacks[i], &used), en);
        assert_string_equal(used, "en");
    }
    /* es has no email: English, and used_lang says so. */
    const struct notifier_template *mail =
        notifier_templates_find(t, "t", NOTIFIER_EMAIL, "es-ES", &used);
    assert_ptr_equal(mail, notifier_templates_find(t, "t", NOTIFIER_EMAIL, "en", NULL));
    assert_string_equal(used, "en");
    /* A three-letter language directory is a language. */
    assert_ptr_not_equal(notifier_templates_find(t, "t", NOTIFIER_SMS, "xx-YY", &used), en);
    assert_string_equal(used, "xx");

    /* No such template or channel. */
    assert_null(notifier_templates_find(t, "nope", NOTIFIER_SMS, "es", &used));
    assert_null(used);
    assert_null(notifier_templates_find(t, "s", NOTIFIER_EMAIL, "en", NULL));
    assert_null(notifier_templates_find(t, NULL, NOTIFIER_SMS, "en", NULL));
    assert_null(notifier_templates_find(NULL, "t", NOTIFIER_SMS, "en", NULL));

    /* Labels: the language's, else English's, else none. */
    assert_string_equal(notifier_templates_label(t, "es-AR", "A.ONE"), "Uno");
    assert_string_equal(notifier_templates_label(t, "es", "A.TWO"), "Two");
    assert_string_equal(notifier_templates_label(t, "pt", "A.ONE"), "One");
    assert_string_equal(notifier_templates_label(t, NULL, "A.TWO"), "Two");
    assert_string_equal(notifier_templates_label(t, "xx", "A.ONE"), "One");
    assert_null(notifier_templates_label(t, "es", "A.THREE"));
    assert_null(notifier_templates_label(t, "es", NULL));
    assert_null(notifier_templates_label(NULL, "es", "A.ONE"));
    notifier_templates_free(t);
}

/* ---- the shipped templates ---------------------------------------------------------------- */

/* Every variable of the catalog, with values of the size and shape the notifier fills in. */
static const char sample_vars[] =
    "{\"given_name\": \"Maria\", \"family_name\": \"Lopez Garcia\", \"case_ref\": "
    "\"CF-2026-000123\", \"manager_name\": \"Ana Ruiz\", \"specialist_name\": \"Dr. Elena "
    "Ortiz\", \"start_local\": \"Tuesday, December 8, 2026 at 9:00 AM Central Standard Time\", "
    "\"previous_start_local\": \"Monday, December 7, 2026 at 3:30 PM Central Standard Time\", "
    "\"time_zone\": \"America/Chicago\", \"duration_minutes\": \"30\", \"join_url\": "
    "\"https://meet.example.org/j/8f3k2q\", \"reschedule_url\": "
    "\"https://care.example.org/r/8f3k2q\", \"cancel_url\": \"https://care.example.org/c/8f3k2q\", "
    "\"expires_date\": \"Tuesday, December 22, 2026\", \"interpreter\": \"yes\", \"h24\": "
    "\"yes\", \"h1\": \"\", \"reason\": \"Withdrawn at your request\", \"case_id\": "
    "\"4b3c1f0e-8d2a-4c55-9a61-2f7e3b9d0c11\", \"case_url\": "
    "\"https://console.example.org/cases/4b3c1f0e-8d2a-4c55-9a61-2f7e3b9d0c11\", \"priority\": "
    "\"Urgent\", \"arrival_date\": \"Monday, March 1, 2027\", \"departure_date\": \"Saturday, "
    "March 6, 2027\", \"missing\": [{\"label\": \"Medical reports (lab results, imaging)\"}, "
    "{\"label\": \"Date of birth\"}], \"reasons\": [{\"label\": \"Consent was not given\"}], "
    "\"sessions\": [{\"number\": \"1\", \"date\": \"Tuesday, March 2, 2027\"}, {\"number\": "
    "\"2\", \"date\": \"Wednesday, March 3, 2027\"}], \"follow_ups\": [{\"start_local\": "
    "\"Monday, April 5, 2027 at 10:00 AM Central Daylight Time\"}]}";

static struct notifier_templates *load_shipped(const struct notifier_template_spec **cat, size_t *n)
{
    struct notifier_templates *t = NULL;
    char err[512] = "";
    *cat = notifier_catalog(n);
    cf_status st = notifier_templates_load(TEMPLATE_DIR, *cat, *n, &t, err, sizeof(err));
    if (st != CF_OK)
        fail_msg("shipped templates: %s: %s", cf_strerror(st), err);
    return t;
}

static void assert_no_tag(const char *what, const char *lang, const char *s)
{
    if (s != NULL && (strstr(s, "{{") != NULL || strstr(s, "}}") != NULL))
        fail_msg("%s (%s) keeps a tag: %s", what, lang, s);
}

static void test_shipped_render(void **state)
{
    (void)state;
    const struct notifier_template_spec *cat;
    size_t n;
    struct notifier_templates *t = load_shipped(&cat, &n);
    json_t *vars = vars_of(sample_vars);
    char err[256];
    char want_lang[32];

    for (size_t i = 0; i < n; i++) {
        for (size_t l = 0; l < sizeof(languages) / sizeof(languages[0]); l++) {
            for (int ch = NOTIFIER_EMAIL; ch <= NOTIFIER_SMS; ch++) {
                const char *used = NULL;
                bool has = ch == NOTIFIER_EMAIL ? cat[i].email : cat[i].sms;
                const struct notifier_template *tpl = notifier_templates_find(
                    t, cat[i].name, (enum notifier_channel)ch, languages[l], &used);
                if (!has) {
                    assert_null(tpl);
                    continue;
                }
                assert_non_null(tpl);
                /* Every patient template is translated; the care manager's is English. */
                bool manager = strcmp(cat[i].name, "case_assigned_manager") == 0;
                assert_string_equal(used, manager ? "en" : languages[l]);
                struct notifier_rendered r;
                if (notifier_render(tpl, vars, &r, err, sizeof(err)) != CF_OK)
                    fail_msg("%s/%s: %s", used, cat[i].name, err);
                assert_no_tag(cat[i].name, used, r.subject);
                assert_no_tag(cat[i].name, used, r.text);
                assert_no_tag(cat[i].name, used, r.html);
                assert_true(strlen(r.text) > 0);
                if (ch == NOTIFIER_EMAIL) {
                    assert_true(strlen(r.subject) > 0);
                    assert_null(strpbrk(r.subject, "\r\n"));
                    assert_non_null(strstr(r.text, "CF-2026-000123"));
                    assert_non_null(strstr(r.html, "CF-2026-000123"));
                    (void)snprintf(want_lang, sizeof(want_lang), "<html lang=\"%s\">", used);
                    assert_int_equal(strncmp(r.html, "<!DOCTYPE html>\n", 16), 0);
                    assert_non_null(strstr(r.html, want_lang));
                    assert_non_null(strstr(r.html, "</html>"));
                    assert_null(strstr(r.html, "<script"));
                    assert_null(strstr(r.html, "src="));
                } else {
                    struct notifier_sms_size size;
                    assert_int_equal(
                        notifier_sms_size(r.text, strlen(r.text), &size, err, sizeof(err)), CF_OK);
                    /* English SMS stay in GSM-7 (no typographic quote turns them into UCS-2)
                     * and, with values this long, in at most two parts. */
                    if (strcmp(used, "en") == 0)
                        assert_int_equal(size.encoding, NOTIFIER_SMS_GSM7);
                    assert_true(size.segments <= (strcmp(used, "en") == 0 ? 2u : 4u));
                    print_message(
                        "%s/%s.sms: %zu %s units, %zu segment(s)\n", used, cat[i].name, size.units,
                        size.encoding == NOTIFIER_SMS_GSM7 ? "GSM-7" : "UCS-2", size.segments);
                }
                notifier_rendered_clear(&r);
            }
        }
    }
    json_decref(vars);
    notifier_templates_free(t);
}

/* Renders name in English with the sample and overrides (a JSON object merged over it). */
static void render_sample(const struct notifier_templates *t, const char *name,
                          enum notifier_channel ch, const char *lang, const char *overrides,
                          struct notifier_rendered *r)
{
    char err[256] = "";
    json_t *vars = vars_of(sample_vars);
    json_t *over = vars_of(overrides);
    assert_int_equal(json_object_update(vars, over), 0);
    const struct notifier_template *tpl = notifier_templates_find(t, name, ch, lang, NULL);
    assert_non_null(tpl);
    if (notifier_render(tpl, vars, r, err, sizeof(err)) != CF_OK)
        fail_msg("%s: %s", name, err);
    json_decref(over);
    json_decref(vars);
}

static void test_shipped_content(void **state)
{
    (void)state;
    const struct notifier_template_spec *cat;
    size_t n;
    struct notifier_templates *t = load_shipped(&cat, &n);
    struct notifier_rendered r;

    /* The reminder says which lead it is. */
    render_sample(t, "teleconsult_reminder", NOTIFIER_EMAIL, "en", "{\"h24\": \"yes\"}", &r);
    assert_string_equal(r.subject, "Reminder: your teleconsultation tomorrow");
    assert_non_null(strstr(r.text, "is tomorrow."));
    assert_null(strstr(r.text, "one hour"));
    notifier_rendered_clear(&r);
    render_sample(t, "teleconsult_reminder", NOTIFIER_EMAIL, "en",
                  "{\"h24\": \"\", \"h1\": \"yes\"}", &r);
    assert_string_equal(r.subject, "Reminder: your teleconsultation in one hour");
    assert_non_null(strstr(r.text, "starts in one hour."));
    assert_null(strstr(r.text, "tomorrow"));
    notifier_rendered_clear(&r);
    render_sample(t, "teleconsult_reminder", NOTIFIER_SMS, "en", "{\"h24\": \"\", \"h1\": \"yes\"}",
                  &r);
    assert_string_equal(r.text, "Reminder: your teleconsultation starts in one hour. Join: "
                                "https://meet.example.org/j/8f3k2q");
    notifier_rendered_clear(&r);

    /* Booked: the facts, and the links as links in HTML. */
    render_sample(t, "teleconsult_booked", NOTIFIER_EMAIL, "en", "{}", &r);
    assert_non_null(strstr(r.text, "Specialist: Dr. Elena Ortiz\n"
                                   "Date and time: Tuesday, December 8, 2026 at 9:00 AM Central "
                                   "Standard Time\nTime zone: America/Chicago\nDuration: 30 "
                                   "minutes\n"));
    assert_non_null(strstr(r.html, "<a href=\"https://meet.example.org/j/8f3k2q\">"));
    assert_non_null(strstr(r.html, "<a href=\"https://care.example.org/r/8f3k2q\">"));
    assert_non_null(strstr(r.html, "<a href=\"https://care.example.org/c/8f3k2q\">"));
    notifier_rendered_clear(&r);
    render_sample(t, "teleconsult_booked", NOTIFIER_SMS, "en", "{}", &r);
    assert_string_equal(r.text,
                        "Teleconsultation with Dr. Elena Ortiz booked for Tuesday, December "
                        "8, 2026 at 9:00 AM Central Standard Time. Join: "
                        "https://meet.example.org/j/8f3k2q");
    notifier_rendered_clear(&r);

    /* Lists: one line (or <li>) per item. */
    render_sample(t, "case_info_requested", NOTIFIER_EMAIL, "es", "{}", &r);
    assert_non_null(strstr(r.text, ":\n\n- Medical reports (lab results, imaging)\n"
                                   "- Date of birth\n\n"));
    assert_non_null(strstr(r.html, "<li>Medical reports (lab results, imaging)</li>\n"
                                   "<li>Date of birth</li>\n</ul>"));
    assert_non_null(strstr(r.text, "hasta el Tuesday, December 22, 2026."));
    notifier_rendered_clear(&r);
    render_sample(t, "treatment_booked", NOTIFIER_EMAIL, "en", "{\"follow_ups\": []}", &r);
    assert_non_null(strstr(r.text, "Treatment sessions:\n- Session 1: Tuesday, March 2, 2027\n"
                                   "- Session 2: Wednesday, March 3, 2027\n\n"));
    assert_non_null(strstr(r.text, "- None scheduled at the moment.\n"));
    notifier_rendered_clear(&r);

    /* Optional paragraphs: the interpreter, the close reason. */
    render_sample(t, "case_assigned", NOTIFIER_EMAIL, "tr", "{}", &r);
    assert_non_null(strstr(r.text, "tercüman"));
    notifier_rendered_clear(&r);
    render_sample(t, "case_assigned", NOTIFIER_EMAIL, "tr", "{\"interpreter\": \"\"}", &r);
    assert_null(strstr(r.text, "tercüman"));
    assert_null(strstr(r.text, "\n\n\n"));
    notifier_rendered_clear(&r);
    render_sample(t, "case_closed", NOTIFIER_EMAIL, "ru", "{\"reason\": \"\"}", &r);
    assert_null(strstr(r.text, "Причина"));
    assert_null(strstr(r.text, "\n\n\n"));
    notifier_rendered_clear(&r);

    /* The manager's email carries the link and nothing about the patient. */
    render_sample(t, "case_assigned_manager", NOTIFIER_EMAIL, "en", "{}", &r);
    assert_non_null(strstr(r.subject, "CF-2026-000123"));
    assert_non_null(strstr(r.text, "Priority: Urgent\n"));
    assert_non_null(strstr(r.html,
                           "<a href=\"https://console.example.org/cases/4b3c1f0e-8d2a-4c55-9a61-"
                           "2f7e3b9d0c11\">"));
    assert_null(strstr(r.text, "Maria"));
    notifier_rendered_clear(&r);
    notifier_templates_free(t);
}

/* Hostile values in every variable of every shipped template. */
static void test_shipped_escaping(void **state)
{
    (void)state;
    const struct notifier_template_spec *cat;
    size_t n;
    struct notifier_templates *t = load_shipped(&cat, &n);
    static const char evil[] = "Ana\r\nBcc: x@evil <script>alert(1)</script>";
    json_t *vars = vars_of(sample_vars);
    const char *key;
    json_t *v;
    json_object_foreach(vars, key, v)
    {
        if (json_is_string(v))
            assert_int_equal(json_string_set(v, evil), 0);
    }
    json_t *items = json_pack("[{s:s, s:s, s:s, s:s}]", "label", evil, "number", evil, "date", evil,
                              "start_local", evil);
    assert_int_equal(json_object_set(vars, "missing", items), 0);
    assert_int_equal(json_object_set(vars, "reasons", items), 0);
    assert_int_equal(json_object_set(vars, "sessions", items), 0);
    assert_int_equal(json_object_set_new(vars, "follow_ups", items), 0);

    for (size_t i = 0; i < n; i++)
        for (size_t l = 0; l < sizeof(languages) / sizeof(languages[0]); l++)
            for (int ch = NOTIFIER_EMAIL; ch <= NOTIFIER_SMS; ch++) {
                char err[256];
                struct notifier_rendered r;
                const struct notifier_template *tpl = notifier_templates_find(
                    t, cat[i].name, (enum notifier_channel)ch, languages[l], NULL);
                if (tpl == NULL)
                    continue;
                assert_int_equal(notifier_render(tpl, vars, &r, err, sizeof(err)), CF_OK);
                assert_null(strchr(r.text, '\r'));
                if (ch == NOTIFIER_EMAIL) {
                    assert_null(strpbrk(r.subject, "\r\n"));
                    assert_null(strstr(r.html, "<script>"));
                    assert_null(strchr(r.html, '\r'));
                    assert_non_null(strstr(r.html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
                    assert_non_null(strstr(r.text, "<script>alert(1)</script>"));
                }
                notifier_rendered_clear(&r);
            }
    json_decref(vars);
    notifier_templates_free(t);
}

/* The symbols of an enum schema but UNKNOWN, as "<prefix><symbol>" keys. */
static size_t enum_keys(const char *schema, const char *prefix, char keys[][64], size_t max)
{
    char path[512];
    json_error_t jerr;
    size_t n = 0, i;
    json_t *sym;
    (void)snprintf(path, sizeof(path), "%s/%s", CF_SCHEMA_DIR, schema);
    json_t *root = json_load_file(path, 0, &jerr);
    if (root == NULL)
        fail_msg("%s: %s", path, jerr.text);
    json_array_foreach(json_object_get(root, "symbols"), i, sym)
    {
        if (strcmp(json_string_value(sym), "UNKNOWN") == 0)
            continue;
        assert_true(n < max);
        (void)snprintf(keys[n++], 64, "%s%s", prefix, json_string_value(sym));
    }
    json_decref(root);
    return n;
}

static void test_shipped_labels(void **state)
{
    (void)state;
    const struct notifier_template_spec *cat;
    size_t n;
    struct notifier_templates *t = load_shipped(&cat, &n);
    char keys[96][64];
    size_t nkeys = 0;
    /* The codes validation can put on CaseRejected and CaseInfoRequested
     * (services/validation/rules.c, validation.h), and the fallback. */
    static const char *const reasons[] = {
        "TEXT_TOO_LONG",         "CONSENT_MISSING",     "NO_CONTACT_CHANNEL",
        "EMAIL_INVALID",         "PHONE_INVALID",       "DOB_MISSING",
        "DOB_IMPLAUSIBLE",       "GUARDIAN_MISSING",    "GUARDIAN_CONSENT_MISSING",
        "NAME_INVALID",          "DESCRIPTION_MISSING", "DESCRIPTION_INVALID",
        "DESCRIPTION_TOO_SHORT", "REPORTS_MISSING",     "MELD_OUT_OF_RANGE",
        "REVIEW_REJECTED",       "REVIEW_REQUEST_INFO", "OTHER"};
    static const char *const priorities[] = {"URGENT", "HIGH", "ROUTINE"};

    nkeys += enum_keys("caseflow.common.InfoItem.avsc", "INFO.", keys + nkeys, 96 - nkeys);
    nkeys += enum_keys("caseflow.common.CloseReason.avsc", "CLOSE.", keys + nkeys, 96 - nkeys);
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        (void)snprintf(keys[nkeys++], 64, "REASON.%s", reasons[i]);
    for (size_t i = 0; i < sizeof(priorities) / sizeof(priorities[0]); i++)
        (void)snprintf(keys[nkeys++], 64, "PRIORITY.%s", priorities[i]);
    assert_true(nkeys > 30);

    for (size_t k = 0; k < nkeys; k++) {
        const char *en = notifier_templates_label(t, "en", keys[k]);
        if (en == NULL)
            fail_msg("en/labels lacks %s", keys[k]);
        for (size_t l = 1; l < sizeof(languages) / sizeof(languages[0]); l++) {
            /* Its own text, not the English fallback (the same pointer). */
            const char *own = notifier_templates_label(t, languages[l], keys[k]);
            if (own == en)
                fail_msg("%s/labels lacks %s", languages[l], keys[k]);
        }
    }
    assert_string_equal(notifier_templates_label(t, "en", "INFO.REPORTS"),
                        "Medical reports (lab results, imaging)");
    assert_string_equal(notifier_templates_label(t, "pt-BR", "PRIORITY.URGENT"), "Urgent");
    assert_string_equal(notifier_templates_label(t, "es-MX", "PRIORITY.URGENT"), "Urgente");
    notifier_templates_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_render_exact, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_file_format, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_escaping, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_render_limits, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_render_refused, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_load_errors, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_language_fallback, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_shipped_render),
        cmocka_unit_test(test_shipped_content),
        cmocka_unit_test(test_shipped_escaping),
        cmocka_unit_test(test_shipped_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
