"""Shared fixtures: a fresh database per test (SQLite, and PostgreSQL where it runs),
a small realistic world of personas, and helpers that make tests read like stories."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import Session

from peerlift import db as dbmod
from peerlift.identity import service as identity_service
from peerlift.settings import get_settings

PASSWORD = "correct horse battery"
POSTGRES_URL = os.environ.get("PEERLIFT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
# The suite's many short-lived apps would freeze each other's garbage; the policy has its own tests.
os.environ["PEERLIFT_GC_FREEZE"] = "false"

# Real argon2, cheap parameters: the suite hashes hundreds of passwords.
identity_service._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


_pg_ready: dict[str, str] = {}


def _postgres_url() -> str:
    """A schema of our own in the test database, created once per worker."""
    if "url" in _pg_ready:
        return _pg_ready["url"]
    # Unique per test run and worker, so two runs on one server never share tables.
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"{os.getpid()}"
    schema = f"pl_{run[:10]}_{_worker()}".lower()
    try:
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        admin.dispose()
    except Exception as exc:  # noqa: BLE001 - any connection failure
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and unreachable at {POSTGRES_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL} (outside CI): {exc.__class__.__name__}")
    sep = "&" if "?" in POSTGRES_URL else "?"
    _pg_ready["url"] = f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    _pg_ready["schema"] = schema
    return _pg_ready["url"]


def pytest_sessionfinish(session, exitstatus):
    """Drop this worker's PostgreSQL schema."""
    schema = _pg_ready.get("schema")
    if not schema:
        return
    dbmod.dispose_engines()
    try:
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()
    except Exception:  # noqa: BLE001 - a leftover schema is harmless
        pass


def _use_database(monkeypatch, url: str) -> None:
    monkeypatch.setenv("PEERLIFT_DATABASE_URL", url)
    # Stories post quickly; the posting limits have their own tests, which set them low.
    monkeypatch.setenv("PEERLIFT_POSTS_PER_MINUTE", "1000")
    monkeypatch.setenv("PEERLIFT_POSTS_PER_HOUR", "10000")
    # The personas sign in with a password alone; two-factor sign-in has its own tests, which require it.
    monkeypatch.setenv("PEERLIFT_TWO_FACTOR_ROLES", "")
    get_settings.cache_clear()
    dbmod.dispose_engines()


def _empty_database(kind: str, tmp_path, monkeypatch) -> str:
    """Point peerlift at an empty, fully created database of ``kind`` and return its URL."""
    from peerlift.migrate import all_models

    all_models()
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'peerlift.db'}"
        _use_database(monkeypatch, url)
        dbmod.Base.metadata.create_all(dbmod.get_engine())
        return url
    url = _postgres_url()
    _use_database(monkeypatch, url)
    engine = dbmod.get_engine()
    dbmod.Base.metadata.create_all(engine)
    names = ", ".join(t.name for t in dbmod.Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path, monkeypatch) -> Iterator[str]:
    """The URL of an empty, fully created database; every test gets its own."""
    yield _empty_database(request.param, tmp_path, monkeypatch)
    dbmod.dispose_engines()
    get_settings.cache_clear()


@pytest.fixture
def postgres_database(tmp_path, monkeypatch) -> Iterator[str]:
    """An empty PostgreSQL schema (for tests that are about PostgreSQL)."""
    yield _empty_database("postgresql", tmp_path, monkeypatch)
    dbmod.dispose_engines()
    get_settings.cache_clear()


@pytest.fixture
def sqlite_database(tmp_path, monkeypatch) -> Iterator[str]:
    yield _empty_database("sqlite", tmp_path, monkeypatch)
    dbmod.dispose_engines()
    get_settings.cache_clear()


def migrate_fresh(url: str) -> None:
    """Drop every table of the test database and build it again with the Alembic migrations."""
    from peerlift.migrate import upgrade

    engine = dbmod.get_engine()
    dbmod.Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade(url)


