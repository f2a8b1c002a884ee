"""Scheduled work of the cues engine: decide on an event, consider a rule later (a delayed
trigger, the end of quiet hours, a follow-up), the five-minute tick of the time triggers, and a
snoozed card coming back."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerlift.community.models import Membership, Space
from peerlift.cues import service
from peerlift.cues.engine import candidates, holds
from peerlift.cues.format import TIME_RE
from peerlift.cues.loader import CompiledRule, RuleSet
from peerlift.cues.models import InboxCard
from peerlift.db import utcnow
from peerlift.delivery.models import ScheduledDelivery
from peerlift.delivery.scheduler import Skip, handler, on_start, schedule
from peerlift.events import Event
from peerlift.identity.models import User
from peerlift.protocols.models import Assignment, AssignmentStatus

TICK = dt.timedelta(minutes=5)
DEFAULT_CHECK_AT = "10:00"


def _subject(session: Session, user_id: int, space_id: int, *, member: bool = False) -> service.Subject | None:
    """The person and their circle, while they are an active participant of it (``member``: that
    was just checked)."""
    person, space = session.get(User, user_id), session.get(Space, space_id)
    if person is None or not person.is_active or space is None or space.archived_at is not None:
        return None
    if not member and not service.member_circles(session, user_id, space_id):
        return None
    return service.Subject(person, space)


@handler("cue.event")
def on_event(session: Session, row: ScheduledDelivery):
    """An event some rule listens to: for each rule whose condition holds, decide now (or, for a
    trigger with ``after``, consider it again then)."""
    event = session.get(Event, row.payload["event_id"])
    if event is None:
        return Skip("the event is gone")
    found = service.subject_of(session, event)
    if found is None:
        return Skip("the event is not about a participant of a circle")
    subject = _subject(session, *found, member=True)
    if subject is None:
        return Skip("the person's account or circle is closed")
    rules = candidates(service.rulesets_for(session, subject.space.id), event.kind, event.data or {})
    if not rules:
        return Skip("no rule applies")
    now = utcnow()
    context = service.build_context(session, subject.person, subject.space, event, now, event.kind)
    for rule in rules:
        if rule.after is not None:
            service.later(session, rule, subject, due_at=event.at + rule.after, trigger=rule.rule.trigger.event,
                          event_id=event.id, why="after")
        elif holds(rule, context):
            service.decide(session, rule, subject, context, trigger=rule.rule.trigger.event, event=event, now=now)


@handler("cue.rule")
def consider(session: Session, row: ScheduledDelivery):
    """One rule for one person, considered later: its condition is checked again now."""
    p = row.payload
    subject = _subject(session, p["user_id"], p["space_id"])
    if subject is None:
        return Skip("the person is no longer in the circle")
    rule = service.find_rule(session, subject.space.id, p["ruleset"], p["rule_id"])
    if rule is None:
        return Skip("the rule is no longer in force")
    event = session.get(Event, p["event_id"]) if p.get("event_id") else None
    now = utcnow()
    context = service.build_context(session, subject.person, subject.space, event, now, p["trigger"])
    if not _time_condition(session, rule, context, subject, now) or not holds(rule, context):
        return Skip("the condition no longer holds")
    service.decide(session, rule, subject, context, trigger=p["trigger"], event=event, now=now)


@handler("inbox.resurface")
def resurface(session: Session, row: ScheduledDelivery):
    card = session.get(InboxCard, row.payload["card_id"])
    if card is None or not service.resurface(session, card, utcnow()):
        return Skip("the card was handled meanwhile")


# --- time triggers ------------------------------------------------------------------------------------

def _slot(moment: dt.datetime) -> dt.datetime:
    moment = moment.astimezone(dt.UTC).replace(second=0, microsecond=0)
    return moment - dt.timedelta(minutes=moment.minute % 5)


def ensure_tick(session: Session, after: dt.datetime | None = None) -> None:
    due = _slot(after or utcnow()) + TICK
    schedule(session, "cue.tick", {}, due_at=due, dedupe_key=f"cue:tick:{due.isoformat()}")


on_start(ensure_tick)


def _time_rules(session: Session) -> list[tuple[CompiledRule, list[int] | None]]:
    """Each time rule, and the circles it applies to (None: every circle)."""
    from peerlift.cues.engine import global_rulesets, protocol_ruleset
    from peerlift.protocols.models import ProtocolVersion

    found: list[tuple[CompiledRule, list[int] | None]] = []

    def add(ruleset: RuleSet, circles: list[int] | None) -> None:
        for rule in ruleset.rules:
            if rule.rule.trigger.kind in ("at", "inactive_days", "missed_checkin"):
                found.append((rule, circles))

    for ruleset in global_rulesets():
        add(ruleset, None)
    by_version: dict[int, list[int]] = {}
    for version_id, space_id in session.execute(select(Assignment.protocol_version_id, Assignment.space_id).where(
            Assignment.status == AssignmentStatus.active)):
        by_version.setdefault(version_id, []).append(space_id)
    for version_id, circles in by_version.items():
        version = session.get(ProtocolVersion, version_id)
        ruleset = protocol_ruleset(version.sha256, version.source) if "cues" in version.source else None
        if ruleset is not None:
            add(ruleset, circles)
    return found


def _crossed(hhmm: str, zone: ZoneInfo, start: dt.datetime, end: dt.datetime) -> bool:
    """Whether the local time ``hhmm`` fell in (start, end] in this zone."""
    match = TIME_RE.match(hhmm)
    wanted = dt.time(int(match.group(1)), int(match.group(2)))
    for day in {start.astimezone(zone).date(), end.astimezone(zone).date()}:
        at = dt.datetime.combine(day, wanted, tzinfo=zone).astimezone(dt.UTC)
        if start < at <= end:
            return True
    return False


def _time_condition(session: Session, rule: CompiledRule, context, subject: service.Subject,
                    now: dt.datetime) -> bool:
    """The part of a time trigger that is a condition: silent for N days, or nothing logged today."""
    trigger = rule.rule.trigger
    if trigger.inactive_days is not None:
        return context["person"].get("days_since_active", 0) >= trigger.inactive_days
    if trigger.missed_checkin is not None:
        today = now.astimezone(ZoneInfo(subject.person.timezone)).date().isoformat()
        for (data,) in session.execute(select(Event.data).where(
                Event.user_id == subject.person.id, Event.kind == "tracking.logged",
                Event.at > now - dt.timedelta(days=2)).order_by(Event.id.desc())):
            if (data or {}).get("measure") == trigger.missed_checkin and data.get("local_date") == today:
                return False
    return True


@handler("cue.tick")
def tick(session: Session, row: ScheduledDelivery):
    """Every five minutes: the time triggers whose local time fell in the last five minutes, for
    each participant in their own zone."""
    end = _slot(row.due_at)
    start = end - TICK
    ensure_tick(session, end)
    rules = _time_rules(session)
    if not rules:
        return
    people = session.execute(
        select(Membership.user_id, Membership.space_id, User.timezone).join(User, User.id == Membership.user_id)
        .join(Space, Space.id == Membership.space_id)
        .where(Membership.role.in_(service.MEMBER_ROLES), User.is_active.is_(True), Space.archived_at.is_(None))
        .order_by(Membership.id)).all()
    zones: dict[str, ZoneInfo] = {}
    crossed: dict[tuple[str, str], bool] = {}
    seen: set[tuple[int, str]] = set()
    for user_id, space_id, tz in people:
        zone = zones.setdefault(tz, ZoneInfo(tz))
        for rule, circles in rules:
            if circles is not None and space_id not in circles:
                continue
            if (user_id, rule.key) in seen:
                continue  # a person in two circles is considered once per rule, in their first
            trigger = rule.rule.trigger
            hhmm = trigger.by if trigger.missed_checkin else (trigger.at or DEFAULT_CHECK_AT)
            if (tz, hhmm) not in crossed:
                crossed[(tz, hhmm)] = _crossed(hhmm, zone, start, end)
            if not crossed[(tz, hhmm)]:
                continue
            seen.add((user_id, rule.key))
            subject = _subject(session, user_id, space_id)
            if subject is None:
                continue
            context = service.build_context(session, subject.person, subject.space, None, end, trigger.kind)
            if _time_condition(session, rule, context, subject, end) and holds(rule, context):
                service.decide(session, rule, subject, context, trigger=trigger.kind, event=None, now=end)
