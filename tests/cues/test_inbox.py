"""The facilitator's inbox: who sees which card, reply / snooze / dismiss with every action
recorded, 409 for a card someone else handled, bad input, the page, and cards arriving live."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from peerlift import db as dbmod
from peerlift.community.models import Message
from peerlift.cues.models import CardStatus, InboxAction, InboxCard
from tests.conftest import assert_error, count_rows, form_token, http_login, run_due
from tests.cues.helpers import log_entry, rules, use_rules


@pytest.fixture
def card(world, monkeypatch, tmp_path):
    """Alice logged a craving of 9: a card for the facilitators of her circle."""
    use_rules(monkeypatch, tmp_path, rules('''
  - id: craving
    trigger: {event: tracking.logged}
    condition: "event.measure == 'cravings' and event.value >= 8"
    action: {inbox: "{display_name} logged cravings at {event.value}."}
'''))
    import peerlift.cues.service  # noqa: F401 - the hook in the write door

    log_entry(world.alice, "cravings", 9)
    run_due()
    with dbmod.transaction(write=False) as s:
        return s.scalar(select(InboxCard))


def test_only_facilitators_of_the_members_circle_see_the_card(world, card, client_for):
    coach = client_for(world.coach)
    listed = coach.get("/api/v1/inbox").json()["cards"]
    assert [(c["id"], c["member_name"], c["reason"], c["status"], c["circle_name"]) for c in listed] == \
        [(card.id, "Alice Archer", "Alice Archer logged cravings at 9.", "open", "Morning Movers")]
    assert coach.get(f"/api/v1/inbox/{card.id}").json()["actions"] == []
    # a facilitator of another circle, a participant, the clinician: nothing, and 404 for the card
    for person in (world.other_coach, world.alice, world.bob, world.clinician):
        client = client_for(person)
        assert client.get("/api/v1/inbox").json()["cards"] == []
        assert_error(client.get(f"/api/v1/inbox/{card.id}"), 404, "not_found", "card_id")
        assert_error(client.post(f"/api/v1/inbox/{card.id}/dismiss", json={}), 404, "not_found", "card_id")
    assert_error(client_for(None).get("/api/v1/inbox"), 401)


def test_dismiss_then_someone_else_acting_is_a_clear_409(world, card, client_for):
    from tests.factories import add_member
    from peerlift.community.models import CircleRole

    with dbmod.transaction() as s:
        add_member(s, world.circle, world.other_coach, CircleRole.facilitator)
    coach, other = client_for(world.coach), client_for(world.other_coach)
    done = coach.post(f"/api/v1/inbox/{card.id}/dismiss", json={})
    assert done.status_code == 200, done.text
    assert done.json()["card"]["status"] == "dismissed" and done.json()["card"]["handled_by"] == "Maya Coach"
    [action] = done.json()["actions"]
    assert action["action"] == "dismiss" and action["actor_id"] == world.coach.id and action["at"]
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()
    error = assert_error(other.post(f"/api/v1/inbox/{card.id}/snooze", json={"until": soon}), 409,
                         "card_handled", "card_id")
    assert error["message"].startswith("Maya Coach already dismissed it (at ")
    assert_error(other.post(f"/api/v1/inbox/{card.id}/reply", json={"text": "Hi"}), 409, "card_handled")
    assert count_rows(InboxAction) == 1 and count_rows(Message) == 0
    assert other.get("/api/v1/inbox").json()["cards"] == []
    assert [c["status"] for c in other.get("/api/v1/inbox?status=all").json()["cards"]] == ["dismissed"]


def test_reply_sends_a_direct_message_and_records_it(world, card, client_for):
    coach = client_for(world.coach)
    assert_error(coach.post(f"/api/v1/inbox/{card.id}/reply", json={"text": "   "}), 422, "invalid", "text")
    assert_error(coach.post(f"/api/v1/inbox/{card.id}/reply", json={"text": "x" * 5001}), 422, "invalid", "text")
    assert_error(coach.post(f"/api/v1/inbox/{card.id}/reply", json={}), 422)
    assert count_rows(InboxAction) == 0 and count_rows(Message) == 0
    with dbmod.transaction(write=False) as s:
        assert s.get(InboxCard, card.id).status == CardStatus.open
    done = coach.post(f"/api/v1/inbox/{card.id}/reply", json={"text": "That sounds hard. Call me at 5?"})
    assert done.status_code == 200, done.text
    assert done.json()["card"]["status"] == "replied"
    assert done.json()["actions"][0]["detail"].startswith("message:")
    alice = client_for(world.alice)
    [conversation] = alice.get("/api/v1/conversations").json()
    messages = alice.get(f"/api/v1/conversations/{conversation['id']}/messages").json()["messages"]
    assert [m["body"] for m in messages] == ["That sounds hard. Call me at 5?"]


def test_snooze_bad_input_and_the_card_coming_back(world, card, client_for):
    coach = client_for(world.coach)
    url = f"/api/v1/inbox/{card.id}/snooze"
    assert_error(coach.post(url, json={"until": "2020-01-01T09:00:00+00:00"}), 422, "invalid", "until")
    assert_error(coach.post(url, json={"until": "2099-01-01T09:00:00"}), 422, "invalid", "until")
    far = (dt.datetime.now(dt.UTC) + dt.timedelta(days=31)).isoformat()
    assert_error(coach.post(url, json={"until": far}), 422, "invalid", "until")
    assert_error(coach.post(url, json={"until": "tomorrow"}), 422)
    assert_error(coach.post(url, json={"until": "2099-01-01T09:00:00+00:00", "extra": 1}), 422)
    assert count_rows(InboxAction) == 0
    until = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)
    done = coach.post(url, json={"until": until.isoformat()})
    assert done.status_code == 200, done.text
    assert done.json()["card"]["status"] == "snoozed"
    assert coach.get("/api/v1/inbox").json()["cards"] == []
    run_due()
    assert coach.get("/api/v1/inbox").json()["cards"] == []
    with dbmod.clock_at(until + dt.timedelta(seconds=1)):
        run_due()
    [back] = coach.get("/api/v1/inbox").json()["cards"]
    assert back["status"] == "open" and back["handled_by"] is None
    assert [a["action"] for a in coach.get(f"/api/v1/inbox/{card.id}").json()["actions"]] == ["snooze"]
    assert coach.post(f"/api/v1/inbox/{card.id}/dismiss").status_code == 200


def test_inbox_page_and_its_forms(world, card, client_for):
    coach = client_for(world.coach)
    page = coach.get("/inbox")
    assert page.status_code == 200 and "Alice Archer logged cravings at 9." in page.text
    token = form_token(page.text)
    assert "Nothing needs you right now." in client_for(world.alice).get("/inbox").text
    bad = coach.post(f"/inbox/{card.id}/snooze", data={"csrf_token": token, "until": "someday"})
    assert bad.status_code == 422 and "Choose how long to snooze the card." in bad.text
    gone = coach.post(f"/inbox/{card.id}/dismiss", data={"csrf_token": token}, follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"] == "/inbox"
    assert "Nothing needs you right now." in coach.get("/inbox").text
    again = coach.post(f"/inbox/{card.id}/dismiss", data={"csrf_token": token})
    assert again.status_code == 409 and "You already dismissed it" in again.text


def test_cards_arrive_live_for_the_facilitators_only(world, live_server, monkeypatch, tmp_path):
    from tests.sse import StreamReader

    use_rules(monkeypatch, tmp_path, rules('''
  - id: craving
    trigger: {event: tracking.logged}
    condition: "event.measure == 'cravings' and event.value >= 8"
    action: {inbox: "{display_name} logged cravings at {event.value}."}
'''))
    with StreamReader(http_login(live_server.url, world.coach)) as coach, \
            StreamReader(http_login(live_server.url, world.alice)) as alice, \
            StreamReader(http_login(live_server.url, world.other_coach)) as other:
        log_entry(world.alice, "cravings", 8)
        frame = coach.wait_for("inbox.card_created", timeout=5)
        assert frame.data["member_id"] == world.alice.id and frame.data["circle_id"] == world.circle.id
        assert not [f for f in alice.collect(0.3) + other.collect(0.1) if f.event.startswith("inbox.")]


def test_the_inbox_costs_the_same_statements_for_one_card_or_many(world, card, client_for):
    from tests.conftest import count_queries
    from tests.cues.helpers import log_entry as log

    coach = client_for(world.coach)
    coach.get("/api/v1/inbox")  # sign-in and caches warm
    with count_queries() as one:
        assert len(coach.get("/api/v1/inbox").json()["cards"]) == 1
    for i, person in enumerate((world.bob, world.pat, world.alice, world.bob), start=2):
        log(person, "cravings", 10, entry_id=i)
        run_due()
    with count_queries() as many:
        assert len(coach.get("/api/v1/inbox").json()["cards"]) >= 3
    assert many.count == one.count, f"{one}\n---\n{many}"
