"""Read a cue rule file (or the ``cues:`` section of a protocol file) and report every problem
as ``FILE:LINE: message``, with a "did you mean" for unknown keys, fields and triggers."""

from __future__ import annotations

import difflib
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

from peerlift.cues.format import (
    EVENT_TRIGGERS,
    Action,
    FollowUp,
    Rule,
    RuleFile,
    Trigger,
    check_expression,
    check_placeholder,
    equality_guards,
    residual,
    parse_duration,
    placeholders_in,
)
from peerlift.yamlcheck import FileInvalid, Problem, describe, line_of


class RulesInvalid(FileInvalid):
    """A cue rule file with problems."""


@dataclass
class CompiledRule:
    """A checked rule, ready for the engine: its condition parsed once, its cheap guards apart."""

    ruleset: str
    version: str
    rule: Rule
    expression: Any  # the parsed condition (an ast.Expr), or None
    guards: dict[str, Any]
    rest: Any  # the condition less its guards (None: the guards are all of it)
    roots: frozenset[str]
    event_kind: str | None  # the event kind an event trigger listens to
    after: Any  # timedelta or None

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def key(self) -> str:
        return f"{self.ruleset}/{self.rule.id}"


@dataclass
class EventIndex:
    """The rules of one event kind: those without a guard, and the others by their first guard."""

    unguarded: list[CompiledRule] = field(default_factory=list)
    guarded: dict[str, dict[Any, list[CompiledRule]]] = field(default_factory=dict)

    def add(self, rule: CompiledRule) -> None:
        if not rule.guards:
            self.unguarded.append(rule)
            return
        name, value = next(iter(rule.guards.items()))
        self.guarded.setdefault(name, {}).setdefault(value, []).append(rule)


@dataclass
class RuleSet:
    key: str
    version: str
    sha256: str
    rules: list[CompiledRule]
    protocol: bool = False  # from a protocol file: applies to the circles running that version
    by_event: dict[str, EventIndex] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for rule in self.rules:
            if rule.event_kind is not None:
                self.by_event.setdefault(rule.event_kind, EventIndex()).add(rule)

    def get(self, rule_id: str) -> CompiledRule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


# --- describing pydantic errors -------------------------------------------------------------------

def _model_at(loc: tuple) -> type[BaseModel]:
    model: type[BaseModel] = RuleFile
    for part in loc:
        if isinstance(part, int):
            continue
        if model is RuleFile and part == "cues":
            model = Rule
        elif model is Rule and part == "trigger":
            model = Trigger
        elif model is Rule and part == "action":
            model = Action
        elif model is Action and part == "follow_up":
            model = FollowUp
    return model


def _describe(error: dict, root, base: tuple = ()) -> Problem:
    return describe(error, root, model_at=_model_at, whole="the file", base=base)


def _text_line(node: CommentedMap, key: str, root, loc: tuple) -> int:
    line = line_of(root, loc + (key,))
    value = node.get(key)
    return line + (1 if isinstance(value, (LiteralScalarString, FoldedScalarString)) else 0)


# --- checking rules --------------------------------------------------------------------------------

def check_rules(raw_rules: Any, root, base: tuple = ("cues",)) -> list[Problem]:
    """Every problem of a list of rules (the ``cues`` of a rule file or of a protocol)."""
    problems: list[Problem] = []
    where = ".".join(str(p) for p in base)
    if not isinstance(raw_rules, list) or not raw_rules:
        return [Problem(line_of(root, base), f"{where}: a list of at least one rule")]
    seen: dict[str, int] = {}
    triggers: dict[str, dict] = {}
    for i, raw in enumerate(raw_rules):
        loc = base + (i,)
        if not isinstance(raw, dict):
            problems.append(Problem(line_of(root, loc), f"{where}.{i}: a rule is a mapping of keys"))
            continue
        try:
            Rule.model_validate(raw)
        except ValidationError as exc:
            problems += [_describe(e, root, loc) for e in exc.errors()]
        rule_id = raw.get("id")
        if isinstance(rule_id, str):
            if rule_id in seen:
                problems.append(Problem(line_of(root, loc + ("id",)),
                                        f"{where}.{i}.id: duplicate rule id {rule_id!r} (first on line {seen[rule_id]})"))
            else:
                seen[rule_id] = line_of(root, loc + ("id",))
                triggers[rule_id] = raw.get("trigger") if isinstance(raw.get("trigger"), dict) else {}
    for i, raw in enumerate(raw_rules):
        if isinstance(raw, dict):
            problems += _semantic(raw, i, root, base, triggers)
    return problems


def _trigger_name(trigger: dict) -> tuple[str | None, bool]:
    """The trigger a condition is checked against, and whether ``post.*`` is known."""
    if trigger.get("follow_up"):
        return None, True
    event = trigger.get("event")
    if isinstance(event, str):
        return (event if event in EVENT_TRIGGERS else None), event in ("post.created", "comment.created")
    return "time", False


