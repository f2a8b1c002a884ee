"""JSON routes of studies and enrolment. Thin: authorise through policy, call the service."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from peerlift.errors import responses
from peerlift.identity.models import User
from peerlift.policy import enrolment_access, study_access
from peerlift.research import queries, service
from peerlift.research.models import Enrolment
from peerlift.settings import get_settings
from peerlift.web.deps import DB, CurrentUser, client_ip

router = APIRouter(prefix="/api/v1", tags=["research"])
R = responses


class StudyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(max_length=1_000)
    slug: str = Field(max_length=200)
    registry_id: str = Field("", max_length=200, description="e.g. an NCT number")
    ethics_ref: str = Field("", max_length=500, description="Ethics approval reference")
    description: str = Field("", max_length=10_000)
    target_size: int = 0
    researcher_ids: list[int] = Field(default_factory=list, description="Researchers who run the study")


class StudyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    slug: str
    title: str
    registry_id: str
    ethics_ref: str
    description: str
    target_size: int
    created_at: dt.datetime


class DesignOut(BaseModel):
    scheme: str
    block_sizes: list[int]
    factors: list[dict[str, Any]]
    eligibility: list[dict[str, Any]]
    consent_version: str
    withdrawal_rule: str


class ArmOut(BaseModel):
    id: int
    slug: str
    name: str
    description: str
    circles: int = 0
    people: int = 0


class TeamOut(BaseModel):
    user_id: int
    display_name: str
    email: str
    role: str


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    version: str
    title: str
    sections: list[dict[str, Any]]
    on_account_deletion: str = Field(description="keep_pseudonymised or delete; empty: the installation's "
                                                 "PEERLIFT_DELETION_IN_STUDY")
    created_at: dt.datetime


class AllocationOut(BaseModel):
    id: int
    enrolment_id: int | None
    circle_id: int | None
    arm_id: int
    arm: str
    stratum: str
    sequence_index: int
    allocated_by: str
    allocated_at: dt.datetime


class StudyDetailOut(BaseModel):
    study: StudyOut
    design: DesignOut
    arms: list[ArmOut]
    team: list[TeamOut]
    consent_documents: list[DocumentOut]
    enrolment_counts: dict[str, int]
    allocations: list[AllocationOut]


class ArmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: str = Field(max_length=200)
    name: str = Field(max_length=500)
    description: str = Field("", max_length=5_000)


class ArmProtocolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    protocol_version_id: Any
    start_date: dt.date


class TeamIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: int
    role: str = Field(max_length=32)


class DesignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scheme: str = Field(max_length=32)
    block_sizes: Any = None
    factors: Any = None
    eligibility: Any = None
    withdrawal_rule: str = Field("keep", max_length=32)


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Any
    title: Any
    sections: Any
    on_account_deletion: str | None = Field(
        None, max_length=32, description="What deleting one's account does to the study's data: keep_pseudonymised "
                                         "or delete (default: PEERLIFT_DELETION_IN_STUDY)")


class InvitationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days_valid: int = 30
    max_uses: int = 100
    note: str = Field("", max_length=1_000)


class InvitationOut(BaseModel):
    id: int
    url: str
    token: str
    expires_at: dt.datetime
    max_uses: int


class ClustersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    circle_ids: Any


class EnrolmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    study_id: int
    status: str
    exclusion_reason: str
    started_at: dt.datetime
    screened_at: dt.datetime | None
    consented_at: dt.datetime | None
    randomised_at: dt.datetime | None
    arm_id: int | None
    circle_id: int | None = Field(validation_alias="space_id")
    withdrawn_at: dt.datetime | None
    withdrawal_reason: str
    withdrawal_data: str


class EnrolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(max_length=200)


class ScreeningIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answers: Any = None


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sections: Any = None
    typed_name: Any = None
    document_version: str | None = Field(None, max_length=64)


class DeclineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=2_000)


class WithdrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=2_000)
    confirm: bool = Field(False, description="The person has read the study's rule for their data")


def _detail(db, study) -> dict:
    view = queries.study_view(db, study)
    return {"study": study, "design": view.design, "arms": view.arms, "team": view.team,
            "consent_documents": view.documents, "enrolment_counts": view.counts, "allocations": view.allocations}


@router.get("/studies", response_model=list[StudyOut], responses=R(401))
def list_studies(db: DB, user: CurrentUser):
    return queries.studies_for(db, user)


@router.post("/studies", response_model=StudyDetailOut, status_code=201, responses=R(401, 403, 409, 422))
def create_study(body: StudyIn, db: DB, user: CurrentUser):
    researchers = [db.get(User, i) for i in body.researcher_ids]
    if any(r is None for r in researchers):
        from peerlift.errors import InvalidInput

        raise InvalidInput("No account with that id.", field="researcher_ids")
    study = service.create_study(db, user, title=body.title, slug=body.slug, registry_id=body.registry_id,
                                 ethics_ref=body.ethics_ref, description=body.description,
                                 target_size=body.target_size, researchers=researchers)
    return _detail(db, study)


@router.get("/studies/{study_id}", response_model=StudyDetailOut, responses=R(401, 404))
def get_study(study_id: int, db: DB, user: CurrentUser):
    return _detail(db, study_access(db, user, study_id))


@router.post("/studies/{study_id}/arms", response_model=ArmOut, status_code=201, responses=R(401, 403, 404, 409, 422))
def add_arm(study_id: int, body: ArmIn, db: DB, user: CurrentUser):
    arm = service.add_arm(db, user, study_access(db, user, study_id), slug=body.slug, name=body.name,
                          description=body.description)
    return {"id": arm.id, "slug": arm.slug, "name": arm.name, "description": arm.description}


@router.post("/studies/{study_id}/arms/{arm_id}/protocol", response_model=list[int], status_code=201,
             responses=R(401, 403, 404, 409, 422))
def set_arm_protocol(study_id: int, arm_id: int, body: ArmProtocolIn, db: DB, user: CurrentUser):
    """Run a protocol version in every circle of the arm; answers the new assignments' ids."""
    assignments = service.set_arm_protocol(db, user, study_access(db, user, study_id), arm_id,
                                           body.protocol_version_id, body.start_date)
    return [a.id for a in assignments]


