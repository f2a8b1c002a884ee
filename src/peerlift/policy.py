"""The one place that decides who may see and do what.

Routers and services ask this module; nothing else decides access on its own. A person
sees a circle only through a membership. Objects they may not see answer 404, so their
existence never leaks. ``AccessibleSpaceID`` is produced only here: queries that list a
circle's content take one, which makes an unscoped query a type error.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import NewType

from sqlalchemy import and_, bindparam, or_, select, true
from sqlalchemy.orm import Session

from peerlift.community.models import CircleRole, Comment, Conversation, Membership, Post, Space, SpaceKind
from peerlift.errors import Forbidden, NotFound
from peerlift.identity.models import Role, User

AccessibleSpaceID = NewType("AccessibleSpaceID", int)

STAFF_CIRCLE_ROLES = {CircleRole.facilitator}
CAN_INVITE_ROLES = {Role.facilitator, Role.admin}
CAN_CREATE_CIRCLE_ROLES = {Role.facilitator, Role.admin}


@dataclass(frozen=True)
class CircleAccess:
    user: User
    space: Space
    membership: Membership

    @property
    def space_id(self) -> AccessibleSpaceID:
        return AccessibleSpaceID(self.space.id)

    @property
    def role(self) -> CircleRole:
        return self.membership.role

    @property
    def is_facilitator(self) -> bool:
        return self.membership.role in STAFF_CIRCLE_ROLES

    @property
    def can_post(self) -> bool:
        return self.space.archived_at is None

    @property
    def can_pin(self) -> bool:
        return self.is_facilitator

    @property
    def can_invite(self) -> bool:
        return self.is_facilitator and self.user.role in CAN_INVITE_ROLES

    def can_edit(self, author_id: int) -> bool:
        return author_id == self.user.id

    def can_delete(self, author_id: int) -> bool:
        return author_id == self.user.id or self.is_facilitator


def _not_found(what: str, field: str) -> NotFound:
    return NotFound(f"No {what} with that id.", field=field)


def _memberships(user_id, which):
    """The spaces ``which`` selects that the person ``user_id`` belongs to, each with the membership."""
    return select(Space, Membership).join(Membership, Membership.space_id == Space.id).where(
        which, Membership.user_id == user_id)


@cache
def _membership_of():
    """Built once: every read of a circle or community checks it."""
    return _memberships(bindparam("user_id"), Space.id == bindparam("space_id"))


def circle_access(session: Session, user: User, space_id: int) -> CircleAccess:
    row = session.execute(_membership_of(), {"space_id": space_id, "user_id": user.id}).first()
    if row is None:
        raise _not_found("circle", "circle_id")
    return CircleAccess(user=user, space=row[0], membership=row[1])


def circle_accesses(session: Session, user: User, space_ids) -> dict[int, CircleAccess]:
    """``circle_access`` for several spaces in one statement; any of them not the user's answers 404."""
    ids = set(space_ids)
    if not ids:
        return {}
    accesses = {space.id: CircleAccess(user=user, space=space, membership=membership)
                for space, membership in session.execute(_memberships(user.id, Space.id.in_(ids)))}
    if len(accesses) != len(ids):
        raise _not_found("circle", "circle_id")
    return accesses


MODERATOR_ROLES = (CircleRole.facilitator, CircleRole.clinician)


def open_community(session: Session, community_id: int) -> Space:
    """An open community: anyone signed in sees its name, description and guidelines, and may join.
    Its posts are read through ``circle_access``, by members only. Circles here answer 404."""
    space = session.get(Space, community_id)
    if space is None or space.kind != SpaceKind.community or space.archived_at is not None:
        raise _not_found("community", "community_id")
    return space


def community_access(session: Session, user: User, community_id: int) -> CircleAccess:
    """A community's posts, for its members: to anyone else the feed answers 404."""
    open_community(session, community_id)
    try:
        return circle_access(session, user, community_id)
    except NotFound:
        raise _not_found("community", "community_id") from None


