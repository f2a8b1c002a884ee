"""Live-stream benchmark: how fast does a post reach N open streams, and what does a stream cost?

    .venv/bin/python bench/stream.py                   # N = 20, 100, 1000 and the 10,000 case
    .venv/bin/python bench/stream.py --quick           # smoke run: N = 20, 100, fewer posts
    .venv/bin/python bench/stream.py --sizes 20,100 --big 0 --backend postgresql

For each N (a fresh database each time: SQLite in a temp dir, or PostgreSQL in the schema
``bench_stream`` at $PEERLIFT_BENCH_POSTGRES_URL, dropped at the end):

1. Alembic creates the schema. A facilitator (the poster) and the circle are created through the
   service layer; the N receivers, their memberships and their sign-in sessions (``auth_session``
   rows: sha256 of a random token, a CSRF token, expiry in 14 days, as ``start_session`` writes
   them) are bulk-inserted with SQLAlchemy Core, 5,000 rows a batch, all with one cheap argon2 hash.
2. ``.venv/bin/peerlift serve --port P --no-scheduler`` runs as its own process (uvicorn, one
   process, PEERLIFT_RUN_WORKER=false).
3. The poster signs in over HTTP (httpx). 2 x --open-concurrency streams (at most N) are opened,
   receive one warm-up post and are closed to warm the server, then its RSS (VmRSS, /proc/<pid>/status) is read; the N
   receivers open their streams
   (``--open-concurrency`` openings in flight; a stream counts as open at its first frame,
   ``retry:``, sent after the server registered it); the RSS is read again. Openings are kept to
   20 in flight (--open-concurrency): an opening holds a pooled database connection from the
   sign-in check until the route returns and needs one of the 40 worker threads for the sign-in
   check and again for its audience and replay queries. With a few hundred openings in flight
   (a reconnect storm after a restart), all 40 threads wait for a connection in the sign-in check
   while every connection belongs to an opening waiting for a thread, and nothing moves until the
   30 s pool timeout answers 500 (measured at f6b6903: 100 in flight pass, 200 and 500 stall).
   Memory per connection = (RSS after - RSS before) / N, in KiB (the kB of /proc).
4. The poster makes M posts one at a time (POST /api/v1/circles/{id}/posts, httpx); the send time
   is taken just before each POST. The next post goes out once every receiver has the previous one
   (or after 5 s) and a short gap (--gap): this measures the fan-out of one event, not a backlog.
   Each receiver notes the arrival of every ``post.created`` frame (matched by post_id).
   Latency = arrival - send. Lost = M x N - received, after a grace period of 5 s.
5. The streams are closed and the server stopped.

The client is a small asyncio one (bench/_sse.py: one asyncio.Protocol per stream, a hand-written HTTP/1.1 GET,
chunked decoding and SSE parsing on bytes), on uvloop, in this process; the open-files limit is
raised to the hard limit first. It runs on the same 2-core machine as the server and competes with
it for CPU: at large N, part of each latency is the client's own time reading N frames.

``--gc-stats`` also records the server's garbage-collector pauses (bench/_gcprobe/sitecustomize.py,
put on the server's PYTHONPATH): how many full collections ran while the streams opened and while
the posts went out, and the longest. Off by default, so that the server runs exactly as users run it.

Targets (product spec): p99 <= 50 ms at N = 100; one process holding 10,000 open streams with a
fan-out p99 <= 250 ms, 0 lost and <= 50 KB of memory per connection.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from _common import (  # noqa: E402
    BENCH_DIR,
    ROOT,
    VENV_BIN,
    Server,
    console,
    drop_postgres_schema,
    fmt_count,
    fmt_ms,
    machine_info,
    migrate,
    percentile,
    postgres_base_url,
    postgres_problem,
    release_engines,
    reset_postgres_schema,
    run_async,
    sign_in,
    sqlite_url,
    sync_postgres_sequences,
    use_cheap_password_hashing,
    vacuum_analyze_postgres,
    write_results,
)
from _sse import Receiver, Tracker  # noqa: E402

SCHEMA = "bench_stream"
PASSWORD = "bench-stream-password"
BATCH = 5_000
GRACE_SECONDS = 5.0
PER_POST_TIMEOUT = 5.0
WARMUP_STREAMS = 5

TARGET_SMALL_N = 100
TARGET_SMALL_P99_MS = 50.0
TARGET_BIG_N = 10_000
TARGET_BIG_P99_MS = 250.0
TARGET_BIG_KB_PER_CONN = 50.0


# --- the server: `peerlift serve --no-scheduler` ------------------------------------------------------

class StreamServer(Server):
    """_common.Server, started with ``--no-scheduler`` (the streams' process runs no worker)."""

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
            "PEERLIFT_RUN_WORKER": "false",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        self._log = open(self.log_path, "ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [*cmd, "serve", "--port", str(self.port), "--no-scheduler"],
            cwd=str(ROOT), env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        self._wait_ready(timeout)
        self.startup_seconds = time.perf_counter() - t0

    def rss_kib(self) -> int | None:
        return rss_kib(self.proc.pid) if self.proc is not None else None

    def gc_stats(self) -> dict[str, Any] | None:
        """What bench/_gcprobe recorded in the server (only with --gc-stats)."""
        path = self.extra_env.get("PEERLIFT_BENCH_GC_OUT")
        if not path:
            return None
        try:
            return json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return None


def gc_window(server: StreamServer, since: float, until: float) -> dict[str, Any] | None:
    """Full (generation 2) collections in the server between two time.time() marks."""
    stats = server.gc_stats()
    if stats is None:
        return None
    pauses = [p for at, p in stats["gen2_pauses"] if since <= at <= until]
    return {"full_collections": len(pauses), "full_seconds": sum(pauses),
            "full_max_seconds": max(pauses, default=0.0), "generations": stats["generations"]}


def rss_kib(pid: int | str = "self") -> int | None:
    """VmRSS of a process, in KiB (/proc's "kB"), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def raise_open_files_limit() -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# --- seeding --------------------------------------------------------------------------------------------

@dataclass
class Seeded:
    space_id: int
    poster_email: str
    tokens: list[str]       # session cookie values of the receivers
    seconds: float


def seed(url: str, n: int) -> Seeded:
    """The poster and the circle through the services; receivers, memberships and sessions with Core."""
    from sqlalchemy import func, insert, select

    from peerlift.community import service as community
    from peerlift.community.models import CircleRole, Membership
    from peerlift.db import get_engine, transaction, utcnow
    from peerlift.identity import service as identity
    from peerlift.identity.models import AuthSession, Role, User

    use_cheap_password_hashing()
    t0 = time.perf_counter()
    engine = get_engine(url)
    with transaction(engine) as s:
        poster = identity.create_user(s, email="poster@bench.test", password=PASSWORD,
                                      display_name="Pat Poster", role=Role.facilitator, timezone="Europe/London")
        space = community.create_circle(s, poster, name="Stream Bench Circle",
                                        description="A circle seeded by bench/stream.py.",
                                        rules="1. Be kind.", timezone="Europe/London")
        space_id = space.id

    password_hash = identity.hash_password(PASSWORD)  # cheap parameters: one hash for everyone
    now = utcnow()
    expires = now + dt.timedelta(days=14)
    tokens = [secrets.token_urlsafe(32) for _ in range(n)]
    write_engine = engine.execution_options(peerlift_write=True)
    with write_engine.begin() as conn:
        base = (conn.scalar(select(func.max(User.id))) or 0) + 1
        for start in range(0, n, BATCH):
            idx = range(start, min(n, start + BATCH))
            conn.execute(insert(User.__table__), [{
                "id": base + i, "email": f"receiver{i + 1:05d}@bench.test", "handle": f"receiver{i + 1:05d}",
                "password_hash": password_hash, "display_name": f"Receiver {i + 1}", "pronouns": "", "bio": "",
                "timezone": "Europe/London", "role": Role.participant, "is_active": True, "created_at": now,
            } for i in idx])
            conn.execute(insert(Membership.__table__), [{
                "space_id": space_id, "user_id": base + i, "role": CircleRole.member, "joined_at": now,
                "rules_accepted_at": now, "last_read_post_id": 0,
            } for i in idx])
            conn.execute(insert(AuthSession.__table__), [{
                "token_hash": hashlib.sha256(tokens[i].encode()).hexdigest(),
                "csrf_token": secrets.token_urlsafe(32), "user_id": base + i, "created_at": now,
                "last_seen_at": now, "expires_at": expires, "ip_address": "127.0.0.1",
                "user_agent": "peerlift-bench-sse",
            } for i in idx])
        sync_postgres_sequences(conn, ["user_account"])
    if engine.dialect.name == "postgresql":
        vacuum_analyze_postgres(url, ["user_account", "membership", "auth_session", "event"])
    return Seeded(space_id=space_id, poster_email="poster@bench.test", tokens=tokens,
                  seconds=time.perf_counter() - t0)


# --- one run ---------------------------------------------------------------------------------------------

def posts_for(n: int, quick: bool) -> int:
    if n <= 100:
        return 10 if quick else 30
    if n <= 1000:
        return 5 if quick else 10
    return 5


async def hold_and_post(server: StreamServer, seeded: Seeded, n: int, posts: int, args) -> dict[str, Any]:
    host, port = "127.0.0.1", server.port
    out: dict[str, Any] = {}
    poster = await sign_in(server.base_url, seeded.poster_email, PASSWORD, label="poster")
    post_path = f"/api/v1/circles/{seeded.space_id}/posts"
    tasks: list[asyncio.Task] = []
    receivers: list[Receiver] = []
    try:
        # Warm-up: streams opened and closed (twice as many as open at once), so that the baseline
        # RSS already has what any burst of openings brings in once: imports, compiled SQL, the
        # thread pool's threads and the pooled database connections (SQLite page caches).
        n_warm = min(n, max(WARMUP_STREAMS, 2 * args.open_concurrency))
        warm = Tracker(receivers=n_warm)
        warm_slots = asyncio.Semaphore(args.open_concurrency)
        warm_rx = [Receiver(host, port, seeded.tokens[i], warm) for i in range(n_warm)]
        warm_tasks = [asyncio.create_task(r.run(warm_slots)) for r in warm_rx]
        await asyncio.wait_for(warm.all_open.wait(), 60)
        # One post reaches the warm streams: the first write of a fresh process compiles its SQL and
        # fills its caches (about 50 ms more than any later post), which is not the fan-out measured.
        response = await poster.http.post(post_path, json={"body": "Warm-up post: hello everyone."})
        if response.status_code == 201:
            await warm.wait_delivered(response.json()["id"], PER_POST_TIMEOUT)
        warm.stopping = True
        for t in warm_tasks:
            t.cancel()
        await asyncio.gather(*warm_tasks, return_exceptions=True)
        for r in warm_rx:
            r.close()
        await asyncio.sleep(1.0)  # let the server notice the disconnects and drop the streams

        rss_before = server.rss_kib()
        client_rss_before = rss_kib()
        out["rss_before_kib"] = rss_before

        tracker = Tracker(receivers=n)
        slots = asyncio.Semaphore(args.open_concurrency)
        receivers = [Receiver(host, port, token, tracker) for token in seeded.tokens]
        t_open = time.perf_counter()
        cpu_open = server.cpu_seconds()
        with Progress(TextColumn("    [bold]opening streams"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as bar:
            task = bar.add_task("open", total=n)
            tasks = [asyncio.create_task(r.run(slots)) for r in receivers]
            deadline = time.monotonic() + args.open_timeout
            while not tracker.all_open.is_set():
                bar.update(task, completed=tracker.opened)
                if time.monotonic() > deadline:
                    break
                if all(t.done() for t in tasks):
                    break
                try:
                    await asyncio.wait_for(asyncio.shield(tracker.all_open.wait()), 0.25)
                except TimeoutError:
                    pass
            bar.update(task, completed=tracker.opened)
        open_seconds = time.perf_counter() - t_open
        out.update({
            "opened": tracker.opened, "open_seconds": open_seconds,
            "opens_per_second": tracker.opened / open_seconds if open_seconds > 0 else None,
            "open_failures": tracker.open_failures,
            "open_failure_kinds": dict(tracker.open_failure_kinds),
            "open_server_cpu_seconds": (server.cpu_seconds() or 0) - (cpu_open or 0),
        })
        await asyncio.sleep(1.0)  # settle: the last openings' request objects and threads
        rss_after = server.rss_kib()
        out["rss_after_open_kib"] = rss_after
        out["client_rss_before_kib"] = client_rss_before
        out["client_rss_after_open_kib"] = rss_kib()
        if rss_before is not None and rss_after is not None and tracker.opened:
            out["kib_per_connection"] = (rss_after - rss_before) / tracker.opened
        console.print(f"    {tracker.opened:,}/{n:,} streams open in {open_seconds:.1f} s "
                      f"({out['opens_per_second'] or 0:.0f}/s, {tracker.open_failures} failed attempts); "
                      f"server RSS {(rss_before or 0) / 1024:.1f} -> {(rss_after or 0) / 1024:.1f} MiB "
                      f"= {out.get('kib_per_connection', float('nan')):.1f} KiB per stream")
        if tracker.open_failures:
            console.print(f"    [yellow]failed stream openings (retried):[/yellow] {dict(tracker.open_failure_kinds)}")
        if tracker.opened < n:
            console.print(f"    [red]only {tracker.opened:,} of {n:,} streams opened within {args.open_timeout:.0f} s"
                          f"[/red]; errors: {tracker.errors[:3]}")

        # Posting
        sends: dict[int, float] = {}
        post_rtts: list[float] = []
        post_rtts_ok: list[float] = []   # the request time of each post in `sends`, in order
        post_errors: list[str] = []
        incomplete_posts = 0
        cpu_server0, cpu_client0, t_posts0 = server.cpu_seconds(), time.process_time(), time.perf_counter()
        wall_posts0 = time.time()
        with Progress(TextColumn("    [bold]posting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("post", total=posts)
            for k in range(posts):
                body = {"body": f"Stream bench post {k + 1} of {posts}: walked 30 minutes, feeling good."}
                t_send = time.perf_counter()
                try:
                    response = await poster.http.post(post_path, json=body)
                except httpx.HTTPError as exc:
                    post_errors.append(f"{exc.__class__.__name__}: {exc}")
                    continue
                post_rtts.append(time.perf_counter() - t_send)
                if response.status_code != 201:
                    post_errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
                    continue
                post_id = response.json()["id"]
                sends[post_id] = t_send
                post_rtts_ok.append(post_rtts[-1])
                if not await tracker.wait_delivered(post_id, PER_POST_TIMEOUT):
                    incomplete_posts += 1
                bar.update(task, completed=k + 1)
                await asyncio.sleep(args.gap)
        posting_seconds = time.perf_counter() - t_posts0
        cpu_server1, cpu_client1 = server.cpu_seconds(), time.process_time()

        # Grace period for stragglers, unless everything has arrived.
        expected = len(sends) * n
        grace_end = time.perf_counter() + GRACE_SECONDS
        while sum(tracker.counts.get(p, 0) for p in sends) < expected and time.perf_counter() < grace_end:
            await asyncio.sleep(0.1)
        out["rss_after_posts_kib"] = server.rss_kib()
        await asyncio.sleep(0.3)  # the probe writes every 0.2 s
        out["gc_opening"] = gc_window(server, 0.0, wall_posts0)
        out["gc_posting"] = gc_window(server, wall_posts0, time.time())

        latencies: list[float] = []
        last_arrival: dict[int, float] = {}
        for r in receivers:
            for post_id, at in r.arrivals.items():
                sent = sends.get(post_id)
                if sent is None:
                    continue
                latencies.append((at - sent) * 1000)
                if at > last_arrival.get(post_id, 0.0):
                    last_arrival[post_id] = at
        latencies.sort()
        fanout = sorted((last_arrival[p] - sends[p]) * 1000 for p in last_arrival)
        per_post = []
        for (post_id, sent), rtt in zip(sends.items(), post_rtts_ok):
            got = sorted((r.arrivals[post_id] - sent) * 1000 for r in receivers if post_id in r.arrivals)
            per_post.append({"post_id": post_id, "post_ms": rtt * 1000, "received": len(got),
                             "first_ms": got[0] if got else None, "median_ms": percentile(got, 50) if got else None,
                             "last_ms": got[-1] if got else None})
        rtts = sorted(x * 1000 for x in post_rtts)
        received = len(latencies)
        out.update({
            "posts": posts, "posts_sent": len(sends), "post_errors": post_errors[:10],
            "expected": expected, "received": received, "lost": expected - received,
            "incomplete_posts": incomplete_posts,
            "duplicates": sum(r.duplicates for r in receivers),
            "out_of_order": sum(r.out_of_order for r in receivers),
            "drops": sum(r.drops for r in receivers),
            "resyncs": sum(r.resyncs for r in receivers),
            "reconnects": sum(max(0, r.connects - 1) for r in receivers),
            "keepalives": sum(r.keepalives for r in receivers),
            "errors": tracker.errors[:10],
            "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99), "max_ms": latencies[-1] if latencies else float("nan"),
            "mean_ms": sum(latencies) / len(latencies) if latencies else float("nan"),
            "fanout_last_p50_ms": percentile(fanout, 50), "fanout_last_max_ms": fanout[-1] if fanout else None,
            "post_rtt_p50_ms": percentile(rtts, 50), "post_rtt_max_ms": rtts[-1] if rtts else None,
            "posting_seconds": posting_seconds,
            "per_post": per_post,
            "server_cpu_posting_seconds": (cpu_server1 - cpu_server0)
            if cpu_server1 is not None and cpu_server0 is not None else None,
            "client_cpu_posting_seconds": cpu_client1 - cpu_client0,
        })
        out["opened_by_end"] = tracker.opened
        return out
    finally:
        if receivers:
            receivers[0].tracker.stopping = True
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for r in receivers:
            r.close()
        await poster.aclose()
        await asyncio.sleep(0.5)


def run_case(backend: str, n: int, posts: int, args, workdir: Path) -> dict[str, Any]:
    case: dict[str, Any] = {"backend": backend, "n": n}
    t_case = time.perf_counter()
    if backend == "sqlite":
        db_dir = workdir / f"sqlite-{n}"
        db_dir.mkdir(parents=True, exist_ok=True)
        url = sqlite_url(db_dir)
    else:
        url = reset_postgres_schema(postgres_base_url(), SCHEMA)
    t0 = time.perf_counter()
    migrate(url)
    case["migrate_seconds"] = time.perf_counter() - t0
    seeded = seed(url, n)
    case["seed_seconds"] = seeded.seconds
    release_engines()
    console.print(f"    seeded {n:,} receivers (users, memberships, sessions) in {seeded.seconds:.1f} s")

    extra_env: dict[str, str] = {}
    if args.gc_stats:
        extra_env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH_DIR / "_gcprobe"),
                                                                  os.environ.get("PYTHONPATH")])),
                     "PEERLIFT_BENCH_GC_OUT": str(workdir / f"gc-{n}.json")}
    server = StreamServer(url, log_path=workdir / f"server-{backend}-{n}.log", extra_env=extra_env)
    try:
        server.start()
        case["server_startup_seconds"] = server.startup_seconds
        case.update(run_async(hold_and_post(server, seeded, n, posts, args)))
        case["rss_after_close_kib"] = server.rss_kib()
    except BaseException:
        console.print(f"[red]    server log (tail):[/red]\n{server.log_tail()}")
        raise
    finally:
        server.stop()
        release_engines()
    case["wall_seconds"] = time.perf_counter() - t_case
    console.print(
        f"    {case['received']:,}/{case['expected']:,} deliveries, lost {case['lost']:,}; "
        f"p50 {fmt_ms(case['p50_ms'])} p95 {fmt_ms(case['p95_ms'])} p99 {fmt_ms(case['p99_ms'])} "
        f"max {fmt_ms(case['max_ms'])} ms; POST p50 {fmt_ms(case['post_rtt_p50_ms'])} ms; "
        f"{case['wall_seconds']:.0f} s")
    for phase in ("opening", "posting"):
        g = case.get(f"gc_{phase}")
        if g is not None:
            console.print(f"    server GC while {phase}: {g['full_collections']} full collections, "
                          f"{g['full_seconds']:.2f} s in total, longest {g['full_max_seconds'] * 1000:.0f} ms")
    return case


# --- reporting ---------------------------------------------------------------------------------------------

def _p99_cell(c: dict[str, Any]) -> str:
    p99 = fmt_ms(c["p99_ms"])
    if c["n"] == TARGET_SMALL_N:
        return f"[green]{p99}[/green]" if c["p99_ms"] <= TARGET_SMALL_P99_MS else f"[red]{p99}[/red]"
    if c.get("big") and c["n"] >= TARGET_BIG_N:
        return f"[green]{p99}[/green]" if c["p99_ms"] <= TARGET_BIG_P99_MS else f"[red]{p99}[/red]"
    return p99


def results_table(cases: list[dict[str, Any]], backend: str) -> Table:
    table = Table(title=f"peerlift live-stream fan-out ({backend}): latency of post.created, ms",
                  title_justify="left")
    cols = ["N streams", "posts", "expected", "received", "lost", "drops", "p50", "p95", "p99", "max",
            "last rx p50", "POST p50", "srv CPU", "cli CPU", "wall s"]
    with_gc = any(c.get("gc_posting") for c in cases)
    if with_gc:
        cols.append("full GCs (longest)")
    for col in cols:
        table.add_column(col, justify="right")
    for c in cases:
        if "error" in c:
            table.add_row(fmt_count(c["n"]), "[red]failed[/red]", *[""] * (len(cols) - 2))
            continue
        lost = f"[red]{c['lost']:,}[/red]" if c["lost"] else "0"
        drops = f"[red]{c['drops']:,}[/red]" if c["drops"] else "0"
        secs = c["posting_seconds"] or 1e-9
        srv = c.get("server_cpu_posting_seconds")
        table.add_row(
            fmt_count(c["n"]), str(c["posts_sent"]), f"{c['expected']:,}", f"{c['received']:,}", lost, drops,
            fmt_ms(c["p50_ms"]), fmt_ms(c["p95_ms"]), _p99_cell(c), fmt_ms(c["max_ms"]),
            fmt_ms(c["fanout_last_p50_ms"]), fmt_ms(c["post_rtt_p50_ms"]),
            f"{100 * srv / secs:.0f} %" if srv is not None else "–",
            f"{100 * c['client_cpu_posting_seconds'] / secs:.0f} %", f"{c['wall_seconds']:.0f}",
            *([f"{c['gc_posting']['full_collections']} ({c['gc_posting']['full_max_seconds'] * 1000:.0f} ms)"
               if c.get("gc_posting") else "–"] if with_gc else []),
        )
    return table


def memory_table(cases: list[dict[str, Any]]) -> Table:
    table = Table(title="open streams and server memory (VmRSS)", title_justify="left")
    cols = ["N streams", "opened", "open s", "opens/s", "failed opens", "RSS before MiB", "RSS open MiB",
            "RSS after posts MiB", "RSS closed MiB", "KiB / stream", "client KiB / stream"]
    for col in cols:
        table.add_column(col, justify="right")

    def mib(v):
        return f"{v / 1024:.1f}" if v is not None else "–"

    for c in cases:
        if "error" in c:
            continue
        kib = c.get("kib_per_connection")
        kib_cell = "–" if kib is None else f"{kib:.1f}"
        if c.get("big") and kib is not None:
            kib_cell = f"[green]{kib_cell}[/green]" if kib <= TARGET_BIG_KB_PER_CONN else f"[red]{kib_cell}[/red]"
        cb, ca = c.get("client_rss_before_kib"), c.get("client_rss_after_open_kib")
        client = f"{(ca - cb) / max(1, c['opened']):.1f}" if cb is not None and ca is not None else "–"
        table.add_row(fmt_count(c["n"]), f"{c['opened']:,}", f"{c['open_seconds']:.1f}",
                      f"{c['opens_per_second'] or 0:.0f}", str(c["open_failures"]), mib(c["rss_before_kib"]),
                      mib(c["rss_after_open_kib"]), mib(c.get("rss_after_posts_kib")),
                      mib(c.get("rss_after_close_kib")), kib_cell, client)
    return table


def verdicts(cases: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    small = next((c for c in cases if c["n"] == TARGET_SMALL_N and "error" not in c), None)
    if small is not None:
        out["p99_at_100"] = {"p99_ms": small["p99_ms"], "target_ms": TARGET_SMALL_P99_MS,
                             "met": small["p99_ms"] <= TARGET_SMALL_P99_MS}
    big = max((c for c in cases if c.get("big")), key=lambda c: c["n"], default=None)
    if big is not None:
        if "error" in big:
            out["big"] = {"n": big["n"], "met": False, "error": big["error"]}
        else:
            kib = big.get("kib_per_connection")
            checks = {
                "all_open": big["opened"] == big["n"],
                "p99": big["p99_ms"] <= TARGET_BIG_P99_MS,
                "lost": big["lost"] == 0 and big["received"] > 0,
                "memory": kib is not None and kib <= TARGET_BIG_KB_PER_CONN,
            }
            out["big"] = {"n": big["n"], "opened": big["opened"], "p99_ms": big["p99_ms"], "lost": big["lost"],
                          "kib_per_connection": kib, "checks": checks,
                          "met": all(checks.values()) and big["n"] >= TARGET_BIG_N,
                          "note": None if big["n"] >= TARGET_BIG_N else
                          f"ran with {big['n']:,} streams; the target is for {TARGET_BIG_N:,}"}
    return out


def print_verdicts(v: dict[str, Any]) -> None:
    def mark(ok: bool) -> str:
        return "[green]MET[/green]" if ok else "[red]MISSED[/red]"

    console.print("\n[bold]Targets[/bold]")
    if "p99_at_100" in v:
        t = v["p99_at_100"]
        console.print(f"  p99 <= {TARGET_SMALL_P99_MS:.0f} ms at N = {TARGET_SMALL_N}: {mark(t['met'])} "
                      f"(p99 {t['p99_ms']:.1f} ms)")
    else:
        console.print(f"  p99 <= {TARGET_SMALL_P99_MS:.0f} ms at N = {TARGET_SMALL_N}: not run")
    if "big" in v:
        b = v["big"]
        if "error" in b:
            console.print(f"  {TARGET_BIG_N:,} streams in one process: {mark(False)} (the case failed: {b['error']})")
        else:
            c = b["checks"]
            kib = b["kib_per_connection"]
            console.print(
                f"  {TARGET_BIG_N:,} streams in one process, fan-out p99 <= {TARGET_BIG_P99_MS:.0f} ms, 0 lost, "
                f"<= {TARGET_BIG_KB_PER_CONN:.0f} KB per connection: {mark(b['met'])}")
            console.print(f"      open: {b['opened']:,}/{b['n']:,} {mark(c['all_open'])}; "
                          f"p99 {b['p99_ms']:.0f} ms {mark(c['p99'])}; lost {b['lost']:,} {mark(c['lost'])}; "
                          f"{'–' if kib is None else f'{kib:.1f}'} KiB per connection {mark(c['memory'])}")
            if b["note"]:
                console.print(f"      [yellow]{b['note']}[/yellow]")
    else:
        console.print(f"  {TARGET_BIG_N:,} streams in one process: not run (--big 0)")


# --- main ------------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: N = 20, 100 with fewer posts, no big case")
    p.add_argument("--sizes", help="comma-separated numbers of receivers (default 20,100,1000; --quick 20,100)")
    p.add_argument("--backend", default="sqlite", choices=("sqlite", "postgresql"))
    p.add_argument("--big", type=int, help="receivers of the big case (default 10000; --quick 0; 0 = skip)")
    p.add_argument("--posts", type=int, help="posts per size (default 30 for N <= 100, 10 for N <= 1000, 5 above; "
                                             "--quick 10 / 5)")
    p.add_argument("--gap", type=float, default=0.2, help="seconds between a post's full delivery and the next post")
    p.add_argument("--open-concurrency", type=int, default=20,
                   help="stream openings in flight at once (default 20; with a few hundred, the server's "
                        "thread pool and connection pool deadlock until the 30 s pool timeout: see the docstring)")
    p.add_argument("--open-timeout", type=float, default=240.0, help="seconds allowed to open all streams")
    p.add_argument("--gc-stats", action="store_true",
                   help="record the server's garbage-collector pauses (bench/_gcprobe via PYTHONPATH)")
    args = p.parse_args(argv)
    sizes = args.sizes or ("20,100" if args.quick else "20,100,1000")
    args.sizes = [int(s.replace("_", "").replace("k", "000")) for s in sizes.split(",") if s.strip()]
    if args.big is None:
        args.big = 0 if args.quick else TARGET_BIG_N
    if any(n < 1 for n in args.sizes) or args.big < 0:
        p.error("sizes must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started, started_at = time.perf_counter(), dt.datetime.now(dt.UTC)
    machine = machine_info()
    nofile = raise_open_files_limit()
    plan = [(n, False) for n in args.sizes] + ([(args.big, True)] if args.big else [])
    console.rule("[bold]peerlift live-stream benchmark")
    console.print(f"backend {args.backend}; receivers {', '.join(fmt_count(n) for n, _ in plan)}; "
                  f"posts {', '.join(str(args.posts or posts_for(n, args.quick)) for n, _ in plan)}; "
                  f"open-files limit {nofile[0]:,}")
    console.print(f"[yellow]Note:[/yellow] the load client (this process: {sum(n for n, _ in plan):,} streams in "
                  f"total, on uvloop) shares the {machine['cpus']}-core machine with the server and competes "
                  f"with it for CPU; at large N part of every latency is the client reading N frames.")
    try:
        load = [round(x, 2) for x in os.getloadavg()]
        if load[0] > 0.5 * (machine["cpus"] or 1):
            console.print(f"[yellow]Warning:[/yellow] load average {load[0]:.1f} before the run: other processes "
                          f"compete for CPU and the results will be noisy.")
    except OSError:
        pass
    if machine.get("src_dirty"):
        console.print("[yellow]Note:[/yellow] src/ has uncommitted changes; results describe the working tree.")

    skipped: str | None = None
    if args.backend == "postgresql":
        skipped = postgres_problem(postgres_base_url())
        if skipped:
            console.print(f"[yellow]PostgreSQL not reachable[/yellow] at {postgres_base_url()} ({skipped}); "
                          f"set PEERLIFT_BENCH_POSTGRES_URL. Nothing to do.")
            plan = []

    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="peerlift-bench-stream-") as tmp:
        workdir = Path(tmp)
        try:
            for n, big in plan:
                posts = args.posts or posts_for(n, args.quick)
                console.print(f"[bold cyan]{args.backend}[/bold cyan], {n:,} receivers, {posts} posts"
                              + (" (the big case)" if big else ""))
                try:
                    case = run_case(args.backend, n, posts, args, workdir)
                    case["big"] = big
                    cases.append(case)
                except KeyboardInterrupt:
                    raise
                except Exception as exc:  # noqa: BLE001 - report and go on
                    console.print(f"[red]    failed:[/red] {exc.__class__.__name__}: {exc}")
                    console.print(traceback.format_exc(limit=6), markup=False, highlight=False)
                    cases.append({"backend": args.backend, "n": n, "big": big,
                                  "error": f"{exc.__class__.__name__}: {exc}"})
                finally:
                    release_engines()
                    for f in (workdir / f"sqlite-{n}").glob("*"):
                        f.unlink(missing_ok=True)
        finally:
            if args.backend == "postgresql" and not skipped:
                release_engines()
                try:
                    drop_postgres_schema(postgres_base_url(), SCHEMA)
                except Exception as exc:  # noqa: BLE001
                    console.print(f"[yellow]Could not drop schema {SCHEMA}: {exc}[/yellow]")

    total = time.perf_counter() - started
    v = verdicts(cases)
    if cases:
        console.print()
        console.print(results_table(cases, args.backend))
        console.print(memory_table(cases))
        console.print("[dim]Latency = arrival of the post.created frame at a receiver - the moment just before the "
                      "POST. 'last rx p50': median over posts of the latency of each post's last receiver; 'POST p50': "
                      "the poster's request time. CPU columns: share of one core during the posting phase (the "
                      f"machine has {machine['cpus']} cores; cli = this process). KiB / stream = (RSS open - RSS "
                      "before) / N; RSS before is read after a few streams were opened and closed (warm-up).[/dim]")
        print_verdicts(v)
    console.print(f"\n[dim]The load client shares the {machine['cpus']}-core machine with the server: "
                  f"latencies at large N include the client's own time to read N frames.[/dim]")
    payload = {
        "benchmark": "stream",
        "started_at": started_at.isoformat(),
        "total_seconds": total,
        "config": {"backend": args.backend, "sizes": args.sizes, "big": args.big, "quick": args.quick,
                   "posts": args.posts, "gap": args.gap, "open_concurrency": args.open_concurrency,
                   "gc_stats": args.gc_stats, "grace_seconds": GRACE_SECONDS, "per_post_timeout": PER_POST_TIMEOUT,
                   "open_files_limit": nofile[0]},
        "machine": machine,
        "targets": {"small_n": TARGET_SMALL_N, "small_p99_ms": TARGET_SMALL_P99_MS, "big_n": TARGET_BIG_N,
                    "big_p99_ms": TARGET_BIG_P99_MS, "big_kb_per_connection": TARGET_BIG_KB_PER_CONN,
                    "verdicts": v},
        "skipped": skipped,
        "cases": cases,
    }
    path = write_results("stream", payload)
    console.print(f"Results: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    console.print(f"Total time: {total / 60:.1f} min ({total:.0f} s)")
    return 1 if any("error" in c for c in cases) else 0


if __name__ == "__main__":
    sys.exit(main())
