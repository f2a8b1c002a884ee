"""The scheduler: a table of due work and workers that claim it.

* ``schedule()`` adds a row; its unique ``dedupe_key`` makes scheduling the same thing
  twice a no-op.
* A worker claims due rows atomically: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a
  ``BEGIN IMMEDIATE`` transaction on SQLite. For work inside the database (an in-app
  notification, a circle post) the delivery and its "done" mark commit in that same
  transaction: a worker killed at any moment leaves the row pending and the delivery
  undone, so it happens exactly once.
* Work outside the database (email) first takes a lease, commits, sends, then marks done
  only if it still holds the lease. A worker that dies mid-send leaves a lease that expires
  and the row is claimed again: at least once, with a stable Message-ID for de-duplication.
* A handler may return ``Skip`` (its condition no longer holds) or ``Defer(until)`` (e.g.
  quiet hours). An exception retries with exponential backoff; after ``MAX_ATTEMPTS`` the
  row is marked failed with its last error.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from peerlift.db import get_engine, make_session, on_commit, transaction, utcnow
from peerlift.delivery.models import DeliveryStatus, ScheduledDelivery

log = logging.getLogger("peerlift.scheduler")
MAX_ATTEMPTS = 8
LEASE = dt.timedelta(minutes=2)


@dataclass(frozen=True)
class Skip:
    reason: str


@dataclass(frozen=True)
class Defer:
    until: dt.datetime


PERSON_GONE = Skip("the person no longer has an active account")


def active_user(session: Session, user_id: int):
    """The addressee of a delivery, or None when their account is gone or deactivated."""
    from peerlift.identity.models import User

    user = session.get(User, user_id)
    return user if user is not None and user.is_active else None


Handler = Callable[[Session, ScheduledDelivery], "Skip | Defer | None"]


@dataclass(frozen=True)
class HandlerSpec:
    fn: Handler
    external: bool  # sends outside the database: leased, at least once


HANDLERS: dict[str, HandlerSpec] = {}
STARTUP: list[Callable[[Session], None]] = []  # run once by each worker as it starts (e.g. a first tick)

# Set when work that is due now commits: the in-process worker wakes at once instead of at its
# next poll, so work due now is done within milliseconds of its commit.
_due_now = threading.Event()


def wake() -> None:
    _due_now.set()


def on_start(fn: Callable[[Session], None]) -> Callable[[Session], None]:
    if fn not in STARTUP:
        STARTUP.append(fn)
    return fn


def handler(kind: str, *, external: bool = False) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = HandlerSpec(fn, external)
        return fn

    return register


def backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def schedule(session: Session, kind: str, payload: dict, *, due_at: dt.datetime, dedupe_key: str) -> bool:
    """Add due work unless the same ``dedupe_key`` exists. Returns whether it was added."""
    if kind not in HANDLERS:
        load_handlers()
        if kind not in HANDLERS:
            raise ValueError(f"no handler for scheduled work of kind {kind!r}")
    exists = session.scalar(select(ScheduledDelivery.id).where(ScheduledDelivery.dedupe_key == dedupe_key))
    if exists is not None:
        return False
    try:
        with session.begin_nested():
            session.add(ScheduledDelivery(kind=kind, payload=payload, due_at=due_at, dedupe_key=dedupe_key))
    except IntegrityError:
        return False
    if due_at <= utcnow():
        on_commit(session, wake)
    return True


def load_handlers() -> None:
    """Import the modules that register handlers."""
    import peerlift.cues.tasks  # noqa: F401
    import peerlift.delivery.mail  # noqa: F401
    import peerlift.notify.tasks  # noqa: F401
    import peerlift.privacy.tasks  # noqa: F401
    import peerlift.protocols.tasks  # noqa: F401
    import peerlift.safety.tasks  # noqa: F401


def _due(now: dt.datetime):
    return (
        select(ScheduledDelivery)
        .where(ScheduledDelivery.status == DeliveryStatus.pending, ScheduledDelivery.due_at <= now,
               or_(ScheduledDelivery.lease_until.is_(None), ScheduledDelivery.lease_until < now))
        .order_by(ScheduledDelivery.due_at, ScheduledDelivery.id)
    )


def _finish(row: ScheduledDelivery, outcome, now: dt.datetime) -> None:
    row.lease_until, row.lease_owner = None, ""
    if isinstance(outcome, Skip):
        row.status, row.finished_at, row.last_error = DeliveryStatus.skipped, now, outcome.reason[:500]
    elif isinstance(outcome, Defer):
        row.due_at = outcome.until
    else:
        row.status, row.finished_at = DeliveryStatus.done, now


def _fail(row: ScheduledDelivery, exc: BaseException, now: dt.datetime) -> None:
    row.lease_until, row.lease_owner = None, ""
    row.last_error = f"{exc.__class__.__name__}: {exc}"[:2000]
    if row.attempts >= MAX_ATTEMPTS:
        row.status, row.finished_at = DeliveryStatus.failed, now
        log.error("gave up on delivery %s (%s) after %s attempts: %s", row.id, row.kind, row.attempts, exc)
    else:
        row.due_at = now + backoff(row.attempts)
        log.warning("delivery %s (%s) failed, retrying at %s: %s", row.id, row.kind, row.due_at, exc)


class Worker:
    """Claims and performs due work; ``run_once`` does one batch and says how many rows it took."""

    def __init__(self, batch: int = 50, name: str | None = None) -> None:
        load_handlers()
        self.batch = batch
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"
        self._stop = threading.Event()

    def run_once(self) -> int:
        engine = get_engine()
        now = utcnow()
        external: list[int] = []
        with transaction(engine) as session:
            query = _due(now).limit(self.batch)
            if engine.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = list(session.scalars(query))
            internal = []
            for row in rows:
                spec = HANDLERS.get(row.kind)
                row.attempts += 1
                if spec is None:
                    _fail(row, LookupError(f"no handler for {row.kind!r}"), now)
                elif spec.external:
                    row.lease_until, row.lease_owner = now + LEASE, self.name
                    external.append(row.id)
                else:
                    internal.append((row, spec))
            self._perform(session, internal, now)
        for row_id in external:
            self._run_external(row_id)
        return len(rows)

    @staticmethod
    def _perform(session: Session, internal: list, now: dt.datetime) -> None:
        """Deliver a batch in one savepoint; if any item fails, undo it and deliver them one
        savepoint each, so a failing item neither blocks nor undoes the others."""
        if not internal:
            return
        outcomes: list = []
        try:
            if len(internal) > 1:
                with session.begin_nested():
                    outcomes = [(row, spec.fn(session, row)) for row, spec in internal]
        except Exception:  # noqa: BLE001 - found out which one below
            outcomes = []
        if not outcomes:
            for row, spec in internal:
                try:
                    with session.begin_nested():
                        outcomes.append((row, spec.fn(session, row)))
                except Exception as exc:  # noqa: BLE001 - recorded on the row, retried later
                    _fail(row, exc, now)
        for row, outcome in outcomes:
            _finish(row, outcome, now)

    def _run_external(self, row_id: int) -> None:
        """Send outside any transaction, then mark done only if the lease is still ours."""
        with make_session(get_engine()) as s:
            row = s.get(ScheduledDelivery, row_id)
            s.expunge(row)
        spec = HANDLERS[row.kind]
        now = utcnow()
        with transaction() as session:
            try:
                outcome = spec.fn(session, row)
                error = None
            except Exception as exc:  # noqa: BLE001
                outcome, error = None, exc
            values: dict
            if error is not None:
                probe = ScheduledDelivery(id=row.id, kind=row.kind, attempts=row.attempts)
                _fail(probe, error, utcnow())
                values = {"status": probe.status or DeliveryStatus.pending, "due_at": probe.due_at or row.due_at,
                          "last_error": probe.last_error, "finished_at": probe.finished_at}
            else:
                probe = ScheduledDelivery(due_at=row.due_at, status=DeliveryStatus.pending)
                _finish(probe, outcome, now)
                values = {"status": probe.status, "due_at": probe.due_at, "finished_at": probe.finished_at,
                          "last_error": probe.last_error or row.last_error}
            session.execute(
                update(ScheduledDelivery)
                .where(ScheduledDelivery.id == row_id, ScheduledDelivery.lease_owner == self.name)
                .values(lease_until=None, lease_owner="", payload=row.payload, **values))

    def start_up(self) -> None:
        for fn in STARTUP:
            try:
                with transaction() as session:
                    fn(session)
            except Exception:  # noqa: BLE001 - a start-up job is retried by the next worker start
                log.exception("worker %s: start-up job %s failed", self.name, getattr(fn, "__name__", fn))

    def run_forever(self, idle_seconds: float = 1.0) -> None:
        log.info("worker %s started", self.name)
        self.start_up()
        while not self._stop.is_set():
            _due_now.clear()
            try:
                took = self.run_once()
            except Exception:  # noqa: BLE001 - keep the worker alive; the rows stay pending
                log.exception("worker %s: a batch failed", self.name)
                took = 0
            if took < self.batch:
                _due_now.wait(idle_seconds)

    def stop(self) -> None:
        self._stop.set()
        _due_now.set()


def start_in_thread(idle_seconds: float = 1.0) -> Worker:
    worker = Worker()
    thread = threading.Thread(target=worker.run_forever, args=(idle_seconds,), daemon=True, name="peerlift-worker")
    thread.start()
    return worker
