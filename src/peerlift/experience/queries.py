"""Reading shared experience: reports as a member sees them, the counts per treatment, helpful counts
and a community's guide. Aggregates are only counts and medians of the reports the community sees
(visible, not deleted); the one sentence they make is a template filled with those numbers."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from peerlift.community.models import Comment, Post, Space, SpaceKind
from peerlift.community.queries import Person, shown_person
from peerlift.community.text import excerpt
from peerlift.experience.models import ExperienceReport, GuideEntry, HelpfulVote
from peerlift.experience.service import normalise_side_effect
from peerlift.identity.models import User
from peerlift.policy import MODERATOR_ROLES, CircleAccess, may_curate


@dataclass
class ReportView:
    id: int
    circle_id: int
    author: Person
    anonymous: bool
    treatment_code: str | None
    treatment_name: str
    treatment_key: str
    duration_value: int | None
    duration_unit: str
    duration: str
    what_helped: str
    side_effects: list[str]
    would_recommend: str
    body: str
    body_html: str
    visibility: str
    removed_reason: str
    created_at: dt.datetime
    edited_at: dt.datetime | None
    helpful_count: int
    my_helpful: bool
    can_vote: bool
    can_edit: bool
    can_delete: bool


@dataclass
class SideEffectCount:
    term: str
    reports: int


@dataclass
class Aggregate:
    treatment_key: str
    treatment_code: str | None
    treatment_name: str
    reports: int
    recommend: dict[str, int]
    side_effects: list[SideEffectCount]
    median_days: float | None
    median_duration: str | None
    ongoing: int
    summary: str
    community_ids: list[int] = field(default_factory=list)


def duration_text(value: int | None, unit: str) -> str:
    if unit == "ongoing" or value is None:
        return "ongoing"
    return f"{value} {unit[:-1] if value == 1 else unit}"


def days_text(days: float) -> str:
    """A median in days, said in the largest unit that fits it (a month counts 30 days, a year 365)."""
    for unit, size in (("years", 365), ("months", 30), ("weeks", 7)):
        if days >= 2 * size:
            value = round(days / size, 1)
            value = int(value) if value == int(value) else value
            return f"{value} {unit}"
    value = round(days, 1)
    value = int(value) if value == int(value) else value
    return f"{value} day{'' if value == 1 else 's'}"


def _visible_to(access: CircleAccess):
    """The rule of posts: what the community sees, one's own, and held writing for moderators."""
    clauses = [ExperienceReport.visibility == "visible", ExperienceReport.author_id == access.user.id]
    if access.membership.role in MODERATOR_ROLES:
        clauses.append(ExperienceReport.visibility == "held")
    return or_(*clauses)


def helpful_counts(session: Session, target_type: str, ids: list[int], user_id: int) -> dict[int, tuple[int, bool]]:
    """For each id: how many people found it helpful, and whether this person did."""
    if not ids:
        return {}
    rows = session.execute(
        select(HelpfulVote.target_id, func.count(HelpfulVote.id),
               func.max(case((HelpfulVote.user_id == user_id, 1), else_=0)))
        .where(HelpfulVote.target_type == target_type, HelpfulVote.target_id.in_(ids))
        .group_by(HelpfulVote.target_id)).all()
    return {target_id: (count, bool(mine)) for target_id, count, mine in rows}


def report_views(session: Session, access: CircleAccess, reports: list[ExperienceReport]) -> list[ReportView]:
    authors = {u.id: u for u in session.scalars(select(User).where(User.id.in_({r.author_id for r in reports})))} \
        if reports else {}
    helpful = helpful_counts(session, "experience", [r.id for r in reports], access.user.id)
    out = []
    for r in reports:
        count, mine = helpful.get(r.id, (0, False))
        out.append(ReportView(
            id=r.id, circle_id=r.space_id, author=shown_person(access, authors[r.author_id], anonymous=r.anonymous),
            anonymous=r.anonymous, treatment_code=r.treatment_code, treatment_name=r.treatment_name,
            treatment_key=r.treatment_key, duration_value=r.duration_value, duration_unit=r.duration_unit,
            duration=duration_text(r.duration_value, r.duration_unit), what_helped=r.what_helped,
            side_effects=list(r.side_effects or []), would_recommend=r.would_recommend, body=r.body,
            body_html=r.body_html, visibility=r.visibility, removed_reason=r.removed_reason,
            created_at=r.created_at, edited_at=r.edited_at, helpful_count=count, my_helpful=mine,
            can_vote=r.author_id != access.user.id, can_edit=access.can_edit(r.author_id),
            can_delete=access.can_delete(r.author_id)))
    return out


