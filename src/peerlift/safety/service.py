"""Every write of the safety domain: screening writing as it is written, flags, the review
queue and its actions, gating and pre-moderation, and crisis escalation.

Screening runs inside the author's unit of work: the triage record, the hold, the review item
and the escalation commit with the post itself or not at all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from peerlift.community.models import CircleRole, Comment, Conversation, Membership, Message, Post, Space, SpaceKind
from peerlift.db import utcnow
from peerlift.delivery.scheduler import schedule
from peerlift.errors import Conflict, Forbidden, InvalidInput, NotFound, PeerliftError
from peerlift.events import Audience, publish
from peerlift.identity import service as identity
from peerlift.identity.models import Role, User
from peerlift.notify.models import Kind
from peerlift.notify.service import notify
from peerlift.policy import CircleAccess
from peerlift.safety import pii
from peerlift.safety.models import (
    FLAG_REASON_TEXT,
    Escalation,
    EscalationStatus,
    EscalationStep,
    Flag,
    FlagReason,
    ModAction,
    ModerationAction,
    ReviewItem,
    ReviewSource,
    ReviewStatus,
    TriageRecord,
    Visibility,
)
from peerlift.safety.triage import RANK, Triage, triage
from peerlift.settings import get_settings


class TooManyPosts(PeerliftError):
    status_code = 429
    code = "rate_limited"


class Muted(Forbidden):
    code = "muted"


class PersonalInformation(InvalidInput):
    code = "personal_information"


class AlreadyHandled(Conflict):
    code = "already_handled"


class AlreadyFlagged(Conflict):
    code = "already_flagged"


OUTCOMES = {
    "released": "Post released to the circle",
    "kept_hidden": "Post kept from the circle",
    "contacted": "Contacted the person; safe for now",
    "emergency_services": "Emergency services called",
    "referred": "Referred to their care team",
    "no_risk": "Reviewed: no risk",
}
MAX_ADMIN_REALERTS = 12


# --- screening on write ----------------------------------------------------------------------

@dataclass
class Screening:
    """What the author is told as their writing goes out."""

    level: str
    held: bool = False
    held_reason: str = ""
    message: str = ""
    emergency: bool = False
    resources: list[dict[str, str]] = field(default_factory=list)
    escalation_id: int | None = None

    def as_dict(self) -> dict:
        return {"level": self.level, "held": self.held, "held_reason": self.held_reason, "message": self.message,
                "emergency": self.emergency, "resources": self.resources}


def crisis_resources() -> list[dict[str, str]]:
    settings = get_settings()
    return list(settings.crisis_resources.get(settings.country.upper(), []))


def emergency_number() -> str:
    for resource in crisis_resources():
        if resource.get("name", "").lower().startswith("emergency"):
            return resource.get("phone", "")
    return ""


def _support_message(result: Triage) -> str:
    if result.emergency:
        number = emergency_number() or "your local emergency number"
        return (f"This sounds like a medical emergency. Call {number} now, or ask someone near you to. "
                "A clinician from your programme has been alerted too.")
    if result.level == "crisis":
        return ("Thank you for telling us. You matter, and you do not have to face this alone. A clinician from "
                "your programme has been alerted and will contact you. If you are in danger now, call one of "
                "the numbers below.")
    return ("Thank you for sharing this. A member of your care team has been told and will check in with you "
            "today. If things feel worse, the numbers below are there day and night.")


def check_can_write(session: Session, access: CircleAccess) -> None:
    """Muted members cannot write; nobody writes faster than the installation's limits."""
    until = access.membership.muted_until
    if until is not None and until > utcnow():
        raise Muted(f"You are muted in this circle until {until:%d %b %Y %H:%M} UTC.")
    settings = get_settings()
    now = utcnow()
    minute, hour = _written_since(session, access.user.id, now - dt.timedelta(minutes=1),
                                  now - dt.timedelta(hours=1))
    if minute >= settings.posts_per_minute:
        raise TooManyPosts(f"You have written {minute} posts, comments and reports in the last minute; the most is "
                           f"{settings.posts_per_minute}. Wait a moment and try again.")
    if hour >= settings.posts_per_hour:
        raise TooManyPosts(f"You have written {hour} posts, comments and reports in the last hour; the most is "
                           f"{settings.posts_per_hour}. Try again later.")