@pytest.fixture
def session(database) -> Iterator[Session]:
    """A unit of work on the test database; commits at the end of the test if not rolled back."""
    s = dbmod.make_session(dbmod.get_engine(), write=True)
    yield s
    s.rollback()
    s.close()


# --- the world -------------------------------------------------------------------------------

@dataclass
class World:
    study: object
    arm_a: object
    arm_b: object
    circle: object          # arm A, the main circle of the stories
    other_circle: object    # arm B
    coach: object           # facilitates both circles
    other_coach: object     # facilitator who is not assigned to `circle`
    alice: object
    bob: object
    pat: object             # peer supporter in `circle`
    carol: object           # participant of arm B
    clinician: object
    researcher: object
    admin: object


def build_world(s: Session) -> World:
    from tests.factories import add_member, create_circle, create_user
    from peerlift.community.models import CircleRole
    from peerlift.identity.models import Role
    from peerlift.research.models import Arm, Study

    study = Study(slug="trial", title="A test trial")
    s.add(study)
    s.flush()
    arm_a, arm_b = Arm(study_id=study.id, slug="a", name="Arm A"), Arm(study_id=study.id, slug="b", name="Arm B")
    s.add_all([arm_a, arm_b])
    s.flush()
    admin = create_user(s, "Ada Admin", Role.admin)
    coach = create_user(s, "Maya Coach", Role.facilitator)
    other_coach = create_user(s, "Omar Coach", Role.facilitator)
    clinician = create_user(s, "Cleo Clinician", Role.clinician)
    researcher = create_user(s, "Rhea Researcher", Role.researcher)
    alice = create_user(s, "Alice Archer")
    bob = create_user(s, "Bob Baker")
    pat = create_user(s, "Pat Peer")
    carol = create_user(s, "Carol Chen")
    circle = create_circle(s, admin, "Morning Movers", arm=arm_a, rules="1. Be kind.")
    other_circle = create_circle(s, admin, "Stride Crew", arm=arm_b)
    add_member(s, circle, coach, CircleRole.facilitator)
    add_member(s, other_circle, coach, CircleRole.facilitator)
    add_member(s, other_circle, other_coach, CircleRole.facilitator)
    add_member(s, circle, clinician, CircleRole.clinician)
    for person in (alice, bob, pat):
        add_member(s, circle, person)
    add_member(s, other_circle, carol)
    from peerlift.community.service import set_member_role
    from peerlift.policy import circle_access

    set_member_role(s, circle_access(s, coach, circle.id),
                    circle_access(s, pat, circle.id).membership, CircleRole.peer_supporter)
    s.flush()
    return World(study, arm_a, arm_b, circle, other_circle, coach, other_coach, alice, bob, pat, carol,
                 clinician, researcher, admin)


@pytest.fixture
def world(database) -> World:
    with dbmod.transaction() as s:
        return build_world(s)


@pytest.fixture
def app(database):
    from peerlift.app import create_app

    return create_app()


@pytest.fixture
def client_for(app) -> Iterator:
    """``client_for(person)``: a signed-in API client of its own (cookies and CSRF header)."""
    clients: list[TestClient] = []

    def make(person=None) -> TestClient:
        c = TestClient(app, base_url="http://testserver")
        clients.append(c)
        if person is not None:
            login(c, person)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def anon(client_for) -> TestClient:
    return client_for(None)


