"""Cues benchmark: how fast does the engine decide, and how soon does a cue reach its person?

    .venv/bin/python bench/cues.py                 # both parts, as reported in the README
    .venv/bin/python bench/cues.py --quick         # a smoke run
    .venv/bin/python bench/cues.py --part engine   # one part: engine, latency or database

1. **Engine throughput** (in process, no database): 100 rules (the four shipped inbox rules and 96
   generated ones over the five event triggers, with ``event.F == value`` guards, person,
   latest-value and questionnaire conditions) against a stream of 50,000 events (40 % tracking
   entries over 30 measures, 20 % posts, 20 % comments, 10 % messages, 10 % questionnaire scores).
   Each event: find the candidate rules, build its context (the person, latest and questionnaire
   parts come from memory here; in the product they are read from the event table, once per event
   and only when a rule reads them) and evaluate every candidate's condition with simpleeval.
   Several runs; the median rate is printed. Target: >= 10,000 events per second per process.

2. **Post-to-cue latency** under load: one ``peerlift serve`` process (SQLite, its in-process
   worker) runs the same 100 rules, one of which answers every post with an in-app notification.
   M members each hold a live stream and post in a closed loop (post, wait for the cue's
   ``notification.created`` frame on their own stream, think, post again). Latency is from just
   before the POST to the frame's arrival. Target: p99 <= 1 s.

3. **Decisions through the database**: the same rules with the context read from the event table
   (what the product does): tracking and questionnaire events are published (each with its decision
   job), then one worker drains the jobs. Decisions per second, for comparison with part 1.

Results go to bench/results/cues-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from _common import (  # noqa: E402
    Server,
    console,
    fmt_ms,
    machine_info,
    migrate,
    percentile,
    release_engines,
    sign_in_all,
    sqlite_url,
    use_cheap_password_hashing,
    warn_if_busy,
    write_results,
)

PASSWORD = "bench-cues-password"
MEASURES = [f"m{i:02d}" for i in range(27)] + ["cravings", "weight", "steps"]
INSTRUMENTS = ["phq9", "gad7", "who5"]
ENGINE_TARGET = 10_000
LATENCY_TARGET_MS = 1000.0


# --- the 100 rules ------------------------------------------------------------------------------------

def rules_yaml() -> str:
    """96 generated rules (after the four shipped ones, which the server also runs)."""
    rng = random.Random(7)
    lines = ['id: bench-cues', 'version: "1.0.0"', "cues:",
             "  - id: answer-every-post",
             "    trigger: {event: post.created}",
             '    condition: "event.length >= 5 and person.posts_1d >= 1"',
             '    action: {notify: "Thanks for posting, {first_name} ({person.posts_7d} this week)."}',
             "    cooldown: 0 minutes"]
    n = 1
    while n < 96:
        kind = n % 8
        if kind in (0, 1, 2):
            measure = MEASURES[n % len(MEASURES)]
            cond = f"event.measure == '{measure}' and event.value >= {rng.randint(3, 9)}"
            if kind == 1:
                cond += f" and person.days_since_active >= {rng.randint(1, 5)}"
            if kind == 2:
                cond += f" and latest.steps is not None and latest.steps < {rng.randint(2000, 6000)}"
            trigger, action = "{event: tracking.logged}", '{inbox: "{display_name}: {event.measure} at {event.value}"}'
        elif kind == 3:
            cond = f"event.length > {rng.randint(2000, 9000)} and person.posts_7d < {rng.randint(2, 9)}"
            trigger, action = "{event: post.created}", '{notify: "A long post, {first_name}!"}'
        elif kind == 4:
            cond = f"event.post_author_id != event.actor_id and person.comments_1d > {rng.randint(20, 60)}"
            trigger, action = "{event: comment.created}", '{notify: "Thanks for supporting others!"}'
        elif kind == 5:
            cond = f"event.length > {rng.randint(500, 4000)}"
            trigger, action = "{event: message.received}", '{inbox: "{display_name} got a long message"}'
        elif kind == 6:
            inst = INSTRUMENTS[n % len(INSTRUMENTS)]
            cond = f"event.instrument == '{inst}' and event.band_rank >= {rng.randint(2, 4)}"
            trigger, action = "{event: questionnaire.scored}", '{inbox: "{display_name}: {event.band}"}'
        else:
            inst = INSTRUMENTS[n % len(INSTRUMENTS)]
            cond = (f"event.instrument == '{inst}' and questionnaire.{inst}.total is not None and "
                    f"questionnaire.{inst}.total > {rng.randint(10, 20)}")
            trigger, action = "{event: questionnaire.scored}", '{notify: "Thank you for answering."}'
        lines += [f"  - id: rule-{n:03d}", f"    trigger: {trigger}", f'    condition: "{cond}"',
                  f"    action: {action}"]
        n += 1
    return "\n".join(lines) + "\n"


# --- part 1: the engine -------------------------------------------------------------------------------

def event_stream(count: int, seed: int = 11) -> list[tuple[str, dict]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        r = rng.random()
        if r < 0.4:
            out.append(("tracking.logged", {"measure": rng.choice(MEASURES), "value": rng.randint(0, 10),
                                            "unit": "", "local_date": "2026-03-10", "entry_id": 1}))
        elif r < 0.6:
            out.append(("post.created", {"circle_id": 1, "post_id": 1, "length": rng.randint(1, 3000),
                                         "has_poll": False}))
        elif r < 0.8:
            out.append(("comment.created", {"circle_id": 1, "post_id": 1, "comment_id": 2, "parent_id": None,
                                            "post_author_id": 3, "length": rng.randint(1, 500)}))
        elif r < 0.9:
            out.append(("message.created", {"conversation_id": 1, "message_id": 1, "recipient_id": 2,
                                            "length": rng.randint(1, 3000)}))
        else:
            rank = rng.randint(0, 4)
            out.append(("questionnaire.scored", {"instrument": rng.choice(INSTRUMENTS), "version": "1",
                                                 "total": rng.randint(0, 27), "band": f"b{rank}", "band_rank": rank,
                                                 "previous_band": None, "previous_band_rank": None, "alerts": [],
                                                 "response_id": 1}))
    return out


def engine_run(rulesets, stream) -> dict[str, Any]:
    from peerlift.cues.engine import Context, candidates, holds

    person = {"posts_1d": 1, "posts_7d": 4, "comments_1d": 2, "comments_7d": 9, "reactions_1d": 0,
              "reactions_7d": 3, "messages_1d": 0, "messages_7d": 1, "days_since_active": 2,
              "days_in_programme": 30, "cues_today": 1}
    latest = {m: 5 for m in MEASURES}
    latest["steps"] = 2500
    questionnaire = {i: {"total": 14, "band": "moderate", "band_rank": 2, "previous_band": None,
                         "previous_band_rank": None} for i in INSTRUMENTS}
    builders = {"person": lambda: person, "latest": lambda: latest, "questionnaire": lambda: questionnaire,
                "post": lambda: {"comments": 0, "reactions": 0, "is_first": False, "minutes_old": 1}}
    evaluated = fired = 0
    t0 = time.perf_counter()
    for kind, data in stream:
        rules = candidates(rulesets, kind, data)
        if not rules:
            continue
        context = Context(builders, event={**data, "kind": kind, "actor_id": 3})
        for rule in rules:
            evaluated += 1
            if holds(rule, context):
                fired += 1
    seconds = time.perf_counter() - t0
    return {"events": len(stream), "seconds": seconds, "events_per_second": len(stream) / seconds,
            "conditions_evaluated": evaluated, "fired": fired}


def part_engine(args, rules_path: Path) -> dict[str, Any]:
    from peerlift.cues.engine import DEFAULT_FILE
    from peerlift.cues.loader import load

    rulesets = [load(DEFAULT_FILE), load(rules_path)]
    total_rules = sum(len(r.rules) for r in rulesets)
    stream = event_stream(args.events)
    runs = []
    with Progress(TextColumn("  [bold]engine runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("runs", total=args.runs)
        for _ in range(args.runs):
            runs.append(engine_run(rulesets, stream))
            bar.advance(task)
    rates = [r["events_per_second"] for r in runs]
    median = statistics.median(rates)
    table = Table(title=f"Engine: {total_rules} rules, {len(stream):,} events, {args.runs} runs")
    for col in ("run", "events/s", "conditions evaluated", "fired"):
        table.add_column(col, justify="right")
    for i, r in enumerate(runs, 1):
        table.add_row(str(i), f"{r['events_per_second']:,.0f}", f"{r['conditions_evaluated']:,}", f"{r['fired']:,}")
    console.print(table)
    met = median >= ENGINE_TARGET
    console.print(f"  median {median:,.0f} events/s per process "
                  f"({'[green]target met[/green]' if met else '[red]target missed[/red]'}: >= {ENGINE_TARGET:,})")
    return {"rules": total_rules, "runs": runs, "median_events_per_second": median, "target_met": met}


# --- part 2: post to cue, through a real server ------------------------------------------------------

def seed(url: str, members: int) -> int:
    from peerlift.community import service as community
    from peerlift.community.models import CircleRole
    from peerlift.db import transaction
    from peerlift.identity import service as identity
    from peerlift.identity.models import Role
    from peerlift.policy import circle_access

    use_cheap_password_hashing()
    with transaction() as s:
        coach = identity.create_user(s, email="coach@bench.test", password=PASSWORD, display_name="Cora Coach",
                                     role=Role.facilitator, timezone="Europe/London")
        circle = community.create_circle(s, coach, name="Cues Bench Circle", timezone="Europe/London")
        for i in range(members):
            person = identity.create_user(s, email=f"member{i + 1:03d}@bench.test", password=PASSWORD,
                                          display_name=f"Member {i + 1}", timezone="Europe/London")
            community.add_member(s, coach, circle, person, CircleRole.member)
            community.accept_rules(s, circle_access(s, person, circle.id))
        return circle.id


class CueStream:
    """One member's live stream: the arrival time of each notification.created frame."""

    def __init__(self, client) -> None:
        self.client = client
        self.arrivals: asyncio.Queue[float] = asyncio.Queue()
        self.opened = asyncio.Event()
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        async with self.client.http.stream("GET", "/api/v1/stream", timeout=None) as response:
            self.opened.set()
            event = ""
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "notification.created":
                    if json.loads(line[6:]).get("kind") == "prompt":
                        self.arrivals.put_nowait(time.perf_counter())
                elif line == "":
                    event = ""


