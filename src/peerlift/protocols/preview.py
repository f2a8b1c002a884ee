"""A participant's schedule, as a person reviewing a protocol wants to read it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from peerlift.protocols.format import Protocol, render
from peerlift.protocols.schedule import occurrences

SAMPLE_COUNTS = ("my_posts_week", "circle_posts_week", "reactions_received_week")


def preview_values(protocol: Protocol, day: int, *, name: str, circle: str, facilitator: str) -> dict[str, object]:
    values: dict[str, object] = {
        "first_name": name.split()[0], "display_name": name, "circle_name": circle,
        "facilitator_name": facilitator, "day": day, "days_since_start": day - 1,
        "days_left": protocol.duration_days - day, "week": (day - 1) // 7 + 1,
        "days_to_quit": (protocol.quit_day - day) if protocol.quit_day else "",
    }
    for key in SAMPLE_COUNTS:  # known only at send time
        values[key] = f"[{key}]"
    return values


@dataclass
class Line:
    date: str
    time: str
    channel: str
    item: str
    kind: str
    text: str
    day: int
    audience: str
    condition: dict | None

    def as_text(self) -> str:
        return f"{self.date} {self.time} {self.channel} {self.item} {' '.join(self.text.split())}"


def preview(protocol: Protocol, start: dt.date, tz: str, days: int, *, name: str = "Sam Taylor",
            circle: str = "your circle", facilitator: str = "your coach") -> list[Line]:
    lines = []
    for occ in occurrences(protocol, start, tz, last_day=days):
        text = render(occ.item.text, preview_values(protocol, occ.day, name=name, circle=circle,
                                                    facilitator=facilitator))
        condition = occ.item.condition.model_dump(exclude_none=True) if occ.item.condition else None
        lines.append(Line(occ.local_date.isoformat(), occ.local_time, occ.item.channel, occ.item.id,
                          occ.item.kind, text, occ.day, occ.item.audience, condition))
    return lines
