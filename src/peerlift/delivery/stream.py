"""``GET /api/v1/stream``: one Server-Sent Events stream per signed-in person.

On connect the person's audience (their circles, conversations and themselves) is
registered with the hub *before* the replay, so nothing committed in between is lost;
events already replayed are skipped by id. A ``Last-Event-ID`` further behind than
``REPLAY_LIMIT`` events, or ahead of the newest event, gets a ``resync`` event: the client
reloads what it shows and carries on from the id in it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import func, or_, select
from starlette.concurrency import run_in_threadpool

from peerlift.community.models import Conversation, Membership
from peerlift.delivery.hub import DROP, KEEPALIVE, SERVER_SEND, chunk, frame, hub
from peerlift.errors import BadRequest, NotAuthenticated, responses
from peerlift.events import LIVE_KINDS, Event
from peerlift.settings import get_settings
from peerlift.db import get_engine, make_session
from peerlift.identity.service import resolve_session
from peerlift.identity.two_factor import SETUP_MESSAGE, TwoFactorSetupRequired
from peerlift.identity.two_factor import needs_setup as needs_two_factor_setup
from peerlift.web.deps import SESSION_COOKIE

router = APIRouter(prefix="/api/v1", tags=["delivery"])


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"


REPLAY_LIMIT = 1000


def audience_keys(session, user_id: int) -> tuple[set[str], set[int], set[int]]:
    spaces = set(session.scalars(select(Membership.space_id).where(Membership.user_id == user_id)))
    conversations = set(session.scalars(select(Conversation.id).where(
        or_(Conversation.user_low_id == user_id, Conversation.user_high_id == user_id))))
    keys = {f"space:{s}" for s in spaces} | {f"conversation:{c}" for c in conversations} | {f"user:{user_id}"}
    return keys, spaces, conversations


def _replay(session, user_id: int, spaces: set[int], conversations: set[int],
            last_id: int | None) -> tuple[list[str], int | None, int]:
    """Replay frames, a resync id (or None), and the newest committed id."""
    newest = session.scalar(select(func.max(Event.id))) or 0
    if last_id is None:
        return [], None, newest
    if last_id > newest:
        return [], newest, newest
    visible = or_(Event.space_id.in_(spaces), Event.conversation_id.in_(conversations), Event.user_id == user_id)
    rows = list(session.scalars(
        select(Event).where(Event.id > last_id, Event.id <= newest, Event.kind.in_(LIVE_KINDS), visible)
        .order_by(Event.id).limit(REPLAY_LIMIT + 1)))
    if len(rows) > REPLAY_LIMIT:
        return [], newest, newest
    return [frame(e) for e in rows], None, newest


def _open(token: str | None, last_id: int | None, loop):
    """Sign-in check, audience, registration and replay in one go, on one pooled connection that
    is given back before the stream starts: a reconnect storm never leaves requests holding a
    connection while they wait for a thread, or the other way round."""
    with make_session(get_engine()) as session:
        auth = resolve_session(session, token, days=get_settings().session_days)
        if auth is None:
            return None
        if needs_two_factor_setup(auth.user):
            raise TwoFactorSetupRequired(SETUP_MESSAGE)
        user_id = auth.user_id
        keys, spaces, conversations = audience_keys(session, user_id)
        # Register before reading the replay: whatever commits from now on reaches the queue.
        conn = hub.register(user_id, keys, loop)
        try:
            session.commit()  # a fresh snapshot: the replay sees all that committed so far
            replay, resync_id, newest = _replay(session, user_id, spaces, conversations, last_id)
            session.commit()
        except BaseException:
            hub.unregister(conn)
            raise
    return conn, replay, resync_id, newest


def _resync(event_id: int) -> str:
    payload = json.dumps({"id": event_id, "type": "resync",
                          "message": "Reload what you show; the stream continues from this id."})
    return f"id: {event_id}\nevent: resync\ndata: {payload}\n\n"


WRITE_LIMIT = 64 * 1024  # bytes a stream's socket may hold unsent before its client counts as too slow


def socket_writer(server_send):
    """A function writing one chunk of the response body straight to the socket, or None.

    Fan-out to thousands of streams is the cost of a live feed: through the ASGI stack every frame
    wakes one task per stream and passes each layer of ``send``; written by the hub's one callback per
    event, a frame costs one socket write. This works with uvicorn's httptools protocol (what
    ``peerlift serve`` runs) once the response has started with chunked encoding (a stream has no
    length), and bypasses nothing but the copying of bytes: the headers went through every middleware
    already. Under another server or protocol, None: frames go through ``send``.
    """
    cycle = getattr(server_send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if (transport is None or getattr(cycle, "chunked_encoding", None) is not True
            or not hasattr(cycle, "disconnected") or getattr(cycle, "response_complete", True)):
        return None

    def write(data: bytes) -> bool:
        if cycle.disconnected or transport.is_closing():
            return False
        if transport.get_write_buffer_size() > WRITE_LIMIT:
            transport.abort()  # too slow: its client reconnects with the last id it has
            return False
        transport.write(data)
        return True

    return write


class LiveStream(StreamingResponse):
    """The response of an open stream: the opening frames (retry, resync, replay) through ``send``,
    then live frames from the connection, and a keep-alive comment after ``keepalive`` quiet seconds."""

    media_type = "text/event-stream"

    def __init__(self, conn, opening: bytes, keepalive: float) -> None:
        super().__init__((), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.conn = conn
        self.opening = opening
        self.keepalive = keepalive

    async def __call__(self, scope, receive, send) -> None:
        conn = self.conn
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            await send({"type": "http.response.body", "body": self.opening, "more_body": True})
            write = socket_writer(scope.get(SERVER_SEND))
            if write is not None:
                conn.attach(write)
            if conn.write is not None:
                await self._hold(receive)
            else:
                await self._pump(receive, send)
        finally:
            hub.unregister(conn)

    async def _hold(self, receive) -> None:
        """Frames are written by the hub; this only keeps the line alive and waits for its end (a
        client that goes away, or one too slow, whose socket the writer closed)."""
        conn = self.conn
        keepalive = chunk(KEEPALIVE)
        while True:
            try:
                async with asyncio.timeout(self.keepalive):
                    message = await receive()
            except TimeoutError:
                if not conn.dropped and not conn.write(keepalive):
                    conn.dropped = True
                continue
            if message["type"] == "http.disconnect":
                return

    async def _pump(self, receive, send) -> None:
        conn = self.conn

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            conn.drop()

        watcher = asyncio.ensure_future(watch())
        try:
            while True:
                item = await conn.get(self.keepalive)
                if item is None:
                    body = KEEPALIVE
                elif item[1] is DROP:
                    break
                elif item[0] <= conn.last_sent:
                    continue
                else:
                    conn.last_sent = item[0]
                    body = item[1]
                await send({"type": "http.response.body", "body": body, "more_body": True})
            if not watcher.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()


@router.get(
    "/stream",
    response_class=EventStreamResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"},
               **responses(400, 401, 403)},
)
async def stream(request: Request,
                 last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None):
    """Everything the signed-in person may see, live. Resume with the ``Last-Event-ID`` header
    (browsers send it on reconnect) or ``?last_event_id=``."""
    raw = last_event_id if last_event_id is not None else request.query_params.get("last_event_id")
    last_id: int | None = None
    if raw is not None and raw != "":
        if not raw.isdigit() or len(raw) > 18:
            raise BadRequest("Last-Event-ID must be the number of an event this stream sent.",
                             field="Last-Event-ID", code="bad_last_event_id")
        last_id = int(raw)
    opened = await run_in_threadpool(_open, request.cookies.get(SESSION_COOKIE), last_id,
                                     asyncio.get_running_loop())
    if opened is None:
        raise NotAuthenticated("Sign in first.")
    conn, replay, resync_id, newest = opened
    conn.last_sent = newest  # the replay covers everything up to here
    opening = "retry: 2000\n\n" + (_resync(resync_id) if resync_id is not None else "") + "".join(replay)
    return LiveStream(conn, opening.encode(), get_settings().stream_keepalive_seconds)
