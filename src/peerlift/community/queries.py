"""Reads of the community domain, each a fixed number of SQL statements whatever the page size.

The feed is the most read page: its statements are Core selects built once with bound parameters and
run on the session's connection, so a read builds no statement and no ORM instance."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache

from sqlalchemy import and_, bindparam, case, func, or_, select, union_all
from sqlalchemy.orm import Session, joinedload

from peerlift.community.models import (
    REACTIONS,
    CircleRole,
    Comment,
    CommentRevision,
    Conversation,
    Membership,
    Message,
    Poll,
    PollOption,
    PollVote,
    Post,
    PostRevision,
    Reaction,
    Space,
    SpaceKind,
)
from peerlift.db import utcnow
from peerlift.errors import InvalidInput, NotFound
from peerlift.identity.models import User
from peerlift.policy import MODERATOR_ROLES, AccessibleSpaceID, CircleAccess
from peerlift.professionals.models import Professional, Status, label_of
from peerlift.settings import get_settings


@dataclass
class Person:
    id: int
    display_name: str
    handle: str
    pronouns: str = ""
    circle_role: str | None = None
    professional: str | None = None  # the profession of a verified professional ("nurse"), shown as a badge

    @classmethod
    def of(cls, user: User, circle_role: CircleRole | None = None, professional: str | None = None) -> Person:
        return cls(user.id, user.display_name, user.handle, user.pronouns,
                   circle_role.value if circle_role else None, professional)


ANONYMOUS_NAME = "Anonymous member"
PSEUDONYM_FALLBACK = "Community member"


def shown_person(access: CircleAccess, user: User, circle_role: CircleRole | None = None, *,
                 anonymous: bool = False, professional: str | None = None) -> Person:
    """A person as this viewer sees them in this space. Circles show real names. Open communities show
    the community name only, with no handle or pronouns, and no account id except to the community's
    moderators (facilitators, clinicians) and the person themselves. An anonymous post's author is
    "Anonymous member" to everyone but its author and the moderators, and never carries a badge.
    ``professional``: the person's profession when they are a verified professional now (the badge)."""
    if anonymous:
        professional = None
    if access.space.kind != SpaceKind.community:
        return Person.of(user, circle_role, professional)
    trusted = access.membership.role in MODERATOR_ROLES or user.id == access.user.id
    if anonymous and not trusted:
        return Person(0, ANONYMOUS_NAME, "")
    return Person(user.id if trusted else 0, user.pseudonym or PSEUDONYM_FALLBACK, "", "",
                  circle_role.value if circle_role else None, professional)


@dataclass
class PollOptionView:
    id: int
    text: str
    votes: int | None


@dataclass
class PollView:
    id: int
    post_id: int
    question: str
    multiple: bool
    closes_at: dt.datetime | None
    closed: bool
    results_visible: bool
    voters: int | None
    my_votes: list[int]
    options: list[PollOptionView]


@dataclass
class PostView:
    id: int
    circle_id: int
    author: Person
    body: str
    body_html: str
    created_at: dt.datetime
    edited_at: dt.datetime | None
    pinned: bool
    comment_count: int
    reactions: dict[str, int]
    my_reactions: list[str]
    poll: PollView | None
    unread: bool
    can_edit: bool
    can_delete: bool
    visibility: str = "visible"
    removed_reason: str = ""
    anonymous: bool = False
    is_question: bool = False
    for_professionals: bool = False
    accepted_comment_id: int | None = None
    with_clinical_team: bool = False  # a question that triaged red or crisis: escalated, not awaiting answers
    can_accept: bool = False          # the asker, who accepts an answer
    safety: dict | None = None        # the screening of the author's own write, in the answer to that write


@dataclass
class CommentView:
    id: int
    post_id: int
    parent_id: int | None
    author: Person
    body: str
    body_html: str
    created_at: dt.datetime
    edited_at: dt.datetime | None
    reactions: dict[str, int]
    my_reactions: list[str]
    can_edit: bool
    can_delete: bool
    replies: list[CommentView] = field(default_factory=list)
    visibility: str = "visible"
    removed_reason: str = ""
    as_professional: bool = False          # written as a professional answer
    professional_answer: str | None = None  # ... by someone verified now: their profession ("nurse")
    accepted: bool = False
    disclaimer: str | None = None           # the installation's disclaimer, on every professional answer


