#!/usr/bin/python3
"""A stand-in SMS provider for the local stack: it records every call and sends nothing.

    POST   /v1/messages        JSON {"to", "from", "body", optional "idempotency_key"}
                               (or an Idempotency-Key header) -> 201 {"id", "status": "queued"}
                               A replayed idempotency key answers the first call's id and
                               records nothing new. Bad JSON or missing fields -> 400.
    POST   /2010-04-01/Accounts/<AccountSid>/Messages.json
                               Twilio's Messages API: a form (application/x-www-form-urlencoded)
                               with To, From and Body, HTTP basic auth whose user is the
                               AccountSid (any password) -> 201 Twilio's message JSON
                               {"sid": "SM<32 hex>", "status": "queued", "to", "from", "body",
                               "num_segments", ...}. Idempotency by the I-Twilio-Idempotency-Token
                               or Idempotency-Key header, as above (one store for both APIs).
                               No or wrong auth -> 401 {"code": 20003, ...}; a missing field ->
                               400 Twilio's error JSON (21604 To, 21603 From, 21602 Body).
    GET    /v1/messages        -> 200 [recorded calls of both APIs, oldest first]
    DELETE /v1/messages        -> 204, forgets every recorded call (tests)
    POST   /_control/fail-next JSON {"status": 503, "count": 2} -> the next `count` provider
                               calls (either API) answer `status` and record nothing (retry tests)
    POST   /_control/delay     JSON {"ms": 1500} -> every provider call sleeps that long before
                               it answers, until set again; 0 turns it off (slow-provider tests).
                               The call is handled after the sleep even if its client gave up:
                               it may be recorded, as by a provider whose answer got lost.
    GET    /healthz            -> 200

Each accepted call is one JSON line in --store (id, received_at, "api": "json" or "twilio",
idempotency_key, headers of interest, body). The body of a Twilio call is recorded as the same
{"to", "from", "body"} a JSON call has, so tests read both APIs alike; its other form fields go
to "params", its account to "account_sid". Passwords are never recorded: a basic Authorization
header is kept as "Basic <user>:***". The file is the record: it is read back at start, so ids
and idempotency keys survive a restart; failures and the delay do not. Python standard library
only; run with Debian's /usr/bin/python3.
"""

import argparse
import base64
import binascii
import json
import os
import re
import sys
import threading
import time
import urllib.parse
import uuid
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 64 * 1024  # an SMS request is small; refuse anything bigger
MAX_DELAY_MS = 10 * 60 * 1000  # a delay longer than any client timeout tests nothing more
HEADERS_OF_INTEREST = ("Authorization", "Content-Type", "Idempotency-Key",
                       "I-Twilio-Idempotency-Token", "User-Agent")
TWILIO_API_VERSION = "2010-04-01"
TWILIO_MESSAGES = re.compile(r"^/2010-04-01/Accounts/([A-Za-z0-9]+)/Messages\.json$")
# Twilio's error codes for a missing parameter, in the order Twilio checks them.
TWILIO_REQUIRED = (("To", 21604, "A 'To' phone number is required."),
                   ("From", 21603, "A 'From' phone number is required."),
                   ("Body", 21602, "Message body is required."))

# GSM 03.38: the basic table's characters outside printable ASCII (which it has but for `),
# and the extension table's, which take two septets. As services/notifier/sms_size.c.
GSM7_BASIC = set("\n\r£¥èéùìòÇØøÅåΔΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà")
GSM7_EXTENSION = set("^{}\\[~]|€\f")


def num_segments(text):
    """Messages a provider sends for text: GSM-7 (160 septets alone, 153 per part) when every
    character is in it, else UCS-2 (70 UTF-16 units alone, 67 per part); no character is
    split across parts. The same rules as services/notifier/sms_size.c, for cross-checks."""
    def septets(c):
        if c in GSM7_EXTENSION:
            return 2
        return 1 if c in GSM7_BASIC or ("\x20" <= c <= "\x7e" and c != "`") else 0

    widths = [septets(c) for c in text]
    single, part = 160, 153
    if not all(widths):
        widths = [2 if ord(c) > 0xFFFF else 1 for c in text]
        single, part = 70, 67
    if sum(widths) <= single:
        return 1
    parts, used = 0, part
    for w in widths:
        if used + w > part:
            parts, used = parts + 1, 0
        used += w
    return parts


def redact_authorization(value):
    """A basic Authorization header as "Basic <user>:***" (the password never reaches the
    store); any other scheme as it came."""
    if value.strip().partition(" ")[0].lower() != "basic":
        return value
    user = basic_auth_user(value)
    return "Basic %s:***" % user if user is not None else "Basic ***"


