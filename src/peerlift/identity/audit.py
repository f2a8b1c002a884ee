"""The audit trail: append-only and hash-chained.

Each entry stores the hash of the entry before it and its own hash over its fields and that link,
so changing or removing any entry breaks the chain at that point, and ``verify`` names it. Entries
of a unit of work are chained and written just before it commits, one unit at a time (the same
PostgreSQL advisory lock that orders live events; SQLite has one writer), so the chain follows the
order of commits.

Reads of someone else's clinical data are audited too (:func:`record_reads`): who saw whose data,
what and from where. Pages and API routes that read answer in a read-only unit of work, so those
entries are written in a short unit of their own, before the data is answered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import event, func, or_, select, text
from sqlalchemy.orm import Session, aliased

from peerlift.db import transaction, utcnow
from peerlift.errors import InvalidInput
from peerlift.events import EVENT_ORDER_LOCK
from peerlift.identity.models import AuditEntry, User

PENDING = "peerlift_pending_audit"
GENESIS = "0" * 64


def record(session: Session, actor_id: int | None, action: str, object_type: str = "",
           object_id: int | None = None, ip: str = "", detail: str = "",
           subject_id: int | None = None) -> AuditEntry:
    entry = AuditEntry(at=utcnow(), actor_id=actor_id, action=action, object_type=object_type,
                       object_id=object_id, ip_address=ip[:64], detail=detail, subject_id=subject_id)
    session.info.setdefault(PENDING, []).append(entry)
    return entry


def entry_hash(entry: AuditEntry, previous: str) -> str:
    fields = [previous, entry.at.isoformat(timespec="microseconds"), entry.actor_id, entry.action,
              entry.object_type, entry.object_id, entry.ip_address, entry.detail]
    subject_id = getattr(entry, "subject_id", None)
    if subject_id is not None:  # entries without a subject hash as they did before the column existed
        fields.append(subject_id)
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


def verify_trail() -> tuple[int, Break | None]:
    """:func:`verify` in a read-only unit of its own (it empties its session as it goes)."""
    with transaction(write=False) as session:
        return verify(session)


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


# --- reads of clinical data ---------------------------------------------------------------------------

# What each audited read is, as the person whose data it was reads it in their access log.
READS = {
    "read.tracking": "your tracking entries, goals and charts",
    "read.questionnaire_responses": "your questionnaire answers and scores",
    "read.escalation": "a safety escalation about you, with its triage reasons",
    "read.review_queue": "your flagged writing in the review queue, with its triage reasons",
    "read.study_metrics": "your participation figures in a study",
    "read.research_export": "your study data, in a pseudonymised export for analysis",
    "read.health_profile": "the parts of your health profile you share",
}
IDS_IN_DETAIL = 20


@dataclass(frozen=True)
class Read:
    """One thing of someone's clinical data that was shown: what kind (the action), whose (the
    subject) and which object."""

    action: str
    subject_id: int
    object_type: str
    object_id: int | None = None
    detail: str = ""


def record_reads(session: Session, actor_id: int | None, reads: Iterable[Read], *, ip: str = "") -> int:
    """Audit that ``actor_id`` was shown other people's clinical data: one entry per kind of read
    and person shown (the subject), naming the object shown, or the objects when there were
    several. A person's own data is not audited.

    In a unit of work that writes, the entries join it and are chained as it commits. A read-only
    unit (every GET request) cannot write, so they are written at once in a short unit of their
    own; call this after the data is computed and before it is answered, so nothing is shown
    without its entry (and a failure to write the trail fails the request). Returns the number of
    entries."""
    shown: dict[tuple[str, int], tuple[list[tuple[str, int | None]], list[str]]] = {}
    for read in reads:
        if read.action not in READS:
            raise ValueError(f"{read.action!r} is not an audited read; add it to READS")
        if read.subject_id == actor_id:
            continue
        objects, details = shown.setdefault((read.action, read.subject_id), ([], []))
        if (read.object_type, read.object_id) not in objects:
            objects.append((read.object_type, read.object_id))
        if read.detail and read.detail not in details:
            details.append(read.detail)
    if not shown:
        return 0
    rows = [(action, subject_id, *_object_of(objects, "; ".join(details)))
            for (action, subject_id), (objects, details) in shown.items()]

    def add(unit: Session) -> None:
        for action, subject_id, object_type, object_id, detail in rows:
            record(unit, actor_id, action, object_type, object_id, ip=ip, detail=detail, subject_id=subject_id)

    if _writes(session):
        add(session)
    else:
        with transaction(session.get_bind()) as unit:
            add(unit)
    return len(rows)


def _object_of(objects: list[tuple[str, int | None]], detail: str) -> tuple[str, int | None, str]:
    if len(objects) == 1:
        return objects[0][0], objects[0][1], detail
    kinds = {kind for kind, _id in objects}
    kind = kinds.pop() if len(kinds) == 1 else ""
    named = [str(oid) if kind else f"{k} {oid}" for k, oid in objects[:IDS_IN_DETAIL]]
    more = f" and {len(objects) - IDS_IN_DETAIL} more" if len(objects) > IDS_IN_DETAIL else ""
    listed = f"{len(objects)} shown: {', '.join(named)}{more}"
    return kind, None, f"{detail}; {listed}" if detail else listed


def _writes(session: Session) -> bool:
    return bool(session.get_bind().get_execution_options().get("peerlift_write"))


# --- searching the trail ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    actor: str = ""         # a handle (@maya), an email address or an account id
    action: str = ""        # the start of the action, e.g. "read." or "read.questionnaire"
    object_type: str = ""
    object_id: int | None = None
    subject: str = ""       # whose data was read: a handle, an email address or an account id
    since: dt.datetime | None = None   # from this moment on
    until: dt.datetime | None = None   # before this moment
    ip: str = ""            # the start of the client address, e.g. "10.0."


@dataclass
class EntryView:
    id: int
    at: dt.datetime
    actor_id: int | None
    actor_handle: str | None
    actor_name: str | None
    action: str
    object_type: str
    object_id: int | None
    subject_id: int | None
    subject_handle: str | None
    subject_name: str | None
    ip_address: str
    detail: str


MAX_ID = 2**63 - 1


def person_id(session: Session, ref: str, field: str) -> int:
    """The account id named by ``ref``: an id, a handle (with or without @) or an email address.
    An id is taken as given, so entries about a removed account can still be found."""
    ref = ref.strip()
    if ref.isascii() and ref.isdigit():
        if int(ref) > MAX_ID:
            raise InvalidInput(f"No account has the id {ref}.", field=field)
        return int(ref)
    if "@" in ref.lstrip("@"):
        found = session.scalar(select(User.id).where(User.email == ref.lower()))
    else:
        found = session.scalar(select(User.id).where(func.lower(User.handle) == ref.lstrip("@").lower()))
    if found is None:
        raise InvalidInput(f"No account {ref!r}: give a handle (like @alice), an email address or an id.",
                           field=field)
    return found


def search(session: Session, filters: Filters, *, before: int | None = None,
           limit: int = 50) -> tuple[list[EntryView], int | None]:
    """Entries matching every filter given, newest first, ``limit`` at a time: the page of entries
    older than entry ``before``, and the ``before`` of the next page (None on the last)."""
    if filters.since and filters.until and filters.since >= filters.until:
        raise InvalidInput("The end of the date range comes before its start.", field="until")
    actor, subject = aliased(User), aliased(User)
    query = (select(AuditEntry, actor.handle, actor.display_name, subject.handle, subject.display_name)
             .outerjoin(actor, actor.id == AuditEntry.actor_id)
             .outerjoin(subject, subject.id == AuditEntry.subject_id))
    if filters.actor.strip():
        query = query.where(AuditEntry.actor_id == person_id(session, filters.actor, "actor"))
    if filters.subject.strip():
        query = query.where(AuditEntry.subject_id == person_id(session, filters.subject, "subject"))
    if filters.action.strip():
        query = query.where(AuditEntry.action.startswith(filters.action.strip(), autoescape=True))
    if filters.object_type.strip():
        query = query.where(AuditEntry.object_type == filters.object_type.strip())
    if filters.object_id is not None:
        query = query.where(AuditEntry.object_id == filters.object_id)
    if filters.since is not None:
        query = query.where(AuditEntry.at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEntry.at < filters.until)
    if filters.ip.strip():
        query = query.where(AuditEntry.ip_address.startswith(filters.ip.strip(), autoescape=True))
    if before is not None:
        query = query.where(AuditEntry.id < before)
    rows = session.execute(query.order_by(AuditEntry.id.desc()).limit(limit + 1)).all()
    views = [EntryView(e.id, e.at, e.actor_id, a_handle, a_name, e.action, e.object_type, e.object_id,
                       e.subject_id, s_handle, s_name, e.ip_address, e.detail)
             for e, a_handle, a_name, s_handle, s_name in rows[:limit]]
    return views, (views[-1].id if len(rows) > limit else None)


# --- a person's access log -----------------------------------------------------------------------------

@dataclass
class AccessView:
    """One time someone else was shown this person's clinical data. No address: staff's
    whereabouts are not the participant's to see."""

    id: int
    at: dt.datetime
    viewer_name: str
    viewer_role: str
    action: str
    what: str


def access_log(session: Session, user_id: int, *, before: int | None = None,
               limit: int = 50) -> tuple[list[AccessView], int | None]:
    """The audited reads of ``user_id``'s clinical data by other people, newest first."""
    query = (select(AuditEntry.id, AuditEntry.at, AuditEntry.action, User.display_name, User.role)
             .outerjoin(User, User.id == AuditEntry.actor_id)
             .where(AuditEntry.subject_id == user_id, AuditEntry.action.startswith("read."),
                    or_(AuditEntry.actor_id.is_(None), AuditEntry.actor_id != user_id)))
    if before is not None:
        query = query.where(AuditEntry.id < before)
    rows = session.execute(query.order_by(AuditEntry.id.desc()).limit(limit + 1)).all()
    views = [AccessView(id=row.id, at=row.at, action=row.action, what=READS.get(row.action, row.action),
                        viewer_name=row.display_name or "The server's command line",
                        viewer_role=row.role.value if row.role is not None else "")
             for row in rows[:limit]]
    return views, (views[-1].id if len(rows) > limit else None)
