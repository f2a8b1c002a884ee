"""Posts, the feed and its cursor, edits with history, deletion, pins and unread markers."""

from __future__ import annotations

import re

from sqlalchemy import select

from peerlift.community.models import Mention, Poll, PollOption, Post, PostRevision
from peerlift.events import Event
from tests.conftest import assert_error, count_rows, post


def test_member_posts_and_the_circle_sees_it(world, client_for):
    alice, bob = client_for(world.alice), client_for(world.bob)
    response = post(alice, world.circle, "Walked to work today! **3 km**")
    assert response.status_code == 201
    created = response.json()
    assert created["body_html"] == "<p>Walked to work today! <strong>3 km</strong></p>\n"
    assert created["author"]["id"] == world.alice.id and created["circle_id"] == world.circle.id
    feed = bob.get(f"/api/v1/circles/{world.circle.id}/posts").json()
    assert [p["id"] for p in feed["posts"]] == [created["id"]]
    assert feed["posts"][0]["unread"] is True and feed["unread_count"] == 1
    assert feed["posts"][0]["can_edit"] is False


def test_every_write_records_an_engagement_event(world, client_for):
    alice = client_for(world.alice)
    post_id = post(alice, world.circle, "Counting").json()["id"]
    assert count_rows(Event, Event.kind == "post.created", Event.object_id == post_id,
                      Event.actor_id == world.alice.id, Event.space_id == world.circle.id) == 1


def test_feed_is_newest_first_with_a_cursor(world, client_for):
    alice = client_for(world.alice)
    ids = [post(alice, world.circle, f"post {i}").json()["id"] for i in range(7)]
    url = f"/api/v1/circles/{world.circle.id}/posts"
    first = alice.get(url, params={"limit": 3}).json()
    assert [p["id"] for p in first["posts"]] == ids[::-1][:3]
    second = alice.get(url, params={"limit": 3, "before": first["next_cursor"]}).json()
    assert [p["id"] for p in second["posts"]] == ids[::-1][3:6]
    third = alice.get(url, params={"limit": 3, "before": second["next_cursor"]}).json()
    assert [p["id"] for p in third["posts"]] == ids[:1] and third["next_cursor"] is None


def test_feed_bad_paging(world, client_for):
    alice = client_for(world.alice)
    url = f"/api/v1/circles/{world.circle.id}/posts"
    assert_error(alice.get(url, params={"limit": 0}), 422, "invalid", "limit")
    assert_error(alice.get(url, params={"limit": 101}), 422, "invalid", "limit")
    assert_error(alice.get(url, params={"before": "abc"}), 422, "invalid", "before")
    assert_error(alice.get(url, params={"before": -4}), 422, "invalid", "before")


def test_foreign_and_unknown_circles_answer_404(world, client_for):
    alice = client_for(world.alice)
    for circle_id in (world.other_circle.id, 424242):
        assert_error(alice.get(f"/api/v1/circles/{circle_id}/posts"), 404, "not_found", "circle_id")
        assert_error(alice.get(f"/api/v1/circles/{circle_id}"), 404, "not_found")
        assert_error(post(alice, type("C", (), {"id": circle_id}), "hi"), 404, "not_found")
    assert count_rows(Post) == 0
    carol_post = post(client_for(world.carol), world.other_circle, "arm B only").json()
    assert_error(alice.get(f"/api/v1/posts/{carol_post['id']}"), 404, "not_found", "post_id")
    assert_error(alice.get(f"/api/v1/posts/{carol_post['id']}/comments"), 404)
    assert_error(alice.put(f"/api/v1/posts/{carol_post['id']}/reactions/heart"), 404)


def test_circle_list_shows_only_my_circles_with_unread_counts(world, client_for):
    alice, bob = client_for(world.alice), client_for(world.bob)
    post(alice, world.circle, "one")
    post(alice, world.circle, "two")
    circles = bob.get("/api/v1/circles").json()
    assert [(c["name"], c["unread_count"], c["my_role"]) for c in circles] == [("Morning Movers", 2, "member")]
    assert bob.post(f"/api/v1/circles/{world.circle.id}/read", json={}).status_code == 204
    assert bob.get("/api/v1/circles").json()[0]["unread_count"] == 0
    coach_circles = client_for(world.coach).get("/api/v1/circles").json()
    assert sorted(c["name"] for c in coach_circles) == ["Morning Movers", "Stride Crew"]


