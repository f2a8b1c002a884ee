"""Scheduler benchmark: how fast do `peerlift worker` processes drain a backlog of due work?

    .venv/bin/python bench/scheduler.py                       # 100,000 rows, 4 workers, --batch 200
    .venv/bin/python bench/scheduler.py --quick               # smoke run: 5,000 rows
    .venv/bin/python bench/scheduler.py --batch 50,200,1000   # one round per batch size
    .venv/bin/python bench/scheduler.py --workers 1,4         # one round per number of workers

PostgreSQL only (``FOR UPDATE SKIP LOCKED`` is what lets several workers share the table), in a
fresh schema ``bench_scheduler`` at $PEERLIFT_BENCH_POSTGRES_URL, dropped at the end. If PostgreSQL
does not answer, the script says why and exits 0.

For each round (each --workers x --batch combination):

1. Alembic creates the schema; ~100 users (--users) are bulk-inserted (one cheap argon2 hash).
2. COUNT due ``notify.prompt`` rows are inserted into ``scheduled_delivery`` with SQLAlchemy Core,
   5,000 a batch: payload {"user_id": one of the users, "text": ...}, a unique ``dedupe_key``,
   status pending, due_at = the moment of insertion (each row a microsecond apart, in id order;
   ``--same-due`` gives every row the same due_at instead, as a programme-wide prompt at 09:00
   would). VACUUM ANALYZE, as autovacuum would shortly after such a load.
3. W ``.venv/bin/peerlift worker --batch B`` processes start (PEERLIFT_DATABASE_URL; the URL also
   sets application_name so their PostgreSQL backends can be watched). The clock starts just
   before they are spawned, so it includes their start-up.
4. Every 0.5 s: how many rows are pending / done / failed, and what the workers' backends are
   waiting on (pg_stat_activity), until no row is pending (or --timeout).
5. The workers get SIGTERM. Then the check: one notification per row (count == COUNT, distinct
   delivery_id == COUNT), every row done: exactly once.

Target (product spec): 100,000 deliveries in <= 60 s with 4 workers (>= 1,667 deliveries/s).
The workers, PostgreSQL and this poller share the machine's 2 cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rich.progress import (  # noqa: E402
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table  # noqa: E402

from _common import (  # noqa: E402
    ROOT,
    VENV_BIN,
    console,
    drop_postgres_schema,
    fmt_count,
    machine_info,
    migrate,
    postgres_base_url,
    postgres_problem,
    process_cpu_seconds,
    release_engines,
    reset_postgres_schema,
    sync_postgres_sequences,
    use_cheap_password_hashing,
    vacuum_analyze_postgres,
    write_results,
)

SCHEMA = "bench_scheduler"
APP_NAME = "peerlift_bench_worker"
INSERT_BATCH = 5_000
POLL_SECONDS = 0.5
TARGET_COUNT = 100_000
TARGET_SECONDS = 60.0
TARGET_WORKERS = 4
PROMPTS = [
    "Time for your weekly check-in: how did your walking go this week?",
    "Reminder: your circle's live session is on Thursday at 7 pm.",
    "You have logged 5 days in a row. Keep it going!",
    "New this week: a short video on portion sizes in the resources section.",
]


# --- database ------------------------------------------------------------------------------------------

def with_app_name(url: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}application_name={APP_NAME}"


def seed(url: str, count: int, users: int, same_due: bool) -> dict[str, Any]:
    from sqlalchemy import func, insert, select

    from peerlift.db import get_engine, utcnow
    from peerlift.delivery.models import DeliveryStatus, ScheduledDelivery
    from peerlift.identity import service as identity
    from peerlift.identity.models import Role, User

    use_cheap_password_hashing()
    t0 = time.perf_counter()
    engine = get_engine(url).execution_options(peerlift_write=True)
    now = utcnow()
    password_hash = identity.hash_password("bench-scheduler-password")
    with engine.begin() as conn:
        base = (conn.scalar(select(func.max(User.id))) or 0) + 1
        user_ids = [base + i for i in range(users)]
        conn.execute(insert(User.__table__), [{
            "id": uid, "email": f"person{i + 1:04d}@bench.test", "handle": f"person{i + 1:04d}",
            "password_hash": password_hash, "display_name": f"Person {i + 1}", "pronouns": "", "bio": "",
            "timezone": "Europe/London", "role": Role.participant, "is_active": True, "created_at": now,
        } for i, uid in enumerate(user_ids)])
        sync_postgres_sequences(conn, ["user_account"])

    # Due "now": each row stamped a microsecond apart, the newest at the moment of insertion.
    first_due = utcnow() - dt.timedelta(microseconds=count)
    progress = Progress(TextColumn("  [bold]{task.description:<26}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=True)
    with progress:
        task = progress.add_task(f"scheduled_delivery ({INSERT_BATCH:,}/batch)", total=count)
        for start in range(0, count, INSERT_BATCH):
            rows = []
            for i in range(start, min(count, start + INSERT_BATCH)):
                rows.append({
                    "kind": "notify.prompt",
                    "payload": {"user_id": user_ids[i % users], "text": PROMPTS[i % len(PROMPTS)]},
                    "due_at": now if same_due else first_due + dt.timedelta(microseconds=i),
                    "status": DeliveryStatus.pending,
                    "dedupe_key": f"bench:prompt:{i + 1}",
                    "attempts": 0, "lease_until": None, "lease_owner": "", "last_error": "",
                    "created_at": now, "finished_at": None,
                })
            with engine.begin() as conn:
                conn.execute(insert(ScheduledDelivery.__table__), rows)
            progress.advance(task, len(rows))
    vacuum_analyze_postgres(url, ["scheduled_delivery", "user_account", "notification", "event"])
    return {"seconds": time.perf_counter() - t0, "users": users}


def counts(conn) -> dict[str, int]:
    from sqlalchemy import text

    row = conn.execute(text(
        "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'done'), "
        "count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = 'skipped'), "
        "count(*) FILTER (WHERE status = 'pending' AND attempts > 0) FROM scheduled_delivery")).one()
    return {"pending": row[0], "done": row[1], "failed": row[2], "skipped": row[3], "retrying": row[4]}


def backend_waits(conn) -> tuple[Counter, list[int]]:
    """What the workers' PostgreSQL backends are doing now, and their pids."""
    from sqlalchemy import text

    rows = conn.execute(text(
        "SELECT pid, state, wait_event_type, wait_event FROM pg_stat_activity WHERE application_name = :app"),
        {"app": APP_NAME}).all()
    seen: Counter = Counter()
    for _pid, state, wtype, wevent in rows:
        if wtype == "Lock":
            seen[f"lock:{wevent}"] += 1
        elif state == "active":
            seen[f"active:{wtype or 'cpu'}{':' + wevent if wevent else ''}"] += 1
        else:
            seen[state or "?"] += 1
    return seen, [r[0] for r in rows]


