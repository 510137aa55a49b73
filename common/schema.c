/* schema.c — loading, assembling and indexing Avro schemas (see schema.h). */
#include "schema.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 256
/* Deep enough for any schema of ours; stops runaway recursion on hostile registry texts. */
#define MAX_DEPTH 64

struct cf_schema {
    char *text;
    char name[MAX_NAME];
    json_t *root;  /* the assembled tree, references rewritten to full names */
    json_t *names; /* full name -> definition node inside root (borrowed) */
    avro_schema_t avro;
    avro_value_iface_t *iface;
};

struct assembly {
    const char *dir; /* NULL: a self-contained text, no files to load */
    json_t *names;
    char *errbuf;
    size_t errlen;
};

static const char *const primitives[] = {"null",  "boolean", "int",   "long",
                                         "float", "double",  "bytes", "string"};
static const avro_type_t primitive_kinds[] = {AVRO_NULL,  AVRO_BOOLEAN, AVRO_INT32,
                                              AVRO_INT64, AVRO_FLOAT,   AVRO_DOUBLE,
                                              AVRO_BYTES, AVRO_STRING};

static int primitive_kind(const char *s)
{
    for (size_t i = 0; i < sizeof(primitives) / sizeof(primitives[0]); i++)
        if (strcmp(s, primitives[i]) == 0)
            return (int)primitive_kinds[i];
    return -1;
}

/* Full name of name as written inside namespace ns. */
static cf_status full_name(const char *name, const char *ns, char *out, struct assembly *a)
{
    int n;
    if (strchr(name, '.') != NULL || ns[0] == '\0')
        n = snprintf(out, MAX_NAME, "%s", name);
    else
        n = snprintf(out, MAX_NAME, "%s.%s", ns, name);
    if (n < 0 || n >= MAX_NAME)
        return cf_fail(a->errbuf, a->errlen, CF_ESCHEMA, "type name longer than %d bytes",
                       MAX_NAME - 1);
    return CF_OK;
}

static cf_status read_file(const char *path, char **out, size_t *len, struct assembly *a)
{
    cf_status st = CF_OK;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return cf_fail(a->errbuf, a->errlen, CF_ESCHEMA, "%s: %s", path, strerror(errno));
    buf = malloc(CF_SCHEMA_MAX_TEXT + 1);
    if (buf == NULL) {
        st = CF_ENOMEM;
        goto out;
    }
    *len = fread(buf, 1, CF_SCHEMA_MAX_TEXT + 1, f);
    if (ferror(f) || *len > CF_SCHEMA_MAX_TEXT) {
        st = cf_fail(a->errbuf, a->errlen, CF_ESCHEMA, "%s: unreadable or over %d bytes", path,
                     CF_SCHEMA_MAX_TEXT);
        goto out;
    }
    buf[*len] = '\0';
    *out = buf;
    buf = NULL;
out:
    free(buf);
    (void)fclose(f);
    return st;
}

static json_t *assemble_type(struct assembly *a, json_t *node, const char *ns, int depth,
                             cf_status *st);

/* Replaces obj[key] by its assembled form. */
static cf_status assemble_member(struct assembly *a, json_t *obj, const char *key,
                                 const char *ns, int depth)
{
    cf_status st = CF_OK;
    json_t *child = json_object_get(obj, key);
    if (child == NULL)
        return cf_fail(a->errbuf, a->errlen, CF_ESCHEMA, "a type has no \"%s\"", key);
    json_t *done = assemble_type(a, child, ns, depth + 1, &st);
    if (done == NULL)
        return st;
    if (json_object_set_new(obj, key, done) != 0)
        return CF_ENOMEM;
    return CF_OK;
}

