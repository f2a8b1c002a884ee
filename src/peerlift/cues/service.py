"""Every write of the cues domain: decisions (with their limits and micro-randomisation), the
actions a rule takes, and what facilitators do with the cards of their inbox.

``schedule_for_events`` runs inside the transaction that writes an event (the one write door,
``events.publish``, calls it as the events are inserted): an event some rule listens to gets a
``cue.event`` job in that same transaction, so a process that dies after the commit loses nothing,
and the in-process worker is woken at the commit, so the cue follows within a second.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from peerlift import events as events_module
from peerlift.community import service as community
from peerlift.community.models import CircleRole, Membership, Space
from peerlift.cues import context as ctx_parts
from peerlift.cues.engine import Context, event_kinds, global_rulesets, protocol_ruleset
from peerlift.cues.format import EVENT_KINDS, render
from peerlift.cues.loader import CompiledRule, RuleSet
from peerlift.cues.models import CardStatus, CueDecision, InboxAction, InboxCard
from peerlift.db import on_commit, utcnow
from peerlift.delivery.models import ScheduledDelivery
from peerlift.delivery.scheduler import schedule, wake
from peerlift.errors import Conflict, InvalidInput
from peerlift.events import Audience, Event, publish
from peerlift.identity.models import User
from peerlift.notify import service as notify
from peerlift.notify.models import Kind
from peerlift.policy import circle_access
from peerlift.protocols.models import Assignment, AssignmentStatus, ProtocolVersion
from peerlift.settings import get_settings

MEMBER_ROLES = (CircleRole.member, CircleRole.peer_supporter)
TO_PERSON = ("dm", "notify")
FROM_CUE = "_peerlift_from_cue"  # set on events a cue's own action published: they trigger no cue
MAX_SNOOZE = dt.timedelta(days=30)
_rng = random.SystemRandom()


class CardHandled(Conflict):
    code = "card_handled"


# --- which rules apply where -----------------------------------------------------------------------

_kinds_lock = threading.Lock()
_protocol_kinds: dict[str, object] = {"max_id": None, "kinds": frozenset()}


def _protocol_event_kinds(session: Session) -> frozenset[str]:
    """Event kinds the ``cues:`` of any registered protocol listen to (read again when a version is added)."""
    newest = session.scalar(select(func.max(ProtocolVersion.id)))
    with _kinds_lock:
        if _protocol_kinds["max_id"] == newest:
            return _protocol_kinds["kinds"]  # type: ignore[return-value]
    kinds: set[str] = set()
    for sha, source in session.execute(select(ProtocolVersion.sha256, ProtocolVersion.source)):
        ruleset = protocol_ruleset(sha, source) if "cues" in source else None
        if ruleset is not None:
            kinds |= event_kinds([ruleset])
    with _kinds_lock:
        _protocol_kinds.update(max_id=newest, kinds=frozenset(kinds))
    return frozenset(kinds)


def rulesets_for(session: Session, space_id: int) -> list[RuleSet]:
    """The global rule sets, and the ``cues:`` of the protocol versions the circle runs."""
    found = list(global_rulesets())
    rows = session.execute(select(ProtocolVersion.id, ProtocolVersion.sha256).join(
        Assignment, Assignment.protocol_version_id == ProtocolVersion.id).where(
        Assignment.space_id == space_id, Assignment.status == AssignmentStatus.active)).all()
    for version_id, sha in rows:
        source = session.scalar(select(ProtocolVersion.source).where(ProtocolVersion.id == version_id))
        ruleset = protocol_ruleset(sha, source)
        if ruleset is not None:
            found.append(ruleset)
    return found


def find_rule(session: Session, space_id: int, ruleset: str, rule_id: str) -> CompiledRule | None:
    for candidate in rulesets_for(session, space_id):
        if candidate.key == ruleset:
            rule = candidate.get(rule_id)
            if rule is not None:
                return rule
    return None


# --- the hook in the write door ----------------------------------------------------------------------

def schedule_for_events(session: Session, written: list[Event]) -> None:
    """Called as a unit of work's events are inserted (they have their ids): queue a decision for
    each event some rule may listen to, in the same transaction."""
    interesting = [e for e in written if e.kind in EVENT_KINDS and not getattr(e, FROM_CUE, False)]
    if not interesting:
        return
    kinds = event_kinds(global_rulesets())
    if any(e.kind not in kinds for e in interesting):
        kinds = kinds | _protocol_event_kinds(session)
    added = False
    for e in interesting:
        if e.kind in kinds:
            session.add(ScheduledDelivery(kind="cue.event", payload={"event_id": e.id}, due_at=e.at,
                                          dedupe_key=f"cue:event:{e.id}"))
            added = True
    if added:
        on_commit(session, wake)


events_module.add_write_hook(schedule_for_events)


# --- who an event is about --------------------------------------------------------------------------------

def member_circles(session: Session, user_id: int, space_id: int | None = None) -> list[int]:
    query = select(Membership.space_id).join(Space, Space.id == Membership.space_id).where(
        Membership.user_id == user_id, Membership.role.in_(MEMBER_ROLES), Space.archived_at.is_(None))
    if space_id is not None:
        query = query.where(Membership.space_id == space_id)
    return list(session.scalars(query.order_by(Membership.id)))


def subject_of(session: Session, event: Event) -> tuple[int, int] | None:
    """The participant an event is about and their circle, or None (staff, or no circle)."""
    data = event.data or {}
    if event.kind in ("post.created", "comment.created"):
        person, circle = event.actor_id, event.space_id
    elif event.kind == "message.created":
        person, circle = data.get("recipient_id"), None
    else:
        person, circle = event.user_id, None
    if person is None:
        return None
    circles = member_circles(session, person, circle)
    if event.kind == "message.created" and circles and event.actor_id is not None:
        shared = set(session.scalars(select(Membership.space_id).where(Membership.user_id == event.actor_id)))
        circles = [c for c in circles if c in shared] or circles
    return (person, circles[0]) if circles else None


# --- the context of a decision ------------------------------------------------------------------------------

def facilitator_of(session: Session, space_id: int) -> User | None:
    return session.scalar(select(User).join(Membership, Membership.user_id == User.id).where(
        Membership.space_id == space_id, Membership.role == CircleRole.facilitator, User.is_active.is_(True))
        .order_by(Membership.id).limit(1))


def facilitator_ids(session: Session, space_id: int) -> list[int]:
    return list(session.scalars(select(Membership.user_id).join(User, User.id == Membership.user_id).where(
        Membership.space_id == space_id, Membership.role == CircleRole.facilitator, User.is_active.is_(True))
        .order_by(Membership.user_id)))


def build_context(session: Session, person: User, space: Space, event: Event | None, now: dt.datetime,
                  trigger: str) -> Context:
    data = dict(event.data or {}) if event is not None else {}
    event_part = {**data, "kind": event.kind if event is not None else trigger,
                  "actor_id": event.actor_id if event is not None else None}
    post_id = data.get("post_id") if event is not None and event.kind in ("post.created", "comment.created") \
        else None
    facilitator: list = []

    def facilitator_name() -> str:
        if not facilitator:
            facilitator.append(facilitator_of(session, space.id))
        return facilitator[0].display_name if facilitator[0] else "your coach"

    builders = {
        "person": lambda: ctx_parts.person(session, person.id, space.id, now),
        "latest": lambda: ctx_parts.latest(session, person.id),
        "questionnaire": lambda: ctx_parts.questionnaires(session, person.id),
        "post": lambda: ctx_parts.post(session, space.id, post_id, now) if post_id else {},
    }
    context = Context(builders, event=event_part)
    context.texts = _LazyTexts(person, space, facilitator_name)
    return context


class _LazyTexts(dict):
    def __init__(self, person: User, space: Space, facilitator_name) -> None:
        super().__init__(first_name=person.first_name, display_name=person.display_name, circle_name=space.name)
        self._facilitator_name = facilitator_name

    def __contains__(self, key) -> bool:
        return key == "facilitator_name" or super().__contains__(key)

    def __getitem__(self, key):
        return self._facilitator_name() if key == "facilitator_name" else super().__getitem__(key)


# --- decisions ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Subject:
    person: User
    space: Space


def later(session: Session, rule: CompiledRule, subject: Subject, *, due_at: dt.datetime, trigger: str,
          event_id: int | None, why: str) -> None:
    """Consider the rule again at ``due_at`` (a delayed trigger, quiet hours, a follow-up)."""
    schedule(session, "cue.rule", {"ruleset": rule.ruleset, "rule_id": rule.id, "user_id": subject.person.id,
                                   "space_id": subject.space.id, "event_id": event_id, "trigger": trigger},
             due_at=due_at, dedupe_key=f"cue:{why}:{rule.key}:{subject.person.id}:{event_id or ''}:"
                                       f"{due_at.isoformat()}")


def _unavailable(session: Session, rule: CompiledRule, person: User, now: dt.datetime) -> str:
    since = now - rule.rule.cooldown_delta
    recent = session.scalar(select(CueDecision.decided_at).where(
        CueDecision.ruleset == rule.ruleset, CueDecision.rule_id == rule.id, CueDecision.user_id == person.id,
        CueDecision.available.is_(True), CueDecision.decided_at > since)
        .order_by(CueDecision.decided_at.desc()).limit(1))
    if recent is not None:
        return f"cool-down of {rule.rule.cooldown or '1 day'}: last decided at {recent.isoformat(timespec='minutes')}"
    if rule.rule.action.kind in TO_PERSON:
        limit = get_settings().cues_per_day
        sent = session.scalar(select(func.count(CueDecision.id)).where(
            CueDecision.user_id == person.id, CueDecision.sent.is_(True), CueDecision.to_person.is_(True),
            CueDecision.decided_at > now - dt.timedelta(days=1))) or 0
        if sent >= limit:
            return f"daily limit reached: {sent} cues in the last 24 hours (PEERLIFT_CUES_PER_DAY={limit})"
    return ""


def decide(session: Session, rule: CompiledRule, subject: Subject, context: Context, *, trigger: str,
           event: Event | None, now: dt.datetime) -> CueDecision | None:
    """A decision point: the rule fired and its condition held. Quiet hours defer a cue to the person
    until they end (then it is considered again); otherwise the limits decide availability, a
    micro-randomised rule draws, and the action runs. Every decision is recorded."""
    person, space = subject.person, subject.space
    kind = rule.rule.action.kind
    if kind in TO_PERSON:
        settings = notify.settings_for(session, person.id)
        allowed = notify.next_allowed(settings, person.timezone, now)
        if allowed > now:
            later(session, rule, subject, due_at=allowed, trigger=trigger,
                  event_id=event.id if event is not None else None, why="quiet")
            return None
    reason = _unavailable(session, rule, person, now)
    if not reason and kind in ("dm", "post") and facilitator_of(session, space.id) is None:
        reason = "the circle has no facilitator to send it"
    probability = rule.rule.randomise if rule.rule.randomise is not None else 1.0
    draw = _rng.random() if rule.rule.randomise is not None and not reason else None
    send = not reason and (draw is None or draw < probability)
    decision = CueDecision(ruleset=rule.ruleset, ruleset_version=rule.version, rule_id=rule.id, user_id=person.id,
                           space_id=space.id, trigger=trigger, event_id=event.id if event is not None else None,
                           decided_at=now, available=not reason, unavailable_reason=reason[:200],
                           probability=probability, draw=draw, sent=send, action=kind,
                           to_person=kind in TO_PERSON)
    if send:
        decision.outcome = _act(session, rule, subject, context, event, now)
    session.add(decision)
    session.flush()
    return decision


def _act(session: Session, rule: CompiledRule, subject: Subject, context: Context, event: Event | None,
         now: dt.datetime) -> str:
    """Run the rule's action; returns what it made. Events it publishes trigger no cue."""
    action = rule.rule.action
    person, space = subject.person, subject.space
    pending = session.info.setdefault(events_module.PENDING, [])
    before = len(pending)
    text = render(action.text, context.lookup) if action.text else ""
    try:
        if action.kind == "dm":
            facilitator = facilitator_of(session, space.id)
            conversation = community.open_conversation(session, facilitator, person)
            return f"message:{community.send_message(session, facilitator, conversation, text).id}"
        if action.kind == "notify":
            note = notify.notify(session, user_id=person.id, kind=Kind.prompt, text=text, space_id=space.id)
            return f"notification:{note.id}" if note is not None else "notification:off"
        if action.kind == "post":
            facilitator = facilitator_of(session, space.id)
            return f"post:{community.create_post(session, circle_access(session, facilitator, space.id), text).id}"
        if action.kind == "inbox":
            return f"card:{create_card(session, rule, subject, text, event).id}"
        follow = action.follow_up
        target = find_rule(session, space.id, rule.ruleset, follow.cue)
        if target is None:
            return "follow_up:missing"
        from peerlift.cues.format import parse_duration

        later(session, target, subject, due_at=now + parse_duration(follow.after), trigger="follow_up",
              event_id=event.id if event is not None else None, why="follow")
        return f"follow_up:{follow.cue}"
    finally:
        for published in session.info.get(events_module.PENDING, [])[before:]:
            setattr(published, FROM_CUE, True)


