"""HTML routes of safety: flagging, the review queue, gating, and the clinician's escalations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from peerlift.community.models import CircleRole
from peerlift.errors import NotFound, PeerliftError
from peerlift.identity.audit import record_reads
from peerlift.identity.models import Role
from peerlift.policy import circle_access, comment_access, post_access, require_role
from peerlift.safety import queries, service
from peerlift.web.deps import DB, CurrentUser, client_ip, local_path
from peerlift.web.templating import page

router = APIRouter(include_in_schema=False)
QUEUE_ROLES = (CircleRole.facilitator, CircleRole.clinician, CircleRole.peer_supporter)


@router.get("/posts/{post_id}/flag")
def flag_post_form(request: Request, post_id: int, db: DB, user: CurrentUser):
    post_access(db, user, post_id)
    return page(request, "safety/flag.html", {"object_type": "post", "object_id": post_id,
                                              "reasons": service.flag_reason_choices()})


@router.get("/comments/{comment_id}/flag")
def flag_comment_form(request: Request, comment_id: int, db: DB, user: CurrentUser):
    comment_access(db, user, comment_id)
    return page(request, "safety/flag.html", {"object_type": "comment", "object_id": comment_id,
                                              "reasons": service.flag_reason_choices()})


@router.get("/messages/m/{message_id}/flag")
def flag_message_form(request: Request, message_id: int, db: DB, user: CurrentUser):
    service.locate(db, user, "message", message_id)
    return page(request, "safety/flag.html", {"object_type": "message", "object_id": message_id,
                                              "reasons": service.flag_reason_choices()})


@router.post("/flags")
def flag(request: Request, db: DB, user: CurrentUser, object_type: Annotated[str, Form(max_length=16)],
         object_id: Annotated[int, Form()], reason: Annotated[str, Form(max_length=32)] = "",
         note: Annotated[str, Form(max_length=1000)] = ""):
    space_id, back = service.locate(db, user, object_type, object_id)
    try:
        service.flag(db, user, object_type=object_type, object_id=object_id, reason=reason, note=note,
                     space_id=space_id)
    except PeerliftError as exc:
        if isinstance(exc, NotFound):
            raise
        db.rollback()
        return page(request, "safety/flag.html", {"object_type": object_type, "object_id": object_id,
                                                  "reasons": service.flag_reason_choices(), "error": exc.message,
                                                  "note": note}, status_code=exc.status_code)
    return page(request, "safety/flagged.html", {"back": back})


def _queue_access(db, user, circle_id: int):
    access = circle_access(db, user, circle_id)
    if access.role not in QUEUE_ROLES:
        raise NotFound("No circle with that id.", field="circle_id")
    return access


@router.get("/circles/{circle_id}/review")
def review_queue(request: Request, circle_id: int, db: DB, user: CurrentUser, status: str = "open",
                 error: str = ""):
    access = _queue_access(db, user, circle_id)
    status = "handled" if status == "handled" else "open"
    items = queries.review_queue(db, access.space_id, status=status)
    record_reads(db, user.id, queries.review_reads(items), ip=client_ip(request))
    return page(request, "safety/review.html", {
        "circle": access.space, "access": access, "items": items,
        "status": status, "can_act": access.role != CircleRole.peer_supporter, "error": error,
        "gated": queries.gated_members(db, access.space_id)})


@router.post("/review/{item_id}")
def act(request: Request, item_id: int, db: DB, user: CurrentUser, action: Annotated[str, Form(max_length=16)],
        reason: Annotated[str, Form(max_length=1000)] = "", mute_hours: Annotated[int | None, Form()] = None):
    item = service.get_review_item(db, user, item_id, act=True)
    circle_id = item.space_id
    try:
        service.handle(db, user, item, action, reason=reason, mute_hours=mute_hours)
    except PeerliftError as exc:
        if isinstance(exc, NotFound):
            raise
        db.rollback()
        access = _queue_access(db, user, circle_id)
        items = queries.review_queue(db, access.space_id)
        record_reads(db, user.id, queries.review_reads(items), ip=client_ip(request))
        return page(request, "safety/review.html", {
            "circle": access.space, "access": access, "items": items,
            "status": "open", "can_act": True, "error": exc.message,
            "gated": queries.gated_members(db, access.space_id)}, status_code=exc.status_code)
    return RedirectResponse(f"/circles/{circle_id}/review", status_code=303)


@router.post("/circles/{circle_id}/members/{user_id}/gating")
def set_gating(circle_id: int, user_id: int, db: DB, user: CurrentUser, gated: Annotated[bool, Form()] = False,
               next: Annotated[str, Form(max_length=300)] = ""):
    access = circle_access(db, user, circle_id)
    service.set_gating(db, access, service.member_of(db, access, user_id), gated)
    return RedirectResponse(local_path(next, f"/circles/{circle_id}/members"), status_code=303)


@router.post("/circles/{circle_id}/premoderation")
def set_premoderation(circle_id: int, db: DB, user: CurrentUser, on: Annotated[bool, Form()] = False):
    service.set_premoderation(db, circle_access(db, user, circle_id), on)
    return RedirectResponse(f"/circles/{circle_id}/review", status_code=303)


@router.get("/safety/escalations")
def escalations(request: Request, db: DB, user: CurrentUser):
    require_role(user, {Role.clinician, Role.admin}, "see escalations")
    open_ = queries.escalations(db, user, status="open")
    resolved = queries.escalations(db, user, status="resolved", limit=20)
    record_reads(db, user.id, queries.escalation_reads(open_ + resolved), ip=client_ip(request))
    return page(request, "safety/escalations.html", {"open": open_, "resolved": resolved})


def _escalation_page(request: Request, db, user, escalation_id: int, *, error: str = "", status: int = 200):
    view = queries.escalation(db, service.get_escalation(db, user, escalation_id))
    record_reads(db, user.id, queries.escalation_reads([view]), ip=client_ip(request))
    return page(request, "safety/escalation.html", {"e": view, "outcomes": service.OUTCOMES, "error": error},
                status_code=status)


@router.get("/safety/escalations/{escalation_id}")
def escalation(request: Request, escalation_id: int, db: DB, user: CurrentUser, error: str = ""):
    return _escalation_page(request, db, user, escalation_id, error=error)


@router.post("/safety/escalations/{escalation_id}/acknowledge")
def acknowledge(request: Request, escalation_id: int, db: DB, user: CurrentUser):
    e = service.get_escalation(db, user, escalation_id)
    try:
        service.acknowledge(db, user, e)
    except PeerliftError as exc:
        db.rollback()
        return _escalation_page(request, db, user, escalation_id, error=exc.message, status=exc.status_code)
    return RedirectResponse(f"/safety/escalations/{escalation_id}", status_code=303)


@router.post("/safety/escalations/{escalation_id}/resolve")
def resolve(request: Request, escalation_id: int, db: DB, user: CurrentUser,
            outcome: Annotated[str, Form(max_length=32)] = "", note: Annotated[str, Form(max_length=5000)] = ""):
    e = service.get_escalation(db, user, escalation_id)
    try:
        service.resolve(db, user, e, outcome=outcome, note=note)
    except PeerliftError as exc:
        db.rollback()
        return _escalation_page(request, db, user, escalation_id, error=exc.message, status=exc.status_code)
    return RedirectResponse("/safety/escalations", status_code=303)
