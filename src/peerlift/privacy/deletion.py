"""Deleting an account, by the person (with their password) or by an admin on their request.

What happens, in one unit of work:

* Sign-in ends: the account is deactivated, every session and password-reset link goes.
* The account row stays as a tombstone named "Deleted member": email address, name, pronouns, bio
  and password are erased, so whatever is kept is pseudonymised.
* Writing in circles (posts, comments, polls, reactions, votes) follows a rule per circle: in a
  study's circle, the rule of the study's consent document the person signed (or the study's
  current one; else ``PEERLIFT_DELETION_IN_STUDY``); elsewhere ``PEERLIFT_DELETION_WRITING``.
  ``delete`` blanks and hides it, ``keep_pseudonymised`` leaves it under "Deleted member".
* Person-level records (tracking entries, goals, questionnaires, cue decisions) are kept only when
  a study the person consented to keeps data on deletion; direct messages they sent are kept then,
  or when ``PEERLIFT_DELETION_WRITING`` keeps writing. Engagement events go with what they record;
  the others stay pseudonymous until retention.
* Enrolments: under ``keep_pseudonymised`` the enrolment ends (withdrawn, data kept) and the
  signed consent loses the typed name; under ``delete`` the consent goes and the enrolment stays
  only as a count (detached from the account, answers cleared, export leaves it out).
* Safety records stay: crisis escalations (an unresolved one gets a step in its timeline and its
  clinicians are told), the writing an escalation is about (hidden from the circle, kept for the
  clinician), triage records, review items, flags and moderation actions.
* Notifications, notification settings, memberships, study-team places, inbox cards and what the
  programme planned for the person go. The audit trail records who deleted the account and what
  was removed; it is never changed.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, or_, select, union, update
from sqlalchemy.orm import Session

from peerlift.community.models import (
    Comment,
    CommentRevision,
    Conversation,
    Membership,
    Mention,
    Message,
    Poll,
    PollVote,
    Post,
    PostRevision,
    Reaction,
    Space,
)
from peerlift.db import utcnow
from peerlift.errors import Conflict, InvalidInput
from peerlift.events import Audience, publish
from peerlift.identity import service as identity
from peerlift.identity.models import (
    AuthSession,
    PasswordReset,
    RecoveryCode,
    Role,
    TwoFactor,
    TwoFactorChallenge,
    User,
)
from peerlift.experience.models import ExperienceReport, HelpfulVote
from peerlift.research.models import Arm, Consent, ConsentDocument, Enrolment, EnrolmentStatus, Study, StudyMember
from peerlift.research import service as research
from peerlift.settings import get_settings

DELETED_NAME = "Deleted member"
KEEP, DELETE = "keep_pseudonymised", "delete"
OUTSIDE_RULES = {
    DELETE: "Your posts, comments, reactions, poll votes and direct messages are deleted.",
    KEEP: "Your posts, comments and direct messages stay where they are, shown as written by "
          "\u201cDeleted member\u201d; nobody can tell they were yours.",
}
# For a study the person never signed a consent of (its staff, or people placed in its circles by hand),
# the rule reaches only their writing in its circles.
WRITING_ONLY = {
    KEEP: "What you wrote in the study's circles stays there under \u201cDeleted member\u201d, without your name.",
    DELETE: "What you wrote in the study's circles is deleted.",
}
ACTIVE = (EnrolmentStatus.invited, EnrolmentStatus.eligible, EnrolmentStatus.consented, EnrolmentStatus.randomised)


class LastAdmin(Conflict):
    code = "last_admin"


@dataclass
class StudyRule:
    study_id: int
    title: str
    rule: str
    text: str
    document_version: str | None  # the consent version the person signed, if they signed one
    enrolled: bool


@dataclass
class DeletionPlan:
    """What deleting this account will do, shown before the person confirms."""

    user_id: int
    studies: list[StudyRule]
    outside_rule: str
    outside_text: str
    keeps_person_data: bool           # a study the person consented to keeps data on deletion
    messages_kept: bool
    unresolved_escalations: int
    counts: dict[str, int] = field(default_factory=dict)

    def rule_of_study(self, study_id: int | None) -> str:
        if study_id is None:
            return self.outside_rule
        for s in self.studies:
            if s.study_id == study_id:
                return s.rule
        return get_settings().deletion_in_study


# --- the plan ------------------------------------------------------------------------------------

def _spaces_touched(session: Session, user: User) -> set[int]:
    """The circles where the person wrote, reacted or voted."""
    posts = select(Post.space_id).where(Post.author_id == user.id)
    comments = select(Post.space_id).join(Comment, Comment.post_id == Post.id).where(Comment.author_id == user.id)
    post_reactions = select(Post.space_id).join(Reaction, Reaction.post_id == Post.id).where(
        Reaction.user_id == user.id)
    comment_reactions = select(Post.space_id).join(Comment, Comment.post_id == Post.id).join(
        Reaction, Reaction.comment_id == Comment.id).where(Reaction.user_id == user.id)
    votes = select(Post.space_id).join(Poll, Poll.post_id == Post.id).join(PollVote, PollVote.poll_id == Poll.id) \
        .where(PollVote.user_id == user.id)
    reports = select(ExperienceReport.space_id).where(ExperienceReport.author_id == user.id)
    return set(session.scalars(union(posts, comments, post_reactions, comment_reactions, votes, reports)))


def _study_rules(session: Session, user: User) -> list[StudyRule]:
    """Every study the person is part of: enrolled, in one of its circles, or having written, reacted
    or voted there."""
    spaces = _spaces_touched(session, user) | set(session.scalars(
        select(Membership.space_id).where(Membership.user_id == user.id)))
    through_circles = set(session.scalars(select(Arm.study_id).join(Space, Space.arm_id == Arm.id)
                                          .where(Space.id.in_(spaces or {0}))))
    enrolments = {e.study_id: e for e in session.scalars(select(Enrolment).where(Enrolment.user_id == user.id))}
    signed = {enrolment_id: document for enrolment_id, document in session.execute(
        select(Consent.enrolment_id, ConsentDocument).join(ConsentDocument, ConsentDocument.id == Consent.document_id)
        .where(Consent.enrolment_id.in_([e.id for e in enrolments.values()] or [0])))}
    rules = []
    for study in session.scalars(select(Study).where(Study.id.in_(through_circles | set(enrolments)))
                                 .order_by(Study.id)):
        enrolment = enrolments.get(study.id)
        signed_document = signed.get(enrolment.id) if enrolment is not None else None
        document = signed_document
        if document is None and research.design_of(session, study) is not None:
            document = research.current_consent_document(session, study)
        rule = research.deletion_rule(document)
        text = research.deletion_rule_text(rule) if signed_document is not None else WRITING_ONLY[rule]
        rules.append(StudyRule(study.id, study.title, rule, text,
                               signed_document.version if signed_document is not None else None,
                               enrolment is not None))
    return rules


def plan(session: Session, user: User) -> DeletionPlan:
    from peerlift.safety.models import Escalation, EscalationStatus
    from peerlift.tracking.models import Entry, QuestionnaireResponse

    studies = _study_rules(session, user)
    outside = get_settings().deletion_writing
    keeps = any(s.rule == KEEP and s.document_version is not None for s in studies)

    def count(model, *where) -> int:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    counts = {
        "posts": count(Post, Post.author_id == user.id, Post.deleted_at.is_(None)),
        "comments": count(Comment, Comment.author_id == user.id, Comment.deleted_at.is_(None)),
        "experience_reports": count(ExperienceReport, ExperienceReport.author_id == user.id,
                                    ExperienceReport.deleted_at.is_(None)),
        "direct_messages": count(Message, Message.sender_id == user.id),
        "tracking_entries": count(Entry, Entry.user_id == user.id),
        "questionnaire_responses": count(QuestionnaireResponse, QuestionnaireResponse.user_id == user.id),
    }
    unresolved = count(Escalation, Escalation.subject_id == user.id, Escalation.status != EscalationStatus.resolved)
    return DeletionPlan(user.id, studies, outside, OUTSIDE_RULES[outside], keeps, keeps or outside == KEEP,
                        unresolved, counts)


# --- the deletion ----------------------------------------------------------------------------------

def delete_account(session: Session, actor: User, user: User, *, password: Any, confirm: Any, reason: Any = "",
                   ip: str = "") -> dict[str, int]:
    """Delete ``user``'s account. ``actor`` is the person themselves or an admin acting on their
    request; either way ``password`` is the actor's own. Returns what was removed, by kind."""
    if confirm is not True:
        raise InvalidInput("Confirm that you have read what happens to the data.", field="confirm")
    if not isinstance(reason, str) or len(reason.strip()) > 1000:
        raise InvalidInput("The reason may have at most 1,000 characters.", field="reason")
    reason = reason.strip()
    on_request = actor.id != user.id
    if on_request and not reason:
        raise InvalidInput("Say whose request this is and how it came (for the audit trail).", field="reason")
    if user.role == Role.admin and user.is_active:
        admins = session.scalar(select(func.count(User.id)).where(User.role == Role.admin, User.is_active.is_(True)))
        if admins <= 1:
            raise LastAdmin("The last admin account cannot be deleted; make another admin first.", field="user_id")
    identity.confirm_password(session, actor, password if isinstance(password, str) else "", ip=ip)

    the_plan = plan(session, user)
    now = utcnow()
    removed: Counter[str] = Counter()
    protected = _escalated_objects(session, user)

    # sign-in ends and the account becomes "Deleted member"
    removed["sessions"] = session.execute(delete(AuthSession).where(AuthSession.user_id == user.id)).rowcount
    session.execute(delete(PasswordReset).where(PasswordReset.user_id == user.id))
    for secret in (TwoFactorChallenge, RecoveryCode, TwoFactor):  # the authenticator's key and its codes
        session.execute(delete(secret).where(secret.user_id == user.id))
    user.two_factor_enabled_at = None
    user.is_active = False
    user.deleted_at = now
    user.email = f"deleted-{user.id}-{secrets.token_hex(8)}@deleted.invalid"
    user.handle = f"deleted-{user.id}"
    user.display_name = DELETED_NAME
    user.pseudonym = None  # the community name goes too
    user.pronouns = user.bio = ""
    user.password_hash = "!deleted"
    session.flush()

    drop, _keep = _circle_rules(session, user, the_plan)
    removed.update(_writing(session, user, drop, protected, now))
    removed.update(_experience(session, user, drop, protected, now))
    removed.update(_events(session, user, the_plan, drop))
    removed.update(_messages(session, user, the_plan, protected))
    removed.update(_person_records(session, user, the_plan, protected))
    removed.update(_enrolments(session, user, the_plan, now))
    removed.update(_places(session, user))
    _escalations(session, actor, user)

    summary = {k: v for k, v in sorted(removed.items()) if v}
    detail = json.dumps({"on_request": on_request, "reason": reason, "removed": summary,
                         "outside_studies": the_plan.outside_rule,
                         "studies": {str(s.study_id): s.rule for s in the_plan.studies}}, sort_keys=True)
    identity.audit(session, actor.id, "account.deleted", "user", user.id, ip=ip, detail=detail)
    publish(session, "account.deleted", Audience(user_id=user.id), actor_id=actor.id, object_type="user",
            object_id=user.id, data={"on_request": on_request})
    return summary


