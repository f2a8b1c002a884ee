"""Correcting one's profile: name, pronouns, bio and time zone, and the sign-in address (with the
password)."""

from __future__ import annotations

from peerlift.identity.models import AuditEntry, LoginFailure, User
from tests.conftest import PASSWORD, assert_error, count_rows, form_token


def test_profile_fields_are_corrected_through_the_api(world, client_for):
    alice = client_for(world.alice)
    changed = alice.patch("/api/v1/me", json={"display_name": "Alice Archer-Smith", "pronouns": "she/her",
                                              "bio": "Walker.", "timezone": "America/New_York"})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["display_name"], body["pronouns"], body["bio"], body["timezone"]) == (
        "Alice Archer-Smith", "she/her", "Walker.", "America/New_York")


def test_email_change_needs_the_password_and_then_signs_in_with_the_new_address(world, client_for):
    alice = client_for(world.alice)
    done = alice.post("/api/v1/me/email", json={"email": "  Alice.New@Example.test ", "password": PASSWORD})
    assert done.status_code == 200, done.text
    assert done.json()["email"] == "alice.new@example.test"
    assert count_rows(AuditEntry, AuditEntry.action == "email.changed", AuditEntry.actor_id == world.alice.id) == 1
    assert client_for(None).post("/api/v1/auth/login", json={"email": "alice.new@example.test",
                                                             "password": PASSWORD}).status_code == 200
    assert_error(client_for(None).post("/api/v1/auth/login", json={"email": world.alice.email,
                                                                   "password": PASSWORD}), 401)


def test_email_change_bad_input_changes_nothing(world, client_for):
    alice = client_for(world.alice)
    assert_error(alice.post("/api/v1/me/email", json={"email": "new@example.test", "password": "not it at all"}),
                 401, "invalid_credentials", "password")
    assert count_rows(LoginFailure) == 1  # a wrong password here counts like a failed sign-in
    assert_error(alice.post("/api/v1/me/email", json={"email": "not an address", "password": PASSWORD}),
                 422, "invalid", "email")
    assert_error(alice.post("/api/v1/me/email", json={"email": world.bob.email, "password": PASSWORD}),
                 409, "conflict", "email")
    assert count_rows(User, User.email == world.alice.email) == 1
    assert count_rows(AuditEntry, AuditEntry.action == "email.changed") == 0


def test_email_change_from_the_profile_page(world, client_for):
    alice = client_for(world.alice)
    page = alice.get("/profile")
    assert 'action="/profile/email"' in page.text
    wrong = alice.post("/profile/email", data={"csrf_token": form_token(page.text), "email": "a2@example.test",
                                               "password": "wrong password"})
    assert wrong.status_code == 401 and "The password is not right." in wrong.text
    done = alice.post("/profile/email", data={"csrf_token": form_token(page.text), "email": "a2@example.test",
                                              "password": PASSWORD}, follow_redirects=False)
    assert done.status_code == 303
    assert count_rows(User, User.email == "a2@example.test") == 1
