/* avro_convert.c — Avro values to and from JSON, and across schemas (see avro_convert.h). */
#include "avro_convert.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_LEN 256
#define MAX_DEPTH 64

struct walk {
    const struct cf_schema *schema;
    char path[PATH_MAX_LEN];
    size_t pathlen;
    int depth;
    char *errbuf;
    size_t errlen;
};

/* Appends ".name" or "[i]" to the path for the duration of a child's walk. */
static size_t path_push(struct walk *w, const char *name, size_t index)
{
    size_t saved = w->pathlen;
    size_t room = sizeof(w->path) - w->pathlen;
    int n = name != NULL ? snprintf(w->path + w->pathlen, room, ".%s", name)
                         : snprintf(w->path + w->pathlen, room, "[%zu]", index);
    if (n > 0)
        w->pathlen += (size_t)n < room ? (size_t)n : room - 1;
    return saved;
}

static void path_pop(struct walk *w, size_t saved)
{
    w->pathlen = saved;
    w->path[saved] = '\0';
}

static cf_status fail(struct walk *w, cf_status st, const char *what)
{
    return cf_fail(w->errbuf, w->errlen, st, "%s: %s", w->path, what);
}

static cf_status avro_fail(struct walk *w)
{
    return cf_fail(w->errbuf, w->errlen, CF_EINVAL, "%s: avro: %s", w->path, avro_strerror());
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* Reads exactly n digits. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* Parses YYYY-MM-DD at *p into days since the epoch. */
static bool parse_date(const char **p, int64_t *days)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m, d;
    if (!digits(p, 4, &y) || *(*p)++ != '-' || !digits(p, 2, &m) || *(*p)++ != '-' ||
        !digits(p, 2, &d))
        return false;
    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && is_leap(y)))
        return false;
    *days = days_from_civil(y, (unsigned)m, (unsigned)d);
    return true;
}

cf_status cf_avro_parse_millis(const char *text, int64_t *millis)
{
    const char *p = text;
    int64_t days;
    int hh, mm, ss, ms = 0, oh = 0, om = 0, sign = 0;
    if (!parse_date(&p, &days) || (*p != 'T' && *p != 't') || (++p, !digits(&p, 2, &hh)) ||
        *p++ != ':' || !digits(&p, 2, &mm) || *p++ != ':' || !digits(&p, 2, &ss))
        return CF_EINVAL;
    if (*p == '.') {
        int scale = 100, n = 0;
        p++;
        while (*p >= '0' && *p <= '9' && n < 9) {
            ms += (*p - '0') * scale;
            scale /= 10;
            p++;
            n++;
        }
        if (n == 0)
            return CF_EINVAL;
    }
    if (*p == 'Z' || *p == 'z')
        p++;
    else if (*p == '+' || *p == '-') {
        sign = *p++ == '+' ? 1 : -1;
        if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om) || oh > 23 || om > 59)
            return CF_EINVAL;
    } else
        return CF_EINVAL;
    if (*p != '\0' || hh > 23 || mm > 59 || ss > 60)
        return CF_EINVAL;
    int64_t secs = days * 86400 + hh * 3600 + mm * 60 + ss - sign * (oh * 3600 + om * 60);
    *millis = secs * 1000 + ms;
    return CF_OK;
}

void cf_avro_format_millis(int64_t millis, char *buf, size_t len)
{
    int64_t secs = millis >= 0 ? millis / 1000 : -((-millis + 999) / 1000);
    int64_t ms = millis - secs * 1000;
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rem = secs - days * 86400, y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    (void)snprintf(buf, len, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
                   (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), (int)ms);
}

/* Avro's JSON encoding of bytes: each byte is the code point of the same value. */
static json_t *bytes_to_json(const unsigned char *p, size_t n)
{
    char *buf = malloc(n * 2 + 1);
    size_t o = 0;
    if (buf == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x80)
            buf[o++] = (char)p[i];
        else {
            buf[o++] = (char)(0xC0 | (p[i] >> 6));
            buf[o++] = (char)(0x80 | (p[i] & 0x3F));
        }
    }
    json_t *j = json_stringn(buf, o);
    free(buf);
    return j;
}