def verify(conn, count: int) -> dict[str, Any]:
    from sqlalchemy import text

    one = lambda sql: conn.execute(text(sql)).scalar()  # noqa: E731
    out = {
        "notifications": one("SELECT count(*) FROM notification"),
        "notifications_distinct_delivery": one("SELECT count(DISTINCT delivery_id) FROM notification"),
        "notifications_without_delivery": one("SELECT count(*) FROM notification WHERE delivery_id IS NULL"),
        "rows_done": one("SELECT count(*) FROM scheduled_delivery WHERE status = 'done'"),
        "rows_not_done": one("SELECT count(*) FROM scheduled_delivery WHERE status <> 'done'"),
        "rows_done_without_notification": one(
            "SELECT count(*) FROM scheduled_delivery d WHERE d.status = 'done' AND NOT EXISTS "
            "(SELECT 1 FROM notification n WHERE n.delivery_id = d.id)"),
        "max_attempts": one("SELECT max(attempts) FROM scheduled_delivery"),
        "rows_retried": one("SELECT count(*) FROM scheduled_delivery WHERE attempts > 1"),
        "events_notification_created": one("SELECT count(*) FROM event WHERE kind = 'notification.created'"),
        "last_errors": [r[0] for r in conn.execute(text(
            "SELECT DISTINCT last_error FROM scheduled_delivery WHERE last_error <> '' LIMIT 5"))],
    }
    out["notifications_for_rows_not_done"] = one(
        "SELECT count(*) FROM notification n JOIN scheduled_delivery d ON d.id = n.delivery_id "
        "WHERE d.status <> 'done'")
    # Exactly once: every row marked done has one notification, and no notification exists without
    # its row marked done (checked after the workers stopped, so in-flight batches have settled).
    out["exactly_once"] = (out["notifications"] == out["notifications_distinct_delivery"] == out["rows_done"]
                           and out["notifications_without_delivery"] == 0
                           and out["rows_done_without_notification"] == 0
                           and out["notifications_for_rows_not_done"] == 0)
    out["complete"] = out["rows_done"] == count and out["notifications"] == count
    return out


