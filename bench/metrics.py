"""Research metrics and report over 10 million synthetic engagement events, and their export to Parquet.

    python bench/metrics.py [--events 10000000] [--participants 20000] [--runs 3] [--keep DIR]

Set-up (not timed): a study of two arms, 200 circles, 40 staff and 20,000 participants over 180 days;
10 million events (posts, comments answering posts, reactions, votes, messages, tracking, questionnaire
answers, sign-ins) written both as the Parquet snapshot the metrics read and into the ``event`` table of
a migrated SQLite database.

Timed, each run in a fresh process (so peak memory is that run's own), medians of ``--runs``:

* metrics + report: DuckDB computes every per-participant, circle, arm and day metric, the retention
  curves and the staff activity sessions behind the cost, and the report's charts and CONSORT diagram
  are drawn. Target <= 5 s and <= 2 GB peak memory.
* export: the 10 million events read from the database and written to Parquet (the snapshot step of
  every metrics run and the engagement table of an export). Target <= 30 s.
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import console, machine_info, migrate, release_engines, sqlite_url, warn_if_busy, write_results  # noqa: E402

KINDS = ["post.created", "comment.created", "reaction.added", "poll.voted", "message.created", "tracking.logged",
         "questionnaire.scored", "session.started"]
WEIGHTS = [0.05, 0.15, 0.28, 0.03, 0.05, 0.30, 0.02, 0.12]
DAY_US = 86_400 * 1_000_000
BASE_US = 1_767_225_600 * 1_000_000  # 2026-01-01 UTC


def generate(directory: Path, events: int, participants: int, staff: int = 40, circles: int = 200,
             seed: int = 7) -> dict[str, Path]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from peerlift.research.metrics import EVENT_SCHEMA, PEOPLE_SCHEMA

    rng = np.random.default_rng(seed)
    users = np.arange(1, participants + 1, dtype=np.int64)
    arm = 1 + users % 2
    space = 1 + (users % circles)
    start = BASE_US + (users % 60) * DAY_US
    staff_ids = np.arange(participants + 1, participants + 1 + staff, dtype=np.int64)
    paths = {name: directory / f"{name}.parquet"
             for name in ("people", "staff", "circles", "events", "entries", "requests")}
    pq.write_table(pa.table({"user_id": users, "arm_id": arm, "space_id": space,
                             "start_at": pa.array(start, pa.timestamp("us", tz="UTC")),
                             "end_at": pa.nulls(participants, pa.timestamp("us", tz="UTC"))}, schema=PEOPLE_SCHEMA),
                   paths["people"])
    pq.write_table(pa.table({"user_id": staff_ids, "role": ["facilitator"] * staff}), paths["staff"])
    circle_ids = np.arange(1, circles + 1, dtype=np.int64)
    pq.write_table(pa.table({"space_id": circle_ids, "arm_id": 1 + circle_ids % 2}), paths["circles"])

    n_staff = events // 20
    n_part = events - n_staff
    actor = np.concatenate([rng.integers(1, participants + 1, n_part), rng.choice(staff_ids, n_staff)])
    kind_index = np.concatenate([rng.choice(len(KINDS), n_part, p=WEIGHTS),
                                 rng.choice([1, 2, 4], n_staff, p=[0.7, 0.2, 0.1])])
    # Participants act over 120 days from their start (fewer as weeks go by); staff over 180 days.
    offset = np.concatenate([(rng.exponential(30, n_part).clip(0, 120) * DAY_US).astype(np.int64),
                             rng.integers(0, 180 * DAY_US, n_staff)])
    base = np.concatenate([start[actor[:n_part] - 1], np.full(n_staff, BASE_US, dtype=np.int64)])
    at = base + offset
    is_post = kind_index == 0
    post_id = np.zeros(events, dtype=np.int64)
    post_id[is_post] = np.arange(1, int(is_post.sum()) + 1)
    on_post = (kind_index == 1) | (kind_index == 2)
    post_id[on_post] = rng.integers(1, max(int(is_post.sum()), 1) + 1, int(on_post.sum()))
    has_post = is_post | on_post
    space_id = np.where(actor <= participants, space[np.minimum(actor, participants) - 1],
                        rng.integers(1, circles + 1, events))
    in_space = kind_index <= 3
    recipient = np.where((kind_index == 4) & (actor > participants), rng.integers(1, participants + 1, events), 0)
    table = pa.table({
        "id": np.arange(1, events + 1, dtype=np.int64),
        "at": pa.array(at, pa.timestamp("us", tz="UTC")),
        "kind": pa.DictionaryArray.from_arrays(pa.array(kind_index.astype(np.int32)), pa.array(KINDS)).cast(pa.string()),
        "actor_id": actor,
        "space_id": pa.array(space_id, mask=~in_space),
        "post_id": pa.array(post_id, mask=~has_post),
        "recipient_id": pa.array(recipient, mask=recipient == 0),
    }, schema=EVENT_SCHEMA)
    pq.write_table(table, paths["events"])
    n_entries = events // 5
    pq.write_table(pa.table({
        "user_id": rng.integers(1, participants + 1, n_entries),
        "local_date": pa.array((BASE_US // DAY_US + rng.integers(0, 180, n_entries)).astype(np.int32), pa.date32()),
    }), paths["entries"])
    n_requests = participants * 6
    created = BASE_US + rng.integers(0, 180 * DAY_US, n_requests)
    answered = created + rng.integers(0, 3 * DAY_US, n_requests)
    pq.write_table(pa.table({
        "user_id": rng.integers(1, participants + 1, n_requests),
        "created_at": pa.array(created, pa.timestamp("us", tz="UTC")),
        "answered_at": pa.array(answered, pa.timestamp("us", tz="UTC"), mask=rng.random(n_requests) < 0.3),
    }), paths["requests"])
    return paths


def load_database(db_path: Path, events_parquet: Path, participants: int, staff: int) -> None:
    """The synthetic events into a migrated SQLite database, through sqlite3 in bulk."""
    import pyarrow.parquet as pq

    url = sqlite_url(db_path.parent, db_path.name)
    migrate(url)
    release_engines()
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    users = [(i, f"u{i}@bench.test", f"u{i}", "x", f"User {i}", "UTC", "participant" if i <= participants
              else "facilitator", 1, "2026-01-01 00:00:00.000000") for i in range(1, participants + staff + 1)]
    con.executemany("INSERT INTO user_account (id, email, handle, password_hash, display_name, timezone, role, "
                    "is_active, created_at, pronouns, bio) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '', '')", users)
    con.execute("DROP INDEX IF EXISTS ix_event_space_id_id")  # loaded faster without; made again below
    reader = pq.ParquetFile(events_parquet)
    for batch in reader.iter_batches(batch_size=200_000):
        cols = batch.to_pydict()
        rows = []
        for i in range(batch.num_rows):
            data = {}
            if cols["post_id"][i] is not None:
                data["post_id"] = cols["post_id"][i]
            if cols["recipient_id"][i] is not None:
                data["recipient_id"] = cols["recipient_id"][i]
            rows.append((cols["id"][i], cols["at"][i].strftime("%Y-%m-%d %H:%M:%S.%f"), cols["kind"][i],
                         cols["actor_id"][i], cols["space_id"][i], json.dumps(data)))
        con.executemany("INSERT INTO event (id, at, kind, actor_id, space_id, object_type, data) "
                        "VALUES (?, ?, ?, ?, ?, '', ?)", rows)
    con.execute("CREATE INDEX ix_event_space_id_id ON event (space_id, id)")
    con.commit()
    con.close()


def peak_rss_mb() -> float:
    """This process's own high-water mark (VmHWM: it starts afresh at exec, whereas ru_maxrss of a
    child can carry the parent's, here the generator's 1.2 GB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_metrics(directory: Path) -> dict:
    from peerlift.research import consort, report
    from peerlift.research.metrics import compute

    paths = {name: directory / f"{name}.parquet"
             for name in ("people", "staff", "circles", "events", "entries", "requests")}
    import datetime as dt

    now = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
    started = time.perf_counter()
    metrics = compute(paths, now)
    computed = time.perf_counter() - started
    arms = {1: "Arm 1", 2: "Arm 2"}
    report.engagement_svg(metrics, arms)
    report.retention_svg(metrics, arms)
    flow = consort.Flow(participants := len(metrics.participants), 0, [], participants,
                        [consort.ArmFlow(a["arm_id"], arms[a["arm_id"]], allocated=a["participants"])
                         for a in metrics.arms])
    consort.svg(flow)
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 3), "compute_seconds": round(computed, 3),
            "participants": len(metrics.participants), "days": len(metrics.days),
            "staff_rows": len(metrics.staff_time),
            "peak_rss_mb": peak_rss_mb()}