def seen_by(model, user_id: int, role_column):
    """Writing a member may see: what the circle sees, their own (held or removed, with the reason),
    and, for the circle's facilitators and clinicians, what waits for review."""
    return or_(model.visibility == "visible", model.author_id == user_id,
               and_(model.visibility == "held", role_column.in_(MODERATOR_ROLES)))


def post_access(session: Session, user: User, post_id: int) -> tuple[CircleAccess, Post]:
    row = session.execute(
        select(Post, Space, Membership)
        .join(Space, Space.id == Post.space_id)
        .join(Membership, (Membership.space_id == Space.id) & (Membership.user_id == user.id))
        .where(Post.id == post_id, Post.deleted_at.is_(None), seen_by(Post, user.id, Membership.role))
    ).first()
    if row is None:
        raise _not_found("post", "post_id")
    return CircleAccess(user=user, space=row[1], membership=row[2]), row[0]


def comment_access(session: Session, user: User, comment_id: int) -> tuple[CircleAccess, Post, Comment]:
    row = session.execute(
        select(Comment, Post, Space, Membership)
        .join(Post, Post.id == Comment.post_id)
        .join(Space, Space.id == Post.space_id)
        .join(Membership, (Membership.space_id == Space.id) & (Membership.user_id == user.id))
        .where(Comment.id == comment_id, Comment.deleted_at.is_(None), Post.deleted_at.is_(None),
               seen_by(Comment, user.id, Membership.role), seen_by(Post, user.id, Membership.role))
    ).first()
    if row is None:
        raise _not_found("comment", "comment_id")
    return CircleAccess(user=user, space=row[2], membership=row[3]), row[1], row[0]


def searchable_spaces(session: Session, user: User) -> list[AccessibleSpaceID]:
    """The spaces whose posts ``user`` may read, and so find by searching: the rule of the feed
    (``circle_access``), a membership: their circles and the communities they joined. A participant is
    in the circles of one arm of a study only, so another arm's writing is never among them."""
    return list(searchable_accesses(session, user))


def searchable_accesses(session: Session, user: User) -> dict[AccessibleSpaceID, CircleAccess]:
    """``searchable_spaces``, each with its access (the space and the membership), in one statement."""
    return {AccessibleSpaceID(space.id): CircleAccess(user=user, space=space, membership=membership)
            for space, membership in session.execute(_memberships(user.id, true()).order_by(Space.id))}


def conversation_access(session: Session, user: User, conversation_id: int) -> Conversation:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or user.id not in (conversation.user_low_id, conversation.user_high_id):
        raise _not_found("conversation", "conversation_id")
    return conversation


def require_role(user: User, allowed: set[Role], action: str) -> None:
    if user.role not in allowed:
        raise Forbidden(f"Your role ({user.role.value}) may not {action}.")


def may_message(session: Session, sender: User, recipient: User) -> bool:
    """A participant may message the facilitators of their circles; members message each other
    only in a circle that allows it. Shared circle required either way, except between two people
    who accepted a connection request ("people like me"), unless they are in different arms of a study."""
    if sender.id == recipient.id or not recipient.is_active:
        return False
    if connected(session, sender.id, recipient.id):
        return not in_different_arms(session, sender.id, recipient.id)
    mine = select(Membership.space_id, Membership.role).where(Membership.user_id == sender.id).subquery()
    rows = session.execute(
        select(mine.c.role, Membership.role, Space.allow_member_dms)
        .join(Membership, Membership.space_id == mine.c.space_id)
        .join(Space, Space.id == Membership.space_id)
        .where(Membership.user_id == recipient.id, Space.archived_at.is_(None), Space.kind == SpaceKind.circle)
    ).all()
    staff = {CircleRole.facilitator, CircleRole.clinician}
    members_may = False
    for my_role, their_role, allow_member_dms in rows:
        if my_role in staff or their_role in staff:
            return True
        members_may = members_may or allow_member_dms
    return members_may and not in_different_arms(session, sender.id, recipient.id)


