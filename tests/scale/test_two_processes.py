"""PostgreSQL + Redis + two `peerlift serve` processes: a post made through one process
reaches a stream held on the other."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from peerlift import db as dbmod
from tests.conftest import IN_CI, build_world, http_login, migrate_fresh
from tests.sse import StreamReader

REDIS_URL = os.environ.get("PEERLIFT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PEERLIFT = str(Path(sys.executable).with_name("peerlift"))


def _redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        if IN_CI:
            pytest.fail(f"Redis is required in CI and unreachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL} (outside CI)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(url: str, port: int, **env) -> subprocess.Popen:
    full = {**os.environ, "PEERLIFT_DATABASE_URL": url, "PEERLIFT_REDIS_URL": REDIS_URL,
            "PEERLIFT_BASE_URL": f"http://127.0.0.1:{port}", **env}
    return subprocess.Popen([PEERLIFT, "serve", "--port", str(port), "--no-scheduler"], env=full,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_up(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server on {port} exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/login", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"server on {port} did not start")


@pytest.fixture
def two_servers(postgres_database):
    _redis_or_skip()
    migrate_fresh(postgres_database)
    with dbmod.transaction() as s:
        world = build_world(s)
    ports = [_free_port(), _free_port()]
    procs = [_serve(postgres_database, port) for port in ports]
    try:
        for port, proc in zip(ports, procs):
            _wait_up(port, proc)
        yield world, [f"http://127.0.0.1:{p}" for p in ports]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_a_post_through_one_process_reaches_a_stream_on_the_other(two_servers):
    world, (one, two) = two_servers
    alice = http_login(one, world.alice)
    bob = http_login(two, world.bob)
    carol = http_login(two, world.carol)
    with StreamReader(bob) as bobs, StreamReader(carol) as carols:
        started = time.monotonic()
        created = alice.post(f"/api/v1/circles/{world.circle.id}/posts", json={"body": "Across processes"}).json()
        frame = bobs.wait_for("post.created", post_id=created["id"])
        assert time.monotonic() - started < 2
        assert frame.data["circle_id"] == world.circle.id
        # a burst, in order, nothing lost
        ids = [alice.post(f"/api/v1/circles/{world.circle.id}/posts", json={"body": f"n{i}"}).json()["id"]
               for i in range(20)]
        got = []
        while len(got) < len(ids):
            got.append(bobs.wait_for("post.created").data["post_id"])
        assert got == ids
        assert not [f for f in carols.collect(0.5) if f.data.get("circle_id") == world.circle.id]
    # a reply through the second process reaches alice's notification stream on the first
    with StreamReader(alice) as alices:
        bob.post(f"/api/v1/posts/{created['id']}/comments", json={"body": "Seen it"})
        assert alices.wait_for("notification.created").data["kind"] == "reply"
