"""Verified professionals in the browser: a nurse applies and an admin verifies her on the admin page; a
newcomer joins a community and asks a question for professionals; the nurse finds it awaiting and answers
as a professional; the newcomer sees the marked answer with the disclaimer, and accepts it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from peerlift import db as dbmod
from tests.browser.conftest import load, sign_in

pytestmark = pytest.mark.browser

DISCLAIMER = "General information, not medical advice for you."


def test_a_newcomer_asks_and_a_verified_nurse_answers(page: Page, live, second_context) -> None:
    from peerlift.community import service
    from tests.factories import create_user

    w = live.world
    with dbmod.transaction() as s:
        newcomer = create_user(s, "Nina Newcomer")
        nurse = create_user(s, "Noor Nurse")
        community = service.create_community(s, w.coach, name="Living with diabetes", rules="Be kind.")
        service.join_community(s, nurse, community, pseudonym="Night Shift Noor", accept_guidelines=True)
        community_id = community.id

    # the nurse applies from her profile
    pro = second_context().new_page()
    sign_in(pro, live, nurse)
    load(pro, lambda: pro.goto(live.at("/profile")))
    load(pro, pro.get_by_role("link", name="Apply to be verified").click)
    pro.get_by_label("Profession", exact=True).select_option("nurse")
    pro.get_by_label("Registration number").fill("12A3456E")
    pro.get_by_label("Register and country").fill("Nursing and Midwifery Council, UK")
    load(pro, pro.get_by_role("button", name="Apply").click)
    expect(pro.locator("#professional-current")).to_contain_text("waiting for an admin")

    # an admin checks the register and verifies her
    admin = second_context().new_page()
    sign_in(admin, live, w.admin)
    load(admin, lambda: admin.goto(live.at("/profile")))
    load(admin, admin.get_by_role("link", name="Verify professionals").click)
    application = admin.locator(".application").filter(has_text="Noor Nurse")
    expect(application).to_contain_text("12A3456E")
    load(admin, application.get_by_role("button", name="Verify").click)
    expect(admin.get_by_role("status")).to_contain_text("verified")
    expect(admin.locator(".application").filter(has_text="Noor Nurse")).to_have_attribute("data-status", "verified")

    # a newcomer joins the community and asks a question for professionals
    sign_in(page, live, newcomer)
    load(page, lambda: page.goto(live.at(f"/communities/{community_id}")))
    page.get_by_label("Your community name").fill("Calm Heron 42")
    page.get_by_label("I have read the guidelines and will follow them").check()
    load(page, page.get_by_role("button", name="Join Living with diabetes").click)
    page.get_by_label("Your post").fill("Newly diagnosed: what HbA1c should I aim for?")
    page.get_by_label("Ask verified professionals").check()
    load(page, page.get_by_role("button", name="Post").click)
    asked = page.locator(".post").filter(has_text="what HbA1c should I aim for")
    expect(asked.locator(".question-mark")).to_have_text("Question for professionals")

    # the nurse finds it awaiting a professional, and answers as one
    load(pro, lambda: pro.goto(live.at(f"/circles/{community_id}")))
    load(pro, pro.get_by_role("link", name="Questions awaiting a professional").click)
    waiting = pro.locator("#awaiting .post").filter(has_text="what HbA1c should I aim for")
    expect(waiting).to_have_count(1)
    load(pro, waiting.get_by_role("link", name="0 comments").click)
    pro.get_by_label("Answer the question").fill("Often below 48 mmol/mol, but agree your own target with your team.")
    pro.get_by_label("Answer as a verified nurse").check()
    load(pro, pro.get_by_role("button", name="Comment").click)
    load(pro, lambda: pro.goto(live.at(f"/communities/{community_id}/awaiting")))
    expect(pro.get_by_text("No question is waiting for a professional.")).to_be_visible()

    # the asker sees the marked answer with the disclaimer, and accepts it
    load(page, asked.get_by_role("link", name="1 comment").click)
    answer = page.locator(".comment").filter(has_text="Often below 48 mmol/mol")
    expect(answer.locator(".answer-mark")).to_have_text("Answer from a verified nurse")
    expect(answer.locator(".badge.professional")).to_have_text("Verified nurse")
    expect(answer.locator(".person")).to_contain_text("Night Shift Noor")
    expect(answer.locator(".disclaimer")).to_contain_text(DISCLAIMER)
    expect(page.get_by_text("Noor Nurse")).to_have_count(0)
    load(page, answer.get_by_role("button", name="Accept this answer").click)
    expect(page).to_have_url(re.compile(r"/posts/\d+#comment-\d+$"))
    accepted = page.locator(".comment.accepted")
    expect(accepted.locator(".accepted-mark")).to_have_text("Accepted answer")
    expect(accepted).to_contain_text("Often below 48 mmol/mol")
    expect(page.locator(".post .answered")).to_have_text("Answered")
