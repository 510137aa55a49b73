/* cloudevents.h — the CloudEvents Kafka headers every caseflow record carries (binary mode):
 * ce_specversion "1.0", ce_id (the event's meta.event_id), ce_source ("/caseflow/<service>"),
 * ce_type (the schema's full name, "caseflow.event.CaseOpened"), ce_time (meta.occurred_at,
 * RFC 3339) and content-type ("application/avro": Confluent wire format in the value). */
#ifndef CF_CLOUDEVENTS_H
#define CF_CLOUDEVENTS_H

#include <jansson.h>
#include <stdint.h>

#include "avro_serde.h"
#include "kafka.h"

#define CF_CE_HEADER_COUNT 6

/* The headers and the text they point to; lives on the caller's stack. */
struct cf_cloudevent {
    char id[64];
    char source[96];
    char type[160];
    char time[40];
    struct cf_header headers[CF_CE_HEADER_COUNT];
};

/* Fills ce for one event. CF_EINVAL (naming the attribute) when event_id is not a UUID or a
 * text is too long. */
cf_status cf_cloudevent_init(struct cf_cloudevent *ce, const char *service, const char *type,
                             const char *event_id, int64_t occurred_at_ms, char *errbuf,
                             size_t errlen);

/* The same from a record in caseflow's JSON form (avro_convert.h), reading meta.event_id and
 * meta.occurred_at. */
cf_status cf_cloudevent_from_json(struct cf_cloudevent *ce, const char *service,
                                  const char *type, const json_t *record, char *errbuf,
                                  size_t errlen);

/* What every service does with an event it emits: encodes event (caseflow's JSON form) with
 * topic's schema through serde, makes its CloudEvents headers (source service, ce_type type)
 * and queues it on out keyed by key. The caller keeps event; out copies what it queues. Any
 * failure is reported in errbuf ("output: ..." when out refuses the record). */
cf_status cf_cloudevent_emit(struct cf_serde *serde, const char *service, const char *topic,
                             const char *type, const char *key, const json_t *event,
                             struct cf_kafka_out *out, char *errbuf, size_t errlen);

#endif
