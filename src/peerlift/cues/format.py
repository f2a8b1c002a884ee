"""The cue rule format: rules as data (YAML), checked strictly.

A rule says when it is considered (a **trigger**: an event, or a time), whether it applies (a
**condition**: an expression over the documented context, evaluated by simpleeval, never by
``eval``) and what it does (an **action**). The context fields a condition or a text may name
are listed here, once: the checker, the documentation and the engine all read them from here.
"""

from __future__ import annotations

import ast
import datetime as dt
import difflib
import re
from typing import Annotated, Any

from peerlift.yamlcheck import check_version
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
DURATION_RE = re.compile(r"^\s*(\d+)\s*(minute|minutes|hour|hours|day|days)\s*$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")

# --- the documented context --------------------------------------------------------------------

COMMON_EVENT_FIELDS = {
    "kind": "the event's kind, e.g. post.created",
    "actor_id": "who acted (the author, the sender, the person who logged)",
}
# Trigger name -> the event kind it listens to and the fields of that event's data.
EVENT_TRIGGERS: dict[str, tuple[str, dict[str, str]]] = {
    "post.created": ("post.created", {
        "circle_id": "the circle", "post_id": "the post", "length": "characters in the post",
        "has_poll": "whether the post has a poll"}),
    "comment.created": ("comment.created", {
        "circle_id": "the circle", "post_id": "the post commented on", "comment_id": "the comment",
        "parent_id": "the comment replied to, or None", "post_author_id": "the author of the post",
        "length": "characters in the comment"}),
    "message.received": ("message.created", {
        "conversation_id": "the conversation", "message_id": "the message",
        "recipient_id": "the person who received it (the person of the cue)", "length": "characters"}),
    "tracking.logged": ("tracking.logged", {
        "measure": "what was logged, e.g. weight, steps, cravings, mood", "value": "the number logged",
        "unit": "its unit", "local_date": "the day it is for (YYYY-MM-DD, the person's zone)",
        "entry_id": "the entry"}),
    "questionnaire.scored": ("questionnaire.scored", {
        "instrument": "e.g. phq9", "version": "the instrument's version", "total": "the total score",
        "band": "the severity band of this total", "previous_band": "the band of the previous response, or None",
        "band_rank": "the band's rank, 0 the best", "previous_band_rank": "the previous band's rank, or None",
        "alerts": "the instrument's alerts (a list)", "response_id": "the response"}),
}
EVENT_KINDS = {kind for kind, _fields in EVENT_TRIGGERS.values()}

PERSON_FIELDS = {
    "posts_1d": "posts the person wrote in the last 24 hours", "posts_7d": "... in the last 7 days",
    "comments_1d": "comments in the last 24 hours", "comments_7d": "... in the last 7 days",
    "reactions_1d": "reactions given in the last 24 hours", "reactions_7d": "... in the last 7 days",
    "messages_1d": "direct messages sent in the last 24 hours", "messages_7d": "... in the last 7 days",
    "days_since_active": "whole days since the person last posted, commented, reacted or sent a message "
                         "(since they joined, when they never did)",
    "days_in_programme": "whole days since the person joined the circle (0 on the first day)",
    "cues_today": "cues sent to the person in the last 24 hours",
}
POST_FIELDS = {
    "comments": "comments on the post by people other than its author",
    "reactions": "reactions to the post",
    "is_first": "whether it is the author's first post",
    "minutes_old": "minutes since the post was written",
}
QUESTIONNAIRE_FIELDS = {
    "total": "the latest total score", "band": "its band", "band_rank": "its band's rank (0 the best)",
    "previous_band": "the band before it", "previous_band_rank": "the rank before it",
}
TEXT_NAMES = {
    "first_name": "the person's first name", "display_name": "the person's display name",
    "circle_name": "the circle's name", "facilitator_name": "the circle facilitator's display name",
}
ROOTS = ("event", "person", "post", "latest", "questionnaire")

ACTIONS = ("dm", "notify", "inbox", "post", "follow_up")
TIME_TRIGGERS = ("inactive_days", "missed_checkin", "at", "follow_up")


def parse_duration(value: str) -> dt.timedelta:
    match = DURATION_RE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration: use N minutes, N hours or N days")
    n, unit = int(match.group(1)), match.group(2)
    return dt.timedelta(minutes=n) if unit.startswith("minute") else \
        dt.timedelta(hours=n) if unit.startswith("hour") else dt.timedelta(days=n)


