/* avro_serde.c — Confluent wire format, bounds checking and topic codecs (see avro_serde.h). */
#include "avro_serde.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro_convert.h"
#include "topics.h"

#define MAX_DEPTH 64
/* Items (array elements, map entries) in one record, whatever their size: bounds the work a
 * record of zero-size items (arrays of null) can ask for. */
#define MAX_ITEMS (1024 * 1024)

cf_status cf_serde_wire_parse(const void *buf, size_t len, int32_t *schema_id,
                              const unsigned char **payload, size_t *payload_len, char *errbuf,
                              size_t errlen)
{
    const unsigned char *p = buf;
    /* Defined outputs on every path: callers (and -O3's flow analysis, which cannot see that
     * cf_fail returns its non-zero status) never read stale values after a failure. */
    *schema_id = 0;
    *payload = NULL;
    *payload_len = 0;
    if (len == 0)
        return cf_fail(errbuf, errlen, CF_EDECODE, "empty record: no Confluent wire header");
    if (len > CF_SERDE_MAX_RECORD)
        return cf_fail(errbuf, errlen, CF_ETOOBIG, "record of %zu bytes is over the %d limit",
                       len, CF_SERDE_MAX_RECORD);
    if (p[0] != 0)
        return cf_fail(errbuf, errlen, CF_EDECODE,
                       "magic byte is 0x%02x, not 0x00: not Confluent wire format", p[0]);
    if (len < CF_SERDE_HEADER_LEN)
        return cf_fail(errbuf, errlen, CF_EDECODE,
                       "record of %zu bytes is shorter than the 5-byte wire header", len);
    uint32_t id = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    if (id == 0 || id > INT32_MAX)
        return cf_fail(errbuf, errlen, CF_EDECODE, "schema id %lu is not a valid id",
                       (unsigned long)id);
    *schema_id = (int32_t)id;
    *payload = p + CF_SERDE_HEADER_LEN;
    *payload_len = len - CF_SERDE_HEADER_LEN;
    return CF_OK;
}

struct cursor {
    const unsigned char *start, *p, *end;
    size_t items;
    char *errbuf;
    size_t errlen;
};

static cf_status bad(struct cursor *c, const char *what, long long n)
{
    return cf_fail(c->errbuf, c->errlen, CF_EDECODE, "bad Avro at byte %zu: %s (%lld)",
                   (size_t)(c->p - c->start), what, n);
}

/* A zig-zag varint of at most 10 bytes. */
static cf_status read_long(struct cursor *c, int64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (c->p >= c->end)
            return bad(c, "truncated number", 0);
        unsigned char b = *c->p++;
        v |= (uint64_t)(b & 0x7F) << shift;
        if ((b & 0x80) == 0) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return CF_OK;
        }
    }
    return bad(c, "number longer than 10 bytes", 0);
}

static size_t left(const struct cursor *c) { return (size_t)(c->end - c->p); }

static cf_status skip(struct cursor *c, int64_t n, const char *what)
{
    if (n < 0 || (uint64_t)n > left(c))
        return bad(c, what, n);
    c->p += n;
    return CF_OK;
}

static cf_status walk(struct cursor *c, avro_schema_t s, int depth);

