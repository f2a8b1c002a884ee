"""Hands committed events to the local hub, in id order, and tells other processes.

Within a process, transactions commit in id order (PostgreSQL: an advisory lock in
``events.publish``; SQLite: one writer at a time) but their after-commit callbacks may run
in any order on different threads. The dispatcher keeps the highest id it has handed on;
an id beyond the next one means a gap, which it fills from the database, so no listener
ever sees event N before event N-1. Other processes' events arrive as ids over Redis
pub/sub and take the same path: the database stays the source of truth.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid

from sqlalchemy import func, select

from peerlift import events
from peerlift.db import get_engine, make_session
from peerlift.delivery.hub import Hub
from peerlift.events import LIVE_KINDS, Event

log = logging.getLogger("peerlift.dispatch")
CHANNEL_PREFIX = "peerlift:events:"


def channel_for(database_url: str) -> str:
    """One channel per database, so installations that share a Redis never mix their events."""
    import hashlib

    from sqlalchemy.engine import make_url

    safe = make_url(database_url).render_as_string(hide_password=True)
    return CHANNEL_PREFIX + hashlib.sha256(safe.encode()).hexdigest()[:16]


class Dispatcher:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()
        self._last: int | None = None
        self._redis = None
        self._unsubscribe = None
        self._listener: threading.Thread | None = None
        self._stop = threading.Event()
        self.channel = CHANNEL_PREFIX

    # -- set-up ------------------------------------------------------------------------------
    def start(self, redis_url: str | None = None) -> None:
        with make_session(get_engine()) as s:
            self._last = s.scalar(select(func.max(Event.id))) or 0
        self._unsubscribe = events.subscribe(self._local)
        if redis_url:
            import redis

            from peerlift.settings import get_settings

            self.channel = channel_for(get_settings().database_url)
            self._redis = redis.Redis.from_url(redis_url)
            self._redis.ping()
            self._listener = threading.Thread(target=self._listen, args=(redis_url,), daemon=True,
                                              name="peerlift-redis-listener")
            self._listener.start()

    def stop(self) -> None:
        self._stop.set()
        if self._unsubscribe:
            self._unsubscribe()
        if self._redis is not None:
            try:
                self._redis.publish(self.channel, f"{self.origin}:stop")
            except Exception:  # noqa: BLE001 - shutting down anyway
                pass
        if self._listener is not None:
            self._listener.join(timeout=2)

    # -- local events --------------------------------------------------------------------------
    def _local(self, event: Event) -> None:
        self._advance(event.id, known=event)
        if self._redis is not None and event.kind in LIVE_KINDS:
            try:
                self._redis.publish(self.channel, f"{self.origin}:{event.id}")
            except Exception:  # noqa: BLE001 - other processes catch up on their next event
                log.exception("could not tell other processes of event %s", event.id)

    # -- remote events ----------------------------------------------------------------------------
    def _listen(self, redis_url: str) -> None:
        import redis

        client = redis.Redis.from_url(redis_url)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(self.channel)
        while not self._stop.is_set():
            try:
                message = pubsub.get_message(timeout=1.0)
            except Exception:  # noqa: BLE001 - reconnect
                log.exception("Redis listener lost its connection; reconnecting")
                self._stop.wait(1.0)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                continue
            if not message:
                continue
            origin, _, raw = message["data"].decode().partition(":")
            if origin == self.origin or not raw.isdigit():
                continue
            self._advance(int(raw))
        pubsub.close()

    # -- ordering --------------------------------------------------------------------------------
    def _advance(self, event_id: int, known: Event | None = None) -> None:
        with self._lock:
            last = self._last or 0
            if event_id <= last:
                return
            if known is not None and event_id == last + 1:
                batch = [known]
            else:
                with make_session(get_engine()) as s:
                    batch = list(s.scalars(
                        select(Event).where(Event.id > last, Event.id <= event_id, Event.kind.in_(LIVE_KINDS))
                        .order_by(Event.id)))
                    for e in batch:
                        s.expunge(e)
            self._last = event_id
            for e in batch:
                try:
                    self.hub.dispatch(e)
                except Exception:  # noqa: BLE001 - one bad event must not stop the stream
                    log.exception("could not dispatch event %s", e.id)


class Announcer:
    """Tells the serving processes of the events this process commits, for a process that holds no
    streams of its own (``peerlift worker``): its notifications, prompts and circle posts then
    reach open streams at once rather than with the next event some serving process commits.

    Only the newest id matters (a listener reads every event up to it from the database), so the
    ids of a batch are folded into one message, sent from a thread of its own.
    """

    def __init__(self) -> None:
        self.origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.channel = CHANNEL_PREFIX
        self._newest = 0
        self._sent = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._redis = None
        self._unsubscribe = None
        self._thread: threading.Thread | None = None

    def start(self, redis_url: str) -> None:
        import redis

        from peerlift.settings import get_settings

        self.channel = channel_for(get_settings().database_url)
        self._redis = redis.Redis.from_url(redis_url)
        self._redis.ping()
        self._unsubscribe = events.subscribe(self._local)
        self._thread = threading.Thread(target=self._run, daemon=True, name="peerlift-announcer")
        self._thread.start()

    def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _local(self, event: Event) -> None:
        if event.kind not in LIVE_KINDS:
            return
        with self._lock:
            if event.id > self._newest:
                self._newest = event.id
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(1.0 if self._sent < self._newest else None)  # a failed publish is tried again
            self._wake.clear()
            with self._lock:
                newest = self._newest
            if newest > self._sent:
                try:
                    self._redis.publish(self.channel, f"{self.origin}:{newest}")
                    self._sent = newest
                except Exception:  # noqa: BLE001 - tried again in a second
                    log.exception("could not tell the serving processes of event %s", newest)
            if self._stop.is_set():
                return