def test_empty_and_overlong_posts_are_refused(world, client_for):
    alice = client_for(world.alice)
    assert_error(post(alice, world.circle, ""), 422, "invalid", "body")
    assert_error(post(alice, world.circle, "  \n\t "), 422, "invalid", "body")
    error = assert_error(post(alice, world.circle, "x" * 10_001), 422, "invalid", "body")
    assert "10,000" in error["message"]
    assert post(alice, world.circle, "x" * 10_000).status_code == 201
    assert count_rows(Post) == 1


def test_wrong_types_are_refused(world, client_for):
    alice = client_for(world.alice)
    assert_error(alice.post(f"/api/v1/circles/{world.circle.id}/posts", json={"body": 12}), 422, "invalid", "body")
    assert_error(alice.post(f"/api/v1/circles/{world.circle.id}/posts", json=["body"]), 422, "invalid")
    assert count_rows(Post) == 0


def test_markdown_is_sanitised(world, client_for):
    alice = client_for(world.alice)
    body = ('<script>alert(1)</script> [click](javascript:alert(1)) ![x](https://example.test/x.png) '
            '<img src=x onerror=alert(1)> [ok](https://example.test)')
    html = post(alice, world.circle, body).json()["body_html"]
    assert "<script" not in html and "<img" not in html and 'href="javascript' not in html
    assert not re.search(r"<[^>]*onerror", html)
    assert '<a href="https://example.test" rel="noopener noreferrer nofollow ugc">ok</a>' in html
    assert "&lt;script&gt;" in html


def test_mentions_link_circle_members_only(world, client_for):
    alice = client_for(world.alice)
    created = post(alice, world.circle,
                   f"Thanks @{world.bob.handle} and @{world.carol.handle}! `@{world.pat.handle}` in code").json()
    html = created["body_html"]
    assert f'data-user-id="{world.bob.id}">@{world.bob.handle}</span>' in html
    assert f'data-user-id="{world.carol.id}"' not in html      # other arm: never mentionable
    assert f'data-user-id="{world.pat.id}"' not in html        # inside code: plain text
    assert count_rows(Mention) == 1
    assert count_rows(Event, Event.kind == "mention.created", Event.user_id == world.bob.id) == 1


def test_edit_keeps_history_and_only_the_author_edits(world, client_for):
    alice, bob, coach = client_for(world.alice), client_for(world.bob), client_for(world.coach)
    post_id = post(alice, world.circle, "first words").json()["id"]
    assert_error(bob.patch(f"/api/v1/posts/{post_id}", json={"body": "bob's words"}), 403)
    assert_error(coach.patch(f"/api/v1/posts/{post_id}", json={"body": "coach's words"}), 403)
    assert_error(alice.patch(f"/api/v1/posts/{post_id}", json={"body": " "}), 422, "invalid", "body")
    edited = alice.patch(f"/api/v1/posts/{post_id}", json={"body": "second words"}).json()
    assert edited["body"] == "second words" and edited["edited_at"] is not None
    alice.patch(f"/api/v1/posts/{post_id}", json={"body": "third words"})
    history = bob.get(f"/api/v1/posts/{post_id}/history").json()
    assert [h["body"] for h in history] == ["first words", "second words", "third words"]
    assert count_rows(PostRevision) == 2


def test_delete_own_or_as_facilitator(world, client_for):
    alice, bob, coach = client_for(world.alice), client_for(world.bob), client_for(world.coach)
    mine = post(alice, world.circle, "mine").json()["id"]
    other = post(alice, world.circle, "another").json()["id"]
    assert_error(bob.delete(f"/api/v1/posts/{mine}"), 403)
    assert_error(client_for(world.pat).delete(f"/api/v1/posts/{mine}"), 403)
    assert alice.delete(f"/api/v1/posts/{mine}").status_code == 204
    assert coach.delete(f"/api/v1/posts/{other}").status_code == 204
    assert_error(bob.get(f"/api/v1/posts/{mine}"), 404)
    assert bob.get(f"/api/v1/circles/{world.circle.id}/posts").json()["posts"] == []
    assert_error(alice.delete(f"/api/v1/posts/{mine}"), 404)


def test_facilitators_pin(world, client_for):
    alice, coach = client_for(world.alice), client_for(world.coach)
    post_id = post(coach, world.circle, "Welcome, everyone!").json()["id"]
    for i in range(3):
        post(alice, world.circle, f"later {i}")
    assert_error(alice.put(f"/api/v1/posts/{post_id}/pin"), 403)
    assert_error(client_for(world.pat).put(f"/api/v1/posts/{post_id}/pin"), 403)
    assert coach.put(f"/api/v1/posts/{post_id}/pin").json()["pinned"] is True
    feed = alice.get(f"/api/v1/circles/{world.circle.id}/posts", params={"limit": 2}).json()
    assert [p["id"] for p in feed["pinned"]] == [post_id]
    assert coach.delete(f"/api/v1/posts/{post_id}/pin").json()["pinned"] is False