def _did_you_mean(name: str, known, what: str) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"unknown {what} {name!r}; did you mean {close[0]!r}?" if close else \
        f"unknown {what} {name!r}; known: {', '.join(sorted(known))}"


# --- expressions --------------------------------------------------------------------------------

_ALLOWED = (ast.Expr, ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
            ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is,
            ast.IsNot, ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod, ast.FloorDiv, ast.Constant,
            ast.Name, ast.Attribute, ast.Load, ast.List, ast.Tuple, ast.IfExp)


def dotted(node: ast.AST) -> tuple[str, ...] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return tuple(reversed(parts))
    return None


def event_fields_for(trigger: str | None) -> dict[str, str]:
    """Fields of ``event`` a rule with this trigger may name (None: every event trigger's fields)."""
    if trigger is None:
        merged = dict(COMMON_EVENT_FIELDS)
        for _kind, fields in EVENT_TRIGGERS.values():
            merged.update(fields)
        return merged
    if trigger in EVENT_TRIGGERS:
        return {**COMMON_EVENT_FIELDS, **EVENT_TRIGGERS[trigger][1]}
    return {"kind": COMMON_EVENT_FIELDS["kind"]}


def check_path(path: tuple[str, ...], trigger: str | None, has_post: bool) -> str | None:
    """Why a context path may not be used, or None when it may."""
    root = path[0]
    if root not in ROOTS:
        return _did_you_mean(root, ROOTS, "name")
    if root == "latest":
        if len(path) != 2 or not NAME_RE.match(path[1]):
            return "use latest.<measure>, e.g. latest.cravings"
        return None
    if root == "questionnaire":
        if len(path) != 3 or not NAME_RE.match(path[1]):
            return "use questionnaire.<instrument>.<field>, e.g. questionnaire.phq9.band"
        if path[2] not in QUESTIONNAIRE_FIELDS:
            return _did_you_mean(path[2], QUESTIONNAIRE_FIELDS, "questionnaire field")
        return None
    if len(path) != 2:
        return f"use {root}.<field>, e.g. {root}.{next(iter(_fields_of(root, trigger)))}"
    if root == "post" and not has_post:
        return "post.* is known only for post.created and comment.created triggers"
    fields = _fields_of(root, trigger)
    if path[1] not in fields:
        return _did_you_mean(path[1], fields, f"{root} field")
    return None


def _fields_of(root: str, trigger: str | None) -> dict[str, str]:
    return {"event": event_fields_for(trigger), "person": PERSON_FIELDS, "post": POST_FIELDS}[root]


def check_expression(text: str, trigger: str | None, has_post: bool) -> tuple[ast.Expr | None, list[str], set[str]]:
    """Parse a condition; returns (the tree, problems, the context roots it reads)."""
    try:
        tree = ast.parse(text.strip(), mode="exec")
    except SyntaxError as exc:
        return None, [f"the condition does not parse: {exc.msg} (column {exc.offset})"], set()
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return None, ["the condition is one expression, e.g. event.value >= 8"], set()
    problems: list[str] = []
    roots: set[str] = set()
    expr = tree.body[0]
    for node in ast.walk(expr):
        if not isinstance(node, _ALLOWED):
            problems.append(f"the condition may not use {type(node).__name__} "
                            "(only comparisons, and/or/not, arithmetic, constants and context fields)")
            continue
        if isinstance(node, (ast.Attribute, ast.Name)):
            if _inside_attribute(expr, node):
                continue
            path = dotted(node)
            if path is None:
                problems.append("the condition may only read fields of event, person, post, latest, questionnaire")
                continue
            why = check_path(path, trigger, has_post)
            if why:
                problems.append(f"{'.'.join(path)}: {why}")
            roots.add(path[0])
    return expr, problems, roots


def _inside_attribute(expr: ast.AST, target: ast.AST) -> bool:
    for node in ast.walk(expr):
        if isinstance(node, ast.Attribute) and node.value is target:
            return True
    return False


