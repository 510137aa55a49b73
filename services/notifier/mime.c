/* mime.c — an email as RFC 5322 + MIME text (see mime.h). */
#include "mime.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "sha1.h"

/* The most a message (headers and encoded bodies) or one header value may take. */
#define MIME_MAX_OUTPUT ((size_t)1024 * 1024)
/* RFC 5322 2.1.1: a line SHOULD be at most 78 characters (without CRLF). */
#define MIME_LINE_MAX 78
/* RFC 2047 2: an encoded-word is at most 75 characters. */
#define MIME_WORD_MAX 75
/* "=?UTF-8?B?" and "?=" around the base64 of an encoded-word. */
#define MIME_WORD_PREFIX "=?UTF-8?B?"
#define MIME_WORD_OVERHEAD 12
/* RFC 2045 6.8: base64 lines of at most 76 characters, i.e. 57 input bytes. */
#define MIME_B64_LINE_BYTES 57
/* RFC 5322 2.1.1: a line MUST be at most 998 characters; "Message-ID: " takes 12. */
#define MIME_MSGID_MAX 986
/* RFC 5321 4.5.3.1.2: a domain label is at most 63 octets. */
#define MIME_LABEL_MAX 63
/* The boundary is tried with this many salts before giving up (the first always fits: base64
 * has no '_', and '=' only as padding at a line's end). */
#define MIME_BOUNDARY_TRIES 8

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* A growable NUL-terminated buffer with a cap. The first failure sticks in err and makes
 * later appends no-ops, so a sequence of appends is checked once at its end. */
struct mbuf {
    char *data;
    size_t len;
    size_t size;
    size_t max;
    cf_status err;
};

static void mbuf_add(struct mbuf *b, const char *p, size_t n)
{
    if (b->err != CF_OK)
        return;
    if (n > b->max || b->len > b->max - n) {
        b->err = CF_ETOOBIG;
        return;
    }
    if (b->len + n + 1 > b->size) {
        size_t size = b->size ? b->size : 256;
        while (size < b->len + n + 1)
            size *= 2;
        /* max + 1 bounds the doubling: the data never needs more. */
        if (size > b->max + 1)
            size = b->max + 1;
        char *data = realloc(b->data, size);
        if (data == NULL) {
            b->err = CF_ENOMEM;
            return;
        }
        b->data = data;
        b->size = size;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void mbuf_str(struct mbuf *b, const char *s)
{
    mbuf_add(b, s, strlen(s));
}

/* Fails with the buffer's sticky error, naming what was being written. */
static cf_status mbuf_fail(const struct mbuf *b, const char *what, char *errbuf, size_t errlen)
{
    if (b->err == CF_ETOOBIG)
        return cf_fail(errbuf, errlen, CF_ETOOBIG, "%s: over %zu bytes", what, b->max);
    return cf_fail(errbuf, errlen, b->err, "%s: out of memory", what);
}

/* Base64 (RFC 4648, with padding) of in[0..n) into out, which holds 4 * ceil(n / 3) bytes;
 * returns the length written. */
static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 0x3F];
        out[o++] = b64_alphabet[(v >> 12) & 0x3F];
        out[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 0x3F] : '=';
        out[o++] = i + 2 < n ? b64_alphabet[v & 0x3F] : '=';
    }
    return o;
}

/* CF_OK if text is UTF-8 (RFC 3629: utf8proc refuses overlong forms, surrogates and code
 * points over U+10FFFF), else CF_EINVAL naming field and the byte offset, never the text. */
static cf_status utf8_check(const char *text, const char *field, char *errbuf, size_t errlen)
{
    size_t len = strlen(text);
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t c = 0;
        utf8proc_ssize_t n =
            utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &c);
        if (n <= 0)
            return cf_fail(errbuf, errlen, CF_EINVAL, "%s: invalid UTF-8 at byte %zu", field, i);
        i += (size_t)n;
    }
    return CF_OK;
}

/* Bytes of the UTF-8 character whose first byte is lead (the text is already checked). */
static size_t utf8_char_len(unsigned char lead)
{
    if (lead < 0x80)
        return 1;
    if (lead < 0xE0)
        return 2;
    if (lead < 0xF0)
        return 3;
    return 4;
}

/* A copy of text (checked UTF-8) with every control character as one space: C0 (CR, LF and
 * TAB included), DEL and C1 (U+0080..U+009F, whose NEL some software treats as a line end).
 * NULL when out of memory. */
