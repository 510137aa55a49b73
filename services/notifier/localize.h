/* localize.h — dates and times as the patient reads them: in the patient's language (ICU
 * locale data) and time zone, e.g. "Tuesday, December 8, 2026 at 9:00 AM Central Standard
 * Time" for en / America/Chicago, "martes, 8 de diciembre de 2026, 9:00 hora estándar
 * central" for es. ICU picks the order, words and 12/24-hour clock of the locale from a
 * skeleton (udatpg), so no format is hand-written per language.
 *
 * Formatters are cached per (language, zone, kind): opening one costs far more than using it.
 * Not thread-safe (one per thread), like the ICU formatters it holds. */
#ifndef NOTIFIER_LOCALIZE_H
#define NOTIFIER_LOCALIZE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

enum notifier_when {
    NOTIFIER_WHEN_DATETIME, /* weekday, date, time and the zone's long name */
    NOTIFIER_WHEN_DATE,     /* weekday and date only */
};

/* Longest formatted text, NUL included. */
#define NOTIFIER_WHEN_MAX 192

struct notifier_localize;

/* A new empty cache into *out; CF_ENOMEM. Free with notifier_localize_free. */
cf_status notifier_localize_new(struct notifier_localize **out);

/* NULL-safe. */
void notifier_localize_free(struct notifier_localize *l);

/* Formats the instant utc_ms as kind for language lang (a BCP 47 tag; ICU falls back to its
 * root data for a language it lacks) in the IANA zone zone (cf_tz_known) into buf
 * (NOTIFIER_WHEN_MAX bytes). For NOTIFIER_WHEN_DATE of a calendar date (an Avro date), pass the
 * date's midnight UTC and zone "UTC". CF_EINVAL for an unknown zone or a tag ICU refuses. */
cf_status notifier_localize_format(struct notifier_localize *l, const char *lang, const char *zone,
                                   enum notifier_when kind, int64_t utc_ms,
                                   char buf[NOTIFIER_WHEN_MAX], char *errbuf, size_t errlen);

#endif
