"""Retention: `peerlift purge` (and the worker, daily) deletes what has outlived its setting, keeps
what is recent, never touches the audit trail or a study's data, and a dry run changes nothing."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import func, or_, select
from typer.testing import CliRunner

from peerlift import db as dbmod
from peerlift.db import clock_at, utcnow
from peerlift.delivery.models import DeliveryStatus, ScheduledDelivery
from peerlift.events import Event
from peerlift.identity.audit import verify
from peerlift.identity.models import AuditEntry, AuthSession, LoginFailure, PasswordReset, User
from peerlift.notify.models import Kind, Notification
from peerlift.privacy import deletion, retention, tasks
from peerlift.settings import get_settings
from tests.conftest import PASSWORD, count_rows, run_due
from tests.factories import add_member, create_circle, create_user
from tests.research.helpers import consented, make_study

NOW = utcnow()
LONG_AGO = NOW - dt.timedelta(days=800)
LATELY = NOW - dt.timedelta(days=10)


def _the_past(world) -> dict:
    """Old and recent rows of every kind, for Olive (in no study), and two accounts deleted 40 days
    ago: Dora (in no study) and Alice (her study keeps her data)."""
    with dbmod.transaction() as s:
        olive = create_user(s, "Olive Outside")
        book_club = create_circle(s, s.get(User, world.admin.id), "Book club")
        add_member(s, book_club, olive)
        dora = create_user(s, "Dora Departed")
        setup = make_study(s, world, slug="keeps")
        consented(s, setup, s.get(User, world.alice.id))
        s.add_all([
            Event(kind="post.created", at=LONG_AGO, actor_id=olive.id, space_id=book_club.id),
            Event(kind="tracking.logged", at=LONG_AGO, actor_id=olive.id, user_id=olive.id),
            Event(kind="post.created", at=LATELY, actor_id=olive.id, space_id=book_club.id),
            Event(kind="post.created", at=LONG_AGO, actor_id=world.bob.id, space_id=world.circle.id),
            Event(kind="tracking.logged", at=LONG_AGO, actor_id=world.bob.id, user_id=world.bob.id),
            Notification(user_id=olive.id, kind=Kind.prompt, text="old", created_at=NOW - dt.timedelta(days=400)),
            Notification(user_id=olive.id, kind=Kind.prompt, text="new", created_at=LATELY),
            AuthSession(token_hash="a" * 64, csrf_token="x", user_id=olive.id, created_at=LONG_AGO,
                        last_seen_at=LONG_AGO, expires_at=NOW - dt.timedelta(days=40)),
            AuthSession(token_hash="b" * 64, csrf_token="x", user_id=olive.id, expires_at=NOW + dt.timedelta(days=5)),
            LoginFailure(email_hash="c" * 64, at=NOW - dt.timedelta(days=31)),
            LoginFailure(email_hash="c" * 64, at=NOW - dt.timedelta(minutes=3)),
            PasswordReset(token_hash="d" * 64, user_id=olive.id, expires_at=NOW - dt.timedelta(days=31)),
            PasswordReset(token_hash="e" * 64, user_id=olive.id, expires_at=NOW + dt.timedelta(hours=1)),
        ])
        ids = {"olive": olive.id, "dora": dora.id, "circle": book_club.id}
    with clock_at(NOW - dt.timedelta(days=40)), dbmod.transaction() as s:
        for person in (s.get(User, ids["dora"]), s.get(User, world.alice.id)):
            deletion.delete_account(s, person, person, password=PASSWORD, confirm=True)
    with dbmod.transaction() as s:
        s.add_all([Event(kind="tracking.logged", at=LATELY, actor_id=ids["dora"], user_id=ids["dora"]),
                   Event(kind="tracking.logged", at=LATELY, actor_id=world.alice.id, user_id=world.alice.id)])
    return ids


def _rows() -> dict[str, int]:
    return {"events": count_rows(Event), "notifications": count_rows(Notification),
            "sessions": count_rows(AuthSession), "login_failures": count_rows(LoginFailure),
            "password_resets": count_rows(PasswordReset)}


def _events_of(user_id: int) -> int:
    return count_rows(Event, or_(Event.actor_id == user_id, Event.user_id == user_id))


def test_dry_run_counts_and_changes_nothing_then_the_purge_deletes_just_that(world):
    ids = _the_past(world)
    before, audit_before = _rows(), count_rows(AuditEntry)
    with dbmod.transaction(write=False) as s:
        would = retention.purge(s, dry_run=True)
    assert _rows() == before and count_rows(AuditEntry) == audit_before
    assert {k: would[k] for k in ("notifications", "sessions", "login_failures", "password_resets", "events")} == {
        "notifications": 1, "sessions": 1, "login_failures": 1, "password_resets": 1, "events": 2}
    assert would["deleted_accounts"] == _events_of(ids["dora"]) > 0

    with dbmod.transaction() as s:
        done = retention.purge(s)
    assert done == would
    after = _rows()
    assert after["notifications"] == before["notifications"] - 1
    assert after["sessions"] == before["sessions"] - 1 and after["password_resets"] == before["password_resets"] - 1
    assert after["login_failures"] == before["login_failures"] - 1
    with dbmod.transaction(write=False) as s:
        assert s.scalar(select(Notification.text).where(Notification.user_id == ids["olive"])) == "new"
        olive_events = list(s.scalars(select(Event.at).where(Event.actor_id == ids["olive"],
                                                             Event.at < NOW - dt.timedelta(days=1))))
        assert olive_events == [LATELY]                  # the recent one stays, the old two went
    assert _events_of(ids["dora"]) == 0                  # deleted 40 days ago, held by no study
    assert _events_of(world.alice.id) > 0                # her study keeps what she did
    assert count_rows(Event, Event.actor_id == world.bob.id, Event.at == LONG_AGO) == 2  # a study's people
    # the audit trail only grew, by one entry with the counts, and its chain holds
    assert count_rows(AuditEntry) == audit_before + 1
    with dbmod.transaction(write=False) as s:
        entry = s.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1))
        assert entry.action == "retention.purged" and json.loads(entry.detail)["counts"] == done
        assert verify(s)[1] is None


def test_zero_days_keeps_a_kind_forever(world, monkeypatch):
    _the_past(world)
    monkeypatch.setenv("PEERLIFT_RETENTION_DAYS_NOTIFICATIONS", "0")
    monkeypatch.setenv("PEERLIFT_RETENTION_DAYS_EVENTS", "0")
    get_settings.cache_clear()
    before = _rows()
    with dbmod.transaction() as s:
        done = retention.purge(s)
    assert done["notifications"] == 0 and done["events"] == 0
    assert count_rows(Notification) == before["notifications"]


def test_a_bad_setting_is_refused(monkeypatch):
    import pydantic
    import pytest

    monkeypatch.setenv("PEERLIFT_RETENTION_DAYS_SESSIONS", "-1")
    get_settings.cache_clear()
    with pytest.raises(pydantic.ValidationError, match="retention_days_sessions"):
        get_settings()
    get_settings.cache_clear()


def test_the_command_prints_counts_and_a_dry_run_deletes_nothing(world):
    from peerlift.cli import app

    _the_past(world)
    before = _rows()
    dry = CliRunner().invoke(app, ["purge", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Would delete" in dry.output and "notifications" in dry.output and "PEERLIFT_RETENTION_DAYS_" in dry.output
    assert _rows() == before
    real = CliRunner().invoke(app, ["purge"])
    assert real.exit_code == 0, real.output
    assert "Deleted" in real.output
    assert _rows()["notifications"] == before["notifications"] - 1


def test_the_worker_purges_daily(world):
    _the_past(world)
    start = NOW.replace(hour=1, minute=0, second=0, microsecond=0)
    with clock_at(start), dbmod.transaction() as s:
        tasks.ensure_purge(s)
        tasks.ensure_purge(s)   # a second worker starting: still one run that day
    first = start.replace(hour=3, minute=15)
    assert count_rows(ScheduledDelivery, ScheduledDelivery.kind == "retention.purge") == 1
    with clock_at(first - dt.timedelta(minutes=1)):
        run_due()
    assert count_rows(AuditEntry, AuditEntry.action == "retention.purged") == 0
    notifications = count_rows(Notification)
    with clock_at(first + dt.timedelta(minutes=1)):
        run_due()
    assert count_rows(AuditEntry, AuditEntry.action == "retention.purged") == 1
    assert count_rows(Notification) == notifications - 1
    with dbmod.transaction(write=False) as s:
        rows = list(s.scalars(select(ScheduledDelivery).where(ScheduledDelivery.kind == "retention.purge")
                              .order_by(ScheduledDelivery.due_at)))
        assert [r.status for r in rows] == [DeliveryStatus.done, DeliveryStatus.pending]
        assert rows[1].due_at == first + dt.timedelta(days=1)
        assert s.scalar(select(func.count()).select_from(ScheduledDelivery)) >= 2
