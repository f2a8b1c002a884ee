"""What a coach and a participant see of notifications and protocols, in a real browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from peerlift import db as dbmod
from tests.browser.conftest import load, sign_in

pytestmark = pytest.mark.browser
WALK = (Path(__file__).parents[2] / "tests" / "data" / "walk_protocol.yaml")


def test_notification_centre_and_settings(page: Page, live) -> None:
    w = live.world
    post_id = live.create_post(w.alice, "First walk of the week done")
    with dbmod.transaction() as s:
        from peerlift.community import service
        from peerlift.community.models import Post
        from peerlift.policy import circle_access

        service.create_comment(s, circle_access(s, w.bob, w.circle.id), s.get(Post, post_id), "Go Alice!")
    sign_in(page, live, w.alice)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name=re.compile(r"^Notifications"))).to_have_accessible_name(
        re.compile(r"1 unread"))
    load(page, nav.get_by_role("link", name=re.compile(r"^Notifications")).click)
    load(page, page.get_by_role("button", name="Bob Baker replied to you in Morning Movers").click)
    expect(page).to_have_url(re.compile(rf"/posts/{post_id}#comment-\d+$"))
    expect(page.locator("#thread")).to_contain_text("Go Alice!")
    expect(nav.locator("#nav-notifications")).to_be_hidden()

    load(page, lambda: page.goto(live.at("/settings/notifications")))
    page.get_by_label("Someone reacts to my post").select_option("off")
    page.get_by_label("Quiet hours start").fill("21:30")
    page.get_by_label("Send me a summary").select_option("daily")
    load(page, page.get_by_role("button", name="Save").click)
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.get_by_label("Someone reacts to my post")).to_have_value("off")
    expect(page.get_by_label("Quiet hours start")).to_have_value("21:30")


def test_coach_assigns_a_protocol_and_sees_fidelity(page: Page, live) -> None:
    from peerlift.protocols import service as protocols

    w = live.world
    with dbmod.transaction() as s:
        protocols.register(s, WALK.read_text(), None, WALK.name)
    live.accept_rules(w.coach)
    sign_in(page, live, w.coach)
    load(page, lambda: page.goto(live.circle_url))
    load(page, page.get_by_role("link", name="Protocol").click)
    expect(page.get_by_role("heading", name="Assign a protocol")).to_be_visible()
    page.get_by_label("Protocol").select_option(label="Walking together (walking-together 1.0.0)")
    load(page, page.get_by_role("button", name="Assign").click)
    expect(page.get_by_role("heading", name="Running: Walking together")).to_be_visible()
    table = page.get_by_role("table")
    expect(table).to_contain_text("morning-prompt")
    expect(page.get_by_role("heading", name=re.compile("Fidelity"))).to_be_visible()
    # migrating needs a reason: the browser asks for it before anything is sent
    expect(page.get_by_label("Why (kept in the record)")).to_have_attribute("required", "")
