"""A consent document states what deleting one's account does to the study's data; the person
reads it before signing, in their copy of the consent, and on the deletion page."""

from __future__ import annotations

import pytest
from markupsafe import escape
from sqlalchemy import select

from peerlift import db as dbmod
from peerlift.identity.models import User
from peerlift.research import service
from peerlift.research.models import ConsentDocument, StudyDesign
from peerlift.settings import get_settings
from tests.conftest import assert_error, count_rows, form_token
from tests.research.helpers import SECTIONS, Setup, consented, make_study


@pytest.fixture
def study(world):
    with dbmod.transaction() as s:
        return make_study(s, world).study


def test_a_document_states_its_rule_or_takes_the_installation_default(client_for, world, study, monkeypatch):
    r = client_for(world.researcher)
    url = f"/api/v1/studies/{study.id}/consent-documents"
    stated = r.post(url, json={"version": "2.0", "title": "C", "sections": SECTIONS, "on_account_deletion": "delete"})
    assert stated.status_code == 201, stated.text
    assert stated.json()["on_account_deletion"] == "delete"
    monkeypatch.setenv("PEERLIFT_DELETION_IN_STUDY", "delete")
    get_settings.cache_clear()
    default = r.post(url, json={"version": "3.0", "title": "C", "sections": SECTIONS})
    assert default.json()["on_account_deletion"] == "delete"
    with dbmod.transaction(write=False) as s:
        assert s.scalar(select(ConsentDocument.on_account_deletion).where(
            ConsentDocument.version == "1.0")) == "keep_pseudonymised"


def test_a_document_written_before_the_rule_existed_follows_the_setting(monkeypatch):
    old = ConsentDocument(version="0.9", title="Old", sections=[], on_account_deletion="")
    assert service.deletion_rule(old) == "keep_pseudonymised"
    monkeypatch.setenv("PEERLIFT_DELETION_IN_STUDY", "delete")
    get_settings.cache_clear()
    assert service.deletion_rule(old) == "delete" and service.deletion_rule(None) == "delete"
    get_settings.cache_clear()


def test_an_unknown_rule_is_refused_and_nothing_is_written(client_for, world, study):
    response = client_for(world.researcher).post(
        f"/api/v1/studies/{study.id}/consent-documents",
        json={"version": "2.0", "title": "C", "sections": SECTIONS, "on_account_deletion": "forget"})
    assert_error(response, 422, field="on_account_deletion")
    assert count_rows(ConsentDocument) == 1
    with dbmod.transaction(write=False) as s:
        assert s.get(StudyDesign, study.id).consent_version == "1.0"


def test_the_study_page_sets_it_and_the_person_reads_it_before_signing(client_for, world, study):
    r = client_for(world.researcher)
    page = r.get(f"/studies/{study.id}")
    assert 'name="on_account_deletion"' in page.text
    added = r.post(f"/studies/{study.id}/consent-documents", data={
        "csrf_token": form_token(page.text), "version": "2.0", "title": "Consent", "on_account_deletion": "delete",
        "sections": "Purpose\nWe compare two programmes."}, follow_redirects=False)
    assert added.status_code == 303
    assert "On account deletion: <strong>delete</strong>" in r.get(f"/studies/{study.id}").text
    with dbmod.transaction() as s:
        token, _inv = service.create_invitation(s, s.get(User, world.researcher.id), study)
        enrolment = service.start_enrolment(s, s.get(User, world.alice.id), token)
        service.screen(s, s.get(User, world.alice.id), enrolment, {"adult": "yes", "bmi": 30, "sex": "male"})
        enrolment_id = enrolment.id
    alice = client_for(world.alice)
    rule_text = str(escape(service.deletion_rule_text("delete")))
    assert rule_text in alice.get(f"/enrolments/{enrolment_id}").text


def test_the_signed_copy_says_it(client_for, world, study):
    with dbmod.transaction() as s:
        token, _inv = service.create_invitation(s, s.get(User, world.researcher.id), study)
        enrolment = consented(s, Setup(study, [], {}, token), s.get(User, world.alice.id))
        enrolment_id = enrolment.id
    copy = client_for(world.alice).get(f"/enrolments/{enrolment_id}/consent.txt").text
    assert "If you delete your peerlift account" in copy
    assert service.deletion_rule_text("keep_pseudonymised") in copy
