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
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from peerlift.protocols.format import EVERY_RE, WEEKDAYS, Item, Protocol

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
    if day < 1 or day > duration:
        return False
    if item.weekdays is not None:
        lo, hi = item.from_day or 1, min(item.until_day or duration, duration)
        date = start + dt.timedelta(days=day - 1)
        return lo <= day <= hi and WEEKDAYS[date.weekday()] in item.weekdays
    if item.day is not None:
        return day == item.day
    if item.days is not None:
        first, last = (int(x) for x in item.days.split("-"))
        return first <= day <= last
    match = EVERY_RE.match(item.every)
    step = int(match.group(1) or 1) * (7 if match.group(2).startswith("week") else 1)
    lo, hi = item.from_day or 1, min(item.until_day or duration, duration)
    return lo <= day <= hi and (day - lo) % step == 0


@dataclass(frozen=True, slots=True)
class Occurrence:
    day: int
    item: Item
    local_date: dt.date
    local_time: str
    due_at: dt.datetime  # UTC


def occurrences(protocol: Protocol, start: dt.date, tz: str, *, first_day: int = 1,
                last_day: int | None = None, items: list[Item] | None = None) -> Iterator[Occurrence]:
    """Every delivery from ``first_day`` to ``last_day`` (inclusive), in date then file order."""
    tzinfo = zone(tz)
    last = min(last_day or protocol.duration_days, protocol.duration_days)
    chosen = items if items is not None else protocol.items
    times = {item.id: dt.time(int(item.at[:2]), int(item.at[3:])) for item in chosen}
    for day in range(max(first_day, 1), last + 1):
        date = start + dt.timedelta(days=day - 1)
        todays = [item for item in chosen if falls_on(item, day, start, protocol.duration_days)]
        todays.sort(key=lambda i: i.at)
        for item in todays:
            yield Occurrence(day, item, date, item.at, local_to_utc(date, times[item.id], tzinfo))


def day_number(start: dt.date, today: dt.date) -> int:
    return (today - start).days + 1
