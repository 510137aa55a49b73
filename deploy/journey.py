"""journey.py — caseflow's whole journey on the local stack (deploy/stack): the five services
started from a build, inquiries of every kind submitted, the operators' steps taken when a case
asks for them (information supplied, a review approved, a teleconsultation completed), every
case event read back from Kafka, and the emails and SMS that the stack's SMTP server and SMS
recorder received.

What the demo (deploy/demo.py) and the end-to-end suite (tests/e2e/test_e2e.py) share. It runs
with the stack's venv ($CASEFLOW_STATE_DIR/venv), whose confluent-kafka reads the topics.

Personal data: the inquiries made here are fictional but are treated as personal data. Nothing
here logs them; the demo prints a case's journey without names, emails or phones.
"""

import datetime
import functools
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("CASEFLOW_STATE_DIR", ROOT / ".state"))
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
REGISTRY = os.environ.get("CASEFLOW_REGISTRY_URL", "http://127.0.0.1:18081/apis/ccompat/v7")
REDIS_HOST = os.environ.get("CASEFLOW_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("CASEFLOW_REDIS_PORT", "16379"))
MAILDIR = Path(os.environ.get("CASEFLOW_MAILDIR", STATE / "mail" / "Maildir"))
SMS_URL = os.environ.get("CASEFLOW_SMS_URL", "http://127.0.0.1:18025/v1/messages")
SAMPLES = ROOT / "deploy" / "samples"
TEMPLATES = ROOT / "services" / "notifier" / "templates"

sys.path.insert(0, str(ROOT / "tests" / "tools"))
import mailbox  # noqa: E402  (tests/tools/mailbox.py: the Maildir parser the tests use)

SERVICES = ("intake", "validation", "assignment", "scheduler", "notifier")

# What each service's consumer group reads (its inputs, and its own outputs it reads back):
# moved to the end before a run, so the services start after what earlier runs left.
GROUP_TOPICS = {
    "intake": ["caseflow.inquiry.submitted", "caseflow.case.opened",
               "caseflow.case.info-requested", "caseflow.case.info-provided",
               "caseflow.case.review-requested", "caseflow.case.reviewed",
               "caseflow.case.validated", "caseflow.case.rejected", "caseflow.case.assigned",
               "caseflow.teleconsult.scheduled", "caseflow.treatment.booked",
               "caseflow.case.closed"],
    "validation": ["caseflow.case.opened", "caseflow.case.info-provided",
                   "caseflow.case.reviewed", "caseflow.case.closed"],
    "assignment": ["caseflow.case.validated", "caseflow.case.closed", "caseflow.case.assigned",
                   "caseflow.case.pending"],
    "scheduler": ["caseflow.case.assigned", "caseflow.teleconsult.change-requested",
                  "caseflow.teleconsult.completed", "caseflow.case.closed",
                  "caseflow.teleconsult.scheduled", "caseflow.case.pending",
                  "caseflow.teleconsult.reminder-due"],
    "notifier": ["caseflow.case.opened", "caseflow.case.info-requested",
                 "caseflow.case.rejected", "caseflow.case.assigned",
                 "caseflow.teleconsult.scheduled", "caseflow.teleconsult.reminder-due",
                 "caseflow.treatment.booked", "caseflow.case.closed"],
}

# The topics that move a case to a stage (as `caseflowctl stats` counts them), in journey order.
STAGES = [
    ("caseflow.case.opened", "opened"),
    ("caseflow.case.info-requested", "needs_information"),
    ("caseflow.case.review-requested", "in_review"),
    ("caseflow.case.validated", "validated"),
    ("caseflow.case.rejected", "rejected"),
    ("caseflow.case.assigned", "assigned"),
    ("caseflow.case.pending", "pending"),
    ("caseflow.teleconsult.scheduled", "teleconsult_scheduled"),
    ("caseflow.teleconsult.completed", "teleconsult_completed"),
    ("caseflow.treatment.booked", "treatment_booked"),
    ("caseflow.case.closed", "closed"),
]
STAGE_OF = dict(STAGES)
STAGE_ORDER = {topic: i for i, (topic, _) in enumerate(STAGES)}
# Every topic a case's events are on: the stage topics, the operators' inputs, the reminders,
# the notifier's statuses and the dead letters.
CASE_TOPICS = [t for t, _ in STAGES] + [
    "caseflow.case.info-provided", "caseflow.case.reviewed",
    "caseflow.teleconsult.change-requested", "caseflow.teleconsult.reminder-due",
    "caseflow.notification.status"]
DLQ_TOPICS = ["caseflow.dlq." + s for s in SERVICES]
# The events the notifier tells the patient about on SMS as well as by email (services/notifier/
# plan.h): the time-critical ones.
SMS_TOO = {"caseflow.case.info-requested", "caseflow.teleconsult.scheduled",
           "caseflow.teleconsult.reminder-due", "caseflow.treatment.booked"}


def now_iso():
    t = datetime.datetime.now(datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def to_caseflow_json(value):
    """Python values as fastavro returns them, in caseflow's JSON form (avro_convert.h)."""
    if isinstance(value, dict):
        return {k: to_caseflow_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_caseflow_json(v) for v in value]
    if isinstance(value, datetime.datetime):
        value = value.astimezone(datetime.timezone.utc)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


# ---- caseflowctl --------------------------------------------------------------------------

class Ctl:
    """Runs the build's caseflowctl; a failure raises with its stderr (which names no personal
    data: caseflowctl reports files, topics and fields, never values)."""

    def __init__(self, build):
        self.path = str(Path(build) / "tools" / "caseflowctl" / "caseflowctl")

    def __call__(self, *args, timeout=120):
        done = subprocess.run([self.path, *args], capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"caseflowctl {' '.join(args[:2])}: exit {done.returncode}: "
                               f"{done.stderr.strip()}")
        return done.stdout

    def with_file(self, doc, *args):
        """caseflowctl ARGS FILE with doc written to a temporary JSON file (it may hold
        personal data: it is deleted at once)."""
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False,
                                         encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False)
        try:
            return self(*args, f.name)
        finally:
            os.unlink(f.name)


# ---- The services -------------------------------------------------------------------------

class Services:
    """The five services of a build, started with an environment of the run's own: a Redis key
    prefix (dropped by drop_redis_state), an instance id, secrets, and per-service settings.
    Logs go to log_dir/<service>.log."""

    def __init__(self, build, log_dir, run_id, env=None, ports=None):
        self.build = Path(build)
        self.log_dir = Path(log_dir)
        self.run_id = run_id
        self.prefix = f"caseflow:{run_id}:"
        self.env = dict(env or {})
        self.ports = ports or {"intake": 18080, "validation": 18082, "assignment": 18083,
                               "scheduler": 18084, "notifier": 18085}
        self.procs = {}

    def log(self, service):
        return self.log_dir / f"{service}.log"

    def start(self, ctl):
        for service, topics in GROUP_TOPICS.items():
            ctl("group", "to-end", f"caseflow-{service}", *topics)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        base = dict(os.environ)
        base.update({
            "CASEFLOW_REDIS_KEY_PREFIX": self.prefix,
            "CASEFLOW_INSTANCE_ID": self.run_id,
            "CASEFLOW_INTAKE_IDENTITY_SECRET": secrets.token_hex(32),
            "CASEFLOW_SCHEDULER_TOKEN_SECRET": secrets.token_hex(32),
            "CASEFLOW_NOTIFIER_MESSAGE_ID_DOMAIN": self.message_id_domain,
        })
        for service in SERVICES:
            base[f"CASEFLOW_{service.upper()}_HTTP_PORT"] = str(self.ports[service])
        base.update(self.env)
        for service in SERVICES:
            with open(self.log(service), "ab") as log:
                self.procs[service] = subprocess.Popen(
                    [str(self.build / "services" / f"caseflow-{service}")], env=base,
                    stdout=subprocess.DEVNULL, stderr=log)
        self.wait_ready()

    @property
    def message_id_domain(self):
        return f"{self.run_id}.caseflow.example"

    def url(self, service, path):
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def wait_ready(self, timeout=60):
        """Until every service answers /readyz with 200 (Kafka, registry and Redis reachable,
        partitions assigned)."""
        deadline = time.monotonic() + timeout
        for service in SERVICES:
            while True:
                self.check_alive()
                try:
                    with urllib.request.urlopen(self.url(service, "/readyz"), timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{service} not ready after {timeout} s "
                                       f"(log {self.log(service)})")
                time.sleep(0.2)

    def check_alive(self):
        for service, p in self.procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{service} exited with {p.returncode} "
                                   f"(log {self.log(service)})")

    def metrics(self, service):
        """The service's /metrics text."""
        with urllib.request.urlopen(self.url(service, "/metrics"), timeout=5) as r:
            return r.read().decode()

    def stop(self, timeout=40):
        """SIGTERM (each finishes its batch, commits and closes), SIGKILL after timeout.
        Returns {service: exit status}."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        status = {}
        for service, p in self.procs.items():
            try:
                status[service] = p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                status[service] = p.wait()
        self.procs = {}
        return status

    def post(self, inquiry):
        """POSTs the inquiry to intake's HTTP API as a front end does (its Idempotency-Key
        header, no inquiry id): the inquiry id intake answers with replaces the one it had.
        Returns the HTTP status (urllib raises on an error status)."""
        body = {k: v for k, v in inquiry.doc.items() if k not in ("inquiry_id", "idempotency_key")}
        req = urllib.request.Request(
            self.url("intake", "/v1/inquiries"), data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json",
                     "Idempotency-Key": inquiry.doc["idempotency_key"]})
        with urllib.request.urlopen(req, timeout=30) as r:
            inquiry.doc["inquiry_id"] = json.load(r)["inquiry_id"]
            return r.status

    def drop_redis_state(self):
        """Deletes the run's Redis keys (they all have TTLs, but a run need not leave them)."""
        return redis_drop(self.prefix)


