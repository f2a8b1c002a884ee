"""Direct messages between a participant and her coach, each in a browser of their own."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import load, sign_in

pytestmark = pytest.mark.browser

# What a screen reader says of the Messages link when something is unread ("Messages 1 unread").
SOME_UNREAD = re.compile(r"\b[1-9]\d* unread\b")


def messages_link(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile(r"^Messages\b"))


def start_conversation(page: Page, live, person, text: str) -> None:
    load(page, messages_link(page).click)
    expect(page).to_have_url(live.at("/messages"))
    page.get_by_label("With").select_option(label=person.display_name)
    load(page, page.get_by_role("button", name="Open").click)
    expect(page).to_have_url(re.compile(r"/messages/\d+$"))
    expect(page.get_by_role("heading", name=person.display_name, level=1)).to_be_visible()
    page.get_by_label("Message").fill(text)
    load(page, page.get_by_role("button", name="Send").click)
    expect(page).to_have_url(re.compile(r"/messages/\d+#message-\d+$"))


def test_direct_message_to_coach_shows_unread_badge_and_is_read(page: Page, live, second_context) -> None:
    w = live.world
    text = "Hi Maya, my knee hurts after the long walks. Should I take a break this week?"

    sign_in(page, live, w.alice)
    load(page, messages_link(page).click)
    expect(page.get_by_role("heading", name="Messages", level=1)).to_be_visible()
    expect(page.get_by_text("No conversations yet.")).to_be_visible()

    page.get_by_label("With").select_option(label=w.coach.display_name)
    load(page, page.get_by_role("button", name="Open").click)
    expect(page).to_have_url(re.compile(r"/messages/\d+$"))
    expect(page.get_by_role("heading", name=w.coach.display_name, level=1)).to_be_visible()
    expect(page.get_by_text("No messages yet.")).to_be_visible()

    page.get_by_label("Message").fill(text)
    load(page, page.get_by_role("button", name="Send").click)

    expect(page).to_have_url(re.compile(r"/messages/\d+#message-\d+$"))
    mine = page.locator("ol.messages li.message.mine")
    expect(mine).to_have_count(1)
    expect(mine.locator(".body")).to_have_text(text)
    expect(mine.locator(".meta")).to_contain_text("You")
    expect(page.get_by_label("Message")).to_have_value("")

    # The coach signs in on her own device and sees that something is waiting.
    coach_page = second_context().new_page()
    sign_in(coach_page, live, w.coach)
    link = messages_link(coach_page)
    expect(link.locator(".badge")).to_be_visible()
    expect(link.locator(".badge")).to_have_text(re.compile(r"^1\b"))
    expect(link).to_have_accessible_name(re.compile(r"^Messages\s*1 unread$"))

    load(coach_page, link.click)
    conversation = coach_page.locator("ul.conversations li").filter(has_text=w.alice.display_name)
    expect(conversation.locator(".badge")).to_have_text("1 new")
    expect(conversation.locator(".meta")).to_contain_text("my knee hurts")

    load(coach_page, conversation.get_by_role("link", name=w.alice.display_name).click)
    expect(coach_page.get_by_role("heading", name=w.alice.display_name, level=1)).to_be_visible()
    theirs = coach_page.locator("ol.messages li.message:not(.mine)")
    expect(theirs).to_have_count(1)
    expect(theirs.locator(".body")).to_have_text(text)
    expect(theirs.locator(".meta")).to_contain_text(w.alice.display_name)

    # Read: back on the list, nothing is unread any more.
    load(coach_page, coach_page.get_by_role("link", name="← Messages").click)
    expect(link).not_to_have_accessible_name(SOME_UNREAD)
    expect(coach_page.locator("ul.conversations li").filter(has_text=w.alice.display_name)
           .locator(".badge:visible")).to_have_count(0)

    # Alice has no unread message of her own: she wrote it.
    load(page, page.reload)
    expect(messages_link(page)).not_to_have_accessible_name(SOME_UNREAD)


def test_opening_a_conversation_clears_the_unread_badge_on_that_page(page: Page, live, second_context) -> None:
    """The coach opens Alice's message and reads it; the Messages link of that very page must not
    still announce "1 unread" (there is nothing else unread)."""
    w = live.world
    sign_in(page, live, w.alice)
    start_conversation(page, live, w.coach, "Thanks for the session today!")

    coach_page = second_context().new_page()
    sign_in(coach_page, live, w.coach)
    link = messages_link(coach_page)
    expect(link).to_have_accessible_name(re.compile(r"^Messages\s*1 unread$"))
    load(coach_page, link.click)
    load(coach_page, coach_page.get_by_role("link", name=w.alice.display_name).click)

    expect(coach_page.locator("ol.messages li.message .body")).to_have_text("Thanks for the session today!")
    expect(link).not_to_have_accessible_name(SOME_UNREAD)


def test_nothing_unread_shows_no_badges_in_the_navigation(page: Page, live) -> None:
    """With nothing unread, the navigation shows plain links: no "0" pills, no "0 unread" read out."""
    sign_in(page, live, live.world.alice)
    nav = page.get_by_role("navigation", name="Main")
    expect(messages_link(page)).to_have_accessible_name("Messages")
    expect(nav.locator(".badge:visible")).to_have_count(0)
