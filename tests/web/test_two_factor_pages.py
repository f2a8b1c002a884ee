"""Two-factor sign-in through the pages, without JavaScript: set-up from the profile, the second step of
signing in, the roles that need it, and the admin's reset form."""

from __future__ import annotations

import html
import re

import pyotp
import pytest
from sqlalchemy import update

from peerlift import db as dbmod
from peerlift.identity.models import AuthSession, TwoFactorChallenge, User
from peerlift.settings import get_settings
from tests.conftest import PASSWORD, count_rows, form_token, totp_code as code, wrong_totp_code as wrong_code


def _password(client, person, next_path: str = "/circles"):
    page = client.get("/login")
    return client.post("/login", data={"email": person.email, "password": PASSWORD, "next": next_path,
                                       "csrf_token": form_token(page.text)}, follow_redirects=False)


def _signed_in_page_client(anon, person):
    assert _password(anon, person).status_code == 303
    return anon


def _secret_on(page_html: str) -> str:
    match = re.search(r'id="two-factor-secret">([A-Z2-7 ]+)<', page_html)
    assert match, "the set-up page shows no key"
    return match.group(1).replace(" ", "")


def _enrol(client, steps, k: int = 0) -> tuple[str, list[str]]:
    token = form_token(client.get("/profile/two-factor").text)
    with steps(k):
        started = client.post("/profile/two-factor/setup", data={"csrf_token": token}, follow_redirects=False)
        assert started.status_code == 303 and started.headers["location"] == "/profile/two-factor#confirm"
        page = client.get("/profile/two-factor").text
        secret = _secret_on(page)
        done = client.post("/profile/two-factor/confirm", data={"csrf_token": token,
                                                                "code": code(secret, k, steps)})
    assert done.status_code == 200, done.text
    codes = re.findall(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>", done.text)
    return secret, codes


def test_set_up_from_the_profile_then_sign_in_with_password_and_code(world, anon, steps):
    _signed_in_page_client(anon, world.alice)
    profile = anon.get("/profile").text
    assert "Two-factor sign-in" in profile and 'href="/profile/two-factor"' in profile
    page = anon.get("/profile/two-factor")
    assert page.status_code == 200 and "Set up two-factor sign-in" in page.text
    token = form_token(page.text)
    with steps(0):
        anon.post("/profile/two-factor/setup", data={"csrf_token": token})
        page = anon.get("/profile/two-factor").text
    assert re.search(r'<img class="qr" src="data:image/svg\+xml[^"]+" alt="QR code', page)
    secret = _secret_on(page)
    assert len(secret) == 32 and pyotp.TOTP(secret)  # the key is there to type by hand as well

    with steps(0):
        bad = anon.post("/profile/two-factor/confirm", data={"csrf_token": token, "code": wrong_code(secret, 0, steps)})
    assert bad.status_code == 422 and "That code is not right." in bad.text
    assert _secret_on(bad.text) == secret  # the same key, to try again
    with dbmod.transaction(write=False) as s:
        assert s.get(User, world.alice.id).two_factor_enabled_at is None

    with steps(0):
        done = anon.post("/profile/two-factor/confirm", data={"csrf_token": token, "code": code(secret, 0, steps)})
    assert done.status_code == 200 and "Two-factor sign-in is on." in done.text
    codes = re.findall(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>", done.text)
    assert len(codes) == 10 and "shown only this once" in done.text and done.headers["cache-control"] == "no-store"
    on = anon.get("/profile/two-factor").text
    assert "Two-factor sign-in is on" in on and "<strong>10</strong> unused recovery codes" in on
    assert codes[0] not in on and "two-factor-secret" not in on

    anon.post("/logout", data={"csrf_token": token})
    with steps(1):
        first = _password(anon, world.alice, "/messages")
    assert first.status_code == 303 and first.headers["location"] == "/login/two-factor?next=/messages"
    assert "peerlift_2fa=" in first.headers["set-cookie"] and "peerlift_session=" not in first.headers["set-cookie"]
    assert "HttpOnly" in first.headers["set-cookie"] and "Path=/login" in first.headers["set-cookie"]
    assert anon.get("/circles", follow_redirects=False).headers["location"].startswith("/login")
    step = anon.get("/login/two-factor?next=/messages")
    assert step.status_code == 200 and 'autocomplete="one-time-code"' in step.text
    assert 'for="code"' in step.text and 'name="next" value="/messages"' in step.text
    with steps(1):
        wrong = anon.post("/login/two-factor", data={"csrf_token": form_token(step.text), "next": "/messages",
                                                     "code": wrong_code(secret, 1, steps)})
        assert wrong.status_code == 401 and "That code is not right." in wrong.text
        assert 'role="alert"' in wrong.text
        done = anon.post("/login/two-factor", data={"csrf_token": form_token(step.text), "next": "/messages",
                                                    "code": code(secret, 1, steps)}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/messages"
    assert "peerlift_session=" in done.headers["set-cookie"]
    assert 'peerlift_2fa=""' in done.headers["set-cookie"] or "peerlift_2fa=;" in done.headers["set-cookie"]
    assert anon.get("/circles").status_code == 200


def test_second_step_without_a_password_first_goes_back_to_sign_in(world, anon):
    response = anon.get("/login/two-factor", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    page = anon.get("/login")
    refused = anon.post("/login/two-factor", data={"csrf_token": form_token(page.text), "code": "123456"})
    assert refused.status_code == 401 and "Sign in again" in refused.text
    assert count_rows(AuthSession) == 0


def test_expired_challenge_and_reused_code_on_the_page(world, client_for, anon, steps):
    secret, _codes = _enrol(_signed_in_page_client(client_for(None), world.alice), steps, 0)
    with steps(1):
        _password(anon, world.alice)
    form = anon.get("/login/two-factor")
    reused = anon.post("/login/two-factor", data={"csrf_token": form_token(form.text), "code": code(secret, 0, steps)})
    assert reused.status_code == 401 and "That code was used already." in html.unescape(reused.text)
    with dbmod.transaction() as s:
        s.execute(update(TwoFactorChallenge).values(expires_at=dbmod.utcnow()))
    with steps(1):
        late = anon.post("/login/two-factor", data={"csrf_token": form_token(form.text), "code": code(secret, 1, steps)})
    assert late.status_code == 401 and "The code came too late" in late.text
    assert 'href="/login?next=' in late.text and "Sign in again" in late.text
    assert "peerlift_2fa" in late.headers["set-cookie"]  # cleared
    assert count_rows(AuthSession) == 1  # only the enrolling browser


def test_recovery_code_at_sign_in_and_new_codes_and_turning_it_off(world, client_for, anon, steps):
    browser = _signed_in_page_client(client_for(None), world.alice)
    secret, codes = _enrol(browser, steps, 0)
    with steps(1):
        _password(anon, world.alice)
    form = anon.get("/login/two-factor")
    used = anon.post("/login/two-factor", data={"csrf_token": form_token(form.text), "code": codes[3]},
                     follow_redirects=False)
    assert used.status_code == 303 and used.headers["location"] == "/circles"
    assert "<strong>9</strong> unused recovery codes" in anon.get("/profile/two-factor").text

    token = form_token(browser.get("/profile/two-factor").text)
    with steps(1):
        bad = browser.post("/profile/two-factor/recovery-codes", data={"csrf_token": token,
                                                                      "code": wrong_code(secret, 1, steps)})
        assert bad.status_code == 422 and "That code is not right." in bad.text
        fresh = browser.post("/profile/two-factor/recovery-codes", data={"csrf_token": token,
                                                                        "code": code(secret, 1, steps)})
    assert fresh.status_code == 200 and "Your old codes no longer work." in fresh.text
    assert len(re.findall(r"<li><code>", fresh.text)) == 10

    with steps(2):
        wrong_password = browser.post("/profile/two-factor/disable", data={
            "csrf_token": token, "password": "not my password", "code": code(secret, 2, steps)})
        assert wrong_password.status_code == 401 and "The password is not right." in wrong_password.text
        off = browser.post("/profile/two-factor/disable", data={"csrf_token": token, "password": PASSWORD,
                                                                "code": code(secret, 2, steps)},
                           follow_redirects=False)
    assert off.status_code == 303 and off.headers["location"] == "/profile/two-factor?disabled=1"
    assert "Two-factor sign-in is off." in browser.get(off.headers["location"]).text
    signed_in = _password(client_for(None), world.alice)
    assert signed_in.headers["location"] == "/circles"


@pytest.fixture
def required(database, monkeypatch):
    monkeypatch.delenv("PEERLIFT_TWO_FACTOR_ROLES")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_a_clinician_without_it_is_sent_to_set_it_up_and_nowhere_else(world, anon, steps, required):
    first = _password(anon, world.clinician, "/messages")
    assert first.status_code == 303 and first.headers["location"] == "/profile/two-factor"
    for path in ("/circles", f"/circles/{world.circle.id}", "/safety/escalations", "/profile", "/messages"):
        response = anon.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/profile/two-factor", path
    page = anon.get("/profile/two-factor")
    assert page.status_code == 200 and "Your role (clinician) needs two-factor sign-in" in page.text
    _enrol(anon, steps, 0)
    assert anon.get("/circles").status_code == 200
    # Signing out is open at any time.
    assert anon.post("/logout", data={"csrf_token": form_token(page.text)}, follow_redirects=False).status_code == 303


def test_admin_resets_a_persons_two_factor_sign_in_by_email(world, client_for, anon, steps):
    _enrol(_signed_in_page_client(client_for(None), world.alice), steps, 0)
    bob = _signed_in_page_client(client_for(None), world.bob)
    assert bob.get("/admin/two-factor").status_code == 403
    token = form_token(bob.get("/profile").text)
    assert bob.post("/admin/two-factor/reset", data={"csrf_token": token, "email": world.alice.email}).status_code \
        == 403
    admin = _signed_in_page_client(anon, world.admin)
    assert 'href="/admin/two-factor"' in admin.get("/profile").text
    form = admin.get("/admin/two-factor")
    assert form.status_code == 200 and 'for="email"' in form.text
    token = form_token(form.text)
    unknown = admin.post("/admin/two-factor/reset", data={"csrf_token": token, "email": "nobody@example.test"})
    assert unknown.status_code == 404 and "No account has that email address." in unknown.text
    none = admin.post("/admin/two-factor/reset", data={"csrf_token": token, "email": world.carol.email})
    assert none.status_code == 409 and "has no two-factor sign-in to reset" in none.text
    done = admin.post("/admin/two-factor/reset", data={"csrf_token": token, "email": world.alice.email.upper()})
    assert done.status_code == 200 and f"The two-factor sign-in of {world.alice.display_name} was reset." in done.text
    assert _password(client_for(None), world.alice).headers["location"] == "/circles"
