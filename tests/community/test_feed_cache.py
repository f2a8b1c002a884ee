"""The feed's kept answers: every write that changes a page makes the next read compute it again, and a
read of an unchanged page is answered from what the process kept."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text, update

from peerlift import db as dbmod
from peerlift.community import feed_cache, queries
from peerlift.community.models import Space
from peerlift.community.schemas import FeedOut
from peerlift.identity.models import User
from peerlift.policy import circle_access
from peerlift.settings import get_settings
from tests.conftest import post
from tests.professionals.helpers import ask, community_with_a_nurse, revoke, verified


def _fresh_page(person, space_id: int, **params) -> dict:
    """The page as computed now, without the cache."""
    with dbmod.transaction(write=False) as s:
        page = queries.feed(s, circle_access(s, s.get(User, person.id), space_id), **params)
        return FeedOut.model_validate(page).model_dump(mode="json")


def _cache() -> feed_cache.FeedCache:
    cache = feed_cache.cache_for(dbmod.get_engine())
    assert cache is not None
    return cache


class Readers:
    """Each reader reads the feed twice through the API: both answers must be the page computed afresh,
    and the second must come from the cache (so the first was computed after the change, or was a
    kept answer that is still true)."""

    def __init__(self, clients: dict, space_id: int, kind: str = "circles") -> None:
        self.clients, self.space_id, self.kind = clients, space_id, kind
        self.computed = 0

    def check(self, step: str, **params) -> None:
        cache = _cache()
        for person, client in self.clients.items():
            misses = cache.misses
            first = client.get(f"/api/v1/{self.kind}/{self.space_id}/posts", params=params)
            assert first.status_code == 200, first.text
            fresh = _fresh_page(person, self.space_id, **params)
            assert first.json() == fresh, f"{step}: {person.display_name} was answered a stale page"
            self.computed += cache.misses - misses
            hits = cache.hits
            again = client.get(f"/api/v1/{self.kind}/{self.space_id}/posts", params=params)
            assert cache.hits == hits + 1, f"{step}: an unchanged page was computed again"
            assert again.content == first.content


def _version(space_id: int) -> int:
    with dbmod.transaction(write=False) as s:
        return s.scalar(select(Space.content_version).where(Space.id == space_id))


def test_every_change_a_circle_feed_shows_is_read_at_once(world, client_for):
    alice, bob, coach, pat = (client_for(p) for p in (world.alice, world.bob, world.coach, world.pat))
    readers = Readers({world.alice: alice, world.coach: coach, world.pat: pat}, world.circle.id)
    readers.check("empty")
    walk = post(alice, world.circle, "Walked to the park and back, 3 km!").json()["id"]
    readers.check("a new post")
    polled = post(bob, world.circle, "Saturday or Sunday?",
                  poll={"question": "Which day?", "options": ["Saturday", "Sunday"]}).json()
    readers.check("a poll")
    assert pat.post(f"/api/v1/polls/{polled['poll']['id']}/votes",
                    json={"option_ids": [polled["poll"]["options"][1]["id"]]}).status_code == 200
    readers.check("a vote")
    assert coach.put(f"/api/v1/posts/{walk}/pin").status_code == 200
    readers.check("a pin")
    assert bob.put(f"/api/v1/posts/{walk}/reactions/clap").status_code == 200
    readers.check("a reaction")
    assert bob.delete(f"/api/v1/posts/{walk}/reactions/clap").status_code == 200
    readers.check("a reaction taken back")
    comment = bob.post(f"/api/v1/posts/{walk}/comments", json={"body": "Well done!"}).json()["id"]
    readers.check("a comment (the count)")
    assert bob.delete(f"/api/v1/comments/{comment}").status_code == 204
    readers.check("a comment deleted")
    assert alice.patch(f"/api/v1/posts/{walk}", json={"body": "Walked to the park and back, 4 km!"}).status_code == 200
    readers.check("an edit")
    assert alice.patch("/api/v1/me", json={"display_name": "Alice A.", "pronouns": "she/her"}).status_code == 200
    readers.check("an author's name")
    assert coach.patch(f"/api/v1/circles/{world.circle.id}/members/{world.bob.id}",
                       json={"role": "peer_supporter"}).status_code == 200
    readers.check("a role beside a name")
    flag = {"object_type": "post", "object_id": polled["id"], "reason": "harmful_advice", "note": "check"}
    assert alice.post("/api/v1/flags", json=flag).status_code == 201
    item = coach.get(f"/api/v1/circles/{world.circle.id}/review").json()[0]["id"]
    assert coach.post(f"/api/v1/review/{item}/actions", json={"action": "hide"}).status_code == 201
    readers.check("hidden by a moderator")
    assert coach.post(f"/api/v1/review/{item}/actions", json={"action": "approve"}).status_code == 201
    readers.check("restored")
    assert alice.post(f"/api/v1/circles/{world.circle.id}/read", json={}).status_code == 204
    readers.check("read up to date (the reader's own marker)")
    readers.check("a second page", limit=1, before=walk + 100)
    assert alice.delete(f"/api/v1/posts/{walk}").status_code == 204
    readers.check("a post deleted")
    assert readers.computed >= 3 * 16


def test_a_community_feed_follows_pseudonyms_badges_and_escalations(world, client_for):
    nina, space, nurse, alice, bob = community_with_a_nurse(world, client_for)
    readers = Readers({world.alice: alice, world.bob: bob}, space["id"], kind="communities")
    ask(nurse, space["id"], body="Happy to help with questions about insulin pens.")
    readers.check("a post")
    application = verified(nina, world.admin)
    readers.check("verified: the badge")
    revoke(application, world.admin)
    readers.check("verification revoked")
    with dbmod.transaction() as s:
        s.execute(update(User).where(User.id == nina.id).values(pseudonym="Nurse Nights"))
    readers.check("a pseudonym")
    question = alice.post(f"/api/v1/communities/{space['id']}/posts", json={
        "body": "Is this dose safe? Everyone would be better off without me, especially my kids.",
        "for_professionals": True}).json()
    readers.check("a red question")
    from peerlift.safety.models import Escalation

    with dbmod.transaction() as s:
        escalation = s.scalar(select(Escalation).where(Escalation.object_id == question["id"]))
    assert client_for(world.admin).post(f"/api/v1/escalations/{escalation.id}/resolve",
                                        json={"outcome": "no_risk"}).status_code == 200
    readers.check("an escalation resolved")
    assert bob.delete(f"/api/v1/communities/{space['id']}/membership").status_code == 204
    readers.clients.pop(world.bob)
    readers.check("a member left")


def test_a_poll_closing_ends_the_kept_answer(world, client_for, monkeypatch):
    alice, bob = client_for(world.alice), client_for(world.bob)
    closes = dbmod.utcnow() + dt.timedelta(minutes=5)
    post(alice, world.circle, "Which walk?", poll={"question": "Where?", "options": ["Park", "River"],
                                                   "closes_at": closes.isoformat()})
    readers = Readers({world.bob: bob}, world.circle.id)
    readers.check("open poll")
    assert bob.get(f"/api/v1/circles/{world.circle.id}/posts").json()["posts"][0]["poll"]["closed"] is False
    later = closes + dt.timedelta(seconds=1)
    monkeypatch.setattr(feed_cache, "utcnow", lambda: later)
    monkeypatch.setattr(queries, "utcnow", lambda: later)
    readers.check("the poll has closed")
    assert bob.get(f"/api/v1/circles/{world.circle.id}/posts").json()["posts"][0]["poll"]["closed"] is True


def test_each_watched_table_raises_its_spaces_version_and_no_other(world):
    """Writes made with SQL alone, outside the services: the triggers see them too."""
    circle, other = world.circle.id, world.other_circle.id
    with dbmod.transaction() as s:
        from peerlift.community import service

        access = circle_access(s, s.get(User, world.alice.id), circle)
        walk = service.create_post(s, access, "Morning walk", poll_question="Again tomorrow?",
                                   poll_options=["Yes", "No"]).id
    poll_id, option_id = _one("SELECT poll.id, poll_option.id FROM poll JOIN poll_option ON poll_id = poll.id "
                              "WHERE post_id = :p ORDER BY poll_option.id LIMIT 1", p=walk)
    writes = [
        ("post", "UPDATE post SET body = 'Evening walk' WHERE id = :walk"),
        ("reaction", "INSERT INTO reaction (post_id, user_id, kind, created_at) "
                     "VALUES (:walk, :bob, 'hug', CURRENT_TIMESTAMP)"),
        ("poll", "UPDATE poll SET question = 'Again on Friday?' WHERE id = :poll"),
        ("poll_option", "UPDATE poll_option SET text = 'Yes please' WHERE id = :option"),
        ("poll_vote", "INSERT INTO poll_vote (poll_id, option_id, user_id, created_at) "
                      "VALUES (:poll, :option, :bob, CURRENT_TIMESTAMP)"),
        ("membership", "UPDATE membership SET role = 'peer_supporter' WHERE user_id = :bob AND space_id = :circle"),
        ("user_account", "UPDATE user_account SET display_name = 'Alice Archer-Smith' WHERE id = :alice"),
        ("poll_vote", "DELETE FROM poll_vote WHERE user_id = :bob"),
        ("reaction", "DELETE FROM reaction WHERE user_id = :bob"),
    ]
    ids = {"walk": walk, "bob": world.bob.id, "alice": world.alice.id, "poll": poll_id, "option": option_id,
           "circle": circle}
    for table, sql in writes:
        before = _version(circle), _version(other)
        with dbmod.transaction() as s:
            s.execute(text(sql), {k: v for k, v in ids.items() if f":{k}" in sql})
        assert _version(circle) > before[0] and _version(other) == before[1], table
    # What a page does not show raises nothing: the read marker, a sign-in, a bio.
    quiet = ["UPDATE membership SET last_read_post_id = :walk WHERE user_id = :bob",
             "UPDATE user_account SET bio = 'Walker' WHERE id = :alice"]
    for sql in quiet:
        before = _version(circle)
        with dbmod.transaction() as s:
            s.execute(text(sql), {k: v for k, v in ids.items() if f":{k}" in sql})
        assert _version(circle) == before, sql


def _one(sql: str, **params):
    with dbmod.transaction(write=False) as s:
        return s.execute(text(sql), params).one()


def test_kept_answers_stay_within_their_size_least_recently_used_out_first():
    cache = feed_cache.FeedCache(max_bytes=100)
    cache.put(("a",), b"x" * 40)
    cache.put(("b",), b"y" * 40)
    assert cache.get(("a",)) == b"x" * 40  # a is now the most recently used
    cache.put(("c",), b"z" * 40)
    assert cache.get(("b",)) is None and cache.get(("a",)) is not None and cache.get(("c",)) is not None
    assert cache.size == 80 and len(cache) == 2
    cache.put(("d",), b"w" * 101)  # larger than the whole cache: not kept
    assert cache.get(("d",)) is None and cache.size == 80
    cache.put(("a",), b"v" * 10)  # replaced, not counted twice
    assert cache.size == 50 and cache.get(("a",)) == b"v" * 10
    past = dbmod.utcnow() - dt.timedelta(seconds=1)
    cache.put(("e",), b"old", until=past)
    assert cache.get(("e",)) is None and ("e",) not in cache._entries


def test_with_no_room_set_the_feed_is_computed_every_time(world, client_for, monkeypatch):
    monkeypatch.setenv("PEERLIFT_FEED_CACHE_MB", "0")
    get_settings.cache_clear()
    dbmod.dispose_engines()
    alice = client_for(world.alice)
    post(alice, world.circle, "Hello")
    assert feed_cache.cache_for(dbmod.get_engine()) is None
    assert alice.get(f"/api/v1/circles/{world.circle.id}/posts").json() == _fresh_page(world.alice, world.circle.id)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_statements_name_every_watched_table(dialect):
    statements = " ".join(feed_cache.create_statements(dialect))
    for watched in feed_cache.WATCHED:
        assert f" ON {watched.table} " in statements
    assert len(feed_cache.drop_statements(dialect)) == (len(feed_cache.trigger_names(dialect))
                                                        + (len(feed_cache.WATCHED) if dialect == "postgresql" else 0))
