"""Live updates: an open page learns of what others do, without a reload (the stream is extra;
every page also works without it)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import load, sign_in

pytestmark = pytest.mark.browser


def _stream_opened(page: Page):
    return page.expect_response(lambda r: r.url.endswith("/api/v1/stream") and r.status == 200)


def test_new_post_appears_in_an_open_feed_without_reload(page: Page, live) -> None:
    w = live.world
    live.create_post(w.pat, "Morning all! Short walk today.")
    live.accept_rules(w.alice)
    sign_in(page, live, w.alice)
    with _stream_opened(page):
        load(page, page.get_by_role("link", name="Morning Movers").click)
    posts = page.locator("#feed article.post")
    expect(posts).to_have_count(1)
    page.evaluate("window.stillTheSamePage = true")

    post_id = live.create_post(w.bob, "Just back from the **canal path**: 5 km!")

    expect(posts).to_have_count(2)
    expect(posts.first).to_have_id(f"post-{post_id}")
    expect(posts.first.locator(".person")).to_have_text("Bob Baker")
    expect(posts.first.locator(".body strong")).to_have_text("canal path")
    assert page.evaluate("window.stillTheSamePage") is True, "the page was reloaded"


def test_message_bumps_the_messages_badge_of_an_open_page(page: Page, live) -> None:
    w = live.world
    sign_in(page, live, w.coach)
    link = page.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile(r"^Messages\b"))
    with _stream_opened(page):
        load(page, page.reload)
    expect(link).not_to_have_accessible_name(re.compile(r"\b[1-9]\d* unread\b"))

    live.send_message(w.alice, w.coach, "Can we move Thursday's call?")

    expect(link.locator(".badge")).to_be_visible()
    expect(link).to_have_accessible_name(re.compile(r"^Messages\s*1 unread$"))


def test_two_people_in_two_browsers_see_each_other_within_two_seconds(page: Page, live, second_context) -> None:
    """Alice watches the feed; Bob, in another Chromium context, posts, comments and reacts
    through the page. Each action shows on Alice's page within 2 s, without a reload."""
    w = live.world
    live.accept_rules(w.alice)
    live.accept_rules(w.bob)
    sign_in(page, live, w.alice)
    with _stream_opened(page):
        load(page, lambda: page.goto(live.circle_url))
    page.evaluate("window.stillTheSamePage = true")
    bob = second_context().new_page()
    sign_in(bob, live, w.bob)
    load(bob, lambda: bob.goto(live.circle_url))

    bob.get_by_label("Your post").fill("Anyone up for a walk at lunch?")
    load(bob, bob.get_by_role("button", name="Post", exact=True).click)
    newest = page.locator("#feed article.post").first
    expect(newest.locator(".body")).to_have_text("Anyone up for a walk at lunch?", timeout=2000)

    post_id = newest.get_attribute("data-post-id")
    load(bob, lambda: bob.goto(live.at(f"/posts/{post_id}")))
    bob.get_by_label("Add a comment").fill("I can do 12:30.")
    load(bob, bob.get_by_role("button", name="Comment", exact=True).click)
    expect(page.locator(f"#post-{post_id}")).to_contain_text("1 comment", timeout=2000)

    load(bob, bob.locator(f"#post-{post_id} button[data-reaction='clap']").click)
    expect(page.locator(f"#post-{post_id} button[data-reaction='clap']")).to_contain_text("1", timeout=2000)
    assert page.evaluate("window.stillTheSamePage") is True, "the page was reloaded"
