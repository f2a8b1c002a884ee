"""The notification centre: who hears of what, preferences, unread counts, and the live stream."""

from __future__ import annotations

import datetime as dt

from peerlift.notify.models import Notification
from tests.conftest import assert_error, count_rows, http_login, post
from tests.sse import StreamReader


def _texts(client):
    return [n["text"] for n in client.get("/api/v1/notifications").json()["notifications"]]


def test_replies_reactions_mentions_messages_and_coach_answers(world, client_for):
    alice, bob, coach = client_for(world.alice), client_for(world.bob), client_for(world.coach)
    post_id = post(alice, world.circle, "Cravings tonight").json()["id"]
    comment = bob.post(f"/api/v1/posts/{post_id}/comments", json={"body": "Tea helps"}).json()
    bob.put(f"/api/v1/posts/{post_id}/reactions/hug")
    bob.put(f"/api/v1/posts/{post_id}/reactions/hug")  # twice: still one notification
    coach.post(f"/api/v1/posts/{post_id}/comments", json={"body": "Well done for asking", "parent_id": comment["id"]})
    post(bob, world.circle, f"Thanks @{world.alice.handle}!")
    conversation = coach.post("/api/v1/conversations", json={"user_id": world.alice.id}).json()
    coach.post(f"/api/v1/conversations/{conversation['id']}/messages", json={"body": "How are you?"})
    assert _texts(alice) == [
        "Maya Coach sent you a message",
        "Bob Baker mentioned you in Morning Movers",
        "Maya Coach, your coach, answered your post in Morning Movers",
        "Bob Baker reacted to your post in Morning Movers",
        "Bob Baker replied to you in Morning Movers",
    ]
    assert _texts(bob) == ["Maya Coach replied to you in Morning Movers"]  # the reply to bob's comment
    body = alice.get("/api/v1/notifications").json()
    assert body["unread_count"] == 5
    assert body["notifications"][0]["link"] == f"/messages/{conversation['id']}"
    assert body["notifications"][2]["link"].startswith(f"/posts/{post_id}#comment-")


def test_nobody_is_notified_of_their_own_acts(world, client_for):
    alice = client_for(world.alice)
    post_id = post(alice, world.circle, f"Note to self @{world.alice.handle}").json()["id"]
    alice.post(f"/api/v1/posts/{post_id}/comments", json={"body": "me again"})
    alice.put(f"/api/v1/posts/{post_id}/reactions/like")
    assert count_rows(Notification) == 0


def test_mark_read_some_or_all(world, client_for):
    alice, bob = client_for(world.alice), client_for(world.bob)
    post_id = post(alice, world.circle, "hi").json()["id"]
    for kind in ("like", "heart", "clap"):
        bob.put(f"/api/v1/posts/{post_id}/reactions/{kind}")
    ids = [n["id"] for n in alice.get("/api/v1/notifications").json()["notifications"]]
    assert alice.post("/api/v1/notifications/read", json={"ids": ids[:1]}).json() == {"changed": 1, "unread_count": 2}
    assert alice.post("/api/v1/notifications/read", json={"ids": ids[:1]}).json() == {"changed": 0, "unread_count": 2}
    # someone else's ids change nothing
    assert bob.post("/api/v1/notifications/read", json={"ids": ids}).json()["changed"] == 0
    assert alice.post("/api/v1/notifications/read", json={}).json() == {"changed": 2, "unread_count": 0}


def test_preferences(world, client_for):
    alice, bob = client_for(world.alice), client_for(world.bob)
    prefs = alice.get("/api/v1/notification-preferences").json()
    assert prefs["channels"]["reaction"] == "in_app" and prefs["channels"]["message"] == "email"
    assert (prefs["quiet_start"], prefs["quiet_end"], prefs["digest"]) == ("22:00", "07:00", "off")
    updated = alice.put("/api/v1/notification-preferences", json={"channels": {"reaction": "off"}, "digest": "daily",
                                                                   "digest_hour": 7}).json()
    assert updated["channels"]["reaction"] == "off" and updated["digest"] == "daily"
    post_id = post(alice, world.circle, "hi").json()["id"]
    bob.put(f"/api/v1/posts/{post_id}/reactions/like")
    assert count_rows(Notification) == 0


