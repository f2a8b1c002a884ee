"""Every write of health profiles and connection requests, and the "people like me" ranking.

Visibility levels are ordered (see ``models.REACH``): a field is shown to, or used with, another
person only when its level reaches how near that person is (``policy.relation_level``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, delete, func, or_, select
from sqlalchemy.orm import Session

from peerlift.community import service as community
from peerlift.community.models import Membership, Space, SpaceKind
from peerlift.db import utcnow
from peerlift.errors import Conflict, InvalidInput
from peerlift.events import Audience, publish
from peerlift.identity.models import User
from peerlift.notify.models import Kind
from peerlift.notify.service import notify
from peerlift.people import codes
from peerlift.people.models import (
    AGE_BANDS,
    FIELDS,
    REACH,
    ConnectionRequest,
    HealthProfile,
    ProfileCode,
    RequestStatus,
    Visibility,
)
from peerlift.policy import mates, other_arm_people, suggestable_person

MAX_ITEMS = 20
MAX_TEXT = 120
MAX_NOTE = 500
FIRST_YEAR = 1900


# --- the profile ------------------------------------------------------------------------------

def _visibility(value: Any, name: str) -> str:
    try:
        return Visibility(value).value
    except ValueError:
        raise InvalidInput(f"{name} is one of {', '.join(v.value for v in Visibility)}.", field=name) from None


def _entry(kind: str, raw: dict, where: str) -> dict:
    """One condition or medicine: a code from the shipped list, or free text."""
    code = (raw.get("code") or "").strip().upper()
    text = " ".join(str(raw.get("text") or "").split())
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"{where}.text is at most {MAX_TEXT} characters.", field=f"{where}.text")
    if code:
        known = codes.load(kind).by_code.get(code)
        if known is None:
            what = "ICD-10-CM condition" if kind == "conditions" else "ATC medicine"
            raise InvalidInput(f"{where}.code: {code} is not a known {what} code in peerlift's list.",
                               field=f"{where}.code")
        return {"code": code, "text": known.name}
    if not codes.normalise(text):
        raise InvalidInput(f"{where} needs a code or some text.", field=where)
    return {"code": None, "text": text}


def check_profile(conditions: Sequence[dict], treatments: Sequence[dict], goals: Sequence[str],
                  age_band: str | None, visibility: dict[str, str]) -> dict:
    """Everything a profile holds, checked and tidied; nothing is written if anything is wrong."""
    if len(conditions) > MAX_ITEMS or len(treatments) > MAX_ITEMS or len(goals) > MAX_ITEMS:
        raise InvalidInput(f"At most {MAX_ITEMS} conditions, treatments and goals each.", field="conditions")
    this_year = utcnow().year
    checked_conditions = []
    for i, raw in enumerate(conditions):
        entry = _entry("conditions", raw, f"conditions[{i}]")
        year = raw.get("year")
        if year is not None:
            if isinstance(year, bool) or not isinstance(year, int) or not FIRST_YEAR <= year <= this_year:
                raise InvalidInput(f"conditions[{i}].year is a year between {FIRST_YEAR} and {this_year}.",
                                   field=f"conditions[{i}].year")
        entry["year"] = year
        checked_conditions.append(entry)
    checked_treatments = [_entry("medicines", raw, f"treatments[{i}]") for i, raw in enumerate(treatments)]
    checked_goals = []
    for i, goal in enumerate(goals):
        goal = " ".join(str(goal).split())
        if not goal:
            continue
        if len(goal) > MAX_TEXT:
            raise InvalidInput(f"goals[{i}] is at most {MAX_TEXT} characters.", field=f"goals[{i}]")
        checked_goals.append(goal)
    if age_band is not None and age_band not in AGE_BANDS:
        raise InvalidInput(f"age_band is one of {', '.join(AGE_BANDS)}.", field="age_band")
    unknown = set(visibility) - set(FIELDS)
    if unknown:
        raise InvalidInput(f"visibility has no field {sorted(unknown)[0]}.", field="visibility")
    return {"conditions": checked_conditions, "treatments": checked_treatments, "goals": checked_goals,
            "age_band": age_band,
            **{f"{f}_visibility": _visibility(v, f"visibility.{f}") for f, v in visibility.items()}}


def profile_of(session: Session, user_id: int) -> HealthProfile | None:
    return session.get(HealthProfile, user_id)


def save_profile(session: Session, user: User, *, conditions: Sequence[dict], treatments: Sequence[dict],
                 goals: Sequence[str], age_band: str | None, visibility: dict[str, str],
                 suggest_me: bool | None = None, hidden: bool | None = None) -> HealthProfile:
    values = check_profile(conditions, treatments, goals, age_band, visibility)
    profile = session.get(HealthProfile, user.id)
    if profile is None:
        profile = HealthProfile(user_id=user.id)
        for f in FIELDS:
            setattr(profile, f"{f}_visibility", Visibility.only_me.value)
        session.add(profile)
    for name, value in values.items():
        setattr(profile, name, value)
    profile.updated_at = utcnow()
    return _saved(session, user, profile, suggest_me, hidden)


def set_suggestions(session: Session, user: User, *, suggest_me: bool | None = None,
                    hidden: bool | None = None) -> HealthProfile:
    """Opt in to (or out of) "people like me", or hide from it, without touching the rest."""
    profile = session.get(HealthProfile, user.id)
    if profile is None:
        return save_profile(session, user, conditions=[], treatments=[], goals=[], age_band=None, visibility={},
                            suggest_me=suggest_me, hidden=hidden)
    return _saved(session, user, profile, suggest_me, hidden)


def _saved(session: Session, user: User, profile: HealthProfile, suggest_me: bool | None,
           hidden: bool | None) -> HealthProfile:
    """The suggestion switches applied, the match index brought up to date, the change published."""
    if suggest_me is not None:
        profile.suggest_me = suggest_me
    if hidden is not None:
        profile.hidden = hidden
    session.flush()
    reindex(session, profile)
    publish(session, "health_profile.saved", Audience(user_id=user.id), actor_id=user.id,
            object_type="health_profile", object_id=user.id,
            data={"suggest_me": profile.suggest_me, "hidden": profile.hidden})
    return profile


def match_keys(profile: HealthProfile) -> list[tuple[str, str]]:
    """``(key, field)`` of every matchable item of a profile, whatever its visibility."""
    keys: dict[str, str] = {}
    for c in profile.conditions:
        keys[f"C:{codes.group(c['code']).code}" if c["code"] else f"CT:{codes.normalise(c['text'])}"] = "conditions"
    for t in profile.treatments:
        keys[f"M:{t['code']}" if t["code"] else f"MT:{codes.normalise(t['text'])}"] = "treatments"
    for g in profile.goals:
        keys[f"G:{codes.normalise(g)}"] = "goals"
    return list(keys.items())


def reindex(session: Session, profile: HealthProfile) -> None:
    """Rewrite the person's rows of the matching index: only while they are suggestable, and only
    the fields they share with someone."""
    session.execute(delete(ProfileCode).where(ProfileCode.user_id == profile.user_id))
    if not profile.suggestable:
        return
    for key, name in match_keys(profile):
        visibility = profile.visibility(name)
        if visibility != Visibility.only_me:
            session.add(ProfileCode(user_id=profile.user_id, key=key[:120], field=name, visibility=visibility.value))
    session.flush()


def visible_fields(profile: HealthProfile | None, level: int) -> dict[str, Any]:
    """The fields of a profile a person of ``level`` may see (absent fields are not shared)."""
    if profile is None:
        return {}
    shown: dict[str, Any] = {}
    years = level == 0 or REACH[profile.visibility("diagnosis_years")] >= level
    if level == 0 or REACH[profile.visibility("conditions")] >= level:
        shown["conditions"] = [{"code": c["code"], "text": c["text"], "year": c["year"] if years else None}
                               for c in profile.conditions]
    if level == 0 or REACH[profile.visibility("treatments")] >= level:
        shown["treatments"] = [dict(t) for t in profile.treatments]
    if level == 0 or REACH[profile.visibility("goals")] >= level:
        shown["goals"] = list(profile.goals)
    if level == 0 or REACH[profile.visibility("age_band")] >= level:
        shown["age_band"] = profile.age_band
    return shown


# --- people like me -----------------------------------------------------------------------------

# The score of a suggestion: what the two people share, weighed.
WEIGHTS = {"condition": 10, "treatment": 4, "goal": 3, "years": 2, "age_band": 1}
CANDIDATES = 50    # candidates scored in full (by their shared conditions, treatments and goals)
SUGGESTIONS = 20   # suggestions shown


@dataclass
class Suggestion:
    user_id: int
    display_name: str
    score: int
    reasons: list[str]
    request_pending: bool = False
    shared: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class CommunitySuggestion:
    id: int
    name: str
    reasons: list[str]


def _label(key: str) -> str:
    kind, _, value = key.partition(":")
    if kind == "C":
        return f"{codes.group(value).name.lower()} ({value})"
    if kind == "M":
        entry = codes.medicines().by_code.get(value)
        return f"{entry.name if entry else value} ({value})"
    return value


def _excluded(session: Session, user_id: int) -> tuple[set[int], set[int]]:
    """People never suggested to ``user_id`` (a declined request either way, or already connected),
    and those with a pending request from them."""
    never, pending = set(), set()
    for sender, recipient, status in session.execute(
        select(ConnectionRequest.sender_id, ConnectionRequest.recipient_id, ConnectionRequest.status)
        .where(or_(ConnectionRequest.sender_id == user_id, ConnectionRequest.recipient_id == user_id))
    ):
        other = recipient if sender == user_id else sender
        if status == RequestStatus.pending.value:
            pending.add(other)
        else:
            never.add(other)
    return never, pending


def like_me(session: Session, user: User) -> list[Suggestion]:
    """Members like ``user``, ranked by score. Both sides' visibility counts: a candidate's field is
    used only if they share it with ``user``, and ``user``'s field only if ``user`` shares it with them.
    Nobody who is hidden or did not opt in is suggested (and nobody to someone who has not opted in),
    nor anyone in another arm of a study ``user`` takes part in."""
    mine = session.get(HealthProfile, user.id)
    if mine is None or not mine.suggestable:
        return []
    my_keys = dict(match_keys(mine))
    my_reach = {f: REACH[mine.visibility(f)] for f in FIELDS}
    usable = [k for k, f in my_keys.items() if my_reach[f] > 0]
    if not usable:
        return []
    circle, community_mates = mates(session, user.id)
    near = circle | community_mates
    never, pending = _excluded(session, user.id)
    # Candidates further away (anyone signed in) match only on fields both share with anyone: the
    # database ranks them by those and hands over the best; the people near (circles, communities)
    # are all candidates. Both are then read in detail and filtered by each field's visibility.
    candidates: set[int] = set(near)
    wide = [k for k, f in my_keys.items() if my_reach[f] >= REACH[Visibility.installation]]
    if wide:
        weight = case((ProfileCode.field == "conditions", WEIGHTS["condition"]),
                      (ProfileCode.field == "treatments", WEIGHTS["treatment"]), else_=WEIGHTS["goal"])
        for i in range(0, len(wide), 500):
            candidates.update(session.scalars(
                select(ProfileCode.user_id)
                .where(ProfileCode.key.in_(wide[i:i + 500]), ProfileCode.visibility == Visibility.installation.value,
                       ProfileCode.user_id != user.id)
                .group_by(ProfileCode.user_id).order_by(func.sum(weight).desc(), ProfileCode.user_id)
                .limit(CANDIDATES + len(never) + len(near))))
    candidates -= never
    candidates.discard(user.id)
    shared: dict[int, dict[str, list[str]]] = {}
    ids = sorted(candidates)
    for i in range(0, len(ids), 500):
        rows = session.execute(
            select(ProfileCode.user_id, ProfileCode.key, ProfileCode.field, ProfileCode.visibility)
            .where(ProfileCode.user_id.in_(ids[i:i + 500]), ProfileCode.key.in_(usable))
        ).all()
        for other, key, name, visibility in rows:
            level = 1 if other in circle else 2 if other in community_mates else 3
            if REACH[Visibility(visibility)] < level or my_reach[name] < level:
                continue
            shared.setdefault(other, {}).setdefault(name, []).append(key)
    base = {other: WEIGHTS["condition"] * len(s.get("conditions", ())) + WEIGHTS["treatment"]
            * len(s.get("treatments", ())) + WEIGHTS["goal"] * len(s.get("goals", ()))
            for other, s in shared.items()}
    top = sorted(base, key=lambda o: (-base[o], o))[:CANDIDATES]
    if not top:
        return []
    profiles = {p.user_id: p for p in session.scalars(select(HealthProfile).where(HealthProfile.user_id.in_(top)))}
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_(top), User.is_active.is_(True),
                                                                  User.deleted_at.is_(None)))}
    other_arm = other_arm_people(session, user.id, top)
    my_years = {codes.group(c["code"]).code: c["year"] for c in mine.conditions if c["code"] and c["year"]}
    suggestions = []
    for other in top:
        theirs, person = profiles.get(other), people.get(other)
        if theirs is None or person is None or not theirs.suggestable or other in other_arm:
            continue
        level = 1 if other in circle else 2 if other in community_mates else 3
        s = shared[other]
        score, reasons = base[other], []
        conditions = sorted(s.get("conditions", ()))
        if conditions:
            reasons.append("both: " + ", ".join(_label(k) for k in conditions))
        if conditions and min(my_reach["diagnosis_years"], REACH[theirs.visibility("diagnosis_years")]) >= level:
            their_years = {codes.group(c["code"]).code: c["year"] for c in theirs.conditions
                           if c["code"] and c["year"]}
            close = [k for k in conditions if k.startswith("C:") and k[2:] in my_years and k[2:] in their_years
                     and abs(my_years[k[2:]] - their_years[k[2:]]) <= 2]
            if close:
                score += WEIGHTS["years"] * len(close)
                reasons.append("diagnosed within 2 years of each other")
        if s.get("treatments"):
            reasons.append("both take: " + ", ".join(_label(k) for k in sorted(s["treatments"])))
        for k in sorted(s.get("goals", ())):
            reasons.append(f"goal: {_label(k)}")
        if (mine.age_band and mine.age_band == theirs.age_band
                and min(my_reach["age_band"], REACH[theirs.visibility("age_band")]) >= level):
            score += WEIGHTS["age_band"]
            reasons.append(f"both aged {mine.age_band}")
        suggestions.append(Suggestion(user_id=other, display_name=person.display_name, score=score, reasons=reasons,
                                      request_pending=other in pending, shared=s))
    suggestions.sort(key=lambda x: (-x.score, x.user_id))
    return suggestions[:SUGGESTIONS]


def communities_like_me(session: Session, user: User) -> list[CommunitySuggestion]:
    """Open communities ``user`` is not in whose name or description names one of their conditions
    (by its code or its plain name). Only ``user``'s own profile is read: nothing about other people."""
    mine = session.get(HealthProfile, user.id)
    if mine is None or not mine.conditions:
        return []
    mine_in = select(Membership.space_id).where(Membership.user_id == user.id)
    spaces = session.scalars(select(Space).where(Space.kind == SpaceKind.community, Space.archived_at.is_(None),
                                                 Space.id.not_in(mine_in)).order_by(Space.id).limit(500)).all()
    terms = []
    for c in mine.conditions:
        if c["code"]:
            entry = codes.group(c["code"])
            terms.append((entry.code.lower(), entry.name.lower(), f"{entry.name.lower()} ({entry.code})"))
        else:
            text = codes.normalise(c["text"])
            terms.append((text, text, text))
    found = []
    for space in spaces:
        haystack = f"{space.name} {space.description}".lower()
        reasons = [f"it is about {label}" for code, name, label in terms
                   if code in haystack.split() or name in haystack]
        if reasons:
            found.append(CommunitySuggestion(id=space.id, name=space.name, reasons=reasons))
    return found[:SUGGESTIONS]