# --- workers ----------------------------------------------------------------------------------------------

def start_workers(url: str, n: int, batch: int, log_dir: Path) -> list[tuple[subprocess.Popen, Any]]:
    exe = VENV_BIN / "peerlift"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "peerlift.cli"]
    env = dict(os.environ)
    env.update({"PEERLIFT_DATABASE_URL": url, "PYTHONUNBUFFERED": "1"})
    procs = []
    for i in range(n):
        log = open(log_dir / f"worker-{i + 1}.log", "ab")
        proc = subprocess.Popen([*cmd, "worker", "--batch", str(batch)], cwd=str(ROOT), env=env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        procs.append((proc, log))
    return procs


def stop_workers(procs: list[tuple[subprocess.Popen, Any]], grace: float = 20.0) -> list[int | None]:
    for proc, _log in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    codes = []
    for proc, log in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        codes.append(proc.returncode)
        log.close()
    return codes


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- one round -----------------------------------------------------------------------------------------------

def run_round(count: int, workers: int, batch: int, args, workdir: Path) -> dict[str, Any]:
    from sqlalchemy import create_engine

    out: dict[str, Any] = {"count": count, "workers": workers, "batch": batch, "same_due": args.same_due}
    url = reset_postgres_schema(postgres_base_url(), SCHEMA)
    migrate(url)
    seeded = seed(url, count, args.users, args.same_due)
    release_engines()
    out["seed_seconds"] = seeded["seconds"]
    console.print(f"    inserted {count:,} due notify.prompt rows for {args.users} people in {seeded['seconds']:.1f} s")

    log_dir = workdir / f"w{workers}-b{batch}"
    log_dir.mkdir(parents=True, exist_ok=True)
    poll_engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)
    waits: Counter = Counter()
    samples = 0
    worker_cpu: dict[int, float] = {}
    backend_cpu: dict[int, float] = {}
    timeline: list[tuple[float, int]] = []
    procs: list = []
    try:
        with poll_engine.connect() as conn:
            t0 = time.perf_counter()
            procs = start_workers(with_app_name(url), workers, batch, log_dir)
            first_done_at = None
            progress = Progress(TextColumn("    [bold]delivering"), BarColumn(), MofNCompleteColumn(),
                                TaskProgressColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                                console=console, transient=True)
            with progress:
                task = progress.add_task("deliver", total=count, rate="")
                while True:
                    time.sleep(POLL_SECONDS)
                    now = time.perf_counter() - t0
                    c = counts(conn)
                    finished = c["done"] + c["failed"] + c["skipped"]
                    timeline.append((round(now, 2), finished))
                    if first_done_at is None and finished:
                        first_done_at = now
                    rate = finished / now if now > 0 else 0
                    progress.update(task, completed=finished, rate=f"{rate:,.0f}/s")
                    seen, pids = backend_waits(conn)
                    waits.update(seen)
                    samples += 1
                    for pid in pids:
                        cpu = process_cpu_seconds(pid)
                        if cpu is not None:
                            backend_cpu[pid] = cpu
                    for proc, _log in procs:
                        cpu = process_cpu_seconds(proc.pid)
                        if cpu is not None:
                            worker_cpu[proc.pid] = cpu
                    if c["pending"] == 0:
                        break
                    if all(p.poll() is not None for p, _ in procs):
                        out["error"] = "every worker process exited"
                        break
                    if now > args.timeout:
                        out["timed_out"] = True
                        break
            elapsed = time.perf_counter() - t0
            final = counts(conn)
    finally:
        codes = stop_workers(procs) if procs else []
    with poll_engine.connect() as conn:
        out["verify"] = verify(conn, count)
    poll_engine.dispose()

    delivered = final["done"]  # at the last poll, i.e. within `elapsed`
    out.update({
        "seconds": elapsed,
        "first_delivery_seconds": first_done_at,
        "final": final,
        "delivered": delivered,
        "rate": delivered / elapsed if elapsed > 0 else 0.0,
        # Rate once the workers are up (from the first finished row to the end).
        "steady_rate": (delivered / (elapsed - first_done_at)) if first_done_at and elapsed > first_done_at else None,
        "worker_exit_codes": codes,
        "worker_cpu_seconds": sum(worker_cpu.values()),
        "postgres_backend_cpu_seconds": sum(backend_cpu.values()) if backend_cpu else None,
        "wait_samples": samples,
        # Per poll, on average, how many of the workers' backends were in each state.
        "backend_states_mean": {k: v / samples for k, v in waits.most_common()} if samples else {},
        "timeline": timeline[:: max(1, len(timeline) // 120)],
    })
    if out.get("timed_out"):
        console.print(f"    [red]stopped after {args.timeout:.0f} s with {final['pending']:,} rows pending[/red]")
    if out.get("error"):
        console.print(f"    [red]{out['error']}[/red]\n{log_tail(log_dir / 'worker-1.log')}")
    errors = [line for i in range(workers) for line in log_tail(log_dir / f"worker-{i + 1}.log", 400).splitlines()
              if " ERROR " in line or " WARNING " in line or "Traceback" in line]
    out["worker_log_problems"] = errors[:20]
    v = out["verify"]
    console.print(
        f"    {delivered:,}/{count:,} done in {elapsed:.1f} s = {out['rate']:,.0f} deliveries/s "
        f"(first delivery after {first_done_at or 0:.1f} s; steady {out['steady_rate'] or 0:,.0f}/s)")
    console.print(
        f"    after the workers stopped: {v['rows_done']:,} rows done, {v['notifications']:,} notifications, "
        f"exactly once: {'yes' if v['exactly_once'] else '[red]NO[/red]'}; "
        f"complete: {'yes' if v['complete'] else '[red]no[/red]'}")
    quarter = rate_by_quarter(timeline)
    if quarter:
        out["rate_by_quarter"] = quarter
        console.print("    deliveries/s by quarter of the run: " + ", ".join(f"{q:,.0f}" for q in quarter))
    states = ", ".join(f"{k} {m:.1f}" for k, m in list(out["backend_states_mean"].items())[:5])
    console.print(f"    workers' PostgreSQL backends, mean per poll: {states}")
    if errors:
        console.print(f"    [yellow]worker logs have {len(errors)} warning/error lines[/yellow], e.g. {errors[0][:200]}")
    return out


def rate_by_quarter(timeline: list[tuple[float, int]]) -> list[float] | None:
    """Deliveries per second in each quarter of the run (does the rate hold as tables grow?)."""
    if len(timeline) < 8:
        return None
    end = timeline[-1][0]
    marks = [end * q / 4 for q in range(5)]
    out = []
    for lo, hi in zip(marks, marks[1:]):
        pts = [(t, n) for t, n in timeline if lo <= t <= hi]
        if len(pts) < 2:
            return None
        (t0, n0), (t1, n1) = pts[0], pts[-1]
        out.append((n1 - n0) / (t1 - t0) if t1 > t0 else 0.0)
    return out


# --- reporting --------------------------------------------------------------------------------------------------

def results_table(rounds: list[dict[str, Any]]) -> Table:
    table = Table(title="peerlift scheduler: notify.prompt deliveries by `peerlift worker` processes (PostgreSQL)",
                  title_justify="left")
    cols = ["rows", "workers", "--batch", "done", "seconds", "deliveries/s", "steady /s", "1st delivery s",
            "exactly once", "complete", "retried", "worker CPU s", "PG CPU s", "waiting on advisory lock"]
    for col in cols:
        table.add_column(col, justify="right")
    for r in rounds:
        if "verify" not in r:
            table.add_row(fmt_count(r["count"]), str(r["workers"]), str(r["batch"]), "[red]failed[/red]",
                          *[""] * (len(cols) - 4))
            continue
        v = r["verify"]
        lock = r["backend_states_mean"].get("lock:advisory", 0.0)
        secs = f"{r['seconds']:.1f}"
        if r.get("timed_out"):
            secs = f"[red]>{secs}[/red]"
        elif r["count"] >= TARGET_COUNT and r["workers"] == TARGET_WORKERS:
            ok = r["seconds"] <= TARGET_SECONDS and v["exactly_once"] and v["complete"]
            secs = f"[green]{secs}[/green]" if ok else f"[red]{secs}[/red]"
        table.add_row(
            fmt_count(r["count"]), str(r["workers"]), str(r["batch"]), f"{r['delivered']:,}", secs,
            f"{r['rate']:,.0f}", f"{r['steady_rate'] or 0:,.0f}", f"{r['first_delivery_seconds'] or 0:.1f}",
            "[green]yes[/green]" if v["exactly_once"] else "[red]NO[/red]",
            "yes" if v["complete"] else ("[red]timed out[/red]" if r.get("timed_out") else "[red]no[/red]"),
            f"{v['rows_retried']:,}",
            f"{r['worker_cpu_seconds']:.0f}",
            f"{r['postgres_backend_cpu_seconds']:.0f}" if r["postgres_backend_cpu_seconds"] is not None else "–",
            f"{lock:.1f} of {r['workers']}",
        )
    return table


def verdict(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    need_rate = TARGET_COUNT / TARGET_SECONDS
    best = None
    for r in rounds:
        if "verify" not in r or r["workers"] != TARGET_WORKERS:
            continue
        if best is None or r["rate"] > best["rate"]:
            best = r
    if best is None:
        return {"evaluated": False, "reason": f"no round with {TARGET_WORKERS} workers"}
    full = best["count"] >= TARGET_COUNT
    v = best["verify"]
    met = full and best["seconds"] <= TARGET_SECONDS and v["exactly_once"] and v["complete"]
    return {
        "evaluated": True, "full_size": full, "met": met, "batch": best["batch"], "count": best["count"],
        "seconds": best["seconds"], "rate": best["rate"], "needed_rate": need_rate,
        "delivered": best["delivered"], "timed_out": bool(best.get("timed_out")),
        "projected_seconds_for_target": TARGET_COUNT / best["rate"] if best["rate"] else None,
        "exactly_once": v["exactly_once"], "complete": v["complete"],
    }


def print_verdict(v: dict[str, Any]) -> None:
    console.print(f"\n[bold]Target[/bold]: {TARGET_COUNT:,} deliveries in <= {TARGET_SECONDS:.0f} s with "
                  f"{TARGET_WORKERS} workers (>= {TARGET_COUNT / TARGET_SECONDS:,.0f}/s), exactly once")
    if not v.get("evaluated"):
        console.print(f"  not evaluated: {v.get('reason')}")
        return
    if v["full_size"]:
        mark = "[green]MET[/green]" if v["met"] else "[red]MISSED[/red]"
        if v["timed_out"]:
            done = (f"only {v['delivered']:,} of {v['count']:,} delivered when the round gave up after "
                    f"{v['seconds']:.0f} s ({v['rate']:,.0f}/s; at that rate all would take "
                    f"~{v['count'] / max(v['rate'], 1e-9):.0f} s)")
        else:
            done = f"{v['count']:,} in {v['seconds']:.1f} s = {v['rate']:,.0f}/s"
        console.print(f"  {mark}: {done} (--batch {v['batch']}); "
                      f"exactly once: {'yes' if v['exactly_once'] else 'NO'}")
    else:
        projected = v["projected_seconds_for_target"]
        verdict_word = "on course" if projected and projected <= TARGET_SECONDS else "would miss"
        console.print(f"  not run at full size ({v['count']:,} rows): {v['rate']:,.0f}/s with --batch {v['batch']}; "
                      f"at that rate {TARGET_COUNT:,} would take ~{projected or float('nan'):.0f} s ({verdict_word})")


# --- main -----------------------------------------------------------------------------------------------------------

def _int_list(text: str) -> list[int]:
    return [int(s.replace("_", "").replace("k", "000")) for s in str(text).split(",") if s.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: 5,000 rows")
    p.add_argument("--count", type=int, help=f"due rows to deliver (default {TARGET_COUNT:,}; --quick 5,000)")
    p.add_argument("--workers", default=str(TARGET_WORKERS), help="worker processes; a comma list runs one round each")
    p.add_argument("--batch", default="500", help="--batch of each worker; a comma list runs one round each")
    p.add_argument("--users", type=int, default=100, help="people the prompts go to (default 100)")
    p.add_argument("--same-due", action="store_true", help="every row gets the same due_at")
    p.add_argument("--timeout", type=float, default=420.0, help="seconds before a round gives up (default 420)")
    args = p.parse_args(argv)
    if args.count is None:
        args.count = 5_000 if args.quick else TARGET_COUNT
    args.workers = _int_list(args.workers)
    args.batch = _int_list(args.batch)
    if args.count < 1 or not args.workers or not args.batch or min(args.workers + args.batch) < 1 or args.users < 1:
        p.error("--count, --workers, --batch and --users must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started, started_at = time.perf_counter(), dt.datetime.now(dt.UTC)
    machine = machine_info()
    console.rule("[bold]peerlift scheduler benchmark")
    problem = postgres_problem(postgres_base_url())
    if problem:
        console.print(f"[yellow]PostgreSQL is not reachable[/yellow] at {postgres_base_url()}: {problem}\n"
                      f"The scheduler benchmark needs PostgreSQL (set PEERLIFT_BENCH_POSTGRES_URL); nothing was run.")
        return 0
    console.print(f"{args.count:,} due notify.prompt rows; workers {', '.join(map(str, args.workers))}; "
                  f"--batch {', '.join(map(str, args.batch))}; {args.users} recipients"
                  + ("; all rows due at the same instant" if args.same_due else ""))
    console.print(f"[yellow]Note:[/yellow] the worker processes, PostgreSQL and this poller share the "
                  f"{machine['cpus']}-core machine.")
    try:
        load = os.getloadavg()[0]
        if load > 0.5 * (machine["cpus"] or 1):
            console.print(f"[yellow]Warning:[/yellow] load average {load:.1f} before the run: other processes "
                          f"compete for CPU and the results will be noisy.")
    except OSError:
        pass

    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="peerlift-bench-scheduler-") as tmp:
        workdir = Path(tmp)
        try:
            for workers in args.workers:
                for batch in args.batch:
                    console.print(f"[bold cyan]{workers} worker(s), --batch {batch}[/bold cyan]")
                    try:
                        rounds.append(run_round(args.count, workers, batch, args, workdir))
                    except KeyboardInterrupt:
                        raise
                    except Exception as exc:  # noqa: BLE001 - report and go on
                        console.print(f"[red]    failed:[/red] {exc.__class__.__name__}: {exc}")
                        console.print(traceback.format_exc(limit=6), markup=False, highlight=False)
                        rounds.append({"count": args.count, "workers": workers, "batch": batch,
                                       "error": f"{exc.__class__.__name__}: {exc}"})
                    finally:
                        release_engines()
        finally:
            release_engines()
            try:
                drop_postgres_schema(postgres_base_url(), SCHEMA)
            except Exception as exc:  # noqa: BLE001
                console.print(f"[yellow]Could not drop schema {SCHEMA}: {exc}[/yellow]")

    total = time.perf_counter() - started
    v = verdict(rounds)
    if rounds:
        console.print()
        console.print(results_table(rounds))
        console.print("[dim]seconds: from spawning the workers until no row is pending (includes their start-up); "
                      "steady /s: from the first delivery on. 'waiting on advisory lock': mean number of the "
                      "workers' PostgreSQL backends found waiting on an advisory lock per 0.5 s poll. CPU: "
                      "the worker processes and their PostgreSQL backends.[/dim]")
        print_verdict(v)
    payload = {
        "benchmark": "scheduler",
        "started_at": started_at.isoformat(),
        "total_seconds": total,
        "config": {"count": args.count, "workers": args.workers, "batch": args.batch, "users": args.users,
                   "same_due": args.same_due, "timeout": args.timeout, "quick": args.quick},
        "machine": machine,
        "target": {"count": TARGET_COUNT, "seconds": TARGET_SECONDS, "workers": TARGET_WORKERS, "verdict": v},
        "rounds": rounds,
    }
    path = write_results("scheduler", payload)
    console.print(f"Results: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    console.print(f"Total time: {total / 60:.1f} min ({total:.0f} s)")
    # Non-zero only when the benchmark could not do its job or exactly-once broke; a missed target is
    # a result, reported above, not a failure of the script.
    return 1 if any("error" in r or not r.get("verify", {}).get("exactly_once", False) for r in rounds) else 0


if __name__ == "__main__":
    sys.exit(main())
