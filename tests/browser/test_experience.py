"""Shared experience in the browser: a member writes an experience report and sees the counts of its
treatment update; another member marks an answer helpful; a facilitator adds that answer to the
community's guide and a member reads the guide."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from peerlift import db as dbmod
from tests.browser.conftest import load, sign_in

pytestmark = pytest.mark.browser


def _community(live):
    from peerlift.community import service
    from peerlift.experience import service as experience
    from peerlift.identity.models import User
    from peerlift.policy import circle_access

    with dbmod.transaction() as s:
        w = {name: s.get(User, getattr(live.world, name).id) for name in ("coach", "alice", "bob")}
        community = service.create_community(s, w["coach"], name="Type 2 diabetes", description="Living with it.",
                                             rules="Be kind.", allow_anonymous=True)
        service.join_community(s, w["alice"], community, pseudonym="Calm Heron 42", accept_guidelines=True)
        service.join_community(s, w["bob"], community, pseudonym="Brave Robin 33", accept_guidelines=True)
        experience.create_report(s, circle_access(s, w["bob"], community.id), treatment="A10BA02",
                                 duration_value=2, duration_unit="months", side_effects=["nausea"],
                                 would_recommend="no")
        return community.id


def test_a_member_writes_a_report_and_sees_the_counts_update(page: Page, live) -> None:
    community_id = _community(live)
    sign_in(page, live, live.world.alice)
    load(page, lambda: page.goto(live.at(f"/circles/{community_id}")))
    load(page, page.get_by_role("link", name="Experiences").click)
    summary = page.locator('[data-treatment="A10BA02"]')
    expect(summary.locator(".summary")).to_have_text("1 report; most-mentioned side effect: nausea (1)")

    load(page, page.get_by_role("link", name="Share your experience").click)
    page.get_by_label("Treatment or strategy").fill("A10XX99")  # not on the list: refused, nothing lost
    page.get_by_label("Number").fill("4")
    page.get_by_label("Unit").select_option("months")
    page.get_by_label("Side effects").fill("Nausea, tiredness")
    page.get_by_label("yes").check()
    load(page, page.get_by_role("button", name="Share").click, status=422)
    expect(page.get_by_role("alert")).to_contain_text("A10XX99 is not an ATC medicine code")
    expect(page.get_by_label("Side effects")).to_have_value("Nausea, tiredness")

    page.get_by_label("Treatment or strategy").fill("metformin")
    page.get_by_label("What helped").fill("Taking it with dinner.")
    load(page, page.get_by_role("button", name="Share").click)
    expect(page).to_have_url(re.compile(r"/experiences/treatment\?key=A10BA02$"))
    expect(page.locator(".aggregate .summary")).to_have_text("2 reports; most-mentioned side effect: nausea (2)")
    expect(page.locator(".recommend-yes")).to_have_text("1")
    expect(page.locator(".recommend-no")).to_have_text("1")
    expect(page.get_by_text("Median duration: 3 months.")).to_be_visible()
    mine = page.locator(".experience-report").filter(has_text="Taking it with dinner.")
    expect(mine.locator(".person")).to_have_text("Calm Heron 42")
    expect(mine.get_by_role("button", name="Helpful")).to_have_count(0)  # not for one's own report


def test_helpful_answer_goes_into_the_guide_and_members_read_it(page: Page, live, second_context) -> None:
    from peerlift.community import service
    from peerlift.policy import circle_access

    community_id = _community(live)
    w = live.world
    with dbmod.transaction() as s:
        question = service.create_post(s, circle_access(s, w.alice, community_id), "How do you cope with nausea?")
        service.create_comment(s, circle_access(s, w.bob, community_id), question, "Small meals and ginger tea.")
        post_id = question.id

    # alice finds bob's answer helpful
    sign_in(page, live, w.alice)
    load(page, lambda: page.goto(live.at(f"/posts/{post_id}")))
    answer = page.locator(".comment").filter(has_text="Small meals and ginger tea.")
    expect(answer.locator(".helpful-count")).to_have_text("0 found this helpful")
    load(page, answer.get_by_role("button", name="Helpful").click)
    answer = page.locator(".comment").filter(has_text="Small meals and ginger tea.")
    expect(answer.locator(".helpful-count")).to_have_text("1 found this helpful")
    expect(answer.get_by_role("button", name="Helpful ✓")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("summary", has_text="Add to guide")).to_have_count(0)  # members do not curate

    # the facilitator puts it in the guide
    coach = second_context().new_page()
    sign_in(coach, live, w.coach)
    load(coach, lambda: coach.goto(live.at(f"/posts/{post_id}")))
    theirs = coach.locator(".comment").filter(has_text="Small meals and ginger tea.")
    theirs.locator("summary", has_text="Add to guide").click()
    theirs.get_by_label("Heading in the guide").fill("Coping with nausea")
    load(coach, theirs.get_by_role("button", name="Add to guide").click)
    expect(coach.locator(".comment").filter(has_text="Small meals").get_by_text("In the guide")).to_be_visible()

    # alice reads the guide
    load(page, lambda: page.goto(live.at(f"/circles/{community_id}")))
    load(page, page.get_by_role("link", name="Guide", exact=True).click)
    entry = page.locator(".guide-entry")
    expect(entry).to_have_count(1)
    expect(entry.get_by_role("heading", name="Coping with nausea")).to_be_visible()
    expect(entry).to_contain_text("Answer by Brave Robin 33 · 1 found this helpful")
    expect(entry).to_contain_text("Small meals and ginger tea.")
    expect(page.get_by_role("button", name="Remove from guide")).to_have_count(0)
