"""Interop with a client no one here wrote: Confluent's Python client (confluent-kafka from
PyPI, with its SchemaRegistryClient, AvroSerializer and AvroDeserializer) against records our
C code writes and reads, through the real Kafka and registry of deploy/stack.

Run by ctest (label integration) with the venv that `deploy/stack install` makes; the
caseflowctl binary and the samples directory come from the environment ctest sets.
"""

import datetime
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "deploy"))
from journey import to_caseflow_json  # noqa: E402

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
REGISTRY = os.environ.get("CASEFLOW_REGISTRY_URL", "http://127.0.0.1:18081/apis/ccompat/v7")
CASEFLOWCTL = os.environ["CASEFLOWCTL"]
SAMPLES = sorted(glob.glob(os.path.join(os.environ["CASEFLOW_SAMPLES"], "inquiry-*.json")))
TOPIC = "caseflow.inquiry.submitted"


def ctl(*args, timeout=60):
    """Runs caseflowctl and returns its stdout; a failure shows its stderr."""
    done = subprocess.run([CASEFLOWCTL, *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"caseflowctl {args[0]} failed: {done.stderr}"
    return done.stdout


def sample_with_new_id():
    with open(SAMPLES[0], encoding="utf-8") as f:
        inquiry = json.load(f)
    inquiry["inquiry_id"] = str(uuid.uuid4())
    inquiry["idempotency_key"] = "interop-" + inquiry["inquiry_id"]
    return inquiry


def assert_contains(whole, part, path="$"):
    """Every field given in part has the same value in whole (whole may add defaults)."""
    if isinstance(part, dict):
        assert isinstance(whole, dict), f"{path}: expected an object, got {whole!r}"
        for key, value in part.items():
            assert key in whole, f"{path}.{key} missing"
            assert_contains(whole[key], value, f"{path}.{key}")
    else:
        assert whole == part, f"{path}: {whole!r} != {part!r}"


def test_python_reads_what_c_wrote():
    inquiry = sample_with_new_id()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(inquiry, f)
    try:
        ctl("produce", TOPIC, f.name)
    finally:
        os.unlink(f.name)

    deserializer = AvroDeserializer(SchemaRegistryClient({"url": REGISTRY}))
    consumer = Consumer({
        "bootstrap.servers": BOOTSTRAP,
        "group.id": "interop-" + str(uuid.uuid4()),
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
    })
    consumer.subscribe([TOPIC])
    found = None
    deadline = time.monotonic() + 60
    try:
        while found is None and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            if msg.key() == inquiry["inquiry_id"].encode():
                found = msg
    finally:
        consumer.close()
    assert found is not None, "the record caseflowctl produced never reached the Python consumer"

    value = deserializer(found.value(), SerializationContext(TOPIC, MessageField.VALUE))
    assert_contains(to_caseflow_json(value["inquiry"]), inquiry)
    assert str(value["meta"]["correlation_id"]) == inquiry["inquiry_id"]
    headers = {k: v.decode() for k, v in found.headers()}
    assert headers["ce_type"] == "caseflow.event.InquirySubmitted"
    assert headers["ce_id"] == str(value["meta"]["event_id"])
    assert headers["ce_specversion"] == "1.0"


def test_c_reads_what_python_wrote():
    registry = SchemaRegistryClient({"url": REGISTRY})
    ctl("schemas", "register")
    latest = registry.get_latest_version(TOPIC + "-value")
    serializer = AvroSerializer(
        registry,
        latest.schema.schema_str,
        conf={"auto.register.schemas": False, "use.latest.version": True},
    )
    inquiry = sample_with_new_id()
    event_id = str(uuid.uuid4())
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=123000)
    record = {
        "meta": {
            "event_id": event_id,
            "case_id": None,
            "occurred_at": now,
            "producer": "python-interop/1",
            "correlation_id": inquiry["inquiry_id"],
            "causation_id": None,
        },
        "inquiry": from_caseflow_json(inquiry),
    }
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True})
    producer.produce(
        TOPIC,
        key=inquiry["inquiry_id"].encode(),
        value=serializer(record, SerializationContext(TOPIC, MessageField.VALUE)),
    )
    assert producer.flush(30) == 0

    out = ctl("tail", TOPIC, "--from-beginning", "--case", inquiry["inquiry_id"], "--max", "1",
              "--idle-exit-ms", "20000", timeout=90)
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, f"caseflowctl tail printed {out!r}"
    value = lines[0]["value"]
    assert value["meta"]["event_id"] == event_id
    assert value["meta"]["occurred_at"] == to_caseflow_json(now)
    assert value["meta"]["producer"] == "python-interop/1"
    assert_contains(value["inquiry"], inquiry)


def from_caseflow_json(inquiry):
    """The sample in the Python types fastavro writes for logical types."""
    def convert(value, key=None):
        if isinstance(value, dict):
            return {k: convert(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        if isinstance(value, str) and key in ("submitted_at", "consented_at"):
            return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if isinstance(value, str) and key == "date_of_birth":
            return datetime.date.fromisoformat(value)
        return value
    return convert(inquiry)