/* The reverse; false when a code point is above 0xFF. out has room for strlen(s) bytes. */
static bool bytes_from_json(const char *s, size_t n, unsigned char *out, size_t *outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80)
            out[o++] = c;
        else if ((c == 0xC2 || c == 0xC3) && i + 1 < n)
            out[o++] = (unsigned char)(((c & 0x03) << 6) | ((unsigned char)s[++i] & 0x3F));
        else
            return false;
    }
    *outlen = o;
    return true;
}

static int enum_index(const json_t *type, const char *symbol)
{
    size_t i;
    const json_t *sym;
    json_array_foreach(json_object_get(type, "symbols"), i, sym) {
        if (json_is_string(sym) && strcmp(json_string_value(sym), symbol) == 0)
            return (int)i;
    }
    return -1;
}

/* How well a JSON value fits a union branch: 0 not at all, 1 with a conversion, 2 exactly. */
static int branch_fit(int kind, const char *logical, const json_t *type, const json_t *json)
{
    switch (kind) {
    case AVRO_NULL: return json_is_null(json) ? 2 : 0;
    case AVRO_BOOLEAN: return json_is_boolean(json) ? 2 : 0;
    case AVRO_INT32:
        if (json_is_string(json) && logical != NULL && strcmp(logical, "date") == 0)
            return 2;
        return json_is_integer(json) && json_integer_value(json) >= INT32_MIN &&
                       json_integer_value(json) <= INT32_MAX
                   ? 2
                   : 0;
    case AVRO_INT64:
        if (json_is_string(json) && logical != NULL && strncmp(logical, "timestamp", 9) == 0)
            return 2;
        return json_is_integer(json) ? 2 : 0;
    case AVRO_FLOAT:
    case AVRO_DOUBLE: return json_is_real(json) ? 2 : json_is_integer(json) ? 1 : 0;
    case AVRO_STRING: return json_is_string(json) ? 2 : 0;
    case AVRO_BYTES:
    case AVRO_FIXED: return json_is_string(json) ? 1 : 0;
    case AVRO_ENUM:
        return json_is_string(json) && enum_index(type, json_string_value(json)) >= 0 ? 2 : 0;
    case AVRO_RECORD: return json_is_object(json) ? 2 : 0;
    case AVRO_MAP: return json_is_object(json) ? 1 : 0;
    case AVRO_ARRAY: return json_is_array(json) ? 2 : 0;
    default: return 0;
    }
}

static cf_status from_json(struct walk *w, const json_t *type, const json_t *json,
                           avro_value_t *value);

static cf_status record_from_json(struct walk *w, const json_t *type, const json_t *json,
                                  avro_value_t *value)
{
    const json_t *fields = json_object_get(type, "fields"), *field;
    const char *key;
    const json_t *member;
    size_t i;
    cf_status st;

    if (!json_is_object(json))
        return fail(w, CF_EINVAL, "expected an object");
    json_object_foreach((json_t *)json, key, member) {
        bool known = false;
        json_array_foreach(fields, i, field) {
            if (strcmp(json_string_value(json_object_get(field, "name")), key) == 0) {
                known = true;
                break;
            }
        }
        if (!known) {
            size_t saved = path_push(w, key, 0);
            st = fail(w, CF_EINVAL, "unknown field");
            path_pop(w, saved);
            return st;
        }
    }
    json_array_foreach(fields, i, field) {
        const char *name = json_string_value(json_object_get(field, "name"));
        const json_t *given = json_object_get(json, name);
        avro_value_t child;
        size_t saved = path_push(w, name, 0);
        if (given == NULL)
            given = json_object_get(field, "default");
        if (given == NULL)
            st = fail(w, CF_EINVAL, "required field is missing");
        else if (avro_value_get_by_index(value, i, &child, NULL) != 0)
            st = avro_fail(w);
        else
            st = from_json(w, json_object_get(field, "type"), given, &child);
        if (st != CF_OK)
            return st;
        path_pop(w, saved);
    }
    return CF_OK;
}

