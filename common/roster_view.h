/* roster_view.h — a service's in-memory view of a compacted roster topic
 * (caseflow.roster.care-managers, caseflow.roster.specialists): the newest record of every key,
 * decoded to caseflow's JSON form, with tombstones removing their key (DESIGN.md §2, §4).
 *
 * Every replica needs the whole roster, so the view reads all partitions with a consumer of no
 * group, from the beginning, committing nothing. It is not thread-safe and uses the caller's
 * codec: call it from the thread that runs the service's loop (the handler or the timer), never
 * from another one.
 *
 * A record that cannot be decoded, or whose key does not equal the entry's id field, is skipped
 * with a warning that names the topic, partition and offset (never the record), and counted. */
#ifndef CF_ROSTER_VIEW_H
#define CF_ROSTER_VIEW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "avro_serde.h"
#include "config.h"
#include "status.h"

struct cf_roster_view;

/* Creates the view of topic (one of the compacted topics of common/topics.c, whose key_field
 * names the id) with the KAFKA_* properties of config (NULL: the defaults). serde is borrowed
 * and must outlive the view. Nothing is read yet. On CF_OK *out is the caller's, freed with
 * cf_roster_view_free. CF_EINVAL for a topic that is not a compacted caseflow topic. */
cf_status cf_roster_view_new(const struct cf_config *config, struct cf_serde *serde,
                             const char *topic, struct cf_roster_view **out, char *errbuf,
                             size_t errlen);

/* Reads until the view holds every record that was on the topic when this was called (every
 * partition's position at its end offset at the time), waiting up to timeout_ms. A service
 * calls it once before its loop starts, so no case is matched against a half-read roster.
 * CF_ETIMEOUT if the end was not reached in time (what was read is kept), CF_EKAFKA if the
 * broker could not be asked for the end offsets. */
cf_status cf_roster_view_sync(struct cf_roster_view *view, int timeout_ms, char *errbuf,
                              size_t errlen);

/* Applies whatever records have arrived since the last call, without waiting. *changed (may be
 * NULL) is set true when an entry was added, replaced or removed. CF_EKAFKA for a consumer
 * error (logged; the view stays as it was and the next call goes on). */
cf_status cf_roster_view_poll(struct cf_roster_view *view, bool *changed, char *errbuf,
                              size_t errlen);

/* The entries: a JSON object id → entry (the record in caseflow's JSON form, active = false
 * ones included), owned by the view and valid until the next _sync, _poll or _free. Never
 * NULL. */
const json_t *cf_roster_view_entries(const struct cf_roster_view *view);

/* The entry with this id, or NULL (borrowed, valid as _entries). */
const json_t *cf_roster_view_find(const struct cf_roster_view *view, const char *id);

/* Grows by one each time the entries change, so a service can rebuild what it derives from
 * them only when needed. Starts at 0. */
uint64_t cf_roster_view_version(const struct cf_roster_view *view);

/* Records skipped because they could not be decoded or their key did not match. */
uint64_t cf_roster_view_skipped(const struct cf_roster_view *view);

/* Closes the consumer and frees the entries. NULL-safe. */
void cf_roster_view_free(struct cf_roster_view *view);

#endif
