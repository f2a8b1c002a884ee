"""A person downloads all their data from their profile, then deletes their account."""

from __future__ import annotations

import json
import re
import zipfile

import pytest
from playwright.sync_api import Page, expect

from peerlift.privacy.export import KINDS
from tests.browser.conftest import load, sign_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_download_my_data_then_delete_my_account(page: Page, live) -> None:
    alice = live.world.alice
    live.accept_rules(alice)
    live.create_post(alice, "Twenty minutes round the park today.")
    sign_in(page, live, alice)

    load(page, live.at("/profile"))
    load(page, page.get_by_role("link", name="Download all your data").click)
    expect(page.get_by_role("heading", name="Download all your data")).to_be_visible()
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download my data (zip)").click()
    download = downloading.value
    assert re.fullmatch(r"peerlift-data-alicearcher\d*-\d{8}\.zip", download.suggested_filename)
    with zipfile.ZipFile(download.path()) as zf:
        assert {f"{k.key}.csv" for k in KINDS} <= set(zf.namelist())
        data = json.loads(zf.read("peerlift-data.json"))
    assert data["profile"][0]["email"] == alice.email
    assert [p["body"] for p in data["posts"]] == ["Twenty minutes round the park today."]

    load(page, live.at("/profile"))
    load(page, page.get_by_role("link", name="Delete your account").click)
    expect(page.get_by_role("heading", name="Delete your account")).to_be_visible()
    expect(page.locator("#study-rules")).to_contain_text("A test trial")
    # a wrong password: nothing happens, the page says why
    page.get_by_label("Your password").fill("not my password")
    page.get_by_label("I have read what happens to my data").check()
    load(page, page.get_by_role("button", name="Delete my account").click, status=401)
    expect(page.get_by_role("alert")).to_have_text("The password is not right.")

    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_label("I have read what happens to my data").check()
    load(page, page.get_by_role("button", name="Delete my account").click)
    expect(page).to_have_url(re.compile(r"/account-deleted$"))
    expect(page.get_by_role("heading", name="Your account has been deleted")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)

    # the account no longer signs in
    page.goto(live.at("/login"))
    page.get_by_label("Email address").fill(alice.email)
    page.get_by_label("Password").fill(PASSWORD)
    load(page, page.get_by_role("button", name="Sign in").click, status=401)
    expect(page.get_by_role("alert")).to_have_text("The email address or the password is not right.")
