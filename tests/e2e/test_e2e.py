"""The end-to-end suite (ctest label e2e): generated inquiries of every kind (500 by default,
CF_E2E_INQUIRIES) driven through the five services of the build, running on the real
stack (deploy/stack up), and for every one of them:

  - the stage it must end in (journey.KINDS): a teleconsultation booked, a treatment booked,
    a closed rejected case; a duplicate submission folded into its original's case;
  - the events on each topic, exactly once (one CaseOpened, one outcome of validation per
    decision, one CaseAssigned, one TeleconsultScheduled, ...; no CasePending, no reminder);
  - the notifications, exactly once each at the SMTP server (by Message-ID) and the SMS
    recorder (by idempotency key), on the right channel (email and SMS as the patient
    consented; SMS beside email only for time-critical events) and in the patient's language
    (the subject or SMS text matches the template of that language);
  - no dead letter keyed by any of its inquiries or cases;
  - none of the generated names, emails or phones in any service's log.

The operators' steps are taken as the cases ask for them: reports supplied for the cases that
lacked them, reviews approved, teleconsultations completed as eligible with two sessions.

Independent of earlier runs: a roster of its own (loaded with --replace), the services'
consumer groups moved to the end first, a Redis key prefix and Message-ID domain of the run's
own, ports of its own (28080-28085), and only records written after it started are read.
"""

import json
import os
import secrets
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "deploy"))
import journey  # noqa: E402

N = int(os.environ.get("CF_E2E_INQUIRIES", "500"))
BUILD = os.environ["CF_BUILD_DIR"]
TIMEOUT_S = float(os.environ.get("CF_E2E_TIMEOUT_S", "600"))
LANGUAGES = ("en", "es", "tr", "ru")
PORTS = {"intake": 28080, "validation": 28082, "assignment": 28083, "scheduler": 28084,
         "notifier": 28085}
# Bookings at least two days ahead, so no reminder falls due while the suite runs; room at
# the clinic for every treatment.
ENV = {"CASEFLOW_SCHEDULER_LEAD_MINUTES": "2880",
       "CASEFLOW_SCHEDULER_URGENT_LEAD_MINUTES": "1560",
       "CASEFLOW_SCHEDULER_CLINIC_DAILY_SESSIONS": "200"}
# One kind per i % 20: mostly routine, every other kind at least 5%.
MIX = (["routine"] * 6 + ["urgent"] * 2 + ["missing_reports"] * 2 + ["no_consent"]
       + ["minor"] + ["review"] * 2 + ["treatment"] * 2 + ["sms_only"] * 2 + ["duplicate"] * 2)
VIA_HTTP = 7  # every inquiry i with i % 10 == VIA_HTTP is posted to intake's HTTP API


def roster(run_tag):
    """Care managers and specialists for every language with room for the whole run."""
    week = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
    managers, specialists = [], []
    for lang in LANGUAGES:
        managers.append({"manager_id": f"cm-{run_tag}-{lang}", "name": f"Manager {lang.upper()}",
                         "email": f"cm-{lang}.{run_tag}@example.org", "languages": [lang, "en"],
                         "capacity": N, "urgent_capable": True})
        for k in range(2):
            specialists.append({
                "specialist_id": f"sp-{run_tag}-{lang}{k}", "name": f"Dr. {lang.upper()} {k}",
                "email": f"sp-{lang}{k}.{run_tag}@example.org", "languages": [lang, "en"],
                "conditions": ["CIRRHOSIS", "FATTY_LIVER", "WILSON_DISEASE", "LIVER_FAILURE",
                               "OTHER"],
                "time_zone": "UTC", "slot_minutes": 30, "daily_cap": 48,
                "weekly_hours": [{"weekday": d, "start": "00:00", "end": "23:30"}
                                 for d in week]})
    return {"care_managers": managers, "specialists": specialists}