def _escalated_objects(session: Session, user: User) -> set[tuple[str, int]]:
    """Writing that a crisis escalation about the person points at: part of the clinical record."""
    from peerlift.safety.models import Escalation

    return {(t, i) for t, i in session.execute(select(Escalation.object_type, Escalation.object_id)
                                               .where(Escalation.subject_id == user.id))}


def _circle_rules(session: Session, user: User, the_plan: DeletionPlan) -> tuple[list[int], list[int]]:
    """The circles the person wrote, reacted or voted in, split into (delete there, keep there)."""
    spaces = _spaces_touched(session, user)
    study_of = dict(session.execute(select(Space.id, Arm.study_id).join(Arm, Arm.id == Space.arm_id)
                                    .where(Space.id.in_(spaces or {0}))).all())
    drop = sorted(s for s in spaces if the_plan.rule_of_study(study_of.get(s)) == DELETE)
    return drop, sorted(spaces - set(drop))


def _writing(session: Session, user: User, drop: list[int], protected: set, now) -> Counter:
    """Blank and hide the person's writing in the circles where it is deleted (the writing a crisis
    escalation is about only leaves the circle's sight), and remove their reactions and votes there."""
    removed: Counter[str] = Counter()
    session.execute(delete(Mention).where(Mention.user_id == user.id))
    if not drop:
        return removed
    post_ids = list(session.scalars(select(Post.id).where(Post.author_id == user.id, Post.space_id.in_(drop))))
    comment_ids = list(session.scalars(select(Comment.id).join(Post, Post.id == Comment.post_id).where(
        Comment.author_id == user.id, Post.space_id.in_(drop))))
    kept_posts = [i for i in post_ids if ("post", i) in protected]
    kept_comments = [i for i in comment_ids if ("comment", i) in protected]
    blank_posts = sorted(set(post_ids) - set(kept_posts))
    blank_comments = sorted(set(comment_ids) - set(kept_comments))
    live_counts = session.execute(select(Comment.post_id, func.count()).where(
        Comment.id.in_(comment_ids or [0]), Comment.deleted_at.is_(None)).group_by(Comment.post_id)).all()
    removed["posts"] = len(post_ids)
    removed["comments"] = len(comment_ids)
    session.execute(delete(PostRevision).where(PostRevision.post_id.in_(blank_posts or [0])))
    session.execute(delete(CommentRevision).where(CommentRevision.comment_id.in_(blank_comments or [0])))
    removed["polls"] = session.execute(delete(Poll).where(Poll.post_id.in_(blank_posts or [0]))).rowcount
    session.execute(update(Post).where(Post.id.in_(blank_posts or [0])).values(
        body="", body_html="", deleted_at=func.coalesce(Post.deleted_at, now), pinned_at=None)
        .execution_options(synchronize_session=False))
    session.execute(update(Comment).where(Comment.id.in_(blank_comments or [0])).values(
        body="", body_html="", deleted_at=func.coalesce(Comment.deleted_at, now))
        .execution_options(synchronize_session=False))
    session.execute(update(Post).where(Post.accepted_comment_id.in_(comment_ids or [0])).values(
        accepted_comment_id=None).execution_options(synchronize_session=False))
    # escalated writing: out of the circle's sight, kept for the clinician
    session.execute(update(Post).where(Post.id.in_(kept_posts or [0])).values(
        deleted_at=func.coalesce(Post.deleted_at, now), pinned_at=None).execution_options(synchronize_session=False))
    session.execute(update(Comment).where(Comment.id.in_(kept_comments or [0])).values(
        deleted_at=func.coalesce(Comment.deleted_at, now)).execution_options(synchronize_session=False))
    for post_id, n in live_counts:  # other people's posts count only the comments still there
        session.execute(update(Post).where(Post.id == post_id, Post.comment_count >= n)
                        .values(comment_count=Post.comment_count - n).execution_options(synchronize_session=False))
    in_drop = select(Post.id).where(Post.space_id.in_(drop))
    comments_in_drop = select(Comment.id).where(Comment.post_id.in_(in_drop))
    removed["reactions"] = session.execute(delete(Reaction).where(
        Reaction.user_id == user.id, or_(Reaction.post_id.in_(in_drop), Reaction.comment_id.in_(comments_in_drop))
    ).execution_options(synchronize_session=False)).rowcount
    removed["poll_votes"] = session.execute(delete(PollVote).where(
        PollVote.user_id == user.id, PollVote.poll_id.in_(select(Poll.id).where(Poll.post_id.in_(in_drop))))
        .execution_options(synchronize_session=False)).rowcount
    session.expire_all()
    return removed


