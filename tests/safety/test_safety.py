"""Safety as people meet it: crisis posts held and escalated, idioms passing quietly, flags and the
review queue, gating, the privacy warning, posting limits, and the acknowledgement deadline."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from peerlift import db as dbmod
from peerlift.community.models import CircleRole, Post
from peerlift.db import clock_at, utcnow
from peerlift.events import Event
from peerlift.notify.models import Kind, Notification
from peerlift.safety.models import Escalation, EscalationStep, Flag, ModerationAction, ReviewItem, TriageRecord
from peerlift.settings import get_settings
from tests.conftest import assert_error, count_rows, post, run_due

CRISIS = "I've saved up all my tablets and tonight I'm going to take them. Goodbye everyone."
EMERGENCY = "crushing pain in my chest and my left arm has gone numb, sweating loads"


def feed_ids(client, circle) -> list[int]:
    return [p["id"] for p in client.get(f"/api/v1/circles/{circle.id}/posts").json()["posts"]]


def test_a_crisis_post_is_held_escalated_and_the_author_supported(world, client_for):
    alice, bob = client_for(world.alice), client_for(world.bob)
    answer = post(alice, world.circle, CRISIS)
    assert answer.status_code == 201
    body = answer.json()
    assert body["visibility"] == "held"
    safety = body["safety"]
    assert safety["level"] == "crisis" and safety["held"] is True
    assert "clinician" in safety["message"] and any(r.get("phone") == "116 123" for r in safety["resources"])
    # The circle does not see it; the author does, marked as held.
    assert body["id"] not in feed_ids(bob, world.circle)
    assert bob.get(f"/api/v1/posts/{body['id']}").status_code == 404
    assert body["id"] in feed_ids(alice, world.circle)
    # The post was announced to its author only.
    with dbmod.transaction() as s:
        event = s.scalar(select(Event).where(Event.kind == "post.created", Event.object_id == body["id"]))
        assert event.space_id is None and event.user_id == world.alice.id
        escalation = s.scalar(select(Escalation).where(Escalation.object_id == body["id"]))
        assert escalation.level == "crisis" and escalation.subject_id == world.alice.id
        assert any("goodbye" in r.lower() or "means" in r.lower() or "plan" in r.lower() for r in escalation.reasons)
        # The circle's clinician is alerted in-app, on the live stream, and by email.
        assert s.scalar(select(Notification).where(Notification.user_id == world.clinician.id,
                                                   Notification.kind == Kind.escalation)) is not None
        assert s.scalar(select(Event).where(Event.kind == "escalation.opened",
                                            Event.user_id == world.clinician.id)) is not None
        assert [st.kind for st in s.scalars(select(EscalationStep).where(
            EscalationStep.escalation_id == escalation.id))] == ["raised", "notified"]
    # The clinician sees it with its reasons, and the post in the circle's queue.
    clinician = client_for(world.clinician)
    listed = clinician.get("/api/v1/escalations").json()
    assert [e["id"] for e in listed] == [escalation.id] and listed[0]["reasons"]
    queue = clinician.get(f"/api/v1/circles/{world.circle.id}/review").json()
    assert queue[0]["object_id"] == body["id"] and queue[0]["source"] == "triage" and queue[0]["reasons"]


def test_a_medical_emergency_tells_the_author_to_call_now(world, client_for):
    safety = post(client_for(world.alice), world.circle, EMERGENCY).json()["safety"]
    assert safety["emergency"] is True and safety["level"] == "crisis"
    assert "Call 999 now" in safety["message"]


def test_idioms_and_negations_pass_quietly(world, client_for):
    alice, bob = client_for(world.alice), client_for(world.bob)
    for text in ("this diet is killing me, I could kill for a biscuit",
                 "I would never hurt myself, I just needed a rant about the scales",
                 "years ago I tried to end it. I'm in a good place now and this group is part of why"):
        body = post(alice, world.circle, text).json()
        assert body["safety"]["level"] == "green" and body["visibility"] == "visible", text
        assert body["id"] in feed_ids(bob, world.circle)
    assert count_rows(Escalation) == 0


def test_unacknowledged_escalation_moves_up_the_rota_then_to_admins(world, client_for):
    from tests.factories import add_member, create_user
    from peerlift.identity.models import Role

    with dbmod.transaction() as s:
        second = create_user(s, "Sam Second", Role.clinician)
        add_member(s, world.circle, second, CircleRole.clinician)
    post(client_for(world.alice), world.circle, CRISIS)
    run_due()  # the first alert emails go out
    minutes = get_settings().escalation_ack_minutes
    with clock_at(utcnow() + dt.timedelta(minutes=minutes + 1)):
        run_due()
    with dbmod.transaction() as s:
        escalation = s.scalar(select(Escalation))
        assert escalation.tier == 1
        assert s.scalar(select(Notification).where(Notification.user_id == second.id,
                                                   Notification.kind == Kind.escalation)) is not None
    with clock_at(utcnow() + dt.timedelta(minutes=2 * minutes + 2)):
        run_due()
    with dbmod.transaction() as s:
        escalation = s.scalar(select(Escalation))
        assert escalation.tier == 2
        assert s.scalar(select(Notification).where(Notification.user_id == world.admin.id,
                                                   Notification.kind == Kind.escalation)) is not None
        kinds = [st.kind for st in s.scalars(select(EscalationStep).order_by(EscalationStep.id))]
        assert kinds == ["raised", "notified", "escalated", "escalated"]
    # Acknowledged: the next deadline passes quietly; acknowledging twice is a conflict.
    admin = client_for(world.admin)
    acked = admin.post(f"/api/v1/escalations/{escalation.id}/acknowledge")
    assert acked.status_code == 200 and acked.json()["acknowledged_by"] == world.admin.display_name
    assert_error(client_for(world.clinician).post(f"/api/v1/escalations/{escalation.id}/acknowledge"), 409,
                 "already_handled")
    with clock_at(utcnow() + dt.timedelta(minutes=4 * minutes)):
        run_due()
    with dbmod.transaction() as s:
        assert s.scalar(select(Escalation)).tier == 2
    resolved = admin.post(f"/api/v1/escalations/{escalation.id}/resolve",
                          json={"outcome": "contacted", "note": "Spoke on the phone; safety plan agreed."})
    assert resolved.status_code == 200
    steps = [s["kind"] for s in resolved.json()["steps"]]
    assert steps[-2:] == ["acknowledged", "resolved"]
    # The held post was released by the clinician's decision.
    assert resolved.json()["object_id"] in feed_ids(client_for(world.bob), world.circle)
    assert_error(admin.post(f"/api/v1/escalations/{escalation.id}/resolve", json={"outcome": "contacted"}), 409)
    assert_error(admin.post(f"/api/v1/escalations/{escalation.id}/resolve", json={"outcome": "shrug"}), 422, field="outcome")


def test_escalations_are_only_for_the_circles_clinicians(world, client_for):
    post(client_for(world.alice), world.circle, CRISIS)
    with dbmod.transaction() as s:
        escalation_id = s.scalar(select(Escalation.id))
    for person in (world.bob, world.coach, world.researcher):
        assert client_for(person).get(f"/api/v1/escalations/{escalation_id}").status_code == 404
    assert_error(client_for(world.bob).get("/api/v1/escalations"), 403)


def test_flags_reach_the_queue_and_bad_flags_are_refused(world, client_for):
    alice, bob, coach, pat = (client_for(p) for p in (world.alice, world.bob, world.coach, world.pat))
    post_id = post(alice, world.circle, "Skip your insulin, the diet works better without it").json()["id"]
    flag = {"object_type": "post", "object_id": post_id, "reason": "harmful_advice", "note": "dangerous"}
    assert bob.post("/api/v1/flags", json=flag).status_code == 201
    assert_error(bob.post("/api/v1/flags", json=flag), 409, "already_flagged")
    assert_error(alice.post("/api/v1/flags", json=flag), 422, field="object_id")
    assert_error(pat.post("/api/v1/flags", json={**flag, "reason": "boring"}), 422, field="reason")
    assert_error(client_for(world.carol).post("/api/v1/flags", json=flag), 404)
    assert count_rows(Flag) == 1
    queue = pat.get(f"/api/v1/circles/{world.circle.id}/review").json()  # peer supporters see it
    assert queue[0]["flags"] == ["Harmful health advice: dangerous"]
    item_id = queue[0]["id"]
    assert_error(pat.post(f"/api/v1/review/{item_id}/actions", json={"action": "remove", "reason": "x"}), 403)
    assert_error(bob.get(f"/api/v1/circles/{world.circle.id}/review"), 404)
    assert_error(coach.post(f"/api/v1/review/{item_id}/actions", json={"action": "remove"}), 422, field="reason")
    removed = coach.post(f"/api/v1/review/{item_id}/actions",
                         json={"action": "remove", "reason": "Stopping insulin is dangerous; talk to your team."})
    assert removed.status_code == 201
    assert post_id not in feed_ids(bob, world.circle)
    mine = alice.get(f"/api/v1/posts/{post_id}").json()
    assert mine["visibility"] == "removed" and "dangerous" in mine["removed_reason"]
    # Someone else acting on the handled item: a clear conflict, not a second action.
    with dbmod.transaction() as s:
        from tests.factories import add_member, create_user
        from peerlift.identity.models import Role

        second = create_user(s, "Fran Facil", Role.facilitator)
        add_member(s, world.circle, second, CircleRole.facilitator)
    conflict = client_for(second).post(f"/api/v1/review/{item_id}/actions", json={"action": "restore"})
    assert_error(conflict, 409, "already_handled")
    assert "Maya Coach" in conflict.json()["error"]["message"]
    assert count_rows(ModerationAction) == 1
    with dbmod.transaction() as s:
        told = {n.user_id for n in s.scalars(select(Notification).where(Notification.kind == Kind.moderation))}
    assert told == {world.alice.id, world.bob.id}


def test_gated_members_posts_wait_for_approval(world, client_for):
    coach, alice, bob = client_for(world.coach), client_for(world.alice), client_for(world.bob)
    assert coach.put(f"/api/v1/circles/{world.circle.id}/members/{world.alice.id}/gating",
                     json={"gated": True}).status_code == 204
    assert_error(bob.put(f"/api/v1/circles/{world.circle.id}/members/{world.alice.id}/gating",
                         json={"gated": False}), 403)
    body = post(alice, world.circle, "Had a good walk today").json()
    assert body["visibility"] == "held" and "coach" in body["safety"]["held_reason"]
    assert body["id"] not in feed_ids(bob, world.circle)
    item = coach.get(f"/api/v1/circles/{world.circle.id}/review").json()[0]
    assert item["source"] == "gated"
    assert coach.post(f"/api/v1/review/{item['id']}/actions", json={"action": "approve"}).status_code == 201
    assert body["id"] in feed_ids(bob, world.circle)
    assert count_rows(Event, Event.kind == "post.released", Event.space_id == world.circle.id) == 1


def test_personal_information_is_warned_before_it_goes_out(world, client_for):
    alice = client_for(world.alice)
    text = "Text me on 07911 123456 or jane.smith@example.org if you want a walking buddy"
    before = count_rows(Post)
    warned = post(alice, world.circle, text)
    error = assert_error(warned, 422, "personal_information", field="body")
    assert "phone number" in error["message"] and "email address" in error["message"]
    assert count_rows(Post) == before
    assert post(alice, world.circle, text, confirm_personal_information=True).status_code == 201
    found = alice.post("/api/v1/safety/personal-information", json={"text": text}).json()
    assert [f["kind"] for f in found["findings"]] == ["phone", "email"]


def test_posting_limits_and_mutes(world, client_for, monkeypatch):
    monkeypatch.setenv("PEERLIFT_POSTS_PER_MINUTE", "2")
    get_settings.cache_clear()
    alice = client_for(world.alice)
    assert post(alice, world.circle, "one").status_code == 201
    assert post(alice, world.circle, "two").status_code == 201
    before = count_rows(Post)
    assert_error(post(alice, world.circle, "three"), 429, "rate_limited")
    assert count_rows(Post) == before
    with clock_at(utcnow() + dt.timedelta(minutes=2)):
        assert post(alice, world.circle, "later").status_code == 201
    monkeypatch.setenv("PEERLIFT_POSTS_PER_MINUTE", "1000")
    get_settings.cache_clear()
    # A mute from the queue stops writing until it ends.
    bob, coach = client_for(world.bob), client_for(world.coach)
    post_id = post(alice, world.circle, "buy cheap pills at my shop").json()["id"]
    bob.post("/api/v1/flags", json={"object_type": "post", "object_id": post_id, "reason": "spam"})
    item = coach.get(f"/api/v1/circles/{world.circle.id}/review").json()[0]
    assert_error(coach.post(f"/api/v1/review/{item['id']}/actions", json={"action": "mute", "reason": "spam"}), 422,
                 field="mute_hours")
    assert coach.post(f"/api/v1/review/{item['id']}/actions",
                      json={"action": "mute", "reason": "Spam", "mute_hours": 24}).status_code == 201
    assert_error(post(alice, world.circle, "hello?"), 403, "muted")


def test_direct_messages_and_comments_are_triaged(world, client_for):
    alice = client_for(world.alice)
    conversation = alice.post("/api/v1/conversations", json={"user_id": world.coach.id}).json()["id"]
    sent = alice.post(f"/api/v1/conversations/{conversation}/messages",
                      json={"body": "I don't want to be here anymore. Everyone would be better off without me"})
    assert sent.status_code == 201 and sent.json()["safety"]["level"] == "red"
    post_id = post(client_for(world.bob), world.circle, "Morning all").json()["id"]
    comment = alice.post(f"/api/v1/posts/{post_id}/comments", json={"body": "lovely, dying to get out there"})
    assert comment.json()["safety"]["level"] == "green"
    with dbmod.transaction() as s:
        levels = {(r.object_type, r.level) for r in s.scalars(select(TriageRecord))}
        assert ("message", "red") in levels and ("comment", "green") in levels
        assert s.scalar(select(Escalation.object_type)) == "message"
    assert count_rows(ReviewItem) == 0


def test_phq9_item9_opens_an_escalation_whatever_the_total(world, client_for):
    coach, alice = client_for(world.coach), client_for(world.alice)
    assert coach.post(f"/api/v1/circles/{world.circle.id}/questionnaires",
                      json={"instrument": "phq9", "user_id": world.alice.id}).status_code == 201
    [request] = alice.get("/api/v1/questionnaires/requests", params={"open_only": True}).json()
    stored = alice.post(f"/api/v1/questionnaires/requests/{request['id']}/response",
                        json={"answers": [0, 0, 0, 0, 0, 0, 0, 0, 1]})
    assert stored.status_code == 201 and stored.json()["band"] == "minimal"
    [escalation] = client_for(world.clinician).get("/api/v1/escalations").json()
    assert escalation["object_type"] == "response" and escalation["subject_id"] == world.alice.id
    assert "item 9" in escalation["reasons"][0] and "answered 1" in escalation["reasons"][0]


def test_a_direct_message_can_be_flagged_into_the_shared_circles_queue(world, client_for):
    alice, coach = client_for(world.alice), client_for(world.coach)
    conversation = coach.post("/api/v1/conversations", json={"user_id": world.alice.id}).json()["id"]
    message_id = coach.post(f"/api/v1/conversations/{conversation}/messages",
                            json={"body": "Send me your bank details and I'll sort your refund"}).json()["id"]
    flag = {"object_type": "message", "object_id": message_id, "reason": "spam"}
    assert_error(client_for(world.bob).post("/api/v1/flags", json=flag), 404)
    assert alice.post("/api/v1/flags", json=flag).status_code == 201
    queue = coach.get(f"/api/v1/circles/{world.circle.id}/review").json()
    assert [(i["object_type"], i["object_id"]) for i in queue] == [("message", message_id)]
    page = alice.get(f"/messages/m/{message_id}/flag")
    assert page.status_code == 200 and "Flag this message" in page.text
    assert client_for(world.bob).get(f"/messages/m/{message_id}/flag").status_code == 404


def test_the_clinician_sees_the_persons_risk_and_scores_history(world, client_for):
    coach, alice = client_for(world.coach), client_for(world.alice)
    coach.post(f"/api/v1/circles/{world.circle.id}/questionnaires", json={"instrument": "phq9", "user_id": world.alice.id})
    [request] = alice.get("/api/v1/questionnaires/requests", params={"open_only": True}).json()
    alice.post(f"/api/v1/questionnaires/requests/{request['id']}/response", json={"answers": [2, 2, 2, 2, 2, 2, 2, 2, 0]})
    post(alice, world.circle, "feeling hopeless and crying every night")
    post(alice, world.circle, CRISIS)
    clinician = client_for(world.clinician)
    [listed] = clinician.get("/api/v1/escalations").json()
    detail = clinician.get(f"/api/v1/escalations/{listed['id']}").json()
    whats = [h["what"] for h in detail["history"]]
    assert whats[0] == "post" and detail["history"][0]["level"] == "crisis"
    assert "post" in whats[1:] and "PHQ9 score 16" in whats


def test_the_writing_limits_read_only_the_last_hour_of_a_persons_writing(sqlite_database):
    """The posting limits count a person's last hour through (author, time) indexes, so a member with
    years of posts writes as fast as a newcomer (before, the count read the whole history)."""
    from sqlalchemy import event

    from peerlift.safety.service import _written_since
    from tests.conftest import migrate_fresh

    migrate_fresh(sqlite_database)
    engine = dbmod.get_engine()
    seen: list[tuple[str, tuple]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with dbmod.transaction(write=False) as s:
            now = utcnow()
            assert _written_since(s, 1, now - dt.timedelta(minutes=1), now - dt.timedelta(hours=1)) == (0, 0)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    statement, parameters = next((st, p) for st, p in seen if "UNION ALL" in st)
    with engine.connect() as conn:
        plan = " | ".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))
    for table in ("post", "comment", "experience_report"):
        assert re.search(rf"SEARCH {table} USING (?:COVERING )?INDEX ix_{table}_author_id_created_at "
                         r"\(author_id=\? AND created_at>\?\)", plan), plan
    assert "SCAN post" not in plan and "SCAN comment" not in plan
