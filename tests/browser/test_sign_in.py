"""Signing in, with a mouse and with a keyboard."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import load
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_sign_in_wrong_password_then_right_password_lists_only_my_circles(page: Page, live) -> None:
    alice = live.world.alice
    page.goto(live.at("/"))
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    page.get_by_label("Email address").fill(alice.email)
    page.get_by_label("Password").fill("not my password")
    load(page, page.get_by_role("button", name="Sign in").click, status=401)

    expect(page.get_by_role("alert")).to_have_text("The email address or the password is not right.")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_label("Email address")).to_have_value(alice.email)
    expect(page.get_by_label("Password")).to_have_value("")
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)

    page.get_by_label("Password").fill(PASSWORD)
    load(page, page.get_by_role("button", name="Sign in").click)

    expect(page).to_have_url(re.compile(r"/circles$"))
    expect(page.get_by_role("heading", name="Your circles")).to_be_visible()
    expect(page.get_by_role("link", name="Morning Movers")).to_be_visible()
    expect(page.get_by_text("Stride Crew")).to_have_count(0)
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Alice Archer")).to_be_visible()


def test_keyboard_tab_reaches_skip_link_first_and_skip_link_leads_to_email(page: Page, live) -> None:
    page.goto(live.at("/login"))
    skip = page.get_by_role("link", name="Skip to content")

    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0, f"the focused skip link is off screen: {box}"
    expect(skip).to_be_in_viewport()

    # Using the skip link moves past the header: the next Tab lands in the form.
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/login#main$"))
    page.keyboard.press("Tab")
    expect(page.get_by_label("Email address")).to_be_focused()


def test_keyboard_tab_order_on_sign_in_page(page: Page, live) -> None:
    """Without the skip link: skip link, the brand link of the header, then the form in order."""
    page.goto(live.at("/login"))
    order = [
        page.get_by_role("link", name="Skip to content"),
        page.get_by_role("link", name="peerlift"),
        page.get_by_label("Email address"),
        page.get_by_label("Password"),
        page.get_by_role("button", name="Sign in"),
    ]
    for target in order:
        page.keyboard.press("Tab")
        expect(target).to_be_focused()


def test_signed_out_link_to_a_circle_leads_there_after_sign_in(page: Page, live) -> None:
    w = live.world
    load(page, live.circle_url)
    expect(page).to_have_url(re.compile(rf"/login\?next=/circles/{w.circle.id}$"))

    page.get_by_label("Email address").fill(w.alice.email)
    page.get_by_label("Password").fill(PASSWORD)
    load(page, page.get_by_role("button", name="Sign in").click)

    expect(page).to_have_url(live.circle_url)
    expect(page.get_by_role("heading", name="Welcome to Morning Movers")).to_be_visible()
