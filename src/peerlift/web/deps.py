from __future__ import annotations

import asyncio
import hmac
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from peerlift.db import get_engine, make_session
from peerlift.errors import Forbidden, NotAuthenticated
from peerlift.identity import service as identity
from peerlift.identity.models import AuthSession, Role, User
from peerlift.settings import get_settings

T = TypeVar("T")
SESSION_COOKIE = "peerlift_session"
ANON_CSRF_COOKIE = "peerlift_csrf"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# JSON-only sign-in routes: a cross-site form cannot send application/json, and the
# caller has no token yet. Everything else that writes needs the token.
CSRF_EXEMPT = {"/api/v1/auth/login", "/api/v1/auth/login/two-factor", "/api/v1/auth/signup",
               "/api/v1/auth/password/forgot", "/api/v1/auth/password/reset"}
# What a person whose role needs two-factor sign-in, and who has not set it up, may still reach.
TWO_FACTOR_SETUP_PATHS = ("/profile/two-factor", "/api/v1/me/two-factor")
TWO_FACTOR_SETUP_OPEN = {"/logout", "/api/v1/auth/logout"}


async def get_db(request: Request) -> AsyncIterator[Session]:
    """One session per request: commits when the route returns, rolls back on any error.

    This runs on the event loop, not in a worker thread: opening a session does no I/O (the
    connection is taken at the first statement, in the route's own thread), and a read ends with
    one short statement. A write's commit (which may wait for the disk) and rollback go to a
    worker thread."""
    write = request.method not in SAFE_METHODS
    session = make_session(get_engine(), write=write)
    try:
        yield session
        await _finish(session.commit, write)
    except BaseException:
        await _finish(session.rollback, write)
        raise
    finally:
        session.close()


async def _finish(step: Callable[[], None], write: bool) -> None:
    if write:
        await run_in_threadpool(step)
    else:
        step()


DB = Annotated[Session, Depends(get_db, scope="function")]


def local_path(target: str | None, fallback: str) -> str:
    """``target`` if it is a path on this site, else ``fallback``: redirects never leave peerlift."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return fallback


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


@dataclass(frozen=True)
class Viewer:
    """What pages show of the signed-in person; safe to use after a rollback."""

    id: int
    email: str
    handle: str
    display_name: str
    pronouns: str
    bio: str
    timezone: str
    role: Role
    csrf_token: str


def get_auth(request: Request, db: DB) -> AuthSession | None:
    return _auth(request, db)


def _auth(request: Request, db: Session, defer: Callable[[Callable[[], None]], object] | None = None) -> AuthSession | None:
    if "auth" not in request.state._state:
        auth = identity.resolve_session(db, request.cookies.get(SESSION_COOKIE), days=get_settings().session_days,
                                        defer=defer)
        request.state.auth = auth
        if auth is not None:
            u = auth.user
            request.state.viewer = Viewer(u.id, u.email, u.handle, u.display_name, u.pronouns, u.bio, u.timezone,
                                          u.role, auth.csrf_token)
    return request.state.auth


def _two_factor_gate(request: Request, user: User) -> None:
    """A person whose role needs two-factor sign-in reaches only its set-up until it is on
    (pages are sent there; the API answers 403 ``two_factor_required``)."""
    from peerlift.identity import two_factor

    path = request.url.path
    if two_factor.needs_setup(user) and path not in TWO_FACTOR_SETUP_OPEN \
            and not path.startswith(TWO_FACTOR_SETUP_PATHS):
        raise two_factor.TwoFactorSetupRequired(two_factor.SETUP_MESSAGE)


# These two do no I/O: async, so FastAPI does not hop to a worker thread for them.
async def optional_user(request: Request, auth: Annotated[AuthSession | None, Depends(get_auth)]) -> User | None:
    if auth is None:
        return None
    _two_factor_gate(request, auth.user)
    return auth.user


async def current_user(request: Request, auth: Annotated[AuthSession | None, Depends(get_auth)]) -> User:
    return _signed_in(request, auth)


def _signed_in(request: Request, auth: AuthSession | None) -> User:
    if auth is None:
        raise NotAuthenticated("Sign in first.")
    _two_factor_gate(request, auth.user)
    return auth.user


async def admin_user(user: Annotated[User, Depends(current_user)]) -> User:
    """The signed-in admin. A dependency, so that it answers before the query is checked: to
    anyone else an admin route does not exist, whatever they send it."""
    from peerlift.policy import require_admin

    require_admin(user)
    return user


async def reader(request: Request, db: DB) -> User:
    """``current_user`` for the busiest read-only routes (the feeds, search), looked up on the event loop.

    Under load the worker-thread trips of a sync route cost more than the route itself: with
    16 concurrent feed reads, threads contending for the interpreter doubled the CPU time of each.
    A route using this dependency is ``async`` and runs its own statements with ``run_read`` (or in
    one worker-thread trip when they take long); the sign-in lookup here is one short read that never
    waits for a lock (SQLite's readers never block in WAL mode), and the occasional extension of the
    session, a write, is handed to a worker thread."""
    loop = asyncio.get_running_loop()
    return _signed_in(request, _auth(request, db, defer=lambda touch: loop.run_in_executor(None, touch)))


async def run_read(db: Session, work: Callable[[], T]) -> T:
    """A reader route's statements: on the loop with SQLite (in-process, nothing to wait for); in one
    worker-thread trip with a database over the network, where the loop would wait on every reply."""
    if db.get_bind().dialect.name == "sqlite":
        return work()
    return await run_in_threadpool(work)


CurrentUser = Annotated[User, Depends(current_user)]
Reader = Annotated[User, Depends(reader)]
OptionalUser = Annotated[User | None, Depends(optional_user)]
AdminUser = Annotated[User, Depends(admin_user)]


def anonymous_csrf_token(request: Request) -> str:
    """Token for forms shown before sign-in (double-submit cookie)."""
    token = request.cookies.get(ANON_CSRF_COOKIE)
    if not token or len(token) > 64:
        token = request.state.new_anon_csrf = secrets.token_urlsafe(24)
    return token


def csrf_token_for(request: Request) -> str:
    viewer = getattr(request.state, "viewer", None)
    return viewer.csrf_token if viewer else anonymous_csrf_token(request)


async def csrf_protect(request: Request, db: DB) -> None:
    # Reads take no database connection here: the session is created lazily, and only a write
    # looks up who is signed in (the answer is kept for the route's own dependencies).
    if request.method in SAFE_METHODS or request.url.path in CSRF_EXEMPT:
        return
    auth = await run_in_threadpool(get_auth, request, db)
    expected = auth.csrf_token if auth else request.cookies.get(ANON_CSRF_COOKIE)
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf_token")
            sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise Forbidden(
            "The security token (CSRF) is missing or out of date. Reload the page and try again; "
            "API clients send the csrf_token from sign-in as the X-CSRF-Token header.",
            field="csrf_token", code="csrf_failed",
        )
