"""JSON routes of health profiles, coded lists, "people like me" and connection requests."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from peerlift.errors import responses
from peerlift.identity.audit import Read, record_reads
from peerlift.people import codes, service
from peerlift.people.models import FIELDS, HealthProfile
from peerlift.people.schemas import (
    CodeOut,
    CommunitySuggestionOut,
    ConnectionRequestIn,
    ConnectionRequestOut,
    HealthProfileIn,
    HealthProfileOut,
    LikeMeOut,
    OtherProfileOut,
    SuggestionOut,
)
from peerlift.policy import connection_request_access, health_profile_view
from peerlift.web.deps import DB, CurrentUser, client_ip

router = APIRouter(prefix="/api/v1", tags=["people"])
R = responses


def profile_out(user_id: int, profile: HealthProfile | None) -> HealthProfileOut:
    if profile is None:
        return HealthProfileOut(user_id=user_id)
    return HealthProfileOut(user_id=user_id, conditions=profile.conditions, treatments=profile.treatments,
                            goals=profile.goals, age_band=profile.age_band,
                            visibility={f: getattr(profile, f"{f}_visibility") for f in FIELDS},
                            suggest_me=profile.suggest_me, hidden=profile.hidden)


@router.get("/me/health-profile", response_model=HealthProfileOut, responses=R(401))
def get_my_profile(db: DB, user: CurrentUser):
    return profile_out(user.id, service.profile_of(db, user.id))


@router.put("/me/health-profile", response_model=HealthProfileOut, responses=R(401, 422))
def put_my_profile(body: HealthProfileIn, db: DB, user: CurrentUser):
    data = body.model_dump(mode="json")
    profile = service.save_profile(db, user, conditions=data["conditions"], treatments=data["treatments"],
                                   goals=data["goals"], age_band=data["age_band"], visibility=data["visibility"],
                                   suggest_me=data["suggest_me"], hidden=data["hidden"])
    return profile_out(user.id, profile)


@router.get("/people/{user_id}/health-profile", response_model=OtherProfileOut, responses=R(401, 404))
def get_profile(user_id: int, request: Request, db: DB, user: CurrentUser):
    owner, profile, level = health_profile_view(db, user, user_id)
    shown = service.visible_fields(profile, level)
    if shown:
        record_reads(db, user.id, [Read("read.health_profile", owner.id, "health_profile", owner.id,
                                        ", ".join(sorted(shown)))], ip=client_ip(request))
    return OtherProfileOut(user_id=owner.id, display_name=owner.display_name, **shown)


@router.get("/codes/conditions", response_model=list[CodeOut], responses=R(401, 422))
def search_conditions(user: CurrentUser, q: Annotated[str, Query(max_length=100)] = "",
                      limit: Annotated[int, Query(ge=1, le=100)] = 20):
    return [CodeOut(code=c.code, name=c.name) for c in codes.conditions().search(q, limit)]


@router.get("/codes/medicines", response_model=list[CodeOut], responses=R(401, 422))
def search_medicines(user: CurrentUser, q: Annotated[str, Query(max_length=100)] = "",
                     limit: Annotated[int, Query(ge=1, le=100)] = 20):
    return [CodeOut(code=c.code, name=c.name) for c in codes.medicines().search(q, limit)]


@router.get("/people/like-me", response_model=LikeMeOut, responses=R(401))
def like_me(db: DB, user: CurrentUser):
    profile = service.profile_of(db, user.id)
    return LikeMeOut(
        opted_in=bool(profile and profile.suggestable),
        people=[SuggestionOut(user_id=s.user_id, display_name=s.display_name, score=s.score, reasons=s.reasons,
                              request_pending=s.request_pending) for s in service.like_me(db, user)],
        communities=[CommunitySuggestionOut(**c.__dict__) for c in service.communities_like_me(db, user)])


def _request_out(db, user, request_id: int) -> ConnectionRequestOut:
    view = next(v for v in service.requests_of(db, user) if v.id == request_id)
    return ConnectionRequestOut(**view.__dict__)


@router.post("/people/{user_id}/connection-requests", response_model=ConnectionRequestOut, status_code=201,
             responses=R(401, 404, 409, 422))
def request_connection(user_id: int, body: ConnectionRequestIn, db: DB, user: CurrentUser):
    request = service.request_connection(db, user, user_id, body.note)
    return _request_out(db, user, request.id)


@router.get("/me/connection-requests", response_model=list[ConnectionRequestOut], responses=R(401))
def my_requests(db: DB, user: CurrentUser):
    return [ConnectionRequestOut(**v.__dict__) for v in service.requests_of(db, user)]


@router.post("/connection-requests/{connection_request_id}/accept", response_model=ConnectionRequestOut,
             responses=R(401, 404, 409))
def accept_request(connection_request_id: int, db: DB, user: CurrentUser):
    request = service.accept(db, user, connection_request_access(db, user, connection_request_id))
    return _request_out(db, user, request.id)


@router.post("/connection-requests/{connection_request_id}/decline", response_model=ConnectionRequestOut,
             responses=R(401, 404, 409))
def decline_request(connection_request_id: int, db: DB, user: CurrentUser):
    request = service.decline(db, user, connection_request_access(db, user, connection_request_id))
    return _request_out(db, user, request.id)
