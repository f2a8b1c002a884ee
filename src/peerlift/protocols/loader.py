"""Read a protocol file and report every problem as ``FILE:LINE: message``.

ruamel.yaml keeps the line of every key, so a pydantic error's location (``items.3.at``)
maps back to the line a person has to fix. Unknown keys get a "did you mean".
"""

from __future__ import annotations

import difflib
import io
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

from peerlift.yamlcheck import FileInvalid, Problem, describe, line_of
from peerlift.protocols.format import PLACEHOLDERS, RANGE_RE, Condition, Item, Poll, Protocol, placeholders_in

PERSON_PLACEHOLDERS = {"first_name", "display_name", "days_to_quit", "my_posts_week", "reactions_received_week"}


class ProtocolInvalid(FileInvalid):
    """A protocol file with problems."""


def _model_at(loc: tuple) -> type[BaseModel]:
    model: type[BaseModel] = Protocol
    for part in loc:
        if isinstance(part, int):
            continue
        if model is Protocol and part == "items":
            model = Item
        elif model is Item and part == "poll":
            model = Poll
        elif model is Item and part == "condition":
            model = Condition
    return model


def _describe(error: dict, root) -> Problem:
    return describe(error, root, model_at=_model_at, whole="the protocol")


def _text_line(root, index: int) -> tuple[int, int]:
    """Line of an item's text key, and the offset to its first content line (block scalars)."""
    item = root["items"][index]
    key_line = item.lc.key("text")[0] + 1 if "text" in item else item.lc.line + 1
    block = isinstance(item["text"], (LiteralScalarString, FoldedScalarString))
    return key_line, 1 if block else 0


class _Header(Protocol):
    """The protocol's own keys, its items checked one by one (so every item's problems show)."""

    items: Annotated[list[Any], Field(min_length=1)]  # type: ignore[assignment]


def _semantic(header: _Header | None, raw_items: list, root) -> list[Problem]:
    """Checks across items and against the header, on the raw items (so an item with a type
    error elsewhere still has its id, days and placeholders checked)."""
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    duration = header.duration_days if header is not None else None
    quit_day = header.quit_day if header is not None else None
    for i, item in enumerate(raw_items):
        if not isinstance(item, dict):
            continue
        item_id = item.get("id")
        if isinstance(item_id, str):
            if item_id in seen:
                problems.append(Problem(line_of(root, ("items", i, "id")),
                                        f"items.{i}.id: duplicate item id {item_id!r} (first on line {seen[item_id]})"))
            else:
                seen[item_id] = line_of(root, ("items", i, "id"))
        if duration is not None:
            for field in ("day", "from_day", "until_day"):
                value = item.get(field)
                if isinstance(value, int) and not isinstance(value, bool) and value > duration:
                    problems.append(Problem(line_of(root, ("items", i, field)),
                                            f"items.{i}.{field}: day {value} is beyond duration_days ({duration})"))
            match = RANGE_RE.match(str(item.get("days", "")))
            if match and int(match.group(2)) > duration:
                problems.append(Problem(line_of(root, ("items", i, "days")),
                                        f"items.{i}.days: day {match.group(2)} is beyond duration_days ({duration})"))
        raw = item.get("text")
        if not isinstance(raw, str):
            continue
        key_line, offset = _text_line(root, i)
        for name in placeholders_in(raw):
            position = raw.find("{" + name + "}")
            line = key_line + offset + (raw[:position].count("\n") if offset and position >= 0 else 0)
            if name not in PLACEHOLDERS:
                close = difflib.get_close_matches(name, list(PLACEHOLDERS), n=1, cutoff=0.6)
                hint = f"; did you mean {{{close[0]}}}?" if close else f"; known: {', '.join(PLACEHOLDERS)}"
                problems.append(Problem(line, f"items.{i}.text: unknown placeholder {{{name}}}{hint}"))
            elif name in PERSON_PLACEHOLDERS and (item.get("audience") == "circle" or (
                    item.get("audience") is None and item.get("channel") == "circle_post")):
                problems.append(Problem(line, f"items.{i}.text: placeholder {{{name}}} is about one person, "
                                              "but this item goes to the whole circle"))
            elif name == "days_to_quit" and header is not None and quit_day is None:
                problems.append(Problem(line, f"items.{i}.text: {{days_to_quit}} needs quit_day in the protocol"))
    if duration is not None and quit_day is not None and quit_day > duration:
        problems.append(Problem(line_of(root, ("quit_day",)),
                                f"quit_day: day {quit_day} is beyond duration_days ({duration})"))
    return problems


def parse(text: str, filename: str = "<protocol>") -> Protocol:
    """The protocol in ``text``, or ProtocolInvalid listing every problem with its line."""
    yaml = YAML(typ="rt")
    try:
        root = yaml.load(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ProtocolInvalid(filename, [Problem(line, f"not valid YAML: {exc.problem or exc.context}")])
    if not isinstance(root, CommentedMap):
        raise ProtocolInvalid(filename, [Problem(1, "a protocol file is a mapping of keys (id, version, items, ...)")])
    problems: list[Problem] = []
    header: _Header | None = None
    try:
        header = _Header.model_validate(root)
    except ValidationError as exc:
        problems += [_describe(e, root) for e in exc.errors()]
    raw_items = root.get("items")
    raw_items = raw_items if isinstance(raw_items, list) else []
    for i, raw in enumerate(raw_items):
        if not isinstance(raw, dict):
            problems.append(Problem(line_of(root, ("items", i)), f"items.{i}: an item is a mapping of keys"))
            continue
        try:
            Item.model_validate(raw)
        except ValidationError as exc:
            for e in exc.errors():
                problems.append(_describe({**e, "loc": ("items", i, *e["loc"])}, root))
    problems += _semantic(header, raw_items, root)
    if root.get("cues") is not None:
        from peerlift.cues.loader import check_rules

        problems += check_rules(root["cues"], root, ("cues",))
    if problems:
        raise ProtocolInvalid(filename, problems)
    return Protocol.model_validate(root)


def load(path: str | Path) -> Protocol:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProtocolInvalid(str(path), [Problem(1, f"cannot read the file: {exc}")])
    return parse(text, str(path))
