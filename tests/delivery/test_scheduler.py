"""The scheduler: dedupe, exactly-once inside the database, retries with backoff, skip and defer."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from peerlift import db as dbmod
from peerlift.delivery import scheduler
from peerlift.delivery.models import DeliveryStatus, ScheduledDelivery
from peerlift.notify.models import Notification
from tests.conftest import count_rows, run_due


def _prompt(s, user, key, text="Time for your evening check-in.", due=None):
    return scheduler.schedule(s, "notify.prompt", {"user_id": user.id, "text": text},
                              due_at=due or dbmod.utcnow(), dedupe_key=key)


def test_due_work_is_delivered_once_and_marked_done(world):
    with dbmod.transaction() as s:
        assert _prompt(s, world.alice, "k1") is True
        assert _prompt(s, world.alice, "k1") is False  # the same key twice schedules nothing
        _prompt(s, world.bob, "k2", due=dbmod.utcnow() + dt.timedelta(hours=1))  # not due yet
    assert run_due() == 1
    assert run_due() == 0
    assert count_rows(Notification, Notification.user_id == world.alice.id) == 1
    assert count_rows(Notification, Notification.user_id == world.bob.id) == 0
    with dbmod.transaction(write=False) as s:
        row = s.scalar(select(ScheduledDelivery).where(ScheduledDelivery.dedupe_key == "k1"))
        assert row.status == DeliveryStatus.done and row.attempts == 1 and row.finished_at is not None


def test_condition_rechecked_at_send_time_skips(world):
    from peerlift.identity.models import User

    with dbmod.transaction() as s:
        _prompt(s, world.alice, "k")
        s.execute(update(User).where(User.id == world.alice.id).values(is_active=False))
    run_due()
    with dbmod.transaction(write=False) as s:
        row = s.scalar(select(ScheduledDelivery))
        assert row.status == DeliveryStatus.skipped and "no longer" in row.last_error
    assert count_rows(Notification) == 0


def test_failures_retry_with_backoff_then_give_up(world, monkeypatch):
    scheduler.load_handlers()  # registered before they are replaced, not after
    calls = []

    def broken(session, row):
        calls.append(row.id)
        raise RuntimeError("downstream is down")

    monkeypatch.setitem(scheduler.HANDLERS, "notify.prompt", scheduler.HandlerSpec(broken, external=False))
    with dbmod.transaction() as s:
        _prompt(s, world.alice, "k")
    assert run_due() == 1
    with dbmod.transaction(write=False) as s:
        row = s.scalar(select(ScheduledDelivery))
        assert row.status == DeliveryStatus.pending and row.attempts == 1
        assert row.last_error == "RuntimeError: downstream is down"
        assert row.due_at - dbmod.utcnow() > dt.timedelta(seconds=20)
    assert run_due() == 0  # not due again until the backoff has passed
    for attempt in range(2, scheduler.MAX_ATTEMPTS + 1):
        with dbmod.transaction() as s:
            s.execute(update(ScheduledDelivery).values(due_at=dbmod.utcnow() - dt.timedelta(seconds=1)))
        run_due()
    with dbmod.transaction(write=False) as s:
        row = s.scalar(select(ScheduledDelivery))
        assert row.status == DeliveryStatus.failed and row.attempts == scheduler.MAX_ATTEMPTS
    assert len(calls) == scheduler.MAX_ATTEMPTS
    assert [scheduler.backoff(n).total_seconds() for n in (1, 2, 3, 10)] == [30, 60, 120, 3600]


def test_a_failing_item_does_not_undo_its_batch(world, monkeypatch):
    scheduler.load_handlers()
    real = scheduler.HANDLERS["notify.prompt"].fn

    def picky(session, row):
        if row.payload["text"] == "bad":
            real(session, row)  # writes, then fails: the write must be rolled back
            raise ValueError("bad text")
        return real(session, row)

    monkeypatch.setitem(scheduler.HANDLERS, "notify.prompt", scheduler.HandlerSpec(picky, external=False))
    with dbmod.transaction() as s:
        _prompt(s, world.alice, "a", text="good")
        _prompt(s, world.bob, "b", text="bad")
        _prompt(s, world.pat, "c", text="good")
    run_due()
    assert count_rows(Notification) == 2
    assert count_rows(Notification, Notification.user_id == world.bob.id) == 0


def test_expired_lease_is_claimed_again(world, mailbox):
    with dbmod.transaction() as s:
        scheduler.schedule(s, "email.password_reset", {"to": world.alice.email, "token": "t0k"},
                           due_at=dbmod.utcnow(), dedupe_key="reset:1")
        # a worker claimed it and died: its lease is still in the future
        s.flush()
        s.execute(update(ScheduledDelivery).values(lease_until=dbmod.utcnow() + dt.timedelta(minutes=1),
                                                   lease_owner="dead-worker", attempts=1))
    assert run_due() == 0
    assert mailbox.messages == []
    with dbmod.transaction() as s:
        s.execute(update(ScheduledDelivery).values(lease_until=dbmod.utcnow() - dt.timedelta(seconds=1)))
    assert run_due() == 1
    assert len(mailbox.to(world.alice.email)) == 1
    with dbmod.transaction(write=False) as s:
        row = s.scalar(select(ScheduledDelivery))
        assert row.status == DeliveryStatus.done and row.lease_owner == "" and "token" not in row.payload