static char *sanitize(const char *text)
{
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)text[i];
        size_t n = utf8_char_len(c);
        if (c < 0x20 || c == 0x7F || (c == 0xC2 && (unsigned char)text[i + 1] < 0xA0)) {
            copy[o++] = ' ';
        } else {
            memcpy(copy + o, text + i, n);
            o += n;
        }
        i += n;
    }
    copy[o] = '\0';
    return copy;
}

/* True if text may go out as it is: RFC 5322 atext and single spaces between words (so it is
 * a phrase of atoms in a display name as well as unstructured text in a Subject), nothing a
 * decoder could take for an encoded-word ("=?"), no leading or trailing space. '.' is left out
 * because an unquoted "." in a display name is obsolete syntax (RFC 5322 4.1). */
static bool plain_ok(const char *text)
{
    static const char specials[] = "!#$%&'*+-/=?^_`{|}~";
    for (size_t i = 0; text[i] != '\0'; i++) {
        unsigned char c = (unsigned char)text[i];
        bool atext = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     (c != '\0' && strchr(specials, c) != NULL);
        if (c == ' ') {
            if (i == 0 || text[i + 1] == ' ' || text[i + 1] == '\0')
                return false;
        } else if (!atext) {
            return false;
        } else if (c == '=' && text[i + 1] == '?') {
            return false;
        }
    }
    return true;
}

/* Appends plain text (plain_ok) folded at its spaces so no line exceeds MIME_LINE_MAX; *col
 * is the current line's length before and after. False (nothing appended) when a word is too
 * long for any line, so the caller encodes instead. */
static bool fold_plain(struct mbuf *b, const char *text, size_t *col)
{
    size_t c = *col;
    /* First pass decides, so a refusal appends nothing: the first word must fit after the
     * header name, every other one on a continuation line of its own. */
    for (const char *w = text; *w != '\0';) {
        size_t n = strcspn(w, " ");
        if ((w == text ? c : 1) + n > MIME_LINE_MAX)
            return false;
        w += n + (w[n] == ' ');
    }
    for (const char *w = text; *w != '\0';) {
        size_t n = strcspn(w, " ");
        if (w != text && c + 1 + n <= MIME_LINE_MAX) {
            mbuf_add(b, " ", 1);
            c += 1 + n;
        } else if (w != text) {
            /* The space becomes folding whitespace; unfolding gives it back. */
            mbuf_add(b, "\r\n ", 3);
            c = 1 + n;
        } else {
            c += n;
        }
        mbuf_add(b, w, n);
        w += n + (w[n] == ' ');
    }
    *col = c;
    return true;
}

/* Appends text (sanitized UTF-8) as encoded-words, each on its own line after the first, each
 * holding whole characters. *col as for fold_plain. When not even one character fits after
 * the header name, the value starts with a fold. */
static void fold_encoded(struct mbuf *b, const char *text, size_t *col)
{
    size_t len = strlen(text), c = *col;
    bool new_line = false;
    for (size_t i = 0; i < len;) {
        size_t room = MIME_LINE_MAX - (new_line ? 1 : (c < MIME_LINE_MAX ? c : MIME_LINE_MAX));
        size_t word = room < MIME_WORD_MAX ? room : MIME_WORD_MAX;
        size_t b64 = word > MIME_WORD_OVERHEAD ? (word - MIME_WORD_OVERHEAD) / 4 * 4 : 0;
        size_t bytes = b64 / 4 * 3;
        size_t take = 0;
        while (i + take < len) {
            size_t n = utf8_char_len((unsigned char)text[i + take]);
            if (take + n > bytes)
                break;
            take += n;
        }
        /* RFC 2047 decoders drop the fold between two words, but some (CPython's display-name
         * parser, gh-128110) keep it as a space: ending a word after a space of the text, when
         * there is one in its second half, makes that a doubled space and not a split word. */
        if (i + take < len) {
            for (size_t k = take; k > take / 2; k--) {
                if (text[i + k - 1] == ' ') {
                    take = k;
                    break;
                }
            }
        }
        if (new_line) {
            /* Whitespace between two encoded-words is dropped by decoders (RFC 2047 6.2). */
            mbuf_add(b, "\r\n ", 3);
            c = 1;
        }
        new_line = true;
        /* Only the first line can be too short for a character; a continuation line has
         * room for 45 bytes. */
        if (take == 0)
            continue;
        char enc[MIME_WORD_MAX];
        size_t enc_len = b64_encode((const unsigned char *)text + i, take, enc);
        mbuf_str(b, MIME_WORD_PREFIX);
        mbuf_add(b, enc, enc_len);
        mbuf_add(b, "?=", 2);
        c += MIME_WORD_OVERHEAD + enc_len;
        i += take;
    }
    *col = c;
}