static cf_status walk_blocks(struct cursor *c, avro_schema_t s, int depth)
{
    bool is_map = avro_typeof(s) == AVRO_MAP;
    avro_schema_t item = is_map ? avro_schema_map_values(s) : avro_schema_array_items(s);
    cf_status st;
    for (;;) {
        int64_t count, block_bytes;
        if ((st = read_long(c, &count)) != CF_OK)
            return st;
        if (count == 0)
            return CF_OK;
        if (count < 0) { /* a negative count is followed by the block's size in bytes */
            if (count == INT64_MIN)
                return bad(c, "block count out of range", count);
            count = -count;
            if ((st = read_long(c, &block_bytes)) != CF_OK)
                return st;
            if (block_bytes < 0 || (uint64_t)block_bytes > left(c))
                return bad(c, "block size exceeds the bytes left", block_bytes);
        }
        /* Every item of a non-null type takes at least one byte. */
        if ((avro_typeof(item) != AVRO_NULL && (uint64_t)count > left(c)) ||
            (uint64_t)count > MAX_ITEMS - c->items)
            return bad(c, "item count exceeds the bytes left", count);
        c->items += (size_t)count;
        for (int64_t i = 0; i < count; i++) {
            if (is_map) {
                int64_t klen;
                if ((st = read_long(c, &klen)) != CF_OK ||
                    (st = skip(c, klen, "map key length exceeds the bytes left")) != CF_OK)
                    return st;
            }
            if ((st = walk(c, item, depth + 1)) != CF_OK)
                return st;
        }
    }
}

static cf_status walk(struct cursor *c, avro_schema_t s, int depth)
{
    int64_t n;
    cf_status st;
    if (depth > MAX_DEPTH)
        return bad(c, "nested too deeply", depth);
    switch (avro_typeof(s)) {
    case AVRO_NULL: return CF_OK;
    case AVRO_BOOLEAN:
        if (left(c) < 1 || *c->p > 1)
            return bad(c, "boolean is not 0 or 1", left(c) < 1 ? -1 : *c->p);
        c->p++;
        return CF_OK;
    case AVRO_INT32:
        if ((st = read_long(c, &n)) != CF_OK)
            return st;
        return n < INT32_MIN || n > INT32_MAX ? bad(c, "int out of range", n) : CF_OK;
    case AVRO_INT64: return read_long(c, &n);
    case AVRO_FLOAT: return skip(c, 4, "truncated float");
    case AVRO_DOUBLE: return skip(c, 8, "truncated double");
    case AVRO_STRING:
    case AVRO_BYTES:
        if ((st = read_long(c, &n)) != CF_OK)
            return st;
        return skip(c, n, "length exceeds the bytes left");
    case AVRO_FIXED: return skip(c, avro_schema_fixed_size(s), "truncated fixed");
    case AVRO_ENUM:
        if ((st = read_long(c, &n)) != CF_OK)
            return st;
        return n < 0 || n >= avro_schema_enum_number_of_symbols(s)
                   ? bad(c, "enum index out of range", n)
                   : CF_OK;
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(s); i++)
            if ((st = walk(c, avro_schema_record_field_get_by_index(s, (int)i), depth + 1)) !=
                CF_OK)
                return st;
        return CF_OK;
    case AVRO_UNION:
        if ((st = read_long(c, &n)) != CF_OK)
            return st;
        if (n < 0 || (uint64_t)n >= avro_schema_union_size(s))
            return bad(c, "union branch out of range", n);
        return walk(c, avro_schema_union_branch(s, (int)n), depth + 1);
    case AVRO_ARRAY:
    case AVRO_MAP: return walk_blocks(c, s, depth);
    case AVRO_LINK: return walk(c, avro_schema_link_target(s), depth + 1);
    default: return bad(c, "unsupported schema type", avro_typeof(s));
    }
}

cf_status cf_serde_check_bounds(avro_schema_t writer, const void *payload, size_t len,
                                char *errbuf, size_t errlen)
{
    struct cursor c = {payload, payload, (const unsigned char *)payload + len, 0, errbuf, errlen};
    cf_status st = walk(&c, writer, 0);
    if (st == CF_OK && c.p != c.end)
        st = cf_fail(errbuf, errlen, CF_EDECODE, "%zu bytes left after the record", left(&c));
    return st;
}

/* Reads one record of value's class from payload (already bounds-checked). */
static cf_status read_value(const void *payload, size_t len, avro_value_t *value, char *errbuf,
                            size_t errlen)
{
    avro_reader_t reader = avro_reader_memory(payload, (int64_t)len);
    if (reader == NULL)
        return CF_ENOMEM;
    avro_set_error("%s", "");
    int rc = avro_value_read(reader, value);
    avro_reader_free(reader);
    return rc != 0 ? cf_fail(errbuf, errlen, CF_EDECODE, "avro: %s", avro_strerror()) : CF_OK;
}