static cf_status union_from_json(struct walk *w, const json_t *type, const json_t *json,
                                 avro_value_t *value)
{
    int best = -1, best_fit = 0;
    size_t i;
    const json_t *branch;
    avro_value_t child;

    json_array_foreach(type, i, branch) {
        const char *logical;
        const json_t *resolved = cf_schema_resolve(w->schema, branch);
        int kind = cf_schema_kind(resolved, &logical);
        int fit = branch_fit(kind, logical, resolved, json);
        if (fit > best_fit) {
            best = (int)i;
            best_fit = fit;
        }
    }
    if (best < 0)
        return fail(w, CF_EINVAL, "value fits no branch of the union");
    if (avro_value_set_branch(value, best, &child) != 0)
        return avro_fail(w);
    return from_json(w, json_array_get(type, (size_t)best), json, &child);
}

static cf_status bytes_value_from_json(struct walk *w, const json_t *type, int kind,
                                       const json_t *json, avro_value_t *value)
{
    cf_status st = CF_OK;
    size_t n = json_string_length(json), len = 0;
    unsigned char *buf = malloc(n + 1);
    if (buf == NULL)
        return CF_ENOMEM;
    if (!bytes_from_json(json_string_value(json), n, buf, &len))
        st = fail(w, CF_EINVAL, "bytes must be code points 0-255");
    else if (kind == AVRO_FIXED &&
             (json_integer_value(json_object_get(type, "size")) != (json_int_t)len))
        st = fail(w, CF_EINVAL, "wrong size for fixed");
    else if ((kind == AVRO_FIXED ? avro_value_set_fixed(value, buf, len)
                                 : avro_value_set_bytes(value, buf, len)) != 0)
        st = avro_fail(w);
    free(buf);
    return st;
}

/* Array items or map entries, in the order the JSON gives them. */
static cf_status items_from_json(struct walk *w, const json_t *type, int kind, const json_t *json,
                                 avro_value_t *value)
{
    bool is_map = kind == AVRO_MAP;
    if (is_map ? !json_is_object(json) : !json_is_array(json))
        return fail(w, CF_EINVAL, is_map ? "expected an object" : "expected an array");
    const json_t *item_type = json_object_get(type, is_map ? "values" : "items");
    void *iter = is_map ? json_object_iter((json_t *)json) : NULL;
    size_t n = is_map ? json_object_size(json) : json_array_size(json);
    for (size_t i = 0; i < n; i++) {
        const char *key = is_map ? json_object_iter_key(iter) : NULL;
        const json_t *item = is_map ? json_object_iter_value(iter) : json_array_get(json, i);
        avro_value_t child;
        size_t saved = path_push(w, key, i);
        int rc = is_map ? avro_value_add(value, key, &child, NULL, NULL)
                        : avro_value_append(value, &child, NULL);
        cf_status st = rc != 0 ? avro_fail(w) : from_json(w, item_type, item, &child);
        if (st != CF_OK)
            return st;
        path_pop(w, saved);
        if (is_map)
            iter = json_object_iter_next((json_t *)json, iter);
    }
    return CF_OK;
}