async def latency_load(base_url: str, circle_id: int, args) -> dict[str, Any]:
    people = [(f"member{i + 1:03d}@bench.test", PASSWORD, f"m{i}") for i in range(args.members)]
    clients = await sign_in_all(base_url, people)
    for c in clients:  # no quiet hours, whatever the time of the run
        await c.http.put("/api/v1/notification-preferences", json={"quiet_start": "00:00", "quiet_end": "00:00"})
    streams = [CueStream(c) for c in clients]
    for s in streams:
        s.task = asyncio.create_task(s.run())
    await asyncio.gather(*(s.opened.wait() for s in streams))
    latencies: list[float] = []
    post_ms: list[float] = []  # the POST alone, for comparison
    lost = 0
    start = time.perf_counter()
    record_from, stop_at = start + args.warmup, start + args.warmup + args.seconds
    rng = random.Random(5)

    async def member(i: int) -> None:
        nonlocal lost
        client, stream = clients[i], streams[i]
        n = 0
        while time.perf_counter() < stop_at:
            n += 1
            t0 = time.perf_counter()
            response = await client.http.post(f"/api/v1/circles/{circle_id}/posts",
                                              json={"body": f"Walk report {n} from member {i + 1}: all good."})
            if response.status_code != 201:
                raise RuntimeError(f"post failed: {response.status_code} {response.text[:200]}")
            answered = time.perf_counter()
            try:
                arrived = await asyncio.wait_for(stream.arrivals.get(), timeout=10)
            except TimeoutError:
                lost += 1
                continue
            if t0 >= record_from:
                latencies.append((arrived - t0) * 1000)
                post_ms.append((answered - t0) * 1000)
            await asyncio.sleep(rng.uniform(0.5 * args.think, 1.5 * args.think))

    try:
        await asyncio.gather(*(member(i) for i in range(len(clients))))
    finally:
        for s in streams:
            s.task.cancel()
        await asyncio.gather(*(s.task for s in streams), return_exceptions=True)
        await asyncio.gather(*(c.aclose() for c in clients))
    latencies.sort()
    post_ms.sort()
    return {"post_p50_ms": percentile(post_ms, 50), "post_p99_ms": percentile(post_ms, 99),"members": args.members, "seconds": args.seconds, "posts": len(latencies), "lost": lost,
            "posts_per_second": len(latencies) / args.seconds,
            "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99), "max_ms": latencies[-1] if latencies else float("nan")}


def part_latency(args, rules_path: Path, workdir: Path) -> dict[str, Any]:
    url = sqlite_url(workdir)
    import os

    os.environ["PEERLIFT_DATABASE_URL"] = url
    from peerlift.settings import get_settings

    get_settings.cache_clear()
    migrate(url)
    circle_id = seed(url, args.members)
    release_engines()
    env = {"PEERLIFT_CUE_FILES": str(rules_path), "PEERLIFT_CUES_PER_DAY": "1000"}
    with Server(url, log_path=workdir / "server.log", extra_env=env) as server:
        result = asyncio.run(latency_load(server.base_url, circle_id, args))
    table = Table(title=f"Post to cue: {args.members} members posting for {args.seconds:.0f} s, 100 rules, SQLite")
    for col in ("posts", "posts/s", "lost", "p50 ms", "p95 ms", "p99 ms", "max ms", "POST alone p50 / p99 ms"):
        table.add_column(col, justify="right")
    table.add_row(f"{result['posts']:,}", f"{result['posts_per_second']:.1f}", str(result["lost"]),
                  fmt_ms(result["p50_ms"]), fmt_ms(result["p95_ms"]), fmt_ms(result["p99_ms"]), fmt_ms(result["max_ms"]),
                  f"{fmt_ms(result['post_p50_ms'])} / {fmt_ms(result['post_p99_ms'])}")
    console.print(table)
    met = result["p99_ms"] <= LATENCY_TARGET_MS and result["lost"] == 0
    console.print(f"  median {fmt_ms(result['p50_ms'])} ms, p99 {fmt_ms(result['p99_ms'])} ms "
                  f"({'[green]target met[/green]' if met else '[red]target missed[/red]'}: p99 <= 1 s, none lost)")
    result["target_met"] = met
    return result


# --- part 3: decisions through the database ---------------------------------------------------------

def part_database(args, rules_path: Path, workdir: Path) -> dict[str, Any]:
    """The same 100 rules with the context read from the event table: events published (their
    decision jobs written with them), then one worker drains the jobs; decisions per second."""
    import os

    url = sqlite_url(workdir, "database-part.db")
    os.environ["PEERLIFT_DATABASE_URL"] = url
    os.environ["PEERLIFT_CUE_FILES"] = str(rules_path)
    os.environ["PEERLIFT_CUES_PER_DAY"] = "1000"
    from peerlift.settings import get_settings

    get_settings.cache_clear()
    migrate(url)
    circle_id = seed(url, args.db_people)
    import peerlift.cues.service  # noqa: F401 - the hook in the write door
    from sqlalchemy import func, select

    from peerlift.db import transaction
    from peerlift.delivery.models import DeliveryStatus, ScheduledDelivery
    from peerlift.delivery.scheduler import Worker
    from peerlift.events import Audience, publish
    from peerlift.identity.models import User

    with transaction() as s:
        people = list(s.scalars(select(User.id).where(User.email.like("member%"))))
    stream = [e for e in event_stream(args.db_events * 3, seed=3) if e[0] in ("tracking.logged",
                                                                              "questionnaire.scored")]
    stream = stream[:args.db_events]
    t0 = time.perf_counter()
    for start in range(0, len(stream), 100):
        with transaction() as s:
            for i, (kind, data) in enumerate(stream[start:start + 100], start):
                person = people[i % len(people)]
                publish(s, kind, Audience(user_id=person), actor_id=person, data=data)
    publish_seconds = time.perf_counter() - t0
    worker = Worker(batch=200)
    t0 = time.perf_counter()
    while worker.run_once():
        pass
    seconds = time.perf_counter() - t0
    with transaction(write=False) as s:
        done = s.scalar(select(func.count()).select_from(ScheduledDelivery).where(
            ScheduledDelivery.kind == "cue.event", ScheduledDelivery.status.in_(
                (DeliveryStatus.done, DeliveryStatus.skipped))))
    release_engines()
    rate = done / seconds if seconds else 0.0
    console.print(f"  {done:,} tracking and questionnaire events for {len(people)} people in circle {circle_id}: "
                  f"published in {publish_seconds:.1f} s, decided by one worker in {seconds:.1f} s: "
                  f"[bold]{rate:,.0f} events/s[/bold] with the context read from the event table (SQLite)")
    return {"events": done, "people": len(people), "publish_seconds": publish_seconds, "seconds": seconds,
            "events_per_second": rate}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("engine", "latency", "database", "all"), default="all")
    parser.add_argument("--db-events", type=int, default=3000, help="events of the database part")
    parser.add_argument("--db-people", type=int, default=100, help="people of the database part")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--think", type=float, default=0.5, help="mean pause between a member's posts (s)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.runs, args.members, args.seconds, args.warmup = 10_000, 3, 5, 5.0, 1.0
        args.db_events, args.db_people = 500, 20
    warn_if_busy()
    results: dict[str, Any] = {"machine": machine_info(), "args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="peerlift-bench-cues-") as tmp:
        workdir = Path(tmp)
        rules_path = workdir / "bench-cues.yaml"
        rules_path.write_text(rules_yaml())
        if args.part in ("engine", "all"):
            console.rule("[bold]Cues engine throughput")
            results["engine"] = part_engine(args, rules_path)
        if args.part in ("latency", "all"):
            console.rule("[bold]Post to cue latency")
            results["latency"] = part_latency(args, rules_path, workdir)
        if args.part in ("database", "all"):
            console.rule("[bold]Decisions through the database")
            results["database"] = part_database(args, rules_path, workdir)
    path = write_results("cues", results)
    console.print(f"Results written to {path.relative_to(Path(__file__).resolve().parents[1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
