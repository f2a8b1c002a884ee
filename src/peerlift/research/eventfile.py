"""The engagement events of a SQLite database to a Parquet file, read in a process of its own.

ADBC reads the ``event`` table as Arrow batches (no Python object per value: ten million rows in
seconds), but its driver carries its own copy of the SQLite library. Two copies of SQLite in one
process corrupt a database file that both have open: POSIX locks belong to the process, so when one
copy closes its handle it silently drops the locks the other holds, and a concurrent writer then
overwrites pages a reader is using. The app therefore never opens its own database through ADBC;
this module runs as a child process (``python -m peerlift.research.eventfile``), where SQLite's
ordinary locking between processes applies.

Only pyarrow and the ADBC driver are imported here, so the child starts quickly.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

EVENT_SCHEMA = pa.schema([("id", pa.int64()), ("at", pa.timestamp("us", tz="UTC")), ("kind", pa.string()),
                          ("actor_id", pa.int64()), ("space_id", pa.int64()), ("post_id", pa.int64()),
                          ("recipient_id", pa.int64())])
SQLITE_EVENTS = ("SELECT id, at, kind, actor_id, space_id, CAST(json_extract(data, '$.post_id') AS INTEGER), "
                 "CAST(coalesce(json_extract(data, '$.recipient_id'), user_id) AS INTEGER) FROM event")
CHILD_TIMEOUT = 3600


def sqlite_timestamps(values) -> pa.Array:
    """SQLite's text timestamps (UTC, without an offset) as UTC timestamps."""
    strings = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
    return strings.cast(pa.string()).cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))


def sqlite_query(since: str | None) -> tuple[str, tuple]:
    if since is None:
        return SQLITE_EVENTS, ()
    return SQLITE_EVENTS + " WHERE at >= ?", (since,)


def read_in_child(database: str, wanted: pa.Array, out: Path, since: str | None) -> int | None:
    """The events of ``wanted`` actors written to ``out`` by a child process; their count, or None
    when the child could not read the database (the caller then reads through its own driver)."""
    ids = out.with_suffix(".actors.parquet")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"actor_id": wanted}), ids)
    command = [sys.executable, "-m", "peerlift.research.eventfile", database, str(ids), str(out)]
    if since is not None:
        command += ["--since", since]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    finally:
        ids.unlink(missing_ok=True)
    if done.returncode != 0:
        return None
    try:
        return int(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def _write(database: str, ids: Path, out: Path, since: str | None) -> int:
    import adbc_driver_sqlite.dbapi as adbc
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    wanted = pq.read_table(ids)["actor_id"].combine_chunks()
    names = EVENT_SCHEMA.names
    sql, params = sqlite_query(since)
    rows = 0
    with (adbc.connect(f"file:{database}?mode=ro") as con, con.cursor() as cur,
          pq.ParquetWriter(out, EVENT_SCHEMA) as writer):
        cur.execute(sql, params or None)
        for batch in cur.fetch_record_batch():
            table = pa.Table.from_batches([batch]).rename_columns(names)
            table = table.filter(pc.is_in(table["actor_id"], value_set=wanted))
            table = table.set_column(1, "at", sqlite_timestamps(table["at"].combine_chunks()))
            writer.write_table(pa.table([table[n].cast(EVENT_SCHEMA.field(n).type) for n in names],
                                        schema=EVENT_SCHEMA))
            rows += table.num_rows
        if rows == 0:
            writer.write_table(EVENT_SCHEMA.empty_table())
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m peerlift.research.eventfile")
    parser.add_argument("database")
    parser.add_argument("actors", type=Path, help="Parquet file with the actor_id column of the people wanted")
    parser.add_argument("out", type=Path)
    parser.add_argument("--since", help="only events at or after this UTC time (YYYY-MM-DD HH:MM:SS)")
    args = parser.parse_args(argv)
    print(_write(args.database, args.actors, args.out, args.since))
    return 0


if __name__ == "__main__":
    sys.exit(main())