/* Appends text (checked UTF-8) as a header value, as notifier_mime_header_text documents; *col
 * is the length of the line so far, and on return that of the value's last line. */
static cf_status header_value(struct mbuf *b, const char *text, size_t *col)
{
    char *clean = sanitize(text);
    if (clean == NULL) {
        b->err = b->err != CF_OK ? b->err : CF_ENOMEM;
        return b->err;
    }
    if (!plain_ok(clean) || !fold_plain(b, clean, col))
        fold_encoded(b, clean, col);
    free(clean);
    return b->err;
}

/* notifier_mime_header_text: see mime.h. */
cf_status notifier_mime_header_text(const char *text, size_t header_len, char **out, char *errbuf,
                                    size_t errlen)
{
    struct mbuf b = {NULL, 0, 0, MIME_MAX_OUTPUT, CF_OK};
    cf_status st = CF_OK;
    size_t col = header_len;

    if (out != NULL)
        *out = NULL;
    if (text == NULL || out == NULL) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "header text: NULL argument");
        goto out;
    }
    if (strlen(text) > MIME_MAX_OUTPUT) {
        st = cf_fail(errbuf, errlen, CF_ETOOBIG, "header text: over %zu bytes", MIME_MAX_OUTPUT);
        goto out;
    }
    if ((st = utf8_check(text, "header text", errbuf, errlen)) != CF_OK)
        goto out;
    /* An empty value still comes back as a string. */
    mbuf_add(&b, "", 0);
    if (header_value(&b, text, &col) != CF_OK) {
        st = mbuf_fail(&b, "header text", errbuf, errlen);
        goto out;
    }
    *out = b.data;
    b.data = NULL;
out:
    free(b.data);
    return st;
}

/* notifier_mime_addr_ok: see mime.h. The local part is a dot-atom (no leading, trailing or
 * doubled '.'), and each domain label is an RFC 5321 sub-domain: letters, digits and '-', not
 * at either end, at most 63 bytes. */
bool notifier_mime_addr_ok(const char *addr)
{
    static const char refused[] = "<>(),;:\\\"[]";
    if (addr == NULL)
        return false;
    size_t len = strlen(addr);
    if (len == 0 || len > NOTIFIER_ADDR_MAX)
        return false;
    const char *at = strchr(addr, '@');
    if (at == NULL || at == addr || strchr(at + 1, '@') != NULL || at[1] == '\0')
        return false;
    for (const char *p = addr; p < at; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7F || strchr(refused, c) != NULL)
            return false;
        if (c == '.' && (p == addr || p + 1 == at || p[1] == '.'))
            return false;
    }
    size_t label = 0;
    for (const char *p = at + 1;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '.' || c == '\0') {
            if (label == 0 || label > MIME_LABEL_MAX || p[-1] == '-')
                return false;
            if (c == '\0')
                return true;
            label = 0;
        } else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   (c == '-' && label > 0)) {
            label++;
        } else {
            return false;
        }
    }
}

/* True if id is "<left@right>": printable ASCII, one '@' with something on both sides, no
 * other angle bracket, short enough for its header line. */
static bool msgid_ok(const char *id)
{
    size_t len = strlen(id);
    if (len < 5 || len > MIME_MSGID_MAX || id[0] != '<' || id[len - 1] != '>')
        return false;
    const char *at = strchr(id, '@');
    if (at == NULL || at == id + 1 || at == id + len - 2 || strchr(at + 1, '@') != NULL)
        return false;
    for (size_t i = 1; i + 1 < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c <= 0x20 || c >= 0x7F || c == '<' || c == '>')
            return false;
    }
    return true;
}

/* "Date: Mon, 07 Dec 2026 04:30:00 +0000" for ms since the epoch into out (with CRLF), with
 * fixed English names so no locale can change it. False if the year is not 1900..9999
 * (RFC 5322 3.3 wants four digits and no year before 1900). */
