"""Which rules apply, and whether a rule's condition holds: the in-memory part of the cues engine.

Rule sets come from the shipped defaults (``default.yaml``: the facilitator's inbox), from the
files named in ``PEERLIFT_CUE_FILES`` (every circle), and from the ``cues:`` of the protocol
versions a circle runs. Conditions are parsed once, when a file is read; each decision evaluates
the parsed tree with simpleeval over a context whose parts are built only when a rule reads them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simpleeval import SimpleEval

from peerlift.cues.loader import CompiledRule, RuleSet, RulesInvalid, load, parse_protocol_cues

log = logging.getLogger("peerlift.cues")
DEFAULT_FILE = Path(__file__).parent / "default.yaml"


class Fields:
    """A context part: ``event.value`` reads a key; a key that is not there reads as None. Not a
    dict, so simpleeval's check of every value a name returns stays a constant-time test."""

    __slots__ = ("_data",)

    def __init__(self, data: dict) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        value = self._data.get(name)
        return Fields(value) if isinstance(value, dict) else value

    def get(self, name: str, default: Any = None) -> Any:
        return self._data.get(name, default)


class Context(dict):
    """The names a condition sees. A part (``person``, ``latest``, ...) is built on first use."""

    def __init__(self, builders: dict[str, Callable[[], dict]], texts: dict[str, str] | None = None,
                 **ready: dict) -> None:
        super().__init__({k: Fields(v) for k, v in ready.items()})
        self.builders = builders
        self.texts = texts or {}

    def __missing__(self, name: str) -> Any:
        builder = self.builders.get(name)
        if builder is None:
            raise KeyError(name)
        value = Fields(builder())
        self[name] = value
        return value

    def lookup(self, dotted: str) -> Any:
        """A placeholder's value: ``first_name`` or ``person.posts_7d``."""
        if dotted in self.texts:
            return self.texts[dotted]
        parts = dotted.split(".")
        try:
            value: Any = self[parts[0]]
        except KeyError:
            return None
        for part in parts[1:]:
            value = value.get(part) if isinstance(value, (dict, Fields)) else None
        return None if isinstance(value, Fields) else value


class _Evaluator(SimpleEval):
    """simpleeval, with two shortcuts that conditions checked at load time allow: the context parts
    are ``Fields`` (read directly, without the general attribute path and its checks for dunder
    names, which the checker already refused), and results are not searched for forbidden
    functions (a condition cannot call anything, and its names only yield numbers, text and
    ``Fields``)."""

    def _eval(self, node):
        try:
            handler = self.nodes[type(node)]
        except KeyError:
            return super()._eval(node)  # raises FeatureNotAvailable
        return handler(node)

    def _eval_attribute(self, node):
        base = self._eval(node.value)
        if type(base) is Fields:
            return base.__getattr__(node.attr)
        return super()._eval_attribute(node)


_local = threading.local()


def _evaluator() -> SimpleEval:
    evaluator = getattr(_local, "evaluator", None)
    if evaluator is None:
        evaluator = _local.evaluator = _Evaluator(functions={})
    return evaluator


def holds(rule: CompiledRule, context: Context) -> bool:
    """Whether the rule's condition is true in this context. A condition that cannot be evaluated
    (a comparison with a missing value, say) does not hold."""
    if rule.expression is None:
        return True
    if rule.guards:
        event = context.get("event")
        if event is None or any(event.get(f) != v for f, v in rule.guards.items()):
            return False
        if rule.rest is None:
            return True
    evaluator = _evaluator()
    evaluator.names = context
    try:
        return bool(evaluator.eval("", previously_parsed=rule.rest))
    except Exception as exc:  # noqa: BLE001 - a condition over missing data simply does not hold
        log.debug("cue %s: condition not evaluated (%s)", rule.key, exc)
        return False


def candidates(rulesets: list[RuleSet], event_kind: str, data: dict) -> list[CompiledRule]:
    """The rules an event of this kind may trigger, after their cheap ``event.F == value`` guards."""
    found: list[CompiledRule] = []
    for ruleset in rulesets:
        index = ruleset.by_event.get(event_kind)
        if index is None:
            continue
        found += index.unguarded
        for name, table in index.guarded.items():
            for rule in table.get(data.get(name), ()):
                if len(rule.guards) == 1 or all(data.get(f) == v for f, v in rule.guards.items()):
                    found.append(rule)
    return found


# --- where rule sets come from --------------------------------------------------------------------------

_lock = threading.Lock()
_files: dict[tuple, list[RuleSet]] = {}
_protocols: dict[str, RuleSet | None] = {}


def global_rulesets() -> list[RuleSet]:
    """The shipped defaults (unless PEERLIFT_CUE_DEFAULTS=false) and PEERLIFT_CUE_FILES, read again
    when a file changes. A file with problems is logged and left out."""
    from peerlift.settings import get_settings

    settings = get_settings()
    paths = ([DEFAULT_FILE] if settings.cue_defaults else []) + settings.cue_paths
    key = []
    for path in paths:
        try:
            key.append((str(path), path.stat().st_mtime_ns))
        except OSError:
            key.append((str(path), None))
    key_t = tuple(key)
    with _lock:
        cached = _files.get(key_t)
    if cached is not None:
        return cached
    loaded = []
    for path in paths:
        try:
            loaded.append(load(path))
        except RulesInvalid as exc:
            log.error("cue rules left out, the file has problems:\n%s", exc)
    with _lock:
        _files.clear()
        _files[key_t] = loaded
    return loaded


def protocol_ruleset(sha256: str, source: str) -> RuleSet | None:
    with _lock:
        if sha256 in _protocols:
            return _protocols[sha256]
    ruleset = parse_protocol_cues(source)
    with _lock:
        _protocols[sha256] = ruleset
    return ruleset


def event_kinds(rulesets: list[RuleSet]) -> set[str]:
    return {kind for ruleset in rulesets for kind in ruleset.by_event}