static cf_status from_json(struct walk *w, const json_t *type, const json_t *json,
                           avro_value_t *value)
{
    const char *logical;
    cf_status st = CF_OK;

    type = cf_schema_resolve(w->schema, type);
    int kind = cf_schema_kind(type, &logical);
    if (++w->depth > MAX_DEPTH) {
        w->depth--;
        return fail(w, CF_EINVAL, "nested too deeply");
    }
    switch (kind) {
    case AVRO_NULL:
        if (!json_is_null(json))
            st = fail(w, CF_EINVAL, "expected null");
        else if (avro_value_set_null(value) != 0)
            st = avro_fail(w);
        break;
    case AVRO_BOOLEAN:
        if (!json_is_boolean(json))
            st = fail(w, CF_EINVAL, "expected true or false");
        else if (avro_value_set_boolean(value, json_is_true(json)) != 0)
            st = avro_fail(w);
        break;
    case AVRO_INT32: {
        int64_t days = 0;
        const char *p = json_string_value(json);
        bool is_date = logical != NULL && strcmp(logical, "date") == 0;
        if (is_date && p != NULL) {
            if (!parse_date(&p, &days) || *p != '\0')
                st = fail(w, CF_EINVAL, "expected a date YYYY-MM-DD");
        } else if (!json_is_integer(json) || json_integer_value(json) < INT32_MIN ||
                   json_integer_value(json) > INT32_MAX)
            st = fail(w, CF_EINVAL, is_date ? "expected a date YYYY-MM-DD" : "expected an int");
        else
            days = json_integer_value(json);
        if (st == CF_OK && avro_value_set_int(value, (int32_t)days) != 0)
            st = avro_fail(w);
        break;
    }
    case AVRO_INT64: {
        int64_t v = 0;
        bool is_time = logical != NULL && strncmp(logical, "timestamp", 9) == 0;
        if (is_time && json_is_string(json)) {
            if (cf_avro_parse_millis(json_string_value(json), &v) != CF_OK)
                st = fail(w, CF_EINVAL, "expected an RFC 3339 time (2026-11-24T09:30:00Z)");
        } else if (!json_is_integer(json))
            st = fail(w, CF_EINVAL, is_time ? "expected an RFC 3339 time" : "expected a long");
        else
            v = json_integer_value(json);
        if (st == CF_OK && avro_value_set_long(value, v) != 0)
            st = avro_fail(w);
        break;
    }
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
        if (!json_is_number(json))
            st = fail(w, CF_EINVAL, "expected a number");
        else if ((kind == AVRO_FLOAT ? avro_value_set_float(value, (float)json_number_value(json))
                                     : avro_value_set_double(value, json_number_value(json))) !=
                 0)
            st = avro_fail(w);
        break;
    case AVRO_STRING:
        if (!json_is_string(json))
            st = fail(w, CF_EINVAL, "expected a string");
        else if (avro_value_set_string_len(value, json_string_value(json),
                                           json_string_length(json) + 1) != 0)
            st = avro_fail(w);
        break;
    case AVRO_BYTES:
    case AVRO_FIXED:
        if (!json_is_string(json))
            st = fail(w, CF_EINVAL, "expected a string");
        else
            st = bytes_value_from_json(w, type, kind, json, value);
        break;
    case AVRO_ENUM: {
        int index = json_is_string(json) ? enum_index(type, json_string_value(json)) : -1;
        if (index < 0)
            st = fail(w, CF_EINVAL, "not a symbol of the enum");
        else if (avro_value_set_enum(value, index) != 0)
            st = avro_fail(w);
        break;
    }
    case AVRO_RECORD: st = record_from_json(w, type, json, value); break;
    case AVRO_ARRAY:
    case AVRO_MAP: st = items_from_json(w, type, kind, json, value); break;
    case AVRO_UNION: st = union_from_json(w, type, json, value); break;
    default: st = fail(w, CF_ESCHEMA, "schema node is not a type");
    }
    w->depth--;
    return st;
}

static cf_status to_json(struct walk *w, const json_t *type, avro_value_t *value, json_t **out);