# --- the facilitator's inbox ------------------------------------------------------------------------------------

def _link(event: Event | None, space: Space) -> str:
    data = (event.data or {}) if event is not None else {}
    if data.get("post_id"):
        return f"/posts/{data['post_id']}"
    return f"/circles/{space.id}/members"


def _tell_facilitators(session: Session, kind: str, card: InboxCard, actor_id: int | None, **extra) -> None:
    for facilitator_id in facilitator_ids(session, card.space_id):
        publish(session, kind, Audience(user_id=facilitator_id), actor_id=actor_id, object_type="inbox_card",
                object_id=card.id, data={"card_id": card.id, "circle_id": card.space_id, "member_id": card.user_id,
                                         "status": card.status.value, **extra})


def create_card(session: Session, rule: CompiledRule, subject: Subject, reason: str, event: Event | None) -> InboxCard:
    card = InboxCard(space_id=subject.space.id, user_id=subject.person.id, ruleset=rule.ruleset, rule_id=rule.id,
                     reason=reason[:2000], link=_link(event, subject.space),
                     event_id=event.id if event is not None else None, created_at=utcnow(), status=CardStatus.open)
    session.add(card)
    session.flush()
    _tell_facilitators(session, "inbox.card_created", card, None)
    return card


def _claim(session: Session, card: InboxCard, actor: User, status: CardStatus, now: dt.datetime,
           until: dt.datetime | None = None) -> None:
    """Take the card from open to ``status``; someone else having handled it first is a 409."""
    changed = session.execute(
        update(InboxCard).where(InboxCard.id == card.id, InboxCard.status == CardStatus.open)
        .values(status=status, handled_by_id=actor.id, handled_at=now, snoozed_until=until)
        .execution_options(synchronize_session=False)).rowcount
    if not changed:
        session.refresh(card)
        who = session.get(User, card.handled_by_id) if card.handled_by_id else None
        name = "You" if who is not None and who.id == actor.id else (who.display_name if who else "Someone")
        when = card.handled_at.isoformat(timespec="minutes") if card.handled_at else ""
        what = {"snoozed": f"snoozed it until {card.snoozed_until.isoformat(timespec='minutes')}"
                if card.snoozed_until else "snoozed it",
                "dismissed": "dismissed it", "replied": "replied to it"}.get(card.status.value, card.status.value)
        raise CardHandled(f"{name} already {what} (at {when}); the card is no longer open.", field="card_id")
    session.refresh(card)


