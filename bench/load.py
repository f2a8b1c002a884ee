"""Load test: members in circles using peerlift as people do, on the scaled set-up.

    .venv/bin/python bench/load.py                                 # 1,000 members for 300 s (make load)
    .venv/bin/python bench/load.py --members 100 --duration 20     # a quick run
    .venv/bin/python bench/load.py --urls http://127.0.0.1:8001,http://127.0.0.1:8002 \\
        --database-url postgresql://peerlift@127.0.0.1/peerlift    # an installation already running

The set-up (unless --urls): PostgreSQL in a schema of its own (``bench_load`` at
$PEERLIFT_BENCH_POSTGRES_URL, dropped at the end) built by the Alembic migrations, Redis
($PEERLIFT_BENCH_REDIS_URL, default redis://127.0.0.1:6379/14), ``--servers`` (2)
``peerlift serve --no-scheduler`` processes and one ``peerlift worker``, as deploy/ runs them.

1. Seeding, through the service functions (identity, community): ``--members`` members in
   circles of ``--circle-size`` (20), each circle with a facilitator and ``--history`` (10) posts,
   and a signed-in session per member (``start_session``: the cookie and CSRF token the load uses).
   Passwords are hashed with cheap argon2 parameters (nobody signs in with them).
2. Every member opens a live stream (bench/_sse.py, one asyncio connection each) on the process
   their index names (i mod --servers), so every circle is spread over all processes and its
   events cross between them through Redis. Openings are kept to 20 in flight.
3. A programme prompt per member (``notify.prompt``) is scheduled at a random moment of the run's
   first 70 %: the worker process delivers them while the load runs.
4. For ``--duration`` seconds (after ``--warmup`` seconds not counted) each member, on their own
   process, waits a think time (exponential, mean ``--think`` seconds: 30, a busy hour with the app
   open; 1,000 members then ask about 33 actions a second) and then does one of: read the
   feed (first page, 55 %), react to a recent post (20 %, a kind they have not given it yet), comment
   on a recent post (15 %), or post (10 %). Every request is timed (perf_counter, sent to answered);
   any answer but 2xx, or no answer, is an error.
5. After the run and a grace period, the streams are checked: every post, comment and reaction
   made (warm-up included) must have reached the stream of every member of its circle (expected =
   sum over them of the circle's size), nothing of another circle may arrive, nothing twice; every
   member's stream must have heard of their prompt, and the database must hold exactly one
   notification per prompt. Stream latency is from just before a post's POST to its frame, and from
   the POST's answer to the frame (the fan-out alone).

Reported: per action requests, rps, p50 / p99 ms and errors; stream frames expected, received,
lost, foreign and doubled; prompts; CPU of the servers, the worker and this client. Results go to
bench/results/load-<timestamp>.json. Exit status 1 when anything was lost or failed.

Everything runs on one machine: the 2 cores are shared by the servers, the worker, PostgreSQL,
Redis and this client, which also reads every stream.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from _common import (  # noqa: E402
    RESULTS_DIR,
    ROOT,
    VENV_BIN,
    Recorder,
    console,
    drop_postgres_schema,
    fmt_ms,
    load_average,
    machine_info,
    migrate,
    percentile,
    postgres_base_url,
    postgres_problem,
    process_cpu_seconds,
    release_engines,
    reset_postgres_schema,
    run_async,
    summarise,
    timestamp,
    use_cheap_password_hashing,
    vacuum_analyze_postgres,
    warn_if_busy,
    write_results,
)
from _sse import Receiver, Tracker  # noqa: E402
from stream import StreamServer, raise_open_files_limit  # noqa: E402

SCHEMA = "bench_load"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
ACTIONS = {"feed": 0.55, "react": 0.20, "comment": 0.15, "post": 0.10}
REACTION_KINDS = ("like", "heart", "clap", "hug", "strong")
RECENT = 30            # posts of a circle a member may respond to: the newest ones they know of
OPEN_CONCURRENCY = 20  # stream openings in flight (see bench/stream.py)
GRACE_SECONDS = 10.0
BODIES = (
    "Walked to the park and back this morning, about 40 minutes. Legs are tired but happy.",
    "Swapped the afternoon biscuits for an apple today. Small wins!",
    "Weigh-in went better than I expected this week.",
    "Does anyone have tips for staying on track at weekends?",
    "Took the stairs at work all week. Feeling stronger.",
    "Tried the breathing exercise before bed and slept much better.",
    "Cooked a big batch of vegetable soup for the week.",
    "Had a tough day but still went for a short walk. Proud of that.",
)
REPLIES = ("Well done!", "That is great to hear.", "Keep going, you are doing brilliantly.",
           "Same here, weekends are hard.", "Thanks for sharing this.", "Love this idea.")


# --- seeding ---------------------------------------------------------------------------------------------

@dataclass
class Member:
    index: int
    user_id: int
    circle_id: int
    token: str
    csrf: str
    reacted: set = field(default_factory=set)  # (post_id, kind) already given


@dataclass
class Seeded:
    members: list[Member]
    circles: dict[int, list[int]]          # circle id -> member user ids
    history: dict[int, list[int]]          # circle id -> post ids seeded
    seconds: float


def seed(members: int, circle_size: int, history: int, tag: str) -> Seeded:
    """Everything through the service functions, one transaction per circle."""
    from peerlift.community import service as community
    from peerlift.db import transaction
    from peerlift.identity import service as identity
    from peerlift.identity.models import Role
    from peerlift.policy import circle_access

    use_cheap_password_hashing()
    rng = random.Random(members)
    t0 = time.perf_counter()
    out: list[Member] = []
    circles: dict[int, list[int]] = {}
    posts: dict[int, list[int]] = {}
    n_circles = (members + circle_size - 1) // circle_size
    with Progress(TextColumn("  [bold]seeding[/bold] {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task("members", total=members)
        for c in range(n_circles):
            with transaction() as s:
                coach = identity.create_user(s, email=f"coach{c + 1:03d}-{tag}@bench.test", password="bench-password",
                                             display_name=f"Coach {c + 1}", role=Role.facilitator,
                                             timezone="Europe/London")
                space = community.create_circle(s, coach, name=f"Load circle {c + 1}",
                                                description="A circle seeded by bench/load.py.",
                                                timezone="Europe/London")
                people = []
                for i in range(c * circle_size, min(members, (c + 1) * circle_size)):
                    person = identity.create_user(s, email=f"member{i + 1:05d}-{tag}@bench.test",
                                                  password="bench-password", display_name=f"Member {i + 1}",
                                                  role=Role.participant, timezone="Europe/London")
                    community.add_member(s, coach, space, person)
                    token, auth = identity.start_session(s, person, ip="127.0.0.1", user_agent="peerlift-bench-load")
                    out.append(Member(i, person.id, space.id, token, auth.csrf_token))
                    people.append(person)
                circles[space.id] = [p.id for p in people]
                posts[space.id] = []
                for k in range(history):
                    author = people[k % len(people)]
                    post = community.create_post(s, circle_access(s, author, space.id), rng.choice(BODIES))
                    posts[space.id].append(post.id)
            bar.update(task, advance=len(people))
    return Seeded(out, circles, posts, time.perf_counter() - t0)


def schedule_prompts(seeded: Seeded, duration: float, tag: str, rng: random.Random) -> dict[int, str]:
    """One programme prompt per member, due at a random moment of the run's first 70 %."""
    from peerlift.db import transaction, utcnow
    from peerlift.delivery import scheduler

    now, keys = utcnow(), {}
    with transaction() as s:
        for m in seeded.members:
            due = now + dt.timedelta(seconds=rng.uniform(0.05, 0.7) * duration)
            keys[m.user_id] = f"load:{tag}:prompt:{m.user_id}"
            scheduler.schedule(s, "notify.prompt", {"user_id": m.user_id, "circle_id": m.circle_id,
                                                    "text": "Time for today's walk."},
                               due_at=due, dedupe_key=keys[m.user_id])
    return keys


