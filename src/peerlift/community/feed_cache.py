"""The feed's answers kept per reader, and the space's content version that says when they are stale.

A feed page is read far more often than its circle changes: members reopen the app, scroll back to the
top, and every open tab reloads the page when a live event arrives. Each process keeps the JSON it last
answered for a reader and a page, and answers it again while nothing the page shows has changed.

What has changed is told by ``space.content_version``, a number that triggers in the database raise on
every write that changes what a feed page of the space shows, whichever code (or person at a SQL prompt)
writes it: posts (their text, visibility, pin, comment count, deletion), reactions, polls, options and
votes, memberships (the roles shown beside names), the names, handles, pronouns and pseudonyms of the
people who belong or wrote there, their verification as professionals, and escalations about posts. The
version is read with the membership that every feed read checks first, in the same transaction as the
page: a page is never kept under a version older than what it shows. The viewer's own part of a page
(their reactions and votes, what is unread to them, what they may edit) is in the key: the viewer, their
role and their read marker. The one change without a write, a poll closing, ends the kept answer at that
moment.

A migration that rebuilds one of these tables on SQLite (Alembic's batch mode copies the table) drops its
triggers: it creates them again with ``create_statements``. ``tests/test_migrations.py`` checks that a
database migrated from scratch has every one of them.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import DDL, Engine, Table, event

from peerlift.db import utcnow

if TYPE_CHECKING:
    from peerlift.community.queries import FeedPage
    from peerlift.policy import CircleAccess

BUMP = "UPDATE space SET content_version = content_version + 1 WHERE id IN ({spaces})"


@dataclass(frozen=True)
class Watched:
    """A table whose rows a feed page shows, and the spaces a row of it belongs to (a SELECT over
    ``{row}``, which is ``new`` or ``old``)."""

    table: str
    spaces: str
    columns: tuple[str, ...] = ()  # for updates: only these columns matter (all when empty)
    on_insert_delete: bool = True


_POST_SPACE = "SELECT space_id FROM post WHERE id = {row}.post_id"
_POLL_SPACE = "SELECT post.space_id FROM poll JOIN post ON post.id = poll.post_id WHERE poll.id = {row}.poll_id"
_PERSON_SPACES = ("SELECT space_id FROM membership WHERE user_id = {row}.{column} "
                  "UNION SELECT space_id FROM post WHERE author_id = {row}.{column}")

WATCHED = (
    Watched("post", "SELECT {row}.space_id"),
    Watched("reaction", _POST_SPACE),
    Watched("poll", _POST_SPACE),
    Watched("poll_option", _POLL_SPACE),
    Watched("poll_vote", _POLL_SPACE),
    # The read marker is in the reader's key; joining and leaving change the roles shown.
    Watched("membership", "SELECT {row}.space_id", columns=("role", "space_id", "user_id")),
    Watched("user_account", _PERSON_SPACES.replace("{column}", "id"),
            columns=("display_name", "handle", "pronouns", "pseudonym"), on_insert_delete=False),
    Watched("professional", _PERSON_SPACES.replace("{column}", "user_id")),
    Watched("escalation", "SELECT space_id FROM post WHERE {row}.object_type = 'post' AND id = {row}.object_id"),
)


def _spaces(w: Watched, *rows: str) -> str:
    return " UNION ".join(w.spaces.format(row=row) for row in rows)


def _update_of(w: Watched) -> str:
    return "UPDATE" + (f" OF {', '.join(w.columns)}" if w.columns else "")


def _sqlite_statements(w: Watched) -> list[str]:
    events = [("INSERT", ("new",)), ("DELETE", ("old",))] if w.on_insert_delete else []
    events.append((_update_of(w), ("old", "new")))
    return [f"CREATE TRIGGER feed_version_{w.table}_{what.split()[0].lower()} AFTER {what} ON {w.table} BEGIN "
            f"{BUMP.format(spaces=_spaces(w, *rows))}; END" for what, rows in events]


def _postgres_statements(w: Watched) -> list[str]:
    function = f"peerlift_feed_version_{w.table}"
    events = ["INSERT", "DELETE"] if w.on_insert_delete else []
    return [
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP = 'INSERT' THEN {BUMP.format(spaces=_spaces(w, 'NEW'))}; "
        f"ELSIF TG_OP = 'DELETE' THEN {BUMP.format(spaces=_spaces(w, 'OLD'))}; "
        f"ELSE {BUMP.format(spaces=_spaces(w, 'OLD', 'NEW'))}; END IF; "
        f"RETURN NULL; END $$",
        f"CREATE TRIGGER feed_version_{w.table} AFTER {' OR '.join([*events, _update_of(w)])} ON {w.table} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()",
    ]


def create_statements(dialect: str, table: str | None = None) -> list[str]:
    """The triggers (and PostgreSQL's functions) that keep ``space.content_version``, of one table or all."""
    make = _sqlite_statements if dialect == "sqlite" else _postgres_statements
    return [s for w in WATCHED if table in (None, w.table) for s in make(w)]


def trigger_names(dialect: str) -> set[str]:
    return {s.split()[2] for s in create_statements(dialect) if s.startswith("CREATE TRIGGER")}


def drop_statements(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {name}" for name in sorted(trigger_names("sqlite"))]
    return ([f"DROP TRIGGER IF EXISTS feed_version_{w.table} ON {w.table}" for w in WATCHED]
            + [f"DROP FUNCTION IF EXISTS peerlift_feed_version_{w.table}()" for w in WATCHED])


_installed: list[bool] = []


def install(tables: Mapping[str, Table]) -> None:
    """Create the triggers with their tables when ``metadata.create_all`` creates them (``migrate.all_models``
    calls this once every table is known)."""
    if _installed:
        return
    _installed.append(True)
    for w in WATCHED:
        for dialect in ("sqlite", "postgresql"):
            for statement in create_statements(dialect, w.table):
                event.listen(tables[w.table], "after_create", DDL(statement).execute_if(dialect=dialect))


# --- the kept answers ------------------------------------------------------------------------------

class FeedCache:
    """Answers (bytes) by key, the least recently used dropped first beyond ``max_bytes``; each may carry
    the moment it stops being true. Safe to use from several threads."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple, tuple[bytes, dt.datetime | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and (entry[1] is None or utcnow() < entry[1]):
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[0]
            if entry is not None:
                self._drop(key)
            self.misses += 1
            return None

    def put(self, key: tuple, body: bytes, until: dt.datetime | None = None) -> None:
        if len(body) > self.max_bytes:
            return
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (body, until)
            self.size += len(body)
            while self.size > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def _drop(self, key: tuple) -> None:
        body, _until = self._entries.pop(key)
        self.size -= len(body)

    def __len__(self) -> int:
        return len(self._entries)


_caches: weakref.WeakKeyDictionary[Engine, FeedCache] = weakref.WeakKeyDictionary()


def cache_for(engine: Engine) -> FeedCache | None:
    """This process's answers read from ``engine``'s database (None when PEERLIFT_FEED_CACHE_MB is 0)."""
    cache = _caches.get(engine)
    if cache is None:
        from peerlift.settings import get_settings

        megabytes = get_settings().feed_cache_mb
        if not megabytes:
            return None
        cache = _caches.setdefault(engine, FeedCache(megabytes * 1024 * 1024))
    return cache


def key(access: CircleAccess, before: int | None, limit: int) -> tuple:
    """What a page depends on: the space as of its version, and the reader's own part."""
    membership = access.membership
    return (access.space.id, access.space.content_version, access.user.id, membership.role,
            membership.last_read_post_id, before, limit)


def changes_at(page: FeedPage) -> dt.datetime | None:
    """When the page changes without a write: the first of its open polls to close."""
    moments = [p.poll.closes_at for p in (*page.posts, *page.pinned)
               if p.poll is not None and not p.poll.closed and p.poll.closes_at is not None]
    return min(moments, default=None)
