"""The audit trail: append-only and hash-chained.

Each entry stores the hash of the entry before it and its own hash over its fields and that link,
so changing or removing any entry breaks the chain at that point, and ``verify`` names it. Entries
of a unit of work are chained and written just before it commits, one unit at a time (the same
PostgreSQL advisory lock that orders live events; SQLite has one writer), so the chain follows the
order of commits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from peerlift.db import utcnow
from peerlift.events import EVENT_ORDER_LOCK
from peerlift.identity.models import AuditEntry

PENDING = "peerlift_pending_audit"
GENESIS = "0" * 64


def record(session: Session, actor_id: int | None, action: str, object_type: str = "",
           object_id: int | None = None, ip: str = "", detail: str = "") -> AuditEntry:
    entry = AuditEntry(at=utcnow(), actor_id=actor_id, action=action, object_type=object_type,
                       object_id=object_id, ip_address=ip, detail=detail)
    session.info.setdefault(PENDING, []).append(entry)
    return entry


def entry_hash(entry: AuditEntry, previous: str) -> str:
    fields = [previous, entry.at.isoformat(timespec="microseconds"), entry.actor_id, entry.action,
              entry.object_type, entry.object_id, entry.ip_address, entry.detail]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


@event.listens_for(Session, "before_commit")
def _chain(session: Session) -> None:
    if session.in_nested_transaction():
        return
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENT_ORDER_LOCK})
    previous = session.scalar(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)) or GENESIS
    for entry in pending:
        entry.prev_hash = previous
        entry.hash = previous = entry_hash(entry, previous)
        session.add(entry)
    session.flush()


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous_transaction) -> None:
    if not previous_transaction.nested:
        session.info.pop(PENDING, None)


@dataclass(frozen=True)
class Break:
    entry_id: int
    problem: str


def verify(session: Session, batch: int = 5_000) -> tuple[int, Break | None]:
    """Walk the chain in order: (entries checked, the first break or None)."""
    previous, checked = GENESIS, 0
    for entry in _entries(session, batch):
        if entry.prev_hash != previous:
            return checked, Break(entry.id, "the entry before it was changed or removed"
                                  if checked else "the first entries were removed")
        if entry_hash(entry, previous) != entry.hash:
            return checked, Break(entry.id, "this entry was changed")
        previous, checked = entry.hash, checked + 1
    return checked, None


def _entries(session: Session, batch: int) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = list(session.scalars(select(AuditEntry).where(AuditEntry.id > last).order_by(AuditEntry.id)
                                    .limit(batch)))
        if not rows:
            return
        yield from rows
        last = rows[-1].id
        session.expunge_all()