static cf_status container_to_json(struct walk *w, const json_t *type, int kind,
                                   avro_value_t *value, json_t *result)
{
    size_t n = 0;
    if (avro_value_get_size(value, &n) != 0)
        return avro_fail(w);
    for (size_t i = 0; i < n; i++) {
        avro_value_t child;
        const char *name = NULL;
        const json_t *child_type;
        json_t *j = NULL;
        if (avro_value_get_by_index(value, i, &child, &name) != 0)
            return avro_fail(w);
        if (kind == AVRO_RECORD) {
            const json_t *field = json_array_get(json_object_get(type, "fields"), i);
            name = json_string_value(json_object_get(field, "name"));
            child_type = json_object_get(field, "type");
        } else
            child_type = json_object_get(type, kind == AVRO_ARRAY ? "items" : "values");
        size_t saved = path_push(w, kind == AVRO_ARRAY ? NULL : name, i);
        cf_status st = to_json(w, child_type, &child, &j);
        if (st != CF_OK)
            return st;
        path_pop(w, saved);
        if ((kind == AVRO_ARRAY ? json_array_append_new(result, j)
                                : json_object_set_new(result, name, j)) != 0)
            return CF_ENOMEM;
    }
    return CF_OK;
}

static cf_status to_json(struct walk *w, const json_t *type, avro_value_t *value, json_t **out)
{
    const char *logical;
    cf_status st = CF_OK;
    json_t *j = NULL;

    type = cf_schema_resolve(w->schema, type);
    int kind = cf_schema_kind(type, &logical);
    if (++w->depth > MAX_DEPTH) {
        w->depth--;
        return fail(w, CF_EINVAL, "nested too deeply");
    }
    switch (kind) {
    case AVRO_NULL: j = json_null(); break;
    case AVRO_BOOLEAN: {
        int b = 0;
        if (avro_value_get_boolean(value, &b) != 0)
            st = avro_fail(w);
        else
            j = json_boolean(b);
        break;
    }
    case AVRO_INT32: {
        int32_t v = 0;
        if (avro_value_get_int(value, &v) != 0)
            st = avro_fail(w);
        else if (logical != NULL && strcmp(logical, "date") == 0) {
            int64_t y;
            unsigned m, d;
            char buf[32];
            civil_from_days(v, &y, &m, &d);
            (void)snprintf(buf, sizeof(buf), "%04lld-%02u-%02u", (long long)y, m, d);
            j = json_string(buf);
        } else
            j = json_integer(v);
        break;
    }
    case AVRO_INT64: {
        int64_t v = 0;
        char buf[40];
        if (avro_value_get_long(value, &v) != 0)
            st = avro_fail(w);
        else if (logical != NULL && strcmp(logical, "timestamp-millis") == 0) {
            cf_avro_format_millis(v, buf, sizeof(buf));
            j = json_string(buf);
        } else
            j = json_integer(v);
        break;
    }
    case AVRO_FLOAT:
    case AVRO_DOUBLE: {
        double d = 0;
        float f = 0;
        if ((kind == AVRO_FLOAT ? avro_value_get_float(value, &f)
                                : avro_value_get_double(value, &d)) != 0) {
            st = avro_fail(w);
            break;
        }
        if (kind == AVRO_FLOAT)
            d = f;
        /* JSON has no NaN or infinity; Avro's JSON encoding writes them as strings. */
        j = isnan(d) ? json_string("NaN") : isinf(d) ? json_string(d > 0 ? "Infinity" : "-Infinity")
                                                      : json_real(d);
        break;
    }
    case AVRO_STRING: {
        const char *s = NULL;
        size_t size = 0;
        if (avro_value_get_string(value, &s, &size) != 0)
            st = avro_fail(w);
        else if ((j = json_stringn(s, size > 0 ? size - 1 : 0)) == NULL)
            st = fail(w, CF_EDECODE, "string is not valid UTF-8");
        break;
    }
    case AVRO_BYTES:
    case AVRO_FIXED: {
        const void *p = NULL;
        size_t size = 0;
        if ((kind == AVRO_FIXED ? avro_value_get_fixed(value, &p, &size)
                                : avro_value_get_bytes(value, &p, &size)) != 0)
            st = avro_fail(w);
        else
            j = bytes_to_json(p, size);
        break;
    }
    case AVRO_ENUM: {
        int index = 0;
        if (avro_value_get_enum(value, &index) != 0)
            st = avro_fail(w);
        else if ((j = json_incref(json_array_get(json_object_get(type, "symbols"),
                                                 (size_t)index))) == NULL)
            st = fail(w, CF_EDECODE, "enum index out of range");
        break;
    }
    case AVRO_RECORD:
    case AVRO_MAP:
        j = json_object();
        if (j != NULL)
            st = container_to_json(w, type, kind, value, j);
        break;
    case AVRO_ARRAY:
        j = json_array();
        if (j != NULL)
            st = container_to_json(w, type, kind, value, j);
        break;
    case AVRO_UNION: {
        int disc = 0;
        avro_value_t branch;
        if (avro_value_get_discriminant(value, &disc) != 0 ||
            avro_value_get_current_branch(value, &branch) != 0)
            st = avro_fail(w);
        else
            st = to_json(w, json_array_get(type, (size_t)disc), &branch, &j);
        break;
    }
    default: st = fail(w, CF_ESCHEMA, "schema node is not a type");
    }
    w->depth--;
    if (st == CF_OK && j == NULL)
        st = CF_ENOMEM;
    if (st != CF_OK) {
        json_decref(j);
        return st;
    }
    *out = j;
    return CF_OK;
}

