"""JSON routes of accounts and sign-in."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field
from fastapi import APIRouter, Query, Request, Response

from peerlift.errors import NotFound, responses
from peerlift.identity import audit, service, two_factor
from peerlift.identity.models import User
from peerlift.identity.schemas import (
    ChallengeOut,
    EmailChangeIn,
    ForgotIn,
    LoginIn,
    MeOut,
    PasswordChangeIn,
    ProfileIn,
    RecoveryCodesOut,
    ResetIn,
    SessionOut,
    SignupIn,
    TwoFactorCodeIn,
    TwoFactorDisableIn,
    TwoFactorLoginIn,
    TwoFactorSetupOut,
    TwoFactorStatusOut,
    UserOut,
)
from peerlift.policy import visible_user
from peerlift.settings import get_settings
from peerlift.web.deps import DB, AdminUser, CurrentUser, client_ip, get_auth
from peerlift.web.session_cookie import clear_session_cookie, set_session_cookie

router = APIRouter(prefix="/api/v1", tags=["identity"])


def _session_for(db, user: User, request: Request, response: Response) -> SessionOut:
    token, auth = service.start_session(db, user, ip=client_ip(request),
                                        user_agent=request.headers.get("user-agent", ""),
                                        days=get_settings().session_days)
    set_session_cookie(response, token)
    return SessionOut(user=MeOut.model_validate(user), csrf_token=auth.csrf_token,
                      two_factor_setup_required=two_factor.needs_setup(user))


@router.post("/auth/login", response_model=SessionOut | ChallengeOut, responses=responses(401, 422, 429))
def login(body: LoginIn, request: Request, response: Response, db: DB) -> SessionOut | ChallengeOut:
    """Signs in with email and password. A person with two-factor sign-in gets no session yet but a
    challenge (``two_factor_required: true``) to answer at /api/v1/auth/login/two-factor."""
    user = service.sign_in(db, body.email, body.password, client_ip(request))
    if two_factor.is_enabled(user):
        token, challenge = two_factor.start_challenge(db, user, ip=client_ip(request))
        return ChallengeOut(challenge=token, expires_at=challenge.expires_at)
    return _session_for(db, user, request, response)


@router.post("/auth/login/two-factor", response_model=SessionOut, responses=responses(401, 422, 429))
def login_two_factor(body: TwoFactorLoginIn, request: Request, response: Response, db: DB) -> SessionOut:
    """The second step of signing in: the challenge and a code from the authenticator app (or a
    recovery code). A refused code counts as a failed sign-in; a challenge allows 5 tries in 5 minutes."""
    user = two_factor.complete_sign_in(db, body.challenge, body.code, ip=client_ip(request))
    return _session_for(db, user, request, response)


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


# --- two-factor sign-in ------------------------------------------------------------------------

@router.get("/me/two-factor", response_model=TwoFactorStatusOut, responses=responses(401))
def two_factor_status(db: DB, user: CurrentUser) -> TwoFactorStatusOut:
    return TwoFactorStatusOut.model_validate(two_factor.status(db, user))


@router.post("/me/two-factor/setup", response_model=TwoFactorSetupOut, responses=responses(401, 403, 409))
def two_factor_setup(response: Response, db: DB, user: CurrentUser) -> TwoFactorSetupOut:
    """A new secret for an authenticator app (starting again replaces it); it is in use once
    /api/v1/me/two-factor/confirm gets a current code."""
    response.headers["Cache-Control"] = "no-store"
    row = two_factor.start_setup(db, user)
    return TwoFactorSetupOut(secret=row.secret, otpauth_uri=two_factor.provisioning_uri(user, row.secret))


@router.post("/me/two-factor/confirm", response_model=RecoveryCodesOut, responses=responses(401, 403, 409, 422))
def two_factor_confirm(body: TwoFactorCodeIn, request: Request, response: Response, db: DB,
                       user: CurrentUser) -> RecoveryCodesOut:
    """Turns two-factor sign-in on with a current code; answers the recovery codes, this once."""
    response.headers["Cache-Control"] = "no-store"
    return RecoveryCodesOut(recovery_codes=two_factor.confirm_setup(db, user, body.code, ip=client_ip(request)))


@router.post("/me/two-factor/recovery-codes", response_model=RecoveryCodesOut,
             responses=responses(401, 403, 409, 422))
def two_factor_recovery_codes(body: TwoFactorCodeIn, request: Request, response: Response, db: DB,
                              user: CurrentUser) -> RecoveryCodesOut:
    """Ten new recovery codes for a current code; the old ones stop working."""
    response.headers["Cache-Control"] = "no-store"
    return RecoveryCodesOut(recovery_codes=two_factor.regenerate_recovery_codes(db, user, body.code,
                                                                                ip=client_ip(request)))


@router.post("/me/two-factor/disable", status_code=204, responses=responses(401, 403, 409, 422))
def two_factor_disable(body: TwoFactorDisableIn, request: Request, db: DB, user: CurrentUser) -> Response:
    """Turns two-factor sign-in off: the password and a current code (or a recovery code)."""
    two_factor.disable(db, user, body.password, body.code, ip=client_ip(request))
    return Response(status_code=204)


@router.delete("/users/{user_id}/two-factor", status_code=204, responses=responses(401, 403, 404, 409))
def two_factor_reset(user_id: int, request: Request, db: DB, user: CurrentUser) -> Response:
    """Admins only: turns a person's two-factor sign-in off (a lost phone). Audited."""
    from peerlift.identity.models import Role
    from peerlift.policy import require_role

    require_role(user, {Role.admin}, "reset two-factor sign-in")
    target = db.get(User, user_id)
    if target is None:
        raise NotFound("No person with that id.", field="user_id")
    two_factor.reset(db, user, target, ip=client_ip(request))
    return Response(status_code=204)