def in_different_arms(session: Session, a_id: int, b_id: int) -> bool:
    """Whether two people are members of circles of different arms of one study (contamination)."""
    from peerlift.research.models import Arm

    rows = session.execute(
        select(Membership.user_id, Arm.study_id, Arm.id)
        .join(Space, Space.id == Membership.space_id).join(Arm, Arm.id == Space.arm_id)
        .where(Membership.user_id.in_((a_id, b_id)), Membership.role.in_((CircleRole.member,
                                                                           CircleRole.peer_supporter)))
    ).all()
    arms_of_a = {(study, arm) for user, study, arm in rows if user == a_id}
    return any(user == b_id and (study, arm) not in arms_of_a and any(s == study for s, _a in arms_of_a)
               for user, study, arm in rows)


def visible_user(session: Session, viewer: User, user_id: int) -> User:
    """A person is visible to those who share a circle with them, to those who accepted a connection
    request with them ("people like me"), and to themselves. Sharing an open community does not
    count: there people go by a community name."""
    if user_id == viewer.id:
        return viewer
    mine = (select(Membership.space_id).join(Space, Space.id == Membership.space_id)
            .where(Membership.user_id == viewer.id, Space.kind == SpaceKind.circle))
    shared = session.scalar(
        select(User).join(Membership, Membership.user_id == User.id)
        .where(User.id == user_id, Membership.space_id.in_(mine)).limit(1)
    )
    if shared is None:
        if connected(session, viewer.id, user_id):
            person = session.get(User, user_id)
            if person is not None:
                return person
        raise _not_found("person", "user_id")
    return shared


def require_admin(user: User) -> None:
    """Admin pages (the audit trail): to anyone else they do not exist, like an unknown address."""
    if user.role != Role.admin:
        raise NotFound("Nothing here.")


# --- self-monitoring and questionnaires ---------------------------------------------------------

CAN_DEFINE_MEASURES_ROLES = {Role.researcher, Role.admin}
CAN_DEFINE_INSTRUMENTS_ROLES = {Role.researcher, Role.admin}
TRACKING_VIEWER_ROLES = {CircleRole.facilitator, CircleRole.clinician}


def tracking_subject(session: Session, viewer: User, person_id: int) -> User:
    """The person whose entries, goals and questionnaire answers ``viewer`` may see: themselves,
    the members of circles the viewer facilitates, and of circles where the viewer is the
    clinician. Anyone else answers 404, like a person who does not exist."""
    if person_id == viewer.id:
        return viewer
    staffed = (select(Membership.space_id).join(Space, Space.id == Membership.space_id)
               .where(Membership.user_id == viewer.id, Membership.role.in_(TRACKING_VIEWER_ROLES),
                      Space.kind == SpaceKind.circle))
    person = session.scalar(
        select(User).join(Membership, Membership.user_id == User.id)
        .where(User.id == person_id, Membership.space_id.in_(staffed)).limit(1)
    )
    if person is None:
        raise _not_found("person", "user_id")
    return person


def require_facilitator(access: CircleAccess, action: str) -> None:
    if not access.is_facilitator:
        raise Forbidden(f"Only the circle's facilitators may {action}.")


def questionnaire_request_access(session: Session, user: User, request_id: int):
    """A questionnaire request is seen and answered by the person it was sent to, and by nobody else."""
    from peerlift.tracking.models import QuestionnaireRequest

    request = session.get(QuestionnaireRequest, request_id)
    if request is None or request.user_id != user.id:
        raise _not_found("questionnaire request", "request_id")
    return request


# --- the facilitator's inbox (cues) ------------------------------------------------------------------

