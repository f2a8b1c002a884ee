"""The daily purge of expired data, run by the scheduler worker (see retention.py).

Each worker, as it starts, makes sure the next run is scheduled (once: the dedupe key names the
day); each run schedules the next one.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.orm import Session

from peerlift.db import utcnow
from peerlift.delivery.models import ScheduledDelivery
from peerlift.delivery.scheduler import handler, on_start, schedule
from peerlift.privacy.retention import purge

log = logging.getLogger("peerlift.retention")
PURGE_AT = dt.time(3, 15)  # UTC: a quiet hour for most installations


def next_run(after: dt.datetime) -> dt.datetime:
    at = dt.datetime.combine(after.astimezone(dt.UTC).date(), PURGE_AT, tzinfo=dt.UTC)
    return at if at > after else at + dt.timedelta(days=1)


def ensure_purge(session: Session, after: dt.datetime | None = None) -> None:
    due = next_run(after or utcnow())
    schedule(session, "retention.purge", {}, due_at=due, dedupe_key=f"retention:purge:{due.date().isoformat()}")


on_start(ensure_purge)


@handler("retention.purge")
def run_purge(session: Session, row: ScheduledDelivery):
    """Delete what has expired; the deletions, the audit entry and the "done" mark commit together."""
    counts = purge(session, now=utcnow())
    log.info("retention purge: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))
    ensure_purge(session, max(row.due_at, utcnow()))