def metric_values(text):
    """The unlabelled-by-anything-but-service samples of a /metrics text, by name (histogram
    buckets and other labelled series left out): {"caseflow_records_in_total": 12.0, ...}."""
    values = {}
    for line in text.splitlines():
        m = re.fullmatch(r'(\w+)\{service="[^"]*"\} (\S+)', line)
        if m:
            values[m.group(1)] = float(m.group(2))
    return values


def redis_command(sock, *args):
    """One RESP command on sock; returns the parsed reply (enough of RESP for SCAN/UNLINK)."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    sock.sendall(out)
    f = sock.makefile("rb")

    def read():
        line = f.readline().rstrip(b"\r\n")
        kind, rest = line[:1], line[1:]
        if kind == b"-":
            raise RuntimeError("redis: " + rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else f.read(n + 2)[:-2]
        if kind == b"*":
            return [read() for _ in range(int(rest))]
        return rest
    return read()


def redis_drop(prefix):
    with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=10) as sock:
        if os.environ.get("CASEFLOW_REDIS_PASSWORD"):
            redis_command(sock, "AUTH", *([os.environ["CASEFLOW_REDIS_USERNAME"]]
                                          if os.environ.get("CASEFLOW_REDIS_USERNAME") else []),
                          os.environ["CASEFLOW_REDIS_PASSWORD"])
        cursor, dropped = b"0", 0
        while True:
            cursor, keys = redis_command(sock, "SCAN", cursor, "MATCH", prefix + "*",
                                         "COUNT", "1000")
            if keys:
                dropped += redis_command(sock, "UNLINK", *keys)
            if cursor == b"0":
                return dropped


# ---- Reading the topics -------------------------------------------------------------------

class Watcher:
    """Every record written to topics after it was made, decoded to caseflow's JSON form, kept
    in memory by a thread of its own (read_committed, no consumer group)."""

    def __init__(self, topics=CASE_TOPICS + DLQ_TOPICS):
        self.consumer = Consumer({
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"journey-{uuid.uuid4()}",  # never joined: assign() only
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        })
        self.decode = AvroDeserializer(SchemaRegistryClient({"url": REGISTRY}))
        metadata = self.consumer.list_topics(timeout=30)
        start = []
        for topic in topics:
            for p in metadata.topics[topic].partitions:
                _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, p),
                                                              timeout=30)
                start.append(TopicPartition(topic, p, high))
        self.consumer.assign(start)
        self.lock = threading.Lock()
        self.records = []
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            msg = self.consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                continue  # a transient client error: the consumer recovers by itself
            rec = {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
                   "key": msg.key().decode("utf-8", "replace") if msg.key() else None,
                   "timestamp_ms": msg.timestamp()[1],
                   "headers": {k: (v.decode("utf-8", "replace") if v else v)
                               for k, v in (msg.headers() or [])}}
            if msg.topic().startswith("caseflow.dlq."):
                rec["value"] = None  # a dead letter's value may not decode: that is why it is one
            else:
                try:
                    ctx = SerializationContext(msg.topic(), MessageField.VALUE)
                    rec["value"] = to_caseflow_json(self.decode(msg.value(), ctx))
                except Exception as e:  # what the deserializer raises is not documented
                    rec["value"], rec["error"] = None, str(e)
            with self.lock:
                self.records.append(rec)

    def snapshot(self):
        with self.lock:
            return list(self.records)

    def close(self):
        self.stopping = True
        self.thread.join()
        self.consumer.close()


def case_id_of(rec):
    value = rec.get("value") or {}
    return (value.get("meta") or {}).get("case_id") or rec.get("key")


class Cases:
    """A snapshot of a Watcher's records, by case and by inquiry."""

    def __init__(self, records):
        self.records = records
        self.by_case = {}
        self.case_of_inquiry = {}
        for rec in records:
            cid = case_id_of(rec)
            self.by_case.setdefault(cid, []).append(rec)
            value = rec.get("value") or {}
            if rec["topic"] == "caseflow.case.opened":
                self.case_of_inquiry[value["meta"]["correlation_id"]] = value["case_id"]

    def events(self, case_id, topic=None):
        return [r for r in self.by_case.get(case_id, [])
                if topic is None or r["topic"] == topic]

    def case_of(self, inquiry):
        """The case of the person's submissions: whichever of them intake saw first opened it,
        and the others were folded into it. None before it is opened."""
        opened = [self.case_of_inquiry[i] for i in inquiry.same_person()
                  if i in self.case_of_inquiry]
        return opened[0] if opened else None

    def expected_notifications(self, case_id):
        """(source event id, channel, audience) of every notification the case's events ask
        for (services/notifier/plan.h): email where consented, SMS beside it for time-critical
        events or instead of it without email, and the care manager's email on CaseAssigned."""
        want = set()
        for rec in self.events(case_id):
            if rec["topic"] not in GROUP_TOPICS["notifier"]:
                continue
            r = rec["value"].get("recipient")
            if not r:
                continue  # e.g. the CaseClosed after a rejection: the rejection told the patient
            eid = rec["value"]["meta"]["event_id"]
            email = bool(r.get("email")) and r.get("consent_email")
            if email:
                want.add((eid, "EMAIL", "PATIENT"))
            if r.get("phone") and r.get("consent_sms") and (rec["topic"] in SMS_TOO
                                                            or not email):
                want.add((eid, "SMS", "PATIENT"))
            if rec["topic"] == "caseflow.case.assigned":
                want.add((eid, "EMAIL", "CARE_MANAGER"))
        return want

    def statuses(self, case_id):
        """The notifier's statuses for the case by (source event id, channel, audience)."""
        got = {}
        for rec in self.events(case_id, "caseflow.notification.status"):
            v = rec["value"]
            got.setdefault((v["source_event_id"], v["channel"], v["audience"]), []).append(v)
        return got

    def stage(self, case_id):
        """The stage of the case's newest record on a stage topic (by record time; of records
        of the same millisecond, such as a CaseRejected and its CaseClosed written in one
        transaction, the later stage of the journey), or None."""
        staged = [r for r in self.events(case_id) if r["topic"] in STAGE_OF]
        if not staged:
            return None
        return STAGE_OF[max(staged, key=lambda r: (r["timestamp_ms"],
                                                    STAGE_ORDER[r["topic"]]))["topic"]]


