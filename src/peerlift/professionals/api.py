"""JSON routes of verified professionals: the professions, one's own applications, an admin's decisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from peerlift.errors import responses
from peerlift.identity.models import User
from peerlift.professionals import service
from peerlift.professionals.models import Professional, professions
from peerlift.professionals.schemas import (
    AdminApplicationOut,
    ApplicationIn,
    ApplicationOut,
    DecisionIn,
    ProfessionOut,
)
from peerlift.web.deps import DB, CurrentUser

router = APIRouter(prefix="/api/v1", tags=["professionals"])
R = responses


def application_out(p: Professional) -> ApplicationOut:
    return ApplicationOut(id=p.id, user_id=p.user_id, profession=p.profession, profession_label=p.label,
                          registration_number=p.registration_number, registry=p.registry_name, status=p.status,
                          applied_at=p.applied_at, decided_at=p.decided_at, reason=p.reason)


def admin_out(p: Professional, person: User) -> AdminApplicationOut:
    return AdminApplicationOut(**application_out(p).model_dump(), display_name=person.display_name,
                               email=person.email)


@router.get("/professions", response_model=list[ProfessionOut], responses=R(401))
def list_professions(user: CurrentUser):
    return [ProfessionOut(key=key, label=label) for key, label in professions().items()]


@router.get("/me/professional", response_model=list[ApplicationOut], responses=R(401))
def my_applications(db: DB, user: CurrentUser):
    """One's own applications, newest first (the first is the current one)."""
    return [application_out(p) for p in service.applications_of(db, user.id)]


@router.post("/me/professional", response_model=ApplicationOut, status_code=201, responses=R(401, 409, 422))
def apply(body: ApplicationIn, db: DB, user: CurrentUser):
    return application_out(service.apply(db, user, profession=body.profession,
                                         profession_other=body.profession_other,
                                         registration_number=body.registration_number, registry=body.registry))


@router.get("/admin/professionals", response_model=list[AdminApplicationOut], responses=R(401, 403, 422))
def list_applications(db: DB, user: CurrentUser,
                      status: Annotated[str | None, Query(max_length=16,
                                                          description="applied, verified, rejected or revoked")] = None):
    return [admin_out(p, person) for p, person in service.listing(db, user, status)]


def _decided(db, user, application_id: int, action, reason: str | None = None) -> AdminApplicationOut:
    application = service.get_application(db, user, application_id)
    if reason is None:
        action(db, user, application)
    else:
        action(db, user, application, reason)
    return admin_out(application, db.get(User, application.user_id))


@router.post("/admin/professionals/{application_id}/verify", response_model=AdminApplicationOut,
             responses=R(401, 403, 404, 409))
def verify(application_id: int, db: DB, user: CurrentUser):
    return _decided(db, user, application_id, service.verify)


@router.post("/admin/professionals/{application_id}/reject", response_model=AdminApplicationOut,
             responses=R(401, 403, 404, 409, 422))
def reject(application_id: int, body: DecisionIn, db: DB, user: CurrentUser):
    return _decided(db, user, application_id, service.reject, body.reason)


@router.post("/admin/professionals/{application_id}/revoke", response_model=AdminApplicationOut,
             responses=R(401, 403, 404, 409, 422))
def revoke(application_id: int, body: DecisionIn, db: DB, user: CurrentUser):
    return _decided(db, user, application_id, service.revoke, body.reason)
