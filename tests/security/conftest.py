"""One world per test module, on SQLite only, with a signed-in client per subject.

The access tests send thousands of requests; building the world for each would take minutes. So
each module builds it once, takes a snapshot of the database file, and puts the snapshot back
after any request that may have written. Access is decided in Python above the database, so one
dialect proves it; the per-dialect behaviour of every route is covered by the domain tests."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass

import anyio.from_thread
import pytest
from fastapi.testclient import TestClient

from peerlift import db as dbmod
from peerlift.settings import get_settings
from tests.conftest import _empty_database
from tests.security.world import Objects, build_objects

ANON_CSRF = "matrix-anonymous-csrf-token"
# Columns that change by themselves while a session is used (its sliding expiry).
VOLATILE = {"auth_session": {"last_seen_at", "expires_at"}}


def subjects_of(o: Objects) -> dict[str, object]:
    """Every subject of the matrix by name; ``anon`` is nobody signed in."""
    w = o.world
    return {"anon": None, "alice": w.alice, "bob": w.bob, "pat": w.pat, "carol": w.carol, "coach": w.coach,
            "other_coach": w.other_coach, "clinician": w.clinician, "other_clinician": o.other_clinician,
            "researcher": w.researcher, "other_researcher": o.other_researcher, "admin": w.admin}


@dataclass
class Arena:
    objects: Objects
    app: object
    path: str                         # the SQLite file
    clients: dict[str, TestClient]
    cookies: dict[str, dict[str, str]]
    _snapshot: sqlite3.Connection
    _file: sqlite3.Connection
    baseline: dict[str, str]
    _restored_at: int = -1

    def client(self, subject: str) -> TestClient:
        """The subject's client, with the cookies it signed in with (whatever the last request did to
        them) and its CSRF token."""
        client = self.clients[subject]
        client.cookies.clear()
        for name, value in self.cookies[subject].items():
            client.cookies.set(name, value)
        return client

    def send(self, subject: str, method: str, url: str, *, cookies: dict | None = None, **kwargs):
        """One request as the subject; ``cookies`` are added to theirs for this request only (the
        client's own cookies are set again before the next one)."""
        client = self.client(subject)
        for name, value in (cookies or {}).items():
            client.cookies.set(name, value)
        return client.request(method, url, **kwargs)

    def stream(self, subject: str):
        """The subject's live stream, open (a context manager: leaving it hangs up)."""
        return self.client(subject).stream("GET", "/api/v1/stream")

    def _version(self) -> int:
        # Changes whenever another connection (the app's) commits a change to the file.
        return self._file.execute("PRAGMA data_version").fetchone()[0]

    def restore(self) -> None:
        """The database as it was when the world was built, if anything wrote since."""
        if self._version() != self._restored_at:
            self._snapshot.backup(self._file)
            self._restored_at = self._version()

    def fingerprint(self) -> dict[str, str]:
        """A digest of every table's rows."""
        out = {}
        names = [r[0] for r in self._file.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        for name in names:
            columns = [r[1] for r in self._file.execute(f'PRAGMA table_info("{name}")')
                       if r[1] not in VOLATILE.get(name, ())]
            rows = self._file.execute(f'SELECT {", ".join(columns)} FROM "{name}" ORDER BY 1').fetchall()
            out[name] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return out

    def changed_tables(self) -> list[str]:
        """The tables that differ from the snapshot."""
        if self._version() == self._restored_at:
            return []
        now = self.fingerprint()
        return sorted(t for t in set(now) | set(self.baseline) if now.get(t) != self.baseline.get(t))


@pytest.fixture(scope="module")
def arena(tmp_path_factory) -> Iterator[Arena]:
    from peerlift.app import create_app
    from peerlift.identity import service as identity
    from peerlift.web.deps import ANON_CSRF_COOKIE, SESSION_COOKIE

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PEERLIFT_STREAM_KEEPALIVE_SECONDS", "0.5")
        url = _empty_database("sqlite", tmp_path_factory.mktemp("access"), mp)
        with dbmod.transaction() as s:
            objects = build_objects(s)
            subjects = subjects_of(objects)
            cookies, tokens = {"anon": {ANON_CSRF_COOKIE: ANON_CSRF}}, {"anon": ANON_CSRF}
            for name, person in subjects.items():
                if person is not None:
                    token, auth = identity.start_session(s, person, user_agent="matrix")
                    cookies[name], tokens[name] = {SESSION_COOKIE: token}, auth.csrf_token
        app = create_app()
        path = url.removeprefix("sqlite:///")
        file = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        snapshot = sqlite3.connect(":memory:", check_same_thread=False)
        file.backup(snapshot)
        # One event loop thread serves every client's requests (a client on its own starts one per
        # request); the app's lifespan (the scheduler, the dispatcher) does not run.
        with anyio.from_thread.start_blocking_portal() as portal:
            clients = {}
            for name in subjects:
                client = TestClient(app, base_url="http://testserver", follow_redirects=False)
                client.headers["X-CSRF-Token"] = tokens[name]
                client.portal = portal
                clients[name] = client
            arena = Arena(objects, app, path, clients, cookies, snapshot, file, {})
            arena.baseline = arena.fingerprint()
            arena._restored_at = arena._version()
            yield arena
            for client in clients.values():
                client.portal = None
                client.close()
        file.close()
        snapshot.close()
        dbmod.dispose_engines()
    get_settings.cache_clear()
