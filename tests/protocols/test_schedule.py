"""Local time across daylight saving, in Europe/Berlin, America/New_York and Australia/Sydney."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from peerlift.protocols.loader import parse
from peerlift.protocols.preview import preview
from peerlift.protocols.schedule import local_to_utc, occurrences

PROTOCOL = """\
id: dst
version: "1"
title: Daily at nine and at half past two
description: A test protocol.
duration_days: 20
items:
  - id: nine
    days: 1-20
    at: "09:00"
    channel: notification
    text: Good morning {first_name}
  - id: night
    days: 1-20
    at: "02:30"
    channel: notification
    text: Night owl check
"""


def _local(instant: dt.datetime, tz: str) -> str:
    return instant.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


@pytest.mark.parametrize("tz, start, change", [
    ("Europe/Berlin", dt.date(2026, 3, 22), dt.date(2026, 3, 29)),        # spring forward 02:00 -> 03:00
    ("Europe/Berlin", dt.date(2026, 10, 18), dt.date(2026, 10, 25)),      # fall back 03:00 -> 02:00
    ("America/New_York", dt.date(2026, 3, 1), dt.date(2026, 3, 8)),       # spring forward
    ("America/New_York", dt.date(2026, 10, 25), dt.date(2026, 11, 1)),    # fall back
    ("Australia/Sydney", dt.date(2026, 3, 29), dt.date(2026, 4, 5)),      # fall back (southern autumn)
    ("Australia/Sydney", dt.date(2026, 9, 27), dt.date(2026, 10, 4)),     # spring forward
])
def test_nine_stays_nine_on_both_sides_of_a_change(tz, start, change):
    protocol = parse(PROTOCOL)
    nines = [o for o in occurrences(protocol, start, tz) if o.item.id == "nine"]
    assert len(nines) == 20
    assert all(_local(o.due_at, tz).endswith(" 09:00") for o in nines)
    offsets = {o.due_at.astimezone(ZoneInfo(tz)).utcoffset() for o in nines}
    assert len(offsets) == 2, "the window must straddle the change"
    assert [o.local_date for o in nines] == [start + dt.timedelta(days=i) for i in range(20)]


@pytest.mark.parametrize("tz, day, expected", [
    ("Europe/Berlin", dt.date(2026, 3, 29), "2026-03-29 03:00"),     # 02:30 does not exist
    ("America/New_York", dt.date(2026, 3, 8), "2026-03-08 03:00"),
    ("Australia/Sydney", dt.date(2026, 10, 4), "2026-10-04 03:00"),
])
def test_a_time_that_does_not_exist_moves_to_the_first_valid_minute(tz, day, expected):
    instant = local_to_utc(day, dt.time(2, 30), ZoneInfo(tz))
    assert _local(instant, tz) == expected


@pytest.mark.parametrize("tz, day, hhmm, utc", [
    ("Europe/Berlin", dt.date(2026, 10, 25), (2, 30), "2026-10-25 00:30"),      # first: still summer time
    ("America/New_York", dt.date(2026, 11, 1), (1, 30), "2026-11-01 05:30"),    # first: EDT
    ("Australia/Sydney", dt.date(2026, 4, 5), (2, 30), "2026-04-04 15:30"),     # first: AEDT
])
def test_an_ambiguous_time_takes_its_first_occurrence(tz, day, hhmm, utc):
    instant = local_to_utc(day, dt.time(*hhmm), ZoneInfo(tz))
    assert instant.strftime("%Y-%m-%d %H:%M") == utc


def test_preview_lines():
    lines = preview(parse(PROTOCOL), dt.date(2026, 3, 28), "Europe/Berlin", 2, name="Ada Lovelace")
    assert [line.as_text() for line in lines] == [
        "2026-03-28 02:30 notification night Night owl check",
        "2026-03-28 09:00 notification nine Good morning Ada",
        "2026-03-29 02:30 notification night Night owl check",
        "2026-03-29 09:00 notification nine Good morning Ada",
    ]


def test_when_forms():
    text = """\
id: forms
version: "1"
title: T
description: D
duration_days: 30
items:
  - {id: once, day: 3, at: "08:00", channel: notification, text: a}
  - {id: weekly, every: week, at: "08:00", channel: notification, text: b}
  - {id: fortnight, every: 2 weeks, from_day: 2, until_day: 20, at: "08:00", channel: notification, text: c}
  - {id: three, every: 3 days, at: "08:00", channel: notification, text: d}
  - {id: monthu, weekdays: [mon, thu], until_day: 14, at: "08:00", channel: notification, text: e}
"""
    start = dt.date(2026, 6, 1)  # a Monday
    days: dict[str, list[int]] = {}
    for o in occurrences(parse(text), start, "UTC"):
        days.setdefault(o.item.id, []).append(o.day)
    assert days["once"] == [3]
    assert days["weekly"] == [1, 8, 15, 22, 29]
    assert days["fortnight"] == [2, 16]
    assert days["three"] == list(range(1, 31, 3))
    assert days["monthu"] == [1, 4, 8, 11]
