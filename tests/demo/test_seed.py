"""The demo study seeds once, believably, through the product's own services."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from peerlift import db as dbmod
from peerlift.community.models import Comment, Conversation, Membership, Message, Poll, PollVote, Post, Reaction, Space
from peerlift.demo import seed as demo
from peerlift.events import Event
from peerlift.identity.models import User
from peerlift.research.models import Arm, Study


def test_demo_seed(sqlite_database, monkeypatch):
    with dbmod.transaction() as s:
        assert demo.seed(s) is True
    with dbmod.transaction(write=False) as s:
        study = s.scalar(select(Study).where(Study.slug == "demo"))
        assert study is not None and s.scalar(select(func.count(Arm.id))) == 2
        circles = s.scalars(select(Space).where(Space.kind == "circle").order_by(Space.id)).all()
        assert len(circles) == 2 and all(c.arm_id for c in circles)
        members = lambda circle: set(s.scalars(  # noqa: E731
            select(User.email).join(Membership, Membership.user_id == User.id)
            .where(Membership.space_id == circle.id, Membership.role.in_(["member", "peer_supporter"]))))
        assert members(circles[0]) == {f"p{n:02d}@demo.test" for n in range(1, 13)}
        assert members(circles[1]) == {f"p{n:02d}@demo.test" for n in range(13, 25)}
        for email in ("coach@demo.test", "clinician@demo.test", "researcher@demo.test", "admin@demo.test"):
            assert s.scalar(select(User.id).where(User.email == email))
        assert s.scalar(select(func.count(Post.id))) >= 30
        assert s.scalar(select(func.count(Comment.id))) >= 60
        assert s.scalar(select(func.count(Reaction.id))) >= 100
        assert s.scalar(select(func.count(Poll.id))) >= 1 and s.scalar(select(func.count(PollVote.id))) >= 5
        assert s.scalar(select(func.count(Conversation.id))) >= 5 and s.scalar(select(func.count(Message.id))) >= 10
        first, last = s.execute(select(func.min(Post.created_at), func.max(Post.created_at))).one()
        span = (last - first).days
        assert 10 <= span <= 14, span
        assert last <= dbmod.utcnow()
        assert s.scalar(select(func.count(Event.id))) > 400  # every write was measured
        from peerlift.tracking.models import Entry, QuestionnaireResponse

        p01 = s.scalar(select(User).where(User.email == "p01@demo.test"))
        weights = s.scalars(select(Entry).where(Entry.user_id == p01.id, Entry.measure_key == "weight")).all()
        assert len(weights) >= 5 and all(e.local_date <= dbmod.utcnow().date() + dt.timedelta(days=1) for e in weights)
        kinds = s.execute(select(QuestionnaireResponse.instrument_key, func.count()).where(
            QuestionnaireResponse.user_id == p01.id).group_by(QuestionnaireResponse.instrument_key)).all()
        assert dict(kinds) == {"phq9": 2, "gad7": 2}
        _check_enrolment(s, study)
        _check_open_community(s)
    with dbmod.transaction() as s:
        assert demo.seed(s) is False  # running it again reuses what exists


def _check_open_community(s):
    """Beside the trial, an open community: members under community names, a verified nurse whose
    professional answer the asker accepted, experience reports counted per treatment, helpful votes, a
    guide, and none of its ordinary writing held or escalated."""
    from peerlift.experience.models import ExperienceReport, GuideEntry, HelpfulVote
    from peerlift.experience.queries import aggregates
    from peerlift.professionals.models import Professional
    from peerlift.safety.models import Escalation

    space = s.scalar(select(Space).where(Space.kind == "community"))
    assert space is not None and space.arm_id is None
    nurse = s.scalar(select(User).where(User.email == "nurse@demo.test"))
    assert s.scalar(select(Professional.status).where(Professional.user_id == nurse.id)) == "verified"
    question = s.scalar(select(Post).where(Post.space_id == space.id, Post.for_professionals.is_(True)))
    accepted = s.get(Comment, question.accepted_comment_id)
    assert accepted.author_id == nurse.id and accepted.as_professional
    assert s.scalar(select(func.count(ExperienceReport.id)).where(ExperienceReport.space_id == space.id)) == 5
    assert s.scalar(select(func.count(HelpfulVote.id))) >= 8
    assert s.scalar(select(GuideEntry.target_id).where(GuideEntry.space_id == space.id)) == accepted.id
    members = s.scalars(select(User).join(Membership, Membership.user_id == User.id)
                        .where(Membership.space_id == space.id)).all()
    assert all(u.pseudonym for u in members)
    assert s.scalar(select(func.count(Escalation.id)).where(Escalation.space_id == space.id)) == 0
    assert s.scalar(select(func.count(Post.id)).where(Post.space_id == space.id,
                                                      Post.visibility != "visible")) == 0
    by_treatment = {row.treatment_key: row for row in aggregates(s, [space.id])}
    assert by_treatment["A10BA02"].reports == 3 and by_treatment["A10BA02"].side_effects[0].term == "nausea"


def _check_enrolment(s, study):
    """The demo study has a design, a consent document, screening questions, and people in every
    status of enrolment; each randomised person signed, was allocated, and sits in their arm's circle."""
    from peerlift.research import randomise as sequences
    from peerlift.research.models import (Allocation, Consent, ConsentDocument, Enrolment, EnrolmentStatus,
                                          Randomisation, StudyDesign, StudyMember)

    design = s.get(StudyDesign, study.id)
    assert design.scheme == Randomisation.blocks and design.block_sizes == [2, 4] and len(design.eligibility) == 3
    document = s.scalar(select(ConsentDocument).where(ConsentDocument.study_id == study.id))
    assert document.version == design.consent_version == "1.2" and len(document.sections) == 4
    assert s.scalar(select(func.count(StudyMember.id)).where(StudyMember.study_id == study.id)) == 3
    counts = dict(s.execute(select(Enrolment.status, func.count()).where(Enrolment.study_id == study.id)
                            .group_by(Enrolment.status)).all())
    assert counts == {EnrolmentStatus.randomised: 24, EnrolmentStatus.ineligible: 3, EnrolmentStatus.declined: 1,
                      EnrolmentStatus.withdrawn: 1, EnrolmentStatus.consented: 1, EnrolmentStatus.eligible: 1,
                      EnrolmentStatus.invited: 1}
    reasons = set(s.scalars(select(Enrolment.exclusion_reason).where(Enrolment.status == EnrolmentStatus.ineligible)))
    assert len(reasons) == 3 and all(reasons)
    withdrawn = s.scalar(select(Enrolment).where(Enrolment.status == EnrolmentStatus.withdrawn))
    assert withdrawn.withdrawal_reason and withdrawn.withdrawal_data == "keep"
    assert s.scalar(select(func.count(Membership.id)).where(Membership.user_id == withdrawn.user_id)) == 0
    allocations = s.scalars(select(Allocation).where(Allocation.study_id == study.id)
                            .order_by(Allocation.sequence_index)).all()
    assert [a.sequence_index for a in allocations] == list(range(25))
    arm_ids = sorted(s.scalars(select(Arm.id).where(Arm.study_id == study.id)))
    assert [a.arm_id for a in allocations] == sequences.sequence(Randomisation.blocks, design.concealed_seed, "", 25,
                                                                 arm_ids, [2, 4])
    for e in s.scalars(select(Enrolment).where(Enrolment.status == EnrolmentStatus.randomised)):
        assert s.get(Space, e.space_id).arm_id == e.arm_id
        assert s.scalar(select(Consent.document_version).where(Consent.enrolment_id == e.id)) == "1.2"


