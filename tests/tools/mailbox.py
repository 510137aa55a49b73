#!/usr/bin/python3
"""Prints the messages of a Maildir as JSON lines, for tests that check what reached the mailbox.

    tests/tools/mailbox.py MAILDIR [--since EPOCH_SECONDS] [--message-id ID ...]

The local stack's SMTP server (aiosmtpd's Mailbox handler, deploy/stack) adds every message it
receives to $CASEFLOW_MAILDIR; this reads new/ and cur/ (not tmp/, where files are still being
written) and prints one JSON object per message, oldest file first:

    file          the file's path (MAILDIR/new/... or MAILDIR/cur/...)
    mtime         the file's mtime, seconds since the epoch (float)
    message_id    the Message-ID header as written, "<...>" included
    date, from, to, subject
                  those headers, RFC 2047 words decoded (several To headers joined by ", ")
    content_type  of the top level, e.g. "multipart/alternative"
    parts         the content types of every part, depth first, the top level first
    text, html    the decoded text/plain and text/html bodies (email's get_body), or null
    headers       [name, raw value] pairs of the top-level header block, in file order, the
                  value as in the file (encoded words and folding kept); the SMTP envelope is
                  in X-MailFrom and X-RcptTo, which the Mailbox handler adds
    defects       what the parser found wrong, in any part or header, as strings

A header that is absent is null. A file that cannot be read or parsed prints {"file", "mtime",
"error"} (mtime null if even stat failed) and the others still print. Options:

    --since T       only files whose mtime is >= T (take T before the action under test)
    --message-id ID only messages with that Message-ID, with or without <>; repeatable (any of
                    them). Files that cannot be read or parsed are left out then: they have no
                    Message-ID to match, and a test must not take one for its message.

Exit status 0, whatever was found; 2 if MAILDIR/new or MAILDIR/cur cannot be read (the message
says why). Python standard library only; run with Debian's /usr/bin/python3. (The name shadows
the standard `mailbox` module for code run from this directory; this script does not use it.)
"""

import argparse
import json
import os
import sys
from email import policy
from email.parser import BytesParser


def clean(obj):
    """obj with every string made encodable: bytes the parser kept as surrogate escapes (8-bit
    headers) are read as UTF-8, anything else becomes U+FFFD."""
    if isinstance(obj, str):
        return obj.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(obj, list):
        return [clean(v) for v in obj]
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    return obj


def bare_id(message_id):
    """A Message-ID without whitespace and angle brackets, for comparing."""
    return message_id.strip().strip("<>").strip()


def header(msg, name):
    """The decoded header, several occurrences joined by ", ", or None if absent."""
    values = msg.get_all(name)
    return None if not values else ", ".join(str(v) for v in values)


def body(msg, subtype, defects):
    """The decoded text/<subtype> body email's get_body picks, or None. A body that does not
    decode (an unknown charset, ...) is read as UTF-8 with U+FFFD, and why goes to defects."""
    part = msg.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    try:
        return part.get_content()
    except (LookupError, ValueError, UnicodeError) as e:
        defects.append("text/%s body: %s: %s" % (subtype, type(e).__name__, e))
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", "replace")


def describe(defect):
    text = str(defect)
    return "%s: %s" % (type(defect).__name__, text) if text else type(defect).__name__


def all_defects(msg):
    """The defects of every part and of every part's headers, each said where."""
    out = []
    for i, part in enumerate(msg.walk()):
        where = "" if i == 0 else "part %d (%s): " % (i, part.get_content_type())
        out.extend(where + describe(d) for d in part.defects)
        for name, value in part.items():
            out.extend("%sheader %s: %s" % (where, name, describe(d))
                       for d in getattr(value, "defects", ()))
    return out


def parse(path, data, mtime):
    msg = BytesParser(policy=policy.default).parsebytes(data)
    defects = all_defects(msg)
    message_id = msg.get("Message-ID")
    return {
        "file": path,
        "message_id": None if message_id is None else str(message_id).strip(),
        "date": header(msg, "Date"),
        "from": header(msg, "From"),
        "to": header(msg, "To"),
        "subject": header(msg, "Subject"),
        "content_type": msg.get_content_type(),
        "parts": [p.get_content_type() for p in msg.walk()],
        "text": body(msg, "plain", defects),
        "html": body(msg, "html", defects),
        "headers": [[name, value] for name, value in msg.raw_items()],
        "defects": defects,
        "mtime": mtime,
    }


def list_files(maildir):
    """The path of every message file in new/ and cur/; raises OSError if one of them cannot
    be listed."""
    files = []
    for sub in ("new", "cur"):
        d = os.path.join(maildir, sub)
        files.extend(os.path.join(d, n) for n in os.listdir(d) if not n.startswith("."))
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("maildir")
    ap.add_argument("--since", type=float, metavar="EPOCH_SECONDS",
                    help="only files whose mtime is >= this")
    ap.add_argument("--message-id", action="append", default=[], metavar="ID",
                    help="only this Message-ID (repeatable)")
    args = ap.parse_args()
    wanted = {bare_id(m) for m in args.message_id}

    try:
        files = list_files(args.maildir)
    except OSError as e:
        sys.stderr.write("mailbox.py: cannot read the Maildir %s: %s\n" % (args.maildir, e))
        return 2

    found = []
    for path in files:
        mtime = None
        try:
            mtime = os.stat(path).st_mtime
            if args.since is not None and mtime < args.since:
                continue
            with open(path, "rb") as f:
                data = f.read()
            rec = parse(path, data, mtime)
        except FileNotFoundError:
            continue  # moved from new/ to cur/ (or deleted) since the listing
        except Exception as e:  # OSError, or more than the email package documents it raises
            # With --message-id only messages that have one of the ids print: a test that
            # waits for its message must not take a broken file for it.
            if not wanted:
                found.append({"file": path, "mtime": mtime,
                              "error": "%s: %s" % (type(e).__name__, e)})
            continue
        if wanted and (rec["message_id"] is None or bare_id(rec["message_id"]) not in wanted):
            continue
        found.append(rec)

    # Oldest first; Maildir names begin with the delivery time, which breaks ties.
    found.sort(key=lambda r: (r["mtime"] or 0.0, os.path.basename(r["file"])))
    # UTF-8 whatever the locale says, so a C test reads the same bytes everywhere.
    out = sys.stdout.buffer
    try:
        for rec in found:
            out.write(json.dumps(clean(rec), ensure_ascii=False).encode("utf-8") + b"\n")
        out.flush()
    except BrokenPipeError:
        # The reader had enough (| head -1); no traceback, and none at exit either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
