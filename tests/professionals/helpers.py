"""Stories of verified professionals: a community, a nurse verified by an admin, a newcomer who asks."""

from __future__ import annotations

from peerlift import db as dbmod
from peerlift.identity.models import User
from peerlift.professionals import service as professionals
from peerlift.professionals.models import Professional
from tests.factories import create_user

GUIDELINES = "Be kind."


def community(client, name="Living with diabetes") -> dict:
    created = client.post("/api/v1/communities", json={"name": name, "rules": GUIDELINES})
    assert created.status_code == 201, created.text
    return created.json()


def join(client, community_id: int, pseudonym: str) -> None:
    joined = client.post(f"/api/v1/communities/{community_id}/membership",
                         json={"pseudonym": pseudonym, "accept_guidelines": True})
    assert joined.status_code == 201, joined.text


def community_with_a_nurse(world, client_for):
    """A community the coach made, joined by Nina (a nurse, not yet verified), alice and bob."""
    nina = make_person("Nina Nurse")
    space = community(client_for(world.coach))
    nurse, alice, bob = client_for(nina), client_for(world.alice), client_for(world.bob)
    for client, name in ((nurse, "Night Shift Nina"), (alice, "Calm Heron 42"), (bob, "Brave Otter 11")):
        join(client, space["id"], name)
    return nina, space, nurse, alice, bob


def apply(client, profession="nurse", number="12A3456E", **extra):
    return client.post("/api/v1/me/professional", json={"profession": profession, "registration_number": number,
                                                        "registry": "Nursing and Midwifery Council, UK", **extra})


def make_person(name: str) -> User:
    with dbmod.transaction() as s:
        return create_user(s, name)


def verified(person, admin, profession="nurse") -> int:
    """Apply and verify through the services (set-up for the stories that are not about verifying)."""
    with dbmod.transaction() as s:
        user, admin_user = s.get(User, person.id), s.get(User, admin.id)
        application = professionals.apply(s, user, profession=profession, registration_number="12A3456E")
        professionals.verify(s, admin_user, application)
        return application.id


def revoke(application_id: int, admin) -> None:
    with dbmod.transaction() as s:
        professionals.revoke(s, s.get(User, admin.id), s.get(Professional, application_id), "Register lapsed.")


def ask(client, community_id: int, body="What is a normal HbA1c for someone newly diagnosed?", **extra):
    response = client.post(f"/api/v1/communities/{community_id}/posts",
                           json={"body": body, "question": True, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def answer(client, post_id: int, body="Usually below 48 mmol/mol; your own target is for your team.", **extra):
    return client.post(f"/api/v1/posts/{post_id}/comments", json={"body": body, **extra})
