"""The one door for events.

Every service write calls :func:`publish` inside its transaction. The event row is both
the engagement record research reads and the source of truth for live delivery: each
event gets a monotonically increasing id from the database, and listeners registered
with :func:`subscribe` learn of it only after the transaction commits (never on rollback).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, event, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from peerlift.db import Base, UTCDateTime, on_commit, utcnow


class Event(Base):
    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_space_id_id", "space_id", "id"),
        Index("ix_event_actor_id_id", "actor_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(48))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True)
    # Audience: the members of a space, the two people of a conversation, or one person.
    space_id: Mapped[int | None] = mapped_column(ForeignKey("space.id", ondelete="CASCADE"), nullable=True)
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversation.id", ondelete="CASCADE"), nullable=True, index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), nullable=True, index=True)
    object_type: Mapped[str] = mapped_column(String(32), default="")
    object_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


EVENT_ORDER_LOCK = 7_301_104  # an arbitrary constant naming the advisory lock

# Events that travel on the live stream; the rest are engagement records only.
LIVE_KINDS = frozenset({
    "post.created", "post.edited", "post.deleted", "post.pinned", "post.unpinned",
    "comment.created", "comment.edited", "comment.deleted",
    "reaction.added", "reaction.removed", "poll.voted",
    "member.joined", "member.role_changed",
    "conversation.opened", "message.created", "conversation.read",
    "notification.created", "notifications.read",
    "post.released", "comment.released", "escalation.opened", "escalation.acknowledged", "escalation.resolved",
    "inbox.card_created", "inbox.card_updated",
    "experience.created", "experience.edited", "experience.deleted", "experience.released",
})


@dataclass(frozen=True)
class Audience:
    space_id: int | None = None
    conversation_id: int | None = None
    user_id: int | None = None


Listener = Callable[[Event], None]
_listeners: list[Listener] = []
_listeners_lock = Lock()
WriteHook = Callable[[Session, list[Event]], None]
_write_hooks: list[WriteHook] = []


def add_write_hook(hook: WriteHook) -> None:
    """Call ``hook(session, events)`` inside the transaction, right after its events are inserted
    (they have their ids): work it adds commits with them, or not at all."""
    if hook not in _write_hooks:
        _write_hooks.append(hook)


def subscribe(listener: Listener) -> Callable[[], None]:
    """Call ``listener(event)`` after each committed event; returns an unsubscribe function."""
    with _listeners_lock:
        _listeners.append(listener)

    def _unsubscribe() -> None:
        with _listeners_lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return _unsubscribe


def _dispatch(event: Event) -> None:
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(event)


def publish(
    session: Session,
    kind: str,
    audience: Audience,
    *,
    actor_id: int | None,
    object_type: str = "",
    object_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    """Record an event of this unit of work. It is written, and gets its id, as the unit commits."""
    if audience.space_id is not None and _in_community(session, audience.space_id):
        data = {**(data or {}), "pseudonymous": True}
    event = Event(
        kind=kind,
        at=utcnow(),
        actor_id=actor_id,
        space_id=audience.space_id,
        conversation_id=audience.conversation_id,
        user_id=audience.user_id,
        object_type=object_type,
        object_id=object_id,
        data=data or {},
    )
    session.info.setdefault(PENDING, []).append(event)
    return event


def _in_community(session: Session, space_id: int) -> bool:
    """Whether a space is an open community: its live events then carry no account ids (people there go
    by a community name). The space is nearly always loaded already."""
    from peerlift.community.models import Space, SpaceKind

    space = session.get(Space, space_id)
    return space is not None and space.kind == SpaceKind.community


PENDING = "peerlift_pending_events"
MARKS = "peerlift_event_marks"


@event.listens_for(Session, "before_commit")
def _write_events(session: Session) -> None:
    """Ids must commit in the order they are handed out, or a client resuming from
    Last-Event-ID could skip an event that committed late. The events of a unit of work are
    inserted last, just before its commit; on PostgreSQL a transaction-scoped advisory lock
    taken here makes "take ids, commit" one step at a time (SQLite has one writer anyway), and
    it is held only for that short step."""
    if session.in_nested_transaction():
        return  # a savepoint being released: the events wait for the real commit
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENT_ORDER_LOCK})
    session.add_all(pending)
    session.flush()
    for hook in list(_write_hooks):
        hook(session, pending)
    for committed in pending:
        on_commit(session, lambda committed=committed: _dispatch(committed))


@event.listens_for(Session, "after_transaction_create")
def _mark(session: Session, transaction) -> None:
    if transaction.nested:
        session.info.setdefault(MARKS, {})[id(transaction)] = len(session.info.get(PENDING, []))


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous_transaction) -> None:
    """A rolled-back savepoint drops its own events; a full rollback drops them all."""
    marks = session.info.get(MARKS, {})
    if previous_transaction.nested and id(previous_transaction) in marks:
        keep = marks.pop(id(previous_transaction))
        if PENDING in session.info:
            del session.info[PENDING][keep:]
    elif not previous_transaction.nested:
        session.info.pop(PENDING, None)
        session.info.pop(MARKS, None)