def equality_guards(expr: ast.Expr) -> dict[str, Any]:
    """``event.F == constant`` conjuncts at the top of a condition: the engine checks them
    before evaluating, so a rule about cravings costs nothing for a weight entry."""
    guards: dict[str, Any] = {}
    body = expr.value
    parts = body.values if isinstance(body, ast.BoolOp) and isinstance(body.op, ast.And) else [body]
    for part in parts:
        if (isinstance(part, ast.Compare) and len(part.ops) == 1 and isinstance(part.ops[0], ast.Eq)
                and isinstance(part.comparators[0], ast.Constant)):
            path = dotted(part.left)
            if path and len(path) == 2 and path[0] == "event":
                guards[path[1]] = part.comparators[0].value
    return guards


def residual(expr: ast.Expr, guards: dict[str, Any]) -> ast.Expr | None:
    """The condition without its guard conjuncts (checked apart), or None when nothing is left."""
    if not guards:
        return expr
    body = expr.value
    parts = body.values if isinstance(body, ast.BoolOp) and isinstance(body.op, ast.And) else [body]
    rest = []
    for part in parts:
        if (isinstance(part, ast.Compare) and len(part.ops) == 1 and isinstance(part.ops[0], ast.Eq)
                and isinstance(part.comparators[0], ast.Constant)):
            path = dotted(part.left)
            if path and len(path) == 2 and path[0] == "event" and guards.get(path[1]) == part.comparators[0].value:
                continue
        rest.append(part)
    if not rest:
        return None
    node = rest[0] if len(rest) == 1 else ast.BoolOp(op=ast.And(), values=rest)
    return ast.fix_missing_locations(ast.Expr(value=node))


PLACEHOLDER_RE = re.compile(r"{([^{}]*)}")


def placeholders_in(text: str) -> list[str]:
    return [m.group(1) for m in PLACEHOLDER_RE.finditer(text.replace("{{", "").replace("}}", ""))]


def check_placeholder(name: str, trigger: str | None, has_post: bool) -> str | None:
    if name in TEXT_NAMES:
        return None
    path = tuple(name.split("."))
    if len(path) == 1:
        known = list(TEXT_NAMES) + [f"{r}.<field>" for r in ROOTS]
        return _did_you_mean(name, known, "placeholder")
    return check_path(path, trigger, has_post)


def render(text: str, lookup) -> str:
    """Fill ``{name}`` and ``{root.field}`` placeholders with ``lookup(name)``; ``{{``/``}}`` are braces."""
    def one(match: re.Match) -> str:
        value = lookup(match.group(1))
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return "" if value is None else str(value)

    parts = text.split("{{")
    return "{".join("}".join(PLACEHOLDER_RE.sub(one, piece) for piece in part.split("}}")) for part in parts)


