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
from collections import defaultdict
from dataclasses import dataclass, field

from peerlift.events import LIVE_KINDS, Event

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


@dataclass(eq=False)
class Connection:
    user_id: int
    keys: set[str]
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(maxsize=256))
    dropped: bool = False

    def offer(self, item) -> None:
        """Runs on the connection's loop."""
        if self.dropped:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait((0, DROP))


class Hub:
    def __init__(self, queue_size: int = 256) -> None:
        self.queue_size = queue_size
        self._by_key: dict[str, set[Connection]] = defaultdict(set)
        self._by_user: dict[int, set[Connection]] = defaultdict(set)
        self._lock = threading.Lock()

    def register(self, user_id: int, keys: set[str], loop: asyncio.AbstractEventLoop) -> Connection:
        conn = Connection(user_id=user_id, keys=set(keys), loop=loop, queue=asyncio.Queue(maxsize=self.queue_size))
        with self._lock:
            for key in conn.keys:
                self._by_key[key].add(conn)
            self._by_user[user_id].add(conn)
        return conn

    def unregister(self, conn: Connection) -> None:
        with self._lock:
            for key in conn.keys:
                holders = self._by_key.get(key)
                if holders is not None:
                    holders.discard(conn)
                    if not holders:
                        del self._by_key[key]
            users = self._by_user.get(conn.user_id)
            if users is not None:
                users.discard(conn)
                if not users:
                    del self._by_user[conn.user_id]

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
        item = (event.id, frame(event))
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