def _written_since(session: Session, user_id: int, minute_ago: dt.datetime,
                   hour_ago: dt.datetime) -> tuple[int, int]:
    """Posts, comments and experience reports the person wrote in the last minute and in the last hour
    (one limit for all writing), in one statement."""
    from peerlift.experience.models import ExperienceReport

    written = union_all(*(
        select(model.created_at.label("at")).where(model.author_id == user_id, model.created_at > hour_ago)
        for model in (Post, Comment, ExperienceReport))).subquery()
    minute, hour = session.execute(select(
        func.count().filter(written.c.at > minute_ago), func.count()).select_from(written)).one()
    return minute, hour


def check_personal_information(body: str, confirmed: bool) -> None:
    if confirmed:
        return
    findings = pii.find(body)
    if findings:
        raise PersonalInformation(pii.warning(findings), field="body")


def screen(session: Session, access: CircleAccess, object_type: str, obj: Post | Comment) -> Screening:
    """Triage new writing in a circle, hold it when it must be reviewed, and escalate risk."""
    result = triage(text_of(obj))
    _record(session, object_type, obj.id, access.space.id, access.user.id, result)
    outcome = Screening(level=result.level, emergency=result.emergency)
    staff = access.membership.role in (CircleRole.facilitator, CircleRole.clinician)
    source: ReviewSource | None = None
    if result.level == "crisis" and not staff:
        source, outcome.held_reason = ReviewSource.triage, (
            "Your post is with a clinician before the circle sees it, so that you get the right support first.")
    elif access.membership.gated:
        source, outcome.held_reason = ReviewSource.gated, (
            "Posts in this circle are read by your coach before they appear. This is to support you, "
            "and it usually takes a few hours.")
    elif access.space.premoderated and not staff:
        source, outcome.held_reason = ReviewSource.premoderation, (
            "Every post in this circle is read by a coach before it appears. Thank you for your patience.")
    if source is not None:
        obj.visibility = Visibility.held.value
        outcome.held = True
        _open_review(session, access.space.id, object_type, obj.id, access.user.id, source, result.level)
    if result.level in ("red", "crisis") and not staff:
        outcome.message = _support_message(result)
        outcome.resources = crisis_resources()
        escalation = open_escalation(session, subject=access.user, space_id=access.space.id,
                                     object_type=object_type, object_id=obj.id, result=result)
        outcome.escalation_id = escalation.id
    return outcome


def screen_message(session: Session, sender: User, conversation: Conversation, message: Message) -> Screening:
    """Direct messages are triaged and escalated, never held (the reader may be the one who helps)."""
    result = triage(message.body)
    space_id = _shared_space(session, conversation)
    _record(session, "message", message.id, space_id, sender.id, result)
    outcome = Screening(level=result.level, emergency=result.emergency)
    if result.level in ("red", "crisis") and sender.role == Role.participant:
        outcome.message = _support_message(result)
        outcome.resources = crisis_resources()
        outcome.escalation_id = open_escalation(session, subject=sender, space_id=space_id, object_type="message",
                                                object_id=message.id, result=result).id
    return outcome


def screen_free_text(session: Session, person: User, object_type: str, object_id: int, text: str) -> Screening:
    """Free text written outside a circle (a questionnaire answer)."""
    result = triage(text)
    space_id = _home_circle(session, person.id)
    _record(session, object_type, object_id, space_id, person.id, result)
    outcome = Screening(level=result.level, emergency=result.emergency)
    if result.level in ("red", "crisis"):
        outcome.message, outcome.resources = _support_message(result), crisis_resources()
        outcome.escalation_id = open_escalation(session, subject=person, space_id=space_id, object_type=object_type,
                                                object_id=object_id, result=result).id
    return outcome


def _home_circle(session: Session, user_id: int) -> int | None:
    """The circle whose clinicians hear of writing made outside a circle: the person's first."""
    return session.scalar(select(Membership.space_id).join(Space, Space.id == Membership.space_id)
                          .where(Membership.user_id == user_id, Space.kind == SpaceKind.circle)
                          .order_by(Membership.id).limit(1))


def _shared_space(session: Session, conversation: Conversation) -> int | None:
    mine = select(Membership.space_id).where(Membership.user_id == conversation.user_low_id)
    return session.scalar(select(Membership.space_id).where(Membership.user_id == conversation.user_high_id,
                                                            Membership.space_id.in_(mine))
                          .order_by(Membership.space_id).limit(1))


