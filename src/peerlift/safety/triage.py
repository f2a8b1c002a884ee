"""Risk triage of free text: green, amber, red or crisis, with the reasons.

The rules are data (``lexicon.yaml`` and any files named in ``PEERLIFT_TRIAGE_LEXICONS``).
A text is lower-cased, idioms of everyday health talk are blanked out, and it is cut into
clauses. Each rule's patterns are tried on the whole text; a match counts unless the clause it
sits in negates it, tells it of the distant past, reports it of someone else or frames it as a
hypothetical, or the post flags it as a joke (red and amber rules only); a rule's match is also
set aside when the post gives it an ordinary context the rule names (``unless``: a goodbye to the
group from someone moving on to the next programme) and no risk word is near (the reason then says
so, and the match is set aside). The level is the highest
level of any rule that counts. Everything is explainable: each reason names the rule and the
phrase that matched.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

LEVELS: tuple[str, ...] = ("green", "amber", "red", "crisis")
RANK = {level: i for i, level in enumerate(LEVELS)}
MODIFIERS = ("negation", "past", "reported", "hypothetical", "joke")
_HELPERS = ("not_negation", "past_before", "present", "resolved", "not_present", "not_joke", "risk_context")
LEXICON = Path(__file__).with_name("lexicon.yaml")
CLINICAL = Path(__file__).with_name("lexicon_clinical.yaml")  # clinical red flags, loaded after it
SHIPPED = (LEXICON, CLINICAL)


class LexiconError(ValueError):
    """A lexicon file that cannot be used, with every problem as ``FILE: message``."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleSpec(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    level: Literal["amber", "red", "crisis"]
    reason: str = Field(min_length=3)
    patterns: list[str] = Field(min_length=1)
    with_: list[str] = Field(default_factory=list, alias="with")
    keep: list[Literal["negation", "past", "reported", "hypothetical", "joke"]] = Field(default_factory=list)
    # An ordinary context: anywhere in the post, it sets a match aside unless `risk_context` is there too.
    unless: list[str] = Field(default_factory=list)
    emergency: bool = False
    near: bool = False  # the `with` pattern must be in the same sentence
    apart: bool = False  # the `with` pattern must not overlap the match (a second cue)


class LexiconSpec(_Strict):
    version: int = 1
    defs: dict[str, str] = Field(default_factory=dict)
    idioms: list[str] = Field(default_factory=list)
    negation: str | None = None
    not_negation: str | None = None
    past: str | None = None
    past_before: str | None = None
    resolved: str | None = None
    present: str | None = None
    reported: str | None = None
    hypothetical: str | None = None
    joke: str | None = None
    not_joke: str | None = None
    not_present: str | None = None
    risk_context: str | None = None
    # Texting spellings read as the words they stand for ("wnt" -> "want"), before any rule is tried.
    spellings: dict[str, str] = Field(default_factory=dict)
    rules: list[RuleSpec] = Field(default_factory=list)

    @field_validator("spellings")
    @classmethod
    def _words(cls, spellings: dict[str, str]) -> dict[str, str]:
        for word, meant in spellings.items():
            if not re.fullmatch(r"[a-z0-9']+", word) or not meant.strip() or meant != meant.lower():
                raise ValueError(f"spelling {word!r}: a lower-case word, read as lower-case words")
        return spellings

    @field_validator("defs")
    @classmethod
    def _names(cls, defs: dict[str, str]) -> dict[str, str]:
        for name in defs:
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                raise ValueError(f"definition name {name!r} must be lower-case letters, digits and _")
        return defs


@dataclass(frozen=True)
class Reason:
    rule: str
    level: str
    reason: str
    phrase: str
    set_aside: str | None = None  # which modifier set the match aside, if any

    def as_dict(self) -> dict:
        d = {"rule": self.rule, "level": self.level, "reason": self.reason, "phrase": self.phrase}
        if self.set_aside:
            d["set_aside"] = self.set_aside
        return d

    def describe(self) -> str:
        text = f"{self.reason} (rule {self.rule}: \u201c{self.phrase}\u201d)"
        if self.set_aside:
            text += f", set aside: {_SET_ASIDE_WORDS[self.set_aside]}"
        return text