# ---- What the patients received -------------------------------------------------------------

def emails(since, domain):
    """The messages at the SMTP server since (epoch seconds) whose Message-ID is in domain."""
    out = []
    for path in mailbox.list_files(str(MAILDIR)):
        try:
            mtime = os.stat(path).st_mtime
            if mtime < since:
                continue
            with open(path, "rb") as f:
                m = mailbox.parse(path, f.read(), mtime)
        except FileNotFoundError:
            continue  # moved from new/ to cur/ since the listing
        if (m.get("message_id") or "").endswith("@" + domain + ">"):
            out.append(m)
    return out


def sms_messages(since):
    """The SMS recorder's calls received since (epoch seconds)."""
    with urllib.request.urlopen(SMS_URL, timeout=10) as r:
        calls = json.load(r)
    start = datetime.datetime.fromtimestamp(since, datetime.timezone.utc)
    return [c for c in calls if datetime.datetime.fromisoformat(c["received_at"]) >= start]


def template_pattern(template, language, channel):
    """A regular expression the rendered subject (email) or text (SMS) of a template matches
    in that language and no other: literal text as is, {{name}} anything, {{#x}}..{{/x}} and
    {{^x}}..{{/x}} optional."""
    ext = "email" if channel == "EMAIL" else "sms"
    text = (TEMPLATES / language / f"{template}.{ext}").read_text(encoding="utf-8")
    if channel == "EMAIL":
        text = text.splitlines()[0].removeprefix("subject:")
    text, out, pos = text.strip(), "", 0
    for m in re.finditer(r"\{\{([#^/]?)\s*[\w.]+\s*\}\}", text):
        out += re.escape(text[pos:m.start()])
        out += {"#": "(?:", "^": "(?:", "/": ")?", "": ".*?"}[m.group(1)]
        pos = m.end()
    out += re.escape(text[pos:])
    return re.compile(r"\s*" + out + r"\s*", re.DOTALL)