def login(client: TestClient, person, password: str = PASSWORD) -> dict:
    response = client.post("/api/v1/auth/login", json={"email": person.email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    client.headers["X-CSRF-Token"] = body["csrf_token"]
    return body


# --- two-factor sign-in --------------------------------------------------------------------------

@pytest.fixture
def steps():
    """``with steps(k):`` sets the clock k TOTP time steps (30 s each) after a fixed moment near now,
    so a test says which code an authenticator app would show, and when it is typed."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    base = now.replace(second=5 if now.second < 30 else 35, microsecond=0)

    def at(k: int = 0):
        return dbmod.clock_at(base + dt.timedelta(seconds=30 * k))
    return at


def totp_code(secret: str, k: int, steps) -> str:
    """The code an authenticator app shows at time step k."""
    import pyotp

    with steps(k):
        return pyotp.TOTP(secret).at(dbmod.utcnow())


def wrong_totp_code(secret: str, k: int, steps) -> str:
    """A well-formed code that matches none of the time steps around k."""
    near = {totp_code(secret, k + d, steps) for d in range(-2, 3)}
    return next(c for c in (f"{n:06d}" for n in range(123456, 999999, 7919)) if c not in near)


def post(client: TestClient, circle, body: str, **extra):
    return client.post(f"/api/v1/circles/{circle.id}/posts", json={"body": body, **extra})


def assert_error(response, status: int, code: str | None = None, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "field"}, body
    assert body["error"]["message"], body
    if code is not None:
        assert body["error"]["code"] == code, body
    if field is not None:
        assert body["error"]["field"] == field, body
    return body["error"]


def form_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


class QueryCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)

    def __str__(self) -> str:
        return "\n".join(f"{i + 1}. {s}" for i, s in enumerate(self.statements))


@contextmanager
def count_queries() -> Iterator[QueryCounter]:
    """Count the SQL statements run (BEGIN/COMMIT excluded)."""
    counter = QueryCounter()
    engine = dbmod.get_engine()

    def _listen(conn, cursor, statement, parameters, context, executemany):
        if not statement.strip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA")):
            counter.statements.append(" ".join(statement.split())[:300])

    event.listen(engine, "before_cursor_execute", _listen)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", _listen)


def count_rows(model, *where) -> int:
    """Rows of a table as the database has them now (a fresh unit of work)."""
    from sqlalchemy import func, select

    with dbmod.transaction(write=False) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


# --- a real server, for streams and browsers ---------------------------------------------------

class LiveServer:
    def __init__(self, app, http: str = "auto") -> None:
        import socket
        import threading

        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on", http=http))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        import time

        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(app, monkeypatch) -> Iterator[LiveServer]:
    monkeypatch.setenv("PEERLIFT_STREAM_KEEPALIVE_SECONDS", "0.5")
    get_settings.cache_clear()
    with LiveServer(app) as server:
        yield server


def http_login(base_url: str, person, password: str = PASSWORD):
    """An httpx client signed in against a real server."""
    import httpx

    client = httpx.Client(base_url=base_url, timeout=10)
    response = client.post("/api/v1/auth/login", json={"email": person.email, "password": password})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


# --- a real SMTP server ---------------------------------------------------------------------------

class Mailbox:
    """An aiosmtpd server on a free port that keeps what it receives."""

    def __init__(self) -> None:
        import socket

        from aiosmtpd.controller import Controller

        self.messages: list = []
        mailbox = self

        class _Handler:
            async def handle_DATA(self, server, session, envelope):
                import email
                import email.policy

                mailbox.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
                return "250 Message accepted for delivery"

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self._handler = _Handler()
        self.controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)

    def restart(self) -> None:
        """Bring the server back on the same port after an outage."""
        from aiosmtpd.controller import Controller

        self.controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def to(self, address: str) -> list:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def mailbox(monkeypatch) -> Iterator[Mailbox]:
    box = Mailbox()
    box.controller.start()
    monkeypatch.setenv("PEERLIFT_SMTP_URL", f"smtp://127.0.0.1:{box.port}")
    get_settings.cache_clear()
    yield box
    try:
        box.controller.stop()
    except (AssertionError, RuntimeError):  # stopped already by the test
        pass
    get_settings.cache_clear()


def run_due(times: int = 5) -> int:
    """Run the scheduler until nothing is due (as a worker process would)."""
    from peerlift.delivery.scheduler import Worker

    worker, total = Worker(), 0
    for _ in range(times):
        took = worker.run_once()
        total += took
        if not took:
            break
    return total