/* The writer's name of a named type's value (record, enum, fixed), without namespace: a
 * reader may move a type to another namespace, so unqualified names are compared. */
static const char *short_name(const char *name)
{
    const char *dot = name != NULL ? strrchr(name, '.') : NULL;
    return dot != NULL ? dot + 1 : name;
}

/* How well a writer value of kind skind (schema sschema) resolves to reader type rtype:
 * 0 not at all, 1 by promotion, 2 the same type. */
static int resolves_to(int skind, avro_schema_t sschema, int rkind, const json_t *rtype)
{
    if (skind == rkind) {
        if (rkind != AVRO_RECORD && rkind != AVRO_ENUM && rkind != AVRO_FIXED)
            return 2;
        const char *rname = json_string_value(json_object_get(rtype, "name"));
        return rname != NULL && strcmp(short_name(rname), avro_schema_name(sschema)) == 0 ? 2
                                                                                           : 0;
    }
    switch (skind) {
    case AVRO_INT32: return rkind == AVRO_INT64 || rkind == AVRO_FLOAT || rkind == AVRO_DOUBLE;
    case AVRO_INT64: return rkind == AVRO_FLOAT || rkind == AVRO_DOUBLE;
    case AVRO_FLOAT: return rkind == AVRO_DOUBLE;
    case AVRO_STRING: return rkind == AVRO_BYTES;
    case AVRO_BYTES: return rkind == AVRO_STRING;
    default: return 0;
    }
}

static cf_status project(struct walk *w, const json_t *rtype, avro_value_t *src,
                         avro_value_t *dst);

static cf_status project_record(struct walk *w, const json_t *rtype, avro_value_t *src,
                                avro_value_t *dst)
{
    size_t i;
    const json_t *field;
    json_array_foreach(json_object_get(rtype, "fields"), i, field) {
        const char *name = json_string_value(json_object_get(field, "name"));
        avro_value_t schild, dchild;
        cf_status st;
        size_t saved = path_push(w, name, 0);
        if (avro_value_get_by_index(dst, i, &dchild, NULL) != 0)
            return avro_fail(w);
        if (avro_value_get_by_name(src, name, &schild, NULL) == 0)
            st = project(w, json_object_get(field, "type"), &schild, &dchild);
        else if (json_object_get(field, "default") != NULL)
            st = from_json(w, json_object_get(field, "type"), json_object_get(field, "default"),
                           &dchild);
        else
            st = fail(w, CF_ESCHEMA, "the writer has no such field and the reader no default");
        if (st != CF_OK)
            return st;
        path_pop(w, saved);
    }
    avro_set_error("%s", ""); /* avro_value_get_by_name wrote "no field" for added fields */
    return CF_OK;
}

