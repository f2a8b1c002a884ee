"""The hard way: two worker processes deliver 2,000 due messages on PostgreSQL while one of
them is SIGKILLed at random moments, again and again. Every message arrives exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
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
READY_SECONDS = 2.0
PEERLIFT = str(Path(sys.executable).with_name("peerlift"))


def _start(url: str) -> subprocess.Popen:
    env = {**os.environ, "PEERLIFT_DATABASE_URL": url}
    return subprocess.Popen([PEERLIFT, "worker", "--batch", "4"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


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
    workers = [_start(postgres_database), _start(postgres_database)]
    started = [time.monotonic()] * 2
    kills, deadline = 0, time.monotonic() + 240
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
            # Kill a worker that has been up long enough to have started work (on a busy machine a
            # worker takes seconds to start; killing it before then tests nothing).
            ready = [i for i in range(len(workers)) if time.monotonic() - started[i] >= READY_SECONDS]
            if not ready:
                continue
            victim = rng.choice(ready)
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()
            kills += 1
            workers[victim] = _start(postgres_database)
            started[victim] = time.monotonic()
        else:
            raise AssertionError(f"not finished in time: {_pending()} pending after {kills} kills")
    finally:
        for w in workers:
            w.send_signal(signal.SIGKILL)
            w.wait()
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
