"""Hot paths run a fixed number of SQL statements, whatever the page size (no N+1)."""

from __future__ import annotations

import pytest

from peerlift import db as dbmod
from peerlift.community import service
from peerlift.policy import circle_access
from peerlift.settings import get_settings
from tests.conftest import count_queries


def _fill(world, n_posts: int) -> int:
    """Posts with comments, reactions, mentions and a poll each, written through the services."""
    with dbmod.transaction() as s:
        people = [world.alice, world.bob, world.pat, world.coach]
        access = {p.id: circle_access(s, p, world.circle.id) for p in people}
        last = None
        for i in range(n_posts):
            author = people[i % len(people)]
            last = service.create_post(s, access[author.id], f"post {i} @{world.bob.handle}",
                                       poll_question="Q?", poll_options=["a", "b"])
            service.create_comment(s, access[world.bob.id], last, "nice")
            for reactor, kind in ((world.alice, "heart"), (world.pat, "clap")):
                service.set_reaction(s, access[reactor.id], kind=kind, on=True, post=last)
        return last.id


@pytest.mark.parametrize("path", ["api", "page"])
def test_feed_query_count_is_constant_in_page_size(world, client_for, path, monkeypatch):
    _fill(world, 30)
    alice = client_for(world.alice)
    alice.post(f"/api/v1/circles/{world.circle.id}/rules/accept")
    counts = {}
    for limit in (5, 25):
        if path == "api":
            url = f"/api/v1/circles/{world.circle.id}/posts?limit={limit}"
        else:
            url = f"/circles/{world.circle.id}"
            monkeypatch.setenv("PEERLIFT_FEED_PAGE_SIZE", str(limit))
            get_settings.cache_clear()
        alice.get(url)  # a first visit also moves the read marker; count a steady visit
        with count_queries() as q:
            response = alice.get(url)
        assert response.status_code == 200
        assert response.text.count("data-post-id=") == limit if path == "page" else len(response.json()["posts"]) == limit
        counts[limit] = q
    assert counts[5].count == counts[25].count, f"5 posts:\n{counts[5]}\n\n25 posts:\n{counts[25]}"
    assert counts[25].count <= (9 if path == "api" else 14), str(counts[25])


def test_post_page_query_count_is_constant_in_comments(world, client_for):
    post_id = _fill(world, 1)
    alice = client_for(world.alice)
    with count_queries() as few:
        assert alice.get(f"/posts/{post_id}").status_code == 200
    with dbmod.transaction() as s:
        access = circle_access(s, world.pat, world.circle.id)
        from peerlift.community.models import Post

        target = s.get(Post, post_id)
        for i in range(15):
            c = service.create_comment(s, access, target, f"comment {i}")
            service.set_reaction(s, access, kind="hug", on=True, comment=c)
    with count_queries() as many:
        assert alice.get(f"/posts/{post_id}").status_code == 200
    assert few.count == many.count, f"1 comment:\n{few}\n\n16 comments:\n{many}"


def test_circle_accesses_reads_the_spaces_in_one_statement_and_refuses_a_foreign_one(world):
    from peerlift.errors import NotFound
    from peerlift.policy import circle_accesses

    with dbmod.transaction() as s:
        coach = s.merge(world.coach)
        with count_queries() as q:
            both = circle_accesses(s, coach, [world.circle.id, world.other_circle.id])
        assert q.count == 1 and set(both) == {world.circle.id, world.other_circle.id}
        assert both[world.other_circle.id].space.name == "Stride Crew" and both[world.circle.id].is_facilitator
        assert circle_accesses(s, coach, []) == {}
        with pytest.raises(NotFound):
            circle_accesses(s, s.merge(world.alice), [world.circle.id, world.other_circle.id])