static cf_status project_enum(struct walk *w, const json_t *rtype, avro_value_t *src,
                              avro_value_t *dst)
{
    int sindex = 0;
    if (avro_value_get_enum(src, &sindex) != 0)
        return avro_fail(w);
    const char *symbol = avro_schema_enum_get(avro_value_get_schema(src), sindex);
    int rindex = symbol != NULL ? enum_index(rtype, symbol) : -1;
    if (rindex < 0 && json_is_string(json_object_get(rtype, "default")))
        rindex = enum_index(rtype, json_string_value(json_object_get(rtype, "default")));
    if (rindex < 0)
        return fail(w, CF_ESCHEMA, "enum symbol unknown to the reader, which has no default");
    return avro_value_set_enum(dst, rindex) != 0 ? avro_fail(w) : CF_OK;
}

static cf_status project_items(struct walk *w, const json_t *rtype, int rkind,
                               avro_value_t *src, avro_value_t *dst)
{
    size_t n = 0;
    if (avro_value_get_size(src, &n) != 0)
        return avro_fail(w);
    for (size_t i = 0; i < n; i++) {
        avro_value_t schild, dchild;
        const char *key = NULL;
        if (avro_value_get_by_index(src, i, &schild, &key) != 0)
            return avro_fail(w);
        size_t saved = path_push(w, rkind == AVRO_MAP ? key : NULL, i);
        int rc = rkind == AVRO_MAP ? avro_value_add(dst, key, &dchild, NULL, NULL)
                                   : avro_value_append(dst, &dchild, NULL);
        if (rc != 0)
            return avro_fail(w);
        cf_status st = project(w, json_object_get(rtype, rkind == AVRO_MAP ? "values" : "items"),
                               &schild, &dchild);
        if (st != CF_OK)
            return st;
        path_pop(w, saved);
    }
    return CF_OK;
}

/* Reads a writer number or string and writes it as the reader's (possibly promoted) type. */
static cf_status project_scalar(struct walk *w, int skind, int rkind, avro_value_t *src,
                                avro_value_t *dst)
{
    int32_t i32 = 0;
    int64_t i64 = 0;
    float f = 0;
    double d = 0;
    int b = 0, rc;
    const void *p = NULL;
    size_t size = 0;

    switch (skind) {
    case AVRO_NULL: return avro_value_set_null(dst) != 0 ? avro_fail(w) : CF_OK;
    case AVRO_BOOLEAN:
        if (avro_value_get_boolean(src, &b) != 0)
            return avro_fail(w);
        return avro_value_set_boolean(dst, b) != 0 ? avro_fail(w) : CF_OK;
    case AVRO_INT32: rc = avro_value_get_int(src, &i32); i64 = i32; d = i32; break;
    case AVRO_INT64: rc = avro_value_get_long(src, &i64); d = (double)i64; break;
    case AVRO_FLOAT: rc = avro_value_get_float(src, &f); d = f; break;
    case AVRO_DOUBLE: rc = avro_value_get_double(src, &d); break;
    case AVRO_STRING:
        rc = avro_value_get_string(src, (const char **)&p, &size);
        size = size > 0 ? size - 1 : 0; /* avro-c counts the NUL it keeps after strings */
        break;
    case AVRO_BYTES: rc = avro_value_get_bytes(src, &p, &size); break;
    case AVRO_FIXED: rc = avro_value_get_fixed(src, &p, &size); break;
    default: return fail(w, CF_ESCHEMA, "cannot resolve this writer type");
    }
    if (rc != 0)
        return avro_fail(w);
    switch (rkind) {
    case AVRO_INT32: rc = avro_value_set_int(dst, i32); break;
    case AVRO_INT64: rc = avro_value_set_long(dst, i64); break;
    case AVRO_FLOAT: rc = avro_value_set_float(dst, skind == AVRO_FLOAT ? f : (float)d); break;
    case AVRO_DOUBLE: rc = avro_value_set_double(dst, d); break;
    case AVRO_STRING: {
        /* avro-c wants the terminating NUL counted and present. */
        char *copy = strndup(p, size);
        if (copy == NULL)
            return CF_ENOMEM;
        rc = avro_value_set_string_len(dst, copy, size + 1);
        free(copy);
        break;
    }
    case AVRO_BYTES: rc = avro_value_set_bytes(dst, (void *)p, size); break;
    case AVRO_FIXED: rc = avro_value_set_fixed(dst, (void *)p, size); break;
    default: return fail(w, CF_ESCHEMA, "cannot resolve to this reader type");
    }
    return rc != 0 ? avro_fail(w) : CF_OK;
}

