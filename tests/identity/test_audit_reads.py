"""Reads of someone else's clinical data are on the audit trail: who saw whose data, what, when and
from where. Admins search the trail; a participant sees who was shown their data."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from peerlift import db as dbmod
from peerlift.db import clock_at, utcnow
from peerlift.identity import service as identity
from peerlift.identity.audit import Read, record_reads, verify
from peerlift.identity.models import AuditEntry
from tests.conftest import assert_error, count_rows, post
from tests.research.analytics_factory import design, enrol, log, questionnaire

CRISIS = "I've saved up all my tablets and tonight I'm going to take them. Goodbye everyone."


def reads(**where) -> list[AuditEntry]:
    """The read entries of the trail (oldest first), optionally narrowed by column values."""
    with dbmod.transaction(write=False) as s:
        query = select(AuditEntry).where(AuditEntry.action.startswith("read.")).order_by(AuditEntry.id)
        for name, value in where.items():
            query = query.where(getattr(AuditEntry, name) == value)
        return list(s.scalars(query))


def intact() -> int:
    with dbmod.transaction(write=False) as s:
        checked, broken = verify(s)
    assert broken is None, broken
    return checked


@pytest.fixture
def tracked(world):
    """Alice has logged her weight and answered a PHQ-9 her coach sent."""
    with dbmod.transaction() as s:
        log(s, world.alice, "weight", 81.5, 1, unit="kg")
        questionnaire(s, world.alice, world.coach, 2, answers=[1, 1, 0, 0, 2, 0, 0, 1, 0])
    return world


# --- reads are audited ---------------------------------------------------------------------------------

def test_a_facilitator_viewing_alices_tracking_leaves_entries_about_alice(tracked, client_for):
    w = tracked
    coach = client_for(w.coach)
    assert coach.get(f"/people/{w.alice.id}/tracking").status_code == 200
    [page_tracking] = reads(action="read.tracking")
    assert (page_tracking.actor_id, page_tracking.subject_id) == (w.coach.id, w.alice.id)
    assert (page_tracking.object_type, page_tracking.object_id) == ("user", w.alice.id)
    assert page_tracking.ip_address == "testclient" and page_tracking.detail == "tracking page"
    assert page_tracking.at <= utcnow()
    # The page shows her questionnaire history too: one entry of each kind for the request.
    [page_scores] = reads(action="read.questionnaire_responses")
    assert page_scores.subject_id == w.alice.id and page_scores.id == page_tracking.id + 1

    assert coach.get(f"/people/{w.alice.id}/tracking/weight.svg").status_code == 200
    assert coach.get(f"/people/{w.alice.id}/questionnaires/phq9.svg").status_code == 200
    entries = coach.get(f"/api/v1/tracking/entries?user_id={w.alice.id}&measure=weight")
    assert entries.status_code == 200 and entries.json()[0]["value"] == 81.5
    assert coach.get(f"/api/v1/tracking/progress?user_id={w.alice.id}").status_code == 200
    answers = coach.get(f"/api/v1/questionnaires/responses?user_id={w.alice.id}")
    assert answers.status_code == 200 and answers.json()[0]["instrument_key"] == "phq9"
    details = [(e.action, e.detail) for e in reads(actor_id=w.coach.id)][2:]
    assert details == [("read.tracking", "chart of weight"), ("read.questionnaire_responses", "chart of phq9"),
                       ("read.tracking", "entries of weight, last 90 days"), ("read.tracking", "progress and goals"),
                       ("read.questionnaire_responses", "responses: 1")]
    assert {e.subject_id for e in reads()} == {w.alice.id}
    assert intact() == count_rows(AuditEntry)


def test_alice_looking_at_her_own_data_is_not_audited(tracked, client_for):
    w = tracked
    alice = client_for(w.alice)
    before = count_rows(AuditEntry)
    for path in ("/me/tracking", "/me/questionnaires", f"/people/{w.alice.id}/tracking/weight.svg",
                 f"/people/{w.alice.id}/questionnaires/phq9.svg", "/api/v1/tracking/entries",
                 f"/api/v1/tracking/entries?user_id={w.alice.id}", "/api/v1/tracking/progress",
                 "/api/v1/questionnaires/responses"):
        assert alice.get(path).status_code == 200, path
    assert count_rows(AuditEntry) == before


def test_non_clinical_reads_and_refused_reads_write_nothing(tracked, client_for):
    w = tracked
    coach, alice, other = client_for(w.coach), client_for(w.alice), client_for(w.other_coach)
    before = count_rows(AuditEntry)
    for client in (coach, alice):
        for path in (f"/api/v1/circles/{w.circle.id}/posts", f"/circles/{w.circle.id}", "/circles", "/api/v1/me",
                     "/notifications", "/profile", f"/api/v1/users/{w.alice.id}"):
            assert client.get(path).status_code == 200, path
    # Someone who may not see Alice's data is refused, and nothing is recorded as seen.
    assert other.get(f"/people/{w.alice.id}/tracking").status_code == 404
    assert_error(other.get(f"/api/v1/questionnaires/responses?user_id={w.alice.id}"), 404, field="user_id")
    assert count_rows(AuditEntry) == before


def test_escalations_and_the_review_queue_are_audited_per_person_shown(world, client_for):
    w = world
    alice, bob = client_for(w.alice), client_for(w.bob)
    assert post(alice, w.circle, CRISIS).status_code == 201
    assert post(bob, w.circle, CRISIS.replace("Goodbye", "Farewell")).status_code == 201
    clinician, coach = client_for(w.clinician), client_for(w.coach)
    listed = clinician.get("/api/v1/escalations").json()
    assert len(listed) == 2
    by_subject = {e.subject_id: e for e in reads(action="read.escalation")}
    assert set(by_subject) == {w.alice.id, w.bob.id}
    alices = next(e for e in listed if e["subject_id"] == w.alice.id)
    assert (by_subject[w.alice.id].object_type, by_subject[w.alice.id].object_id) == ("escalation", alices["id"])
    assert clinician.get(f"/safety/escalations/{alices['id']}").status_code == 200
    assert clinician.get("/safety/escalations").status_code == 200
    assert len(reads(action="read.escalation", subject_id=w.alice.id)) == 3
    # Acknowledging answers the escalation too: its reading joins the write's own unit of work.
    assert clinician.post(f"/api/v1/escalations/{alices['id']}/acknowledge").status_code == 200
    assert len(reads(action="read.escalation", subject_id=w.alice.id)) == 4

    queue = coach.get(f"/api/v1/circles/{w.circle.id}/review").json()
    assert {item["author_id"] for item in queue} == {w.alice.id, w.bob.id}
    assert coach.get(f"/circles/{w.circle.id}/review").status_code == 200
    mine = reads(action="read.review_queue", subject_id=w.alice.id)
    assert len(mine) == 2 and mine[0].actor_id == w.coach.id and mine[0].object_type == "review_item"
    assert mine[0].detail == f"circle {w.circle.id}"
    assert intact() == count_rows(AuditEntry)


def test_several_objects_of_one_person_make_one_entry_that_names_them(world):
    coach, alice, bob = world.coach.id, world.alice.id, world.bob.id
    with dbmod.transaction() as s:
        assert record_reads(s, coach, [Read("read.escalation", alice, "escalation", n) for n in (3, 4, 4, 9)]
                            + [Read("read.escalation", coach, "escalation", 5)], ip="10.0.0.1") == 1
    with dbmod.transaction(write=False) as s:
        assert record_reads(s, coach, [Read("read.tracking", alice, "user", alice, "a"),
                                       Read("read.tracking", bob, "user", bob)]) == 2
        assert record_reads(s, alice, [Read("read.tracking", alice, "user", alice)]) == 0
        with pytest.raises(ValueError, match="not an audited read"):
            record_reads(s, coach, [Read("read.everything", alice, "user", alice)])
    [grouped, tracking_alice, tracking_bob] = reads()
    assert (grouped.object_type, grouped.object_id, grouped.detail) == ("escalation", None, "3 shown: 3, 4, 9")
    assert grouped.subject_id == alice and grouped.ip_address == "10.0.0.1"
    assert (tracking_alice.subject_id, tracking_alice.detail, tracking_bob.subject_id) == (alice, "a", bob)
    assert intact() == count_rows(AuditEntry)


def test_study_metrics_and_exports_are_audited_for_each_participant(world, client_for, tmp_path):
    from peerlift.cli import app
    from peerlift.research.models import StudyMember, StudyRole

    w = world
    with dbmod.transaction() as s:
        s.add(StudyMember(study_id=w.study.id, user_id=w.researcher.id, role=StudyRole.researcher))
        design(s, w.study)
        enrol(s, w.study, w.alice, w.arm_a, w.circle)
        enrol(s, w.study, w.carol, w.arm_b, w.other_circle)
    researcher = client_for(w.researcher)
    assert researcher.get(f"/api/v1/studies/{w.study.id}/metrics").status_code == 200
    seen = reads(action="read.study_metrics")
    assert {e.subject_id for e in seen} == {w.alice.id, w.carol.id}
    assert {(e.actor_id, e.object_type, e.object_id) for e in seen} == {(w.researcher.id, "study", w.study.id)}
    # The dashboard shows figures by arm, not by person: not audited.
    assert researcher.get("/studies/trial/dashboard").status_code == 200
    assert len(reads(action="read.study_metrics")) == 2

    result = CliRunner().invoke(app, ["export", "--study", "trial", "--format", "csv", "--out", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    exported = reads(action="read.research_export")
    assert {e.subject_id for e in exported} == {w.alice.id, w.carol.id}
    assert {(e.actor_id, e.detail) for e in exported} == {(None, "csv export")}
    # A failed export leaves no entry.
    result = CliRunner().invoke(app, ["export", "--study", "trial", "--format", "csv", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert len(reads(action="read.research_export")) == 2
    assert intact() == count_rows(AuditEntry)


def test_concurrent_clinical_reads_keep_the_chain_whole(tracked, client_for):
    w = tracked
    clients = [client_for(person) for person in (w.coach, w.coach, w.clinician, w.coach, w.clinician, w.coach)]
    paths = [f"/people/{w.alice.id}/tracking", f"/api/v1/questionnaires/responses?user_id={w.alice.id}",
             f"/people/{w.bob.id}/tracking/weight.svg", f"/api/v1/tracking/entries?user_id={w.bob.id}"]
    rounds = 4
    start = threading.Barrier(len(clients))
    failures: list[str] = []

    def read_all(client) -> None:
        start.wait()
        for _ in range(rounds):
            for path in paths:
                answer = client.get(path)
                if answer.status_code != 200:
                    failures.append(f"{path}: {answer.status_code} {answer.text[:200]}")

    threads = [threading.Thread(target=read_all, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures
    # Each round of each reader: the person page (tracking + questionnaires, Alice answered one),
    # her answers, Bob's chart and Bob's entries.
    assert len(reads()) == len(clients) * rounds * 5
    assert intact() == count_rows(AuditEntry)
    with dbmod.transaction(write=False) as s:
        rows = list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:]))


def test_a_changed_subject_breaks_the_chain(tracked, client_for):
    w = tracked
    assert client_for(w.coach).get(f"/people/{w.alice.id}/tracking").status_code == 200
    [first, _second] = reads()
    with dbmod.transaction() as s:
        s.execute(update(AuditEntry).where(AuditEntry.id == first.id).values(subject_id=w.bob.id))
    with dbmod.transaction(write=False) as s:
        _checked, broken = verify(s)
    assert broken.entry_id == first.id and broken.problem == "this entry was changed"


# --- the admin's search ------------------------------------------------------------------------------------

@pytest.fixture
def trail(world):
    """Entries on three days from two addresses: the coach read Alice's and Bob's data, Alice signed in."""
    w = world
    day = (utcnow() - dt.timedelta(days=10)).replace(hour=12, minute=0, second=0, microsecond=0)
    with dbmod.transaction() as s:
        with clock_at(day):
            record_reads(s, w.coach.id, [Read("read.tracking", w.alice.id, "user", w.alice.id)], ip="10.0.0.5")
        with clock_at(day + dt.timedelta(days=1)):
            record_reads(s, w.coach.id, [Read("read.questionnaire_responses", w.bob.id, "user", w.bob.id)],
                         ip="10.0.0.6")
            identity.audit(s, w.alice.id, "session.started", "user", w.alice.id, ip="192.168.1.9")
        with clock_at(day + dt.timedelta(days=2)):
            record_reads(s, w.clinician.id, [Read("read.escalation", w.alice.id, "escalation", 42)], ip="10.0.0.5")
    w.day = day
    return w


def search(client, **params) -> list[str]:
    answer = client.get("/api/v1/admin/audit", params=params)
    assert answer.status_code == 200, answer.text
    return [e["action"] for e in answer.json()["entries"]]


def test_admins_search_the_trail_by_every_filter(trail, client_for):
    w = trail
    admin = client_for(w.admin)
    everything = admin.get("/api/v1/admin/audit").json()
    ids = [e["id"] for e in everything["entries"]]
    assert ids == sorted(ids, reverse=True) and everything["next_before"] is None
    newest = everything["entries"][0]
    assert newest["action"] == "session.started" and newest["actor_handle"] == w.admin.handle  # the admin's sign-in

    assert search(admin, actor=f"@{w.coach.handle}", action="read.") == ["read.questionnaire_responses",
                                                                         "read.tracking"]
    assert search(admin, actor=str(w.coach.id), action="read.") == ["read.questionnaire_responses", "read.tracking"]
    assert search(admin, actor=w.clinician.email.upper(), action="read.") == ["read.escalation"]
    assert search(admin, actor=w.coach.handle)[-1] == "user.created"  # everything the coach did
    assert search(admin, action="read.") == ["read.escalation", "read.questionnaire_responses", "read.tracking"]
    assert search(admin, action="read.q") == ["read.questionnaire_responses"]
    assert search(admin, action="read%") == []  # a prefix, not a pattern
    assert search(admin, object_type="escalation", object_id=42) == ["read.escalation"]
    assert search(admin, subject=w.alice.handle) == ["read.escalation", "read.tracking"]
    assert search(admin, subject=w.alice.handle, ip="10.0.0.5", actor=w.coach.handle) == ["read.tracking"]
    assert search(admin, ip="10.0.0.") == ["read.escalation", "read.questionnaire_responses", "read.tracking"]
    assert search(admin, ip="192.168.") == ["session.started"]
    day = w.day
    assert search(admin, action="read.", since=(day + dt.timedelta(hours=1)).isoformat(),
                  until=(day + dt.timedelta(days=2)).isoformat()) == ["read.questionnaire_responses"]
    assert search(admin, action="read.", until=day.replace(tzinfo=None).isoformat()) == []  # naive: UTC
    body = admin.get("/api/v1/admin/audit", params={"subject": w.alice.handle}).json()
    found = body["entries"][0]
    assert found["subject_id"] == w.alice.id and found["subject_name"] == "Alice Archer"
    assert found["actor_name"] == "Cleo Clinician" and found["ip_address"] == "10.0.0.5"


def test_the_trail_comes_in_pages_newest_first(trail, client_for):
    admin = client_for(trail.admin)
    seen, before = [], None
    while True:
        params = {"limit": 2, **({"before": before} if before else {})}
        body = admin.get("/api/v1/admin/audit", params=params).json()
        assert len(body["entries"]) <= 2
        seen += [e["id"] for e in body["entries"]]
        before = body["next_before"]
        if before is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == count_rows(AuditEntry)


@pytest.mark.parametrize("params,status,field,words", [
    ({"actor": "@nobody"}, 422, "actor", "No account '@nobody'"),
    ({"subject": "nobody@example.test"}, 422, "subject", "No account"),
    ({"actor": str(2**64)}, 422, "actor", "No account has the id"),
    ({"since": "2026-02-02T00:00:00Z", "until": "2026-02-01T00:00:00Z"}, 422, "until", "comes before its start"),
    ({"since": "yesterday"}, 422, "since", ""),
    ({"limit": 500}, 422, "limit", ""),
    ({"object_id": -1}, 422, "object_id", ""),
])
def test_bad_filters_are_refused_saying_which(trail, client_for, params, status, field, words):
    error = assert_error(client_for(trail.admin).get("/api/v1/admin/audit", params=params), status, field=field)
    assert words in error["message"]


@pytest.mark.parametrize("who", ["alice", "coach", "clinician", "researcher"])
def test_the_trail_does_not_exist_for_anyone_but_admins(trail, client_for, who):
    client = client_for(getattr(trail, who))
    before = count_rows(AuditEntry)
    assert_error(client.get("/api/v1/admin/audit"), 404, "not_found")
    assert_error(client.get("/api/v1/admin/audit?limit=5000&since=nonsense"), 404, "not_found")
    assert_error(client.get("/api/v1/admin/audit/verify"), 404, "not_found")
    page = client.get("/admin/audit")
    assert page.status_code == 404 and "10.0.0.5" not in page.text
    assert client.get("/admin/audit?verify=1").status_code == 404
    assert 'href="/admin/audit"' not in client.get("/profile").text
    assert count_rows(AuditEntry) == before


def test_signed_out_the_trail_asks_for_sign_in(trail, anon):
    assert_error(anon.get("/api/v1/admin/audit"), 401)
    assert_error(anon.get("/api/v1/me/access-log"), 401)
    assert anon.get("/admin/audit", follow_redirects=False).headers["location"] == "/login?next=/admin/audit"


def test_the_admin_page_searches_pages_and_verifies_on_request(trail, client_for):
    w = trail
    admin = client_for(w.admin)
    html = admin.get("/admin/audit").text
    assert 'href="/admin/audit"' in html  # in the navigation
    assert "Verify the chain" in html and "The chain is intact" not in html  # checking waits for the button
    html = admin.get("/admin/audit", params={"subject": w.alice.handle, "action": "read."}).text
    assert "read.escalation" in html and "read.tracking" in html and "read.questionnaire_responses" not in html
    assert "10.0.0.5" in html and "Cleo Clinician" in html
    day = w.day.astimezone(dt.UTC).date()  # the admin's zone is Europe/London: the same date at noon
    html = admin.get("/admin/audit", params={"action": "read.", "since": str(day + dt.timedelta(days=1)),
                                             "until": str(day + dt.timedelta(days=1))}).text
    assert "read.questionnaire_responses" in html and "read.tracking" not in html and "read.escalation" not in html
    bad = admin.get("/admin/audit", params={"since": "31/12/2026"})
    assert bad.status_code == 422 and "is not a date: write it as YYYY-MM-DD" in bad.text
    bad = admin.get("/admin/audit", params={"actor": "@nobody"})
    assert bad.status_code == 422 and "No account &#39;@nobody&#39;" in bad.text
    # Pages: 50 entries at a time, with a link to the older ones that keeps the filters.
    with dbmod.transaction() as s:
        for n in range(60):
            record_reads(s, w.coach.id, [Read("read.tracking", w.bob.id, "user", w.bob.id, f"view {n}")])
    html = admin.get("/admin/audit", params={"subject": w.bob.id}).text
    assert "view 59" in html and "view 10" in html and "view 9<" not in html
    import re

    older = re.search(r'href="(/admin/audit\?[^"]+)" rel="next"', html).group(1).replace("&amp;", "&")
    assert f"subject={w.bob.id}" in older
    html = admin.get(older).text
    assert "view 9<" in html and "view 0<" in html and "view 10<" not in html and "Newest entries" in html

    html = admin.get("/admin/audit", params={"verify": 1}).text
    assert f"The chain is intact: {count_rows(AuditEntry)} entries" in html
    with dbmod.transaction() as s:
        victim = s.scalar(select(AuditEntry.id).where(AuditEntry.detail == "view 30"))
        s.execute(update(AuditEntry).where(AuditEntry.id == victim).values(detail="nothing to see"))
    html = admin.get("/admin/audit", params={"verify": 1}).text
    assert f"The chain is broken at entry {victim}: this entry was changed" in html
    verdict = admin.get("/api/v1/admin/audit/verify").json()
    assert verdict["intact"] is False and verdict["broken_entry_id"] == victim


def test_the_verify_api_reports_an_intact_chain(trail, client_for):
    verdict = client_for(trail.admin).get("/api/v1/admin/audit/verify").json()
    assert verdict == {"intact": True, "checked": count_rows(AuditEntry), "broken_entry_id": None, "problem": None}


# --- the participant's access log ----------------------------------------------------------------------------

def test_alice_sees_who_was_shown_her_data_and_only_hers(trail, client_for):
    w = trail
    alice = client_for(w.alice)
    log = alice.get("/api/v1/me/access-log").json()
    assert [(e["viewer_name"], e["viewer_role"], e["action"]) for e in log["entries"]] == [
        ("Cleo Clinician", "clinician", "read.escalation"), ("Maya Coach", "facilitator", "read.tracking")]
    assert log["entries"][0]["what"] == "a safety escalation about you, with its triage reasons"
    assert log["next_before"] is None
    assert all("ip_address" not in e for e in log["entries"])
    html = alice.get("/profile/access-log").text
    assert "Maya Coach" in html and "your tracking entries, goals and charts" in html and "Cleo Clinician" in html
    assert "10.0.0" not in html and "Bob" not in html
    assert 'href="/profile/access-log"' in alice.get("/profile").text
    # Bob's log holds only what was shown of Bob.
    bob = client_for(w.bob).get("/api/v1/me/access-log").json()
    assert [(e["viewer_name"], e["action"]) for e in bob["entries"]] == [
        ("Maya Coach", "read.questionnaire_responses")]
    # Carol's is empty, and says so.
    carol = client_for(w.carol)
    assert carol.get("/api/v1/me/access-log").json() == {"entries": [], "next_before": None}
    assert "Nobody else has seen your health data" in carol.get("/profile/access-log").text


def test_the_access_log_comes_in_pages(trail, client_for):
    w = trail
    with dbmod.transaction() as s:
        for n in range(5):
            record_reads(s, w.coach.id, [Read("read.tracking", w.alice.id, "user", w.alice.id, f"view {n}")])
    alice = client_for(w.alice)
    first = alice.get("/api/v1/me/access-log", params={"limit": 4}).json()
    rest = alice.get("/api/v1/me/access-log", params={"limit": 4, "before": first["next_before"]}).json()
    assert len(first["entries"]) == 4 and len(rest["entries"]) == 3 and rest["next_before"] is None
    assert_error(alice.get("/api/v1/me/access-log", params={"limit": 0}), 422, field="limit")
    assert_error(alice.get("/api/v1/me/access-log", params={"before": "x"}), 422, field="before")