def _experience(session: Session, user: User, drop: list[int], protected: set, now) -> Counter:
    """Experience reports go as posts do (blanked and deleted where writing is deleted; one a crisis
    escalation is about only leaves sight), and the person's helpful votes there go too. Guide entries
    pointing at them drop out of the guide by themselves."""
    removed: Counter[str] = Counter()
    if not drop:
        return removed
    report_ids = list(session.scalars(select(ExperienceReport.id).where(
        ExperienceReport.author_id == user.id, ExperienceReport.space_id.in_(drop))))
    kept = [i for i in report_ids if ("experience", i) in protected]
    blank = sorted(set(report_ids) - set(kept))
    removed["experience_reports"] = len(report_ids)
    session.execute(update(ExperienceReport).where(ExperienceReport.id.in_(blank or [0])).values(
        what_helped="", side_effects=[], body="", body_html="", search_text="",
        deleted_at=func.coalesce(ExperienceReport.deleted_at, now)).execution_options(synchronize_session=False))
    session.execute(update(ExperienceReport).where(ExperienceReport.id.in_(kept or [0])).values(
        deleted_at=func.coalesce(ExperienceReport.deleted_at, now)).execution_options(synchronize_session=False))
    in_drop = {
        "post": select(Post.id).where(Post.space_id.in_(drop)),
        "comment": select(Comment.id).join(Post, Post.id == Comment.post_id).where(Post.space_id.in_(drop)),
        "experience": select(ExperienceReport.id).where(ExperienceReport.space_id.in_(drop)),
    }
    removed["helpful_votes"] = sum(session.execute(delete(HelpfulVote).where(
        HelpfulVote.user_id == user.id, HelpfulVote.target_type == target_type, HelpfulVote.target_id.in_(ids))
        .execution_options(synchronize_session=False)).rowcount for target_type, ids in in_drop.items())
    session.expire_all()
    return removed


