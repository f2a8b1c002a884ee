"""JSON routes of accounts and sign-in."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel
from fastapi import APIRouter, Request, Response

from peerlift.errors import responses
from peerlift.identity import service
from peerlift.identity.schemas import (
    EmailChangeIn,
    ForgotIn,
    LoginIn,
    MeOut,
    PasswordChangeIn,
    ProfileIn,
    ResetIn,
    SessionOut,
    SignupIn,
    UserOut,
)
from peerlift.policy import visible_user
from peerlift.settings import get_settings
from peerlift.web.deps import DB, CurrentUser, client_ip, get_auth
from peerlift.web.session_cookie import clear_session_cookie, set_session_cookie

router = APIRouter(prefix="/api/v1", tags=["identity"])


@router.post("/auth/login", response_model=SessionOut, responses=responses(401, 422, 429))
def login(body: LoginIn, request: Request, response: Response, db: DB) -> SessionOut:
    user = service.sign_in(db, body.email, body.password, client_ip(request))
    token, auth = service.start_session(db, user, ip=client_ip(request),
                                        user_agent=request.headers.get("user-agent", ""),
                                        days=get_settings().session_days)
    set_session_cookie(response, token)
    return SessionOut(user=MeOut.model_validate(user), csrf_token=auth.csrf_token)


@router.post("/auth/signup", response_model=SessionOut, status_code=201, responses=responses(404, 409, 410, 422))
def signup(body: SignupIn, request: Request, response: Response, db: DB) -> SessionOut:
    from peerlift.community.service import sign_up_with_invitation

    user, _membership = sign_up_with_invitation(
        db, token=body.token, email=body.email, password=body.password, display_name=body.display_name,
        timezone=body.timezone, pronouns=body.pronouns, ip=client_ip(request),
    )
    token, auth = service.start_session(db, user, ip=client_ip(request),
                                        user_agent=request.headers.get("user-agent", ""),
                                        days=get_settings().session_days)
    set_session_cookie(response, token)
    return SessionOut(user=MeOut.model_validate(user), csrf_token=auth.csrf_token)


@router.post("/auth/logout", status_code=204, responses=responses(401, 403))
def logout(request: Request, response: Response, db: DB, user: CurrentUser) -> Response:
    auth = get_auth(request, db)
    service.end_session(db, auth, ip=client_ip(request))
    response = Response(status_code=204)
    clear_session_cookie(response)
    return response


@router.post("/auth/password/forgot", status_code=202, response_class=Response, responses=responses(422))
def forgot_password(body: ForgotIn, request: Request, db: DB) -> Response:
    """Emails a reset link when an account has this address; the answer is the same either way."""
    service.request_password_reset(db, body.email, ip=client_ip(request))
    return Response(status_code=202)


@router.post("/auth/password/reset", status_code=204, responses=responses(404, 410, 422))
def reset_password(body: ResetIn, request: Request, db: DB) -> Response:
    service.reset_password(db, body.token, body.password, ip=client_ip(request))
    return Response(status_code=204)


@router.get("/me", response_model=MeOut, responses=responses(401))
def me(user: CurrentUser) -> MeOut:
    return MeOut.model_validate(user)


@router.patch("/me", response_model=MeOut, responses=responses(401, 403, 422))
def update_me(body: ProfileIn, db: DB, user: CurrentUser) -> MeOut:
    service.update_profile(db, user, **body.model_dump(exclude_unset=True))
    return MeOut.model_validate(user)


@router.post("/me/password", status_code=204, responses=responses(401, 403, 422))
def change_password(body: PasswordChangeIn, db: DB, user: CurrentUser) -> Response:
    service.change_password(db, user, body.current_password, body.new_password)
    return Response(status_code=204)


@router.post("/me/email", response_model=MeOut, responses=responses(401, 403, 409, 422, 429))
def change_email(body: EmailChangeIn, request: Request, db: DB, user: CurrentUser) -> MeOut:
    """A new sign-in address, confirmed with the current password."""
    service.change_email(db, user, body.password, body.email, ip=client_ip(request))
    return MeOut.model_validate(user)


@router.get("/users/{user_id}", response_model=UserOut, responses=responses(401, 404))
def get_user(user_id: int, db: DB, user: CurrentUser) -> UserOut:
    return UserOut.model_validate(visible_user(db, user, user_id))


class SessionInfoOut(BaseModel):
    id: int
    created_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime
    ip_address: str
    user_agent: str
    current: bool


@router.get("/me/sessions", response_model=list[SessionInfoOut], responses=responses(401))
def my_sessions(request: Request, db: DB, user: CurrentUser):
    current = get_auth(request, db)
    return [SessionInfoOut(id=a.id, created_at=a.created_at, last_seen_at=a.last_seen_at, expires_at=a.expires_at,
                           ip_address=a.ip_address, user_agent=a.user_agent, current=a.id == current.id)
            for a in service.sessions_of(db, user)]


@router.delete("/me/sessions/{session_id}", status_code=204, responses=responses(401, 403, 404))
def revoke_session(session_id: int, request: Request, db: DB, user: CurrentUser) -> Response:
    service.revoke_session(db, user, session_id, ip=client_ip(request))
    return Response(status_code=204)
