/* sms_size.h — how an SMS text travels: in the GSM 03.38 7-bit alphabet when every character
 * is in it (160 septets in one message, 153 per part of a longer one, the extension characters
 * ^ { } \ [ ~ ] | € and form feed taking two), otherwise in UCS-2 (70 UTF-16 code units in
 * one message, 67 per part). The notifier reports the segment count with each SMS, because
 * providers bill per segment and a single character outside GSM-7 more than halves what fits. */
#ifndef NOTIFIER_SMS_SIZE_H
#define NOTIFIER_SMS_SIZE_H

#include <stddef.h>

#include "status.h"

enum notifier_sms_encoding {
    NOTIFIER_SMS_GSM7,
    NOTIFIER_SMS_UCS2,
};

struct notifier_sms_size {
    enum notifier_sms_encoding encoding;
    size_t units;    /* septets (GSM-7) or UTF-16 code units (UCS-2) */
    size_t segments; /* messages the provider sends */
};

/* The size of text[0..len) (UTF-8) into *out. A part never ends inside a two-septet extension
 * character or a surrogate pair: the character moves to the next part, as handsets and
 * providers split. CF_EINVAL (errbuf says where) for empty or invalid UTF-8 text. */
cf_status notifier_sms_size(const char *text, size_t len, struct notifier_sms_size *out,
                            char *errbuf, size_t errlen);

#endif
