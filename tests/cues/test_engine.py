"""The cues engine: event and time triggers, conditions over the context, actions, the per-person
limits (daily limit, cool-down, quiet hours) and micro-randomised decisions."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from peerlift import db as dbmod
from peerlift.community.models import Message
from peerlift.cues import queries, service
from peerlift.cues.models import CueDecision, InboxCard
from peerlift.delivery.models import DeliveryStatus, ScheduledDelivery
from peerlift.events import Event
from peerlift.notify.models import Notification
from tests.conftest import build_world, count_rows
from tests.cues.helpers import NOON, log_entry, make_post, rules, run_at, score, use_rules

CHEER = '''
  - id: cheer
    trigger: {event: post.created}
    condition: "person.posts_1d >= 1 and event.length > 3"
    action: {notify: "Nice post, {first_name}: {person.posts_7d} this week."}
    cooldown: 1 minute
'''


@pytest.fixture
def w(database):
    with dbmod.clock_at(NOON - dt.timedelta(days=10)), dbmod.transaction() as s:
        return build_world(s)


def _decisions(**where) -> list[CueDecision]:
    with dbmod.transaction(write=False) as s:
        query = select(CueDecision).order_by(CueDecision.id)
        for key, value in where.items():
            query = query.where(getattr(CueDecision, key) == value)
        return list(s.scalars(query))


def _notes(person) -> list[str]:
    with dbmod.transaction(write=False) as s:
        return list(s.scalars(select(Notification.text).where(Notification.user_id == person.id)
                              .order_by(Notification.id)))


def test_an_event_trigger_is_queued_with_the_event_and_sends_its_cue(w, monkeypatch, tmp_path):
    use_rules(monkeypatch, tmp_path, rules(CHEER))
    with dbmod.clock_at(NOON):
        make_post(w.alice, w.circle, "Walked 5 km today")
    # Committed with the post: a process dying now loses nothing, the next worker does it.
    with dbmod.transaction(write=False) as s:
        queued = s.scalars(select(ScheduledDelivery).where(ScheduledDelivery.kind == "cue.event")).all()
        post_event = s.scalar(select(Event).where(Event.kind == "post.created"))
    assert [row.payload["event_id"] for row in queued] == [post_event.id]
    assert _notes(w.alice) == []
    run_at(NOON)
    assert _notes(w.alice) == ["Nice post, Alice: 1 this week."]
    [decision] = _decisions()
    assert (decision.ruleset, decision.ruleset_version, decision.rule_id, decision.user_id) == \
        ("test-rules", "1.2.0", "cheer", w.alice.id)
    assert decision.sent and decision.available and decision.probability == 1.0 and decision.draw is None
    assert decision.trigger == "post.created" and decision.event_id == post_event.id
    assert decision.outcome.startswith("notification:")


def test_a_condition_that_does_not_hold_records_nothing_and_staff_posts_are_no_trigger(w, monkeypatch, tmp_path):
    use_rules(monkeypatch, tmp_path, rules(CHEER))
    with dbmod.clock_at(NOON):
        make_post(w.alice, w.circle, "Hi")       # length 2: the condition does not hold
        make_post(w.coach, w.circle, "Welcome everyone")  # the facilitator is not a participant
    run_at(NOON)
    assert _decisions() == [] and _notes(w.alice) == [] and _notes(w.coach) == []


def test_daily_limit(w, monkeypatch, tmp_path):
    use_rules(monkeypatch, tmp_path, rules(CHEER), per_day=2)
    for minutes in (0, 10, 20):
        moment = NOON + dt.timedelta(minutes=minutes)
        with dbmod.clock_at(moment):
            make_post(w.alice, w.circle, f"Post number {minutes}")
        run_at(moment)
    sent = [d.sent for d in _decisions()]
    assert sent == [True, True, False]
    assert "daily limit reached: 2 cues in the last 24 hours" in _decisions()[2].unavailable_reason
    assert len(_notes(w.alice)) == 2
    # 24 hours after the first, one more is allowed
    later = NOON + dt.timedelta(hours=24, minutes=5)
    with dbmod.clock_at(later):
        make_post(w.alice, w.circle, "Next day post")
    run_at(later)
    assert _decisions()[-1].sent and len(_notes(w.alice)) == 3


def test_cool_down_of_the_same_rule_for_the_same_person(w, monkeypatch, tmp_path):
    use_rules(monkeypatch, tmp_path, rules(CHEER.replace("cooldown: 1 minute", "cooldown: 2 hours")), per_day=10)
    for minutes in (0, 30, 130):
        moment = NOON + dt.timedelta(minutes=minutes)
        with dbmod.clock_at(moment):
            make_post(w.alice, w.circle, f"Walk number {minutes}")
        run_at(moment)
    decisions = _decisions()
    assert [d.sent for d in decisions] == [True, False, True]
    assert decisions[1].available is False and decisions[1].unavailable_reason.startswith("cool-down of 2 hours")
    # another person is not affected by Alice's cool-down
    with dbmod.clock_at(NOON + dt.timedelta(minutes=31)):
        make_post(w.bob, w.circle, "Bob walks too")
    run_at(NOON + dt.timedelta(minutes=31))
    assert _decisions(user_id=w.bob.id)[0].sent


def test_quiet_hours_defer_the_cue_to_their_end(w, monkeypatch, tmp_path):
    use_rules(monkeypatch, tmp_path, rules(CHEER))
    night = dt.datetime(2026, 3, 10, 23, 30, tzinfo=dt.UTC)  # 23:30 in London: quiet until 07:00
    with dbmod.clock_at(night):
        make_post(w.alice, w.circle, "Cannot sleep, walking tomorrow")
    run_at(night)
    assert _decisions() == [] and _notes(w.alice) == []
    with dbmod.transaction(write=False) as s:
        deferred = s.scalar(select(ScheduledDelivery).where(ScheduledDelivery.kind == "cue.rule"))
    assert deferred.due_at == dt.datetime(2026, 3, 11, 7, 0, tzinfo=dt.UTC)
    run_at(dt.datetime(2026, 3, 11, 6, 59, tzinfo=dt.UTC))
    assert _notes(w.alice) == []
    run_at(dt.datetime(2026, 3, 11, 7, 0, tzinfo=dt.UTC))
    assert len(_notes(w.alice)) == 1
    assert _decisions()[0].decided_at == dt.datetime(2026, 3, 11, 7, 0, tzinfo=dt.UTC)


def test_micro_randomised_decisions_are_recorded_with_probability_and_draw(w, monkeypatch, tmp_path):
    use_rules(monkeypatch, tmp_path, rules(CHEER.replace("cooldown: 1 minute", "cooldown: 1 minute\n    randomise: 0.5")),
              per_day=10)
    draws = iter([0.2, 0.7, 0.49999])

    class FixedDraws:
        def random(self) -> float:
            return next(draws)

    monkeypatch.setattr(service, "_rng", FixedDraws())
    for minutes in (0, 5, 10):
        moment = NOON + dt.timedelta(minutes=minutes)
        with dbmod.clock_at(moment):
            make_post(w.alice, w.circle, f"Randomised walk {minutes}")
        run_at(moment)
    decisions = _decisions()
    assert [(d.probability, d.draw, d.sent, d.available) for d in decisions] == \
        [(0.5, 0.2, True, True), (0.5, 0.7, False, True), (0.5, 0.49999, True, True)]
    assert len(_notes(w.alice)) == 2
    with dbmod.transaction(write=False) as s:
        by_study = queries.decisions(s, study_id=w.study.id)
        by_circle = queries.decisions(s, circle_id=w.circle.id)
        other = queries.decisions(s, circle_id=w.other_circle.id)
    assert [r["draw"] for r in by_study] == [0.2, 0.7, 0.49999] and by_study == by_circle and other == []
    first = by_study[0]
    assert first["rule_id"] == "cheer" and first["ruleset_version"] == "1.2.0" and first["user_id"] == w.alice.id
    assert first["study_id"] == w.study.id and first["arm_id"] == w.arm_a.id and first["available"] is True


def test_a_cue_dm_comes_from_the_facilitator_and_triggers_no_cue_itself(w, monkeypatch, tmp_path):
    use_rules(monkeypatch, tmp_path, rules('''
  - id: welcome-back
    trigger: {event: message.received}
    condition: "event.length > 0"
    action: {dm: "Thanks for your message, {first_name}. {facilitator_name} will answer soon."}
    cooldown: 1 minute
'''), per_day=10)
    from peerlift.community.service import open_conversation, send_message
    from peerlift.identity.models import User

    with dbmod.clock_at(NOON), dbmod.transaction() as s:
        coach, alice = s.get(User, w.coach.id), s.get(User, w.alice.id)
        send_message(s, coach, open_conversation(s, coach, alice), "How was the walk?")
    run_at(NOON)
    with dbmod.transaction(write=False) as s:
        bodies = list(s.scalars(select(Message.body).order_by(Message.id)))
    assert bodies == ["How was the walk?", "Thanks for your message, Alice. Maya Coach will answer soon."]
    assert len(_decisions()) == 1  # the cue's own message reached the coach but triggered nothing


def test_latest_entries_and_questionnaires_in_conditions_and_a_follow_up(w, monkeypatch, tmp_path):
    use_rules(monkeypatch, tmp_path, rules('''
  - id: weight-up
    trigger: {event: tracking.logged}
    condition: "event.measure == 'weight' and latest.steps is not None and latest.steps < 3000"
    action:
      follow_up: {after: 1 day, cue: check-in}
  - id: check-in
    trigger: {follow_up: true}
    condition: "questionnaire.phq9.band_rank is None or questionnaire.phq9.band_rank < 3"
    action: {notify: "How are you today, {first_name}? Your steps: {latest.steps}."}
'''), per_day=10)
    with dbmod.clock_at(NOON):
        log_entry(w.alice, "weight", 81.5)           # no steps yet: the condition does not hold
    run_at(NOON)
    assert _decisions() == []
    with dbmod.clock_at(NOON):
        log_entry(w.alice, "steps", 2100, entry_id=2)
        log_entry(w.alice, "weight", 81.9, entry_id=3)
        score(w.alice, "phq9", 7, "mild", 1, None, None)
    run_at(NOON)
    assert [(d.rule_id, d.action, d.outcome) for d in _decisions()] == [("weight-up", "follow_up", "follow_up:check-in")]
    run_at(NOON + dt.timedelta(hours=23))
    assert _notes(w.alice) == []
    run_at(NOON + dt.timedelta(days=1))
    assert _notes(w.alice) == ["How are you today, Alice? Your steps: 2100."]


def test_default_inbox_rules_craving_worsened_score_and_first_post(w, monkeypatch, tmp_path):
    use_rules(monkeypatch, tmp_path, rules(CHEER), defaults=True)
    with dbmod.clock_at(NOON):
        log_entry(w.alice, "cravings", 7)
        log_entry(w.alice, "cravings", 9, entry_id=2)
        score(w.bob, "phq9", 12, "moderate", 2, "mild", 1)
        score(w.pat, "phq9", 3, "minimal", 0, "mild", 1)   # better: no card
        first = make_post(w.bob, w.circle, "My very first post here")
        make_post(w.alice, w.circle, "My first post too")
    with dbmod.clock_at(NOON + dt.timedelta(minutes=30)):
        from peerlift.community.service import create_comment
        from peerlift.community.models import Post
        from peerlift.policy import circle_access

        with dbmod.transaction() as s:
            alice_post = s.scalar(select(Post).where(Post.author_id == w.alice.id))
            create_comment(s, circle_access(s, w.pat, w.circle.id), alice_post, "Welcome Alice!")
    run_at(NOON + dt.timedelta(minutes=30))
    run_at(NOON + dt.timedelta(hours=2))
    with dbmod.transaction(write=False) as s:
        cards = [(c.user_id, c.rule_id, c.reason, c.link) for c in s.scalars(select(InboxCard).order_by(InboxCard.id))]
    assert cards == [
        (w.alice.id, "high-craving", "Alice Archer logged cravings at 9.", f"/circles/{w.circle.id}/members"),
        (w.bob.id, "score-worsened", "Bob Baker's phq9 score worsened from mild to moderate (total 12).",
         f"/circles/{w.circle.id}/members"),
        (w.bob.id, "first-post-unanswered", "Bob Baker's first post has had no answer for 2 hours.", f"/posts/{first}"),
    ]


def test_time_triggers_silent_member_and_missed_check_in(w, monkeypatch, tmp_path):
    from peerlift.cues.tasks import ensure_tick

    use_rules(monkeypatch, tmp_path, rules('''
  - id: weigh-in
    trigger: {missed_checkin: weight, by: "20:00"}
    action: {notify: "No weigh-in today yet, {first_name}?"}
'''), defaults=True, per_day=10)
    with dbmod.clock_at(NOON - dt.timedelta(days=1)):
        make_post(w.alice, w.circle, "Active yesterday")
    with dbmod.clock_at(NOON):
        log_entry(w.bob, "weight", 90, local_date="2026-03-10")
        with dbmod.transaction() as s:
            ensure_tick(s)
    run_at(NOON + dt.timedelta(hours=9), times=200)  # ticks every five minutes until 21:00
    with dbmod.transaction(write=False) as s:
        ticks = s.scalar(select(ScheduledDelivery.id).where(ScheduledDelivery.kind == "cue.tick",
                                                             ScheduledDelivery.status == DeliveryStatus.pending))
    assert ticks is not None  # the tick keeps itself going
    assert _notes(w.bob) == []  # weighed in today
    assert _notes(w.alice) == ["No weigh-in today yet, Alice?"] and _notes(w.pat) == ["No weigh-in today yet, Pat?"]
    # the next day at 10:00 local: members silent for 5 days (since they joined, 10 days ago) get a card
    # (logging a weight is not activity in the circle); Alice posted yesterday
    run_at(dt.datetime(2026, 3, 11, 10, 5, tzinfo=dt.UTC), times=400)
    with dbmod.transaction(write=False) as s:
        silent = sorted((c.user_id, c.reason) for c in s.scalars(select(InboxCard).where(
            InboxCard.rule_id == "silent-member")))
    assert silent == sorted([(w.bob.id, "Bob Baker has been silent for 10 days."),
                             (w.pat.id, "Pat Peer has been silent for 10 days."),
                             (w.carol.id, "Carol Chen has been silent for 10 days.")])
    assert count_rows(InboxCard, InboxCard.user_id == w.alice.id, InboxCard.rule_id == "silent-member") == 0


PROTOCOL_WITH_CUES = """\
id: walk-cued
version: "2.0.0"
title: Walking with cues
description: A test protocol with a cue.
duration_days: 30
items:
  - id: morning
    days: 1-30
    at: "08:00"
    channel: circle_post
    text: "Day {day}: where will you walk?"
