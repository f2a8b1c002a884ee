"""People like me: opt-in, hiding, both sides' visibility, reasons; connection requests and DMs."""

from __future__ import annotations

import pytest

from peerlift.community.models import Conversation
from peerlift.notify.models import Notification
from peerlift.people.models import ConnectionRequest
from tests.conftest import assert_error, count_rows
from tests.people.test_health_profile import community_with, new_person, profile

ALL = ("conditions", "treatments", "goals", "diagnosis_years", "age_band")


@pytest.fixture
def outsider(world):
    """Someone in no circle of alice's (nor of any study)."""
    return new_person("Cara Cole")


def share(level="installation", **fields):
    return {f: fields.get(f, level) for f in ALL}


def put(client, **over):
    response = client.put("/api/v1/me/health-profile", json=profile(**over))
    assert response.status_code == 200, response.text


def people(client):
    return client.get("/api/v1/people/like-me").json()["people"]


def test_suggestions_with_reasons(world, client_for, outsider):
    alice, carol = client_for(world.alice), client_for(outsider)
    put(alice, conditions=[{"code": "E11.9", "year": 2018}], treatments=[{"code": "A10BJ06"}], goals=["Lose 5%"])
    put(carol, conditions=[{"code": "E11.65", "year": 2020}], treatments=[{"code": "A10BA02"}], goals=["lose 5%."])
    [suggestion] = people(alice)
    assert suggestion["user_id"] == outsider.id
    assert suggestion["reasons"] == ["both: type 2 diabetes (E11)", "diagnosed within 2 years of each other",
                                     "goal: lose 5%", "both aged 45-54"]
    assert suggestion["score"] == 10 + 2 + 3 + 1
    assert [s["user_id"] for s in people(carol)] == [world.alice.id]


def test_ranked_by_what_is_shared(world, client_for, outsider):
    alice, bob, carol = client_for(world.alice), client_for(world.bob), client_for(outsider)
    put(alice, conditions=[{"code": "E11.9"}, {"code": "I10"}], treatments=[{"code": "A10BA02"}], goals=[])
    put(bob, conditions=[{"code": "I10"}], treatments=[{"code": "A10BA02"}], goals=[], age_band="18-24")
    put(carol, conditions=[{"code": "E11.9"}, {"code": "I10"}], treatments=[], goals=[], age_band="18-24")
    ranked = people(alice)
    assert [s["user_id"] for s in ranked] == [outsider.id, world.bob.id]
    assert ranked[1]["reasons"] == ["both: high blood pressure (hypertension) (I10)", "both take: metformin (A10BA02)"]


def test_nobody_who_did_not_opt_in_or_hid(world, client_for, outsider):
    alice, carol = client_for(world.alice), client_for(outsider)
    put(alice)
    put(carol, suggest_me=False)
    assert people(alice) == []
    put(carol)
    assert [s["user_id"] for s in people(alice)] == [outsider.id]
    put(carol, hidden=True)
    assert people(alice) == [] and people(carol) == []
    put(carol)
    put(alice, suggest_me=False)  # not opted in: no suggestions for her either, and she is not suggested
    assert people(carol) == []
    body = alice.get("/api/v1/people/like-me").json()
    assert body == {"opted_in": False, "people": [], "communities": body["communities"]}


def test_a_field_i_keep_to_myself_is_never_used(world, client_for, outsider):
    alice, carol = client_for(world.alice), client_for(outsider)
    put(alice, visibility=share(conditions="only_me", diagnosis_years="only_me"), treatments=[], goals=[])
    put(carol, treatments=[], goals=[])
    assert people(alice) == [] and people(carol) == []
    put(alice, visibility=share(goals="only_me"), conditions=[], treatments=[])
    put(carol, conditions=[], treatments=[])
    assert people(alice) == [] and people(carol) == []


def test_both_sides_visibility_counts(world, client_for, outsider):
    """carol (unrelated) shares with anyone; alice only with her circles: no match between them,
    while bob (alice's circle) matches alice on what both share with each other."""
    alice, bob, carol = client_for(world.alice), client_for(world.bob), client_for(outsider)
    put(alice, visibility=share("my_circles"))
    put(carol)
    put(bob, visibility=share("my_circles", goals="only_me"), treatments=[])
    assert [s["user_id"] for s in people(alice)] == [world.bob.id]
    reasons = people(alice)[0]["reasons"]
    assert "goal: lose 5%" not in reasons and reasons[0] == "both: type 2 diabetes (E11)"
    assert world.alice.id not in [s["user_id"] for s in people(carol)]


def test_community_mates_match_on_community_fields(world, client_for, outsider):
    dora = new_person("Dora Dunn")
    community_with(outsider, dora)
    carol, dora_client = client_for(outsider), client_for(dora)
    put(carol, visibility=share("my_communities"))
    put(dora_client, visibility=share("my_circles", conditions="my_communities"))
    assert [s["reasons"] for s in people(carol)] == [["both: type 2 diabetes (E11)"]]
    assert [s["user_id"] for s in people(client_for(world.alice))] == []


