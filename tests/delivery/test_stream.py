"""The live stream: one per person, authorised per event, replayed from the database."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import LiveServer, get_settings, http_login
from tests.sse import StreamReader


@pytest.fixture(params=["socket", "asgi"])
def any_server(request, app, monkeypatch):
    """A live server whose streams write frames to their sockets (uvicorn's httptools protocol), or
    one where they go through ASGI ``send`` (its h11 protocol offers no socket): both must behave."""
    monkeypatch.setenv("PEERLIFT_STREAM_KEEPALIVE_SECONDS", "0.5")
    get_settings.cache_clear()
    with LiveServer(app, http="httptools" if request.param == "socket" else "h11") as server:
        server.mode = request.param
        yield server


def _connections(user_id: int) -> list:
    from peerlift.delivery.hub import hub

    with hub._lock:
        return list(hub._by_user.get(user_id, ()))


def _post(client, circle, body):
    response = client.post(f"/api/v1/circles/{circle.id}/posts", json={"body": body})
    assert response.status_code == 201, response.text
    return response.json()


def test_a_post_reaches_members_streams_and_nobody_elses(world, any_server):
    alice = http_login(any_server.url, world.alice)
    bob = http_login(any_server.url, world.bob)
    carol = http_login(any_server.url, world.carol)
    with StreamReader(bob) as bobs, StreamReader(carol) as carols:
        (conn,) = _connections(world.bob.id)
        assert (conn.write is not None) == (any_server.mode == "socket")
        started = time.monotonic()
        created = _post(alice, world.circle, "Made it to the gym!")
        frame = bobs.wait_for("post.created", post_id=created["id"])
        assert time.monotonic() - started < 2
        assert frame.id is not None and frame.data["circle_id"] == world.circle.id
        assert frame.data["actor_id"] == world.alice.id
        assert all(f.data.get("circle_id") != world.circle.id for f in carols.collect(0.7))


def test_comments_reactions_votes_edits_and_deletions_travel(world, live_server):
    alice, bob = http_login(live_server.url, world.alice), http_login(live_server.url, world.bob)
    created = bob.post(f"/api/v1/circles/{world.circle.id}/posts",
                       json={"body": "Walk?", "poll": {"question": "When?", "options": ["Sat", "Sun"]}}).json()
    with StreamReader(alice) as stream:
        comment = bob.post(f"/api/v1/posts/{created['id']}/comments", json={"body": "Sat!"}).json()
        bob.put(f"/api/v1/posts/{created['id']}/reactions/heart")
        bob.post(f"/api/v1/polls/{created['poll']['id']}/votes", json={"option_ids": [created["poll"]["options"][0]["id"]]})
        bob.patch(f"/api/v1/posts/{created['id']}", json={"body": "Walk this weekend?"})
        bob.delete(f"/api/v1/comments/{comment['id']}")
        kinds = [f.event for f in stream.collect(1.5)]
    assert kinds == ["comment.created", "reaction.added", "poll.voted", "post.edited", "comment.deleted"]


def test_direct_messages_reach_only_the_two_people(world, live_server):
    alice, coach, bob = (http_login(live_server.url, p) for p in (world.alice, world.coach, world.bob))
    with StreamReader(coach) as coachs, StreamReader(bob) as bobs:
        conversation = alice.post("/api/v1/conversations", json={"user_id": world.coach.id}).json()
        alice.post(f"/api/v1/conversations/{conversation['id']}/messages", json={"body": "Quick question"})
        opened = coachs.wait_for("conversation.opened")
        message = coachs.wait_for("message.created")
        assert opened.data["conversation_id"] == message.data["conversation_id"] == conversation["id"]
        assert not [f for f in bobs.collect(0.7) if "conversation_id" in f.data]


def test_reconnect_with_last_event_id_replays_what_was_missed_in_order(world, live_server):
    alice, bob = http_login(live_server.url, world.alice), http_login(live_server.url, world.bob)
    with StreamReader(bob) as stream:
        first = _post(alice, world.circle, "one")
        seen = stream.wait_for("post.created", post_id=first["id"])
    missed = [_post(alice, world.circle, f"missed {i}")["id"] for i in range(5)]
    _post(http_login(live_server.url, world.carol), world.other_circle, "not for bob")
    with StreamReader(bob, last_event_id=seen.id) as stream:
        replayed = stream.collect(1.0)
    posts = [f.data["post_id"] for f in replayed if f.event == "post.created"]
    assert posts == missed
    ids = [f.id for f in replayed]
    assert ids == sorted(ids) and all(i > seen.id for i in ids)
    assert all(f.data.get("circle_id") in (None, world.circle.id) for f in replayed)


def test_events_during_the_replay_are_neither_lost_nor_doubled(world, any_server):
    alice, bob = http_login(any_server.url, world.alice), http_login(any_server.url, world.bob)
    with StreamReader(bob) as stream:
        seen = stream.wait_for("post.created", post_id=_post(alice, world.circle, "start")["id"])
    backlog = [_post(alice, world.circle, f"backlog {i}")["id"] for i in range(30)]
    with StreamReader(bob, last_event_id=seen.id) as stream:
        live = [_post(alice, world.circle, f"live {i}")["id"] for i in range(10)]
        got = [f.data["post_id"] for f in stream.collect(2.0) if f.event == "post.created"]
    assert got == backlog + live


def test_stream_needs_a_session(world, live_server):
    response = httpx.get(f"{live_server.url}/api/v1/stream", timeout=5)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "9" * 40])
def test_last_event_id_that_is_not_a_number_is_a_clear_400(world, live_server, bad):
    bob = http_login(live_server.url, world.bob)
    response = bob.get("/api/v1/stream", headers={"Last-Event-ID": bad})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "bad_last_event_id", "field": "Last-Event-ID",
        "message": "Last-Event-ID must be the number of an event this stream sent."}


def test_last_event_id_in_the_future_gets_a_resync(world, live_server):
    alice, bob = http_login(live_server.url, world.alice), http_login(live_server.url, world.bob)
    with StreamReader(bob, last_event_id=10**9) as stream:
        resync = stream.next()
        assert resync.event == "resync" and resync.id < 10**9
        created = _post(alice, world.circle, "after the resync")
        assert stream.wait_for("post.created").data["post_id"] == created["id"]


def test_keep_alive_comments(world, any_server):
    bob = http_login(any_server.url, world.bob)
    with StreamReader(bob) as stream:
        time.sleep(1.3)
        assert stream.comments >= 2


def test_a_closed_stream_leaves_the_hub(world, any_server):
    bob = http_login(any_server.url, world.bob)
    with StreamReader(bob):
        assert len(_connections(world.bob.id)) == 1
    bob.close()  # the connection the stream used goes away
    deadline = time.monotonic() + 5
    while _connections(world.bob.id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _connections(world.bob.id) == []


def test_a_new_member_starts_receiving_their_circle(world, live_server):
    coach = http_login(live_server.url, world.coach)
    newcomer_email = "newcomer@example.test"
    token = coach.post(f"/api/v1/circles/{world.other_circle.id}/invitations", json={}).json()["token"]
    newcomer = httpx.Client(base_url=live_server.url, timeout=10)
    signup = newcomer.post("/api/v1/auth/signup", json={
        "token": token, "email": newcomer_email, "password": "long enough password", "display_name": "New Person",
        "timezone": "UTC"})
    assert signup.status_code == 201
    with StreamReader(newcomer) as stream:
        # added to a second circle while the stream is open
        free = coach.post("/api/v1/circles", json={"name": "Open group"}).json()
        coach.post(f"/api/v1/circles/{free['id']}/members", json={"email": newcomer_email})
        stream.wait_for("member.joined", circle_id=free["id"])
        created = _post(coach, type("C", (), {"id": free["id"]}), "Welcome!")
        assert stream.wait_for("post.created").data["post_id"] == created["id"]


class _Event:  # a committed event, as the hub sees it
    def __init__(self, i, pad: str = ""):
        self.id, self.kind, self.space_id, self.conversation_id, self.user_id = i, "post.created", 1, None, None
        self.actor_id, self.at, self.data = 2, None, {"post_id": i, "pad": pad}


def test_slow_client_is_dropped_and_memory_stays_bounded(world, live_server):
    import asyncio

    from peerlift.delivery.hub import DROP, Hub

    hub = Hub(queue_size=4)
    loop = asyncio.new_event_loop()
    conn = hub.register(1, {"space:1"}, loop)
    for i in range(1, 20):
        hub.dispatch(_Event(i))
    loop.run_until_complete(asyncio.sleep(0))
    assert conn.dropped and len(conn.items) == 1  # only the "reconnect" marker is kept
    assert conn.items[0][1] is DROP
    hub.dispatch(_Event(99))
    loop.run_until_complete(asyncio.sleep(0))
    assert len(conn.items) == 1  # nothing more piles up for a dropped client
    assert loop.run_until_complete(conn.get(1.0))[1] is DROP  # its stream ends on it
    loop.close()


def test_a_socket_that_falls_behind_is_cut_and_written_no_more():
    """Frames written straight to a socket whose reader stopped reading pile up in the transport's
    buffer only up to WRITE_LIMIT; then the connection is aborted (its client reconnects)."""
    import asyncio
    import socket

    from peerlift.delivery.hub import Hub
    from peerlift.delivery.stream import WRITE_LIMIT, socket_writer

    loop = asyncio.new_event_loop()
    near, far = socket.socketpair()
    near.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    far.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    transport, _ = loop.run_until_complete(loop.create_connection(asyncio.Protocol, sock=near))

    class Cycle:  # the parts of uvicorn's response cycle the writer reads
        def __init__(self):
            self.transport, self.chunked_encoding, self.disconnected, self.response_complete = (
                transport, True, False, False)

        async def send(self, message):  # pragma: no cover - only its owner is read
            raise AssertionError

    write = socket_writer(Cycle().send)
    assert write is not None
    hub = Hub()
    conn = hub.register(1, {"space:1"}, loop)
    conn.attach(write)
    sent = 0
    while not conn.dropped and sent < 10_000:
        sent += 1
        hub.dispatch(_Event(sent, pad="x" * 1000))
        loop.run_until_complete(asyncio.sleep(0))
    assert conn.dropped and transport.is_closing()
    assert sent * 1000 < 2 * WRITE_LIMIT + 10 * 4096 * 10  # cut near the limit, not after thousands
    hub.dispatch(_Event(sent + 1))  # nothing is written to a cut connection
    loop.run_until_complete(asyncio.sleep(0))
    assert conn.last_sent == sent
    loop.run_until_complete(asyncio.sleep(0.05))
    far.close()
    loop.close()


def test_the_writer_needs_a_started_chunked_response():
    from peerlift.delivery.stream import socket_writer

    class Cycle:
        def __init__(self, **kw):
            self.__dict__.update({"transport": object(), "chunked_encoding": True, "disconnected": False,
                                  "response_complete": False, **kw})

        async def send(self, message):  # pragma: no cover
            raise AssertionError

    async def plain_send(message):  # pragma: no cover - another server's send
        raise AssertionError

    assert socket_writer(plain_send) is None
    assert socket_writer(None) is None
    assert socket_writer(Cycle().send) is not None
    assert socket_writer(Cycle(chunked_encoding=None).send) is None  # not started, or not chunked
    assert socket_writer(Cycle(response_complete=True).send) is None


def test_a_burst_of_openings_larger_than_the_pools_all_open(world, live_server):
    """200 streams opening at once (the pool holds 40 connections, the thread pool 40 threads):
    each opening uses one connection in one thread, briefly, so none waits for a second one."""
    import asyncio

    bob = http_login(live_server.url, world.bob)
    cookies = dict(bob.cookies)

    async def open_one(client: httpx.AsyncClient) -> int:
        async with client.stream("GET", "/api/v1/stream") as response:
            async for line in response.aiter_lines():
                if line.startswith("retry:"):
                    return response.status_code
        return -1

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=live_server.url, cookies=cookies, timeout=20,
                                     limits=httpx.Limits(max_connections=250)) as client:
            return await asyncio.wait_for(asyncio.gather(*(open_one(client) for _ in range(200))), 20)

    started = time.monotonic()
    statuses = asyncio.run(burst())
    assert statuses == [200] * 200
    assert time.monotonic() - started < 15
