"""The coded lists shipped with peerlift: conditions (ICD-10-CM) and medicines (ATC).

Each list is a YAML file of ``{code, name}`` entries beside this module. A condition matches
another under the broadest listed code both fall under (E11.9 and E11.65 are both "type 2
diabetes (E11)": the three-character ICD-10-CM category where the list has it); a medicine by its full ATC code. Free-text entries match only the same text, normalised
(case, spacing and punctuation at the ends).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ruamel.yaml import YAML

CODES_DIR = Path(__file__).parent / "codes"
ICD10CM = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
ATC = re.compile(r"^[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}$")


@dataclass(frozen=True)
class Code:
    code: str
    name: str


@dataclass(frozen=True)
class CodeList:
    kind: str                 # "conditions" or "medicines"
    entries: tuple[Code, ...]
    by_code: dict[str, Code]

    def search(self, q: str, limit: int = 20) -> list[Code]:
        """Entries whose code starts with, or whose name contains, what was typed."""
        q = normalise(q)
        if not q:
            return list(self.entries[:limit])
        starts = [c for c in self.entries if c.code.lower().startswith(q)]
        named = [c for c in self.entries if q in c.name.lower() and c not in starts]
        return (starts + named)[:limit]


@cache
def load(kind: str) -> CodeList:
    entries = tuple(Code(str(e["code"]), str(e["name"])) for e in YAML(typ="safe").load((CODES_DIR / f"{kind}.yaml").read_text()))
    return CodeList(kind, entries, {c.code: c for c in entries})


def conditions() -> CodeList:
    return load("conditions")


def medicines() -> CodeList:
    return load("medicines")


def normalise(text: str) -> str:
    return " ".join(text.lower().split()).strip(" .,;:!?-")


def group(code: str) -> Code:
    """The broadest listed entry a condition's code falls under: its shortest listed prefix
    (E11.9 and E11.65 both fall under E11 "Type 2 diabetes"; F43.12 under F43.1 "PTSD"; a code
    whose category is not listed, such as M35.00, stands alone)."""
    lst = conditions()
    for end in range(3, len(code) + 1):
        entry = lst.by_code.get(code[:end])
        if entry is not None and not code[:end].endswith("."):
            return entry
    return Code(code, code)


def looks_like_code(kind: str, text: str) -> bool:
    return bool((ICD10CM if kind == "conditions" else ATC).match(text))