def _record(session: Session, object_type: str, object_id: int, space_id: int | None, author_id: int,
            result: Triage) -> None:
    existing = session.scalar(select(TriageRecord).where(TriageRecord.object_type == object_type,
                                                         TriageRecord.object_id == object_id))
    reasons = [r.describe() for r in result.reasons]
    if existing is None:
        session.add(TriageRecord(object_type=object_type, object_id=object_id, space_id=space_id,
                                 author_id=author_id, level=result.level, reasons=reasons,
                                 emergency=result.emergency))
    else:
        existing.level, existing.reasons, existing.emergency = result.level, reasons, result.emergency


def rescreen_edit(session: Session, access: CircleAccess, object_type: str, obj: Post | Comment) -> Screening:
    """An edit is triaged again. Only an edit that raises the level holds or escalates anew; an edit
    never quietly lowers a hold."""
    before = session.scalar(select(TriageRecord.level).where(TriageRecord.object_type == object_type,
                                                             TriageRecord.object_id == obj.id)) or "green"
    result = triage(text_of(obj))
    if RANK[result.level] <= RANK[before]:
        _record(session, object_type, obj.id, access.space.id, access.user.id, result)
        return Screening(level=result.level, held=obj.visibility != Visibility.visible.value)
    return screen(session, access, object_type, obj)


# --- the review queue ----------------------------------------------------------------------------

def _open_review(session: Session, space_id: int, object_type: str, object_id: int, author_id: int,
                 source: ReviewSource, level: str) -> ReviewItem:
    item = session.scalar(select(ReviewItem).where(ReviewItem.object_type == object_type,
                                                   ReviewItem.object_id == object_id))
    if item is None:
        item = ReviewItem(space_id=space_id, object_type=object_type, object_id=object_id, author_id=author_id,
                          source=source, level=level)
        session.add(item)
        session.flush()
    elif item.status == ReviewStatus.handled:
        item.status, item.source, item.opened_at = ReviewStatus.open, source, utcnow()
        item.handled_at = item.handled_by_id = item.action = None
    if RANK.get(level, 0) > RANK.get(item.level, 0):
        item.level = level
    publish(session, "review.opened", Audience(space_id=space_id), actor_id=None, object_type="review_item",
            object_id=item.id, data={"circle_id": space_id, "review_item_id": item.id, "source": source.value,
                                     "staff_only": True})
    return item


def writing_models() -> dict[str, type]:
    """The kinds of writing that are screened, flagged and reviewed."""
    from peerlift.experience.models import ExperienceReport

    return {"post": Post, "comment": Comment, "message": Message, "experience": ExperienceReport}


def text_of(obj) -> str:
    """The text screened and shown to reviewers (an experience report's is all its written parts)."""
    return getattr(obj, "screening_text", None) or obj.body


def _target(session: Session, object_type: str, object_id: int):
    model = writing_models().get(object_type)
    return session.get(model, object_id) if model else None


def flag(session: Session, user: User, *, object_type: str, object_id: int, reason: str, note: str = "",
         space_id: int) -> Flag:
    """A member flags writing they can see (the caller has checked that through the policy)."""
    try:
        reason_value = FlagReason(reason)
    except ValueError:
        raise InvalidInput(f"Unknown reason {reason!r}; use one of: {', '.join(r.value for r in FlagReason)}.",
                           field="reason") from None
    if len(note) > 1000:
        raise InvalidInput("The note may have at most 1,000 characters.", field="note")
    target = _target(session, object_type, object_id)
    author_id = target.sender_id if object_type == "message" else target.author_id
    if author_id == user.id:
        raise InvalidInput("You cannot flag your own writing. You can edit or delete it instead.",
                           field="object_id")
    if session.scalar(select(Flag.id).where(Flag.object_type == object_type, Flag.object_id == object_id,
                                            Flag.flagger_id == user.id)) is not None:
        raise AlreadyFlagged("You have already flagged this; the circle's facilitators have it.", field="object_id")
    level = session.scalar(select(TriageRecord.level).where(TriageRecord.object_type == object_type,
                                                            TriageRecord.object_id == object_id)) or "green"
    item = _open_review(session, space_id, object_type, object_id, author_id, ReviewSource.flag, level)
    new = Flag(review_item_id=item.id, object_type=object_type, object_id=object_id, flagger_id=user.id,
               reason=reason_value, note=note.strip())
    session.add(new)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise AlreadyFlagged("You have already flagged this.", field="object_id") from None
    identity.audit(session, user.id, "content.flagged", object_type, object_id, detail=reason_value.value)
    publish(session, "content.flagged", Audience(user_id=user.id), actor_id=user.id, object_type=object_type,
            object_id=object_id, data={"circle_id": space_id, "reason": reason_value.value,
                                       "review_item_id": item.id})
    if reason_value == FlagReason.crisis and session.scalar(
            select(Escalation.id).where(Escalation.object_type == object_type, Escalation.object_id == object_id)) \
            is None:
        subject = session.get(User, author_id)
        open_escalation(session, subject=subject, space_id=space_id, object_type=object_type, object_id=object_id,
                        result=Triage("red", ()), reasons=[f"Flagged by a member as a crisis concern: {note}"
                                                           if note else "Flagged by a member as a crisis concern"])
    return new