def test_polls(world, client_for):
    alice, bob = client_for(world.alice), client_for(world.bob)
    created = post(alice, world.circle, "When shall we walk?",
                   poll={"question": "Best day?", "options": ["Saturday", "Sunday", "Either"]}).json()
    poll = created["poll"]
    assert poll["results_visible"] is False and all(o["votes"] is None for o in poll["options"])
    sunday = poll["options"][1]["id"]
    voted = bob.post(f"/api/v1/polls/{poll['id']}/votes", json={"option_ids": [sunday]}).json()
    assert voted["results_visible"] is True and voted["my_votes"] == [sunday]
    assert [o["votes"] for o in voted["options"]] == [0, 1, 0] and voted["voters"] == 1
    # voting again replaces the choice
    revote = bob.post(f"/api/v1/polls/{poll['id']}/votes", json={"option_ids": [poll["options"][0]["id"]]}).json()
    assert [o["votes"] for o in revote["options"]] == [1, 0, 0]
    assert alice.get(f"/api/v1/polls/{poll['id']}").json()["results_visible"] is False
    assert client_for(world.coach).get(f"/api/v1/polls/{poll['id']}").json()["results_visible"] is True


def test_poll_bad_input_writes_nothing(world, client_for):
    alice = client_for(world.alice)
    for poll, field in [
        ({"question": "Q?", "options": ["only one"]}, "poll.options"),
        ({"question": "Q?", "options": [f"o{i}" for i in range(11)]}, "poll.options"),
        ({"question": "Q?", "options": ["same", "Same"]}, "poll.options"),
        ({"question": "  ", "options": ["a", "b"]}, "poll.question"),
        ({"question": "Q?", "options": ["a", "b"], "closes_at": "2001-01-01T00:00:00Z"}, "poll.closes_at"),
    ]:
        assert_error(post(alice, world.circle, "poll", poll=poll), 422, "invalid", field)
    assert count_rows(Post) == 0 and count_rows(Poll) == 0 and count_rows(PollOption) == 0


def test_vote_bad_input(world, client_for):
    alice, bob, carol = client_for(world.alice), client_for(world.bob), client_for(world.carol)
    poll = post(alice, world.circle, "p", poll={"question": "Q?", "options": ["a", "b"]}).json()["poll"]
    other = post(carol, world.other_circle, "p", poll={"question": "Q?", "options": ["c", "d"]}).json()["poll"]
    url = f"/api/v1/polls/{poll['id']}/votes"
    assert_error(bob.post(url, json={"option_ids": [other["options"][0]["id"]]}), 422, "invalid", "option_ids")
    assert_error(bob.post(url, json={"option_ids": [999999]}), 422, "invalid", "option_ids")
    assert_error(bob.post(url, json={"option_ids": []}), 422, "invalid", "option_ids")
    assert_error(bob.post(url, json={"option_ids": [o["id"] for o in poll["options"]]}), 422, "invalid")
    assert_error(bob.post(f"/api/v1/polls/{other['id']}/votes", json={"option_ids": [other["options"][0]["id"]]}), 404)
    assert bob.get(f"/api/v1/polls/{poll['id']}").json()["my_votes"] == []


def test_multiple_choice_poll_and_closing(world, client_for):
    import datetime as dt

    from sqlalchemy import update

    from peerlift import db as dbmod

    alice, bob = client_for(world.alice), client_for(world.bob)
    closes = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    poll = post(alice, world.circle, "p", poll={"question": "Which?", "options": ["a", "b", "c"],
                                                 "multiple": True, "closes_at": closes}).json()["poll"]
    both = [poll["options"][0]["id"], poll["options"][2]["id"]]
    assert bob.post(f"/api/v1/polls/{poll['id']}/votes", json={"option_ids": both}).json()["my_votes"] == sorted(both)
    with dbmod.transaction() as s:
        s.execute(update(Poll).values(closes_at=dbmod.utcnow() - dt.timedelta(seconds=1)))
    assert_error(alice.post(f"/api/v1/polls/{poll['id']}/votes", json={"option_ids": both}), 409, "poll_closed")
    closed = alice.get(f"/api/v1/polls/{poll['id']}").json()
    assert closed["closed"] is True and closed["results_visible"] is True and closed["voters"] == 1


