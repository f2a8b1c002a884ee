"""Circles, members and roles, rules on first visit, and the contamination guard between arms."""

from __future__ import annotations

from peerlift.community.models import Membership, Space
from tests.conftest import assert_error, count_rows


def test_facilitator_creates_a_circle_and_leads_it(world, client_for):
    coach = client_for(world.coach)
    created = coach.post("/api/v1/circles", json={"name": "Evening Walkers", "timezone": "America/New_York",
                                                  "rules": "Be kind."})
    assert created.status_code == 201
    body = created.json()
    assert (body["name"], body["my_role"], body["timezone"], body["member_count"]) == (
        "Evening Walkers", "facilitator", "America/New_York", 1)


def test_participants_cannot_create_circles_and_bad_input_is_refused(world, client_for):
    assert_error(client_for(world.alice).post("/api/v1/circles", json={"name": "Mine"}), 403)
    coach = client_for(world.coach)
    assert_error(coach.post("/api/v1/circles", json={"name": "  "}), 422, "invalid", "name")
    assert_error(coach.post("/api/v1/circles", json={"name": "X", "timezone": "Moon/Base"}), 422, "invalid", "timezone")
    assert_error(coach.post("/api/v1/circles", json={"name": "X", "arm_id": 9999}), 422, "invalid", "arm_id")
    assert count_rows(Space) == 2


def test_member_list_with_roles(world, client_for):
    members = client_for(world.bob).get(f"/api/v1/circles/{world.circle.id}/members").json()
    assert [(m["display_name"], m["circle_role"]) for m in members] == [
        ("Maya Coach", "facilitator"), ("Cleo Clinician", "clinician"), ("Pat Peer", "peer_supporter"),
        ("Alice Archer", "member"), ("Bob Baker", "member")]
    assert_error(client_for(world.carol).get(f"/api/v1/circles/{world.circle.id}/members"), 404)


def test_rules_shown_until_accepted(world, client_for):
    alice = client_for(world.alice)
    detail = alice.get(f"/api/v1/circles/{world.circle.id}").json()
    assert detail["rules"] == "1. Be kind." and detail["rules_accepted"] is False
    assert "Welcome to Morning Movers" in alice.get(f"/circles/{world.circle.id}").text
    assert alice.post(f"/api/v1/circles/{world.circle.id}/rules/accept").status_code == 204
    assert alice.get(f"/api/v1/circles/{world.circle.id}").json()["rules_accepted"] is True
    assert "Share with the circle" in alice.get(f"/circles/{world.circle.id}").text


def test_facilitator_makes_a_peer_supporter(world, client_for):
    coach = client_for(world.coach)
    url = f"/api/v1/circles/{world.circle.id}/members/{world.bob.id}"
    assert coach.patch(url, json={"role": "peer_supporter"}).json()["circle_role"] == "peer_supporter"
    assert_error(client_for(world.alice).patch(url, json={"role": "member"}), 403)
    assert_error(coach.patch(url, json={"role": "facilitator"}), 422, "invalid", "role")
    assert_error(coach.patch(url, json={"role": "boss"}), 422, "invalid", "role")
    assert_error(coach.patch(f"/api/v1/circles/{world.circle.id}/members/{world.carol.id}",
                             json={"role": "member"}), 404)


def test_contamination_guard_keeps_arms_apart(world, client_for):
    """A participant of arm B can never be added to a circle of arm A."""
    coach = client_for(world.coach)
    response = coach.post(f"/api/v1/circles/{world.circle.id}/members", json={"email": world.carol.email})
    assert_error(response, 409, "other_arm", "user_id")
    assert count_rows(Membership, Membership.user_id == world.carol.id) == 1
    # the same person is fine in a circle outside the study
    free = coach.post("/api/v1/circles", json={"name": "Open walking group"}).json()
    assert coach.post(f"/api/v1/circles/{free['id']}/members", json={"email": world.carol.email}).status_code == 201


def test_adding_members(world, client_for):
    coach = client_for(world.coach)
    url = f"/api/v1/circles/{world.circle.id}/members"
    assert_error(coach.post(url, json={"email": world.bob.email}), 409, "conflict")
    assert_error(coach.post(url, json={"email": "ghost@example.test"}), 404, "not_found", "email")
    assert_error(coach.post(url, json={"email": world.alice.email, "role": "clinician"}), 409)
    assert_error(client_for(world.alice).post(url, json={"email": world.carol.email}), 403)
