"""HTML routes of the facilitator's inbox: a queue of cards with reply, snooze and dismiss."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from peerlift.cues import queries, service
from peerlift.db import utcnow
from peerlift.errors import InvalidInput, PeerliftError
from peerlift.policy import inbox_card_access
from peerlift.web.deps import DB, CurrentUser
from peerlift.web.templating import page

router = APIRouter(include_in_schema=False)
SNOOZES = {"1h": "1 hour", "4h": "4 hours", "tomorrow": "Tomorrow 09:00"}


def _until(choice: str, timezone: str) -> dt.datetime:
    now = utcnow()
    if choice == "1h":
        return now + dt.timedelta(hours=1)
    if choice == "4h":
        return now + dt.timedelta(hours=4)
    if choice == "tomorrow":
        zone = ZoneInfo(timezone)
        day = now.astimezone(zone).date() + dt.timedelta(days=1)
        return dt.datetime.combine(day, dt.time(9), tzinfo=zone).astimezone(dt.UTC)
    raise InvalidInput("Choose how long to snooze the card.", field="until")


def _show(request: Request, db, user, *, error: str | None = None, status_code: int = 200):
    cards = queries.inbox(db, user)
    return page(request, "inbox.html", {"cards": cards, "snoozes": SNOOZES, "error": error},
                status_code=status_code)


@router.get("/inbox")
def inbox(request: Request, db: DB, user: CurrentUser):
    return _show(request, db, user)


@router.get("/inbox/fragment")
def fragment(request: Request, db: DB, user: CurrentUser):
    """The card list alone, for the page script to swap in when a card arrives or changes."""
    cards = queries.inbox(db, user)
    return page(request, "fragments/inbox_cards.html", {"cards": cards, "snoozes": SNOOZES, "nav": None})


def _act(request: Request, db, user, card_id: int, action):
    try:
        card = inbox_card_access(db, user, card_id)
        action(card)
    except PeerliftError as exc:
        db.rollback()
        return _show(request, db, user, error=exc.message, status_code=exc.status_code)
    return RedirectResponse("/inbox", status_code=303)


@router.post("/inbox/{card_id}/reply")
def reply(request: Request, card_id: int, db: DB, user: CurrentUser,
          text: Annotated[str, Form(max_length=10_000)] = ""):
    return _act(request, db, user, card_id, lambda card: service.reply(db, user, card, text))


@router.post("/inbox/{card_id}/snooze")
def snooze(request: Request, card_id: int, db: DB, user: CurrentUser,
           until: Annotated[str, Form(max_length=16)] = ""):
    return _act(request, db, user, card_id,
                lambda card: service.snooze(db, user, card, _until(until, user.timezone)))


@router.post("/inbox/{card_id}/dismiss")
def dismiss(request: Request, card_id: int, db: DB, user: CurrentUser):
    return _act(request, db, user, card_id, lambda card: service.dismiss(db, user, card))

