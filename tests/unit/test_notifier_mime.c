/* test_notifier_mime.c — the email as the SMTP server receives it (services/notifier/mime.h):
 * encoded-words that decode back to the text, lines within 78 characters, no UTF-8 character
 * split, no header injected through a subject or a name, the multipart structure, the Date. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "mime.h"
#include "sha1.h"

#define WORD_PREFIX "=?UTF-8?B?"
#define MAX_LINES 8192

/* text made of `count` copies of piece, into buf. */
static const char *repeat(char *buf, size_t size, const char *piece, size_t count)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < count; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s", piece);
    assert_true(used < size - 1);
    return buf;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes padded base64 in[0..n) (CRLF allowed between quads) onto out at *used. */
static void b64_decode(const char *in, size_t n, unsigned char *out, size_t size, size_t *used)
{
    unsigned char quad[4];
    size_t q = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '\r' || in[i] == '\n') {
            assert_int_equal(q, 0);
            continue;
        }
        assert_int_equal(pad, 0);
        if (in[i] == '=') {
            assert_true(q >= 2);
            /* Padding only at the end of the quad. */
            while (q < 4) {
                assert_true(i < n && in[i] == '=');
                quad[q++] = 0;
                i++;
                pad++;
            }
            i--;
        } else {
            int v = b64_value(in[i]);
            assert_true(v >= 0);
            quad[q++] = (unsigned char)v;
        }
        if (q == 4) {
            unsigned char bytes[3] = {(unsigned char)(quad[0] << 2 | quad[1] >> 4),
                                      (unsigned char)(quad[1] << 4 | quad[2] >> 2),
                                      (unsigned char)(quad[2] << 6 | quad[3])};
            assert_true(*used + 3 - pad <= size);
            memcpy(out + *used, bytes, 3 - pad);
            *used += 3 - pad;
            q = 0;
        }
    }
    assert_int_equal(q, 0);
}

static bool utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t c = 0;
        utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &c);
        if (k <= 0)
            return false;
        i += (size_t)k;
    }
    return true;
}

/* Checks the folding of a header value whose first line follows header_len characters: every
 * CRLF is followed by a space, no line is over 78 (but a first line holding nothing more than
 * the header name). Returns the number of lines. */
static size_t check_folding(const char *value, size_t header_len)
{
    size_t lines = 1, col = header_len;
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\r') {
            assert_int_equal(p[1], '\n');
            assert_int_equal(p[2], ' ');
            assert_true(col <= 78 || p == value);
            col = 0;
            lines++;
            p++;
        } else {
            assert_int_not_equal(*p, '\n');
            assert_true((unsigned char)*p >= 0x20 && (unsigned char)*p != 0x7F);
            col++;
        }
    }
    assert_true(col <= 78);
    return lines;
}

/* The text a header value stands for, into out (NUL-terminated): encoded-words (one a line,
 * each at most 75 characters and holding whole UTF-8 characters) are decoded and joined,
 * plain text is unfolded. Returns the number of encoded-words. */
static size_t decode_value(const char *value, char *out, size_t size)
{
    size_t used = 0, words = 0;
    /* A value may start with a fold when the header name leaves no room. */
    if (strncmp(value, "\r\n " WORD_PREFIX, 3 + strlen(WORD_PREFIX)) == 0)
        value += 3;
    if (strncmp(value, WORD_PREFIX, strlen(WORD_PREFIX)) != 0) {
        for (const char *p = value; *p != '\0'; p++) {
            assert_true(used + 1 < size);
            if (p[0] == '\r' && p[1] == '\n')
                p++; /* the space after CRLF is the one that was folded */
            else
                out[used++] = *p;
        }
        assert_null(strstr(value, "=?"));
        out[used] = '\0';
        return 0;
    }
    const char *line = value;
    for (;;) {
        const char *end = strstr(line, "\r\n");
        size_t n = end != NULL ? (size_t)(end - line) : strlen(line);
        assert_true(n <= 75);
        assert_true(n > strlen(WORD_PREFIX) + 2);
        assert_memory_equal(line, WORD_PREFIX, strlen(WORD_PREFIX));
        assert_memory_equal(line + n - 2, "?=", 2);
        size_t start = used;
        b64_decode(line + strlen(WORD_PREFIX), n - strlen(WORD_PREFIX) - 2, (unsigned char *)out,
                   size - 1, &used);
        /* Each word decodes on its own to whole characters. */
        assert_true(utf8_valid((const unsigned char *)out + start, used - start));
        words++;
        if (end == NULL)
            break;
        assert_int_equal(end[2], ' ');
        line = end + 3;
    }
    out[used] = '\0';
    return words;
}

