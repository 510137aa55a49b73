/* mime.h — an email as the SMTP server receives it (RFC 5322 + MIME): UTF-8 everywhere,
 * multipart/alternative with a text and an HTML part, encoded-word (RFC 2047) subject and display
 * names, and a Message-ID the caller derives from (event, channel, recipient) so a retried
 * message is recognisably the same one. Pure: nothing here talks to a server.
 *
 * Injection is impossible by construction: header values are built only here, every
 * non-ASCII or special text goes out as RFC 2047 encoded-words (which cannot hold CR or LF),
 * addresses are checked to be plain addr-specs, and the bodies are base64 (so no line of a body
 * can be a MIME boundary, a header or the SMTP end-of-data "."). */
#ifndef NOTIFIER_MIME_H
#define NOTIFIER_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Longest address accepted (RFC 5321's path limit). */
#define NOTIFIER_ADDR_MAX 254

/* One email. Every text is UTF-8; NULL names mean none. */
struct notifier_mail {
    const char *from_name; /* display name, e.g. "Care team"; may be NULL */
    const char *from_addr; /* addr-spec, e.g. "care@example.org" */
    const char *to_name;   /* may be NULL */
    const char *to_addr;
    const char *subject;
    const char *text;       /* plain-text body, LF line ends */
    const char *html;       /* HTML body, LF line ends */
    const char *message_id; /* "<id@domain>", angle brackets included */
    int64_t date_ms;        /* the Date header, UTC */
};

/* True if addr is an addr-spec caseflow sends to: local@domain, 1..NOTIFIER_ADDR_MAX bytes,
 * printable ASCII without space, '<', '>', '(', ')', ',', ';', ':', '\\', '"', '[' or ']',
 * exactly one '@' with a non-empty local part and a domain of dot-separated labels. A Unicode
 * (SMTPUTF8) address is refused rather than mangled. */
bool notifier_mime_addr_ok(const char *addr);

/* Appends text as a header value to buf: unchanged when it is printable ASCII without
 * characters that need quoting, else as RFC 2047 "=?UTF-8?B?...?=" encoded-words of at most 75
 * characters, split only between UTF-8 characters, folded onto continuation lines so no
 * header line exceeds 78 characters. Control characters (CR and LF included) become spaces
 * first. header_len is the length of "Subject: " (or the name and colon of the header) so the
 * first line is folded in time. On CF_OK *out is a new string the caller frees. CF_EINVAL if
 * text is not UTF-8. */
cf_status notifier_mime_header_text(const char *text, size_t header_len, char **out, char *errbuf,
                                    size_t errlen);

/* The whole message, CRLF line ends, ready for SMTP DATA (libcurl's CURLOPT_READFUNCTION):
 * Date, From, To, Subject, Message-ID, MIME-Version, Content-Type multipart/alternative with a
 * boundary derived from message_id (and checked not to occur in the encoded parts), then the
 * text/plain and text/html parts, both charset=UTF-8 and Content-Transfer-Encoding base64 in
 * lines of 76 characters. CF_EINVAL (naming the field) for a bad address, a message_id that is
 * not "<...@...>" of printable ASCII, or text that is not UTF-8. On CF_OK *out (NUL-terminated,
 * *len bytes without the NUL) is the caller's to free. */
cf_status notifier_mime_build(const struct notifier_mail *mail, char **out, size_t *len,
                              char *errbuf, size_t errlen);

#endif
