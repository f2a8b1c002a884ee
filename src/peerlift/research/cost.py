"""What delivering each arm cost, per participant.

Staff time is measured from activity sessions: the events of a facilitator or clinician of the
study, in its circles or in messages to its participants, grouped into sessions wherever two events
are less than ``SESSION_GAP_MINUTES`` apart; a session lasts from its first event to its last plus
``SESSION_PAD_MINUTES`` (reading before the first action and after the last). A session that served
two arms is shared between them by its events. Researchers adjust the measured time by hand
(``CostAdjustment`` rows: minutes added or taken off, for one arm or spread over the person's arms
in proportion to their measured time). Time is priced with ``StudyDesign.hourly_rates`` by the
person's study role (``facilitator``, ``clinician``; ``default`` for any other), and
``StudyDesign.fixed_costs`` are added: an item with an arm goes to that arm, one without an arm is
shared between the arms by their number of participants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
from sqlalchemy import select
from sqlalchemy.orm import Session

from peerlift.errors import InvalidInput, NotFound
from peerlift.events import Audience, publish
from peerlift.identity.models import User
from peerlift.research.analytics_models import CostAdjustment
from peerlift.research.models import Arm, Study, StudyDesign

SESSION_GAP_MINUTES = 30
SESSION_PAD_MINUTES = 5

STAFF_TIME_SQL = f"""
WITH se AS (
  SELECT e.actor_id, e.at, coalesce(c.arm_id, p.arm_id) AS arm_id
  FROM events e
  JOIN staff s ON e.actor_id = s.user_id
  LEFT JOIN circles c ON c.space_id = e.space_id
  LEFT JOIN people p ON p.user_id = e.recipient_id
  WHERE coalesce(c.arm_id, p.arm_id) IS NOT NULL AND e.kind NOT IN {{not_activity}}
), marked AS (
  SELECT *, CASE WHEN lag("at") OVER w IS NULL
                   OR epoch("at") - epoch(lag("at") OVER w) >= {SESSION_GAP_MINUTES * 60} THEN 1 ELSE 0 END AS starts
  FROM se WINDOW w AS (PARTITION BY actor_id ORDER BY "at")
), numbered AS (
  SELECT *, sum(starts) OVER (PARTITION BY actor_id ORDER BY "at" ROWS UNBOUNDED PRECEDING) AS session
  FROM marked
), sessions AS (
  SELECT actor_id, session, (epoch(max("at")) - epoch(min("at"))) / 60.0 + {SESSION_PAD_MINUTES} AS minutes,
         count(*) AS n
  FROM numbered GROUP BY actor_id, session
), shares AS (
  SELECT actor_id, session, arm_id, count(*) AS k FROM numbered GROUP BY actor_id, session, arm_id
)
SELECT sh.actor_id AS user_id, st.role, sh.arm_id, sum(se.minutes * sh.k / se.n) AS minutes,
       count(*) AS sessions
FROM shares sh
JOIN sessions se ON se.actor_id = sh.actor_id AND se.session = sh.session
JOIN staff st ON st.user_id = sh.actor_id
GROUP BY ALL ORDER BY sh.arm_id, sh.actor_id
"""


def _staff_time_sql() -> str:
    from peerlift.research.metrics import NOT_ACTIVITY

    return STAFF_TIME_SQL.replace("{not_activity}", "(" + ", ".join(f"'{k}'" for k in NOT_ACTIVITY) + ")")


def staff_time(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Measured minutes and sessions per staff person and arm, from the snapshot's views."""
    cur = con.execute(_staff_time_sql())
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


@dataclass
class ArmCost:
    arm_id: int
    arm: str
    participants: int
    staff_minutes: float = 0.0
    staff_cost: float = 0.0
    fixed_cost: float = 0.0
    people: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> float:
        return self.staff_cost + self.fixed_cost

    @property
    def per_participant(self) -> float | None:
        return self.total / self.participants if self.participants else None

    def as_dict(self) -> dict[str, Any]:
        return {"arm_id": self.arm_id, "arm": self.arm, "participants": self.participants,
                "staff_hours": round(self.staff_minutes / 60, 2), "staff_cost": round(self.staff_cost, 2),
                "fixed_cost": round(self.fixed_cost, 2), "total": round(self.total, 2),
                "per_participant": None if self.per_participant is None else round(self.per_participant, 2)}


