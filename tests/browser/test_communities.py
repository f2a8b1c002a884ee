"""An open community in the browser: a newcomer browses, joins (reading the guidelines), posts, and
another member sees the post under the newcomer's community name, never their real name."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from peerlift import db as dbmod
from tests.browser.conftest import load, sign_in

pytestmark = pytest.mark.browser


def test_newcomer_joins_a_community_and_posts_under_a_community_name(page: Page, live, second_context) -> None:
    from peerlift.community import service
    from tests.factories import create_user

    w = live.world
    with dbmod.transaction() as s:
        newcomer = create_user(s, "Nina Newcomer")
        community = service.create_community(s, w.coach, name="Quitting smoking",
                                             description="Stopping for good, together.",
                                             rules="Be kind. No medical advice.", allow_anonymous=True)
        service.join_community(s, w.bob, community, pseudonym="Brave Robin 33", accept_guidelines=True)
        community_id = community.id

    sign_in(page, live, newcomer)
    load(page, page.get_by_role("link", name="Communities").click)
    expect(page.get_by_role("heading", name="Communities", level=1)).to_be_visible()
    row = page.locator(f'[data-community-id="{community_id}"]')
    expect(row).to_contain_text("2 members")
    load(page, row.get_by_role("link", name="Join").click)

    expect(page.get_by_role("heading", name="Guidelines")).to_be_visible()
    expect(page.get_by_text("Be kind. No medical advice.")).to_be_visible()
    name = page.get_by_label("Your community name")
    expect(name).not_to_have_value("")
    name.fill("Calm Heron 42")
    page.get_by_label("I have read the guidelines and will follow them").check()
    load(page, page.get_by_role("button", name="Join Quitting smoking").click)

    expect(page).to_have_url(re.compile(rf"/circles/{community_id}$"))
    expect(page.get_by_text("You post as Calm Heron 42.")).to_be_visible()
    page.get_by_label("Your post").fill("Day one without a cigarette. Any tips for the evenings?")
    load(page, page.get_by_role("button", name="Post").click)
    mine = page.locator(".post").filter(has_text="Day one without a cigarette")
    expect(mine.locator(".person")).to_have_text("Calm Heron 42")

    other = second_context().new_page()
    sign_in(other, live, w.bob)
    load(other, lambda: other.goto(live.at(f"/circles/{community_id}")))
    post = other.locator(".post").filter(has_text="Day one without a cigarette")
    expect(post.locator(".person")).to_have_text("Calm Heron 42")
    expect(other.get_by_text("Nina Newcomer")).to_have_count(0)
