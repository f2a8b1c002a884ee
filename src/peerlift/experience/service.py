"""Every write of shared experience: experience reports, "helpful" votes and a community's guide.

Each function validates, writes, records the engagement event through ``events.publish`` and only
flushes; the caller's unit of work commits. Reports are screened like posts (a crisis is held and
escalated) and kept in the search index through the session, like posts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from sqlalchemy import delete, func, select, update
from ruamel.yaml import YAML
from sqlalchemy.orm import Session

from peerlift.community.models import Comment, Post, SpaceKind
from peerlift.community.text import render
from peerlift.db import utcnow
from peerlift.errors import Conflict, Forbidden, InvalidInput, NotFound
from peerlift.events import Audience, publish
from peerlift.experience.models import (
    DURATION_UNITS,
    GUIDE_TARGETS,
    HELPFUL_TARGETS,
    RECOMMEND,
    ExperienceReport,
    GuideEntry,
    HelpfulVote,
)
from peerlift.people import codes
from peerlift.policy import CircleAccess, may_curate
from peerlift.safety import service as safety
from peerlift.settings import get_settings

MAX_TREATMENT_CHARS = 120
MAX_SIDE_EFFECTS = 10
MAX_SIDE_EFFECT_CHARS = 60
MAX_WHAT_HELPED_CHARS = 2_000
MAX_DURATION_VALUE = 999
MAX_HEADING_CHARS = 200
# For the median duration only: a month counts 30 days, a year 365.
DAYS_PER_UNIT = {"days": 1, "weeks": 7, "months": 30, "years": 365}


# --- checking what is written ------------------------------------------------------------------

def check_treatment(treatment: str | None) -> tuple[str | None, str, str]:
    """A medicine's ATC code from the shipped list (or its listed name, typed), or a treatment or
    strategy in free text. Returns (code, name, key); reports are grouped by the key: the code, else
    the text case-folded with its spacing collapsed."""
    text = " ".join((treatment or "").split())
    if not text:
        raise InvalidInput("Name the treatment or strategy: a medicine (its ATC code or name) or a few words.",
                           field="treatment")
    if len(text) > MAX_TREATMENT_CHARS:
        raise InvalidInput(f"The treatment has {len(text)} characters; the most is {MAX_TREATMENT_CHARS}.",
                           field="treatment")
    medicines = codes.medicines()
    if codes.looks_like_code("medicines", text.upper()):
        entry = medicines.by_code.get(text.upper())
        if entry is None:
            raise InvalidInput(f"{text} is not an ATC medicine code on peerlift's list; choose one from the list "
                               "or describe the treatment in words.", field="treatment")
        return entry.code, entry.name, entry.code
    folded = codes.normalise(text)
    named = next((c for c in medicines.entries if c.name.lower() == folded), None)
    if named is not None:
        return named.code, named.name, named.code
    return None, text, treatment_key(text)


def treatment_key(text: str) -> str:
    return " ".join(text.casefold().split())


def check_duration(value: int | str | None, unit: str | None) -> tuple[int | None, str, int | None]:
    """How long: a whole number of days, weeks, months or years, or ``ongoing``.
    Returns (value, unit, days); ``days`` feeds the median."""
    unit = (unit or "").strip().lower()
    if unit not in DURATION_UNITS:
        raise InvalidInput(f"The duration's unit is one of: {', '.join(DURATION_UNITS)}.", field="duration_unit")
    if value in (None, ""):
        if unit == "ongoing":
            return None, unit, None
        raise InvalidInput(f"Say for how many {unit}.", field="duration_value")
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit())):
        raise InvalidInput("The duration is a whole number.", field="duration_value")
    number = int(value)
    if unit == "ongoing":
        raise InvalidInput("An ongoing treatment has no number of days; leave the number empty.",
                           field="duration_value")
    if not 1 <= number <= MAX_DURATION_VALUE:
        raise InvalidInput(f"The duration is between 1 and {MAX_DURATION_VALUE} {unit}.", field="duration_value")
    return number, unit, number * DAYS_PER_UNIT[unit]


@cache
def side_effect_synonyms() -> dict[str, str]:
    """The shipped list of side effects counted together (``side_effects.yaml``)."""
    loaded = YAML(typ="safe").load((Path(__file__).parent / "side_effects.yaml").read_text()) or {}
    return {" ".join(str(k).casefold().split()): " ".join(str(v).casefold().split()) for k, v in loaded.items()}


def normalise_side_effect(term: str) -> str:
    """How side effects are counted: case-folded, spacing collapsed, trimmed, and a spelling variant,
    plural or everyday word on the shipped list counted under its term ("feeling sick" as "nausea")."""
    folded = " ".join(term.casefold().split()).strip(" .,;:!?-")
    return side_effect_synonyms().get(folded, folded)


def check_side_effects(side_effects: Sequence[str] | str | None) -> list[str]:
    """Short terms, at most 10 of at most 60 characters; a term given twice (ignoring case) counts once.
    A form sends them as one text, separated by commas or new lines."""
    if side_effects is None:
        return []
    if isinstance(side_effects, str):
        side_effects = re.split(r"[,\n;]", side_effects)
    if not all(isinstance(term, str) for term in side_effects):
        raise InvalidInput("Each side effect is a short text.", field="side_effects")
    cleaned: list[str] = []
    seen: set[str] = set()
    for term in side_effects:
        term = " ".join(term.split()).strip(" .,;:")
        if not term:
            continue
        if len(term) > MAX_SIDE_EFFECT_CHARS:
            raise InvalidInput(f"A side effect has at most {MAX_SIDE_EFFECT_CHARS} characters: "
                               f"\"{term[:20]}…\" has {len(term)}.", field="side_effects")
        key = normalise_side_effect(term)
        if key and key not in seen:
            seen.add(key)
            cleaned.append(term)
    if len(cleaned) > MAX_SIDE_EFFECTS:
        raise InvalidInput(f"List at most {MAX_SIDE_EFFECTS} side effects ({len(cleaned)} given); put the rest "
                           "in your own words below.", field="side_effects")
    return cleaned


def check_recommend(value: str | None) -> str:
    value = (value or "").strip().lower()
    if value not in RECOMMEND:
        raise InvalidInput(f"Would you recommend it? Answer one of: {', '.join(RECOMMEND)}.", field="would_recommend")
    return value


def _check_text(text: str | None, *, limit: int, field: str, what: str) -> str:
    if text is None:
        return ""
    if not isinstance(text, str):
        raise InvalidInput(f"{what} must be text.", field=field)
    text = text.replace("\r\n", "\n").strip()
    if len(text) > limit:
        raise InvalidInput(f"{what} has {len(text):,} characters; the most is {limit:,}.", field=field)
    return text


def _check_anonymous(access: CircleAccess, anonymous: bool) -> None:
    """The rule of posts: only where the community allows anonymous posts."""
    if anonymous and access.space.kind != SpaceKind.community:
        raise InvalidInput("Only open communities have anonymous writing.", field="anonymous")
    if anonymous and not access.space.allow_anonymous:
        raise InvalidInput("This community does not allow anonymous posts.", field="anonymous")


def _search_text(report: ExperienceReport) -> str:
    parts = [report.treatment_name, report.treatment_code or "", report.what_helped,
             ", ".join(report.side_effects or []), report.body]
    return "\n".join(part for part in parts if part)


def _fill(report: ExperienceReport, *, treatment: str | None, duration_value, duration_unit: str | None,
          what_helped: str | None, side_effects, would_recommend: str | None, body: str | None) -> None:
    code, name, key = check_treatment(treatment)
    value, unit, days = check_duration(duration_value, duration_unit)
    effects = check_side_effects(side_effects)
    recommend = check_recommend(would_recommend)
    helped = _check_text(what_helped, limit=MAX_WHAT_HELPED_CHARS, field="what_helped", what="What helped")
    text = _check_text(body, limit=get_settings().post_max_chars, field="body", what="The report")
    report.treatment_code, report.treatment_name, report.treatment_key = code, name, key
    report.duration_value, report.duration_unit, report.duration_days = value, unit, days
    report.side_effects, report.would_recommend, report.what_helped = effects, recommend, helped
    report.body, report.body_html = text, render(text) if text else ""
    report.search_text = _search_text(report)


def _event_data(access: CircleAccess, report: ExperienceReport) -> dict:
    return {"circle_id": access.space.id, "report_id": report.id, "treatment_key": report.treatment_key,
            **({"anonymous": True} if report.anonymous else {})}


# --- experience reports ---------------------------------------------------------------------------

def create_report(session: Session, access: CircleAccess, *, treatment: str | None, duration_unit: str | None,
                  duration_value: int | str | None = None, what_helped: str | None = "",
                  side_effects: Sequence[str] | str | None = (), would_recommend: str | None = None,
                  body: str | None = "", anonymous: bool = False) -> ExperienceReport:
    """A member's experience of a treatment or strategy, screened as it is written like a post."""
    if access.space.kind != SpaceKind.community:
        raise NotFound("No community with that id.", field="community_id")
    if not access.can_post:
        raise Forbidden("This community is archived; nothing new can be written.")
    _check_anonymous(access, bool(anonymous))
    report = ExperienceReport(space_id=access.space.id, author_id=access.user.id, anonymous=bool(anonymous))
    _fill(report, treatment=treatment, duration_value=duration_value, duration_unit=duration_unit,
          what_helped=what_helped, side_effects=side_effects, would_recommend=would_recommend, body=body)
    safety.check_can_write(session, access)
    session.add(report)
    session.flush()
    report.screening = safety.screen(session, access, "experience", report)
    audience = Audience(user_id=access.user.id) if report.screening.held else Audience(space_id=access.space.id)
    publish(session, "experience.created", audience, actor_id=access.user.id, object_type="experience",
            object_id=report.id, data={**_event_data(access, report), "side_effects": len(report.side_effects),
                                       "would_recommend": report.would_recommend})
    return report


