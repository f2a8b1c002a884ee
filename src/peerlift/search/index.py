"""Keeping the search index in step with the writing it covers.

Every change to a post or a comment reaches the index through the ORM session, whoever makes it (the
community service, moderation, withdrawal from a study, account deletion): after each flush the
objects that were added, changed in a watched column or deleted are indexed again, and a bulk
``update``/``delete`` statement on them re-indexes the rows it touches. Re-indexing an object deletes
its row and inserts it again when the object is searchable (visible, not deleted, in a visible post).
``reindex`` rebuilds the whole index from the tables.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from sqlalchemy import delete, event, func, insert, inspect, literal, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import ORMExecuteState, Session

from peerlift.search import kinds as _kinds  # read at call time: community imports this module
from peerlift.search.models import SearchDocument

DOC = SearchDocument.__table__
CHUNK = 500


def _expand(connection: Connection, changed: dict[str, set[int]]) -> dict[str, set[int]]:
    """The changed objects and those that follow them (a post's comments)."""
    todo = {name: set(ids) for name, ids in changed.items() if ids}
    for name, ids in list(todo.items()):
        for i in range(0, len(ids), CHUNK):
            chunk = sorted(ids)[i:i + CHUNK]
            for dependent, query in _kinds.KINDS[name].dependents(chunk):
                todo.setdefault(dependent, set()).update(connection.scalars(query))
    return todo


def sync(connection: Connection, changed: dict[str, Iterable[int]]) -> None:
    """Index again the objects ``changed`` (kind name -> ids) and those that follow them."""
    for name, ids in _expand(connection, {k: set(v) for k, v in changed.items()}).items():
        _index(connection, name, ids, replace=True)


def add(connection: Connection, created: dict[str, Iterable[int]]) -> None:
    """Index objects just created: nothing of theirs is in the index yet, and nothing follows them yet
    (a post's comments are created after it, and indexed as they are)."""
    for name, ids in created.items():
        _index(connection, name, set(ids), replace=False)


def _index(connection: Connection, name: str, ids: set[int], *, replace: bool) -> None:
    kind = _kinds.KINDS[name]
    ordered = sorted(ids)
    for i in range(0, len(ordered), CHUNK):
        chunk = ordered[i:i + CHUNK]
        if replace:
            connection.execute(delete(DOC).where(DOC.c.kind == name, DOC.c.object_id.in_(chunk)))
        searchable = kind.searchable().where(kind.model.id.in_(chunk)).subquery()
        connection.execute(insert(DOC).from_select(
            ["kind", "object_id", "space_id", "author_id", "created_at", "body"],
            select(literal(name), *searchable.c)))


# --- the hooks ---------------------------------------------------------------------------------------

def _changed_in_flush(session: Session) -> tuple[dict[str, set[int]], dict[str, set[int]]]:
    """What the flush created, and what it changed or deleted, per kind."""
    created: dict[str, set[int]] = defaultdict(set)
    changed: dict[str, set[int]] = defaultdict(set)
    for objects, into in ((session.new, created), (session.deleted, changed)):
        for obj in objects:
            kind = _kinds.KIND_OF_MODEL.get(type(obj))
            if kind is not None and obj.id is not None:
                into[kind.name].add(obj.id)
    for obj in session.dirty:
        kind = _kinds.KIND_OF_MODEL.get(type(obj))
        if kind is None:
            continue
        state = inspect(obj)
        if any(state.attrs[column].history.has_changes() for column in kind.watched):
            changed[kind.name].add(obj.id)
    return created, changed


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, flush_context) -> None:
    created, changed = _changed_in_flush(session)
    if created:
        add(session.connection(), created)
    if changed:
        sync(session.connection(), changed)


@event.listens_for(Session, "do_orm_execute")
def _bulk_statement(state: ORMExecuteState) -> object | None:
    if not (state.is_update or state.is_delete) or state.bind_mapper is None:
        return None
    kind = _kinds.KIND_OF_MODEL.get(state.bind_mapper.class_)
    if kind is None:
        return None
    statement = state.statement
    if state.is_update and not _touches(statement, kind.watched):
        return None
    where = statement.whereclause
    query = select(kind.model.id) if where is None else select(kind.model.id).where(where)
    connection = state.session.connection()
    ids = set(connection.scalars(query))
    result = state.invoke_statement()
    if ids:
        sync(connection, {kind.name: ids})
    return result


def _touches(statement, columns: tuple[str, ...]) -> bool:
    values = getattr(statement, "_values", None) or {}
    keys = {getattr(key, "key", key) for key in values}
    return not keys or bool(keys & set(columns))


# --- rebuilding --------------------------------------------------------------------------------------

def reindex(connection: Connection, progress: Callable[[str, int, int], None] | None = None) -> dict[str, int]:
    """Rebuild the index from the tables; ``progress(kind, done, total)`` hears of each chunk."""
    connection.execute(delete(DOC))
    counts: dict[str, int] = {}
    step = 20_000
    for name, kind in _kinds.KINDS.items():
        searchable = kind.searchable().subquery()
        total = connection.scalar(select(func.count()).select_from(searchable)) or 0
        top = connection.scalar(select(func.max(kind.model.id))) or 0
        done = 0
        for low in range(0, top + 1, step):
            chunk = kind.searchable().where(kind.model.id >= low, kind.model.id < low + step).subquery()
            connection.execute(insert(DOC).from_select(
                ["kind", "object_id", "space_id", "author_id", "created_at", "body"],
                select(literal(name), *chunk.c)))
            done = connection.scalar(select(func.count()).select_from(DOC).where(DOC.c.kind == name)) or 0
            if progress is not None:
                progress(name, done, total)
        counts[name] = done
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("INSERT INTO search_fts(search_fts) VALUES ('optimize')")
    return counts
