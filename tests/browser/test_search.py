"""A member searches her circle's writing and opens a result."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import load, sign_in

pytestmark = pytest.mark.browser


def test_a_member_searches_and_opens_a_result(page: Page, live) -> None:
    w = live.world
    post_id = live.create_post(w.alice, "Found a quiet swimming pool near the station, open early on Sundays.")
    live.create_post(w.alice, "Walked to the market today.")
    live.accept_rules(w.bob)

    sign_in(page, live, w.bob)
    load(page, page.get_by_role("navigation", name="Main").get_by_role("link", name="Search").click)
    expect(page.get_by_role("heading", name="Search", level=1)).to_be_visible()
    page.get_by_label("Words to find").fill("swimming pool")
    page.get_by_label("Where").select_option(label=w.circle.name)
    load(page, page.get_by_role("button", name="Search").click)
    expect(page).to_have_url(re.compile(r"/search\?q=swimming\+pool"))
    results = page.locator("#search-results li.search-result")
    expect(results).to_have_count(1)
    expect(results.first.locator("mark").first).to_have_text("swimming")
    load(page, results.first.get_by_role("link", name=f"Post by {w.alice.display_name}").click)
    expect(page).to_have_url(live.at(f"/posts/{post_id}"))
    expect(page.get_by_text("Found a quiet swimming pool")).to_be_visible()
