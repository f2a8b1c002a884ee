"""The HTML pages without JavaScript: the researcher's forms, and the way in from an
invitation link to a circle."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from peerlift import db as dbmod
from peerlift.identity.models import User
from peerlift.research.models import Arm, ConsentDocument, Enrolment, EnrolmentStatus, Study, StudyDesign
from tests.conftest import count_rows, form_token
from tests.research.helpers import make_study


def test_researcher_builds_a_study_with_forms(client_for, world):
    r = client_for(world.researcher)
    form = r.get("/studies/new")
    token = form_token(form.text)
    bad = r.post("/studies/new", data={"csrf_token": token, "title": "Walk", "slug": "Not ok"})
    assert bad.status_code == 422 and "lower-case letters" in bad.text and 'value="Walk"' in bad.text
    assert count_rows(Study) == 1
    made = r.post("/studies/new", data={"csrf_token": token, "title": "Walk on", "slug": "walk-on",
                                        "registry_id": "NCT00000001", "ethics_ref": "REC 9", "target_size": "40"},
                  follow_redirects=False)
    assert made.status_code == 303
    url = made.headers["location"]
    sid = int(url.rsplit("/", 1)[1])
    for slug, name in (("peer", "Peer circles"), ("usual", "Usual care")):
        assert r.post(f"{url}/arms", data={"csrf_token": token, "slug": slug, "name": name},
                      follow_redirects=False).status_code == 303
    bad = r.post(f"{url}/design", data={"csrf_token": token, "scheme": "blocks", "block_sizes": "3",
                                        "eligibility": "[]"})
    assert bad.status_code == 422 and "not a multiple of the number of arms (2)" in bad.text
    assert 'value="3"' in bad.text  # what was typed stays in the form
    bad = r.post(f"{url}/design", data={"csrf_token": token, "scheme": "blocks", "block_sizes": "2",
                                        "eligibility": "[{"})
    assert bad.status_code == 422 and "not valid JSON" in bad.text
    ok = r.post(f"{url}/design", data={"csrf_token": token, "scheme": "blocks", "block_sizes": "2, 4",
                                       "withdrawal_rule": "delete", "eligibility":
                                       '[{"key": "adult", "text": "Are you 18 or older?", "kind": "yes_no",'
                                       ' "include_if": "yes", "reason": "Adults only."}]'}, follow_redirects=False)
    assert ok.status_code == 303
    doc = r.post(f"{url}/consent-documents", data={
        "csrf_token": token, "version": "1", "title": "Consent",
        "sections": "Purpose\nWe compare two programmes.\n\nYour data\nKept safe."}, follow_redirects=False)
    assert doc.status_code == 303
    invite = r.post(f"{url}/invitations", data={"csrf_token": token, "days_valid": "7", "max_uses": "3"})
    assert invite.status_code == 200
    link = re.search(r'id="invitation-url">([^<]+)<', invite.text).group(1)
    assert "/study/" in link
    with dbmod.transaction(write=False) as s:
        design = s.get(StudyDesign, sid)
        assert design.block_sizes == [2, 4] and design.withdrawal_rule == "delete"
        assert [q["key"] for q in design.eligibility] == ["adult"]
        document = s.scalar(select(ConsentDocument).where(ConsentDocument.study_id == sid))
        assert [x["heading"] for x in document.sections] == ["Purpose", "Your data"]
        assert s.scalar(select(Arm.slug).where(Arm.study_id == sid).order_by(Arm.id).limit(1)) == "peer"
        seed = design.concealed_seed
    page = r.get(url)
    assert page.status_code == 200 and seed not in page.text
    for words in ("Peer circles", "Usual care", "Are you 18 or older?", "Purpose", "Allocation log", "REC 9"):
        assert words in page.text
    assert "Walk on" in r.get("/studies").text
    # a participant gets neither the list entry nor the page
    alice = client_for(world.alice)
    assert alice.get(url).status_code == 404
    assert alice.get("/studies/new").status_code == 403


@pytest.fixture
def setup(world):
    with dbmod.transaction() as s:
        return make_study(s, world)


def _sign_up(anon, setup, name: str, email: str):
    landing = anon.get(f"/study/{setup.token}")
    assert landing.status_code == 200 and "Walk together" in landing.text
    token = form_token(landing.text)
    response = anon.post(f"/study/{setup.token}/signup", data={
        "csrf_token": token, "display_name": name, "email": email, "password": "long enough password",
        "timezone": "Europe/Paris"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.headers["location"]


def test_invitation_link_to_a_circle_without_javascript(anon, setup):
    url = _sign_up(anon, setup, "Nina Nowak", "nina@example.test")
    assert re.fullmatch(r"/enrolments/\d+", url)
    page = anon.get(url)
    token = form_token(page.text)
    assert "Are you 18 or older?" in page.text
    missing = anon.post(f"{url}/screening", data={"csrf_token": token, "q_adult": "yes"})
    assert missing.status_code == 422 and "What is your BMI?" in missing.text
    screened = anon.post(f"{url}/screening", data={"csrf_token": token, "q_adult": "yes", "q_bmi": "29.5",
                                                   "q_sex": "female"}, follow_redirects=False)
    assert screened.status_code == 303
    consent = anon.get(url)
    assert "Consent to take part" in consent.text and "Type your full name" in consent.text
    partial = anon.post(f"{url}/consent", data={"csrf_token": token, "section": ["purpose", "data"],
                                                "typed_name": "Nina Nowak", "document_version": "1.0"})
    assert partial.status_code == 422 and "Leaving" in partial.text
    assert 'value="purpose" checked' in partial.text  # the ticks stay
    wrong = anon.post(f"{url}/consent", data={"csrf_token": token, "section": ["purpose", "data", "leave"],
                                              "typed_name": "Nina", "document_version": "1.0"})
    assert wrong.status_code == 422 and "not the name of your account" in wrong.text
    done = anon.post(f"{url}/consent", data={"csrf_token": token, "section": ["purpose", "data", "leave"],
                                             "typed_name": "nina nowak", "document_version": "1.0"},
                     follow_redirects=False)
    assert done.status_code == 303
    circle_url = done.headers["location"]
    with dbmod.transaction(write=False) as s:
        e = s.scalar(select(Enrolment).join(User, User.id == Enrolment.user_id)
                     .where(User.email == "nina@example.test"))
        assert e.status == EnrolmentStatus.randomised and circle_url == f"/circles/{e.space_id}"
        assert e.space_id in {c.id for c in setup.circles[e.arm_id]}
    assert anon.get(circle_url).status_code == 200
    # the enrolment page now points to the circle and the consent copy
    again = anon.get(url)
    assert "Go to your circle" in again.text and "consent.txt" in again.text
    # the same link again leads back to the same enrolment
    back = anon.post(f"/study/{setup.token}", data={"csrf_token": token}, follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"] == url


def test_ineligible_and_declined_pages(anon, client_for, setup):
    url = _sign_up(anon, setup, "Ivy Ineligible", "ivy@example.test")
    token = form_token(anon.get(url).text)
    anon.post(f"{url}/screening", data={"csrf_token": token, "q_adult": "no", "q_bmi": "30", "q_sex": "male"})
    page = anon.get(url)
    assert "not the right one for you" in page.text and "The study is for adults." in page.text
    other = client_for(None)
    url2 = _sign_up(other, setup, "Dee Decliner", "dee@example.test")
    token2 = form_token(other.get(url2).text)
    other.post(f"{url2}/screening", data={"csrf_token": token2, "q_adult": "yes", "q_bmi": "30", "q_sex": "male"})
    declined = other.post(f"{url2}/consent", data={"csrf_token": token2, "decision": "decline"},
                          follow_redirects=False)
    assert declined.status_code == 303
    assert "You chose not to take part" in other.get(url2).text
    assert count_rows(Enrolment, Enrolment.status == EnrolmentStatus.declined) == 1
    assert count_rows(Enrolment, Enrolment.status == EnrolmentStatus.ineligible) == 1


def test_sign_up_errors_keep_the_form(anon, setup):
    landing = anon.get(f"/study/{setup.token}")
    token = form_token(landing.text)
    bad = anon.post(f"/study/{setup.token}/signup", data={"csrf_token": token, "display_name": "Sam",
                                                          "email": "sam@example.test", "password": "short",
                                                          "timezone": "Europe/Paris"})
    assert bad.status_code == 422 and "at least 10 characters" in bad.text and 'value="sam@example.test"' in bad.text
    assert count_rows(User, User.email == "sam@example.test") == 0 and count_rows(Enrolment) == 0
    assert anon.get("/study/not-a-token").status_code == 404


def test_consent_stands_when_no_circle_is_open_and_placing_is_tried_again(anon, world):
    from peerlift.community.models import Space
    from peerlift.research.models import Consent

    with dbmod.transaction() as s:
        setup = make_study(s, world, slug="closed")
        for circles in setup.circles.values():
            for circle in circles:
                s.get(Space, circle.id).archived_at = dbmod.utcnow()
    url = _sign_up(anon, setup, "Pia Patient", "pia@example.test")
    token = form_token(anon.get(url).text)
    anon.post(f"{url}/screening", data={"csrf_token": token, "q_adult": "yes", "q_bmi": "30", "q_sex": "female"})
    waiting = anon.post(f"{url}/consent", data={"csrf_token": token, "section": ["purpose", "data", "leave"],
                                                "typed_name": "Pia Patient", "document_version": "1.0"})
    assert waiting.status_code == 409 and "Every arm needs an open circle" in waiting.text
    assert "Find my circle" in waiting.text
    assert count_rows(Consent) == 1 and count_rows(Enrolment, Enrolment.status == EnrolmentStatus.consented) == 1
    from peerlift.research.models import Allocation

    assert count_rows(Allocation) == 0
    assert "Find my circle" in anon.get(url).text  # a GET writes nothing
    with dbmod.transaction() as s:
        for circles in setup.circles.values():
            for circle in circles:
                s.get(Space, circle.id).archived_at = None
    placed = anon.post(f"{url}/randomise", data={"csrf_token": token}, follow_redirects=False)
    assert placed.status_code == 303 and placed.headers["location"].startswith("/circles/")
    assert count_rows(Enrolment, Enrolment.status == EnrolmentStatus.randomised) == 1


def test_a_signed_in_person_begins_from_the_link(client_for, world, setup):
    bob = client_for(world.bob)
    landing = bob.get(f"/study/{setup.token}")
    assert "Begin as Bob Baker" in landing.text and "Create my account" not in landing.text
    begun = bob.post(f"/study/{setup.token}", data={"csrf_token": form_token(landing.text)},
                     follow_redirects=False)
    assert begun.status_code == 303 and re.fullmatch(r"/enrolments/\d+", begun.headers["location"])
    assert count_rows(Enrolment, Enrolment.user_id == world.bob.id) == 1
    anon = client_for(None)
    assert "/login?next=/study/" in anon.get(f"/study/{setup.token}").text
    coach = client_for(world.coach)
    refused = coach.post(f"/study/{setup.token}", data={"csrf_token": form_token(coach.get("/profile").text)})
    assert refused.status_code == 403 and count_rows(Enrolment, Enrolment.user_id == world.coach.id) == 0
