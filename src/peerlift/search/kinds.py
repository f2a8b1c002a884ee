"""What can be found, one entry per kind of object.

A kind says which of a set of its objects are searchable now (and with what space, author, time and
text), which objects of other kinds depend on it (a post's comments vanish with the post), and where
a result opens. Adding a kind is one more entry in ``KINDS``; experience reports are the kind ``experience``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from peerlift.community.models import Comment, Post
from peerlift.experience.models import ExperienceReport


@dataclass(frozen=True)
class Document:
    kind: str
    object_id: int
    space_id: int
    author_id: int
    created_at: dt.datetime
    body: str


@dataclass(frozen=True)
class Opening:
    """Where a result opens, and whether its author is hidden (written anonymously)."""

    url: str
    anonymous: bool = False


@dataclass(frozen=True)
class Kind:
    name: str
    model: type
    # the searchable objects: columns id, space_id, author_id, created_at, body (a select to filter by id)
    searchable: Callable[[], Select]
    # where each of the ids given opens, and whether it was written anonymously (only those still searchable)
    openings: Callable[[Session, list[int]], dict[int, Opening]]
    # columns whose change re-indexes the object
    watched: tuple[str, ...] = ("body", "visibility", "deleted_at", "space_id")
    # objects of other kinds that follow this one: (kind name, select of their ids for these ids)
    dependents: Callable[[list[int]], Iterable[tuple[str, Select]]] = lambda ids: ()


def _posts() -> Select:
    return select(Post.id, Post.space_id, Post.author_id, Post.created_at, Post.body).where(
        Post.visibility == "visible", Post.deleted_at.is_(None))


def _comments() -> Select:
    return (select(Comment.id, Post.space_id, Comment.author_id, Comment.created_at, Comment.body)
            .join(Post, Post.id == Comment.post_id)
            .where(Comment.visibility == "visible", Comment.deleted_at.is_(None),
                   Post.visibility == "visible", Post.deleted_at.is_(None)))


def _post_openings(session: Session, ids: list[int]) -> dict[int, Opening]:
    rows = session.execute(_posts().with_only_columns(Post.id, Post.anonymous).where(Post.id.in_(ids)))
    return {post_id: Opening(f"/posts/{post_id}", bool(anonymous)) for post_id, anonymous in rows}


def _comment_openings(session: Session, ids: list[int]) -> dict[int, Opening]:
    rows = session.execute(_comments().with_only_columns(Comment.id, Comment.post_id).where(Comment.id.in_(ids)))
    return {comment_id: Opening(f"/posts/{post_id}#comment-{comment_id}") for comment_id, post_id in rows}


def _reports() -> Select:
    return select(ExperienceReport.id, ExperienceReport.space_id, ExperienceReport.author_id,
                  ExperienceReport.created_at, ExperienceReport.search_text).where(
        ExperienceReport.visibility == "visible", ExperienceReport.deleted_at.is_(None))


def _report_openings(session: Session, ids: list[int]) -> dict[int, Opening]:
    rows = session.execute(_reports().with_only_columns(ExperienceReport.id, ExperienceReport.anonymous)
                           .where(ExperienceReport.id.in_(ids)))
    return {report_id: Opening(f"/experiences/{report_id}", bool(anonymous)) for report_id, anonymous in rows}


KINDS: dict[str, Kind] = {
    "post": Kind("post", Post, _posts, _post_openings,
                 dependents=lambda ids: [("comment", select(Comment.id).where(Comment.post_id.in_(ids)))]),
    "comment": Kind("comment", Comment, _comments, _comment_openings,
                    watched=("body", "visibility", "deleted_at", "post_id")),  # a comment's space is its post's
    "experience": Kind("experience", ExperienceReport, _reports, _report_openings,
                       watched=("search_text", "visibility", "deleted_at", "space_id")),
}
KIND_OF_MODEL = {kind.model: kind for kind in KINDS.values()}


for _kind in KINDS.values():  # a watched name that is not a column of the model would fail at flush time
    assert all(hasattr(_kind.model, column) for column in _kind.watched), _kind.name
