"""Health profiles: each field seen only by those its visibility admits; coded entries checked."""

from __future__ import annotations

import pytest

from peerlift import db as dbmod
from peerlift.people.models import HealthProfile, ProfileCode
from tests.conftest import assert_error, count_rows, form_token

LEVELS = ("only_me", "my_circles", "my_communities", "installation")


def community_with(*people):
    """An open community of ``people``."""
    from peerlift.community.models import Membership, Space, SpaceKind

    with dbmod.transaction() as s:
        space = Space(kind=SpaceKind.community, name="Type 2 diabetes together", description="Living with E11",
                      timezone="Europe/London")
        s.add(space)
        s.flush()
        for person in people:
            s.add(Membership(space_id=space.id, user_id=person.id))
        return space.id


def new_person(name):
    from tests.factories import create_user

    with dbmod.transaction() as s:
        return create_user(s, name)


def profile(**over):
    body = {"conditions": [{"code": "E11.9", "year": 2018}], "treatments": [{"code": "A10BA02"}],
            "goals": ["Lose 5%"], "age_band": "45-54",
            "visibility": {f: "installation" for f in ("conditions", "treatments", "goals", "diagnosis_years",
                                                      "age_band")},
            "suggest_me": True}
    body.update(over)
    return body


def test_save_and_read_my_profile(world, client_for):
    alice = client_for(world.alice)
    assert alice.get("/api/v1/me/health-profile").json()["suggest_me"] is False  # off by default
    saved = alice.put("/api/v1/me/health-profile", json=profile(
        conditions=[{"code": "E11.9", "year": 2018}, {"text": "  Frozen   shoulder "}],
        treatments=[{"code": "a10bj06"}, {"text": "Physio exercises"}]))
    assert saved.status_code == 200, saved.text
    mine = alice.get("/api/v1/me/health-profile").json()
    assert mine["conditions"] == [{"code": "E11.9", "text": "Type 2 diabetes without complications", "year": 2018},
                                  {"code": None, "text": "Frozen shoulder", "year": None}]
    assert mine["treatments"] == [{"code": "A10BJ06", "text": "semaglutide"},
                                  {"code": None, "text": "Physio exercises"}]
    assert mine["goals"] == ["Lose 5%"] and mine["age_band"] == "45-54" and mine["suggest_me"] is True


@pytest.mark.parametrize("level", LEVELS)
def test_each_visibility_admits_exactly_its_people(world, client_for, level):
    """One field at a time, at each level: who sees it, and that nobody else learns it."""
    dora = new_person("Dora Dunn")
    community_with(world.alice, dora)
    alice = client_for(world.alice)
    for field in ("conditions", "treatments", "goals", "diagnosis_years", "age_band"):
        visibility = {f: "only_me" for f in ("conditions", "treatments", "goals", "diagnosis_years", "age_band")}
        visibility[field] = level
        if field == "diagnosis_years":
            visibility["conditions"] = "my_circles"  # the year is shown with the condition
        assert alice.put("/api/v1/me/health-profile", json=profile(visibility=visibility)).status_code == 200
        reach = LEVELS.index(level)
        viewers = {"bob": (world.bob, 1), "dora": (dora, 2), "carol": (world.carol, 3)}
        for name, (person, distance) in viewers.items():
            got = client_for(person).get(f"/api/v1/people/{world.alice.id}/health-profile")
            sees = reach >= distance
            if name == "carol" and not sees:
                assert_error(got, 404, "not_found", "user_id")  # shares nothing with carol: no such person
                continue
            assert got.status_code == 200, got.text
            body = got.json()
            text = got.text
            if field == "conditions":
                assert (body["conditions"] is not None) == sees, (name, level)
                assert ("E11" in text) == sees
            elif field == "treatments":
                assert (body["treatments"] is not None) == sees and ("A10BA02" in text) == sees
            elif field == "goals":
                assert (body["goals"] == ["Lose 5%"]) == sees and ("Lose 5%" in text) == sees
            elif field == "age_band":
                assert (body["age_band"] == "45-54") == sees and ("45-54" in text) == sees
            else:
                in_circle = distance == 1  # conditions are my_circles: only bob sees them at all
                assert ("2018" in text) == (sees and in_circle), (name, level, text)


def test_others_cannot_see_a_profile_they_share_nothing_with(world, client_for):
    alice = client_for(world.alice)
    assert_error(client_for(world.carol).get(f"/api/v1/people/{world.alice.id}/health-profile"), 404)
    assert alice.put("/api/v1/me/health-profile", json=profile(visibility={"conditions": "my_circles"})).status_code == 200
    assert_error(client_for(world.carol).get(f"/api/v1/people/{world.alice.id}/health-profile"), 404)
    bob = client_for(world.bob).get(f"/api/v1/people/{world.alice.id}/health-profile").json()
    assert bob["conditions"][0]["code"] == "E11.9" and bob["conditions"][0]["year"] is None
    assert bob["treatments"] is None and bob["goals"] is None and bob["age_band"] is None
    assert_error(client_for(world.bob).get("/api/v1/people/999999/health-profile"), 404)
    assert client_for(None).get(f"/api/v1/people/{world.alice.id}/health-profile").status_code == 401


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"conditions": [{"code": "E11.99X"}]}, "conditions[0].code", "E11.99X"),
    ({"conditions": [{"code": "E11.9"}, {"code": "Z99.99"}]}, "conditions[1].code", "Z99.99"),
    ({"treatments": [{"code": "A10BA99"}]}, "treatments[0].code", "A10BA99"),
    ({"conditions": [{"code": "E11.9", "year": 1800}]}, "conditions[0].year", "year"),
    ({"conditions": [{"text": "   "}]}, "conditions[0]", "code or some text"),
    ({"age_band": "40ish"}, "age_band", "age_band"),
])
def test_bad_input_is_refused_and_nothing_written(world, client_for, body, field, words):
    alice = client_for(world.alice)
    error = assert_error(alice.put("/api/v1/me/health-profile", json=profile(**body)), 422, field=field)
    assert words in error["message"]
    assert count_rows(HealthProfile) == 0 and count_rows(ProfileCode) == 0


