"""Helpers shared by the peerlift benchmarks (bench/*.py).

What lives here is independent of any one scenario:

* databases: a fresh SQLite file, or a dedicated PostgreSQL schema reached through
  ``?options=-csearch_path%3D<schema>``; Alembic migrations; engine clean-up;
* the server: ``.venv/bin/peerlift serve --port P`` as a separate process (exactly what
  users run), with readiness polling, CPU accounting from /proc and a clean stop;
* clients: one ``httpx.AsyncClient`` per simulated person (own cookie jar, own CSRF header);
* closed-loop load: N concurrent workers for a fixed duration after a warm-up, every
  request timed with ``time.perf_counter`` and its status kept;
* statistics (percentiles, rps) and writing results to ``bench/results/<name>-<timestamp>.json``.

Run the benchmarks with the project's venv (``.venv/bin/python bench/<name>.py``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
VENV_BIN = ROOT / ".venv" / "bin"

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# Wide enough for the result tables when the output is a file or a pipe (make bench | tee ...).
console = Console(width=None if sys.stdout.isatty() else 150)

# Make ``import peerlift`` work even when run with a python that has the package only in src/.
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))


# --- small utilities ------------------------------------------------------------------------------

def timestamp() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
                                    capture_output=True, text=True, timeout=5).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", False
    return {
        "cpus": os.cpu_count(),
        "loadavg_at_start": load_average(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": commit,
        "src_dirty": dirty,
    }


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def warn_if_busy(what: str = "the benchmark") -> None:
    """Other work on the machine (tests, browsers) skews every number: say so up front."""
    load, cpus = load_average(), os.cpu_count() or 1
    if load and load[0] > 0.5 * cpus:
        console.print(f"[yellow]Warning:[/yellow] load average {load[0]:.1f} on {cpus} cores before {what} "
                      f"starts: other processes compete for CPU and the results will be noisy.")


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}-{timestamp()}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def use_cheap_password_hashing() -> None:
    """Real argon2 with cheap parameters, for the seeding process only.

    The server verifies each hash with the parameters encoded in it, so signing in still
    works (and the server re-hashes with its own parameters on the first sign-in).
    """
    from argon2 import PasswordHasher

    import peerlift.identity.service as identity_service

    identity_service._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


# --- databases --------------------------------------------------------------------------------------

def sqlite_url(directory: Path, name: str = "peerlift.db") -> str:
    return f"sqlite:///{directory / name}"


def postgres_base_url() -> str:
    return os.environ.get("PEERLIFT_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote('-csearch_path=' + schema, safe='-')}"


def postgres_problem(url: str) -> str | None:
    """None when PostgreSQL answers at ``url``; otherwise a one-line reason."""
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "skip this backend"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"{exc.__class__.__name__}: {first}"[:300]
    return None


def reset_postgres_schema(base_url: str, schema: str) -> str:
    """Drop and create ``schema``; return a URL whose connections use it as search_path."""
    from sqlalchemy import create_engine, text

    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        admin.dispose()
    return with_search_path(base_url, schema)


def drop_postgres_schema(base_url: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


def migrate(url: str) -> None:
    """The schema exactly as production gets it: Alembic to head."""
    from peerlift.migrate import upgrade

    upgrade(url)


def release_engines() -> None:
    """Close every pooled connection this process holds (before deleting a file or a schema)."""
    from peerlift.db import dispose_engines

    dispose_engines()


def sync_postgres_sequences(conn, tables: Sequence[str]) -> None:
    """After inserting explicit ids on PostgreSQL, move each ``<table>.id`` sequence past them."""
    from sqlalchemy import text

    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        conn.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
        ))


def vacuum_analyze_postgres(url: str, tables: Sequence[str]) -> None:
    """What autovacuum does on its own a little after a bulk load; done now so plans are settled."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for table in tables:
                conn.execute(text(f"VACUUM (ANALYZE) {table}"))
    finally:
        engine.dispose()


# --- the server process -----------------------------------------------------------------------------

