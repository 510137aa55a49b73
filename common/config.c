/* config.c — table-driven configuration from the environment (see config.h).
 *
 * Loading walks envp once: a variable named in the table gives that entry its value, KAFKA_*
 * becomes a librdkafka property, any other CASEFLOW_* is a typo and fails the load. Then every
 * entry is checked in table order, so the first bad key in the table is the one reported.
 *
 * Error messages name the key and the rule. They quote INT and BOOL values only (short, plain
 * ASCII, and not under a secret-looking name); STRING values are never quoted, because a string
 * can be a password, a URL with credentials or anything else an operator pasted, and errbufs end
 * up in log lines (log.h: "Our errbufs name fields, never their values"). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define CASEFLOW_PREFIX "CASEFLOW_"
#define KAFKA_PREFIX "KAFKA_"

/* INT and BOOL values are quoted in errors only up to this length: enough to show a typo, too
 * short to carry a whole token or record. */
#define ECHO_MAX 32
/* Unknown variable names are quoted up to this many bytes. */
#define NAME_ECHO_MAX 128

struct cf_config_value {
    char *name;
    cf_config_type type;
    char *text; /* STRING entries only */
    long long number;
    bool flag;
};

struct cf_kafka_property {
    char *key;
    char *value;
};

struct cf_config {
    struct cf_config_value *values;
    size_t nvalues;
    struct cf_kafka_property *kafka;
    size_t nkafka;
};

static bool starts_with(const char *s, size_t len, const char *prefix)
{
    size_t plen = strlen(prefix);
    return len >= plen && memcmp(s, prefix, plen) == 0;
}

/* ASCII only on purpose: the result must not depend on the process locale. */
static bool ascii_ieq(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char ca = (unsigned char)*a, cb = (unsigned char)*b;
        if (ca >= 'A' && ca <= 'Z')
            ca = (unsigned char)(ca - 'A' + 'a');
        if (cb >= 'A' && cb <= 'Z')
            cb = (unsigned char)(cb - 'A' + 'a');
        if (ca != cb)
            return false;
        if (ca == '\0')
            return true;
    }
}

static bool name_is_secret(const char *name)
{
    return strstr(name, "PASSWORD") != NULL || strstr(name, "SECRET") != NULL ||
           strstr(name, "TOKEN") != NULL;
}

/* Writes how an error message refers to the value: the value itself ("12x" quoted when quoted
 * is true) if it is safe to show, else "the value"; "the default ..." if it came from the table. */
static void describe_value(char *dst, size_t dstlen, const struct cf_config_entry *e,
                           const char *text, bool from_default, bool quoted)
{
    bool show = !name_is_secret(e->name) && strlen(text) <= ECHO_MAX;
    for (const char *p = text; show && *p != '\0'; p++)
        if (*p < 0x21 || *p > 0x7e) /* printable ASCII without space: nothing to hide or garble */
            show = false;
    const char *origin = from_default ? "the default " : "";
    if (!show)
        (void)snprintf(dst, dstlen, "%svalue", from_default ? "the default " : "the ");
    else if (quoted)
        (void)snprintf(dst, dstlen, "%s\"%s\"", origin, text);
    else
        (void)snprintf(dst, dstlen, "%s%s", origin, text);
}

static cf_status check_table(const struct cf_config_entry *table, size_t n, char *errbuf,
                             size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const struct cf_config_entry *e = &table[i];
        if (e->name == NULL || e->name[0] == '\0')
            return cf_fail(errbuf, errlen, CF_ECONFIG,
                           "configuration table entry %zu has no name", i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(table[j].name, e->name) == 0)
                return cf_fail(errbuf, errlen, CF_ECONFIG,
                               "%s: listed twice in the configuration table", e->name);
        if (e->type != CF_CONFIG_STRING && e->type != CF_CONFIG_INT && e->type != CF_CONFIG_BOOL)
            return cf_fail(errbuf, errlen, CF_ECONFIG,
                           "%s: unknown type %d in the configuration table", e->name,
                           (int)e->type);
        if (e->type == CF_CONFIG_STRING && (e->min < 0 || e->max < 0))
            return cf_fail(errbuf, errlen, CF_ECONFIG,
                           "%s: a length bound in the configuration table is negative", e->name);
        if (e->type != CF_CONFIG_BOOL && e->min > e->max)
            return cf_fail(errbuf, errlen, CF_ECONFIG,
                           "%s: the table's minimum %lld is above its maximum %lld", e->name,
                           e->min, e->max);
    }
    return CF_OK;
}