/* notifier_mime_header_text(text, header_len) checked for folding, decoded into out;
 * returns the number of encoded-words. */
static size_t header_round_trip(const char *text, size_t header_len, char *out, size_t size)
{
    char *value = NULL;
    char err[128] = "";
    if (notifier_mime_header_text(text, header_len, &value, err, sizeof(err)) != CF_OK)
        fail_msg("%s", err);
    assert_non_null(value);
    check_folding(value, header_len);
    size_t words = decode_value(value, out, size);
    free(value);
    return words;
}

static void test_header_plain(void **state)
{
    (void)state;
    char out[1024];
    char *value = NULL;
    char err[128] = "";
    assert_int_equal(notifier_mime_header_text("Care team", 6, &value, err, sizeof(err)), CF_OK);
    assert_string_equal(value, "Care team");
    free(value);
    assert_int_equal(notifier_mime_header_text("", 9, &value, err, sizeof(err)), CF_OK);
    assert_string_equal(value, "");
    free(value);
    /* Plain text folds at its spaces and unfolds to itself. */
    const char *text = "Your appointment with the care team is confirmed for Monday 7 December "
                       "2026 at 09-15 in room 12 of building B please bring your card";
    assert_int_equal(notifier_mime_header_text(text, 9, &value, err, sizeof(err)), CF_OK);
    assert_null(strstr(value, "=?"));
    assert_true(check_folding(value, 9) >= 2);
    free(value);
    assert_int_equal(header_round_trip(text, 9, out, sizeof(out)), 0);
    assert_string_equal(out, text);
}

static void test_header_encoded(void **state)
{
    (void)state;
    char out[1024];
    char word[128];
    /* Specials, '.', a lookalike encoded-word, edge spaces and over-long words are encoded. */
    const char *texts[] = {
        "Dr. Smith",   "Ana \"x\" <y@z>",
        "a=?b",        " lead",
        "trail ",      "two  spaces",
        "Smith, Ana",  "(note)",
        "a:b;c",       "back\\slash",
        "[x]",         "Ana@care",
        "a\"b",        "a,b",
        "a(b",         "a)b",
        "a<b",         "a>b",
        "a@b",         "a;b",
        "a:b",         "a\\b",
        "a[b",         "a]b",
        "a.b",         "=?UTF-8?B?QQ==?=",
        "caf\xc3\xa9", repeat(word, sizeof(word), "x", 100),
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        if (header_round_trip(texts[i], 6, out, sizeof(out)) == 0)
            fail_msg("\"%s\" not encoded", texts[i]);
        assert_string_equal(out, texts[i]);
    }
}

static void test_header_long_unicode(void **state)
{
    (void)state;
    char text[4096];
    char out[4096];
    const char *subject = "Görüşmeniz 8 Aralık'ta saat 09:15'te — Ваша консультация 8 декабря в "
                          "09:15 😀🎉 Çağrı merkezi: ığüşöç ĞÜŞİÖÇ — Пожалуйста, приходите "
                          "заранее 👍🏽";
    /* Up to header names that leave no room on the first line. */
    size_t header_lens[] = {0, 4, 6, 9, 40, 62, 63, 66, 70, 78, 90};
    for (size_t h = 0; h < sizeof(header_lens) / sizeof(header_lens[0]); h++) {
        assert_true(header_round_trip(subject, header_lens[h], out, sizeof(out)) >= 3);
        assert_string_equal(out, subject);
    }
    /* Four-byte characters only: 45 bytes fit a word, so a split by bytes would cut one. */
    repeat(text, sizeof(text), "😀", 40);
    assert_true(header_round_trip(text, 9, out, sizeof(out)) >= 4);
    assert_string_equal(out, text);
    /* Two- and three-byte characters in every phase against the word size. */
    for (size_t shift = 0; shift < 3; shift++) {
        char mixed[1024];
        snprintf(mixed, sizeof(mixed), "%.*s%s", (int)shift, "ab", repeat(text, 512, "ğ€д", 30));
        assert_true(header_round_trip(mixed, 9, out, sizeof(out)) >= 4);
        assert_string_equal(out, mixed);
    }
}

