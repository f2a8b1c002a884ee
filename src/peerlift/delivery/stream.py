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
from peerlift.delivery.hub import DROP, frame, hub
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
    keepalive = get_settings().stream_keepalive_seconds

    async def events():
        last_sent = newest if (last_id is None or resync_id is not None) else last_id
        try:
            yield "retry: 2000\n\n"
            if resync_id is not None:
                yield _resync(resync_id)
            for item in replay:
                yield item
            last_sent = max(last_sent, newest)
            while True:
                try:
                    event_id, text = await asyncio.wait_for(conn.queue.get(), timeout=keepalive)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if text is DROP:
                    return
                if event_id <= last_sent:
                    continue
                last_sent = event_id
                yield text
        finally:
            hub.unregister(conn)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
