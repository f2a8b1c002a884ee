"""Reads of self-monitoring and questionnaires. Callers pass a person that ``policy`` let them see."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerlift.identity.models import User
from peerlift.tracking.measures import LB_IN_KG, MeasureDef, all_measures
from peerlift.tracking.models import Entry, QuestionnaireRequest, QuestionnaireResponse
from peerlift.tracking.service import local_today, profile_of


def display(measure: MeasureDef, value: float | None, weight_unit: str = "kg") -> tuple[str, str]:
    """A stored value as the person reads it: (number, unit)."""
    if value is None:
        return "", ""
    if measure.kind == "yesno":
        return ("yes" if value >= 0.5 else "no"), ""
    if measure.key == "weight" and weight_unit == "lb":
        return f"{value / LB_IN_KG:.1f}", "lb"
    unit = "" if measure.unit == "0-10" else measure.unit  # a scale, not a unit: "7", not "7 0-10"
    if measure.kind == "int":
        return f"{int(value)}", unit
    return f"{value:.1f}", unit


def shown_value(measure: MeasureDef, value: float, weight_unit: str) -> float:
    if measure.key == "weight" and weight_unit == "lb":
        return round(value / LB_IN_KG, 1)
    return value


@dataclass
class MeasureCard:
    measure: MeasureDef
    today: str
    unit: str
    last: str
    last_date: dt.date | None
    count: int


def entries(session: Session, person: User, measure_key: str | None = None, *, days: int = 90) -> list[Entry]:
    since = local_today(person) - dt.timedelta(days=days - 1)
    query = select(Entry).where(Entry.user_id == person.id, Entry.local_date >= since)
    if measure_key is not None:
        query = query.where(Entry.measure_key == measure_key)
    return list(session.scalars(query.order_by(Entry.local_date, Entry.measure_key)))


def cards(session: Session, person: User) -> list[MeasureCard]:
    """One card per measure: today's value (if logged), the last value, how many days logged."""
    unit = profile_of(session, person).weight_unit
    today = local_today(person)
    by_measure: dict[str, list[Entry]] = {}
    for e in entries(session, person):
        by_measure.setdefault(e.measure_key, []).append(e)
    out = []
    for m in all_measures(session):
        rows = by_measure.get(m.key, [])
        todays = next((e for e in rows if e.local_date == today), None)
        last = rows[-1] if rows else None
        out.append(MeasureCard(
            measure=m, today=display(m, todays.value, unit)[0] if todays else "",
            unit="lb" if m.key == "weight" and unit == "lb" else m.unit,
            last=" ".join(display(m, last.value, unit)).strip() if last else "",
            last_date=last.local_date if last else None, count=len(rows)))
    return out


@dataclass
class Progress:
    weight_unit: str
    start_weight: float | None = None      # in the preferred unit
    latest_weight: float | None = None
    target_weight: float | None = None
    lost: float | None = None
    to_lose: float | None = None
    daily_steps: int | None = None
    steps_days_met: int | None = None       # of the last 7 local days
    quit_date: dt.date | None = None
    smoke_free_streak: int | None = None
    days_since_quit: int | None = None


def progress(session: Session, person: User) -> Progress:
    profile = profile_of(session, person)
    unit = profile.weight_unit
    conv = (lambda kg: round(kg / LB_IN_KG, 1)) if unit == "lb" else (lambda kg: round(kg, 1))
    out = Progress(weight_unit=unit, daily_steps=profile.daily_steps, quit_date=profile.quit_date)
    weights = list(session.scalars(select(Entry).where(Entry.user_id == person.id, Entry.measure_key == "weight")
                                   .order_by(Entry.local_date)))
    if weights:
        out.start_weight, out.latest_weight = conv(weights[0].value), conv(weights[-1].value)
        out.lost = round(out.start_weight - out.latest_weight, 1)
    if profile.target_weight_kg is not None:
        out.target_weight = conv(profile.target_weight_kg)
        if out.start_weight is not None:
            out.to_lose = round(out.start_weight - out.target_weight, 1)
    today = local_today(person)
    if profile.daily_steps:
        week = {e.local_date: e.value for e in entries(session, person, "steps", days=7)}
        out.steps_days_met = sum(1 for v in week.values() if v >= profile.daily_steps)
    if profile.quit_date is not None and profile.quit_date <= today:
        out.days_since_quit = (today - profile.quit_date).days
        days = {e.local_date: e.value for e in session.scalars(select(Entry).where(
            Entry.user_id == person.id, Entry.measure_key == "smoke_free", Entry.local_date >= profile.quit_date))}
        day = today if today in days else today - dt.timedelta(days=1)
        streak = 0
        while day >= profile.quit_date and days.get(day, 0) >= 0.5:
            streak += 1
            day -= dt.timedelta(days=1)
        out.smoke_free_streak = streak
    return out


def progress_sentence(session: Session, person: User) -> str:
    p = progress(session, person)
    parts = []
    if p.lost is not None and p.lost > 0:
        parts.append(f"Down {p.lost:g} {p.weight_unit} since I started")
    if p.smoke_free_streak:
        parts.append(f"{p.smoke_free_streak} smoke-free day{'' if p.smoke_free_streak == 1 else 's'} in a row")
    if p.steps_days_met:
        parts.append(f"met my steps goal on {p.steps_days_met} of the last 7 days")
    if not parts:
        return ""
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def series(session: Session, person: User, measure: MeasureDef, days: int = 90) -> list[tuple[dt.date, float]]:
    unit = profile_of(session, person).weight_unit
    return [(e.local_date, shown_value(measure, e.value, unit)) for e in entries(session, person, measure.key,
                                                                                    days=days)]


def responses(session: Session, person: User, instrument_key: str | None = None) -> list[QuestionnaireResponse]:
    query = select(QuestionnaireResponse).where(QuestionnaireResponse.user_id == person.id)
    if instrument_key is not None:
        query = query.where(QuestionnaireResponse.instrument_key == instrument_key)
    return list(session.scalars(query.order_by(QuestionnaireResponse.created_at, QuestionnaireResponse.id)))


def requests(session: Session, person: User, *, open_only: bool = False) -> list[QuestionnaireRequest]:
    query = select(QuestionnaireRequest).where(QuestionnaireRequest.user_id == person.id)
    if open_only:
        query = query.where(QuestionnaireRequest.answered_at.is_(None))
    return list(session.scalars(query.order_by(QuestionnaireRequest.id.desc()).limit(100)))
