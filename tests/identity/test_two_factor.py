"""Two-factor sign-in: setting it up, signing in with a code or a recovery code, refusals, the roles
that need it, and the admin's reset."""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from sqlalchemy import select

from peerlift import db as dbmod
from peerlift.identity import two_factor
from peerlift.identity.models import AuditEntry, AuthSession, LoginFailure, RecoveryCode, TwoFactor, \
    TwoFactorChallenge, User
from peerlift.settings import get_settings
from tests.conftest import PASSWORD, assert_error, count_rows, totp_code, wrong_totp_code


code, wrong_code = totp_code, wrong_totp_code


def actions(*names: str) -> list[str]:
    with dbmod.transaction(write=False) as s:
        return list(s.scalars(select(AuditEntry.action).where(AuditEntry.action.in_(names)).order_by(AuditEntry.id)))


def enrol(client, steps, k: int = 0) -> tuple[str, list[str]]:
    """Set up two-factor sign-in through the API at step k: the secret and the recovery codes."""
    with steps(k):
        setup = client.post("/api/v1/me/two-factor/setup")
        assert setup.status_code == 200, setup.text
        secret = setup.json()["secret"]
        confirmed = client.post("/api/v1/me/two-factor/confirm", json={"code": code(secret, k, steps)})
    assert confirmed.status_code == 200, confirmed.text
    return secret, confirmed.json()["recovery_codes"]