@dataclass
class FeedPage:
    posts: list[PostView]
    pinned: list[PostView]
    next_cursor: int | None
    unread_count: int


@dataclass
class CircleSummary:
    id: int
    name: str
    description: str
    timezone: str
    my_role: str
    member_count: int
    unread_count: int
    rules_accepted: bool
    archived: bool


# --- helpers --------------------------------------------------------------------------

@cache
def _roles_and_badges_query():
    user_ids = bindparam("user_ids", expanding=True)
    verified = (select(Professional.user_id, Professional.profession, Professional.profession_other)
                .where(Professional.status == Status.verified.value, Professional.user_id.in_(user_ids)).subquery())
    return (
        select(User.id, Membership.role, verified.c.profession, verified.c.profession_other)
        .select_from(User)
        .outerjoin(Membership, and_(Membership.user_id == User.id, Membership.space_id == bindparam("space_id")))
        .outerjoin(verified, verified.c.user_id == User.id)
        .where(User.id.in_(user_ids))
    )


def _roles_and_badges(session: Session, space_id: int,
                      user_ids: set[int]) -> tuple[dict[int, CircleRole], dict[int, str]]:
    """Each author's role in the space, and the profession of those verified as professionals now,
    in one statement (built once)."""
    if not user_ids:
        return {}, {}
    rows = session.connection().execute(_roles_and_badges_query(), {"user_ids": list(user_ids), "space_id": space_id}).all()
    roles = {user_id: role for user_id, role, _p, _o in rows if role is not None}
    badges = {user_id: label_of(profession, other) for user_id, _r, profession, other in rows if profession}
    return roles, badges


def _with_clinical_team(session: Session, post_ids: list[int]) -> set[int]:
    """Those of the questions ``post_ids`` that triaged red or crisis and went to escalation (and were not
    found to be without risk)."""
    if not post_ids:
        return set()
    return set(session.scalars(_escalated_posts().where(_escalated_posts().selected_columns[0].in_(post_ids))))


def _escalated_posts():
    """Posts with an escalation about them that is open, or was closed other than as "no risk"."""
    from peerlift.safety.models import Escalation, EscalationStatus

    return select(Escalation.object_id).where(
        Escalation.object_type == "post",
        or_(Escalation.status != EscalationStatus.resolved, Escalation.outcome.not_in(("no_risk", "released"))))


@cache
def _reaction_counts_query(column):
    return (select(column, Reaction.kind, func.count(),
                   func.sum(case((Reaction.user_id == bindparam("viewer_id"), 1), else_=0)))
            .where(column.in_(bindparam("ids", expanding=True)))
            .group_by(column, Reaction.kind))


def _reaction_counts(session: Session, viewer_id: int, column, ids: list[int]) -> tuple[dict, dict]:
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    mine: dict[int, list[str]] = defaultdict(list)
    if not ids:
        return counts, mine
    rows = session.connection().execute(_reaction_counts_query(column), {"viewer_id": viewer_id, "ids": ids}).all()
    order = {kind: i for i, kind in enumerate(REACTIONS)}
    for target_id, kind, count, my in sorted(rows, key=lambda r: order.get(r[1], 99)):
        counts[target_id][kind] = count
        if my:
            mine[target_id].append(kind)
    return counts, mine


@cache
def _poll_queries():
    """The polls of some posts with their options in order, and the votes of some polls."""
    return (
        select(Poll.id, Poll.post_id, Poll.question, Poll.multiple, Poll.closes_at, PollOption.id, PollOption.text)
        .join(PollOption, PollOption.poll_id == Poll.id)
        .where(Poll.post_id.in_(bindparam("post_ids", expanding=True))).order_by(Poll.id, PollOption.position),
        select(PollVote.poll_id, PollVote.option_id, PollVote.user_id)
        .where(PollVote.poll_id.in_(bindparam("poll_ids", expanding=True))),
    )