def edit_report(session: Session, access: CircleAccess, report: ExperienceReport, *, treatment: str | None,
                duration_unit: str | None, duration_value: int | str | None = None, what_helped: str | None = "",
                side_effects: Sequence[str] | str | None = (), would_recommend: str | None = None,
                body: str | None = "") -> ExperienceReport:
    """The author changes their report; it is screened again (an edit that raises the level holds it)."""
    if not access.can_edit(report.author_id):
        raise Forbidden("Only the author can edit an experience report.")
    _fill(report, treatment=treatment, duration_value=duration_value, duration_unit=duration_unit,
          what_helped=what_helped, side_effects=side_effects, would_recommend=would_recommend, body=body)
    if not session.is_modified(report):
        report.screening = safety.Screening(level="green", held=report.visibility == "held")
        return report
    report.edited_at = utcnow()
    session.flush()
    report.screening = safety.rescreen_edit(session, access, "experience", report)
    audience = Audience(space_id=access.space.id) if report.visibility == "visible" \
        else Audience(user_id=access.user.id)
    publish(session, "experience.edited", audience, actor_id=access.user.id, object_type="experience",
            object_id=report.id, data=_event_data(access, report))
    return report


def delete_report(session: Session, access: CircleAccess, report: ExperienceReport) -> None:
    if not access.can_delete(report.author_id):
        raise Forbidden("Only the author or a facilitator can delete an experience report.")
    report.deleted_at = utcnow()
    if report.author_id != access.user.id:
        from peerlift.identity import service as identity

        identity.audit(session, access.user.id, "experience.deleted_by_facilitator", "experience",
                       report.id)
    publish(session, "experience.deleted", Audience(space_id=access.space.id), actor_id=access.user.id,
            object_type="experience", object_id=report.id, data=_event_data(access, report))