def _events(session: Session, user: User, the_plan: DeletionPlan, drop: list[int]) -> Counter:
    """The engagement record goes with what it records (its payload may hold values: a weight, a
    score): the person's events in circles where their writing is deleted, and those outside any
    circle (logs, questionnaires, messages, sign-ins) unless a study they consented to keeps data.
    The rest stays, pseudonymous, until retention (PEERLIFT_RETENTION_DAYS_DELETED_ACCOUNTS)."""
    from peerlift.events import Event

    places = [Event.space_id.in_(drop or [0])]
    if not the_plan.keeps_person_data:
        places.append(Event.space_id.is_(None))
    removed: Counter[str] = Counter()
    removed["events"] = session.execute(delete(Event).where(
        or_(Event.actor_id == user.id, Event.user_id == user.id), or_(*places))
        .execution_options(synchronize_session=False)).rowcount
    return removed


def _messages(session: Session, user: User, the_plan: DeletionPlan, protected: set) -> Counter:
    removed: Counter[str] = Counter()
    if the_plan.messages_kept:
        return removed
    kept = [i for t, i in protected if t == "message"]
    removed["direct_messages"] = session.execute(delete(Message).where(
        Message.sender_id == user.id, Message.id.not_in(kept or [0])).execution_options(synchronize_session=False)
    ).rowcount
    newest = (select(func.coalesce(func.max(Message.id), 0)).where(Message.conversation_id == Conversation.id)
              .correlate(Conversation).scalar_subquery())
    session.execute(update(Conversation).where(or_(Conversation.user_low_id == user.id,
                                                   Conversation.user_high_id == user.id))
                    .values(last_message_id=newest).execution_options(synchronize_session=False))
    return removed


