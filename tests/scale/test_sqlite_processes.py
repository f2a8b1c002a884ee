"""The default installation's SQLite file served by `peerlift serve --workers 2` (two processes, Redis
for the live stream): members posting at once through both get every post written, in one order,
with no error, and every stream, whichever process holds it, receives every post."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from peerlift import db as dbmod
from tests.conftest import build_world, http_login
from tests.factories import add_member, create_user
from tests.scale.processes import REDIS_URL, Process, free_port, redis_or_skip
from tests.sse import StreamReader

MEMBERS = 8
POSTS_EACH = 6


def _connections(pid: int, port: int) -> int:
    """Established TCP connections to ``port`` held by process ``pid``."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    held = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                held += 1
    return held


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


class Served(Process):
    def __init__(self, database_url: str, log_dir: Path, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(["serve", "--port", str(self.port), "--workers", str(workers), "--no-scheduler"],
                         log_dir / "serve.log", {"PEERLIFT_DATABASE_URL": database_url,
                                                 "PEERLIFT_REDIS_URL": REDIS_URL, "PEERLIFT_BASE_URL": self.url,
                                                 "PEERLIFT_STREAM_KEEPALIVE_SECONDS": "0.5"})

    def wait_up(self, timeout: float = 60) -> None:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.alive(), self.log_tail()
            try:
                if httpx.get(f"{self.url}/login", timeout=1).status_code == 200 and len(_children(self.proc.pid)) >= 2:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"peerlift serve --workers 2 did not start: {self.log_tail()}")


def test_two_processes_share_the_sqlite_file(sqlite_database, tmp_path):
    redis_or_skip()
    with dbmod.transaction() as s:
        world = build_world(s)
        people = [world.alice, world.bob, world.pat]
        for i in range(MEMBERS - len(people)):
            person = create_user(s, f"Walker {i + 1}")
            add_member(s, world.circle, person)
            people.append(person)
    dbmod.dispose_engines()
    circle = world.circle.id

    server = Served(sqlite_database, tmp_path, workers=2)
    try:
        server.wait_up()
        clients = [http_login(server.url, p) for p in people]  # a connection each, spread by the kernel

        def held() -> list[int]:
            return [_connections(child, server.port) for child in _children(server.proc.pid)]

        for extra in range(12):  # should the kernel have given them all to one process, sign in again
            if len([n for n in held() if n]) == 2:
                break
            clients.append(http_login(server.url, people[extra % len(people)]))
        streams = [StreamReader(c) for c in clients[:4]]
        for stream in streams:
            stream.__enter__()
        try:
            # the kernel gave the members' connections (four of them streaming) to both processes; the
            # others ask once more first, since an idle connection is closed after KEEP_ALIVE_SECONDS
            # (signing eight people in can take longer on a busy machine)
            for client in clients[len(streams):]:
                assert client.get("/api/v1/me").status_code == 200
            connections = held()
            assert sum(connections) == len(clients) and len([n for n in connections if n]) == 2, connections

            def write(client: httpx.Client) -> list[int]:
                ids = []
                for k in range(POSTS_EACH):
                    r = client.post(f"/api/v1/circles/{circle}/posts", json={"body": f"Evening walk, day {k + 1}"})
                    assert r.status_code == 201, r.text
                    ids.append(r.json()["id"])
                return ids

            with ThreadPoolExecutor(max_workers=len(clients)) as pool:
                written = sorted(i for ids in pool.map(write, clients) for i in ids)
            assert len(written) == len(clients) * POSTS_EACH == len(set(written))

            for stream in streams:  # every post, once, in the order written, on both processes' streams
                got = []
                while len(got) < len(written):
                    got.append(stream.wait_for("post.created").data["post_id"])
                assert got == written
            feed = clients[0].get(f"/api/v1/circles/{circle}/posts", params={"limit": 100})
            assert feed.status_code == 200
            assert sorted(p["id"] for p in feed.json()["posts"]) == written
        finally:
            for stream in streams:
                stream.stop()
            for stream in streams:
                stream.__exit__(None, None, None)
            for client in clients:
                client.close()
    finally:
        server.stop()
    assert "database is locked" not in server.log_tail(200_000)


def test_serve_several_processes_needs_redis(monkeypatch):
    from typer.testing import CliRunner

    import uvicorn
    from peerlift import cli
    from peerlift.settings import get_settings

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append(kw))
    monkeypatch.setenv("PEERLIFT_DATABASE_URL", "sqlite:///unused.db")
    monkeypatch.delenv("PEERLIFT_REDIS_URL", raising=False)
    get_settings.cache_clear()
    try:
        refused = CliRunner().invoke(cli.app, ["serve", "--workers", "2"])
        assert refused.exit_code == 2 and "PEERLIFT_REDIS_URL" in refused.output
        assert calls == []
        monkeypatch.setenv("PEERLIFT_REDIS_URL", REDIS_URL)
        get_settings.cache_clear()
        started = CliRunner().invoke(cli.app, ["serve", "--workers", "2"])
        assert started.exit_code == 0, started.output
        assert calls[-1]["workers"] == 2
    finally:
        get_settings.cache_clear()