def facilitated_circles(session: Session, user: User) -> list[AccessibleSpaceID]:
    """The circles whose inbox this person sees: those they facilitate."""
    return [AccessibleSpaceID(space_id) for space_id in session.scalars(
        select(Membership.space_id).join(Space, Space.id == Membership.space_id)
        .where(Membership.user_id == user.id, Membership.role.in_(STAFF_CIRCLE_ROLES), Space.kind == SpaceKind.circle)
        .order_by(Membership.space_id))]


def inbox_card_access(session: Session, user: User, card_id: int):
    """A card of the inbox, for a facilitator of the member's circle; anyone else gets a 404."""
    from peerlift.cues.models import InboxCard

    card = session.scalar(
        select(InboxCard).join(Membership, (Membership.space_id == InboxCard.space_id)
                               & (Membership.user_id == user.id))
        .where(InboxCard.id == card_id, Membership.role.in_(STAFF_CIRCLE_ROLES)))
    if card is None:
        raise _not_found("card", "card_id")
    return card


# --- protocols -------------------------------------------------------------------------------------

def runs_protocols_by_role(session: Session, user: User, arm_id: int | None) -> bool:
    """Whether ``user`` runs protocols (assigns, migrates, reads fidelity) in a circle of ``arm_id`` or
    in the arm itself by their account's role rather than as the circle's facilitator: admins
    anywhere; researchers in the arms of the studies they research, and in circles outside any study.
    A researcher of another study has no reach into this one."""
    from peerlift.research.models import Arm, StudyMember, StudyRole

    if user.role == Role.admin:
        return True
    if user.role != Role.researcher:
        return False
    if arm_id is None:
        return True
    return session.scalar(
        select(StudyMember.id).join(Arm, Arm.study_id == StudyMember.study_id)
        .where(Arm.id == arm_id, StudyMember.user_id == user.id, StudyMember.role == StudyRole.researcher)
    ) is not None


def protocol_arm(session: Session, user: User, arm_id: int, action: str):
    """An arm whose circles ``user`` runs protocols in: researchers of its study and admins. Other roles
    are refused by role (403); a researcher of another study gets a 404, like an arm that does not exist."""
    from peerlift.research.models import Arm

    if user.role not in (Role.researcher, Role.admin):
        raise Forbidden(f"Researchers and admins {action}.")
    arm = session.get(Arm, arm_id)
    if arm is None or not runs_protocols_by_role(session, user, arm.id):
        raise _not_found("arm", "arm_id")
    return arm


# --- studies ---------------------------------------------------------------------------------------

CAN_CREATE_STUDY_ROLES = {Role.researcher, Role.admin}


def study_access(session: Session, user: User, study_id: int):
    """A study, for admins and the people of its team (researchers, facilitators, clinicians);
    anyone else gets a 404."""
    from peerlift.research.models import Study, StudyMember

    study = session.get(Study, study_id)
    if study is None:
        raise _not_found("study", "study_id")
    if user.role == Role.admin:
        return study
    member = session.scalar(select(StudyMember.id).where(StudyMember.study_id == study.id,
                                                         StudyMember.user_id == user.id))
    if member is None:
        raise _not_found("study", "study_id")
    return study


def is_study_researcher(session: Session, user: User, study) -> bool:
    from peerlift.research.models import StudyMember, StudyRole

    return session.scalar(select(StudyMember.id).where(
        StudyMember.study_id == study.id, StudyMember.user_id == user.id,
        StudyMember.role == StudyRole.researcher)) is not None


def require_study_researcher(session: Session, user: User, study) -> None:
    """Only the study's researchers change a study."""
    if not is_study_researcher(session, user, study):
        raise Forbidden("Only the study's researchers may change it.")


def enrolment_access(session: Session, user: User, enrolment_id: int):
    """A person's own enrolment; the study's team reads it through the study. Others: 404."""
    from peerlift.research.models import Enrolment

    enrolment = session.get(Enrolment, enrolment_id)
    if enrolment is None or enrolment.user_id != user.id:
        raise _not_found("enrolment", "enrolment_id")
    return enrolment


