#!/usr/bin/python3
"""A stand-in SMS provider for the local stack: it records every call and sends nothing.

    POST   /v1/messages        JSON {"to", "from", "body", optional "idempotency_key"}
                               (or an Idempotency-Key header) -> 201 {"id", "status": "queued"}
                               A replayed idempotency key answers the first call's id and
                               records nothing new. Bad JSON or missing fields -> 400.
    GET    /v1/messages        -> 200 [recorded calls, oldest first]
    DELETE /v1/messages        -> 204, forgets every recorded call (tests)
    POST   /_control/fail-next JSON {"status": 503, "count": 2} -> the next `count` provider
                               calls answer `status` and record nothing (retry tests)
    GET    /healthz            -> 200

Each accepted call is one JSON line in --store (received_at, headers of interest, body).
The file is the record: it is read back at start, so ids and idempotency keys survive a
restart. Python standard library only; run with Debian's /usr/bin/python3.
"""

import argparse
import json
import os
import sys
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 64 * 1024  # an SMS request is small; refuse anything bigger
HEADERS_OF_INTEREST = ("Authorization", "Content-Type", "Idempotency-Key", "User-Agent")


class Recorder:
    """The recorded calls, their idempotency keys and the injected failures; one lock."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.records = []
        self.by_key = {}
        self.fail_status = 0
        self.fail_count = 0
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        self._remember(json.loads(line))

    def _remember(self, rec):
        self.records.append(rec)
        key = rec.get("idempotency_key")
        if key:
            self.by_key[key] = rec["id"]

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

    def add(self, key, headers, body):
        """Records one call unless its key was seen; returns (id, created)."""
        with self.lock:
            if key and key in self.by_key:
                return self.by_key[key], False
            rec = {
                "id": "sms-" + uuid.uuid4().hex,
                "received_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                "idempotency_key": key,
                "headers": headers,
                "body": body,
            }
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
            self._remember(rec)
            return rec["id"], True

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

    def _send(self, status, obj=None):
        data = b"" if obj is None else json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_json(self):
        """Returns the parsed body, or None after answering 400/413."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self._send(413 if length > MAX_BODY else 400, {"error": "bad Content-Length"})
            self.close_connection = True
            return None
        raw = self.rfile.read(length)
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            self._send(400, {"error": "invalid JSON: %s" % e})
            return None

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
        if self.path == "/v1/messages":
            self._post_message()
        elif self.path == "/_control/fail-next":
            self._post_fail_next()
        else:
            self._send(404, {"error": "not found"})

    def _post_message(self):
        body = self._read_json()
        if body is None:
            return
        fail = self.server.recorder.take_failure()
        if fail:
            self._send(fail, {"error": "injected failure"})
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
        headers = {h: self.headers[h] for h in HEADERS_OF_INTEREST if h in self.headers}
        msg_id, _ = self.server.recorder.add(key or None, headers, body)
        self._send(201, {"id": msg_id, "status": "queued"})

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
