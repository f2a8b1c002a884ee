"""Planned versus delivered: per item, person, circle and arm."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from peerlift.community.models import Space
from peerlift.db import utcnow
from peerlift.delivery.models import DeliveryStatus, ScheduledDelivery
from peerlift.identity.models import User
from peerlift.protocols.models import Assignment, PlannedDelivery, PlannedStatus, ProtocolVersion

LATE_SECONDS = 300
OUTCOMES = ("on_time", "late", "skipped", "failed", "overdue", "upcoming", "cancelled")


def outcome(status: PlannedStatus, late_seconds: int | None, planned_at: dt.datetime,
            scheduled_status: DeliveryStatus | None, now: dt.datetime) -> str:
    if status == PlannedStatus.sent:
        return "late" if (late_seconds or 0) > LATE_SECONDS else "on_time"
    if status == PlannedStatus.skipped:
        return "skipped"
    if status == PlannedStatus.failed or scheduled_status == DeliveryStatus.failed:
        return "failed"
    if status == PlannedStatus.cancelled:
        return "cancelled"
    return "overdue" if planned_at <= now - dt.timedelta(seconds=LATE_SECONDS) else "upcoming"


@dataclass
class Tally:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))

    def add(self, what: str) -> None:
        self.counts[what] += 1

    @property
    def due(self) -> int:
        """Deliveries whose time has come (upcoming and cancelled ones are not counted)."""
        return sum(self.counts[k] for k in ("on_time", "late", "skipped", "failed", "overdue"))

    @property
    def delivered_share(self) -> float | None:
        due = self.due - self.counts["skipped"]
        return None if due <= 0 else (self.counts["on_time"] + self.counts["late"]) / due

    def as_dict(self) -> dict:
        share = self.delivered_share
        return {**self.counts, "due": self.due, "delivered_share": None if share is None else round(share, 4)}


@dataclass
class Report:
    circle_id: int | None
    arm_id: int | None
    protocols: list[str]
    total: Tally
    by_item: dict[str, Tally]
    by_person: dict[str, Tally]
    by_circle: dict[str, Tally]
    late: list[dict]
    problems: list[dict]

    def as_dict(self) -> dict:
        return {
            "circle_id": self.circle_id, "arm_id": self.arm_id, "protocols": self.protocols,
            "total": self.total.as_dict(),
            "by_item": {k: v.as_dict() for k, v in sorted(self.by_item.items())},
            "by_person": {k: v.as_dict() for k, v in sorted(self.by_person.items())},
            "by_circle": {k: v.as_dict() for k, v in sorted(self.by_circle.items())},
            "late": self.late, "problems": self.problems,
        }


def report(session: Session, *, circle_id: int | None = None, arm_id: int | None = None,
           now: dt.datetime | None = None) -> Report:
    now = now or utcnow()
    person = aliased(User)
    query = (select(PlannedDelivery, ScheduledDelivery.status, person.display_name, Space.name,
                    ProtocolVersion.protocol_key, ProtocolVersion.version)
             .join(Assignment, Assignment.id == PlannedDelivery.assignment_id)
             .join(ProtocolVersion, ProtocolVersion.id == Assignment.protocol_version_id)
             .join(Space, Space.id == PlannedDelivery.space_id)
             .outerjoin(ScheduledDelivery, ScheduledDelivery.id == PlannedDelivery.scheduled_delivery_id)
             .outerjoin(person, person.id == PlannedDelivery.user_id)
             .order_by(PlannedDelivery.planned_at, PlannedDelivery.id))
    if circle_id is not None:
        query = query.where(PlannedDelivery.space_id == circle_id)
    if arm_id is not None:
        query = query.where(Assignment.arm_id == arm_id)
    total, by_item, by_person, by_circle = Tally(), defaultdict(Tally), defaultdict(Tally), defaultdict(Tally)
    late, problems, protocols = [], [], set()
    for planned, scheduled_status, name, circle, key, version in session.execute(query).yield_per(2000):
        what = outcome(planned.status, planned.late_seconds, planned.planned_at, scheduled_status, now)
        protocols.add(f"{key} {version}")
        total.add(what)
        by_item[planned.item_id].add(what)
        by_person[name or "(the circle)"].add(what)
        by_circle[circle].add(what)
        row = {"item_id": planned.item_id, "person": name or "(the circle)", "circle": circle, "day": planned.day,
               "planned": f"{planned.local_date.isoformat()} {planned.local_time} {planned.timezone}",
               "reason": planned.reason}
        if what == "late":
            late.append({**row, "minutes_late": (planned.late_seconds or 0) // 60})
        elif what in ("failed", "overdue", "skipped"):
            problems.append({**row, "outcome": what})
    return Report(circle_id, arm_id, sorted(protocols), total, dict(by_item), dict(by_person), dict(by_circle),
                  late[-200:], problems[-200:])