def _poll_views(session: Session, access: CircleAccess, post_ids: list[int]) -> dict[int, PollView]:
    """The polls of these posts with their options and votes: two statements, none when no post has one."""
    if not post_ids:
        return {}
    queries = _poll_queries()
    option_rows = session.connection().execute(queries[0], {"post_ids": post_ids}).all()
    if not option_rows:
        return {}
    vote_rows = session.connection().execute(queries[1], {"poll_ids": list({row[0] for row in option_rows})}).all()
    per_option: dict[int, int] = defaultdict(int)
    voters: dict[int, set[int]] = defaultdict(set)
    mine: dict[int, list[int]] = defaultdict(list)
    for poll_id, option_id, user_id in vote_rows:
        per_option[option_id] += 1
        voters[poll_id].add(user_id)
        if user_id == access.user.id:
            mine[poll_id].append(option_id)
    now = utcnow()
    views: dict[int, PollView] = {}
    for poll_id, post_id, question, multiple, closes_at, option_id, option_text in option_rows:
        view = views.get(post_id)
        if view is None:
            closed = closes_at is not None and closes_at <= now
            visible = closed or bool(mine[poll_id]) or access.is_facilitator
            view = views[post_id] = PollView(
                id=poll_id, post_id=post_id, question=question, multiple=multiple, closes_at=closes_at,
                closed=closed, results_visible=visible, voters=len(voters[poll_id]) if visible else None,
                my_votes=sorted(mine[poll_id]), options=[],
            )
        view.options.append(PollOptionView(option_id, option_text, per_option[option_id] if view.results_visible else None))
    return views


def _post_views(session: Session, access: CircleAccess, posts: list[Post] | list[_FeedPost]) -> list[PostView]:
    """Views of posts read as ORM instances or as the feed's plain rows; only posts that may carry a
    poll (all ORM instances, the rows whose ``has_poll`` says so) have their poll read."""
    ids = [p.id for p in posts]
    roles, badges = _roles_and_badges(session, access.space.id, {p.author_id for p in posts})
    counts, mine = _reaction_counts(session, access.user.id, Reaction.post_id, ids)
    polls = _poll_views(session, access, [p.id for p in posts if getattr(p, "has_poll", True)])
    escalated = _with_clinical_team(session, [p.id for p in posts if p.is_question])
    last_read = access.membership.last_read_post_id
    return [
        PostView(
            id=p.id, circle_id=p.space_id,
            author=shown_person(access, p.author, roles.get(p.author_id), anonymous=p.anonymous,
                                professional=badges.get(p.author_id)),
            body=p.body, body_html=p.body_html, created_at=p.created_at, edited_at=p.edited_at,
            pinned=p.pinned_at is not None, comment_count=p.comment_count,
            reactions=counts.get(p.id, {}), my_reactions=mine.get(p.id, []), poll=polls.get(p.id),
            unread=p.id > last_read and p.author_id != access.user.id,
            can_edit=access.can_edit(p.author_id), can_delete=access.can_delete(p.author_id),
            visibility=p.visibility, removed_reason=p.removed_reason, anonymous=p.anonymous,
            is_question=p.is_question, for_professionals=p.for_professionals,
            accepted_comment_id=p.accepted_comment_id, with_clinical_team=p.id in escalated,
            can_accept=p.is_question and p.author_id == access.user.id,
        )
        for p in posts
    ]


UNREAD_CAP = 100  # counts stop here ("99+"): a newcomer's count never scans a circle's whole history


def _unread_rows(space_id: int, last_read: int, viewer_id: int):
    return (select(Post.space_id).where(Post.space_id == space_id, Post.id > last_read,
                                        Post.author_id != viewer_id, Post.deleted_at.is_(None),
                                        Post.visibility == "visible")
            .order_by(Post.id).limit(UNREAD_CAP))


@cache
def _unread_count_query():
    capped = _unread_rows(bindparam("space_id"), bindparam("last_read"), bindparam("viewer_id")).subquery()
    return select(func.count()).select_from(capped)


