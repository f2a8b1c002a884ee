"""Deleting an account: sign-in ends, the person's name and address are gone, their writing is
removed or kept as "Deleted member" by the stated rule (a study's consent rule in its circles),
safety records stay, and the audit trail says who deleted what."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from markupsafe import escape
from sqlalchemy import or_, select

from peerlift import db as dbmod
from peerlift.community.models import CircleRole, Comment, Conversation, Membership, Message, Post, Reaction
from peerlift.events import Event
from peerlift.identity.models import AuditEntry, AuthSession, User
from peerlift.notify.models import Kind, Notification
from peerlift.research import service as research
from peerlift.research.models import Consent, Enrolment, EnrolmentStatus
from peerlift.safety.models import Escalation, EscalationStatus, EscalationStep
from peerlift.settings import get_settings
from peerlift.tracking.models import Entry, QuestionnaireResponse
from tests.conftest import PASSWORD, assert_error, count_rows, form_token, post
from tests.factories import add_member, create_circle
from tests.research.helpers import SECTIONS, consented, make_study

CRISIS = "I've saved up all my tablets and tonight I'm going to take them. Goodbye everyone."


def _outside_circle(world):
    """A circle in no study, with Alice, Bob and the coach."""
    with dbmod.transaction() as s:
        circle = create_circle(s, world.admin, "Neighbours")
        for person, role in ((world.coach, CircleRole.facilitator), (world.alice, CircleRole.member),
                             (world.bob, CircleRole.member)):
            add_member(s, circle, s.get(User, person.id), role)
        return SimpleNamespace(id=circle.id)


def _user(user_id: int) -> User:
    with dbmod.transaction(write=False) as s:
        return s.get(User, user_id)


def _deleted_audit() -> list[AuditEntry]:
    with dbmod.transaction(write=False) as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == "account.deleted")))


def _delete(client, password=PASSWORD, confirm=True):
    return client.post("/api/v1/me/deletion", json={"password": password, "confirm": confirm})


def test_wrong_password_or_no_confirmation_changes_nothing(world, client_for):
    circle = _outside_circle(world)
    alice = client_for(world.alice)
    assert post(alice, circle, "Still here.").status_code == 201
    assert_error(_delete(alice, password="not my password"), 401, "invalid_credentials", "password")
    assert_error(_delete(alice, confirm=False), 422, "invalid", "confirm")
    assert_error(alice.post("/api/v1/me/deletion", json={"confirm": True}), 422, "invalid", "password")
    page = alice.get("/profile/delete")
    refused = alice.post("/profile/delete", data={"csrf_token": form_token(page.text), "password": "wrong password",
                                                  "confirm": "true"})
    assert refused.status_code == 401 and "The password is not right." in refused.text
    person = _user(world.alice.id)
    assert person.is_active and person.deleted_at is None and person.display_name == "Alice Archer"
    assert person.email == world.alice.email
    assert count_rows(Post, Post.author_id == world.alice.id, Post.deleted_at.is_(None)) == 1
    assert count_rows(Membership, Membership.user_id == world.alice.id) == 2
    assert _deleted_audit() == []
    assert alice.get("/api/v1/me").status_code == 200  # still signed in


def test_deletion_outside_studies_removes_the_writing_and_ends_sign_in(world, client_for):
    circle = _outside_circle(world)
    alice, bob, coach = client_for(world.alice), client_for(world.bob), client_for(world.coach)
    other_device = client_for(world.alice)
    mine = post(alice, circle, "My garden is growing.").json()
    theirs = post(bob, circle, "Mine too.").json()
    assert alice.post(f"/api/v1/posts/{theirs['id']}/comments", json={"body": "Photos please!"}).status_code == 201
    assert alice.put(f"/api/v1/posts/{theirs['id']}/reactions/like").status_code == 200
    assert bob.post(f"/api/v1/posts/{mine['id']}/comments", json={"body": "Lovely."}).status_code == 201
    conversation = alice.post("/api/v1/conversations", json={"user_id": world.coach.id}).json()
    alice.post(f"/api/v1/conversations/{conversation['id']}/messages", json={"body": "A private question."})
    coach.post(f"/api/v1/conversations/{conversation['id']}/messages", json={"body": "A private answer."})
    assert alice.post("/api/v1/tracking/entries", json={"measure": "steps", "value": 4000}).status_code == 201

    plan = alice.get("/api/v1/me/deletion").json()
    assert plan["outside_studies_rule"] == "delete" and plan["person_records_kept"] is False
    assert [s["title"] for s in plan["studies"]] == ["A test trial"]  # her usual circle is in the trial
    done = _delete(alice)
    assert done.status_code == 200, done.text
    assert 'peerlift_session=""' in done.headers["set-cookie"]
    removed = done.json()["removed"]
    assert removed["posts"] == 1 and removed["comments"] == 1 and removed["direct_messages"] == 1

    # sign-in is over, on every device, and the old address no longer signs in
    assert_error(other_device.get("/api/v1/me"), 401)
    assert_error(client_for(None).post("/api/v1/auth/login", json={"email": world.alice.email,
                                                                   "password": PASSWORD}), 401)
    assert count_rows(AuthSession, AuthSession.user_id == world.alice.id) == 0
    person = _user(world.alice.id)
    assert (person.display_name, person.pronouns, person.bio, person.is_active) == ("Deleted member", "", "", False)
    assert world.alice.email not in person.email and person.deleted_at is not None
    assert "Alice" not in person.handle

    # her writing outside studies is gone; others' stays, and counts only what is left
    feed = bob.get(f"/api/v1/circles/{circle.id}/posts").json()["posts"]
    assert [p["id"] for p in feed] == [theirs["id"]] and feed[0]["comment_count"] == 0
    with dbmod.transaction(write=False) as s:
        gone = s.get(Post, mine["id"])
        assert gone.deleted_at is not None and gone.body == "" and gone.body_html == ""
        assert [c.body for c in s.scalars(select(Comment).where(Comment.author_id == world.alice.id))] == [""]
        assert s.scalar(select(Reaction).where(Reaction.user_id == world.alice.id)) is None
        assert [m.body for m in s.scalars(select(Message).where(
            Message.conversation_id == conversation["id"]))] == ["A private answer."]
        assert s.get(Conversation, conversation["id"]).last_message_id > 0
    assert count_rows(Entry, Entry.user_id == world.alice.id) == 0
    # nor does the engagement record keep what she logged (its payload had the value)
    assert count_rows(Event, Event.actor_id == world.alice.id, Event.kind == "tracking.logged") == 0
    assert count_rows(Event, Event.actor_id == world.alice.id, Event.space_id == circle.id) == 0
    assert count_rows(Notification, Notification.user_id == world.alice.id) == 0
    assert count_rows(Membership, Membership.user_id == world.alice.id) == 0
    # the coach's inbox shows the conversation with "Deleted member"
    assert coach.get("/api/v1/conversations").json()[0]["other"]["display_name"] == "Deleted member"

    [entry] = _deleted_audit()
    assert entry.actor_id == world.alice.id and entry.object_id == world.alice.id
    detail = json.loads(entry.detail)
    assert detail["on_request"] is False and detail["removed"]["posts"] == 1
    assert detail["outside_studies"] == "delete"


def test_keeping_writing_outside_studies_shows_deleted_member(world, client_for, monkeypatch):
    monkeypatch.setenv("PEERLIFT_DELETION_WRITING", "keep_pseudonymised")
    get_settings.cache_clear()
    circle = _outside_circle(world)
    alice, bob = client_for(world.alice), client_for(world.bob)
    mine = post(alice, circle, "Kept after I go.").json()
    assert "stay where they are" in alice.get("/profile/delete").text
    assert _delete(alice).status_code == 200
    [kept] = bob.get(f"/api/v1/circles/{circle.id}/posts").json()["posts"]
    assert kept["id"] == mine["id"] and kept["body"] == "Kept after I go."
    assert kept["author"]["display_name"] == "Deleted member"


def _randomised(world, rule: str):
    """A person randomised into a study whose consent says ``rule`` on account deletion."""
    with dbmod.transaction() as s:
        setup = make_study(s, world, slug=f"walk-{rule.replace('_', '-')}")
        research.add_consent_document(s, world.researcher, setup.study, version="2.0", title="Consent to take part",
                                      sections=SECTIONS, on_account_deletion=rule)
        person = s.get(User, world.alice.id)
        enrolment = consented(s, setup, person)
        research.randomise(s, person, enrolment)
        return enrolment.id, enrolment.space_id


@pytest.mark.parametrize("rule", ["keep_pseudonymised", "delete"])
def test_in_a_study_the_consent_rule_decides(world, client_for, rule):
    enrolment_id, circle_id = _randomised(world, rule)
    alice = client_for(world.alice)
    mine = post(alice, SimpleNamespace(id=circle_id), "Day one of the study walk.")
    assert mine.status_code == 201, mine.text
    assert alice.post("/api/v1/tracking/entries", json={"measure": "weight", "value": 90}).status_code == 201

    page = alice.get("/profile/delete")
    assert f'data-rule="{rule}"' in page.text and "consent version 2.0" in page.text
    assert str(escape(research.deletion_rule_text(rule))) in page.text
    plan = alice.get("/api/v1/me/deletion").json()
    walk = next(s for s in plan["studies"] if s["consent_version"] == "2.0")
    assert walk["rule"] == rule and walk["enrolled"] is True
    assert plan["person_records_kept"] is (rule == "keep_pseudonymised")

    response = alice.post("/profile/delete", data={"csrf_token": form_token(page.text), "password": PASSWORD,
                                                   "confirm": "true"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/account-deleted"
    with dbmod.transaction(write=False) as s:
        written = s.get(Post, mine.json()["id"])
        enrolment = s.get(Enrolment, enrolment_id)
        signed = s.scalar(select(Consent).where(Consent.enrolment_id == enrolment_id))
        entries = s.scalar(select(Entry).where(Entry.user_id == world.alice.id))
        assert enrolment.status == EnrolmentStatus.withdrawn and enrolment.withdrawn_at is not None
        if rule == "keep_pseudonymised":
            assert written.deleted_at is None and written.body == "Day one of the study walk."
            assert enrolment.user_id == world.alice.id and enrolment.withdrawal_data == "keep"
            assert signed is not None and signed.typed_name == "" and signed.document_version == "2.0"
            assert entries is not None
            assert s.scalar(select(Event).where(Event.actor_id == world.alice.id,
                                                Event.kind == "tracking.logged")) is not None
        else:
            assert written.deleted_at is not None and written.body == ""
            assert enrolment.user_id is None and enrolment.withdrawal_data == "delete"
            assert enrolment.screening_answers == {}
            assert signed is None and entries is None
            assert s.scalar(select(Event).where(Event.actor_id == world.alice.id, or_(
                Event.kind == "tracking.logged", Event.space_id == circle_id))) is None
    [entry] = _deleted_audit()
    assert json.loads(entry.detail)["studies"][str(enrolment.study_id)] == rule


def test_a_crisis_escalation_and_what_it_is_about_stay(world, client_for, monkeypatch):
    monkeypatch.setenv("PEERLIFT_DELETION_IN_STUDY", "delete")  # the trial states no rule of its own
    get_settings.cache_clear()
    bob = client_for(world.bob)
    crisis = post(bob, world.circle, CRISIS).json()
    ordinary = post(bob, world.circle, "Walked the dog.").json()
    with dbmod.transaction(write=False) as s:
        escalation = s.scalar(select(Escalation).where(Escalation.subject_id == world.bob.id))
    assert escalation is not None and escalation.status == EscalationStatus.open
    assert "safety alert" in bob.get("/profile/delete").text
    assert _delete(bob).status_code == 200

    with dbmod.transaction(write=False) as s:
        kept = s.get(Escalation, escalation.id)
        assert kept.status == EscalationStatus.open and kept.subject_id == world.bob.id
        steps = [st.kind for st in s.scalars(select(EscalationStep).where(
            EscalationStep.escalation_id == escalation.id).order_by(EscalationStep.id))]
        assert steps[-1] == "account_deleted"
        held = s.get(Post, crisis["id"])
        assert held.body == CRISIS and held.deleted_at is not None   # kept for the clinician, out of the feed
        assert s.get(Post, ordinary["id"]).body == ""                # the rule applies to the rest
        told = s.scalars(select(Notification).where(Notification.user_id == world.clinician.id,
                                                    Notification.kind == Kind.escalation)).all()
        assert any("deleted their account" in n.text for n in told)
    seen = client_for(world.clinician).get(f"/api/v1/escalations/{escalation.id}")
    assert seen.status_code == 200, seen.text
    view = seen.json()
    assert view["subject_name"] == "Deleted member" and view["text"] == CRISIS and view["status"] == "open"
    assert view["steps"][-1]["kind"] == "account_deleted"


def test_an_admin_deletes_an_account_on_request(world, client_for):
    admin, bob = client_for(world.admin), client_for(world.bob)
    url = f"/api/v1/users/{world.alice.id}/deletion"
    assert_error(bob.get(url), 403)
    assert_error(bob.post(url, json={"password": PASSWORD, "confirm": True, "reason": "x"}), 403)
    assert admin.get(url).json()["user_id"] == world.alice.id
    assert_error(admin.post(url, json={"password": PASSWORD, "confirm": True, "reason": "  "}), 422, field="reason")
    assert_error(admin.post(url, json={"password": "alice's, not mine", "confirm": True, "reason": "ticket 12"}),
                 401, "invalid_credentials")
    assert _user(world.alice.id).is_active
    done = admin.post(url, json={"password": PASSWORD, "confirm": True, "reason": "Emailed request, ticket 12"})
    assert done.status_code == 200, done.text
    assert _user(world.alice.id).display_name == "Deleted member"
    [entry] = _deleted_audit()
    assert entry.actor_id == world.admin.id and entry.object_id == world.alice.id
    assert json.loads(entry.detail)["reason"] == "Emailed request, ticket 12"
    assert_error(admin.get(url), 404)                        # deleted already
    assert_error(admin.get("/api/v1/users/999999/deletion"), 404)
    assert admin.get("/api/v1/me").status_code == 200        # the admin stays signed in


def test_the_admin_page_deletes_on_request(world, client_for):
    admin = client_for(world.admin)
    bob = client_for(world.bob)
    assert bob.get("/admin/accounts").status_code == 403
    refused = bob.post("/admin/accounts", data={"csrf_token": form_token(bob.get("/profile").text),
                                                "email": world.alice.email})
    assert refused.status_code == 403 and "may not delete other people" in refused.text
    token = form_token(admin.get("/admin/accounts").text)
    found = admin.post("/admin/accounts", data={"csrf_token": token, "email": world.bob.email.upper()})
    assert found.status_code == 200 and "Bob Baker" in found.text
    missing = admin.post("/admin/accounts", data={"csrf_token": token, "email": "nobody@example.test"})
    assert missing.status_code == 404 and "No account with that email address." in missing.text
    wrong = admin.post(f"/admin/accounts/{world.bob.id}/delete",
                       data={"csrf_token": token, "password": "wrong password", "reason": "Phone call",
                             "confirm": "true"})
    assert wrong.status_code == 401 and "Bob Baker" in wrong.text and _user(world.bob.id).is_active
    done = admin.post(f"/admin/accounts/{world.bob.id}/delete",
                      data={"csrf_token": token, "password": PASSWORD, "reason": "Phone call", "confirm": "true"},
                      follow_redirects=False)
    assert done.status_code == 303 and _user(world.bob.id).deleted_at is not None


def test_the_last_admin_cannot_delete_their_account(world, client_for):
    admin = client_for(world.admin)
    assert_error(_delete(admin), 409, "last_admin")
    assert _user(world.admin.id).is_active


def test_questionnaires_go_with_the_account_outside_studies(world, client_for):
    coach, carol = client_for(world.coach), client_for(world.carol)
    sent = coach.post(f"/api/v1/circles/{world.other_circle.id}/questionnaires",
                      json={"instrument": "phq9", "user_id": world.carol.id}).json()
    assert carol.post(f"/api/v1/questionnaires/requests/{sent[0]['id']}/response",
                      json={"answers": [0] * 9}).status_code == 201
    assert _delete(carol).status_code == 200
    assert count_rows(QuestionnaireResponse, QuestionnaireResponse.user_id == world.carol.id) == 0


def test_the_authenticator_key_and_recovery_codes_go_with_the_account(world, client_for):
    import pyotp

    from peerlift.identity.models import RecoveryCode, TwoFactor

    alice = client_for(world.alice)
    secret = alice.post("/api/v1/me/two-factor/setup").json()["secret"]
    codes = alice.post("/api/v1/me/two-factor/confirm", json={"code": pyotp.TOTP(secret).now()})
    assert codes.status_code == 200, codes.text
    assert count_rows(TwoFactor, TwoFactor.user_id == world.alice.id) == 1
    assert count_rows(RecoveryCode, RecoveryCode.user_id == world.alice.id) == 10
    assert _delete(alice).status_code == 200
    assert count_rows(TwoFactor, TwoFactor.user_id == world.alice.id) == 0
    assert count_rows(RecoveryCode, RecoveryCode.user_id == world.alice.id) == 0
    assert _user(world.alice.id).two_factor_enabled_at is None
