"""Score answers to an instrument: one engine for every instrument, driven by its data."""

from __future__ import annotations

from dataclasses import dataclass, field

from peerlift.errors import InvalidInput, NotFound
from peerlift.tracking.instruments import Instrument, shipped


class ScoringError(InvalidInput):
    """Answers that cannot be scored; ``code`` says which defect (the error shape's code)."""


class UnknownInstrument(NotFound):
    code = "unknown_instrument"


@dataclass(frozen=True)
class Score:
    instrument: str
    version: str
    total: int
    band: str
    band_label: str
    band_rank: int
    alerts: list[str] = field(default_factory=list)
    percentage: int | None = None

    def as_dict(self) -> dict:
        out = {"instrument": self.instrument, "total": self.total, "band": self.band, "alerts": list(self.alerts)}
        if self.percentage is not None:
            out["percentage"] = self.percentage
        return out


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_context(inst: Instrument, context: dict | None) -> dict[str, str]:
    context = dict(context or {})
    checked: dict[str, str] = {}
    for name, spec in inst.context.items():
        value = context.pop(name, None)
        if value is None or value == "":
            raise ScoringError(f"{inst.short_name} needs {name} ({' or '.join(spec.values)}).",
                               field=f"context.{name}", code="missing_context")
        if value not in spec.values:
            raise ScoringError(f"{name} is {' or '.join(spec.values)}, not {value!r}.",
                               field=f"context.{name}", code="invalid_context")
        checked[name] = value
    if context:
        extra = sorted(context)[0]
        raise ScoringError(f"{inst.short_name} takes no {extra!r}.", field=f"context.{extra}",
                           code="invalid_context")
    return checked


def score(inst: Instrument, answers: list, context: dict | None = None) -> Score:
    """Total, band (with its rank, 0 = best), alerts and (where the instrument has one) the
    percentage of ``answers``: the chosen option's score for each scored item, in order."""
    items = inst.scored_items
    if not isinstance(answers, list) or len(answers) != len(items):
        given = len(answers) if isinstance(answers, list) else 0
        raise ScoringError(f"{inst.short_name} has {len(items)} scored questions; {given} answer"
                           f"{'' if given == 1 else 's'} given.", field="answers", code="wrong_number_of_answers")
    for n, value in enumerate(answers):
        if not _is_int(value):
            raise ScoringError(f"Answer {n + 1} ({items[n].id}) must be a whole number, not {value!r}.",
                               field=f"answers.{n}", code="not_an_integer")
    for n, (item, value) in enumerate(zip(items, answers)):
        allowed = sorted(o.score for o in inst.options_of(item))
        if value not in allowed:
            raise ScoringError(f"Answer {n + 1} ({item.id}) is {value}; it must be one of "
                               f"{', '.join(str(a) for a in allowed)}.", field=f"answers.{n}",
                               code="answer_out_of_range")
    checked = check_context(inst, context)
    total = sum(answers)
    bands = inst.band_list(checked)
    rank, band = next((r, b) for r, b in enumerate(bands) if b.min <= total <= b.max)
    by_id = dict(zip((i.id for i in items), answers))
    alerts = [a.name for a in inst.alerts if by_id[a.item] >= a.at_least]
    percentage = total * inst.scoring.percentage_factor if inst.scoring.percentage_factor else None
    return Score(instrument=inst.key, version=inst.version, total=total, band=band.key, band_label=band.label,
                 band_rank=rank, alerts=alerts, percentage=percentage)


def score_shipped(key: str, answers: list, context: dict | None = None) -> Score:
    inst = shipped().get(key)
    if inst is None:
        raise UnknownInstrument(f"No instrument {key!r}; known: {', '.join(sorted(shipped()))}.",
                                field="instrument")
    return score(inst, answers, context)
