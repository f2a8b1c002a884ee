"""Personal information in free text: phone numbers, email addresses, street addresses, full names.

Used to warn an author before a post goes out, and to scrub free text in research exports.
Phone numbers are found by ``phonenumbers`` (Google's libphonenumber rules, offline) for the
installation's country and in international form; the rest by patterns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
STREET_TYPES = (r"street|st|road|rd|avenue|ave|lane|ln|drive|dr|close|court|ct|crescent|cres|way|place|pl|"
                r"boulevard|blvd|terrace|grove|gardens|square|sq|hill|row|mews|parade|walk")
ADDRESS = re.compile(
    rf"\b\d{{1,5}}[a-z]?,?\s+(?:[A-Z][a-z]+\s+){{1,3}}(?:{STREET_TYPES})\b"
    r"|\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b",  # a UK postcode
    re.IGNORECASE,
)
# A full name: "my name is Jane Smith", "I'm Jane Smith", or a first and family name both capitalised
# where the first is a common given name.
NAME_INTRO = re.compile(r"\b(?:my name is|my name's|i am|i'm|call me|this is|it's)\s+([A-Z][a-z'-]+\s+[A-Z][a-z'-]+)\b")
GIVEN_NAMES = frozenset("""
aaron adam adrian aisha alan albert alex alexander alice alison amanda amelia amy andrea andrew angela anna anne
anthony arthur barbara ben benjamin beth betty bill brenda brian carl carol caroline catherine charles charlie
charlotte chloe chris christine christopher claire daniel david deborah debbie dennis diane donna dorothy edward
elizabeth ella emily emma eric fatima frank gary george grace hannah harry helen henry ian isabella jack jacob james
jane janet jason jean jennifer jessica joan john jonathan joseph joshua julie karen kate katie kathleen keith kelly
kenneth kevin laura lauren leah linda lisa liam lucy luke margaret maria mark martin mary matthew megan michael
michelle mohammed muhammad nancy natalie nicola nicholas noah oliver olivia pamela patricia paul peter priya rachel
raymond rebecca richard robert ruth ryan sam samantha sandra sarah scott sharon simon sophie stephen steven susan
thomas timothy tom tony tracy victoria william zoe
""".split())
FULL_NAME = re.compile(r"\b([A-Z][a-z'-]+)\s+([A-Z][a-z'-]{1,})\b")
NOT_FAMILY = frozenset({"And", "The", "I", "Is", "Was", "Has", "Had", "Said", "From", "In", "On", "At", "To"})


@dataclass(frozen=True)
class Finding:
    kind: str   # phone, email, address, name
    text: str
    start: int
    end: int

    def as_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text, "start": self.start, "end": self.end}


KIND_WORDS = {"phone": "a phone number", "email": "an email address", "address": "a street address",
              "name": "a full name"}


def find(text: str, region: str | None = None) -> list[Finding]:
    if region is None:
        from peerlift.settings import get_settings

        region = get_settings().country
    found: list[Finding] = []
    for m in phonenumbers.PhoneNumberMatcher(text, region.upper(), leniency=phonenumbers.Leniency.POSSIBLE):
        if sum(c.isdigit() for c in m.raw_string) >= 7:  # "10000 steps" is not a phone number
            found.append(Finding("phone", m.raw_string, m.start, m.end))
    for m in EMAIL.finditer(text):
        found.append(Finding("email", m.group(0), m.start(), m.end()))
    for m in ADDRESS.finditer(text):
        if not _overlaps(found, m.start(), m.end()):
            found.append(Finding("address", m.group(0).strip(), m.start(), m.end()))
    for m in NAME_INTRO.finditer(text):
        found.append(Finding("name", m.group(1), m.start(1), m.end(1)))
    for m in FULL_NAME.finditer(text):
        if m.group(1).lower() in GIVEN_NAMES and m.group(2) not in NOT_FAMILY \
                and m.group(2).lower() not in GIVEN_NAMES and not _overlaps(found, m.start(), m.end()):
            found.append(Finding("name", m.group(0), m.start(), m.end()))
    return sorted(found, key=lambda f: f.start)


def _overlaps(found: list[Finding], start: int, end: int) -> bool:
    return any(f.start < end and start < f.end for f in found)


def scrub(text: str, region: str | None = None) -> str:
    """The text with every finding replaced by a marker such as ``[phone]``."""
    out, last = [], 0
    for f in find(text, region):
        if f.start < last:
            continue
        out.append(text[last:f.start])
        out.append(f"[{f.kind}]")
        last = f.end
    out.append(text[last:])
    return "".join(out)


def warning(findings: list[Finding]) -> str:
    kinds = list(dict.fromkeys(KIND_WORDS[f.kind] for f in findings))
    listed = kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " and " + kinds[-1]
    return (f"Your post seems to contain {listed}. Everyone in the circle will see it. "
            "Edit it out, or post it as it is if you are sure.")