/* Registers a named definition; *inner_ns receives the namespace its children live in. */
static cf_status define_name(struct assembly *a, json_t *node, const char *ns, char *full,
                             char *inner_ns)
{
    const char *name = json_string_value(json_object_get(node, "name"));
    const char *space = json_string_value(json_object_get(node, "namespace"));
    if (name == NULL || name[0] == '\0')
        return cf_fail(a->errbuf, a->errlen, CF_ESCHEMA, "a named type has no name");
    cf_status st = full_name(name, space != NULL ? space : ns, full, a);
    if (st != CF_OK)
        return st;
    if (json_object_get(a->names, full) != NULL)
        return cf_fail(a->errbuf, a->errlen, CF_ESCHEMA, "type %s is defined twice", full);
    if (json_object_set(a->names, full, node) != 0)
        return CF_ENOMEM;
    const char *dot = strrchr(full, '.');
    size_t nslen = dot == NULL ? 0 : (size_t)(dot - full);
    memcpy(inner_ns, full, nslen);
    inner_ns[nslen] = '\0';
    return CF_OK;
}

/* A reference to a named type: already defined, or (with a directory) the file of that name. */
static json_t *assemble_reference(struct assembly *a, const char *ref, const char *ns, int depth,
                                  cf_status *st)
{
    char full[MAX_NAME], path[4096];
    char *text = NULL;
    size_t len = 0;
    json_t *loaded = NULL, *done = NULL;
    json_error_t jerr;

    if ((*st = full_name(ref, ns, full, a)) != CF_OK)
        return NULL;
    if (json_object_get(a->names, full) != NULL)
        return json_string(full);
    if (a->dir == NULL) {
        *st = cf_fail(a->errbuf, a->errlen, CF_ESCHEMA, "unknown type %s", full);
        return NULL;
    }
    int n = snprintf(path, sizeof(path), "%s/%s.avsc", a->dir, full);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        *st = cf_fail(a->errbuf, a->errlen, CF_ESCHEMA, "schema directory path too long");
        return NULL;
    }
    if ((*st = read_file(path, &text, &len, a)) != CF_OK)
        goto out;
    loaded = json_loadb(text, len, 0, &jerr);
    if (loaded == NULL) {
        *st = cf_fail(a->errbuf, a->errlen, CF_ESCHEMA, "%s:%d: %s", path, jerr.line, jerr.text);
        goto out;
    }
    done = assemble_type(a, loaded, "", depth + 1, st);
    if (done != NULL && json_object_get(a->names, full) == NULL) {
        *st = cf_fail(a->errbuf, a->errlen, CF_ESCHEMA, "%s does not define %s", path, full);
        json_decref(done);
        done = NULL;
    }
out:
    json_decref(loaded);
    free(text);
    return done;
}

/* Returns a new reference to the assembled form of node (NULL and *st on failure). Named
 * definitions are registered in a->names and edited in place. */
