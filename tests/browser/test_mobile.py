"""The circle on a phone: 390 x 844 CSS pixels, touch, a narrow screen."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import load, sign_in

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True,
         "has_touch": True}


def _horizontal_overflow(page) -> dict:
    return page.evaluate(
        "() => ({scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth})"
    )


def test_circle_feed_fits_a_phone_screen(live, second_context) -> None:
    w = live.world
    live.create_post(w.bob, "Walked to the park and back. **Felt great!**")
    live.create_post(w.coach, "Vote for our next group walk.", poll_question="Best day for a group walk?",
                     poll_options=["Saturday", "Sunday"])
    live.create_post(w.pat, f"Welcome to the circle, @{w.alice.handle}! Ask me anything.")
    live.accept_rules(w.alice)

    page = second_context(**PHONE).new_page()
    sign_in(page, live, w.alice)
    size = _horizontal_overflow(page)
    assert size["innerWidth"] == 390, size
    assert size["scrollWidth"] <= size["innerWidth"], f"the circle list scrolls sideways: {size}"

    load(page, page.get_by_role("link", name="Morning Movers").click)
    expect(page.locator("#feed article.post")).to_have_count(3)
    size = _horizontal_overflow(page)
    assert size["scrollWidth"] <= size["innerWidth"], f"the feed scrolls sideways: {size}"

    compose = page.get_by_label("Your post")
    expect(compose).to_be_visible()
    expect(compose).to_be_in_viewport()
    box = compose.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    expect(page.get_by_role("button", name="Post", exact=True)).to_be_visible()

    # A reaction button is big enough to tap.
    heart = page.locator("#feed article.post").first.locator("button[data-reaction='heart']")
    hbox = heart.bounding_box()
    assert hbox is not None and hbox["height"] >= 32 and hbox["width"] >= 32, hbox


def test_post_with_a_long_link_does_not_scroll_sideways_on_a_phone(live, second_context) -> None:
    """People share articles; a long address must wrap instead of widening the page."""
    w = live.world
    live.create_post(
        w.bob,
        "Read this before your first 5k: https://www.example.org/health/exercise/"
        "walking-for-beginners-a-complete-guide-to-building-a-daily-habit-safely",
    )
    live.accept_rules(w.alice)

    page = second_context(**PHONE).new_page()
    sign_in(page, live, w.alice)
    load(page, page.get_by_role("link", name="Morning Movers").click)
    expect(page.locator("#feed article.post")).to_have_count(1)
    size = _horizontal_overflow(page)
    assert size["scrollWidth"] <= size["innerWidth"], f"the feed scrolls sideways: {size}"