def handle(session: Session, moderator: User, item: ReviewItem, action: str, *, reason: str = "",
           mute_hours: int | None = None, expected_status: str = "open") -> ModerationAction:
    """A facilitator (or clinician) acts on a queue item. Acting on an item someone else has already
    handled is a conflict, never a second action."""
    try:
        act = ModAction(action)
    except ValueError:
        raise InvalidInput(f"Unknown action {action!r}.", field="action") from None
    if act not in (ModAction.hide, ModAction.remove, ModAction.restore, ModAction.approve, ModAction.warn,
                   ModAction.mute, ModAction.remove_member, ModAction.dismiss):
        raise InvalidInput(f"{action!r} is not a queue action.", field="action")
    reason = (reason or "").strip()
    if act in (ModAction.remove, ModAction.warn, ModAction.mute, ModAction.remove_member) and not reason:
        raise InvalidInput("Give a reason; the member will see it.", field="reason")
    if len(reason) > 1000:
        raise InvalidInput("The reason may have at most 1,000 characters.", field="reason")
    if act == ModAction.mute and (mute_hours is None or not 1 <= mute_hours <= 24 * 90):
        raise InvalidInput("Mute for between 1 hour and 90 days (2,160 hours).", field="mute_hours")
    claimed = session.execute(
        update(ReviewItem)
        .where(ReviewItem.id == item.id, ReviewItem.status == ReviewStatus.open)
        .values(status=ReviewStatus.handled, handled_by_id=moderator.id, handled_at=utcnow(), action=act.value,
                note=reason)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1 and act not in (ModAction.hide,):
        session.refresh(item)
        who = session.get(User, item.handled_by_id) if item.handled_by_id else None
        raise AlreadyHandled(
            f"{who.display_name if who else 'Someone'} already handled this"
            f"{f' ({item.action})' if item.action else ''} at {item.handled_at:%H:%M} UTC.", field="review_item_id")
    session.refresh(item)
    target = _target(session, item.object_type, item.object_id)
    until = None
    if act == ModAction.hide:
        # Hiding keeps the item open: it waits for a decision.
        item.status, item.handled_by_id, item.handled_at, item.action = ReviewStatus.open, None, None, None
        _set_visibility(session, item, target, Visibility.held, "")
    elif act == ModAction.remove:
        _set_visibility(session, item, target, Visibility.removed, reason)
    elif act in (ModAction.restore, ModAction.approve):
        _set_visibility(session, item, target, Visibility.visible, "")
    elif act in (ModAction.mute, ModAction.remove_member):
        membership = session.scalar(select(Membership).where(Membership.space_id == item.space_id,
                                                             Membership.user_id == item.author_id))
        if membership is not None and membership.role in (CircleRole.facilitator, CircleRole.clinician):
            raise Forbidden("Staff of a circle cannot be muted or removed from the queue.")
        if membership is not None and act == ModAction.mute:
            until = utcnow() + dt.timedelta(hours=mute_hours)
            membership.muted_until = until
        elif membership is not None:
            session.execute(delete(Membership).where(Membership.id == membership.id))
            publish(session, "member.left", Audience(space_id=item.space_id), actor_id=moderator.id,
                    object_type="membership", object_id=membership.id,
                    data={"circle_id": item.space_id, "user_id": item.author_id, "removed": True})
    record = ModerationAction(space_id=item.space_id, review_item_id=item.id, actor_id=moderator.id, action=act,
                              target_user_id=item.author_id, object_type=item.object_type, object_id=item.object_id,
                              reason=reason, until=until)
    session.add(record)
    session.flush()
    identity.audit(session, moderator.id, f"moderation.{act.value}", item.object_type, item.object_id,
                   detail=reason[:200])
    publish(session, "review.handled", Audience(space_id=item.space_id), actor_id=moderator.id,
            object_type="review_item", object_id=item.id,
            data={"circle_id": item.space_id, "review_item_id": item.id, "action": act.value, "staff_only": True})
    _tell_people(session, moderator, item, act, reason, until)
    return record


def _set_visibility(session: Session, item: ReviewItem, target, visibility: Visibility, reason: str) -> None:
    if target is None or item.object_type == "message":
        return
    was = target.visibility
    target.visibility, target.removed_reason = visibility.value, reason
    if item.object_type == "post":
        data = {"circle_id": item.space_id, "post_id": target.id}
    elif item.object_type == "experience":
        data = {"circle_id": item.space_id, "report_id": target.id}
    else:
        data = {"circle_id": item.space_id, "post_id": target.post_id, "comment_id": target.id}
    if visibility == Visibility.visible and was != Visibility.visible.value:
        publish(session, f"{item.object_type}.released", Audience(space_id=item.space_id), actor_id=target.author_id,
                object_type=item.object_type, object_id=target.id, data=data)
    elif visibility != Visibility.visible and was == Visibility.visible.value:
        publish(session, f"{item.object_type}.deleted", Audience(space_id=item.space_id), actor_id=None,
                object_type=item.object_type, object_id=target.id, data={**data, "moderated": True})


def _tell_people(session: Session, moderator: User, item: ReviewItem, act: ModAction, reason: str,
                 until: dt.datetime | None) -> None:
    what = {"post": "post", "comment": "comment", "message": "message",
            "experience": "experience report"}[item.object_type]
    to_author = {
        ModAction.remove: f"A facilitator removed your {what}: {reason}",
        ModAction.restore: f"Your {what} is back in the circle.",
        ModAction.approve: f"Your {what} has been reviewed and is now in the circle.",
        ModAction.warn: f"A note from your facilitator about your {what}: {reason}",
        ModAction.mute: f"You are muted in this circle until {until:%d %b %H:%M} UTC: {reason}" if until else "",
        ModAction.remove_member: f"You have been removed from the circle: {reason}",
    }.get(act)
    post_id = item.object_id if item.object_type == "post" else None
    if to_author:
        notify(session, user_id=item.author_id, kind=Kind.moderation, actor_id=moderator.id, space_id=item.space_id,
               post_id=post_id if act != ModAction.remove_member else None, text=to_author)
    flaggers = session.scalars(select(Flag.flagger_id).where(Flag.review_item_id == item.id)).all()
    if flaggers and act != ModAction.hide:
        outcome = {ModAction.dismiss: "reviewed it and left it up", ModAction.restore: "reviewed it and left it up",
                   ModAction.approve: "reviewed it and left it up"}.get(act, "reviewed it and acted on it")
        for flagger in set(flaggers):
            notify(session, user_id=flagger, kind=Kind.moderation, actor_id=moderator.id, space_id=item.space_id,
                   text=f"Thank you for flagging a {what}. A facilitator {outcome}.")


def set_gating(session: Session, actor: CircleAccess, membership: Membership, gated: bool) -> None:
    if not (actor.is_facilitator or actor.role == CircleRole.clinician):
        raise Forbidden("Only the circle's facilitators and clinicians can review a member's posts first.")
    if membership.role != CircleRole.member and membership.role != CircleRole.peer_supporter:
        raise InvalidInput("Only members' posts can be reviewed first.", field="user_id")
    if membership.gated == gated:
        return
    membership.gated = gated
    session.add(ModerationAction(space_id=membership.space_id, actor_id=actor.user.id,
                                 action=ModAction.gate if gated else ModAction.ungate,
                                 target_user_id=membership.user_id))
    identity.audit(session, actor.user.id, "membership.gated" if gated else "membership.ungated", "membership",
                   membership.id)
    notify(session, user_id=membership.user_id, kind=Kind.moderation, actor_id=actor.user.id,
           space_id=membership.space_id,
           text=("For a while your coach will read your posts before the circle sees them. This is to make "
                 "sure you get the right support; it is not a punishment.") if gated else
           "Your posts now go straight to the circle again.")


def member_of(session: Session, access: CircleAccess, user_id: int) -> Membership:
    membership = session.scalar(select(Membership).where(Membership.space_id == access.space.id,
                                                         Membership.user_id == user_id))
    if membership is None:
        raise NotFound("No member with that id in this circle.", field="user_id")
    return membership


def set_premoderation(session: Session, access: CircleAccess, on: bool) -> None:
    if not access.is_facilitator:
        raise Forbidden("Only the circle's facilitators can change pre-moderation.")
    if access.space.premoderated != on:
        access.space.premoderated = on
        identity.audit(session, access.user.id, "circle.premoderation", "space", access.space.id,
                       detail="on" if on else "off")


# --- escalation ---------------------------------------------------------------------------------

def rota(session: Session, space_id: int | None) -> list[int]:
    """The circle's clinicians in the order they were added: the first is on call, then the next."""
    if space_id is None:
        return []
    return list(session.scalars(
        select(Membership.user_id).join(User, User.id == Membership.user_id)
        .where(Membership.space_id == space_id, Membership.role == CircleRole.clinician, User.is_active.is_(True))
        .order_by(Membership.id)))


def _admins(session: Session) -> list[int]:
    return list(session.scalars(select(User.id).where(User.role == Role.admin, User.is_active.is_(True))
                                .order_by(User.id)))


def _tier_people(session: Session, escalation: Escalation) -> tuple[list[int], str]:
    clinicians = rota(session, escalation.space_id)
    if escalation.tier < len(clinicians):
        return [clinicians[escalation.tier]], "clinician"
    return _admins(session), "admins"


def open_escalation(session: Session, *, subject: User, space_id: int | None, object_type: str, object_id: int,
                    result: Triage, reasons: list[str] | None = None) -> Escalation:
    now = utcnow()
    escalation = Escalation(subject_id=subject.id, space_id=space_id, object_type=object_type, object_id=object_id,
                            level=result.level, reasons=reasons or [r.describe() for r in result.counted],
                            raised_at=now)
    session.add(escalation)
    session.flush()
    session.add(EscalationStep(escalation_id=escalation.id, at=now, kind="raised",
                               detail=f"{result.level}: " + "; ".join(escalation.reasons)[:900]))
    identity.audit(session, None, "escalation.raised", object_type, object_id, detail=f"escalation {escalation.id}")
    _alert_tier(session, escalation, now)
    return escalation


def _alert_tier(session: Session, escalation: Escalation, now: dt.datetime) -> None:
    people, who = _tier_people(session, escalation)
    subject = session.get(User, escalation.subject_id)
    text = (f"{'CRISIS' if escalation.level == 'crisis' else 'Risk'}: {subject.display_name} needs a clinician"
            f"{' now' if escalation.level == 'crisis' else ' today'}. Acknowledge within "
            f"{get_settings().escalation_ack_minutes} minutes.")
    for user_id in people:
        notify(session, user_id=user_id, kind=Kind.escalation, space_id=escalation.space_id, text=text)
        publish(session, "escalation.opened", Audience(user_id=user_id), actor_id=None, object_type="escalation",
                object_id=escalation.id, data={"escalation_id": escalation.id, "level": escalation.level,
                                               "tier": escalation.tier})
        schedule(session, "email.escalation", {"user_id": user_id, "escalation_id": escalation.id}, due_at=now,
                 dedupe_key=f"email.escalation:{escalation.id}:{escalation.tier}:{user_id}")
    names = ", ".join(session.get(User, p).display_name for p in people) or "nobody (no clinician or admin)"
    session.add(EscalationStep(escalation_id=escalation.id, at=now,
                               kind="notified" if escalation.tier == 0 else "escalated",
                               detail=f"{who}: {names}"))
    escalation.notified_at = escalation.notified_at or now
    escalation.deadline_at = now + dt.timedelta(minutes=get_settings().escalation_ack_minutes)
    schedule(session, "safety.escalation_deadline", {"escalation_id": escalation.id, "tier": escalation.tier},
             due_at=escalation.deadline_at, dedupe_key=f"escalation.deadline:{escalation.id}:{escalation.tier}")


def deadline_passed(session: Session, escalation_id: int, tier: int) -> str:
    """Called by the scheduler when an acknowledgement deadline passes."""
    escalation = session.get(Escalation, escalation_id)
    if escalation is None or escalation.status != EscalationStatus.open or escalation.tier != tier:
        return "already acknowledged"
    if escalation.tier >= len(rota(session, escalation.space_id)) + MAX_ADMIN_REALERTS:
        return "gave up re-alerting"
    escalation.tier += 1
    _alert_tier(session, escalation, utcnow())
    return "escalated"


def may_handle_escalation(session: Session, user: User, escalation: Escalation) -> bool:
    if user.role == Role.admin:
        return True
    if user.role != Role.clinician:
        return False
    return user.id in rota(session, escalation.space_id)


def acknowledge(session: Session, user: User, escalation: Escalation) -> Escalation:
    now = utcnow()
    claimed = session.execute(
        update(Escalation).where(Escalation.id == escalation.id, Escalation.status == EscalationStatus.open)
        .values(status=EscalationStatus.acknowledged, acknowledged_at=now, acknowledged_by_id=user.id)
        .execution_options(synchronize_session=False))
    session.refresh(escalation)
    if claimed.rowcount != 1:
        who = session.get(User, escalation.acknowledged_by_id) if escalation.acknowledged_by_id else None
        raise AlreadyHandled(f"{who.display_name if who else 'Someone'} already acknowledged this escalation"
                             f"{f' at {escalation.acknowledged_at:%H:%M} UTC' if escalation.acknowledged_at else ''}.",
                             field="escalation_id")
    session.add(EscalationStep(escalation_id=escalation.id, at=now, kind="acknowledged", actor_id=user.id))
    identity.audit(session, user.id, "escalation.acknowledged", "escalation", escalation.id)
    _publish_update(session, escalation, "escalation.acknowledged", user)
    return escalation


def resolve(session: Session, user: User, escalation: Escalation, *, outcome: str, note: str = "") -> Escalation:
    if outcome not in OUTCOMES:
        raise InvalidInput(f"Unknown outcome {outcome!r}; use one of: {', '.join(OUTCOMES)}.", field="outcome")
    if len(note) > 5000:
        raise InvalidInput("The note may have at most 5,000 characters.", field="note")
    if escalation.status == EscalationStatus.resolved:
        raise AlreadyHandled("This escalation is already resolved.", field="escalation_id")
    if escalation.status == EscalationStatus.open:
        acknowledge(session, user, escalation)
    now = utcnow()
    escalation.status, escalation.resolved_at, escalation.resolved_by_id = EscalationStatus.resolved, now, user.id
    escalation.outcome, escalation.note = outcome, note.strip()
    session.add(EscalationStep(escalation_id=escalation.id, at=now, kind="resolved", actor_id=user.id,
                               detail=f"{OUTCOMES[outcome]}. {note.strip()}"[:2000]))
    identity.audit(session, user.id, "escalation.resolved", "escalation", escalation.id, detail=outcome)
    item = session.scalar(select(ReviewItem).where(ReviewItem.object_type == escalation.object_type,
                                                   ReviewItem.object_id == escalation.object_id,
                                                   ReviewItem.status == ReviewStatus.open))
    if item is not None and escalation.object_type in ("post", "comment"):
        if outcome == "kept_hidden":
            handle(session, user, item, "dismiss", reason="Kept from the circle by a clinician")
            target = _target(session, item.object_type, item.object_id)
            target.visibility = Visibility.held.value
        elif outcome in ("released", "no_risk", "contacted", "referred"):
            handle(session, user, item, "approve")
    _publish_update(session, escalation, "escalation.resolved", user)
    return escalation


def subject_deleted(session: Session, escalation: Escalation, actor_id: int | None) -> None:
    """The account of an unresolved escalation's person was deleted. The escalation and the writing it
    is about stay (the person shows as "Deleted member"); its timeline says so, and the clinicians on
    call (or the admins) are told, since peerlift can no longer reach the person."""
    now = utcnow()
    session.add(EscalationStep(escalation_id=escalation.id, at=now, kind="account_deleted", actor_id=actor_id,
                               detail="The person's account was deleted. This escalation and the writing it is "
                                      "about are kept; reach the person through their care team."))
    for user_id in rota(session, escalation.space_id) or _admins(session):
        notify(session, user_id=user_id, kind=Kind.escalation, space_id=escalation.space_id,
               text=f"The person of escalation {escalation.id} deleted their account. The escalation stays "
                    f"{escalation.status.value}; reach them through their care team.",
               link=f"/safety/escalations/{escalation.id}")
    identity.audit(session, actor_id, "escalation.subject_deleted", "escalation", escalation.id)


def _publish_update(session: Session, escalation: Escalation, kind: str, actor: User) -> None:
    for user_id in set(rota(session, escalation.space_id)) | set(_admins(session)):
        publish(session, kind, Audience(user_id=user_id), actor_id=actor.id, object_type="escalation",
                object_id=escalation.id, data={"escalation_id": escalation.id, "status": escalation.status.value})


def get_escalation(session: Session, user: User, escalation_id: int) -> Escalation:
    escalation = session.get(Escalation, escalation_id)
    if escalation is None or not may_handle_escalation(session, user, escalation):
        raise NotFound("No escalation with that id.", field="escalation_id")
    return escalation


def get_review_item(session: Session, user: User, item_id: int, *, act: bool) -> ReviewItem:
    item = session.get(ReviewItem, item_id)
    if item is None:
        raise NotFound("No review item with that id.", field="review_item_id")
    role = session.scalar(select(Membership.role).where(Membership.space_id == item.space_id,
                                                        Membership.user_id == user.id))
    if role not in (CircleRole.facilitator, CircleRole.clinician, CircleRole.peer_supporter):
        raise NotFound("No review item with that id.", field="review_item_id")
    if act and role == CircleRole.peer_supporter:
        raise Forbidden("Peer supporters see the queue; the circle's facilitators act on it.")
    return item


def flag_reason_choices() -> list[tuple[str, str]]:
    return [(r.value, FLAG_REASON_TEXT[r]) for r in FlagReason]


def locate(session: Session, user: User, object_type: str, object_id: int) -> tuple[int, str]:
    """The circle whose queue gets a flag on writing ``user`` can see, and the page it is on
    (404 for anything they cannot see)."""
    from peerlift.policy import comment_access, conversation_access, post_access, report_access

    if object_type == "experience":
        access, _report = report_access(session, user, object_id)
        return access.space.id, f"/experiences/{object_id}"
    if object_type == "post":
        access, post = post_access(session, user, object_id)
        return access.space.id, f"/posts/{post.id}"
    if object_type == "comment":
        access, post, _comment = comment_access(session, user, object_id)
        return access.space.id, f"/posts/{post.id}#comment-{object_id}"
    if object_type == "message":
        message = session.get(Message, object_id)
        if message is None:
            raise NotFound("No message with that id.", field="object_id")
        conversation = conversation_access(session, user, message.conversation_id)
        space_id = _shared_space(session, conversation)
        if space_id is None:
            raise NotFound("No message with that id.", field="object_id")
        return space_id, f"/messages/{conversation.id}#message-{object_id}"
    raise NotFound("Nothing to flag there.", field="object_type")


def active_space(session: Session, space_id: int) -> Space:
    return session.get(Space, space_id)


# --- questionnaires ------------------------------------------------------------------------------

def _questionnaire_alert(session: Session, person: User, response, alert: str) -> None:
    """A questionnaire alert (PHQ-9 item 9 above 0) opens an escalation whatever the total."""
    space_id = _home_circle(session, person.id)
    answer = response.answers[8] if alert == "item9" and len(response.answers) > 8 else None
    why = (f"{response.instrument_key.upper()} item 9 (thoughts of being better off dead or of self-harm) answered "
           f"{answer}" if answer is not None else f"{response.instrument_key.upper()} alert {alert}")
    open_escalation(session, subject=person, space_id=space_id, object_type="response", object_id=response.id,
                    result=Triage("red", ()), reasons=[why])


def _questionnaire_free_text(session: Session, person: User, response, text: str) -> None:
    screen_free_text(session, person, "response", response.id, text)


def _register_questionnaire_hooks() -> None:
    from peerlift.tracking import hooks as tracking

    if _questionnaire_alert not in tracking.ALERT_RAISED:
        tracking.ALERT_RAISED.append(_questionnaire_alert)
    if _questionnaire_free_text not in tracking.FREE_TEXT_ANSWERED:
        tracking.FREE_TEXT_ANSWERED.append(_questionnaire_free_text)


_register_questionnaire_hooks()
