"""Checking a YAML file against a strict pydantic model, with every problem as ``FILE:LINE: message``.

Protocols, cue rules and questionnaire instruments are data written by people; each loader parses
with ruamel.yaml (which keeps line numbers) and turns pydantic's errors into lines a person can act
on: the line of the offending key, "did you mean" for a misspelt key, the value that was given.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel
from ruamel.yaml.comments import CommentedMap, CommentedSeq


@dataclass(frozen=True, order=True)
class Problem:
    line: int
    message: str

    def format(self, filename: str) -> str:
        return f"{filename}:{self.line}: {self.message}"


class FileInvalid(Exception):
    """A data file with problems; ``lines()`` gives them sorted, one ``FILE:LINE: message`` each."""

    def __init__(self, filename: str, problems: list[Problem]) -> None:
        self.filename = filename
        self.problems = sorted(set(problems))
        super().__init__("\n".join(p.format(filename) for p in self.problems))

    def lines(self) -> list[str]:
        return [p.format(self.filename) for p in self.problems]


def line_of(node, loc: tuple) -> int:
    """The 1-based line of the key at ``loc`` (or of the nearest enclosing node that exists)."""
    line = (node.lc.line + 1) if hasattr(node, "lc") else 1
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


def describe(error: dict, root, *, model_at: Callable[[tuple], type[BaseModel]], whole: str,
             base: tuple = ()) -> Problem:
    """One pydantic error as a Problem at its line. ``model_at(loc)`` names the model at a place (for
    "did you mean"); ``whole`` names the file's top level ("the protocol"); ``base`` is where the
    validated part sits in the file."""
    loc = base + tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith(("list[", "dict["))))
    message = str(error["msg"]).removeprefix("Value error, ")
    where = ".".join(str(p) for p in loc)
    if error["type"] == "extra_forbidden":
        key = str(loc[-1])
        fields = list(model_at(loc[:-1]).model_fields)
        close = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(fields)}"
        return Problem(line_of(root, loc), f"unknown key {key!r} in {where.rsplit('.', 1)[0] if '.' in where else whole}"
                                           f"{hint}")
    if error["type"] == "missing":
        return Problem(line_of(root, loc[:-1]), f"{'.'.join(str(p) for p in loc[:-1]) or whole}: "
                                                f"missing key {loc[-1]!r}")
    given = error.get("input")
    if isinstance(given, (str, int, float)) and not isinstance(given, bool) and str(given) not in message:
        message = f"{message} (got {given!r})"
    return Problem(line_of(root, loc), f"{where}: {message}" if where else message)


def check_version(value) -> str:
    """A version written in a data file: text such as "1.0.0" (YAML reads 1.10 as the number 1.1)."""
    import re

    if isinstance(value, float):
        raise ValueError(f"YAML read this version as the number {value!r}; quote it, e.g. version: \"1.10\"")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("the version is text such as \"1.0.0\"")
    value = str(value)
    if not re.match(r"^\d+(\.\d+){0,2}$", value):
        raise ValueError(f"{value!r} is not a version such as 1.0.0")
    return value