_SET_ASIDE_WORDS = {
    "negation": "negated",
    "past": "told of the past",
    "reported": "said of someone else",
    "hypothetical": "hypothetical",
    "joke": "flagged as a joke",
    "ordinary": "an ordinary context",
    "idiom": "an idiom",
}


@dataclass(frozen=True)
class Triage:
    level: str
    reasons: tuple[Reason, ...] = ()
    emergency: bool = False

    @property
    def counted(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.set_aside is None)

    def as_dict(self) -> dict:
        return {"level": self.level, "reasons": [r.describe() for r in self.reasons],
                "emergency": self.emergency}


@dataclass
class _Rule:
    id: str
    level: str
    reason: str
    patterns: re.Pattern
    with_: re.Pattern | None
    keep: frozenset[str]
    emergency: bool
    near: bool
    unless: re.Pattern | None = None
    apart: bool = False


@dataclass
class Lexicon:
    rules: list[_Rule]
    idioms: re.Pattern | None
    modifiers: dict[str, re.Pattern | None]
    any_trigger: re.Pattern | None
    files: tuple[str, ...] = field(default=())
    rule_set: object | None = None  # an RE2 set of every rule's patterns: which rules can match, in one pass
    model: object | None = None     # the learned second opinion (safety.model.LinearModel), or None
    spellings: dict[str, str] = field(default_factory=dict)
    spelling_pattern: re.Pattern | None = None

    def triage(self, text: str) -> Triage:
        return _triage(self, text)

    def respell(self, norm: str) -> str:
        """Texting spellings as the words they stand for."""
        if self.spelling_pattern is None:
            return norm
        return self.spelling_pattern.sub(lambda m: self.spellings[m.group(0)], norm)


# --- loading -------------------------------------------------------------------------------

def _expand(pattern: str, defs: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in defs:
            raise KeyError(name)
        return defs[name]

    return re.sub(r"%([a-z_][a-z0-9_]*)%", sub, pattern)


def _compile(patterns: Sequence[str], defs: dict[str, str], where: str, problems: list[str]) -> re.Pattern | None:
    good: list[str] = []
    for pattern in patterns:
        try:
            expanded = _expand(pattern, defs)
            re.compile(expanded)
        except KeyError as exc:
            problems.append(f"{where}: unknown definition %{exc.args[0]}% in {pattern!r}")
            continue
        except re.error as exc:
            problems.append(f"{where}: the pattern {pattern!r} is not a valid regular expression ({exc})")
            continue
        good.append(f"(?:{expanded})")
    return re.compile("|".join(good)) if good else None


def _read(path: Path) -> LexiconSpec:
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LexiconError(f"{path}: cannot read ({exc.strerror})") from exc
    except YAMLError as exc:
        raise LexiconError(f"{path}: not valid YAML ({exc})") from exc
    try:
        return LexiconSpec.model_validate(data or {})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            lines.append(f"{path}: {loc}: {err['msg']}")
        raise LexiconError("\n".join(lines)) from exc


def load(extra: Iterable[str | Path] = (), model: str | Path | None = None) -> Lexicon:
    """The shipped lexicon merged with an installation's own files (their rules and idioms are
    added; a rule with the id of a shipped rule replaces it)."""
    paths = [*SHIPPED, *[Path(p) for p in extra]]
    specs = [_read(p) for p in paths]
    defs: dict[str, str] = {}
    idioms: list[str] = []
    modifiers: dict[str, list[str]] = {m: [] for m in (*MODIFIERS, *_HELPERS)}
    rules: dict[str, tuple[RuleSpec, str]] = {}
    spellings: dict[str, str] = {}
    for path, spec in zip(paths, specs):
        defs.update(spec.defs)
        spellings.update(spec.spellings)
        idioms += spec.idioms
        for name in modifiers:
            if getattr(spec, name):
                modifiers[name].append(getattr(spec, name))
        for rule in spec.rules:
            rules[rule.id] = (rule, str(path))
    problems: list[str] = []
    compiled: list[_Rule] = []
    for rule, where in rules.values():
        pats = _compile(rule.patterns, defs, f"{where}: rule {rule.id}", problems)
        with_ = _compile(rule.with_, defs, f"{where}: rule {rule.id} (with)", problems) if rule.with_ else None
        unless = _compile(rule.unless, defs, f"{where}: rule {rule.id} (unless)", problems) if rule.unless else None
        if pats is not None:
            compiled.append(_Rule(rule.id, rule.level, rule.reason, pats, with_, frozenset(rule.keep), rule.emergency,
                                  rule.near, unless, rule.apart))
    lexicon = Lexicon(
        rules=sorted(compiled, key=lambda r: -RANK[r.level]),
        idioms=_compile(idioms, defs, "idioms", problems),
        modifiers={m: _compile(modifiers[m], defs, m, problems) for m in (*MODIFIERS, *_HELPERS)},
        any_trigger=None,
        files=tuple(str(p) for p in paths),
        spellings=spellings,
        spelling_pattern=re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, spellings), key=len, reverse=True))
                                    + r")\b") if spellings else None,
    )
    if problems:
        raise LexiconError("\n".join(problems))
    lexicon.any_trigger = re.compile("|".join(f"(?:{r.patterns.pattern})" for r in compiled)) if compiled else None
    lexicon.rule_set = _rule_set(lexicon.rules)
    if model is not None:
        from peerlift.safety.model import LinearModel

        try:
            lexicon.model = LinearModel.load(model)
        except (OSError, ValueError, KeyError) as exc:
            raise LexiconError(f"{model}: not a triage model ({exc})") from exc
    return lexicon