/* Index of the entry called name[0..len), or n. */
static size_t find_entry(const struct cf_config_entry *table, size_t n, const char *name,
                         size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(table[i].name) == len && memcmp(table[i].name, name, len) == 0)
            return i;
    return n;
}

static cf_status parse_int(const struct cf_config_entry *e, const char *text, bool from_default,
                           long long *out, char *errbuf, size_t errlen)
{
    char what[ECHO_MAX + 32];
    char *end = NULL;

    if (text[0] == '\0')
        return cf_fail(errbuf, errlen, CF_ECONFIG,
                       "%s: %s is empty; allowed: a whole number from %lld to %lld", e->name,
                       from_default ? "the default" : "the value", e->min, e->max);
    /* strtoll would skip leading white space; an operator who wrote " 12" made a mistake
     * somewhere, so the first byte must be a sign or a digit. */
    bool starts_ok = text[0] == '+' || text[0] == '-' || (text[0] >= '0' && text[0] <= '9');
    errno = 0;
    long long v = starts_ok ? strtoll(text, &end, 10) : 0;
    if (!starts_ok || end == text || *end != '\0') {
        describe_value(what, sizeof(what), e, text, from_default, true);
        return cf_fail(errbuf, errlen, CF_ECONFIG,
                       "%s: %s is not a whole number; allowed: a whole number from %lld to %lld",
                       e->name, what, e->min, e->max);
    }
    if (errno == ERANGE) {
        describe_value(what, sizeof(what), e, text, from_default, true);
        return cf_fail(errbuf, errlen, CF_ECONFIG,
                       "%s: %s does not fit in 64 bits; allowed: a whole number from %lld to %lld",
                       e->name, what, e->min, e->max);
    }
    if (v < e->min || v > e->max) {
        /* Show the number as parsed ("+070" -> 70), not as typed. */
        char digits[32];
        (void)snprintf(digits, sizeof(digits), "%lld", v);
        describe_value(what, sizeof(what), e, digits, from_default, false);
        if (v < e->min)
            return cf_fail(errbuf, errlen, CF_ECONFIG, "%s: %s is below the minimum %lld",
                           e->name, what, e->min);
        return cf_fail(errbuf, errlen, CF_ECONFIG, "%s: %s is above the maximum %lld", e->name,
                       what, e->max);
    }
    *out = v;
    return CF_OK;
}

static cf_status parse_bool(const struct cf_config_entry *e, const char *text, bool from_default,
                            bool *out, char *errbuf, size_t errlen)
{
    static const struct {
        const char *word;
        bool value;
    } words[] = {{"true", true}, {"false", false}, {"1", true},  {"0", false},
                 {"yes", true},  {"no", false},    {"on", true}, {"off", false}};
    char what[ECHO_MAX + 32];

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (ascii_ieq(text, words[i].word)) {
            *out = words[i].value;
            return CF_OK;
        }
    }
    if (text[0] == '\0')
        (void)snprintf(what, sizeof(what), "%s", from_default ? "the default" : "the value");
    else
        describe_value(what, sizeof(what), e, text, from_default, true);
    return cf_fail(errbuf, errlen, CF_ECONFIG,
                   "%s: %s%s is not a boolean; allowed: true/false, 1/0, yes/no or on/off",
                   e->name, what, text[0] == '\0' ? " (empty)" : "");
}

static cf_status check_string(const struct cf_config_entry *e, const char *text,
                              bool from_default, char *errbuf, size_t errlen)
{
    size_t len = strlen(text);
    const char *what = from_default ? "the default" : "the value";

    /* check_table made both bounds non-negative, so the casts are exact. */
    if (len < (unsigned long long)e->min)
        return cf_fail(errbuf, errlen, CF_ECONFIG,
                       "%s: %s is %zu bytes long, below the minimum length of %lld bytes",
                       e->name, what, len, e->min);
    if (len > (unsigned long long)e->max)
        return cf_fail(errbuf, errlen, CF_ECONFIG,
                       "%s: %s is %zu bytes long, above the maximum length of %lld bytes",
                       e->name, what, len, e->max);
    return CF_OK;
}

/* Checks the value of one entry (text is NULL when the environment does not set it) and stores
 * it in v. */
