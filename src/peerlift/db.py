"""Engine, sessions and the declarative base.

SQLite (WAL, foreign keys on, writers queued in turn across threads and processes, then
BEGIN IMMEDIATE) by default, PostgreSQL through psycopg 3 when PEERLIFT_DATABASE_URL says so.
Times are stored in UTC.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from threading import Lock

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


_clock: ContextVar[dt.datetime | None] = ContextVar("peerlift_clock", default=None)


def utcnow() -> dt.datetime:
    """Now, in UTC. Seeding and tests may set the clock with :func:`clock_at`."""
    fixed = _clock.get()
    return fixed if fixed is not None else dt.datetime.now(dt.UTC)


@contextmanager
def clock_at(moment: dt.datetime) -> Iterator[None]:
    token = _clock.set(moment.astimezone(dt.UTC))
    try:
        yield
    finally:
        _clock.reset(token)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class WriterQueue:
    """The writers of one SQLite file, served in turn, across threads and processes.

    SQLite lets one writer in at a time and makes the others sleep and retry in its busy handler,
    so a newcomer often overtakes a writer that has waited long. Here a writer first takes this
    process's lock (threads queue on it), then an exclusive ``flock`` on ``<database>-writer`` beside
    the file (processes queue on it; the kernel drops it if its process dies), and only then begins
    ``BEGIN IMMEDIATE``. ``peerlift serve --workers N`` on SQLite relies on this."""

    def __init__(self, database: str | None) -> None:
        self._threads = Lock()
        self._path = f"{database}-writer" if database else None
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int | None:
        if self._path is None:
            return None
        if self._fd is None or self._pid != os.getpid():  # a forked child opens its own
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd

    def acquire(self, timeout: float) -> None:
        if not self._threads.acquire(timeout=timeout):
            raise TimeoutError(f"the database stayed busy with other writes for {timeout:.0f} seconds")
        try:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        try:
            if self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


_engines: dict[str, Engine] = {}
_lock = Lock()


def _sqlite_engine(url: str, echo: bool) -> Engine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=20,
        max_overflow=20,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
        from peerlift.search.models import SPACE_TERMS, space_terms

        # the search index's triggers write each word joined to its space (search/models.py)
        dbapi_connection.create_function(SPACE_TERMS, 2, space_terms, deterministic=True)

    writers = WriterQueue(parsed.database if parsed.database not in (None, "", ":memory:") else None)

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        if conn.get_execution_options().get("peerlift_write"):
            writers.acquire(timeout=30)
            conn.info["holds_write_lock"] = True  # the pool record's info: seen again at checkin
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                _release(conn)
                raise
        else:
            conn.exec_driver_sql("BEGIN")

    def _release(conn) -> None:
        if conn.info.pop("holds_write_lock", False):
            writers.release()

    event.listen(engine, "commit", _release)
    event.listen(engine, "rollback", _release)

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection, record):
        # a connection returned to the pool without commit or rollback must not keep the lock
        if record.info.pop("holds_write_lock", False):
            writers.release()

    return engine


def get_engine(url: str | None = None) -> Engine:
    from peerlift.settings import get_settings

    settings = get_settings()
    url = url or settings.database_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                engine = _sqlite_engine(url, settings.sql_echo)
            else:
                engine = create_engine(
                    url, echo=settings.sql_echo, pool_size=20, max_overflow=20, pool_pre_ping=True
                )
            _engines[url] = engine
        return engine


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def make_session(engine: Engine, *, write: bool = False) -> Session:
    bind = engine.execution_options(peerlift_write=True) if write else engine
    return Session(bind=bind, expire_on_commit=False, autoflush=True)


MEMO = "peerlift_memo"


def memo(session: Session) -> dict:
    """A dictionary that lives as long as the current transaction (for lookups worth remembering)."""
    return session.info.setdefault(MEMO, {})


# Work queued during a transaction (live events, jobs) runs only after the commit.
def on_commit(session: Session, fn: Callable[[], None]) -> None:
    session.info.setdefault("after_commit", []).append(fn)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    session.info.pop(MEMO, None)
    callbacks = session.info.pop("after_commit", [])
    for fn in callbacks:
        fn()


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, previous) -> None:
    if not previous.nested:
        session.info.pop("after_commit", None)
        session.info.pop(MEMO, None)


@contextmanager
def transaction(engine: Engine | None = None, *, write: bool = True) -> Iterator[Session]:
    """A unit of work outside a request: commit on success, roll back on error."""
    session = make_session(engine or get_engine(), write=write)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