# --- research analytics: the dashboard, reports and exports of a study --------------------------------

def study_for_analytics(session: Session, user: User, ref: str | int):
    """A study (by slug, or by id when ``ref`` is an int) whose dashboard, metrics and costs this
    person may see: its researchers (the study's team), and admins. Anyone else, like a study that
    does not exist, gets a 404."""
    from peerlift.research.models import Study

    field = "study_id" if isinstance(ref, int) else "slug"
    study = session.get(Study, ref) if isinstance(ref, int) else session.scalar(select(Study).where(Study.slug == ref))
    if study is None or not (user.role == Role.admin or is_study_researcher(session, user, study)):
        raise _not_found("study", field)
    return study


# --- a person's data: deletion on request --------------------------------------------------------------

def account_for_deletion(session: Session, actor: User, user_id: int) -> User:
    """An account an admin may delete on the person's request: admins only (others are refused), and
    an account that does not exist or is deleted already answers 404."""
    require_role(actor, {Role.admin}, "delete other people's accounts")
    user = session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise _not_found("person", "user_id")
    return user


# --- health profiles and "people like me" ----------------------------------------------------------

def relation_level(session: Session, viewer_id: int, owner_id: int) -> int:
    """How near ``viewer_id`` is to ``owner_id``: 0 the same person, 1 they share a circle, 2 they share
    an open community, 3 anyone else signed in. A field with visibility of reach r admits levels <= r."""
    from peerlift.community.models import SpaceKind

    if viewer_id == owner_id:
        return 0
    theirs = select(Membership.space_id).where(Membership.user_id == owner_id)
    kinds = set(session.scalars(
        select(Space.kind).join(Membership, Membership.space_id == Space.id)
        .where(Membership.user_id == viewer_id, Membership.space_id.in_(theirs), Space.archived_at.is_(None))
    ))
    if SpaceKind.circle in kinds:
        return 1
    if SpaceKind.community in kinds:
        return 2
    return 3


def mates(session: Session, user_id: int) -> tuple[set[int], set[int]]:
    """The people who share a circle with ``user_id``, and those who share an open community."""
    from peerlift.community.models import SpaceKind

    mine = select(Membership.space_id).where(Membership.user_id == user_id)
    circle, community = set(), set()
    for other, kind in session.execute(
        select(Membership.user_id, Space.kind).join(Space, Space.id == Membership.space_id)
        .where(Membership.space_id.in_(mine), Space.archived_at.is_(None), Membership.user_id != user_id)
    ):
        (circle if kind == SpaceKind.circle else community).add(other)
    return circle, community - circle


def connected(session: Session, a_id: int, b_id: int) -> bool:
    """Whether two people accepted a connection request between them."""
    from peerlift.people.models import ConnectionRequest, RequestStatus

    return session.scalar(select(ConnectionRequest.id).where(
        ConnectionRequest.status == RequestStatus.accepted.value,
        or_(and_(ConnectionRequest.sender_id == a_id, ConnectionRequest.recipient_id == b_id),
            and_(ConnectionRequest.sender_id == b_id, ConnectionRequest.recipient_id == a_id))).limit(1)) is not None


def health_profile_view(session: Session, viewer: User, user_id: int):
    """Another person's health profile as ``viewer`` may see it: ``(owner, profile | None, level)``.
    Unknown, inactive, or unrelated people who share no field with the viewer answer 404."""
    from peerlift.people.models import REACH, HealthProfile, Visibility

    owner = viewer if user_id == viewer.id else session.get(User, user_id)
    if owner is None or not owner.is_active or owner.deleted_at is not None:
        raise _not_found("person", "user_id")
    level = relation_level(session, viewer.id, owner.id)
    profile = session.get(HealthProfile, owner.id)
    shares = profile is not None and any(
        REACH[Visibility(getattr(profile, f"{f}_visibility"))] >= level
        for f in ("conditions", "treatments", "goals", "diagnosis_years", "age_band"))
    if level == 3 and not shares and not connected(session, viewer.id, owner.id):
        raise _not_found("person", "user_id")
    return owner, profile, level