# ---- Inquiries of every kind --------------------------------------------------------------

# Per language: fictional names, country, condition and a description in that language.
PEOPLE = {
    "en": ("Wilhelmina", "Journeytester", "US", "CIRRHOSIS", "inquiry-en-cirrhosis.json"),
    "es": ("Remedios", "Viajera Ficticia", "ES", "FATTY_LIVER", "inquiry-es-fatty-liver.json"),
    "tr": ("Gülizar", "Yolculukçu", "TR", "WILSON_DISEASE", "inquiry-tr-wilson-minor.json"),
    "ru": ("Евлампия", "Путешественникова", "RU", "CIRRHOSIS", None),
}
RU_DESCRIPTION = ("Два года назад мне поставили диагноз цирроз печени. В последние месяцы снова "
                  "увеличился живот, я быстро устаю. Мой гепатолог упомянул трансплантацию; я "
                  "хотела бы узнать о вариантах лечения за рубежом.")

# The kinds of inquiry and the stage each must end in. "duplicate" is a second submission of
# the same person and condition: folded into the first one's case, it has no case of its own.
KINDS = {
    "routine": "teleconsult_scheduled",
    "urgent": "teleconsult_scheduled",
    "missing_reports": "teleconsult_scheduled",
    "no_consent": "closed",
    "minor": "teleconsult_scheduled",
    "review": "teleconsult_scheduled",
    "treatment": "treatment_booked",
    "sms_only": "teleconsult_scheduled",
    "duplicate": None,
}


