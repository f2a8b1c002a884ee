"""PostgreSQL + Redis + two `peerlift serve` processes: a post made through one process
reaches a stream held on the other."""

from __future__ import annotations

from tests.conftest import http_login
from tests.sse import StreamReader


def test_a_post_through_one_process_reaches_a_stream_on_the_other(two_servers):
    world, (one, two) = two_servers
    alice = http_login(one, world.alice)
    bob = http_login(two, world.bob)
    carol = http_login(two, world.carol)
    with StreamReader(bob) as bobs, StreamReader(carol) as carols:
        created = alice.post(f"/api/v1/circles/{world.circle.id}/posts", json={"body": "Across processes"}).json()
        frame = bobs.wait_for("post.created", post_id=created["id"])
        assert frame.data["circle_id"] == world.circle.id
        # a burst, in order, nothing lost
        ids = [alice.post(f"/api/v1/circles/{world.circle.id}/posts", json={"body": f"n{i}"}).json()["id"]
               for i in range(20)]
        got = []
        while len(got) < len(ids):
            got.append(bobs.wait_for("post.created").data["post_id"])
        assert got == ids
        assert not [f for f in carols.collect(0.5) if f.data.get("circle_id") == world.circle.id]
    # a reply through the second process reaches alice's notification stream on the first
    with StreamReader(alice) as alices:
        bob.post(f"/api/v1/posts/{created['id']}/comments", json={"body": "Seen it"})
        assert alices.wait_for("notification.created").data["kind"] == "reply"
