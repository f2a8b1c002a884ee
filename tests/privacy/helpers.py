"""A story of a person's life in peerlift, written through the API as people would, so that every
kind of their data exists (and some of other people's, which must stay out of their download)."""

from __future__ import annotations

from dataclasses import dataclass

from peerlift import db as dbmod
from peerlift.identity.models import User
from peerlift.research import service as research
from tests.conftest import post
from tests.research.helpers import SECTIONS, consented, make_study

BOB_SECRET = "BOB-PRIVATE-7731"  # appears only in Bob's own data
ALICE_POST = "Walked to the river and back this morning."


@dataclass
class Story:
    alice_post: int
    bob_post: int
    bob_comment: int
    alice_comment: int
    poll_id: int
    conversation_id: int
    enrolment_id: int
    study_id: int


def alice_lives(world, client_for, *, deletion_rule: str | None = None) -> Story:
    alice, bob, coach = client_for(world.alice), client_for(world.bob), client_for(world.coach)
    mine = post(alice, world.circle, ALICE_POST, poll={"question": "Same time tomorrow?", "options": ["Yes", "No"]})
    assert mine.status_code == 201, mine.text
    mine = mine.json()
    assert alice.patch(f"/api/v1/posts/{mine['id']}", json={"body": ALICE_POST + " Lovely."}).status_code == 200
    theirs = post(bob, world.circle, f"My weekend plan {BOB_SECRET}").json()
    comment = alice.post(f"/api/v1/posts/{theirs['id']}/comments", json={"body": "Enjoy it, Bob!"})
    assert comment.status_code == 201, comment.text
    reply = bob.post(f"/api/v1/posts/{mine['id']}/comments", json={"body": "Well done, Alice."})
    assert reply.status_code == 201, reply.text
    assert alice.put(f"/api/v1/posts/{theirs['id']}/reactions/heart").status_code == 200
    option = mine["poll"]["options"][0]["id"]
    assert alice.post(f"/api/v1/polls/{mine['poll']['id']}/votes", json={"option_ids": [option]}).status_code == 200

    conversation = alice.post("/api/v1/conversations", json={"user_id": world.coach.id}).json()
    assert alice.post(f"/api/v1/conversations/{conversation['id']}/messages",
                      json={"body": "Hello coach, a question about steps."}).status_code == 201
    assert coach.post(f"/api/v1/conversations/{conversation['id']}/messages",
                      json={"body": "Hello Alice, ask away."}).status_code == 201
    theirs_dm = bob.post("/api/v1/conversations", json={"user_id": world.coach.id}).json()
    assert bob.post(f"/api/v1/conversations/{theirs_dm['id']}/messages",
                    json={"body": f"Private to the coach: {BOB_SECRET}"}).status_code == 201

    assert alice.post("/api/v1/tracking/entries", json={"measure": "weight", "value": 82.5}).status_code == 201
    assert alice.post("/api/v1/tracking/entries", json={"measure": "weight", "value": 82.1}).status_code == 201
    assert alice.put("/api/v1/tracking/goals", json={"target_weight": 75, "daily_steps": 8000}).status_code == 200
    assert bob.post("/api/v1/tracking/entries", json={"measure": "weight", "value": 131.7}).status_code == 201
    sent = coach.post(f"/api/v1/circles/{world.circle.id}/questionnaires",
                      json={"instrument": "phq9", "user_id": world.alice.id})
    assert sent.status_code == 201, sent.text
    answered = alice.post(f"/api/v1/questionnaires/requests/{sent.json()[0]['id']}/response",
                          json={"answers": [1, 1, 2, 1, 0, 1, 1, 0, 0]})
    assert answered.status_code == 201, answered.text
    flagged = alice.post("/api/v1/flags", json={"object_type": "post", "object_id": theirs["id"], "reason": "spam"})
    assert flagged.status_code == 201, flagged.text

    with dbmod.transaction() as s:
        setup = make_study(s, world, slug="walk")
        if deletion_rule is not None:
            research.add_consent_document(s, world.researcher, setup.study, version="2.0", title="Consent",
                                          sections=SECTIONS, on_account_deletion=deletion_rule)
        enrolment = consented(s, setup, s.get(User, world.alice.id))
        study_id, enrolment_id = setup.study.id, enrolment.id
    return Story(mine["id"], theirs["id"], reply.json()["id"], comment.json()["id"], mine["poll"]["id"],
                 conversation["id"], enrolment_id, study_id)
