"""JSON routes of the notification centre."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from peerlift.errors import responses
from peerlift.notify import queries, service
from peerlift.web.deps import DB, CurrentUser

router = APIRouter(prefix="/api/v1", tags=["notifications"])


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    text: str
    link: str
    actor_name: str | None
    circle_name: str | None
    created_at: dt.datetime
    read: bool


class NotificationsOut(BaseModel):
    notifications: list[NotificationOut]
    unread_count: int
    next_cursor: int | None


class ReadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[int] | None = Field(None, max_length=500, description="Omit to mark every notification read")


class ReadOut(BaseModel):
    changed: int
    unread_count: int


class PreferencesIO(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)
    channels: dict[str, str] | None = Field(None, description="kind -> in_app | email | off")
    quiet_start: str | None = Field(None, description="HH:MM, local time; no email during quiet hours")
    quiet_end: str | None = None
    digest: str | None = Field(None, description="off, daily or weekly")
    digest_hour: int | None = None


@router.get("/notifications", response_model=NotificationsOut, responses=responses(401, 422))
def list_notifications(db: DB, user: CurrentUser, before: Annotated[int | None, Query()] = None,
                       limit: Annotated[int, Query(ge=1, le=100)] = 30):
    views, cursor = queries.notifications(db, user, before=before, limit=limit)
    return NotificationsOut(notifications=views, unread_count=service.unread_count(db, user.id), next_cursor=cursor)


@router.post("/notifications/read", response_model=ReadOut, responses=responses(401, 403, 422))
def read_notifications(body: ReadIn, db: DB, user: CurrentUser):
    changed = service.mark_read(db, user, body.ids)
    return ReadOut(changed=changed, unread_count=service.unread_count(db, user.id))


@router.get("/notification-preferences", response_model=PreferencesIO, responses=responses(401))
def get_preferences(db: DB, user: CurrentUser):
    return queries.preferences(db, user)


@router.put("/notification-preferences", response_model=PreferencesIO, responses=responses(401, 403, 422))
def put_preferences(body: PreferencesIO, db: DB, user: CurrentUser):
    service.update_settings(db, user, **body.model_dump())
    return queries.preferences(db, user)