static cf_status project(struct walk *w, const json_t *rtype, avro_value_t *src,
                         avro_value_t *dst)
{
    const json_t *resolved = cf_schema_resolve(w->schema, rtype);
    int rkind = cf_schema_kind(resolved, NULL);
    int skind = (int)avro_value_get_type(src);
    avro_value_t branch;
    cf_status st;

    if (++w->depth > MAX_DEPTH) {
        w->depth--;
        return fail(w, CF_EINVAL, "nested too deeply");
    }
    if (skind == AVRO_UNION) { /* resolve the branch the writer chose */
        st = avro_value_get_current_branch(src, &branch) != 0 ? avro_fail(w)
                                                              : project(w, rtype, &branch, dst);
    } else if (rkind == AVRO_UNION) {
        int best = -1, best_fit = 0;
        size_t i;
        const json_t *b;
        json_array_foreach(resolved, i, b) {
            const json_t *rb = cf_schema_resolve(w->schema, b);
            int fit = resolves_to(skind, avro_value_get_schema(src), cf_schema_kind(rb, NULL), rb);
            if (fit > best_fit) {
                best = (int)i;
                best_fit = fit;
            }
        }
        if (best < 0)
            st = fail(w, CF_ESCHEMA, "the writer's type matches no branch of the reader's union");
        else if (avro_value_set_branch(dst, best, &branch) != 0)
            st = avro_fail(w);
        else
            st = project(w, json_array_get(resolved, (size_t)best), src, &branch);
    } else if (resolves_to(skind, avro_value_get_schema(src), rkind, resolved) == 0) {
        st = fail(w, CF_ESCHEMA, "the writer's type does not resolve to the reader's");
    } else if (rkind == AVRO_RECORD) {
        st = project_record(w, resolved, src, dst);
    } else if (rkind == AVRO_ENUM) {
        st = project_enum(w, resolved, src, dst);
    } else if (rkind == AVRO_ARRAY || rkind == AVRO_MAP) {
        st = project_items(w, resolved, rkind, src, dst);
    } else {
        st = project_scalar(w, skind, rkind, src, dst);
    }
    w->depth--;
    return st;
}

cf_status cf_avro_project(const struct cf_schema *reader, const json_t *reader_type,
                          avro_value_t *src, avro_value_t *value, char *errbuf, size_t errlen)
{
    struct walk w = {reader, "$", 1, 0, errbuf, errlen};
    avro_set_error("%s", "");
    return project(&w, reader_type, src, value);
}

cf_status cf_avro_from_json(const struct cf_schema *schema, const json_t *type,
                            const json_t *json, avro_value_t *value, char *errbuf, size_t errlen)
{
    struct walk w = {schema, "$", 1, 0, errbuf, errlen};
    avro_set_error("%s", "");
    return from_json(&w, type, json, value);
}

cf_status cf_avro_to_json(const struct cf_schema *schema, const json_t *type,
                          avro_value_t *value, json_t **out, char *errbuf, size_t errlen)
{
    struct walk w = {schema, "$", 1, 0, errbuf, errlen};
    *out = NULL;
    avro_set_error("%s", "");
    return to_json(&w, type, value, out);
}
