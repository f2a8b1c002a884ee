"""HTML routes of the notification centre and its settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from peerlift.errors import PeerliftError
from peerlift.notify import queries, service
from peerlift.notify.models import Channel, Kind
from peerlift.web.deps import DB, CurrentUser
from peerlift.web.templating import page

router = APIRouter(include_in_schema=False)
KIND_LABELS = {
    Kind.mention.value: "Someone mentions me",
    Kind.reply.value: "Someone replies to my post or comment",
    Kind.reaction.value: "Someone reacts to my post",
    Kind.message.value: "A private message",
    Kind.facilitator_answer.value: "My coach answers my post",
    Kind.prompt.value: "Messages from my programme",
    Kind.answer_accepted.value: "Someone accepts my answer to their question",
}


@router.get("/notifications")
def notifications(request: Request, db: DB, user: CurrentUser, before: int | None = None):
    views, cursor = queries.notifications(db, user, before=before)
    return page(request, "notifications.html", {"notifications": views, "cursor": cursor})


@router.post("/notifications/read")
def read_all(db: DB, user: CurrentUser):
    service.mark_read(db, user)
    return RedirectResponse("/notifications", status_code=303)


@router.post("/notifications/{notification_id}/open")
def open_one(notification_id: int, db: DB, user: CurrentUser):
    views, _ = queries.notifications(db, user, before=notification_id + 1, limit=1)
    if not views or views[0].id != notification_id:
        return RedirectResponse("/notifications", status_code=303)
    service.mark_read(db, user, [notification_id])
    return RedirectResponse(views[0].link, status_code=303)


@router.get("/settings/notifications")
def settings_form(request: Request, db: DB, user: CurrentUser, saved: int = 0):
    return page(request, "notification_settings.html", {
        "prefs": queries.preferences(db, user), "labels": KIND_LABELS, "channels": [c.value for c in Channel],
        "saved": bool(saved)})


ChannelField = Annotated[str, Form(max_length=16)]


@router.post("/settings/notifications")
def save_settings(request: Request, db: DB, user: CurrentUser,
                  quiet_start: Annotated[str, Form(max_length=5)] = "22:00",
                  quiet_end: Annotated[str, Form(max_length=5)] = "07:00",
                  digest: Annotated[str, Form(max_length=8)] = "off",
                  digest_hour: Annotated[int, Form()] = 8,
                  channel_mention: ChannelField = "", channel_reply: ChannelField = "",
                  channel_reaction: ChannelField = "", channel_message: ChannelField = "",
                  channel_facilitator_answer: ChannelField = "", channel_prompt: ChannelField = ""):
    given = {"mention": channel_mention, "reply": channel_reply, "reaction": channel_reaction,
             "message": channel_message, "facilitator_answer": channel_facilitator_answer, "prompt": channel_prompt}
    try:
        service.update_settings(db, user, channels={k: v for k, v in given.items() if v}, quiet_start=quiet_start,
                                quiet_end=quiet_end, digest=digest, digest_hour=digest_hour)
    except PeerliftError as exc:
        db.rollback()
        return page(request, "notification_settings.html", {
            "prefs": queries.preferences(db, user), "labels": KIND_LABELS, "channels": [c.value for c in Channel],
            "error": exc.message}, status_code=exc.status_code)
    return RedirectResponse("/settings/notifications?saved=1", status_code=303)