# --- the models ---------------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Trigger(_Strict):
    event: str | None = Field(None, description=f"one of {', '.join(EVENT_TRIGGERS)}")
    after: str | None = Field(None, description="with event: decide this long after the event, e.g. 2 hours")
    inactive_days: Annotated[int | None, Field(ge=1, le=365)] = Field(
        None, description="no post, comment, reaction or message for this many days (checked daily at `at`)")
    missed_checkin: str | None = Field(None, description="a measure: nothing logged for it today by `by`")
    by: str | None = Field(None, description='with missed_checkin: the local time "HH:MM"')
    at: str | None = Field(None, description='a local time "HH:MM": alone, a daily trigger; with inactive_days, '
                                              "when the check runs (default 10:00)")
    follow_up: bool | None = Field(None, description="true: considered only when another rule's follow_up names it")

    @field_validator("event")
    @classmethod
    def _event(cls, value: str | None) -> str | None:
        if value is not None and value not in EVENT_TRIGGERS:
            raise ValueError(_did_you_mean(value, EVENT_TRIGGERS, "trigger event"))
        return value

    @field_validator("after")
    @classmethod
    def _after(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("at", "by")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        if value is not None and not TIME_RE.match(value):
            raise ValueError(f"{value!r} is not a time of day: use HH:MM from 00:00 to 23:59")
        return value

    @field_validator("missed_checkin")
    @classmethod
    def _measure(cls, value: str | None) -> str | None:
        if value is not None and not NAME_RE.match(value):
            raise ValueError(f"{value!r} is not a measure name (lowercase letters, digits and _)")
        return value

    @model_validator(mode="after")
    def _one(self) -> Trigger:
        kinds = [k for k in ("event", "inactive_days", "missed_checkin", "follow_up") if getattr(self, k) is not None]
        if not kinds and self.at is not None:
            kinds = ["at"]
        if len(kinds) != 1:
            raise ValueError("a trigger is exactly one of event, inactive_days, missed_checkin, at, follow_up"
                             + (f" (it has {', '.join(kinds)})" if kinds else ""))
        kind = kinds[0]
        if self.after is not None and kind != "event":
            raise ValueError("after goes with an event trigger")
        if (self.by is None) != (kind != "missed_checkin"):
            raise ValueError("missed_checkin needs by: \"HH:MM\"" if kind == "missed_checkin"
                             else "by goes with missed_checkin")
        if self.at is not None and kind not in ("at", "inactive_days"):
            raise ValueError("at goes alone (a daily trigger) or with inactive_days")
        if self.follow_up is False:
            raise ValueError("follow_up: true, or leave it out")
        return self

    @property
    def kind(self) -> str:
        for k in ("event", "inactive_days", "missed_checkin", "follow_up"):
            if getattr(self, k) is not None:
                return k
        return "at"

    @property
    def name(self) -> str | None:
        """The trigger event a condition is checked against (None: any, for follow-ups)."""
        if self.event is not None:
            return self.event
        return None if self.follow_up else "time"


class FollowUp(_Strict):
    after: str = Field(description="how long after, e.g. 2 days")
    cue: str = Field(description="the id of the rule (in the same file, trigger follow_up) to consider then")

    @field_validator("after")
    @classmethod
    def _after(cls, value: str) -> str:
        parse_duration(value)
        return value


Text = Annotated[str, Field(min_length=1, max_length=5_000)]


class Action(_Strict):
    dm: Text | None = Field(None, description="a direct message from the circle's facilitator to the person")
    notify: Text | None = Field(None, description="an in-app notification to the person")
    inbox: Text | None = Field(None, description="a card in the inbox of the facilitators of the person's circle: why")
    post: Text | None = Field(None, description="a post in the person's circle by its facilitator")
    follow_up: FollowUp | None = Field(None, description="consider another rule later")

    @model_validator(mode="after")
    def _one(self) -> Action:
        given = [a for a in ACTIONS if getattr(self, a) is not None]
        if len(given) != 1:
            raise ValueError(f"an action is exactly one of {', '.join(ACTIONS)}"
                             + (f" (it has {', '.join(given)})" if given else ""))
        return self

    @property
    def kind(self) -> str:
        return next(a for a in ACTIONS if getattr(self, a) is not None)

    @property
    def text(self) -> str | None:
        return None if self.kind == "follow_up" else getattr(self, self.kind)


class Rule(_Strict):
    id: str = Field(description="unique within the file: lowercase letters, digits, - and _")
    description: str = ""
    trigger: Trigger
    condition: Annotated[str, Field(max_length=2_000)] | None = Field(
        None, description="an expression over the context; the rule acts only when it is true")
    action: Action
    cooldown: str | None = Field(None, description="no repeat for the same person within this time (default 1 day)")
    randomise: float | None = Field(None, description="micro-randomised: send with this probability (0..1)")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not ID_RE.match(value):
            raise ValueError("a rule id uses lowercase letters, digits, - and _ (at most 64)")
        return value

    @field_validator("cooldown")
    @classmethod
    def _cooldown(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("randomise", mode="before")
    @classmethod
    def _randomise(cls, value):
        if value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("randomise is a probability between 0 and 1, e.g. 0.5")
        if not 0 <= value <= 1:
            raise ValueError(f"randomise is a probability between 0 and 1 (got {value!r})")
        return float(value)

    @property
    def cooldown_delta(self) -> dt.timedelta:
        return parse_duration(self.cooldown) if self.cooldown else dt.timedelta(days=1)


class RuleFile(_Strict):
    id: str = Field(description="the rule set's stable name")
    version: str = Field(description="this file's version, e.g. 1.0.0")
    title: str = ""
    cues: Annotated[list[Rule], Field(min_length=1)]

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not ID_RE.match(value):
            raise ValueError("a rule set id uses lowercase letters, digits, - and _ (at most 64)")
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value) -> str:
        return check_version(value)