def reports(session: Session, access: CircleAccess, *, treatment_key: str | None = None,
            limit: int = 200) -> list[ReportView]:
    """The community's reports this member may see, newest first (of one treatment if given)."""
    query = select(ExperienceReport).where(ExperienceReport.space_id == access.space.id,
                                           ExperienceReport.deleted_at.is_(None), _visible_to(access))
    if treatment_key is not None:
        query = query.where(ExperienceReport.treatment_key == treatment_key)
    rows = list(session.scalars(query.order_by(ExperienceReport.id.desc()).limit(limit)))
    return report_views(session, access, rows)


def _summary(count: int, effects: list[SideEffectCount]) -> str:
    text = f"{count} report{'' if count == 1 else 's'}"
    if effects:
        return f"{text}; most-mentioned side effect: {effects[0].term} ({effects[0].reports})"
    return f"{text}; no side effects reported"


def aggregates(session: Session, space_ids: list[int], *, treatment_key: str | None = None) -> list[Aggregate]:
    """Per treatment, over the visible reports of these spaces: the number of reports, the would-recommend
    counts, side effects by the number of reports naming them (ties by the term), the median duration
    of the reports that give one, and how many are ongoing. Treatments with the most reports first
    (ties by name, then key)."""
    if not space_ids:
        return []
    query = select(ExperienceReport.treatment_key, ExperienceReport.treatment_code,
                   ExperienceReport.treatment_name, ExperienceReport.would_recommend,
                   ExperienceReport.side_effects, ExperienceReport.duration_days, ExperienceReport.duration_unit,
                   ExperienceReport.space_id).where(
        ExperienceReport.space_id.in_(space_ids), ExperienceReport.deleted_at.is_(None),
        ExperienceReport.visibility == "visible").order_by(ExperienceReport.id)
    if treatment_key is not None:
        query = query.where(ExperienceReport.treatment_key == treatment_key)
    groups: dict[str, list] = {}
    for row in session.execute(query):
        groups.setdefault(row.treatment_key, []).append(row)
    out = []
    for key, rows in groups.items():
        recommend = {"yes": 0, "no": 0, "unsure": 0}
        mentions: Counter[str] = Counter()
        days = []
        for row in rows:
            recommend[row.would_recommend] = recommend.get(row.would_recommend, 0) + 1
            mentions.update({normalise_side_effect(term) for term in row.side_effects or []} - {""})
            if row.duration_days is not None:
                days.append(row.duration_days)
        effects = [SideEffectCount(term, n) for term, n in sorted(mentions.items(), key=lambda kv: (-kv[1], kv[0]))]
        median = statistics.median(days) if days else None
        # the name: the list's, for a code; else the text as first written
        first = rows[0]
        out.append(Aggregate(
            treatment_key=key, treatment_code=first.treatment_code, treatment_name=first.treatment_name,
            reports=len(rows), recommend=recommend, side_effects=effects, median_days=median,
            median_duration=days_text(median) if median is not None else None,
            ongoing=sum(1 for row in rows if row.duration_unit == "ongoing"),
            summary=_summary(len(rows), effects), community_ids=sorted({row.space_id for row in rows})))
    out.sort(key=lambda a: (-a.reports, a.treatment_name.casefold(), a.treatment_key))
    return out


def community_spaces(session: Session, user: User) -> list[int]:
    """The open communities a person belongs to: whose reports they may read."""
    from peerlift.community.models import Membership

    return list(session.scalars(select(Membership.space_id).join(Space, Space.id == Membership.space_id).where(
        Membership.user_id == user.id, Space.kind == SpaceKind.community, Space.archived_at.is_(None))
        .order_by(Membership.space_id)))


# --- the guide ------------------------------------------------------------------------------------