def test_communities_named_after_my_conditions(world, client_for, outsider):
    space_id = community_with(world.bob)
    alice = client_for(world.alice)
    put(alice, visibility=share("only_me"))
    assert alice.get("/api/v1/people/like-me").json()["communities"] == [
        {"id": space_id, "name": "Type 2 diabetes together", "reasons": ["it is about type 2 diabetes (E11)"]}]


def _request(client, person, note="Hello from the diabetes group"):
    return client.post(f"/api/v1/people/{person.id}/connection-requests", json={"note": note})


def test_connection_request_opens_a_conversation_only_when_accepted(world, client_for, outsider):
    alice, carol = client_for(world.alice), client_for(outsider)
    put(alice)
    put(carol)
    sent = _request(carol, world.alice)
    assert sent.status_code == 201, sent.text
    assert sent.json()["status"] == "pending" and sent.json()["incoming"] is False
    assert people(carol)[0]["request_pending"] is True
    assert_error(carol.post("/api/v1/conversations", json={"user_id": world.alice.id}), 404)
    assert count_rows(Conversation) == 0
    assert count_rows(Notification, Notification.user_id == world.alice.id,
                      Notification.kind == "connection_request") == 1
    [incoming] = alice.get("/api/v1/me/connection-requests").json()
    assert incoming["incoming"] is True and incoming["note"] == "Hello from the diabetes group"
    assert_error(client_for(world.bob).post(f"/api/v1/connection-requests/{incoming['id']}/accept"), 404)
    assert_error(carol.post(f"/api/v1/connection-requests/{incoming['id']}/accept"), 404)
    accepted = alice.post(f"/api/v1/connection-requests/{incoming['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    conversation_id = accepted.json()["conversation_id"]
    assert conversation_id is not None and count_rows(Conversation) == 1
    assert count_rows(Notification, Notification.user_id == outsider.id,
                      Notification.kind == "connection_accepted") == 1
    said = carol.post(f"/api/v1/conversations/{conversation_id}/messages", json={"body": "Hi Alice!"})
    assert said.status_code == 201, said.text
    assert carol.post("/api/v1/conversations", json={"user_id": world.alice.id}).json()["id"] == conversation_id
    assert alice.get(f"/api/v1/conversations/{conversation_id}/messages").json()["messages"][0]["body"] == "Hi Alice!"
    assert_error(alice.post(f"/api/v1/connection-requests/{incoming['id']}/decline"), 409)
    assert_error(_request(carol, world.alice), 409, field="user_id")
    assert people(carol) == []  # connected: no longer a suggestion


def test_declined_requests(world, client_for, outsider):
    alice, carol = client_for(world.alice), client_for(outsider)
    put(alice)
    put(carol)
    request_id = _request(carol, world.alice).json()["id"]
    assert_error(_request(carol, world.alice), 409, field="user_id")
    assert_error(_request(alice, outsider), 409, field="user_id")
    assert alice.post(f"/api/v1/connection-requests/{request_id}/decline").json()["status"] == "declined"
    assert count_rows(Conversation) == 0
    assert carol.get("/api/v1/me/connection-requests").json()[0]["status"] == "pending"  # not told
    assert_error(_request(carol, world.alice), 404, field="user_id")
    assert people(carol) == [] and people(alice) == []
    assert_error(carol.post("/api/v1/conversations", json={"user_id": world.alice.id}), 404)


def test_requests_to_people_who_are_not_suggestable(world, client_for, outsider):
    alice, carol = client_for(world.alice), client_for(outsider)
    put(carol)
    assert_error(_request(carol, world.alice), 404, "not_found", "user_id")  # no profile
    put(alice, suggest_me=False)
    assert_error(_request(carol, world.alice), 404, "not_found", "user_id")
    put(alice, hidden=True)
    assert_error(_request(carol, world.alice), 404, "not_found", "user_id")
    assert_error(_request(carol, outsider), 422, field="user_id")
    put(alice)
    assert_error(_request(carol, world.alice, note="x" * 501), 422)
    assert_error(carol.post("/api/v1/people/999999/connection-requests", json={}), 404)
    assert count_rows(ConnectionRequest) == 0 and count_rows(Notification, Notification.kind == "connection_request") == 0


def test_never_across_the_arms_of_a_study(world, client_for):
    alice, carol = client_for(world.alice), client_for(world.carol)  # arm A and arm B of the trial
    put(alice)
    put(carol)
    assert people(alice) == [] and people(carol) == []
    assert_error(_request(carol, world.alice), 404, "not_found", "user_id")


def test_deleting_the_account_removes_the_profile_and_requests(world, client_for, outsider):
    from peerlift.people.models import HealthProfile, ProfileCode
    from tests.conftest import PASSWORD

    alice, cara = client_for(world.alice), client_for(outsider)
    put(alice)
    put(cara)
    assert _request(cara, world.alice).status_code == 201
    gone = cara.post("/api/v1/me/deletion", json={"password": PASSWORD, "confirm": True})
    assert gone.status_code == 200, gone.text
    assert count_rows(HealthProfile, HealthProfile.user_id == outsider.id) == 0
    assert count_rows(ProfileCode, ProfileCode.user_id == outsider.id) == 0 and count_rows(ConnectionRequest) == 0
    assert people(alice) == []
