"""A small Server-Sent Events reader for tests: a thread collects frames from a real stream."""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass

import httpx


@dataclass
class Frame:
    id: int | None
    event: str
    data: dict


class StreamReader:
    def __init__(self, client: httpx.Client, last_event_id: int | str | None = None) -> None:
        self.client = client
        self.headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
        self.frames: queue.Queue[Frame] = queue.Queue()
        self.comments = 0
        self.status: int | None = None
        self.ended: Exception | None = None  # how the server ended the stream, when it did
        self.opened = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "StreamReader":
        self._thread.start()
        assert self.opened.wait(10), "the stream did not open"
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self._thread.join(timeout=5)

    def stop(self) -> None:
        """Ask the reader to finish; it notices at the next line the server sends (a keep-alive at
        the latest), so many readers stop together when all are asked before any is joined."""
        self._stop.set()

    def _run(self) -> None:
        try:
            self._read()
        except httpx.HTTPError as exc:  # e.g. the server stopped and cut the stream
            self.ended = exc
            self.opened.set()

    def _read(self) -> None:
        with self.client.stream("GET", "/api/v1/stream", headers=self.headers, timeout=None) as response:
            self.status = response.status_code
            self.opened.set()
            if response.status_code != 200:
                response.read()
                self.body = response.text
                return
            fields: dict[str, str] = {}
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line == "":
                    if "data" in fields:
                        self.frames.put(Frame(int(fields["id"]) if fields.get("id") else None,
                                              fields.get("event", "message"), json.loads(fields["data"])))
                    fields = {}
                elif line.startswith(":"):
                    self.comments += 1
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value[1:] if value.startswith(" ") else value

    def next(self, timeout: float = 5.0) -> Frame:
        return self.frames.get(timeout=timeout)

    def collect(self, seconds: float) -> list[Frame]:
        out, deadline = [], time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                out.append(self.frames.get(timeout=left))
            except queue.Empty:
                break
        return out

    def wait_for(self, event: str, timeout: float = 5.0, **match) -> Frame:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            frame = self.frames.get(timeout=left)
            if frame.event == event and all(frame.data.get(k) == v for k, v in match.items()):
                return frame
        raise AssertionError(f"no {event} {match} within {timeout}s")
