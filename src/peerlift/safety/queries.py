"""Reads of the safety domain: the review queue, escalations and a person's risk history."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerlift.community.models import Space, SpaceKind
from peerlift.identity.audit import Read
from peerlift.identity.models import Role, User
from peerlift.policy import AccessibleSpaceID
from peerlift.safety.models import (
    FLAG_REASON_TEXT,
    Escalation,
    EscalationStatus,
    EscalationStep,
    Flag,
    ReviewItem,
    ReviewStatus,
    TriageRecord,
)
from peerlift.safety.service import rota, text_of, writing_models


@dataclass
class ReviewView:
    id: int
    circle_id: int
    object_type: str
    object_id: int
    post_id: int | None
    author_id: int
    author_name: str
    body: str
    source: str
    level: str
    reasons: list[str]
    flags: list[str]
    status: str
    visibility: str
    opened_at: dt.datetime
    handled_by: str | None
    handled_at: dt.datetime | None
    action: str | None


def review_queue(session: Session, space_id: AccessibleSpaceID, *, status: str = "open",
                 limit: int = 100) -> list[ReviewView]:
    items = list(session.scalars(select(ReviewItem).where(ReviewItem.space_id == space_id,
                                                          ReviewItem.status == ReviewStatus(status))
                                 .order_by(ReviewItem.opened_at).limit(limit)))
    community = session.scalar(select(Space.kind).where(Space.id == space_id)) == SpaceKind.community
    out = []
    for item in items:
        target = writing_models()[item.object_type]
        obj = session.get(target, item.object_id)
        record = session.scalar(select(TriageRecord).where(TriageRecord.object_type == item.object_type,
                                                           TriageRecord.object_id == item.object_id))
        flags = [f"{FLAG_REASON_TEXT[f.reason]}{': ' + f.note if f.note else ''}"
                 for f in session.scalars(select(Flag).where(Flag.review_item_id == item.id).order_by(Flag.id))]
        author = session.get(User, item.author_id)
        handler = session.get(User, item.handled_by_id) if item.handled_by_id else None
        out.append(ReviewView(
            id=item.id, circle_id=item.space_id, object_type=item.object_type, object_id=item.object_id,
            post_id=obj.id if item.object_type == "post" else getattr(obj, "post_id", None),
            author_id=item.author_id, author_name=_name(author, community),
            body=text_of(obj) if obj is not None else "", source=item.source.value, level=item.level,
            reasons=record.reasons if record else [], flags=flags, status=item.status.value,
            visibility=getattr(obj, "visibility", "visible"), opened_at=item.opened_at,
            handled_by=_name(handler, community) if handler else None, handled_at=item.handled_at,
            action=item.action))
    return out


def _name(user: User | None, community: bool) -> str:
    """In an open community the moderators know people (anonymous authors too) by their community name;
    their real name reaches only the clinicians and admins of an escalation."""
    if user is None:
        return "(gone)"
    return (user.pseudonym or "Community member") if community else user.display_name


@dataclass
class StepView:
    at: dt.datetime
    kind: str
    actor: str | None
    detail: str


@dataclass
class EscalationView:
    id: int
    subject_id: int
    subject_name: str
    circle_id: int | None
    circle_name: str | None
    object_type: str
    object_id: int
    text: str
    level: str
    reasons: list[str]
    status: str
    tier: int
    raised_at: dt.datetime
    deadline_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    resolved_at: dt.datetime | None
    outcome: str
    note: str
    steps: list[StepView] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)


def _text_of(session: Session, object_type: str, object_id: int) -> str:
    model = writing_models().get(object_type)
    obj = session.get(model, object_id) if model else None
    return text_of(obj) if obj is not None else ""


def _view(session: Session, e: Escalation, *, full: bool) -> EscalationView:
    subject = session.get(User, e.subject_id)
    space = session.get(Space, e.space_id) if e.space_id else None
    acker = session.get(User, e.acknowledged_by_id) if e.acknowledged_by_id else None
    view = EscalationView(
        id=e.id, subject_id=e.subject_id, subject_name=subject.display_name, circle_id=e.space_id,
        circle_name=space.name if space else None, object_type=e.object_type, object_id=e.object_id,
        text=_text_of(session, e.object_type, e.object_id), level=e.level, reasons=list(e.reasons),
        status=e.status.value, tier=e.tier, raised_at=e.raised_at, deadline_at=e.deadline_at,
        acknowledged_at=e.acknowledged_at, acknowledged_by=acker.display_name if acker else None,
        resolved_at=e.resolved_at, outcome=e.outcome, note=e.note)
    if full:
        for step in session.scalars(select(EscalationStep).where(EscalationStep.escalation_id == e.id)
                                    .order_by(EscalationStep.id)):
            actor = session.get(User, step.actor_id) if step.actor_id else None
            view.steps.append(StepView(step.at, step.kind, actor.display_name if actor else None, step.detail))
        view.history = risk_history(session, e.subject_id)
    return view


def escalations(session: Session, user: User, *, status: str = "open", limit: int = 100) -> list[EscalationView]:
    """Open escalations oldest first (the longest waiting at the top); closed ones newest first."""
    query = select(Escalation)
    if status == "open":
        query = query.where(Escalation.status != EscalationStatus.resolved).order_by(Escalation.raised_at)
    else:
        query = query.where(Escalation.status == EscalationStatus.resolved).order_by(Escalation.resolved_at.desc())
    rows = list(session.scalars(query.limit(limit * 4)))
    if user.role != Role.admin:
        rows = [e for e in rows if user.id in rota(session, e.space_id)]
    return [_view(session, e, full=False) for e in rows[:limit]]


def escalation(session: Session, e: Escalation) -> EscalationView:
    return _view(session, e, full=True)


def risk_history(session: Session, user_id: int, limit: int = 30) -> list[dict]:
    """The person's writing triaged above green and their questionnaire scores, newest first."""
    from peerlift.tracking.models import QuestionnaireResponse

    rows = session.scalars(select(TriageRecord).where(TriageRecord.author_id == user_id,
                                                      TriageRecord.level != "green")
                           .order_by(TriageRecord.id.desc()).limit(limit))
    history = [{"at": r.created_at, "level": r.level, "what": r.object_type, "reasons": r.reasons} for r in rows]
    scores = session.scalars(select(QuestionnaireResponse).where(QuestionnaireResponse.user_id == user_id)
                             .order_by(QuestionnaireResponse.id.desc()).limit(limit))
    history += [{"at": q.created_at, "level": q.band, "what": f"{q.instrument_key.upper()} score {q.total}",
                 "reasons": [f"alert: {a}" for a in q.alerts]} for q in scores]
    return sorted(history, key=lambda h: h["at"], reverse=True)[:limit]


def escalation_reads(views: list[EscalationView]) -> list[Read]:
    """What a list of escalations shows of each person it is about, for the audit trail."""
    return [Read("read.escalation", v.subject_id, "escalation", v.id) for v in views]


def review_reads(views: list[ReviewView]) -> list[Read]:
    """What the review queue shows of each author (their writing with its triage and flags)."""
    return [Read("read.review_queue", v.author_id, "review_item", v.id, f"circle {v.circle_id}") for v in views]


def gated_members(session: Session, space_id: AccessibleSpaceID) -> set[int]:
    """The members of a circle whose writing is reviewed before the circle sees it."""
    from peerlift.community.models import Membership

    return set(session.scalars(select(Membership.user_id).where(Membership.space_id == space_id,
                                                                Membership.gated.is_(True))))
