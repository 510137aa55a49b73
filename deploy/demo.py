"""demo.py — the main job's walk through caseflow (deploy/demo runs it after building and
creating the topics and schemas): the sample roster loaded, the five services started, a varied
set of inquiries submitted, the operators' steps taken, progress shown while the cases move,
then each case's journey in the patient's time zone and what the SMTP server and the SMS
recorder received. The services are stopped at the end unless --keep-running.

    demo.py BUILD_DIR [--keep-running] [--timeout-s S]

The inquiries are fictional, made from deploy/samples/; the journeys print ids, stages, times
and the messages' subjects, never a name, email or phone.
"""

import argparse
import datetime
import secrets
import sys
import time
import urllib.request
import uuid
from collections import Counter
from zoneinfo import ZoneInfo

import journey

# The stages a case stays in until someone acts (or in its final stage).
SETTLED = {"teleconsult_scheduled", "treatment_booked", "closed", "pending"}


def scenarios(run_tag):
    """(label, Inquiry) for each case of the walk; the operator acts on the ones whose kind asks
    for it (journey.Operator)."""
    def fresh(name, kind, index):
        """A sample with new ids and a contact of its own, so intake folds nothing of earlier
        runs into it."""
        doc = journey.sample(name)
        doc.update({"inquiry_id": str(uuid.uuid4()), "idempotency_key": f"demo-{uuid.uuid4().hex}",
                    "submitted_at": journey.now_iso()})
        contact = doc["contact"]
        local, domain = contact["email"].split("@")
        contact["email"] = f"{local}+{run_tag}.{index}@{domain}"
        if contact.get("phone"):
            contact["phone"] = contact["phone"][:-4] + f"{(int(run_tag, 16) + index) % 10000:04d}"
        return journey.Inquiry(kind, index, doc)

    out = []
    routine = fresh("inquiry-en-cirrhosis.json", "treatment", 0)
    out.append(("routine, English; teleconsultation completed: eligible, 2 sessions", routine))

    urgent = fresh("inquiry-en-cirrhosis.json", "urgent", 1)
    urgent.doc["patient"].update({"country": "GB", "time_zone": "Europe/London"})
    urgent.doc["condition"].update({"category": "LIVER_FAILURE", "meld_score": 31,
                                    "complications": ["HEPATIC_ENCEPHALOPATHY"]})
    urgent.doc["contact"]["contact_windows"] = weekdays("09:00", "18:00")
    out.append(("urgent (liver failure, MELD 31), English", urgent))

    missing = fresh("inquiry-es-fatty-liver.json", "missing_reports", 2)
    # Monday evenings (the sample) and Tuesday afternoons, when the specialist for fatty liver
    # disease works (New York mornings).
    missing.doc["contact"]["contact_windows"].append(
        {"weekday": "TUESDAY", "from": "15:00", "to": "19:00"})
    out.append(("Spanish, no reports: information requested, then supplied", missing))

    refused = fresh("inquiry-en-cirrhosis.json", "no_consent", 3)
    refused.doc["consent"]["data_processing"] = False
    out.append(("no consent to data processing", refused))

    minor = fresh("inquiry-tr-wilson-minor.json", "minor", 4)
    # Free at weekends (the sample) and on Wednesday afternoons, when the Turkish-speaking
    # specialist works.
    minor.doc["contact"]["contact_windows"].append(
        {"weekday": "WEDNESDAY", "from": "13:00", "to": "17:00"})
    out.append(("a minor with a guardian, Turkish", minor))

    russian = fresh("inquiry-en-cirrhosis.json", "routine", 5)
    russian.doc["patient"].update({"given_name": "Евгения", "family_name": "Примерова",
                                   "country": "RU", "language": "ru",
                                   "time_zone": "Europe/Moscow"})
    russian.doc["condition"]["description"] = journey.RU_DESCRIPTION
    russian.doc["contact"]["contact_windows"] = weekdays("10:00", "19:00")
    out.append(("Russian, posted to intake's HTTP API", russian))

    review = fresh("inquiry-en-cirrhosis.json", "review", 6)
    review.doc["condition"]["category"] = "OTHER"
    out.append(("condition outside the list: review, approved by an operator", review))

    dup = journey.make_duplicate(routine, 7)
    dup.doc["idempotency_key"] = routine.doc["idempotency_key"]  # the same form sent twice
    out.append(("the first inquiry submitted again (same idempotency key)", dup))
    return out


