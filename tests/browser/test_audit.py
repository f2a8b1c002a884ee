"""The audit trail in the browser: a facilitator looks at a member's tracking, an admin finds that
reading on the trail and checks the chain, and the member sees who was shown her data."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from peerlift import db as dbmod
from tests.browser.conftest import load, sign_in

pytestmark = pytest.mark.browser


def test_admin_finds_a_read_and_the_member_sees_who_looked(page: Page, live, second_context) -> None:
    from tests.research.analytics_factory import log

    w = live.world
    with dbmod.transaction() as s:
        log(s, w.alice, "weight", 82.0, 1, unit="kg")

    coach = second_context().new_page()
    sign_in(coach, live, w.coach)
    load(coach, live.at(f"/people/{w.alice.id}/tracking"))
    expect(coach.get_by_role("heading", level=1)).to_contain_text("Alice Archer")

    admin = second_context().new_page()
    sign_in(admin, live, w.admin)
    load(admin, admin.get_by_role("link", name="Audit trail").click)
    expect(admin.get_by_role("heading", name="Audit trail")).to_be_visible()
    admin.get_by_label("Whose data (handle, email or id)").fill(f"@{w.alice.handle}")
    admin.get_by_label("Action starts with").fill("read.")
    load(admin, admin.get_by_role("button", name="Search").click)
    # The page, and its weight chart (an image fetched on its own), newest first.
    rows = admin.locator("table.audit tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("chart of weight")
    expect(rows.nth(1)).to_contain_text("tracking page")
    for n in range(2):
        expect(rows.nth(n)).to_contain_text("Maya Coach")
        expect(rows.nth(n)).to_contain_text("read.tracking")
        expect(rows.nth(n)).to_contain_text("127.0.0.1")
    # An unknown person is refused, saying why, with the search kept.
    admin.get_by_label("Who (handle, email or id)").fill("@nobody-here")
    load(admin, admin.get_by_role("button", name="Search").click, status=422)
    expect(admin.get_by_role("alert")).to_contain_text("No account '@nobody-here'")
    expect(admin.get_by_label("Who (handle, email or id)")).to_have_value("@nobody-here")
    admin.get_by_label("Who (handle, email or id)").fill(f"@{w.coach.handle}")
    load(admin, admin.get_by_role("button", name="Search").click)
    expect(rows).to_have_count(2)
    load(admin, admin.get_by_role("button", name="Verify the chain").click)
    expect(admin.get_by_role("status")).to_contain_text("The chain is intact")
    expect(rows).to_have_count(2)  # the search is kept

    sign_in(page, live, w.alice)
    load(page, page.get_by_role("link", name="Alice Archer").click)
    load(page, page.get_by_role("link", name="Who has seen your health data").click)
    entries = page.locator(".access-log li")
    expect(entries).to_have_count(2)
    for n in range(2):
        expect(entries.nth(n)).to_contain_text("Maya Coach")
        expect(entries.nth(n)).to_contain_text("facilitator")
        expect(entries.nth(n)).to_contain_text("your tracking entries, goals and charts")
    expect(page.locator("main")).not_to_contain_text("127.0.0.1")
    # The trail itself is not hers to see.
    load(page, live.at("/admin/audit"), status=404)
