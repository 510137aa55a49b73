/* kafka_out.c — the handler outputs (struct cf_kafka_out, see kafka.h): what a handler asks
 * the transactional loop to produce for one record, copied into one block per record. */
#include "kafka.h"

#include <stdlib.h>
#include <string.h>

#include "kafka_internal.h"

struct out_item {
    struct cf_kafka_out_record rec;
    char *block; /* one allocation: header array, topic, key, value, header names and values */
};

struct cf_kafka_out {
    struct out_item *items;
    size_t n;
    size_t cap;
    size_t bytes;
};

cf_status cf_kafka_out_new(struct cf_kafka_out **out)
{
    if (out == NULL)
        return CF_EINVAL;
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? CF_OK : CF_ENOMEM;
}

void cf_kafka_out_reset(struct cf_kafka_out *out)
{
    if (out == NULL)
        return;
    for (size_t i = 0; i < out->n; i++)
        free(out->items[i].block);
    out->n = 0;
    out->bytes = 0;
}

void cf_kafka_out_free(struct cf_kafka_out *out)
{
    if (out == NULL)
        return;
    cf_kafka_out_reset(out);
    free(out->items);
    free(out);
}

size_t cf_kafka_out_count(const struct cf_kafka_out *out)
{
    return out != NULL ? out->n : 0;
}

const struct cf_kafka_out_record *cf_kafka_out_get(const struct cf_kafka_out *out, size_t i)
{
    return out != NULL && i < out->n ? &out->items[i].rec : NULL;
}

/* a + b into *sum unless it passes limit. */
static bool add_capped(size_t *sum, size_t add, size_t limit)
{
    if (add > limit || *sum > limit - add)
        return false;
    *sum += add;
    return true;
}

cf_status cf_kafka_out_add(struct cf_kafka_out *out, const char *topic, const void *key,
                           size_t key_len, const void *value, size_t value_len,
                           const struct cf_header *headers, size_t header_count)
{
    const size_t limit = CF_KAFKA_OUT_MAX_BYTES;
    size_t payload = 0; /* what counts against the byte limit */
    size_t size = 0;

    if (out == NULL || topic == NULL || topic[0] == '\0' || (header_count > 0 && headers == NULL) ||
        (key == NULL && key_len > 0) || (value == NULL && value_len > 0))
        return CF_EINVAL;
    if (out->n >= CF_KAFKA_OUT_MAX_RECORDS || header_count > CF_KAFKA_OUT_MAX_RECORDS * 100u)
        return CF_ETOOBIG;
    size_t topic_len = strlen(topic);
    if (topic_len > TOPIC_MAX)
        return CF_EINVAL;
    if (!add_capped(&payload, key_len, limit) || !add_capped(&payload, value_len, limit))
        return CF_ETOOBIG;
    for (size_t i = 0; i < header_count; i++) {
        if (headers[i].name == NULL || (headers[i].value == NULL && headers[i].len > 0))
            return CF_EINVAL;
        if (!add_capped(&payload, strlen(headers[i].name) + 1, limit) ||
            !add_capped(&payload, headers[i].len, limit))
            return CF_ETOOBIG;
    }
    if (!add_capped(&size, payload, limit) || out->bytes > limit - payload)
        return CF_ETOOBIG;
    /* Everything fits below 64 MiB, so these additions cannot overflow. */
    size += header_count * sizeof(struct cf_header) + topic_len + 1;

    if (out->n == out->cap) {
        size_t cap = out->cap == 0 ? 4 : out->cap * 2;
        struct out_item *grown = realloc(out->items, cap * sizeof(*grown));
        if (grown == NULL)
            return CF_ENOMEM;
        out->items = grown;
        out->cap = cap;
    }
    char *block = malloc(size > 0 ? size : 1);
    if (block == NULL)
        return CF_ENOMEM;

    struct out_item *item = &out->items[out->n];
    struct cf_header *h = (struct cf_header *)block; /* first: malloc alignment suits it */
    char *p = block + header_count * sizeof(struct cf_header);
    memcpy(p, topic, topic_len + 1);
    item->rec.topic = p;
    p += topic_len + 1;
    item->rec.key = NULL;
    if (key != NULL) {
        memcpy(p, key, key_len);
        item->rec.key = p;
        p += key_len;
    }
    item->rec.key_len = key_len;
    item->rec.value = NULL;
    if (value != NULL) {
        memcpy(p, value, value_len);
        item->rec.value = p;
        p += value_len;
    }
    item->rec.value_len = value_len;
    for (size_t i = 0; i < header_count; i++) {
        size_t name_len = strlen(headers[i].name);
        memcpy(p, headers[i].name, name_len + 1);
        h[i].name = p;
        p += name_len + 1;
        h[i].value = NULL;
        if (headers[i].value != NULL) {
            memcpy(p, headers[i].value, headers[i].len);
            h[i].value = p;
            p += headers[i].len;
        }
        h[i].len = headers[i].len;
    }
    item->rec.headers = header_count > 0 ? h : NULL;
    item->rec.header_count = header_count;
    item->block = block;
    out->n++;
    out->bytes += payload;
    return CF_OK;
}
