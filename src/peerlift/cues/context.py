"""The context a condition reads, built from the ``event`` table alone (every write is there with
its data), so the cues engine needs no other domain's tables.

* ``event``: the triggering event's data, plus ``kind`` and ``actor_id``;
* ``person``: recent engagement (posts, comments, reactions, messages in the last 1 and 7 days),
  days since last activity, days in the programme, cues sent in the last 24 hours;
* ``post``: for post and comment triggers, the post's comments, reactions, whether it is its
  author's first, its age in minutes;
* ``latest.<measure>``: the person's latest logged value per measure;
* ``questionnaire.<instrument>``: the latest total, band and rank per instrument.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from peerlift.cues.models import CueDecision
from peerlift.events import Event

ACTIVITY = {"post.created": "posts", "comment.created": "comments", "reaction.added": "reactions",
            "message.created": "messages"}
LATEST_WINDOW = 500  # entries looked at for the latest value of each measure


_joined: dict[tuple[int, int | None], int] = {}
_JOINED_MAX = 100_000


def joined_at(session: Session, user_id: int, space_id: int | None) -> dt.datetime | None:
    """When the person joined the circle: its ``member.joined`` event. Each process remembers the
    event's id, and reads the event by its key next time (checking it is still that event)."""
    key = (user_id, space_id)
    known = _joined.get(key)
    if known is not None:
        row = session.get(Event, known)
        if row is not None and row.kind == "member.joined" and (row.data or {}).get("user_id") == user_id \
                and (space_id is None or row.space_id == space_id):
            return row.at
    query = select(Event.id, Event.at).where(Event.kind == "member.joined",
                                             Event.data["user_id"].as_integer() == user_id)
    if space_id is not None:
        query = query.where(Event.space_id == space_id)
    found = session.execute(query.order_by(Event.id).limit(1)).first()
    if found is None:
        return None
    if len(_joined) >= _JOINED_MAX:
        _joined.clear()
    _joined[key] = found[0]
    return found[1]


def person(session: Session, user_id: int, space_id: int | None, now: dt.datetime) -> dict:
    day, week = now - dt.timedelta(days=1), now - dt.timedelta(days=7)
    values: dict = {f"{name}_{span}": 0 for name in ACTIVITY.values() for span in ("1d", "7d")}
    last = None
    rows = session.execute(
        select(Event.kind, func.count(), func.sum(case((Event.at > day, 1), else_=0)), func.max(Event.at))
        .where(Event.actor_id == user_id, Event.kind.in_(ACTIVITY), Event.at > week, Event.at <= now)
        .group_by(Event.kind))
    for kind, week_count, day_count, newest in rows:
        values[f"{ACTIVITY[kind]}_7d"] = int(week_count)
        values[f"{ACTIVITY[kind]}_1d"] = int(day_count or 0)
        last = newest if last is None or newest > last else last
    if last is None:  # nothing this week: when, then?
        last = session.scalar(select(func.max(Event.at)).where(Event.actor_id == user_id,
                                                                Event.kind.in_(ACTIVITY), Event.at <= now))
    joined = joined_at(session, user_id, space_id)
    since = last or joined
    values["days_since_active"] = (now - since).days if since else 0
    values["days_in_programme"] = (now - joined).days if joined else 0
    values["cues_today"] = session.scalar(select(func.count(CueDecision.id)).where(
        CueDecision.user_id == user_id, CueDecision.sent.is_(True), CueDecision.to_person.is_(True),
        CueDecision.decided_at > day)) or 0
    return values


def latest(session: Session, user_id: int) -> dict:
    found: dict = {}
    for (data,) in session.execute(select(Event.data).where(Event.user_id == user_id,
                                                             Event.kind == "tracking.logged")
                                   .order_by(Event.id.desc()).limit(LATEST_WINDOW)):
        measure = (data or {}).get("measure")
        if isinstance(measure, str) and measure not in found:
            found[measure] = data.get("value")
    return found


def questionnaires(session: Session, user_id: int) -> dict:
    found: dict = {}
    for (data,) in session.execute(select(Event.data).where(Event.user_id == user_id,
                                                             Event.kind == "questionnaire.scored")
                                   .order_by(Event.id.desc()).limit(LATEST_WINDOW)):
        instrument = (data or {}).get("instrument")
        if isinstance(instrument, str) and instrument not in found:
            found[instrument] = {k: data.get(k) for k in ("total", "band", "band_rank", "previous_band",
                                                          "previous_band_rank")}
    return found


def post(session: Session, space_id: int, post_id: int, now: dt.datetime) -> dict:
    created = session.execute(select(Event.id, Event.actor_id, Event.at).where(
        Event.space_id == space_id, Event.kind == "post.created", Event.object_id == post_id)
        .order_by(Event.id).limit(1)).first()
    if created is None:
        return {"comments": 0, "reactions": 0, "is_first": False, "minutes_old": 0}
    event_id, author_id, at = created
    counts = dict(session.execute(
        select(Event.kind, func.count()).where(
            Event.space_id == space_id, Event.id > event_id,
            Event.kind.in_(("comment.created", "reaction.added", "reaction.removed")),
            Event.data["post_id"].as_integer() == post_id, Event.actor_id != author_id)
        .group_by(Event.kind)).all())
    earlier = session.scalar(select(Event.id).where(Event.actor_id == author_id, Event.kind == "post.created",
                                                    Event.id < event_id).limit(1))
    return {"comments": counts.get("comment.created", 0),
            "reactions": max(counts.get("reaction.added", 0) - counts.get("reaction.removed", 0), 0),
            "is_first": earlier is None, "minutes_old": int((now - at).total_seconds() // 60)}