def _rule_set(rules: list[_Rule]):
    """One linear-time pass (RE2) that tells which rules can match a text; Python's ``re`` then
    runs only those. Without google-re2, or for a pattern RE2 cannot read, every rule is tried."""
    if not rules:
        return None
    try:
        import re2
    except ImportError:
        return None
    options = re2.Options()
    options.max_mem = 256 << 20
    rule_set = re2.Set.SearchSet(options)
    try:
        for rule in rules:
            rule_set.Add(rule.patterns.pattern)
        rule_set.Compile()
    except Exception:  # noqa: BLE001 - an extension may use syntax only Python's re knows
        return None
    return rule_set


def _re2_safe(text: str) -> bool:
    """RE2's \\b, \\w and \\s are ASCII; Python's are Unicode. They agree on text whose non-ASCII
    characters are neither letters, digits nor spaces (emoji, punctuation)."""
    return text.isascii() or not any(ord(c) > 127 and (c.isalnum() or c.isspace()) for c in text)


@lru_cache(maxsize=8)
def _cached(extra: tuple[str, ...], model: str | None) -> Lexicon:
    return load(extra, model)


def model_path(setting: str) -> str | None:
    """``PEERLIFT_TRIAGE_MODEL``: empty for the shipped model, ``off`` for rules alone, or a path."""
    from peerlift.safety.model import MODEL

    if setting == "off":
        return None
    if not setting:
        return str(MODEL) if MODEL.exists() else None
    return setting


_loading = threading.Lock()  # one thread loads (about a second); the others wait for it


def default_lexicon() -> Lexicon:
    from peerlift.settings import get_settings

    settings = get_settings()
    key = (tuple(settings.triage_lexicons), model_path(settings.triage_model))
    with _loading:
        return _cached(*key)


def triage(text: str, lexicon: Lexicon | None = None) -> Triage:
    return (lexicon or default_lexicon()).triage(text)


# --- triage -----------------------------------------------------------------------------------

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
                         "\u00a0": " "})
_CLAUSE_END = re.compile(r"(?:[.!?;\n]+|\s-\s|,\s*(?=(?:but|i|i'm|im|i've|ive|i'd|it's|its|and i|so i|now|and now|just"
                         r"|(?:\d+|a few|many|two|three|four|five|ten) (?:years|yrs|months) (?:on|later))\b)|\s(?=but\s)|\s(?=although\s)|\s(?=though\s)|"
                         r"\s(?=just\s(?:so|really)\b))")


# Contractions typed without their apostrophe ("wasnt", "dont", "ive"), as texting writes them: the rules
# are written with the apostrophe optional, but not every pattern remembers to be.
_BARE_CONTRACTION = re.compile(
    r"\b(was|is|are|were|do|does|did|could|would|should|have|has|had|ca|wo|need|must|ai)nt\b|\b(i)(m|ve)\b")


def _apostrophe(m: re.Match) -> str:
    if m.group(1):
        return f"{m.group(1)}n't"
    return f"{m.group(2)}'{m.group(3)}"


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    text = _BARE_CONTRACTION.sub(_apostrophe, text)
    return re.sub(r"[ \t]+", " ", text)