static bool format_date(int64_t ms, char *out, size_t size)
{
    static const char days[7][4] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    /* Floor division, so an instant before 1970 still has a time of day in 0..86399. */
    int64_t secs = ms / 1000 - (ms % 1000 < 0);
    int64_t day = secs / 86400 - (secs % 86400 < 0);
    int64_t tod = secs - day * 86400;
    /* civil_from_days (H. Hinnant): day 0 is 1970-01-01 (a Thursday); eras of 400 years
     * starting on 1 March. */
    int64_t z = day + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t mday = doy - (153 * mp + 2) / 5 + 1;
    int64_t month = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = yoe + era * 400 + (month <= 2);
    if (year < 1900 || year > 9999)
        return false;
    int64_t wday = ((day % 7) + 7) % 7;
    int n = snprintf(out, size, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[wday],
                     (int)mday, months[month - 1], (int)year, (int)(tod / 3600),
                     (int)(tod / 60 % 60), (int)(tod % 60));
    return n > 0 && (size_t)n < size;
}

/* Appends "Name: display <addr>\r\n", or "Name: addr\r\n" without a display name (NULL or
 * empty). The address moves to a continuation line when it does not fit after the name; an
 * address cannot be folded, so a very long one makes a line of up to 256 characters. */
static void address_header(struct mbuf *b, const char *header, const char *name, const char *addr)
{
    size_t col = strlen(header) + 2;
    mbuf_str(b, header);
    mbuf_add(b, ": ", 2);
    if (name != NULL && name[0] != '\0') {
        if (header_value(b, name, &col) != CF_OK)
            return;
        if (col + 2 + strlen(addr) + 1 > MIME_LINE_MAX)
            mbuf_add(b, "\r\n <", 4);
        else
            mbuf_add(b, " <", 2);
        mbuf_str(b, addr);
        mbuf_add(b, ">", 1);
    } else {
        mbuf_str(b, addr);
    }
    mbuf_add(b, "\r\n", 2);
}

/* Appends text as the canonical form of a text part (every LF, CR or CRLF as CRLF, RFC 2046
 * 4.1.1) in base64 lines of 76 characters, each ending in CRLF. */
static void body_base64(struct mbuf *b, const char *text)
{
    unsigned char chunk[MIME_B64_LINE_BYTES];
    char line[MIME_B64_LINE_BYTES / 3 * 4 + 2];
    size_t used = 0;
    /* A CRLF of the canonical form may straddle two chunks, so it is queued a byte at a time. */
    for (const char *p = text;; p++) {
        unsigned char pending[2];
        size_t npending = 0;
        if (*p == '\r' || *p == '\n') {
            pending[npending++] = '\r';
            pending[npending++] = '\n';
            if (*p == '\r' && p[1] == '\n')
                p++;
        } else if (*p != '\0') {
            pending[npending++] = (unsigned char)*p;
        }
        for (size_t k = 0; k < npending; k++) {
            chunk[used++] = pending[k];
            if (used == sizeof(chunk)) {
                size_t n = b64_encode(chunk, used, line);
                line[n++] = '\r';
                line[n++] = '\n';
                mbuf_add(b, line, n);
                used = 0;
            }
        }
        if (*p == '\0')
            break;
    }
    if (used > 0) {
        size_t n = b64_encode(chunk, used, line);
        line[n++] = '\r';
        line[n++] = '\n';
        mbuf_add(b, line, n);
    }
}

/* The boundary for message_id: "=_cf_" and the SHA1 of the id (with a salt after the first
 * try), into out. */
static void make_boundary(const char *message_id, unsigned salt, char *out, size_t size)
{
    char hex[CF_SHA1_HEX_LEN + 1];
    char salted[MIME_MSGID_MAX + 16];
    int n = salt == 0 ? snprintf(salted, sizeof(salted), "%s", message_id)
                      : snprintf(salted, sizeof(salted), "%s/%u", message_id, salt);
    cf_sha1_hex(salted, n > 0 ? (size_t)n : 0, hex);
    (void)snprintf(out, size, "=_cf_%s", hex);
}

