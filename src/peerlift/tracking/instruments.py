"""Questionnaire instruments as data: one YAML file per instrument, checked strictly.

The shipped instruments live in ``instruments/*.yaml`` beside this module; researchers upload
more in the same format. A file is checked with every problem reported as ``FILE:LINE: message``
(bands must cover every possible total exactly once, alerts must name a scored item, ...).
"""

from __future__ import annotations

import io
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError


from peerlift.yamlcheck import FileInvalid, Problem, describe, line_of

SHIPPED_DIR = Path(__file__).with_name("instruments")
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
MAX_ITEMS = 100


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class Option(_Strict):
    score: int = Field(ge=0, le=1000)
    label: Annotated[str, Field(min_length=1, max_length=200)]


class Item(_Strict):
    id: str
    text: Annotated[str, Field(min_length=1, max_length=1000)]
    type: Literal["choice", "text"] = "choice"
    options: Annotated[list[Option], Field(min_length=2, max_length=20)] | None = None
    max_length: int = Field(2000, ge=1, le=10_000, description="longest answer of a text item")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not KEY_RE.match(value):
            raise ValueError("an item id is 2-32 lowercase letters, digits and _, starting with a letter")
        return value


class Band(_Strict):
    key: str
    label: Annotated[str, Field(min_length=1, max_length=100)]
    min: int = Field(ge=0)
    max: int = Field(ge=0)

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not KEY_RE.match(value):
            raise ValueError("a band key is 2-32 lowercase letters, digits and _, starting with a letter")
        return value


class Alert(_Strict):
    name: str
    item: str = Field(description="the id of a scored item")
    at_least: int = Field(ge=0, description="the alert is raised when that item's answer is at least this")
    description: str = ""


class Scoring(_Strict):
    method: Literal["sum"] = "sum"
    percentage_factor: int | None = Field(None, ge=1, le=100, description="percentage = total x this (WHO-5: 4)")


class ContextField(_Strict):
    question: Annotated[str, Field(min_length=1, max_length=200)]
    values: dict[str, str] = Field(min_length=2)


