"""What can be logged: the built-in measures (data) and those researchers define (rows), one
definition type, and one function that checks a value for any of them."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerlift.errors import InvalidInput, NotFound
from peerlift.tracking.models import Measure

KINDS = ("int", "decimal", "yesno")
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
LB_IN_KG = 0.45359237


@dataclass(frozen=True)
class MeasureDef:
    key: str
    name: str
    unit: str           # the unit values are stored in
    kind: str           # int, decimal, yesno
    min_value: float | None = None
    max_value: float | None = None
    builtin: bool = True
    help: str = ""
    # other units a value may be given in, and the factor that converts them to ``unit``
    units: tuple[tuple[str, float], ...] = ()

    def factor(self, unit: str | None) -> float:
        if unit is None or unit == "" or unit == self.unit:
            return 1.0
        for name, factor in self.units:
            if name == unit:
                return factor
        known = ", ".join([self.unit, *(n for n, _ in self.units)])
        raise InvalidInput(f"{self.name} is logged in {known}, not {unit!r}.", field="unit")


BUILTIN: dict[str, MeasureDef] = {m.key: m for m in (
    MeasureDef("weight", "Weight", "kg", "decimal", 20, 400, help="your weight", units=(("lb", LB_IN_KG),)),
    MeasureDef("steps", "Steps", "steps", "int", 0, 100_000, help="steps walked today"),
    MeasureDef("active_minutes", "Active minutes", "min", "int", 0, 1440, help="minutes of activity today"),
    MeasureDef("cigarettes", "Cigarettes smoked", "cigarettes", "int", 0, 200, help="cigarettes smoked today"),
    MeasureDef("smoke_free", "Smoke-free day", "", "yesno", help="a day without smoking"),
    MeasureDef("cravings", "Cravings", "0-10", "int", 0, 10, help="how strong your cravings were (0 none, 10 worst)"),
    MeasureDef("mood", "Mood", "0-10", "int", 0, 10, help="your mood today (0 very low, 10 very good)"),
    MeasureDef("sleep_hours", "Sleep", "h", "decimal", 0, 24, help="hours slept last night"),
)}


def from_row(row: Measure) -> MeasureDef:
    return MeasureDef(row.key, row.name, row.unit, row.kind, row.min_value, row.max_value, builtin=False)


def all_measures(session: Session) -> list[MeasureDef]:
    custom = session.scalars(select(Measure).order_by(Measure.id)).all()
    return list(BUILTIN.values()) + [from_row(m) for m in custom]


def get_measure(session: Session, key: str) -> MeasureDef:
    if key in BUILTIN:
        return BUILTIN[key]
    row = session.scalar(select(Measure).where(Measure.key == key)) if isinstance(key, str) else None
    if row is None:
        raise NotFound(f"No measure {key!r}.", field="measure")
    return from_row(row)


def check_value(measure: MeasureDef, value, unit: str | None = None) -> float:
    """The value in the measure's own unit, or InvalidInput naming the field and the allowed range."""
    factor = measure.factor(unit)
    if measure.kind == "yesno":
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        if isinstance(value, str) and value.strip().lower() in ("yes", "no", "true", "false", "1", "0"):
            return 1.0 if value.strip().lower() in ("yes", "true", "1") else 0.0
        if isinstance(value, (int, float)) and value in (0, 1):
            return float(value)
        raise InvalidInput(f"{measure.name} is yes or no.", field="value")
    if isinstance(value, str):
        text = value.strip().replace(",", ".")
        try:
            value = float(text) if text else None
        except ValueError:
            value = None
        if value is None:
            raise InvalidInput(f"{measure.name} needs a number.", field="value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"{measure.name} needs a number.", field="value")
    if measure.kind == "int" and float(value) != int(value):
        raise InvalidInput(f"{measure.name} is a whole number.", field="value")
    stored = float(value) * factor
    shown_unit = unit or measure.unit
    if measure.min_value is not None and stored < measure.min_value - 1e-9:
        raise InvalidInput(f"{measure.name} of {_fmt(value)} {shown_unit} is too low: the least is "
                           f"{_fmt(measure.min_value / factor)} {shown_unit}.", field="value")
    if measure.max_value is not None and stored > measure.max_value + 1e-9:
        raise InvalidInput(f"{measure.name} of {_fmt(value)} {shown_unit} is too high: the most is "
                           f"{_fmt(measure.max_value / factor)} {shown_unit}.", field="value")
    return round(stored, 3) if measure.kind == "decimal" else float(int(value))


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:,.0f}"


def check_definition(session: Session, *, key: str, name: str, unit: str, kind: str,
                     min_value: float | None, max_value: float | None) -> dict:
    key = (key or "").strip()
    if not KEY_RE.match(key):
        raise InvalidInput("A measure key is 2-32 lowercase letters, digits and _, starting with a letter.",
                           field="key")
    if key in BUILTIN or session.scalar(select(Measure.id).where(Measure.key == key)) is not None:
        raise InvalidInput(f"There is a measure {key!r} already.", field="key")
    name = " ".join((name or "").split())
    if not name or len(name) > 80:
        raise InvalidInput("A measure needs a name of at most 80 characters.", field="name")
    unit = (unit or "").strip()
    if len(unit) > 20:
        raise InvalidInput("A unit has at most 20 characters.", field="unit")
    if kind not in KINDS:
        raise InvalidInput("The type is int, decimal or yesno.", field="kind")
    for field, bound in (("min_value", min_value), ("max_value", max_value)):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))
                                  or not math.isfinite(bound)):
            raise InvalidInput("A bound of the range is a number.", field=field)
    if kind == "yesno":
        if min_value is not None or max_value is not None:
            raise InvalidInput("A yes/no measure has no range.", field="min_value")
    elif min_value is not None and max_value is not None and min_value > max_value:
        raise InvalidInput("The least value is above the most.", field="min_value")
    return {"key": key, "name": name, "unit": unit, "kind": kind, "min_value": min_value, "max_value": max_value}
