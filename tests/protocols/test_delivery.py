"""Protocols delivered: assignment, rolling horizon, conditions at send time, migration,
time-zone changes, and the fidelity report."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update

from peerlift import db as dbmod
from peerlift.community.models import Message, Post
from peerlift.delivery.models import ScheduledDelivery
from peerlift.notify.models import Notification
from peerlift.protocols.models import Assignment, PlannedDelivery, PlannedStatus
from peerlift.research.models import StudyMember, StudyRole
from tests.conftest import assert_error, count_rows, run_due

PROTOCOL = """\
id: walk
version: "{version}"
title: Walking together
description: A test protocol.
duration_days: 30
items:
  - id: morning-post
    days: 1-30
    at: "08:00"
    channel: circle_post
    audience: circle
    text: "Day {{day}} in {{circle_name}}: where will you walk today?"
  - id: feedback
    days: 1-30
    at: "19:00"
    channel: notification
    kind: engagement_feedback
    text: "{{first_name}}, you posted {{my_posts_week}} times this week; your circle {{circle_posts_week}}."
  - id: nudge
    days: 1-30
    at: "12:00"
    channel: facilitator_dm
    text: "Hi {{first_name}}, we missed you!"
    condition:
      inactive_days: 2
"""


def _register(client, version="1.0.0"):
    response = client.post("/api/v1/protocols", json={"source": PROTOCOL.format(version=version)})
    assert response.status_code == 201, response.text
    return response.json()


def _run_until(moment: dt.datetime) -> None:
    """Run the scheduler as if the clock said ``moment``."""
    with dbmod.clock_at(moment):
        run_due(times=50)


def _assign(client, circle, version_id, start):
    response = client.post(f"/api/v1/circles/{circle.id}/assignments",
                           json={"protocol_version_id": version_id, "start_date": start.isoformat()})
    assert response.status_code == 201, response.text
    return response.json()


def test_register_rejects_a_bad_file_with_its_lines(world, client_for):
    coach = client_for(world.coach)
    error = assert_error(coach.post("/api/v1/protocols", json={"source": "id: x\nversion: 1\n"}), 422,
                         "protocol_invalid", "source")
    assert "protocol.yaml:1: " in error["message"] and "missing key 'title'" in error["message"]
    assert_error(client_for(world.alice).post("/api/v1/protocols", json={"source": PROTOCOL.format(version="1")}),
                 403)
    first = _register(coach)
    assert _register(coach)["id"] == first["id"]  # the same file twice is the same version
    changed = PROTOCOL.format(version="1.0.0").replace("where will you walk", "where are you walking")
    assert_error(coach.post("/api/v1/protocols", json={"source": changed}), 409, "conflict")


def test_rolling_horizon_and_delivery_in_each_persons_time(world, client_for, session):

    coach = client_for(world.coach)
    client_for(world.bob).patch("/api/v1/me", json={"timezone": "America/New_York"})
    version = _register(coach)
    today = dbmod.utcnow().date()
    start = today + dt.timedelta(days=1)
    assignment = _assign(coach, world.circle, version["id"], start)
    assert assignment["status"] == "active" and assignment["planned_through"] is not None
    with dbmod.transaction(write=False) as s:
        planned = s.scalars(select(PlannedDelivery)).all()
        days = {p.day for p in planned}
        assert max(days) <= 3, "only a rolling horizon is planned, not 30 days"
        bob_feedback = [p for p in planned if p.user_id == world.bob.id and p.item_id == "feedback"]
        assert all(p.timezone == "America/New_York" and p.local_time == "19:00" for p in bob_feedback)
        assert all(p.planned_at.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York")).hour == 19
                   for p in bob_feedback)
        circle_posts = [p for p in planned if p.item_id == "morning-post"]
        assert all(p.user_id is None and p.timezone == "Europe/London" for p in circle_posts)
        members = 3  # alice, bob, pat; the coach and the clinician get nothing
        assert len({p.user_id for p in planned if p.user_id}) == members
    # day 1 in London: the morning post and alice's feedback go out, with their placeholders filled
    day1 = dt.datetime.combine(start, dt.time(20, 0), tzinfo=dt.UTC)
    _run_until(day1)
    with dbmod.transaction(write=False) as s:
        posts = s.scalars(select(Post.body).where(Post.author_id == world.coach.id)).all()
        assert posts == ["Day 1 in Morning Movers: where will you walk today?"]
        feedback = s.scalar(select(Notification.text).where(Notification.user_id == world.alice.id,
                                                             Notification.kind == "prompt"))
        assert feedback == "Alice, you posted 0 times this week; your circle 1."
        # nobody has been active at all: every member was nudged by a direct message from the coach
        nudges = s.scalars(select(PlannedDelivery).where(PlannedDelivery.item_id == "nudge",
                                                         PlannedDelivery.day == 1)).all()
        assert {n.status for n in nudges} == {PlannedStatus.sent} and len(nudges) == 3
        assert sorted(s.scalars(select(Message.body).where(Message.sender_id == world.coach.id)).all()) == [
            "Hi Alice, we missed you!", "Hi Bob, we missed you!", "Hi Pat, we missed you!"]


def test_condition_checked_at_send_time(world, client_for):
    coach, alice = client_for(world.coach), client_for(world.alice)
    version = _register(coach)
    start = dbmod.utcnow().date() - dt.timedelta(days=5)
    _assign(coach, world.circle, version["id"], start)
    # alice is active (posts now); bob and pat are not
    alice.post(f"/api/v1/circles/{world.circle.id}/posts", json={"body": "Out walking!"})
    with dbmod.transaction() as s:
        s.execute(update(ScheduledDelivery).where(ScheduledDelivery.kind == "protocol.deliver")
                  .values(due_at=dbmod.utcnow() - dt.timedelta(seconds=1)))
    run_due(times=50)
    with dbmod.transaction(write=False) as s:
        nudged = set(s.scalars(select(PlannedDelivery.user_id).where(
            PlannedDelivery.item_id == "nudge", PlannedDelivery.status == PlannedStatus.sent)))
        skipped = set(s.scalars(select(PlannedDelivery.user_id).where(
            PlannedDelivery.item_id == "nudge", PlannedDelivery.status == PlannedStatus.skipped)))
        dms = s.scalar(select(func.count(Message.id)).where(Message.sender_id == world.coach.id))
    assert world.alice.id in skipped and world.alice.id not in nudged
    assert {world.bob.id, world.pat.id} <= nudged and dms >= 2


def test_migration_keeps_the_old_version_until_asked_and_is_recorded(world, client_for):
    coach = client_for(world.coach)
    v1, v2 = _register(coach, "1.0.0"), _register(coach, "1.1.0")
    start = dbmod.utcnow().date() + dt.timedelta(days=1)
    first = _assign(coach, world.circle, v1["id"], start)
    assert_error(coach.post(f"/api/v1/circles/{world.circle.id}/assignments",
                            json={"protocol_version_id": v2["id"], "start_date": start.isoformat()}), 409)
    url = f"/api/v1/assignments/{first['id']}/migrate"
    assert_error(coach.post(url, json={"protocol_version_id": v2["id"], "reason": " "}), 422, "invalid", "reason")
    assert_error(client_for(world.alice).post(url, json={"protocol_version_id": v2["id"], "reason": "x"}), 403)
    moved = coach.post(url, json={"protocol_version_id": v2["id"], "reason": "Fixed a typo in the nudge"}).json()
    assert moved["migrated_from_id"] == first["id"] and moved["migration_reason"] == "Fixed a typo in the nudge"
    history = coach.get(f"/api/v1/circles/{world.circle.id}/assignments").json()
    assert [(a["protocol_version_id"], a["status"]) for a in history] == [(v1["id"], "migrated"), (v2["id"], "active")]
    with dbmod.transaction(write=False) as s:
        old = s.scalars(select(PlannedDelivery.status).where(PlannedDelivery.assignment_id == first["id"])).all()
        assert set(old) == {PlannedStatus.cancelled}
        assert s.scalar(select(func.count()).select_from(PlannedDelivery)
                        .where(PlannedDelivery.assignment_id == moved["id"])) > 0


def test_a_person_who_changes_zone_gets_the_rest_in_the_new_zone(world, client_for):
    from zoneinfo import ZoneInfo

    coach, alice = client_for(world.coach), client_for(world.alice)
    version = _register(coach)
    _assign(coach, world.circle, version["id"], dbmod.utcnow().date() + dt.timedelta(days=1))
    alice.patch("/api/v1/me", json={"timezone": "Australia/Sydney"})
    with dbmod.transaction(write=False) as s:
        mine = s.scalars(select(PlannedDelivery).where(PlannedDelivery.user_id == world.alice.id,
                                                       PlannedDelivery.status == PlannedStatus.planned)).all()
        cancelled = s.scalar(select(func.count()).select_from(PlannedDelivery).where(
            PlannedDelivery.user_id == world.alice.id, PlannedDelivery.status == PlannedStatus.cancelled))
    assert mine and cancelled
    assert all(p.timezone == "Australia/Sydney" for p in mine)
    assert all(p.planned_at.astimezone(ZoneInfo("Australia/Sydney")).strftime("%H:%M") == p.local_time for p in mine)


def test_fidelity_report(world, client_for):
    coach = client_for(world.coach)
    version = _register(coach)
    start = dbmod.utcnow().date() - dt.timedelta(days=3)
    assignment = _assign(coach, world.circle, version["id"], start)
    client_for(world.alice).post(f"/api/v1/circles/{world.circle.id}/posts", json={"body": "Walked 5 km"})
    with dbmod.transaction() as s:
        # everything planned was due an hour ago; the worker was not running
        s.execute(update(PlannedDelivery).values(planned_at=dbmod.utcnow() - dt.timedelta(hours=1)))
        s.execute(update(ScheduledDelivery).where(ScheduledDelivery.kind == "protocol.deliver")
                  .values(due_at=dbmod.utcnow() - dt.timedelta(hours=1)))
    run_due(times=50)
    report = coach.get(f"/api/v1/circles/{world.circle.id}/fidelity").json()
    total = report["total"]
    assert total["late"] > 0 and total["on_time"] == 0 and total["skipped"] > 0
    assert report["late"][0]["reason"].startswith("sent 60 min late")
    assert set(report["by_item"]) == {"morning-post", "feedback", "nudge"}
    assert report["protocols"] == ["walk 1.0.0"]
    assert "Alice Archer" in report["by_person"]
    assert_error(client_for(world.alice).get(f"/api/v1/circles/{world.circle.id}/fidelity"), 403)
    assert_error(client_for(world.carol).get(f"/api/v1/circles/{world.circle.id}/fidelity"), 404)
    page = coach.get(f"/circles/{world.circle.id}/protocol")
    assert page.status_code == 200 and "planned versus delivered" in page.text and "60 min late" in page.text
    researcher = client_for(world.researcher)
    assert_error(researcher.get(f"/api/v1/arms/{world.arm_a.id}/fidelity"), 404)  # not on the trial's team yet
    with dbmod.transaction() as s:
        s.add(StudyMember(study_id=world.study.id, user_id=world.researcher.id, role=StudyRole.researcher))
    arm = researcher.get(f"/api/v1/arms/{world.arm_a.id}/fidelity").json()
    assert arm["total"] == report["total"]
    assert count_rows(Assignment) == 1 and assignment["id"] == 1


def test_cli_fidelity(world, client_for):
    from typer.testing import CliRunner

    from peerlift.cli import app

    coach = client_for(world.coach)
    _assign(coach, world.circle, _register(coach)["id"], dbmod.utcnow().date())
    result = CliRunner().invoke(app, ["protocol", "fidelity", "--circle", str(world.circle.id)])
    assert result.exit_code == 0 and "morning-post" in result.output and "TOTAL" in result.output
    assert CliRunner().invoke(app, ["protocol", "fidelity"]).exit_code == 2
