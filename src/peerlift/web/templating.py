"""Jinja2 templates and the context every page gets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from peerlift.community.models import REACTION_EMOJI, REACTIONS
from peerlift.community.text import render as render_markdown
from peerlift.db import utcnow

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _local(value: dt.datetime | None, tz: str, fmt: str = "%a %d %b, %H:%M") -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(tz)).strftime(fmt)


def _ago(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    seconds = int((utcnow() - value).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    days = seconds // 86400
    return "yesterday" if days == 1 else f"{days} days ago"


TEMPLATES.env.filters["ago"] = _ago
TEMPLATES.env.filters["markdown"] = render_markdown
TEMPLATES.env.globals["REACTIONS"] = REACTIONS
TEMPLATES.env.globals["REACTION_EMOJI"] = REACTION_EMOJI


def _nav_counts(user_id: int) -> dict[str, int]:
    """The badges of the navigation bar: unread messages and notifications."""
    from sqlalchemy import select

    from peerlift.community.queries import unread_message_total
    from peerlift.db import get_engine, make_session
    from peerlift.identity.models import User
    from peerlift.notify.service import unread_count

    with make_session(get_engine()) as s:
        user = s.scalar(select(User).where(User.id == user_id))
        return {"messages": unread_message_total(s, user), "notifications": unread_count(s, user_id)}


def page(request: Request, name: str, context: dict | None = None, status_code: int = 200) -> HTMLResponse:
    from peerlift.web.deps import csrf_token_for

    user = getattr(request.state, "viewer", None)
    tz = user.timezone if user else "UTC"
    ctx = {
        "user": user,
        "csrf_token": csrf_token_for(request),
        "local": lambda value, fmt="%a %d %b, %H:%M": _local(value, tz, fmt),
        "iso": lambda value: value.isoformat() if value else "",
        "path": request.url.path,
    }
    if user is not None and "nav" not in (context or {}):
        ctx["nav"] = _nav_counts(user.id)
    ctx.update(context or {})
    return TEMPLATES.TemplateResponse(request, name, ctx, status_code=status_code)