def test_bad_input_keeps_the_saved_profile(world, client_for):
    alice = client_for(world.alice)
    alice.put("/api/v1/me/health-profile", json=profile())
    assert_error(alice.put("/api/v1/me/health-profile", json=profile(treatments=[{"code": "XX"}])), 422,
                 field="treatments[0].code")
    assert_error(alice.put("/api/v1/me/health-profile", json=profile(visibility={"goals": "everyone"})), 422)
    assert alice.get("/api/v1/me/health-profile").json()["treatments"] == [{"code": "A10BA02", "text": "metformin"}]


def test_code_search(world, client_for):
    alice = client_for(world.alice)
    found = alice.get("/api/v1/codes/conditions", params={"q": "diab"}).json()
    assert {"code": "E11", "name": "Type 2 diabetes"} in found
    assert alice.get("/api/v1/codes/conditions", params={"q": "U09"}).json()[0]["code"] == "U09.9"
    assert alice.get("/api/v1/codes/medicines", params={"q": "varen"}).json() == [
        {"code": "N07BA03", "name": "varenicline"}]
    assert client_for(None).get("/api/v1/codes/conditions").status_code == 401


def test_the_shipped_lists_are_well_formed():
    from peerlift.people import codes

    conditions, medicines = codes.conditions(), codes.medicines()
    assert len(conditions.entries) >= 300 and len(medicines.entries) >= 200
    assert len(conditions.by_code) == len(conditions.entries) and len(medicines.by_code) == len(medicines.entries)
    assert all(codes.ICD10CM.match(c.code) for c in conditions.entries)
    assert all(codes.ATC.match(m.code) for m in medicines.entries)
    for code in ("E11.9", "I10", "J45.909", "J44.9", "F32.9", "F33.1", "F41.1", "E66.9", "U09.9", "F03.90",
                 "G30.9", "F17.210", "I50.9"):
        assert code in conditions.by_code
    for code in ("A10BA02", "A10BJ06", "A10AE04", "N06AB06", "N07BA03", "N07BA01", "R03AC02"):
        assert code in medicines.by_code


def test_the_page_works_without_javascript(world, client_for):
    alice = client_for(world.alice)
    html = alice.get("/profile/health").text
    assert '<datalist id="condition-codes">' in html and 'value="E11.9 Type 2 diabetes without complications"' in html
    token = form_token(html)
    saved = alice.post("/profile/health", data={
        "csrf_token": token, "condition": ["E11.9 Type 2 diabetes without complications", "Frozen shoulder", ""],
        "condition_year": ["2018", "", ""], "treatment": ["A10BA02 metformin", ""], "goal": ["Lose 5%", ""],
        "age_band": "45-54", "vis_conditions": "installation", "vis_treatments": "my_circles",
        "vis_goals": "only_me", "vis_diagnosis_years": "only_me", "vis_age_band": "only_me", "suggest_me": "1"},
        follow_redirects=False)
    assert saved.status_code == 303, saved.text
    mine = alice.get("/api/v1/me/health-profile").json()
    assert [c["code"] for c in mine["conditions"]] == ["E11.9", None] and mine["conditions"][0]["year"] == 2018
    assert mine["visibility"]["treatments"] == "my_circles" and mine["suggest_me"] is True
    refused = alice.post("/profile/health", data={"csrf_token": token, "condition": ["E11.77 Something"],
                                                  "condition_year": [""]})
    assert refused.status_code == 422 and "E11.77" in refused.text
    assert len(alice.get("/api/v1/me/health-profile").json()["conditions"]) == 2


def test_reading_someone_elses_profile_is_audited(world, client_for):
    from peerlift.identity.models import AuditEntry

    alice = client_for(world.alice)
    alice.put("/api/v1/me/health-profile", json=profile(visibility={"conditions": "my_circles"}))
    alice.get(f"/api/v1/people/{world.alice.id}/health-profile")
    assert count_rows(AuditEntry, AuditEntry.action == "read.health_profile") == 0  # her own: not audited
    client_for(world.bob).get(f"/api/v1/people/{world.alice.id}/health-profile")
    assert count_rows(AuditEntry, AuditEntry.action == "read.health_profile", AuditEntry.actor_id == world.bob.id,
                      AuditEntry.subject_id == world.alice.id) == 1