def letters(n, width=5):
    """n in base 26 as lower-case letters: unique, and a valid part of a name."""
    out = ""
    for _ in range(width):
        n, r = divmod(n, 26)
        out = chr(ord("a") + r) + out
    return out


@functools.lru_cache(maxsize=None)
def _sample_text(name):
    return (SAMPLES / name).read_text(encoding="utf-8")


def sample(name):
    """A new copy of the sample inquiry deploy/samples/<name> (the file is read once)."""
    return json.loads(_sample_text(name))


class Inquiry:
    """One generated inquiry: its kind, the JSON submitted, and what the run knows of the
    person (to find their messages, and to look for them in the logs)."""

    def __init__(self, kind, index, doc):
        self.kind, self.index, self.doc = kind, index, doc
        self.original = None  # for a duplicate: the Inquiry it repeats
        self.duplicates = []  # for an original: the Inquiries that repeat it

    @property
    def language(self):
        return self.doc["patient"]["language"]

    @property
    def inquiry_id(self):
        return self.doc["inquiry_id"]

    @property
    def email(self):
        return self.doc["contact"].get("email") if self.doc["contact"].get("consent_email") \
            else None

    @property
    def phone(self):
        return self.doc["contact"].get("phone") if self.doc["contact"].get("consent_sms") \
            else None

    def same_person(self):
        """The inquiry ids of this person's submissions: the original and its duplicates."""
        first = self.original or self
        return [first.inquiry_id] + [d.inquiry_id for d in first.duplicates]

    def personal_data(self):
        p, c = self.doc["patient"], self.doc["contact"]
        found = [p["given_name"], p["family_name"], c.get("email"), c.get("phone")]
        g = self.doc.get("guardian") or {}
        found += [g.get("name"), g.get("email"), g.get("phone")]
        return [x for x in found if x]


