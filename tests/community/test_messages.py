"""Direct messages: participants and their facilitators; members only where the circle allows."""

from __future__ import annotations

from peerlift.community.models import Conversation, Message
from tests.conftest import assert_error, count_rows


def _open(client, person):
    return client.post("/api/v1/conversations", json={"user_id": person.id})


def _send(client, conversation_id, body):
    return client.post(f"/api/v1/conversations/{conversation_id}/messages", json={"body": body})


def test_participant_messages_the_coach(world, client_for):
    alice, coach = client_for(world.alice), client_for(world.coach)
    conversation = _open(alice, world.coach).json()
    assert conversation["other"]["id"] == world.coach.id
    assert _open(alice, world.coach).json()["id"] == conversation["id"]  # one conversation per pair
    sent = _send(alice, conversation["id"], "Can I swap my weigh-in day?").json()
    assert sent["mine"] is True and sent["sender"]["id"] == world.alice.id
    inbox = coach.get("/api/v1/conversations").json()
    assert [(c["id"], c["unread_count"], c["last_message_excerpt"]) for c in inbox] == [
        (conversation["id"], 1, "Can I swap my weigh-in day?")]
    thread = coach.get(f"/api/v1/conversations/{conversation['id']}/messages").json()
    assert [m["body"] for m in thread["messages"]] == ["Can I swap my weigh-in day?"]
    assert thread["messages"][0]["mine"] is False
    assert coach.post(f"/api/v1/conversations/{conversation['id']}/read").status_code == 204
    assert coach.get("/api/v1/conversations").json()[0]["unread_count"] == 0
    reply = _send(coach, conversation["id"], "Of course, any day works.").json()
    assert reply["mine"] is True
    assert alice.get("/api/v1/conversations").json()[0]["unread_count"] == 1


def test_participants_cannot_message_each_other_unless_the_circle_allows(world, client_for, session):
    from peerlift.community.models import Space

    alice = client_for(world.alice)
    assert_error(_open(alice, world.bob), 403, "forbidden", "user_id")
    assert count_rows(Conversation) == 0
    space = session.get(Space, world.circle.id)
    space.allow_member_dms = True
    session.commit()
    assert _open(alice, world.bob).status_code == 201


def test_no_messages_across_circles_or_arms(world, client_for):
    alice = client_for(world.alice)
    assert_error(_open(alice, world.carol), 404, "not_found", "user_id")
    assert_error(_open(alice, world.other_coach), 404)
    assert_error(alice.post("/api/v1/conversations", json={"user_id": 99999}), 404)
    assert_error(_open(alice, world.alice), 403)
    assert count_rows(Conversation) == 0


def test_others_cannot_read_a_conversation(world, client_for):
    alice, bob = client_for(world.alice), client_for(world.bob)
    conversation_id = _open(alice, world.coach).json()["id"]
    _send(alice, conversation_id, "private")
    assert_error(bob.get(f"/api/v1/conversations/{conversation_id}/messages"), 404, "not_found", "conversation_id")
    assert_error(_send(bob, conversation_id, "intrude"), 404)
    assert bob.get("/api/v1/conversations").json() == []
    assert count_rows(Message) == 1


def test_message_bad_input(world, client_for):
    alice = client_for(world.alice)
    conversation_id = _open(alice, world.coach).json()["id"]
    assert_error(_send(alice, conversation_id, "   "), 422, "invalid", "body")
    assert_error(_send(alice, conversation_id, "x" * 5001), 422, "invalid", "body")
    assert_error(alice.post(f"/api/v1/conversations/{conversation_id}/messages", json={}), 422, "invalid", "body")
    assert count_rows(Message) == 0


def test_message_paging(world, client_for):
    alice = client_for(world.alice)
    conversation_id = _open(alice, world.coach).json()["id"]
    for i in range(5):
        _send(alice, conversation_id, f"m{i}")
    url = f"/api/v1/conversations/{conversation_id}/messages"
    page = alice.get(url, params={"limit": 2}).json()
    assert [m["body"] for m in page["messages"]] == ["m3", "m4"]
    older = alice.get(url, params={"limit": 2, "before": page["next_cursor"]}).json()
    assert [m["body"] for m in older["messages"]] == ["m1", "m2"]