def _blank(m: re.Match) -> str:
    return " " * (m.end() - m.start())


def _clause(text: str, start: int, end: int) -> tuple[int, int]:
    """The bounds of the clause around a match."""
    left = 0
    for m in _CLAUSE_END.finditer(text, 0, start):
        left = m.end()
    right = _CLAUSE_END.search(text, end)
    return left, right.start() if right else len(text)


def _set_aside(lexicon: Lexicon, rule: _Rule, text: str, m: re.Match) -> str | None:
    left, right = _clause(text, m.start(), m.end())
    before = text[left:m.start()]
    clause = text[left:right]
    mods = lexicon.modifiers
    if "negation" not in rule.keep and mods["negation"] is not None:
        window = before
        if mods["not_negation"] is not None:
            window = mods["not_negation"].sub(_blank, window)
        # A negation governs a match when it is close before it (a few words).
        tail = " ".join(window.split()[-6:])
        if mods["negation"].search(tail):
            return "negation"
    for name in ("hypothetical", "past", "reported", "joke"):
        pattern = mods[name]
        if name in rule.keep or pattern is None:
            continue
        if name == "joke":
            # A post that says it is joking ("kms ... obvs not literally") sets aside red and amber
            # matches, never a crisis, and not when it takes the joke back ("kidding. mostly").
            if (rule.level != "crisis" and pattern.search(text)
                    and not (mods["not_joke"] is not None and mods["not_joke"].search(text))):
                return name
            continue
        if name == "reported":
            # Someone else is the subject of what matched, not the writer.
            if pattern.search(before):
                told = before[_last_subject(before, pattern):]
                # "she says 'I want to die'": the I inside the quote is hers
                if _inside_quote(told) or not _WRITER.search(told):
                    return "reported"
        elif name == "past":
            told_as_past = (pattern.search(clause)
                            or (mods["past_before"] is not None and mods["past_before"].search(text[left:m.end()]))
                            or (mods["resolved"] is not None and mods["resolved"].search(text)))
            now = clause
            if told_as_past and mods["not_present"] is not None:
                now = mods["not_present"].sub(_blank, clause)  # "never ... again" is not a return
            if told_as_past and not (mods["present"] is not None and mods["present"].search(now)):
                return name
        elif pattern.search(clause):
            return name
    if rule.unless is not None and rule.unless.search(text) and not (
            mods["risk_context"] is not None and mods["risk_context"].search(text)):
        return "ordinary"
    return None


_QUOTED_LINE = re.compile(r"^[ \t]*>[^\n]*", re.MULTILINE)
_WRITER = re.compile(r"\b(?:i|i'm|im|i've|ive|i'd|me|my ?self)\b")
_OPENING_QUOTE = re.compile(r"(?<!\w)['\"](?=\w)")
_CLOSING_QUOTE = re.compile(r"(?<=[\w.!?,])['\"](?!\w)")


def _inside_quote(text: str) -> bool:
    """Whether a quotation opened in ``text`` is still open at its end (an apostrophe inside a word,
    "he's", is neither)."""
    return len(_OPENING_QUOTE.findall(text)) > len(_CLOSING_QUOTE.findall(text))


def _last_subject(before: str, pattern: re.Pattern) -> int:
    last = 0
    for m in pattern.finditer(before):
        last = m.end()
    return last


def _triage(lexicon: Lexicon, text: str) -> Triage:
    if not text or not text.strip():
        return Triage("green")
    # lines quoted from the post being replied to ("> ...") are someone else's words, triaged when written
    norm = lexicon.respell(_QUOTED_LINE.sub(_blank, normalise(text)))
    if lexicon.idioms is not None:
        norm = lexicon.idioms.sub(_blank, norm)
    result = _by_rules(lexicon, norm)
    if lexicon.model is not None and result.level in ("green", "amber"):
        opinion = lexicon.model.opinion(text)
        if opinion.probability >= lexicon.model.threshold:
            why = Reason("learned_model", "red", "close to writing labelled as risk",
                         f"score {opinion.probability:.2f}" + (f": {', '.join(opinion.terms)}" if opinion.terms else ""))
            return Triage("red", (*result.reasons, why), False)
    return result