class Instrument(_Strict):
    key: str
    version: Annotated[str, Field(min_length=1, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    short_name: Annotated[str, Field(min_length=1, max_length=40)]
    about: str = ""
    source: str = ""
    preamble: str = ""
    options: Annotated[list[Option], Field(min_length=2, max_length=20)] | None = None
    items: Annotated[list[Item], Field(min_length=1, max_length=MAX_ITEMS)]
    scoring: Scoring = Scoring()
    context: dict[str, ContextField] = {}
    bands_by: str | None = None
    bands: list[Band] | dict[str, list[Band]]
    alerts: list[Alert] = []

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not KEY_RE.match(value):
            raise ValueError("an instrument key is 2-32 lowercase letters, digits and _, starting with a letter")
        return value

    # --- derived -------------------------------------------------------------------------
    @property
    def scored_items(self) -> list[Item]:
        return [i for i in self.items if i.type == "choice"]

    @property
    def text_items(self) -> list[Item]:
        return [i for i in self.items if i.type == "text"]

    def options_of(self, item: Item) -> list[Option]:
        return list(item.options or self.options or [])

    @property
    def score_range(self) -> tuple[int, int]:
        lows = [min(o.score for o in self.options_of(i)) for i in self.scored_items]
        highs = [max(o.score for o in self.options_of(i)) for i in self.scored_items]
        return sum(lows), sum(highs)

    def band_list(self, context: dict[str, str] | None = None) -> list[Band]:
        """The bands, best first (a band's rank is its position)."""
        if isinstance(self.bands, list):
            return list(self.bands)
        value = (context or {}).get(self.bands_by or "")
        return list(self.bands.get(value, []))

    def all_band_keys(self) -> list[str]:
        if isinstance(self.bands, list):
            return [b.key for b in self.bands]
        keys: list[str] = []
        for bands in self.bands.values():
            keys += [b.key for b in bands if b.key not in keys]
        return keys


def whole_file_problems(inst: Instrument) -> list[str]:
    """Checks that need the whole instrument."""
    problems: list[str] = []
    ids = [i.id for i in inst.items]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"items: the item id {dup!r} is used twice")
    if not inst.scored_items:
        problems.append("items: an instrument needs at least one scored (choice) item")
    for n, item in enumerate(inst.items):
        if item.type == "choice":
            options = item.options or inst.options
            if not options:
                problems.append(f"items.{n}.options: item {item.id!r} has no options and the instrument "
                                "has no default options")
                continue
            scores = [o.score for o in options]
            if len(set(scores)) != len(scores):
                problems.append(f"items.{n}.options: two options of item {item.id!r} have the same score")
        elif item.options is not None:
            problems.append(f"items.{n}.options: a text item has no options")
    if problems:
        return problems
    low, high = inst.score_range
    if isinstance(inst.bands, dict):
        if inst.bands_by is None or inst.bands_by not in inst.context:
            problems.append("bands_by: bands given per context value need bands_by naming a context field")
            return problems
        expected = set(inst.context[inst.bands_by].values)
        if set(inst.bands) != expected:
            problems.append(f"bands: give bands for each value of {inst.bands_by}: {', '.join(sorted(expected))}")
        band_sets = list(inst.bands.items())
    else:
        if inst.bands_by is not None:
            problems.append("bands_by: only with bands given per context value")
        band_sets = [("", inst.bands)]
    for name, bands in band_sets:
        where = f"bands.{name}" if name else "bands"
        if not bands:
            problems.append(f"{where}: at least one band")
            continue
        keys = [b.key for b in bands]
        if len(set(keys)) != len(keys):
            problems.append(f"{where}: two bands have the same key")
        covered: dict[int, str] = {}
        for n, band in enumerate(bands):
            if band.min > band.max:
                problems.append(f"{where}.{n}: band {band.key!r} has min {band.min} above max {band.max}")
            for total in range(band.min, band.max + 1):
                if total in covered:
                    problems.append(f"{where}.{n}: total {total} is in both {covered[total]!r} and {band.key!r}")
                    break
                covered[total] = band.key
            beyond = [t for t in range(band.min, band.max + 1) if t < low or t > high]
            if beyond:
                problems.append(f"{where}.{n}: band {band.key!r} reaches totals {_ranges(beyond)} that cannot "
                                f"occur (totals run from {low} to {high})")
        missing = [t for t in range(low, high + 1) if t not in covered]
        if missing:
            problems.append(f"{where}: no band covers the possible total(s) {_ranges(missing)} "
                            f"(totals run from {low} to {high})")
    scored = {i.id: i for i in inst.scored_items}
    for n, alert in enumerate(inst.alerts):
        if alert.item not in scored:
            problems.append(f"alerts.{n}.item: {alert.item!r} is not a scored item of this instrument")
        elif alert.at_least > max(o.score for o in inst.options_of(scored[alert.item])):
            problems.append(f"alerts.{n}.at_least: item {alert.item!r} never scores {alert.at_least}")
    return problems


def _ranges(values: list[int]) -> str:
    runs: list[str] = []
    start = prev = values[0]
    for v in values[1:] + [None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        runs.append(str(start) if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(runs)


def _model_at(loc: tuple) -> type[BaseModel]:
    model: type[BaseModel] = Instrument
    nested = {(Instrument, "items"): Item, (Instrument, "options"): Option, (Item, "options"): Option,
              (Instrument, "bands"): Band, (Instrument, "alerts"): Alert, (Instrument, "scoring"): Scoring,
              (Instrument, "context"): ContextField}
    for part in loc:
        if isinstance(part, str):
            model = nested.get((model, part), model)
    return model


def _describe(error: dict, root) -> Problem:
    return describe(error, root, model_at=_model_at, whole="the instrument")


class InstrumentInvalid(FileInvalid):
    """An instrument file with problems."""


def parse(text: str, filename: str = "<instrument>") -> Instrument:
    """The instrument in ``text``, or InstrumentInvalid listing every problem with its line."""
    try:
        root = YAML(typ="rt").load(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise InstrumentInvalid(filename, [Problem(mark.line + 1 if mark else 1,
                                                   f"not valid YAML: {exc.problem or exc.context}")])
    if not isinstance(root, CommentedMap):
        raise InstrumentInvalid(filename, [Problem(1, "an instrument file is a mapping of keys "
                                                      "(key, version, name, items, bands, ...)")])
    try:
        inst = Instrument.model_validate(root)
    except ValidationError as exc:
        raise InstrumentInvalid(filename, [_describe(error, root) for error in exc.errors()])
    problems = []
    for message in whole_file_problems(inst):
        path = message.split(":", 1)[0]
        loc = tuple(int(p) if p.isdigit() else p for p in path.split("."))
        problems.append(Problem(line_of(root, loc), message))
    if problems:
        raise InstrumentInvalid(filename, problems)
    return inst


@lru_cache(maxsize=1)
def shipped() -> dict[str, Instrument]:
    """The instruments that come with peerlift, by key."""
    found: dict[str, Instrument] = {}
    for path in sorted(SHIPPED_DIR.glob("*.yaml")):
        inst = parse(path.read_text(encoding="utf-8"), str(path))
        found[inst.key] = inst
    return found
