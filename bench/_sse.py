"""A lightweight Server-Sent Events client for holding thousands of streams in one process.

httpx costs tens of kilobytes and several tasks per open stream; this client is one task and
one connection per stream: a hand-written HTTP/1.1 GET, and an ``asyncio.Protocol`` that decodes
``Transfer-Encoding: chunked`` and parses SSE frames on bytes in the loop's read callback (no task
is woken per frame). The arrival time of each frame is taken (``time.perf_counter``) as soon as the
read that completed it is handed over, before any parsing.

Like a browser's EventSource, a stream that the server ends is reopened after the ``retry:``
delay it announced, with ``Last-Event-ID`` set to the last id received; such ends are counted
(``drops``) so that they are never hidden behind a "nothing lost".
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

STREAM_PATH = "/api/v1/stream"
_POST_ID = re.compile(rb'"post_id":(\d+)[,}]')  # the server writes compact JSON


class StreamRefused(RuntimeError):
    """The server answered the GET with something other than 200."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"stream answered {status}: {body[:200]!r}")
        self.status = status


@dataclass
class Tracker:
    """State shared by every receiver of one run: counts that let the poster wait cheaply."""

    receivers: int
    opened: int = 0
    all_open: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False
    # post_id -> receivers that got its post.created frame (first time only)
    counts: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    waiters: dict[int, asyncio.Future] = field(default_factory=dict)
    open_failures: int = 0
    open_failure_kinds: Counter = field(default_factory=Counter)   # "HTTP 500", "TimeoutError", ...
    errors: list[str] = field(default_factory=list)

    def mark_open(self) -> None:
        self.opened += 1
        if self.opened >= self.receivers:
            self.all_open.set()

    def arrived(self, post_id: int) -> None:
        n = self.counts[post_id] = self.counts[post_id] + 1
        if n >= self.receivers:
            fut = self.waiters.pop(post_id, None)
            if fut is not None and not fut.done():
                fut.set_result(None)

    async def wait_delivered(self, post_id: int, timeout: float) -> bool:
        """True when every receiver has the post, False after ``timeout`` seconds."""
        if self.counts.get(post_id, 0) >= self.receivers:
            return True
        fut = self.waiters.setdefault(post_id, asyncio.get_running_loop().create_future())
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self.waiters.pop(post_id, None)

    def error(self, text: str) -> None:
        if len(self.errors) < 50:
            self.errors.append(text)