def _by_rules(lexicon: Lexicon, norm: str) -> Triage:
    rules = lexicon.rules
    if lexicon.rule_set is not None and _re2_safe(norm):
        candidates = lexicon.rule_set.Match(norm)
        if not candidates:
            return Triage("green")
        rules = [rules[i] for i in sorted(candidates)]
    elif lexicon.any_trigger is None or not lexicon.any_trigger.search(norm):
        return Triage("green")
    reasons: list[Reason] = []
    level = "green"
    emergency = False
    for rule in rules:
        if RANK[rule.level] < RANK[level]:
            continue  # a lower level can no longer change the outcome
        for m in rule.patterns.finditer(norm):
            phrase = m.group(0).strip()
            if not phrase:
                continue
            why = _set_aside(lexicon, rule, norm, m)
            if why is None and rule.with_ is not None:
                companion = _companion(lexicon, rule, norm, m, rule.near)
                if companion is None:
                    continue
                phrase = f"{phrase} \u2026 {companion}"
            reasons.append(Reason(rule.id, rule.level, rule.reason, phrase, why))
            if why is None:
                if RANK[rule.level] > RANK[level]:
                    level = rule.level
                emergency = emergency or rule.emergency
                break
    return Triage(level, tuple(_dedupe(reasons)), emergency and level == "crisis")


def _companion(lexicon: Lexicon, rule: _Rule, text: str, near: re.Match, same_sentence: bool) -> str | None:
    start, end = 0, len(text)
    if same_sentence:
        start = max((m.end() for m in _SENTENCE_END.finditer(text, 0, near.start())), default=0)
        after = _SENTENCE_END.search(text, near.end())
        end = after.start() if after else len(text)
    for m in rule.with_.finditer(text, start, end):
        if rule.apart and near.start() < m.end() and m.start() < near.end():
            continue  # a companion is a second cue, not a part of the match itself
        if _set_aside(lexicon, rule, text, m) is None:
            return m.group(0).strip()
    return None


_SENTENCE_END = re.compile(r"[.!?\n]+")


def _dedupe(reasons: list[Reason]) -> list[Reason]:
    seen: set[tuple[str, str, str | None]] = set()
    out = []
    for r in reasons:
        key = (r.rule, r.phrase, r.set_aside)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


# --- evaluation ----------------------------------------------------------------------------------

@dataclass
class Evaluation:
    total: int
    confusion: dict[str, dict[str, int]]
    per_level: dict[str, dict[str, float]]
    raised_recall: float          # red+crisis predicted red or crisis
    false_alarm_ordinary: float   # ordinary/idiomatic (green) sentences raised to red or crisis
    misses: list[dict]

    def as_dict(self) -> dict:
        return {"total": self.total, "confusion": self.confusion, "per_level": self.per_level,
                "red_crisis_recall": self.raised_recall, "green_raised_to_red_or_crisis": self.false_alarm_ordinary}


def evaluate(cases: Sequence[dict], lexicon: Lexicon | None = None) -> Evaluation:
    lexicon = lexicon or default_lexicon()
    confusion = {a: {p: 0 for p in LEVELS} for a in LEVELS}
    misses = []
    high_total = high_hit = green_total = green_raised = 0
    for case in cases:
        actual = case["level"]
        got = lexicon.triage(case["text"]).level
        confusion[actual][got] += 1
        if got != actual:
            misses.append({"text": case["text"], "expected": actual, "got": got,
                           "category": case.get("category", "")})
        if actual in ("red", "crisis"):
            high_total += 1
            high_hit += got in ("red", "crisis")
        if actual == "green":
            green_total += 1
            green_raised += got in ("red", "crisis")
    per_level = {}
    for level in LEVELS:
        tp = confusion[level][level]
        actual_n = sum(confusion[level].values())
        predicted_n = sum(confusion[a][level] for a in LEVELS)
        negatives = len(cases) - actual_n
        fp = predicted_n - tp
        per_level[level] = {
            "recall": tp / actual_n if actual_n else 0.0,
            "precision": tp / predicted_n if predicted_n else 0.0,
            "false_alarm_rate": fp / negatives if negatives else 0.0,
            "n": actual_n,
        }
    return Evaluation(len(cases), confusion, per_level,
                      high_hit / high_total if high_total else 0.0,
                      green_raised / green_total if green_total else 0.0, misses)
