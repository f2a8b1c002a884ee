"""A circle in the browser: rules, feed, posting, comments, reactions and polls."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import load, sign_in

pytestmark = pytest.mark.browser


def _open_circle(page: Page, live) -> None:
    load(page, page.get_by_role("link", name="Morning Movers").click)
    expect(page).to_have_url(re.compile(rf"/circles/{live.world.circle.id}(#.*)?$"))


def test_read_circle_rules_first_then_feed_with_earlier_post(page: Page, live) -> None:
    w = live.world
    post_id = live.create_post(w.bob, "Walked 3 km before breakfast. Who is in for tomorrow?")

    sign_in(page, live, w.alice)
    _open_circle(page, live)

    expect(page.get_by_role("heading", name="Welcome to Morning Movers")).to_be_visible()
    expect(page.get_by_text("Be kind.")).to_be_visible()
    expect(page.get_by_text("Walked 3 km before breakfast")).to_have_count(0)

    load(page, page.get_by_role("button", name="I have read the rules").click)

    expect(page).to_have_url(live.circle_url)
    expect(page.get_by_role("heading", name="Morning Movers", level=1)).to_be_visible()
    post = page.locator(f"#post-{post_id}")
    expect(post).to_be_visible()
    expect(post.locator(".person")).to_have_text("Bob Baker")
    expect(post.locator(".body")).to_have_text("Walked 3 km before breakfast. Who is in for tomorrow?")
    expect(post.get_by_text("New", exact=True)).to_be_visible()

    # The rules are asked for once: coming back shows the feed straight away.
    load(page, page.get_by_role("link", name="Circles").click)
    _open_circle(page, live)
    expect(page.get_by_role("button", name="I have read the rules")).to_have_count(0)
    expect(page.locator(f"#post-{post_id}")).to_be_visible()


def test_post_with_markdown_and_mention_shows_on_top(page: Page, live) -> None:
    w = live.world
    older = live.create_post(w.bob, "Good morning, movers!")
    live.accept_rules(w.alice)
    sign_in(page, live, w.alice)
    _open_circle(page, live)
    posts = page.locator("#feed article.post")
    expect(posts).to_have_count(1)

    page.get_by_label("Your post").fill(f"Did **ten minutes** of stretching, thanks to @{w.bob.handle} for the tip!")
    load(page, page.get_by_role("button", name="Post", exact=True).click)

    expect(page).to_have_url(re.compile(rf"/circles/{w.circle.id}#post-\d+$"))
    expect(posts).to_have_count(2)
    top = posts.first
    expect(top).not_to_have_id(f"post-{older}")
    expect(top.locator(".person")).to_have_text("Alice Archer")
    expect(top.locator(".body strong")).to_have_text("ten minutes")
    expect(top.locator(".body")).not_to_contain_text("**")
    mention = top.locator(".body span.mention")
    expect(mention).to_have_text(f"@{w.bob.handle}")
    expect(mention).to_have_attribute("data-user-id", str(w.bob.id))
    expect(page.get_by_label("Your post")).to_have_value("")


def test_empty_post_is_refused_and_nothing_is_added(page: Page, live) -> None:
    w = live.world
    live.create_post(w.bob, "Good morning, movers!")
    live.accept_rules(w.alice)
    sign_in(page, live, w.alice)
    _open_circle(page, live)
    posts = page.locator("#feed article.post")
    expect(posts).to_have_count(1)

    # Whitespace passes the browser's `required` check; the server must refuse it.
    page.get_by_label("Your post").fill("   ")
    load(page, page.get_by_role("button", name="Post", exact=True).click, status=422)
    expect(page.get_by_role("alert")).to_have_text("The post is empty. Write something first.")
    expect(page.get_by_label("Your post")).to_have_attribute("aria-describedby", "compose-error")
    expect(posts).to_have_count(1)

    # And with the `required` attribute taken away, an entirely empty form.
    load(page, live.circle_url)
    page.get_by_label("Your post").evaluate("el => el.removeAttribute('required')")
    load(page, page.get_by_role("button", name="Post", exact=True).click, status=422)
    expect(page.get_by_role("alert")).to_have_text("The post is empty. Write something first.")
    expect(posts).to_have_count(1)

    load(page, live.circle_url)
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(posts).to_have_count(1)


def test_comment_and_reply_nest_under_the_comment(page: Page, live) -> None:
    w = live.world
    post_id = live.create_post(w.bob, "Any tips for sore calves after the first week?")
    live.accept_rules(w.alice)
    sign_in(page, live, w.alice)
    _open_circle(page, live)

    load(page, page.locator(f"#post-{post_id}").get_by_role("link", name="0 comments").click)
    expect(page).to_have_url(live.at(f"/posts/{post_id}"))
    expect(page.get_by_role("heading", name="0 comments")).to_be_visible()

    page.get_by_label("Add a comment").fill("Gentle stretching after each walk helped me.")
    load(page, page.get_by_role("button", name="Comment", exact=True).click)

    expect(page).to_have_url(re.compile(rf"/posts/{post_id}#comment-\d+$"))
    expect(page.get_by_role("heading", name="1 comment", exact=True)).to_be_visible()
    comment = page.locator("article.comment").filter(has_text="Gentle stretching after each walk")
    expect(comment).to_have_count(1)
    expect(comment.locator("header .person")).to_have_text("Alice Archer")

    comment.locator("summary", has_text="Reply").click()
    comment.get_by_label("Reply to Alice Archer").fill("Also: drink water, and rest on Sundays.")
    load(page, comment.get_by_role("button", name="Reply", exact=True).click)

    expect(page.get_by_role("heading", name="2 comments")).to_be_visible()
    comment = page.locator("article.comment").filter(has_text="Gentle stretching after each walk").first
    reply = comment.locator(".reply article.comment")
    expect(reply).to_have_count(1)
    expect(reply.locator(".body")).to_have_text("Also: drink water, and rest on Sundays.")
    # The reply sits under its comment, not as a second top-level comment.
    top_level = page.locator("section.comments > article.comment")
    expect(top_level).to_have_count(1)
    expect(top_level.first.locator(":scope > .body")).to_have_text("Gentle stretching after each walk helped me.")
    expect(reply.locator("details.reply-form")).to_have_count(0)

    # Back in the feed the post shows its two comments.
    load(page, page.get_by_role("link", name="← Morning Movers").click)
    expect(page.locator(f"#post-{post_id}").get_by_role("link", name="2 comments")).to_be_visible()


def test_heart_reaction_toggles_on_and_off(page: Page, live) -> None:
    w = live.world
    post_id = live.create_post(w.bob, "Five days in a row!")
    live.accept_rules(w.alice)
    sign_in(page, live, w.alice)
    _open_circle(page, live)

    heart = page.locator(f"#post-{post_id} button[data-reaction='heart']")
    expect(heart).to_have_attribute("aria-pressed", "false")
    expect(heart.locator(".count")).to_have_count(0)

    load(page, heart.click)
    expect(page).to_have_url(re.compile(rf"/circles/{w.circle.id}(#post-{post_id})?$"))
    expect(heart).to_have_attribute("aria-pressed", "true")
    expect(heart.locator(".count")).to_have_text("1")
    expect(heart).to_have_accessible_name(re.compile(r"^heart, 1 \(yours, press to remove\)$"))
    expect(heart).to_have_class(re.compile(r"\bmine\b"))
    # Only the heart is pressed.
    expect(page.locator(f"#post-{post_id} button[data-reaction][aria-pressed='true']")).to_have_count(1)

    load(page, heart.click)
    expect(heart).to_have_attribute("aria-pressed", "false")
    expect(heart.locator(".count")).to_have_count(0)
    expect(heart).to_have_accessible_name("heart")
    expect(page.locator(f"#post-{post_id} button[data-reaction][aria-pressed='true']")).to_have_count(0)


def test_poll_results_hidden_until_vote_then_shown_with_my_choice(page: Page, live) -> None:
    w = live.world
    post_id = live.create_post(w.coach, "Let us pick a day.", poll_question="Best day for a group walk?",
                               poll_options=["Saturday", "Sunday"])
    live.accept_rules(w.alice)
    sign_in(page, live, w.alice)
    _open_circle(page, live)

    poll = page.locator(f"#post-{post_id}").get_by_role("region", name="Poll: Best day for a group walk?")
    expect(poll.get_by_role("heading", name="Best day for a group walk?")).to_be_visible()
    expect(poll.get_by_text("Results show after you vote.")).to_be_visible()
    expect(poll.locator(".poll-results")).to_have_count(0)
    expect(poll).not_to_contain_text(re.compile(r"\d+ votes?|voted"))

    poll.get_by_label("Sunday").check()
    load(page, poll.get_by_role("button", name="Vote").click)

    expect(page).to_have_url(re.compile(rf"/circles/{w.circle.id}(#(post|poll)-\d+)?$"))
    results = poll.locator(".poll-results li")
    expect(results).to_have_count(2)
    sunday = results.filter(has_text="Sunday")
    saturday = results.filter(has_text="Saturday")
    expect(sunday.locator(".votes")).to_have_text("1 vote")
    expect(saturday.locator(".votes")).to_have_text("0 votes")
    expect(sunday.get_by_label("your choice")).to_be_visible()
    expect(saturday.get_by_label("your choice")).to_have_count(0)
    expect(poll.get_by_text("1 person voted")).to_be_visible()
    expect(poll.get_by_text("Results show after you vote.")).to_have_count(0)
    expect(poll.get_by_label("Sunday")).to_be_checked()
    expect(poll.get_by_role("button", name="Change vote")).to_be_visible()


def test_circle_list_shows_new_posts_until_read(page: Page, live) -> None:
    """Bob posted while Alice was away: her circle list says so, in words a screen reader reads
    right ("1 new post", not "1 new posts"), and stops saying so once she has read the feed."""
    w = live.world
    live.create_post(w.bob, "Who is up for a walk on Saturday?")
    live.accept_rules(w.alice)
    sign_in(page, live, w.alice)

    circle = page.locator(f"li[data-circle-id='{w.circle.id}']")
    badge = circle.locator(".badge")
    expect(badge).to_have_text("1 new")
    expect(badge).to_have_attribute("data-unread", "1")

    _open_circle(page, live)
    expect(page.locator("#unread-count")).to_have_text("1 new")
    load(page, page.get_by_role("link", name="Circles").click)
    expect(badge).to_have_count(0)

    # The second post of Bob's, seen from the list again: one new post, said in the singular.
    live.create_post(w.bob, "Forecast says sunny!")
    load(page, page.reload)
    expect(badge).to_have_text("1 new")
    expect(badge).to_have_accessible_name("1 new post")


def test_reacting_to_a_post_down_the_feed_keeps_that_post_in_view(live, second_context) -> None:
    """On a phone, Alice scrolls down to an older post and taps the heart. The page that comes back
    must show that post again, not the top of the feed (the form's way back has no #post-N)."""
    w = live.world
    older = live.create_post(w.bob, "My first week: 12 km in total.")
    for day in range(6):
        live.create_post(w.pat, f"Day {day + 1} check-in.\n\nHow did your walk go?\n\nShare one small win.")
    live.accept_rules(w.alice)
    page = second_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                          device_scale_factor=3).new_page()
    sign_in(page, live, w.alice)
    _open_circle(page, live)

    post = page.locator(f"#post-{older}")
    post.scroll_into_view_if_needed()
    expect(post).to_be_in_viewport()
    heart = post.locator("button[data-reaction='heart']")
    load(page, heart.click)

    expect(heart).to_have_attribute("aria-pressed", "true")
    expect(post).to_be_in_viewport()
