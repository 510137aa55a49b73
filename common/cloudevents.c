/* cloudevents.c — CloudEvents Kafka headers (see cloudevents.h). */
#include "cloudevents.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro_convert.h"
#include "uuid.h"

static cf_status copy(char *dst, size_t size, const char *src, const char *what, char *errbuf,
                      size_t errlen)
{
    int n = snprintf(dst, size, "%s", src);
    if (n < 0 || (size_t)n >= size)
        return cf_fail(errbuf, errlen, CF_EINVAL, "CloudEvents %s longer than %zu bytes", what,
                       size - 1);
    return CF_OK;
}

cf_status cf_cloudevent_init(struct cf_cloudevent *ce, const char *service, const char *type,
                             const char *event_id, int64_t occurred_at_ms, char *errbuf,
                             size_t errlen)
{
    char source[96];
    cf_status st;
    if (!cf_uuid_valid(event_id))
        return cf_fail(errbuf, errlen, CF_EINVAL, "CloudEvents id: meta.event_id is not a UUID");
    (void)snprintf(source, sizeof(source), "/caseflow/%.80s", service);
    if ((st = copy(ce->id, sizeof(ce->id), event_id, "id", errbuf, errlen)) != CF_OK ||
        (st = copy(ce->source, sizeof(ce->source), source, "source", errbuf, errlen)) != CF_OK ||
        (st = copy(ce->type, sizeof(ce->type), type, "type", errbuf, errlen)) != CF_OK)
        return st;
    cf_avro_format_millis(occurred_at_ms, ce->time, sizeof(ce->time));
    ce->headers[0] = (struct cf_header){"ce_specversion", "1.0", 3};
    ce->headers[1] = (struct cf_header){"ce_id", ce->id, strlen(ce->id)};
    ce->headers[2] = (struct cf_header){"ce_source", ce->source, strlen(ce->source)};
    ce->headers[3] = (struct cf_header){"ce_type", ce->type, strlen(ce->type)};
    ce->headers[4] = (struct cf_header){"ce_time", ce->time, strlen(ce->time)};
    ce->headers[5] = (struct cf_header){"content-type", "application/avro", 16};
    return CF_OK;
}

cf_status cf_cloudevent_from_json(struct cf_cloudevent *ce, const char *service,
                                  const char *type, const json_t *record, char *errbuf,
                                  size_t errlen)
{
    const json_t *meta = json_object_get(record, "meta");
    const json_t *at = json_object_get(meta, "occurred_at");
    int64_t ms = 0;
    if (json_is_integer(at))
        ms = json_integer_value(at);
    else if (!json_is_string(at) || cf_avro_parse_millis(json_string_value(at), &ms) != CF_OK)
        return cf_fail(errbuf, errlen, CF_EINVAL, "CloudEvents time: meta.occurred_at missing "
                                                  "or not a time");
    return cf_cloudevent_init(ce, service, type,
                              json_string_value(json_object_get(meta, "event_id")), ms, errbuf,
                              errlen);
}

cf_status cf_cloudevent_emit(struct cf_serde *serde, const char *service, const char *topic,
                             const char *type, const char *key, const json_t *event,
                             struct cf_kafka_out *out, char *errbuf, size_t errlen)
{
    unsigned char *wire = NULL;
    size_t wire_len = 0;
    struct cf_cloudevent ce;
    cf_status st = cf_serde_encode_json(serde, topic, event, &wire, &wire_len, errbuf, errlen);
    if (st == CF_OK)
        st = cf_cloudevent_from_json(&ce, service, type, event, errbuf, errlen);
    if (st == CF_OK && (st = cf_kafka_out_add(out, topic, key, strlen(key), wire, wire_len,
                                              ce.headers, CF_CE_HEADER_COUNT)) != CF_OK)
        (void)cf_fail(errbuf, errlen, st, "output: %s", cf_strerror(st));
    free(wire);
    return st;
}