def prompt_outcome(keys: dict[int, str]) -> dict[str, Any]:
    """What became of the prompts: rows by status, and notifications per delivered row."""
    from sqlalchemy import func, select

    from peerlift.db import transaction
    from peerlift.delivery.models import ScheduledDelivery
    from peerlift.notify.models import Notification

    with transaction(write=False) as s:
        rows = dict(s.execute(select(ScheduledDelivery.id, ScheduledDelivery.status)
                              .where(ScheduledDelivery.dedupe_key.in_(list(keys.values())))).all())
        per_row = dict(s.execute(select(Notification.delivery_id, func.count(Notification.id))
                                 .where(Notification.delivery_id.in_(list(rows)))
                                 .group_by(Notification.delivery_id)).all())
    statuses = Counter(str(getattr(v, "value", v)) for v in rows.values())
    return {"scheduled": len(keys), "rows": dict(statuses),
            "notifications": sum(per_row.values()),
            "rows_with_one_notification": sum(1 for n in per_row.values() if n == 1),
            "rows_with_several": sum(1 for n in per_row.values() if n > 1)}


# --- streams ---------------------------------------------------------------------------------------------

class MemberStream(Receiver):
    """One member's stream: what of their circle arrived, what of another circle did (never should)."""

    __slots__ = ("circle_id", "seen", "foreign", "prompts")

    def __init__(self, host: str, port: int, token: str, tracker: Tracker, circle_id: int) -> None:
        super().__init__(host, port, token, tracker)
        self.circle_id = circle_id
        self.seen: set = set()
        self.foreign = 0
        self.prompts = 0

    def _event(self, event: bytes, data: bytes, now: float) -> None:
        if event == b"resync":
            self.resyncs += 1
            return
        payload = json.loads(data) if data else {}
        circle = payload.get("circle_id")
        if circle is not None and circle != self.circle_id:
            self.foreign += 1
            return
        if event == b"post.created":
            key = ("post", payload["post_id"])
            self.arrivals.setdefault(payload["post_id"], now)
        elif event == b"comment.created":
            key = ("comment", payload["comment_id"])
        elif event == b"reaction.added":
            key = ("reaction", payload["post_id"], payload["actor_id"], payload["kind"])
        elif event == b"notification.created" and payload.get("kind") == "prompt":
            self.prompts += 1
            return
        else:
            self.other_events += 1
            return
        if key in self.seen:
            self.duplicates += 1
        else:
            self.seen.add(key)


