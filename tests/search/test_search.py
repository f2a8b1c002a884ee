"""Search finds what the searcher may open, and nothing else; the index follows every change."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from peerlift import db as dbmod
from peerlift.community.models import Comment, Post, SpaceKind
from peerlift.events import Event
from peerlift.search.index import reindex
from peerlift.search.models import SearchDocument
from tests.conftest import assert_error, count_rows, post


def found(client, q: str, **params) -> list[tuple[str, int]]:
    response = client.get("/api/v1/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return [(hit["kind"], hit["id"]) for hit in response.json()["results"]]


def comment(client, post_id: int, body: str) -> int:
    response = client.post(f"/api/v1/posts/{post_id}/comments", json={"body": body})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_posts_and_comments_are_found_and_open(world, client_for):
    alice, bob = client_for(world.alice), client_for(world.bob)
    post_id = post(alice, world.circle, "Tried the breathing exercise before bed, slept much better").json()["id"]
    comment_id = comment(bob, post_id, "The breathing trick works for me on walks too")
    assert set(found(bob, "breathing")) == {("post", post_id), ("comment", comment_id)}
    hits = bob.get("/api/v1/search", params={"q": "slept"}).json()["results"]
    assert [h["id"] for h in hits] == [post_id]
    assert hits[0]["url"] == f"/posts/{post_id}" and hits[0]["space_id"] == world.circle.id
    assert hits[0]["author_name"] == world.alice.display_name and hits[0]["author_type"] == "member"
    assert "<mark>slept</mark>" in hits[0]["snippet_html"]
    assert bob.get(hits[0]["url"]).status_code == 200
    comment_hit = bob.get("/api/v1/search", params={"q": "trick"}).json()["results"][0]
    assert comment_hit["url"] == f"/posts/{post_id}#comment-{comment_id}"
    # Stemming: a different form of the word is found, on both databases.
    assert found(bob, "exercises") == [("post", post_id)]
    # Every word must match.
    assert found(bob, "breathing elephants") == []


def test_the_index_follows_edits_deletions_and_moderation(world, client_for):
    alice, bob, coach = client_for(world.alice), client_for(world.bob), client_for(world.coach)
    post_id = post(alice, world.circle, "Swimming laps every morning").json()["id"]
    comment_id = comment(bob, post_id, "Swimming is lovely, I prefer cycling")
    assert set(found(bob, "swimming")) == {("post", post_id), ("comment", comment_id)}
    # An edit replaces the words found.
    assert alice.patch(f"/api/v1/posts/{post_id}", json={"body": "Rowing laps every morning"}).status_code == 200
    assert found(bob, "swimming") == [("comment", comment_id)]
    assert found(bob, "rowing") == [("post", post_id)]
    assert bob.patch(f"/api/v1/comments/{comment_id}", json={"body": "Rowing is lovely"}).status_code == 200
    assert found(bob, "cycling") == []
    # Hiding by moderation takes the post out, and its comments with it; approving brings both back.
    flag = {"object_type": "post", "object_id": post_id, "reason": "harmful_advice", "note": "check"}
    assert bob.post("/api/v1/flags", json=flag).status_code == 201
    item_id = coach.get(f"/api/v1/circles/{world.circle.id}/review").json()[0]["id"]
    assert coach.post(f"/api/v1/review/{item_id}/actions", json={"action": "hide"}).status_code == 201
    assert found(bob, "rowing") == []
    assert found(alice, "rowing") == []  # not even the author: search covers what the circle sees
    assert coach.post(f"/api/v1/review/{item_id}/actions", json={"action": "approve"}).status_code == 201
    assert set(found(bob, "rowing")) == {("post", post_id), ("comment", comment_id)}
    # Deleting the comment, then the post.
    assert bob.delete(f"/api/v1/comments/{comment_id}").status_code == 204
    assert found(bob, "rowing") == [("post", post_id)]
    assert alice.delete(f"/api/v1/posts/{post_id}").status_code == 204
    assert found(bob, "rowing") == []
    # Removal by moderation.
    other = post(alice, world.circle, "Rowing machines are dull").json()["id"]
    assert found(bob, "rowing") == [("post", other)]
    assert bob.post("/api/v1/flags", json={**flag, "object_id": other}).status_code == 201
    item_id = coach.get(f"/api/v1/circles/{world.circle.id}/review").json()[0]["id"]
    assert coach.post(f"/api/v1/review/{item_id}/actions",
                      json={"action": "remove", "reason": "Off topic."}).status_code == 201
    assert found(bob, "rowing") == [] and found(coach, "rowing") == []
    assert count_rows(SearchDocument) == 0


def test_held_writing_is_not_found_until_released(world, client_for):
    alice, bob, coach = client_for(world.alice), client_for(world.bob), client_for(world.coach)
    assert coach.put(f"/api/v1/circles/{world.circle.id}/members/{world.alice.id}/gating",
                     json={"gated": True}).status_code == 204
    body = post(alice, world.circle, "Waiting for approval about marathons").json()
    assert body["visibility"] == "held"
    for who in (alice, bob, coach):  # held writing: not in search, for anyone
        assert found(who, "marathons") == []
    item = coach.get(f"/api/v1/circles/{world.circle.id}/review").json()[0]
    assert coach.post(f"/api/v1/review/{item['id']}/actions", json={"action": "approve"}).status_code == 201
    assert found(bob, "marathons") == [("post", body["id"])]


def test_bulk_changes_reach_the_index(world, client_for):
    """Statements that change many rows at once (account deletion, withdrawal) re-index what they touch."""
    from sqlalchemy import update

    alice, bob = client_for(world.alice), client_for(world.bob)
    post_id = post(alice, world.circle, "Yoga on the balcony").json()["id"]
    comment_id = comment(bob, post_id, "Yoga is my favourite")
    with dbmod.transaction() as s:
        s.execute(update(Comment).where(Comment.id == comment_id).values(body="", deleted_at=dbmod.utcnow()))
    assert found(bob, "yoga") == [("post", post_id)]
    with dbmod.transaction() as s:
        s.execute(update(Post).where(Post.id == post_id).values(comment_count=0))  # not a watched column
        s.execute(update(Post).where(Post.id == post_id).values(visibility="removed"))
    assert found(bob, "yoga") == []


def test_access_other_circle_other_arm_and_non_members(world, client_for):
    alice, carol, other_coach = client_for(world.alice), client_for(world.carol), client_for(world.other_coach)
    coach, admin, researcher = client_for(world.coach), client_for(world.admin), client_for(world.researcher)
    in_a = post(alice, world.circle, "Arm A secret recipe for lentil soup").json()["id"]
    in_b = post(carol, world.other_circle, "Arm B lentil curry recipe").json()["id"]
    # Positive controls: each sees their own circle's writing.
    assert found(alice, "lentil") == [("post", in_a)]
    assert found(carol, "lentil") == [("post", in_b)]
    # A participant of another arm never finds arm A's writing, not even asking for the circle.
    assert found(carol, "secret recipe") == []
    assert_error(carol.get("/api/v1/search", params={"q": "lentil", "space_id": world.circle.id}), 404,
                 field="space_id")
    assert found(other_coach, "lentil") == [("post", in_b)]
    # The coach facilitates both circles and finds both; no circle, no results (admin, researcher).
    assert set(found(coach, "lentil")) == {("post", in_a), ("post", in_b)}
    assert found(admin, "lentil") == [] and found(researcher, "lentil") == []


def test_open_community_members_only(world, client_for):
    from tests.factories import add_member, create_circle

    with dbmod.transaction() as s:
        community = create_circle(s, world.admin, "Sleep community")
        community.kind = SpaceKind.community
        add_member(s, community, world.carol)
        community_id = community.id
    carol, alice = client_for(world.carol), client_for(world.alice)
    post_id = post(carol, type("C", (), {"id": community_id}), "Insomnia tips from the community").json()["id"]
    assert found(carol, "insomnia") == [("post", post_id)]
    assert found(carol, "insomnia", space_id=community_id) == [("post", post_id)]
    assert found(alice, "insomnia") == []  # not a member
    assert_error(alice.get("/api/v1/search", params={"q": "insomnia", "space_id": community_id}), 404,
                 field="space_id")


def test_filters_and_ranking(world, client_for):
    alice, bob, coach = client_for(world.alice), client_for(world.bob), client_for(world.coach)
    once = post(alice, world.circle, "A short note: hydration matters, and so does rest, sunlight and good "
                                     "company over a long weekend away from screens and from work").json()["id"]
    many = post(bob, world.circle, "Hydration hydration hydration").json()["id"]
    staff = post(coach, world.circle, "Coach tip: hydration before the walk").json()["id"]
    older = post(alice, world.circle, "Stretching").json()["id"]
    newer = post(bob, world.circle, "Stretching").json()["id"]
    hits = found(alice, "hydration")
    assert hits[0] == ("post", many) and hits[-1] == ("post", once)  # dense short match first
    assert found(alice, "stretching") == [("post", newer), ("post", older)]  # equal rank: newest first
    assert set(found(alice, "hydration", author_type="staff")) == {("post", staff)}
    assert set(found(alice, "hydration", author_type="member")) == {("post", once), ("post", many)}
    assert set(found(alice, "hydration", space_id=world.circle.id)) == {("post", p) for p in (once, many, staff)}
    # Pages: a cursor gives the rest, never twice the same.
    first = alice.get("/api/v1/search", params={"q": "hydration", "limit": 2}).json()
    assert len(first["results"]) == 2 and first["next_cursor"]
    rest = alice.get("/api/v1/search", params={"q": "hydration", "limit": 2, "cursor": first["next_cursor"]}).json()
    assert [h["id"] for h in first["results"] + rest["results"]] == [h[1] for h in hits]
    assert rest["next_cursor"] is None


NASTY = ['"', '""', '"unbalanced', "lentil*", "*", "NEAR(lentil soup)", "NEAR(", "-lentil", "lentil -soup",
         "body:lentil", "space_id:1", "^lentil", "(lentil", "lentil)", "()", "AND", "OR", "NOT", "lentil AND OR NOT",
         "lentil NOT", "{body}: x", "'; DROP TABLE post; --", "\\", "%", "_", "lentil\x00soup", "∗∗∗", "ü", "🍲",
         "lentil:", "a:b:c", "&&", "||", "!", "<script>", "lentil & soup | !x", "'", "lentil' OR '1'='1",
         "soup<->lentil", "lentil:*", "🍲 lentil", "lentil" * 30, " ".join(["x"] * 90)]


def test_query_syntax_is_never_syntax(world, client_for):
    alice = client_for(world.alice)
    post(alice, world.circle, "Lentil soup on a cold day")
    for q in NASTY:
        response = alice.get("/api/v1/search", params={"q": q})
        assert response.status_code in (200, 422), (q, response.text)
        if response.status_code == 422:
            assert_error(response, 422, field="q")
        assert alice.get("/search", params={"q": q}).status_code in (200, 422), q


def test_words_among_syntax_are_searched_as_words(world, client_for):
    alice = client_for(world.alice)
    post_id = post(alice, world.circle, "Lentil soup on a cold day").json()["id"]
    for q in ('"lentil', "lentil*", "-lentil", "lentil:", "^lentil", "(lentil)", "{lentil}", "lentil -soup",
              '"lentil soup', "soup: lentil", "'lentil'"):
        assert found(alice, q) == [("post", post_id)], q
    # AND / OR / NOT are words like others: every word must be there.
    assert found(alice, "lentil OR elephant") == []


def test_bad_input_is_refused_clearly(world, client_for):
    alice = client_for(world.alice)
    before = count_rows(Event)
    error = assert_error(alice.get("/api/v1/search", params={"q": "x" * 10_000}), 422, field="q")
    assert "10,000" in error["message"] and "200" in error["message"]
    assert_error(alice.get("/api/v1/search", params={"q": ""}), 422, field="q")
    assert_error(alice.get("/api/v1/search", params={"q": "   "}), 422, field="q")
    assert_error(alice.get("/api/v1/search"), 422, field="q")
    assert "letter or digit" in assert_error(alice.get("/api/v1/search", params={"q": "*** ()"}), 422,
                                             field="q")["message"]
    assert_error(alice.get("/api/v1/search", params={"q": "soup", "cursor": "abc"}), 422, field="cursor")
    assert_error(alice.get("/api/v1/search", params={"q": "soup", "cursor": "99999999"}), 422, field="cursor")
    assert_error(alice.get("/api/v1/search", params={"q": "soup", "limit": 0}), 422, field="limit")
    assert_error(alice.get("/api/v1/search", params={"q": "soup", "author_type": "robot"}), 422, field="author_type")
    assert_error(client_for(None).get("/api/v1/search", params={"q": "soup"}), 401)
    assert count_rows(Event) == before  # a search writes nothing


def test_the_page_searches_and_escapes(world, client_for):
    alice, bob = client_for(world.alice), client_for(world.bob)
    post_id = post(alice, world.circle, "Cheese <script>alert(1)</script> and <b>crackers</b>").json()["id"]
    empty = bob.get("/search")
    assert empty.status_code == 200 and 'name="q"' in empty.text and "Results" not in empty.text
    page = bob.get("/search", params={"q": "crackers"})
    assert page.status_code == 200
    assert f'href="/posts/{post_id}"' in page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text
    assert "<mark>crackers</mark>" in page.text
    too_long = bob.get("/search", params={"q": "y" * 500})
    assert too_long.status_code == 422 and "the most is 200" in too_long.text
    assert "Nothing found" in bob.get("/search", params={"q": "unicorns"}).text


def test_reindex_rebuilds_the_index(world, client_for):
    alice = client_for(world.alice)
    post_id = post(alice, world.circle, "Gardening keeps me calm").json()["id"]
    with dbmod.transaction() as s:
        s.execute(text("DELETE FROM search_document"))
    assert found(alice, "gardening") == []
    with dbmod.transaction() as s:
        counts = reindex(s.connection())
    assert counts == {"post": 1, "comment": 0, "experience": 0}
    assert found(alice, "gardening") == [("post", post_id)]
    if dbmod.get_engine().dialect.name == "sqlite":
        with dbmod.transaction() as s:  # the full-text index agrees with its content table
            s.execute(text("INSERT INTO search_fts(search_fts, rank) VALUES ('integrity-check', 1)"))


def test_the_reindex_command(world, client_for):
    from typer.testing import CliRunner

    from peerlift.cli import app

    alice, bob = client_for(world.alice), client_for(world.bob)
    post_id = post(alice, world.circle, "Knitting circle on Thursday").json()["id"]
    comment_id = comment(bob, post_id, "Knitting is lovely")
    with dbmod.transaction() as s:
        s.execute(text("DELETE FROM search_document"))
    result = CliRunner().invoke(app, ["search", "reindex"])
    assert result.exit_code == 0, result.output
    assert "1 post, 1 comment, 0 experiences." in result.output
    assert set(found(bob, "knitting")) == {("post", post_id), ("comment", comment_id)}


def test_ranking_pages_through_ties_in_the_same_order_as_a_full_sort(world, client_for):
    """Results come in score order, newest first among equal scores, page after page; on SQLite the
    matches are scored in the index before any document is read, which must not change that order."""
    import datetime as dt

    from sqlalchemy import update

    from peerlift.search.queries import _ranked

    alice = client_for(world.alice)
    bodies = ["walk in the park", "walk", "long walk home after a walk", "walk in the park",
              "walk in the park", "a walk", "walk", "walk in the park"]
    ids = [post(alice, world.circle, body).json()["id"] for body in bodies]
    with dbmod.transaction() as s:  # creation times out of id order, so ties show which wins
        for n, post_id in enumerate(ids):
            s.execute(update(SearchDocument).where(SearchDocument.kind == "post", SearchDocument.object_id == post_id)
                      .values(created_at=dt.datetime(2026, 1, 1 + (n * 5) % 8, tzinfo=dt.timezone.utc)))
    with dbmod.transaction(write=False) as s:
        everything = [row[1] for row in _ranked(s, ["walk"], [world.circle.id], None, 100, 0)]
        assert sorted(everything) == sorted(ids)
        pages = [row[1] for offset in range(0, 8, 3) for row in _ranked(s, ["walk"], [world.circle.id], None, 3, offset)]
        assert pages == everything
        dated = {row[1]: (row[4], row[1]) for row in _ranked(s, ["walk"], [world.circle.id], None, 100, 0)}
        same_text = [i for i, body in zip(ids, bodies) if body == "walk in the park"]
        in_order = [i for i in everything if i in same_text]
        assert in_order == sorted(same_text, key=lambda i: dated[i], reverse=True)


def test_the_index_holds_each_word_with_its_space():
    from peerlift.search.models import space_terms

    assert space_terms(83, "Walking, the dog! Ünïcode_x 42") == "s83_Walking s83_the s83_dog s83_Ünïcode_x s83_42"
    assert space_terms(7, "") == "" and space_terms(7, None) == ""


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # bm25: SQLite's ranking
def test_ranking_counts_words_in_the_searchers_spaces_not_elsewhere(world, client_for):
    """bm25 weighs a rare word above a common one. "rest" is everywhere in a circle alice cannot see, and
    rare in hers, where "hydration" is common: in her search the post dense in "rest" comes first."""
    alice, carol = client_for(world.alice), client_for(world.carol)
    dense_rest = post(alice, world.circle, "rest rest rest hydration").json()["id"]
    dense_hydration = post(alice, world.circle, "hydration hydration hydration rest").json()["id"]
    for i in range(5):
        post(alice, world.circle, f"hydration note {i}")
    for i in range(30):
        post(carol, world.other_circle, f"rest day {i}, rest well")
    assert found(alice, "hydration rest") == [("post", dense_rest), ("post", dense_hydration)]
    assert found(carol, "hydration") == []  # and nothing of alice's circle reaches carol


def test_the_index_of_revision_0020_is_rebuilt_with_words_per_space(sqlite_database):
    from alembic import command

    from peerlift.migrate import alembic_config
    from tests.conftest import build_world, migrate_fresh

    migrate_fresh(sqlite_database)
    config = alembic_config(sqlite_database)
    with dbmod.transaction() as s:
        world = build_world(s)  # with today's models, before the schema goes back to 0020
    command.downgrade(config, "0020")
    with dbmod.transaction() as s:
        s.execute(text("INSERT INTO search_document (kind, object_id, space_id, author_id, created_at, body) "
                       "VALUES ('post', 1, :space, :author, '2026-11-01 10:00:00', 'Swimming at dawn')"),
                  {"space": world.circle.id, "author": world.alice.id})
        assert s.execute(text("SELECT rowid FROM search_fts WHERE search_fts MATCH 'body : swimming'")).all()
    command.upgrade(config, "head")
    with dbmod.transaction() as s:
        match = f'"s{world.circle.id}_swimming"'
        assert s.execute(text("SELECT rowid FROM search_fts WHERE search_fts MATCH :m"), {"m": match}).all()
        assert not s.execute(text("SELECT rowid FROM search_fts WHERE search_fts MATCH 'swimming'")).all()
        s.execute(text("INSERT INTO search_fts(search_fts, rank) VALUES ('integrity-check', 1)"))
    command.downgrade(config, "0020")  # and back: the words alone again
    with dbmod.transaction() as s:
        assert s.execute(text("SELECT rowid FROM search_fts WHERE search_fts MATCH 'body : swimming'")).all()


def test_postgres_words_per_space_come_with_revision_0023_and_go_with_it(postgres_database):
    """Revision 0023 computes ``space_words`` for what is already indexed (a search finds it in its space
    only) and moves the GIN index there; going back to 0022 restores the index on ``tsv``."""
    from alembic import command

    from peerlift.migrate import alembic_config
    from peerlift.search.queries import _ranked
    from tests.conftest import build_world, migrate_fresh

    migrate_fresh(postgres_database)
    config = alembic_config(postgres_database)
    with dbmod.transaction() as s:
        world = build_world(s)
    try:
        command.downgrade(config, "0022")

        def indexes() -> set[str]:
            with dbmod.transaction(write=False) as s:
                return set(s.scalars(text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                                          "AND tablename = 'search_document' AND indexname LIKE 'ix_search_document_%'")))

        assert "ix_search_document_tsv" in indexes() and "ix_search_document_space_words" not in indexes()
        with dbmod.transaction() as s:
            s.execute(text("INSERT INTO search_document (kind, object_id, space_id, author_id, created_at, body) "
                           "VALUES ('post', 1, :space, :author, '2026-11-01 10:00:00', 'Swimming at dawn')"),
                      {"space": world.circle.id, "author": world.alice.id})
        command.upgrade(config, "head")
        assert "ix_search_document_space_words" in indexes() and "ix_search_document_tsv" not in indexes()
        with dbmod.transaction(write=False) as s:
            assert s.scalar(text("SELECT space_words::text FROM search_document WHERE object_id = 1")) == \
                f"'s{world.circle.id}_dawn' 's{world.circle.id}_swim'"
            assert [row[1] for row in _ranked(s, ["swimming"], [world.circle.id], None, 10, 0)] == [1]
            assert _ranked(s, ["swimming"], [world.other_circle.id], None, 10, 0) == []
            assert _ranked(s, ["swimming", "dusk"], [world.circle.id], None, 10, 0) == []
        command.downgrade(config, "0022")
        assert "ix_search_document_tsv" in indexes() and "ix_search_document_space_words" not in indexes()
    finally:
        command.upgrade(config, "head")  # the worker's schema serves the next tests


def test_a_search_ranks_its_most_recent_matches_up_to_the_window(world, client_for, monkeypatch):
    """PEERLIFT_SEARCH_RANK_WINDOW: the most recently written or edited matches are ranked, at most that
    many; the pages end there, and 0 ranks every match."""
    from peerlift.settings import get_settings

    monkeypatch.setenv("PEERLIFT_SEARCH_RANK_WINDOW", "3")
    get_settings.cache_clear()
    alice = client_for(world.alice)
    dense = post(alice, world.circle, "Lentil lentil lentil").json()["id"]
    weak = [post(alice, world.circle, f"Made a lentil soup for a long cold evening, batch {i}").json()["id"]
            for i in range(4)]
    assert sorted(found(alice, "lentil")) == sorted(("post", i) for i in weak[1:])  # the newest three
    first = alice.get("/api/v1/search", params={"q": "lentil", "limit": 2}).json()
    rest = alice.get("/api/v1/search", params={"q": "lentil", "limit": 2, "cursor": first["next_cursor"]}).json()
    assert len(first["results"]) == 2 and len(rest["results"]) == 1 and rest["next_cursor"] is None
    assert {h["id"] for h in first["results"] + rest["results"]} == set(weak[1:])
    # An edit makes the dense post recent again: it is ranked, and first.
    assert alice.patch(f"/api/v1/posts/{dense}", json={"body": "Lentil lentil lentil!"}).status_code == 200
    assert found(alice, "lentil")[0] == ("post", dense) and len(found(alice, "lentil")) == 3
    monkeypatch.setenv("PEERLIFT_SEARCH_RANK_WINDOW", "0")
    get_settings.cache_clear()
    everything = found(alice, "lentil")
    assert everything[0] == ("post", dense) and sorted(everything[1:]) == sorted(("post", i) for i in weak)
    # With an author filter the window holds the author's matches only.
    monkeypatch.setenv("PEERLIFT_SEARCH_RANK_WINDOW", "2")
    get_settings.cache_clear()
    coach_post = post(client_for(world.coach), world.circle, "Lentils are a good protein").json()["id"]
    assert found(alice, "lentil", author_type="member") == [("post", dense), ("post", weak[3])]
    assert found(alice, "lentil", author_type="staff") == [("post", coach_post)]


def test_a_search_runs_the_same_statements_for_few_results_or_many(world, client_for):
    """The person's spaces, the ranked rows, one statement per kind among the results (where each opens,
    and whether it was written anonymously), and the authors with their badges: whatever the count."""
    from peerlift.search.queries import search
    from tests.conftest import count_queries

    alice, bob, coach = client_for(world.alice), client_for(world.bob), client_for(world.coach)
    for i in range(12):
        post_id = post((alice, bob, coach)[i % 3], world.circle, f"Quinoa salad, take {i}").json()["id"]
        comment(bob, post_id, f"Quinoa again? Lovely ({i})")
    counts = {}
    with dbmod.transaction(write=False) as s:
        reader = s.merge(world.alice)
        for limit in (2, 20):
            with count_queries() as counter:
                hits = search(s, reader, "quinoa", limit=limit)
            assert len(hits.hits) == limit and {h.kind for h in hits.hits} == {"post", "comment"}
            counts[limit] = len(counter.statements)
    assert counts[2] == counts[20] == 5, counts
