"""Every write of the protocols domain: register a version, assign it, migrate, plan ahead.

Deliveries are planned on a rolling horizon (``HORIZON_DAYS`` ahead of each person's local
today), not the whole protocol at once, so the tables and memory stay small however long a
protocol runs. A daily ``protocol.plan`` job moves the horizon forward; each planned delivery
is a ``protocol.deliver`` job in the scheduler, whose condition is checked at send time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator
from functools import lru_cache

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from peerlift.community.models import CircleRole, Membership, Space
from peerlift.db import utcnow
from peerlift.delivery.models import DeliveryStatus, ScheduledDelivery
from peerlift.delivery.scheduler import schedule
from peerlift.errors import Conflict, Forbidden, InvalidInput, NotFound
from peerlift.events import Audience, publish
from peerlift.identity import service as identity
from peerlift.identity.models import Role, User
from peerlift.protocols.format import Item, Protocol
from peerlift.protocols.loader import ProtocolInvalid, parse
from peerlift.protocols.models import Assignment, AssignmentStatus, PlannedDelivery, PlannedStatus, ProtocolVersion
from peerlift.protocols.schedule import day_number, occurrences, zone
from peerlift.research.models import Arm

HORIZON_DAYS = 2
MEMBER_ROLES = (CircleRole.member, CircleRole.peer_supporter)
MANAGER_ROLES = {Role.facilitator, Role.researcher, Role.admin}


class ProtocolRejected(InvalidInput):
    code = "protocol_invalid"


# --- versions ------------------------------------------------------------------------------------

@lru_cache(maxsize=64)
def _parsed(version_id: int, sha256: str, source: str) -> Protocol:
    return parse(source, f"protocol {version_id}")


def protocol_of(version: ProtocolVersion) -> Protocol:
    return _parsed(version.id, version.sha256, version.source)


def register(session: Session, source: str, actor: User | None, filename: str = "protocol.yaml") -> ProtocolVersion:
    """Check and store a protocol file. The same id and version twice must be the same text."""
    if actor is not None and actor.role not in (Role.researcher, Role.admin, Role.facilitator):
        raise Forbidden("Only researchers, facilitators and admins register protocols.")
    try:
        protocol = parse(source, filename)
    except ProtocolInvalid as exc:
        raise ProtocolRejected("\n".join(exc.lines()), field="source")
    digest = hashlib.sha256(source.encode()).hexdigest()
    existing = session.scalar(select(ProtocolVersion).where(
        ProtocolVersion.protocol_key == protocol.id, ProtocolVersion.version == protocol.version))
    if existing is not None:
        if existing.sha256 == digest:
            return existing
        raise Conflict(f"{protocol.id} version {protocol.version} exists with other content; "
                       "a changed protocol is a new version.", field="source")
    version = ProtocolVersion(protocol_key=protocol.id, version=protocol.version, title=protocol.title,
                              duration_days=protocol.duration_days, source=source, sha256=digest,
                              created_by_id=actor.id if actor else None)
    session.add(version)
    session.flush()
    identity.audit(session, actor.id if actor else None, "protocol.registered", "protocol_version", version.id,
                   detail=f"{protocol.id} {protocol.version}")
    publish(session, "protocol.registered", Audience(), actor_id=actor.id if actor else None,
            object_type="protocol_version", object_id=version.id)
    return version


# --- who may run protocols in a circle -------------------------------------------------------------

def manager_access(session: Session, user: User, space_id: int) -> Space:
    """The circle, if ``user`` may assign protocols there and read its fidelity: its facilitators, the
    researchers of its study and admins (``policy.runs_protocols_by_role``). Its other members get a
    403; anyone else a 404, like a circle that does not exist."""
    from peerlift.policy import runs_protocols_by_role

    space = session.get(Space, space_id)
    membership = session.scalar(select(Membership).where(Membership.space_id == space_id,
                                                         Membership.user_id == user.id))
    if space is None:
        raise NotFound("No circle with that id.", field="circle_id")
    if membership is not None and membership.role == CircleRole.facilitator:
        return space
    if runs_protocols_by_role(session, user, space.arm_id):
        return space
    if membership is None:
        raise NotFound("No circle with that id.", field="circle_id")
    raise Forbidden("Only the circle's facilitators, researchers and admins run protocols.")


# --- assignments ------------------------------------------------------------------------------------

def assign(session: Session, actor: User, space: Space, version: ProtocolVersion, start_date: dt.date, *,
           arm_id: int | None = None, migrated_from: Assignment | None = None, reason: str = "") -> Assignment:
    if actor.role not in MANAGER_ROLES:
        raise Forbidden("Only facilitators, researchers and admins assign protocols.")
    active = session.scalar(select(Assignment).where(Assignment.space_id == space.id,
                                                     Assignment.status == AssignmentStatus.active))
    if active is not None and migrated_from is None:
        raise Conflict(f"This circle already runs protocol version {active.protocol_version_id}; "
                       "migrate it to change the version.", field="protocol_version_id")
    if start_date < utcnow().astimezone(zone(space.timezone)).date() - dt.timedelta(days=365):
        raise InvalidInput("The start date is more than a year ago.", field="start_date")
    assignment = Assignment(protocol_version_id=version.id, space_id=space.id, arm_id=arm_id or space.arm_id,
                            start_date=start_date, created_by_id=actor.id, migrated_from_id=
                            migrated_from.id if migrated_from else None, migration_reason=reason[:500])
    session.add(assignment)
    session.flush()
    identity.audit(session, actor.id, "protocol.assigned", "space", space.id,
                   detail=f"assignment {assignment.id}: version {version.id} from {start_date}")
    publish(session, "protocol.assigned", Audience(space_id=space.id), actor_id=actor.id,
            object_type="protocol_assignment", object_id=assignment.id,
            data={"circle_id": space.id, "protocol_version_id": version.id, "start_date": start_date.isoformat()})
    plan(session, assignment)
    return assignment


def assign_arm(session: Session, actor: User, arm: Arm, version: ProtocolVersion,
               start_date: dt.date) -> list[Assignment]:
    spaces = session.scalars(select(Space).where(Space.arm_id == arm.id, Space.archived_at.is_(None))
                             .order_by(Space.id)).all()
    if not spaces:
        raise InvalidInput("This arm has no circles yet.", field="arm_id")
    return [assign(session, actor, space, version, start_date, arm_id=arm.id) for space in spaces]


def migrate(session: Session, actor: User, assignment: Assignment, version: ProtocolVersion,
            reason: str) -> Assignment:
    """Move a running circle to another version: recorded, from the next planned delivery on."""
    if assignment.status != AssignmentStatus.active:
        raise Conflict("Only an active assignment can be migrated.", field="assignment_id")
    if version.id == assignment.protocol_version_id:
        raise InvalidInput("The circle already runs this version.", field="protocol_version_id")
    if not reason.strip():
        raise InvalidInput("Say why the circle moves to another version.", field="reason")
    old = session.get(ProtocolVersion, assignment.protocol_version_id)
    if old is not None and old.protocol_key != version.protocol_key:
        raise InvalidInput(f"A migration stays within one protocol ({old.protocol_key}); "
                           "assign a different protocol afresh.", field="protocol_version_id")
    assignment.status, assignment.ended_at = AssignmentStatus.migrated, utcnow()
    _cancel(session, select(PlannedDelivery.id).where(PlannedDelivery.assignment_id == assignment.id,
                                                       PlannedDelivery.status == PlannedStatus.planned),
            "the circle moved to another protocol version")
    session.flush()
    space = session.get(Space, assignment.space_id)
    successor = assign(session, actor, space, version, assignment.start_date, arm_id=assignment.arm_id,
                       migrated_from=assignment, reason=reason.strip())
    identity.audit(session, actor.id, "protocol.migrated", "protocol_assignment", assignment.id,
                   detail=f"to assignment {successor.id} (version {version.id}): {reason.strip()}")
    return successor


def _cancel(session: Session, planned_ids, reason: str) -> int:
    ids = list(session.scalars(planned_ids))
    if not ids:
        return 0
    scheduled = list(session.scalars(select(PlannedDelivery.scheduled_delivery_id).where(PlannedDelivery.id.in_(ids))))
    session.execute(update(PlannedDelivery).where(PlannedDelivery.id.in_(ids))
                    .values(status=PlannedStatus.cancelled, reason=reason[:500]))
    session.execute(update(ScheduledDelivery).where(ScheduledDelivery.id.in_([s for s in scheduled if s]),
                                                    ScheduledDelivery.status == DeliveryStatus.pending)
                    .values(status=DeliveryStatus.skipped, last_error=reason[:500], finished_at=utcnow()))
    return len(ids)


# --- planning --------------------------------------------------------------------------------------

def _person_start(assignment: Assignment, membership: Membership, tz: str) -> dt.date:
    joined = membership.joined_at.astimezone(zone(tz)).date()
    return max(assignment.start_date, joined)


def planned_occurrences(protocol: Protocol, start: dt.date, tz: str, today: dt.date, horizon_days: int,
                        items: list[Item]) -> Iterator:
    first = max(day_number(start, today), 1)
    last = day_number(start, today + dt.timedelta(days=horizon_days))
    if last < 1 or first > protocol.duration_days:
        return iter(())
    return occurrences(protocol, start, tz, first_day=first, last_day=last, items=items)


def plan(session: Session, assignment: Assignment, *, now: dt.datetime | None = None,
         user_ids: Iterable[int] | None = None, horizon_days: int = HORIZON_DAYS) -> int:
    """Plan the deliveries of the next ``horizon_days`` (each person's local days). Idempotent."""
    now = now or utcnow()
    if assignment.status != AssignmentStatus.active:
        return 0
    version = session.get(ProtocolVersion, assignment.protocol_version_id)
    protocol = protocol_of(version)
    space = session.get(Space, assignment.space_id)
    circle_items = [i for i in protocol.items if i.audience == "circle"]
    member_items = [i for i in protocol.items if i.audience == "each_member"]
    existing = set(session.execute(
        select(PlannedDelivery.item_id, PlannedDelivery.day, PlannedDelivery.person_key)
        .where(PlannedDelivery.assignment_id == assignment.id,
               PlannedDelivery.status != PlannedStatus.cancelled)).all())
    not_before = assignment.created_at
    count = 0

    def add(occ, person: User | None, tz: str) -> None:
        nonlocal count
        key = (occ.item.id, occ.day, person.id if person else 0)
        if key in existing or occ.due_at < not_before:
            return
        planned = PlannedDelivery(
            assignment_id=assignment.id, item_id=occ.item.id, channel=occ.item.channel, day=occ.day,
            user_id=person.id if person else None, person_key=key[2], space_id=space.id,
            local_date=occ.local_date, local_time=occ.local_time, timezone=tz, planned_at=occ.due_at)
        session.add(planned)
        session.flush()
        dedupe = f"proto:{assignment.id}:{occ.item.id}:{occ.day}:{key[2]}:{planned.id}"
        schedule(session, "protocol.deliver", {"planned_id": planned.id}, due_at=occ.due_at, dedupe_key=dedupe)
        planned.scheduled_delivery_id = session.scalar(
            select(ScheduledDelivery.id).where(ScheduledDelivery.dedupe_key == dedupe))
        existing.add(key)
        count += 1

    if circle_items and user_ids is None:
        today = now.astimezone(zone(space.timezone)).date()
        for occ in planned_occurrences(protocol, assignment.start_date, space.timezone, today, horizon_days,
                                       circle_items):
            add(occ, None, space.timezone)
    if member_items:
        query = (select(Membership, User).join(User, User.id == Membership.user_id)
                 .where(Membership.space_id == space.id, Membership.role.in_(MEMBER_ROLES), User.is_active.is_(True)))
        if user_ids is not None:
            query = query.where(User.id.in_(list(user_ids)))
        for membership, person in session.execute(query).all():
            start = _person_start(assignment, membership, person.timezone)
            today = now.astimezone(zone(person.timezone)).date()
            for occ in planned_occurrences(protocol, start, person.timezone, today, horizon_days, member_items):
                add(occ, person, person.timezone)
    last_local = now.astimezone(zone(space.timezone)).date() + dt.timedelta(days=horizon_days)
    if assignment.planned_through is None or assignment.planned_through < last_local:
        assignment.planned_through = last_local
    if user_ids is None:
        schedule_next_plan(session, assignment, now)
    return count


def schedule_next_plan(session: Session, assignment: Assignment, now: dt.datetime) -> None:
    due = now + dt.timedelta(days=1)
    schedule(session, "protocol.plan", {"assignment_id": assignment.id}, due_at=due,
             dedupe_key=f"plan:{assignment.id}:{due.date().isoformat()}")


def reschedule_person(session: Session, user: User) -> None:
    """After a time-zone change: the rest of the person's schedule, in the new zone."""
    pending = select(PlannedDelivery.id).where(PlannedDelivery.user_id == user.id,
                                               PlannedDelivery.status == PlannedStatus.planned,
                                               PlannedDelivery.timezone != user.timezone)
    if not _cancel(session, pending, f"the person moved to {user.timezone}"):
        return
    session.flush()
    active = session.scalars(
        select(Assignment).join(Membership, Membership.space_id == Assignment.space_id)
        .where(Membership.user_id == user.id, Assignment.status == AssignmentStatus.active)).all()
    for assignment in active:
        # planned rows of the old zone were cancelled; allow the same (item, day) again
        session.execute(update(PlannedDelivery).where(
            PlannedDelivery.assignment_id == assignment.id, PlannedDelivery.user_id == user.id,
            PlannedDelivery.status == PlannedStatus.cancelled, PlannedDelivery.person_key == user.id)
            .values(person_key=-PlannedDelivery.id))
        plan(session, assignment, user_ids=[user.id])


identity.TIMEZONE_CHANGED.append(reschedule_person)


def cancel_for_person(session: Session, user_id: int, space_ids: list[int], reason: str) -> int:
    """Cancel what is planned for one person in these circles (they left them)."""
    if not space_ids:
        return 0
    return _cancel(session, select(PlannedDelivery.id).where(PlannedDelivery.user_id == user_id,
                                                             PlannedDelivery.space_id.in_(space_ids),
                                                             PlannedDelivery.status == PlannedStatus.planned),
                   reason)