def basic_auth_user(value):
    """The user name of a basic Authorization header, or None if it is not one."""
    scheme, _, cred = (value or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(cred.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, _ = decoded.partition(":")
    return user if sep else None


class Recorder:
    """The recorded calls, their idempotency keys, the injected failures and the delay; one
    lock."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.records = []
        self.by_key = {}
        self.fail_status = 0
        self.fail_count = 0
        self.delay_ms = 0
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        self._remember(json.loads(line))

    def _remember(self, rec):
        self.records.append(rec)
        key = rec.get("idempotency_key")
        if key:
            self.by_key[key] = rec

    def take_failure(self):
        """Returns the status to fail this call with, or 0."""
        with self.lock:
            if self.fail_count <= 0:
                return 0
            self.fail_count -= 1
            return self.fail_status

    def set_failures(self, status, count):
        with self.lock:
            self.fail_status, self.fail_count = status, count

    def delay(self):
        """Seconds each provider call waits before it answers."""
        with self.lock:
            return self.delay_ms / 1000.0

    def set_delay(self, ms):
        with self.lock:
            self.delay_ms = ms

    def add(self, key, fields):
        """Records one call (fields: api, headers, body, ... without id) unless its key was
        seen; returns (the record, or the key's first record, created)."""
        with self.lock:
            if key and key in self.by_key:
                return self.by_key[key], False
            prefix = "SM" if fields.get("api") == "twilio" else "sms-"
            rec = {
                "id": prefix + uuid.uuid4().hex,
                "received_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                "idempotency_key": key,
            }
            rec.update(fields)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
            self._remember(rec)
            return rec, True

    def list(self):
        with self.lock:
            return list(self.records)

    def clear(self):
        with self.lock:
            open(self.path, "w", encoding="utf-8").close()
            self.records.clear()
            self.by_key.clear()


class Handler(BaseHTTPRequestHandler):
    server_version = "caseflow-sms-recorder/1"
    protocol_version = "HTTP/1.1"  # keep-alive, as real providers do

    def _send(self, status, obj=None, headers=()):
        data = b"" if obj is None else json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout during /_control/delay): nothing to answer to.
            self.close_connection = True
            sys.stderr.write("%s client gone before the %d answer\n"
                             % (self.log_date_time_string(), status))

    def _read_raw(self):
        """Returns the body's bytes, or None after answering 400/413."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self._send(413 if length > MAX_BODY else 400, {"error": "bad Content-Length"})
            self.close_connection = True
            return None
        return self.rfile.read(length)

    def _read_json(self):
        """Returns the parsed body, or None after answering 400/413."""
        raw = self._read_raw()
        if raw is None:
            return None
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            self._send(400, {"error": "invalid JSON: %s" % e})
            return None

    def _headers_of_interest(self):
        headers = {h: self.headers[h] for h in HEADERS_OF_INTEREST if h in self.headers}
        if "Authorization" in headers:
            headers["Authorization"] = redact_authorization(headers["Authorization"])
        return headers

    def _provider_call(self):
        """What every provider call does first: wait out the delay, then take an injected
        failure. Returns False after answering that failure."""
        delay = self.server.recorder.delay()
        if delay > 0:
            time.sleep(delay)
        fail = self.server.recorder.take_failure()
        if fail:
            self._send(fail, {"error": "injected failure"})
            return False
        return True

    def do_GET(self):
        if self.path == "/healthz":
            self._send(200, {"status": "ok"})
        elif self.path == "/v1/messages":
            self._send(200, self.server.recorder.list())
        else:
            self._send(404, {"error": "not found"})

    def do_DELETE(self):
        if self.path == "/v1/messages":
            self.server.recorder.clear()
            self._send(204)
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self):
        twilio = TWILIO_MESSAGES.match(self.path)
        if self.path == "/v1/messages":
            self._post_message()
        elif twilio:
            self._post_twilio_message(twilio.group(1))
        elif self.path == "/_control/fail-next":
            self._post_fail_next()
        elif self.path == "/_control/delay":
            self._post_delay()
        else:
            self._send(404, {"error": "not found"})

    def _post_message(self):
        body = self._read_json()
        if body is None or not self._provider_call():
            return
        if not isinstance(body, dict):
            self._send(400, {"error": "body must be a JSON object"})
            return
        missing = [k for k in ("to", "from", "body") if not isinstance(body.get(k), str)]
        if missing:
            self._send(400, {"error": "missing or non-string: " + ", ".join(missing)})
            return
        key = self.headers.get("Idempotency-Key") or body.get("idempotency_key")
        if key is not None and not isinstance(key, str):
            self._send(400, {"error": "idempotency_key must be a string"})
            return
        rec, _ = self.server.recorder.add(key or None, {
            "api": "json", "headers": self._headers_of_interest(), "body": body})
        self._send(201, {"id": rec["id"], "status": "queued"})

    def _twilio_error(self, status, code, message, headers=()):
        self._send(status, {"code": code, "message": message,
                            "more_info": "https://www.twilio.com/docs/errors/%d" % code,
                            "status": status}, headers)

    def _post_twilio_message(self, account_sid):
        raw = self._read_raw()
        if raw is None or not self._provider_call():
            return
        # Twilio checks the credentials before it looks at the parameters.
        if basic_auth_user(self.headers.get("Authorization")) != account_sid:
            self._twilio_error(401, 20003, "Authenticate",
                               (("WWW-Authenticate", 'Basic realm="Twilio API"'),))
            return
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            # Twilio reads only forms, so to it such a call lacks its first parameter.
            self._twilio_error(400, 21604, "A 'To' phone number is required (Content-Type "
                               "is not application/x-www-form-urlencoded).")
            return
        try:
            form = urllib.parse.parse_qs(raw.decode("utf-8"), keep_blank_values=True,
                                         encoding="utf-8", errors="strict")
        except UnicodeDecodeError as e:
            self._twilio_error(400, 20001, "invalid UTF-8 in the form: %s" % e)
            return
        for name, code, message in TWILIO_REQUIRED:
            values = form.get(name, [])
            if len(values) > 1:
                self._twilio_error(400, code, "'%s' is given more than once." % name)
                return
            if not values or not values[0]:
                self._twilio_error(400, code, message)
                return
        key = (self.headers.get("I-Twilio-Idempotency-Token")
               or self.headers.get("Idempotency-Key"))
        rec, _ = self.server.recorder.add(key or None, {
            "api": "twilio",
            "account_sid": account_sid,
            "headers": self._headers_of_interest(),
            "body": {"to": form["To"][0], "from": form["From"][0], "body": form["Body"][0]},
            "params": {k: v[0] if len(v) == 1 else v for k, v in form.items()
                       if k not in ("To", "From", "Body")},
        })
        self._send(201, self._twilio_message(rec, account_sid))

    @staticmethod
    def _twilio_message(rec, account_sid):
        """Twilio's message resource for a record (a replay answers the first call's)."""
        sid = rec["id"]
        account_sid = rec.get("account_sid") or account_sid
        created = format_datetime(datetime.fromisoformat(rec["received_at"]))
        uri = "/%s/Accounts/%s/Messages/%s" % (TWILIO_API_VERSION, account_sid, sid)
        body = rec["body"]
        return {
            "account_sid": account_sid, "api_version": TWILIO_API_VERSION,
            "body": body["body"], "date_created": created, "date_sent": None,
            "date_updated": created, "direction": "outbound-api", "error_code": None,
            "error_message": None, "from": body["from"], "messaging_service_sid": None,
            "num_media": "0", "num_segments": str(num_segments(body["body"])), "price": None,
            "price_unit": "USD", "sid": sid, "status": "queued",
            "subresource_uris": {"media": uri + "/Media.json"}, "to": body["to"],
            "uri": uri + ".json",
        }

    def _post_fail_next(self):
        body = self._read_json()
        if body is None:
            return
        status = body.get("status", 503) if isinstance(body, dict) else None
        count = body.get("count", 1) if isinstance(body, dict) else None
        if not isinstance(status, int) or not 400 <= status <= 599 or not isinstance(count, int) \
                or count < 0:
            self._send(400, {"error": "want {\"status\": 400..599, \"count\": >= 0}"})
            return
        self.server.recorder.set_failures(status, count)
        self._send(200, {"status": status, "count": count})

    def _post_delay(self):
        body = self._read_json()
        if body is None:
            return
        ms = body.get("ms") if isinstance(body, dict) else None
        if not isinstance(ms, int) or isinstance(ms, bool) or not 0 <= ms <= MAX_DELAY_MS:
            self._send(400, {"error": "want {\"ms\": 0..%d}" % MAX_DELAY_MS})
            return
        self.server.recorder.set_delay(ms)
        self._send(200, {"ms": ms})

    def log_message(self, fmt, *args):
        # Access log without bodies: phone numbers and texts stay out of logs. The health
        # checks (deploy/stack status) would drown the rest.
        if self.path == "/healthz" and self.command == "GET":
            return
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18025)
    ap.add_argument("--store", required=True, help="JSON-lines file of recorded calls")
    args = ap.parse_args()

    os.makedirs(os.path.dirname(os.path.abspath(args.store)), exist_ok=True)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.recorder = Recorder(args.store)
    sys.stderr.write("sms recorder listening on %s:%d, store %s\n"
                     % (args.host, args.port, args.store))
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    # SIGTERM (deploy/stack down) ends the process; the store is fsynced per call.
    main()
