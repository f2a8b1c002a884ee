"""Cues in the browser: a member's post triggers a rule whose cue appears on their open page
without a reload; a facilitator's inbox receives cards live, and dismisses and snoozes them."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from peerlift import db as dbmod
from peerlift.settings import get_settings
from tests.browser.conftest import load, sign_in
from tests.cues.helpers import log_entry

pytestmark = pytest.mark.browser

RULES = """\
id: browser-cues
version: "1.0.0"
cues:
  - id: first-steps
    trigger: {event: post.created}
    condition: "event.length >= 10"
    action: {notify: "Well done on posting, {first_name}! Your coach has seen it."}
  - id: craving
    trigger: {event: tracking.logged}
    condition: "event.measure == 'cravings' and event.value >= 8"
    action: {inbox: "{display_name} logged cravings at {event.value}."}
"""


@pytest.fixture
def rules_in_force(live, tmp_path, monkeypatch):
    path = tmp_path / "cues.yaml"
    path.write_text(RULES)
    monkeypatch.setenv("PEERLIFT_CUE_FILES", str(path))
    monkeypatch.setenv("PEERLIFT_CUE_DEFAULTS", "false")
    get_settings.cache_clear()
    from peerlift.identity.models import User
    from peerlift.notify.service import update_settings

    with dbmod.transaction() as s:  # no quiet hours, whatever the time the suite runs
        update_settings(s, s.get(User, live.world.alice.id), quiet_start="00:00", quiet_end="00:00")
    yield path
    get_settings.cache_clear()


def _stream_opened(page: Page):
    return page.expect_response(lambda r: r.url.endswith("/api/v1/stream") and r.status == 200)


def test_a_members_post_triggers_a_cue_that_appears_live(page: Page, live, rules_in_force) -> None:
    w = live.world
    live.accept_rules(w.alice)
    sign_in(page, live, w.alice)
    with _stream_opened(page):
        load(page, lambda: page.goto(live.circle_url))
    page.evaluate("window.stillTheSamePage = true")
    link = page.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile(r"^Notifications\b"))

    live.create_post(w.alice, "Walked to work today, 3 km!")  # from her phone, say

    expect(link.locator(".badge")).to_be_visible(timeout=5000)
    expect(link).to_have_accessible_name(re.compile(r"^Notifications\s*1 unread$"))
    assert page.evaluate("window.stillTheSamePage") is True, "the page was reloaded"
    load(page, link.click)
    expect(page.locator("#notification-list")).to_contain_text("Well done on posting, Alice! Your coach has seen it.")


def test_facilitator_inbox_receives_cards_live_and_dismisses_and_snoozes_them(page: Page, live, rules_in_force) -> None:
    w = live.world
    sign_in(page, live, w.coach)
    with _stream_opened(page):
        load(page, lambda: page.goto(live.at("/inbox")))
    expect(page.locator("#inbox")).to_contain_text("Nothing needs you right now.")
    page.evaluate("window.stillTheSamePage = true")

    log_entry(w.alice, "cravings", 9)
    alice_card = page.locator(".inbox-card", has_text="Alice Archer logged cravings at 9.")
    expect(alice_card).to_be_visible(timeout=5000)
    assert page.evaluate("window.stillTheSamePage") is True, "the page was reloaded"

    log_entry(w.bob, "cravings", 8, entry_id=2)
    bob_card = page.locator(".inbox-card", has_text="Bob Baker logged cravings at 8.")
    expect(bob_card).to_be_visible(timeout=5000)

    load(page, alice_card.get_by_role("button", name="Dismiss").click)
    expect(alice_card).to_have_count(0)
    expect(bob_card).to_be_visible()

    bob_card.get_by_label("Snooze for").select_option("4h")
    load(page, bob_card.get_by_role("button", name="Snooze").click)
    expect(page.locator("#inbox")).to_contain_text("Nothing needs you right now.")
