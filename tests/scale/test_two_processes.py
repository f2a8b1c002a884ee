"""PostgreSQL + Redis + two `peerlift serve` processes: a post made through one process
reaches a stream held on the other; a process that stops closes its streams, and they resume on
the other with nothing lost."""

from __future__ import annotations

import subprocess

import httpx

from tests.conftest import http_login
from tests.scale.conftest import world_and_servers
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


def test_a_stopping_process_closes_its_streams_and_they_resume_on_the_other(cluster):
    world, (one, two) = world_and_servers(cluster)
    alice = http_login(two.url, world.alice)
    bob_one = http_login(one.url, world.bob)
    bob_two = httpx.Client(base_url=two.url, cookies=bob_one.cookies, timeout=10)
    with StreamReader(bob_one) as stream:
        first = alice.post(f"/api/v1/circles/{world.circle.id}/posts", json={"body": "Before the restart"}).json()
        last_seen = stream.wait_for("post.created", post_id=first["id"]).id
        # SIGTERM: requests in flight get a few seconds, then the open stream is closed (it would
        # otherwise keep the process up until systemd kills it)
        one.proc.terminate()
        try:
            one.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"a process holding a stream did not stop on SIGTERM: {one.log_tail()}")
        missed = [alice.post(f"/api/v1/circles/{world.circle.id}/posts", json={"body": f"While away {i}"}).json()["id"]
                  for i in range(3)]
    # the browser reconnects (through the proxy, to the process still up) with its last id
    with StreamReader(bob_two, last_event_id=last_seen) as resumed:
        replayed = [resumed.wait_for("post.created").data["post_id"] for _ in missed]
        assert replayed == missed
        resumed.stop()