async def open_streams(streams: list[MemberStream], tracker: Tracker, timeout: float) -> list[asyncio.Task]:
    slots = asyncio.Semaphore(OPEN_CONCURRENCY)
    tasks = [asyncio.create_task(r.run(slots)) for r in streams]
    with Progress(TextColumn("  [bold]opening streams"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("open", total=len(streams))
        deadline = time.monotonic() + timeout
        while not tracker.all_open.is_set() and time.monotonic() < deadline and not all(t.done() for t in tasks):
            bar.update(task, completed=tracker.opened)
            try:
                await asyncio.wait_for(asyncio.shield(tracker.all_open.wait()), 0.25)
            except TimeoutError:
                pass
        bar.update(task, completed=tracker.opened)
    return tasks


# --- the load ---------------------------------------------------------------------------------------------

@dataclass
class Made:
    """What the members wrote, for the stream check: circle -> keys, and posts' send times."""
    keys: dict[int, set] = field(default_factory=lambda: defaultdict(set))
    post_sent: dict[int, float] = field(default_factory=dict)      # just before the POST
    post_answered: dict[int, float] = field(default_factory=dict)  # its answer (the post committed)
    recent: dict[int, deque] = field(default_factory=dict)


async def act(m: Member, action: str, http: httpx.AsyncClient, recorder: Recorder, made: Made,
              rng: random.Random) -> None:
    headers = {"Cookie": f"peerlift_session={m.token}", "X-CSRF-Token": m.csrf}
    recent = made.recent[m.circle_id]
    if action in ("react", "comment") and not recent:
        action = "post"
    if action == "feed":
        await recorder.request(http, "GET", f"/api/v1/circles/{m.circle_id}/posts", tag="feed",
                               params={"limit": 20}, headers=headers)
    elif action == "post":
        sent = time.perf_counter()
        r = await recorder.request(http, "POST", f"/api/v1/circles/{m.circle_id}/posts", tag="post",
                                   json={"body": rng.choice(BODIES)}, headers=headers)
        if r is not None and r.status_code == 201:
            post_id = r.json()["id"]
            made.post_sent[post_id] = sent
            made.post_answered[post_id] = time.perf_counter()
            made.keys[m.circle_id].add(("post", post_id))
            recent.append(post_id)
    elif action == "comment":
        post_id = rng.choice(recent)
        r = await recorder.request(http, "POST", f"/api/v1/posts/{post_id}/comments", tag="comment",
                                   json={"body": rng.choice(REPLIES)}, headers=headers)
        if r is not None and r.status_code == 201:
            made.keys[m.circle_id].add(("comment", r.json()["id"]))
    elif action == "react":
        choices = [(p, k) for p in recent for k in REACTION_KINDS if (p, k) not in m.reacted]
        if not choices:
            return
        post_id, kind = rng.choice(choices)
        m.reacted.add((post_id, kind))
        r = await recorder.request(http, "PUT", f"/api/v1/posts/{post_id}/reactions/{kind}", tag="react",
                                   headers=headers)
        if r is not None and r.status_code == 200 and r.json().get("changed"):
            made.keys[m.circle_id].add(("reaction", post_id, m.user_id, kind))


async def member_loop(m: Member, http: httpx.AsyncClient, recorder: Recorder, made: Made, think: float,
                      rng: random.Random) -> None:
    names, weights = list(ACTIONS), list(ACTIONS.values())

    async def pause(seconds: float) -> None:  # a pause the end of the run cuts short
        await asyncio.sleep(max(0.0, min(seconds, recorder.stop_at - time.perf_counter())))

    await pause(rng.uniform(0, think))  # members start at different moments
    while recorder.running:
        await act(m, rng.choices(names, weights)[0], http, recorder, made, rng)
        await pause(rng.expovariate(1.0 / think))


# --- one run ----------------------------------------------------------------------------------------------

@dataclass
class Processes:
    servers: list[StreamServer]
    worker: subprocess.Popen | None
    worker_log: Path | None

    def cpu(self) -> dict[str, float | None]:
        out = {f"server {i + 1}": s.cpu_seconds() for i, s in enumerate(self.servers)}
        out["worker"] = process_cpu_seconds(self.worker.pid) if self.worker is not None else None
        return out


def start_processes(url: str, redis_url: str, n: int, workdir: Path) -> Processes:
    """``n`` × ``peerlift serve --no-scheduler`` (bench/stream.py's StreamServer) and one ``peerlift worker``."""
    env = {"PEERLIFT_REDIS_URL": redis_url}
    procs = Processes([StreamServer(url, log_path=workdir / f"serve-{i + 1}.log", extra_env=env) for i in range(n)],
                      None, None)
    try:
        for server in procs.servers:
            server.start(timeout=90)
        procs.worker_log = workdir / "worker.log"
        with open(procs.worker_log, "ab") as log:
            procs.worker = subprocess.Popen(
                [str(VENV_BIN / "peerlift"), "worker"], cwd=str(ROOT),
                env={**os.environ, "PEERLIFT_DATABASE_URL": url, "PYTHONUNBUFFERED": "1", **env},
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    except BaseException:
        stop_processes(procs)
        raise
    return procs


def log_problems(procs: Processes, most: int = 40) -> list[str]:
    """Error lines of the servers' and the worker's logs (first ``most``), for the results."""
    out = []
    paths = [s.log_path for s in procs.servers] + ([procs.worker_log] if procs.worker_log else [])
    for path in paths:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        out += [f"{path.name}: {line}" for line in lines
                if ("ERROR" in line or "Traceback" in line or "Error:" in line or "Exception" in line)][:most]
    return out[:most]


def stop_processes(procs: Processes) -> None:
    for s in procs.servers:
        s.stop()
    if procs.worker is not None and procs.worker.poll() is None:
        procs.worker.terminate()
        try:
            procs.worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            procs.worker.kill()


async def run_load(urls: list[str], seeded: Seeded, args, tag: str, procs: Processes | None) -> dict[str, Any]:
    rng = random.Random(args.seed)
    out: dict[str, Any] = {}
    ports = [httpx.URL(u).port for u in urls]
    tracker = Tracker(receivers=len(seeded.members))
    streams = [MemberStream("127.0.0.1", ports[m.index % len(urls)], m.token, tracker, m.circle_id)
               for m in seeded.members]
    t_open = time.perf_counter()
    stream_tasks = await open_streams(streams, tracker, args.open_timeout)
    out["streams"] = {"members": len(streams), "opened": tracker.opened,
                      "open_seconds": time.perf_counter() - t_open, "open_failures": tracker.open_failures,
                      "open_failure_kinds": dict(tracker.open_failure_kinds)}
    console.print(f"  {tracker.opened:,}/{len(streams):,} streams open in {out['streams']['open_seconds']:.1f} s")
    # Idle connections are given up after 4 s, before the server closes them (after 5 s), as the
    # shipped nginx configuration does: no request is sent into a closing connection.
    clients = [httpx.AsyncClient(base_url=u, timeout=60.0,
                                 limits=httpx.Limits(max_connections=args.connections,
                                                     max_keepalive_connections=args.connections,
                                                     keepalive_expiry=4.0))
               for u in urls]
    made = Made()
    for cid, posts in seeded.history.items():
        made.recent[cid] = deque(posts, maxlen=RECENT)
    recorder = Recorder()
    start = time.perf_counter()
    recorder.record_from = start + args.warmup
    recorder.stop_at = recorder.record_from + args.duration
    prompt_keys = schedule_prompts(seeded, args.warmup + args.duration, tag, rng)
    cpu0, client0 = (procs.cpu() if procs else {}), time.process_time()
    loops = [asyncio.create_task(member_loop(m, clients[m.index % len(urls)], recorder, made, args.think,
                                             random.Random(rng.random())))
             for m in seeded.members]
    with Progress(TextColumn("  [bold]load[/bold] {task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("warming up", total=args.warmup + args.duration)
        while time.perf_counter() < recorder.stop_at:
            elapsed = time.perf_counter() - start
            done = len(recorder.samples)
            bar.update(task, completed=elapsed,
                       description=f"{done:,} requests, {sum(recorder.failures.values())} errors"
                       if elapsed > args.warmup else "warming up")
            await asyncio.sleep(0.5)
    window_end = time.perf_counter()
    cpu1, client1 = (procs.cpu() if procs else {}), time.process_time()
    results = await asyncio.gather(*loops, return_exceptions=True)
    loop_errors = [f"{r.__class__.__name__}: {r}" for r in results if isinstance(r, BaseException)]

    # Grace: every expected frame, and every prompt, has time to arrive.
    members_of = seeded.circles
    expected = sum(len(keys) * len(members_of[cid]) for cid, keys in made.keys.items())

    def received() -> int:
        return sum(len(s.seen & made.keys[s.circle_id]) for s in streams)

    grace_end = time.perf_counter() + GRACE_SECONDS
    while time.perf_counter() < grace_end and (received() < expected or
                                               sum(s.prompts for s in streams) < len(streams)):
        await asyncio.sleep(0.2)
    got = received()
    tracker.stopping = True
    for t in stream_tasks:
        t.cancel()
    await asyncio.gather(*stream_tasks, return_exceptions=True)
    for s in streams:
        s.close()
    for c in clients:
        await c.aclose()

    window = window_end - recorder.record_from
    by_action = {a: summarise([x for x in recorder.samples if x.tag == a], window) for a in ACTIONS}
    total = summarise(recorder.samples, window)
    latencies = sorted((at - made.post_sent[p]) * 1000 for s in streams for p, at in s.arrivals.items()
                       if p in made.post_sent)
    fanout = sorted((at - made.post_answered[p]) * 1000 for s in streams for p, at in s.arrivals.items()
                    if p in made.post_answered)
    out.update({
        "window_seconds": window,
        "actions": by_action,
        "total": total,
        "failures": dict(recorder.failures),
        "loop_errors": loop_errors[:10],
        "made": {kind: sum(1 for keys in made.keys.values() for k in keys if k[0] == kind)
                 for kind in ("post", "comment", "reaction")},
        "frames": {"expected": expected, "received": got, "lost": expected - got,
                   "foreign": sum(s.foreign for s in streams), "doubled": sum(s.duplicates for s in streams),
                   "out_of_order": sum(s.out_of_order for s in streams), "resyncs": sum(s.resyncs for s in streams),
                   "drops": sum(s.drops for s in streams), "other_events": sum(s.other_events for s in streams),
                   "keepalives": sum(s.keepalives for s in streams)},
        "post_delivery_ms": {"n": len(latencies), "p50": percentile(latencies, 50),
                             "p99": percentile(latencies, 99), "max": latencies[-1] if latencies else None},
        # from the POST's answer (the post committed) to the frame: the fan-out alone; a frame may
        # arrive before the answer does (negative)
        "post_fanout_ms": {"n": len(fanout), "p50": percentile(fanout, 50), "p99": percentile(fanout, 99)},
        "prompts_heard": {"members": len(streams), "heard_once": sum(1 for s in streams if s.prompts == 1),
                          "heard_more": sum(1 for s in streams if s.prompts > 1),
                          "not_heard": sum(1 for s in streams if s.prompts == 0)},
        "prompts": prompt_outcome(prompt_keys),
        "cpu_pct": {name: 100.0 * (cpu1[name] - cpu0[name]) / window
                    for name in cpu1 if cpu1.get(name) is not None and cpu0.get(name) is not None},
        "client_cpu_pct": 100.0 * (client1 - client0) / window,
        "loadavg_after": load_average(),
    })
    return out


# --- reporting --------------------------------------------------------------------------------------------

def report(out: dict[str, Any]) -> None:
    table = Table(title=f"{out['members']:,} members, {out['window_seconds']:.0f} s measured", title_justify="left")
    for col in ("action", "requests", "rps", "p50 ms", "p99 ms", "max ms", "errors"):
        table.add_column(col, justify="right" if col != "action" else "left")
    for name, row in [*out["actions"].items(), ("all", out["total"])]:
        table.add_row(name, f"{row['requests']:,}", f"{row['rps']:.1f}", fmt_ms(row["p50_ms"]), fmt_ms(row["p99_ms"]),
                      fmt_ms(row["max_ms"]), str(row["errors"]))
    console.print(table)
    f = out["frames"]
    console.print(f"  stream frames: {f['expected']:,} expected, {f['received']:,} received, {f['lost']:,} lost, "
                  f"{f['foreign']} from another circle, {f['doubled']} doubled, {f['out_of_order']} out of order, "
                  f"{f['drops']} streams ended by the server, {f['resyncs']} resyncs")
    d, fan = out["post_delivery_ms"], out["post_fanout_ms"]
    console.print(f"  a post to every stream of its circle, from its POST: p50 {fmt_ms(d['p50'])} ms, p99 "
                  f"{fmt_ms(d['p99'])} ms; from its answer: p50 {fmt_ms(fan['p50'])} ms, p99 {fmt_ms(fan['p99'])} ms "
                  f"({d['n']:,} deliveries)")
    p, h = out["prompts"], out["prompts_heard"]
    console.print(f"  prompts by the worker: {p['scheduled']:,} scheduled, rows {p['rows']}, "
                  f"{p['rows_with_one_notification']:,} with exactly one notification ({p['rows_with_several']} with "
                  f"more); heard on the stream once by {h['heard_once']:,} of {h['members']:,} members")
    cpu = ", ".join(f"{k} {v:.0f} %" for k, v in out["cpu_pct"].items())
    console.print(f"  CPU (100 % = one core): {cpu}, this client {out['client_cpu_pct']:.0f} %; "
                  f"load average after {out['loadavg_after']}")
    if out["failures"]:
        console.print(f"  [red]errors:[/red] {out['failures']}")
    for line in out.get("log_problems", [])[:10]:
        console.print(f"  [yellow]log:[/yellow] {line}", markup=False, highlight=False)
    if out.get("logs"):
        console.print(f"  logs of the processes: {out['logs']}")


def verdict(out: dict[str, Any]) -> list[str]:
    problems = []
    if out["total"]["errors"]:
        problems.append(f"{out['total']['errors']} requests failed")
    if out["loop_errors"]:
        problems.append(f"member loops crashed: {out['loop_errors'][:2]}")
    f = out["frames"]
    for name in ("lost", "foreign", "doubled", "out_of_order"):
        if f[name]:
            problems.append(f"{f[name]} stream frames {name.replace('_', ' ')}")
    if out["streams"]["opened"] < out["members"]:
        problems.append(f"only {out['streams']['opened']} of {out['members']} streams opened")
    p, h = out["prompts"], out["prompts_heard"]
    if p["rows_with_one_notification"] != p["scheduled"] or p["rows_with_several"]:
        problems.append(f"prompts not delivered exactly once: {p}")
    if h["heard_once"] != h["members"]:
        problems.append(f"prompts heard: {h}")
    return problems


# --- main -------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=1000, help="simulated members (default 1000)")
    p.add_argument("--duration", type=float, default=300.0, help="seconds measured (default 300)")
    p.add_argument("--warmup", type=float, default=10.0, help="seconds of load before measuring (default 10)")
    p.add_argument("--think", type=float, default=30.0,
                   help="mean seconds a member waits between two actions (default 30)")
    p.add_argument("--circle-size", type=int, default=20, help="members per circle (default 20)")
    p.add_argument("--history", type=int, default=10, help="posts seeded per circle (default 10)")
    p.add_argument("--servers", type=int, default=2, help="peerlift serve processes started (default 2)")
    p.add_argument("--connections", type=int, default=50,
                   help="HTTP connections of the client to each process (default 50)")
    p.add_argument("--open-timeout", type=float, default=180.0, help="seconds allowed to open every stream")
    p.add_argument("--urls", help="comma-separated base URLs of running serve processes (no set-up)")
    p.add_argument("--database-url", help="with --urls: the database they use (seeded here)")
    p.add_argument("--redis-url", default=os.environ.get("PEERLIFT_BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    p.add_argument("--seed", type=int, default=20261126, help="random seed of the members' choices")
    args = p.parse_args(argv)
    if args.members < 2 or args.circle_size < 2:
        p.error("--members and --circle-size must be at least 2")
    if args.duration <= 0 or args.think <= 0 or args.warmup < 0:
        p.error("--duration and --think must be positive, --warmup not negative")
    if args.servers < 1:
        p.error("--servers must be at least 1")
    if args.urls and not args.database_url:
        p.error("--urls needs --database-url: the members are seeded into that database")
    args.urls = [u.strip().rstrip("/") for u in args.urls.split(",") if u.strip()] if args.urls else []
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started, started_at = time.perf_counter(), dt.datetime.now(dt.UTC)
    machine = machine_info()
    tag = dt.datetime.now().strftime("%H%M%S")
    console.rule("[bold]peerlift load test")
    console.print(f"{args.members:,} members in circles of {args.circle_size}; {args.duration:g} s measured after "
                  f"{args.warmup:g} s warm-up; think time {args.think:g} s; mix {ACTIONS}")
    warn_if_busy()
    nofile = raise_open_files_limit()
    if nofile[0] < args.members + 200:
        console.print(f"[yellow]Open-files limit {nofile[0]} is low for {args.members} streams.[/yellow]")
    out: dict[str, Any] = {"members": args.members}
    procs: Processes | None = None
    base = postgres_base_url()
    tmp = tempfile.mkdtemp(prefix="peerlift-bench-load-")
    try:
        if args.urls:
            url, urls = args.database_url, args.urls
            os.environ["PEERLIFT_DATABASE_URL"] = url
        else:
            problem = postgres_problem(base)
            if problem:
                console.print(f"[red]PostgreSQL is needed[/red] at {base} ({problem}); "
                              "set PEERLIFT_BENCH_POSTGRES_URL.")
                return 2
            import redis

            try:
                redis.Redis.from_url(args.redis_url, socket_connect_timeout=3).ping()
            except Exception as exc:  # noqa: BLE001
                console.print(f"[red]Redis is needed[/red] at {args.redis_url}: {exc}")
                return 2
            url = reset_postgres_schema(base, SCHEMA)
            os.environ["PEERLIFT_DATABASE_URL"] = url
            console.print(f"  PostgreSQL schema {SCHEMA} at {base}; Redis {args.redis_url}")
            migrate(url)
        from peerlift.settings import get_settings

        get_settings.cache_clear()
        seeded = seed(args.members, args.circle_size, args.history, tag)
        console.print(f"  seeded {len(seeded.members):,} members in {len(seeded.circles)} circles "
                      f"in {seeded.seconds:.1f} s")
        if not args.urls:
            vacuum_analyze_postgres(url, ["user_account", "membership", "auth_session", "post", "event"])
            procs = start_processes(url, args.redis_url, args.servers, Path(tmp))
            urls = [s.base_url for s in procs.servers]
            console.print(f"  {len(urls)} × peerlift serve --no-scheduler ({', '.join(urls)}) and a peerlift worker")
        out.update(run_async(run_load(urls, seeded, args, tag, procs)))
        out["seed_seconds"] = seeded.seconds
        if procs is not None and procs.worker is not None and procs.worker.poll() is not None:
            out["worker_exited"] = procs.worker.returncode
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - report what happened, with the servers' last words
        console.print(f"[red]failed:[/red] {exc.__class__.__name__}: {exc}")
        console.print(traceback.format_exc(limit=8), markup=False, highlight=False)
        out["error"] = f"{exc.__class__.__name__}: {exc}"
    finally:
        if procs is not None:
            stop_processes(procs)
            out["log_problems"] = log_problems(procs)
            keep = RESULTS_DIR / f"load-{timestamp()}-logs"  # the processes' logs, beside the results
            shutil.copytree(tmp, keep, dirs_exist_ok=True)
            out["logs"] = str(keep)
        shutil.rmtree(tmp, ignore_errors=True)
        release_engines()
        if not args.urls:
            try:
                drop_postgres_schema(base, SCHEMA)
            except Exception as exc:  # noqa: BLE001
                console.print(f"[yellow]Could not drop schema {SCHEMA}: {exc}[/yellow]")
    problems = verdict(out) if "error" not in out else [out["error"]]
    if "error" not in out:
        report(out)
    for problem in problems:
        console.print(f"[red]✗[/red] {problem}")
    if not problems:
        console.print("[green]✓[/green] no errors, nothing lost, nothing foreign, every prompt exactly once")
    total = time.perf_counter() - started
    payload = {
        "benchmark": "load",
        "started_at": started_at.isoformat(),
        "total_seconds": total,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if argv is None else " ".join(argv),
        "config": {"members": args.members, "duration": args.duration, "warmup": args.warmup, "think": args.think,
                   "circle_size": args.circle_size, "history": args.history, "servers": args.servers,
                   "connections": args.connections, "mix": ACTIONS, "urls": args.urls or None, "seed": args.seed},
        "machine": machine,
        "problems": problems,
        "result": out,
    }
    path = write_results("load", payload)
    console.print(f"Results: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    console.print(f"Total time: {total / 60:.1f} min ({total:.0f} s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
