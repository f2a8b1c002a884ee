"""Stories of shared experience: a community the coach facilitates, where alice and bob are members."""

from __future__ import annotations


def community(client, name="Type 2 diabetes", allow_anonymous=True) -> int:
    created = client.post("/api/v1/communities", json={"name": name, "description": "Living with it.",
                                                       "rules": "Be kind.", "allow_anonymous": allow_anonymous})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def join(client, community_id: int, pseudonym: str) -> None:
    joined = client.post(f"/api/v1/communities/{community_id}/membership",
                         json={"pseudonym": pseudonym, "accept_guidelines": True})
    assert joined.status_code == 201, joined.text


def report(client, community_id: int, **fields):
    body = {"treatment": "A10BA02", "duration_value": 3, "duration_unit": "months", "what_helped": "Taking it with food.",
            "side_effects": ["nausea"], "would_recommend": "yes", **fields}
    return client.post(f"/api/v1/communities/{community_id}/experience-reports", json=body)


def community_of_two(world, client_for):
    """The coach's community with alice ("Calm Heron 42") and bob ("Brave Otter 17") joined:
    (community id, coach's client, alice's, bob's)."""
    coach = client_for(world.coach)
    community_id = community(coach)
    alice, bob = client_for(world.alice), client_for(world.bob)
    join(alice, community_id, "Calm Heron 42")
    join(bob, community_id, "Brave Otter 17")
    return community_id, coach, alice, bob
