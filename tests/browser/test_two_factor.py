"""Two-factor sign-in in a browser: set it up from the profile with the key shown on the page, sign
out, sign in with the password and a code."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import load, sign_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_set_up_with_the_key_on_the_page_then_sign_in_with_password_and_code(page: Page, live) -> None:
    alice = live.world.alice
    sign_in(page, live, alice)
    load(page, page.get_by_role("navigation", name="Main").get_by_role("link", name="Alice Archer").click)
    load(page, page.get_by_role("link", name="Set up two-factor sign-in").click)
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    load(page, page.get_by_role("button", name="Set up two-factor sign-in").click)

    qr = page.get_by_role("img", name="QR code to add peerlift to an authenticator app")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.complete && img.naturalWidth > 100"), "the QR code did not render"
    secret = page.locator("#two-factor-secret").inner_text().replace(" ", "")
    totp = pyotp.TOTP(secret)

    page.get_by_label("6-digit code from the app").fill(totp.now())
    load(page, page.get_by_role("button", name="Turn on two-factor sign-in").click)
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    codes = page.get_by_role("list", name="Recovery codes").get_by_role("listitem")
    expect(codes).to_have_count(10)
    load(page, page.get_by_role("link", name="I have kept them safe").click)
    expect(page.get_by_text("Two-factor sign-in is on")).to_be_visible()

    load(page, page.get_by_role("button", name="Sign out").click)
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("Email address").fill(alice.email)
    page.get_by_label("Password").fill(PASSWORD)
    load(page, page.get_by_role("button", name="Sign in").click)
    expect(page).to_have_url(re.compile(r"/login/two-factor"))
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)

    # The code that turned it on was used: each code works once. The next one (the app shows it
    # within 30 seconds; one step ahead is accepted) signs in.
    page.get_by_label("Code from your app, or a recovery code").fill(totp.at(time.time() + 30))
    load(page, page.get_by_role("button", name="Sign in").click)
    expect(page).to_have_url(re.compile(r"/circles$"))
    expect(page.get_by_role("heading", name="Your circles")).to_be_visible()


def test_a_wrong_code_is_refused_with_a_clear_message(page: Page, live) -> None:
    from peerlift import db as dbmod
    from peerlift.identity import two_factor
    from peerlift.identity.models import User

    alice = live.world.alice
    with dbmod.transaction() as s:
        user = s.get(User, alice.id)
        secret = two_factor.start_setup(s, user).secret
        two_factor.confirm_setup(s, user, pyotp.TOTP(secret).now())
    page.goto(live.at("/login"))
    page.get_by_label("Email address").fill(alice.email)
    page.get_by_label("Password").fill(PASSWORD)
    load(page, page.get_by_role("button", name="Sign in").click)
    totp = pyotp.TOTP(secret)
    near = {totp.at(time.time() + d * 30) for d in range(-2, 3)}
    wrong = next(c for c in ("111111", "222222", "333333", "444444", "555555", "666666") if c not in near)
    page.get_by_label("Code from your app, or a recovery code").fill(wrong)
    load(page, page.get_by_role("button", name="Sign in").click, status=401)
    expect(page.get_by_role("alert")).to_contain_text("That code is not right.")
    expect(page.get_by_label("Code from your app, or a recovery code")).to_be_focused()
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