@router.post("/studies/{study_id}/team", response_model=TeamOut, status_code=201,
             responses=R(401, 403, 404, 409, 422))
def add_team_member(study_id: int, body: TeamIn, db: DB, user: CurrentUser):
    person = db.get(User, body.user_id)
    service.add_team_member(db, user, study_access(db, user, study_id), person, body.role)
    return {"user_id": person.id, "display_name": person.display_name, "email": person.email, "role": body.role}


@router.put("/studies/{study_id}/design", response_model=DesignOut, responses=R(401, 403, 404, 409, 422))
def set_design(study_id: int, body: DesignIn, db: DB, user: CurrentUser):
    design = service.set_design(db, user, study_access(db, user, study_id), scheme=body.scheme,
                                block_sizes=body.block_sizes, factors=body.factors, eligibility=body.eligibility,
                                withdrawal_rule=body.withdrawal_rule)
    return queries.public_design(design)


@router.post("/studies/{study_id}/consent-documents", response_model=DocumentOut, status_code=201,
             responses=R(401, 403, 404, 409, 422))
def add_consent_document(study_id: int, body: DocumentIn, db: DB, user: CurrentUser):
    return service.add_consent_document(db, user, study_access(db, user, study_id), version=body.version,
                                        title=body.title, sections=body.sections,
                                        on_account_deletion=body.on_account_deletion)


@router.post("/studies/{study_id}/invitations", response_model=InvitationOut, status_code=201,
             responses=R(401, 403, 404, 422))
def create_invitation(study_id: int, body: InvitationIn, db: DB, user: CurrentUser):
    token, invitation = service.create_invitation(db, user, study_access(db, user, study_id),
                                                  days_valid=body.days_valid, max_uses=body.max_uses, note=body.note)
    return {"id": invitation.id, "token": token, "url": f"{get_settings().base_url.rstrip('/')}/study/{token}",
            "expires_at": invitation.expires_at, "max_uses": invitation.max_uses}