# --- connection requests ------------------------------------------------------------------------

def request_connection(session: Session, sender: User, user_id: int, note: str = "") -> ConnectionRequest:
    if user_id == sender.id:
        raise InvalidInput("You cannot ask yourself to connect.", field="user_id")
    recipient = suggestable_person(session, sender, user_id)
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"note is at most {MAX_NOTE} characters.", field="note")
    existing = session.scalar(select(ConnectionRequest).where(
        ConnectionRequest.status.in_((RequestStatus.pending.value, RequestStatus.accepted.value)),
        or_((ConnectionRequest.sender_id == sender.id) & (ConnectionRequest.recipient_id == recipient.id),
            (ConnectionRequest.sender_id == recipient.id) & (ConnectionRequest.recipient_id == sender.id))).limit(1))
    if existing is not None:
        if existing.status == RequestStatus.accepted.value:
            raise Conflict("You are already connected.", field="user_id")
        raise Conflict("A request between you is already waiting for an answer.", field="user_id")
    request = ConnectionRequest(sender_id=sender.id, recipient_id=recipient.id, note=note)
    session.add(request)
    session.flush()
    publish(session, "connection.requested", Audience(user_id=recipient.id), actor_id=sender.id,
            object_type="connection_request", object_id=request.id, data={"request_id": request.id})
    notify(session, user_id=recipient.id, kind=Kind.connection_request, actor_id=sender.id, link="/people/requests")
    return request