def _person_records(session: Session, user: User, the_plan: DeletionPlan, protected: set) -> Counter:
    """Notifications always go; health records only when no study the person consented to keeps them."""
    from peerlift.cues.models import CueDecision, InboxCard
    from peerlift.notify.models import Notification, Preference
    from peerlift.notify.models import Settings as NotifySettings
    from peerlift.tracking.models import Entry, QuestionnaireRequest, QuestionnaireResponse, TrackingProfile

    removed: Counter[str] = Counter()
    removed["notifications"] = session.execute(delete(Notification).where(Notification.user_id == user.id)).rowcount
    session.execute(delete(Preference).where(Preference.user_id == user.id))
    session.execute(delete(NotifySettings).where(NotifySettings.user_id == user.id))
    removed["inbox_cards"] = session.execute(delete(InboxCard).where(InboxCard.user_id == user.id)).rowcount
    # The health profile and "people like me" are not study data: they always go.
    from peerlift.people.models import ConnectionRequest, HealthProfile, ProfileCode

    session.execute(delete(ProfileCode).where(ProfileCode.user_id == user.id))
    if session.execute(delete(HealthProfile).where(HealthProfile.user_id == user.id)).rowcount:
        removed["health_profile"] = 1
    from peerlift.professionals.models import Professional

    professional = session.execute(delete(Professional).where(Professional.user_id == user.id)).rowcount
    if professional:
        removed["professional_applications"] = professional
    connections = session.execute(delete(ConnectionRequest).where(
        (ConnectionRequest.sender_id == user.id) | (ConnectionRequest.recipient_id == user.id))).rowcount
    if connections:
        removed["connection_requests"] = connections
    if the_plan.keeps_person_data:
        return removed
    kept = [i for t, i in protected if t == "response"]
    removed["tracking_entries"] = session.execute(delete(Entry).where(Entry.user_id == user.id)).rowcount
    removed["goals"] = session.execute(delete(TrackingProfile).where(TrackingProfile.user_id == user.id)).rowcount
    removed["questionnaire_responses"] = session.execute(delete(QuestionnaireResponse).where(
        QuestionnaireResponse.user_id == user.id, QuestionnaireResponse.id.not_in(kept or [0]))).rowcount
    session.execute(delete(QuestionnaireRequest).where(
        QuestionnaireRequest.user_id == user.id,
        QuestionnaireRequest.id.not_in(select(QuestionnaireResponse.request_id).where(
            QuestionnaireResponse.request_id.is_not(None)))))
    removed["cue_decisions"] = session.execute(delete(CueDecision).where(CueDecision.user_id == user.id)).rowcount
    return removed