def unread_count(session: Session, access: CircleAccess) -> int:
    return session.connection().scalar(_unread_count_query(), {"space_id": access.space.id, "viewer_id": access.user.id,
                                                  "last_read": access.membership.last_read_post_id}) or 0


# --- public reads ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Author:
    """The columns of an author that a post view shows (``Person.of``, ``shown_person``)."""
    id: int
    display_name: str
    handle: str
    pronouns: str
    pseudonym: str | None


@dataclass(frozen=True, slots=True)
class _FeedPost:
    """A post as the feed reads it: plain columns, no ORM instance to build."""
    id: int
    space_id: int
    author_id: int
    body: str
    body_html: str
    created_at: dt.datetime
    edited_at: dt.datetime | None
    pinned_at: dt.datetime | None
    comment_count: int
    visibility: str
    removed_reason: str
    anonymous: bool
    is_question: bool
    for_professionals: bool
    accepted_comment_id: int | None
    has_poll: bool
    author: _Author


_FEED_POST_COLUMNS = (Post.id, Post.space_id, Post.author_id, Post.body, Post.body_html, Post.created_at,
                      Post.edited_at, Post.pinned_at, Post.comment_count, Post.visibility, Post.removed_reason,
                      Post.anonymous, Post.is_question, Post.for_professionals, Post.accepted_comment_id)


def _with_authors(query):
    """The post columns of ``query`` with its author's and whether it has a poll, for ``_FeedPost``."""
    return query.add_columns(
        select(Poll.id).where(Poll.post_id == Post.id).exists().label("has_poll"),
        User.display_name, User.handle, User.pronouns, User.pseudonym,
    ).join(User, User.id == Post.author_id)


@cache
def _feed_query(after_cursor: bool):
    """A page of the feed (built once; the viewer, space, limit and cursor are parameters)."""
    query = (select(*_FEED_POST_COLUMNS)
             .where(Post.space_id == bindparam("space_id"), Post.deleted_at.is_(None),
                    or_(Post.visibility == "visible", Post.author_id == bindparam("viewer_id")))
             .order_by(Post.id.desc()).limit(bindparam("limit")))
    if after_cursor:
        query = query.where(Post.id < bindparam("before"))
    return _with_authors(query)


@cache
def _pinned_query():
    return _with_authors(
        select(*_FEED_POST_COLUMNS)
        .where(Post.space_id == bindparam("space_id"), Post.deleted_at.is_(None), Post.pinned_at.is_not(None),
               Post.visibility == "visible")
        .order_by(Post.pinned_at.desc()).limit(5))


def _feed_posts(session: Session, query, params: dict) -> list[_FeedPost]:
    split = len(_FEED_POST_COLUMNS) + 1  # the post's columns and has_poll, then its author's
    return [_FeedPost(*row[:split], author=_Author(row[2], *row[split:])) for row in session.connection().execute(query, params)]


def feed(session: Session, access: CircleAccess, *, before: int | None = None, limit: int = 20) -> FeedPage:
    """Newest first. ``before`` is the cursor: the id of the last post of the previous page. What a
    member sees: everything visible, and their own held or removed posts (marked as such); facilitators
    find held posts in the review queue, not in the feed."""
    if limit < 1 or limit > 100:
        raise InvalidInput("limit is between 1 and 100.", field="limit")
    if before is not None and before < 1:
        raise InvalidInput("The cursor is not valid.", field="before")
    space_id: AccessibleSpaceID = access.space_id
    params = {"space_id": space_id, "viewer_id": access.user.id, "limit": limit + 1, "before": before}
    rows = _feed_posts(session, _feed_query(before is not None), params)
    page, more = rows[:limit], len(rows) > limit
    pinned_rows = _feed_posts(session, _pinned_query(), {"space_id": space_id}) if before is None else []
    by_id = {p.id: p for p in page + pinned_rows}
    views = {v.id: v for v in _post_views(session, access, list(by_id.values()))}
    return FeedPage(
        posts=[views[p.id] for p in page],
        pinned=[views[p.id] for p in pinned_rows],
        next_cursor=page[-1].id if more and page else None,
        unread_count=unread_count(session, access),
    )


