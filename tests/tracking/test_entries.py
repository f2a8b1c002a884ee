"""Self-monitoring: entries on the person's local date, one per day, validated; goals, progress,
sharing; who may see whose trend."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from peerlift import db as dbmod
from peerlift.community.models import Post
from peerlift.errors import InvalidInput
from peerlift.events import Event
from peerlift.identity.models import User
from peerlift.tracking import service
from peerlift.tracking.models import Entry, EntryRevision, Measure, TrackingProfile
from tests.conftest import assert_error, count_rows, form_token
from tests.factories import create_user


def _today(person) -> dt.date:
    from zoneinfo import ZoneInfo

    return dbmod.utcnow().astimezone(ZoneInfo(person.timezone)).date()


def _events(kind: str) -> list[Event]:
    with dbmod.transaction(write=False) as s:
        return list(s.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


def test_logging_today_records_the_value_and_publishes_the_event(world, client_for):
    alice = client_for(world.alice)
    response = alice.post("/api/v1/tracking/entries", json={"measure": "weight", "value": 82.4})
    assert response.status_code == 201, response.text
    entry = response.json()
    assert entry["value"] == 82.4 and entry["unit"] == "kg"
    assert entry["local_date"] == _today(world.alice).isoformat()
    [event] = _events("tracking.logged")
    assert event.user_id == world.alice.id and event.actor_id == world.alice.id
    assert event.data == {"measure": "weight", "value": 82.4, "unit": "kg",
                          "local_date": _today(world.alice).isoformat(), "entry_id": entry["id"]}


def test_logging_the_same_day_again_replaces_the_value_and_keeps_a_revision(world, client_for):
    alice = client_for(world.alice)
    first = alice.post("/api/v1/tracking/entries", json={"measure": "steps", "value": 4000}).json()
    second = alice.post("/api/v1/tracking/entries", json={"measure": "steps", "value": "6500"}).json()
    assert second["id"] == first["id"] and second["value"] == 6500
    assert count_rows(Entry) == 1
    with dbmod.transaction(write=False) as s:
        [revision] = s.scalars(select(EntryRevision)).all()
        assert revision.entry_id == first["id"] and revision.value == 4000
    listed = alice.get("/api/v1/tracking/entries", params={"measure": "steps"}).json()
    assert [e["value"] for e in listed] == [6500]


def test_weight_in_pounds_is_stored_in_kilograms_and_shown_in_the_preference(world, client_for):
    alice = client_for(world.alice)
    response = alice.put("/api/v1/tracking/goals", json={"weight_unit": "lb", "target_weight": 154})
    assert response.status_code == 200, response.text
    assert response.json()["target_weight_kg"] == pytest.approx(69.853, abs=0.01)
    entry = alice.post("/api/v1/tracking/entries", json={"measure": "weight", "value": 176.4}).json()
    assert entry["value"] == pytest.approx(80.01, abs=0.01) and entry["unit"] == "kg"
    page = alice.get("/me/tracking")
    assert "176.4 lb" in page.text
    explicit = alice.post("/api/v1/tracking/entries",
                          json={"measure": "weight", "value": 80, "unit": "kg",
                                "local_date": (_today(world.alice) - dt.timedelta(days=1)).isoformat()})
    assert explicit.json()["value"] == 80


BAD_ENTRIES = [
    ({"measure": "weight", "value": 0}, "value", "too low"),
    ({"measure": "weight", "value": 900}, "value", "too high"),
    ({"measure": "weight", "value": 900, "unit": "lb"}, "value", "too high"),
    ({"measure": "weight", "value": 80, "unit": "stone"}, "unit", "not 'stone'"),
    ({"measure": "steps", "value": -5}, "value", "too low"),
    ({"measure": "steps", "value": 10.5}, "value", "whole number"),
    ({"measure": "mood", "value": 11}, "value", "too high"),
    ({"measure": "mood", "value": "good"}, "value", "needs a number"),
    ({"measure": "mood", "value": None}, "value", "needs a number"),
    ({"measure": "sleep_hours", "value": 25}, "value", "too high"),
    ({"measure": "smoke_free", "value": "maybe"}, "value", "yes or no"),
    ({"measure": "blood_pressure", "value": 120}, "measure", "No measure"),
    ({"measure": "", "value": 1}, "measure", "which measure"),
    ({"measure": "steps", "value": 100, "local_date": "yesterday"}, "local_date", "not a date"),
    ({"measure": "steps", "value": 100, "local_date": "2020-01-01"}, "local_date", "at most a year"),
]


@pytest.mark.parametrize("body,field,words", BAD_ENTRIES, ids=[f"{b['measure']}-{b['value']}-{f}"
                                                               for b, f, _ in BAD_ENTRIES])
def test_impossible_entries_are_refused_naming_the_field(world, client_for, body, field, words):
    alice = client_for(world.alice)
    error = assert_error(alice.post("/api/v1/tracking/entries", json=body), 422, field=field)
    assert words in error["message"], error
    assert count_rows(Entry) == 0
    assert _events("tracking.logged") == []


def test_a_date_in_the_future_of_the_person_zone_is_refused(world):
    """Noon UTC on 1 March is already 2 March on Kiritimati (UTC+14) and still 1 March in Pago Pago (UTC-11)."""
    with dbmod.transaction() as s:
        east = create_user(s, "Eli East", timezone="Pacific/Kiritimati")
        west = create_user(s, "Wes West", timezone="Pacific/Pago_Pago")
    noon = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    with dbmod.clock_at(noon), dbmod.transaction() as s:
        east, west = s.get(User, east.id), s.get(User, west.id)
        assert service.log_entry(s, east, "mood", 6, local_date="2026-03-02").local_date == dt.date(2026, 3, 2)
        assert service.log_entry(s, west, "mood", 6).local_date == dt.date(2026, 3, 1)
        with pytest.raises(InvalidInput) as caught:
            service.log_entry(s, west, "mood", 6, local_date="2026-03-02")
        assert caught.value.field == "local_date" and "future" in caught.value.message
        with pytest.raises(InvalidInput):
            service.log_entry(s, east, "mood", 6, local_date="2026-03-03")
    assert count_rows(Entry) == 2


def test_researchers_define_measures_and_one_check_validates_them(world, client_for):
    researcher, alice = client_for(world.researcher), client_for(world.alice)
    body = {"key": "water_glasses", "name": "Glasses of water", "unit": "glasses", "kind": "int",
            "min_value": 0, "max_value": 30}
    assert_error(alice.post("/api/v1/tracking/measures", json=body), 403)
    response = researcher.post("/api/v1/tracking/measures", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["builtin"] is False
    assert_error(researcher.post("/api/v1/tracking/measures", json=body), 422, field="key")
    for bad, field in (({**body, "key": "Water!"}, "key"), ({**body, "key": "weight"}, "key"),
                       ({**body, "key": "w2", "kind": "text"}, "kind"),
                       ({**body, "key": "w3", "min_value": 5, "max_value": 1}, "min_value"),
                       ({**body, "key": "w4", "name": " "}, "name")):
        assert_error(researcher.post("/api/v1/tracking/measures", json=bad), 422, field=field)
    assert count_rows(Measure) == 1
    keys = [m["key"] for m in alice.get("/api/v1/tracking/measures").json()]
    assert keys[:2] == ["weight", "steps"] and "water_glasses" in keys
    assert alice.post("/api/v1/tracking/entries", json={"measure": "water_glasses", "value": 8}).status_code == 201
    error = assert_error(alice.post("/api/v1/tracking/entries", json={"measure": "water_glasses", "value": 31}),
                         422, field="value")
    assert "Glasses of water" in error["message"]


def test_researcher_defines_a_measure_on_the_page(world, client_for):
    researcher = client_for(world.researcher)
    page = researcher.get("/tracking/measures")
    assert page.status_code == 200 and "Define a measure" in page.text
    token = form_token(page.text)
    bad = researcher.post("/tracking/measures", data={"csrf_token": token, "key": "x", "name": "X", "kind": "int"})
    assert bad.status_code == 422 and "lowercase" in bad.text
    ok = researcher.post("/tracking/measures", data={"csrf_token": token, "key": "pain", "name": "Pain",
                                                     "kind": "int", "min_value": "0", "max_value": "10"},
                         follow_redirects=False)
    assert ok.status_code == 303
    assert count_rows(Measure) == 1
    assert client_for(world.alice).get("/tracking/measures").status_code == 403


def test_goals_and_progress(world, client_for):
    alice = client_for(world.alice)
    today = _today(world.alice)
    assert alice.put("/api/v1/tracking/goals", json={"target_weight": 70, "daily_steps": 8000,
                                                     "quit_date": (today - dt.timedelta(days=5)).isoformat()}
                     ).status_code == 200
    for days_ago, kg in ((10, 80.0), (3, 78.1), (0, 76.8)):
        alice.post("/api/v1/tracking/entries", json={"measure": "weight", "value": kg,
                                                     "local_date": (today - dt.timedelta(days=days_ago)).isoformat()})
    for days_ago, steps in ((0, 9000), (1, 3000), (2, 8000), (6, 12000), (7, 20000)):
        alice.post("/api/v1/tracking/entries", json={"measure": "steps", "value": steps,
                                                     "local_date": (today - dt.timedelta(days=days_ago)).isoformat()})
    for days_ago, free in ((1, True), (2, "yes"), (3, True), (4, False), (5, True)):
        alice.post("/api/v1/tracking/entries", json={"measure": "smoke_free", "value": free,
                                                     "local_date": (today - dt.timedelta(days=days_ago)).isoformat()})
    progress = alice.get("/api/v1/tracking/progress").json()
    assert progress["lost"] == 3.2 and progress["to_lose"] == 10.0
    assert progress["steps_days_met"] == 3  # 9000, 8000 and 12000 within the last 7 days
    assert progress["smoke_free_streak"] == 3  # yesterday back to the day after the slip
    assert progress["days_since_quit"] == 5
    assert progress["sentence"].startswith("Down 3.2 kg since I started")

    errors = [({"target_weight": 0}, "target_weight"), ({"daily_steps": -1}, "daily_steps"),
              ({"quit_date": "soon"}, "quit_date"), ({"weight_unit": "stone"}, "weight_unit"),
              ({"clear": ["mood"]}, "clear")]
    for body, field in errors:
        assert_error(alice.put("/api/v1/tracking/goals", json=body), 422, field=field)
    with dbmod.transaction(write=False) as s:
        assert s.get(TrackingProfile, world.alice.id).target_weight_kg == 70


def test_sharing_a_progress_card_posts_to_the_circle(world, client_for):
    alice = client_for(world.alice)
    today = _today(world.alice)
    error = assert_error(alice.post("/api/v1/tracking/share", json={"circle_id": world.circle.id}), 422,
                         field="progress")
    assert "no progress" in error["message"]
    alice.post("/api/v1/tracking/entries", json={"measure": "weight", "value": 90,
                                                 "local_date": (today - dt.timedelta(days=7)).isoformat()})
    alice.post("/api/v1/tracking/entries", json={"measure": "weight", "value": 86.8})
    response = alice.post("/api/v1/tracking/share", json={"circle_id": world.circle.id})
    assert response.status_code == 201, response.text
    assert response.json()["body"] == "Down 3.2 kg since I started."
    with dbmod.transaction(write=False) as s:
        post = s.get(Post, response.json()["post_id"])
        assert post.author_id == world.alice.id and post.space_id == world.circle.id
    assert_error(alice.post("/api/v1/tracking/share", json={"circle_id": world.other_circle.id}), 404)


def test_facilitators_and_clinicians_see_their_members_trends_and_nobody_else(world, client_for):
    client_for(world.alice).post("/api/v1/tracking/entries", json={"measure": "mood", "value": 7})
    for viewer in (world.coach, world.clinician):
        c = client_for(viewer)
        entries = c.get("/api/v1/tracking/entries", params={"user_id": world.alice.id})
        assert entries.status_code == 200 and [e["value"] for e in entries.json()] == [7]
        assert c.get(f"/people/{world.alice.id}/tracking").status_code == 200
        chart = c.get(f"/people/{world.alice.id}/tracking/mood.svg")
        assert chart.status_code == 200 and chart.headers["content-type"].startswith("image/svg+xml")
        assert "<script" not in chart.text and "<svg" in chart.text
    for viewer in (world.other_coach, world.bob, world.pat, world.carol, world.researcher):
        c = client_for(viewer)
        assert_error(c.get("/api/v1/tracking/entries", params={"user_id": world.alice.id}), 404, field="user_id")
        assert_error(c.get("/api/v1/tracking/progress", params={"user_id": world.alice.id}), 404)
        assert c.get(f"/people/{world.alice.id}/tracking").status_code == 404
        assert c.get(f"/people/{world.alice.id}/tracking/mood.svg").status_code == 404


def test_one_tap_logging_on_the_page(world, client_for):
    alice = client_for(world.alice)
    page = alice.get("/me/tracking")
    assert page.status_code == 200
    assert 'href="/me/tracking"' in page.text  # in the navigation
    for key in ("weight", "steps", "active_minutes", "cigarettes", "smoke_free", "cravings", "mood", "sleep_hours"):
        assert f'id="measure-{key}"' in page.text
    token = form_token(page.text)
    done = alice.post("/me/tracking/log", data={"csrf_token": token, "measure": "smoke_free", "value": "yes"},
                      follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/me/tracking")
    bad = alice.post("/me/tracking/log", data={"csrf_token": token, "measure": "mood", "value": "11"})
    assert bad.status_code == 422 and "Mood of 11" in bad.text and "too high" in bad.text
    assert count_rows(Entry) == 1
    page = alice.get("/me/tracking")
    assert '/people/%d/tracking/smoke_free.svg' % world.alice.id in page.text