def run_export(db_path: Path, out: Path, participants: int, staff: int) -> dict:
    from peerlift.db import get_engine, make_session
    from peerlift.research.metrics import write_events
    import os

    os.environ["PEERLIFT_DATABASE_URL"] = sqlite_url(db_path.parent, db_path.name)
    session = make_session(get_engine())
    started = time.perf_counter()
    rows = write_events(session, list(range(1, participants + staff + 1)), out)
    seconds = time.perf_counter() - started
    session.close()
    return {"seconds": round(seconds, 3), "rows": rows, "mb": round(out.stat().st_size / 1e6, 1),
            "peak_rss_mb": peak_rss_mb()}


def child(args) -> None:
    if args.child == "metrics":
        print(json.dumps(run_metrics(Path(args.dir))))
    else:
        print(json.dumps(run_export(Path(args.dir) / "bench.db", Path(args.dir) / "export.parquet",
                                    args.participants, args.staff)))


def main() -> None:
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--participants", type=int, default=20_000)
    parser.add_argument("--staff", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", help="Folder for the generated data (kept); a temporary one otherwise")
    parser.add_argument("--child", choices=["metrics", "export"], help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    warn_if_busy("the metrics benchmark")
    holder = None if args.keep else tempfile.TemporaryDirectory(prefix="peerlift-bench-metrics-")
    directory = Path(args.keep or holder.name)
    directory.mkdir(parents=True, exist_ok=True)
    results: dict = {"events": args.events, "participants": args.participants, "machine": machine_info()}
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("Generating events", total=2 + 2 * args.runs)
        t0 = time.perf_counter()
        generate(directory, args.events, args.participants, args.staff)
        results["generate_seconds"] = round(time.perf_counter() - t0, 1)
        bar.update(task, advance=1, description="Loading them into SQLite")
        t0 = time.perf_counter()
        load_database(directory / "bench.db", directory / "events.parquet", args.participants, args.staff)
        results["load_seconds"] = round(time.perf_counter() - t0, 1)
        bar.advance(task)
        runs: dict[str, list[dict]] = {"metrics": [], "export": []}
        for step in ("metrics", "export"):
            for n in range(args.runs):
                bar.update(task, description=f"{step} run {n + 1} of {args.runs}")
                out = subprocess.run([sys.executable, __file__, "--child", step, "--dir", str(directory),
                                      "--participants", str(args.participants), "--staff", str(args.staff)],
                                     check=True, capture_output=True, text=True).stdout
                runs[step].append(json.loads(out.strip().splitlines()[-1]))
                bar.advance(task)
    results["runs"] = runs
    table = Table(title=f"Research metrics: {args.events:,} events, {args.participants:,} participants "
                        f"(median of {args.runs} runs)")
    for column in ("step", "median s", "runs s", "peak RSS MB (max)", "target"):
        table.add_column(column, justify="right")
    verdicts = []
    for step, limit_s, limit_mb in (("metrics", 5, 2048), ("export", 30, None)):
        times = [r["seconds"] for r in runs[step]]
        peak = max(r["peak_rss_mb"] for r in runs[step])
        median = statistics.median(times)
        met = median <= limit_s and (limit_mb is None or peak <= limit_mb)
        target = f"<= {limit_s} s" + (f", <= {limit_mb // 1024} GB" if limit_mb else "")
        verdicts.append(f"{step}: {'met' if met else 'MISSED'}")
        table.add_row("metrics + report" if step == "metrics" else "export to Parquet", f"{median:.2f}",
                      ", ".join(f"{t:.2f}" for t in times), f"{peak:.0f}", target)
        results[f"{step}_median_seconds"] = median
        results[f"{step}_peak_rss_mb"] = peak
    console.print(table)
    console.print(f"set-up: generated in {results['generate_seconds']} s, loaded into SQLite in "
                  f"{results['load_seconds']} s; " + "; ".join(verdicts))
    path = write_results("metrics", results)
    console.print(f"results: {path}")
    if holder is not None:
        holder.cleanup()


if __name__ == "__main__":
    main()
