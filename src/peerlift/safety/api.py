"""JSON routes of safety: flags, the review queue, gating, escalations, triage and PII checks."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from peerlift.errors import responses as R
from peerlift.identity.audit import record_reads
from peerlift.identity.models import Role
from peerlift.policy import circle_access, require_role
from peerlift.safety import pii, queries, service
from peerlift.safety.triage import triage
from peerlift.web.deps import DB, CurrentUser, client_ip

router = APIRouter(prefix="/api/v1", tags=["safety"])
STAFF = {Role.facilitator, Role.clinician, Role.researcher, Role.admin}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextIn(_In):
    text: str = Field(max_length=200_000)


class TriageOut(BaseModel):
    level: Literal["green", "amber", "red", "crisis"]
    reasons: list[str]
    emergency: bool


class FindingOut(BaseModel):
    kind: Literal["phone", "email", "address", "name"]
    text: str
    start: int
    end: int


class PersonalInformationOut(BaseModel):
    findings: list[FindingOut]
    warning: str | None


class FlagIn(_In):
    object_type: Literal["post", "comment", "message", "experience"]
    object_id: int
    reason: str = Field(description="crisis, harmful_advice, harassment, spam or privacy")
    note: str = Field("", max_length=1000)


class FlagOut(BaseModel):
    id: int
    review_item_id: int
    reason: str
    created_at: dt.datetime


class ActionIn(_In):
    action: Literal["hide", "remove", "restore", "approve", "warn", "mute", "remove_member", "dismiss"]
    reason: str = Field("", max_length=1000)
    mute_hours: int | None = None


class ActionOut(BaseModel):
    id: int
    action: str
    at: dt.datetime


class GatingIn(_In):
    gated: bool


class ResolveIn(_In):
    outcome: str = Field(description=", ".join(service.OUTCOMES))
    note: str = Field("", max_length=5000)


@router.post("/safety/triage", response_model=TriageOut, responses=R(401, 403, 422))
def triage_text(body: TextIn, user: CurrentUser):
    require_role(user, STAFF, "triage text")
    return triage(body.text).as_dict()


@router.post("/safety/personal-information", response_model=PersonalInformationOut, responses=R(401, 422))
def check_personal_information(body: TextIn, user: CurrentUser):
    findings = pii.find(body.text)
    return {"findings": [f.as_dict() for f in findings], "warning": pii.warning(findings) if findings else None}


@router.post("/flags", response_model=FlagOut, status_code=201, responses=R(401, 404, 409, 422))
def flag(body: FlagIn, db: DB, user: CurrentUser):
    space_id, _page = service.locate(db, user, body.object_type, body.object_id)
    new = service.flag(db, user, object_type=body.object_type, object_id=body.object_id, reason=body.reason,
                       note=body.note, space_id=space_id)
    return FlagOut(id=new.id, review_item_id=new.review_item_id, reason=new.reason.value, created_at=new.created_at)


@router.get("/circles/{circle_id}/review", response_model=list[queries.ReviewView], responses=R(401, 403, 404))
def review_queue(request: Request, circle_id: int, db: DB, user: CurrentUser,
                 status: Literal["open", "handled"] = "open"):
    access = circle_access(db, user, circle_id)
    _require_queue(access)
    items = queries.review_queue(db, access.space_id, status=status)
    record_reads(db, user.id, queries.review_reads(items), ip=client_ip(request))
    return items


def _require_queue(access) -> None:
    from peerlift.community.models import CircleRole
    from peerlift.errors import NotFound

    if access.role not in (CircleRole.facilitator, CircleRole.clinician, CircleRole.peer_supporter):
        raise NotFound("No review queue here.", field="circle_id")


@router.post("/review/{review_item_id}/actions", response_model=ActionOut, status_code=201,
             responses=R(401, 403, 404, 409, 422))
def act(review_item_id: int, body: ActionIn, db: DB, user: CurrentUser):
    item = service.get_review_item(db, user, review_item_id, act=True)
    record = service.handle(db, user, item, body.action, reason=body.reason, mute_hours=body.mute_hours)
    return ActionOut(id=record.id, action=record.action.value, at=record.at)


@router.put("/circles/{circle_id}/members/{user_id}/gating", status_code=204, responses=R(401, 403, 404, 422))
def set_gating(circle_id: int, user_id: int, body: GatingIn, db: DB, user: CurrentUser):
    from fastapi import Response

    access = circle_access(db, user, circle_id)
    service.set_gating(db, access, service.member_of(db, access, user_id), body.gated)
    return Response(status_code=204)


@router.get("/escalations", response_model=list[queries.EscalationView], responses=R(401, 403))
def list_escalations(request: Request, db: DB, user: CurrentUser, status: Literal["open", "resolved"] = "open"):
    require_role(user, {Role.clinician, Role.admin}, "see escalations")
    return _shown(request, db, user, queries.escalations(db, user, status=status))


def _shown(request: Request, db, user, views: list):
    """Escalations answered to ``user``, once their reading is on the audit trail."""
    record_reads(db, user.id, queries.escalation_reads(views), ip=client_ip(request))
    return views


@router.get("/escalations/{escalation_id}", response_model=queries.EscalationView, responses=R(401, 404))
def get_escalation(request: Request, escalation_id: int, db: DB, user: CurrentUser):
    return _shown(request, db, user, [queries.escalation(db, service.get_escalation(db, user, escalation_id))])[0]


@router.post("/escalations/{escalation_id}/acknowledge", response_model=queries.EscalationView, responses=R(401, 404, 409))
def acknowledge(request: Request, escalation_id: int, db: DB, user: CurrentUser):
    escalation = service.acknowledge(db, user, service.get_escalation(db, user, escalation_id))
    return _shown(request, db, user, [queries.escalation(db, escalation)])[0]


@router.post("/escalations/{escalation_id}/resolve", response_model=queries.EscalationView, responses=R(401, 404, 409, 422))
def resolve(request: Request, escalation_id: int, body: ResolveIn, db: DB, user: CurrentUser):
    escalation = service.resolve(db, user, service.get_escalation(db, user, escalation_id), outcome=body.outcome,
                                 note=body.note)
    return _shown(request, db, user, [queries.escalation(db, escalation)])[0]