static json_t *assemble_type(struct assembly *a, json_t *node, const char *ns, int depth,
                             cf_status *st)
{
    char full[MAX_NAME], inner_ns[MAX_NAME];

    *st = CF_OK;
    if (depth > MAX_DEPTH) {
        *st = cf_fail(a->errbuf, a->errlen, CF_ESCHEMA, "schema nested deeper than %d", MAX_DEPTH);
        return NULL;
    }
    if (json_is_string(node)) {
        if (primitive_kind(json_string_value(node)) >= 0)
            return json_incref(node);
        return assemble_reference(a, json_string_value(node), ns, depth, st);
    }
    if (json_is_array(node)) {
        json_t *branches = json_array();
        size_t i;
        json_t *branch;
        if (branches == NULL) {
            *st = CF_ENOMEM;
            return NULL;
        }
        json_array_foreach(node, i, branch) {
            json_t *done = assemble_type(a, branch, ns, depth + 1, st);
            if (done == NULL || json_array_append_new(branches, done) != 0) {
                if (*st == CF_OK)
                    *st = CF_ENOMEM;
                json_decref(branches);
                return NULL;
            }
        }
        return branches;
    }
    const char *type = json_string_value(json_object_get(node, "type"));
    if (!json_is_object(node) || json_object_get(node, "type") == NULL) {
        *st = cf_fail(a->errbuf, a->errlen, CF_ESCHEMA, "a type is neither a name, a union nor "
                                                        "an object with \"type\"");
        return NULL;
    }
    if (type == NULL) { /* {"type": {...}} or {"type": [...]}: a wrapped type */
        *st = assemble_member(a, node, "type", ns, depth);
    } else if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0) {
        json_t *fields = json_object_get(node, "fields");
        size_t i;
        json_t *field;
        if ((*st = define_name(a, node, ns, full, inner_ns)) != CF_OK)
            return NULL;
        if (!json_is_array(fields)) {
            *st = cf_fail(a->errbuf, a->errlen, CF_ESCHEMA, "record %s has no fields array",
                          full);
            return NULL;
        }
        json_array_foreach(fields, i, field) {
            if (!json_is_object(field) || !json_is_string(json_object_get(field, "name"))) {
                *st = cf_fail(a->errbuf, a->errlen, CF_ESCHEMA,
                              "record %s: field %zu has no name", full, i);
                return NULL;
            }
            if ((*st = assemble_member(a, field, "type", inner_ns, depth)) != CF_OK)
                return NULL;
        }
    } else if (strcmp(type, "enum") == 0 || strcmp(type, "fixed") == 0) {
        *st = define_name(a, node, ns, full, inner_ns);
    } else if (strcmp(type, "array") == 0) {
        *st = assemble_member(a, node, "items", ns, depth);
    } else if (strcmp(type, "map") == 0) {
        *st = assemble_member(a, node, "values", ns, depth);
    } else if (primitive_kind(type) < 0) { /* {"type": "some.Name"} */
        *st = assemble_member(a, node, "type", ns, depth);
    }
    return *st == CF_OK ? json_incref(node) : NULL;
}

/* Assembles tree (taking ownership) into a new cf_schema; text NULL means "dump the tree". */
static cf_status schema_build(json_t *tree, const char *dir, const char *text, size_t len,
                              struct cf_schema **out, char *errbuf, size_t errlen)
{
    cf_status st = CF_OK;
    struct cf_schema *s = calloc(1, sizeof(*s));
    struct assembly a = {dir, NULL, errbuf, errlen};

    *out = NULL;
    if (s == NULL || (s->names = json_object()) == NULL) {
        st = CF_ENOMEM;
        goto out;
    }
    a.names = s->names;
    s->root = assemble_type(&a, tree, "", 0, &st);
    if (s->root == NULL)
        goto out;
    if (text != NULL)
        s->text = strndup(text, len);
    else
        s->text = json_dumps(s->root, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s->text == NULL) {
        st = CF_ENOMEM;
        goto out;
    }
    avro_set_error("%s", "");
    if (avro_schema_from_json_length(s->text, strlen(s->text), &s->avro) != 0) {
        st = cf_fail(errbuf, errlen, CF_ESCHEMA, "avro: %s", avro_strerror());
        goto out;
    }
    s->iface = avro_generic_class_from_schema(s->avro);
    if (s->iface == NULL) {
        st = cf_fail(errbuf, errlen, CF_ESCHEMA, "avro: %s", avro_strerror());
        goto out;
    }
    if (json_is_string(s->root))
        (void)snprintf(s->name, sizeof(s->name), "%s", json_string_value(s->root));
    else if (avro_schema_name(s->avro) != NULL) {
        const char *space = avro_schema_namespace(s->avro);
        if (space != NULL && space[0] != '\0')
            (void)snprintf(s->name, sizeof(s->name), "%s.%s", space,
                           avro_schema_name(s->avro));
        else
            (void)snprintf(s->name, sizeof(s->name), "%s", avro_schema_name(s->avro));
    } else
        (void)snprintf(s->name, sizeof(s->name), "%s", avro_schema_type_name(s->avro));
    *out = s;
    s = NULL;
out:
    json_decref(tree);
    cf_schema_free(s);
    return st;
}