# --- the audit trail ----------------------------------------------------------------------------------


class AuditEntryOut(BaseModel):
    id: int
    at: dt.datetime
    actor_id: int | None
    actor_handle: str | None
    actor_name: str | None
    action: str
    object_type: str
    object_id: int | None
    subject_id: int | None = Field(description="Whose data was read (reads of clinical data)")
    subject_handle: str | None
    subject_name: str | None
    ip_address: str
    detail: str


class AuditPageOut(BaseModel):
    entries: list[AuditEntryOut]
    next_before: int | None = Field(description="Pass as `before` for the next, older page; null on the last")


class AuditVerifyOut(BaseModel):
    intact: bool
    checked: int = Field(description="Entries found intact (before the break, if there is one)")
    broken_entry_id: int | None
    problem: str | None


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


@router.get("/admin/audit", response_model=AuditPageOut, responses=responses(401, 404, 422))
def search_audit(db: DB, user: AdminUser,
                 actor: str = Query("", max_length=254, description="Handle, email address or account id"),
                 action: str = Query("", max_length=64, description="The start of the action, e.g. read."),
                 object_type: str = Query("", max_length=32),
                 object_id: int | None = Query(None, ge=0, le=audit.MAX_ID),
                 subject: str = Query("", max_length=254, description="Whose data was read: handle, email or id"),
                 since: dt.datetime | None = Query(None, description="From this moment (UTC unless an offset is given)"),
                 until: dt.datetime | None = Query(None, description="Before this moment"),
                 ip: str = Query("", max_length=64, description="The start of the client address"),
                 before: int | None = Query(None, ge=1, le=audit.MAX_ID, description="Entries older than this id"),
                 limit: int = Query(50, ge=1, le=200)) -> AuditPageOut:
    """The audit trail, newest first, for admins (anyone else: 404)."""
    filters = audit.Filters(actor=actor, action=action, object_type=object_type, object_id=object_id,
                            subject=subject, since=_utc(since), until=_utc(until), ip=ip)
    entries, next_before = audit.search(db, filters, before=before, limit=limit)
    return AuditPageOut(entries=[AuditEntryOut(**e.__dict__) for e in entries], next_before=next_before)


@router.get("/admin/audit/verify", response_model=AuditVerifyOut, responses=responses(401, 404))
def verify_audit(user: AdminUser) -> AuditVerifyOut:
    """Walk the whole hash chain (seconds for a large trail)."""
    checked, broken = audit.verify_trail()
    return AuditVerifyOut(intact=broken is None, checked=checked,
                          broken_entry_id=broken.entry_id if broken else None,
                          problem=broken.problem if broken else None)


class AccessEntryOut(BaseModel):
    id: int
    at: dt.datetime
    viewer_name: str
    viewer_role: str
    action: str
    what: str


class AccessLogOut(BaseModel):
    entries: list[AccessEntryOut]
    next_before: int | None = Field(description="Pass as `before` for the next, older page; null on the last")


@router.get("/me/access-log", response_model=AccessLogOut, responses=responses(401, 422))
def my_access_log(db: DB, user: CurrentUser,
                  before: int | None = Query(None, ge=1, le=audit.MAX_ID, description="Entries older than this id"),
                  limit: int = Query(50, ge=1, le=200)) -> AccessLogOut:
    """Who else was shown your clinical data (tracking, questionnaires, safety, research), newest first."""
    entries, next_before = audit.access_log(db, user.id, before=before, limit=limit)
    return AccessLogOut(entries=[AccessEntryOut(**e.__dict__) for e in entries], next_before=next_before)