def _check_pending(request: ConnectionRequest) -> None:
    if request.status != RequestStatus.pending.value:
        raise Conflict(f"This request was already {request.status}.", field="connection_request_id")


def accept(session: Session, user: User, request: ConnectionRequest) -> ConnectionRequest:
    """Accept a request: only now may the two message each other, and a conversation opens."""
    _check_pending(request)
    request.status = RequestStatus.accepted.value
    request.answered_at = utcnow()
    session.flush()
    sender = session.get(User, request.sender_id)
    conversation = community.open_conversation(session, user, sender)
    request.conversation_id = conversation.id
    publish(session, "connection.accepted", Audience(user_id=sender.id), actor_id=user.id,
            object_type="connection_request", object_id=request.id,
            data={"request_id": request.id, "conversation_id": conversation.id})
    notify(session, user_id=sender.id, kind=Kind.connection_accepted, actor_id=user.id,
           conversation_id=conversation.id)
    return request


def decline(session: Session, user: User, request: ConnectionRequest) -> ConnectionRequest:
    """Decline a request: the sender is not told, and neither is suggested to the other again."""
    _check_pending(request)
    request.status = RequestStatus.declined.value
    request.answered_at = utcnow()
    session.flush()
    publish(session, "connection.declined", Audience(user_id=user.id), actor_id=user.id,
            object_type="connection_request", object_id=request.id, data={"request_id": request.id})
    return request


@dataclass
class RequestView:
    id: int
    user_id: int
    display_name: str
    note: str
    status: str
    incoming: bool
    created_at: Any
    conversation_id: int | None


def requests_of(session: Session, user: User) -> list[RequestView]:
    """A person's connection requests, sent and received, newest first (declines are not shown
    to their sender: they stay "pending" there)."""
    rows = session.execute(
        select(ConnectionRequest, User.display_name)
        .join(User, ((User.id == ConnectionRequest.sender_id) & (ConnectionRequest.recipient_id == user.id))
              | ((User.id == ConnectionRequest.recipient_id) & (ConnectionRequest.sender_id == user.id)))
        .order_by(ConnectionRequest.id.desc()).limit(200)
    ).all()
    views = []
    for request, name in rows:
        incoming = request.recipient_id == user.id
        status = request.status
        if not incoming and status == RequestStatus.declined.value:
            status = RequestStatus.pending.value
        views.append(RequestView(id=request.id, user_id=request.sender_id if incoming else request.recipient_id,
                                 display_name=name, note=request.note, status=status, incoming=incoming,
                                 created_at=request.created_at,
                                 conversation_id=request.conversation_id))
    return views