def _semantic(raw: dict, i: int, root, base: tuple, triggers: dict[str, dict]) -> list[Problem]:
    problems: list[Problem] = []
    loc = base + (i,)
    where = ".".join(str(p) for p in loc)
    trigger = raw.get("trigger") if isinstance(raw.get("trigger"), dict) else {}
    event = trigger.get("event")
    if isinstance(event, str) and event not in EVENT_TRIGGERS:
        return problems  # reported already; the fields of an unknown event are unknown too
    name, has_post = _trigger_name(trigger)
    condition = raw.get("condition")
    if isinstance(condition, str):
        line = _text_line(raw, "condition", root, loc)
        _tree, why, _roots = check_expression(condition, name, has_post)
        problems += [Problem(line, f"{where}.condition: {w}") for w in why]
    action = raw.get("action")
    if isinstance(action, dict):
        for kind, value in action.items():
            if isinstance(value, str):
                line = _text_line(action, kind, root, loc + ("action",))
                for placeholder in placeholders_in(value):
                    why = check_placeholder(placeholder, name, has_post)
                    if why:
                        problems.append(Problem(line, f"{where}.action.{kind}: {{{placeholder}}}: {why}"))
            elif kind == "follow_up" and isinstance(value, dict) and isinstance(value.get("cue"), str):
                target = value["cue"]
                if target not in triggers:
                    close = difflib.get_close_matches(target, list(triggers), n=1, cutoff=0.6)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    problems.append(Problem(line_of(root, loc + ("action", "follow_up", "cue")),
                                            f"{where}.action.follow_up.cue: no rule {target!r} in this file{hint}"))
                elif not triggers[target].get("follow_up"):
                    problems.append(Problem(line_of(root, loc + ("action", "follow_up", "cue")),
                                            f"{where}.action.follow_up.cue: rule {target!r} needs trigger "
                                            "{follow_up: true}"))
    return problems


# --- reading files -----------------------------------------------------------------------------------

def _load_yaml(text: str, filename: str):
    try:
        root = YAML(typ="rt").load(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise RulesInvalid(filename, [Problem(mark.line + 1 if mark else 1,
                                              f"not valid YAML: {exc.problem or exc.context}")])
    if not isinstance(root, CommentedMap):
        raise RulesInvalid(filename, [Problem(1, "a rule file is a mapping of keys (id, version, cues)")])
    return root


def compile_rules(key: str, version: str, rules: list[Rule], sha: str, protocol: bool = False) -> RuleSet:
    compiled = []
    for rule in rules:
        name = rule.trigger.name
        has_post = rule.trigger.event in ("post.created", "comment.created") or bool(rule.trigger.follow_up)
        expression, roots = None, set()
        guards: dict[str, Any] = {}
        if rule.condition:
            expression, why, roots = check_expression(rule.condition, name, has_post)
            assert not why, why  # checked when the file was read
            guards = equality_guards(expression)
        for value in (rule.action.text or "",):
            for placeholder in placeholders_in(value):
                if "." in placeholder:
                    roots.add(placeholder.split(".")[0])
        event_kind = EVENT_TRIGGERS[rule.trigger.event][0] if rule.trigger.event else None
        after = parse_duration(rule.trigger.after) if rule.trigger.after else None
        rest = residual(expression, guards) if expression is not None else None
        compiled.append(CompiledRule(key, version, rule, expression, guards, rest, frozenset(roots), event_kind,
                                     after))
    return RuleSet(key, version, sha, compiled, protocol=protocol)


def parse(text: str, filename: str = "<cues>") -> RuleSet:
    """The rule set in ``text``, or RulesInvalid listing every problem with its line."""
    root = _load_yaml(text, filename)
    problems: list[Problem] = []
    header = {k: v for k, v in root.items() if k != "cues"}
    try:
        RuleFile.model_validate({**header, "cues": [{"id": "x", "trigger": {"at": "00:00"}, "action": {"inbox": "x"}}]})
    except ValidationError as exc:
        problems += [_describe(e, root) for e in exc.errors()]
    if "cues" not in root:
        problems.append(Problem(1, "the file: missing key 'cues'"))
    else:
        problems += check_rules(root["cues"], root)
    if problems:
        raise RulesInvalid(filename, problems)
    model = RuleFile.model_validate(root)
    return compile_rules(model.id, model.version, model.cues, hashlib.sha256(text.encode()).hexdigest())


def parse_protocol_cues(source: str, filename: str = "<protocol>") -> RuleSet | None:
    """The ``cues:`` of a (checked) protocol file, as a rule set named after the protocol."""
    root = YAML(typ="safe").load(io.StringIO(source))
    if not isinstance(root, dict) or not root.get("cues"):
        return None
    rules = [Rule.model_validate(r) for r in root["cues"]]
    return compile_rules(str(root["id"]), str(root["version"]), rules,
                         hashlib.sha256(source.encode()).hexdigest(), protocol=True)


def load(path: str | Path) -> RuleSet:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesInvalid(str(path), [Problem(1, f"cannot read the file: {exc}")])
    return parse(text, str(path))
