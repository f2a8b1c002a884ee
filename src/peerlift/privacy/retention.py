"""Retention: what has outlived its PEERLIFT_RETENTION_DAYS_* is deleted (``peerlift purge``, and
daily by the scheduler worker). 0 days keeps a kind forever.

Never purged: the audit trail (append-only and hash-chained: removing an entry would break it),
and anything a study holds. Studies have no end date in peerlift, so every study's data is kept:
events in a study's circles, and events of its participants (anyone with an enrolment), of its
team and of the members of its circles, and of their direct conversations.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select, union
from sqlalchemy.orm import Session

from peerlift.community.models import Conversation, Membership, Space
from peerlift.db import utcnow
from peerlift.events import Event
from peerlift.identity import service as identity
from peerlift.identity.models import AuthSession, LoginFailure, PasswordReset, User
from peerlift.settings import get_settings


@dataclass(frozen=True)
class Kind:
    key: str
    setting: str      # the Settings attribute with its days
    about: str
    where: Callable[[dt.datetime], tuple]  # (model, *conditions) of what expired before the cutoff


def _study_people():
    from peerlift.research.models import Enrolment, StudyMember

    circles = select(Space.id).where(Space.arm_id.is_not(None))
    return union(select(Enrolment.user_id).where(Enrolment.user_id.is_not(None)),
                 select(StudyMember.user_id),
                 select(Membership.user_id).where(Membership.space_id.in_(circles)))


def _outside_studies() -> list:
    """Conditions on an event: not in a study's circle, nor in a conversation with a study's person."""
    circles = select(Space.id).where(Space.arm_id.is_not(None))
    people = _study_people()
    conversations = select(Conversation.id).where(or_(Conversation.user_low_id.in_(people),
                                                      Conversation.user_high_id.in_(people)))
    return [or_(Event.space_id.is_(None), Event.space_id.not_in(circles)),
            or_(Event.conversation_id.is_(None), Event.conversation_id.not_in(conversations))]


def _events(cutoff: dt.datetime) -> tuple:
    people = _study_people()
    return (Event, Event.at < cutoff, *_outside_studies(),
            or_(Event.actor_id.is_(None), Event.actor_id.not_in(people)),
            or_(Event.user_id.is_(None), Event.user_id.not_in(people)))


def _deleted_accounts(cutoff: dt.datetime) -> tuple:
    from peerlift.research.models import Enrolment

    unheld = select(User.id).where(User.deleted_at.is_not(None), User.deleted_at < cutoff, User.id.not_in(
        select(Enrolment.user_id).where(Enrolment.user_id.is_not(None))))
    return (Event, or_(Event.actor_id.in_(unheld), Event.user_id.in_(unheld)), *_outside_studies())


def _notifications(cutoff: dt.datetime) -> tuple:
    from peerlift.notify.models import Notification

    return (Notification, Notification.created_at < cutoff)


KINDS: tuple[Kind, ...] = (
    Kind("notifications", "retention_days_notifications", "notifications older than the limit", _notifications),
    Kind("sessions", "retention_days_sessions", "sign-in sessions expired longer ago than the limit",
         lambda cutoff: (AuthSession, AuthSession.expires_at < cutoff)),
    Kind("login_failures", "retention_days_login_failures", "failed sign-ins older than the limit",
         lambda cutoff: (LoginFailure, LoginFailure.at < cutoff)),
    Kind("password_resets", "retention_days_password_resets", "password-reset links expired longer ago",
         lambda cutoff: (PasswordReset, PasswordReset.expires_at < cutoff)),
    Kind("deleted_accounts", "retention_days_deleted_accounts",
         "engagement events of accounts deleted longer ago, that no study holds", _deleted_accounts),
    Kind("events", "retention_days_events",
         "engagement events older than the limit of people in no study, outside study circles", _events),
)


def setting_name(kind: Kind) -> str:
    return f"PEERLIFT_{kind.setting.upper()}"


def purge(session: Session, *, now: dt.datetime | None = None, dry_run: bool = False,
          progress: Callable[[Kind, int], None] | None = None) -> dict[str, int]:
    """Delete (or, ``dry_run``, only count) what has expired, kind by kind. A real purge adds one
    audit entry with the counts; a dry run writes nothing."""
    settings = get_settings()
    now = now or utcnow()
    counts: dict[str, int] = {}
    for kind in KINDS:
        days = getattr(settings, kind.setting)
        if days <= 0:
            counts[kind.key] = 0
        else:
            model, *conditions = kind.where(now - dt.timedelta(days=days))
            if dry_run:
                counts[kind.key] = session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0
            else:
                counts[kind.key] = session.execute(delete(model).where(*conditions)
                                                   .execution_options(synchronize_session=False)).rowcount or 0
        if progress is not None:
            progress(kind, counts[kind.key])
    if not dry_run:
        identity.audit(session, None, "retention.purged", detail=json.dumps(
            {"counts": counts, "days": {k.key: getattr(settings, k.setting) for k in KINDS}}, sort_keys=True))
    return counts