def _rate(rates: dict[str, Any], role: str) -> float:
    value = rates.get(role, rates.get("default", 0))
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def costs(session: Session, study: Study, metrics) -> tuple[list[ArmCost], str]:
    """The cost table of a study, one row per arm, and its currency."""
    design = session.get(StudyDesign, study.id)
    rates = dict(design.hourly_rates or {}) if design else {}
    fixed = list(design.fixed_costs or []) if design else []
    currency = design.currency if design else "GBP"
    arms = {a.id: a for a in session.scalars(select(Arm).where(Arm.study_id == study.id).order_by(Arm.id))}
    counts = {row["arm_id"]: row["participants"] for row in metrics.arms}
    table = {arm_id: ArmCost(arm_id, arm.name, counts.get(arm_id, 0)) for arm_id, arm in arms.items()}

    minutes: dict[tuple[int, int], float] = {}
    roles: dict[int, str] = {}
    for row in metrics.staff_time:
        minutes[(row["user_id"], row["arm_id"])] = minutes.get((row["user_id"], row["arm_id"]), 0) + row["minutes"]
        roles[row["user_id"]] = row["role"]
    for adj in session.scalars(select(CostAdjustment).where(CostAdjustment.study_id == study.id)
                               .order_by(CostAdjustment.id)):
        if adj.user_id not in roles:
            roles[adj.user_id] = metrics_role(session, adj.user_id)
        if adj.arm_id is not None:
            minutes[(adj.user_id, adj.arm_id)] = minutes.get((adj.user_id, adj.arm_id), 0) + adj.minutes
            continue
        theirs = {arm: m for (user, arm), m in minutes.items() if user == adj.user_id and m > 0}
        total = sum(theirs.values())
        spread = {arm: m / total for arm, m in theirs.items()} if total else {a: 1 / len(arms) for a in arms}
        for arm, share in spread.items():
            minutes[(adj.user_id, arm)] = minutes.get((adj.user_id, arm), 0) + adj.minutes * share
    for (user_id, arm_id), m in sorted(minutes.items()):
        if arm_id not in table:
            continue
        m = max(m, 0.0)
        rate = _rate(rates, roles.get(user_id, "default"))
        row = table[arm_id]
        row.staff_minutes += m
        row.staff_cost += m / 60 * rate
        row.people.append({"user_id": user_id, "role": roles.get(user_id, "default"), "minutes": round(m, 1),
                           "rate": rate, "cost": round(m / 60 * rate, 2)})
    slugs = {arm.slug: arm_id for arm_id, arm in arms.items()}
    everyone = sum(r.participants for r in table.values())
    for item in fixed:
        amount = float(item.get("amount") or 0)
        arm = item.get("arm")
        if arm:
            if arm in slugs:
                table[slugs[arm]].fixed_cost += amount
        elif everyone:
            for row in table.values():
                row.fixed_cost += amount * row.participants / everyone
        elif table:
            for row in table.values():
                row.fixed_cost += amount / len(table)
    return list(table.values()), currency


def metrics_role(session: Session, user_id: int) -> str:
    user = session.get(User, user_id)
    return user.role.value if user else "default"


def add_adjustment(session: Session, actor: User, study: Study, *, user_id: int, minutes: int,
                   arm_slug: str | None = None, reason: str = "") -> CostAdjustment:
    """Add (or, negative, take off) minutes of a staff person's time for the study."""
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not -100_000 <= minutes <= 100_000:
        raise InvalidInput("Minutes are a whole number between -100000 and 100000.", field="minutes")
    if not reason.strip():
        raise InvalidInput("Say why the time is adjusted.", field="reason")
    if len(reason) > 500:
        raise InvalidInput("The reason is at most 500 characters.", field="reason")
    if session.get(User, user_id) is None:
        raise NotFound("No person with that id.", field="user_id")
    arm_id = None
    if arm_slug:
        arm_id = session.scalar(select(Arm.id).where(Arm.study_id == study.id, Arm.slug == arm_slug))
        if arm_id is None:
            raise InvalidInput(f"The study has no arm {arm_slug!r}.", field="arm")
    adj = CostAdjustment(study_id=study.id, user_id=user_id, arm_id=arm_id, minutes=minutes, reason=reason.strip(),
                         created_by_id=actor.id)
    session.add(adj)
    session.flush()
    publish(session, "research.cost_adjusted", Audience(user_id=actor.id), actor_id=actor.id,
            object_type="cost_adjustment", object_id=adj.id,
            data={"study_id": study.id, "user_id": user_id, "arm_id": arm_id, "minutes": minutes})
    return adj