def _enrolments(session: Session, user: User, the_plan: DeletionPlan, now) -> Counter:
    removed: Counter[str] = Counter()
    for enrolment in list(session.scalars(select(Enrolment).where(Enrolment.user_id == user.id))):
        rule = the_plan.rule_of_study(enrolment.study_id)
        if enrolment.status in ACTIVE:
            enrolment.status, enrolment.withdrawn_at = EnrolmentStatus.withdrawn, now
            enrolment.withdrawal_reason = "The account was deleted."
        if enrolment.status == EnrolmentStatus.withdrawn or enrolment.consented_at is not None:
            if rule == DELETE or not enrolment.withdrawal_data:
                enrolment.withdrawal_data = "delete" if rule == DELETE else "keep"
        if rule == DELETE:
            removed["consents"] += session.execute(delete(Consent).where(Consent.enrolment_id == enrolment.id)).rowcount
            enrolment.user_id = None
            enrolment.screening_answers = {}
            removed["enrolments_detached"] += 1
        else:
            session.execute(update(Consent).where(Consent.enrolment_id == enrolment.id)
                            .values(typed_name="", ip=""))
        identity.audit(session, None, "enrolment.account_deleted", "enrolment", enrolment.id,
                       detail=f"study {enrolment.study_id}: {rule}")
    session.flush()
    return removed


def _places(session: Session, user: User) -> Counter:
    """Out of every circle and study team; nothing more is planned for the person."""
    from peerlift.protocols import service as protocols
    from peerlift.protocols.models import PlannedDelivery

    removed: Counter[str] = Counter()
    planned_in = set(session.scalars(select(PlannedDelivery.space_id).where(PlannedDelivery.user_id == user.id)))
    for membership in list(session.scalars(select(Membership).where(Membership.user_id == user.id))):
        planned_in.add(membership.space_id)
        session.execute(delete(Membership).where(Membership.id == membership.id))
        publish(session, "member.left", Audience(space_id=membership.space_id), actor_id=None,
                object_type="membership", object_id=membership.id,
                data={"circle_id": membership.space_id, "user_id": user.id, "account_deleted": True})
        removed["memberships"] += 1
    removed["planned_deliveries_cancelled"] = protocols.cancel_for_person(
        session, user.id, sorted(planned_in), "the person's account was deleted")
    removed["study_team_places"] = session.execute(delete(StudyMember).where(StudyMember.user_id == user.id)).rowcount
    return removed


def _escalations(session: Session, actor: User, user: User) -> None:
    from peerlift.safety import service as safety
    from peerlift.safety.models import Escalation, EscalationStatus

    for escalation in session.scalars(select(Escalation).where(Escalation.subject_id == user.id,
                                                               Escalation.status != EscalationStatus.resolved)):
        safety.subject_deleted(session, escalation, actor.id)


def account_by_email(session: Session, email: str) -> int | None:
    """The id of the account with this sign-in address (not a deleted one), or None."""
    return session.scalar(select(User.id).where(User.email == email.strip().lower(), User.deleted_at.is_(None)))