cf_status cf_serde_decode_payload(const struct cf_schema *writer, const struct cf_schema *reader,
                                  const void *payload, size_t len, avro_value_t *out,
                                  char *errbuf, size_t errlen)
{
    cf_status st;
    avro_value_t written = {NULL, NULL};

    out->iface = NULL;
    out->self = NULL;
    if ((st = cf_serde_check_bounds(cf_schema_avro(writer), payload, len, errbuf, errlen)) !=
        CF_OK)
        return st;
    if (avro_generic_value_new(cf_schema_iface(reader), out) != 0)
        return CF_ENOMEM;
    if (writer == reader) {
        st = read_value(payload, len, out, errbuf, errlen);
        goto out;
    }
    if (avro_generic_value_new(cf_schema_iface(writer), &written) != 0) {
        st = CF_ENOMEM;
        goto out;
    }
    if ((st = read_value(payload, len, &written, errbuf, errlen)) != CF_OK)
        goto out;
    st = cf_avro_project(reader, cf_schema_root(reader), &written, out, errbuf, errlen);
out:
    if (written.iface != NULL)
        avro_value_decref(&written);
    if (st != CF_OK) {
        avro_value_decref(out);
        out->iface = NULL;
        out->self = NULL;
    }
    return st;
}

cf_status cf_serde_encode_wire(int32_t schema_id, avro_value_t *value, unsigned char **out,
                               size_t *len, char *errbuf, size_t errlen)
{
    size_t size = 0;
    unsigned char *buf = NULL;
    avro_writer_t writer = NULL;

    *out = NULL;
    avro_set_error("%s", "");
    if (avro_value_sizeof(value, &size) != 0)
        return cf_fail(errbuf, errlen, CF_EINVAL, "avro: %s", avro_strerror());
    if (size > CF_SERDE_MAX_RECORD - CF_SERDE_HEADER_LEN)
        return cf_fail(errbuf, errlen, CF_ETOOBIG, "record of %zu bytes is over the %d limit",
                       size, CF_SERDE_MAX_RECORD);
    if ((buf = malloc(size + CF_SERDE_HEADER_LEN)) == NULL)
        return CF_ENOMEM;
    buf[0] = 0;
    buf[1] = (unsigned char)((uint32_t)schema_id >> 24);
    buf[2] = (unsigned char)((uint32_t)schema_id >> 16);
    buf[3] = (unsigned char)((uint32_t)schema_id >> 8);
    buf[4] = (unsigned char)schema_id;
    writer = avro_writer_memory((char *)buf + CF_SERDE_HEADER_LEN, (int64_t)size);
    if (writer == NULL || avro_value_write(writer, value) != 0) {
        cf_status st = writer == NULL ? CF_ENOMEM
                                      : cf_fail(errbuf, errlen, CF_EINVAL, "avro: %s",
                                                avro_strerror());
        avro_writer_free(writer);
        free(buf);
        return st;
    }
    avro_writer_free(writer);
    *out = buf;
    *len = size + CF_SERDE_HEADER_LEN;
    return CF_OK;
}

/* Writer schema ids remembered per topic. A topic sees one id per schema version its producers
 * used, a handful in practice; past the cap the oldest decision is forgotten (and made again
 * from the registry client's cache when that id comes back). */
#define WRITER_IDS_MAX 16

/* Whether records written with schema id can be read straight into the topic's reader. */
struct writer_id {
    int32_t id;
    bool same; /* the writer schema is the reader schema: no projection */
};

struct topic_schema {
    const char *topic; /* from the static topic table */
    struct cf_schema *schema;
    int32_t id; /* 0 until registered */
    struct writer_id writers[WRITER_IDS_MAX];
    size_t nwriters, next_writer;
};

