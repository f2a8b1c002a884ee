"""JSON routes of protocols: register versions, assign them to circles or arms, migrate, fidelity."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from peerlift.errors import Forbidden, NotFound, responses
from peerlift.identity.models import Role
from peerlift.policy import circle_access, protocol_arm
from peerlift.protocols import fidelity, service
from peerlift.protocols.fhir import to_bundle
from peerlift.protocols.models import Assignment, ProtocolVersion
from peerlift.web.deps import DB, CurrentUser

router = APIRouter(prefix="/api/v1", tags=["protocols"])
R = responses


class ProtocolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(max_length=500_000, description="The protocol file (YAML)")


class ProtocolOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    protocol_key: str
    version: str
    title: str
    duration_days: int
    sha256: str
    created_at: dt.datetime


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    protocol_version_id: int
    start_date: dt.date


class MigrateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    protocol_version_id: int
    reason: str = Field(max_length=500)


class AssignmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    protocol_version_id: int
    circle_id: int = Field(validation_alias="space_id")
    arm_id: int | None
    start_date: dt.date
    status: str
    created_at: dt.datetime
    migrated_from_id: int | None
    migration_reason: str
    planned_through: dt.date | None


class TallyOut(BaseModel):
    on_time: int
    late: int
    skipped: int
    failed: int
    overdue: int
    upcoming: int
    cancelled: int
    due: int
    delivered_share: float | None


class FidelityOut(BaseModel):
    circle_id: int | None
    arm_id: int | None
    protocols: list[str]
    total: TallyOut
    by_item: dict[str, TallyOut]
    by_person: dict[str, TallyOut]
    by_circle: dict[str, TallyOut]
    late: list[dict]
    problems: list[dict]


def _version(db, version_id: int) -> ProtocolVersion:
    version = db.get(ProtocolVersion, version_id)
    if version is None:
        raise NotFound("No protocol version with that id.", field="protocol_version_id")
    return version


def _can_read_protocols(user) -> None:
    if user.role not in (Role.facilitator, Role.researcher, Role.admin, Role.clinician):
        raise Forbidden("Protocols are for the programme's team.")


@router.get("/protocols", response_model=list[ProtocolOut], responses=R(401, 403))
def list_protocols(db: DB, user: CurrentUser):
    _can_read_protocols(user)
    return db.scalars(select(ProtocolVersion).order_by(ProtocolVersion.protocol_key, ProtocolVersion.id)).all()


@router.post("/protocols", response_model=ProtocolOut, status_code=201, responses=R(401, 403, 409, 422))
def register_protocol(body: ProtocolIn, db: DB, user: CurrentUser):
    return service.register(db, body.source, user)


@router.get("/protocols/{protocol_version_id}", response_model=ProtocolOut, responses=R(401, 403, 404))
def get_protocol(protocol_version_id: int, db: DB, user: CurrentUser):
    _can_read_protocols(user)
    return _version(db, protocol_version_id)


class FhirJSONResponse(JSONResponse):
    media_type = "application/fhir+json"


@router.get("/protocols/{protocol_version_id}/fhir", response_class=FhirJSONResponse,
            responses={200: {"description": "An HL7 FHIR R4B Bundle (PlanDefinition + ActivityDefinitions)"},
                       **R(401, 403, 404)})
def protocol_fhir(protocol_version_id: int, db: DB, user: CurrentUser):
    _can_read_protocols(user)
    bundle = to_bundle(service.protocol_of(_version(db, protocol_version_id)))
    return FhirJSONResponse(bundle.model_dump(mode="json", exclude_none=True))


@router.get("/circles/{circle_id}/assignments", response_model=list[AssignmentOut], responses=R(401, 404))
def list_assignments(circle_id: int, db: DB, user: CurrentUser):
    if user.role in (Role.researcher, Role.admin):
        service.manager_access(db, user, circle_id)
    else:
        circle_access(db, user, circle_id)
    return db.scalars(select(Assignment).where(Assignment.space_id == circle_id).order_by(Assignment.id)).all()


@router.post("/circles/{circle_id}/assignments", response_model=AssignmentOut, status_code=201,
             responses=R(401, 403, 404, 409, 422))
def assign(circle_id: int, body: AssignIn, db: DB, user: CurrentUser):
    space = service.manager_access(db, user, circle_id)
    return service.assign(db, user, space, _version(db, body.protocol_version_id), body.start_date)


@router.post("/arms/{arm_id}/assignments", response_model=list[AssignmentOut], status_code=201,
             responses=R(401, 403, 404, 409, 422))
def assign_arm(arm_id: int, body: AssignIn, db: DB, user: CurrentUser):
    arm = protocol_arm(db, user, arm_id, "assign protocols to arms")
    return service.assign_arm(db, user, arm, _version(db, body.protocol_version_id), body.start_date)


@router.post("/assignments/{assignment_id}/migrate", response_model=AssignmentOut, status_code=201,
             responses=R(401, 403, 404, 409, 422))
def migrate(assignment_id: int, body: MigrateIn, db: DB, user: CurrentUser):
    assignment = db.get(Assignment, assignment_id)
    if assignment is None:
        raise NotFound("No assignment with that id.", field="assignment_id")
    service.manager_access(db, user, assignment.space_id)
    return service.migrate(db, user, assignment, _version(db, body.protocol_version_id), body.reason)


@router.get("/circles/{circle_id}/fidelity", response_model=FidelityOut, responses=R(401, 403, 404))
def circle_fidelity(circle_id: int, db: DB, user: CurrentUser):
    service.manager_access(db, user, circle_id)
    return fidelity.report(db, circle_id=circle_id).as_dict()


@router.get("/arms/{arm_id}/fidelity", response_model=FidelityOut, responses=R(401, 403, 404))
def arm_fidelity(arm_id: int, db: DB, user: CurrentUser):
    protocol_arm(db, user, arm_id, "read an arm's fidelity")
    return fidelity.report(db, arm_id=arm_id).as_dict()