def post_view(session: Session, access: CircleAccess, post: Post) -> PostView:
    author = session.get(User, post.author_id)
    post.author = author  # fill the raise-loaded relationship from the identity map
    return _post_views(session, access, [post])[0]


def comments(session: Session, access: CircleAccess, post: Post) -> list[CommentView]:
    """The thread of a post, oldest first; replies nested one level under their comment."""
    rows = list(session.scalars(
        select(Comment).options(joinedload(Comment.author))
        .where(Comment.post_id == post.id, Comment.deleted_at.is_(None),
               or_(Comment.visibility == "visible", Comment.author_id == access.user.id))
        .order_by(Comment.id)
    ))
    roles, badges = _roles_and_badges(session, access.space.id, {c.author_id for c in rows})
    counts, mine = _reaction_counts(session, access.user.id, Reaction.comment_id, [c.id for c in rows])
    disclaimer = get_settings().answer_disclaimer
    top: list[CommentView] = []
    by_id: dict[int, CommentView] = {}
    for c in rows:
        answer = badges.get(c.author_id) if c.as_professional else None
        view = CommentView(
            id=c.id, post_id=c.post_id, parent_id=c.parent_id,
            author=shown_person(access, c.author, roles.get(c.author_id), professional=badges.get(c.author_id)),
            body=c.body, body_html=c.body_html, created_at=c.created_at, edited_at=c.edited_at,
            reactions=counts.get(c.id, {}), my_reactions=mine.get(c.id, []),
            can_edit=access.can_edit(c.author_id), can_delete=access.can_delete(c.author_id),
            visibility=c.visibility, removed_reason=c.removed_reason,
            as_professional=c.as_professional, professional_answer=answer,
            accepted=post.is_question and c.parent_id is None and c.id == post.accepted_comment_id,
            disclaimer=disclaimer if c.as_professional else None,
        )
        by_id[c.id] = view
        if c.parent_id is None:
            top.append(view)
        elif c.parent_id in by_id:
            by_id[c.parent_id].replies.append(view)
    top.sort(key=lambda view: not view.accepted)  # the accepted answer first, the rest oldest first
    return top


def comment_view(session: Session, access: CircleAccess, comment: Comment) -> CommentView:
    for view in comments(session, access, session.get(Post, comment.post_id)):
        if view.id == comment.id:
            return view
        for reply in view.replies:
            if reply.id == comment.id:
                return reply
    raise NotFound("No comment with that id.", field="comment_id")


def post_history(session: Session, post: Post) -> list[tuple[str, dt.datetime]]:
    rows = session.execute(
        select(PostRevision.body, PostRevision.written_at)
        .where(PostRevision.post_id == post.id).order_by(PostRevision.id)
    ).all()
    return [(body, at) for body, at in rows] + [(post.body, post.edited_at or post.created_at)]


def comment_history(session: Session, comment: Comment) -> list[tuple[str, dt.datetime]]:
    rows = session.execute(
        select(CommentRevision.body, CommentRevision.written_at)
        .where(CommentRevision.comment_id == comment.id).order_by(CommentRevision.id)
    ).all()
    return [(body, at) for body, at in rows] + [(comment.body, comment.edited_at or comment.created_at)]


def poll_for_access(session: Session, user: User, poll_id: int) -> tuple[CircleAccess, Poll]:
    from peerlift.policy import post_access

    poll = session.get(Poll, poll_id)
    if poll is None:
        raise NotFound("No poll with that id.", field="poll_id")
    try:
        access, _post = post_access(session, user, poll.post_id)
    except NotFound:
        raise NotFound("No poll with that id.", field="poll_id")
    return access, poll


def poll_view(session: Session, access: CircleAccess, poll: Poll) -> PollView:
    return _poll_views(session, access, [poll.post_id])[poll.post_id]