def suggestable_person(session: Session, viewer: User, user_id: int):
    """A person one may ask to connect with: they opted in to "people like me" and are not hidden,
    they have not declined the viewer, and they are not in another arm of the viewer's study. Anyone else answers 404 (never revealing why)."""
    from peerlift.people.models import ConnectionRequest, HealthProfile, RequestStatus

    person = session.get(User, user_id)
    profile = session.get(HealthProfile, user_id)
    if person is None or not person.is_active or profile is None or not profile.suggestable:
        raise _not_found("person", "user_id")
    declined = session.scalar(select(ConnectionRequest.id).where(
        ConnectionRequest.status == RequestStatus.declined.value,
        or_(and_(ConnectionRequest.sender_id == viewer.id, ConnectionRequest.recipient_id == user_id),
            and_(ConnectionRequest.sender_id == user_id, ConnectionRequest.recipient_id == viewer.id))).limit(1))
    if declined is not None or in_different_arms(session, viewer.id, user_id):
        raise _not_found("person", "user_id")
    return person


def other_arm_people(session: Session, user_id: int, candidates) -> set[int]:
    """Those of ``candidates`` who take part in another arm of a study ``user_id`` takes part in
    (never suggested to each other, so that peer contact cannot contaminate a trial)."""
    from peerlift.research.models import Arm

    ids = set(candidates) | {user_id}
    rows = session.execute(
        select(Membership.user_id, Arm.study_id, Arm.id)
        .join(Space, Space.id == Membership.space_id).join(Arm, Arm.id == Space.arm_id)
        .where(Membership.user_id.in_(ids), Membership.role.in_((CircleRole.member, CircleRole.peer_supporter)))
    ).all()
    mine = {(study, arm) for user, study, arm in rows if user == user_id}
    return {user for user, study, arm in rows
            if user != user_id and (study, arm) not in mine and any(s == study for s, _a in mine)}


def connection_request_access(session: Session, user: User, connection_request_id: int):
    """A connection request, to its recipient (who answers it); to anyone else it does not exist."""
    from peerlift.people.models import ConnectionRequest

    request = session.get(ConnectionRequest, connection_request_id)
    if request is None or request.recipient_id != user.id:
        raise _not_found("connection request", "connection_request_id")
    return request


def report_access(session: Session, user: User, report_id: int):
    """An experience report, for the members of its community who may see it (the rule of posts):
    ``(access, report)``; to anyone else it does not exist."""
    from peerlift.experience.models import ExperienceReport

    row = session.execute(
        select(ExperienceReport, Space, Membership)
        .join(Space, Space.id == ExperienceReport.space_id)
        .join(Membership, (Membership.space_id == Space.id) & (Membership.user_id == user.id))
        .where(ExperienceReport.id == report_id, ExperienceReport.deleted_at.is_(None),
               Space.kind == SpaceKind.community, Space.archived_at.is_(None),
               seen_by(ExperienceReport, user.id, Membership.role))
    ).first()
    if row is None:
        raise _not_found("experience report", "report_id")
    return CircleAccess(user=user, space=row[1], membership=row[2]), row[0]


def may_curate(access: CircleAccess) -> bool:
    """Who puts writing in a community's guide: its facilitators, and admins who are members."""
    return access.is_facilitator or access.user.role == Role.admin


def guide_entry_access(session: Session, user: User, guide_entry_id: int):
    """An entry of a community's guide, for that community's members: ``(access, entry)``."""
    from peerlift.experience.models import GuideEntry

    entry = session.get(GuideEntry, guide_entry_id)
    if entry is None:
        raise _not_found("guide entry", "guide_entry_id")
    try:
        access = community_access(session, user, entry.space_id)
    except NotFound:
        raise _not_found("guide entry", "guide_entry_id") from None
    return access, entry
