"""Reads of the notification centre: a person's own notifications, as sentences and links."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, aliased

from peerlift.community.models import Space, SpaceKind
from peerlift.errors import InvalidInput
from peerlift.identity.models import User
from peerlift.notify.models import DEFAULT_CHANNELS, Channel, Kind, Notification, Preference
from peerlift.notify.service import ALWAYS_IN_APP, settings_for, unread_count


@dataclass
class NotificationView:
    id: int
    kind: str
    text: str
    link: str
    actor_name: str | None
    circle_name: str | None
    created_at: dt.datetime
    read: bool


def _sentence(kind: Kind, actor: str, circle: str | None, text: str) -> str:
    where = f" in {circle}" if circle else ""
    return {
        Kind.mention: f"{actor} mentioned you{where}",
        Kind.reply: f"{actor} replied to you{where}",
        Kind.reaction: f"{actor} reacted to your post{where}",
        Kind.message: f"{actor} sent you a message",
        Kind.facilitator_answer: f"{actor}, your coach, answered your post{where}",
        Kind.prompt: text or "A message from your programme",
        Kind.moderation: text or "A note from your facilitator",
        Kind.escalation: text or "A member needs a clinician",
        Kind.connection_request: f"{actor} would like to connect with you",
        Kind.connection_accepted: f"{actor} accepted your request to connect",
        Kind.professional_decision: text or "An admin decided on your application as a professional",
        Kind.answer_accepted: f"{actor} accepted your answer{where}",
    }[kind]


def _link(n: Notification) -> str:
    if n.link:
        return n.link
    if n.kind == Kind.escalation:
        return "/safety/escalations"
    if n.conversation_id:
        return f"/messages/{n.conversation_id}"
    if n.post_id:
        return f"/posts/{n.post_id}" + (f"#comment-{n.comment_id}" if n.comment_id else "")
    if n.space_id:
        return f"/circles/{n.space_id}"
    return "/notifications"


def notifications(session: Session, user: User, *, before: int | None = None,
                  limit: int = 30) -> tuple[list[NotificationView], int | None]:
    if not 1 <= limit <= 100:
        raise InvalidInput("limit is between 1 and 100.", field="limit")
    actor = aliased(User)
    # In an open community the actor goes by their community name, never their real one.
    shown_name = case((actor.id.is_(None), None),
                      (Space.kind == SpaceKind.community, func.coalesce(actor.pseudonym, "A community member")),
                      else_=actor.display_name)
    query = (select(Notification, shown_name, Space.name)
             .outerjoin(actor, actor.id == Notification.actor_id)
             .outerjoin(Space, Space.id == Notification.space_id)
             .where(Notification.user_id == user.id)
             .order_by(Notification.id.desc()).limit(limit + 1))
    if before is not None:
        query = query.where(Notification.id < before)
    rows = session.execute(query).all()
    page, more = rows[:limit], len(rows) > limit
    views = [NotificationView(id=n.id, kind=n.kind.value, text=_sentence(n.kind, name or "Someone", circle, n.text),
                              link=_link(n), actor_name=name, circle_name=circle, created_at=n.created_at,
                              read=n.read_at is not None)
             for n, name, circle in page]
    return views, (page[-1][0].id if more and page else None)


@dataclass
class PreferencesView:
    channels: dict[str, str]
    quiet_start: str
    quiet_end: str
    digest: str
    digest_hour: int


def preferences(session: Session, user: User) -> PreferencesView:
    chosen = dict(session.execute(select(Preference.kind, Preference.channel).where(Preference.user_id == user.id)).all())
    channels = {kind.value: (chosen.get(kind) or DEFAULT_CHANNELS[kind]).value for kind in Kind
                if kind not in ALWAYS_IN_APP}
    s = settings_for(session, user.id)
    return PreferencesView(channels=channels, quiet_start=s.quiet_start, quiet_end=s.quiet_end, digest=s.digest.value,
                           digest_hour=s.digest_hour)


__all__ = ["Channel", "notifications", "preferences", "unread_count"]