@dataclass
class GuideItem:
    id: int
    position: int
    heading: str
    target_type: str
    target_id: int
    url: str
    author: Person
    body_html: str
    excerpt: str
    helpful_count: int
    added_at: dt.datetime


def guide(session: Session, access: CircleAccess) -> list[GuideItem]:
    """The guide's entries in order; an entry whose writing was deleted, held or removed is left out."""
    entries = list(session.scalars(select(GuideEntry).where(GuideEntry.space_id == access.space.id)
                                   .order_by(GuideEntry.position, GuideEntry.id)))
    ids = {kind: [e.target_id for e in entries if e.target_type == kind]
           for kind in ("post", "comment", "experience")}
    targets: dict[tuple[str, int], tuple] = {}
    if ids["post"]:
        for p in session.scalars(select(Post).where(Post.id.in_(ids["post"]), Post.space_id == access.space.id,
                                                    Post.deleted_at.is_(None), Post.visibility == "visible")):
            targets[("post", p.id)] = (p, f"/posts/{p.id}", p.anonymous)
    if ids["comment"]:
        rows = session.execute(select(Comment).join(Post, Post.id == Comment.post_id).where(
            Comment.id.in_(ids["comment"]), Post.space_id == access.space.id, Comment.deleted_at.is_(None),
            Comment.visibility == "visible", and_(Post.deleted_at.is_(None), Post.visibility == "visible")))
        for (c,) in rows:
            targets[("comment", c.id)] = (c, f"/posts/{c.post_id}#comment-{c.id}", False)
    if ids["experience"]:
        for r in session.scalars(select(ExperienceReport).where(
                ExperienceReport.id.in_(ids["experience"]), ExperienceReport.space_id == access.space.id,
                ExperienceReport.deleted_at.is_(None), ExperienceReport.visibility == "visible")):
            targets[("experience", r.id)] = (r, f"/experiences/{r.id}", r.anonymous)
    authors = {u.id: u for u in session.scalars(select(User).where(
        User.id.in_({t[0].author_id for t in targets.values()})))} if targets else {}
    helpful: dict[tuple[str, int], int] = {}
    for kind, kind_ids in ids.items():
        for target_id, (count, _mine) in helpful_counts(session, kind, kind_ids, access.user.id).items():
            helpful[(kind, target_id)] = count
    out = []
    for e in entries:
        found = targets.get((e.target_type, e.target_id))
        if found is None:
            continue
        obj, url, anonymous = found
        if e.target_type == "experience":
            html = obj.body_html
            text = obj.search_text
        else:
            html, text = obj.body_html, obj.body
        out.append(GuideItem(id=e.id, position=e.position, heading=e.heading, target_type=e.target_type,
                             target_id=e.target_id, url=url,
                             author=shown_person(access, authors[obj.author_id], anonymous=anonymous),
                             body_html=html, excerpt=excerpt(text, 280),
                             helpful_count=helpful.get((e.target_type, e.target_id), 0), added_at=e.added_at))
    return out


def can_curate(access: CircleAccess) -> bool:
    return access.space.kind == SpaceKind.community and may_curate(access)


def in_guide(session: Session, space_id: int, target_type: str, ids: list[int]) -> set[int]:
    if not ids:
        return set()
    return set(session.scalars(select(GuideEntry.target_id).where(
        GuideEntry.space_id == space_id, GuideEntry.target_type == target_type, GuideEntry.target_id.in_(ids))))


@dataclass
class PostExtras:
    """What a post's page shows of helpful votes and the guide, for one viewer."""

    post: tuple[int, bool]
    comments: dict[int, tuple[int, bool]]
    can_curate: bool
    post_in_guide: bool
    comments_in_guide: set[int]


def post_extras(session: Session, access: CircleAccess, post_id: int, comments: list) -> PostExtras:
    ids = [c.id for c in comments] + [r.id for c in comments for r in getattr(c, "replies", [])]
    curate = can_curate(access)
    return PostExtras(
        post=helpful_counts(session, "post", [post_id], access.user.id).get(post_id, (0, False)),
        comments=helpful_counts(session, "comment", ids, access.user.id), can_curate=curate,
        post_in_guide=bool(curate and in_guide(session, access.space.id, "post", [post_id])),
        comments_in_guide=in_guide(session, access.space.id, "comment", ids) if curate else set())