def password_step(client, person, k: int, steps) -> dict:
    with steps(k):
        response = client.post("/api/v1/auth/login", json={"email": person.email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()


def code_step(client, challenge: str, value: str, k: int, steps):
    with steps(k):
        return client.post("/api/v1/auth/login/two-factor", json={"challenge": challenge, "code": value})


@pytest.fixture
def required(database, monkeypatch):
    """The default of an installation: clinicians, researchers and admins must use two-factor sign-in."""
    monkeypatch.delenv("PEERLIFT_TWO_FACTOR_ROLES")
    get_settings.cache_clear()
    assert get_settings().two_factor_role_set == {"clinician", "researcher", "admin"}
    yield
    get_settings.cache_clear()


# --- setting it up --------------------------------------------------------------------------------

def test_setup_needs_a_current_code_then_gives_ten_recovery_codes_stored_as_hashes(world, client_for, steps):
    alice = client_for(world.alice)
    assert alice.get("/api/v1/me/two-factor").json() == {
        "enabled": False, "enabled_at": None, "required": False, "setup_pending": False, "recovery_codes_left": 0}
    assert_error(alice.post("/api/v1/me/two-factor/confirm", json={"code": "123456"}), 409, "two_factor_not_started")
    with steps(0):
        answer = alice.post("/api/v1/me/two-factor/setup")
    assert answer.headers["cache-control"] == "no-store"
    setup = answer.json()
    secret = setup["secret"]
    assert setup["otpauth_uri"].startswith("otpauth://totp/peerlift:") and f"secret={secret}" in setup["otpauth_uri"]
    assert alice.get("/api/v1/me/two-factor").json()["setup_pending"] is True

    with steps(0):
        bad = assert_error(alice.post("/api/v1/me/two-factor/confirm", json={"code": wrong_code(secret, 0, steps)}),
                           422, "invalid_code", "code")
        assert "not right" in bad["message"]
        malformed = assert_error(alice.post("/api/v1/me/two-factor/confirm", json={"code": "12ab"}),
                                 422, "invalid_code", "code")
        assert malformed["message"] == "Enter the 6-digit code from your authenticator app."
    assert alice.get("/api/v1/me/two-factor").json()["enabled"] is False
    assert count_rows(RecoveryCode) == 0
    assert actions("two_factor.failed") == ["two_factor.failed", "two_factor.failed"]

    with steps(0):
        confirmed = alice.post("/api/v1/me/two-factor/confirm", json={"code": code(secret, 0, steps)})
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10 and confirmed.headers["cache-control"] == "no-store"
    state = alice.get("/api/v1/me/two-factor").json()
    assert state["enabled"] and state["recovery_codes_left"] == 10 and not state["setup_pending"]
    with dbmod.transaction(write=False) as s:
        stored = set(s.scalars(select(RecoveryCode.code_hash)))
    assert len(stored) == 10 and not stored & {c.replace("-", "") for c in codes} and not stored & set(codes)
    assert all(len(h) == 64 for h in stored)
    assert actions("two_factor.enabled") == ["two_factor.enabled"]
    # On already: no second set-up.
    assert_error(alice.post("/api/v1/me/two-factor/setup"), 409, "two_factor_enabled")


def test_the_code_that_confirmed_setup_does_not_sign_in(world, client_for, anon, steps):
    secret, _codes = enrol(client_for(world.alice), steps, 0)
    challenge = password_step(anon, world.alice, 0, steps)["challenge"]
    assert_error(code_step(anon, challenge, code(secret, 0, steps), 0, steps), 401, "code_used", "code")


# --- signing in -----------------------------------------------------------------------------------

def test_password_then_code_signs_in_and_the_password_alone_does_not(world, client_for, anon, steps):
    secret, _codes = enrol(client_for(world.alice), steps, 0)
    sessions_before = count_rows(AuthSession)
    with steps(1):
        first = anon.post("/api/v1/auth/login", json={"email": world.alice.email, "password": PASSWORD})
    body = first.json()
    assert set(body) == {"two_factor_required", "challenge", "expires_at"} and body["two_factor_required"] is True
    assert "peerlift_session" not in first.headers.get("set-cookie", "")
    assert count_rows(AuthSession) == sessions_before
    with dbmod.transaction(write=False) as s:
        stored = s.scalar(select(TwoFactorChallenge))
        assert stored.token_hash != body["challenge"] and stored.user_id == world.alice.id
        assert stored.expires_at - stored.created_at == dt.timedelta(minutes=5)
    assert_error(anon.get("/api/v1/me"), 401)

    done = code_step(anon, body["challenge"], code(secret, 1, steps), 1, steps)
    assert done.status_code == 200, done.text
    assert done.json()["user"]["id"] == world.alice.id and done.json()["two_factor_setup_required"] is False
    anon.headers["X-CSRF-Token"] = done.json()["csrf_token"]
    assert anon.get("/api/v1/me").json()["id"] == world.alice.id
    assert count_rows(TwoFactorChallenge) == 0
    # The challenge is used up with its sign-in.
    assert_error(code_step(anon, body["challenge"], code(secret, 2, steps), 2, steps), 401, "challenge_invalid")


def test_a_code_is_accepted_once_and_an_older_one_never(world, client_for, anon, steps):
    secret, _codes = enrol(client_for(world.alice), steps, 0)
    challenge = password_step(anon, world.alice, 3, steps)["challenge"]
    assert code_step(anon, challenge, code(secret, 3, steps), 3, steps).status_code == 200

    other = client_for(None)
    again = password_step(other, world.alice, 3, steps)["challenge"]
    reused = assert_error(code_step(other, again, code(secret, 3, steps), 3, steps), 401, "code_used", "code")
    assert reused["message"] == "That code was used already. Wait for the next code from your app."
    # The code before it is still inside the window of time, but older than the one used: refused too.
    assert_error(code_step(other, again, code(secret, 2, steps), 3, steps), 401, "code_used")
    with dbmod.transaction(write=False) as s, steps(3):
        assert s.get(TwoFactor, world.alice.id).last_step == pyotp.TOTP(secret).timecode(dbmod.utcnow())
    # The next code works.
    assert code_step(other, again, code(secret, 4, steps), 4, steps).status_code == 200
    assert count_rows(LoginFailure) == 2


def test_wrong_codes_count_as_failed_sign_ins_and_a_challenge_allows_five(world, client_for, anon, steps):
    secret, _codes = enrol(client_for(world.alice), steps, 0)
    challenge = password_step(anon, world.alice, 1, steps)["challenge"]
    wrong = wrong_code(secret, 1, steps)
    for attempt in range(1, 5):
        error = assert_error(code_step(anon, challenge, wrong, 1, steps), 401, "invalid_code", "code")
        assert "not right" in error["message"] and "last try" not in error["message"]
        assert count_rows(LoginFailure) == attempt
    last = assert_error(code_step(anon, challenge, wrong, 1, steps), 401, "invalid_code")
    assert "That was the last try for this sign-in" in last["message"]
    assert count_rows(TwoFactorChallenge) == 0 and count_rows(AuthSession) == 1  # alice's enrolling client
    # The right code is no use now: the challenge is gone.
    assert_error(code_step(anon, challenge, code(secret, 1, steps), 1, steps), 401, "challenge_invalid", "challenge")
    assert actions("two_factor.failed") == ["two_factor.failed"] * 5
    with dbmod.transaction(write=False) as s:
        details = list(s.scalars(select(AuditEntry.detail).where(AuditEntry.action == "two_factor.failed")))
        actors = set(s.scalars(select(AuditEntry.actor_id).where(AuditEntry.action == "two_factor.failed")))
    assert details == ["invalid_code at sign-in"] * 5 and actors == {world.alice.id}
    # Five failures: the account is throttled, even with the right password.
    with steps(1):
        assert_error(anon.post("/api/v1/auth/login", json={"email": world.alice.email, "password": PASSWORD}),
                     429, "too_many_attempts")


def test_throttled_account_cannot_answer_a_challenge_even_with_the_right_code(world, client_for, anon, steps,
                                                                               monkeypatch):
    secret, _codes = enrol(client_for(world.alice), steps, 0)
    challenge = password_step(anon, world.alice, 1, steps)["challenge"]
    monkeypatch.setenv("PEERLIFT_LOGIN_FAILURES_PER_ACCOUNT", "2")
    get_settings.cache_clear()
    for _ in range(2):
        assert_error(code_step(anon, challenge, wrong_code(secret, 1, steps), 1, steps), 401, "invalid_code")
    assert_error(code_step(anon, challenge, code(secret, 1, steps), 1, steps), 429, "too_many_attempts")
    assert count_rows(AuthSession) == 1


def test_an_expired_challenge_is_refused(world, client_for, anon, steps):
    secret, _codes = enrol(client_for(world.alice), steps, 0)
    challenge = password_step(anon, world.alice, 1, steps)["challenge"]
    late = assert_error(code_step(anon, challenge, code(secret, 12, steps), 12, steps), 401, "challenge_expired",
                        "challenge")
    assert "too late" in late["message"] and "Sign in again" in late["message"]
    assert count_rows(AuthSession) == 1
    # A new sign-in clears expired challenges away.
    password_step(anon, world.alice, 12, steps)
    assert count_rows(TwoFactorChallenge) == 1


def test_bad_input_at_the_second_step(world, client_for, anon, steps):
    secret, _codes = enrol(client_for(world.alice), steps, 0)
    challenge = password_step(anon, world.alice, 1, steps)["challenge"]
    with steps(1):
        assert_error(anon.post("/api/v1/auth/login/two-factor", json={"challenge": challenge}), 422, "invalid", "code")
        assert_error(anon.post("/api/v1/auth/login/two-factor", json={"challenge": challenge, "code": "1" * 65}),
                     422, "invalid", "code")
        assert_error(anon.post("/api/v1/auth/login/two-factor",
                               json={"challenge": challenge, "code": "123456", "remember": True}), 422, "invalid",
                     "remember")
        assert_error(anon.post("/api/v1/auth/login/two-factor", json={"challenge": "made-up", "code": "123456"}),
                     401, "challenge_invalid", "challenge")
        odd = assert_error(anon.post("/api/v1/auth/login/two-factor", json={"challenge": challenge, "code": "12 ab!"}),
                           401, "invalid_code", "code")
    assert odd["message"] == "Enter the 6-digit code from your authenticator app, or one of your recovery codes."
    assert count_rows(AuthSession) == 1 and count_rows(LoginFailure) == 1
    # A challenge is not a session: it opens nothing.
    anon.cookies.set("peerlift_session", challenge)
    assert_error(anon.get("/api/v1/me"), 401)


def test_a_recovery_code_signs_in_once(world, client_for, anon, steps):
    secret, codes = enrol(client_for(world.alice), steps, 0)
    challenge = password_step(anon, world.alice, 1, steps)["challenge"]
    # Spaces and capitals are forgiven.
    typed = " " + codes[0].upper().replace("-", " - ") + " "
    assert code_step(anon, challenge, typed, 1, steps).status_code == 200
    assert anon.get("/api/v1/me/two-factor").json()["recovery_codes_left"] == 9
    with dbmod.transaction(write=False) as s:
        used = s.scalar(select(AuditEntry).where(AuditEntry.action == "two_factor.recovery_code_used"))
        assert used.actor_id == world.alice.id and used.detail == "9 left"

    other = client_for(None)
    again = password_step(other, world.alice, 1, steps)["challenge"]
    refused = assert_error(code_step(other, again, codes[0], 1, steps), 401, "recovery_code_used", "code")
    assert refused["message"] == "That recovery code was used already: each one works once."
    assert_error(code_step(other, again, "abcde-fghjk", 1, steps), 401, "invalid_code")
    assert code_step(other, again, codes[1], 1, steps).status_code == 200
    # Another person's codes are not hers, nor hers theirs.
    _bob_secret, bob_codes = enrol(client_for(world.bob), steps, 0)
    third = password_step(client_for(None), world.alice, 1, steps)["challenge"]
    assert_error(code_step(client_for(None), third, bob_codes[0], 1, steps), 401, "invalid_code")


# --- changing it ----------------------------------------------------------------------------------

def test_new_recovery_codes_replace_the_old_ones(world, client_for, anon, steps):
    alice = client_for(world.alice)
    secret, old = enrol(alice, steps, 0)
    with steps(1):
        assert_error(alice.post("/api/v1/me/two-factor/recovery-codes", json={"code": old[0]}), 422, "invalid_code")
        assert_error(alice.post("/api/v1/me/two-factor/recovery-codes", json={"code": wrong_code(secret, 1, steps)}),
                     422, "invalid_code", "code")
        fresh = alice.post("/api/v1/me/two-factor/recovery-codes", json={"code": code(secret, 1, steps)})
    assert fresh.status_code == 200
    new = fresh.json()["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    assert count_rows(RecoveryCode) == 10
    assert actions("two_factor.recovery_codes_regenerated") == ["two_factor.recovery_codes_regenerated"]
    challenge = password_step(anon, world.alice, 2, steps)["challenge"]
    assert_error(code_step(anon, challenge, old[1], 2, steps), 401, "invalid_code")
    assert code_step(anon, challenge, new[1], 2, steps).status_code == 200


def test_turning_it_off_needs_the_password_and_a_code(world, client_for, anon, steps):
    alice = client_for(world.alice)
    assert_error(alice.post("/api/v1/me/two-factor/disable", json={"password": PASSWORD, "code": "123456"}),
                 409, "two_factor_not_enabled")
    secret, codes = enrol(alice, steps, 0)
    with steps(1):
        assert_error(alice.post("/api/v1/me/two-factor/disable",
                                json={"password": "not my password", "code": code(secret, 1, steps)}),
                     401, "invalid_credentials", "password")
        assert_error(alice.post("/api/v1/me/two-factor/disable",
                                json={"password": PASSWORD, "code": wrong_code(secret, 1, steps)}),
                     422, "invalid_code", "code")
        assert_error(alice.post("/api/v1/me/two-factor/disable", json={"password": PASSWORD}), 422, "invalid", "code")
    assert alice.get("/api/v1/me/two-factor").json()["enabled"] is True
    with steps(1):
        assert alice.post("/api/v1/me/two-factor/disable",
                          json={"password": PASSWORD, "code": code(secret, 1, steps)}).status_code == 204
    assert alice.get("/api/v1/me/two-factor").json()["enabled"] is False
    assert count_rows(TwoFactor) == 0 and count_rows(RecoveryCode) == 0
    assert actions("two_factor.disabled") == ["two_factor.disabled"]
    # The password alone signs in again.
    body = password_step(anon, world.alice, 2, steps)
    assert "csrf_token" in body and "challenge" not in body


def test_a_recovery_code_can_turn_it_off(world, client_for, steps):
    alice = client_for(world.alice)
    _secret, codes = enrol(alice, steps, 0)
    with steps(1):
        assert alice.post("/api/v1/me/two-factor/disable", json={"password": PASSWORD, "code": codes[4]}).status_code \
            == 204
    assert actions("two_factor.recovery_code_used", "two_factor.disabled") == [
        "two_factor.recovery_code_used", "two_factor.disabled"]


def test_only_admins_reset_a_persons_two_factor_sign_in(world, client_for, anon, steps):
    others = [client_for(p) for p in (world.alice, world.coach, world.clinician, world.researcher)]
    secret, _codes = enrol(others[0], steps, 0)
    for client in others:
        assert_error(client.delete(f"/api/v1/users/{world.alice.id}/two-factor"), 403, "forbidden")
    admin = client_for(world.admin)
    assert_error(admin.delete("/api/v1/users/999999/two-factor"), 404, "not_found", "user_id")
    assert_error(admin.delete(f"/api/v1/users/{world.bob.id}/two-factor"), 409, "two_factor_not_enabled")
    assert count_rows(TwoFactor) == 1
    # A challenge open at the time of the reset is no longer any use.
    challenge = password_step(anon, world.alice, 1, steps)["challenge"]
    assert admin.delete(f"/api/v1/users/{world.alice.id}/two-factor").status_code == 204
    assert count_rows(TwoFactor) == 0 and count_rows(RecoveryCode) == 0 and count_rows(TwoFactorChallenge) == 0
    with dbmod.transaction(write=False) as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "two_factor.reset"))
        assert entry.actor_id == world.admin.id and entry.object_id == world.alice.id
        assert s.get(User, world.alice.id).two_factor_enabled_at is None
    assert_error(code_step(anon, challenge, code(secret, 1, steps), 1, steps), 401, "challenge_invalid")
    assert "csrf_token" in password_step(client_for(None), world.alice, 1, steps)


# --- the roles that need it -------------------------------------------------------------------------

def test_a_role_that_needs_it_reaches_only_setup_until_it_is_on(world, client_for, anon, steps, required):
    with steps(0):
        body = anon.post("/api/v1/auth/login", json={"email": world.clinician.email, "password": PASSWORD}).json()
    assert body["two_factor_setup_required"] is True
    anon.headers["X-CSRF-Token"] = body["csrf_token"]
    for path in ("/api/v1/me", "/api/v1/circles", f"/api/v1/circles/{world.circle.id}/posts", "/api/v1/stream"):
        error = assert_error(anon.get(path), 403, "two_factor_required")
        assert "/profile/two-factor" in error["message"]
    assert_error(anon.post(f"/api/v1/circles/{world.circle.id}/posts", json={"body": "hello"}), 403,
                 "two_factor_required")
    assert anon.get("/api/v1/me/two-factor").json()["required"] is True
    # Pages lead to the set-up.
    for path in ("/circles", "/", "/profile", "/login"):
        response = anon.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/profile/two-factor", path
    assert anon.get("/profile/two-factor").status_code == 200

    enrol(anon, steps, 0)
    assert anon.get("/api/v1/circles").status_code == 200
    assert anon.get("/circles").status_code == 200


def test_required_roles_and_who_is_free(world, client_for, required, monkeypatch):
    for person in (world.alice, world.coach):
        body = client_for(None).post("/api/v1/auth/login", json={"email": person.email, "password": PASSWORD}).json()
        assert body["two_factor_setup_required"] is False
        assert client_for(person).get("/api/v1/circles").status_code == 200
    for person in (world.clinician, world.researcher, world.admin):
        assert_error(client_for(person).get("/api/v1/circles"), 403, "two_factor_required")
    monkeypatch.setenv("PEERLIFT_TWO_FACTOR_ROLES", "facilitator")
    get_settings.cache_clear()
    assert_error(client_for(world.coach).get("/api/v1/circles"), 403, "two_factor_required")
    assert client_for(world.admin).get("/api/v1/circles").status_code == 200


def test_a_required_person_can_sign_out_before_setting_it_up(world, client_for, required):
    clinician = client_for(world.clinician)
    assert clinician.post("/api/v1/auth/logout").status_code == 204
    assert_error(clinician.get("/api/v1/me/two-factor"), 401)


def test_an_admin_reset_of_a_required_person_sends_them_back_to_setup(world, client_for, steps, required):
    clinician = client_for(world.clinician)
    enrol(clinician, steps, 0)
    assert clinician.get("/api/v1/circles").status_code == 200
    admin = client_for(world.admin)
    enrol(admin, steps, 0)
    assert admin.delete(f"/api/v1/users/{world.clinician.id}/two-factor").status_code == 204
    assert_error(clinician.get("/api/v1/circles"), 403, "two_factor_required")


def test_unknown_role_in_the_setting_is_refused(monkeypatch):
    from pydantic import ValidationError

    from peerlift.settings import Settings

    monkeypatch.setenv("PEERLIFT_TWO_FACTOR_ROLES", "clinician,doctor")
    with pytest.raises(ValidationError, match="unknown role 'doctor'"):
        Settings()
    monkeypatch.setenv("PEERLIFT_TWO_FACTOR_ROLES", " admin , ")
    assert Settings().two_factor_role_set == {"admin"}


def test_service_refuses_a_second_use_of_a_step_even_within_one_unit(world, steps):
    """The accepted step moves on atomically: the same code twice in a row is refused the second time."""
    with dbmod.transaction() as s:
        user = s.get(User, world.bob.id)
        row = two_factor.start_setup(s, user)
        secret = row.secret
    with dbmod.transaction() as s, steps(5):
        row = s.get(TwoFactor, world.bob.id)
        now = pyotp.TOTP(secret).at(dbmod.utcnow())
        assert two_factor._check_totp(s, row, now) == "ok"
        assert two_factor._check_totp(s, row, now) == "reused"
        assert two_factor._check_totp(s, row, wrong_code(secret, 5, steps)) == "wrong"
        assert two_factor._check_totp(s, row, "12345") == "format"
