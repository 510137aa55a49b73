/* sms_size.c — GSM-7 or UCS-2, and how many segments (see sms_size.h). */
#include "sms_size.h"

#include <stdbool.h>
#include <stdint.h>

#include <utf8proc.h>

#define GSM7_SINGLE 160
#define GSM7_PART 153
#define UCS2_SINGLE 70
#define UCS2_PART 67

/* Septets of code point c in the GSM 03.38 default alphabet: 1 for the basic table, 2 for the
 * extension table (reached by an escape), 0 when c is in neither. */
static int gsm7_septets(int32_t c)
{
    /* The basic table's characters outside printable ASCII, and the ASCII it lacks. */
    static const int32_t basic[] = {
        0x00A3, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, 0x00F2, 0x00C7, 0x00D8, 0x00F8,
        0x00C5, 0x00E5, 0x0394, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8, 0x03A3,
        0x0398, 0x039E, 0x00C6, 0x00E6, 0x00DF, 0x00C9, 0x00A4, 0x00A1, 0x00C4, 0x00D6,
        0x00D1, 0x00DC, 0x00A7, 0x00BF, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0};
    static const int32_t extension[] = {'^', '{', '}', '\\', '[', '~', ']', '|', 0x20AC, 0x0C};
    if (c == '\n' || c == '\r')
        return 1;
    for (size_t i = 0; i < sizeof(extension) / sizeof(extension[0]); i++)
        if (c == extension[i])
            return 2;
    /* Printable ASCII is basic but for ` (absent) and the extension characters above. */
    if (c >= 0x20 && c <= 0x7E)
        return c == '`' ? 0 : 1;
    for (size_t i = 0; i < sizeof(basic) / sizeof(basic[0]); i++)
        if (c == basic[i])
            return 1;
    return 0;
}

/* Parts needed for characters of the given widths (in units), a part holding `part` units
 * and no character split across two. */
struct packer {
    size_t part, used, parts;
};

static void pack(struct packer *p, size_t width)
{
    if (p->parts == 0 || p->used + width > p->part) {
        p->parts++;
        p->used = 0;
    }
    p->used += width;
}

cf_status notifier_sms_size(const char *text, size_t len, struct notifier_sms_size *out,
                            char *errbuf, size_t errlen)
{
    size_t septets = 0, utf16 = 0;
    bool gsm7 = true;

    if (text == NULL || len == 0 || out == NULL)
        return cf_fail(errbuf, errlen, CF_EINVAL, "SMS text: empty");
    /* First pass: the encoding and the total, which decide between one message and parts. */
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t c = 0;
        utf8proc_ssize_t n =
            utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &c);
        if (n <= 0)
            return cf_fail(errbuf, errlen, CF_EINVAL, "SMS text: invalid UTF-8 at byte %zu", i);
        int s = gsm7_septets(c);
        gsm7 = gsm7 && s > 0;
        septets += (size_t)s;
        utf16 += c > 0xFFFF ? 2 : 1;
        i += (size_t)n;
    }
    out->encoding = gsm7 ? NOTIFIER_SMS_GSM7 : NOTIFIER_SMS_UCS2;
    out->units = gsm7 ? septets : utf16;
    if (out->units <= (gsm7 ? GSM7_SINGLE : UCS2_SINGLE)) {
        out->segments = 1;
        return CF_OK;
    }
    /* Second pass: fill parts character by character. */
    struct packer p = {gsm7 ? GSM7_PART : UCS2_PART, 0, 0};
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t c = 0;
        utf8proc_ssize_t n =
            utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &c);
        pack(&p, gsm7 ? (size_t)gsm7_septets(c) : (c > 0xFFFF ? 2u : 1u));
        i += (size_t)n;
    }
    out->segments = p.parts;
    return CF_OK;
}
