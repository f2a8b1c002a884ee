"""Joining a study in a real browser: invitation link, screening, e-consent, randomisation into a
circle of the allocated arm; and leaving it again from the profile page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from peerlift import db as dbmod
from peerlift.community.models import Membership, Space
from peerlift.identity.models import User
from peerlift.research.models import Allocation, Enrolment, EnrolmentStatus
from tests.browser.conftest import load
from tests.research.helpers import make_study

pytestmark = pytest.mark.browser


def _study(live):
    with dbmod.transaction() as s:
        return make_study(s, live.world, slug="browser")


def _join(page: Page, live, setup) -> int:
    load(page, live.at(f"/study/{setup.token}"))
    expect(page.get_by_role("heading", name="Walk together", level=1)).to_be_visible()
    page.get_by_label("Your full name").fill("Tess Tester")
    page.get_by_label("Email address").fill("tess@example.test")
    page.get_by_label("Password (at least 10 characters)").fill("a long password")
    load(page, page.get_by_role("button", name="Create my account and begin").click)
    expect(page).to_have_url(re.compile(r"/enrolments/\d+$"))
    enrolment_id = int(page.url.rsplit("/", 1)[1])

    expect(page.get_by_role("heading", name="A few questions first")).to_be_visible()
    page.locator('input[name="q_adult"][value="yes"]').check()
    page.get_by_role("textbox", name="What is your BMI?").fill("32")
    page.get_by_role("radio", name="female").check()
    load(page, page.get_by_role("button", name="Continue").click)

    expect(page.get_by_role("heading", name="Consent to take part")).to_be_visible()
    page.get_by_label("I have read and agree: What the study is for").check()
    page.get_by_label("I have read and agree: Your data").check()
    page.get_by_label("Type your full name to sign").fill("Tess Tester")
    load(page, page.get_by_role("button", name="I consent").click, status=422)  # one section not ticked
    expect(page.get_by_role("alert")).to_contain_text("not yet confirmed: Leaving")
    page.get_by_label("I have read and agree: Leaving").check()
    page.get_by_label("Type your full name to sign").fill("tess  tester")
    load(page, page.get_by_role("button", name="I consent").click)
    return enrolment_id


def test_invitation_to_a_circle_of_the_allocated_arm(page: Page, live) -> None:
    setup = _study(live)
    enrolment_id = _join(page, live, setup)

    with dbmod.transaction(write=False) as s:
        enrolment = s.get(Enrolment, enrolment_id)
        allocation = s.scalar(select(Allocation).where(Allocation.enrolment_id == enrolment_id))
        circle = s.get(Space, enrolment.space_id)
        assert enrolment.status == EnrolmentStatus.randomised
        assert allocation.arm_id == enrolment.arm_id == circle.arm_id
        assert circle.id in {c.id for c in setup.circles[allocation.arm_id]}
    expect(page).to_have_url(live.at(f"/circles/{circle.id}"))
    expect(page.get_by_role("heading", name=circle.name, level=1)).to_be_visible()


def test_withdrawal_from_the_profile_page(page: Page, live) -> None:
    setup = _study(live)
    enrolment_id = _join(page, live, setup)
    with dbmod.transaction(write=False) as s:
        tess = s.scalar(select(User).where(User.email == "tess@example.test"))
        circle_id = s.get(Enrolment, enrolment_id).space_id

    load(page, page.get_by_role("link", name="Tess Tester").click)
    studies = page.locator("#my-studies")
    expect(studies).to_contain_text("Walk together")
    load(page, studies.get_by_role("link", name="Leave this study").click)
    expect(page.locator("#withdrawal-rule")).to_contain_text("stays in the study's data")
    page.get_by_label("Reason (optional)").fill("Too much on at work.")
    page.get_by_label("I have read what happens to my data").check()
    load(page, page.get_by_role("button", name="Leave the study").click)
    expect(page.get_by_role("status")).to_have_text("You have left the study.")
    expect(page.locator("#my-studies")).to_contain_text("withdrawn")
    expect(page.locator("#my-studies").get_by_role("link", name="Leave this study")).to_have_count(0)

    with dbmod.transaction(write=False) as s:
        enrolment = s.get(Enrolment, enrolment_id)
        assert enrolment.status == EnrolmentStatus.withdrawn
        assert enrolment.withdrawal_reason == "Too much on at work." and enrolment.withdrawal_data == "keep"
        assert s.scalar(select(Membership).where(Membership.user_id == tess.id)) is None
    load(page, live.at(f"/circles/{circle_id}"), status=404)