def make_inquiry(kind, index, language, run_tag, time_zone, windows=None):
    """A new inquiry of kind for a person of its own (unique names, email and phone, so intake
    never folds two of them): complete and consented unless the kind says otherwise."""
    given, family, country, category, sample_name = PEOPLE[language]
    doc = sample("inquiry-en-cirrhosis.json")
    if sample_name and language != "en":
        own = sample(sample_name)
        doc["condition"]["description"] = own["condition"]["description"]
    elif language == "ru":
        doc["condition"]["description"] = RU_DESCRIPTION
    tag = letters(index)
    doc.update({"inquiry_id": str(uuid.uuid4()), "idempotency_key": f"journey-{uuid.uuid4().hex}",
                "submitted_at": now_iso()})
    doc["patient"].update({"given_name": given, "family_name": f"{family} {tag.capitalize()}",
                           "country": country, "language": language, "time_zone": time_zone})
    doc["contact"].update({
        "email": f"journey.{run_tag}.{index}@example.org",
        "phone": f"+1555{int(run_tag[:3], 16) % 1000:03d}{index:04d}",
        "consent_email": True, "consent_sms": True,
        "contact_windows": windows or [{"weekday": d, "from": "00:00", "to": "23:59"} for d in
                                       ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY",
                                        "FRIDAY", "SATURDAY", "SUNDAY")],
    })
    doc["condition"].update({"category": category, "meld_score": 12, "complications": []})
    doc["consent"]["consented_at"] = doc["submitted_at"]
    if kind == "urgent":
        doc["condition"].update({"category": "LIVER_FAILURE", "meld_score": 31,
                                 "complications": ["HEPATIC_ENCEPHALOPATHY"]})
    elif kind == "missing_reports":
        doc["reports"] = []
    elif kind == "no_consent":
        doc["consent"]["data_processing"] = False
    elif kind == "minor":
        doc["patient"]["date_of_birth"] = "2012-06-02"
        doc["guardian"] = {"name": f"Guardian {given} {tag.capitalize()}",
                           "relationship": "PARENT", "email": doc["contact"]["email"],
                           "phone": doc["contact"]["phone"], "consent": True}
    elif kind == "review":
        doc["condition"]["category"] = "OTHER"
    elif kind == "sms_only":
        doc["contact"]["consent_email"] = False
    return Inquiry(kind, index, doc)


