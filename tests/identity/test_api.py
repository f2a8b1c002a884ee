"""Signing in and out, the profile, CSRF, and sign-up through an invitation."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from peerlift import db as dbmod
from peerlift.community.models import Membership
from peerlift.identity.models import AuthSession, Invitation, User
from tests.conftest import PASSWORD, assert_error, count_rows


def test_login_sets_cookie_and_returns_csrf_token(world, anon):
    response = anon.post("/api/v1/auth/login", json={"email": world.alice.email, "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["email"] == world.alice.email
    assert len(body["csrf_token"]) >= 32
    cookie = response.headers["set-cookie"]
    assert "peerlift_session=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    assert anon.get("/api/v1/me").json()["id"] == world.alice.id


def test_login_email_is_case_insensitive(world, anon):
    response = anon.post("/api/v1/auth/login", json={"email": world.alice.email.upper(), "password": PASSWORD})
    assert response.status_code == 200


def test_wrong_password_and_unknown_email_get_the_same_answer(world, anon):
    wrong = assert_error(anon.post("/api/v1/auth/login", json={"email": world.alice.email, "password": "nope-nope-nope"}),
                         401, "invalid_credentials")
    unknown = assert_error(anon.post("/api/v1/auth/login", json={"email": "nobody@example.test", "password": "x" * 12}),
                           401, "invalid_credentials")
    assert wrong["message"] == unknown["message"]
    assert count_rows(AuthSession) == 0


def test_malformed_json_is_a_clear_400(world, anon):
    response = anon.post("/api/v1/auth/login", content=b'{"email": "a@b.c", "password": ',
                         headers={"content-type": "application/json"})
    assert_error(response, 400, "malformed_json")


def test_missing_field_names_the_field(world, anon):
    assert_error(anon.post("/api/v1/auth/login", json={"email": world.alice.email}), 422, "invalid", "password")


def test_unknown_field_is_refused(world, anon):
    assert_error(anon.post("/api/v1/auth/login", json={"email": world.alice.email, "password": PASSWORD, "admin": True}),
                 422, "invalid", "admin")


def test_form_encoded_login_to_the_json_route_is_refused(world, anon):
    response = anon.post("/api/v1/auth/login", data={"email": world.alice.email, "password": PASSWORD})
    assert response.status_code in (415, 422)
    assert count_rows(AuthSession) == 0


def test_me_needs_a_session(world, anon):
    assert_error(anon.get("/api/v1/me"), 401, "not_authenticated")


def test_forged_or_expired_cookie_is_not_a_session(world, anon, client_for):
    anon.cookies.set("peerlift_session", "forged-token-value")
    assert_error(anon.get("/api/v1/me"), 401)
    alice = client_for(world.alice)
    with dbmod.transaction() as s:
        s.execute(update(AuthSession).values(expires_at=dbmod.utcnow() - dt.timedelta(seconds=1)))
    assert_error(alice.get("/api/v1/me"), 401)


def test_logout_ends_the_session(world, client_for):
    alice = client_for(world.alice)
    assert alice.post("/api/v1/auth/logout").status_code == 204
    assert count_rows(AuthSession) == 0
    assert_error(alice.get("/api/v1/me"), 401)


def test_writes_without_csrf_token_are_refused_and_write_nothing(world, client_for):
    alice = client_for(world.alice)
    del alice.headers["X-CSRF-Token"]
    assert_error(alice.patch("/api/v1/me", json={"bio": "hello"}), 403, "csrf_failed", "csrf_token")
    alice.headers["X-CSRF-Token"] = "not-the-token"
    assert_error(alice.patch("/api/v1/me", json={"bio": "hello"}), 403, "csrf_failed")
    with dbmod.transaction(write=False) as s:
        assert s.get(User, world.alice.id).bio == ""


def test_csrf_token_of_another_session_does_not_work(world, client_for):
    alice, bob = client_for(world.alice), client_for(world.bob)
    alice.headers["X-CSRF-Token"] = bob.headers["X-CSRF-Token"]
    assert_error(alice.patch("/api/v1/me", json={"bio": "x"}), 403, "csrf_failed")


def test_profile_update(world, client_for):
    alice = client_for(world.alice)
    response = alice.patch("/api/v1/me", json={"display_name": "Alice A.", "pronouns": "she/her",
                                               "bio": "Walking every day.", "timezone": "America/Chicago"})
    assert response.status_code == 200
    me = alice.get("/api/v1/me").json()
    assert (me["display_name"], me["pronouns"], me["bio"], me["timezone"]) == (
        "Alice A.", "she/her", "Walking every day.", "America/Chicago")


def test_profile_bad_input(world, client_for):
    alice = client_for(world.alice)
    assert_error(alice.patch("/api/v1/me", json={"timezone": "Mars/Olympus"}), 422, "invalid", "timezone")
    assert_error(alice.patch("/api/v1/me", json={"display_name": "   "}), 422, "invalid", "display_name")
    assert_error(alice.patch("/api/v1/me", json={"bio": "x" * 501}), 422, "invalid", "bio")
    assert alice.get("/api/v1/me").json()["display_name"] == "Alice Archer"


def test_user_profiles_are_visible_only_to_people_who_share_a_circle(world, client_for):
    alice = client_for(world.alice)
    assert alice.get(f"/api/v1/users/{world.bob.id}").json()["display_name"] == "Bob Baker"
    assert_error(alice.get(f"/api/v1/users/{world.carol.id}"), 404)
    assert_error(alice.get("/api/v1/users/999999"), 404)


# --- invitations ----------------------------------------------------------------------------

def _invite(client, circle, **body):
    response = client.post(f"/api/v1/circles/{circle.id}/invitations", json=body or {"days_valid": 7, "max_uses": 2})
    assert response.status_code == 201, response.text
    return response.json()


def _signup(anon, token, email="newcomer@example.test", **extra):
    return anon.post("/api/v1/auth/signup", json={
        "token": token, "email": email, "password": "a long enough password",
        "display_name": "Nia Newcomer", "timezone": "Europe/Berlin", **extra})


def test_facilitator_invites_and_a_person_signs_up(world, client_for, anon):
    coach = client_for(world.coach)
    invitation = _invite(coach, world.circle)
    assert invitation["url"].endswith(f"/join/{invitation['token']}")
    response = _signup(anon, invitation["token"])
    assert response.status_code == 201, response.text
    anon.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    circles = anon.get("/api/v1/circles").json()
    assert [c["id"] for c in circles] == [world.circle.id]
    assert anon.get("/api/v1/me").json()["timezone"] == "Europe/Berlin"


def test_only_facilitators_invite(world, client_for):
    for person in (world.alice, world.pat, world.clinician):
        assert_error(client_for(person).post(f"/api/v1/circles/{world.circle.id}/invitations", json={}), 403)
    assert_error(client_for(world.other_coach).post(f"/api/v1/circles/{world.circle.id}/invitations", json={}), 404)


def test_invitation_limits_are_checked(world, client_for):
    coach = client_for(world.coach)
    url = f"/api/v1/circles/{world.circle.id}/invitations"
    assert_error(coach.post(url, json={"days_valid": 0}), 422, "invalid", "days_valid")
    assert_error(coach.post(url, json={"max_uses": 501}), 422, "invalid", "max_uses")
    assert count_rows(Invitation) == 0


def test_used_up_invitation(world, client_for, anon):
    invitation = _invite(client_for(world.coach), world.circle, days_valid=7, max_uses=1)
    assert _signup(anon, invitation["token"], "first@example.test").status_code == 201
    second = client_for(None)
    assert_error(_signup(second, invitation["token"], "second@example.test"), 410, "invitation_unusable", "token")
    assert count_rows(User, User.email == "second@example.test") == 0


def test_expired_invitation(world, client_for, anon):
    invitation = _invite(client_for(world.coach), world.circle)
    with dbmod.transaction() as s:
        s.execute(update(Invitation).values(expires_at=dbmod.utcnow() - dt.timedelta(minutes=1)))
    error = assert_error(_signup(anon, invitation["token"]), 410, "invitation_unusable", "token")
    assert "expired" in error["message"]
    assert count_rows(User, User.email == "newcomer@example.test") == 0


def test_unknown_invitation(world, anon):
    assert_error(_signup(anon, "no-such-token"), 404, "invitation_not_found", "token")


def test_signup_bad_input_writes_nothing(world, client_for, anon):
    invitation = _invite(client_for(world.coach), world.circle)
    assert_error(_signup(anon, invitation["token"], email=world.bob.email), 409, "conflict", "email")
    assert_error(_signup(anon, invitation["token"], email="not-an-email"), 422, "invalid", "email")
    assert_error(_signup(anon, invitation["token"], password="short"), 422, "invalid", "password")
    assert_error(_signup(anon, invitation["token"], timezone="Nowhere/City"), 422, "invalid", "timezone")
    with dbmod.transaction(write=False) as s:
        assert s.scalar(select(Invitation.uses)) == 0
    assert count_rows(Membership, Membership.space_id == world.circle.id) == 5


def test_passwords_are_stored_as_argon2(world):
    with dbmod.transaction(write=False) as s:
        stored = s.get(User, world.alice.id).password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_change_password(world, client_for):
    alice = client_for(world.alice)
    assert_error(alice.post("/api/v1/me/password", json={"current_password": "wrong one!", "new_password": "x" * 12}),
                 401, "invalid_credentials", "current_password")
    assert_error(alice.post("/api/v1/me/password", json={"current_password": PASSWORD, "new_password": "short"}),
                 422, "invalid", "new_password")
    assert alice.post("/api/v1/me/password", json={"current_password": PASSWORD,
                                                   "new_password": "a fresh long password"}).status_code == 204
    again = client_for(None).post("/api/v1/auth/login", json={"email": world.alice.email,
                                                               "password": "a fresh long password"})
    assert again.status_code == 200
