"""SQLite's writers queue in turn across threads and processes (``db.WriterQueue``), so that several
`peerlift serve` processes can share the default installation's database file."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

from sqlalchemy import text

THREADS = 3        # writers in each process
WRITES = 25        # each
HOLD = 0.002       # seconds a write transaction lasts


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _write_in_turns(url: str, tag: str, start_at: float, out) -> None:
    """One process: THREADS threads each committing WRITES short write transactions; reports the
    longest wait for the database (seconds) and any error."""
    from peerlift import db

    engine = db.get_engine(url)
    waits: list[float] = []
    errors: list[str] = []

    def writer(k: int) -> None:
        for i in range(WRITES):
            asked = time.perf_counter()
            try:
                with db.transaction(engine) as s:
                    waits.append(time.perf_counter() - asked)
                    s.execute(text("INSERT INTO turn (who, n) VALUES (:who, :n)"), {"who": tag, "n": k * 1000 + i})
                    time.sleep(HOLD)
            except Exception as exc:  # noqa: BLE001 - reported to the test
                errors.append(f"{exc.__class__.__name__}: {exc}")

    time.sleep(max(0.0, start_at - time.time()))
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((tag, max(waits, default=0.0), errors))


def _create_table(url: str) -> None:
    from peerlift import db

    with db.transaction(db.get_engine(url)) as s:
        s.execute(text("CREATE TABLE turn (id INTEGER PRIMARY KEY, who TEXT NOT NULL, n INTEGER NOT NULL)"))
    db.dispose_engines()


def _longest_run(order: list[str]) -> int:
    """The most commits in a row by one process, until one process has made its last (the other's
    remaining writes then follow each other with no one to take turns with)."""
    last = min(len(order) - 1 - order[::-1].index(who) for who in set(order))
    longest = run = 0
    previous = None
    for who in order[:last + 1]:
        run = run + 1 if who == previous else 1
        previous = who
        longest = max(longest, run)
    return longest


def test_writers_of_two_processes_take_turns(tmp_path):
    url = _url(tmp_path / "shared.db")
    _create_table(url)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 3.0  # both processes imported and ready, then they start together
    procs = [ctx.Process(target=_write_in_turns, args=(url, tag, start_at, out)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    reports = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)

    assert [errors for _tag, _wait, errors in reports] == [[], []]
    from peerlift import db

    with db.transaction(db.get_engine(url), write=False) as s:
        order = list(s.scalars(text("SELECT who FROM turn ORDER BY id")))
    db.dispose_engines()
    assert sorted(order) == ["a"] * THREADS * WRITES + ["b"] * THREADS * WRITES
    # In turn: one process's threads never pass the database among themselves while the other
    # process's writers wait. Queued only by SQLite's busy handler (which sleeps and retries) the
    # runs were 60-75 commits long here; queued in turn, 6-7.
    assert _longest_run(order) <= 4 * THREADS, "".join(order)


def _hold_a_write(url: str, ready) -> None:
    from peerlift import db

    with db.transaction(db.get_engine(url)) as s:
        s.execute(text("INSERT INTO turn (who, n) VALUES ('killed', 0)"))
        ready.set()
        time.sleep(600)  # killed before it commits


def test_a_writer_killed_in_its_transaction_lets_the_others_in(tmp_path):
    url = _url(tmp_path / "shared.db")
    _create_table(url)
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_a_write, args=(url, ready))
    holder.start()
    try:
        assert ready.wait(60), "the writing process did not start"
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(timeout=30)
        from peerlift import db

        started = time.monotonic()
        with db.transaction(db.get_engine(url)) as s:
            s.execute(text("INSERT INTO turn (who, n) VALUES ('after', 1)"))
        waited = time.monotonic() - started
        with db.transaction(db.get_engine(url), write=False) as s:
            rows = list(s.execute(text("SELECT who FROM turn")))
        db.dispose_engines()
    finally:
        if holder.is_alive():
            holder.kill()
    assert [tuple(r) for r in rows] == [("after",)]  # the killed transaction left nothing
    assert waited < 10  # the lock died with its process: no 30-second timeout


def test_a_thread_waiting_too_long_for_the_writers_queue_gets_a_clear_error(tmp_path):
    from peerlift.db import WriterQueue

    queue = WriterQueue(str(tmp_path / "x.db"))
    queue.acquire(timeout=1)
    failure: list[BaseException] = []

    def other() -> None:
        try:
            queue.acquire(timeout=0.2)
        except BaseException as exc:  # noqa: BLE001
            failure.append(exc)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    queue.release()
    assert len(failure) == 1 and isinstance(failure[0], TimeoutError)
    assert "busy with other writes" in str(failure[0])
    queue.acquire(timeout=1)  # free again after the release
    queue.release()
