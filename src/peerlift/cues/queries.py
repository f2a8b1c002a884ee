"""Reads of the cues domain: the inbox of a facilitator, one card with its history, the
decision records research exports, and the rules in force."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from peerlift.community.models import Space
from peerlift.cues.models import CardStatus, CueDecision, InboxAction, InboxCard
from peerlift.identity.models import User
from peerlift.policy import AccessibleSpaceID, facilitated_circles
from peerlift.research.models import Arm


@dataclass(frozen=True)
class CardView:
    id: int
    circle_id: int
    circle_name: str
    member_id: int
    member_name: str
    rule: str
    reason: str
    link: str
    created_at: dt.datetime
    status: str
    snoozed_until: dt.datetime | None
    handled_by: str | None
    handled_at: dt.datetime | None


@dataclass(frozen=True)
class ActionView:
    action: str
    actor_id: int | None
    actor_name: str | None
    at: dt.datetime
    detail: str


def _cards(session: Session, circles: list[AccessibleSpaceID], where, limit: int) -> list[CardView]:
    if not circles:
        return []
    member, handler = aliased(User), aliased(User)
    rows = session.execute(
        select(InboxCard, member.display_name, Space.name, handler.display_name)
        .join(member, member.id == InboxCard.user_id)
        .join(Space, Space.id == InboxCard.space_id)
        .outerjoin(handler, handler.id == InboxCard.handled_by_id)
        .where(InboxCard.space_id.in_(circles), *where)
        .order_by(InboxCard.id.desc()).limit(limit)).all()
    return [CardView(c.id, c.space_id, circle, c.user_id, name, f"{c.ruleset}/{c.rule_id}", c.reason, c.link,
                     c.created_at, c.status.value, c.snoozed_until, handled, c.handled_at)
            for c, name, circle, handled in rows]


def inbox(session: Session, user: User, *, status: str = "open", limit: int = 100) -> list[CardView]:
    """The cards of the circles this person facilitates, newest first: open ones, or all."""
    where = [InboxCard.status == CardStatus.open] if status == "open" else []
    return _cards(session, facilitated_circles(session, user), where, limit)


def card(session: Session, user: User, card: InboxCard) -> tuple[CardView, list[ActionView]]:
    view = _cards(session, [AccessibleSpaceID(card.space_id)], [InboxCard.id == card.id], 1)[0]
    actions = [ActionView(a.action, a.actor_id, name, a.at, a.detail) for a, name in session.execute(
        select(InboxAction, User.display_name).outerjoin(User, User.id == InboxAction.actor_id)
        .where(InboxAction.card_id == card.id).order_by(InboxAction.id))]
    return view, actions


def decisions(session: Session, *, study_id: int | None = None, circle_id: int | None = None,
              since: dt.datetime | None = None) -> list[dict]:
    """Every decision point, oldest first, as flat records for export: the rule and its file
    version, the person, the time, availability (and why not), the probability, the random draw,
    and whether the cue was sent. Filtered by study (through the circle's arm) and/or circle."""
    query = (select(CueDecision, Space.arm_id, Arm.study_id)
             .outerjoin(Space, Space.id == CueDecision.space_id)
             .outerjoin(Arm, Arm.id == Space.arm_id)
             .order_by(CueDecision.id))
    if study_id is not None:
        query = query.where(Arm.study_id == study_id)
    if circle_id is not None:
        query = query.where(CueDecision.space_id == circle_id)
    if since is not None:
        query = query.where(CueDecision.decided_at >= since)
    return [{
        "decision_id": d.id, "ruleset": d.ruleset, "ruleset_version": d.ruleset_version, "rule_id": d.rule_id,
        "user_id": d.user_id, "circle_id": d.space_id, "arm_id": arm_id, "study_id": study,
        "trigger": d.trigger, "event_id": d.event_id, "decided_at": d.decided_at, "available": d.available,
        "unavailable_reason": d.unavailable_reason or None, "probability": d.probability, "draw": d.draw,
        "sent": d.sent, "action": d.action, "outcome": d.outcome or None,
    } for d, arm_id, study in session.execute(query)]