static void test_header_controls(void **state)
{
    (void)state;
    char out[1024];
    /* CR, LF, TAB, DEL and the C1 NEL become spaces; no CRLF but folding comes out. */
    assert_int_equal(header_round_trip("Ana\r\nBcc: x@evil", 9, out, sizeof(out)), 1);
    assert_string_equal(out, "Ana  Bcc: x@evil");
    header_round_trip("a\tb\x7f"
                      "c\xc2\x85"
                      "d\ne\x01",
                      9, out, sizeof(out));
    assert_string_equal(out, "a b c d e ");
    header_round_trip("\r\n", 9, out, sizeof(out));
    assert_string_equal(out, "  ");
}

static void test_header_invalid_utf8(void **state)
{
    (void)state;
    const char *bad[] = {
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong, three bytes */
        "ok\xed\xa0\x80",   /* a surrogate */
        "\xf4\x90\x80\x80", /* over U+10FFFF */
        "\xe2\x82",         /* cut short */
        "\x80",             /* a lone continuation byte */
        "caf\xe9",          /* Latin-1 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *value = (char *)"untouched";
        char err[128] = "";
        assert_int_equal(notifier_mime_header_text(bad[i], 9, &value, err, sizeof(err)), CF_EINVAL);
        assert_null(value);
        assert_non_null(strstr(err, "UTF-8"));
    }
}

static void test_addr_ok(void **state)
{
    (void)state;
    char buf[512];
    const char *good[] = {"care@example.org", "a.b+tag@sub.example-x.org", "patient@localhost",
                          "o'neil_1!#$%&*/=?^`{|}~-@x.io", "A@B.C"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(notifier_mime_addr_ok(good[i]));
    const char *bad[] = {
        "",
        "care",
        "a b@example.org",
        " a@example.org",
        "a@example.org ",
        "a\r\n@example.org",
        "a@example.org\r\nBcc: x@evil.org",
        "a@example.org\n",
        "a\t@example.org",
        "a@@example.org",
        "a@b@example.org",
        "<a@example.org>",
        "Ana <a@example.org>",
        "a>@example.org",
        "ü@example.org",
        "a@exämple.org",
        "@example.org",
        "a@",
        "a@.org",
        "a@example..org",
        "a@example.org.",
        "a@-example.org",
        "a@example-.org",
        "a@exa_mple.org",
        ".a@example.org",
        "a.@example.org",
        "a..b@example.org",
        "a\"b@example.org",
        "a(b)@example.org",
        "a,b@example.org",
        "a;b@example.org",
        "a:b@example.org",
        "a\\b@example.org",
        "a[b]@example.org",
        "a@[127.0.0.1]",
        "a\x7f@example.org",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (notifier_mime_addr_ok(bad[i]))
            fail_msg("accepted \"%s\"", bad[i]);
    assert_false(notifier_mime_addr_ok(NULL));
    /* 254 bytes pass, 255 do not. */
    char label[80], last[80];
    repeat(label, sizeof(label), "d", 63);
    repeat(last, sizeof(last), "e", 60);
    snprintf(buf, sizeof(buf), "a@%s.%s.%s.%s", label, label, label, last);
    assert_int_equal(strlen(buf), 254);
    assert_true(notifier_mime_addr_ok(buf));
    snprintf(buf, sizeof(buf), "ab@%s.%s.%s.%s", label, label, label, last);
    assert_int_equal(strlen(buf), 255);
    assert_false(notifier_mime_addr_ok(buf));
    /* A label is at most 63 bytes. */
    snprintf(buf, sizeof(buf), "a@%sd.org", label);
    assert_false(notifier_mime_addr_ok(buf));
}

/* The message split at CRLF; a bare CR or LF, or a missing final CRLF, fails the test. */
struct lines {
    const char *at[MAX_LINES];
    size_t len[MAX_LINES];
    size_t n;
    size_t blank; /* the line ending the headers */
};

static struct lines *split_lines(const char *msg, size_t len)
{
    struct lines *l = calloc(1, sizeof(*l));
    assert_non_null(l);
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (msg[i] == '\r') {
            assert_true(i + 1 < len && msg[i + 1] == '\n');
            assert_true(l->n < MAX_LINES);
            l->at[l->n] = msg + start;
            l->len[l->n++] = i - start;
            start = i + 2;
            i++;
        } else {
            assert_int_not_equal(msg[i], '\n');
        }
    }
    assert_int_equal(start, len);
    for (l->blank = 0; l->blank < l->n && l->len[l->blank] > 0; l->blank++)
        ;
    assert_true(l->blank < l->n);
    return l;
}

static bool line_is(const struct lines *l, size_t i, const char *text)
{
    return i < l->n && l->len[i] == strlen(text) && memcmp(l->at[i], text, l->len[i]) == 0;
}

static bool line_starts(const struct lines *l, size_t i, const char *prefix)
{
    return l->len[i] >= strlen(prefix) && memcmp(l->at[i], prefix, strlen(prefix)) == 0;
}

/* The raw (folded) value of header name into out; returns how many times it occurs. */
static size_t header_value(const struct lines *l, const char *name, char *out, size_t size)
{
    char prefix[64];
    size_t count = 0;
    snprintf(prefix, sizeof(prefix), "%s: ", name);
    out[0] = '\0';
    for (size_t i = 0; i < l->blank; i++) {
        if (!line_starts(l, i, prefix))
            continue;
        if (count++ > 0)
            continue;
        size_t used = 0;
        for (size_t k = i; k < l->blank && (k == i || l->at[k][0] == ' '); k++) {
            size_t skip = k == i ? strlen(prefix) : 0;
            int n = snprintf(out + used, size - used, "%s%.*s", k == i ? "" : "\r\n",
                             (int)(l->len[k] - skip), l->at[k] + skip);
            assert_true(n > 0 && (size_t)n < size - used);
            used += (size_t)n;
        }
    }
    return count;
}

/* The display name of an address header value "name <addr>" (decoded) and its address. */
static void split_address(const char *value, char *name, size_t name_size, char *addr,
                          size_t addr_size)
{
    const char *lt = strrchr(value, '<');
    if (lt == NULL) {
        name[0] = '\0';
        snprintf(addr, addr_size, "%s", value);
        return;
    }
    size_t n = (size_t)(lt - value);
    assert_true(n >= 1 && value[n - 1] == ' ');
    n--;
    if (n >= 2 && value[n - 2] == '\r' && value[n - 1] == '\n')
        n -= 2;
    char *raw = calloc(1, n + 1);
    assert_non_null(raw);
    memcpy(raw, value, n);
    decode_value(raw, name, name_size);
    free(raw);
    snprintf(addr, addr_size, "%.*s", (int)(strlen(lt) - 2), lt + 1);
}

/* text with every LF, CR or CRLF as CRLF, into a new string. */
static char *canonical(const char *text)
{
    char *out = calloc(1, 2 * strlen(text) + 1);
    assert_non_null(out);
    size_t o = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '\r' || *p == '\n') {
            out[o++] = '\r';
            out[o++] = '\n';
            if (p[0] == '\r' && p[1] == '\n')
                p++;
        } else {
            out[o++] = *p;
        }
    }
    return out;
}

/* Checks one part from line *i: boundary, its two headers, a blank line, base64 lines of 76
 * (the last at most 76) decoding to the canonical form of body. */
static void check_part(const struct lines *l, size_t *i, const char *boundary, const char *type,
                       const char *body)
{
    char line[128];
    snprintf(line, sizeof(line), "--%s", boundary);
    assert_true(line_is(l, (*i)++, line));
    snprintf(line, sizeof(line), "Content-Type: %s; charset=UTF-8", type);
    assert_true(line_is(l, (*i)++, line));
    assert_true(line_is(l, (*i)++, "Content-Transfer-Encoding: base64"));
    assert_true(line_is(l, (*i)++, ""));
    char *want = canonical(body);
    size_t size = strlen(want) + 4, used = 0;
    unsigned char *got = calloc(1, size);
    assert_non_null(got);
    for (; *i < l->n && !line_starts(l, *i, "--"); (*i)++) {
        assert_true(l->len[*i] <= 76);
        /* Only the last line of a part may be short. */
        if (l->len[*i] < 76)
            assert_true(*i + 1 < l->n && line_starts(l, *i + 1, "--"));
        b64_decode(l->at[*i], l->len[*i], got, size, &used);
    }
    assert_int_equal(used, strlen(want));
    assert_memory_equal(got, want, used);
    free(got);
    free(want);
}

static struct notifier_mail sample_mail(void)
{
    struct notifier_mail mail = {
        .from_name = "Care team",
        .from_addr = "care@example.org",
        .to_name = "Çağrı Şahin-Кузнецова",
        .to_addr = "patient@example.com",
        .subject = "Görüşmeniz 8 Aralık'ta 09:15 — консультация 😀",
        .text = "Merhaba Çağrı,\n\nGörüşmeniz 8 Aralık 2026 saat 09:15'te.\n"
                "Ваша консультация 8 декабря в 09:15.\n.\nFrom: not a header\n--\n",
        .html = "<p>Merhaba Çağrı,</p>\n<p>Görüşmeniz 8 Aralık 2026 saat 09:15'te.</p>\n",
        .message_id = "<3f2a9c1e.email.7b1d@notifier.caseflow>",
        .date_ms = 1796617800000, /* 2026-12-07T04:30:00Z */
    };
    return mail;
}

static char *build_ok(const struct notifier_mail *mail, size_t *len)
{
    char *msg = NULL;
    char err[128] = "";
    if (notifier_mime_build(mail, &msg, len, err, sizeof(err)) != CF_OK)
        fail_msg("%s", err);
    assert_non_null(msg);
    assert_int_equal(strlen(msg), *len);
    return msg;
}

/* Writes the message to $CF_MIME_DUMP when set, to check it with another parser by hand. */
static void maybe_dump(const char *msg, size_t len)
{
    const char *path = getenv("CF_MIME_DUMP");
    if (path == NULL)
        return;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(msg, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void test_message_structure(void **state)
{
    (void)state;
    char big[16384];
    char value[1024], name[512], addr[300];
    struct notifier_mail mail = sample_mail();
    /* A body of many base64 lines. */
    char tail[8192];
    snprintf(big, sizeof(big), "%s%s", mail.text,
             repeat(tail, sizeof(tail), "Satır ğüşıöç строка 😀\n", 200));
    mail.text = big;
    size_t len = 0;
    char *msg = build_ok(&mail, &len);
    maybe_dump(msg, len);
    struct lines *l = split_lines(msg, len);

    /* Seven headers, each once, every line within 78. */
    size_t logical = 0;
    for (size_t i = 0; i < l->blank; i++) {
        assert_true(l->len[i] <= 78);
        assert_true(l->len[i] > 0 && l->at[i][0] != '\t');
        logical += l->at[i][0] != ' ';
    }
    assert_int_equal(logical, 7);
    assert_true(line_starts(l, 0, "Date: "));
    const char *names[] = {"Date",       "From",         "To",          "Subject",
                           "Message-ID", "MIME-Version", "Content-Type"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_int_equal(header_value(l, names[i], value, sizeof(value)), 1);

    header_value(l, "Date", value, sizeof(value));
    assert_string_equal(value, "Mon, 07 Dec 2026 04:30:00 +0000");
    header_value(l, "From", value, sizeof(value));
    assert_string_equal(value, "Care team <care@example.org>");
    header_value(l, "To", value, sizeof(value));
    split_address(value, name, sizeof(name), addr, sizeof(addr));
    assert_string_equal(name, mail.to_name);
    assert_string_equal(addr, mail.to_addr);
    header_value(l, "Subject", value, sizeof(value));
    assert_true(decode_value(value, name, sizeof(name)) >= 1);
    assert_string_equal(name, mail.subject);
    header_value(l, "Message-ID", value, sizeof(value));
    assert_string_equal(value, mail.message_id);
    header_value(l, "MIME-Version", value, sizeof(value));
    assert_string_equal(value, "1.0");

    /* The boundary is "=_cf_" and the SHA1 of the message id. */
    char hex[CF_SHA1_HEX_LEN + 1], boundary[64];
    cf_sha1_hex(mail.message_id, strlen(mail.message_id), hex);
    snprintf(boundary, sizeof(boundary), "=_cf_%s", hex);
    header_value(l, "Content-Type", value, sizeof(value));
    snprintf(name, sizeof(name), "multipart/alternative;\r\n boundary=\"%s\"", boundary);
    assert_string_equal(value, name);

    size_t i = l->blank + 1;
    check_part(l, &i, boundary, "text/plain", mail.text);
    check_part(l, &i, boundary, "text/html", mail.html);
    snprintf(name, sizeof(name), "--%s--", boundary);
    assert_true(line_is(l, i++, name));
    assert_int_equal(i, l->n);
    /* The boundary occurs only on its own lines; no line could end SMTP DATA. */
    size_t seen = 0;
    for (size_t k = 0; k < l->n; k++) {
        assert_false(line_starts(l, k, "."));
        for (size_t at = 0; at + strlen(boundary) <= l->len[k]; at++)
            if (memcmp(l->at[k] + at, boundary, strlen(boundary)) == 0) {
                seen++;
                break;
            }
    }
    assert_int_equal(seen, 1 + 3);
    free(l);
    free(msg);
}

static void test_message_injection(void **state)
{
    (void)state;
    char value[1024], name[512], addr[300];
    struct notifier_mail mail = sample_mail();
    mail.subject = "Hi\r\nBcc: x@evil.org";
    mail.from_name = "Ana\r\nBcc: x@evil.org";
    mail.to_name = "Bob\nTo: y@evil.org\r\n\r\nbody";
    size_t len = 0;
    char *msg = build_ok(&mail, &len);
    struct lines *l = split_lines(msg, len);
    size_t logical = 0, to = 0;
    for (size_t i = 0; i < l->n; i++) {
        assert_false(line_starts(l, i, "Bcc:"));
        to += line_starts(l, i, "To:");
        if (i < l->blank)
            logical += l->at[i][0] != ' ';
    }
    assert_int_equal(logical, 7);
    assert_int_equal(to, 1);
    header_value(l, "Subject", value, sizeof(value));
    decode_value(value, name, sizeof(name));
    assert_string_equal(name, "Hi  Bcc: x@evil.org");
    header_value(l, "From", value, sizeof(value));
    split_address(value, name, sizeof(name), addr, sizeof(addr));
    assert_string_equal(name, "Ana  Bcc: x@evil.org");
    assert_string_equal(addr, "care@example.org");
    header_value(l, "To", value, sizeof(value));
    split_address(value, name, sizeof(name), addr, sizeof(addr));
    assert_string_equal(name, "Bob To: y@evil.org    body");
    assert_string_equal(addr, "patient@example.com");
    free(l);
    free(msg);
}

static void test_message_names(void **state)
{
    (void)state;
    char value[1024], name[512], addr[300];
    char long_name[512];
    struct notifier_mail mail = sample_mail();
    /* No name: the bare address. An empty name counts as none. */
    mail.from_name = NULL;
    mail.to_name = "";
    size_t len = 0;
    char *msg = build_ok(&mail, &len);
    struct lines *l = split_lines(msg, len);
    header_value(l, "From", value, sizeof(value));
    assert_string_equal(value, "care@example.org");
    header_value(l, "To", value, sizeof(value));
    assert_string_equal(value, "patient@example.com");
    free(l);
    free(msg);
    /* A long name folds over several words; the address still fits its line. */
    mail.to_name = repeat(long_name, sizeof(long_name), "Ğülşen Ödemiş ", 8);
    msg = build_ok(&mail, &len);
    l = split_lines(msg, len);
    for (size_t i = 0; i < l->blank; i++)
        assert_true(l->len[i] <= 78);
    header_value(l, "To", value, sizeof(value));
    split_address(value, name, sizeof(name), addr, sizeof(addr));
    assert_string_equal(name, mail.to_name);
    assert_string_equal(addr, mail.to_addr);
    free(l);
    free(msg);
}

static void test_body_line_ends(void **state)
{
    (void)state;
    struct notifier_mail mail = sample_mail();
    mail.text = "a\nb\r\nc\rd\n\n";
    mail.html = "";
    size_t len = 0;
    char *msg = build_ok(&mail, &len);
    struct lines *l = split_lines(msg, len);
    size_t i = l->blank + 1;
    char boundary[64];
    snprintf(boundary, sizeof(boundary), "%.*s", (int)l->len[i] - 2, l->at[i] + 2);
    /* check_part compares with the CRLF form "a\r\nb\r\nc\r\nd\r\n\r\n". */
    check_part(l, &i, boundary, "text/plain", mail.text);
    check_part(l, &i, boundary, "text/html", mail.html);
    free(l);
    free(msg);
}

static void test_date(void **state)
{
    (void)state;
    const struct {
        int64_t ms;
        const char *date;
    } cases[] = {
        {1796617800000, "Mon, 07 Dec 2026 04:30:00 +0000"},
        {0, "Thu, 01 Jan 1970 00:00:00 +0000"},
        {1709251199999, "Thu, 29 Feb 2024 23:59:59 +0000"},
        {951868800000, "Wed, 01 Mar 2000 00:00:00 +0000"},
        {4107585600000, "Mon, 01 Mar 2100 12:00:00 +0000"},
        {-500, "Wed, 31 Dec 1969 23:59:59 +0000"},
        {-2208988800000, "Mon, 01 Jan 1900 00:00:00 +0000"},
        {253402300799999, "Fri, 31 Dec 9999 23:59:59 +0000"},
    };
    char value[128];
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct notifier_mail mail = sample_mail();
        mail.date_ms = cases[k].ms;
        size_t len = 0;
        char *msg = build_ok(&mail, &len);
        struct lines *l = split_lines(msg, len);
        assert_int_equal(header_value(l, "Date", value, sizeof(value)), 1);
        assert_string_equal(value, cases[k].date);
        free(l);
        free(msg);
    }
    const int64_t out_of_range[] = {-2208988800001, 253402300800000, INT64_MIN, INT64_MAX};
    for (size_t k = 0; k < sizeof(out_of_range) / sizeof(out_of_range[0]); k++) {
        struct notifier_mail mail = sample_mail();
        mail.date_ms = out_of_range[k];
        char *msg = NULL;
        size_t len = 0;
        char err[128] = "";
        assert_int_equal(notifier_mime_build(&mail, &msg, &len, err, sizeof(err)), CF_EINVAL);
        assert_non_null(strstr(err, "date_ms"));
    }
}

static void test_deterministic(void **state)
{
    (void)state;
    struct notifier_mail mail = sample_mail();
    size_t len1 = 0, len2 = 0, len3 = 0;
    char *one = build_ok(&mail, &len1);
    char *two = build_ok(&mail, &len2);
    assert_int_equal(len1, len2);
    assert_memory_equal(one, two, len1);
    /* Another message id, another boundary. */
    mail.message_id = "<3f2a9c1e.email.7b1e@notifier.caseflow>";
    char *three = build_ok(&mail, &len3);
    const char *b1 = strstr(one, "boundary=\"");
    const char *b3 = strstr(three, "boundary=\"");
    assert_non_null(b1);
    assert_non_null(b3);
    assert_memory_not_equal(b1, b3, strlen("boundary=\"=_cf_") + CF_SHA1_HEX_LEN);
    free(three);
    free(two);
    free(one);
}

/* notifier_mime_build fails with status, errbuf naming field; *out stays NULL. */
static void assert_refused(const struct notifier_mail *mail, cf_status status, const char *field)
{
    char *msg = (char *)"untouched";
    size_t len = 7;
    char err[256] = "";
    assert_int_equal(notifier_mime_build(mail, &msg, &len, err, sizeof(err)), status);
    assert_null(msg);
    assert_int_equal(len, 0);
    if (strstr(err, field) == NULL)
        fail_msg("error \"%s\" does not name %s", err, field);
}

static void test_refused(void **state)
{
    (void)state;
    struct notifier_mail mail;
    const char *bad_addrs[] = {"a@b.org\r\nBcc: x@evil.org",
                               "a b@b.org",
                               "a@@b.org",
                               "<a@b.org>",
                               "ü@b.org",
                               "a@b.org\n",
                               ""};
    for (size_t i = 0; i < sizeof(bad_addrs) / sizeof(bad_addrs[0]); i++) {
        mail = sample_mail();
        mail.from_addr = bad_addrs[i];
        assert_refused(&mail, CF_EINVAL, "from_addr");
        mail = sample_mail();
        mail.to_addr = bad_addrs[i];
        assert_refused(&mail, CF_EINVAL, "to_addr");
    }
    const char *bad_ids[] = {"id@x",
                             "<id@x",
                             "id@x>",
                             "<idx>",
                             "<@x>",
                             "<id@>",
                             "<i d@x>",
                             "<ü@x>",
                             "<a@b@c>",
                             "<a<b@x>",
                             "<a@x>\r\nBcc: y@z"};
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        mail = sample_mail();
        mail.message_id = bad_ids[i];
        assert_refused(&mail, CF_EINVAL, "message_id");
    }
    mail = sample_mail();
    mail.subject = "bad \xc0\xaf";
    assert_refused(&mail, CF_EINVAL, "subject");
    mail = sample_mail();
    mail.from_name = "\xed\xa0\x80";
    assert_refused(&mail, CF_EINVAL, "from_name");
    mail = sample_mail();
    mail.to_name = "\xf4\x90\x80\x80";
    assert_refused(&mail, CF_EINVAL, "to_name");
    mail = sample_mail();
    mail.text = "caf\xe9";
    assert_refused(&mail, CF_EINVAL, "text");
    mail = sample_mail();
    mail.html = "<p>\xe2\x82</p>";
    assert_refused(&mail, CF_EINVAL, "html");
    mail = sample_mail();
    mail.subject = NULL;
    assert_refused(&mail, CF_EINVAL, "subject");
    mail = sample_mail();
    mail.html = NULL;
    assert_refused(&mail, CF_EINVAL, "html");
    assert_refused(NULL, CF_EINVAL, "mail");
}

static void test_too_big(void **state)
{
    (void)state;
    size_t big = (size_t)1024 * 1024;
    char *text = malloc(big + 2);
    assert_non_null(text);
    /* 600 KiB of body is about 820 KiB of base64: fits. */
    memset(text, 'a', (size_t)600 * 1024);
    text[600 * 1024] = '\0';
    struct notifier_mail mail = sample_mail();
    mail.text = text;
    size_t len = 0;
    char *msg = build_ok(&mail, &len);
    assert_true(len < big);
    free(msg);
    /* 800 KiB is over 1 MiB once encoded; so is the sum of two 400 KiB bodies. */
    memset(text, 'a', (size_t)800 * 1024);
    text[800 * 1024] = '\0';
    assert_refused(&mail, CF_ETOOBIG, "");
    text[400 * 1024] = '\0';
    mail.html = text;
    assert_refused(&mail, CF_ETOOBIG, "");
    /* A subject over 1 MiB. */
    memset(text, 'a', big + 1);
    text[big + 1] = '\0';
    mail = sample_mail();
    mail.subject = text;
    assert_refused(&mail, CF_ETOOBIG, "subject");
    char *value = NULL;
    char err[128] = "";
    assert_int_equal(notifier_mime_header_text(text, 9, &value, err, sizeof(err)), CF_ETOOBIG);
    assert_null(value);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_plain),
        cmocka_unit_test(test_header_encoded),
        cmocka_unit_test(test_header_long_unicode),
        cmocka_unit_test(test_header_controls),
        cmocka_unit_test(test_header_invalid_utf8),
        cmocka_unit_test(test_addr_ok),
        cmocka_unit_test(test_message_structure),
        cmocka_unit_test(test_message_injection),
        cmocka_unit_test(test_message_names),
        cmocka_unit_test(test_body_line_ends),
        cmocka_unit_test(test_date),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_too_big),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