/* notifier_mime_build: see mime.h. */
cf_status notifier_mime_build(const struct notifier_mail *mail, char **out, size_t *len,
                              char *errbuf, size_t errlen)
{
    struct mbuf msg = {NULL, 0, 0, MIME_MAX_OUTPUT, CF_OK};
    struct mbuf text = {NULL, 0, 0, MIME_MAX_OUTPUT, CF_OK};
    struct mbuf html = {NULL, 0, 0, MIME_MAX_OUTPUT, CF_OK};
    cf_status st = CF_OK;
    char date[128];
    char boundary[8 + CF_SHA1_HEX_LEN];
    size_t col = 0;

    if (out != NULL)
        *out = NULL;
    if (len != NULL)
        *len = 0;
    if (mail == NULL || out == NULL || len == NULL) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "mail: NULL argument");
        goto out;
    }
    /* Every check names the field but never echoes its value (personal data). */
    const struct {
        const char *name;
        const char *value;
        bool optional;
    } texts[] = {
        {"from_name", mail->from_name, true}, {"from_addr", mail->from_addr, false},
        {"to_name", mail->to_name, true},     {"to_addr", mail->to_addr, false},
        {"subject", mail->subject, false},    {"text", mail->text, false},
        {"html", mail->html, false},          {"message_id", mail->message_id, false},
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        if (texts[i].value == NULL) {
            if (texts[i].optional)
                continue;
            st = cf_fail(errbuf, errlen, CF_EINVAL, "%s: missing", texts[i].name);
            goto out;
        }
        if (strlen(texts[i].value) > MIME_MAX_OUTPUT) {
            st = cf_fail(errbuf, errlen, CF_ETOOBIG, "%s: over %zu bytes", texts[i].name,
                         MIME_MAX_OUTPUT);
            goto out;
        }
        if ((st = utf8_check(texts[i].value, texts[i].name, errbuf, errlen)) != CF_OK)
            goto out;
    }
    if (!notifier_mime_addr_ok(mail->from_addr)) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "from_addr: not a plain address");
        goto out;
    }
    if (!notifier_mime_addr_ok(mail->to_addr)) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "to_addr: not a plain address");
        goto out;
    }
    if (!msgid_ok(mail->message_id)) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "message_id: not <...@...> of printable ASCII");
        goto out;
    }
    if (!format_date(mail->date_ms, date, sizeof(date))) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "date_ms: year outside 1900..9999");
        goto out;
    }

    /* The parts first, so the boundary can be checked against them. */
    body_base64(&text, mail->text);
    body_base64(&html, mail->html);
    mbuf_add(&text, "", 0);
    mbuf_add(&html, "", 0);
    if (text.err != CF_OK || html.err != CF_OK) {
        st = mbuf_fail(text.err != CF_OK ? &text : &html, "body", errbuf, errlen);
        goto out;
    }
    unsigned salt = 0;
    for (; salt < MIME_BOUNDARY_TRIES; salt++) {
        make_boundary(mail->message_id, salt, boundary, sizeof(boundary));
        if (strstr(text.data, boundary) == NULL && strstr(html.data, boundary) == NULL)
            break;
    }
    if (salt == MIME_BOUNDARY_TRIES) {
        st = cf_fail(errbuf, errlen, CF_EINVAL, "body: no boundary free of the parts");
        goto out;
    }

    mbuf_str(&msg, date);
    address_header(&msg, "From", mail->from_name, mail->from_addr);
    address_header(&msg, "To", mail->to_name, mail->to_addr);
    /* An empty subject gets no space after the colon (no trailing whitespace). */
    mbuf_str(&msg, mail->subject[0] != '\0' ? "Subject: " : "Subject:");
    col = strlen("Subject: ");
    (void)header_value(&msg, mail->subject, &col);
    mbuf_add(&msg, "\r\n", 2);
    mbuf_str(&msg, "Message-ID: ");
    mbuf_str(&msg, mail->message_id);
    mbuf_str(&msg, "\r\nMIME-Version: 1.0\r\n"
                   "Content-Type: multipart/alternative;\r\n boundary=\"");
    mbuf_str(&msg, boundary);
    mbuf_str(&msg, "\"\r\n\r\n--");
    mbuf_str(&msg, boundary);
    mbuf_str(&msg, "\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                   "Content-Transfer-Encoding: base64\r\n\r\n");
    mbuf_add(&msg, text.data, text.len);
    mbuf_str(&msg, "--");
    mbuf_str(&msg, boundary);
    mbuf_str(&msg, "\r\nContent-Type: text/html; charset=UTF-8\r\n"
                   "Content-Transfer-Encoding: base64\r\n\r\n");
    mbuf_add(&msg, html.data, html.len);
    mbuf_str(&msg, "--");
    mbuf_str(&msg, boundary);
    mbuf_str(&msg, "--\r\n");
    if (msg.err != CF_OK) {
        st = mbuf_fail(&msg, "message", errbuf, errlen);
        goto out;
    }
    *out = msg.data;
    *len = msg.len;
    msg.data = NULL;
out:
    free(html.data);
    free(text.data);
    free(msg.data);
    return st;
}