def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError):
        return 100


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (Linux /proc), or None when unavailable."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    # fields[0] is the state (3rd field of the file); utime and stime are the 14th and 15th.
    return (int(fields[11]) + int(fields[12])) / _clock_ticks()


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(raw.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


class Server:
    """``peerlift serve`` in its own process, as users run it (uvicorn, one process)."""

    def __init__(self, database_url: str, *, log_path: Path, port: int | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.database_url = database_url
        self.port = port or free_port()
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        self._log = None
        self.startup_seconds: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        exe = VENV_BIN / "peerlift"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "peerlift.cli"]
        env = dict(os.environ)
        env.update({
            "PEERLIFT_DATABASE_URL": self.database_url,
            "PEERLIFT_BASE_URL": self.base_url,
            # Load clients post faster than any person; the posting limits are not what is measured.
            "PEERLIFT_POSTS_PER_MINUTE": "1000",
            "PEERLIFT_POSTS_PER_HOUR": "100000",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        self._log = open(self.log_path, "ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [*cmd, "serve", "--port", str(self.port)],
            cwd=str(ROOT), env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        self._wait_ready(timeout)
        self.startup_seconds = time.perf_counter() - t0

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"the server exited with code {self.proc.returncode}:\n{self.log_tail()}")
                try:
                    client.get("/api/v1/me")  # 401 without a session: the app is up
                    return
                except httpx.TransportError:
                    time.sleep(0.1)
        raise RuntimeError(f"the server did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float | None:
        return process_cpu_seconds(self.proc.pid) if self.proc is not None else None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def stop(self, grace: float = 10.0) -> None:
        """Terminate (SIGTERM, uvicorn's graceful shutdown), then kill if it lingers."""
        proc, self.proc = self.proc, None
        try:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=grace)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def __enter__(self) -> Server:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def nginx_binary() -> str | None:
    """nginx on the PATH, Debian's, or the one ``make nginx`` unpacks into the venv."""
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx", str(ROOT / ".venv/nginx/usr/sbin/nginx")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


class Balanced:
    """The scaled set-up on one machine: ``processes`` ``peerlift serve`` on ports of their own, with Redis
    for the live stream, behind nginx balancing requests as ``deploy/nginx/peerlift.conf`` does
    (``least_conn``, HTTP/1.1 keep-alive to the processes), over plain HTTP here, with the processes'
    access log off as ``deploy/peerlift.env.example`` has it (nginx's is off too). The same interface as
    ``Server``; CPU is that of every process and nginx together."""

    def __init__(self, database_url: str, *, log_dir: Path, processes: int, redis_url: str,
                 extra_env: dict[str, str] | None = None) -> None:
        self.servers = [Server(database_url, log_path=log_dir / f"server-{i}.log",
                               extra_env={"PEERLIFT_REDIS_URL": redis_url, "PEERLIFT_ACCESS_LOG": "false",
                                          **(extra_env or {})})
                        for i in range(processes)]
        self.port = free_port()
        log_dir.mkdir(parents=True, exist_ok=True)
        self.dir = log_dir / f"nginx-{self.port}"
        self.nginx: subprocess.Popen | None = None
        self.startup_seconds: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _config(self) -> str:
        d = self.dir
        upstream = "".join(f"    server 127.0.0.1:{s.port};\n" for s in self.servers)
        return (
            f"daemon off;\nworker_processes 1;\npid {d / 'nginx.pid'};\nerror_log {d / 'error.log'};\n"
            "events { worker_connections 1024; }\n"
            f"http {{\n  access_log off;\n  client_body_temp_path {d / 'body'};\n  proxy_temp_path {d / 'proxy'};\n"
            f"  fastcgi_temp_path {d / 'fastcgi'};\n  uwsgi_temp_path {d / 'uwsgi'};\n  scgi_temp_path {d / 'scgi'};\n"
            f"  upstream peerlift {{\n    least_conn;\n{upstream}    keepalive 32;\n    keepalive_timeout 4s;\n  }}\n"
            f"  server {{\n    listen 127.0.0.1:{self.port};\n    client_max_body_size 2m;\n"
            "    proxy_http_version 1.1;\n    proxy_set_header Connection \"\";\n    proxy_set_header Host $host;\n"
            "    proxy_set_header X-Forwarded-For $remote_addr;\n    proxy_set_header X-Forwarded-Proto $scheme;\n"
            "    location / { proxy_pass http://peerlift; }\n  }\n}\n"
        )

    def start(self, timeout: float = 60.0) -> None:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("several processes are measured behind nginx: run `make nginx` (or install nginx)")
        t0 = time.perf_counter()
        for server in self.servers:
            server.start(timeout)
        self.dir.mkdir(parents=True, exist_ok=True)
        for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.dir / name).mkdir(exist_ok=True)
        (self.dir / "nginx.conf").write_text(self._config())
        args = [binary, "-p", str(self.dir), "-e", str(self.dir / "error.log"), "-c", str(self.dir / "nginx.conf")]
        self.nginx = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=2.0) as client:
            while True:
                if self.nginx.poll() is not None:
                    raise RuntimeError(f"nginx exited: {self.log_tail()}")
                try:
                    if client.get("/api/v1/me").status_code == 401:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not answer within {timeout:.0f} s: {self.log_tail()}")
                time.sleep(0.1)
        self.startup_seconds = time.perf_counter() - t0

    def cpu_seconds(self) -> float | None:
        pids = [pid for s in self.servers if s.proc is not None for pid in process_tree(s.proc.pid)]
        if self.nginx is not None:
            pids += process_tree(self.nginx.pid)
        return sum(t for t in (process_cpu_seconds(pid) for pid in pids) if t is not None)

    def log_tail(self, lines: int = 30) -> str:
        try:
            nginx_log = (self.dir / "error.log").read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            nginx_log = []
        return "\n".join([*(s.log_tail(lines) for s in self.servers), *nginx_log])

    def stop(self) -> None:
        nginx, self.nginx = self.nginx, None
        if nginx is not None and nginx.poll() is None:
            nginx.terminate()
            try:
                nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                nginx.kill()
        for server in self.servers:
            server.stop()


# --- API clients ------------------------------------------------------------------------------------

@dataclass
class ApiClient:
    """One signed-in person: their own connection, cookie jar and CSRF header."""

    http: httpx.AsyncClient
    email: str
    user_id: int
    label: str = ""
    raw: RawHttp | None = None  # the same person through the light client (see ``light``)

    def light(self) -> RawHttp:
        """This person's session on a connection of the light client (opened at the first request)."""
        if self.raw is None:
            cookie = "; ".join(f"{name}={value}" for name, value in self.http.cookies.items())
            self.raw = RawHttp(str(self.http.base_url), {"Cookie": cookie,
                                                         "X-CSRF-Token": self.http.headers["X-CSRF-Token"]})
        return self.raw

    async def aclose(self) -> None:
        if self.raw is not None:
            await self.raw.aclose()
        await self.http.aclose()


async def sign_in(base_url: str, email: str, password: str, *, label: str = "",
                  timeout: float = 30.0) -> ApiClient:
    http = httpx.AsyncClient(base_url=base_url, timeout=timeout,
                             limits=httpx.Limits(max_connections=4, max_keepalive_connections=4))
    try:
        response = await http.post("/api/v1/auth/login", json={"email": email, "password": password})
        if response.status_code != 200:
            raise RuntimeError(f"sign-in of {email} failed: {response.status_code} {response.text[:300]}")
        body = response.json()
        if "peerlift_session" not in http.cookies:
            raise RuntimeError(f"sign-in of {email} set no peerlift_session cookie")
        http.headers["X-CSRF-Token"] = body["csrf_token"]
        return ApiClient(http=http, email=email, user_id=body["user"]["id"], label=label)
    except BaseException:
        await http.aclose()
        raise


async def sign_in_all(base_url: str, people: Sequence[tuple[str, str, str]]) -> list[ApiClient]:
    """``people``: (email, password, label) tuples; signs them in concurrently."""
    results = await asyncio.gather(*(sign_in(base_url, e, p, label=lbl) for e, p, lbl in people),
                                   return_exceptions=True)
    clients = [r for r in results if isinstance(r, ApiClient)]
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        await asyncio.gather(*(c.aclose() for c in clients))
        raise failures[0]
    return clients


class RawResponse:
    """What the load scenarios read of an answer."""

    __slots__ = ("status_code", "content")

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code, self.content = status_code, content

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")


class RawHttp:
    """A light load generator: one keep-alive HTTP/1.1 connection with fixed headers (a signed-in
    person's cookie and CSRF token), requests written as bytes and answers read by Content-Length or
    chunks. An httpx request costs the client about 0.6 ms of CPU; on a machine of two cores shared
    with the server, that much client work delays the server it measures. This costs a tenth of it."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float = 30.0) -> None:
        host_port = base_url.split("://", 1)[1].rstrip("/")
        self.host, _, port = host_port.partition(":")
        self.port = int(port or 80)
        self.timeout = timeout
        lines = [f"Host: {host_port}", *(f"{k}: {v}" for k, v in headers.items())]
        self._headers = ("\r\n".join(lines) + "\r\n").encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, url: str, *, json_body: Any = None) -> RawResponse:
        body = json.dumps(json_body).encode() if json_body is not None else b""
        head = f"{method} {url} HTTP/1.1\r\n".encode() + self._headers
        if json_body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
        return await asyncio.wait_for(self._exchange(head + b"\r\n" + body), self.timeout)

    async def _exchange(self, message: bytes) -> RawResponse:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        try:
            self._writer.write(message)
            head = await self._reader.readuntil(b"\r\n\r\n")
            status_line, _, header_block = head.partition(b"\r\n")
            status = int(status_line.split(b" ", 2)[1])
            headers = {}
            for line in header_block.split(b"\r\n"):
                name, sep, value = line.partition(b":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            if b"content-length" in headers:
                content = await self._reader.readexactly(int(headers[b"content-length"]))
            elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                content = await self._read_chunks()
            else:
                content = await self._reader.read()
                await self.aclose()
            if headers.get(b"connection", b"").lower() == b"close":
                await self.aclose()
            return RawResponse(status, content)
        except BaseException:
            await self.aclose()
            raise

    async def _read_chunks(self) -> bytes:
        parts = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    async def aclose(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass


# --- closed-loop load ----------------------------------------------------------------------------------

@dataclass
class Sample:
    start: float       # perf_counter at send
    latency: float     # seconds
    status: int        # HTTP status; 0 when no response (transport error)
    tag: str = ""      # free label, e.g. the kind of reader


class Recorder:
    """Times requests; keeps those sent inside the measurement window."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.failures: Counter[str] = Counter()
        self.record_from = float("inf")
        self.stop_at = float("inf")

    @property
    def running(self) -> bool:
        return time.perf_counter() < self.stop_at

    async def request(self, http: httpx.AsyncClient | RawHttp, method: str, url: str, *, tag: str = "",
                      **kwargs) -> httpx.Response | RawResponse | None:
        t0 = time.perf_counter()
        failure = ""
        try:
            if isinstance(http, RawHttp):
                response = await http.request(method, url, json_body=kwargs.pop("json", None), **kwargs)
            else:
                response = await http.request(method, url, **kwargs)
            status = response.status_code
            if not 200 <= status < 300:
                failure = f"HTTP {status}"
        except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as exc:
            response, status, failure = None, 0, exc.__class__.__name__
        latency = time.perf_counter() - t0
        if self.record_from <= t0 < self.stop_at:
            self.samples.append(Sample(t0, latency, status, tag))
            if failure:
                self.failures[failure] += 1
        return response


@dataclass
class LoadResult:
    samples: list[Sample]
    failures: dict[str, int]
    window_seconds: float
    client_cpu_seconds: float
    server_cpu_seconds: float | None
    worker_errors: list[str] = field(default_factory=list)


Worker = Callable[[Recorder, Any, int], Awaitable[None]]


async def closed_loop(clients: Sequence[Any], worker: Worker, *, duration: float, warmup: float,
                      server: Server | None = None) -> LoadResult:
    """Run ``worker(recorder, client, index)`` for every client at once.

    Each worker loops ``while recorder.running`` issuing requests through
    ``recorder.request``. Requests sent during the first ``warmup`` seconds are not kept.
    Closed loop: a client sends its next request when the previous answer arrived, so the
    latencies include queueing in the server under ``len(clients)``-way concurrency.
    """
    recorder = Recorder()
    start = time.perf_counter()
    recorder.record_from = start + warmup
    recorder.stop_at = recorder.record_from + duration

    cpu_marks: dict[str, float | None] = {}

    async def _mark_window_start() -> None:
        await asyncio.sleep(max(0.0, recorder.record_from - time.perf_counter()))
        cpu_marks["client"] = time.process_time()
        cpu_marks["server"] = server.cpu_seconds() if server else None

    marker = asyncio.create_task(_mark_window_start())
    results = await asyncio.gather(*(worker(recorder, c, i) for i, c in enumerate(clients)),
                                   return_exceptions=True)
    await marker
    end = time.perf_counter()
    client_cpu = time.process_time() - cpu_marks["client"]
    server_cpu = None
    if server is not None and cpu_marks.get("server") is not None:
        now_cpu = server.cpu_seconds()
        server_cpu = now_cpu - cpu_marks["server"] if now_cpu is not None else None
    last_done = max((s.start + s.latency for s in recorder.samples), default=end)
    errors = [f"{r.__class__.__name__}: {r}" for r in results if isinstance(r, BaseException)]
    return LoadResult(
        samples=recorder.samples,
        failures=dict(recorder.failures),
        window_seconds=max(1e-9, last_done - recorder.record_from),
        client_cpu_seconds=client_cpu,
        server_cpu_seconds=server_cpu,
        worker_errors=errors,
    )


def run_async(coro):
    """asyncio.run, on uvloop when available (less client CPU on a shared machine)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


# --- statistics -------------------------------------------------------------------------------------------

def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); ``q`` in [0, 100]."""
    if not sorted_values:
        return float("nan")
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarise(samples: Sequence[Sample], window_seconds: float) -> dict[str, Any]:
    """Counts, rps and latency percentiles (ms) of successful (2xx) requests; errors counted apart."""
    ok = sorted(s.latency * 1000 for s in samples if 200 <= s.status < 300)
    errors = sum(1 for s in samples if not 200 <= s.status < 300)
    return {
        "requests": len(samples),
        "ok": len(ok),
        "errors": errors,
        "rps": len(samples) / window_seconds if window_seconds > 0 else 0.0,
        "p50_ms": percentile(ok, 50),
        "p90_ms": percentile(ok, 90),
        "p99_ms": percentile(ok, 99),
        "max_ms": ok[-1] if ok else float("nan"),
        "mean_ms": sum(ok) / len(ok) if ok else float("nan"),
    }


def summarise_load(result: LoadResult, cpus: int | None = None) -> dict[str, Any]:
    cpus = cpus or os.cpu_count() or 1
    out = summarise(result.samples, result.window_seconds)
    out.update({
        "seconds": result.window_seconds,
        "loadavg_after": load_average(),
        "failures": result.failures,
        "worker_errors": result.worker_errors,
        # Share of ONE core (100 % = one core busy); the machine has `cpus` cores.
        "client_cpu_pct": 100.0 * result.client_cpu_seconds / result.window_seconds,
        "server_cpu_pct": (100.0 * result.server_cpu_seconds / result.window_seconds
                           if result.server_cpu_seconds is not None else None),
    })
    tags = sorted({s.tag for s in result.samples if s.tag})
    if tags:
        out["by_tag"] = {t: summarise([s for s in result.samples if s.tag == t], result.window_seconds)
                         for t in tags}
    return out


def fmt_ms(value: float | None) -> str:
    if value is None or value != value:  # NaN
        return "–"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def fmt_count(n: int) -> str:
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return f"{n:,}"


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    t0 = time.perf_counter()
    yield lambda: time.perf_counter() - t0
