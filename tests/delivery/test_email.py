"""Email through a real SMTP server: privacy by default, invitations, password resets, outages."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from peerlift import db as dbmod
from peerlift.delivery.models import DeliveryStatus, ScheduledDelivery
from peerlift.identity.models import AuthSession, PasswordReset
from tests.conftest import assert_error, count_rows, post, run_due


def _due_now():
    with dbmod.transaction() as s:
        s.execute(update(ScheduledDelivery).where(ScheduledDelivery.status == DeliveryStatus.pending)
                  .values(due_at=dbmod.utcnow() - dt.timedelta(seconds=1)))


def _daytime(monkeypatch, world):
    """Quiet hours off for the people of these tests, so emails go out whatever the hour."""
    from peerlift.identity.models import User
    from peerlift.notify import service

    with dbmod.transaction() as s:
        for person in (world.alice, world.bob, world.coach):
            service.update_settings(s, s.get(User, person.id), quiet_start="00:00", quiet_end="00:00")


def test_activity_email_carries_no_health_content(world, client_for, mailbox, monkeypatch):
    _daytime(monkeypatch, world)
    alice, coach = client_for(world.alice), client_for(world.coach)
    post_id = post(alice, world.circle, "My blood sugar was 14 this morning and I feel awful").json()["id"]
    coach.post(f"/api/v1/posts/{post_id}/comments", json={"body": "Please call your GP about the sugar reading"})
    conversation = coach.post("/api/v1/conversations", json={"user_id": world.alice.id}).json()
    coach.post(f"/api/v1/conversations/{conversation['id']}/messages", json={"body": "Checking in on your sugar"})
    assert mailbox.messages == []  # batched for a couple of minutes
    _due_now()
    run_due()
    mails = mailbox.to(world.alice.email)
    assert len(mails) == 1
    text = mails[0].get_content()
    assert mails[0]["Subject"] == "You have 2 new notifications in peerlift"
    assert "1 new answer from your coach" in text and "1 new private message" in text
    assert "/notifications" in text
    for secret in ("sugar", "GP", "awful", "Morning Movers", "Maya"):
        assert secret not in text and secret not in mails[0]["Subject"]
    assert mails[0]["Message-ID"]


def test_nothing_is_emailed_when_already_read_or_turned_off(world, client_for, mailbox, monkeypatch):
    _daytime(monkeypatch, world)
    alice, coach = client_for(world.alice), client_for(world.coach)
    conversation = coach.post("/api/v1/conversations", json={"user_id": world.alice.id}).json()
    coach.post(f"/api/v1/conversations/{conversation['id']}/messages", json={"body": "hi"})
    alice.post("/api/v1/notifications/read", json={})
    _due_now()
    run_due()
    assert mailbox.messages == []
    with dbmod.transaction(write=False) as s:
        assert s.scalar(select(ScheduledDelivery.status)) == DeliveryStatus.skipped
    alice.put("/api/v1/notification-preferences", json={"channels": {"message": "off"}})
    coach.post(f"/api/v1/conversations/{conversation['id']}/messages", json={"body": "again"})
    assert alice.get("/api/v1/notifications").json()["unread_count"] == 0


def test_quiet_hours_defer_email_to_their_end(world, client_for, mailbox):
    from peerlift.identity.models import User
    from peerlift.notify import service

    alice = client_for(world.alice)
    # quiet all day except one minute long ago: any time now is quiet
    now_local = dbmod.utcnow().astimezone(__import__("zoneinfo").ZoneInfo(world.alice.timezone))
    start = (now_local - dt.timedelta(hours=1)).strftime("%H:%M")
    end = (now_local + dt.timedelta(hours=2)).strftime("%H:%M")
    assert alice.put("/api/v1/notification-preferences",
                     json={"quiet_start": start, "quiet_end": end}).status_code == 200
    coach = client_for(world.coach)
    conversation = coach.post("/api/v1/conversations", json={"user_id": world.alice.id}).json()
    coach.post(f"/api/v1/conversations/{conversation['id']}/messages", json={"body": "hi"})
    _due_now()
    run_due()
    assert mailbox.messages == []
    with dbmod.transaction(write=False) as s:
        row = s.scalar(select(ScheduledDelivery))
        assert row.status == DeliveryStatus.pending
        due_local = row.due_at.astimezone(now_local.tzinfo)
        assert due_local.strftime("%H:%M") == end
        settings = service.settings_for(s, world.alice.id)
        assert service.in_quiet_hours(settings, s.get(User, world.alice.id).timezone, dbmod.utcnow())


def test_invitation_email(world, client_for, mailbox):
    coach = client_for(world.coach)
    invitation = coach.post(f"/api/v1/circles/{world.circle.id}/invitations",
                            json={"email": "friend@example.test"}).json()
    run_due()
    [mail] = mailbox.to("friend@example.test")
    assert mail["Subject"] == "You are invited to a peerlift circle"
    assert f"/join/{invitation['token']}" in mail.get_content()
    assert "Morning Movers" not in mail.get_content()
    with dbmod.transaction(write=False) as s:
        assert "token" not in s.scalar(select(ScheduledDelivery.payload))
    assert_error(coach.post(f"/api/v1/circles/{world.circle.id}/invitations", json={"email": "nope"}),
                 422, "invalid", "email")


def test_password_reset_is_single_use_and_expires(world, anon, client_for, mailbox):
    alice_session = client_for(world.alice)
    assert anon.post("/api/v1/auth/password/forgot", json={"email": world.alice.email}).status_code == 202
    assert anon.post("/api/v1/auth/password/forgot", json={"email": "ghost@example.test"}).status_code == 202
    run_due()
    assert [m["To"] for m in mailbox.messages] == [world.alice.email]
    link = next(line for line in mailbox.messages[0].get_content().splitlines() if "/password/reset/" in line)
    token = link.rsplit("/", 1)[1].strip()
    assert_error(anon.post("/api/v1/auth/password/reset", json={"token": token, "password": "short"}),
                 422, "invalid", "password")
    assert anon.post("/api/v1/auth/password/reset", json={"token": token, "password": "a brand new password"}
                     ).status_code == 204
    assert_error(alice_session.get("/api/v1/me"), 401)  # every other session ended
    assert count_rows(AuthSession) == 0
    assert_error(anon.post("/api/v1/auth/password/reset", json={"token": token, "password": "another new one!"}),
                 410, "reset_used")
    ok = anon.post("/api/v1/auth/login", json={"email": world.alice.email, "password": "a brand new password"})
    assert ok.status_code == 200
    anon.post("/api/v1/auth/password/forgot", json={"email": world.alice.email})
    run_due()
    token2 = next(line for line in mailbox.messages[-1].get_content().splitlines()
                  if "/password/reset/" in line).rsplit("/", 1)[1].strip()
    with dbmod.transaction() as s:
        s.execute(update(PasswordReset).values(expires_at=dbmod.utcnow() - dt.timedelta(seconds=1)))
    assert_error(anon.post("/api/v1/auth/password/reset", json={"token": token2, "password": "yet another one"}),
                 410, "reset_expired")
    assert_error(anon.post("/api/v1/auth/password/reset", json={"token": "made-up", "password": "yet another one"}),
                 404, "reset_not_found")


def test_smtp_server_down_is_retried_never_lost_never_doubled(world, client_for, mailbox, monkeypatch):
    coach = client_for(world.coach)
    coach.post(f"/api/v1/circles/{world.circle.id}/invitations", json={"email": "later@example.test"})
    mailbox.controller.stop()
    run_due()
    with dbmod.transaction(write=False) as s:
        row = s.scalar(select(ScheduledDelivery))
        assert row.status == DeliveryStatus.pending and row.attempts == 1 and row.last_error
        assert "token" in row.payload  # kept until the mail is really sent
    mailbox.restart()
    assert run_due() == 0  # waits for its backoff
    _due_now()
    run_due()
    run_due()
    assert len(mailbox.to("later@example.test")) == 1
    with dbmod.transaction(write=False) as s:
        row = s.scalar(select(ScheduledDelivery))
        assert row.status == DeliveryStatus.done and row.attempts == 2


@pytest.mark.parametrize("url", ["http://mail.example.test", "smtp://", "smtp://host:99999", "smtp//host"])
def test_malformed_smtp_url_is_refused_at_start_up(url, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from peerlift.cli import app
    from peerlift.settings import get_settings

    monkeypatch.setenv("PEERLIFT_SMTP_URL", url)
    monkeypatch.setenv("PEERLIFT_DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["migrate"])
    get_settings.cache_clear()
    assert result.exit_code == 2
    assert "PEERLIFT_SMTP_URL" in result.output


def test_digest_email_counts_what_happened_and_schedules_the_next(world, client_for, mailbox):
    from peerlift.notify.models import Settings

    alice, bob = client_for(world.alice), client_for(world.bob)
    alice.put("/api/v1/notification-preferences", json={"digest": "daily", "digest_hour": 8})
    with dbmod.transaction() as s:
        s.execute(update(Settings).values(last_digest_at=dbmod.utcnow() - dt.timedelta(days=1)))
    for i in range(3):
        post(bob, world.circle, f"Weigh-in day {i}: down 0.4 kg")
    with dbmod.transaction(write=False) as s:
        due = s.scalar(select(ScheduledDelivery.due_at).where(ScheduledDelivery.kind == "email.digest"))
    with dbmod.clock_at(due + dt.timedelta(seconds=1)):  # the worker runs at the chosen local hour
        run_due()
    [mail] = mailbox.to(world.alice.email)
    text = mail.get_content()
    assert "3 new posts in your circles" in text and "kg" not in text and "Weigh-in" not in text
    with dbmod.transaction(write=False) as s:
        rows = s.scalars(select(ScheduledDelivery).where(ScheduledDelivery.kind == "email.digest")
                         .order_by(ScheduledDelivery.id)).all()
        assert [r.status for r in rows] == [DeliveryStatus.done, DeliveryStatus.pending]
        zone = __import__("zoneinfo").ZoneInfo(world.alice.timezone)
        first, second = (r.due_at.astimezone(zone) for r in rows)
        assert second.date() - first.date() == dt.timedelta(days=1) and second.hour == first.hour == 8


def test_without_smtp_email_goes_to_the_log(world, client_for, caplog, monkeypatch):
    import logging

    monkeypatch.delenv("PEERLIFT_SMTP_URL", raising=False)
    from peerlift.settings import get_settings

    get_settings.cache_clear()
    coach = client_for(world.coach)
    coach.post(f"/api/v1/circles/{world.circle.id}/invitations", json={"email": "logged@example.test"})
    with caplog.at_level(logging.INFO, logger="peerlift.mail"):
        run_due()
    assert any("logged@example.test" in r.getMessage() and "/join/" in r.getMessage() for r in caplog.records)
    with dbmod.transaction(write=False) as s:
        assert s.scalar(select(ScheduledDelivery.status)) == DeliveryStatus.done


def test_mail_goes_out_even_from_a_thread_that_runs_an_event_loop(world, mailbox):
    import asyncio

    from peerlift.delivery.mail import build, send

    async def inside_a_loop():
        send(build("loop@example.test", "Hello", "Body", message_key="test:loop"))

    asyncio.run(inside_a_loop())
    assert [m["Subject"] for m in mailbox.to("loop@example.test")] == ["Hello"]