struct cf_serde {
    struct cf_registry *registry;
    char *schema_dir;
    struct topic_schema *topics;
    size_t ntopics;
    struct cf_serde_stats stats;
};

cf_status cf_serde_new(struct cf_registry *registry, const char *schema_dir,
                       struct cf_serde **out, char *errbuf, size_t errlen)
{
    size_t n = 0;
    (void)cf_topics_all(&n);
    struct cf_serde *s = calloc(1, sizeof(*s));
    *out = NULL;
    if (s == NULL || (s->topics = calloc(n, sizeof(*s->topics))) == NULL ||
        (s->schema_dir = strdup(schema_dir != NULL ? schema_dir : "")) == NULL) {
        cf_serde_free(s);
        return cf_fail(errbuf, errlen, CF_ENOMEM, "cannot allocate the serde");
    }
    s->registry = registry;
    s->ntopics = n;
    *out = s;
    return CF_OK;
}

void cf_serde_free(struct cf_serde *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; s->topics != NULL && i < s->ntopics; i++)
        cf_schema_free(s->topics[i].schema);
    free(s->topics);
    free(s->schema_dir);
    free(s);
}

/* The topic's slot, its reader schema loaded from schemas/ (not yet registered). */
static cf_status topic_slot(struct cf_serde *s, const char *topic, struct topic_schema **slot,
                            char *errbuf, size_t errlen)
{
    size_t n = 0;
    const struct cf_topic *all = cf_topics_all(&n);
    const struct cf_topic *t = cf_topics_find(topic);
    if (t == NULL)
        return cf_fail(errbuf, errlen, CF_ENOTFOUND, "%s is not a caseflow topic", topic);
    struct topic_schema *ts = &s->topics[t - all];
    if (ts->schema == NULL) {
        cf_status st = cf_schema_load(s->schema_dir, t->schema_name, &ts->schema, errbuf, errlen);
        if (st != CF_OK)
            return st;
        ts->topic = t->name;
    }
    *slot = ts;
    return CF_OK;
}

cf_status cf_serde_topic_schema(struct cf_serde *s, const char *topic,
                                const struct cf_schema **schema, int32_t *schema_id,
                                char *errbuf, size_t errlen)
{
    struct topic_schema *ts = NULL;
    char subject[256];
    cf_status st = topic_slot(s, topic, &ts, errbuf, errlen);
    if (st != CF_OK)
        return st;
    if (ts->id == 0) {
        (void)snprintf(subject, sizeof(subject), "%s-value", topic);
        st = cf_registry_register(s->registry, subject, cf_schema_text(ts->schema), &ts->id,
                                  errbuf, errlen);
        if (st != CF_OK)
            return st;
    }
    *schema = ts->schema;
    *schema_id = ts->id;
    return CF_OK;
}

cf_status cf_serde_encode(struct cf_serde *s, const char *topic, avro_value_t *value,
                          unsigned char **out, size_t *len, char *errbuf, size_t errlen)
{
    const struct cf_schema *schema;
    int32_t id;
    cf_status st = cf_serde_topic_schema(s, topic, &schema, &id, errbuf, errlen);
    if (st != CF_OK)
        return st;
    return cf_serde_encode_wire(id, value, out, len, errbuf, errlen);
}

/* Whether writer (the registry's schema of id) is the topic's reader schema itself, so that
 * its records decode straight into the reader's class. A service that only reads a topic never
 * registers the topic's schema (ts->id stays 0), so without this every record it reads would
 * be decoded with the registry's copy and projected field by field, five times the work of a
 * plain decode. avro_schema_equal compares what the binary encoding depends on (types, names,
 * field order, enum symbols, fixed sizes); defaults and logical types only matter when the two
 * differ, and the reader's own JSON is what the caller reads them from. The answer for an id
 * never changes (an id's schema is immutable), so it is decided once per id. */