def make_duplicate(original, index):
    """The same person and condition submitted again (a new inquiry id and idempotency key,
    as a second click or a second front end would)."""
    doc = json.loads(json.dumps(original.doc))
    doc.update({"inquiry_id": str(uuid.uuid4()), "idempotency_key": f"journey-{uuid.uuid4().hex}",
                "submitted_at": now_iso()})
    dup = Inquiry("duplicate", index, doc)
    dup.original = original
    original.duplicates.append(dup)
    return dup


# ---- The operators' steps ------------------------------------------------------------------

def meta(case_id, correlation_id, causation_id):
    return {"event_id": str(uuid.uuid4()), "case_id": case_id, "occurred_at": now_iso(),
            "producer": "journey/1", "correlation_id": correlation_id,
            "causation_id": causation_id}


class Operator:
    """Takes the step a case waits for, once per case: supplies the reports validation asked
    for, approves a review, completes a booked teleconsultation as eligible with two sessions.
    Each step is one batch per topic, produced with caseflowctl."""

    def __init__(self, ctl):
        self.ctl = ctl
        self.done = set()  # (case_id, step)

    def act(self, cases, kind_of_case):
        batches = {}
        for case_id, kind in kind_of_case.items():
            for step, topic, make in (
                    ("info", "caseflow.case.info-requested", self._info),
                    ("review", "caseflow.case.review-requested", self._review),
                    ("complete", "caseflow.teleconsult.scheduled", self._complete)):
                if (case_id, step) in self.done or not self._wanted(kind, step):
                    continue
                trigger = cases.events(case_id, topic)
                if trigger:
                    out_topic, event = make(trigger[-1]["value"])
                    batches.setdefault(out_topic, []).append(event)
                    self.done.add((case_id, step))
        for topic, events in batches.items():
            self.ctl.with_file(events, "produce", topic)
        return sum(len(v) for v in batches.values())

    @staticmethod
    def _wanted(kind, step):
        return {"info": kind == "missing_reports", "review": kind == "review",
                "complete": kind == "treatment"}[step]

    @staticmethod
    def _info(requested):
        m = requested["meta"]
        reports = sample("inquiry-en-cirrhosis.json")["reports"]
        return "caseflow.case.info-provided", {
            "meta": meta(m["case_id"], m["correlation_id"], m["event_id"]), "reports": reports}

    @staticmethod
    def _review(requested):
        m = requested["meta"]
        return "caseflow.case.reviewed", {
            "meta": meta(m["case_id"], m["correlation_id"], m["event_id"]),
            "decision": "APPROVE", "operator_id": "op-journey", "missing": []}

    @staticmethod
    def _complete(scheduled):
        m = scheduled["meta"]
        return "caseflow.teleconsult.completed", {
            "meta": meta(m["case_id"], m["correlation_id"], m["event_id"]),
            "teleconsult_id": scheduled["teleconsult_id"], "outcome": "ELIGIBLE",
            "sessions_planned": 2, "follow_ups_planned": 1}


def daytime_zone(zones=("Europe/London", "Europe/Istanbul", "Asia/Kolkata", "Asia/Tokyo",
                        "Pacific/Auckland", "America/Sao_Paulo", "America/New_York",
                        "America/Chicago", "America/Los_Angeles", "Pacific/Honolulu")):
    """A zone where it is now between 09:00 and 19:00: SMS are not held back for quiet hours
    (21:00-08:00 local) while a run waits for them."""
    now = datetime.datetime.now(datetime.timezone.utc)
    for zone in zones:
        if 9 <= now.astimezone(ZoneInfo(zone)).hour < 19:
            return zone
    raise RuntimeError("no zone in daytime")  # the list spans every hour of the day
