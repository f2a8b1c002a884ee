"""Fixtures of the scale tests: PostgreSQL (an Alembic-built schema of this test worker's own),
Redis, and real `peerlift serve` / `peerlift worker` processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from peerlift import db as dbmod
from tests.conftest import build_world, migrate_fresh
from tests.scale.processes import Process, Server, Worker, redis_or_skip, start_servers, stop_all


class Cluster:
    """Processes started for one test; all of them are stopped when it ends."""

    def __init__(self, database_url: str, log_dir) -> None:
        self.database_url, self.log_dir = database_url, log_dir
        self.processes: list[Process] = []

    def servers(self, n: int = 2, **env: str) -> list[Server]:
        # Keep-alives every half second: a test's stream readers notice within that when asked to stop.
        env.setdefault("PEERLIFT_STREAM_KEEPALIVE_SECONDS", "0.5")
        servers = start_servers(self.database_url, self.log_dir, n, **env)
        self.processes.extend(servers)
        return servers

    def worker(self, **env: str) -> Worker:
        worker = Worker(self.database_url, self.log_dir, **env)
        self.processes.append(worker)
        return worker


@pytest.fixture
def cluster(postgres_database, tmp_path) -> Iterator[Cluster]:
    """PostgreSQL built by the migrations, Redis reachable, and a way to start processes on them."""
    redis_or_skip()
    migrate_fresh(postgres_database)
    running = Cluster(postgres_database, tmp_path)
    try:
        yield running
    finally:
        stop_all(running.processes)


@pytest.fixture
def two_servers(cluster):
    """The world of tests.conftest and two `peerlift serve --no-scheduler` processes (their URLs)."""
    world, servers = world_and_servers(cluster)
    yield world, [server.url for server in servers]


def world_and_servers(cluster: Cluster, n: int = 2):
    with dbmod.transaction() as s:
        world = build_world(s)
    return world, cluster.servers(n)
