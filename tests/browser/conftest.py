"""Browser tests: the real app served by uvicorn on a free port, driven by Debian's Chromium.

Every test gets its own SQLite database (the ``sqlite_database`` fixture of tests/conftest.py),
its own world of personas and its own server, so the tests are independent of order and of
each other, and safe under ``pytest -n auto --dist loadfile``.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, Response, expect

from peerlift import db as dbmod
from tests.conftest import PASSWORD, World, build_world

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Form posts redirect back at once; nothing here should take long.
expect.set_options(timeout=3_000)


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict:
    """Launch Debian's Chromium instead of Playwright's own download (not available here)."""
    return {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}


@pytest.fixture
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "locale": "en-GB", "timezone_id": "Europe/London"}


@pytest.fixture
def context(live, context: BrowserContext) -> BrowserContext:
    """pytest-playwright's context, opened after the server starts and so closed before it stops:
    the pages keep a live stream (EventSource) open, which would hold up the server's shutdown."""
    context.set_default_timeout(10_000)
    context.set_default_navigation_timeout(10_000)
    return context


# --- the live server -----------------------------------------------------------------------------

@dataclass
class Live:
    url: str
    world: World

    def at(self, path: str) -> str:
        return f"{self.url}{path}"

    @property
    def circle_url(self) -> str:
        return self.at(f"/circles/{self.world.circle.id}")

    # Things that happened "beforehand", written through the service layer as the product does.
    def create_post(self, author, body: str, **poll) -> int:
        from peerlift.community.service import create_post
        from peerlift.policy import circle_access

        with dbmod.transaction() as s:
            return create_post(s, circle_access(s, author, self.world.circle.id), body, **poll).id

    def send_message(self, sender, recipient, body: str) -> int:
        from peerlift.community.service import open_conversation, send_message
        from peerlift.identity.models import User

        with dbmod.transaction() as s:
            me, other = s.get(User, sender.id), s.get(User, recipient.id)
            return send_message(s, me, open_conversation(s, me, other), body).id

    def accept_rules(self, person) -> None:
        from peerlift.community.service import accept_rules
        from peerlift.policy import circle_access

        with dbmod.transaction() as s:
            accept_rules(s, circle_access(s, person, self.world.circle.id))


@pytest.fixture
def live(sqlite_database) -> Iterator[Live]:
    """A fresh world in a fresh SQLite database, served for real on 127.0.0.1:<free port>."""
    from peerlift.app import create_app

    with dbmod.transaction() as s:
        world = build_world(s)

    # Bind the socket ourselves and hand it to uvicorn: no window in which another worker
    # could take the port.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # The whole app, lifespan included (it starts the live-event dispatcher). uvicorn leaves the
    # signal handlers alone off the main thread.
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning",
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"uvicorn-{port}")
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the test server stopped while starting")
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start within 15 s")
        time.sleep(0.02)
    try:
        yield Live(url=f"http://127.0.0.1:{port}", world=world)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


# --- helpers that read like the story ----------------------------------------------------------

def load(page: Page, action, status: int = 200) -> Response:
    """Run ``action`` (a click, a ``goto``), wait for the page it leads to (after redirects) and
    check its HTTP status, so that a server error fails at once and says what it was."""
    with page.expect_navigation() as navigation:
        action() if callable(action) else page.goto(action)
    response = navigation.value
    assert response is not None, "no page was loaded"
    assert response.status == status, (
        f"{response.request.method} {response.url} answered {response.status}, not {status}: "
        f"{response.text()[:500]}"
    )
    return response


def sign_in(page: Page, live: Live, person, password: str = PASSWORD) -> None:
    page.goto(live.at("/login"))
    page.get_by_label("Email address").fill(person.email)
    page.get_by_label("Password").fill(password)
    load(page, page.get_by_role("button", name="Sign in").click)
    expect(page).to_have_url(re.compile(r"/circles$"))


@pytest.fixture
def second_context(live, browser: Browser, browser_context_args: dict) -> Iterator:
    """``second_context(**options)``: another browser context (another person, another device)."""
    contexts: list[BrowserContext] = []

    def make(**options) -> BrowserContext:
        context = browser.new_context(**{**browser_context_args, **options})
        context.set_default_timeout(10_000)
        context.set_default_navigation_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