def _record(session: Session, card: InboxCard, actor: User, action: str, now: dt.datetime, detail: str = "") -> None:
    session.add(InboxAction(card_id=card.id, actor_id=actor.id, action=action, at=now, detail=detail[:300]))
    _tell_facilitators(session, "inbox.card_updated", card, actor.id, action=action)


def reply(session: Session, actor: User, card: InboxCard, text: str) -> InboxCard:
    """Answer the member with a direct message; the card is then handled."""
    text = community.check_body(text, limit=community.MAX_MESSAGE_CHARS, field="text", what="reply")
    member = session.get(User, card.user_id)
    now = utcnow()
    _claim(session, card, actor, CardStatus.replied, now)
    conversation = community.open_conversation(session, actor, member)
    message = community.send_message(session, actor, conversation, text)
    _record(session, card, actor, "reply", now, f"message:{message.id} conversation:{conversation.id}")
    return card


def snooze(session: Session, actor: User, card: InboxCard, until: dt.datetime | None) -> InboxCard:
    now = utcnow()
    if until is None:
        raise InvalidInput("Say until when to snooze the card.", field="until")
    if until.tzinfo is None:
        raise InvalidInput("The time needs a time zone offset, e.g. 2026-11-26T09:00:00+00:00.", field="until")
    until = until.astimezone(dt.UTC)
    if until <= now:
        raise InvalidInput("That time is in the past; snooze until a later time.", field="until")
    if until > now + MAX_SNOOZE:
        raise InvalidInput("A card can be snoozed for at most 30 days.", field="until")
    _claim(session, card, actor, CardStatus.snoozed, now, until)
    _record(session, card, actor, "snooze", now, f"until {until.isoformat(timespec='minutes')}")
    schedule(session, "inbox.resurface", {"card_id": card.id}, due_at=until,
             dedupe_key=f"inbox:resurface:{card.id}:{until.isoformat()}")
    return card


def dismiss(session: Session, actor: User, card: InboxCard) -> InboxCard:
    now = utcnow()
    _claim(session, card, actor, CardStatus.dismissed, now)
    _record(session, card, actor, "dismiss", now)
    return card


def resurface(session: Session, card: InboxCard, now: dt.datetime) -> bool:
    """A snoozed card whose time has come is open again."""
    if card.status != CardStatus.snoozed or card.snoozed_until is None or card.snoozed_until > now:
        return False
    card.status, card.snoozed_until, card.handled_by_id, card.handled_at = CardStatus.open, None, None, None
    session.flush()
    _tell_facilitators(session, "inbox.card_updated", card, None, action="resurface")
    return True