# --- helpful votes --------------------------------------------------------------------------------

def set_helpful(session: Session, access: CircleAccess, target_type: str, target, on: bool) -> bool:
    """Mark (``on``) or unmark a post, answer or report as helpful; doing either twice changes nothing.
    Nobody votes for their own writing. Returns whether anything changed."""
    if target_type not in HELPFUL_TARGETS:
        raise InvalidInput(f"Helpful votes go to one of: {', '.join(HELPFUL_TARGETS)}.", field="target_type")
    if target.author_id == access.user.id:
        raise InvalidInput("You cannot mark your own writing as helpful.", field=_field(target_type))
    if target.visibility != "visible":
        raise InvalidInput("Only writing the whole community can read can be marked helpful.",
                           field=_field(target_type))
    existing = session.scalar(select(HelpfulVote.id).where(
        HelpfulVote.user_id == access.user.id, HelpfulVote.target_type == target_type,
        HelpfulVote.target_id == target.id))
    if on == (existing is not None):
        return False
    if on:
        session.add(HelpfulVote(user_id=access.user.id, target_type=target_type, target_id=target.id))
    else:
        session.execute(delete(HelpfulVote).where(HelpfulVote.id == existing))
    session.flush()
    publish(session, "helpful.added" if on else "helpful.removed", Audience(space_id=access.space.id),
            actor_id=access.user.id, object_type=target_type, object_id=target.id,
            data={"circle_id": access.space.id, "target_type": target_type, "target_id": target.id})
    return True


def _field(target_type: str) -> str:
    return {"post": "post_id", "comment": "comment_id", "experience": "report_id"}.get(target_type,
                                                                                            "target_id")


# --- the guide ------------------------------------------------------------------------------------

def require_curator(access: CircleAccess) -> None:
    if access.space.kind != SpaceKind.community:
        raise NotFound("No community with that id.", field="community_id")
    if not may_curate(access):
        raise Forbidden("Only the community's facilitators curate its guide.")