def test_the_feed_is_read_without_a_worker_thread_per_dependency(world, client_for, monkeypatch, database):
    """The circle feed takes no worker-thread trip for its dependencies, route or response check
    (under concurrency those cost more than the read itself): none at all on SQLite, one for the
    whole read on PostgreSQL. A sync route still takes them, which shows the count works."""
    import fastapi.dependencies.utils
    import fastapi.routing

    import peerlift.web.deps

    alice, bob, anon = client_for(world.alice), client_for(world.bob), client_for(None)
    post(alice, world.circle, "On the loop")
    trips = {"fastapi": 0, "read": 0}

    def counting(name, real):
        async def run(*args, **kwargs):
            trips[name] += 1
            return await real(*args, **kwargs)
        return run

    for module in (fastapi.routing, fastapi.dependencies.utils):
        monkeypatch.setattr(module, "run_in_threadpool", counting("fastapi", module.run_in_threadpool))
    monkeypatch.setattr(peerlift.web.deps, "run_in_threadpool", counting("read", peerlift.web.deps.run_in_threadpool))
    feed = alice.get(f"/api/v1/circles/{world.circle.id}/posts")
    assert feed.status_code == 200 and feed.json()["posts"][0]["body"] == "On the loop"
    assert trips == {"fastapi": 0, "read": 0 if database.startswith("sqlite") else 1}
    assert_error(bob.get("/api/v1/circles/999999/posts"), 404, field="circle_id")
    assert_error(anon.get(f"/api/v1/circles/{world.circle.id}/posts"), 401)
    assert trips["fastapi"] == 0
    assert alice.get("/api/v1/circles").status_code == 200
    assert trips["fastapi"] > 0


def test_reading_the_feed_extends_a_session_from_a_worker_thread(world, client_for):
    """A session seen long ago is extended by a feed read; the write happens apart from the read."""
    import datetime as dt
    import time

    from sqlalchemy import update

    from peerlift.db import transaction
    from peerlift.identity.models import AuthSession

    alice = client_for(world.alice)
    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    with transaction() as s:
        s.execute(update(AuthSession).where(AuthSession.user_id == world.alice.id)
                  .values(last_seen_at=long_ago))
    assert alice.get(f"/api/v1/circles/{world.circle.id}/posts").status_code == 200
    deadline = time.monotonic() + 10
    seen = long_ago
    while time.monotonic() < deadline:
        with transaction(write=False) as s:
            seen = max(s.scalars(select(AuthSession.last_seen_at).where(AuthSession.user_id == world.alice.id)))
        if seen > long_ago:
            break
        time.sleep(0.05)
    assert seen > long_ago


def _fields(cls) -> set[str]:
    import dataclasses

    return {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set(cls.model_fields)


def test_the_feed_json_is_written_from_the_views_in_the_documented_shape(world, client_for):
    """The feed routes write their JSON straight from the views; it must be what validating the views
    with FeedOut (the documented response model) would give, field for field."""
    from peerlift.community import queries
    from peerlift.community.schemas import FeedOut, PersonOut, PollOptionOut, PollOut, PostOut
    from peerlift.db import transaction
    from peerlift.policy import circle_access

    for view, documented in ((queries.FeedPage, FeedOut), (queries.PostView, PostOut), (queries.Person, PersonOut),
                             (queries.PollView, PollOut), (queries.PollOptionView, PollOptionOut)):
        assert _fields(view) == _fields(documented), view.__name__

    alice, bob, coach = client_for(world.alice), client_for(world.bob), client_for(world.coach)
    pinned = post(coach, world.circle, "Welcome, **everyone**!").json()["id"]
    coach.put(f"/api/v1/posts/{pinned}/pin")
    polled = post(alice, world.circle, "When shall we walk?",
                  poll={"question": "Best day?", "options": ["Saturday", "Sunday"]}).json()
    bob.post(f"/api/v1/polls/{polled['poll']['id']}/votes", json={"option_ids": [polled["poll"]["options"][0]["id"]]})
    reacted = post(bob, world.circle, "Walked 5 km").json()["id"]
    alice.put(f"/api/v1/posts/{reacted}/reactions/clap")

    got = bob.get(f"/api/v1/circles/{world.circle.id}/posts", params={"limit": 2})
    assert got.status_code == 200 and got.headers["content-type"] == "application/json"
    with transaction(write=False) as s:
        from peerlift.identity.models import User

        page = queries.feed(s, circle_access(s, s.get(User, world.bob.id), world.circle.id), limit=2)
        expected = FeedOut.model_validate(page).model_dump(mode="json")
    assert got.json() == expected
    body = got.json()
    assert body["pinned"][0]["id"] == pinned and body["next_cursor"] is not None
    assert body["posts"][1]["poll"]["my_votes"] and body["posts"][0]["reactions"] == {"clap": 1}