cf_status cf_schema_load(const char *dir, const char *full, struct cf_schema **out,
                         char *errbuf, size_t errlen)
{
    json_t *ref = json_string(full);
    if (ref == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "schema name is not UTF-8");
    if (dir == NULL || dir[0] == '\0')
        dir = CF_SCHEMA_DIR;
    return schema_build(ref, dir, NULL, 0, out, errbuf, errlen);
}

cf_status cf_schema_parse(const char *text, size_t len, struct cf_schema **out, char *errbuf,
                          size_t errlen)
{
    json_error_t jerr;
    *out = NULL;
    if (len > CF_SCHEMA_MAX_TEXT)
        return cf_fail(errbuf, errlen, CF_ETOOBIG, "schema text of %zu bytes is over %d", len,
                       CF_SCHEMA_MAX_TEXT);
    json_t *tree = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
    if (tree == NULL)
        return cf_fail(errbuf, errlen, CF_ESCHEMA, "schema is not JSON: %d:%d: %s", jerr.line,
                       jerr.column, jerr.text);
    return schema_build(tree, NULL, text, len, out, errbuf, errlen);
}

void cf_schema_free(struct cf_schema *s)
{
    if (s == NULL)
        return;
    if (s->iface != NULL)
        avro_value_iface_decref(s->iface);
    if (s->avro != NULL)
        avro_schema_decref(s->avro);
    json_decref(s->names);
    json_decref(s->root);
    free(s->text);
    free(s);
}

const char *cf_schema_text(const struct cf_schema *s) { return s->text; }
const char *cf_schema_name(const struct cf_schema *s) { return s->name; }
avro_schema_t cf_schema_avro(const struct cf_schema *s) { return s->avro; }
avro_value_iface_t *cf_schema_iface(const struct cf_schema *s) { return s->iface; }
const json_t *cf_schema_root(const struct cf_schema *s) { return s->root; }

const json_t *cf_schema_resolve(const struct cf_schema *s, const json_t *type)
{
    for (int depth = 0; depth < MAX_DEPTH && type != NULL; depth++) {
        if (json_is_string(type) && primitive_kind(json_string_value(type)) < 0) {
            type = json_object_get(s->names, json_string_value(type));
            continue;
        }
        /* {"type": "some.Name"} and {"type": {...}} wrap another type. */
        const json_t *inner = json_is_object(type) ? json_object_get(type, "type") : NULL;
        if (inner != NULL && !json_is_string(inner))
            type = inner;
        else if (inner != NULL && primitive_kind(json_string_value(inner)) < 0 &&
                 cf_schema_kind(type, NULL) < 0)
            type = inner;
        else
            return type;
    }
    return type;
}

int cf_schema_kind(const json_t *type, const char **logical_type)
{
    if (logical_type != NULL)
        *logical_type = NULL;
    if (json_is_string(type))
        return primitive_kind(json_string_value(type));
    if (json_is_array(type))
        return AVRO_UNION;
    if (!json_is_object(type))
        return -1;
    if (logical_type != NULL)
        *logical_type = json_string_value(json_object_get(type, "logicalType"));
    const char *t = json_string_value(json_object_get(type, "type"));
    if (t == NULL)
        return cf_schema_kind(json_object_get(type, "type"), NULL);
    if (strcmp(t, "record") == 0 || strcmp(t, "error") == 0)
        return AVRO_RECORD;
    if (strcmp(t, "enum") == 0)
        return AVRO_ENUM;
    if (strcmp(t, "fixed") == 0)
        return AVRO_FIXED;
    if (strcmp(t, "array") == 0)
        return AVRO_ARRAY;
    if (strcmp(t, "map") == 0)
        return AVRO_MAP;
    return primitive_kind(t);
}