def curatable_target(session: Session, access: CircleAccess, target_type: str, target_id: int):
    """The post, answer or report to put in the guide: this community's, visible to all its members."""
    if target_type not in GUIDE_TARGETS:
        raise InvalidInput(f"A guide holds: {', '.join(GUIDE_TARGETS)}.", field="target_type")
    if isinstance(target_id, bool) or not isinstance(target_id, int) or target_id < 1:
        raise InvalidInput("Give the id of the post, answer or report.", field="target_id")
    if target_type == "post":
        target = session.scalar(select(Post).where(Post.id == target_id, Post.space_id == access.space.id,
                                                   Post.deleted_at.is_(None), Post.visibility == "visible"))
    elif target_type == "comment":
        target = session.scalar(select(Comment).join(Post, Post.id == Comment.post_id).where(
            Comment.id == target_id, Post.space_id == access.space.id, Comment.deleted_at.is_(None),
            Comment.visibility == "visible", Post.deleted_at.is_(None), Post.visibility == "visible"))
    else:
        target = session.scalar(select(ExperienceReport).where(
            ExperienceReport.id == target_id, ExperienceReport.space_id == access.space.id,
            ExperienceReport.deleted_at.is_(None), ExperienceReport.visibility == "visible"))
    if target is None:
        raise InvalidInput("That is not writing this community's members can all read.", field="target_id")
    return target


def add_to_guide(session: Session, access: CircleAccess, *, target_type: str, target_id: int,
                 heading: str | None = "") -> GuideEntry:
    require_curator(access)
    heading = " ".join((heading or "").split())
    if len(heading) > MAX_HEADING_CHARS:
        raise InvalidInput(f"The heading has at most {MAX_HEADING_CHARS} characters.", field="heading")
    target = curatable_target(session, access, target_type, target_id)
    taken = session.scalar(select(GuideEntry.id).where(GuideEntry.space_id == access.space.id,
                                                       GuideEntry.target_type == target_type,
                                                       GuideEntry.target_id == target.id))
    if taken is not None:
        raise Conflict("This is in the guide already.", field="target_id")
    last = session.scalar(select(func.max(GuideEntry.position)).where(GuideEntry.space_id == access.space.id))
    entry = GuideEntry(space_id=access.space.id, target_type=target_type, target_id=target.id,
                       position=(last or 0) + 1, heading=heading, added_by_id=access.user.id)
    session.add(entry)
    session.flush()
    publish(session, "guide.added", Audience(space_id=access.space.id), actor_id=access.user.id,
            object_type="guide_entry", object_id=entry.id,
            data={"circle_id": access.space.id, "target_type": target_type, "target_id": target.id})
    return entry


def remove_from_guide(session: Session, access: CircleAccess, entry: GuideEntry) -> None:
    require_curator(access)
    session.execute(delete(GuideEntry).where(GuideEntry.id == entry.id))
    publish(session, "guide.removed", Audience(space_id=access.space.id), actor_id=access.user.id,
            object_type="guide_entry", object_id=entry.id,
            data={"circle_id": access.space.id, "target_type": entry.target_type, "target_id": entry.target_id})


def move_guide_entry(session: Session, access: CircleAccess, entry: GuideEntry, direction: str) -> bool:
    """Swap an entry with its neighbour above (``up``) or below (``down``); at the end, nothing changes."""
    require_curator(access)
    if direction not in ("up", "down"):
        raise InvalidInput("Move an entry up or down.", field="direction")
    where = [GuideEntry.space_id == access.space.id]
    if direction == "up":
        neighbour = session.scalar(select(GuideEntry).where(*where, GuideEntry.position < entry.position)
                                   .order_by(GuideEntry.position.desc()).limit(1))
    else:
        neighbour = session.scalar(select(GuideEntry).where(*where, GuideEntry.position > entry.position)
                                   .order_by(GuideEntry.position).limit(1))
    if neighbour is None:
        return False
    mine, theirs = entry.position, neighbour.position
    # through a free position: no two entries ever share one
    free = -entry.id
    session.execute(update(GuideEntry).where(GuideEntry.id == entry.id).values(position=free))
    session.execute(update(GuideEntry).where(GuideEntry.id == neighbour.id).values(position=mine))
    session.execute(update(GuideEntry).where(GuideEntry.id == entry.id).values(position=theirs))
    session.refresh(entry)
    publish(session, "guide.moved", Audience(space_id=access.space.id), actor_id=access.user.id,
            object_type="guide_entry", object_id=entry.id,
            data={"circle_id": access.space.id, "direction": direction})
    return True
