"""Safety in the browser: the privacy warning, a crisis post held and escalated to a clinician,
the review queue after a flag, and gating."""

from __future__ import annotations


import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import load, sign_in

pytestmark = pytest.mark.browser


def test_privacy_warning_lets_the_author_edit_or_post_anyway(page: Page, live) -> None:
    w = live.world
    live.accept_rules(w.alice)
    sign_in(page, live, w.alice)
    page.goto(live.circle_url)
    text = "Anyone fancy a walk on Saturday? Text me on 07911 123456"
    page.get_by_label("Your post").fill(text)
    load(page, page.get_by_role("button", name="Post", exact=True).click, status=422)
    expect(page.get_by_role("alert")).to_contain_text("a phone number")
    expect(page.get_by_label("Your post")).to_have_value(text)
    page.get_by_label("Post it as it is").check()
    load(page, page.get_by_role("button", name="Post", exact=True).click)
    expect(page.locator("#feed article.post .body").first).to_contain_text("07911 123456")


def test_crisis_post_is_held_and_reaches_the_clinician(page: Page, live, second_context) -> None:
    w = live.world
    live.accept_rules(w.alice)
    sign_in(page, live, w.alice)
    page.goto(live.circle_url)
    page.get_by_label("Your post").fill("I can't do this any more. I've saved up my tablets and tonight I'm taking them all.")
    load(page, page.get_by_role("button", name="Post", exact=True).click)
    notice = page.locator(".safety-notice")
    expect(notice.get_by_role("heading", name="You are not alone")).to_be_visible()
    expect(notice).to_contain_text("Samaritans")
    expect(notice).to_contain_text("with a clinician before the circle sees it")
    load(page, page.get_by_role("link", name="Back to the circle").click)
    expect(page.locator("#feed .held-note").first).to_contain_text("Waiting for review")

    clinician = second_context().new_page()
    sign_in(clinician, live, w.clinician)
    load(clinician, clinician.get_by_role("link", name="Escalations").click)
    card = clinician.locator("#open-escalations article.escalation")
    expect(card).to_have_count(1)
    expect(card).to_contain_text("Alice Archer")
    expect(card).to_contain_text("crisis")
    load(clinician, card.get_by_role("link", name="Alice Archer").click)
    expect(clinician.locator("blockquote")).to_contain_text("saved up my tablets")
    load(clinician, clinician.get_by_role("button", name="Acknowledge").click)
    expect(clinician.locator("p.meta")).to_contain_text("acknowledged by Cleo Clinician")
    clinician.get_by_label("Outcome").select_option("contacted")
    clinician.get_by_label("Note").fill("Phoned Alice; she is with her sister tonight. Safety plan agreed.")
    load(clinician, clinician.get_by_role("button", name="Resolve").click)
    expect(clinician.locator("#open-escalations article")).to_have_count(0)
    expect(clinician.get_by_text("Recently resolved")).to_be_visible()


def test_flag_reaches_the_review_queue_and_removal_is_explained(page: Page, live, second_context) -> None:
    w = live.world
    post_id = live.create_post(w.alice, "Honestly just stop your metformin, cinnamon does the same job")
    live.accept_rules(w.bob)
    sign_in(page, live, w.bob)
    page.goto(live.circle_url)
    load(page, page.locator(f"#post-{post_id}").get_by_role("link", name="Flag").click)
    page.get_by_label("Harmful health advice").check()
    page.get_by_label("Anything the facilitators should know").fill("Stopping metformin is risky")
    load(page, page.get_by_role("button", name="Flag").click)
    expect(page.get_by_role("status")).to_contain_text("review queue")

    coach = second_context().new_page()
    sign_in(coach, live, w.coach)
    coach.goto(live.at(f"/circles/{w.circle.id}/review"))
    item = coach.locator("article.review-item")
    expect(item).to_contain_text("Harmful health advice: Stopping metformin is risky")
    item.get_by_label("Reason shown to the member").fill("Please don't advise stopping medicines; talk to your GP.")
    load(coach, item.get_by_role("button", name="Remove", exact=True).click)
    expect(coach.get_by_text("Nothing waiting.")).to_be_visible()

    page.goto(live.circle_url)
    expect(page.locator(f"#post-{post_id}")).to_have_count(0)
    author = second_context().new_page()
    live.accept_rules(w.alice)
    sign_in(author, live, w.alice)
    author.goto(live.circle_url)
    expect(author.locator(f"#post-{post_id} .held-note")).to_contain_text("talk to your GP")


def test_gated_member_is_told_kindly_and_posts_wait_for_approval(page: Page, live, second_context) -> None:
    w = live.world
    coach = second_context().new_page()
    sign_in(coach, live, w.coach)
    coach.goto(live.at(f"/circles/{w.circle.id}/members"))
    row = coach.locator("ul.members li", has_text="Alice Archer")
    load(coach, row.get_by_role("button", name="Review posts first").click)
    expect(coach.locator("ul.members li", has_text="Alice Archer")).to_contain_text("posts reviewed first")

    live.accept_rules(w.alice)
    sign_in(page, live, w.alice)
    page.goto(live.circle_url)
    expect(page.locator(".compose .held-note")).to_contain_text("Your coach reads posts")
    page.get_by_label("Your post").fill("Managed 20 minutes on the bike today")
    load(page, page.get_by_role("button", name="Post", exact=True).click)
    expect(page.get_by_role("heading", name="Your post is waiting for review")).to_be_visible()

    coach.goto(live.at(f"/circles/{w.circle.id}/review"))
    item = coach.locator("article.review-item", has_text="20 minutes on the bike")
    expect(item).to_contain_text("gated")
    load(coach, item.get_by_role("button", name="Approve").click)
    bob = second_context().new_page()
    live.accept_rules(w.bob)
    sign_in(bob, live, w.bob)
    bob.goto(live.circle_url)
    expect(bob.locator("#feed article.post", has_text="20 minutes on the bike")).to_have_count(1)