def weekdays(start, end):
    return [{"weekday": d, "from": start, "to": end}
            for d in ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY")]


def stage_line(cases, case_ids, elapsed):
    counts = Counter(cases.stage(c) or "submitted" for c in case_ids)
    order = ["submitted"] + [s for _, s in journey.STAGES]
    return f"  {elapsed:5.1f} s  " + "  ".join(f"{s} {counts[s]}" for s in order if counts[s])


def local(ms, zone):
    t = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return t.astimezone(ZoneInfo(zone)).strftime("%a %d %b %H:%M:%S %Z")


def when(iso, zone, fmt="%a %d %b %Y %H:%M %Z"):
    t = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return t.astimezone(ZoneInfo(zone)).strftime(fmt)


def describe(rec, zone):
    """What an event says, without personal data."""
    v, topic = rec["value"] or {}, rec["topic"]
    reasons = ",".join(r["code"] for r in v.get("reasons") or [])
    if topic == "caseflow.case.opened":
        return f"inquiry {v['meta']['correlation_id']}"
    if topic in ("caseflow.case.validated", "caseflow.case.rejected",
                 "caseflow.case.info-requested", "caseflow.case.review-requested"):
        missing = ",".join(v.get("missing") or [])
        return " ".join(x for x in (v.get("priority"), reasons, missing and f"missing {missing}")
                        if x)
    if topic == "caseflow.case.info-provided":
        return f"{len(v.get('reports') or [])} reports supplied"
    if topic == "caseflow.case.reviewed":
        return f"{v['decision']} by {v['operator_id']}"
    if topic == "caseflow.case.assigned":
        return (f"care manager {v['manager_id']} ({v['priority']}"
                f"{', interpreter' if v.get('interpreter_needed') else ''})")
    if topic == "caseflow.case.pending":
        return f"{v['service']} waits: {v['reason']}"
    if topic == "caseflow.teleconsult.scheduled":
        return (f"{v['status']} with {v['specialist_id']} for "
                f"{when(v['start'], zone)} (the specialist's "
                f"{when(v['start'], v['specialist_time_zone'], '%H:%M %Z')})")
    if topic == "caseflow.teleconsult.completed":
        return f"{v['outcome']}, {v['sessions_planned']} sessions"
    if topic == "caseflow.treatment.booked":
        sessions = ", ".join(f"session {s['number']} {s['date']}" for s in v["sessions"])
        return f"{sessions}; arrive {v['arrival_date']}, leave {v['departure_date']}"
    if topic == "caseflow.case.closed":
        return f"{v['reason']} {v.get('note_code') or ''}".strip()
    if topic == "caseflow.notification.status":
        return f"{v['channel']} to {v['audience'].lower()} {v['template']} [{v['language']}] " \
               f"{v['status']}"
    return ""


def journeys(cases, cast, domain, mails, sms):
    by_mid = {m["message_id"]: m for m in mails}
    sms_keys = {c.get("idempotency_key") for c in sms}
    for label, q, case_id in cast:
        zone = q.doc["patient"]["time_zone"]
        print(f"\n== {label}")
        if q.kind == "duplicate":
            opened = {cases.case_of_inquiry[i] for i in q.same_person()
                      if i in cases.case_of_inquiry}
            print(f"   inquiries {' and '.join(q.same_person())}: "
                  + (f"one case, {case_id}; the second submission was folded into it (no second "
                     "case, no second message)" if len(opened) == 1 else
                     f"{len(opened)} cases opened: {', '.join(sorted(opened))}"))
            continue
        if case_id is None:
            print(f"   inquiry {q.inquiry_id}: no case yet")
            continue
        print(f"   case {case_id}, patient's language {q.language}, time zone {zone}")
        for rec in sorted(cases.events(case_id), key=lambda r: r["timestamp_ms"]):
            if rec["topic"] == "caseflow.notification.status":
                continue
            name = rec["topic"].split(".", 1)[1]
            print(f"   {local(rec['timestamp_ms'], zone)}  {name:<28} {describe(rec, zone)}")
        for rec in cases.events(case_id, "caseflow.notification.status"):
            v = rec["value"]
            if v["status"] != "SENT":
                print(f"   message {describe(rec, zone)}")
            elif v["channel"] == "EMAIL":
                m = by_mid.get(f"<{v['notification_id']}@{domain}>")
                print(f"   email [{v['language']}] to {v['audience'].lower():<12} "
                      f"{m['subject'] if m else '(not at the SMTP server yet)'}")
            else:
                there = v["notification_id"] in sms_keys
                print(f"   SMS   [{v['language']}] to {v['audience'].lower():<12} {v['template']}"
                      f"{'' if there else ' (not at the SMS recorder yet)'}")
        topic_of = {r["value"]["meta"]["event_id"]: r["topic"] for r in cases.events(case_id)
                    if r.get("value")}
        for eid, channel, audience in cases.expected_notifications(case_id) - set(
                cases.statuses(case_id)):
            about = topic_of[eid].split(".", 1)[1]
            print(f"   {channel:<5}      to {audience.lower():<12} about {about}: "
                  + ("waits for the end of the patient's quiet hours (21:00-08:00 local)"
                     if channel == "SMS" else "not sent yet"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build")
    ap.add_argument("--keep-running", action="store_true")
    ap.add_argument("--timeout-s", type=float, default=120)
    args = ap.parse_args()

    ctl = journey.Ctl(args.build)
    run_tag = secrets.token_hex(4)
    run_id = f"demo-{datetime.datetime.now():%Y%m%d%H%M%S}"
    print("== roster (deploy/roster.json; --replace removes what tests left on the topics)")
    ctl("roster", "load", str(journey.ROOT / "deploy" / "roster.json"), "--replace")
    services = journey.Services(args.build, journey.STATE / "logs" / run_id, run_id)
    watcher = journey.Watcher()
    started = time.time()
    try:
        print("== the five services (consumer groups moved to the end of their topics first)")
        services.start(ctl)
        for s in journey.SERVICES:
            print(f"   {s:<11} pid {services.procs[s].pid}, /metrics on port "
                  f"{services.ports[s]}, log {services.log(s)}")
        cast = scenarios(run_tag)
        print(f"== {len(cast)} inquiries submitted")
        for label, q in cast:
            if q.kind == "duplicate":
                opened(watcher, q.original)  # the same form again, once the first made a case
            if q.language == "ru":
                print(f"   POST /v1/inquiries -> HTTP {services.post(q)}  ({label})")
            else:
                ctl.with_file(q.doc, "submit")
                print(f"   caseflowctl submit              ({label})")
        wait(services, ctl, watcher, cast, args.timeout_s)
        time.sleep(3)  # the last notifications
        cases = journey.Cases(watcher.snapshot())
        mails = journey.emails(started, services.message_id_domain)
        sms = journey.sms_messages(started)
        ids = [(label, q, cases.case_of(q)) for label, q in cast]
        journeys(cases, ids, services.message_id_domain, mails, sms)
        russian = next(q for _, q in cast if q.language == "ru")
        with urllib.request.urlopen(services.url(
                "intake", f"/v1/inquiries/{russian.inquiry_id}"), timeout=10) as r:
            print(f"\n== GET /v1/inquiries/{russian.inquiry_id} (what a front end shows)\n"
                  f"   {r.read().decode()}")
        summary(mails, sms, cases, ids)
    finally:
        watcher.close()
        if args.keep_running:
            print(f"\n== the services keep running (pids "
                  f"{' '.join(str(p.pid) for p in services.procs.values())}); "
                  "stop them with kill -TERM")
        else:
            exits = services.stop()
            print("\n== services stopped: " + ", ".join(f"{s} exit {c}" for s, c in exits.items()))
            print(f"   Redis keys of the run dropped: {services.drop_redis_state()}")


def opened(watcher, q, timeout_s=30):
    """Waits until the inquiry q has opened a case."""
    deadline = time.monotonic() + timeout_s
    while journey.Cases(watcher.snapshot()).case_of(q) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"inquiry {q.inquiry_id}: no case after {timeout_s} s")
        time.sleep(0.2)


def wait(services, ctl, watcher, cast, timeout_s):
    """Takes the operators' steps as cases ask for them and shows the cases per stage, in place
    on a terminal, until every case has settled."""
    operator = journey.Operator(ctl)
    tty = sys.stdout.isatty()
    begin, last = time.monotonic(), 0.0
    print("== cases per stage (the topic of each case's newest event)")
    while True:
        services.check_alive()
        cases = journey.Cases(watcher.snapshot())
        ids = {cases.case_of(q): q.kind for _, q in cast if q.kind != "duplicate"}
        ids.pop(None, None)
        acted = operator.act(cases, ids)
        elapsed = time.monotonic() - begin
        line = stage_line(cases, [cases.case_of(q) for _, q in cast if q.kind != "duplicate"],
                          elapsed)
        settled = len(ids) == sum(q.kind != "duplicate" for _, q in cast) and all(
            cases.stage(c) in SETTLED for c in ids) and not acted
        if tty:
            print("\r\033[K" + line, end="", flush=True)
        elif settled or elapsed - last >= 5:
            print(line, flush=True)
            last = elapsed
        if settled or elapsed > timeout_s:
            if tty:
                print()
            if not settled:
                print(f"   not every case settled within {timeout_s:.0f} s")
            return
        time.sleep(0.5)


def summary(mails, sms, cases, ids):
    patients = {q.doc["contact"]["email"] for _, q, _ in ids}
    to_patients = sum(any(p in (m["to"] or "") for p in patients) for m in mails)
    print(f"\n== received by the stack's SMTP server: {len(mails)} emails "
          f"({to_patients} to patients, {len(mails) - to_patients} to care managers); "
          f"by the SMS recorder: {len(sms)} SMS")
    langs = Counter()
    for rec in cases.records:
        if rec["topic"] == "caseflow.notification.status" and rec["value"]["status"] == "SENT":
            langs[(rec["value"]["channel"], rec["value"]["language"])] += 1
    print("   sent, by channel and language: "
          + ", ".join(f"{c} {lang} {n}" for (c, lang), n in sorted(langs.items())))
    print("   an SMS in the patient's quiet hours (21:00-08:00 local) waits for the morning; "
          "SMS go beside email only for time-critical events")


if __name__ == "__main__":
    main()
