"""The hard way: two worker processes deliver 2,000 due messages on PostgreSQL while one of
them is SIGKILLed at random moments, again and again. Every message arrives exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import func, select

from peerlift import db as dbmod
from peerlift.delivery import scheduler
from peerlift.delivery.models import DeliveryStatus, ScheduledDelivery
from peerlift.notify.models import Notification
from tests.conftest import build_world

MESSAGES = 2_000
KILLS = 20
PEERLIFT = str(Path(sys.executable).with_name("peerlift"))


class Worker:
    """A `peerlift worker` process and the moment it said it was running (its threads claim work from
    then on; on a busy machine the imports before that take seconds, and killing it earlier tests nothing)."""

    def __init__(self, url: str) -> None:
        env = {**os.environ, "PEERLIFT_DATABASE_URL": url}
        self.process = subprocess.Popen([PEERLIFT, "worker", "--batch", "4"], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
        self.ready_at: float | None = None
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        for line in self.process.stdout:
            if "running" in line and self.ready_at is None:
                self.ready_at = time.monotonic()

    def up_for(self) -> float:
        return 0.0 if self.ready_at is None else time.monotonic() - self.ready_at

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


# The rows this test schedules (a worker also keeps the cues' five-minute tick scheduled ahead).
PROMPTS = ScheduledDelivery.kind == "notify.prompt"


def _pending() -> int:
    with dbmod.transaction(write=False) as s:
        return s.scalar(select(func.count()).select_from(ScheduledDelivery)
                        .where(ScheduledDelivery.status == DeliveryStatus.pending, PROMPTS))


def test_workers_killed_at_random_deliver_everything_exactly_once(postgres_database):
    with dbmod.transaction() as s:
        world = build_world(s)
        people = [world.alice, world.bob, world.pat, world.carol, world.coach]
        for i in range(MESSAGES):
            scheduler.schedule(s, "notify.prompt", {"user_id": people[i % len(people)].id, "text": f"prompt {i}"},
                               due_at=dbmod.utcnow(), dedupe_key=f"crash:{i}")
    rng = random.Random(20261125)
    workers = [Worker(postgres_database), Worker(postgres_database)]
    kills, deadline = 0, time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(0.3, 0.9))
            pending = _pending()
            if pending == 0 and kills >= KILLS:
                break
            if pending == 0:
                # everything went out before enough kills: add more work and keep killing
                with dbmod.transaction() as s:
                    for i in range(200):
                        n = MESSAGES + kills * 1000 + i
                        scheduler.schedule(s, "notify.prompt", {"user_id": world.alice.id, "text": f"extra {n}"},
                                           due_at=dbmod.utcnow(), dedupe_key=f"crash:{n}")
            if kills >= KILLS:
                continue  # enough crashes: the survivors (and their successors) finish the work
            # Kill a worker that has been claiming work for a moment, at a random point of its batches.
            ready = [i for i, w in enumerate(workers) if w.up_for() >= rng.uniform(0.3, 1.5)]
            if not ready:
                continue
            victim = rng.choice(ready)
            workers[victim].kill()
            kills += 1
            workers[victim] = Worker(postgres_database)
        else:
            raise AssertionError(f"not finished in time: {_pending()} pending after {kills} kills")
    finally:
        for w in workers:
            w.kill()
    assert kills >= KILLS
    with dbmod.transaction(write=False) as s:
        total = s.scalar(select(func.count()).select_from(ScheduledDelivery).where(PROMPTS))
        done = s.scalar(select(func.count()).select_from(ScheduledDelivery)
                        .where(ScheduledDelivery.status == DeliveryStatus.done, PROMPTS))
        delivered = s.scalar(select(func.count(Notification.id)))
        distinct = s.scalar(select(func.count(func.distinct(Notification.delivery_id))))
        texts = s.scalar(select(func.count(func.distinct(Notification.text))))
    assert total >= MESSAGES
    assert done == total
    assert delivered == total == distinct == texts  # exactly once: no loss, no double