def my_circles(session: Session, user: User, kind: SpaceKind = SpaceKind.circle) -> list[CircleSummary]:
    """The viewer's circles (or communities) with member counts and unread counts, in three statements."""
    rows = session.execute(
        select(Space, Membership).join(Membership, Membership.space_id == Space.id)
        .where(Membership.user_id == user.id, Space.kind == kind).order_by(Space.name)
    ).all()
    if not rows:
        return []
    ids = [space.id for space, _ in rows]
    members = dict(session.execute(
        select(Membership.space_id, func.count()).where(Membership.space_id.in_(ids)).group_by(Membership.space_id)
    ).all())
    capped = union_all(*[
        select(_unread_rows(space.id, membership.last_read_post_id, user.id).subquery().c.space_id)
        for space, membership in rows
    ]).subquery()
    unread = dict(session.execute(select(capped.c.space_id, func.count()).group_by(capped.c.space_id)).all())
    return [
        CircleSummary(
            id=space.id, name=space.name, description=space.description, timezone=space.timezone,
            my_role=membership.role.value, member_count=members.get(space.id, 0),
            unread_count=unread.get(space.id, 0), rules_accepted=membership.rules_accepted_at is not None,
            archived=space.archived_at is not None,
        )
        for space, membership in rows
    ]


def members(session: Session, access: CircleAccess) -> list[Person]:
    order = case(
        (Membership.role == CircleRole.facilitator, 0),
        (Membership.role == CircleRole.clinician, 1),
        (Membership.role == CircleRole.peer_supporter, 2),
        else_=3,
    )
    name = User.pseudonym if access.space.kind == SpaceKind.community else User.display_name
    verified = (select(Professional.user_id, Professional.profession, Professional.profession_other)
                .where(Professional.status == Status.verified.value).subquery())
    rows = session.execute(
        select(User, Membership.role, verified.c.profession, verified.c.profession_other)
        .join(Membership, Membership.user_id == User.id)
        .outerjoin(verified, verified.c.user_id == User.id)
        .where(Membership.space_id == access.space_id).order_by(order, name)
    ).all()
    return [shown_person(access, user, role, professional=label_of(profession, other) if profession else None)
            for user, role, profession, other in rows]


# --- open communities ----------------------------------------------------------------------

@dataclass
class CommunitySummary:
    id: int
    name: str
    description: str
    rules: str
    allow_anonymous: bool
    member_count: int
    joined: bool
    my_role: str | None


def communities(session: Session, user: User, only: int | None = None) -> list[CommunitySummary]:
    """Every open community, with its member count and whether the viewer belongs, in two statements."""
    members_of = (select(Membership.space_id, func.count().label("n")).group_by(Membership.space_id)
                  .subquery())
    mine = select(Membership.space_id, Membership.role).where(Membership.user_id == user.id).subquery()
    query = (select(Space, members_of.c.n, mine.c.role)
             .outerjoin(members_of, members_of.c.space_id == Space.id)
             .outerjoin(mine, mine.c.space_id == Space.id)
             .where(Space.kind == SpaceKind.community, Space.archived_at.is_(None)).order_by(Space.name))
    if only is not None:
        query = query.where(Space.id == only)
    return [CommunitySummary(id=space.id, name=space.name, description=space.description, rules=space.rules,
                             allow_anonymous=space.allow_anonymous, member_count=count or 0,
                             joined=role is not None, my_role=role.value if role is not None else None)
            for space, count, role in session.execute(query).all()]


# --- direct messages ----------------------------------------------------------------------

@dataclass
class ConversationSummary:
    id: int
    other: Person
    last_message_at: dt.datetime | None
    last_message_excerpt: str
    unread_count: int


@dataclass
class MessageView:
    id: int
    conversation_id: int
    sender: Person
    body: str
    body_html: str
    created_at: dt.datetime
    mine: bool


def conversations(session: Session, user: User) -> list[ConversationSummary]:
    from peerlift.community.text import excerpt

    rows = session.scalars(
        select(Conversation)
        .options(joinedload(Conversation.user_low), joinedload(Conversation.user_high))
        .where(or_(Conversation.user_low_id == user.id, Conversation.user_high_id == user.id))
        .order_by(Conversation.last_message_id.desc(), Conversation.id.desc())
    ).all()
    last_ids = [c.last_message_id for c in rows if c.last_message_id]
    last = {m.id: m for m in session.scalars(select(Message).where(Message.id.in_(last_ids)))} if last_ids else {}
    unread = _unread_messages(session, user, rows)
    result = []
    for c in rows:
        other = c.user_high if c.user_low_id == user.id else c.user_low
        message = last.get(c.last_message_id)
        result.append(ConversationSummary(
            id=c.id, other=Person.of(other), last_message_at=message.created_at if message else None,
            last_message_excerpt=excerpt(message.body, 80) if message else "",
            unread_count=unread.get(c.id, 0),
        ))
    return result


