"""RequestLimit: a saturated process queues requests instead of exhausting its database pool."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from peerlift import db as dbmod
from peerlift.app import REQUESTS_AT_ONCE, RequestLimit, create_app


def run_concurrently(limited: RequestLimit, paths: list[str]) -> None:
    async def main() -> None:
        await asyncio.gather(*(limited({"type": "http", "path": path}, None, None) for path in paths))

    # A loop of its own in a thread of its own: a browser test earlier in this process may have left
    # Playwright's loop running in the main thread.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, main()).result()


def test_requests_beyond_the_limit_wait_their_turn_and_all_are_served():
    inside, most, served = 0, 0, 0

    async def app(scope, receive, send):
        nonlocal inside, most, served
        inside += 1
        most = max(most, inside)
        await asyncio.sleep(0.01)
        inside -= 1
        served += 1

    run_concurrently(RequestLimit(app, limit=3), ["/api/v1/circles"] * 20 + ["/login"] * 5)
    assert most == 3 and served == 25


def test_live_streams_and_static_files_are_not_counted():
    inside, most = 0, 0

    async def app(scope, receive, send):
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await asyncio.sleep(0.01)
        inside -= 1

    run_concurrently(RequestLimit(app, limit=2), ["/api/v1/stream"] * 8 + ["/static/app.js"] * 4)
    assert most == 12


def test_the_app_queues_below_its_database_pool(database):
    app = create_app()
    assert RequestLimit in [m.cls for m in app.user_middleware]
    pool = dbmod.get_engine().pool
    assert REQUESTS_AT_ONCE < pool.size() + pool._max_overflow  # room for stream openings and the dispatcher
