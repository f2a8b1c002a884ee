"""Backup and restore of a larger database: SQLite to a file, the file into an empty SQLite database and
into an empty PostgreSQL schema, and PostgreSQL back to a file.

    python bench/backup.py [--posts 20000] [--no-postgres] [--keep DIR]

Set-up (not timed): a migrated SQLite database loaded in bulk with 2,000 people in 20 circles, ``--posts``
posts, two comments per post, six engagement events per post (JSON data) and two tracking entries per post:
224,020 rows with the default.

Timed: ``peerlift.backup.backup`` and ``peerlift.backup.restore`` as the commands run them (progress
bars aside), each once, end to end (a restore includes checking the whole file first and migrating the
empty database). PostgreSQL steps are skipped when the server is unreachable
(``PEERLIFT_BENCH_POSTGRES_URL``, default 127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    console,
    drop_postgres_schema,
    machine_info,
    migrate,
    postgres_base_url,
    release_engines,
    reset_postgres_schema,
    sqlite_url,
    warn_if_busy,
    write_results,
)

PEOPLE, CIRCLES = 2_000, 20
BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _at(seconds: float) -> str:
    return (BASE + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S.%f")


def load(db_path: Path, posts: int) -> int:
    """The synthetic world into a migrated SQLite database, through sqlite3 in bulk; its row count."""
    migrate(sqlite_url(db_path.parent, db_path.name))
    release_engines()
    rng = random.Random(7)
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA synchronous=OFF")
    con.executemany("INSERT INTO user_account (id, email, handle, password_hash, display_name, timezone, role, "
                    "is_active, created_at, pronouns, bio) VALUES (?, ?, ?, 'x', ?, 'UTC', 'participant', 1, ?, '', '')",
                    [(i, f"u{i}@bench.test", f"u{i}", f"Person {i}", _at(i)) for i in range(1, PEOPLE + 1)])
    con.executemany("INSERT INTO space (id, name, timezone, kind, allow_member_dms, premoderated, created_at, "
                    "description, rules) VALUES (?, ?, 'Europe/London', 'circle', 0, 0, ?, '', '')",
                    [(i, f"Circle {i}", _at(i)) for i in range(1, CIRCLES + 1)])
    con.executemany("INSERT INTO membership (space_id, user_id, role, gated, joined_at, last_read_post_id) "
                    "VALUES (?, ?, 'member', 0, ?, 0)",
                    [(1 + (u - 1) % CIRCLES, u, _at(u)) for u in range(1, PEOPLE + 1)])
    body = "Walked to the park and back; 4.2 km, felt good — café after ☕. " * 2
    con.executemany("INSERT INTO post (id, space_id, author_id, body, body_html, created_at, visibility, "
                    "comment_count, removed_reason) VALUES (?, ?, ?, ?, ?, ?, 'visible', 2, '')",
                    [(p, 1 + p % CIRCLES, 1 + p % PEOPLE, body, f"<p>{body}</p>", _at(p * 60)) for p in range(1, posts + 1)])
    con.executemany("INSERT INTO comment (id, post_id, author_id, body, body_html, created_at, visibility, "
                    "removed_reason) VALUES (?, ?, ?, 'Well done!', '<p>Well done!</p>', ?, 'visible', '')",
                    [(c, 1 + (c - 1) // 2, 1 + (c * 7) % PEOPLE, _at(c * 30 + 5)) for c in range(1, 2 * posts + 1)])
    kinds = ["post.created", "comment.created", "reaction.added", "tracking.logged", "session.started"]
    con.executemany("INSERT INTO event (id, at, kind, actor_id, space_id, object_type, object_id, data) "
                    "VALUES (?, ?, ?, ?, ?, 'post', ?, ?)",
                    [(e, _at(e * 10), rng.choice(kinds), 1 + e % PEOPLE, 1 + e % CIRCLES, 1 + e // 6,
                      json.dumps({"post_id": 1 + e // 6, "n": e})) for e in range(1, 6 * posts + 1)])
    con.executemany("INSERT INTO tracking_entry (id, user_id, measure_key, local_date, value, unit, recorded_at) "
                    "VALUES (?, ?, 'weight', ?, ?, 'kg', ?)",
                    [(t, 1 + t % PEOPLE, (BASE + dt.timedelta(days=t % 365)).date().isoformat(),
                      round(60 + rng.random() * 40, 1), _at(t * 45)) for t in range(1, 2 * posts + 1)])
    con.commit()
    rows = sum(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
               for t in ("user_account", "space", "membership", "post", "comment", "event", "tracking_entry"))
    con.close()
    return rows


def timed(step: str, fn, results: dict) -> None:
    started = time.perf_counter()
    summary = fn()
    seconds = time.perf_counter() - started
    results["steps"].append({"step": step, "seconds": round(seconds, 2), "rows": summary.rows,
                             "rows_per_second": round(summary.rows / seconds), "file_mb": round(summary.file_bytes / 1e6, 1),
                             "data_mb": round(summary.data_bytes / 1e6, 1)})


def main() -> None:
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--keep", help="Folder for the databases and backups (kept); a temporary one otherwise")
    args = parser.parse_args()
    warn_if_busy("the backup benchmark")
    holder = None if args.keep else tempfile.TemporaryDirectory(prefix="peerlift-bench-backup-")
    directory = Path(args.keep or holder.name)
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("source.db", "restored.db", "sqlite.backup", "postgres.backup"):
        (directory / name).unlink(missing_ok=True)

    from peerlift.backup import backup, restore
    from peerlift.settings import get_settings

    console.print(f"Loading {args.posts:,} posts and what goes with them into SQLite ...")
    source = sqlite_url(directory, "source.db")
    os.environ["PEERLIFT_DATABASE_URL"] = source
    get_settings.cache_clear()
    rows = load(directory / "source.db", args.posts)
    results: dict = {"rows": rows, "posts": args.posts, "machine": machine_info(), "steps": []}

    timed("backup SQLite", lambda: backup(source, directory / "sqlite.backup"), results)
    timed("restore into empty SQLite", lambda: restore(sqlite_url(directory, "restored.db"),
                                                      directory / "sqlite.backup"), results)
    release_engines()
    if not args.no_postgres:
        schema = f"bench_backup_{os.getpid()}"
        try:
            pg = reset_postgres_schema(postgres_base_url(), schema)
        except Exception as exc:  # noqa: BLE001 - any connection failure
            console.print(f"[yellow]PostgreSQL unreachable ({exc.__class__.__name__}); its steps are skipped.[/yellow]")
        else:
            try:
                timed("restore into empty PostgreSQL", lambda: restore(pg, directory / "sqlite.backup"), results)
                timed("backup PostgreSQL", lambda: backup(pg, directory / "postgres.backup"), results)
            finally:
                release_engines()
                drop_postgres_schema(postgres_base_url(), schema)

    table = Table(title=f"Backup and restore of {rows:,} rows")
    for column in ("step", "seconds", "rows/s", "data MB", "file MB"):
        table.add_column(column, justify="right")
    for step in results["steps"]:
        table.add_row(step["step"], f"{step['seconds']:.1f}", f"{step['rows_per_second']:,}", f"{step['data_mb']}",
                      f"{step['file_mb']}")
    console.print(table)
    console.print(f"Results written to {write_results('backup', results)}")
    if holder is not None:
        holder.cleanup()


if __name__ == "__main__":
    main()