def _unread_messages(session: Session, user: User, rows: list[Conversation]) -> dict[int, int]:
    conditions = []
    for c in rows:
        read = c.low_last_read_id if c.user_low_id == user.id else c.high_last_read_id
        if c.last_message_id > read:
            conditions.append(and_(Message.conversation_id == c.id, Message.id > read))
    if not conditions:
        return {}
    return dict(session.execute(
        select(Message.conversation_id, func.count())
        .where(or_(*conditions), Message.sender_id != user.id).group_by(Message.conversation_id)
    ).all())


def unread_message_total(session: Session, user: User) -> int:
    rows = session.scalars(
        select(Conversation).where(or_(Conversation.user_low_id == user.id, Conversation.user_high_id == user.id))
    ).all()
    return sum(_unread_messages(session, user, list(rows)).values())


def messages(session: Session, user: User, conversation: Conversation, *, before: int | None = None,
             limit: int = 50) -> tuple[list[MessageView], int | None]:
    """Oldest first within the page; ``before`` pages back in time."""
    if limit < 1 or limit > 200:
        raise InvalidInput("limit is between 1 and 200.", field="limit")
    query = (select(Message).where(Message.conversation_id == conversation.id)
             .order_by(Message.id.desc()).limit(limit + 1))
    if before is not None:
        query = query.where(Message.id < before)
    rows = list(session.scalars(query))
    page, more = rows[:limit], len(rows) > limit
    people = {u.id: u for u in session.scalars(
        select(User).where(User.id.in_([conversation.user_low_id, conversation.user_high_id])))}
    views = [
        MessageView(id=m.id, conversation_id=m.conversation_id, sender=Person.of(people[m.sender_id]),
                    body=m.body, body_html=m.body_html, created_at=m.created_at, mine=m.sender_id == user.id)
        for m in reversed(page)
    ]
    return views, (page[-1].id if more and page else None)


def message_partners(session: Session, user: User) -> list[Person]:
    """People the viewer may start a conversation with."""
    from peerlift.policy import may_message

    mine = select(Membership.space_id).where(Membership.user_id == user.id)
    candidates = session.scalars(
        select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.space_id.in_(mine), User.id != user.id, User.is_active.is_(True))
        .distinct().order_by(User.display_name)
    ).all()
    return [Person.of(u) for u in candidates if may_message(session, user, u)]


# --- questions ----------------------------------------------------------------------------------

def answered_by_professional(verified_only: bool = True):
    """The posts that have a visible answer (a top-level comment) written as a professional by someone
    verified now: a select of post ids."""
    query = select(Comment.post_id).where(Comment.as_professional.is_(True), Comment.parent_id.is_(None),
                                          Comment.deleted_at.is_(None), Comment.visibility == "visible")
    if verified_only:
        query = query.where(Comment.author_id.in_(
            select(Professional.user_id).where(Professional.status == Status.verified.value)))
    return query


def awaiting_professional(session: Session, access: CircleAccess, *, limit: int = 50) -> list[PostView]:
    """The questions for professionals in this space that no verified professional has answered yet,
    oldest first (the longest waiting on top). Questions with the clinical team are not among them."""
    escalated = _escalated_posts()
    rows = list(session.scalars(
        select(Post).options(joinedload(Post.author))
        .where(Post.space_id == access.space_id, Post.is_question.is_(True), Post.for_professionals.is_(True),
               Post.deleted_at.is_(None), Post.visibility == "visible",
               Post.id.not_in(answered_by_professional()), Post.id.not_in(escalated))
        .order_by(Post.id).limit(limit)))
    return _post_views(session, access, rows)