@router.post("/studies/{study_id}/clusters", response_model=list[AllocationOut], status_code=201,
             responses=R(401, 403, 404, 409, 422))
def allocate_circles(study_id: int, body: ClustersIn, db: DB, user: CurrentUser):
    study = study_access(db, user, study_id)
    made = {a.id for a in service.allocate_circles(db, user, study, body.circle_ids)}
    return [a for a in queries.study_view(db, study).allocations if a["id"] in made]


@router.get("/studies/{study_id}/enrolments", response_model=list[EnrolmentOut], responses=R(401, 403, 404))
def list_enrolments(study_id: int, db: DB, user: CurrentUser):
    study = study_access(db, user, study_id)
    from peerlift.policy import require_study_researcher

    require_study_researcher(db, user, study)
    return db.scalars(select(Enrolment).where(Enrolment.study_id == study.id).order_by(Enrolment.id)).all()


@router.post("/enrolments", response_model=EnrolmentOut, status_code=201, responses=R(401, 403, 404, 409, 410))
def enrol(body: EnrolIn, request: Request, db: DB, user: CurrentUser):
    """Begin a study through its invitation link's token."""
    return service.start_enrolment(db, user, body.token, ip=client_ip(request))


@router.get("/enrolments", response_model=list[EnrolmentOut], responses=R(401))
def my_enrolments(db: DB, user: CurrentUser):
    return [e for e, _study in queries.enrolments_of(db, user)]


@router.get("/enrolments/{enrolment_id}", response_model=EnrolmentOut, responses=R(401, 404))
def get_enrolment(enrolment_id: int, db: DB, user: CurrentUser):
    return enrolment_access(db, user, enrolment_id)


@router.post("/enrolments/{enrolment_id}/screening", response_model=EnrolmentOut, responses=R(401, 404, 409, 422))
def screen(enrolment_id: int, body: ScreeningIn, db: DB, user: CurrentUser):
    return service.screen(db, user, enrolment_access(db, user, enrolment_id), body.answers)


@router.post("/enrolments/{enrolment_id}/consent", response_model=EnrolmentOut, responses=R(401, 404, 409, 422))
def consent(enrolment_id: int, body: ConsentIn, request: Request, db: DB, user: CurrentUser):
    enrolment = enrolment_access(db, user, enrolment_id)
    service.consent(db, user, enrolment, sections=body.sections, typed_name=body.typed_name,
                    document_version=body.document_version, ip=client_ip(request))
    return enrolment


@router.post("/enrolments/{enrolment_id}/decline", response_model=EnrolmentOut, responses=R(401, 404, 409, 422))
def decline(enrolment_id: int, body: DeclineIn, db: DB, user: CurrentUser):
    return service.decline(db, user, enrolment_access(db, user, enrolment_id), body.reason)


@router.post("/enrolments/{enrolment_id}/randomise", response_model=EnrolmentOut,
             responses=R(401, 403, 404, 409))
def randomise(enrolment_id: int, db: DB, user: CurrentUser):
    """The person themselves (right after consent) or one of the study's researchers."""
    enrolment = db.get(Enrolment, enrolment_id)
    if enrolment is None or enrolment.user_id != user.id:
        from peerlift.policy import is_study_researcher

        if enrolment is None or not is_study_researcher(db, user, study_access(db, user, enrolment.study_id)):
            enrolment_access(db, user, enrolment_id)  # the 404 of someone else's enrolment
    return service.randomise(db, user, enrolment)


@router.post("/enrolments/{enrolment_id}/withdraw", response_model=EnrolmentOut, responses=R(401, 404, 409, 422))
def withdraw(enrolment_id: int, body: WithdrawIn, db: DB, user: CurrentUser):
    return service.withdraw(db, user, enrolment_access(db, user, enrolment_id), reason=body.reason,
                            confirm=body.confirm)