def generate(run_tag, zone):
    inquiries = []
    for i in range(N):
        kind = MIX[i % len(MIX)]
        lang = LANGUAGES[(i // 3) % len(LANGUAGES)]
        if kind == "duplicate":
            # 18 repeats 16 (treatment), 19 repeats 8 (urgent)
            inquiries.append(journey.make_duplicate(inquiries[i - 2 - (i % 2) * 9], i))
        else:
            inquiries.append(journey.make_inquiry(kind, i, lang, run_tag, zone))
    return inquiries


def submit(ctl, services, inquiries):
    # A duplicate goes the same way as its original, after it.
    http = [q for q in inquiries if (q.original or q).index % 10 == VIA_HTTP]
    kafka = [q for q in inquiries if q not in http]
    ctl.with_file([q.doc for q in kafka if q.kind != "duplicate"], "submit")
    ctl.with_file([q.doc for q in kafka if q.kind == "duplicate"], "submit")
    for q in http:
        status = services.post(q)
        assert status == 202, f"POST /v1/inquiries: HTTP {status}"


def finished(cases, inquiries):
    """True once every inquiry's case is in its final stage with all its notifications sent."""
    for q in inquiries:
        case_id = cases.case_of(q)
        if case_id is None:
            return False
        if q.kind == "duplicate":
            continue
        if cases.stage(case_id) != journey.KINDS[q.kind]:
            return False
        if not cases.expected_notifications(case_id) <= set(cases.statuses(case_id)):
            return False
    return True


# Events each kind has exactly once; every other case topic must have none of the case's.
ONCE = {"caseflow.case.opened", "caseflow.case.validated", "caseflow.case.assigned",
        "caseflow.teleconsult.scheduled"}
EVENTS = {
    "routine": ONCE, "urgent": ONCE, "minor": ONCE, "sms_only": ONCE,
    "missing_reports": ONCE | {"caseflow.case.info-requested", "caseflow.case.info-provided"},
    "review": ONCE | {"caseflow.case.review-requested", "caseflow.case.reviewed"},
    "treatment": ONCE | {"caseflow.teleconsult.completed", "caseflow.treatment.booked"},
    "no_consent": {"caseflow.case.opened", "caseflow.case.rejected", "caseflow.case.closed"},
}


def check_case(cases, q, case_id, failures):
    def fail(what):
        failures.append(f"{q.kind} inquiry {q.inquiry_id} case {case_id}: {what}")

    stage = cases.stage(case_id)
    if stage != journey.KINDS[q.kind]:
        fail(f"stage {stage}, want {journey.KINDS[q.kind]}")
    counts = Counter(r["topic"] for r in cases.events(case_id)
                     if r["topic"] != "caseflow.notification.status")
    want = {t: 1 for t in EVENTS[q.kind]}
    if dict(counts) != want:
        fail(f"events {dict(sorted(counts.items()))}, want {dict(sorted(want.items()))}")
    if q.kind == "urgent":
        validated = cases.events(case_id, "caseflow.case.validated")
        if validated and validated[0]["value"]["priority"] != "URGENT":
            fail(f"priority {validated[0]['value']['priority']}, want URGENT")
    if q.kind == "duplicate":
        return
    want_n = cases.expected_notifications(case_id)
    got = cases.statuses(case_id)
    if set(got) != want_n:
        fail(f"notifications {sorted(set(got) ^ want_n)} differ from what the events ask for")
    for key, sts in got.items():
        if [s["status"] for s in sts] != ["SENT"]:
            fail(f"notification {key}: statuses {[s['status'] for s in sts]}, want one SENT")
        elif key[2] == "PATIENT" and sts[0]["language"] != q.language:
            fail(f"notification {key}: language {sts[0]['language']}, want {q.language}")


def check_delivery(cases, inquiries, case_ids, domain, mails, sms, failures):
    """Every SENT notification is at the SMTP server or SMS recorder exactly once, addressed to
    the patient (or manager), in the language's template; nothing else reached our people."""
    mail_by_id = defaultdict(list)
    for m in mails:
        mail_by_id[m["message_id"]].append(m)
    sms_by_key = defaultdict(list)
    for c in sms:
        sms_by_key[c.get("idempotency_key")].append(c)
    delivered_mail, delivered_sms = set(), set()
    for q in inquiries:
        if q.kind == "duplicate" or q.inquiry_id not in case_ids:
            continue
        case_id = case_ids[q.inquiry_id]
        for (eid, channel, audience), sts in cases.statuses(case_id).items():
            s = sts[-1]
            if s["status"] != "SENT":
                continue
            where = f"case {case_id} {s['template']} {channel} {audience}"
            pattern = journey.template_pattern(s["template"], s["language"], channel)
            if channel == "EMAIL":
                mid = f"<{s['notification_id']}@{domain}>"
                got = mail_by_id.get(mid, [])
                delivered_mail.add(mid)
                if len(got) != 1:
                    failures.append(f"{where}: {len(got)} emails with Message-ID {mid}, want 1")
                    continue
                if audience == "PATIENT" and q.email not in (got[0]["to"] or ""):
                    failures.append(f"{where}: email not addressed to the patient")
                if not pattern.fullmatch(got[0]["subject"] or ""):
                    failures.append(f"{where}: subject is not the {s['language']} template's")
            else:
                got = sms_by_key.get(s["notification_id"], [])
                delivered_sms.add(s["notification_id"])
                if len(got) != 1:
                    failures.append(f"{where}: {len(got)} SMS with key "
                                    f"{s['notification_id']}, want 1")
                    continue
                if got[0]["body"]["to"] != q.phone:
                    failures.append(f"{where}: SMS not sent to the patient's phone")
                if not pattern.fullmatch(got[0]["body"]["body"]):
                    failures.append(f"{where}: SMS text is not the {s['language']} template's")
    ours = {q.doc["contact"]["email"] for q in inquiries}
    for mid, ms in mail_by_id.items():
        if mid not in delivered_mail and any(a in (m["to"] or "") for m in ms for a in ours):
            failures.append(f"email {mid} reached a patient of the run without a SENT status")
    phones = {q.doc["contact"]["phone"] for q in inquiries}
    for key, cs in sms_by_key.items():
        if key not in delivered_sms and any(c["body"]["to"] in phones for c in cs):
            failures.append(f"SMS {key} reached a patient of the run without a SENT status")


def check_logs(services, inquiries, failures):
    secrets_ = set()
    for q in inquiries:
        for text in q.personal_data():
            secrets_.add(text)
            secrets_.add(json.dumps(text)[1:-1])  # as a JSON log line escapes it
    for service in journey.SERVICES:
        log = services.log(service).read_text(encoding="utf-8", errors="replace")
        leaked = sorted(s for s in secrets_ if s in log)
        if leaked:
            failures.append(f"{service}.log holds {len(leaked)} personal data items of the "
                            "generated patients")


def test_inquiries_end_to_end(tmp_path):
    run_tag = secrets.token_hex(4)
    run_id = f"e2e-{run_tag}"
    ctl = journey.Ctl(BUILD)
    roster_file = tmp_path / "roster.json"
    roster_file.write_text(json.dumps(roster(run_tag)))
    ctl("roster", "load", str(roster_file), "--replace")
    zone = journey.daytime_zone()
    inquiries = generate(run_tag, zone)
    services = journey.Services(BUILD, tmp_path / "logs", run_id, env=ENV, ports=PORTS)
    watcher = journey.Watcher()
    started = time.time()
    try:
        services.start(ctl)
        print(f"\n{N} inquiries (patients in {zone}), logs in {services.log_dir}")
        submit(ctl, services, inquiries)
        submitted = time.time()
        operator = journey.Operator(ctl)
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            services.check_alive()
            cases = journey.Cases(watcher.snapshot())
            kinds = {cases.case_of(q): q.kind for q in inquiries
                     if q.kind != "duplicate" and cases.case_of(q)}
            operator.act(cases, kinds)
            if finished(cases, inquiries) or time.monotonic() > deadline:
                break
            time.sleep(1)
        done = time.time()
        time.sleep(3)  # anything sent twice would come now
        cases = journey.Cases(watcher.snapshot())
        metrics = {s: journey.metric_values(services.metrics(s)) for s in journey.SERVICES}
    finally:
        exits = services.stop()
        watcher.close()
    mails = journey.emails(started, services.message_id_domain)
    sms = journey.sms_messages(started)

    failures = []
    case_ids = {}
    for q in inquiries:
        case_id = cases.case_of(q)
        if case_id is None:
            failures.append(f"{q.kind} inquiry {q.inquiry_id}: no case opened")
            continue
        case_ids[q.inquiry_id] = case_id
    for q in inquiries:
        if q.inquiry_id in case_ids and q.kind != "duplicate":
            check_case(cases, q, case_ids[q.inquiry_id], failures)
    # A person's submissions share one case, opened once.
    for q in inquiries:
        if q.kind == "duplicate":
            opened = [i for i in q.same_person() if i in cases.case_of_inquiry]
            if len(opened) != 1:
                failures.append(f"duplicate inquiry {q.inquiry_id}: {len(opened)} cases opened "
                                "for it and its original, want 1")
    undecodable = [r for r in cases.records if r.get("error")]
    if undecodable:
        failures.append(f"{len(undecodable)} records could not be decoded, e.g. "
                        f"{undecodable[0]['topic']}: {undecodable[0]['error']}")
    check_delivery(cases, inquiries, case_ids, services.message_id_domain, mails, sms, failures)
    ours = set(case_ids.values()) | {q.inquiry_id for q in inquiries}
    dead = [r for r in cases.records if r["topic"].startswith("caseflow.dlq.")
            and r["key"] in ours]
    if dead:
        failures.append(f"{len(dead)} dead letters of the run's inquiries or cases, e.g. "
                        f"{dead[0]['topic']} {dead[0]['headers'].get('dlq.reason')}: "
                        f"{dead[0]['headers'].get('dlq.error')}")
    check_logs(services, inquiries, failures)
    for service, m in metrics.items():
        if m.get("caseflow_dead_letters_total", 0) != 0 or not m.get("caseflow_records_in_total"):
            failures.append(f"{service} /metrics: {m.get('caseflow_records_in_total')} records "
                            f"in, {m.get('caseflow_dead_letters_total')} dead letters")
    for service, code in exits.items():
        if code != 0:
            failures.append(f"{service} exited with {code} on SIGTERM")

    kinds = Counter(q.kind for q in inquiries)
    ids = set(case_ids.values())
    sent = Counter(r["value"]["channel"] for r in cases.records
                   if r["topic"] == "caseflow.notification.status"
                   and journey.case_id_of(r) in ids and r["value"]["status"] == "SENT")
    print(f"{N} inquiries {dict(kinds)}: all in their final stage after "
          f"{done - submitted:.1f} s; {len(mails)} emails, {len(sms)} SMS received "
          f"(SENT statuses: {dict(sent)}); redis keys dropped: {services.drop_redis_state()}")
    for service, m in metrics.items():
        count = m.get("caseflow_processing_seconds_count", 0)
        print(f"  {service:<11} /metrics: {count:.0f} records, processing (poll to commit) "
              f"mean {1000 * m.get('caseflow_processing_seconds_sum', 0) / max(count, 1):.1f} ms, "
              f"{m.get('caseflow_transactions_total', 0):.0f} transactions, "
              f"{m.get('caseflow_transaction_aborts_total', 0):.0f} aborts, "
              f"{m.get('caseflow_errors_total', 0):.0f} errors")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:40])
