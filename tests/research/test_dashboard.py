"""The researcher dashboard, its charts, the staff-time adjustment form and the JSON routes:
only the study's researchers and admins; everyone else gets a 404."""

from __future__ import annotations

import pytest

from peerlift import db as dbmod
from peerlift.research.analytics_models import CostAdjustment
from peerlift.research.models import StudyMember, StudyRole
from tests.conftest import assert_error, count_rows, form_token
from tests.research.analytics_factory import at, comment, design, enrol, post


@pytest.fixture
def team(world):
    w = world
    with dbmod.transaction() as s:
        s.add(StudyMember(study_id=w.study.id, user_id=w.researcher.id, role=StudyRole.researcher))
        design(s, w.study, hourly_rates={"facilitator": 40})
        enrol(s, w.study, w.alice, w.arm_a, w.circle)
        enrol(s, w.study, w.carol, w.arm_b, w.other_circle)
        p = post(s, w.alice, w.circle, "Hello all", at(1))
        comment(s, w.coach, w.circle, p, "Welcome", at(1, 0.5))
    return w


def test_researcher_of_the_study_sees_the_dashboard_with_charts(team, client_for):
    c = client_for(team.researcher)
    page = c.get("/studies/trial/dashboard")
    assert page.status_code == 200
    html = page.text
    for text in ("A test trial", "Engagement by arm", "Protocol fidelity", "Cost per participant", "Safety",
                 "Arm A", "Maya Coach"):
        assert text in html, text
    for chart in ("engagement", "retention", "cost", "consort"):
        assert f'src="/studies/trial/dashboard/{chart}.svg"' in html
        svg = c.get(f"/studies/trial/dashboard/{chart}.svg")
        assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
        assert "script-src 'none'" in svg.headers["content-security-policy"]
        assert "<svg" in svg.text and "<script" not in svg.text
    assert "Arm A" in c.get("/studies/trial/dashboard/engagement.svg").text
    assert c.get("/studies/trial/dashboard/nope.svg").status_code == 404


def test_admin_sees_it_too(team, client_for):
    assert client_for(team.admin).get("/studies/trial/dashboard").status_code == 200


@pytest.mark.parametrize("who", ["other_researcher", "coach", "alice", "clinician"])
def test_anyone_else_gets_404(team, client_for, who):
    from tests.factories import create_user
    from peerlift.identity.models import Role

    if who == "other_researcher":
        with dbmod.transaction() as s:
            person = create_user(s, "Rex Researcher", Role.researcher)
    else:
        person = getattr(team, who)
    c = client_for(person)
    assert c.get("/studies/trial/dashboard").status_code == 404
    assert c.get("/studies/trial/dashboard/cost.svg").status_code == 404
    assert_error(c.get(f"/api/v1/studies/{team.study.id}/metrics"), 404, field="study_id")
    # A study that does not exist answers the same.
    assert c.get("/studies/nope/dashboard").status_code == 404


def test_signed_out_cannot_see_it(team, anon):
    assert anon.get(f"/api/v1/studies/{team.study.id}/metrics").status_code == 401


def test_adjustment_form(team, client_for):
    w = team
    c = client_for(w.researcher)
    token = form_token(c.get("/studies/trial/dashboard").text)
    bad = c.post("/studies/trial/cost-adjustments", data={"csrf_token": token, "person": str(w.coach.id),
                                                          "minutes": "lots", "arm": "a", "reason": "call"})
    assert bad.status_code == 422 and "whole number" in bad.text
    assert count_rows(CostAdjustment) == 0
    bad = c.post("/studies/trial/cost-adjustments", data={"csrf_token": token, "person": str(w.coach.id),
                                                          "minutes": "30", "arm": "a", "reason": ""})
    assert bad.status_code == 422 and "Say why" in bad.text
    assert count_rows(CostAdjustment) == 0
    ok = c.post("/studies/trial/cost-adjustments", data={"csrf_token": token, "person": str(w.coach.id),
                                                         "minutes": "30", "arm": "a", "reason": "supervision"},
                follow_redirects=False)
    assert ok.status_code == 303
    assert count_rows(CostAdjustment) == 1
    assert "Adjustment saved" in c.get(ok.headers["location"]).text


def test_metrics_and_adjustments_api(team, client_for):
    w = team
    c = client_for(w.researcher)
    body = c.get(f"/api/v1/studies/{w.study.id}/metrics").json()
    assert {p["user_id"] for p in body["participants"]} == {w.alice.id, w.carol.id}
    assert body["currency"] == "GBP"
    before = {row["arm"]: row["staff_hours"] for row in body["costs"]}
    assert_error(c.post(f"/api/v1/studies/{w.study.id}/cost-adjustments",
                        json={"user_id": w.coach.id, "minutes": 60, "arm": "zz", "reason": "x"}), 422, field="arm")
    assert count_rows(CostAdjustment) == 0
    made = c.post(f"/api/v1/studies/{w.study.id}/cost-adjustments",
                  json={"user_id": w.coach.id, "minutes": 60, "arm": "a", "reason": "training"})
    assert made.status_code == 201, made.text
    after = {row["arm"]: row["staff_hours"] for row in c.get(f"/api/v1/studies/{w.study.id}/metrics").json()["costs"]}
    assert after["Arm A"] == pytest.approx(before["Arm A"] + 1, abs=0.01)
    assert_error(client_for(w.coach).post(f"/api/v1/studies/{w.study.id}/cost-adjustments",
                                          json={"user_id": w.coach.id, "minutes": 60, "reason": "x"}), 404)
