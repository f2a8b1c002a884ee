"""Real peerlift processes for the scale tests: `peerlift serve` and `peerlift worker` started on
free ports against PostgreSQL + Redis, each logging to a file of its own (a pipe nobody reads
would fill and stall the process), stopped at the end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import IN_CI

REDIS_URL = os.environ.get("PEERLIFT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PEERLIFT = str(Path(sys.executable).with_name("peerlift"))


def redis_or_skip() -> None:
    """Redis is needed: under CI=true its absence fails the test, elsewhere it skips it."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        if IN_CI:
            pytest.fail(f"Redis is required in CI and unreachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL} (outside CI)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """One peerlift command in a process of its own."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.args, self.log = args, log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen([PEERLIFT, *args], env={**os.environ, **env}, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class Server(Process):
    """`peerlift serve --no-scheduler` on a free port: it serves, and runs no scheduler worker."""

    def __init__(self, database_url: str, log_dir: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(["serve", "--port", str(self.port), "--no-scheduler"], log_dir / f"serve-{self.port}.log",
                         {"PEERLIFT_DATABASE_URL": database_url, "PEERLIFT_REDIS_URL": REDIS_URL,
                          "PEERLIFT_BASE_URL": self.url, **env})

    def wait_up(self, timeout: float = 45) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"the server on {self.port} exited: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/login", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the server on {self.port} did not start within {timeout:.0f} s: {self.log_tail()}")


class Worker(Process):
    """`peerlift worker`: claims due work and announces its events to the servers through Redis."""

    def __init__(self, database_url: str, log_dir: Path, **env: str) -> None:
        super().__init__(["worker"], log_dir / f"worker-{time.monotonic_ns()}.log",
                         {"PEERLIFT_DATABASE_URL": database_url, "PEERLIFT_REDIS_URL": REDIS_URL, **env})


def start_servers(database_url: str, log_dir: Path, n: int = 2, **env: str) -> list[Server]:
    """``n`` servers started together (they take seconds each to import and start)."""
    servers = [Server(database_url, log_dir, **env) for _ in range(n)]
    try:
        for server in servers:
            server.wait_up()
    except BaseException:
        stop_all(servers)
        raise
    return servers


def stop_all(processes: list[Process]) -> None:
    for process in processes:
        if process.alive():
            process.proc.terminate()
    for process in processes:
        process.stop()
