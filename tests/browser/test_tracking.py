"""Self-monitoring and questionnaires as a person does them in a real browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from peerlift import db as dbmod
from tests.browser.conftest import load, sign_in

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True,
         "has_touch": True}


def test_participant_logs_todays_weight_and_sees_it_in_the_trend(live, page) -> None:
    w = live.world
    sign_in(page, live, w.alice)
    load(page, page.get_by_role("link", name="Tracking").click)
    expect(page.get_by_role("heading", name="My tracking")).to_be_visible()
    card = page.locator("#measure-weight")
    card.get_by_label("Weight (kg)").fill("82.4")
    load(page, card.get_by_role("button", name="Log").click)
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.locator("#measure-weight")).to_contain_text("Last: 82.4 kg")
    chart = page.locator("img[data-measure='weight']")
    expect(chart).to_be_visible()
    # the chart is a real image that loaded (CSP allows it) and shows the value
    assert chart.evaluate("img => img.complete && img.naturalWidth > 0")
    svg = page.request.get(live.at(f"/people/{w.alice.id}/tracking/weight.svg")).text()
    assert "82.4" in svg

    # an impossible value is refused, saying why, and nothing changes
    page.locator("#measure-mood").get_by_label("Mood (0-10)").fill("11")
    load(page, page.locator("#measure-mood").get_by_role("button", name="Log").click, status=422)
    expect(page.get_by_role("alert")).to_contain_text("Mood of 11 0-10 is too high")


def test_participant_answers_a_phq9_on_a_phone(live, second_context) -> None:
    from peerlift.policy import circle_access
    from peerlift.tracking.service import send_questionnaire

    w = live.world
    with dbmod.transaction() as s:
        [request] = send_questionnaire(s, circle_access(s, w.coach, w.circle.id), "phq9", w.alice.id)
    page = second_context(**PHONE).new_page()
    sign_in(page, live, w.alice)
    load(page, live.at("/notifications"))
    load(page, page.get_by_role("button", name="Maya Coach asks you to fill in the PHQ-9 questionnaire").click)
    assert page.url.endswith(f"/questionnaires/{request.id}")
    expect(page.get_by_role("heading", name="Patient Health Questionnaire (PHQ-9)")).to_be_visible()
    questions = page.locator("fieldset.question")
    expect(questions).to_have_count(9)
    for n, choice in enumerate(["Several days", "Not at all", "More than half the days", "Several days",
                                "Not at all", "Several days", "Not at all", "Not at all", "Not at all"]):
        radio = questions.nth(n).get_by_label(choice)
        radio.tap()
        expect(radio).to_be_checked()
    size = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert size[0] <= size[1], f"the questionnaire scrolls sideways: {size}"
    load(page, page.get_by_role("button", name="Send my answers").click)
    result = page.locator("#result")
    expect(result).to_contain_text("Your score: 5 of 27")
    expect(result.locator(".band")).to_have_text("Mild")
