"""JSON routes of the facilitator's inbox."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from peerlift.cues import queries, service
from peerlift.errors import responses
from peerlift.policy import inbox_card_access
from peerlift.web.deps import DB, CurrentUser

router = APIRouter(prefix="/api/v1", tags=["inbox"])


class CardDetailOut(BaseModel):
    card: queries.CardView
    actions: list[queries.ActionView]


class InboxOut(BaseModel):
    cards: list[queries.CardView]


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=10_000, description="The direct message to the member")


class SnoozeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    until: dt.datetime = Field(description="When the card comes back (with a time zone offset)")


class DismissIn(BaseModel):
    model_config = ConfigDict(extra="forbid")


@router.get("/inbox", response_model=InboxOut, responses=responses(401, 422))
def list_cards(db: DB, user: CurrentUser, status: Annotated[Literal["open", "all"], Query()] = "open",
               limit: Annotated[int, Query(ge=1, le=500)] = 100):
    """What needs a human now in the circles the caller facilitates (``status=all``: handled ones too)."""
    return InboxOut(cards=queries.inbox(db, user, status=status, limit=limit))


def _detail(db, user, card) -> CardDetailOut:
    view, actions = queries.card(db, user, card)
    return CardDetailOut(card=view, actions=actions)


@router.get("/inbox/{card_id}", response_model=CardDetailOut, responses=responses(401, 404))
def get_card(card_id: int, db: DB, user: CurrentUser):
    return _detail(db, user, inbox_card_access(db, user, card_id))


@router.post("/inbox/{card_id}/reply", response_model=CardDetailOut, responses=responses(401, 403, 404, 409, 422))
def reply(card_id: int, body: ReplyIn, db: DB, user: CurrentUser):
    """Send the member a direct message; the card is handled. 409 when someone handled it first."""
    card = service.reply(db, user, inbox_card_access(db, user, card_id), body.text)
    return _detail(db, user, card)


@router.post("/inbox/{card_id}/snooze", response_model=CardDetailOut, responses=responses(401, 403, 404, 409, 422))
def snooze(card_id: int, body: SnoozeIn, db: DB, user: CurrentUser):
    card = service.snooze(db, user, inbox_card_access(db, user, card_id), body.until)
    return _detail(db, user, card)


@router.post("/inbox/{card_id}/dismiss", response_model=CardDetailOut, responses=responses(401, 403, 404, 409, 422))
def dismiss(card_id: int, db: DB, user: CurrentUser, body: DismissIn | None = None):
    card = service.dismiss(db, user, inbox_card_access(db, user, card_id))
    return _detail(db, user, card)
