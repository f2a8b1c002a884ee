"""When each item of a protocol falls, in a person's local time.

Local time across daylight saving: 09:00 stays 09:00 on both sides of a change. A time that
does not exist that day (02:30 on a spring-forward night) moves forward to the first valid
minute (03:00 in Europe/Berlin); an ambiguous one (02:30 on a fall-back night) takes its
first occurrence. Everything is computed lazily, one day at a time, so memory does not grow
with the length of a protocol or of the horizon.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from threading import Lock
from zoneinfo import ZoneInfo

from peerlift.protocols.format import WEEKDAYS, Item, Protocol

UTC = dt.UTC


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_to_utc(day: dt.date, at: dt.time, tz: ZoneInfo) -> dt.datetime:
    """The UTC instant of a wall-clock time, by the rules above."""
    local = dt.datetime.combine(day, at, tzinfo=tz)  # fold=0: the first occurrence if ambiguous
    instant = local.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None):
        return instant
    # In a gap: walk forward to the first minute that exists.
    probe = local.replace(tzinfo=None)
    for _ in range(24 * 60):
        probe += dt.timedelta(minutes=1)
        candidate = probe.replace(tzinfo=tz)
        utc = candidate.astimezone(UTC)
        if utc.astimezone(tz).replace(tzinfo=None) == probe:
            return utc
    raise ValueError(f"no valid local time after {local}")


def falls_on(item: Item, day: int, start: dt.date, duration: int) -> bool:
    lo, hi = item.span(duration)
    if day < max(lo, 1) or day > min(hi, duration):
        return False
    if item.weekdays is not None:
        return WEEKDAYS[(start + dt.timedelta(days=day - 1)).weekday()] in item.weekdays
    if item.every is not None:
        count, unit = item.repetition()
        return (day - lo) % (count * (7 if unit == "wk" else 1)) == 0
    return True


@dataclass(frozen=True, slots=True)
class Occurrence:
    day: int
    item: Item
    local_date: dt.date
    local_time: str
    due_at: dt.datetime  # UTC


_PLANS: OrderedDict[tuple[int, int], tuple[Protocol, list[list[Item]]]] = OrderedDict()
_PLANS_LOCK = Lock()


def _items_by_day(protocol: Protocol, start: dt.date) -> list[list[Item]]:
    """For each programme day (index 1..duration), its items in time order. Only weekday items
    depend on the start date, and only through its weekday: at most seven plans per protocol."""
    key = (id(protocol), start.weekday())
    with _PLANS_LOCK:
        cached = _PLANS.get(key)
        if cached is not None and cached[0] is protocol:
            _PLANS.move_to_end(key)
            return cached[1]
    plan: list[list[Item]] = [[] for _ in range(protocol.duration_days + 1)]
    for day in range(1, protocol.duration_days + 1):
        plan[day] = sorted((i for i in protocol.items if falls_on(i, day, start, protocol.duration_days)),
                           key=lambda i: i.at)
    with _PLANS_LOCK:
        _PLANS[key] = (protocol, plan)  # holding the protocol keeps its id from being reused
        while len(_PLANS) > 64:
            _PLANS.popitem(last=False)
    return plan


@lru_cache(maxsize=65_536)
def _utc(day: dt.date, hhmm: str, tz: str) -> dt.datetime:
    return local_to_utc(day, dt.time(int(hhmm[:2]), int(hhmm[3:])), zone(tz))


def occurrences(protocol: Protocol, start: dt.date, tz: str, *, first_day: int = 1,
                last_day: int | None = None, items: list[Item] | None = None) -> Iterator[Occurrence]:
    """Every delivery from ``first_day`` to ``last_day`` (inclusive), in date then time order."""
    last = min(last_day or protocol.duration_days, protocol.duration_days)
    chosen = None if items is None else {i.id for i in items}
    plan = _items_by_day(protocol, start)
    for day in range(max(first_day, 1), last + 1):
        todays = plan[day]
        if not todays:
            continue
        date = start + dt.timedelta(days=day - 1)
        for item in todays:
            if chosen is None or item.id in chosen:
                yield Occurrence(day, item, date, item.at, _utc(date, item.at, tz))


def day_number(start: dt.date, today: dt.date) -> int:
    return (today - start).days + 1