static cf_status set_value(struct cf_config_value *v, const struct cf_config_entry *e,
                           const char *text, char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    bool from_default = text == NULL;

    if (from_default)
        text = e->default_value;
    if (text == NULL)
        return cf_fail(errbuf, errlen, CF_ECONFIG, "%s: required but not set (%s)", e->name,
                       e->help != NULL ? e->help : "no default");
    switch (e->type) {
    case CF_CONFIG_INT:
        st = parse_int(e, text, from_default, &v->number, errbuf, errlen);
        break;
    case CF_CONFIG_BOOL:
        st = parse_bool(e, text, from_default, &v->flag, errbuf, errlen);
        break;
    case CF_CONFIG_STRING:
        st = check_string(e, text, from_default, errbuf, errlen);
        if (st == CF_OK && (v->text = strdup(text)) == NULL)
            st = cf_fail(errbuf, errlen, CF_ENOMEM, "%s: out of memory", e->name);
        break;
    }
    if (st != CF_OK)
        return st;
    v->type = e->type;
    if ((v->name = strdup(e->name)) == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "%s: out of memory", e->name);
    return CF_OK;
}

/* Adds the property for KAFKA_<SUFFIX>=value: KAFKA_BOOTSTRAP_SERVERS -> bootstrap.servers. */
static cf_status add_kafka(struct cf_config *config, const char *var, size_t len,
                           const char *value, char *errbuf, size_t errlen)
{
    size_t plen = strlen(KAFKA_PREFIX);
    int shown = len > NAME_ECHO_MAX ? NAME_ECHO_MAX : (int)len;

    if (len == plen)
        return cf_fail(errbuf, errlen, CF_ECONFIG,
                       "KAFKA_: no librdkafka property name after KAFKA_ "
                       "(KAFKA_BOOTSTRAP_SERVERS sets bootstrap.servers)");
    char *key = malloc(len - plen + 1);
    if (key == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "%.*s: out of memory", shown, var);
    for (size_t i = plen; i < len; i++) {
        char c = var[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        else if (c == '_')
            c = '.';
        key[i - plen] = c;
    }
    key[len - plen] = '\0';
    /* KAFKA_CLIENT_ID and KAFKA_client_id name the same property; which one librdkafka keeps
     * would depend on the order of the environment, so neither is taken. */
    for (size_t i = 0; i < config->nkafka; i++) {
        if (strcmp(config->kafka[i].key, key) == 0) {
            cf_status st = cf_fail(errbuf, errlen, CF_ECONFIG,
                                   "%.*s: sets %s, which another KAFKA_ variable already sets",
                                   shown, var, key);
            free(key);
            return st;
        }
    }
    struct cf_kafka_property *p = &config->kafka[config->nkafka];
    p->key = key;
    config->nkafka++; /* the property owns key from here, even if the copy below fails */
    if ((p->value = strdup(value)) == NULL)
        return cf_fail(errbuf, errlen, CF_ENOMEM, "%.*s: out of memory", shown, var);
    return CF_OK;
}

cf_status cf_config_load(const struct cf_config_entry *table, size_t n, char *const *envp,
                         struct cf_config **out, char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    struct cf_config *config = NULL;
    const char **given = NULL; /* given[i]: the value envp sets for table[i], or NULL */
    size_t kafka_vars = 0;

    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    if (out == NULL || (table == NULL && n > 0))
        return cf_fail(errbuf, errlen, CF_EINVAL, "cf_config_load: NULL table or out");
    *out = NULL;

    st = check_table(table, n, errbuf, errlen);
    if (st != CF_OK)
        goto out;

    for (size_t k = 0; envp != NULL && envp[k] != NULL; k++)
        if (strncmp(envp[k], KAFKA_PREFIX, strlen(KAFKA_PREFIX)) == 0)
            kafka_vars++;
    config = calloc(1, sizeof(*config));
    /* calloc(0, ...) may return NULL, so ask for at least one element. */
    given = calloc(n > 0 ? n : 1, sizeof(*given));
    if (config == NULL || given == NULL)
        goto nomem;
    config->values = calloc(n > 0 ? n : 1, sizeof(*config->values));
    config->kafka = calloc(kafka_vars > 0 ? kafka_vars : 1, sizeof(*config->kafka));
    if (config->values == NULL || config->kafka == NULL)
        goto nomem;
    config->nvalues = n; /* all zeroed, so cf_config_free can free every slot */

    for (size_t k = 0; envp != NULL && envp[k] != NULL; k++) {
        const char *var = envp[k];
        const char *eq = strchr(var, '=');
        if (eq == NULL)
            continue; /* not NAME=value: nothing any program could have meant for us */
        size_t len = (size_t)(eq - var);
        int shown = len > NAME_ECHO_MAX ? NAME_ECHO_MAX : (int)len;
        size_t i = find_entry(table, n, var, len);
        if (i < n) {
            /* getenv() would silently take the first; a duplicate means two sources disagree. */
            if (given[i] != NULL) {
                st = cf_fail(errbuf, errlen, CF_ECONFIG, "%s: set twice in the environment",
                             table[i].name);
                goto out;
            }
            given[i] = eq + 1;
        } else if (starts_with(var, len, KAFKA_PREFIX)) {
            st = add_kafka(config, var, len, eq + 1, errbuf, errlen);
            if (st != CF_OK)
                goto out;
        } else if (starts_with(var, len, CASEFLOW_PREFIX)) {
            /* Not an error: one environment (a shell, an env file) serves every caseflow
             * program and deploy/stack, and each reads only its own keys. A warning still
             * shows a misspelt key. */
            char name[NAME_ECHO_MAX + 1];
            (void)snprintf(name, sizeof(name), "%.*s", shown, var);
            CF_LOG(CF_LOG_WARN, "config_variable_ignored", CF_LOG_ID("name", name));
        }
    }

    for (size_t i = 0; i < n; i++) {
        st = set_value(&config->values[i], &table[i], given[i], errbuf, errlen);
        if (st != CF_OK)
            goto out;
    }
    *out = config;
    config = NULL;
    goto out;

nomem:
    st = cf_fail(errbuf, errlen, CF_ENOMEM, "configuration: out of memory");
out:
    free(given);
    cf_config_free(config);
    return st;
}

void cf_config_free(struct cf_config *config)
{
    if (config == NULL)
        return;
    for (size_t i = 0; config->values != NULL && i < config->nvalues; i++) {
        free(config->values[i].name);
        free(config->values[i].text);
    }
    for (size_t i = 0; config->kafka != NULL && i < config->nkafka; i++) {
        free(config->kafka[i].key);
        free(config->kafka[i].value);
    }
    free(config->values);
    free(config->kafka);
    free(config);
}

/* The value called name of that type; a missing name or another type is a bug in the program
 * (the table and the getter disagree), so it stops here rather than run misconfigured. */
static const struct cf_config_value *find_value(const struct cf_config *config, const char *name,
                                                cf_config_type type, const char *getter)
{
    if (config == NULL || name == NULL) {
        (void)fprintf(stderr, "caseflow: %s called with a NULL config or name\n", getter);
        abort();
    }
    for (size_t i = 0; i < config->nvalues; i++) {
        const struct cf_config_value *v = &config->values[i];
        if (v->name == NULL || strcmp(v->name, name) != 0)
            continue;
        if (v->type != type) {
            (void)fprintf(stderr, "caseflow: %s(\"%s\"): the configuration table gives %s "
                                  "another type\n",
                          getter, name, name);
            abort();
        }
        return v;
    }
    (void)fprintf(stderr, "caseflow: %s(\"%s\"): not in the program's configuration table\n",
                  getter, name);
    abort();
}

const char *cf_config_string(const struct cf_config *config, const char *name)
{
    return find_value(config, name, CF_CONFIG_STRING, "cf_config_string")->text;
}

long long cf_config_int(const struct cf_config *config, const char *name)
{
    return find_value(config, name, CF_CONFIG_INT, "cf_config_int")->number;
}

bool cf_config_bool(const struct cf_config *config, const char *name)
{
    return find_value(config, name, CF_CONFIG_BOOL, "cf_config_bool")->flag;
}

bool cf_config_kafka_property(const struct cf_config *config, size_t index, const char **key,
                              const char **value)
{
    if (config == NULL || index >= config->nkafka)
        return false;
    if (key != NULL)
        *key = config->kafka[index].key;
    if (value != NULL)
        *value = config->kafka[index].value;
    return true;
}

void cf_config_write_example(const struct cf_config_entry *table, size_t n, void *stream)
{
    FILE *f = stream;

    if (f == NULL || table == NULL)
        return;
    /* Output errors are the caller's to find with ferror(); there is nothing to undo here. */
    for (size_t i = 0; i < n; i++) {
        const struct cf_config_entry *e = &table[i];
        const char *help = e->help != NULL ? e->help : "";
        if (i > 0)
            (void)fputc('\n', f);
        switch (e->type) {
        case CF_CONFIG_STRING:
            (void)fprintf(f, "# %s (string, %lld to %lld bytes)\n", help, e->min, e->max);
            break;
        case CF_CONFIG_INT:
            (void)fprintf(f, "# %s (integer, %lld to %lld)\n", help, e->min, e->max);
            break;
        case CF_CONFIG_BOOL:
            (void)fprintf(f, "# %s (boolean: true or false)\n", help);
            break;
        }
        /* A required entry stays commented out: an uncommented "NAME=" would set it to the
         * empty string and could pass the check that it is set. */
        if (e->default_value == NULL)
            (void)fprintf(f, "# required\n# %s=\n", e->name);
        else
            (void)fprintf(f, "%s=%s\n", e->name, e->default_value);
    }
}
