"""Two members fill in their health profiles, find each other under "people like me", connect and
then message each other (their circle does not allow members to message each other otherwise)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import load, sign_in

pytestmark = pytest.mark.browser


def fill_profile(page: Page, live, condition: str, year: str, goal: str) -> None:
    load(page, live.at("/profile/health"))
    expect(page.get_by_role("heading", name="Health profile", level=1)).to_be_visible()
    page.get_by_label("Condition 1", exact=True).fill(condition)
    page.locator("#condition_year_1").fill(year)
    page.get_by_label("Goal 1", exact=True).fill(goal)
    page.get_by_label("Who sees my conditions").select_option("my_circles")
    page.get_by_label("Who sees my years of diagnosis").select_option("my_circles")
    page.get_by_label("Who sees my goals").select_option("installation")
    page.get_by_label("Suggest me to people like me").check()
    load(page, page.get_by_role("button", name="Save").click)
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.get_by_label("Condition 1", exact=True)).to_have_value(condition)


def test_find_connect_and_message(page: Page, live, second_context) -> None:
    w = live.world
    sign_in(page, live, w.alice)
    fill_profile(page, live, "E11.9 Type 2 diabetes without complications", "2018", "Lose 5%")

    bob_page = second_context().new_page()
    sign_in(bob_page, live, w.bob)
    fill_profile(bob_page, live, "E11.65 Type 2 diabetes with high blood sugar", "2019", "lose 5%")

    load(page, live.at("/people/like-me"))
    suggestion = page.locator("li", has=page.get_by_role("heading", name=w.bob.display_name))
    expect(suggestion).to_contain_text("both: type 2 diabetes (E11)")
    expect(suggestion).to_contain_text("diagnosed within 2 years of each other")
    expect(suggestion).to_contain_text("goal: lose 5%")
    suggestion.get_by_label("A short note (optional)").fill("Hi Bob, shall we swap tips?")
    load(page, suggestion.get_by_role("button", name=f"Ask {w.bob.display_name} to connect").click)
    expect(page.get_by_role("status")).to_contain_text("Request sent")

    load(bob_page, live.at("/people/requests"))
    expect(bob_page.get_by_text("Hi Bob, shall we swap tips?")).to_be_visible()
    load(bob_page, bob_page.get_by_role("button", name=f"Accept {w.alice.display_name}").click)
    expect(bob_page).to_have_url(re.compile(r"/messages/\d+$"))
    bob_page.get_by_label("Message").fill("Hello Alice, gladly!")
    load(bob_page, bob_page.get_by_role("button", name="Send").click)

    load(page, live.at("/people/requests"))
    load(page, page.get_by_role("link", name=f"Message {w.bob.display_name}").click)
    expect(page.locator("ol.messages li.message .body")).to_have_text(["Hello Alice, gladly!"])