static bool writer_is_reader(struct topic_schema *ts, int32_t id, const struct cf_schema *writer)
{
    for (size_t i = 0; i < ts->nwriters; i++)
        if (ts->writers[i].id == id)
            return ts->writers[i].same;
    bool same = avro_schema_equal(cf_schema_avro(writer), cf_schema_avro(ts->schema)) != 0;
    struct writer_id *slot;
    if (ts->nwriters < WRITER_IDS_MAX) {
        slot = &ts->writers[ts->nwriters++];
    } else {
        slot = &ts->writers[ts->next_writer];
        ts->next_writer = (ts->next_writer + 1) % WRITER_IDS_MAX;
    }
    slot->id = id;
    slot->same = same;
    return same;
}

/* Decodes with the topic's reader schema, or, for a topic without one (a dead-letter topic),
 * with the writer's schema; *reader_out tells which. */
static cf_status decode(struct cf_serde *s, const char *topic, const void *buf, size_t len,
                        avro_value_t *out, const struct cf_schema **reader_out, char *errbuf,
                        size_t errlen)
{
    int32_t id = 0;
    const unsigned char *payload = NULL;
    size_t plen = 0;
    const struct cf_schema *writer = NULL, *reader = NULL;
    struct topic_schema *ts = NULL;
    cf_status st = cf_serde_wire_parse(buf, len, &id, &payload, &plen, errbuf, errlen);
    if (st != CF_OK)
        return st;
    if (cf_topics_find(topic) != NULL) {
        if ((st = topic_slot(s, topic, &ts, errbuf, errlen)) != CF_OK)
            return st;
        reader = ts->schema;
    }
    if (ts != NULL && ts->id == id) {
        writer = reader;
    } else {
        if ((st = cf_registry_schema(s->registry, id, &writer, errbuf, errlen)) != CF_OK)
            return st;
        if (ts != NULL && writer_is_reader(ts, id, writer))
            writer = reader;
    }
    if (reader == NULL)
        reader = writer;
    *reader_out = reader;
    st = cf_serde_decode_payload(writer, reader, payload, plen, out, errbuf, errlen);
    if (st == CF_OK) {
        if (writer == reader)
            s->stats.direct++;
        else
            s->stats.projected++;
    }
    return st;
}

void cf_serde_get_stats(const struct cf_serde *s, struct cf_serde_stats *out)
{
    *out = s->stats;
}

cf_status cf_serde_decode(struct cf_serde *s, const char *topic, const void *buf, size_t len,
                          avro_value_t *out, char *errbuf, size_t errlen)
{
    const struct cf_schema *reader;
    return decode(s, topic, buf, len, out, &reader, errbuf, errlen);
}

cf_status cf_serde_encode_json(struct cf_serde *s, const char *topic, const json_t *json,
                               unsigned char **out, size_t *len, char *errbuf, size_t errlen)
{
    const struct cf_schema *schema;
    int32_t id;
    avro_value_t value;
    cf_status st = cf_serde_topic_schema(s, topic, &schema, &id, errbuf, errlen);
    if (st != CF_OK)
        return st;
    if (avro_generic_value_new(cf_schema_iface(schema), &value) != 0)
        return CF_ENOMEM;
    st = cf_avro_from_json(schema, cf_schema_root(schema), json, &value, errbuf, errlen);
    if (st == CF_OK)
        st = cf_serde_encode_wire(id, &value, out, len, errbuf, errlen);
    avro_value_decref(&value);
    return st;
}

cf_status cf_serde_decode_json(struct cf_serde *s, const char *topic, const void *buf,
                               size_t len, json_t **out, char *errbuf, size_t errlen)
{
    const struct cf_schema *reader = NULL;
    avro_value_t value;
    *out = NULL;
    cf_status st = decode(s, topic, buf, len, &value, &reader, errbuf, errlen);
    if (st != CF_OK)
        return st;
    st = cf_avro_to_json(reader, cf_schema_root(reader), &value, out, errbuf, errlen);
    avro_value_decref(&value);
    return st;
}
