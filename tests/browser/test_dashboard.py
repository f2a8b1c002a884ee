"""The researcher dashboard in the browser: the charts draw, and staff time can be adjusted."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from peerlift import db as dbmod
from peerlift.research.models import StudyMember, StudyRole
from tests.browser.conftest import load, sign_in
from tests.research.analytics_factory import at, comment, design, enrol, post

pytestmark = pytest.mark.browser


def test_researcher_sees_charts_and_adjusts_staff_time(page: Page, live) -> None:
    w = live.world
    with dbmod.transaction() as s:
        s.add(StudyMember(study_id=w.study.id, user_id=w.researcher.id, role=StudyRole.researcher))
        design(s, w.study, hourly_rates={"facilitator": 40})
        enrol(s, w.study, w.alice, w.arm_a, w.circle)
        enrol(s, w.study, w.carol, w.arm_b, w.other_circle)
        p = post(s, w.alice, w.circle, "Hello all", at(1))
        comment(s, w.coach, w.circle, p, "Welcome", at(1, 0.5))

    sign_in(page, live, w.researcher)
    load(page, live.at("/studies/trial/dashboard"))
    expect(page.get_by_role("heading", name="A test trial", level=1)).to_be_visible()
    charts = page.locator("figure.chart img")
    expect(charts).to_have_count(4)
    for i in range(4):
        chart = charts.nth(i)
        chart.scroll_into_view_if_needed()
        # Each chart computes the study's metrics (DuckDB) on its own request: on a busy machine that
        # takes longer than Playwright's default wait.
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=chart.element_handle(),
                               timeout=60_000)
    expect(page.get_by_role("heading", name="Cost per participant")).to_be_visible()

    page.get_by_label("Person").select_option(label="Maya Coach (facilitator)")
    page.get_by_label("Minutes").fill("90")
    page.get_by_label("Reason").fill("Phone calls to members not logged in peerlift")
    load(page, page.get_by_role("button", name="Add").click)
    expect(page.get_by_role("status")).to_have_text("Adjustment saved.")
    with dbmod.transaction(write=False) as s:
        from sqlalchemy import select

        from peerlift.research.analytics_models import CostAdjustment

        saved = s.scalar(select(CostAdjustment))
        assert saved.minutes == 90 and saved.user_id == w.coach.id and "Phone calls" in saved.reason