class Receiver:
    """One person's stream. ``arrivals`` maps post_id -> perf_counter of its post.created frame."""

    __slots__ = ("host", "port", "token", "tracker", "arrivals", "frames", "keepalives", "drops",
                 "duplicates", "out_of_order", "last_id", "retry_ms", "other_events", "resyncs",
                 "_opened_once", "_writer", "connects")

    def __init__(self, host: str, port: int, token: str, tracker: Tracker) -> None:
        self.host, self.port, self.token, self.tracker = host, port, token, tracker
        self.arrivals: dict[int, float] = {}
        self.frames = 0
        self.keepalives = 0
        self.drops = 0          # the server ended an open stream (e.g. a full queue: DROP)
        self.duplicates = 0     # the same post.created twice on this receiver
        self.out_of_order = 0   # an id not above the previous one
        self.resyncs = 0
        self.other_events = 0
        self.last_id: int | None = None
        self.retry_ms = 2000
        self.connects = 0
        self._opened_once = False
        self._writer: asyncio.Transport | None = None

    # -- opening -------------------------------------------------------------------------------
    def _request(self) -> bytes:
        lines = [
            f"GET {STREAM_PATH} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Accept: text/event-stream",
            "Cache-Control: no-cache",
            "User-Agent: peerlift-bench-sse",
            f"Cookie: peerlift_session={self.token}",
        ]
        if self.last_id is not None:
            lines.append(f"Last-Event-ID: {self.last_id}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def open(self, first_frame, timeout: float = 60.0) -> "_StreamProtocol":
        """Connect, send the GET and read the head; returns the connection's protocol, which parses
        the body as it arrives (``first_frame()`` is called on the first frame)."""
        loop = asyncio.get_running_loop()
        transport, proto = await asyncio.wait_for(
            loop.create_connection(lambda: _StreamProtocol(self, first_frame), self.host, self.port), timeout)
        self._writer = transport
        self.connects += 1
        transport.write(self._request())
        status = await asyncio.wait_for(asyncio.shield(proto.head), timeout)
        if status != 200:
            try:
                await asyncio.wait_for(asyncio.shield(proto.more), 2.0)
            except (TimeoutError, OSError):
                pass
            transport.close()
            raise StreamRefused(status, bytes(proto.error_body))
        return proto

    # -- the loop ---------------------------------------------------------------------------------
    async def run(self, open_slots: asyncio.Semaphore, open_retries: int = 5) -> None:
        """Hold the stream until cancelled; reopen it (after ``retry:``) if the server ends it.

        The first opening holds one of ``open_slots`` until the stream's first frame (``retry:``)
        arrives: the server has registered the stream with its hub by then, so "open" means
        "will receive", and at most that many openings are in flight at once.
        """
        tracker = self.tracker
        attempt = 0
        while not tracker.stopping:
            slot = None
            try:
                if not self._opened_once:
                    await open_slots.acquire()
                    slot = [open_slots]

                def first_frame() -> None:
                    if slot:
                        slot.pop().release()
                    if not self._opened_once:
                        self._opened_once = True
                        tracker.mark_open()

                proto = await self.open(first_frame)
                attempt = 0
                await asyncio.shield(proto.ended)
                if tracker.stopping:
                    return
                self.drops += 1
            except asyncio.CancelledError:
                raise
            except (OSError, RuntimeError, TimeoutError, ValueError) as exc:
                if tracker.stopping:
                    return
                attempt += 1
                if not self._opened_once:
                    tracker.open_failures += 1
                    kind = f"HTTP {exc.status}" if isinstance(exc, StreamRefused) else exc.__class__.__name__
                    tracker.open_failure_kinds[kind] += 1
                    if attempt > open_retries:
                        tracker.error(f"gave up opening a stream: {exc.__class__.__name__}: {exc}")
                        return
                    if slot:
                        slot.pop().release()
                    await asyncio.sleep(0.2 * attempt)
                    continue
                self.drops += 1
                tracker.error(f"stream failed: {exc.__class__.__name__}: {exc}")
            finally:
                if slot:
                    slot.pop().release()
                self.close()
            if not tracker.stopping:
                await asyncio.sleep(self.retry_ms / 1000)

    def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - the loop may be closing
                pass

    def _frames(self, body: bytearray, now: float) -> int:
        """Consume the complete frames at the start of ``body``; returns how many."""
        n = 0
        while True:
            end = body.find(b"\n\n")
            if end < 0:
                return n
            block = bytes(body[:end])
            del body[:end + 2]
            n += 1
            self._frame(block, now)

    def _frame(self, block: bytes, now: float) -> None:
        parsed = self._parse(block)
        if parsed is not None:
            self._event(*parsed, now)

    def _parse(self, block: bytes) -> tuple[bytes, bytes] | None:
        """A frame's event name and data, with the counts every receiver keeps (keep-alives, frames, ids
        out of order); None for a keep-alive or a frame without data or id (e.g. the 'retry:' frame)."""
        if block.startswith(b":"):
            self.keepalives += 1
            return None
        if block.startswith(b"id: "):  # the server's own layout: "id: N\nevent: E\ndata: D", one data line
            lines = block.split(b"\n")
            if (len(lines) == 3 and lines[1].startswith(b"event: ") and lines[2].startswith(b"data: ")
                    and lines[0][4:].isdigit()):
                self.frames += 1
                event_id = int(lines[0][4:])
                if self.last_id is not None and event_id <= self.last_id:
                    self.out_of_order += 1
                else:
                    self.last_id = event_id
                return lines[1][7:], lines[2][6:]
        event = b"message"
        data = b""
        event_id = None
        for line in block.split(b"\n"):
            name, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if name == b"id":
                event_id = int(value) if value.isdigit() else None
            elif name == b"event":
                event = value
            elif name == b"data":
                data = value if not data else data + b"\n" + value
            elif name == b"retry" and value.isdigit():
                self.retry_ms = int(value)
        if not data and event_id is None:
            return None
        self.frames += 1
        if event_id is not None:
            if self.last_id is not None and event_id <= self.last_id:
                self.out_of_order += 1
            else:
                self.last_id = event_id
        return event, data

    def _event(self, event: bytes, data: bytes, now: float) -> None:
        if event == b"post.created":
            found = _POST_ID.search(data)
            post_id = int(found.group(1)) if found else json.loads(data)["post_id"]
            if post_id in self.arrivals:
                self.duplicates += 1
            else:
                self.arrivals[post_id] = now
                self.tracker.arrived(post_id)
        elif event == b"resync":
            self.resyncs += 1
        else:
            self.other_events += 1


class _StreamProtocol(asyncio.Protocol):
    """The bytes of one stream, parsed in the event loop's read callback: no task is woken per frame,
    so reading 10,000 streams costs the client little more than the reads themselves. The arrival
    time of each read is taken before any parsing."""

    __slots__ = ("receiver", "first_frame", "head", "more", "ended", "error_body", "_head_buf", "_raw",
                 "_body", "_need", "_chunked", "_first")

    def __init__(self, receiver: Receiver, first_frame) -> None:
        loop = asyncio.get_running_loop()
        self.receiver = receiver
        self.first_frame = first_frame
        self.head: asyncio.Future = loop.create_future()    # the status code
        self.more: asyncio.Future = loop.create_future()    # some of an error's body arrived
        self.ended: asyncio.Future = loop.create_future()   # the server ended the stream
        self.error_body = bytearray()
        self._head_buf = bytearray()
        self._raw = bytearray()     # undecoded bytes (chunk framing)
        self._body = bytearray()    # decoded bytes not yet split into frames
        self._need = -1             # bytes left in the current chunk (+2 for its CRLF); -1: a size line is next
        self._chunked = False
        self._first = True

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self.head.done():
            self._head_buf += data
            idx = self._head_buf.find(b"\r\n\r\n")
            if idx < 0:
                return
            head = self._head_buf[:idx].decode("latin-1")
            data = bytes(self._head_buf[idx + 4:])
            self._head_buf = bytearray()
            status_line, *header_lines = head.split("\r\n")
            parts = status_line.split(" ", 2)
            status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            for line in header_lines:
                name, _, value = line.partition(":")
                if name.strip().lower() == "transfer-encoding" and value.strip().lower() == "chunked":
                    self._chunked = True
            self.head.set_result(status)
            if status != 200:
                self.error_body += data
                return
            if not data:
                return
        elif self.head.result() != 200:
            self.error_body += data
            if not self.more.done():
                self.more.set_result(None)
            return
        if not self._raw and self._need < 0 and not self._body and self._chunked and not self._first:
            # The common case: the read is one whole chunk holding one whole frame.
            idx = data.find(b"\r\n")
            if idx > 0:
                try:
                    size = int(data[:idx], 16)
                except ValueError:
                    size = -1
                end = idx + 2 + size
                if size > 2 and len(data) == end + 2 and data.endswith(b"\n\n\r\n") and data.find(b"\n\n", idx + 2) == end - 2:
                    self.receiver._frame(data[idx + 2:end - 2], now)
                    return
        if self._feed(data, now) and not self.ended.done():
            self.ended.set_result(None)

    def _feed(self, data: bytes, now: float) -> bool:
        """Decode ``data`` and hand over complete frames; True when the body ended."""
        ended = False
        if self._chunked:
            raw = self._raw
            raw += data
            while True:
                if self._need < 0:
                    idx = raw.find(b"\r\n")
                    if idx < 0:
                        break
                    size = int(bytes(raw[:idx]).split(b";", 1)[0], 16)
                    del raw[:idx + 2]
                    if size == 0:
                        ended = True
                        break
                    self._need = size + 2
                if len(raw) < self._need:
                    break
                self._body += raw[:self._need - 2]
                del raw[:self._need]
                self._need = -1
        else:
            self._body += data
        if self.receiver._frames(self._body, now) and self._first:
            self._first = False
            self.first_frame()
        return ended

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(exc or ConnectionResetError("closed before the response head"))
        if not self.more.done():
            self.more.set_result(None)
        if not self.ended.done():
            self.ended.set_result(None)
