"""The protocol file format: a strict pydantic model (unknown keys, wrong types and
impossible values are errors) plus checks that need the whole file."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from peerlift.yamlcheck import check_version
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CHANNELS = ("circle_post", "facilitator_dm", "notification", "email")
AUDIENCES = ("circle", "each_member")
INSTRUMENTS = ("phq9", "phq8", "gad7", "who5", "auditc", "ftnd")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
RANGE_RE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
EVERY_RE = re.compile(r"^\s*(?:(\d+)\s+)?(day|days|week|weeks)\s*$")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

# Placeholders a text may use, and what they mean (documented in `peerlift protocol schema`).
PLACEHOLDERS = {
    "first_name": "the person's first name",
    "display_name": "the person's display name",
    "circle_name": "the circle's name",
    "facilitator_name": "the circle facilitator's display name",
    "day": "the programme day, 1 on the start date",
    "days_since_start": "days since the start date (0 on the first day)",
    "days_left": "days left in the programme after today",
    "week": "the programme week, 1 for days 1-7",
    "days_to_quit": "days until the protocol's quit_day (needs quit_day)",
    "my_posts_week": "posts and comments the person wrote in the last 7 days",
    "circle_posts_week": "posts and comments the whole circle wrote in the last 7 days",
    "reactions_received_week": "reactions the person's posts received in the last 7 days",
}
PLACEHOLDER_RE = re.compile(r"{([^{}]*)}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Poll(_Strict):
    question: Annotated[str, Field(min_length=1, max_length=300)]
    options: Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Field(min_length=2, max_length=10)]
    multiple: bool = False


class Condition(_Strict):
    """Checked when the item is compiled and again at send time; the item is sent only if all hold."""

    inactive_days: Annotated[int | None, Field(ge=1, le=365)] = Field(
        None, description="the person has not posted, commented or reacted for at least this many days")
    no_posts_days: Annotated[int | None, Field(ge=1, le=365)] = Field(
        None, description="the person has written no post for at least this many days")
    circle_quiet_hours: Annotated[int | None, Field(ge=1, le=720)] = Field(
        None, description="nobody has posted in the circle for at least this many hours")

    @model_validator(mode="after")
    def _one(self) -> Condition:
        if not any(v is not None for v in self.model_dump().values()):
            raise ValueError("a condition needs at least one of inactive_days, no_posts_days, circle_quiet_hours")
        return self


class Item(_Strict):
    id: str = Field(description="unique within the protocol: lowercase letters, digits, - and _")
    day: int | None = Field(None, ge=1, description="one programme day")
    days: str | None = Field(None, description="a range of days, e.g. 1-100")
    every: str | None = Field(None, description="day, week, or N days / N weeks, from from_day")
    weekdays: list[str] | None = Field(None, description="e.g. [mon, thu]")
    from_day: int | None = Field(None, ge=1, description="first day for every/weekdays (default 1)")
    until_day: int | None = Field(None, ge=1, description="last day for every/weekdays (default: the end)")
    at: str = Field(description='local time "HH:MM" in the person\'s (or, for circle posts, the circle\'s) zone')
    channel: Literal["circle_post", "facilitator_dm", "notification", "email"]
    audience: Literal["circle", "each_member"] = Field(
        None, description="circle for circle posts, each_member for everything else (the default follows the channel)")
    kind: Literal["text", "poll", "questionnaire", "engagement_feedback"] = "text"
    text: Annotated[str, Field(min_length=1, max_length=10_000)]
    poll: Poll | None = None
    questionnaire: Literal["phq9", "phq8", "gad7", "who5", "auditc", "ftnd"] | None = None
    condition: Condition | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not ID_RE.match(value):
            raise ValueError("an item id uses lowercase letters, digits, - and _ (at most 64)")
        return value

    @field_validator("at")
    @classmethod
    def _at(cls, value: str) -> str:
        if not TIME_RE.match(value):
            raise ValueError(f"{value!r} is not a time of day: use HH:MM from 00:00 to 23:59")
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: str | None) -> str | None:
        if value is None:
            return value
        match = RANGE_RE.match(str(value))
        if not match or int(match.group(1)) < 1 or int(match.group(1)) > int(match.group(2)):
            raise ValueError(f"{value!r} is not a day range such as 1-100")
        return value

    @field_validator("every")
    @classmethod
    def _every(cls, value: str | None) -> str | None:
        if value is None:
            return value
        match = EVERY_RE.match(str(value))
        if not match or (match.group(1) is not None and int(match.group(1)) < 1):
            raise ValueError(f"{value!r} is not a repetition: use day, week, or N days, N weeks")
        return value

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("weekdays needs at least one day")
        for day in value:
            if day not in WEEKDAYS:
                raise ValueError(f"{day!r} is not a weekday: use {', '.join(WEEKDAYS)}")
        twice = sorted({d for d in value if value.count(d) > 1})
        if twice:
            raise ValueError(f"{twice[0]!r} is listed twice")
        return value

    @model_validator(mode="after")
    def _shape(self) -> Item:
        if self.audience is None:
            self.audience = "circle" if self.channel == "circle_post" else "each_member"
        given = [name for name in ("day", "days", "every", "weekdays") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("an item says when with exactly one of day, days, every, weekdays"
                             + (f" (it has {', '.join(given)})" if given else ""))
        if (self.from_day is not None or self.until_day is not None) and given[0] not in ("every", "weekdays"):
            raise ValueError("from_day and until_day go with every or weekdays")
        if self.from_day and self.until_day and self.from_day > self.until_day:
            raise ValueError("from_day is after until_day")
        if self.kind == "poll":
            if self.poll is None:
                raise ValueError("a poll item needs poll: {question, options}")
            if self.channel != "circle_post" or self.audience != "circle":
                raise ValueError("a poll is a circle post: channel circle_post, audience circle")
        elif self.poll is not None:
            raise ValueError("poll: belongs to an item of kind poll")
        if self.kind == "questionnaire" and self.questionnaire is None:
            raise ValueError("a questionnaire item names its questionnaire (phq9, phq8, gad7, who5, auditc, ftnd)")
        if self.kind != "questionnaire" and self.questionnaire is not None:
            raise ValueError("questionnaire: belongs to an item of kind questionnaire")
        if self.channel == "circle_post" and self.audience != "circle":
            raise ValueError("a circle post goes to the circle: audience circle")
        if self.audience == "circle" and self.channel != "circle_post":
            raise ValueError("only circle posts have audience circle; messages and notifications go to each_member")
        if self.kind == "engagement_feedback" and self.audience != "each_member":
            raise ValueError("personal engagement feedback goes to each_member")
        return self

    def span(self, duration: int) -> tuple[int, int]:
        """The first and last programme day the item can fall on."""
        if self.day is not None:
            return self.day, self.day
        if self.days is not None:
            match = RANGE_RE.match(self.days)
            return int(match.group(1)), int(match.group(2))
        return self.from_day or 1, min(self.until_day or duration, duration)

    def repetition(self) -> tuple[int, str]:
        """For ``every``: how many of which unit, ``d`` or ``wk`` (FHIR's units)."""
        match = EVERY_RE.match(self.every)
        return int(match.group(1) or 1), "wk" if match.group(2).startswith("week") else "d"


class Protocol(_Strict):
    id: str = Field(description="the protocol's stable name, e.g. smoking-cessation-daily")
    version: str = Field(description="this file's version, e.g. 1.0.0; a new version is a new file")
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(min_length=1, max_length=20_000)] = Field(
        description="what the protocol is and the sources it follows")
    duration_days: int = Field(ge=1, le=3650)
    quit_day: int | None = Field(None, ge=1, description="the programme day of the quit date, for {days_to_quit}")
    items: Annotated[list[Item], Field(min_length=1)]
    cues: list[Any] | None = Field(None, description="just-in-time cue rules for the circles running this "
                                                     "protocol (the cue rule format, docs/cues.md)")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not ID_RE.match(value):
            raise ValueError("a protocol id uses lowercase letters, digits, - and _ (at most 64)")
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value) -> str:
        return check_version(value)


def placeholders_in(text: str) -> list[str]:
    return [m.group(1) for m in PLACEHOLDER_RE.finditer(text.replace("{{", "").replace("}}", ""))]


def render(text: str, values: dict[str, object]) -> str:
    """Fill ``{name}`` placeholders; nothing else in a text is evaluated (``{{`` and ``}}`` are braces)."""
    def one(match: re.Match) -> str:
        return str(values[match.group(1)])

    parts = text.split("{{")
    return "{".join("}".join(PLACEHOLDER_RE.sub(one, piece) for piece in part.split("}}")) for part in parts)
