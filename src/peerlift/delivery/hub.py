"""The in-process hub of live connections.

Each open stream registers a connection with the keys of what its person may see
(``space:N``, ``conversation:N``, ``user:N``). An event is looked up once and offered to
the connections holding its key. Queues are bounded: a connection that falls behind is
dropped, and its client reconnects with ``Last-Event-ID`` and is replayed from the database.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict, deque

from peerlift import collector
from peerlift.events import LIVE_KINDS, Event

STREAM_PATH = "/api/v1/stream"
# The ASGI server's own ``send`` callable for a stream request, put in its scope by ``app.PeerliftAPI``
# before any middleware wraps it. Under uvicorn it belongs to the request's response cycle, whose socket
# a stream may write its frames to directly (``delivery.stream.socket_writer``).
SERVER_SEND = "peerlift.server_send"
DROP = object()  # tells a connection's stream to end so its client reconnects


def audience_key(event: Event) -> str | None:
    if event.space_id is not None:
        return f"space:{event.space_id}"
    if event.conversation_id is not None:
        return f"conversation:{event.conversation_id}"
    if event.user_id is not None:
        return f"user:{event.user_id}"
    return None


ACCOUNT_KEYS = frozenset({"user_id", "post_author_id", "target_author_id", "user_ids"})


def frame(event: Event) -> str:
    """One Server-Sent Events frame naming the object of the event. Events of open communities (and of
    anonymous posts) leave out who acted: there people go by a community name, not an account."""
    hidden = bool((event.data or {}).get("anonymous") or (event.data or {}).get("pseudonymous"))
    data = {"id": event.id, "type": event.kind, "at": event.at.isoformat() if event.at else None,
            "actor_id": None if hidden else event.actor_id}
    if event.space_id is not None:
        data["circle_id"] = event.space_id
    data.update({k: v for k, v in (event.data or {}).items() if not (hidden and k in ACCOUNT_KEYS)})
    return f"id: {event.id}\nevent: {event.kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


KEEPALIVE = b": keep-alive\n\n"


def chunk(data: bytes) -> bytes:
    """``data`` as one piece of an HTTP/1.1 chunked body."""
    return b"%x\r\n%b\r\n" % (len(data), data)


class Connection:
    """One open stream. Until its response is under way, frames wait in ``items``; a stream whose
    socket the server lets it write to (``attach``) then gets each frame written straight to the
    socket by the loop that holds it, with no task woken per frame; any other stream drains
    ``items`` itself (``get``). Both are bounded: a client that falls ``limit`` frames (or a
    socket buffer of ``WRITE_LIMIT`` bytes) behind is dropped, and reconnects with its last id."""

    __slots__ = ("user_id", "keys", "loop", "limit", "items", "waiter", "write", "last_sent", "dropped")

    def __init__(self, user_id: int, keys: set[str], loop: asyncio.AbstractEventLoop, limit: int = 256) -> None:
        self.user_id = user_id
        self.keys = keys
        self.loop = loop
        self.limit = limit
        self.items: deque = deque()
        self.waiter: asyncio.Future | None = None
        self.write = None  # callable(bytes) -> bool once attached to its socket
        self.last_sent = 0  # frames up to this id were sent (or replayed): later copies are skipped
        self.dropped = False

    def offer(self, item) -> None:
        """Runs on the connection's loop. ``item`` is (event id, frame bytes, chunked frame bytes)."""
        if self.dropped:
            return
        if self.write is not None:
            if item[0] > self.last_sent:
                self.last_sent = item[0]
                if not self.write(item[2]):
                    self.dropped = True
            return
        if len(self.items) >= self.limit:
            self.drop()
            return
        self.items.append(item)
        self._wake()

    def drop(self) -> None:
        """Stop sending: the stream ends and its client reconnects with ``Last-Event-ID``."""
        self.dropped = True
        self.items.clear()
        self.items.append((0, DROP, None))
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def attach(self, write) -> None:
        """From now on frames go straight to ``write``; those that arrived before go first, in order.
        A connection already dropped stays as it is: its stream ends through ``get``."""
        if self.dropped:
            return
        self.write = write
        pending, self.items = self.items, deque()
        for item in pending:
            self.offer(item)

    async def get(self, timeout: float):
        """The next item, or None when nothing came for ``timeout`` seconds (time for a keep-alive)."""
        if not self.items:
            self.waiter = self.loop.create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self.waiter
            except TimeoutError:
                return None
            finally:
                self.waiter = None
        return self.items.popleft()


class Hub:
    def __init__(self, queue_size: int = 256) -> None:
        self.queue_size = queue_size
        self._by_key: dict[str, set[Connection]] = defaultdict(set)
        self._by_user: dict[int, set[Connection]] = defaultdict(set)
        self._lock = threading.Lock()

    def register(self, user_id: int, keys: set[str], loop: asyncio.AbstractEventLoop) -> Connection:
        conn = Connection(user_id, set(keys), loop, self.queue_size)
        with self._lock:
            for key in conn.keys:
                self._by_key[key].add(conn)
            self._by_user[user_id].add(conn)
        collector.stream_opened()
        return conn

    def unregister(self, conn: Connection) -> None:
        with self._lock:
            users = self._by_user.get(conn.user_id)
            if users is None or conn not in users:
                return
            users.discard(conn)
            if not users:
                del self._by_user[conn.user_id]
            for key in conn.keys:
                holders = self._by_key.get(key)
                if holders is not None:
                    holders.discard(conn)
                    if not holders:
                        del self._by_key[key]
        collector.stream_closed()

    def _grant(self, user_id: int, key: str) -> None:
        for conn in self._by_user.get(user_id, ()):
            if key not in conn.keys:
                conn.keys.add(key)
                self._by_key[key].add(conn)

    def dispatch(self, event: Event) -> int:
        """Offer a committed event to every connection that may see it; returns how many."""
        if event.kind not in LIVE_KINDS:
            return 0
        key = audience_key(event)
        if key is None:
            return 0
        data = event.data or {}
        with self._lock:
            # Audience changes take effect before the event that announces them.
            if event.kind == "member.joined" and "user_id" in data:
                self._grant(int(data["user_id"]), key)
            elif event.kind == "conversation.opened":
                for uid in data.get("user_ids", ()):
                    self._grant(int(uid), key)
            targets = list(self._by_key.get(key, ()))
        if not targets:
            return 0
        data = frame(event).encode()
        item = (event.id, data, chunk(data))
        by_loop: dict[asyncio.AbstractEventLoop, list[Connection]] = defaultdict(list)
        for conn in targets:
            by_loop[conn.loop].append(conn)
        for loop, conns in by_loop.items():
            try:
                loop.call_soon_threadsafe(_offer_all, conns, item)
            except RuntimeError:  # loop closed: its connections are gone
                continue
        return len(targets)


def _offer_all(conns: list[Connection], item) -> None:
    for conn in conns:
        conn.offer(item)


hub = Hub()