cues:
  - id: praise-long-post
    trigger: {event: post.created}
    condition: "event.length >= 20"
    action: {notify: "Thanks for the long report, {first_name}!"}
"""


def test_cues_of_a_protocol_apply_to_the_circles_running_it(database, monkeypatch, tmp_path, client_for):
    from typer.testing import CliRunner

    from peerlift.cli import app

    monkeypatch.setenv("PEERLIFT_CUE_DEFAULTS", "false")
    from peerlift.settings import get_settings

    get_settings.cache_clear()
    with dbmod.clock_at(NOON - dt.timedelta(days=3)), dbmod.transaction() as s:
        w = build_world(s)
    coach = client_for(w.coach)
    version = coach.post("/api/v1/protocols", json={"source": PROTOCOL_WITH_CUES})
    assert version.status_code == 201, version.text
    assigned = coach.post(f"/api/v1/circles/{w.circle.id}/assignments",
                          json={"protocol_version_id": version.json()["id"], "start_date": "2026-03-09"})
    assert assigned.status_code == 201, assigned.text
    with dbmod.clock_at(NOON):
        make_post(w.alice, w.circle, "A long report of my morning walk by the river")
        make_post(w.carol, w.other_circle, "A long report from the other circle, no protocol here")
    run_at(NOON)
    assert _notes(w.alice)[-1] == "Thanks for the long report, Alice!"
    assert "Thanks for the long report, Carol!" not in _notes(w.carol)
    [decision] = _decisions()
    assert (decision.ruleset, decision.ruleset_version, decision.rule_id) == ("walk-cued", "2.0.0", "praise-long-post")
    listed = CliRunner().invoke(app, ["cues", "list"])
    assert listed.exit_code == 0 and f"walk-cued 2.0.0 (circles {w.circle.id})" in listed.output


def test_a_committed_trigger_wakes_the_worker_and_a_rolled_back_one_leaves_nothing(w, monkeypatch, tmp_path):
    from peerlift.community.service import create_post
    from peerlift.delivery import scheduler
    from peerlift.policy import circle_access

    use_rules(monkeypatch, tmp_path, rules(CHEER))
    scheduler._due_now.clear()
    with dbmod.clock_at(NOON), dbmod.transaction() as s:
        create_post(s, circle_access(s, w.alice, w.circle.id), "A walk that never happened")
        s.rollback()
    assert not scheduler._due_now.is_set()
    assert count_rows(ScheduledDelivery, ScheduledDelivery.kind == "cue.event") == 0
    with dbmod.clock_at(NOON):
        make_post(w.alice, w.circle, "A walk that did happen")
    assert scheduler._due_now.is_set()
    assert count_rows(ScheduledDelivery, ScheduledDelivery.kind == "cue.event") == 1


def test_a_cue_reaches_the_persons_open_stream(world, live_server, monkeypatch, tmp_path):
    from peerlift.identity.models import User
    from peerlift.notify.service import update_settings
    from tests.conftest import http_login
    from tests.sse import StreamReader

    use_rules(monkeypatch, tmp_path, rules(CHEER))
    with dbmod.transaction() as s:  # no quiet hours, whatever the time the suite runs
        update_settings(s, s.get(User, world.alice.id), quiet_start="00:00", quiet_end="00:00")
    client = http_login(live_server.url, world.alice)
    with StreamReader(http_login(live_server.url, world.alice)) as stream:
        answer = client.post(f"/api/v1/circles/{world.circle.id}/posts", json={"body": "Walked along the canal"})
        assert answer.status_code == 201, answer.text
        frame = stream.wait_for("notification.created", timeout=5, kind="prompt")
    with dbmod.transaction(write=False) as s:
        note = s.get(Notification, frame.data["notification_id"])
    assert note.user_id == world.alice.id and note.text == "Nice post, Alice: 1 this week."