def test_preference_bad_input_writes_nothing(world, client_for):
    alice = client_for(world.alice)
    url = "/api/v1/notification-preferences"
    assert_error(alice.put(url, json={"channels": {"gossip": "email"}}), 422, "invalid", "channels.gossip")
    assert_error(alice.put(url, json={"channels": {"reply": "pigeon"}}), 422, "invalid", "channels.reply")
    assert_error(alice.put(url, json={"quiet_start": "25:00"}), 422, "invalid", "quiet_start")
    assert_error(alice.put(url, json={"quiet_end": "7am"}), 422, "invalid", "quiet_end")
    assert_error(alice.put(url, json={"digest": "hourly"}), 422, "invalid", "digest")
    assert_error(alice.put(url, json={"digest_hour": 24}), 422, "invalid", "digest_hour")
    assert alice.get(url).json()["quiet_start"] == "22:00"


def test_digest_is_scheduled_at_the_local_hour(world, client_for):
    from sqlalchemy import select

    from peerlift import db as dbmod
    from peerlift.delivery.models import ScheduledDelivery

    carol = client_for(world.carol)
    carol.patch("/api/v1/me", json={"timezone": "America/New_York"})
    carol.put("/api/v1/notification-preferences", json={"digest": "weekly", "digest_hour": 8})
    with dbmod.transaction(write=False) as s:
        row = s.scalar(select(ScheduledDelivery).where(ScheduledDelivery.kind == "email.digest"))
    local = row.due_at.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
    assert (local.hour, local.minute, local.weekday()) == (8, 0, 0)
    assert dt.timedelta(0) < row.due_at - dbmod.utcnow() <= dt.timedelta(days=7)


def test_digest_hour_across_daylight_saving():
    from peerlift.notify.models import Digest, Settings
    from peerlift.notify.service import next_digest_time, next_allowed

    daily = Settings(user_id=1, digest=Digest.daily, digest_hour=8, quiet_start="22:00", quiet_end="07:00")
    # Berlin leaves summer time on 2026-10-25: 08:00 local is 06:00 UTC before and 07:00 UTC after
    before = next_digest_time(daily, "Europe/Berlin", dt.datetime(2026, 10, 24, 7, 0, tzinfo=dt.UTC))
    after = next_digest_time(daily, "Europe/Berlin", before)
    assert before == dt.datetime(2026, 10, 25, 7, 0, tzinfo=dt.UTC)
    assert after == dt.datetime(2026, 10, 26, 7, 0, tzinfo=dt.UTC)
    spring = next_digest_time(daily, "Europe/Berlin", dt.datetime(2026, 3, 28, 8, 0, tzinfo=dt.UTC))
    assert spring == dt.datetime(2026, 3, 29, 6, 0, tzinfo=dt.UTC)
    # quiet hours end at 07:00 local, on the far side of the change
    late = dt.datetime(2026, 10, 24, 22, 30, tzinfo=dt.UTC)  # 00:30 in Berlin, summer time
    assert next_allowed(daily, "Europe/Berlin", late) == dt.datetime(2026, 10, 25, 6, 0, tzinfo=dt.UTC)


def test_notifications_arrive_on_the_live_stream_only_for_their_person(world, live_server):
    alice, bob = http_login(live_server.url, world.alice), http_login(live_server.url, world.bob)
    created = post(alice, world.circle, "hello")
    with StreamReader(alice) as alices, StreamReader(bob) as bobs:
        bob.put(f"/api/v1/posts/{created.json()['id']}/reactions/strong")
        frame = alices.wait_for("notification.created")
        assert frame.data["kind"] == "reaction" and frame.data["notification_id"] > 0
        assert not [f for f in bobs.collect(0.7) if f.event == "notification.created"]
