"""Creating and changing studies: who may, and every bad input with the field it names."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from peerlift import db as dbmod
from peerlift.research.models import Arm, ConsentDocument, Study, StudyDesign, StudyInvitation, StudyMember
from tests.conftest import assert_error, count_rows
from tests.research.helpers import QUESTIONS, SECTIONS, make_study


def _create(client, **extra):
    body = {"title": "Move more", "slug": "move-more", "registry_id": "NCT07654321", "ethics_ref": "REC 1",
            "target_size": 120, **extra}
    return client.post("/api/v1/studies", json=body)


def test_a_researcher_creates_a_study_and_builds_it(client_for, world):
    r = client_for(world.researcher)
    response = _create(r)
    assert response.status_code == 201, response.text
    study = response.json()
    sid = study["study"]["id"]
    assert study["team"] == [{"user_id": world.researcher.id, "display_name": "Rhea Researcher",
                              "email": world.researcher.email, "role": "researcher"}]
    assert "concealed_seed" not in response.text and study["design"]["scheme"] == "blocks"
    a = r.post(f"/api/v1/studies/{sid}/arms", json={"slug": "peer", "name": "Peer circles"})
    b = r.post(f"/api/v1/studies/{sid}/arms", json={"slug": "usual", "name": "Usual care"})
    assert a.status_code == b.status_code == 201
    assert r.post(f"/api/v1/studies/{sid}/team", json={"user_id": world.coach.id, "role": "facilitator"}
                  ).status_code == 201
    assert r.post(f"/api/v1/studies/{sid}/team", json={"user_id": world.clinician.id, "role": "clinician"}
                  ).status_code == 201
    design = r.put(f"/api/v1/studies/{sid}/design", json={
        "scheme": "stratified", "block_sizes": [2, 4], "factors": [{"key": "sex"}], "eligibility": QUESTIONS,
        "withdrawal_rule": "delete"})
    assert design.status_code == 200, design.text
    assert design.json()["factors"] == [{"key": "sex", "values": ["female", "male"]}]
    doc = r.post(f"/api/v1/studies/{sid}/consent-documents",
                 json={"version": "2.1", "title": "Consent", "sections": SECTIONS})
    assert doc.status_code == 201 and doc.json()["version"] == "2.1"
    invite = r.post(f"/api/v1/studies/{sid}/invitations", json={"days_valid": 10, "max_uses": 5})
    assert invite.status_code == 201 and invite.json()["url"].endswith(f"/study/{invite.json()['token']}")
    detail = r.get(f"/api/v1/studies/{sid}").json()
    assert [x["slug"] for x in detail["arms"]] == ["peer", "usual"]
    assert {m["role"] for m in detail["team"]} == {"researcher", "facilitator", "clinician"}
    assert detail["design"]["consent_version"] == "2.1" and detail["design"]["withdrawal_rule"] == "delete"
    assert detail["enrolment_counts"]["invited"] == 0
    # the team sees the study; others do not even learn it exists
    assert client_for(world.coach).get(f"/api/v1/studies/{sid}").status_code == 200
    assert_error(client_for(world.alice).get(f"/api/v1/studies/{sid}"), 404, field="study_id")
    assert_error(client_for(world.other_coach).get(f"/api/v1/studies/{sid}"), 404)
    assert sid in [s["id"] for s in client_for(world.admin).get("/api/v1/studies").json()]
    assert client_for(world.alice).get("/api/v1/studies").json() == []


def test_only_admins_and_researchers_create_studies(client_for, world):
    for person in (world.alice, world.coach, world.clinician):
        assert_error(_create(client_for(person)), 403)
    assert count_rows(Study) == 1  # the world's own
    admin = client_for(world.admin)
    assert_error(_create(admin), 422, field="researchers")
    assert_error(_create(admin, researcher_ids=[world.coach.id]), 422, field="researchers")
    created = _create(admin, researcher_ids=[world.researcher.id])
    assert created.status_code == 201
    assert [m["user_id"] for m in created.json()["team"]] == [world.researcher.id]


def test_only_the_studys_researchers_change_it(client_for, world):
    with dbmod.transaction() as s:
        setup = make_study(s, world)
    sid = setup.study.id
    with dbmod.transaction() as s:
        from peerlift.research import service

        service.add_team_member(s, world.researcher, s.get(Study, sid), world.coach, "facilitator")
    for person in (world.coach, world.admin):
        c = client_for(person)
        assert_error(c.post(f"/api/v1/studies/{sid}/arms", json={"slug": "x", "name": "X"}), 403)
        assert_error(c.put(f"/api/v1/studies/{sid}/design", json={"scheme": "simple"}), 403)
        assert_error(c.post(f"/api/v1/studies/{sid}/invitations", json={}), 403)
    assert_error(client_for(world.alice).post(f"/api/v1/studies/{sid}/arms", json={"slug": "x", "name": "X"}), 404)
    assert count_rows(Arm, Arm.study_id == sid) == 2


@pytest.mark.parametrize("body,status,field", [
    ({"slug": "Bad Slug"}, 422, "slug"),
    ({"slug": ""}, 422, "slug"),
    ({"title": "  "}, 422, "title"),
    ({"target_size": -1}, 422, "target_size"),
    ({"slug": "trial"}, 409, "slug"),
])
def test_bad_study(client_for, world, body, status, field):
    assert_error(_create(client_for(world.researcher), **body), status, field=field)
    assert count_rows(Study) == 1 and count_rows(StudyDesign) == 0 and count_rows(StudyMember) == 0


@pytest.fixture
def study(world):
    with dbmod.transaction() as s:
        return make_study(s, world).study


def _design(client, study, **body):
    return client.put(f"/api/v1/studies/{study.id}/design", json={"scheme": "blocks", "block_sizes": [2],
                                                                   **body})


@pytest.mark.parametrize("body,field,words", [
    ({"scheme": "lottery"}, "scheme", "simple, blocks, stratified or cluster"),
    ({"block_sizes": [3]}, "block_sizes", "not a multiple of the number of arms (2)"),
    ({"block_sizes": [2, 5]}, "block_sizes", "Block size 5"),
    ({"block_sizes": []}, "block_sizes", "multiples"),
    ({"block_sizes": "four"}, "block_sizes", "list"),
    ({"scheme": "stratified", "factors": [{"key": "bmi"}], "eligibility": QUESTIONS}, "factors[0]", "choice"),
    ({"scheme": "stratified", "eligibility": QUESTIONS}, "factors", "factors"),
    ({"scheme": "stratified", "factors": [{"key": "sex", "values": ["f"]}], "eligibility": QUESTIONS},
     "factors[0].values", "female, male"),
    ({"factors": [{"key": "sex"}], "eligibility": QUESTIONS}, "factors", "stratified"),
    ({"withdrawal_rule": "shred"}, "withdrawal_rule", "keep"),
    ({"eligibility": [{"key": "age", "text": "Age?", "kind": "number"}]}, "eligibility[0].min", "min"),
    ({"eligibility": [{"key": "Age", "text": "Age?", "kind": "number", "min": 1}]}, "eligibility[0].key", "key"),
    ({"eligibility": [{"key": "ok", "text": "OK?", "kind": "yes_no", "include_if": "maybe"}]},
     "eligibility[0].include_if", "yes"),
    ({"eligibility": [{"key": "c", "text": "C?", "kind": "choice", "options": ["a"]}]},
     "eligibility[0].options", "two or more"),
    ({"eligibility": [{"key": "c", "text": "C?", "kind": "essay"}]}, "eligibility[0].kind", "yes_no"),
    ({"eligibility": QUESTIONS + [QUESTIONS[0]]}, "eligibility[3].key", "adult"),
])
def test_bad_design(client_for, world, study, body, field, words):
    with dbmod.transaction(write=False) as s:
        before = s.get(StudyDesign, study.id)
        before = (before.scheme, before.block_sizes, before.factors, before.eligibility, before.withdrawal_rule)
    error = assert_error(_design(client_for(world.researcher), study, **body), 422, "invalid", field)
    assert words in error["message"]
    with dbmod.transaction(write=False) as s:
        after = s.get(StudyDesign, study.id)
        assert (after.scheme, after.block_sizes, after.factors, after.eligibility, after.withdrawal_rule) == before


def test_design_fixed_once_allocation_began(client_for, world, study):
    from types import SimpleNamespace

    from peerlift.research import service
    from tests.research.helpers import consented, participant

    with dbmod.transaction() as s:
        person = participant(s)
        service.randomise(s, person, consented(s, SimpleNamespace(token=_token(s, study)), person))
    r = client_for(world.researcher)
    assert_error(_design(r, study, block_sizes=[4]), 409, field="scheme")
    ok = r.put(f"/api/v1/studies/{study.id}/design", json={"scheme": "blocks", "block_sizes": [2, 4],
                                                            "eligibility": QUESTIONS, "withdrawal_rule": "delete"})
    assert ok.status_code == 200  # the sequence is unchanged: the rest may change
    assert_error(r.post(f"/api/v1/studies/{study.id}/arms", json={"slug": "late", "name": "Late"}), 409,
                 field="slug")


def _token(s, study) -> str:
    from peerlift.research import service
    from peerlift.identity.models import User

    researcher = s.scalar(select(User).join(StudyMember, StudyMember.user_id == User.id)
                          .where(StudyMember.study_id == study.id))
    return service.create_invitation(s, researcher, s.get(Study, study.id))[0]


def test_unknown_arm_and_protocol(client_for, world, study):
    r = client_for(world.researcher)
    other_arm = world.arm_a.id  # an arm of another study
    for arm_id in (other_arm, 999_999):
        assert_error(r.post(f"/api/v1/studies/{study.id}/arms/{arm_id}/protocol",
                            json={"protocol_version_id": 1, "start_date": "2026-12-01"}), 422, field="arm_id")
    with dbmod.transaction(write=False) as s:
        arm_id = s.scalar(select(Arm.id).where(Arm.study_id == study.id).limit(1))
    assert_error(r.post(f"/api/v1/studies/{study.id}/arms/{arm_id}/protocol",
                        json={"protocol_version_id": 424242, "start_date": "2026-12-01"}), 422,
                 field="protocol_version_id")
    assert_error(r.post(f"/api/v1/studies/{study.id}/arms", json={"slug": "arm0", "name": "Again"}), 409,
                 field="slug")


def test_an_arm_runs_a_protocol_version(client_for, world, study):
    from pathlib import Path

    from peerlift.protocols.models import Assignment

    source = (Path(__file__).resolve().parents[1] / "data" / "walk_protocol.yaml").read_text()
    r = client_for(world.researcher)
    version = r.post("/api/v1/protocols", json={"source": source})
    assert version.status_code == 201, version.text
    with dbmod.transaction(write=False) as s:
        arm = s.scalar(select(Arm).where(Arm.study_id == study.id).order_by(Arm.id).limit(1))
    made = r.post(f"/api/v1/studies/{study.id}/arms/{arm.id}/protocol",
                  json={"protocol_version_id": version.json()["id"], "start_date": "2026-12-01"})
    assert made.status_code == 201, made.text
    assert count_rows(Assignment, Assignment.arm_id == arm.id) == len(made.json()) == 1


@pytest.mark.parametrize("body,status,field", [
    ({"version": "", "title": "C", "sections": SECTIONS}, 422, "version"),
    ({"version": "1.0", "title": "C", "sections": SECTIONS}, 409, "version"),
    ({"version": "3", "title": "C", "sections": []}, 422, "sections"),
    ({"version": "3", "title": "C", "sections": [{"key": "a", "heading": "", "text": "t"}]}, 422,
     "sections[0].heading"),
    ({"version": "3", "title": "C", "sections": [SECTIONS[0], SECTIONS[0]]}, 422, "sections[1].key"),
])
def test_bad_consent_document(client_for, world, study, body, status, field):
    assert_error(client_for(world.researcher).post(f"/api/v1/studies/{study.id}/consent-documents", json=body),
                 status, field=field)
    assert count_rows(ConsentDocument) == 1
    with dbmod.transaction(write=False) as s:
        assert s.get(StudyDesign, study.id).consent_version == "1.0"


def test_bad_team_member_and_invitation(client_for, world, study):
    r = client_for(world.researcher)
    assert_error(r.post(f"/api/v1/studies/{study.id}/team", json={"user_id": world.alice.id, "role": "facilitator"}),
                 422, field="role")
    assert_error(r.post(f"/api/v1/studies/{study.id}/team", json={"user_id": world.coach.id, "role": "boss"}),
                 422, field="role")
    assert_error(r.post(f"/api/v1/studies/{study.id}/team", json={"user_id": 987654, "role": "facilitator"}),
                 422, field="user_id")
    assert_error(r.post(f"/api/v1/studies/{study.id}/team",
                        json={"user_id": world.researcher.id, "role": "researcher"}), 409, field="user_id")
    assert_error(r.post(f"/api/v1/studies/{study.id}/invitations", json={"days_valid": 0}), 422, field="days_valid")
    assert_error(r.post(f"/api/v1/studies/{study.id}/invitations", json={"max_uses": 0}), 422, field="max_uses")
    assert count_rows(StudyMember) == 1 and count_rows(StudyInvitation) == 1


def test_cluster_bad_input(client_for, world):
    from tests.factories import create_circle

    with dbmod.transaction() as s:
        setup = make_study(s, world, scheme="cluster", block_sizes=[2], slug="clu")
        free = create_circle(s, world.admin, "Free circle")
    r = client_for(world.researcher)
    url = f"/api/v1/studies/{setup.study.id}/clusters"
    assert_error(r.post(url, json={"circle_ids": []}), 422, field="circle_ids")
    assert_error(r.post(url, json={"circle_ids": [free.id, free.id]}), 422, field="circle_ids")
    assert_error(r.post(url, json={"circle_ids": [free.id, world.circle.id]}), 409, field="circle_ids")
    assert_error(r.post(url, json={"circle_ids": [free.id, 99999]}), 422, field="circle_ids")
    from peerlift.research.models import Allocation

    assert count_rows(Allocation) == 0
    made = r.post(url, json={"circle_ids": [free.id]})
    assert made.status_code == 201 and made.json()[0]["circle_id"] == free.id