def test_demo_logins_work(sqlite_database):
    from fastapi.testclient import TestClient

    from peerlift.app import create_app

    with dbmod.transaction() as s:
        demo.seed(s)
    client = TestClient(create_app())
    for email, _role in demo.logins():
        response = client.post("/api/v1/auth/login", json={"email": email, "password": demo.PASSWORD})
        assert response.status_code == 200, email
    circles = client.get("/api/v1/circles")
    assert circles.status_code == 200


def test_demo_command_lets_the_printed_logins_sign_in_with_the_password_alone(monkeypatch):
    """`peerlift demo` requires two-factor sign-in of no role, unless PEERLIFT_TWO_FACTOR_ROLES is set."""
    from typer.testing import CliRunner

    from peerlift import cli
    from peerlift.settings import get_settings

    served: list[frozenset] = []
    monkeypatch.setattr(cli, "migrate", lambda: None)
    monkeypatch.setattr(cli, "seed", lambda: None)
    monkeypatch.setattr(cli, "serve", lambda **_: served.append(get_settings().two_factor_role_set))
    for name in ("PEERLIFT_TWO_FACTOR_ROLES", "PEERLIFT_BASE_URL"):
        monkeypatch.setenv(name, "restored after the test")
        monkeypatch.delenv(name)
    get_settings.cache_clear()
    result = CliRunner().invoke(cli.app, ["demo", "--port", "8765"])
    assert result.exit_code == 0, result.output
    assert served == [frozenset()] and "Two-factor sign-in is optional" in result.output

    monkeypatch.setenv("PEERLIFT_TWO_FACTOR_ROLES", "admin")
    get_settings.cache_clear()
    result = CliRunner().invoke(cli.app, ["demo", "--port", "8765"])
    assert result.exit_code == 0 and served[-1] == {"admin"} and "optional" not in result.output
    get_settings.cache_clear()
