"""A person's way through a study over the API: invitation, screening, consent, randomisation,
and every bad input answered with a clear error naming the field, a 4xx, and nothing written."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from peerlift import db as dbmod
from peerlift.community.models import Membership
from peerlift.events import Event
from peerlift.identity.models import AuditEntry
from peerlift.research.models import Allocation, Consent, Enrolment, EnrolmentStatus, StudyInvitation
from tests.conftest import assert_error, count_rows
from tests.research.helpers import ELIGIBLE, SECTIONS, make_study, participant

ALL = [s["key"] for s in SECTIONS]


@pytest.fixture
def setup(world):
    with dbmod.transaction() as s:
        return make_study(s, world)


@pytest.fixture
def dana(world):
    with dbmod.transaction() as s:
        return participant(s, "Dana  Dorsey")


def _start(client, setup) -> dict:
    response = client.post("/api/v1/enrolments", json={"token": setup.token})
    assert response.status_code == 201, response.text
    return response.json()


def test_invitation_screening_consent_randomisation(client_for, setup, dana):
    c = client_for(dana)
    enrolment = _start(c, setup)
    assert enrolment["status"] == "invited"
    r = c.post(f"/api/v1/enrolments/{enrolment['id']}/screening", json={"answers": ELIGIBLE})
    assert r.status_code == 200 and r.json()["status"] == "eligible", r.text
    r = c.post(f"/api/v1/enrolments/{enrolment['id']}/consent",
               json={"sections": ALL, "typed_name": "  dana   DORSEY ", "document_version": "1.0"})
    assert r.status_code == 200 and r.json()["status"] == "consented", r.text
    r = c.post(f"/api/v1/enrolments/{enrolment['id']}/randomise")
    body = r.json()
    assert r.status_code == 200 and body["status"] == "randomised", r.text
    assert body["arm_id"] in {a.id for a in setup.arms}
    assert body["circle_id"] in {c_.id for c_ in setup.circles[body["arm_id"]]}
    # the person is a member of that circle and can read it
    assert c.get(f"/api/v1/circles/{body['circle_id']}").status_code == 200
    with dbmod.transaction(write=False) as s:
        e = s.get(Enrolment, enrolment["id"])
        assert e.strata == {} and e.screening_answers == ELIGIBLE  # no factors in a blocks design
        signed = s.scalar(select(Consent).where(Consent.enrolment_id == e.id))
        assert signed.document_version == "1.0" and signed.sections_confirmed == ALL
        assert signed.typed_name == "dana DORSEY" and signed.signed_at is not None
        allocation = s.scalar(select(Allocation).where(Allocation.enrolment_id == e.id))
        assert allocation.arm_id == e.arm_id and allocation.allocated_by_id == dana.id
        assert allocation.sequence_index == 0 and allocation.stratum == ""
        actions = set(s.scalars(select(AuditEntry.action).where(AuditEntry.actor_id == dana.id)))
        assert {"enrolment.started", "enrolment.screened", "enrolment.consented", "allocation.made",
                "enrolment.randomised"} <= actions
        kinds = set(s.scalars(select(Event.kind).where(Event.actor_id == dana.id)))
        assert {"enrolment.started", "enrolment.screened", "enrolment.consented", "enrolment.randomised"} <= kinds
    # a copy of the consent to keep, as text and as HTML
    text = c.get(f"/enrolments/{enrolment['id']}/consent.txt")
    assert text.status_code == 200 and "attachment" in text.headers["content-disposition"]
    assert "[x] Your data" in text.text and "Signed by: dana DORSEY" in text.text
    html = c.get(f"/enrolments/{enrolment['id']}/consent.html")
    assert html.status_code == 200 and "Consent to take part" in html.text and "dana DORSEY" in html.text


def test_ineligible_stops_with_the_reason(client_for, setup, dana):
    c = client_for(dana)
    enrolment = _start(c, setup)
    r = c.post(f"/api/v1/enrolments/{enrolment['id']}/screening",
               json={"answers": {"adult": "yes", "bmi": 22.5, "sex": "male"}})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ineligible"
    assert r.json()["exclusion_reason"] == "The study is for people with a BMI from 25 to 45."
    assert_error(c.post(f"/api/v1/enrolments/{enrolment['id']}/consent", json={"sections": ALL,
                        "typed_name": "Dana Dorsey"}), 409, "wrong_step", "enrolment_id")
    page = c.get(f"/enrolments/{enrolment['id']}")
    assert "not the right one for you" in page.text and "BMI from 25 to 45" in page.text


def test_declining_consent_is_recorded(client_for, setup, dana):
    c = client_for(dana)
    enrolment = _start(c, setup)
    c.post(f"/api/v1/enrolments/{enrolment['id']}/screening", json={"answers": ELIGIBLE})
    r = c.post(f"/api/v1/enrolments/{enrolment['id']}/decline", json={"reason": "Too busy this spring."})
    assert r.status_code == 200 and r.json()["status"] == "declined"
    assert r.json()["exclusion_reason"] == "Too busy this spring."
    assert count_rows(Consent) == 0
    assert_error(c.post(f"/api/v1/enrolments/{enrolment['id']}/randomise"), 409, "wrong_step", "enrolment_id")


def _eligible(c, setup) -> int:
    enrolment = _start(c, setup)
    c.post(f"/api/v1/enrolments/{enrolment['id']}/screening", json={"answers": ELIGIBLE})
    return enrolment["id"]


@pytest.mark.parametrize("body,field,words", [
    ({"sections": ALL[:2], "typed_name": "Dana Dorsey"}, "sections", "Leaving"),
    ({"sections": [], "typed_name": "Dana Dorsey"}, "sections", "What the study is for"),
    ({"sections": ALL + ["extra"], "typed_name": "Dana Dorsey"}, "sections", "extra"),
    ({"sections": "purpose", "typed_name": "Dana Dorsey"}, "sections", "list"),
    ({"sections": ALL, "typed_name": ""}, "typed_name", "Type your full name"),
    ({"sections": ALL, "typed_name": "   "}, "typed_name", "Type your full name"),
    ({"sections": ALL}, "typed_name", "Type your full name"),
    ({"sections": ALL, "typed_name": "Dana Dorset"}, "typed_name", "(Dana Dorsey)"),
    ({"sections": ALL, "typed_name": "Alice Archer"}, "typed_name", "not the name of your account"),
])
def test_consent_refused_without_every_section_or_the_right_name(client_for, setup, dana, body, field, words):
    c = client_for(dana)
    enrolment_id = _eligible(c, setup)
    before = count_rows(Event)
    error = assert_error(c.post(f"/api/v1/enrolments/{enrolment_id}/consent", json=body), 422, "invalid", field)
    assert words in error["message"]
    assert count_rows(Consent) == 0 and count_rows(Event) == before
    assert count_rows(Enrolment, Enrolment.status == EnrolmentStatus.eligible) == 1


def test_consent_to_an_outdated_document_version_is_refused(client_for, setup, dana):
    c = client_for(dana)
    enrolment_id = _eligible(c, setup)
    assert_error(c.post(f"/api/v1/enrolments/{enrolment_id}/consent",
                        json={"sections": ALL, "typed_name": "Dana Dorsey", "document_version": "0.9"}),
                 409, field="document_version")
    assert count_rows(Consent) == 0


def test_randomising_someone_who_has_not_consented_is_refused(client_for, setup, dana, world):
    c = client_for(dana)
    enrolment_id = _eligible(c, setup)
    error = assert_error(c.post(f"/api/v1/enrolments/{enrolment_id}/randomise"), 409, "wrong_step", "enrolment_id")
    assert "consented" in error["message"]
    researcher = client_for(world.researcher)
    assert_error(researcher.post(f"/api/v1/enrolments/{enrolment_id}/randomise"), 409, "wrong_step")
    assert count_rows(Allocation) == 0
    assert count_rows(Membership, Membership.user_id == dana.id) == 0


def test_other_people_cannot_see_or_act_on_an_enrolment(client_for, setup, dana, world):
    enrolment_id = _eligible(client_for(dana), setup)
    for person in (world.alice, world.coach):
        other = client_for(person)
        assert_error(other.get(f"/api/v1/enrolments/{enrolment_id}"), 404, field="enrolment_id")
        assert_error(other.post(f"/api/v1/enrolments/{enrolment_id}/consent",
                                json={"sections": ALL, "typed_name": "Dana Dorsey"}), 404)
        assert_error(other.post(f"/api/v1/enrolments/{enrolment_id}/randomise"), 404)
        assert other.get(f"/enrolments/{enrolment_id}/consent.txt").status_code == 404


def test_enrolling_twice_is_refused(client_for, setup, dana):
    c = client_for(dana)
    _start(c, setup)
    uses = count_rows(StudyInvitation, StudyInvitation.uses == 1)
    assert_error(c.post("/api/v1/enrolments", json={"token": setup.token}), 409, "already_enrolled", "token")
    assert count_rows(Enrolment) == 1 and count_rows(StudyInvitation, StudyInvitation.uses == 1) == uses


def test_bad_invitation_tokens(client_for, world, dana):
    c = client_for(dana)
    assert_error(c.post("/api/v1/enrolments", json={"token": "nope"}), 404, "invitation_not_found", "token")
    with dbmod.transaction() as s:
        setup = make_study(s, world)
        from peerlift.research import service

        token, inv = service.create_invitation(s, world.researcher, setup.study, max_uses=1)
    assert _start(c, type(setup)(setup.study, [], {}, token))
    other = client_for(world.bob)
    assert_error(other.post("/api/v1/enrolments", json={"token": token}), 410, "invitation_unusable", "token")
    staff = client_for(world.coach)
    assert_error(staff.post("/api/v1/enrolments", json={"token": setup.token}), 403, field="token")


@pytest.mark.parametrize("answers,field", [
    ({"adult": "yes", "bmi": 31}, "answers.sex"),
    ({"adult": "maybe", "bmi": 31, "sex": "female"}, "answers.adult"),
    ({"adult": "yes", "bmi": "tall", "sex": "female"}, "answers.bmi"),
    ({"adult": "yes", "bmi": 31, "sex": "other"}, "answers.sex"),
    ({"adult": "yes", "bmi": 31, "sex": "female", "shoe": 9}, "answers.shoe"),
    ("yes", "answers"),
])
def test_screening_bad_answers(client_for, setup, dana, answers, field):
    c = client_for(dana)
    enrolment = _start(c, setup)
    assert_error(c.post(f"/api/v1/enrolments/{enrolment['id']}/screening", json={"answers": answers}),
                 422, "invalid", field)
    with dbmod.transaction(write=False) as s:
        e = s.get(Enrolment, enrolment["id"])
        assert e.status == EnrolmentStatus.invited and e.screening_answers == {} and e.screened_at is None


def test_screening_twice_is_refused(client_for, setup, dana):
    c = client_for(dana)
    enrolment_id = _eligible(c, setup)
    assert_error(c.post(f"/api/v1/enrolments/{enrolment_id}/screening",
                        json={"answers": {"adult": "no", "bmi": 31, "sex": "female"}}), 409, "wrong_step")
    assert count_rows(Enrolment, Enrolment.status == EnrolmentStatus.eligible) == 1


def test_no_route_shows_the_seed(client_for, setup, dana, world):
    with dbmod.transaction(write=False) as s:
        from peerlift.research.models import StudyDesign

        seed = s.get(StudyDesign, setup.study.id).concealed_seed
    c = client_for(dana)
    enrolment_id = _eligible(c, setup)
    c.post(f"/api/v1/enrolments/{enrolment_id}/consent", json={"sections": ALL, "typed_name": "Dana Dorsey"})
    c.post(f"/api/v1/enrolments/{enrolment_id}/randomise")
    r = client_for(world.researcher)
    pages = [r.get(f"/api/v1/studies/{setup.study.id}"), r.get(f"/studies/{setup.study.id}"),
             r.get("/api/v1/studies"), r.get(f"/api/v1/studies/{setup.study.id}/enrolments"),
             c.get(f"/api/v1/enrolments/{enrolment_id}"), c.get(f"/enrolments/{enrolment_id}"),
             c.get(f"/enrolments/{enrolment_id}/consent.txt"), c.get(f"/enrolments/{enrolment_id}/consent.html")]
    for response in pages:
        assert response.status_code == 200, response.text
        assert seed not in response.text
    with dbmod.transaction(write=False) as s:
        assert all(seed not in repr(data) for data in s.scalars(select(Event.data)))
        assert all(seed not in (d or "") for d in s.scalars(select(AuditEntry.detail)))
